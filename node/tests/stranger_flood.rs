//! Strangers cannot exhaust a node: message requests, the sessions and cards held in memory and the
//! contact table stay within their bounds however many strangers write, every envelope they send is
//! answered (so a mailbox never hands it back), and a contact's mail keeps flowing.
//!
//! 20,000 strangers by default (about a minute in a debug build); `TERN_STRANGERS=N` runs another number.

use tern_node::api::ContactState;
use tern_node::engine::{MAX_REQUESTS, MAX_SESSIONS_IN_MEMORY, Received, Via, now_ms};
use tern_protocol::Body;
use tern_testkit::mail::{first_message, identity};
use tern_testkit::profile::{create, pair};

/// A fetch's worth of envelopes, received as one group, as the mailbox client hands them over.
const GROUP: usize = 64;

fn strangers() -> usize {
    std::env::var("TERN_STRANGERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
        .max(MAX_REQUESTS as usize + MAX_SESSIONS_IN_MEMORY)
}

#[test]
fn a_flood_of_strangers_stays_bounded_and_a_contacts_mail_flows() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = pair(a.path(), b.path());
    let now = now_ms();
    let n = strangers();
    let card = bob.card().clone();
    let mut envelopes = Vec::with_capacity(n);
    for i in 0..n {
        // Mostly texts (each a message request), some typing and receipts (which mean nothing).
        let body = match i % 10 {
            8 => Body::Typing(true),
            9 => Body::Delivered(vec![tern_protocol::MessageId([1; 16])]),
            _ => Body::Text(format!("buy now #{i}")),
        };
        envelopes.push(first_message(&identity(), &card, body, now));
    }
    let (mut requests, mut dropped) = (0usize, 0usize);
    for group in envelopes.chunks(GROUP) {
        let batch: Vec<(&[u8], Via)> = group.iter().map(|e| (e.as_slice(), Via::Mailbox)).collect();
        for inbound in bob.receive_many(&batch, now) {
            assert!(inbound.envelope_id.is_some());
            // Every envelope has an answer that lets it be acknowledged: none fails the group.
            match inbound.outcome.expect("a stranger's envelope is answered") {
                Received::Message {
                    request: Some(_), ..
                } => requests += 1,
                Received::Dropped => dropped += 1,
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert!(bob.sessions_in_memory() <= MAX_SESSIONS_IN_MEMORY);
    }
    assert_eq!(requests, MAX_REQUESTS as usize);
    assert_eq!(requests + dropped, n);
    let contacts = bob.store().contacts().unwrap();
    let pending = contacts
        .iter()
        .filter(|c| c.state == ContactState::Requested)
        .count();
    assert_eq!(pending, MAX_REQUESTS as usize);
    assert_eq!(
        contacts.len(),
        MAX_REQUESTS as usize + 1,
        "the requests and Alice"
    );
    // Receipts and typing from strangers left no session on file; neither did the refused texts.
    assert_eq!(bob.store().outbox_len().unwrap(), 0);

    // Alice's mail still flows, receipt and all.
    let (sent, entry) = alice.send_text(&bob.key(), "still there?").unwrap();
    let got = bob.receive_many(&[(&entry.envelope, Via::Mailbox)], now_ms());
    assert!(matches!(
        got[0].outcome,
        Ok(Received::Message { request: None, .. })
    ));
    let receipt = bob.outbox_due(u64::MAX, 10).unwrap();
    assert_eq!(receipt.len(), 1);
    assert!(matches!(
        alice.receive(&receipt[0].envelope).unwrap(),
        Received::Receipts { updated, .. } if updated[0].0 == sent.id
    ));

    // A new contact can still be added, and accepting a request frees a place for the next stranger.
    let c = tempfile::tempdir().unwrap();
    let carol = create(c.path(), "Carol");
    bob.add_contact(&carol.card().invite_link(), None).unwrap();
    let first_request = contacts
        .iter()
        .find(|c| c.state == ContactState::Requested)
        .unwrap()
        .key;
    bob.set_contact_state(&first_request, ContactState::Accepted)
        .unwrap();
    let late = first_message(&identity(), &card, Body::Text("hello".into()), now);
    let got = bob.receive_many(&[(&late, Via::Mailbox)], now_ms());
    assert!(matches!(
        got[0].outcome,
        Ok(Received::Message {
            request: Some(_),
            ..
        })
    ));
}
