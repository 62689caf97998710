//! The password side of the store: the zeroizing [`Password`] type, Argon2id parameters, and the key slot
//! that holds the store key wrapped under a password-derived key.
//!
//! Key slot encoding (the `keyslot` row of the `meta` table, the only secret-bearing value not sealed with the
//! store key):
//!
//! ```text
//! u8 version (1) || u8 algorithm (1 = Argon2id v0x13) || u32 memory_kib || u32 iterations || u32 parallelism
//!   || salt[16] || nonce[12] || ChaCha20-Poly1305(wrap_key, store_key[32])[48]
//! ```
//!
//! `wrap_key = Argon2id(password, salt, params)`; the AEAD's associated data is `"tern/store/keyslot/v1"`
//! followed by every byte before the nonce, so changing the parameters or the salt makes the slot fail to open.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use tern_protocol::codec::{DecodeError, Reader, Writer};
use tern_protocol::crypto::{self, KEY_LEN, NONCE_LEN, SecretKey, TAG_LEN};
use zeroize::Zeroizing;

use super::StoreError;

/// Length of the random Argon2id salt stored in the key slot.
pub const SALT_LEN: usize = 16;
/// Smallest Argon2id memory cost accepted, in KiB (the Argon2 minimum is 8 KiB per lane).
pub const MIN_KDF_MEMORY_KIB: u32 = 8;
/// Largest Argon2id memory cost accepted, in KiB (4 GiB), so a damaged or hostile key slot cannot make an
/// open allocate without bound.
pub const MAX_KDF_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Largest Argon2id pass count accepted.
pub const MAX_KDF_ITERATIONS: u32 = 64;
/// Largest Argon2id lane count accepted.
pub const MAX_KDF_PARALLELISM: u32 = 64;

const KEYSLOT_VERSION: u8 = 1;
const ALGORITHM_ARGON2ID_13: u8 = 1;
const KEYSLOT_LABEL: &[u8] = b"tern/store/keyslot/v1";
const HEADER_LEN: usize = 1 + 1 + 4 + 4 + 4 + SALT_LEN;
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
const KEYSLOT_LEN: usize = HEADER_LEN + WRAPPED_LEN;

/// A password, zeroized on drop. Its `Debug` never shows the contents and it has no `Display`.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Takes ownership of the password text.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether the password is empty (the CLI and the app refuse one unless told otherwise).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Password {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Password {
    fn from(text: &str) -> Self {
        Self::new(text.to_owned())
    }
}

impl From<Zeroizing<String>> for Password {
    fn from(text: Zeroizing<String>) -> Self {
        Self(text)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Argon2id cost parameters. They are stored with the wrapped key, so an open always uses what the
/// profile was created (or last re-keyed) with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Number of lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// RFC 9106 section 4, second recommended option: 64 MiB, 3 passes, 4 lanes. The default.
    pub const RFC9106_SECOND: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 4,
    };

    /// The cheapest parameters Argon2id accepts. Tests only: a password under these falls to brute force.
    pub const INSECURE_FOR_TESTS: Self = Self {
        memory_kib: MIN_KDF_MEMORY_KIB,
        iterations: 1,
        parallelism: 1,
    };

    /// Checks the parameters against this module's bounds and Argon2's own rules.
    pub fn validate(&self) -> Result<(), StoreError> {
        let reason = if self.memory_kib < MIN_KDF_MEMORY_KIB || self.memory_kib > MAX_KDF_MEMORY_KIB
        {
            "memory cost out of range"
        } else if self.iterations == 0 || self.iterations > MAX_KDF_ITERATIONS {
            "iteration count out of range"
        } else if self.parallelism == 0 || self.parallelism > MAX_KDF_PARALLELISM {
            "parallelism out of range"
        } else if u64::from(self.memory_kib) < 8 * u64::from(self.parallelism) {
            "memory cost must be at least 8 KiB per lane"
        } else {
            return Ok(());
        };
        Err(StoreError::InvalidKdfParams(reason))
    }

    fn argon2(&self) -> Result<Argon2<'static>, StoreError> {
        self.validate()?;
        let params = Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|_| StoreError::InvalidKdfParams("rejected by Argon2"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::RFC9106_SECOND
    }
}

/// Derives the key that wraps the store key.
fn wrap_key(
    password: &Password,
    salt: &[u8; SALT_LEN],
    params: &KdfParams,
) -> Result<SecretKey, StoreError> {
    let argon2 = params.argon2()?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon2
        .hash_password_into(password.as_bytes(), salt, out.as_mut())
        .map_err(|_| StoreError::InvalidKdfParams("rejected by Argon2"))?;
    Ok(SecretKey::from_bytes(*out))
}

/// The store key wrapped under a password, with what is needed to unwrap it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeySlot {
    params: KdfParams,
    salt: [u8; SALT_LEN],
    wrapped: [u8; WRAPPED_LEN],
}

impl fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { params, .. } = self;
        f.debug_struct("KeySlot")
            .field("params", params)
            .finish_non_exhaustive()
    }
}

impl KeySlot {
    /// Wraps `store_key` under `password` with a fresh salt.
    pub(crate) fn wrap(
        store_key: &SecretKey,
        password: &Password,
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        let mut rng = rand::rng();
        let mut salt = [0u8; SALT_LEN];
        rand::Rng::fill_bytes(&mut rng, &mut salt);
        let key = wrap_key(password, &salt, &params)?;
        let header = header(&params, &salt);
        let sealed = crypto::seal_random_nonce(&key, &aad(&header), store_key.as_bytes(), &mut rng);
        let wrapped = <[u8; WRAPPED_LEN]>::try_from(sealed.as_slice())
            .map_err(|_| StoreError::Corrupt("wrapped key has an unexpected length".into()))?;
        Ok(Self {
            params,
            salt,
            wrapped,
        })
    }

    /// Unwraps the store key; [`StoreError::WrongPassword`] if the password (or the slot) is wrong.
    pub(crate) fn unwrap_key(&self, password: &Password) -> Result<SecretKey, StoreError> {
        let key = wrap_key(password, &self.salt, &self.params)?;
        let header = header(&self.params, &self.salt);
        let plain = crypto::open_random_nonce(&key, &aad(&header), &self.wrapped)
            .map_err(|_| StoreError::WrongPassword)?;
        let bytes = <[u8; KEY_LEN]>::try_from(plain.as_slice())
            .map_err(|_| StoreError::Corrupt("unwrapped key has an unexpected length".into()))?;
        let bytes = Zeroizing::new(bytes);
        Ok(SecretKey::from_bytes(*bytes))
    }

    /// The parameters this slot was wrapped with.
    pub(crate) fn params(&self) -> KdfParams {
        self.params
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(KEYSLOT_LEN);
        w.raw(&header(&self.params, &self.salt)).raw(&self.wrapped);
        w.into_vec()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, "key slot", KEYSLOT_LEN)?;
        let version = r.u8("key slot version")?;
        if version != KEYSLOT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "key slot",
                got: version,
                supported: KEYSLOT_VERSION,
            });
        }
        if r.u8("key slot algorithm")? != ALGORITHM_ARGON2ID_13 {
            return Err(DecodeError::Invalid {
                field: "key slot algorithm",
                reason: "unknown algorithm",
            });
        }
        let params = KdfParams {
            memory_kib: r.u32("kdf memory")?,
            iterations: r.u32("kdf iterations")?,
            parallelism: r.u32("kdf parallelism")?,
        };
        if params.validate().is_err() {
            return Err(DecodeError::Invalid {
                field: "kdf params",
                reason: "out of bounds",
            });
        }
        let salt = r.array("kdf salt")?;
        let wrapped = r.array("wrapped key")?;
        r.finish()?;
        Ok(Self {
            params,
            salt,
            wrapped,
        })
    }
}

fn header(params: &KdfParams, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    let mut w = Writer::with_capacity(HEADER_LEN);
    w.u8(KEYSLOT_VERSION)
        .u8(ALGORITHM_ARGON2ID_13)
        .u32(params.memory_kib)
        .u32(params.iterations)
        .u32(params.parallelism)
        .raw(salt);
    w.into_vec()
}

fn aad(header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(KEYSLOT_LABEL.len() + header.len());
    aad.extend_from_slice(KEYSLOT_LABEL);
    aad.extend_from_slice(header);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_round_trips_and_rejects_wrong_password() {
        let key = SecretKey::from_bytes([9; 32]);
        let slot = KeySlot::wrap(&key, &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let decoded = KeySlot::decode(&slot.encode()).unwrap();
        assert_eq!(decoded, slot);
        assert_eq!(
            decoded.unwrap_key(&"pw".into()).unwrap().as_bytes(),
            key.as_bytes()
        );
        assert!(matches!(
            decoded.unwrap_key(&"pW".into()),
            Err(StoreError::WrongPassword)
        ));
    }

    #[test]
    fn changed_params_fail_to_unwrap() {
        let key = SecretKey::from_bytes([9; 32]);
        let slot = KeySlot::wrap(&key, &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let mut bytes = slot.encode();
        bytes[9] = 2; // iterations 1 -> 2
        let tampered = KeySlot::decode(&bytes).unwrap();
        assert!(matches!(
            tampered.unwrap_key(&"pw".into()),
            Err(StoreError::WrongPassword)
        ));
    }

    #[test]
    fn out_of_bound_params_are_refused() {
        let huge = KdfParams {
            memory_kib: MAX_KDF_MEMORY_KIB + 1,
            ..KdfParams::RFC9106_SECOND
        };
        assert!(matches!(
            huge.validate(),
            Err(StoreError::InvalidKdfParams(_))
        ));
        assert!(KdfParams::RFC9106_SECOND.validate().is_ok());
        assert!(
            format!("{:?}", Password::from("hunter2"))
                .find("hunter2")
                .is_none()
        );
    }
}
