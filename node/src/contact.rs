//! The contact list's noun: [`ContactEntry`], everything the node keeps about one contact (their latest
//! card among it). The store seals entries in its own record format (see `crate::store`); the engine reads
//! and changes them, and [`crate::api::Contact`] is what the app is shown.

use std::fmt;

use tern_protocol::{ContactCard, IdentityKey};

use crate::api::{Contact, ContactState};

/// What the node keeps about one contact.
#[derive(Clone, PartialEq, Eq)]
pub struct ContactEntry {
    /// The contact's identity key.
    pub key: IdentityKey,
    /// The contact's latest encoded `ContactCard` (at most `crate::store::MAX_CARD_LEN` bytes).
    pub card: Vec<u8>,
    /// The name the user gave the contact (at most `crate::store::MAX_LOCAL_NAME_LEN` bytes).
    pub local_name: String,
    /// The user compared safety numbers.
    pub verified: bool,
    /// Accepted, requested or blocked.
    pub state: ContactState,
    /// The contact's identity key changed since it was verified or first seen.
    pub key_changed: bool,
    /// When the contact was added, unix milliseconds.
    pub added_ms: u64,
}

impl fmt::Debug for ContactEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The local name is private: show only its length.
        let Self {
            key,
            card,
            local_name,
            verified,
            state,
            key_changed,
            added_ms,
        } = self;
        f.debug_struct("ContactEntry")
            .field("key", &key.peer_id())
            .field("card_len", &card.len())
            .field("local_name_len", &local_name.len())
            .field("verified", verified)
            .field("state", state)
            .field("key_changed", key_changed)
            .field("added_ms", added_ms)
            .finish()
    }
}

impl From<&ContactEntry> for Contact {
    /// The contact as the app shows it. The card's display name is empty if the card does not decode (it
    /// was checked when stored).
    fn from(entry: &ContactEntry) -> Self {
        let card_name = ContactCard::decode(&entry.card)
            .map(|card| card.display_name().to_owned())
            .unwrap_or_default();
        Self {
            key: entry.key,
            name: entry.local_name.clone(),
            card_name,
            state: entry.state,
            verified: entry.verified,
            key_changed: entry.key_changed,
            added_ms: entry.added_ms,
        }
    }
}

impl From<ContactEntry> for Contact {
    fn from(entry: ContactEntry) -> Self {
        Self::from(&entry)
    }
}
