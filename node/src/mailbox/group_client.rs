//! Group mail, the member's side (docs/protocol.md §18.6), as a state machine without I/O: which group
//! queues live on which servers, the opens and deposits waiting for a server's answer (retried, one at a
//! time per server and in order, so a commit's key rotation reaches a server after the one before it), and
//! the fetches (challenge, signed page, cursor) of every group's queue from every one of its servers.
//! `handle_*(…, now)` in, [`GroupMail::poll_action`] out, [`GroupMail::poll_timeout`] for the next
//! deadline. The node's event loop (`node/group_mail.rs`) signs, sends, hands fetched messages to the
//! group inbound path and persists what [`GroupMail::encode`] gives.
//!
//! Nothing is lost: a deposit is kept until every server of its group stored it, refused it for good or
//! was tried [`MAX_DEPOSIT_TRIES`] times; a message no server stored is handed back as [`GroupMailAction::Fallback`]
//! (the node sends it over 1:1 sessions, as groups without a queue do). The deposits waiting and the
//! cursors are persisted (sealed) by the node after every change; a deposit too large for that row
//! ([`MAX_PERSISTED_BYTES`]) is also handed back as a fallback at once, so a crash cannot lose it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tern_protocol::DecodeError;
use tern_protocol::card::MAX_MAILBOXES;
use tern_protocol::codec::{Reader, Writer};
use tern_protocol::group_queue::{EpochPublicKey, QUEUE_ID_LEN, QueueId};
use tern_protocol::group_wire::MAX_GROUP_MESSAGE_LEN;

use crate::mailbox::group_wire::{GroupRequest, SignedRotation};
use crate::mailbox::wire::NONCE_LEN;

/// The sealed setting holding [`GroupMail::encode`]: cursors and the deposits waiting.
pub const GROUP_MAIL_SETTING: &str = "group-mail";

/// A group as the node names it (its conversation key).
pub type GroupKey = [u8; 32];

/// Groups whose queues are fetched (a profile has at most `MAX_GROUPS` = 256 groups).
pub const MAX_MAIL_GROUPS: usize = 256;
/// Opens and deposits waiting for their servers' answers.
pub const MAX_PENDING_DEPOSITS: usize = 256;
/// Their total size in bytes.
pub const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;
/// The persisted row of waiting deposits holds at most this many bytes of messages (a sealed setting is
/// at most 64 KiB); a deposit that does not fit also goes over 1:1 at once.
pub const MAX_PERSISTED_BYTES: usize = 48 * 1024;
/// Tries per server of one open or deposit before that server is given up for it.
pub const MAX_DEPOSIT_TRIES: u32 = 6;
/// The pause after a failed try; it doubles per try up to [`MAX_DEPOSIT_BACKOFF`].
pub const DEPOSIT_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause between two tries.
pub const MAX_DEPOSIT_BACKOFF: Duration = Duration::from_secs(60);
/// How often every group queue is fetched from every server (each is also fetched when it connects).
pub const GROUP_FETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Pages taken in one fetch of one queue from one server before it waits for the next round.
pub const MAX_FETCH_PAGES: u32 = 64;
/// Messages asked for per page (the server's own bound).
pub const FETCH_PAGE: u16 = 64;
/// Version byte of [`GroupMail::encode`].
const STATE_VERSION: u8 = 1;

fn invalid(field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::Invalid { field, reason }
}

/// What the machine wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupMailAction {
    /// Send this open or deposit; answer with [`GroupMail::handle_stored`], [`GroupMail::handle_refused`]
    /// or [`GroupMail::handle_failed`].
    Send {
        server: PeerId,
        id: u64,
        request: GroupRequest,
    },
    /// No server stored this group message: send it over 1:1 sessions instead.
    Fallback { group: GroupKey, message: Arc<[u8]> },
    /// Ask `server` for a challenge for a fetch of `group`'s queue; answer with [`GroupMail::handle_nonce`]
    /// or [`GroupMail::handle_fetch_failed`].
    Challenge { server: PeerId, group: GroupKey },
    /// Fetch `group`'s queue from `cursor`, signed over `nonce` with an epoch key the member holds; hand
    /// the messages to the group, then answer with [`GroupMail::handle_page`].
    Fetch {
        server: PeerId,
        group: GroupKey,
        queue: QueueId,
        nonce: [u8; NONCE_LEN],
        cursor: u64,
        max: u16,
    },
    /// The deposits waiting or the cursors changed: persist [`GroupMail::encode`].
    Persist,
}

/// What waits to be stored on a group's servers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Open {
        epoch: u64,
        key: EpochPublicKey,
        signature: [u8; 64],
    },
    Deposit {
        message: Arc<[u8]>,
        rotation: Option<SignedRotation>,
    },
}

impl Item {
    fn len(&self) -> usize {
        match self {
            Self::Open { .. } => 0,
            Self::Deposit { message, .. } => message.len(),
        }
    }
}

/// One server's side of a pending item.
#[derive(Debug, Clone)]
struct Try {
    server: PeerId,
    tries: u32,
    due: Instant,
    busy: bool,
}

#[derive(Debug, Clone)]
struct Pending {
    id: u64,
    group: GroupKey,
    queue: QueueId,
    item: Item,
    /// Servers that have not stored it yet.
    left: Vec<Try>,
    /// Servers that stored it.
    stored: usize,
    /// In the persisted row (else in memory only, and already sent over 1:1).
    persisted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Challenging,
    Fetching,
}

#[derive(Debug)]
struct Fetch {
    stage: Stage,
    pages: u32,
}

/// A group whose queue is fetched.
#[derive(Debug, Clone)]
struct Queue {
    id: QueueId,
    servers: Vec<PeerId>,
}

/// The group mail state machine.
#[derive(Debug)]
pub struct GroupMail {
    queues: HashMap<GroupKey, Queue>,
    /// The next sequence number to fetch, per group and server (by the server's place in the group's list).
    cursors: HashMap<(GroupKey, u8), u64>,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    next_id: u64,
    fetches: HashMap<(GroupKey, PeerId), Fetch>,
    next_fetch_all: Instant,
    actions: VecDeque<GroupMailAction>,
    /// Deposits (and opens) servers stored since start, one per server.
    pub stored: u64,
    /// Pages fetched since start.
    pub pages: u64,
    /// Messages fetched since start.
    pub fetched: u64,
}

impl GroupMail {
    pub fn new(now: Instant) -> Self {
        Self {
            queues: HashMap::new(),
            cursors: HashMap::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            next_id: 1,
            fetches: HashMap::new(),
            next_fetch_all: now + GROUP_FETCH_INTERVAL,
            actions: VecDeque::new(),
            stored: 0,
            pages: 0,
            fetched: 0,
        }
    }

    /// A group's queue (`None`: it has none, or this profile is no longer a member): fetched from then on,
    /// or no longer. A group seen for the first time is fetched at once.
    pub fn handle_group(&mut self, group: GroupKey, queue: Option<(QueueId, Vec<PeerId>)>) {
        match queue {
            Some((id, servers)) => {
                let servers: Vec<PeerId> = servers.into_iter().take(MAX_MAILBOXES).collect();
                if !self.queues.contains_key(&group) && self.queues.len() >= MAX_MAIL_GROUPS {
                    return;
                }
                let new = self
                    .queues
                    .insert(
                        group,
                        Queue {
                            id,
                            servers: servers.clone(),
                        },
                    )
                    .is_none();
                if new {
                    for server in servers {
                        self.start_fetch(group, server);
                    }
                }
            }
            None => {
                if self.queues.remove(&group).is_some() {
                    self.cursors.retain(|(g, _), _| *g != group);
                    self.fetches.retain(|(g, _), _| *g != group);
                    self.actions.push_back(GroupMailAction::Persist);
                }
            }
        }
    }

    /// Whether `group` has a queue this machine knows.
    pub fn has_queue(&self, group: &GroupKey) -> bool {
        self.queues.contains_key(group)
    }

    /// Opens `group`'s queue on its servers with the creation epoch's key (its creator, at creation).
    pub fn open(
        &mut self,
        group: GroupKey,
        epoch: u64,
        key: EpochPublicKey,
        signature: [u8; 64],
        now: Instant,
    ) {
        let item = Item::Open {
            epoch,
            key,
            signature,
        };
        self.push(group, item, now);
    }

    /// Deposits a group message (with a commit's rotation) once on every server of its group. `false` if
    /// the group has no queue or no room is left: the caller sends it over 1:1 sessions instead.
    pub fn deposit(
        &mut self,
        group: GroupKey,
        message: &[u8],
        rotation: Option<SignedRotation>,
        now: Instant,
    ) -> bool {
        if message.len() > MAX_GROUP_MESSAGE_LEN {
            return false;
        }
        let item = Item::Deposit {
            message: Arc::from(message),
            rotation,
        };
        self.push(group, item, now)
    }

    fn push(&mut self, group: GroupKey, item: Item, now: Instant) -> bool {
        let Some(queue) = self.queues.get(&group) else {
            return false;
        };
        if self.pending.len() >= MAX_PENDING_DEPOSITS
            || self.pending_bytes + item.len() > MAX_PENDING_BYTES
        {
            return false;
        }
        let persisted = self.persisted_bytes() + item.len() <= MAX_PERSISTED_BYTES;
        if !persisted && let Item::Deposit { message, .. } = &item {
            self.actions.push_back(GroupMailAction::Fallback {
                group,
                message: message.clone(),
            });
        }
        let left = queue
            .servers
            .iter()
            .map(|server| Try {
                server: *server,
                tries: 0,
                due: now,
                busy: false,
            })
            .collect();
        self.pending_bytes += item.len();
        self.pending.push_back(Pending {
            id: self.next_id,
            group,
            queue: queue.id,
            item,
            left,
            stored: 0,
            persisted,
        });
        self.next_id += 1;
        if persisted {
            self.actions.push_back(GroupMailAction::Persist);
        }
        self.run_sends(now);
        true
    }

    fn persisted_bytes(&self) -> usize {
        self.pending
            .iter()
            .filter(|p| p.persisted)
            .map(|p| p.item.len())
            .sum()
    }

    /// Sends, per server, the first item waiting for it, if due and nothing is in flight to it.
    fn run_sends(&mut self, now: Instant) {
        let mut blocked: HashSet<PeerId> = HashSet::new();
        for pending in &mut self.pending {
            for t in &mut pending.left {
                if !blocked.insert(t.server) || t.busy || t.due > now {
                    continue;
                }
                t.busy = true;
                let request = match &pending.item {
                    Item::Open {
                        epoch,
                        key,
                        signature,
                    } => GroupRequest::Open {
                        queue: pending.queue,
                        epoch: *epoch,
                        key: *key,
                        signature: *signature,
                    },
                    Item::Deposit { message, rotation } => GroupRequest::Deposit {
                        queue: pending.queue,
                        message: message.to_vec(),
                        rotation: *rotation,
                    },
                };
                self.actions.push_back(GroupMailAction::Send {
                    server: t.server,
                    id: pending.id,
                    request,
                });
            }
        }
    }

    /// `server` stored item `id` (Deposited, Duplicate or QueueOpened).
    pub fn handle_stored(&mut self, server: PeerId, id: u64, now: Instant) {
        if let Some(pending) = self.pending.iter_mut().find(|p| p.id == id) {
            let before = pending.left.len();
            pending.left.retain(|t| t.server != server);
            pending.stored += before - pending.left.len();
            self.stored += (before - pending.left.len()) as u64;
        }
        self.settle(now);
    }

    /// `server` refused item `id` for good (a refusal other than a rate limit: the queue is unknown or
    /// full, the rotation's signer unknown, the message too large): given up for that server at once.
    pub fn handle_refused(&mut self, server: PeerId, id: u64, now: Instant) {
        if let Some(pending) = self.pending.iter_mut().find(|p| p.id == id) {
            pending.left.retain(|t| t.server != server);
        }
        self.settle(now);
    }

    /// `server` could not be reached or asked to wait (rate limit): tried again later, and given up for it
    /// after [`MAX_DEPOSIT_TRIES`].
    pub fn handle_failed(&mut self, server: PeerId, id: u64, now: Instant) {
        if let Some(pending) = self.pending.iter_mut().find(|p| p.id == id) {
            for t in pending.left.iter_mut().filter(|t| t.server == server) {
                t.busy = false;
                t.tries += 1;
                let backoff = DEPOSIT_BACKOFF
                    .saturating_mul(1 << t.tries.saturating_sub(1).min(16))
                    .min(MAX_DEPOSIT_BACKOFF);
                t.due = now + backoff;
            }
            pending.left.retain(|t| t.tries < MAX_DEPOSIT_TRIES);
        }
        self.settle(now);
    }

    /// Drops the items every server answered; a deposit no server stored goes over 1:1.
    fn settle(&mut self, now: Instant) {
        let mut changed = false;
        let mut i = 0;
        while i < self.pending.len() {
            if !self.pending[i].left.is_empty() {
                i += 1;
                continue;
            }
            let Some(done) = self.pending.remove(i) else {
                break;
            };
            self.pending_bytes -= done.item.len();
            changed |= done.persisted;
            if done.stored == 0
                && done.persisted
                && let Item::Deposit { message, .. } = done.item
            {
                self.actions.push_back(GroupMailAction::Fallback {
                    group: done.group,
                    message,
                });
            }
        }
        if changed {
            self.actions.push_back(GroupMailAction::Persist);
        }
        self.run_sends(now);
    }

    /// A peer connected: if it holds queues of ours, fetch them now.
    pub fn handle_connected(&mut self, peer: PeerId) {
        let groups: Vec<GroupKey> = self
            .queues
            .iter()
            .filter(|(_, q)| q.servers.contains(&peer))
            .map(|(g, _)| *g)
            .collect();
        for group in groups {
            self.start_fetch(group, peer);
        }
    }

    fn start_fetch(&mut self, group: GroupKey, server: PeerId) {
        if self.fetches.contains_key(&(group, server)) {
            return;
        }
        self.fetches.insert(
            (group, server),
            Fetch {
                stage: Stage::Challenging,
                pages: 0,
            },
        );
        self.actions
            .push_back(GroupMailAction::Challenge { server, group });
    }

    fn place(&self, group: &GroupKey, server: &PeerId) -> Option<u8> {
        let queue = self.queues.get(group)?;
        let at = queue.servers.iter().position(|s| s == server)?;
        u8::try_from(at).ok()
    }

    /// The challenge for a fetch arrived: ask for the page.
    pub fn handle_nonce(&mut self, server: PeerId, group: GroupKey, nonce: [u8; NONCE_LEN]) {
        let (Some(queue), Some(place)) = (self.queues.get(&group), self.place(&group, &server))
        else {
            self.fetches.remove(&(group, server));
            return;
        };
        let queue = queue.id;
        let Some(fetch) = self.fetches.get_mut(&(group, server)) else {
            return;
        };
        fetch.stage = Stage::Fetching;
        let cursor = self.cursors.get(&(group, place)).copied().unwrap_or(0);
        self.actions.push_back(GroupMailAction::Fetch {
            server,
            group,
            queue,
            nonce,
            cursor,
            max: FETCH_PAGE,
        });
    }

    /// A page of `count` messages was handed to the group: the cursor moves on, and the next page is asked
    /// for if `more`.
    pub fn handle_page(
        &mut self,
        server: PeerId,
        group: GroupKey,
        count: usize,
        next_cursor: u64,
        more: bool,
    ) {
        self.pages += 1;
        self.fetched += count as u64;
        if let Some(place) = self.place(&group, &server) {
            let cursor = self.cursors.entry((group, place)).or_insert(0);
            if next_cursor > *cursor {
                *cursor = next_cursor;
                self.actions.push_back(GroupMailAction::Persist);
            }
        }
        let again = match self.fetches.get_mut(&(group, server)) {
            Some(fetch) if more && fetch.pages + 1 < MAX_FETCH_PAGES => {
                fetch.pages += 1;
                fetch.stage = Stage::Challenging;
                true
            }
            _ => false,
        };
        if again && self.queues.contains_key(&group) {
            self.actions
                .push_back(GroupMailAction::Challenge { server, group });
        } else {
            self.fetches.remove(&(group, server));
        }
    }

    /// A challenge or fetch was refused or failed: the next round tries again.
    pub fn handle_fetch_failed(&mut self, server: PeerId, group: GroupKey) {
        self.fetches.remove(&(group, server));
    }

    /// Retries that are due, and the periodic fetch of every queue.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_fetch_all {
            self.next_fetch_all = now + GROUP_FETCH_INTERVAL;
            let all: Vec<(GroupKey, PeerId)> = self
                .queues
                .iter()
                .flat_map(|(g, q)| q.servers.iter().map(move |s| (*g, *s)))
                .collect();
            for (group, server) in all {
                self.start_fetch(group, server);
            }
        }
        self.run_sends(now);
    }

    /// The next deadline: a retry, or the periodic fetch.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .iter()
            .flat_map(|p| p.left.iter())
            .filter(|t| !t.busy)
            .map(|t| t.due)
            .chain(std::iter::once(self.next_fetch_all))
            .min()
    }

    pub fn poll_action(&mut self) -> Option<GroupMailAction> {
        self.actions.pop_front()
    }

    /// Whether the persisted form changed and waits to be written ([`GroupMailAction::Persist`] queued).
    pub fn persist_pending(&self) -> bool {
        self.actions
            .iter()
            .any(|a| matches!(a, GroupMailAction::Persist))
    }

    /// The caller wrote [`Self::encode`] (in the commit that stored the group messages it deposits): the
    /// queued [`GroupMailAction::Persist`] are done.
    pub fn persisted(&mut self) {
        self.actions
            .retain(|a| !matches!(a, GroupMailAction::Persist));
    }

    /// Takes back the deposits of `message` queued moments ago, before any of their sends went out: the
    /// message could not be stored after all, so it must not leave.
    pub fn withdraw(&mut self, message: &[u8], now: Instant) {
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|p| matches!(&p.item, Item::Deposit { message: m, .. } if **m == *message))
            .map(|p| p.id)
            .collect();
        for id in ids {
            self.actions
                .retain(|a| !matches!(a, GroupMailAction::Send { id: sent, .. } if *sent == id));
            if let Some(at) = self.pending.iter().position(|p| p.id == id)
                && let Some(gone) = self.pending.remove(at)
            {
                self.pending_bytes -= gone.item.len();
            }
        }
        // What waited behind it for the same servers goes now.
        self.run_sends(now);
    }

    /// Opens and deposits waiting (in memory, persisted or not).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The persisted form: `u8 version = 1 ‖ count16 × (group[32] ‖ u8 server ‖ u64 cursor) ‖ count16 ×
    /// (group[32] ‖ queue[16] ‖ count8 × vec8 server ‖ item)`, an item being `u8 0 ‖ u64 epoch ‖ key[32] ‖
    /// signature[64]` (an open) or `u8 1 ‖ vec32 message ‖ u8 rotation ‖ [u64 epoch ‖ new_key[32] ‖ u8
    /// revoke ‖ signer[32] ‖ signature[64]]` (a deposit). Sealed by the store; never written in the clear.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(STATE_VERSION);
        let mut cursors: Vec<(&(GroupKey, u8), &u64)> = self.cursors.iter().collect();
        cursors.sort();
        w.u16(u16::try_from(cursors.len()).unwrap_or(u16::MAX));
        for ((group, place), cursor) in cursors.into_iter().take(usize::from(u16::MAX)) {
            w.raw(group).u8(*place).u64(*cursor);
        }
        let persisted: Vec<&Pending> = self.pending.iter().filter(|p| p.persisted).collect();
        w.u16(u16::try_from(persisted.len()).unwrap_or(u16::MAX));
        for p in persisted {
            w.raw(&p.group).raw(&p.queue.0);
            w.u8(u8::try_from(p.left.len()).unwrap_or(u8::MAX));
            for t in &p.left {
                w.bytes_u8(&t.server.to_bytes());
            }
            match &p.item {
                Item::Open {
                    epoch,
                    key,
                    signature,
                } => {
                    w.u8(0).u64(*epoch).raw(key.as_bytes()).raw(signature);
                }
                Item::Deposit { message, rotation } => {
                    w.u8(1).bytes_u32(message);
                    SignedRotation::encode_option(rotation.as_ref(), &mut w);
                }
            }
        }
        w.into_vec()
    }

    /// Takes back what [`Self::encode`] wrote (at start-up, before the groups are told); what does not
    /// decode is dropped whole.
    pub fn load(&mut self, bytes: &[u8], now: Instant) -> Result<(), DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("group mail version")?;
        if version != STATE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "group mail state",
                got: version,
                supported: STATE_VERSION,
            });
        }
        let mut cursors = HashMap::new();
        let count = r.count_u16("cursors", MAX_MAIL_GROUPS * MAX_MAILBOXES)?;
        for _ in 0..count {
            let group: GroupKey = r.array("group")?;
            let place = r.u8("server place")?;
            cursors.insert((group, place), r.u64("cursor")?);
        }
        let mut pending = VecDeque::new();
        let count = r.count_u16("deposits", MAX_PENDING_DEPOSITS)?;
        for _ in 0..count {
            let group: GroupKey = r.array("group")?;
            let queue = QueueId(r.array::<QUEUE_ID_LEN>("queue")?);
            let servers = r.count_u8("servers", MAX_MAILBOXES)?;
            let mut left = Vec::with_capacity(servers);
            for _ in 0..servers {
                let bytes = r.bytes_u8("server", 64)?;
                let server =
                    PeerId::from_bytes(bytes).map_err(|_| invalid("server", "not a PeerId"))?;
                left.push(Try {
                    server,
                    tries: 0,
                    due: now,
                    busy: false,
                });
            }
            let item = match r.u8("item kind")? {
                0 => Item::Open {
                    epoch: r.u64("epoch")?,
                    key: EpochPublicKey::from_bytes(r.array("key")?)?,
                    signature: r.array("signature")?,
                },
                1 => {
                    let message: Arc<[u8]> =
                        Arc::from(r.bytes_u32("message", MAX_GROUP_MESSAGE_LEN)?);
                    let rotation = SignedRotation::decode_option(&mut r)
                        .map_err(|_| invalid("rotation", "malformed"))?;
                    Item::Deposit { message, rotation }
                }
                _ => return Err(invalid("item kind", "neither 0 nor 1")),
            };
            pending.push_back((group, queue, left, item));
        }
        r.finish()?;
        self.cursors = cursors;
        for (group, queue, left, item) in pending {
            self.pending_bytes += item.len();
            self.pending.push_back(Pending {
                id: self.next_id,
                group,
                queue,
                item,
                left,
                stored: 0,
                persisted: true,
            });
            self.next_id += 1;
        }
        self.run_sends(now);
        Ok(())
    }
}

#[cfg(test)]
#[path = "group_client_tests.rs"]
mod tests;
