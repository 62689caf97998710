//! Offline mail through community bootstrap nodes: Bob's mail is deposited with both of his mailbox
//! servers; one of them dies; Bob still gets the message, exactly once.

use std::path::Path;
use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use tern_bootstrap::{Config, Server};
use tern_node::api::Event;
use tern_node::api::MessageStatus;
use tern_node::engine::Engine;
use tern_node::net::NetConfig;
use tern_node::node::{Node, NodeConfig};
use tern_node::store::{KdfParams, Password};
use tern_protocol::{IdentityKey, MailboxNode};
use tokio::sync::broadcast;

const TIMEOUT: Duration = Duration::from_secs(60);

fn password() -> Password {
    Password::new("pw".into())
}

async fn bootstrap(dir: &Path, peers: Vec<Multiaddr>) -> (Server, Multiaddr) {
    let config = Config {
        data_dir: dir.to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers,
        ..Config::default()
    };
    let server = Server::spawn(config).await.unwrap();
    let addr = server
        .listen_addrs()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
        .expect("a TCP listen address");
    (server, addr)
}

async fn wait_for(
    events: &mut broadcast::Receiver<Event>,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    tokio::time::timeout(TIMEOUT, async {
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

fn user_config(mailboxes: Vec<Multiaddr>) -> NodeConfig {
    NodeConfig {
        net: NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            lan_only: true,
            mdns: false,
            ..NetConfig::default()
        },
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

async fn history_len(node: &Node, with: IdentityKey) -> usize {
    node.page(with.into(), None, 100)
        .await
        .unwrap()
        .messages
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_deposited_with_two_bootstrap_nodes_survives_losing_one() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    tokio::time::timeout(Duration::from_secs(180), async {
        let (s1, a1) = bootstrap(dirs[0].path(), Vec::new()).await;
        let (s2, a2) = bootstrap(dirs[1].path(), vec![a1.clone()]).await;

        // Bob publishes both servers in his card before Alice adds him.
        let mut alice = Engine::create(dirs[2].path(), "Alice", &password(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let mut bob = Engine::create(dirs[3].path(), "Bob", &password(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        bob.set_mailboxes(vec![mailbox_node(&a1), mailbox_node(&a2)]).unwrap();
        alice.add_contact(&bob.card().invite_link(), None).unwrap();
        bob.add_contact(&alice.card().invite_link(), None).unwrap();
        let (alice_key, bob_key) = (alice.key(), bob.key());
        drop(bob);

        // Alice (whose own mail lives on s1) writes to offline Bob; the message lands on both servers.
        let (a, mut a_events) = Node::start(alice, user_config(vec![a1.clone()])).unwrap();
        let sent = a.send_text(bob_key, "kept twice, delivered once".into()).await.unwrap();
        wait_for(&mut a_events, "deposited", |e| {
            matches!(e, Event::StatusChanged { id, status: MessageStatus::Sent, .. } if *id == sent.id)
        })
        .await;
        a.shutdown().await.unwrap();

        // s1 dies. Bob comes online with both servers configured and reads from the one that is left.
        s1.shutdown().await.unwrap();
        let bob = Engine::open(dirs[3].path(), &password()).unwrap();
        let (b, mut b_events) = Node::start(bob, user_config(vec![a1.clone(), a2.clone()])).unwrap();
        let got = wait_for(&mut b_events, "the message", |e| matches!(e, Event::MessageReceived { .. })).await;
        let Event::MessageReceived { message, .. } = got else { unreachable!() };
        assert_eq!(message.text, "kept twice, delivered once");
        assert_eq!(message.id, sent.id);

        // s1 comes back with its copy; Bob reads it too, and stores nothing new.
        let (s1, a1_again) = bootstrap(dirs[0].path(), Vec::new()).await;
        b.dial(a1_again.clone()).await.unwrap();
        wait_for(&mut b_events, "the second server read", |e| {
            matches!(e, Event::MailboxChecked { server, envelopes } if *server == s1.peer_id() && *envelopes == 1)
        })
        .await;
        assert_eq!(history_len(&b, alice_key).await, 1, "the copy from the second server was a duplicate");

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
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            lan_only: false,
            mdns: false,
            bootstrap: vec![bootstrap.clone()],
            ..NetConfig::default()
        },
        mailboxes: vec![bootstrap.clone()],
        ..NodeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_with_an_old_card_finds_the_mailboxes_through_the_dht() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    tokio::time::timeout(Duration::from_secs(180), async {
        let (s1, a1) = bootstrap(dirs[0].path(), Vec::new()).await;
        let (s2, a2) = bootstrap(dirs[1].path(), vec![a1.clone()]).await;

        // The cards are exchanged before either side names a mailbox.
        let mut alice = Engine::create(dirs[2].path(), "Alice", &password(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let mut bob = Engine::create(dirs[3].path(), "Bob", &password(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        alice.add_contact(&bob.card().invite_link(), None).unwrap();
        bob.add_contact(&alice.card().invite_link(), None).unwrap();
        let (alice_key, bob_key) = (alice.key(), bob.key());

        // Bob's mail lives on s2 only; he publishes that in the DHT and goes offline.
        let (b, mut b_events) = Node::start(bob, wan_config(&a2)).unwrap();
        wait_for(&mut b_events, "the record published", |e| matches!(e, Event::MailboxRecordPublished)).await;
        b.shutdown().await.unwrap();

        // Alice only knows s1. Her card copy of Bob names no mailbox, so she looks Bob up in the DHT.
        let (a, mut a_events) = Node::start(alice, wan_config(&a1)).unwrap();
        let sent = a.send_text(bob_key, "found you through the DHT".into()).await.unwrap();
        wait_for(&mut a_events, "deposited", |e| {
            matches!(e, Event::StatusChanged { id, status: MessageStatus::Sent, .. } if *id == sent.id)
        })
        .await;
        a.shutdown().await.unwrap();

        // Bob, reading s2 only, gets it.
        let bob = Engine::open(dirs[3].path(), &password()).unwrap();
        let (b, mut b_events) = Node::start(bob, wan_config(&a2)).unwrap();
        wait_for(&mut b_events, "the message", |e| {
            matches!(e, Event::MessageReceived { message, .. } if message.text == "found you through the DHT")
        })
        .await;
        assert_eq!(history_len(&b, alice_key).await, 1);
        b.shutdown().await.unwrap();
        s1.shutdown().await.unwrap();
        s2.shutdown().await.unwrap();
    })
    .await
    .expect("DHT lookup delivery finished in time");
}
