//! The group tables (docs/protocol.md §18.8): `groups` holds each group's state
//! (`crate::group::Group::encode_state`), `group_history` its rollback records (`Group::encode_history`,
//! rewritten only when they change), `group_key_packages` the private halves of KeyPackages handed out and
//! not used yet. All are sealed like every value; their row keys are blind indexes, so none names a group
//! nor a KeyPackage in the clear. The tables are created on open when missing, so profiles written before
//! them open unchanged.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle};
use zeroize::Zeroizing;

use super::batch::{Batch, Reader, get_open};
use super::keys::Blind;
use super::{BytesTable, Store, StoreError};

pub(super) const GROUPS: BytesTable = redb::TableDefinition::new("groups");
pub(super) const GROUP_KEY_PACKAGES: BytesTable = redb::TableDefinition::new("group_key_packages");
pub(super) const GROUP_HISTORY: BytesTable = redb::TableDefinition::new("group_history");

/// At most this many groups per profile.
pub const MAX_GROUPS: u64 = 256;
/// At most this many unused KeyPackages are kept (docs/protocol.md §18.4).
pub const MAX_PENDING_KEY_PACKAGES: u64 = 32;
/// Longest group id.
const MAX_GROUP_ID_LEN: usize = 255;

fn check(field: &'static str, len: usize, max: usize) -> Result<(), StoreError> {
    if len > max {
        Err(StoreError::TooLong { field, len, max })
    } else {
        Ok(())
    }
}

/// Creates the group tables in a profile written before they existed (one durable commit, only if missing).
pub(super) fn add_group_tables(db: &Database) -> Result<(), StoreError> {
    {
        let txn = db.begin_read()?;
        let names: Vec<String> = txn.list_tables()?.map(|t| t.name().to_owned()).collect();
        if [GROUPS, GROUP_KEY_PACKAGES, GROUP_HISTORY]
            .iter()
            .all(|t| names.iter().any(|n| n == t.name()))
        {
            return Ok(());
        }
    }
    let txn = db.begin_write()?;
    txn.open_table(GROUPS)?;
    txn.open_table(GROUP_KEY_PACKAGES)?;
    txn.open_table(GROUP_HISTORY)?;
    txn.commit()?;
    Ok(())
}

impl Reader<'_> {
    pub(crate) fn group(&self, id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row = self.keys.blind(Blind::Group, &[id]);
        get_open(self.keys, &self.table(GROUPS)?, GROUPS.name(), &row)
    }

    pub(crate) fn group_history(
        &self,
        id: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row = self.keys.blind(Blind::GroupHistory, &[id]);
        get_open(
            self.keys,
            &self.table(GROUP_HISTORY)?,
            GROUP_HISTORY.name(),
            &row,
        )
    }

    pub(crate) fn groups(&self) -> Result<Vec<Zeroizing<Vec<u8>>>, StoreError> {
        let table = self.table(GROUPS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (row, value) = entry?;
            out.push(self.keys.open(GROUPS.name(), row.value(), value.value())?);
        }
        Ok(out)
    }
}

impl Batch<'_> {
    /// Stores a group's state (sealed). [`StoreError::TooMany`] past [`MAX_GROUPS`].
    pub fn put_group(&mut self, id: &[u8], state: &[u8]) -> Result<(), StoreError> {
        check("group id", id.len(), MAX_GROUP_ID_LEN)?;
        check(
            "group state",
            state.len(),
            crate::group::MAX_GROUP_STATE_LEN,
        )?;
        let row = self.keys.blind(Blind::Group, &[id]);
        let mut table = self.txn.open_table(GROUPS)?;
        if table.get(row.as_slice())?.is_none() && table.len()? >= MAX_GROUPS {
            return Err(StoreError::TooMany {
                what: "groups",
                max: MAX_GROUPS,
            });
        }
        let sealed = self.keys.seal(GROUPS.name(), &row, state);
        table.insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// Stores a group's rollback records (sealed), beside its state: one row per stored group.
    pub fn put_group_history(&mut self, id: &[u8], history: &[u8]) -> Result<(), StoreError> {
        check("group id", id.len(), MAX_GROUP_ID_LEN)?;
        check(
            "group history",
            history.len(),
            crate::group::MAX_GROUP_STATE_LEN,
        )?;
        let row = self.keys.blind(Blind::GroupHistory, &[id]);
        let sealed = self.keys.seal(GROUP_HISTORY.name(), &row, history);
        self.txn
            .open_table(GROUP_HISTORY)?
            .insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// A group's state, as this transaction sees it.
    pub fn group(&self, id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row = self.keys.blind(Blind::Group, &[id]);
        get_open(
            self.keys,
            &self.txn.open_table(GROUPS)?,
            GROUPS.name(),
            &row,
        )
    }

    /// Forgets a group and its rollback records; `true` if it was stored.
    pub fn delete_group(&mut self, id: &[u8]) -> Result<bool, StoreError> {
        let history = self.keys.blind(Blind::GroupHistory, &[id]);
        self.txn
            .open_table(GROUP_HISTORY)?
            .remove(history.as_slice())?;
        let row = self.keys.blind(Blind::Group, &[id]);
        Ok(self
            .txn
            .open_table(GROUPS)?
            .remove(row.as_slice())?
            .is_some())
    }

    /// Keeps the private half of a KeyPackage handed out (sealed). [`StoreError::TooMany`] past
    /// [`MAX_PENDING_KEY_PACKAGES`]: the caller drops one first.
    pub fn put_key_package(&mut self, hash_ref: &[u8], pending: &[u8]) -> Result<(), StoreError> {
        check("key package ref", hash_ref.len(), 64)?;
        check("pending key package", pending.len(), 64 * 1024)?;
        let row = self.keys.blind(Blind::KeyPackage, &[hash_ref]);
        let mut table = self.txn.open_table(GROUP_KEY_PACKAGES)?;
        if table.get(row.as_slice())?.is_none() && table.len()? >= MAX_PENDING_KEY_PACKAGES {
            return Err(StoreError::TooMany {
                what: "pending key packages",
                max: MAX_PENDING_KEY_PACKAGES,
            });
        }
        let sealed = self.keys.seal(GROUP_KEY_PACKAGES.name(), &row, pending);
        table.insert(row.as_slice(), sealed.as_slice())?;
        Ok(())
    }

    /// Removes and returns the private half of a KeyPackage (a Welcome used it).
    pub fn take_key_package(
        &mut self,
        hash_ref: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row = self.keys.blind(Blind::KeyPackage, &[hash_ref]);
        let mut table = self.txn.open_table(GROUP_KEY_PACKAGES)?;
        let Some(sealed) = table.remove(row.as_slice())? else {
            return Ok(None);
        };
        self.keys
            .open(GROUP_KEY_PACKAGES.name(), &row, sealed.value())
            .map(Some)
    }
}

impl Store {
    /// A group's state, if stored.
    pub fn group(&self, id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Reader::begin(&self.shared, &self.keys)?.group(id)
    }

    /// A group's rollback records, if stored in their own row.
    pub fn group_history(&self, id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Reader::begin(&self.shared, &self.keys)?.group_history(id)
    }

    /// Every stored group state (in row order, which reveals nothing).
    pub fn groups(&self) -> Result<Vec<Zeroizing<Vec<u8>>>, StoreError> {
        Reader::begin(&self.shared, &self.keys)?.groups()
    }

    /// Stores a group's state (durable on return).
    pub fn put_group(&mut self, id: &[u8], state: &[u8]) -> Result<(), StoreError> {
        self.transaction(|b| b.put_group(id, state))
    }

    /// Forgets a group (durable on return).
    pub fn delete_group(&mut self, id: &[u8]) -> Result<bool, StoreError> {
        self.transaction(|b| b.delete_group(id))
    }

    /// Keeps a KeyPackage's private half (durable on return).
    pub fn put_key_package(&mut self, hash_ref: &[u8], pending: &[u8]) -> Result<(), StoreError> {
        self.transaction(|b| b.put_key_package(hash_ref, pending))
    }

    /// Removes and returns a KeyPackage's private half (durable on return).
    pub fn take_key_package(
        &mut self,
        hash_ref: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.transaction(|b| b.take_key_package(hash_ref))
    }
}
