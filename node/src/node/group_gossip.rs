//! Group messages over gossipsub (docs/protocol.md §18.6): one topic per group and epoch, derived from
//! the epoch's MLS exporter, subscribed while the epoch is current or one of the `ROLLBACK_EPOCHS` before
//! it. What this node makes, or accepts from a 1:1 session, it publishes on the topic of the message's
//! epoch; what it receives by gossip is held by gossipsub until the group state accepted it
//! (`report_message_validation_result`), so nothing a member cannot read is passed on.
//!
//! The 1:1 route stays for every member gossip does not hand the message to at once: when publishing, the
//! peers connected and subscribed to the topic (gossipsub floods a publish to all of them); when passing
//! on an accepted gossip message, the peers of this node's mesh for the topic (gossipsub forwards to them)
//! and the peer it came from. A gossip send is not acknowledged: if such a peer's last connection closes
//! within [`GOSSIP_SETTLE`], the 1:1 copy it was spared goes after all.

use std::collections::{HashMap, HashSet, VecDeque};

use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, TopicHash};

use super::groups::conv_key;
use super::*;
use crate::api::ConversationId;
use crate::group::{MAX_GROUP_MESSAGE_LEN, ROLLBACK_EPOCHS};
use tern_protocol::group_wire::{self, TransferKind};

/// Refused gossip messages after which a peer that is no member of any of this profile's groups is
/// blacklisted by gossipsub (its gossip dropped unread) for the rest of the run.
pub const MAX_GOSSIP_REJECTS: u32 = 4;
/// Peers whose refused gossip messages are counted (the oldest count is forgotten past it).
pub const MAX_REJECT_PEERS: usize = 1024;
/// How long a gossip send to a peer stays unsettled: if the peer's last connection closes within it, the
/// frame may not have arrived (or been stored), and the 1:1 copy goes after all. Longer than a stopped or
/// crashed peer's connections take to close (at once, or after QUIC's 10 s idle timeout).
pub const GOSSIP_SETTLE: std::time::Duration = std::time::Duration::from_secs(60);
/// Unsettled gossip messages remembered (the oldest is taken as settled past it).
pub const MAX_UNSETTLED: usize = 256;
/// Their total size in bytes (likewise).
pub const MAX_UNSETTLED_BYTES: usize = 32 * 1024 * 1024;

/// A group's gossip as this node sees it, and the node's group traffic counters (tests, status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupGossip {
    /// The group's current epoch.
    pub epoch: u64,
    /// Whether this node is subscribed to the current epoch's topic.
    pub subscribed: bool,
    /// Topics subscribed for this group (the current epoch's and those kept from the epochs before).
    pub topics: usize,
    /// Connected peers subscribed to the current epoch's topic.
    pub topic_peers: usize,
    /// Peers in this node's gossipsub mesh for the current epoch's topic.
    pub mesh_peers: usize,
    /// Group transfer parts (1:1 envelopes carrying Welcomes and group messages) queued by this node
    /// since it started, over all groups.
    pub transfer_parts: u64,
    /// The bytes of those parts (before their 1:1 sealing).
    pub transfer_bytes: u64,
    /// Group messages published on a topic since start.
    pub published: u64,
    /// Their bytes (each counted once, however many peers it went to).
    pub published_bytes: u64,
    /// Gossip messages accepted (read or merged here, then passed on by gossipsub) since start.
    pub accepted: u64,
    /// Gossip messages refused (not a member's, unreadable, too large, off their topic) since start.
    pub rejected: u64,
    /// Gossip messages dropped as copies of what this node already had since start.
    pub ignored: u64,
    /// Whether the group has a mail queue (§18.6).
    pub queued: bool,
    /// Group mail deposits (and opens) waiting for a server's answer, over all groups.
    pub queue_pending: usize,
    /// Group mail deposits (and opens) stored by a server since start, one per server, over all groups.
    pub queue_stored: u64,
    /// Group queue pages fetched since start, over all groups.
    pub queue_pages: u64,
    /// Group messages fetched from queues since start, over all groups.
    pub queue_fetched: u64,
}

/// How a group message came to this node, which decides whom gossip covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// Made here, or received over a 1:1 session: published on its epoch's topic.
    Publish,
    /// Received by gossip on `topic` from `source`; once accepted, gossipsub passes it on to the mesh.
    Gossip { source: PeerId, topic: TopicHash },
}

/// What processing a group message gave, as gossip validation needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Read, merged, remembered as a losing commit or parked by the group: worth passing on.
    Accepted,
    /// A copy of what this node already had.
    Duplicate,
    /// Accepted by the group state but not stored (the store failed): not passed on, nobody penalised.
    NotStored,
    /// Kept by the group state to try again (a commit of a proposal not received yet): not passed on
    /// meanwhile, nobody penalised.
    Held,
    /// Refused by the group state.
    Refused,
}

/// The topics this node subscribed to for its groups, and the counters of [`GroupGossip`].
#[derive(Default)]
pub(super) struct Gossip {
    /// Per group (conversation key): the topics of its current and earlier epochs, oldest first.
    topics: HashMap<[u8; 32], VecDeque<(u64, TopicHash)>>,
    /// Each subscribed topic's group and epoch.
    by_topic: HashMap<TopicHash, ([u8; 32], u64)>,
    /// Refused gossip messages per peer, oldest peer first (at most [`MAX_REJECT_PEERS`]).
    rejects: VecDeque<(PeerId, u32)>,
    /// Messages sent by gossip in the last [`GOSSIP_SETTLE`] instead of over 1:1, with the members (and
    /// their peers) they went to that way, oldest first (see [`MAX_UNSETTLED`]).
    unsettled: VecDeque<Unsettled>,
    unsettled_bytes: usize,
    pub(super) transfer_parts: u64,
    pub(super) transfer_bytes: u64,
    published: u64,
    published_bytes: u64,
    accepted: u64,
    rejected: u64,
    ignored: u64,
}

/// A message gossip handed to members instead of a 1:1 copy, not yet settled.
struct Unsettled {
    at: std::time::Instant,
    bytes: std::sync::Arc<[u8]>,
    to: Vec<(PeerId, IdentityKey)>,
}

impl Gossip {
    fn prune_unsettled(&mut self, now: std::time::Instant) {
        while let Some(first) = self.unsettled.front() {
            let old = now.duration_since(first.at) >= GOSSIP_SETTLE;
            if !old
                && self.unsettled.len() <= MAX_UNSETTLED
                && self.unsettled_bytes <= MAX_UNSETTLED_BYTES
            {
                break;
            }
            if let Some(gone) = self.unsettled.pop_front() {
                self.unsettled_bytes -= gone.bytes.len();
            }
        }
    }

    fn note_unsettled(&mut self, bytes: &[u8], to: Vec<(PeerId, IdentityKey)>) {
        if to.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        self.unsettled_bytes += bytes.len();
        self.unsettled.push_back(Unsettled {
            at: now,
            bytes: bytes.into(),
            to,
        });
        self.prune_unsettled(now);
    }

    /// The unsettled messages that went to `peer` by gossip, with the member it is; forgotten for it.
    fn take_unsettled(&mut self, peer: &PeerId) -> Vec<(std::sync::Arc<[u8]>, IdentityKey)> {
        self.prune_unsettled(std::time::Instant::now());
        let mut out = Vec::new();
        for entry in &mut self.unsettled {
            entry.to.retain(|(p, member)| {
                if p == peer {
                    out.push((entry.bytes.clone(), *member));
                    false
                } else {
                    true
                }
            });
        }
        out
    }
    /// The members the message with gossip id `id` (the SHA-256 of its bytes) went to by gossip, with the
    /// message; forgotten. Empty if it is not unsettled (it went to nobody that way, or long ago).
    fn take_unsettled_message(
        &mut self,
        id: &[u8],
    ) -> Option<(std::sync::Arc<[u8]>, Vec<IdentityKey>)> {
        let at = self
            .unsettled
            .iter()
            .rposition(|entry| tern_protocol::crypto::sha256(&[&entry.bytes])[..] == *id)?;
        let entry = self.unsettled.remove(at)?;
        self.unsettled_bytes -= entry.bytes.len();
        let members = entry.to.into_iter().map(|(_, member)| member).collect();
        Some((entry.bytes, members))
    }

    fn topic_of(&self, key: &[u8; 32], epoch: u64) -> Option<TopicHash> {
        self.topics
            .get(key)?
            .iter()
            .find(|(e, _)| *e == epoch)
            .map(|(_, topic)| topic.clone())
    }

    /// Counts a refusal from `peer`; returns the count.
    fn note_reject(&mut self, peer: PeerId) -> u32 {
        if let Some(entry) = self.rejects.iter_mut().find(|(p, _)| *p == peer) {
            entry.1 += 1;
            return entry.1;
        }
        self.rejects.push_back((peer, 1));
        while self.rejects.len() > MAX_REJECT_PEERS {
            self.rejects.pop_front();
        }
        1
    }
}

impl EventLoop {
    /// Brings a group's subscriptions in line with its state: the current epoch's topic and those of the
    /// `ROLLBACK_EPOCHS` epochs before it that this node saw; none once it is no longer a member. Called
    /// after every change of a group (create, join, merge, rollback, removal) and at start-up.
    pub(super) fn gossip_sync(&mut self, key: [u8; 32]) {
        let current = match self.groups.by_conv.get(&key) {
            Some(group) if group.is_active() => match group.topic() {
                Ok(topic) => Some((group.epoch(), IdentTopic::new(topic).hash())),
                Err(e) => {
                    warn!(error = %e, "cannot derive a group's topic");
                    return;
                }
            },
            _ => None,
        };
        let gossip = &mut self.groups.gossip;
        let list = gossip.topics.entry(key).or_default();
        if let (Some((epoch, hash)), Some((last_epoch, last))) = (&current, list.back())
            && epoch == last_epoch
            && hash == last
        {
            return;
        }
        let mut dropped = Vec::new();
        list.retain(|(e, topic)| {
            // Epochs at or after the current one belong to a branch rolled back (§18.5).
            let keep = current
                .as_ref()
                .is_some_and(|(epoch, _)| *e < *epoch && epoch - *e <= ROLLBACK_EPOCHS as u64);
            if !keep {
                dropped.push(topic.clone());
            }
            keep
        });
        if let Some((epoch, hash)) = &current {
            list.push_back((*epoch, hash.clone()));
            gossip.by_topic.insert(hash.clone(), (key, *epoch));
        } else {
            gossip.topics.remove(&key);
        }
        for topic in &dropped {
            gossip.by_topic.remove(topic);
        }
        let members: HashSet<PeerId> = self
            .groups
            .by_conv
            .values()
            .filter(|group| group.is_active())
            .filter_map(|group| group.members().ok())
            .flatten()
            .filter_map(|member| crate::api::peer_id_of(&member))
            .collect();
        let behaviour = &mut self.swarm.behaviour_mut().gossip;
        behaviour.set_members(members);
        for topic in dropped {
            behaviour.unsubscribe(&IdentTopic::new(topic.into_string()));
        }
        if let Some((_, hash)) = current
            && let Err(e) = behaviour.subscribe(&IdentTopic::new(hash.into_string()))
        {
            warn!(error = ?e, "cannot subscribe to a group's topic");
        }
    }

    /// Publishes a group message on the topic of its epoch, if this node has it; returns the peers
    /// gossipsub sent it to (every connected peer subscribed to the topic), none if it was not sent.
    fn gossip_publish(&mut self, bytes: &[u8]) -> HashSet<PeerId> {
        let Ok((id, epoch)) = crate::group::group_epoch_of(bytes) else {
            return HashSet::new();
        };
        let Some(topic) = self.groups.gossip.topic_of(&conv_key(&id), epoch) else {
            return HashSet::new();
        };
        let behaviour = &mut self.swarm.behaviour_mut().gossip;
        let peers: HashSet<PeerId> = behaviour
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic))
            .map(|(peer, _)| *peer)
            .collect();
        match behaviour.publish(topic, bytes.to_vec()) {
            Ok(_) => {
                self.groups.gossip.published += 1;
                self.groups.gossip.published_bytes += bytes.len() as u64;
                peers
            }
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => HashSet::new(),
            Err(e) => {
                debug!(error = %e, "a group message was not published");
                HashSet::new()
            }
        }
    }

    /// The members among `members` that gossip hands this message to at once (see the module doc), after
    /// publishing it if it did not come by gossip.
    pub(super) fn gossip_cover(&mut self, bytes: &[u8], route: &Route) -> HashSet<PeerId> {
        match route {
            Route::Publish => self.gossip_publish(bytes),
            Route::Gossip { source, topic } => {
                let mut peers: HashSet<PeerId> = self
                    .swarm
                    .behaviour()
                    .gossip
                    .mesh_peers(topic)
                    .copied()
                    .collect();
                peers.insert(*source);
                peers
            }
        }
    }

    /// A gossipsub event: a group message to validate; subscriptions need nothing here.
    pub(super) fn handle_gossip_event(&mut self, event: gossipsub::Event) {
        if let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        {
            let verdict = self.gossip_message(propagation_source, message);
            let acceptance = match verdict {
                Verdict::Accepted => {
                    self.groups.gossip.accepted += 1;
                    MessageAcceptance::Accept
                }
                Verdict::Duplicate | Verdict::NotStored | Verdict::Held => {
                    self.groups.gossip.ignored += 1;
                    MessageAcceptance::Ignore
                }
                Verdict::Refused => {
                    self.groups.gossip.rejected += 1;
                    self.count_refusal("group_gossip".to_owned());
                    self.gossip_penalise(propagation_source);
                    MessageAcceptance::Reject
                }
            };
            let forwarded = self
                .swarm
                .behaviour_mut()
                .gossip
                .report_message_validation_result(&message_id, &propagation_source, acceptance);
            if verdict == Verdict::Accepted && !forwarded {
                self.gossip_not_forwarded(&message_id);
            }
        }
    }

    /// gossipsub no longer held an accepted message (it left gossipsub's message cache, a few heartbeats
    /// long, while this node was busy before validating it), so it did not pass it on: the members this
    /// node counted on gossip for get their 1:1 copies now (copies are dropped at the other end).
    fn gossip_not_forwarded(&mut self, id: &gossipsub::MessageId) {
        let Some((bytes, members)) = self.groups.gossip.take_unsettled_message(&id.0) else {
            return;
        };
        debug!(
            members = members.len(),
            "an accepted gossip message was not passed on; 1:1 copies instead"
        );
        self.group_fanout(&bytes, TransferKind::GroupMessage, &members, &[], &[]);
    }

    /// Checks a gossip message against the topic it came on, then hands it to the group receive path.
    fn gossip_message(&mut self, source: PeerId, message: gossipsub::Message) -> Verdict {
        if message.data.len() > MAX_GROUP_MESSAGE_LEN {
            return Verdict::Refused;
        }
        let Some((key, epoch)) = self.groups.gossip.by_topic.get(&message.topic).copied() else {
            return Verdict::Refused;
        };
        match crate::group::group_epoch_of(&message.data) {
            Ok((id, e)) if conv_key(&id) == key && e == epoch => {}
            _ => return Verdict::Refused,
        }
        let route = Route::Gossip {
            source,
            topic: message.topic,
        };
        self.group_message_via(None, message.data, route)
    }

    /// A peer that sent a refused message: blacklisted by gossipsub after [`MAX_GOSSIP_REJECTS`] if it is
    /// no member of any group here. Members are only counted: their gossip is the fast path of their
    /// messages, and they are refused one message at a time.
    fn gossip_penalise(&mut self, peer: PeerId) {
        let count = self.groups.gossip.note_reject(peer);
        if count < MAX_GOSSIP_REJECTS {
            return;
        }
        let member = self.groups.by_conv.values().any(|group| {
            group.members().is_ok_and(|members| {
                members
                    .iter()
                    .any(|m| crate::api::peer_id_of(m) == Some(peer))
            })
        });
        if !member {
            debug!(peer = %short(&peer), "gossip from a non-member refused too often; blacklisted");
            self.swarm.behaviour_mut().gossip.blacklist_peer(&peer);
        }
    }

    /// The gossip view of a group and the node's counters.
    pub(super) fn group_gossip(&self, group: &ConversationId) -> Result<GroupGossip, NodeError> {
        let key = match group {
            ConversationId::Group(key) => *key,
            other => return Err(NodeError::UnknownGroup(other.short())),
        };
        let state = self
            .groups
            .by_conv
            .get(&key)
            .ok_or_else(|| NodeError::UnknownGroup(group.short()))?;
        let gossip = &self.groups.gossip;
        let epoch = state.epoch();
        let topic = gossip.topic_of(&key, epoch);
        let behaviour = &self.swarm.behaviour().gossip;
        let (subscribed, topic_peers, mesh_peers) = match &topic {
            Some(topic) => (
                behaviour.topics().any(|t| t == topic),
                behaviour
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&topic))
                    .count(),
                behaviour.mesh_peers(topic).count(),
            ),
            None => (false, 0, 0),
        };
        Ok(GroupGossip {
            epoch,
            subscribed,
            topics: gossip.topics.get(&key).map_or(0, VecDeque::len),
            topic_peers,
            mesh_peers,
            transfer_parts: gossip.transfer_parts,
            transfer_bytes: gossip.transfer_bytes,
            published: gossip.published,
            published_bytes: gossip.published_bytes,
            accepted: gossip.accepted,
            rejected: gossip.rejected,
            ignored: gossip.ignored,
            queued: self.group_mail.has_queue(&key),
            queue_pending: self.group_mail.pending(),
            queue_stored: self.group_mail.stored,
            queue_pages: self.group_mail.pages,
            queue_fetched: self.group_mail.fetched,
        })
    }

    /// Sends a group message to `members` and `extra` (except `skip` and this profile): by gossip per
    /// `route`, and over 1:1 sessions to every member that is a contact and that gossip does not cover
    /// (in a group with a mail queue, only those connected now).
    pub(super) fn group_spread(
        &mut self,
        bytes: &[u8],
        members: &[IdentityKey],
        extra: &[IdentityKey],
        skip: &[IdentityKey],
        route: &Route,
    ) {
        let covered = self.gossip_cover(bytes, route);
        // A group with a mail queue: its author deposited the message there (§18.6), so members that are
        // not connected read it from the queue rather than from a 1:1 copy in their personal mailboxes. A
        // file's announcement still goes to them 1:1: their mailbox servers are then asked to hold the file
        // (§19.10).
        let queued = self.in_group_queue(bytes);
        let me = self.engine.key();
        let mut by_gossip = Vec::new();
        let mut skip = skip.to_vec();
        for member in members.iter().chain(extra) {
            if *member == me || skip.contains(member) {
                continue;
            }
            let peer = crate::api::peer_id_of(member);
            if let Some(peer) = peer.filter(|p| covered.contains(p)) {
                skip.push(*member);
                by_gossip.push((peer, *member));
            } else if queued
                && self.fanout_file.is_none()
                && !peer.is_some_and(|p| self.swarm.is_connected(&p))
            {
                skip.push(*member);
            }
        }
        // What gossip handed to a member that then went away is in the queue too.
        if !queued {
            self.groups.gossip.note_unsettled(bytes, by_gossip);
        }
        self.group_fanout(bytes, TransferKind::GroupMessage, members, extra, &skip);
    }

    /// A peer's last connection closed: what gossip handed to it in the last [`GOSSIP_SETTLE`] may not
    /// have arrived, so the 1:1 copies it was spared go now (copies are dropped at the other end).
    pub(super) fn gossip_peer_gone(&mut self, peer: PeerId) {
        for (bytes, member) in self.groups.gossip.take_unsettled(&peer) {
            self.group_fanout(&bytes, TransferKind::GroupMessage, &[member], &[], &[]);
        }
    }

    /// Sends group bytes (split into transfer parts) to every member in `members` and `extra` that is an
    /// accepted contact, except this profile and those in `skip`.
    pub(super) fn group_fanout(
        &mut self,
        bytes: &[u8],
        kind: TransferKind,
        members: &[IdentityKey],
        extra: &[IdentityKey],
        skip: &[IdentityKey],
    ) {
        let me = self.engine.key();
        let mut rng = rand::make_rng::<rand::rngs::StdRng>();
        let parts = match group_wire::split(kind, bytes, &mut rng) {
            Ok(parts) => parts,
            Err(e) => {
                warn!(error = %e, "a group message does not fit a transfer");
                return;
            }
        };
        // Under the group's disappearing-message timer, the copies in outboxes and mailboxes expire with
        // the message (§18.3), as a 1:1 message's envelope does (§12.4).
        let ttl_s = match kind {
            TransferKind::GroupMessage => self.group_timer_of(bytes),
            TransferKind::Welcome => None,
        };
        let mut sent = HashSet::new();
        for to in members.iter().chain(extra) {
            if *to == me
                || skip.contains(to)
                || !sent.insert(*to)
                || self.accepted_contact(to).is_err()
            {
                continue;
            }
            for part in &parts {
                let data = part.encode();
                let len = data.len() as u64;
                let body = Body::Unknown {
                    kind: group_wire::KIND_TRANSFER_PART,
                    data,
                };
                let queued = match ttl_s {
                    Some(ttl_s) => self.engine.send_control_expiring(to, body, ttl_s),
                    None => self.engine.send_control(to, body, true),
                };
                match queued {
                    Ok((id, _)) => {
                        if let (Some(record), Some(wire)) = (&self.fanout_file, &self.files) {
                            wire.note_copy(id, record.clone());
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot queue a group message for a member");
                        break;
                    }
                }
                self.groups.gossip.transfer_parts += 1;
                self.groups.gossip.transfer_bytes += len;
            }
            self.flush_for(to);
        }
    }

    /// The disappearing-message timer (seconds) of the group a group message is for, if it has one.
    fn group_timer_of(&self, bytes: &[u8]) -> Option<u64> {
        let id = crate::group::group_id_of(bytes).ok()?;
        let group = self.groups.by_conv.get(&conv_key(&id))?;
        let seconds = group.info().ok()?.timer_s;
        (seconds > 0).then_some(u64::from(seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(seed: u64) -> (PeerId, IdentityKey) {
        use rand::SeedableRng;
        let rng = &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let key = tern_protocol::Identity::generate(rng, 0).key();
        (crate::api::peer_id_of(&key).unwrap(), key)
    }

    #[test]
    fn an_unsettled_message_is_found_by_its_gossip_id_and_taken_once() {
        let mut gossip = Gossip::default();
        let (a, b, c) = (member(1), member(2), member(3));
        gossip.note_unsettled(b"first", vec![a, b]);
        gossip.note_unsettled(b"second", vec![c]);
        let id = tern_protocol::crypto::sha256(&[b"first"]);
        let (bytes, members) = gossip.take_unsettled_message(&id).unwrap();
        assert_eq!(&bytes[..], b"first");
        assert_eq!(members, [a.1, b.1]);
        assert!(gossip.take_unsettled_message(&id).is_none(), "taken once");
        assert_eq!(gossip.unsettled_bytes, b"second".len());
        // The other message is still unsettled for its peer.
        assert_eq!(gossip.take_unsettled(&c.0).len(), 1);
        assert!(
            gossip
                .take_unsettled_message(&tern_protocol::crypto::sha256(&[b"unknown"]))
                .is_none()
        );
    }
}
