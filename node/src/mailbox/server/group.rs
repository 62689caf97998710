//! The group queue policy (docs/protocol.md §18.6): open a queue, deposit one copy of a group message for
//! the whole group (a commit with its new epoch's key), fetch from a cursor with an epoch key's signature.
//!
//! - **Open** (anyone, rate-limited like deposits): a queue exists once its first epoch key is registered,
//!   self-signed ([`Refusal::NotOwner`] if that signature fails). Opening an existing queue with a key it
//!   holds is answered `Opened` again; with another key [`Refusal::QueueTaken`]. At most
//!   [`MAX_GROUP_QUEUES`](super::MAX_GROUP_QUEUES) queues ([`Refusal::ServerFull`]).
//! - **Deposit** (anyone who knows the queue id, rate-limited with personal deposits): at most
//!   `MAX_GROUP_MESSAGE_LEN` bytes ([`Refusal::TooLarge`]) to a queue that exists ([`Refusal::UnknownQueue`]);
//!   a message with a hash the queue holds is a `Duplicate`. A rotation must be signed by a live key of the
//!   epoch before ([`Refusal::NotMember`] if the signer is unknown, revoked or of another epoch,
//!   [`Refusal::NotOwner`] if the signature fails). A revoking rotation (a commit that removes members)
//!   limits every other key of its epoch and before to the sequence numbers up to and including its own
//!   message. The queue keeps at most [`MAX_GROUP_QUEUE`](super::MAX_GROUP_QUEUE) messages and [`MAX_GROUP_QUEUE_BYTES`](super::MAX_GROUP_QUEUE_BYTES), oldest
//!   dropped; group and personal mail share the server's `max_total_bytes`.
//! - **Fetch** (a member): the nonce must be one this server issued to the asking peer
//!   ([`Refusal::BadChallenge`]), the key registered ([`Refusal::NotMember`]), the signature good
//!   ([`Refusal::NotOwner`]) and the cursor within the key's read limit ([`Refusal::NotMember`]).
//!
//! Messages are kept [`GROUP_RETENTION_S`]; a queue nobody fetched from or opened for `claim_ttl_s` is
//! deleted with its messages.

use libp2p::PeerId;
use tern_protocol::group_queue::{EpochPublicKey, QueueId, message_hash};
use tern_protocol::group_wire::MAX_GROUP_MESSAGE_LEN;
use tracing::debug;

use super::db::{CLAIM_REFRESH_S, GroupDeposit, GroupStored, PURGE_BATCH, Queue, QueueKey};
use super::{MailboxError, MailboxServer, len_u64};
use crate::mailbox::group_wire::{GroupRequest, GroupResponse, QueueAuth, SignedRotation};
use crate::mailbox::wire::{MAX_FETCH_BYTES, MAX_FETCH_ENVELOPES};
use crate::mailbox::{MailboxResponse, Refusal};
use tern_protocol::EnvelopeId;

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;

/// Group messages are kept this long (seconds) after their deposit.
pub const GROUP_RETENTION_S: u64 = 14 * 24 * 3600;

impl MailboxServer {
    pub(super) fn group_request(
        &mut self,
        from: &PeerId,
        request: GroupRequest,
        now_s: u64,
    ) -> Result<MailboxResponse, Refusal> {
        match request {
            GroupRequest::Open {
                queue,
                epoch,
                key,
                signature,
            } => self.group_open(from, queue, epoch, key, &signature, now_s),
            GroupRequest::Deposit {
                queue,
                message,
                rotation,
            } => self.group_deposit(from, queue, &message, rotation, now_s),
            GroupRequest::Fetch {
                queue,
                auth,
                cursor,
                max,
            } => self.group_fetch(from, queue, &auth, cursor, max, now_s),
        }
    }

    fn group_open(
        &mut self,
        from: &PeerId,
        queue: QueueId,
        epoch: u64,
        key: EpochPublicKey,
        signature: &[u8; 64],
        now_s: u64,
    ) -> Result<MailboxResponse, Refusal> {
        key.verify_open(&queue, epoch, signature)
            .map_err(|_| Refusal::NotOwner)?;
        let existing = self.read_queue(&queue, now_s)?;
        if let Some(row) = existing {
            return match row.key(&key) {
                Some(_) => Ok(MailboxResponse::Group(GroupResponse::Opened)),
                None => Err(Refusal::QueueTaken),
            };
        }
        if !self.rate.allow(from, now_s) {
            return Err(Refusal::RateLimited);
        }
        let row = Queue {
            next_seq: 1,
            count: 0,
            bytes: 0,
            last_active: now_s,
            keys: vec![QueueKey {
                epoch,
                key,
                read_limit: u64::MAX,
            }],
        };
        self.write_queue(&queue, &row, now_s)??;
        debug!(peer = %from, "group queue opened");
        Ok(MailboxResponse::Group(GroupResponse::Opened))
    }

    fn group_deposit(
        &mut self,
        from: &PeerId,
        queue: QueueId,
        message: &[u8],
        rotation: Option<SignedRotation>,
        now_s: u64,
    ) -> Result<MailboxResponse, Refusal> {
        if message.len() > MAX_GROUP_MESSAGE_LEN {
            return Err(Refusal::TooLarge);
        }
        let mut row = self
            .read_queue(&queue, now_s)?
            .ok_or(Refusal::UnknownQueue)?;
        if !self.rate.allow(from, now_s) {
            return Err(Refusal::RateLimited);
        }
        if let Some(signed) = rotation {
            let signer = row.key(&signed.signer).ok_or(Refusal::NotMember)?;
            if signer.read_limit != u64::MAX
                || signer.epoch.checked_add(1) != Some(signed.rotation.epoch)
            {
                return Err(Refusal::NotMember);
            }
            signed
                .signer
                .verify_rotation(&queue, &signed.rotation, message, &signed.signature)
                .map_err(|_| Refusal::NotOwner)?;
            if signed.rotation.revoke {
                // The message's own sequence number: the next one (the queue is written in this order).
                let limit = row.next_seq.max(1);
                for k in &mut row.keys {
                    if k.epoch <= signed.rotation.epoch && k.key != signed.rotation.new_key {
                        k.read_limit = k.read_limit.min(limit);
                    }
                }
            }
            row.add_key(QueueKey {
                epoch: signed.rotation.epoch,
                key: signed.rotation.new_key,
                read_limit: u64::MAX,
            });
        }
        let hash = message_hash(message);
        let room = self
            .config
            .max_total_bytes
            .saturating_sub(self.storage.totals().bytes);
        let deposit = GroupDeposit {
            queue,
            hash,
            message,
            updated: row,
            room,
        };
        let stored = self
            .storage
            .db(now_s)?
            .group_deposit(deposit, now_s)
            .map_err(|err| self.storage.failed("group deposit", &err, now_s))??;
        let id = EnvelopeId(hash);
        Ok(match stored {
            GroupStored::New { seq } => {
                self.counters.group_deposits += 1;
                debug!(peer = %from, seq, len = message.len(), "group message deposited");
                MailboxResponse::Deposited { id }
            }
            GroupStored::Duplicate => {
                self.counters.duplicates += 1;
                MailboxResponse::Duplicate { id }
            }
        })
    }

    fn group_fetch(
        &mut self,
        from: &PeerId,
        queue: QueueId,
        auth: &QueueAuth,
        cursor: u64,
        max: u16,
        now_s: u64,
    ) -> Result<MailboxResponse, Refusal> {
        if !self
            .challenges
            .is_valid(&auth.nonce, from, now_s, self.config.challenge_ttl_s)
        {
            return Err(Refusal::BadChallenge);
        }
        let mut row = self
            .read_queue(&queue, now_s)?
            .ok_or(Refusal::UnknownQueue)?;
        let key = row.key(&auth.key).ok_or(Refusal::NotMember)?;
        auth.key
            .verify_fetch(
                &self.local_peer_id,
                &auth.nonce,
                &queue,
                cursor,
                &auth.signature,
            )
            .map_err(|_| Refusal::NotOwner)?;
        if cursor > key.read_limit {
            return Err(Refusal::NotMember);
        }
        if now_s.saturating_sub(row.last_active) >= CLAIM_REFRESH_S {
            row.last_active = now_s;
            self.write_queue(&queue, &row, now_s)??;
        }
        let max = usize::from(max).min(MAX_FETCH_ENVELOPES);
        let (messages, more) = self
            .storage
            .db(now_s)?
            .group_page(&queue, cursor, key.read_limit, max, MAX_FETCH_BYTES)
            .map_err(|err| self.storage.failed("group fetch", &err, now_s))?;
        let next_cursor = messages.last().map_or(cursor, |m| m.seq.saturating_add(1));
        self.counters.fetches += 1;
        self.counters.fetched_envelopes += len_u64(messages.len());
        Ok(MailboxResponse::Group(GroupResponse::Messages {
            messages,
            next_cursor,
            more,
        }))
    }

    fn read_queue(&mut self, queue: &QueueId, now_s: u64) -> Result<Option<Queue>, Refusal> {
        self.storage
            .db(now_s)?
            .queue(queue)
            .map_err(|err| self.storage.failed("read group queue", &err, now_s))
    }

    fn write_queue(
        &mut self,
        queue: &QueueId,
        row: &Queue,
        now_s: u64,
    ) -> Result<Result<(), Refusal>, Refusal> {
        self.storage
            .db(now_s)?
            .put_queue(queue, row)
            .map_err(|err| self.storage.failed("write group queue", &err, now_s))
    }

    /// Deletes group messages past [`GROUP_RETENTION_S`] and idle queues, in batches; returns how many
    /// messages went.
    pub(super) fn purge_groups(&mut self, now_s: u64) -> Result<u64, MailboxError> {
        let mut total = 0u64;
        let idle_s = self.config.claim_ttl_s;
        while let Ok(db) = self.storage.db(now_s) {
            let purged = db
                .group_purge(now_s, GROUP_RETENTION_S, idle_s, PURGE_BATCH)
                .inspect_err(|err| {
                    self.storage.failed("purge group queues", err, now_s);
                })?;
            total += len_u64(purged);
            if purged < PURGE_BATCH {
                break;
            }
        }
        Ok(total)
    }
}
