//! Opening a profile written by an older format: format 1 (messages, unread rows and the outbox keyed by
//! the contact's identity key) becomes format 2 (keyed by conversation; outbox indexed by recipient and by
//! due time), and format 2 becomes format 3 (message keys carry a position instead of a time, the
//! duplicate-check expiry indexes are bucketed by day, every value is padded and has a version byte).
//!
//! The migration never writes to `store.redb` itself. It copies it to [`MIGRATING_FILE`], rewrites the
//! copy in one write transaction (durable on commit; a format-1 file goes through both steps in that one
//! transaction), compacts it (so no page of the copy holds a format-2 key or value any more), syncs it,
//! then renames it over `store.redb` and syncs the directory. On any failure the copy is removed and the
//! original is left byte for byte as it was, so the profile still opens with the build that wrote it.

use std::fs::{self, File};
use std::path::Path;

use redb::{ReadableTable, Table, TableDefinition, TableHandle, WriteTransaction};
use tern_protocol::crypto::SecretKey;

use super::keys::{BLIND_LEN, Keys};
use super::messages::{MESSAGE_KEY_LEN, insert_message_rows};
use super::outbox::outbox_insert_rows;
use super::profile::{open_database, sync_dir};
use super::records::{MessageRecord, OutboxRecord};
use super::rollback;
use super::{
    Bytes, BytesTable, CONTACTS, CONV_MESSAGE_INDEX, CONV_MESSAGES, CONV_UNREAD, ENVELOPES,
    FORMAT_VERSION, META, META_FORMAT, OUTBOX_DUE, OUTBOX_INDEX, OUTBOX_ROWS, SEEN, SESSIONS,
    SETTINGS, STORE_FILE, StoreError, VAULT, corrupt,
};

/// The copy a migration works on, inside the profile directory.
pub const MIGRATING_FILE: &str = "store.redb.migrating";

/// Format 1's tables that format 2 replaces.
const V1_MESSAGES: TableDefinition<'static, Bytes, Bytes> = TableDefinition::new("messages");
const V1_MESSAGE_INDEX: TableDefinition<'static, Bytes, Bytes> =
    TableDefinition::new("message_index");
const V1_UNREAD: TableDefinition<'static, Bytes, ()> = TableDefinition::new("unread");
const V1_OUTBOX: TableDefinition<'static, Bytes, Bytes> = TableDefinition::new("outbox");

#[cfg(test)]
thread_local! {
    /// Tests set this to make the next migration on this thread fail after its commit, before the rename.
    pub(crate) static FAIL_BEFORE_RENAME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Migrates the store in `dir`, written by format `from` (1 or 2), to [`FORMAT_VERSION`], with the store
/// key already unwrapped from its key slot (the slot itself does not change).
pub(super) fn migrate(dir: &Path, store_key: &SecretKey, from: u8) -> Result<(), StoreError> {
    let path = dir.join(STORE_FILE);
    let tmp = dir.join(MIGRATING_FILE);
    if tmp.try_exists()? {
        // Left by a migration that did not finish: the original is still the profile.
        fs::remove_file(&tmp)?;
    }
    let result = copy_and_migrate(&path, &tmp, store_key, from).and_then(|()| {
        fs::rename(&tmp, &path)?;
        sync_dir(dir)
    });
    if result.is_err() {
        // Best effort: the original is untouched either way; a leftover copy is removed on the next try.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn copy_and_migrate(
    path: &Path,
    tmp: &Path,
    store_key: &SecretKey,
    from: u8,
) -> Result<(), StoreError> {
    fs::copy(path, tmp)?;
    {
        let mut db = open_database(tmp)?;
        let keys = Keys::derive(SecretKey::from_bytes(*store_key.as_bytes()));
        let txn = db.begin_write()?;
        if from < 2 {
            rewrite(&txn, &keys)?;
        }
        rewrite_v2(&txn, &keys)?;
        txn.open_table(META)?
            .insert(META_FORMAT, [FORMAT_VERSION].as_slice())?;
        txn.commit()?;
        // The old rows' pages are free now, not wiped: compaction moves live pages into them and cuts
        // the rest off. Each round can free more; a few suffice.
        for _ in 0..MAX_COMPACTIONS {
            match db.compact() {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => return Err(StoreError::Database(Box::new(err.into()))),
            }
        }
        db.close()?;
    }
    File::open(tmp)?.sync_all()?;
    #[cfg(test)]
    if FAIL_BEFORE_RENAME.with(|fail| fail.replace(false)) {
        return Err(StoreError::Io(std::io::Error::other(
            "migration failure forced by a test",
        )));
    }
    Ok(())
}

/// Rounds of compaction after a migration (redb reports when a round changed nothing).
const MAX_COMPACTIONS: usize = 8;

/// Tables whose rows keep their keys from format 2 to 3 and whose values are only resealed (padded,
/// with the version byte).
const RESEALED: [BytesTable; 7] = [
    CONTACTS,
    SETTINGS,
    SEEN,
    ENVELOPES,
    super::groups::GROUPS,
    super::groups::GROUP_KEY_PACKAGES,
    super::files::ATTACHMENTS,
];

/// Tables the format-2 to 3 step rewrites itself, or that hold no values (only keys).
const HANDLED: [&str; 13] = [
    "meta",
    "search_tokens",
    "outbox_by_recipient",
    "outbox_due",
    "outbox_index",
    "vault",
    "sessions",
    "conversation_messages",
    "conversation_message_index",
    "conversation_unread",
    "seen_expiry",
    "envelope_expiry",
    "message_expiry",
];

/// Format 2 to 3, inside the migration's transaction: every value resealed (padded, versioned), every
/// conversation's messages given positions instead of times, the session checks recomputed, the
/// duplicate-check expiry indexes bucketed by day. A table this build does not know is refused (its
/// values would not open in format 3), before anything is committed.
fn rewrite_v2(txn: &WriteTransaction, keys: &Keys) -> Result<(), StoreError> {
    for table in txn.list_tables()? {
        let name = table.name();
        let known = HANDLED.contains(&name)
            || RESEALED.iter().any(|t| t.name() == name)
            || name == super::timers::TIMERS.name();
        if !known {
            return Err(StoreError::Corrupt(format!(
                "table {name} is unknown to the format-3 migration"
            )));
        }
    }
    // The search index is rebuilt from the messages once the profile is open (`search.rs`).
    txn.delete_table(super::search::SEARCH_TOKENS)?;
    for def in RESEALED.into_iter().chain([super::timers::TIMERS]) {
        reseal(keys, &mut txn.open_table(def)?, def.name())?;
    }
    {
        let mut vault = txn.open_table(VAULT)?;
        let mut rows = Vec::new();
        for entry in vault.iter()? {
            let (row, value) = entry?;
            let plain = keys.open_v2_or_v3(VAULT.name(), row.value().as_bytes(), value.value())?;
            rows.push((row.value().to_owned(), plain));
        }
        for (row, plain) in rows {
            let sealed = keys.seal(VAULT.name(), row.as_bytes(), &plain);
            vault.insert(row.as_str(), sealed.as_slice())?;
        }
    }
    rollback::migrate_v2(keys, &mut txn.open_table(SESSIONS)?)?;
    super::outbox::migrate_v2(txn, keys)?;
    super::dedupe::rebucket(txn, keys)?;
    super::timers::rebucket(txn)?;
    reposition_messages(txn, keys)
}

/// Reseals every value of a bytes table in place (same keys).
fn reseal(keys: &Keys, table: &mut Table<Bytes, Bytes>, name: &str) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    for entry in table.iter()? {
        let (row, value) = entry?;
        let plain = keys.open_v2_or_v3(name, row.value(), value.value())?;
        rows.push((row.value().to_vec(), plain));
    }
    for (row, plain) in rows {
        let sealed = keys.seal(name, &row, &plain);
        table.insert(row.as_slice(), sealed.as_slice())?;
    }
    Ok(())
}

/// Gives every message a position in place of its time, one conversation at a time (its old rows are
/// read, removed, and written again in order).
fn reposition_messages(txn: &WriteTransaction, keys: &Keys) -> Result<(), StoreError> {
    let mut messages = txn.open_table(CONV_MESSAGES)?;
    let mut index = txn.open_table(CONV_MESSAGE_INDEX)?;
    let mut unread = txn.open_table(CONV_UNREAD)?;
    let mut prefixes: Vec<[u8; BLIND_LEN]> = Vec::new();
    for entry in messages.iter()? {
        let (key, _) = entry?;
        let prefix = key
            .value()
            .get(..BLIND_LEN)
            .and_then(|p| <[u8; BLIND_LEN]>::try_from(p).ok())
            .ok_or_else(|| StoreError::Corrupt("a message key is malformed".into()))?;
        if prefixes.last() != Some(&prefix) {
            prefixes.push(prefix);
        }
    }
    for prefix in prefixes {
        let mut lo = [0u8; MESSAGE_KEY_LEN];
        let mut hi = [0xffu8; MESSAGE_KEY_LEN];
        lo[..BLIND_LEN].copy_from_slice(&prefix);
        hi[..BLIND_LEN].copy_from_slice(&prefix);
        let mut rows = Vec::new();
        for entry in messages.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
            let (key, value) = entry?;
            let plain = keys.open_v2_or_v3(CONV_MESSAGES.name(), key.value(), value.value())?;
            let record =
                MessageRecord::decode(&plain).map_err(|err| corrupt("message record", err))?;
            rows.push((key.value().to_vec(), record));
        }
        // All of the conversation's old rows go first: placing a message reads its neighbours, which
        // must be format 3's.
        let mut flagged = Vec::with_capacity(rows.len());
        for (key, record) in rows {
            let was_unread = unread.remove(key.as_slice())?.is_some();
            messages.remove(key.as_slice())?;
            if let Some(row) = key.get(BLIND_LEN + 8..) {
                index.remove(row)?;
            }
            flagged.push((record, was_unread));
        }
        for (record, was_unread) in flagged {
            insert_message_rows(
                keys,
                &mut messages,
                &mut index,
                &mut unread,
                &record,
                was_unread,
            )?;
        }
    }
    Ok(())
}

/// Moves every message (with its unread mark) and outbox entry into format 2's tables, then drops
/// format 1's.
fn rewrite(txn: &WriteTransaction, keys: &Keys) -> Result<(), StoreError> {
    {
        let old = txn.open_table(V1_MESSAGES)?;
        let old_unread = txn.open_table(V1_UNREAD)?;
        let mut messages = txn.open_table(CONV_MESSAGES)?;
        let mut index = txn.open_table(CONV_MESSAGE_INDEX)?;
        let mut unread = txn.open_table(CONV_UNREAD)?;
        for entry in old.iter()? {
            let (key, value) = entry?;
            let plain = keys.open_v2_or_v3(V1_MESSAGES.name(), key.value(), value.value())?;
            let record =
                MessageRecord::decode_v1(&plain).map_err(|err| corrupt("message record", err))?;
            let was_unread = old_unread.get(key.value())?.is_some();
            insert_message_rows(
                keys,
                &mut messages,
                &mut index,
                &mut unread,
                &record,
                was_unread,
            )?;
        }
    }
    {
        let old = txn.open_table(V1_OUTBOX)?;
        let mut rows = txn.open_table(OUTBOX_ROWS)?;
        let mut due = txn.open_table(OUTBOX_DUE)?;
        let mut index = txn.open_table(OUTBOX_INDEX)?;
        for entry in old.iter()? {
            let (row, value) = entry?;
            let plain = keys.open_v2_or_v3(V1_OUTBOX.name(), row.value(), value.value())?;
            let record =
                OutboxRecord::decode(&plain).map_err(|err| corrupt("outbox record", err))?;
            outbox_insert_rows(keys, &mut rows, &mut due, &mut index, &record)?;
        }
    }
    txn.delete_table(V1_MESSAGES)?;
    txn.delete_table(V1_MESSAGE_INDEX)?;
    txn.delete_table(V1_UNREAD)?;
    txn.delete_table(V1_OUTBOX)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::{KdfParams, Password, Store};

    fn fixture_copy(name: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/profile-v1")
            .join(name)
            .join(STORE_FILE);
        fs::copy(from, dir.path().join(STORE_FILE)).unwrap();
        dir
    }

    fn alice_password() -> Password {
        Password::new("alice-fixture".into())
    }

    #[test]
    fn a_failed_migration_leaves_the_original_byte_for_byte() {
        let dir = fixture_copy("alice");
        let path = dir.path().join(STORE_FILE);
        let before = fs::read(&path).unwrap();
        FAIL_BEFORE_RENAME.with(|fail| fail.set(true));
        let err = Store::open(dir.path(), &alice_password()).unwrap_err();
        assert!(matches!(err, StoreError::Io(_)), "{err:?}");
        assert!(fs::read(&path).unwrap() == before, "the original changed");
        assert!(!dir.path().join(MIGRATING_FILE).exists());

        // A wrong password is refused before anything is copied.
        let err = Store::open(dir.path(), &Password::new("wrong".into())).unwrap_err();
        assert!(matches!(err, StoreError::WrongPassword), "{err:?}");
        assert!(fs::read(&path).unwrap() == before, "the original changed");

        // A copy left by an interrupted migration is replaced; the next open migrates.
        fs::write(dir.path().join(MIGRATING_FILE), b"half a copy").unwrap();
        let store = Store::open(dir.path(), &alice_password()).unwrap();
        assert!(!dir.path().join(MIGRATING_FILE).exists());
        assert_eq!(store.outbox_len().unwrap(), 1);
        assert_eq!(store.contacts().unwrap().len(), 1);
        drop(store);
        assert!(fs::read(&path).unwrap() != before);
    }

    #[test]
    fn a_newer_format_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let password = Password::new("pw".into());
        drop(Store::create(dir.path(), &password, KdfParams::INSECURE_FOR_TESTS).unwrap());
        {
            let db = open_database(&dir.path().join(STORE_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(META_FORMAT, [FORMAT_VERSION + 1].as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let err = Store::open(dir.path(), &password).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::UnsupportedVersion {
                    found: 4,
                    supported: 3
                }
            ),
            "{err:?}"
        );
    }
}
