//! Rollback detection for session rows: a session written back from an older copy of the store (a
//! backup, or someone with write access to the disk) would make the node encrypt new text under message
//! keys it has already used.
//!
//! Every write of a `sessions` row also writes, in the same transaction, its check in `session_checks`:
//! `blind(session check, sealed sessions value)` (keyed, so nobody without the store key can make one).
//! `meta` holds `sessions_digest`, sealed: the XOR of every check. So
//!
//! - a `sessions` row put back alone no longer matches its check: reading it gives
//!   [`StoreError::RolledBack`] and the engine starts a new session with that contact;
//! - a row put back with its check changes the digest: the next open finds the digest wrong and drops
//!   every session (each contact gets a new session with the next message; mail in flight under an old
//!   one can no longer be opened, which is the price of never reusing a key).
//!
//! What it cannot see: the whole file (or every session row, check and the digest together) put back to
//! one earlier moment. Restoring a backup is that, so a restore must start every session afresh.
//! A profile written before this existed gets its checks and digest on its first open (trust on first
//! use).

use redb::{Database, ReadableTable, Table, TableDefinition, TableHandle};
use tracing::warn;
use zeroize::Zeroizing;

use super::keys::{BLIND_LEN, Blind, Keys};
use super::{Bytes, BytesTable, META, SESSIONS, StoreError};

/// The checks of the `sessions` rows, by the same row keys.
pub(super) const SESSION_CHECKS: BytesTable = TableDefinition::new("session_checks");
/// The `meta` row holding the sealed XOR of every check.
const META_DIGEST: &str = "sessions_digest";

type Check = [u8; BLIND_LEN];

fn check_of(keys: &Keys, sealed: &[u8]) -> Check {
    keys.blind(Blind::SessionCheck, &[sealed])
}

fn xor(a: &mut Check, b: &Check) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

fn open_check(keys: &Keys, row: &[u8], sealed: &[u8]) -> Result<Check, StoreError> {
    let plain = keys.open(SESSION_CHECKS.name(), row, sealed)?;
    Check::try_from(plain.as_slice())
        .map_err(|_| StoreError::Corrupt("a session check is malformed".into()))
}

/// Opens a `sessions` row after checking it is the one last written: [`StoreError::RolledBack`] if its
/// check is missing or does not match.
pub(super) fn open_session(
    keys: &Keys,
    sessions: &impl ReadableTable<Bytes, Bytes>,
    checks: &impl ReadableTable<Bytes, Bytes>,
    row: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let Some(sealed) = sessions.get(row)? else {
        return Ok(None);
    };
    let sealed = sealed.value();
    let expected = match checks.get(row)? {
        Some(check) => open_check(keys, row, check.value())?,
        None => return Err(StoreError::RolledBack),
    };
    if expected != check_of(keys, sealed) {
        return Err(StoreError::RolledBack);
    }
    keys.open(SESSIONS.name(), row, sealed).map(Some)
}

/// Records the check of a `sessions` row just written (`sealed`, or `None` for a deleted row) and moves
/// the digest by the difference.
pub(super) fn record(
    keys: &Keys,
    checks: &mut Table<Bytes, Bytes>,
    meta: &mut Table<&'static str, Bytes>,
    row: &[u8],
    sealed: Option<&[u8]>,
) -> Result<(), StoreError> {
    let mut delta = Check::default();
    if let Some(old) = checks.get(row)? {
        xor(&mut delta, &open_check(keys, row, old.value())?);
    }
    match sealed {
        Some(sealed) => {
            let check = check_of(keys, sealed);
            xor(&mut delta, &check);
            let value = keys.seal(SESSION_CHECKS.name(), row, &check);
            checks.insert(row, value.as_slice())?;
        }
        None => {
            checks.remove(row)?;
        }
    }
    let mut digest = read_digest(keys, meta)?.unwrap_or_default();
    xor(&mut digest, &delta);
    write_digest(keys, meta, &digest)
}

fn read_digest(
    keys: &Keys,
    meta: &impl ReadableTable<&'static str, Bytes>,
) -> Result<Option<Check>, StoreError> {
    let Some(sealed) = meta.get(META_DIGEST)? else {
        return Ok(None);
    };
    let plain = keys.open(META.name(), META_DIGEST.as_bytes(), sealed.value())?;
    Check::try_from(plain.as_slice())
        .map(Some)
        .map_err(|_| StoreError::Corrupt("the sessions digest is malformed".into()))
}

fn write_digest(
    keys: &Keys,
    meta: &mut Table<&'static str, Bytes>,
    digest: &Check,
) -> Result<(), StoreError> {
    let sealed = keys.seal(META.name(), META_DIGEST.as_bytes(), digest);
    meta.insert(META_DIGEST, sealed.as_slice())?;
    Ok(())
}

/// On open: checks the digest against every check, dropping every session if they disagree (returns
/// `true` then); gives a profile that has no checks yet its checks and digest. One write transaction,
/// only when something changes.
pub(super) fn verify_on_open(db: &Database, keys: &Keys) -> Result<bool, StoreError> {
    let txn = db.begin_write()?;
    let reset = {
        let mut meta = txn.open_table(META)?;
        let mut checks = txn.open_table(SESSION_CHECKS)?;
        let mut sessions = txn.open_table(SESSIONS)?;
        match read_digest(keys, &meta)? {
            None => {
                // First open since checks exist: every row as it is now is the reference.
                let mut digest = Check::default();
                let mut rows = Vec::new();
                for entry in sessions.iter()? {
                    let (row, sealed) = entry?;
                    let check = check_of(keys, sealed.value());
                    xor(&mut digest, &check);
                    rows.push((row.value().to_vec(), check));
                }
                for (row, check) in rows {
                    let value = keys.seal(SESSION_CHECKS.name(), &row, &check);
                    checks.insert(row.as_slice(), value.as_slice())?;
                }
                write_digest(keys, &mut meta, &digest)?;
                false
            }
            Some(stored) => {
                let mut digest = Check::default();
                for entry in checks.iter()? {
                    let (row, sealed) = entry?;
                    xor(&mut digest, &open_check(keys, row.value(), sealed.value())?);
                }
                if digest == stored {
                    drop((meta, checks, sessions));
                    txn.abort()?;
                    return Ok(false);
                }
                warn!(
                    "the sessions on file are not the ones last written (restored from an older copy?): \
                     every contact gets a new session"
                );
                sessions.retain(|_, _| false)?;
                checks.retain(|_, _| false)?;
                write_digest(keys, &mut meta, &Check::default())?;
                true
            }
        }
    };
    txn.commit()?;
    Ok(reset)
}
