//! The user node's network behaviour, and the parts of it a bootstrap server composes too.
//!
//! Every part that both roles need (identify, Kademlia, connection limits, AutoNAT, the framed
//! request-response protocols) is built by a function here, so the two roles agree on protocol names and
//! limits by construction.

use std::{io, time::Duration};

use libp2p::{
    PeerId, StreamProtocol, autonat, connection_limits, dcutr, gossipsub, identify,
    identity::{Keypair, PublicKey},
    kad, mdns, ping, relay,
    request_response::{self, ProtocolSupport},
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle},
};

use crate::envelope_wire::{EnvelopeCodec, EnvelopeProtocol, FrameCodec, FrameProtocol};
use crate::mailbox::wire::{MailboxCodec, MailboxProtocol};

/// The identify protocol version every Tern peer announces; peers announcing another are not Tern peers.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/tern/1.0.0";
/// Tern's own Kademlia DHT, kept apart from the public IPFS DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/tern/kad/1.0.0");
/// How often mDNS asks the LAN who is there (libp2p's default of five minutes is far too slow).
pub const DEFAULT_MDNS_QUERY_INTERVAL: Duration = Duration::from_secs(2);
/// How long a request-response exchange may take before it fails. Generous: envelopes may cross a relay.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many requests of one protocol a Tern peer keeps outstanding on a connection (its own sends).
pub const MAX_CONCURRENT_STREAMS: usize = 32;
/// The request-response bound on streams per connection, inbound and outbound together (libp2p counts both
/// against one limit and drops what exceeds it): room for our [`MAX_CONCURRENT_STREAMS`] requests, as many
/// from the peer, and 16 more that no window counts (typing notices, pushes from a mailbox). At 32 for both,
/// two peers sending to each other at full window overflowed it and every overflowing envelope waited for a
/// retry (`tern-bench throughput`: 40 messages/s).
pub const STREAMS_PER_CONNECTION: usize = 2 * MAX_CONCURRENT_STREAMS + 16;
/// How long a Kademlia query may run.
pub const KAD_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection limits, enforced by the behaviour [`connection_limits()`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Established connections in total.
    pub max_established: u32,
    /// Established connections to one peer (TCP, QUIC, relayed and hole-punched may coexist briefly).
    pub max_established_per_peer: u32,
    /// Incoming connections still handshaking.
    pub max_pending_incoming: u32,
    /// Outgoing connections still handshaking.
    pub max_pending_outgoing: u32,
}

impl Limits {
    /// Limits for a user node.
    pub const CLIENT: Self = Self {
        max_established: 128,
        max_established_per_peer: 4,
        max_pending_incoming: 32,
        max_pending_outgoing: 32,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::CLIENT
    }
}

/// The connection-limits behaviour for `limits`.
pub fn connection_limits(limits: &Limits) -> connection_limits::Behaviour {
    connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(limits.max_established))
            .with_max_established_per_peer(Some(limits.max_established_per_peer))
            .with_max_pending_incoming(Some(limits.max_pending_incoming))
            .with_max_pending_outgoing(Some(limits.max_pending_outgoing)),
    )
}

/// The identify configuration: Tern's protocol version and the given agent string.
pub fn identify_config(public: PublicKey, agent_version: &str) -> identify::Config {
    identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_owned(), public)
        .with_agent_version(agent_version.to_owned())
        .with_push_listen_addr_updates(true)
}

/// The Kademlia configuration: Tern's protocol name, a bounded query time, and inbound records handed to the
/// event loop for validation rather than stored unseen.
pub fn kad_config() -> kad::Config {
    let mut config = kad::Config::new(KAD_PROTOCOL);
    config
        .set_query_timeout(KAD_QUERY_TIMEOUT)
        .set_record_filtering(kad::StoreInserts::FilterBoth);
    config
}

/// A Kademlia behaviour over a bounded in-memory store.
///
/// It starts in client mode and switches to server mode by itself once the swarm has a confirmed external
/// address, which is what AutoNAT reports when it finds the node publicly reachable.
pub fn kad_behaviour(local_peer_id: PeerId) -> kad::Behaviour<kad::store::MemoryStore> {
    kad::Behaviour::with_config(
        local_peer_id,
        kad::store::MemoryStore::new(local_peer_id),
        kad_config(),
    )
}

/// The AutoNAT (v1) configuration: probe only through peers seen at global addresses, and serve few probes,
/// since a user node is not a public service.
pub fn autonat_config() -> autonat::Config {
    autonat::Config {
        only_global_ips: true,
        throttle_clients_global_max: 8,
        throttle_clients_peer_max: 2,
        ..autonat::Config::default()
    }
}

/// An mDNS behaviour that queries every `query_interval`. Must be called inside a tokio runtime.
pub fn mdns_behaviour(
    local_peer_id: PeerId,
    query_interval: Duration,
) -> io::Result<mdns::tokio::Behaviour> {
    let config = mdns::Config {
        query_interval,
        ..mdns::Config::default()
    };
    mdns::tokio::Behaviour::new(config, local_peer_id)
}

/// A request-response behaviour for a framed protocol.
pub fn frame_behaviour<P: FrameProtocol>(
    support: ProtocolSupport,
    request_timeout: Duration,
) -> request_response::Behaviour<FrameCodec<P>> {
    request_response::Behaviour::with_codec(
        FrameCodec::new(),
        [(P::PROTOCOL, support)],
        request_response::Config::default()
            .with_request_timeout(request_timeout)
            .with_max_concurrent_streams(STREAMS_PER_CONNECTION),
    )
}

/// The `/tern/envelope/1` behaviour, sending and receiving.
pub fn envelope_behaviour(request_timeout: Duration) -> request_response::Behaviour<EnvelopeCodec> {
    frame_behaviour::<EnvelopeProtocol>(ProtocolSupport::Full, request_timeout)
}

/// The `/tern/mailbox/1` behaviour: a client only asks; a node serving mailboxes also answers.
pub fn mailbox_behaviour(
    serve: bool,
    request_timeout: Duration,
) -> request_response::Behaviour<MailboxCodec> {
    let support = if serve {
        ProtocolSupport::Full
    } else {
        ProtocolSupport::Outbound
    };
    frame_behaviour::<MailboxProtocol>(support, request_timeout)
}

/// How often gossipsub maintains its meshes (libp2p's default is 1 s; groups are small, so meshes form fast).
pub const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(500);
/// Heartbeats a received message stays in gossipsub's cache: 10 s, the time the node has to validate it
/// before gossipsub no longer passes it on (libp2p's default, 5, would be 2.5 s at this heartbeat).
pub const GOSSIP_HISTORY: usize = 20;
/// How long a frame to a peer may wait in gossipsub's send queue before it is dropped (libp2p's defaults
/// are 5 s for a publish and 1 s for a forward, which a busy node can miss).
pub const GOSSIP_QUEUE_WAIT: Duration = Duration::from_secs(10);
/// Largest gossip frame: the largest group message (docs/protocol.md §18.7) and 1 KiB for the framing.
pub const MAX_GOSSIP_TRANSMIT: usize = crate::group::MAX_GROUP_MESSAGE_LEN + 1024;

/// The gossipsub behaviour for group messages (docs/protocol.md §18.6): anonymous (no author PeerId,
/// sequence number or libp2p signature on a message; the MLS message authenticates its sender to members),
/// message ids by content hash (so a copy is dropped whatever path it took), every message held until the
/// node validated it (`report_message_validation_result`), and frames capped at [`MAX_GOSSIP_TRANSMIT`].
pub fn gossip_behaviour() -> Result<gossipsub::Behaviour, &'static str> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::from(tern_protocol::crypto::sha256(&[&message.data]).to_vec())
        })
        .max_transmit_size(MAX_GOSSIP_TRANSMIT)
        .heartbeat_interval(GOSSIP_HEARTBEAT)
        .history_length(GOSSIP_HISTORY)
        .publish_queue_duration(GOSSIP_QUEUE_WAIT)
        .forward_queue_duration(GOSSIP_QUEUE_WAIT)
        // Publishes go to every connected peer on the topic, not only to the mesh: the node counts on it
        // when it skips the 1:1 copy for those peers.
        .flood_publish(true)
        .build()
        .map_err(|_| "invalid gossipsub configuration")?;
    gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)
}

/// How to assemble a [`ClientBehaviour`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBehaviourConfig {
    /// Only the LAN: no Kademlia, AutoNAT or DCUtR.
    pub lan_only: bool,
    /// The identify agent string.
    pub agent_version: String,
    /// Connection limits.
    pub limits: Limits,
    /// The request-response timeout.
    pub request_timeout: Duration,
    /// Answer `/tern/mailbox/1` requests (a LAN node started with `--mailbox`).
    pub serve_mailbox: bool,
    /// Take and give loopback and private addresses (LAN mode, or every node on one host). Otherwise identify
    /// neither announces this node's listen addresses (only its confirmed external ones) nor remembers those
    /// of peers for later dials: a contact's addresses come from its address record, filtered.
    pub local_addresses: bool,
    /// Reach and be reached through relays only (tests and labs): no DCUtR.
    pub relay_only: bool,
}

impl Default for ClientBehaviourConfig {
    fn default() -> Self {
        Self {
            lan_only: false,
            agent_version: default_agent_version(),
            limits: Limits::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            serve_mailbox: false,
            local_addresses: false,
            relay_only: false,
        }
    }
}

/// `tern-node/<crate version>`.
pub fn default_agent_version() -> String {
    format!("tern-node/{}", env!("CARGO_PKG_VERSION"))
}

/// Everything a user node speaks.
#[derive(NetworkBehaviour)]
pub struct ClientBehaviour {
    /// Caps on connections; first, so it can deny a connection before the others see it.
    pub limits: connection_limits::Behaviour,
    /// Exchanges listen addresses, protocols and agent strings with every peer.
    pub identify: identify::Behaviour,
    /// Keeps an eye on connection liveness.
    pub ping: ping::Behaviour,
    /// LAN discovery; off when disabled in the configuration.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// The Tern DHT; off in LAN-only mode.
    pub kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    /// Learns whether the node is publicly reachable; off in LAN-only mode.
    pub autonat: Toggle<autonat::Behaviour>,
    /// Reservations and circuits through relays; off in LAN-only mode.
    pub relay: Toggle<relay::client::Behaviour>,
    /// Hole punching over relayed connections; off in LAN-only mode.
    pub dcutr: Toggle<dcutr::Behaviour>,
    /// `/tern/envelope/1`.
    pub envelope: request_response::Behaviour<EnvelopeCodec>,
    /// `/tern/mailbox/1`: deposits and fetches as a client, and answers when serving.
    pub mailbox: request_response::Behaviour<MailboxCodec>,
    /// Keeps connections to contacts open while both nodes run.
    pub keep_alive: super::keep_alive::Behaviour,
    /// Carries `/tern/file/1` streams for `crate::files::FileService`, which runs beside the event loop.
    pub stream: libp2p_stream::Behaviour,
    /// Group messages to online members (docs/protocol.md §18.6), built by [`gossip_behaviour`], on
    /// connections to contacts and fellow group members only.
    pub gossip: super::gossip_gate::Gate,
}

impl ClientBehaviour {
    /// Assembles the behaviour. The fallible or transport-bound parts come in ready-made: `mdns` (see
    /// [`mdns_behaviour`]), `relay` (from the swarm builder's relay transport) and `gossip` (see
    /// [`gossip_behaviour`]). In LAN-only mode `relay`
    /// is dropped, and Kademlia, AutoNAT and DCUtR are left out.
    pub fn new(
        keypair: &Keypair,
        config: &ClientBehaviourConfig,
        mdns: Option<mdns::tokio::Behaviour>,
        relay: Option<relay::client::Behaviour>,
        gossip: gossipsub::Behaviour,
    ) -> Self {
        let peer_id = keypair.public().to_peer_id();
        let wan = !config.lan_only;
        let local = config.lan_only || config.local_addresses;
        let mut identify = identify_config(keypair.public(), &config.agent_version);
        if !local {
            identify = identify.with_cache_size(0).with_hide_listen_addrs(true);
        }
        Self {
            limits: connection_limits(&config.limits),
            identify: identify::Behaviour::new(identify),
            ping: ping::Behaviour::new(ping::Config::new()),
            mdns: mdns.into(),
            kad: wan.then(|| kad_behaviour(peer_id)).into(),
            autonat: wan
                .then(|| autonat::Behaviour::new(peer_id, autonat_config()))
                .into(),
            relay: relay.filter(|_| wan).into(),
            dcutr: (wan && !config.relay_only)
                .then(|| dcutr::Behaviour::new(peer_id))
                .into(),
            envelope: envelope_behaviour(config.request_timeout),
            mailbox: mailbox_behaviour(config.serve_mailbox, config.request_timeout),
            keep_alive: super::keep_alive::Behaviour::default(),
            stream: libp2p_stream::Behaviour::new(),
            gossip: super::gossip_gate::Gate::new(gossip),
        }
    }
}
