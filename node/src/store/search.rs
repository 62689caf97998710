//! The search index (`search_tokens`): blind tokens of every stored message's text, each mapping to the
//! message's row, written in the transaction that stores the message and removed in the one that deletes
//! it; and the search that reads it.
//!
//! # Tokens
//!
//! A text is *folded* (NFKC, then Unicode lowercase) and cut into pieces: a *word* is a run of letters,
//! digits and combining marks; each character of a script written without spaces (CJK ideographs, kana,
//! Thai, Lao, Khmer, Myanmar) and each other symbol (emoji) is a piece of its own; spaces and punctuation
//! separate pieces. A word of `n` characters gives its whole-word token `w ‖ word` if `n <= 6`, its
//! three-character prefix token `p ‖ word[..3]` if `n > 3` and its six-character prefix token
//! `p ‖ word[..6]` if `n > 6` (at most two tokens a word); a single character gives `c ‖ char`. A message
//! with more than [`MAX_SEARCH_TOKENS_PER_MESSAGE`] distinct tokens is listed under the one token `o`
//! instead, and every indexed search reads those messages too.
//!
//! # Rows
//!
//! A token row's key is `blind(search token, token)[..8] ‖ row(c, id)` (the message's
//! `conversation_message_index` row), its value empty. The row `ff × 8` holds the sealed state: index
//! version byte, then `0` (being built; then the last `conversation_message_index` row indexed, if any)
//! or `1` (built). A profile written before the index, or by another index version, has no usable state:
//! [`Batch::build_search_index_step`] drops the table and indexes every message again, a bounded batch at a
//! time, and searches scan until the state says built.
//!
//! # Matching
//!
//! A message matches when its folded text contains the folded query starting at the start of a word (a
//! query that starts with a character that is not a word character, or with a character of an unspaced
//! script, matches anywhere). Before the index existed a query also matched inside a word ("malade" found
//! "marmalade"); it no longer does. The index only chooses candidates: each candidate is decrypted and
//! checked with the matcher, so both paths answer the same. A query whose pieces give no token (a word of
//! one or two letters at its end, nothing but punctuation) or whose every token names more than
//! [`MAX_SEARCH_CANDIDATES`] rows is answered by the scan, which walks every conversation newest first
//! and stops at the `limit`-th match: fast for a frequent word, a full pass for a rare one.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::ops::Bound;

use redb::{
    ReadableTable, ReadableTableMetadata, Table, TableDefinition, TableError, TableHandle,
    WriteTransaction,
};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use zeroize::Zeroizing;

use super::batch::{Batch, Reader};
use super::keys::{BLIND_LEN, Blind, Keys};
use super::messages::{decode_message, indexed_key, message_at, next_prefix, prefix_bounds};
use super::records::MessageRecord;
use super::{Bytes, BytesTable, CONV_MESSAGE_INDEX, CONV_MESSAGES, Store, StoreError};

/// The search index table.
pub(super) const SEARCH_TOKENS: BytesTable = TableDefinition::new("search_tokens");

/// Most distinct tokens one message adds to the index; a message with more is listed under one overflow
/// token, and every indexed search decrypts those messages too.
pub const MAX_SEARCH_TOKENS_PER_MESSAGE: usize = 128;
/// Most rows an indexed search decrypts: a query whose every token names more messages than this is
/// answered by the newest-first scan instead.
pub const MAX_SEARCH_CANDIDATES: usize = 10_000;
/// Messages one step of [`Store::build_search_index_step`] indexes when the node builds the index of a
/// profile written before it (one commit each).
pub const SEARCH_BUILD_BATCH: usize = 500;

/// Lengths, in characters, of the prefix tokens of a word; words up to the longest also get a whole-word
/// token.
const PREFIX_LENS: [usize; 2] = [3, 6];
const LONGEST_PREFIX: usize = PREFIX_LENS[1];
/// Bytes of a token's blind kept in a row key.
const TOKEN_LEN: usize = 8;
const ROW_KEY_LEN: usize = TOKEN_LEN + BLIND_LEN;
const INDEX_VERSION: u8 = 1;
/// The state row: shorter than every token row, and sorted before any token's range.
const STATE_ROW: [u8; TOKEN_LEN] = [0xff; TOKEN_LEN];
const BUILDING: u8 = 0;
const BUILT: u8 = 1;

const WHOLE: u8 = b'w';
const PREFIX: u8 = b'p';
const SINGLE: u8 = b'c';
const OVERFLOW: u8 = b'o';

type Token = [u8; TOKEN_LEN];

// ---- folding and pieces ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Part of a word.
    Word,
    /// A piece by itself (a character of an unspaced script, an emoji or other symbol).
    Single,
    /// Between pieces (spaces, punctuation, emoji modifiers and joiners).
    Gap,
}

/// Scripts written without spaces between words: each character is a token.
const UNSPACED: [(u32, u32); 13] = [
    (0x0E00, 0x0EFF),   // Thai, Lao
    (0x1000, 0x109F),   // Myanmar
    (0x1780, 0x17FF),   // Khmer
    (0x2E80, 0x2FDF),   // CJK radicals, Kangxi
    (0x3040, 0x30FF),   // Hiragana, Katakana
    (0x3100, 0x312F),   // Bopomofo
    (0x31F0, 0x31FF),   // Katakana extensions
    (0x3400, 0x4DBF),   // CJK extension A
    (0x4E00, 0x9FFF),   // CJK unified ideographs
    (0xF900, 0xFAFF),   // CJK compatibility ideographs
    (0xFF66, 0xFF9F),   // halfwidth Katakana
    (0x20000, 0x3FFFF), // CJK extensions B and later
    (0x1B000, 0x1B16F), // kana supplement
];

/// Punctuation, spaces and emoji modifiers outside ASCII that separate pieces.
const GAPS: [(u32, u32); 16] = [
    (0x00A0, 0x00BF),
    (0x00D7, 0x00D7),
    (0x00F7, 0x00F7),
    (0x055A, 0x055F),
    (0x0589, 0x058A),
    (0x05BE, 0x05C6),
    (0x060C, 0x061F),
    (0x066A, 0x066D),
    (0x06D4, 0x06D4),
    (0x0964, 0x0965),
    (0x2000, 0x206F),
    (0x2E00, 0x2E7F),
    (0x3000, 0x303F),
    (0xFE00, 0xFE0F),
    (0x1F3FB, 0x1F3FF),
    (0xE0000, 0xE007F),
];

fn within(ranges: &[(u32, u32)], c: char) -> bool {
    let c = u32::from(c);
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

fn class(c: char) -> Class {
    if c.is_ascii() {
        return if c.is_ascii_alphanumeric() {
            Class::Word
        } else {
            Class::Gap
        };
    }
    if within(&UNSPACED, c) {
        Class::Single
    } else if c.is_alphanumeric() || is_combining_mark(c) {
        Class::Word
    } else if c.is_whitespace() || c.is_control() || within(&GAPS, c) {
        Class::Gap
    } else {
        Class::Single
    }
}

/// NFKC, then Unicode lowercase: the form both texts and queries are compared in.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.nfkc().collect::<String>().to_lowercase()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    /// A word; `ended` when a character follows it (in a query: it is a whole word, not a prefix).
    Word {
        text: &'a str,
        ended: bool,
    },
    Single(&'a str),
}

fn pieces(folded: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in folded.char_indices() {
        let class = class(c);
        if class != Class::Word
            && let Some(s) = start.take()
        {
            out.push(Piece::Word {
                text: &folded[s..i],
                ended: true,
            });
        }
        match class {
            Class::Word => {
                start.get_or_insert(i);
            }
            Class::Single => out.push(Piece::Single(&folded[i..i + c.len_utf8()])),
            Class::Gap => {}
        }
    }
    if let Some(s) = start {
        out.push(Piece::Word {
            text: &folded[s..],
            ended: false,
        });
    }
    out
}

/// The first `n` characters of `word`.
fn first_chars(word: &str, n: usize) -> &str {
    match word.char_indices().nth(n) {
        Some((end, _)) => &word[..end],
        None => word,
    }
}

fn token(keys: &Keys, tag: u8, text: &str) -> Token {
    let blind = keys.blind(Blind::SearchToken, &[&[tag], text.as_bytes()]);
    let mut out = [0u8; TOKEN_LEN];
    out.copy_from_slice(&blind[..TOKEN_LEN]);
    out
}

/// The distinct tokens of a message's text (or the overflow token alone, past the bound).
fn text_tokens(keys: &Keys, text: &str) -> BTreeSet<Token> {
    let folded = Zeroizing::new(fold(text));
    let mut out = BTreeSet::new();
    for piece in pieces(&folded) {
        match piece {
            Piece::Word { text, .. } => {
                let n = text.chars().count();
                if n <= LONGEST_PREFIX {
                    out.insert(token(keys, WHOLE, text));
                }
                for len in PREFIX_LENS.into_iter().filter(|&len| n > len) {
                    out.insert(token(keys, PREFIX, first_chars(text, len)));
                }
            }
            Piece::Single(c) => {
                out.insert(token(keys, SINGLE, c));
            }
        }
        if out.len() > MAX_SEARCH_TOKENS_PER_MESSAGE {
            return BTreeSet::from([token(keys, OVERFLOW, "")]);
        }
    }
    out
}

/// What an indexed query asks: for each piece, the tokens of which a matching message holds at least one.
/// Empty when no piece gives a token.
fn query_lookups(keys: &Keys, folded: &str) -> Vec<Vec<Token>> {
    let mut out = Vec::new();
    for piece in pieces(folded) {
        match piece {
            Piece::Single(c) => out.push(vec![token(keys, SINGLE, c)]),
            Piece::Word { text, ended } => {
                let n = text.chars().count();
                if ended {
                    // A whole word: its own token if it has one, else its longest prefix.
                    out.push(vec![if n <= LONGEST_PREFIX {
                        token(keys, WHOLE, text)
                    } else {
                        token(keys, PREFIX, first_chars(text, LONGEST_PREFIX))
                    }]);
                    continue;
                }
                // The start of a word: the longest prefix token it covers, and the whole word if it
                // is exactly that long (a word of that length has no such prefix token).
                let Some(len) = PREFIX_LENS.into_iter().rev().find(|&len| len <= n) else {
                    continue;
                };
                let mut alternatives = vec![token(keys, PREFIX, first_chars(text, len))];
                if n == len {
                    alternatives.push(token(keys, WHOLE, text));
                }
                out.push(alternatives);
            }
        }
    }
    out
}

/// Whether `folded_text` contains `needle` (both folded) at the start of a word (anywhere, if the needle
/// does not start with a word character).
fn matches_folded(folded_text: &str, needle: &str) -> bool {
    let Some(first) = needle.chars().next() else {
        return true;
    };
    let anywhere = class(first) != Class::Word;
    let mut from = 0;
    while let Some(offset) = folded_text.get(from..).and_then(|rest| rest.find(needle)) {
        let at = from + offset;
        let before = folded_text[..at].chars().next_back();
        if anywhere || before.is_none_or(|c| class(c) != Class::Word) {
            return true;
        }
        from = at + first.len_utf8();
    }
    false
}

fn text_matches(text: &str, needle: &str) -> bool {
    matches_folded(&Zeroizing::new(fold(text)), needle)
}

// ---- rows ----

fn row_key(token: &Token, row: &[u8; BLIND_LEN]) -> [u8; ROW_KEY_LEN] {
    let mut key = [0u8; ROW_KEY_LEN];
    key[..TOKEN_LEN].copy_from_slice(token);
    key[TOKEN_LEN..].copy_from_slice(row);
    key
}

/// Lists a message's row under every token of its text.
fn index_message(
    keys: &Keys,
    table: &mut Table<Bytes, Bytes>,
    row: &[u8; BLIND_LEN],
    text: &str,
) -> Result<(), StoreError> {
    for token in text_tokens(keys, text) {
        table.insert(row_key(&token, row).as_slice(), [].as_slice())?;
    }
    Ok(())
}

/// Lists a message just stored (its rows written in `txn`) under every token of its text. The first
/// message of a profile with no index state marks the index built: a new profile is indexed from its
/// first message on, and one whose messages were all deleted has nothing left to index.
pub(super) fn index_new_message(
    keys: &Keys,
    txn: &WriteTransaction,
    row: &[u8; BLIND_LEN],
    text: &str,
) -> Result<(), StoreError> {
    let first = txn.open_table(CONV_MESSAGE_INDEX)?.len()? == 1;
    if first && read_state(keys, &txn.open_table(SEARCH_TOKENS)?)?.is_none() {
        txn.delete_table(SEARCH_TOKENS)?;
        write_state(keys, &mut txn.open_table(SEARCH_TOKENS)?, State::Built)?;
    }
    index_message(keys, &mut txn.open_table(SEARCH_TOKENS)?, row, text)
}

/// Removes a message's row from every token of its text.
pub(super) fn unindex_message(
    keys: &Keys,
    table: &mut Table<Bytes, Bytes>,
    row: &[u8; BLIND_LEN],
    text: &str,
) -> Result<(), StoreError> {
    for token in text_tokens(keys, text) {
        table.remove(row_key(&token, row).as_slice())?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Being built: every message whose index row sorts at or before this one (none yet: `None`) is
    /// indexed, and so is every message stored since the build began.
    Building(Option<[u8; BLIND_LEN]>),
    Built,
}

/// The index's state; `None` if it has none (or one of another index version): it must be built again.
fn read_state(
    keys: &Keys,
    table: &impl ReadableTable<Bytes, Bytes>,
) -> Result<Option<State>, StoreError> {
    let Some(sealed) = table.get(STATE_ROW.as_slice())? else {
        return Ok(None);
    };
    let plain = keys.open(SEARCH_TOKENS.name(), &STATE_ROW, sealed.value())?;
    let malformed = || StoreError::Corrupt("the search index state is malformed".into());
    match plain.as_slice() {
        [INDEX_VERSION, BUILT] => Ok(Some(State::Built)),
        [INDEX_VERSION, BUILDING] => Ok(Some(State::Building(None))),
        [INDEX_VERSION, BUILDING, cursor @ ..] => <[u8; BLIND_LEN]>::try_from(cursor)
            .map(|row| Some(State::Building(Some(row))))
            .map_err(|_| malformed()),
        [INDEX_VERSION, ..] | [] => Err(malformed()),
        [_, ..] => Ok(None),
    }
}

fn write_state(
    keys: &Keys,
    table: &mut Table<Bytes, Bytes>,
    state: State,
) -> Result<(), StoreError> {
    let mut plain = vec![INDEX_VERSION];
    match state {
        State::Built => plain.push(BUILT),
        State::Building(cursor) => {
            plain.push(BUILDING);
            plain.extend_from_slice(cursor.as_ref().map_or(&[][..], |row| row.as_slice()));
        }
    }
    let sealed = keys.seal(SEARCH_TOKENS.name(), &STATE_ROW, &plain);
    table.insert(STATE_ROW.as_slice(), sealed.as_slice())?;
    Ok(())
}

/// Drops the search index and builds it again from every stored message, inside `txn`; the index is
/// built when it commits. Returns how many messages were indexed. The re-key calls this after rewriting
/// the messages under the new key (blind tokens depend on the key).
pub(super) fn rebuild_search_index(txn: &WriteTransaction, keys: &Keys) -> Result<u64, StoreError> {
    txn.delete_table(SEARCH_TOKENS)?;
    let messages = txn.open_table(CONV_MESSAGES)?;
    let mut table = txn.open_table(SEARCH_TOKENS)?;
    let mut count = 0u64;
    for entry in messages.iter()? {
        let (key, value) = entry?;
        let key = key.value();
        let row = key
            .get(BLIND_LEN + 8..)
            .and_then(|row| <[u8; BLIND_LEN]>::try_from(row).ok())
            .ok_or_else(|| StoreError::Corrupt("a message key is malformed".into()))?;
        let plain = keys.open(CONV_MESSAGES.name(), key, value.value())?;
        index_message(keys, &mut table, &row, &decode_message(&plain)?.text)?;
        count += 1;
    }
    write_state(keys, &mut table, State::Built)?;
    Ok(count)
}

impl Batch<'_> {
    /// Indexes up to `max` more messages of a profile whose search index is not built yet (written before
    /// it existed, or by another index version: the index is dropped and started again first). Returns
    /// `true` once the index is built; searches scan every message until then.
    pub fn build_search_index_step(&mut self, max: usize) -> Result<bool, StoreError> {
        let state = read_state(self.keys, &self.txn.open_table(SEARCH_TOKENS)?)?;
        let cursor = match state {
            Some(State::Built) => return Ok(true),
            Some(State::Building(cursor)) => cursor,
            None => {
                self.txn.delete_table(SEARCH_TOKENS)?;
                None
            }
        };
        let index = self.txn.open_table(CONV_MESSAGE_INDEX)?;
        let messages = self.txn.open_table(CONV_MESSAGES)?;
        let mut table = self.txn.open_table(SEARCH_TOKENS)?;
        let start = match &cursor {
            Some(row) => Bound::Excluded(row.as_slice()),
            None => Bound::Unbounded,
        };
        let mut last = cursor;
        let mut done = 0;
        for entry in index.range::<&[u8]>((start, Bound::Unbounded))? {
            if done == max {
                break;
            }
            let (row, _) = entry?;
            let row = <[u8; BLIND_LEN]>::try_from(row.value())
                .map_err(|_| StoreError::Corrupt("a message index row is malformed".into()))?;
            let key = indexed_key(self.keys, &index, &row)?
                .ok_or_else(|| StoreError::Corrupt("a message index row vanished".into()))?;
            let message = message_at(self.keys, &messages, &key)?.ok_or_else(|| {
                StoreError::Corrupt("a message index entry points to no message".into())
            })?;
            index_message(self.keys, &mut table, &row, &message.text)?;
            last = Some(row);
            done += 1;
        }
        let built = done < max;
        let state = if built {
            State::Built
        } else {
            State::Building(last)
        };
        write_state(self.keys, &mut table, state)?;
        Ok(built)
    }

    /// Drops the search index and builds it again from every stored message (see
    /// [`rebuild_search_index`]).
    pub fn rebuild_search_index(&mut self) -> Result<u64, StoreError> {
        rebuild_search_index(&self.txn, self.keys)
    }
}

impl Store {
    /// [`Batch::build_search_index_step`] in its own commit.
    pub fn build_search_index_step(&mut self, max: usize) -> Result<bool, StoreError> {
        self.transaction(|batch| batch.build_search_index_step(max))
    }

    /// Whether the search index is built (searches use it; until then they scan every message).
    pub fn search_index_built(&self) -> Result<bool, StoreError> {
        self.reader().run(|read| Ok(search_table(read)?.is_some()))
    }
}

// ---- search ----

/// The index table, if it exists and is built.
fn search_table(
    read: &Reader<'_>,
) -> Result<Option<redb::ReadOnlyTable<Bytes, Bytes>>, StoreError> {
    let table = match read.txn.open_table(SEARCH_TOKENS) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    Ok((read_state(read.keys, &table)? == Some(State::Built)).then_some(table))
}

/// The rows listed under `token`, or `None` if there are more than `cap`.
fn rows_under(
    table: &impl ReadableTable<Bytes, Bytes>,
    token: &Token,
    cap: usize,
) -> Result<Option<Vec<[u8; BLIND_LEN]>>, StoreError> {
    let lo = row_key(token, &[0; BLIND_LEN]);
    let hi = row_key(token, &[0xff; BLIND_LEN]);
    let mut out = Vec::new();
    for entry in table.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
        let (key, _) = entry?;
        if out.len() == cap {
            return Ok(None);
        }
        if let Some(row) = key
            .value()
            .get(TOKEN_LEN..)
            .and_then(|row| <[u8; BLIND_LEN]>::try_from(row).ok())
        {
            out.push(row);
        }
    }
    Ok(Some(out))
}

/// The rows that may match: those of the most selective lookup (within [`MAX_SEARCH_CANDIDATES`]) that
/// every other lookup also lists, and the overflow rows. `None` if no lookup is selective enough.
fn candidates(
    keys: &Keys,
    table: &impl ReadableTable<Bytes, Bytes>,
    lookups: &[Vec<Token>],
) -> Result<Option<Vec<[u8; BLIND_LEN]>>, StoreError> {
    let Some(overflow) = rows_under(table, &token(keys, OVERFLOW, ""), MAX_SEARCH_CANDIDATES)?
    else {
        return Ok(None);
    };
    let mut best: Option<(usize, Vec<[u8; BLIND_LEN]>)> = None;
    for (i, alternatives) in lookups.iter().enumerate() {
        let cap = best
            .as_ref()
            .map_or(MAX_SEARCH_CANDIDATES, |(_, rows)| rows.len());
        let mut rows = Vec::new();
        let mut within_cap = true;
        for token in alternatives {
            match rows_under(table, token, cap.saturating_sub(rows.len()))? {
                Some(more) => rows.extend(more),
                None => {
                    within_cap = false;
                    break;
                }
            }
        }
        if within_cap && best.as_ref().is_none_or(|(_, b)| rows.len() < b.len()) {
            best = Some((i, rows));
        }
    }
    let Some((chosen, rows)) = best else {
        return Ok(None);
    };
    let listed = |row: &[u8; BLIND_LEN], alternatives: &[Token]| -> Result<bool, StoreError> {
        for token in alternatives {
            if table.get(row_key(token, row).as_slice())?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let mut out = Vec::with_capacity(rows.len() + overflow.len());
    'rows: for row in rows {
        for (i, alternatives) in lookups.iter().enumerate() {
            if i != chosen && !listed(&row, alternatives)? {
                continue 'rows;
            }
        }
        out.push(row);
    }
    out.extend(overflow);
    out.sort_unstable();
    out.dedup();
    Ok(Some(out))
}

/// The newest `limit` messages, across every conversation, whose text contains `needle` at the start of
/// a word (see the module docs), newest first.
pub(super) fn search_in(
    read: &Reader<'_>,
    needle: &str,
    limit: usize,
) -> Result<Vec<MessageRecord>, StoreError> {
    let needle = Zeroizing::new(fold(needle));
    if needle.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let messages = read.table(CONV_MESSAGES)?;
    if let Some(table) = search_table(read)? {
        let lookups = query_lookups(read.keys, &needle);
        if !lookups.is_empty()
            && let Some(rows) = candidates(read.keys, &table, &lookups)?
        {
            let index = read.table(CONV_MESSAGE_INDEX)?;
            let mut found = Vec::new();
            for row in rows {
                let Some(key) = indexed_key(read.keys, &index, &row)? else {
                    continue;
                };
                if let Some(message) = message_at(read.keys, &messages, &key)?
                    && text_matches(&message.text, &needle)
                {
                    found.push(message);
                }
            }
            found.sort_by_key(|m| Reverse(m.sort_ms()));
            found.truncate(limit);
            return Ok(found);
        }
    }
    scan_newest_first(read.keys, &messages, &needle, limit)
}

/// Walks every conversation from its newest message backwards, merged by time, and stops at the
/// `limit`-th match.
fn scan_newest_first(
    keys: &Keys,
    messages: &impl ReadableTable<Bytes, Bytes>,
    needle: &str,
    limit: usize,
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut walks = Vec::new();
    let mut from = Some([0u8; BLIND_LEN]);
    while let Some(start) = from {
        let Some(first) = messages.range::<&[u8]>(start.as_slice()..)?.next() else {
            break;
        };
        let (key, _) = first?;
        let prefix = key
            .value()
            .get(..BLIND_LEN)
            .and_then(|p| <[u8; BLIND_LEN]>::try_from(p).ok())
            .ok_or_else(|| StoreError::Corrupt("a message key is malformed".into()))?;
        let (lo, hi) = prefix_bounds(&prefix);
        walks.push(messages.range::<&[u8]>(lo.as_slice()..=hi.as_slice())?);
        from = next_prefix(&prefix);
    }
    // The newest unread message of each walk, by (time, walk).
    let mut heads: BinaryHeap<(u64, usize)> = BinaryHeap::new();
    let mut pending: Vec<Option<MessageRecord>> = Vec::with_capacity(walks.len());
    let next = |walk: &mut redb::Range<'_, Bytes, Bytes>| -> Result<_, StoreError> {
        let Some(entry) = walk.next_back() else {
            return Ok(None);
        };
        let (key, value) = entry?;
        let plain = keys.open(CONV_MESSAGES.name(), key.value(), value.value())?;
        decode_message(&plain).map(Some)
    };
    for (i, walk) in walks.iter_mut().enumerate() {
        let head = next(walk)?;
        if let Some(message) = &head {
            heads.push((message.sort_ms(), i));
        }
        pending.push(head);
    }
    let mut out = Vec::new();
    while out.len() < limit {
        let Some((_, i)) = heads.pop() else {
            break;
        };
        let Some(message) = pending.get_mut(i).and_then(Option::take) else {
            break;
        };
        if text_matches(&message.text, needle) {
            out.push(message);
        }
        if let Some(walk) = walks.get_mut(i) {
            let head = next(walk)?;
            if let Some(message) = &head {
                heads.push((message.sort_ms(), i));
            }
            pending[i] = head;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
