//! Encrypted backups of a profile, and restoring one on a new computer (docs/protocol.md §20).
//!
//! What lives here: `code.rs` the recovery code the user writes down; `stream.rs` the archive's header,
//! key derivation, chunked sealing and padding; `export.rs` writing an archive from an open
//! [`crate::profile::Profile`]; `restore.rs` building a new profile from an archive; `auto.rs` automatic
//! backups to a folder on a schedule, under one code kept sealed in the profile.
//!
//! An archive holds the identity (its keys and signed prekeys), the own card, contacts (with verified
//! marks and states), settings, conversations (1:1 and groups) with their messages and unread marks, each
//! group's name, roles and members, and the files the profile holds (as the ciphertext `files/` keeps). It
//! never holds sessions, reserved keys, the outbox, duplicate checks or MLS group state: a restored profile
//! starts a new session with every accepted contact, by sending its card ([`restore()`] queues it), and
//! contacts switch to it (§10 rule 5) with no key-change warning, since the identity is the same. For each
//! group it was a member of, it asks one admin to add it back (§20.5).
//!
//! Every record leaves the store through [`crate::store::Store::export_records`]: a rule on what a
//! backup must not hold goes there. Both directions stream: memory stays bounded by one chunk, one
//! record and one batch of [`IMPORT_BATCH`] records, however long the history.

mod auto;
mod code;
mod export;
mod records;
mod restore;
mod stream;

use std::path::PathBuf;

use thiserror::Error;

use crate::engine::EngineError;
use crate::store::StoreError;

pub use auto::{AUTO_BACKUP_SETTING, AutoBackup, MAX_EVERY, MAX_KEEP, MIN_EVERY, archives_in};
pub use code::{CODE_ALPHABET, CODE_CHARS, CODE_SECRET_LEN, RecoveryCode};
pub use records::{MAX_RECORD_LEN, RecordKind};
pub use restore::{IMPORT_BATCH, restore};
pub use stream::{ARCHIVE_VERSION, CHUNK_LEN, HEADER_LEN, MAGIC, MIN_PADDED_LEN, padded_len};

/// The settings a backup carries, by name (a setting's row key is a blind index, so its name must be
/// known). Not `auto-backup`: its code must never travel inside an archive.
pub const BACKUP_SETTINGS: &[&str] = &[
    crate::settings::NETWORK_SETTING,
    crate::privacy::PRIVACY_SETTING,
    crate::prefs::CONVERSATION_PREFS_SETTING,
];

/// What a backup or a restore carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupSummary {
    pub contacts: u64,
    pub messages: u64,
    pub files: u64,
    /// Groups carried (name, roles and members; no MLS state).
    pub groups: u64,
    /// The archive's size in bytes.
    pub archive_bytes: u64,
}

/// Why a backup or a restore failed. None of them leaves anything changed: a backup writes its archive
/// under a temporary name, and a restore builds the new profile beside its destination, renamed into
/// place only when complete.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The recovery code is not 64 code characters, or its checksum fails (a typo).
    #[error("that is not a recovery code: {0}")]
    MalformedCode(&'static str),
    /// The code is well formed but is not the one this archive was sealed with.
    #[error("wrong recovery code for this backup")]
    WrongCode,
    /// The file does not start like a Tern backup.
    #[error("this file is not a Tern backup")]
    NotABackup,
    /// A newer Tern wrote the archive.
    #[error(
        "this backup was made by a newer version of Tern (archive version {found}, this build reads {supported}): update Tern to restore it"
    )]
    NewerVersion { found: u8, supported: u8 },
    /// The archive ends early.
    #[error("the backup is incomplete: the file was cut short")]
    Truncated,
    /// The archive fails authentication or holds something no writer makes.
    #[error("the backup is damaged or was changed: {0}")]
    Damaged(&'static str),
    /// A record inside the archive is invalid.
    #[error("the backup holds an invalid {what}: {reason}")]
    BadRecord { what: &'static str, reason: String },
    /// Restoring would replace a profile (or other files) already there.
    #[error("{} already holds a profile or other files: restore into a new directory", .0.display())]
    ProfileExists(PathBuf),
    /// The backup file to write exists already.
    #[error("{} exists already: choose another name", .0.display())]
    FileExists(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<crate::store::ImportError> for BackupError {
    fn from(e: crate::store::ImportError) -> Self {
        match e {
            crate::store::ImportError::Record(what, reason) => Self::BadRecord {
                what,
                reason: reason.to_string(),
            },
            crate::store::ImportError::Store(e) => Self::Store(e),
        }
    }
}
