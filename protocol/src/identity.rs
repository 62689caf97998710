//! Identities: an Ed25519 key that names the user (and is their libp2p identity), an X25519 agreement key
//! signed by it, and signed prekeys that rotate so a session can start while the owner is offline.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{DhKeyPair, KEY_LEN, SecretKey};
use crate::pickle::{self, PickleError, PickleKey};

/// A new signed prekey is made once the current one is this old (7 days).
pub const PREKEY_ROTATION_MS: u64 = 7 * 24 * 3600 * 1000;
/// A replaced prekey is kept this long (35 days, longer than any mailbox keeps mail) for late session starts.
pub const PREKEY_GRACE_MS: u64 = 35 * 24 * 3600 * 1000;
/// At most this many replaced prekeys are kept, oldest dropped first.
pub const MAX_OLD_PREKEYS: usize = 8;

/// A PeerId's text form is at most this long (an Ed25519 PeerId is 52 characters).
pub const MAX_PEER_ID_TEXT_LEN: usize = 64;

/// Signature context labels (docs/protocol.md, "Signatures").
pub(crate) const LABEL_AGREEMENT: &[u8] = b"tern/agreement-key/v1";
pub(crate) const LABEL_PREKEY: &[u8] = b"tern/prekey/v1";

/// The bytes an Ed25519 signature covers: `u8 len(label) || label || data`.
pub(crate) fn signed_bytes(label: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + label.len() + data.len());
    out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(label);
    out.extend_from_slice(data);
    out
}

/// The public Ed25519 key that names a Tern user.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey([u8; KEY_LEN]);

impl IdentityKey {
    /// Accepts only a valid Ed25519 point.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Result<Self, DecodeError> {
        VerifyingKey::from_bytes(&bytes).map_err(|_| DecodeError::Invalid {
            field: "identity key",
            reason: "not an Ed25519 public key",
        })?;
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Verifies a signature made with [`Identity::sign`] under the same label.
    pub fn verify(
        &self,
        label: &[u8],
        data: &[u8],
        signature: &[u8; 64],
        what: &'static str,
    ) -> Result<(), DecodeError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| DecodeError::BadSignature(what))?;
        key.verify_strict(
            &signed_bytes(label, data),
            &Signature::from_bytes(signature),
        )
        .map_err(|_| DecodeError::BadSignature(what))
    }

    /// The libp2p PeerId bytes: an identity multihash of the protobuf-encoded Ed25519 public key.
    pub fn peer_id_bytes(&self) -> Vec<u8> {
        // multihash(identity = 0x00, length 36) || protobuf { KeyType = Ed25519 (field 1 = 1), Data (field 2, 32 bytes) }
        let mut out = Vec::with_capacity(38);
        out.extend_from_slice(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
        out.extend_from_slice(&self.0);
        out
    }

    /// The PeerId in its usual base58 text form (`12D3KooW…`).
    pub fn peer_id(&self) -> String {
        bs58::encode(self.peer_id_bytes()).into_string()
    }

    /// Parses a PeerId text form back into the Ed25519 key it embeds.
    pub fn from_peer_id(text: &str) -> Result<Self, DecodeError> {
        let invalid = DecodeError::Invalid {
            field: "peer id",
            reason: "not a base58 Ed25519 peer id",
        };
        if text.len() > MAX_PEER_ID_TEXT_LEN {
            return Err(invalid);
        }
        let bytes = bs58::decode(text).into_vec().map_err(|_| invalid.clone())?;
        match bytes.strip_prefix(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]) {
            Some(key) if key.len() == KEY_LEN => {
                let mut k = [0u8; KEY_LEN];
                k.copy_from_slice(key);
                Self::from_bytes(k)
            }
            _ => Err(invalid),
        }
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey({})", self.peer_id())
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.peer_id())
    }
}

/// An identity's public keys: the Ed25519 key and the X25519 agreement key it signed.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    pub key: IdentityKey,
    pub agreement: [u8; KEY_LEN],
    pub agreement_signature: [u8; 64],
}

impl PublicIdentity {
    pub const ENCODED_LEN: usize = KEY_LEN + KEY_LEN + 64;

    pub fn encode(&self, w: &mut Writer) {
        w.raw(self.key.as_bytes())
            .raw(&self.agreement)
            .raw(&self.agreement_signature);
    }

    /// Decodes and checks the agreement key's signature.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = IdentityKey::from_bytes(r.array("identity key")?)?;
        let agreement = r.array("agreement key")?;
        let agreement_signature = r.array("agreement signature")?;
        key.verify(
            LABEL_AGREEMENT,
            &agreement,
            &agreement_signature,
            "agreement key",
        )?;
        Ok(Self {
            key,
            agreement,
            agreement_signature,
        })
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            key,
            agreement: _,
            agreement_signature: _,
        } = self;
        f.debug_struct("PublicIdentity")
            .field("key", key)
            .finish_non_exhaustive()
    }
}

/// A prekey: an X25519 public key with an id and creation time, signed by the identity key.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedPrekey {
    pub id: u32,
    pub public: [u8; KEY_LEN],
    pub created_ms: u64,
    pub signature: [u8; 64],
}

impl SignedPrekey {
    pub const ENCODED_LEN: usize = 4 + KEY_LEN + 8 + 64;

    fn signed_data(id: u32, public: &[u8; KEY_LEN], created_ms: u64) -> Vec<u8> {
        let mut w = Writer::with_capacity(44);
        w.u32(id).raw(public).u64(created_ms);
        w.into_vec()
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u32(self.id)
            .raw(&self.public)
            .u64(self.created_ms)
            .raw(&self.signature);
    }

    /// Decodes and checks the signature under `owner`.
    pub fn decode(r: &mut Reader<'_>, owner: &IdentityKey) -> Result<Self, DecodeError> {
        let prekey = Self {
            id: r.u32("prekey id")?,
            public: r.array("prekey")?,
            created_ms: r.u64("prekey created")?,
            signature: r.array("prekey signature")?,
        };
        owner.verify(
            LABEL_PREKEY,
            &Self::signed_data(prekey.id, &prekey.public, prekey.created_ms),
            &prekey.signature,
            "prekey",
        )?;
        Ok(prekey)
    }
}

impl fmt::Debug for SignedPrekey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            id,
            public: _,
            created_ms,
            signature: _,
        } = self;
        f.debug_struct("SignedPrekey")
            .field("id", id)
            .field("created_ms", created_ms)
            .finish_non_exhaustive()
    }
}

struct PrekeySecret {
    signed: SignedPrekey,
    pair: DhKeyPair,
    /// When it was replaced; `None` for the current prekey.
    retired_ms: Option<u64>,
}

/// A user's secret identity. It has no `Debug`; it persists only as an encrypted pickle.
pub struct Identity {
    signing: Box<SigningKey>,
    agreement: DhKeyPair,
    public: PublicIdentity,
    prekeys: Vec<PrekeySecret>,
    next_prekey_id: u32,
}

impl Identity {
    /// A new identity with its first prekey, from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, now_ms: u64) -> Self {
        let seed = SecretKey::random(rng);
        let signing = Box::new(SigningKey::from_bytes(seed.as_bytes()));
        let agreement = DhKeyPair::generate(rng);
        let mut identity = Self::assemble(signing, agreement, Vec::new(), 1);
        identity.add_prekey(rng, now_ms);
        identity
    }

    fn assemble(
        signing: Box<SigningKey>,
        agreement: DhKeyPair,
        prekeys: Vec<PrekeySecret>,
        next_prekey_id: u32,
    ) -> Self {
        let key = IdentityKey(signing.verifying_key().to_bytes());
        let agreement_signature = signing
            .sign(&signed_bytes(LABEL_AGREEMENT, agreement.public()))
            .to_bytes();
        let public = PublicIdentity {
            key,
            agreement: *agreement.public(),
            agreement_signature,
        };
        Self {
            signing,
            agreement,
            public,
            prekeys,
            next_prekey_id,
        }
    }

    fn add_prekey<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, now_ms: u64) {
        let pair = DhKeyPair::generate(rng);
        let id = self.next_prekey_id;
        self.next_prekey_id = self.next_prekey_id.wrapping_add(1).max(1);
        let signature = self.sign(
            LABEL_PREKEY,
            &SignedPrekey::signed_data(id, pair.public(), now_ms),
        );
        for old in &mut self.prekeys {
            old.retired_ms.get_or_insert(now_ms);
        }
        self.prekeys.insert(
            0,
            PrekeySecret {
                signed: SignedPrekey {
                    id,
                    public: *pair.public(),
                    created_ms: now_ms,
                    signature,
                },
                pair,
                retired_ms: None,
            },
        );
    }

    pub fn key(&self) -> IdentityKey {
        self.public.key
    }

    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// The current signed prekey, to publish in the contact card.
    pub fn current_prekey(&self) -> &SignedPrekey {
        // `generate` and `unpickle` guarantee at least one prekey.
        &self.prekeys[0].signed
    }

    /// Ids of every prekey still held (current first).
    pub fn prekey_ids(&self) -> Vec<u32> {
        self.prekeys.iter().map(|p| p.signed.id).collect()
    }

    /// Rotates the prekey once it is older than [`PREKEY_ROTATION_MS`] and drops replaced ones past
    /// [`PREKEY_GRACE_MS`] or beyond [`MAX_OLD_PREKEYS`]. Returns whether the current prekey changed, in
    /// which case the contact card should be re-issued.
    pub fn rotate_prekey_if_due<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now_ms: u64,
    ) -> bool {
        let due = now_ms.saturating_sub(self.current_prekey().created_ms) >= PREKEY_ROTATION_MS;
        if due {
            self.add_prekey(rng, now_ms);
        }
        self.prune_prekeys(now_ms);
        due
    }

    /// Replaces the prekey now, whatever its age (after a suspected compromise, or on the user's request).
    pub fn rotate_prekey_now<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, now_ms: u64) {
        self.add_prekey(rng, now_ms);
        self.prune_prekeys(now_ms);
    }

    /// Replaces the prekey and forgets every earlier one at once, without the grace period: after a
    /// suspected compromise of a prekey. A session start made with a revoked prekey then fails with
    /// `DecryptError::UnknownPrekey`; sessions already running are not affected (they no longer use it).
    pub fn revoke_prekeys<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, now_ms: u64) {
        self.add_prekey(rng, now_ms);
        self.prekeys.truncate(1);
    }

    fn prune_prekeys(&mut self, now_ms: u64) {
        self.prekeys.retain(|p| match p.retired_ms {
            None => true,
            Some(retired) => now_ms.saturating_sub(retired) < PREKEY_GRACE_MS,
        });
        self.prekeys.truncate(1 + MAX_OLD_PREKEYS);
    }

    /// The secret half of a prekey this identity still holds.
    pub(crate) fn prekey_pair(&self, id: u32) -> Option<&DhKeyPair> {
        self.prekeys
            .iter()
            .find(|p| p.signed.id == id)
            .map(|p| &p.pair)
    }

    pub(crate) fn agreement_pair(&self) -> &DhKeyPair {
        &self.agreement
    }

    /// Signs `data` under a context label.
    pub fn sign(&self, label: &[u8], data: &[u8]) -> [u8; 64] {
        self.signing.sign(&signed_bytes(label, data)).to_bytes()
    }

    /// The 32-byte Ed25519 secret seed, for handing to libp2p as the node key. Zeroized when dropped.
    pub fn ed25519_secret(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// Encrypts the identity for storage.
    pub fn pickle<R: CryptoRng + ?Sized>(&self, key: &PickleKey, rng: &mut R) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        w.raw(self.signing.as_bytes())
            .raw(self.agreement.secret_bytes().as_bytes())
            .u32(self.next_prekey_id)
            .u8(u8::try_from(self.prekeys.len()).unwrap_or(u8::MAX));
        for p in &self.prekeys {
            p.signed.encode(&mut w);
            w.raw(p.pair.secret_bytes().as_bytes());
            match p.retired_ms {
                None => w.u8(0),
                Some(t) => w.u8(1).u64(t),
            };
        }
        let plain = Zeroizing::new(w.into_vec());
        pickle::seal(pickle::Kind::Identity, key, &plain, rng)
    }

    /// Decrypts an identity pickle.
    pub fn unpickle(key: &PickleKey, bytes: &[u8]) -> Result<Self, PickleError> {
        let plain = pickle::open(pickle::Kind::Identity, key, bytes)?;
        let mut r = Reader::new(&plain);
        let seed = Zeroizing::new(r.array::<KEY_LEN>("signing key")?);
        let signing = Box::new(SigningKey::from_bytes(&seed));
        let agreement = DhKeyPair::from_secret(&SecretKey::from_bytes(r.array("agreement key")?));
        let next_prekey_id = r.u32("next prekey id")?;
        let count = r.count_u8("prekeys", 1 + MAX_OLD_PREKEYS)?;
        if count == 0 {
            return Err(DecodeError::Invalid {
                field: "prekeys",
                reason: "an identity holds at least one prekey",
            }
            .into());
        }
        let owner = IdentityKey(signing.verifying_key().to_bytes());
        let mut prekeys = Vec::with_capacity(count);
        for _ in 0..count {
            let signed = SignedPrekey::decode(&mut r, &owner)?;
            let pair = DhKeyPair::from_secret(&SecretKey::from_bytes(r.array("prekey secret")?));
            if pair.public() != &signed.public {
                return Err(DecodeError::Invalid {
                    field: "prekey secret",
                    reason: "does not match its public key",
                }
                .into());
            }
            let retired_ms = match r.u8("prekey retired flag")? {
                0 => None,
                1 => Some(r.u64("prekey retired")?),
                _ => {
                    return Err(DecodeError::Invalid {
                        field: "prekey retired flag",
                        reason: "must be 0 or 1",
                    }
                    .into());
                }
            };
            prekeys.push(PrekeySecret {
                signed,
                pair,
                retired_ms,
            });
        }
        r.finish()?;
        Ok(Self::assemble(signing, agreement, prekeys, next_prekey_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const DAY: u64 = 24 * 3600 * 1000;

    #[test]
    fn peer_id_text_round_trips_and_has_the_libp2p_prefix() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let id = Identity::generate(&mut rng, 0);
        let text = id.key().peer_id();
        assert!(text.starts_with("12D3KooW"), "{text}");
        assert_eq!(IdentityKey::from_peer_id(&text).unwrap(), id.key());
        assert!(IdentityKey::from_peer_id("12D3KooWnot-base58!").is_err());
    }

    #[test]
    fn prekeys_rotate_and_old_ones_expire_after_the_grace_period() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut id = Identity::generate(&mut rng, 0);
        let first = id.current_prekey().id;
        assert!(!id.rotate_prekey_if_due(&mut rng, DAY));
        assert!(id.rotate_prekey_if_due(&mut rng, 8 * DAY));
        assert_ne!(id.current_prekey().id, first);
        assert!(id.prekey_pair(first).is_some(), "kept during grace");
        id.rotate_prekey_if_due(&mut rng, 8 * DAY + PREKEY_GRACE_MS - 1);
        assert!(
            id.prekey_pair(first).is_some(),
            "kept until the grace period ends"
        );
        id.rotate_prekey_if_due(&mut rng, 8 * DAY + PREKEY_GRACE_MS + 1);
        assert!(id.prekey_pair(first).is_none(), "dropped after grace");
    }

    #[test]
    fn old_prekeys_are_capped() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut id = Identity::generate(&mut rng, 0);
        for i in 1..=20 {
            id.rotate_prekey_now(&mut rng, i * DAY);
        }
        assert_eq!(id.prekey_ids().len(), 1 + MAX_OLD_PREKEYS);
    }

    #[test]
    fn identity_pickle_round_trips_and_rejects_the_wrong_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let mut id = Identity::generate(&mut rng, 0);
        id.rotate_prekey_if_due(&mut rng, PREKEY_ROTATION_MS);
        let key = PickleKey::random(&mut rng);
        let bytes = id.pickle(&key, &mut rng);
        let back = Identity::unpickle(&key, &bytes).unwrap();
        assert_eq!(back.public(), id.public());
        assert_eq!(back.prekey_ids(), id.prekey_ids());
        assert_eq!(back.current_prekey(), id.current_prekey());
        let other = PickleKey::random(&mut rng);
        assert!(matches!(
            Identity::unpickle(&other, &bytes),
            Err(PickleError::Decrypt)
        ));
    }

    #[test]
    fn a_forged_agreement_key_is_rejected() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let id = Identity::generate(&mut rng, 0);
        let mut public = id.public().clone();
        public.agreement[0] ^= 1;
        let mut w = Writer::new();
        public.encode(&mut w);
        let bytes = w.into_vec();
        assert_eq!(
            PublicIdentity::decode(&mut Reader::new(&bytes)).unwrap_err(),
            DecodeError::BadSignature("agreement key")
        );
    }
}
