//! The duplicate-check tables (`seen`, `seen_expiry`) and the remembered envelopes (`envelopes`,
//! `envelope_expiry`): their values, bounds and purge, and the [`Reader`] and [`Batch`] methods over them.

use redb::{ReadableTable, ReadableTableMetadata, TableHandle};
use tern_protocol::{EnvelopeId, IdentityKey, MessageId};

use super::batch::{Batch, Reader, get_open};
use super::keys::{BLIND_LEN, Blind, Keys};
use super::{Bytes, ENVELOPE_EXPIRY, ENVELOPES, MAX_SEEN_ENTRIES, SEEN, SEEN_EXPIRY, StoreError};

fn sealed_u64(keys: &Keys, table: &str, row: &[u8], sealed: &[u8]) -> Result<u64, StoreError> {
    let plain = keys.open(table, row, sealed)?;
    let bytes = <[u8; 8]>::try_from(plain.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("a value in table {table} is malformed")))?;
    Ok(u64::from_be_bytes(bytes))
}

/// An `envelopes` value: `u64 BE expiry ‖ sender identity key ‖ message id`.
const ENVELOPE_VALUE_LEN: usize = 8 + 32 + 16;

fn encode_envelope_value(expires_ms: u64, sender: &IdentityKey, id: &MessageId) -> Vec<u8> {
    let mut value = Vec::with_capacity(ENVELOPE_VALUE_LEN);
    value.extend_from_slice(&expires_ms.to_be_bytes());
    value.extend_from_slice(sender.as_bytes());
    value.extend_from_slice(&id.0);
    value
}

fn decode_envelope_value(plain: &[u8]) -> Result<(u64, IdentityKey, MessageId), StoreError> {
    let malformed = || StoreError::Corrupt("an envelope entry is malformed".into());
    let value = <&[u8; ENVELOPE_VALUE_LEN]>::try_from(plain).map_err(|_| malformed())?;
    let mut expires = [0u8; 8];
    expires.copy_from_slice(&value[..8]);
    let mut sender = [0u8; 32];
    sender.copy_from_slice(&value[8..40]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&value[40..]);
    let sender = IdentityKey::from_bytes(sender).map_err(|_| malformed())?;
    Ok((u64::from_be_bytes(expires), sender, MessageId(id)))
}

fn envelope_in(
    keys: &Keys,
    table: &impl ReadableTable<Bytes, Bytes>,
    envelope: &EnvelopeId,
) -> Result<Option<(u64, IdentityKey, MessageId)>, StoreError> {
    let row = keys.blind(Blind::Envelope, &[&envelope.0]);
    match get_open(keys, table, ENVELOPES.name(), &row)? {
        None => Ok(None),
        Some(plain) => decode_envelope_value(&plain).map(Some),
    }
}

/// The expiry index keys times by the day: an entry's exact expiry stays inside its sealed value, and its
/// `seen_expiry`/`envelope_expiry` key names only the end of the UTC day it expires in
/// ([`EXPIRY_BUCKET_MS`]), so the file shows how many messages arrived each day, not when.
pub const EXPIRY_BUCKET_MS: u64 = 24 * 3600 * 1000;

/// The end of the bucket `expires_ms` falls in: an entry is purged no earlier than its exact expiry.
fn bucket(expires_ms: u64) -> u64 {
    expires_ms
        .div_ceil(EXPIRY_BUCKET_MS)
        .saturating_mul(EXPIRY_BUCKET_MS)
}

fn expiry_key(expires_ms: u64, row: &[u8; BLIND_LEN]) -> [u8; 8 + BLIND_LEN] {
    let mut key = [0u8; 8 + BLIND_LEN];
    key[..8].copy_from_slice(&bucket(expires_ms).to_be_bytes());
    key[8..].copy_from_slice(row);
    key
}

/// The format-2 to format-3 migration of the expiry indexes: each is rebuilt, day-bucketed, from the
/// exact expiries in its sealed table (already resealed in format 3 by the caller).
pub(super) fn rebucket(txn: &redb::WriteTransaction, keys: &Keys) -> Result<(), StoreError> {
    let mut seen_expiry = txn.open_table(SEEN_EXPIRY)?;
    seen_expiry.retain(|_, ()| false)?;
    for entry in txn.open_table(SEEN)?.iter()? {
        let (row, value) = entry?;
        let expires = sealed_u64(keys, SEEN.name(), row.value(), value.value())?;
        let row = <[u8; BLIND_LEN]>::try_from(row.value())
            .map_err(|_| StoreError::Corrupt("a duplicate-check row is malformed".into()))?;
        seen_expiry.insert(expiry_key(expires, &row).as_slice(), ())?;
    }
    let mut envelope_expiry = txn.open_table(ENVELOPE_EXPIRY)?;
    envelope_expiry.retain(|_, ()| false)?;
    for entry in txn.open_table(ENVELOPES)?.iter()? {
        let (row, value) = entry?;
        let plain = keys.open(ENVELOPES.name(), row.value(), value.value())?;
        let (expires, _, _) = decode_envelope_value(&plain)?;
        let row = <[u8; BLIND_LEN]>::try_from(row.value())
            .map_err(|_| StoreError::Corrupt("an envelope row is malformed".into()))?;
        envelope_expiry.insert(expiry_key(expires, &row).as_slice(), ())?;
    }
    Ok(())
}

impl Reader<'_> {
    pub(crate) fn is_seen(&self, sender: &IdentityKey, id: &MessageId) -> Result<bool, StoreError> {
        let row = self.keys.blind(Blind::Seen, &[sender.as_bytes(), &id.0]);
        Ok(self.table(SEEN)?.get(row.as_slice())?.is_some())
    }

    pub(crate) fn seen_len(&self) -> Result<u64, StoreError> {
        Ok(self.table(SEEN)?.len()?)
    }

    pub(crate) fn envelope(
        &self,
        envelope: &EnvelopeId,
    ) -> Result<Option<(IdentityKey, MessageId)>, StoreError> {
        Ok(envelope_in(self.keys, &self.table(ENVELOPES)?, envelope)?
            .map(|(_, sender, id)| (sender, id)))
    }

    pub(crate) fn envelopes_len(&self) -> Result<u64, StoreError> {
        Ok(self.table(ENVELOPES)?.len()?)
    }
}

impl Batch<'_> {
    /// Whether a message from `sender` with this id was seen, as this transaction sees it.
    pub fn is_seen(&self, sender: &IdentityKey, id: &MessageId) -> Result<bool, StoreError> {
        let row = self.keys.blind(Blind::Seen, &[sender.as_bytes(), &id.0]);
        Ok(self.txn.open_table(SEEN)?.get(row.as_slice())?.is_some())
    }

    /// Records that a message from `sender` was seen, until `expires_ms`; `false` if it already was (its
    /// expiry is then extended to `expires_ms` if later). Past [`MAX_SEEN_ENTRIES`] the entries that
    /// expire first are dropped.
    pub fn mark_seen(
        &mut self,
        sender: &IdentityKey,
        id: &MessageId,
        expires_ms: u64,
    ) -> Result<bool, StoreError> {
        let row = self.keys.blind(Blind::Seen, &[sender.as_bytes(), &id.0]);
        self.mark_seen_row(&row, expires_ms)
    }

    pub(super) fn mark_seen_row(
        &mut self,
        row: &[u8; BLIND_LEN],
        expires_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut seen = self.txn.open_table(SEEN)?;
        let mut by_expiry = self.txn.open_table(SEEN_EXPIRY)?;
        let old = match seen.get(row.as_slice())? {
            Some(v) => Some(sealed_u64(self.keys, SEEN.name(), row, v.value())?),
            None => None,
        };
        if let Some(old) = old {
            if old >= expires_ms {
                return Ok(false);
            }
            by_expiry.remove(expiry_key(old, row).as_slice())?;
        } else {
            while seen.len()? >= MAX_SEEN_ENTRIES {
                let Some((key, ())) = by_expiry
                    .pop_first()?
                    .map(|(k, v)| (k.value().to_vec(), v.value()))
                else {
                    return Err(StoreError::Corrupt(
                        "the duplicate-check tables disagree".into(),
                    ));
                };
                if let Some(victim) = key.get(8..) {
                    seen.remove(victim)?;
                }
            }
        }
        let sealed = self.keys.seal(SEEN.name(), row, &expires_ms.to_be_bytes());
        seen.insert(row.as_slice(), sealed.as_slice())?;
        by_expiry.insert(expiry_key(expires_ms, row).as_slice(), ())?;
        Ok(old.is_none())
    }

    /// The sender and message id of the stored message this envelope carried, as this transaction sees
    /// it.
    pub fn envelope(
        &self,
        envelope: &EnvelopeId,
    ) -> Result<Option<(IdentityKey, MessageId)>, StoreError> {
        Ok(
            envelope_in(self.keys, &self.txn.open_table(ENVELOPES)?, envelope)?
                .map(|(_, sender, id)| (sender, id)),
        )
    }

    /// Records that `envelope` carried message `id` from `sender`, until `expires_ms`; call it in the
    /// commit that stores the message. A later copy of the envelope can no longer be decrypted (its key
    /// is spent), so this is what tells who should get a delivery receipt for it. `false` if the envelope
    /// was recorded already (its expiry is then extended if later). Past [`MAX_SEEN_ENTRIES`] the entries
    /// that expire first are dropped.
    pub fn mark_envelope(
        &mut self,
        envelope: &EnvelopeId,
        sender: &IdentityKey,
        id: &MessageId,
        expires_ms: u64,
    ) -> Result<bool, StoreError> {
        let row = self.keys.blind(Blind::Envelope, &[&envelope.0]);
        let mut table = self.txn.open_table(ENVELOPES)?;
        let mut by_expiry = self.txn.open_table(ENVELOPE_EXPIRY)?;
        let old = match table.get(row.as_slice())? {
            Some(v) => {
                let plain = self.keys.open(ENVELOPES.name(), &row, v.value())?;
                Some(decode_envelope_value(&plain)?.0)
            }
            None => None,
        };
        if let Some(old) = old {
            if old >= expires_ms {
                return Ok(false);
            }
            by_expiry.remove(expiry_key(old, &row).as_slice())?;
        } else {
            while table.len()? >= MAX_SEEN_ENTRIES {
                let Some(key) = by_expiry.pop_first()?.map(|(k, _)| k.value().to_vec()) else {
                    return Err(StoreError::Corrupt("the envelope tables disagree".into()));
                };
                if let Some(victim) = key.get(8..) {
                    table.remove(victim)?;
                }
            }
        }
        let value = encode_envelope_value(expires_ms, sender, id);
        let sealed = self.keys.seal(ENVELOPES.name(), &row, &value);
        table.insert(row.as_slice(), sealed.as_slice())?;
        by_expiry.insert(expiry_key(expires_ms, &row).as_slice(), ())?;
        Ok(old.is_none())
    }

    /// Forgets an envelope (its delivery receipt was queued); `true` if it was recorded.
    pub fn forget_envelope(&mut self, envelope: &EnvelopeId) -> Result<bool, StoreError> {
        let row = self.keys.blind(Blind::Envelope, &[&envelope.0]);
        let mut table = self.txn.open_table(ENVELOPES)?;
        let Some(expires) = (match table.get(row.as_slice())? {
            Some(v) => {
                let plain = self.keys.open(ENVELOPES.name(), &row, v.value())?;
                Some(decode_envelope_value(&plain)?.0)
            }
            None => None,
        }) else {
            return Ok(false);
        };
        table.remove(row.as_slice())?;
        self.txn
            .open_table(ENVELOPE_EXPIRY)?
            .remove(expiry_key(expires, &row).as_slice())?;
        Ok(true)
    }

    /// Drops duplicate-check entries and remembered envelopes that expired at or before `now_ms`; returns
    /// how many duplicate-check entries.
    pub fn purge_seen(&mut self, now_ms: u64) -> Result<u64, StoreError> {
        self.purge_envelopes(now_ms)?;
        let mut seen = self.txn.open_table(SEEN)?;
        let mut by_expiry = self.txn.open_table(SEEN_EXPIRY)?;
        let mut hi = [0xffu8; 8 + BLIND_LEN];
        hi[..8].copy_from_slice(&now_ms.to_be_bytes());
        let mut purged = 0u64;
        let mut victims = Vec::new();
        for entry in by_expiry.extract_from_if::<&[u8], _>(..=hi.as_slice(), |_, ()| true)? {
            let (key, _) = entry?;
            victims.push(key.value().to_vec());
        }
        for key in victims {
            if let Some(row) = key.get(8..) {
                seen.remove(row)?;
            }
            purged += 1;
        }
        Ok(purged)
    }

    fn purge_envelopes(&mut self, now_ms: u64) -> Result<u64, StoreError> {
        let mut table = self.txn.open_table(ENVELOPES)?;
        let mut by_expiry = self.txn.open_table(ENVELOPE_EXPIRY)?;
        let mut hi = [0xffu8; 8 + BLIND_LEN];
        hi[..8].copy_from_slice(&now_ms.to_be_bytes());
        let mut victims = Vec::new();
        for entry in by_expiry.extract_from_if::<&[u8], _>(..=hi.as_slice(), |_, ()| true)? {
            let (key, _) = entry?;
            victims.push(key.value().to_vec());
        }
        for key in &victims {
            if let Some(row) = key.get(8..) {
                table.remove(row)?;
            }
        }
        Ok(victims.len() as u64)
    }
}
