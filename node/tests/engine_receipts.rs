//! The delivery-receipt decision is made where an envelope is received: a message its sender did not hand
//! over itself (a mailbox fetched or pushed it) earns the sender one receipt, queued in the commit that
//! stores the message; one the sender handed over earns none (the transport's ack says it arrived).

use libp2p::PeerId;
use tern_node::api::{MessageStatus, MessageTimes};
use tern_node::engine::{Engine, Received, Via, now_ms};
use tern_protocol::IdentityKey;

/// Alice and Bob, each the other's contact, with the directories that hold them.
fn pair() -> (tempfile::TempDir, tempfile::TempDir, Engine, Engine) {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (alice, bob) = tern_testkit::profile::pair(da.path(), db.path());
    (da, db, alice, bob)
}

fn peer_of(key: &IdentityKey) -> PeerId {
    PeerId::from_bytes(&key.peer_id_bytes()).unwrap()
}

#[test]
fn mail_from_a_mailbox_queues_one_receipt_per_sender_in_the_same_commit() {
    let (_da, _db, mut alice, mut bob) = pair();
    let sent: Vec<_> = (0..3)
        .map(|i| alice.send_text(&bob.key(), &format!("m{i}")).unwrap())
        .collect();
    let group: Vec<(&[u8], Via)> = sent
        .iter()
        .map(|(_, out)| (out.envelope.as_slice(), Via::Mailbox))
        .collect();
    let outcomes = bob.receive_many(&group, now_ms());
    assert!(
        outcomes
            .iter()
            .all(|i| matches!(i.outcome, Ok(Received::Message { .. })) && i.envelope_id.is_some())
    );
    // One receipt for the three messages, already in Bob's outbox when receive_many returned.
    let receipts = bob.store().outbox_for(&alice.key(), 10).unwrap();
    assert_eq!(receipts.len(), 1);
    match alice.receive(&receipts[0].envelope).unwrap() {
        Received::Receipts { updated, .. } => {
            assert_eq!(updated.len(), 3);
            assert!(
                updated
                    .iter()
                    .all(|(_, status)| *status == MessageStatus::Delivered)
            );
        }
        other => panic!("expected receipts, got {other:?}"),
    }
    // The envelopes it answered were forgotten with it: a replayed copy earns no second receipt.
    let again = bob.receive_many(&[(sent[0].1.envelope.as_slice(), Via::Mailbox)], now_ms());
    assert!(!matches!(again[0].outcome, Ok(Received::Message { .. })));
    assert_eq!(bob.store().outbox_for(&alice.key(), 10).unwrap().len(), 1);
}

#[test]
fn only_a_message_pushed_by_another_peer_earns_a_receipt() {
    let (_da, _db, mut alice, mut bob) = pair();
    let (_, first) = alice.send_text(&bob.key(), "from Alice herself").unwrap();
    let (_, second) = alice
        .send_text(&bob.key(), "pushed by a LAN mailbox")
        .unwrap();
    let from_alice = Via::Direct(peer_of(&alice.key()));
    let from_other = Via::Direct(PeerId::random());
    let out = bob.receive_many(&[(first.envelope.as_slice(), from_alice)], now_ms());
    assert!(matches!(out[0].outcome, Ok(Received::Message { .. })));
    assert!(bob.store().outbox_for(&alice.key(), 10).unwrap().is_empty());
    let out = bob.receive_many(&[(second.envelope.as_slice(), from_other)], now_ms());
    assert!(matches!(out[0].outcome, Ok(Received::Message { .. })));
    assert_eq!(bob.store().outbox_for(&alice.key(), 10).unwrap().len(), 1);

    // A copy of the first (its sender never got the ack) fetched from a mailbox: a receipt for it.
    let copy = bob.receive_many(&[(first.envelope.as_slice(), Via::Mailbox)], now_ms());
    assert!(matches!(copy[0].outcome, Ok(Received::Copy { .. })));
    assert_eq!(bob.store().outbox_for(&alice.key(), 10).unwrap().len(), 2);
}

#[test]
fn the_engine_takes_its_time_from_the_caller() {
    let (_da, _db, mut alice, mut bob) = pair();
    let t0 = 1_800_000_000_000;
    let (message, entry) = alice.send_text_at(&bob.key(), "at t0", t0).unwrap();
    assert_eq!((message.sent_at_ms, entry.next_attempt_ms), (t0, t0));
    // A failed attempt is rescheduled from the time given, not the wall clock.
    alice.attempt_failed_at(&entry, t0 + 5).unwrap();
    let queued = alice.store().outbox_for(&bob.key(), 1).unwrap();
    assert_eq!(
        queued[0].next_attempt_ms,
        t0 + 5 + tern_node::engine::retry_delay_ms(1)
    );
    assert!(alice.store().outbox_due(t0 + 5, 10).unwrap().is_empty());
    // Received at the time given.
    let out = bob.receive_many(&[(entry.envelope.as_slice(), Via::Sender)], t0 + 7);
    match &out[0].outcome {
        Ok(Received::Message { message, .. }) => assert_eq!(message.received_at_ms, t0 + 7),
        other => panic!("expected a message, got {other:?}"),
    }
    // Once the envelope has expired, a failed attempt gives up.
    let late = (entry.expires_at + 1) * 1000;
    assert_eq!(
        alice.attempt_failed_at(&queued[0], late).unwrap(),
        Some(MessageStatus::Failed)
    );
    assert_eq!(alice.store().outbox_len().unwrap(), 0);
}

/// "Message info" shows when a message was delivered and read (issue 16): the times the receipts arrived
/// and the time the recipient read it, each taken from the caller's clock and kept once.
#[test]
fn delivery_and_read_times_are_the_receipts_arrival_and_the_reading() {
    let (_da, _db, mut alice, mut bob) = pair();
    let t0 = 1_800_000_000_000;
    let (message, entry) = alice.send_text_at(&bob.key(), "when?", t0).unwrap();
    let conversation = tern_node::api::ConversationId::Direct(bob.key());
    let times = |engine: &Engine, key: IdentityKey| {
        engine
            .store()
            .reader()
            .message_times(&tern_node::api::ConversationId::Direct(key), &message.id)
            .unwrap()
            .expect("stored")
    };
    assert_eq!(times(&alice, bob.key()), MessageTimes::default());

    // Through a mailbox: Bob's node queues a delivery receipt; Alice takes it at t0 + 10.
    bob.receive_many(&[(entry.envelope.as_slice(), Via::Mailbox)], t0 + 5);
    let receipt = bob.store().outbox_for(&alice.key(), 10).unwrap().remove(0);
    alice.receive_many(&[(receipt.envelope.as_slice(), Via::Mailbox)], t0 + 10);
    assert_eq!(
        times(&alice, bob.key()),
        MessageTimes {
            delivered_at_ms: Some(t0 + 10),
            read_at_ms: None
        }
    );

    // Bob reads it at t0 + 20; his read receipt reaches Alice at t0 + 30. A second copy changes nothing.
    bob.mark_read_at(&alice.key(), &[message.id], t0 + 20)
        .unwrap();
    assert_eq!(times(&bob, alice.key()).read_at_ms, Some(t0 + 20));
    let read = bob
        .store()
        .outbox_for(&alice.key(), 10)
        .unwrap()
        .into_iter()
        .find(|e| e.message_id != receipt.message_id)
        .expect("a read receipt");
    for at in [t0 + 30, t0 + 40] {
        alice.receive_many(&[(read.envelope.as_slice(), Via::Mailbox)], at);
    }
    assert_eq!(
        times(&alice, bob.key()),
        MessageTimes {
            delivered_at_ms: Some(t0 + 10),
            read_at_ms: Some(t0 + 30)
        }
    );
    assert_eq!(
        alice
            .store()
            .message(conversation, &message.id)
            .unwrap()
            .unwrap()
            .status,
        MessageStatus::Read
    );
}
