//! End-to-end sessions between two identities.
//!
//! A session starts with one Noise message (`Noise_X_25519_ChaChaPoly_SHA256`, the initiator's identity
//! agreement key as `s`, the responder's signed prekey as the pre-known `rs`), so it can start while the
//! responder is offline. The initiator repeats that handshake message in front of every message until the
//! first reply arrives. The Noise split seeds a [double ratchet](crate::ratchet).
//!
//! [`PeerSessions`] holds every session with one peer (the first is the one used for sending) and makes
//! simultaneous starts converge: when a party whose own start is still unanswered receives the other's start,
//! the session begun by the smaller identity key wins on both sides. Sessions are persisted only as encrypted
//! pickles ([`PeerSessions::pickle`]).

use std::collections::VecDeque;
use std::fmt;

use rand_core::CryptoRng;
use snow::params::NoiseParams;
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::card::{ContactCard, MAX_CARD_LEN};
use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{self, KEY_LEN, SecretKey, TAG_LEN};
use crate::identity::{Identity, IdentityKey};
use crate::message::MAX_CONTENT_LEN;
use crate::pickle::{self, PickleError, PickleKey};
use crate::ratchet::{Header, Ratchet};
pub use crate::session_error::{DecryptError, EncryptError};

/// The session message format version.
pub const SESSION_VERSION: u8 = 1;
/// Handshake kind 1: `Noise_X_25519_ChaChaPoly_SHA256` against a signed prekey. A post-quantum hybrid gets a
/// new kind; sessions keep the kind they started with.
pub const HANDSHAKE_NOISE_X: u8 = 1;
/// Sessions kept per peer (the active one and the most recent others); older ones are retired.
pub const MAX_SESSIONS_PER_PEER: usize = 4;
/// Ids of retired sessions remembered per peer, so a replayed start cannot revive one.
pub const MAX_RETIRED_SESSIONS: usize = 64;
/// A Noise start message is at most this long: `e`, encrypted `s`, and the encrypted contact card.
pub const MAX_HANDSHAKE_LEN: usize = KEY_LEN + KEY_LEN + TAG_LEN + MAX_CARD_LEN + TAG_LEN;
/// A ratchet ciphertext is at most this long.
pub const MAX_CIPHERTEXT_LEN: usize = MAX_CONTENT_LEN + TAG_LEN;
/// An encoded session message is at most this long.
pub const MAX_SESSION_MESSAGE_LEN: usize =
    2 + 1 + 4 + 2 + MAX_HANDSHAKE_LEN + Header::ENCODED_LEN + 4 + MAX_CIPHERTEXT_LEN;

const KIND_PREKEY: u8 = 1;
const KIND_RATCHET: u8 = 2;
const NOISE_PATTERN: &str = "Noise_X_25519_ChaChaPoly_SHA256";
const LABEL_PROLOGUE: &[u8] = b"tern/session/v1";
const LABEL_ROOT: &[u8] = b"tern/session/root/v1";
const LABEL_AD: &[u8] = b"tern/ratchet/ad/v1";
const LABEL_SESSION_ID: &[u8] = b"tern/session-id/v1";

/// A session's id: the first 16 bytes of SHA-256 over the label and its Noise start message.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    fn of_handshake(noise: &[u8]) -> Self {
        let digest = crypto::sha256(&[LABEL_SESSION_ID, noise]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// snow's randomness, drawn from the caller's RNG so sessions stay deterministic under a seeded RNG.
#[derive(Zeroize, ZeroizeOnDrop)]
struct SeededRandom {
    seed: [u8; KEY_LEN],
    counter: u64,
}

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        for chunk in dest.chunks_mut(32) {
            self.counter += 1;
            let block = Zeroizing::new(crypto::hmac(&self.seed, &self.counter.to_be_bytes()));
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

/// The responder's randomness: none. It only reads the initiator's one handshake message, which takes
/// no random bytes; should a future pattern ask for some, the handshake fails rather than run on a
/// predictable stream.
struct NoRandom;

impl Random for NoRandom {
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), snow::Error> {
        Err(snow::Error::Rng)
    }
}

struct SeedResolver {
    /// `None` for the responder ([`NoRandom`]).
    seed: Option<Zeroizing<[u8; KEY_LEN]>>,
}

impl CryptoResolver for SeedResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(match &self.seed {
            Some(seed) => Box::new(SeededRandom {
                seed: **seed,
                counter: 0,
            }),
            None => Box::new(NoRandom),
        })
    }
    fn resolve_dh(&self, _: &snow::params::DHChoice) -> Option<Box<dyn Dh>> {
        None
    }
    fn resolve_hash(&self, _: &snow::params::HashChoice) -> Option<Box<dyn Hash>> {
        None
    }
    fn resolve_cipher(&self, _: &snow::params::CipherChoice) -> Option<Box<dyn Cipher>> {
        None
    }
}

/// A Noise builder drawing its randomness from `seed` (the initiator's), or from none (the responder's).
fn noise_builder<'a>(
    seed: Option<Zeroizing<[u8; KEY_LEN]>>,
) -> Result<snow::Builder<'a>, snow::Error> {
    let params: NoiseParams = NOISE_PATTERN.parse()?;
    let resolver =
        FallbackResolver::new(Box::new(SeedResolver { seed }), Box::new(DefaultResolver));
    Ok(snow::Builder::with_resolver(params, Box::new(resolver)))
}

fn prologue(
    initiator: &IdentityKey,
    responder: &IdentityKey,
    prekey_id: u32,
    responder_agreement: &[u8; KEY_LEN],
) -> Vec<u8> {
    let mut w = Writer::with_capacity(128);
    w.raw(LABEL_PROLOGUE)
        .raw(initiator.as_bytes())
        .raw(responder.as_bytes())
        .u32(prekey_id)
        .raw(responder_agreement);
    w.into_vec()
}

fn session_ad(initiator: &IdentityKey, responder: &IdentityKey) -> Vec<u8> {
    let mut ad = Vec::with_capacity(LABEL_AD.len() + 2 * KEY_LEN);
    ad.extend_from_slice(LABEL_AD);
    ad.extend_from_slice(initiator.as_bytes());
    ad.extend_from_slice(responder.as_bytes());
    ad
}

/// The root key from a finished Noise handshake: HKDF over both split keys, salted with the handshake hash.
fn root_from_handshake(hs: &mut snow::HandshakeState) -> SecretKey {
    let (k1, k2) = hs.dangerously_get_raw_split();
    let mut ikm = Zeroizing::new([0u8; 2 * KEY_LEN]);
    ikm[..KEY_LEN].copy_from_slice(&k1);
    ikm[KEY_LEN..].copy_from_slice(&k2);
    let okm = crypto::hkdf::<KEY_LEN>(hs.get_handshake_hash(), ikm.as_ref(), LABEL_ROOT);
    SecretKey::from_bytes(*okm)
}

/// The first message of a session we started, repeated until the peer answers.
#[derive(Clone)]
struct PendingStart {
    prekey_id: u32,
    noise: Vec<u8>,
}

struct Session {
    id: SessionId,
    handshake: u8,
    /// Whether we started this session.
    we_initiated: bool,
    /// Whether any message has been received on it.
    confirmed: bool,
    pending: Option<PendingStart>,
    ratchet: Ratchet,
}

/// A session message as it travels inside an envelope.
enum SessionMessage<'a> {
    Start {
        handshake: u8,
        prekey_id: u32,
        noise: &'a [u8],
        header: Header,
        ciphertext: &'a [u8],
    },
    Ratchet {
        id: SessionId,
        header: Header,
        ciphertext: &'a [u8],
    },
}

impl<'a> SessionMessage<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, "session message", MAX_SESSION_MESSAGE_LEN)?;
        let version = r.u8("session version")?;
        if version != SESSION_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "session message",
                got: version,
                supported: SESSION_VERSION,
            });
        }
        let msg = match r.u8("session message kind")? {
            KIND_PREKEY => {
                let handshake = r.u8("handshake kind")?;
                let prekey_id = r.u32("prekey id")?;
                let noise = r.bytes_u16("handshake", MAX_HANDSHAKE_LEN)?;
                let header = Header::decode(&mut r)?;
                let ciphertext = r.bytes_u32("ciphertext", MAX_CIPHERTEXT_LEN)?;
                Self::Start {
                    handshake,
                    prekey_id,
                    noise,
                    header,
                    ciphertext,
                }
            }
            KIND_RATCHET => {
                let id = SessionId(r.array("session id")?);
                let header = Header::decode(&mut r)?;
                let ciphertext = r.bytes_u32("ciphertext", MAX_CIPHERTEXT_LEN)?;
                Self::Ratchet {
                    id,
                    header,
                    ciphertext,
                }
            }
            _ => {
                return Err(DecodeError::Invalid {
                    field: "session message kind",
                    reason: "unknown kind",
                });
            }
        };
        r.finish()?;
        Ok(msg)
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        w.u8(SESSION_VERSION);
        match self {
            Self::Start {
                handshake,
                prekey_id,
                noise,
                header,
                ciphertext,
            } => {
                w.u8(KIND_PREKEY)
                    .u8(*handshake)
                    .u32(*prekey_id)
                    .bytes_u16(noise);
                header.encode(&mut w);
                w.bytes_u32(ciphertext);
            }
            Self::Ratchet {
                id,
                header,
                ciphertext,
            } => {
                w.u8(KIND_RATCHET).raw(&id.0);
                header.encode(&mut w);
                w.bytes_u32(ciphertext);
            }
        }
        w.into_vec()
    }
}

/// A decrypted message.
#[derive(Debug)]
pub struct Decrypted {
    /// The decrypted content, wiped from memory when dropped.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// Set when the message started a new session: the sender's signed card from the handshake. For an
    /// unknown sender this is a contact request; for a known one, compare it with the card on file.
    pub new_session_card: Option<ContactCard>,
}

/// Every session between one local identity and one peer.
pub struct PeerSessions {
    local: IdentityKey,
    remote: IdentityKey,
    /// `sessions[0]` is the one used for sending.
    sessions: Vec<Session>,
    retired: VecDeque<SessionId>,
}

impl fmt::Debug for PeerSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            local,
            remote,
            sessions,
            retired,
        } = self;
        f.debug_struct("PeerSessions")
            .field("local", local)
            .field("remote", remote)
            .field(
                "sessions",
                &sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
            )
            .field("retired", &retired.len())
            .finish()
    }
}

impl PeerSessions {
    pub fn new(local: IdentityKey, remote: IdentityKey) -> Self {
        Self {
            local,
            remote,
            sessions: Vec::new(),
            retired: VecDeque::new(),
        }
    }

    pub fn remote(&self) -> IdentityKey {
        self.remote
    }

    /// The id of the session used for sending, if any.
    pub fn active_session(&self) -> Option<SessionId> {
        self.sessions.first().map(|s| s.id)
    }

    /// Whether the session used for sending has received anything (a new start that replaces such a
    /// session comes from a peer that lost its state: a reinstall or a restore, §10 rule 5).
    pub fn active_is_confirmed(&self) -> bool {
        self.sessions.first().is_some_and(|s| s.confirmed)
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Whether the active session still waits for the peer's first reply (its messages carry the start).
    pub fn awaiting_reply(&self) -> bool {
        self.sessions.first().is_some_and(|s| s.pending.is_some())
    }

    /// Skipped message keys held by the active session.
    pub fn skipped_keys(&self) -> usize {
        self.sessions.first().map_or(0, |s| s.ratchet.skipped_len())
    }

    fn ad_for(&self, session: &Session) -> Vec<u8> {
        if session.we_initiated {
            session_ad(&self.local, &self.remote)
        } else {
            session_ad(&self.remote, &self.local)
        }
    }

    /// Encrypts `plaintext` for the peer, starting a session from `their_card` if there is none.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        me: &Identity,
        my_card: &ContactCard,
        their_card: Option<&ContactCard>,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, EncryptError> {
        if plaintext.len() > MAX_CONTENT_LEN {
            return Err(EncryptError::TooLong {
                len: plaintext.len(),
                max: MAX_CONTENT_LEN,
            });
        }
        if me.key() != self.local || my_card.key() != self.local {
            return Err(EncryptError::WrongCard);
        }
        if self.sessions.is_empty() {
            let card = their_card.ok_or(EncryptError::NoSession)?;
            let session = self.initiate(me, my_card, card, rng)?;
            self.sessions.insert(0, session);
        }
        let ad = self.ad_for(&self.sessions[0]);
        let session = &mut self.sessions[0];
        let (header, ciphertext) = session.ratchet.encrypt(plaintext, &ad, rng)?;
        let message = match &session.pending {
            Some(start) => SessionMessage::Start {
                handshake: session.handshake,
                prekey_id: start.prekey_id,
                noise: &start.noise,
                header,
                ciphertext: &ciphertext,
            },
            None => SessionMessage::Ratchet {
                id: session.id,
                header,
                ciphertext: &ciphertext,
            },
        };
        Ok(message.encode())
    }

    fn initiate<R: CryptoRng + ?Sized>(
        &self,
        me: &Identity,
        my_card: &ContactCard,
        their_card: &ContactCard,
        rng: &mut R,
    ) -> Result<Session, EncryptError> {
        if their_card.key() != self.remote {
            return Err(EncryptError::WrongCard);
        }
        let prekey = their_card.prekey();
        let handshake_error = |e: snow::Error| EncryptError::Handshake(e.to_string());
        let mut seed = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(seed.as_mut());
        let local_secret = me.agreement_pair().secret_bytes();
        let prologue = prologue(
            &self.local,
            &self.remote,
            prekey.id,
            &their_card.identity().agreement,
        );
        let mut hs = noise_builder(Some(seed))
            .and_then(|b| b.local_private_key(local_secret.as_bytes()))
            .and_then(|b| b.remote_public_key(&prekey.public))
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_initiator())
            .map_err(handshake_error)?;
        let mut noise = vec![0u8; MAX_HANDSHAKE_LEN];
        let len = hs
            .write_message(my_card.encode(), &mut noise)
            .map_err(handshake_error)?;
        noise.truncate(len);
        let root = root_from_handshake(&mut hs);
        Ok(Session {
            id: SessionId::of_handshake(&noise),
            handshake: HANDSHAKE_NOISE_X,
            we_initiated: true,
            confirmed: false,
            pending: Some(PendingStart {
                prekey_id: prekey.id,
                noise,
            }),
            ratchet: Ratchet::initiator(root, prekey.public, rng)?,
        })
    }

    /// Runs the responder side of a session start; nothing is stored until the first message decrypts.
    fn accept(
        &self,
        me: &Identity,
        handshake: u8,
        prekey_id: u32,
        noise: &[u8],
    ) -> Result<(Session, ContactCard), DecryptError> {
        if handshake != HANDSHAKE_NOISE_X {
            return Err(DecryptError::UnsupportedHandshake(handshake));
        }
        let prekey = me
            .prekey_pair(prekey_id)
            .ok_or(DecryptError::UnknownPrekey(prekey_id))?;
        let prekey_secret = prekey.secret_bytes();
        let prologue = prologue(&self.remote, &self.local, prekey_id, &me.public().agreement);
        let mut hs = noise_builder(None)
            .and_then(|b| b.local_private_key(prekey_secret.as_bytes()))
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_responder())
            .map_err(|_| DecryptError::BadHandshake("could not set up the responder"))?;
        let mut payload = Zeroizing::new(vec![0u8; noise.len()]);
        let len = hs
            .read_message(noise, &mut payload)
            .map_err(|_| DecryptError::BadHandshake("the Noise message does not verify"))?;
        let card = ContactCard::decode(&payload[..len])?;
        if card.key() != self.remote {
            return Err(DecryptError::BadHandshake(
                "the card names another identity",
            ));
        }
        if hs.get_remote_static() != Some(card.identity().agreement.as_slice()) {
            return Err(DecryptError::BadHandshake(
                "the Noise static key is not the card's agreement key",
            ));
        }
        let root = root_from_handshake(&mut hs);
        let session = Session {
            id: SessionId::of_handshake(noise),
            handshake,
            we_initiated: false,
            confirmed: false,
            pending: None,
            ratchet: Ratchet::responder(root, prekey.clone()),
        };
        Ok((session, card))
    }

    /// Decrypts a session message from this peer.
    pub fn decrypt(&mut self, me: &Identity, bytes: &[u8]) -> Result<Decrypted, DecryptError> {
        if me.key() != self.local {
            return Err(DecryptError::BadHandshake(
                "decrypting with another identity",
            ));
        }
        match SessionMessage::decode(bytes)? {
            SessionMessage::Ratchet {
                id,
                header,
                ciphertext,
            } => {
                let index = self.index_of(id).ok_or(DecryptError::UnknownSession)?;
                // A plain ratchet message on a start of ours that was never answered means the peer adopted
                // it (its own start lost the tie-break, or reached us late): follow it. Confirmed sessions are
                // never promoted this way, so stale mail on an old session cannot pull us back.
                let adopted = index != 0
                    && self.sessions[index].we_initiated
                    && !self.sessions[index].confirmed;
                let plaintext = self.decrypt_on(index, &header, ciphertext)?;
                let session = &mut self.sessions[index];
                // Only the peer's answer to our start arrives as a plain ratchet message on a session we began.
                session.pending = None;
                if adopted {
                    let session = self.sessions.remove(index);
                    self.sessions.insert(0, session);
                }
                Ok(Decrypted {
                    plaintext: Zeroizing::new(plaintext),
                    new_session_card: None,
                })
            }
            SessionMessage::Start {
                handshake,
                prekey_id,
                noise,
                header,
                ciphertext,
            } => {
                let id = SessionId::of_handshake(noise);
                if let Some(index) = self.index_of(id) {
                    let plaintext = self.decrypt_on(index, &header, ciphertext)?;
                    return Ok(Decrypted {
                        plaintext: Zeroizing::new(plaintext),
                        new_session_card: None,
                    });
                }
                if self.retired.contains(&id) {
                    return Err(DecryptError::ReplayedHandshake);
                }
                let (mut session, card) = self.accept(me, handshake, prekey_id, noise)?;
                let ad = session_ad(&self.remote, &self.local);
                let plaintext = session.ratchet.decrypt(&header, ciphertext, &ad)?;
                session.confirmed = true;
                self.insert_inbound(session);
                Ok(Decrypted {
                    plaintext: Zeroizing::new(plaintext),
                    new_session_card: Some(card),
                })
            }
        }
    }

    fn index_of(&self, id: SessionId) -> Option<usize> {
        self.sessions.iter().position(|s| s.id == id)
    }

    fn decrypt_on(
        &mut self,
        index: usize,
        header: &Header,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let ad = self.ad_for(&self.sessions[index]);
        let session = &mut self.sessions[index];
        let plaintext = session.ratchet.decrypt(header, ciphertext, &ad)?;
        session.confirmed = true;
        Ok(plaintext)
    }

    /// Adds a session the peer started. It becomes the sending session unless our own start is still
    /// unanswered and we hold the smaller identity key (the tie-break both sides compute alike).
    fn insert_inbound(&mut self, session: Session) {
        let keep_ours = self.sessions.first().is_some_and(|active| {
            active.we_initiated && !active.confirmed && self.local < self.remote
        });
        let at = if keep_ours { 1 } else { 0 };
        self.sessions.insert(at, session);
        while self.sessions.len() > MAX_SESSIONS_PER_PEER {
            if let Some(old) = self.sessions.pop() {
                self.retired.push_back(old.id);
            }
        }
        while self.retired.len() > MAX_RETIRED_SESSIONS {
            self.retired.pop_front();
        }
    }

    /// Whether the next [`PeerSessions::encrypt`] uses a message key that the last stored
    /// [`PeerSessions::pickle_reserving`] already covers: then the envelope may leave before the session is
    /// stored again (docs/protocol.md §8.3). `false` when the next encrypt would start a session or a
    /// sending chain, or has used up the reservation: the session must be stored (reserving again) before
    /// that envelope leaves.
    pub fn send_is_reserved(&self) -> bool {
        self.sessions
            .first()
            .is_some_and(|s| s.ratchet.send_is_reserved())
    }

    /// How many encrypts from now [`PeerSessions::send_is_reserved`] stays true for (0 if none).
    pub fn reserved_sends(&self) -> u32 {
        self.sessions
            .first()
            .map_or(0, |s| s.ratchet.reserved_sends())
    }

    /// Takes the sending half of a pending DH ratchet step on the sending session now, drawing on `rng`,
    /// instead of on the next encrypt, so that a receive commit can store (and reserve) the next sending
    /// chain. Decryption itself stays free of randomness. `Ok(false)` when there was nothing to prepare.
    pub fn prepare_sending<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<bool, EncryptError> {
        match self.sessions.first_mut() {
            Some(session) => session.ratchet.prepare_sending(rng),
            None => Ok(false),
        }
    }

    /// [`PeerSessions::pickle`] after reserving the next
    /// [`SEND_RESERVATION`](crate::ratchet::SEND_RESERVATION) message keys of every sending chain: the
    /// pickle's sending chains are that far ahead of the ones in use. Store it durably before any envelope
    /// sealed after the previous reservation ran out leaves, or, if it cannot be stored, drop these sessions
    /// and load the stored ones again.
    pub fn pickle_reserving<R: CryptoRng + ?Sized>(
        &mut self,
        key: &PickleKey,
        rng: &mut R,
    ) -> Vec<u8> {
        for session in &mut self.sessions {
            session.ratchet.reserve();
        }
        self.pickle(key, rng)
    }

    /// Encrypts every session with this peer for storage. A sending chain with a reservation is written at
    /// its reserved position (never behind a reservation already stored).
    pub fn pickle<R: CryptoRng + ?Sized>(&self, key: &PickleKey, rng: &mut R) -> Vec<u8> {
        let mut w = Writer::with_capacity(1024);
        w.raw(self.local.as_bytes()).raw(self.remote.as_bytes());
        w.u8(u8::try_from(self.sessions.len()).unwrap_or(u8::MAX));
        for s in &self.sessions {
            w.raw(&s.id.0)
                .u8(s.handshake)
                .u8(u8::from(s.we_initiated))
                .u8(u8::from(s.confirmed));
            match &s.pending {
                None => w.u8(0),
                Some(p) => w.u8(1).u32(p.prekey_id).bytes_u16(&p.noise),
            };
            s.ratchet.encode(&mut w);
        }
        w.u8(u8::try_from(self.retired.len()).unwrap_or(u8::MAX));
        for id in &self.retired {
            w.raw(&id.0);
        }
        let plain = Zeroizing::new(w.into_vec());
        pickle::seal(pickle::Kind::Sessions, key, &plain, rng)
    }

    /// Decrypts a pickle made by [`PeerSessions::pickle`].
    pub fn unpickle(key: &PickleKey, bytes: &[u8]) -> Result<Self, PickleError> {
        fn flag(r: &mut Reader<'_>, field: &'static str) -> Result<bool, DecodeError> {
            match r.u8(field)? {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(DecodeError::Invalid {
                    field,
                    reason: "must be 0 or 1",
                }),
            }
        }
        let plain = pickle::open(pickle::Kind::Sessions, key, bytes)?;
        let mut r = Reader::new(&plain);
        let local = IdentityKey::from_bytes(r.array("local identity")?)?;
        let remote = IdentityKey::from_bytes(r.array("remote identity")?)?;
        let count = r.count_u8("sessions", MAX_SESSIONS_PER_PEER)?;
        let mut sessions = Vec::with_capacity(count);
        for _ in 0..count {
            let id = SessionId(r.array("session id")?);
            let handshake = r.u8("handshake kind")?;
            let we_initiated = flag(&mut r, "initiator flag")?;
            let confirmed = flag(&mut r, "confirmed flag")?;
            let pending = if flag(&mut r, "pending flag")? {
                Some(PendingStart {
                    prekey_id: r.u32("prekey id")?,
                    noise: r.bytes_u16("handshake", MAX_HANDSHAKE_LEN)?.to_vec(),
                })
            } else {
                None
            };
            let ratchet = Ratchet::decode(&mut r)?;
            sessions.push(Session {
                id,
                handshake,
                we_initiated,
                confirmed,
                pending,
                ratchet,
            });
        }
        let retired_count = r.count_u8("retired sessions", MAX_RETIRED_SESSIONS)?;
        let mut retired = VecDeque::with_capacity(retired_count);
        for _ in 0..retired_count {
            retired.push_back(SessionId(r.array("retired session id")?));
        }
        r.finish()?;
        Ok(Self {
            local,
            remote,
            sessions,
            retired,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_responder_has_no_randomness_to_draw_on() {
        let resolver = SeedResolver { seed: None };
        let mut rng = resolver.resolve_rng().unwrap();
        assert!(matches!(
            rng.try_fill_bytes(&mut [0u8; 32]),
            Err(snow::Error::Rng)
        ));
        let seeded = SeedResolver {
            seed: Some(Zeroizing::new([7; KEY_LEN])),
        };
        let mut bytes = [0u8; 32];
        seeded
            .resolve_rng()
            .unwrap()
            .try_fill_bytes(&mut bytes)
            .unwrap();
        assert_ne!(bytes, [0u8; 32]);
    }
}
