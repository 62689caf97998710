//! Tern's protocol: identities, contact cards, fingerprints, end-to-end sessions, envelopes and their wire
//! codec.
//!
//! This crate is sans-I/O and deterministic: it opens no sockets or files and reads no clock or OS entropy.
//! Time comes in as arguments (`now_ms`, unix seconds for expiries) and randomness from an RNG the caller
//! passes, so a seeded RNG reproduces every byte. docs/protocol.md specifies every format byte by byte.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod address_record;
pub mod card;
pub mod codec;
pub mod crypto;
pub mod envelope;
pub mod file;
pub mod fingerprint;
pub mod group_link;
pub mod group_queue;
pub mod group_wire;
pub mod identity;
mod mailbox_id;
pub mod mailbox_record;
pub mod message;
pub mod pickle;
pub mod ratchet;
pub mod session;
mod session_error;
pub mod timer;

pub use address_record::AddressRecord;
pub use card::{CardChange, CardDetails, CardError, ContactCard, MailboxNode, QrMatrix};
pub use codec::DecodeError;
pub use envelope::{Envelope, EnvelopeId, MailboxId, OpenError, Opened, SealError};
pub use file::{FileAnnouncement, FileHash, FileKey};
pub use fingerprint::{Fingerprint, SafetyNumber};
pub use identity::{Identity, IdentityKey, PublicIdentity, SignedPrekey};
pub use mailbox_record::MailboxRecord;
pub use message::{Body, Content, MessageId, Reply};
pub use pickle::{PickleError, PickleKey};
pub use session::{DecryptError, Decrypted, EncryptError, PeerSessions, SessionId};
