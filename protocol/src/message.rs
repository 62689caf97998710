//! What travels inside a session: message content with a UUIDv7 id and a kind.
//!
//! Encoding: `u8 version || id[16] || u64 sent_at_ms || u16 kind || u32 len || body[len]`. A reader that meets
//! a kind it does not know returns [`Body::Unknown`] instead of failing, so newer peers can add kinds (files,
//! groups) without breaking older ones. Kind 5 (a re-issued contact card) is such a kind:
//! 1.1 peers send it, 1.0 peers report it as unknown; kind 6 (a disappearing-message timer, 1.2) is the
//! same for 1.0 and 1.1 peers.

use std::fmt;

use rand_core::CryptoRng;
use uuid::Uuid;

use crate::codec::{self, DecodeError, Reader, Writer};
use crate::file::FileAnnouncement;
use crate::timer::TimerSetting;

/// The content format version.
pub const CONTENT_VERSION: u8 = 1;
/// Text messages are at most this many bytes of UTF-8.
pub const MAX_TEXT_LEN: usize = 32 * 1024;
/// A receipt acknowledges at most this many messages.
pub const MAX_RECEIPT_IDS: usize = 512;
/// Encoded content (any kind) is at most this long.
pub const MAX_CONTENT_LEN: usize = 48 * 1024;
const HEADER_LEN: usize = 1 + 16 + 8 + 2 + 4;

const KIND_TEXT: u16 = 1;
const KIND_DELIVERED: u16 = 2;
const KIND_READ: u16 = 3;
const KIND_TYPING: u16 = 4;
const KIND_CARD: u16 = 5;
/// A conversation's disappearing-message timer (docs/protocol.md §12.4).
pub const KIND_TIMER: u16 = 6;
/// A text that answers an earlier message of its conversation (docs/protocol.md §12.5).
pub const KIND_REPLY: u16 = 7;
/// A file offered for download (docs/protocol.md §19.4). 16: 5 is card updates, 6 to 15 are free.
pub const KIND_FILE: u16 = 16;

/// A message id: a UUIDv7 (time-ordered, random low bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A new UUIDv7 for `now_ms` with random bits from `rng`.
    pub fn new_v7<R: CryptoRng + ?Sized>(now_ms: u64, rng: &mut R) -> Self {
        let mut random = [0u8; 10];
        rng.fill_bytes(&mut random);
        Self(
            *uuid::Builder::from_unix_timestamp_millis(now_ms, &random)
                .into_uuid()
                .as_bytes(),
        )
    }

    pub fn as_uuid(&self) -> Uuid {
        Uuid::from_bytes(self.0)
    }

    /// Parses the hyphenated text form.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(|u| Self(*u.as_bytes()))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_uuid(), f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.as_uuid())
    }
}

/// A text that answers message `to` of the same conversation (kind 7): the reader shows the quoted
/// message above it.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    pub to: MessageId,
    pub text: String,
}

/// The kinds of content.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    Text(String),
    /// A text answering an earlier message.
    Reply(Reply),
    /// The listed messages reached the recipient's device.
    Delivered(Vec<MessageId>),
    /// The listed messages were read.
    Read(Vec<MessageId>),
    /// The sender started (`true`) or stopped typing.
    Typing(bool),
    /// The sender's re-issued contact card, encoded (at most [`crate::card::MAX_CARD_LEN`] bytes). The
    /// bytes are only bounded here; the receiver decodes the card and verifies its signatures.
    Card(Vec<u8>),
    /// A file: where to fetch it and how to open it.
    File(FileAnnouncement),
    /// The sender set the conversation's disappearing-message timer.
    Timer(TimerSetting),
    /// A kind this build does not know, kept for reporting.
    Unknown {
        kind: u16,
        data: Vec<u8>,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print message text.
        match self {
            Self::Text(text) => write!(f, "Text({} bytes)", text.len()),
            Self::Reply(reply) => write!(f, "Reply(to {:?}, {} bytes)", reply.to, reply.text.len()),
            Self::Delivered(ids) => f.debug_tuple("Delivered").field(ids).finish(),
            Self::Read(ids) => f.debug_tuple("Read").field(ids).finish(),
            Self::Typing(on) => f.debug_tuple("Typing").field(on).finish(),
            Self::Card(card) => write!(f, "Card({} bytes)", card.len()),
            Self::File(file) => f.debug_tuple("File").field(file).finish(),
            Self::Timer(timer) => f.debug_tuple("Timer").field(timer).finish(),
            Self::Unknown { kind, data } => write!(f, "Unknown(kind {kind}, {} bytes)", data.len()),
        }
    }
}

/// One message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub id: MessageId,
    pub sent_at_ms: u64,
    pub body: Body,
}

fn encode_ids(w: &mut Writer, ids: &[MessageId]) {
    w.u16(u16::try_from(ids.len()).unwrap_or(u16::MAX));
    for id in ids {
        w.raw(&id.0);
    }
}

fn decode_ids(data: &[u8]) -> Result<Vec<MessageId>, DecodeError> {
    let mut r = Reader::new(data);
    let count = r.count_u16("receipt ids", MAX_RECEIPT_IDS)?;
    let ids = (0..count)
        .map(|_| r.array("receipt id").map(MessageId))
        .collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok(ids)
}

/// A text body: UTF-8, at most [`MAX_TEXT_LEN`] bytes.
fn decode_text(data: &[u8]) -> Result<String, DecodeError> {
    codec::check_len("text", data.len(), MAX_TEXT_LEN)?;
    std::str::from_utf8(data)
        .map(str::to_owned)
        .map_err(|_| DecodeError::Invalid {
            field: "text",
            reason: "not UTF-8",
        })
}

fn check_card_len(len: usize) -> Result<(), DecodeError> {
    if len == 0 {
        return Err(DecodeError::Invalid {
            field: "card",
            reason: "empty",
        });
    }
    codec::check_len("card", len, crate::card::MAX_CARD_LEN)
}

impl Content {
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut body = Writer::new();
        let kind = match &self.body {
            Body::Text(text) => {
                codec::check_len("text", text.len(), MAX_TEXT_LEN)?;
                body.raw(text.as_bytes());
                KIND_TEXT
            }
            Body::Reply(reply) => {
                codec::check_len("text", reply.text.len(), MAX_TEXT_LEN)?;
                body.raw(&reply.to.0).raw(reply.text.as_bytes());
                KIND_REPLY
            }
            Body::Delivered(ids) | Body::Read(ids) => {
                codec::check_count("receipt ids", ids.len(), MAX_RECEIPT_IDS)?;
                encode_ids(&mut body, ids);
                if matches!(self.body, Body::Delivered(_)) {
                    KIND_DELIVERED
                } else {
                    KIND_READ
                }
            }
            Body::Typing(on) => {
                body.u8(u8::from(*on));
                KIND_TYPING
            }
            Body::Card(card) => {
                check_card_len(card.len())?;
                body.raw(card);
                KIND_CARD
            }
            Body::File(file) => {
                body.raw(&file.encode()?);
                KIND_FILE
            }
            Body::Timer(timer) => {
                body.raw(&timer.encode()?);
                KIND_TIMER
            }
            Body::Unknown { kind, data } => {
                body.raw(data);
                *kind
            }
        };
        codec::check_len("content", HEADER_LEN + body.len(), MAX_CONTENT_LEN)?;
        let mut w = Writer::with_capacity(HEADER_LEN + body.len());
        w.u8(CONTENT_VERSION)
            .raw(&self.id.0)
            .u64(self.sent_at_ms)
            .u16(kind)
            .bytes_u32(body.as_slice());
        Ok(w.into_vec())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, "content", MAX_CONTENT_LEN)?;
        let version = r.u8("content version")?;
        if version != CONTENT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "content",
                got: version,
                supported: CONTENT_VERSION,
            });
        }
        let id = MessageId(r.array("message id")?);
        let sent_at_ms = r.u64("sent at")?;
        let kind = r.u16("content kind")?;
        let data = r.bytes_u32("content body", MAX_CONTENT_LEN)?;
        r.finish()?;
        let body = match kind {
            KIND_TEXT => Body::Text(decode_text(data)?),
            KIND_REPLY => {
                let Some((to, text)) = data.split_first_chunk::<16>() else {
                    return Err(DecodeError::Invalid {
                        field: "reply",
                        reason: "shorter than a message id",
                    });
                };
                Body::Reply(Reply {
                    to: MessageId(*to),
                    text: decode_text(text)?,
                })
            }
            KIND_DELIVERED => Body::Delivered(decode_ids(data)?),
            KIND_READ => Body::Read(decode_ids(data)?),
            KIND_TYPING => match data {
                [0] => Body::Typing(false),
                [1] => Body::Typing(true),
                _ => {
                    return Err(DecodeError::Invalid {
                        field: "typing",
                        reason: "must be one byte, 0 or 1",
                    });
                }
            },
            KIND_CARD => {
                check_card_len(data.len())?;
                Body::Card(data.to_vec())
            }
            KIND_FILE => Body::File(FileAnnouncement::decode(data)?),
            KIND_TIMER => Body::Timer(TimerSetting::decode(data)?),
            kind => Body::Unknown {
                kind,
                data: data.to_vec(),
            },
        };
        Ok(Self {
            id,
            sent_at_ms,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn every_kind_round_trips() {
        let mut rng = ChaCha20Rng::seed_from_u64(30);
        let id = MessageId::new_v7(1_700_000_000_000, &mut rng);
        assert_eq!(id.as_uuid().get_version_num(), 7);
        for body in [
            Body::Text("héllo".into()),
            Body::Reply(Reply {
                to: MessageId([9; 16]),
                text: "sure".into(),
            }),
            Body::Reply(Reply {
                to: MessageId([9; 16]),
                text: String::new(),
            }),
            Body::Delivered(vec![id, id]),
            Body::Read(vec![]),
            Body::Typing(true),
            Body::Card(vec![1; 400]),
            Body::File(crate::file::FileAnnouncement {
                name: "a.txt".into(),
                size: 3,
                media_type: "text/plain".into(),
                key: crate::file::FileKey::from_bytes([4; 32]),
                hash: crate::file::FileHash([5; 32]),
                thumbnail: None,
            }),
            Body::Timer(TimerSetting {
                seconds: 3600,
                version: 2,
            }),
            Body::Unknown {
                kind: 999,
                data: vec![1, 2, 3],
            },
        ] {
            let content = Content {
                id,
                sent_at_ms: 5,
                body,
            };
            assert_eq!(
                Content::decode(&content.encode().unwrap()).unwrap(),
                content
            );
        }
    }

    #[test]
    fn unknown_kinds_are_reported_not_fatal() {
        let content = Content {
            id: MessageId([1; 16]),
            sent_at_ms: 0,
            body: Body::Unknown {
                kind: 0x4242,
                data: vec![7; 10],
            },
        };
        let decoded = Content::decode(&content.encode().unwrap()).unwrap();
        assert!(matches!(decoded.body, Body::Unknown { kind: 0x4242, .. }));
    }

    #[test]
    fn text_over_the_limit_is_refused_both_ways() {
        let content = Content {
            id: MessageId([1; 16]),
            sent_at_ms: 0,
            body: Body::Text("a".repeat(MAX_TEXT_LEN + 1)),
        };
        assert!(matches!(
            content.encode(),
            Err(DecodeError::TooLong { field: "text", .. })
        ));
        let mut w = Writer::new();
        w.u8(1)
            .raw(&[0; 16])
            .u64(0)
            .u16(KIND_TEXT)
            .bytes_u32(&vec![b'a'; MAX_TEXT_LEN + 1]);
        assert!(matches!(
            Content::decode(w.as_slice()),
            Err(DecodeError::TooLong { field: "text", .. })
        ));
    }

    #[test]
    fn a_reply_needs_a_whole_message_id_and_a_bounded_utf8_text() {
        let reply = |data: &[u8]| {
            let mut w = Writer::new();
            w.u8(1).raw(&[0; 16]).u64(0).u16(KIND_REPLY).bytes_u32(data);
            Content::decode(w.as_slice())
        };
        assert!(matches!(
            reply(&[7; 15]),
            Err(DecodeError::Invalid { field: "reply", .. })
        ));
        let mut bad = vec![7; 16];
        bad.push(0xff);
        assert!(matches!(
            reply(&bad),
            Err(DecodeError::Invalid { field: "text", .. })
        ));
        let mut long = vec![7; 16];
        long.extend(vec![b'a'; MAX_TEXT_LEN + 1]);
        assert!(matches!(
            reply(&long),
            Err(DecodeError::TooLong { field: "text", .. })
        ));
        let content = Content {
            id: MessageId([1; 16]),
            sent_at_ms: 0,
            body: Body::Reply(Reply {
                to: MessageId([7; 16]),
                text: "a".repeat(MAX_TEXT_LEN + 1),
            }),
        };
        assert!(matches!(
            content.encode(),
            Err(DecodeError::TooLong { field: "text", .. })
        ));
    }

    #[test]
    fn a_card_body_is_bounded_both_ways() {
        for len in [0, crate::card::MAX_CARD_LEN + 1] {
            let content = Content {
                id: MessageId([1; 16]),
                sent_at_ms: 0,
                body: Body::Card(vec![7; len]),
            };
            assert!(content.encode().is_err(), "{len} bytes encoded");
            let mut w = Writer::new();
            w.u8(1)
                .raw(&[0; 16])
                .u64(0)
                .u16(KIND_CARD)
                .bytes_u32(&vec![7; len]);
            assert!(
                Content::decode(w.as_slice()).is_err(),
                "{len} bytes decoded"
            );
        }
    }

    #[test]
    fn debug_never_shows_text() {
        let body = Body::Text("secret canary".into());
        assert!(!format!("{body:?}").contains("canary"));
    }
}
