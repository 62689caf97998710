//! The delivery machine driven step by step with a fake clock and a fake outbox, without a swarm.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tern_protocol::Identity;

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct TestEntry {
    id: MessageId,
    to: IdentityKey,
    attempts: u32,
}

impl Entry for TestEntry {
    fn id(&self) -> MessageId {
        self.id
    }
    fn recipient(&self) -> IdentityKey {
        self.to
    }
    fn attempts(&self) -> u32 {
        self.attempts
    }
    fn count_attempt(&mut self) {
        self.attempts += 1;
    }
}

fn person(seed: u64) -> (IdentityKey, PeerId) {
    let key = Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key();
    let peer = peer_id_of(&key).unwrap();
    (key, peer)
}

/// The outbox as the store keeps it: entry, when due, when it expires.
#[derive(Default)]
struct FakeOutbox {
    rows: BTreeMap<MessageId, (TestEntry, Instant, Instant)>,
}

/// The machine, a fake clock and a fake outbox. Loads are answered from the outbox and failed attempts
/// rescheduled there, as the actor does with the store; every other action is logged for the test.
struct Harness {
    machine: Delivery<TestEntry>,
    outbox: FakeOutbox,
    now: Instant,
    log: Vec<Action<TestEntry>>,
    /// Every outbox load, `true` for an early one.
    loads: Vec<bool>,
    next_id: u32,
}

impl Harness {
    fn new() -> Self {
        let now = Instant::now();
        let mut harness = Self {
            machine: Delivery::new(now),
            outbox: FakeOutbox::default(),
            now,
            log: Vec::new(),
            loads: Vec::new(),
            next_id: 0,
        };
        harness.advance(Duration::ZERO);
        harness.log.clear();
        harness
    }

    /// A message id above every one handed out before (ids order as they were made).
    fn new_id(&mut self) -> MessageId {
        self.next_id += 1;
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&self.next_id.to_be_bytes());
        MessageId(id)
    }

    /// A new outbox entry for `to`, expiring after `ttl`, stored and handed to the machine as just queued.
    fn queue(&mut self, to: IdentityKey, ttl: Duration) -> TestEntry {
        let entry = TestEntry {
            id: self.new_id(),
            to,
            attempts: 0,
        };
        let expires = self.now + ttl;
        self.outbox
            .rows
            .insert(entry.id, (entry.clone(), self.now, expires));
        let out = Outgoing {
            entry: entry.clone(),
            expires,
        };
        self.machine.handle_queued(out, self.now);
        self.run();
        entry
    }

    /// Moves the clock on, firing every timer due on the way (in order).
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.machine.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.machine.handle_timeout(self.now);
            self.run();
        }
        self.now = until;
    }

    fn run(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::LoadDue | Action::LoadEarly => {
                    let now = match action {
                        Action::LoadEarly => self.now + DAY * 365,
                        _ => self.now,
                    };
                    self.loads.push(matches!(action, Action::LoadEarly));
                    let due = self
                        .outbox
                        .rows
                        .values()
                        .filter(|(_, due, _)| *due <= now)
                        .take(OUTBOX_BATCH)
                        .map(|(entry, _, expires)| Outgoing {
                            entry: entry.clone(),
                            expires: *expires,
                        })
                        .collect();
                    self.machine.handle_loaded(due, self.now);
                }
                Action::LoadFor { peer } => {
                    let all = self
                        .outbox
                        .rows
                        .values()
                        .filter(|(entry, _, _)| peer_id_of(&entry.to) == Some(peer))
                        .map(|(entry, _, expires)| Outgoing {
                            entry: entry.clone(),
                            expires: *expires,
                        })
                        .collect();
                    self.machine.handle_loaded_for(peer, all);
                }
                Action::RecordFailedAttempt { entry } => {
                    let attempts = entry.attempts + 1;
                    if let Some(row) = self.outbox.rows.get_mut(&entry.id) {
                        row.0.attempts = attempts;
                        row.1 = self.now + Duration::from_millis(retry_delay_ms(attempts));
                    }
                    self.log.push(Action::RecordFailedAttempt { entry });
                }
                Action::RecordDelivered { ref entry }
                | Action::RecordDeposited { ref entry }
                | Action::Expired { ref entry } => {
                    self.outbox.rows.remove(&entry.id);
                    self.log.push(action);
                }
                other => self.log.push(other),
            }
        }
    }

    fn take_log(&mut self) -> Vec<Action<TestEntry>> {
        std::mem::take(&mut self.log)
    }

    /// The recipient took `id`: how many deliveries that recorded, and what went out next.
    fn ack(&mut self, id: MessageId) -> (usize, Vec<MessageId>) {
        self.machine
            .handle_send_answered(id, Answer::Taken, self.now);
        self.run();
        let log = self.take_log();
        let recorded = log
            .iter()
            .filter(|a| matches!(a, Action::RecordDelivered { .. }))
            .count();
        (
            recorded,
            sends(&log).into_iter().map(|(_, id)| id).collect(),
        )
    }

    fn connect(&mut self, peer: PeerId) {
        self.machine.handle_connected(peer);
        self.run();
    }
}

fn sends(log: &[Action<TestEntry>]) -> Vec<(PeerId, MessageId)> {
    log.iter()
        .filter_map(|a| match a {
            Action::Send { peer, entry } => Some((*peer, entry.id)),
            _ => None,
        })
        .collect()
}

fn deposits(log: &[Action<TestEntry>]) -> Vec<(PeerId, MessageId)> {
    log.iter()
        .filter_map(|a| match a {
            Action::Deposit { server, entry } => Some((*server, entry.id)),
            _ => None,
        })
        .collect()
}

const DAY: Duration = Duration::from_secs(24 * 3600);

#[test]
fn an_entry_to_a_connected_peer_goes_out_at_once() {
    let mut h = Harness::new();
    let (bob, bob_peer) = person(1);
    h.connect(bob_peer);
    h.take_log();
    let entry = h.queue(bob, DAY);
    let log = h.take_log();
    assert_eq!(sends(&log), vec![(bob_peer, entry.id)]);
    assert!(!log.iter().any(|a| matches!(a, Action::DialContact { .. })));
    h.machine
        .handle_send_answered(entry.id, Answer::Taken, h.now);
    h.run();
    assert_eq!(h.take_log(), vec![Action::RecordDelivered { entry }]);
    assert_eq!(h.machine.in_flight(), 0);
}

#[test]
fn the_in_flight_window_is_never_exceeded_and_frees_on_ack() {
    let mut h = Harness::new();
    let (bob, bob_peer) = person(1);
    h.connect(bob_peer);
    let extra = 5;
    for _ in 0..MAX_IN_FLIGHT + extra {
        h.queue(bob, DAY);
    }
    let mut outstanding: Vec<MessageId> =
        sends(&h.take_log()).into_iter().map(|(_, id)| id).collect();
    assert_eq!(outstanding.len(), MAX_IN_FLIGHT);
    assert_eq!(h.machine.in_flight(), MAX_IN_FLIGHT);
    assert_eq!(h.machine.waiting(), extra);
    // The outbox tick does not push past the window either.
    h.advance(OUTBOX_TICK * 3);
    assert!(sends(&h.take_log()).is_empty());
    let mut delivered = 0;
    while let Some(id) = outstanding.pop() {
        let (recorded, next) = h.ack(id);
        delivered += recorded;
        assert!(next.len() <= 1, "one ack frees one slot");
        outstanding.extend(next);
        assert!(h.machine.in_flight() <= MAX_IN_FLIGHT);
        assert_eq!(h.machine.in_flight(), outstanding.len());
    }
    assert_eq!(delivered, MAX_IN_FLIGHT + extra);
    assert_eq!(h.machine.waiting(), 0);
    assert!(h.outbox.rows.is_empty());
}

/// More entries than the window and the waiting queue hold: those left to the store go out as the queue
/// drains, with no outbox tick (the clock never moves here), each once.
#[test]
fn entries_past_the_waiting_queue_are_read_as_soon_as_it_drains() {
    let mut h = Harness::new();
    let (bob, bob_peer) = person(1);
    h.connect(bob_peer);
    let total = MAX_IN_FLIGHT + MAX_WAITING + 3 * OUTBOX_BATCH + 5;
    for _ in 0..total {
        h.queue(bob, DAY);
    }
    let mut outstanding: Vec<MessageId> =
        sends(&h.take_log()).into_iter().map(|(_, id)| id).collect();
    assert_eq!(outstanding.len(), MAX_IN_FLIGHT);
    assert_eq!(h.machine.waiting(), MAX_WAITING, "the rest is the store's");
    let mut sent = HashSet::new();
    sent.extend(outstanding.iter().copied());
    let mut delivered = 0;
    while let Some(id) = outstanding.pop() {
        let (recorded, next) = h.ack(id);
        delivered += recorded;
        for next in next {
            assert!(sent.insert(next), "an entry was sent twice");
            outstanding.push(next);
        }
        assert!(h.machine.in_flight() <= MAX_IN_FLIGHT);
    }
    assert_eq!(delivered, total);
    assert!(h.outbox.rows.is_empty());
}

#[test]
fn a_failed_send_is_retried_after_the_backoff_and_not_before() {
    let mut h = Harness::new();
    let (bob, bob_peer) = person(1);
    h.connect(bob_peer);
    let entry = h.queue(bob, DAY);
    h.take_log();
    h.machine.handle_send_failed(entry.id, h.now);
    h.run();
    assert_eq!(
        h.take_log(),
        vec![Action::RecordFailedAttempt {
            entry: entry.clone()
        }]
    );
    let backoff = Duration::from_millis(retry_delay_ms(1));
    h.advance(backoff - Duration::from_millis(1));
    assert!(
        sends(&h.take_log()).is_empty(),
        "retried before the backoff"
    );
    h.advance(Duration::from_millis(1));
    assert_eq!(sends(&h.take_log()), vec![(bob_peer, entry.id)]);
    // A refusal backs off longer the second time.
    h.machine
        .handle_send_answered(entry.id, Answer::Refused, h.now);
    h.run();
    h.take_log();
    let second = Duration::from_millis(retry_delay_ms(2));
    assert!(second > backoff);
    h.advance(second - Duration::from_millis(1));
    assert!(sends(&h.take_log()).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(sends(&h.take_log()).len(), 1);
}

#[test]
fn an_unreachable_recipient_is_dialled_then_deposited() {
    let mut h = Harness::new();
    let (bob, bob_peer) = person(1);
    let servers: Vec<PeerId> = (10..13).map(|s| person(s).1).collect();
    for server in &servers {
        h.connect(*server);
    }
    h.machine.handle_shared_servers(servers.clone());
    h.run();
    h.take_log();
    let entry = h.queue(bob, DAY);
    assert_eq!(h.take_log(), vec![Action::DialContact { peer: bob_peer }]);
    // The outbox tick tries it: still unreachable, counted as a failed attempt.
    h.advance(OUTBOX_TICK);
    let log = h.take_log();
    assert!(log.contains(&Action::RecordFailedAttempt {
        entry: entry.clone()
    }));
    assert!(deposits(&log).is_empty(), "deposited before one direct try");
    // After the backoff: dialled again, and (no servers of its own) the lookup first.
    h.advance(Duration::from_millis(retry_delay_ms(1)));
    let log = h.take_log();
    assert!(log.contains(&Action::DialContact { peer: bob_peer }));
    assert!(log.contains(&Action::Lookup { recipient: bob }));
    assert!(deposits(&log).is_empty());
    h.machine.handle_lookup_finished(bob, None, h.now);
    h.run();
    let asked = deposits(&h.take_log());
    assert_eq!(asked.len(), DEPOSIT_COPIES);
    assert!(
        asked
            .iter()
            .all(|(s, id)| servers.contains(s) && *id == entry.id)
    );
    // One server refuses: not enough yet. Nothing recorded until both answered.
    h.machine
        .handle_deposit_answered(asked[0].0, entry.id, true, h.now);
    h.run();
    assert!(h.take_log().is_empty());
    h.machine
        .handle_deposit_answered(asked[1].0, entry.id, true, h.now);
    h.run();
    let log = h.take_log();
    assert!(matches!(log.as_slice(), [Action::RecordDeposited { entry: e }] if e.id == entry.id));
    assert!(h.outbox.rows.is_empty());
}

#[test]
fn too_few_copies_stored_is_a_failed_attempt_and_asked_again() {
    let mut h = Harness::new();
    let (bob, _) = person(1);
    let servers: Vec<PeerId> = (10..12).map(|s| person(s).1).collect();
    for server in &servers {
        h.connect(*server);
    }
    h.machine.handle_shared_servers(servers.clone());
    let mut entry = h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    h.machine.handle_lookup_finished(bob, None, h.now);
    h.run();
    let asked = deposits(&h.take_log());
    assert_eq!(asked.len(), 2);
    h.machine
        .handle_deposit_answered(asked[0].0, entry.id, true, h.now);
    h.machine
        .handle_deposit_answered(asked[1].0, entry.id, false, h.now);
    h.run();
    entry.attempts = 1;
    assert_eq!(h.take_log(), vec![Action::RecordFailedAttempt { entry }]);
    h.advance(Duration::from_millis(retry_delay_ms(2)));
    assert_eq!(deposits(&h.take_log()).len(), 2, "both asked again");
}

#[test]
fn a_lookup_is_awaited_before_the_shared_servers_are_used() {
    let mut h = Harness::new();
    let (bob, _) = person(1);
    let shared = person(10).1;
    let own = person(11).1;
    h.connect(shared);
    h.connect(own);
    h.machine.handle_shared_servers(vec![shared]);
    let entry = h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    let log = h.take_log();
    assert!(log.contains(&Action::Lookup { recipient: bob }));
    assert!(
        deposits(&log).is_empty(),
        "shared servers used before the lookup ended"
    );
    // More outbox ticks while the lookup runs: still nothing deposited, no second lookup.
    h.advance(OUTBOX_TICK * 4);
    let log = h.take_log();
    assert!(deposits(&log).is_empty());
    assert!(!log.iter().any(|a| matches!(a, Action::Lookup { .. })));
    // Found: its own server (one, so one copy), not the shared one.
    h.machine
        .handle_lookup_finished(bob, Some(vec![own]), h.now);
    h.run();
    assert_eq!(deposits(&h.take_log()), vec![(own, entry.id)]);
}

#[test]
fn an_unconnected_server_is_dialled_and_the_deposit_retried() {
    let mut h = Harness::new();
    let (bob, _) = person(1);
    let server = person(10).1;
    h.machine.handle_shared_servers(vec![server]);
    let entry = h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    h.machine.handle_lookup_finished(bob, None, h.now);
    h.run();
    let log = h.take_log();
    assert!(log.contains(&Action::DialServer { peer: server }));
    assert!(deposits(&log).is_empty());
    h.connect(server);
    h.advance(Duration::from_millis(retry_delay_ms(2)));
    assert_eq!(deposits(&h.take_log()), vec![(server, entry.id)]);
}

#[test]
fn an_expired_entry_fails() {
    let mut h = Harness::new();
    let (bob, bob_peer) = person(1);
    let ttl = Duration::from_secs(10);
    let entry = h.queue(bob, ttl);
    h.advance(ttl + Duration::from_secs(60));
    let log = h.take_log();
    let expired: Vec<_> = log
        .iter()
        .filter(|a| matches!(a, Action::Expired { entry: e } if e.id == entry.id))
        .collect();
    assert_eq!(expired.len(), 1, "{log:?}");
    assert!(h.outbox.rows.is_empty());
    assert!(!h.machine.is_tracked(&entry.id));
    // Nothing more happens for it, even when the peer shows up.
    h.connect(bob_peer);
    h.advance(Duration::from_secs(600));
    assert!(sends(&h.take_log()).is_empty());
    // An entry to a connected peer that expired is not sent either.
    let late = h.queue(bob, Duration::ZERO);
    h.machine.handle_send_failed(late.id, h.now);
    h.run();
    h.take_log();
    h.advance(OUTBOX_TICK);
    assert!(!h.machine.is_tracked(&late.id));
}

#[test]
fn a_peer_that_connects_makes_its_waiting_entries_due_at_once() {
    let mut h = Harness::new();
    let (bob, bob_peer) = person(1);
    let (carol, _) = person(2);
    let first = h.queue(bob, DAY);
    let other = h.queue(carol, DAY);
    // Several failed attempts: the next retry is far away.
    h.advance(Duration::from_secs(60));
    h.take_log();
    let attempts = h.outbox.rows[&first.id].0.attempts;
    assert!(attempts >= 2);
    // One more entry the machine never held: only the store has it (not due yet).
    let stored_only = TestEntry {
        id: h.new_id(),
        to: bob,
        attempts: 3,
    };
    h.outbox.rows.insert(
        stored_only.id,
        (stored_only.clone(), h.now + DAY, h.now + DAY),
    );
    h.connect(bob_peer);
    let mut sent: Vec<MessageId> = sends(&h.take_log()).into_iter().map(|(_, id)| id).collect();
    sent.sort();
    let mut expected = vec![first.id, stored_only.id];
    expected.sort();
    assert_eq!(sent, expected);
    assert!(
        h.machine.is_tracked(&other.id),
        "carol's entry stays parked"
    );
}

#[test]
fn entries_held_between_attempts_are_bounded_and_the_rest_stay_in_the_store() {
    let mut h = Harness::new();
    let (bob, _) = person(1);
    let total = MAX_PARKED + 10;
    let entries: Vec<Outgoing<TestEntry>> = (0..total)
        .map(|n| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(n as u64).to_be_bytes());
            Outgoing {
                entry: TestEntry {
                    id: MessageId(id),
                    to: bob,
                    attempts: 0,
                },
                expires: h.now + DAY,
            }
        })
        .collect();
    let ids: Vec<MessageId> = entries.iter().map(|o| o.entry.id).collect();
    // As if the store handed them all in: none reachable, each one's attempt fails.
    h.machine.handle_loaded(entries, h.now);
    h.run();
    let failed = h
        .take_log()
        .iter()
        .filter(|a| matches!(a, Action::RecordFailedAttempt { .. }))
        .count();
    assert_eq!(failed, total, "every attempt is recorded in the store");
    let held = ids.iter().filter(|id| h.machine.is_tracked(id)).count();
    assert_eq!(held, MAX_PARKED);
}

/// A harness with `n` shared mailbox servers, all connected, and one entry for an unreachable Bob that
/// has reached its first deposit (the lookup found nothing of Bob's own). Returns the servers, the entry
/// and the servers asked.
fn depositing(n: u64) -> (Harness, Vec<PeerId>, TestEntry, Vec<PeerId>) {
    let mut h = Harness::new();
    let (bob, _) = person(1);
    let servers: Vec<PeerId> = (10..10 + n).map(|s| person(s).1).collect();
    for server in &servers {
        h.connect(*server);
    }
    h.machine.handle_shared_servers(servers.clone());
    let entry = h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    h.machine.handle_lookup_finished(bob, None, h.now);
    h.run();
    let asked = deposits(&h.take_log())
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    (h, servers, entry, asked)
}

#[test]
fn a_hung_server_is_given_up_at_the_deadline_and_the_next_one_asked() {
    let (mut h, servers, entry, asked) = depositing(3);
    assert_eq!(asked, servers[..2].to_vec(), "the configured order");
    // The second stores it; the first never answers.
    h.machine
        .handle_deposit_answered(servers[1], entry.id, true, h.now);
    h.run();
    assert!(h.take_log().is_empty());
    h.advance(DEPOSIT_DEADLINE - Duration::from_millis(1));
    assert!(
        deposits(&h.take_log()).is_empty(),
        "gave up before the deadline"
    );
    h.advance(Duration::from_millis(1));
    assert_eq!(deposits(&h.take_log()), vec![(servers[2], entry.id)]);
    h.machine
        .handle_deposit_answered(servers[2], entry.id, true, h.now);
    h.run();
    let log = h.take_log();
    assert!(matches!(log.as_slice(), [Action::RecordDeposited { entry: e }] if e.id == entry.id));
    // The hung server answers at last: nothing more happens.
    h.machine
        .handle_deposit_answered(servers[0], entry.id, true, h.now);
    h.run();
    assert!(h.take_log().is_empty());
}

#[test]
fn with_two_servers_hung_the_third_takes_the_mail_and_is_asked_first_next_time() {
    let (mut h, servers, entry, _) = depositing(3);
    h.advance(DEPOSIT_DEADLINE);
    assert_eq!(deposits(&h.take_log()), vec![(servers[2], entry.id)]);
    h.machine
        .handle_deposit_answered(servers[2], entry.id, true, h.now);
    h.run();
    // One copy, the others hung: deposited rather than held as `sending`.
    let log = h.take_log();
    assert!(matches!(log.as_slice(), [Action::RecordDeposited { entry: e }] if e.id == entry.id));
    // The next message asks the healthy server first, then one hung one (two copies wanted).
    let (bob, _) = person(1);
    let next = h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    let asked = deposits(&h.take_log());
    assert_eq!(asked.first(), Some(&(servers[2], next.id)), "{asked:?}");
    // Both answer this time (the slow one stored it: no longer slow); once the other's penalty is over,
    // the configured order is back.
    for (server, id) in asked {
        h.machine.handle_deposit_answered(server, id, true, h.now);
    }
    h.run();
    h.advance(SLOW_SERVER_PENALTY);
    h.take_log();
    let third = h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    let asked = deposits(&h.take_log());
    assert_eq!(
        asked,
        vec![(servers[0], third.id), (servers[1], third.id)],
        "{asked:?}"
    );
}

#[test]
fn a_deposit_that_only_refusals_answer_is_a_failed_attempt_even_after_the_deadline() {
    let (mut h, servers, mut entry, _) = depositing(2);
    h.machine
        .handle_deposit_answered(servers[0], entry.id, false, h.now);
    h.advance(DEPOSIT_DEADLINE);
    entry.attempts = 1;
    // The second hung, the first refused: no copy anywhere, tried again after the backoff.
    assert_eq!(h.take_log(), vec![Action::RecordFailedAttempt { entry }]);
}

#[test]
fn a_server_coming_back_makes_waiting_mail_due_at_once() {
    let mut h = Harness::new();
    let (bob, _) = person(1);
    let server = person(10).1;
    h.machine.handle_shared_servers(vec![server]);
    let entry = h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    h.machine.handle_lookup_finished(bob, None, h.now);
    h.run();
    // The server is down for a long while: the entry backs off far.
    h.advance(Duration::from_secs(130));
    h.take_log();
    let attempts = h.outbox.rows[&entry.id].0.attempts;
    assert!(retry_delay_ms(attempts) >= 60_000, "{attempts} attempts");
    // One more entry only the store holds, not due for a day.
    let stored_only = TestEntry {
        id: h.new_id(),
        to: bob,
        attempts: 9,
    };
    h.outbox.rows.insert(
        stored_only.id,
        (stored_only.clone(), h.now + DAY, h.now + DAY),
    );
    h.connect(server);
    let mut asked: Vec<MessageId> = deposits(&h.take_log())
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    asked.sort();
    let mut expected = vec![entry.id, stored_only.id];
    expected.sort();
    assert_eq!(asked, expected, "deposited the moment the server connected");
    // Each is tried once per window, not again on every tick.
    h.advance(OUTBOX_TICK * 4);
    assert!(deposits(&h.take_log()).is_empty());
    assert!(
        !h.machine.early.is_open(),
        "the window closed once nothing new came"
    );
}

#[test]
fn a_server_that_stores_again_after_refusing_makes_the_refused_mail_due() {
    let (mut h, servers, entry, _) = depositing(1);
    // Quota full: refused, several times over.
    h.machine
        .handle_deposit_answered(servers[0], entry.id, false, h.now);
    h.run();
    for _ in 0..4 {
        let due = h.outbox.rows[&entry.id].1;
        h.advance(due.saturating_duration_since(h.now));
        if let Some((_, id)) = deposits(&h.take_log()).first().copied() {
            h.machine
                .handle_deposit_answered(servers[0], id, false, h.now);
            h.run();
        }
    }
    h.take_log();
    let due = h.outbox.rows[&entry.id].1;
    assert!(due.saturating_duration_since(h.now) >= Duration::from_secs(30));
    // The owner fetched: a new message is stored, and the refused one goes at once.
    let (bob, _) = person(1);
    let fresh = h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    let asked = deposits(&h.take_log());
    assert_eq!(asked, vec![(servers[0], fresh.id)]);
    h.machine
        .handle_deposit_answered(servers[0], fresh.id, true, h.now);
    h.run();
    assert_eq!(deposits(&h.take_log()), vec![(servers[0], entry.id)]);
}

#[test]
fn servers_are_redialled_while_mail_waits_for_them() {
    let mut h = Harness::new();
    let (bob, _) = person(1);
    let server = person(10).1;
    h.machine.handle_shared_servers(vec![server]);
    h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    h.machine.handle_lookup_finished(bob, None, h.now);
    h.run();
    h.take_log();
    // Between attempts (which back off to minutes) the server is dialled every SERVER_REDIAL.
    h.advance(Duration::from_secs(60));
    let dials = h
        .take_log()
        .iter()
        .filter(|a| matches!(a, Action::DialServer { peer } if *peer == server))
        .count();
    let most = (60 / SERVER_REDIAL.as_secs()) as usize + 3;
    assert!((most - 4..=most).contains(&dials), "{dials} dials in 60 s");
    // Connected: no more dials.
    h.connect(server);
    h.take_log();
    h.advance(Duration::from_secs(30));
    assert!(
        !h.take_log()
            .iter()
            .any(|a| matches!(a, Action::DialServer { .. }))
    );
}

#[test]
fn servers_connecting_together_try_each_waiting_entry_once() {
    let mut h = Harness::new();
    let (bob, _) = person(1);
    let servers: Vec<PeerId> = (10..12).map(|s| person(s).1).collect();
    h.machine.handle_shared_servers(servers.clone());
    let entry = h.queue(bob, DAY);
    h.advance(OUTBOX_TICK + Duration::from_millis(retry_delay_ms(1)));
    h.machine.handle_lookup_finished(bob, None, h.now);
    h.run();
    h.advance(Duration::from_secs(60));
    h.take_log();
    h.connect(servers[0]);
    h.connect(servers[1]);
    h.advance(OUTBOX_TICK * 4);
    // One attempt, made when the first connected; the second server's connection does not repeat it.
    assert_eq!(deposits(&h.take_log()), vec![(servers[0], entry.id)]);
    // The first stores it: the second copy goes to the server that connected since.
    h.machine
        .handle_deposit_answered(servers[0], entry.id, true, h.now);
    h.run();
    assert_eq!(deposits(&h.take_log()), vec![(servers[1], entry.id)]);
}
