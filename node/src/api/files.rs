//! The file types of the public api (re-exported by `crate::api`, and `FilesError` by `crate::files`): a message's attachment as the user
//! sees it, its state, the result of sending one, and why a file operation was refused.

use std::fmt;
use std::path::PathBuf;

use tern_protocol::MessageId;
use thiserror::Error;

use std::ops::Range;

use tern_protocol::file::{FileError, PieceError};

use super::{ConversationId, Message};

/// Where a message's file stands on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileState {
    /// Incoming: wanted, not complete yet; fetched when the sender is reachable.
    Waiting,
    /// Incoming: chunks are being fetched now (never stored: a restart shows it as `Waiting`).
    Downloading,
    /// Incoming: the user paused it; what is on disk stays.
    Paused,
    /// The whole file is held here (always so for a file this profile sent, until cancelled).
    Complete,
    /// Cancelled by the user (or withdrawn by the sender): nothing of it is held here.
    Cancelled,
    /// Given up on (the sender no longer holds it, or the stored copy is damaged).
    Failed,
}

impl FileState {
    /// The word the CLI prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Downloading => "downloading",
            Self::Paused => "paused",
            Self::Complete => "complete",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Self::Waiting | Self::Downloading => 0,
            Self::Paused => 1,
            Self::Complete => 2,
            Self::Cancelled => 3,
            Self::Failed => 4,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Waiting,
            1 => Self::Paused,
            2 => Self::Complete,
            3 => Self::Cancelled,
            4 => Self::Failed,
            _ => return None,
        })
    }
}

/// A file attached to a message.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name the sender gave it (never a path).
    pub name: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Media type such as `image/jpeg`; empty if unknown.
    pub media_type: String,
    pub state: FileState,
    /// Plaintext bytes held here, verified (an estimate while downloading: ciphertext bytes verified,
    /// scaled to the plaintext size).
    pub progress: u64,
    /// For a file this profile sent: location and camera metadata were stripped before it was encrypted.
    pub metadata_stripped: bool,
    /// A picture's preview as the sender made it: PNG or JPEG, at most 32 KiB and 1024 pixels a side
    /// (a received one that is not is dropped on arrival).
    pub thumbnail: Option<Vec<u8>>,
    /// Why the transfer stopped for good (a failed or cancelled file), in words for the user; kept with
    /// the file, so it is shown again after a restart.
    pub failure: Option<String>,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the name.
        let Self {
            name,
            size,
            media_type,
            state,
            progress,
            metadata_stripped,
            thumbnail,
            failure,
        } = self;
        f.debug_struct("Attachment")
            .field("name_len", &name.len())
            .field("size", size)
            .field("media_type", media_type)
            .field("state", state)
            .field("progress", progress)
            .field("metadata_stripped", metadata_stripped)
            .field("thumbnail_len", &thumbnail.as_ref().map(Vec::len))
            .field("failure", failure)
            .finish()
    }
}

/// A file message in the list of files ([`crate::node::Node::files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub conversation: ConversationId,
    pub message: MessageId,
    /// Sent by this profile.
    pub outgoing: bool,
    pub attachment: Attachment,
}

/// What [`crate::node::Node::send_file`] did.
#[derive(Debug, Clone)]
pub struct SentFile {
    /// The message that offers the file (status `sending`, with its attachment).
    pub message: Message,
    /// Location and camera metadata (EXIF, XMP) were removed from the picture before it was encrypted.
    pub metadata_stripped: bool,
}

/// Why a file operation was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileOpError {
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    #[error("the file is {size} bytes; at most {max} (4 GiB) can be sent")]
    TooLarge { size: u64, max: u64 },
    #[error("{} exists already (ask to overwrite it)", .0.display())]
    DestinationExists(PathBuf),
    #[error("no file is attached to that message")]
    NoFile,
    #[error("the file is not complete yet ({state})", state = .0.as_str())]
    NotComplete(FileState),
    #[error("a file cannot be {action} while it is {state}", state = .state.as_str())]
    WrongState {
        action: &'static str,
        state: FileState,
    },
    #[error("{max} files are held already; delete some messages with files first")]
    TooManyFiles { max: u64 },
    #[error("the file name cannot be sent: {0}")]
    BadName(String),
    #[error(transparent)]
    Files(#[from] FilesError),
}

/// Why work on the files on disk failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FilesError {
    #[error("file I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is {size} bytes, at most {max} (4 GiB) can be sent")]
    TooLarge { size: u64, max: u64 },
    #[error("no such file is held here")]
    NotFound,
    #[error("the file is not complete yet")]
    Incomplete,
    #[error("the file changed while it was being read")]
    ChangedWhileReading,
    #[error("the stored file is damaged: {0}")]
    Corrupt(&'static str),
    #[error("a piece (groups {0:?}) did not verify and was refused: {1}")]
    Tampered(Range<u32>, String),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Piece(#[from] PieceError),
}
