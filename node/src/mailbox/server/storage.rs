//! The mailbox database as the server holds it: open, or failed and waiting to be opened again.
//!
//! redb refuses every operation after one failed write ("Previous I/O error occurred. Please close and
//! re-open the database."): a full disk would break the mailbox until the process restarts. So a storage
//! error closes the database, and the next request at least [`REOPEN_INTERVAL_S`] later opens it again
//! (with its integrity check and repair). Until then every request that needs storage is refused with
//! [`Refusal::Internal`]. The condition is logged once when it starts and once when it ends, and counted
//! ([`StorageHealth`]).

use std::path::PathBuf;

use tracing::{debug, error, info};

use super::MailboxError;
use super::db::{Db, GroupTotals, Totals};
use crate::mailbox::Refusal;

/// After a storage failure, opening the database again is first tried after this many seconds; the pause
/// doubles per failed try up to [`MAX_REOPEN_INTERVAL_S`] (each try runs the integrity check).
pub const REOPEN_INTERVAL_S: u64 = 1;
/// The longest pause between two tries to open the database again.
pub const MAX_REOPEN_INTERVAL_S: u64 = 16;

/// How the database file is opened (again).
pub(super) enum Opener {
    File(PathBuf),
    /// Tests: a storage backend that can fail on demand.
    #[cfg(test)]
    Backend(Box<dyn Fn() -> Result<Db, MailboxError> + Send>),
}

impl Opener {
    pub(super) fn open(&self) -> Result<Db, MailboxError> {
        match self {
            Self::File(path) => Db::open(path),
            #[cfg(test)]
            Self::Backend(open) => open(),
        }
    }
}

/// Storage failures and recoveries since the server was opened (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageHealth {
    /// Whether the database is open and working now.
    pub ok: bool,
    /// Storage operations that failed (each refused its request with [`Refusal::Internal`]).
    pub failures: u64,
    /// Requests refused while the database was closed after a failure.
    pub refused_while_down: u64,
    /// Times the database was opened again after a failure.
    pub reopens: u64,
}

pub(super) struct Storage {
    db: Option<Db>,
    opener: Opener,
    /// When the database closed after a failure (unix seconds); `None` while it works.
    down_since: Option<u64>,
    /// The earliest time to try opening it again.
    next_try: u64,
    /// The pause after the next failed try.
    interval: u64,
    /// What the database held when last seen open.
    last_totals: Totals,
    last_group: GroupTotals,
    health: StorageHealth,
}

impl Storage {
    pub(super) fn open(opener: Opener) -> Result<Self, MailboxError> {
        let db = opener.open()?;
        Ok(Self {
            last_totals: db.totals(),
            last_group: db.group_totals(),
            db: Some(db),
            opener,
            down_since: None,
            next_try: 0,
            interval: REOPEN_INTERVAL_S,
            health: StorageHealth {
                ok: true,
                ..StorageHealth::default()
            },
        })
    }

    /// The database, opened again first if it failed and [`REOPEN_INTERVAL_S`] has passed; else
    /// [`Refusal::Internal`].
    pub(super) fn db(&mut self, now_s: u64) -> Result<&mut Db, Refusal> {
        if self.db.is_none() && now_s >= self.next_try {
            self.next_try = now_s.saturating_add(self.interval);
            self.interval = (self.interval * 2).min(MAX_REOPEN_INTERVAL_S);
            match self.opener.open() {
                Ok(db) => {
                    let down_for = now_s.saturating_sub(self.down_since.unwrap_or(now_s));
                    info!(
                        down_for_s = down_for,
                        "mailbox database opened again: serving mail"
                    );
                    self.db = Some(db);
                    self.down_since = None;
                    self.health.ok = true;
                    self.health.reopens += 1;
                }
                Err(err) => debug!(error = %err, "mailbox database does not open yet"),
            }
        }
        match self.db.as_mut() {
            Some(db) => Ok(db),
            None => {
                self.health.refused_while_down += 1;
                Err(Refusal::Internal)
            }
        }
    }

    /// The database if it is open.
    pub(super) fn current(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// What the database holds (as last seen, while it is closed).
    pub(super) fn totals(&self) -> Totals {
        self.db.as_ref().map_or(self.last_totals, Db::totals)
    }

    /// A storage operation failed: the database is closed (to be opened again) and the request refused.
    /// Logged once per outage.
    pub(super) fn failed(
        &mut self,
        operation: &'static str,
        err: &MailboxError,
        now_s: u64,
    ) -> Refusal {
        self.health.failures += 1;
        if self.down_since.is_none() {
            error!(
                operation,
                error = %err,
                "mailbox storage failed: refusing requests and reopening the database (next log line when it works again)"
            );
            self.down_since = Some(now_s);
        }
        // Dropping it closes the file; redb will not work with it again anyway.
        if let Some(db) = self.db.take() {
            self.last_totals = db.totals();
            self.last_group = db.group_totals();
        }
        self.health.ok = false;
        self.next_try = now_s.saturating_add(REOPEN_INTERVAL_S);
        self.interval = REOPEN_INTERVAL_S * 2;
        Refusal::Internal
    }

    /// What the group queues hold (as last seen, while the database is closed).
    pub(super) fn group_totals(&self) -> GroupTotals {
        self.db.as_ref().map_or(self.last_group, Db::group_totals)
    }

    pub(super) fn health(&self) -> StorageHealth {
        self.health
    }
}
