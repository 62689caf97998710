//! The encrypted profile store (redb), every value sealed with a key wrapped by the password.
//!
//! # Profile directory
//!
//! One directory per identity holds two files:
//!
//! - [`STORE_FILE`] (`store.redb`): the redb database.
//! - [`LOCK_FILE`] (`lock`): an empty file on which an open [`Store`] holds an exclusive OS lock, so a second
//!   open of the same profile (in this process or another) fails with [`StoreError::InUse`].
//!
//! # Keys
//!
//! A random 32-byte store key is wrapped by `Argon2id(password, salt, params)` (see [`KdfParams`]); the
//! parameters and salt sit next to the wrapped key, so an open uses what the profile was created with.
//! [`Store::change_password`] re-wraps that key in one transaction and re-encrypts nothing;
//! [`Store::rekey`] writes every row again under a new store key, into a fresh file (`rekey.rs`). Subkeys come from the
//! store key by HKDF-SHA-256 with labels `tern/store/v1/seal` (values), `tern/store/v1/blind` (blind
//! indexes) and `tern/store/v1/pickle` ([`Store::pickle_key`]).
//!
//! # Tables
//!
//! `blind(domain, x)` is `HMAC-SHA-256(blind key, u8 len || domain || x)[..16]`; `sealed(v)` is
//! `u8 3 || nonce[12] || ChaCha20-Poly1305(seal key, v || 0x80 || 0x00…)` with associated data
//! `"tern/store/v3/value" || u8 len || table name || row key`, so a value moved to another row or table fails
//! to open (and reads as [`StoreError::Corrupt`]). The padding fills `v` up to a multiple of 64 bytes up to
//! 1 KiB, of 1 KiB beyond (`keys.rs`), so a sealed value's length shows only its bucket.
//!
//! `conv(c)` is `blind(conversation, c.to_bytes())` for a [`crate::api::ConversationId`] `c` (a tag byte,
//! then the contact's identity key for a 1:1 conversation; room for groups); `row(c, id)` is
//! `blind(message, c.to_bytes() ‖ id)`; `out(id)` is `blind(outbox, message id)`.
//!
//! | table           | key                                                         | value                      |
//! |-----------------|-------------------------------------------------------------|----------------------------|
//! | `meta`          | `"format"`, `"keyslot"`                                     | plain: `[3]`, key slot     |
//! | `vault`         | `"identity"`, `"own_card"`                                  | sealed bytes               |
//! | `contacts`      | `blind(contact, identity key)`                              | sealed contact record     |
//! | `sessions`      | `blind(contact, identity key)`                              | sealed session pickle      |
//! |                 | `blind(contact, identity key) ‖ 0x01`                       | sealed `blind(session check, version byte ‖ nonce ‖ tag of the sealed session value)` |
//! |                 | `ff × 16 ‖ 0x02`                                            | sealed XOR of every check  |
//! | `conversation_messages` | `conv(c) ‖ u64 BE position ‖ row(c, id)`            | sealed message record (v3: conversation, sender, timer) |
//! | `conversation_message_index` | `row(c, id)`                                   | sealed `conversation_messages` key |
//! | `conversation_unread` | a `conversation_messages` key of an unread incoming message | empty               |
//! | `outbox_by_recipient` | `blind(contact, recipient) ‖ out(id)`                 | sealed outbox record       |
//! | `outbox_due`    | `u64 BE minute(next_attempt_ms) ‖ out(id)`                  | sealed `outbox_by_recipient` key |
//! | `outbox_index`  | `out(id)`                                                   | sealed `outbox_by_recipient` key |
//! | `seen`          | `blind(seen, sender ‖ message id)`                          | sealed u64 BE expiry (ms) ‖ the blind input (empty in rows written before it was kept) |
//! | `seen_expiry`   | `u64 BE day(expiry) ‖ blind(seen, sender ‖ message id)`     | empty                      |
//! | `envelopes`     | `blind(envelope, envelope id)`                              | sealed u64 BE expiry (ms) ‖ sender identity key ‖ message id ‖ envelope id (missing in rows written before it was kept) |
//! | `envelope_expiry` | `u64 BE day(expiry) ‖ blind(envelope, envelope id)`       | empty                      |
//! | `settings`      | `blind(setting, name)`                                      | sealed bytes               |
//! | `groups`        | `blind(group, group id)`                                    | sealed group state (`group::Group::encode`) |
//! | `group_key_packages` | `blind(key package, hash ref)`                         | sealed private half of an unused KeyPackage |
//! | `attachments`   | `blind(attachment, c.to_bytes() ‖ id)`                      | sealed attachment record (`files.rs`) |
//! | `conversation_timers` | `conv(c)`                                             | sealed timer (`timers.rs`) |
//! | `message_expiry` | `u64 BE hour(expires_at) ‖ row(c, id)`                     | empty                      |
//! | `search_tokens` | `blind(search token, token)[..8] ‖ row(c, id)` (`search.rs`)  | empty                      |
//! |                 | `ff × 8`                                                    | sealed index version ‖ built or build cursor |
//!
//! A conversation's messages are one key range of `conversation_messages` (paging is a range scan). A
//! message's *position* keeps the conversation's order without naming a time: the first one goes near
//! 2^63, a message ordered after all others a random step of 2^24..2^32 after the last, an older one stored
//! late at a random point between its neighbours (the conversation is renumbered if they leave no room;
//! `messages.rs`). `day(t)` is `t` rounded up to the end of its UTC day (an entry is purged no earlier than
//! its exact expiry, which stays in its sealed value), `hour(t)` and `minute(t)` round down (the exact time
//! is in the sealed message or outbox record, which the expiry and the outbox read before acting).
//! The outbox for one recipient is one key range of `outbox_by_recipient` ([`Store::outbox_for`], sorted
//! by the sealed queue time) and the entries due by a time are a range of `outbox_due`
//! ([`Store::outbox_due`]), so neither decrypts the whole outbox.
//!
//! # Formats
//!
//! Format 3 (this build) is format 2 without times in keys (positions, day/hour/minute buckets) and with
//! padded, versioned values. Format 2 keyed messages by `sort_ms`, the outbox by `created_ms` and the
//! expiry indexes by exact times, and sealed values unpadded with no version byte; it is migrated on open
//! like format 1, then compacted, so no page of the file keeps a format-2 key. Format 2 keys messages by conversation and indexes the outbox by recipient. Format 1
//! (`messages`, `message_index` and `unread` keyed by `blind(contact, identity key)`, `outbox` keyed by
//! `blind(outbox, id)`, message records v1) is migrated on open, on a copy (see `migrate.rs`): the
//! original file is replaced only once the copy is complete and synced, and is left untouched if anything
//! fails. A newer format is refused with [`StoreError::UnsupportedVersion`].
//!
//! `envelopes` names, for each incoming message, the envelope that carried it (written in the commit that
//! stores the message, see [`Batch::mark_envelope`]), so a later copy of that envelope, which can no longer
//! be decrypted, still tells who sent which message. It has the retention and bound of `seen`
//! ([`SEEN_RETENTION_MS`], [`MAX_SEEN_ENTRIES`]) and is purged with it; an entry is removed once the
//! delivery receipt it allows has been queued. Both tables are created on open in a profile written
//! before they existed, and so are `groups` and `group_key_packages` (see `groups.rs`).
//!
//! `search_tokens` is created by the first write that touches it; a profile written before it (or whose
//! index has another version) is indexed in bounded batches ([`Store::build_search_index_step`], which the
//! node runs after it starts) and searches scan every message until then (`search.rs`).
//!
//! The check rows and the digest row in `sessions` detect a session row put back from an older copy (see
//! `rollback.rs`): such a row reads as [`StoreError::RolledBack`], and a digest that disagrees with the
//! checks on open drops every session. Both are written on the first open of a profile written before
//! they existed.
//!
//! Only `meta` holds plain values (the format version and the key slot, which is itself an AEAD). Keys hold
//! no names, identity keys, message ids, text or message times; they show counts (per table, per
//! conversation, unread per conversation), order within a conversation, the day duplicate-check entries
//! expire, the hour running timers end, the minute outbox entries are next due, and value sizes to their
//! padding bucket (docs/threat-model.md, the stolen laptop). `search_tokens` adds how many distinct tokens
//! the texts hold, how many messages hold each and which messages share one (`search.rs`).
//!
//! # Readers
//!
//! [`Store::reader`] hands out a [`StoreReader`] (`Clone + Send + Sync`): reads in the user's nouns
//! (`crate::api` contacts, conversations, pages, search) on redb read transactions, which run beside the
//! writer, so a long read never holds up the event loop that owns the [`Store`]. The slow half of a password
//! change ([`StoreReader::rewrap`]) runs there too; [`Store::install_key_slot`] is the fast half.
//!
//! # Durability
//!
//! Every write method, and [`Batch::commit`], commits with redb's default durability
//! ([`redb::Durability::Immediate`]): when it returns `Ok`, the data is on disk. The node acknowledges a
//! received message only after the commit that stored it returned.
//! [`Store::write_detached`] fills a write transaction and hands it back as a [`DetachedCommit`] to be
//! committed on another thread (`detached.rs`); later writes wait for it in redb.
//!
//! # A full or failing disk
//!
//! A write the disk fails (or redb's "previous I/O error" after one) closes the database; an operation at
//! least [`REOPEN_INTERVAL`] later opens it again with the checks an open runs, pausing up to
//! [`MAX_REOPEN_INTERVAL`] between failed tries. Meanwhile every operation fails with
//! [`StoreError::DiskFailing`], and [`Store::health`] says so (see `health.rs`).
//!
//! # Corruption
//!
//! Opening runs redb's integrity check, so a file changed outside redb is reported as
//! [`StoreError::Corrupt`] instead of being trusted. The store never deletes, truncates or recreates a file
//! it cannot open; a value that fails authentication is reported, never overwritten by a read.

mod backup;
mod batch;
mod dedupe;
mod detached;
#[cfg(test)]
mod envelope_tests;
mod files;
mod groups;
mod health;
mod kdf;
mod keys;
mod messages;
mod migrate;
mod outbox;
mod profile;
mod reader;
mod recipients;
mod records;
mod rekey;
#[cfg(test)]
mod rekey_tests;
mod rollback;
mod search;
#[cfg(test)]
mod tamper_tests;
#[cfg(test)]
mod tests;
mod timers;
mod wrappers;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::redb_file::{Failure, from_redb_errors};
use redb::TableDefinition;
use tern_protocol::codec::DecodeError;

use thiserror::Error;

pub use backup::{ExportItem, ImportError};
pub use batch::Batch;
pub use dedupe::EXPIRY_BUCKET_MS;
pub use detached::DetachedCommit;
pub use files::{AttachmentRecord, MAX_ATTACHMENTS, MAX_FAILURE_LEN, bounded_failure};
pub use groups::{MAX_GROUPS, MAX_PENDING_KEY_PACKAGES};
pub use health::{MAX_REOPEN_INTERVAL, REOPEN_INTERVAL, StoreHealth};
pub use kdf::{
    KdfParams, MAX_KDF_ITERATIONS, MAX_KDF_MEMORY_KIB, MAX_KDF_PARALLELISM, MIN_KDF_MEMORY_KIB,
    Password, SALT_LEN,
};
pub use keys::BLIND_LEN;

pub use migrate::MIGRATING_FILE;
pub use outbox::OUTBOX_DUE_BUCKET_MS;
pub use reader::{KeySlotUpdate, StoreReader};
pub use recipients::RecipientUpdate;
pub use records::{MAX_CARD_LEN, MAX_ENVELOPE_LEN, MAX_LOCAL_NAME_LEN, MAX_TEXT_LEN};
pub use rekey::{REKEYING_FILE, RekeyReport};
pub use search::{MAX_SEARCH_CANDIDATES, MAX_SEARCH_TOKENS_PER_MESSAGE, SEARCH_BUILD_BATCH};
pub use timers::{EXPIRY_INDEX_BUCKET_MS, Expired, MAX_EXPIRED_PER_COMMIT};

use keys::Keys;

/// The store format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 3;
/// The oldest store format this build opens (and migrates to [`FORMAT_VERSION`]).
pub const OLDEST_FORMAT_VERSION: u8 = 1;
/// The redb file inside a profile directory.
pub const STORE_FILE: &str = "store.redb";
/// The lock file inside a profile directory.
pub const LOCK_FILE: &str = "lock";
/// At most this many envelopes wait in the outbox.
pub const MAX_OUTBOX_ENTRIES: u64 = 10_000;
/// At most this many duplicate-check entries are kept; past it the oldest (first to expire) are dropped.
pub const MAX_SEEN_ENTRIES: u64 = 200_000;
/// At most this many contacts.
pub const MAX_CONTACTS: u64 = 10_000;
/// How long a received message id is remembered to drop duplicates: 30 days, longer than any mailbox keeps
/// mail (FACTS: Session 14 days, SimpleX 21 days).
pub const SEEN_RETENTION_MS: u64 = 30 * 24 * 3600 * 1000;
/// Longest identity pickle or own card kept in the vault.
pub const MAX_VAULT_VALUE_LEN: usize = 1024 * 1024;
/// Longest session pickle.
pub const MAX_SESSION_PICKLE_LEN: usize = 4 * 1024 * 1024;
/// Longest setting name, in bytes.
pub const MAX_SETTING_NAME_LEN: usize = 128;
/// Longest setting value.
pub const MAX_SETTING_VALUE_LEN: usize = 64 * 1024;
/// Most results one search returns.
pub const MAX_SEARCH_RESULTS: usize = 500;

type Bytes = &'static [u8];
type BytesTable = TableDefinition<'static, Bytes, Bytes>;
type UnitTable = TableDefinition<'static, Bytes, ()>;

const META: TableDefinition<'static, &'static str, Bytes> = TableDefinition::new("meta");
const VAULT: TableDefinition<'static, &'static str, Bytes> = TableDefinition::new("vault");
const CONTACTS: BytesTable = TableDefinition::new("contacts");
const SESSIONS: BytesTable = TableDefinition::new("sessions");
const CONV_MESSAGES: BytesTable = TableDefinition::new("conversation_messages");
const CONV_MESSAGE_INDEX: BytesTable = TableDefinition::new("conversation_message_index");
const CONV_UNREAD: UnitTable = TableDefinition::new("conversation_unread");
const OUTBOX_ROWS: BytesTable = TableDefinition::new("outbox_by_recipient");
const OUTBOX_DUE: BytesTable = TableDefinition::new("outbox_due");
const OUTBOX_INDEX: BytesTable = TableDefinition::new("outbox_index");

/// Every table of format 2 with byte values.
const BYTES_TABLES: [BytesTable; 9] = [
    CONTACTS,
    SESSIONS,
    CONV_MESSAGES,
    CONV_MESSAGE_INDEX,
    OUTBOX_ROWS,
    OUTBOX_DUE,
    OUTBOX_INDEX,
    SEEN,
    SETTINGS,
];
const SEEN: BytesTable = TableDefinition::new("seen");
const SEEN_EXPIRY: UnitTable = TableDefinition::new("seen_expiry");
const ENVELOPES: BytesTable = TableDefinition::new("envelopes");
const ENVELOPE_EXPIRY: UnitTable = TableDefinition::new("envelope_expiry");
const SETTINGS: BytesTable = TableDefinition::new("settings");

const META_FORMAT: &str = "format";
const META_KEYSLOT: &str = "keyslot";

/// Why a store operation failed. Messages never contain key material, passwords, names or message text.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The password does not unwrap the store key.
    #[error("wrong password")]
    WrongPassword,
    /// The profile is already open, in this process or another.
    #[error("the profile is already open in this or another process")]
    InUse,
    /// No profile exists at the path.
    #[error("no profile at {}", .0.display())]
    NotFound(PathBuf),
    /// `create` found a profile already at the path.
    #[error("a profile already exists at {}", .0.display())]
    AlreadyExists(PathBuf),
    /// The store file or one of its values is damaged (or was changed outside Tern).
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// The store was written by a newer (or unknown) format.
    #[error("store format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The version found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// A contact's session on file is not the one last written (put back from an older copy): using it
    /// could reuse message keys, so it is not used (see `rollback.rs`).
    #[error("a session on file was rolled back to an older copy")]
    RolledBack,
    /// A value this store format has no row for (a message whose sender or recipients do not fit its
    /// conversation).
    #[error("cannot store this: {0}")]
    Unsupported(&'static str),
    /// Argon2id parameters outside the accepted bounds.
    #[error("invalid key derivation parameters: {0}")]
    InvalidKdfParams(&'static str),
    /// A value is longer than its bound.
    #[error("{field} is {len} bytes, at most {max} allowed")]
    TooLong {
        /// What was too long.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The outbox holds [`MAX_OUTBOX_ENTRIES`] entries already.
    #[error("the outbox is full ({max} entries)")]
    OutboxFull {
        /// The bound.
        max: u64,
    },
    /// A table holds as many rows as it may ([`MAX_GROUPS`], [`MAX_PENDING_KEY_PACKAGES`]).
    #[error("too many {what} (at most {max})")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// The bound.
        max: u64,
    },
    /// The store holds [`MAX_CONTACTS`] contacts already.
    #[error("the contact list is full ({max} contacts)")]
    ContactsFull {
        /// The bound.
        max: u64,
    },
    /// A file system error around the database (directory, lock file).
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// Any other database error. (Both causes are printed in the message, not also returned as sources.)
    #[error("database error: {0}")]
    Database(Box<redb::Error>),
    /// The disk under the profile failed a write (it is full, or failing): nothing was saved, and the
    /// store refuses every operation until it has opened its database again (see `health.rs`).
    #[error("could not save: the disk is full or failing; Tern will try again")]
    DiskFailing,
}

impl StoreError {
    /// Whether this is [`StoreError::DiskFailing`]: worth trying again later, and already logged once.
    pub fn is_disk_failing(&self) -> bool {
        matches!(self, Self::DiskFailing)
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::InUse => Self::InUse,
            Failure::Corrupt(reason) => Self::Corrupt(reason),
            Failure::Other(err) => Self::Database(err),
        }
    }
}

from_redb_errors!(StoreError);

fn corrupt(what: &str, err: DecodeError) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

/// Which secret blob of the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultItem {
    /// This profile's identity, as a `tern_protocol::Identity` pickle.
    IdentityPickle,
    /// This profile's own encoded contact card.
    OwnCard,
}

impl VaultItem {
    fn row(self) -> &'static str {
        match self {
            Self::IdentityPickle => "identity",
            Self::OwnCard => "own_card",
        }
    }
}

/// An open profile. Holds the profile's lock file until dropped.
///
/// Reads take `&self`; writes take `&mut self`, so a [`Batch`] in progress excludes every other write at
/// compile time. Every write commits durably before it returns (see the module docs).
pub struct Store {
    // Field order is drop order: the database closes before the lock is released (unless a
    // [`StoreReader`] still holds it open).
    shared: Arc<health::Shared>,
    keys: Arc<Keys>,
    dir: PathBuf,
    _lock: File,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Without the profile lock, a reader left behind must not open the file again.
        self.shared.release();
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}
