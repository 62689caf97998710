//! Offline mail through a mailbox node: Alice writes while Bob is offline and leaves; Bob comes back later
//! and gets the message exactly once; Alice later learns it was delivered.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{Event as RrEvent, Message};
use libp2p::swarm::SwarmEvent;
use tern_node::api::{Event, MessageStatus};
use tern_node::engine::{Engine, now_ms};
use tern_node::mailbox::server::MailboxConfig;
use tern_node::mailbox::{MailboxRequest, MailboxResponse, MailboxServer, Refusal};
use tern_node::net::{ClientBehaviourEvent, NetConfig, build_swarm};
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

/// A mailbox server from before paged fetches: a paged fetch is an unreadable request to it (`Refused 1`,
/// then the connection closed, as protocol.md §17.2 says); everything else a real [`MailboxServer`]
/// answers. Returns its address and the peers whose paged fetches it refused, one entry per refusal.
async fn old_mailbox_server(
    dir: &Path,
) -> (
    Multiaddr,
    tokio::sync::watch::Receiver<Vec<libp2p::PeerId>>,
    tokio::task::JoinHandle<()>,
) {
    let net = NetConfig {
        serve_mailbox: true,
        ..loopback_net()
    };
    let mut swarm = build_swarm(&[0x0d; 32], &net).unwrap();
    let me = *swarm.local_peer_id();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address.with(Protocol::P2p(me));
        }
    };
    let mut server = MailboxServer::open(
        &dir.join("old.redb"),
        me.to_bytes(),
        MailboxConfig::default(),
    )
    .unwrap();
    let (refused, seen) = tokio::sync::watch::channel(Vec::new());
    let task = tokio::spawn(async move {
        loop {
            let SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(RrEvent::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            })) = swarm.select_next_some().await
            else {
                continue;
            };
            let unreadable = matches!(
                request,
                MailboxRequest::FetchPage { .. } | MailboxRequest::Invalid
            );
            let response = if unreadable {
                refused.send_modify(|peers| peers.push(peer));
                MailboxResponse::Refused(Refusal::Malformed)
            } else {
                server.handle(&peer, request, now_ms() / 1000)
            };
            let _ = swarm
                .behaviour_mut()
                .mailbox
                .send_response(channel, response);
            if unreadable {
                let _ = swarm.disconnect_peer_id(peer);
            }
        }
    });
    (addr, seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_held_by_a_server_without_paged_fetches_arrives_by_fetch_and_ack() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, alice_key, bob_key) = pair();
    tokio::time::timeout(Duration::from_secs(120), async {
        let (addr, refused, server) = old_mailbox_server(dir.path()).await;
        let (engine, config) = user(a.path(), &addr);
        let mut alice = LiveNode::start(engine, "alice", config).await;
        let texts = ["one", "two", "three"];
        for text in texts {
            let sent = alice.node.send_text(bob_key, text.into()).await.unwrap();
            wait_status(&mut alice.events, sent.id, MessageStatus::Sent).await;
        }
        alice.node.shutdown().await.unwrap();

        // Bob's paged fetch is refused (and costs the connection); he fetches again with Fetch and Ack.
        let (engine, config) = user(b.path(), &addr);
        let mut bob = LiveNode::start(engine, "bob", config).await;
        for text in texts {
            wait_for(
                &mut bob.events,
                "a message",
                |e| matches!(e, Event::MessageReceived { message, .. } if message.text == text),
            )
            .await;
        }
        wait_for(&mut bob.events, "the fetch to end", |e| {
            matches!(e, Event::MailboxChecked { .. })
        })
        .await;
        // Alice's node and Bob's each tried one paged fetch (Alice's own mail), then none.
        let peers = refused.borrow().clone();
        let distinct: std::collections::HashSet<_> = peers.iter().collect();
        assert!(
            !peers.is_empty() && distinct.len() == peers.len(),
            "one paged fetch per node: {peers:?}"
        );
        assert_eq!(history(&bob.node, alice_key).await.len(), 3);
        bob.node.shutdown().await.unwrap();
        server.abort();
    })
    .await
    .expect("the fallback finished in time");
}
