//! A session row put back from an older copy of the store is never used to encrypt: the message keys it
//! holds may have been used already. Alone, the row fails its check and that contact gets a new session;
//! put back together with its check, the digest gives it away on the next open and every contact gets a
//! new session. Either way the next message reaches the contact (it would not, were a key reused: the
//! contact has consumed it).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tern_node::engine::{Engine, EngineError, Received};
use tern_node::profile::Profile;
use tern_node::store::{Password, STORE_FILE, StoreError};
use tern_testkit::profile::{open, pair, password};

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

/// A re-key (the password change of `Profile::change_password`) never carries a session row that fails
/// its check as trusted: it is left behind and the contact gets a new session. A good session is carried
/// exactly as it was: a text Bob sealed before the re-key opens after it, and Alice goes on on it.
#[test]
fn a_rekey_carries_sessions_as_they_were_and_never_a_rolled_back_one() {
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ta.path().join("alice");
    let (alice, mut bob) = pair(&a, tb.path());
    let (old_sessions, _) = two_messages(&a, alice, &mut bob);
    put_back(&a, &old_sessions);

    let new = Password::new("a new password".into());
    let report = Profile::from(open(&a))
        .change_password(&password(), &new)
        .unwrap();
    assert_eq!((report.sessions, report.sessions_dropped), (0, 1));
    assert!(matches!(
        Engine::open(&a, &password()),
        Err(EngineError::Store(StoreError::WrongPassword))
    ));
    let mut alice = Engine::open(&a, &new).unwrap();
    assert!(alice.store().session(&bob.key()).unwrap().is_none());
    let (_, fresh) = alice.send_text(&bob.key(), "on a new session").unwrap();
    match bob.receive(&fresh.envelope).unwrap() {
        Received::Message { message, .. } => assert_eq!(message.text, "on a new session"),
        other => panic!("not delivered: {other:?}"),
    }

    // Bob seals a text on that session; Alice re-keys before it arrives.
    let (_, waiting) = bob.send_text(&alice.key(), "sealed before").unwrap();
    let newer = Password::new("a newer password".into());
    let report = Profile::from(alice).change_password(&new, &newer).unwrap();
    assert_eq!((report.sessions, report.sessions_dropped), (1, 0));
    let mut alice = Engine::open(&a, &newer).unwrap();
    match alice.receive(&waiting.envelope).unwrap() {
        Received::Message { message, .. } => assert_eq!(message.text, "sealed before"),
        other => panic!("the carried session did not open it: {other:?}"),
    }
    let (_, next) = alice.send_text(&bob.key(), "after the re-key").unwrap();
    match bob.receive(&next.envelope).unwrap() {
        Received::Message { message, .. } => assert_eq!(message.text, "after the re-key"),
        other => panic!("not delivered: {other:?}"),
    }
}
