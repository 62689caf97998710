//! The [`Store`] convenience methods: each read opens its own read transaction, each write runs in its
//! own [`Store::transaction`] (durable on return).

use tern_protocol::{EnvelopeId, IdentityKey, MessageId};
use zeroize::Zeroizing;

use crate::api::{Conversation, ConversationId, Cursor, Message, MessageStatus, Page};

use super::batch::Reader;
use super::records::{ContactRecord, OutboxRecord};
use super::{Store, StoreError, VaultItem};

impl Store {
    fn read(&self) -> Result<Reader<'_>, StoreError> {
        Reader::begin(&self.shared, &self.keys)
    }

    // ---- vault and settings ----

    /// A vault item, if set.
    pub fn vault_get(&self, item: VaultItem) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.read()?.vault_get(item)
    }

    /// Sets a vault item (durable on return).
    pub fn vault_put(&mut self, item: VaultItem, value: &[u8]) -> Result<(), StoreError> {
        self.transaction(|b| b.vault_put(item, value))
    }

    /// A setting, if set.
    pub fn setting_get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.read()?.setting_get(name)
    }

    /// Sets a setting (durable on return).
    pub fn setting_put(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.transaction(|b| b.setting_put(name, value))
    }

    /// Removes a setting; `true` if it was set (durable on return).
    pub fn setting_delete(&mut self, name: &str) -> Result<bool, StoreError> {
        self.transaction(|b| b.setting_delete(name))
    }

    // ---- disappearing messages ----

    /// A conversation's timer ([`tern_protocol::timer::Timer::OFF`] if none was ever set).
    pub fn timer(
        &self,
        conversation: &ConversationId,
    ) -> Result<tern_protocol::timer::Timer, StoreError> {
        self.read()?.timer(conversation)
    }

    /// When the next message disappears, unix milliseconds.
    pub fn next_expiry(&self) -> Result<Option<u64>, StoreError> {
        self.read()?.next_expiry()
    }

    /// A message's file, if it has one.
    pub fn attachment(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<super::AttachmentRecord>, StoreError> {
        self.read()?.attachment(conversation, id)
    }

    /// The files of the first messages due to disappear by `now_ms`.
    pub fn due_attachments(&self, now_ms: u64) -> Result<Vec<super::AttachmentRecord>, StoreError> {
        self.read()?.due_attachments(now_ms)
    }

    // ---- contacts and sessions ----

    /// The contact with this identity key, if any.
    pub fn contact(&self, key: &IdentityKey) -> Result<Option<ContactRecord>, StoreError> {
        self.read()?.contact(key)
    }

    /// Every contact, oldest first.
    pub fn contacts(&self) -> Result<Vec<ContactRecord>, StoreError> {
        self.read()?.contacts()
    }

    /// Adds or replaces a contact (durable on return). [`StoreError::ContactsFull`] past [`MAX_CONTACTS`].
    pub fn put_contact(&mut self, contact: &ContactRecord) -> Result<(), StoreError> {
        self.transaction(|b| b.put_contact(contact))
    }

    /// Removes a contact; `true` if it existed (durable on return). Its session and messages stay.
    pub fn delete_contact(&mut self, key: &IdentityKey) -> Result<bool, StoreError> {
        self.transaction(|b| b.delete_contact(key))
    }

    /// The session pickle for a contact, if any.
    pub fn session(&self, contact: &IdentityKey) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.read()?.session(contact)
    }

    /// Stores the session pickle for a contact (durable on return).
    pub fn put_session(&mut self, contact: &IdentityKey, pickle: &[u8]) -> Result<(), StoreError> {
        self.transaction(|b| b.put_session(contact, pickle))
    }

    /// Removes the session pickle for a contact; `true` if it existed (durable on return).
    pub fn delete_session(&mut self, contact: &IdentityKey) -> Result<bool, StoreError> {
        self.transaction(|b| b.delete_session(contact))
    }

    // ---- messages ----

    /// Stores a message; `false` if it was already stored (or, for an incoming message, already seen), in
    /// which case nothing changes. Durable on return.
    pub fn insert_message(&mut self, message: &Message) -> Result<bool, StoreError> {
        self.transaction(|b| b.insert_message(message))
    }

    /// Moves a message to `status` if [`MessageStatus::can_become`] allows it; `false` if the message is
    /// unknown or the move is not allowed. Durable on return.
    pub fn update_message_status(
        &mut self,
        conversation: impl Into<ConversationId>,
        id: &MessageId,
        status: MessageStatus,
    ) -> Result<bool, StoreError> {
        let conversation = conversation.into();
        self.transaction(|b| b.update_message_status(conversation, id, status))
    }

    /// One message, if stored.
    pub fn message(
        &self,
        conversation: impl Into<ConversationId>,
        id: &MessageId,
    ) -> Result<Option<Message>, StoreError> {
        self.reader().message(&conversation.into(), id)
    }

    /// The newest `limit` messages of a conversation before `before` (or the newest of all), oldest first.
    pub fn conversation_page(
        &self,
        conversation: impl Into<ConversationId>,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.reader().page(&conversation.into(), before, limit)
    }

    /// Unread incoming messages in a conversation.
    pub fn unread_count(&self, conversation: impl Into<ConversationId>) -> Result<u64, StoreError> {
        self.reader().unread_count(&conversation.into())
    }

    /// Every conversation with its last message and unread count, most recent first.
    pub fn conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.reader().conversations()
    }

    /// The newest `limit` messages (at most [`super::MAX_SEARCH_RESULTS`]) across all conversations whose
    /// text contains `needle`, ignoring case, newest first. Searches the decrypted text; nothing is indexed
    /// on disk.
    pub fn search(&self, needle: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.reader().search(needle, limit)
    }

    /// Deletes a conversation's messages and its queued outbox entries (durable on return).
    pub fn delete_conversation(
        &mut self,
        conversation: impl Into<ConversationId>,
    ) -> Result<u64, StoreError> {
        let conversation = conversation.into();
        self.transaction(|b| b.delete_conversation(conversation))
    }

    // ---- outbox ----

    /// Queues (or replaces) an outbox entry, keyed by its message id (durable on return).
    /// [`StoreError::OutboxFull`] past [`MAX_OUTBOX_ENTRIES`].
    pub fn outbox_enqueue(&mut self, entry: &OutboxRecord) -> Result<(), StoreError> {
        self.transaction(|b| b.outbox_enqueue(entry))
    }

    /// Up to `limit` entries whose `next_attempt_ms <= now_ms`, earliest first.
    pub fn outbox_due(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        self.read()?.outbox_due(now_ms, limit)
    }

    /// Every outbox entry, earliest next attempt first.
    pub fn outbox(&self) -> Result<Vec<OutboxRecord>, StoreError> {
        self.read()?.outbox_due(u64::MAX, usize::MAX)
    }

    /// Up to `limit` outbox entries for one recipient, oldest first (one key range; nothing else is
    /// decrypted).
    pub fn outbox_for(
        &self,
        recipient: &IdentityKey,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        self.read()?.outbox_for(recipient, limit)
    }

    /// Number of outbox entries.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        self.read()?.outbox_len()
    }

    /// Counts one more attempt and sets the next; `false` if the entry is gone (durable on return).
    pub fn outbox_reschedule(
        &mut self,
        message_id: &MessageId,
        next_attempt_ms: u64,
    ) -> Result<bool, StoreError> {
        self.transaction(|b| b.outbox_reschedule(message_id, next_attempt_ms))
    }

    /// Removes an outbox entry; `true` if it existed (durable on return).
    pub fn outbox_remove(&mut self, message_id: &MessageId) -> Result<bool, StoreError> {
        self.transaction(|b| b.outbox_remove(message_id))
    }

    // ---- duplicate checks ----

    /// Whether a message from `sender` with this id was seen (and not purged).
    pub fn is_seen(&self, sender: &IdentityKey, id: &MessageId) -> Result<bool, StoreError> {
        self.read()?.is_seen(sender, id)
    }

    /// Records that a message was seen until `expires_ms`; `false` if it already was (durable on return).
    pub fn mark_seen(
        &mut self,
        sender: &IdentityKey,
        id: &MessageId,
        expires_ms: u64,
    ) -> Result<bool, StoreError> {
        self.transaction(|b| b.mark_seen(sender, id, expires_ms))
    }

    /// Drops duplicate-check entries (and remembered envelopes) that expired at or before `now_ms`;
    /// returns how many duplicate-check entries (durable on return).
    pub fn purge_seen(&mut self, now_ms: u64) -> Result<u64, StoreError> {
        self.transaction(|b| b.purge_seen(now_ms))
    }

    /// Number of duplicate-check entries.
    pub fn seen_len(&self) -> Result<u64, StoreError> {
        self.read()?.seen_len()
    }

    /// The sender and message id of the stored message this envelope carried, if remembered (see
    /// [`Batch::mark_envelope`]).
    pub fn envelope(
        &self,
        envelope: &EnvelopeId,
    ) -> Result<Option<(IdentityKey, MessageId)>, StoreError> {
        self.read()?.envelope(envelope)
    }

    /// Records which message an envelope carried, until `expires_ms` (durable on return); `false` if it
    /// was recorded already.
    pub fn mark_envelope(
        &mut self,
        envelope: &EnvelopeId,
        sender: &IdentityKey,
        id: &MessageId,
        expires_ms: u64,
    ) -> Result<bool, StoreError> {
        self.transaction(|b| b.mark_envelope(envelope, sender, id, expires_ms))
    }

    /// Number of remembered envelopes.
    pub fn envelopes_len(&self) -> Result<u64, StoreError> {
        self.read()?.envelopes_len()
    }
}
