//! Offline mail through community bootstrap nodes: Bob's mail is deposited with both of his mailbox
//! servers; one of them dies; Bob still gets the message, exactly once.

use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use tern_node::api::{Event, MessageStatus};
use tern_node::net::NetConfig;
use tern_node::node::{Node, NodeConfig};
use tern_protocol::MailboxNode;
use tern_testkit::net::{LOOPBACK_TCP, history, loopback_net, net_config, spawn_bootstrap};
use tern_testkit::profile::{create, introduce, open};
use tern_testkit::wait::{wait_for, wait_status};

fn user_config(mailboxes: Vec<Multiaddr>) -> NodeConfig {
    NodeConfig {
        net: loopback_net(),
        mailboxes,
        ..NodeConfig::default()
    }
}

fn mailbox_node(addr: &Multiaddr) -> MailboxNode {
    let peer = addr
        .iter()
        .find_map(|p| match p {
            Protocol::P2p(peer) => Some(peer),
            _ => None,
        })
        .unwrap();
    MailboxNode {
        peer_id: peer.to_bytes(),
        addresses: vec![addr.to_vec()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_deposited_with_two_bootstrap_nodes_survives_losing_one() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    tokio::time::timeout(Duration::from_secs(180), async {
        let (s1, a1) = spawn_bootstrap(dirs[0].path(), Vec::new()).await;
        let (s2, a2) = spawn_bootstrap(dirs[1].path(), vec![a1.clone()]).await;

        // Bob publishes both servers in his card before Alice adds him.
        let mut alice = create(dirs[2].path(), "Alice");
        let mut bob = create(dirs[3].path(), "Bob");
        bob.set_mailboxes(vec![mailbox_node(&a1), mailbox_node(&a2)]).unwrap();
        // Alice's too, as her node will publish them: a change at start would send Bob a card update
        // (docs/protocol.md §12.3), a second envelope on each server.
        alice.set_mailboxes(vec![mailbox_node(&a1)]).unwrap();
        introduce(&mut [&mut alice, &mut bob]);
        let (alice_key, bob_key) = (alice.key(), bob.key());
        drop(bob);

        // Alice (whose own mail lives on s1) writes to offline Bob; the message lands on both servers.
        let (a, mut a_events) = Node::start(alice, user_config(vec![a1.clone()])).unwrap();
        let sent = a.send_text(bob_key, "kept twice, delivered once".into()).await.unwrap();
        wait_status(&mut a_events, sent.id, MessageStatus::Sent).await;
        a.shutdown().await.unwrap();

        // s1 dies. Bob comes online with both servers configured and reads from the one that is left.
        s1.shutdown().await.unwrap();
        let bob = open(dirs[3].path());
        let (b, mut b_events) = Node::start(bob, user_config(vec![a1.clone(), a2.clone()])).unwrap();
        let got = wait_for(&mut b_events, "the message", |e| matches!(e, Event::MessageReceived { .. })).await;
        let Event::MessageReceived { message, .. } = got else { unreachable!() };
        assert_eq!(message.text, "kept twice, delivered once");
        assert_eq!(message.id, sent.id);

        // s1 comes back with its copy; Bob reads it too, and stores nothing new.
        let (s1, a1_again) = spawn_bootstrap(dirs[0].path(), Vec::new()).await;
        b.dial(a1_again.clone()).await.unwrap();
        wait_for(&mut b_events, "the second server read", |e| {
            matches!(e, Event::MailboxChecked { server, envelopes } if *server == s1.peer_id() && *envelopes == 1)
        })
        .await;
        assert_eq!(history(&b, alice_key).await.len(), 1, "the copy from the second server was a duplicate");

        b.shutdown().await.unwrap();
        s1.shutdown().await.unwrap();
        s2.shutdown().await.unwrap();
    })
    .await
    .expect("federated offline delivery finished in time");
}

fn wan_config(bootstrap: &Multiaddr) -> NodeConfig {
    NodeConfig {
        net: NetConfig {
            bootstrap: vec![bootstrap.clone()],
            ..net_config(LOOPBACK_TCP, false)
        },
        mailboxes: vec![bootstrap.clone()],
        ..NodeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_with_an_old_card_finds_the_mailboxes_through_the_dht() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    tokio::time::timeout(Duration::from_secs(180), async {
        let (s1, a1) = spawn_bootstrap(dirs[0].path(), Vec::new()).await;
        let (s2, a2) = spawn_bootstrap(dirs[1].path(), vec![a1.clone()]).await;

        // The cards are exchanged before either side names a mailbox.
        let mut alice = create(dirs[2].path(), "Alice");
        let mut bob = create(dirs[3].path(), "Bob");
        introduce(&mut [&mut alice, &mut bob]);
        let (alice_key, bob_key) = (alice.key(), bob.key());

        // Bob's mail lives on s2 only; he publishes that in the DHT and goes offline.
        let (b, mut b_events) = Node::start(bob, wan_config(&a2)).unwrap();
        wait_for(&mut b_events, "the record published", |e| matches!(e, Event::MailboxRecordPublished)).await;
        b.shutdown().await.unwrap();

        // Alice only knows s1. Her card copy of Bob names no mailbox, so she looks Bob up in the DHT.
        let (a, mut a_events) = Node::start(alice, wan_config(&a1)).unwrap();
        let sent = a.send_text(bob_key, "found you through the DHT".into()).await.unwrap();
        wait_status(&mut a_events, sent.id, MessageStatus::Sent).await;
        a.shutdown().await.unwrap();

        // Bob, reading s2 only, gets it.
        let bob = open(dirs[3].path());
        let (b, mut b_events) = Node::start(bob, wan_config(&a2)).unwrap();
        wait_for(&mut b_events, "the message", |e| {
            matches!(e, Event::MessageReceived { message, .. } if message.text == "found you through the DHT")
        })
        .await;
        assert_eq!(history(&b, alice_key).await.len(), 1);
        b.shutdown().await.unwrap();
        s1.shutdown().await.unwrap();
        s2.shutdown().await.unwrap();
    })
    .await
    .expect("DHT lookup delivery finished in time");
}
