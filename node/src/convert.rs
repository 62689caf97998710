//! Conversions into the public types of [`crate::api`] from the protocol's.

use crate::api::ContactChange;

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
