//! What the profile store and the mailbox server share about redb files: opening one with its integrity check
//! (a damaged file is reported, never trusted or rewritten), and sorting redb's errors into "in use",
//! "corrupt" and the rest, so each of them maps the same failure to the same typed error.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use redb::Database;

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
/// impossible) into [`Failure::Corrupt`].
pub(crate) fn open_checked(path: &Path, mode: Mode) -> Result<Database, Failure> {
    let mut builder = Database::builder();
    builder.set_check_integrity_on_open(true);
    let opened = panic::catch_unwind(AssertUnwindSafe(|| match mode {
        Mode::OpenExisting => builder.open(path),
        Mode::CreateIfMissing => builder.create(path),
    }));
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
