//! The outbox tables (`outbox_by_recipient`, `outbox_due`, `outbox_index`): their keys, the row writes
//! shared with the format-1 migration, and the [`Reader`] and [`Batch`] methods over them.

use redb::{ReadableTable, ReadableTableMetadata, Table, TableHandle};
use tern_protocol::{IdentityKey, MessageId};
use zeroize::Zeroizing;

use super::batch::{Batch, Reader, get_open};
use super::keys::{BLIND_LEN, Blind, Keys};
use super::records::OutboxRecord;
use super::{
    Bytes, MAX_OUTBOX_ENTRIES, OUTBOX_DUE, OUTBOX_INDEX, OUTBOX_ROWS, StoreError, corrupt,
};

// ---- outbox rows ----
//
// `outbox`:       blind(contact, recipient) ‖ blind(outbox, id)            → sealed OutboxRecord
// `outbox_due`:   u64 BE minute(next_attempt_ms) ‖ blind(outbox, id)       → sealed `outbox` key
// `outbox_index`: blind(outbox, id)                                      → sealed `outbox` key
//
// No key carries when an entry was queued; `outbox_due` names only the minute of its next attempt (the
// exact time is in the sealed record).

const OUTBOX_KEY_LEN: usize = 2 * BLIND_LEN;
const OUTBOX_DUE_KEY_LEN: usize = 8 + BLIND_LEN;
/// `outbox_due` keys name the start of the minute an entry is next due in.
pub const OUTBOX_DUE_BUCKET_MS: u64 = 60_000;

fn outbox_key(keys: &Keys, record: &OutboxRecord) -> [u8; OUTBOX_KEY_LEN] {
    let mut key = [0u8; OUTBOX_KEY_LEN];
    key[..BLIND_LEN].copy_from_slice(&keys.blind(Blind::Contact, &[record.recipient.as_bytes()]));
    key[BLIND_LEN..].copy_from_slice(&keys.blind(Blind::Outbox, &[&record.message_id.0]));
    key
}

fn due_bucket(at_ms: u64) -> u64 {
    at_ms - at_ms % OUTBOX_DUE_BUCKET_MS
}

fn outbox_due_key(record: &OutboxRecord, id_row: &[u8]) -> [u8; OUTBOX_DUE_KEY_LEN] {
    let mut key = [0u8; OUTBOX_DUE_KEY_LEN];
    key[..8].copy_from_slice(&due_bucket(record.next_attempt_ms).to_be_bytes());
    key[8..].copy_from_slice(id_row);
    key
}

fn sealed_outbox_key(
    keys: &Keys,
    table: &str,
    row: &[u8],
    sealed: &[u8],
) -> Result<[u8; OUTBOX_KEY_LEN], StoreError> {
    let plain = keys.open(table, row, sealed)?;
    <[u8; OUTBOX_KEY_LEN]>::try_from(plain.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("a value in table {table} is malformed")))
}

/// Writes an outbox entry's rows, replacing the entry with the same message id if there is one.
pub(super) fn outbox_insert_rows(
    keys: &Keys,
    rows: &mut Table<Bytes, Bytes>,
    due: &mut Table<Bytes, Bytes>,
    index: &mut Table<Bytes, Bytes>,
    record: &OutboxRecord,
) -> Result<(), StoreError> {
    outbox_remove_rows(keys, rows, due, index, &record.message_id)?;
    let plain = Zeroizing::new(record.encode()?);
    let key = outbox_key(keys, record);
    let id_row = &key[BLIND_LEN..];
    let due_key = outbox_due_key(record, id_row);
    rows.insert(
        key.as_slice(),
        keys.seal(OUTBOX_ROWS.name(), &key, &plain).as_slice(),
    )?;
    due.insert(
        due_key.as_slice(),
        keys.seal(OUTBOX_DUE.name(), &due_key, &key).as_slice(),
    )?;
    index.insert(
        id_row,
        keys.seal(OUTBOX_INDEX.name(), id_row, &key).as_slice(),
    )?;
    Ok(())
}

/// Removes an outbox entry's rows; the entry, if it existed.
fn outbox_remove_rows(
    keys: &Keys,
    rows: &mut Table<Bytes, Bytes>,
    due: &mut Table<Bytes, Bytes>,
    index: &mut Table<Bytes, Bytes>,
    message_id: &MessageId,
) -> Result<Option<OutboxRecord>, StoreError> {
    let id_row = keys.blind(Blind::Outbox, &[&message_id.0]);
    let key = match index.get(id_row.as_slice())? {
        None => return Ok(None),
        Some(v) => sealed_outbox_key(keys, OUTBOX_INDEX.name(), &id_row, v.value())?,
    };
    let Some(plain) = get_open(keys, rows, OUTBOX_ROWS.name(), &key)? else {
        return Err(StoreError::Corrupt(
            "an outbox index entry points to no entry".into(),
        ));
    };
    let record = decode_outbox(&plain)?;
    index.remove(id_row.as_slice())?;
    rows.remove(key.as_slice())?;
    due.remove(outbox_due_key(&record, &id_row).as_slice())?;
    Ok(Some(record))
}

fn decode_outbox(plain: &[u8]) -> Result<OutboxRecord, StoreError> {
    OutboxRecord::decode(plain).map_err(|err| corrupt("outbox record", err))
}

/// Up to `limit` entries due by `now_ms`, earliest first: every entry of the minutes up to `now_ms`'s is
/// opened (a minute is read whole, so the order is exact), the ones not due yet are skipped.
fn outbox_due_in(
    keys: &Keys,
    rows: &impl ReadableTable<Bytes, Bytes>,
    due: &impl ReadableTable<Bytes, Bytes>,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<OutboxRecord>, StoreError> {
    let mut hi = [0xffu8; OUTBOX_DUE_KEY_LEN];
    hi[..8].copy_from_slice(&due_bucket(now_ms).to_be_bytes());
    let mut out = Vec::new();
    let mut current: Option<[u8; 8]> = None;
    for entry in due.range::<&[u8]>(..=hi.as_slice())? {
        let (due_key, value) = entry?;
        let bucket = due_key
            .value()
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .ok_or_else(|| StoreError::Corrupt("an outbox due key is malformed".into()))?;
        if current != Some(bucket) {
            if out.len() >= limit {
                break;
            }
            current = Some(bucket);
        }
        let key = sealed_outbox_key(keys, OUTBOX_DUE.name(), due_key.value(), value.value())?;
        let Some(plain) = get_open(keys, rows, OUTBOX_ROWS.name(), &key)? else {
            return Err(StoreError::Corrupt(
                "an outbox due entry points to no entry".into(),
            ));
        };
        let record = decode_outbox(&plain)?;
        if record.next_attempt_ms <= now_ms {
            out.push(record);
        }
    }
    out.sort_by_key(|r| (r.next_attempt_ms, r.created_ms));
    out.truncate(limit);
    Ok(out)
}

/// Up to `limit` entries for one recipient, oldest first: one range scan over its key prefix, then
/// sorted by the time each was queued (inside the sealed records).
pub(super) fn outbox_for_in(
    keys: &Keys,
    rows: &impl ReadableTable<Bytes, Bytes>,
    recipient: &IdentityKey,
    limit: usize,
) -> Result<Vec<OutboxRecord>, StoreError> {
    let prefix = keys.blind(Blind::Contact, &[recipient.as_bytes()]);
    let mut lo = [0u8; OUTBOX_KEY_LEN];
    let mut hi = [0xffu8; OUTBOX_KEY_LEN];
    lo[..BLIND_LEN].copy_from_slice(&prefix);
    hi[..BLIND_LEN].copy_from_slice(&prefix);
    let mut out = Vec::new();
    for entry in rows.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
        let (key, value) = entry?;
        let plain = keys.open(OUTBOX_ROWS.name(), key.value(), value.value())?;
        out.push(decode_outbox(&plain)?);
    }
    out.sort_by_key(|r| r.created_ms);
    out.truncate(limit);
    Ok(out)
}

/// The format-2 to format-3 migration of the outbox, inside the migration's transaction: every entry is
/// read from `outbox_by_recipient` and its three rows written again with format 3's keys.
pub(super) fn migrate_v2(txn: &redb::WriteTransaction, keys: &Keys) -> Result<(), StoreError> {
    let mut rows = txn.open_table(OUTBOX_ROWS)?;
    let mut due = txn.open_table(OUTBOX_DUE)?;
    let mut index = txn.open_table(OUTBOX_INDEX)?;
    let mut records = Vec::new();
    for entry in rows.iter()? {
        let (key, value) = entry?;
        let plain = keys.open_v2_or_v3(OUTBOX_ROWS.name(), key.value(), value.value())?;
        records.push(decode_outbox(&plain)?);
    }
    rows.retain(|_, _| false)?;
    due.retain(|_, _| false)?;
    index.retain(|_, _| false)?;
    for record in &records {
        outbox_insert_rows(keys, &mut rows, &mut due, &mut index, record)?;
    }
    Ok(())
}

impl Reader<'_> {
    pub(crate) fn outbox_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        outbox_due_in(
            self.keys,
            &self.table(OUTBOX_ROWS)?,
            &self.table(OUTBOX_DUE)?,
            now_ms,
            limit,
        )
    }

    pub(crate) fn outbox_for(
        &self,
        recipient: &IdentityKey,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        outbox_for_in(self.keys, &self.table(OUTBOX_ROWS)?, recipient, limit)
    }

    pub(crate) fn outbox_len(&self) -> Result<u64, StoreError> {
        Ok(self.table(OUTBOX_INDEX)?.len()?)
    }
}

impl Batch<'_> {
    /// Queues (or replaces) an outbox entry keyed by its message id. [`StoreError::OutboxFull`] past
    /// [`MAX_OUTBOX_ENTRIES`].
    pub fn outbox_enqueue(&mut self, entry: &OutboxRecord) -> Result<(), StoreError> {
        let mut rows = self.txn.open_table(OUTBOX_ROWS)?;
        let mut due = self.txn.open_table(OUTBOX_DUE)?;
        let mut index = self.txn.open_table(OUTBOX_INDEX)?;
        let id_row = self.keys.blind(Blind::Outbox, &[&entry.message_id.0]);
        if index.get(id_row.as_slice())?.is_none() && index.len()? >= MAX_OUTBOX_ENTRIES {
            return Err(StoreError::OutboxFull {
                max: MAX_OUTBOX_ENTRIES,
            });
        }
        outbox_insert_rows(self.keys, &mut rows, &mut due, &mut index, entry)
    }

    /// Counts one more attempt and sets the next; `false` if the entry is gone.
    pub fn outbox_reschedule(
        &mut self,
        message_id: &MessageId,
        next_attempt_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.txn.open_table(OUTBOX_ROWS)?;
        let mut due = self.txn.open_table(OUTBOX_DUE)?;
        let mut index = self.txn.open_table(OUTBOX_INDEX)?;
        let Some(mut record) =
            outbox_remove_rows(self.keys, &mut rows, &mut due, &mut index, message_id)?
        else {
            return Ok(false);
        };
        record.attempts = record.attempts.saturating_add(1);
        record.next_attempt_ms = next_attempt_ms;
        outbox_insert_rows(self.keys, &mut rows, &mut due, &mut index, &record)?;
        Ok(true)
    }

    /// Removes an outbox entry; `true` if it existed.
    pub fn outbox_remove(&mut self, message_id: &MessageId) -> Result<bool, StoreError> {
        Ok(outbox_remove_rows(
            self.keys,
            &mut self.txn.open_table(OUTBOX_ROWS)?,
            &mut self.txn.open_table(OUTBOX_DUE)?,
            &mut self.txn.open_table(OUTBOX_INDEX)?,
            message_id,
        )?
        .is_some())
    }
}
