//! Groups on the event loop (docs/protocol.md §18): the groups this profile is in, kept in memory and sealed
//! in the store after every change (the bookkeeping is `group_book.rs`), and the commands of the
//! [`super::Node`] handle that act on them.
//!
//! Group messages go to online members over gossipsub (§18.6, `group_gossip.rs`) and, to every member
//! gossip does not reach at once, as the group bodies of §18.4 inside 1:1 sessions (queued in the outbox,
//! so retried and deposited with mailboxes like any message). A member passes each group message it
//! accepts for the first time on by the same rule to the members that are its contacts, so members who are
//! not each other's contacts still hear from each other; copies are dropped by their hash and by
//! `(sender, message id)`. Incoming bodies are handled in `group_inbound.rs`.

use tern_protocol::group_wire::{self, KIND_KEY_PACKAGE_REQUEST, TransferKind};
use tern_protocol::{Content, MessageId};

use super::group_gossip::GroupGossip;
use super::*;
use crate::api::{ConversationId, GroupMember, GroupRole, GroupSummary};
use crate::group::{CommitOut, Group, GroupError, GroupInfo, RestoredGroup};

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// Hashes of group messages handled or sent, remembered to drop copies that arrive by other paths.
pub const MAX_SEEN_GROUP_MESSAGES: usize = 4096;
/// Group messages for a group this node has not joined yet (sent in the epoch its Welcome starts), kept
/// until the Welcome arrives.
pub const MAX_ORPHANS: usize = 64;
/// Adds waiting for the new member's KeyPackage.
pub const MAX_PENDING_ADDS: usize = 256;

/// What the handle asks of the groups.
pub(super) enum GroupCommand {
    Create {
        name: String,
        members: Vec<IdentityKey>,
        reply: Reply<GroupSummary>,
    },
    Add {
        group: ConversationId,
        member: IdentityKey,
        reply: Reply<()>,
    },
    Remove {
        group: ConversationId,
        member: IdentityKey,
        reply: Reply<GroupSummary>,
    },
    Leave {
        group: ConversationId,
        reply: Reply<GroupSummary>,
    },
    Rename {
        group: ConversationId,
        name: String,
        reply: Reply<GroupSummary>,
    },
    Promote {
        group: ConversationId,
        member: IdentityKey,
        reply: Reply<GroupSummary>,
    },
    /// The group's disappearing-message timer (`group_timers.rs`); the reply is its system line.
    SetTimer {
        group: ConversationId,
        seconds: u32,
        reply: Reply<Option<api::Message>>,
    },
    List {
        reply: oneshot::Sender<Vec<GroupSummary>>,
    },
    Members {
        group: ConversationId,
        reply: Reply<Vec<GroupMember>>,
    },
    Gossip {
        group: ConversationId,
        reply: Reply<GroupGossip>,
    },
    /// Links and join requests (`group_links.rs`).
    Link(super::group_links::LinkCommand),
}

pub(super) use super::group_book::{Groups, OwnChange};

/// The conversation key of the group with this MLS group id.
pub(super) fn conv_key(mls_id: &[u8]) -> [u8; 32] {
    match ConversationId::of_group(mls_id) {
        ConversationId::Group(key) => key,
        ConversationId::Direct(key) => *key.as_bytes(),
    }
}

pub(super) fn group_key(group: &ConversationId) -> Result<[u8; 32], NodeError> {
    match group {
        ConversationId::Group(key) => Ok(*key),
        other => Err(NodeError::UnknownGroup(other.short())),
    }
}

/// `who`'s role by a group's name-and-roles info (a member when it cannot be read).
fn role_in(info: Option<&GroupInfo>, who: &IdentityKey) -> GroupRole {
    match info {
        Some(info) if info.creator == *who => GroupRole::Creator,
        Some(info) if info.is_admin(who) => GroupRole::Admin,
        _ => GroupRole::Member,
    }
}

pub(super) fn summary_of(group: &Group) -> GroupSummary {
    GroupSummary {
        id: ConversationId::of_group(group.id()),
        name: group.info().map(|i| i.name).unwrap_or_default(),
        members: group.members().map_or(0, |m| m.len()),
        role: role_in(group.info().ok().as_ref(), &group.me()),
        active: group.is_active(),
        rejoining: false,
        epoch: group.epoch(),
    }
}

/// A group restored from a backup, as the user sees it until an admin adds this copy back.
fn restored_summary(group: &RestoredGroup) -> GroupSummary {
    GroupSummary {
        id: ConversationId::of_group(&group.id),
        name: group.info.name.clone(),
        members: group.members.len(),
        role: role_in(Some(&group.info), &group.me),
        active: false,
        rejoining: group.member,
        epoch: 0,
    }
}

impl EventLoop {
    pub(super) fn handle_group_command(&mut self, command: GroupCommand) {
        match command {
            GroupCommand::Create {
                name,
                members,
                reply,
            } => {
                let _ = reply.send(self.group_create(&name, &members));
            }
            GroupCommand::Add {
                group,
                member,
                reply,
            } => {
                let result = group_key(&group).and_then(|key| self.group_add(key, member));
                let _ = reply.send(result);
            }
            GroupCommand::Remove {
                group,
                member,
                reply,
            } => {
                let result = group_key(&group).and_then(|key| {
                    let out = self.group_mut(&key)?.remove(&[member])?;
                    self.after_own_commit(key, out)
                });
                let _ = reply.send(result);
            }
            GroupCommand::Leave { group, reply } => {
                let _ = reply.send(group_key(&group).and_then(|key| self.group_leave(key)));
            }
            GroupCommand::Rename { group, name, reply } => {
                let result = group_key(&group).and_then(|key| {
                    let out = self.group_mut(&key)?.rename(&name)?;
                    self.after_own_commit(key, out)
                });
                let _ = reply.send(result);
            }
            GroupCommand::Promote {
                group,
                member,
                reply,
            } => {
                let result = group_key(&group).and_then(|key| {
                    let out = self.group_mut(&key)?.promote(&member)?;
                    self.after_own_commit(key, out)
                });
                let _ = reply.send(result);
            }
            GroupCommand::SetTimer {
                group,
                seconds,
                reply,
            } => {
                let _ = reply.send(self.group_set_timer(group, seconds));
            }
            GroupCommand::List { reply } => {
                let mut list: Vec<GroupSummary> = self
                    .groups
                    .by_conv
                    .values()
                    .map(summary_of)
                    .chain(self.groups.restored.values().map(restored_summary))
                    .collect();
                list.sort_by(|a, b| a.name.cmp(&b.name));
                let _ = reply.send(list);
            }
            GroupCommand::Members { group, reply } => {
                let _ = reply.send(group_key(&group).and_then(|key| self.group_members(&key)));
            }
            GroupCommand::Gossip { group, reply } => {
                let _ = reply.send(self.group_gossip(&group));
            }
            GroupCommand::Link(command) => self.handle_link_command(command),
        }
    }

    /// A group this profile holds the state of; a group restored from a backup and not rejoined yet is
    /// [`GroupError::NotMember`] (nothing can be done in it until an admin adds this copy back).
    pub(super) fn group_mut(&mut self, key: &[u8; 32]) -> Result<&mut Group, NodeError> {
        if self.groups.restored.contains_key(key) {
            return Err(GroupError::NotMember.into());
        }
        self.groups
            .by_conv
            .get_mut(key)
            .ok_or_else(|| NodeError::UnknownGroup(ConversationId::Group(*key).short()))
    }

    /// An accepted contact, or the error a group operation on a stranger gives.
    pub(super) fn accepted_contact(&self, key: &IdentityKey) -> Result<(), NodeError> {
        match self.engine.store().contact(key)? {
            Some(c) if c.state == api::ContactState::Accepted => Ok(()),
            _ => Err(NodeError::Engine(EngineError::UnknownContact(
                key.peer_id(),
            ))),
        }
    }

    fn group_create(
        &mut self,
        name: &str,
        members: &[IdentityKey],
    ) -> Result<GroupSummary, NodeError> {
        for member in members {
            self.accepted_contact(member)?;
        }
        // Its mail queue on this profile's mailbox servers; none without any (§18.6).
        let servers = self.mailbox_servers();
        let group = Group::create_with_queue(self.engine.identity(), name, &servers)?;
        let key = self.groups.insert(group);
        let line = format!("You created the group \"{name}\"");
        if let Err(e) = self.save_group(key, vec![self.system_line(key, None, line)]) {
            self.groups.by_conv.remove(&key);
            return Err(e);
        }
        self.group_mail_open(key);
        for member in members {
            self.group_add(key, *member)?;
        }
        let summary = self
            .groups
            .by_conv
            .get(&key)
            .map(summary_of)
            .ok_or_else(|| NodeError::UnknownGroup(String::new()))?;
        Ok(summary)
    }

    /// Asks `member` for a KeyPackage; the add is committed when it answers (`group_inbound.rs`).
    fn group_add(&mut self, key: [u8; 32], member: IdentityKey) -> Result<(), NodeError> {
        self.accepted_contact(&member)?;
        self.ask_key_package(key, member, false)
    }

    /// Asks `member` for a KeyPackage for the group `key` (an admin of an active group only): for an add
    /// of a new member, or, `back`, of a member whose copy was restored from a backup and asked to be
    /// added back (§20.5). The commit is made when the KeyPackage arrives (`group_inbound.rs`); a request
    /// already waiting is not sent again.
    pub(super) fn ask_key_package(
        &mut self,
        key: [u8; 32],
        member: IdentityKey,
        back: bool,
    ) -> Result<(), NodeError> {
        let group = self.group_mut(&key)?;
        if !group.is_active() {
            return Err(GroupError::NotMember.into());
        }
        if !group
            .info()
            .map(|i| i.is_admin(&group.me()))
            .unwrap_or(false)
        {
            return Err(GroupError::NotAdmin.into());
        }
        match (back, group.members()?.contains(&member)) {
            (false, true) => return Err(GroupError::AlreadyMember.into()),
            (true, false) => return Err(GroupError::UnknownMember.into()),
            _ => {}
        }
        if self.groups.pending_adds.contains(&(member, key)) {
            return Ok(());
        }
        let request = group_wire::encode_key_package_request(1)
            .map_err(|_| GroupError::Invalid("key package request"))?;
        self.engine.send_control(
            &member,
            Body::Unknown {
                kind: KIND_KEY_PACKAGE_REQUEST,
                data: request,
            },
            true,
        )?;
        self.groups.pending_adds.push_back((member, key));
        while self.groups.pending_adds.len() > MAX_PENDING_ADDS {
            self.groups.pending_adds.pop_front();
        }
        self.flush_for(&member);
        Ok(())
    }

    fn group_leave(&mut self, key: [u8; 32]) -> Result<GroupSummary, NodeError> {
        self.send_leave(key, true)?;
        self.summary(&key)
    }

    /// Sends this member's leave proposal for the current epoch. `first`: the user's leave (noted, with
    /// its line); otherwise a repeat after a commit that did not carry out the one before (a proposal is
    /// good for one epoch only, and an update or another admin's commit may have ended it first).
    pub(super) fn send_leave(&mut self, key: [u8; 32], first: bool) -> Result<(), NodeError> {
        let group = self.group_mut(&key)?;
        let proposal = group.leave()?;
        let members = group.members()?;
        let me = group.me();
        self.groups.first_sight(&proposal);
        let mut lines = Vec::new();
        if first {
            self.groups.note_leaving(key, me);
            lines.push(self.system_line(key, None, "You left".to_owned()));
        }
        let queued = self.group_mail_queue(&proposal, None);
        if let Err(e) = self.save_group(key, lines) {
            self.group_mail_withdraw(&proposal);
            return Err(e);
        }
        self.group_send_queued(&proposal, queued, &members, &[], &[]);
        Ok(())
    }

    /// Sends a text (a reply when `reply_to` names the message it answers) to a group: encrypted for the
    /// current epoch, stored, and fanned out.
    pub(super) fn group_send(
        &mut self,
        conversation: ConversationId,
        text: String,
        reply_to: Option<MessageId>,
    ) -> Result<api::Message, NodeError> {
        let key = group_key(&conversation)?;
        if text.len() > tern_protocol::message::MAX_TEXT_LEN {
            return Err(GroupError::Invalid("text too long").into());
        }
        let now = now_ms();
        let mut rng = rand::make_rng::<rand::rngs::StdRng>();
        let content = Content {
            id: MessageId::new_v7(now, &mut rng),
            sent_at_ms: now,
            body: match reply_to {
                Some(to) => Body::Reply(tern_protocol::Reply {
                    to,
                    text: text.clone(),
                }),
                None => Body::Text(text.clone()),
            },
        };
        let group = self.group_mut(&key)?;
        let bytes = group.send(&content)?;
        let members = group.members()?;
        let recipients = self.recipients_of(&key, &members);
        let message = api::Message {
            id: content.id,
            conversation,
            sender: None,
            system: false,
            attachment: None,
            sent_at_ms: now,
            received_at_ms: now,
            text,
            status: MessageStatus::Sent,
            recipients,
            reply_to,
        };
        let queued = self.group_mail_queue(&bytes, None);
        if let Err(e) = self.save_group(key, vec![message.clone()]) {
            self.group_mail_withdraw(&bytes);
            return Err(e);
        }
        self.groups.first_sight(&bytes);
        self.group_send_queued(&bytes, queued, &members, &[], &[]);
        Ok(message)
    }

    fn group_members(&self, key: &[u8; 32]) -> Result<Vec<GroupMember>, NodeError> {
        let (me, members, info) =
            match (self.groups.by_conv.get(key), self.groups.restored.get(key)) {
                (Some(group), _) => (group.me(), group.members()?, group.info().ok()),
                (None, Some(restored)) => (
                    restored.me,
                    restored.members.clone(),
                    Some(restored.info.clone()),
                ),
                (None, None) => {
                    return Err(NodeError::UnknownGroup(ConversationId::Group(*key).short()));
                }
            };
        let mut out = Vec::new();
        for member in members {
            let contact = self
                .engine
                .store()
                .contact(&member)?
                .is_some_and(|c| c.state == api::ContactState::Accepted);
            out.push(GroupMember {
                key: member,
                name: if member == me {
                    "you".to_owned()
                } else {
                    self.name_of(&member)
                },
                role: role_in(info.as_ref(), &member),
                contact,
            });
        }
        Ok(out)
    }

    pub(super) fn summary(&self, key: &[u8; 32]) -> Result<GroupSummary, NodeError> {
        self.groups
            .by_conv
            .get(key)
            .map(summary_of)
            .or_else(|| self.groups.restored.get(key).map(restored_summary))
            .ok_or_else(|| NodeError::UnknownGroup(ConversationId::Group(*key).short()))
    }

    /// Stores, fans out and reports a commit this profile made; members added by it get their Welcome
    /// (and not the commit, which is for the epoch before they joined).
    pub(super) fn after_own_commit(
        &mut self,
        key: [u8; 32],
        out: CommitOut,
    ) -> Result<GroupSummary, NodeError> {
        self.own_commit_lines(key, out).map(|(summary, _)| summary)
    }

    /// [`Self::after_own_commit`], also returning the system lines the commit wrote.
    pub(super) fn own_commit_lines(
        &mut self,
        key: [u8; 32],
        out: CommitOut,
    ) -> Result<(GroupSummary, Vec<api::Message>), NodeError> {
        let lines = self.commit_lines(key, None, &out.summary);
        let queued = self.group_mail_queue(&out.commit, out.rotation);
        if let Err(e) = self.save_group(key, lines.clone()) {
            self.group_mail_withdraw(&out.commit);
            return Err(e);
        }
        let members = self.group_mut(&key)?.members()?;
        let changes = &mut self.groups.own_changes;
        for (member, added) in (out.summary.added.iter().map(|w| (*w, true)))
            .chain(out.summary.removed.iter().map(|w| (*w, false)))
        {
            changes.retain(|c| !(c.group == key && c.member == member));
            changes.push_back(OwnChange {
                group: key,
                member,
                added,
                epoch: out.summary.epoch,
            });
        }
        while changes.len() > MAX_PENDING_ADDS {
            changes.pop_front();
        }
        self.groups.first_sight(&out.commit);
        self.group_send_queued(
            &out.commit,
            queued,
            &members,
            &out.summary.removed,
            &out.summary.added,
        );
        if let Some(welcome) = &out.welcome {
            self.group_fanout(welcome, TransferKind::Welcome, &out.summary.added, &[], &[]);
        }
        let summary = self.summary(&key)?;
        self.emit_group(api::Event::GroupUpdated {
            group: summary.clone(),
        });
        Ok((summary, lines))
    }

    /// The system lines a commit gives: who added, removed, renamed, promoted, set the timer. `by` is `None` for this
    /// profile's own commit.
    pub(super) fn commit_lines(
        &mut self,
        key: [u8; 32],
        by: Option<IdentityKey>,
        summary: &crate::group::CommitSummary,
    ) -> Vec<api::Message> {
        let now = self
            .groups
            .by_conv
            .get(&key)
            .and_then(|group| group.info().ok());
        let before = match &now {
            Some(now) => self.groups.infos.insert(key, now.clone()),
            None => None,
        };
        let me = self.engine.key();
        let who = |k: &IdentityKey| {
            if *k == me {
                "you".to_owned()
            } else {
                self.name_of(k)
            }
        };
        let actor = match by {
            Some(k) if k != me => self.name_of(&k),
            _ => "You".to_owned(),
        };
        let by = by.filter(|k| *k != me);
        let mut lines = Vec::new();
        // Removed and added in one commit: a member's copy restored from a backup took its place (§20.5).
        let back = |k: &&IdentityKey| summary.added.contains(k) && summary.removed.contains(k);
        for moved in summary.added.iter().filter(back) {
            lines.push(if *moved == me {
                "A copy of your profile restored from a backup took your place in this group: \
                 this computer no longer receives its messages"
                    .to_owned()
            } else {
                format!("{actor} added {} back (restored from a backup)", who(moved))
            });
        }
        for added in summary.added.iter().filter(|k| !back(k)) {
            lines.push(format!("{actor} added {}", who(added)));
        }
        for removed in summary.removed.iter().filter(|k| !back(k)) {
            if self.groups.leaving.contains(&(key, *removed)) {
                lines.push(format!("{} left", who(removed)));
            } else {
                lines.push(format!("{actor} removed {}", who(removed)));
            }
        }
        if summary.info_changed
            && let Some(now) = &now
        {
            match &before {
                Some(before) => {
                    if before.name != now.name {
                        lines.push(format!("{actor} renamed the group to \"{}\"", now.name));
                    }
                    for admin in now.admins.iter().filter(|a| !before.admins.contains(a)) {
                        lines.push(format!("{actor} made {} an admin", who(admin)));
                    }
                    if before.timer_s != now.timer_s {
                        lines.push(crate::engine::timer_line(&actor, now.timer_s));
                    }
                }
                None => lines.push(format!("{actor} changed the group's name or admins")),
            }
        }
        lines
            .into_iter()
            .map(|line| self.system_line(key, by, line))
            .collect()
    }

    /// A system line of a group's conversation, about `by`'s action (`None`: this profile's).
    pub(super) fn system_line(
        &self,
        key: [u8; 32],
        by: Option<IdentityKey>,
        text: String,
    ) -> api::Message {
        let now = now_ms();
        let mut rng = rand::make_rng::<rand::rngs::StdRng>();
        api::Message {
            id: MessageId::new_v7(now, &mut rng),
            conversation: ConversationId::Group(key),
            sender: by,
            system: true,
            attachment: None,
            sent_at_ms: now,
            received_at_ms: now,
            text,
            status: if by.is_some() {
                MessageStatus::Received
            } else {
                MessageStatus::Sent
            },
            recipients: Vec::new(),
            reply_to: None,
        }
    }

    /// Seals the group's state into the store with `lines` (messages and system lines) in one commit, then
    /// reports the lines written by others or by the system as received messages. The same commit makes
    /// the conversation's timer the group info's, and stores texts under it (`group_timers.rs`).
    pub(super) fn save_group(
        &mut self,
        key: [u8; 32],
        lines: Vec<api::Message>,
    ) -> Result<(), NodeError> {
        self.save_group_with(key, lines, Vec::new())
    }

    /// [`Self::save_group`], with the attachment rows of the lines that offer files (§19.10), stored in the
    /// same commit for each line stored. Past `MAX_ATTACHMENTS` a received offer keeps its line, without
    /// its file (logged).
    pub(super) fn save_group_with(
        &mut self,
        key: [u8; 32],
        lines: Vec<api::Message>,
        files: Vec<crate::store::AttachmentRecord>,
    ) -> Result<(), NodeError> {
        let group = self
            .groups
            .by_conv
            .get(&key)
            .ok_or_else(|| NodeError::UnknownGroup(ConversationId::Group(key).short()))?;
        let state = group.encode_state();
        // The rollback records change only at commits: their row is rewritten then, not per message.
        let history = group.history_unsaved().then(|| group.encode_history());
        let id = group.id().to_vec();
        let timer = super::group_timers::info_timer(group);
        // Deposits queued for what this commit stores go in it too (`group_mail_queue`).
        let mail = self
            .group_mail
            .persist_pending()
            .then(|| self.group_mail.encode());
        let (stored, expiries) = self.engine.store_mut().transaction(|b| {
            b.put_group(&id, &state)?;
            if let Some(history) = &history {
                b.put_group_history(&id, history)?;
            }
            if let Some(mail) = &mail {
                b.setting_put(crate::mailbox::group_client::GROUP_MAIL_SETTING, mail)?;
            }
            let (stored, expiries) =
                super::group_timers::store_lines(b, ConversationId::Group(key), timer, &lines)?;
            for record in &files {
                if !stored.iter().any(|m| m.id == record.id) {
                    continue;
                }
                match b.put_attachment(record) {
                    Err(crate::store::StoreError::TooMany { what, max }) if !record.outgoing => {
                        warn!("a group file offer is kept without its file: {max} {what} held")
                    }
                    other => other?,
                }
            }
            Ok((stored, expiries))
        })?;
        if history.is_some()
            && let Some(group) = self.groups.by_conv.get_mut(&key)
        {
            group.history_written();
        }
        if mail.is_some() {
            self.group_mail.persisted();
        }
        for at in expiries {
            self.engine.note_expiry(at);
        }
        self.gossip_sync(key);
        self.group_mail_sync(key);
        self.schedule_group_update(key);
        for message in stored {
            if message.system || message.sender.is_some() {
                self.emit(Event::MessageReceived { message });
            }
        }
        Ok(())
    }

    pub(super) fn emit_group(&self, event: api::Event) {
        let _ = self.events.send(event);
    }
}
