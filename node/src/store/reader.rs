//! [`StoreReader`]: the read side of an open profile, usable from any thread (redb read transactions run
//! beside the writer), and the conversions from store rows to `crate::api` types. Nothing here writes;
//! the slow half of a password change ([`StoreReader::rewrap`], two Argon2id runs) lives here too, so it
//! can run off the event loop and leave only [`super::Store::install_key_slot`] to the writer.

use std::sync::Arc;

use tern_protocol::{IdentityKey, MessageId};
use zeroize::Zeroizing;

use super::batch::Reader;
use super::health::Shared;
use super::kdf::{KeySlot, Password};
use super::keys::Keys;
use super::profile::read_keyslot;
use super::records::MessageRecord;
use super::{MAX_SEARCH_RESULTS, StoreError};
use crate::api::{Contact, Conversation, ConversationId, Cursor, Message, MessageTimes, Page};

/// A read-only handle on an open profile: cheap to clone, `Send + Sync`, meant for
/// `tokio::task::spawn_blocking` while the event loop keeps writing through [`super::Store`]. Every call
/// reads one consistent snapshot. A reader shares the store's database (not the profile lock): while the
/// store has it closed after a disk failure, reads fail with [`StoreError::DiskFailing`] (see `health.rs`).
#[derive(Clone)]
pub struct StoreReader {
    shared: Arc<Shared>,
    keys: Arc<Keys>,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader").finish_non_exhaustive()
    }
}

/// A new key slot for the store key, wrapped under a new password by [`StoreReader::rewrap`]; install it
/// with [`super::Store::install_key_slot`]. Holds no secret (the slot is itself an AEAD).
#[derive(Clone)]
pub struct KeySlotUpdate {
    pub(super) slot: Vec<u8>,
}

impl std::fmt::Debug for KeySlotUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySlotUpdate").finish_non_exhaustive()
    }
}

impl StoreReader {
    pub(super) fn new(shared: Arc<Shared>, keys: Arc<Keys>) -> Self {
        Self { shared, keys }
    }

    /// Runs `f` on one read transaction; a disk failure it meets becomes [`StoreError::DiskFailing`].
    pub(super) fn run<T>(
        &self,
        f: impl FnOnce(&Reader<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let read = Reader::begin(&self.shared, &self.keys)?;
        let generation = read.generation;
        let result = f(&read);
        drop(read);
        self.shared.check(generation, "read", result)
    }

    /// Every contact, oldest first.
    pub fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        self.run(|read| Ok(read.contacts()?.iter().map(Contact::from).collect()))
    }

    /// The contact with this identity key, if any.
    pub fn contact(&self, key: &IdentityKey) -> Result<Option<Contact>, StoreError> {
        self.run(|read| Ok(read.contact(key)?.as_ref().map(Contact::from)))
    }

    /// Every conversation with its last message and unread count, most recent first. A 1:1
    /// conversation's title is the contact's name (their peer id if they are no longer a contact).
    pub fn conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.run(Self::conversations_in)
    }

    fn conversations_in(read: &Reader<'_>) -> Result<Vec<Conversation>, StoreError> {
        let mut out = Vec::new();
        for summary in read.conversations()? {
            // A group's title is its name, which lives in the group's state: the node fills it in.
            let title = match summary.conversation {
                ConversationId::Direct(key) => match read.contact(&key)? {
                    Some(contact) => contact.local_name,
                    None => key.peer_id(),
                },
                _ => String::new(),
            };
            let mut last = [summary.last.into_message()];
            read.attach(&mut last)?;
            let [last] = last;
            let timer_s = read.timer(&summary.conversation)?.seconds;
            out.push(Conversation {
                id: summary.conversation,
                title,
                last,
                unread: summary.unread,
                timer_s,
            });
        }
        Ok(out)
    }

    /// A conversation's disappearing-message timer, in seconds (0: off).
    pub fn timer(&self, conversation: &ConversationId) -> Result<u32, StoreError> {
        self.run(|read| Ok(read.timer(conversation)?.seconds))
    }

    /// The newest `limit` messages of a conversation before `before` (or the newest of all), oldest first.
    pub fn page(
        &self,
        conversation: &ConversationId,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.run(|read| {
            let page = read.conversation_page(conversation, before.as_ref(), limit)?;
            // A message whose timer ran out while no node ran to delete it is out of view already.
            let now = crate::api::now_ms();
            let mut messages: Vec<Message> = page
                .messages
                .into_iter()
                .filter(|m| !m.expired(now))
                .map(MessageRecord::into_message)
                .collect();
            read.attach(&mut messages)?;
            Ok(Page {
                messages,
                older: page.older,
            })
        })
    }

    /// When a stored message was delivered and read, as far as this device knows; `None` if it is not
    /// stored.
    pub fn message_times(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<MessageTimes>, StoreError> {
        let known = |ms: u64| (ms != 0).then_some(ms);
        self.run(|read| {
            Ok(read.message(conversation, id)?.map(|m| MessageTimes {
                delivered_at_ms: known(m.delivered_at_ms),
                read_at_ms: known(m.read_at_ms),
            }))
        })
    }

    /// One message, if stored.
    pub fn message(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<Message>, StoreError> {
        self.run(|read| {
            let mut message: Vec<Message> = read
                .message(conversation, id)?
                .map(MessageRecord::into_message)
                .into_iter()
                .collect();
            read.attach(&mut message)?;
            Ok(message.pop())
        })
    }

    /// Unread incoming messages in a conversation.
    pub fn unread_count(&self, conversation: &ConversationId) -> Result<u64, StoreError> {
        self.run(|read| read.unread_count(conversation))
    }

    /// The newest `limit` messages (at most [`MAX_SEARCH_RESULTS`]) whose text contains `needle`, ignoring
    /// case, newest first. Opens every message: run it off the event loop.
    pub fn search(&self, needle: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.run(|read| {
            let now = crate::api::now_ms();
            Ok(read
                .search(needle, limit.min(MAX_SEARCH_RESULTS))?
                .into_iter()
                .filter(|m| !m.expired(now))
                .map(MessageRecord::into_message)
                .collect())
        })
    }

    /// Envelopes waiting in the outbox.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        self.run(|read| read.outbox_len())
    }

    /// A setting, if set.
    pub fn setting_get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.run(|read| read.setting_get(name))
    }

    /// The slow half of a password change: checks `old` against the stored key slot and wraps the store
    /// key under `new` with the same Argon2id parameters (two Argon2id runs, so call it off the event
    /// loop). [`StoreError::WrongPassword`] if `old` is not the current password.
    pub fn rewrap(&self, old: &Password, new: &Password) -> Result<KeySlotUpdate, StoreError> {
        let slot = self.shared.read_db(read_keyslot)?;
        let current = slot.unwrap_key(old)?;
        if current.as_bytes() != self.keys.store_key().as_bytes() {
            return Err(StoreError::WrongPassword);
        }
        let new_slot = KeySlot::wrap(self.keys.store_key(), new, slot.params())?;
        Ok(KeySlotUpdate {
            slot: new_slot.encode(),
        })
    }
}
