//! Store rows into the public types of [`crate::api`]. (Interim: the store takes this over when its rows
//! become private.)

use crate::api::{
    Contact, ContactChange, ContactState, Conversation, ConversationId, Cursor, Message,
    MessageStatus, Page,
};
use crate::store::{self, ContactRecord, ConversationSummary, MessagePage, MessageRecord};

impl From<store::ContactState> for ContactState {
    fn from(state: store::ContactState) -> Self {
        match state {
            store::ContactState::Accepted => Self::Accepted,
            store::ContactState::Requested => Self::Requested,
            store::ContactState::Blocked => Self::Blocked,
        }
    }
}

impl From<ContactState> for store::ContactState {
    fn from(state: ContactState) -> Self {
        match state {
            ContactState::Accepted => Self::Accepted,
            ContactState::Requested => Self::Requested,
            ContactState::Blocked => Self::Blocked,
        }
    }
}

impl From<store::MessageStatus> for MessageStatus {
    fn from(status: store::MessageStatus) -> Self {
        match status {
            store::MessageStatus::Sending => Self::Sending,
            store::MessageStatus::Sent => Self::Sent,
            store::MessageStatus::Delivered => Self::Delivered,
            store::MessageStatus::Read => Self::Read,
            store::MessageStatus::Failed => Self::Failed,
            store::MessageStatus::Received => Self::Received,
        }
    }
}

impl From<ContactRecord> for Contact {
    fn from(record: ContactRecord) -> Self {
        let card_name = tern_protocol::ContactCard::decode(&record.card)
            .map(|card| card.display_name().to_owned())
            .unwrap_or_default();
        Self {
            key: record.key,
            name: record.local_name,
            card_name,
            state: record.state.into(),
            verified: record.verified,
            key_changed: record.key_changed,
            added_ms: record.added_ms,
        }
    }
}

impl From<MessageRecord> for Message {
    fn from(record: MessageRecord) -> Self {
        Self {
            id: record.id,
            conversation: ConversationId::Direct(record.conversation),
            sender: (!record.outgoing).then_some(record.conversation),
            sent_at_ms: record.sent_at_ms,
            received_at_ms: record.received_at_ms,
            text: record.text,
            status: record.status.into(),
            recipients: Vec::new(),
        }
    }
}

impl From<MessagePage> for Page {
    fn from(page: MessagePage) -> Self {
        Self {
            messages: page.messages.into_iter().map(Message::from).collect(),
            older: page.older.map(Cursor),
        }
    }
}

/// A conversation summary, titled with the contact's name.
pub(crate) fn conversation(summary: ConversationSummary, title: String) -> Conversation {
    Conversation {
        id: ConversationId::Direct(summary.conversation),
        title,
        last: summary.last.into(),
        unread: summary.unread,
    }
}

impl From<tern_protocol::CardChange> for ContactChange {
    fn from(change: tern_protocol::CardChange) -> Self {
        match change {
            tern_protocol::CardChange::Unchanged | tern_protocol::CardChange::Stale => {
                Self::Unchanged
            }
            tern_protocol::CardChange::Updated => Self::Updated,
            tern_protocol::CardChange::IdentityChanged => Self::KeyChanged,
        }
    }
}
