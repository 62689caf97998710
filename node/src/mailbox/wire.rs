//! `/tern/mailbox/1`: deposit sealed envelopes for someone, and fetch and acknowledge one's own.
//!
//! Every message is one frame (see [`crate::frame`]): `u8 version (1) || u8 tag || fields`, big-endian,
//! lengths bounded, trailing bytes refused. Anyone may deposit. Only the mailbox owner may fetch or
//! acknowledge: it asks for a [`MailboxRequest::Challenge`], then signs `label || server peer id || nonce`
//! with its identity key ([`OwnerAuth`]); the server checks the signature, that the nonce is one it issued
//! and has not expired, and that the identity's mailbox id is the one asked for.

use libp2p::StreamProtocol;
use tern_protocol::codec::{Reader, Writer};
use tern_protocol::envelope::{EnvelopeId, MAX_ENVELOPE_LEN};
use tern_protocol::group_wire::MAX_GROUP_MESSAGE_LEN;
use tern_protocol::{DecodeError, Identity, IdentityKey};

use crate::frame::{FrameCodec, FrameProtocol, MessageError, WireMessage};
use crate::mailbox::group_wire::{GroupRequest, GroupResponse, MAX_GROUP_REQUEST_LEN};

/// The protocol name.
pub const MAILBOX_PROTOCOL: StreamProtocol = StreamProtocol::new("/tern/mailbox/1");
/// The wire version this build speaks.
pub const MAILBOX_VERSION: u8 = 1;
/// Challenge nonces are this long.
pub const NONCE_LEN: usize = 32;
/// A fetch answer carries at most this many envelopes...
pub const MAX_FETCH_ENVELOPES: usize = 64;
/// ...and at most this many envelope bytes (one envelope always fits, however large).
pub const MAX_FETCH_BYTES: usize = 1024 * 1024;
/// An acknowledgement names at most this many envelopes.
pub const MAX_ACK_IDS: usize = 256;
/// A [`MailboxRequest::FetchPage`] acknowledges at most this many envelopes of earlier pages (16 pages of
/// [`MAX_FETCH_ENVELOPES`]: a client that acknowledges in batches commits once per this many).
pub const MAX_PAGE_ACK_IDS: usize = 1024;
/// The signature label of [`OwnerAuth`].
pub const LABEL_OWNER_AUTH: &[u8] = b"tern/mailbox/auth/v1";
/// A server peer id in signed bytes is at most this long.
pub const MAX_PEER_ID_BYTES: usize = 64;

const TAG_DEPOSIT: u8 = 1;
const TAG_CHALLENGE: u8 = 2;
const TAG_FETCH: u8 = 3;
const TAG_ACK: u8 = 4;
const TAG_FETCH_PAGE: u8 = 8;

const TAG_DEPOSITED: u8 = 1;
const TAG_DUPLICATE: u8 = 2;
const TAG_REFUSED: u8 = 3;
const TAG_NONCE: u8 = 4;
const TAG_ENVELOPES: u8 = 5;
const TAG_ACKED: u8 = 6;
const TAG_PAGE: u8 = 9;

/// Proof that the requester owns a mailbox: its identity key's signature over the server's challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnerAuth {
    pub identity: IdentityKey,
    pub nonce: [u8; NONCE_LEN],
    pub signature: [u8; 64],
}

impl std::fmt::Debug for OwnerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerAuth")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn signed_data(server_peer_id: &[u8], nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut w = Writer::with_capacity(1 + server_peer_id.len() + NONCE_LEN);
    w.bytes_u8(&server_peer_id[..server_peer_id.len().min(MAX_PEER_ID_BYTES)])
        .raw(nonce);
    w.into_vec()
}

impl OwnerAuth {
    /// Signs a server's challenge. `server_peer_id` is the server's PeerId in binary form.
    pub fn sign(identity: &Identity, server_peer_id: &[u8], nonce: [u8; NONCE_LEN]) -> Self {
        Self {
            identity: identity.key(),
            nonce,
            signature: identity.sign(LABEL_OWNER_AUTH, &signed_data(server_peer_id, &nonce)),
        }
    }

    /// Checks the signature for this server (the nonce's freshness is the server's to check).
    pub fn verify(&self, server_peer_id: &[u8]) -> Result<(), DecodeError> {
        self.identity.verify(
            LABEL_OWNER_AUTH,
            &signed_data(server_peer_id, &self.nonce),
            &self.signature,
            "mailbox owner proof",
        )
    }

    fn encode(&self, w: &mut Writer) {
        w.raw(self.identity.as_bytes())
            .raw(&self.nonce)
            .raw(&self.signature);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            identity: IdentityKey::from_bytes(r.array("owner identity")?)?,
            nonce: r.array("nonce")?,
            signature: r.array("owner signature")?,
        })
    }
}

/// What a client asks a mailbox server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxRequest {
    /// Store this sealed envelope for its recipient.
    Deposit { envelope: Vec<u8> },
    /// Issue a nonce for an [`OwnerAuth`].
    Challenge,
    /// Send me up to `max` of my queued envelopes, oldest first.
    Fetch { auth: OwnerAuth, max: u16 },
    /// I have durably stored these; delete them.
    Ack {
        auth: OwnerAuth,
        ids: Vec<EnvelopeId>,
    },
    /// Delete `ack` (envelopes of earlier pages I have durably stored), then send me up to `max` of my
    /// queued envelopes from cursor `from` on (0: from the oldest), oldest first. One round trip per page;
    /// a server from before it refuses it as unreadable.
    FetchPage {
        auth: OwnerAuth,
        from: u64,
        max: u16,
        ack: Vec<EnvelopeId>,
    },
    /// A group queue request (docs/protocol.md §18.6).
    Group(GroupRequest),
    /// Not on the wire: an inbound request that could not be read (see [`WireMessage::invalid`]). Servers
    /// refuse it and disconnect the sender.
    Invalid,
}

/// Why a mailbox server refused a request. Sent back as one code byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The envelope or request does not decode.
    Malformed = 1,
    /// The envelope is larger than this server accepts.
    TooLarge = 2,
    /// The envelope's expiry has passed.
    Expired = 3,
    /// The envelope's expiry is further away than this server keeps mail.
    ExpiryTooFar = 4,
    /// The mailbox holds as many envelopes as it may.
    QuotaCount = 5,
    /// The mailbox holds as many bytes as it may.
    QuotaBytes = 6,
    /// This depositor is sending too fast.
    RateLimited = 7,
    /// The proof of ownership is invalid, or names another mailbox.
    NotOwner = 8,
    /// The challenge nonce is unknown, used up or expired.
    BadChallenge = 9,
    /// The server failed to store or read.
    Internal = 10,
    /// This node does not serve mailboxes.
    NotServing = 11,
    /// The whole server is full.
    ServerFull = 12,
    /// No group queue has this id here.
    UnknownQueue = 13,
    /// The group queue exists and the key is not registered with it.
    QueueTaken = 14,
    /// The epoch key is not registered with the queue, or may not read from that cursor (revoked).
    NotMember = 15,
}

impl Refusal {
    pub const ALL: [Refusal; 15] = [
        Self::Malformed,
        Self::TooLarge,
        Self::Expired,
        Self::ExpiryTooFar,
        Self::QuotaCount,
        Self::QuotaBytes,
        Self::RateLimited,
        Self::NotOwner,
        Self::BadChallenge,
        Self::Internal,
        Self::NotServing,
        Self::ServerFull,
        Self::UnknownQueue,
        Self::QueueTaken,
        Self::NotMember,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// A stable lower-case name, for metrics labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::Expired => "expired",
            Self::ExpiryTooFar => "expiry_too_far",
            Self::QuotaCount => "quota_count",
            Self::QuotaBytes => "quota_bytes",
            Self::RateLimited => "rate_limited",
            Self::NotOwner => "not_owner",
            Self::BadChallenge => "bad_challenge",
            Self::Internal => "internal",
            Self::NotServing => "not_serving",
            Self::ServerFull => "server_full",
            Self::UnknownQueue => "unknown_queue",
            Self::QueueTaken => "queue_taken",
            Self::NotMember => "not_member",
        }
    }
}

/// A mailbox server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxResponse {
    /// Stored durably.
    Deposited {
        id: EnvelopeId,
    },
    /// Already held; nothing changed.
    Duplicate {
        id: EnvelopeId,
    },
    Refused(Refusal),
    /// A nonce to sign.
    Nonce {
        nonce: [u8; NONCE_LEN],
    },
    /// Queued envelopes, oldest first; `more` when others are waiting.
    Envelopes {
        envelopes: Vec<Vec<u8>>,
        more: bool,
    },
    /// How many of the acknowledged envelopes were deleted.
    Acked {
        count: u32,
    },
    /// The answer to a [`MailboxRequest::FetchPage`]: `acked` of its acknowledged envelopes were deleted;
    /// queued envelopes, oldest first; `next` is the cursor of the page after this one; `more` when others
    /// are waiting beyond it.
    Page {
        acked: u32,
        envelopes: Vec<Vec<u8>>,
        next: u64,
        more: bool,
    },
    /// A group queue answer (docs/protocol.md §18.6).
    Group(GroupResponse),
}

fn start(payload: &[u8]) -> Result<(Reader<'_>, u8), MessageError> {
    let mut r = Reader::new(payload);
    let version = r.u8("mailbox version").map_err(|_| MessageError::Empty)?;
    if version != MAILBOX_VERSION {
        return Err(MessageError::UnsupportedVersion { got: version });
    }
    let tag = r.u8("mailbox tag")?;
    Ok((r, tag))
}

impl WireMessage for MailboxRequest {
    const NAME: &'static str = "mailbox request";
    const MAX_LEN: usize = max(2 + 4 + MAX_ENVELOPE_LEN, 2 + MAX_GROUP_REQUEST_LEN);

    fn invalid(_error: &crate::frame::FrameError) -> Option<Self> {
        Some(Self::Invalid)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new();
        w.u8(MAILBOX_VERSION);
        match self {
            Self::Deposit { envelope } => {
                w.u8(TAG_DEPOSIT).bytes_u32(envelope);
            }
            Self::Challenge => {
                w.u8(TAG_CHALLENGE);
            }
            Self::Fetch { auth, max } => {
                w.u8(TAG_FETCH);
                auth.encode(&mut w);
                w.u16(*max);
            }
            Self::Ack { auth, ids } => {
                w.u8(TAG_ACK);
                auth.encode(&mut w);
                write_ids(&mut w, ids);
            }
            Self::FetchPage {
                auth,
                from,
                max,
                ack,
            } => {
                w.u8(TAG_FETCH_PAGE);
                auth.encode(&mut w);
                w.u64(*from).u16(*max);
                write_ids(&mut w, ack);
            }
            Self::Group(group) => group.encode(&mut w),
            // Never sent: tag 0 is refused by every decoder.
            Self::Invalid => {
                w.u8(0);
            }
        }
        out.extend_from_slice(w.as_slice());
    }

    fn decode(payload: &[u8]) -> Result<Self, MessageError> {
        let (mut r, tag) = start(payload)?;
        let request = match tag {
            TAG_DEPOSIT => Self::Deposit {
                envelope: r.bytes_u32("envelope", MAX_ENVELOPE_LEN)?.to_vec(),
            },
            TAG_CHALLENGE => Self::Challenge,
            TAG_FETCH => Self::Fetch {
                auth: OwnerAuth::decode(&mut r)?,
                max: r.u16("fetch max")?,
            },
            TAG_ACK => Self::Ack {
                auth: OwnerAuth::decode(&mut r)?,
                ids: read_ids(&mut r, MAX_ACK_IDS)?,
            },
            TAG_FETCH_PAGE => Self::FetchPage {
                auth: OwnerAuth::decode(&mut r)?,
                from: r.u64("page cursor")?,
                max: r.u16("fetch max")?,
                ack: read_ids(&mut r, MAX_PAGE_ACK_IDS)?,
            },
            got => match GroupRequest::decode(got, &mut r)? {
                Some(group) => Self::Group(group),
                None => {
                    return Err(MessageError::UnknownTag {
                        field: "mailbox request",
                        got,
                    });
                }
            },
        };
        r.finish()?;
        Ok(request)
    }
}

impl WireMessage for MailboxResponse {
    const NAME: &'static str = "mailbox response";
    const MAX_LEN: usize = max(
        // A Page: an Envelopes answer with `acked` and `next` besides.
        2 + 4 + 1 + 8 + 2 + MAX_FETCH_BYTES + MAX_FETCH_ENVELOPES * 4 + MAX_ENVELOPE_LEN,
        2 + 1 + 8 + 2 + MAX_FETCH_BYTES + MAX_FETCH_ENVELOPES * 12 + MAX_GROUP_MESSAGE_LEN,
    );

    fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new();
        w.u8(MAILBOX_VERSION);
        match self {
            Self::Deposited { id } => {
                w.u8(TAG_DEPOSITED).raw(&id.0);
            }
            Self::Duplicate { id } => {
                w.u8(TAG_DUPLICATE).raw(&id.0);
            }
            Self::Refused(reason) => {
                w.u8(TAG_REFUSED).u8(reason.code());
            }
            Self::Nonce { nonce } => {
                w.u8(TAG_NONCE).raw(nonce);
            }
            Self::Envelopes { envelopes, more } => {
                w.u8(TAG_ENVELOPES).u8(u8::from(*more));
                write_envelopes(&mut w, envelopes);
            }
            Self::Acked { count } => {
                w.u8(TAG_ACKED).u32(*count);
            }
            Self::Page {
                acked,
                envelopes,
                next,
                more,
            } => {
                w.u8(TAG_PAGE).u32(*acked).u8(u8::from(*more)).u64(*next);
                write_envelopes(&mut w, envelopes);
            }
            Self::Group(group) => group.encode(&mut w),
        }
        out.extend_from_slice(w.as_slice());
    }

    fn decode(payload: &[u8]) -> Result<Self, MessageError> {
        let (mut r, tag) = start(payload)?;
        let response = match tag {
            TAG_DEPOSITED => Self::Deposited {
                id: EnvelopeId(r.array("envelope id")?),
            },
            TAG_DUPLICATE => Self::Duplicate {
                id: EnvelopeId(r.array("envelope id")?),
            },
            TAG_REFUSED => {
                let code = r.u8("refusal")?;
                Self::Refused(Refusal::from_code(code).ok_or(MessageError::UnknownTag {
                    field: "refusal",
                    got: code,
                })?)
            }
            TAG_NONCE => Self::Nonce {
                nonce: r.array("nonce")?,
            },
            TAG_ENVELOPES => Self::Envelopes {
                more: read_more(&mut r)?,
                envelopes: read_envelopes(&mut r)?,
            },
            TAG_ACKED => Self::Acked {
                count: r.u32("acked count")?,
            },
            TAG_PAGE => Self::Page {
                acked: r.u32("acked count")?,
                more: read_more(&mut r)?,
                next: r.u64("page cursor")?,
                envelopes: read_envelopes(&mut r)?,
            },
            got => match GroupResponse::decode(got, &mut r)? {
                Some(group) => Self::Group(group),
                None => {
                    return Err(MessageError::UnknownTag {
                        field: "mailbox response",
                        got,
                    });
                }
            },
        };
        r.finish()?;
        Ok(response)
    }
}

fn write_ids(w: &mut Writer, ids: &[EnvelopeId]) {
    w.u16(u16::try_from(ids.len()).unwrap_or(u16::MAX));
    for id in ids {
        w.raw(&id.0);
    }
}

/// A `u16` count of at most `max` envelope ids, then the ids.
fn read_ids(r: &mut Reader<'_>, max: usize) -> Result<Vec<EnvelopeId>, DecodeError> {
    let count = r.count_u16("ack ids", max)?;
    (0..count)
        .map(|_| r.array("envelope id").map(EnvelopeId))
        .collect()
}

fn write_envelopes(w: &mut Writer, envelopes: &[Vec<u8>]) {
    w.u16(u16::try_from(envelopes.len()).unwrap_or(u16::MAX));
    for e in envelopes {
        w.bytes_u32(e);
    }
}

/// A `u16` count of at most [`MAX_FETCH_ENVELOPES`], then that many `vec32` envelopes.
fn read_envelopes(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let count = r.count_u16("envelopes", MAX_FETCH_ENVELOPES)?;
    (0..count)
        .map(|_| {
            r.bytes_u32("envelope", MAX_ENVELOPE_LEN)
                .map(<[u8]>::to_vec)
        })
        .collect()
}

fn read_more(r: &mut Reader<'_>) -> Result<bool, MessageError> {
    match r.u8("more flag")? {
        0 => Ok(false),
        1 => Ok(true),
        got => Err(MessageError::UnknownTag {
            field: "more flag",
            got,
        }),
    }
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// The `/tern/mailbox/1` protocol.
#[derive(Debug, Clone, Copy)]
pub enum MailboxProtocol {}

impl FrameProtocol for MailboxProtocol {
    const PROTOCOL: StreamProtocol = MAILBOX_PROTOCOL;
    type Request = MailboxRequest;
    type Response = MailboxResponse;
}

/// The codec for `/tern/mailbox/1`.
pub type MailboxCodec = FrameCodec<MailboxProtocol>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{decode_frame, encode_frame};
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    fn identity() -> Identity {
        Identity::generate(&mut ChaCha20Rng::seed_from_u64(7), 0)
    }

    #[test]
    fn every_request_and_response_round_trips() {
        let id = identity();
        let auth = OwnerAuth::sign(&id, b"server", [3; NONCE_LEN]);
        for request in [
            MailboxRequest::Deposit {
                envelope: vec![1, 2, 3],
            },
            MailboxRequest::Challenge,
            MailboxRequest::Fetch {
                auth: auth.clone(),
                max: 10,
            },
            MailboxRequest::Ack {
                auth: auth.clone(),
                ids: vec![EnvelopeId([9; 32]); 3],
            },
            MailboxRequest::FetchPage {
                auth,
                from: 1 << 40,
                max: 64,
                ack: vec![EnvelopeId([8; 32]); MAX_PAGE_ACK_IDS],
            },
        ] {
            let frame = encode_frame(&request).unwrap();
            assert_eq!(decode_frame::<MailboxRequest>(&frame).unwrap(), request);
        }
        for response in [
            MailboxResponse::Deposited {
                id: EnvelopeId([1; 32]),
            },
            MailboxResponse::Duplicate {
                id: EnvelopeId([2; 32]),
            },
            MailboxResponse::Refused(Refusal::RateLimited),
            MailboxResponse::Nonce { nonce: [4; 32] },
            MailboxResponse::Envelopes {
                envelopes: vec![vec![5; 300], vec![6; 2]],
                more: true,
            },
            MailboxResponse::Acked { count: 7 },
            MailboxResponse::Page {
                acked: 3,
                envelopes: vec![vec![5; 300]],
                next: 42,
                more: false,
            },
        ] {
            let frame = encode_frame(&response).unwrap();
            assert_eq!(decode_frame::<MailboxResponse>(&frame).unwrap(), response);
        }
    }

    #[test]
    fn owner_proof_is_bound_to_the_server_and_the_nonce() {
        let id = identity();
        let auth = OwnerAuth::sign(&id, b"server-a", [1; NONCE_LEN]);
        assert!(auth.verify(b"server-a").is_ok());
        assert!(
            auth.verify(b"server-b").is_err(),
            "replayed to another server"
        );
        let mut other_nonce = auth.clone();
        other_nonce.nonce[0] ^= 1;
        assert!(other_nonce.verify(b"server-a").is_err());
    }

    #[test]
    fn bad_payloads_are_typed_errors() {
        assert_eq!(MailboxRequest::decode(&[]), Err(MessageError::Empty));
        assert_eq!(
            MailboxRequest::decode(&[2, 1]),
            Err(MessageError::UnsupportedVersion { got: 2 })
        );
        assert!(matches!(
            MailboxRequest::decode(&[1, 99]),
            Err(MessageError::UnknownTag { .. })
        ));
        assert!(matches!(
            MailboxRequest::decode(&[1, TAG_CHALLENGE, 0]),
            Err(MessageError::Decode(DecodeError::TrailingBytes(1)))
        ));
        assert!(matches!(
            MailboxResponse::decode(&[1, TAG_REFUSED, 200]),
            Err(MessageError::UnknownTag { .. })
        ));
        // An ack claiming more ids than allowed is refused before reading them.
        let mut payload = vec![1, TAG_ACK];
        payload.extend_from_slice(&[0; 32 + 32 + 64]);
        payload.extend_from_slice(&u16::MAX.to_be_bytes());
        assert!(MailboxRequest::decode(&payload).is_err());
        // So is a paged fetch acknowledging more than its bound.
        let mut payload = vec![1, TAG_FETCH_PAGE];
        payload.extend_from_slice(&[0; 32 + 32 + 64 + 8 + 2]);
        payload.extend_from_slice(&u16::try_from(MAX_PAGE_ACK_IDS + 1).unwrap().to_be_bytes());
        payload.extend_from_slice(&vec![0; 32 * (MAX_PAGE_ACK_IDS + 1)]);
        assert!(matches!(
            MailboxRequest::decode(&payload),
            Err(MessageError::Decode(DecodeError::TooMany { .. }))
        ));
        // A page's `more` is 0 or 1.
        let mut payload = vec![1, TAG_PAGE, 0, 0, 0, 0, 2];
        payload.extend_from_slice(&[0; 8 + 2]);
        assert!(matches!(
            MailboxResponse::decode(&payload),
            Err(MessageError::UnknownTag { .. })
        ));
    }

    #[test]
    fn the_largest_paged_fetch_fits_a_request_frame() {
        let auth = OwnerAuth::sign(&identity(), b"server", [3; NONCE_LEN]);
        let request = MailboxRequest::FetchPage {
            auth,
            from: u64::MAX,
            max: u16::MAX,
            ack: vec![EnvelopeId([1; 32]); MAX_PAGE_ACK_IDS],
        };
        let mut payload = Vec::new();
        request.encode_into(&mut payload);
        assert!(payload.len() <= MailboxRequest::MAX_LEN);
    }
}
