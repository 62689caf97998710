//! Prometheus metrics, kept up to date by the event loop and served as text at `GET /metrics`.
//!
//! Every name starts with `tern_bootstrap_`. Gauges are set from the mailbox's stats; counters follow the
//! mailbox's own counters (which start at zero with the process, as Prometheus counters do).

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tern_node::mailbox::{
    Refusal,
    server::{MailboxCounters, MailboxStats, StorageHealth},
};
use tokio::net::TcpListener;
use tracing::debug;

/// The content type of the text exposition format prometheus-client writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why an incoming connection was refused: a connection limit denied it, or its handshake failed (garbage
/// instead of Noise, a reset mid-handshake, an unsupported multiplexer).
pub(crate) const CONNECTION_REFUSAL_REASONS: [&str; 2] = ["limit", "handshake"];

/// The label set of the refusal counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The metric handles and the registry that names them.
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    connected_peers: Gauge,
    envelopes: Gauge,
    bytes: Gauge,
    mailboxes: Gauge,
    unclaimed_bytes: Gauge,
    claims: Gauge,
    group_queues: Gauge,
    group_messages: Gauge,
    group_bytes: Gauge,
    deposits: Counter,
    duplicates: Counter,
    fetches: Counter,
    fetched_envelopes: Counter,
    acked: Counter,
    pushed: Counter,
    expired: Counter,
    refusals: Family<ReasonLabel, Counter>,
    connections_refused: Family<ReasonLabel, Counter>,
    storage_ok: Gauge,
    storage_failures: Counter,
    storage_reopens: Counter,
    /// The mailbox counters already added, so each update adds only the difference.
    seen: Seen,
}

#[derive(Default)]
struct Seen {
    deposits: u64,
    duplicates: u64,
    fetches: u64,
    fetched_envelopes: u64,
    acked: u64,
    pushed: u64,
    expired: u64,
    refusals: BTreeMap<&'static str, u64>,
    storage_failures: u64,
    storage_reopens: u64,
}

impl Metrics {
    /// Registers every metric.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("tern_bootstrap");
        let connected_peers = Gauge::default();
        registry.register(
            "connected_peers",
            "Peers with at least one open connection",
            connected_peers.clone(),
        );
        let envelopes = Gauge::default();
        registry.register(
            "mailbox_envelopes",
            "Envelopes stored for offline recipients",
            envelopes.clone(),
        );
        let bytes = Gauge::default();
        registry.register(
            "mailbox_bytes",
            "Envelope bytes stored for offline recipients",
            bytes.clone(),
        );
        let mailboxes = Gauge::default();
        registry.register(
            "mailbox_mailboxes",
            "Mailboxes holding at least one envelope",
            mailboxes.clone(),
        );
        let unclaimed_bytes = Gauge::default();
        registry.register(
            "mailbox_unclaimed_bytes",
            "Envelope bytes stored for mailboxes whose owner has not fetched here (bounded by unclaimed_bytes)",
            unclaimed_bytes.clone(),
        );
        let claims = Gauge::default();
        registry.register(
            "mailbox_claims",
            "Mailboxes whose owner has fetched here within claim_ttl_secs",
            claims.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let group_queues = gauge(
            &mut registry,
            "mailbox_group_queues",
            "Group queues held (one per group that names this server)",
        );
        let group_messages = gauge(
            &mut registry,
            "mailbox_group_messages",
            "Group messages held, one copy each for the whole group",
        );
        let group_bytes = gauge(
            &mut registry,
            "mailbox_group_bytes",
            "Group message bytes held (counted in the server's byte total)",
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let deposits = counter(
            &mut registry,
            "mailbox_deposits",
            "Envelopes accepted for storage",
        );
        let duplicates = counter(
            &mut registry,
            "mailbox_duplicates",
            "Deposits of envelopes already stored",
        );
        let fetches = counter(
            &mut registry,
            "mailbox_fetches",
            "Authenticated fetch requests answered",
        );
        let fetched_envelopes = counter(
            &mut registry,
            "mailbox_fetched_envelopes",
            "Envelopes handed to their owners by fetch",
        );
        let acked = counter(
            &mut registry,
            "mailbox_acked",
            "Envelopes deleted because their owner acknowledged them",
        );
        let pushed = counter(
            &mut registry,
            "mailbox_pushed",
            "Envelopes pushed to a connected owner and deleted on its acknowledgement",
        );
        let expired = counter(
            &mut registry,
            "mailbox_expired",
            "Envelopes deleted unread because they expired",
        );
        let refusals = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "mailbox_refusals",
            "Mailbox requests refused, by reason",
            refusals.clone(),
        );
        let connections_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "connections_refused",
            "Incoming connections refused, by reason (limit: a connection limit; handshake: the transport, \
             Noise or Yamux handshake failed)",
            connections_refused.clone(),
        );
        let storage_ok = Gauge::default();
        registry.register(
            "mailbox_storage_ok",
            "1 while the mailbox database works; 0 after a storage failure (a full disk, say) until it is \
             opened again",
            storage_ok.clone(),
        );
        let storage_failures = counter(
            &mut registry,
            "mailbox_storage_failures",
            "Mailbox storage operations that failed (each closes the database to be opened again)",
        );
        let storage_reopens = counter(
            &mut registry,
            "mailbox_storage_reopens",
            "Times the mailbox database was opened again after a storage failure",
        );
        Self {
            registry: Arc::new(registry),
            storage_ok,
            storage_failures,
            storage_reopens,
            connected_peers,
            envelopes,
            bytes,
            mailboxes,
            unclaimed_bytes,
            claims,
            group_queues,
            group_messages,
            group_bytes,
            deposits,
            duplicates,
            fetches,
            fetched_envelopes,
            acked,
            pushed,
            expired,
            refusals,
            connections_refused,
            seen: Seen::default(),
        }
    }

    /// The registry, for the HTTP endpoint.
    pub(crate) fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// Sets the connected-peers gauge.
    pub(crate) fn set_connected_peers(&self, peers: usize) {
        self.connected_peers.set(saturating_i64(peers as u64));
    }

    /// Brings the mailbox metrics up to date.
    pub(crate) fn record_mailbox(
        &mut self,
        stats: &MailboxStats,
        counters: &MailboxCounters,
        health: StorageHealth,
    ) {
        self.storage_ok.set(i64::from(health.ok));
        advance(
            &self.storage_failures,
            &mut self.seen.storage_failures,
            health.failures,
        );
        advance(
            &self.storage_reopens,
            &mut self.seen.storage_reopens,
            health.reopens,
        );
        self.envelopes.set(saturating_i64(stats.envelopes));
        self.bytes.set(saturating_i64(stats.bytes));
        self.mailboxes.set(saturating_i64(stats.mailboxes));
        self.unclaimed_bytes
            .set(saturating_i64(stats.unclaimed_bytes));
        self.claims.set(saturating_i64(stats.claims));
        self.group_queues.set(saturating_i64(stats.group_queues));
        self.group_messages
            .set(saturating_i64(stats.group_messages));
        self.group_bytes.set(saturating_i64(stats.group_bytes));
        let seen = &mut self.seen;
        advance(&self.deposits, &mut seen.deposits, counters.deposits);
        advance(&self.duplicates, &mut seen.duplicates, counters.duplicates);
        advance(&self.fetches, &mut seen.fetches, counters.fetches);
        advance(
            &self.fetched_envelopes,
            &mut seen.fetched_envelopes,
            counters.fetched_envelopes,
        );
        advance(&self.acked, &mut seen.acked, counters.acked);
        advance(&self.pushed, &mut seen.pushed, counters.pushed);
        advance(&self.expired, &mut seen.expired, counters.expired);
        for (&reason, &total) in &counters.refusals {
            let last = seen.refusals.entry(reason).or_insert(0);
            advance(
                &self.refusals.get_or_create(&ReasonLabel { reason }),
                last,
                total,
            );
        }
    }

    /// Counts an incoming connection refused for `reason` (one of [`CONNECTION_REFUSAL_REASONS`]).
    pub(crate) fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Makes every refusal reason visible at zero, so alerts on a reason work before it first happens.
    pub(crate) fn register_refusal_reasons(&self) {
        for refusal in Refusal::ALL {
            let _ = self.refusals.get_or_create(&ReasonLabel {
                reason: refusal.name(),
            });
        }
        for reason in CONNECTION_REFUSAL_REASONS {
            let _ = self
                .connections_refused
                .get_or_create(&ReasonLabel { reason });
        }
    }
}

/// Adds to `counter` what `total` gained since `last`.
fn advance(counter: &Counter, last: &mut u64, total: u64) {
    if total > *last {
        counter.inc_by(total - *last);
    }
    *last = total;
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The registry in the text exposition format.
pub(crate) fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    encode(&mut text, registry)?;
    Ok(text)
}

async fn metrics_handler(State(registry): State<Arc<Registry>>) -> Response {
    match render(&registry) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Binds the metrics listener. Separate from [`serve`] so a bad address fails the start.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` until the future is dropped (with the event loop) or fails.
pub(crate) async fn serve(listener: TcpListener, registry: Arc<Registry>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(registry);
    debug!(addr = ?listener.local_addr().ok(), "serving metrics");
    axum::serve(listener, app).await
}
