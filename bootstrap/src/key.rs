//! The node key: a 32-byte Ed25519 seed in `<data_dir>/node.key`, so the PeerId survives restarts.
//!
//! The file is created on first start with mode 0600 (written to a temporary file, synced, then renamed,
//! so a crash never leaves a half-written key) and only read afterwards. The seed is never logged and every
//! copy of it is zeroized.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use libp2p::identity::Keypair;
use rand::Rng;
use tern_node::net::keypair_from_seed;
use thiserror::Error;
use tracing::{info, warn};
use zeroize::Zeroizing;

/// The key file's name inside the data directory.
pub const NODE_KEY_FILE: &str = "node.key";
/// The key file's exact length: one Ed25519 seed.
pub const NODE_KEY_LEN: usize = 32;

/// Why the node key could not be loaded or created.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The key file could not be read or written.
    #[error("node key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The key file is not exactly one seed long.
    #[error("node key {path} is {len} bytes, expected {NODE_KEY_LEN}")]
    BadLength {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The seed was not accepted as an Ed25519 secret key.
    #[error("node key {path} is not a valid Ed25519 seed")]
    Invalid {
        /// The file.
        path: PathBuf,
    },
}

/// Loads `<data_dir>/node.key`, creating the directory and a fresh key if there is none.
pub fn load_or_create(data_dir: &Path) -> Result<Keypair, KeyError> {
    create_data_dir(data_dir)?;
    let path = data_dir.join(NODE_KEY_FILE);
    let seed = match read_seed(&path) {
        Ok(seed) => seed,
        Err(KeyError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            create_seed(data_dir, &path)?
        }
        Err(e) => return Err(e),
    };
    keypair_from_seed(&seed).map_err(|_| KeyError::Invalid { path })
}

fn create_data_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| KeyError::DataDir {
        path: dir.to_owned(),
        source,
    })
}

fn read_seed(path: &Path) -> Result<Zeroizing<[u8; NODE_KEY_LEN]>, KeyError> {
    let io_error = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if metadata.len() != NODE_KEY_LEN as u64 {
        return Err(KeyError::BadLength {
            path: path.to_owned(),
            len: metadata.len(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warn!(path = %path.display(), mode = format!("{mode:o}"), "node key is readable by others; chmod 600 it");
        }
    }
    let mut seed = Zeroizing::new([0u8; NODE_KEY_LEN]);
    file.read_exact(&mut seed[..]).map_err(io_error)?;
    Ok(seed)
}

fn create_seed(data_dir: &Path, path: &Path) -> Result<Zeroizing<[u8; NODE_KEY_LEN]>, KeyError> {
    let mut seed = Zeroizing::new([0u8; NODE_KEY_LEN]);
    rand::rng().fill_bytes(&mut seed[..]);

    let tmp = data_dir.join(format!("{NODE_KEY_FILE}.tmp"));
    let tmp_error = |source| KeyError::Io {
        path: tmp.clone(),
        source,
    };
    // A leftover from a crash mid-creation holds no key anyone relies on.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(tmp_error(e)),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(tmp_error)?;
    file.write_all(&seed[..]).map_err(tmp_error)?;
    file.sync_all().map_err(tmp_error)?;
    drop(file);
    fs::rename(&tmp, path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    // Make the rename itself durable.
    if let Ok(dir) = File::open(data_dir) {
        let _ = dir.sync_all();
    }
    info!(path = %path.display(), "created a new node key");
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested").join("data");
        let first = load_or_create(&data).unwrap();
        let second = load_or_create(&data).unwrap();
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        let bytes = fs::read(data.join(NODE_KEY_FILE)).unwrap();
        assert_eq!(bytes.len(), NODE_KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(data.join(NODE_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn truncated_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(NODE_KEY_FILE), [1u8; 5]).unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(KeyError::BadLength { len: 5, .. })
        ));
        assert_eq!(fs::read(dir.path().join(NODE_KEY_FILE)).unwrap(), [1u8; 5]);
    }
}
