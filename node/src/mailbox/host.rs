//! [`MailboxHost`]: the one serving policy for a mailbox, used by a node started with `--mailbox` and by
//! `tern-bootstrap`. It owns the [`MailboxServer`] store, takes requests in groups and answers them after one
//! commit, says which fresh envelopes to push to which connected owner, and forgets pushes when they are
//! answered. It does no I/O of its own: the caller's event loop moves requests, answers and pushes.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use libp2p::PeerId;
use tern_protocol::{Envelope, EnvelopeId, MailboxId};
use tracing::{debug, trace, warn};

use crate::envelope_wire::EnvelopeAck;
use crate::mailbox::server::{MailboxError, MailboxServer};
use crate::mailbox::wire::{MailboxRequest, MailboxResponse, Refusal};

/// Pushes to connected owners awaiting an answer at once; beyond that, mail waits for the owner's fetch.
pub const MAX_PUSHES_IN_FLIGHT: usize = 256;
/// Requests taken and not yet answered (the caller answers them with [`MailboxHost::answer`] at least
/// once per wake-up; a full group is answered before more are taken).
pub const MAX_PENDING_REQUESTS: usize = 256;
/// Connected peers over which an owner fetched, remembered for pushes.
pub const MAX_OWNER_PEERS: usize = 4096;

/// What the caller sends for one request taken with [`MailboxHost::take`].
#[derive(Debug)]
pub struct Reply<C> {
    pub peer: PeerId,
    pub channel: C,
    pub response: MailboxResponse,
    /// The request was unreadable: disconnect the peer after answering.
    pub disconnect: bool,
}

/// An envelope to push to a connected owner; report the request with [`MailboxHost::push_sent`].
#[derive(Debug, Clone)]
pub struct Push {
    pub owner: PeerId,
    pub mailbox: MailboxId,
    pub id: EnvelopeId,
    pub envelope: Vec<u8>,
}

/// What one group of requests produced.
#[derive(Debug)]
pub struct Answers<C> {
    pub replies: Vec<Reply<C>>,
    pub pushes: Vec<Push>,
}

/// A mailbox served to others. `C` is the caller's answer channel, `R` its outbound request id.
pub struct MailboxHost<C, R> {
    server: MailboxServer,
    pending: Vec<(PeerId, MailboxRequest, C)>,
    /// Connected peers over which an owner has fetched or acknowledged; only these are pushed to.
    owners: HashSet<PeerId>,
    pushes: HashMap<R, (MailboxId, EnvelopeId)>,
}

impl<C, R> std::fmt::Debug for MailboxHost<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxHost")
            .field("server", &self.server)
            .field("pending", &self.pending.len())
            .field("owners", &self.owners.len())
            .field("pushes", &self.pushes.len())
            .finish()
    }
}

impl<C, R: Eq + Hash> MailboxHost<C, R> {
    pub fn new(server: MailboxServer) -> Self {
        Self {
            server,
            pending: Vec::new(),
            owners: HashSet::new(),
            pushes: HashMap::new(),
        }
    }

    pub fn server(&self) -> &MailboxServer {
        &self.server
    }

    /// Pushes awaiting an answer.
    pub fn pushes_in_flight(&self) -> usize {
        self.pushes.len()
    }

    /// Takes a request to answer with the group. When the group is full it is handed back: answer the
    /// group ([`Self::answer`]) and take it again.
    #[allow(clippy::result_large_err)]
    pub fn take(
        &mut self,
        peer: PeerId,
        request: MailboxRequest,
        channel: C,
    ) -> Result<(), (PeerId, MailboxRequest, C)> {
        if self.pending.len() >= MAX_PENDING_REQUESTS {
            return Err((peer, request, channel));
        }
        self.pending.push((peer, request, channel));
        Ok(())
    }

    /// Answers every request taken since the last call, in order, at unix time `now_s`: the deposits among
    /// them are stored with one durable commit before any answer is returned. Fresh mail for owners
    /// connected here comes back as pushes (within [`MAX_PUSHES_IN_FLIGHT`]).
    pub fn answer(&mut self, now_s: u64) -> Answers<C> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Answers {
                replies: Vec::new(),
                pushes: Vec::new(),
            };
        }
        let mut requests = Vec::with_capacity(pending.len());
        let mut rest = Vec::with_capacity(pending.len());
        for (peer, request, channel) in pending {
            // Which mailbox a deposit is for, and its bytes, in case its owner is connected here.
            let deposit = match &request {
                MailboxRequest::Deposit { envelope } if !self.owners.is_empty() => {
                    Envelope::decode(envelope)
                        .ok()
                        .map(|e| (e.mailbox, envelope.clone()))
                }
                _ => None,
            };
            let garbage = matches!(request, MailboxRequest::Invalid);
            requests.push((peer, request));
            rest.push((peer, channel, deposit, garbage));
        }
        let responses = self.server.handle_many(requests, now_s);
        let mut replies = Vec::with_capacity(rest.len());
        let mut pushes = Vec::new();
        for ((peer, channel, deposit, garbage), response) in rest.into_iter().zip(responses) {
            match &response {
                MailboxResponse::Refused(refusal) => {
                    debug!(%peer, reason = refusal.name(), "mailbox request refused");
                }
                MailboxResponse::Envelopes { .. }
                | MailboxResponse::Acked { .. }
                | MailboxResponse::Page { .. } => {
                    if self.owners.len() < MAX_OWNER_PEERS {
                        self.owners.insert(peer);
                    }
                }
                _ => trace!(%peer, "mailbox request answered"),
            }
            if let (MailboxResponse::Deposited { id }, Some((mailbox, envelope))) =
                (&response, deposit)
            {
                self.plan_pushes(mailbox, *id, envelope, &mut pushes);
            }
            replies.push(Reply {
                peer,
                channel,
                response,
                disconnect: garbage,
            });
        }
        Answers { replies, pushes }
    }

    /// Pushes of a fresh envelope to every connected owner of its mailbox, within the bound.
    fn plan_pushes(
        &self,
        mailbox: MailboxId,
        id: EnvelopeId,
        envelope: Vec<u8>,
        pushes: &mut Vec<Push>,
    ) {
        for owner in &self.owners {
            if !self.server.owned_by(owner).contains(&mailbox) {
                continue;
            }
            if self.pushes.len() + pushes.len() >= MAX_PUSHES_IN_FLIGHT {
                debug!("too many pushes in flight; the owner will fetch");
                return;
            }
            pushes.push(Push {
                owner: *owner,
                mailbox,
                id,
                envelope: envelope.clone(),
            });
        }
    }

    /// A push went out as `request`. Returns false (and forgets it) past [`MAX_PUSHES_IN_FLIGHT`].
    pub fn push_sent(&mut self, request: R, push: &Push) -> bool {
        if self.pushes.len() >= MAX_PUSHES_IN_FLIGHT {
            return false;
        }
        self.pushes.insert(request, (push.mailbox, push.id));
        true
    }

    /// An answer to an outbound envelope request (`None`: it failed). Returns whether it was a push; an
    /// owner that took the envelope has it deleted here.
    pub fn push_answered(&mut self, request: &R, ack: Option<EnvelopeAck>) -> bool {
        let Some((mailbox, id)) = self.pushes.remove(request) else {
            return false;
        };
        match ack {
            Some(EnvelopeAck::Accepted | EnvelopeAck::Duplicate) => {
                match self.server.remove(&mailbox, &[id]) {
                    Ok(removed) => debug!(removed, "owner took pushed mail"),
                    Err(e) => warn!(error = %e, "cannot delete pushed mail"),
                }
            }
            Some(EnvelopeAck::Rejected(reason)) => {
                debug!(?reason, "owner refused pushed mail; it stays queued");
            }
            None => debug!("push failed; the mail stays queued"),
        }
        true
    }

    /// A peer's last connection closed.
    pub fn peer_disconnected(&mut self, peer: &PeerId) {
        self.server.peer_disconnected(peer);
        self.owners.remove(peer);
    }

    /// Deletes expired mail; returns how many envelopes.
    pub fn purge(&mut self, now_s: u64) -> Result<u64, MailboxError> {
        self.server.purge_expired(now_s)
    }
}

/// The answer a node that serves no mailbox gives.
pub fn not_serving() -> MailboxResponse {
    MailboxResponse::Refused(Refusal::NotServing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::server::MailboxConfig;

    fn host() -> (tempfile::TempDir, MailboxHost<u32, u64>) {
        let dir = tempfile::tempdir().unwrap();
        let server = MailboxServer::open(
            &dir.path().join("mailbox.redb"),
            PeerId::random().to_bytes(),
            MailboxConfig::default(),
        )
        .unwrap();
        (dir, MailboxHost::new(server))
    }

    #[test]
    fn the_push_map_is_bounded() {
        let (_dir, mut host) = host();
        let push = Push {
            owner: PeerId::random(),
            mailbox: MailboxId([1; 32]),
            id: EnvelopeId([2; 32]),
            envelope: Vec::new(),
        };
        for request in 0..MAX_PUSHES_IN_FLIGHT as u64 {
            assert!(host.push_sent(request, &push));
        }
        assert!(!host.push_sent(u64::MAX, &push), "a push past the bound");
        assert_eq!(host.pushes_in_flight(), MAX_PUSHES_IN_FLIGHT);
        // An answer frees a slot; an unknown answer is not a push.
        assert!(host.push_answered(&0, None));
        assert!(!host.push_answered(&0, None));
        assert!(host.push_sent(u64::MAX, &push));
        assert_eq!(host.pushes_in_flight(), MAX_PUSHES_IN_FLIGHT);
    }

    #[test]
    fn requests_are_taken_in_bounded_groups_and_answered_in_order() {
        let (_dir, mut host) = host();
        let peer = PeerId::random();
        for channel in 0..MAX_PENDING_REQUESTS as u32 {
            assert!(host.take(peer, MailboxRequest::Challenge, channel).is_ok());
        }
        let back = host.take(peer, MailboxRequest::Invalid, 9999);
        assert!(matches!(back, Err((_, MailboxRequest::Invalid, 9999))));
        let answers = host.answer(1_000);
        let channels: Vec<u32> = answers.replies.iter().map(|r| r.channel).collect();
        assert_eq!(
            channels,
            (0..MAX_PENDING_REQUESTS as u32).collect::<Vec<_>>()
        );
        assert!(
            answers
                .replies
                .iter()
                .all(|r| matches!(r.response, MailboxResponse::Nonce { .. }) && !r.disconnect)
        );
        assert!(host.take(peer, MailboxRequest::Invalid, 1).is_ok());
        let answers = host.answer(1_001);
        assert!(answers.replies[0].disconnect);
        assert!(matches!(
            answers.replies[0].response,
            MailboxResponse::Refused(Refusal::Malformed)
        ));
    }
}
