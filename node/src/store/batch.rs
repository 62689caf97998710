//! Transactions: [`Batch`] (one redb write transaction, committed durably) and the read side.

use redb::Table;
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableHandle, WriteTransaction,
};
use tern_protocol::{EnvelopeId, IdentityKey, MessageId};
use zeroize::Zeroizing;

use crate::api::ConversationId;

use super::keys::{BLIND_LEN, Blind, Keys};
use super::records::{ContactRecord, MessageRecord, MessageStatus, OutboxRecord};
use super::{
    Bytes, CONTACTS, CONV_MESSAGE_INDEX as MESSAGE_INDEX, CONV_MESSAGES as MESSAGES,
    CONV_UNREAD as UNREAD, ENVELOPE_EXPIRY, ENVELOPES, MAX_CONTACTS, MAX_OUTBOX_ENTRIES,
    MAX_SEEN_ENTRIES, MAX_SESSION_PICKLE_LEN, MAX_SETTING_NAME_LEN, MAX_SETTING_VALUE_LEN,
    MAX_VAULT_VALUE_LEN, OUTBOX_DUE, OUTBOX_INDEX, OUTBOX_ROWS, SEEN, SEEN_EXPIRY,
    SEEN_RETENTION_MS, SESSIONS, SETTINGS, StoreError, VAULT, VaultItem, corrupt,
};

const MESSAGE_KEY_LEN: usize = BLIND_LEN + 8 + BLIND_LEN;
const CURSOR_LEN: usize = 8 + BLIND_LEN;

/// A position in a conversation (a message's time and row), for paging backwards. Opaque.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageCursor([u8; CURSOR_LEN]);

impl std::fmt::Debug for MessageCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&self.0[..8]);
        write!(f, "MessageCursor({} ms)", u64::from_be_bytes(ms))
    }
}

/// Some messages of a conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePage {
    /// The messages, oldest first.
    pub messages: Vec<MessageRecord>,
    /// Pass this as `before` for the next older page; `None` when there are no older messages.
    pub older: Option<MessageCursor>,
}

/// A conversation in the conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    /// The other party.
    pub conversation: IdentityKey,
    /// The newest message.
    pub last: MessageRecord,
    /// Unread incoming messages.
    pub unread: u64,
}

fn message_key(
    conv: &[u8; BLIND_LEN],
    sort_ms: u64,
    row: &[u8; BLIND_LEN],
) -> [u8; MESSAGE_KEY_LEN] {
    let mut key = [0u8; MESSAGE_KEY_LEN];
    key[..BLIND_LEN].copy_from_slice(conv);
    key[BLIND_LEN..BLIND_LEN + 8].copy_from_slice(&sort_ms.to_be_bytes());
    key[BLIND_LEN + 8..].copy_from_slice(row);
    key
}

fn prefix_bounds(conv: &[u8; BLIND_LEN]) -> ([u8; MESSAGE_KEY_LEN], [u8; MESSAGE_KEY_LEN]) {
    let mut lo = [0u8; MESSAGE_KEY_LEN];
    let mut hi = [0xffu8; MESSAGE_KEY_LEN];
    lo[..BLIND_LEN].copy_from_slice(conv);
    hi[..BLIND_LEN].copy_from_slice(conv);
    (lo, hi)
}

/// The next 16-byte prefix in big-endian order, `None` after all ones.
fn next_prefix(prefix: &[u8; BLIND_LEN]) -> Option<[u8; BLIND_LEN]> {
    let mut next = *prefix;
    for byte in next.iter_mut().rev() {
        let (v, carry) = byte.overflowing_add(1);
        *byte = v;
        if !carry {
            return Some(next);
        }
    }
    None
}

/// `blind(conversation, ConversationId::to_bytes())`: the prefix of a conversation's message keys.
fn conv_blind(keys: &Keys, conversation: &ConversationId) -> [u8; BLIND_LEN] {
    keys.blind(Blind::Conversation, &[&conversation.to_bytes()])
}

/// `blind(message, conversation bytes ‖ id)`: a message's index row.
fn message_row(keys: &Keys, conversation: &ConversationId, id: &MessageId) -> [u8; BLIND_LEN] {
    keys.blind(Blind::Message, &[&conversation.to_bytes(), &id.0])
}

/// Writes a message's rows (message, index, unread mark if `unread`); `false` and no change if its index
/// row exists already. Shared by [`Batch::insert_message`] and the format-1 migration.
pub(super) fn insert_message_rows(
    keys: &Keys,
    messages: &mut Table<Bytes, Bytes>,
    index: &mut Table<Bytes, Bytes>,
    unread: &mut Table<Bytes, ()>,
    message: &MessageRecord,
    is_unread: bool,
) -> Result<bool, StoreError> {
    let conversation = ConversationId::Direct(message.conversation);
    let row = message_row(keys, &conversation, &message.id);
    if index.get(row.as_slice())?.is_some() {
        return Ok(false);
    }
    let plain = Zeroizing::new(message.encode()?);
    let key = message_key(&conv_blind(keys, &conversation), message.sort_ms(), &row);
    let sealed_key = keys.seal(MESSAGE_INDEX.name(), &row, &key);
    index.insert(row.as_slice(), sealed_key.as_slice())?;
    let sealed = keys.seal(MESSAGES.name(), &key, &plain);
    messages.insert(key.as_slice(), sealed.as_slice())?;
    if is_unread {
        unread.insert(key.as_slice(), ())?;
    }
    Ok(true)
}

// ---- outbox rows ----
//
// `outbox`:       blind(contact, recipient) ‖ u64 BE created_ms ‖ blind(outbox, id) → sealed OutboxRecord
// `outbox_due`:   u64 BE next_attempt_ms ‖ u64 BE created_ms ‖ blind(outbox, id) → sealed `outbox` key
// `outbox_index`: blind(outbox, id)                                      → sealed `outbox` key

const OUTBOX_KEY_LEN: usize = 2 * BLIND_LEN + 8;
const OUTBOX_DUE_KEY_LEN: usize = 16 + BLIND_LEN;

fn outbox_key(keys: &Keys, record: &OutboxRecord) -> [u8; OUTBOX_KEY_LEN] {
    let mut key = [0u8; OUTBOX_KEY_LEN];
    key[..BLIND_LEN].copy_from_slice(&keys.blind(Blind::Contact, &[record.recipient.as_bytes()]));
    key[BLIND_LEN..BLIND_LEN + 8].copy_from_slice(&record.created_ms.to_be_bytes());
    key[BLIND_LEN + 8..].copy_from_slice(&keys.blind(Blind::Outbox, &[&record.message_id.0]));
    key
}

fn outbox_due_key(record: &OutboxRecord, id_row: &[u8]) -> [u8; OUTBOX_DUE_KEY_LEN] {
    let mut key = [0u8; OUTBOX_DUE_KEY_LEN];
    key[..8].copy_from_slice(&record.next_attempt_ms.to_be_bytes());
    key[8..16].copy_from_slice(&record.created_ms.to_be_bytes());
    key[16..].copy_from_slice(id_row);
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
    let id_row = &key[BLIND_LEN + 8..];
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

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), StoreError> {
    if len > max {
        Err(StoreError::TooLong { field, len, max })
    } else {
        Ok(())
    }
}

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

// ---- reads shared by `Reader` and `Batch` ----

fn get_open(
    keys: &Keys,
    table: &impl ReadableTable<Bytes, Bytes>,
    name: &str,
    row: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    match table.get(row)? {
        None => Ok(None),
        Some(value) => keys.open(name, row, value.value()).map(Some),
    }
}

fn decode_contact(plain: &[u8]) -> Result<ContactRecord, StoreError> {
    ContactRecord::decode(plain).map_err(|err| corrupt("contact record", err))
}

fn decode_message(plain: &[u8]) -> Result<MessageRecord, StoreError> {
    MessageRecord::decode(plain).map_err(|err| corrupt("message record", err))
}

fn decode_outbox(plain: &[u8]) -> Result<OutboxRecord, StoreError> {
    OutboxRecord::decode(plain).map_err(|err| corrupt("outbox record", err))
}

fn contacts_in(
    keys: &Keys,
    table: &impl ReadableTable<Bytes, Bytes>,
) -> Result<Vec<ContactRecord>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (row, value) = entry?;
        let plain = keys.open(CONTACTS.name(), row.value(), value.value())?;
        out.push(decode_contact(&plain)?);
    }
    out.sort_by_key(|c| (c.added_ms, c.key));
    Ok(out)
}

/// The `messages` key a message index row points to.
fn indexed_key(
    keys: &Keys,
    index: &impl ReadableTable<Bytes, Bytes>,
    row: &[u8; BLIND_LEN],
) -> Result<Option<[u8; MESSAGE_KEY_LEN]>, StoreError> {
    let Some(plain) = get_open(keys, index, MESSAGE_INDEX.name(), row)? else {
        return Ok(None);
    };
    <[u8; MESSAGE_KEY_LEN]>::try_from(plain.as_slice())
        .map(Some)
        .map_err(|_| StoreError::Corrupt("a message index entry is malformed".into()))
}

fn message_at(
    keys: &Keys,
    messages: &impl ReadableTable<Bytes, Bytes>,
    key: &[u8],
) -> Result<Option<MessageRecord>, StoreError> {
    match get_open(keys, messages, MESSAGES.name(), key)? {
        None => Ok(None),
        Some(plain) => decode_message(&plain).map(Some),
    }
}

fn page_in(
    keys: &Keys,
    messages: &impl ReadableTable<Bytes, Bytes>,
    conv: &[u8; BLIND_LEN],
    before: Option<&MessageCursor>,
    limit: usize,
) -> Result<MessagePage, StoreError> {
    let (lo, mut hi) = prefix_bounds(conv);
    let mut out = Vec::new();
    let mut has_older = false;
    let mut rows = match before {
        Some(cursor) => {
            hi[BLIND_LEN..].copy_from_slice(&cursor.0);
            messages.range::<&[u8]>(lo.as_slice()..hi.as_slice())?
        }
        None => messages.range::<&[u8]>(lo.as_slice()..=hi.as_slice())?,
    };
    while let Some(entry) = rows.next_back() {
        let (key, value) = entry?;
        let key = key.value();
        if out.len() == limit {
            // There is at least one older message: the page ends at the oldest one returned.
            has_older = true;
            break;
        }
        let plain = keys.open(MESSAGES.name(), key, value.value())?;
        out.push((cursor_of(key)?, decode_message(&plain)?));
    }
    let older = if has_older {
        out.last().map(|(cursor, _)| *cursor)
    } else {
        None
    };
    Ok(MessagePage {
        messages: out.into_iter().rev().map(|(_, m)| m).collect(),
        older,
    })
}

fn cursor_of(key: &[u8]) -> Result<MessageCursor, StoreError> {
    key.get(BLIND_LEN..)
        .and_then(|tail| <[u8; CURSOR_LEN]>::try_from(tail).ok())
        .map(MessageCursor)
        .ok_or_else(|| StoreError::Corrupt("a message key is malformed".into()))
}

fn unread_in(
    unread: &impl ReadableTable<Bytes, ()>,
    conv: &[u8; BLIND_LEN],
) -> Result<u64, StoreError> {
    let (lo, hi) = prefix_bounds(conv);
    let mut count = 0u64;
    for entry in unread.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
        entry?;
        count += 1;
    }
    Ok(count)
}

fn conversations_in(
    keys: &Keys,
    messages: &impl ReadableTable<Bytes, Bytes>,
    unread: &impl ReadableTable<Bytes, ()>,
) -> Result<Vec<ConversationSummary>, StoreError> {
    let mut out = Vec::new();
    let mut start = Some([0u8; BLIND_LEN]);
    while let Some(from) = start {
        let Some(first) = messages.range::<&[u8]>(from.as_slice()..)?.next() else {
            break;
        };
        let (key, _) = first?;
        let prefix = key
            .value()
            .get(..BLIND_LEN)
            .and_then(|p| <[u8; BLIND_LEN]>::try_from(p).ok())
            .ok_or_else(|| StoreError::Corrupt("a message key is malformed".into()))?;
        let (lo, hi) = prefix_bounds(&prefix);
        if let Some(last) = messages
            .range::<&[u8]>(lo.as_slice()..=hi.as_slice())?
            .next_back()
        {
            let (key, value) = last?;
            let plain = keys.open(MESSAGES.name(), key.value(), value.value())?;
            let last = decode_message(&plain)?;
            out.push(ConversationSummary {
                conversation: last.conversation,
                unread: unread_in(unread, &prefix)?,
                last,
            });
        }
        start = next_prefix(&prefix);
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.last.sort_ms()));
    Ok(out)
}

/// The newest `limit` messages, across every conversation, whose text contains `needle` (compared by
/// Unicode lowercase), newest first. Every message is opened: the store has no plaintext index to consult.
fn search_in(
    keys: &Keys,
    messages: &impl ReadableTable<Bytes, Bytes>,
    needle: &str,
    limit: usize,
) -> Result<Vec<MessageRecord>, StoreError> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let needle = needle.to_lowercase();
    if needle.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    // A min-heap on (time, arrival order) keeps the newest `limit` matches.
    let mut best: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut found: Vec<Option<MessageRecord>> = Vec::new();
    for entry in messages.iter()? {
        let (key, value) = entry?;
        let plain = keys.open(MESSAGES.name(), key.value(), value.value())?;
        let message = decode_message(&plain)?;
        if !contains_folded(&message.text, &needle) {
            continue;
        }
        let rank = (message.sort_ms(), found.len());
        if best.len() == limit {
            match best.peek() {
                Some(Reverse(oldest)) if *oldest < rank => {
                    if let Some(Reverse((_, slot))) = best.pop() {
                        found[slot] = None;
                    }
                }
                _ => continue,
            }
        }
        best.push(Reverse(rank));
        found.push(Some(message));
    }
    let mut out: Vec<MessageRecord> = found.into_iter().flatten().collect();
    out.sort_by_key(|m| Reverse(m.sort_ms()));
    Ok(out)
}

/// Whether `haystack` contains `needle_lower` (already lowercase), ignoring case.
fn contains_folded(haystack: &str, needle_lower: &str) -> bool {
    if haystack.is_ascii() && needle_lower.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle_lower.as_bytes());
        return n.len() <= h.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(needle_lower)
}

fn outbox_due_in(
    keys: &Keys,
    rows: &impl ReadableTable<Bytes, Bytes>,
    due: &impl ReadableTable<Bytes, Bytes>,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<OutboxRecord>, StoreError> {
    let mut hi = [0xffu8; OUTBOX_DUE_KEY_LEN];
    hi[..8].copy_from_slice(&now_ms.to_be_bytes());
    let mut out = Vec::new();
    for entry in due.range::<&[u8]>(..=hi.as_slice())? {
        if out.len() >= limit {
            break;
        }
        let (due_key, value) = entry?;
        let key = sealed_outbox_key(keys, OUTBOX_DUE.name(), due_key.value(), value.value())?;
        let Some(plain) = get_open(keys, rows, OUTBOX_ROWS.name(), &key)? else {
            return Err(StoreError::Corrupt(
                "an outbox due entry points to no entry".into(),
            ));
        };
        out.push(decode_outbox(&plain)?);
    }
    Ok(out)
}

/// Up to `limit` entries for one recipient, oldest first, by a range scan over its key prefix.
fn outbox_for_in(
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
        if out.len() >= limit {
            break;
        }
        let (key, value) = entry?;
        let plain = keys.open(OUTBOX_ROWS.name(), key.value(), value.value())?;
        out.push(decode_outbox(&plain)?);
    }
    Ok(out)
}

/// A read transaction: a consistent snapshot.
pub(crate) struct Reader<'s> {
    txn: ReadTransaction,
    keys: &'s Keys,
}

impl<'s> Reader<'s> {
    pub(crate) fn begin(db: &Database, keys: &'s Keys) -> Result<Self, StoreError> {
        Ok(Self {
            txn: db.begin_read()?,
            keys,
        })
    }

    fn table(
        &self,
        def: redb::TableDefinition<'static, Bytes, Bytes>,
    ) -> Result<ReadOnlyTable<Bytes, Bytes>, StoreError> {
        Ok(self.txn.open_table(def)?)
    }

    pub(crate) fn vault_get(
        &self,
        item: VaultItem,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let vault = self.txn.open_table(VAULT)?;
        let row = item.row();
        match vault.get(row)? {
            None => Ok(None),
            Some(v) => self
                .keys
                .open(VAULT.name(), row.as_bytes(), v.value())
                .map(Some),
        }
    }

    pub(crate) fn setting_get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        check_len("setting name", name.len(), MAX_SETTING_NAME_LEN)?;
        let row = self.keys.blind(Blind::Setting, &[name.as_bytes()]);
        get_open(self.keys, &self.table(SETTINGS)?, SETTINGS.name(), &row)
    }

    pub(crate) fn contact(&self, key: &IdentityKey) -> Result<Option<ContactRecord>, StoreError> {
        let row = self.keys.blind(Blind::Contact, &[key.as_bytes()]);
        match get_open(self.keys, &self.table(CONTACTS)?, CONTACTS.name(), &row)? {
            None => Ok(None),
            Some(plain) => decode_contact(&plain).map(Some),
        }
    }

    pub(crate) fn contacts(&self) -> Result<Vec<ContactRecord>, StoreError> {
        contacts_in(self.keys, &self.table(CONTACTS)?)
    }

    pub(crate) fn session(
        &self,
        contact: &IdentityKey,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row = self.keys.blind(Blind::Contact, &[contact.as_bytes()]);
        get_open(self.keys, &self.table(SESSIONS)?, SESSIONS.name(), &row)
    }

    pub(crate) fn message(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let row = message_row(self.keys, conversation, id);
        match indexed_key(self.keys, &self.table(MESSAGE_INDEX)?, &row)? {
            None => Ok(None),
            Some(key) => message_at(self.keys, &self.table(MESSAGES)?, &key),
        }
    }

    pub(crate) fn conversation_page(
        &self,
        conversation: &ConversationId,
        before: Option<&MessageCursor>,
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        let conv = conv_blind(self.keys, conversation);
        page_in(self.keys, &self.table(MESSAGES)?, &conv, before, limit)
    }

    pub(crate) fn unread_count(&self, conversation: &ConversationId) -> Result<u64, StoreError> {
        let conv = conv_blind(self.keys, conversation);
        unread_in(&self.txn.open_table(UNREAD)?, &conv)
    }

    pub(crate) fn conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        conversations_in(
            self.keys,
            &self.table(MESSAGES)?,
            &self.txn.open_table(UNREAD)?,
        )
    }

    pub(crate) fn search(
        &self,
        needle: &str,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        search_in(self.keys, &self.table(MESSAGES)?, needle, limit)
    }

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

/// One write transaction. Its changes become visible and durable together at [`Batch::commit`] (redb's
/// default durability: on disk when `commit` returns); dropped without `commit`, it changes nothing.
///
/// Use it to store many received messages and the outbox changes for their acknowledgements in one
/// durable commit, then acknowledge.
pub struct Batch<'s> {
    pub(super) txn: WriteTransaction,
    keys: &'s Keys,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

impl<'s> Batch<'s> {
    pub(crate) fn begin(db: &Database, keys: &'s Keys) -> Result<Self, StoreError> {
        Ok(Self {
            txn: db.begin_write()?,
            keys,
        })
    }

    /// Commits every change durably.
    pub fn commit(self) -> Result<(), StoreError> {
        self.txn.commit()?;
        Ok(())
    }

    /// Discards every change.
    pub fn abort(self) -> Result<(), StoreError> {
        self.txn.abort()?;
        Ok(())
    }

    fn contact_row(&self, key: &IdentityKey) -> [u8; BLIND_LEN] {
        self.keys.blind(Blind::Contact, &[key.as_bytes()])
    }

    /// Sets a vault item.
    pub fn vault_put(&mut self, item: VaultItem, value: &[u8]) -> Result<(), StoreError> {
        check_len("vault value", value.len(), MAX_VAULT_VALUE_LEN)?;
        let row = item.row();
        let sealed = self.keys.seal(VAULT.name(), row.as_bytes(), value);
        self.txn.open_table(VAULT)?.insert(row, sealed.as_slice())?;
        Ok(())
    }

    /// Sets a setting.
    pub fn setting_put(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        check_len("setting name", name.len(), MAX_SETTING_NAME_LEN)?;
        check_len("setting value", value.len(), MAX_SETTING_VALUE_LEN)?;
        let row = self.keys.blind(Blind::Setting, &[name.as_bytes()]);
        let sealed = self.keys.seal(SETTINGS.name(), &row, value);
        self.txn
            .open_table(SETTINGS)?
            .insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// Removes a setting; `true` if it was set.
    pub fn setting_delete(&mut self, name: &str) -> Result<bool, StoreError> {
        check_len("setting name", name.len(), MAX_SETTING_NAME_LEN)?;
        let row = self.keys.blind(Blind::Setting, &[name.as_bytes()]);
        Ok(self
            .txn
            .open_table(SETTINGS)?
            .remove(row.as_slice())?
            .is_some())
    }

    /// The contact with this identity key, as this transaction sees it.
    pub fn contact(&self, key: &IdentityKey) -> Result<Option<ContactRecord>, StoreError> {
        let row = self.contact_row(key);
        match get_open(
            self.keys,
            &self.txn.open_table(CONTACTS)?,
            CONTACTS.name(),
            &row,
        )? {
            None => Ok(None),
            Some(plain) => decode_contact(&plain).map(Some),
        }
    }

    /// Adds or replaces a contact. [`StoreError::ContactsFull`] past [`MAX_CONTACTS`].
    pub fn put_contact(&mut self, contact: &ContactRecord) -> Result<(), StoreError> {
        let plain = Zeroizing::new(contact.encode()?);
        let row = self.contact_row(&contact.key);
        let mut table = self.txn.open_table(CONTACTS)?;
        if table.get(row.as_slice())?.is_none() && table.len()? >= MAX_CONTACTS {
            return Err(StoreError::ContactsFull { max: MAX_CONTACTS });
        }
        let sealed = self.keys.seal(CONTACTS.name(), &row, &plain);
        table.insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// Removes a contact; `true` if it existed.
    pub fn delete_contact(&mut self, key: &IdentityKey) -> Result<bool, StoreError> {
        let row = self.contact_row(key);
        Ok(self
            .txn
            .open_table(CONTACTS)?
            .remove(row.as_slice())?
            .is_some())
    }

    /// The session pickle for a contact, as this transaction sees it.
    pub fn session(&self, contact: &IdentityKey) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row = self.contact_row(contact);
        get_open(
            self.keys,
            &self.txn.open_table(SESSIONS)?,
            SESSIONS.name(),
            &row,
        )
    }

    /// Stores the session pickle for a contact.
    pub fn put_session(&mut self, contact: &IdentityKey, pickle: &[u8]) -> Result<(), StoreError> {
        check_len("session pickle", pickle.len(), MAX_SESSION_PICKLE_LEN)?;
        let row = self.contact_row(contact);
        let sealed = self.keys.seal(SESSIONS.name(), &row, pickle);
        self.txn
            .open_table(SESSIONS)?
            .insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// Removes the session pickle for a contact; `true` if it existed.
    pub fn delete_session(&mut self, contact: &IdentityKey) -> Result<bool, StoreError> {
        let row = self.contact_row(contact);
        Ok(self
            .txn
            .open_table(SESSIONS)?
            .remove(row.as_slice())?
            .is_some())
    }

    /// One message, as this transaction sees it.
    pub fn message(
        &self,
        conversation: &IdentityKey,
        id: &MessageId,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let row = message_row(self.keys, &ConversationId::Direct(*conversation), id);
        match indexed_key(self.keys, &self.txn.open_table(MESSAGE_INDEX)?, &row)? {
            None => Ok(None),
            Some(key) => message_at(self.keys, &self.txn.open_table(MESSAGES)?, &key),
        }
    }

    /// Stores a message; `false` (and no change) if it is stored already or, for an incoming message, if
    /// the duplicate check has seen it. An incoming message is remembered in the duplicate check for
    /// [`super::SEEN_RETENTION_MS`] after it arrived, even if it is later deleted.
    pub fn insert_message(&mut self, message: &MessageRecord) -> Result<bool, StoreError> {
        let seen_row = self.keys.blind(
            Blind::Seen,
            &[message.conversation.as_bytes(), &message.id.0],
        );
        if !message.outgoing
            && self
                .txn
                .open_table(SEEN)?
                .get(seen_row.as_slice())?
                .is_some()
        {
            return Ok(false);
        }
        let inserted = insert_message_rows(
            self.keys,
            &mut self.txn.open_table(MESSAGES)?,
            &mut self.txn.open_table(MESSAGE_INDEX)?,
            &mut self.txn.open_table(UNREAD)?,
            message,
            !message.outgoing && message.status == MessageStatus::Received,
        )?;
        if !inserted {
            return Ok(false);
        }
        if !message.outgoing {
            let expires = message.received_at_ms.saturating_add(SEEN_RETENTION_MS);
            self.mark_seen_row(&seen_row, expires)?;
        }
        Ok(true)
    }

    /// Moves a message to `status` if [`MessageStatus::can_become`] allows it; `false` if the message is
    /// unknown or the move is not allowed.
    pub fn update_message_status(
        &mut self,
        conversation: &IdentityKey,
        id: &MessageId,
        status: MessageStatus,
    ) -> Result<bool, StoreError> {
        let row = message_row(self.keys, &ConversationId::Direct(*conversation), id);
        let Some(key) = indexed_key(self.keys, &self.txn.open_table(MESSAGE_INDEX)?, &row)? else {
            return Ok(false);
        };
        let mut messages = self.txn.open_table(MESSAGES)?;
        let Some(mut message) = message_at(self.keys, &messages, &key)? else {
            return Err(StoreError::Corrupt(
                "a message index entry points to no message".into(),
            ));
        };
        if !message.status.can_become(status, message.outgoing) {
            return Ok(false);
        }
        message.status = status;
        let plain = Zeroizing::new(message.encode()?);
        let sealed = self.keys.seal(MESSAGES.name(), &key, &plain);
        messages.insert(key.as_slice(), sealed.as_slice())?;
        drop(messages);
        if status != MessageStatus::Received {
            self.txn.open_table(UNREAD)?.remove(key.as_slice())?;
        }
        Ok(true)
    }

    /// Deletes every message of a conversation (with its index and unread rows) and every outbox entry
    /// addressed to it. Returns how many messages were deleted. The duplicate check keeps its entries, so
    /// a late copy of a deleted message is still dropped.
    pub fn delete_conversation(&mut self, conversation: &IdentityKey) -> Result<u64, StoreError> {
        let conv = conv_blind(self.keys, &ConversationId::Direct(*conversation));
        let (lo, hi) = prefix_bounds(&conv);
        let keys: Vec<[u8; MESSAGE_KEY_LEN]> = {
            let messages = self.txn.open_table(MESSAGES)?;
            let mut keys = Vec::new();
            for entry in messages.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
                let (key, _) = entry?;
                keys.push(
                    <[u8; MESSAGE_KEY_LEN]>::try_from(key.value())
                        .map_err(|_| StoreError::Corrupt("a message key is malformed".into()))?,
                );
            }
            keys
        };
        let mut messages = self.txn.open_table(MESSAGES)?;
        let mut index = self.txn.open_table(MESSAGE_INDEX)?;
        let mut unread = self.txn.open_table(UNREAD)?;
        for key in &keys {
            messages.remove(key.as_slice())?;
            unread.remove(key.as_slice())?;
            // A message key ends with its index row.
            index.remove(&key[BLIND_LEN + 8..])?;
        }
        drop((messages, index, unread));
        let doomed: Vec<MessageId> = outbox_for_in(
            self.keys,
            &self.txn.open_table(OUTBOX_ROWS)?,
            conversation,
            usize::MAX,
        )?
        .into_iter()
        .map(|entry| entry.message_id)
        .collect();
        for id in doomed {
            self.outbox_remove(&id)?;
        }
        Ok(keys.len() as u64)
    }

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

    fn mark_seen_row(
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
}

impl Batch<'_> {
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

fn expiry_key(expires_ms: u64, row: &[u8; BLIND_LEN]) -> [u8; 8 + BLIND_LEN] {
    let mut key = [0u8; 8 + BLIND_LEN];
    key[..8].copy_from_slice(&expires_ms.to_be_bytes());
    key[8..].copy_from_slice(row);
    key
}
