//! [`Profile`]: an unlocked profile, for work that needs no network (create, unlock, contacts, history,
//! password). [`crate::node::Node::start`] takes it to go online and [`crate::node::Node::stop`] gives it
//! back. It speaks only [`crate::api`] types.

mod files;

use std::path::{Path, PathBuf};

use tern_protocol::{IdentityKey, SafetyNumber};

use crate::api::{Contact, ContactChange, ContactState, ConversationId, Cursor, Page, Whoami};
use crate::engine::Engine;
use crate::engine::EngineError;
use crate::error::NodeError;
use crate::privacy::PrivacySettings;
use crate::settings::{NetworkSettings, SettingsError};
pub use crate::store::{KdfParams, Password, RekeyReport, STORE_FILE};

/// Every setting the node writes, by name: a re-key ([`Profile::change_password`]) carries these and
/// refuses a profile holding any other (a setting's row key is a blind index of its name). A new setting
/// must be listed here.
pub(crate) const ALL_SETTINGS: &[&str] = &[
    crate::settings::NETWORK_SETTING,
    crate::settings::AUTO_BACKUP_SETTING,
    crate::privacy::PRIVACY_SETTING,
    crate::prefs::CONVERSATION_PREFS_SETTING,
    crate::drafts::DRAFTS_SETTING,
    crate::mailbox::group_client::GROUP_MAIL_SETTING,
    crate::group::GROUP_LINKS_SETTING,
];

/// An unlocked profile. Dropping it closes the store and releases the profile's lock.
#[derive(Debug)]
pub struct Profile {
    pub(crate) engine: Engine,
}

impl From<Engine> for Profile {
    /// A profile opened at the engine level (tests and benchmarks that drive the engine by hand).
    fn from(engine: Engine) -> Self {
        Self { engine }
    }
}

impl Profile {
    /// Creates a profile in `dir`: a new identity and card, sealed under `password`.
    pub fn create(
        dir: &Path,
        name: &str,
        password: &Password,
        kdf: KdfParams,
    ) -> Result<Self, NodeError> {
        Ok(Self {
            engine: Engine::create(dir, name, password, kdf)?,
        })
    }

    /// Unlocks the profile in `dir` (Argon2id: call it off any thread that must stay responsive).
    pub fn open(dir: &Path, password: &Password) -> Result<Self, NodeError> {
        Ok(Self {
            engine: Engine::open(dir, password)?,
        })
    }

    pub fn dir(&self) -> PathBuf {
        self.engine.store().dir().to_path_buf()
    }

    pub fn key(&self) -> IdentityKey {
        self.engine.key()
    }

    pub fn whoami(&self) -> Whoami {
        self.engine.whoami()
    }

    /// The invite as a QR code drawn in text (for a terminal).
    pub fn invite_qr_text(&self) -> Result<String, NodeError> {
        Ok(self
            .engine
            .card()
            .qr()
            .map_err(EngineError::from)?
            .to_text())
    }

    pub fn safety_number(&self, contact: &IdentityKey) -> SafetyNumber {
        self.engine.safety_number(contact)
    }

    /// Adds (or updates) a contact from an invite link, named `name` or else the card's display name.
    pub fn add_contact(
        &mut self,
        link: &str,
        name: Option<&str>,
    ) -> Result<(Contact, ContactChange), NodeError> {
        Ok(add_contact(&mut self.engine, link, name)?)
    }

    pub fn contacts(&self) -> Result<Vec<Contact>, NodeError> {
        Ok(self.engine.reader().contacts()?)
    }

    /// A contact by name (case-insensitive) or peer id.
    pub fn find_contact(&self, name_or_peer: &str) -> Result<Contact, NodeError> {
        Ok(crate::engine::find_contact_in(
            self.engine.reader().contacts()?,
            name_or_peer,
        )?)
    }

    /// Marks the contact verified if `digits` is the safety number; returns whether it matched.
    pub fn verify(&mut self, contact: &IdentityKey, digits: &str) -> Result<bool, NodeError> {
        Ok(self.engine.verify(contact, digits)?)
    }

    pub fn set_contact_state(
        &mut self,
        contact: &IdentityKey,
        state: ContactState,
    ) -> Result<Contact, NodeError> {
        Ok(self.engine.set_contact_state(contact, state)?.into())
    }

    /// The engine under the profile (tests that look at the store's bytes).
    #[doc(hidden)]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Messages of a conversation, newest `limit` before `before`, oldest first.
    pub fn page(
        &self,
        conversation: &ConversationId,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, NodeError> {
        Ok(self.engine.reader().page(conversation, before, limit)?)
    }

    /// Replaces the signed prekey and drops every earlier one at once (after a suspected compromise), and
    /// re-issues the card: contacts holding the old card must get the new one to start a session; running
    /// sessions go on.
    pub fn revoke_prekeys(&mut self) -> Result<(), NodeError> {
        Ok(self.engine.revoke_prekeys()?)
    }

    /// Changes the password and re-keys the profile: every row is written again, into a fresh file,
    /// under a new random store key wrapped by `new`, so neither the old password nor the old key opens
    /// anything in it (`store::Store::rekey`). Reads and writes the whole store: seconds for a large
    /// profile.
    pub fn change_password(
        &mut self,
        old: &Password,
        new: &Password,
    ) -> Result<RekeyReport, NodeError> {
        Ok(self.engine.store_mut().rekey(old, new, ALL_SETTINGS)?)
    }

    pub fn network_settings(&self) -> Result<NetworkSettings, SettingsError> {
        NetworkSettings::load(self.engine.store())
    }

    pub fn save_network_settings(
        &mut self,
        settings: &NetworkSettings,
    ) -> Result<(), SettingsError> {
        settings.save(self.engine.store_mut())
    }

    /// Which conversations are muted and pinned (none if unreadable: they are only preferences).
    pub fn conversation_prefs(&self) -> crate::prefs::ConversationPrefs {
        crate::prefs::ConversationPrefs::load(self.engine.store()).unwrap_or_default()
    }

    /// The unsent drafts (`crate::drafts`; none if unreadable, said in the log).
    pub fn drafts(&self) -> crate::drafts::Drafts {
        crate::drafts::Drafts::load(self.engine.store()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable drafts: the composers start empty");
            crate::drafts::Drafts::default()
        })
    }

    /// Whether read receipts and typing indicators are on (`crate::privacy`).
    pub fn privacy(&self) -> PrivacySettings {
        self.engine.privacy()
    }

    /// Turns read receipts and typing indicators on or off (`crate::privacy`).
    pub fn set_privacy(&mut self, settings: PrivacySettings) -> Result<(), NodeError> {
        Ok(self.engine.set_privacy(settings)?)
    }
}

pub(crate) fn add_contact(
    engine: &mut Engine,
    link: &str,
    name: Option<&str>,
) -> Result<(Contact, ContactChange), EngineError> {
    let known = tern_protocol::ContactCard::from_invite_link(link)
        .ok()
        .map(|card| engine.store().contact(&card.key()))
        .transpose()?
        .flatten()
        .is_some();
    let (record, change) = engine.add_contact(link, name)?;
    let change = if known {
        change.into()
    } else {
        ContactChange::Added
    };
    Ok((record.into(), change))
}
