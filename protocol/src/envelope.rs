//! Sealed envelopes: what relays, mailboxes and the network see.
//!
//! Outside: a version, the recipient's mailbox id, an expiry, and a body of fixed bucket sizes. Inside the body,
//! sealed to the recipient's agreement key with a fresh ephemeral X25519 key: the sender's identity and the
//! session message. Nothing outside names the sender, and body sizes reveal only a bucket.

use std::fmt;

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{self, DhKeyPair, KEY_LEN, TAG_LEN};
use crate::identity::{Identity, IdentityKey, PublicIdentity};
pub use crate::mailbox_id::MailboxId;
use crate::session::MAX_SESSION_MESSAGE_LEN;

/// The envelope format version.
pub const ENVELOPE_VERSION: u8 = 1;
/// The smallest padding bucket; buckets double up to [`MAX_PADDED_LEN`].
pub const MIN_PADDED_LEN: usize = 256;
/// The largest padding bucket.
pub const MAX_PADDED_LEN: usize = 64 * 1024;
/// An envelope body: the ephemeral key, the padded plaintext and the tag.
pub const MAX_BODY_LEN: usize = KEY_LEN + MAX_PADDED_LEN + TAG_LEN;
/// An encoded envelope is at most this long; transports cap frames here.
pub const MAX_ENVELOPE_LEN: usize = 1 + 32 + 8 + 4 + MAX_BODY_LEN;
/// An envelope may expire at most this far (30 days) after the moment it is opened; a later expiry is
/// refused, so a sender cannot make mail (or a replayed session start) live longer than every bound that
/// depends on it.
pub const MAX_ENVELOPE_TTL_S: u64 = 30 * 24 * 3600;

const INNER_VERSION: u8 = 1;
const INNER_OVERHEAD: usize = 1 + KEY_LEN + 4;
const PAD_MARKER: u8 = 0x80;
const LABEL_SEAL: &[u8] = b"tern/seal/v1";
const LABEL_ENVELOPE_ID: &[u8] = b"tern/envelope-id/v1";

const _: () = assert!(INNER_OVERHEAD + MAX_SESSION_MESSAGE_LEN < MAX_PADDED_LEN);

/// An envelope's content address: SHA-256 over a label and its encoding. Mailboxes dedupe and acknowledge by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvelopeId(pub [u8; 32]);

impl fmt::Debug for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EnvelopeId({})",
            bs58::encode(&self.0[..8]).into_string()
        )
    }
}

/// Why an envelope could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("session message is {len} bytes, at most {max} fit an envelope")]
    TooLong { len: usize, max: usize },
    #[error("the recipient's agreement key is not a valid X25519 key")]
    InvalidRecipientKey,
}

crate::cause_in_message!(DecodeError => OpenError::Decode);

/// Why an envelope could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("malformed envelope: {0}")]
    Decode(DecodeError),
    #[error("the envelope is for another mailbox")]
    NotForMe,
    #[error("the envelope expired at {expires_at} (now {now})")]
    Expired { expires_at: u64, now: u64 },
    #[error("the envelope's expiry {expires_at} is more than {max_ttl} s after now ({now})")]
    ExpiryTooFar {
        expires_at: u64,
        now: u64,
        max_ttl: u64,
    },
    #[error("the envelope failed authentication (tampered, or sealed to another key)")]
    Authentication,
}

/// The padded size for a plaintext of `len` bytes, or `None` if it fits no bucket.
pub fn padded_len(len: usize) -> Option<usize> {
    let mut bucket = MIN_PADDED_LEN;
    // One byte of padding (the marker) is always present.
    while bucket < len + 1 {
        bucket *= 2;
    }
    (bucket <= MAX_PADDED_LEN).then_some(bucket)
}

fn is_bucket(len: usize) -> bool {
    (MIN_PADDED_LEN..=MAX_PADDED_LEN).contains(&len) && len.is_power_of_two()
}

/// A sealed envelope.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    pub mailbox: MailboxId,
    /// Unix seconds after which the envelope must not be delivered.
    pub expires_at: u64,
    body: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            mailbox,
            expires_at,
            body,
        } = self;
        f.debug_struct("Envelope")
            .field("mailbox", mailbox)
            .field("expires_at", expires_at)
            .field("body_len", &body.len())
            .finish()
    }
}

/// What an opened envelope holds.
#[derive(Debug)]
pub struct Opened {
    /// Who the sender says they are; the session layer proves it.
    pub sender: IdentityKey,
    pub session_message: Vec<u8>,
}

fn outer_aad(mailbox: &MailboxId, expires_at: u64) -> [u8; 1 + 32 + 8] {
    let mut aad = [0u8; 41];
    aad[0] = ENVELOPE_VERSION;
    aad[1..33].copy_from_slice(&mailbox.0);
    aad[33..].copy_from_slice(&expires_at.to_be_bytes());
    aad
}

fn seal_keys(
    ephemeral: &[u8; KEY_LEN],
    recipient: &[u8; KEY_LEN],
    dh: &[u8; KEY_LEN],
) -> (crypto::SecretKey, [u8; 12]) {
    let mut salt = [0u8; 2 * KEY_LEN];
    salt[..KEY_LEN].copy_from_slice(ephemeral);
    salt[KEY_LEN..].copy_from_slice(recipient);
    let okm = crypto::hkdf::<44>(&salt, dh, LABEL_SEAL);
    crypto::key_and_nonce(&okm)
}

impl Envelope {
    /// Seals a session message from `sender` to `recipient`.
    pub fn seal<R: CryptoRng + ?Sized>(
        sender: &Identity,
        recipient: &PublicIdentity,
        session_message: &[u8],
        expires_at: u64,
        rng: &mut R,
    ) -> Result<Self, SealError> {
        let max = MAX_SESSION_MESSAGE_LEN;
        if session_message.len() > max {
            return Err(SealError::TooLong {
                len: session_message.len(),
                max,
            });
        }
        let inner_len = INNER_OVERHEAD + session_message.len();
        let padded = padded_len(inner_len).ok_or(SealError::TooLong {
            len: session_message.len(),
            max,
        })?;
        let mut inner = Zeroizing::new(Vec::with_capacity(padded));
        inner.push(INNER_VERSION);
        inner.extend_from_slice(sender.key().as_bytes());
        inner.extend_from_slice(
            &u32::try_from(session_message.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        inner.extend_from_slice(session_message);
        inner.push(PAD_MARKER);
        inner.resize(padded, 0);

        let ephemeral = DhKeyPair::generate(rng);
        let dh = ephemeral
            .agree(&recipient.agreement)
            .ok_or(SealError::InvalidRecipientKey)?;
        let (key, nonce) = seal_keys(ephemeral.public(), &recipient.agreement, dh.as_bytes());
        let mailbox = recipient.key.mailbox_id();
        let ciphertext = crypto::seal(
            key.as_bytes(),
            &nonce,
            &outer_aad(&mailbox, expires_at),
            &inner,
        );
        let mut body = Vec::with_capacity(KEY_LEN + ciphertext.len());
        body.extend_from_slice(ephemeral.public());
        body.extend_from_slice(&ciphertext);
        Ok(Self {
            mailbox,
            expires_at,
            body,
        })
    }

    /// Opens an envelope addressed to `me`; refuses one past its expiry at `now` (unix seconds).
    pub fn open(&self, me: &Identity, now: u64) -> Result<Opened, OpenError> {
        if self.mailbox != me.key().mailbox_id() {
            return Err(OpenError::NotForMe);
        }
        if now >= self.expires_at {
            return Err(OpenError::Expired {
                expires_at: self.expires_at,
                now,
            });
        }
        if self.expires_at - now > MAX_ENVELOPE_TTL_S {
            return Err(OpenError::ExpiryTooFar {
                expires_at: self.expires_at,
                now,
                max_ttl: MAX_ENVELOPE_TTL_S,
            });
        }
        let (ephemeral, ciphertext) = self.body.split_at(KEY_LEN);
        let mut eph = [0u8; KEY_LEN];
        eph.copy_from_slice(ephemeral);
        let dh = me
            .agreement_pair()
            .agree(&eph)
            .ok_or(OpenError::Authentication)?;
        let (key, nonce) = seal_keys(&eph, &me.public().agreement, dh.as_bytes());
        let inner = crypto::open(
            key.as_bytes(),
            &nonce,
            &outer_aad(&self.mailbox, self.expires_at),
            ciphertext,
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenError::Authentication)?;
        let mut r = Reader::new(&inner);
        let version = r.u8("inner version")?;
        if version != INNER_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "envelope contents",
                got: version,
                supported: INNER_VERSION,
            }
            .into());
        }
        let sender = IdentityKey::from_bytes(r.array("sender")?)?;
        let session_message = r
            .bytes_u32("session message", MAX_SESSION_MESSAGE_LEN)?
            .to_vec();
        let padding = r.rest();
        if padding.first() != Some(&PAD_MARKER) || padding[1..].iter().any(|&b| b != 0) {
            return Err(DecodeError::Invalid {
                field: "padding",
                reason: "must be 0x80 followed by zeros",
            }
            .into());
        }
        Ok(Opened {
            sender,
            session_message,
        })
    }

    /// The content address of this envelope.
    pub fn id(&self) -> EnvelopeId {
        EnvelopeId(crypto::sha256(&[LABEL_ENVELOPE_ID, &self.encode()]))
    }

    /// Length of the encoding.
    pub fn encoded_len(&self) -> usize {
        1 + 32 + 8 + 4 + self.body.len()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len());
        w.u8(ENVELOPE_VERSION)
            .raw(&self.mailbox.0)
            .u64(self.expires_at)
            .bytes_u32(&self.body);
        w.into_vec()
    }

    /// Decodes an envelope; the body must be an ephemeral key, a padding bucket and a tag.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, "envelope", MAX_ENVELOPE_LEN)?;
        let version = r.u8("envelope version")?;
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "envelope",
                got: version,
                supported: ENVELOPE_VERSION,
            });
        }
        let mailbox = MailboxId(r.array("mailbox id")?);
        let expires_at = r.u64("expiry")?;
        let body = r.bytes_u32("envelope body", MAX_BODY_LEN)?.to_vec();
        r.finish()?;
        if body.len() < KEY_LEN + TAG_LEN || !is_bucket(body.len() - KEY_LEN - TAG_LEN) {
            return Err(DecodeError::Invalid {
                field: "envelope body",
                reason: "length is not a padding bucket",
            });
        }
        Ok(Self {
            mailbox,
            expires_at,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_buckets_double_and_cap() {
        assert_eq!(padded_len(0), Some(256));
        assert_eq!(padded_len(255), Some(256));
        assert_eq!(padded_len(256), Some(512));
        assert_eq!(padded_len(5000), Some(8192));
        assert_eq!(padded_len(MAX_PADDED_LEN - 1), Some(MAX_PADDED_LEN));
        assert_eq!(padded_len(MAX_PADDED_LEN), None);
    }
}
