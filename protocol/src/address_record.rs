//! The signed, short-lived record of how to reach an identity's node right now (its confirmed public addresses
//! and its relay circuit addresses), published in the DHT so that contacts who are online find each other
//! without a mailbox detour.
//!
//! Encoding: `u8 version (1) || identity_key[32] || u64 issued_ms || u32 ttl_secs || u8 count || count ×
//! vec8 multiaddr || signature[64]`, the signature by the identity key under label `tern/address-record/v1`
//! over everything before it. The DHT key is `"/tern/addresses/" || mailbox_id[32]`. A record is live from
//! `issued_ms` until `issued_ms + ttl_secs × 1000`; a later `issued_ms` replaces an earlier one. Time comes in
//! as arguments: this module reads no clock.

use std::fmt;

use crate::codec::{self, DecodeError, Reader, Writer};
use crate::identity::{Identity, IdentityKey};
use crate::mailbox_id::MailboxId;

/// The record format version.
pub const ADDRESS_RECORD_VERSION: u8 = 1;
/// The most addresses one record carries (public addresses and circuits through one or two relays).
pub const MAX_RECORD_ADDRESSES: usize = 8;
/// A binary multiaddr in a record is at most this long.
pub const MAX_RECORD_ADDRESS_LEN: usize = 128;
/// The longest lifetime a record may claim: one it does not refresh is gone within this long.
pub const MAX_ADDRESS_TTL_SECS: u32 = 2 * 3600;
/// The lifetime a node gives its records.
pub const DEFAULT_ADDRESS_TTL_SECS: u32 = 3600;
/// How far in the future a record's issue time may lie (clocks disagree) before it is refused.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// An encoded record is at most this long.
pub const MAX_ADDRESS_RECORD_LEN: usize =
    1 + 32 + 8 + 4 + 1 + MAX_RECORD_ADDRESSES * (1 + MAX_RECORD_ADDRESS_LEN) + 64;
/// The prefix of a record's DHT key.
pub const ADDRESS_KEY_PREFIX: &[u8] = b"/tern/addresses/";
const LABEL: &[u8] = b"tern/address-record/v1";

/// A verified address record.
#[derive(Clone, PartialEq, Eq)]
pub struct AddressRecord {
    identity: IdentityKey,
    issued_ms: u64,
    ttl_secs: u32,
    addresses: Vec<Vec<u8>>,
    encoded: Vec<u8>,
}

impl fmt::Debug for AddressRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddressRecord")
            .field("identity", &self.identity)
            .field("issued_ms", &self.issued_ms)
            .field("ttl_secs", &self.ttl_secs)
            .field("addresses", &self.addresses.len())
            .finish()
    }
}

impl AddressRecord {
    /// Signs a record of `addresses` (binary multiaddrs) for `identity`, issued at `issued_ms` (unix
    /// milliseconds) and live for `ttl_secs`.
    pub fn issue(
        identity: &Identity,
        issued_ms: u64,
        ttl_secs: u32,
        addresses: Vec<Vec<u8>>,
    ) -> Result<Self, DecodeError> {
        check_ttl(ttl_secs)?;
        codec::check_count("record addresses", addresses.len(), MAX_RECORD_ADDRESSES)?;
        for a in &addresses {
            check_address(a)?;
        }
        let mut w = Writer::with_capacity(256);
        w.u8(ADDRESS_RECORD_VERSION)
            .raw(identity.key().as_bytes())
            .u64(issued_ms)
            .u32(ttl_secs)
            .u8(u8::try_from(addresses.len()).unwrap_or(u8::MAX));
        for a in &addresses {
            w.bytes_u8(a);
        }
        let signature = identity.sign(LABEL, w.as_slice());
        w.raw(&signature);
        codec::check_len("address record", w.len(), MAX_ADDRESS_RECORD_LEN)?;
        Ok(Self {
            identity: identity.key(),
            issued_ms,
            ttl_secs,
            addresses,
            encoded: w.into_vec(),
        })
    }

    /// Decodes a record and checks its signature and bounds (not its lifetime: see [`Self::is_live`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, "address record", MAX_ADDRESS_RECORD_LEN)?;
        let version = r.u8("address record version")?;
        if version != ADDRESS_RECORD_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "address record",
                got: version,
                supported: ADDRESS_RECORD_VERSION,
            });
        }
        let identity = IdentityKey::from_bytes(r.array("identity key")?)?;
        let issued_ms = r.u64("issued_ms")?;
        let ttl_secs = r.u32("ttl_secs")?;
        check_ttl(ttl_secs)?;
        let count = r.count_u8("record addresses", MAX_RECORD_ADDRESSES)?;
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let a = r.bytes_u8("record address", MAX_RECORD_ADDRESS_LEN)?;
            check_address(a)?;
            addresses.push(a.to_vec());
        }
        let signed_len = bytes.len() - r.remaining();
        let signature = r.array::<64>("address record signature")?;
        r.finish()?;
        identity.verify(LABEL, &bytes[..signed_len], &signature, "address record")?;
        Ok(Self {
            identity,
            issued_ms,
            ttl_secs,
            addresses,
            encoded: bytes.to_vec(),
        })
    }

    /// The DHT key the address record of `mailbox`'s identity is stored under.
    pub fn dht_key(mailbox: &MailboxId) -> Vec<u8> {
        let mut key = ADDRESS_KEY_PREFIX.to_vec();
        key.extend_from_slice(&mailbox.0);
        key
    }

    /// Whether `key` is the DHT key this record belongs under.
    pub fn belongs_under(&self, key: &[u8]) -> bool {
        key == Self::dht_key(&self.identity.mailbox_id()).as_slice()
    }

    /// Whether the record is usable at `now_ms` (unix milliseconds): issued no later than
    /// [`MAX_CLOCK_SKEW_MS`] ahead of `now_ms`, and not yet expired.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.issued_ms <= now_ms.saturating_add(MAX_CLOCK_SKEW_MS) && now_ms < self.expires_ms()
    }

    /// When the record stops being usable (unix milliseconds).
    pub fn expires_ms(&self) -> u64 {
        self.issued_ms
            .saturating_add(u64::from(self.ttl_secs).saturating_mul(1000))
    }

    /// Whether this record replaces `held` (a record of the same identity): it was issued later.
    pub fn supersedes(&self, held: &AddressRecord) -> bool {
        self.issued_ms > held.issued_ms
            || (self.issued_ms == held.issued_ms && self.encoded == held.encoded)
    }

    pub fn encode(&self) -> &[u8] {
        &self.encoded
    }

    pub fn identity(&self) -> IdentityKey {
        self.identity
    }

    pub fn issued_ms(&self) -> u64 {
        self.issued_ms
    }

    pub fn ttl_secs(&self) -> u32 {
        self.ttl_secs
    }

    /// The binary multiaddrs, in the order the publisher gave them.
    pub fn addresses(&self) -> &[Vec<u8>] {
        &self.addresses
    }
}

fn check_ttl(ttl_secs: u32) -> Result<(), DecodeError> {
    if ttl_secs == 0 || ttl_secs > MAX_ADDRESS_TTL_SECS {
        return Err(DecodeError::Invalid {
            field: "ttl_secs",
            reason: "must be 1..=MAX_ADDRESS_TTL_SECS",
        });
    }
    Ok(())
}

fn check_address(address: &[u8]) -> Result<(), DecodeError> {
    codec::check_len("record address", address.len(), MAX_RECORD_ADDRESS_LEN)?;
    if address.is_empty() {
        return Err(DecodeError::Invalid {
            field: "record address",
            reason: "empty",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const ISSUED: u64 = 1_800_000_000_000;

    fn record() -> (Identity, AddressRecord) {
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(50), 0);
        let addresses = vec![vec![4, 203, 0, 113, 7, 6, 0x10, 0x01]];
        let record = AddressRecord::issue(&id, ISSUED, 3600, addresses).unwrap();
        (id, record)
    }

    #[test]
    fn round_trips_and_lives_under_its_own_key() {
        let (id, record) = record();
        let back = AddressRecord::decode(record.encode()).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.issued_ms(), ISSUED);
        assert_eq!(back.addresses(), record.addresses());
        assert!(back.belongs_under(&AddressRecord::dht_key(&id.key().mailbox_id())));
        let other = Identity::generate(&mut ChaCha20Rng::seed_from_u64(51), 0);
        assert!(!back.belongs_under(&AddressRecord::dht_key(&other.key().mailbox_id())));
        // Not the mailbox record's key.
        assert_ne!(
            AddressRecord::dht_key(&id.key().mailbox_id()),
            crate::MailboxRecord::dht_key(&id.key().mailbox_id())
        );
    }

    #[test]
    fn every_changed_byte_is_rejected() {
        let (_, record) = record();
        let bytes = record.encode().to_vec();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(AddressRecord::decode(&bad).is_err(), "byte {i} accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(AddressRecord::decode(&longer).is_err(), "trailing byte");
    }

    #[test]
    fn lifetime_and_order() {
        let (id, record) = record();
        assert!(
            !record.is_live(ISSUED - MAX_CLOCK_SKEW_MS - 1),
            "from the future"
        );
        assert!(record.is_live(ISSUED - MAX_CLOCK_SKEW_MS));
        assert!(record.is_live(ISSUED + 3_599_999));
        assert!(!record.is_live(ISSUED + 3_600_000), "expired");
        let newer = AddressRecord::issue(&id, ISSUED + 1, 3600, Vec::new()).unwrap();
        assert!(newer.supersedes(&record));
        assert!(!record.supersedes(&newer));
        assert!(record.supersedes(&record.clone()), "the same record again");
        let same_time = AddressRecord::issue(&id, ISSUED, 3600, Vec::new()).unwrap();
        assert!(!same_time.supersedes(&record), "same time, other content");
    }

    #[test]
    fn bounds_are_enforced() {
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(52), 0);
        let too_many = vec![vec![1]; MAX_RECORD_ADDRESSES + 1];
        assert!(AddressRecord::issue(&id, 1, 60, too_many).is_err());
        let long = vec![vec![0; MAX_RECORD_ADDRESS_LEN + 1]];
        assert!(AddressRecord::issue(&id, 1, 60, long).is_err());
        assert!(AddressRecord::issue(&id, 1, 0, Vec::new()).is_err());
        assert!(AddressRecord::issue(&id, 1, MAX_ADDRESS_TTL_SECS + 1, Vec::new()).is_err());
        assert!(AddressRecord::issue(&id, 1, 60, vec![Vec::new()]).is_err());
        let full = vec![vec![0xAB; MAX_RECORD_ADDRESS_LEN]; MAX_RECORD_ADDRESSES];
        let record = AddressRecord::issue(&id, 1, MAX_ADDRESS_TTL_SECS, full).unwrap();
        assert_eq!(record.encode().len(), MAX_ADDRESS_RECORD_LEN);
        assert_eq!(AddressRecord::decode(record.encode()).unwrap(), record);
    }

    #[test]
    fn another_version_is_refused_as_unknown() {
        let (_, record) = record();
        let mut bytes = record.encode().to_vec();
        bytes[0] = 2;
        assert!(matches!(
            AddressRecord::decode(&bytes),
            Err(DecodeError::UnsupportedVersion { got: 2, .. })
        ));
    }
}
