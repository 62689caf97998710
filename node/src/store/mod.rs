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
//! Changing the password re-wraps that key in one transaction and re-encrypts nothing. Subkeys come from the
//! store key by HKDF-SHA-256 with labels `tern/store/v1/seal` (values), `tern/store/v1/blind` (blind
//! indexes) and `tern/store/v1/pickle` ([`Store::pickle_key`]).
//!
//! # Tables
//!
//! `blind(domain, x)` is `HMAC-SHA-256(blind key, u8 len || domain || x)[..16]`; `sealed(v)` is
//! `nonce[12] || ChaCha20-Poly1305(seal key, v)` with associated data
//! `"tern/store/v1/value" || u8 len || table name || row key`, so a value moved to another row or table fails
//! to open (and reads as [`StoreError::Corrupt`]).
//!
//! `conv(c)` is `blind(conversation, c.to_bytes())` for a [`crate::api::ConversationId`] `c` (a tag byte,
//! then the contact's identity key for a 1:1 conversation; room for groups); `row(c, id)` is
//! `blind(message, c.to_bytes() ‖ id)`; `out(id)` is `blind(outbox, message id)`.
//!
//! | table           | key                                                         | value                      |
//! |-----------------|-------------------------------------------------------------|----------------------------|
//! | `meta`          | `"format"`, `"keyslot"`                                     | plain: `[2]`, key slot     |
//! | `vault`         | `"identity"`, `"own_card"`                                  | sealed bytes               |
//! | `contacts`      | `blind(contact, identity key)`                              | sealed [`ContactRecord`]   |
//! | `sessions`      | `blind(contact, identity key)`                              | sealed session pickle      |
//! | `conversation_messages` | `conv(c) ‖ u64 BE sort_ms ‖ row(c, id)`             | sealed [`MessageRecord`] (v2: conversation and sender) |
//! | `conversation_message_index` | `row(c, id)`                                   | sealed `conversation_messages` key |
//! | `conversation_unread` | a `conversation_messages` key of an unread incoming message | empty               |
//! | `outbox_by_recipient` | `blind(contact, recipient) ‖ u64 BE created_ms ‖ out(id)` | sealed [`crate::outbox::OutboxEntry`]    |
//! | `outbox_due`    | `u64 BE next_attempt_ms ‖ u64 BE created_ms ‖ out(id)`      | sealed `outbox_by_recipient` key |
//! | `outbox_index`  | `out(id)`                                                   | sealed `outbox_by_recipient` key |
//! | `seen`          | `blind(seen, sender ‖ message id)`                          | sealed u64 BE expiry (ms)  |
//! | `seen_expiry`   | `u64 BE expiry ‖ blind(seen, sender ‖ message id)`          | empty                      |
//! | `envelopes`     | `blind(envelope, envelope id)`                              | sealed u64 BE expiry (ms) ‖ sender identity key ‖ message id |
//! | `envelope_expiry` | `u64 BE expiry ‖ blind(envelope, envelope id)`            | empty                      |
//! | `settings`      | `blind(setting, name)`                                      | sealed bytes               |
//!
//! A conversation's messages are one key range of `conversation_messages` (paging is a range scan); the
//! outbox for one recipient is one key range of `outbox_by_recipient` ([`Store::outbox_for`]) and the
//! entries due by a time are one range of `outbox_due` ([`Store::outbox_due`]), so neither decrypts the
//! whole outbox.
//!
//! # Formats
//!
//! Format 2 (this build) keys messages by conversation and indexes the outbox by recipient. Format 1
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
//! before they existed.
//!
//! Only `meta` holds plain values (the format version and the key slot, which is itself an AEAD). Keys hold
//! no names, identity keys, message ids or text; they do show timestamps (ordering), counts and sizes.
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
//!
//! # Corruption
//!
//! Opening runs redb's integrity check, so a file changed outside redb is reported as
//! [`StoreError::Corrupt`] instead of being trusted. The store never deletes, truncates or recreates a file
//! it cannot open; a value that fails authentication is reported, never overwritten by a read.

mod batch;
mod kdf;
mod keys;
mod migrate;
mod reader;
mod records;
#[cfg(test)]
mod tests;

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::redb_file::{Failure, Mode, from_redb_errors, open_checked};
use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition, TableHandle};
use tern_protocol::codec::DecodeError;
use tern_protocol::crypto::SecretKey;
use tern_protocol::{EnvelopeId, IdentityKey, MessageId, PickleKey};

use crate::api::ConversationId;
use thiserror::Error;
use zeroize::Zeroizing;

pub use batch::{Batch, ConversationSummary, MessageCursor, MessagePage};
pub use kdf::{
    KdfParams, MAX_KDF_ITERATIONS, MAX_KDF_MEMORY_KIB, MAX_KDF_PARALLELISM, MIN_KDF_MEMORY_KIB,
    Password, SALT_LEN,
};
pub use keys::BLIND_LEN;
pub use migrate::MIGRATING_FILE;
pub use reader::{KeySlotUpdate, StoreReader};
pub(crate) use reader::{contact_from_record, message_from_record, status_to_api};
pub use records::{
    ContactRecord, ContactState, MAX_CARD_LEN, MAX_ENVELOPE_LEN, MAX_LOCAL_NAME_LEN, MAX_TEXT_LEN,
    MESSAGE_RECORD_VERSION, MessageRecord, MessageStatus, RECORD_VERSION,
};

use records::OutboxRecord;

use kdf::KeySlot;
use keys::Keys;

/// The store format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 2;
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
    /// The store holds [`MAX_CONTACTS`] contacts already.
    #[error("the contact list is full ({max} contacts)")]
    ContactsFull {
        /// The bound.
        max: u64,
    },
    /// A file system error around the database (directory, lock file).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] Box<redb::Error>),
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
    db: Arc<Database>,
    keys: Arc<Keys>,
    dir: PathBuf,
    _lock: File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn lock_profile(dir: &Path) -> Result<File, StoreError> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::InUse),
        Err(TryLockError::Error(err)) => Err(StoreError::Io(err)),
    }
}

fn open_database(path: &Path) -> Result<Database, StoreError> {
    Ok(open_checked(path, Mode::OpenExisting)?)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    // Makes the rename that published the store durable. Directories cannot be opened on every platform.
    if cfg!(unix) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Store {
    /// Creates a new profile in `dir` (created if missing) with a fresh random store key wrapped under
    /// `password` with `params`.
    ///
    /// The database is written under a temporary name and renamed into place once complete, so a profile
    /// directory holds either a whole store or none. Fails with [`StoreError::AlreadyExists`] if `dir`
    /// already holds a store.
    pub fn create(
        dir: impl AsRef<Path>,
        password: &Password,
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        params.validate()?;
        fs::create_dir_all(dir)?;
        let lock = lock_profile(dir)?;
        let path = dir.join(STORE_FILE);
        if path.try_exists()? {
            return Err(StoreError::AlreadyExists(dir.to_owned()));
        }
        let store_key = SecretKey::random(&mut rand::rng());
        let slot = KeySlot::wrap(&store_key, password, params)?;

        let tmp = dir.join(format!("{STORE_FILE}.new"));
        if tmp.try_exists()? {
            // Left by a create that did not finish; it never held a usable profile.
            fs::remove_file(&tmp)?;
        }
        {
            let db = Database::create(&tmp)?;
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                meta.insert(META_FORMAT, [FORMAT_VERSION].as_slice())?;
                meta.insert(META_KEYSLOT, slot.encode().as_slice())?;
                txn.open_table(VAULT)?;
                for table in BYTES_TABLES {
                    txn.open_table(table)?;
                }
                txn.open_table(ENVELOPES)?;
                for table in [CONV_UNREAD, SEEN_EXPIRY, ENVELOPE_EXPIRY] {
                    txn.open_table(table)?;
                }
            }
            txn.commit()?;
            db.close()?;
        }
        fs::rename(&tmp, &path)?;
        sync_dir(dir)?;
        let db = open_database(&path)?;
        Ok(Self {
            db: Arc::new(db),
            keys: Arc::new(Keys::derive(store_key)),
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    /// Opens the profile in `dir` with `password`.
    ///
    /// Errors: [`StoreError::NotFound`] if there is no store, [`StoreError::InUse`] if it is open already,
    /// [`StoreError::Corrupt`] if the file is damaged, [`StoreError::WrongPassword`],
    /// [`StoreError::UnsupportedVersion`] if a newer build wrote it.
    ///
    /// A format-1 profile is migrated to format 2 first (after the password is checked), on a copy that
    /// replaces the file only once complete; if the migration fails, its error is returned and the file
    /// is left as it was.
    pub fn open(dir: impl AsRef<Path>, password: &Password) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        let path = dir.join(STORE_FILE);
        if !path.try_exists()? {
            return Err(StoreError::NotFound(dir.to_owned()));
        }
        let lock = lock_profile(dir)?;
        let (format, slot) = read_header(&path)?;
        let store_key = slot.unwrap_key(password)?;
        if format < FORMAT_VERSION {
            migrate::migrate_v1(dir, &store_key)?;
        }
        let db = open_database(&path)?;
        if read_format(&db)? != FORMAT_VERSION {
            return Err(StoreError::Corrupt("the migration did not finish".into()));
        }
        check_tables(&db)?;
        add_envelope_tables(&db)?;
        Ok(Self {
            db: Arc::new(db),
            keys: Arc::new(Keys::derive(store_key)),
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    /// Re-wraps the store key under `new`, keeping the Argon2id parameters. Data is not re-encrypted; the
    /// change is one transaction. [`StoreError::WrongPassword`] if `old` is not the current password.
    /// Runs two Argon2id derivations on the calling thread: off the event loop, use
    /// [`StoreReader::rewrap`] there and [`Self::install_key_slot`] here.
    pub fn change_password(&mut self, old: &Password, new: &Password) -> Result<(), StoreError> {
        let update = self.reader().rewrap(old, new)?;
        self.install_key_slot(update)
    }

    /// Installs a key slot made by [`StoreReader::rewrap`] (durable on return). A slot that does not
    /// decode is refused as [`StoreError::Corrupt`].
    pub fn install_key_slot(&mut self, update: KeySlotUpdate) -> Result<(), StoreError> {
        KeySlot::decode(&update.slot).map_err(|err| corrupt("key slot", err))?;
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(META_KEYSLOT, update.slot.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Like [`Self::change_password`], with new Argon2id parameters.
    pub fn change_password_with(
        &mut self,
        old: &Password,
        new: &Password,
        params: KdfParams,
    ) -> Result<(), StoreError> {
        params.validate()?;
        let slot = read_keyslot(self.db.as_ref())?;
        let current = slot.unwrap_key(old)?;
        if current.as_bytes() != self.keys.store_key().as_bytes() {
            return Err(StoreError::WrongPassword);
        }
        let new_slot = KeySlot::wrap(self.keys.store_key(), new, params)?;
        self.install_key_slot(KeySlotUpdate {
            slot: new_slot.encode(),
        })
    }

    /// A read-only handle for other threads (see [`StoreReader`]).
    pub fn reader(&self) -> StoreReader {
        StoreReader::new(Arc::clone(&self.db), Arc::clone(&self.keys))
    }

    /// The Argon2id parameters the store key is currently wrapped with.
    pub fn kdf_params(&self) -> Result<KdfParams, StoreError> {
        Ok(read_keyslot(self.db.as_ref())?.params())
    }

    /// The key the node pickles its identity and sessions with, derived from the store key by HKDF under
    /// the label `tern/store/v1/pickle`.
    pub fn pickle_key(&self) -> PickleKey {
        self.keys.pickle_key()
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a write transaction. Nothing it does is visible or durable until [`Batch::commit`]; dropping
    /// it without committing discards it.
    pub fn batch(&mut self) -> Result<Batch<'_>, StoreError> {
        Batch::begin(&self.db, &self.keys)
    }

    /// Runs `f` in one write transaction and commits it durably if `f` returns `Ok`; on `Err` nothing is
    /// written.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut batch = self.batch()?;
        let out = f(&mut batch)?;
        batch.commit()?;
        Ok(out)
    }

    fn read(&self) -> Result<batch::Reader<'_>, StoreError> {
        batch::Reader::begin(&self.db, &self.keys)
    }

    // ---- vault and settings ----

    /// A vault item, if set.
    pub fn vault_get(&self, item: VaultItem) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.read()?.vault_get(item)
    }

    /// Sets a vault item (durable on return).
    pub fn vault_put(&mut self, item: VaultItem, value: &[u8]) -> Result<(), StoreError> {
        self.transaction(|b| b.vault_put(item, value))
    }

    /// A setting, if set.
    pub fn setting_get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.read()?.setting_get(name)
    }

    /// Sets a setting (durable on return).
    pub fn setting_put(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.transaction(|b| b.setting_put(name, value))
    }

    /// Removes a setting; `true` if it was set (durable on return).
    pub fn setting_delete(&mut self, name: &str) -> Result<bool, StoreError> {
        self.transaction(|b| b.setting_delete(name))
    }

    // ---- contacts and sessions ----

    /// The contact with this identity key, if any.
    pub fn contact(&self, key: &IdentityKey) -> Result<Option<ContactRecord>, StoreError> {
        self.read()?.contact(key)
    }

    /// Every contact, oldest first.
    pub fn contacts(&self) -> Result<Vec<ContactRecord>, StoreError> {
        self.read()?.contacts()
    }

    /// Adds or replaces a contact (durable on return). [`StoreError::ContactsFull`] past [`MAX_CONTACTS`].
    pub fn put_contact(&mut self, contact: &ContactRecord) -> Result<(), StoreError> {
        self.transaction(|b| b.put_contact(contact))
    }

    /// Removes a contact; `true` if it existed (durable on return). Its session and messages stay.
    pub fn delete_contact(&mut self, key: &IdentityKey) -> Result<bool, StoreError> {
        self.transaction(|b| b.delete_contact(key))
    }

    /// The session pickle for a contact, if any.
    pub fn session(&self, contact: &IdentityKey) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.read()?.session(contact)
    }

    /// Stores the session pickle for a contact (durable on return).
    pub fn put_session(&mut self, contact: &IdentityKey, pickle: &[u8]) -> Result<(), StoreError> {
        self.transaction(|b| b.put_session(contact, pickle))
    }

    /// Removes the session pickle for a contact; `true` if it existed (durable on return).
    pub fn delete_session(&mut self, contact: &IdentityKey) -> Result<bool, StoreError> {
        self.transaction(|b| b.delete_session(contact))
    }

    // ---- messages ----

    /// Stores a message; `false` if it was already stored (or, for an incoming message, already seen), in
    /// which case nothing changes. Durable on return.
    pub fn insert_message(&mut self, message: &MessageRecord) -> Result<bool, StoreError> {
        self.transaction(|b| b.insert_message(message))
    }

    /// Moves a message to `status` if [`MessageStatus::can_become`] allows it; `false` if the message is
    /// unknown or the move is not allowed. Durable on return.
    pub fn update_message_status(
        &mut self,
        conversation: &IdentityKey,
        id: &MessageId,
        status: MessageStatus,
    ) -> Result<bool, StoreError> {
        self.transaction(|b| b.update_message_status(conversation, id, status))
    }

    /// One message, if stored.
    pub fn message(
        &self,
        conversation: &IdentityKey,
        id: &MessageId,
    ) -> Result<Option<MessageRecord>, StoreError> {
        self.read()?
            .message(&ConversationId::Direct(*conversation), id)
    }

    /// The newest `limit` messages of a conversation before `before` (or the newest of all), oldest first.
    pub fn conversation_page(
        &self,
        conversation: &IdentityKey,
        before: Option<&MessageCursor>,
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        self.read()?
            .conversation_page(&ConversationId::Direct(*conversation), before, limit)
    }

    /// Unread incoming messages in a conversation.
    pub fn unread_count(&self, conversation: &IdentityKey) -> Result<u64, StoreError> {
        self.read()?
            .unread_count(&ConversationId::Direct(*conversation))
    }

    /// Every conversation with its last message and unread count, most recent first.
    pub fn conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        self.read()?.conversations()
    }

    /// The newest `limit` messages (at most [`MAX_SEARCH_RESULTS`]) across all conversations whose text
    /// contains `needle`, ignoring case, newest first. Searches the decrypted text; nothing is indexed on
    /// disk.
    pub fn search(&self, needle: &str, limit: usize) -> Result<Vec<MessageRecord>, StoreError> {
        self.read()?.search(needle, limit.min(MAX_SEARCH_RESULTS))
    }

    /// Deletes a conversation's messages and its queued outbox entries (durable on return).
    pub fn delete_conversation(&mut self, conversation: &IdentityKey) -> Result<u64, StoreError> {
        self.transaction(|b| b.delete_conversation(conversation))
    }

    // ---- outbox ----

    /// Queues (or replaces) an outbox entry, keyed by its message id (durable on return).
    /// [`StoreError::OutboxFull`] past [`MAX_OUTBOX_ENTRIES`].
    pub fn outbox_enqueue(&mut self, entry: &OutboxRecord) -> Result<(), StoreError> {
        self.transaction(|b| b.outbox_enqueue(entry))
    }

    /// Up to `limit` entries whose `next_attempt_ms <= now_ms`, earliest first.
    pub fn outbox_due(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        self.read()?.outbox_due(now_ms, limit)
    }

    /// Every outbox entry, earliest next attempt first.
    pub fn outbox(&self) -> Result<Vec<OutboxRecord>, StoreError> {
        self.read()?.outbox_due(u64::MAX, usize::MAX)
    }

    /// Up to `limit` outbox entries for one recipient, oldest first (one key range; nothing else is
    /// decrypted).
    pub fn outbox_for(
        &self,
        recipient: &IdentityKey,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        self.read()?.outbox_for(recipient, limit)
    }

    /// Number of outbox entries.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        self.read()?.outbox_len()
    }

    /// Counts one more attempt and sets the next; `false` if the entry is gone (durable on return).
    pub fn outbox_reschedule(
        &mut self,
        message_id: &MessageId,
        next_attempt_ms: u64,
    ) -> Result<bool, StoreError> {
        self.transaction(|b| b.outbox_reschedule(message_id, next_attempt_ms))
    }

    /// Removes an outbox entry; `true` if it existed (durable on return).
    pub fn outbox_remove(&mut self, message_id: &MessageId) -> Result<bool, StoreError> {
        self.transaction(|b| b.outbox_remove(message_id))
    }

    // ---- duplicate checks ----

    /// Whether a message from `sender` with this id was seen (and not purged).
    pub fn is_seen(&self, sender: &IdentityKey, id: &MessageId) -> Result<bool, StoreError> {
        self.read()?.is_seen(sender, id)
    }

    /// Records that a message was seen until `expires_ms`; `false` if it already was (durable on return).
    pub fn mark_seen(
        &mut self,
        sender: &IdentityKey,
        id: &MessageId,
        expires_ms: u64,
    ) -> Result<bool, StoreError> {
        self.transaction(|b| b.mark_seen(sender, id, expires_ms))
    }

    /// Drops duplicate-check entries (and remembered envelopes) that expired at or before `now_ms`;
    /// returns how many duplicate-check entries (durable on return).
    pub fn purge_seen(&mut self, now_ms: u64) -> Result<u64, StoreError> {
        self.transaction(|b| b.purge_seen(now_ms))
    }

    /// Number of duplicate-check entries.
    pub fn seen_len(&self) -> Result<u64, StoreError> {
        self.read()?.seen_len()
    }

    /// The sender and message id of the stored message this envelope carried, if remembered (see
    /// [`Batch::mark_envelope`]).
    pub fn envelope(
        &self,
        envelope: &EnvelopeId,
    ) -> Result<Option<(IdentityKey, MessageId)>, StoreError> {
        self.read()?.envelope(envelope)
    }

    /// Records which message an envelope carried, until `expires_ms` (durable on return); `false` if it
    /// was recorded already.
    pub fn mark_envelope(
        &mut self,
        envelope: &EnvelopeId,
        sender: &IdentityKey,
        id: &MessageId,
        expires_ms: u64,
    ) -> Result<bool, StoreError> {
        self.transaction(|b| b.mark_envelope(envelope, sender, id, expires_ms))
    }

    /// Number of remembered envelopes.
    pub fn envelopes_len(&self) -> Result<u64, StoreError> {
        self.read()?.envelopes_len()
    }
}

/// The format version and key slot, read without writing to the file: a read-write open makes redb
/// rewrite parts of the file when it closes, and a format-1 file must stay byte for byte as it was unless
/// its migration completes. A file the read-only open refuses (one that needs redb's repair) is left to
/// the checked read-write open.
fn read_header(path: &Path) -> Result<(u8, KeySlot), StoreError> {
    let opened = std::panic::catch_unwind(|| redb::ReadOnlyDatabase::open(path));
    match opened {
        Ok(Ok(db)) => Ok((read_format(&db)?, read_keyslot(&db)?)),
        _ => {
            let db = open_database(path)?;
            Ok((read_format(&db)?, read_keyslot(&db)?))
        }
    }
}

/// The store's format version: [`OLDEST_FORMAT_VERSION`]..=[`FORMAT_VERSION`], or a typed error.
fn read_format(db: &impl ReadableDatabase) -> Result<u8, StoreError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let format = meta
        .get(META_FORMAT)?
        .ok_or_else(|| StoreError::Corrupt("format version missing".into()))?;
    match format.value() {
        [found] if (OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(found) => Ok(*found),
        [found] => Err(StoreError::UnsupportedVersion {
            found: *found,
            supported: FORMAT_VERSION,
        }),
        _ => Err(StoreError::Corrupt("format version malformed".into())),
    }
}

fn read_keyslot(db: &impl ReadableDatabase) -> Result<KeySlot, StoreError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let slot = meta
        .get(META_KEYSLOT)?
        .ok_or_else(|| StoreError::Corrupt("key slot missing".into()))?;
    KeySlot::decode(slot.value()).map_err(|err| corrupt("key slot", err))
}

/// Every table must exist: a store missing one was not written by this format.
fn check_tables(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_read()?;
    txn.open_table(VAULT)?.len()?;
    for table in BYTES_TABLES {
        txn.open_table(table)?.len()?;
    }
    for table in [CONV_UNREAD, SEEN_EXPIRY] {
        txn.open_table(table)?.len()?;
    }
    Ok(())
}

/// Creates the envelope tables in a profile written before they existed (empty: nothing is lost, an
/// older message's copy just earns no receipt). One durable commit, only when they are missing.
fn add_envelope_tables(db: &Database) -> Result<(), StoreError> {
    {
        let txn = db.begin_read()?;
        let present = |def: &str| -> Result<bool, StoreError> {
            Ok(txn.list_tables()?.any(|t| t.name() == def))
        };
        if present(ENVELOPES.name())? && present(ENVELOPE_EXPIRY.name())? {
            return Ok(());
        }
    }
    let txn = db.begin_write()?;
    txn.open_table(ENVELOPES)?;
    txn.open_table(ENVELOPE_EXPIRY)?;
    txn.commit()?;
    Ok(())
}
