//! The server's bounded in-memory state: depositor rate buckets, outstanding challenges and owner sessions.

use std::collections::{BTreeMap, HashMap, VecDeque};

use libp2p::PeerId;
use tern_protocol::MailboxId;

use crate::mailbox::wire::NONCE_LEN;

/// At most this many depositors have a rate bucket; past it, buckets that have refilled (indistinguishable
/// from new ones) are dropped, then the longest idle.
pub const MAX_RATE_BUCKETS: usize = 100_000;
/// At most this many challenge nonces are outstanding; past it the oldest is forgotten.
pub const MAX_CHALLENGES: usize = 10_000;
/// At most this many outstanding nonces per peer; past it that peer's oldest is forgotten, so one peer cannot
/// flush everyone else's nonces.
pub const MAX_CHALLENGES_PER_PEER: usize = 4;
/// At most this many peers are remembered as mailbox owners.
pub const MAX_OWNER_PEERS: usize = 10_000;
/// At most this many mailboxes are remembered per owner peer.
pub const MAX_MAILBOXES_PER_PEER: usize = 8;

/// A token is this many units; a bucket gains `per_minute` units per second, so integer arithmetic is exact.
const UNITS_PER_TOKEN: u64 = 60;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u64,
    last_s: u64,
}

/// Token buckets per depositor: burst `per_minute`, refilled at `per_minute` tokens a minute.
#[derive(Debug)]
pub(super) struct RateLimiter {
    per_minute: u64,
    buckets: HashMap<PeerId, Bucket>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: u64::from(per_minute),
            buckets: HashMap::new(),
        }
    }

    fn capacity(&self) -> u64 {
        self.per_minute.saturating_mul(UNITS_PER_TOKEN)
    }

    fn refilled(&self, bucket: Bucket, now_s: u64) -> u64 {
        let gained = now_s
            .saturating_sub(bucket.last_s)
            .saturating_mul(self.per_minute);
        bucket.units.saturating_add(gained).min(self.capacity())
    }

    /// Takes one token from `peer`'s bucket at `now_s`; false if it has none.
    pub fn allow(&mut self, peer: &PeerId, now_s: u64) -> bool {
        if !self.buckets.contains_key(peer) && self.buckets.len() >= MAX_RATE_BUCKETS {
            self.evict(now_s);
        }
        let capacity = self.capacity();
        let per_minute = self.per_minute;
        let bucket = self.buckets.entry(*peer).or_insert(Bucket {
            units: capacity,
            last_s: now_s,
        });
        let gained = now_s
            .saturating_sub(bucket.last_s)
            .saturating_mul(per_minute);
        bucket.units = bucket.units.saturating_add(gained).min(capacity);
        bucket.last_s = bucket.last_s.max(now_s);
        if bucket.units >= UNITS_PER_TOKEN {
            bucket.units -= UNITS_PER_TOKEN;
            true
        } else {
            false
        }
    }

    /// Makes room for one bucket: drops every full bucket, and if none was, the longest idle one.
    fn evict(&mut self, now_s: u64) {
        let capacity = self.capacity();
        let full: Vec<PeerId> = self
            .buckets
            .iter()
            .filter(|(_, b)| self.refilled(**b, now_s) >= capacity)
            .map(|(p, _)| *p)
            .collect();
        for peer in &full {
            self.buckets.remove(peer);
        }
        if self.buckets.len() >= MAX_RATE_BUCKETS
            && let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last_s)
                .map(|(p, _)| *p)
        {
            self.buckets.remove(&oldest);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[derive(Debug, Clone, Copy)]
struct Issued {
    peer: PeerId,
    expires_at: u64,
    seq: u64,
}

/// Outstanding challenge nonces, each bound to the peer that asked for it and valid until it expires.
#[derive(Debug, Default)]
pub(super) struct Challenges {
    by_nonce: HashMap<[u8; NONCE_LEN], Issued>,
    /// Issue order.
    order: BTreeMap<u64, [u8; NONCE_LEN]>,
    /// Each peer's outstanding nonces by issue sequence, oldest first.
    per_peer: HashMap<PeerId, VecDeque<u64>>,
    next_seq: u64,
}

impl Challenges {
    fn remove_seq(&mut self, seq: u64) {
        let Some(nonce) = self.order.remove(&seq) else {
            return;
        };
        let Some(issued) = self.by_nonce.remove(&nonce) else {
            return;
        };
        if let Some(seqs) = self.per_peer.get_mut(&issued.peer) {
            seqs.retain(|s| *s != seq);
            if seqs.is_empty() {
                self.per_peer.remove(&issued.peer);
            }
        }
    }

    /// Remembers `nonce` for `peer` until `expires_at`, forgetting expired, the peer's oldest and the
    /// server's oldest nonces as the bounds require.
    pub fn issue(&mut self, peer: PeerId, nonce: [u8; NONCE_LEN], now_s: u64, expires_at: u64) {
        while let Some((&seq, nonce)) = self.order.first_key_value() {
            let expired = self
                .by_nonce
                .get(nonce)
                .is_none_or(|issued| issued.expires_at <= now_s);
            if !expired {
                break;
            }
            self.remove_seq(seq);
        }
        if let Some(oldest) = self
            .per_peer
            .get(&peer)
            .filter(|seqs| seqs.len() >= MAX_CHALLENGES_PER_PEER)
            .and_then(|seqs| seqs.front().copied())
        {
            self.remove_seq(oldest);
        }
        while self.by_nonce.len() >= MAX_CHALLENGES {
            let Some((&seq, _)) = self.order.first_key_value() else {
                break;
            };
            self.remove_seq(seq);
        }
        // A repeated nonce (practically impossible from a CSPRNG) replaces the earlier one.
        if let Some(previous) = self.by_nonce.get(&nonce).map(|i| i.seq) {
            self.remove_seq(previous);
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.by_nonce.insert(
            nonce,
            Issued {
                peer,
                expires_at,
                seq,
            },
        );
        self.order.insert(seq, nonce);
        self.per_peer.entry(peer).or_default().push_back(seq);
    }

    /// Whether `nonce` was issued to `peer` and is still valid at `now_s`. Nonces are not single-use.
    pub fn is_valid(&self, nonce: &[u8; NONCE_LEN], peer: &PeerId, now_s: u64) -> bool {
        self.by_nonce
            .get(nonce)
            .is_some_and(|issued| issued.peer == *peer && now_s < issued.expires_at)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_nonce.len()
    }
}

/// Which mailboxes each connected peer proved it owns, and when it last did.
#[derive(Debug, Default)]
pub(super) struct OwnerSessions {
    peers: HashMap<PeerId, Vec<(MailboxId, u64)>>,
}

impl OwnerSessions {
    /// Records that `peer` proved it owns `mailbox` at `now_s`.
    pub fn record(&mut self, peer: PeerId, mailbox: MailboxId, now_s: u64) {
        if !self.peers.contains_key(&peer)
            && self.peers.len() >= MAX_OWNER_PEERS
            && let Some(stalest) = self
                .peers
                .iter()
                .min_by_key(|(_, boxes)| boxes.iter().map(|(_, at)| *at).max().unwrap_or(0))
                .map(|(p, _)| *p)
        {
            self.peers.remove(&stalest);
        }
        let boxes = self.peers.entry(peer).or_default();
        if let Some(entry) = boxes.iter_mut().find(|(m, _)| *m == mailbox) {
            entry.1 = entry.1.max(now_s);
            return;
        }
        if boxes.len() >= MAX_MAILBOXES_PER_PEER
            && let Some(at) = boxes
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(i, _)| i)
        {
            boxes.swap_remove(at);
        }
        boxes.push((mailbox, now_s));
    }

    /// The mailboxes `peer` proved it owns after `since_s`.
    pub fn owned_by(&self, peer: &PeerId, since_s: u64) -> Vec<MailboxId> {
        self.peers
            .get(peer)
            .map(|boxes| {
                boxes
                    .iter()
                    .filter(|(_, at)| *at > since_s)
                    .map(|(m, _)| *m)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let mut rate = RateLimiter::new(3);
        let peer = PeerId::random();
        assert!(rate.allow(&peer, 100));
        assert!(rate.allow(&peer, 100));
        assert!(rate.allow(&peer, 100));
        assert!(!rate.allow(&peer, 100));
        // 3 a minute: one token every 20 s.
        assert!(!rate.allow(&peer, 119));
        assert!(rate.allow(&peer, 120));
        assert!(!rate.allow(&peer, 120));
        // Time going backwards gains nothing.
        assert!(!rate.allow(&peer, 50));
        // Another peer has its own bucket.
        assert!(rate.allow(&PeerId::random(), 120));
    }

    #[test]
    fn rate_buckets_are_bounded() {
        let mut rate = RateLimiter::new(1);
        for _ in 0..MAX_RATE_BUCKETS + 10 {
            rate.allow(&PeerId::random(), 0);
        }
        assert!(rate.len() <= MAX_RATE_BUCKETS);
    }

    #[test]
    fn challenges_are_bound_to_peer_and_time_and_bounded() {
        let mut c = Challenges::default();
        let alice = PeerId::random();
        let bob = PeerId::random();
        c.issue(alice, [1; NONCE_LEN], 0, 60);
        assert!(c.is_valid(&[1; NONCE_LEN], &alice, 59));
        assert!(c.is_valid(&[1; NONCE_LEN], &alice, 59), "not single-use");
        assert!(!c.is_valid(&[1; NONCE_LEN], &alice, 60));
        assert!(!c.is_valid(&[1; NONCE_LEN], &bob, 0));
        assert!(!c.is_valid(&[2; NONCE_LEN], &alice, 0));

        // One peer keeps at most MAX_CHALLENGES_PER_PEER.
        for i in 0..10u8 {
            c.issue(bob, [100 + i; NONCE_LEN], 1, 61);
        }
        assert!(!c.is_valid(&[100; NONCE_LEN], &bob, 2));
        assert!(c.is_valid(&[109; NONCE_LEN], &bob, 2));
        assert!(
            c.is_valid(&[1; NONCE_LEN], &alice, 2),
            "bob did not flush alice"
        );

        // The server keeps at most MAX_CHALLENGES.
        let mut c = Challenges::default();
        for i in 0..MAX_CHALLENGES + 5 {
            let mut nonce = [0; NONCE_LEN];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            c.issue(PeerId::random(), nonce, 0, 60);
        }
        assert_eq!(c.len(), MAX_CHALLENGES);
        assert!(c.order.len() == MAX_CHALLENGES && c.per_peer.len() == MAX_CHALLENGES);
    }

    #[test]
    fn owner_sessions_are_bounded() {
        let mut s = OwnerSessions::default();
        let peer = PeerId::random();
        for i in 0..20u8 {
            s.record(peer, MailboxId([i; 32]), u64::from(i) + 1);
        }
        let owned = s.owned_by(&peer, 0);
        assert_eq!(owned.len(), MAX_MAILBOXES_PER_PEER);
        assert!(owned.contains(&MailboxId([19; 32])));
        assert!(s.owned_by(&peer, 20).is_empty());
        s.forget(&peer);
        assert!(s.owned_by(&peer, 0).is_empty());
    }
}
