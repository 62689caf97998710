//! Transactions: [`Batch`] (one redb write transaction, committed durably) and [`Reader`] (a read
//! transaction), with the helpers every table shares and the vault, settings, contacts and sessions.
//! The messages, outbox and duplicate-check tables add their methods to both in `messages.rs`,
//! `outbox.rs` and `dedupe.rs`.

use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, TableHandle,
    WriteTransaction,
};
use tern_protocol::IdentityKey;
use zeroize::Zeroizing;

use super::health::Shared;
use super::keys::{BLIND_LEN, Blind, Keys};
use super::records::ContactRecord;
use super::rollback;
use super::{
    Bytes, CONTACTS, MAX_CONTACTS, MAX_SESSION_PICKLE_LEN, MAX_SETTING_NAME_LEN,
    MAX_SETTING_VALUE_LEN, MAX_VAULT_VALUE_LEN, SESSIONS, SETTINGS, StoreError, VAULT, VaultItem,
    corrupt,
};

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), StoreError> {
    if len > max {
        Err(StoreError::TooLong { field, len, max })
    } else {
        Ok(())
    }
}

// ---- reads shared by `Reader` and `Batch` ----

pub(super) fn get_open(
    keys: &Keys,
    table: &impl ReadableTable<Bytes, Bytes>,
    name: &str,
    row: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    match table.get(row)? {
        None => Ok(None),
        Some(value) => keys.open(name, row, value.value()).map(Some),
    }
}

fn decode_contact(plain: &[u8]) -> Result<ContactRecord, StoreError> {
    ContactRecord::decode(plain).map_err(|err| corrupt("contact record", err))
}

fn contacts_in(
    keys: &Keys,
    table: &impl ReadableTable<Bytes, Bytes>,
) -> Result<Vec<ContactRecord>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (row, value) = entry?;
        let plain = keys.open(CONTACTS.name(), row.value(), value.value())?;
        out.push(decode_contact(&plain)?);
    }
    out.sort_by_key(|c| (c.added_ms, c.key));
    Ok(out)
}

/// A read transaction: a consistent snapshot.
pub(crate) struct Reader<'s> {
    pub(super) txn: ReadTransaction,
    pub(super) keys: &'s Keys,
    /// Which open of the database the transaction belongs to (see `health.rs`).
    pub(super) generation: u64,
}

impl<'s> Reader<'s> {
    pub(super) fn begin(shared: &Shared, keys: &'s Keys) -> Result<Self, StoreError> {
        let (txn, generation) = shared.begin_read()?;
        Ok(Self {
            txn,
            keys,
            generation,
        })
    }

    pub(super) fn table(
        &self,
        def: redb::TableDefinition<'static, Bytes, Bytes>,
    ) -> Result<ReadOnlyTable<Bytes, Bytes>, StoreError> {
        Ok(self.txn.open_table(def)?)
    }

    pub(crate) fn vault_get(
        &self,
        item: VaultItem,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let vault = self.txn.open_table(VAULT)?;
        let row = item.row();
        match vault.get(row)? {
            None => Ok(None),
            Some(v) => self
                .keys
                .open(VAULT.name(), row.as_bytes(), v.value())
                .map(Some),
        }
    }

    pub(crate) fn setting_get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        check_len("setting name", name.len(), MAX_SETTING_NAME_LEN)?;
        let row = self.keys.blind(Blind::Setting, &[name.as_bytes()]);
        get_open(self.keys, &self.table(SETTINGS)?, SETTINGS.name(), &row)
    }

    pub(crate) fn contact(&self, key: &IdentityKey) -> Result<Option<ContactRecord>, StoreError> {
        let row = self.keys.blind(Blind::Contact, &[key.as_bytes()]);
        match get_open(self.keys, &self.table(CONTACTS)?, CONTACTS.name(), &row)? {
            None => Ok(None),
            Some(plain) => decode_contact(&plain).map(Some),
        }
    }

    pub(crate) fn contacts(&self) -> Result<Vec<ContactRecord>, StoreError> {
        contacts_in(self.keys, &self.table(CONTACTS)?)
    }

    pub(crate) fn session(
        &self,
        contact: &IdentityKey,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row = self.keys.blind(Blind::Contact, &[contact.as_bytes()]);
        rollback::open_session(self.keys, &self.table(SESSIONS)?, &row)
    }
}

/// One write transaction. Its changes become visible and durable together at [`Batch::commit`] (redb's
/// default durability: on disk when `commit` returns); dropped without `commit`, it changes nothing.
///
/// Use it to store many received messages and the outbox changes for their acknowledgements in one
/// durable commit, then acknowledge.
pub struct Batch<'s> {
    pub(super) txn: WriteTransaction,
    pub(super) keys: &'s Keys,
    shared: &'s Shared,
    /// Which open of the database the transaction belongs to (see `health.rs`).
    pub(super) generation: u64,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

impl<'s> Batch<'s> {
    pub(super) fn begin(shared: &'s Shared, keys: &'s Keys) -> Result<Self, StoreError> {
        let (txn, generation) = shared.begin_write()?;
        Ok(Self {
            txn,
            keys,
            shared,
            generation,
        })
    }

    /// Commits every change durably. If the disk fails the commit ([`StoreError::DiskFailing`]),
    /// nothing of it was saved and the store opens its database again later (see `health.rs`).
    pub fn commit(self) -> Result<(), StoreError> {
        let Self {
            txn,
            shared,
            generation,
            ..
        } = self;
        let committed = txn.commit().map_err(StoreError::from);
        shared.check(generation, "commit", committed)
    }

    /// Discards every change.
    pub fn abort(self) -> Result<(), StoreError> {
        self.txn.abort()?;
        Ok(())
    }

    fn contact_row(&self, key: &IdentityKey) -> [u8; BLIND_LEN] {
        self.keys.blind(Blind::Contact, &[key.as_bytes()])
    }

    /// Sets a vault item.
    pub fn vault_put(&mut self, item: VaultItem, value: &[u8]) -> Result<(), StoreError> {
        check_len("vault value", value.len(), MAX_VAULT_VALUE_LEN)?;
        let row = item.row();
        let sealed = self.keys.seal(VAULT.name(), row.as_bytes(), value);
        self.txn.open_table(VAULT)?.insert(row, sealed.as_slice())?;
        Ok(())
    }

    /// Sets a setting.
    pub fn setting_put(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        check_len("setting name", name.len(), MAX_SETTING_NAME_LEN)?;
        check_len("setting value", value.len(), MAX_SETTING_VALUE_LEN)?;
        let row = self.keys.blind(Blind::Setting, &[name.as_bytes()]);
        let sealed = self.keys.seal(SETTINGS.name(), &row, value);
        self.txn
            .open_table(SETTINGS)?
            .insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// Removes a setting; `true` if it was set.
    pub fn setting_delete(&mut self, name: &str) -> Result<bool, StoreError> {
        check_len("setting name", name.len(), MAX_SETTING_NAME_LEN)?;
        let row = self.keys.blind(Blind::Setting, &[name.as_bytes()]);
        Ok(self
            .txn
            .open_table(SETTINGS)?
            .remove(row.as_slice())?
            .is_some())
    }

    /// The contact with this identity key, as this transaction sees it.
    pub fn contact(&self, key: &IdentityKey) -> Result<Option<ContactRecord>, StoreError> {
        let row = self.contact_row(key);
        match get_open(
            self.keys,
            &self.txn.open_table(CONTACTS)?,
            CONTACTS.name(),
            &row,
        )? {
            None => Ok(None),
            Some(plain) => decode_contact(&plain).map(Some),
        }
    }

    /// Every contact, oldest first, as this transaction sees it.
    pub fn contacts(&self) -> Result<Vec<ContactRecord>, StoreError> {
        contacts_in(self.keys, &self.txn.open_table(CONTACTS)?)
    }

    /// Adds or replaces a contact. [`StoreError::ContactsFull`] past [`MAX_CONTACTS`].
    pub fn put_contact(&mut self, contact: &ContactRecord) -> Result<(), StoreError> {
        let plain = Zeroizing::new(contact.encode()?);
        let row = self.contact_row(&contact.key);
        let mut table = self.txn.open_table(CONTACTS)?;
        if table.get(row.as_slice())?.is_none() && table.len()? >= MAX_CONTACTS {
            return Err(StoreError::ContactsFull { max: MAX_CONTACTS });
        }
        let sealed = self.keys.seal(CONTACTS.name(), &row, &plain);
        table.insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// Removes a contact; `true` if it existed.
    pub fn delete_contact(&mut self, key: &IdentityKey) -> Result<bool, StoreError> {
        let row = self.contact_row(key);
        Ok(self
            .txn
            .open_table(CONTACTS)?
            .remove(row.as_slice())?
            .is_some())
    }

    /// The session pickle for a contact, as this transaction sees it.
    pub fn session(&self, contact: &IdentityKey) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row = self.contact_row(contact);
        rollback::open_session(self.keys, &self.txn.open_table(SESSIONS)?, &row)
    }

    /// Stores the session pickle for a contact.
    pub fn put_session(&mut self, contact: &IdentityKey, pickle: &[u8]) -> Result<(), StoreError> {
        check_len("session pickle", pickle.len(), MAX_SESSION_PICKLE_LEN)?;
        let row = self.contact_row(contact);
        let sealed = self.keys.seal(SESSIONS.name(), &row, pickle);
        let mut sessions = self.txn.open_table(SESSIONS)?;
        sessions.insert(row.as_slice(), sealed.as_slice())?;
        rollback::record(self.keys, &mut sessions, &row, Some(&sealed))
    }

    /// Removes the session pickle for a contact; `true` if it existed.
    pub fn delete_session(&mut self, contact: &IdentityKey) -> Result<bool, StoreError> {
        let row = self.contact_row(contact);
        let mut sessions = self.txn.open_table(SESSIONS)?;
        let existed = sessions.remove(row.as_slice())?.is_some();
        rollback::record(self.keys, &mut sessions, &row, None)?;
        Ok(existed)
    }
}
