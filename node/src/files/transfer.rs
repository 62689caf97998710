//! `/tern/file/1` over one libp2p stream (docs/protocol.md §19.5): the holder's side ([`serve`]) and the
//! receiver's side ([`fetch_once`]). Disk work and hashing run on tokio's blocking pool; the stream is read
//! and written here, never on the swarm's task.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use tern_protocol::file::{
    self, FileHash, FileLayout, MAX_PIECE_LEN, MAX_REQUEST_LEN, MAX_REQUEST_RANGES, RangeRequest,
    TransferStatus,
};
use tokio::sync::mpsc;
use tracing::debug;

use super::store::Entry;
use super::{FilesError, Shared, TransferError};

/// The stream protocol.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/tern/file/1");
/// How long a holder waits for the request, and either side for the next bytes.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// A fetch makes received pieces durable (and logs them) at least every this many pieces (8 MiB): what a
/// crash can cost a resume, at most.
pub const FLUSH_EVERY_PIECES: usize = 8;
/// Pieces a holder encodes ahead of the one it is writing.
const ENCODE_AHEAD: usize = 2;

async fn timed<T>(
    what: &'static str,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, TransferError> {
    match tokio::time::timeout(IO_TIMEOUT, fut).await {
        Ok(result) => result.map_err(|e| TransferError::Stream(format!("{what}: {e}"))),
        Err(_) => Err(TransferError::Stream(format!("{what}: timed out"))),
    }
}

async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    payload: &[u8],
) -> Result<(), TransferError> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    timed("write", async {
        w.write_all(&len).await?;
        w.write_all(payload).await
    })
    .await
}

/// Reads one `u32`-length frame of at most `max` bytes (checked before the payload is read).
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    what: &'static str,
) -> Result<Vec<u8>, TransferError> {
    let mut len = [0u8; 4];
    timed(what, r.read_exact(&mut len)).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(TransferError::Protocol(format!(
            "{what} of {len} bytes, at most {max} allowed"
        )));
    }
    let mut buf = vec![0u8; len];
    timed(what, r.read_exact(&mut buf)).await?;
    Ok(buf)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| FilesError::Corrupt("a disk task stopped"))?
}

async fn refuse(mut stream: Stream, status: TransferStatus) -> Result<(), TransferError> {
    timed("write", stream.write_all(&status.head())).await?;
    let _ = stream.close().await;
    Ok(())
}

/// Answers one inbound stream: reads the request, then streams the pieces or a refusal.
pub(super) async fn serve(
    shared: Arc<Shared>,
    peer: PeerId,
    mut stream: Stream,
) -> Result<(), TransferError> {
    let payload = read_frame(&mut stream, MAX_REQUEST_LEN, "range request").await?;
    let request = match RangeRequest::decode(&payload) {
        Ok(request) => request,
        Err(e) => {
            let _ = timed("write", stream.write_all(&TransferStatus::Malformed.head())).await;
            let _ = stream.close().await;
            return Err(TransferError::Protocol(format!("from {peer}: {e}")));
        }
    };
    let hash = request.hash;
    if shared.is_cancelled(&hash) {
        return refuse(stream, TransferStatus::Cancelled).await;
    }
    let Ok(_permit) = shared.serving.clone().try_acquire_owned() else {
        debug!(%peer, "file request refused: {} transfers served already", super::MAX_SERVING);
        return refuse(stream, TransferStatus::Busy).await;
    };
    let layout = FileLayout::from_ciphertext_len(request.ciphertext_len)
        .map_err(|e| TransferError::Protocol(e.to_string()))?;
    let stores = shared.stores();
    let ranges = request.ranges.clone();
    // This node's own files first, then those it holds for others (a mailbox, §19.9).
    let entry = blocking(move || {
        for store in &stores {
            match store.entry(&hash, layout, false) {
                Ok(entry) if ranges.iter().all(|r| entry.verified().covers(r)) => {
                    return Ok(Some(entry));
                }
                Ok(_) | Err(FilesError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    })
    .await;
    let entry = match entry {
        Ok(Some(entry)) => Arc::new(entry),
        Ok(None) | Err(FilesError::NotFound) | Err(FilesError::Corrupt(_)) => {
            return refuse(stream, TransferStatus::NotFound).await;
        }
        Err(e) => return Err(e.into()),
    };
    timed("write", stream.write_all(&TransferStatus::Ok.head())).await?;

    // Encode on the blocking pool a few pieces ahead of the stream.
    let (tx, mut rx) = mpsc::channel::<Result<Vec<u8>, FilesError>>(ENCODE_AHEAD);
    let pieces = request.pieces();
    let producer_entry = entry.clone();
    let producer_shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        for piece in pieces {
            if producer_shared.is_cancelled(&hash) {
                return;
            }
            let encoded = producer_entry.encode_piece(&piece);
            let failed = encoded.is_err();
            if tx.blocking_send(encoded).is_err() || failed {
                return;
            }
        }
    });
    while let Some(encoded) = rx.recv().await {
        let encoded = encoded?;
        write_frame(&mut stream, &encoded).await?;
        shared.add_sent(encoded.len() as u64 + 4);
    }
    if shared.is_cancelled(&hash) {
        // Withdrawn while sending: end without a clean close, the receiver asks again and hears why.
        return Err(TransferError::Cancelled);
    }
    timed("close", stream.close()).await?;
    Ok(())
}

async fn piece_done(
    task: tokio::task::JoinHandle<Result<u64, FilesError>>,
    round: &mut Round,
    on_progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<(), TransferError> {
    let verified = task
        .await
        .map_err(|_| FilesError::Corrupt("a disk task stopped"))??;
    round.pieces += 1;
    on_progress(verified);
    Ok(())
}

/// What one round against one holder achieved.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Round {
    /// Bytes read off the stream.
    pub wire_bytes: u64,
    pub pieces: u64,
}

/// One round: asks `peer` for the groups `entry` lacks and writes each piece that verifies.
///
/// The entry is shared with the blocking pool through a mutex; the caller holds no lock across awaits.
pub(super) async fn fetch_once(
    shared: &Arc<Shared>,
    peer: PeerId,
    entry: &Arc<Mutex<Entry>>,
    round: &mut Round,
    on_progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<(), TransferError> {
    let (hash, layout, missing) = {
        let entry = entry.lock().map_err(|_| FilesError::Corrupt("poisoned"))?;
        (
            entry.hash(),
            entry.layout(),
            entry.verified().missing(MAX_REQUEST_RANGES),
        )
    };
    if missing.is_empty() {
        return Ok(());
    }
    let request = RangeRequest {
        hash,
        ciphertext_len: layout.ciphertext_len(),
        ranges: missing,
    };
    let mut control = shared.control.clone();
    let mut stream = tokio::time::timeout(IO_TIMEOUT, control.open_stream(peer, PROTOCOL))
        .await
        .map_err(|_| TransferError::Stream("opening a stream timed out".into()))?
        .map_err(|e| TransferError::Stream(e.to_string()))?;
    let payload = request
        .encode()
        .map_err(|e| TransferError::Protocol(e.to_string()))?;
    write_frame(&mut stream, &payload).await?;
    let mut head = [0u8; 2];
    timed("response", stream.read_exact(&mut head)).await?;
    match TransferStatus::decode_head(head).map_err(|e| TransferError::Protocol(e.to_string()))? {
        TransferStatus::Ok => {}
        TransferStatus::NotFound => return Err(TransferError::NotFound),
        TransferStatus::Busy => return Err(TransferError::HolderBusy),
        TransferStatus::Cancelled => return Err(TransferError::Cancelled),
        _ => {
            return Err(TransferError::Protocol(
                "the holder refused the request".into(),
            ));
        }
    }
    let result = receive_pieces(
        &mut stream,
        hash,
        layout,
        &request,
        entry,
        round,
        on_progress,
    )
    .await;
    // Whatever happened, what was written is made durable and logged.
    let flush_entry = entry.clone();
    let flushed = blocking(move || {
        flush_entry
            .lock()
            .map_err(|_| FilesError::Corrupt("poisoned"))?
            .flush()
    })
    .await;
    result?;
    flushed?;
    Ok(())
}

async fn receive_pieces(
    stream: &mut Stream,
    hash: FileHash,
    layout: FileLayout,
    request: &RangeRequest,
    entry: &Arc<Mutex<Entry>>,
    round: &mut Round,
    on_progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<(), TransferError> {
    // One piece is verified and written on the blocking pool while the next is read off the stream; pieces
    // are still written in order, each only after it verified.
    let mut in_hand: Option<tokio::task::JoinHandle<Result<u64, FilesError>>> = None;
    let mut unflushed = 0usize;
    for groups in request.pieces() {
        let encoded = read_frame(stream, MAX_PIECE_LEN, "piece").await?;
        round.wire_bytes += encoded.len() as u64 + 4;
        if let Some(previous) = in_hand.take() {
            piece_done(previous, round, on_progress).await?;
        }
        let entry = entry.clone();
        let flush = unflushed + 1 >= FLUSH_EVERY_PIECES;
        unflushed = if flush { 0 } else { unflushed + 1 };
        in_hand = Some(tokio::task::spawn_blocking(move || {
            // Verified whole before anything of it is written.
            let piece = file::verify_piece(&hash, &layout, &groups, &encoded)
                .map_err(|e| FilesError::Tampered(groups.clone(), e.to_string()))?;
            let mut entry = entry.lock().map_err(|_| FilesError::Corrupt("poisoned"))?;
            entry.write_piece(groups, &piece)?;
            if flush {
                entry.flush()?;
            }
            Ok(entry.verified_bytes())
        }));
    }
    if let Some(previous) = in_hand.take() {
        piece_done(previous, round, on_progress).await?;
    }
    let mut end = [0u8; 1];
    match timed("end of response", stream.read(&mut end)).await? {
        0 => Ok(()),
        _ => Err(TransferError::Protocol("bytes after the last piece".into())),
    }
}
