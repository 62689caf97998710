//! Receiving: opening, decrypting and storing envelopes, alone or as a group commit.

use super::*;

impl Engine {
    /// Opens, decrypts and durably stores one received envelope. Only after this returns `Ok` may the
    /// envelope be acknowledged.
    ///
    /// An envelope that carried a message stored before (the store remembers it by envelope id, across
    /// restarts, for as long as the duplicate check remembers the message) is [`Received::Copy`], found
    /// before any decryption is tried.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, ReceiveError> {
        match self.receive_group(&[bytes]) {
            Ok(outcomes) => outcomes
                .into_iter()
                .next()
                .unwrap_or(Err(ReceiveError::Store(group_failed("no outcome")))),
            Err(e) => Err(e.into()),
        }
    }

    /// Group commit of [`Self::receive`]: opens and decrypts each envelope in order and stores them all
    /// with one durable commit. One outcome per envelope, in order; none may be acknowledged before this
    /// returns. If the group cannot be stored, each envelope is stored on its own instead.
    pub fn receive_many(&mut self, envelopes: &[&[u8]]) -> Vec<Result<Received, ReceiveError>> {
        if envelopes.len() > 1 {
            match self.receive_group(envelopes) {
                Ok(outcomes) => return outcomes,
                Err(e) => {
                    warn!(error = %e, "group commit failed; storing the envelopes one by one")
                }
            }
        }
        envelopes.iter().map(|bytes| self.receive(bytes)).collect()
    }

    /// Decrypts and stores `envelopes` in one write transaction; an `Err` means nothing was stored and
    /// every session the group advanced was dropped from memory (to be reloaded from the store).
    pub(super) fn receive_group(
        &mut self,
        envelopes: &[&[u8]],
    ) -> Result<Vec<Result<Received, ReceiveError>>, StoreError> {
        let now = now_ms();
        let pickle_key = self.store.pickle_key();
        let mut touched = Vec::new();
        let Self {
            store,
            identity,
            sessions,
            ..
        } = self;
        let result = store.transaction(|batch| {
            let mut outcomes = Vec::with_capacity(envelopes.len());
            for bytes in envelopes {
                outcomes.push(receive_one(
                    batch,
                    identity,
                    sessions,
                    &pickle_key,
                    bytes,
                    now,
                    &mut touched,
                )?);
            }
            // Each advanced session once, in its latest state.
            for sender in &touched {
                if let Some(peer) = sessions.get(sender) {
                    batch.put_session(sender, &peer.pickle(&pickle_key, &mut rand::rng()))?;
                }
            }
            Ok(outcomes)
        });
        if result.is_err() {
            // The commit failed: forget the advanced sessions so the senders' retries decrypt again.
            for sender in &touched {
                self.sessions.remove(sender);
            }
        }
        result
    }
}

/// One envelope of a receive group, inside its write transaction: the outer `Err` (a store failure)
/// aborts the group; the inner one refuses this envelope only. Advanced sessions are listed in `touched`
/// for the caller to persist.
pub(super) fn receive_one(
    batch: &mut Batch<'_>,
    identity: &Identity,
    sessions: &mut HashMap<IdentityKey, PeerSessions>,
    pickle_key: &tern_protocol::PickleKey,
    bytes: &[u8],
    now: u64,
    touched: &mut Vec<IdentityKey>,
) -> Result<Result<Received, ReceiveError>, StoreError> {
    let envelope = match Envelope::decode(bytes) {
        Ok(envelope) => envelope,
        Err(e) => return Ok(Err(e.into())),
    };
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
    let me = identity.key();
    let peer = match sessions.entry(sender) {
        std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
        std::collections::hash_map::Entry::Vacant(slot) => {
            let loaded = match batch.session(&sender)? {
                Some(pickle) => PeerSessions::unpickle(pickle_key, &pickle).unwrap_or_else(|e| {
                    warn!(error = %e, "stored sessions unreadable; starting afresh");
                    PeerSessions::new(me, sender)
                }),
                None => PeerSessions::new(me, sender),
            };
            slot.insert(loaded)
        }
    };
    let decrypted = match peer.decrypt(identity, &opened.session_message) {
        Ok(decrypted) => decrypted,
        Err(e) => return Ok(Err(e.into())),
    };
    if !touched.contains(&sender) {
        touched.push(sender);
    }
    // If the content is malformed the ratchet still moved: the session is kept, the content refused.
    let content = match Content::decode(&decrypted.plaintext) {
        Ok(content) => content,
        Err(e) => return Ok(Err(ReceiveError::Malformed(e))),
    };
    let kind_is_delivered = matches!(content.body, Body::Delivered(_));
    let outcome = match content.body {
        Body::Text(text) => {
            let message = MessageRecord {
                id: content.id,
                conversation: sender,
                outgoing: false,
                sent_at_ms: content.sent_at_ms,
                received_at_ms: now,
                text,
                status: MessageStatus::Received,
            };
            // The store dedupes by (sender, message id), remembering ids past any envelope's life.
            if batch.insert_message(&message)? {
                // Which envelope carried it, durable with it: a later copy can then be answered.
                batch.mark_envelope(
                    &envelope_id,
                    &sender,
                    &message.id,
                    now.saturating_add(SEEN_RETENTION_MS),
                )?;
                let (record, request, key_changed) =
                    contact_after_card(sender, contact, decrypted.new_session_card, now);
                if let Some(record) = &record {
                    batch.put_contact(record)?;
                }
                Received::Message {
                    message,
                    request: if request { record } else { None },
                    key_changed,
                }
            } else {
                Received::Duplicate
            }
        }
        Body::Delivered(ids) | Body::Read(ids) if contact.is_some() => {
            let status = if kind_is_delivered {
                MessageStatus::Delivered
            } else {
                MessageStatus::Read
            };
            let mut updated = Vec::new();
            for id in ids {
                if batch.update_message_status(&sender, &id, status)? {
                    updated.push((id, status));
                }
            }
            Received::Receipts {
                contact: sender,
                updated,
            }
        }
        Body::Typing(typing) if contact.is_some() => Received::Typing {
            contact: sender,
            typing,
        },
        Body::Unknown { kind, .. } => Received::Unknown {
            contact: sender,
            kind,
        },
        // Receipts and typing from strangers mean nothing.
        _ => Received::Dropped,
    };
    Ok(Ok(outcome))
}
