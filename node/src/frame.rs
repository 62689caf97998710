//! Length-prefixed request-response framing shared by Tern's stream protocols.
//!
//! # Wire format
//!
//! Each direction of a request-response stream carries exactly one frame and then the end of the stream:
//!
//! ```text
//! frame = length (u32, big-endian) || payload (length bytes)
//! ```
//!
//! `length` is checked against the message type's [`WireMessage::MAX_LEN`] before any of the payload is read,
//! and the payload is read through `take(length)`, so an oversized frame costs the reader four bytes. A frame
//! shorter than its prefix says is [`FrameError::Truncated`]; any byte after the frame (before the sender
//! closes its half of the stream) is [`FrameError::TrailingBytes`]. The payload is then decoded by the message
//! type, which must consume all of it.
//!
//! Other protocols reuse the framing by implementing [`WireMessage`] for their messages and [`FrameProtocol`]
//! for a marker type, and then use [`FrameCodec`] with that marker.

use std::{fmt, io, marker::PhantomData};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};
use thiserror::Error;

/// The size of a frame's length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Why a message payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The payload was empty.
    #[error("empty payload")]
    Empty,
    /// The payload starts with a version this build does not speak.
    #[error("unsupported version {got}")]
    UnsupportedVersion {
        /// The version byte received.
        got: u8,
    },
    /// A tag byte names no known variant.
    #[error("unknown {field} {got}")]
    UnknownTag {
        /// Which tag was unknown.
        field: &'static str,
        /// The byte received.
        got: u8,
    },
    /// A field inside the payload is malformed (decoded with the protocol codec).
    #[error(transparent)]
    Decode(#[from] tern_protocol::DecodeError),
    /// The payload length does not match what its contents require.
    #[error("payload is {got} bytes, expected {expected}")]
    BadLength {
        /// The length the contents require.
        expected: usize,
        /// The payload length received.
        got: usize,
    },
}

/// Why a frame could not be read or written. Carried inside the [`io::Error`] that request-response codecs
/// must return; recover it with [`frame_error`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix (or the message being written) exceeds the message type's limit.
    #[error("{what} frame is {len} bytes, at most {max} allowed")]
    TooLarge {
        /// The message type.
        what: &'static str,
        /// The announced (or attempted) length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside the frame.
    #[error("{what} frame truncated: expected {expected} bytes, got {got}")]
    Truncated {
        /// The message type.
        what: &'static str,
        /// The bytes the prefix (or the prefix itself) required.
        expected: usize,
        /// The bytes actually received.
        got: usize,
    },
    /// More bytes followed the frame on the stream.
    #[error("trailing bytes after the {what} frame")]
    TrailingBytes {
        /// The message type.
        what: &'static str,
    },
    /// The payload did not decode as the message type.
    #[error("malformed {what}: {source}")]
    Malformed {
        /// The message type.
        what: &'static str,
        /// What was wrong with it.
        #[source]
        source: MessageError,
    },
}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> Self {
        let kind = match e {
            FrameError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// The [`FrameError`] inside an I/O error returned by the framing functions, if there is one.
pub fn frame_error(e: &io::Error) -> Option<&FrameError> {
    e.get_ref()?.downcast_ref::<FrameError>()
}

/// A message that travels as one frame.
pub trait WireMessage: Sized + Send + Sync + 'static {
    /// A short name for errors and logs.
    const NAME: &'static str;
    /// The largest payload accepted, in bytes (the length prefix not included).
    const MAX_LEN: usize;

    /// Appends the payload to `out`.
    fn encode_into(&self, out: &mut Vec<u8>);

    /// Decodes a whole payload; bytes left over are an error.
    fn decode(payload: &[u8]) -> Result<Self, MessageError>;

    /// The value an inbound *request* that could not be read turns into, if the type has one. Returning
    /// `Some` hands the failure to the event loop as an ordinary request (request-response itself would drop
    /// the stream without saying which peer sent it), so the loop can refuse it and disconnect the sender.
    fn invalid(_error: &FrameError) -> Option<Self> {
        None
    }
}

/// Encodes `msg` as one frame: the length prefix and the payload.
pub fn encode_frame<M: WireMessage>(msg: &M) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; LENGTH_PREFIX_LEN];
    msg.encode_into(&mut out);
    let len = out.len() - LENGTH_PREFIX_LEN;
    let too_large = FrameError::TooLarge {
        what: M::NAME,
        len,
        max: M::MAX_LEN,
    };
    if len > M::MAX_LEN {
        return Err(too_large);
    }
    let prefix = u32::try_from(len).map_err(|_| too_large)?.to_be_bytes();
    out[..LENGTH_PREFIX_LEN].copy_from_slice(&prefix);
    Ok(out)
}

/// Decodes a buffer holding exactly one frame.
pub fn decode_frame<M: WireMessage>(bytes: &[u8]) -> Result<M, FrameError> {
    let Some((prefix, rest)) = bytes.split_first_chunk::<LENGTH_PREFIX_LEN>() else {
        return Err(FrameError::Truncated {
            what: M::NAME,
            expected: LENGTH_PREFIX_LEN,
            got: bytes.len(),
        });
    };
    let len = checked_len::<M>(*prefix)?;
    match rest.len() {
        got if got < len => Err(FrameError::Truncated {
            what: M::NAME,
            expected: len,
            got,
        }),
        got if got > len => Err(FrameError::TrailingBytes { what: M::NAME }),
        _ => decode_payload(rest),
    }
}

fn checked_len<M: WireMessage>(prefix: [u8; LENGTH_PREFIX_LEN]) -> Result<usize, FrameError> {
    let announced = u32::from_be_bytes(prefix);
    let too_large = FrameError::TooLarge {
        what: M::NAME,
        len: usize::try_from(announced).unwrap_or(usize::MAX),
        max: M::MAX_LEN,
    };
    match usize::try_from(announced) {
        Ok(len) if len <= M::MAX_LEN => Ok(len),
        _ => Err(too_large),
    }
}

fn decode_payload<M: WireMessage>(payload: &[u8]) -> Result<M, FrameError> {
    M::decode(payload).map_err(|source| FrameError::Malformed {
        what: M::NAME,
        source,
    })
}

/// Reads one frame and then the end of the stream.
///
/// At most [`LENGTH_PREFIX_LEN`] + `M::MAX_LEN` + 1 bytes are read. Framing and decoding errors are
/// [`FrameError`]s inside the returned [`io::Error`].
pub async fn read_frame<M, T>(io: &mut T) -> io::Result<M>
where
    M: WireMessage,
    T: AsyncRead + Unpin,
{
    let mut prefix = Vec::with_capacity(LENGTH_PREFIX_LEN);
    read_up_to(io, LENGTH_PREFIX_LEN, &mut prefix).await?;
    let Ok(prefix) = <[u8; LENGTH_PREFIX_LEN]>::try_from(prefix.as_slice()) else {
        return Err(FrameError::Truncated {
            what: M::NAME,
            expected: LENGTH_PREFIX_LEN,
            got: prefix.len(),
        }
        .into());
    };
    let len = checked_len::<M>(prefix)?;

    let mut payload = Vec::with_capacity(len);
    read_up_to(io, len, &mut payload).await?;
    if payload.len() < len {
        return Err(FrameError::Truncated {
            what: M::NAME,
            expected: len,
            got: payload.len(),
        }
        .into());
    }

    let mut extra = [0u8; 1];
    if io.read(&mut extra).await? != 0 {
        return Err(FrameError::TrailingBytes { what: M::NAME }.into());
    }
    Ok(decode_payload(&payload)?)
}

async fn read_up_to<T: AsyncRead + Unpin>(
    io: &mut T,
    limit: usize,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    (&mut *io).take(limit).read_to_end(buf).await?;
    Ok(())
}

/// Writes one frame and flushes. Refuses a message over `M::MAX_LEN` before writing anything.
pub async fn write_frame<M, T>(io: &mut T, msg: &M) -> io::Result<()>
where
    M: WireMessage,
    T: AsyncWrite + Unpin,
{
    let frame = encode_frame(msg)?;
    io.write_all(&frame).await?;
    io.flush().await
}

/// A request-response protocol built on this framing: a name and its two message types.
pub trait FrameProtocol: Send + 'static {
    /// The protocol name negotiated on the stream.
    const PROTOCOL: StreamProtocol;
    /// The request message.
    type Request: WireMessage;
    /// The response message.
    type Response: WireMessage;
}

/// A [`request_response::Codec`] for any [`FrameProtocol`].
pub struct FrameCodec<P>(PhantomData<fn() -> P>);

impl<P> FrameCodec<P> {
    /// A new codec.
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<P> Default for FrameCodec<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Clone for FrameCodec<P> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<P> fmt::Debug for FrameCodec<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FrameCodec")
    }
}

impl<P: FrameProtocol> request_response::Codec for FrameCodec<P> {
    type Protocol = StreamProtocol;
    type Request = P::Request;
    type Response = P::Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<P::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_frame(io).await {
            Err(e) => match frame_error(&e).and_then(P::Request::invalid) {
                Some(invalid) => Ok(invalid),
                None => Err(e),
            },
            ok => ok,
        }
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<P::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: P::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: P::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}
