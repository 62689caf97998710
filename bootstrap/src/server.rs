//! [`Server`]: the running node, one event loop task that owns the swarm and the mailbox database.

use std::{
    collections::HashMap,
    convert::Infallible,
    io::Write,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::{FutureExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, TransportError,
    core::transport::ListenerId,
    identify, kad,
    multiaddr::Protocol,
    noise,
    request_response::{self, OutboundRequestId, ResponseChannel},
    swarm::{
        ListenError, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
    tcp, yamux,
};
use tern_node::{
    files::{FileHolder, FileService, FileStore},
    mailbox::{
        MailboxRequest, MailboxResponse,
        host::MailboxHost,
        server::{MailboxError, MailboxServer},
    },
    net::{
        EnvelopeAck, EnvelopeRequest, Limits,
        behaviour::{DEFAULT_REQUEST_TIMEOUT, KAD_PROTOCOL},
        boxed::Boxed,
        swarm::peer_id_of,
    },
};
use thiserror::Error;
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
    time::MissedTickBehavior,
};
use tracing::{Instrument, debug, info, info_span, trace, warn};

use crate::{
    behaviour::{ServerBehaviour, ServerBehaviourEvent},
    config::{Config, ConfigError},
    key::{self, KeyError},
    metrics::{self, Metrics},
};

/// The directory of files held for recipients who are offline, inside the data directory.
pub const FILES_DIR: &str = "files";
/// The mailbox database's file name inside the data directory.
pub const MAILBOX_DB_FILE: &str = "mailbox.redb";
/// How long [`Server::spawn`] waits for every listener to report an address.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often federation peers that are not connected are dialled again.
pub const PEER_REDIAL_INTERVAL: Duration = Duration::from_secs(60);
/// Pushes to connected owners awaiting an answer at once; beyond that, mail waits for the owner's fetch.
pub use tern_node::mailbox::host::MAX_PUSHES_IN_FLIGHT;
/// Swarm events taken per wake-up before the mailbox requests among them are answered together (their
/// deposits share one durable commit): the bound on how long one group commit keeps others waiting.
pub const MAX_EVENTS_PER_WAKE: usize = 256;
/// Addresses of one peer taken from identify into the Kademlia routing table.
pub const MAX_KAD_ADDRS_PER_PEER: usize = 8;

/// Why the server could not start, or stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The node key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The mailbox database could not be opened.
    #[error("mailbox database: {0}")]
    Mailbox(#[from] MailboxError),
    /// The Noise handshake configuration could not be made.
    #[error("noise setup failed: {0}")]
    Noise(#[from] noise::Error),
    /// The system DNS configuration could not be read.
    #[error("DNS resolver setup failed: {0}")]
    Dns(#[source] std::io::Error),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: TransportError<std::io::Error>,
    },
    /// Not every listener reported an address in time, or none reported any.
    #[error("listeners did not come up: {0}")]
    ListenersDown(String),
    /// The metrics endpoint could not bind or failed.
    #[error("metrics endpoint {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The files held for others could not be opened.
    #[error("files: {0}")]
    Files(String),
    /// The event loop task panicked or was cancelled.
    #[error("the event loop task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What the listeners have reported so far.
#[derive(Debug, Clone, Default)]
struct ListenState {
    /// Current listen addresses, without the `/p2p/` suffix.
    addrs: Vec<Multiaddr>,
    /// Every listener has reported an address or closed.
    settled: bool,
    /// Why listeners closed before reporting, if any did.
    failures: Vec<String>,
}

/// A running bootstrap server. Dropping it stops the event loop without waiting; prefer
/// [`Server::shutdown`].
pub struct Server {
    peer_id: PeerId,
    metrics_addr: Option<SocketAddr>,
    listen: watch::Receiver<ListenState>,
    connected: watch::Receiver<usize>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("peer_id", &self.peer_id)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Validates `config`, loads (or creates) the node key, opens the mailbox database, builds the swarm,
    /// listens, dials the federation peers, binds the metrics endpoint, and starts the event loop on the
    /// current tokio runtime. Returns once every listener has reported its first address; each address is
    /// printed to stdout as `listening <multiaddr>/p2p/<peer id>`.
    pub async fn spawn(config: Config) -> Result<Self, ServerError> {
        config.validate()?;
        let keypair = key::load_or_create(&config.data_dir)?;
        let peer_id = keypair.public().to_peer_id();
        let span = info_span!("bootstrap", peer = %peer_id);

        let mailbox = MailboxServer::open(
            &config.data_dir.join(MAILBOX_DB_FILE),
            peer_id.to_bytes(),
            config.mailbox.to_mailbox_config(),
        )?;

        let limits = Limits::from(config.connections);
        let idle_timeout = config.idle_timeout();
        let relay = config.relay.to_relay_config();
        let mut swarm = infallible(
            SwarmBuilder::with_existing_identity(keypair)
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    noise::Config::new,
                    yamux::Config::default,
                )?
                .with_quic()
                .with_dns()
                .map_err(ServerError::Dns)?
                .with_behaviour(|key| {
                    // Boxed: each idle peer's connection task then holds a pointer, not the handler.
                    Boxed(ServerBehaviour::new(
                        key,
                        &limits,
                        relay,
                        DEFAULT_REQUEST_TIMEOUT,
                        config.files.enabled(),
                    ))
                }),
        )
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
        .build();

        let files = match swarm.behaviour().0.stream.as_ref() {
            Some(stream) => Some(start_files(&config, stream.new_control(), &span)?),
            None => None,
        };

        let mut listeners = HashMap::new();
        for addr in &config.listen {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|source| ServerError::Listen {
                    addr: addr.clone(),
                    source,
                })?;
            listeners.insert(id, false);
        }
        for addr in &config.external_addresses {
            swarm.add_external_address(addr.clone());
        }

        let peers: Vec<(PeerId, Multiaddr)> = config
            .peers
            .iter()
            .filter_map(|addr| peer_id_of(addr).map(|peer| (peer, addr.clone())))
            .filter(|(peer, _)| *peer != peer_id)
            .collect();
        for (peer, addr) in &peers {
            swarm.behaviour_mut().kad.add_address(peer, addr.clone());
        }
        if !peers.is_empty()
            && let Err(e) = swarm.behaviour_mut().kad.bootstrap()
        {
            debug!(parent: &span, error = %e, "Kademlia bootstrap not started");
        }

        let (metrics, metrics_listener) = match config.metrics {
            Some(addr) => {
                let listener = metrics::bind(addr)
                    .await
                    .map_err(|source| ServerError::Metrics { addr, source })?;
                let metrics = Metrics::new();
                metrics.register_refusal_reasons();
                (Some(metrics), Some(listener))
            }
            None => (None, None),
        };
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let metrics_serve = match (metrics_listener, &metrics, metrics_addr) {
            (Some(listener), Some(metrics), Some(addr)) => {
                let registry = metrics.registry();
                Some(async move {
                    metrics::serve(listener, registry)
                        .await
                        .map_err(|source| ServerError::Metrics { addr, source })
                })
            }
            _ => None,
        };

        let (listen_tx, listen_rx) = watch::channel(ListenState::default());
        let (connected_tx, connected_rx) = watch::channel(0);
        let (stop_tx, stop_rx) = oneshot::channel();
        let mut event_loop = EventLoop {
            swarm,
            mailbox: MailboxHost::new(mailbox),
            metrics,
            peer_id,
            peers,
            listeners,
            listen_tx,
            connected_tx,
            purge_interval: config.purge_interval(),
            files,
        };
        event_loop.update_metrics();
        event_loop.redial();
        info!(parent: &span, data_dir = %config.data_dir.display(), "bootstrap node starting");

        let task = tokio::spawn(
            async move {
                let run = event_loop.run(stop_rx);
                match metrics_serve {
                    Some(serve) => tokio::select! {
                        result = run => result,
                        result = serve => result,
                    },
                    None => run.await,
                }
            }
            .instrument(span),
        );

        let mut server = Self {
            peer_id,
            metrics_addr,
            listen: listen_rx,
            connected: connected_rx,
            stop: Some(stop_tx),
            task: Some(task),
        };
        server.wait_for_listeners().await?;
        Ok(server)
    }

    async fn wait_for_listeners(&mut self) -> Result<(), ServerError> {
        let settled =
            tokio::time::timeout(LISTEN_TIMEOUT, self.listen.wait_for(|state| state.settled)).await;
        let outcome = match &settled {
            Ok(Ok(state)) => Some((state.addrs.is_empty(), state.failures.join("; "))),
            Ok(Err(_)) => None,
            Err(_) => {
                return Err(ServerError::ListenersDown(format!(
                    "no address after {LISTEN_TIMEOUT:?}"
                )));
            }
        };
        drop(settled);
        match outcome {
            Some((false, _)) => Ok(()),
            Some((true, failures)) => Err(ServerError::ListenersDown(failures)),
            // The event loop ended before the listeners settled: its result says why.
            None => match self.join().await {
                Ok(()) => Err(ServerError::ListenersDown("event loop stopped".to_owned())),
                Err(e) => Err(e),
            },
        }
    }

    /// The node's PeerId, stable across restarts on the same data directory.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The current listen addresses, each ending in `/p2p/<peer id>`.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen
            .borrow()
            .addrs
            .iter()
            .map(|a| a.clone().with(Protocol::P2p(self.peer_id)))
            .collect()
    }

    /// How many peers have an open connection.
    pub fn connected_peers(&self) -> usize {
        *self.connected.borrow()
    }

    /// Waits until at least `min` peers are connected; `false` if the server stopped first.
    pub async fn wait_for_connected_peers(&self, min: usize) -> bool {
        let mut connected = self.connected.clone();
        connected.wait_for(|n| *n >= min).await.is_ok()
    }

    /// Where the metrics endpoint listens (with the real port if 0 was configured), if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Waits until the server stops by itself, which only a fatal error does; returns at once if it has
    /// already been joined. Cancel-safe: it can be raced against a shutdown signal in `select!`.
    pub async fn join(&mut self) -> Result<(), ServerError> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let result = task.await;
        self.task = None;
        result?
    }

    /// Stops the event loop and waits for it: the swarm is dropped (closing every connection and listener)
    /// and the mailbox database is closed, so it can be opened again as soon as this returns.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join().await
    }
}

fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

/// Unix time in seconds; 0 if the clock is before 1970.
fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Opens `files/` in the data directory, serves `/tern/file/1` from it and answers `/tern/file-hold/1` within
/// the configured limits.
fn start_files(
    config: &Config,
    control: libp2p_stream::Control,
    span: &tracing::Span,
) -> Result<HeldFiles, ServerError> {
    let error = |e: &dyn std::fmt::Display| ServerError::Files(e.to_string());
    let store = FileStore::open(config.data_dir.join(FILES_DIR)).map_err(|e| error(&e))?;
    let service = Arc::new(FileService::new(store, control.clone()).map_err(|e| error(&e))?);
    let limits = config.files.to_hold_limits(&config.mailbox);
    let holder = FileHolder::start(service.clone(), control, limits).map_err(|e| error(&e))?;
    info!(parent: span, held_bytes = holder.held_bytes(), ?limits, "holding files for offline recipients");
    Ok(HeldFiles {
        _service: service,
        holder: Arc::new(holder),
    })
}

/// The files held for recipients who are offline: the service that fetches and serves them, and the holder
/// that takes requests and deletes expired ones.
struct HeldFiles {
    _service: Arc<FileService>,
    holder: Arc<FileHolder>,
}

/// Owns the swarm and the mailbox; everything happens on its task.
struct EventLoop {
    swarm: Swarm<Boxed<ServerBehaviour>>,
    /// The mailbox policy shared with `tern-node --mailbox`: grouped answers, bounded pushes.
    mailbox: MailboxHost<ResponseChannel<MailboxResponse>, OutboundRequestId>,
    metrics: Option<Metrics>,
    peer_id: PeerId,
    /// Federation peers, kept connected.
    peers: Vec<(PeerId, Multiaddr)>,
    /// Each listener, and whether it has reported an address (or closed) yet.
    listeners: HashMap<ListenerId, bool>,
    listen_tx: watch::Sender<ListenState>,
    connected_tx: watch::Sender<usize>,
    purge_interval: Duration,
    files: Option<HeldFiles>,
}

impl EventLoop {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), ServerError> {
        let mut purge = tokio::time::interval(self.purge_interval);
        purge.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut redial = tokio::time::interval(PEER_REDIAL_INTERVAL);
        redial.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Both fire at once; the first purge is useful after a long downtime, the first redial is not.
        redial.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                event = self.swarm.select_next_some() => {
                    self.on_swarm_event(event);
                    // Group commit: take whatever else is ready now, then answer the mailbox requests all of
                    // it carried with one durable commit for their deposits.
                    for _ in 1..MAX_EVENTS_PER_WAKE {
                        match self.swarm.next().now_or_never() {
                            Some(Some(event)) => self.on_swarm_event(event),
                            _ => break,
                        }
                    }
                    self.answer_mailbox();
                }
                _ = purge.tick() => self.purge(),
                _ = redial.tick() => self.redial(),
            }
        }
        info!("bootstrap node stopping");
        // Dropping `self` drops the swarm and closes the mailbox database before the task ends.
        drop(self);
        Ok(())
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<ServerBehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                let full = address.clone().with(Protocol::P2p(self.peer_id));
                info!(%full, "listening");
                // The one line scripts read; stdout may be closed, which is no reason to stop.
                let _ = writeln!(std::io::stdout().lock(), "listening {full}");
                self.listeners.insert(listener_id, true);
                let settled = self.settled();
                self.listen_tx.send_modify(|state| {
                    if !state.addrs.contains(&address) {
                        state.addrs.push(address);
                    }
                    state.settled |= settled;
                });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                info!(%address, "no longer listening");
                self.listen_tx
                    .send_modify(|state| state.addrs.retain(|a| *a != address));
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                let failure = match &reason {
                    Ok(()) => "closed".to_owned(),
                    Err(e) => e.to_string(),
                };
                warn!(?addresses, reason = %failure, "listener closed");
                self.listeners.insert(listener_id, true);
                let settled = self.settled();
                self.listen_tx.send_modify(|state| {
                    state.addrs.retain(|a| !addresses.contains(a));
                    state.failures.push(failure);
                    state.settled |= settled;
                });
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                self.update_connected();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "connection closed");
                if num_established == 0 {
                    self.mailbox.peer_disconnected(&peer_id);
                }
                self.update_connected();
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                if let Some(peer) = peer_id.filter(|p| self.peers.iter().any(|(q, _)| q == p)) {
                    warn!(%peer, %error, "cannot reach federation peer");
                } else {
                    debug!(peer = ?peer_id, %error, "outgoing connection failed");
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                let reason = match &error {
                    ListenError::Denied { .. } => "limit",
                    _ => "handshake",
                };
                debug!(addr = %send_back_addr, %error, reason, "incoming connection refused");
                if let Some(metrics) = &self.metrics {
                    metrics.connection_refused(reason);
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                info!(%address, "external address confirmed");
            }
            other => trace!(event = ?other, "swarm event"),
        }
    }

    fn settled(&self) -> bool {
        self.listeners.values().all(|reported| *reported)
    }

    fn on_behaviour_event(&mut self, event: ServerBehaviourEvent) {
        match event {
            ServerBehaviourEvent::Mailbox(event) => self.on_mailbox_event(event),
            ServerBehaviourEvent::Envelope(event) => self.on_envelope_event(event),
            ServerBehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocols.contains(&KAD_PROTOCOL) {
                    let kad = &mut self.swarm.behaviour_mut().kad;
                    for addr in info.listen_addrs.into_iter().take(MAX_KAD_ADDRS_PER_PEER) {
                        kad.add_address(&peer_id, addr);
                    }
                }
            }
            ServerBehaviourEvent::Identify(event) => trace!(?event, "identify"),
            // The stream behaviour reports nothing: its streams go to the file holder's tasks.
            ServerBehaviourEvent::Stream(()) => {}
            ServerBehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, is_new_peer, ..
            }) => {
                if is_new_peer {
                    debug!(%peer, "added to the routing table");
                }
            }
            ServerBehaviourEvent::Kad(kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            }) => {
                let stored = tern_node::net::dht::store_if_valid(
                    self.swarm.behaviour_mut().kad.store_mut(),
                    record,
                );
                debug!(%source, stored, "mailbox record offered");
            }
            ServerBehaviourEvent::Kad(event) => trace!(?event, "kademlia"),
            ServerBehaviourEvent::Relay(event) => debug!(?event, "relay"),
            ServerBehaviourEvent::Autonat(event) => debug!(?event, "autonat"),
            ServerBehaviourEvent::Ping(_) | ServerBehaviourEvent::Limits(_) => {}
        }
    }

    fn on_mailbox_event(
        &mut self,
        event: request_response::Event<MailboxRequest, MailboxResponse>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                // Answered in `answer_mailbox`, with the other requests that arrived at the same time.
                if let Err((peer, request, channel)) = self.mailbox.take(peer, request, channel) {
                    // A full group: answer it and start the next one.
                    self.answer_mailbox();
                    let _ = self.mailbox.take(peer, request, channel);
                }
            }
            request_response::Event::Message {
                message: request_response::Message::Response { .. },
                ..
            } => {
                // The mailbox behaviour is inbound only: no response can arrive.
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "mailbox request failed");
            }
            request_response::Event::OutboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Answers the mailbox requests taken since the last call, in arrival order. Deposits among them are
    /// stored with one durable commit ([`MailboxHost::answer`]); no answer leaves before it. Fresh mail
    /// goes to its owner if the owner is connected and has fetched here.
    fn answer_mailbox(&mut self) {
        let answers = self.mailbox.answer(now_s());
        if answers.replies.is_empty() {
            return;
        }
        for reply in answers.replies {
            if self
                .swarm
                .behaviour_mut()
                .mailbox
                .send_response(reply.channel, reply.response)
                .is_err()
            {
                debug!(peer = %reply.peer, "mailbox response not sent: the stream is gone");
            }
            if reply.disconnect {
                // Unreadable bytes cost the sender its connection, not the server anything more.
                debug!(peer = %reply.peer, "garbage on the mailbox protocol: disconnecting");
                let _ = self.swarm.disconnect_peer_id(reply.peer);
            }
        }
        for push in answers.pushes {
            match EnvelopeRequest::new(push.envelope.clone()) {
                Ok(request) => {
                    let request_id = self
                        .swarm
                        .behaviour_mut()
                        .envelope
                        .send_request(&push.owner, request);
                    debug!(peer = %push.owner, "pushing new mail to its owner");
                    self.mailbox.push_sent(request_id, &push);
                }
                Err(e) => debug!(error = %e, "stored envelope cannot be pushed"),
            }
        }
        self.update_metrics();
    }

    fn on_envelope_event(&mut self, event: request_response::Event<EnvelopeRequest, EnvelopeAck>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let taken = matches!(response, EnvelopeAck::Accepted | EnvelopeAck::Duplicate);
                if self.mailbox.push_answered(&request_id, Some(response)) && taken {
                    debug!(%peer, "owner took pushed mail");
                    self.update_metrics();
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.mailbox.push_answered(&request_id, None) {
                    debug!(%peer, %error, "push failed; the mail stays queued");
                }
            }
            request_response::Event::Message {
                message: request_response::Message::Request { .. },
                ..
            } => {
                // The envelope behaviour is outbound only: no request can arrive.
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn purge(&mut self) {
        match self.mailbox.purge(now_s()) {
            Ok(0) => {}
            Ok(purged) => info!(purged, "deleted expired mail"),
            Err(e) => warn!(error = %e, "cannot delete expired mail"),
        }
        if let Some(files) = &self.files {
            let holder = files.holder.clone();
            // Directory reads and deletes: off the loop's task.
            tokio::task::spawn_blocking(move || match holder.sweep(SystemTime::now()) {
                0 => {}
                deleted => info!(deleted, "deleted expired files"),
            });
        }
        self.update_metrics();
    }

    fn dial_peer(&mut self, addr: &Multiaddr) {
        let Some(peer) = peer_id_of(addr) else {
            return;
        };
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr.clone()])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            debug!(%peer, error = %e, "federation dial not started");
        }
    }

    fn redial(&mut self) {
        let missing: Vec<Multiaddr> = self
            .peers
            .iter()
            .filter(|(peer, _)| !self.swarm.is_connected(peer))
            .map(|(_, addr)| addr.clone())
            .collect();
        for addr in &missing {
            self.dial_peer(addr);
        }
    }

    fn update_connected(&mut self) {
        let peers = self.swarm.connected_peers().count();
        self.connected_tx
            .send_if_modified(|n| std::mem::replace(n, peers) != peers);
        if let Some(metrics) = &self.metrics {
            metrics.set_connected_peers(peers);
        }
    }

    fn update_metrics(&mut self) {
        if let Some(metrics) = &mut self.metrics {
            let server = self.mailbox.server();
            metrics.record_mailbox(&server.stats(), server.counters(), server.storage_health());
        }
    }
}
