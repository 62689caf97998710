//! The mailbox client as a state machine without I/O: when to fetch this profile's mail from which server,
//! and the fetch itself (challenge, signed pages, acknowledgement of what was stored), one fetch per
//! server at a time. Like `crate::delivery`: `handle_*(…, now)` in, [`MailboxClient::poll_action`] out,
//! [`MailboxClient::poll_timeout`] for the one [`TimerTable`]. The node's event loop
//! (`node/mailbox_client.rs`) signs, sends, stores and reports back.
//!
//! A page is acknowledged only after it is stored, and the next page is asked for only after that
//! acknowledgement was answered: a server that hands out the same page again because acknowledgements fail
//! is backed off ([`FETCH_BACKOFF`], doubling), not asked again at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tern_protocol::EnvelopeId;

use crate::mailbox::wire::NONCE_LEN;
use crate::timer::TimerTable;

/// How often every server of ours is asked for new mail (each is also asked when it connects).
pub const FETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Mailbox requests of ours in flight at once (fetches and deposits share the bound in the node).
pub const MAX_MAILBOX_REQUESTS: usize = 64;
/// Servers fetched from (configured ones and the LAN's).
pub const MAX_SERVERS: usize = 64;
/// The first pause after a page that made no progress; it doubles per such page up to
/// [`MAX_FETCH_BACKOFF`].
pub const FETCH_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause between two pages of one fetch.
pub const MAX_FETCH_BACKOFF: Duration = Duration::from_secs(60);
/// Pages without progress in a row after which a fetch ends (the next periodic fetch starts afresh).
pub const MAX_STALLED_PAGES: u32 = 6;
/// A server of ours whose connection closed is dialled again this often until it is back (so mail it
/// holds, or pushes, reach us soon after it returns rather than at the next [`FETCH_INTERVAL`]).
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(5);

/// What the client wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Ask the server for a challenge; answer with [`MailboxClient::handle_nonce`].
    Challenge { server: PeerId },
    /// Ask for the next page, signed over `nonce`; answer with [`MailboxClient::handle_page_stored`] once
    /// the page is stored.
    Fetch {
        server: PeerId,
        nonce: [u8; NONCE_LEN],
    },
    /// Acknowledge stored envelopes, signed over `nonce`; answer with [`MailboxClient::handle_acked`].
    Ack {
        server: PeerId,
        nonce: [u8; NONCE_LEN],
        ids: Vec<EnvelopeId>,
    },
    /// Dial a server of ours that is not connected.
    Dial { server: PeerId },
    /// A fetch ended with the server read to the end; `envelopes` were handed over.
    Checked { server: PeerId, envelopes: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum ClientTimer {
    FetchAll,
    Resume(PeerId),
    /// Some server of ours is not connected: dial it ([`RECONNECT_INTERVAL`]).
    Reconnect,
}

#[derive(Debug)]
enum Stage {
    Challenging,
    Fetching,
    Acking {
        more: bool,
    },
    /// Backed off after a page without progress; [`ClientTimer::Resume`] restarts with a new challenge.
    Paused,
}

#[derive(Debug)]
struct Fetch {
    stage: Stage,
    nonce: [u8; NONCE_LEN],
    /// Envelopes taken so far.
    taken: usize,
    /// Pages in a row that made no progress.
    stalled: u32,
}

/// The mailbox client state machine.
#[derive(Debug)]
pub struct MailboxClient {
    servers: Vec<PeerId>,
    connected: HashSet<PeerId>,
    fetches: HashMap<PeerId, Fetch>,
    /// Requests asked for and not answered.
    requests: usize,
    timers: TimerTable<ClientTimer>,
    /// Drained by the actor after every input (a few actions per input, one per server at most).
    actions: VecDeque<ClientAction>,
}

impl MailboxClient {
    /// A client whose first periodic fetch is due after [`FETCH_INTERVAL`] (servers are fetched from as
    /// they connect); servers not connected by [`RECONNECT_INTERVAL`] are dialled then, and as often until
    /// they are.
    pub fn new(now: Instant) -> Self {
        let mut timers = TimerTable::default();
        timers.set(ClientTimer::FetchAll, now + FETCH_INTERVAL);
        // Servers not reached at start (down, say) are dialled again soon, not at the first periodic fetch.
        timers.set(ClientTimer::Reconnect, now + RECONNECT_INTERVAL);
        Self {
            servers: Vec::new(),
            connected: HashSet::new(),
            fetches: HashMap::new(),
            requests: 0,
            timers,
            actions: VecDeque::new(),
        }
    }

    pub fn poll_action(&mut self) -> Option<ClientAction> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// Requests in flight.
    pub fn requests(&self) -> usize {
        self.requests
    }

    pub fn is_fetching(&self, server: &PeerId) -> bool {
        self.fetches.contains_key(server)
    }

    /// The servers that hold this profile's mail (at most [`MAX_SERVERS`]).
    pub fn handle_servers(&mut self, servers: Vec<PeerId>) {
        self.servers = servers.into_iter().take(MAX_SERVERS).collect();
    }

    /// A server of ours was found over a connection (a mailbox on the LAN): fetched from at once.
    pub fn handle_server_added(&mut self, server: PeerId) {
        if !self.servers.contains(&server) {
            if self.servers.len() >= MAX_SERVERS {
                return;
            }
            self.servers.push(server);
        }
        self.connected.insert(server);
        self.start(server);
    }

    /// A peer's first connection opened: a server of ours is fetched from.
    pub fn handle_connected(&mut self, peer: PeerId) {
        if !self.servers.contains(&peer) {
            return;
        }
        self.connected.insert(peer);
        self.start(peer);
    }

    /// A peer's last connection closed: its fetch ends (answers still on their way are ignored); a
    /// server of ours is dialled again after [`RECONNECT_INTERVAL`], and then as often, until it is back.
    pub fn handle_disconnected(&mut self, peer: PeerId, now: Instant) {
        self.connected.remove(&peer);
        self.end(peer);
        if self.servers.contains(&peer) && self.timers.get(ClientTimer::Reconnect).is_none() {
            self.timers
                .set(ClientTimer::Reconnect, now + RECONNECT_INTERVAL);
        }
    }

    /// The server gave a challenge.
    pub fn handle_nonce(&mut self, server: PeerId, nonce: [u8; NONCE_LEN]) {
        self.answered();
        let Some(fetch) = self.fetches.get_mut(&server) else {
            return;
        };
        if !matches!(fetch.stage, Stage::Challenging) {
            return;
        }
        fetch.nonce = nonce;
        fetch.stage = Stage::Fetching;
        self.ask(ClientAction::Fetch { server, nonce }, server);
    }

    /// A page was stored; `done` are the envelopes safe to acknowledge (stored, or never readable).
    pub fn handle_page_stored(
        &mut self,
        server: PeerId,
        done: Vec<EnvelopeId>,
        more: bool,
        now: Instant,
    ) {
        self.answered();
        let Some(fetch) = self.fetches.get_mut(&server) else {
            return;
        };
        if !matches!(fetch.stage, Stage::Fetching) {
            return;
        }
        fetch.taken += done.len();
        if done.is_empty() {
            if more {
                // Nothing could be stored from a page that says there is more: not again at once.
                self.stall(server, now);
            } else {
                self.finish(server);
            }
            return;
        }
        let nonce = fetch.nonce;
        fetch.stage = Stage::Acking { more };
        self.ask(
            ClientAction::Ack {
                server,
                nonce,
                ids: done,
            },
            server,
        );
    }

    /// The server answered an acknowledgement (`ok`: it took it; else refused or failed).
    pub fn handle_acked(&mut self, server: PeerId, ok: bool, now: Instant) {
        self.answered();
        let Some(fetch) = self.fetches.get_mut(&server) else {
            return;
        };
        let Stage::Acking { more } = fetch.stage else {
            return;
        };
        if !ok {
            // The server keeps what it handed out and would hand out the same page again.
            self.stall(server, now);
            return;
        }
        fetch.stalled = 0;
        if more {
            let nonce = fetch.nonce;
            fetch.stage = Stage::Fetching;
            self.ask(ClientAction::Fetch { server, nonce }, server);
        } else {
            self.finish(server);
        }
    }

    /// A challenge or fetch was refused, or failed: the fetch ends.
    pub fn handle_refused(&mut self, server: PeerId) {
        self.answered();
        self.end(server);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.expired(now) {
            match timer {
                ClientTimer::FetchAll => {
                    self.timers.set(ClientTimer::FetchAll, now + FETCH_INTERVAL);
                    for server in self.servers.clone() {
                        if self.connected.contains(&server) {
                            self.start(server);
                        } else {
                            self.actions.push_back(ClientAction::Dial { server });
                        }
                    }
                }
                ClientTimer::Reconnect => {
                    let missing: Vec<PeerId> = self
                        .servers
                        .iter()
                        .filter(|s| !self.connected.contains(s))
                        .copied()
                        .collect();
                    if !missing.is_empty() {
                        for server in missing {
                            self.actions.push_back(ClientAction::Dial { server });
                        }
                        self.timers
                            .set(ClientTimer::Reconnect, now + RECONNECT_INTERVAL);
                    }
                }
                ClientTimer::Resume(server) => {
                    if let Some(fetch) = self.fetches.get_mut(&server)
                        && matches!(fetch.stage, Stage::Paused)
                    {
                        // The nonce may have expired meanwhile: a fresh challenge.
                        fetch.stage = Stage::Challenging;
                        self.ask(ClientAction::Challenge { server }, server);
                    }
                }
            }
        }
    }

    fn start(&mut self, server: PeerId) {
        if self.fetches.contains_key(&server) || self.fetches.len() >= MAX_SERVERS {
            return;
        }
        self.fetches.insert(
            server,
            Fetch {
                stage: Stage::Challenging,
                nonce: [0; NONCE_LEN],
                taken: 0,
                stalled: 0,
            },
        );
        self.ask(ClientAction::Challenge { server }, server);
    }

    /// Emits a request, or ends the fetch when [`MAX_MAILBOX_REQUESTS`] are in flight.
    fn ask(&mut self, action: ClientAction, server: PeerId) {
        if self.requests >= MAX_MAILBOX_REQUESTS {
            self.end(server);
            return;
        }
        self.requests += 1;
        self.actions.push_back(action);
    }

    fn answered(&mut self) {
        self.requests = self.requests.saturating_sub(1);
    }

    fn stall(&mut self, server: PeerId, now: Instant) {
        let Some(fetch) = self.fetches.get_mut(&server) else {
            return;
        };
        fetch.stalled += 1;
        if fetch.stalled >= MAX_STALLED_PAGES {
            self.end(server);
            return;
        }
        let backoff = FETCH_BACKOFF
            .saturating_mul(1 << (fetch.stalled - 1).min(16))
            .min(MAX_FETCH_BACKOFF);
        fetch.stage = Stage::Paused;
        self.timers.set(ClientTimer::Resume(server), now + backoff);
    }

    fn finish(&mut self, server: PeerId) {
        if let Some(fetch) = self.fetches.remove(&server) {
            self.timers.cancel(ClientTimer::Resume(server));
            self.actions.push_back(ClientAction::Checked {
                server,
                envelopes: fetch.taken,
            });
        }
    }

    fn end(&mut self, server: PeerId) {
        self.fetches.remove(&server);
        self.timers.cancel(ClientTimer::Resume(server));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Harness {
        client: MailboxClient,
        now: Instant,
    }

    impl Harness {
        fn new(servers: &[PeerId]) -> Self {
            let now = Instant::now();
            let mut client = MailboxClient::new(now);
            client.handle_servers(servers.to_vec());
            Self { client, now }
        }

        fn actions(&mut self) -> Vec<ClientAction> {
            std::iter::from_fn(|| self.client.poll_action()).collect()
        }

        fn advance(&mut self, by: Duration) {
            let until = self.now + by;
            while let Some(at) = self.client.poll_timeout() {
                if at > until {
                    break;
                }
                self.now = self.now.max(at);
                self.client.handle_timeout(self.now);
            }
            self.now = until;
        }
    }

    const NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];

    fn page(n: u8) -> Vec<EnvelopeId> {
        vec![EnvelopeId([n; 32])]
    }

    #[test]
    fn a_fetch_is_challenge_pages_and_acks_one_at_a_time() {
        let server = PeerId::random();
        let mut h = Harness::new(&[server]);
        h.client.handle_connected(server);
        assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
        // A second start while one runs does nothing.
        h.client.handle_server_added(server);
        assert!(h.actions().is_empty());
        h.client.handle_nonce(server, NONCE);
        assert_eq!(
            h.actions(),
            vec![ClientAction::Fetch {
                server,
                nonce: NONCE
            }]
        );
        h.client.handle_page_stored(server, page(1), true, h.now);
        // Acknowledged, and no next page before the ack is answered.
        assert_eq!(
            h.actions(),
            vec![ClientAction::Ack {
                server,
                nonce: NONCE,
                ids: page(1)
            }]
        );
        h.client.handle_acked(server, true, h.now);
        assert_eq!(
            h.actions(),
            vec![ClientAction::Fetch {
                server,
                nonce: NONCE
            }]
        );
        h.client.handle_page_stored(server, page(2), false, h.now);
        h.actions();
        h.client.handle_acked(server, true, h.now);
        assert_eq!(
            h.actions(),
            vec![ClientAction::Checked {
                server,
                envelopes: 2
            }]
        );
        assert!(!h.client.is_fetching(&server));
        assert_eq!(h.client.requests(), 0);
    }

    #[test]
    fn the_fetch_loop_cannot_spin_when_acks_fail() {
        let server = PeerId::random();
        let mut h = Harness::new(&[server]);
        h.client.handle_connected(server);
        let mut requests = 0;
        let mut challenges = Vec::new();
        // The server keeps handing out the same page and every ack fails.
        for _ in 0..200 {
            let actions = h.actions();
            if actions.is_empty() {
                if !h.client.is_fetching(&server) {
                    break;
                }
                match h.client.poll_timeout() {
                    Some(at) => h.advance(at.saturating_duration_since(h.now)),
                    None => break,
                }
                continue;
            }
            for action in actions {
                requests += 1;
                match action {
                    ClientAction::Challenge { server } => {
                        challenges.push(h.now);
                        h.client.handle_nonce(server, NONCE);
                    }
                    ClientAction::Fetch { server, .. } => {
                        h.client.handle_page_stored(server, page(1), true, h.now)
                    }
                    ClientAction::Ack { server, .. } => h.client.handle_acked(server, false, h.now),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert!(!h.client.is_fetching(&server), "the fetch gave up");
        assert!(
            requests <= 3 * MAX_STALLED_PAGES as usize,
            "{requests} requests"
        );
        // Each new try comes later than the last: backed off, doubling.
        let gaps: Vec<Duration> = challenges.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps.len(), MAX_STALLED_PAGES as usize - 1);
        assert!(gaps.windows(2).all(|w| w[1] > w[0]), "{gaps:?}");
        assert!(gaps.first().is_some_and(|g| *g >= FETCH_BACKOFF));
        // The next periodic fetch starts afresh.
        h.advance(FETCH_INTERVAL);
        assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
    }

    #[test]
    fn a_page_that_stores_nothing_is_not_asked_for_again_at_once() {
        let server = PeerId::random();
        let mut h = Harness::new(&[server]);
        h.client.handle_connected(server);
        h.actions();
        h.client.handle_nonce(server, NONCE);
        h.actions();
        h.client.handle_page_stored(server, Vec::new(), true, h.now);
        assert!(h.actions().is_empty());
        h.advance(FETCH_BACKOFF - Duration::from_millis(1));
        assert!(h.actions().is_empty());
        h.advance(Duration::from_millis(1));
        assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
    }

    #[test]
    fn a_refused_fetch_ends_the_fetch() {
        let server = PeerId::random();
        let mut h = Harness::new(&[server]);
        h.client.handle_connected(server);
        h.actions();
        h.client.handle_nonce(server, NONCE);
        h.actions();
        h.client.handle_refused(server);
        assert!(!h.client.is_fetching(&server));
        assert!(h.actions().is_empty());
        // A late page for the ended fetch is ignored.
        h.client.handle_page_stored(server, page(1), true, h.now);
        assert!(h.actions().is_empty());
        assert_eq!(h.client.requests(), 0);
    }

    #[test]
    fn a_disconnect_ends_the_fetch() {
        let server = PeerId::random();
        let mut h = Harness::new(&[server]);
        h.client.handle_connected(server);
        h.actions();
        h.client.handle_disconnected(server, h.now);
        assert!(!h.client.is_fetching(&server));
        h.client.handle_nonce(server, NONCE);
        assert!(h.actions().is_empty());
        // Not connected: dialled again every RECONNECT_INTERVAL (and at the periodic fetch), not asked.
        h.advance(RECONNECT_INTERVAL - Duration::from_millis(1));
        assert!(h.actions().is_empty());
        h.advance(Duration::from_millis(1));
        assert_eq!(h.actions(), vec![ClientAction::Dial { server }]);
        h.advance(RECONNECT_INTERVAL);
        assert_eq!(h.actions(), vec![ClientAction::Dial { server }]);
        // Back: fetched from, and no more dials.
        h.client.handle_connected(server);
        assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
        h.advance(RECONNECT_INTERVAL * 2);
        assert!(
            !h.actions()
                .iter()
                .any(|a| matches!(a, ClientAction::Dial { .. }))
        );
    }

    #[test]
    fn a_server_not_reached_at_start_is_dialled_again_soon() {
        let server = PeerId::random();
        let mut h = Harness::new(&[server]);
        h.advance(RECONNECT_INTERVAL);
        assert_eq!(h.actions(), vec![ClientAction::Dial { server }]);
        h.client.handle_connected(server);
        assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
        h.advance(RECONNECT_INTERVAL * 3);
        assert!(h.actions().is_empty(), "connected: no more dials");
    }

    #[test]
    fn requests_in_flight_are_bounded() {
        let servers: Vec<PeerId> = (0..MAX_SERVERS).map(|_| PeerId::random()).collect();
        let mut h = Harness::new(&servers);
        for server in &servers {
            h.client.handle_connected(*server);
        }
        assert!(h.client.requests() <= MAX_MAILBOX_REQUESTS);
        assert_eq!(h.actions().len(), MAX_SERVERS.min(MAX_MAILBOX_REQUESTS));
    }
}
