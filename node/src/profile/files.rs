//! Files of a profile that is not online (the CLI's `files` and `save-file`): listed from the sealed rows,
//! decrypted from the profile's file store.

use std::path::Path;

use tern_protocol::MessageId;
use tern_protocol::file::FileLayout;

use super::Profile;
use crate::api::{FileEntry, FileOpError, FileState};
use crate::error::NodeError;
use crate::files::{FILES_DIR, FileStore};

impl Profile {
    /// Every message with a file, sent and received, with where each stands.
    pub fn files(&self) -> Result<Vec<FileEntry>, NodeError> {
        Ok(self
            .engine
            .reader()
            .attachments()?
            .into_iter()
            .map(|r| FileEntry {
                conversation: r.conversation,
                message: r.id,
                outgoing: r.outgoing,
                attachment: r.view(),
            })
            .collect())
    }

    /// Decrypts the complete file of message `id` (in any conversation) to `dest`; refuses to replace an
    /// existing file unless `overwrite`. Blocking: reads and writes the whole file.
    pub fn save_file(&self, id: &MessageId, dest: &Path, overwrite: bool) -> Result<(), NodeError> {
        let record = self
            .engine
            .reader()
            .attachments()?
            .into_iter()
            .find(|r| r.id == *id)
            .ok_or(NodeError::File(FileOpError::NoFile))?;
        if record.state != FileState::Complete {
            return Err(NodeError::File(FileOpError::NotComplete(record.state)));
        }
        if !overwrite && dest.exists() {
            return Err(NodeError::File(FileOpError::DestinationExists(
                dest.to_path_buf(),
            )));
        }
        let a = &record.announcement;
        let layout =
            FileLayout::new(a.size).map_err(|e| NodeError::File(FileOpError::Files(e.into())))?;
        let store = FileStore::open(self.dir().join(FILES_DIR))
            .map_err(|e| NodeError::File(FileOpError::Files(e)))?;
        store
            .export(&a.hash, layout, &a.key, dest)
            .map_err(|e| NodeError::File(FileOpError::Files(e)))
    }
}
