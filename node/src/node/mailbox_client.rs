//! The mailbox client: fetching this profile's mail (challenge, fetch, acknowledge) and the answers to our
//! deposits.

use super::*;

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

    /// Asks every connected mailbox server of ours for new mail.
    pub(super) fn fetch_all(&mut self) {
        let servers: Vec<PeerId> = self
            .my_mailboxes
            .iter()
            .map(|(p, _)| *p)
            .chain(self.lan_mailboxes.iter().copied())
            .collect();
        for server in servers {
            if self.swarm.is_connected(&server) {
                self.start_fetch(server);
            } else if let Some((_, addr)) = self.my_mailboxes.iter().find(|(p, _)| *p == server) {
                let addr = addr.clone();
                if let Err(e) = self.swarm.dial(addr) {
                    debug!(error = %e, "cannot dial mailbox server");
                }
            }
        }
    }

    pub(super) fn start_fetch(&mut self, server: PeerId) {
        if self.fetching.contains_key(&server) {
            return;
        }
        self.fetching.insert(server, 0);
        if !self.mailbox_request(
            server,
            MailboxRequest::Challenge,
            MailboxCall::Challenge { server },
        ) {
            self.fetching.remove(&server);
        }
    }

    pub(super) fn owner_auth(&self, server: PeerId, nonce: [u8; NONCE_LEN]) -> OwnerAuth {
        OwnerAuth::sign(self.engine.identity(), &server.to_bytes(), nonce)
    }

    pub(super) fn fetch_page(&mut self, server: PeerId, nonce: [u8; NONCE_LEN]) {
        let auth = self.owner_auth(server, nonce);
        let max = u16::try_from(MAX_FETCH_ENVELOPES).unwrap_or(u16::MAX);
        if !self.mailbox_request(
            server,
            MailboxRequest::Fetch { auth, max },
            MailboxCall::Fetch { server, nonce },
        ) {
            self.fetching.remove(&server);
        }
    }

    /// Stores fetched envelopes, then acknowledges those that are safely stored (or can never be).
    pub(super) fn take_fetched(
        &mut self,
        server: PeerId,
        nonce: [u8; NONCE_LEN],
        envelopes: Vec<Vec<u8>>,
        more: bool,
    ) {
        if let Some(count) = self.fetching.get_mut(&server) {
            *count += envelopes.len();
        }
        let mut done = Vec::with_capacity(envelopes.len());
        // The whole page stored with one durable commit (group commit), acknowledged only after it. A new
        // message, or a copy of one stored before (its sender never got our ack for the first copy), earns
        // its sender a delivery receipt, queued by the engine in that same commit (one per sender).
        let slices: Vec<(&[u8], Via)> = envelopes
            .iter()
            .map(|e| (e.as_slice(), Via::Mailbox))
            .collect();
        for inbound in self.engine.receive_many(&slices, now_ms()) {
            match inbound.outcome {
                Ok(received) => {
                    self.report(received);
                    done.extend(inbound.envelope_id);
                }
                // A store failure is worth another try; anything else will never decrypt.
                Err(ReceiveError::Store(e)) => {
                    warn!(error = %e, "cannot store fetched mail; will fetch again")
                }
                Err(e) => {
                    debug!(error = %e, "dropping undecryptable mail");
                    done.extend(inbound.envelope_id);
                }
            }
        }
        if !done.is_empty() {
            let auth = self.owner_auth(server, nonce);
            self.mailbox_request(
                server,
                MailboxRequest::Ack { auth, ids: done },
                MailboxCall::Ack,
            );
        }
        if more {
            self.fetch_page(server, nonce);
        } else if let Some(envelopes) = self.fetching.remove(&server) {
            self.emit(Event::MailboxChecked { server, envelopes });
        }
    }

    pub(super) fn handle_mailbox_event(
        &mut self,
        event: request_response::Event<MailboxRequest, MailboxResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let deposited = match &request {
                        MailboxRequest::Deposit { envelope } => Envelope::decode(envelope).ok(),
                        _ => None,
                    };
                    let garbage = matches!(request, MailboxRequest::Invalid);
                    let response = match self.mailbox_server.as_mut() {
                        Some(server) => server.handle(&peer, request, now_ms() / 1000),
                        None => MailboxResponse::Refused(crate::mailbox::Refusal::NotServing),
                    };
                    let stored = matches!(response, MailboxResponse::Deposited { .. });
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .mailbox
                        .send_response(channel, response);
                    if garbage {
                        debug!(peer = %short(&peer), "garbage on the mailbox protocol: disconnecting");
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                    if stored && let Some(envelope) = deposited {
                        self.push_to_owner(&envelope);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(call) = self.mailbox_calls.remove(&request_id) {
                        self.mailbox_answer(call, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(call) = self.mailbox_calls.remove(&request_id) {
                    debug!(error = %error, "mailbox request failed");
                    match call {
                        MailboxCall::Challenge { server } | MailboxCall::Fetch { server, .. } => {
                            self.fetching.remove(&server);
                        }
                        MailboxCall::Deposit { server, message } => {
                            self.deposit_answered(server, message, false)
                        }
                        MailboxCall::Ack => {}
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn mailbox_answer(&mut self, call: MailboxCall, response: MailboxResponse) {
        match (call, response) {
            (MailboxCall::Challenge { server }, MailboxResponse::Nonce { nonce }) => {
                self.fetch_page(server, nonce)
            }
            (
                MailboxCall::Fetch { server, nonce },
                MailboxResponse::Envelopes { envelopes, more },
            ) => {
                self.take_fetched(server, nonce, envelopes, more);
            }
            (
                MailboxCall::Deposit { server, message },
                MailboxResponse::Deposited { .. } | MailboxResponse::Duplicate { .. },
            ) => {
                self.deposit_answered(server, message, true);
            }
            (MailboxCall::Deposit { server, message }, response) => {
                debug!(?response, "mailbox refused a deposit");
                self.deposit_answered(server, message, false);
            }
            (MailboxCall::Ack, _) => {}
            (MailboxCall::Challenge { server } | MailboxCall::Fetch { server, .. }, response) => {
                debug!(?response, "mailbox refused a fetch");
                self.fetching.remove(&server);
            }
        }
    }
}
