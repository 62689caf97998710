//! Offline mail through a mailbox node: Alice writes while Bob is offline and leaves; Bob comes back later
//! and gets the message exactly once; Alice later learns it was delivered.

use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::Multiaddr;
use tern_node::api::{Event, MessageStatus};
use tern_node::engine::Engine;
use tern_node::mailbox::server::MailboxConfig;
use tern_node::node::{Node, NodeConfig};
use tern_protocol::IdentityKey;
use tern_testkit::net::{LiveNode, history, loopback_net};
use tern_testkit::profile::{create, open, pair as profiles};
use tern_testkit::wait::{wait_for, wait_status};

/// A node that serves as a mailbox, from its own profile.
async fn mailbox_node(dir: &Path) -> LiveNode {
    tern_testkit::net::mailbox_node(dir, MailboxConfig::default()).await
}

fn user(dir: &Path, mailbox: &Multiaddr) -> (Engine, NodeConfig) {
    let engine = open(dir);
    let config = NodeConfig {
        net: loopback_net(),
        mailboxes: vec![mailbox.clone()],
        ..NodeConfig::default()
    };
    (engine, config)
}

fn pair() -> (
    tempfile::TempDir,
    tempfile::TempDir,
    IdentityKey,
    IdentityKey,
) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (alice, bob) = profiles(a.path(), b.path());
    (a, b, alice.key(), bob.key())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_mail_survives_a_mailbox_restart_and_arrives_once() {
    let mailbox_dir: PathBuf = tempfile::tempdir().unwrap().keep();
    let (a, b, alice_key, bob_key) = pair();
    tokio::time::timeout(Duration::from_secs(180), async {
        let m = mailbox_node(&mailbox_dir).await;

        // Alice writes to offline Bob: the message is deposited, then Alice quits.
        let (engine, config) = user(a.path(), &m.addr);
        let mut alice = LiveNode::start(engine, "alice", config).await;
        let sent = alice
            .node
            .send_text(bob_key, "while you were out".into())
            .await
            .unwrap();
        wait_status(&mut alice.events, sent.id, MessageStatus::Sent).await;
        alice.node.shutdown().await.unwrap();

        // The mailbox restarts (same profile and database) before Bob comes back.
        m.node.shutdown().await.unwrap();
        let m = mailbox_node(&mailbox_dir).await;

        // Bob comes online and fetches.
        let (engine, config) = user(b.path(), &m.addr);
        let mut bob = LiveNode::start(engine, "bob", config).await;
        wait_for(&mut bob.events, "the message", |e| {
            matches!(e, Event::MessageReceived { message, .. } if message.text == "while you were out")
        })
        .await;
        assert_eq!(
            history(&bob.node, alice_key).await,
            vec![("while you were out".to_string(), MessageStatus::Received)]
        );

        // Alice returns and learns, through the mailbox, that Bob got it.
        let (engine, config) = user(a.path(), &m.addr);
        let mut alice = LiveNode::start(engine, "alice", config).await;
        wait_status(&mut alice.events, sent.id, MessageStatus::Delivered).await;

        // Nothing arrives twice: a second fetch round finds nothing new.
        let again = bob.node.status().await.unwrap();
        assert_eq!(again.outbox_len, 0, "Bob's receipt left his outbox");
        assert_eq!(history(&bob.node, alice_key).await.len(), 1);
        for n in [alice.node, bob.node, m.node] {
            n.shutdown().await.unwrap();
        }
    })
    .await
    .expect("offline delivery finished in time");
    std::fs::remove_dir_all(mailbox_dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lan_peer_serving_mailboxes_is_found_without_configuration() {
    let m_dir = tempfile::tempdir().unwrap();
    let (a, b, alice_key, bob_key) = pair();
    tokio::time::timeout(Duration::from_secs(120), async {
        let m = mailbox_node(m_dir.path()).await;
        // No mailbox configured: Alice only knows the mailbox peer as a LAN neighbour.
        let lan = |dir: &Path| {
            let engine = open(dir);
            let config = NodeConfig {
                net: loopback_net(),
                peers: vec![m.addr.clone()],
                ..NodeConfig::default()
            };
            (engine, config)
        };
        let (engine, config) = lan(a.path());
        let mut alice = LiveNode::start(engine, "alice", config).await;
        let sent = alice.node.send_text(bob_key, "left with the LAN mailbox".into()).await.unwrap();
        wait_status(&mut alice.events, sent.id, MessageStatus::Sent).await;
        alice.node.shutdown().await.unwrap();

        let (engine, config) = lan(b.path());
        let mut bob = LiveNode::start(engine, "bob", config).await;
        wait_for(&mut bob.events, "the message", |e| {
            matches!(e, Event::MessageReceived { message, .. } if message.text == "left with the LAN mailbox")
        })
        .await;
        assert_eq!(history(&bob.node, alice_key).await.len(), 1);
        bob.node.shutdown().await.unwrap();
        m.node.shutdown().await.unwrap();
    })
    .await
    .expect("LAN mailbox delivery finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_servers_keeps_the_mailboxes_published_in_the_card() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), "Carol");
    // A server that is never reachable: only its published identity matters here.
    let server: Multiaddr = format!("/ip4/127.0.0.1/tcp/9/p2p/{}", libp2p::PeerId::random())
        .parse()
        .unwrap();
    let published = |dir: &Path| {
        let engine = open(dir);
        engine.card().details().mailboxes.len()
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let (engine, config) = user(dir.path(), &server);
        let (node, _) = Node::start(engine, config).unwrap();
        node.shutdown().await.unwrap();
        assert_eq!(published(dir.path()), 1);

        // A later run (say `tern-node send` without --bootstrap) names no server.
        let engine = open(dir.path());
        let config = NodeConfig {
            net: loopback_net(),
            ..NodeConfig::default()
        };
        let (node, _) = Node::start(engine, config).unwrap();
        node.shutdown().await.unwrap();
        assert_eq!(published(dir.path()), 1, "the card still names the server");
    })
    .await
    .expect("runs finished in time");
}
