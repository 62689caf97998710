//! Group commit: many sends, receives, deliveries or deposits stored with one durable commit must mean
//! exactly what the same operations one by one mean, and survive a reopen.

use libp2p::PeerId;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tern_node::api::MessageStatus;
use tern_node::engine::{Engine, ReceiveError, Received, Via, now_ms};
use tern_node::mailbox::{MailboxConfig, MailboxRequest, MailboxResponse, MailboxServer, Refusal};
use tern_protocol::{Envelope, Identity};
use tern_testkit::profile::{create, pair, password};

#[test]
fn grouped_sends_and_receives_store_every_message_in_order_and_survive_reopen() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = pair(da.path(), db.path());
    let to_bob = bob.key();
    let texts: Vec<_> = (0..5).map(|i| (to_bob, format!("message {i}"))).collect();
    let sent = alice.send_texts(&texts);
    assert_eq!(sent.len(), 5);
    let entries: Vec<_> = sent.into_iter().map(|r| r.unwrap().1).collect();
    assert_eq!(alice.store().outbox().unwrap().len(), 5);

    // Garbage in the middle of the group is refused on its own; the rest are stored.
    let mut group: Vec<(&[u8], Via)> = entries
        .iter()
        .map(|e| (e.envelope.as_slice(), Via::Sender))
        .collect();
    group.insert(2, (b"not an envelope", Via::Sender));
    let outcomes = bob.receive_many(&group, now_ms());
    assert_eq!(outcomes.len(), 6);
    assert!(matches!(
        outcomes[2].outcome,
        Err(ReceiveError::Malformed(_))
    ));
    let received: Vec<String> = outcomes
        .into_iter()
        .filter_map(|o| match o.outcome {
            Ok(Received::Message { message, .. }) => Some(message.text),
            _ => None,
        })
        .collect();
    assert_eq!(
        received,
        (0..5).map(|i| format!("message {i}")).collect::<Vec<_>>()
    );

    // The same envelopes again, as a group: duplicates, nothing stored twice.
    let again: Vec<(&[u8], Via)> = entries
        .iter()
        .map(|e| (e.envelope.as_slice(), Via::Sender))
        .collect();
    for inbound in bob.receive_many(&again, now_ms()) {
        assert!(
            !matches!(inbound.outcome, Ok(Received::Message { .. })),
            "a message was stored twice"
        );
    }

    // Deliveries recorded together.
    let changed = alice
        .delivered_many(&entries, MessageStatus::Delivered)
        .unwrap();
    assert_eq!(changed, vec![true; 5]);
    assert!(alice.store().outbox().unwrap().is_empty());

    // Both profiles reopen with the sessions the groups advanced: the conversation goes on both ways.
    let alice_key = alice.key();
    drop(alice);
    drop(bob);
    let mut alice = Engine::open(da.path(), &password()).unwrap();
    let mut bob = Engine::open(db.path(), &password()).unwrap();
    let page = bob.store().conversation_page(alice_key, None, 10).unwrap();
    assert_eq!(page.messages.len(), 5);
    let (_, reply) = bob.send_text(&alice_key, "after reopen").unwrap();
    assert!(matches!(
        alice.receive(&reply.envelope),
        Ok(Received::Message { .. })
    ));
    let (_, more) = alice.send_text(&to_bob, "and back").unwrap();
    assert!(matches!(
        bob.receive(&more.envelope),
        Ok(Received::Message { .. })
    ));
}

#[test]
fn grouped_sends_to_an_unknown_contact_fail_alone() {
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (mut alice, bob) = pair(da.path(), db.path());
    let stranger = create(dc.path(), "Carol").key();
    let texts = vec![
        (bob.key(), "one".to_owned()),
        (stranger, "lost".to_owned()),
        (bob.key(), "two".to_owned()),
    ];
    let sent = alice.send_texts(&texts);
    assert!(sent[0].is_ok() && sent[1].is_err() && sent[2].is_ok());
    assert_eq!(alice.store().outbox().unwrap().len(), 2);
}

#[test]
fn grouped_deposits_count_quotas_and_duplicates_within_the_group() {
    let now = 1_750_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailbox.redb");
    let config = MailboxConfig {
        quota_envelopes: 3,
        ..MailboxConfig::default()
    };
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let sender = Identity::generate(&mut rng, now * 1000);
    let owner = Identity::generate(&mut rng, now * 1000);
    let envelope = |rng: &mut ChaCha20Rng| {
        Envelope::seal(&sender, owner.public(), b"hello", now + 3600, rng)
            .unwrap()
            .encode()
    };
    let first = envelope(&mut rng);
    let peer = PeerId::random();
    let mut requests = vec![
        (
            peer,
            MailboxRequest::Deposit {
                envelope: first.clone(),
            },
        ),
        (peer, MailboxRequest::Deposit { envelope: first }),
    ];
    for _ in 0..3 {
        requests.push((
            peer,
            MailboxRequest::Deposit {
                envelope: envelope(&mut rng),
            },
        ));
    }
    requests.push((peer, MailboxRequest::Deposit { envelope: vec![1] }));
    {
        let mut server = MailboxServer::open(&path, b"server".to_vec(), config.clone()).unwrap();
        let responses = server.handle_many(requests, now);
        assert!(matches!(responses[0], MailboxResponse::Deposited { .. }));
        assert!(matches!(responses[1], MailboxResponse::Duplicate { .. }));
        assert!(matches!(responses[2], MailboxResponse::Deposited { .. }));
        assert!(matches!(responses[3], MailboxResponse::Deposited { .. }));
        assert_eq!(
            responses[4],
            MailboxResponse::Refused(Refusal::QuotaCount),
            "the quota counts the deposits earlier in the same group"
        );
        assert_eq!(responses[5], MailboxResponse::Refused(Refusal::Malformed));
        assert_eq!(server.stats().envelopes, 3);
    }
    // Durable: a reopened server holds exactly the three it answered `Deposited`.
    let server = MailboxServer::open(&path, b"server".to_vec(), config).unwrap();
    assert_eq!(server.stats().envelopes, 3);
    assert_eq!(
        server.queued(&owner.key().mailbox_id(), 10).unwrap().len(),
        3
    );
}
