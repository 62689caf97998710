//! Read receipts and typing indicators off (issue 16, `tern_node::privacy`): off works both ways, as in
//! Signal. Each test runs the same exchange with the switch on and off, so it fails if the switch
//! changes nothing.

use std::path::Path;

use tern_node::api::MessageStatus;
use tern_node::backup::restore;
use tern_node::engine::{Engine, Received};
use tern_node::privacy::PrivacySettings;
use tern_node::profile::Profile;
use tern_node::store::KdfParams;
use tern_protocol::message::Body;
use tern_testkit::net::{LiveNode, loopback_node};
use tern_testkit::profile::{create, introduce, open, password};

const OFF: PrivacySettings = PrivacySettings {
    read_receipts: false,
    typing: false,
};

/// Alice and Bob, contacts of each other, with Alice's switches set to `alice`.
fn pair(root: &Path, alice: PrivacySettings) -> (Engine, Engine) {
    let mut a = create(&root.join("alice"), "Alice");
    let mut b = create(&root.join("bob"), "Bob");
    introduce(&mut [&mut a, &mut b]);
    a.set_privacy(alice).unwrap();
    (a, b)
}

fn queued_for(engine: &Engine, to: &Engine) -> usize {
    engine.store().outbox_for(&to.key(), 100).unwrap().len()
}

/// What Alice queues for Bob when she reads his text: a read receipt only with read receipts on.
fn read_receipts_sent(settings: PrivacySettings) -> usize {
    let root = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = pair(root.path(), settings);
    let (text, out) = bob.send_text(&alice.key(), "hi").unwrap();
    alice.receive(&out.envelope).unwrap();
    let before = queued_for(&alice, &bob);
    let read = alice.mark_read(&bob.key(), &[text.id]).unwrap();
    assert_eq!(read, [text.id], "the message is read here either way");
    let message = alice.store().message(bob.key(), &text.id).unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Read);
    queued_for(&alice, &bob) - before
}

#[test]
fn with_read_receipts_off_reading_sends_no_receipt() {
    assert_eq!(read_receipts_sent(PrivacySettings::default()), 1);
    assert_eq!(read_receipts_sent(OFF), 0);
}

/// The status Alice's text reaches when Bob reads it and his read receipt comes back.
fn status_after_bobs_read_receipt(settings: PrivacySettings) -> MessageStatus {
    let root = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = pair(root.path(), settings);
    let (text, out) = alice.send_text(&bob.key(), "hello").unwrap();
    bob.receive(&out.envelope).unwrap();
    bob.mark_read(&alice.key(), &[text.id]).unwrap();
    let receipts: Vec<_> = bob
        .outbox_due(u64::MAX, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.recipient == alice.key())
        .collect();
    assert!(!receipts.is_empty(), "Bob's read receipt is queued");
    for entry in receipts {
        alice.receive(&entry.envelope).unwrap();
    }
    alice
        .store()
        .message(bob.key(), &text.id)
        .unwrap()
        .unwrap()
        .status
}

#[test]
fn with_read_receipts_off_a_contacts_read_receipt_shows_as_delivered() {
    assert_eq!(
        status_after_bobs_read_receipt(PrivacySettings::default()),
        MessageStatus::Read
    );
    assert_eq!(
        status_after_bobs_read_receipt(OFF),
        MessageStatus::Delivered
    );
}

#[test]
fn with_typing_off_none_is_sent_and_none_is_shown() {
    let root = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = pair(root.path(), PrivacySettings::default());
    let envelope = bob.send_typing(&alice.key(), true).unwrap().unwrap();
    assert!(matches!(
        alice.receive(&envelope.encode()).unwrap(),
        Received::Typing { typing: true, .. }
    ));
    assert!(
        alice.send_typing(&bob.key(), true).unwrap().is_some(),
        "on: Alice's typing is sealed"
    );

    let typing_off = PrivacySettings {
        read_receipts: true,
        typing: false,
    };
    alice.set_privacy(typing_off).unwrap();
    assert!(
        alice.send_typing(&bob.key(), true).unwrap().is_none(),
        "off: nothing is sealed"
    );
    let (_, envelope) = bob
        .send_control(&alice.key(), Body::Typing(true), false)
        .unwrap();
    assert!(matches!(
        alice.receive(&envelope.encode()).unwrap(),
        Received::Dropped
    ));
    // A text after it still arrives: only typing is dropped.
    let (_, out) = bob.send_text(&alice.key(), "still here").unwrap();
    assert!(matches!(
        alice.receive(&out.envelope).unwrap(),
        Received::Message { .. }
    ));
}

#[test]
fn the_switches_survive_a_restart_and_a_backup() {
    let root = tempfile::tempdir().unwrap();
    let (alice, _bob) = pair(root.path(), OFF);
    drop(alice);
    let alice = open(&root.path().join("alice"));
    assert_eq!(alice.privacy(), OFF);

    let archive = root.path().join("alice.tern");
    let (code, _) = Profile::from(alice).backup(&archive).unwrap();
    let dest = root.path().join("restored");
    restore(
        &archive,
        &code,
        &dest,
        &password(),
        KdfParams::INSECURE_FOR_TESTS,
    )
    .unwrap();
    assert_eq!(open(&dest).privacy(), OFF);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_handle_reads_and_changes_the_switches() {
    let root = tempfile::tempdir().unwrap();
    let alice = create(&root.path().join("alice"), "Alice");
    let a = LiveNode::start(alice, "alice", loopback_node()).await;
    assert_eq!(a.node.privacy().await.unwrap(), PrivacySettings::default());
    a.node.set_privacy(OFF).await.unwrap();
    assert_eq!(a.node.privacy().await.unwrap(), OFF);
    let profile = a.node.stop().await.unwrap();
    assert_eq!(profile.privacy(), OFF);
}
