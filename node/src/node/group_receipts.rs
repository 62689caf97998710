//! Receipts in groups (docs/protocol.md §18.10): a member acknowledges the group's texts with `delivered`
//! and `read` contents sent as group application messages, gathered for [`GROUP_RECEIPT_DELAY`] so one
//! content names what arrived (or was read) meanwhile. Only groups of at most
//! [`GROUP_RECEIPTS_MAX_MEMBERS`] members send them: every member decrypts every receipt and saves its
//! group state after it, so their cost grows with the square of the group.
//!
//! The sender of a text keeps each member's status in the message's record (`store/recipients.rs`) and
//! shows "delivered to k of n" and who read it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tern_protocol::message::MAX_RECEIPT_IDS;
use tern_protocol::{Content, MessageId};

use super::*;
use crate::api::{ConversationId, RecipientStatus};

/// Groups of at most this many members (this profile included) send receipts; a text to one lists each
/// member's status.
pub const GROUP_RECEIPTS_MAX_MEMBERS: usize = 32;
/// How long a member gathers receipts for a group before sending them.
pub const GROUP_RECEIPT_DELAY: Duration = Duration::from_secs(1);
/// Receipt ids waiting per group (per kind); past it the oldest are dropped unsent.
pub const MAX_PENDING_RECEIPT_IDS: usize = 4 * MAX_RECEIPT_IDS;

/// One group's receipts waiting to go: the message ids with their authors.
#[derive(Default)]
struct Waiting {
    due: Option<Instant>,
    delivered: Vec<(MessageId, IdentityKey)>,
    read: Vec<(MessageId, IdentityKey)>,
}

/// The receipts waiting to be sent, by group (conversation key).
pub(super) struct PendingReceipts {
    /// Whether this node sends receipts in groups at all ([`crate::config::GroupReceipts`]).
    pub(super) enabled: bool,
    waiting: HashMap<[u8; 32], Waiting>,
}

impl Default for PendingReceipts {
    fn default() -> Self {
        Self {
            enabled: true,
            waiting: HashMap::new(),
        }
    }
}

impl PendingReceipts {
    /// When the next group's receipts are due.
    pub(super) fn due(&self) -> Option<Instant> {
        self.waiting.values().filter_map(|w| w.due).min()
    }

    fn queue(&mut self, key: [u8; 32], read: bool, ids: &[(MessageId, IdentityKey)], now: Instant) {
        if !self.enabled || ids.is_empty() {
            return;
        }
        let waiting = self.waiting.entry(key).or_default();
        let list = if read {
            &mut waiting.read
        } else {
            &mut waiting.delivered
        };
        list.extend_from_slice(ids);
        let over = list.len().saturating_sub(MAX_PENDING_RECEIPT_IDS);
        list.drain(..over);
        waiting.due.get_or_insert(now + GROUP_RECEIPT_DELAY);
    }

    /// The groups whose receipts are due at `now`, taken.
    fn take_due(&mut self, now: Instant) -> Vec<([u8; 32], Waiting)> {
        let due: Vec<[u8; 32]> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.due.is_some_and(|at| at <= now))
            .map(|(key, _)| *key)
            .collect();
        due.into_iter()
            .filter_map(|key| self.waiting.remove(&key).map(|w| (key, w)))
            .collect()
    }
}

impl EventLoop {
    /// Whether the group at `key` is small enough for receipts (and this node sends them).
    fn receipts_in(&self, key: &[u8; 32]) -> bool {
        self.groups.receipts.enabled
            && self
                .groups
                .by_conv
                .get(key)
                .and_then(|g| g.members().ok())
                .is_some_and(|m| m.len() <= GROUP_RECEIPTS_MAX_MEMBERS)
    }

    /// The members an own text to the group at `key` lists with their statuses (everyone but this
    /// profile), or none in a group too large for receipts.
    pub(super) fn recipients_of(
        &self,
        key: &[u8; 32],
        members: &[IdentityKey],
    ) -> Vec<RecipientStatus> {
        if !self.receipts_in(key) {
            return Vec::new();
        }
        let me = self.engine.key();
        members
            .iter()
            .filter(|m| **m != me)
            .map(|&member| RecipientStatus {
                member,
                status: MessageStatus::Sent,
                at_ms: 0,
            })
            .collect()
    }

    /// Queues a `delivered` (or `read`) receipt for these texts of the group at `key` (ids with their
    /// authors); it goes within [`GROUP_RECEIPT_DELAY`].
    pub(super) fn queue_group_receipt(
        &mut self,
        key: [u8; 32],
        read: bool,
        ids: &[(MessageId, IdentityKey)],
    ) {
        if read && !self.engine.privacy().read_receipts {
            return;
        }
        if self.receipts_in(&key) {
            self.groups.receipts.queue(key, read, ids, Instant::now());
        }
    }

    /// Sends the receipts that are due: one content per kind and group (split at `MAX_RECEIPT_IDS`), as
    /// a group message by gossip, and over 1:1 only to the texts' authors gossip does not cover.
    pub(super) fn flush_group_receipts(&mut self) {
        for (key, waiting) in self.groups.receipts.take_due(Instant::now()) {
            for (ids, read) in [(waiting.delivered, false), (waiting.read, true)] {
                for chunk in ids.chunks(MAX_RECEIPT_IDS) {
                    if let Err(e) = self.send_group_receipt(key, chunk, read) {
                        debug!(error = %e, "cannot send a group receipt");
                    }
                }
            }
        }
    }

    fn send_group_receipt(
        &mut self,
        key: [u8; 32],
        ids: &[(MessageId, IdentityKey)],
        read: bool,
    ) -> Result<(), NodeError> {
        let now = now_ms();
        let mut rng = rand::make_rng::<rand::rngs::StdRng>();
        let list: Vec<MessageId> = ids.iter().map(|(id, _)| *id).collect();
        let content = Content {
            id: MessageId::new_v7(now, &mut rng),
            sent_at_ms: now,
            body: if read {
                Body::Read(list)
            } else {
                Body::Delivered(list)
            },
        };
        let bytes = self.group_mut(&key)?.send_transient(&content)?;
        let queued = self.group_mail_queue(&bytes, None);
        if let Err(e) = self.save_group(key, Vec::new()) {
            self.group_mail_withdraw(&bytes);
            return Err(e);
        }
        let mut authors: Vec<IdentityKey> = ids.iter().map(|(_, author)| *author).collect();
        authors.sort_unstable_by_key(|k| *k.as_bytes());
        authors.dedup();
        self.groups.first_sight(&bytes);
        self.group_send_queued(&bytes, queued, &authors, &[], &[]);
        Ok(())
    }

    /// A member's `delivered` or `read` content: moves that member's status on this profile's texts it
    /// names. With read receipts off (§12.1) a `read` counts as delivered.
    pub(super) fn take_group_receipt(
        &mut self,
        key: [u8; 32],
        member: IdentityKey,
        ids: &[MessageId],
        read: bool,
    ) {
        let status = if read && self.engine.privacy().read_receipts {
            MessageStatus::Read
        } else {
            MessageStatus::Delivered
        };
        let conversation = ConversationId::Group(key);
        // Most receipts name only others' texts: read first, and write only if one is this profile's.
        let reader = self.engine.store().reader();
        let mine: Vec<MessageId> = ids
            .iter()
            .filter(|id| {
                reader
                    .message(&conversation, id)
                    .ok()
                    .flatten()
                    .is_some_and(|m| m.sender.is_none() && !m.recipients.is_empty())
            })
            .copied()
            .collect();
        if mine.is_empty() {
            return;
        }
        let now = now_ms();
        let updates = self.engine.store_mut().transaction(|b| {
            let mut updates = Vec::new();
            for id in &mine {
                if let Some(update) =
                    b.update_recipient_status(conversation, id, &member, status, now)?
                {
                    updates.push((*id, update));
                }
            }
            Ok(updates)
        });
        let updates = match updates {
            Ok(updates) => updates,
            Err(e) => {
                warn!(error = %e, "cannot record a group receipt");
                return;
            }
        };
        let title = self.summary(&key).map(|s| s.name).unwrap_or_default();
        for (id, update) in updates {
            if let Some(status) = update.status {
                self.emit_group(api::Event::StatusChanged {
                    conversation,
                    title: title.clone(),
                    id,
                    status,
                });
            }
            self.emit_group(api::Event::RecipientsChanged {
                conversation,
                id,
                recipients: update.recipients,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(seed: u8) -> IdentityKey {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(seed));
        tern_protocol::Identity::generate(&mut rng, 0).key()
    }

    #[test]
    fn receipts_gather_until_due_are_bounded_and_stay_home_when_off() {
        let mut pending = PendingReceipts::default();
        let now = Instant::now();
        let bob = member(1);
        let ids: Vec<(MessageId, IdentityKey)> = (0..MAX_PENDING_RECEIPT_IDS as u16 + 3)
            .map(|i| (MessageId([i as u8; 16]), bob))
            .collect();
        pending.queue([1; 32], false, &ids[..1], now);
        let later = now + GROUP_RECEIPT_DELAY / 2;
        pending.queue([1; 32], false, &ids[1..], later);
        pending.queue([1; 32], true, &ids[..2], later);
        assert_eq!(
            pending.due(),
            Some(now + GROUP_RECEIPT_DELAY),
            "the first one sets it"
        );
        assert!(pending.take_due(later).is_empty());
        let due = pending.take_due(now + GROUP_RECEIPT_DELAY);
        assert_eq!(due.len(), 1);
        let (_, waiting) = &due[0];
        assert_eq!(waiting.delivered.len(), MAX_PENDING_RECEIPT_IDS);
        assert_eq!(waiting.delivered[0], ids[3], "the oldest were dropped");
        assert_eq!(waiting.read.len(), 2);
        assert_eq!(pending.due(), None);

        let mut off = PendingReceipts {
            enabled: false,
            ..PendingReceipts::default()
        };
        off.queue([1; 32], true, &ids[..1], now);
        assert_eq!(off.due(), None);
    }
}
