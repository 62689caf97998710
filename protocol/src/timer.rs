//! Disappearing messages: a conversation's timer, set by either side and settled on one value by both
//! (docs/protocol.md §12.4).
//!
//! A setting travels as content kind 6, `u32 seconds || u64 version`. Each side keeps the winning setting
//! with the id of the content that carried it; a setting wins when its `(version, id)` is larger, so two
//! changes made at once settle on the same value on both sides whatever order they arrive in, and a change
//! made after seeing another (version + 1) always wins over it.

use crate::codec::{DecodeError, Reader, Writer};

/// The longest timer: one year. Longer, or a setting that is not a whole second, is refused.
pub const MAX_TIMER_S: u32 = 365 * 24 * 3600;
/// An encoded [`TimerSetting`] (a kind 6 body) is exactly this long.
pub const TIMER_SETTING_LEN: usize = 4 + 8;
/// An encoded [`Timer`] (as a profile keeps it) is exactly this long.
pub const TIMER_LEN: usize = 4 + 8 + 16;

/// What a kind 6 content says: the timer (0 = off) and its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerSetting {
    pub seconds: u32,
    pub version: u64,
}

/// Whether `seconds` is a timer a setting may carry (0 = off, at most [`MAX_TIMER_S`]); groups check the
/// timer of their group info (node's `tern_group_info`) by the same rule.
pub fn check_seconds(seconds: u32) -> Result<(), DecodeError> {
    if seconds > MAX_TIMER_S {
        return Err(DecodeError::Invalid {
            field: "timer",
            reason: "longer than a year",
        });
    }
    Ok(())
}

impl TimerSetting {
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        check_seconds(self.seconds)?;
        let mut w = Writer::with_capacity(TIMER_SETTING_LEN);
        w.u32(self.seconds).u64(self.version);
        Ok(w.into_vec())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let seconds = r.u32("timer")?;
        let version = r.u64("timer version")?;
        r.finish()?;
        check_seconds(seconds)?;
        Ok(Self { seconds, version })
    }
}

/// A conversation's timer as one side holds it: the winning setting and the id of the content that
/// carried it. [`Timer::OFF`] until either side sets one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// 0: messages stay.
    pub seconds: u32,
    pub version: u64,
    /// The id of the content that carried the setting (a `MessageId`'s bytes; all zeros for
    /// [`Timer::OFF`]).
    pub id: [u8; 16],
}

impl Timer {
    /// No timer, version 0: any setting wins over it.
    pub const OFF: Timer = Timer {
        seconds: 0,
        version: 0,
        id: [0; 16],
    };

    /// The setting a side sends to change the timer to `seconds`: one version past what it holds.
    pub fn next(&self, seconds: u32) -> TimerSetting {
        TimerSetting {
            seconds,
            version: self.version.saturating_add(1),
        }
    }

    /// The timer `setting`, carried by content `id`, makes.
    pub fn from_setting(setting: TimerSetting, id: [u8; 16]) -> Self {
        Self {
            seconds: setting.seconds,
            version: setting.version,
            id,
        }
    }

    /// Whether this timer replaces `held`: a larger version, or the same version and a larger id
    /// (bytewise).
    pub fn wins_over(&self, held: &Timer) -> bool {
        (self.version, self.id) > (held.version, held.id)
    }

    /// `seconds || version || id`, as a profile keeps it.
    pub fn encode(&self) -> [u8; TIMER_LEN] {
        let mut out = [0u8; TIMER_LEN];
        out[..4].copy_from_slice(&self.seconds.to_be_bytes());
        out[4..12].copy_from_slice(&self.version.to_be_bytes());
        out[12..].copy_from_slice(&self.id);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let seconds = r.u32("timer")?;
        let version = r.u64("timer version")?;
        let id = r.array("timer id")?;
        r.finish()?;
        check_seconds(seconds)?;
        Ok(Self {
            seconds,
            version,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(seconds: u32, version: u64, id: u8) -> Timer {
        Timer::from_setting(TimerSetting { seconds, version }, [id; 16])
    }

    #[test]
    fn concurrent_settings_settle_on_one_value_in_either_order() {
        let a = timer(3600, 1, 9);
        let b = timer(86_400, 1, 3);
        for order in [[a, b], [b, a]] {
            let mut held = Timer::OFF;
            for t in order {
                if t.wins_over(&held) {
                    held = t;
                }
            }
            assert_eq!(held, a, "the larger id wins a tie of versions");
        }
    }

    #[test]
    fn a_change_made_after_seeing_another_wins_over_it() {
        let seen = timer(3600, 4, 0xff);
        let next = Timer::from_setting(seen.next(0), [0; 16]);
        assert_eq!(next.version, 5);
        assert!(next.wins_over(&seen));
        assert!(!seen.wins_over(&next));
        assert!(
            !seen.wins_over(&seen),
            "the same setting again changes nothing"
        );
    }

    #[test]
    fn settings_round_trip_and_bounds_hold_both_ways() {
        let t = timer(MAX_TIMER_S, 7, 2);
        assert_eq!(Timer::decode(&t.encode()).unwrap(), t);
        let s = TimerSetting {
            seconds: 300,
            version: 2,
        };
        let bytes = s.encode().unwrap();
        assert_eq!(bytes.len(), TIMER_SETTING_LEN);
        assert_eq!(TimerSetting::decode(&bytes).unwrap(), s);
        let long = TimerSetting {
            seconds: MAX_TIMER_S + 1,
            version: 1,
        };
        assert!(long.encode().is_err());
        let mut w = Writer::new();
        w.u32(MAX_TIMER_S + 1).u64(1);
        assert!(TimerSetting::decode(w.as_slice()).is_err());
        assert!(TimerSetting::decode(&bytes[..11]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(TimerSetting::decode(&longer).is_err());
    }
}
