//! Read receipts and typing indicators, each on or off for the whole profile (issue 16). As in Signal,
//! the switch works both ways: with read receipts off this profile sends none and shows no one's (a
//! contact's read receipt counts as a delivery receipt); with typing indicators off it sends no typing
//! and drops the ones it gets. Delivery receipts are not a choice: they are how the sender's outbox
//! knows a message arrived. Kept sealed in the profile like every setting (docs/protocol.md §13.1).

use crate::settings::SettingsError;
use crate::store::{Store, StoreError, StoreReader};

/// The store setting that holds [`PrivacySettings`].
pub const PRIVACY_SETTING: &str = "privacy";

/// The stored form's version byte.
const VERSION: u8 = 1;
const READ_RECEIPTS: u8 = 0b01;
const TYPING: u8 = 0b10;

/// Whether this profile sends (and shows) read receipts and typing indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivacySettings {
    pub read_receipts: bool,
    pub typing: bool,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            read_receipts: true,
            typing: true,
        }
    }
}

impl PrivacySettings {
    /// The settings stored in the profile, or the defaults (both on) if none were saved.
    pub fn load(store: &Store) -> Result<Self, SettingsError> {
        Self::parse(
            store
                .setting_get(PRIVACY_SETTING)?
                .as_deref()
                .map(|v| &v[..]),
        )
    }

    /// [`Self::load`] through a store reader (off the event loop).
    pub fn load_from(reader: &StoreReader) -> Result<Self, SettingsError> {
        Self::parse(
            reader
                .setting_get(PRIVACY_SETTING)?
                .as_deref()
                .map(|v| &v[..]),
        )
    }

    /// Saves the settings in the profile (durable on return).
    pub fn save(&self, store: &mut Store) -> Result<(), StoreError> {
        store.setting_put(PRIVACY_SETTING, &self.encode())
    }

    /// `[version = 1, flags]`: bit 0 read receipts, bit 1 typing indicators.
    fn encode(&self) -> [u8; 2] {
        let mut flags = 0;
        if self.read_receipts {
            flags |= READ_RECEIPTS;
        }
        if self.typing {
            flags |= TYPING;
        }
        [VERSION, flags]
    }

    fn parse(stored: Option<&[u8]>) -> Result<Self, SettingsError> {
        match stored {
            None => Ok(Self::default()),
            Some(&[VERSION, flags]) if flags & !(READ_RECEIPTS | TYPING) == 0 => Ok(Self {
                read_receipts: flags & READ_RECEIPTS != 0,
                typing: flags & TYPING != 0,
            }),
            Some(other) => Err(SettingsError::Unreadable(format!(
                "privacy settings of {} bytes (version {:?}) are not version {VERSION}'s two bytes",
                other.len(),
                other.first()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_round_trips_and_nothing_stored_means_both_on() {
        assert_eq!(PrivacySettings::parse(None).ok(), Some(Default::default()));
        for read_receipts in [false, true] {
            for typing in [false, true] {
                let settings = PrivacySettings {
                    read_receipts,
                    typing,
                };
                assert_eq!(
                    PrivacySettings::parse(Some(&settings.encode())).ok(),
                    Some(settings)
                );
            }
        }
    }

    #[test]
    fn an_unknown_version_or_flag_is_a_typed_error() {
        for bad in [&[2u8, 0][..], &[1, 4], &[1], &[1, 3, 0], &[]] {
            assert!(
                matches!(
                    PrivacySettings::parse(Some(bad)),
                    Err(SettingsError::Unreadable(_))
                ),
                "{bad:?}"
            );
        }
    }
}
