//! The node's messaging logic, with no networking: a profile's identity, card and sessions over its store.
//!
//! What lives where: `mod.rs` holds the [`Engine`] type, its errors and outcomes; `profile.rs` creating and
//! opening a profile; `contacts.rs` the contact list; `send.rs` sealing and queueing messages and receipts;
//! `receive.rs` opening and storing envelopes; `outbox.rs` what delivery reports back (delivered, failed).
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

mod contacts;
pub use contacts::find_contact_in;
mod outbox;
mod profile;
mod receive;
mod send;

use contacts::{cached_card, contact_after_card};
use send::{group_failed, outbox_entry};

use crate::outbox::OutboxEntry;
use crate::store::{
    Batch, ContactRecord, ContactState, KdfParams, MessageRecord, MessageStatus, Password,
    SEEN_RETENTION_MS, Store, StoreError, VaultItem,
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
    #[error(transparent)]
    BadName(#[from] crate::names::NameError),
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

pub use crate::api::Whoami;

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

/// How an envelope reached this node, which decides whether its sender is owed a delivery receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Via {
    /// Handed over by this peer on a direct connection: if it is the sender, the transport's ack tells
    /// it the envelope arrived; any other peer (a LAN mailbox pushing it) earns the sender a receipt.
    Direct(libp2p::PeerId),
    /// Fetched from (or pushed by) a mailbox server: the sender gets a receipt.
    Mailbox,
    /// Handed over by its sender, whoever that turns out to be (tests and tools): no receipt.
    Sender,
}

impl Via {
    /// Whether a message from `sender` that came this way earns `sender` a delivery receipt.
    pub fn owes_receipt(&self, sender: &IdentityKey) -> bool {
        match self {
            Self::Direct(peer) => {
                libp2p::PeerId::from_bytes(&sender.peer_id_bytes()).ok() != Some(*peer)
            }
            Self::Mailbox => true,
            Self::Sender => false,
        }
    }
}

/// One envelope's outcome in [`Engine::receive_many`].
#[derive(Debug)]
pub struct Inbound {
    /// The envelope's id, if it decoded (what a mailbox is acknowledged with).
    pub envelope_id: Option<EnvelopeId>,
    pub outcome: Result<Received, ReceiveError>,
}

/// Milliseconds since the unix epoch (the wall clock the `*_at` methods' wrappers use).
pub use crate::api::now_ms;

/// The retry delay after `attempts` failed attempts.
pub fn retry_delay_ms(attempts: u32) -> u64 {
    FIRST_RETRY_DELAY_MS
        .saturating_mul(1u64 << attempts.min(20))
        .min(MAX_RETRY_DELAY_MS)
}
