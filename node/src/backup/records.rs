//! The records inside an archive's sealed stream (docs/protocol.md §20.3): `u8 kind || u32 len || body`.

use std::io::{BufRead, Write};

use zeroize::Zeroizing;

use super::BackupError;
use super::stream::{OpeningReader, SealingWriter};

/// The longest record body (a file part is at most [`FILE_PART_LEN`] plus 41 bytes; a message at most
/// 32 KiB of text plus its fields; a setting at most 64 KiB plus its name).
pub const MAX_RECORD_LEN: usize = 128 * 1024;
/// File bytes per file-part record.
pub const FILE_PART_LEN: usize = 64 * 1024;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// `u64 created_ms`: when the backup was made. First.
    Meta,
    /// The identity as a kind-1 pickle (§13) under the archive's pickle key. Second.
    Identity,
    /// The profile's own encoded card (§5). Third.
    OwnCard,
    /// A contact: the store's `ContactRecord` v1.
    Contact,
    /// A setting: `u8 len || name || value`.
    Setting,
    /// A message: `u8 unread || MessageRecord` (v2, or v3 with its timer).
    Message,
    /// A message's file: the store's `AttachmentRecord` v1.
    Attachment,
    /// Bytes of a held file: `hash[32] || u8 part (1 data, 2 outboard, 3 verified) || u64 offset || bytes`.
    FilePart,
    /// A 1:1 conversation's disappearing-message timer: `contact identity key[32] || Timer (28 bytes)`.
    Timer,
    /// A group: [`crate::group::RestoredGroup`]'s encoding (archive version 2 on).
    Group,
    /// `u64 records`: how many records came before it. Last.
    End,
}

impl RecordKind {
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Meta => 1,
            Self::Identity => 2,
            Self::OwnCard => 3,
            Self::Contact => 4,
            Self::Setting => 5,
            Self::Message => 6,
            Self::Attachment => 7,
            Self::FilePart => 8,
            Self::Timer => 9,
            Self::Group => 10,
            Self::End => 0xff,
        }
    }

    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Meta,
            2 => Self::Identity,
            3 => Self::OwnCard,
            4 => Self::Contact,
            5 => Self::Setting,
            6 => Self::Message,
            7 => Self::Attachment,
            8 => Self::FilePart,
            9 => Self::Timer,
            10 => Self::Group,
            0xff => Self::End,
            _ => return None,
        })
    }
}

/// Writes one record.
pub(super) fn write_record<W: Write>(
    out: &mut SealingWriter<W>,
    kind: RecordKind,
    parts: &[&[u8]],
) -> Result<(), BackupError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > MAX_RECORD_LEN {
        return Err(BackupError::BadRecord {
            what: "record",
            reason: format!("{len} bytes, at most {MAX_RECORD_LEN}"),
        });
    }
    let mut head = [0u8; 5];
    head[0] = kind.to_u8();
    head[1..].copy_from_slice(&(len as u32).to_be_bytes());
    out.write(&head)?;
    for part in parts {
        out.write(part)?;
    }
    Ok(())
}

/// Reads one record into `body` (cleared first).
pub(super) fn read_record<R: BufRead>(
    input: &mut OpeningReader<R>,
    body: &mut Zeroizing<Vec<u8>>,
) -> Result<RecordKind, BackupError> {
    let mut head = [0u8; 5];
    input.read_exact(&mut head)?;
    let kind =
        RecordKind::from_u8(head[0]).ok_or(BackupError::Damaged("an unknown record kind"))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_RECORD_LEN {
        return Err(BackupError::Damaged(
            "a record is longer than any writer makes",
        ));
    }
    body.clear();
    body.resize(len, 0);
    input.read_exact(body)?;
    Ok(kind)
}
