//! The [`Node`] handle and the event loop behind it.
//!
//! - `handle.rs`: [`Node`], one typed method per operation; writes are commands with a `oneshot` reply, reads
//!   run on a store reader on a blocking thread.
//! - `commands.rs`: the commands, handled on the loop, and `emit`, which turns the loop's events into
//!   [`api::Event`]s that name contacts.
//! - `event_loop.rs`: the loop's turn (commands, swarm events, the state machines' timers) and the group
//!   commit of everything one wake-up took.
//! - `delivery.rs`, `mailbox_client.rs`, `mailbox_host.rs`: carry out the decisions of the delivery machine
//!   (`crate::delivery`), the mailbox client (`crate::mailbox::client`) and the mailbox host.
//! - `inbound.rs`, `swarm_events.rs`, `dht.rs`: envelopes received, connections and discovery, the DHT.
//! - `groups.rs`, `group_inbound.rs`, `group_handle.rs`: groups (docs/protocol.md §18) on the loop, the
//!   group bodies received in 1:1 sessions, and the handle's group methods; `group_gossip.rs`: group
//!   messages over gossipsub, one topic per group and epoch, validated before they are passed on.
//! - `group_mail.rs`: group mail (§18.6): a group's queue opened, deposited to and fetched from on its
//!   mailbox servers, driven by `crate::mailbox::group_client`.
//! - `files.rs`: files on the handle (send, save, pause, resume, cancel, delete) and the rows the loop
//!   writes for them; the transfers run beside the loop in `file_wire.rs`.
//! - `reach.rs`: reaching contacts across the internet: address records, presence, relays, direct or relayed.
//! - `expiry.rs`: disappearing messages: deleting what expired, with its file, when it is due.
//!
//! One task owns the swarm and the [`Engine`] (and with it the store's writer). Events go out on a bounded
//! broadcast channel, so a slow consumer (the GUI) only ever loses events (it sees `Lagged` and reads
//! again), never stalls the swarm.

mod commands;
mod delivered;
mod delivery;
mod dht;
mod event_loop;
mod expiry;
mod file_wire;
mod files;
mod group_book;
mod group_gossip;
mod group_handle;
mod group_inbound;
mod group_links;
mod group_mail;
mod group_receipts;
mod group_timers;
mod group_updates;
mod groups;
mod handle;
mod inbound;
mod mailbox_client;
mod mailbox_host;
mod reach;
mod swarm_events;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, autonat, identify, kad, mdns};
use tern_protocol::{Body, IdentityKey, MessageId};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{Instrument, debug, info, info_span, warn};

pub use crate::api::peer_id_of;
pub use crate::config::{GroupReceipts, GroupUpdates, NodeConfig};
pub use crate::error::NodeError;
pub(crate) use files::WeakNode;
pub use files::media_type_of;
pub use group_gossip::{GroupGossip, MAX_GOSSIP_REJECTS};
pub use group_links::{GROUP_LINKS_SETTING, MAX_GROUP_LINKS, MAX_JOIN_REQUESTS};
pub use handle::Node;

use crate::api::{self, NatStatus, NetStatus};
use crate::api::{Message, MessageStatus};
use crate::contact::ContactEntry;
use crate::engine::{Engine, EngineError, ReceiveError, Received, Via, now_ms};
use crate::mailbox::server::MailboxServer;
use crate::mailbox::wire::{
    MAILBOX_PROTOCOL, MAX_FETCH_ENVELOPES, MailboxRequest, MailboxResponse, NONCE_LEN, OwnerAuth,
};
use crate::net::{
    ClientBehaviour, ClientBehaviourEvent, EnvelopeAck, EnvelopeRequest, RejectReason, build_swarm,
};
use crate::outbox::OutboxEntry;
use commands::Command;

/// Commands waiting for the event loop.
pub const COMMAND_QUEUE: usize = 64;
/// Events kept for slow subscribers before they lag.
pub const EVENT_QUEUE: usize = 1024;
pub use crate::delivery::{
    DEPOSIT_COPIES, LOOKUP_RETRY, MAX_IN_FLIGHT, MAX_LOOKUPS, MAX_WAITING, OUTBOX_BATCH,
    OUTBOX_TICK,
};
/// Contact names remembered for events.
pub const MAX_NAMES: usize = 1024;
/// Peers whose addresses are remembered from mDNS and dials.
pub const MAX_KNOWN_PEERS: usize = 1024;
/// Addresses remembered per peer.
pub const MAX_ADDRS_PER_PEER: usize = 8;
pub use crate::mailbox::client::{FETCH_INTERVAL, MAX_MAILBOX_REQUESTS};
/// Mailbox servers remembered from the LAN (peers announcing `/tern/mailbox/1`).
pub const MAX_LAN_MAILBOXES: usize = 16;
/// How often a running node checks whether an automatic backup is due.
pub const AUTO_BACKUP_CHECK: Duration = Duration::from_secs(600);
/// How often this profile's mailbox record is published again.
pub const REPUBLISH_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// What the event loop reports; [`EventLoop::emit`] turns it into an [`api::Event`] for the handle's
/// subscribers, naming contacts on the way.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// The swarm listens on a new address.
    Listening {
        address: Multiaddr,
    },
    /// A new message arrived and is stored.
    MessageReceived {
        message: Message,
    },
    /// Someone not in the contacts wrote: accept or block them.
    ContactRequest {
        contact: ContactEntry,
    },
    /// A known contact's key changed: the verified mark was dropped.
    KeyChanged {
        contact: IdentityKey,
    },
    /// A contact's re-issued card is on file (its name may have changed).
    ContactUpdated {
        contact: ContactEntry,
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
    /// An envelope from this contact could not be decrypted.
    Undecryptable {
        contact: IdentityKey,
    },
    /// This profile's mailbox record was stored in the DHT.
    MailboxRecordPublished,
    /// This node's address record was stored in the DHT.
    AddressesPublished {
        addresses: Vec<Multiaddr>,
    },
    /// A connected contact is now reached directly, or only through a relay.
    ContactReach {
        contact: IdentityKey,
        reach: api::Reach,
    },
    /// AutoNAT's verdict on whether this node is reachable from the internet changed.
    Nat {
        status: NatStatus,
    },
    /// A mailbox server was read to the end; `envelopes` is how many it handed over this time.
    MailboxChecked {
        server: PeerId,
        envelopes: usize,
    },
    /// An automatic backup was written.
    BackupWritten {
        path: std::path::PathBuf,
    },
    /// These messages' disappearing-message timer ran out: they are deleted.
    MessagesExpired {
        conversation: api::ConversationId,
        ids: Vec<MessageId>,
    },
}

fn short(peer: &PeerId) -> String {
    let text = peer.to_base58();
    text[text.len().saturating_sub(6)..].to_owned()
}

struct EventLoop {
    swarm: Swarm<ClientBehaviour>,
    engine: Engine,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<api::Event>,
    /// Every delivery decision: what to send, dial, deposit, retry (`crate::delivery`).
    delivery: delivery::DeliveryMachine,
    /// Envelope requests awaiting an ack, with the message each carries (at most the machine's
    /// [`MAX_IN_FLIGHT`]).
    envelope_requests: HashMap<OutboundRequestId, MessageId>,
    /// Requests whose ack nobody waits for (typing).
    fire_and_forget: HashSet<OutboundRequestId>,
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
    /// Address records, presence, relay reservations, and how contacts are reached.
    reach: reach::ReachState,
    /// Mailbox requests awaiting an answer.
    mailbox_calls: HashMap<OutboundRequestId, MailboxCall>,
    /// Every mailbox client decision: when to fetch from which server, pages, acks (`crate::mailbox::client`).
    mailbox_client: crate::mailbox::client::MailboxClient,
    /// The mailbox this node serves for others, if any (with its pushes to connected owners).
    mailbox_host: Option<mailbox_host::NodeMailboxHost>,
    /// This profile's signed mailbox record, published in the DHT (not in LAN-only mode).
    record: Option<tern_protocol::MailboxRecord>,
    /// Whether the record has been stored by at least one DHT node since start.
    published: bool,
    /// Mailbox record lookups under way (asked for by the delivery machine, at most [`MAX_LOOKUPS`]), with
    /// the newest record found so far.
    lookup_queries: HashMap<kad::QueryId, (IdentityKey, Option<tern_protocol::MailboxRecord>)>,
    /// Inbound requests refused, by kind (see [`NetStatus::refusals`]).
    refusals: BTreeMap<String, u64>,
    /// Contacts' names as events show them, so an event does not read and decrypt the contact's row
    /// (at most [`MAX_NAMES`]; forgotten when a command changes the contact).
    names: std::cell::RefCell<HashMap<IdentityKey, String>>,
    /// Work taken in this wake-up, to be committed together (see [`Pending`]).
    pending: Pending,
    /// The groups this profile is in (`groups.rs`).
    groups: groups::Groups,
    /// Group mail: queues, deposits, fetches (`crate::mailbox::group_client`, `group_mail.rs`).
    group_mail: crate::mailbox::group_client::GroupMail,
    /// Group mail requests awaiting an answer (at most [`group_mail::MAX_GROUP_MAIL_REQUESTS`]).
    group_mail_calls: HashMap<OutboundRequestId, group_mail::GroupMailCall>,
    /// Commits of texts sent under reserved keys, running off the loop (`event_loop.rs`,
    /// `send_reserved`); at most one runs at a time (redb admits one writer), the others wait in redb.
    commits: Vec<tokio::task::JoinHandle<()>>,
    /// File transfers beside the loop: an expired message's file is removed through them (`expiry.rs`).
    files: Option<std::sync::Arc<file_wire::FileWire>>,
    /// While a group file's announcement is fanned out: its record, so that the 1:1 copies queued for
    /// members are known as carrying it (their mailbox servers are then asked to hold the file, §19.10).
    fanout_file: Option<crate::store::AttachmentRecord>,
}

/// A configured mailbox server (an address ending in `/p2p/<peer id>`) as the card names it: its PeerId and
/// that one address. `None` without a `/p2p/` part.
pub fn mailbox_node_of(addr: &Multiaddr) -> Option<tern_protocol::MailboxNode> {
    let peer = crate::net::swarm::peer_id_of(addr)?;
    Some(tern_protocol::MailboxNode {
        peer_id: peer.to_bytes(),
        addresses: vec![addr.to_vec()],
    })
}

impl EventLoop {
    /// Builds the swarm for `engine`'s identity and the loop that will own both, taking commands from
    /// `commands` and sending events on `events`.
    fn new(
        mut engine: Engine,
        config: NodeConfig,
        commands: mpsc::Receiver<Command>,
        events: broadcast::Sender<api::Event>,
    ) -> Result<Self, NodeError> {
        let servers: Vec<tern_protocol::MailboxNode> = config
            .mailboxes
            .iter()
            .filter_map(mailbox_node_of)
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
        let mailbox_host = match &config.serve_mailbox {
            Some((path, limits)) => Some(mailbox_host::NodeMailboxHost::new(
                MailboxServer::open(path, peer_id.to_bytes(), limits.clone())
                    .map_err(NodeError::Mailbox)?,
            )),
            None => None,
        };
        for addr in &config.peers {
            if let Err(e) = swarm.dial(addr.clone()) {
                warn!(%addr, error = %e, "cannot dial configured peer");
            }
        }
        // Relays: the bootstrap nodes, else the configured mailbox servers.
        let relays: Vec<Multiaddr> = if config.net.bootstrap.is_empty() {
            config.mailboxes.clone()
        } else {
            config.net.bootstrap.clone()
        };
        let event_loop = EventLoop {
            swarm,
            engine,
            commands,
            events,
            delivery: delivery::DeliveryMachine::new(std::time::Instant::now()),
            envelope_requests: HashMap::new(),
            fire_and_forget: HashSet::new(),
            known_addrs: HashMap::new(),
            lan_only: config.net.lan_only,
            my_mailboxes: Vec::new(),
            lan_mailboxes: Vec::new(),
            mdns_peers: HashSet::new(),
            nat: NatStatus::Unknown,
            reach: reach::ReachState::new(&config.net, relays),
            mailbox_calls: HashMap::new(),
            mailbox_client: crate::mailbox::client::MailboxClient::new(std::time::Instant::now()),
            mailbox_host,
            record,
            published: false,
            lookup_queries: HashMap::new(),
            refusals: BTreeMap::new(),
            names: std::cell::RefCell::new(HashMap::new()),
            pending: Pending::default(),
            groups: groups::Groups::default(),
            group_mail: crate::mailbox::group_client::GroupMail::new(std::time::Instant::now()),
            group_mail_calls: HashMap::new(),
            commits: Vec::new(),
            files: None,
            fanout_file: None,
        };
        let mut event_loop = event_loop;
        event_loop.groups = groups::Groups::load(&event_loop.engine);
        event_loop.groups.receipts.enabled =
            config.group_receipts == crate::config::GroupReceipts::On;
        event_loop.groups.updates.policy = config.group_updates;
        let stored: Vec<[u8; 32]> = event_loop.groups.by_conv.keys().copied().collect();
        for key in stored {
            event_loop.gossip_sync(key);
            event_loop.schedule_group_update(key);
        }
        event_loop.group_mail_start();
        event_loop.group_links_start();
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
        event_loop.update_shared_servers();
        let servers = event_loop.my_mailboxes.iter().map(|(p, _)| *p).collect();
        event_loop.mailbox_client.handle_servers(servers);
        event_loop.reach_start();
        Ok(event_loop)
    }
}

/// What an outstanding mailbox request was for.
enum MailboxCall {
    Challenge {
        server: PeerId,
    },
    Fetch {
        server: PeerId,
    },
    Ack {
        server: PeerId,
    },
    /// A paged fetch (its acknowledgement rides on it).
    FetchPage {
        server: PeerId,
    },
    Deposit {
        server: PeerId,
        message: MessageId,
        /// Whose mail it is: a file it announces is then offered to the server to hold.
        recipient: IdentityKey,
    },
}

/// Swarm events taken per wake-up before the work they carried is committed together: the bound on how
/// long one group commit keeps other work waiting.
pub const MAX_EVENTS_PER_WAKE: usize = 256;
/// Queued send commands taken together into one group commit.
pub const MAX_SENDS_PER_COMMIT: usize = 64;
/// While other envelopes are being delivered, acknowledged ones wait at most this long to be recorded as
/// delivered (`delivered::Acked`).
pub const DELIVERED_RECORD_DELAY: Duration = Duration::from_millis(20);
/// Acknowledged envelopes waiting to be recorded: this many are recorded at once.
pub const MAX_DELIVERED_PENDING: usize = 128;

/// Group commit: work taken from the swarm or the command queue in one wake-up of the event loop, committed
/// with one durable commit per kind (received envelopes, sends) before anyone is answered; deliveries are
/// gathered across wake-ups for up to [`DELIVERED_RECORD_DELAY`] (nobody waits on them but the status shown).
/// Every answer still waits for the commit that made it true; only the number of fsyncs per message drops.
#[derive(Default)]
struct Pending {
    /// Received envelopes, answered after they are stored.
    inbound: Vec<(PeerId, EnvelopeRequest, ResponseChannel<EnvelopeAck>)>,
    /// Outbox entries acknowledged by their recipients, to be recorded as delivered.
    delivered: delivered::Acked<OutboxEntry>,
    /// A command taken from the queue while gathering sends that is not a send: handled next.
    command: Option<Command>,
}

/// How a send command answers.
type SendReply = oneshot::Sender<Result<api::Message, NodeError>>;

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
