//! A session row put back from an older copy of the store is never used to encrypt: the message keys it
//! holds may have been used already. Alone, the row fails its check and that contact gets a new session;
//! put back together with its check, the digest gives it away on the next open and every contact gets a
//! new session. Either way the next message reaches the contact (it would not, were a key reused: the
//! contact has consumed it).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tern_node::engine::{Engine, Received};
use tern_node::store::{STORE_FILE, StoreError};
use tern_testkit::profile::{open, pair};

/// The `sessions` table holds session rows (16-byte keys), each row's check (the same key and 0x01) and
/// the digest of all checks (`ff × 16 ‖ 0x02`).
const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");

/// Which rows of `sessions` a copy is taken of.
#[derive(Clone, Copy)]
enum Kind {
    Sessions,
    Checks,
}

/// The rows of one kind in the profile in `dir` (the engine must be closed).
fn rows(dir: &Path, kind: Kind) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = Database::open(dir.join(STORE_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(SESSIONS).unwrap();
    t.iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_vec(), v.value().to_vec())
        })
        .filter(|(k, _)| match kind {
            Kind::Sessions => k.len() == 16,
            Kind::Checks => k.len() == 17 && k[16] == 0x01,
        })
        .collect()
}

/// Writes `rows` back into `sessions`, as someone with the disk and an older copy would.
fn put_back(dir: &Path, rows: &[(Vec<u8>, Vec<u8>)]) {
    let db = Database::open(dir.join(STORE_FILE)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(SESSIONS).unwrap();
        for (k, v) in rows {
            t.insert(k.as_slice(), v.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Alice writes to Bob twice (Bob answering between). Returns Alice's profile closed, with the session
/// rows and checks it held after the first message, as a backup taken then would.
fn two_messages(a: &Path, mut alice: Engine, bob: &mut Engine) -> (Rows, Rows) {
    let (_, first) = alice.send_text(&bob.key(), "one").unwrap();
    bob.receive(&first.envelope).unwrap();
    let (_, reply) = bob.send_text(&alice.key(), "ack").unwrap();
    alice.receive(&reply.envelope).unwrap();
    drop(alice);
    let snapshot = (rows(a, Kind::Sessions), rows(a, Kind::Checks));
    let mut alice = open(a);
    let (_, second) = alice.send_text(&bob.key(), "two").unwrap();
    assert!(matches!(
        bob.receive(&second.envelope).unwrap(),
        Received::Message { .. }
    ));
    snapshot
}

#[test]
fn a_session_row_put_back_alone_is_refused_and_the_next_message_still_arrives() {
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ta.path().join("alice");
    let (alice, mut bob) = pair(&a, tb.path());
    let (old_sessions, _) = two_messages(&a, alice, &mut bob);
    put_back(&a, &old_sessions);

    let mut alice = open(&a);
    assert!(matches!(
        alice.store().session(&bob.key()),
        Err(StoreError::RolledBack)
    ));
    let (_, third) = alice.send_text(&bob.key(), "three").unwrap();
    match bob.receive(&third.envelope).unwrap() {
        Received::Message { message, .. } => assert_eq!(message.text, "three"),
        other => panic!("not delivered: {other:?}"),
    }
    // The new session is on file, with its check.
    assert!(alice.store().session(&bob.key()).unwrap().is_some());
}

#[test]
fn a_session_row_put_back_with_its_check_is_caught_by_the_digest_on_open() {
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ta.path().join("alice");
    let (alice, mut bob) = pair(&a, tb.path());
    let (old_sessions, old_checks) = two_messages(&a, alice, &mut bob);
    put_back(&a, &old_sessions);
    put_back(&a, &old_checks);

    let mut alice = open(&a);
    assert!(
        alice.store().session(&bob.key()).unwrap().is_none(),
        "every session dropped on open"
    );
    let (_, third) = alice.send_text(&bob.key(), "three").unwrap();
    match bob.receive(&third.envelope).unwrap() {
        Received::Message { message, .. } => assert_eq!(message.text, "three"),
        other => panic!("not delivered: {other:?}"),
    }
}
