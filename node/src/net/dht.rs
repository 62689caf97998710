//! What Tern accepts into its DHT: only signed mailbox records ([`MailboxRecord`]), each under its own key,
//! never replacing a newer revision. Kademlia is set to hand every inbound record to the event loop
//! (`StoreInserts::FilterBoth`), which passes it through [`store_if_valid`].

use libp2p::kad::{self, RecordKey, store::RecordStore};
use tern_protocol::{MailboxId, MailboxRecord};
use tracing::debug;

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

/// Stores an inbound record if it is a valid mailbox record at least as new as the one held. Returns whether
/// it was stored.
pub fn store_if_valid<S: RecordStore>(store: &mut S, record: kad::Record) -> bool {
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
