//! The one place the app names tern-node's store rows and event types. Everything else in the app
//! uses these aliases and reads rows through the small traits below, which spell each field the way
//! `tern_node::api` does (`outgoing()`, `contact()`, `name()`). Moving to the api types is then a
//! change of this file: the aliases point at `api::{Message, Contact, Conversation, Cursor, Page}`, and
//! the trait impls shrink to what the api types do not have themselves.

use tern_node::store::{
    ContactRecord, ConversationSummary, MessageCursor, MessagePage, MessageRecord,
};
use tern_protocol::IdentityKey;

pub use tern_node::engine::Whoami;
pub use tern_node::node::{Event, NatStatus, NetStatus, Node};
pub use tern_node::store::{ContactState, MessageStatus};

/// A message as the app holds it (becomes `api::Message`).
pub type MessageRow = MessageRecord;
/// A contact as stored (becomes `api::Contact`).
pub type ContactRow = ContactRecord;
/// One entry of the conversation list (becomes `api::Conversation`).
pub type ConversationRow = ConversationSummary;
/// Where the next older page of a conversation starts (becomes `api::Cursor`).
pub type Cursor = MessageCursor;
/// A page of a conversation, oldest first (becomes `api::Page`).
pub type Page = MessagePage;
/// What identifies a conversation in the app: today the contact's key (becomes `api::ConversationId`).
pub type ConversationKey = IdentityKey;

/// A message's fields the app reads, named as `api::Message` names them.
pub trait MessageFields {
    /// Written by this profile.
    fn outgoing(&self) -> bool;
    /// The conversation it belongs to.
    fn conversation_key(&self) -> ConversationKey;
}

impl MessageFields for MessageRow {
    fn outgoing(&self) -> bool {
        self.outgoing
    }

    fn conversation_key(&self) -> ConversationKey {
        self.conversation
    }
}

/// A contact's fields the app reads, named as `api::Contact` names them.
pub trait ContactFields {
    /// The name the person knows them by.
    fn name(&self) -> &str;
    fn conversation_key(&self) -> ConversationKey;
}

impl ContactFields for ContactRow {
    fn name(&self) -> &str {
        &self.local_name
    }

    fn conversation_key(&self) -> ConversationKey {
        self.key
    }
}

/// A conversation-list entry's fields the app reads, named as `api::Conversation` names them.
pub trait ConversationFields {
    fn id(&self) -> ConversationKey;
}

impl ConversationFields for ConversationRow {
    fn id(&self) -> ConversationKey {
        self.conversation
    }
}

/// A list entry for a conversation whose first message just arrived.
pub fn new_conversation(last: MessageRow, unread: u64) -> ConversationRow {
    ConversationSummary {
        conversation: last.conversation,
        last,
        unread,
    }
}
