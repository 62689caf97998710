//! The node's messaging logic, with no networking: a profile's identity, card and sessions over its store.
//!
//! What lives where: `mod.rs` holds the [`Engine`] type, its errors and outcomes; `profile.rs` creating and
//! opening a profile; `contacts.rs` the contact list; `send.rs` sealing and queueing messages and receipts;
//! `receive.rs` opening and storing envelopes; `outbox.rs` what delivery reports back (delivered, failed).
//!
//! No ciphertext leaves the node under a message key that the session on file does not cover: a session
//! is stored with its sending chain reserved some keys ahead (docs/protocol.md §8.3), and an encryption
//! past the reservation persists the advanced session, reserving again, in the same durable commit as
//! whatever records the message (history row, outbox entry) before the envelope leaves; so a crash can
//! never make a chain key be used twice. Texts whose keys are reserved may leave while their rows commit
//! (`reserved.rs`). Every decryption is stored (message, session, dedupe mark, and which envelope
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
mod files;
pub use contacts::find_contact_in;
mod outbox;
mod profile;
mod receive;
mod reseal;
mod reserved;
mod send;
mod timers;
pub(crate) use timers::timer_line;
pub use timers::timer_words;

pub use reserved::ReservedSends;

use contacts::{cached_card, contact_after_card};
use send::{group_failed, outbox_entry};

use crate::api::{ContactState, Message, MessageStatus};
use crate::contact::ContactEntry;
use crate::outbox::OutboxEntry;
use crate::privacy::PrivacySettings;
use crate::store::{Batch, KdfParams, Password, SEEN_RETENTION_MS, Store, StoreError, VaultItem};

/// Message requests (contacts in [`ContactState::Requested`]) kept at once. A stranger's first message
/// past it is refused (acknowledged, stored nowhere), so a flood of strangers can neither fill the contact
/// table nor keep its mail coming back; accepted contacts and their mail are untouched by it.
pub const MAX_REQUESTS: u64 = 1_000;
/// Peers whose sessions are held decoded in memory; past it the cache is emptied (every session in it
/// is already durable, so it is read again from the store when next needed).
pub const MAX_SESSIONS_IN_MEMORY: usize = 1_024;
/// Contacts' decoded cards held in memory; past it the cache is emptied.
pub const MAX_CARDS_IN_MEMORY: usize = 1_024;
/// When a message request is accepted, delivery receipts are sent for at most this many of the newest
/// messages it holds (the ones a request received without a receipt).
pub const MAX_RECEIPTS_ON_ACCEPT: usize = 500;
/// How often a running node checks whether its signed prekey is due for rotation (the prekey itself
/// rotates every 7 days, `tern_protocol::identity::PREKEY_ROTATION_MS`).
pub const PREKEY_CHECK_INTERVAL_MS: u64 = 3600 * 1000;
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
    Pickle(PickleError),
    /// A card error says "invalid contact card" or "invite link ..." itself.
    #[error(transparent)]
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
    Encrypt(EncryptError),
    #[error("could not seal the envelope: {0}")]
    Seal(SealError),
    #[error("invalid message: {0}")]
    Content(DecodeError),
    #[error("a contact name must not be empty")]
    EmptyName,
    #[error(transparent)]
    BadName(#[from] crate::names::NameError),
    #[error("only a failed outgoing message can be sent again")]
    NotRetryable,
    #[error("no such message")]
    UnknownMessage,
    /// Receipts and typing go only to accepted contacts: a message request learns nothing (not that it
    /// arrived, not that the user is online) until the user accepts it or writes back.
    #[error("the contact has not been accepted yet: accept the request first")]
    NotAccepted,
}

impl EngineError {
    /// Whether the profile's disk is full or failing ([`StoreError::DiskFailing`]): the store says so in
    /// the log once per outage, so callers need not.
    pub fn is_disk_failing(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_disk_failing())
    }
}

/// Why a received envelope was not taken.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReceiveError {
    #[error("malformed envelope: {0}")]
    Malformed(DecodeError),
    #[error("cannot open envelope: {0}")]
    Open(OpenError),
    #[error("cannot decrypt: {0}")]
    Decrypt(DecryptError),
    #[error("could not store the message: {0}")]
    Store(StoreError),
}

// Each cause is printed in the message above, so it is not also a `source` (said once under `{:#}`).
tern_protocol::cause_in_message!(
    PickleError => EngineError::Pickle,
    EncryptError => EngineError::Encrypt,
    SealError => EngineError::Seal,
    DecodeError => EngineError::Content,
    DecodeError => ReceiveError::Malformed,
    OpenError => ReceiveError::Open,
    DecryptError => ReceiveError::Decrypt,
    StoreError => ReceiveError::Store,
);

/// What a received envelope turned out to be, after it was durably stored.
#[derive(Debug)]
#[non_exhaustive]
pub enum Received {
    /// A new text message.
    Message {
        message: Message,
        /// Set when this message came from someone not in the contacts: a contact request.
        request: Option<ContactEntry>,
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
    /// A contact re-issued its card (a new prekey, mailboxes or name) and the newer card is on file.
    CardUpdated {
        contact: ContactEntry,
        /// Set when the card carries another agreement key: the verified mark was dropped.
        key_changed: bool,
    },
    /// From a blocked contact, a receipt or typing from a stranger, or a stranger's first message past
    /// [`MAX_REQUESTS`]: stored nowhere (and acknowledged).
    Dropped,
    /// A group body (content kinds 0x0100-0x01ff, docs/protocol.md §18.4) from an accepted contact, for
    /// the node's groups to handle.
    Group {
        contact: IdentityKey,
        kind: u16,
        data: Vec<u8>,
    },
    /// A content kind this build does not know (from a newer peer).
    Unknown {
        contact: IdentityKey,
        kind: u16,
    },
}

pub use crate::api::Whoami;

/// Where the engine's randomness comes from (identity and session keys, nonces, message ids): the OS by
/// default ([`os_rng`]); a test passes a seeded generator ([`Engine::create_with_rng`],
/// [`Engine::set_rng`]) to replay a run.
pub type EngineRng = Box<dyn rand::CryptoRng + Send>;

/// A cryptographic generator seeded from the operating system.
pub fn os_rng() -> EngineRng {
    Box::new(rand::make_rng::<rand::rngs::StdRng>())
}

/// A profile opened for messaging.
pub struct Engine {
    store: Store,
    rng: EngineRng,
    identity: Identity,
    card: ContactCard,
    sessions: HashMap<IdentityKey, PeerSessions>,
    /// Contacts' cards as decoded (and signature-checked) from the bytes on file, so a send does not verify
    /// the same signatures again. An entry is used only while its bytes equal the contact record's.
    cards: HashMap<IdentityKey, ContactCard>,
    /// How many message requests the store holds, once counted (`None`: count again; any change to the
    /// contacts other than a new request resets it).
    requests: Option<u64>,
    /// Contacts whose outboxes have news since the node last asked ([`Engine::take_card_updates`]): a
    /// re-issued card was queued for them, or what waited for them was sealed again (`reseal.rs`).
    card_updates: Vec<IdentityKey>,
    /// When the next message disappears (`timers.rs`), unix milliseconds.
    next_expiry: Option<u64>,
    /// When the store was last compacted after messages expired.
    last_compact: Option<std::time::Instant>,
    /// Read receipts and typing indicators on or off (`crate::privacy`), as last loaded or saved.
    privacy: crate::privacy::PrivacySettings,
    /// The live group links of this profile (docs/protocol.md §18.11): a stranger's join request naming
    /// one makes the stranger a contact; any other content from a stranger but a text is dropped.
    join_tokens: std::collections::HashSet<tern_protocol::group_link::LinkToken>,
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
