//! The owner's requests: Fetch and Ack (a page, then its acknowledgement: two round trips per page), and
//! FetchPage (one round trip per page: the acknowledgement of earlier pages rides on the request for the
//! next, and the page is read from a cursor, so envelopes handed out and not acknowledged yet are not handed
//! out again within one paged fetch).

use libp2p::PeerId;
use tern_protocol::{EnvelopeId, MailboxId};
use tracing::warn;

use super::db::Queued;
use super::{
    MAX_ACK_IDS, MAX_CLAIMS, MAX_FETCH_BYTES, MAX_FETCH_ENVELOPES, MAX_PAGE_ACK_IDS, MailboxServer,
    len_u64,
};
use crate::mailbox::{MailboxResponse, OwnerAuth, Refusal};

impl MailboxServer {
    /// Checks an owner's proof; returns the mailbox it owns and remembers the peer as its owner.
    pub(super) fn authorise(
        &mut self,
        from: &PeerId,
        auth: &OwnerAuth,
        now_s: u64,
    ) -> Result<MailboxId, Refusal> {
        auth.verify(&self.local_peer_id)
            .map_err(|_| Refusal::NotOwner)?;
        if !self
            .challenges
            .is_valid(&auth.nonce, from, now_s, self.config.challenge_ttl_s)
        {
            return Err(Refusal::BadChallenge);
        }
        let mailbox = auth.identity.mailbox_id();
        self.owners.record(*from, mailbox, now_s);
        let claimed = self
            .storage
            .db(now_s)?
            .claim(&mailbox, now_s)
            .map_err(|err| self.storage.failed("claim", &err, now_s))?;
        if claimed {
            self.claims_full_said = false;
        } else if !self.claims_full_said {
            self.claims_full_said = true;
            warn!(
                max = MAX_CLAIMS,
                "the claim table is full: new owners' mail is held as unclaimed until lapsed claims are purged"
            );
        }
        Ok(mailbox)
    }

    pub(super) fn fetch(
        &mut self,
        from: &PeerId,
        auth: &OwnerAuth,
        max: u16,
        now_s: u64,
    ) -> Result<MailboxResponse, Refusal> {
        let mailbox = self.authorise(from, auth, now_s)?;
        let (queued, more) = self.read_page(&mailbox, 0, max, now_s)?;
        Ok(MailboxResponse::Envelopes {
            envelopes: queued.into_iter().map(|q| q.bytes).collect(),
            more,
        })
    }

    pub(super) fn ack(
        &mut self,
        from: &PeerId,
        auth: &OwnerAuth,
        ids: &[EnvelopeId],
        now_s: u64,
    ) -> Result<MailboxResponse, Refusal> {
        let mailbox = self.authorise(from, auth, now_s)?;
        let count = self.delete_acked(&mailbox, ids, MAX_ACK_IDS, now_s)?;
        Ok(MailboxResponse::Acked { count })
    }

    /// Deletes the acknowledged envelopes of the owner's mailbox (one durable commit, when there are any,
    /// before the answer), then returns the page from `cursor` on.
    pub(super) fn fetch_page(
        &mut self,
        from: &PeerId,
        auth: &OwnerAuth,
        cursor: u64,
        max: u16,
        ack: &[EnvelopeId],
        now_s: u64,
    ) -> Result<MailboxResponse, Refusal> {
        let mailbox = self.authorise(from, auth, now_s)?;
        let acked = self.delete_acked(&mailbox, ack, MAX_PAGE_ACK_IDS, now_s)?;
        let (queued, more) = self.read_page(&mailbox, cursor, max, now_s)?;
        let next = queued.last().map_or(cursor, |q| q.seq.saturating_add(1));
        Ok(MailboxResponse::Page {
            acked,
            envelopes: queued.into_iter().map(|q| q.bytes).collect(),
            next,
            more,
        })
    }

    /// Deletes `ids` (at most `bound` of them, else [`Refusal::Malformed`]) from `mailbox`, durably; returns
    /// how many existed.
    fn delete_acked(
        &mut self,
        mailbox: &MailboxId,
        ids: &[EnvelopeId],
        bound: usize,
        now_s: u64,
    ) -> Result<u32, Refusal> {
        if ids.len() > bound {
            return Err(Refusal::Malformed);
        }
        let count = self
            .storage
            .db(now_s)?
            .remove(mailbox, ids)
            .map_err(|err| self.storage.failed("acknowledge", &err, now_s))?;
        self.counters.acked += u64::from(count);
        Ok(count)
    }

    /// The page of `mailbox` from `cursor` on: at most `min(max, MAX_FETCH_ENVELOPES)` envelopes and
    /// [`MAX_FETCH_BYTES`] (the first always fits); whether more wait.
    fn read_page(
        &mut self,
        mailbox: &MailboxId,
        cursor: u64,
        max: u16,
        now_s: u64,
    ) -> Result<(Vec<Queued>, bool), Refusal> {
        let max = usize::from(max).min(MAX_FETCH_ENVELOPES);
        let (queued, more) = self
            .storage
            .db(now_s)?
            .page(mailbox, cursor, now_s, max, MAX_FETCH_BYTES)
            .map_err(|err| self.storage.failed("fetch", &err, now_s))?;
        self.counters.fetches += 1;
        self.counters.fetched_envelopes += len_u64(queued.len());
        Ok((queued, more))
    }
}
