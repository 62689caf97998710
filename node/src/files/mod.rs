//! Files and images (issue 14): the encrypted files a profile holds and the `/tern/file/1` transfer service.
//!
//! - `store.rs`: the `files/` directory beside the profile store: per file only its ciphertext, its bao
//!   outboard and a log of verified chunk groups, written so that a process killed at any point resumes from
//!   what is on disk and never trusts an unverified byte (docs/protocol.md §19.6).
//! - `transfer.rs`: the stream protocol (§19.5): a holder streams bao-verified pieces of the ranges a receiver
//!   asks for; the receiver verifies each piece whole before writing it.
//! - here: [`FileService`], which runs beside the event loop on its own tasks over a `libp2p_stream::Control`
//!   (the swarm only carries the streams), with its bounds: file size, concurrent transfers, chunk count.
//!
//! The formats (chunk encryption, hash, announcement) are `tern_protocol::file`'s.

pub mod hold;
pub mod store;
pub mod strip;
pub mod thumb;
pub mod transfer;

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::PeerId;
use tern_protocol::file::{FileHash, FileKey, FileLayout, MAX_FILE_SIZE};
use thiserror::Error;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

pub use crate::api::FilesError;
pub use hold::{FileHolder, HoldError, HoldLimits};
pub use store::FileStore;
pub use transfer::PROTOCOL;

/// The directory inside a profile directory that holds its files (ciphertext only, see `store.rs`).
pub const FILES_DIR: &str = "files";
/// The directory inside a profile directory that holds files for others, when the node serves as a
/// mailbox (`hold.rs`; ciphertext only).
pub const HELD_FILES_DIR: &str = "held-files";
/// Streams served at once; past it a holder answers busy.
pub const MAX_SERVING: usize = 8;
/// Files fetched at once; past it a fetch fails with [`TransferError::TooManyTransfers`].
pub const MAX_FETCHING: usize = 8;
/// Withdrawn files remembered (to answer "cancelled" rather than "not found").
pub const MAX_CANCELLED: usize = 1024;
/// Rounds in a row that make no progress before a fetch gives up.
pub const MAX_FAILED_ROUNDS: u32 = 5;
/// A node reports a file's progress at most this often (and once when it completes).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// How often a node tries again to fetch the files still waiting whose senders were away.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// Transfer events buffered for a slow reader (it lags, never blocks a transfer).
pub const EVENT_CAPACITY: usize = 256;
/// Wait after a failed round, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a transfer failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransferError {
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error("{max} files are being fetched already")]
    TooManyTransfers { max: usize },
    #[error("this file is being fetched already")]
    AlreadyFetching,
    #[error("stream: {0}")]
    Stream(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("the holder does not have the file")]
    NotFound,
    #[error("the holder is busy")]
    HolderBusy,
    #[error("the transfer was cancelled")]
    Cancelled,
    #[error("the transfer was paused")]
    Paused,
    #[error("gave up after {rounds} rounds without progress; last: {last}")]
    GaveUp { rounds: u32, last: String },
}

/// What happens to transfers, for progress bars and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferEvent {
    /// `verified` of `total` ciphertext bytes are verified on disk (durable within the next few pieces).
    Progress {
        hash: FileHash,
        verified: u64,
        total: u64,
    },
    /// A piece did not verify; nothing of it was written and it is asked for again.
    PieceRefused { hash: FileHash, groups: Range<u32> },
}

/// A file added for sending: what its announcement carries besides name and type.
#[derive(Debug, Clone)]
pub struct AddedFile {
    pub key: FileKey,
    pub hash: FileHash,
    pub size: u64,
}

/// What a finished fetch cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Piece bytes read from holders in this fetch (what a resume saves shows here).
    pub wire_bytes: u64,
    pub pieces: u64,
    pub refused_pieces: u64,
    pub rounds: u32,
}

struct Fetching {
    cancel: watch::Sender<bool>,
    /// Set before `cancel` by a pause: what was received stays on disk.
    keep: Arc<std::sync::atomic::AtomicBool>,
    running: Arc<tokio::sync::Mutex<()>>,
}

pub(crate) struct Shared {
    store: FileStore,
    /// Stores served besides `store`: the files a mailbox node holds for others.
    also_serve: Mutex<Vec<FileStore>>,
    control: libp2p_stream::Control,
    serving: Arc<Semaphore>,
    cancelled: Mutex<VecDeque<FileHash>>,
    fetching: Mutex<HashMap<FileHash, Fetching>>,
    sent: AtomicU64,
    events: broadcast::Sender<TransferEvent>,
}

impl Shared {
    /// The stores served, own files first.
    fn stores(&self) -> Vec<FileStore> {
        let mut stores = vec![self.store.clone()];
        if let Ok(also) = self.also_serve.lock() {
            stores.extend(also.iter().cloned());
        }
        stores
    }

    fn is_cancelled(&self, hash: &FileHash) -> bool {
        self.cancelled.lock().is_ok_and(|c| c.contains(hash))
    }

    fn add_sent(&self, bytes: u64) {
        self.sent.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The file transfer service: serves held files and fetches announced ones, on its own tasks.
pub struct FileService {
    shared: Arc<Shared>,
    /// `None` for a fetch-only service ([`FileService::fetcher`]).
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FileService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileService")
            .field("root", &self.shared.store.root())
            .finish_non_exhaustive()
    }
}

impl Drop for FileService {
    fn drop(&mut self) {
        if let Some(accept) = &self.accept {
            accept.abort();
        }
    }
}

impl FileService {
    /// Starts serving `/tern/file/1` from `store` through `control` (the swarm must carry a
    /// `libp2p_stream::Behaviour`). Call inside a tokio runtime.
    pub fn new(
        store: FileStore,
        mut control: libp2p_stream::Control,
    ) -> Result<Self, TransferError> {
        let mut incoming = control
            .accept(PROTOCOL)
            .map_err(|_| TransferError::Protocol("/tern/file/1 is served already".into()))?;
        let mut service = Self::fetcher(store, control);
        let accept_shared = service.shared.clone();
        let accept = tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = transfer::serve(shared, peer, stream).await {
                        debug!(%peer, "file stream ended: {e}");
                    }
                });
            }
        });
        service.accept = Some(accept);
        Ok(service)
    }

    /// A service that fetches into `store` and serves nothing itself (the node's own service serves its
    /// files, [`Self::serve_also`]): what a mailbox node holds for others is fetched with one.
    pub fn fetcher(store: FileStore, control: libp2p_stream::Control) -> Self {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let shared = Arc::new(Shared {
            store,
            also_serve: Mutex::new(Vec::new()),
            control,
            serving: Arc::new(Semaphore::new(MAX_SERVING)),
            cancelled: Mutex::new(VecDeque::new()),
            fetching: Mutex::new(HashMap::new()),
            sent: AtomicU64::new(0),
            events,
        });
        Self {
            shared,
            accept: None,
        }
    }

    /// Serves the files of `store` too (after this service's own): the files a mailbox node holds.
    pub fn serve_also(&self, store: FileStore) {
        if let Ok(mut also) = self.shared.also_serve.lock() {
            also.push(store);
        }
    }

    pub fn store(&self) -> &FileStore {
        &self.shared.store
    }

    pub fn events(&self) -> broadcast::Receiver<TransferEvent> {
        self.shared.events.subscribe()
    }

    /// Piece bytes this service has written to receivers.
    pub fn bytes_sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Encrypts the file at `path` under a fresh key into the store, ready to be served.
    pub async fn add(&self, path: &Path) -> Result<AddedFile, FilesError> {
        let size = tokio::fs::metadata(path).await?.len();
        if size > MAX_FILE_SIZE {
            return Err(FilesError::TooLarge {
                size,
                max: MAX_FILE_SIZE,
            });
        }
        // The thread's generator is not `Send`: it is gone before the first await, so this future is.
        let (key, tmp_name) = {
            let mut rng = rand::rng();
            (FileKey::random(&mut rng), rand::Rng::next_u64(&mut rng))
        };
        let store = self.shared.store.clone();
        let path = path.to_path_buf();
        let import_key = key.clone();
        let (hash, layout) =
            tokio::task::spawn_blocking(move || store.import(&path, &import_key, tmp_name))
                .await
                .map_err(|_| FilesError::Corrupt("the import task stopped"))??;
        Ok(AddedFile {
            key,
            hash,
            size: layout.size(),
        })
    }

    /// Encrypts `bytes` (a picture stripped of its metadata, say) under a fresh key into the store.
    pub async fn add_bytes(&self, bytes: Vec<u8>) -> Result<AddedFile, FilesError> {
        let size = bytes.len() as u64;
        if size > MAX_FILE_SIZE {
            return Err(FilesError::TooLarge {
                size,
                max: MAX_FILE_SIZE,
            });
        }
        // The thread's generator is not `Send`: it is gone before the first await, so this future is.
        let (key, tmp_name) = {
            let mut rng = rand::rng();
            (FileKey::random(&mut rng), rand::Rng::next_u64(&mut rng))
        };
        let store = self.shared.store.clone();
        let import_key = key.clone();
        let (hash, layout) = tokio::task::spawn_blocking(move || {
            store.import_from(std::io::Cursor::new(bytes), size, &import_key, tmp_name)
        })
        .await
        .map_err(|_| FilesError::Corrupt("the import task stopped"))??;
        Ok(AddedFile {
            key,
            hash,
            size: layout.size(),
        })
    }

    /// Fetches the file `hash` of `size` plaintext bytes from `peer`, resuming from what is on disk, until
    /// every group is verified. Pieces that do not verify are refused and asked for again.
    pub async fn fetch(
        &self,
        peer: PeerId,
        hash: FileHash,
        size: u64,
    ) -> Result<FetchReport, TransferError> {
        let layout = FileLayout::new(size).map_err(FilesError::from)?;
        let (mut cancel_rx, running, keep) = {
            let mut fetching = self
                .shared
                .fetching
                .lock()
                .map_err(|_| FilesError::Corrupt("poisoned"))?;
            if fetching.contains_key(&hash) {
                return Err(TransferError::AlreadyFetching);
            }
            if fetching.len() >= MAX_FETCHING {
                return Err(TransferError::TooManyTransfers { max: MAX_FETCHING });
            }
            let (cancel, cancel_rx) = watch::channel(false);
            let running = Arc::new(tokio::sync::Mutex::new(()));
            let keep = Arc::new(std::sync::atomic::AtomicBool::new(false));
            fetching.insert(
                hash,
                Fetching {
                    cancel,
                    keep: keep.clone(),
                    running: running.clone(),
                },
            );
            (cancel_rx, running, keep)
        };
        let _running = running.lock_owned().await;
        let result = tokio::select! {
            biased;
            _ = cancel_rx.wait_for(|c| *c) => Err(TransferError::Cancelled),
            result = self.fetch_rounds(peer, hash, layout) => result,
        };
        if let Ok(mut fetching) = self.shared.fetching.lock() {
            fetching.remove(&hash);
        }
        if matches!(result, Err(TransferError::Cancelled)) {
            if keep.load(Ordering::SeqCst) {
                return Err(TransferError::Paused);
            }
            self.remove(hash).await?;
        }
        result
    }

    /// Stops fetching `hash` but keeps what was received (a later fetch resumes from it). Returns once the
    /// fetch has ended (with [`TransferError::Paused`]); a no-op if none runs.
    pub async fn pause_fetch(&self, hash: FileHash) -> Result<(), FilesError> {
        let running = {
            let fetching = self
                .shared
                .fetching
                .lock()
                .map_err(|_| FilesError::Corrupt("poisoned"))?;
            fetching.get(&hash).map(|f| {
                f.keep.store(true, Ordering::SeqCst);
                let _ = f.cancel.send(true);
                f.running.clone()
            })
        };
        if let Some(running) = running {
            let _done = running.lock().await;
        }
        Ok(())
    }

    /// Whether a fetch of `hash` runs now.
    pub fn is_fetching(&self, hash: &FileHash) -> bool {
        self.shared
            .fetching
            .lock()
            .is_ok_and(|f| f.contains_key(hash))
    }

    /// Ciphertext bytes of `hash` verified on disk (`None` if nothing of it is held). Blocking I/O.
    pub fn verified_bytes(&self, hash: &FileHash, size: u64) -> Option<u64> {
        let layout = FileLayout::new(size).ok()?;
        let entry = self.shared.store.entry(hash, layout, false).ok()?;
        Some(entry.verified_bytes())
    }

    async fn fetch_rounds(
        &self,
        peer: PeerId,
        hash: FileHash,
        layout: FileLayout,
    ) -> Result<FetchReport, TransferError> {
        let store = self.shared.store.clone();
        let entry = tokio::task::spawn_blocking(move || store.entry(&hash, layout, true))
            .await
            .map_err(|_| FilesError::Corrupt("a disk task stopped"))??;
        let total = layout.ciphertext_len();
        let entry = Arc::new(Mutex::new(entry));
        let events = self.shared.events.clone();
        let on_progress = move |verified: u64| {
            let _ = events.send(TransferEvent::Progress {
                hash,
                verified,
                total,
            });
        };
        let mut report = FetchReport::default();
        let mut failed = 0u32;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let complete = entry
                .lock()
                .map_err(|_| FilesError::Corrupt("poisoned"))?
                .is_complete();
            if complete {
                return Ok(report);
            }
            let mut round = transfer::Round::default();
            report.rounds += 1;
            let result =
                transfer::fetch_once(&self.shared, peer, &entry, &mut round, &on_progress).await;
            report.wire_bytes += round.wire_bytes;
            report.pieces += round.pieces;
            let error = match result {
                Ok(()) => {
                    failed = 0;
                    continue;
                }
                Err(TransferError::Files(FilesError::Tampered(groups, why))) => {
                    warn!(%peer, ?groups, "refused a piece that did not verify: {why}");
                    report.refused_pieces += 1;
                    let _ = self
                        .shared
                        .events
                        .send(TransferEvent::PieceRefused { hash, groups });
                    format!("a piece did not verify: {why}")
                }
                Err(
                    e @ (TransferError::Stream(_)
                    | TransferError::Protocol(_)
                    | TransferError::HolderBusy),
                ) => e.to_string(),
                Err(e) => return Err(e),
            };
            if round.pieces > 0 {
                failed = 0;
                backoff = FIRST_BACKOFF;
            }
            failed += 1;
            if failed >= MAX_FAILED_ROUNDS {
                return Err(TransferError::GaveUp {
                    rounds: failed,
                    last: error,
                });
            }
            debug!(%peer, "file round failed ({error}); retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Stops fetching `hash` (if a fetch runs, it ends with [`TransferError::Cancelled`]) and removes what
    /// was received. Returns once nothing of it is left on disk.
    pub async fn cancel_fetch(&self, hash: FileHash) -> Result<(), FilesError> {
        let running = {
            let fetching = self
                .shared
                .fetching
                .lock()
                .map_err(|_| FilesError::Corrupt("poisoned"))?;
            fetching.get(&hash).map(|f| {
                let _ = f.cancel.send(true);
                f.running.clone()
            })
        };
        if let Some(running) = running {
            let _done = running.lock().await;
        }
        self.remove(hash).await
    }

    /// Withdraws a file this node offered: receivers asking for it hear "cancelled", streams serving it end
    /// before their next piece, and its ciphertext is removed.
    pub async fn cancel_send(&self, hash: FileHash) -> Result<(), FilesError> {
        {
            let mut cancelled = self
                .shared
                .cancelled
                .lock()
                .map_err(|_| FilesError::Corrupt("poisoned"))?;
            if !cancelled.contains(&hash) {
                if cancelled.len() >= MAX_CANCELLED {
                    cancelled.pop_front();
                }
                cancelled.push_back(hash);
            }
        }
        self.remove(hash).await
    }

    async fn remove(&self, hash: FileHash) -> Result<(), FilesError> {
        let store = self.shared.store.clone();
        tokio::task::spawn_blocking(move || store.remove(&hash))
            .await
            .map_err(|_| FilesError::Corrupt("a disk task stopped"))?
    }

    /// Decrypts a complete file into memory (for a picture the app shows; the caller bounds `size`).
    pub async fn read(
        &self,
        hash: FileHash,
        size: u64,
        key: FileKey,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, FilesError> {
        let layout = FileLayout::new(size)?;
        let store = self.shared.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut out =
                zeroize::Zeroizing::new(Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
            store.open_into(&hash, layout, &key, &mut *out)?;
            Ok(out)
        })
        .await
        .map_err(|_| FilesError::Corrupt("a disk task stopped"))?
    }

    /// Decrypts a complete file into `dest`.
    pub async fn export(
        &self,
        hash: FileHash,
        size: u64,
        key: FileKey,
        dest: PathBuf,
    ) -> Result<(), FilesError> {
        let layout = FileLayout::new(size)?;
        let store = self.shared.store.clone();
        tokio::task::spawn_blocking(move || store.export(&hash, layout, &key, &dest))
            .await
            .map_err(|_| FilesError::Corrupt("a disk task stopped"))?
    }
}
