//! Small wrappers over the primitives: secret byte types that zeroize, the KDFs with their labels, and AEAD.
//!
//! Every label here is listed in docs/protocol.md.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of every symmetric key and X25519 key.
pub const KEY_LEN: usize = 32;
/// ChaCha20-Poly1305 nonce length.
pub const NONCE_LEN: usize = 12;
/// ChaCha20-Poly1305 tag length.
pub const TAG_LEN: usize = 16;

/// A 32-byte secret, boxed so moves do not leave copies behind, zeroized on drop, with no `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Box<[u8; KEY_LEN]>);

impl SecretKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut bytes = Zeroizing::new(bytes);
        let mut boxed = Box::new([0u8; KEY_LEN]);
        boxed.copy_from_slice(bytes.as_ref());
        bytes.zeroize();
        Self(boxed)
    }

    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut boxed = Box::new([0u8; KEY_LEN]);
        rng.fill_bytes(boxed.as_mut());
        Self(boxed)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// An X25519 key pair whose secret half zeroizes on drop.
#[derive(Clone)]
pub struct DhKeyPair {
    secret: Box<StaticSecret>,
    public: [u8; KEY_LEN],
}

impl DhKeyPair {
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let seed = SecretKey::random(rng);
        Self::from_secret(&seed)
    }

    pub fn from_secret(secret: &SecretKey) -> Self {
        let secret = Box::new(StaticSecret::from(*secret.as_bytes()));
        let public = PublicKey::from(secret.as_ref()).to_bytes();
        Self { secret, public }
    }

    pub fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    pub fn secret_bytes(&self) -> SecretKey {
        SecretKey::from_bytes(self.secret.to_bytes())
    }

    /// X25519 with a peer's public key. Returns `None` for a non-contributory result (a low-order point),
    /// which Tern treats as an invalid key.
    pub fn agree(&self, their_public: &[u8; KEY_LEN]) -> Option<SecretKey> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*their_public));
        if shared.was_contributory() {
            Some(SecretKey::from_bytes(shared.to_bytes()))
        } else {
            None
        }
    }
}

/// HKDF-SHA-256 into a fixed number of bytes. `N` is at most 255 * 32, so expansion cannot fail.
pub fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; N]> {
    let mut out = Zeroizing::new([0u8; N]);
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    // The only failure is an output longer than 255 hash blocks, which N never is.
    let _ = hk.expand(info, out.as_mut());
    out
}

/// HKDF-SHA-256 expand only, for input that is already a uniformly random 32-byte key (RFC 5869 section 3.3).
pub fn hkdf_expand<const N: usize>(prk: &[u8; KEY_LEN], info: &[u8]) -> Zeroizing<[u8; N]> {
    let mut out = Zeroizing::new([0u8; N]);
    // A 32-byte PRK is always long enough and N is at most 255 hash blocks, so neither call can fail.
    if let Ok(hk) = Hkdf::<Sha256>::from_prk(prk) {
        let _ = hk.expand(info, out.as_mut());
    }
    out
}

fn keyed_hmac(key: &[u8; KEY_LEN]) -> Hmac<Sha256> {
    // RFC 2104 pads a key shorter than the 64-byte block with zeros; doing it here makes `new` infallible.
    let mut block = Zeroizing::new([0u8; 64]);
    block[..KEY_LEN].copy_from_slice(key);
    <Hmac<Sha256> as hmac::KeyInit>::new(&(*block).into())
}

/// HMAC-SHA-256 of `data` under a 32-byte `key`.
pub fn hmac(key: &[u8; KEY_LEN], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed_hmac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA-256 of two messages under one key, keying the MAC once.
pub fn hmac2(key: &[u8; KEY_LEN], a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
    let keyed = keyed_hmac(key);
    let mut first = keyed.clone();
    first.update(a);
    let mut second = keyed;
    second.update(b);
    (
        first.finalize().into_bytes().into(),
        second.finalize().into_bytes().into(),
    )
}

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// The AEAD failed to authenticate: wrong key, or the bytes were changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadError;

/// ChaCha20-Poly1305 seal.
pub fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(&(*key).into());
    // Encryption only fails for inputs longer than 2^38 bytes; every caller bounds its input far below that.
    cipher
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default()
}

/// ChaCha20-Poly1305 open.
pub fn open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, AeadError> {
    let cipher = ChaCha20Poly1305::new(&(*key).into());
    cipher
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| AeadError)
}

/// Splits 44 bytes of key material into a key and a nonce.
pub fn key_and_nonce(okm: &[u8; KEY_LEN + NONCE_LEN]) -> (SecretKey, [u8; NONCE_LEN]) {
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&okm[..KEY_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&okm[KEY_LEN..]);
    (SecretKey::from_bytes(key), nonce)
}

/// Seals `plaintext` under a long-lived key with a random nonce: `nonce || ciphertext`. Used for pickles.
pub fn seal_random_nonce<R: CryptoRng + ?Sized>(
    key: &SecretKey,
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&seal(key.as_bytes(), &nonce, aad, plaintext));
    out
}

/// Opens `nonce || ciphertext` from [`seal_random_nonce`].
pub fn open_random_nonce(
    key: &SecretKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AeadError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(AeadError);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    open(key.as_bytes(), &n, aad, ciphertext).map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aead_rejects_changed_ciphertext_and_aad() {
        let key = [7u8; 32];
        let nonce = [1u8; 12];
        let ct = seal(&key, &nonce, b"ad", b"hello");
        assert_eq!(open(&key, &nonce, b"ad", &ct).unwrap(), b"hello");
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(open(&key, &nonce, b"ad", &bad), Err(AeadError));
        assert_eq!(open(&key, &nonce, b"xx", &ct), Err(AeadError));
    }

    #[test]
    fn hmac2_equals_two_separate_hmacs_and_expand_matches_hkdf_from_prk() {
        let key = [3u8; 32];
        let (a, b) = hmac2(&key, b"\x01", b"\x02");
        assert_eq!(a, hmac(&key, b"\x01"));
        assert_eq!(b, hmac(&key, b"\x02"));
        assert_ne!(a, b);
        let mut expected = [0u8; 44];
        Hkdf::<Sha256>::from_prk(&key)
            .unwrap()
            .expand(b"info", &mut expected)
            .unwrap();
        assert_eq!(*hkdf_expand::<44>(&key, b"info"), expected);
    }

    #[test]
    fn dh_agrees_and_rejects_low_order_points() {
        let a = DhKeyPair::from_secret(&SecretKey::from_bytes([1; 32]));
        let b = DhKeyPair::from_secret(&SecretKey::from_bytes([2; 32]));
        assert_eq!(
            a.agree(b.public()).unwrap().as_bytes(),
            b.agree(a.public()).unwrap().as_bytes()
        );
        assert!(a.agree(&[0u8; 32]).is_none());
    }
}
