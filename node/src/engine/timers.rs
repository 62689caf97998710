//! Disappearing messages (docs/protocol.md §12.4): setting a conversation's timer, taking a contact's
//! setting, and deleting what expired.
//!
//! Rule: a message disappears its timer's length after it was **sent** on the sender's device, and after
//! it was **read** on the recipient's. The recipient's clock waits for reading so that mail fetched
//! after a week away is not gone before anyone saw it (Signal's rule); the sender's starts at once
//! because the sender has seen it. The envelope carrying a message with a timer expires with it (§11.2),
//! so a mailbox drops a copy nobody fetched by then.

use tern_protocol::timer::{Timer, TimerSetting};

use super::*;
use crate::api::ConversationId;
use crate::store::Expired;

/// How a timer reads in a system line: "1 hour", "4 weeks", "90 seconds".
pub fn timer_words(seconds: u32) -> String {
    const UNITS: [(u32, &str); 5] = [
        (7 * 24 * 3600, "week"),
        (24 * 3600, "day"),
        (3600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    for (size, name) in UNITS {
        if seconds >= size && seconds.is_multiple_of(size) {
            let n = seconds / size;
            return if n == 1 {
                format!("1 {name}")
            } else {
                format!("{n} {name}s")
            };
        }
    }
    "off".to_owned()
}

/// The system line a timer change shows: `who` is "You" or the contact's (or group admin's) name.
pub(crate) fn timer_line(who: &str, seconds: u32) -> String {
    if seconds == 0 {
        format!("{who} turned off disappearing messages")
    } else {
        format!(
            "{who} set disappearing messages to {}",
            timer_words(seconds)
        )
    }
}

/// Compactions after expiries are at least this far apart (each rewrites part of the file).
pub const COMPACT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// A compaction that could not run (a read in progress) is tried again this much later.
pub const COMPACT_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

impl Engine {
    /// Sets the timer of the conversation with `contact` to `seconds` (0: off) and queues the setting to
    /// them, with a system line in the conversation, in one commit. `None` if the timer is that already.
    pub fn set_timer(
        &mut self,
        contact: &IdentityKey,
        seconds: u32,
    ) -> Result<Option<Message>, EngineError> {
        self.set_timer_at(contact, seconds, now_ms())
    }

    /// [`Self::set_timer`] at `now_ms` (unix milliseconds).
    pub fn set_timer_at(
        &mut self,
        contact: &IdentityKey,
        seconds: u32,
        now_ms: u64,
    ) -> Result<Option<Message>, EngineError> {
        let conversation = ConversationId::Direct(*contact);
        let held = self.store.timer(&conversation)?;
        if held.seconds == seconds {
            return Ok(None);
        }
        let setting = held.next(seconds);
        // Checked before sealing, so a bad value spends no message key.
        setting.encode()?;
        let (_, _, line) = self.send_sealed(
            contact,
            None,
            Body::Timer(setting),
            now_ms,
            None,
            |batch, _, content, envelope, now| {
                batch.set_timer(&conversation, &Timer::from_setting(setting, content.id.0))?;
                let line = Message {
                    id: content.id,
                    conversation,
                    sender: None,
                    system: true,
                    sent_at_ms: now,
                    received_at_ms: now,
                    text: timer_line("You", seconds),
                    status: MessageStatus::Sending,
                    recipients: Vec::new(),
                    reply_to: None,
                    attachment: None,
                };
                batch.insert_message(&line)?;
                batch.outbox_enqueue(&outbox_entry(contact, content, envelope, now))?;
                Ok(line)
            },
        )?;
        Ok(Some(line))
    }

    /// After a failed expiry: the next try is `after` from `now_ms`.
    pub fn retry_expiry(&mut self, now_ms: u64, after: std::time::Duration) {
        self.next_expiry = Some(now_ms.saturating_add(after.as_millis() as u64));
    }

    /// Compacts the store when freed pages wait to be overwritten (after messages expired or the password
    /// changed, `Store::scrub`), at most once per [`COMPACT_INTERVAL`]; when it cannot run now, the loop is
    /// woken to try again.
    pub fn compact_if_pending(&mut self) {
        let now = std::time::Instant::now();
        let wait = match self.last_compact {
            Some(last) if now.duration_since(last) < COMPACT_INTERVAL => {
                COMPACT_INTERVAL - now.duration_since(last)
            }
            _ => match self.store.scrub() {
                Ok(true) => {
                    self.last_compact = Some(now);
                    return;
                }
                Ok(false) if !self.store.scrub_pending().unwrap_or(true) => return,
                Ok(false) => COMPACT_RETRY,
                Err(e) => {
                    warn!(error = %e, "cannot compact the store after messages expired");
                    COMPACT_RETRY
                }
            },
        };
        self.note_expiry(now_ms().saturating_add(wait.as_millis() as u64));
    }

    /// When the next message disappears (unix milliseconds), as far as this engine knows.
    pub fn next_expiry(&self) -> Option<u64> {
        self.next_expiry
    }

    /// Notes that a message disappears at `at_ms` (the node's loop wakes for it).
    pub(crate) fn note_expiry(&mut self, at_ms: u64) {
        self.next_expiry = Some(self.next_expiry.map_or(at_ms, |next| next.min(at_ms)));
    }

    /// The seconds of the timer the conversation with `contact` has now (0: off, also when it cannot be
    /// read: a message then keeps the longer life).
    pub(super) fn timer_of(&self, contact: &IdentityKey) -> u32 {
        match self.store.timer(&ConversationId::Direct(*contact)) {
            Ok(timer) => timer.seconds,
            Err(e) => {
                warn!(error = %e, "cannot read a conversation's timer");
                0
            }
        }
    }

    /// The files of the messages due to disappear by `now_ms` (their bytes are removed before the rows).
    pub fn due_files(
        &self,
        now_ms: u64,
    ) -> Result<Vec<crate::store::AttachmentRecord>, EngineError> {
        Ok(self.store.due_attachments(now_ms)?)
    }

    /// Deletes every message due by `now_ms`, in commits of at most
    /// [`crate::store::MAX_EXPIRED_PER_COMMIT`], and learns when the next one is due.
    pub fn expire_due(&mut self, now_ms: u64) -> Result<Vec<Expired>, EngineError> {
        let mut expired = Vec::new();
        loop {
            let batch = self.store.transaction(|b| b.expire_due(now_ms))?;
            let full = batch.len() == crate::store::MAX_EXPIRED_PER_COMMIT;
            expired.extend(batch);
            if !full {
                break;
            }
        }
        self.next_expiry = self.store.next_expiry()?;
        Ok(expired)
    }
}

/// Takes a contact's timer setting carried by content `id`: if it wins over the timer held
/// (`Timer::wins_over`), it becomes the conversation's timer and a system line says so; otherwise nothing
/// changes (both sides settle on the winner).
pub(super) fn receive_timer(
    batch: &mut Batch<'_>,
    contact: &ContactEntry,
    setting: TimerSetting,
    (id, sent_at_ms): (MessageId, u64),
    now: u64,
) -> Result<Received, StoreError> {
    let conversation = ConversationId::Direct(contact.key);
    let offered = Timer::from_setting(setting, id.0);
    if !offered.wins_over(&batch.timer(&conversation)?) {
        return Ok(Received::Dropped);
    }
    batch.set_timer(&conversation, &offered)?;
    let line = Message {
        id,
        conversation,
        sender: Some(contact.key),
        system: true,
        sent_at_ms,
        received_at_ms: now,
        text: timer_line(&contact.local_name, setting.seconds),
        // A notice, not a message to answer: it leaves the unread count alone.
        status: MessageStatus::Read,
        recipients: Vec::new(),
        reply_to: None,
        attachment: None,
    };
    if !batch.insert_message(&line)? {
        return Ok(Received::Duplicate);
    }
    Ok(Received::Message {
        message: line,
        request: None,
        key_changed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_read_in_the_largest_whole_unit() {
        assert_eq!(timer_words(300), "5 minutes");
        assert_eq!(timer_words(3600), "1 hour");
        assert_eq!(timer_words(86_400), "1 day");
        assert_eq!(timer_words(7 * 86_400), "1 week");
        assert_eq!(timer_words(28 * 86_400), "4 weeks");
        assert_eq!(timer_words(90), "90 seconds");
        assert_eq!(timer_words(0), "off");
        assert_eq!(timer_line("Ana", 0), "Ana turned off disappearing messages");
    }
}
