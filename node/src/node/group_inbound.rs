//! Group bodies received inside 1:1 sessions (docs/protocol.md §18.4): KeyPackage requests answered,
//! KeyPackages turned into adds, Welcomes joined, and group messages processed, stored and forwarded to the
//! members that are this profile's contacts and that gossip does not reach (§18.6). Gossiped group
//! messages come through the same path (`group_gossip.rs`).

use tern_protocol::group_link::{KIND_JOIN_ANSWER, KIND_JOIN_REQUEST};
use tern_protocol::group_wire::{
    self, KIND_KEY_PACKAGE_REQUEST, KIND_KEY_PACKAGES, KIND_REJOIN_REQUEST, KIND_TRANSFER_PART,
    TransferKind, TransferPart,
};

use super::group_gossip::{Route, Verdict};
use super::groups::OwnChange;
use super::groups::conv_key;
use super::*;
use crate::api::ConversationId;
use crate::group::{Group, GroupError, KeyPackageIn, PendingKeyPackage, Processed};

impl EventLoop {
    /// A group body from an accepted contact, already stored with its session's advance.
    pub(super) fn group_body(&mut self, from: IdentityKey, kind: u16, data: Vec<u8>) {
        let result = match kind {
            KIND_KEY_PACKAGE_REQUEST => self.answer_key_package_request(from, &data),
            KIND_KEY_PACKAGES => self.take_key_packages(from, &data),
            KIND_TRANSFER_PART => self.take_transfer_part(from, &data),
            KIND_REJOIN_REQUEST => self.take_rejoin_request(from, &data),
            KIND_JOIN_REQUEST => self.take_join_request(from, &data),
            KIND_JOIN_ANSWER => self.take_join_answer(from, &data),
            _ => Ok(()),
        };
        if let Err(e) = result {
            debug!(kind, error = %e, "group body refused");
        }
    }

    fn answer_key_package_request(
        &mut self,
        from: IdentityKey,
        data: &[u8],
    ) -> Result<(), NodeError> {
        let count = group_wire::decode_key_package_request(data)
            .map_err(|_| GroupError::Malformed("key package request"))?;
        let mut packages = Vec::new();
        for _ in 0..count {
            let (bytes, pending) = crate::group::new_key_package(self.engine.identity())?;
            let encoded = pending.encode();
            if let Err(e) = self
                .engine
                .store_mut()
                .put_key_package(pending.hash_ref(), &encoded)
            {
                warn!(error = %e, "cannot keep a KeyPackage's private half");
                break;
            }
            packages.push(bytes);
        }
        if packages.is_empty() {
            return Ok(());
        }
        let body = group_wire::encode_key_packages(&packages)
            .map_err(|_| GroupError::Malformed("key packages"))?;
        self.engine.send_control(
            &from,
            Body::Unknown {
                kind: KIND_KEY_PACKAGES,
                data: body,
            },
            true,
        )?;
        self.flush_for(&from);
        Ok(())
    }

    /// A copy of `from` restored from a backup asks to be added back to a group it is a member of
    /// (§20.5): an admin's node asks it for a KeyPackage, and the commit that follows replaces its old
    /// leaf with the new one. Anyone else ignores the request.
    fn take_rejoin_request(&mut self, from: IdentityKey, data: &[u8]) -> Result<(), NodeError> {
        let id = group_wire::decode_rejoin_request(data)
            .map_err(|_| GroupError::Malformed("rejoin request"))?;
        let key = conv_key(&id);
        if !self.groups.rejoins.allow(key, from, now_ms()) {
            return Err(GroupError::Invalid("a rejoin request again within the hour").into());
        }
        self.ask_key_package(key, from, true)
    }

    /// KeyPackages from a contact this profile asked: each completes the oldest add waiting for it (an
    /// add back, if the contact is a member already: its copy was restored from a backup).
    fn take_key_packages(&mut self, from: IdentityKey, data: &[u8]) -> Result<(), NodeError> {
        let packages = group_wire::decode_key_packages(data)
            .map_err(|_| GroupError::Malformed("key packages"))?;
        for bytes in packages {
            let Some(position) = self
                .groups
                .pending_adds
                .iter()
                .position(|(contact, _)| *contact == from)
            else {
                break;
            };
            let Some((_, key)) = self.groups.pending_adds.remove(position) else {
                break;
            };
            let key_package = KeyPackageIn::parse(&bytes, Some(&from))?;
            let group = self.group_mut(&key)?;
            let out = if group.members()?.contains(&from) {
                group.readd(key_package)?
            } else {
                group.add(vec![key_package])?
            };
            self.after_own_commit(key, out)?;
        }
        Ok(())
    }

    fn take_transfer_part(&mut self, from: IdentityKey, data: &[u8]) -> Result<(), NodeError> {
        let part =
            TransferPart::decode(data).map_err(|_| GroupError::Malformed("transfer part"))?;
        let done = self
            .groups
            .reassembly
            .handle(from, part, now_ms())
            .map_err(|_| GroupError::Malformed("transfer"))?;
        match done {
            None => Ok(()),
            Some((TransferKind::Welcome, bytes)) => self.group_welcome(from, &bytes),
            Some((TransferKind::GroupMessage, bytes)) => {
                self.group_message_via(Some(from), bytes, Route::Publish);
                Ok(())
            }
        }
    }

    /// A Welcome from `from`: joins with the KeyPackage it was made for, if `from` is an admin of it.
    fn group_welcome(&mut self, from: IdentityKey, bytes: &[u8]) -> Result<(), NodeError> {
        let mut pending = None;
        for hash_ref in Group::welcome_key_packages(bytes)? {
            if let Some(encoded) = self.engine.store_mut().take_key_package(&hash_ref)? {
                pending = Some(PendingKeyPackage::decode(&encoded)?);
                break;
            }
        }
        let pending = pending.ok_or(GroupError::NoKeyPackage)?;
        let me = self.engine.key();
        let (group, adder) = Group::join(bytes, &pending, &me)?;
        if adder != from {
            return Err(
                GroupError::Forbidden("a Welcome sent by someone other than its admin").into(),
            );
        }
        let name = group.info().map(|i| i.name).unwrap_or_default();
        let key = self.groups.insert(group);
        // A group restored from a backup becomes this state (its row is overwritten below).
        let back = self.groups.restored.remove(&key).is_some();
        let line = if back {
            format!("{} added you back to \"{name}\"", self.name_of(&adder))
        } else {
            format!("{} added you to \"{name}\"", self.name_of(&adder))
        };
        let line = self.system_line(key, Some(adder), line);
        self.save_group(key, vec![line])?;
        let summary = self.summary(&key)?;
        self.emit_group(api::Event::GroupJoined {
            group: summary,
            added_by: adder,
            added_by_name: self.name_of(&adder),
        });
        // Messages of this group that came before the Welcome.
        let orphans: Vec<Vec<u8>> = self.groups.orphans.drain(..).collect();
        for orphan in orphans {
            match crate::group::group_id_of(&orphan) {
                Ok(id) if conv_key(&id) == key => {
                    self.process_group_message(None, orphan, Route::Publish);
                }
                _ => self.groups.orphans.push_back(orphan),
            }
        }
        Ok(())
    }

    /// A group message (application message, commit or proposal) that came from `from` (a contact), or
    /// from nowhere in particular (`None`), by `route`: dropped if seen before, else processed. A message
    /// refused on gossip is forgotten, so a whole copy may still come by a 1:1 session.
    pub(super) fn group_message_via(
        &mut self,
        from: Option<IdentityKey>,
        bytes: Vec<u8>,
        route: Route,
    ) -> Verdict {
        if !self.groups.first_sight(&bytes) {
            return Verdict::Duplicate;
        }
        let gossip = matches!(route, Route::Gossip { .. });
        let copy = gossip.then(|| bytes.clone());
        let verdict = self.process_group_message(from, bytes, route);
        if verdict == Verdict::Refused
            && let Some(bytes) = copy
        {
            self.groups.forget(&bytes);
        }
        verdict
    }

    fn process_group_message(
        &mut self,
        from: Option<IdentityKey>,
        bytes: Vec<u8>,
        route: Route,
    ) -> Verdict {
        let gossip = matches!(route, Route::Gossip { .. });
        let key = match crate::group::group_id_of(&bytes) {
            Ok(id) => conv_key(&id),
            Err(e) => {
                debug!(error = %e, "not a group message");
                return Verdict::Refused;
            }
        };
        let Some(group) = self.groups.by_conv.get_mut(&key) else {
            if gossip {
                return Verdict::Refused;
            }
            self.groups.park_orphan(bytes);
            return Verdict::Accepted;
        };
        let mut outcomes = match group.process(&bytes) {
            Ok(processed) => vec![processed],
            Err(GroupError::MissingProposal) => {
                // Parked by the group until the proposal comes: an admin commits a leave as soon as it
                // reads the proposal, so the commit can overtake the proposal on its way here.
                if let Err(e) = self.save_group(key, Vec::new()) {
                    warn!(error = %e, "cannot store a group");
                }
                return Verdict::Held;
            }
            Err(e) if gossip => {
                // Nothing of a refused gossip message is kept: a member's message is read on the topic
                // of its own epoch, so one that fails there will not pass later.
                debug!(error = %e, "gossiped group message refused");
                group.unpark(&bytes);
                return Verdict::Refused;
            }
            Err(GroupError::FutureEpoch { .. }) => {
                // Parked by the group; passed on, since the members it goes to may be ahead.
                let members = group.members().unwrap_or_default();
                let skip: Vec<IdentityKey> = from.into_iter().collect();
                if let Err(e) = self.save_group(key, Vec::new()) {
                    warn!(error = %e, "cannot store a group");
                }
                self.group_spread(&bytes, &members, &[], &skip, &route);
                return Verdict::Accepted;
            }
            Err(e) => {
                debug!(error = %e, "group message refused");
                if matches!(e, GroupError::Undecryptable)
                    && let Err(e) = self.save_group(key, Vec::new())
                {
                    warn!(error = %e, "cannot store a group");
                }
                return Verdict::Refused;
            }
        };
        let verdict = match outcomes.first() {
            Some(Processed::Duplicate { .. }) => Verdict::Duplicate,
            _ => Verdict::Accepted,
        };
        outcomes.extend(group.retry_parked());
        let mut skip: Vec<IdentityKey> = from.into_iter().collect();
        let mut removed = Vec::new();
        let mut lines = Vec::new();
        let mut updated = false;
        let mut resend = Vec::new();
        let mut commit_leaves = false;
        let mut reissue = None;
        // Texts to acknowledge, receipts taken, and whether the message itself is a receipt (§18.10).
        let mut delivered = Vec::new();
        let mut receipts = Vec::new();
        let mut is_receipt = false;
        let mut files = Vec::new();
        let me = self.engine.key();
        for (i, processed) in outcomes.into_iter().enumerate() {
            match processed {
                Processed::Message { sender, content } => {
                    if i == 0 {
                        skip.push(sender);
                        is_receipt = matches!(content.body, Body::Delivered(_) | Body::Read(_));
                    }
                    // A reply is a text that names the message it answers (§12.5).
                    let (body, reply_to) = match content.body {
                        Body::Reply(reply) => (Body::Text(reply.text), Some(reply.to)),
                        body => (body, None),
                    };
                    match body {
                        Body::Delivered(ids) => receipts.push((sender, ids, false)),
                        // A member's file (§19.10): its line and its attachment row, fetched once stored.
                        Body::File(announcement) if sender != me => {
                            let record = crate::store::AttachmentRecord::offered(
                                ConversationId::Group(key),
                                content.id,
                                announcement,
                            );
                            lines.push(api::Message {
                                id: content.id,
                                conversation: ConversationId::Group(key),
                                sender: Some(sender),
                                system: false,
                                attachment: Some(record.view()),
                                sent_at_ms: content.sent_at_ms,
                                received_at_ms: now_ms(),
                                text: String::new(),
                                status: MessageStatus::Received,
                                recipients: Vec::new(),
                                reply_to,
                            });
                            files.push(record);
                        }
                        Body::Read(ids) => receipts.push((sender, ids, true)),
                        Body::Text(text) => {
                            if sender != me {
                                delivered.push((content.id, sender));
                            }
                            lines.push(api::Message {
                                id: content.id,
                                conversation: ConversationId::Group(key),
                                sender: Some(sender),
                                system: false,
                                attachment: None,
                                sent_at_ms: content.sent_at_ms,
                                received_at_ms: now_ms(),
                                text,
                                status: MessageStatus::Received,
                                recipients: Vec::new(),
                                reply_to,
                            });
                        }
                        _ => {}
                    }
                }
                Processed::Commit(summary) => {
                    if i == 0 {
                        skip.push(summary.committer);
                        removed.extend(summary.removed.iter().copied());
                    }
                    lines.extend(self.commit_lines(key, Some(summary.committer), &summary));
                    updated = true;
                }
                Processed::RolledBack {
                    summary,
                    resend: again,
                    own_commit_lost,
                } => {
                    if own_commit_lost {
                        // Own commits that made this epoch or a later one were dropped.
                        reissue =
                            Some(reissue.map_or(summary.epoch, |e: u64| e.min(summary.epoch)));
                    }
                    if i == 0 {
                        removed.extend(summary.removed.iter().copied());
                    }
                    lines.extend(self.commit_lines(key, Some(summary.committer), &summary));
                    resend.extend(again);
                    updated = true;
                }
                Processed::Proposal { from: leaver } => {
                    self.groups.note_leaving(key, leaver);
                    commit_leaves = true;
                }
                Processed::Duplicate { .. } | Processed::LostRace => {}
            }
        }
        if let Err(e) = self.save_group_with(key, lines, files) {
            warn!(error = %e, "cannot store a group");
            // Not passed on by gossip either: what this node could not keep, it does not vouch for.
            return Verdict::NotStored;
        }
        let members = match self.groups.by_conv.get(&key) {
            Some(group) => group.members().unwrap_or_default(),
            None => return verdict,
        };
        skip.retain(|k| *k != me);
        for (sender, ids, read) in receipts {
            self.take_group_receipt(key, sender, &ids, read);
        }
        self.queue_group_receipt(key, false, &delivered);
        // A copy dropped on gossip is not passed on by gossipsub, so it is not passed on here either. A
        // receipt goes on by gossip only: the 1:1 copies its sender owed went to the texts' authors.
        if !(gossip && verdict == Verdict::Duplicate) {
            let to: &[IdentityKey] = if is_receipt { &[] } else { &members };
            self.group_spread(&bytes, to, &removed, &skip, &route);
        }
        for again in resend {
            self.groups.first_sight(&again);
            self.group_send_out(&again, &members, &[], &[], None);
        }
        if updated && let Ok(summary) = self.summary(&key) {
            self.emit_group(api::Event::GroupUpdated { group: summary });
        }
        let still_here = self.groups.by_conv.get(&key).is_some_and(Group::is_active);
        if updated && still_here && self.groups.leaving.contains(&(key, me)) {
            // This member left, and a commit that did not remove it ended its proposal's epoch.
            if let Err(e) = self.send_leave(key, false) {
                warn!(error = %e, "cannot repeat this member's leave");
            }
        }
        if commit_leaves {
            self.commit_leaves(key);
        }
        if let Some(epoch) = reissue {
            self.reissue_lost(key, epoch);
        }
        verdict
    }

    /// This admin's own commits that made `epoch` or a later one lost a race (§18.5) and were dropped:
    /// the adds and removals they made that the winning branch does not hold are made again. A member added on the dropped branch joined a
    /// state nobody else has; the new add gives it a Welcome that replaces it. Renames, promotions and
    /// timers are not repeated: the user sees the winning one and may set theirs again.
    fn reissue_lost(&mut self, key: [u8; 32], epoch: u64) {
        let Ok(members) = self.group_mut(&key).and_then(|g| Ok(g.members()?)) else {
            return;
        };
        let dropped = |c: &OwnChange| c.group == key && c.epoch >= epoch;
        let lost: Vec<(IdentityKey, bool)> = self
            .groups
            .own_changes
            .iter()
            .filter(|c| dropped(c) && members.contains(&c.member) != c.added)
            .map(|c| (c.member, c.added))
            .collect();
        self.groups.own_changes.retain(|c| !dropped(c));
        for (who, added) in lost {
            let result = if added {
                self.ask_key_package(key, who, false)
            } else {
                self.group_mut(&key)
                    .and_then(|g| Ok(g.remove(&[who])?))
                    .and_then(|out| self.after_own_commit(key, out).map(|_| ()))
            };
            match result {
                Ok(()) => debug!(added, "a change lost to a concurrent commit is made again"),
                Err(e) => debug!(error = %e, "a change lost to a concurrent commit stays lost"),
            }
        }
    }

    /// An admin carries out the leave proposals it holds.
    fn commit_leaves(&mut self, key: [u8; 32]) {
        let Ok(group) = self.group_mut(&key) else {
            return;
        };
        let me = group.me();
        if !group.info().is_ok_and(|i| i.is_admin(&me)) {
            return;
        }
        match group.commit_pending() {
            Ok(Some(out)) => {
                if let Err(e) = self.after_own_commit(key, out) {
                    warn!(error = %e, "cannot carry out a leave");
                }
            }
            Ok(None) => {}
            Err(e) => debug!(error = %e, "cannot commit the leave proposals"),
        }
    }
}

/// A member's rejoin request makes the admin's node commit (§20.5), so one member could keep the group busy
/// with them: each member is added back at most once per [`REJOIN_INTERVAL_MS`] per group. Remembered in
/// memory for at most [`MAX_REMEMBERED_REJOINS`] pairs, oldest forgotten first.
#[derive(Default)]
pub(super) struct Rejoins {
    last: std::collections::VecDeque<([u8; 32], IdentityKey, u64)>,
}

/// How long after one rejoin a member's next request for the same group is refused.
pub const REJOIN_INTERVAL_MS: u64 = 3600 * 1000;
/// Rejoins remembered at once.
pub const MAX_REMEMBERED_REJOINS: usize = 256;

impl Rejoins {
    /// Whether `member` may be added back to the group `key` at `now_ms`; if so, remembers it.
    pub(super) fn allow(&mut self, key: [u8; 32], member: IdentityKey, now_ms: u64) -> bool {
        if let Some(at) = self
            .last
            .iter()
            .position(|(k, m, _)| *k == key && *m == member)
        {
            let (_, _, then) = self.last[at];
            if now_ms.saturating_sub(then) < REJOIN_INTERVAL_MS {
                return false;
            }
            self.last.remove(at);
        }
        self.last.push_back((key, member, now_ms));
        while self.last.len() > MAX_REMEMBERED_REJOINS {
            self.last.pop_front();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    fn member(seed: u64) -> IdentityKey {
        tern_protocol::Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
    }

    #[test]
    fn a_member_is_added_back_once_an_hour_per_group_and_the_memory_is_bounded() {
        let mut rejoins = Rejoins::default();
        let (ana, bo) = (member(1), member(2));
        let t = 1_800_000_000_000;
        assert!(rejoins.allow([1; 32], ana, t));
        assert!(!rejoins.allow([1; 32], ana, t + REJOIN_INTERVAL_MS - 1));
        assert!(rejoins.allow([2; 32], ana, t), "another group");
        assert!(rejoins.allow([1; 32], bo, t), "another member");
        assert!(rejoins.allow([1; 32], ana, t + REJOIN_INTERVAL_MS));
        for i in 0..MAX_REMEMBERED_REJOINS as u64 {
            rejoins.allow([3; 32], member(100 + i), t);
        }
        assert_eq!(rejoins.last.len(), MAX_REMEMBERED_REJOINS);
        assert!(
            rejoins.allow([1; 32], ana, t + REJOIN_INTERVAL_MS + 1),
            "forgotten past the bound"
        );
    }
}
