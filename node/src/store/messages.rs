//! The conversation tables (`conversation_messages`, `conversation_message_index`,
//! `conversation_unread`): their keys, paging, the conversation list, search, and the [`Reader`] and
//! [`Batch`] methods over them.

use redb::{ReadableTable, Table, TableHandle};
use tern_protocol::MessageId;
use zeroize::Zeroizing;

use crate::api::{ConversationId, Message, MessageStatus};

use super::batch::{Batch, Reader, get_open};
use super::keys::{BLIND_LEN, Blind, Keys};
use super::outbox::outbox_for_in;
use super::records::MessageRecord;
use super::search::{SEARCH_TOKENS, index_new_message, unindex_message};
use super::{
    Bytes, CONV_MESSAGE_INDEX as MESSAGE_INDEX, CONV_MESSAGES as MESSAGES, CONV_UNREAD as UNREAD,
    OUTBOX_ROWS, SEEN, SEEN_RETENTION_MS, StoreError, corrupt,
};

pub(super) const MESSAGE_KEY_LEN: usize = BLIND_LEN + 8 + BLIND_LEN;
const CURSOR_LEN: usize = 8 + BLIND_LEN;

/// A position in a conversation (a message's position and row), for paging backwards: the api's opaque
/// [`crate::api::Cursor`].
pub(super) type MessageCursor = crate::api::Cursor;
const _: () = assert!(CURSOR_LEN == crate::api::CURSOR_LEN);

/// Some messages of a conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MessagePage {
    /// The messages, oldest first.
    pub messages: Vec<MessageRecord>,
    /// Pass this as `before` for the next older page; `None` when there are no older messages.
    pub older: Option<MessageCursor>,
}

/// A conversation in the conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConversationSummary {
    /// The conversation.
    pub conversation: ConversationId,
    /// The newest message.
    pub last: MessageRecord,
    /// Unread incoming messages.
    pub unread: u64,
}

/// Where a conversation's first message goes: the middle of the `u64` range, so older messages stored
/// later still find room before it (plus a random offset below [`MAX_STEP`]).
const FIRST_POSITION: u64 = 1 << 63;
/// A message stored after every other one of its conversation goes a random step of
/// [`MIN_STEP`]..[`MAX_STEP`] after the last: positions keep order and carry no time.
const MIN_STEP: u64 = 1 << 24;
/// See [`MIN_STEP`].
const MAX_STEP: u64 = 1 << 32;

pub(super) fn message_key(
    conv: &[u8; BLIND_LEN],
    position: u64,
    row: &[u8; BLIND_LEN],
) -> [u8; MESSAGE_KEY_LEN] {
    let mut key = [0u8; MESSAGE_KEY_LEN];
    key[..BLIND_LEN].copy_from_slice(conv);
    key[BLIND_LEN..BLIND_LEN + 8].copy_from_slice(&position.to_be_bytes());
    key[BLIND_LEN + 8..].copy_from_slice(row);
    key
}

fn position_of(key: &[u8]) -> Result<u64, StoreError> {
    key.get(BLIND_LEN..BLIND_LEN + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("a message key is malformed".into()))
}

/// A position for a message ordered at `sort_ms` in the conversation `conv`: after every message ordered
/// at or before it, before every later one. Walks back from the newest message (one step for a message
/// stored in order). `None` if its neighbours leave no room (the conversation is then renumbered).
fn position_for(
    keys: &Keys,
    messages: &impl ReadableTable<Bytes, Bytes>,
    conv: &[u8; BLIND_LEN],
    sort_ms: u64,
) -> Result<Option<u64>, StoreError> {
    let (lo, hi) = prefix_bounds(conv);
    let mut next: Option<u64> = None;
    let mut prev: Option<u64> = None;
    let mut rows = messages.range::<&[u8]>(lo.as_slice()..=hi.as_slice())?;
    while let Some(entry) = rows.next_back() {
        let (key, value) = entry?;
        let plain = keys.open(MESSAGES.name(), key.value(), value.value())?;
        let position = position_of(key.value())?;
        if decode_message(&plain)?.sort_ms() <= sort_ms {
            prev = Some(position);
            break;
        }
        next = Some(position);
    }
    Ok(match (prev, next) {
        (None, None) => Some(FIRST_POSITION + rand::random_range(0..MAX_STEP)),
        (Some(prev), None) => prev.checked_add(rand::random_range(MIN_STEP..MAX_STEP)),
        (prev, Some(next)) => {
            // Strictly between the neighbours (0 stays unused).
            let floor = prev.unwrap_or(0);
            let room = next.saturating_sub(floor);
            (room >= 2).then(|| floor + 1 + rand::random_range(0..room - 1))
        }
    })
}

/// Gives every message of a conversation a fresh position, in order, a random step apart (when an older
/// message found no room between two others). Its unread marks and index rows move with it.
fn renumber(
    keys: &Keys,
    messages: &mut Table<Bytes, Bytes>,
    index: &mut Table<Bytes, Bytes>,
    unread: &mut Table<Bytes, ()>,
    conv: &[u8; BLIND_LEN],
) -> Result<(), StoreError> {
    let (lo, hi) = prefix_bounds(conv);
    let mut rows = Vec::new();
    for entry in messages.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
        let (key, value) = entry?;
        let plain = keys.open(MESSAGES.name(), key.value(), value.value())?;
        rows.push((key.value().to_vec(), plain));
    }
    let mut position = FIRST_POSITION;
    for (key, plain) in rows {
        let was_unread = unread.remove(key.as_slice())?.is_some();
        messages.remove(key.as_slice())?;
        let mut row = [0u8; BLIND_LEN];
        row.copy_from_slice(&key[BLIND_LEN + 8..]);
        position = position.saturating_add(rand::random_range(MIN_STEP..MAX_STEP));
        let new_key = message_key(conv, position, &row);
        write_rows(
            keys, messages, index, unread, &new_key, &row, &plain, was_unread,
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn write_rows(
    keys: &Keys,
    messages: &mut Table<Bytes, Bytes>,
    index: &mut Table<Bytes, Bytes>,
    unread: &mut Table<Bytes, ()>,
    key: &[u8; MESSAGE_KEY_LEN],
    row: &[u8; BLIND_LEN],
    plain: &[u8],
    is_unread: bool,
) -> Result<(), StoreError> {
    let sealed_key = keys.seal(MESSAGE_INDEX.name(), row, key);
    index.insert(row.as_slice(), sealed_key.as_slice())?;
    let sealed = keys.seal(MESSAGES.name(), key, plain);
    messages.insert(key.as_slice(), sealed.as_slice())?;
    if is_unread {
        unread.insert(key.as_slice(), ())?;
    }
    Ok(())
}

pub(super) fn prefix_bounds(
    conv: &[u8; BLIND_LEN],
) -> ([u8; MESSAGE_KEY_LEN], [u8; MESSAGE_KEY_LEN]) {
    let mut lo = [0u8; MESSAGE_KEY_LEN];
    let mut hi = [0xffu8; MESSAGE_KEY_LEN];
    lo[..BLIND_LEN].copy_from_slice(conv);
    hi[..BLIND_LEN].copy_from_slice(conv);
    (lo, hi)
}

/// The next 16-byte prefix in big-endian order, `None` after all ones.
pub(super) fn next_prefix(prefix: &[u8; BLIND_LEN]) -> Option<[u8; BLIND_LEN]> {
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
pub(super) fn conv_blind(keys: &Keys, conversation: &ConversationId) -> [u8; BLIND_LEN] {
    keys.blind(Blind::Conversation, &[&conversation.to_bytes()])
}

/// `blind(message, conversation bytes ‖ id)`: a message's index row.
pub(super) fn message_row(
    keys: &Keys,
    conversation: &ConversationId,
    id: &MessageId,
) -> [u8; BLIND_LEN] {
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
    let conversation = message.conversation;
    let row = message_row(keys, &conversation, &message.id);
    if index.get(row.as_slice())?.is_some() {
        return Ok(false);
    }
    let plain = Zeroizing::new(message.encode()?);
    let conv = conv_blind(keys, &conversation);
    let position = match position_for(keys, messages, &conv, message.sort_ms())? {
        Some(position) => position,
        None => {
            renumber(keys, messages, index, unread, &conv)?;
            position_for(keys, messages, &conv, message.sort_ms())?.ok_or_else(|| {
                StoreError::Corrupt("no room for a message in its conversation".into())
            })?
        }
    };
    let key = message_key(&conv, position, &row);
    write_rows(keys, messages, index, unread, &key, &row, &plain, is_unread)?;
    Ok(true)
}

pub(super) fn decode_message(plain: &[u8]) -> Result<MessageRecord, StoreError> {
    MessageRecord::decode(plain).map_err(|err| corrupt("message record", err))
}

/// The `messages` key a message index row points to.
pub(super) fn indexed_key(
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

pub(super) fn message_at(
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
        .map(crate::api::Cursor)
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

impl Reader<'_> {
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
        super::search::search_in(self, needle, limit)
    }
}

impl Batch<'_> {
    /// One message, as this transaction sees it.
    pub fn message(
        &self,
        conversation: impl Into<ConversationId>,
        id: &MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let row = message_row(self.keys, &conversation.into(), id);
        match indexed_key(self.keys, &self.txn.open_table(MESSAGE_INDEX)?, &row)? {
            None => Ok(None),
            Some(key) => Ok(
                message_at(self.keys, &self.txn.open_table(MESSAGES)?, &key)?
                    .map(MessageRecord::into_message),
            ),
        }
    }

    /// The newest `limit` messages of a conversation, oldest first, as this transaction sees them.
    pub fn newest_messages(
        &self,
        conversation: &ConversationId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let conv = conv_blind(self.keys, conversation);
        let page = page_in(
            self.keys,
            &self.txn.open_table(MESSAGES)?,
            &conv,
            None,
            limit,
        )?;
        Ok(page
            .messages
            .into_iter()
            .map(MessageRecord::into_message)
            .collect())
    }

    /// Stores a message; `false` (and no change) if it is stored already or, for an incoming message, if
    /// the duplicate check has seen it. An incoming message is remembered in the duplicate check for
    /// [`super::SEEN_RETENTION_MS`] after it arrived, even if it is later deleted.
    pub fn insert_message(&mut self, message: &Message) -> Result<bool, StoreError> {
        self.insert_record(&MessageRecord::from_message(message)?)
    }

    /// [`Self::insert_message`] for a record as the store keeps it.
    pub(super) fn insert_record(&mut self, message: &MessageRecord) -> Result<bool, StoreError> {
        // A 1:1 conversation's rows are keyed by the contact's key alone (format 2 as written before
        // groups); a group's by its conversation bytes.
        let conversation_bytes = message.conversation.to_bytes();
        let seen_key: &[u8] = match &message.conversation {
            ConversationId::Direct(contact) => contact.as_bytes(),
            _ => &conversation_bytes,
        };
        let seen_input = [seen_key, &message.id.0].concat();
        let seen_row = self.keys.blind(Blind::Seen, &[&seen_input]);
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
        let row = message_row(self.keys, &message.conversation, &message.id);
        index_new_message(self.keys, &self.txn, &row, &message.text)?;
        if !message.outgoing {
            let expires = message.received_at_ms.saturating_add(SEEN_RETENTION_MS);
            self.mark_seen_row(&seen_row, &seen_input, expires)?;
        }
        Ok(true)
    }

    /// Moves a message to `status` if [`MessageStatus::can_become`] allows it; `false` if the message is
    /// unknown or the move is not allowed. [`Self::update_message_status_at`] by the wall clock.
    pub fn update_message_status(
        &mut self,
        conversation: impl Into<ConversationId>,
        id: &MessageId,
        status: MessageStatus,
    ) -> Result<bool, StoreError> {
        self.update_message_status_at(conversation, id, status, crate::api::now_ms())
    }

    /// [`Self::update_message_status`] at `now_ms` (unix milliseconds): a move to delivered or read notes
    /// that time, once; a read outgoing message with no delivery time known gets the read time as both.
    pub fn update_message_status_at(
        &mut self,
        conversation: impl Into<ConversationId>,
        id: &MessageId,
        status: MessageStatus,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let Some((key, mut message)) = self.record_at(&conversation.into(), id)? else {
            return Ok(false);
        };
        if !message.status.can_become(status, message.outgoing) {
            return Ok(false);
        }
        message.move_to(status, now_ms);
        self.rewrite_record(&key, &message)?;
        if status != MessageStatus::Received {
            self.txn.open_table(UNREAD)?.remove(key.as_slice())?;
        }
        Ok(true)
    }

    /// A stored message's key and record, as this transaction sees them; `None` if it is not stored.
    pub(super) fn record_at(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<([u8; MESSAGE_KEY_LEN], MessageRecord)>, StoreError> {
        let row = message_row(self.keys, conversation, id);
        let Some(key) = indexed_key(self.keys, &self.txn.open_table(MESSAGE_INDEX)?, &row)? else {
            return Ok(None);
        };
        match message_at(self.keys, &self.txn.open_table(MESSAGES)?, &key)? {
            Some(message) => Ok(Some((key, message))),
            None => Err(StoreError::Corrupt(
                "a message index entry points to no message".into(),
            )),
        }
    }

    /// Seals `message` back into its row `key` (one [`Self::record_at`] gave).
    pub(super) fn rewrite_record(
        &mut self,
        key: &[u8; MESSAGE_KEY_LEN],
        message: &MessageRecord,
    ) -> Result<(), StoreError> {
        let plain = Zeroizing::new(message.encode()?);
        let sealed = self.keys.seal(MESSAGES.name(), key, &plain);
        self.txn
            .open_table(MESSAGES)?
            .insert(key.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// Deletes every message of a conversation (with its index, unread and search rows) and every outbox entry
    /// addressed to it. Returns how many messages were deleted. The duplicate check keeps its entries, so
    /// a late copy of a deleted message is still dropped.
    pub fn delete_conversation(
        &mut self,
        conversation: impl Into<ConversationId>,
    ) -> Result<u64, StoreError> {
        let conversation = conversation.into();
        let deleted = self.delete_messages_of(&conversation)?;
        self.remove_timer(&conversation)?;
        let ConversationId::Direct(contact) = &conversation else {
            return Ok(deleted);
        };
        let doomed: Vec<MessageId> = outbox_for_in(
            self.keys,
            &self.txn.open_table(OUTBOX_ROWS)?,
            contact,
            usize::MAX,
        )?
        .into_iter()
        .map(|entry| entry.message_id)
        .collect();
        for id in doomed {
            self.outbox_remove(&id)?;
        }
        Ok(deleted)
    }

    /// Clears a conversation's history: deletes every message of it (with its index, unread and search rows) and
    /// marks the store for compaction, so their pages are overwritten soon. Its timer, and mail still
    /// queued (texts on their way, receipts), stay. Returns how many messages were deleted. The
    /// duplicate check keeps its entries, so a late copy of a deleted message is still dropped.
    pub fn clear_history(&mut self, conversation: &ConversationId) -> Result<u64, StoreError> {
        let deleted = self.delete_messages_of(conversation)?;
        if deleted > 0 {
            super::timers::mark_scrub(self)?;
        }
        Ok(deleted)
    }

    fn delete_messages_of(&mut self, conversation: &ConversationId) -> Result<u64, StoreError> {
        let conv = conv_blind(self.keys, conversation);
        let (lo, hi) = prefix_bounds(&conv);
        let keys: Vec<([u8; MESSAGE_KEY_LEN], Zeroizing<String>)> = {
            let messages = self.txn.open_table(MESSAGES)?;
            let mut keys = Vec::new();
            for entry in messages.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
                let (key, value) = entry?;
                let plain = self
                    .keys
                    .open(MESSAGES.name(), key.value(), value.value())?;
                keys.push((
                    <[u8; MESSAGE_KEY_LEN]>::try_from(key.value())
                        .map_err(|_| StoreError::Corrupt("a message key is malformed".into()))?,
                    Zeroizing::new(decode_message(&plain)?.text),
                ));
            }
            keys
        };
        let mut messages = self.txn.open_table(MESSAGES)?;
        let mut index = self.txn.open_table(MESSAGE_INDEX)?;
        let mut unread = self.txn.open_table(UNREAD)?;
        let mut tokens = self.txn.open_table(SEARCH_TOKENS)?;
        for (key, text) in &keys {
            messages.remove(key.as_slice())?;
            unread.remove(key.as_slice())?;
            // A message key ends with its index row.
            let mut row = [0u8; BLIND_LEN];
            row.copy_from_slice(&key[BLIND_LEN + 8..]);
            index.remove(row.as_slice())?;
            unindex_message(self.keys, &mut tokens, &row, text)?;
        }
        Ok(keys.len() as u64)
    }
}
