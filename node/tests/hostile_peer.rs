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

mod common;

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TIMEOUT, loopback_net, password, wait_for};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tern_node::api::Event;
use tern_node::api::MessageStatus;
use tern_node::engine::Engine;
use tern_node::mailbox::server::MailboxConfig;
use tern_node::mailbox::{MAILBOX_PROTOCOL, MailboxRequest, MailboxResponse, OwnerAuth};
use tern_node::net::ENVELOPE_PROTOCOL;
use tern_node::net::codec::encode_frame;
use tern_node::node::{Node, NodeConfig};
use tern_node::store::{self, KdfParams};
use tern_protocol::envelope::MAX_ENVELOPE_LEN;
use tern_protocol::{Envelope, Identity, IdentityKey};
use tokio::sync::broadcast;

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Writes the request bytes as they are, closes its half, and reads whatever comes back.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        Err(io::Error::other("the raw codec only sends"))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::new();
        io.take(1 << 21).read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Err(io::Error::other("the raw codec only sends"))
    }
}

#[derive(NetworkBehaviour)]
struct MalloryBehaviour {
    envelope: request_response::Behaviour<RawCodec>,
    mailbox: request_response::Behaviour<RawCodec>,
}

struct Mallory {
    swarm: Swarm<MalloryBehaviour>,
    bob: PeerId,
    addr: Multiaddr,
}

impl Mallory {
    fn new(bob: PeerId, addr: Multiaddr) -> Self {
        Self::with_key(libp2p::identity::Keypair::generate_ed25519(), bob, addr)
    }

    /// A peer with the given libp2p key (to appear as someone's node).
    fn with_key(key: libp2p::identity::Keypair, bob: PeerId, addr: Multiaddr) -> Self {
        let raw = |protocol| {
            request_response::Behaviour::with_codec(
                RawCodec,
                [(protocol, ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
            )
        };
        let swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| MalloryBehaviour {
                envelope: raw(ENVELOPE_PROTOCOL),
                mailbox: raw(MAILBOX_PROTOCOL),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        Self { swarm, bob, addr }
    }

    async fn connect(&mut self) {
        if self.swarm.is_connected(&self.bob) {
            return;
        }
        self.swarm.dial(self.addr.clone()).unwrap();
        loop {
            match self.swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == self.bob => return,
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial: {error}"),
                _ => {}
            }
        }
    }

    /// Writes `bytes` on a fresh stream of `protocol`; returns Bob's answer, if he gave one (a stream
    /// closed or reset with nothing on it is no answer).
    async fn raw(&mut self, mailbox: bool, bytes: Vec<u8>) -> Option<Vec<u8>> {
        self.connect().await;
        let behaviour = self.swarm.behaviour_mut();
        let id: OutboundRequestId = if mailbox {
            behaviour.mailbox.send_request(&self.bob, bytes)
        } else {
            behaviour.envelope.send_request(&self.bob, bytes)
        };
        loop {
            let event = self.swarm.select_next_some().await;
            let SwarmEvent::Behaviour(event) = event else {
                continue;
            };
            let (MalloryBehaviourEvent::Envelope(event) | MalloryBehaviourEvent::Mailbox(event)) =
                event;
            match event {
                request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                } if request_id == id => return Some(response).filter(|r| !r.is_empty()),
                request_response::Event::OutboundFailure { request_id, .. } if request_id == id => {
                    return None;
                }
                _ => {}
            }
        }
    }

    async fn mailbox(&mut self, request: MailboxRequest) -> Option<MailboxResponse> {
        let answer = self.raw(true, encode_frame(&request).unwrap()).await?;
        tern_node::net::codec::decode_frame(&answer).ok()
    }
}

fn ack_frame(tag: u8, reason: Option<u8>) -> Vec<u8> {
    let mut payload = vec![1, tag];
    payload.extend(reason);
    let mut frame = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend(payload);
    frame
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
        wait_for(&mut self.alice_events, "delivered", |e| {
            matches!(e, Event::StatusChanged { id, status: MessageStatus::Delivered, .. } if *id == message.id)
        })
        .await;
        self.sent += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_node_refuses_hostile_peers_and_keeps_serving_its_contacts() {
    tokio::time::timeout(4 * TIMEOUT, harness()).await.unwrap();
}

async fn harness() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut alice = Engine::create(
        a_dir.path(),
        "Alice",
        &password(),
        KdfParams::INSECURE_FOR_TESTS,
    )
    .unwrap();
    let mut bob = Engine::create(
        b_dir.path(),
        "Bob",
        &password(),
        KdfParams::INSECURE_FOR_TESTS,
    )
    .unwrap();
    alice.add_contact(&bob.card().invite_link(), None).unwrap();
    bob.add_contact(&alice.card().invite_link(), None).unwrap();
    let bob_key = bob.key();
    // Sealed by Alice before her node starts (her node delivers it from the outbox): the envelope an
    // attacker on the wire would capture and replay below.
    let (_, captured) = alice.send_text(&bob_key, "captured on the wire").unwrap();
    let bob_identity_public = bob.identity().public().clone();
    let mailbox = MailboxConfig::default();
    let rate = mailbox.deposits_per_minute;
    let (bob_node, mut bob_events) = Node::start(
        bob,
        NodeConfig {
            net: loopback_net(),
            serve_mailbox: Some((b_dir.path().join("mailbox.redb"), mailbox)),
            ..NodeConfig::default()
        },
    )
    .unwrap();
    let Event::Listening { address } = wait_for(&mut bob_events, "Bob listening", |e| {
        matches!(e, Event::Listening { .. })
    })
    .await
    else {
        unreachable!()
    };
    let bob_addr = address.clone().with(Protocol::P2p(bob_node.peer_id()));
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
    let mut mallory = Mallory::new(bob_node.peer_id(), bob_addr.clone());
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
        let mut frame = u32::try_from(envelope.len())
            .unwrap()
            .to_be_bytes()
            .to_vec();
        frame.extend(envelope);
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
            let mut frame = u32::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
            frame.extend(bytes);
            bytes = frame;
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
            .raw(false, encode_frame_bytes(envelope.encode()))
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
            .raw(false, encode_frame_bytes(envelope.encode()))
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
            .raw(false, encode_frame_bytes(captured.envelope.clone()))
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
    let bob_tcp = address
        .iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
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
    let mut denied = 0;
    for _ in 0..200 {
        denied = delta(&refusals(&bob_node).await, &before, "connection_limit");
        if denied >= u64::try_from(silent - pending).unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

fn encode_frame_bytes(envelope: Vec<u8>) -> Vec<u8> {
    let mut frame = u32::try_from(envelope.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    frame.extend(envelope);
    frame
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
    let (bob_node, mut bob_events) = Node::start(
        bob,
        NodeConfig {
            net: loopback_net(),
            mailboxes: vec![m_addr.clone()],
            ..NodeConfig::default()
        },
    )
    .unwrap();
    let Event::Listening { address } = wait_for(&mut bob_events, "Bob listening", |e| {
        matches!(e, Event::Listening { .. })
    })
    .await
    else {
        unreachable!()
    };
    let bob_addr = address.with(Protocol::P2p(bob_node.peer_id()));
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
        let create = |i: usize, name: &str| {
            Engine::create(dirs[i].path(), name, &password(), KdfParams::INSECURE_FOR_TESTS)
                .unwrap()
        };
        let (mut alice, mut bob, mailbox) = (create(0, "Alice"), create(1, "Bob"), create(2, "Mailbox"));
        alice.add_contact(&bob.card().invite_link(), None).unwrap();
        bob.add_contact(&alice.card().invite_link(), None).unwrap();
        let bob_key = bob.key();

        // Alice's node sealed the message and, its ack lost, deposited it: `sent`, out of the outbox.
        let (message, entry) = alice.send_text(&bob_key, "did you get this?").unwrap();
        alice.delivered(&entry, store::MessageStatus::Sent).unwrap();

        let (m_node, mut m_events) = Node::start(
            mailbox,
            NodeConfig {
                net: loopback_net(),
                serve_mailbox: Some((dirs[2].path().join("mailbox.redb"), MailboxConfig::default())),
                ..NodeConfig::default()
            },
        )
        .unwrap();
        let Event::Listening { address } =
            wait_for(&mut m_events, "mailbox listening", |e| matches!(e, Event::Listening { .. }))
                .await
        else {
            unreachable!()
        };
        let m_addr = address.with(Protocol::P2p(m_node.peer_id()));
        let (mut bob_node, _bob_events, bob_addr) = start_bob(bob, &m_addr).await;

        // The first copy reaches Bob directly from Alice's node (his ack never reaches Alice's store).
        let alice_key = tern_node::net::keypair_from_seed(&alice.identity().ed25519_secret()).unwrap();
        let mut network = Mallory::with_key(alice_key, bob_node.peer_id(), bob_addr);
        assert_eq!(
            network.raw(false, encode_frame_bytes(entry.envelope.clone())).await,
            Some(ack_frame(0, None))
        );
        drop(network);
        if restart_bob {
            // Bob's node stops with the message stored; nothing it held in memory survives.
            bob_node.shutdown().await.unwrap();
            let bob = Engine::open(dirs[1].path(), &password()).unwrap();
            (bob_node, _, _) = start_bob(bob, &m_addr).await;
        }
        // The deposited copy reaches the mailbox, which pushes it to Bob: a duplicate.
        let mut to_mailbox = Mallory::new(m_node.peer_id(), m_addr);
        assert!(matches!(
            to_mailbox
                .mailbox(MailboxRequest::Deposit {
                    envelope: entry.envelope.clone()
                })
                .await,
            Some(MailboxResponse::Deposited { .. })
        ));
        let mut duplicates = 0;
        for _ in 0..200 {
            duplicates = refusals(&bob_node)
                .await
                .get("envelope_duplicate")
                .copied()
                .unwrap_or(0);
            if duplicates > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(duplicates, 1, "the pushed copy reached Bob as a duplicate");

        // Alice comes online: Bob's receipt for the copy moves her message to delivered.
        let (alice_node, mut alice_events) = Node::start(
            alice,
            NodeConfig {
                net: loopback_net(),
                peers: vec![bob_node.status().await.unwrap().listen_addrs[0]
                    .clone()
                    .with(Protocol::P2p(bob_node.peer_id()))],
                ..NodeConfig::default()
            },
        )
        .unwrap();
        wait_for(&mut alice_events, "the delivery receipt", |e| {
            matches!(e, Event::StatusChanged { id, status: MessageStatus::Delivered, .. } if *id == message.id)
        })
        .await;
        for node in [alice_node, bob_node, m_node] {
            node.shutdown().await.unwrap();
        }
    })
    .await
    .unwrap();
}
