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
        let name = crate::names::clean_name(name)?;
        let mut rng = rand::rng();
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
            identity,
            card,
            sessions: HashMap::new(),
            cards: HashMap::new(),
        })
    }

    /// Opens a profile, rotating the prekey (and re-issuing the card) when it is due.
    pub fn open(dir: &Path, password: &Password) -> Result<Self, EngineError> {
        let store = Store::open(dir, password)?;
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
            identity,
            card,
            sessions: HashMap::new(),
            cards: HashMap::new(),
        };
        engine.rotate_prekey_if_due()?;
        Ok(engine)
    }

    pub(super) fn rotate_prekey_if_due(&mut self) -> Result<(), EngineError> {
        let mut rng = rand::rng();
        let now = now_ms();
        if !self.identity.rotate_prekey_if_due(&mut rng, now) {
            return Ok(());
        }
        let mut details = self.card.details().clone();
        details.revision = now.max(details.revision + 1);
        let card = ContactCard::issue(&self.identity, details)?;
        let pickle = self.identity.pickle(&self.store.pickle_key(), &mut rng);
        let mut batch = self.store.batch()?;
        batch.vault_put(VaultItem::IdentityPickle, &pickle)?;
        batch.vault_put(VaultItem::OwnCard, card.encode())?;
        batch.commit()?;
        self.card = card;
        debug!("rotated the signed prekey and re-issued the card");
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
        details.revision = now_ms().max(details.revision + 1);
        let card = ContactCard::issue(&self.identity, details)?;
        self.store.vault_put(VaultItem::OwnCard, card.encode())?;
        self.card = card;
        Ok(true)
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn card(&self) -> &ContactCard {
        &self.card
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
        }
    }
}
