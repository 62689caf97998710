//! Encrypted, versioned "pickles": how secret state (identities, sessions) is handed to the node for storage.
//!
//! A pickle is `u8 version || u8 kind || nonce[12] || ChaCha20-Poly1305(plain)` with associated data
//! `"tern/pickle/v1" || version || kind`. The plain bytes are an explicit encoding per kind, never a dump of
//! the live type, so the live types can change while old pickles stay readable under their version.

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::DecodeError;
use crate::crypto::{self, SecretKey};

/// The pickle format version this build writes.
pub const PICKLE_VERSION: u8 = 1;
const LABEL: &[u8] = b"tern/pickle/v1";

/// What a pickle holds; a pickle of one kind never opens as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Identity = 1,
    Sessions = 2,
}

/// The key pickles are sealed with. The node derives it from its store key.
#[derive(Clone)]
pub struct PickleKey(SecretKey);

impl PickleKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretKey::from_bytes(bytes))
    }

    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self(SecretKey::random(rng))
    }
}

/// Why a pickle could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PickleError {
    #[error("pickle version {0} is not supported by this build")]
    UnsupportedVersion(u8),
    #[error("pickle holds a {found:?} value, expected {expected:?}")]
    WrongKind { expected: u8, found: u8 },
    #[error("pickle could not be decrypted: wrong key or damaged bytes")]
    Decrypt,
    #[error("pickle contents are malformed: {0}")]
    Malformed(DecodeError),
}

crate::cause_in_message!(DecodeError => PickleError::Malformed);

fn aad(kind: u8) -> Vec<u8> {
    let mut aad = LABEL.to_vec();
    aad.push(PICKLE_VERSION);
    aad.push(kind);
    aad
}

pub(crate) fn seal<R: CryptoRng + ?Sized>(
    kind: Kind,
    key: &PickleKey,
    plain: &[u8],
    rng: &mut R,
) -> Vec<u8> {
    let sealed = crypto::seal_random_nonce(&key.0, &aad(kind as u8), plain, rng);
    let mut out = Vec::with_capacity(2 + sealed.len());
    out.push(PICKLE_VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&sealed);
    out
}

pub(crate) fn open(
    kind: Kind,
    key: &PickleKey,
    bytes: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PickleError> {
    let [version, found, sealed @ ..] = bytes else {
        return Err(PickleError::Decrypt);
    };
    if *version != PICKLE_VERSION {
        return Err(PickleError::UnsupportedVersion(*version));
    }
    if *found != kind as u8 {
        return Err(PickleError::WrongKind {
            expected: kind as u8,
            found: *found,
        });
    }
    crypto::open_random_nonce(&key.0, &aad(*found), sealed).map_err(|_| PickleError::Decrypt)
}
