//! The [`Node`] handle and the event loop behind it.
//!
//! One task owns the swarm and the [`Engine`] (and with it the store). The handle is a bounded command
//! channel whose commands carry `oneshot` replies; events go out on a bounded broadcast channel, so a slow
//! consumer (the GUI) only ever loses events (it sees `Lagged` and re-reads the store), never stalls the
//! swarm.

mod delivery;
mod dht;
mod event_loop;
mod inbound;
mod mailbox_client;
mod mailbox_host;
mod swarm_events;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, autonat, identify, kad, mdns};
use tern_protocol::{Body, Envelope, EnvelopeId, IdentityKey, MailboxId, MessageId};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::engine::{Engine, EngineError, ReceiveError, Received, Via, now_ms};
use crate::mailbox::server::{MailboxConfig, MailboxError, MailboxServer};
use crate::mailbox::wire::{
    MAILBOX_PROTOCOL, MAX_FETCH_ENVELOPES, MailboxRequest, MailboxResponse, NONCE_LEN, OwnerAuth,
};
use crate::net::{
    ClientBehaviour, ClientBehaviourEvent, EnvelopeAck, EnvelopeRequest, NetConfig, NetError,
    RejectReason, build_swarm,
};
use crate::outbox::OutboxEntry;
use crate::store::{ContactRecord, MessageRecord, MessageStatus};

/// Commands waiting for the event loop.
pub const COMMAND_QUEUE: usize = 64;
/// Events kept for slow subscribers before they lag.
pub const EVENT_QUEUE: usize = 1024;
/// Outbox entries handled per delivery pass.
pub const OUTBOX_BATCH: usize = 64;
/// Envelopes in flight at once: as many as request-response runs streams concurrently.
pub const MAX_IN_FLIGHT: usize = crate::net::behaviour::MAX_CONCURRENT_STREAMS;
/// Queued entries held in memory while every in-flight slot is taken (more wait for the outbox pass).
pub const MAX_WAITING: usize = 1024;
/// Peers whose addresses are remembered from mDNS and dials.
pub const MAX_KNOWN_PEERS: usize = 1024;
/// Addresses remembered per peer.
pub const MAX_ADDRS_PER_PEER: usize = 8;
/// How often connected mailbox servers are asked for new mail (they also get asked on every connection).
pub const FETCH_INTERVAL: Duration = Duration::from_secs(30);
/// An undelivered envelope is deposited with this many mailbox servers (fewer if fewer are known).
pub const DEPOSIT_COPIES: usize = 2;
/// Mailbox servers remembered from the LAN (peers announcing `/tern/mailbox/1`).
pub const MAX_LAN_MAILBOXES: usize = 16;
/// Mailbox requests in flight at once.
pub const MAX_MAILBOX_REQUESTS: usize = 64;
/// Mailbox record lookups remembered (per recipient).
pub const MAX_LOOKUPS: usize = 1024;
/// A failed mailbox record lookup is tried again after this long.
pub const LOOKUP_RETRY: Duration = Duration::from_secs(300);
/// How often this profile's mailbox record is published again.
pub const REPUBLISH_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// How often the outbox is checked for due entries.
pub const OUTBOX_TICK: Duration = Duration::from_millis(500);

/// Why a node command failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot dial {addr}: {reason}")]
    Dial { addr: Multiaddr, reason: String },
    #[error("the node has stopped")]
    Stopped,
    #[error("cannot open the mailbox this node serves: {0}")]
    Mailbox(#[source] MailboxError),
}

/// What the node tells its users.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The swarm listens on a new address.
    Listening {
        address: Multiaddr,
    },
    /// A new message arrived and is stored.
    MessageReceived {
        message: MessageRecord,
    },
    /// Someone not in the contacts wrote: accept or block them.
    ContactRequest {
        contact: ContactRecord,
    },
    /// A known contact's key changed: the verified mark was dropped.
    KeyChanged {
        contact: IdentityKey,
    },
    /// An outgoing message moved on.
    StatusChanged {
        contact: IdentityKey,
        id: MessageId,
        status: MessageStatus,
    },
    Typing {
        contact: IdentityKey,
        typing: bool,
    },
    /// A contact's node connected (`true`) or its last connection closed.
    ContactOnline {
        contact: IdentityKey,
        online: bool,
    },
    /// The number of connected peers changed.
    Peers {
        connected: usize,
    },
    /// A peer sent a content kind this build does not know.
    UnknownContent {
        contact: IdentityKey,
        kind: u16,
    },
    /// This profile's mailbox record was stored in the DHT.
    MailboxRecordPublished,
    /// AutoNAT's verdict on whether this node is reachable from the internet changed.
    Nat {
        status: NatStatus,
    },
    /// A mailbox server was read to the end; `envelopes` is how many it handed over this time.
    MailboxChecked {
        server: PeerId,
        envelopes: usize,
    },
}

/// Whether this node can be reached directly from the internet (AutoNAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatStatus {
    /// Reachable at this address.
    Public(Multiaddr),
    /// Behind NAT: peers reach it through relays and hole punching.
    Private,
    Unknown,
}

/// The node's view of the network.
#[derive(Debug, Clone)]
pub struct NetStatus {
    pub peer_id: PeerId,
    pub listen_addrs: Vec<Multiaddr>,
    pub connected_peers: Vec<PeerId>,
    pub outbox_len: usize,
    pub lan_only: bool,
    pub nat: NatStatus,
    /// Peers found on the LAN by mDNS.
    pub lan_peers: usize,
    /// The mailbox servers that hold this profile's mail.
    pub mailboxes: Vec<PeerId>,
    /// LAN peers that offer to hold mail.
    pub lan_mailboxes: Vec<PeerId>,
    /// Listening through the mailbox servers' circuit relays (behind NAT).
    pub relayed: bool,
    /// What this node refused from peers since it started, by kind: `envelope_<reason>` for envelopes it
    /// rejected (see [`RejectReason::name`]), `envelope_duplicate` for envelopes it already had,
    /// `envelope_unreadable` for envelope streams that failed once open (a timeout, an answer that could not
    /// be sent; frames that do not decode are dropped by request-response before the node sees them),
    /// `connection_limit` and `connection_handshake` for incoming connections denied by a limit
    /// or whose handshake failed, and `mailbox_<reason>` for requests the mailbox it serves refused.
    pub refusals: BTreeMap<String, u64>,
}

type EngineCall = Box<dyn FnOnce(&mut Engine) + Send>;

enum Command {
    SendText {
        to: IdentityKey,
        text: String,
        reply: oneshot::Sender<Result<MessageRecord, NodeError>>,
    },
    MarkRead {
        contact: IdentityKey,
        ids: Vec<MessageId>,
        reply: oneshot::Sender<Result<Vec<MessageId>, NodeError>>,
    },
    Typing {
        contact: IdentityKey,
        typing: bool,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Status {
        reply: oneshot::Sender<NetStatus>,
    },
    /// Runs a store or profile operation on the loop's engine.
    Engine(EngineCall),
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// Stops the loop and hands the engine back (to start again with another configuration).
    Stop {
        reply: oneshot::Sender<Box<Engine>>,
    },
}

/// What `Node::start` needs besides the profile.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    pub net: NetConfig,
    /// Peers to dial at start (`/ip4/…/tcp/…/p2p/<peer id>`), e.g. a friend on the LAN without mDNS.
    pub peers: Vec<Multiaddr>,
    /// Mailbox servers that hold this profile's mail (each ending in `/p2p/<peer id>`): fetched from whenever
    /// connected, and used for others' mail when their own mailboxes are unknown. The CLI uses the bootstrap
    /// nodes.
    pub mailboxes: Vec<Multiaddr>,
    /// Serve as a mailbox for others (a LAN peer started with `--mailbox`): the database path and limits.
    pub serve_mailbox: Option<(std::path::PathBuf, MailboxConfig)>,
}

/// A handle to a running node. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Node {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    peer_id: PeerId,
}

impl Node {
    /// Builds the swarm for `engine`'s identity and spawns the event loop on the current tokio runtime.
    /// Returns the handle and an event receiver subscribed before anything happened.
    pub fn start(
        mut engine: Engine,
        config: NodeConfig,
    ) -> Result<(Self, broadcast::Receiver<Event>), NodeError> {
        let servers: Vec<tern_protocol::MailboxNode> = config
            .mailboxes
            .iter()
            .filter_map(|addr| {
                let peer = crate::net::swarm::peer_id_of(addr)?;
                Some(tern_protocol::MailboxNode {
                    peer_id: peer.to_bytes(),
                    addresses: vec![addr.to_vec()],
                })
            })
            .collect();
        let record = if config.net.lan_only || servers.is_empty() {
            None
        } else {
            tern_protocol::MailboxRecord::issue(
                engine.identity(),
                engine.card().details().revision,
                servers.clone(),
            )
            .ok()
        };
        // A run without configured servers leaves the card's published mailboxes as they are.
        if !servers.is_empty() {
            engine.set_mailboxes(servers)?;
        }
        let mut config = config;
        config.net.serve_mailbox = config.serve_mailbox.is_some();
        let seed = engine.identity().ed25519_secret();
        let mut swarm = build_swarm(&seed, &config.net)?;
        drop(seed);
        let peer_id = *swarm.local_peer_id();
        let mailbox_server = match &config.serve_mailbox {
            Some((path, limits)) => Some(
                MailboxServer::open(path, peer_id.to_bytes(), limits.clone())
                    .map_err(NodeError::Mailbox)?,
            ),
            None => None,
        };
        for addr in &config.peers {
            if let Err(e) = swarm.dial(addr.clone()) {
                warn!(%addr, error = %e, "cannot dial configured peer");
            }
        }
        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, event_rx) = broadcast::channel(EVENT_QUEUE);
        let event_loop = EventLoop {
            swarm,
            engine,
            commands: command_rx,
            events: event_tx.clone(),
            in_flight: HashMap::new(),
            sending: HashSet::new(),
            fire_and_forget: HashSet::new(),
            waiting: VecDeque::new(),
            known_addrs: HashMap::new(),
            lan_only: config.net.lan_only,
            my_mailboxes: Vec::new(),
            lan_mailboxes: Vec::new(),
            mdns_peers: HashSet::new(),
            nat: NatStatus::Unknown,
            relays_reserved: false,
            mailbox_calls: HashMap::new(),
            fetching: HashMap::new(),
            deposits: HashMap::new(),
            mailbox_server,
            pushes: HashMap::new(),
            record,
            published: false,
            lookups: HashMap::new(),
            lookup_queries: HashMap::new(),
            refusals: BTreeMap::new(),
            pending: Pending::default(),
        };
        let mut event_loop = event_loop;
        for addr in &config.peers {
            // Remembered, so that a peer whose first dial failed (it was down, or the link was) is dialled
            // again when there is mail for it or it is needed, instead of being unreachable until it dials us.
            if let Some(peer) = crate::net::swarm::peer_id_of(addr) {
                event_loop.remember_addr(peer, addr.clone());
            }
        }
        for addr in &config.mailboxes {
            match crate::net::swarm::peer_id_of(addr) {
                Some(peer) => {
                    event_loop.my_mailboxes.push((peer, addr.clone()));
                    event_loop.remember_addr(peer, addr.clone());
                    if let Err(e) = event_loop.swarm.dial(addr.clone()) {
                        warn!(%addr, error = %e, "cannot dial mailbox server");
                    }
                }
                None => warn!(%addr, "mailbox address has no /p2p/<peer id>; ignored"),
            }
        }
        let span = info_span!("node", peer = %short(&peer_id));
        tokio::spawn(event_loop.run().instrument(span));
        Ok((
            Self {
                commands: command_tx,
                events: event_tx,
                peer_id,
            },
            event_rx,
        ))
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Another receiver of the node's events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Queues a text message; it is durable in the outbox when this returns.
    pub async fn send_text(
        &self,
        to: IdentityKey,
        text: String,
    ) -> Result<MessageRecord, NodeError> {
        self.request(|reply| Command::SendText { to, text, reply })
            .await?
    }

    /// Marks received messages read and sends a read receipt.
    pub async fn mark_read(
        &self,
        contact: IdentityKey,
        ids: Vec<MessageId>,
    ) -> Result<Vec<MessageId>, NodeError> {
        self.request(|reply| Command::MarkRead {
            contact,
            ids,
            reply,
        })
        .await?
    }

    /// Tells a connected contact that we started or stopped typing. Best effort: never queued.
    pub async fn typing(&self, contact: IdentityKey, typing: bool) -> Result<(), NodeError> {
        self.commands
            .send(Command::Typing { contact, typing })
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Dials an address.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        self.request(|reply| Command::Dial { addr, reply }).await?
    }

    pub async fn status(&self) -> Result<NetStatus, NodeError> {
        self.request(|reply| Command::Status { reply }).await
    }

    /// Runs `f` on the node's engine (store and profile operations) and returns its result.
    pub async fn with_engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        let call: EngineCall = Box::new(move |engine| {
            let _ = tx.send(f(engine));
        });
        self.commands
            .send(Command::Engine(call))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Stops the event loop and the swarm but keeps the profile open: returns the engine, to start a node
    /// again (with other settings) without asking for the password.
    pub async fn stop(&self) -> Result<Engine, NodeError> {
        self.request(|reply| Command::Stop { reply })
            .await
            .map(|engine| *engine)
    }

    /// Stops the event loop; the store is closed (and its lock released) when this returns.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.request(|reply| Command::Shutdown { reply }).await
    }
}

fn short(peer: &PeerId) -> String {
    let text = peer.to_base58();
    text[text.len().saturating_sub(6)..].to_owned()
}

/// The PeerId of a Tern identity.
pub fn peer_id_of(key: &IdentityKey) -> Option<PeerId> {
    PeerId::from_bytes(&key.peer_id_bytes()).ok()
}

struct EventLoop {
    swarm: Swarm<ClientBehaviour>,
    engine: Engine,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<Event>,
    /// Envelope requests awaiting an ack, with the outbox entry each carries.
    in_flight: HashMap<OutboundRequestId, OutboxEntry>,
    /// Outbox entries currently in flight, so a pass does not send one twice.
    sending: HashSet<MessageId>,
    /// Requests whose ack nobody waits for (typing).
    fire_and_forget: HashSet<OutboundRequestId>,
    /// Entries for connected peers waiting for a free in-flight slot.
    waiting: VecDeque<OutboxEntry>,
    /// Addresses learned from mDNS and successful dials.
    known_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    lan_only: bool,
    /// Configured mailbox servers for this profile's mail.
    my_mailboxes: Vec<(PeerId, Multiaddr)>,
    /// Peers on the LAN that announced `/tern/mailbox/1` (in LAN-only mode, or found by mDNS).
    lan_mailboxes: Vec<PeerId>,
    /// Peers found by mDNS, i.e. on this LAN.
    mdns_peers: HashSet<PeerId>,
    /// The last AutoNAT verdict.
    nat: NatStatus,
    /// Whether relay reservations were requested (once, when AutoNAT first says private).
    relays_reserved: bool,
    /// Mailbox requests awaiting an answer.
    mailbox_calls: HashMap<OutboundRequestId, MailboxCall>,
    /// Servers with a fetch under way (and envelopes taken so far), so a second one does not start.
    fetching: HashMap<PeerId, usize>,
    /// Envelopes being deposited, by message id.
    deposits: HashMap<MessageId, Deposit>,
    /// The mailbox this node serves for others, if any.
    mailbox_server: Option<MailboxServer>,
    /// Envelopes pushed from the served mailbox to their connected owner, awaiting the owner's ack.
    pushes: HashMap<OutboundRequestId, (MailboxId, EnvelopeId)>,
    /// This profile's signed mailbox record, published in the DHT (not in LAN-only mode).
    record: Option<tern_protocol::MailboxRecord>,
    /// Whether the record has been stored by at least one DHT node since start.
    published: bool,
    /// Mailbox records looked up for recipients whose card names no mailbox.
    lookups: HashMap<IdentityKey, Lookup>,
    /// Record lookups under way.
    lookup_queries: HashMap<kad::QueryId, IdentityKey>,
    /// Inbound requests refused, by kind (see [`NetStatus::refusals`]).
    refusals: BTreeMap<String, u64>,
    /// Work taken in this wake-up, to be committed together (see [`Pending`]).
    pending: Pending,
}

/// What is known of a recipient's mailbox record.
enum Lookup {
    Pending {
        best: Option<tern_protocol::MailboxRecord>,
    },
    Found(Vec<PeerId>),
    /// Nothing found; looked up again after [`LOOKUP_RETRY`].
    Missing {
        at: std::time::Instant,
    },
}

/// What an outstanding mailbox request was for.
enum MailboxCall {
    Challenge {
        server: PeerId,
    },
    Fetch {
        server: PeerId,
        nonce: [u8; NONCE_LEN],
    },
    Ack,
    Deposit {
        server: PeerId,
        message: MessageId,
    },
}

/// An outbox entry on its way into mailboxes.
struct Deposit {
    entry: OutboxEntry,
    stored: HashSet<PeerId>,
    asked: HashSet<PeerId>,
    needed: usize,
}

/// Swarm events taken per wake-up before the work they carried is committed together: the bound on how
/// long one group commit keeps other work waiting.
pub const MAX_EVENTS_PER_WAKE: usize = 256;
/// Queued send commands taken together into one group commit.
pub const MAX_SENDS_PER_COMMIT: usize = 64;

/// Group commit: work taken from the swarm or the command queue in one wake-up of the event loop, committed
/// with one durable commit per kind (received envelopes, deliveries, sends) before anyone is answered. Every
/// answer still waits for the commit that made it true; only the number of fsyncs per message drops.
#[derive(Default)]
struct Pending {
    /// Received envelopes, answered after they are stored.
    inbound: Vec<(PeerId, EnvelopeRequest, ResponseChannel<EnvelopeAck>)>,
    /// Outbox entries acknowledged by their recipients, to be recorded as delivered.
    delivered: Vec<OutboxEntry>,
    /// A command taken from the queue while gathering sends that is not a send: handled next.
    command: Option<Command>,
}

/// How a send command answers.
type SendReply = oneshot::Sender<Result<MessageRecord, NodeError>>;

/// The next command: one set aside while gathering sends, else the next from the queue.
async fn next_command(
    stashed: &mut Option<Command>,
    commands: &mut mpsc::Receiver<Command>,
) -> Option<Command> {
    match stashed.take() {
        Some(command) => Some(command),
        None => commands.recv().await,
    }
}
