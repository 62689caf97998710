//! Creating and opening a profile, its identity, card and mailboxes.

use super::*;

impl Engine {
    /// Creates a profile: a new identity and card, sealed into a new store.
    pub fn create(
        dir: &Path,
        name: &str,
        password: &Password,
        kdf: KdfParams,
    ) -> Result<Self, EngineError> {
        Self::create_with_rng(dir, name, password, kdf, os_rng())
    }

    /// [`Self::create`] with every random choice (the identity's keys among them) drawn from `rng`, which
    /// the engine keeps.
    pub fn create_with_rng(
        dir: &Path,
        name: &str,
        password: &Password,
        kdf: KdfParams,
        mut rng: EngineRng,
    ) -> Result<Self, EngineError> {
        let name = crate::names::clean_name(name)?;
        let now = now_ms();
        let identity = Identity::generate(&mut rng, now);
        let card = ContactCard::issue(
            &identity,
            CardDetails {
                display_name: name,
                revision: now,
                ..CardDetails::default()
            },
        )?;
        let mut store = Store::create(dir, password, kdf)?;
        let pickle = identity.pickle(&store.pickle_key(), &mut rng);
        let mut batch = store.batch()?;
        batch.vault_put(VaultItem::IdentityPickle, &pickle)?;
        batch.vault_put(VaultItem::OwnCard, card.encode())?;
        batch.commit()?;
        Ok(Self {
            store,
            rng,
            identity,
            card,
            sessions: HashMap::new(),
            cards: HashMap::new(),
            requests: None,
            card_updates: Vec::new(),
            next_expiry: None,
            last_compact: None,
            privacy: PrivacySettings::default(),
            join_tokens: Default::default(),
        })
    }

    /// Opens a profile, rotating the prekey (and re-issuing the card) when it is due.
    pub fn open(dir: &Path, password: &Password) -> Result<Self, EngineError> {
        Self::open_store(Store::open(dir, password)?)
    }

    /// [`Self::open`] over a store opened already (the full-disk tests open one over a storage backend
    /// that fails on demand, `Store::open_with_backend`).
    #[doc(hidden)]
    pub fn open_store(store: Store) -> Result<Self, EngineError> {
        let key = store.pickle_key();
        let pickle = store
            .vault_get(VaultItem::IdentityPickle)?
            .ok_or(EngineError::NoIdentity)?;
        let identity = Identity::unpickle(&key, &pickle)?;
        let card_bytes = store
            .vault_get(VaultItem::OwnCard)?
            .ok_or(EngineError::NoIdentity)?;
        let card = ContactCard::decode(&card_bytes)?;
        let mut engine = Self {
            store,
            rng: os_rng(),
            identity,
            card,
            sessions: HashMap::new(),
            cards: HashMap::new(),
            requests: None,
            card_updates: Vec::new(),
            next_expiry: None,
            last_compact: None,
            privacy: PrivacySettings::default(),
            join_tokens: Default::default(),
        };
        engine.privacy = PrivacySettings::load(&engine.store).unwrap_or_else(|e| {
            warn!(error = %e, "unreadable privacy settings: read receipts and typing stay on");
            PrivacySettings::default()
        });
        engine.next_expiry = engine.store.next_expiry()?;
        // Messages expired and the app stopped before the pages that held them were overwritten.
        if engine.store.scrub_pending()? {
            engine.compact_if_pending();
        }
        engine.rotate_prekey_if_due()?;
        Ok(engine)
    }

    /// Whether read receipts and typing indicators are on (`crate::privacy`).
    pub fn privacy(&self) -> PrivacySettings {
        self.privacy
    }

    /// Turns read receipts and typing indicators on or off, durably, from the next message on.
    pub fn set_privacy(&mut self, settings: PrivacySettings) -> Result<(), EngineError> {
        settings.save(&mut self.store)?;
        self.privacy = settings;
        Ok(())
    }

    /// The tokens of this profile's live group links (docs/protocol.md §18.11), which let a stranger's
    /// join request through; the node sets them whenever a link is made or revoked.
    pub fn set_join_tokens(
        &mut self,
        tokens: std::collections::HashSet<tern_protocol::group_link::LinkToken>,
    ) {
        self.join_tokens = tokens;
    }

    /// After a restore from a backup, which carries no sessions: queues this profile's card to every
    /// accepted contact (unless opening just re-issued it, which queued it already). Each send starts a
    /// new session, which the contact adopts (docs/protocol.md §10 rule 5, §20.5).
    pub fn announce_restored(&mut self) {
        if self.card_updates.is_empty() {
            self.queue_card_updates(now_ms());
        }
    }

    /// The sender of an envelope addressed to this profile, if it opens (the outer seal only) and the
    /// sender is an accepted contact: who to name when its message cannot be decrypted.
    pub fn contact_sender_of(&self, bytes: &[u8], now: u64) -> Option<IdentityKey> {
        let envelope = Envelope::decode(bytes).ok()?;
        let sender = envelope.open(&self.identity, now / 1000).ok()?.sender;
        let contact = self.store.contact(&sender).ok()??;
        (contact.state == crate::api::ContactState::Accepted).then_some(sender)
    }

    /// Draws the engine's randomness from `rng` from now on (a test's seeded generator).
    pub fn set_rng(&mut self, rng: EngineRng) {
        self.rng = rng;
    }

    /// Rotates the signed prekey if it is older than `tern_protocol::identity::PREKEY_ROTATION_MS` and
    /// drops replaced ones past their grace period; re-issues the card when the prekey changed (returned).
    /// Called when the profile opens and, by a running node, every [`PREKEY_CHECK_INTERVAL_MS`].
    pub fn rotate_prekey_if_due(&mut self) -> Result<bool, EngineError> {
        self.rotate_prekey_if_due_at(now_ms())
    }

    /// [`Self::rotate_prekey_if_due`] at `now` (unix milliseconds).
    pub fn rotate_prekey_if_due_at(&mut self, now: u64) -> Result<bool, EngineError> {
        let before = self.identity.prekey_ids();
        let rotated = self.identity.rotate_prekey_if_due(&mut self.rng, now);
        if !rotated {
            if self.identity.prekey_ids() != before {
                // Only pruned: the card is unchanged, the identity is not.
                self.save_identity()?;
            }
            return Ok(false);
        }
        self.reissue_card(now)?;
        debug!("rotated the signed prekey and re-issued the card");
        Ok(true)
    }

    /// Replaces the signed prekey and forgets every earlier one now (after a suspected compromise), and
    /// re-issues the card. Contacts holding the old card can no longer start a session until they get
    /// the new one; sessions already running go on.
    pub fn revoke_prekeys(&mut self) -> Result<(), EngineError> {
        let now = now_ms();
        self.identity.revoke_prekeys(&mut self.rng, now);
        self.reissue_card(now)
    }

    fn save_identity(&mut self) -> Result<(), EngineError> {
        let pickle = self
            .identity
            .pickle(&self.store.pickle_key(), &mut self.rng);
        self.store.vault_put(VaultItem::IdentityPickle, &pickle)?;
        Ok(())
    }

    /// Issues a new card for the current prekey and stores it with the identity, in one commit.
    fn reissue_card(&mut self, now: u64) -> Result<(), EngineError> {
        let mut details = self.card.details().clone();
        details.revision = now.max(details.revision + 1);
        let card = ContactCard::issue(&self.identity, details)?;
        let pickle = self
            .identity
            .pickle(&self.store.pickle_key(), &mut self.rng);
        let mut batch = self.store.batch()?;
        batch.vault_put(VaultItem::IdentityPickle, &pickle)?;
        batch.vault_put(VaultItem::OwnCard, card.encode())?;
        batch.commit()?;
        self.card = card;
        self.queue_card_updates(now);
        Ok(())
    }

    pub fn key(&self) -> IdentityKey {
        self.identity.key()
    }

    /// Publishes the servers that hold this profile's mail in its card (re-issued only when they change).
    /// Each server is a binary PeerId and binary multiaddrs; the card keeps at most its bounds' worth.
    pub fn set_mailboxes(
        &mut self,
        servers: Vec<tern_protocol::MailboxNode>,
    ) -> Result<bool, EngineError> {
        let mut servers = servers;
        servers.truncate(tern_protocol::card::MAX_MAILBOXES);
        for server in &mut servers {
            server
                .addresses
                .retain(|a| a.len() <= tern_protocol::card::MAX_ADDRESS_LEN);
            server
                .addresses
                .truncate(tern_protocol::card::MAX_ADDRESSES);
        }
        if self.card.details().mailboxes == servers {
            return Ok(false);
        }
        let mut details = self.card.details().clone();
        details.mailboxes = servers;
        self.reissue_with(details, now_ms())?;
        Ok(true)
    }

    /// Changes this profile's name: checked and normalised as a new profile's is ([`crate::names`]; a
    /// typed [`crate::names::NameError`] for an empty or too long one). The card is re-issued under it
    /// and queued to every accepted contact (content kind 5, docs/protocol.md §12.3), as after a prekey
    /// rotation. The same name again changes nothing. Returns the name as stored.
    pub fn set_display_name(&mut self, name: &str) -> Result<String, EngineError> {
        let name = crate::names::clean_name(name)?;
        if name != self.card.display_name() {
            let mut details = self.card.details().clone();
            details.display_name = name.clone();
            self.reissue_with(details, now_ms())?;
        }
        Ok(name)
    }

    /// Issues a card with `details` (at a revision past the current one), stores it and queues it to every
    /// accepted contact. The identity is unchanged.
    fn reissue_with(&mut self, mut details: CardDetails, now: u64) -> Result<(), EngineError> {
        details.revision = now.max(details.revision + 1);
        let card = ContactCard::issue(&self.identity, details)?;
        self.store.vault_put(VaultItem::OwnCard, card.encode())?;
        self.card = card;
        self.queue_card_updates(now);
        Ok(())
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn card(&self) -> &ContactCard {
        &self.card
    }

    /// Peers whose sessions are held decoded in memory (at most [`MAX_SESSIONS_IN_MEMORY`]).
    pub fn sessions_in_memory(&self) -> usize {
        self.sessions.len()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A read-only handle on the store for other threads (page, search, contacts off the event loop).
    pub fn reader(&self) -> crate::store::StoreReader {
        self.store.reader()
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    pub fn whoami(&self) -> Whoami {
        Whoami {
            key: self.key(),
            name: self.card.display_name().to_owned(),
            fingerprint: Fingerprint::of(&self.key()),
            invite_link: self.card.invite_link(),
            invite_link_1_0: self.card.invite_link_1_0(),
        }
    }
}
