//! Keeping connections to contacts open while both nodes run.
//!
//! libp2p closes a connection once no handler wants it and the idle timeout has passed; since 0.52 ping no
//! longer keeps a connection alive, so a quiet conversation dropped after a minute and the app showed the
//! contact going offline. This behaviour's handler says "keep alive" on connections to the peers it is told
//! to keep (the contacts), and nothing on any other; ping still probes every connection and closes one that
//! stops answering, so a contact that went away is noticed.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::DeniedUpgrade;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::handler::ConnectionEvent;
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};

/// Peers whose connections are kept open at most (the contacts a node has is bounded more tightly).
pub const MAX_KEPT_PEERS: usize = 4096;
/// Change notices queued for handlers before the swarm takes them.
const MAX_QUEUED: usize = 4096;

/// Keeps connections to chosen peers open.
#[derive(Default)]
pub struct Behaviour {
    kept: HashSet<PeerId>,
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    queued: Vec<(PeerId, ConnectionId, bool)>,
}

impl Behaviour {
    /// Keeps (or stops keeping) every connection to `peer` open. Returns false if the peer could not be
    /// added because [`MAX_KEPT_PEERS`] are kept already.
    pub fn keep(&mut self, peer: PeerId, keep: bool) -> bool {
        let changed = if keep {
            if !self.kept.contains(&peer) && self.kept.len() >= MAX_KEPT_PEERS {
                return false;
            }
            self.kept.insert(peer)
        } else {
            self.kept.remove(&peer)
        };
        if changed && let Some(connections) = self.connections.get(&peer) {
            for id in connections {
                if self.queued.len() < MAX_QUEUED {
                    self.queued.push((peer, *id, keep));
                }
            }
        }
        true
    }

    /// Whether connections to `peer` are kept open.
    pub fn is_kept(&self, peer: &PeerId) -> bool {
        self.kept.contains(peer)
    }

    fn handler(&self, peer: &PeerId) -> Handler {
        Handler {
            keep: self.kept.contains(peer),
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(&peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(&peer))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections
                    .entry(e.peer_id)
                    .or_default()
                    .push(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(list) = self.connections.get_mut(&e.peer_id) {
                    list.retain(|id| *id != e.connection_id);
                    if list.is_empty() {
                        self.connections.remove(&e.peer_id);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.queued.pop() {
            Some((peer_id, id, keep)) => Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(id),
                event: keep,
            }),
            None => Poll::Pending,
        }
    }
}

/// A handler that speaks no protocol and only says whether its connection is to be kept.
#[derive(Debug, Clone)]
pub struct Handler {
    keep: bool,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = bool;
    type ToBehaviour = Infallible;
    type InboundProtocol = DeniedUpgrade;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, ()> {
        SubstreamProtocol::new(DeniedUpgrade, ())
    }

    fn connection_keep_alive(&self) -> bool {
        self.keep
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, keep: bool) {
        self.keep = keep;
    }

    fn on_connection_event(
        &mut self,
        _: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), ()>,
    ) {
        // DeniedUpgrade negotiates nothing: no stream ever reaches this handler.
    }
}
