//! Reserved message keys (docs/protocol.md §8.3) in the engine: a send whose key the session on file
//! already covers writes no session; the session is written again only when the reservation runs out or a
//! received message starts a new sending chain; and a profile reopened after sends it never stored a
//! session for goes on sending without reusing a key, with the recipient reading everything. A receive
//! commit writes the sender's contact row only when a card changed it.

use tern_node::engine::{Engine, Received, ReservedSends, now_ms};
use tern_protocol::ratchet::SEND_RESERVATION;

fn texts_of(received: &Received) -> &str {
    match received {
        Received::Message { message, .. } => &message.text,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn a_session_is_stored_once_per_reservation_and_on_receive() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = tern_testkit::profile::pair(da.path(), db.path());
    let stored = |engine: &Engine| engine.store().session(&engine_peer(engine)).unwrap();
    fn engine_peer(engine: &Engine) -> tern_protocol::IdentityKey {
        engine.store().contacts().unwrap()[0].key
    }
    // The first message starts the session: stored, reserving the next keys.
    let (_, first) = alice.send_text(&bob.key(), "first").unwrap();
    let mut on_file = stored(&alice);
    assert!(on_file.is_some());
    let mut envelopes = vec![first.envelope];
    let mut rewrites = 0;
    for i in 1..(2 * SEND_RESERVATION) {
        let (_, out) = alice.send_text(&bob.key(), &format!("m{i}")).unwrap();
        envelopes.push(out.envelope);
        let now = stored(&alice);
        if now != on_file {
            rewrites += 1;
            on_file = now;
        }
    }
    // 2R messages: the first stored the session, one more store when its reservation ran out.
    assert_eq!(rewrites, 1);
    for (i, envelope) in envelopes.iter().enumerate() {
        let received = bob.receive(envelope).unwrap();
        let expected = if i == 0 {
            "first".to_owned()
        } else {
            format!("m{i}")
        };
        assert_eq!(texts_of(&received), expected);
    }
    // Bob's receive commit took the sending half of the DH step: his reply's key is reserved already.
    assert!(
        bob.send_texts_reserved(&[(alice.key(), "reply".into())], now_ms())
            .is_some()
    );
}

#[test]
fn a_profile_reopened_mid_reservation_sends_on_and_the_recipient_reads_everything() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = tern_testkit::profile::pair(da.path(), db.path());
    let alice_key = alice.key();
    let bob_key = bob.key();
    let (_, hello) = alice.send_text(&bob_key, "hello").unwrap();
    bob.receive(&hello.envelope).unwrap();
    let (_, reply) = bob.send_text(&alice_key, "hi").unwrap();
    alice.receive(&reply.envelope).unwrap();

    // Sends under reserved keys: the rows are committed, the session on file is not touched.
    let mut in_flight = Vec::new();
    for i in 0..5 {
        let ReservedSends { results, commit } = alice
            .send_texts_reserved(&[(bob_key, format!("r{i}"))], now_ms())
            .expect("the key is reserved");
        commit.expect("rows written").commit().unwrap();
        let (_, entry) = results.into_iter().next().unwrap().unwrap();
        in_flight.push(entry.envelope);
    }
    bob.receive(&in_flight[0]).unwrap();

    // A crash: the profile is reopened from disk; its session resumes past the reservation.
    drop(alice);
    let mut alice = tern_testkit::profile::open(da.path());
    let (_, after) = alice.send_text(&bob_key, "after the restart").unwrap();
    assert_eq!(
        texts_of(&bob.receive(&after.envelope).unwrap()),
        "after the restart"
    );
    // What was sent before the restart and arrives late still opens (skipped keys), once each.
    for (i, envelope) in in_flight.iter().enumerate().skip(1) {
        assert_eq!(texts_of(&bob.receive(envelope).unwrap()), format!("r{i}"));
    }
    assert!(matches!(
        bob.receive(&in_flight[1]).unwrap(),
        Received::Duplicate | Received::Copy { .. }
    ));
    // The conversation goes on both ways.
    let (_, back) = bob.send_text(&alice_key, "back").unwrap();
    assert_eq!(texts_of(&alice.receive(&back.envelope).unwrap()), "back");
}

/// The sealed rows of the profile's contacts table, read from the file itself (each write seals the row
/// again under a fresh nonce, so a rewrite of the same contact shows).
fn contact_rows(dir: &std::path::Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    use redb::{ReadableDatabase, ReadableTable};
    let db = redb::Database::open(dir.join(tern_node::store::STORE_FILE)).unwrap();
    let read = db.begin_read().unwrap();
    let table = read
        .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("contacts"))
        .unwrap();
    table
        .iter()
        .unwrap()
        .map(|row| {
            let (key, value) = row.unwrap();
            (key.value().to_vec(), value.value().to_vec())
        })
        .collect()
}

#[test]
fn a_text_from_a_known_contact_leaves_the_contact_row_as_it_was() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = tern_testkit::profile::pair(da.path(), db.path());
    let (alice_key, bob_key) = (alice.key(), bob.key());
    let (_, hello) = alice.send_text(&bob_key, "hello").unwrap();
    bob.receive(&hello.envelope).unwrap();
    let (_, reply) = bob.send_text(&alice_key, "hi").unwrap();
    alice.receive(&reply.envelope).unwrap();
    let (_, second) = alice.send_text(&bob_key, "second").unwrap();

    drop(bob);
    let before = contact_rows(db.path());
    assert_eq!(before.len(), 1);
    let mut bob = tern_testkit::profile::open(db.path());
    assert_eq!(texts_of(&bob.receive(&second.envelope).unwrap()), "second");
    drop(bob);
    assert_eq!(
        contact_rows(db.path()),
        before,
        "the receive commit rewrote an unchanged contact"
    );
}
