//! Sending: sealing texts and control messages with the advanced session persisted in the same commit
//! whenever the message key was not reserved by the session on file (docs/protocol.md §8.3), retries of
//! failed messages, and read receipts. Texts whose keys are all reserved may leave before their rows are
//! committed (`reserved.rs`).

use super::*;

impl Engine {
    /// Loads the sessions with `peer` into memory (from the store, or empty).
    pub(super) fn load_sessions(&mut self, peer: IdentityKey) -> Result<(), EngineError> {
        if !self.sessions.contains_key(&peer) {
            if self.sessions.len() >= MAX_SESSIONS_IN_MEMORY {
                // Every session held is durable: dropping them only costs reading them again.
                self.sessions.clear();
            }
            let loaded = match self.store.session(&peer) {
                Ok(Some(pickle)) => PeerSessions::unpickle(&self.store.pickle_key(), &pickle)?,
                Ok(None) => PeerSessions::new(self.key(), peer),
                Err(StoreError::RolledBack) => {
                    // Its keys may have been used already: never again. The next message starts anew.
                    warn!("a contact's session on file was rolled back: starting a new session");
                    PeerSessions::new(self.key(), peer)
                }
                Err(e) => return Err(e.into()),
            };
            self.sessions.insert(peer, loaded);
        }
        Ok(())
    }

    /// Encrypts `body` for `to` and seals it. When the message key was not reserved by the session on
    /// file (docs/protocol.md §8.3), the advanced session comes back as a pickle reserving the next keys:
    /// the caller must persist it in the same commit that records the message, before the envelope
    /// leaves. `None`: the session on file already covers this key.
    /// `ttl_cap_s`: the envelope expires at most this long after `now` (a group message under the group's
    /// disappearing-message timer).
    pub(super) fn seal(
        &mut self,
        to: &ContactEntry,
        id: Option<MessageId>,
        body: Body,
        now: u64,
        ttl_cap_s: Option<u64>,
    ) -> Result<(Content, Envelope, Option<Vec<u8>>), EngineError> {
        if to.state == ContactState::Blocked {
            return Err(EngineError::Blocked);
        }
        // Writing a text to a request accepts it (`write_text`); nothing else goes to one.
        if to.state == ContactState::Requested && !matches!(body, Body::Text(_) | Body::Reply(_)) {
            return Err(EngineError::NotAccepted);
        }
        let their_card = self.card_of(to)?;
        // A text or file in a conversation with a timer disappears with it, and so does its envelope
        // (a mailbox drops a copy nobody fetched in time, docs/protocol.md §12.4).
        let expires = matches!(body, Body::Text(_) | Body::Reply(_) | Body::File(_));
        let timer_s = if expires { self.timer_of(&to.key) } else { 0 };
        let expires = expires && timer_s > 0;
        let ttl_s = if expires {
            MAIL_TTL_S.min(u64::from(timer_s))
        } else {
            MAIL_TTL_S
        };
        let ttl_s = ttl_cap_s.map_or(ttl_s, |cap| ttl_s.min(cap.max(1)));
        let content = Content {
            id: id.unwrap_or_else(|| MessageId::new_v7(now, &mut self.rng)),
            sent_at_ms: now,
            body,
        };
        let plaintext = zeroize::Zeroizing::new(content.encode()?);
        let pickle_key = self.store.pickle_key();
        self.load_sessions(to.key)?;
        let (identity, card, rng) = (&self.identity, &self.card, &mut self.rng);
        let sessions = self
            .sessions
            .entry(to.key)
            .or_insert_with(|| PeerSessions::new(identity.key(), to.key));
        let reserved = sessions.send_is_reserved();
        let session_message =
            sessions.encrypt(identity, card, Some(&their_card), &plaintext, rng)?;
        let pickle = (!reserved).then(|| sessions.pickle_reserving(&pickle_key, rng));
        let envelope = Envelope::seal(
            identity,
            their_card.identity(),
            &session_message,
            now / 1000 + ttl_s,
            rng,
        )?;
        if expires {
            self.note_expiry(now.saturating_add(u64::from(timer_s) * 1000));
        }
        Ok((content, envelope, pickle))
    }

    /// Seals `body` for `to` and writes, in one durable commit, whatever `write` adds (history row, outbox
    /// entry, contact update) together with the advanced session. On any failure the in-memory session is
    /// forgotten, so the next send starts again from what the store holds.
    /// `ttl_cap_s`: the envelope expires at most this long after `now` (see [`Self::seal`]).
    pub(super) fn send_sealed<T>(
        &mut self,
        to: &IdentityKey,
        id: Option<MessageId>,
        body: Body,
        now: u64,
        ttl_cap_s: Option<u64>,
        write: impl FnOnce(
            &mut Batch<'_>,
            &mut ContactEntry,
            &Content,
            &Envelope,
            u64,
        ) -> Result<T, StoreError>,
    ) -> Result<(Content, Envelope, T), EngineError> {
        let mut contact = self
            .store
            .contact(to)?
            .ok_or_else(|| EngineError::UnknownContact(to.peer_id()))?;
        let result = self.seal(&contact, id, body, now, ttl_cap_s).and_then(
            |(content, envelope, pickle)| {
                // A transaction, so a disk failure in any write (not only the commit) is reported as
                // `StoreError::DiskFailing` and heals the store (`store/health.rs`).
                let written = self.store.transaction(|batch| {
                    let written = write(batch, &mut contact, &content, &envelope, now)?;
                    if let Some(pickle) = &pickle {
                        batch.put_session(to, pickle)?;
                    }
                    Ok(written)
                })?;
                Ok((content, envelope, written))
            },
        );
        if result.is_err() {
            self.sessions.remove(to);
        }
        result
    }

    /// Queues a text message: history row (sending), outbox entry and advanced session, in one commit.
    pub fn send_text(
        &mut self,
        to: &IdentityKey,
        text: &str,
    ) -> Result<(Message, OutboxEntry), EngineError> {
        self.send_text_at(to, text, now_ms())
    }

    /// [`Self::send_text`] at `now_ms` (unix milliseconds).
    pub fn send_text_at(
        &mut self,
        to: &IdentityKey,
        text: &str,
        now_ms: u64,
    ) -> Result<(Message, OutboxEntry), EngineError> {
        self.send_text_body(to, text, None, now_ms)
    }

    /// Queues a reply to message `quoted` of the conversation with `to` (docs/protocol.md §12.5): a text
    /// that carries the quoted message's id, queued as [`Self::send_text`] queues a text.
    /// [`EngineError::UnknownMessage`] if the conversation holds no such message.
    pub fn send_reply(
        &mut self,
        to: &IdentityKey,
        text: &str,
        quoted: MessageId,
    ) -> Result<(Message, OutboxEntry), EngineError> {
        if self.store.message(to, &quoted)?.is_none() {
            return Err(EngineError::UnknownMessage);
        }
        self.send_text_body(to, text, Some(quoted), now_ms())
    }

    fn send_text_body(
        &mut self,
        to: &IdentityKey,
        text: &str,
        reply_to: Option<MessageId>,
        now_ms: u64,
    ) -> Result<(Message, OutboxEntry), EngineError> {
        let (_, _, (message, entry, accepted)) = self.send_sealed(
            to,
            None,
            text_body(text.to_owned(), reply_to),
            now_ms,
            None,
            |batch, contact, content, envelope, now| {
                write_text(batch, contact, content, envelope, now, text)
            },
        )?;
        if accepted {
            self.requests = None;
            self.receipts_on_accept(to, now_ms)?;
        }
        Ok((message, entry))
    }

    /// Group commit of [`Self::send_text`]: seals each text in order, then writes every history row,
    /// outbox entry and advanced session in one durable commit. One result per text, in order; none is
    /// durable, and no envelope may leave, before this returns. If the commit fails every text fails, and
    /// the sessions involved are reloaded from the store on their next use.
    pub fn send_texts(
        &mut self,
        texts: &[(IdentityKey, String)],
    ) -> Vec<Result<(Message, OutboxEntry), EngineError>> {
        self.send_texts_at(texts, now_ms())
    }

    /// [`Self::send_texts`] at `now_ms` (unix milliseconds).
    pub fn send_texts_at(
        &mut self,
        texts: &[(IdentityKey, String)],
        now_ms: u64,
    ) -> Vec<Result<(Message, OutboxEntry), EngineError>> {
        let now = now_ms;
        if texts.len() <= 1 {
            return texts
                .iter()
                .map(|(to, text)| self.send_text_at(to, text, now))
                .collect();
        }
        let mut recipients: Vec<IdentityKey> = Vec::new();
        // A recipient whose seal failed: its later texts in this group fail too, because its in-memory
        // session may be ahead of what this group writes.
        let mut poisoned: Vec<IdentityKey> = Vec::new();
        let mut sealed = Vec::with_capacity(texts.len());
        for (to, text) in texts {
            if !recipients.contains(to) {
                recipients.push(*to);
            }
            let result = if poisoned.contains(to) {
                Err(EngineError::Store(group_failed(
                    "an earlier message to this contact failed",
                )))
            } else {
                self.seal_text(to, text, now)
            };
            if result.is_err() && !poisoned.contains(to) {
                poisoned.push(*to);
            }
            sealed.push(result);
        }
        let mut accepted = Vec::new();
        let written = self.store.transaction(|batch| {
            let mut queued = Vec::with_capacity(sealed.len());
            for ((to, text), item) in texts.iter().zip(&mut sealed) {
                queued.push(match item {
                    Ok((contact, content, envelope, pickle)) => {
                        let (message, entry, was_request) =
                            write_text(batch, contact, content, envelope, now, text)?;
                        if let Some(pickle) = pickle {
                            batch.put_session(to, pickle)?;
                        }
                        if was_request {
                            accepted.push(*to);
                        }
                        Some((message, entry))
                    }
                    Err(_) => None,
                });
            }
            Ok(queued)
        });
        for to in &poisoned {
            self.sessions.remove(to);
        }
        if written.is_ok() {
            if !accepted.is_empty() {
                self.requests = None;
            }
            for to in &accepted {
                if let Err(e) = self.receipts_on_accept(to, now) {
                    warn!(error = %e, "cannot queue the receipts an accepted request is owed");
                }
            }
        }
        match written {
            Ok(queued) => sealed
                .into_iter()
                .zip(queued)
                .map(|(item, q)| match (item, q) {
                    (Ok(_), Some(q)) => Ok(q),
                    (Err(e), _) => Err(e),
                    (Ok(_), None) => Err(EngineError::Store(group_failed("not written"))),
                })
                .collect(),
            Err(e) => {
                for to in &recipients {
                    self.sessions.remove(to);
                }
                let reason = e.to_string();
                texts
                    .iter()
                    .map(|_| {
                        Err(EngineError::Store(if e.is_disk_failing() {
                            StoreError::DiskFailing
                        } else {
                            group_failed(&reason)
                        }))
                    })
                    .collect()
            }
        }
    }

    /// Seals one text for [`Self::send_texts`]; nothing is written.
    pub(super) fn seal_text(
        &mut self,
        to: &IdentityKey,
        text: &str,
        now: u64,
    ) -> Result<SealedText, EngineError> {
        let contact = self
            .store
            .contact(to)?
            .ok_or_else(|| EngineError::UnknownContact(to.peer_id()))?;
        let (content, envelope, pickle) =
            self.seal(&contact, None, Body::Text(text.to_owned()), now, None)?;
        Ok((contact, content, envelope, pickle))
    }

    /// Encrypts a typing indicator for `to` (not queued: typing is only worth sending to a peer connected
    /// now), or `None` with typing indicators off (`crate::privacy`).
    pub fn send_typing(
        &mut self,
        to: &IdentityKey,
        typing: bool,
    ) -> Result<Option<Envelope>, EngineError> {
        if !self.privacy.typing {
            return Ok(None);
        }
        let (_, envelope) = self.send_control(to, Body::Typing(typing), false)?;
        Ok(Some(envelope))
    }

    /// Encrypts a control message (a receipt or typing) and queues it for delivery when `queue` is set;
    /// returns the envelope. The session is persisted before the envelope is returned.
    pub fn send_control(
        &mut self,
        to: &IdentityKey,
        body: Body,
        queue: bool,
    ) -> Result<(MessageId, Envelope), EngineError> {
        self.send_control_at(to, body, queue, now_ms())
    }

    /// [`Self::send_control`] at `now_ms` (unix milliseconds).
    pub fn send_control_at(
        &mut self,
        to: &IdentityKey,
        body: Body,
        queue: bool,
        now_ms: u64,
    ) -> Result<(MessageId, Envelope), EngineError> {
        self.send_control_within(to, body, queue, now_ms, None)
    }

    /// [`Self::send_control`] (queued) in an envelope that expires at most `ttl_s` from now, so that its
    /// outbox entry and any mailbox copy go when a disappearing message it carries does (a group
    /// message under the group's timer, docs/protocol.md §18.3).
    pub fn send_control_expiring(
        &mut self,
        to: &IdentityKey,
        body: Body,
        ttl_s: u64,
    ) -> Result<(MessageId, Envelope), EngineError> {
        self.send_control_within(to, body, true, now_ms(), Some(ttl_s))
    }

    fn send_control_within(
        &mut self,
        to: &IdentityKey,
        body: Body,
        queue: bool,
        now_ms: u64,
        ttl_cap_s: Option<u64>,
    ) -> Result<(MessageId, Envelope), EngineError> {
        let (content, envelope, ()) = self.send_sealed(
            to,
            None,
            body,
            now_ms,
            ttl_cap_s,
            |batch, _, content, envelope, now| {
                if queue {
                    batch.outbox_enqueue(&outbox_entry(to, content, envelope, now))?;
                }
                Ok(())
            },
        )?;
        Ok((content.id, envelope))
    }

    /// Queues this profile's current card (content kind 5, docs/protocol.md §12.3) to every accepted
    /// contact, each in its own commit, after the card was re-issued. A contact it cannot be queued for (a
    /// full outbox, a broken session) is skipped with a warning: the next re-issue carries everything.
    pub(super) fn queue_card_updates(&mut self, now_ms: u64) {
        let contacts = match self.store.contacts() {
            Ok(contacts) => contacts,
            Err(e) => {
                warn!(error = %e, "cannot list the contacts to send the new card to");
                return;
            }
        };
        let card = self.card.encode().to_vec();
        for contact in contacts
            .iter()
            .filter(|c| c.state == ContactState::Accepted)
        {
            match self.send_control_at(&contact.key, Body::Card(card.clone()), true, now_ms) {
                Ok(_) => {
                    if !self.card_updates.contains(&contact.key) {
                        self.card_updates.push(contact.key);
                    }
                }
                Err(e) => warn!(error = %e, "cannot queue the new card for a contact"),
            }
        }
    }

    /// The contacts a re-issued card was queued for, or whose waiting messages were sealed again, since
    /// the last call: their outboxes have news.
    pub fn take_card_updates(&mut self) -> Vec<IdentityKey> {
        std::mem::take(&mut self.card_updates)
    }

    /// Queues a delivery receipt for `ids` (at most [`tern_protocol::message::MAX_RECEIPT_IDS`]) to `to`
    /// and, in the same commit, forgets the envelopes that carried them, so no later copy of one of those
    /// envelopes makes this profile write to the sender again.
    pub fn queue_delivered(
        &mut self,
        to: &IdentityKey,
        ids: Vec<MessageId>,
        envelopes: &[EnvelopeId],
    ) -> Result<(), EngineError> {
        self.send_sealed(
            to,
            None,
            Body::Delivered(ids),
            now_ms(),
            None,
            |batch, _, content, envelope, now| {
                batch.outbox_enqueue(&outbox_entry(to, content, envelope, now))?;
                for answered in envelopes {
                    batch.forget_envelope(answered)?;
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Sends a failed outgoing message again: the same id and text in a new envelope, back to `Sending`
    /// with a fresh outbox entry, in one commit. [`EngineError::NotRetryable`] for any other message.
    pub fn retry(&mut self, contact: &IdentityKey, id: &MessageId) -> Result<Message, EngineError> {
        self.retry_at(contact, id, now_ms())
    }

    /// [`Self::retry`] at `now_ms` (unix milliseconds).
    pub fn retry_at(
        &mut self,
        contact: &IdentityKey,
        id: &MessageId,
        now_ms: u64,
    ) -> Result<Message, EngineError> {
        let message = self
            .store
            .message(contact, id)?
            .filter(|m| m.outgoing() && m.status == MessageStatus::Failed)
            .ok_or(EngineError::NotRetryable)?;
        let body = match self.file_body(contact, id)? {
            Some(body) => body,
            None => text_body(message.text.clone(), message.reply_to),
        };
        let (_, _, retried) = self.send_sealed(
            contact,
            Some(message.id),
            body,
            now_ms,
            None,
            |batch, _, content, envelope, now| {
                batch.update_message_status(contact, id, MessageStatus::Sending)?;
                batch.outbox_enqueue(&outbox_entry(contact, content, envelope, now))?;
                Ok(Message {
                    status: MessageStatus::Sending,
                    ..message
                })
            },
        )?;
        Ok(retried)
    }

    /// Marks received messages read and queues a read receipt for them (none with read receipts off,
    /// `crate::privacy`). Returns the ids that changed.
    pub fn mark_read(
        &mut self,
        contact: &IdentityKey,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>, EngineError> {
        self.mark_read_at(contact, ids, now_ms())
    }

    /// [`Self::mark_read`] at `now_ms` (unix milliseconds).
    pub fn mark_read_at(
        &mut self,
        contact: &IdentityKey,
        ids: &[MessageId],
        now_ms: u64,
    ) -> Result<Vec<MessageId>, EngineError> {
        let mut changed = Vec::new();
        let conversation = crate::api::ConversationId::Direct(*contact);
        for id in ids {
            if let Some(m) = self.store.message(contact, id)?
                && !m.outgoing()
                && m.status == MessageStatus::Received
            {
                // Reading starts a disappearing message's clock, in the same commit.
                let (read, expires) = self.store.transaction(|batch| {
                    if !batch.update_message_status_at(contact, id, MessageStatus::Read, now_ms)? {
                        return Ok((false, None));
                    }
                    Ok((true, batch.start_expiry(&conversation, id, now_ms)?))
                })?;
                if let Some(at) = expires {
                    self.note_expiry(at);
                }
                if read {
                    changed.push(*id);
                }
            }
        }
        let accepted = self
            .store
            .contact(contact)?
            .is_some_and(|c| c.state == ContactState::Accepted);
        if accepted && self.privacy.read_receipts {
            for chunk in changed.chunks(tern_protocol::message::MAX_RECEIPT_IDS) {
                self.send_control_at(contact, Body::Read(chunk.to_vec()), true, now_ms)?;
            }
        }
        Ok(changed)
    }

    /// Queues the delivery receipts a message request was not sent while it waited: for the newest
    /// [`MAX_RECEIPTS_ON_ACCEPT`] messages received from `contact`, now that the user accepted them.
    pub(super) fn receipts_on_accept(
        &mut self,
        contact: &IdentityKey,
        now_ms: u64,
    ) -> Result<(), EngineError> {
        let page = self
            .store
            .conversation_page(contact, None, MAX_RECEIPTS_ON_ACCEPT)?;
        let received: Vec<MessageId> = page
            .messages
            .iter()
            .filter(|m| !m.outgoing())
            .map(|m| m.id)
            .collect();
        for chunk in received.chunks(tern_protocol::message::MAX_RECEIPT_IDS) {
            self.send_control_at(contact, Body::Delivered(chunk.to_vec()), true, now_ms)?;
        }
        Ok(())
    }
}

/// A text sealed for [`Engine::send_texts`]: the contact, the content, its envelope, and the session to
/// store before the envelope leaves when its key was not reserved.
pub(super) type SealedText = (ContactEntry, Content, Envelope, Option<Vec<u8>>);

/// A fresh outbox entry for an envelope, due now.
pub(super) fn outbox_entry(
    to: &IdentityKey,
    content: &Content,
    envelope: &Envelope,
    now: u64,
) -> OutboxEntry {
    OutboxEntry {
        message_id: content.id,
        recipient: *to,
        envelope: envelope.encode(),
        attempts: 0,
        next_attempt_ms: now,
        created_ms: now,
        expires_at: envelope.expires_at,
    }
}

/// The error every member of a failed group commit gets (a `StoreError` is not `Clone`).
pub(super) fn group_failed(reason: &str) -> StoreError {
    StoreError::Io(std::io::Error::other(format!("group commit: {reason}")))
}

/// The content of a text, or of a reply when it answers a message (docs/protocol.md §12.5).
pub(super) fn text_body(text: String, reply_to: Option<MessageId>) -> Body {
    match reply_to {
        Some(to) => Body::Reply(tern_protocol::Reply { to, text }),
        None => Body::Text(text),
    }
}

/// What sending a text (or a reply) writes: the history row (sending) and the outbox entry; writing to
/// someone who asked to talk accepts them (the last field says it did).
pub(super) fn write_text(
    batch: &mut Batch<'_>,
    contact: &mut ContactEntry,
    content: &Content,
    envelope: &Envelope,
    now: u64,
    text: &str,
) -> Result<(Message, OutboxEntry, bool), StoreError> {
    let to = contact.key;
    let accepted = contact.state == ContactState::Requested;
    if accepted {
        contact.state = ContactState::Accepted;
        batch.put_contact(contact)?;
    }
    let message = Message {
        id: content.id,
        conversation: to.into(),
        sender: None,
        system: false,
        sent_at_ms: now,
        received_at_ms: now,
        text: text.to_owned(),
        status: MessageStatus::Sending,
        recipients: Vec::new(),
        reply_to: match &content.body {
            Body::Reply(reply) => Some(reply.to),
            _ => None,
        },
        attachment: None,
    };
    let outbox = outbox_entry(&to, content, envelope, now);
    let timer_s = batch.timer(&message.conversation)?.seconds;
    batch.insert_message_expiring(&message, timer_s)?;
    batch.outbox_enqueue(&outbox)?;
    Ok((message, outbox, accepted))
}
