//! Files in conversations (docs/protocol.md §19): sending a file's announcement (content kind 16) through
//! the ordinary 1:1 path (history row, outbox, retries, mailboxes, receipts), storing a received one with
//! its attachment row, and the attachment's state. The bytes themselves never pass through here:
//! `crate::files` moves them.

use super::*;
use crate::api::{ConversationId, FileState};
use crate::store::AttachmentRecord;
use tern_protocol::file::FileAnnouncement;

impl Engine {
    /// Queues the message that offers a file already added to the file store: history row (sending, with
    /// its attachment row), outbox entry and advanced session, in one commit.
    pub fn send_file(
        &mut self,
        to: &IdentityKey,
        announcement: FileAnnouncement,
        metadata_stripped: bool,
    ) -> Result<(Message, OutboxEntry), EngineError> {
        let now = now_ms();
        let body = Body::File(announcement.clone());
        let (_, _, (message, entry)) = self.send_sealed(
            to,
            None,
            body,
            now,
            None,
            |batch, contact, content, envelope, now| {
                let record = AttachmentRecord::sent(
                    ConversationId::Direct(*to),
                    content.id,
                    announcement,
                    metadata_stripped,
                );
                batch.put_attachment(&record)?;
                let (mut message, entry, _) =
                    send::write_text(batch, contact, content, envelope, now, "")?;
                message.attachment = Some(record.view());
                Ok((message, entry))
            },
        )?;
        Ok((message, entry))
    }

    /// The body a failed message is sent again with: its file's announcement, if it offers one.
    pub(super) fn file_body(
        &mut self,
        contact: &IdentityKey,
        id: &MessageId,
    ) -> Result<Option<Body>, EngineError> {
        let batch = self.store.batch()?;
        let record = batch.attachment(&ConversationId::Direct(*contact), id)?;
        batch.abort()?;
        Ok(record.map(|r| Body::File(r.announcement)))
    }

    /// Records where a message's file stands; `None` if the message has no file.
    pub fn set_file_state(
        &mut self,
        conversation: &ConversationId,
        id: &MessageId,
        state: FileState,
        failure: Option<String>,
    ) -> Result<Option<AttachmentRecord>, EngineError> {
        let mut batch = self.store.batch()?;
        let Some(mut record) = batch.attachment(conversation, id)? else {
            batch.abort()?;
            return Ok(None);
        };
        record.state = match state {
            FileState::Downloading => FileState::Waiting,
            other => other,
        };
        record.failure = failure.map(|f| crate::store::bounded_failure(&f));
        batch.put_attachment(&record)?;
        batch.commit()?;
        Ok(Some(record))
    }

    /// Clears a conversation's history (`Batch::clear_history`) with its files' rows, in one commit;
    /// returns how many messages went and the files' records, so the caller removes their bytes. The
    /// contact (or group), the timer and queued mail stay.
    pub fn clear_history(
        &mut self,
        conversation: &ConversationId,
    ) -> Result<(u64, Vec<AttachmentRecord>), EngineError> {
        let mut batch = self.store.batch()?;
        let files = batch.delete_attachments_of(conversation)?;
        let deleted = batch.clear_history(conversation)?;
        batch.commit()?;
        Ok((deleted, files))
    }

    /// Deletes one message (and anything still queued for it) with its file's row; returns the file's
    /// record so the caller removes its bytes. [`EngineError::UnknownMessage`] if there is no such message.
    pub fn delete_message(
        &mut self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<AttachmentRecord>, EngineError> {
        let mut batch = self.store.batch()?;
        let (found, attachment) = batch.delete_message(conversation, id)?;
        if !found && attachment.is_none() {
            batch.abort()?;
            return Err(EngineError::UnknownMessage);
        }
        batch.outbox_remove(id)?;
        batch.commit()?;
        Ok(attachment)
    }
}

/// Stores a file offered by a known contact: the message (text empty) and its attachment row (waiting),
/// with the envelope that carried it, in the caller's commit. A copy already stored is a duplicate.
pub(super) fn receive_file(
    batch: &mut Batch<'_>,
    sender: IdentityKey,
    (id, sent_at_ms): (MessageId, u64),
    announcement: FileAnnouncement,
    envelope_id: &EnvelopeId,
    now: u64,
) -> Result<Received, StoreError> {
    let conversation = ConversationId::Direct(sender);
    let mut announcement = announcement;
    if announcement
        .thumbnail
        .as_deref()
        .is_some_and(|t| !crate::files::thumb::acceptable(t))
    {
        // The file is kept; only a preview the app could not draw safely is dropped.
        debug!("a file's preview is not a small PNG or JPEG: dropped");
        announcement.thumbnail = None;
    }
    let record = AttachmentRecord::offered(conversation, id, announcement);
    let mut message = Message {
        id,
        conversation,
        sender: Some(sender),
        sent_at_ms,
        received_at_ms: now,
        text: String::new(),
        status: MessageStatus::Received,
        recipients: Vec::new(),
        reply_to: None,
        attachment: None,
        system: false,
    };
    if batch.attachment(&conversation, &id)?.is_some() {
        return Ok(Received::Duplicate);
    }
    match batch.put_attachment(&record) {
        Ok(()) => {}
        Err(StoreError::TooMany { max, .. }) => {
            warn!("a file offered was refused: {max} messages with files are held already");
            return Ok(Received::Dropped);
        }
        Err(e) => return Err(e),
    }
    let timer_s = batch.timer(&conversation)?.seconds;
    if !batch.insert_message_expiring(&message, timer_s)? {
        // A copy of a message seen before (perhaps deleted since): nothing of it is kept.
        batch.delete_message(&conversation, &id)?;
        return Ok(Received::Duplicate);
    }
    batch.mark_envelope(
        envelope_id,
        &sender,
        &message.id,
        now.saturating_add(SEEN_RETENTION_MS),
    )?;
    message.attachment = Some(record.view());
    Ok(Received::Message {
        message,
        request: None,
        key_changed: false,
    })
}
