//! Writing an archive from an open profile.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use tern_protocol::file::FileHash;
use tracing::warn;

use super::code::RecoveryCode;
use super::records::{FILE_PART_LEN, RecordKind, write_record};
use super::stream::{Keys, SealingWriter};
use super::{BackupError, BackupSummary};
use crate::files::FILES_DIR;
use crate::group::{Group, RestoredGroup};
use crate::profile::Profile;
use crate::store::{ExportItem, StoreError};

/// The files of a held file's directory in `files/`, with their part numbers in a file-part record.
pub(super) const FILE_PARTS: [(u8, &str); 3] = [(1, "data"), (2, "outboard"), (3, "verified")];

impl Profile {
    /// Writes an encrypted backup of this profile to `dest` (which must not exist) and returns the new
    /// recovery code that opens it: show it to the user once, it is stored nowhere. Blocking: reads the
    /// whole profile; run it off any thread that must stay responsive. The archive is written under a
    /// temporary name beside `dest` and renamed into place when complete.
    pub fn backup(&self, dest: &Path) -> Result<(RecoveryCode, BackupSummary), BackupError> {
        let code = RecoveryCode::generate(&mut rand::rng());
        let summary = self.backup_with_code(dest, &code)?;
        Ok((code, summary))
    }

    /// [`Self::backup`] under a code of the caller's (automatic backups, the committed test fixture).
    pub fn backup_with_code(
        &self,
        dest: &Path,
        code: &RecoveryCode,
    ) -> Result<BackupSummary, BackupError> {
        self.engine.backup_with_code(dest, code)
    }
}

impl crate::engine::Engine {
    /// [`Profile::backup_with_code`] on the engine (the node's loop owns one, not a profile).
    pub fn backup_with_code(
        &self,
        dest: &Path,
        code: &RecoveryCode,
    ) -> Result<BackupSummary, BackupError> {
        if dest.try_exists()? {
            return Err(BackupError::FileExists(dest.to_owned()));
        }
        let mut rng = rand::rng();
        let mut salt = [0u8; 16];
        rand::Rng::fill_bytes(&mut rng, &mut salt);
        let keys = Keys::derive(code, &salt);

        let tmp = temp_path(dest, rand::Rng::next_u64(&mut rng));
        let file = crate::redb_file::private_file_options()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let result = self.write_archive(file, &keys, &salt);
        let mut summary = match result {
            Ok(summary) => summary,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if dest.try_exists()? {
            let _ = fs::remove_file(&tmp);
            return Err(BackupError::FileExists(dest.to_owned()));
        }
        fs::rename(&tmp, dest)?;
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        summary.archive_bytes = fs::metadata(dest)?.len();
        Ok(summary)
    }

    /// What a backup carries of each stored group (§20.3): its name, roles and members, never its MLS
    /// state. A group restored earlier and not rejoined yet is carried as it is; one whose state does not
    /// decode is left out with a warning (the node skips it too).
    fn groups_to_carry(&self) -> Result<Vec<RestoredGroup>, BackupError> {
        let mut groups = Vec::new();
        for row in self.store().groups()? {
            let group = if RestoredGroup::is_restored(&row) {
                RestoredGroup::decode(&row)
            } else {
                Group::decode(&row).and_then(|group| group.to_restored())
            };
            match group {
                Ok(group) => groups.push(group),
                Err(e) => {
                    warn!(error = %e, "a stored group does not decode; left out of the backup")
                }
            }
        }
        Ok(groups)
    }

    fn write_archive(
        &self,
        file: File,
        keys: &Keys,
        salt: &[u8; 16],
    ) -> Result<BackupSummary, BackupError> {
        let mut out = SealingWriter::new(BufWriter::with_capacity(1 << 16, file), keys, salt)?;
        let mut records = 0u64;
        let mut summary = BackupSummary::default();
        let now = crate::api::now_ms();
        write_record(&mut out, RecordKind::Meta, &[&now.to_be_bytes()])?;
        let pickle =
            zeroize::Zeroizing::new(self.identity().pickle(&keys.pickle, &mut rand::rng()));
        write_record(&mut out, RecordKind::Identity, &[&pickle])?;
        write_record(&mut out, RecordKind::OwnCard, &[self.card().encode()])?;
        records += 3;

        // Held files are read after the store's snapshot, one at a time (at most MAX_ATTACHMENTS).
        let mut files = BTreeSet::new();
        let mut failure = None;
        let exported = self
            .store()
            .export_records(now, super::BACKUP_SETTINGS, |item| {
                let written = match item {
                    ExportItem::Contact(record) => {
                        summary.contacts += 1;
                        write_record(&mut out, RecordKind::Contact, &[record])
                    }
                    ExportItem::Setting { name, value } => {
                        let len = [name.len() as u8];
                        write_record(
                            &mut out,
                            RecordKind::Setting,
                            &[&len, name.as_bytes(), value],
                        )
                    }
                    ExportItem::Message { record, unread } => {
                        summary.messages += 1;
                        write_record(
                            &mut out,
                            RecordKind::Message,
                            &[&[u8::from(unread)], record],
                        )
                    }
                    ExportItem::Attachment { record, hash } => {
                        files.insert(hash.0);
                        write_record(&mut out, RecordKind::Attachment, &[record])
                    }
                    ExportItem::Timer { contact, timer } => write_record(
                        &mut out,
                        RecordKind::Timer,
                        &[contact.as_bytes(), &timer.encode()],
                    ),
                };
                records += 1;
                written.map_err(|e| {
                    failure = Some(e);
                    StoreError::Unsupported("the backup stopped")
                })
            });
        if let Some(e) = failure {
            return Err(e);
        }
        exported?;
        for group in self.groups_to_carry()? {
            write_record(&mut out, RecordKind::Group, &[&group.encode()])?;
            summary.groups += 1;
            records += 1;
        }

        let root = self.store().dir().join(FILES_DIR);
        let mut buf = vec![0u8; FILE_PART_LEN];
        for hash in files {
            let dir = root.join(FileHash(hash).to_hex());
            if !dir.is_dir() {
                continue;
            }
            summary.files += 1;
            for (part, name) in FILE_PARTS {
                let path = dir.join(name);
                let mut file = match File::open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                let mut offset = 0u64;
                loop {
                    let n = read_some(&mut file, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    write_record(
                        &mut out,
                        RecordKind::FilePart,
                        &[&hash, &[part], &offset.to_be_bytes(), &buf[..n]],
                    )?;
                    records += 1;
                    offset += n as u64;
                }
            }
        }
        write_record(&mut out, RecordKind::End, &[&records.to_be_bytes()])?;
        let file = out.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(summary)
    }
}

/// Fills as much of `buf` as the file has left.
fn read_some(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// `.<name>.tmp-<n>` beside `path`.
pub(super) fn temp_path(path: &Path, n: u64) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{n:016x}"))
}
