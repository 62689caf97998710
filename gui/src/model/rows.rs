//! The one place the app names tern-node's types. Everything else in the app uses these aliases and
//! reads them through the small traits below (the app shows 1:1 conversations, keyed by the contact's
//! identity key).

use tern_node::api::ConversationId;
use tern_protocol::IdentityKey;

pub use tern_node::api::{ContactState, Event, MessageStatus, NatStatus, NetStatus, Whoami};
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
/// What identifies a conversation in the app: the contact's key.
pub type ConversationKey = IdentityKey;

/// The contact of a 1:1 conversation (every conversation the app shows is one).
fn key_of(id: &ConversationId) -> ConversationKey {
    match id {
        ConversationId::Direct(key) => *key,
        #[allow(unreachable_patterns)]
        _ => unreachable_conversation(),
    }
}

#[cold]
fn unreachable_conversation() -> ConversationKey {
    // No other kind of conversation exists in this build; an all-zero key names nobody.
    IdentityKey::from_bytes([0; 32]).unwrap_or_else(|_| unreachable!())
}

/// A message's fields the app reads.
pub trait MessageFields {
    /// The conversation it belongs to.
    fn conversation_key(&self) -> ConversationKey;
}

impl MessageFields for MessageRow {
    fn conversation_key(&self) -> ConversationKey {
        key_of(&self.conversation)
    }
}

/// A contact's fields the app reads.
pub trait ContactFields {
    fn conversation_key(&self) -> ConversationKey;
}

impl ContactFields for ContactRow {
    fn conversation_key(&self) -> ConversationKey {
        self.key
    }
}

/// A conversation-list entry's fields the app reads.
pub trait ConversationFields {
    fn key(&self) -> ConversationKey;
}

impl ConversationFields for ConversationRow {
    fn key(&self) -> ConversationKey {
        key_of(&self.id)
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
