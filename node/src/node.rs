//! The [`Node`] handle and the event loop behind it.
//!
//! One task owns the swarm and the [`Engine`] (and with it the store). The handle is a bounded command
//! channel whose commands carry `oneshot` replies; events go out on a bounded broadcast channel, so a slow
//! consumer (the GUI) only ever loses events (it sees `Lagged` and re-reads the store), never stalls the
//! swarm.

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

use crate::engine::{Engine, EngineError, ReceiveError, Received, now_ms};
use crate::mailbox::server::{MailboxConfig, MailboxError, MailboxServer};
use crate::mailbox::wire::{
    MAILBOX_PROTOCOL, MAX_FETCH_ENVELOPES, MailboxRequest, MailboxResponse, NONCE_LEN, OwnerAuth,
};
use crate::net::{
    ClientBehaviour, ClientBehaviourEvent, EnvelopeAck, EnvelopeRequest, NetConfig, NetError,
    RejectReason, build_swarm,
};
use crate::store::{ContactRecord, MessageRecord, MessageStatus, OutboxRecord};

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
    in_flight: HashMap<OutboundRequestId, OutboxRecord>,
    /// Outbox entries currently in flight, so a pass does not send one twice.
    sending: HashSet<MessageId>,
    /// Requests whose ack nobody waits for (typing).
    fire_and_forget: HashSet<OutboundRequestId>,
    /// Entries for connected peers waiting for a free in-flight slot.
    waiting: VecDeque<OutboxRecord>,
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
    entry: OutboxRecord,
    stored: HashSet<PeerId>,
    asked: HashSet<PeerId>,
    needed: usize,
}

impl EventLoop {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(OUTBOX_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut republish = tokio::time::interval(REPUBLISH_INTERVAL);
        republish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fetch_tick = tokio::time::interval(FETCH_INTERVAL);
        fetch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = next_command(&mut self.pending.command, &mut self.commands) => match command {
                    Some(Command::Shutdown { reply }) => {
                        info!("shutting down");
                        drop(self);
                        let _ = reply.send(());
                        return;
                    }
                    Some(Command::Stop { reply }) => {
                        info!("stopping; the profile stays open");
                        let EventLoop { engine, .. } = self;
                        let _ = reply.send(Box::new(engine));
                        return;
                    }
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => {
                    self.handle_swarm_event(event);
                    self.drain_swarm();
                }
                _ = tick.tick() => self.flush_outbox(None),
                _ = republish.tick() => {
                    self.published = false;
                    self.publish_record();
                }
                _ = fetch_tick.tick() => {
                    self.fetch_all();
                    self.purge_mailbox();
                }
            }
        }
        info!("all handles dropped; stopping");
    }

    fn emit(&self, event: Event) {
        // No subscriber is not an error: the CLI may not listen.
        let _ = self.events.send(event);
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::SendText { to, text, reply } => self.send_texts(vec![(to, text, reply)]),
            Command::MarkRead {
                contact,
                ids,
                reply,
            } => {
                let result = self
                    .engine
                    .mark_read(&contact, &ids)
                    .map_err(NodeError::from);
                let _ = reply.send(result);
                self.flush_outbox(Some(contact));
            }
            Command::Typing { contact, typing } => self.send_typing(contact, typing),
            Command::Dial { addr, reply } => {
                let result = self.swarm.dial(addr.clone()).map_err(|e| NodeError::Dial {
                    addr,
                    reason: e.to_string(),
                });
                let _ = reply.send(result);
            }
            Command::Status { reply } => {
                let status = NetStatus {
                    peer_id: *self.swarm.local_peer_id(),
                    listen_addrs: self.swarm.listeners().cloned().collect(),
                    connected_peers: self.swarm.connected_peers().copied().collect(),
                    outbox_len: self.engine.store().outbox().map_or(0, |o| o.len()),
                    lan_only: self.lan_only,
                    nat: self.nat.clone(),
                    lan_peers: self.mdns_peers.len(),
                    mailboxes: self.my_mailboxes.iter().map(|(peer, _)| *peer).collect(),
                    lan_mailboxes: self.lan_mailboxes.clone(),
                    relayed: self.relays_reserved,
                    refusals: self.refusals(),
                };
                let _ = reply.send(status);
            }
            Command::Engine(call) => call(&mut self.engine),
            Command::Shutdown { .. } | Command::Stop { .. } => {}
        }
    }

    fn send_typing(&mut self, contact: IdentityKey, typing: bool) {
        let Some(peer) = peer_id_of(&contact) else {
            return;
        };
        if !self.swarm.is_connected(&peer) {
            return;
        }
        match self
            .engine
            .send_control(&contact, Body::Typing(typing), false)
        {
            Ok((_, envelope)) => match EnvelopeRequest::from_envelope(&envelope) {
                Ok(request) => {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .envelope
                        .send_request(&peer, request);
                    self.fire_and_forget.insert(id);
                }
                Err(e) => warn!(error = %e, "typing envelope does not fit a frame"),
            },
            Err(e) => debug!(error = %e, "cannot send typing"),
        }
    }

    /// Sends due outbox entries (all entries for `only` when given) to connected recipients, and dials
    /// the others.
    fn flush_outbox(&mut self, only: Option<IdentityKey>) {
        let now = now_ms();
        let entries = match only {
            Some(to) => self.engine.store().outbox().map(|all| {
                all.into_iter()
                    .filter(|e| e.recipient == to)
                    .take(OUTBOX_BATCH)
                    .collect::<Vec<_>>()
            }),
            None => self.engine.store().outbox_due(now, OUTBOX_BATCH),
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                warn!(error = %e, "cannot read the outbox");
                return;
            }
        };
        let mut dialled = HashSet::new();
        for entry in entries {
            if self.sending.contains(&entry.message_id) || self.in_flight.len() >= MAX_IN_FLIGHT {
                continue;
            }
            let Some(peer) = peer_id_of(&entry.recipient) else {
                continue;
            };
            if self.swarm.is_connected(&peer) {
                self.send_entry(peer, entry);
            } else if only.is_none() && entry.attempts > 0 && self.deposit(&entry) {
                // Handed to mailboxes; a direct connection may still come first.
                if dialled.insert(peer) {
                    self.dial_contact(peer);
                }
            } else if dialled.insert(peer) {
                self.dial_contact(peer);
                if only.is_none() {
                    // Not reachable now: wait for the connection (which flushes) or the next retry.
                    if let Err(e) = self.engine.attempt_failed(&entry) {
                        warn!(error = %e, "cannot reschedule an outbox entry");
                    }
                }
            } else if only.is_none()
                && let Err(e) = self.engine.attempt_failed(&entry)
            {
                warn!(error = %e, "cannot reschedule an outbox entry");
            }
        }
    }

    /// Sends a just-queued entry if its recipient is connected and there is room in flight; otherwise the
    /// outbox pass picks it up (and dials).
    fn deliver_now(&mut self, entry: OutboxRecord) {
        let Some(peer) = peer_id_of(&entry.recipient) else {
            return;
        };
        if !self.swarm.is_connected(&peer) {
            self.dial_contact(peer);
        } else if self.in_flight.len() < MAX_IN_FLIGHT {
            self.send_entry(peer, entry);
        } else if self.waiting.len() < MAX_WAITING {
            self.sending.insert(entry.message_id);
            self.waiting.push_back(entry);
        }
    }

    /// An in-flight slot freed up: send the next waiting entry whose recipient is still connected.
    fn send_waiting(&mut self) {
        while self.in_flight.len() < MAX_IN_FLIGHT {
            let Some(entry) = self.waiting.pop_front() else {
                return;
            };
            self.sending.remove(&entry.message_id);
            match peer_id_of(&entry.recipient) {
                Some(peer) if self.swarm.is_connected(&peer) => self.send_entry(peer, entry),
                // Disconnected meanwhile: the outbox pass retries it.
                _ => {}
            }
        }
    }

    fn send_entry(&mut self, peer: PeerId, entry: OutboxRecord) {
        match EnvelopeRequest::new(entry.envelope.clone()) {
            Ok(request) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .envelope
                    .send_request(&peer, request);
                self.sending.insert(entry.message_id);
                self.in_flight.insert(id, entry);
            }
            Err(e) => warn!(error = %e, "outbox entry does not fit a frame"),
        }
    }

    fn dial_contact(&mut self, peer: PeerId) {
        let mut addrs = self.known_addrs.get(&peer).cloned().unwrap_or_default();
        addrs.extend(self.card_addrs(&peer));
        if addrs.is_empty() && self.lan_only {
            return;
        }
        if !self.lan_only
            && let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
        {
            kad.get_closest_peers(peer);
        }
        let opts = DialOpts::peer_id(peer).addresses(addrs).build();
        if let Err(e) = self.swarm.dial(opts) {
            debug!(peer = %short(&peer), error = %e, "dial failed");
        }
    }

    /// Addresses the contact published in its card.
    fn card_addrs(&self, peer: &PeerId) -> Vec<Multiaddr> {
        let Ok(key) = IdentityKey::from_peer_id(&peer.to_base58()) else {
            return Vec::new();
        };
        let Ok(Some(contact)) = self.engine.store().contact(&key) else {
            return Vec::new();
        };
        let Ok(card) = tern_protocol::ContactCard::decode(&contact.card) else {
            return Vec::new();
        };
        card.details()
            .addresses
            .iter()
            .filter_map(|bytes| Multiaddr::try_from(bytes.clone()).ok())
            .collect()
    }

    fn remember_addr(&mut self, peer: PeerId, addr: Multiaddr) {
        if !self.known_addrs.contains_key(&peer) && self.known_addrs.len() >= MAX_KNOWN_PEERS {
            return;
        }
        let addrs = self.known_addrs.entry(peer).or_default();
        if !addrs.contains(&addr) {
            if addrs.len() >= MAX_ADDRS_PER_PEER {
                addrs.remove(0);
            }
            addrs.push(addr);
        }
    }

    fn contact_of(&self, peer: &PeerId) -> Option<IdentityKey> {
        let key = IdentityKey::from_peer_id(&peer.to_base58()).ok()?;
        matches!(self.engine.store().contact(&key), Ok(Some(_))).then_some(key)
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<ClientBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.emit(Event::Listening { address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                if endpoint.is_dialer() {
                    self.remember_addr(peer_id, endpoint.get_remote_address().clone());
                }
                self.emit(Event::Peers {
                    connected: self.swarm.connected_peers().count(),
                });
                if num_established.get() == 1 && self.is_my_mailbox(&peer_id) {
                    self.start_fetch(peer_id);
                }
                if let Some(contact) = self.contact_of(&peer_id) {
                    if num_established.get() == 1 {
                        self.emit(Event::ContactOnline {
                            contact,
                            online: true,
                        });
                    }
                    self.flush_outbox(Some(contact));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                self.emit(Event::Peers {
                    connected: self.swarm.connected_peers().count(),
                });
                if num_established == 0 {
                    if let Some(server) = self.mailbox_server.as_mut() {
                        server.peer_disconnected(&peer_id);
                    }
                    self.fetching.remove(&peer_id);
                    self.lan_mailboxes.retain(|p| *p != peer_id);
                }
                if num_established == 0
                    && let Some(contact) = self.contact_of(&peer_id)
                {
                    self.emit(Event::ContactOnline {
                        contact,
                        online: false,
                    });
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                self.count_refusal(match error {
                    libp2p::swarm::ListenError::Denied { .. } => "connection_limit".to_owned(),
                    _ => "connection_handshake".to_owned(),
                });
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                let mut contacts = HashSet::new();
                for (peer, addr) in found {
                    if self.mdns_peers.len() < MAX_KNOWN_PEERS {
                        self.mdns_peers.insert(peer);
                    }
                    self.remember_addr(peer, addr);
                    if !self.swarm.is_connected(&peer) && self.contact_of(&peer).is_some() {
                        contacts.insert(peer);
                    }
                }
                for peer in contacts {
                    self.dial_contact(peer);
                }
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Envelope(event)) => {
                self.handle_envelope_event(event);
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(event)) => {
                self.handle_mailbox_event(event);
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Autonat(
                autonat::Event::StatusChanged { new, .. },
            )) => {
                let status = match new {
                    autonat::NatStatus::Public(addr) => NatStatus::Public(addr),
                    autonat::NatStatus::Private => NatStatus::Private,
                    autonat::NatStatus::Unknown => NatStatus::Unknown,
                };
                info!(?status, "reachability changed");
                if status == NatStatus::Private {
                    self.reserve_relays();
                }
                self.nat = status.clone();
                self.emit(Event::Nat { status });
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                // Only a LAN neighbour is taken as a mailbox unasked; elsewhere mailboxes are configured or
                // published by their owners.
                let on_lan = self.lan_only || self.mdns_peers.contains(&peer_id);
                let serves = on_lan && info.protocols.contains(&MAILBOX_PROTOCOL);
                if serves
                    && !self.lan_mailboxes.contains(&peer_id)
                    && self.lan_mailboxes.len() < MAX_LAN_MAILBOXES
                {
                    debug!(peer = %short(&peer_id), "found a mailbox on the LAN");
                    self.lan_mailboxes.push(peer_id);
                    self.start_fetch(peer_id);
                    self.flush_outbox(None);
                }
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(kad::Event::RoutingUpdated {
                ..
            })) => {
                self.publish_record();
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        record: Some(record),
                        ..
                    },
            })) => {
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    crate::net::dht::store_if_valid(kad.store_mut(), record);
                }
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(
                kad::Event::OutboundQueryProgressed {
                    result: kad::QueryResult::PutRecord(Ok(_)),
                    ..
                },
            )) if !self.published => {
                debug!("mailbox record published");
                self.published = true;
                self.emit(Event::MailboxRecordPublished);
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(
                kad::Event::OutboundQueryProgressed {
                    id,
                    result: kad::QueryResult::GetRecord(result),
                    step,
                    ..
                },
            )) => self.lookup_progress(id, result, step.last),
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(
                kad::Event::OutboundQueryProgressed {
                    result: kad::QueryResult::GetClosestPeers(Ok(found)),
                    ..
                },
            )) => {
                // A lookup for a contact we hold mail for found a route to it: deliver now.
                let Ok(target) = PeerId::from_bytes(&found.key) else {
                    return;
                };
                if let Some(info) = found.peers.into_iter().find(|p| p.peer_id == target) {
                    for addr in info.addrs {
                        self.remember_addr(target, addr);
                    }
                    if !self.swarm.is_connected(&target) {
                        let addrs = self.known_addrs.get(&target).cloned().unwrap_or_default();
                        let opts = DialOpts::peer_id(target).addresses(addrs).build();
                        if let Err(e) = self.swarm.dial(opts) {
                            debug!(peer = %short(&target), error = %e, "dial after lookup failed");
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn handle_envelope_event(
        &mut self,
        event: request_response::Event<EnvelopeRequest, EnvelopeAck>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                // Answered after this wake-up's group commit (`drain_swarm`).
                request_response::Message::Request {
                    request, channel, ..
                } => self.pending.inbound.push((peer, request, channel)),
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.handle_ack(request_id, response),
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                self.fire_and_forget.remove(&request_id);
                self.pushes.remove(&request_id);
                if let Some(entry) = self.in_flight.remove(&request_id) {
                    debug!(error = %error, "envelope not delivered; will retry");
                    self.sending.remove(&entry.message_id);
                    self.retry_later(&entry);
                    self.send_waiting();
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(peer = %short(&peer), error = %error, "inbound envelope failed");
                // A request stream that failed once open; a peer that left before its answer is not a
                // refusal.
                if !matches!(error, request_response::InboundFailure::ConnectionClosed) {
                    self.count_refusal("envelope_unreadable".to_owned());
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn retry_later(&mut self, entry: &OutboxRecord) {
        match self.engine.attempt_failed(entry) {
            Ok(Some(status)) => self.emit(Event::StatusChanged {
                contact: entry.recipient,
                id: entry.message_id,
                status,
            }),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot reschedule an outbox entry"),
        }
    }

    fn handle_ack(&mut self, request_id: OutboundRequestId, ack: EnvelopeAck) {
        if self.fire_and_forget.remove(&request_id) {
            return;
        }
        if let Some((mailbox, id)) = self.pushes.remove(&request_id) {
            self.push_answered(mailbox, id, Some(ack));
            return;
        }
        let Some(entry) = self.in_flight.remove(&request_id) else {
            return;
        };
        self.sending.remove(&entry.message_id);
        self.send_waiting();
        match ack {
            // Recorded with this wake-up's other deliveries in one commit (`drain_swarm`).
            EnvelopeAck::Accepted | EnvelopeAck::Duplicate => self.pending.delivered.push(entry),
            EnvelopeAck::Rejected(reason) => {
                debug!(?reason, "recipient refused an envelope");
                self.retry_later(&entry);
            }
        }
    }

    /// Answers the envelopes received in this wake-up, after storing them all with one durable commit.
    fn answer_inbound(&mut self) {
        if self.pending.inbound.is_empty() {
            return;
        }
        let inbound = std::mem::take(&mut self.pending.inbound);
        let bytes: Vec<&[u8]> = inbound.iter().map(|(_, r, _)| r.as_bytes()).collect();
        let outcomes = self.engine.receive_many(&bytes);
        for ((peer, request, channel), outcome) in inbound.into_iter().zip(outcomes) {
            self.answer_one(peer, &request, channel, outcome);
        }
    }

    fn answer_one(
        &mut self,
        peer: PeerId,
        request: &EnvelopeRequest,
        channel: ResponseChannel<EnvelopeAck>,
        outcome: Result<Received, ReceiveError>,
    ) {
        let envelope_id = Envelope::decode(request.as_bytes()).ok().map(|e| e.id());
        let ack = match outcome {
            Ok(received) => {
                let ack = if matches!(received, Received::Duplicate | Received::Copy { .. }) {
                    self.count_refusal("envelope_duplicate".to_owned());
                    EnvelopeAck::Duplicate
                } else {
                    EnvelopeAck::Accepted
                };
                match &received {
                    // Pushed by a mailbox, not handed over by the sender: tell the sender it arrived. (From
                    // the sender itself, the ack says so.)
                    Received::Message { message, .. }
                        if peer_id_of(&message.conversation) != Some(peer) =>
                    {
                        self.send_delivered_receipt(message.conversation, message.id, envelope_id);
                    }
                    Received::Copy { contact, id } if peer_id_of(contact) != Some(peer) => {
                        self.send_delivered_receipt(*contact, *id, envelope_id);
                    }
                    _ => {}
                }
                self.report(received);
                ack
            }
            Err(e) => {
                debug!(peer = %short(&peer), error = %e, "refused an envelope");
                let ack = ack_for(&e);
                self.count_refusal(match ack {
                    EnvelopeAck::Rejected(reason) => format!("envelope_{}", reason.name()),
                    EnvelopeAck::Duplicate | EnvelopeAck::Accepted => {
                        "envelope_duplicate".to_owned()
                    }
                });
                ack
            }
        };
        // The peer may have gone; the sender retries and we dedupe.
        let _ = self
            .swarm
            .behaviour_mut()
            .envelope
            .send_response(channel, ack);
    }

    fn count_refusal(&mut self, kind: String) {
        // Bounded: the kinds are a fixed set of names.
        *self.refusals.entry(kind).or_default() += 1;
    }

    /// What this node refused, its own counts and the served mailbox's.
    fn refusals(&self) -> BTreeMap<String, u64> {
        let mut all = self.refusals.clone();
        if let Some(server) = &self.mailbox_server {
            for (reason, count) in &server.counters().refusals {
                all.insert(format!("mailbox_{reason}"), *count);
            }
        }
        all
    }

    fn report(&mut self, received: Received) {
        match received {
            Received::Message {
                message,
                request,
                key_changed,
            } => {
                if let Some(contact) = request {
                    self.emit(Event::ContactRequest { contact });
                }
                if key_changed {
                    self.emit(Event::KeyChanged {
                        contact: message.conversation,
                    });
                }
                self.emit(Event::MessageReceived { message });
            }
            Received::Receipts { contact, updated } => {
                for (id, status) in updated {
                    self.emit(Event::StatusChanged {
                        contact,
                        id,
                        status,
                    });
                }
            }
            Received::Typing { contact, typing } => self.emit(Event::Typing { contact, typing }),
            Received::Unknown { contact, kind } => {
                self.emit(Event::UnknownContent { contact, kind });
            }
            Received::Duplicate | Received::Copy { .. } | Received::Dropped => {}
        }
    }
}

impl EventLoop {
    fn is_my_mailbox(&self, peer: &PeerId) -> bool {
        self.my_mailboxes.iter().any(|(p, _)| p == peer) || self.lan_mailboxes.contains(peer)
    }

    fn mailbox_request(
        &mut self,
        server: PeerId,
        request: MailboxRequest,
        call: MailboxCall,
    ) -> bool {
        if self.mailbox_calls.len() >= MAX_MAILBOX_REQUESTS {
            return false;
        }
        let id = self
            .swarm
            .behaviour_mut()
            .mailbox
            .send_request(&server, request);
        self.mailbox_calls.insert(id, call);
        true
    }

    /// Asks every connected mailbox server of ours for new mail.
    fn fetch_all(&mut self) {
        let servers: Vec<PeerId> = self
            .my_mailboxes
            .iter()
            .map(|(p, _)| *p)
            .chain(self.lan_mailboxes.iter().copied())
            .collect();
        for server in servers {
            if self.swarm.is_connected(&server) {
                self.start_fetch(server);
            } else if let Some((_, addr)) = self.my_mailboxes.iter().find(|(p, _)| *p == server) {
                let addr = addr.clone();
                if let Err(e) = self.swarm.dial(addr) {
                    debug!(error = %e, "cannot dial mailbox server");
                }
            }
        }
    }

    fn start_fetch(&mut self, server: PeerId) {
        if self.fetching.contains_key(&server) {
            return;
        }
        self.fetching.insert(server, 0);
        if !self.mailbox_request(
            server,
            MailboxRequest::Challenge,
            MailboxCall::Challenge { server },
        ) {
            self.fetching.remove(&server);
        }
    }

    fn owner_auth(&self, server: PeerId, nonce: [u8; NONCE_LEN]) -> OwnerAuth {
        OwnerAuth::sign(self.engine.identity(), &server.to_bytes(), nonce)
    }

    fn fetch_page(&mut self, server: PeerId, nonce: [u8; NONCE_LEN]) {
        let auth = self.owner_auth(server, nonce);
        let max = u16::try_from(MAX_FETCH_ENVELOPES).unwrap_or(u16::MAX);
        if !self.mailbox_request(
            server,
            MailboxRequest::Fetch { auth, max },
            MailboxCall::Fetch { server, nonce },
        ) {
            self.fetching.remove(&server);
        }
    }

    /// Stores fetched envelopes, then acknowledges those that are safely stored (or can never be).
    fn take_fetched(
        &mut self,
        server: PeerId,
        nonce: [u8; NONCE_LEN],
        envelopes: Vec<Vec<u8>>,
        more: bool,
    ) {
        if let Some(count) = self.fetching.get_mut(&server) {
            *count += envelopes.len();
        }
        let mut done = Vec::with_capacity(envelopes.len());
        // Per sender: the message ids to confirm, and the envelopes that carried them.
        let mut receipts: HashMap<IdentityKey, Vec<(MessageId, Option<EnvelopeId>)>> =
            HashMap::new();
        // The whole page stored with one durable commit (group commit), acknowledged only after it.
        let slices: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
        let outcomes = self.engine.receive_many(&slices);
        for (bytes, outcome) in envelopes.iter().zip(outcomes) {
            let id = Envelope::decode(bytes).map(|e| e.id());
            match outcome {
                Ok(received) => {
                    // A new message, or a copy of one stored before (its sender never got our ack for the
                    // first copy, so it still shows only `sent`): either way the sender gets a receipt.
                    match &received {
                        Received::Message { message, .. } => {
                            receipts
                                .entry(message.conversation)
                                .or_default()
                                .push((message.id, id.as_ref().ok().copied()));
                        }
                        Received::Copy {
                            contact,
                            id: message,
                        } => {
                            receipts
                                .entry(*contact)
                                .or_default()
                                .push((*message, id.as_ref().ok().copied()));
                        }
                        _ => {}
                    }
                    self.report(received);
                    done.extend(id.ok());
                }
                // A store failure is worth another try; anything else will never decrypt.
                Err(ReceiveError::Store(e)) => {
                    warn!(error = %e, "cannot store fetched mail; will fetch again")
                }
                Err(e) => {
                    debug!(error = %e, "dropping undecryptable mail");
                    done.extend(id.ok());
                }
            }
        }
        // One delivery receipt per sender for the whole page, not one per message; each forgets the
        // envelopes it answers in the same commit, so a replayed copy earns no second receipt.
        for (sender, confirmed) in receipts {
            for chunk in confirmed.chunks(tern_protocol::message::MAX_RECEIPT_IDS) {
                let ids = chunk.iter().map(|(id, _)| *id).collect();
                let answered: Vec<EnvelopeId> = chunk.iter().filter_map(|(_, e)| *e).collect();
                if let Err(e) = self.engine.queue_delivered(&sender, ids, &answered) {
                    debug!(error = %e, "cannot queue a delivery receipt");
                }
            }
        }
        if !done.is_empty() {
            let auth = self.owner_auth(server, nonce);
            self.mailbox_request(
                server,
                MailboxRequest::Ack { auth, ids: done },
                MailboxCall::Ack,
            );
        }
        if more {
            self.fetch_page(server, nonce);
        } else if let Some(envelopes) = self.fetching.remove(&server) {
            self.emit(Event::MailboxChecked { server, envelopes });
        }
    }

    /// Behind NAT: listen through each configured server's circuit relay, so contacts can reach this node
    /// (and DCUtR can upgrade the relayed connection to a direct one).
    fn reserve_relays(&mut self) {
        if self.lan_only || self.relays_reserved {
            return;
        }
        self.relays_reserved = true;
        let servers: Vec<Multiaddr> = self.my_mailboxes.iter().map(|(_, a)| a.clone()).collect();
        for addr in servers {
            let circuit = addr.with(libp2p::multiaddr::Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(_) => info!(%circuit, "listening through a relay"),
                Err(e) => debug!(%circuit, error = %e, "cannot reserve a relay slot"),
            }
        }
    }

    /// Remembers the addresses of published mailbox servers and returns their PeerIds.
    fn learn_servers(&mut self, servers: &[tern_protocol::MailboxNode]) -> Vec<PeerId> {
        let mut peers = Vec::with_capacity(servers.len());
        for server in servers {
            let Ok(peer) = PeerId::from_bytes(&server.peer_id) else {
                continue;
            };
            for addr in &server.addresses {
                if let Ok(addr) = Multiaddr::try_from(addr.clone()) {
                    self.remember_addr(peer, addr);
                }
            }
            peers.push(peer);
        }
        peers
    }

    /// Where to deposit mail for `recipient`: the mailboxes in their card, else ours (shared community nodes),
    /// else mailboxes on the LAN.
    fn deposit_targets(&mut self, recipient: &IdentityKey) -> Vec<PeerId> {
        let mut targets: Vec<PeerId> = Vec::new();
        if let Ok(Some(contact)) = self.engine.store().contact(recipient)
            && let Ok(card) = tern_protocol::ContactCard::decode(&contact.card)
        {
            targets = self.learn_servers(&card.details().mailboxes);
        }
        if targets.is_empty()
            && let Some(Lookup::Found(found)) = self.lookups.get(recipient)
        {
            targets.extend(found.iter().copied());
        }
        if targets.is_empty() {
            targets.extend(self.my_mailboxes.iter().map(|(p, _)| *p));
            targets.extend(self.lan_mailboxes.iter().copied());
        }
        let mut seen = HashSet::new();
        targets.retain(|p| seen.insert(*p));
        targets
    }

    /// Starts depositing `entry` with up to [`DEPOSIT_COPIES`] connected mailbox servers. Returns whether
    /// any deposit is under way.
    fn deposit(&mut self, entry: &OutboxRecord) -> bool {
        if self.awaiting_lookup(&entry.recipient) {
            // Wait for the recipient's mailbox record before falling back to shared servers.
            return true;
        }
        let targets = self.deposit_targets(&entry.recipient);
        if targets.is_empty() {
            return false;
        }
        let needed = DEPOSIT_COPIES.min(targets.len());
        let progress = self
            .deposits
            .entry(entry.message_id)
            .or_insert_with(|| Deposit {
                entry: entry.clone(),
                stored: HashSet::new(),
                asked: HashSet::new(),
                needed,
            });
        let mut ask = Vec::new();
        for server in targets {
            if progress.stored.len() + progress.asked.len() >= needed {
                break;
            }
            if progress.stored.contains(&server) || progress.asked.contains(&server) {
                continue;
            }
            if self.swarm.is_connected(&server) {
                progress.asked.insert(server);
                ask.push(server);
            } else {
                let addrs = self.known_addrs.get(&server).cloned().unwrap_or_default();
                if let Err(e) = self
                    .swarm
                    .dial(DialOpts::peer_id(server).addresses(addrs).build())
                {
                    debug!(peer = %short(&server), error = %e, "cannot dial a mailbox");
                }
            }
        }
        let envelope = entry.envelope.clone();
        let message = entry.message_id;
        let mut any = !self
            .deposits
            .get(&message)
            .is_some_and(|d| d.asked.is_empty() && d.stored.is_empty());
        for server in ask {
            let request = MailboxRequest::Deposit {
                envelope: envelope.clone(),
            };
            if self.mailbox_request(server, request, MailboxCall::Deposit { server, message }) {
                any = true;
            } else if let Some(d) = self.deposits.get_mut(&message) {
                d.asked.remove(&server);
            }
        }
        any
    }

    fn deposit_answered(&mut self, server: PeerId, message: MessageId, stored: bool) {
        let Some(progress) = self.deposits.get_mut(&message) else {
            return;
        };
        progress.asked.remove(&server);
        if stored {
            progress.stored.insert(server);
        }
        if progress.stored.len() >= progress.needed {
            if let Some(done) = self.deposits.remove(&message) {
                match self.engine.delivered(&done.entry, MessageStatus::Sent) {
                    Ok(true) => self.emit(Event::StatusChanged {
                        contact: done.entry.recipient,
                        id: done.entry.message_id,
                        status: MessageStatus::Sent,
                    }),
                    Ok(false) => {}
                    Err(e) => warn!(error = %e, "cannot record a deposit"),
                }
            }
        } else if progress.asked.is_empty() {
            // Every server asked has answered and too few stored it: try again on a later pass (the
            // servers that did store it answer `Duplicate` then).
            let entry = progress.entry.clone();
            self.deposits.remove(&message);
            self.retry_later(&entry);
        }
    }

    fn handle_mailbox_event(
        &mut self,
        event: request_response::Event<MailboxRequest, MailboxResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let deposited = match &request {
                        MailboxRequest::Deposit { envelope } => Envelope::decode(envelope).ok(),
                        _ => None,
                    };
                    let garbage = matches!(request, MailboxRequest::Invalid);
                    let response = match self.mailbox_server.as_mut() {
                        Some(server) => server.handle(&peer, request, now_ms() / 1000),
                        None => MailboxResponse::Refused(crate::mailbox::Refusal::NotServing),
                    };
                    let stored = matches!(response, MailboxResponse::Deposited { .. });
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .mailbox
                        .send_response(channel, response);
                    if garbage {
                        debug!(peer = %short(&peer), "garbage on the mailbox protocol: disconnecting");
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                    if stored && let Some(envelope) = deposited {
                        self.push_to_owner(&envelope);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(call) = self.mailbox_calls.remove(&request_id) {
                        self.mailbox_answer(call, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(call) = self.mailbox_calls.remove(&request_id) {
                    debug!(error = %error, "mailbox request failed");
                    match call {
                        MailboxCall::Challenge { server } | MailboxCall::Fetch { server, .. } => {
                            self.fetching.remove(&server);
                        }
                        MailboxCall::Deposit { server, message } => {
                            self.deposit_answered(server, message, false)
                        }
                        MailboxCall::Ack => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn mailbox_answer(&mut self, call: MailboxCall, response: MailboxResponse) {
        match (call, response) {
            (MailboxCall::Challenge { server }, MailboxResponse::Nonce { nonce }) => {
                self.fetch_page(server, nonce)
            }
            (
                MailboxCall::Fetch { server, nonce },
                MailboxResponse::Envelopes { envelopes, more },
            ) => {
                self.take_fetched(server, nonce, envelopes, more);
            }
            (
                MailboxCall::Deposit { server, message },
                MailboxResponse::Deposited { .. } | MailboxResponse::Duplicate { .. },
            ) => {
                self.deposit_answered(server, message, true);
            }
            (MailboxCall::Deposit { server, message }, response) => {
                debug!(?response, "mailbox refused a deposit");
                self.deposit_answered(server, message, false);
            }
            (MailboxCall::Ack, _) => {}
            (MailboxCall::Challenge { server } | MailboxCall::Fetch { server, .. }, response) => {
                debug!(?response, "mailbox refused a fetch");
                self.fetching.remove(&server);
            }
        }
    }

    /// Hands freshly deposited mail straight to its owner when the owner is connected and has proved
    /// ownership here; the owner's ack deletes it from the mailbox.
    fn push_to_owner(&mut self, envelope: &Envelope) {
        let Some(server) = self.mailbox_server.as_ref() else {
            return;
        };
        let owners: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| server.owned_by(p).contains(&envelope.mailbox))
            .copied()
            .collect();
        let Some(owner) = owners.first() else {
            return;
        };
        match EnvelopeRequest::from_envelope(envelope) {
            Ok(request) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .envelope
                    .send_request(owner, request);
                self.pushes.insert(id, (envelope.mailbox, envelope.id()));
            }
            Err(e) => debug!(error = %e, "cannot push mail"),
        }
    }

    fn push_answered(&mut self, mailbox: MailboxId, id: EnvelopeId, ack: Option<EnvelopeAck>) {
        if matches!(ack, Some(EnvelopeAck::Accepted | EnvelopeAck::Duplicate))
            && let Some(server) = self.mailbox_server.as_mut()
            && let Err(e) = server.remove(&mailbox, &[id])
        {
            warn!(error = %e, "cannot delete pushed mail");
        }
    }

    fn purge_mailbox(&mut self) {
        if let Some(server) = self.mailbox_server.as_mut() {
            match server.purge_expired(now_ms() / 1000) {
                Ok(0) => {}
                Ok(n) => debug!(expired = n, "purged expired mail"),
                Err(e) => warn!(error = %e, "cannot purge expired mail"),
            }
        }
    }

    /// Queues a delivery receipt for one message and forgets the envelope that carried it, in one commit
    /// (one receipt per envelope: a replayed copy does not make this node write to the sender again).
    fn send_delivered_receipt(
        &mut self,
        to: IdentityKey,
        id: MessageId,
        envelope: Option<EnvelopeId>,
    ) {
        let answered: Vec<EnvelopeId> = envelope.into_iter().collect();
        if let Err(e) = self.engine.queue_delivered(&to, vec![id], &answered) {
            debug!(error = %e, "cannot queue a delivery receipt");
        }
    }
}

impl EventLoop {
    /// Publishes this profile's mailbox record, once per start (and per republish interval).
    fn publish_record(&mut self) {
        if self.published {
            return;
        }
        let Some(record) = self.record.as_ref() else {
            return;
        };
        let key = crate::net::dht::mailbox_record_key(&record.identity().mailbox_id());
        let value = record.encode().to_vec();
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
            && let Err(e) = kad.put_record(kad::Record::new(key, value), kad::Quorum::One)
        {
            debug!(error = %e, "cannot store the mailbox record locally");
        }
    }

    /// Whether a mailbox record lookup for `recipient` (whose card names no mailbox) is under way or should
    /// start now; starts it if so.
    fn awaiting_lookup(&mut self, recipient: &IdentityKey) -> bool {
        let card_has_mailboxes = matches!(
            self.engine.store().contact(recipient),
            Ok(Some(c)) if tern_protocol::ContactCard::decode(&c.card)
                .is_ok_and(|card| !card.details().mailboxes.is_empty())
        );
        if card_has_mailboxes || self.swarm.behaviour().kad.as_ref().is_none() {
            return false;
        }
        match self.lookups.get(recipient) {
            Some(Lookup::Pending { .. }) => true,
            Some(Lookup::Found(_)) => false,
            Some(Lookup::Missing { at }) if at.elapsed() < LOOKUP_RETRY => false,
            _ => {
                if self.lookups.len() >= MAX_LOOKUPS {
                    self.lookups
                        .retain(|_, l| matches!(l, Lookup::Pending { .. }));
                }
                let key = crate::net::dht::mailbox_record_key(&recipient.mailbox_id());
                let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else {
                    return false;
                };
                let query = kad.get_record(key);
                self.lookup_queries.insert(query, *recipient);
                self.lookups
                    .insert(*recipient, Lookup::Pending { best: None });
                true
            }
        }
    }

    fn lookup_progress(&mut self, id: kad::QueryId, result: kad::GetRecordResult, last: bool) {
        let Some(&recipient) = self.lookup_queries.get(&id) else {
            return;
        };
        if let Ok(kad::GetRecordOk::FoundRecord(found)) = &result
            && let Some(record) = crate::net::dht::mailbox_record(&found.record)
            && record.identity() == recipient
            && let Some(Lookup::Pending { best }) = self.lookups.get_mut(&recipient)
            && best
                .as_ref()
                .is_none_or(|b| b.revision() < record.revision())
        {
            *best = Some(record);
        }
        let finished = last
            || result.is_err()
            || matches!(
                result,
                Ok(kad::GetRecordOk::FinishedWithNoAdditionalRecord { .. })
            );
        if !finished {
            return;
        }
        self.lookup_queries.remove(&id);
        let best = match self.lookups.remove(&recipient) {
            Some(Lookup::Pending { best }) => best,
            _ => None,
        };
        let lookup = match best {
            Some(record) => {
                let peers = self.learn_servers(record.servers());
                debug!(servers = peers.len(), "found a mailbox record");
                Lookup::Found(peers)
            }
            None => Lookup::Missing {
                at: std::time::Instant::now(),
            },
        };
        self.lookups.insert(recipient, lookup);
        self.flush_outbox(None);
    }
}

/// The ack for an envelope that was not taken.
fn ack_for(error: &ReceiveError) -> EnvelopeAck {
    use tern_protocol::envelope::OpenError;
    match error {
        ReceiveError::Open(OpenError::Expired { .. }) => {
            EnvelopeAck::Rejected(RejectReason::Expired)
        }
        ReceiveError::Open(OpenError::NotForMe) => {
            EnvelopeAck::Rejected(RejectReason::UnknownMailbox)
        }
        // Already decrypted once (a retry whose ack was lost): the sender may stop.
        ReceiveError::Decrypt(tern_protocol::DecryptError::DuplicateOrExpired { .. }) => {
            EnvelopeAck::Duplicate
        }
        ReceiveError::Store(_) => EnvelopeAck::Rejected(RejectReason::Internal),
        _ => EnvelopeAck::Rejected(RejectReason::Malformed),
    }
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
    delivered: Vec<OutboxRecord>,
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

impl EventLoop {
    /// Handles every swarm event that is ready now (up to [`MAX_EVENTS_PER_WAKE`]), then stores what they
    /// carried with one commit per kind and only then answers.
    fn drain_swarm(&mut self) {
        use futures::FutureExt;
        for _ in 1..MAX_EVENTS_PER_WAKE {
            match self.swarm.next().now_or_never() {
                Some(Some(event)) => self.handle_swarm_event(event),
                _ => break,
            }
        }
        self.answer_inbound();
        self.record_delivered();
    }

    /// Records this wake-up's acknowledged envelopes as delivered, in one commit.
    fn record_delivered(&mut self) {
        if self.pending.delivered.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.pending.delivered);
        match self
            .engine
            .delivered_many(&entries, MessageStatus::Delivered)
        {
            Ok(changed) => {
                for (entry, changed) in entries.iter().zip(changed) {
                    if changed {
                        self.emit(Event::StatusChanged {
                            contact: entry.recipient,
                            id: entry.message_id,
                            status: MessageStatus::Delivered,
                        });
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot record deliveries"),
        }
    }

    /// Seals `first` and every send command already queued behind it (up to [`MAX_SENDS_PER_COMMIT`]) and
    /// stores them with one durable commit; only then answers each caller and sends the envelopes. A
    /// command of another kind met in the queue is set aside for the next turn of the loop.
    fn send_texts(&mut self, mut sends: Vec<(IdentityKey, String, SendReply)>) {
        while sends.len() < MAX_SENDS_PER_COMMIT && self.pending.command.is_none() {
            match self.commands.try_recv() {
                Ok(Command::SendText { to, text, reply }) => sends.push((to, text, reply)),
                Ok(other) => self.pending.command = Some(other),
                Err(_) => break,
            }
        }
        let texts: Vec<(IdentityKey, String)> = sends
            .iter()
            .map(|(to, text, _)| (*to, text.clone()))
            .collect();
        let results = self.engine.send_texts(&texts);
        for ((_, _, reply), result) in sends.into_iter().zip(results) {
            match result {
                Ok((message, entry)) => {
                    let _ = reply.send(Ok(message));
                    self.deliver_now(entry);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            }
        }
    }
}
