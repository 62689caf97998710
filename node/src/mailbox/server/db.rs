//! The mailbox database (redb). It holds only sealed envelopes (ciphertext) and the bookkeeping around them,
//! so, unlike the profile store, nothing in it is sealed again.
//!
//! # Tables
//!
//! `seq` is one server-wide counter, so a mailbox's queue in key order is its deposit order. All integers are
//! big-endian so that byte order is numeric order.
//!
//! | table       | key                                         | value                                        |
//! |-------------|---------------------------------------------|----------------------------------------------|
//! | `meta`      | `"mailbox_format"`, `"next_seq"`, `"total_envelopes"`, `"total_bytes"` | `[1]`, u64 BE, u64 BE, u64 BE |
//! | `envelopes` | `mailbox[32] ‖ seq u64`                     | `keep_until u64 ‖ envelope id[32] ‖ envelope` |
//! | `by_id`     | `envelope id[32]`                           | `mailbox[32] ‖ seq u64 ‖ keep_until u64`      |
//! | `expiry`    | `keep_until u64 ‖ mailbox[32] ‖ seq u64`    | `envelope id[32]`                            |
//! | `usage`     | `mailbox[32]`                               | `envelopes u64 ‖ bytes u64`                   |
//! | `claims`    | `mailbox[32]`                               | `last proof of ownership, unix s, u64`        |
//! | `unclaimed` | `envelope id[32]`                           | `bytes u64`                                   |
//!
//! `claims` names the mailboxes whose owner proved ownership here (a fetch or an acknowledgement with a
//! valid [`OwnerAuth`](crate::mailbox::OwnerAuth)); a claim lapses `claim_ttl_s` after the last proof.
//! `unclaimed` names the envelopes deposited while their mailbox had no live claim: they share the small
//! `unclaimed_bytes` budget and are kept only `unclaimed_ttl_s` (see
//! [`MailboxConfig`](super::MailboxConfig)). Both tables were added to format 1 without a new version: an
//! older build ignores them, and this build recounts `unclaimed` on open, dropping rows whose envelope an
//! older build deleted.
//!
//! Every deposit, removal and purge batch updates all the tables it touches in one write transaction,
//! committed with redb's default durability ([`redb::Durability::Immediate`]): when a method returns `Ok`
//! the change is on disk. "Bytes" always means envelope bytes (the ciphertext as deposited), not overhead.

mod group;

use std::path::Path;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};
use tern_protocol::{EnvelopeId, MailboxId};

use super::MailboxError;
use crate::mailbox::Refusal;
use crate::redb_file::{Mode, open_checked};

pub(super) use group::{GroupDeposit, GroupStored, GroupTotals, Queue, QueueKey};
pub use group::{MAX_GROUP_QUEUE, MAX_GROUP_QUEUE_BYTES, MAX_GROUP_QUEUES, MAX_QUEUE_KEYS};

/// The mailbox database format this build reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// [`MailboxServer::purge_expired`](super::MailboxServer::purge_expired) deletes at most this many envelopes
/// per transaction (it commits and continues until nothing expired is left).
pub const PURGE_BATCH: usize = 10_000;

const SLOT_LEN: usize = 32 + 8;
const LOCATION_LEN: usize = 32 + 8 + 8;
const ENTRY_HEADER_LEN: usize = 8 + 32;

type SlotKey = [u8; SLOT_LEN];
type Location = [u8; LOCATION_LEN];

const META: TableDefinition<'static, &'static str, &'static [u8]> = TableDefinition::new("meta");
const ENVELOPES: TableDefinition<'static, &'static SlotKey, &'static [u8]> =
    TableDefinition::new("envelopes");
const BY_ID: TableDefinition<'static, &'static [u8; 32], &'static Location> =
    TableDefinition::new("by_id");
const EXPIRY: TableDefinition<'static, &'static Location, &'static [u8; 32]> =
    TableDefinition::new("expiry");
const USAGE: TableDefinition<'static, &'static [u8; 32], &'static [u8; 16]> =
    TableDefinition::new("usage");
const CLAIMS: TableDefinition<'static, &'static [u8; 32], u64> = TableDefinition::new("claims");
const UNCLAIMED: TableDefinition<'static, &'static [u8; 32], u64> =
    TableDefinition::new("unclaimed");

/// At most this many mailboxes are claimed at once; past it a new owner's proof is still accepted, but its
/// mailbox is not recorded as claimed (its mail is held as unclaimed mail) until lapsed claims are purged.
pub const MAX_CLAIMS: u64 = 100_000;
/// A live claim is written again at most this often (seconds), so an owner's fetches do not each commit.
pub const CLAIM_REFRESH_S: u64 = 24 * 3600;

const META_FORMAT: &str = "mailbox_format";
const META_NEXT_SEQ: &str = "next_seq";
const META_TOTAL_ENVELOPES: &str = "total_envelopes";
const META_TOTAL_BYTES: &str = "total_bytes";

/// What the whole database holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Totals {
    pub envelopes: u64,
    pub bytes: u64,
    pub mailboxes: u64,
    pub next_seq: u64,
    /// Envelope bytes held for mailboxes that had no live claim when they were deposited.
    pub unclaimed_bytes: u64,
    /// Rows in `claims` (live or lapsed and not purged yet).
    pub claims: u64,
}

/// The storage limits a deposit is checked against.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub quota_envelopes: u64,
    pub quota_bytes: u64,
    pub max_total_bytes: u64,
    /// At most this many bytes of unclaimed mail on the server.
    pub unclaimed_bytes: u64,
    /// Unclaimed mail is kept at most this long (seconds) after its deposit.
    pub unclaimed_ttl_s: u64,
    /// A claim is live this long (seconds) after the owner's last proof.
    pub claim_ttl_s: u64,
}

/// What became of a deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// Stored durably.
    New,
    /// An envelope with this id is held and not expired; nothing changed.
    Duplicate,
    /// Refused for a storage limit ([`Refusal::QuotaCount`], [`Refusal::QuotaBytes`],
    /// [`Refusal::ServerFull`]); nothing changed.
    Refused(Refusal),
}

/// One queued envelope.
pub(super) struct Queued {
    pub id: EnvelopeId,
    /// Its place in the server-wide deposit order (a page cursor is the `seq` after a page's last).
    pub seq: u64,
    pub bytes: Vec<u8>,
}

fn slot_key(mailbox: &MailboxId, seq: u64) -> SlotKey {
    let mut key = [0u8; SLOT_LEN];
    key[..32].copy_from_slice(&mailbox.0);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `by_id` value: `mailbox ‖ seq ‖ keep_until`.
fn location(mailbox: &MailboxId, seq: u64, keep_until: u64) -> Location {
    let mut loc = [0u8; LOCATION_LEN];
    loc[..32].copy_from_slice(&mailbox.0);
    loc[32..40].copy_from_slice(&seq.to_be_bytes());
    loc[40..].copy_from_slice(&keep_until.to_be_bytes());
    loc
}

/// `expiry` key: `keep_until ‖ mailbox ‖ seq`.
fn expiry_key(mailbox: &MailboxId, seq: u64, keep_until: u64) -> Location {
    let mut key = [0u8; LOCATION_LEN];
    key[..8].copy_from_slice(&keep_until.to_be_bytes());
    key[8..40].copy_from_slice(&mailbox.0);
    key[40..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    if let Some(src) = bytes.get(at..at + 8) {
        buf.copy_from_slice(src);
    }
    u64::from_be_bytes(buf)
}

fn array32(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Some(src) = bytes.get(..32) {
        out.copy_from_slice(src);
    }
    out
}

struct Parsed<'a> {
    keep_until: u64,
    id: EnvelopeId,
    envelope: &'a [u8],
}

fn parse_entry(value: &[u8]) -> Result<Parsed<'_>, MailboxError> {
    if value.len() < ENTRY_HEADER_LEN {
        return Err(MailboxError::Corrupt("envelope entry too short".into()));
    }
    let (header, envelope) = value.split_at(ENTRY_HEADER_LEN);
    Ok(Parsed {
        keep_until: u64_at(header, 0),
        id: EnvelopeId(array32(&header[8..])),
        envelope,
    })
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

fn read_meta_u64(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<u64, MailboxError> {
    match meta.get(name)? {
        None => Ok(0),
        Some(value) => {
            let bytes = value.value();
            if bytes.len() != 8 {
                return Err(MailboxError::Corrupt(format!("meta {name} malformed")));
            }
            Ok(u64_at(bytes, 0))
        }
    }
}

/// The open tables of one write transaction.
struct Tables<'t> {
    envelopes: Table<'t, &'static SlotKey, &'static [u8]>,
    by_id: Table<'t, &'static [u8; 32], &'static Location>,
    expiry: Table<'t, &'static Location, &'static [u8; 32]>,
    usage: Table<'t, &'static [u8; 32], &'static [u8; 16]>,
    claims: Table<'t, &'static [u8; 32], u64>,
    unclaimed: Table<'t, &'static [u8; 32], u64>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, MailboxError> {
        Ok(Self {
            envelopes: txn.open_table(ENVELOPES)?,
            by_id: txn.open_table(BY_ID)?,
            expiry: txn.open_table(EXPIRY)?,
            usage: txn.open_table(USAGE)?,
            claims: txn.open_table(CLAIMS)?,
            unclaimed: txn.open_table(UNCLAIMED)?,
        })
    }

    /// Whether `mailbox`'s owner proved ownership within `claim_ttl_s` before `now`.
    fn claimed(
        &self,
        mailbox: &MailboxId,
        now: u64,
        claim_ttl_s: u64,
    ) -> Result<bool, MailboxError> {
        Ok(self
            .claims
            .get(&mailbox.0)?
            .is_some_and(|last| last.value().saturating_add(claim_ttl_s) > now))
    }

    fn usage(&self, mailbox: &MailboxId) -> Result<(u64, u64), MailboxError> {
        Ok(match self.usage.get(&mailbox.0)? {
            Some(v) => {
                let v = v.value();
                (u64_at(v, 0), u64_at(v, 8))
            }
            None => (0, 0),
        })
    }

    /// Writes a mailbox's usage, deleting the row when it is empty; keeps `totals.mailboxes` in step.
    fn set_usage(
        &mut self,
        mailbox: &MailboxId,
        count: u64,
        bytes: u64,
        totals: &mut Totals,
    ) -> Result<(), MailboxError> {
        if count == 0 {
            if self.usage.remove(&mailbox.0)?.is_some() {
                totals.mailboxes = totals.mailboxes.saturating_sub(1);
            }
        } else {
            let mut value = [0u8; 16];
            value[..8].copy_from_slice(&count.to_be_bytes());
            value[8..].copy_from_slice(&bytes.to_be_bytes());
            if self.usage.insert(&mailbox.0, &value)?.is_none() {
                totals.mailboxes += 1;
            }
        }
        Ok(())
    }

    /// Deletes the envelope `id` if it is held (and, with `only_in`, only if it is in that mailbox).
    /// Returns whether it existed.
    fn delete(
        &mut self,
        id: &EnvelopeId,
        only_in: Option<&MailboxId>,
        totals: &mut Totals,
    ) -> Result<bool, MailboxError> {
        let Some(loc) = self.by_id.get(&id.0)?.map(|v| *v.value()) else {
            return Ok(false);
        };
        let mailbox = MailboxId(array32(&loc));
        if only_in.is_some_and(|m| *m != mailbox) {
            return Ok(false);
        }
        let seq = u64_at(&loc, 32);
        let keep_until = u64_at(&loc, 40);
        self.by_id.remove(&id.0)?;
        self.expiry.remove(&expiry_key(&mailbox, seq, keep_until))?;
        let len = match self.envelopes.remove(&slot_key(&mailbox, seq))? {
            Some(v) => len_u64(v.value().len().saturating_sub(ENTRY_HEADER_LEN)),
            None => {
                return Err(MailboxError::Corrupt(
                    "an envelope index names a missing envelope".into(),
                ));
            }
        };
        let (count, bytes) = self.usage(&mailbox)?;
        self.set_usage(
            &mailbox,
            count.saturating_sub(1),
            bytes.saturating_sub(len),
            totals,
        )?;
        if self.unclaimed.remove(&id.0)?.is_some() {
            totals.unclaimed_bytes = totals.unclaimed_bytes.saturating_sub(len);
        }
        totals.envelopes = totals.envelopes.saturating_sub(1);
        totals.bytes = totals.bytes.saturating_sub(len);
        Ok(true)
    }
}

fn write_totals(txn: &WriteTransaction, totals: &Totals) -> Result<(), MailboxError> {
    let mut meta = txn.open_table(META)?;
    meta.insert(META_NEXT_SEQ, totals.next_seq.to_be_bytes().as_slice())?;
    meta.insert(
        META_TOTAL_ENVELOPES,
        totals.envelopes.to_be_bytes().as_slice(),
    )?;
    meta.insert(META_TOTAL_BYTES, totals.bytes.to_be_bytes().as_slice())?;
    Ok(())
}

fn open_database(path: &Path) -> Result<Database, MailboxError> {
    Ok(open_checked(path, Mode::CreateIfMissing)?)
}

/// One deposit for [`Db::deposit_many`], already checked by the server's policy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deposit<'a> {
    pub mailbox: MailboxId,
    pub id: EnvelopeId,
    pub envelope: &'a [u8],
    pub keep_until: u64,
}

/// One deposit inside an open write transaction; on a refusal or duplicate it writes nothing (except
/// replacing an expired copy of the same id, which the purge would delete anyway).
fn deposit_in(
    t: &mut Tables<'_>,
    totals: &mut Totals,
    deposit: &Deposit<'_>,
    now: u64,
    limits: Limits,
) -> Result<Stored, MailboxError> {
    let Deposit {
        mailbox,
        id,
        envelope,
        keep_until,
    } = deposit;
    let len = len_u64(envelope.len());
    let existing = t.by_id.get(&id.0)?.map(|v| *v.value());
    if let Some(loc) = existing {
        if u64_at(&loc, 40) > now {
            return Ok(Stored::Duplicate);
        }
        t.delete(id, None, totals)?;
    }
    let unclaimed = !t.claimed(mailbox, now, limits.claim_ttl_s)?;
    let keep_until = if unclaimed {
        (*keep_until).min(now.saturating_add(limits.unclaimed_ttl_s))
    } else {
        *keep_until
    };
    let (count, bytes) = t.usage(mailbox)?;
    if count.saturating_add(1) > limits.quota_envelopes {
        return Ok(Stored::Refused(Refusal::QuotaCount));
    }
    if bytes.saturating_add(len) > limits.quota_bytes {
        return Ok(Stored::Refused(Refusal::QuotaBytes));
    }
    if totals.bytes.saturating_add(len) > limits.max_total_bytes
        || (unclaimed && totals.unclaimed_bytes.saturating_add(len) > limits.unclaimed_bytes)
    {
        return Ok(Stored::Refused(Refusal::ServerFull));
    }
    let seq = totals.next_seq;
    totals.next_seq = seq
        .checked_add(1)
        .ok_or_else(|| MailboxError::Corrupt("deposit sequence exhausted".into()))?;
    let mut entry = Vec::with_capacity(ENTRY_HEADER_LEN + envelope.len());
    entry.extend_from_slice(&keep_until.to_be_bytes());
    entry.extend_from_slice(&id.0);
    entry.extend_from_slice(envelope);
    t.envelopes
        .insert(&slot_key(mailbox, seq), entry.as_slice())?;
    t.by_id.insert(&id.0, &location(mailbox, seq, keep_until))?;
    t.expiry
        .insert(&expiry_key(mailbox, seq, keep_until), &id.0)?;
    t.set_usage(mailbox, count + 1, bytes.saturating_add(len), totals)?;
    if unclaimed {
        t.unclaimed.insert(&id.0, len)?;
        totals.unclaimed_bytes = totals.unclaimed_bytes.saturating_add(len);
    }
    totals.envelopes += 1;
    totals.bytes = totals.bytes.saturating_add(len);
    Ok(Stored::New)
}

/// The open mailbox database, with its totals cached (they change only after a commit succeeds).
pub(super) struct Db {
    db: Database,
    totals: Totals,
    /// What the group queues hold (the `group` submodule).
    group: GroupTotals,
}

impl Db {
    /// Opens or creates the database, checks its format and tables, and loads its totals.
    pub fn open(path: &Path) -> Result<Self, MailboxError> {
        Self::init(open_database(path)?)
    }

    /// Like [`Self::open`] over an already opened database.
    pub fn init(db: Database) -> Result<Self, MailboxError> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let envelopes = txn.open_table(ENVELOPES)?;
            txn.open_table(BY_ID)?;
            txn.open_table(EXPIRY)?;
            txn.open_table(USAGE)?;
            txn.open_table(CLAIMS)?;
            txn.open_table(UNCLAIMED)?;
            let format = meta.get(META_FORMAT)?.map(|v| v.value().to_vec());
            match format.as_deref() {
                Some([FORMAT_VERSION]) => {}
                Some([found]) => {
                    return Err(MailboxError::UnsupportedVersion {
                        found: *found,
                        supported: FORMAT_VERSION,
                    });
                }
                Some(_) => return Err(MailboxError::Corrupt("format version malformed".into())),
                // A new (or empty) file; anything else without the mark is some other database.
                None if meta.is_empty()? && envelopes.is_empty()? => {
                    meta.insert(META_FORMAT, [FORMAT_VERSION].as_slice())?;
                }
                None => {
                    return Err(MailboxError::Corrupt(
                        "not a mailbox database (format version missing)".into(),
                    ));
                }
            }
        }
        let unclaimed_bytes = recount_unclaimed(&txn)?;
        let group = group::init(&txn)?;
        txn.commit()?;

        let read = db.begin_read()?;
        let meta = read.open_table(META)?;
        let totals = Totals {
            envelopes: read_meta_u64(&meta, META_TOTAL_ENVELOPES)?,
            bytes: read_meta_u64(&meta, META_TOTAL_BYTES)?,
            mailboxes: read.open_table(USAGE)?.len()?,
            next_seq: read_meta_u64(&meta, META_NEXT_SEQ)?,
            unclaimed_bytes,
            claims: read.open_table(CLAIMS)?.len()?,
        };
        if totals.envelopes != read.open_table(ENVELOPES)?.len()? {
            return Err(MailboxError::Corrupt(
                "the envelope count does not match the envelopes held".into(),
            ));
        }
        drop(meta);
        drop(read);
        Ok(Self { db, totals, group })
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Stores each deposit (already checked by the policy) in its mailbox until its keep-until time, unless
    /// it is a duplicate or a limit refuses it; an expired copy of the same id (not yet purged) is replaced.
    /// Group commit: the deposits are taken in order, all in one write transaction committed once. Returns one outcome per deposit; none of them is
    /// durable before this returns `Ok` (on `Err` nothing is). A later deposit sees the earlier ones: a
    /// second copy of an id is a duplicate, and quotas count what came before it.
    pub fn deposit_many(
        &mut self,
        deposits: &[Deposit<'_>],
        now: u64,
        limits: Limits,
    ) -> Result<Vec<Stored>, MailboxError> {
        let mut totals = self.totals;
        let mut outcomes = Vec::with_capacity(deposits.len());
        let txn = self.db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            for deposit in deposits {
                outcomes.push(deposit_in(&mut t, &mut totals, deposit, now, limits)?);
            }
        }
        if !outcomes.contains(&Stored::New) {
            // Nothing new: leave the file as it was (an expired copy stays for the purge).
            return Ok(outcomes);
        }
        write_totals(&txn, &totals)?;
        txn.commit()?;
        self.totals = totals;
        Ok(outcomes)
    }

    /// A mailbox's envelopes from `seq` `from` on still kept at `now` (keep-until after `now`), oldest first:
    /// at most `max_count` and, past the first, at most `max_bytes` in all. The flag is set if more such
    /// envelopes remain.
    pub fn page(
        &self,
        mailbox: &MailboxId,
        from: u64,
        now: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<(Vec<Queued>, bool), MailboxError> {
        let txn = self.db.begin_read()?;
        let envelopes = txn.open_table(ENVELOPES)?;
        let start = slot_key(mailbox, from);
        let end = slot_key(mailbox, u64::MAX);
        let mut out = Vec::new();
        let mut total = 0usize;
        for row in envelopes.range::<&SlotKey>(&start..=&end)? {
            let (key, value) = row?;
            let seq = u64_at(key.value(), 32);
            let value = value.value();
            let entry = parse_entry(value)?;
            if entry.keep_until <= now {
                continue;
            }
            let fits_bytes =
                out.is_empty() || total.saturating_add(entry.envelope.len()) <= max_bytes;
            if out.len() >= max_count || !fits_bytes {
                return Ok((out, true));
            }
            total = total.saturating_add(entry.envelope.len());
            out.push(Queued {
                id: entry.id,
                seq,
                bytes: entry.envelope.to_vec(),
            });
        }
        Ok((out, false))
    }

    /// Deletes the named envelopes of `mailbox` (ids held in other mailboxes are left alone) in one
    /// transaction; returns how many existed.
    pub fn remove(&mut self, mailbox: &MailboxId, ids: &[EnvelopeId]) -> Result<u32, MailboxError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut totals = self.totals;
        let mut removed = 0u32;
        let txn = self.db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            for id in ids {
                if t.delete(id, Some(mailbox), &mut totals)? {
                    removed = removed.saturating_add(1);
                }
            }
        }
        if removed == 0 {
            return Ok(0);
        }
        write_totals(&txn, &totals)?;
        txn.commit()?;
        self.totals = totals;
        Ok(removed)
    }

    /// Deletes up to [`PURGE_BATCH`] envelopes whose keep-until is at or before `now`, in one transaction;
    /// returns how many.
    pub fn purge_batch(&mut self, now: u64) -> Result<usize, MailboxError> {
        let mut totals = self.totals;
        let txn = self.db.begin_write()?;
        let purged;
        {
            let mut t = Tables::open(&txn)?;
            let end = expiry_key(&MailboxId([0xff; 32]), u64::MAX, now);
            let mut ids = Vec::new();
            for row in t.expiry.range::<&Location>(..=&end)?.take(PURGE_BATCH) {
                let (_, id) = row?;
                ids.push(EnvelopeId(*id.value()));
            }
            purged = ids.len();
            for id in &ids {
                if !t.delete(id, None, &mut totals)? {
                    return Err(MailboxError::Corrupt(
                        "an expiry entry names a missing envelope".into(),
                    ));
                }
            }
        }
        if purged == 0 {
            return Ok(0);
        }
        write_totals(&txn, &totals)?;
        txn.commit()?;
        self.totals = totals;
        Ok(purged)
    }

    /// Records that `mailbox`'s owner proved ownership at `now`: a new claim (unless [`MAX_CLAIMS`] are
    /// held), or a live one refreshed if it was last written [`CLAIM_REFRESH_S`] or more ago. Returns whether
    /// the mailbox is claimed now. Commits only when it writes.
    pub fn claim(&mut self, mailbox: &MailboxId, now: u64) -> Result<bool, MailboxError> {
        let last = {
            let read = self.db.begin_read()?;
            let claims = read.open_table(CLAIMS)?;
            claims.get(&mailbox.0)?.map(|v| v.value())
        };
        match last {
            Some(last) if now.saturating_sub(last) < CLAIM_REFRESH_S => return Ok(true),
            None if self.totals.claims >= MAX_CLAIMS => return Ok(false),
            _ => {}
        }
        let txn = self.db.begin_write()?;
        let added = txn.open_table(CLAIMS)?.insert(&mailbox.0, now)?.is_none();
        txn.commit()?;
        if added {
            self.totals.claims += 1;
        }
        Ok(true)
    }

    /// Deletes up to [`PURGE_BATCH`] claims whose last proof is `claim_ttl_s` or more before `now`, in one
    /// transaction; returns how many. (A scan: the table is bounded by [`MAX_CLAIMS`].)
    pub fn purge_claims(&mut self, now: u64, claim_ttl_s: u64) -> Result<usize, MailboxError> {
        let txn = self.db.begin_write()?;
        let purged;
        {
            let mut claims = txn.open_table(CLAIMS)?;
            let mut lapsed = Vec::new();
            for row in claims.iter()? {
                let (mailbox, last) = row?;
                if last.value().saturating_add(claim_ttl_s) <= now {
                    lapsed.push(*mailbox.value());
                    if lapsed.len() >= PURGE_BATCH {
                        break;
                    }
                }
            }
            purged = lapsed.len();
            for mailbox in &lapsed {
                claims.remove(mailbox)?;
            }
        }
        if purged == 0 {
            return Ok(0);
        }
        txn.commit()?;
        self.totals.claims = self.totals.claims.saturating_sub(len_u64(purged));
        Ok(purged)
    }
}

/// The bytes of unclaimed mail, counted afresh; rows naming an envelope no longer held (deleted by a build
/// that did not know the table) are dropped.
fn recount_unclaimed(txn: &WriteTransaction) -> Result<u64, MailboxError> {
    let by_id = txn.open_table(BY_ID)?;
    let mut unclaimed = txn.open_table(UNCLAIMED)?;
    let mut bytes = 0u64;
    let mut stale = Vec::new();
    for row in unclaimed.iter()? {
        let (id, len) = row?;
        if by_id.get(id.value())?.is_some() {
            bytes = bytes.saturating_add(len.value());
        } else {
            stale.push(*id.value());
        }
    }
    for id in &stale {
        unclaimed.remove(id)?;
    }
    Ok(bytes)
}
