//! A small test-only libp2p client for the bootstrap server: TCP on loopback, no mDNS, the mailbox protocol
//! outbound, the envelope protocol inbound (for pushes), and a raw codec that writes arbitrary bytes on a
//! `/tern/mailbox/1` stream.
#![allow(dead_code)]

use std::{
    collections::VecDeque,
    io,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, noise,
    request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel},
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use tern_bootstrap::Config;
use tern_node::{
    mailbox::{
        MAILBOX_PROTOCOL, MailboxCodec, MailboxProtocol, MailboxRequest, MailboxResponse, OwnerAuth,
    },
    net::{
        EnvelopeAck, EnvelopeCodec, EnvelopeRequest, behaviour::frame_behaviour,
        codec::EnvelopeProtocol,
    },
};
use tern_protocol::{Envelope, Identity};

/// Every test's overall deadline.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A server configuration for tests: loopback TCP on an ephemeral port, data in `dir`.
pub fn test_config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_owned(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        ..Config::default()
    }
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn identity() -> Identity {
    Identity::generate(&mut rand::rng(), now_s() * 1000)
}

/// A sealed envelope from `sender` to `recipient`, expiring in an hour.
pub fn envelope(sender: &Identity, recipient: &Identity, text: &[u8]) -> Envelope {
    Envelope::seal(
        sender,
        recipient.public(),
        text,
        now_s() + 3600,
        &mut rand::rng(),
    )
    .unwrap()
}

/// Writes the request bytes as they are and reads whatever comes back until the stream ends.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

const RAW_MAX: u64 = 1024 * 1024;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::new();
        io.take(RAW_MAX).read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::new();
        io.take(RAW_MAX).read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&res).await?;
        io.close().await
    }
}

#[derive(NetworkBehaviour)]
pub struct ClientBehaviour {
    mailbox: request_response::Behaviour<MailboxCodec>,
    envelope: request_response::Behaviour<EnvelopeCodec>,
    raw: request_response::Behaviour<RawCodec>,
}

/// What the raw stream produced.
#[derive(Debug)]
pub enum RawOutcome {
    /// The server answered with these bytes (possibly none).
    Bytes(Vec<u8>),
    /// The exchange failed on the client side (the server reset or closed the stream).
    Failed(String),
}

/// A test client.
pub struct Client {
    pub swarm: Swarm<ClientBehaviour>,
    /// Envelopes the server pushed, with the channel to acknowledge them.
    pub pushed: VecDeque<(EnvelopeRequest, ResponseChannel<EnvelopeAck>)>,
}

impl Client {
    pub fn new() -> Self {
        let swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| ClientBehaviour {
                mailbox: frame_behaviour::<MailboxProtocol>(
                    ProtocolSupport::Outbound,
                    Duration::from_secs(20),
                ),
                envelope: frame_behaviour::<EnvelopeProtocol>(
                    ProtocolSupport::Inbound,
                    Duration::from_secs(20),
                ),
                raw: request_response::Behaviour::with_codec(
                    RawCodec,
                    [(MAILBOX_PROTOCOL, ProtocolSupport::Outbound)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(20)),
                ),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        Self {
            swarm,
            pushed: VecDeque::new(),
        }
    }

    /// Dials the server and waits until the connection is up.
    pub async fn connect(&mut self, addr: &Multiaddr) -> PeerId {
        let peer = match addr.iter().last() {
            Some(libp2p::multiaddr::Protocol::P2p(peer)) => peer,
            _ => panic!("{addr} has no /p2p/"),
        };
        self.swarm.dial(addr.clone()).unwrap();
        loop {
            match self.swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                    return peer;
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial failed: {error}"),
                event => self.other(event),
            }
        }
    }

    fn other(&mut self, event: SwarmEvent<ClientBehaviourEvent>) {
        if let SwarmEvent::Behaviour(ClientBehaviourEvent::Envelope(
            request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            },
        )) = event
        {
            self.pushed.push_back((request, channel));
        }
    }

    /// Sends a mailbox request and drives the swarm until its answer arrives.
    pub async fn request(&mut self, server: PeerId, request: MailboxRequest) -> MailboxResponse {
        let id = self
            .swarm
            .behaviour_mut()
            .mailbox
            .send_request(&server, request);
        loop {
            match self.swarm.select_next_some().await {
                SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(
                    request_response::Event::Message {
                        message:
                            request_response::Message::Response {
                                request_id,
                                response,
                            },
                        ..
                    },
                )) if request_id == id => return response,
                SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(
                    request_response::Event::OutboundFailure {
                        request_id, error, ..
                    },
                )) if request_id == id => panic!("mailbox request failed: {error}"),
                event => self.other(event),
            }
        }
    }

    /// Writes `bytes` on a fresh `/tern/mailbox/1` stream and waits for the outcome.
    pub async fn raw(&mut self, server: PeerId, bytes: Vec<u8>) -> RawOutcome {
        let id: OutboundRequestId = self.swarm.behaviour_mut().raw.send_request(&server, bytes);
        loop {
            match self.swarm.select_next_some().await {
                SwarmEvent::Behaviour(ClientBehaviourEvent::Raw(
                    request_response::Event::Message {
                        message:
                            request_response::Message::Response {
                                request_id,
                                response,
                            },
                        ..
                    },
                )) if request_id == id => return RawOutcome::Bytes(response),
                SwarmEvent::Behaviour(ClientBehaviourEvent::Raw(
                    request_response::Event::OutboundFailure {
                        request_id, error, ..
                    },
                )) if request_id == id => return RawOutcome::Failed(error.to_string()),
                event => self.other(event),
            }
        }
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

    /// Drives the swarm until the server pushes an envelope.
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

    /// Deposits an envelope and expects it stored.
    pub async fn deposit(&mut self, server: PeerId, envelope: &Envelope) {
        let response = self
            .request(
                server,
                MailboxRequest::Deposit {
                    envelope: envelope.encode(),
                },
            )
            .await;
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

/// `GET path` over HTTP/1.1 on a raw TCP stream; returns the whole response (head and body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8(response).unwrap()
}

/// The value of an unlabelled sample in Prometheus text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
