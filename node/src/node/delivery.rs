//! Delivery: the outbox pass, sending envelopes to connected contacts within the in-flight window, dialling,
//! retries, and deposits with mailbox servers when the recipient cannot be reached.

use super::*;

impl EventLoop {
    /// Sends due outbox entries (all entries for `only` when given) to connected recipients, and dials
    /// the others.
    pub(super) fn flush_outbox(&mut self, only: Option<IdentityKey>) {
        let now = now_ms();
        let entries = match only {
            Some(to) => self.engine.store().outbox_for(&to, OUTBOX_BATCH),
            None => self.engine.store().outbox_due(now, OUTBOX_BATCH),
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                warn!(error = %e, "cannot read the outbox");
                return;
            }
        };
        let mut dialled = HashSet::new();
        for entry in entries {
            if self.sending.contains(&entry.message_id) || self.in_flight.len() >= MAX_IN_FLIGHT {
                continue;
            }
            let Some(peer) = peer_id_of(&entry.recipient) else {
                continue;
            };
            if self.swarm.is_connected(&peer) {
                self.send_entry(peer, entry);
            } else if only.is_none() && entry.attempts > 0 && self.deposit(&entry) {
                // Handed to mailboxes; a direct connection may still come first.
                if dialled.insert(peer) {
                    self.dial_contact(peer);
                }
            } else if dialled.insert(peer) {
                self.dial_contact(peer);
                if only.is_none() {
                    // Not reachable now: wait for the connection (which flushes) or the next retry.
                    if let Err(e) = self.engine.attempt_failed(&entry) {
                        warn!(error = %e, "cannot reschedule an outbox entry");
                    }
                }
            } else if only.is_none()
                && let Err(e) = self.engine.attempt_failed(&entry)
            {
                warn!(error = %e, "cannot reschedule an outbox entry");
            }
        }
    }

    /// Sends a just-queued entry if its recipient is connected and there is room in flight; otherwise the
    /// outbox pass picks it up (and dials).
    pub(super) fn deliver_now(&mut self, entry: OutboxEntry) {
        let Some(peer) = peer_id_of(&entry.recipient) else {
            return;
        };
        if !self.swarm.is_connected(&peer) {
            self.dial_contact(peer);
        } else if self.in_flight.len() < MAX_IN_FLIGHT {
            self.send_entry(peer, entry);
        } else if self.waiting.len() < MAX_WAITING {
            self.sending.insert(entry.message_id);
            self.waiting.push_back(entry);
        }
    }

    /// An in-flight slot freed up: send the next waiting entry whose recipient is still connected.
    pub(super) fn send_waiting(&mut self) {
        while self.in_flight.len() < MAX_IN_FLIGHT {
            let Some(entry) = self.waiting.pop_front() else {
                return;
            };
            self.sending.remove(&entry.message_id);
            match peer_id_of(&entry.recipient) {
                Some(peer) if self.swarm.is_connected(&peer) => self.send_entry(peer, entry),
                // Disconnected meanwhile: the outbox pass retries it.
                _ => {}
            }
        }
    }

    pub(super) fn send_entry(&mut self, peer: PeerId, entry: OutboxEntry) {
        match EnvelopeRequest::new(entry.envelope.clone()) {
            Ok(request) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .envelope
                    .send_request(&peer, request);
                self.sending.insert(entry.message_id);
                self.in_flight.insert(id, entry);
            }
            Err(e) => warn!(error = %e, "outbox entry does not fit a frame"),
        }
    }

    pub(super) fn dial_contact(&mut self, peer: PeerId) {
        let mut addrs = self.known_addrs.get(&peer).cloned().unwrap_or_default();
        addrs.extend(self.card_addrs(&peer));
        if addrs.is_empty() && self.lan_only {
            return;
        }
        if !self.lan_only
            && let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
        {
            kad.get_closest_peers(peer);
        }
        let opts = DialOpts::peer_id(peer).addresses(addrs).build();
        if let Err(e) = self.swarm.dial(opts) {
            debug!(peer = %short(&peer), error = %e, "dial failed");
        }
    }

    /// Addresses the contact published in its card.
    pub(super) fn card_addrs(&self, peer: &PeerId) -> Vec<Multiaddr> {
        let Ok(key) = IdentityKey::from_peer_id(&peer.to_base58()) else {
            return Vec::new();
        };
        let Ok(Some(contact)) = self.engine.store().contact(&key) else {
            return Vec::new();
        };
        let Ok(card) = tern_protocol::ContactCard::decode(&contact.card) else {
            return Vec::new();
        };
        card.details()
            .addresses
            .iter()
            .filter_map(|bytes| Multiaddr::try_from(bytes.clone()).ok())
            .collect()
    }

    pub(super) fn remember_addr(&mut self, peer: PeerId, addr: Multiaddr) {
        if !self.known_addrs.contains_key(&peer) && self.known_addrs.len() >= MAX_KNOWN_PEERS {
            return;
        }
        let addrs = self.known_addrs.entry(peer).or_default();
        if !addrs.contains(&addr) {
            if addrs.len() >= MAX_ADDRS_PER_PEER {
                addrs.remove(0);
            }
            addrs.push(addr);
        }
    }

    pub(super) fn contact_of(&self, peer: &PeerId) -> Option<IdentityKey> {
        let key = IdentityKey::from_peer_id(&peer.to_base58()).ok()?;
        matches!(self.engine.store().contact(&key), Ok(Some(_))).then_some(key)
    }

    pub(super) fn retry_later(&mut self, entry: &OutboxEntry) {
        match self.engine.attempt_failed(entry) {
            Ok(Some(status)) => self.emit(Event::StatusChanged {
                contact: entry.recipient,
                id: entry.message_id,
                status,
            }),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot reschedule an outbox entry"),
        }
    }

    pub(super) fn handle_ack(&mut self, request_id: OutboundRequestId, ack: EnvelopeAck) {
        if self.fire_and_forget.remove(&request_id) {
            return;
        }
        if let Some((mailbox, id)) = self.pushes.remove(&request_id) {
            self.push_answered(mailbox, id, Some(ack));
            return;
        }
        let Some(entry) = self.in_flight.remove(&request_id) else {
            return;
        };
        self.sending.remove(&entry.message_id);
        self.send_waiting();
        match ack {
            // Recorded with this wake-up's other deliveries in one commit (`drain_swarm`).
            EnvelopeAck::Accepted | EnvelopeAck::Duplicate => self.pending.delivered.push(entry),
            EnvelopeAck::Rejected(reason) => {
                debug!(?reason, "recipient refused an envelope");
                self.retry_later(&entry);
            }
        }
    }

    /// Remembers the addresses of published mailbox servers and returns their PeerIds.
    pub(super) fn learn_servers(&mut self, servers: &[tern_protocol::MailboxNode]) -> Vec<PeerId> {
        let mut peers = Vec::with_capacity(servers.len());
        for server in servers {
            let Ok(peer) = PeerId::from_bytes(&server.peer_id) else {
                continue;
            };
            for addr in &server.addresses {
                if let Ok(addr) = Multiaddr::try_from(addr.clone()) {
                    self.remember_addr(peer, addr);
                }
            }
            peers.push(peer);
        }
        peers
    }

    /// Where to deposit mail for `recipient`: the mailboxes in their card, else ours (shared community nodes),
    /// else mailboxes on the LAN.
    pub(super) fn deposit_targets(&mut self, recipient: &IdentityKey) -> Vec<PeerId> {
        let mut targets: Vec<PeerId> = Vec::new();
        if let Ok(Some(contact)) = self.engine.store().contact(recipient)
            && let Ok(card) = tern_protocol::ContactCard::decode(&contact.card)
        {
            targets = self.learn_servers(&card.details().mailboxes);
        }
        if targets.is_empty()
            && let Some(Lookup::Found(found)) = self.lookups.get(recipient)
        {
            targets.extend(found.iter().copied());
        }
        if targets.is_empty() {
            targets.extend(self.my_mailboxes.iter().map(|(p, _)| *p));
            targets.extend(self.lan_mailboxes.iter().copied());
        }
        let mut seen = HashSet::new();
        targets.retain(|p| seen.insert(*p));
        targets
    }

    /// Starts depositing `entry` with up to [`DEPOSIT_COPIES`] connected mailbox servers. Returns whether
    /// any deposit is under way.
    pub(super) fn deposit(&mut self, entry: &OutboxEntry) -> bool {
        if self.awaiting_lookup(&entry.recipient) {
            // Wait for the recipient's mailbox record before falling back to shared servers.
            return true;
        }
        let targets = self.deposit_targets(&entry.recipient);
        if targets.is_empty() {
            return false;
        }
        let needed = DEPOSIT_COPIES.min(targets.len());
        let progress = self
            .deposits
            .entry(entry.message_id)
            .or_insert_with(|| Deposit {
                entry: entry.clone(),
                stored: HashSet::new(),
                asked: HashSet::new(),
                needed,
            });
        let mut ask = Vec::new();
        for server in targets {
            if progress.stored.len() + progress.asked.len() >= needed {
                break;
            }
            if progress.stored.contains(&server) || progress.asked.contains(&server) {
                continue;
            }
            if self.swarm.is_connected(&server) {
                progress.asked.insert(server);
                ask.push(server);
            } else {
                let addrs = self.known_addrs.get(&server).cloned().unwrap_or_default();
                if let Err(e) = self
                    .swarm
                    .dial(DialOpts::peer_id(server).addresses(addrs).build())
                {
                    debug!(peer = %short(&server), error = %e, "cannot dial a mailbox");
                }
            }
        }
        let envelope = entry.envelope.clone();
        let message = entry.message_id;
        let mut any = !self
            .deposits
            .get(&message)
            .is_some_and(|d| d.asked.is_empty() && d.stored.is_empty());
        for server in ask {
            let request = MailboxRequest::Deposit {
                envelope: envelope.clone(),
            };
            if self.mailbox_request(server, request, MailboxCall::Deposit { server, message }) {
                any = true;
            } else if let Some(d) = self.deposits.get_mut(&message) {
                d.asked.remove(&server);
            }
        }
        any
    }

    pub(super) fn deposit_answered(&mut self, server: PeerId, message: MessageId, stored: bool) {
        let Some(progress) = self.deposits.get_mut(&message) else {
            return;
        };
        progress.asked.remove(&server);
        if stored {
            progress.stored.insert(server);
        }
        if progress.stored.len() >= progress.needed {
            if let Some(done) = self.deposits.remove(&message) {
                match self.engine.delivered(&done.entry, MessageStatus::Sent) {
                    Ok(true) => self.emit(Event::StatusChanged {
                        contact: done.entry.recipient,
                        id: done.entry.message_id,
                        status: MessageStatus::Sent,
                    }),
                    Ok(false) => {}
                    Err(e) => warn!(error = %e, "cannot record a deposit"),
                }
            }
        } else if progress.asked.is_empty() {
            // Every server asked has answered and too few stored it: try again on a later pass (the
            // servers that did store it answer `Duplicate` then).
            let entry = progress.entry.clone();
            self.deposits.remove(&message);
            self.retry_later(&entry);
        }
    }
}
