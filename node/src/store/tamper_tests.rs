//! Tampering with the raw database file: a value moved to another row or table fails to open, and a
//! format version this build does not know is refused.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable};
use tern_protocol::MessageId;

use super::tests::{contact, incoming, key, store};
use super::*;
/// Swaps the values of two rows of `table` in the raw database file.
fn swap_rows(path: &Path, table: BytesTable, a: &[u8], b: &[u8]) {
    let db = Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(table).unwrap();
        let va = t.get(a).unwrap().unwrap().value().to_vec();
        let vb = t.get(b).unwrap().unwrap().value().to_vec();
        t.insert(a, vb.as_slice()).unwrap();
        t.insert(b, va.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

fn rows(path: &Path, table: BytesTable) -> Vec<Vec<u8>> {
    let db = Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(table).unwrap();
    t.iter()
        .unwrap()
        .map(|e| e.unwrap().0.value().to_vec())
        .collect()
}

#[test]
fn values_swapped_between_rows_fail_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    s.put_contact(&contact(1)).unwrap();
    s.put_contact(&contact(2)).unwrap();
    s.insert_message(&incoming(key(1), 1, 10)).unwrap();
    s.insert_message(&incoming(key(1), 2, 20)).unwrap();
    drop(s);
    let path = dir.path().join(STORE_FILE);

    let contact_rows = rows(&path, CONTACTS);
    assert_eq!(contact_rows.len(), 2);
    swap_rows(&path, CONTACTS, &contact_rows[0], &contact_rows[1]);
    let message_rows = rows(&path, CONV_MESSAGES);
    assert_eq!(message_rows.len(), 2);
    swap_rows(&path, CONV_MESSAGES, &message_rows[0], &message_rows[1]);

    let s = Store::open(dir.path(), &"pw".into()).unwrap();
    assert!(matches!(s.contact(&key(1)), Err(StoreError::Corrupt(_))));
    assert!(matches!(s.contacts(), Err(StoreError::Corrupt(_))));
    assert!(matches!(
        s.message(key(1), &MessageId([1; 16])),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        s.conversation_page(key(1), None, 10),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_value_moved_to_another_table_fails_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    s.put_contact(&contact(1)).unwrap();
    s.put_session(&key(1), b"session").unwrap();
    drop(s);
    let path = dir.path().join(STORE_FILE);
    {
        // Same row key (blind(contact)) in both tables: copy the contact over the session.
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let contacts = txn.open_table(CONTACTS).unwrap();
            let mut sessions = txn.open_table(SESSIONS).unwrap();
            let (row, value) = contacts.first().unwrap().unwrap();
            sessions.insert(row.value(), value.value()).unwrap();
        }
        txn.commit().unwrap();
    }
    let s = Store::open(dir.path(), &"pw".into()).unwrap();
    // The session row's check sees the foreign value before its seal is even tried.
    assert!(matches!(s.session(&key(1)), Err(StoreError::RolledBack)));
    assert!(s.contact(&key(1)).unwrap().is_some());
}

#[test]
fn an_unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(store(dir.path()));
    {
        let db = Database::open(dir.path().join(STORE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_FORMAT, [9u8].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        Store::open(dir.path(), &"pw".into()),
        Err(StoreError::UnsupportedVersion { found: 9, .. })
    ));
}
