//! A deterministic Alice/Bob harness: seeded RNG, injected clock, the full stack from text to envelope bytes.
#![allow(dead_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tern_protocol::{
    Body, CardDetails, ContactCard, Content, Envelope, Identity, IdentityKey, MessageId,
    PeerSessions,
};

/// Mail expires a week after it is sent.
pub const TTL_S: u64 = 7 * 24 * 3600;

pub struct Party {
    pub identity: Identity,
    pub card: ContactCard,
    /// Sessions with the other party.
    pub sessions: PeerSessions,
}

impl Party {
    pub fn new(name: &str, rng: &mut ChaCha20Rng, now_ms: u64) -> Self {
        let identity = Identity::generate(rng, now_ms);
        let card = ContactCard::issue(
            &identity,
            CardDetails {
                display_name: name.into(),
                revision: now_ms,
                ..CardDetails::default()
            },
        )
        .unwrap();
        // Placeholder until paired; replaced in `Pair::new`.
        let sessions = PeerSessions::new(identity.key(), identity.key());
        Self {
            identity,
            card,
            sessions,
        }
    }

    pub fn key(&self) -> IdentityKey {
        self.identity.key()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Alice,
    Bob,
}

impl Side {
    pub fn other(self) -> Self {
        match self {
            Self::Alice => Self::Bob,
            Self::Bob => Self::Alice,
        }
    }
}

/// Two parties that hold each other's cards, a seeded RNG and a clock.
pub struct Pair {
    pub rng: ChaCha20Rng,
    pub now_ms: u64,
    pub alice: Party,
    pub bob: Party,
}

#[derive(Debug)]
pub enum ReceiveError {
    Open(tern_protocol::OpenError),
    Decrypt(tern_protocol::DecryptError),
    Content(tern_protocol::DecodeError),
}

impl Pair {
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let now_ms = 1_750_000_000_000;
        let mut alice = Party::new("Alice", &mut rng, now_ms);
        let mut bob = Party::new("Bob", &mut rng, now_ms);
        alice.sessions = PeerSessions::new(alice.key(), bob.key());
        bob.sessions = PeerSessions::new(bob.key(), alice.key());
        Self {
            rng,
            now_ms,
            alice,
            bob,
        }
    }

    pub fn party(&mut self, side: Side) -> &mut Party {
        match side {
            Side::Alice => &mut self.alice,
            Side::Bob => &mut self.bob,
        }
    }

    pub fn tick(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// Encrypts `text` from `from` to the other party: content, session message. Returns the session bytes.
    pub fn send_session(&mut self, from: Side, text: &str) -> (MessageId, Vec<u8>) {
        let id = MessageId::new_v7(self.now_ms, &mut self.rng);
        let content = Content {
            id,
            sent_at_ms: self.now_ms,
            body: Body::Text(text.into()),
        }
        .encode()
        .unwrap();
        let their_card = self.party(from.other()).card.clone();
        let Pair {
            rng, alice, bob, ..
        } = self;
        let me = match from {
            Side::Alice => alice,
            Side::Bob => bob,
        };
        let bytes = me
            .sessions
            .encrypt(&me.identity, &me.card, Some(&their_card), &content, rng)
            .unwrap();
        (id, bytes)
    }

    /// Decrypts session bytes at `to`.
    pub fn receive_session(&mut self, to: Side, bytes: &[u8]) -> Result<Content, ReceiveError> {
        let me = self.party(to);
        let decrypted = me
            .sessions
            .decrypt(&me.identity, bytes)
            .map_err(ReceiveError::Decrypt)?;
        Content::decode(&decrypted.plaintext).map_err(ReceiveError::Content)
    }

    /// The full stack: content, session, sealed envelope bytes.
    pub fn send(&mut self, from: Side, text: &str) -> (MessageId, Vec<u8>) {
        let (id, session) = self.send_session(from, text);
        let recipient = self.party(from.other()).identity.public().clone();
        let expires = self.now_ms / 1000 + TTL_S;
        let Pair {
            rng, alice, bob, ..
        } = self;
        let sender = match from {
            Side::Alice => &alice.identity,
            Side::Bob => &bob.identity,
        };
        let envelope = Envelope::seal(sender, &recipient, &session, expires, rng).unwrap();
        (id, envelope.encode())
    }

    /// Opens envelope bytes at `to` and decrypts them.
    pub fn receive(&mut self, to: Side, envelope: &[u8]) -> Result<Content, ReceiveError> {
        let now_s = self.now_ms / 1000;
        let me = self.party(to);
        let envelope = Envelope::decode(envelope).map_err(|e| ReceiveError::Open(e.into()))?;
        let opened = envelope
            .open(&me.identity, now_s)
            .map_err(ReceiveError::Open)?;
        assert_eq!(
            opened.sender,
            me.sessions.remote(),
            "sender is the paired peer"
        );
        let decrypted = me
            .sessions
            .decrypt(&me.identity, &opened.session_message)
            .map_err(ReceiveError::Decrypt)?;
        Content::decode(&decrypted.plaintext).map_err(ReceiveError::Content)
    }

    pub fn text_of(content: &Content) -> &str {
        match &content.body {
            Body::Text(t) => t,
            other => panic!("expected text, got {other:?}"),
        }
    }
}
