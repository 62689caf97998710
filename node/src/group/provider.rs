//! The openmls provider of one group (or one pending KeyPackage): pure-Rust crypto and an in-memory key-value
//! store that this module snapshots to bytes, so the whole MLS state of a group is one value the store seals.

use std::collections::HashMap;
use std::sync::RwLock;

use openmls_rust_crypto::{MemoryStorage, RustCrypto};
use openmls_traits::OpenMlsProvider;
use tern_protocol::codec::{Reader, Writer};

use super::{GroupError, MAX_GROUP_STATE_LEN};

/// Most entries in one group's key-value store (a 1 024-member tree needs a few thousand).
const MAX_STORAGE_ENTRIES: usize = 100_000;

/// The key-value entries of one provider, sorted by key.
pub(crate) type Snapshot = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Default)]
pub(crate) struct Provider {
    crypto: RustCrypto,
    storage: MemoryStorage,
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MemoryStorage;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}

impl Provider {
    /// A provider holding exactly these entries.
    pub(crate) fn from_snapshot(entries: &Snapshot) -> Self {
        let map: HashMap<Vec<u8>, Vec<u8>> = entries.iter().cloned().collect();
        Self {
            crypto: RustCrypto::default(),
            storage: MemoryStorage {
                values: RwLock::new(map),
            },
        }
    }

    /// A copy of every entry, sorted by key.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let values = match self.storage.values.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut entries: Snapshot = values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        entries.sort();
        entries
    }
}

/// `u32 count || count × (vec32 key || vec32 value)`.
pub(crate) fn encode_snapshot(w: &mut Writer, entries: &Snapshot) {
    w.u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
    for (k, v) in entries {
        w.bytes_u32(k).bytes_u32(v);
    }
}

pub(crate) fn decode_snapshot(r: &mut Reader<'_>) -> Result<Snapshot, GroupError> {
    let bad = |_| GroupError::Corrupt("storage snapshot");
    let count = r.u32("storage entries").map_err(bad)? as usize;
    if count > MAX_STORAGE_ENTRIES {
        return Err(GroupError::Corrupt("too many storage entries"));
    }
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let k = r
            .bytes_u32("storage key", MAX_GROUP_STATE_LEN)
            .map_err(bad)?;
        let v = r
            .bytes_u32("storage value", MAX_GROUP_STATE_LEN)
            .map_err(bad)?;
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}
