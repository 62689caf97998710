//! Deposits with mailbox servers, the delivery machine's part for recipients it cannot reach: which
//! servers to ask (slow ones last), the [`DEPOSIT_DEADLINE`] after which the next server is asked, what
//! counts as deposited, and the window after a server comes back in which waiting mail goes at once
//! ([`MAX_EARLY_LOADS`]).

use std::collections::HashSet;
use std::time::Instant;

use libp2p::PeerId;
use tern_protocol::MessageId;

use super::{
    Action, DEPOSIT_COPIES, DEPOSIT_DEADLINE, Delivery, DepositStart, Entry, Lookup,
    MAX_EARLY_LOADS, MAX_LOOKUPS, MAX_PEERS, OUTBOX_BATCH, SERVER_REDIAL, SLOW_SERVER_PENALTY,
    Stage, Timer, Tracked,
};

/// Entries tried once in one early window: every entry [`MAX_EARLY_LOADS`] loads can hand in.
const MAX_EARLY_ENTRIES: usize = MAX_EARLY_LOADS as usize * OUTBOX_BATCH;

/// One deposit of one entry, in progress.
#[derive(Debug)]
pub(super) struct Depositing {
    /// Servers asked whose answer is awaited, within the deadline.
    asked: HashSet<PeerId>,
    /// Servers asked that missed the deadline; their answer still counts if it comes.
    late: HashSet<PeerId>,
    /// Servers that hold the envelope.
    stored: HashSet<PeerId>,
    /// Servers not asked yet, in the order to ask them.
    rest: Vec<PeerId>,
    /// Copies wanted.
    needed: usize,
}

/// The window after a mailbox server came back: loads that ignore due times, each entry tried once.
#[derive(Debug, Default)]
pub(super) struct EarlyWindow {
    loads_left: u32,
    tried: HashSet<MessageId>,
}

impl EarlyWindow {
    pub(super) fn is_open(&self) -> bool {
        self.loads_left > 0
    }

    /// Whether the next outbox tick reads early (and counts the load).
    pub(super) fn next_load(&mut self) -> bool {
        if self.loads_left == 0 {
            return false;
        }
        self.loads_left -= 1;
        if self.loads_left == 0 {
            self.tried.clear();
        }
        true
    }

    /// Whether `id` has not been tried in this window yet (and marks it tried).
    pub(super) fn first_time(&mut self, id: MessageId) -> bool {
        if self.tried.len() >= MAX_EARLY_ENTRIES {
            return false;
        }
        self.tried.insert(id)
    }

    pub(super) fn close(&mut self) {
        self.loads_left = 0;
        self.tried.clear();
    }

    /// Opens the window, or lengthens one already open (whose entries are not tried again: several
    /// servers connecting at once make one window, not one each).
    fn open(&mut self) {
        if self.loads_left == 0 {
            self.tried.clear();
        }
        self.loads_left = MAX_EARLY_LOADS;
    }
}

impl<E: Entry> Delivery<E> {
    /// Whether `peer` is a mailbox server the machine deposits with.
    pub(super) fn is_server(&self, peer: &PeerId) -> bool {
        self.shared_servers.contains(peer)
            || self
                .lookups
                .values()
                .any(|l| matches!(l, Lookup::Found(servers) if servers.contains(peer)))
    }

    /// A server came back: the next outbox loads ignore due times (and one starts now).
    pub(super) fn open_early_window(&mut self) {
        self.early.open();
        if self.early.next_load() {
            self.actions.push_back(Action::LoadEarly);
        }
    }

    /// An entry held between attempts is tried now (early window).
    pub(super) fn retry_parked_now(&mut self, id: MessageId, now: Instant) {
        let Some(tracked) = self.entries.remove(&id) else {
            return;
        };
        if matches!(tracked.stage, Stage::Retrying) {
            self.timers.cancel(Timer::Retry(id));
            self.attempt(tracked, now);
        } else {
            self.entries.insert(id, tracked);
        }
    }

    /// Asks up to [`DEPOSIT_COPIES`] connected servers to hold the entry (dialling the others; slow
    /// servers last); first waits for the recipient's own servers to be looked up.
    pub(super) fn start_deposit(&mut self, tracked: &Tracked<E>, now: Instant) -> DepositStart {
        let recipient = tracked.out.entry.recipient();
        let mut targets = match self.lookups.get(&recipient) {
            Some(Lookup::Pending) => return DepositStart::AwaitingLookup,
            Some(Lookup::Found(servers)) => servers.clone(),
            Some(Lookup::Missing) => self.shared_servers.clone(),
            None => {
                if self.lookups.len() >= MAX_LOOKUPS {
                    let before: Vec<_> = self.lookups.keys().copied().collect();
                    self.lookups.retain(|_, l| matches!(l, Lookup::Pending));
                    for key in before {
                        if !self.lookups.contains_key(&key) {
                            self.timers.cancel(Timer::Lookup(key));
                        }
                    }
                }
                if self.lookups.len() < MAX_LOOKUPS {
                    self.lookups.insert(recipient, Lookup::Pending);
                    self.actions.push_back(Action::Lookup { recipient });
                    return DepositStart::AwaitingLookup;
                }
                self.shared_servers.clone()
            }
        };
        let mut seen = HashSet::new();
        targets.retain(|p| seen.insert(*p));
        self.slow.retain(|_, until| *until > now);
        // Stable: the configured order, slow servers after all others.
        targets.sort_by_key(|p| self.slow.contains_key(p));
        let needed = DEPOSIT_COPIES.min(targets.len());
        let mut deposit = Depositing {
            asked: HashSet::new(),
            late: HashSet::new(),
            stored: HashSet::new(),
            rest: targets,
            needed,
        };
        for server in deposit.rest.clone() {
            if !self.connected.contains(&server) && self.may_dial(server, now) {
                self.actions.push_back(Action::DialServer { peer: server });
            }
        }
        self.ask_more(&mut deposit, tracked);
        if deposit.asked.is_empty() {
            if needed > 0 {
                self.servers_are_down(now);
            }
            return DepositStart::NoServer;
        }
        DepositStart::Asked(Stage::Depositing(deposit))
    }

    /// Asks connected servers not asked yet until enough are asked or hold it; whether any was asked.
    fn ask_more(&mut self, deposit: &mut Depositing, tracked: &Tracked<E>) -> bool {
        let mut any = false;
        let mut i = 0;
        while i < deposit.rest.len() && deposit.asked.len() + deposit.stored.len() < deposit.needed
        {
            let server = deposit.rest[i];
            if self.connected.contains(&server) {
                deposit.rest.remove(i);
                deposit.asked.insert(server);
                any = true;
                self.actions.push_back(Action::Deposit {
                    server,
                    entry: tracked.out.entry.clone(),
                });
            } else {
                i += 1;
            }
        }
        any
    }

    pub(super) fn deposit_answered(
        &mut self,
        server: PeerId,
        id: MessageId,
        stored: bool,
        now: Instant,
    ) {
        if stored {
            self.slow.remove(&server);
            if self.refused_by.remove(&server) {
                // It stores again (its quota was freed, its disk has room): what waits goes now.
                self.open_early_window();
            }
        } else if self.refused_by.len() < MAX_PEERS {
            self.refused_by.insert(server);
        }
        let Some(mut tracked) = self.entries.remove(&id) else {
            return;
        };
        let Stage::Depositing(deposit) = &mut tracked.stage else {
            self.entries.insert(id, tracked);
            return;
        };
        if !deposit.asked.remove(&server) && !deposit.late.remove(&server) {
            self.entries.insert(id, tracked);
            return;
        }
        if stored {
            deposit.stored.insert(server);
        }
        self.settle(tracked, now);
    }

    /// The deadline of a deposit passed: the servers that did not answer are slow; the next are asked.
    pub(super) fn deposit_deadline(&mut self, id: MessageId, now: Instant) {
        let Some(mut tracked) = self.entries.remove(&id) else {
            return;
        };
        let Stage::Depositing(deposit) = &mut tracked.stage else {
            self.entries.insert(id, tracked);
            return;
        };
        for server in std::mem::take(&mut deposit.asked) {
            if self.slow.len() < MAX_PEERS || self.slow.contains_key(&server) {
                self.slow.insert(server, now + SLOW_SERVER_PENALTY);
            }
            deposit.late.insert(server);
        }
        self.settle(tracked, now);
    }

    /// After an answer or a deadline: deposited, still waiting, the next servers asked, or failed.
    fn settle(&mut self, mut tracked: Tracked<E>, now: Instant) {
        let id = tracked.out.entry.id();
        let Stage::Depositing(mut deposit) = std::mem::replace(&mut tracked.stage, Stage::Waiting)
        else {
            return;
        };
        if deposit.stored.len() >= deposit.needed {
            self.timers.cancel(Timer::Deposit(id));
            self.actions.push_back(Action::RecordDeposited {
                entry: tracked.out.entry,
            });
            return;
        }
        if deposit.asked.is_empty() && self.ask_more(&mut deposit, &tracked) {
            self.timers.set(Timer::Deposit(id), now + DEPOSIT_DEADLINE);
        }
        if !deposit.asked.is_empty() {
            tracked.stage = Stage::Depositing(deposit);
            self.entries.insert(id, tracked);
            return;
        }
        self.timers.cancel(Timer::Deposit(id));
        if !deposit.stored.is_empty() && !deposit.late.is_empty() {
            // Some server holds it and every other is hung or gone: a copy on a hung server is not
            // worth holding the message as `sending` for.
            self.actions.push_back(Action::RecordDeposited {
                entry: tracked.out.entry,
            });
            return;
        }
        // Too few took it: a later attempt asks again (those that hold it answer `Duplicate`).
        self.fail(tracked, now);
    }

    /// Mail waits for a deposit and no server is connected: dial them every [`SERVER_REDIAL`].
    fn servers_are_down(&mut self, now: Instant) {
        self.servers_down = true;
        if self.timers.get(Timer::RedialServers).is_none() {
            self.timers.set(Timer::RedialServers, now + SERVER_REDIAL);
        }
    }

    pub(super) fn redial_servers(&mut self, now: Instant) {
        // Only while some entry held here still waits for its recipient or a server.
        let waiting = self
            .entries
            .values()
            .any(|t| !self.connected.contains(&t.peer));
        if !self.servers_down || !waiting {
            self.servers_down = false;
            return;
        }
        let mut servers: Vec<PeerId> = self.shared_servers.clone();
        for lookup in self.lookups.values() {
            if let Lookup::Found(found) = lookup {
                servers.extend(found.iter().copied());
            }
        }
        let mut seen = HashSet::new();
        servers.retain(|p| seen.insert(*p) && !self.connected.contains(p));
        if servers.is_empty() {
            self.servers_down = false;
            return;
        }
        for server in servers.into_iter().take(MAX_LOOKUPS) {
            if self.may_dial(server, now) {
                self.actions.push_back(Action::DialServer { peer: server });
            }
        }
        self.timers.set(Timer::RedialServers, now + SERVER_REDIAL);
    }
}
