//! Per-conversation preferences of this profile (issue 16): muted conversations (no desktop notification,
//! not counted in the window title) and pinned ones (kept at the top of the list, in the order pinned).
//! Local only: nothing is sent, and the other side is not told. Kept sealed in the profile like every
//! setting (docs/protocol.md §13.1), and carried by backups.

use crate::api::{CONVERSATION_ID_LEN, ConversationId};
use crate::settings::SettingsError;
use crate::store::{Store, StoreError, StoreReader};

/// The store setting that holds [`ConversationPrefs`].
pub const CONVERSATION_PREFS_SETTING: &str = "conversation-prefs";
/// Most conversations that can be pinned at once (Signal Desktop allows 4; a list this long is still
/// one screen).
pub const MAX_PINNED: usize = 16;
/// Most conversations that can be muted at once.
pub const MAX_MUTED: usize = 1024;

/// The stored form's version byte.
const VERSION: u8 = 1;

/// Which conversations are muted and which pinned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationPrefs {
    muted: Vec<ConversationId>,
    /// Most recently pinned first.
    pinned: Vec<ConversationId>,
}

/// Why a preference cannot be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrefsError {
    #[error("at most {MAX_PINNED} conversations can be pinned; unpin one first")]
    TooManyPinned,
    #[error("at most {MAX_MUTED} conversations can be muted")]
    TooManyMuted,
}

impl ConversationPrefs {
    /// Whether `conversation` is muted.
    pub fn is_muted(&self, conversation: &ConversationId) -> bool {
        self.muted.contains(conversation)
    }

    /// Where `conversation` is among the pinned ones (0: pinned last, listed first), if it is pinned.
    pub fn pin_rank(&self, conversation: &ConversationId) -> Option<usize> {
        self.pinned.iter().position(|c| c == conversation)
    }

    /// The pinned conversations, most recently pinned first.
    pub fn pinned(&self) -> &[ConversationId] {
        &self.pinned
    }

    /// Mutes or unmutes `conversation`.
    pub fn set_muted(
        &mut self,
        conversation: ConversationId,
        muted: bool,
    ) -> Result<(), PrefsError> {
        self.muted.retain(|c| *c != conversation);
        if muted {
            if self.muted.len() >= MAX_MUTED {
                return Err(PrefsError::TooManyMuted);
            }
            self.muted.push(conversation);
        }
        Ok(())
    }

    /// Pins `conversation` (at the top) or unpins it.
    pub fn set_pinned(
        &mut self,
        conversation: ConversationId,
        pinned: bool,
    ) -> Result<(), PrefsError> {
        let was = self.pin_rank(&conversation);
        if pinned && was.is_none() && self.pinned.len() >= MAX_PINNED {
            return Err(PrefsError::TooManyPinned);
        }
        self.pinned.retain(|c| *c != conversation);
        if pinned {
            self.pinned.insert(0, conversation);
        }
        Ok(())
    }

    /// Forgets every preference about `conversation` (it was removed).
    pub fn forget(&mut self, conversation: &ConversationId) {
        self.muted.retain(|c| c != conversation);
        self.pinned.retain(|c| c != conversation);
    }

    /// The preferences stored in the profile (none if never saved).
    pub fn load(store: &Store) -> Result<Self, SettingsError> {
        Self::parse(
            store
                .setting_get(CONVERSATION_PREFS_SETTING)?
                .as_deref()
                .map(|v| &v[..]),
        )
    }

    /// [`Self::load`] through a store reader (off the event loop).
    pub fn load_from(reader: &StoreReader) -> Result<Self, SettingsError> {
        Self::parse(
            reader
                .setting_get(CONVERSATION_PREFS_SETTING)?
                .as_deref()
                .map(|v| &v[..]),
        )
    }

    /// Saves them in the profile (durable on return).
    pub fn save(&self, store: &mut Store) -> Result<(), StoreError> {
        store.setting_put(CONVERSATION_PREFS_SETTING, &self.encode())
    }

    /// `u8 version = 1 ‖ u16 BE n ‖ n × conversation[33] ‖ u8 m ‖ m × conversation[33]`: the muted, then
    /// the pinned (most recently pinned first). At most 34 KiB.
    fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(4 + (self.muted.len() + self.pinned.len()) * CONVERSATION_ID_LEN);
        out.push(VERSION);
        out.extend_from_slice(
            &u16::try_from(self.muted.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        for c in &self.muted {
            out.extend_from_slice(&c.to_bytes());
        }
        out.push(u8::try_from(self.pinned.len()).unwrap_or(u8::MAX));
        for c in &self.pinned {
            out.extend_from_slice(&c.to_bytes());
        }
        out
    }

    fn parse(stored: Option<&[u8]>) -> Result<Self, SettingsError> {
        let Some(bytes) = stored else {
            return Ok(Self::default());
        };
        let bad = |why: &str| SettingsError::Unreadable(format!("conversation preferences: {why}"));
        let (&version, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        if version != VERSION {
            return Err(bad(&format!("version {version}, not {VERSION}")));
        }
        let (count, rest) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| bad("truncated"))?;
        let (muted, rest) = take_ids(rest, usize::from(u16::from_be_bytes(*count)), MAX_MUTED)
            .ok_or_else(|| bad("the muted list is malformed"))?;
        let (&count, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
        let (pinned, rest) = take_ids(rest, usize::from(count), MAX_PINNED)
            .ok_or_else(|| bad("the pinned list is malformed"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Self { muted, pinned })
    }
}

/// `count` conversation ids from the front of `bytes` (at most `max`), and what follows them.
fn take_ids(bytes: &[u8], count: usize, max: usize) -> Option<(Vec<ConversationId>, &[u8])> {
    if count > max {
        return None;
    }
    let len = count.checked_mul(CONVERSATION_ID_LEN)?;
    let (ids, rest) = (bytes.get(..len)?, bytes.get(len..)?);
    let ids = ids
        .chunks_exact(CONVERSATION_ID_LEN)
        .map(ConversationId::from_bytes)
        .collect::<Option<Vec<_>>>()?;
    Some((ids, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: u8) -> ConversationId {
        ConversationId::Group([n; 32])
    }

    #[test]
    fn prefs_round_trip_and_pins_keep_their_order_and_bound() {
        let mut prefs = ConversationPrefs::default();
        prefs.set_muted(group(1), true).unwrap();
        prefs.set_pinned(group(2), true).unwrap();
        prefs.set_pinned(group(3), true).unwrap();
        assert_eq!(prefs.pinned(), [group(3), group(2)], "latest pin first");
        prefs.set_pinned(group(2), true).unwrap();
        assert_eq!(
            prefs.pinned(),
            [group(2), group(3)],
            "pinned again: to the top"
        );
        let back = ConversationPrefs::parse(Some(&prefs.encode())).unwrap();
        assert_eq!(back, prefs);
        assert!(back.is_muted(&group(1)) && !back.is_muted(&group(2)));
        assert_eq!(back.pin_rank(&group(3)), Some(1));

        let mut full = ConversationPrefs::default();
        for n in 0..MAX_PINNED {
            full.set_pinned(group(u8::try_from(n).unwrap()), true)
                .unwrap();
        }
        assert_eq!(
            full.set_pinned(group(200), true),
            Err(PrefsError::TooManyPinned)
        );
        full.set_pinned(group(0), true).unwrap();
        full.set_pinned(group(0), false).unwrap();
        full.set_pinned(group(200), true).unwrap();
        full.forget(&group(200));
        assert_eq!(full.pin_rank(&group(200)), None);

        let mut muted = ConversationPrefs::default();
        for n in 0..MAX_MUTED {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&n.to_be_bytes());
            muted.set_muted(ConversationId::Group(id), true).unwrap();
        }
        assert_eq!(
            muted.set_muted(group(1), true),
            Err(PrefsError::TooManyMuted)
        );
        muted
            .set_muted(ConversationId::Group([0; 32]), true)
            .unwrap();
        let back = ConversationPrefs::parse(Some(&muted.encode())).unwrap();
        assert_eq!(back, muted, "a full list still fits one setting");
    }

    #[test]
    fn damaged_prefs_are_a_typed_error() {
        let mut prefs = ConversationPrefs::default();
        prefs.set_muted(group(1), true).unwrap();
        let good = prefs.encode();
        for bad in [
            vec![],
            vec![2],
            good[..good.len() - 1].to_vec(),
            [good.as_slice(), &[0]].concat(),
            // A muted count past the bound.
            [&[VERSION][..], &u16::MAX.to_be_bytes()].concat(),
        ] {
            assert!(
                matches!(
                    ConversationPrefs::parse(Some(&bad)),
                    Err(SettingsError::Unreadable(_))
                ),
                "{bad:?}"
            );
        }
        let mut unknown_tag = good.clone();
        unknown_tag[3] = 9;
        assert!(ConversationPrefs::parse(Some(&unknown_tag)).is_err());
    }
}
