//! `/tern/file-hold/1` (docs/protocol.md §19.9): files held by mailbox servers for recipients who are offline.
//!
//! - The sender's side, [`FileService::ask_hold`]: "hold this hash", then wait while the holder fetches it.
//! - The holder's side, [`FileHolder`]: it checks the size against [`HoldLimits`], fetches the file from the
//!   asker over `/tern/file/1` with the same [`FileService`] that then serves it to anyone who asks by hash,
//!   and deletes it [`HoldLimits::keep_for`] after it was last asked to hold it. It sees ciphertext and a hash
//!   only, and never learns who the file is for.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use tern_protocol::file::{
    FileHash, FileLayout, HOLD_ANSWER_LEN, HOLD_REQUEST_LEN, HoldAnswer, HoldRequest,
};
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::transfer::IO_TIMEOUT;
use super::{FileService, FileStore, TransferError};

/// The stream protocol.
pub const HOLD_PROTOCOL: StreamProtocol = StreamProtocol::new("/tern/file-hold/1");
/// How long an asker waits for the holder's final answer: the holder's whole fetch.
pub const HOLD_WAIT: Duration = Duration::from_secs(60 * 60);
/// Files a holder fetches at once; past it, it answers busy.
pub const MAX_HOLDING: usize = 4;

/// What a holder takes. The defaults are `tern-bootstrap`'s (docs/bootstrap.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLimits {
    /// The largest file held, in ciphertext bytes.
    pub max_file_bytes: u64,
    /// All files held together, in ciphertext bytes.
    pub quota_bytes: u64,
    /// A file is deleted this long after it was last asked to hold it (as long as mail is kept).
    pub keep_for: Duration,
}

impl Default for HoldLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 128 * 1024 * 1024,
            quota_bytes: 4 * 1024 * 1024 * 1024,
            keep_for: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// Why a mailbox server does not hold a file, in words a user can act on.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HoldError {
    #[error("the mailbox holds files of at most {max} bytes, and this one is {len} bytes")]
    TooLarge { len: u64, max: u64 },
    #[error("the mailbox has no room for this file ({len} bytes; {free} bytes are free)")]
    QuotaFull { len: u64, free: u64 },
    #[error("the mailbox is busy with other files; it is asked again later")]
    Busy,
    #[error("the mailbox does not hold files")]
    NotOffered,
    #[error("the mailbox could not fetch the file from this computer")]
    Failed,
    #[error("the mailbox did not understand the request")]
    Malformed,
    #[error("the connection to the mailbox failed: {0}")]
    Stream(String),
    #[error("the mailbox answered something this version does not understand: {0}")]
    Protocol(String),
}

impl HoldError {
    fn of(answer: HoldAnswer, len: u64) -> Self {
        match answer {
            HoldAnswer::TooLarge { max } => Self::TooLarge { len, max },
            HoldAnswer::QuotaFull { free } => Self::QuotaFull { len, free },
            HoldAnswer::Busy => Self::Busy,
            HoldAnswer::NotOffered => Self::NotOffered,
            HoldAnswer::Malformed => Self::Malformed,
            HoldAnswer::Failed => Self::Failed,
            other => Self::Protocol(format!("{other:?} where a final answer belongs")),
        }
    }
}

async fn timed<T>(
    wait: Duration,
    what: &'static str,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, HoldError> {
    match tokio::time::timeout(wait, fut).await {
        Ok(result) => result.map_err(|e| HoldError::Stream(format!("{what}: {e}"))),
        Err(_) => Err(HoldError::Stream(format!("{what}: timed out"))),
    }
}

async fn read_answer(stream: &mut Stream, wait: Duration) -> Result<HoldAnswer, HoldError> {
    let mut bytes = [0u8; HOLD_ANSWER_LEN];
    timed(wait, "answer", stream.read_exact(&mut bytes)).await?;
    HoldAnswer::decode(&bytes).map_err(|e| HoldError::Protocol(e.to_string()))
}

impl FileService {
    /// Asks `holder` to hold the file `hash` of `size` plaintext bytes (this service must hold it whole, and
    /// goes on serving it while the holder fetches). Returns how long the holder keeps it.
    pub async fn ask_hold(
        &self,
        holder: PeerId,
        hash: FileHash,
        size: u64,
    ) -> Result<Duration, HoldError> {
        let layout = FileLayout::new(size).map_err(|e| HoldError::Protocol(e.to_string()))?;
        let len = layout.ciphertext_len();
        let mut control = self.shared.control.clone();
        let mut stream = match tokio::time::timeout(
            IO_TIMEOUT,
            control.open_stream(holder, HOLD_PROTOCOL),
        )
        .await
        {
            Err(_) => return Err(HoldError::Stream("opening a stream timed out".into())),
            Ok(Err(libp2p_stream::OpenStreamError::UnsupportedProtocol(_))) => {
                return Err(HoldError::NotOffered);
            }
            Ok(Err(e)) => return Err(HoldError::Stream(e.to_string())),
            Ok(Ok(stream)) => stream,
        };
        let request = HoldRequest {
            hash,
            ciphertext_len: len,
        };
        timed(IO_TIMEOUT, "request", async {
            stream.write_all(&request.encode()).await?;
            stream.flush().await
        })
        .await?;
        let mut answer = read_answer(&mut stream, IO_TIMEOUT).await?;
        if answer == HoldAnswer::Fetching {
            answer = read_answer(&mut stream, HOLD_WAIT).await?;
        }
        let _ = stream.close().await;
        match answer {
            HoldAnswer::Held { keep_secs } => Ok(Duration::from_secs(keep_secs)),
            other => Err(HoldError::of(other, len)),
        }
    }
}

struct Holder {
    service: Arc<FileService>,
    limits: HoldLimits,
    /// Ciphertext bytes held and reserved by fetches under way.
    used: Mutex<u64>,
    fetching: Arc<Semaphore>,
}

/// A mailbox server's side of `/tern/file-hold/1`.
pub struct FileHolder {
    holder: Arc<Holder>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for FileHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHolder")
            .field("limits", &self.holder.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for FileHolder {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Each held file's hash, ciphertext length and the time it was last asked to hold it. Blocking I/O.
fn held_files(store: &FileStore) -> Vec<(FileHash, u64, SystemTime)> {
    let Ok(dir) = std::fs::read_dir(store.root()) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| {
            let hash = FileHash::from_hex(&entry.file_name().to_string_lossy())?;
            let data = std::fs::metadata(store.data_path(&hash)).ok()?;
            Some((hash, data.len(), data.modified().ok()?))
        })
        .collect()
}

impl FileHolder {
    /// Starts answering hold requests through `control`, fetching into and serving from `service`'s store.
    /// Counts what the store holds already against the quota (blocking I/O: call it at start-up).
    pub fn start(
        service: Arc<FileService>,
        mut control: libp2p_stream::Control,
        limits: HoldLimits,
    ) -> Result<Self, TransferError> {
        let used = held_files(service.store())
            .iter()
            .map(|(_, len, _)| len)
            .sum();
        let mut incoming = control
            .accept(HOLD_PROTOCOL)
            .map_err(|_| TransferError::Protocol("/tern/file-hold/1 is served already".into()))?;
        let holder = Arc::new(Holder {
            service,
            limits,
            used: Mutex::new(used),
            fetching: Arc::new(Semaphore::new(MAX_HOLDING)),
        });
        let accept_holder = holder.clone();
        let accept = tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                let holder = accept_holder.clone();
                tokio::spawn(async move {
                    if let Err(e) = holder.answer(peer, stream).await {
                        debug!(%peer, "hold stream ended: {e}");
                    }
                });
            }
        });
        Ok(Self { holder, accept })
    }

    /// Ciphertext bytes held (and reserved by fetches under way).
    pub fn held_bytes(&self) -> u64 {
        self.holder.used.lock().map_or(0, |u| *u)
    }

    /// Deletes the files not asked for within [`HoldLimits::keep_for`] of `now` (a fetch under way keeps
    /// writing its file, so it is never this old). Returns how many were deleted. Blocking I/O.
    pub fn sweep(&self, now: SystemTime) -> usize {
        let store = self.holder.service.store();
        let mut deleted = 0;
        for (hash, len, touched) in held_files(store) {
            let expired = now
                .duration_since(touched)
                .is_ok_and(|age| age > self.holder.limits.keep_for);
            if !expired || self.holder.service.is_fetching(&hash) {
                continue;
            }
            match store.remove(&hash) {
                Ok(()) => {
                    deleted += 1;
                    self.holder.release(len);
                }
                Err(e) => warn!(%hash, "cannot delete an expired file: {e}"),
            }
        }
        deleted
    }
}

impl Holder {
    fn release(&self, len: u64) {
        if let Ok(mut used) = self.used.lock() {
            *used = used.saturating_sub(len);
        }
    }

    /// Reserves `len` bytes of the quota, or says how many are free.
    fn reserve(&self, len: u64) -> Result<(), HoldAnswer> {
        let mut used = self.used.lock().map_err(|_| HoldAnswer::Busy)?;
        let free = self.limits.quota_bytes.saturating_sub(*used);
        if len > free {
            return Err(HoldAnswer::QuotaFull { free });
        }
        *used += len;
        Ok(())
    }

    async fn send(stream: &mut Stream, answer: HoldAnswer) -> Result<(), HoldError> {
        timed(IO_TIMEOUT, "answer", async {
            stream.write_all(&answer.encode()).await?;
            stream.flush().await
        })
        .await
    }

    /// Marks a held file as asked for now (its time to live starts again). Blocking I/O.
    fn touch(store: &FileStore, hash: &FileHash) {
        let touched = std::fs::File::options()
            .append(true)
            .open(store.data_path(hash))
            .and_then(|f| f.set_modified(SystemTime::now()));
        if let Err(e) = touched {
            warn!(%hash, "cannot renew a held file's time: {e}");
        }
    }

    async fn answer(&self, peer: PeerId, mut stream: Stream) -> Result<(), HoldError> {
        let mut bytes = [0u8; HOLD_REQUEST_LEN];
        timed(IO_TIMEOUT, "request", stream.read_exact(&mut bytes)).await?;
        let request = match HoldRequest::decode(&bytes) {
            Ok(request) => request,
            Err(e) => {
                Self::send(&mut stream, HoldAnswer::Malformed).await?;
                return Err(HoldError::Protocol(e.to_string()));
            }
        };
        let answer = self.hold(peer, request, &mut stream).await;
        Self::send(&mut stream, answer).await?;
        let _ = stream.close().await;
        Ok(())
    }

    /// Checks the request against the limits, fetches the file from `peer` (telling it first), and returns
    /// the final answer.
    async fn hold(&self, peer: PeerId, request: HoldRequest, stream: &mut Stream) -> HoldAnswer {
        let (hash, len) = (request.hash, request.ciphertext_len);
        let keep_secs = self.limits.keep_for.as_secs();
        if len > self.limits.max_file_bytes {
            return HoldAnswer::TooLarge {
                max: self.limits.max_file_bytes,
            };
        }
        let Ok(layout) = FileLayout::from_ciphertext_len(len) else {
            return HoldAnswer::Malformed;
        };
        let store = self.service.store().clone();
        let complete = tokio::task::spawn_blocking(move || {
            let complete = store
                .entry(&hash, layout, false)
                .is_ok_and(|e| e.is_complete());
            if complete {
                Self::touch(&store, &hash);
            }
            complete
        })
        .await
        .unwrap_or(false);
        if complete {
            return HoldAnswer::Held { keep_secs };
        }
        let Ok(_permit) = self.fetching.clone().try_acquire_owned() else {
            return HoldAnswer::Busy;
        };
        if self.service.is_fetching(&hash) {
            return HoldAnswer::Busy;
        }
        if let Err(full) = self.reserve(len) {
            return full;
        }
        if Self::send(stream, HoldAnswer::Fetching).await.is_err() {
            self.release(len);
            return HoldAnswer::Failed;
        }
        match self.service.fetch(peer, hash, layout.size()).await {
            Ok(report) => {
                info!(%hash, bytes = report.wire_bytes, "holding a file");
                let store = self.service.store().clone();
                let _ = tokio::task::spawn_blocking(move || Self::touch(&store, &hash)).await;
                HoldAnswer::Held { keep_secs }
            }
            Err(e) => {
                debug!(%peer, %hash, "cannot fetch a file to hold: {e}");
                if let Err(e) = self.service.cancel_fetch(hash).await {
                    warn!(%hash, "cannot remove a file that was not fetched whole: {e}");
                }
                self.release(len);
                HoldAnswer::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_protocol::file::FileKey;

    #[tokio::test]
    async fn held_files_count_against_the_quota_and_go_when_their_time_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let key = FileKey::from_bytes([3; 32]);
        let plain = vec![7u8; 100_000];
        let (hash, layout) = store
            .import_from(&plain[..], plain.len() as u64, &key, 1)
            .unwrap();
        let mut control = libp2p_stream::Behaviour::new().new_control();
        let service = Arc::new(FileService::new(store.clone(), control.clone()).unwrap());
        let limits = HoldLimits {
            keep_for: Duration::from_secs(3600),
            ..HoldLimits::default()
        };
        let holder = FileHolder::start(service, control.clone(), limits).unwrap();
        // What was on disk at start counts; the protocol is taken.
        assert_eq!(holder.held_bytes(), layout.ciphertext_len());
        assert!(control.accept(HOLD_PROTOCOL).is_err());

        // Within its time it stays; past it, it goes and its bytes are free again.
        let now = SystemTime::now();
        assert_eq!(holder.sweep(now + Duration::from_secs(3500)), 0);
        assert!(store.contains(&hash));
        assert_eq!(holder.sweep(now + Duration::from_secs(3700)), 1);
        assert!(!store.contains(&hash));
        assert_eq!(holder.held_bytes(), 0);

        // The reservation is bounded by the quota and says how much is free.
        let small = HoldLimits {
            quota_bytes: 1000,
            ..limits
        };
        let h = Holder {
            service: holder.holder.service.clone(),
            limits: small,
            used: Mutex::new(400),
            fetching: Arc::new(Semaphore::new(1)),
        };
        assert_eq!(h.reserve(601), Err(HoldAnswer::QuotaFull { free: 600 }));
        assert_eq!(h.reserve(600), Ok(()));
        assert_eq!(h.reserve(1), Err(HoldAnswer::QuotaFull { free: 0 }));
        h.release(1000);
        assert_eq!(h.reserve(1000), Ok(()));
    }
}
