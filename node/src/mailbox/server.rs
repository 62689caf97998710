//! The mailbox server: the whole `/tern/mailbox/1` policy over a redb database of sealed envelopes.
//!
//! [`MailboxServer::handle`] takes one decoded [`MailboxRequest`] from a peer at an injected unix time and
//! returns the [`MailboxResponse`]; it does no networking and never panics. The node's event loop owns the
//! server, answers requests with it, pushes new mail to owners that are connected ([`MailboxServer::owned_by`],
//! [`MailboxServer::queued`], [`MailboxServer::remove`]) and calls [`MailboxServer::purge_expired`] now and
//! then.
//!
//! # Policy
//!
//! - **Deposit** (anyone): the envelope must be at most [`MAX_ENVELOPE_LEN`] bytes ([`Refusal::TooLarge`]),
//!   decode ([`Refusal::Malformed`]), not be expired ([`Refusal::Expired`]) nor expire more than
//!   [`MAX_ENVELOPE_TTL_S`] ahead ([`Refusal::ExpiryTooFar`]); the depositor's token bucket must have a
//!   token ([`Refusal::RateLimited`]); an envelope already held is a [`MailboxResponse::Duplicate`]; the
//!   mailbox's quotas ([`Refusal::QuotaCount`], [`Refusal::QuotaBytes`]) and the server's total
//!   ([`Refusal::ServerFull`]) must have room. The envelope is kept until the earlier of its own expiry and
//!   `now + max_ttl_s`, and is on disk before the server answers [`MailboxResponse::Deposited`].
//! - **Unclaimed mailboxes.** A mailbox is *claimed* while its owner has fetched or acknowledged here within
//!   `claim_ttl_s`. Mail for a mailbox without a live claim (an owner who never came, or a made-up mailbox
//!   id: the shape of a flood, since deposits need no identity) shares the server-wide `unclaimed_bytes`
//!   budget ([`Refusal::ServerFull`] past it) and is kept at most `unclaimed_ttl_s`. So a flood to made-up
//!   mailboxes fills that budget, ages out within `unclaimed_ttl_s`, and never takes the room of mail for
//!   owners who use this server.
//! - **Challenge** (anyone): a nonce valid for `challenge_ttl_s` for the asking peer only, made statelessly
//!   (a MAC over the peer and the expiry, see the `limits` submodule), so no number of fresh peers asking
//!   for nonces can push out an owner's. It is not single-use, so an owner can page through its mail with
//!   one nonce.
//! - **Fetch** / **Ack** / **FetchPage** (owner): the [`OwnerAuth`](crate::mailbox::OwnerAuth) signature must be over this server's
//!   peer id ([`Refusal::NotOwner`]) and a nonce this server issued to the same peer and that has not
//!   expired ([`Refusal::BadChallenge`]). The mailbox is the signer's. Fetch returns its envelopes oldest
//!   first (never one past its keep-until time); Ack deletes the named envelopes of that mailbox, durably.
//!   FetchPage does both in one request: it deletes the envelopes it acknowledges (one commit, before the
//!   answer), then returns the page from its cursor on (the `owner` submodule).
//!
//! Every refusal is counted in [`MailboxCounters::refusals`] under [`Refusal::name`]. Storage failures are
//! answered with [`Refusal::Internal`]; after one the database is closed and opened again (the `storage`
//! submodule: redb works with a file no more after a failed write, a full disk for instance), logged
//! once per outage and counted in [`MailboxServer::storage_health`].
//!
//! # Bounds
//!
//! Stored mail is bounded by the [`MailboxConfig`] quotas, total and unclaimed budget; claims by
//! [`MAX_CLAIMS`]; memory by [`MAX_RATE_BUCKETS`], [`MAX_OWNER_PEERS`] (and
//! [`MAX_MAILBOXES_PER_PEER`]); a fetch answer by [`MAX_FETCH_ENVELOPES`] and [`MAX_FETCH_BYTES`]; an
//! acknowledgement by [`MAX_ACK_IDS`], a paged fetch's by [`MAX_PAGE_ACK_IDS`] (the codec's bounds,
//! enforced here too).
//!
//! The storage layout is described in the `db` submodule: one transaction per deposit, acknowledgement or
//! purge batch; a damaged file is a typed error on open, as is a second open of the same file.

mod db;
mod group;
mod limits;
mod owner;
mod storage;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use libp2p::PeerId;
use tern_protocol::envelope::{MAX_ENVELOPE_LEN, MAX_ENVELOPE_TTL_S};
use tern_protocol::{Envelope, EnvelopeId, MailboxId};
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::mailbox::wire::{MAX_ACK_IDS, MAX_FETCH_BYTES, MAX_FETCH_ENVELOPES, MAX_PAGE_ACK_IDS};
use crate::mailbox::{MailboxRequest, MailboxResponse, Refusal};
use crate::redb_file::{Failure, from_redb_errors};

pub use db::{CLAIM_REFRESH_S, MAX_CLAIMS};
pub use db::{FORMAT_VERSION, PURGE_BATCH};
pub use db::{MAX_GROUP_QUEUE, MAX_GROUP_QUEUE_BYTES, MAX_GROUP_QUEUES, MAX_QUEUE_KEYS};
pub use group::GROUP_RETENTION_S;
pub use limits::{MAX_MAILBOXES_PER_PEER, MAX_OWNER_PEERS, MAX_RATE_BUCKETS};
pub use storage::{MAX_REOPEN_INTERVAL_S, REOPEN_INTERVAL_S, StorageHealth};

use db::{Deposit, Limits, Stored};
use limits::{Challenges, OwnerSessions, RateLimiter};
use storage::{Opener, Storage};

/// An owner that proved ownership within this many challenge lifetimes counts as present for push.
pub const OWNER_SESSION_TTLS: u64 = 10;
/// Lapsed claims are looked for at most this often (seconds), by [`MailboxServer::purge_expired`].
pub const CLAIM_PURGE_INTERVAL_S: u64 = 3600;

/// What a mailbox server accepts and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxConfig {
    /// At most this many envelopes per mailbox ([`Refusal::QuotaCount`] past it).
    pub quota_envelopes: u32,
    /// At most this many envelope bytes per mailbox ([`Refusal::QuotaBytes`] past it).
    pub quota_bytes: u64,
    /// Mail is kept at most this long (seconds) after it was deposited, however late its expiry. Clamped to
    /// [`MAX_ENVELOPE_TTL_S`].
    pub max_ttl_s: u64,
    /// At most this many envelope bytes on the whole server ([`Refusal::ServerFull`] past it).
    pub max_total_bytes: u64,
    /// Deposits per minute per depositor peer, with a burst of as many ([`Refusal::RateLimited`] past it).
    /// Zero refuses every deposit.
    pub deposits_per_minute: u32,
    /// How long (seconds) a challenge nonce may be used.
    pub challenge_ttl_s: u64,
    /// At most this many envelope bytes, in all, for mailboxes without a live claim
    /// ([`Refusal::ServerFull`] past it): mail to a mailbox whose owner never proved ownership here, which
    /// is how a flood to made-up mailboxes arrives.
    pub unclaimed_bytes: u64,
    /// Mail deposited for a mailbox without a live claim is kept at most this long (seconds).
    pub unclaimed_ttl_s: u64,
    /// A mailbox is claimed for this long (seconds) after its owner last fetched or acknowledged here.
    pub claim_ttl_s: u64,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            quota_envelopes: 1000,
            quota_bytes: 16 * 1024 * 1024,
            max_ttl_s: 7 * 24 * 3600,
            max_total_bytes: 1024 * 1024 * 1024,
            deposits_per_minute: 120,
            challenge_ttl_s: 60,
            unclaimed_bytes: 64 * 1024 * 1024,
            unclaimed_ttl_s: 2 * 24 * 3600,
            claim_ttl_s: 30 * 24 * 3600,
        }
    }
}

/// What the server holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxStats {
    /// Envelopes stored (including expired ones not yet purged).
    pub envelopes: u64,
    /// Envelope bytes stored.
    pub bytes: u64,
    /// Mailboxes holding at least one envelope.
    pub mailboxes: u64,
    /// Envelope bytes held for mailboxes that had no live claim when the mail came.
    pub unclaimed_bytes: u64,
    /// Mailboxes claimed by their owner (live, or lapsed and not purged yet).
    pub claims: u64,
    /// Group queues (docs/protocol.md §18.6).
    pub group_queues: u64,
    /// Group messages held, one copy each for the whole group.
    pub group_messages: u64,
    /// Group message bytes held.
    pub group_bytes: u64,
}

/// What the server has done since it was opened (for metrics).
#[derive(Debug, Clone, Default)]
pub struct MailboxCounters {
    /// Envelopes stored.
    pub deposits: u64,
    /// Group messages stored.
    pub group_deposits: u64,
    /// Deposits answered [`MailboxResponse::Duplicate`].
    pub duplicates: u64,
    /// Fetch requests answered with envelopes (possibly none).
    pub fetches: u64,
    /// Envelopes returned by fetches.
    pub fetched_envelopes: u64,
    /// Envelopes deleted by owners' acknowledgements.
    pub acked: u64,
    /// Envelopes deleted by [`MailboxServer::purge_expired`].
    pub expired: u64,
    /// Envelopes deleted by [`MailboxServer::remove`] (pushed and acknowledged).
    pub pushed: u64,
    /// Refused requests, keyed by [`Refusal::name`].
    pub refusals: BTreeMap<&'static str, u64>,
}

/// Why a mailbox storage operation failed. Messages never contain envelope contents.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MailboxError {
    /// The database file is open already, in this process or another.
    #[error("the mailbox database is already open in this or another process")]
    InUse,
    /// The database file is damaged (or was changed outside Tern), or is not a mailbox database.
    #[error("the mailbox database is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer (or unknown) format.
    #[error(
        "mailbox database format version {found} is not supported (this build reads {supported})"
    )]
    UnsupportedVersion {
        /// The version found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// A file system error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] Box<redb::Error>),
}

impl From<Failure> for MailboxError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::InUse => Self::InUse,
            Failure::Corrupt(reason) => Self::Corrupt(reason),
            Failure::Other(err) => Self::Database(err),
        }
    }
}

from_redb_errors!(MailboxError);

/// A deposit that passed the policy checks, before storage.
struct CheckedDeposit {
    mailbox: MailboxId,
    id: EnvelopeId,
    keep_until: u64,
}

/// A mailbox server over one database file. Not `Clone`: one event loop owns it.
pub struct MailboxServer {
    storage: Storage,
    local_peer_id: Vec<u8>,
    config: MailboxConfig,
    counters: MailboxCounters,
    rate: RateLimiter,
    challenges: Challenges,
    owners: OwnerSessions,
    /// The full claim table was logged (once per time it fills).
    claims_full_said: bool,
    /// When lapsed claims were last purged (unix s).
    claims_purged_s: u64,
    /// The latest time seen (by `handle` or `purge_expired`), for the methods that take none.
    clock_s: u64,
}

impl std::fmt::Debug for MailboxServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxServer")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl MailboxServer {
    /// Opens (creating if needed) the mailbox database at `path`; `local_peer_id` is this server's PeerId in
    /// binary form (what [`OwnerAuth`](crate::mailbox::OwnerAuth) signs).
    ///
    /// `config.max_ttl_s` is clamped to [`MAX_ENVELOPE_TTL_S`]. Errors: [`MailboxError::InUse`] if the file
    /// is open already, [`MailboxError::Corrupt`] if it is damaged or not a mailbox database,
    /// [`MailboxError::UnsupportedVersion`] if a newer build wrote it.
    pub fn open(
        path: &Path,
        local_peer_id: Vec<u8>,
        config: MailboxConfig,
    ) -> Result<Self, MailboxError> {
        info!(path = %path.display(), "opening the mailbox database");
        Self::open_with(Opener::File(path.to_owned()), local_peer_id, config)
    }

    fn open_with(
        opener: Opener,
        local_peer_id: Vec<u8>,
        mut config: MailboxConfig,
    ) -> Result<Self, MailboxError> {
        config.max_ttl_s = config.max_ttl_s.min(MAX_ENVELOPE_TTL_S);
        let storage = Storage::open(opener)?;
        let totals = storage.totals();
        info!(
            envelopes = totals.envelopes,
            bytes = totals.bytes,
            mailboxes = totals.mailboxes,
            "mailbox database opened"
        );
        Ok(Self {
            storage,
            local_peer_id,
            rate: RateLimiter::new(config.deposits_per_minute),
            config,
            counters: MailboxCounters::default(),
            challenges: Challenges::new(),
            owners: OwnerSessions::default(),
            claims_full_said: false,
            claims_purged_s: 0,
            clock_s: 0,
        })
    }

    /// The whole policy for one request from `from` at unix time `now_s`. Never panics on any input.
    pub fn handle(
        &mut self,
        from: &PeerId,
        request: MailboxRequest,
        now_s: u64,
    ) -> MailboxResponse {
        self.clock_s = self.clock_s.max(now_s);
        let result = match request {
            MailboxRequest::Deposit { envelope } => self.deposit(from, &envelope, now_s),
            MailboxRequest::Challenge => Ok(self.challenge(from, now_s)),
            MailboxRequest::Fetch { auth, max } => self.fetch(from, &auth, max, now_s),
            MailboxRequest::Ack { auth, ids } => self.ack(from, &auth, &ids, now_s),
            MailboxRequest::FetchPage {
                auth,
                from: cursor,
                max,
                ack,
            } => self.fetch_page(from, &auth, cursor, max, &ack, now_s),
            MailboxRequest::Group(request) => self.group_request(from, request, now_s),
            // A frame that could not be read: counted here, and the caller disconnects the sender.
            MailboxRequest::Invalid => Err(Refusal::Malformed),
        };
        match result {
            Ok(response) => response,
            Err(refusal) => self.refused(from, refusal),
        }
    }

    fn deposit(
        &mut self,
        from: &PeerId,
        bytes: &[u8],
        now_s: u64,
    ) -> Result<MailboxResponse, Refusal> {
        let checked = self.check_deposit(from, bytes, now_s)?;
        let deposit = Deposit {
            mailbox: checked.mailbox,
            id: checked.id,
            envelope: bytes,
            keep_until: checked.keep_until,
        };
        let limits = self.limits();
        let stored = self
            .storage
            .db(now_s)?
            .deposit_many(&[deposit], now_s, limits)
            .map_err(|err| self.storage.failed("deposit", &err, now_s))?;
        let stored = stored.first().copied().ok_or(Refusal::Internal)?;
        self.deposit_outcome(from, bytes.len(), checked.id, stored)
    }

    /// Answers `requests` in order, as [`Self::handle`] would one after the other, except that every run
    /// of consecutive deposits is stored in one write transaction with one durable commit (group commit).
    /// Returns one response per request, in order; a `Deposited` answer is on disk when this returns.
    pub fn handle_many(
        &mut self,
        requests: Vec<(PeerId, MailboxRequest)>,
        now_s: u64,
    ) -> Vec<MailboxResponse> {
        self.clock_s = self.clock_s.max(now_s);
        let mut responses: Vec<Option<MailboxResponse>> = Vec::with_capacity(requests.len());
        let mut run: Vec<(usize, PeerId, Vec<u8>)> = Vec::new();
        for (from, request) in requests {
            match request {
                MailboxRequest::Deposit { envelope } => {
                    run.push((responses.len(), from, envelope));
                    responses.push(None);
                }
                other => {
                    self.deposit_run(std::mem::take(&mut run), &mut responses, now_s);
                    responses.push(Some(self.handle(&from, other, now_s)));
                }
            }
        }
        self.deposit_run(run, &mut responses, now_s);
        responses
            .into_iter()
            .map(|r| r.unwrap_or(MailboxResponse::Refused(Refusal::Internal)))
            .collect()
    }

    /// Checks each deposit of a run and stores those that pass in one commit; fills in their responses.
    fn deposit_run(
        &mut self,
        run: Vec<(usize, PeerId, Vec<u8>)>,
        responses: &mut [Option<MailboxResponse>],
        now_s: u64,
    ) {
        if run.is_empty() {
            return;
        }
        let mut accepted = Vec::with_capacity(run.len());
        for (slot, from, bytes) in &run {
            match self.check_deposit(from, bytes, now_s) {
                Ok(checked) => accepted.push((*slot, *from, bytes.as_slice(), checked)),
                Err(refusal) => responses[*slot] = Some(self.refused(from, refusal)),
            }
        }
        let deposits: Vec<Deposit<'_>> = accepted
            .iter()
            .map(|(_, _, bytes, checked)| Deposit {
                mailbox: checked.mailbox,
                id: checked.id,
                envelope: bytes,
                keep_until: checked.keep_until,
            })
            .collect();
        let limits = self.limits();
        let outcomes = match self.storage.db(now_s) {
            Ok(db) => match db.deposit_many(&deposits, now_s, limits) {
                Ok(outcomes) => outcomes,
                Err(err) => {
                    let refusal = self.storage.failed("deposit", &err, now_s);
                    vec![Stored::Refused(refusal); deposits.len()]
                }
            },
            Err(refusal) => vec![Stored::Refused(refusal); deposits.len()],
        };
        if outcomes.len() > 1 {
            debug!(deposits = outcomes.len(), "deposits stored in one commit");
        }
        for ((slot, from, bytes, checked), stored) in accepted.iter().zip(outcomes) {
            let response = match self.deposit_outcome(from, bytes.len(), checked.id, stored) {
                Ok(response) => response,
                Err(refusal) => self.refused(from, refusal),
            };
            responses[*slot] = Some(response);
        }
    }

    /// Counts and logs a refusal; the response that carries it.
    fn refused(&mut self, from: &PeerId, refusal: Refusal) -> MailboxResponse {
        *self.counters.refusals.entry(refusal.name()).or_default() += 1;
        debug!(peer = %from, reason = refusal.name(), "mailbox request refused");
        MailboxResponse::Refused(refusal)
    }

    fn limits(&self) -> Limits {
        Limits {
            quota_envelopes: u64::from(self.config.quota_envelopes),
            quota_bytes: self.config.quota_bytes,
            // Group queues share the server's total.
            max_total_bytes: self
                .config
                .max_total_bytes
                .saturating_sub(self.storage.group_totals().bytes),
            unclaimed_bytes: self.config.unclaimed_bytes,
            unclaimed_ttl_s: self.config.unclaimed_ttl_s,
            claim_ttl_s: self.config.claim_ttl_s,
        }
    }

    /// The policy checks a deposit passes before storage: size, form, expiry, the depositor's rate.
    fn check_deposit(
        &mut self,
        from: &PeerId,
        bytes: &[u8],
        now_s: u64,
    ) -> Result<CheckedDeposit, Refusal> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(Refusal::TooLarge);
        }
        let envelope = Envelope::decode(bytes).map_err(|_| Refusal::Malformed)?;
        if envelope.expires_at <= now_s {
            return Err(Refusal::Expired);
        }
        if envelope.expires_at - now_s > MAX_ENVELOPE_TTL_S {
            return Err(Refusal::ExpiryTooFar);
        }
        if !self.rate.allow(from, now_s) {
            return Err(Refusal::RateLimited);
        }
        Ok(CheckedDeposit {
            mailbox: envelope.mailbox,
            id: envelope.id(),
            keep_until: envelope
                .expires_at
                .min(now_s.saturating_add(self.config.max_ttl_s)),
        })
    }

    fn deposit_outcome(
        &mut self,
        from: &PeerId,
        len: usize,
        id: EnvelopeId,
        stored: Stored,
    ) -> Result<MailboxResponse, Refusal> {
        match stored {
            Stored::New => {
                self.counters.deposits += 1;
                debug!(peer = %from, len, "envelope deposited");
                Ok(MailboxResponse::Deposited { id })
            }
            Stored::Duplicate => {
                self.counters.duplicates += 1;
                Ok(MailboxResponse::Duplicate { id })
            }
            Stored::Refused(refusal) => {
                if refusal == Refusal::ServerFull {
                    warn!(
                        max_total_bytes = self.config.max_total_bytes,
                        "mailbox server is full"
                    );
                }
                Err(refusal)
            }
        }
    }

    fn challenge(&mut self, from: &PeerId, now_s: u64) -> MailboxResponse {
        let expires_at = now_s.saturating_add(self.config.challenge_ttl_s);
        MailboxResponse::Nonce {
            nonce: self.challenges.issue(from, expires_at),
        }
    }

    /// Mailboxes whose owner proved ownership over a connection from `peer` within the last
    /// `challenge_ttl_s * 10` seconds (for pushing new mail while it is connected), as of the latest time
    /// the server was given.
    pub fn owned_by(&self, peer: &PeerId) -> Vec<MailboxId> {
        let window = self
            .config
            .challenge_ttl_s
            .saturating_mul(OWNER_SESSION_TTLS);
        self.owners
            .owned_by(peer, self.clock_s.saturating_sub(window))
    }

    /// Queued envelopes for a mailbox, oldest first (for push): at most `max`, at most
    /// [`MAX_FETCH_ENVELOPES`] and, past the first, at most [`MAX_FETCH_BYTES`] in all. Envelopes past their
    /// keep-until time as of the latest time the server was given are left out.
    pub fn queued(
        &self,
        mailbox: &MailboxId,
        max: usize,
    ) -> Result<Vec<(EnvelopeId, Vec<u8>)>, MailboxError> {
        let max = max.min(MAX_FETCH_ENVELOPES);
        // A closed database (after a failure) has nothing to push; the owner's fetch reopens it.
        let Some(db) = self.storage.current() else {
            return Ok(Vec::new());
        };
        let (queued, _) = db.page(mailbox, 0, self.clock_s, max, MAX_FETCH_BYTES)?;
        Ok(queued.into_iter().map(|q| (q.id, q.bytes)).collect())
    }

    /// Deletes envelopes of `mailbox` after its owner acknowledged a push (ids held in other mailboxes are
    /// left alone), durably; returns how many existed.
    pub fn remove(&mut self, mailbox: &MailboxId, ids: &[EnvelopeId]) -> Result<u32, MailboxError> {
        let now_s = self.clock_s;
        let removed = match self.storage.db(now_s) {
            Ok(db) => db.remove(mailbox, ids),
            Err(_) => return Ok(0),
        };
        let count = removed.inspect_err(|err| {
            self.storage.failed("remove pushed mail", err, now_s);
        })?;
        self.counters.pushed += u64::from(count);
        Ok(count)
    }

    /// Deletes everything whose keep-until time is at or before `now_s`, in transactions of at most
    /// [`PURGE_BATCH`] envelopes; returns how many.
    pub fn purge_expired(&mut self, now_s: u64) -> Result<u64, MailboxError> {
        self.clock_s = self.clock_s.max(now_s);
        let mut total = 0u64;
        // Closed after a failure and not open again yet: nothing purged this time.
        while let Ok(db) = self.storage.db(now_s) {
            let purged = db.purge_batch(now_s).inspect_err(|err| {
                self.storage.failed("purge", err, now_s);
            })?;
            total += len_u64(purged);
            self.counters.expired += len_u64(purged);
            if purged < PURGE_BATCH {
                break;
            }
        }
        let group = self.purge_groups(now_s)?;
        if total > 0 || group > 0 {
            info!(purged = total, group, "expired mail purged");
        }
        if now_s.saturating_sub(self.claims_purged_s) >= CLAIM_PURGE_INTERVAL_S
            && let Ok(db) = self.storage.db(now_s)
        {
            let lapsed = db
                .purge_claims(now_s, self.config.claim_ttl_s)
                .inspect_err(|err| {
                    self.storage.failed("purge claims", err, now_s);
                })?;
            self.claims_purged_s = now_s;
            if lapsed > 0 {
                info!(lapsed, "lapsed mailbox claims purged");
            }
        }
        Ok(total)
    }

    /// Forgets per-connection state of a peer that disconnected (which mailboxes it proved it owns). Its
    /// rate bucket stays (bounded by [`MAX_RATE_BUCKETS`]), so reconnecting does not refill it; its
    /// outstanding nonces expire on their own.
    pub fn peer_disconnected(&mut self, peer: &PeerId) {
        self.owners.forget(peer);
    }

    /// What the server holds.
    pub fn stats(&self) -> MailboxStats {
        let totals = self.storage.totals();
        let group = self.storage.group_totals();
        MailboxStats {
            envelopes: totals.envelopes,
            bytes: totals.bytes,
            mailboxes: totals.mailboxes,
            unclaimed_bytes: totals.unclaimed_bytes,
            claims: totals.claims,
            group_queues: group.queues,
            group_messages: group.messages,
            group_bytes: group.bytes,
        }
    }

    /// What the server has done since it was opened.
    pub fn counters(&self) -> &MailboxCounters {
        &self.counters
    }

    /// Whether the database works now, and its failures and reopenings since the server was opened.
    pub fn storage_health(&self) -> StorageHealth {
        self.storage.health()
    }

    /// The configuration in force (with `max_ttl_s` clamped).
    pub fn config(&self) -> &MailboxConfig {
        &self.config
    }
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}
