//! Disappearing messages on the loop: when the engine says a message is due, its file is removed (bytes
//! first, so a crash in between leaves a row that expires again, never a file nobody knows of), then
//! its rows, and the users are told. A group's state also forgets its own expired texts, which it kept to
//! send again after a rollback.

use super::*;
use crate::api::ConversationId;

/// After a failed expiry the next try waits this long.
pub const EXPIRY_RETRY: Duration = Duration::from_secs(5);

/// The instant a unix-milliseconds deadline falls on (now if it is past).
pub(super) fn deadline(at_ms: Option<u64>) -> Option<std::time::Instant> {
    let at_ms = at_ms?;
    let wait = at_ms.saturating_sub(now_ms());
    Some(std::time::Instant::now() + Duration::from_millis(wait))
}

impl EventLoop {
    /// Deletes every message due now, with its file, and reports them per conversation.
    pub(super) async fn expire_messages(&mut self) {
        let now = now_ms();
        let files = match self.engine.due_files(now) {
            Ok(files) => files,
            Err(e) => {
                warn!(error = %e, "cannot list the files of expired messages");
                self.engine.retry_expiry(now, EXPIRY_RETRY);
                return;
            }
        };
        if let Some(wire) = &self.files {
            for file in files {
                wire.forget(file.announcement.hash, file.outgoing).await;
            }
        }
        let expired = match self.engine.expire_due(now) {
            Ok(expired) => expired,
            Err(e) => {
                warn!(error = %e, "cannot delete expired messages");
                self.engine.retry_expiry(now, EXPIRY_RETRY);
                return;
            }
        };
        if expired.is_empty() {
            return;
        }
        debug!(messages = expired.len(), "messages expired");
        let mut by_conversation: BTreeMap<Vec<u8>, (ConversationId, Vec<MessageId>)> =
            BTreeMap::new();
        for gone in expired {
            by_conversation
                .entry(gone.conversation.to_bytes().to_vec())
                .or_insert_with(|| (gone.conversation, Vec::new()))
                .1
                .push(gone.id);
        }
        for (conversation, ids) in by_conversation.into_values() {
            if let ConversationId::Group(key) = conversation
                && self
                    .groups
                    .by_conv
                    .get_mut(&key)
                    .is_some_and(|group| group.forget_sent(&ids))
                && let Err(e) = self.save_group(key, Vec::new())
            {
                warn!(error = %e, "cannot store a group after its messages expired");
            }
            self.emit(Event::MessagesExpired { conversation, ids });
        }
        self.engine.compact_if_pending();
    }
}
