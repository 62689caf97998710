//! Commands from the [`Node`] handle, handled on the event loop, and the events it sends back out, with
//! contacts named the way the user knows them.

use super::*;

use super::handle::Proof;
use crate::api::{Contact, ContactChange, ContactState, ConversationId, Whoami};
use crate::privacy::PrivacySettings;
use crate::settings::NetworkSettings;
use crate::store::{KeySlotUpdate, StoreReader};

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

pub(super) enum Command {
    SendText {
        conversation: ConversationId,
        text: String,
        reply: Reply<api::Message>,
    },
    /// A text answering message `to` of the conversation (docs/protocol.md §12.5).
    SendReply {
        conversation: ConversationId,
        text: String,
        to: MessageId,
        reply: Reply<api::Message>,
    },
    /// `ids: None` marks everything unread in the conversation.
    MarkRead {
        conversation: ConversationId,
        ids: Option<Vec<MessageId>>,
        reply: Reply<Vec<MessageId>>,
    },
    Typing {
        conversation: ConversationId,
        typing: bool,
    },
    Retry {
        conversation: ConversationId,
        id: MessageId,
        reply: Reply<api::Message>,
    },
    SetTimer {
        conversation: ConversationId,
        seconds: u32,
        reply: Reply<Option<api::Message>>,
    },
    AddContact {
        link: String,
        name: Option<String>,
        reply: Reply<(Contact, ContactChange)>,
    },
    SetContactState {
        key: IdentityKey,
        state: ContactState,
        reply: Reply<Contact>,
    },
    RenameContact {
        key: IdentityKey,
        name: String,
        reply: Reply<Contact>,
    },
    RemoveContact {
        key: IdentityKey,
        reply: Reply<()>,
    },
    ClearHistory {
        conversation: ConversationId,
        reply: Reply<(u64, Vec<crate::store::AttachmentRecord>)>,
    },
    Verify {
        key: IdentityKey,
        proof: Proof,
        reply: Reply<bool>,
    },
    Whoami {
        reply: oneshot::Sender<Whoami>,
    },
    /// Replaces the signed prekey and drops the earlier ones now; answers with the new `Whoami`.
    RevokePrekeys {
        reply: Reply<Whoami>,
    },
    /// Renames this profile and sends the new card to every accepted contact; answers with the new
    /// `Whoami`.
    SetDisplayName {
        name: String,
        reply: Reply<Whoami>,
    },
    /// Writes a key slot wrapped off the loop ([`crate::store::StoreReader::rewrap`]).
    InstallKeySlot {
        update: KeySlotUpdate,
        reply: Reply<()>,
    },
    SaveSettings {
        settings: NetworkSettings,
        reply: Reply<()>,
    },
    SetPrivacy {
        settings: PrivacySettings,
        reply: Reply<()>,
    },
    SetConversationPrefs {
        prefs: crate::prefs::ConversationPrefs,
        reply: Reply<()>,
    },
    SetDrafts {
        drafts: crate::drafts::Drafts,
        reply: Reply<()>,
    },
    /// A reader of the store, for a read that runs off the loop.
    Reader {
        reply: oneshot::Sender<StoreReader>,
    },
    Dial {
        addr: Multiaddr,
        reply: Reply<()>,
    },
    Status {
        reply: oneshot::Sender<NetStatus>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// Stops the loop and hands the engine back (to start again with another configuration).
    Stop {
        reply: oneshot::Sender<Box<Engine>>,
    },
    /// A group operation (`groups.rs`).
    Group(super::groups::GroupCommand),
    /// Rows for files (`files.rs`).
    Files(super::files::FilesCommand),
}

/// The contact of a conversation this build can send to.
fn direct(conversation: &ConversationId) -> Result<IdentityKey, NodeError> {
    conversation
        .direct()
        .ok_or(NodeError::Engine(EngineError::UnknownContact(format!(
            "{conversation:?}"
        ))))
}

impl EventLoop {
    pub(super) fn handle_command(&mut self, command: Command) {
        match command {
            Command::SendText {
                conversation,
                text,
                reply,
            } if conversation.is_group() => {
                let _ = reply.send(self.group_send(conversation, text, None));
            }
            Command::SendReply {
                conversation,
                text,
                to,
                reply,
            } => {
                let _ = reply.send(self.send_reply(conversation, text, to));
            }
            Command::MarkRead {
                conversation,
                ids,
                reply,
            } if conversation.is_group() => {
                let _ = reply.send(self.group_mark_read(conversation, ids));
            }
            Command::Group(command) => self.handle_group_command(command),
            Command::SendText {
                conversation,
                text,
                reply,
            } => match direct(&conversation) {
                Ok(to) => self.send_texts(vec![(to, text, reply)]),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::MarkRead {
                conversation,
                ids,
                reply,
            } => {
                let result = direct(&conversation).and_then(|contact| {
                    let ids = match ids {
                        Some(ids) => ids,
                        None => self.unread_ids(&contact)?,
                    };
                    Ok((contact, self.engine.mark_read(&contact, &ids)?))
                });
                match result {
                    Ok((contact, read)) => {
                        let _ = reply.send(Ok(read));
                        self.flush_for(&contact);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Typing {
                conversation,
                typing,
            } => {
                if let Some(contact) = conversation.direct() {
                    self.send_typing(contact, typing);
                }
            }
            Command::Retry {
                conversation,
                id,
                reply,
            } => {
                let result = direct(&conversation)
                    .and_then(|contact| Ok((contact, self.engine.retry(&contact, &id)?)));
                match result {
                    Ok((contact, message)) => {
                        let _ = reply.send(Ok(message));
                        self.flush_for(&contact);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::SetTimer {
                conversation,
                seconds,
                reply,
            } => {
                let result = direct(&conversation)
                    .and_then(|contact| Ok((contact, self.engine.set_timer(&contact, seconds)?)));
                match result {
                    Ok((contact, line)) => {
                        let _ = reply.send(Ok(line));
                        self.flush_for(&contact);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::AddContact { link, name, reply } => {
                let result = crate::profile::add_contact(&mut self.engine, &link, name.as_deref());
                if let Ok((contact, _)) = &result {
                    self.forget_name(&contact.key);
                    if let Some(peer) = peer_id_of(&contact.key) {
                        // Looked up and dialled now, so it shows online with no message sent.
                        self.watch_contact(peer, std::time::Instant::now());
                        self.reach_timeout();
                    }
                }
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Command::SetContactState { key, state, reply } => {
                let result = self.engine.set_contact_state(&key, state);
                if let (Ok(record), Some(peer)) = (&result, peer_id_of(&key)) {
                    if record.state == crate::api::ContactState::Accepted {
                        self.watch_contact(peer, std::time::Instant::now());
                    } else {
                        self.unwatch_contact(peer);
                    }
                }
                let _ = reply.send(result.map(Contact::from).map_err(NodeError::from));
            }
            Command::RenameContact { key, name, reply } => {
                self.forget_name(&key);
                let result = self.engine.rename_contact(&key, &name);
                let _ = reply.send(result.map(Contact::from).map_err(NodeError::from));
            }
            Command::RemoveContact { key, reply } => {
                self.forget_name(&key);
                if let Some(peer) = peer_id_of(&key) {
                    self.unwatch_contact(peer);
                }
                let _ = reply.send(self.engine.remove_contact(&key).map_err(NodeError::from));
            }
            Command::ClearHistory {
                conversation,
                reply,
            } => {
                let result = self.engine.clear_history(&conversation);
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Command::Verify { key, proof, reply } => {
                let result = match proof {
                    Proof::SafetyNumber(digits) => self.engine.verify(&key, &digits),
                    Proof::Card(link) => self.engine.verify_card(&key, &link),
                };
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Command::Whoami { reply } => {
                let _ = reply.send(self.engine.whoami());
            }
            Command::RevokePrekeys { reply } => {
                let result = self.engine.revoke_prekeys().map(|()| self.engine.whoami());
                let _ = reply.send(result.map_err(NodeError::from));
                self.flush_card_updates();
            }
            Command::SetDisplayName { name, reply } => {
                let result = self
                    .engine
                    .set_display_name(&name)
                    .map(|_| self.engine.whoami());
                let _ = reply.send(result.map_err(NodeError::from));
                self.flush_card_updates();
            }
            Command::InstallKeySlot { update, reply } => {
                let result = self.engine.store_mut().install_key_slot(update);
                let _ = reply.send(result.map_err(NodeError::from));
                // The old key slot's page is overwritten now, or as soon as no read is in progress.
                self.engine.compact_if_pending();
            }
            Command::SaveSettings { settings, reply } => {
                let result = settings.save(self.engine.store_mut());
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Command::SetPrivacy { settings, reply } => {
                let result = self.engine.set_privacy(settings);
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Command::SetConversationPrefs { prefs, reply } => {
                let result = prefs.save(self.engine.store_mut());
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Command::SetDrafts { drafts, reply } => {
                let result = drafts.save(self.engine.store_mut());
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Command::Reader { reply } => {
                let _ = reply.send(self.engine.reader());
            }
            Command::Dial { addr, reply } => {
                let result = self.swarm.dial(addr.clone()).map_err(|e| NodeError::Dial {
                    addr,
                    reason: e.to_string(),
                });
                let _ = reply.send(result);
            }
            Command::Status { reply } => {
                let status = NetStatus {
                    peer_id: *self.swarm.local_peer_id(),
                    listen_addrs: self.swarm.listeners().cloned().collect(),
                    connected_peers: self.swarm.connected_peers().copied().collect(),
                    outbox_len: self
                        .engine
                        .store()
                        .outbox_len()
                        .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
                        .saturating_add(self.group_mail.pending()),
                    lan_only: self.lan_only,
                    nat: self.nat.clone(),
                    lan_peers: self.mdns_peers.len(),
                    mailboxes: self.my_mailboxes.iter().map(|(peer, _)| *peer).collect(),
                    lan_mailboxes: self.lan_mailboxes.clone(),
                    relayed: self.reach.relayed(),
                    published_addrs: self.reach.published().to_vec(),
                    contacts: self.contacts_reach(),
                    refusals: self.refusals(),
                    store: self.engine.store().health(),
                };
                let _ = reply.send(status);
            }
            Command::Files(command) => self.handle_files(command),
            Command::Shutdown { .. } | Command::Stop { .. } => {}
        }
    }

    /// The unread incoming messages of a 1:1 conversation (the newest few hundred).
    fn unread_ids(&self, contact: &IdentityKey) -> Result<Vec<MessageId>, NodeError> {
        let page = self
            .engine
            .store()
            .conversation_page(contact, None, MAX_READ_PAGE)?;
        Ok(page
            .messages
            .into_iter()
            .filter(|m| !m.outgoing() && m.status == MessageStatus::Received)
            .map(|m| m.id)
            .collect())
    }

    /// A reply (docs/protocol.md §12.5): to a group as its texts go; to a contact by the engine's one-at-a-time
    /// send, queued in the outbox and delivered like a text.
    fn send_reply(
        &mut self,
        conversation: ConversationId,
        text: String,
        to: MessageId,
    ) -> Result<api::Message, NodeError> {
        if conversation.is_group() {
            let reader = self.engine.store().reader();
            if reader
                .message(&conversation, &to)
                .map_err(EngineError::Store)?
                .is_none()
            {
                return Err(EngineError::UnknownMessage.into());
            }
            return self.group_send(conversation, text, Some(to));
        }
        let contact = direct(&conversation)?;
        let (message, entry) = self.engine.send_reply(&contact, &text, to)?;
        self.deliver_now(entry);
        Ok(message)
    }

    pub(super) fn send_typing(&mut self, contact: IdentityKey, typing: bool) {
        let Some(peer) = peer_id_of(&contact) else {
            return;
        };
        if !self.swarm.is_connected(&peer) {
            return;
        }
        match self.engine.send_typing(&contact, typing) {
            Ok(None) => {}
            Ok(Some(envelope)) => match EnvelopeRequest::from_envelope(&envelope) {
                Ok(request) => {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .envelope
                        .send_request(&peer, request);
                    self.fire_and_forget.insert(id);
                }
                Err(e) => warn!(error = %e, "typing envelope does not fit a frame"),
            },
            Err(e) => debug!(error = %e, "cannot send typing"),
        }
    }

    /// The name the user knows a contact by (their peer id when they are not a contact).
    pub(super) fn name_of(&self, key: &IdentityKey) -> String {
        if let Some(name) = self.names.borrow().get(key) {
            return name.clone();
        }
        match self.engine.store().contact(key) {
            Ok(Some(contact)) => {
                let mut names = self.names.borrow_mut();
                if names.len() >= MAX_NAMES {
                    names.clear();
                }
                names.insert(*key, contact.local_name.clone());
                contact.local_name
            }
            _ => key.peer_id(),
        }
    }

    /// A command changed this contact: its name is read again for the next event.
    fn forget_name(&self, key: &IdentityKey) {
        self.names.borrow_mut().remove(key);
    }

    /// Sends an event to every subscriber, naming the contacts it is about.
    pub(super) fn emit(&self, event: Event) {
        let event = match event {
            Event::Listening { address } => api::Event::Listening { address },
            Event::MessageReceived { message } => {
                let sender_name = match message.sender.or(message.conversation.direct()) {
                    Some(sender) => self.name_of(&sender),
                    None => String::new(),
                };
                api::Event::MessageReceived {
                    message,
                    sender_name,
                }
            }
            Event::ContactRequest { contact } => api::Event::ContactRequest {
                contact: contact.into(),
            },
            Event::KeyChanged { contact } => api::Event::KeyChanged {
                name: self.name_of(&contact),
                contact,
            },
            Event::ContactUpdated { contact } => api::Event::ContactUpdated {
                contact: contact.into(),
            },
            Event::StatusChanged {
                contact,
                id,
                status,
            } => api::Event::StatusChanged {
                conversation: ConversationId::Direct(contact),
                title: self.name_of(&contact),
                id,
                status,
            },
            Event::Typing { contact, typing } => api::Event::Typing {
                conversation: ConversationId::Direct(contact),
                name: self.name_of(&contact),
                contact,
                typing,
            },
            Event::ContactOnline { contact, online } => api::Event::ContactOnline {
                name: self.name_of(&contact),
                contact,
                online,
            },
            Event::Peers { connected } => api::Event::Peers { connected },
            Event::UnknownContent { contact, kind } => api::Event::UnknownContent {
                name: self.name_of(&contact),
                contact,
                kind,
            },
            Event::Undecryptable { contact } => api::Event::Undecryptable {
                name: self.name_of(&contact),
                contact,
            },
            Event::MailboxRecordPublished => api::Event::MailboxRecordPublished,
            Event::AddressesPublished { addresses } => api::Event::AddressesPublished { addresses },
            Event::ContactReach { contact, reach } => api::Event::ContactReach {
                name: self.name_of(&contact),
                contact,
                reach,
            },
            Event::Nat { status } => api::Event::Nat { status },
            Event::MessagesExpired { conversation, ids } => {
                api::Event::MessagesExpired { conversation, ids }
            }
            Event::BackupWritten { path } => api::Event::BackupWritten { path },
            Event::MailboxChecked { server, envelopes } => {
                api::Event::MailboxChecked { server, envelopes }
            }
        };
        // No subscriber is not an error: the CLI may not listen.
        let _ = self.events.send(event);
    }
}

/// At most this many of a conversation's newest messages are looked at by "mark everything read".
const MAX_READ_PAGE: usize = 500;
