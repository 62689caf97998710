//! A long read (a search through a 200,000-message history) runs on a store reader off the event loop:
//! while it scans, the loop keeps sending, receiving and acknowledging.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use tern_node::api::{Event, MessageStatus};
use tern_node::engine::Engine;
use tern_node::net::NetConfig;
use tern_node::node::{Node, NodeConfig};
use tern_node::store::{self, KdfParams, MessageRecord, Password};
use tern_protocol::MessageId;
use tokio::sync::broadcast;

/// Messages in Alice's history with Bob, all scanned by the search.
const HISTORY: u64 = 200_000;
/// Rows written per commit while filling the history.
const ROWS_PER_COMMIT: u64 = 20_000;

fn password() -> Password {
    Password::new("correct horse battery staple".into())
}

/// Loopback TCP only, no mDNS.
fn loopback() -> NodeConfig {
    NodeConfig {
        net: NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            lan_only: true,
            mdns: false,
            ..NetConfig::default()
        },
        ..NodeConfig::default()
    }
}

async fn next(
    events: &mut broadcast::Receiver<Event>,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("node stopped before {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_delivered_and_acknowledged_while_a_search_scans_200_000_messages() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let kdf = KdfParams::INSECURE_FOR_TESTS;
    let mut alice = Engine::create(dirs.0.path(), "Alice", &password(), kdf).unwrap();
    let mut bob = Engine::create(dirs.1.path(), "Bob", &password(), kdf).unwrap();
    alice.add_contact(&bob.card().invite_link(), None).unwrap();
    bob.add_contact(&alice.card().invite_link(), None).unwrap();
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
                format!("history line {i}")
            };
            batch
                .insert_message(&MessageRecord {
                    id: MessageId(id),
                    conversation: bob_key,
                    outgoing: i % 2 == 0,
                    sent_at_ms: at,
                    received_at_ms: at,
                    text,
                    status: store::MessageStatus::Read,
                })
                .unwrap();
        }
        batch.commit().unwrap();
    }

    let (bob_node, mut bob_events) = Node::start(bob, loopback()).unwrap();
    let Event::Listening { address } = next(&mut bob_events, "Bob listening", |e| {
        matches!(e, Event::Listening { .. })
    })
    .await
    else {
        unreachable!()
    };
    let bob_addr = address.with(Protocol::P2p(bob_node.peer_id()));
    let (alice_node, mut alice_events) = Node::start(alice, loopback()).unwrap();
    alice_node.dial(bob_addr).await.unwrap();
    next(&mut alice_events, "Bob online", |e| {
        matches!(e, Event::ContactOnline { online: true, .. })
    })
    .await;

    // The search asks the loop for a reader before the message is queued (its command is sent on the
    // first poll), then scans on a blocking thread.
    let searcher = alice_node.clone();
    let mut search = Box::pin(async move { searcher.search("NEEDLE".into(), 10).await });
    assert!(futures::poll!(&mut search).is_pending());
    let search = tokio::spawn(search);

    let sent = alice_node
        .send_text(bob_key, "sent during the search".into())
        .await
        .unwrap();
    next(&mut bob_events, "Bob stores the message", |e| {
        matches!(e, Event::MessageReceived { message, .. } if message.text == "sent during the search")
    })
    .await;
    next(&mut alice_events, "Bob's acknowledgement", |e| {
        matches!(e, Event::StatusChanged { id, status: MessageStatus::Delivered, .. } if *id == sent.id)
    })
    .await;
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
