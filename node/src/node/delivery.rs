//! Delivery, the actor's side: feeds the [`Delivery`] state machine what the swarm and the store say
//! (connections, acks, deposit answers, lookups, outbox reads) and carries its actions out (sends, dials,
//! deposits, lookups, outbox updates). Every decision is the machine's (`crate::delivery`).

use std::time::Instant;

use super::*;
use crate::delivery::{Action, Answer, Delivery, Entry, Outgoing};

/// The machine's view of an outbox row.
impl Entry for OutboxEntry {
    fn id(&self) -> MessageId {
        self.message_id
    }
    fn recipient(&self) -> IdentityKey {
        self.recipient
    }
    fn attempts(&self) -> u32 {
        self.attempts
    }
    fn count_attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }
}

/// An outbox row for the machine: its unix expiry turned into an [`Instant`] on the loop's clock.
pub(super) fn outgoing(entry: OutboxEntry, now: Instant, now_ms: u64) -> Outgoing<OutboxEntry> {
    let left_ms = entry.expires_at.saturating_mul(1000).saturating_sub(now_ms);
    let expires = now
        .checked_add(Duration::from_millis(left_ms))
        .unwrap_or(now + Duration::from_secs(365 * 24 * 3600));
    Outgoing { entry, expires }
}

/// The state machine as the event loop holds it.
pub(super) type DeliveryMachine = Delivery<OutboxEntry>;

impl EventLoop {
    /// Carries out everything the delivery machine asked for, feeding back what can be answered at once.
    pub(super) fn run_delivery(&mut self) {
        while let Some(action) = self.delivery.poll_action() {
            let now = Instant::now();
            match action {
                Action::Send { peer, entry } => {
                    match EnvelopeRequest::new(entry.envelope.clone()) {
                        Ok(request) => {
                            let id = self
                                .swarm
                                .behaviour_mut()
                                .envelope
                                .send_request(&peer, request);
                            self.envelope_requests.insert(id, entry.message_id);
                        }
                        Err(e) => {
                            warn!(error = %e, "outbox entry does not fit a frame");
                            self.delivery.handle_send_failed(entry.message_id, now);
                        }
                    }
                }
                Action::DialContact { peer } => self.dial_contact(peer),
                Action::DialServer { peer } => {
                    let addrs = self.known_addrs.get(&peer).cloned().unwrap_or_default();
                    if let Err(e) = self
                        .swarm
                        .dial(DialOpts::peer_id(peer).addresses(addrs).build())
                    {
                        debug!(peer = %short(&peer), error = %e, "cannot dial a mailbox");
                    }
                }
                Action::Deposit { server, entry } => {
                    let (message, recipient) = (entry.message_id, entry.recipient);
                    let request = MailboxRequest::Deposit {
                        envelope: entry.envelope,
                    };
                    if !self.mailbox_request(
                        server,
                        request,
                        MailboxCall::Deposit {
                            server,
                            message,
                            recipient,
                        },
                    ) {
                        self.delivery
                            .handle_deposit_answered(server, message, false, now);
                    }
                }
                Action::Lookup { recipient } => self.start_lookup(recipient, now),
                Action::LoadDue | Action::LoadEarly => {
                    // Deliveries waiting to be recorded are recorded first, so the read does not bring
                    // back entries already delivered (a load can follow an ack at once:
                    // `Delivery::fill_window`).
                    self.record_delivered();
                    let now_ms = now_ms();
                    let until = match action {
                        Action::LoadEarly => u64::MAX,
                        _ => now_ms,
                    };
                    match self
                        .engine
                        .store()
                        .outbox_due(until, crate::delivery::OUTBOX_BATCH)
                    {
                        Ok(entries) => {
                            let entries = entries
                                .into_iter()
                                .map(|e| outgoing(e, now, now_ms))
                                .collect();
                            self.delivery.handle_loaded(entries, now);
                        }
                        Err(e) if e.is_disk_failing() => {
                            debug!(error = %e, "cannot read the outbox")
                        }
                        Err(e) => warn!(error = %e, "cannot read the outbox"),
                    }
                }
                Action::LoadFor { peer } => {
                    let Some(contact) = self.contact_of(&peer) else {
                        continue;
                    };
                    // As for a due load: what was delivered must not come back from the store.
                    self.record_delivered();
                    let now_ms = now_ms();
                    match self
                        .engine
                        .store()
                        .outbox_for(&contact, crate::delivery::OUTBOX_BATCH)
                    {
                        Ok(found) => {
                            let entries = found
                                .into_iter()
                                .map(|e| outgoing(e, now, now_ms))
                                .collect();
                            self.delivery.handle_loaded_for(peer, entries);
                        }
                        Err(e) if e.is_disk_failing() => {
                            debug!(error = %e, "cannot read the outbox")
                        }
                        Err(e) => warn!(error = %e, "cannot read the outbox"),
                    }
                }
                // Recorded with the other deliveries of the next few milliseconds in one commit.
                Action::RecordDelivered { entry } => self.note_delivered(entry),
                Action::RecordDeposited { entry } => {
                    match self.engine.delivered(&entry, MessageStatus::Sent) {
                        Ok(true) => self.emit(Event::StatusChanged {
                            contact: entry.recipient,
                            id: entry.message_id,
                            status: MessageStatus::Sent,
                        }),
                        Ok(false) => {}
                        Err(e) if e.is_disk_failing() => {
                            debug!(error = %e, "cannot record a deposit")
                        }
                        Err(e) => warn!(error = %e, "cannot record a deposit"),
                    }
                }
                Action::RecordFailedAttempt { entry } | Action::Expired { entry } => {
                    self.retry_later(&entry);
                }
            }
        }
    }

    /// A user just queued `entry`.
    pub(super) fn deliver_now(&mut self, entry: OutboxEntry) {
        let now = Instant::now();
        self.delivery
            .handle_queued(outgoing(entry, now, now_ms()), now);
        self.run_delivery();
    }

    /// Everything queued for `contact` goes out now if it is connected (a receipt was just queued).
    pub(super) fn flush_for(&mut self, contact: &IdentityKey) {
        if let Some(peer) = peer_id_of(contact) {
            self.delivery.flush_for(peer);
            self.run_delivery();
        }
    }

    /// Tells the machine which mailbox servers take mail for recipients whose own are unknown.
    pub(super) fn update_shared_servers(&mut self) {
        let servers = self.mailbox_servers();
        if let Some(files) = &self.files {
            files.set_mailboxes(servers.clone());
        }
        self.delivery.handle_shared_servers(servers);
        self.run_delivery();
    }

    /// This profile's mailbox servers: those configured, then those found on the LAN.
    pub(super) fn mailbox_servers(&self) -> Vec<PeerId> {
        self.my_mailboxes
            .iter()
            .map(|(p, _)| *p)
            .chain(self.lan_mailboxes.iter().copied())
            .collect()
    }

    /// A recipient's mailbox servers: those its card names, else its record in the DHT.
    pub(super) fn start_lookup(&mut self, recipient: IdentityKey, now: Instant) {
        let card_servers = match self.engine.store().contact(&recipient) {
            Ok(Some(contact)) => tern_protocol::ContactCard::decode(&contact.card)
                .map(|card| card.details().mailboxes.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if !card_servers.is_empty() {
            let peers = self.learn_servers(&card_servers);
            self.delivery
                .handle_lookup_finished(recipient, Some(peers), now);
            return;
        }
        let key = crate::net::dht::mailbox_record_key(&recipient.mailbox_id());
        match self.swarm.behaviour_mut().kad.as_mut() {
            Some(kad) => {
                let query = kad.get_record(key);
                self.lookup_queries.insert(query, (recipient, None));
            }
            None => self.delivery.handle_lookup_finished(recipient, None, now),
        }
    }

    /// An envelope request was answered.
    pub(super) fn handle_ack(&mut self, request_id: OutboundRequestId, ack: EnvelopeAck) {
        if self.fire_and_forget.remove(&request_id) {
            return;
        }
        if let Some(host) = self.mailbox_host.as_mut()
            && host.push_answered(&request_id, Some(ack))
        {
            return;
        }
        let Some(message) = self.envelope_requests.remove(&request_id) else {
            return;
        };
        let answer = match ack {
            EnvelopeAck::Accepted | EnvelopeAck::Duplicate => Answer::Taken,
            EnvelopeAck::Rejected(reason) => {
                debug!(?reason, "recipient refused an envelope");
                Answer::Refused
            }
        };
        self.delivery
            .handle_send_answered(message, answer, Instant::now());
        self.run_delivery();
    }

    /// An envelope request failed (timeout, closed connection).
    pub(super) fn envelope_failed(&mut self, request_id: OutboundRequestId) {
        self.fire_and_forget.remove(&request_id);
        if let Some(host) = self.mailbox_host.as_mut()
            && host.push_answered(&request_id, None)
        {
            return;
        }
        if let Some(message) = self.envelope_requests.remove(&request_id) {
            debug!("envelope not delivered; will retry");
            self.delivery.handle_send_failed(message, Instant::now());
            self.run_delivery();
        }
    }

    pub(super) fn deposit_answered(&mut self, server: PeerId, message: MessageId, stored: bool) {
        self.delivery
            .handle_deposit_answered(server, message, stored, Instant::now());
        self.run_delivery();
    }

    pub(super) fn retry_later(&mut self, entry: &OutboxEntry) {
        match self.engine.attempt_failed(entry) {
            Ok(Some(status)) => self.emit(Event::StatusChanged {
                contact: entry.recipient,
                id: entry.message_id,
                status,
            }),
            Ok(None) => {}
            Err(e) if e.is_disk_failing() => {
                debug!(error = %e, "cannot reschedule an outbox entry")
            }
            Err(e) => warn!(error = %e, "cannot reschedule an outbox entry"),
        }
    }

    /// Reaches a contact with mail waiting (`reach.rs`: known addresses, its address record).
    pub(super) fn dial_contact(&mut self, peer: PeerId) {
        self.find_contact(peer);
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
}
