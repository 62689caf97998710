//! The event loop's turn: waiting for commands, swarm events and timers, handling commands, and the group
//! commit of everything one wake-up took.

use super::*;
use crate::api::ConversationId;
use crate::store::SEARCH_BUILD_BATCH;

/// Pause between two batches of the search index's build for a profile written before it, so the loop
/// answers the network in between.
const SEARCH_INDEX_STEP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

impl EventLoop {
    pub(super) async fn run(mut self) {
        let mut republish = tokio::time::interval(REPUBLISH_INTERVAL);
        republish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fetch_tick = tokio::time::interval(FETCH_INTERVAL);
        fetch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prekey_tick = tokio::time::interval(std::time::Duration::from_millis(
            crate::engine::PREKEY_CHECK_INTERVAL_MS,
        ));
        prekey_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backup_tick = tokio::time::interval(AUTO_BACKUP_CHECK);
        backup_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut search_index_tick = tokio::time::interval(SEARCH_INDEX_STEP_INTERVAL);
        search_index_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut search_indexed = false;
        loop {
            tokio::select! {
                command = next_command(&mut self.pending.command, &mut self.commands) => match command {
                    Some(Command::Shutdown { reply }) => {
                        info!("shutting down");
                        self.finish_commits().await;
                        drop(self);
                        let _ = reply.send(());
                        return;
                    }
                    Some(Command::Stop { reply }) => {
                        info!("stopping; the profile stays open");
                        self.finish_commits().await;
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
                _ = delivery_timer(self.delivery.poll_timeout()) => {
                    self.delivery.handle_timeout(std::time::Instant::now());
                    self.run_delivery();
                }
                _ = delivery_timer(self.pending.delivered.due()) => self.record_delivered(),
                _ = republish.tick() => {
                    self.published = false;
                    self.publish_record();
                }
                _ = delivery_timer(self.mailbox_client.poll_timeout()) => {
                    self.mailbox_client.handle_timeout(std::time::Instant::now());
                    self.run_client();
                }
                _ = fetch_tick.tick() => self.purge_mailbox(),
                _ = delivery_timer(self.group_mail.poll_timeout()) => {
                    self.group_mail.handle_timeout(std::time::Instant::now());
                    self.run_group_mail();
                }
                _ = delivery_timer(self.reach.next_timeout()) => self.reach_timeout(),
                _ = prekey_tick.tick() => self.rotate_prekey(),
                _ = backup_tick.tick() => self.auto_backup(),
                _ = search_index_tick.tick(), if !search_indexed => {
                    search_indexed = self.build_search_index();
                }
                _ = delivery_timer(self.groups.receipts.due()) => self.flush_group_receipts(),
                _ = delivery_timer(self.groups.updates.next()) => self.run_group_updates(),
                _ = delivery_timer(expiry::deadline(self.engine.next_expiry())) => {
                    self.expire_messages().await;
                }
            }
        }
        info!("all handles dropped; stopping");
        self.finish_commits().await;
    }

    /// Waits for every send commit running off the loop (their callers are answered by then), then records
    /// the deliveries still waiting.
    async fn finish_commits(&mut self) {
        for commit in std::mem::take(&mut self.commits) {
            if let Err(e) = commit.await {
                warn!(error = %e, "a send commit did not finish");
            }
        }
        self.record_delivered();
    }

    /// Writes an automatic backup when one is due (`crate::backup::auto`). It runs on the loop, which waits
    /// for it (about 1.3 s per 100,000 messages, docs/benchmarks.md); nothing is lost meanwhile.
    fn auto_backup(&mut self) {
        match self.engine.auto_backup_if_due(now_ms()) {
            Ok(Some((path, summary))) => {
                info!(
                    messages = summary.messages,
                    bytes = summary.archive_bytes,
                    "automatic backup written"
                );
                self.emit(Event::BackupWritten { path });
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "the automatic backup failed; it is tried again later"),
        }
    }

    /// Indexes one batch of a profile written before the search index ([`SEARCH_BUILD_BATCH`] messages,
    /// one commit); `true` once the index is built, or when it cannot be (logged once: searches keep
    /// scanning every message, and the next start tries again).
    fn build_search_index(&mut self) -> bool {
        match self
            .engine
            .store_mut()
            .build_search_index_step(SEARCH_BUILD_BATCH)
        {
            Ok(built) => built,
            Err(e) if e.is_disk_failing() => false,
            Err(e) => {
                warn!(error = %e, "cannot build the search index; searches scan every message");
                true
            }
        }
    }

    /// A node left running rotates its signed prekey when due, as opening the profile does.
    fn rotate_prekey(&mut self) {
        match self.engine.rotate_prekey_if_due() {
            Ok(true) => {
                info!("rotated the signed prekey and re-issued the card");
                self.flush_card_updates();
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not rotate the signed prekey"),
        }
    }

    /// Starts delivering the re-issued card to the contacts it was just queued for.
    pub(super) fn flush_card_updates(&mut self) {
        for contact in self.engine.take_card_updates() {
            self.flush_for(&contact);
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
        self.answer_mailbox();
    }

    /// Queues an acknowledged envelope to be recorded as delivered: at once when nothing else is being
    /// delivered, else together with the acks that follow (`delivered::Acked`).
    pub(super) fn note_delivered(&mut self, entry: OutboxEntry) {
        let idle = self.delivery.in_flight() == 0 && self.delivery.waiting() == 0;
        if self
            .pending
            .delivered
            .push(entry, idle, std::time::Instant::now())
        {
            self.record_delivered();
        }
    }

    /// Records the acknowledged envelopes waiting as delivered, in one commit.
    pub(super) fn record_delivered(&mut self) {
        let entries = self.pending.delivered.take();
        if entries.is_empty() {
            return;
        }
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
            Err(e) if e.is_disk_failing() => debug!(error = %e, "cannot record deliveries"),
            Err(e) => warn!(error = %e, "cannot record deliveries"),
        }
    }

    /// Seals `first` and every send command already queued behind it (up to [`MAX_SENDS_PER_COMMIT`]) and
    /// stores them with one durable commit; only then answers each caller and sends the envelopes. A
    /// command of another kind met in the queue is set aside for the next turn of the loop.
    pub(super) fn send_texts(&mut self, mut sends: Vec<(IdentityKey, String, SendReply)>) {
        while sends.len() < MAX_SENDS_PER_COMMIT && self.pending.command.is_none() {
            match self.commands.try_recv() {
                Ok(Command::SendText {
                    conversation: ConversationId::Direct(to),
                    text,
                    reply,
                }) => sends.push((to, text, reply)),
                Ok(other) => self.pending.command = Some(other),
                Err(_) => break,
            }
        }
        let texts: Vec<(IdentityKey, String)> = sends
            .iter()
            .map(|(to, text, _)| (*to, text.clone()))
            .collect();
        if let Some(reserved) = self.engine.send_texts_reserved(&texts, now_ms()) {
            self.send_reserved(sends, reserved);
            return;
        }
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

impl EventLoop {
    /// Texts sealed under reserved message keys (docs/protocol.md §8.3): their rows commit on a blocking
    /// thread while the envelopes leave at once; each caller is answered when that commit returns. The
    /// commit's transaction began on this loop, so every later write of the loop (an ack recorded as
    /// delivered, a retry) waits for it in redb and finds the rows. If it fails, the callers get the error,
    /// though an envelope may already have reached its recipient.
    fn send_reserved(
        &mut self,
        sends: Vec<(IdentityKey, String, SendReply)>,
        reserved: crate::engine::ReservedSends,
    ) {
        let crate::engine::ReservedSends { results, commit } = reserved;
        let mut answers = Vec::with_capacity(sends.len());
        let mut entries = Vec::new();
        for ((_, _, reply), result) in sends.into_iter().zip(results) {
            match result {
                Ok((message, entry)) => {
                    answers.push((reply, Ok(message)));
                    entries.push(entry);
                }
                Err(e) => answers.push((reply, Err(NodeError::from(e)))),
            }
        }
        let Some(commit) = commit else {
            for (reply, answer) in answers {
                let _ = reply.send(answer);
            }
            return;
        };
        self.commits.retain(|c| !c.is_finished());
        self.commits.push(tokio::task::spawn_blocking(move || {
            let failed = commit.commit().err().map(|e| e.to_string());
            for (reply, answer) in answers {
                let answer = match (&failed, answer) {
                    (Some(reason), Ok(_)) => Err(NodeError::from(EngineError::Store(
                        crate::store::StoreError::Io(std::io::Error::other(format!(
                            "the message could not be stored after it was sent: {reason}"
                        ))),
                    ))),
                    (_, answer) => answer,
                };
                let _ = reply.send(answer);
            }
        }));
        for entry in entries {
            self.deliver_now(entry);
        }
    }
}

/// Waits for the delivery machine's next deadline (forever if it has none).
async fn delivery_timer(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
