//! A message request (someone not in the contacts writes first) learns nothing until the user accepts:
//! no delivery or read receipt, no typing, so nothing is queued for the stranger's addresses or mailboxes
//! (the outbox is what makes a node dial or deposit). Accepting sends the delivery receipts it was owed.

use tern_node::api::{ContactState, MessageStatus};
use tern_node::engine::{EngineError, Received, Via, now_ms};
use tern_protocol::Body;
use tern_testkit::profile::create;

#[test]
fn a_request_gets_no_receipt_or_typing_until_accepted_then_its_receipts() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut stranger = create(a.path(), "Mallory");
    let mut bob = create(b.path(), "Bob");
    // Only the stranger knows Bob (a link found somewhere); Bob has never heard of them.
    stranger
        .add_contact(&bob.card().invite_link(), None)
        .unwrap();
    let (sent, entry) = stranger
        .send_text(&bob.key(), "hello, remember me?")
        .unwrap();

    // Fetched from a mailbox: an accepted contact would be owed a delivery receipt.
    let outcomes = bob.receive_many(&[(&entry.envelope, Via::Mailbox)], now_ms());
    let Ok(Received::Message { request, .. }) = &outcomes[0].outcome else {
        panic!("not a message: {:?}", outcomes[0].outcome);
    };
    assert_eq!(
        request.as_ref().map(|r| r.state),
        Some(ContactState::Requested)
    );
    assert_eq!(
        bob.store().outbox_len().unwrap(),
        0,
        "nothing queued for a stranger"
    );

    // Reading the request marks it read here and tells the stranger nothing; typing is refused.
    assert_eq!(
        bob.mark_read(&stranger.key(), &[sent.id]).unwrap(),
        vec![sent.id]
    );
    assert!(matches!(
        bob.send_control(&stranger.key(), Body::Typing(true), false),
        Err(EngineError::NotAccepted)
    ));
    assert_eq!(bob.store().outbox_len().unwrap(), 0);

    // Accepting queues the delivery receipt it was owed, and only that.
    bob.set_contact_state(&stranger.key(), ContactState::Accepted)
        .unwrap();
    let owed = bob.outbox_due(u64::MAX, 10).unwrap();
    assert_eq!(owed.len(), 1);
    match stranger.receive(&owed[0].envelope).unwrap() {
        Received::Receipts { updated, .. } => {
            assert_eq!(updated, vec![(sent.id, MessageStatus::Delivered)])
        }
        other => panic!("not a receipt: {other:?}"),
    }
    // Now typing goes through.
    bob.send_control(&stranger.key(), Body::Typing(true), false)
        .unwrap();
}

#[test]
fn writing_back_to_a_request_accepts_it_and_sends_its_receipts() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut stranger = create(a.path(), "Carol");
    let mut bob = create(b.path(), "Bob");
    stranger
        .add_contact(&bob.card().invite_link(), None)
        .unwrap();
    let (first, entry) = stranger
        .send_text(&bob.key(), "hi Bob, it's Carol")
        .unwrap();
    bob.receive_many(&[(&entry.envelope, Via::Mailbox)], now_ms());
    assert_eq!(bob.store().outbox_len().unwrap(), 0);

    bob.send_text(&stranger.key(), "oh hi Carol").unwrap();
    assert_eq!(
        bob.store().contact(&stranger.key()).unwrap().unwrap().state,
        ContactState::Accepted
    );
    // The reply and the delivery receipt for the first message.
    let queued = bob.outbox_due(u64::MAX, 10).unwrap();
    assert_eq!(queued.len(), 2);
    let mut delivered = Vec::new();
    for entry in &queued {
        if let Received::Receipts { updated, .. } = stranger.receive(&entry.envelope).unwrap() {
            delivered.extend(updated);
        }
    }
    assert_eq!(delivered, vec![(first.id, MessageStatus::Delivered)]);
}

#[test]
fn a_replayed_start_from_a_removed_contact_revives_no_session() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = tern_testkit::profile::pair(a.path(), b.path());
    let (_, start) = alice.send_text(&bob.key(), "first").unwrap();
    // From a mailbox: the delivery receipt is queued and the envelope forgotten, so a later copy of it
    // is decrypted again (its message id is what gives it away).
    bob.receive_many(&[(&start.envelope, Via::Mailbox)], now_ms());
    bob.remove_contact(&alice.key()).unwrap();
    assert!(bob.store().session(&alice.key()).unwrap().is_none());

    // Someone replays Alice's session start: the message was seen, so it is a duplicate, and it leaves
    // neither a contact request nor a session behind.
    let replayed = bob.receive_many(&[(&start.envelope, Via::Mailbox)], now_ms());
    assert!(matches!(replayed[0].outcome, Ok(Received::Duplicate)));
    assert!(bob.store().contact(&alice.key()).unwrap().is_none());
    assert!(bob.store().session(&alice.key()).unwrap().is_none());
    assert_eq!(bob.sessions_in_memory(), 0);
    assert_eq!(bob.store().outbox_len().unwrap(), 0);
}
