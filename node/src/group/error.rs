//! Why a group operation or an incoming group message was refused.

use thiserror::Error;

/// One variant per refusal; messages never contain key material, names or message text.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupError {
    /// An MLS message, Welcome or KeyPackage longer than its bound.
    #[error("{what} is {len} bytes, at most {max} allowed")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// Bytes that do not parse as what they should be.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Another ciphersuite or protocol version than Tern's.
    #[error("unsupported MLS ciphersuite or version")]
    Suite,
    /// A leaf whose credential is not a valid Tern member credential (§18.2).
    #[error("invalid member credential: {0}")]
    Credential(&'static str),
    /// The committer (or the local member, for an operation) is not an admin.
    #[error("only admins may do this")]
    NotAdmin,
    /// A change of the group info that its author may not make.
    #[error("forbidden change: {0}")]
    Forbidden(&'static str),
    /// The local member is no longer in the group.
    #[error("not a member of this group")]
    NotMember,
    /// The named identity is not a member.
    #[error("no such member")]
    UnknownMember,
    /// The identity is a member already.
    #[error("already a member")]
    AlreadyMember,
    /// The group would have more than `MAX_GROUP_MEMBERS` members.
    #[error("a group has at most {max} members")]
    TooManyMembers { max: usize },
    /// An argument outside its bounds (a name too long, too many admins).
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// A message of another group.
    #[error("message for another group")]
    WrongGroup,
    /// A commit already seen (applied or lost) for its epoch.
    #[error("replayed commit")]
    Replayed,
    /// A commit whose committer is removed by a concurrent commit for the same epoch (§18.5).
    #[error("commit from a member removed in that epoch")]
    CommitterRemoved,
    /// A message for an epoch older than the rollback window.
    #[error("message for epoch {got}, older than the oldest kept ({oldest})")]
    StaleEpoch { got: u64, oldest: u64 },
    /// A message for an epoch this member has not reached (kept to retry).
    #[error("message for epoch {got}, this member is at {current}")]
    FutureEpoch { got: u64, current: u64 },
    /// A message that does not decrypt in this member's state (a non-member's, another branch's, or damaged).
    #[error("message does not decrypt")]
    Undecryptable,
    /// A commit that carries out a proposal this member has not received (yet: kept to retry once it has).
    #[error("commit of a proposal not received")]
    MissingProposal,
    /// A Welcome for none of this node's KeyPackages.
    #[error("welcome for no KeyPackage of ours")]
    NoKeyPackage,
    /// MLS refused the message or the operation for another reason.
    #[error("MLS: {0}")]
    Mls(String),
    /// The persisted group state does not decode.
    #[error("corrupt group state: {0}")]
    Corrupt(&'static str),
    /// A group link that does not read (docs/protocol.md §18.11); the reason is in the message.
    #[error(transparent)]
    Link(#[from] tern_protocol::group_link::GroupLinkError),
    /// No link of this group has this id (it was revoked, or never made here).
    #[error("no such link: {0}")]
    UnknownLink(String),
    /// This profile keeps [`crate::node::MAX_GROUP_LINKS`] links already.
    #[error("at most {max} group links can be live at once: revoke one first")]
    LinksFull { max: usize },
    /// No join request from this person waits for this group.
    #[error("no join request from them waits for this group")]
    NoJoinRequest,
    /// A group link of this profile's own.
    #[error("this is a link to a group you run")]
    OwnLink,
}

impl GroupError {
    pub(crate) fn mls(err: impl std::fmt::Display) -> Self {
        Self::Mls(err.to_string())
    }
}
