//! The outbox side: entries due, deliveries and failed attempts.

use super::*;

impl Engine {
    /// Outbox entries due at `now`, oldest first.
    pub fn outbox_due(&self, now: u64, limit: usize) -> Result<Vec<OutboxEntry>, EngineError> {
        Ok(self.store.outbox_due(now, limit)?)
    }

    /// An envelope was delivered to (or deposited for) its recipient: drop it from the outbox and move the
    /// message on to `status`. Returns whether the message's status changed.
    pub fn delivered(
        &mut self,
        entry: &OutboxEntry,
        status: MessageStatus,
    ) -> Result<bool, EngineError> {
        let changed = self.delivered_many(std::slice::from_ref(entry), status)?;
        Ok(changed.first().copied().unwrap_or(false))
    }

    /// [`Self::delivered`] for several envelopes, in one durable commit. Returns, per entry, whether its
    /// message's status changed.
    pub fn delivered_many(
        &mut self,
        entries: &[OutboxEntry],
        status: MessageStatus,
    ) -> Result<Vec<bool>, EngineError> {
        Ok(self.store.transaction(|batch| {
            let mut changed = Vec::with_capacity(entries.len());
            for entry in entries {
                batch.outbox_remove(&entry.message_id)?;
                changed.push(
                    batch.message(entry.recipient, &entry.message_id)?.is_some()
                        && batch.update_message_status(
                            entry.recipient,
                            &entry.message_id,
                            status,
                        )?,
                );
            }
            Ok(changed)
        })?)
    }

    /// A delivery attempt failed: try again later, or give up once the envelope expired.
    /// Returns `Some(status)` when the message's status changed (to `Failed`).
    pub fn attempt_failed(
        &mut self,
        entry: &OutboxEntry,
    ) -> Result<Option<MessageStatus>, EngineError> {
        self.attempt_failed_at(entry, now_ms())
    }

    /// [`Self::attempt_failed`] at `now_ms` (unix milliseconds).
    pub fn attempt_failed_at(
        &mut self,
        entry: &OutboxEntry,
        now_ms: u64,
    ) -> Result<Option<MessageStatus>, EngineError> {
        let now = now_ms;
        if now / 1000 >= entry.expires_at {
            let mut batch = self.store.batch()?;
            batch.outbox_remove(&entry.message_id)?;
            let changed = batch.message(entry.recipient, &entry.message_id)?.is_some()
                && batch.update_message_status(
                    entry.recipient,
                    &entry.message_id,
                    MessageStatus::Failed,
                )?;
            batch.commit()?;
            return Ok(changed.then_some(MessageStatus::Failed));
        }
        let attempts = entry.attempts.saturating_add(1);
        // The store counts the attempt.
        self.store
            .outbox_reschedule(&entry.message_id, now + retry_delay_ms(attempts))?;
        Ok(None)
    }
}
