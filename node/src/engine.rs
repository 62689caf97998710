//! The node's messaging logic, with no networking: a profile's identity, card and sessions over its store.
//!
//! Every encryption persists the advanced session in the same durable commit as whatever records the
//! message (history row, outbox entry), before any ciphertext leaves the node, so a crash can never make a
//! chain key be used twice. Every decryption is stored (message, session, dedupe mark, and which envelope
//! carried the message) in one durable commit before the caller acknowledges it; if that commit fails the
//! in-memory session is dropped and reloaded from the store, so the sender's retry decrypts again.

use std::collections::HashMap;
use std::path::Path;

use tern_protocol::envelope::OpenError;
use tern_protocol::{
    Body, CardChange, CardDetails, CardError, ContactCard, Content, DecodeError, DecryptError,
    EncryptError, Envelope, EnvelopeId, Fingerprint, Identity, IdentityKey, MessageId,
    PeerSessions, PickleError, SafetyNumber, SealError,
};
use thiserror::Error;
use tracing::{debug, warn};

use crate::store::{
    Batch, ContactRecord, ContactState, KdfParams, MessageRecord, MessageStatus, OutboxRecord,
    Password, SEEN_RETENTION_MS, Store, StoreError, VaultItem,
};

/// How long mail stays deliverable (7 days), the envelope expiry.
pub const MAIL_TTL_S: u64 = 7 * 24 * 3600;
/// First retry delay for an undelivered envelope; it doubles per attempt up to [`MAX_RETRY_DELAY_MS`].
pub const FIRST_RETRY_DELAY_MS: u64 = 2_000;
/// The longest wait between two delivery attempts.
pub const MAX_RETRY_DELAY_MS: u64 = 10 * 60 * 1000;

/// Why a node operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the profile holds no identity: run `tern-node init` first")]
    NoIdentity,
    #[error("the identity in the profile is unreadable: {0}")]
    Pickle(#[from] PickleError),
    #[error("invalid contact card: {0}")]
    Card(#[from] CardError),
    #[error("no contact named {0:?}")]
    UnknownContact(String),
    #[error("{0:?} matches more than one contact; use the peer id")]
    AmbiguousContact(String),
    #[error("a contact named {0:?} already exists with another key")]
    NameTaken(String),
    #[error("that is your own invite link")]
    OwnCard,
    #[error("the contact is blocked")]
    Blocked,
    #[error("could not encrypt: {0}")]
    Encrypt(#[from] EncryptError),
    #[error("could not seal the envelope: {0}")]
    Seal(#[from] SealError),
    #[error("invalid message: {0}")]
    Content(#[from] DecodeError),
    #[error("a contact name must not be empty")]
    EmptyName,
    #[error("only a failed outgoing message can be sent again")]
    NotRetryable,
}

/// Why a received envelope was not taken.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReceiveError {
    #[error("malformed envelope: {0}")]
    Malformed(#[from] DecodeError),
    #[error("cannot open envelope: {0}")]
    Open(#[from] OpenError),
    #[error("cannot decrypt: {0}")]
    Decrypt(#[from] DecryptError),
    #[error("could not store the message: {0}")]
    Store(#[from] StoreError),
}

/// What a received envelope turned out to be, after it was durably stored.
#[derive(Debug)]
#[non_exhaustive]
pub enum Received {
    /// A new text message.
    Message {
        message: MessageRecord,
        /// Set when this message came from someone not in the contacts: a contact request.
        request: Option<ContactRecord>,
        /// Set when a known contact's agreement key changed.
        key_changed: bool,
    },
    /// A message already stored once.
    Duplicate,
    /// A copy of an envelope whose message is stored already (it can no longer be decrypted: its key is
    /// spent): message `id` from `contact`. Typically the sender never got the ack for the first copy and
    /// deposited this one with a mailbox, so it still shows the message as only sent. Nothing was stored
    /// and the session was not touched.
    Copy {
        contact: IdentityKey,
        id: MessageId,
    },
    /// Receipts moved these outgoing messages to a new status.
    Receipts {
        contact: IdentityKey,
        updated: Vec<(MessageId, MessageStatus)>,
    },
    Typing {
        contact: IdentityKey,
        typing: bool,
    },
    /// From a blocked contact: stored nowhere.
    Dropped,
    /// A content kind this build does not know (from a newer peer).
    Unknown {
        contact: IdentityKey,
        kind: u16,
    },
}

/// What `whoami` shows.
#[derive(Debug, Clone)]
pub struct Whoami {
    pub key: IdentityKey,
    pub name: String,
    pub fingerprint: Fingerprint,
    pub invite_link: String,
}

/// A profile opened for messaging.
pub struct Engine {
    store: Store,
    identity: Identity,
    card: ContactCard,
    sessions: HashMap<IdentityKey, PeerSessions>,
    /// Contacts' cards as decoded (and signature-checked) from the bytes on file, so a send does not verify
    /// the same signatures again. An entry is used only while its bytes equal the contact record's.
    cards: HashMap<IdentityKey, ContactCard>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("key", &self.identity.key())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The retry delay after `attempts` failed attempts.
pub fn retry_delay_ms(attempts: u32) -> u64 {
    FIRST_RETRY_DELAY_MS
        .saturating_mul(1u64 << attempts.min(20))
        .min(MAX_RETRY_DELAY_MS)
}

impl Engine {
    /// Creates a profile: a new identity and card, sealed into a new store.
    pub fn create(
        dir: &Path,
        name: &str,
        password: &Password,
        kdf: KdfParams,
    ) -> Result<Self, EngineError> {
        let mut rng = rand::rng();
        let now = now_ms();
        let identity = Identity::generate(&mut rng, now);
        let card = ContactCard::issue(
            &identity,
            CardDetails {
                display_name: name.to_owned(),
                revision: now,
                ..CardDetails::default()
            },
        )?;
        let mut store = Store::create(dir, password, kdf)?;
        let pickle = identity.pickle(&store.pickle_key(), &mut rng);
        let mut batch = store.batch()?;
        batch.vault_put(VaultItem::IdentityPickle, &pickle)?;
        batch.vault_put(VaultItem::OwnCard, card.encode())?;
        batch.commit()?;
        Ok(Self {
            store,
            identity,
            card,
            sessions: HashMap::new(),
            cards: HashMap::new(),
        })
    }

    /// Opens a profile, rotating the prekey (and re-issuing the card) when it is due.
    pub fn open(dir: &Path, password: &Password) -> Result<Self, EngineError> {
        let store = Store::open(dir, password)?;
        let key = store.pickle_key();
        let pickle = store
            .vault_get(VaultItem::IdentityPickle)?
            .ok_or(EngineError::NoIdentity)?;
        let identity = Identity::unpickle(&key, &pickle)?;
        let card_bytes = store
            .vault_get(VaultItem::OwnCard)?
            .ok_or(EngineError::NoIdentity)?;
        let card = ContactCard::decode(&card_bytes)?;
        let mut engine = Self {
            store,
            identity,
            card,
            sessions: HashMap::new(),
            cards: HashMap::new(),
        };
        engine.rotate_prekey_if_due()?;
        Ok(engine)
    }

    fn rotate_prekey_if_due(&mut self) -> Result<(), EngineError> {
        let mut rng = rand::rng();
        let now = now_ms();
        if !self.identity.rotate_prekey_if_due(&mut rng, now) {
            return Ok(());
        }
        let mut details = self.card.details().clone();
        details.revision = now.max(details.revision + 1);
        let card = ContactCard::issue(&self.identity, details)?;
        let pickle = self.identity.pickle(&self.store.pickle_key(), &mut rng);
        let mut batch = self.store.batch()?;
        batch.vault_put(VaultItem::IdentityPickle, &pickle)?;
        batch.vault_put(VaultItem::OwnCard, card.encode())?;
        batch.commit()?;
        self.card = card;
        debug!("rotated the signed prekey and re-issued the card");
        Ok(())
    }

    pub fn key(&self) -> IdentityKey {
        self.identity.key()
    }

    /// Publishes the servers that hold this profile's mail in its card (re-issued only when they change).
    /// Each server is a binary PeerId and binary multiaddrs; the card keeps at most its bounds' worth.
    pub fn set_mailboxes(
        &mut self,
        servers: Vec<tern_protocol::MailboxNode>,
    ) -> Result<bool, EngineError> {
        let mut servers = servers;
        servers.truncate(tern_protocol::card::MAX_MAILBOXES);
        for server in &mut servers {
            server
                .addresses
                .retain(|a| a.len() <= tern_protocol::card::MAX_ADDRESS_LEN);
            server
                .addresses
                .truncate(tern_protocol::card::MAX_ADDRESSES);
        }
        if self.card.details().mailboxes == servers {
            return Ok(false);
        }
        let mut details = self.card.details().clone();
        details.mailboxes = servers;
        details.revision = now_ms().max(details.revision + 1);
        let card = ContactCard::issue(&self.identity, details)?;
        self.store.vault_put(VaultItem::OwnCard, card.encode())?;
        self.card = card;
        Ok(true)
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn card(&self) -> &ContactCard {
        &self.card
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    pub fn whoami(&self) -> Whoami {
        Whoami {
            key: self.key(),
            name: self.card.display_name().to_owned(),
            fingerprint: Fingerprint::of(&self.key()),
            invite_link: self.card.invite_link(),
        }
    }

    /// Adds (or updates) a contact from an invite link, named `name` or else the card's display name.
    pub fn add_contact(
        &mut self,
        link: &str,
        name: Option<&str>,
    ) -> Result<(ContactRecord, CardChange), EngineError> {
        let card = ContactCard::from_invite_link(link)?;
        if card.key() == self.key() {
            return Err(EngineError::OwnCard);
        }
        let local_name = name.unwrap_or(card.display_name()).trim().to_owned();
        if let Some(other) = self
            .store
            .contacts()?
            .into_iter()
            .find(|c| c.local_name == local_name && c.key != card.key())
        {
            return Err(EngineError::NameTaken(other.local_name));
        }
        let (record, change) = match self.store.contact(&card.key())? {
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
                if existing.state == ContactState::Requested {
                    existing.state = ContactState::Accepted;
                }
                (existing, change)
            }
            None => (
                ContactRecord {
                    key: card.key(),
                    card: card.encode().to_vec(),
                    local_name,
                    verified: false,
                    state: ContactState::Accepted,
                    key_changed: false,
                    added_ms: now_ms(),
                },
                CardChange::Updated,
            ),
        };
        self.store.put_contact(&record)?;
        Ok((record, change))
    }

    /// Finds a contact by local name (case-insensitive) or by peer id.
    pub fn find_contact(&self, name_or_peer: &str) -> Result<ContactRecord, EngineError> {
        if let Ok(key) = IdentityKey::from_peer_id(name_or_peer)
            && let Some(contact) = self.store.contact(&key)?
        {
            return Ok(contact);
        }
        let mut matches = self
            .store
            .contacts()?
            .into_iter()
            .filter(|c| c.local_name.eq_ignore_ascii_case(name_or_peer));
        match (matches.next(), matches.next()) {
            (Some(c), None) => Ok(c),
            (Some(_), Some(_)) => Err(EngineError::AmbiguousContact(name_or_peer.to_owned())),
            (None, _) => Err(EngineError::UnknownContact(name_or_peer.to_owned())),
        }
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
    ) -> Result<ContactRecord, EngineError> {
        let mut record = self
            .store
            .contact(contact)?
            .ok_or_else(|| EngineError::UnknownContact(contact.peer_id()))?;
        record.state = state;
        self.store.put_contact(&record)?;
        Ok(record)
    }

    /// The contact's card, decoded once per distinct card bytes (decoding checks two or three Ed25519
    /// signatures, more than the rest of sealing a message costs).
    fn card_of(&mut self, contact: &ContactRecord) -> Result<ContactCard, EngineError> {
        if let Some(card) = self.cards.get(&contact.key)
            && card.encode() == contact.card.as_slice()
        {
            return Ok(card.clone());
        }
        let card = ContactCard::decode(&contact.card)?;
        if self.cards.len() >= crate::store::MAX_CONTACTS as usize {
            self.cards.clear();
        }
        self.cards.insert(contact.key, card.clone());
        Ok(card)
    }

    /// Loads the sessions with `peer` into memory (from the store, or empty).
    fn load_sessions(&mut self, peer: IdentityKey) -> Result<(), EngineError> {
        if !self.sessions.contains_key(&peer) {
            let loaded = match self.store.session(&peer)? {
                Some(pickle) => PeerSessions::unpickle(&self.store.pickle_key(), &pickle)?,
                None => PeerSessions::new(self.key(), peer),
            };
            self.sessions.insert(peer, loaded);
        }
        Ok(())
    }

    /// Encrypts `body` for `to` and seals it. The caller must persist the session (returned as a pickle)
    /// in the same commit that records the message, before the envelope leaves.
    fn seal(
        &mut self,
        to: &ContactRecord,
        id: Option<MessageId>,
        body: Body,
        now: u64,
    ) -> Result<(Content, Envelope, Vec<u8>), EngineError> {
        if to.state == ContactState::Blocked {
            return Err(EngineError::Blocked);
        }
        let mut rng = rand::rng();
        let their_card = self.card_of(to)?;
        let content = Content {
            id: id.unwrap_or_else(|| MessageId::new_v7(now, &mut rng)),
            sent_at_ms: now,
            body,
        };
        let plaintext = zeroize::Zeroizing::new(content.encode()?);
        let pickle_key = self.store.pickle_key();
        self.load_sessions(to.key)?;
        let (identity, card) = (&self.identity, &self.card);
        let sessions = self
            .sessions
            .entry(to.key)
            .or_insert_with(|| PeerSessions::new(identity.key(), to.key));
        let session_message =
            sessions.encrypt(identity, card, Some(&their_card), &plaintext, &mut rng)?;
        let pickle = sessions.pickle(&pickle_key, &mut rng);
        let envelope = Envelope::seal(
            identity,
            their_card.identity(),
            &session_message,
            now / 1000 + MAIL_TTL_S,
            &mut rng,
        )?;
        Ok((content, envelope, pickle))
    }

    /// Seals `body` for `to` and writes, in one durable commit, whatever `write` adds (history row, outbox
    /// entry, contact update) together with the advanced session. On any failure the in-memory session is
    /// forgotten, so the next send starts again from what the store holds.
    fn send_sealed<T>(
        &mut self,
        to: &IdentityKey,
        id: Option<MessageId>,
        body: Body,
        write: impl FnOnce(
            &mut Batch<'_>,
            &mut ContactRecord,
            &Content,
            &Envelope,
            u64,
        ) -> Result<T, StoreError>,
    ) -> Result<(Content, Envelope, T), EngineError> {
        let mut contact = self
            .store
            .contact(to)?
            .ok_or_else(|| EngineError::UnknownContact(to.peer_id()))?;
        let now = now_ms();
        let result = self
            .seal(&contact, id, body, now)
            .and_then(|(content, envelope, pickle)| {
                let mut batch = self.store.batch()?;
                let written = write(&mut batch, &mut contact, &content, &envelope, now)?;
                batch.put_session(to, &pickle)?;
                batch.commit()?;
                Ok((content, envelope, written))
            });
        if result.is_err() {
            self.sessions.remove(to);
        }
        result
    }

    /// Queues a text message: history row (sending), outbox entry and advanced session, in one commit.
    pub fn send_text(
        &mut self,
        to: &IdentityKey,
        text: &str,
    ) -> Result<(MessageRecord, OutboxRecord), EngineError> {
        let (_, _, queued) = self.send_sealed(
            to,
            None,
            Body::Text(text.to_owned()),
            |batch, contact, content, envelope, now| {
                write_text(batch, contact, content, envelope, now, text)
            },
        )?;
        Ok(queued)
    }

    /// Group commit of [`Self::send_text`]: seals each text in order, then writes every history row,
    /// outbox entry and advanced session in one durable commit. One result per text, in order; none is
    /// durable, and no envelope may leave, before this returns. If the commit fails every text fails, and
    /// the sessions involved are reloaded from the store on their next use.
    pub fn send_texts(
        &mut self,
        texts: &[(IdentityKey, String)],
    ) -> Vec<Result<(MessageRecord, OutboxRecord), EngineError>> {
        if texts.len() <= 1 {
            return texts
                .iter()
                .map(|(to, text)| self.send_text(to, text))
                .collect();
        }
        let now = now_ms();
        let mut recipients: Vec<IdentityKey> = Vec::new();
        // A recipient whose seal failed: its later texts in this group fail too, because its in-memory
        // session may be ahead of what this group writes.
        let mut poisoned: Vec<IdentityKey> = Vec::new();
        let mut sealed = Vec::with_capacity(texts.len());
        for (to, text) in texts {
            if !recipients.contains(to) {
                recipients.push(*to);
            }
            let result = if poisoned.contains(to) {
                Err(EngineError::Store(group_failed(
                    "an earlier message to this contact failed",
                )))
            } else {
                self.seal_text(to, text, now)
            };
            if result.is_err() && !poisoned.contains(to) {
                poisoned.push(*to);
            }
            sealed.push(result);
        }
        let written = self.store.transaction(|batch| {
            let mut queued = Vec::with_capacity(sealed.len());
            for ((to, text), item) in texts.iter().zip(&mut sealed) {
                queued.push(match item {
                    Ok((contact, content, envelope, pickle)) => {
                        let q = write_text(batch, contact, content, envelope, now, text)?;
                        batch.put_session(to, pickle)?;
                        Some(q)
                    }
                    Err(_) => None,
                });
            }
            Ok(queued)
        });
        for to in &poisoned {
            self.sessions.remove(to);
        }
        match written {
            Ok(queued) => sealed
                .into_iter()
                .zip(queued)
                .map(|(item, q)| match (item, q) {
                    (Ok(_), Some(q)) => Ok(q),
                    (Err(e), _) => Err(e),
                    (Ok(_), None) => Err(EngineError::Store(group_failed("not written"))),
                })
                .collect(),
            Err(e) => {
                for to in &recipients {
                    self.sessions.remove(to);
                }
                let reason = e.to_string();
                texts
                    .iter()
                    .map(|_| Err(EngineError::Store(group_failed(&reason))))
                    .collect()
            }
        }
    }

    /// Seals one text for [`Self::send_texts`]; nothing is written.
    fn seal_text(
        &mut self,
        to: &IdentityKey,
        text: &str,
        now: u64,
    ) -> Result<(ContactRecord, Content, Envelope, Vec<u8>), EngineError> {
        let contact = self
            .store
            .contact(to)?
            .ok_or_else(|| EngineError::UnknownContact(to.peer_id()))?;
        let (content, envelope, pickle) =
            self.seal(&contact, None, Body::Text(text.to_owned()), now)?;
        Ok((contact, content, envelope, pickle))
    }

    /// Encrypts a control message (a receipt or typing) and queues it for delivery when `queue` is set;
    /// returns the envelope. The session is persisted before the envelope is returned.
    pub fn send_control(
        &mut self,
        to: &IdentityKey,
        body: Body,
        queue: bool,
    ) -> Result<(MessageId, Envelope), EngineError> {
        let (content, envelope, ()) =
            self.send_sealed(to, None, body, |batch, _, content, envelope, now| {
                if queue {
                    batch.outbox_enqueue(&outbox_entry(to, content, envelope, now))?;
                }
                Ok(())
            })?;
        Ok((content.id, envelope))
    }

    /// Queues a delivery receipt for `ids` (at most [`tern_protocol::message::MAX_RECEIPT_IDS`]) to `to`
    /// and, in the same commit, forgets the envelopes that carried them, so no later copy of one of those
    /// envelopes makes this profile write to the sender again.
    pub fn queue_delivered(
        &mut self,
        to: &IdentityKey,
        ids: Vec<MessageId>,
        envelopes: &[EnvelopeId],
    ) -> Result<(), EngineError> {
        self.send_sealed(
            to,
            None,
            Body::Delivered(ids),
            |batch, _, content, envelope, now| {
                batch.outbox_enqueue(&outbox_entry(to, content, envelope, now))?;
                for answered in envelopes {
                    batch.forget_envelope(answered)?;
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Sends a failed outgoing message again: the same id and text in a new envelope, back to `Sending`
    /// with a fresh outbox entry, in one commit. [`EngineError::NotRetryable`] for any other message.
    pub fn retry(
        &mut self,
        contact: &IdentityKey,
        id: &MessageId,
    ) -> Result<MessageRecord, EngineError> {
        let message = self
            .store
            .message(contact, id)?
            .filter(|m| m.outgoing && m.status == MessageStatus::Failed)
            .ok_or(EngineError::NotRetryable)?;
        let (_, _, retried) = self.send_sealed(
            contact,
            Some(message.id),
            Body::Text(message.text.clone()),
            |batch, _, content, envelope, now| {
                batch.update_message_status(contact, id, MessageStatus::Sending)?;
                batch.outbox_enqueue(&outbox_entry(contact, content, envelope, now))?;
                Ok(MessageRecord {
                    status: MessageStatus::Sending,
                    ..message
                })
            },
        )?;
        Ok(retried)
    }

    /// Gives a contact another local name (unique among the contacts, at most
    /// [`crate::store::MAX_LOCAL_NAME_LEN`] bytes).
    pub fn rename_contact(
        &mut self,
        contact: &IdentityKey,
        name: &str,
    ) -> Result<ContactRecord, EngineError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(EngineError::EmptyName);
        }
        let contacts = self.store.contacts()?;
        if let Some(other) = contacts
            .iter()
            .find(|c| c.local_name == name && c.key != *contact)
        {
            return Err(EngineError::NameTaken(other.local_name.clone()));
        }
        let mut record = contacts
            .into_iter()
            .find(|c| c.key == *contact)
            .ok_or_else(|| EngineError::UnknownContact(contact.peer_id()))?;
        record.local_name = name.to_owned();
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
        batch.delete_session(contact)?;
        batch.commit()?;
        self.sessions.remove(contact);
        Ok(())
    }

    /// Marks received messages read and queues a read receipt for them. Returns the ids that changed.
    pub fn mark_read(
        &mut self,
        contact: &IdentityKey,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>, EngineError> {
        let mut changed = Vec::new();
        for id in ids {
            if let Some(m) = self.store.message(contact, id)?
                && !m.outgoing
                && m.status == MessageStatus::Received
                && self
                    .store
                    .update_message_status(contact, id, MessageStatus::Read)?
            {
                changed.push(*id);
            }
        }
        for chunk in changed.chunks(tern_protocol::message::MAX_RECEIPT_IDS) {
            self.send_control(contact, Body::Read(chunk.to_vec()), true)?;
        }
        Ok(changed)
    }

    /// Opens, decrypts and durably stores one received envelope. Only after this returns `Ok` may the
    /// envelope be acknowledged.
    ///
    /// An envelope that carried a message stored before (the store remembers it by envelope id, across
    /// restarts, for as long as the duplicate check remembers the message) is [`Received::Copy`], found
    /// before any decryption is tried.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, ReceiveError> {
        match self.receive_group(&[bytes]) {
            Ok(outcomes) => outcomes
                .into_iter()
                .next()
                .unwrap_or(Err(ReceiveError::Store(group_failed("no outcome")))),
            Err(e) => Err(e.into()),
        }
    }

    /// Group commit of [`Self::receive`]: opens and decrypts each envelope in order and stores them all
    /// with one durable commit. One outcome per envelope, in order; none may be acknowledged before this
    /// returns. If the group cannot be stored, each envelope is stored on its own instead.
    pub fn receive_many(&mut self, envelopes: &[&[u8]]) -> Vec<Result<Received, ReceiveError>> {
        if envelopes.len() > 1 {
            match self.receive_group(envelopes) {
                Ok(outcomes) => return outcomes,
                Err(e) => {
                    warn!(error = %e, "group commit failed; storing the envelopes one by one")
                }
            }
        }
        envelopes.iter().map(|bytes| self.receive(bytes)).collect()
    }

    /// Decrypts and stores `envelopes` in one write transaction; an `Err` means nothing was stored and
    /// every session the group advanced was dropped from memory (to be reloaded from the store).
    fn receive_group(
        &mut self,
        envelopes: &[&[u8]],
    ) -> Result<Vec<Result<Received, ReceiveError>>, StoreError> {
        let now = now_ms();
        let pickle_key = self.store.pickle_key();
        let mut touched = Vec::new();
        let Self {
            store,
            identity,
            sessions,
            ..
        } = self;
        let result = store.transaction(|batch| {
            let mut outcomes = Vec::with_capacity(envelopes.len());
            for bytes in envelopes {
                outcomes.push(receive_one(
                    batch,
                    identity,
                    sessions,
                    &pickle_key,
                    bytes,
                    now,
                    &mut touched,
                )?);
            }
            // Each advanced session once, in its latest state.
            for sender in &touched {
                if let Some(peer) = sessions.get(sender) {
                    batch.put_session(sender, &peer.pickle(&pickle_key, &mut rand::rng()))?;
                }
            }
            Ok(outcomes)
        });
        if result.is_err() {
            // The commit failed: forget the advanced sessions so the senders' retries decrypt again.
            for sender in &touched {
                self.sessions.remove(sender);
            }
        }
        result
    }

    /// Outbox entries due at `now`, oldest first.
    pub fn outbox_due(&self, now: u64, limit: usize) -> Result<Vec<OutboxRecord>, EngineError> {
        Ok(self.store.outbox_due(now, limit)?)
    }

    /// An envelope was delivered to (or deposited for) its recipient: drop it from the outbox and move the
    /// message on to `status`. Returns whether the message's status changed.
    pub fn delivered(
        &mut self,
        entry: &OutboxRecord,
        status: MessageStatus,
    ) -> Result<bool, EngineError> {
        let changed = self.delivered_many(std::slice::from_ref(entry), status)?;
        Ok(changed.first().copied().unwrap_or(false))
    }

    /// [`Self::delivered`] for several envelopes, in one durable commit. Returns, per entry, whether its
    /// message's status changed.
    pub fn delivered_many(
        &mut self,
        entries: &[OutboxRecord],
        status: MessageStatus,
    ) -> Result<Vec<bool>, EngineError> {
        Ok(self.store.transaction(|batch| {
            let mut changed = Vec::with_capacity(entries.len());
            for entry in entries {
                batch.outbox_remove(&entry.message_id)?;
                changed.push(
                    batch
                        .message(&entry.recipient, &entry.message_id)?
                        .is_some()
                        && batch.update_message_status(
                            &entry.recipient,
                            &entry.message_id,
                            status,
                        )?,
                );
            }
            Ok(changed)
        })?)
    }

    /// A delivery attempt failed: try again later, or give up once the envelope expired.
    /// Returns `Some(status)` when the message's status changed (to `Failed`).
    pub fn attempt_failed(
        &mut self,
        entry: &OutboxRecord,
    ) -> Result<Option<MessageStatus>, EngineError> {
        let now = now_ms();
        if now / 1000 >= entry.expires_at {
            let mut batch = self.store.batch()?;
            batch.outbox_remove(&entry.message_id)?;
            let changed = batch
                .message(&entry.recipient, &entry.message_id)?
                .is_some()
                && batch.update_message_status(
                    &entry.recipient,
                    &entry.message_id,
                    MessageStatus::Failed,
                )?;
            batch.commit()?;
            return Ok(changed.then_some(MessageStatus::Failed));
        }
        let attempts = entry.attempts.saturating_add(1);
        // The store counts the attempt.
        self.store
            .outbox_reschedule(&entry.message_id, now + retry_delay_ms(attempts))?;
        Ok(None)
    }
}

/// A fresh outbox entry for an envelope, due now.
fn outbox_entry(
    to: &IdentityKey,
    content: &Content,
    envelope: &Envelope,
    now: u64,
) -> OutboxRecord {
    OutboxRecord {
        message_id: content.id,
        recipient: *to,
        envelope: envelope.encode(),
        attempts: 0,
        next_attempt_ms: now,
        created_ms: now,
        expires_at: envelope.expires_at,
    }
}

/// The contact record to write after a message from `sender` (if any), whether it is a new request, and
/// whether a known contact's agreement key changed.
fn contact_after_card(
    sender: IdentityKey,
    contact: Option<ContactRecord>,
    card: Option<ContactCard>,
    now: u64,
) -> (Option<ContactRecord>, bool, bool) {
    match (contact, card) {
        (None, Some(card)) => (
            Some(ContactRecord {
                key: sender,
                card: card.encode().to_vec(),
                local_name: card.display_name().to_owned(),
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

/// The error every member of a failed group commit gets (a `StoreError` is not `Clone`).
fn group_failed(reason: &str) -> StoreError {
    StoreError::Io(std::io::Error::other(format!("group commit: {reason}")))
}

/// What sending a text writes: the history row (sending) and the outbox entry; writing to someone who
/// asked to talk accepts them.
fn write_text(
    batch: &mut Batch<'_>,
    contact: &mut ContactRecord,
    content: &Content,
    envelope: &Envelope,
    now: u64,
    text: &str,
) -> Result<(MessageRecord, OutboxRecord), StoreError> {
    let to = contact.key;
    if contact.state == ContactState::Requested {
        contact.state = ContactState::Accepted;
        batch.put_contact(contact)?;
    }
    let message = MessageRecord {
        id: content.id,
        conversation: to,
        outgoing: true,
        sent_at_ms: now,
        received_at_ms: now,
        text: text.to_owned(),
        status: MessageStatus::Sending,
    };
    let outbox = outbox_entry(&to, content, envelope, now);
    batch.insert_message(&message)?;
    batch.outbox_enqueue(&outbox)?;
    Ok((message, outbox))
}

/// One envelope of a receive group, inside its write transaction: the outer `Err` (a store failure)
/// aborts the group; the inner one refuses this envelope only. Advanced sessions are listed in `touched`
/// for the caller to persist.
fn receive_one(
    batch: &mut Batch<'_>,
    identity: &Identity,
    sessions: &mut HashMap<IdentityKey, PeerSessions>,
    pickle_key: &tern_protocol::PickleKey,
    bytes: &[u8],
    now: u64,
    touched: &mut Vec<IdentityKey>,
) -> Result<Result<Received, ReceiveError>, StoreError> {
    let envelope = match Envelope::decode(bytes) {
        Ok(envelope) => envelope,
        Err(e) => return Ok(Err(e.into())),
    };
    let opened = match envelope.open(identity, now / 1000) {
        Ok(opened) => opened,
        Err(e) => return Ok(Err(e.into())),
    };
    let sender = opened.sender;
    let envelope_id = envelope.id();
    let contact = batch.contact(&sender)?;
    if contact
        .as_ref()
        .is_some_and(|c| c.state == ContactState::Blocked)
    {
        return Ok(Ok(Received::Dropped));
    }
    // A copy of an envelope already stored (its key is spent): name what it carried, touch no session.
    if let Some((contact, id)) = batch.envelope(&envelope_id)?
        // The outer seal is bound to its sender, so a copy names the same sender as the original.
        && contact == sender
    {
        return Ok(Ok(Received::Copy { contact, id }));
    }
    let me = identity.key();
    let peer = match sessions.entry(sender) {
        std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
        std::collections::hash_map::Entry::Vacant(slot) => {
            let loaded = match batch.session(&sender)? {
                Some(pickle) => PeerSessions::unpickle(pickle_key, &pickle).unwrap_or_else(|e| {
                    warn!(error = %e, "stored sessions unreadable; starting afresh");
                    PeerSessions::new(me, sender)
                }),
                None => PeerSessions::new(me, sender),
            };
            slot.insert(loaded)
        }
    };
    let decrypted = match peer.decrypt(identity, &opened.session_message) {
        Ok(decrypted) => decrypted,
        Err(e) => return Ok(Err(e.into())),
    };
    if !touched.contains(&sender) {
        touched.push(sender);
    }
    // If the content is malformed the ratchet still moved: the session is kept, the content refused.
    let content = match Content::decode(&decrypted.plaintext) {
        Ok(content) => content,
        Err(e) => return Ok(Err(ReceiveError::Malformed(e))),
    };
    let kind_is_delivered = matches!(content.body, Body::Delivered(_));
    let outcome = match content.body {
        Body::Text(text) => {
            let message = MessageRecord {
                id: content.id,
                conversation: sender,
                outgoing: false,
                sent_at_ms: content.sent_at_ms,
                received_at_ms: now,
                text,
                status: MessageStatus::Received,
            };
            // The store dedupes by (sender, message id), remembering ids past any envelope's life.
            if batch.insert_message(&message)? {
                // Which envelope carried it, durable with it: a later copy can then be answered.
                batch.mark_envelope(
                    &envelope_id,
                    &sender,
                    &message.id,
                    now.saturating_add(SEEN_RETENTION_MS),
                )?;
                let (record, request, key_changed) =
                    contact_after_card(sender, contact, decrypted.new_session_card, now);
                if let Some(record) = &record {
                    batch.put_contact(record)?;
                }
                Received::Message {
                    message,
                    request: if request { record } else { None },
                    key_changed,
                }
            } else {
                Received::Duplicate
            }
        }
        Body::Delivered(ids) | Body::Read(ids) if contact.is_some() => {
            let status = if kind_is_delivered {
                MessageStatus::Delivered
            } else {
                MessageStatus::Read
            };
            let mut updated = Vec::new();
            for id in ids {
                if batch.update_message_status(&sender, &id, status)? {
                    updated.push((id, status));
                }
            }
            Received::Receipts {
                contact: sender,
                updated,
            }
        }
        Body::Typing(typing) if contact.is_some() => Received::Typing {
            contact: sender,
            typing,
        },
        Body::Unknown { kind, .. } => Received::Unknown {
            contact: sender,
            kind,
        },
        // Receipts and typing from strangers mean nothing.
        _ => Received::Dropped,
    };
    Ok(Ok(outcome))
}
