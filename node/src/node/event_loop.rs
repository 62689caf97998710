//! The event loop's turn: waiting for commands, swarm events and timers, handling commands, and the group
//! commit of everything one wake-up took.

use super::*;

impl EventLoop {
    pub(super) async fn run(mut self) {
        let mut tick = tokio::time::interval(OUTBOX_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut republish = tokio::time::interval(REPUBLISH_INTERVAL);
        republish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fetch_tick = tokio::time::interval(FETCH_INTERVAL);
        fetch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = next_command(&mut self.pending.command, &mut self.commands) => match command {
                    Some(Command::Shutdown { reply }) => {
                        info!("shutting down");
                        drop(self);
                        let _ = reply.send(());
                        return;
                    }
                    Some(Command::Stop { reply }) => {
                        info!("stopping; the profile stays open");
                        let EventLoop { engine, .. } = self;
                        let _ = reply.send(Box::new(engine));
                        return;
                    }
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => {
                    self.handle_swarm_event(event);
                    self.drain_swarm();
                }
                _ = tick.tick() => self.flush_outbox(None),
                _ = republish.tick() => {
                    self.published = false;
                    self.publish_record();
                }
                _ = fetch_tick.tick() => {
                    self.fetch_all();
                    self.purge_mailbox();
                }
            }
        }
        info!("all handles dropped; stopping");
    }

    pub(super) fn emit(&self, event: Event) {
        // No subscriber is not an error: the CLI may not listen.
        let _ = self.events.send(event);
    }

    pub(super) fn handle_command(&mut self, command: Command) {
        match command {
            Command::SendText { to, text, reply } => self.send_texts(vec![(to, text, reply)]),
            Command::MarkRead {
                contact,
                ids,
                reply,
            } => {
                let result = self
                    .engine
                    .mark_read(&contact, &ids)
                    .map_err(NodeError::from);
                let _ = reply.send(result);
                self.flush_outbox(Some(contact));
            }
            Command::Typing { contact, typing } => self.send_typing(contact, typing),
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
                        .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
                    lan_only: self.lan_only,
                    nat: self.nat.clone(),
                    lan_peers: self.mdns_peers.len(),
                    mailboxes: self.my_mailboxes.iter().map(|(peer, _)| *peer).collect(),
                    lan_mailboxes: self.lan_mailboxes.clone(),
                    relayed: self.relays_reserved,
                    refusals: self.refusals(),
                };
                let _ = reply.send(status);
            }
            Command::Engine(call) => call(&mut self.engine),
            Command::Shutdown { .. } | Command::Stop { .. } => {}
        }
    }

    pub(super) fn send_typing(&mut self, contact: IdentityKey, typing: bool) {
        let Some(peer) = peer_id_of(&contact) else {
            return;
        };
        if !self.swarm.is_connected(&peer) {
            return;
        }
        match self
            .engine
            .send_control(&contact, Body::Typing(typing), false)
        {
            Ok((_, envelope)) => match EnvelopeRequest::from_envelope(&envelope) {
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

    /// Handles every swarm event that is ready now (up to [`MAX_EVENTS_PER_WAKE`]), then stores what they
    /// carried with one commit per kind and only then answers.
    pub(super) fn drain_swarm(&mut self) {
        use futures::FutureExt;
        for _ in 1..MAX_EVENTS_PER_WAKE {
            match self.swarm.next().now_or_never() {
                Some(Some(event)) => self.handle_swarm_event(event),
                _ => break,
            }
        }
        self.answer_inbound();
        self.record_delivered();
    }

    /// Records this wake-up's acknowledged envelopes as delivered, in one commit.
    pub(super) fn record_delivered(&mut self) {
        if self.pending.delivered.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.pending.delivered);
        match self
            .engine
            .delivered_many(&entries, MessageStatus::Delivered)
        {
            Ok(changed) => {
                for (entry, changed) in entries.iter().zip(changed) {
                    if changed {
                        self.emit(Event::StatusChanged {
                            contact: entry.recipient,
                            id: entry.message_id,
                            status: MessageStatus::Delivered,
                        });
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot record deliveries"),
        }
    }

    /// Seals `first` and every send command already queued behind it (up to [`MAX_SENDS_PER_COMMIT`]) and
    /// stores them with one durable commit; only then answers each caller and sends the envelopes. A
    /// command of another kind met in the queue is set aside for the next turn of the loop.
    pub(super) fn send_texts(&mut self, mut sends: Vec<(IdentityKey, String, SendReply)>) {
        while sends.len() < MAX_SENDS_PER_COMMIT && self.pending.command.is_none() {
            match self.commands.try_recv() {
                Ok(Command::SendText { to, text, reply }) => sends.push((to, text, reply)),
                Ok(other) => self.pending.command = Some(other),
                Err(_) => break,
            }
        }
        let texts: Vec<(IdentityKey, String)> = sends
            .iter()
            .map(|(to, text, _)| (*to, text.clone()))
            .collect();
        let results = self.engine.send_texts(&texts);
        for ((_, _, reply), result) in sends.into_iter().zip(results) {
            match result {
                Ok((message, entry)) => {
                    let _ = reply.send(Ok(message));
                    self.deliver_now(entry);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            }
        }
    }
}
