//! The profile's database as the [`super::Store`] and its [`super::StoreReader`]s share it: open, or
//! closed after a storage failure and waiting to be opened again.
//!
//! redb refuses every operation after one failed write ("Previous I/O error occurred. Please close and
//! re-open the database."): a full disk would break the profile until the process restarts. So an I/O
//! error (or redb's `PreviousIo`) closes the database, and the first operation at least
//! [`REOPEN_INTERVAL`] later opens it again, with every check an open of the profile runs (redb's
//! integrity check, the format and tables, the session checks and digest, and the vault opened with the
//! store's own keys). A failed try doubles the pause up to [`MAX_REOPEN_INTERVAL`]. Until the database
//! works again every operation fails with [`StoreError::DiskFailing`]. The outage is logged once when it
//! starts (warn) and once when it ends (info), and counted ([`StoreHealth`]).
//!
//! # Sharing
//!
//! The database sits in one slot behind a mutex. Every operation holds the mutex only to begin its redb
//! transaction (and, when due, to reopen); the transaction then runs on its own. Closing drops the
//! `Database`, which releases redb's file lock at once even while read transactions are alive (they then
//! fail with redb's `DatabaseClosed`, reported as [`StoreError::DiskFailing`]), so a reader can never keep
//! the reopen waiting. Each open has a generation number: an error from a transaction of an earlier
//! generation never closes the database opened after it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use tracing::{debug, info, warn};

use super::keys::Keys;
use super::{StoreError, profile};
pub use crate::api::StoreHealth;
use crate::redb_file::Failure;

/// After a storage failure, opening the database again is first tried after this long; the pause doubles
/// per failed try up to [`MAX_REOPEN_INTERVAL`].
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest pause between two tries to open the database again.
pub const MAX_REOPEN_INTERVAL: Duration = Duration::from_secs(16);

/// How the database file is opened (again).
pub(super) type Opener = Box<dyn Fn() -> Result<Database, Failure> + Send + Sync>;

/// Whether `err` means the disk under the database failed (an I/O error, or redb refusing to go on
/// after one), as opposed to bad data or a refused value.
pub(super) fn is_disk_failure(err: &StoreError) -> bool {
    match err {
        StoreError::DiskFailing => true,
        StoreError::Database(err) => matches!(
            **err,
            redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
        ),
        _ => false,
    }
}

struct Slot {
    db: Option<Database>,
    /// Bumped at every reopen.
    generation: u64,
    /// When the database closed after a failure; `None` while it works.
    down_since: Option<Instant>,
    /// The earliest time to try opening it again.
    next_try: Instant,
    /// The pause after the next failed try.
    interval: Duration,
    health: StoreHealth,
}

/// The shared slot (see the module docs).
pub(super) struct Shared {
    slot: Mutex<Slot>,
    opener: Opener,
    keys: Arc<Keys>,
    /// Cleared when the [`super::Store`] (which holds the profile lock) is dropped: readers that outlive
    /// it never open the file again.
    owner: AtomicBool,
}

impl Shared {
    pub(super) fn new(db: Database, opener: Opener, keys: Arc<Keys>) -> Self {
        Self {
            slot: Mutex::new(Slot {
                db: Some(db),
                generation: 0,
                down_since: None,
                next_try: Instant::now(),
                interval: REOPEN_INTERVAL,
                health: StoreHealth::default(),
            }),
            opener,
            keys,
            owner: AtomicBool::new(true),
        }
    }

    /// The store that holds the profile lock is gone: the database closes with it, so redb's lock on the
    /// file goes too, even while a reader (a read finishing on another thread) still holds this slot;
    /// that reader's next operation fails instead of keeping the profile from being opened again.
    pub(super) fn release(&self) {
        self.owner.store(false, Ordering::SeqCst);
        self.lock().db = None;
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic while the mutex was held left nothing half-done that matters here.
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `begin` on the open database (opened again first when it failed and the pause has passed),
    /// holding the slot only for that. Returns its result with the database's generation;
    /// [`StoreError::DiskFailing`] while the database is closed.
    fn with<T>(
        &self,
        operation: &'static str,
        begin: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<(T, u64), StoreError> {
        let mut slot = self.lock();
        if slot.db.is_none() {
            let now = Instant::now();
            if now >= slot.next_try && self.owner.load(Ordering::SeqCst) {
                self.reopen(&mut slot, now);
            }
        }
        let Some(db) = slot.db.as_ref() else {
            return Err(StoreError::DiskFailing);
        };
        let generation = slot.generation;
        match begin(db) {
            Ok(value) => Ok((value, generation)),
            Err(err) => Err(self.failed_locked(&mut slot, generation, operation, err)),
        }
    }

    fn reopen(&self, slot: &mut Slot, now: Instant) {
        slot.next_try = now + slot.interval;
        slot.interval = (slot.interval * 2).min(MAX_REOPEN_INTERVAL);
        let opened = (self.opener)()
            .map_err(StoreError::from)
            .and_then(|db| profile::prepare(&db, &self.keys).map(|()| db));
        match opened {
            Ok(db) => {
                let down_for = slot
                    .down_since
                    .map_or(0, |t| now.duration_since(t).as_secs());
                info!(
                    down_for_s = down_for,
                    "the profile's store works again: saving and receiving resume"
                );
                slot.db = Some(db);
                slot.generation += 1;
                slot.down_since = None;
                slot.health.failing = false;
                slot.health.reopens += 1;
            }
            Err(err) => debug!(error = %err, "the profile's store does not open yet"),
        }
    }

    /// Compacts the open database (redb moves live pages into freed ones and cuts the file's end off):
    /// `Ok(false)` when a transaction is in progress, to be tried again later.
    pub(super) fn compact(&self) -> Result<bool, StoreError> {
        let mut slot = self.lock();
        let generation = slot.generation;
        let Some(db) = slot.db.as_mut() else {
            return Err(StoreError::DiskFailing);
        };
        let result = db.compact();
        match result {
            Ok(_) => Ok(true),
            Err(redb::CompactionError::TransactionInProgress) => Ok(false),
            Err(err) => {
                let err = StoreError::Database(Box::new(err.into()));
                Err(self.failed_locked(&mut slot, generation, "compact", err))
            }
        }
    }

    /// Begins a read transaction (see [`Self::with`]).
    pub(super) fn begin_read(&self) -> Result<(ReadTransaction, u64), StoreError> {
        self.with("read", |db| Ok(db.begin_read()?))
    }

    /// Begins a write transaction (see [`Self::with`]).
    pub(super) fn begin_write(&self) -> Result<(WriteTransaction, u64), StoreError> {
        self.with("write", |db| Ok(db.begin_write()?))
    }

    /// Runs a quick read on the open database itself (see [`Self::with`]).
    pub(super) fn read_db<T>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with("read", read).map(|(value, _)| value)
    }

    /// Sorts the outcome of an operation on a transaction of `generation`: a disk failure closes the
    /// database (to be opened again later) and becomes [`StoreError::DiskFailing`]; anything else is
    /// returned as it is.
    pub(super) fn check<T>(
        &self,
        generation: u64,
        operation: &'static str,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        result.map_err(|err| {
            if is_disk_failure(&err) {
                let mut slot = self.lock();
                self.failed_locked(&mut slot, generation, operation, err)
            } else {
                err
            }
        })
    }

    fn failed_locked(
        &self,
        slot: &mut Slot,
        generation: u64,
        operation: &'static str,
        err: StoreError,
    ) -> StoreError {
        if !is_disk_failure(&err) {
            return err;
        }
        // `DatabaseClosed` is a transaction that outlived the close: the failure is counted already.
        let closed =
            matches!(&err, StoreError::Database(e) if matches!(**e, redb::Error::DatabaseClosed));
        if generation != slot.generation || closed || slot.db.is_none() {
            return StoreError::DiskFailing;
        }
        slot.health.failures += 1;
        if slot.down_since.is_none() {
            warn!(
                operation,
                error = %err,
                "the profile's disk is full or failing: nothing can be saved or received until it works again; the store will be reopened (next log line when it works)"
            );
            slot.down_since = Some(Instant::now());
        }
        // Dropping it closes the file and releases redb's lock (redb would not work with it again).
        slot.db = None;
        slot.health.failing = true;
        slot.next_try = Instant::now() + REOPEN_INTERVAL;
        slot.interval = REOPEN_INTERVAL * 2;
        StoreError::DiskFailing
    }

    pub(super) fn health(&self) -> StoreHealth {
        self.lock().health
    }
}
