//! A long read (a search through an 80,000-message history, seconds in a debug build) runs on a store reader off the event loop:
//! while it scans, the loop keeps sending, receiving and acknowledging.

use tern_node::api::Message;
use tern_node::api::{Event, MessageStatus};
use tern_protocol::MessageId;
use tern_testkit::net::{LiveNode, loopback_node};
use tern_testkit::profile::pair;
use tern_testkit::wait::{received, wait_for, wait_status};

/// Messages in Alice's history with Bob, all scanned by the search. The scan must outlast a delivery by
/// far (about 8 s in a debug build here, the delivery milliseconds); filling them is most of the test's
/// time.
const HISTORY: u64 = 80_000;
/// Rows written per commit while filling the history.
const ROWS_PER_COMMIT: u64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_delivered_and_acknowledged_while_a_search_scans_80_000_messages() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let bob_key = bob.key();

    // Alice's history with Bob; only the oldest message holds the word searched for.
    for chunk in 0..HISTORY / ROWS_PER_COMMIT {
        let mut batch = alice.store_mut().batch().unwrap();
        for i in chunk * ROWS_PER_COMMIT..(chunk + 1) * ROWS_PER_COMMIT {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&i.to_be_bytes());
            let at = 1_700_000_000_000 + i;
            let text = if i == 0 {
                "the needle is here".to_owned()
            } else {
                // No letters or digits: no search tokens, so filling the history costs what it did
                // before the index (the scan below reads these rows all the same).
                "· · · — · · ·".to_owned()
            };
            batch
                .insert_message(&Message {
                    id: MessageId(id),
                    conversation: (bob_key).into(),
                    sender: (i % 2 != 0).then_some(bob_key),
                    system: false,
                    sent_at_ms: at,
                    received_at_ms: at,
                    text,
                    status: MessageStatus::Read,
                    recipients: Vec::new(),
                    reply_to: None,
                    attachment: None,
                })
                .unwrap();
        }
        batch.commit().unwrap();
    }

    let LiveNode {
        node: bob_node,
        events: mut bob_events,
        addr: bob_addr,
        ..
    } = LiveNode::start(bob, "bob", loopback_node()).await;
    let LiveNode {
        node: alice_node,
        events: mut alice_events,
        ..
    } = LiveNode::start(alice, "alice", loopback_node()).await;
    alice_node.dial(bob_addr).await.unwrap();
    wait_for(&mut alice_events, "Bob online", |e| {
        matches!(e, Event::ContactOnline { online: true, .. })
    })
    .await;

    // The search asks the loop for a reader before the message is queued (its command is sent on the
    // first poll), then scans on a blocking thread: a query of two letters gives the search index no
    // token (docs/protocol.md §13.1), so it reads every message back to the oldest.
    let searcher = alice_node.clone();
    let mut search = Box::pin(async move { searcher.search("NE".into(), 10).await });
    assert!(futures::poll!(&mut search).is_pending());
    let search = tokio::spawn(search);

    let sent = alice_node
        .send_text(bob_key, "sent during the search".into())
        .await
        .unwrap();
    received(&mut bob_events, "sent during the search").await;
    wait_status(&mut alice_events, sent.id, MessageStatus::Delivered).await;
    assert!(
        !search.is_finished(),
        "the search was over before the message was delivered: it did not overlap the delivery"
    );

    let found = search.await.unwrap().unwrap();
    assert_eq!(found.len(), 1, "one message holds the needle");
    assert_eq!(found[0].text, "the needle is here");
    alice_node.shutdown().await.unwrap();
    bob_node.shutdown().await.unwrap();
}
