//! Full disks for the storage-failure tests (issue 19): [`FlakyDisk`], a redb storage backend in memory
//! that fails every write while "full", and [`SmallDisk`], a real small tmpfs (root only) that a test
//! fills and then grows.

use std::io;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use redb::StorageBackend;

/// Bytes in memory standing in for a file; every write, resize and sync fails with
/// [`io::ErrorKind::StorageFull`] while [`Self::set_full`] is on (reads still work, as on a full disk).
/// Clones share the bytes and the switch, as handles on one file would: a store reopens with a clone.
#[derive(Debug, Clone, Default)]
pub struct FlakyDisk {
    bytes: Arc<Mutex<Vec<u8>>>,
    full: Arc<AtomicBool>,
}

impl FlakyDisk {
    /// A disk holding a copy of the file at `path` (a profile's `store.redb` made the ordinary way).
    pub fn from_file(path: &Path) -> io::Result<Self> {
        let disk = Self::default();
        *disk.lock() = std::fs::read(path)?;
        Ok(disk)
    }

    /// Makes every later write fail (`true`) or work again (`false`).
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    /// Whether writes fail now.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }

    fn check(&self) -> io::Result<()> {
        if self.is_full() {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.bytes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl StorageBackend for FlakyDisk {
    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let bytes = self.lock();
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let src = bytes
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        self.lock().resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check()?;
        let mut bytes = self.lock();
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        if bytes.len() < start + data.len() {
            bytes.resize(start + data.len(), 0);
        }
        bytes[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// A tmpfs of [`SmallDisk::SMALL`] mounted on a temporary directory, unmounted on drop.
#[derive(Debug)]
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Big enough for a bootstrap node's key and an empty mailbox, or a new profile; small enough to fill
    /// fast.
    pub const SMALL: &str = "size=1m";
    /// What [`Self::grow`] makes it.
    pub const LARGE: &str = "size=64m";

    /// `None` when this process may not mount (not root, or no tmpfs).
    pub fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", Self::SMALL, "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?
            .status
            .success();
        mounted.then_some(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts it with [`Self::LARGE`]: what it holds stays, and there is room again.
    pub fn grow(&self) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{}", Self::LARGE)])
            .arg(self.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
