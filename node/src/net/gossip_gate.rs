//! Gossipsub only on connections to contacts and fellow group members.
//!
//! Gossipsub keeps its streams open for as long as a connection lives, and an open stream keeps libp2p from
//! closing an idle connection: with gossipsub on every connection, a stranger's quiet connection would never
//! idle out (`node/tests/internet_reach.rs`). This behaviour wraps [`gossipsub::Behaviour`] and gives a
//! connection a gossipsub handler only if its peer is allowed when the connection is established (a contact,
//! or a member of one of this profile's groups); other connections get a handler that does nothing, and
//! gossipsub never hears of them. A peer allowed later gets gossip on its next connection; until then group
//! messages to it take the 1:1 route (docs/protocol.md §18.6).

use std::collections::HashSet;
use std::task::{Context, Poll};

use either::Either;
use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::gossipsub;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};

/// Contacts remembered as allowed at most (as many as connections are kept for).
pub const MAX_GOSSIP_CONTACTS: usize = super::keep_alive::MAX_KEPT_PEERS;

/// [`gossipsub::Behaviour`], enabled only on connections to allowed peers. Derefs to the gossipsub behaviour.
pub struct Gate {
    inner: gossipsub::Behaviour,
    contacts: HashSet<PeerId>,
    members: HashSet<PeerId>,
    /// Connections that got the do-nothing handler.
    gated: HashSet<ConnectionId>,
}

impl Gate {
    pub fn new(inner: gossipsub::Behaviour) -> Self {
        Self {
            inner,
            contacts: HashSet::new(),
            members: HashSet::new(),
            gated: HashSet::new(),
        }
    }

    /// Allows (or stops allowing) gossip with a contact on its next connections. Returns false if
    /// [`MAX_GOSSIP_CONTACTS`] are allowed already.
    pub fn set_contact(&mut self, peer: PeerId, allowed: bool) -> bool {
        if !allowed {
            self.contacts.remove(&peer);
            return true;
        }
        if !self.contacts.contains(&peer) && self.contacts.len() >= MAX_GOSSIP_CONTACTS {
            return false;
        }
        self.contacts.insert(peer);
        true
    }

    /// The members of this profile's groups (bounded by the groups' own bounds), replacing the last set.
    pub fn set_members(&mut self, members: HashSet<PeerId>) {
        self.members = members;
    }

    fn allowed(&self, peer: &PeerId) -> bool {
        self.contacts.contains(peer) || self.members.contains(peer)
    }
}

impl std::ops::Deref for Gate {
    type Target = gossipsub::Behaviour;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Gate {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = Either<THandler<gossipsub::Behaviour>, dummy::ConnectionHandler>;
    type ToSwarm = gossipsub::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if !self.allowed(&peer) {
            self.gated.insert(connection_id);
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        self.inner
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
            .map(Either::Left)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if !self.allowed(&peer) {
            self.gated.insert(connection_id);
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        self.inner
            .handle_established_outbound_connection(
                connection_id,
                peer,
                addr,
                role_override,
                port_use,
            )
            .map(Either::Left)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let gated = match &event {
            FromSwarm::ConnectionEstablished(e) => self.gated.contains(&e.connection_id),
            FromSwarm::AddressChange(e) => self.gated.contains(&e.connection_id),
            FromSwarm::ConnectionClosed(e) => self.gated.remove(&e.connection_id),
            _ => false,
        };
        if !gated {
            self.inner.on_swarm_event(event);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            Either::Left(event) => {
                self.inner
                    .on_connection_handler_event(peer_id, connection_id, event);
            }
            Either::Right(never) => match never {},
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx).map(|event| event.map_in(Either::Left))
    }
}
