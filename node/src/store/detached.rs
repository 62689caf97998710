//! [`DetachedCommit`]: a write transaction filled on the event loop and committed on another thread, so
//! the loop can go on (send the envelope the rows describe) while the fsync runs.
//!
//! The transaction begins on the caller's thread, so it is ordered before any write begun after it: redb
//! admits one write transaction at a time, and a later [`super::Store::transaction`] waits in `begin_write`
//! until this one is committed or dropped. Readers see its rows only once it is committed. A disk failure in
//! the commit closes the database like any other (`health.rs`): the thread that commits reports it.

use std::sync::Arc;

use redb::WriteTransaction;

use super::batch::Batch;
use super::health::Shared;
use super::{Store, StoreError};

/// A filled write transaction waiting to be committed, `Send`, meant for `tokio::task::spawn_blocking`.
/// Dropped without [`DetachedCommit::commit`], it changes nothing.
pub struct DetachedCommit {
    txn: WriteTransaction,
    shared: Arc<Shared>,
    /// Which open of the database the transaction belongs to (see `health.rs`).
    generation: u64,
}

impl std::fmt::Debug for DetachedCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedCommit").finish_non_exhaustive()
    }
}

impl DetachedCommit {
    /// Commits every change durably (redb's default durability, as [`Batch::commit`]). If the disk fails
    /// the commit ([`StoreError::DiskFailing`]), nothing of it was saved and the store opens its database
    /// again later.
    pub fn commit(self) -> Result<(), StoreError> {
        let committed = self.txn.commit().map_err(StoreError::from);
        self.shared.check(self.generation, "commit", committed)
    }
}

impl Store {
    /// Runs `f` in a new write transaction and hands it back uncommitted. Until it is committed or
    /// dropped, every other write of this store waits for it.
    pub fn write_detached<T>(
        &mut self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<T, StoreError>,
    ) -> Result<(T, DetachedCommit), StoreError> {
        let shared = Arc::clone(&self.shared);
        let mut batch = self.batch()?;
        let generation = batch.generation;
        match f(&mut batch) {
            Ok(out) => Ok((
                out,
                DetachedCommit {
                    txn: batch.txn,
                    shared,
                    generation,
                },
            )),
            Err(err) => {
                drop(batch);
                shared.check(generation, "write", Err(err))
            }
        }
    }
}
