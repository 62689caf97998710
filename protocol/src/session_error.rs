//! Why a session could not encrypt or decrypt a message.
//!
//! Both the session layer and the double ratchet below it return these errors, so they live in this leaf
//! module; `session` re-exports them.

use thiserror::Error;

use crate::card::CardError;
use crate::codec::DecodeError;

/// Why a message could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncryptError {
    #[error("no session yet and no contact card to start one with")]
    NoSession,
    #[error("the card given is not this peer's")]
    WrongCard,
    #[error("a ratchet or prekey is not a valid X25519 key")]
    InvalidRatchetKey,
    #[error("the session cannot send yet")]
    NotReady,
    #[error("the sending chain is exhausted; start a new session")]
    ChainExhausted,
    #[error("message is {len} bytes, at most {max} allowed")]
    TooLong { len: usize, max: usize },
    #[error("noise handshake failed: {0}")]
    Handshake(String),
}

/// Why a message could not be decrypted. Whatever the error, no session state has changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecryptError {
    #[error("malformed session message: {0}")]
    Decode(DecodeError),
    #[error("message would skip {got} message keys, at most {max} allowed")]
    TooBigMessageGap { got: u32, max: u32 },
    #[error("message {n} was already received or its key has expired")]
    DuplicateOrExpired { n: u32 },
    #[error("the message failed authentication (tampered, or not for this session)")]
    Authentication,
    #[error("the sender's ratchet key is not a valid X25519 key")]
    InvalidRatchetKey,
    #[error("no session with this id for this peer")]
    UnknownSession,
    #[error("the session start names prekey {0}, which this identity no longer holds")]
    UnknownPrekey(u32),
    #[error("the session start was already used for a session that has since been retired")]
    ReplayedHandshake,
    #[error("the session start does not prove the sender's identity: {0}")]
    BadHandshake(&'static str),
    #[error("in the session start, {0}")]
    BadCard(CardError),
    #[error("handshake kind {0} is not supported")]
    UnsupportedHandshake(u8),
}

crate::cause_in_message!(DecodeError => DecryptError::Decode, CardError => DecryptError::BadCard);
