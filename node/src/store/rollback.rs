//! Rollback detection for session rows: a session written back from an older copy of the store (a
//! backup, or someone with write access to the disk) would make the node encrypt new text under message
//! keys it has already used.
//!
//! Every write of a session row (`sessions`, key `blind(contact)`, 16 bytes) also writes, in the same
//! transaction and the same table, its check under `blind(contact) ‖ 0x01` (17 bytes):
//! `blind(session check, version byte ‖ nonce ‖ tag of the sealed session value)`, keyed, so nobody without the store key
//! can make one. The
//! row [`DIGEST_ROW`] holds the XOR of every check. So
//!
//! - a session row put back alone no longer matches its check: reading it gives
//!   [`StoreError::RolledBack`] and the engine starts a new session with that contact;
//! - a row put back with its check changes the digest: the next open finds the digest wrong and drops
//!   every session (each contact gets a new session with the next message; mail in flight under an old
//!   one can no longer be opened, which is the price of never reusing a key).
//!
//! Keeping all three kinds of row in `sessions` means a commit that advances a session dirties one table,
//! not three (`tern-bench latency`: the checks in two tables of their own cost about 0.05 ms a message).
//!
//! What it cannot see: the whole file (or every session row, check and the digest together) put back to
//! one earlier moment. Restoring a backup is that, so a restore must start every session afresh.
//! A profile written before this existed gets its checks and digest on its first open (trust on first
//! use).

use redb::{Database, ReadableTable, Table, TableHandle};
use tracing::warn;
use zeroize::Zeroizing;

use super::keys::{BLIND_LEN, Blind, Keys, NONCE_LEN, SEALED_PREFIX_LEN, TAG_LEN};
use super::{Bytes, SESSIONS, StoreError};

/// The row holding the XOR of every check (17 bytes, like a check row; no contact's blind index is all
/// ones).
const DIGEST_ROW: [u8; BLIND_LEN + 1] = {
    let mut row = [0xff; BLIND_LEN + 1];
    row[BLIND_LEN] = 0x02;
    row
};
/// The last byte of a check row's key.
const CHECK_TAG: u8 = 0x01;

type Check = [u8; BLIND_LEN];

/// A sealed value's check: `blind(session check, header ‖ nonce ‖ tag)`. The nonce is random per seal
/// and the tag authenticates the whole ciphertext under it, so no other value that opens has the same
/// pair, and the row is opened (its tag verified) only after its check matched; hashing 29 bytes instead
/// of the whole pickle (kilobytes) keeps the check off the cost of a message.
fn check_of(keys: &Keys, sealed: &[u8]) -> Check {
    check_with_prefix(keys, sealed, SEALED_PREFIX_LEN)
}

/// [`check_of`] for a value laid out with `prefix` bytes before its ciphertext (format 2: the nonce, 12).
fn check_with_prefix(keys: &Keys, sealed: &[u8], prefix: usize) -> Check {
    if sealed.len() < prefix + TAG_LEN {
        return keys.blind(Blind::SessionCheck, &[sealed]);
    }
    let (head, rest) = sealed.split_at(prefix);
    let tag = &rest[rest.len() - TAG_LEN..];
    keys.blind(Blind::SessionCheck, &[head, tag])
}

fn check_row(row: &[u8]) -> Vec<u8> {
    let mut key = row.to_vec();
    key.push(CHECK_TAG);
    key
}

fn xor(a: &mut Check, b: &Check) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// Opens a sealed 16-byte value (a check, or the digest) stored under `row`.
fn open_check(keys: &Keys, row: &[u8], sealed: &[u8]) -> Result<Check, StoreError> {
    let plain = keys.open(SESSIONS.name(), row, sealed)?;
    Check::try_from(plain.as_slice())
        .map_err(|_| StoreError::Corrupt("a session check is malformed".into()))
}

fn get_check(
    keys: &Keys,
    sessions: &impl ReadableTable<Bytes, Bytes>,
    row: &[u8],
) -> Result<Option<Check>, StoreError> {
    match sessions.get(row)? {
        Some(sealed) => open_check(keys, row, sealed.value()).map(Some),
        None => Ok(None),
    }
}

fn put_check(
    keys: &Keys,
    sessions: &mut Table<Bytes, Bytes>,
    row: &[u8],
    check: &Check,
) -> Result<(), StoreError> {
    let sealed = keys.seal(SESSIONS.name(), row, check);
    sessions.insert(row, sealed.as_slice())?;
    Ok(())
}

/// Whether a `sessions` key is a session row (not a check or the digest).
pub(super) fn is_session_row(key: &[u8]) -> bool {
    key.len() == BLIND_LEN
}

/// Opens a session row after checking it is the one last written: [`StoreError::RolledBack`] if its check
/// is missing or does not match.
pub(super) fn open_session(
    keys: &Keys,
    sessions: &impl ReadableTable<Bytes, Bytes>,
    row: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let Some(sealed) = sessions.get(row)? else {
        return Ok(None);
    };
    let sealed = sealed.value();
    let Some(expected) = get_check(keys, sessions, &check_row(row))? else {
        return Err(StoreError::RolledBack);
    };
    if expected != check_of(keys, sealed) {
        return Err(StoreError::RolledBack);
    }
    keys.open(SESSIONS.name(), row, sealed).map(Some)
}

/// Records the check of a session row just written (`sealed`, or `None` for a deleted row) and moves the
/// digest by the difference.
pub(super) fn record(
    keys: &Keys,
    sessions: &mut Table<Bytes, Bytes>,
    row: &[u8],
    sealed: Option<&[u8]>,
) -> Result<(), StoreError> {
    let check_key = check_row(row);
    let mut delta = get_check(keys, sessions, &check_key)?.unwrap_or_default();
    match sealed {
        Some(sealed) => {
            let check = check_of(keys, sealed);
            xor(&mut delta, &check);
            put_check(keys, sessions, &check_key, &check)?;
        }
        None => {
            sessions.remove(check_key.as_slice())?;
        }
    }
    let mut digest = get_check(keys, sessions, &DIGEST_ROW)?.unwrap_or_default();
    xor(&mut digest, &delta);
    put_check(keys, sessions, &DIGEST_ROW, &digest)
}

/// On open: checks the digest against every check, dropping every session if they disagree (returns
/// `true` then); gives a profile that has no checks yet its checks and digest. One write transaction,
/// only when something changes.
pub(super) fn verify_on_open(db: &Database, keys: &Keys) -> Result<bool, StoreError> {
    let txn = db.begin_write()?;
    let reset = {
        let mut sessions = txn.open_table(SESSIONS)?;
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for entry in sessions.iter()? {
            let (key, value) = entry?;
            rows.push((key.value().to_vec(), value.value().to_vec()));
        }
        match get_check(keys, &sessions, &DIGEST_ROW)? {
            None => {
                // First open since checks exist: every row as it is now is the reference.
                let mut digest = Check::default();
                for (row, sealed) in rows.iter().filter(|(k, _)| is_session_row(k)) {
                    let check = check_of(keys, sealed);
                    xor(&mut digest, &check);
                    put_check(keys, &mut sessions, &check_row(row), &check)?;
                }
                put_check(keys, &mut sessions, &DIGEST_ROW, &digest)?;
                false
            }
            Some(stored) => {
                let mut digest = Check::default();
                for (row, sealed) in &rows {
                    if row.len() == BLIND_LEN + 1 && row.last() == Some(&CHECK_TAG) {
                        xor(&mut digest, &open_check(keys, row, sealed)?);
                    }
                }
                if digest == stored {
                    drop(sessions);
                    txn.abort()?;
                    return Ok(false);
                }
                warn!(
                    "the sessions on file are not the ones last written (restored from an older copy?): \
                     every contact gets a new session"
                );
                sessions.retain(|_, _| false)?;
                put_check(keys, &mut sessions, &DIGEST_ROW, &Check::default())?;
                true
            }
        }
    };
    txn.commit()?;
    Ok(reset)
}

/// The format-2 to format-3 migration of `sessions`, inside the migration's transaction: keeps only the
/// session rows a format-2 read would have used (the digest agrees with the checks, and each row matches
/// its check; otherwise the row is dropped, as the open or the read would have dropped it, and the
/// contact gets a new session), reseals them in format 3, and writes their checks and digest anew.
pub(super) fn migrate_v2(
    keys: &Keys,
    sessions: &mut Table<Bytes, Bytes>,
) -> Result<(), StoreError> {
    let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for entry in sessions.iter()? {
        let (key, value) = entry?;
        rows.push((key.value().to_vec(), value.value().to_vec()));
    }
    let open_check_v2 = |row: &[u8], sealed: &[u8]| -> Result<Check, StoreError> {
        let plain = keys.open_v2_or_v3(SESSIONS.name(), row, sealed)?;
        Check::try_from(plain.as_slice())
            .map_err(|_| StoreError::Corrupt("a session check is malformed".into()))
    };
    let stored_digest = rows
        .iter()
        .find(|(k, _)| k.as_slice() == DIGEST_ROW.as_slice())
        .map(|(k, v)| open_check_v2(k, v))
        .transpose()?;
    let mut digest = Check::default();
    let mut checks = std::collections::HashMap::new();
    for (row, sealed) in &rows {
        if row.len() == BLIND_LEN + 1 && row.last() == Some(&CHECK_TAG) {
            let check = open_check_v2(row, sealed)?;
            xor(&mut digest, &check);
            checks.insert(row[..BLIND_LEN].to_vec(), check);
        }
    }
    // No digest yet: the profile never opened since checks exist, so every row is the reference (as
    // the first open would have taken it).
    let trusted = stored_digest.is_none_or(|stored| stored == digest);
    if !trusted {
        warn!(
            "the sessions on file are not the ones last written: every contact gets a new session"
        );
    }
    sessions.retain(|_, _| false)?;
    let mut new_digest = Check::default();
    for (row, sealed) in rows.iter().filter(|(k, _)| is_session_row(k)) {
        let matches = checks
            .get(row)
            .is_some_and(|c| *c == check_with_prefix(keys, sealed, NONCE_LEN));
        if !trusted || (stored_digest.is_some() && !matches) {
            continue;
        }
        let plain = keys.open_v2_or_v3(SESSIONS.name(), row, sealed)?;
        let resealed = keys.seal(SESSIONS.name(), row, &plain);
        let check = check_of(keys, &resealed);
        xor(&mut new_digest, &check);
        sessions.insert(row.as_slice(), resealed.as_slice())?;
        put_check(keys, sessions, &check_row(row), &check)?;
    }
    put_check(keys, sessions, &DIGEST_ROW, &new_digest)
}
