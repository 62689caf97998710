//! The one place the app names tern-node's types. Everything else in the app uses these aliases and
//! reads them through the small traits below (a conversation is keyed by its [`ConversationId`]: a
//! contact's 1:1 conversation or a group).

pub use tern_node::api::{
    Attachment, ContactState, ConversationId, Event, FileState, GroupLinkInfo, GroupMember,
    GroupRole, GroupSummary, JoinAnswer, JoinRequestInfo, MessageStatus, NatStatus, NetStatus,
    Whoami,
};
pub use tern_node::node::Node;

/// A message as the app holds it.
pub type MessageRow = tern_node::api::Message;
/// A contact.
pub type ContactRow = tern_node::api::Contact;
/// One entry of the conversation list.
pub type ConversationRow = tern_node::api::Conversation;
/// Where the next older page of a conversation starts.
pub type Cursor = tern_node::api::Cursor;
/// A page of a conversation, oldest first.
pub type Page = tern_node::api::Page;
/// What identifies a conversation in the app: a contact's 1:1 conversation or a group.
pub type ConversationKey = ConversationId;

/// A message's fields the app reads.
pub trait MessageFields {
    /// The conversation it belongs to.
    fn conversation_key(&self) -> ConversationKey;
}

impl MessageFields for MessageRow {
    fn conversation_key(&self) -> ConversationKey {
        self.conversation
    }
}

/// A contact's fields the app reads.
pub trait ContactFields {
    fn conversation_key(&self) -> ConversationKey;
}

impl ContactFields for ContactRow {
    fn conversation_key(&self) -> ConversationKey {
        ConversationId::Direct(self.key)
    }
}

/// A conversation-list entry's fields the app reads.
pub trait ConversationFields {
    fn key(&self) -> ConversationKey;
}

impl ConversationFields for ConversationRow {
    fn key(&self) -> ConversationKey {
        self.id
    }
}

/// A list entry for a conversation whose first message just arrived.
pub fn new_conversation(last: MessageRow, unread: u64, title: String) -> ConversationRow {
    ConversationRow {
        id: last.conversation,
        title,
        last,
        unread,
        // Read from the node with the next full list.
        timer_s: 0,
    }
}
