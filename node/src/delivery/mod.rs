//! Delivery as a state machine without I/O: which outbox entries go to which peer and when, the in-flight
//! window, the queue behind it, retries with backoff, dials, and deposits with mailbox servers when the
//! recipient cannot be reached.
//!
//! Shaped like quinn-proto's `Connection`: facts come in through `handle_*(…, now)`, decisions go out
//! through [`Delivery::poll_action`], and [`Delivery::poll_timeout`] says when to call
//! [`Delivery::handle_timeout`] next. All timers (the outbox tick, each entry's retry, each recipient's
//! mailbox lookup) live in one [`TimerTable`]. It reads no clock and touches no store or socket: the node's
//! event loop (`node/delivery.rs`) feeds it what the swarm and the store say and carries its actions out.

#[cfg(test)]
mod deadline_tests;
mod deposit;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tern_protocol::{IdentityKey, MessageId};

use crate::api::peer_id_of;
use crate::engine::retry_delay_ms;
pub use crate::timer::TimerTable;

/// Envelopes in flight at once: as many as request-response runs streams concurrently.
pub const MAX_IN_FLIGHT: usize = crate::net::behaviour::MAX_CONCURRENT_STREAMS;
/// Entries for connected peers held in memory while every in-flight slot is taken. More wait in the store:
/// the machine reads them as soon as this queue has drained (not only at the outbox tick).
pub const MAX_WAITING: usize = 1024;
/// Entries held in memory between attempts (waiting for a retry, a lookup or a deposit); more are left to
/// the store and come back with the outbox tick when due.
pub const MAX_PARKED: usize = 4096;
/// Outbox entries read from the store per load.
pub const OUTBOX_BATCH: usize = 64;
/// How often the store is asked for due entries it holds that the machine does not.
pub const OUTBOX_TICK: Duration = Duration::from_millis(500);
/// An undelivered envelope is deposited with this many mailbox servers (fewer if fewer are known).
pub const DEPOSIT_COPIES: usize = 2;
/// Recipients whose mailbox servers are remembered.
pub const MAX_LOOKUPS: usize = 1024;
/// A recipient's mailbox servers (found or not) are looked up again after this long.
pub const LOOKUP_RETRY: Duration = Duration::from_secs(300);
/// A lookup that has not finished after this long is taken as finding nothing (the entries waiting for
/// it go on with the shared servers).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a first attempt to an unconnected recipient waits for the dial (and the address record lookup
/// behind it) before the entry goes to the mailboxes: a contact who is online is reached directly, and mail
/// for one who is not is deposited soon after.
pub const DIRECT_DEADLINE: Duration = Duration::from_secs(1);
/// One peer is dialled at most this often.
pub const REDIAL_AFTER: Duration = Duration::from_secs(1);
/// Peers whose last dial is remembered (to space dials) and peers known to be connected.
pub const MAX_PEERS: usize = 4096;
/// A mailbox server that has not answered a deposit after this long is given up on for that deposit: the
/// next configured server is asked instead (its late answer still counts).
pub const DEPOSIT_DEADLINE: Duration = Duration::from_secs(5);
/// A server that missed a [`DEPOSIT_DEADLINE`] is asked after every other server for this long (or until
/// it stores a deposit or connects again).
pub const SLOW_SERVER_PENALTY: Duration = Duration::from_secs(60);
/// While mail waits for a deposit and no mailbox server is connected, the servers are dialled this often.
pub const SERVER_REDIAL: Duration = Duration::from_secs(5);
/// After a mailbox server connects (or stores again after refusing), the outbox is read this many times
/// ([`Action::LoadEarly`], [`OUTBOX_BATCH`] entries each, one per [`OUTBOX_TICK`]) regardless of due
/// times, so mail waiting out its backoff is deposited at once.
pub const MAX_EARLY_LOADS: u32 = 64;

/// An outbox entry as the machine sees it. The entry itself is carried through to the actions untouched.
pub trait Entry: Clone {
    fn id(&self) -> MessageId;
    fn recipient(&self) -> IdentityKey;
    /// Failed attempts so far.
    fn attempts(&self) -> u32;
    /// Counts one more failed attempt (the store counts it when told by
    /// [`Action::RecordFailedAttempt`]).
    fn count_attempt(&mut self);
}

/// An entry handed to the machine.
#[derive(Debug, Clone)]
pub struct Outgoing<E> {
    pub entry: E,
    /// When the envelope expires (the caller converts the envelope's unix expiry).
    pub expires: Instant,
}

/// What the machine wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<E> {
    /// Send the entry's envelope to its connected recipient; answer with [`Delivery::handle_send_answered`]
    /// or [`Delivery::handle_send_failed`].
    Send { peer: PeerId, entry: E },
    /// Dial a contact that has mail waiting.
    DialContact { peer: PeerId },
    /// Dial a mailbox server to deposit with.
    DialServer { peer: PeerId },
    /// Deposit the entry's envelope with a connected server; answer with
    /// [`Delivery::handle_deposit_answered`].
    Deposit { server: PeerId, entry: E },
    /// Find the mailbox servers of a recipient (its card, else the DHT); answer with
    /// [`Delivery::handle_lookup_finished`].
    Lookup { recipient: IdentityKey },
    /// Read the store's due entries ([`OUTBOX_BATCH`]) and hand them to [`Delivery::handle_loaded`].
    LoadDue,
    /// Read the store's first [`OUTBOX_BATCH`] entries in due order, due or not, and hand them to
    /// [`Delivery::handle_loaded`] (a mailbox server came back: what waits for a deposit goes now).
    LoadEarly,
    /// Read the store's entries for this peer and hand them to [`Delivery::handle_loaded_for`].
    LoadFor { peer: PeerId },
    /// The recipient acknowledged the envelope: drop the entry, the message is delivered.
    RecordDelivered { entry: E },
    /// Enough mailbox servers hold the envelope: drop the entry, the message is sent.
    RecordDeposited { entry: E },
    /// An attempt failed: count it in the store and reschedule it there (the entry as it was before).
    RecordFailedAttempt { entry: E },
    /// The envelope expired undelivered: the message failed.
    Expired { entry: E },
}

/// How a recipient answered an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Taken (or already had it): delivered.
    Taken,
    /// Refused: tried again later.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Timer {
    OutboxTick,
    Retry(MessageId),
    Lookup(IdentityKey),
    /// A deposit's [`DEPOSIT_DEADLINE`].
    Deposit(MessageId),
    /// Mail waits for a deposit and no server is connected: dial them ([`SERVER_REDIAL`]).
    RedialServers,
}

#[derive(Debug)]
enum Stage {
    Waiting,
    InFlight,
    Retrying,
    AwaitingLookup,
    Depositing(deposit::Depositing),
}

struct Tracked<E> {
    out: Outgoing<E>,
    peer: PeerId,
    stage: Stage,
}

enum Lookup {
    Pending,
    Found(Vec<PeerId>),
    Missing,
}

enum DepositStart {
    Asked(Stage),
    AwaitingLookup,
    NoServer,
}

/// The delivery state machine.
pub struct Delivery<E> {
    entries: HashMap<MessageId, Tracked<E>>,
    in_flight: usize,
    waiting: VecDeque<MessageId>,
    connected: HashSet<PeerId>,
    /// Servers for recipients whose own are unknown: ours (community nodes), then the LAN's.
    shared_servers: Vec<PeerId>,
    lookups: HashMap<IdentityKey, Lookup>,
    last_dial: HashMap<PeerId, Instant>,
    /// Servers that missed a deposit deadline, until when they are asked last (at most [`MAX_PEERS`]).
    slow: HashMap<PeerId, Instant>,
    /// Servers whose last answer refused a deposit (at most [`MAX_PEERS`]): one that stores again makes
    /// the waiting mail due (its quota was freed).
    refused_by: HashSet<PeerId>,
    /// The window after a server came back ([`MAX_EARLY_LOADS`]).
    early: deposit::EarlyWindow,
    /// An attempt found mailbox servers but none connected: they are dialled every [`SERVER_REDIAL`].
    servers_down: bool,
    /// The store may hold due entries this machine does not: one was left to it while the waiting queue
    /// was full, or a load filled its batch with entries it took. They are read as soon as the waiting
    /// queue drains, not at the next outbox tick (which alone would move [`OUTBOX_BATCH`] per tick).
    catch_up: bool,
    timers: TimerTable<Timer>,
    /// Drained by the actor after every input; each input adds at most a bounded number (it touches at
    /// most [`OUTBOX_BATCH`] or [`MAX_IN_FLIGHT`] entries, a few actions each).
    actions: VecDeque<Action<E>>,
}

impl<E: Entry> Delivery<E> {
    /// A machine whose first outbox tick is due at `now`.
    pub fn new(now: Instant) -> Self {
        let mut timers = TimerTable::default();
        timers.set(Timer::OutboxTick, now);
        Self {
            entries: HashMap::new(),
            in_flight: 0,
            waiting: VecDeque::new(),
            connected: HashSet::new(),
            shared_servers: Vec::new(),
            lookups: HashMap::new(),
            last_dial: HashMap::new(),
            slow: HashMap::new(),
            refused_by: HashSet::new(),
            early: deposit::EarlyWindow::default(),
            servers_down: false,
            catch_up: false,
            timers,
            actions: VecDeque::new(),
        }
    }

    pub fn poll_action(&mut self) -> Option<Action<E>> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// Envelopes awaiting an answer.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Entries waiting for an in-flight slot.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Whether the machine holds this entry (then the store's copy of it is not handed in again).
    pub fn is_tracked(&self, id: &MessageId) -> bool {
        self.entries.contains_key(id)
    }

    /// The mailbox servers used for recipients whose own are unknown. More servers than before make the
    /// store's due entries worth a look now.
    pub fn handle_shared_servers(&mut self, servers: Vec<PeerId>) {
        let grew = servers.iter().any(|s| !self.shared_servers.contains(s));
        self.shared_servers = servers;
        if grew {
            self.actions.push_back(Action::LoadDue);
        }
    }

    /// A user just queued this entry: out at once if its recipient is connected, else the recipient is
    /// dialled and the outbox tick takes it from the store.
    pub fn handle_queued(&mut self, out: Outgoing<E>, now: Instant) {
        let Some(peer) = peer_id_of(&out.entry.recipient()) else {
            return;
        };
        if self.entries.contains_key(&out.entry.id()) {
            return;
        }
        if self.connected.contains(&peer) {
            self.send_or_wait(Tracked::new(out, peer));
        } else {
            self.dial_contact(peer, now);
        }
    }

    /// Due entries read from the store ([`Action::LoadDue`]): those the machine does not hold are tried.
    /// In the window after a server came back ([`Action::LoadEarly`]), entries held between attempts
    /// are tried again at once too, each once per window.
    pub fn handle_loaded(&mut self, entries: Vec<Outgoing<E>>, now: Instant) {
        let full = entries.len() >= OUTBOX_BATCH;
        let mut fresh = 0;
        let mut taken = 0;
        for out in entries {
            let id = out.entry.id();
            if self.finishing(&id) {
                continue;
            }
            if self.early.is_open() {
                if !self.early.first_time(id) {
                    continue;
                }
                fresh += 1;
                if self.entries.contains_key(&id) {
                    self.retry_parked_now(id, now);
                    continue;
                }
            } else if self.entries.contains_key(&id) {
                continue;
            }
            let Some(peer) = peer_id_of(&out.entry.recipient()) else {
                continue;
            };
            taken += 1;
            self.attempt(Tracked::new(out, peer), now);
        }
        // A full batch that brought new entries may have left more behind it (one that brought none
        // would only read the same entries again).
        if full && taken > 0 {
            self.catch_up = true;
        }
        if self.early.is_open() && !full && fresh == 0 {
            self.early.close();
        }
    }

    /// A peer's entries read from the store ([`Action::LoadFor`]), due or not: sent now if it is connected.
    /// An entry held already takes the store's bytes (they change when a message is sealed again for a
    /// contact that lost its state), keeping where it stands.
    pub fn handle_loaded_for(&mut self, peer: PeerId, entries: Vec<Outgoing<E>>) {
        let connected = self.connected.contains(&peer);
        for out in entries {
            let id = out.entry.id();
            if let Some(tracked) = self.entries.get_mut(&id) {
                tracked.out = out;
                if connected {
                    self.send_parked(id);
                }
            } else if connected
                && !self.finishing(&id)
                && peer_id_of(&out.entry.recipient()) == Some(peer)
            {
                self.send_or_wait(Tracked::new(out, peer));
            }
        }
    }

    /// Asks for everything queued for `peer` to be read again from the store and sent now if it is
    /// connected (after a read receipt was queued, say, or messages were sealed again for it).
    pub fn flush_for(&mut self, peer: PeerId) {
        self.actions.push_back(Action::LoadFor { peer });
    }

    /// A peer's first connection opened: what waits for it is due at once.
    /// A mailbox server's connection makes what waits for a deposit due at once ([`Action::LoadEarly`]).
    pub fn handle_connected(&mut self, peer: PeerId) {
        if self.connected.len() >= MAX_PEERS && !self.connected.contains(&peer) {
            // Treated as unreachable: its mail is dialled for or deposited.
            return;
        }
        self.connected.insert(peer);
        self.slow.remove(&peer);
        if self.is_server(&peer) {
            self.servers_down = false;
            self.open_early_window();
        }
        let parked: Vec<MessageId> = self
            .entries
            .iter()
            .filter(|(_, t)| t.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in parked {
            self.send_parked(id);
        }
        self.actions.push_back(Action::LoadFor { peer });
    }

    /// A peer's last connection closed (its requests in flight fail on their own).
    pub fn handle_disconnected(&mut self, peer: PeerId) {
        self.connected.remove(&peer);
    }

    /// The recipient answered an envelope sent by [`Action::Send`].
    pub fn handle_send_answered(&mut self, id: MessageId, answer: Answer, now: Instant) {
        let Some(tracked) = self.take_in_flight(id) else {
            return;
        };
        match answer {
            Answer::Taken => self.actions.push_back(Action::RecordDelivered {
                entry: tracked.out.entry,
            }),
            Answer::Refused => self.fail(tracked, now),
        }
        self.fill_window(now);
    }

    /// An envelope sent by [`Action::Send`] got no answer (timeout, closed connection, unsendable).
    pub fn handle_send_failed(&mut self, id: MessageId, now: Instant) {
        self.handle_send_answered(id, Answer::Refused, now);
    }

    /// A server answered (or failed to answer) a [`Action::Deposit`]. A server that stores again after
    /// refusing makes what waits for a deposit due at once.
    pub fn handle_deposit_answered(
        &mut self,
        server: PeerId,
        id: MessageId,
        stored: bool,
        now: Instant,
    ) {
        self.deposit_answered(server, id, stored, now);
    }

    /// The mailbox servers of `recipient` were found (`Some`, possibly empty) or not (`None`). Entries
    /// waiting for them are tried again.
    pub fn handle_lookup_finished(
        &mut self,
        recipient: IdentityKey,
        servers: Option<Vec<PeerId>>,
        now: Instant,
    ) {
        if !matches!(self.lookups.get(&recipient), Some(Lookup::Pending)) {
            return;
        }
        let lookup = match servers {
            Some(servers) if !servers.is_empty() => Lookup::Found(servers),
            _ => Lookup::Missing,
        };
        self.lookups.insert(recipient, lookup);
        self.timers
            .set(Timer::Lookup(recipient), now + LOOKUP_RETRY);
        let waiting: Vec<MessageId> = self
            .entries
            .iter()
            .filter(|(_, t)| {
                matches!(t.stage, Stage::AwaitingLookup) && t.out.entry.recipient() == recipient
            })
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.timers.cancel(Timer::Retry(id));
            if let Some(tracked) = self.entries.remove(&id) {
                self.attempt(tracked, now);
            }
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.expired(now) {
            match timer {
                Timer::OutboxTick => {
                    self.actions.push_back(if self.early.next_load() {
                        Action::LoadEarly
                    } else {
                        Action::LoadDue
                    });
                    self.timers.set(Timer::OutboxTick, now + OUTBOX_TICK);
                }
                Timer::Retry(id) => {
                    if let Some(tracked) = self.entries.remove(&id) {
                        match tracked.stage {
                            Stage::Retrying => self.attempt(tracked, now),
                            Stage::AwaitingLookup => {
                                self.lookup_timed_out(tracked.out.entry.recipient(), now);
                                self.attempt(tracked, now);
                            }
                            _ => {
                                self.entries.insert(id, tracked);
                            }
                        }
                    }
                }
                Timer::Lookup(recipient) => {
                    // Found or not, asked again next time it is needed.
                    if !matches!(self.lookups.get(&recipient), Some(Lookup::Pending)) {
                        self.lookups.remove(&recipient);
                    }
                }
                Timer::Deposit(id) => self.deposit_deadline(id, now),
                Timer::RedialServers => self.redial_servers(now),
            }
        }
    }

    /// Whether an action that ends this entry is still queued (the store has not been told yet, so a load
    /// may still return it).
    fn finishing(&self, id: &MessageId) -> bool {
        self.actions.iter().any(|action| match action {
            Action::RecordDelivered { entry }
            | Action::RecordDeposited { entry }
            | Action::Expired { entry } => entry.id() == *id,
            _ => false,
        })
    }

    /// A lookup still pending after [`LOOKUP_TIMEOUT`] counts as finding nothing.
    fn lookup_timed_out(&mut self, recipient: IdentityKey, now: Instant) {
        if matches!(self.lookups.get(&recipient), Some(Lookup::Pending)) {
            self.lookups.insert(recipient, Lookup::Missing);
            self.timers
                .set(Timer::Lookup(recipient), now + LOOKUP_RETRY);
        }
    }

    /// One try of an entry the machine holds nowhere else.
    fn attempt(&mut self, mut tracked: Tracked<E>, now: Instant) {
        if now >= tracked.out.expires {
            self.timers.cancel(Timer::Retry(tracked.out.entry.id()));
            self.actions.push_back(Action::Expired {
                entry: tracked.out.entry,
            });
            return;
        }
        let peer = tracked.peer;
        if self.connected.contains(&peer) {
            self.send_or_wait(tracked);
            return;
        }
        self.dial_contact(peer, now);
        if tracked.out.entry.attempts() > 0 {
            match self.start_deposit(&tracked, now) {
                DepositStart::Asked(stage) => {
                    let id = tracked.out.entry.id();
                    tracked.stage = stage;
                    if self.park(tracked) {
                        self.timers.set(Timer::Deposit(id), now + DEPOSIT_DEADLINE);
                    }
                    return;
                }
                DepositStart::AwaitingLookup => {
                    let id = tracked.out.entry.id();
                    tracked.stage = Stage::AwaitingLookup;
                    if self.park(tracked) {
                        self.timers.set(Timer::Retry(id), now + LOOKUP_TIMEOUT);
                    }
                    return;
                }
                DepositStart::NoServer => {}
            }
        }
        self.fail(tracked, now);
    }

    /// Counts a failed attempt and schedules the next after the backoff (or gives up once expired).
    fn fail(&mut self, mut tracked: Tracked<E>, now: Instant) {
        let id = tracked.out.entry.id();
        if now >= tracked.out.expires {
            self.timers.cancel(Timer::Retry(id));
            self.actions.push_back(Action::Expired {
                entry: tracked.out.entry,
            });
            return;
        }
        self.actions.push_back(Action::RecordFailedAttempt {
            entry: tracked.out.entry.clone(),
        });
        let first_miss =
            tracked.out.entry.attempts() == 0 && !self.connected.contains(&tracked.peer);
        tracked.out.entry.count_attempt();
        let delay = if first_miss {
            DIRECT_DEADLINE
        } else {
            Duration::from_millis(retry_delay_ms(tracked.out.entry.attempts()))
        };
        tracked.stage = Stage::Retrying;
        if self.park(tracked) {
            self.timers.set(Timer::Retry(id), now + delay);
        }
    }

    /// Holds an entry between attempts, if there is room; returns whether it is held.
    fn park(&mut self, tracked: Tracked<E>) -> bool {
        let parked = self
            .entries
            .len()
            .saturating_sub(self.in_flight + self.waiting.len());
        if parked >= MAX_PARKED {
            // The store keeps it; the outbox tick brings it back when due.
            return false;
        }
        self.entries.insert(tracked.out.entry.id(), tracked);
        true
    }

    /// Sends a held entry now if it is between attempts and its peer is connected.
    fn send_parked(&mut self, id: MessageId) {
        let Some(tracked) = self.entries.remove(&id) else {
            return;
        };
        if matches!(tracked.stage, Stage::Retrying | Stage::AwaitingLookup)
            && self.connected.contains(&tracked.peer)
        {
            self.timers.cancel(Timer::Retry(id));
            self.send_or_wait(tracked);
        } else {
            self.entries.insert(id, tracked);
        }
    }

    fn send_or_wait(&mut self, mut tracked: Tracked<E>) {
        let id = tracked.out.entry.id();
        if self.in_flight < MAX_IN_FLIGHT {
            self.actions.push_back(Action::Send {
                peer: tracked.peer,
                entry: tracked.out.entry.clone(),
            });
            tracked.stage = Stage::InFlight;
            self.in_flight += 1;
            self.entries.insert(id, tracked);
        } else if self.waiting.len() < MAX_WAITING {
            tracked.stage = Stage::Waiting;
            self.waiting.push_back(id);
            self.entries.insert(id, tracked);
        } else {
            // The store keeps it; it is read again once the waiting queue drains.
            self.catch_up = true;
        }
    }

    fn take_in_flight(&mut self, id: MessageId) -> Option<Tracked<E>> {
        let tracked = self.entries.remove(&id)?;
        if matches!(tracked.stage, Stage::InFlight) {
            self.in_flight = self.in_flight.saturating_sub(1);
            Some(tracked)
        } else {
            self.entries.insert(id, tracked);
            None
        }
    }

    /// A slot freed up: the next waiting entries go out (or, if their peer left, are tried otherwise). Once
    /// none wait, what the store holds beyond them is read ([`Self::catch_up`]).
    fn fill_window(&mut self, now: Instant) {
        while self.in_flight < MAX_IN_FLIGHT {
            let Some(id) = self.waiting.pop_front() else {
                if std::mem::take(&mut self.catch_up) {
                    self.actions.push_back(Action::LoadDue);
                }
                return;
            };
            if let Some(tracked) = self.entries.remove(&id) {
                self.attempt(tracked, now);
            }
        }
    }

    fn dial_contact(&mut self, peer: PeerId, now: Instant) {
        if self.may_dial(peer, now) {
            self.actions.push_back(Action::DialContact { peer });
        }
    }

    fn may_dial(&mut self, peer: PeerId, now: Instant) -> bool {
        if self
            .last_dial
            .get(&peer)
            .is_some_and(|at| now.saturating_duration_since(*at) < REDIAL_AFTER)
        {
            return false;
        }
        if self.last_dial.len() >= MAX_PEERS {
            self.last_dial
                .retain(|_, at| now.saturating_duration_since(*at) < REDIAL_AFTER);
            if self.last_dial.len() >= MAX_PEERS {
                return true;
            }
        }
        self.last_dial.insert(peer, now);
        true
    }
}

impl<E> Tracked<E> {
    fn new(out: Outgoing<E>, peer: PeerId) -> Self {
        Self {
            out,
            peer,
            stage: Stage::Waiting,
        }
    }
}
