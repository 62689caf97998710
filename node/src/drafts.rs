//! Unsent drafts (issue 16): what was typed in a conversation's composer and not sent, kept sealed in the
//! profile so that it is still there after the app closes (docs/protocol.md §13.1). Local only: nothing
//! is sent. Not carried by backups either (§20.3): a draft is transient, and a backup is not the place
//! for half a sentence.
//!
//! Bounded three ways, each dropping the oldest draft (the one written longest ago) first: at most
//! [`MAX_DRAFTS`] drafts, each at most [`MAX_DRAFT_LEN`] bytes (a longer one is cut at a character
//! boundary: it could not be sent as it is either), and the stored form at most [`MAX_DRAFTS_BYTES`].

use crate::api::{CONVERSATION_ID_LEN, ConversationId};
use crate::settings::SettingsError;
use crate::store::{MAX_SETTING_VALUE_LEN, Store, StoreError, StoreReader};

/// The store setting that holds [`Drafts`].
pub const DRAFTS_SETTING: &str = "drafts";
/// Most drafts kept; writing one more drops the oldest.
pub const MAX_DRAFTS: usize = 64;
/// Longest draft, in bytes: the longest text a message can carry.
pub const MAX_DRAFT_LEN: usize = tern_protocol::message::MAX_TEXT_LEN;
/// Longest stored form (a setting's bound); past it the oldest drafts are dropped.
pub const MAX_DRAFTS_BYTES: usize = MAX_SETTING_VALUE_LEN;

/// The stored form's version byte.
const VERSION: u8 = 1;
/// The version byte and the count.
const HEADER_LEN: usize = 2;
/// A draft's conversation id and its length, before its text.
const ENTRY_HEADER_LEN: usize = CONVERSATION_ID_LEN + 2;

/// The unsent drafts, one per conversation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Drafts {
    /// Oldest written first; no conversation twice, no empty text.
    entries: Vec<(ConversationId, String)>,
}

impl std::fmt::Debug for Drafts {
    /// The number of drafts only: their text is what the person typed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drafts")
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Drafts {
    /// The draft of `conversation`, if it has one.
    pub fn get(&self, conversation: &ConversationId) -> Option<&str> {
        self.entries
            .iter()
            .find(|(c, _)| c == conversation)
            .map(|(_, text)| text.as_str())
    }

    /// How many drafts there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The conversations that have a draft, oldest written first.
    pub fn conversations(&self) -> impl Iterator<Item = &ConversationId> {
        self.entries.iter().map(|(c, _)| c)
    }

    /// Keeps `text` as the draft of `conversation`, as the newest (blank text removes it). Past the
    /// bounds (module docs) the oldest drafts are dropped, and a text longer than [`MAX_DRAFT_LEN`] bytes
    /// is cut at the last character boundary before it.
    pub fn set(&mut self, conversation: ConversationId, text: &str) {
        self.entries.retain(|(c, _)| *c != conversation);
        if text.trim().is_empty() {
            return;
        }
        let text = text.get(..cut_at(text, MAX_DRAFT_LEN)).unwrap_or_default();
        self.entries.push((conversation, text.to_owned()));
        while self.entries.len() > MAX_DRAFTS || self.encoded_len() > MAX_DRAFTS_BYTES {
            self.entries.remove(0);
        }
    }

    /// Removes the draft of `conversation` (its message was sent, or it was removed) and returns it.
    pub fn take(&mut self, conversation: &ConversationId) -> Option<String> {
        let at = self.entries.iter().position(|(c, _)| c == conversation)?;
        Some(self.entries.remove(at).1)
    }

    /// The drafts stored in the profile (none if never saved).
    pub fn load(store: &Store) -> Result<Self, SettingsError> {
        Self::parse(
            store
                .setting_get(DRAFTS_SETTING)?
                .as_deref()
                .map(|v| &v[..]),
        )
    }

    /// [`Self::load`] through a store reader (off the event loop).
    pub fn load_from(reader: &StoreReader) -> Result<Self, SettingsError> {
        Self::parse(
            reader
                .setting_get(DRAFTS_SETTING)?
                .as_deref()
                .map(|v| &v[..]),
        )
    }

    /// Saves them in the profile (durable on return).
    pub fn save(&self, store: &mut Store) -> Result<(), StoreError> {
        store.setting_put(DRAFTS_SETTING, &self.encode())
    }

    fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .entries
                .iter()
                .map(|(_, text)| ENTRY_HEADER_LEN + text.len())
                .sum::<usize>()
    }

    /// `u8 version = 1 ‖ u8 n ‖ n × (conversation[33] ‖ u16 BE len ‖ len bytes of UTF-8 text)`, oldest
    /// written first.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(VERSION);
        out.push(u8::try_from(self.entries.len()).unwrap_or(u8::MAX));
        for (conversation, text) in &self.entries {
            out.extend_from_slice(&conversation.to_bytes());
            out.extend_from_slice(&u16::try_from(text.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out
    }

    fn parse(stored: Option<&[u8]>) -> Result<Self, SettingsError> {
        let Some(bytes) = stored else {
            return Ok(Self::default());
        };
        let bad = |why: &str| SettingsError::Unreadable(format!("drafts: {why}"));
        if bytes.len() > MAX_DRAFTS_BYTES {
            return Err(bad("too long"));
        }
        let (&[version, count], mut rest) = bytes
            .split_first_chunk::<HEADER_LEN>()
            .ok_or_else(|| bad("truncated"))?;
        if version != VERSION {
            return Err(bad(&format!("version {version}, not {VERSION}")));
        }
        let count = usize::from(count);
        if count > MAX_DRAFTS {
            return Err(bad("too many drafts"));
        }
        let mut drafts = Self::default();
        for _ in 0..count {
            let (head, after) = rest
                .split_first_chunk::<ENTRY_HEADER_LEN>()
                .ok_or_else(|| bad("truncated"))?;
            let conversation = ConversationId::from_bytes(&head[..CONVERSATION_ID_LEN])
                .ok_or_else(|| bad("a conversation id is malformed"))?;
            let len = usize::from(u16::from_be_bytes([
                head[CONVERSATION_ID_LEN],
                head[CONVERSATION_ID_LEN + 1],
            ]));
            if len == 0 || len > MAX_DRAFT_LEN {
                return Err(bad("a draft's length is out of bounds"));
            }
            let text = after.get(..len).ok_or_else(|| bad("truncated"))?;
            let text = std::str::from_utf8(text).map_err(|_| bad("a draft is not UTF-8"))?;
            if drafts.get(&conversation).is_some() {
                return Err(bad("a conversation has two drafts"));
            }
            drafts.entries.push((conversation, text.to_owned()));
            rest = &after[len..];
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(drafts)
    }
}

/// The longest prefix of `text` at most `max` bytes long that ends at a character boundary.
fn cut_at(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: u16) -> ConversationId {
        let mut id = [0u8; 32];
        id[..2].copy_from_slice(&n.to_be_bytes());
        ConversationId::Group(id)
    }

    #[test]
    fn drafts_round_trip_and_the_newest_replaces_a_conversations_draft() {
        let mut drafts = Drafts::default();
        drafts.set(group(1), "half a thought");
        drafts.set(group(2), "héllo 世界 مرحبا 👋");
        drafts.set(group(1), "a whole thought");
        assert_eq!(drafts.get(&group(1)), Some("a whole thought"));
        assert_eq!(
            drafts.conversations().copied().collect::<Vec<_>>(),
            [group(2), group(1)],
            "written again: the newest"
        );
        let back = Drafts::parse(Some(&drafts.encode())).unwrap();
        assert_eq!(back, drafts);
        assert_eq!(Drafts::parse(None).unwrap(), Drafts::default());

        drafts.set(group(2), "  \n ");
        assert_eq!(drafts.get(&group(2)), None, "a blank draft is no draft");
        assert_eq!(drafts.take(&group(1)).as_deref(), Some("a whole thought"));
        assert!(drafts.is_empty());
        assert!(
            !format!("{drafts:?}").contains("thought"),
            "Debug never shows the text"
        );
    }

    #[test]
    fn past_the_bounds_the_oldest_draft_goes_and_a_long_one_is_cut() {
        let mut drafts = Drafts::default();
        for n in 0..=MAX_DRAFTS {
            drafts.set(group(u16::try_from(n).unwrap()), "some words");
        }
        assert_eq!(drafts.len(), MAX_DRAFTS);
        assert_eq!(drafts.get(&group(0)), None, "the oldest was dropped");
        assert!(drafts.get(&group(1)).is_some());

        // Cut at a character boundary: "世" is three bytes, and the limit falls inside the last one.
        let long = format!("{}世", "a".repeat(MAX_DRAFT_LEN - 2));
        drafts.set(group(1), &long);
        assert_eq!(drafts.get(&group(1)).unwrap().len(), MAX_DRAFT_LEN - 2);

        // Two drafts of the longest kind fill the stored form: a third drops the oldest.
        let mut big = Drafts::default();
        let longest = "b".repeat(MAX_DRAFT_LEN);
        big.set(group(1), &longest);
        big.set(group(2), &longest);
        assert!(big.encoded_len() > MAX_DRAFTS_BYTES - MAX_DRAFT_LEN);
        big.set(group(3), &longest);
        assert_eq!(big.len(), 1, "only the newest fits beside the bound");
        assert!(big.get(&group(3)).is_some());
        let encoded = big.encode();
        assert!(encoded.len() <= MAX_DRAFTS_BYTES);
        assert_eq!(Drafts::parse(Some(&encoded)).unwrap(), big);
    }

    #[test]
    fn damaged_drafts_are_a_typed_error() {
        let mut drafts = Drafts::default();
        drafts.set(group(1), "abc");
        let good = drafts.encode();
        let entry = |len: u16, text: &[u8]| {
            let mut out = vec![VERSION, 1];
            out.extend_from_slice(&group(1).to_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(text);
            out
        };
        let twice = {
            let mut out = vec![VERSION, 2];
            out.extend_from_slice(&good[HEADER_LEN..]);
            out.extend_from_slice(&good[HEADER_LEN..]);
            out
        };
        let mut bad_tag = good.clone();
        bad_tag[HEADER_LEN] = 9;
        for bad in [
            vec![],
            vec![VERSION],
            vec![2, 0],
            good[..good.len() - 1].to_vec(),
            [good.as_slice(), &[0]].concat(),
            vec![VERSION, u8::try_from(MAX_DRAFTS + 1).unwrap()],
            entry(0, b""),
            entry(
                u16::try_from(MAX_DRAFT_LEN + 1).unwrap(),
                &[b'a'; MAX_DRAFT_LEN + 1],
            ),
            entry(2, &[0xff, 0xfe]),
            twice,
            bad_tag,
            vec![0; MAX_DRAFTS_BYTES + 1],
        ] {
            assert!(
                matches!(Drafts::parse(Some(&bad)), Err(SettingsError::Unreadable(_))),
                "{bad:?}"
            );
        }
    }
}
