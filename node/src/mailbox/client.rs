//! The mailbox client as a state machine without I/O: when to fetch this profile's mail from which server,
//! and the fetch itself (challenge, signed pages, acknowledgement of what was stored), one fetch per
//! server at a time. Like `crate::delivery`: `handle_*(…, now)` in, [`MailboxClient::poll_action`] out,
//! [`MailboxClient::poll_timeout`] for the one [`TimerTable`]. The node's event loop
//! (`node/mailbox_client.rs`) signs, sends, stores and reports back.
//!
//! A fetch pages with [`ClientAction::FetchPage`]: one round trip per page, the next page asked for from the
//! cursor the last one gave, and the envelopes stored so far acknowledged on that same request, in batches
//! (when another page would not fit in [`ACK_BATCH`], and when the server has nothing more), so the server deletes
//! them with one durable commit per batch instead of one per page. An envelope is acknowledged only after it
//! is stored; one stored and not yet acknowledged when a fetch ends is fetched again next time and dropped
//! as a duplicate by the store. A server that refuses a paged fetch as unreadable (one from before it) is
//! fetched from with [`ClientAction::Fetch`] and [`ClientAction::Ack`] from then on: a page, then its
//! acknowledgement, and the next page only after that acknowledgement was answered.
//!
//! A server that hands out the same page again because nothing of it could be stored (or because
//! acknowledgements fail) is backed off ([`FETCH_BACKOFF`], doubling), not asked again at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tern_protocol::EnvelopeId;

use crate::mailbox::Refusal;
use crate::mailbox::wire::{MAX_FETCH_ENVELOPES, MAX_PAGE_ACK_IDS, NONCE_LEN};
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
/// A paged fetch acknowledges stored envelopes in batches of at most this many (the wire's bound).
pub const ACK_BATCH: usize = MAX_PAGE_ACK_IDS;

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
    /// Acknowledge `ack` and ask for the page from cursor `from` on, signed over `nonce`; answer with
    /// [`MailboxClient::handle_cursor_page_stored`] once the page is stored, or
    /// [`MailboxClient::handle_page_refused`].
    FetchPage {
        server: PeerId,
        nonce: [u8; NONCE_LEN],
        from: u64,
        ack: Vec<EnvelopeId>,
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
    /// Paged ([`ClientAction::FetchPage`]), or page-then-acknowledge with a server from before it.
    paged: bool,
    /// Where the next page starts (paged).
    cursor: u64,
    /// Stored envelopes not acknowledged yet (paged; at most [`ACK_BATCH`]).
    pending: Vec<EnvelopeId>,
}

/// The mailbox client state machine.
#[derive(Debug)]
pub struct MailboxClient {
    servers: Vec<PeerId>,
    connected: HashSet<PeerId>,
    fetches: HashMap<PeerId, Fetch>,
    /// Servers that refused a paged fetch as unreadable: fetched from page-then-acknowledge (at most
    /// [`MAX_SERVERS`]; kept for the life of the client).
    unpaged: HashSet<PeerId>,
    /// Servers that answered a paged fetch: a failure is not taken for a server from before it.
    paging: HashSet<PeerId>,
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
            unpaged: HashSet::new(),
            paging: HashSet::new(),
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
        let action = if fetch.paged {
            ClientAction::FetchPage {
                server,
                nonce,
                from: fetch.cursor,
                ack: std::mem::take(&mut fetch.pending),
            }
        } else {
            ClientAction::Fetch { server, nonce }
        };
        self.ask(action, server);
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
        if fetch.paged || !matches!(fetch.stage, Stage::Fetching) {
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

    /// A page of a paged fetch was stored; `done` are the envelopes safe to acknowledge (stored, or never
    /// readable); `next` is the cursor the server gave for the page after it.
    pub fn handle_cursor_page_stored(
        &mut self,
        server: PeerId,
        done: Vec<EnvelopeId>,
        next: u64,
        more: bool,
        now: Instant,
    ) {
        self.answered();
        if self.paging.len() < MAX_SERVERS {
            self.paging.insert(server);
        }
        let Some(fetch) = self.fetches.get_mut(&server) else {
            return;
        };
        if !fetch.paged || !matches!(fetch.stage, Stage::Fetching) {
            return;
        }
        fetch.taken += done.len();
        let progress = !done.is_empty() && next > fetch.cursor;
        // At most ACK_BATCH wait: one beyond it (never with a conforming server) is fetched again later.
        let room = ACK_BATCH.saturating_sub(fetch.pending.len());
        fetch.pending.extend(done.into_iter().take(room));
        if more && !progress {
            // Nothing could be stored from a page that says there is more (or the cursor did not move):
            // not again at once, and then from the start, so that what was skipped comes again.
            fetch.cursor = 0;
            self.stall(server, now);
            return;
        }
        fetch.cursor = next;
        if progress {
            fetch.stalled = 0;
        }
        let ack = if !more || fetch.pending.len() + MAX_FETCH_ENVELOPES > ACK_BATCH {
            std::mem::take(&mut fetch.pending)
        } else {
            Vec::new()
        };
        if !more && ack.is_empty() {
            self.finish(server);
            return;
        }
        // The last page's acknowledgement asks for the page after it too: mail that came meanwhile.
        let nonce = fetch.nonce;
        let from = fetch.cursor;
        self.ask(
            ClientAction::FetchPage {
                server,
                nonce,
                from,
                ack,
            },
            server,
        );
    }

    /// A paged fetch was refused (`Some`) or failed (`None`). A server that refuses it as unreadable, or
    /// fails the first one it was sent, is taken for one from before paged fetches: the fetch starts again
    /// page-then-acknowledge, and stays so for that server. Anything else ends the fetch.
    pub fn handle_page_refused(&mut self, server: PeerId, refusal: Option<Refusal>) {
        self.answered();
        let old_server = match refusal {
            Some(refusal) => refusal == Refusal::Malformed,
            None => !self.paging.contains(&server),
        };
        if !old_server || self.unpaged.len() >= MAX_SERVERS {
            self.end(server);
            return;
        }
        self.unpaged.insert(server);
        // A server from before paged fetches closes the connection after an unreadable request: the
        // fetch starts again when it is back (or now, if it kept it).
        self.end(server);
        if self.connected.contains(&server) {
            self.start(server);
        }
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
                paged: !self.unpaged.contains(&server),
                cursor: 0,
                pending: Vec::new(),
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
mod tests;
