//! Group mail on the loop (docs/protocol.md §18.6): carries out what the group mail machine
//! (`crate::mailbox::group_client`) asks for. It opens a new group's queue, deposits this profile's group
//! messages once per group server, fetches every group's queue from every one of its servers (signed with
//! the group's current epoch key) and hands what it fetched to the same inbound path as gossip and 1:1
//! copies, which drops what it already had by hash and by `(sender, message id)`.

use std::time::Instant;

use super::group_gossip::Route;
use super::groups::conv_key;
use super::*;
use crate::group::GroupError;
use crate::mailbox::Refusal;
use crate::mailbox::group_client::{GROUP_MAIL_SETTING, GroupKey, GroupMailAction};
use crate::mailbox::group_wire::{GroupRequest, GroupResponse, QueueAuth, SignedRotation};
use tern_protocol::group_wire::TransferKind;

/// Group mail requests in flight at once (beside the personal mail client's).
pub const MAX_GROUP_MAIL_REQUESTS: usize = 64;

/// What [`EventLoop::group_mail_queue`] did with a group message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Queued {
    /// Its group has no queue: it goes the 1:1 way to whoever gossip does not reach.
    NoQueue,
    /// Deposits wait for each group server.
    Deposited,
    /// The queue is full: it goes 1:1 to every member.
    NoRoom,
}

/// What an outstanding group mail request was for.
pub(super) enum GroupMailCall {
    Send { server: PeerId, id: u64 },
    Challenge { server: PeerId, group: GroupKey },
    Fetch { server: PeerId, group: GroupKey },
}

impl EventLoop {
    /// At start: the persisted cursors and deposits, then every stored group's queue.
    pub(super) fn group_mail_start(&mut self) {
        match self.engine.store().setting_get(GROUP_MAIL_SETTING) {
            Ok(Some(bytes)) => {
                if let Err(e) = self.group_mail.load(&bytes, Instant::now()) {
                    warn!(error = %e, "the group mail state does not decode; starting afresh");
                }
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot read the group mail state"),
        }
        let keys: Vec<GroupKey> = self.groups.by_conv.keys().copied().collect();
        for key in keys {
            self.group_mail_sync(key);
        }
    }

    /// Tells the machine a group's queue as its state has it now (none once this profile is no member).
    pub(super) fn group_mail_sync(&mut self, key: GroupKey) {
        let group = self.groups.by_conv.get(&key).filter(|g| g.is_active());
        let queue = group.and_then(|g| g.queue()).map(|q| (q.id, q.servers));
        let creator = group.and_then(|g| g.info().ok()).map(|i| i.creator);
        if let (Some((_, servers)), Some(creator)) = (&queue, creator)
            && !self.group_mail.has_queue(&key)
        {
            self.learn_group_servers(servers, &creator);
        }
        self.group_mail.handle_group(key, queue);
        self.run_group_mail();
    }

    /// The info names a group's servers by PeerId only: their addresses come from the creator's card (its
    /// mailbox servers at creation, which are the group's), when it is a contact.
    fn learn_group_servers(&mut self, servers: &[PeerId], creator: &IdentityKey) {
        if servers.iter().all(|s| self.known_addrs.contains_key(s)) {
            return;
        }
        let published = match self.engine.store().contact(creator) {
            Ok(Some(contact)) => tern_protocol::ContactCard::decode(&contact.card)
                .map(|card| card.details().mailboxes.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let named: Vec<tern_protocol::MailboxNode> = published
            .into_iter()
            .filter(|m| PeerId::from_bytes(&m.peer_id).is_ok_and(|p| servers.contains(&p)))
            .collect();
        self.learn_servers(&named);
    }

    /// Dials a group server that is not connected, with the addresses known for it (the request then
    /// waits for that connection, or fails and is tried again).
    fn reach_group_server(&mut self, server: PeerId) {
        if self.swarm.is_connected(&server) {
            return;
        }
        let addrs = self.known_addrs.get(&server).cloned().unwrap_or_default();
        if addrs.is_empty() {
            return;
        }
        if let Err(e) = self
            .swarm
            .dial(DialOpts::peer_id(server).addresses(addrs).build())
        {
            debug!(error = %e, "cannot dial a group server");
        }
    }

    /// Opens the queue of a group this profile just created, with the creation epoch's key.
    pub(super) fn group_mail_open(&mut self, key: GroupKey) {
        let Some(group) = self.groups.by_conv.get(&key) else {
            return;
        };
        let Some(queue) = group.queue() else {
            return;
        };
        let epoch = group.epoch();
        let signer = match group.queue_key() {
            Ok(signer) => signer,
            Err(e) => {
                warn!(error = %e, "cannot open the new group's mail queue");
                return;
            }
        };
        let signature = signer.sign_open(&queue.id, epoch);
        self.group_mail
            .open(key, epoch, signer.public(), signature, Instant::now());
        self.run_group_mail();
    }

    /// Sends a group message this profile made (or makes again): deposited once per group server when the
    /// group has a queue, published by gossip, and over 1:1 to the members gossip does not reach (only those
    /// connected now, when it was deposited: the others read the queue).
    pub(super) fn group_send_out(
        &mut self,
        bytes: &[u8],
        members: &[IdentityKey],
        extra: &[IdentityKey],
        skip: &[IdentityKey],
        rotation: Option<SignedRotation>,
    ) {
        let queued = self.group_mail_queue(bytes, rotation);
        self.group_send_queued(bytes, queued, members, extra, skip);
    }

    /// The first half of [`Self::group_send_out`], before the message is stored: its deposits join the
    /// group mail state, which the commit storing the message then writes too (`save_group_with`), so a
    /// crash keeps both or neither. Nothing leaves yet. If that commit fails, [`Self::group_mail_withdraw`].
    pub(super) fn group_mail_queue(
        &mut self,
        bytes: &[u8],
        rotation: Option<SignedRotation>,
    ) -> Queued {
        match crate::group::group_id_of(bytes).map(|id| conv_key(&id)) {
            Ok(key) if self.group_mail.has_queue(&key) => {
                if self
                    .group_mail
                    .deposit(key, bytes, rotation, Instant::now())
                {
                    Queued::Deposited
                } else {
                    Queued::NoRoom
                }
            }
            _ => Queued::NoQueue,
        }
    }

    /// Takes back what [`Self::group_mail_queue`] queued for a message that could not be stored.
    pub(super) fn group_mail_withdraw(&mut self, bytes: &[u8]) {
        self.group_mail.withdraw(bytes, Instant::now());
    }

    /// The second half of [`Self::group_send_out`], once the message is stored.
    pub(super) fn group_send_queued(
        &mut self,
        bytes: &[u8],
        queued: Queued,
        members: &[IdentityKey],
        extra: &[IdentityKey],
        skip: &[IdentityKey],
    ) {
        if queued != Queued::NoQueue {
            self.run_group_mail();
        }
        self.group_spread(bytes, members, extra, skip, &Route::Publish);
        if queued == Queued::NoRoom {
            // The queue has no room: every member the 1:1 way.
            self.group_fanout(bytes, TransferKind::GroupMessage, members, extra, skip);
        }
    }

    /// Whether a group message is for a group with a queue (its offline members read the queue).
    pub(super) fn in_group_queue(&self, bytes: &[u8]) -> bool {
        crate::group::group_id_of(bytes).is_ok_and(|id| self.group_mail.has_queue(&conv_key(&id)))
    }

    fn group_mail_request(
        &mut self,
        server: PeerId,
        request: GroupRequest,
        call: GroupMailCall,
    ) -> bool {
        if self.group_mail_calls.len() >= MAX_GROUP_MAIL_REQUESTS {
            return false;
        }
        self.reach_group_server(server);
        let id = self
            .swarm
            .behaviour_mut()
            .mailbox
            .send_request(&server, MailboxRequest::Group(request));
        self.group_mail_calls.insert(id, call);
        true
    }

    /// Carries out what the group mail machine asked for.
    pub(super) fn run_group_mail(&mut self) {
        while let Some(action) = self.group_mail.poll_action() {
            match action {
                GroupMailAction::Send {
                    server,
                    id,
                    request,
                } => {
                    let call = GroupMailCall::Send { server, id };
                    if !self.group_mail_request(server, request, call) {
                        self.group_mail.handle_failed(server, id, Instant::now());
                    }
                }
                GroupMailAction::Fallback { group, message } => {
                    let members = self
                        .groups
                        .by_conv
                        .get(&group)
                        .and_then(|g| g.members().ok())
                        .unwrap_or_default();
                    debug!("no group server stored a group message; it goes over 1:1");
                    self.group_fanout(&message, TransferKind::GroupMessage, &members, &[], &[]);
                }
                GroupMailAction::Challenge { server, group } => {
                    if self.group_mail_calls.len() >= MAX_GROUP_MAIL_REQUESTS {
                        self.group_mail.handle_fetch_failed(server, group);
                        continue;
                    }
                    self.reach_group_server(server);
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .mailbox
                        .send_request(&server, MailboxRequest::Challenge);
                    self.group_mail_calls
                        .insert(id, GroupMailCall::Challenge { server, group });
                }
                GroupMailAction::Fetch {
                    server,
                    group,
                    queue,
                    nonce,
                    cursor,
                    max,
                } => {
                    let signer = self
                        .groups
                        .by_conv
                        .get(&group)
                        .ok_or(GroupError::NotMember)
                        .and_then(|g| g.queue_key());
                    let Ok(signer) = signer else {
                        self.group_mail.handle_fetch_failed(server, group);
                        continue;
                    };
                    let auth = QueueAuth {
                        key: signer.public(),
                        nonce,
                        signature: signer.sign_fetch(&server.to_bytes(), &nonce, &queue, cursor),
                    };
                    let request = GroupRequest::Fetch {
                        queue,
                        auth,
                        cursor,
                        max,
                    };
                    let call = GroupMailCall::Fetch { server, group };
                    if !self.group_mail_request(server, request, call) {
                        self.group_mail.handle_fetch_failed(server, group);
                    }
                }
                GroupMailAction::Persist => {
                    let state = self.group_mail.encode();
                    if let Err(e) = self
                        .engine
                        .store_mut()
                        .setting_put(GROUP_MAIL_SETTING, &state)
                    {
                        warn!(error = %e, "cannot store the group mail state");
                    }
                }
            }
        }
    }

    /// The answer to a mailbox request, if it was a group mail request (`None`: it failed). `false` if it
    /// was not one of ours.
    pub(super) fn group_mail_answer(
        &mut self,
        request: &request_response::OutboundRequestId,
        response: Option<MailboxResponse>,
    ) -> bool {
        let Some(call) = self.group_mail_calls.remove(request) else {
            return false;
        };
        let now = Instant::now();
        match (call, response) {
            (
                GroupMailCall::Send { server, id },
                Some(
                    MailboxResponse::Deposited { .. }
                    | MailboxResponse::Duplicate { .. }
                    | MailboxResponse::Group(GroupResponse::Opened),
                ),
            ) => self.group_mail.handle_stored(server, id, now),
            (GroupMailCall::Send { server, id }, Some(MailboxResponse::Refused(refusal)))
                if refusal != Refusal::RateLimited =>
            {
                debug!(?refusal, "a group server refused a group message");
                self.group_mail.handle_refused(server, id, now);
            }
            (GroupMailCall::Send { server, id }, other) => {
                debug!(?other, "a group server did not store a group message yet");
                self.group_mail.handle_failed(server, id, now);
            }
            (
                GroupMailCall::Challenge { server, group },
                Some(MailboxResponse::Nonce { nonce }),
            ) => self.group_mail.handle_nonce(server, group, nonce),
            (
                GroupMailCall::Fetch { server, group },
                Some(MailboxResponse::Group(GroupResponse::Messages {
                    messages,
                    next_cursor,
                    more,
                })),
            ) => {
                let count = messages.len();
                for queued in messages {
                    self.group_message_via(None, queued.message, Route::Publish);
                }
                self.group_mail
                    .handle_page(server, group, count, next_cursor, more);
            }
            (
                GroupMailCall::Challenge { server, group } | GroupMailCall::Fetch { server, group },
                other,
            ) => {
                debug!(?other, "a group queue fetch was refused");
                self.group_mail.handle_fetch_failed(server, group);
            }
        }
        self.run_group_mail();
        true
    }
}
