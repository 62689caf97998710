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
const AAD_LABEL: &[u8] = b"tern/store/v1/value";

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
    /// A message's file: conversation id bytes || message id (`attachments`).
    Attachment,
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
            Self::Attachment => b"attachment",
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

    /// Seals `plain` for row `row` of table `table`: `nonce[12] || ChaCha20-Poly1305 ciphertext`, with
    /// associated data `"tern/store/v1/value" || u8 len(table) || table || row`.
    pub(crate) fn seal(&self, table: &str, row: &[u8], plain: &[u8]) -> Vec<u8> {
        crypto::seal_random_nonce(&self.seal, &aad(table, row), plain, &mut rand::rng())
    }

    /// Opens a value sealed by [`Self::seal`] for the same table and row.
    pub(crate) fn open(
        &self,
        table: &str,
        row: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        crypto::open_random_nonce(&self.seal, &aad(table, row), sealed).map_err(|_| {
            StoreError::Corrupt(format!("a value in table {table} failed authentication"))
        })
    }
}

fn aad(table: &str, row: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 1 + table.len() + row.len());
    aad.extend_from_slice(AAD_LABEL);
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
    fn blind_indexes_separate_domains_and_keys() {
        let keys = Keys::derive(SecretKey::from_bytes([3; 32]));
        let other = Keys::derive(SecretKey::from_bytes([4; 32]));
        let a = keys.blind(Blind::Contact, &[b"x"]);
        assert_eq!(a, keys.blind(Blind::Contact, &[b"x"]));
        assert_ne!(a, keys.blind(Blind::Message, &[b"x"]));
        assert_ne!(a, other.blind(Blind::Contact, &[b"x"]));
    }
}
