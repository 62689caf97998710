//! Opening a profile written by an older format: format 1 (messages, unread rows and the outbox keyed by
//! the contact's identity key) becomes format 2 (keyed by conversation; outbox indexed by recipient and by
//! due time).
//!
//! The migration never writes to `store.redb` itself. It copies it to [`MIGRATING_FILE`], rewrites the
//! copy in one write transaction (durable on commit), syncs it, then renames it over `store.redb` and
//! syncs the directory. On any failure the copy is removed and the original is left byte for byte as it
//! was, so the profile still opens with the build that wrote it.

use std::fs::{self, File};
use std::path::Path;

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use tern_protocol::crypto::SecretKey;

use super::keys::Keys;
use super::messages::insert_message_rows;
use super::outbox::outbox_insert_rows;
use super::profile::{open_database, sync_dir};
use super::records::{MessageRecord, OutboxRecord};
use super::{
    Bytes, CONV_MESSAGE_INDEX, CONV_MESSAGES, CONV_UNREAD, FORMAT_VERSION, META, META_FORMAT,
    OUTBOX_DUE, OUTBOX_INDEX, OUTBOX_ROWS, STORE_FILE, StoreError, corrupt,
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

/// Migrates the format-1 store in `dir` to [`FORMAT_VERSION`], with the store key already unwrapped from
/// its key slot (the slot itself does not change).
pub(super) fn migrate_v1(dir: &Path, store_key: &SecretKey) -> Result<(), StoreError> {
    let path = dir.join(STORE_FILE);
    let tmp = dir.join(MIGRATING_FILE);
    if tmp.try_exists()? {
        // Left by a migration that did not finish: the original is still the profile.
        fs::remove_file(&tmp)?;
    }
    let result = copy_and_migrate(&path, &tmp, store_key).and_then(|()| {
        fs::rename(&tmp, &path)?;
        sync_dir(dir)
    });
    if result.is_err() {
        // Best effort: the original is untouched either way; a leftover copy is removed on the next try.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn copy_and_migrate(path: &Path, tmp: &Path, store_key: &SecretKey) -> Result<(), StoreError> {
    fs::copy(path, tmp)?;
    {
        let db = open_database(tmp)?;
        let keys = Keys::derive(SecretKey::from_bytes(*store_key.as_bytes()));
        let txn = db.begin_write()?;
        rewrite(&txn, &keys)?;
        txn.open_table(META)?
            .insert(META_FORMAT, [FORMAT_VERSION].as_slice())?;
        txn.commit()?;
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
            let plain = keys.open(V1_MESSAGES.name(), key.value(), value.value())?;
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
            let plain = keys.open(V1_OUTBOX.name(), row.value(), value.value())?;
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
                    found: 3,
                    supported: 2
                }
            ),
            "{err:?}"
        );
    }
}
