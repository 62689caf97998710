//! Contacts who share only a bootstrap node (no `--peer`, no mDNS) meet directly: each finds the other's
//! address record in the DHT, they see each other online with no message sent, and while both run their
//! messages never take the mailbox; a contact reachable only through the bootstrap node's relay is reached
//! through it.

use std::path::Path;
use std::time::Duration;

use tern_node::api::{Event, MessageStatus, Reach};
use tern_node::node::NodeConfig;
use tern_protocol::IdentityKey;
use tern_testkit::net::{
    LiveNode, internet_node, relay_only_node, server_metric, spawn_relay_bootstrap,
};
use tern_testkit::profile::pair_with_mailbox;
use tern_testkit::wait::{poll_until, received, wait_for, wait_status};
use tracing::Instrument;

/// How long two contacts may take to see each other online once both run.
const PRESENCE_WITHIN: Duration = Duration::from_secs(2);
/// The bound for contacts who start at the same moment.
const STARTING_TOGETHER_WITHIN: Duration = Duration::from_secs(5);
const WHOLE_TEST: Duration = Duration::from_secs(120);

const DEPOSITS: &str = "tern_bootstrap_mailbox_deposits_total";

/// [`internet_node`] with a short idle timeout, so that "a minute of quiet" takes a fraction of a second.
fn quiet(boot: &libp2p::Multiaddr) -> NodeConfig {
    let mut config = internet_node(boot);
    config.net.idle_timeout = Duration::from_millis(300);
    config
}

async fn start(dir: &Path, name: &str, config: NodeConfig) -> LiveNode {
    LiveNode::start(tern_testkit::profile::open(dir), name, config)
        .instrument(tracing::info_span!("node", name))
        .await
}

async fn published(node: &mut LiveNode) {
    wait_for(&mut node.events, "the address record stored", |e| {
        matches!(e, Event::AddressesPublished { .. })
    })
    .await;
}

async fn sees_online(node: &mut LiveNode, contact: IdentityKey, what: &str) {
    tokio::time::timeout(
        PRESENCE_WITHIN,
        wait_for(
            &mut node.events,
            what,
            |e| matches!(e, Event::ContactOnline { contact: c, online: true, .. } if *c == contact),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("{what}: not within {PRESENCE_WITHIN:?}"));
}

/// Sends a message each way and waits until each sender learns it was delivered; then Alice types and Bob
/// sees it, and Bob reads and Alice sees that.
async fn exchange(alice: &mut LiveNode, bob: &mut LiveNode) {
    let to_bob = alice
        .node
        .send_text(bob.key, "hello over the internet".into())
        .await
        .unwrap();
    received(&mut bob.events, "hello over the internet").await;
    wait_status(&mut alice.events, to_bob.id, MessageStatus::Delivered).await;
    let to_alice = bob
        .node
        .send_text(alice.key, "hello back".into())
        .await
        .unwrap();
    received(&mut alice.events, "hello back").await;
    wait_status(&mut bob.events, to_alice.id, MessageStatus::Delivered).await;

    let alice_key = alice.key;
    alice.node.typing(bob.key, true).await.unwrap();
    wait_for(
        &mut bob.events,
        "alice typing",
        |e| matches!(e, Event::Typing { contact, typing: true, .. } if *contact == alice_key),
    )
    .await;
    bob.node.mark_all_read(alice_key.into()).await.unwrap();
    wait_status(&mut alice.events, to_bob.id, MessageStatus::Read).await;
}

async fn reach_of(node: &LiveNode, contact: IdentityKey) -> Option<Reach> {
    let status = node.node.status().await.unwrap();
    status
        .contacts
        .iter()
        .find(|c| c.contact == contact)
        .map(|c| c.reach)
}

async fn shutdown(nodes: Vec<LiveNode>) {
    for n in nodes {
        n.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_sharing_only_a_bootstrap_node_meet_directly_and_skip_the_mailbox() {
    let (s, a, b) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    tokio::time::timeout(WHOLE_TEST, async {
        let (server, boot) = spawn_relay_bootstrap(s.path()).await;
        drop(pair_with_mailbox(a.path(), b.path(), &boot));
        let mut alice = start(a.path(), "alice", internet_node(&boot)).await;
        published(&mut alice).await;

        // Bob starts; neither sends anything, and both see the other online within the bound.
        let mut bob = start(b.path(), "bob", internet_node(&boot)).await;
        let (alice_key, bob_key) = (alice.key, bob.key);
        sees_online(&mut bob, alice_key, "bob sees alice online").await;
        sees_online(&mut alice, bob_key, "alice sees bob online").await;
        assert!(
            bob.node
                .status()
                .await
                .unwrap()
                .published_addrs
                .iter()
                .all(|a| !a.is_empty()),
            "published addresses are real addresses"
        );

        // The connection is direct (loopback), not through the bootstrap node.
        assert_eq!(reach_of(&alice, bob_key).await, Some(Reach::Direct));
        assert_eq!(reach_of(&bob, alice_key).await, Some(Reach::Direct));

        // Messages both ways, while both are online: none through the mailbox.
        exchange(&mut alice, &mut bob).await;
        assert_eq!(server_metric(&server, DEPOSITS).await, 0.0, "no deposit");
        assert_eq!(
            server_metric(&server, "tern_bootstrap_mailbox_envelopes").await,
            0.0
        );
        shutdown(vec![alice, bob]).await;
        server.shutdown().await.unwrap();
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_reachable_only_through_a_relay_gets_messages_over_the_circuit() {
    let (s, a, b) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    tokio::time::timeout(WHOLE_TEST, async {
        let (server, boot) = spawn_relay_bootstrap(s.path()).await;
        drop(pair_with_mailbox(a.path(), b.path(), &boot));
        // Bob listens only through the bootstrap node's relay and publishes only that circuit.
        let mut bob = start(b.path(), "bob", relay_only_node(&boot)).await;
        published(&mut bob).await;
        let published_addrs = bob.node.status().await.unwrap().published_addrs;
        assert!(!published_addrs.is_empty());
        assert!(
            published_addrs
                .iter()
                .all(|a| a.to_string().contains("/p2p-circuit")),
            "only circuits: {published_addrs:?}"
        );

        let mut alice = start(a.path(), "alice", internet_node(&boot)).await;
        let (alice_key, bob_key) = (alice.key, bob.key);
        sees_online(&mut alice, bob_key, "alice sees bob online").await;
        sees_online(&mut bob, alice_key, "bob sees alice online").await;
        assert_eq!(reach_of(&alice, bob_key).await, Some(Reach::Relayed));
        assert_eq!(reach_of(&bob, alice_key).await, Some(Reach::Relayed));

        exchange(&mut alice, &mut bob).await;
        assert_eq!(server_metric(&server, DEPOSITS).await, 0.0, "no deposit");
        // Still only through the relay: the messages crossed the circuit.
        assert_eq!(reach_of(&alice, bob_key).await, Some(Reach::Relayed));
        shutdown(vec![alice, bob]).await;
        server.shutdown().await.unwrap();
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_connection_to_a_contact_outlives_the_idle_timeout_and_one_to_a_stranger_does_not()
{
    let (s, a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    drop(tern_testkit::profile::create(c.path(), "Carol"));
    tokio::time::timeout(WHOLE_TEST, async {
        let (server, boot) = spawn_relay_bootstrap(s.path()).await;
        drop(pair_with_mailbox(a.path(), b.path(), &boot));
        let mut alice = start(a.path(), "alice", quiet(&boot)).await;
        published(&mut alice).await;
        let mut bob = start(b.path(), "bob", quiet(&boot)).await;
        let bob_key = bob.key;
        sees_online(&mut alice, bob_key, "alice sees bob online").await;
        sees_online(&mut bob, alice.key, "bob sees alice online").await;

        // Carol, a stranger, connects to Alice and says nothing: that connection idles out...
        let carol = start(c.path(), "carol", quiet(&boot)).await;
        let carol_peer = carol.node.peer_id();
        carol.node.dial(alice.addr.clone()).await.unwrap();
        let connected = async || alice.node.status().await.unwrap().connected_peers;
        let seen = poll_until(Duration::from_secs(10), connected, |p| p.contains(&carol_peer)).await;
        assert!(seen.contains(&carol_peer), "carol connected");
        let after = poll_until(Duration::from_secs(10), connected, |p| !p.contains(&carol_peer)).await;
        assert!(!after.contains(&carol_peer), "the stranger's quiet connection was closed");

        // ...while the equally quiet one to Bob, a contact, is still up and never went down.
        assert!(after.contains(&bob.node.peer_id()), "still connected to bob");
        while let Ok(event) = alice.events.try_recv() {
            assert!(
                !matches!(event, Event::ContactOnline { contact, online: false, .. } if contact == bob_key),
                "bob went offline"
            );
        }
        shutdown(vec![alice, bob, carol]).await;
        server.shutdown().await.unwrap();
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_starting_together_find_each_other_without_a_message() {
    let (s, a, b) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    tokio::time::timeout(WHOLE_TEST, async {
        let (server, boot) = spawn_relay_bootstrap(s.path()).await;
        drop(pair_with_mailbox(a.path(), b.path(), &boot));
        // Neither record is in the DHT when the other first looks: the lookups are asked again.
        let (alice, bob) = tokio::join!(
            start(a.path(), "alice", internet_node(&boot)),
            start(b.path(), "bob", internet_node(&boot))
        );
        let (mut alice, mut bob) = (alice, bob);
        let (alice_key, bob_key) = (alice.key, bob.key);
        for (node, contact, what) in [
            (&mut alice, bob_key, "alice sees bob online"),
            (&mut bob, alice_key, "bob sees alice online"),
        ] {
            tokio::time::timeout(
                STARTING_TOGETHER_WITHIN,
                wait_for(&mut node.events, what, |e| {
                    matches!(e, Event::ContactOnline { contact: c, online: true, .. } if *c == contact)
                }),
            )
            .await
            .unwrap_or_else(|_| panic!("{what}: not within {STARTING_TOGETHER_WITHIN:?}"));
        }
        shutdown(vec![alice, bob]).await;
        server.shutdown().await.unwrap();
    })
    .await
    .expect("the test finished in time");
}
