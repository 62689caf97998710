//! The duplicate-check tables (`seen`, `seen_expiry`) and the remembered envelopes (`envelopes`,
//! `envelope_expiry`): their values, bounds and purge, and the [`Reader`] and [`Batch`] methods over them.

use redb::{ReadableTable, ReadableTableMetadata, TableHandle};
use tern_protocol::{EnvelopeId, IdentityKey, MessageId};

use super::batch::{Batch, Reader, get_open};
use super::keys::{BLIND_LEN, Blind, Keys};
use super::{Bytes, ENVELOPE_EXPIRY, ENVELOPES, MAX_SEEN_ENTRIES, SEEN, SEEN_EXPIRY, StoreError};

/// Longest input of a duplicate-check row: a group conversation's bytes (33) and a message id.
const MAX_SEEN_INPUT_LEN: usize = 33 + 16;

/// A `seen` value: `u64 BE expiry ‖ input`, the input being what the row's blind index was computed
/// from (sender or conversation ‖ message id), kept so a re-key can compute the row under a new key.
/// Rows written before it was kept hold the expiry alone (`input` is then empty).
pub(super) struct SeenValue {
    pub(super) expires_ms: u64,
    pub(super) input: Vec<u8>,
}

pub(super) fn decode_seen_value(plain: &[u8]) -> Result<SeenValue, StoreError> {
    let malformed = || StoreError::Corrupt("a duplicate-check entry is malformed".into());
    let (expires, input) = plain.split_first_chunk::<8>().ok_or_else(malformed)?;
    if input.len() > MAX_SEEN_INPUT_LEN {
        return Err(malformed());
    }
    Ok(SeenValue {
        expires_ms: u64::from_be_bytes(*expires),
        input: input.to_vec(),
    })
}

pub(super) fn encode_seen_value(expires_ms: u64, input: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + input.len());
    value.extend_from_slice(&expires_ms.to_be_bytes());
    value.extend_from_slice(input);
    value
}

fn seen_expires_ms(keys: &Keys, row: &[u8], sealed: &[u8]) -> Result<u64, StoreError> {
    let plain = keys.open(SEEN.name(), row, sealed)?;
    Ok(decode_seen_value(&plain)?.expires_ms)
}

/// An `envelopes` value: `u64 BE expiry ‖ sender identity key ‖ message id ‖ envelope id`. The envelope
/// id (the row's blind input, kept for a re-key) is missing from rows written before it was kept.
const ENVELOPE_VALUE_LEN: usize = 8 + 32 + 16 + 32;
/// An `envelopes` value written before the envelope id was kept.
const OLD_ENVELOPE_VALUE_LEN: usize = 8 + 32 + 16;

/// A decoded `envelopes` value.
pub(super) struct EnvelopeValue {
    pub(super) expires_ms: u64,
    pub(super) sender: IdentityKey,
    pub(super) id: MessageId,
    /// `None` in a row written before the envelope id was kept.
    pub(super) envelope: Option<EnvelopeId>,
}

pub(super) fn encode_envelope_value(
    expires_ms: u64,
    sender: &IdentityKey,
    id: &MessageId,
    envelope: &EnvelopeId,
) -> Vec<u8> {
    let mut value = Vec::with_capacity(ENVELOPE_VALUE_LEN);
    value.extend_from_slice(&expires_ms.to_be_bytes());
    value.extend_from_slice(sender.as_bytes());
    value.extend_from_slice(&id.0);
    value.extend_from_slice(&envelope.0);
    value
}

pub(super) fn decode_envelope_value(plain: &[u8]) -> Result<EnvelopeValue, StoreError> {
    let malformed = || StoreError::Corrupt("an envelope entry is malformed".into());
    if plain.len() != ENVELOPE_VALUE_LEN && plain.len() != OLD_ENVELOPE_VALUE_LEN {
        return Err(malformed());
    }
    let (expires, rest) = plain.split_first_chunk::<8>().ok_or_else(malformed)?;
    let (sender, rest) = rest.split_first_chunk::<32>().ok_or_else(malformed)?;
    let (id, rest) = rest.split_first_chunk::<16>().ok_or_else(malformed)?;
    let envelope = <[u8; 32]>::try_from(rest).ok().map(EnvelopeId);
    Ok(EnvelopeValue {
        expires_ms: u64::from_be_bytes(*expires),
        sender: IdentityKey::from_bytes(*sender).map_err(|_| malformed())?,
        id: MessageId(*id),
        envelope,
    })
}

fn envelope_in(
    keys: &Keys,
    table: &impl ReadableTable<Bytes, Bytes>,
    envelope: &EnvelopeId,
) -> Result<Option<(u64, IdentityKey, MessageId)>, StoreError> {
    let row = keys.blind(Blind::Envelope, &[&envelope.0]);
    match get_open(keys, table, ENVELOPES.name(), &row)? {
        None => Ok(None),
        Some(plain) => decode_envelope_value(&plain).map(|v| Some((v.expires_ms, v.sender, v.id))),
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

pub(super) fn expiry_key(expires_ms: u64, row: &[u8; BLIND_LEN]) -> [u8; 8 + BLIND_LEN] {
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
        let expires = seen_expires_ms(keys, row.value(), value.value())?;
        let row = <[u8; BLIND_LEN]>::try_from(row.value())
            .map_err(|_| StoreError::Corrupt("a duplicate-check row is malformed".into()))?;
        seen_expiry.insert(expiry_key(expires, &row).as_slice(), ())?;
    }
    let mut envelope_expiry = txn.open_table(ENVELOPE_EXPIRY)?;
    envelope_expiry.retain(|_, ()| false)?;
    for entry in txn.open_table(ENVELOPES)?.iter()? {
        let (row, value) = entry?;
        let plain = keys.open(ENVELOPES.name(), row.value(), value.value())?;
        let expires = decode_envelope_value(&plain)?.expires_ms;
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
        let input = [sender.as_bytes().as_slice(), &id.0].concat();
        let row = self.keys.blind(Blind::Seen, &[&input]);
        self.mark_seen_row(&row, &input, expires_ms)
    }

    /// [`Self::mark_seen`] for the row `blind(seen, input)`.
    pub(super) fn mark_seen_row(
        &mut self,
        row: &[u8; BLIND_LEN],
        input: &[u8],
        expires_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut seen = self.txn.open_table(SEEN)?;
        let mut by_expiry = self.txn.open_table(SEEN_EXPIRY)?;
        let old = match seen.get(row.as_slice())? {
            Some(v) => Some(seen_expires_ms(self.keys, row, v.value())?),
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
        let sealed = self
            .keys
            .seal(SEEN.name(), row, &encode_seen_value(expires_ms, input));
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
                Some(decode_envelope_value(&plain)?.expires_ms)
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
        let value = encode_envelope_value(expires_ms, sender, id, envelope);
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
                Some(decode_envelope_value(&plain)?.expires_ms)
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
