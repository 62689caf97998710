//! Real nodes on 127.0.0.1 in one test process: delivery, receipts, typing, restarts, dedupe, and no
//! plaintext on disk.

use std::path::Path;
use std::time::Duration;

use tern_node::api::ContactState;
use tern_node::api::{Event, MessageStatus};
use tern_node::engine::{Engine, EngineError, Received};
use tern_protocol::{Body, MessageId};
use tern_testkit::files::{contains, files_under};
use tern_testkit::net::{LiveNode, history, loopback_node};
use tern_testkit::profile::{PASSWORD, create, introduce, open, pair};
use tern_testkit::wait::{received, wait_for, wait_status};

fn assert_absent(dir: &Path, needle: &[u8]) {
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, needle),
            "{} contains {:?}",
            file.display(),
            String::from_utf8_lossy(needle)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_messages_receipts_and_typing_and_leave_no_plaintext_on_disk() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let canary_text = "canary-text-8c1f0e7d";
    let canary_name = "Canaryname-51ab";
    let mut alice = create(dirs.0.path(), "Alice");
    let mut bob = create(dirs.1.path(), canary_name);
    introduce(&mut [&mut alice, &mut bob]);

    tokio::time::timeout(Duration::from_secs(120), async {
        let mut a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();

        // Alice -> Bob: delivered, then read.
        let sent = a
            .node
            .send_text(b.key, format!("hello {canary_text}"))
            .await
            .unwrap();
        assert_eq!(sent.status, MessageStatus::Sending);
        wait_status(&mut a.events, sent.id, MessageStatus::Delivered).await;
        let got = received(&mut b.events, &format!("hello {canary_text}")).await;
        assert_eq!(got, sent.id);
        assert_eq!(b.node.mark_read(a.key, vec![got]).await.unwrap(), vec![got]);
        wait_status(&mut a.events, sent.id, MessageStatus::Read).await;

        // Typing reaches the other side.
        b.node.typing(a.key, true).await.unwrap();
        wait_for(
            &mut a.events,
            "typing",
            |e| matches!(e, Event::Typing { contact, typing: true, .. } if *contact == b.key),
        )
        .await;

        // Bob -> Alice.
        let reply = b.node.send_text(a.key, "hi Alice".into()).await.unwrap();
        wait_status(&mut b.events, reply.id, MessageStatus::Delivered).await;
        received(&mut a.events, "hi Alice").await;

        assert_eq!(
            history(&a.node, b.key).await,
            vec![
                (format!("hello {canary_text}"), MessageStatus::Read),
                ("hi Alice".to_string(), MessageStatus::Received),
            ],
            "oldest first"
        );
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("exchange finished in time");

    // Bob's history survives a restart, and nothing readable was written anywhere.
    let bob = open(dirs.1.path());
    let alice_key = bob.find_contact("Alice").unwrap().key;
    let page = bob.store().conversation_page(alice_key, None, 10).unwrap();
    assert_eq!(page.messages.len(), 2);
    drop(bob);
    for dir in [dirs.0.path(), dirs.1.path()] {
        assert_absent(dir, canary_text.as_bytes());
        assert_absent(dir, canary_name.as_bytes());
        assert_absent(dir, PASSWORD.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_all_reach_each_other() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let names = ["Ann", "Ben", "Cat"];
    let mut engines: Vec<Engine> = dirs
        .iter()
        .zip(names)
        .map(|(d, n)| create(d.path(), n))
        .collect();
    {
        let mut refs: Vec<&mut Engine> = engines.iter_mut().collect();
        introduce(&mut refs);
    }
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut nodes = Vec::new();
        for (engine, name) in engines.into_iter().zip(names) {
            nodes.push(LiveNode::start(engine, name, loopback_node()).await);
        }
        for i in 0..3 {
            for j in 0..3 {
                if i < j {
                    let addr = nodes[j].addr.clone();
                    nodes[i].node.dial(addr).await.unwrap();
                }
            }
        }
        for i in 0..3 {
            for j in 0..3 {
                if i == j {
                    continue;
                }
                let text = format!("{} to {}", names[i], names[j]);
                let to = nodes[j].key;
                let sent = nodes[i].node.send_text(to, text.clone()).await.unwrap();
                wait_status(&mut nodes[i].events, sent.id, MessageStatus::Delivered).await;
                received(&mut nodes[j].events, &text).await;
            }
        }
        for n in &nodes {
            n.node.shutdown().await.unwrap();
        }
    })
    .await
    .expect("three-way exchange finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_queued_while_the_peer_is_offline_is_delivered_once_after_a_restart() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let bob_key = bob.key();
    drop(bob);

    tokio::time::timeout(Duration::from_secs(120), async {
        // Alice writes while Bob is offline, then quits.
        let a = LiveNode::start(alice, "alice", loopback_node()).await;
        let queued = a
            .node
            .send_text(bob_key, "sent while you were away".into())
            .await
            .unwrap();
        let outbox = a.node.status().await.unwrap().outbox_len;
        assert_eq!(outbox, 1);
        a.node.shutdown().await.unwrap();

        // Bob comes online; Alice restarts and finds him.
        let bob = open(dirs.1.path());
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        let alice = open(dirs.0.path());
        let mut config = loopback_node();
        config.peers = vec![b.addr.clone()];
        let mut a = LiveNode::start(alice, "alice", config).await;
        wait_status(&mut a.events, queued.id, MessageStatus::Delivered).await;
        let got = received(&mut b.events, "sent while you were away").await;
        assert_eq!(got, queued.id);
        assert_eq!(a.node.status().await.unwrap().outbox_len, 0);
        let alice_key = a.key;
        assert_eq!(history(&b.node, alice_key).await.len(), 1);
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("restart delivery finished in time");
}

#[test]
fn an_envelope_delivered_twice_is_stored_once() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = pair(dirs.0.path(), dirs.1.path());
    let (message, outbox) = alice.send_text(&bob.key(), "only once").unwrap();
    assert!(matches!(
        bob.receive(&outbox.envelope).unwrap(),
        Received::Message { .. }
    ));
    // The same bytes again (a retry whose ack was lost): refused as already received.
    assert!(!matches!(
        bob.receive(&outbox.envelope),
        Ok(Received::Message { .. })
    ));
    let page = bob
        .store()
        .conversation_page(alice.key(), None, 10)
        .unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].id, message.id);
    // And after a restart of Bob, still once.
    drop(bob);
    let mut bob = open(dirs.1.path());
    assert!(!matches!(
        bob.receive(&outbox.envelope),
        Ok(Received::Message { .. })
    ));
    assert_eq!(
        bob.store()
            .conversation_page(alice.key(), None, 10)
            .unwrap()
            .messages
            .len(),
        1
    );
}

#[test]
fn a_copy_of_a_stored_envelope_names_its_sender_and_message_even_after_a_restart() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = pair(dirs.0.path(), dirs.1.path());
    let (message, outbox) = alice.send_text(&bob.key(), "acked too late").unwrap();
    assert!(matches!(
        bob.receive(&outbox.envelope).unwrap(),
        Received::Message { .. }
    ));
    // Bob is killed before his ack leaves: only the store survives.
    drop(bob);
    let mut bob = open(dirs.1.path());
    // Alice, with no ack, deposited the same envelope with Bob's mailbox; Bob fetches it.
    match bob.receive(&outbox.envelope).unwrap() {
        Received::Copy { contact, id } => {
            assert_eq!(contact, alice.key());
            assert_eq!(id, message.id);
        }
        other => panic!("expected a copy, got {other:?}"),
    }
    let page = bob
        .store()
        .conversation_page(alice.key(), None, 10)
        .unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].id, message.id);
    // Answering the copy forgets the envelope in the same commit: a replay earns nothing more.
    let envelope_id = tern_protocol::Envelope::decode(&outbox.envelope)
        .unwrap()
        .id();
    bob.queue_delivered(&alice.key(), vec![message.id], &[envelope_id])
        .unwrap();
    assert_eq!(bob.store().envelope(&envelope_id).unwrap(), None);
    let receipt = bob
        .outbox_due(u64::MAX, 10)
        .unwrap()
        .into_iter()
        .find(|e| e.recipient == alice.key())
        .expect("a delivery receipt queued for Alice");
    assert!(!matches!(
        bob.receive(&outbox.envelope),
        Ok(Received::Copy { .. } | Received::Message { .. })
    ));
    // The receipt moves Alice's message to delivered, and the session still works both ways.
    match alice.receive(&receipt.envelope).unwrap() {
        Received::Receipts { updated, .. } => {
            assert_eq!(updated, vec![(message.id, MessageStatus::Delivered)]);
        }
        other => panic!("expected a receipt, got {other:?}"),
    }
    let (_, next) = alice.send_text(&bob.key(), "and another").unwrap();
    assert!(matches!(
        bob.receive(&next.envelope).unwrap(),
        Received::Message { .. }
    ));
}

#[test]
fn a_first_message_from_a_stranger_is_a_contact_request() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut alice = create(dirs.0.path(), "Alice");
    let mut bob = create(dirs.1.path(), "Bob");
    // Only Alice knows Bob.
    alice.add_contact(&bob.card().invite_link(), None).unwrap();
    let (_, outbox) = alice
        .send_text(&bob.key(), "hi, we met at the meetup")
        .unwrap();
    match bob.receive(&outbox.envelope).unwrap() {
        Received::Message {
            request: Some(contact),
            message,
            ..
        } => {
            assert_eq!(contact.state, ContactState::Requested);
            assert_eq!(contact.local_name, "Alice");
            assert_eq!(message.text, "hi, we met at the meetup");
        }
        other => panic!("expected a contact request, got {other:?}"),
    }
    // Blocking drops what they send next.
    bob.set_contact_state(&alice.key(), ContactState::Blocked)
        .unwrap();
    let (_, outbox) = alice.send_text(&bob.key(), "hello?").unwrap();
    assert!(matches!(
        bob.receive(&outbox.envelope).unwrap(),
        Received::Dropped
    ));
    assert_eq!(
        bob.store()
            .conversation_page(alice.key(), None, 10)
            .unwrap()
            .messages
            .len(),
        1
    );
}

#[test]
fn receipts_and_typing_move_statuses_without_touching_history() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = pair(dirs.0.path(), dirs.1.path());
    let (sent, outbox) = alice.send_text(&bob.key(), "read me").unwrap();
    bob.receive(&outbox.envelope).unwrap();
    let (_, typing) = bob
        .send_control(&alice.key(), Body::Typing(true), false)
        .unwrap();
    assert!(matches!(
        alice.receive(&typing.encode()).unwrap(),
        Received::Typing { typing: true, .. }
    ));
    bob.mark_read(&alice.key(), &[sent.id]).unwrap();
    let receipt = bob
        .store()
        .outbox()
        .unwrap()
        .pop()
        .expect("a read receipt is queued");
    match alice.receive(&receipt.envelope).unwrap() {
        Received::Receipts { updated, .. } => {
            assert_eq!(updated, vec![(sent.id, MessageStatus::Read)])
        }
        other => panic!("expected receipts, got {other:?}"),
    }
    let page = alice
        .store()
        .conversation_page(bob.key(), None, 10)
        .unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].status, MessageStatus::Read);
}

#[test]
fn a_reply_names_the_message_it_answers_on_both_sides_and_keeps_it_after_a_restart() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = pair(dirs.0.path(), dirs.1.path());
    let (asked, outbox) = alice.send_text(&bob.key(), "lunch on Friday?").unwrap();
    bob.receive(&outbox.envelope).unwrap();
    let (reply, outbox) = bob.send_reply(&alice.key(), "yes!", asked.id).unwrap();
    assert_eq!(
        (reply.text.as_str(), reply.reply_to),
        ("yes!", Some(asked.id))
    );
    match alice.receive(&outbox.envelope).unwrap() {
        Received::Message { message, .. } => {
            assert_eq!(message.text, "yes!");
            assert_eq!(message.reply_to, Some(asked.id));
        }
        other => panic!("expected the reply, got {other:?}"),
    }
    // A plain text answers nothing; a reply to a message the conversation does not hold is refused.
    let (plain, _) = alice.send_text(&bob.key(), "great").unwrap();
    assert_eq!(plain.reply_to, None);
    assert!(matches!(
        alice.send_reply(&bob.key(), "what?", MessageId([9; 16])),
        Err(EngineError::UnknownMessage)
    ));
    drop((alice, bob));
    for (dir, with) in [(dirs.0.path(), "Bob"), (dirs.1.path(), "Alice")] {
        let engine = open(dir);
        let contact = engine.find_contact(with).unwrap().key;
        let page = engine.store().conversation_page(contact, None, 10).unwrap();
        let stored = page.messages.iter().find(|m| m.text == "yes!").unwrap();
        assert_eq!(stored.reply_to, Some(asked.id), "{with}'s side, reopened");
    }
}

#[test]
fn a_failed_message_is_sent_again_with_its_id_and_a_removed_contact_takes_its_history_along() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = pair(dirs.0.path(), dirs.1.path());
    let bob_key = bob.key();
    let (message, mut entry) = alice.send_text(&bob_key, "are you there?").unwrap();
    // Only a failed message can be retried.
    assert!(matches!(
        alice.retry(&bob_key, &message.id),
        Err(EngineError::NotRetryable)
    ));
    // The envelope expires undelivered: the message fails and leaves the outbox.
    entry.expires_at = 0;
    assert_eq!(
        alice.attempt_failed(&entry).unwrap(),
        Some(MessageStatus::Failed)
    );
    assert!(alice.store().outbox().unwrap().is_empty());

    let retried = alice.retry(&bob_key, &message.id).unwrap();
    assert_eq!(
        (retried.id, retried.status),
        (message.id, MessageStatus::Sending)
    );
    let queued = alice.store().outbox().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].message_id, message.id);
    assert_ne!(queued[0].envelope, entry.envelope, "a new envelope");
    // Bob gets it once, under the original id.
    let Received::Message { message: got, .. } = bob.receive(&queued[0].envelope).unwrap() else {
        panic!("not a message");
    };
    assert_eq!((got.id, got.text.as_str()), (message.id, "are you there?"));

    // Renaming keeps names unique; removing deletes the contact, the history and the queue.
    let carol_dir = tempfile::tempdir().unwrap();
    let mut carol = create(carol_dir.path(), "Carol");
    introduce(&mut [&mut alice, &mut carol]);
    assert!(matches!(
        alice.rename_contact(&bob_key, "Carol"),
        Err(EngineError::NameTaken(_))
    ));
    assert_eq!(
        alice
            .rename_contact(&bob_key, " Bobby ")
            .unwrap()
            .local_name,
        "Bobby"
    );
    alice.send_text(&bob_key, "queued").unwrap();
    alice.remove_contact(&bob_key).unwrap();
    assert!(alice.store().contact(&bob_key).unwrap().is_none());
    assert!(alice.store().session(&bob_key).unwrap().is_none());
    assert!(alice.store().outbox().unwrap().is_empty());
    assert!(
        alice
            .store()
            .conversation_page(bob_key, None, 10)
            .unwrap()
            .messages
            .is_empty()
    );
    assert!(matches!(
        alice.remove_contact(&bob_key),
        Err(EngineError::UnknownContact(_))
    ));
}
