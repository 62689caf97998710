//! The files on disk: one directory per file under `files/`, named by the ciphertext hash, holding only
//! ciphertext (`data`), the bao tree's hash pairs (`outboard`) and the log of verified chunk groups
//! (`verified`). Everything here is blocking I/O: callers run it on tokio's blocking pool.
//!
//! Crash safety (docs/protocol.md §19.6): a piece's bytes and hashes are written and `fsync`ed before its
//! log entry is appended and `fsync`ed, so the log never names a group that is not on disk and verified; a
//! torn last entry fails its check and is cut off when the file is opened again. Nothing outside the log is
//! trusted. An import (the sender's side) is built in a `tmp-*` directory and renamed into place whole;
//! leftovers of an interrupted import are removed when the store opens.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::{OutboardMut, ReadAt, WriteAt};
use tern_protocol::file::{self, FileHash, FileKey, FileLayout, FileSealer, VerifiedPiece};

use super::FilesError;

const DATA: &str = "data";
const OUTBOARD: &str = "outboard";
const LOG: &str = "verified";
const TMP_PREFIX: &str = "tmp-";
const LOG_LABEL: &[u8] = b"tern/file-log/v1";
const LOG_ENTRY_LEN: usize = 16;
/// How much plaintext an import reads at once (one chunk).
const IMPORT_BUF: usize = file::FILE_CHUNK_LEN;

/// The `files/` directory of a profile.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// Opens (creating) the directory and removes what an interrupted import left behind.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, FilesError> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        for entry in fs::read_dir(&root)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, hash: &FileHash) -> PathBuf {
        self.root.join(hash.to_hex())
    }

    /// Where the file's ciphertext is (whether or not it is there).
    pub fn data_path(&self, hash: &FileHash) -> PathBuf {
        self.dir(hash).join(DATA)
    }

    /// Whether any part of the file is held here.
    pub fn contains(&self, hash: &FileHash) -> bool {
        self.dir(hash).is_dir()
    }

    /// Seals the plaintext at `path` under `key` into the store: the sender's copy, complete and verified.
    pub fn import(
        &self,
        path: &Path,
        key: &FileKey,
        tmp_name: u64,
    ) -> Result<(FileHash, FileLayout), FilesError> {
        let plain = File::open(path)?;
        let size = plain.metadata()?.len();
        self.import_from(plain, size, key, tmp_name)
    }

    /// [`Self::import`] of `size` plaintext bytes read from `plain` (which must end there).
    pub fn import_from(
        &self,
        mut plain: impl Read,
        size: u64,
        key: &FileKey,
        tmp_name: u64,
    ) -> Result<(FileHash, FileLayout), FilesError> {
        let layout = FileLayout::new(size).map_err(|_| FilesError::TooLarge {
            size,
            max: file::MAX_FILE_SIZE,
        })?;
        let tmp = self.root.join(format!("{TMP_PREFIX}{tmp_name:016x}"));
        fs::create_dir(&tmp)?;
        let result = (|| {
            let mut sealer = FileSealer::new(key.clone(), layout);
            let mut data =
                io::BufWriter::with_capacity(4 * IMPORT_BUF, File::create(tmp.join(DATA))?);
            let mut buf = vec![0u8; IMPORT_BUF];
            let mut done = 0u64;
            while let Some(len) = sealer.next_len() {
                plain.read_exact(&mut buf[..len])?;
                done += len as u64;
                data.write_all(&sealer.seal_next(&buf[..len])?)?;
            }
            // The file must not have grown while it was read.
            if done != size || plain.read(&mut [0u8; 1])? != 0 {
                return Err(FilesError::ChangedWhileReading);
            }
            let data = data.into_inner().map_err(|e| e.into_error())?;
            data.sync_all()?;
            let hash = sealer.finish()?;
            let data = File::open(tmp.join(DATA))?;
            let outboard_file = create_sized(&tmp.join(OUTBOARD), layout.tree().outboard_size())?;
            let mut outboard = PreOrderOutboard {
                root: hash.as_blake3(),
                tree: layout.tree(),
                data: outboard_file,
            };
            let root = bao_tree::io::sync::outboard(
                io::BufReader::with_capacity(1 << 20, data),
                layout.tree(),
                &mut outboard,
            )?;
            if FileHash::from(root) != hash {
                return Err(FilesError::Corrupt("the tree does not match the hash"));
            }
            outboard.data.sync_all()?;
            let mut log = File::create(tmp.join(LOG))?;
            log.write_all(&log_entry(&(0..layout.group_count())))?;
            log.sync_all()?;
            Ok(hash)
        })();
        let hash = match result {
            Ok(hash) => hash,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let dir = self.dir(&hash);
        if dir.exists() {
            // The same ciphertext can only come from the same key: keep the copy already there.
            fs::remove_dir_all(&tmp)?;
        } else {
            fs::rename(&tmp, &dir)?;
            File::open(&self.root)?.sync_all()?;
        }
        Ok((hash, layout))
    }

    /// Opens the file's entry, creating an empty one (nothing verified) if `create` and it is absent.
    pub fn entry(
        &self,
        hash: &FileHash,
        layout: FileLayout,
        create: bool,
    ) -> Result<Entry, FilesError> {
        let dir = self.dir(hash);
        if !dir.is_dir() {
            if !create {
                return Err(FilesError::NotFound);
            }
            let tmp = self.root.join(format!("{TMP_PREFIX}{}", hash.to_hex()));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir(&tmp)?;
            create_sized(&tmp.join(DATA), layout.ciphertext_len())?;
            create_sized(&tmp.join(OUTBOARD), layout.tree().outboard_size())?;
            File::create(tmp.join(LOG))?.sync_all()?;
            fs::rename(&tmp, &dir)?;
            File::open(&self.root)?.sync_all()?;
        }
        Entry::open(&dir, *hash, layout)
    }

    /// Removes everything held for the file (a no-op if nothing is).
    pub fn remove(&self, hash: &FileHash) -> Result<(), FilesError> {
        match fs::remove_dir_all(self.dir(hash)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a complete file with its key into `dest` (written beside it, renamed into place when whole).
    pub fn export(
        &self,
        hash: &FileHash,
        layout: FileLayout,
        key: &FileKey,
        dest: &Path,
    ) -> Result<(), FilesError> {
        let partial = dest.with_extension("tern-partial");
        let result = (|| {
            let mut out = io::BufWriter::with_capacity(4 * IMPORT_BUF, File::create(&partial)?);
            self.open_into(hash, layout, key, &mut out)?;
            let out = out.into_inner().map_err(|e| e.into_error())?;
            out.sync_all()?;
            fs::rename(&partial, dest)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&partial);
        }
        result
    }
}

impl FileStore {
    /// Opens a complete file with its key, chunk by chunk, into `out` (a file, or memory for a picture
    /// shown in the app: never unsealed on disk by this).
    pub fn open_into(
        &self,
        hash: &FileHash,
        layout: FileLayout,
        key: &FileKey,
        out: &mut impl Write,
    ) -> Result<(), FilesError> {
        let entry = self.entry(hash, layout, false)?;
        if !entry.is_complete() {
            return Err(FilesError::Incomplete);
        }
        let mut sealed = vec![0u8; file::SEALED_CHUNK_LEN];
        for index in 0..layout.chunk_count() {
            let range = layout.sealed_range(index)?;
            let len = (range.end - range.start) as usize;
            entry.data.read_exact_at(range.start, &mut sealed[..len])?;
            out.write_all(&file::open_chunk(key, &layout, index, &sealed[..len])?)?;
        }
        Ok(())
    }
}

fn create_sized(path: &Path, len: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    file.set_len(len)?;
    Ok(file)
}

fn log_check(groups: &Range<u32>) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(LOG_LABEL);
    hasher.update(&groups.start.to_be_bytes());
    hasher.update(&groups.end.to_be_bytes());
    let mut check = [0u8; 8];
    check.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    check
}

fn log_entry(groups: &Range<u32>) -> [u8; LOG_ENTRY_LEN] {
    let mut entry = [0u8; LOG_ENTRY_LEN];
    entry[..4].copy_from_slice(&groups.start.to_be_bytes());
    entry[4..8].copy_from_slice(&groups.end.to_be_bytes());
    entry[8..].copy_from_slice(&log_check(groups));
    entry
}

/// Which chunk groups are verified on disk: one bit each.
#[derive(Debug, Clone)]
pub struct GroupSet {
    bits: Vec<u64>,
    len: u32,
    count: u32,
}

impl GroupSet {
    pub fn new(len: u32) -> Self {
        Self {
            bits: vec![0; (len as usize).div_ceil(64)],
            len,
            count: 0,
        }
    }

    pub fn contains(&self, group: u32) -> bool {
        group < self.len && self.bits[(group / 64) as usize] & (1 << (group % 64)) != 0
    }

    pub fn insert(&mut self, groups: Range<u32>) {
        for group in groups.start..groups.end.min(self.len) {
            let word = &mut self.bits[(group / 64) as usize];
            let bit = 1 << (group % 64);
            if *word & bit == 0 {
                *word |= bit;
                self.count += 1;
            }
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn is_complete(&self) -> bool {
        self.count == self.len
    }

    pub fn covers(&self, groups: &Range<u32>) -> bool {
        groups.end <= self.len && (groups.start..groups.end).all(|g| self.contains(g))
    }

    /// The missing groups as ascending ranges, at most `max` of them.
    pub fn missing(&self, max: usize) -> Vec<Range<u32>> {
        let mut out = Vec::new();
        let mut start = None;
        for group in 0..self.len {
            match (self.contains(group), start) {
                (false, None) => start = Some(group),
                (true, Some(s)) => {
                    out.push(s..group);
                    start = None;
                    if out.len() == max {
                        return out;
                    }
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push(s..self.len);
        }
        out
    }
}

/// One file's ciphertext, tree and log, open.
#[derive(Debug)]
pub struct Entry {
    hash: FileHash,
    layout: FileLayout,
    data: File,
    outboard: PreOrderOutboard<File>,
    log: File,
    verified: GroupSet,
    /// Verified pieces written but not yet flushed and logged.
    pending: Vec<Range<u32>>,
}

impl Entry {
    fn open(dir: &Path, hash: FileHash, layout: FileLayout) -> Result<Self, FilesError> {
        let rw = |name| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(dir.join(name))
        };
        let data = rw(DATA)?;
        let outboard_file = rw(OUTBOARD)?;
        if data.metadata()?.len() != layout.ciphertext_len()
            || outboard_file.metadata()?.len() != layout.tree().outboard_size()
        {
            return Err(FilesError::Corrupt("held under another size"));
        }
        // Appends only: a write can never land on an earlier entry.
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .open(dir.join(LOG))?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes)?;
        let mut verified = GroupSet::new(layout.group_count());
        let mut good = 0;
        for entry in bytes.chunks_exact(LOG_ENTRY_LEN) {
            let start = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let end = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]);
            let groups = start..end;
            if entry[8..] != log_check(&groups) || start >= end || end > layout.group_count() {
                break;
            }
            verified.insert(groups);
            good += LOG_ENTRY_LEN;
        }
        if good != bytes.len() {
            // A torn or damaged tail: cut it so later entries follow good ones.
            log.set_len(good as u64)?;
            log.sync_all()?;
        }
        Ok(Self {
            hash,
            layout,
            data,
            outboard: PreOrderOutboard {
                root: hash.as_blake3(),
                tree: layout.tree(),
                data: outboard_file,
            },
            log,
            verified,
            pending: Vec::new(),
        })
    }

    pub fn hash(&self) -> FileHash {
        self.hash
    }

    pub fn layout(&self) -> FileLayout {
        self.layout
    }

    pub fn verified(&self) -> &GroupSet {
        &self.verified
    }

    pub fn is_complete(&self) -> bool {
        self.verified.is_complete()
    }

    /// Bytes of ciphertext verified on disk (or written and about to be logged).
    pub fn verified_bytes(&self) -> u64 {
        (u64::from(self.verified.count()) * file::GROUP_LEN).min(self.layout.ciphertext_len())
    }

    /// Encodes the piece `groups` for a receiver; refuses groups this holder has not verified.
    pub fn encode_piece(&self, groups: &Range<u32>) -> Result<Vec<u8>, FilesError> {
        if !self.verified.covers(groups) {
            return Err(FilesError::NotFound);
        }
        Ok(file::encode_piece(&self.data, &self.outboard, groups)?)
    }

    /// Writes a piece that verified (never anything else: [`VerifiedPiece`] comes only from
    /// [`file::verify_piece`]); it is logged by the next [`Self::flush`].
    pub fn write_piece(
        &mut self,
        groups: Range<u32>,
        piece: &VerifiedPiece,
    ) -> Result<(), FilesError> {
        for leaf in &piece.leaves {
            self.data.write_all_at(leaf.offset, &leaf.data)?;
        }
        for parent in &piece.parents {
            self.outboard.save(parent.node, &parent.pair)?;
        }
        self.verified.insert(groups.clone());
        self.pending.push(groups);
        Ok(())
    }

    /// Makes the written pieces durable, then logs them (in that order).
    pub fn flush(&mut self) -> Result<(), FilesError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.data.sync_data()?;
        self.outboard.data.sync_data()?;
        let mut entries = Vec::with_capacity(self.pending.len() * LOG_ENTRY_LEN);
        for groups in self.pending.drain(..) {
            entries.extend_from_slice(&log_entry(&groups));
        }
        self.log.write_all(&entries)?;
        self.log.sync_data()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_sets_report_missing_ranges() {
        let mut set = GroupSet::new(200);
        set.insert(0..10);
        set.insert(64..130);
        assert_eq!(set.missing(10), vec![10..64, 130..200]);
        assert_eq!(set.missing(1), vec![10..64]);
        assert!(set.covers(&(64..130)) && !set.covers(&(63..65)));
        set.insert(10..64);
        set.insert(130..200);
        assert!(set.is_complete() && set.missing(5).is_empty());
    }

    #[test]
    fn a_torn_log_tail_is_cut_and_nothing_past_it_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, vec![7u8; 300_000]).unwrap();
        let key = FileKey::from_bytes([1; 32]);
        let (hash, layout) = store.import(&plain, &key, 1).unwrap();
        let sender = store.entry(&hash, layout, false).unwrap();
        assert!(sender.is_complete());

        let other = FileStore::open(dir.path().join("other")).unwrap();
        let mut entry = other.entry(&hash, layout, true).unwrap();
        for groups in [0..4, 10..12] {
            let encoded = sender.encode_piece(&groups).unwrap();
            let piece = file::verify_piece(&hash, &layout, &groups, &encoded).unwrap();
            entry.write_piece(groups, &piece).unwrap();
        }
        entry.flush().unwrap();
        drop(entry);
        // A torn third entry: half of it written.
        let log_path = other.dir(&hash).join(LOG);
        let mut log = OpenOptions::new().append(true).open(&log_path).unwrap();
        log.write_all(&log_entry(&(4..10))[..9]).unwrap();
        drop(log);
        let entry = other.entry(&hash, layout, false).unwrap();
        assert_eq!(
            entry.verified().missing(10),
            vec![4..10, 12..layout.group_count()]
        );
        assert_eq!(
            fs::metadata(&log_path).unwrap().len(),
            2 * LOG_ENTRY_LEN as u64
        );
        // A forged entry whose check does not match is not trusted either.
        let mut bad = log_entry(&(4..10));
        bad[15] ^= 1;
        OpenOptions::new()
            .append(true)
            .open(&log_path)
            .unwrap()
            .write_all(&bad)
            .unwrap();
        let entry = other.entry(&hash, layout, false).unwrap();
        assert!(!entry.verified().contains(5));
    }

    #[test]
    fn export_opens_a_complete_file_and_refuses_an_incomplete_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("files")).unwrap();
        let plain_path = dir.path().join("plain");
        let plain: Vec<u8> = (0..200_003u32).map(|i| (i * 7) as u8).collect();
        fs::write(&plain_path, &plain).unwrap();
        let key = FileKey::from_bytes([3; 32]);
        let (hash, layout) = store.import(&plain_path, &key, 2).unwrap();
        let out = dir.path().join("out");
        store.export(&hash, layout, &key, &out).unwrap();
        assert_eq!(fs::read(&out).unwrap(), plain);
        // No plaintext name or content under files/: only the hash directory.
        let names: Vec<_> = fs::read_dir(store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(hash.to_hex())]);

        let empty = FileStore::open(dir.path().join("empty")).unwrap();
        empty.entry(&hash, layout, true).unwrap();
        assert!(matches!(
            empty.export(&hash, layout, &key, &dir.path().join("x")),
            Err(FilesError::Incomplete)
        ));
        // A leftover import directory is removed when the store opens again.
        fs::create_dir(store.root().join("tmp-0000000000000009")).unwrap();
        FileStore::open(store.root()).unwrap();
        assert!(!store.root().join("tmp-0000000000000009").exists());
    }
}
