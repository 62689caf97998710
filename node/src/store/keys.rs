//! The keys derived from the store key, and the two things they do: seal values bound to their row, and
//! compute blind indexes for rows that would otherwise name a contact or a message.

use tern_protocol::PickleKey;
use tern_protocol::crypto::{self, SecretKey};
use zeroize::Zeroizing;

use super::StoreError;

/// Length of a blind index (a truncated HMAC-SHA-256).
pub const BLIND_LEN: usize = 16;

const SEAL_LABEL: &[u8] = b"tern/store/v1/seal";
const BLIND_LABEL: &[u8] = b"tern/store/v1/blind";
const PICKLE_LABEL: &[u8] = b"tern/store/v1/pickle";
/// Associated-data label of a format-2 value (no header, no padding): read only by the migration.
const AAD_LABEL_V2: &[u8] = b"tern/store/v1/value";
/// Associated-data label of a format-3 value.
const AAD_LABEL: &[u8] = b"tern/store/v3/value";

/// The first byte of every value sealed by format 3: its layout (header, nonce, padded AEAD).
pub(crate) const VALUE_VERSION: u8 = 3;
/// Nonce length of a sealed value.
pub(crate) const NONCE_LEN: usize = 12;
/// Tag length of a sealed value.
pub(crate) const TAG_LEN: usize = 16;
/// Bytes before the ciphertext in a format-3 sealed value: the version byte and the nonce.
pub(crate) const SEALED_PREFIX_LEN: usize = 1 + NONCE_LEN;
/// Values up to this long (padded) grow in [`SMALL_STEP`] steps, longer ones in [`LARGE_STEP`] steps.
pub(crate) const SMALL_LIMIT: usize = 1024;
/// Padding step for short values.
pub(crate) const SMALL_STEP: usize = 64;
/// Padding step for long values.
pub(crate) const LARGE_STEP: usize = 1024;
/// The byte that ends a value's plaintext before its zero padding (ISO/IEC 7816-4).
const PAD_MARK: u8 = 0x80;

/// The padded length of a plaintext of `len` bytes: `len + 1` (the mark) rounded up to a multiple of
/// [`SMALL_STEP`] up to [`SMALL_LIMIT`], of [`LARGE_STEP`] beyond.
pub(crate) fn padded_len(len: usize) -> usize {
    let n = len.saturating_add(1);
    let step = if n <= SMALL_LIMIT {
        SMALL_STEP
    } else {
        LARGE_STEP
    };
    n.div_ceil(step).saturating_mul(step)
}

fn pad(plain: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut padded = Zeroizing::new(Vec::with_capacity(padded_len(plain.len())));
    padded.extend_from_slice(plain);
    padded.push(PAD_MARK);
    padded.resize(padded_len(plain.len()), 0);
    padded
}

fn unpad(mut padded: Zeroizing<Vec<u8>>) -> Option<Zeroizing<Vec<u8>>> {
    let end = padded.iter().rposition(|&b| b != 0)?;
    if padded[end] != PAD_MARK || padded.len() != padded_len(end) {
        return None;
    }
    padded.truncate(end);
    Some(padded)
}

/// Domains of the blind index, so equal inputs in different roles never share a row key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blind {
    /// A contact identity key (contacts, sessions, the recipient part of an outbox key).
    Contact,
    /// A conversation: [`crate::api::ConversationId::to_bytes`] (the conversation part of a message key).
    Conversation,
    /// A message: conversation id bytes || message id.
    Message,
    /// A duplicate-check entry: sender identity key || message id.
    Seen,
    /// An outbox entry: message id.
    Outbox,
    /// An envelope that carried a stored message: envelope id.
    Envelope,
    /// A setting name.
    Setting,
    /// A `sessions` row's sealed value (its check, see `rollback.rs`).
    SessionCheck,
    /// A group id (`groups`).
    Group,
    /// A KeyPackage hash reference (`group_key_packages`).
    KeyPackage,
    /// A group id (`group_history`).
    GroupHistory,
    /// A message's file: conversation id bytes || message id (`attachments`).
    Attachment,
    /// A search token of a message's text (`search_tokens`, see `search.rs`).
    SearchToken,
}

impl Blind {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Contact => b"contact",
            Self::Conversation => b"conversation",
            Self::Message => b"message",
            Self::Seen => b"seen",
            Self::Outbox => b"outbox",
            Self::Envelope => b"envelope",
            Self::Setting => b"setting",
            Self::SessionCheck => b"session check",
            Self::Group => b"group",
            Self::KeyPackage => b"key package",
            Self::GroupHistory => b"group history",
            Self::Attachment => b"attachment",
            Self::SearchToken => b"search token",
        }
    }
}

/// The store key and its subkeys. No `Debug`; every key zeroizes on drop.
pub(crate) struct Keys {
    store: SecretKey,
    seal: SecretKey,
    blind: SecretKey,
    pickle: SecretKey,
}

fn subkey(store: &SecretKey, label: &[u8]) -> SecretKey {
    let okm = crypto::hkdf::<32>(&[], store.as_bytes(), label);
    SecretKey::from_bytes(*okm)
}

impl Keys {
    pub(crate) fn derive(store: SecretKey) -> Self {
        Self {
            seal: subkey(&store, SEAL_LABEL),
            blind: subkey(&store, BLIND_LABEL),
            pickle: subkey(&store, PICKLE_LABEL),
            store,
        }
    }

    /// The store key itself (to re-wrap it under a new password).
    pub(crate) fn store_key(&self) -> &SecretKey {
        &self.store
    }

    pub(crate) fn pickle_key(&self) -> PickleKey {
        PickleKey::from_bytes(*self.pickle.as_bytes())
    }

    /// `HMAC-SHA-256(blind_key, u8 len(domain) || domain || parts...)`, truncated to [`BLIND_LEN`] bytes.
    pub(crate) fn blind(&self, domain: Blind, parts: &[&[u8]]) -> [u8; BLIND_LEN] {
        let label = domain.label();
        let mut data =
            Vec::with_capacity(1 + label.len() + parts.iter().map(|p| p.len()).sum::<usize>());
        data.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
        data.extend_from_slice(label);
        for part in parts {
            data.extend_from_slice(part);
        }
        let mac = crypto::hmac(self.blind.as_bytes(), &data);
        let mut out = [0u8; BLIND_LEN];
        out.copy_from_slice(&mac[..BLIND_LEN]);
        out
    }

    /// Seals `plain` for row `row` of table `table`: `u8 3 || nonce[12] || ChaCha20-Poly1305 ciphertext
    /// of (plain || 0x80 || zeros up to padded_len)`, with associated data
    /// `"tern/store/v3/value" || u8 len(table) || table || row`.
    pub(crate) fn seal(&self, table: &str, row: &[u8], plain: &[u8]) -> Vec<u8> {
        let padded = pad(plain);
        let sealed = crypto::seal_random_nonce(
            &self.seal,
            &aad(AAD_LABEL, table, row),
            &padded,
            &mut rand::rng(),
        );
        let mut out = Vec::with_capacity(1 + sealed.len());
        out.push(VALUE_VERSION);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed by [`Self::seal`] for the same table and row.
    pub(crate) fn open(
        &self,
        table: &str,
        row: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let failed =
            || StoreError::Corrupt(format!("a value in table {table} failed authentication"));
        let Some((&VALUE_VERSION, body)) = sealed.split_first() else {
            return Err(failed());
        };
        let padded = crypto::open_random_nonce(&self.seal, &aad(AAD_LABEL, table, row), body)
            .map_err(|_| failed())?;
        unpad(padded)
            .ok_or_else(|| StoreError::Corrupt(format!("a value in table {table} is badly padded")))
    }

    /// Opens a value written by format 2 (`nonce[12] || ciphertext`, no header, no padding) or, failing
    /// that, by format 3. Only the migration reads format-2 values; a format-2 value whose random first
    /// byte happens to be 3 fails format 3's authentication and opens as format 2.
    pub(crate) fn open_v2_or_v3(
        &self,
        table: &str,
        row: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if sealed.first() == Some(&VALUE_VERSION)
            && let Ok(plain) = self.open(table, row, sealed)
        {
            return Ok(plain);
        }
        crypto::open_random_nonce(&self.seal, &aad(AAD_LABEL_V2, table, row), sealed).map_err(
            |_| StoreError::Corrupt(format!("a value in table {table} failed authentication")),
        )
    }
}

fn aad(label: &[u8], table: &str, row: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(label.len() + 1 + table.len() + row.len());
    aad.extend_from_slice(label);
    aad.push(u8::try_from(table.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(table.as_bytes());
    aad.extend_from_slice(row);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_in_their_own_row_and_table() {
        let keys = Keys::derive(SecretKey::from_bytes([3; 32]));
        let sealed = keys.seal("contacts", b"row1", b"value");
        assert_eq!(
            keys.open("contacts", b"row1", &sealed).unwrap().as_slice(),
            b"value"
        );
        assert!(matches!(
            keys.open("contacts", b"row2", &sealed),
            Err(StoreError::Corrupt(_))
        ));
        assert!(keys.open("sessions", b"row1", &sealed).is_err());
    }

    #[test]
    fn values_are_padded_to_buckets_and_unpadded_exactly() {
        let keys = Keys::derive(SecretKey::from_bytes([3; 32]));
        for (len, bucket) in [
            (0, 64),
            (63, 64),
            (64, 128),
            (1023, 1024),
            (1024, 2048),
            (5000, 5120),
        ] {
            assert_eq!(padded_len(len), bucket, "{len}");
            let plain = vec![0u8; len];
            let sealed = keys.seal("t", b"r", &plain);
            assert_eq!(sealed.len(), SEALED_PREFIX_LEN + bucket + TAG_LEN, "{len}");
            assert_eq!(keys.open("t", b"r", &sealed).unwrap().as_slice(), plain);
        }
        // A short and a long text fall in the same bucket.
        assert_eq!(
            keys.seal("t", b"r", b"hi").len(),
            keys.seal("t", b"r", &[b'x'; 60]).len()
        );
    }

    #[test]
    fn format_2_values_open_only_through_the_migration_path() {
        let keys = Keys::derive(SecretKey::from_bytes([3; 32]));
        for _ in 0..64 {
            let v2 = crypto::seal_random_nonce(
                &keys.seal,
                &aad(AAD_LABEL_V2, "t", b"r"),
                b"old",
                &mut rand::rng(),
            );
            assert!(keys.open("t", b"r", &v2).is_err());
            assert_eq!(
                keys.open_v2_or_v3("t", b"r", &v2).unwrap().as_slice(),
                b"old"
            );
        }
        let v3 = keys.seal("t", b"r", b"new");
        assert_eq!(
            keys.open_v2_or_v3("t", b"r", &v3).unwrap().as_slice(),
            b"new"
        );
    }

    #[test]
    fn blind_indexes_separate_domains_and_keys() {
        let keys = Keys::derive(SecretKey::from_bytes([3; 32]));
        let other = Keys::derive(SecretKey::from_bytes([4; 32]));
        let a = keys.blind(Blind::Contact, &[b"x"]);
        assert_eq!(a, keys.blind(Blind::Contact, &[b"x"]));
        assert_ne!(a, keys.blind(Blind::Message, &[b"x"]));
        assert_ne!(a, other.blind(Blind::Contact, &[b"x"]));
    }
}
