//! Building a user node's swarm from its identity seed and a [`NetConfig`].

use std::{convert::Infallible, time::Duration};

use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, TransportError, identity::Keypair, multiaddr::Protocol,
    noise, tcp, yamux,
};
use thiserror::Error;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use super::behaviour::{
    ClientBehaviour, ClientBehaviourConfig, DEFAULT_MDNS_QUERY_INTERVAL, DEFAULT_REQUEST_TIMEOUT,
    Limits, default_agent_version, gossip_behaviour, mdns_behaviour,
};

/// The most listen addresses a configuration may name.
pub const MAX_LISTEN_ADDRS: usize = 16;
/// The most bootstrap addresses a configuration may name.
pub const MAX_BOOTSTRAP_ADDRS: usize = 64;
/// How long a connection with no open streams stays up. Longer than libp2p's 10 s default, so a
/// conversation does not redial between messages.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How the node's swarm is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Addresses to listen on. Default: every IPv4 interface, an ephemeral port, TCP and QUIC.
    pub listen: Vec<Multiaddr>,
    /// Stay on the LAN: mDNS discovery only. No Kademlia, AutoNAT, relays, DCUtR, DNS or bootstrap dials.
    pub lan_only: bool,
    /// Discover peers on the LAN with mDNS.
    pub mdns: bool,
    /// How often mDNS queries the LAN.
    pub mdns_query_interval: Duration,
    /// Bootstrap peers, each ending in `/p2p/<peer id>`. Ignored in LAN-only mode.
    pub bootstrap: Vec<Multiaddr>,
    /// How long a connection with no open streams stays up.
    pub idle_timeout: Duration,
    /// The request-response timeout.
    pub request_timeout: Duration,
    /// Answer `/tern/mailbox/1` requests (serve as a mailbox for others).
    pub serve_mailbox: bool,
    /// Connection limits.
    pub limits: Limits,
    /// The identify agent string.
    pub agent_version: String,
    /// Publish, and dial when learned from the DHT or identify, loopback and private addresses too. Off by
    /// default outside LAN mode (where only internet-reachable addresses are used); on for tests and labs
    /// that run every node on one host or one private network.
    pub local_addresses: bool,
    /// Reach contacts and be reached only through relay circuits (tests and labs that must prove the relayed
    /// path): the node publishes only circuit addresses, dials contacts only at circuits, runs no DCUtR, and
    /// takes relay reservations whatever AutoNAT says. Give it no direct `listen` addresses.
    pub relay_only: bool,
}

impl Default for NetConfig {
    fn default() -> Self {
        let any_v4 = Multiaddr::empty().with(Protocol::Ip4([0, 0, 0, 0].into()));
        Self {
            listen: vec![
                any_v4.clone().with(Protocol::Tcp(0)),
                any_v4.with(Protocol::Udp(0)).with(Protocol::QuicV1),
            ],
            lan_only: false,
            mdns: true,
            mdns_query_interval: DEFAULT_MDNS_QUERY_INTERVAL,
            bootstrap: Vec::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            serve_mailbox: false,
            limits: Limits::default(),
            agent_version: default_agent_version(),
            local_addresses: false,
            relay_only: false,
        }
    }
}

/// Why the swarm could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetError {
    /// The identity seed was not accepted as an Ed25519 secret key.
    #[error("the identity seed is not a valid Ed25519 secret key")]
    InvalidSeed,
    /// The Noise handshake configuration could not be made from the identity key.
    #[error("noise setup failed: {0}")]
    Noise(#[from] noise::Error),
    /// The system DNS configuration could not be read.
    #[error("DNS resolver setup failed: {0}")]
    Dns(#[source] std::io::Error),
    /// The gossipsub behaviour could not be built.
    #[error("gossipsub setup failed: {0}")]
    Gossip(&'static str),
    /// mDNS could not start.
    #[error("mDNS setup failed: {0}")]
    Mdns(#[source] std::io::Error),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: TransportError<std::io::Error>,
    },
    /// A bootstrap address does not say which peer it reaches.
    #[error("bootstrap address {0} does not end in /p2p/<peer id>")]
    BootstrapWithoutPeerId(Multiaddr),
    /// The configuration names more addresses of one kind than allowed.
    #[error("{what}: {got} addresses, at most {max}")]
    TooManyAddresses {
        /// Which list.
        what: &'static str,
        /// How many were given.
        got: usize,
        /// The limit.
        max: usize,
    },
}

/// The libp2p keypair for an Ed25519 secret seed (as from `tern_protocol::Identity::ed25519_secret`). The
/// PeerId of the result is `IdentityKey::peer_id()` of the same identity. The only copy made is zeroized.
pub fn keypair_from_seed(seed: &[u8; 32]) -> Result<Keypair, NetError> {
    let mut copy = Zeroizing::new(*seed);
    // libp2p zeroizes the bytes it is given on success; `Zeroizing` covers the failure path.
    Keypair::ed25519_from_bytes(&mut copy[..]).map_err(|_| NetError::InvalidSeed)
}

/// The peer id at the end of an address (`…/p2p/<peer id>`), if there is one.
pub fn peer_id_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer_id)) => Some(peer_id),
        _ => None,
    }
}

/// Builds the swarm, starts listening on `config.listen` and, unless LAN-only, adds the bootstrap peers to
/// Kademlia and dials them. Must be called inside a tokio runtime.
pub fn build_swarm(
    seed: &[u8; 32],
    config: &NetConfig,
) -> Result<Swarm<ClientBehaviour>, NetError> {
    check_len("listen", config.listen.len(), MAX_LISTEN_ADDRS)?;
    check_len("bootstrap", config.bootstrap.len(), MAX_BOOTSTRAP_ADDRS)?;
    let bootstrap = if config.lan_only {
        if !config.bootstrap.is_empty() {
            debug!(
                count = config.bootstrap.len(),
                "LAN-only: not using bootstrap peers"
            );
        }
        Vec::new()
    } else {
        config
            .bootstrap
            .iter()
            .map(|addr| {
                peer_id_of(addr)
                    .map(|peer| (peer, addr.clone()))
                    .ok_or_else(|| NetError::BootstrapWithoutPeerId(addr.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?
    };

    let keypair = keypair_from_seed(seed)?;
    let local_peer_id = keypair.public().to_peer_id();
    let mdns = config
        .mdns
        .then(|| mdns_behaviour(local_peer_id, config.mdns_query_interval))
        .transpose()
        .map_err(NetError::Mdns)?;
    let behaviour_config = ClientBehaviourConfig {
        lan_only: config.lan_only,
        agent_version: config.agent_version.clone(),
        limits: config.limits,
        request_timeout: config.request_timeout,
        serve_mailbox: config.serve_mailbox,
        local_addresses: config.local_addresses,
        relay_only: config.relay_only,
    };
    let idle_timeout = config.idle_timeout;
    let gossip = gossip_behaviour().map_err(NetError::Gossip)?;

    let builder = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic();
    let mut swarm =
        if config.lan_only {
            // No DNS and no relay transport: nothing can be dialled that is not an IP address, and no circuit.
            infallible(builder.with_behaviour(|key| {
                ClientBehaviour::new(key, &behaviour_config, mdns, None, gossip)
            }))
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
            .build()
        } else {
            let builder = builder
                .with_dns()
                .map_err(NetError::Dns)?
                .with_relay_client(noise::Config::new, yamux::Config::default)?;
            infallible(builder.with_behaviour(|key, relay| {
                ClientBehaviour::new(key, &behaviour_config, mdns, Some(relay), gossip)
            }))
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
            .build()
        };

    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|source| NetError::Listen {
                addr: addr.clone(),
                source,
            })?;
    }

    if !bootstrap.is_empty() {
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            for (peer, addr) in &bootstrap {
                kad.add_address(peer, addr.clone());
            }
            if let Err(e) = kad.bootstrap() {
                debug!(error = %e, "Kademlia bootstrap not started");
            }
        }
        for (peer, addr) in bootstrap {
            if let Err(e) = swarm.dial(addr) {
                warn!(%peer, error = %e, "cannot dial bootstrap peer");
            }
        }
    }

    info!(
        peer = %local_peer_id,
        lan_only = config.lan_only,
        mdns = config.mdns,
        "swarm built"
    );
    Ok(swarm)
}

fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

fn check_len(what: &'static str, got: usize, max: usize) -> Result<(), NetError> {
    if got > max {
        return Err(NetError::TooManyAddresses { what, got, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    use tern_protocol::Identity;

    use super::*;

    #[test]
    fn keypair_peer_id_matches_the_identity_peer_id() {
        let identity = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1), 0);
        let keypair = keypair_from_seed(&identity.ed25519_secret()).unwrap();
        let peer_id = keypair.public().to_peer_id();
        assert_eq!(peer_id.to_string(), identity.key().peer_id());
        assert_eq!(peer_id.to_bytes(), identity.key().peer_id_bytes());
    }

    #[test]
    fn default_config_listens_on_tcp_and_quic_and_uses_mdns() {
        let config = NetConfig::default();
        assert_eq!(
            config
                .listen
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>(),
            ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
        );
        assert!(config.mdns && !config.lan_only);
        assert!(config.mdns_query_interval <= Duration::from_secs(5));
    }

    fn seed() -> [u8; 32] {
        [9; 32]
    }

    fn loopback_tcp() -> Multiaddr {
        "/ip4/127.0.0.1/tcp/0".parse().unwrap()
    }

    #[tokio::test]
    async fn lan_only_swarm_has_no_wan_behaviours() {
        let config = NetConfig {
            listen: vec![loopback_tcp()],
            lan_only: true,
            mdns: false,
            bootstrap: vec![
                "/ip4/192.0.2.1/tcp/4001"
                    .parse::<Multiaddr>()
                    .unwrap()
                    .with(Protocol::P2p(PeerId::random())),
            ],
            ..NetConfig::default()
        };
        let swarm = build_swarm(&seed(), &config).unwrap();
        let b = swarm.behaviour();
        assert!(!b.kad.is_enabled());
        assert!(!b.autonat.is_enabled());
        assert!(!b.relay.is_enabled());
        assert!(!b.dcutr.is_enabled());
        assert!(!b.mdns.is_enabled());
        // No bootstrap dial was started.
        assert_eq!(swarm.network_info().num_peers(), 0);
        assert_eq!(swarm.network_info().connection_counters().num_pending(), 0);
    }

    #[tokio::test]
    async fn wan_swarm_has_every_behaviour() {
        let config = NetConfig {
            listen: vec![loopback_tcp()],
            mdns: false,
            ..NetConfig::default()
        };
        let swarm = build_swarm(&seed(), &config).unwrap();
        let b = swarm.behaviour();
        assert!(b.kad.is_enabled());
        assert!(b.autonat.is_enabled());
        assert!(b.relay.is_enabled());
        assert!(b.dcutr.is_enabled());
    }

    #[tokio::test]
    async fn bootstrap_without_peer_id_is_refused() {
        let config = NetConfig {
            listen: vec![loopback_tcp()],
            mdns: false,
            bootstrap: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
            ..NetConfig::default()
        };
        assert!(matches!(
            build_swarm(&seed(), &config),
            Err(NetError::BootstrapWithoutPeerId(_))
        ));
    }

    #[tokio::test]
    async fn too_many_listen_addresses_are_refused() {
        let config = NetConfig {
            listen: vec![loopback_tcp(); MAX_LISTEN_ADDRS + 1],
            mdns: false,
            lan_only: true,
            ..NetConfig::default()
        };
        assert!(matches!(
            build_swarm(&seed(), &config),
            Err(NetError::TooManyAddresses { what: "listen", .. })
        ));
    }
}
