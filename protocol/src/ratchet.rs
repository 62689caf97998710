//! The double ratchet: X25519 for the DH ratchet, HKDF-SHA-256 for the root chain, HMAC-SHA-256 for the
//! symmetric chains, ChaCha20-Poly1305 per message.
//!
//! The sending half of a DH ratchet step is taken lazily: a new ratchet key is generated on the first send
//! after a new remote key arrives, so decryption needs no randomness. Decryption is transactional: every new
//! chain and skipped key is computed into temporaries and committed only after the AEAD tag verifies, so a
//! forged, replayed or damaged message never changes the state.
//!
//! Key reservation (docs/protocol.md §8.3): a stored copy of the state may hold its sending chain up to
//! [`SEND_RESERVATION`] steps ahead of the chain in use ([`Ratchet::reserve`]), so a sender needs to store
//! the state again only once every [`SEND_RESERVATION`] messages; after a crash it resumes from the stored
//! position and the receiver sees a gap it tolerates (skipped keys), never a message key used twice.

use std::collections::VecDeque;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{self, DhKeyPair, KEY_LEN, NONCE_LEN, SecretKey};
use crate::session_error::{DecryptError, EncryptError};

/// The most message keys one message may make the receiver skip (per chain). Past it: [`DecryptError::TooBigMessageGap`].
pub const MAX_MESSAGE_GAP: u32 = 2_000;
/// The most skipped message keys a session stores; the oldest are dropped beyond it.
pub const MAX_SKIPPED_KEYS: usize = 2_000;
/// How far ahead of the chain in use a stored sending chain may be: the message keys a stored state
/// reserves. Far below [`MAX_MESSAGE_GAP`] and [`MAX_SKIPPED_KEYS`], so the gap a restart leaves is always
/// within what a receiver tolerates.
pub const SEND_RESERVATION: u32 = 32;
/// Past remote ratchet keys remembered, so a late message on a finished chain is reported as expired
/// without a wasted DH.
pub const MAX_PAST_RATCHET_KEYS: usize = 16;

const LABEL_ROOT: &[u8] = b"tern/ratchet/root/v1";
const LABEL_MESSAGE: &[u8] = b"tern/ratchet/message/v1";
const CHAIN_MESSAGE: u8 = 0x01;
const CHAIN_NEXT: u8 = 0x02;

/// The clear header of a ratchet message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The sender's current ratchet public key.
    pub dh: [u8; KEY_LEN],
    /// Messages in the sender's previous sending chain.
    pub pn: u32,
    /// This message's index in its sending chain.
    pub n: u32,
}

impl Header {
    pub const ENCODED_LEN: usize = KEY_LEN + 4 + 4;

    pub fn encode(&self, w: &mut Writer) {
        w.raw(&self.dh).u32(self.pn).u32(self.n);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            dh: r.array("ratchet key")?,
            pn: r.u32("previous chain length")?,
            n: r.u32("message number")?,
        })
    }

    fn bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..KEY_LEN].copy_from_slice(&self.dh);
        out[KEY_LEN..KEY_LEN + 4].copy_from_slice(&self.pn.to_be_bytes());
        out[KEY_LEN + 4..].copy_from_slice(&self.n.to_be_bytes());
        out
    }
}

#[derive(Clone)]
struct Chain {
    key: SecretKey,
    n: u32,
}

impl Chain {
    /// The message key at this position and the chain after it.
    fn step(&self) -> (SecretKey, Chain) {
        let (mk, next) = crypto::hmac2(self.key.as_bytes(), &[CHAIN_MESSAGE], &[CHAIN_NEXT]);
        (
            SecretKey::from_bytes(mk),
            Chain {
                key: SecretKey::from_bytes(next),
                n: self.n.wrapping_add(1),
            },
        )
    }
}

struct SkippedKey {
    dh: [u8; KEY_LEN],
    n: u32,
    mk: SecretKey,
}

/// Root-chain KDF: a new root key and chain key from a DH output.
fn kdf_root(root: &SecretKey, dh: &SecretKey) -> (SecretKey, SecretKey) {
    let okm = crypto::hkdf::<64>(root.as_bytes(), dh.as_bytes(), LABEL_ROOT);
    let mut a = [0u8; KEY_LEN];
    let mut b = [0u8; KEY_LEN];
    a.copy_from_slice(&okm[..KEY_LEN]);
    b.copy_from_slice(&okm[KEY_LEN..]);
    (SecretKey::from_bytes(a), SecretKey::from_bytes(b))
}

/// Expands a message key into an AEAD key and nonce.
fn message_cipher(mk: &SecretKey) -> (SecretKey, [u8; NONCE_LEN]) {
    let okm =
        crypto::hkdf::<{ KEY_LEN + NONCE_LEN }>(&[0u8; KEY_LEN], mk.as_bytes(), LABEL_MESSAGE);
    crypto::key_and_nonce(&okm)
}

fn aad(session_ad: &[u8], header: &Header) -> Vec<u8> {
    let mut out = Vec::with_capacity(session_ad.len() + Header::ENCODED_LEN);
    out.extend_from_slice(session_ad);
    out.extend_from_slice(&header.bytes());
    out
}

fn open_with(
    mk: &SecretKey,
    header: &Header,
    ciphertext: &[u8],
    session_ad: &[u8],
) -> Result<Vec<u8>, DecryptError> {
    let (key, nonce) = message_cipher(mk);
    crypto::open(key.as_bytes(), &nonce, &aad(session_ad, header), ciphertext)
        .map_err(|_| DecryptError::Authentication)
}

/// Walks `chain` forward to index `until`, collecting the keys passed over for ratchet key `dh`.
fn skip_to(mut chain: Chain, until: u32, dh: &[u8; KEY_LEN], out: &mut Vec<SkippedKey>) -> Chain {
    while chain.n < until {
        let (mk, next) = chain.step();
        out.push(SkippedKey {
            dh: *dh,
            n: chain.n,
            mk,
        });
        chain = next;
    }
    chain
}

fn check_gap(from: u32, to: u32) -> Result<(), DecryptError> {
    let gap = to.saturating_sub(from);
    if gap > MAX_MESSAGE_GAP {
        Err(DecryptError::TooBigMessageGap {
            got: gap,
            max: MAX_MESSAGE_GAP,
        })
    } else {
        Ok(())
    }
}

/// One side's ratchet state. No `Debug`: it is all secrets.
pub(crate) struct Ratchet {
    root: SecretKey,
    self_pair: DhKeyPair,
    remote: Option<[u8; KEY_LEN]>,
    sending: Option<Chain>,
    receiving: Option<Chain>,
    previous_sending: u32,
    skipped: VecDeque<SkippedKey>,
    past_remotes: VecDeque<[u8; KEY_LEN]>,
    /// The current sending chain advanced to the position the last reserving pickle stored (at least
    /// `sending.n`); `None` when the current sending chain was never stored with a reservation. Never
    /// encoded as such: [`Ratchet::encode`] writes it in place of `sending`.
    reserved: Option<Chain>,
}

impl Ratchet {
    /// The session initiator: the first remote ratchet key is the responder's prekey.
    pub fn initiator<R: CryptoRng + ?Sized>(
        root: SecretKey,
        remote_prekey: [u8; KEY_LEN],
        rng: &mut R,
    ) -> Result<Self, EncryptError> {
        let self_pair = DhKeyPair::generate(rng);
        let dh = self_pair
            .agree(&remote_prekey)
            .ok_or(EncryptError::InvalidRatchetKey)?;
        let (root, ck) = kdf_root(&root, &dh);
        Ok(Self {
            root,
            self_pair,
            remote: Some(remote_prekey),
            sending: Some(Chain { key: ck, n: 0 }),
            receiving: None,
            previous_sending: 0,
            skipped: VecDeque::new(),
            past_remotes: VecDeque::new(),
            reserved: None,
        })
    }

    /// The session responder: its first ratchet key pair is the prekey the initiator used.
    pub fn responder(root: SecretKey, prekey: DhKeyPair) -> Self {
        Self {
            root,
            self_pair: prekey,
            remote: None,
            sending: None,
            receiving: None,
            previous_sending: 0,
            skipped: VecDeque::new(),
            past_remotes: VecDeque::new(),
            reserved: None,
        }
    }

    fn start_sending_chain<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<(), EncryptError> {
        let remote = self.remote.ok_or(EncryptError::NotReady)?;
        let pair = DhKeyPair::generate(rng);
        let dh = pair.agree(&remote).ok_or(EncryptError::InvalidRatchetKey)?;
        let (root, ck) = kdf_root(&self.root, &dh);
        self.root = root;
        self.self_pair = pair;
        self.sending = Some(Chain { key: ck, n: 0 });
        self.reserved = None;
        Ok(())
    }

    /// Takes the sending half of a pending DH ratchet step now (with `rng`) rather than on the next
    /// encrypt: after a message with a new remote ratchet key, the next sending chain can be stored (and
    /// reserved) in the commit that stores the received message. `Ok(false)` when there is nothing to do
    /// (a sending chain exists, or no remote key is known yet).
    pub fn prepare_sending<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<bool, EncryptError> {
        if self.sending.is_some() || self.remote.is_none() {
            return Ok(false);
        }
        self.start_sending_chain(rng)?;
        Ok(true)
    }

    /// Whether the next encrypt uses a message key below the position the last reserving pickle stored:
    /// then sending it needs no new copy of the state on disk (see the module docs).
    pub fn send_is_reserved(&self) -> bool {
        self.reserved_sends() > 0
    }

    /// How many encrypts from now are still covered by the last reserving pickle.
    pub fn reserved_sends(&self) -> u32 {
        match (&self.sending, &self.reserved) {
            (Some(sending), Some(reserved)) => reserved.n.saturating_sub(sending.n),
            _ => 0,
        }
    }

    /// Moves the reservation to [`SEND_RESERVATION`] keys past the sending chain in use (never back).
    /// The caller must store the state encoded after this durably before any key it newly covers is used,
    /// or drop this state (and reload the stored one).
    pub fn reserve(&mut self) {
        let Some(sending) = &self.sending else {
            self.reserved = None;
            return;
        };
        let target = sending.n.saturating_add(SEND_RESERVATION);
        let mut ahead = match self.reserved.take() {
            Some(reserved) if reserved.n >= sending.n => reserved,
            _ => sending.clone(),
        };
        while ahead.n < target {
            ahead = ahead.step().1;
        }
        self.reserved = Some(ahead);
    }

    /// The sending chain as stored: the reserved position when there is one, else the chain in use.
    fn stored_sending(&self) -> Option<&Chain> {
        match (&self.sending, &self.reserved) {
            (Some(sending), Some(reserved)) if reserved.n > sending.n => Some(reserved),
            (sending, _) => sending.as_ref(),
        }
    }

    /// Encrypts one message, advancing the sending chain.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        session_ad: &[u8],
        rng: &mut R,
    ) -> Result<(Header, Vec<u8>), EncryptError> {
        if self.sending.is_none() {
            self.start_sending_chain(rng)?;
        }
        let chain = self.sending.as_ref().ok_or(EncryptError::NotReady)?;
        if chain.n == u32::MAX {
            return Err(EncryptError::ChainExhausted);
        }
        let header = Header {
            dh: *self.self_pair.public(),
            pn: self.previous_sending,
            n: chain.n,
        };
        let (mk, next) = chain.step();
        let (key, nonce) = message_cipher(&mk);
        let ciphertext = crypto::seal(key.as_bytes(), &nonce, &aad(session_ad, &header), plaintext);
        self.sending = Some(next);
        Ok((header, ciphertext))
    }

    /// Decrypts one message; on any error the state is exactly as before.
    pub fn decrypt(
        &mut self,
        header: &Header,
        ciphertext: &[u8],
        session_ad: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        if let Some(i) = self
            .skipped
            .iter()
            .position(|k| k.dh == header.dh && k.n == header.n)
        {
            let plaintext = open_with(&self.skipped[i].mk, header, ciphertext, session_ad)?;
            self.skipped.remove(i);
            return Ok(plaintext);
        }

        if self.past_remotes.contains(&header.dh) {
            return Err(DecryptError::DuplicateOrExpired { n: header.n });
        }
        let mut new_skipped = Vec::new();
        let mut new_root = None;
        let chain = if self.remote == Some(header.dh) {
            let current = self
                .receiving
                .clone()
                .ok_or(DecryptError::DuplicateOrExpired { n: header.n })?;
            if header.n < current.n {
                return Err(DecryptError::DuplicateOrExpired { n: header.n });
            }
            check_gap(current.n, header.n)?;
            skip_to(current, header.n, &header.dh, &mut new_skipped)
        } else {
            // A new ratchet key: finish the old receiving chain up to `pn`, then step the root chain.
            if let (Some(old_dh), Some(old)) = (self.remote, self.receiving.clone()) {
                check_gap(old.n, header.pn)?;
                skip_to(old, header.pn, &old_dh, &mut new_skipped);
            }
            check_gap(0, header.n)?;
            let dh = self
                .self_pair
                .agree(&header.dh)
                .ok_or(DecryptError::InvalidRatchetKey)?;
            let (root, ck) = kdf_root(&self.root, &dh);
            new_root = Some(root);
            skip_to(
                Chain { key: ck, n: 0 },
                header.n,
                &header.dh,
                &mut new_skipped,
            )
        };
        let (mk, next) = chain.step();
        let plaintext = open_with(&mk, header, ciphertext, session_ad)?;

        // Authenticated: commit.
        if let Some(root) = new_root {
            self.root = root;
            if let Some(old) = self.remote.replace(header.dh) {
                self.past_remotes.push_back(old);
                if self.past_remotes.len() > MAX_PAST_RATCHET_KEYS {
                    self.past_remotes.pop_front();
                }
            }
            if let Some(sending) = self.sending.take() {
                self.previous_sending = sending.n;
            }
            self.reserved = None;
        }
        self.receiving = Some(next);
        self.skipped.extend(new_skipped);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_front();
        }
        Ok(plaintext)
    }

    /// Number of stored skipped message keys.
    pub fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    /// The explicit encoding inside a session pickle.
    pub fn encode(&self, w: &mut Writer) {
        w.raw(self.root.as_bytes())
            .raw(self.self_pair.secret_bytes().as_bytes());
        match &self.remote {
            None => w.u8(0),
            Some(dh) => w.u8(1).raw(dh),
        };
        for chain in [self.stored_sending(), self.receiving.as_ref()] {
            match chain {
                None => w.u8(0),
                Some(c) => w.u8(1).raw(c.key.as_bytes()).u32(c.n),
            };
        }
        w.u32(self.previous_sending);
        w.u16(u16::try_from(self.skipped.len()).unwrap_or(u16::MAX));
        for k in &self.skipped {
            w.raw(&k.dh).u32(k.n).raw(k.mk.as_bytes());
        }
        w.u8(u8::try_from(self.past_remotes.len()).unwrap_or(u8::MAX));
        for dh in &self.past_remotes {
            w.raw(dh);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
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
        fn secret(r: &mut Reader<'_>, field: &'static str) -> Result<SecretKey, DecodeError> {
            Ok(SecretKey::from_bytes(*Zeroizing::new(r.array(field)?)))
        }
        let root = secret(r, "root key")?;
        let self_pair = DhKeyPair::from_secret(&secret(r, "ratchet key")?);
        let remote = if flag(r, "remote ratchet flag")? {
            Some(r.array("remote ratchet key")?)
        } else {
            None
        };
        let mut chains = [None, None];
        for chain in &mut chains {
            if flag(r, "chain flag")? {
                *chain = Some(Chain {
                    key: secret(r, "chain key")?,
                    n: r.u32("chain index")?,
                });
            }
        }
        let [sending, receiving] = chains;
        let previous_sending = r.u32("previous chain length")?;
        let count = r.count_u16("skipped keys", MAX_SKIPPED_KEYS)?;
        let mut skipped = VecDeque::with_capacity(count);
        for _ in 0..count {
            skipped.push_back(SkippedKey {
                dh: r.array("skipped ratchet key")?,
                n: r.u32("skipped index")?,
                mk: secret(r, "skipped message key")?,
            });
        }
        let past_count = r.count_u8("past ratchet keys", MAX_PAST_RATCHET_KEYS)?;
        let past_remotes = (0..past_count)
            .map(|_| r.array("past ratchet key"))
            .collect::<Result<VecDeque<_>, _>>()?;
        Ok(Self {
            root,
            self_pair,
            remote,
            sending,
            receiving,
            previous_sending,
            skipped,
            past_remotes,
            // A stored sending chain is where the stored copy resumes: nothing is reserved past it yet.
            reserved: None,
        })
    }
}
