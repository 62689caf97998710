//! The `attachments` table: for each message that offers a file, the announcement (name, size, type, key,
//! hash: `tern_protocol::file::FileAnnouncement`) and where the file stands here. Sealed like every value;
//! the row key is a blind index of the message, so nothing in the clear names a file. The file's bytes
//! live outside redb, as ciphertext only (`crate::files::FileStore`). The table is created on open when
//! missing, so profiles written before it open unchanged.
//!
//! ```text
//! AttachmentRecord v1: u8 1 || conversation[33] || id[16] || u8 outgoing || u8 state || u8 flags
//!                      || u32 len || announcement body (docs/protocol.md §19.4)
//! AttachmentRecord v2: v1 with u8 2 || u16 len || why the transfer stopped (UTF-8, at most
//!                      MAX_FAILURE_LEN bytes)
//! ```
//! `state`: 0 waiting, 1 paused, 2 complete, 3 cancelled, 4 failed; `flags` bit 0: metadata stripped.
//! Version 2 is written only for a record that keeps a reason (a failed or cancelled transfer), so every
//! other record stays readable by builds that know only version 1.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle};
use tern_protocol::MessageId;
use tern_protocol::codec::{DecodeError, Reader as Bytes, Writer};
use tern_protocol::file::FileAnnouncement;
use zeroize::Zeroizing;

use super::batch::{Batch, Reader, get_open};
use super::keys::{BLIND_LEN, Blind, Keys};
use super::messages::{MESSAGE_KEY_LEN, indexed_key, message_at, message_row};
use super::{
    BytesTable, CONV_MESSAGE_INDEX, CONV_MESSAGES, CONV_UNREAD, StoreError, StoreReader, corrupt,
};
use crate::api::{Attachment, CONVERSATION_ID_LEN, ConversationId, FileState, Message};

pub(super) const ATTACHMENTS: BytesTable = redb::TableDefinition::new("attachments");

/// At most this many messages with files per profile (sent and received); past it sending or receiving a
/// file is refused with [`StoreError::TooMany`].
pub const MAX_ATTACHMENTS: u64 = 10_000;
const RECORD_VERSION: u8 = 1;
const RECORD_VERSION_FAILURE: u8 = 2;
/// A kept reason is cut to this many bytes (at a character boundary).
pub const MAX_FAILURE_LEN: usize = 512;
const FLAG_STRIPPED: u8 = 1;

/// A message's file as stored.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AttachmentRecord {
    pub conversation: ConversationId,
    pub id: MessageId,
    pub outgoing: bool,
    /// Never [`FileState::Downloading`] (stored as waiting).
    pub state: FileState,
    pub metadata_stripped: bool,
    pub announcement: FileAnnouncement,
    /// Why the transfer stopped for good (failed, or cancelled by the sender), in words for the user.
    pub failure: Option<String>,
}

/// `reason` cut to [`MAX_FAILURE_LEN`] bytes at a character boundary.
pub fn bounded_failure(reason: &str) -> String {
    let mut end = reason.len().min(MAX_FAILURE_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

impl AttachmentRecord {
    /// The row of a file this profile sends in `conversation` (whole here from the start).
    pub fn sent(
        conversation: ConversationId,
        id: MessageId,
        announcement: FileAnnouncement,
        metadata_stripped: bool,
    ) -> Self {
        Self {
            conversation,
            id,
            outgoing: true,
            state: FileState::Complete,
            metadata_stripped,
            announcement,
            failure: None,
        }
    }

    /// The row of a file offered to this profile in `conversation` (waiting to be fetched).
    pub fn offered(
        conversation: ConversationId,
        id: MessageId,
        announcement: FileAnnouncement,
    ) -> Self {
        Self {
            conversation,
            id,
            outgoing: false,
            state: FileState::Waiting,
            metadata_stripped: false,
            announcement,
            failure: None,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let body = self
            .announcement
            .encode()
            .map_err(|e| corrupt("file announcement", e))?;
        let mut w = Writer::with_capacity(64 + body.len());
        let version = match self.failure {
            Some(_) => RECORD_VERSION_FAILURE,
            None => RECORD_VERSION,
        };
        w.u8(version)
            .raw(&self.conversation.to_bytes())
            .raw(&self.id.0)
            .u8(u8::from(self.outgoing))
            .u8(self.state.to_u8())
            .u8(if self.metadata_stripped {
                FLAG_STRIPPED
            } else {
                0
            })
            .bytes_u32(&body);
        if let Some(failure) = &self.failure {
            w.bytes_u16(bounded_failure(failure).as_bytes());
        }
        Ok(w.into_vec())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Bytes::new(bytes);
        let version = r.u8("attachment record")?;
        if version != RECORD_VERSION && version != RECORD_VERSION_FAILURE {
            return Err(DecodeError::UnsupportedVersion {
                what: "attachment record",
                got: version,
                supported: RECORD_VERSION_FAILURE,
            });
        }
        let conversation: [u8; CONVERSATION_ID_LEN] = r.array("conversation")?;
        let conversation =
            ConversationId::from_bytes(&conversation).ok_or(DecodeError::Invalid {
                field: "conversation",
                reason: "unknown conversation kind",
            })?;
        let id = MessageId(r.array("message id")?);
        let outgoing = r.u8("outgoing")? == 1;
        let state = FileState::from_u8(r.u8("file state")?).ok_or(DecodeError::Invalid {
            field: "file state",
            reason: "unknown state",
        })?;
        let flags = r.u8("flags")?;
        let body = r.bytes_u32("announcement", 64 * 1024)?;
        let announcement = FileAnnouncement::decode(body)?;
        let failure = match version {
            RECORD_VERSION_FAILURE => {
                let bytes = r.bytes_u16("failure", MAX_FAILURE_LEN)?;
                Some(
                    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Invalid {
                        field: "failure",
                        reason: "not UTF-8",
                    })?,
                )
            }
            _ => None,
        };
        r.finish()?;
        Ok(Self {
            conversation,
            id,
            outgoing,
            state,
            metadata_stripped: flags & FLAG_STRIPPED != 0,
            announcement,
            failure,
        })
    }

    /// The attachment as the api shows it; `progress` is the whole size when complete, else 0 (the node
    /// fills in live progress).
    pub fn view(&self) -> Attachment {
        Attachment {
            name: self.announcement.name.clone(),
            size: self.announcement.size,
            media_type: self.announcement.media_type.clone(),
            state: self.state,
            progress: if self.state == FileState::Complete {
                self.announcement.size
            } else {
                0
            },
            metadata_stripped: self.metadata_stripped,
            thumbnail: self.announcement.thumbnail.clone(),
            failure: self.failure.clone(),
        }
    }
}

/// Creates the table in a profile written before it existed (one durable commit, only if missing).
pub(super) fn add_file_tables(db: &Database) -> Result<(), StoreError> {
    {
        let txn = db.begin_read()?;
        if txn.list_tables()?.any(|t| t.name() == ATTACHMENTS.name()) {
            return Ok(());
        }
    }
    let txn = db.begin_write()?;
    txn.open_table(ATTACHMENTS)?;
    txn.commit()?;
    Ok(())
}

pub(super) fn row(keys: &Keys, conversation: &ConversationId, id: &MessageId) -> [u8; BLIND_LEN] {
    keys.blind(Blind::Attachment, &[&conversation.to_bytes(), &id.0])
}

fn decode(plain: &[u8]) -> Result<AttachmentRecord, StoreError> {
    AttachmentRecord::decode(plain).map_err(|e| corrupt("attachment record", e))
}

fn all_in(
    keys: &Keys,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
) -> Result<Vec<AttachmentRecord>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (row, value) = entry?;
        let plain = keys.open(ATTACHMENTS.name(), row.value(), value.value())?;
        out.push(decode(&plain)?);
    }
    Ok(out)
}

impl Reader<'_> {
    pub(crate) fn attachment(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<AttachmentRecord>, StoreError> {
        let row = row(self.keys, conversation, id);
        match get_open(
            self.keys,
            &self.table(ATTACHMENTS)?,
            ATTACHMENTS.name(),
            &row,
        )? {
            None => Ok(None),
            Some(plain) => decode(&plain).map(Some),
        }
    }

    /// Fills in the attachment of each message that has one.
    pub(crate) fn attach(&self, messages: &mut [Message]) -> Result<(), StoreError> {
        for message in messages {
            if message.text.is_empty() {
                message.attachment = self
                    .attachment(&message.conversation, &message.id)?
                    .map(|a| a.view());
            }
        }
        Ok(())
    }
}

impl StoreReader {
    /// A message's file, if it has one.
    pub fn attachment(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<AttachmentRecord>, StoreError> {
        self.run(|read| read.attachment(conversation, id))
    }

    /// Every message's file (at most [`MAX_ATTACHMENTS`]), in no particular order.
    pub fn attachments(&self) -> Result<Vec<AttachmentRecord>, StoreError> {
        self.run(|read| all_in(read.keys, &read.table(ATTACHMENTS)?))
    }
}

impl Batch<'_> {
    /// Stores (or replaces) a message's file. [`StoreError::TooMany`] past [`MAX_ATTACHMENTS`].
    pub fn put_attachment(&mut self, record: &AttachmentRecord) -> Result<(), StoreError> {
        let row = row(self.keys, &record.conversation, &record.id);
        let plain = Zeroizing::new(record.encode()?);
        let mut table = self.txn.open_table(ATTACHMENTS)?;
        if table.get(row.as_slice())?.is_none() && table.len()? >= MAX_ATTACHMENTS {
            return Err(StoreError::TooMany {
                what: "messages with files",
                max: MAX_ATTACHMENTS,
            });
        }
        let sealed = self.keys.seal(ATTACHMENTS.name(), &row, &plain);
        table.insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    pub fn attachment(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<AttachmentRecord>, StoreError> {
        let row = row(self.keys, conversation, id);
        match get_open(
            self.keys,
            &self.txn.open_table(ATTACHMENTS)?,
            ATTACHMENTS.name(),
            &row,
        )? {
            None => Ok(None),
            Some(plain) => decode(&plain).map(Some),
        }
    }

    /// Forgets every file of a conversation; returns them (their bytes on disk are the caller's to remove).
    pub fn delete_attachments_of(
        &mut self,
        conversation: &ConversationId,
    ) -> Result<Vec<AttachmentRecord>, StoreError> {
        let mut table = self.txn.open_table(ATTACHMENTS)?;
        let doomed: Vec<AttachmentRecord> = all_in(self.keys, &table)?
            .into_iter()
            .filter(|a| a.conversation == *conversation)
            .collect();
        for a in &doomed {
            table.remove(row(self.keys, &a.conversation, &a.id).as_slice())?;
        }
        Ok(doomed)
    }

    /// Deletes one message (its row, index, search and unread rows) and its file's row; returns whether the
    /// message was stored and the file's record, if it had one. The duplicate check keeps its entry.
    pub fn delete_message(
        &mut self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<(bool, Option<AttachmentRecord>), StoreError> {
        let attachment = self.attachment(conversation, id)?;
        if attachment.is_some() {
            self.txn
                .open_table(ATTACHMENTS)?
                .remove(row(self.keys, conversation, id).as_slice())?;
        }
        let index_row = message_row(self.keys, conversation, id);
        let mut index = self.txn.open_table(CONV_MESSAGE_INDEX)?;
        let Some(key): Option<[u8; MESSAGE_KEY_LEN]> = indexed_key(self.keys, &index, &index_row)?
        else {
            return Ok((false, attachment));
        };
        index.remove(index_row.as_slice())?;
        drop(index);
        if let Some(message) = message_at(self.keys, &self.txn.open_table(CONV_MESSAGES)?, &key)? {
            let text = Zeroizing::new(message.text);
            super::search::unindex_message(
                self.keys,
                &mut self.txn.open_table(super::search::SEARCH_TOKENS)?,
                &index_row,
                &text,
            )?;
        }
        self.txn.open_table(CONV_MESSAGES)?.remove(key.as_slice())?;
        self.txn.open_table(CONV_UNREAD)?.remove(key.as_slice())?;
        Ok((true, attachment))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use tern_protocol::Identity;
    use tern_protocol::file::{FileHash, FileKey};

    use super::*;
    use crate::api::MessageStatus;
    use crate::store::{KdfParams, Store};

    fn record(conversation: ConversationId, n: u8) -> AttachmentRecord {
        AttachmentRecord {
            conversation,
            id: MessageId([n; 16]),
            outgoing: false,
            state: FileState::Waiting,
            metadata_stripped: n.is_multiple_of(2),
            announcement: FileAnnouncement {
                name: format!("file-{n}.jpg"),
                size: 1000 + u64::from(n),
                media_type: "image/jpeg".into(),
                key: FileKey::from_bytes([n; 32]),
                hash: FileHash([n; 32]),
                thumbnail: None,
            },
            failure: None,
        }
    }

    fn file_message(conversation: ConversationId, n: u8) -> Message {
        let sender = conversation.direct();
        Message {
            id: MessageId([n; 16]),
            conversation,
            sender,
            sent_at_ms: u64::from(n),
            received_at_ms: u64::from(n),
            text: String::new(),
            status: MessageStatus::Received,
            recipients: Vec::new(),
            reply_to: None,
            attachment: None,
            system: false,
        }
    }

    #[test]
    fn an_attachment_record_round_trips_and_refuses_what_it_does_not_know() {
        let key = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1), 0).key();
        let r = record(ConversationId::Direct(key), 4);
        let bytes = r.encode().unwrap();
        assert_eq!(bytes[0], 1, "no reason: still version 1");
        assert_eq!(AttachmentRecord::decode(&bytes).unwrap(), r);
        let mut newer = bytes.clone();
        newer[0] = 3;
        assert!(AttachmentRecord::decode(&newer).is_err());
        // Version 1 bytes that claim version 2 lack the reason.
        let mut short = bytes.clone();
        short[0] = 2;
        assert!(AttachmentRecord::decode(&short).is_err());

        // A reason makes version 2, read back; a long one is cut at a character boundary.
        let failed = AttachmentRecord {
            state: FileState::Failed,
            failure: Some("the sender no longer has the file".into()),
            ..r.clone()
        };
        let v2 = failed.encode().unwrap();
        assert_eq!(v2[0], 2);
        assert_eq!(AttachmentRecord::decode(&v2).unwrap(), failed);
        let long = AttachmentRecord {
            failure: Some("é".repeat(MAX_FAILURE_LEN)),
            ..failed
        };
        let back = AttachmentRecord::decode(&long.encode().unwrap()).unwrap();
        let kept = back.failure.unwrap();
        assert_eq!(kept.len(), MAX_FAILURE_LEN);
        assert!(kept.chars().all(|c| c == 'é'));
        let mut bad_state = bytes.clone();
        bad_state[1 + CONVERSATION_ID_LEN + 16 + 1] = 9;
        assert!(AttachmentRecord::decode(&bad_state).is_err());
        let mut trailing = bytes;
        trailing.push(0);
        assert!(AttachmentRecord::decode(&trailing).is_err());
    }

    #[test]
    fn a_file_message_reads_with_its_attachment_and_deleting_it_removes_both() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::create(dir.path(), &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let key = Identity::generate(&mut ChaCha20Rng::seed_from_u64(2), 0).key();
        let conversation = ConversationId::Direct(key);
        let mut batch = store.batch().unwrap();
        for n in 1..=2 {
            batch
                .insert_message(&file_message(conversation, n))
                .unwrap();
            batch.put_attachment(&record(conversation, n)).unwrap();
        }
        batch.commit().unwrap();

        let reader = store.reader();
        let page = reader.page(&conversation, None, 10).unwrap();
        let names: Vec<String> = page
            .messages
            .iter()
            .map(|m| m.attachment.as_ref().unwrap().name.clone())
            .collect();
        assert_eq!(names, ["file-1.jpg", "file-2.jpg"]);
        assert_eq!(reader.attachments().unwrap().len(), 2);

        let mut batch = store.batch().unwrap();
        let (found, gone) = batch
            .delete_message(&conversation, &MessageId([1; 16]))
            .unwrap();
        batch.commit().unwrap();
        assert!(found);
        assert_eq!(gone.unwrap().announcement.name, "file-1.jpg");
        let page = reader.page(&conversation, None, 10).unwrap();
        assert_eq!(page.messages.len(), 1);
        assert_eq!(reader.attachments().unwrap().len(), 1);

        let mut batch = store.batch().unwrap();
        let doomed = batch.delete_attachments_of(&conversation).unwrap();
        batch.commit().unwrap();
        assert_eq!(doomed.len(), 1);
        assert!(reader.attachments().unwrap().is_empty());
    }
}
