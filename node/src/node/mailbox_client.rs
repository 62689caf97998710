//! The mailbox client, the actor's side of [`MailboxClient`](crate::mailbox::client::MailboxClient): it
//! signs and sends what the machine asks for (challenges, fetches, acknowledgements), stores fetched pages
//! and reports back; and it sends our deposits' answers to the delivery machine.

use std::time::Instant;

use super::*;
use crate::mailbox::client::ClientAction;

impl EventLoop {
    pub(super) fn is_my_mailbox(&self, peer: &PeerId) -> bool {
        self.my_mailboxes.iter().any(|(p, _)| p == peer) || self.lan_mailboxes.contains(peer)
    }

    pub(super) fn mailbox_request(
        &mut self,
        server: PeerId,
        request: MailboxRequest,
        call: MailboxCall,
    ) -> bool {
        if self.mailbox_calls.len() >= MAX_MAILBOX_REQUESTS {
            return false;
        }
        let id = self
            .swarm
            .behaviour_mut()
            .mailbox
            .send_request(&server, request);
        self.mailbox_calls.insert(id, call);
        true
    }

    /// Carries out what the mailbox client machine asked for.
    pub(super) fn run_client(&mut self) {
        while let Some(action) = self.mailbox_client.poll_action() {
            match action {
                ClientAction::Challenge { server } => {
                    let call = MailboxCall::Challenge { server };
                    if !self.mailbox_request(server, MailboxRequest::Challenge, call) {
                        self.mailbox_client.handle_refused(server);
                    }
                }
                ClientAction::Fetch { server, nonce } => {
                    let auth = self.owner_auth(server, nonce);
                    let max = u16::try_from(MAX_FETCH_ENVELOPES).unwrap_or(u16::MAX);
                    let request = MailboxRequest::Fetch { auth, max };
                    if !self.mailbox_request(server, request, MailboxCall::Fetch { server }) {
                        self.mailbox_client.handle_refused(server);
                    }
                }
                ClientAction::FetchPage {
                    server,
                    nonce,
                    from,
                    ack,
                } => {
                    let auth = self.owner_auth(server, nonce);
                    let max = u16::try_from(MAX_FETCH_ENVELOPES).unwrap_or(u16::MAX);
                    let request = MailboxRequest::FetchPage {
                        auth,
                        from,
                        max,
                        ack,
                    };
                    if !self.mailbox_request(server, request, MailboxCall::FetchPage { server }) {
                        self.mailbox_client.handle_refused(server);
                    }
                }
                ClientAction::Ack { server, nonce, ids } => {
                    let auth = self.owner_auth(server, nonce);
                    let request = MailboxRequest::Ack { auth, ids };
                    if !self.mailbox_request(server, request, MailboxCall::Ack { server }) {
                        self.mailbox_client
                            .handle_acked(server, false, Instant::now());
                    }
                }
                ClientAction::Dial { server } => {
                    if let Some((_, addr)) = self.my_mailboxes.iter().find(|(p, _)| *p == server) {
                        let addr = addr.clone();
                        if let Err(e) = self.swarm.dial(addr) {
                            debug!(error = %e, "cannot dial mailbox server");
                        }
                    }
                }
                ClientAction::Checked { server, envelopes } => {
                    self.emit(Event::MailboxChecked { server, envelopes });
                }
            }
        }
    }

    /// Mail for `recipient` is deposited with `server`: if it announces a file this profile sent, the server
    /// is asked to hold that file too, for when the recipient comes back and this computer is off (§19.9).
    pub(super) fn hold_file(&mut self, server: PeerId, recipient: IdentityKey, message: MessageId) {
        let Some(wire) = self.files.clone() else {
            return;
        };
        let conversation = crate::api::ConversationId::Direct(recipient);
        match self.engine.store().attachment(&conversation, &message) {
            Ok(Some(record)) if record.outgoing => wire.hold(server, record),
            // A member's copy of a group file's announcement (§19.10).
            Ok(_) => {
                if let Some(record) = wire.copy_of(&message) {
                    wire.hold(server, record);
                }
            }
            Err(e) => debug!(error = %e, "cannot read a deposited message's file"),
        }
    }

    /// A mailbox server of ours connected (or was found on the LAN): fetch from it.
    pub(super) fn start_fetch(&mut self, server: PeerId) {
        self.mailbox_client.handle_server_added(server);
        self.run_client();
    }

    pub(super) fn owner_auth(&self, server: PeerId, nonce: [u8; NONCE_LEN]) -> OwnerAuth {
        OwnerAuth::sign(self.engine.identity(), &server.to_bytes(), nonce)
    }

    /// Stores fetched envelopes, then acknowledges those that are safely stored (or can never be); `next`
    /// is a paged fetch's cursor.
    pub(super) fn take_fetched(
        &mut self,
        server: PeerId,
        envelopes: Vec<Vec<u8>>,
        more: bool,
        next: Option<u64>,
    ) {
        let mut done = Vec::with_capacity(envelopes.len());
        // The whole page stored with one durable commit (group commit), acknowledged only after it. A new
        // message, or a copy of one stored before (its sender never got our ack for the first copy), earns
        // its sender a delivery receipt, queued by the engine in that same commit (one per sender).
        let slices: Vec<(&[u8], Via)> = envelopes
            .iter()
            .map(|e| (e.as_slice(), Via::Mailbox))
            .collect();
        let outcomes = self.engine.receive_many(&slices, now_ms());
        for (inbound, bytes) in outcomes.into_iter().zip(&envelopes) {
            match inbound.outcome {
                Ok(received) => {
                    self.report(received);
                    done.extend(inbound.envelope_id);
                }
                // A store failure is worth another try; anything else will never decrypt.
                Err(ReceiveError::Store(e)) if e.is_disk_failing() => {
                    debug!(error = %e, "cannot store fetched mail; will fetch again")
                }
                Err(ReceiveError::Store(e)) => {
                    warn!(error = %e, "cannot store fetched mail; will fetch again")
                }
                Err(e) => {
                    debug!(error = %e, "dropping undecryptable mail");
                    self.note_undecryptable(&e, bytes);
                    done.extend(inbound.envelope_id);
                }
            }
        }
        match next {
            Some(next) => self.mailbox_client.handle_cursor_page_stored(
                server,
                done,
                next,
                more,
                Instant::now(),
            ),
            None => self
                .mailbox_client
                .handle_page_stored(server, done, more, Instant::now()),
        }
        self.run_client();
        // A contact that lost its state had what waited for it sealed again: send that.
        self.flush_card_updates();
    }

    pub(super) fn handle_mailbox_event(
        &mut self,
        event: request_response::Event<MailboxRequest, MailboxResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                // Answered after this wake-up's group commit (`drain_swarm`).
                request_response::Message::Request {
                    request, channel, ..
                } => self.take_mailbox_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if self.group_mail_calls.contains_key(&request_id) {
                        self.group_mail_answer(&request_id, Some(response));
                        return;
                    }
                    if let Some(call) = self.mailbox_calls.remove(&request_id) {
                        self.mailbox_answer(call, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if self.group_mail_answer(&request_id, None) {
                    return;
                }
                if let Some(call) = self.mailbox_calls.remove(&request_id) {
                    debug!(error = %error, "mailbox request failed");
                    match call {
                        MailboxCall::Challenge { server } | MailboxCall::Fetch { server, .. } => {
                            self.mailbox_client.handle_refused(server);
                            self.run_client();
                        }
                        MailboxCall::Deposit {
                            server, message, ..
                        } => self.deposit_answered(server, message, false),
                        MailboxCall::Ack { server } => {
                            self.mailbox_client
                                .handle_acked(server, false, Instant::now());
                            self.run_client();
                        }
                        MailboxCall::FetchPage { server } => {
                            self.mailbox_client.handle_page_refused(server, None);
                            self.run_client();
                        }
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn mailbox_answer(&mut self, call: MailboxCall, response: MailboxResponse) {
        match (call, response) {
            (MailboxCall::Challenge { server }, MailboxResponse::Nonce { nonce }) => {
                self.mailbox_client.handle_nonce(server, nonce);
            }
            (MailboxCall::Fetch { server, .. }, MailboxResponse::Envelopes { envelopes, more }) => {
                self.take_fetched(server, envelopes, more, None);
            }
            (
                MailboxCall::FetchPage { server },
                MailboxResponse::Page {
                    envelopes,
                    next,
                    more,
                    ..
                },
            ) => self.take_fetched(server, envelopes, more, Some(next)),
            (MailboxCall::FetchPage { server }, MailboxResponse::Refused(refusal)) => {
                debug!(reason = refusal.name(), "mailbox refused a paged fetch");
                self.mailbox_client
                    .handle_page_refused(server, Some(refusal));
            }
            (
                MailboxCall::Deposit {
                    server,
                    message,
                    recipient,
                },
                MailboxResponse::Deposited { .. } | MailboxResponse::Duplicate { .. },
            ) => {
                self.deposit_answered(server, message, true);
                self.hold_file(server, recipient, message);
            }
            (
                MailboxCall::Deposit {
                    server, message, ..
                },
                response,
            ) => {
                debug!(?response, "mailbox refused a deposit");
                self.deposit_answered(server, message, false);
            }
            (MailboxCall::Ack { server }, response) => {
                let ok = matches!(response, MailboxResponse::Acked { .. });
                self.mailbox_client.handle_acked(server, ok, Instant::now());
            }
            (
                MailboxCall::Challenge { server }
                | MailboxCall::Fetch { server, .. }
                | MailboxCall::FetchPage { server },
                response,
            ) => {
                debug!(?response, "mailbox refused a fetch");
                self.mailbox_client.handle_refused(server);
            }
        }
        self.run_client();
    }
}
