//! What Tern accepts into its DHT: signed mailbox records ([`MailboxRecord`]) and live address records
//! ([`AddressRecord`]), each under its own key, never replacing a newer one. Kademlia is set to hand every
//! inbound record to the event loop (`StoreInserts::FilterBoth`), which passes it through [`store_if_valid`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::kad::{self, RecordKey, store::RecordStore};
use tern_protocol::{AddressRecord, MailboxId, MailboxRecord};
use tracing::debug;

/// The Kademlia key of the address record of `mailbox`'s identity.
pub fn address_record_key(mailbox: &MailboxId) -> RecordKey {
    RecordKey::new(&AddressRecord::dht_key(mailbox))
}

/// Decodes a DHT record as an address record, checking the signature and that it sits under its own key (not
/// whether it is live).
pub fn address_record(record: &kad::Record) -> Option<AddressRecord> {
    let decoded = AddressRecord::decode(&record.value).ok()?;
    decoded
        .belongs_under(record.key.as_ref())
        .then_some(decoded)
}

/// Unix milliseconds now (the wall clock, which address records are dated by).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The Kademlia key of the mailbox record for `mailbox`.
pub fn mailbox_record_key(mailbox: &MailboxId) -> RecordKey {
    RecordKey::new(&MailboxRecord::dht_key(mailbox))
}

/// Decodes a DHT record as a mailbox record, checking the signature and that it sits under its own key.
pub fn mailbox_record(record: &kad::Record) -> Option<MailboxRecord> {
    let decoded = MailboxRecord::decode(&record.value).ok()?;
    decoded
        .belongs_under(record.key.as_ref())
        .then_some(decoded)
}

/// Stores an inbound record if it is a valid mailbox record at least as new as the one held, or a live address
/// record newer than the one held. Returns whether it was stored.
pub fn store_if_valid<S: RecordStore>(store: &mut S, record: kad::Record) -> bool {
    store_if_valid_at(store, record, unix_ms(), Instant::now())
}

/// [`store_if_valid`] at a given time: `now_ms` on the wall clock, `now` on the monotonic one (an address
/// record is kept until it expires).
pub fn store_if_valid_at<S: RecordStore>(
    store: &mut S,
    mut record: kad::Record,
    now_ms: u64,
    now: Instant,
) -> bool {
    if record
        .key
        .as_ref()
        .starts_with(tern_protocol::address_record::ADDRESS_KEY_PREFIX)
    {
        let Some(incoming) = address_record(&record) else {
            debug!("refused a DHT record that is not a valid address record");
            return false;
        };
        if !incoming.is_live(now_ms) {
            debug!("refused an address record that is not live");
            return false;
        }
        let held = store.get(&record.key).and_then(|r| address_record(&r));
        if held.is_some_and(|held| !incoming.supersedes(&held)) {
            debug!("refused an older address record");
            return false;
        }
        let left = incoming.expires_ms().saturating_sub(now_ms);
        record.expires = now.checked_add(Duration::from_millis(left));
        return store.put(record).is_ok();
    }
    let Some(incoming) = mailbox_record(&record) else {
        debug!("refused a DHT record that is not a valid mailbox record");
        return false;
    };
    let held = store
        .get(&record.key)
        .and_then(|r| mailbox_record(&r))
        .map(|r| r.revision());
    if held.is_some_and(|held| held > incoming.revision()) {
        debug!("refused an older mailbox record");
        return false;
    }
    store.put(record).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::PeerId;
    use libp2p::kad::store::MemoryStore;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;
    use tern_protocol::Identity;

    fn record_for(id: &Identity, revision: u64) -> kad::Record {
        let record = MailboxRecord::issue(id, revision, Vec::new()).unwrap();
        kad::Record::new(
            mailbox_record_key(&id.key().mailbox_id()),
            record.encode().to_vec(),
        )
    }

    fn address_for(id: &Identity, issued_ms: u64) -> kad::Record {
        let addrs = vec![b"/ip4/203.0.113.5/tcp/1".to_vec()];
        let record = AddressRecord::issue(id, issued_ms, 3600, addrs).unwrap();
        kad::Record::new(
            address_record_key(&id.key().mailbox_id()),
            record.encode().to_vec(),
        )
    }

    #[test]
    fn only_live_newer_address_records_are_stored_until_they_expire() {
        let mut store = MemoryStore::new(PeerId::random());
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(3), 0);
        let now_ms = 1_800_000_000_000;
        let now = Instant::now();
        let put = |store: &mut MemoryStore, r| store_if_valid_at(store, r, now_ms, now);
        assert!(put(&mut store, address_for(&id, now_ms - 1000)));
        assert!(!put(&mut store, address_for(&id, now_ms - 2000)), "older");
        assert!(put(&mut store, address_for(&id, now_ms)));
        assert!(
            !put(&mut store, address_for(&id, now_ms - 3_600_000)),
            "expired"
        );
        assert!(
            !put(&mut store, address_for(&id, now_ms + 3_600_000)),
            "from the future"
        );
        let mut forged = address_for(&id, now_ms + 1);
        let last = forged.value.len() - 1;
        forged.value[last] ^= 1;
        assert!(!put(&mut store, forged), "bad signature");
        let other = Identity::generate(&mut ChaCha20Rng::seed_from_u64(4), 0);
        let mut misplaced = address_for(&other, now_ms + 1);
        misplaced.key = address_record_key(&id.key().mailbox_id());
        assert!(!put(&mut store, misplaced), "under someone else's key");
        // A mailbox record under an address key is refused, and the other way round.
        let mut wrong_kind = record_for(&id, 5);
        wrong_kind.key = address_record_key(&id.key().mailbox_id());
        assert!(!put(&mut store, wrong_kind));
        let mut wrong_kind = address_for(&id, now_ms + 1);
        wrong_kind.key = mailbox_record_key(&id.key().mailbox_id());
        assert!(!put(&mut store, wrong_kind));

        let held = store
            .get(&address_record_key(&id.key().mailbox_id()))
            .unwrap();
        assert_eq!(address_record(&held).unwrap().issued_ms(), now_ms);
        let expires = held.expires.unwrap();
        assert_eq!(expires.duration_since(now), Duration::from_secs(3600));
    }

    #[test]
    fn only_valid_newer_mailbox_records_are_stored() {
        let mut store = MemoryStore::new(PeerId::random());
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1), 0);
        assert!(store_if_valid(&mut store, record_for(&id, 2)));
        assert!(
            !store_if_valid(&mut store, record_for(&id, 1)),
            "older revision"
        );
        assert!(store_if_valid(&mut store, record_for(&id, 3)));

        let mut forged = record_for(&id, 9);
        let last = forged.value.len() - 1;
        forged.value[last] ^= 1;
        assert!(!store_if_valid(&mut store, forged), "bad signature");

        let other = Identity::generate(&mut ChaCha20Rng::seed_from_u64(2), 0);
        let mut misplaced = record_for(&other, 1);
        misplaced.key = mailbox_record_key(&id.key().mailbox_id());
        assert!(
            !store_if_valid(&mut store, misplaced),
            "under someone else's key"
        );

        let junk = kad::Record::new(RecordKey::new(&b"anything"), vec![1, 2, 3]);
        assert!(!store_if_valid(&mut store, junk));
        let held = store
            .get(&mailbox_record_key(&id.key().mailbox_id()))
            .unwrap();
        assert_eq!(mailbox_record(&held).unwrap().revision(), 3);
    }
}
