//! [`DetachedCommit`]: a write transaction filled on the event loop and committed on another thread, so
//! the loop can go on (send the envelope the rows describe) while the fsync runs.
//!
//! The transaction begins on the caller's thread, so it is ordered before any write begun after it: redb
//! admits one write transaction at a time, and a later [`super::Store::transaction`] waits in `begin_write`
//! until this one is committed or dropped. Readers see its rows only once it is committed.

use redb::WriteTransaction;

use super::batch::Batch;
use super::{Store, StoreError};

/// A filled write transaction waiting to be committed, `Send`, meant for `tokio::task::spawn_blocking`.
/// Dropped without [`DetachedCommit::commit`], it changes nothing.
pub struct DetachedCommit {
    txn: WriteTransaction,
}

impl std::fmt::Debug for DetachedCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedCommit").finish_non_exhaustive()
    }
}

impl DetachedCommit {
    /// Commits every change durably (redb's default durability, as [`Batch::commit`]).
    pub fn commit(self) -> Result<(), StoreError> {
        self.txn.commit()?;
        Ok(())
    }
}

impl Store {
    /// Runs `f` in a new write transaction and hands it back uncommitted. Until it is committed or
    /// dropped, every other write of this store waits for it.
    pub fn write_detached<T>(
        &mut self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<T, StoreError>,
    ) -> Result<(T, DetachedCommit), StoreError> {
        let mut batch = self.batch()?;
        let out = f(&mut batch)?;
        Ok((out, DetachedCommit { txn: batch.txn }))
    }
}
