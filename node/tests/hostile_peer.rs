//! The hostile-peer harness against a live node: Bob runs a real `Node` (serving a LAN mailbox too), Alice
//! is his honest contact on another real `Node`, and Mallory is a bare libp2p peer that speaks
//! `/tern/envelope/1` and `/tern/mailbox/1` with whatever bytes she likes.
//!
//! Mallory tries: oversized frames, truncated frames, random bytes after the handshake, envelopes for
//! a mailbox Bob does not have, expired envelopes, a replay of an envelope Alice sent, a deposit flood into
//! Bob's mailbox server, fetches of someone else's mailbox, and a flood of silent connections. Alice's
//! messages must reach Bob exactly once throughout; Bob's store must gain nothing from Mallory (no contact,
//! no message); the served mailbox must hold no more than the rate limit lets in; and every attack that
//! reaches Bob's event loop must be counted in `NetStatus::refusals` under its kind.

use std::collections::BTreeMap;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tern_node::api::Event;
use tern_node::api::MessageStatus;
use tern_node::engine::Engine;
use tern_node::mailbox::server::MailboxConfig;
use tern_node::mailbox::{MailboxRequest, MailboxResponse, OwnerAuth};
use tern_node::node::{Node, NodeConfig};
use tern_protocol::envelope::MAX_ENVELOPE_LEN;
use tern_protocol::{Envelope, Identity, IdentityKey};
use tern_testkit::client::Client;
use tern_testkit::mail::now_s;
use tern_testkit::net::{LiveNode, loopback_net, peer_of, tcp_socket, with_peer};
use tern_testkit::profile::{create, introduce, open, pair};
use tern_testkit::raw::length_prefixed;
use tern_testkit::wait::{TIMEOUT, poll_until, wait_for, wait_status};
use tokio::sync::broadcast;

/// How long a refusal counter may take to reach what a test expects.
const COUNTED_WITHIN: Duration = Duration::from_secs(10);

/// Mallory: a bare peer aimed at one node, writing whatever bytes she likes.
struct Mallory {
    client: Client,
    bob: PeerId,
    addr: Multiaddr,
}

impl Mallory {
    /// A peer with a fresh key, aimed at `addr` (which ends in `/p2p/`).
    fn new(addr: Multiaddr) -> Self {
        Self::with_key(libp2p::identity::Keypair::generate_ed25519(), addr)
    }

    /// A peer with the given libp2p key (to appear as someone's node).
    fn with_key(key: libp2p::identity::Keypair, addr: Multiaddr) -> Self {
        Self {
            client: Client::with_key(key),
            bob: peer_of(&addr),
            addr,
        }
    }

    /// Writes `bytes` on a fresh stream of `/tern/mailbox/1` (or `/tern/envelope/1`); returns Bob's
    /// answer, if he gave one (a stream closed or reset with nothing on it is no answer).
    async fn raw(&mut self, mailbox: bool, bytes: Vec<u8>) -> Option<Vec<u8>> {
        self.client.connect(&self.addr).await;
        let outcome = if mailbox {
            self.client.raw_mailbox(self.bob, bytes).await
        } else {
            self.client.raw_envelope(self.bob, bytes).await
        };
        outcome.answer()
    }

    async fn mailbox(&mut self, request: MailboxRequest) -> Option<MailboxResponse> {
        self.client.connect(&self.addr).await;
        self.client.raw_request(self.bob, &request).await
    }
}

/// An envelope ack as it is framed on the wire.
fn ack_frame(tag: u8, reason: Option<u8>) -> Vec<u8> {
    let mut payload = vec![1, tag];
    payload.extend(reason);
    length_prefixed(&payload)
}

async fn refusals(node: &Node) -> BTreeMap<String, u64> {
    node.status().await.unwrap().refusals
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>, kind: &str) -> u64 {
    after.get(kind).copied().unwrap_or(0) - before.get(kind).copied().unwrap_or(0)
}

struct Honest {
    alice: Node,
    alice_events: broadcast::Receiver<Event>,
    bob_events: broadcast::Receiver<Event>,
    bob: IdentityKey,
    sent: usize,
}

impl Honest {
    /// Alice writes to Bob; Bob gets it, and Alice sees it delivered.
    async fn round(&mut self, after: &str) {
        let text = format!("honest message after {after}");
        let message = self.alice.send_text(self.bob, text.clone()).await.unwrap();
        wait_for(
            &mut self.bob_events,
            &format!("Bob gets '{text}'"),
            |e| matches!(e, Event::MessageReceived { message, .. } if message.text == text),
        )
        .await;
        wait_status(&mut self.alice_events, message.id, MessageStatus::Delivered).await;
        self.sent += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_node_refuses_hostile_peers_and_keeps_serving_its_contacts() {
    tokio::time::timeout(4 * TIMEOUT, harness()).await.unwrap();
}

async fn harness() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, bob) = pair(a_dir.path(), b_dir.path());
    let bob_key = bob.key();
    // Sealed by Alice before her node starts (her node delivers it from the outbox): the envelope an
    // attacker on the wire would capture and replay below.
    let (_, captured) = alice.send_text(&bob_key, "captured on the wire").unwrap();
    let bob_identity_public = bob.identity().public().clone();
    let mailbox = MailboxConfig::default();
    let rate = mailbox.deposits_per_minute;
    let LiveNode {
        node: bob_node,
        events: mut bob_events,
        addr: bob_addr,
        ..
    } = LiveNode::start(
        bob,
        "bob",
        NodeConfig {
            net: loopback_net(),
            serve_mailbox: Some((b_dir.path().join("mailbox.redb"), mailbox)),
            ..NodeConfig::default()
        },
    )
    .await;
    let (alice_node, alice_events) = Node::start(
        alice,
        NodeConfig {
            net: loopback_net(),
            peers: vec![bob_addr.clone()],
            ..NodeConfig::default()
        },
    )
    .unwrap();
    wait_for(&mut bob_events, "the captured message", |e| {
        matches!(e, Event::MessageReceived { message, .. } if message.text == "captured on the wire")
    })
    .await;
    let mut honest = Honest {
        alice: alice_node.clone(),
        alice_events,
        bob_events,
        bob: bob_key,
        sent: 0,
    };
    honest.round("start").await;

    let mut rng = ChaCha20Rng::seed_from_u64(0x4057_11e6);
    let mut mallory = Mallory::new(bob_addr.clone());
    let mut tally: Vec<(&str, usize, String)> = Vec::new();
    let contacts_before = bob_node.contacts().await.unwrap().len();

    // Frames that do not decode: request-response drops the stream before the node's loop sees it, so
    // these are checked by the answer Mallory gets (none) and by Bob serving on.
    let mut unanswered = 0;
    let oversized = 20;
    for _ in 0..oversized {
        let len = u32::try_from(MAX_ENVELOPE_LEN + 1).unwrap() + rng.random_range(0..1 << 30);
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend(std::iter::repeat_n(0xab, rng.random_range(0..70_000)));
        unanswered += usize::from(mallory.raw(false, frame).await.is_none());
    }
    tally.push((
        "oversized frame",
        oversized,
        format!("{unanswered} dropped unanswered"),
    ));
    assert_eq!(unanswered, oversized);
    honest.round("oversized frames").await;

    let truncated = 20;
    let mut unanswered = 0;
    for _ in 0..truncated {
        let envelope = Envelope::seal(
            &Identity::generate(&mut rng, 0),
            &bob_identity_public,
            b"cut short",
            now_s() + 3600,
            &mut rng,
        )
        .unwrap()
        .encode();
        let frame = length_prefixed(&envelope);
        let cut = rng.random_range(0..frame.len());
        unanswered += usize::from(mallory.raw(false, frame[..cut].to_vec()).await.is_none());
    }
    assert_eq!(unanswered, truncated);
    tally.push((
        "truncated frame",
        truncated,
        format!("{unanswered} dropped unanswered"),
    ));
    honest.round("truncated frames").await;

    // Random bytes: mostly not a frame (dropped); a random payload inside a well-formed frame reaches the
    // engine and is refused as malformed.
    let before = refusals(&bob_node).await;
    let random = 50;
    let mut framed = 0;
    for i in 0..random {
        let mut bytes = vec![0u8; rng.random_range(1..4096)];
        rng.fill_bytes(&mut bytes);
        if i % 2 == 1 {
            bytes = length_prefixed(&bytes);
            framed += 1;
        }
        let answer = mallory.raw(false, bytes).await;
        if i % 2 == 1 {
            assert_eq!(
                answer,
                Some(ack_frame(2, Some(1))),
                "malformed envelope refused"
            );
        }
    }
    let after = refusals(&bob_node).await;
    assert_eq!(delta(&after, &before, "envelope_malformed"), framed);
    tally.push((
        "random bytes after handshake",
        random,
        format!("{framed} framed: envelope_malformed; the rest dropped unanswered"),
    ));
    honest.round("random bytes").await;

    // Envelopes for a mailbox Bob does not have, and expired envelopes for Bob.
    let before = refusals(&bob_node).await;
    let stranger = Identity::generate(&mut rng, 0);
    let unknown = 20;
    for _ in 0..unknown {
        let other = Identity::generate(&mut rng, 0);
        let envelope = Envelope::seal(
            &stranger,
            other.public(),
            b"not for Bob",
            now_s() + 3600,
            &mut rng,
        )
        .unwrap();
        let answer = mallory
            .raw(false, length_prefixed(&envelope.encode()))
            .await;
        assert_eq!(answer, Some(ack_frame(2, Some(3))), "unknown mailbox");
    }
    let expired = 20;
    for _ in 0..expired {
        let envelope = Envelope::seal(
            &stranger,
            &bob_identity_public,
            b"too late",
            now_s() - rng.random_range(1..1_000_000),
            &mut rng,
        )
        .unwrap();
        let answer = mallory
            .raw(false, length_prefixed(&envelope.encode()))
            .await;
        assert_eq!(answer, Some(ack_frame(2, Some(2))), "expired");
    }
    let after = refusals(&bob_node).await;
    assert_eq!(delta(&after, &before, "envelope_unknown_mailbox"), unknown);
    assert_eq!(delta(&after, &before, "envelope_expired"), expired);
    tally.push((
        "envelope for an unknown mailbox",
        unknown as usize,
        format!("{unknown} envelope_unknown_mailbox"),
    ));
    tally.push((
        "expired envelope",
        expired as usize,
        format!("{expired} envelope_expired"),
    ));
    honest.round("misaddressed and expired envelopes").await;

    // A replay of an envelope Alice sent (captured on the way): Bob already has it.
    let before = refusals(&bob_node).await;
    let replays = 20;
    for _ in 0..replays {
        let answer = mallory
            .raw(false, length_prefixed(&captured.envelope))
            .await;
        assert_eq!(answer, Some(ack_frame(1, None)), "a replay is a duplicate");
    }
    let after = refusals(&bob_node).await;
    assert!(delta(&after, &before, "envelope_duplicate") >= replays);
    tally.push((
        "replayed envelope",
        replays as usize,
        format!("{replays} envelope_duplicate"),
    ));
    honest.round("replays").await;

    // A deposit flood into the mailbox Bob serves, for many mailboxes.
    let before = refusals(&bob_node).await;
    let flood = 300u32;
    let mut stored = 0u32;
    let started = std::time::Instant::now();
    for _ in 0..flood {
        let other = Identity::generate(&mut rng, 0);
        let envelope = Envelope::seal(
            &stranger,
            other.public(),
            b"flood",
            now_s() + 3600,
            &mut rng,
        )
        .unwrap();
        match mallory
            .mailbox(MailboxRequest::Deposit {
                envelope: envelope.encode(),
            })
            .await
        {
            Some(MailboxResponse::Deposited { .. }) => stored += 1,
            Some(MailboxResponse::Refused(_)) => {}
            other => panic!("deposit answered {other:?}"),
        }
    }
    let after = refusals(&bob_node).await;
    // The bucket holds a minute's worth and refills at `rate` a minute, on a whole-second clock (so a
    // second boundary during the flood may already add a second's worth).
    let seconds = started.elapsed().as_secs() + 1;
    let refilled = u32::try_from(seconds * u64::from(rate) / 60).unwrap() + 1;
    assert!(
        stored >= rate.min(flood) && stored <= rate + refilled,
        "{stored} flood deposits stored"
    );
    assert_eq!(
        delta(&after, &before, "mailbox_rate_limited"),
        u64::from(flood - stored)
    );
    tally.push((
        "deposit flood (one peer)",
        flood as usize,
        format!("{stored} stored, {} mailbox_rate_limited", flood - stored),
    ));
    honest.round("a deposit flood").await;

    // Fetching someone else's mailbox: a proof naming Alice's key, signed by Mallory.
    let before = refusals(&bob_node).await;
    let foreign = 10;
    for _ in 0..foreign {
        let Some(MailboxResponse::Nonce { nonce }) =
            mallory.mailbox(MailboxRequest::Challenge).await
        else {
            panic!("no challenge");
        };
        let mut auth = OwnerAuth::sign(&stranger, &bob_node.peer_id().to_bytes(), nonce);
        auth.identity = honest_key(&alice_node).await;
        let answer = mallory
            .mailbox(MailboxRequest::Fetch { auth, max: 64 })
            .await;
        assert_eq!(
            answer,
            Some(MailboxResponse::Refused(
                tern_node::mailbox::Refusal::NotOwner
            ))
        );
    }
    let after = refusals(&bob_node).await;
    assert_eq!(delta(&after, &before, "mailbox_not_owner"), foreign);
    tally.push((
        "fetch of someone else's mailbox",
        foreign as usize,
        format!("{foreign} mailbox_not_owner"),
    ));
    honest.round("foreign fetches").await;

    // A flood of silent connections: past the pending limit they are denied; contacts are served.
    let before = refusals(&bob_node).await;
    let bob_tcp = tcp_socket(&bob_addr).port();
    let silent = 64usize;
    let mut sockets = Vec::new();
    for _ in 0..silent {
        sockets.push(
            tokio::net::TcpStream::connect(("127.0.0.1", bob_tcp))
                .await
                .unwrap(),
        );
    }
    let pending = usize::try_from(tern_node::net::Limits::CLIENT.max_pending_incoming).unwrap();
    let denied = poll_until(
        COUNTED_WITHIN,
        async || delta(&refusals(&bob_node).await, &before, "connection_limit"),
        |denied| *denied >= u64::try_from(silent - pending).unwrap(),
    )
    .await;
    assert!(
        denied >= u64::try_from(silent - pending).unwrap(),
        "{denied} denied"
    );
    honest.round("during a flood of silent connections").await;
    drop(sockets);
    tally.push((
        "connection flood (silent TCP)",
        silent,
        format!("{denied} connection_limit"),
    ));

    // Nothing of Mallory's is in Bob's store; Alice's messages are there exactly once each.
    let contacts = bob_node.contacts().await.unwrap().len();
    let alice_key = bob_node.find_contact("Alice".into()).await.unwrap().key;
    let history = bob_node
        .page(alice_key.into(), None, 10_000)
        .await
        .unwrap()
        .messages;
    assert_eq!(contacts, contacts_before, "a contact appeared from Mallory");
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(history.len(), honest.sent + 1, "{texts:?}");
    let mut unique = texts.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        texts.len(),
        "a message stored twice: {texts:?}"
    );
    let served = bob_node.status().await.unwrap();

    println!("\nhostile peer against a live tern-node (seeded):");
    println!("{:<36} {:>6}  outcome", "attack", "tried");
    for (kind, tried, outcome) in &tally {
        println!("{kind:<36} {tried:>6}  {outcome}");
    }
    println!(
        "honest messages delivered throughout: {}; refusals counted: {:?}",
        honest.sent, served.refusals
    );
    alice_node.shutdown().await.unwrap();
    bob_node.shutdown().await.unwrap();
}

async fn honest_key(alice: &Node) -> tern_protocol::IdentityKey {
    alice.key()
}

/// Not an attack but the same tools: Alice's node delivered a message directly, Bob stored it, and the ack
/// was lost (a cut link, a crash); Alice's node then deposited the same envelope with Bob's mailbox and
/// shows it as `sent`. When the copy reaches Bob from the mailbox, Bob already has it, and must still tell
/// Alice it was delivered. Mallory plays the network: she carries Alice's envelope to Bob and to the mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_copy_of_a_message_whose_ack_was_lost_still_gets_a_delivery_receipt() {
    mailbox_copy_gets_a_receipt(false).await;
}

/// The same, with Bob's node restarted between the first copy and the mailbox copy (the chaos run's
/// case: Bob was killed before his ack left): what Bob knows of the envelope must come from his store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_copy_gets_a_delivery_receipt_even_after_the_recipient_restarted() {
    mailbox_copy_gets_a_receipt(true).await;
}

async fn start_bob(
    bob: Engine,
    m_addr: &Multiaddr,
) -> (Node, broadcast::Receiver<Event>, Multiaddr) {
    let LiveNode {
        node: bob_node,
        events: mut bob_events,
        addr: bob_addr,
        ..
    } = LiveNode::start(
        bob,
        "bob",
        NodeConfig {
            net: loopback_net(),
            mailboxes: vec![m_addr.clone()],
            ..NodeConfig::default()
        },
    )
    .await;
    // Bob has read his mailbox: the server knows him as the owner and pushes new mail.
    wait_for(&mut bob_events, "Bob's fetch", |e| {
        matches!(e, Event::MailboxChecked { .. })
    })
    .await;
    (bob_node, bob_events, bob_addr)
}

async fn mailbox_copy_gets_a_receipt(restart_bob: bool) {
    tokio::time::timeout(2 * TIMEOUT, async {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let (mut alice, mut bob, mailbox) = (
            create(dirs[0].path(), "Alice"),
            create(dirs[1].path(), "Bob"),
            create(dirs[2].path(), "Mailbox"),
        );
        introduce(&mut [&mut alice, &mut bob]);
        let bob_key = bob.key();

        // Alice's node sealed the message and, its ack lost, deposited it: `sent`, out of the outbox.
        let (message, entry) = alice.send_text(&bob_key, "did you get this?").unwrap();
        alice.delivered(&entry, MessageStatus::Sent).unwrap();

        let LiveNode {
            node: m_node,
            addr: m_addr,
            ..
        } = LiveNode::start(
            mailbox,
            "mailbox",
            NodeConfig {
                net: loopback_net(),
                serve_mailbox: Some((
                    dirs[2].path().join("mailbox.redb"),
                    MailboxConfig::default(),
                )),
                ..NodeConfig::default()
            },
        )
        .await;
        let (mut bob_node, _bob_events, bob_addr) = start_bob(bob, &m_addr).await;

        // The first copy reaches Bob directly from Alice's node (his ack never reaches Alice's store).
        let alice_key =
            tern_node::net::keypair_from_seed(&alice.identity().ed25519_secret()).unwrap();
        let mut network = Mallory::with_key(alice_key, bob_addr);
        assert_eq!(
            network.raw(false, length_prefixed(&entry.envelope)).await,
            Some(ack_frame(0, None))
        );
        drop(network);
        if restart_bob {
            // Bob's node stops with the message stored; nothing it held in memory survives.
            bob_node.shutdown().await.unwrap();
            let bob = open(dirs[1].path());
            (bob_node, _, _) = start_bob(bob, &m_addr).await;
        }
        // The deposited copy reaches the mailbox, which pushes it to Bob: a duplicate.
        let mut to_mailbox = Mallory::new(m_addr);
        assert!(matches!(
            to_mailbox
                .mailbox(MailboxRequest::Deposit {
                    envelope: entry.envelope.clone()
                })
                .await,
            Some(MailboxResponse::Deposited { .. })
        ));
        let duplicates = poll_until(
            COUNTED_WITHIN,
            async || {
                refusals(&bob_node)
                    .await
                    .get("envelope_duplicate")
                    .copied()
                    .unwrap_or(0)
            },
            |duplicates| *duplicates > 0,
        )
        .await;
        assert_eq!(duplicates, 1, "the pushed copy reached Bob as a duplicate");

        // Alice comes online: Bob's receipt for the copy moves her message to delivered.
        let (alice_node, mut alice_events) = Node::start(
            alice,
            NodeConfig {
                net: loopback_net(),
                peers: vec![with_peer(
                    bob_node.status().await.unwrap().listen_addrs[0].clone(),
                    bob_node.peer_id(),
                )],
                ..NodeConfig::default()
            },
        )
        .unwrap();
        wait_status(&mut alice_events, message.id, MessageStatus::Delivered).await;
        for node in [alice_node, bob_node, m_node] {
            node.shutdown().await.unwrap();
        }
    })
    .await
    .unwrap();
}
