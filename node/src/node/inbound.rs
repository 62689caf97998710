//! Inbound envelopes: storing what peers send (group commit) and answering them, and the events it raises.

use super::*;

impl EventLoop {
    pub(super) fn handle_envelope_event(
        &mut self,
        event: request_response::Event<EnvelopeRequest, EnvelopeAck>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                // Answered after this wake-up's group commit (`drain_swarm`).
                request_response::Message::Request {
                    request, channel, ..
                } => self.pending.inbound.push((peer, request, channel)),
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.handle_ack(request_id, response),
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                debug!(error = %error, "envelope request failed");
                self.envelope_failed(request_id);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(peer = %short(&peer), error = %error, "inbound envelope failed");
                // A request stream that failed once open; a peer that left before its answer is not a
                // refusal.
                if !matches!(error, request_response::InboundFailure::ConnectionClosed) {
                    self.count_refusal("envelope_unreadable".to_owned());
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Answers the envelopes received in this wake-up, after storing them all with one durable commit.
    pub(super) fn answer_inbound(&mut self) {
        if self.pending.inbound.is_empty() {
            return;
        }
        let inbound = std::mem::take(&mut self.pending.inbound);
        let bytes: Vec<(&[u8], Via)> = inbound
            .iter()
            .map(|(peer, r, _)| (r.as_bytes(), Via::Direct(*peer)))
            .collect();
        // Receipts owed to senders whose envelope a mailbox pushed are queued in the same commit.
        let outcomes = self.engine.receive_many(&bytes, now_ms());
        for ((peer, request, channel), inbound) in inbound.into_iter().zip(outcomes) {
            if let Err(e) = &inbound.outcome {
                self.note_undecryptable(e, request.as_bytes());
            }
            self.answer_one(peer, channel, inbound.outcome);
        }
        // A contact that lost its state had what waited for it sealed again: send that.
        self.flush_card_updates();
    }

    pub(super) fn answer_one(
        &mut self,
        peer: PeerId,
        channel: ResponseChannel<EnvelopeAck>,
        outcome: Result<Received, ReceiveError>,
    ) {
        let ack = match outcome {
            Ok(received) => {
                let ack = if matches!(received, Received::Duplicate | Received::Copy { .. }) {
                    self.count_refusal("envelope_duplicate".to_owned());
                    EnvelopeAck::Duplicate
                } else {
                    EnvelopeAck::Accepted
                };
                self.report(received);
                ack
            }
            Err(e) => {
                debug!(peer = %short(&peer), error = %e, "refused an envelope");
                let ack = ack_for(&e);
                self.count_refusal(match ack {
                    EnvelopeAck::Rejected(reason) => format!("envelope_{}", reason.name()),
                    EnvelopeAck::Duplicate | EnvelopeAck::Accepted => {
                        "envelope_duplicate".to_owned()
                    }
                });
                ack
            }
        };
        // The peer may have gone; the sender retries and we dedupe.
        let _ = self
            .swarm
            .behaviour_mut()
            .envelope
            .send_response(channel, ack);
    }

    /// Tells the user when a contact's message could not be decrypted (a session this copy does not
    /// hold), so it does not vanish unseen (docs/protocol.md §20.5).
    pub(super) fn note_undecryptable(&mut self, error: &ReceiveError, bytes: &[u8]) {
        if !matches!(error, ReceiveError::Decrypt(d)
            if !matches!(d, tern_protocol::DecryptError::DuplicateOrExpired { .. }))
        {
            return;
        }
        if let Some(contact) = self.engine.contact_sender_of(bytes, now_ms()) {
            self.emit(Event::Undecryptable { contact });
        }
    }

    pub(super) fn count_refusal(&mut self, kind: String) {
        // Bounded: the kinds are a fixed set of names.
        *self.refusals.entry(kind).or_default() += 1;
    }

    /// What this node refused, its own counts and the served mailbox's.
    pub(super) fn refusals(&self) -> BTreeMap<String, u64> {
        let mut all = self.refusals.clone();
        if let Some(host) = &self.mailbox_host {
            for (reason, count) in &host.server().counters().refusals {
                all.insert(format!("mailbox_{reason}"), *count);
            }
        }
        all
    }

    pub(super) fn report(&mut self, received: Received) {
        match received {
            Received::Message {
                message,
                request,
                key_changed,
            } => {
                if let Some(contact) = request {
                    self.emit(Event::ContactRequest { contact });
                }
                if key_changed && let Some(contact) = message.sender {
                    self.emit(Event::KeyChanged { contact });
                }
                self.emit(Event::MessageReceived { message });
            }
            Received::Receipts { contact, updated } => {
                for (id, status) in updated {
                    self.emit(Event::StatusChanged {
                        contact,
                        id,
                        status,
                    });
                }
            }
            Received::Typing { contact, typing } => self.emit(Event::Typing { contact, typing }),
            Received::CardUpdated {
                contact,
                key_changed,
            } => {
                let key = contact.key;
                self.emit(Event::ContactUpdated { contact });
                if key_changed {
                    self.emit(Event::KeyChanged { contact: key });
                }
            }
            Received::Unknown { contact, kind } => {
                self.emit(Event::UnknownContent { contact, kind });
            }
            Received::Group {
                contact,
                kind,
                data,
            } => self.group_body(contact, kind, data),
            Received::Duplicate | Received::Copy { .. } | Received::Dropped => {}
        }
    }
}

/// The ack for an envelope that was not taken.
fn ack_for(error: &ReceiveError) -> EnvelopeAck {
    use tern_protocol::envelope::OpenError;
    match error {
        ReceiveError::Open(OpenError::Expired { .. }) => {
            EnvelopeAck::Rejected(RejectReason::Expired)
        }
        ReceiveError::Open(OpenError::NotForMe) => {
            EnvelopeAck::Rejected(RejectReason::UnknownMailbox)
        }
        // Already decrypted once (a retry whose ack was lost): the sender may stop.
        ReceiveError::Decrypt(tern_protocol::DecryptError::DuplicateOrExpired { .. }) => {
            EnvelopeAck::Duplicate
        }
        ReceiveError::Store(_) => EnvelopeAck::Rejected(RejectReason::Internal),
        _ => EnvelopeAck::Rejected(RejectReason::Malformed),
    }
}
