//! What the [`crate::node::Node`] handle says of group links (docs/protocol.md §18.11): the links an admin
//! made, the join requests waiting for approval, and the answers a joiner gets.

use std::fmt;

use tern_protocol::IdentityKey;
pub use tern_protocol::group_link::JoinAnswer;

use super::ConversationId;

/// One live link to a group, as its admin sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupLinkInfo {
    /// A short id (the token's first bytes in hex), to revoke the link by.
    pub id: String,
    /// The group the link lets people into.
    pub group: ConversationId,
    /// The link to hand out (`tern-group:…`), carrying this profile's card as it is now.
    pub link: String,
    /// Whether an admin approves each request (else anyone holding the link joins at once).
    pub approval: bool,
    /// When it was made, unix milliseconds.
    pub created_ms: u64,
}

impl fmt::Debug for GroupLinkInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the link itself: whoever holds it may join.
        f.debug_struct("GroupLinkInfo")
            .field("id", &self.id)
            .field("group", &self.group)
            .field("approval", &self.approval)
            .finish_non_exhaustive()
    }
}

/// Someone asked to join a group that needs approval, with one of this profile's links.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinRequestInfo {
    pub group: ConversationId,
    pub group_name: String,
    /// Who asks (a contact now: the request came inside a 1:1 session).
    pub from: IdentityKey,
    /// Their name as the user knows them.
    pub name: String,
    /// When the request arrived, unix milliseconds.
    pub at_ms: u64,
}

impl fmt::Debug for JoinRequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print names.
        f.debug_struct("JoinRequestInfo")
            .field("group", &self.group)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// A join request sent: the admin whose node answers it.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinStarted {
    pub admin: IdentityKey,
    /// The admin's name as the user knows them now (they are a contact from here on).
    pub admin_name: String,
    /// Whether an admin approves the request first (else it is added when the admin's node is reached).
    pub approval: bool,
}

impl fmt::Debug for JoinStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinStarted")
            .field("admin", &self.admin)
            .field("approval", &self.approval)
            .finish_non_exhaustive()
    }
}
