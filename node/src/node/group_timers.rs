//! Disappearing messages in groups (docs/protocol.md §12.4, §18.3): the timer lives in the group info, set by
//! admins with a commit; every save of a group's state copies it into the conversation's timer row in the
//! same store commit, so the store treats a group's messages like a 1:1 conversation's: a text disappears
//! its timer's length after it was sent on the sender's device, and after it was read on the others'.

use tern_protocol::timer::Timer;

use super::groups::group_key;
use super::*;
use crate::api::ConversationId;
use crate::group::Group;
use crate::store::{Batch, StoreError};

/// The timer the group's info holds now (`None` if the info cannot be read: the stored timer stays).
pub(super) fn info_timer(group: &Group) -> Option<Timer> {
    let info = group.info().ok()?;
    Some(Timer {
        seconds: info.timer_s,
        // The epoch it was read in: the group info, not this row, decides which setting wins (§18.5).
        version: group.epoch(),
        id: [0; 16],
    })
}

/// Writes `lines` of a group's conversation in `batch`, after making the conversation's timer `timer` if
/// its seconds differ from those stored. Texts are stored under the timer (system lines stay); returns the
/// lines newly stored and when the outgoing ones disappear.
pub(super) fn store_lines(
    batch: &mut Batch<'_>,
    conversation: ConversationId,
    timer: Option<Timer>,
    lines: &[api::Message],
) -> Result<(Vec<api::Message>, Vec<u64>), StoreError> {
    let held = batch.timer(&conversation)?;
    let seconds = match timer {
        Some(timer) if timer.seconds != held.seconds => {
            batch.set_timer(&conversation, &timer)?;
            timer.seconds
        }
        _ => held.seconds,
    };
    let mut stored = Vec::new();
    let mut expiries = Vec::new();
    for line in lines {
        let timer_s = if line.system { 0 } else { seconds };
        if batch.insert_message_expiring(line, timer_s)? {
            if timer_s > 0 && line.outgoing() {
                expiries.push(line.sent_at_ms.saturating_add(u64::from(timer_s) * 1000));
            }
            stored.push(line.clone());
        }
    }
    Ok((stored, expiries))
}

impl EventLoop {
    /// Sets a group's timer (admins only, `GroupError::NotAdmin` otherwise); the system line it wrote, or
    /// `None` if the timer was that already.
    pub(super) fn group_set_timer(
        &mut self,
        group: ConversationId,
        seconds: u32,
    ) -> Result<Option<api::Message>, NodeError> {
        let key = group_key(&group)?;
        let Some(out) = self.group_mut(&key)?.set_timer(seconds)? else {
            return Ok(None);
        };
        let (_, lines) = self.own_commit_lines(key, out)?;
        Ok(lines.into_iter().next())
    }

    /// Marks a group's received messages read and queues a `read` receipt for the texts among them
    /// (§18.10, unless read receipts are off); reading starts the clocks of those stored under a timer,
    /// in the same commit.
    pub(super) fn group_mark_read(
        &mut self,
        conversation: ConversationId,
        ids: Option<Vec<MessageId>>,
    ) -> Result<Vec<MessageId>, NodeError> {
        let ids = match ids {
            Some(ids) => ids,
            None => self
                .engine
                .store()
                .reader()
                .page(&conversation, None, 500)?
                .messages
                .into_iter()
                .filter(|m| !m.outgoing() && m.status == MessageStatus::Received)
                .map(|m| m.id)
                .collect(),
        };
        let now = now_ms();
        let (read, expiries, texts) = self.engine.store_mut().transaction(|b| {
            let mut read = Vec::new();
            let mut expiries = Vec::new();
            let mut texts = Vec::new();
            for id in ids {
                if b.update_message_status_at(conversation, &id, MessageStatus::Read, now)? {
                    read.push(id);
                    expiries.extend(b.start_expiry(&conversation, &id, now)?);
                    if let Some(message) = b.message(conversation, &id)?
                        && !message.system
                        && let Some(author) = message.sender
                    {
                        texts.push((id, author));
                    }
                }
            }
            Ok((read, expiries, texts))
        })?;
        for at in expiries {
            self.engine.note_expiry(at);
        }
        if let ConversationId::Group(key) = conversation {
            self.queue_group_receipt(key, true, &texts);
        }
        Ok(read)
    }
}
