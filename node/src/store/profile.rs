//! Creating, opening and re-keying a profile: the lock file, the format and key-slot header, the table
//! check on open, and the [`Store`] handles ([`Store::reader`], [`Store::batch`],
//! [`Store::transaction`]).

use std::fs::{self, File, TryLockError};
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableHandle};
use tern_protocol::PickleKey;
use tern_protocol::crypto::SecretKey;

use crate::redb_file::{Mode, open_checked};

use super::health::{Opener, Shared, StoreHealth};
use super::kdf::{KdfParams, KeySlot, Password};
use super::keys::Keys;
use super::migrate;
use super::reader::{KeySlotUpdate, StoreReader};
use super::rollback;
use super::{
    BYTES_TABLES, Batch, CONV_UNREAD, ENVELOPE_EXPIRY, ENVELOPES, FORMAT_VERSION, LOCK_FILE, META,
    META_FORMAT, META_KEYSLOT, OLDEST_FORMAT_VERSION, SEEN_EXPIRY, STORE_FILE, Store, StoreError,
    VAULT, VaultItem, corrupt,
};

fn lock_profile(dir: &Path) -> Result<File, StoreError> {
    let file = crate::redb_file::private_file_options()
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

pub(super) fn open_database(path: &Path) -> Result<Database, StoreError> {
    Ok(open_checked(path, Mode::OpenExisting)?)
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
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
        crate::redb_file::create_private_dir(dir)?;
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
                txn.open_table(super::groups::GROUPS)?;
                txn.open_table(super::groups::GROUP_KEY_PACKAGES)?;
                txn.open_table(super::groups::GROUP_HISTORY)?;
                txn.open_table(super::files::ATTACHMENTS)?;
                txn.open_table(super::timers::TIMERS)?;
                txn.open_table(super::timers::EXPIRY)?;
                for table in [CONV_UNREAD, SEEN_EXPIRY, ENVELOPE_EXPIRY] {
                    txn.open_table(table)?;
                }
            }
            txn.commit()?;
            db.close()?;
        }
        crate::redb_file::make_private(&tmp)?;
        fs::rename(&tmp, &path)?;
        sync_dir(dir)?;
        let db = open_database(&path)?;
        let keys = Keys::derive(store_key);
        rollback::verify_on_open(&db, &keys)?;
        Ok(Self::assemble(db, file_opener(path), keys, dir, lock))
    }

    /// Opens the profile in `dir` with `password`.
    ///
    /// Errors: [`StoreError::NotFound`] if there is no store, [`StoreError::InUse`] if it is open already,
    /// [`StoreError::Corrupt`] if the file is damaged, [`StoreError::WrongPassword`],
    /// [`StoreError::UnsupportedVersion`] if a newer build wrote it.
    ///
    /// A format-1 or format-2 profile is migrated to format 3 first (after the password is checked), on a
    /// copy that replaces the file only once complete; if the migration fails, its error is returned and
    /// the file is left as it was.
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
            migrate::migrate(dir, &store_key, format)?;
        }
        let db = open_database(&path)?;
        let keys = Keys::derive(store_key);
        prepare(&db, &keys)?;
        Ok(Self::assemble(db, file_opener(path), keys, dir, lock))
    }

    /// Opens the profile in `dir` (which holds its lock file) over a storage backend of the caller's
    /// instead of its `store.redb`: the full-disk tests inject faults with one. `backend` is cloned for
    /// every reopen after a failure, so its clones must share the bytes (as a file would). A format-1
    /// store is refused (only a file is migrated).
    #[doc(hidden)]
    pub fn open_with_backend<B>(
        dir: impl AsRef<Path>,
        password: &Password,
        backend: B,
    ) -> Result<Self, StoreError>
    where
        B: redb::StorageBackend + Clone,
    {
        let dir = dir.as_ref();
        let lock = lock_profile(dir)?;
        let opener: Opener = Box::new(move || crate::redb_file::open_checked_with(backend.clone()));
        let db = opener()?;
        let store_key = read_keyslot(&db)?.unwrap_key(password)?;
        let keys = Keys::derive(store_key);
        prepare(&db, &keys)?;
        Ok(Self::assemble(db, opener, keys, dir, lock))
    }

    fn assemble(db: Database, opener: Opener, keys: Keys, dir: &Path, lock: File) -> Self {
        let keys = Arc::new(keys);
        Self {
            shared: Arc::new(Shared::new(db, opener, Arc::clone(&keys))),
            keys,
            dir: dir.to_owned(),
            _lock: lock,
        }
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
    /// decode is refused as [`StoreError::Corrupt`]. The old slot's page is freed, not wiped (with the old
    /// password it would still open the store key), so the file is then compacted ([`Store::scrub`]); if a
    /// read is in progress that is left for the next try (the node's, or the next open's).
    pub fn install_key_slot(&mut self, update: KeySlotUpdate) -> Result<(), StoreError> {
        KeySlot::decode(&update.slot).map_err(|err| corrupt("key slot", err))?;
        self.transaction(|batch| {
            let mut meta = batch.txn.open_table(META)?;
            meta.insert(META_KEYSLOT, update.slot.as_slice())?;
            drop(meta);
            super::timers::mark_scrub(batch)
        })?;
        if let Err(e) = self.scrub() {
            tracing::warn!(error = %e, "cannot compact the store after the password change; will try again");
        }
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
        let slot = self.shared.read_db(read_keyslot)?;
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
        StoreReader::new(Arc::clone(&self.shared), Arc::clone(&self.keys))
    }

    /// The Argon2id parameters the store key is currently wrapped with.
    pub fn kdf_params(&self) -> Result<KdfParams, StoreError> {
        Ok(self.shared.read_db(read_keyslot)?.params())
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
        Batch::begin(&self.shared, &self.keys)
    }

    /// How the database is doing: whether it is closed after a disk failure, failures and reopens.
    pub fn health(&self) -> StoreHealth {
        self.shared.health()
    }

    /// Runs `f` in one write transaction and commits it durably if `f` returns `Ok`; on `Err` nothing is
    /// written.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut batch = self.batch()?;
        let generation = batch.generation;
        match f(&mut batch) {
            Ok(out) => {
                batch.commit()?;
                Ok(out)
            }
            Err(err) => {
                drop(batch);
                self.shared.check(generation, "write", Err(err))
            }
        }
    }
}

/// The format version and key slot, read without writing to the file: a read-write open makes redb
/// rewrite parts of the file when it closes, and a format-1 file must stay byte for byte as it was unless
/// its migration completes. A file the read-only open refuses (one that needs redb's repair) is left to
/// the checked read-write open.
fn read_header(path: &Path) -> Result<(u8, KeySlot), StoreError> {
    // redb may panic on a damaged file, in the open or in the reads: all of it is caught.
    let read_only = std::panic::catch_unwind(|| {
        let db = redb::ReadOnlyDatabase::open(path).ok()?;
        Some((read_format(&db), read_keyslot(&db)))
    });
    match read_only {
        Ok(Some((Ok(format), Ok(slot)))) => Ok((format, slot)),
        Ok(Some((Err(e @ StoreError::UnsupportedVersion { .. }), _))) => Err(e),
        // Not readable as it is (or redb gave up on it): the checked open reports damage as a typed error.
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

pub(super) fn read_keyslot(db: &impl ReadableDatabase) -> Result<KeySlot, StoreError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let slot = meta
        .get(META_KEYSLOT)?
        .ok_or_else(|| StoreError::Corrupt("key slot missing".into()))?;
    KeySlot::decode(slot.value()).map_err(|err| corrupt("key slot", err))
}

/// What every open of a profile checks and adds once the store key is known (the first open and every
/// reopen after a disk failure): the format, the tables (adding those a profile written before them
/// lacks), the session checks and digest, and the vault's identity opening with `keys` (the same
/// profile).
pub(super) fn prepare(db: &Database, keys: &Keys) -> Result<(), StoreError> {
    if read_format(db)? != FORMAT_VERSION {
        return Err(StoreError::Corrupt("the migration did not finish".into()));
    }
    check_tables(db)?;
    add_envelope_tables(db)?;
    super::groups::add_group_tables(db)?;
    super::files::add_file_tables(db)?;
    super::timers::add_timer_tables(db)?;
    rollback::verify_on_open(db, keys)?;
    let txn = db.begin_read()?;
    if let Some(sealed) = txn
        .open_table(VAULT)?
        .get(VaultItem::IdentityPickle.row())?
    {
        keys.open(
            VAULT.name(),
            VaultItem::IdentityPickle.row().as_bytes(),
            sealed.value(),
        )?;
    }
    Ok(())
}

pub(super) fn file_opener(path: std::path::PathBuf) -> Opener {
    Box::new(move || open_checked(&path, Mode::OpenExisting))
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
