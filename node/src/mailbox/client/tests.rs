//! The mailbox client state machine, driven step by step.

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

    /// The fetch from `server` ended, having checked `envelopes`, with no request left open.
    fn finished(&mut self, server: PeerId, envelopes: usize) {
        assert_eq!(
            self.actions(),
            vec![ClientAction::Checked { server, envelopes }]
        );
        assert!(!self.client.is_fetching(&server));
        assert_eq!(self.client.requests(), 0);
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

/// `n` envelope ids, distinct from those of other pages.
fn full_page(first: usize, n: usize) -> Vec<EnvelopeId> {
    (first..first + n)
        .map(|i| {
            let mut id = [0; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            EnvelopeId(id)
        })
        .collect()
}

/// Connects `server` and answers its challenge: its first page is asked for.
fn fetching(h: &mut Harness, server: PeerId) {
    h.client.handle_connected(server);
    h.actions();
    h.client.handle_nonce(server, NONCE);
    h.actions();
}

/// Connects `server`, which refuses the paged fetch as a server from before it would; leaves the fresh
/// challenge of the fetch that starts again in the action queue.
fn connect_old_server(h: &mut Harness, server: PeerId) {
    h.client.handle_connected(server);
    assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
    h.client.handle_nonce(server, NONCE);
    assert!(matches!(
        h.actions()[..],
        [ClientAction::FetchPage { from: 0, .. }]
    ));
    h.client
        .handle_page_refused(server, Some(Refusal::Malformed));
}

#[test]
fn a_paged_fetch_acknowledges_in_batches_on_the_next_request() {
    let server = PeerId::random();
    let mut h = Harness::new(&[server]);
    h.client.handle_connected(server);
    assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
    h.client.handle_nonce(server, NONCE);
    assert_eq!(
        h.actions(),
        vec![ClientAction::FetchPage {
            server,
            nonce: NONCE,
            from: 0,
            ack: Vec::new()
        }]
    );
    let pages = ACK_BATCH / MAX_FETCH_ENVELOPES;
    let mut cursor = 0;
    for p in 0..pages {
        let ids = full_page(p * MAX_FETCH_ENVELOPES, MAX_FETCH_ENVELOPES);
        cursor += 100;
        h.client
            .handle_cursor_page_stored(server, ids, cursor, true, h.now);
        let actions = h.actions();
        let [ClientAction::FetchPage { from, ack, .. }] = &actions[..] else {
            panic!("one paged fetch after each page: {actions:?}");
        };
        // One round trip per page, from the cursor the server gave.
        assert_eq!(*from, cursor);
        if p + 1 < pages {
            assert!(ack.is_empty(), "page {p}: acknowledged in a batch later");
        } else {
            // A whole batch, every stored envelope once, in one request (one commit there).
            assert_eq!(*ack, full_page(0, ACK_BATCH));
        }
        assert_eq!(h.client.requests(), 1);
    }
    // The last page: its acknowledgement goes at once, asking for what came meanwhile.
    h.client
        .handle_cursor_page_stored(server, page(1), cursor + 1, false, h.now);
    assert_eq!(
        h.actions(),
        vec![ClientAction::FetchPage {
            server,
            nonce: NONCE,
            from: cursor + 1,
            ack: page(1)
        }]
    );
    h.client
        .handle_cursor_page_stored(server, Vec::new(), cursor + 1, false, h.now);
    h.finished(server, ACK_BATCH + 1);
}

#[test]
fn a_paged_page_that_stores_nothing_is_asked_for_again_later_from_the_start() {
    let server = PeerId::random();
    let mut h = Harness::new(&[server]);
    fetching(&mut h, server);
    h.client
        .handle_cursor_page_stored(server, page(1), 10, true, h.now);
    h.actions();
    // Nothing of this page could be stored (or the server did not move the cursor): backed off.
    h.client
        .handle_cursor_page_stored(server, Vec::new(), 20, true, h.now);
    assert!(h.actions().is_empty());
    h.advance(FETCH_BACKOFF);
    assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
    h.client.handle_nonce(server, NONCE);
    // From the start, and what was stored before is acknowledged on the way.
    assert_eq!(
        h.actions(),
        vec![ClientAction::FetchPage {
            server,
            nonce: NONCE,
            from: 0,
            ack: page(1)
        }]
    );
    // A server that hands out pages without moving its cursor is backed off too.
    h.client
        .handle_cursor_page_stored(server, page(2), 0, true, h.now);
    assert!(h.actions().is_empty());
}

#[test]
fn a_server_that_refuses_paged_fetches_is_fetched_from_page_then_ack_from_then_on() {
    let server = PeerId::random();
    let mut h = Harness::new(&[server]);
    connect_old_server(&mut h, server);
    assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
    h.client.handle_nonce(server, NONCE);
    assert_eq!(
        h.actions(),
        vec![ClientAction::Fetch {
            server,
            nonce: NONCE
        }]
    );
    // It closed the connection after the unreadable request (so this fetch fails); back, it is still
    // asked page-then-ack.
    h.client.handle_refused(server);
    h.client.handle_disconnected(server, h.now);
    h.client.handle_connected(server);
    h.actions();
    h.client.handle_nonce(server, NONCE);
    assert_eq!(
        h.actions(),
        vec![ClientAction::Fetch {
            server,
            nonce: NONCE
        }]
    );
    assert_eq!(h.client.requests(), 1);

    // The connection lost before the first paged fetch was answered: taken for an old server too.
    let other = PeerId::random();
    let mut h = Harness::new(&[other]);
    h.client.handle_connected(other);
    h.actions();
    h.client.handle_nonce(other, NONCE);
    h.actions();
    h.client.handle_disconnected(other, h.now);
    h.client.handle_page_refused(other, None);
    h.client.handle_connected(other);
    h.actions();
    h.client.handle_nonce(other, NONCE);
    assert!(matches!(h.actions()[..], [ClientAction::Fetch { .. }]));
}

#[test]
fn a_server_that_answered_a_paged_fetch_is_not_taken_for_an_old_one() {
    let server = PeerId::random();
    let mut h = Harness::new(&[server]);
    fetching(&mut h, server);
    h.client
        .handle_cursor_page_stored(server, page(1), 5, true, h.now);
    h.actions();
    // A failed request, then a refusal of another kind: each ends the fetch, nothing more.
    h.client.handle_page_refused(server, None);
    assert!(!h.client.is_fetching(&server));
    assert!(h.actions().is_empty());
    h.advance(FETCH_INTERVAL);
    assert_eq!(h.actions(), vec![ClientAction::Challenge { server }]);
    h.client.handle_nonce(server, NONCE);
    assert!(matches!(h.actions()[..], [ClientAction::FetchPage { .. }]));
    h.client
        .handle_page_refused(server, Some(Refusal::BadChallenge));
    assert!(!h.client.is_fetching(&server));
    assert!(h.actions().is_empty());
    assert_eq!(h.client.requests(), 0);
}

#[test]
fn a_fetch_from_an_old_server_is_challenge_pages_and_acks_one_at_a_time() {
    let server = PeerId::random();
    let mut h = Harness::new(&[server]);
    connect_old_server(&mut h, server);
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
    h.finished(server, 2);
}

#[test]
fn the_fetch_loop_cannot_spin_when_acks_fail() {
    let server = PeerId::random();
    let mut h = Harness::new(&[server]);
    connect_old_server(&mut h, server);
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
    connect_old_server(&mut h, server);
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
    fetching(&mut h, server);
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
