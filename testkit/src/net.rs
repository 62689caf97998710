//! Loopback networks: nodes and swarms on 127.0.0.1 with no mDNS (which would multicast beyond this
//! machine), the addresses others dial, and a bootstrap server spawned in this process.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, noise, tcp, yamux};
use tern_bootstrap::{Config, Server};
use tern_node::api::{ConversationId, Event, MessageStatus};
use tern_node::mailbox::MailboxConfig;
use tern_node::net::NetConfig;
use tern_node::node::{Node, NodeConfig};
use tern_node::profile::Profile;
use tern_node::settings::NetworkSettings;
use tern_protocol::{IdentityKey, MessageId};
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::wait::listening;

/// An ephemeral TCP port on loopback.
pub const LOOPBACK_TCP: &str = "/ip4/127.0.0.1/tcp/0";

/// A network configuration listening on `listen` only, with no mDNS.
pub fn net_config(listen: &str, lan_only: bool) -> NetConfig {
    NetConfig {
        listen: vec![listen.parse().unwrap()],
        lan_only,
        mdns: false,
        ..NetConfig::default()
    }
}

/// LAN-only, loopback TCP, no mDNS.
pub fn loopback_net() -> NetConfig {
    net_config(LOOPBACK_TCP, true)
}

/// A node configuration on [`loopback_net`] with nothing else set.
pub fn loopback_node() -> NodeConfig {
    NodeConfig {
        net: loopback_net(),
        ..NodeConfig::default()
    }
}

/// A node on loopback that serves as a mailbox with `limits`, from its own profile in `dir` (created the
/// first time, opened again after a restart; its mailbox database is `dir/mailbox.redb`).
pub async fn mailbox_node(dir: &Path, limits: MailboxConfig) -> LiveNode {
    mailbox_node_on(dir, limits, LOOPBACK_TCP).await
}

/// [`mailbox_node`] listening on `listen` (a fixed port, so that it comes back where its users were told
/// it is).
pub async fn mailbox_node_on(dir: &Path, limits: MailboxConfig, listen: &str) -> LiveNode {
    let engine = match tern_node::engine::Engine::open(dir, &crate::profile::password()) {
        Ok(engine) => engine,
        Err(_) => crate::profile::create(dir, "Mailbox"),
    };
    let config = NodeConfig {
        net: net_config(listen, true),
        serve_mailbox: Some((dir.join("mailbox.redb"), limits)),
        ..NodeConfig::default()
    };
    LiveNode::start(engine, "mailbox", config).await
}

/// The app's network settings with the same loopback-only choices as [`loopback_net`].
pub fn loopback_settings() -> NetworkSettings {
    NetworkSettings {
        lan_only: true,
        mdns: false,
        listen: vec![LOOPBACK_TCP.parse().unwrap()],
        ..NetworkSettings::default()
    }
}

/// `addr` with `/p2p/<peer>` appended: what another node dials.
pub fn with_peer(addr: Multiaddr, peer: PeerId) -> Multiaddr {
    addr.with(Protocol::P2p(peer))
}

/// The peer id an address ends in (`/p2p/…`); panics if it has none.
pub fn peer_of(addr: &Multiaddr) -> PeerId {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => peer,
        _ => panic!("{addr} has no /p2p/"),
    }
}

/// The IPv4 TCP socket address in `addr`; panics if it has none.
pub fn tcp_socket(addr: &Multiaddr) -> SocketAddr {
    let (mut ip, mut port) = (None, None);
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(a),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) => SocketAddr::from((ip, port)),
        _ => panic!("{addr} has no IPv4 TCP address"),
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a process that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node started on loopback, listening.
pub struct LiveNode {
    pub node: Node,
    pub events: broadcast::Receiver<Event>,
    /// The profile's identity key.
    pub key: IdentityKey,
    /// The address others dial, with `/p2p/<peer id>`.
    pub addr: Multiaddr,
}

impl LiveNode {
    /// Starts `profile` (an [`Engine`](tern_node::engine::Engine) or a [`Profile`]) with `config` and
    /// waits until it listens (the wait is traced in a span named for `name`).
    pub async fn start(profile: impl Into<Profile>, name: &str, config: NodeConfig) -> Self {
        let span = tracing::info_span!("node", name);
        let (node, events) = Node::start(profile, config).unwrap();
        let key = node.key();
        // Waited for on a receiver of its own, so that `events` keeps for the test everything the node said
        // from its start (an expiry due at start may come before the listen address). An address announced
        // before `probe` existed is in the status already: the swarm lists it before the node announces it.
        let mut probe = events.resubscribe();
        let known = node.status().await.unwrap().listen_addrs.first().cloned();
        let address = match known {
            Some(address) => address,
            None => {
                listening(&mut probe, &format!("{name}'s listen address"))
                    .instrument(span)
                    .await
            }
        };
        let addr = with_peer(address, node.peer_id());
        Self {
            node,
            events,
            key,
            addr,
        }
    }
}

/// Alice and Bob (each other's contacts) started with `config`, Bob dialled to Alice, in the group `name`
/// Alice created, once Bob has joined it.
pub async fn alice_and_bob_in(
    alice: tern_node::engine::Engine,
    bob: tern_node::engine::Engine,
    name: &str,
    config: &NodeConfig,
) -> (LiveNode, LiveNode, ConversationId) {
    let a = LiveNode::start(alice, "alice", config.clone()).await;
    let mut b = LiveNode::start(bob, "bob", config.clone()).await;
    b.node.dial(a.addr.clone()).await.unwrap();
    let g = a
        .node
        .group_create(name.into(), vec![b.key])
        .await
        .unwrap()
        .id;
    crate::wait::wait_for(
        &mut b.events,
        "Bob joins",
        |e| matches!(e, Event::GroupJoined { group, .. } if group.id == g),
    )
    .await;
    (a, b, g)
}

/// What `node` stores of `conversation`, oldest first: the texts people wrote, or (`system`) only the
/// system lines ("Alice added Bob").
pub async fn texts(node: &Node, conversation: ConversationId, system: bool) -> Vec<String> {
    node.page(conversation, None, 500)
        .await
        .unwrap()
        .messages
        .into_iter()
        .filter(|m| m.system == system)
        .map(|m| m.text)
        .collect()
}

/// Stops `node`, reads the middle 48 bytes of the message's sealed row as its profile holds it (to look
/// for on disk later, [`crate::files::profile_holds`]), and starts it again. Returns the running node, the
/// profile's directory and the bytes.
pub async fn sealed_bytes_of(
    node: LiveNode,
    conversation: ConversationId,
    id: MessageId,
) -> (LiveNode, std::path::PathBuf, Vec<u8>) {
    let profile = node.node.stop().await.unwrap();
    let dir = profile.dir();
    let sealed = profile
        .engine()
        .store()
        .sealed_message_row(&conversation, &id)
        .unwrap()
        .expect("the row");
    let needle = sealed[sealed.len() / 2 - 24..sealed.len() / 2 + 24].to_vec();
    let node = LiveNode::start(profile, "again", loopback_node()).await;
    (node, dir, needle)
}

/// The conversation with `with` as the node's store has it, oldest first: (text, status) per message.
pub async fn history(node: &Node, with: IdentityKey) -> Vec<(String, MessageStatus)> {
    node.page(with.into(), None, 100)
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| (m.text, m.status))
        .collect()
}

/// How long an idle connection of a [`tcp_swarm`] stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A bare swarm over TCP (Noise, Yamux) with `key` and `behaviour`: a test peer that is not a Tern node.
pub fn tcp_swarm<B: NetworkBehaviour>(key: libp2p::identity::Keypair, behaviour: B) -> Swarm<B> {
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(move |_| behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build()
}

/// Waits for a swarm's first listen address.
pub async fn first_listen_addr<B: NetworkBehaviour>(swarm: &mut Swarm<B>) -> Multiaddr {
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            return address;
        }
    }
}

/// Dials `peer` at `addr` and drives the swarm until the connection is up (other events are handed to
/// `other`); panics if the dial fails.
pub async fn connect_swarm<B: NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    peer: PeerId,
    addr: Multiaddr,
    mut other: impl FnMut(SwarmEvent<B::ToSwarm>),
) {
    swarm.dial(addr).unwrap();
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => return,
            SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial failed: {error}"),
            event => other(event),
        }
    }
}

/// A bootstrap server configuration for tests: loopback TCP on an ephemeral port, data in `dir`.
pub fn bootstrap_config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_owned(),
        listen: vec![LOOPBACK_TCP.parse().unwrap()],
        ..Config::default()
    }
}

/// A bootstrap server in this process ([`bootstrap_config`], federating with `peers`) and its TCP address
/// with `/p2p/`.
pub async fn spawn_bootstrap(dir: &Path, peers: Vec<Multiaddr>) -> (Server, Multiaddr) {
    spawn_bootstrap_with(Config {
        peers,
        ..bootstrap_config(dir)
    })
    .await
}

/// A bootstrap server in this process with `config`, and its TCP address with `/p2p/`.
pub async fn spawn_bootstrap_with(config: Config) -> (Server, Multiaddr) {
    let server = Server::spawn(config).await.unwrap();
    let addr = server
        .listen_addrs()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
        .expect("a TCP listen address");
    (server, addr)
}

/// A network configuration for the internet path on loopback: loopback TCP, not LAN-only, no mDNS, the
/// given bootstrap nodes, and loopback addresses allowed in address records (`local_addresses`), since every
/// node runs on this host.
pub fn internet_net(bootstrap: &[Multiaddr]) -> NetConfig {
    NetConfig {
        bootstrap: bootstrap.to_vec(),
        local_addresses: true,
        ..net_config(LOOPBACK_TCP, false)
    }
}

/// A node that meets others only through `bootstrap` (no `--peer`, no mDNS), which also holds its mail.
pub fn internet_node(bootstrap: &Multiaddr) -> NodeConfig {
    NodeConfig {
        net: internet_net(std::slice::from_ref(bootstrap)),
        mailboxes: vec![bootstrap.clone()],
        ..NodeConfig::default()
    }
}

/// [`internet_node`], reached and reaching only through the bootstrap node's relay (`relay_only`): it
/// listens on no direct address.
pub fn relay_only_node(bootstrap: &Multiaddr) -> NodeConfig {
    let mut config = internet_node(bootstrap);
    config.net.listen = Vec::new();
    config.net.relay_only = true;
    config
}

/// A bootstrap server in this process that also serves as a relay: it listens on a fixed loopback port and
/// names that address as its external one (a relay only offers reservations once it has one), with metrics
/// on an ephemeral port. Returns the server and its address with `/p2p/`.
pub async fn spawn_relay_bootstrap(dir: &Path) -> (Server, Multiaddr) {
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", free_port())
        .parse()
        .unwrap();
    let config = Config {
        listen: vec![addr.clone()],
        external_addresses: vec![addr],
        metrics: Some("127.0.0.1:0".parse().unwrap()),
        ..bootstrap_config(dir)
    };
    let server = Server::spawn(config).await.unwrap();
    let addr = server
        .listen_addrs()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
        .expect("a TCP listen address");
    (server, addr)
}

/// A sample of a bootstrap server's metrics (0 if it has none yet).
pub async fn server_metric(server: &Server, name: &str) -> f64 {
    let addr = server.metrics_addr().expect("metrics are on");
    let text = crate::metrics::http_get(addr, "/metrics").await.unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    crate::metrics::sample(body, name).unwrap_or(0.0)
}
