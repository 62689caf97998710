//! [`Boxed`]: a behaviour whose per-connection handler lives behind one pointer.
//!
//! libp2p runs each established connection as a task whose future holds the connection's handler by
//! value, and the generated future keeps more than one slot of that size (the argument, and what the
//! connection becomes while it closes). A bootstrap server's composed handler is about 5.5 KB, so every
//! idle peer paid for it several times over. Boxing it makes each of those slots a pointer and the
//! handler one allocation. The events between the handler and the behaviour are boxed too: the swarm
//! gives every connection two channels, and each keeps one event-sized slot for the connection's life (the
//! channel's stub node), as does the connection's future at each point it waits to send one; a bootstrap
//! server's events (relay's circuit requests, identify's peer info) are hundreds of bytes. Protocols and
//! keep-alive pass through unchanged.
//! `tern-bench peers` shows the effect on a bootstrap node (docs/benchmarks.md).

use std::ops::{Deref, DerefMut};
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::{Endpoint, Multiaddr, transport::PortUse};
use libp2p::swarm::handler::ConnectionEvent;
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};

/// `B`, with its connection handler boxed. Derefs to `B`, so callers reach its parts as before.
#[derive(Debug)]
pub struct Boxed<B>(pub B);

impl<B> Deref for Boxed<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.0
    }
}

impl<B> DerefMut for Boxed<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.0
    }
}

/// A connection handler on the heap, delegating every call, its events boxed.
#[derive(Debug)]
pub struct BoxedHandler<H>(Box<H>);

impl<H: ConnectionHandler> ConnectionHandler for BoxedHandler<H> {
    type FromBehaviour = Box<H::FromBehaviour>;
    type ToBehaviour = Box<H::ToBehaviour>;
    type InboundProtocol = H::InboundProtocol;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = H::InboundOpenInfo;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        self.0.listen_protocol()
    }

    fn connection_keep_alive(&self) -> bool {
        self.0.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<
        ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>,
    > {
        self.0.poll(cx).map(|event| event.map_custom(Box::new))
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.0.poll_close(cx).map(|event| event.map(Box::new))
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.0.on_behaviour_event(*event);
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        self.0.on_connection_event(event);
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Boxed<B> {
    type ConnectionHandler = BoxedHandler<B::ConnectionHandler>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.0
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
            .map(|h| BoxedHandler(Box::new(h)))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.0.handle_pending_outbound_connection(
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
        self.0
            .handle_established_outbound_connection(
                connection_id,
                peer,
                addr,
                role_override,
                port_use,
            )
            .map(|h| BoxedHandler(Box::new(h)))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.0.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.0
            .on_connection_handler_event(peer_id, connection_id, *event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.0.poll(cx).map(|event| event.map_in(Box::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::ping;

    #[test]
    fn the_events_both_ways_are_one_pointer_whatever_their_size() {
        // Identify's event to the behaviour carries the peer's whole info.
        let out = size_of::<THandlerOutEvent<libp2p::identify::Behaviour>>();
        assert!(
            out > 4 * size_of::<usize>(),
            "identify's event is {out} bytes"
        );
        assert_eq!(
            size_of::<THandlerOutEvent<Boxed<libp2p::identify::Behaviour>>>(),
            size_of::<usize>()
        );
        assert_eq!(
            size_of::<THandlerInEvent<Boxed<libp2p::identify::Behaviour>>>(),
            size_of::<usize>()
        );
    }

    #[test]
    fn a_boxed_handler_is_one_pointer_whatever_the_size_of_the_handler() {
        let inner = size_of::<THandler<ping::Behaviour>>();
        assert!(
            inner > size_of::<usize>(),
            "ping's handler is {inner} bytes"
        );
        assert_eq!(
            size_of::<THandler<Boxed<ping::Behaviour>>>(),
            size_of::<usize>()
        );
    }
}
