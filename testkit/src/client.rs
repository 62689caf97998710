//! A bare libp2p peer for tests, on loopback TCP: a mailbox client (typed requests, and raw bytes on
//! `/tern/mailbox/1`), a hostile sender (raw bytes on `/tern/envelope/1`), and a receiver of the envelopes
//! a mailbox server pushes.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tern_node::frame::{decode_frame, encode_frame};
use tern_node::mailbox::{
    MAILBOX_PROTOCOL, MailboxCodec, MailboxProtocol, MailboxRequest, MailboxResponse, OwnerAuth,
};
use tern_node::net::behaviour::frame_behaviour;
use tern_node::net::codec::EnvelopeProtocol;
use tern_node::net::{ENVELOPE_PROTOCOL, EnvelopeAck, EnvelopeCodec, EnvelopeRequest};
use tern_protocol::{Envelope, Identity};

use crate::net::{connect_swarm, peer_of, tcp_swarm};
use crate::raw::{Bytes, RawCodec, raw_behaviour};

/// How long a typed request may wait for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(NetworkBehaviour)]
pub struct PeerBehaviour {
    mailbox: request_response::Behaviour<MailboxCodec>,
    envelope: request_response::Behaviour<EnvelopeCodec>,
    raw_mailbox: request_response::Behaviour<RawCodec<Bytes>>,
    raw_envelope: request_response::Behaviour<RawCodec<Bytes>>,
}

/// What a raw stream produced.
#[derive(Debug)]
pub enum RawOutcome {
    /// The peer answered with these bytes (possibly none).
    Bytes(Vec<u8>),
    /// The exchange failed on this side (the peer reset or closed the stream).
    Failed(String),
}

impl RawOutcome {
    /// The answer, if the peer gave one: a stream that failed or ended with nothing on it is no answer.
    pub fn answer(self) -> Option<Vec<u8>> {
        match self {
            Self::Bytes(bytes) => Some(bytes).filter(|b| !b.is_empty()),
            Self::Failed(_) => None,
        }
    }
}

/// A test peer. Envelopes pushed to it wait in [`Client::pushed`] until the test answers them.
pub struct Client {
    pub swarm: Swarm<PeerBehaviour>,
    /// Envelopes a peer pushed, with the channel to acknowledge them.
    pub pushed: VecDeque<(EnvelopeRequest, ResponseChannel<EnvelopeAck>)>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A peer with a fresh identity.
    pub fn new() -> Self {
        Self::with_key(libp2p::identity::Keypair::generate_ed25519())
    }

    /// A peer with the given libp2p key (to appear as someone's node).
    pub fn with_key(key: libp2p::identity::Keypair) -> Self {
        let behaviour = PeerBehaviour {
            mailbox: frame_behaviour::<MailboxProtocol>(ProtocolSupport::Outbound, REQUEST_TIMEOUT),
            envelope: frame_behaviour::<EnvelopeProtocol>(
                ProtocolSupport::Inbound,
                REQUEST_TIMEOUT,
            ),
            raw_mailbox: raw_behaviour(MAILBOX_PROTOCOL),
            raw_envelope: raw_behaviour(ENVELOPE_PROTOCOL),
        };
        let swarm = tcp_swarm(key, behaviour);
        Self {
            swarm,
            pushed: VecDeque::new(),
        }
    }

    /// Dials `addr` (which ends in `/p2p/<peer>`) and waits until the connection is up; at once if it
    /// already is. Returns the peer.
    pub async fn connect(&mut self, addr: &Multiaddr) -> PeerId {
        let peer = peer_of(addr);
        if !self.swarm.is_connected(&peer) {
            let mut pushed = Vec::new();
            connect_swarm(&mut self.swarm, peer, addr.clone(), |event| {
                pushed.extend(push_of(event));
            })
            .await;
            self.pushed.extend(pushed);
        }
        peer
    }

    fn other(&mut self, event: SwarmEvent<PeerBehaviourEvent>) {
        self.pushed.extend(push_of(event));
    }

    /// Sends a mailbox request and drives the swarm until its answer arrives; panics if it fails.
    pub async fn request(&mut self, server: PeerId, request: MailboxRequest) -> MailboxResponse {
        let id = self
            .swarm
            .behaviour_mut()
            .mailbox
            .send_request(&server, request);
        loop {
            match self.swarm.select_next_some().await {
                SwarmEvent::Behaviour(PeerBehaviourEvent::Mailbox(event)) => {
                    match outcome(event, id) {
                        Some(Ok(response)) => return response,
                        Some(Err(error)) => panic!("mailbox request failed: {error}"),
                        None => {}
                    }
                }
                event => self.other(event),
            }
        }
    }

    /// Writes `bytes` on a fresh `/tern/mailbox/1` stream and waits for the outcome.
    pub async fn raw_mailbox(&mut self, server: PeerId, bytes: Vec<u8>) -> RawOutcome {
        let id = self
            .swarm
            .behaviour_mut()
            .raw_mailbox
            .send_request(&server, bytes);
        self.raw_outcome(id).await
    }

    /// Writes `bytes` on a fresh `/tern/envelope/1` stream and waits for the outcome.
    pub async fn raw_envelope(&mut self, peer: PeerId, bytes: Vec<u8>) -> RawOutcome {
        let id = self
            .swarm
            .behaviour_mut()
            .raw_envelope
            .send_request(&peer, bytes);
        self.raw_outcome(id).await
    }

    async fn raw_outcome(&mut self, id: OutboundRequestId) -> RawOutcome {
        loop {
            let found = match self.swarm.select_next_some().await {
                SwarmEvent::Behaviour(
                    PeerBehaviourEvent::RawMailbox(event) | PeerBehaviourEvent::RawEnvelope(event),
                ) => outcome(event, id),
                event => {
                    self.other(event);
                    None
                }
            };
            match found {
                Some(Ok(bytes)) => return RawOutcome::Bytes(bytes),
                Some(Err(error)) => return RawOutcome::Failed(error.to_string()),
                None => {}
            }
        }
    }

    /// A mailbox request framed by Tern's codec but sent raw: the server's answer decoded, or `None` if it
    /// gave none (or one that does not decode).
    pub async fn raw_request(
        &mut self,
        server: PeerId,
        request: &MailboxRequest,
    ) -> Option<MailboxResponse> {
        let answer = self
            .raw_mailbox(server, encode_frame(request).unwrap())
            .await
            .answer()?;
        decode_frame(&answer).ok()
    }

    /// Drives the swarm until its last connection to `peer` is closed (at once if already closed).
    pub async fn disconnected(&mut self, peer: PeerId) {
        while self.swarm.is_connected(&peer) {
            match self.swarm.select_next_some().await {
                SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == peer => {}
                event => self.other(event),
            }
        }
    }

    /// Drives the swarm until a peer pushes an envelope.
    pub async fn next_push(&mut self) -> (EnvelopeRequest, ResponseChannel<EnvelopeAck>) {
        loop {
            if let Some(push) = self.pushed.pop_front() {
                return push;
            }
            let event = self.swarm.select_next_some().await;
            self.other(event);
        }
    }

    /// Answers a pushed envelope.
    pub fn ack_push(&mut self, channel: ResponseChannel<EnvelopeAck>, ack: EnvelopeAck) {
        self.swarm
            .behaviour_mut()
            .envelope
            .send_response(channel, ack)
            .unwrap();
    }

    /// Drives the swarm briefly so queued outbound frames (such as a push acknowledgement) are written.
    pub async fn drive_for(&mut self, duration: Duration) {
        let deadline = tokio::time::sleep(duration);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                event = self.swarm.select_next_some() => self.other(event),
            }
        }
    }

    /// Asks for a challenge and signs it as `owner`.
    pub async fn owner_auth(&mut self, server: PeerId, owner: &Identity) -> OwnerAuth {
        match self.request(server, MailboxRequest::Challenge).await {
            MailboxResponse::Nonce { nonce } => OwnerAuth::sign(owner, &server.to_bytes(), nonce),
            other => panic!("expected a nonce, got {other:?}"),
        }
    }

    /// Deposits an envelope and returns the answer.
    pub async fn try_deposit(&mut self, server: PeerId, envelope: &Envelope) -> MailboxResponse {
        self.request(
            server,
            MailboxRequest::Deposit {
                envelope: envelope.encode(),
            },
        )
        .await
    }

    /// Deposits an envelope and expects it stored.
    pub async fn deposit(&mut self, server: PeerId, envelope: &Envelope) {
        let response = self.try_deposit(server, envelope).await;
        assert_eq!(
            response,
            MailboxResponse::Deposited { id: envelope.id() },
            "deposit"
        );
    }

    /// Fetches `owner`'s queued envelopes (challenge, sign, fetch).
    pub async fn fetch(&mut self, server: PeerId, owner: &Identity) -> Vec<Envelope> {
        let auth = self.owner_auth(server, owner).await;
        match self
            .request(server, MailboxRequest::Fetch { auth, max: 64 })
            .await
        {
            MailboxResponse::Envelopes { envelopes, .. } => envelopes
                .iter()
                .map(|bytes| Envelope::decode(bytes).unwrap())
                .collect(),
            other => panic!("expected envelopes, got {other:?}"),
        }
    }

    /// Acknowledges envelopes as `owner`; returns how many were deleted.
    pub async fn ack(&mut self, server: PeerId, owner: &Identity, envelopes: &[Envelope]) -> u32 {
        let auth = self.owner_auth(server, owner).await;
        let ids = envelopes.iter().map(Envelope::id).collect();
        match self
            .request(server, MailboxRequest::Ack { auth, ids })
            .await
        {
            MailboxResponse::Acked { count } => count,
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

/// A pushed envelope, if `event` is one.
fn push_of(
    event: SwarmEvent<PeerBehaviourEvent>,
) -> Option<(EnvelopeRequest, ResponseChannel<EnvelopeAck>)> {
    match event {
        SwarmEvent::Behaviour(PeerBehaviourEvent::Envelope(request_response::Event::Message {
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        })) => Some((request, channel)),
        _ => None,
    }
}

/// What became of outbound request `id`, if `event` says: its response, or why it failed.
pub fn outcome<Req, Res>(
    event: request_response::Event<Req, Res>,
    id: OutboundRequestId,
) -> Option<Result<Res, request_response::OutboundFailure>> {
    match event {
        request_response::Event::Message {
            message:
                request_response::Message::Response {
                    request_id,
                    response,
                },
            ..
        } if request_id == id => Some(Ok(response)),
        request_response::Event::OutboundFailure {
            request_id, error, ..
        } if request_id == id => Some(Err(error)),
        _ => None,
    }
}
