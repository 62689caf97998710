//! The group queue requests and responses of `/tern/mailbox/1` (docs/protocol.md §17.2, §18.6): their fields
//! and codec. [`super::wire`] frames them with the other mailbox messages.
//!
//! | request (tag)     | fields |
//! |-------------------|--------|
//! | GroupOpen (5)     | `queue_id[16] ‖ u64 epoch ‖ key[32] ‖ signature[64]` |
//! | GroupDeposit (6)  | `queue_id[16] ‖ vec32 message ‖ u8 rotation (0/1) ‖ [u64 epoch ‖ new_key[32] ‖ u8 revoke ‖ signer[32] ‖ signature[64]]` |
//! | GroupFetch (7)    | `queue_id[16] ‖ key[32] ‖ nonce[32] ‖ signature[64] ‖ u64 cursor ‖ u16 max` |
//!
//! | response (tag)    | fields |
//! |-------------------|--------|
//! | QueueOpened (7)   | none |
//! | GroupMessages (8) | `u8 more ‖ u64 next_cursor ‖ count16<64> × (u64 seq ‖ vec32 message)` |

use tern_protocol::DecodeError;
use tern_protocol::codec::{Reader, Writer};
use tern_protocol::group_queue::{EpochPublicKey, QUEUE_ID_LEN, QueueId, Rotation};
use tern_protocol::group_wire::MAX_GROUP_MESSAGE_LEN;

use crate::frame::MessageError;
use crate::mailbox::wire::{MAX_FETCH_ENVELOPES, NONCE_LEN};

/// A key rotation deposited with a commit: signed by a key of the epoch before [`Rotation::epoch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRotation {
    pub rotation: Rotation,
    /// The previous epoch's key that signed.
    pub signer: EpochPublicKey,
    pub signature: [u8; 64],
}

impl SignedRotation {
    /// `u8 0` (none) or `u8 1 ‖ u64 epoch ‖ new_key[32] ‖ u8 revoke ‖ signer[32] ‖ signature[64]`: as in a
    /// GroupDeposit, and in the node's persisted deposits (`crate::mailbox::group_client`).
    pub(crate) fn encode_option(rotation: Option<&Self>, w: &mut Writer) {
        match rotation {
            None => {
                w.u8(0);
            }
            Some(r) => {
                w.u8(1)
                    .u64(r.rotation.epoch)
                    .raw(r.rotation.new_key.as_bytes())
                    .u8(u8::from(r.rotation.revoke))
                    .raw(r.signer.as_bytes())
                    .raw(&r.signature);
            }
        }
    }

    /// Reads what [`Self::encode_option`] wrote.
    pub(crate) fn decode_option(r: &mut Reader<'_>) -> Result<Option<Self>, MessageError> {
        if !flag(r, "rotation flag")? {
            return Ok(None);
        }
        Ok(Some(Self {
            rotation: Rotation {
                epoch: r.u64("rotation epoch")?,
                new_key: key(r, "new epoch key")?,
                revoke: flag(r, "revoke flag")?,
            },
            signer: key(r, "rotation signer")?,
            signature: r.array("rotation signature")?,
        }))
    }
}

/// A fetch's proof of membership: an epoch key's signature over the server, the nonce, the queue and the
/// cursor.
#[derive(Clone, PartialEq, Eq)]
pub struct QueueAuth {
    pub key: EpochPublicKey,
    pub nonce: [u8; NONCE_LEN],
    pub signature: [u8; 64],
}

impl std::fmt::Debug for QueueAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueAuth").finish_non_exhaustive()
    }
}

/// One message of a queue, with the sequence number the server gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub seq: u64,
    pub message: Vec<u8>,
}

/// The group queue requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRequest {
    /// Create a queue with its first epoch key (self-signed), or confirm that key is registered.
    Open {
        queue: QueueId,
        epoch: u64,
        key: EpochPublicKey,
        signature: [u8; 64],
    },
    /// Store one group message for the whole group; a commit carries its new epoch's key.
    Deposit {
        queue: QueueId,
        message: Vec<u8>,
        rotation: Option<SignedRotation>,
    },
    /// Messages with a sequence number at or above `cursor`, oldest first, at most `max`.
    Fetch {
        queue: QueueId,
        auth: QueueAuth,
        cursor: u64,
        max: u16,
    },
}

/// The group queue responses (deposits are answered `Deposited`/`Duplicate` with the message's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupResponse {
    /// The queue exists with this key registered.
    Opened,
    /// Queued messages from the cursor; `next_cursor` is where the next fetch starts.
    Messages {
        messages: Vec<QueuedMessage>,
        next_cursor: u64,
        more: bool,
    },
}

pub(super) const TAG_GROUP_OPEN: u8 = 5;
pub(super) const TAG_GROUP_DEPOSIT: u8 = 6;
pub(super) const TAG_GROUP_FETCH: u8 = 7;
pub(super) const TAG_QUEUE_OPENED: u8 = 7;
pub(super) const TAG_GROUP_MESSAGES: u8 = 8;

/// The longest group request's fields (a deposit with a rotation).
pub(super) const MAX_GROUP_REQUEST_LEN: usize =
    QUEUE_ID_LEN + 4 + MAX_GROUP_MESSAGE_LEN + 1 + 8 + 32 + 1 + 32 + 64;

fn key(r: &mut Reader<'_>, field: &'static str) -> Result<EpochPublicKey, DecodeError> {
    EpochPublicKey::from_bytes(r.array(field)?)
}

fn flag(r: &mut Reader<'_>, field: &'static str) -> Result<bool, MessageError> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        got => Err(MessageError::UnknownTag { field, got }),
    }
}

impl GroupRequest {
    pub(super) fn encode(&self, w: &mut Writer) {
        match self {
            Self::Open {
                queue,
                epoch,
                key,
                signature,
            } => {
                w.u8(TAG_GROUP_OPEN)
                    .raw(&queue.0)
                    .u64(*epoch)
                    .raw(key.as_bytes())
                    .raw(signature);
            }
            Self::Deposit {
                queue,
                message,
                rotation,
            } => {
                w.u8(TAG_GROUP_DEPOSIT).raw(&queue.0).bytes_u32(message);
                SignedRotation::encode_option(rotation.as_ref(), w);
            }
            Self::Fetch {
                queue,
                auth,
                cursor,
                max,
            } => {
                w.u8(TAG_GROUP_FETCH)
                    .raw(&queue.0)
                    .raw(auth.key.as_bytes())
                    .raw(&auth.nonce)
                    .raw(&auth.signature)
                    .u64(*cursor)
                    .u16(*max);
            }
        }
    }

    /// Reads the fields after `tag`; `None` if the tag is not a group request's.
    pub(super) fn decode(tag: u8, r: &mut Reader<'_>) -> Result<Option<Self>, MessageError> {
        let request = match tag {
            TAG_GROUP_OPEN => Self::Open {
                queue: QueueId(r.array("queue id")?),
                epoch: r.u64("epoch")?,
                key: key(r, "epoch key")?,
                signature: r.array("open signature")?,
            },
            TAG_GROUP_DEPOSIT => {
                let queue = QueueId(r.array("queue id")?);
                let message = r
                    .bytes_u32("group message", MAX_GROUP_MESSAGE_LEN)?
                    .to_vec();
                let rotation = SignedRotation::decode_option(r)?;
                Self::Deposit {
                    queue,
                    message,
                    rotation,
                }
            }
            TAG_GROUP_FETCH => Self::Fetch {
                queue: QueueId(r.array("queue id")?),
                auth: QueueAuth {
                    key: key(r, "epoch key")?,
                    nonce: r.array("nonce")?,
                    signature: r.array("fetch signature")?,
                },
                cursor: r.u64("cursor")?,
                max: r.u16("fetch max")?,
            },
            _ => return Ok(None),
        };
        Ok(Some(request))
    }
}

impl GroupResponse {
    pub(super) fn encode(&self, w: &mut Writer) {
        match self {
            Self::Opened => {
                w.u8(TAG_QUEUE_OPENED);
            }
            Self::Messages {
                messages,
                next_cursor,
                more,
            } => {
                w.u8(TAG_GROUP_MESSAGES)
                    .u8(u8::from(*more))
                    .u64(*next_cursor)
                    .u16(u16::try_from(messages.len()).unwrap_or(u16::MAX));
                for m in messages {
                    w.u64(m.seq).bytes_u32(&m.message);
                }
            }
        }
    }

    /// Reads the fields after `tag`; `None` if the tag is not a group response's.
    pub(super) fn decode(tag: u8, r: &mut Reader<'_>) -> Result<Option<Self>, MessageError> {
        let response = match tag {
            TAG_QUEUE_OPENED => Self::Opened,
            TAG_GROUP_MESSAGES => {
                let more = flag(r, "more flag")?;
                let next_cursor = r.u64("next cursor")?;
                let count = r.count_u16("group messages", MAX_FETCH_ENVELOPES)?;
                let messages = (0..count)
                    .map(|_| {
                        Ok(QueuedMessage {
                            seq: r.u64("sequence number")?,
                            message: r
                                .bytes_u32("group message", MAX_GROUP_MESSAGE_LEN)?
                                .to_vec(),
                        })
                    })
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                Self::Messages {
                    messages,
                    next_cursor,
                    more,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{WireMessage, decode_frame, encode_frame};
    use crate::mailbox::{MailboxRequest, MailboxResponse};
    use tern_protocol::group_queue::EpochKey;
    use zeroize::Zeroizing;

    #[test]
    fn group_requests_and_responses_round_trip_and_bad_flags_are_refused() {
        let k = EpochKey::from_exporter(&Zeroizing::new([3; 32]));
        let queue = QueueId([1; 16]);
        let rotation = Rotation {
            epoch: 4,
            new_key: k.public(),
            revoke: true,
        };
        let requests = [
            GroupRequest::Open {
                queue,
                epoch: 0,
                key: k.public(),
                signature: k.sign_open(&queue, 0),
            },
            GroupRequest::Deposit {
                queue,
                message: vec![9; 70_000],
                rotation: Some(SignedRotation {
                    rotation,
                    signer: k.public(),
                    signature: [5; 64],
                }),
            },
            GroupRequest::Deposit {
                queue,
                message: vec![],
                rotation: None,
            },
            GroupRequest::Fetch {
                queue,
                auth: QueueAuth {
                    key: k.public(),
                    nonce: [6; 32],
                    signature: [7; 64],
                },
                cursor: 12,
                max: 64,
            },
        ];
        for request in requests {
            let request = MailboxRequest::Group(request);
            let frame = encode_frame(&request).unwrap();
            assert_eq!(decode_frame::<MailboxRequest>(&frame).unwrap(), request);
        }
        for response in [
            GroupResponse::Opened,
            GroupResponse::Messages {
                messages: vec![
                    QueuedMessage {
                        seq: 1,
                        message: vec![1; 200_000],
                    },
                    QueuedMessage {
                        seq: 3,
                        message: vec![2],
                    },
                ],
                next_cursor: 4,
                more: true,
            },
        ] {
            let response = MailboxResponse::Group(response);
            let frame = encode_frame(&response).unwrap();
            assert_eq!(decode_frame::<MailboxResponse>(&frame).unwrap(), response);
        }
        // A rotation flag of 2, and a deposit longer than a group message may be.
        let mut bad = vec![1, TAG_GROUP_DEPOSIT];
        bad.extend([1; 16]);
        bad.extend([0, 0, 0, 1, 0xaa, 2]);
        assert!(MailboxRequest::decode(&bad).is_err());
        let mut long = vec![1, TAG_GROUP_DEPOSIT];
        long.extend([1; 16]);
        long.extend(
            u32::try_from(MAX_GROUP_MESSAGE_LEN + 1)
                .unwrap()
                .to_be_bytes(),
        );
        assert!(MailboxRequest::decode(&long).is_err());
    }
}
