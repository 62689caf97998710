//! Group queues in the mailbox database (docs/protocol.md §18.6): one copy of each group message for the
//! whole group, under a sequence number the server gives per queue.
//!
//! | table            | key                          | value                                                    |
//! |------------------|------------------------------|----------------------------------------------------------|
//! | `group_queues`   | `queue_id[16]`               | `next_seq u64 ‖ count u64 ‖ bytes u64 ‖ last_active u64 ‖ u8 n ‖ n × (epoch u64 ‖ key[32] ‖ read_limit u64)` |
//! | `group_messages` | `queue_id[16] ‖ seq u64`     | `deposited_at u64 ‖ hash[32] ‖ message`                  |
//! | `group_hashes`   | `queue_id[16] ‖ hash[32]`    | `seq u64`                                                |
//!
//! `read_limit` is the highest sequence number a key may read (`u64::MAX` while it is live). The tables
//! were added to format 1 without a new version: an older build ignores them. Every change is one write
//! transaction with redb's default (durable) commit, as for personal mail.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition};
use tern_protocol::group_queue::{EpochPublicKey, QUEUE_ID_LEN, QueueId};

use super::{Db, MailboxError, array32, len_u64, u64_at};
use crate::mailbox::Refusal;
use crate::mailbox::group_wire::QueuedMessage;

/// At most this many group queues on a server ([`Refusal::ServerFull`] past it).
pub const MAX_GROUP_QUEUES: u64 = 100_000;
/// A queue keeps at most this many messages; the oldest is dropped for a new one.
pub const MAX_GROUP_QUEUE: u64 = 10_000;
/// A queue keeps at most this many message bytes; the oldest are dropped for a new one.
pub const MAX_GROUP_QUEUE_BYTES: u64 = 64 * 1024 * 1024;
/// A queue remembers at most this many epoch keys, the lowest epochs dropped first.
pub const MAX_QUEUE_KEYS: usize = 64;

const QUEUE_KEY_LEN: usize = QUEUE_ID_LEN + 8;
const HASH_KEY_LEN: usize = QUEUE_ID_LEN + 32;
const QUEUE_HEADER_LEN: usize = 8 * 4 + 1;
const KEY_ENTRY_LEN: usize = 8 + 32 + 8;
const MESSAGE_HEADER_LEN: usize = 8 + 32;

type SeqKey = [u8; QUEUE_KEY_LEN];
type HashKey = [u8; HASH_KEY_LEN];

const QUEUES: TableDefinition<'static, &'static [u8; QUEUE_ID_LEN], &'static [u8]> =
    TableDefinition::new("group_queues");
const MESSAGES: TableDefinition<'static, &'static SeqKey, &'static [u8]> =
    TableDefinition::new("group_messages");
const HASHES: TableDefinition<'static, &'static HashKey, u64> =
    TableDefinition::new("group_hashes");

/// What the group queues hold in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(in crate::mailbox::server) struct GroupTotals {
    pub queues: u64,
    pub messages: u64,
    pub bytes: u64,
}

/// One epoch key registered with a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::mailbox::server) struct QueueKey {
    pub epoch: u64,
    pub key: EpochPublicKey,
    /// The highest sequence number this key may read.
    pub read_limit: u64,
}

/// A queue's bookkeeping row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::mailbox::server) struct Queue {
    pub next_seq: u64,
    pub count: u64,
    pub bytes: u64,
    pub last_active: u64,
    pub keys: Vec<QueueKey>,
}

impl Queue {
    pub fn key(&self, key: &EpochPublicKey) -> Option<QueueKey> {
        self.keys.iter().find(|k| k.key == *key).copied()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(QUEUE_HEADER_LEN + self.keys.len() * KEY_ENTRY_LEN);
        for v in [self.next_seq, self.count, self.bytes, self.last_active] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.push(u8::try_from(self.keys.len()).unwrap_or(u8::MAX));
        for k in self.keys.iter().take(MAX_QUEUE_KEYS) {
            out.extend_from_slice(&k.epoch.to_be_bytes());
            out.extend_from_slice(k.key.as_bytes());
            out.extend_from_slice(&k.read_limit.to_be_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, MailboxError> {
        let corrupt = || MailboxError::Corrupt("group queue row malformed".into());
        let n = usize::from(*bytes.get(QUEUE_HEADER_LEN - 1).ok_or_else(corrupt)?);
        if bytes.len() != QUEUE_HEADER_LEN + n * KEY_ENTRY_LEN {
            return Err(corrupt());
        }
        let keys = bytes[QUEUE_HEADER_LEN..]
            .chunks_exact(KEY_ENTRY_LEN)
            .map(|c| {
                Ok(QueueKey {
                    epoch: u64_at(c, 0),
                    key: EpochPublicKey::from_bytes(array32(&c[8..])).map_err(|_| corrupt())?,
                    read_limit: u64_at(c, 40),
                })
            })
            .collect::<Result<Vec<_>, MailboxError>>()?;
        Ok(Self {
            next_seq: u64_at(bytes, 0),
            count: u64_at(bytes, 8),
            bytes: u64_at(bytes, 16),
            last_active: u64_at(bytes, 24),
            keys,
        })
    }

    /// Adds a key, dropping the lowest epochs past [`MAX_QUEUE_KEYS`].
    pub fn add_key(&mut self, key: QueueKey) {
        if self.key(&key.key).is_some() {
            return;
        }
        self.keys.push(key);
        self.keys.sort_by_key(|k| std::cmp::Reverse(k.epoch));
        self.keys.truncate(MAX_QUEUE_KEYS);
    }
}

fn seq_key(queue: &QueueId, seq: u64) -> SeqKey {
    let mut key = [0u8; QUEUE_KEY_LEN];
    key[..QUEUE_ID_LEN].copy_from_slice(&queue.0);
    key[QUEUE_ID_LEN..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn hash_key(queue: &QueueId, hash: &[u8; 32]) -> HashKey {
    let mut key = [0u8; HASH_KEY_LEN];
    key[..QUEUE_ID_LEN].copy_from_slice(&queue.0);
    key[QUEUE_ID_LEN..].copy_from_slice(hash);
    key
}

/// A group deposit that passed the policy checks.
pub(in crate::mailbox::server) struct GroupDeposit<'a> {
    pub queue: QueueId,
    pub hash: [u8; 32],
    pub message: &'a [u8],
    /// The queue row as the checks saw it, with any new key already added (and revocations applied).
    pub updated: Queue,
    /// Room left on the whole server for group bytes.
    pub room: u64,
}

/// What became of a group deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::mailbox::server) enum GroupStored {
    New { seq: u64 },
    Duplicate,
}

struct GroupTables<'t> {
    queues: Table<'t, &'static [u8; QUEUE_ID_LEN], &'static [u8]>,
    messages: Table<'t, &'static SeqKey, &'static [u8]>,
    hashes: Table<'t, &'static HashKey, u64>,
}

impl<'t> GroupTables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, MailboxError> {
        Ok(Self {
            queues: txn.open_table(QUEUES)?,
            messages: txn.open_table(MESSAGES)?,
            hashes: txn.open_table(HASHES)?,
        })
    }

    /// Deletes a queue's oldest message; returns its length (`None` if the queue is empty).
    fn drop_oldest(&mut self, queue: &QueueId) -> Result<Option<u64>, MailboxError> {
        let first = self
            .messages
            .range::<&SeqKey>(&seq_key(queue, 0)..=&seq_key(queue, u64::MAX))?
            .next()
            .transpose()?
            .map(|(k, v)| (*k.value(), v.value().to_vec()));
        let Some((key, value)) = first else {
            return Ok(None);
        };
        self.messages.remove(&key)?;
        self.hashes
            .remove(&hash_key(queue, &array32(&value[8..])))?;
        Ok(Some(len_u64(
            value.len().saturating_sub(MESSAGE_HEADER_LEN),
        )))
    }
}

/// Creates the group tables and counts what they hold.
pub(super) fn init(txn: &redb::WriteTransaction) -> Result<GroupTotals, MailboxError> {
    let t = GroupTables::open(txn)?;
    let mut totals = GroupTotals {
        queues: t.queues.len()?,
        ..GroupTotals::default()
    };
    for row in t.queues.iter()? {
        let (_, value) = row?;
        let queue = Queue::decode(value.value())?;
        totals.messages += queue.count;
        totals.bytes = totals.bytes.saturating_add(queue.bytes);
    }
    if totals.messages != t.messages.len()? {
        return Err(MailboxError::Corrupt(
            "the group message count does not match the messages held".into(),
        ));
    }
    Ok(totals)
}

impl Db {
    pub(in crate::mailbox::server) fn group_totals(&self) -> GroupTotals {
        self.group
    }

    /// A queue's bookkeeping row, if the queue exists.
    pub(in crate::mailbox::server) fn queue(
        &self,
        queue: &QueueId,
    ) -> Result<Option<Queue>, MailboxError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(QUEUES)?;
        table
            .get(&queue.0)?
            .map(|v| Queue::decode(v.value()))
            .transpose()
    }

    /// Writes a queue row (a new queue, a key added, activity noted), committing once. A new queue
    /// past [`MAX_GROUP_QUEUES`] is refused with [`Refusal::ServerFull`].
    pub(in crate::mailbox::server) fn put_queue(
        &mut self,
        queue: &QueueId,
        row: &Queue,
    ) -> Result<Result<(), Refusal>, MailboxError> {
        let txn = self.db.begin_write()?;
        let added = {
            let mut table = txn.open_table(QUEUES)?;
            let exists = table.get(&queue.0)?.is_some();
            if !exists && self.group.queues >= MAX_GROUP_QUEUES {
                return Ok(Err(Refusal::ServerFull));
            }
            table.insert(&queue.0, row.encode().as_slice())?;
            !exists
        };
        txn.commit()?;
        if added {
            self.group.queues += 1;
        }
        Ok(Ok(()))
    }

    /// Stores one message in its queue, after the oldest ones if the queue is past [`MAX_GROUP_QUEUE`] or
    /// [`MAX_GROUP_QUEUE_BYTES`]; a message already held (same hash) is a duplicate and changes nothing.
    /// Durable when it returns `Ok(Ok(_))`; `Ok(Err(ServerFull))` when the server has no room.
    pub(in crate::mailbox::server) fn group_deposit(
        &mut self,
        deposit: GroupDeposit<'_>,
        now: u64,
    ) -> Result<Result<GroupStored, Refusal>, MailboxError> {
        let GroupDeposit {
            queue,
            hash,
            message,
            mut updated,
            room,
        } = deposit;
        let len = len_u64(message.len());
        let mut totals = self.group;
        let txn = self.db.begin_write()?;
        let seq = {
            let mut t = GroupTables::open(&txn)?;
            if t.hashes.get(&hash_key(&queue, &hash))?.is_some() {
                return Ok(Ok(GroupStored::Duplicate));
            }
            while updated.count > 0
                && (updated.count + 1 > MAX_GROUP_QUEUE
                    || updated.bytes.saturating_add(len) > MAX_GROUP_QUEUE_BYTES)
            {
                let Some(dropped) = t.drop_oldest(&queue)? else {
                    return Err(MailboxError::Corrupt(
                        "a group queue counts messages it does not hold".into(),
                    ));
                };
                updated.count -= 1;
                updated.bytes = updated.bytes.saturating_sub(dropped);
                totals.messages = totals.messages.saturating_sub(1);
                totals.bytes = totals.bytes.saturating_sub(dropped);
            }
            if totals.bytes.saturating_add(len) > room {
                return Ok(Err(Refusal::ServerFull));
            }
            let seq = updated.next_seq.max(1);
            updated.next_seq = seq
                .checked_add(1)
                .ok_or_else(|| MailboxError::Corrupt("group sequence exhausted".into()))?;
            updated.count += 1;
            updated.bytes = updated.bytes.saturating_add(len);
            let mut value = Vec::with_capacity(MESSAGE_HEADER_LEN + message.len());
            value.extend_from_slice(&now.to_be_bytes());
            value.extend_from_slice(&hash);
            value.extend_from_slice(message);
            t.messages.insert(&seq_key(&queue, seq), value.as_slice())?;
            t.hashes.insert(&hash_key(&queue, &hash), seq)?;
            t.queues.insert(&queue.0, updated.encode().as_slice())?;
            seq
        };
        txn.commit()?;
        totals.messages += 1;
        totals.bytes = totals.bytes.saturating_add(len);
        self.group = totals;
        Ok(Ok(GroupStored::New { seq }))
    }

    /// A queue's messages with `cursor ≤ seq ≤ read_limit`, oldest first: at most `max_count` and, past the
    /// first, at most `max_bytes` in all. The flag is set if more such messages remain.
    pub(in crate::mailbox::server) fn group_page(
        &self,
        queue: &QueueId,
        cursor: u64,
        read_limit: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<(Vec<QueuedMessage>, bool), MailboxError> {
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let start = seq_key(queue, cursor);
        let end = seq_key(queue, read_limit);
        let mut out = Vec::new();
        let mut total = 0usize;
        for row in messages.range::<&SeqKey>(&start..=&end)? {
            let (key, value) = row?;
            let value = value.value();
            let message = value
                .get(MESSAGE_HEADER_LEN..)
                .ok_or_else(|| MailboxError::Corrupt("group message row too short".into()))?;
            let fits = out.is_empty() || total.saturating_add(message.len()) <= max_bytes;
            if out.len() >= max_count || !fits {
                return Ok((out, true));
            }
            total = total.saturating_add(message.len());
            out.push(QueuedMessage {
                seq: u64_at(key.value(), QUEUE_ID_LEN),
                message: message.to_vec(),
            });
        }
        Ok((out, false))
    }

    /// Deletes messages deposited `retention_s` or more before `now`, and queues inactive for `idle_s`
    /// (with whatever they hold), at most `batch` messages per call, in one transaction; returns how many
    /// messages went. (A scan of the queue rows: they are bounded by [`MAX_GROUP_QUEUES`].)
    pub(in crate::mailbox::server) fn group_purge(
        &mut self,
        now: u64,
        retention_s: u64,
        idle_s: u64,
        batch: usize,
    ) -> Result<usize, MailboxError> {
        let mut totals = self.group;
        let txn = self.db.begin_write()?;
        let mut purged = 0usize;
        let mut changed = false;
        {
            let mut t = GroupTables::open(&txn)?;
            // Only the ids and activity times are collected (not the keys): a few MiB at MAX_GROUP_QUEUES.
            let mut rows = Vec::new();
            for row in t.queues.iter()? {
                let (id, value) = row?;
                rows.push((
                    QueueId(*id.value()),
                    u64_at(value.value(), 8),
                    u64_at(value.value(), 24),
                ));
            }
            for (id, count, last_active) in rows {
                let idle = last_active.saturating_add(idle_s) <= now;
                if count == 0 && !idle {
                    continue;
                }
                let Some(mut queue) = t
                    .queues
                    .get(&id.0)?
                    .map(|v| Queue::decode(v.value()))
                    .transpose()?
                else {
                    continue;
                };
                let mut touched = false;
                while queue.count > 0 && purged < batch {
                    let first = t
                        .messages
                        .range::<&SeqKey>(&seq_key(&id, 0)..=&seq_key(&id, u64::MAX))?
                        .next()
                        .transpose()?
                        .map(|(_, v)| u64_at(v.value(), 0));
                    let Some(deposited) = first else { break };
                    if !idle && deposited.saturating_add(retention_s) > now {
                        break;
                    }
                    let Some(len) = t.drop_oldest(&id)? else {
                        break;
                    };
                    queue.count -= 1;
                    queue.bytes = queue.bytes.saturating_sub(len);
                    totals.messages = totals.messages.saturating_sub(1);
                    totals.bytes = totals.bytes.saturating_sub(len);
                    purged += 1;
                    touched = true;
                }
                if idle && queue.count == 0 {
                    t.queues.remove(&id.0)?;
                    totals.queues = totals.queues.saturating_sub(1);
                    changed = true;
                } else if touched {
                    t.queues.insert(&id.0, queue.encode().as_slice())?;
                    changed = true;
                }
                if purged >= batch {
                    break;
                }
            }
        }
        if !changed {
            return Ok(0);
        }
        txn.commit()?;
        self.group = totals;
        Ok(purged)
    }
}
