//! The server's bounded in-memory state: depositor rate buckets and owner sessions; and challenge nonces,
//! which need no state.

use std::collections::HashMap;

use libp2p::PeerId;
use tern_protocol::MailboxId;
use tern_protocol::crypto::{SecretKey, hmac};

use crate::mailbox::wire::NONCE_LEN;

/// At most this many depositors have a rate bucket; past it, buckets that have refilled (indistinguishable
/// from new ones) are dropped, then the longest idle.
pub const MAX_RATE_BUCKETS: usize = 100_000;
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

/// Label of the MAC that makes a challenge nonce.
const LABEL_CHALLENGE: &[u8] = b"tern/mailbox/challenge/v1";
/// Bytes of a nonce that carry its expiry; the rest is the MAC, truncated.
const EXPIRY_LEN: usize = 8;

/// Challenge nonces made without keeping any: a nonce is `expires_at u64 BE ‖ HMAC-SHA-256(key, label ‖
/// peer ‖ expires_at)[..24]` under a key drawn when the server opens. The server checks a nonce by making it
/// again, so issuing one stores nothing, and no number of peers asking for nonces can push out an owner's.
/// A nonce is valid for the peer it was issued to until it expires (not single-use, as before); nonces die
/// with the process that issued them.
pub(super) struct Challenges {
    key: SecretKey,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Challenges")
    }
}

impl Challenges {
    pub fn new() -> Self {
        Self {
            key: SecretKey::random(&mut rand::rng()),
        }
    }

    fn mac(&self, peer: &PeerId, expires_at: u64) -> [u8; 32] {
        let peer = peer.to_bytes();
        let mut data = Vec::with_capacity(LABEL_CHALLENGE.len() + peer.len() + EXPIRY_LEN);
        data.extend_from_slice(LABEL_CHALLENGE);
        data.extend_from_slice(&peer);
        data.extend_from_slice(&expires_at.to_be_bytes());
        hmac(self.key.as_bytes(), &data)
    }

    /// A nonce for `peer`, valid until `expires_at`.
    pub fn issue(&self, peer: &PeerId, expires_at: u64) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..EXPIRY_LEN].copy_from_slice(&expires_at.to_be_bytes());
        nonce[EXPIRY_LEN..].copy_from_slice(&self.mac(peer, expires_at)[..NONCE_LEN - EXPIRY_LEN]);
        nonce
    }

    /// Whether `nonce` was issued to `peer` by this server and is still valid at `now_s` (and expires no
    /// later than `ttl_s` from now: a nonce is never valid longer than the server hands them out for).
    pub fn is_valid(&self, nonce: &[u8; NONCE_LEN], peer: &PeerId, now_s: u64, ttl_s: u64) -> bool {
        let mut expiry = [0u8; EXPIRY_LEN];
        expiry.copy_from_slice(&nonce[..EXPIRY_LEN]);
        let expires_at = u64::from_be_bytes(expiry);
        if expires_at <= now_s || expires_at > now_s.saturating_add(ttl_s) {
            return false;
        }
        let mac = self.mac(peer, expires_at);
        // Compared in constant time: every byte is looked at whatever the first difference.
        let difference = nonce[EXPIRY_LEN..]
            .iter()
            .zip(&mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        difference == 0
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
    fn challenges_are_bound_to_peer_time_and_server() {
        let c = Challenges::new();
        let alice = PeerId::random();
        let bob = PeerId::random();
        let nonce = c.issue(&alice, 60);
        assert!(c.is_valid(&nonce, &alice, 0, 60));
        assert!(c.is_valid(&nonce, &alice, 59, 60), "not single-use");
        assert!(!c.is_valid(&nonce, &alice, 60, 60), "expired");
        assert!(!c.is_valid(&nonce, &bob, 0, 60), "another peer's");
        assert!(
            !c.is_valid(&nonce, &alice, 0, 30),
            "valid longer than the server hands nonces out for"
        );
        let mut flipped = nonce;
        flipped[NONCE_LEN - 1] ^= 1;
        assert!(!c.is_valid(&flipped, &alice, 0, 60));
        assert!(!c.is_valid(&[0; NONCE_LEN], &alice, 0, 60));
        assert!(
            !Challenges::new().is_valid(&nonce, &alice, 0, 60),
            "another server's (or an earlier run's)"
        );
        assert_ne!(c.issue(&alice, 61), nonce, "a new expiry is a new nonce");
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
