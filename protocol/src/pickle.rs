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

/// Seals a pickle again under `new`, unchanged inside: opens it with `old` (a pickle of either kind) and
/// seals the same plain bytes with a fresh nonce. A profile's re-key moves every pickle to its new key
/// this way, so a session's stored chains stay exactly where they were (no reservation is taken or lost).
pub fn reseal<R: CryptoRng + ?Sized>(
    old: &PickleKey,
    new: &PickleKey,
    bytes: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, PickleError> {
    let kind = match bytes.get(1) {
        Some(1) => Kind::Identity,
        Some(2) => Kind::Sessions,
        Some(&found) => {
            return Err(PickleError::WrongKind {
                expected: Kind::Sessions as u8,
                found,
            });
        }
        None => return Err(PickleError::Decrypt),
    };
    let plain = open(kind, old, bytes)?;
    Ok(seal(kind, new, &plain, rng))
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn a_resealed_pickle_opens_only_under_the_new_key_with_the_same_contents() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (old, new) = (PickleKey::random(&mut rng), PickleKey::random(&mut rng));
        for kind in [Kind::Identity, Kind::Sessions] {
            let bytes = seal(kind, &old, b"state", &mut rng);
            let moved = reseal(&old, &new, &bytes, &mut rng).unwrap();
            assert_eq!(open(kind, &new, &moved).unwrap().as_slice(), b"state");
            assert_eq!(open(kind, &old, &moved), Err(PickleError::Decrypt));
            assert_eq!(moved[..2], bytes[..2]);
            assert_ne!(moved, bytes, "a fresh nonce");
            // Under the wrong key nothing is resealed.
            assert_eq!(
                reseal(&new, &old, &bytes, &mut rng),
                Err(PickleError::Decrypt)
            );
        }
        let mut unknown = seal(Kind::Identity, &old, b"x", &mut rng);
        unknown[1] = 9;
        assert!(matches!(
            reseal(&old, &new, &unknown, &mut rng),
            Err(PickleError::WrongKind { found: 9, .. })
        ));
        assert_eq!(
            reseal(&old, &new, &[1], &mut rng),
            Err(PickleError::Decrypt)
        );
    }
}
