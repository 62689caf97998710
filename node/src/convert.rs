//! Store rows into the public types of [`crate::api`], for the engine's results (the store's reader
//! already speaks api types): each conversion is the store's own.

use crate::api::{Contact, ContactChange, ContactState, Message, MessageStatus};
use crate::store::{self, ContactRecord, MessageRecord};

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
        store::status_to_api(status)
    }
}

impl From<ContactRecord> for Contact {
    fn from(record: ContactRecord) -> Self {
        store::contact_from_record(&record)
    }
}

impl From<MessageRecord> for Message {
    fn from(record: MessageRecord) -> Self {
        store::message_from_record(record)
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
