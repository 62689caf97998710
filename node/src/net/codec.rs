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
//! The `/tern/envelope/1` protocol ([`EnvelopeProtocol`]) carries one encoded envelope (opaque here, at most
//! [`MAX_ENVELOPE_LEN`] bytes) as the request and an [`EnvelopeAck`] as the response:
//!
//! ```text
//! ack = version (0x01) || 0x00                 Accepted
//!     | version (0x01) || 0x01                 Duplicate
//!     | version (0x01) || 0x02 || reason (u8)  Rejected, reason from RejectReason
//! ```
//!
//! Other protocols reuse the framing by implementing [`WireMessage`] for their messages and [`FrameProtocol`]
//! for a marker type, and then use [`FrameCodec`] with that marker.

use std::{fmt, io, marker::PhantomData};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};
use tern_protocol::envelope::MAX_ENVELOPE_LEN;
use thiserror::Error;

/// The size of a frame's length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The envelope delivery protocol.
pub const ENVELOPE_PROTOCOL: StreamProtocol = StreamProtocol::new("/tern/envelope/1");

/// The version byte that starts an [`EnvelopeAck`].
pub const ACK_VERSION: u8 = 1;

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

/// The `/tern/envelope/1` protocol: an envelope in, an [`EnvelopeAck`] out.
#[derive(Debug, Clone, Copy)]
pub enum EnvelopeProtocol {}

impl FrameProtocol for EnvelopeProtocol {
    const PROTOCOL: StreamProtocol = ENVELOPE_PROTOCOL;
    type Request = EnvelopeRequest;
    type Response = EnvelopeAck;
}

/// The codec for `/tern/envelope/1`.
pub type EnvelopeCodec = FrameCodec<EnvelopeProtocol>;

/// One encoded envelope, opaque to the transport, between 1 and [`MAX_ENVELOPE_LEN`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvelopeRequest(Vec<u8>);

impl EnvelopeRequest {
    /// Wraps an encoded envelope, refusing an empty or oversized one.
    pub fn new(bytes: Vec<u8>) -> Result<Self, FrameError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(FrameError::TooLarge {
                what: Self::NAME,
                len: bytes.len(),
                max: MAX_ENVELOPE_LEN,
            });
        }
        if bytes.is_empty() {
            return Err(FrameError::Malformed {
                what: Self::NAME,
                source: MessageError::Empty,
            });
        }
        Ok(Self(bytes))
    }

    /// Wraps an envelope's encoding.
    pub fn from_envelope(envelope: &tern_protocol::Envelope) -> Result<Self, FrameError> {
        Self::new(envelope.encode())
    }

    /// The encoded envelope.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The encoded envelope, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for EnvelopeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeRequest")
            .field("len", &self.0.len())
            .finish()
    }
}

impl WireMessage for EnvelopeRequest {
    const NAME: &'static str = "envelope";
    const MAX_LEN: usize = MAX_ENVELOPE_LEN;

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }

    fn decode(payload: &[u8]) -> Result<Self, MessageError> {
        if payload.is_empty() {
            return Err(MessageError::Empty);
        }
        if payload.len() > MAX_ENVELOPE_LEN {
            return Err(MessageError::BadLength {
                expected: MAX_ENVELOPE_LEN,
                got: payload.len(),
            });
        }
        Ok(Self(payload.to_vec()))
    }
}

/// Why a peer refused an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The bytes are not a well-formed envelope.
    Malformed = 1,
    /// The envelope's expiry has passed.
    Expired = 2,
    /// The envelope is addressed to a mailbox this peer does not serve.
    UnknownMailbox = 3,
    /// The mailbox is full.
    QuotaExceeded = 4,
    /// The sender is sending too fast.
    RateLimited = 5,
    /// The receiver failed to store the envelope.
    Internal = 6,
}

impl RejectReason {
    /// The reason's wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A stable lower-case name, for counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Expired => "expired",
            Self::UnknownMailbox => "unknown_mailbox",
            Self::QuotaExceeded => "quota_exceeded",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
        }
    }

    /// The reason for a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Malformed,
            2 => Self::Expired,
            3 => Self::UnknownMailbox,
            4 => Self::QuotaExceeded,
            5 => Self::RateLimited,
            6 => Self::Internal,
            _ => return None,
        })
    }
}

/// The answer to an [`EnvelopeRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeAck {
    /// The envelope was taken.
    Accepted,
    /// The envelope was already held; nothing changed.
    Duplicate,
    /// The envelope was refused.
    Rejected(RejectReason),
}

const TAG_ACCEPTED: u8 = 0;
const TAG_DUPLICATE: u8 = 1;
const TAG_REJECTED: u8 = 2;

impl WireMessage for EnvelopeAck {
    const NAME: &'static str = "envelope ack";
    const MAX_LEN: usize = 3;

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(ACK_VERSION);
        match self {
            Self::Accepted => out.push(TAG_ACCEPTED),
            Self::Duplicate => out.push(TAG_DUPLICATE),
            Self::Rejected(reason) => out.extend_from_slice(&[TAG_REJECTED, reason.code()]),
        }
    }

    fn decode(payload: &[u8]) -> Result<Self, MessageError> {
        let (version, rest) = payload.split_first().ok_or(MessageError::Empty)?;
        if *version != ACK_VERSION {
            return Err(MessageError::UnsupportedVersion { got: *version });
        }
        let bad_length = |expected| MessageError::BadLength {
            expected,
            got: payload.len(),
        };
        match rest {
            [TAG_ACCEPTED] => Ok(Self::Accepted),
            [TAG_DUPLICATE] => Ok(Self::Duplicate),
            [TAG_REJECTED, code] => {
                RejectReason::from_code(*code)
                    .map(Self::Rejected)
                    .ok_or(MessageError::UnknownTag {
                        field: "reject reason",
                        got: *code,
                    })
            }
            [TAG_ACCEPTED | TAG_DUPLICATE, ..] => Err(bad_length(2)),
            [TAG_REJECTED, ..] => Err(bad_length(3)),
            [tag, ..] => Err(MessageError::UnknownTag {
                field: "ack tag",
                got: *tag,
            }),
            [] => Err(bad_length(2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::{executor::block_on, io::Cursor};

    use super::*;

    fn read<M: WireMessage>(bytes: Vec<u8>) -> Result<M, FrameError> {
        block_on(read_frame::<M, _>(&mut Cursor::new(bytes)))
            .map_err(|e| frame_error(&e).cloned().expect("a frame error"))
    }

    fn prefix(len: u32) -> Vec<u8> {
        len.to_be_bytes().to_vec()
    }

    #[test]
    fn envelope_request_round_trips_at_the_limit() {
        let req = EnvelopeRequest::new(vec![7; MAX_ENVELOPE_LEN]).unwrap();
        let frame = encode_frame(&req).unwrap();
        assert_eq!(frame.len(), LENGTH_PREFIX_LEN + MAX_ENVELOPE_LEN);
        assert_eq!(read::<EnvelopeRequest>(frame.clone()).unwrap(), req);
        assert_eq!(decode_frame::<EnvelopeRequest>(&frame).unwrap(), req);
    }

    #[test]
    fn acks_round_trip_and_match_the_documented_bytes() {
        let cases = [
            (EnvelopeAck::Accepted, vec![1, 0]),
            (EnvelopeAck::Duplicate, vec![1, 1]),
            (
                EnvelopeAck::Rejected(RejectReason::Malformed),
                vec![1, 2, 1],
            ),
            (EnvelopeAck::Rejected(RejectReason::Internal), vec![1, 2, 6]),
        ];
        for (ack, payload) in cases {
            let frame = encode_frame(&ack).unwrap();
            assert_eq!(frame[..4], prefix(payload.len() as u32)[..]);
            assert_eq!(frame[4..], payload[..]);
            assert_eq!(read::<EnvelopeAck>(frame).unwrap(), ack);
        }
        for code in 1..=6 {
            let reason = RejectReason::from_code(code).unwrap();
            assert_eq!(reason.code(), code);
        }
        assert_eq!(RejectReason::from_code(0), None);
        assert_eq!(RejectReason::from_code(7), None);
    }

    #[test]
    fn oversized_request_cannot_be_built() {
        assert!(matches!(
            EnvelopeRequest::new(vec![0; MAX_ENVELOPE_LEN + 1]),
            Err(FrameError::TooLarge { len, max, .. }) if len == MAX_ENVELOPE_LEN + 1 && max == MAX_ENVELOPE_LEN
        ));
        assert!(matches!(
            EnvelopeRequest::new(Vec::new()),
            Err(FrameError::Malformed {
                source: MessageError::Empty,
                ..
            })
        ));
    }

    #[test]
    fn oversized_prefix_is_refused_before_the_payload_is_read() {
        // Only ten payload bytes follow: refusing with TooLarge (not Truncated) shows the payload was not read.
        let mut bytes = prefix(MAX_ENVELOPE_LEN as u32 + 1);
        bytes.extend_from_slice(&[0; 10]);
        assert!(matches!(
            read::<EnvelopeRequest>(bytes),
            Err(FrameError::TooLarge { max, .. }) if max == MAX_ENVELOPE_LEN
        ));
        let mut huge = prefix(u32::MAX);
        huge.push(1);
        assert!(matches!(
            decode_frame::<EnvelopeRequest>(&huge),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_frames_are_errors() {
        assert_eq!(
            read::<EnvelopeRequest>(vec![0, 0]),
            Err(FrameError::Truncated {
                what: "envelope",
                expected: 4,
                got: 2
            })
        );
        let mut bytes = prefix(100);
        bytes.extend_from_slice(&[1; 60]);
        assert_eq!(
            read::<EnvelopeRequest>(bytes.clone()),
            Err(FrameError::Truncated {
                what: "envelope",
                expected: 100,
                got: 60
            })
        );
        assert!(matches!(
            decode_frame::<EnvelopeRequest>(&bytes),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(
            read::<EnvelopeAck>(Vec::new()),
            Err(FrameError::Truncated { got: 0, .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_errors() {
        let mut bytes = encode_frame(&EnvelopeAck::Accepted).unwrap();
        bytes.push(0);
        assert_eq!(
            read::<EnvelopeAck>(bytes.clone()),
            Err(FrameError::TrailingBytes {
                what: "envelope ack"
            })
        );
        assert!(matches!(
            decode_frame::<EnvelopeAck>(&bytes),
            Err(FrameError::TrailingBytes { .. })
        ));
        // Inside the frame: an Accepted ack with a spare byte.
        let mut inner = prefix(3);
        inner.extend_from_slice(&[1, 0, 0]);
        assert!(matches!(
            read::<EnvelopeAck>(inner),
            Err(FrameError::Malformed {
                source: MessageError::BadLength {
                    expected: 2,
                    got: 3
                },
                ..
            })
        ));
    }

    #[test]
    fn malformed_acks_are_typed_errors() {
        let frame = |payload: &[u8]| {
            let mut bytes = prefix(payload.len() as u32);
            bytes.extend_from_slice(payload);
            bytes
        };
        let malformed = |payload: &[u8]| match read::<EnvelopeAck>(frame(payload)) {
            Err(FrameError::Malformed { source, .. }) => source,
            other => panic!("expected a malformed ack, got {other:?}"),
        };
        assert_eq!(malformed(&[]), MessageError::Empty);
        assert_eq!(
            malformed(&[2, 0]),
            MessageError::UnsupportedVersion { got: 2 }
        );
        assert_eq!(
            malformed(&[1, 9]),
            MessageError::UnknownTag {
                field: "ack tag",
                got: 9
            }
        );
        assert_eq!(
            malformed(&[1, 2, 0]),
            MessageError::UnknownTag {
                field: "reject reason",
                got: 0
            }
        );
        assert_eq!(
            malformed(&[1, 2]),
            MessageError::BadLength {
                expected: 3,
                got: 2
            }
        );
        assert_eq!(
            malformed(&[1]),
            MessageError::BadLength {
                expected: 2,
                got: 1
            }
        );
        assert!(matches!(
            read::<EnvelopeAck>(frame(&[1, 2, 1, 1])),
            Err(FrameError::TooLarge { len: 4, max: 3, .. })
        ));
    }

    #[test]
    fn every_short_garbage_input_is_an_error_or_a_valid_ack() {
        // Exhaustive over all inputs of up to two bytes and a sample of longer ones: nothing panics.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = read::<EnvelopeAck>(vec![0, 0, 0, 2, a, b]);
                let _ = read::<EnvelopeRequest>(vec![a, b]);
                let _ = decode_frame::<EnvelopeAck>(&[0, 0, 0, 3, 1, a, b]);
            }
        }
    }

    #[test]
    fn frame_errors_survive_the_io_error_round_trip() {
        let e: io::Error = FrameError::TrailingBytes { what: "x" }.into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            frame_error(&e),
            Some(&FrameError::TrailingBytes { what: "x" })
        );
        assert_eq!(frame_error(&io::Error::other("plain")), None);
    }
}
