//! Disappearing messages in the store (docs/protocol.md §12.4): `conversation_timers` holds each
//! conversation's timer (`tern_protocol::timer::Timer`, sealed, keyed by `conv(c)`); `message_expiry`
//! lists the messages whose clock runs, keyed `u64 BE expires_at_ms ‖ row(c, id)` with no value, so the
//! messages due by a time are one range and the next expiry is the first key. Both tables are created on
//! open when missing, so profiles written before them open unchanged.
//!
//! Expiring a message deletes its rows, its file's row, its outbox entry and its expiry entry in one
//! commit ([`Batch::expire_due`]); the caller removes the file's bytes first. redb frees the pages
//! that held them without wiping them, so a profile that expired messages is compacted
//! ([`super::Store::compact`]), which overwrites or cuts off those pages.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle};
use tern_protocol::MessageId;
use tern_protocol::timer::Timer;

use super::batch::{Batch, Reader, get_open};
use super::files::AttachmentRecord;
use super::keys::{BLIND_LEN, Keys};
use super::messages::{conv_blind, indexed_key, message_at, message_row};
use super::records::MessageRecord;
use super::{BytesTable, CONV_MESSAGE_INDEX, CONV_MESSAGES, StoreError, UnitTable, corrupt};
use crate::api::ConversationId;

pub(super) const TIMERS: BytesTable = redb::TableDefinition::new("conversation_timers");
pub(super) const EXPIRY: UnitTable = redb::TableDefinition::new("message_expiry");
const EXPIRY_KEY_LEN: usize = 8 + BLIND_LEN;

/// Set (in the commit that deletes them) once messages expired, or the password changed; cleared once the
/// database was compacted.
pub(super) const SCRUB_SETTING: &str = "scrub-pending";

/// At most this many messages are expired in one commit; the rest wait for the next call.
pub const MAX_EXPIRED_PER_COMMIT: usize = 256;

/// A message that disappeared: what the caller tells the user, and the file whose bytes it removes.
#[derive(Debug, Clone)]
pub struct Expired {
    pub conversation: ConversationId,
    pub id: MessageId,
    pub attachment: Option<AttachmentRecord>,
}

/// Creates the tables in a profile written before they existed (one durable commit, only if missing).
pub(super) fn add_timer_tables(db: &Database) -> Result<(), StoreError> {
    {
        let txn = db.begin_read()?;
        let names: Vec<String> = txn.list_tables()?.map(|t| t.name().to_owned()).collect();
        if names.iter().any(|n| n == TIMERS.name()) && names.iter().any(|n| n == EXPIRY.name()) {
            return Ok(());
        }
    }
    let txn = db.begin_write()?;
    txn.open_table(TIMERS)?;
    txn.open_table(EXPIRY)?;
    txn.commit()?;
    Ok(())
}

/// Marks, in `batch`, that the file holds freed pages worth overwriting ([`super::Store::scrub`]): after
/// messages expired, or a password change.
pub(super) fn mark_scrub(batch: &mut Batch<'_>) -> Result<(), StoreError> {
    batch.setting_put(SCRUB_SETTING, &[1])
}

/// `message_expiry` keys name the start of the hour a message disappears in, not the millisecond: the
/// exact time is in the message's sealed record, which the expiry reads.
pub const EXPIRY_INDEX_BUCKET_MS: u64 = 3600 * 1000;

pub(super) fn expiry_key(at_ms: u64, row: &[u8; BLIND_LEN]) -> [u8; EXPIRY_KEY_LEN] {
    let mut key = [0u8; EXPIRY_KEY_LEN];
    let bucket = at_ms - at_ms % EXPIRY_INDEX_BUCKET_MS;
    key[..8].copy_from_slice(&bucket.to_be_bytes());
    key[8..].copy_from_slice(row);
    key
}

/// The format-2 to format-3 migration of `message_expiry`: each key's exact time becomes its hour.
pub(super) fn rebucket(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut table = txn.open_table(EXPIRY)?;
    let mut keys = Vec::new();
    for entry in table.iter()? {
        keys.push(expiry_key_of(entry?.0.value())?);
    }
    table.retain(|_, ()| false)?;
    for key in keys {
        let at = u64::from_be_bytes(key[..8].try_into().unwrap_or_default());
        table.insert(expiry_key(at, &row_of(&key)).as_slice(), ())?;
    }
    Ok(())
}

fn expiry_key_of(key: &[u8]) -> Result<[u8; EXPIRY_KEY_LEN], StoreError> {
    <[u8; EXPIRY_KEY_LEN]>::try_from(key)
        .map_err(|_| StoreError::Corrupt("a message expiry key is malformed".into()))
}

fn timer_in(
    keys: &Keys,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    conversation: &ConversationId,
) -> Result<Timer, StoreError> {
    let row = conv_blind(keys, conversation);
    match get_open(keys, table, TIMERS.name(), &row)? {
        None => Ok(Timer::OFF),
        Some(plain) => Timer::decode(&plain).map_err(|err| corrupt("conversation timer", err)),
    }
}

/// The message an expiry entry lists, if it is still stored.
fn listed_message(
    keys: &Keys,
    index: &impl ReadableTable<&'static [u8], &'static [u8]>,
    messages: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8; EXPIRY_KEY_LEN],
) -> Result<Option<MessageRecord>, StoreError> {
    match indexed_key(keys, index, &row_of(key))? {
        None => Ok(None),
        Some(at) => message_at(keys, messages, &at),
    }
}

/// When the next listed message disappears: the earliest exact time in the first hour that lists one (an
/// entry whose message is gone, or has no clock running, counts as due at its hour's start, so the next
/// expiry drops it).
fn first_expiry(
    keys: &Keys,
    index: &impl ReadableTable<&'static [u8], &'static [u8]>,
    messages: &impl ReadableTable<&'static [u8], &'static [u8]>,
    table: &impl ReadableTable<&'static [u8], ()>,
) -> Result<Option<u64>, StoreError> {
    let mut first: Option<u64> = None;
    for entry in table.iter()? {
        let key = expiry_key_of(entry?.0.value())?;
        let bucket = u64::from_be_bytes(key[..8].try_into().unwrap_or_default());
        if first.is_some_and(|first| first < bucket) {
            break;
        }
        let at = match listed_message(keys, index, messages, &key)? {
            Some(message) if message.expires_at_ms != 0 => message.expires_at_ms,
            _ => bucket,
        };
        first = Some(first.map_or(at, |first| first.min(at)));
    }
    Ok(first)
}

/// An expiry entry due, with its message if that is stored and due.
type DueEntry = ([u8; EXPIRY_KEY_LEN], Option<MessageRecord>);

/// The entries due by `now_ms` (at most [`MAX_EXPIRED_PER_COMMIT`]), each with its message if that is
/// stored and due (`None`: an entry to drop, its message gone or without a running clock).
fn due_entries(
    keys: &Keys,
    index: &impl ReadableTable<&'static [u8], &'static [u8]>,
    messages: &impl ReadableTable<&'static [u8], &'static [u8]>,
    table: &impl ReadableTable<&'static [u8], ()>,
    now_ms: u64,
) -> Result<Vec<DueEntry>, StoreError> {
    let hi = expiry_key(now_ms, &[0xff; BLIND_LEN]);
    let mut due = Vec::new();
    for entry in table.range::<&[u8]>(..=hi.as_slice())? {
        if due.len() == MAX_EXPIRED_PER_COMMIT {
            break;
        }
        let key = expiry_key_of(entry?.0.value())?;
        match listed_message(keys, index, messages, &key)? {
            Some(message) if message.expires_at_ms == 0 => due.push((key, None)),
            Some(message) if message.expired(now_ms) => due.push((key, Some(message))),
            Some(_) => {}
            None => due.push((key, None)),
        }
    }
    Ok(due)
}

fn row_of(key: &[u8; EXPIRY_KEY_LEN]) -> [u8; BLIND_LEN] {
    let mut row = [0u8; BLIND_LEN];
    row.copy_from_slice(&key[8..]);
    row
}

impl Reader<'_> {
    /// The files of the first messages due by `now_ms` (as many as [`Batch::expire_due`] takes).
    pub(crate) fn due_attachments(&self, now_ms: u64) -> Result<Vec<AttachmentRecord>, StoreError> {
        let index = self.table(CONV_MESSAGE_INDEX)?;
        let messages = self.table(CONV_MESSAGES)?;
        let mut out = Vec::new();
        let expiry = self.txn.open_table(EXPIRY)?;
        for (_, message) in due_entries(self.keys, &index, &messages, &expiry, now_ms)? {
            if let Some(message) = message
                && let Some(file) = self.attachment(&message.conversation, &message.id)?
            {
                out.push(file);
            }
        }
        Ok(out)
    }

    /// A conversation's timer ([`Timer::OFF`] if none was ever set).
    pub(crate) fn timer(&self, conversation: &ConversationId) -> Result<Timer, StoreError> {
        timer_in(self.keys, &self.table(TIMERS)?, conversation)
    }

    /// When the next message disappears, unix milliseconds.
    pub(crate) fn next_expiry(&self) -> Result<Option<u64>, StoreError> {
        first_expiry(
            self.keys,
            &self.table(CONV_MESSAGE_INDEX)?,
            &self.table(CONV_MESSAGES)?,
            &self.txn.open_table(EXPIRY)?,
        )
    }
}

impl Batch<'_> {
    /// A conversation's timer, as this transaction sees it.
    pub fn timer(&self, conversation: &ConversationId) -> Result<Timer, StoreError> {
        timer_in(self.keys, &self.txn.open_table(TIMERS)?, conversation)
    }

    /// Sets a conversation's timer.
    pub fn set_timer(
        &mut self,
        conversation: &ConversationId,
        timer: &Timer,
    ) -> Result<(), StoreError> {
        let row = conv_blind(self.keys, conversation);
        let sealed = self.keys.seal(TIMERS.name(), &row, &timer.encode());
        self.txn
            .open_table(TIMERS)?
            .insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// Forgets a conversation's timer (the conversation is deleted).
    pub(super) fn remove_timer(&mut self, conversation: &ConversationId) -> Result<(), StoreError> {
        let row = conv_blind(self.keys, conversation);
        self.txn.open_table(TIMERS)?.remove(row.as_slice())?;
        Ok(())
    }

    /// Lists a stored message to disappear at `at_ms`.
    pub(super) fn schedule_expiry(
        &mut self,
        conversation: &ConversationId,
        id: &MessageId,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let row = message_row(self.keys, conversation, id);
        self.txn
            .open_table(EXPIRY)?
            .insert(expiry_key(at_ms, &row).as_slice(), ())?;
        Ok(())
    }

    /// Starts the clock of an incoming message with a timer that was just read: it disappears its timer's
    /// length after `now_ms`. Returns when, or `None` if it has no timer or its clock runs already.
    pub fn start_expiry(
        &mut self,
        conversation: &ConversationId,
        id: &MessageId,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let row = message_row(self.keys, conversation, id);
        let Some(key) = indexed_key(self.keys, &self.txn.open_table(CONV_MESSAGE_INDEX)?, &row)?
        else {
            return Ok(None);
        };
        let mut messages = self.txn.open_table(CONV_MESSAGES)?;
        let Some(mut message) = message_at(self.keys, &messages, &key)? else {
            return Ok(None);
        };
        if message.timer_s == 0 || message.expires_at_ms != 0 {
            return Ok(None);
        }
        let at = now_ms.saturating_add(u64::from(message.timer_s) * 1000);
        message.expires_at_ms = at;
        let plain = zeroize::Zeroizing::new(message.encode()?);
        let sealed = self.keys.seal(CONV_MESSAGES.name(), &key, &plain);
        messages.insert(key.as_slice(), sealed.as_slice())?;
        drop(messages);
        self.schedule_expiry(conversation, id, at)?;
        Ok(Some(at))
    }

    /// Deletes the messages due by `now_ms` (at most [`MAX_EXPIRED_PER_COMMIT`]): each one's rows, file
    /// row, outbox entry and expiry entry. An expiry entry whose message is gone already is dropped.
    pub fn expire_due(&mut self, now_ms: u64) -> Result<Vec<Expired>, StoreError> {
        let due = due_entries(
            self.keys,
            &self.txn.open_table(CONV_MESSAGE_INDEX)?,
            &self.txn.open_table(CONV_MESSAGES)?,
            &self.txn.open_table(EXPIRY)?,
            now_ms,
        )?;
        let mut expired = Vec::with_capacity(due.len());
        for (key, message) in due {
            self.txn.open_table(EXPIRY)?.remove(key.as_slice())?;
            let Some(message) = message else {
                continue;
            };
            let (_, attachment) = self.delete_message(&message.conversation, &message.id)?;
            self.outbox_remove(&message.id)?;
            expired.push(Expired {
                conversation: message.conversation,
                id: message.id,
                attachment,
            });
        }
        if !expired.is_empty() {
            mark_scrub(self)?;
        }
        Ok(expired)
    }

    /// Stores a message with the conversation's timer `timer_s` (seconds, 0: none), as
    /// [`Batch::insert_message`] does. An outgoing message's clock starts now: it disappears `timer_s` after
    /// it was sent; an incoming one's starts when it is read ([`Batch::start_expiry`]).
    pub fn insert_message_expiring(
        &mut self,
        message: &crate::api::Message,
        timer_s: u32,
    ) -> Result<bool, StoreError> {
        let mut record = MessageRecord::from_message(message)?;
        record.timer_s = timer_s;
        if timer_s > 0 && record.outgoing {
            record.expires_at_ms = record.sent_at_ms.saturating_add(u64::from(timer_s) * 1000);
        }
        let inserted = self.insert_record(&record)?;
        if inserted && record.expires_at_ms != 0 {
            self.schedule_expiry(&record.conversation, &record.id, record.expires_at_ms)?;
        }
        Ok(inserted)
    }

    /// How many messages wait for their clock to run out (for tests and status).
    pub fn expiring(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(EXPIRY)?.len()?)
    }
}

impl super::Store {
    /// Compacts the database if messages expired since it was last compacted, so the pages that held
    /// them are overwritten or cut off the file; then forgets that it has to. `Ok(false)`: a transaction
    /// is in progress (the caller tries again later), or there was nothing to do.
    pub fn scrub(&mut self) -> Result<bool, StoreError> {
        if self.setting_get(SCRUB_SETTING)?.is_none() {
            return Ok(false);
        }
        if !self.shared.compact()? {
            return Ok(false);
        }
        self.setting_delete(SCRUB_SETTING)?;
        Ok(true)
    }

    /// A message's row exactly as the file holds it (sealed), for tests that look for its bytes on disk.
    #[doc(hidden)]
    pub fn sealed_message_row(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let read = Reader::begin(&self.shared, &self.keys)?;
        let row = message_row(&self.keys, conversation, id);
        let Some(key) = indexed_key(&self.keys, &read.table(CONV_MESSAGE_INDEX)?, &row)? else {
            return Ok(None);
        };
        let messages = read.table(CONV_MESSAGES)?;
        Ok(messages.get(key.as_slice())?.map(|v| v.value().to_vec()))
    }

    /// Whether messages expired since the database was last compacted.
    pub fn scrub_pending(&self) -> Result<bool, StoreError> {
        Ok(self.setting_get(SCRUB_SETTING)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use tern_protocol::timer::TimerSetting;
    use tern_protocol::{Identity, IdentityKey};

    use super::*;
    use crate::api::{Message, MessageStatus};
    use crate::store::records::OutboxRecord;
    use crate::store::{KdfParams, Store};

    fn key(seed: u64) -> IdentityKey {
        Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
    }

    fn message(contact: IdentityKey, n: u8, outgoing: bool, at_ms: u64) -> Message {
        Message {
            id: MessageId([n; 16]),
            conversation: contact.into(),
            sender: (!outgoing).then_some(contact),
            system: false,
            sent_at_ms: at_ms,
            received_at_ms: at_ms,
            text: format!("message {n}"),
            status: if outgoing {
                MessageStatus::Sending
            } else {
                MessageStatus::Received
            },
            recipients: Vec::new(),
            reply_to: None,
            attachment: None,
        }
    }

    #[test]
    fn a_timer_is_kept_per_conversation_and_forgotten_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::create(dir.path(), &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let (ana, ben) = (
            ConversationId::Direct(key(1)),
            ConversationId::Direct(key(2)),
        );
        let timer = Timer::from_setting(
            TimerSetting {
                seconds: 300,
                version: 3,
            },
            [9; 16],
        );
        store.transaction(|b| b.set_timer(&ana, &timer)).unwrap();
        assert_eq!(store.timer(&ana).unwrap(), timer);
        assert_eq!(store.timer(&ben).unwrap(), Timer::OFF);
        store.transaction(|b| b.delete_conversation(ana)).unwrap();
        assert_eq!(store.timer(&ana).unwrap(), Timer::OFF);
    }

    #[test]
    fn an_outgoing_message_expires_from_sending_an_incoming_one_from_reading_with_its_outbox_entry()
    {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::create(dir.path(), &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let ana = key(1);
        let conversation = ConversationId::Direct(ana);
        let sent = message(ana, 1, true, 10_000);
        let got = message(ana, 2, false, 10_500);
        let stays = message(ana, 3, false, 10_600);
        store
            .transaction(|b| {
                b.insert_message_expiring(&sent, 5)?;
                b.insert_message_expiring(&got, 5)?;
                b.insert_message_expiring(&stays, 0)?;
                b.outbox_enqueue(&OutboxRecord {
                    message_id: sent.id,
                    recipient: ana,
                    envelope: vec![0; 32],
                    attempts: 0,
                    next_attempt_ms: 0,
                    created_ms: 0,
                    expires_at: u64::MAX,
                })
            })
            .unwrap();
        assert_eq!(store.next_expiry().unwrap(), Some(15_000), "sent + 5 s");
        assert!(
            store
                .transaction(|b| b.expire_due(14_999))
                .unwrap()
                .is_empty()
        );
        let gone = store.transaction(|b| b.expire_due(15_000)).unwrap();
        assert_eq!(gone.iter().map(|e| e.id).collect::<Vec<_>>(), vec![sent.id]);
        assert_eq!(
            store.outbox_len().unwrap(),
            0,
            "its outbox entry went with it"
        );
        assert!(store.scrub_pending().unwrap());
        assert_eq!(store.next_expiry().unwrap(), None, "unread: no clock yet");

        // Reading starts the clock; a second start changes nothing.
        let at = store
            .transaction(|b| b.start_expiry(&conversation, &got.id, 20_000))
            .unwrap();
        assert_eq!(at, Some(25_000));
        let again = store
            .transaction(|b| b.start_expiry(&conversation, &got.id, 21_000))
            .unwrap();
        assert_eq!(again, None);
        assert_eq!(
            store
                .transaction(|b| b.start_expiry(&conversation, &stays.id, 20_000))
                .unwrap(),
            None,
            "no timer: it stays"
        );
        let gone = store.transaction(|b| b.expire_due(u64::MAX)).unwrap();
        assert_eq!(gone.iter().map(|e| e.id).collect::<Vec<_>>(), vec![got.id]);
        let left = store.conversation_page(ana, None, 10).unwrap().messages;
        assert_eq!(
            left.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![stays.id]
        );

        assert!(store.scrub().unwrap(), "compacted");
        assert!(!store.scrub_pending().unwrap());
        assert!(!store.scrub().unwrap(), "nothing left to do");
    }

    #[test]
    fn after_compaction_the_file_holds_no_copy_of_an_expired_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::create(dir.path(), &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let ana = key(1);
        let conversation = ConversationId::Direct(ana);
        let doomed = message(ana, 200, true, 1_000);
        store
            .transaction(|b| {
                for n in 0..150u8 {
                    b.insert_message_expiring(&message(ana, n, true, 500 + u64::from(n)), 0)?;
                }
                b.insert_message_expiring(&doomed, 1)
            })
            .unwrap();
        let sealed = store
            .sealed_message_row(&conversation, &doomed.id)
            .unwrap()
            .unwrap();
        let needle = &sealed[sealed.len() / 2 - 24..sealed.len() / 2 + 24];
        let file = dir.path().join(crate::store::STORE_FILE);
        let on_disk = || {
            let bytes = std::fs::read(&file).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        };
        assert!(on_disk());
        assert_eq!(store.transaction(|b| b.expire_due(5_000)).unwrap().len(), 1);
        assert!(
            on_disk(),
            "redb frees the row's page without wiping it (if it ever wipes, compaction is moot)"
        );
        assert!(store.scrub().unwrap());
        assert!(!on_disk(), "compaction overwrote or cut off the freed page");
        assert_eq!(
            store
                .conversation_page(ana, None, 200)
                .unwrap()
                .messages
                .len(),
            150
        );
    }

    #[test]
    fn after_a_password_change_the_file_holds_no_copy_of_the_old_key_slot() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::create(dir.path(), &"old".into(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let slot = |store: &Store| {
            store
                .shared
                .read_db(crate::store::profile::read_keyslot)
                .unwrap()
                .encode()
        };
        let old_slot = slot(&store);
        let file = dir.path().join(crate::store::STORE_FILE);
        let holds = |needle: &[u8]| {
            let bytes = std::fs::read(&file).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        };
        assert!(holds(&old_slot));
        store.change_password(&"old".into(), &"new".into()).unwrap();
        assert_ne!(slot(&store), old_slot);
        assert!(!holds(&old_slot), "the old key slot is still in the file");
        assert!(!store.scrub_pending().unwrap());
        drop(store);
        assert!(matches!(
            Store::open(dir.path(), &"old".into()),
            Err(StoreError::WrongPassword)
        ));
        Store::open(dir.path(), &"new".into()).unwrap();
    }

    #[test]
    fn expiry_goes_in_bounded_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::create(dir.path(), &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let ana = key(1);
        let count = MAX_EXPIRED_PER_COMMIT + 3;
        store
            .transaction(|b| {
                for n in 0..count {
                    let mut m = message(ana, 0, true, 1_000);
                    m.id = MessageId((n as u128).to_be_bytes());
                    b.insert_message_expiring(&m, 1)?;
                }
                Ok(())
            })
            .unwrap();
        let first = store.transaction(|b| b.expire_due(5_000)).unwrap();
        assert_eq!(first.len(), MAX_EXPIRED_PER_COMMIT);
        let rest = store.transaction(|b| b.expire_due(5_000)).unwrap();
        assert_eq!(rest.len(), 3);
    }
}
