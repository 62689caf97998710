//! Re-keying a profile ([`Store::rekey`]): every row written again under a fresh random store key, into a
//! fresh file that replaces the old one, so neither the old password nor the old store key opens anything
//! in the profile any more.
//!
//! A password change alone re-wraps the same store key: a copy of the old key slot (in a freed page, a
//! disk block the file system has not reused, an old copy of the file) and the old password still open
//! every value written since. A re-key changes the key itself. Every blind row key is computed again under
//! the new key from the inputs the store keeps:
//!
//! - contacts, sessions, messages (their positions kept), outbox entries, groups, pending key packages and
//!   attachments from their sealed values;
//! - settings from the names the caller passes (every name this build writes);
//! - conversation timers from every conversation the profile knows (contacts, groups, messages);
//! - duplicate-check and envelope marks from the input kept in their sealed values; a mark written before
//!   that input was kept is matched against the stored messages, and one that matches none (its message
//!   was deleted) is dropped and counted in the [`RekeyReport`] (a late copy of that message can no longer
//!   be opened: its key is spent).
//!
//! Session rows are read through their rollback checks: a row that fails its check is dropped (its contact
//! gets a new session), never carried over as trusted. Pickles move to the new pickle key unchanged inside
//! (`tern_protocol::pickle::reseal`), so no sending chain moves.
//!
//! The new file is written as [`REKEYING_FILE`] from one read transaction, synced, then renamed over
//! `store.redb`; until the rename the old file is the profile, and a failure removes the copy. The profile
//! lock is held throughout. Files in the profile's file store are encrypted under their own keys (kept in
//! the sealed attachment records) and are not rewritten.

use std::collections::HashSet;
use std::fs::{self, File};
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableTable, ReadableTableMetadata, TableHandle};
use tern_protocol::PeerSessions;
use tern_protocol::crypto::SecretKey;
use tern_protocol::timer::Timer;
use zeroize::Zeroizing;

use super::dedupe::{
    EnvelopeValue, decode_envelope_value, decode_seen_value, encode_envelope_value,
    encode_seen_value, expiry_key,
};
use super::files::{ATTACHMENTS, AttachmentRecord};
use super::groups::{GROUP_HISTORY, GROUP_KEY_PACKAGES, GROUPS};
use super::health::Shared;
use super::kdf::{KeySlot, Password};
use super::keys::{BLIND_LEN, Blind, Keys};
use super::messages::{MESSAGE_KEY_LEN, conv_blind, message_key, message_row, write_rows};
use super::outbox::outbox_insert_rows;
use super::profile::{file_opener, open_database, prepare, read_keyslot, sync_dir};
use super::records::{ContactRecord, MessageRecord, OutboxRecord};
use super::timers::{EXPIRY, TIMERS};
use super::{
    BytesTable, CONTACTS, CONV_MESSAGE_INDEX, CONV_MESSAGES, CONV_UNREAD, ENVELOPE_EXPIRY,
    ENVELOPES, FORMAT_VERSION, META, META_FORMAT, META_KEYSLOT, OUTBOX_DUE, OUTBOX_INDEX,
    OUTBOX_ROWS, SEEN, SEEN_EXPIRY, SESSIONS, SETTINGS, STORE_FILE, Store, StoreError, VAULT,
    corrupt,
};
use crate::api::ConversationId;
use crate::group::stored_group_id;

/// The new file a re-key writes, inside the profile directory.
pub const REKEYING_FILE: &str = "store.redb.rekeying";

/// Settings the store itself writes (the caller names the rest).
const OWN_SETTINGS: [&str; 1] = [super::timers::SCRUB_SETTING];

/// Every table a re-key knows how to carry; any other table in the profile is refused before anything is
/// written (its rows would not open under the new key).
const KNOWN_TABLES: [&str; 22] = [
    "meta",
    "vault",
    "contacts",
    "sessions",
    "conversation_messages",
    "conversation_message_index",
    "conversation_unread",
    "outbox_by_recipient",
    "outbox_due",
    "outbox_index",
    "seen",
    "seen_expiry",
    "envelopes",
    "envelope_expiry",
    "settings",
    "groups",
    "group_key_packages",
    "group_history",
    "attachments",
    "conversation_timers",
    "message_expiry",
    "search_tokens",
];

/// What a re-key carried and what it had to leave behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RekeyReport {
    /// Messages carried.
    pub messages: u64,
    /// Session rows carried.
    pub sessions: u64,
    /// Session rows left behind: they failed their rollback check (the contact gets a new session).
    pub sessions_dropped: u64,
    /// Duplicate-check marks left behind: written before their input was kept, for messages no longer
    /// stored.
    pub seen_dropped: u64,
    /// Envelope marks left behind: written before their envelope id was kept (a late copy of that
    /// envelope earns its sender no delivery receipt).
    pub envelopes_dropped: u64,
    /// Timers left behind: of conversations the profile no longer knows.
    pub timers_dropped: u64,
}

impl Store {
    /// Writes the whole profile again under a fresh store key wrapped by `new` (same Argon2id parameters),
    /// in a fresh file that replaces the old one (see the module doc). `settings` names every setting the
    /// caller writes; a setting row that none of them (nor the store's own) names is refused as
    /// [`StoreError::Unsupported`] before anything changes. [`StoreError::WrongPassword`] if `old` is not
    /// the current password. Runs two Argon2id derivations and reads and writes every row: call it with the
    /// node stopped, off any event loop.
    ///
    /// Readers handed out before (see [`Store::reader`]) stop working: they fail from then on.
    pub fn rekey(
        &mut self,
        old: &Password,
        new: &Password,
        settings: &[&str],
    ) -> Result<RekeyReport, StoreError> {
        let slot = self.shared.read_db(read_keyslot)?;
        let current = slot.unwrap_key(old)?;
        if current.as_bytes() != self.keys.store_key().as_bytes() {
            return Err(StoreError::WrongPassword);
        }
        let new_key = SecretKey::random(&mut rand::rng());
        let new_slot = KeySlot::wrap(&new_key, new, slot.params())?;
        let new_keys = Keys::derive(new_key);

        let path = self.dir.join(STORE_FILE);
        let tmp = self.dir.join(REKEYING_FILE);
        if tmp.try_exists()? {
            // Left by a re-key that did not finish: the original is still the profile.
            fs::remove_file(&tmp)?;
        }
        let written = (|| {
            let (read, _) = self.shared.begin_read()?;
            let db = Database::create(&tmp)?;
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                meta.insert(META_FORMAT, [FORMAT_VERSION].as_slice())?;
                meta.insert(META_KEYSLOT, new_slot.encode().as_slice())?;
            }
            let report = copy(&read, &self.keys, &txn, &new_keys, settings)?;
            txn.commit()?;
            db.close()?;
            crate::redb_file::make_private(&tmp)?;
            File::open(&tmp)?.sync_all()?;
            Ok(report)
        })();
        let report = match written {
            Ok(report) => report,
            Err(err) => {
                // Best effort: the profile is the untouched original either way.
                let _ = fs::remove_file(&tmp);
                return Err(err);
            }
        };
        // The old database closes before the rename (redb holds a lock on the file it has open).
        self.shared.release();
        let (keys, result) = match fs::rename(&tmp, &path).map_err(StoreError::from) {
            Ok(()) => (new_keys, sync_dir(&self.dir).map(|()| report)),
            Err(err) => {
                let _ = fs::remove_file(&tmp);
                (Keys::derive(current), Err(err))
            }
        };
        let db = open_database(&path)?;
        prepare(&db, &keys)?;
        let keys = Arc::new(keys);
        self.shared = Arc::new(Shared::new(db, file_opener(path), Arc::clone(&keys)));
        self.keys = keys;
        result
    }
}

fn pickle_corrupt(what: &str, err: tern_protocol::PickleError) -> StoreError {
    StoreError::Corrupt(format!("a {what} pickle does not open: {err}"))
}

fn bytes_table(
    read: &ReadTransaction,
    def: BytesTable,
) -> Result<redb::ReadOnlyTable<&'static [u8], &'static [u8]>, StoreError> {
    Ok(read.open_table(def)?)
}

fn blind_row(key: &[u8]) -> Result<[u8; BLIND_LEN], StoreError> {
    <[u8; BLIND_LEN]>::try_from(key)
        .map_err(|_| StoreError::Corrupt("a row key is malformed".into()))
}

/// Where a re-key reads (the old file, under the old keys) and writes (the new file, under the new keys).
#[derive(Clone, Copy)]
struct Copying<'a> {
    read: &'a ReadTransaction,
    old: &'a Keys,
    txn: &'a redb::WriteTransaction,
    new: &'a Keys,
}

impl Copying<'_> {
    /// Carries every row of `def` whose new row key follows from its value alone: each value is opened
    /// under the old keys, `row_of` names its row under the new ones, and it is sealed there.
    fn reseal_by_value(
        &self,
        def: BytesTable,
        mut row_of: impl FnMut(&Keys, &[u8]) -> Result<[u8; BLIND_LEN], StoreError>,
    ) -> Result<(), StoreError> {
        let mut to = self.txn.open_table(def)?;
        for entry in bytes_table(self.read, def)?.iter()? {
            let (row, sealed) = entry?;
            let plain = self.old.open(def.name(), row.value(), sealed.value())?;
            let row = row_of(self.new, &plain)?;
            to.insert(
                row.as_slice(),
                self.new.seal(def.name(), &row, &plain).as_slice(),
            )?;
        }
        Ok(())
    }
}

/// Carries every table from `read` (under `old`) into `txn` (under `new`).
fn copy(
    read: &ReadTransaction,
    old: &Keys,
    txn: &redb::WriteTransaction,
    new: &Keys,
    settings: &[&str],
) -> Result<RekeyReport, StoreError> {
    for table in read.list_tables()? {
        if !KNOWN_TABLES.contains(&table.name()) {
            return Err(StoreError::Corrupt(format!(
                "table {} is unknown to the re-key",
                table.name()
            )));
        }
    }
    let mut report = RekeyReport::default();
    let c = &Copying {
        read,
        old,
        txn,
        new,
    };
    copy_settings(c, settings)?;
    copy_vault(c)?;
    let mut conversations = copy_contacts(c)?;
    copy_sessions(c, &mut report)?;
    let seen_carried = copy_messages(c, &mut conversations, &mut report)?;
    copy_seen(c, &seen_carried, &mut report)?;
    copy_envelopes(c, &mut report)?;
    copy_outbox(c)?;
    copy_groups(c, &mut conversations)?;
    copy_attachments(c)?;
    copy_timers(c, &conversations, &mut report)?;
    // Blind tokens depend on the key: the search index is built again from the carried messages.
    super::search::rebuild_search_index(txn, new)?;
    Ok(report)
}

fn copy_settings(c: &Copying<'_>, settings: &[&str]) -> Result<(), StoreError> {
    let Copying {
        read,
        old,
        txn,
        new,
    } = *c;
    let from = bytes_table(read, SETTINGS)?;
    let mut to = txn.open_table(SETTINGS)?;
    let mut carried = 0u64;
    let names: HashSet<&str> = settings.iter().copied().chain(OWN_SETTINGS).collect();
    for name in names {
        let row = old.blind(Blind::Setting, &[name.as_bytes()]);
        if let Some(sealed) = from.get(row.as_slice())? {
            let plain = old.open(SETTINGS.name(), &row, sealed.value())?;
            let row = new.blind(Blind::Setting, &[name.as_bytes()]);
            to.insert(
                row.as_slice(),
                new.seal(SETTINGS.name(), &row, &plain).as_slice(),
            )?;
            carried += 1;
        }
    }
    if carried != from.len()? {
        return Err(StoreError::Unsupported(
            "the profile holds a setting this build does not know",
        ));
    }
    Ok(())
}

fn copy_vault(c: &Copying<'_>) -> Result<(), StoreError> {
    let Copying {
        read,
        old,
        txn,
        new,
    } = *c;
    let mut to = txn.open_table(VAULT)?;
    for entry in read.open_table(VAULT)?.iter()? {
        let (row, sealed) = entry?;
        let row = row.value();
        let mut plain = old.open(VAULT.name(), row.as_bytes(), sealed.value())?;
        if row == super::VaultItem::IdentityPickle.row() {
            plain = Zeroizing::new(
                tern_protocol::pickle::reseal(
                    &old.pickle_key(),
                    &new.pickle_key(),
                    &plain,
                    &mut rand::rng(),
                )
                .map_err(|err| pickle_corrupt("identity", err))?,
            );
        }
        to.insert(
            row,
            new.seal(VAULT.name(), row.as_bytes(), &plain).as_slice(),
        )?;
    }
    Ok(())
}

fn copy_contacts(c: &Copying<'_>) -> Result<HashSet<ConversationId>, StoreError> {
    let mut conversations = HashSet::new();
    c.reseal_by_value(CONTACTS, |new, plain| {
        let contact = ContactRecord::decode(plain).map_err(|err| corrupt("contact record", err))?;
        conversations.insert(ConversationId::Direct(contact.key));
        Ok(new.blind(Blind::Contact, &[contact.key.as_bytes()]))
    })?;
    Ok(conversations)
}

fn copy_sessions(c: &Copying<'_>, report: &mut RekeyReport) -> Result<(), StoreError> {
    let Copying {
        read,
        old,
        txn,
        new,
    } = *c;
    let from = bytes_table(read, SESSIONS)?;
    let mut to = txn.open_table(SESSIONS)?;
    let mut rows = Vec::new();
    for entry in from.iter()? {
        let (row, _) = entry?;
        if super::rollback::is_session_row(row.value()) {
            rows.push(row.value().to_vec());
        }
    }
    for row in rows {
        let pickle = match super::rollback::open_session(old, &from, &row) {
            Ok(Some(pickle)) => pickle,
            Ok(None) => continue,
            Err(StoreError::RolledBack) => {
                report.sessions_dropped += 1;
                continue;
            }
            Err(err) => return Err(err),
        };
        let remote = PeerSessions::unpickle(&old.pickle_key(), &pickle)
            .map_err(|err| pickle_corrupt("session", err))?
            .remote();
        let moved = tern_protocol::pickle::reseal(
            &old.pickle_key(),
            &new.pickle_key(),
            &pickle,
            &mut rand::rng(),
        )
        .map_err(|err| pickle_corrupt("session", err))?;
        let row = new.blind(Blind::Contact, &[remote.as_bytes()]);
        let sealed = new.seal(SESSIONS.name(), &row, &moved);
        to.insert(row.as_slice(), sealed.as_slice())?;
        super::rollback::record(new, &mut to, &row, Some(&sealed))?;
        report.sessions += 1;
    }
    Ok(())
}

/// Messages keep their positions; their index rows, unread marks, expiry entries and duplicate-check
/// marks move with them. Returns the old `seen` rows carried.
fn copy_messages(
    c: &Copying<'_>,
    conversations: &mut HashSet<ConversationId>,
    report: &mut RekeyReport,
) -> Result<HashSet<[u8; BLIND_LEN]>, StoreError> {
    let Copying {
        read,
        old,
        txn,
        new,
    } = *c;
    let from_unread = read.open_table(CONV_UNREAD)?;
    let from_expiry = read.open_table(EXPIRY)?;
    let from_seen = bytes_table(read, SEEN)?;
    let mut messages = txn.open_table(CONV_MESSAGES)?;
    let mut index = txn.open_table(CONV_MESSAGE_INDEX)?;
    let mut unread = txn.open_table(CONV_UNREAD)?;
    let mut expiry = txn.open_table(EXPIRY)?;
    let mut seen = txn.open_table(SEEN)?;
    let mut seen_expiry = txn.open_table(SEEN_EXPIRY)?;
    let mut seen_carried = HashSet::new();
    for entry in bytes_table(read, CONV_MESSAGES)?.iter()? {
        let (key, sealed) = entry?;
        let key = key.value();
        let plain = old.open(CONV_MESSAGES.name(), key, sealed.value())?;
        let record = MessageRecord::decode(&plain).map_err(|err| corrupt("message record", err))?;
        let position = key
            .get(BLIND_LEN..BLIND_LEN + 8)
            .and_then(|p| <[u8; 8]>::try_from(p).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt("a message key is malformed".into()))?;
        let conversation = record.conversation;
        conversations.insert(conversation);
        let old_row = message_row(old, &conversation, &record.id);
        let row = message_row(new, &conversation, &record.id);
        let new_key: [u8; MESSAGE_KEY_LEN] =
            message_key(&conv_blind(new, &conversation), position, &row);
        let is_unread = from_unread.get(key)?.is_some();
        write_rows(
            new,
            &mut messages,
            &mut index,
            &mut unread,
            &new_key,
            &row,
            &plain,
            is_unread,
        )?;
        if record.expires_at_ms != 0 {
            let old_entry = super::timers::expiry_key(record.expires_at_ms, &old_row);
            if from_expiry.get(old_entry.as_slice())?.is_some() {
                let entry = super::timers::expiry_key(record.expires_at_ms, &row);
                expiry.insert(entry.as_slice(), ())?;
            }
        }
        report.messages += 1;
        // The duplicate-check mark of an incoming message (keyed as `Batch::insert_record` keys it).
        if !record.outgoing {
            let conversation_bytes = conversation.to_bytes();
            let seen_key: &[u8] = match &conversation {
                ConversationId::Direct(contact) => contact.as_bytes(),
                _ => &conversation_bytes,
            };
            let input = [seen_key, &record.id.0].concat();
            let old_seen = old.blind(Blind::Seen, &[&input]);
            if let Some(sealed) = from_seen.get(old_seen.as_slice())? {
                let value =
                    decode_seen_value(&old.open(SEEN.name(), &old_seen, sealed.value())?)?;
                let row = new.blind(Blind::Seen, &[&input]);
                let plain = encode_seen_value(value.expires_ms, &input);
                seen.insert(
                    row.as_slice(),
                    new.seal(SEEN.name(), &row, &plain).as_slice(),
                )?;
                seen_expiry.insert(expiry_key(value.expires_ms, &row).as_slice(), ())?;
                seen_carried.insert(old_seen);
            }
        }
    }
    Ok(seen_carried)
}

/// The duplicate-check marks not carried with a stored message: those that keep their input move; the
/// others (written before inputs were kept) are dropped.
fn copy_seen(
    c: &Copying<'_>,
    carried: &HashSet<[u8; BLIND_LEN]>,
    report: &mut RekeyReport,
) -> Result<(), StoreError> {
    let Copying {
        read,
        old,
        txn,
        new,
    } = *c;
    let mut seen = txn.open_table(SEEN)?;
    let mut seen_expiry = txn.open_table(SEEN_EXPIRY)?;
    for entry in bytes_table(read, SEEN)?.iter()? {
        let (row, sealed) = entry?;
        let old_row = blind_row(row.value())?;
        if carried.contains(&old_row) {
            continue;
        }
        let value = decode_seen_value(&old.open(SEEN.name(), &old_row, sealed.value())?)?;
        if value.input.is_empty() {
            report.seen_dropped += 1;
            continue;
        }
        let row = new.blind(Blind::Seen, &[&value.input]);
        let plain = encode_seen_value(value.expires_ms, &value.input);
        seen.insert(
            row.as_slice(),
            new.seal(SEEN.name(), &row, &plain).as_slice(),
        )?;
        seen_expiry.insert(expiry_key(value.expires_ms, &row).as_slice(), ())?;
    }
    Ok(())
}

fn copy_envelopes(c: &Copying<'_>, report: &mut RekeyReport) -> Result<(), StoreError> {
    let Copying {
        read,
        old,
        txn,
        new,
    } = *c;
    let mut envelopes = txn.open_table(ENVELOPES)?;
    let mut by_expiry = txn.open_table(ENVELOPE_EXPIRY)?;
    for entry in bytes_table(read, ENVELOPES)?.iter()? {
        let (row, sealed) = entry?;
        let plain = old.open(ENVELOPES.name(), row.value(), sealed.value())?;
        let EnvelopeValue {
            expires_ms,
            sender,
            id,
            envelope,
        } = decode_envelope_value(&plain)?;
        let Some(envelope) = envelope else {
            report.envelopes_dropped += 1;
            continue;
        };
        let row = new.blind(Blind::Envelope, &[&envelope.0]);
        let plain = encode_envelope_value(expires_ms, &sender, &id, &envelope);
        envelopes.insert(
            row.as_slice(),
            new.seal(ENVELOPES.name(), &row, &plain).as_slice(),
        )?;
        by_expiry.insert(expiry_key(expires_ms, &row).as_slice(), ())?;
    }
    Ok(())
}

fn copy_outbox(c: &Copying<'_>) -> Result<(), StoreError> {
    let Copying {
        read,
        old,
        txn,
        new,
    } = *c;
    let mut rows = txn.open_table(OUTBOX_ROWS)?;
    let mut due = txn.open_table(OUTBOX_DUE)?;
    let mut index = txn.open_table(OUTBOX_INDEX)?;
    for entry in bytes_table(read, OUTBOX_ROWS)?.iter()? {
        let (row, sealed) = entry?;
        let plain = old.open(OUTBOX_ROWS.name(), row.value(), sealed.value())?;
        let record = OutboxRecord::decode(&plain).map_err(|err| corrupt("outbox record", err))?;
        outbox_insert_rows(new, &mut rows, &mut due, &mut index, &record)?;
    }
    Ok(())
}

/// A pending KeyPackage starts `u8 version ‖ u16 BE len ‖ hash ref` (`group::PendingKeyPackage::encode`).
/// (A group state or history row starts `u8 version ‖ me[32] ‖ u8 len ‖ group id`: `group::stored_group_id`.)
fn hash_ref_of(pending: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*pending.get(1)?, *pending.get(2)?]));
    pending.get(3..3 + len)
}

fn copy_groups(
    c: &Copying<'_>,
    conversations: &mut HashSet<ConversationId>,
) -> Result<(), StoreError> {
    c.reseal_by_value(GROUPS, |new, plain| {
        let id = stored_group_id(plain)
            .ok_or_else(|| StoreError::Corrupt("a group state is malformed".into()))?;
        conversations.insert(ConversationId::of_group(id));
        Ok(new.blind(Blind::Group, &[id]))
    })?;
    c.reseal_by_value(GROUP_HISTORY, |new, plain| {
        let id = stored_group_id(plain)
            .ok_or_else(|| StoreError::Corrupt("a group history is malformed".into()))?;
        Ok(new.blind(Blind::GroupHistory, &[id]))
    })?;
    c.reseal_by_value(GROUP_KEY_PACKAGES, |new, plain| {
        let hash_ref = hash_ref_of(plain)
            .ok_or_else(|| StoreError::Corrupt("a pending key package is malformed".into()))?;
        Ok(new.blind(Blind::KeyPackage, &[hash_ref]))
    })
}

fn copy_attachments(c: &Copying<'_>) -> Result<(), StoreError> {
    c.reseal_by_value(ATTACHMENTS, |new, plain| {
        let record =
            AttachmentRecord::decode(plain).map_err(|err| corrupt("attachment record", err))?;
        Ok(super::files::row(new, &record.conversation, &record.id))
    })
}

fn copy_timers(
    c: &Copying<'_>,
    conversations: &HashSet<ConversationId>,
    report: &mut RekeyReport,
) -> Result<(), StoreError> {
    let Copying {
        read,
        old,
        txn,
        new,
    } = *c;
    let from = bytes_table(read, TIMERS)?;
    let mut to = txn.open_table(TIMERS)?;
    let mut carried = 0u64;
    for conversation in conversations {
        let row = conv_blind(old, conversation);
        if let Some(sealed) = from.get(row.as_slice())? {
            let plain = old.open(TIMERS.name(), &row, sealed.value())?;
            Timer::decode(&plain).map_err(|err| corrupt("conversation timer", err))?;
            let row = conv_blind(new, conversation);
            to.insert(
                row.as_slice(),
                new.seal(TIMERS.name(), &row, &plain).as_slice(),
            )?;
            carried += 1;
        }
    }
    report.timers_dropped = from.len()?.saturating_sub(carried);
    Ok(())
}
