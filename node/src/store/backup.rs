//! What a backup (`crate::backup`, docs/protocol.md §20) reads out of a store and writes into a new one:
//! contacts, settings, messages (1:1 and groups) with their unread marks, and attachment rows, each as its
//! store record encoding (`records.rs`, `files.rs`), opened from its sealed row. Nothing else is read here:
//! not the sessions, the outbox, the duplicate checks, the groups' MLS state or their key packages (live
//! or one-time state); what a backup carries of a group is read by `crate::backup`.
//!
//! The export is one read transaction (a consistent snapshot) that hands one record at a time to the
//! caller, so a large history is never held in memory. [`Store::export_records`] is the one place that
//! iterates message rows for a backup: a filter on what a backup may hold goes there.

use redb::{ReadableTable, TableHandle};
use zeroize::Zeroizing;

use tern_protocol::timer::Timer;

use crate::api::ConversationId;

use super::batch::Batch;
use super::files::{ATTACHMENTS, AttachmentRecord};
use super::messages::insert_message_rows;
use super::records::{ContactRecord, MessageRecord};
use super::{CONTACTS, CONV_MESSAGE_INDEX, CONV_MESSAGES, CONV_UNREAD, Store, StoreError, corrupt};

/// One record of a profile, as a backup carries it: the store's own encoding, opened.
pub enum ExportItem<'a> {
    /// A `ContactRecord` v1.
    Contact(&'a [u8]),
    /// A setting by name, and its value.
    Setting { name: &'a str, value: &'a [u8] },
    /// A `MessageRecord` (v2 or v3) of any conversation, and whether it is unread.
    Message { record: &'a [u8], unread: bool },
    /// An `AttachmentRecord` (v1, or v2 with a kept reason), with the file's ciphertext hash (where its bytes live in `files/`).
    Attachment {
        record: &'a [u8],
        hash: tern_protocol::file::FileHash,
    },
    /// A 1:1 conversation's disappearing-message timer (only one that is on, or was ever set).
    Timer {
        contact: tern_protocol::IdentityKey,
        timer: Timer,
    },
}

/// A backup leaves out every message that disappears within this long of the backup (issue 15): a
/// restored copy must not bring back what is about to be gone, nor keep it past its time.
pub const BACKUP_EXPIRY_MARGIN_MS: u64 = 24 * 3600 * 1000;

impl Store {
    /// Hands every record a backup carries to `f`, in this order: contacts (each followed by its
    /// conversation's timer, if one was set), settings, messages (by conversation, oldest first),
    /// attachments. All from one read transaction. Messages that disappear within
    /// [`BACKUP_EXPIRY_MARGIN_MS`] of `now_ms` are left out, with their files. Stops at `f`'s first error.
    pub fn export_records(
        &self,
        now_ms: u64,
        settings: &[&'static str],
        mut f: impl FnMut(ExportItem<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let read = super::batch::Reader::begin(&self.shared, &self.keys)?;
        let keys = read.keys;
        for entry in read.table(CONTACTS)?.iter()? {
            let (row, value) = entry?;
            let plain = keys.open(CONTACTS.name(), row.value(), value.value())?;
            f(ExportItem::Contact(&plain))?;
            let contact =
                ContactRecord::decode(&plain).map_err(|e| corrupt("contact record", e))?;
            let timer = read.timer(&ConversationId::Direct(contact.key))?;
            if timer != Timer::OFF {
                f(ExportItem::Timer {
                    contact: contact.key,
                    timer,
                })?;
            }
        }
        let horizon = now_ms.saturating_add(BACKUP_EXPIRY_MARGIN_MS);
        // Messages left out, so their files are too (at most the messages that fall due within a day).
        let mut left_out = std::collections::HashSet::new();
        for name in settings {
            if let Some(value) = read.setting_get(name)? {
                f(ExportItem::Setting {
                    name,
                    value: &value,
                })?;
            }
        }
        let unread = read.txn.open_table(CONV_UNREAD)?;
        for entry in read.table(CONV_MESSAGES)?.iter()? {
            let (key, value) = entry?;
            let plain = keys.open(CONV_MESSAGES.name(), key.value(), value.value())?;
            let record = MessageRecord::decode(&plain).map_err(|e| corrupt("message record", e))?;
            if record.expires_at_ms != 0 && record.expires_at_ms <= horizon {
                left_out.insert(record.id);
                continue;
            }
            let is_unread = unread.get(key.value())?.is_some();
            f(ExportItem::Message {
                record: &plain,
                unread: is_unread,
            })?;
        }
        for entry in read.table(ATTACHMENTS)?.iter()? {
            let (row, value) = entry?;
            let plain = keys.open(ATTACHMENTS.name(), row.value(), value.value())?;
            let record =
                AttachmentRecord::decode(&plain).map_err(|e| corrupt("attachment record", e))?;
            if left_out.contains(&record.id) {
                continue;
            }
            f(ExportItem::Attachment {
                record: &plain,
                hash: record.announcement.hash,
            })?;
        }
        Ok(())
    }
}

/// Why a record from a backup was not taken.
#[derive(Debug)]
pub enum ImportError {
    /// The record does not decode (its encoding's own error).
    Record(&'static str, tern_protocol::codec::DecodeError),
    /// Writing it failed.
    Store(StoreError),
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Batch<'_> {
    /// Adds a contact from its `ContactRecord` encoding.
    pub fn import_contact(&mut self, record: &[u8]) -> Result<(), ImportError> {
        let record =
            ContactRecord::decode(record).map_err(|e| ImportError::Record("contact", e))?;
        Ok(self.put_contact(&record)?)
    }

    /// Adds a message (1:1 or group) from its `MessageRecord` encoding, with its unread mark; `false` if it is held
    /// already.
    pub fn import_message(&mut self, record: &[u8], unread: bool) -> Result<bool, ImportError> {
        let record = Zeroizing::new(record.to_vec());
        let message =
            MessageRecord::decode(&record).map_err(|e| ImportError::Record("message", e))?;
        let table = |e: redb::TableError| ImportError::Store(StoreError::from(e));
        let inserted = insert_message_rows(
            self.keys,
            &mut self.txn.open_table(CONV_MESSAGES).map_err(table)?,
            &mut self.txn.open_table(CONV_MESSAGE_INDEX).map_err(table)?,
            &mut self.txn.open_table(CONV_UNREAD).map_err(table)?,
            &message,
            unread && !message.outgoing,
        )?;
        if inserted {
            let row = super::messages::message_row(self.keys, &message.conversation, &message.id);
            super::search::index_new_message(self.keys, &self.txn, &row, &message.text)?;
        }
        // A message whose clock runs disappears here at the same time as it would have there.
        if inserted && message.expires_at_ms != 0 {
            self.schedule_expiry(&message.conversation, &message.id, message.expires_at_ms)?;
        }
        Ok(inserted)
    }

    /// Sets a 1:1 conversation's timer from a backup's `contact key[32] || Timer` record.
    pub fn import_timer(&mut self, record: &[u8]) -> Result<(), ImportError> {
        let bad = |reason| {
            ImportError::Record(
                "timer",
                tern_protocol::codec::DecodeError::Invalid {
                    field: "timer record",
                    reason,
                },
            )
        };
        let (key, timer) = record.split_at_checked(32).ok_or(bad("too short"))?;
        let key: [u8; 32] = key.try_into().map_err(|_| bad("too short"))?;
        let contact = tern_protocol::IdentityKey::from_bytes(key).map_err(|_| bad("not a key"))?;
        let timer = Timer::decode(timer).map_err(|e| ImportError::Record("timer", e))?;
        Ok(self.set_timer(&ConversationId::Direct(contact), &timer)?)
    }

    /// Adds a message's file row from its `AttachmentRecord` encoding; returns the file's hash.
    pub fn import_attachment(
        &mut self,
        record: &[u8],
    ) -> Result<tern_protocol::file::FileHash, ImportError> {
        let record =
            AttachmentRecord::decode(record).map_err(|e| ImportError::Record("attachment", e))?;
        self.put_attachment(&record)?;
        Ok(record.announcement.hash)
    }
}
