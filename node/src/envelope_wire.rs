//! The `/tern/envelope/1` protocol ([`EnvelopeProtocol`]): one encoded envelope (opaque here, at most
//! [`MAX_ENVELOPE_LEN`] bytes) as the request, in the framing of [`crate::frame`], and an [`EnvelopeAck`] as
//! the response:
//!
//! ```text
//! ack = version (0x01) || 0x00                 Accepted
//!     | version (0x01) || 0x01                 Duplicate
//!     | version (0x01) || 0x02 || reason (u8)  Rejected, reason from RejectReason
//! ```

use std::fmt;

use libp2p::StreamProtocol;
use tern_protocol::envelope::MAX_ENVELOPE_LEN;

pub use crate::frame::*;

/// The envelope delivery protocol.
pub const ENVELOPE_PROTOCOL: StreamProtocol = StreamProtocol::new("/tern/envelope/1");

/// The version byte that starts an [`EnvelopeAck`].
pub const ACK_VERSION: u8 = 1;

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
    use std::io;

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
