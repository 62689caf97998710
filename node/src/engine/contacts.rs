//! Contacts: adding from invite links, finding, verifying, states, renaming and removing.

use super::*;

impl Engine {
    /// Adds (or updates) a contact from an invite link, named `name` or else the card's display name.
    pub fn add_contact(
        &mut self,
        link: &str,
        name: Option<&str>,
    ) -> Result<(ContactEntry, CardChange), EngineError> {
        let card = ContactCard::from_invite_link(link)?;
        if card.key() == self.key() {
            return Err(EngineError::OwnCard);
        }
        // The user's name is checked (`crate::names`); the card's, the peer's, is cleaned.
        let local_name = match name {
            Some(name) => crate::names::clean_name(name)?,
            None => crate::names::sanitize_name(card.display_name(), &card.key().peer_id()),
        };
        if let Some(other) =
            self.store.contacts()?.into_iter().find(|c| {
                crate::names::same_name(&c.local_name, &local_name) && c.key != card.key()
            })
        {
            return Err(EngineError::NameTaken(other.local_name));
        }
        let (record, change, accepted) = match self.store.contact(&card.key())? {
            Some(mut existing) => {
                let known = ContactCard::decode(&existing.card)?;
                let change = ContactCard::compare(&known, &card);
                match change {
                    CardChange::Updated => existing.card = card.encode().to_vec(),
                    CardChange::IdentityChanged => {
                        existing.card = card.encode().to_vec();
                        existing.verified = false;
                        existing.key_changed = true;
                    }
                    CardChange::Unchanged | CardChange::Stale => {}
                }
                existing.local_name = local_name;
                let was_request = existing.state == ContactState::Requested;
                if was_request {
                    existing.state = ContactState::Accepted;
                }
                (existing, change, was_request)
            }
            None => (
                ContactEntry {
                    key: card.key(),
                    card: card.encode().to_vec(),
                    local_name,
                    verified: false,
                    state: ContactState::Accepted,
                    key_changed: false,
                    added_ms: now_ms(),
                },
                CardChange::Updated,
                false,
            ),
        };
        self.store.put_contact(&record)?;
        self.requests = None;
        if accepted {
            self.receipts_on_accept(&record.key, now_ms())?;
        }
        Ok((record, change))
    }

    /// Finds a contact by local name (case-insensitive) or by peer id.
    pub fn find_contact(&self, name_or_peer: &str) -> Result<ContactEntry, EngineError> {
        let found = find_contact_in(self.store.reader().contacts()?, name_or_peer)?;
        self.store
            .contact(&found.key)?
            .ok_or_else(|| EngineError::UnknownContact(name_or_peer.to_owned()))
    }

    pub fn safety_number(&self, contact: &IdentityKey) -> SafetyNumber {
        SafetyNumber::between(&self.key(), contact)
    }

    /// Marks the contact verified if `digits` is the safety number; returns whether it matched.
    pub fn verify(&mut self, contact: &IdentityKey, digits: &str) -> Result<bool, EngineError> {
        let mut record = self
            .store
            .contact(contact)?
            .ok_or_else(|| EngineError::UnknownContact(contact.peer_id()))?;
        if !self.safety_number(contact).matches(digits) {
            return Ok(false);
        }
        record.verified = true;
        record.key_changed = false;
        self.store.put_contact(&record)?;
        Ok(true)
    }

    /// Marks a contact verified from a scanned QR code or pasted invite link: it must carry the contact's
    /// own identity key. Returns whether it did; a card of someone else verifies nothing.
    pub fn verify_card(&mut self, contact: &IdentityKey, link: &str) -> Result<bool, EngineError> {
        let card = ContactCard::from_invite_link(link)?;
        if card.key() != *contact {
            return Ok(false);
        }
        let digits = self.safety_number(contact);
        self.verify(contact, digits.digits())
    }

    /// Sets a contact's state (accept a request, block, unblock).
    pub fn set_contact_state(
        &mut self,
        contact: &IdentityKey,
        state: ContactState,
    ) -> Result<ContactEntry, EngineError> {
        let mut record = self
            .store
            .contact(contact)?
            .ok_or_else(|| EngineError::UnknownContact(contact.peer_id()))?;
        let accepted = record.state == ContactState::Requested && state == ContactState::Accepted;
        record.state = state;
        self.store.put_contact(&record)?;
        self.requests = None;
        if accepted {
            self.receipts_on_accept(contact, now_ms())?;
        }
        Ok(record)
    }

    /// The contact's card, decoded once per distinct card bytes (decoding checks two or three Ed25519
    /// signatures, more than the rest of sealing a message costs).
    pub(super) fn card_of(&mut self, contact: &ContactEntry) -> Result<ContactCard, EngineError> {
        cached_card(&mut self.cards, contact)
    }

    /// Gives a contact another local name (unique among the contacts, at most
    /// [`crate::store::MAX_LOCAL_NAME_LEN`] bytes).
    pub fn rename_contact(
        &mut self,
        contact: &IdentityKey,
        name: &str,
    ) -> Result<ContactEntry, EngineError> {
        let name = crate::names::clean_name(name)?;
        let contacts = self.store.contacts()?;
        if let Some(other) = contacts
            .iter()
            .find(|c| crate::names::same_name(&c.local_name, &name) && c.key != *contact)
        {
            return Err(EngineError::NameTaken(other.local_name.clone()));
        }
        let mut record = contacts
            .into_iter()
            .find(|c| c.key == *contact)
            .ok_or_else(|| EngineError::UnknownContact(contact.peer_id()))?;
        record.local_name = name;
        self.store.put_contact(&record)?;
        Ok(record)
    }

    /// Removes a contact with its conversation, session and queued mail, in one commit. Whatever they send
    /// later arrives as a new contact request.
    pub fn remove_contact(&mut self, contact: &IdentityKey) -> Result<(), EngineError> {
        let mut batch = self.store.batch()?;
        if !batch.delete_contact(contact)? {
            return Err(EngineError::UnknownContact(contact.peer_id()));
        }
        batch.delete_conversation(contact)?;
        batch.delete_attachments_of(&(*contact).into())?;
        batch.delete_session(contact)?;
        batch.commit()?;
        self.sessions.remove(contact);
        self.requests = None;
        Ok(())
    }
}

/// The contact record to write after a message from `sender` (if any), whether it is a new request, and
/// whether a known contact's agreement key changed.
pub(super) fn contact_after_card(
    sender: IdentityKey,
    contact: Option<ContactEntry>,
    card: Option<ContactCard>,
    now: u64,
) -> (Option<ContactEntry>, bool, bool) {
    match (contact, card) {
        (None, Some(card)) => (
            Some(ContactEntry {
                key: sender,
                card: card.encode().to_vec(),
                local_name: crate::names::sanitize_name(card.display_name(), &sender.peer_id()),
                verified: false,
                state: ContactState::Requested,
                key_changed: false,
                added_ms: now,
            }),
            true,
            false,
        ),
        (Some(mut known), Some(card)) => {
            let change = ContactCard::decode(&known.card)
                .map(|old| ContactCard::compare(&old, &card))
                .unwrap_or(CardChange::Updated);
            let key_changed = change == CardChange::IdentityChanged;
            if matches!(change, CardChange::Updated | CardChange::IdentityChanged) {
                known.card = card.encode().to_vec();
            }
            if key_changed {
                known.verified = false;
                known.key_changed = true;
            }
            (Some(known), false, key_changed)
        }
        (known, None) => (known, false, false),
    }
}

/// A contact's card from the decoded-card cache, decoding (and caching) it if its bytes changed.
pub(super) fn cached_card(
    cards: &mut HashMap<IdentityKey, ContactCard>,
    contact: &ContactEntry,
) -> Result<ContactCard, EngineError> {
    if cards.len() >= MAX_CARDS_IN_MEMORY && !cards.contains_key(&contact.key) {
        cards.clear();
    }
    if let Some(card) = cards.get(&contact.key)
        && card.encode() == contact.card.as_slice()
    {
        return Ok(card.clone());
    }
    let card = ContactCard::decode(&contact.card)?;
    if cards.len() >= crate::store::MAX_CONTACTS as usize {
        cards.clear();
    }
    cards.insert(contact.key, card.clone());
    Ok(card)
}

/// The contact `name_or_peer` names among `contacts`: by peer id, else by name ignoring case (an error
/// when several share it). The one rule the CLI, the app and the engine find contacts by.
pub fn find_contact_in(
    contacts: Vec<crate::api::Contact>,
    name_or_peer: &str,
) -> Result<crate::api::Contact, EngineError> {
    if let Ok(key) = IdentityKey::from_peer_id(name_or_peer)
        && let Some(contact) = contacts.iter().find(|c| c.key == key)
    {
        return Ok(contact.clone());
    }
    let mut matches = contacts
        .into_iter()
        .filter(|c| c.name.eq_ignore_ascii_case(name_or_peer));
    match (matches.next(), matches.next()) {
        (Some(c), None) => Ok(c),
        (Some(_), Some(_)) => Err(EngineError::AmbiguousContact(name_or_peer.to_owned())),
        (None, _) => Err(EngineError::UnknownContact(name_or_peer.to_owned())),
    }
}
