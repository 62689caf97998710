//! What the profile store and the mailbox server share about redb files: opening one with its integrity check
//! (a damaged file is reported, never trusted or rewritten; an empty one is refused, never started afresh),
//! keeping every file and directory Tern writes private to its user ([`PRIVATE_FILE_MODE`],
//! [`PRIVATE_DIR_MODE`]), and sorting redb's errors into "in use", "corrupt" and the rest, so each of them
//! maps the same failure to the same typed error.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use redb::Database;

/// The mode of every file Tern writes (stores, mailbox databases, keys, locks): its user's only.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// The mode of every directory Tern creates (profiles, data directories).
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents with [`PRIVATE_DIR_MODE`]; a directory that exists is left as
/// it is (it may be one the user made for other things too).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, PRIVATE_DIR_MODE);
    builder.create(dir)
}

/// Takes group and other access away from a file Tern wrote (a no-op when it has none).
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Opens (creating if missing) a file with [`PRIVATE_FILE_MODE`], for append or writes.
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_FILE_MODE);
    options
}

/// A redb failure, sorted.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Another handle holds the file.
    InUse,
    /// The file is damaged or is not a database of the expected kind.
    Corrupt(String),
    /// Anything else (I/O, storage).
    Other(Box<redb::Error>),
}

impl From<redb::Error> for Failure {
    fn from(err: redb::Error) -> Self {
        match err {
            redb::Error::Corrupted(reason) => Self::Corrupt(reason),
            redb::Error::DatabaseAlreadyOpen => Self::InUse,
            redb::Error::TableDoesNotExist(name) => {
                Self::Corrupt(format!("table {name} is missing"))
            }
            redb::Error::TableTypeMismatch { table, .. } => {
                Self::Corrupt(format!("table {table} has another type"))
            }
            // redb reports a file that is not a redb database (a damaged header) as invalid data.
            redb::Error::Io(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                Self::Corrupt(err.to_string())
            }
            redb::Error::UpgradeRequired(_) => Self::Corrupt("unknown redb file format".into()),
            other => Self::Other(Box::new(other)),
        }
    }
}

/// Whether opening may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    OpenExisting,
    CreateIfMissing,
}

/// Opens a redb file with its integrity check, turning a panic inside redb (which the check should make
/// impossible) into [`Failure::Corrupt`]. A file that exists but is empty (0 bytes) is
/// [`Failure::Corrupt`] in either mode: whatever it held is gone, and starting afresh in its place would
/// hide that. A created file gets [`PRIVATE_FILE_MODE`]; an existing one loses group and other access.
pub(crate) fn open_checked(path: &Path, mode: Mode) -> Result<Database, Failure> {
    let io_failure = |err: io::Error| Failure::Other(Box::new(redb::Error::Io(err)));
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => {
            return Err(Failure::Corrupt(format!(
                "{} is empty (0 bytes): its data is gone; move it away to start an empty one",
                path.display()
            )));
        }
        Ok(_) => make_private(path).map_err(io_failure)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound && mode == Mode::CreateIfMissing => {
            // Created private before redb writes a byte into it.
            private_file_options()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(io_failure)?;
        }
        Err(_) => {}
    }
    let mut builder = Database::builder();
    builder.set_check_integrity_on_open(true);
    let opened = panic::catch_unwind(AssertUnwindSafe(|| match mode {
        Mode::OpenExisting => builder.open(path),
        Mode::CreateIfMissing => builder.create(path),
    }));
    finish_open(opened)
}

/// Like [`open_checked`] over a storage backend of the caller's (tests inject faults with one).
pub(crate) fn open_checked_with(backend: impl redb::StorageBackend) -> Result<Database, Failure> {
    let mut builder = Database::builder();
    builder.set_check_integrity_on_open(true);
    let opened = panic::catch_unwind(AssertUnwindSafe(|| builder.create_with_backend(backend)));
    finish_open(opened)
}

fn finish_open(
    opened: std::thread::Result<Result<Database, redb::DatabaseError>>,
) -> Result<Database, Failure> {
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(err)) => Err(redb::Error::from(err).into()),
        Err(_) => Err(Failure::Corrupt(
            "the database file could not be read".into(),
        )),
    }
}

/// Implements `From<redb::…Error>` for every redb error type, for an error type that implements
/// `From<Failure>`.
macro_rules! from_redb_errors {
    ($target:ty) => {
        from_redb_errors!(@each $target; Error, DatabaseError, TransactionError, TableError, StorageError, CommitError);
    };
    (@each $target:ty; $($err:ident),*) => {
        $(impl From<redb::$err> for $target {
            fn from(err: redb::$err) -> Self {
                $crate::redb_file::Failure::from(redb::Error::from(err)).into()
            }
        })*
    };
}
pub(crate) use from_redb_errors;
