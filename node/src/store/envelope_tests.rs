//! The envelope table: which envelope carried a stored message, remembered across a reopen until it
//! expires, bounded, and created in a profile written before it.

use redb::{Database, ReadableTableMetadata};
use tern_protocol::{EnvelopeId, MessageId};

use super::tests::{fill_to_bound, incoming, key, store};
use super::*;

#[test]
fn an_envelope_is_remembered_across_a_reopen_until_it_expires_or_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let alice = key(1);
    let (first, second) = (EnvelopeId([7; 32]), EnvelopeId([8; 32]));
    {
        let mut store = store(dir.path());
        let message = incoming(alice, 1, 1000);
        store
            .transaction(|b| {
                assert!(b.insert_message(&message)?);
                assert!(b.mark_envelope(&first, &alice, &message.id, 10_000)?);
                assert!(b.mark_envelope(
                    &second,
                    &alice,
                    &MessageId([2; 16]),
                    super::EXPIRY_BUCKET_MS + 20_000
                )?);
                Ok(())
            })
            .unwrap();
        assert!(
            !store
                .mark_envelope(&first, &alice, &message.id, 10_000)
                .unwrap()
        );
    }
    let mut store = Store::open(dir.path(), &"pw".into()).unwrap();
    assert_eq!(
        store.envelope(&first).unwrap(),
        Some((alice, MessageId([1; 16])))
    );
    assert_eq!(store.envelope(&EnvelopeId([9; 32])).unwrap(), None);
    assert_eq!(store.envelopes_len().unwrap(), 2);
    // Expires with the duplicate check.
    store.purge_seen(super::EXPIRY_BUCKET_MS - 1).unwrap();
    assert_eq!(store.envelopes_len().unwrap(), 2);
    store.purge_seen(super::EXPIRY_BUCKET_MS).unwrap();
    assert_eq!(store.envelope(&first).unwrap(), None);
    assert_eq!(store.envelopes_len().unwrap(), 1);
    // Forgotten once its receipt is queued.
    assert!(store.transaction(|b| b.forget_envelope(&second)).unwrap());
    assert!(!store.transaction(|b| b.forget_envelope(&second)).unwrap());
    assert_eq!(store.envelope(&second).unwrap(), None);
    store.purge_seen(u64::MAX).unwrap();
    let (read, _) = store.shared.begin_read().unwrap();
    assert_eq!(read.open_table(ENVELOPE_EXPIRY).unwrap().len().unwrap(), 0);
}

#[test]
fn the_envelope_table_drops_its_oldest_entries_past_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    fill_to_bound(&mut store, ENVELOPES, ENVELOPE_EXPIRY);
    let alice = key(1);
    let envelope = EnvelopeId([7; 32]);
    assert!(
        store
            .mark_envelope(&envelope, &alice, &MessageId([1; 16]), 5)
            .unwrap()
    );
    assert_eq!(store.envelopes_len().unwrap(), MAX_SEEN_ENTRIES);
    assert_eq!(
        store.envelope(&envelope).unwrap(),
        Some((alice, MessageId([1; 16])))
    );
    let (read, _) = store.shared.begin_read().unwrap();
    let table = read.open_table(ENVELOPES).unwrap();
    assert!(table.get([0u8; BLIND_LEN].as_slice()).unwrap().is_none());
    let mut second = [0u8; BLIND_LEN];
    second[7] = 1;
    assert!(table.get(second.as_slice()).unwrap().is_some());
}

#[test]
fn a_profile_written_before_the_envelope_tables_opens_and_gains_them() {
    let dir = tempfile::tempdir().unwrap();
    drop(store(dir.path()));
    {
        let db = Database::open(dir.path().join(STORE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(ENVELOPES).unwrap());
        assert!(txn.delete_table(ENVELOPE_EXPIRY).unwrap());
        txn.commit().unwrap();
    }
    let mut store = Store::open(dir.path(), &"pw".into()).unwrap();
    assert_eq!(store.envelopes_len().unwrap(), 0);
    assert!(
        store
            .mark_envelope(&EnvelopeId([1; 32]), &key(1), &MessageId([1; 16]), 5)
            .unwrap()
    );
}
