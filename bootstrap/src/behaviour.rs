//! The bootstrap server's network behaviour, composed from the parts in [`tern_node::net::behaviour`].

use std::time::Duration;

use libp2p::{
    autonat, connection_limits, identify,
    identity::Keypair,
    kad, relay,
    request_response::{self, ProtocolSupport},
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle},
};
use tern_node::{
    mailbox::{MailboxCodec, MailboxProtocol},
    net::{
        EnvelopeCodec, Limits,
        behaviour::{
            autonat_config, connection_limits, frame_behaviour, identify_config, kad_behaviour,
        },
        codec::EnvelopeProtocol,
    },
};

/// AutoNAT probes served per throttle period (one second) to all clients together. A user node serves
/// few; a public server is where probes are meant to go.
pub const AUTONAT_SERVER_GLOBAL_MAX: usize = 64;
/// AutoNAT probes served per throttle period to one client.
pub const AUTONAT_SERVER_PEER_MAX: usize = 4;

/// `tern-bootstrap/<crate version>`, the identify agent string.
pub fn agent_version() -> String {
    format!("tern-bootstrap/{}", env!("CARGO_PKG_VERSION"))
}

/// Everything a bootstrap server speaks.
#[derive(NetworkBehaviour)]
pub struct ServerBehaviour {
    /// Caps on connections; first, so it can deny a connection before the others see it.
    pub limits: connection_limits::Behaviour,
    /// Exchanges listen addresses, protocols and agent strings with every peer.
    pub identify: identify::Behaviour,
    /// Answers clients' pings (and sends none, [`crate::pong`]).
    pub ping: crate::pong::Behaviour,
    /// The Tern DHT, always in server mode: a bootstrap node is there to answer queries.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Circuit relay v2, server side: reservations and circuits for peers behind NAT.
    pub relay: relay::Behaviour,
    /// AutoNAT v1: dials peers back so they learn whether they are reachable (and probes for itself).
    pub autonat: autonat::Behaviour,
    /// `/tern/mailbox/1`, answering deposits, challenges, fetches and acks.
    pub mailbox: request_response::Behaviour<MailboxCodec>,
    /// `/tern/envelope/1`, outbound only: pushes new mail to an owner who is connected.
    pub envelope: request_response::Behaviour<EnvelopeCodec>,
    /// `/tern/file-hold/1` and `/tern/file/1` streams, for the files held for recipients who are offline
    /// (served beside the event loop); off when the configuration holds no files.
    pub stream: Toggle<libp2p_stream::Behaviour>,
}

impl ServerBehaviour {
    /// Assembles the behaviour for `keypair`, its relay serving within `relay`'s limits
    /// ([`crate::config::RelayLimits::to_relay_config`]).
    pub fn new(
        keypair: &Keypair,
        limits: &Limits,
        relay: relay::Config,
        request_timeout: Duration,
        files: bool,
    ) -> Self {
        let peer_id = keypair.public().to_peer_id();
        let mut kad = kad_behaviour(peer_id);
        kad.set_mode(Some(kad::Mode::Server));
        Self {
            limits: connection_limits(limits),
            identify: identify::Behaviour::new(identify_config(keypair.public(), &agent_version())),
            ping: crate::pong::Behaviour,
            kad,
            relay: relay::Behaviour::new(peer_id, relay),
            autonat: autonat::Behaviour::new(
                peer_id,
                autonat::Config {
                    throttle_clients_global_max: AUTONAT_SERVER_GLOBAL_MAX,
                    throttle_clients_peer_max: AUTONAT_SERVER_PEER_MAX,
                    ..autonat_config()
                },
            ),
            mailbox: frame_behaviour::<MailboxProtocol>(ProtocolSupport::Inbound, request_timeout),
            envelope: frame_behaviour::<EnvelopeProtocol>(
                ProtocolSupport::Outbound,
                request_timeout,
            ),
            stream: files.then(libp2p_stream::Behaviour::new).into(),
        }
    }
}
