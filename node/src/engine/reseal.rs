//! Sealing again what waits for a peer that lost its state (docs/protocol.md §20.5).
//!
//! A contact restored from a backup (or whose session rows were rolled back) starts a new session; until it
//! does, what this node sent it on the old session cannot be opened there: handed over directly it is
//! refused and stays queued with the same ciphertext, deposited it is dropped on fetch. When the new start
//! replaces a session that worked, every text and file offer of the last [`MAX_RESEALED`] messages that
//! the contact has not acknowledged (`Sending` or `Sent`) and that mail would still carry is sealed again on
//! the new session under its own id and time, replacing its outbox entry, in the commit that takes the
//! start. The contact stores each once (its store dedupes by sender and id), so what a copy of it did
//! receive is not shown twice. Receipts, typing and group transfers still queued on the old session are
//! not resealed: their bodies are not kept.

use super::receive::Receipts;
use super::*;
use crate::api::ConversationId;
use send::outbox_entry;

/// The newest messages of the conversation looked at when a contact lost its state.
pub const MAX_RESEALED: usize = 1_000;

impl Receipts<'_> {
    /// Seals again, on `peer`'s now active session, the messages it has not acknowledged (see the
    /// module's doc). A store failure aborts the caller's group; a message that cannot be sealed (the
    /// contact is no longer accepted) ends the pass, logged.
    pub(super) fn reseal(
        &mut self,
        batch: &mut Batch<'_>,
        peer: &IdentityKey,
        now: u64,
        rng: &mut impl rand::CryptoRng,
    ) -> Result<(), StoreError> {
        let conversation = ConversationId::Direct(*peer);
        let timer_s = u64::from(batch.timer(&conversation)?.seconds);
        let oldest_ms = now.saturating_sub(MAIL_TTL_S * 1000);
        let mut resealed = 0usize;
        for message in batch.newest_messages(&conversation, MAX_RESEALED)? {
            if !message.outgoing()
                || message.system
                || !matches!(message.status, MessageStatus::Sending | MessageStatus::Sent)
                || message.sent_at_ms < oldest_ms
            {
                continue;
            }
            let mut expires_at = now / 1000 + MAIL_TTL_S;
            if timer_s > 0 {
                // A disappearing message is not carried past the moment it disappears here.
                expires_at = expires_at.min(message.sent_at_ms / 1000 + timer_s);
                if expires_at <= now / 1000 {
                    continue;
                }
            }
            let body = match batch.attachment(&conversation, &message.id)? {
                Some(record) => Body::File(record.announcement),
                None => super::send::text_body(message.text.clone(), message.reply_to),
            };
            let content = Content {
                id: message.id,
                sent_at_ms: message.sent_at_ms,
                body,
            };
            match self.seal_content(batch, peer, &content, expires_at, rng) {
                Ok(envelope) => {
                    // Replaces the entry with the old bytes, if one is left.
                    batch.outbox_enqueue(&outbox_entry(peer, &content, &envelope, now))?;
                    resealed += 1;
                }
                Err(EngineError::Store(e)) => return Err(e),
                Err(e) => {
                    debug!(error = %e, "cannot seal a message again for a contact that lost its state");
                    break;
                }
            }
        }
        if resealed > 0 {
            debug!(
                resealed,
                "a contact lost its state: unacknowledged messages sealed again"
            );
        }
        Ok(())
    }
}
