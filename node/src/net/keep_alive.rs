//! Keeping connections to contacts open while both nodes run.
//!
//! libp2p closes a connection once no handler wants it and the idle timeout has passed; since 0.52 ping no
//! longer keeps a connection alive, so a quiet conversation dropped after a minute and the app showed the
//! contact going offline. This behaviour's handler says "keep alive" on connections to the peers it is told
//! to keep (the contacts), and nothing on any other. Ping still probes every connection, but libp2p-ping
//! 0.48 only reports a failed probe and closes nothing: a contact that went away is noticed when its
//! connection fails (a reset, or the write of the next probe timing out in TCP). A relayed connection is
//! kept only while the peer has no direct one: once hole punching succeeds, the circuit is left to close
//! and frees the relay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::DeniedUpgrade;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
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
    /// Each peer's connections: whether relayed, and whether its handler was last told to keep it.
    connections: HashMap<PeerId, HashMap<ConnectionId, (bool, bool)>>,
    queued: VecDeque<(PeerId, ConnectionId, bool)>,
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
        if changed {
            self.update(peer);
        }
        true
    }

    /// Whether a connection to `peer` (relayed or not) is to be kept now.
    fn wanted(&self, peer: &PeerId, relayed: bool) -> bool {
        self.kept.contains(peer)
            && (!relayed
                || !self
                    .connections
                    .get(peer)
                    .is_some_and(|c| c.values().any(|(relayed, _)| !relayed)))
    }

    /// Tells each of `peer`'s handlers whose answer changed.
    fn update(&mut self, peer: PeerId) {
        let Some(connections) = self.connections.get(&peer) else {
            return;
        };
        let changes: Vec<(ConnectionId, bool)> = connections
            .iter()
            .map(|(id, (relayed, told))| (*id, self.wanted(&peer, *relayed), *told))
            .filter(|(_, want, told)| want != told)
            .map(|(id, want, _)| (id, want))
            .collect();
        for (id, want) in changes {
            if self.queued.len() >= MAX_QUEUED {
                break;
            }
            self.queued.push_back((peer, id, want));
            if let Some(entry) = self.connections.get_mut(&peer).and_then(|c| c.get_mut(&id)) {
                entry.1 = want;
            }
        }
    }

    /// Whether connections to `peer` are kept open.
    pub fn is_kept(&self, peer: &PeerId) -> bool {
        self.kept.contains(peer)
    }

    fn handler(&mut self, peer: PeerId, id: ConnectionId, addr: &Multiaddr) -> Handler {
        let relayed = addr.iter().any(|p| matches!(p, Protocol::P2pCircuit));
        let keep = self.wanted(&peer, relayed);
        self.connections
            .entry(peer)
            .or_default()
            .insert(id, (relayed, keep));
        // A new direct connection may make a relayed one unneeded.
        self.update(peer);
        Handler { keep }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer, id, remote))
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer, id, addr))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(e) = event
            && let Some(list) = self.connections.get_mut(&e.peer_id)
        {
            list.remove(&e.connection_id);
            if list.is_empty() {
                self.connections.remove(&e.peer_id);
            } else {
                // The last direct connection may have gone: a relayed one is needed again.
                self.update(e.peer_id);
            }
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
        match self.queued.pop_front() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn notices(b: &mut Behaviour) -> Vec<(ConnectionId, bool)> {
        b.queued.drain(..).map(|(_, id, keep)| (id, keep)).collect()
    }

    #[test]
    fn kept_peers_only_and_a_circuit_only_while_there_is_no_direct_connection() {
        let mut b = Behaviour::default();
        let (contact, stranger) = (PeerId::random(), PeerId::random());
        let relay = PeerId::random();
        let circuit = addr(&format!("/ip4/203.0.113.1/tcp/1/p2p/{relay}/p2p-circuit"));
        let direct = addr("/ip4/203.0.113.2/tcp/2");
        assert!(b.keep(contact, true));

        let stranger_conn = ConnectionId::new_unchecked(1);
        assert!(!b.handler(stranger, stranger_conn, &direct).keep);

        let relayed = ConnectionId::new_unchecked(2);
        assert!(
            b.handler(contact, relayed, &circuit).keep,
            "only a circuit: kept"
        );
        assert!(notices(&mut b).is_empty());

        let hole_punched = ConnectionId::new_unchecked(3);
        assert!(b.handler(contact, hole_punched, &direct).keep);
        assert_eq!(
            notices(&mut b),
            vec![(relayed, false)],
            "the circuit is let go"
        );

        // The direct connection closes: the circuit is needed again.
        b.connections
            .get_mut(&contact)
            .unwrap()
            .remove(&hole_punched);
        b.update(contact);
        assert_eq!(notices(&mut b), vec![(relayed, true)]);

        // No longer a contact: nothing is kept.
        assert!(b.keep(contact, false));
        assert_eq!(notices(&mut b), vec![(relayed, false)]);
        assert!(!b.is_kept(&contact));
    }
}
