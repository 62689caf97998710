//! Answering pings without sending any: `/ipfs/ping/1.0.0`, server side only.
//!
//! Clients ping the server every 15 s (libp2p's ping), which keeps their NAT mappings and relay
//! reservations' connections warm, so the server must answer. It has no use for pinging every client back:
//! libp2p-ping 0.48 only reports a failed probe and closes nothing, and the server acted on none of its
//! results. libp2p's ping behaviour does both, and each connection paid for the outbound half (a second
//! stream, its timer and futures). This behaviour echoes each 32-byte payload on the one stream a client
//! pings on, and never opens a stream. docs/benchmarks.md ("Memory per idle peer") has what it saves.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use libp2p::core::upgrade::{DeniedUpgrade, ReadyUpgrade};
use libp2p::core::{Endpoint, Multiaddr, transport::PortUse};
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, Stream, StreamProtocol};

/// The protocol libp2p's ping speaks.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");
/// One ping's payload, echoed back as it came.
pub const PING_SIZE: usize = 32;

/// The server side of ping: one [`Handler`] per connection, no events.
#[derive(Debug, Default)]
pub struct Behaviour;

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// Answers the pings of one connection, on the last stream the peer opened for them (a peer pings on one
/// stream at a time; a new one replaces the one before, so a peer cannot make the server hold more).
#[derive(Default)]
pub struct Handler {
    answering: Option<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("answering", &self.answering.is_some())
            .finish()
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ())
    }

    fn connection_keep_alive(&self) -> bool {
        false
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<
        ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>,
    > {
        if let Some(answering) = &mut self.answering
            && answering.poll_unpin(cx).is_ready()
        {
            self.answering = None;
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        match event {}
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
        if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
            protocol: stream,
            ..
        }) = event
        {
            self.answering = Some(answer(stream).boxed());
        }
    }
}

/// Echoes every payload until the peer closes the stream or it fails.
async fn answer(mut stream: Stream) {
    let mut payload = [0u8; PING_SIZE];
    while stream.read_exact(&mut payload).await.is_ok() {
        if stream.write_all(&payload).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}
