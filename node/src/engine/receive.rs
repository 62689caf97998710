//! Receiving: opening, decrypting and storing envelopes, alone or as a group commit.

use super::*;
use tern_protocol::group_link::{JoinRequest, KIND_JOIN_REQUEST};

impl Engine {
    /// Opens, decrypts and durably stores one received envelope. Only after this returns `Ok` may the
    /// envelope be acknowledged.
    ///
    /// An envelope that carried a message stored before (the store remembers it by envelope id, across
    /// restarts, for as long as the duplicate check remembers the message) is [`Received::Copy`], found
    /// before any decryption is tried.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, ReceiveError> {
        self.receive_at(bytes, Via::Sender, now_ms())
    }

    /// [`Self::receive`] at `now_ms`, from `via`.
    pub fn receive_at(
        &mut self,
        bytes: &[u8],
        via: Via,
        now_ms: u64,
    ) -> Result<Received, ReceiveError> {
        match self.receive_group(&[(bytes, via)], now_ms) {
            Ok(outcomes) => outcomes.into_iter().next().map_or_else(
                || Err(ReceiveError::Store(group_failed("no outcome"))),
                |inbound| inbound.outcome,
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// Group commit of [`Self::receive`]: opens and decrypts each envelope in order and stores them all
    /// with one durable commit. One outcome per envelope, in order; none may be acknowledged before this
    /// returns. If the group cannot be stored, each envelope is stored on its own instead.
    ///
    /// Each envelope says how it came ([`Via`]). A new message (or a copy of one stored before) that its
    /// sender did not hand over itself earns the sender a delivery receipt, queued in the same commit
    /// (one per sender and group), and the envelopes it answers are forgotten in that commit, so a
    /// replayed copy earns no second receipt.
    pub fn receive_many(&mut self, envelopes: &[(&[u8], Via)], now_ms: u64) -> Vec<Inbound> {
        if envelopes.len() > 1 {
            match self.receive_group(envelopes, now_ms) {
                Ok(outcomes) => return outcomes,
                // The disk failed (logged once by the store): one by one would fail alike.
                Err(e) if e.is_disk_failing() => {
                    return envelopes
                        .iter()
                        .map(|(bytes, _)| Inbound {
                            envelope_id: Envelope::decode(bytes).ok().map(|e| e.id()),
                            outcome: Err(ReceiveError::Store(StoreError::DiskFailing)),
                        })
                        .collect();
                }
                Err(e) => {
                    warn!(error = %e, "group commit failed; storing the envelopes one by one")
                }
            }
        }
        envelopes
            .iter()
            .map(
                |(bytes, via)| match self.receive_group(&[(bytes, *via)], now_ms) {
                    Ok(mut outcomes) if outcomes.len() == 1 => outcomes.remove(0),
                    Ok(_) => Inbound {
                        envelope_id: None,
                        outcome: Err(ReceiveError::Store(group_failed("no outcome"))),
                    },
                    Err(e) => Inbound {
                        envelope_id: Envelope::decode(bytes).ok().map(|e| e.id()),
                        outcome: Err(e.into()),
                    },
                },
            )
            .collect()
    }

    /// Decrypts and stores `envelopes`, with the delivery receipts they earn, in one write transaction;
    /// an `Err` means nothing was stored and every session the group advanced was dropped from memory (to
    /// be reloaded from the store).
    pub(super) fn receive_group(
        &mut self,
        envelopes: &[(&[u8], Via)],
        now: u64,
    ) -> Result<Vec<Inbound>, StoreError> {
        let pickle_key = self.store.pickle_key();
        let mut touched = Vec::new();
        if self.sessions.len() >= MAX_SESSIONS_IN_MEMORY {
            // Every session held is durable (none is advanced outside a group like this one).
            self.sessions.clear();
        }
        let Self {
            store,
            rng,
            identity,
            card,
            sessions,
            cards,
            requests,
            card_updates,
            next_expiry: _,
            last_compact: _,
            privacy,
            join_tokens,
        } = self;
        let privacy = *privacy;
        let mut restarted = Vec::new();
        let result = store.transaction(|batch| {
            let mut outcomes = Vec::with_capacity(envelopes.len());
            for (bytes, _) in envelopes {
                let (envelope_id, outcome) = receive_one(
                    batch,
                    identity,
                    Held {
                        sessions: &mut *sessions,
                        requests: &mut *requests,
                        touched: &mut touched,
                        restarted: &mut restarted,
                        privacy,
                        join_tokens,
                    },
                    &pickle_key,
                    bytes,
                    now,
                )?;
                outcomes.push(Inbound {
                    envelope_id,
                    outcome,
                });
            }
            let mut receipts = Receipts {
                identity,
                card,
                sessions,
                cards,
                pickle_key: &pickle_key,
                touched: &mut touched,
            };
            receipts.queue(batch, envelopes, &outcomes, now, rng)?;
            for peer in &restarted {
                receipts.reseal(batch, peer, now, rng)?;
            }
            // Each advanced session once, in its latest state: with the sending half of a DH step taken
            // now (a reply then needs no session commit of its own) and the next sending keys reserved.
            for sender in &touched {
                if let Some(peer) = sessions.get_mut(sender) {
                    if let Err(e) = peer.prepare_sending(rng) {
                        debug!(error = %e, "cannot prepare the next sending chain");
                    }
                    batch.put_session(sender, &peer.pickle_reserving(&pickle_key, rng))?;
                }
            }
            Ok(outcomes)
        });
        if result.is_ok() {
            // What was sealed again waits in the outbox: the node sends it (`take_card_updates`).
            for peer in restarted {
                if !card_updates.contains(&peer) {
                    card_updates.push(peer);
                }
            }
        }
        if result.is_err() {
            // The commit failed: forget the advanced sessions so the senders' retries decrypt again.
            for sender in &touched {
                self.sessions.remove(sender);
            }
            self.requests = None;
        }
        result
    }
}

/// A message a receipt confirms, and the envelope that carried it (to forget).
type Confirmed = (MessageId, Option<EnvelopeId>);

/// What a receive group needs to seal the delivery receipts it queues.
pub(super) struct Receipts<'a> {
    identity: &'a Identity,
    card: &'a ContactCard,
    sessions: &'a mut HashMap<IdentityKey, PeerSessions>,
    cards: &'a mut HashMap<IdentityKey, ContactCard>,
    pickle_key: &'a tern_protocol::PickleKey,
    touched: &'a mut Vec<IdentityKey>,
}

impl Receipts<'_> {
    /// Queues one delivery receipt per sender (per [`tern_protocol::message::MAX_RECEIPT_IDS`] ids) for
    /// the new messages and copies whose sender did not hand them over itself, forgetting the envelopes
    /// they answer. A receipt that cannot be sealed (a blocked or unknown contact, a bad card) is skipped;
    /// a store failure aborts the group.
    fn queue(
        &mut self,
        batch: &mut Batch<'_>,
        envelopes: &[(&[u8], Via)],
        outcomes: &[Inbound],
        now: u64,
        rng: &mut impl rand::CryptoRng,
    ) -> Result<(), StoreError> {
        // Per sender, in order of first appearance: the message ids and the envelopes that carried them.
        let mut owed: Vec<(IdentityKey, Vec<Confirmed>)> = Vec::new();
        for ((_, via), inbound) in envelopes.iter().zip(outcomes) {
            let (sender, id) = match &inbound.outcome {
                Ok(Received::Message { message, .. }) => match message.sender {
                    Some(sender) => (sender, message.id),
                    None => continue,
                },
                Ok(Received::Copy { contact, id }) => (*contact, *id),
                _ => continue,
            };
            if !via.owes_receipt(&sender) {
                continue;
            }
            match owed.iter_mut().find(|(to, _)| *to == sender) {
                Some((_, ids)) => ids.push((id, inbound.envelope_id)),
                None => owed.push((sender, vec![(id, inbound.envelope_id)])),
            }
        }
        for (to, confirmed) in owed {
            for chunk in confirmed.chunks(tern_protocol::message::MAX_RECEIPT_IDS) {
                let ids = chunk.iter().map(|(id, _)| *id).collect();
                match self.seal(batch, &to, Body::Delivered(ids), now, rng) {
                    Ok((content, envelope)) => {
                        batch.outbox_enqueue(&outbox_entry(&to, &content, &envelope, now))?;
                        for answered in chunk.iter().filter_map(|(_, e)| e.as_ref()) {
                            batch.forget_envelope(answered)?;
                        }
                    }
                    Err(EngineError::Store(e)) => return Err(e),
                    Err(e) => debug!(error = %e, "cannot queue a delivery receipt"),
                }
            }
        }
        Ok(())
    }

    /// Seals a control message for `to` inside the group's transaction; the advanced session is written
    /// with the group's.
    fn seal(
        &mut self,
        batch: &mut Batch<'_>,
        to: &IdentityKey,
        body: Body,
        now: u64,
        rng: &mut impl rand::CryptoRng,
    ) -> Result<(Content, Envelope), EngineError> {
        let content = Content {
            id: MessageId::new_v7(now, rng),
            sent_at_ms: now,
            body,
        };
        let expires_at = now / 1000 + MAIL_TTL_S;
        let envelope = self.seal_content(batch, to, &content, expires_at, rng)?;
        Ok((content, envelope))
    }

    /// Seals `content` for `to` on the active session, in an envelope that expires at `expires_at` (unix
    /// seconds).
    pub(super) fn seal_content(
        &mut self,
        batch: &mut Batch<'_>,
        to: &IdentityKey,
        content: &Content,
        expires_at: u64,
        rng: &mut impl rand::CryptoRng,
    ) -> Result<Envelope, EngineError> {
        let contact = batch
            .contact(to)?
            .ok_or_else(|| EngineError::UnknownContact(to.peer_id()))?;
        if contact.state == ContactState::Blocked {
            return Err(EngineError::Blocked);
        }
        // A request learns nothing until accepted (the receipts are sent then, `receipts_on_accept`).
        if contact.state != ContactState::Accepted {
            return Err(EngineError::NotAccepted);
        }
        let their_card = cached_card(self.cards, &contact)?;
        let plaintext = zeroize::Zeroizing::new(content.encode()?);
        let peer = session_in(
            batch,
            self.sessions,
            self.pickle_key,
            self.identity.key(),
            *to,
        )?;
        let session_message =
            peer.encrypt(self.identity, self.card, Some(&their_card), &plaintext, rng)?;
        if !self.touched.contains(to) {
            self.touched.push(*to);
        }
        let envelope = Envelope::seal(
            self.identity,
            their_card.identity(),
            &session_message,
            expires_at,
            rng,
        )?;
        Ok(envelope)
    }
}

/// The sessions with `peer`, loaded into `sessions` from the transaction's view of the store if needed
/// (afresh if the stored ones are unreadable).
fn session_in<'s>(
    batch: &Batch<'_>,
    sessions: &'s mut HashMap<IdentityKey, PeerSessions>,
    pickle_key: &tern_protocol::PickleKey,
    me: IdentityKey,
    peer: IdentityKey,
) -> Result<&'s mut PeerSessions, StoreError> {
    Ok(match sessions.entry(peer) {
        std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
        std::collections::hash_map::Entry::Vacant(slot) => {
            let loaded = match batch.session(&peer) {
                Ok(Some(pickle)) => {
                    PeerSessions::unpickle(pickle_key, &pickle).unwrap_or_else(|e| {
                        warn!(error = %e, "stored sessions unreadable; starting afresh");
                        PeerSessions::new(me, peer)
                    })
                }
                Ok(None) => PeerSessions::new(me, peer),
                Err(StoreError::RolledBack) => {
                    warn!("a contact's session on file was rolled back: starting a new session");
                    PeerSessions::new(me, peer)
                }
                Err(e) => return Err(e),
            };
            slot.insert(loaded)
        }
    })
}

/// One envelope of a receive group, inside its write transaction: the outer `Err` (a store failure)
/// aborts the group; the inner one refuses this envelope only. Advanced sessions are listed in `touched`
/// for the caller to persist.
/// The engine's state a receive group changes besides the store: the sessions held in memory, the count
/// of message requests, and the senders whose sessions advanced (to persist).
pub(super) struct Held<'a> {
    pub(super) sessions: &'a mut HashMap<IdentityKey, PeerSessions>,
    pub(super) requests: &'a mut Option<u64>,
    pub(super) touched: &'a mut Vec<IdentityKey>,
    /// Senders whose new start replaced a confirmed session: what waits for them is sealed again.
    pub(super) restarted: &'a mut Vec<IdentityKey>,
    /// With read receipts off a contact's read receipt counts as delivered; with typing off typing is
    /// dropped (`crate::privacy`).
    pub(super) privacy: PrivacySettings,
    /// The profile's live group links: a stranger's join request naming one is let through.
    pub(super) join_tokens: &'a std::collections::HashSet<tern_protocol::group_link::LinkToken>,
}

impl Held<'_> {
    /// Drops what one envelope from a stranger left in memory: nothing of it is persisted.
    fn forget(&mut self, sender: &IdentityKey) {
        self.touched.retain(|k| k != sender);
        self.sessions.remove(sender);
    }

    /// The message requests the store holds (counted once, then kept up to date).
    fn requests(&mut self, batch: &Batch<'_>) -> Result<u64, StoreError> {
        if let Some(count) = *self.requests {
            return Ok(count);
        }
        let count = batch
            .contacts()?
            .iter()
            .filter(|c| c.state == ContactState::Requested)
            .count() as u64;
        *self.requests = Some(count);
        Ok(count)
    }
}

/// A contact's re-issued card ([`Body::Card`], docs/protocol.md §12.3): taken when it is the sender's own
/// and newer than the one on file, with the name shown following it unless the user renamed the contact.
fn card_update(
    batch: &mut Batch<'_>,
    sender: IdentityKey,
    known: ContactEntry,
    bytes: &[u8],
    now: u64,
) -> Result<Received, StoreError> {
    let card = match ContactCard::decode(bytes) {
        Ok(card) if card.key() == sender => card,
        Ok(_) => {
            debug!("dropped a card update naming another identity");
            return Ok(Received::Dropped);
        }
        Err(e) => {
            debug!(error = %e, "dropped a card update that does not decode");
            return Ok(Received::Dropped);
        }
    };
    let old_name = ContactCard::decode(&known.card)
        .ok()
        .map(|old| crate::names::sanitize_name(old.display_name(), &sender.peer_id()));
    let before = known.card.clone();
    let (record, _, key_changed) = contact_after_card(sender, Some(known), Some(card.clone()), now);
    let Some(mut record) = record else {
        return Ok(Received::Dropped);
    };
    if record.card == before {
        // Unchanged or stale: the card on file stays.
        return Ok(Received::Dropped);
    }
    if old_name.as_deref() == Some(record.local_name.as_str()) {
        record.local_name = crate::names::sanitize_name(card.display_name(), &sender.peer_id());
    }
    batch.put_contact(&record)?;
    Ok(Received::CardUpdated {
        contact: record,
        key_changed,
    })
}

pub(super) fn receive_one(
    batch: &mut Batch<'_>,
    identity: &Identity,
    held: Held<'_>,
    pickle_key: &tern_protocol::PickleKey,
    bytes: &[u8],
    now: u64,
) -> Result<(Option<EnvelopeId>, Result<Received, ReceiveError>), StoreError> {
    let envelope = match Envelope::decode(bytes) {
        Ok(envelope) => envelope,
        Err(e) => return Ok((None, Err(e.into()))),
    };
    let envelope_id = envelope.id();
    let outcome = open_one(batch, identity, held, pickle_key, &envelope, now)?;
    Ok((Some(envelope_id), outcome))
}

fn open_one(
    batch: &mut Batch<'_>,
    identity: &Identity,
    mut held: Held<'_>,
    pickle_key: &tern_protocol::PickleKey,
    envelope: &Envelope,
    now: u64,
) -> Result<Result<Received, ReceiveError>, StoreError> {
    let opened = match envelope.open(identity, now / 1000) {
        Ok(opened) => opened,
        Err(e) => return Ok(Err(e.into())),
    };
    let sender = opened.sender;
    let envelope_id = envelope.id();
    let contact = batch.contact(&sender)?;
    if contact
        .as_ref()
        .is_some_and(|c| c.state == ContactState::Blocked)
    {
        return Ok(Ok(Received::Dropped));
    }
    // A copy of an envelope already stored (its key is spent): name what it carried, touch no session.
    if let Some((contact, id)) = batch.envelope(&envelope_id)?
        // The outer seal is bound to its sender, so a copy names the same sender as the original.
        && contact == sender
    {
        return Ok(Ok(Received::Copy { contact, id }));
    }
    let stranger = contact.is_none();
    let was_touched = held.touched.contains(&sender);
    let peer = session_in(batch, held.sessions, pickle_key, identity.key(), sender)?;
    let active_before = peer
        .active_is_confirmed()
        .then(|| peer.active_session())
        .flatten();
    let decrypted = match peer.decrypt(identity, &opened.session_message) {
        Ok(decrypted) => decrypted,
        Err(e) => {
            if !was_touched {
                // Reloaded from the store if needed: a claimed sender leaves nothing in memory.
                held.sessions.remove(&sender);
            }
            return Ok(Err(e.into()));
        }
    };
    if !was_touched {
        held.touched.push(sender);
    }
    if decrypted.new_session_card.is_some()
        && active_before.is_some()
        && peer.active_session() != active_before
        && !held.restarted.contains(&sender)
    {
        // A new start replaced a session that worked: the peer lost its state (§10 rule 5, §20.5).
        held.restarted.push(sender);
    }
    // If the content is malformed the ratchet still moved: the session is kept, the content refused
    // (a stranger's is not kept: only a text makes a stranger a contact, with a session on file).
    let content = match Content::decode(&decrypted.plaintext) {
        Ok(content) => content,
        Err(e) => {
            if stranger {
                held.forget(&sender);
            }
            return Ok(Err(ReceiveError::Malformed(e)));
        }
    };
    let join_request = match &content.body {
        Body::Unknown { kind, data } if *kind == KIND_JOIN_REQUEST => {
            JoinRequest::token_of(data).filter(|token| held.join_tokens.contains(token))
        }
        _ => None,
    };
    let requested = contact
        .as_ref()
        .is_some_and(|c| c.state == ContactState::Requested);
    if join_request.is_some() && (stranger || requested) {
        // Someone holding one of this profile's group links, a stranger or a message request: an accepted
        // contact from now on, so the admin's node can answer inside the session (§18.11). A full contact
        // table refuses a stranger as it refuses a request.
        let record = match contact.clone() {
            Some(known) => Some(known),
            None => contact_after_card(sender, None, decrypted.new_session_card, now).0,
        };
        let Some(mut record) = record else {
            held.forget(&sender);
            return Ok(Ok(Received::Dropped));
        };
        record.state = ContactState::Accepted;
        match batch.put_contact(&record) {
            Ok(()) => {}
            Err(StoreError::ContactsFull { .. }) => {
                held.forget(&sender);
                return Ok(Ok(Received::Dropped));
            }
            Err(e) => return Err(e),
        }
        if requested {
            // One request fewer: counted again when next asked.
            *held.requests = None;
        }
        let Body::Unknown { kind, data } = content.body else {
            return Ok(Ok(Received::Dropped));
        };
        return Ok(Ok(Received::Group {
            contact: sender,
            kind,
            data,
        }));
    }
    if stranger && !matches!(content.body, Body::Text(_) | Body::Reply(_)) {
        // Receipts, typing and unknown kinds from strangers mean nothing, and leave nothing behind.
        held.forget(&sender);
        return Ok(Ok(Received::Dropped));
    }
    if stranger && held.requests(batch)? >= MAX_REQUESTS {
        held.forget(&sender);
        debug!("message request refused: {MAX_REQUESTS} requests wait already");
        return Ok(Ok(Received::Dropped));
    }
    let kind_is_delivered = matches!(content.body, Body::Delivered(_));
    // A reply is a text that names the message it answers (docs/protocol.md §12.5).
    let (body, reply_to) = match content.body {
        Body::Reply(reply) => (Body::Text(reply.text), Some(reply.to)),
        body => (body, None),
    };
    let outcome = match body {
        Body::Text(text) => {
            let message = Message {
                id: content.id,
                conversation: sender.into(),
                sender: Some(sender),
                system: false,
                sent_at_ms: content.sent_at_ms,
                received_at_ms: now,
                text,
                status: MessageStatus::Received,
                recipients: Vec::new(),
                reply_to,
                attachment: None,
            };
            let known = contact.clone();
            let (record, request, key_changed) =
                contact_after_card(sender, contact, decrypted.new_session_card, now);
            if request && let Some(record) = &record {
                // A new request takes a row first: a full contact table refuses it, acknowledged,
                // and the rest of the group goes on.
                match batch.put_contact(record) {
                    Ok(()) => {}
                    Err(StoreError::ContactsFull { .. }) => {
                        held.forget(&sender);
                        return Ok(Ok(Received::Dropped));
                    }
                    Err(e) => return Err(e),
                }
            }
            // The store dedupes by (sender, message id), remembering ids past any envelope's life.
            let timer_s = batch.timer(&message.conversation)?.seconds;
            if batch.insert_message_expiring(&message, timer_s)? {
                // Which envelope carried it, durable with it: a later copy can then be answered.
                batch.mark_envelope(
                    &envelope_id,
                    &sender,
                    &message.id,
                    now.saturating_add(SEEN_RETENTION_MS),
                )?;
                if let Some(record) = &record {
                    if request {
                        *held.requests = held.requests.map(|n| n + 1);
                    } else if known.as_ref() != Some(record) {
                        // Written only when the card changed it: an unchanged row would add a table to
                        // every receive commit.
                        batch.put_contact(record)?;
                    }
                }
                Received::Message {
                    message,
                    request: if request { record } else { None },
                    key_changed,
                }
            } else {
                if request {
                    // A copy of a message from someone since removed: no request for it.
                    batch.delete_contact(&sender)?;
                    held.forget(&sender);
                }
                Received::Duplicate
            }
        }
        Body::Delivered(ids) | Body::Read(ids) if contact.is_some() => {
            let status = if kind_is_delivered || !held.privacy.read_receipts {
                MessageStatus::Delivered
            } else {
                MessageStatus::Read
            };
            let mut updated = Vec::new();
            for id in ids {
                if batch.update_message_status_at(sender, &id, status, now)? {
                    updated.push((id, status));
                }
            }
            Received::Receipts {
                contact: sender,
                updated,
            }
        }
        Body::Typing(_) if !held.privacy.typing => Received::Dropped,
        Body::Typing(typing) if contact.is_some() => Received::Typing {
            contact: sender,
            typing,
        },
        Body::Card(bytes) => match contact {
            Some(known) => card_update(batch, sender, known, &bytes, now)?,
            None => Received::Dropped,
        },
        // Group bodies (§18.4) from an accepted contact go to the node's groups.
        Body::Unknown { kind, data }
            if tern_protocol::group_wire::is_group_kind(kind)
                && contact
                    .as_ref()
                    .is_some_and(|c| c.state == ContactState::Accepted) =>
        {
            Received::Group {
                contact: sender,
                kind,
                data,
            }
        }
        Body::Unknown { kind, .. } => Received::Unknown {
            contact: sender,
            kind,
        },
        Body::File(announcement) if contact.is_some() => super::files::receive_file(
            batch,
            sender,
            (content.id, content.sent_at_ms),
            announcement,
            &envelope_id,
            now,
        )?,
        Body::Timer(setting) => match contact {
            Some(known) if known.state == ContactState::Accepted => super::timers::receive_timer(
                batch,
                &known,
                setting,
                (content.id, content.sent_at_ms),
                now,
            )?,
            _ => Received::Dropped,
        },
        // Receipts and typing from strangers mean nothing.
        _ => Received::Dropped,
    };
    Ok(Ok(outcome))
}
