//! The outbox's noun: [`OutboxEntry`], an envelope waiting to be sent (or re-sent) to a recipient or their
//! mailbox. The store keeps entries sealed and indexed by recipient and by due time (see
//! `crate::store`); the engine queues them and the delivery loop moves them.

use std::fmt;

use tern_protocol::{IdentityKey, MessageId};

/// An envelope waiting to be sent (or re-sent) to a recipient or their mailbox.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The message the envelope carries (one entry per message id).
    pub message_id: MessageId,
    /// Who it is for.
    pub recipient: IdentityKey,
    /// The encoded envelope, at most `crate::store::MAX_ENVELOPE_LEN` bytes.
    pub envelope: Vec<u8>,
    /// How many sends were tried.
    pub attempts: u32,
    /// Not to be tried before this time, unix milliseconds.
    pub next_attempt_ms: u64,
    /// When it was queued, unix milliseconds.
    pub created_ms: u64,
    /// The envelope's own expiry (the unit the envelope uses: unix seconds).
    pub expires_at: u64,
}

impl fmt::Debug for OutboxEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            message_id,
            recipient,
            envelope,
            attempts,
            next_attempt_ms,
            created_ms,
            expires_at,
        } = self;
        f.debug_struct("OutboxEntry")
            .field("message_id", message_id)
            .field("recipient", &recipient.peer_id())
            .field("envelope_len", &envelope.len())
            .field("attempts", attempts)
            .field("next_attempt_ms", next_attempt_ms)
            .field("created_ms", created_ms)
            .field("expires_at", expires_at)
            .finish()
    }
}
