//! The signed record of where an identity's mail is held, published in the DHT so that contacts holding an
//! older contact card still find the current mailbox servers.
//!
//! Encoding: `u8 version (1) || identity_key[32] || u64 revision || u8 count || count × (vec8 peer_id ||
//! u8 n || n × vec8 multiaddr) || signature[64]`, the signature by the identity key under label
//! `tern/mailbox-record/v1` over everything before it. The DHT key is `"/tern/mailboxes/" || mailbox_id[32]`.

use std::fmt;

use crate::card::{
    MAX_MAILBOXES, MAX_PEER_ID_LEN, MailboxNode, check_addresses, read_addresses, write_addresses,
};
use crate::codec::{self, DecodeError, Reader, Writer};
use crate::identity::{Identity, IdentityKey};
use crate::mailbox_id::MailboxId;

/// The record format version.
pub const MAILBOX_RECORD_VERSION: u8 = 1;
/// An encoded record is at most this long.
pub const MAX_MAILBOX_RECORD_LEN: usize = 1024;
/// The prefix of a record's DHT key.
pub const DHT_KEY_PREFIX: &[u8] = b"/tern/mailboxes/";
const LABEL: &[u8] = b"tern/mailbox-record/v1";

/// A verified mailbox record.
#[derive(Clone, PartialEq, Eq)]
pub struct MailboxRecord {
    identity: IdentityKey,
    revision: u64,
    servers: Vec<MailboxNode>,
    encoded: Vec<u8>,
}

impl fmt::Debug for MailboxRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxRecord")
            .field("identity", &self.identity)
            .field("revision", &self.revision)
            .field("servers", &self.servers.len())
            .finish()
    }
}

impl MailboxRecord {
    /// Signs a record of `servers` for `identity`. A higher `revision` replaces a lower one.
    pub fn issue(
        identity: &Identity,
        revision: u64,
        servers: Vec<MailboxNode>,
    ) -> Result<Self, DecodeError> {
        codec::check_count("mailboxes", servers.len(), MAX_MAILBOXES)?;
        for s in &servers {
            codec::check_len("mailbox peer id", s.peer_id.len(), MAX_PEER_ID_LEN)?;
            check_addresses(&s.addresses)?;
        }
        let mut w = Writer::with_capacity(256);
        w.u8(MAILBOX_RECORD_VERSION)
            .raw(identity.key().as_bytes())
            .u64(revision)
            .u8(u8::try_from(servers.len()).unwrap_or(u8::MAX));
        for s in &servers {
            w.bytes_u8(&s.peer_id);
            write_addresses(&mut w, &s.addresses);
        }
        let signature = identity.sign(LABEL, w.as_slice());
        w.raw(&signature);
        codec::check_len("mailbox record", w.len(), MAX_MAILBOX_RECORD_LEN)?;
        Ok(Self {
            identity: identity.key(),
            revision,
            servers,
            encoded: w.into_vec(),
        })
    }

    /// Decodes a record and checks its signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, "mailbox record", MAX_MAILBOX_RECORD_LEN)?;
        let version = r.u8("mailbox record version")?;
        if version != MAILBOX_RECORD_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "mailbox record",
                got: version,
                supported: MAILBOX_RECORD_VERSION,
            });
        }
        let identity = IdentityKey::from_bytes(r.array("identity key")?)?;
        let revision = r.u64("revision")?;
        let count = r.count_u8("mailboxes", MAX_MAILBOXES)?;
        let mut servers = Vec::with_capacity(count);
        for _ in 0..count {
            let peer_id = r.bytes_u8("mailbox peer id", MAX_PEER_ID_LEN)?.to_vec();
            let addresses = read_addresses(&mut r)?;
            servers.push(MailboxNode { peer_id, addresses });
        }
        let signed_len = bytes.len() - r.remaining();
        let signature = r.array::<64>("mailbox record signature")?;
        r.finish()?;
        identity.verify(LABEL, &bytes[..signed_len], &signature, "mailbox record")?;
        Ok(Self {
            identity,
            revision,
            servers,
            encoded: bytes.to_vec(),
        })
    }

    /// The DHT key a record for `mailbox` is stored under.
    pub fn dht_key(mailbox: &MailboxId) -> Vec<u8> {
        let mut key = DHT_KEY_PREFIX.to_vec();
        key.extend_from_slice(&mailbox.0);
        key
    }

    /// Whether `key` is the DHT key this record belongs under.
    pub fn belongs_under(&self, key: &[u8]) -> bool {
        key == Self::dht_key(&self.identity.mailbox_id()).as_slice()
    }

    pub fn encode(&self) -> &[u8] {
        &self.encoded
    }

    pub fn identity(&self) -> IdentityKey {
        self.identity
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn servers(&self) -> &[MailboxNode] {
        &self.servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{MAX_ADDRESS_LEN, MAX_ADDRESSES};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn record() -> (Identity, MailboxRecord) {
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(40), 0);
        let servers = vec![MailboxNode {
            peer_id: vec![1; 38],
            addresses: vec![vec![4, 127, 0, 0, 1]],
        }];
        let record = MailboxRecord::issue(&id, 7, servers).unwrap();
        (id, record)
    }

    #[test]
    fn round_trips_and_lives_under_its_own_key() {
        let (id, record) = record();
        let back = MailboxRecord::decode(record.encode()).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.revision(), 7);
        assert!(back.belongs_under(&MailboxRecord::dht_key(&id.key().mailbox_id())));
        let other = Identity::generate(&mut ChaCha20Rng::seed_from_u64(41), 0);
        assert!(!back.belongs_under(&MailboxRecord::dht_key(&other.key().mailbox_id())));
    }

    #[test]
    fn every_changed_byte_is_rejected() {
        let (_, record) = record();
        let bytes = record.encode().to_vec();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(MailboxRecord::decode(&bad).is_err(), "byte {i} accepted");
        }
    }

    #[test]
    fn bounds_are_enforced_when_issuing() {
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(42), 0);
        let too_many = vec![
            MailboxNode {
                peer_id: vec![1; 38],
                addresses: vec![],
            };
            MAX_MAILBOXES + 1
        ];
        assert!(MailboxRecord::issue(&id, 1, too_many).is_err());
        let long_addr = vec![MailboxNode {
            peer_id: vec![1; 38],
            addresses: vec![vec![0; MAX_ADDRESS_LEN + 1]; MAX_ADDRESSES],
        }];
        assert!(MailboxRecord::issue(&id, 1, long_addr).is_err());
    }
}
