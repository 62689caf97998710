//! The mailbox server's policy and storage, driven through its public API with real sealed envelopes and an
//! injected clock.

use std::path::{Path, PathBuf};

use libp2p::PeerId;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tern_node::mailbox::wire::{MAX_FETCH_BYTES, MAX_FETCH_ENVELOPES, NONCE_LEN};
use tern_node::mailbox::{
    MailboxConfig, MailboxError, MailboxRequest, MailboxResponse, MailboxServer, MailboxStats,
    OwnerAuth, Refusal,
};
use tern_protocol::envelope::{MAX_ENVELOPE_LEN, MAX_ENVELOPE_TTL_S};
use tern_protocol::{Envelope, EnvelopeId, Identity, MailboxId};

const NOW: u64 = 1_750_000_000;
const DAY: u64 = 24 * 3600;
const SERVER_PEER_ID: &[u8] = b"\x00\x24server-peer-id-for-tests";

struct World {
    rng: ChaCha20Rng,
    sender: Identity,
    dir: tempfile::TempDir,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sender = Identity::generate(&mut rng, NOW * 1000);
        Self {
            rng,
            sender,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A new identity (a mailbox owner).
    fn identity(&mut self) -> Identity {
        Identity::generate(&mut self.rng, NOW * 1000)
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("mailbox.redb")
    }

    fn server(&self, config: MailboxConfig) -> MailboxServer {
        MailboxServer::open(&self.path(), SERVER_PEER_ID.to_vec(), config).unwrap()
    }

    /// A real envelope for `to` with a `len`-byte session message, expiring at `expires_at`.
    fn envelope_sized(
        &mut self,
        to: &Identity,
        len: usize,
        expires_at: u64,
    ) -> (EnvelopeId, Vec<u8>) {
        let mut message = vec![0u8; len];
        self.rng.fill(&mut message[..]);
        let envelope = Envelope::seal(
            &self.sender,
            to.public(),
            &message,
            expires_at,
            &mut self.rng,
        )
        .unwrap();
        (envelope.id(), envelope.encode())
    }

    fn envelope(&mut self, to: &Identity, expires_at: u64) -> (EnvelopeId, Vec<u8>) {
        self.envelope_sized(to, 32, expires_at)
    }
}

fn deposit(
    server: &mut MailboxServer,
    from: &PeerId,
    envelope: &[u8],
    now: u64,
) -> MailboxResponse {
    server.handle(
        from,
        MailboxRequest::Deposit {
            envelope: envelope.to_vec(),
        },
        now,
    )
}

fn nonce(server: &mut MailboxServer, from: &PeerId, now: u64) -> [u8; NONCE_LEN] {
    match server.handle(from, MailboxRequest::Challenge, now) {
        MailboxResponse::Nonce { nonce } => nonce,
        other => panic!("expected a nonce, got {other:?}"),
    }
}

fn auth(server: &mut MailboxServer, owner: &Identity, from: &PeerId, now: u64) -> OwnerAuth {
    let nonce = nonce(server, from, now);
    OwnerAuth::sign(owner, SERVER_PEER_ID, nonce)
}

fn fetch_with(
    server: &mut MailboxServer,
    from: &PeerId,
    auth: &OwnerAuth,
    max: u16,
    now: u64,
) -> MailboxResponse {
    server.handle(
        from,
        MailboxRequest::Fetch {
            auth: auth.clone(),
            max,
        },
        now,
    )
}

/// Fetches as `owner` over a fresh challenge; returns the envelopes and `more`.
fn fetch(
    server: &mut MailboxServer,
    owner: &Identity,
    from: &PeerId,
    max: u16,
    now: u64,
) -> (Vec<Vec<u8>>, bool) {
    let auth = auth(server, owner, from, now);
    match fetch_with(server, from, &auth, max, now) {
        MailboxResponse::Envelopes { envelopes, more } => (envelopes, more),
        other => panic!("expected envelopes, got {other:?}"),
    }
}

fn ack(
    server: &mut MailboxServer,
    owner: &Identity,
    from: &PeerId,
    ids: Vec<EnvelopeId>,
    now: u64,
) -> MailboxResponse {
    let auth = auth(server, owner, from, now);
    server.handle(from, MailboxRequest::Ack { auth, ids }, now)
}

fn refusals(server: &MailboxServer, reason: Refusal) -> u64 {
    server
        .counters()
        .refusals
        .get(reason.name())
        .copied()
        .unwrap_or(0)
}

fn assert_refused(response: MailboxResponse, reason: Refusal) {
    assert_eq!(response, MailboxResponse::Refused(reason));
}

#[test]
fn deposited_mail_is_fetched_by_its_owner_then_acknowledged_away() {
    let mut w = World::new(1);
    let mut server = w.server(MailboxConfig::default());
    let alice = w.identity();
    let (id, bytes) = w.envelope(&alice, NOW + DAY);
    let depositor = PeerId::random();
    let owner = PeerId::random();

    assert_eq!(
        deposit(&mut server, &depositor, &bytes, NOW),
        MailboxResponse::Deposited { id }
    );
    assert_eq!(
        server.stats(),
        MailboxStats {
            envelopes: 1,
            bytes: bytes.len() as u64,
            mailboxes: 1,
            // Alice never fetched here yet: her mail is unclaimed mail.
            unclaimed_bytes: bytes.len() as u64,
            claims: 0,
            ..MailboxStats::default()
        }
    );

    assert_eq!(
        fetch(&mut server, &alice, &owner, 10, NOW + 1),
        (vec![bytes], false)
    );
    assert_eq!(
        server.owned_by(&owner),
        vec![alice.key().mailbox_id()],
        "a proven owner is remembered for push"
    );
    assert_eq!(
        ack(&mut server, &alice, &owner, vec![id, id], NOW + 2),
        MailboxResponse::Acked { count: 1 }
    );
    assert_eq!(
        fetch(&mut server, &alice, &owner, 10, NOW + 3),
        (vec![], false)
    );
    assert_eq!(
        server.stats(),
        MailboxStats {
            claims: 1,
            ..MailboxStats::default()
        },
        "everything acknowledged away; Alice's fetch claimed her mailbox"
    );

    let counters = server.counters();
    assert_eq!(counters.deposits, 1);
    assert_eq!(counters.fetches, 2);
    assert_eq!(counters.fetched_envelopes, 1);
    assert_eq!(counters.acked, 1);
    assert!(counters.refusals.is_empty());
}

#[test]
fn a_duplicate_deposit_is_stored_once() {
    let mut w = World::new(2);
    let mut server = w.server(MailboxConfig::default());
    let alice = w.identity();
    let (id, bytes) = w.envelope(&alice, NOW + DAY);
    let peer = PeerId::random();
    assert_eq!(
        deposit(&mut server, &peer, &bytes, NOW),
        MailboxResponse::Deposited { id }
    );
    assert_eq!(
        deposit(&mut server, &PeerId::random(), &bytes, NOW + 5),
        MailboxResponse::Duplicate { id }
    );
    assert_eq!(server.stats().envelopes, 1);
    assert_eq!(server.counters().duplicates, 1);
    assert_eq!(server.counters().deposits, 1);
    assert_eq!(fetch(&mut server, &alice, &peer, 10, NOW + 6).0.len(), 1);
}

#[test]
fn only_the_owner_fetches_or_acknowledges_a_mailbox() {
    let mut w = World::new(3);
    let mut server = w.server(MailboxConfig::default());
    let (alice, carol) = (w.identity(), w.identity());
    let (alice_id, alice_mail) = w.envelope(&alice, NOW + DAY);
    let (_, carol_mail) = w.envelope(&carol, NOW + DAY);
    let depositor = PeerId::random();
    deposit(&mut server, &depositor, &alice_mail, NOW);
    deposit(&mut server, &depositor, &carol_mail, NOW);
    let mallory = PeerId::random();

    // Carol's valid proof gets only Carol's mail, and cannot delete Alice's.
    assert_eq!(
        fetch(&mut server, &carol, &mallory, 10, NOW),
        (vec![carol_mail], false)
    );
    assert_eq!(
        ack(&mut server, &carol, &mallory, vec![alice_id], NOW),
        MailboxResponse::Acked { count: 0 }
    );
    assert_eq!(server.stats().envelopes, 2);

    // A proof signed for another server.
    let n = nonce(&mut server, &mallory, NOW);
    let other_server = OwnerAuth::sign(&alice, b"another server", n);
    assert_refused(
        fetch_with(&mut server, &mallory, &other_server, 10, NOW),
        Refusal::NotOwner,
    );
    // A proof whose signature was tampered with.
    let mut tampered = OwnerAuth::sign(&alice, SERVER_PEER_ID, n);
    tampered.signature[0] ^= 1;
    assert_refused(
        fetch_with(&mut server, &mallory, &tampered, 10, NOW),
        Refusal::NotOwner,
    );
    // Carol's identity claiming Alice's signature.
    let mut swapped = OwnerAuth::sign(&alice, SERVER_PEER_ID, n);
    swapped.identity = carol.key();
    assert_refused(
        fetch_with(&mut server, &mallory, &swapped, 10, NOW),
        Refusal::NotOwner,
    );
    assert_eq!(refusals(&server, Refusal::NotOwner), 3);

    // A nonce the server never issued.
    let unknown = OwnerAuth::sign(&alice, SERVER_PEER_ID, [7; NONCE_LEN]);
    assert_refused(
        fetch_with(&mut server, &mallory, &unknown, 10, NOW),
        Refusal::BadChallenge,
    );
    // A nonce issued to another peer (Alice's real proof, replayed by Mallory).
    let owner = PeerId::random();
    let alices = auth(&mut server, &alice, &owner, NOW);
    assert_refused(
        fetch_with(&mut server, &mallory, &alices, 10, NOW),
        Refusal::BadChallenge,
    );
    assert_refused(
        server.handle(
            &mallory,
            MailboxRequest::Ack {
                auth: alices.clone(),
                ids: vec![alice_id],
            },
            NOW,
        ),
        Refusal::BadChallenge,
    );
    // The same nonce serves its own peer several times (paging) until it expires.
    let ttl = server.config().challenge_ttl_s;
    for at in [NOW, NOW + 1, NOW + ttl - 1] {
        assert!(matches!(
            fetch_with(&mut server, &owner, &alices, 10, at),
            MailboxResponse::Envelopes { .. }
        ));
    }
    assert_refused(
        fetch_with(&mut server, &owner, &alices, 10, NOW + ttl),
        Refusal::BadChallenge,
    );
    assert_eq!(refusals(&server, Refusal::BadChallenge), 4);
    assert_eq!(server.stats().envelopes, 2, "nothing was deleted");
    assert!(
        server
            .owned_by(&mallory)
            .contains(&carol.key().mailbox_id())
    );
    assert!(
        !server
            .owned_by(&mallory)
            .contains(&alice.key().mailbox_id())
    );
}

#[test]
fn bad_envelopes_are_refused_and_counted() {
    let mut w = World::new(4);
    let mut server = w.server(MailboxConfig::default());
    let alice = w.identity();
    let peer = PeerId::random();

    assert_refused(
        deposit(&mut server, &peer, &vec![1; MAX_ENVELOPE_LEN + 1], NOW),
        Refusal::TooLarge,
    );
    let mut garbage = vec![0u8; 500];
    w.rng.fill(&mut garbage[..]);
    assert_refused(
        deposit(&mut server, &peer, &garbage, NOW),
        Refusal::Malformed,
    );
    assert_refused(deposit(&mut server, &peer, &[], NOW), Refusal::Malformed);
    let (_, mut truncated) = w.envelope(&alice, NOW + DAY);
    truncated.pop();
    assert_refused(
        deposit(&mut server, &peer, &truncated, NOW),
        Refusal::Malformed,
    );

    let (_, expired) = w.envelope(&alice, NOW);
    assert_refused(deposit(&mut server, &peer, &expired, NOW), Refusal::Expired);
    let (_, far) = w.envelope(&alice, NOW + MAX_ENVELOPE_TTL_S + 1);
    assert_refused(
        deposit(&mut server, &peer, &far, NOW),
        Refusal::ExpiryTooFar,
    );
    let (_, just_in_range) = w.envelope(&alice, NOW + MAX_ENVELOPE_TTL_S);
    assert!(matches!(
        deposit(&mut server, &peer, &just_in_range, NOW),
        MailboxResponse::Deposited { .. }
    ));

    for (reason, count) in [
        (Refusal::TooLarge, 1),
        (Refusal::Malformed, 3),
        (Refusal::Expired, 1),
        (Refusal::ExpiryTooFar, 1),
    ] {
        assert_eq!(refusals(&server, reason), count, "{reason:?}");
    }
    assert_eq!(server.stats().envelopes, 1);
}

#[test]
fn mailbox_quotas_are_enforced_per_mailbox() {
    let mut w = World::new(5);
    let (alice, carol) = (w.identity(), w.identity());
    let peer = PeerId::random();

    // By count.
    let mut server = w.server(MailboxConfig {
        quota_envelopes: 2,
        ..MailboxConfig::default()
    });
    for _ in 0..2 {
        let (_, e) = w.envelope(&alice, NOW + DAY);
        assert!(matches!(
            deposit(&mut server, &peer, &e, NOW),
            MailboxResponse::Deposited { .. }
        ));
    }
    let (_, third) = w.envelope(&alice, NOW + DAY);
    assert_refused(
        deposit(&mut server, &peer, &third, NOW),
        Refusal::QuotaCount,
    );
    let (_, for_carol) = w.envelope(&carol, NOW + DAY);
    assert!(matches!(
        deposit(&mut server, &peer, &for_carol, NOW),
        MailboxResponse::Deposited { .. }
    ));
    assert_eq!(refusals(&server, Refusal::QuotaCount), 1);
    // Acknowledging makes room again.
    let (id, _) = server.queued(&alice.key().mailbox_id(), 1).unwrap()[0].clone();
    assert_eq!(
        ack(&mut server, &alice, &peer, vec![id], NOW),
        MailboxResponse::Acked { count: 1 }
    );
    assert!(matches!(
        deposit(&mut server, &peer, &third, NOW),
        MailboxResponse::Deposited { .. }
    ));
    drop(server);

    // By bytes: room for two small envelopes (349 bytes each).
    let w = &mut World::new(6);
    let alice = w.identity();
    let (_, small) = w.envelope(&alice, NOW + DAY);
    let mut server = w.server(MailboxConfig {
        quota_bytes: 2 * small.len() as u64 + 10,
        ..MailboxConfig::default()
    });
    assert!(matches!(
        deposit(&mut server, &peer, &small, NOW),
        MailboxResponse::Deposited { .. }
    ));
    let (_, big) = w.envelope_sized(&alice, 300, NOW + DAY);
    assert!(big.len() > small.len());
    assert_refused(deposit(&mut server, &peer, &big, NOW), Refusal::QuotaBytes);
    let (_, second) = w.envelope(&alice, NOW + DAY);
    assert!(matches!(
        deposit(&mut server, &peer, &second, NOW),
        MailboxResponse::Deposited { .. }
    ));
    let (_, third) = w.envelope(&alice, NOW + DAY);
    assert_refused(
        deposit(&mut server, &peer, &third, NOW),
        Refusal::QuotaBytes,
    );
    assert_eq!(refusals(&server, Refusal::QuotaBytes), 2);
    assert_eq!(server.stats().bytes, 2 * small.len() as u64);
}

#[test]
fn the_server_total_is_enforced_across_mailboxes() {
    let mut w = World::new(7);
    let (alice, carol) = (w.identity(), w.identity());
    let (_, first) = w.envelope(&alice, NOW + DAY);
    let mut server = w.server(MailboxConfig {
        max_total_bytes: first.len() as u64 * 3 / 2,
        ..MailboxConfig::default()
    });
    let peer = PeerId::random();
    assert!(matches!(
        deposit(&mut server, &peer, &first, NOW),
        MailboxResponse::Deposited { .. }
    ));
    let (_, second) = w.envelope(&carol, NOW + DAY);
    assert_refused(
        deposit(&mut server, &peer, &second, NOW),
        Refusal::ServerFull,
    );
    assert_eq!(refusals(&server, Refusal::ServerFull), 1);
    assert_eq!(server.stats().mailboxes, 1);
}

#[test]
fn depositors_are_rate_limited_each_on_their_own() {
    let mut w = World::new(8);
    let alice = w.identity();
    let mut server = w.server(MailboxConfig {
        deposits_per_minute: 3,
        ..MailboxConfig::default()
    });
    let spammer = PeerId::random();
    for _ in 0..3 {
        let (_, e) = w.envelope(&alice, NOW + DAY);
        assert!(matches!(
            deposit(&mut server, &spammer, &e, NOW),
            MailboxResponse::Deposited { .. }
        ));
    }
    let (_, e) = w.envelope(&alice, NOW + DAY);
    assert_refused(
        deposit(&mut server, &spammer, &e, NOW),
        Refusal::RateLimited,
    );
    assert_refused(
        deposit(&mut server, &spammer, &e, NOW + 19),
        Refusal::RateLimited,
    );
    // Someone else is not held back by the spammer.
    assert!(matches!(
        deposit(&mut server, &PeerId::random(), &e, NOW),
        MailboxResponse::Deposited { .. }
    ));
    // Three a minute: one more token after 20 s.
    let (_, later) = w.envelope(&alice, NOW + DAY);
    assert!(matches!(
        deposit(&mut server, &spammer, &later, NOW + 20),
        MailboxResponse::Deposited { .. }
    ));
    assert_eq!(refusals(&server, Refusal::RateLimited), 2);
    // Disconnecting does not refill the bucket.
    server.peer_disconnected(&spammer);
    let (_, again) = w.envelope(&alice, NOW + DAY);
    assert_refused(
        deposit(&mut server, &spammer, &again, NOW + 20),
        Refusal::RateLimited,
    );
}

#[test]
fn expired_mail_is_never_returned_and_is_purged() {
    let mut w = World::new(9);
    let alice = w.identity();
    let mailbox = alice.key().mailbox_id();
    let mut server = w.server(MailboxConfig {
        max_ttl_s: 1000,
        ..MailboxConfig::default()
    });
    let peer = PeerId::random();
    let (short_id, short) = w.envelope(&alice, NOW + 100);
    // Expires in a day, but this server keeps mail for 1000 s only.
    let (long_id, long) = w.envelope(&alice, NOW + DAY);
    deposit(&mut server, &peer, &short, NOW);
    deposit(&mut server, &peer, &long, NOW);

    assert_eq!(
        fetch(&mut server, &alice, &peer, 10, NOW + 99).0,
        vec![short.clone(), long.clone()]
    );
    assert_eq!(
        server.queued(&mailbox, 10).unwrap(),
        vec![(short_id, short.clone()), (long_id, long.clone())]
    );
    assert_eq!(
        fetch(&mut server, &alice, &peer, 10, NOW + 100),
        (vec![long.clone()], false)
    );
    assert_eq!(
        server.queued(&mailbox, 10).unwrap(),
        vec![(long_id, long.clone())]
    );
    assert_eq!(
        fetch(&mut server, &alice, &peer, 10, NOW + 1000),
        (vec![], false)
    );
    assert!(server.queued(&mailbox, 10).unwrap().is_empty());
    assert_eq!(server.stats().envelopes, 2, "not purged yet");

    assert_eq!(server.purge_expired(NOW + 100).unwrap(), 1);
    assert_eq!(server.purge_expired(NOW + 1000).unwrap(), 1);
    assert_eq!(server.purge_expired(NOW + 1000).unwrap(), 0);
    assert_eq!(server.counters().expired, 2);
    assert_eq!(
        server.stats(),
        MailboxStats {
            claims: 1,
            ..MailboxStats::default()
        },
        "the mail is gone; Alice's claim stays"
    );

    // Mail kept past its keep-until time, then deposited again, is stored afresh.
    let (id, e) = w.envelope(&alice, NOW + DAY);
    assert_eq!(
        deposit(&mut server, &peer, &e, NOW),
        MailboxResponse::Deposited { id }
    );
    assert_eq!(
        deposit(&mut server, &peer, &e, NOW + 999),
        MailboxResponse::Duplicate { id }
    );
    assert_eq!(
        deposit(&mut server, &peer, &e, NOW + 1000),
        MailboxResponse::Deposited { id }
    );
    assert_eq!(server.stats().envelopes, 1);
    assert_eq!(fetch(&mut server, &alice, &peer, 10, NOW + 1500).0, vec![e]);
}

#[test]
fn the_retention_bound_is_clamped_to_the_envelope_bound() {
    let w = World::new(10);
    let server = w.server(MailboxConfig {
        max_ttl_s: u64::MAX,
        ..MailboxConfig::default()
    });
    assert_eq!(server.config().max_ttl_s, MAX_ENVELOPE_TTL_S);
}

#[test]
fn mail_survives_closing_and_reopening_the_server() {
    let mut w = World::new(11);
    let alice = w.identity();
    let peer = PeerId::random();
    let mut mails = Vec::new();
    {
        let mut server = w.server(MailboxConfig::default());
        for _ in 0..3 {
            let (id, e) = w.envelope(&alice, NOW + DAY);
            assert_eq!(
                deposit(&mut server, &peer, &e, NOW),
                MailboxResponse::Deposited { id }
            );
            mails.push((id, e));
        }
        assert_eq!(
            ack(&mut server, &alice, &peer, vec![mails[1].0], NOW),
            MailboxResponse::Acked { count: 1 }
        );
        // A second open of the same file while it is open is refused.
        assert!(matches!(
            MailboxServer::open(&w.path(), SERVER_PEER_ID.to_vec(), MailboxConfig::default()),
            Err(MailboxError::InUse)
        ));
    }
    let mut server = w.server(MailboxConfig::default());
    let expected = vec![mails[0].1.clone(), mails[2].1.clone()];
    assert_eq!(
        server.stats(),
        MailboxStats {
            envelopes: 2,
            bytes: expected.iter().map(|e| e.len() as u64).sum(),
            mailboxes: 1,
            // Deposited before Alice's first acknowledgement, so counted as unclaimed, recounted on open.
            unclaimed_bytes: expected.iter().map(|e| e.len() as u64).sum(),
            claims: 1,
            ..MailboxStats::default()
        }
    );
    assert_eq!(
        fetch(&mut server, &alice, &peer, 10, NOW + 1),
        (expected, false)
    );
    // Deposit order continues after a reopen.
    let (_, newer) = w.envelope(&alice, NOW + DAY);
    deposit(&mut server, &peer, &newer, NOW + 2);
    assert_eq!(
        fetch(&mut server, &alice, &peer, 10, NOW + 3).0.last(),
        Some(&newer)
    );
    // Nonces and owner sessions are not persisted.
    drop(server);
    let server = w.server(MailboxConfig::default());
    assert!(server.owned_by(&peer).is_empty());
}

fn write_and_open(path: &Path, bytes: &[u8]) -> Result<MailboxServer, MailboxError> {
    std::fs::write(path, bytes).unwrap();
    MailboxServer::open(path, SERVER_PEER_ID.to_vec(), MailboxConfig::default())
}

#[test]
fn a_damaged_database_is_a_typed_error() {
    let mut w = World::new(12);
    let path = w.path();
    // Not a database at all.
    let mut garbage = vec![0u8; 8192];
    w.rng.fill(&mut garbage[..]);
    let result = write_and_open(&path, &garbage);
    assert!(
        matches!(result, Err(MailboxError::Corrupt(_))),
        "{:?}",
        result.err()
    );
    std::fs::remove_file(&path).unwrap();

    // A real database with bytes flipped all over its body.
    let alice = w.identity();
    {
        let mut server = w.server(MailboxConfig::default());
        for _ in 0..20 {
            let (_, e) = w.envelope(&alice, NOW + DAY);
            deposit(&mut server, &PeerId::random(), &e, NOW);
        }
    }
    let good = std::fs::read(&path).unwrap();
    let mut flipped = 0;
    for at in (4096..good.len()).step_by(997) {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        // Must not panic; an open that succeeds must still give consistent answers.
        if let Ok(mut server) = write_and_open(&path, &bad) {
            let _ = fetch(&mut server, &alice, &PeerId::random(), 100, NOW);
        } else {
            flipped += 1;
        }
    }
    assert!(flipped > 0, "some damage must be detected");
}

#[test]
fn fetches_page_by_count_and_by_bytes_oldest_first() {
    let mut w = World::new(13);
    let alice = w.identity();
    let mut server = w.server(MailboxConfig::default());
    let peer = PeerId::random();
    let mut all = Vec::new();
    for _ in 0..5 {
        let (id, e) = w.envelope(&alice, NOW + DAY);
        deposit(&mut server, &peer, &e, NOW);
        all.push((id, e));
    }
    // One nonce pages through the mailbox.
    let auth = auth(&mut server, &alice, &peer, NOW);
    let page = |server: &mut MailboxServer, max| match fetch_with(server, &peer, &auth, max, NOW) {
        MailboxResponse::Envelopes { envelopes, more } => (envelopes, more),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        page(&mut server, 2),
        (vec![all[0].1.clone(), all[1].1.clone()], true)
    );
    assert_eq!(
        page(&mut server, 0),
        (vec![], true),
        "max 0 only tells whether mail waits"
    );
    assert_eq!(
        server.handle(
            &peer,
            MailboxRequest::Ack {
                auth: auth.clone(),
                ids: vec![all[0].0, all[1].0]
            },
            NOW
        ),
        MailboxResponse::Acked { count: 2 }
    );
    assert_eq!(
        page(&mut server, 3),
        (all[2..].iter().map(|(_, e)| e.clone()).collect(), false)
    );
    assert_eq!(page(&mut server, u16::MAX).0.len(), 3);

    // By bytes: the largest envelopes (64 KiB bucket) fill MAX_FETCH_BYTES after about 15.
    let big_count = 20;
    let mut big = Vec::new();
    for _ in 0..big_count {
        let (_, e) = w.envelope_sized(&alice, 40_000, NOW + DAY);
        big.push(e);
    }
    let owner = PeerId::random();
    for e in &big {
        // From many peers, to stay inside the rate limit whatever it is.
        assert!(matches!(
            deposit(&mut server, &PeerId::random(), e, NOW),
            MailboxResponse::Deposited { .. }
        ));
    }
    let (first, more) = fetch(&mut server, &alice, &owner, u16::MAX, NOW);
    assert!(more);
    assert!(first.len() < 3 + big_count && first.len() <= MAX_FETCH_ENVELOPES);
    assert!(first.iter().map(Vec::len).sum::<usize>() <= MAX_FETCH_BYTES);
    assert_eq!(
        &first[..3],
        &all[2..].iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()[..]
    );
    let queued = server
        .queued(&alice.key().mailbox_id(), usize::MAX)
        .unwrap();
    assert_eq!(queued.len(), first.len(), "queued() pages like fetch");
}

#[test]
fn pushed_mail_is_listed_and_removed_per_mailbox() {
    let mut w = World::new(14);
    let (alice, carol) = (w.identity(), w.identity());
    let mut server = w.server(MailboxConfig::default());
    let peer = PeerId::random();
    let (a1, e1) = w.envelope(&alice, NOW + DAY);
    let (c1, ec) = w.envelope(&carol, NOW + DAY);
    let (a2, e2) = w.envelope(&alice, NOW + DAY);
    for e in [&e1, &ec, &e2] {
        deposit(&mut server, &peer, e, NOW);
    }
    let mailbox = alice.key().mailbox_id();
    assert_eq!(
        server.queued(&mailbox, 10).unwrap(),
        vec![(a1, e1), (a2, e2.clone())]
    );
    assert_eq!(server.queued(&mailbox, 1).unwrap().len(), 1);
    assert_eq!(
        server.remove(&mailbox, &[c1]).unwrap(),
        0,
        "carol's id in alice's mailbox"
    );
    assert_eq!(server.remove(&mailbox, &[a1, a1]).unwrap(), 1);
    assert_eq!(server.queued(&mailbox, 10).unwrap(), vec![(a2, e2)]);
    assert_eq!(server.counters().pushed, 1);
    assert_eq!(server.stats().envelopes, 2);
    assert!(server.queued(&MailboxId([0; 32]), 10).unwrap().is_empty());
}

#[test]
fn owner_sessions_last_ten_challenge_lifetimes_or_until_disconnect() {
    let mut w = World::new(15);
    let (alice, carol) = (w.identity(), w.identity());
    let mut server = w.server(MailboxConfig::default());
    let ttl = server.config().challenge_ttl_s;
    let peer = PeerId::random();
    fetch(&mut server, &alice, &peer, 1, NOW);
    fetch(&mut server, &carol, &peer, 1, NOW + 1);
    let mut owned = server.owned_by(&peer);
    owned.sort();
    let mut expected = vec![alice.key().mailbox_id(), carol.key().mailbox_id()];
    expected.sort();
    assert_eq!(owned, expected);
    assert!(server.owned_by(&PeerId::random()).is_empty());

    // Time moves on (any request carries it): Alice's proof ages out first.
    server.handle(&PeerId::random(), MailboxRequest::Challenge, NOW + 10 * ttl);
    assert_eq!(server.owned_by(&peer), vec![carol.key().mailbox_id()]);
    server.peer_disconnected(&peer);
    assert!(server.owned_by(&peer).is_empty());
}

#[test]
fn handle_never_panics_on_random_requests() {
    let mut w = World::new(16);
    let alice = w.identity();
    let mut server = w.server(MailboxConfig::default());
    let peers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
    let (_, real) = w.envelope(&alice, NOW + DAY);
    for step in 0..2000u64 {
        let peer = peers[w.rng.random_range(0..peers.len())];
        let now = NOW
            .wrapping_add(w.rng.random_range(0..200))
            .wrapping_sub(100);
        let request = match w.rng.random_range(0..6) {
            0 => {
                let mut bytes = vec![0u8; w.rng.random_range(0..600)];
                w.rng.fill(&mut bytes[..]);
                MailboxRequest::Deposit { envelope: bytes }
            }
            1 => {
                let mut bytes = real.clone();
                let at = w.rng.random_range(0..bytes.len());
                bytes[at] ^= w.rng.random::<u8>() | 1;
                MailboxRequest::Deposit { envelope: bytes }
            }
            2 => MailboxRequest::Challenge,
            3 | 4 => {
                let mut auth = OwnerAuth::sign(&alice, SERVER_PEER_ID, w.rng.random());
                if w.rng.random() {
                    auth.signature = [w.rng.random(); 64];
                }
                MailboxRequest::Fetch {
                    auth,
                    max: w.rng.random(),
                }
            }
            _ => MailboxRequest::Ack {
                auth: OwnerAuth::sign(&alice, SERVER_PEER_ID, w.rng.random()),
                ids: (0..w.rng.random_range(0..300))
                    .map(|_| EnvelopeId(w.rng.random()))
                    .collect(),
            },
        };
        let response = server.handle(&peer, request, now);
        assert!(
            !matches!(response, MailboxResponse::Refused(Refusal::Internal)),
            "step {step}: {response:?}"
        );
    }
    assert!(
        server
            .counters()
            .refusals
            .get("malformed")
            .copied()
            .unwrap_or(0)
            > 100
    );
}

#[test]
fn another_database_or_a_newer_format_is_refused() {
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    let w = World::new(17);
    let path = w.path();
    // Some other redb database (say, a profile store) is not taken over.
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("format", [1u8].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        MailboxServer::open(&path, SERVER_PEER_ID.to_vec(), MailboxConfig::default()),
        Err(MailboxError::Corrupt(_))
    ));
    std::fs::remove_file(&path).unwrap();

    drop(w.server(MailboxConfig::default()));
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("mailbox_format", [9u8].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        MailboxServer::open(&path, SERVER_PEER_ID.to_vec(), MailboxConfig::default()),
        Err(MailboxError::UnsupportedVersion { found: 9, .. })
    ));
}

/// Issue 20, item 1: deposits need no identity and PeerIds are free, so a flood from fresh peers to made-up
/// mailboxes used to fill the whole server (`server_full` for everyone, for a week). Now such mail shares
/// the small unclaimed budget and ages out quickly; owners who fetch here keep getting their mail.
#[test]
fn a_flood_to_made_up_mailboxes_from_fresh_peers_leaves_owners_mail_deliverable() {
    let mut w = World::new(17);
    let alice = w.identity();
    let (_, probe) = w.envelope(&alice, NOW + DAY);
    let unit = probe.len() as u64;
    let config = MailboxConfig {
        max_total_bytes: 40 * unit,
        unclaimed_bytes: 10 * unit,
        unclaimed_ttl_s: 3600,
        claim_ttl_s: 10 * DAY,
        ..MailboxConfig::default()
    };
    let mut server = w.server(config.clone());
    // Alice uses this server: her client fetches from it.
    let alice_peer = PeerId::random();
    assert_eq!(
        fetch(&mut server, &alice, &alice_peer, 10, NOW),
        (vec![], false)
    );
    assert_eq!(server.stats().claims, 1);

    // 200 fresh peers, each depositing to a mailbox nobody owns here.
    let mut deposited = 0u64;
    for _ in 0..200 {
        let stranger = w.identity();
        let (_, e) = w.envelope(&stranger, NOW + 20 * DAY);
        match deposit(&mut server, &PeerId::random(), &e, NOW + 1) {
            MailboxResponse::Deposited { .. } => deposited += 1,
            other => assert_refused(other, Refusal::ServerFull),
        }
    }
    assert_eq!(
        deposited, 10,
        "the flood takes the unclaimed budget and no more"
    );
    assert_eq!(server.stats().unclaimed_bytes, 10 * unit);
    assert_eq!(refusals(&server, Refusal::ServerFull), 190);

    // A friend's mail for Alice still goes in, and is kept past the unclaimed retention.
    let (id, for_alice) = w.envelope(&alice, NOW + 20 * DAY);
    assert_eq!(
        deposit(&mut server, &PeerId::random(), &for_alice, NOW + 2),
        MailboxResponse::Deposited { id }
    );
    assert_eq!(
        server.purge_expired(NOW + 3601).unwrap(),
        10,
        "the flood aged out"
    );
    assert_eq!(server.stats().unclaimed_bytes, 0);
    assert_eq!(
        fetch(&mut server, &alice, &alice_peer, 10, NOW + 3602),
        (vec![for_alice], false)
    );

    // A claim lapses when its owner stops coming; lapsed claims are purged.
    server.purge_expired(NOW + 3602 + 10 * DAY).unwrap();
    assert_eq!(server.stats().claims, 0);
}

/// Issue 20, item 8: challenge nonces used to be kept, at most 10,000, so fresh peers asking for nonces
/// could push out an owner's between its fetch and its acknowledgement. Nonces are now made without state.
#[test]
fn fresh_peers_asking_for_nonces_never_push_out_an_owners_nonce() {
    let mut w = World::new(18);
    let alice = w.identity();
    let mut server = w.server(MailboxConfig::default());
    let (id, e) = w.envelope(&alice, NOW + DAY);
    deposit(&mut server, &PeerId::random(), &e, NOW);
    let owner = PeerId::random();
    let proof = auth(&mut server, &alice, &owner, NOW);
    for _ in 0..20_000 {
        nonce(&mut server, &PeerId::random(), NOW + 1);
    }
    assert_eq!(
        fetch_with(&mut server, &owner, &proof, 10, NOW + 2),
        MailboxResponse::Envelopes {
            envelopes: vec![e],
            more: false
        }
    );
    assert_eq!(
        server.handle(
            &owner,
            MailboxRequest::Ack {
                auth: proof.clone(),
                ids: vec![id]
            },
            NOW + 3
        ),
        MailboxResponse::Acked { count: 1 }
    );

    // A nonce whose expiry was moved later is not one this server made.
    let ttl = server.config().challenge_ttl_s;
    let mut stretched = nonce(&mut server, &owner, NOW + 4);
    stretched[..8].copy_from_slice(&(NOW + 4 + ttl + 100).to_be_bytes());
    assert_refused(
        fetch_with(
            &mut server,
            &owner,
            &OwnerAuth::sign(&alice, SERVER_PEER_ID, stretched),
            10,
            NOW + 4 + ttl,
        ),
        Refusal::BadChallenge,
    );
    // Nor is one issued by an earlier run of the server.
    drop(server);
    let mut server = w.server(MailboxConfig::default());
    assert_refused(
        fetch_with(&mut server, &owner, &proof, 10, NOW + 5),
        Refusal::BadChallenge,
    );
}

/// Issue 20, item 2, as docs/threat-model.md now states it: the operator sees the depositing connection (and
/// so, today, the sender's peer id) while it is open, but what the server keeps for a deposit names no
/// sender: the database holds the recipient's mailbox id, the expiry and the sealed envelope, and neither the
/// depositor's peer id nor the sender's identity key.
#[test]
fn what_a_mailbox_keeps_for_a_deposit_names_no_sender() {
    let mut w = World::new(19);
    let alice = w.identity();
    let depositor = PeerId::random();
    let sender_key = *w.sender.key().as_bytes();
    let mut server = w.server(MailboxConfig::default());
    for _ in 0..3 {
        let (_, e) = w.envelope(&alice, NOW + DAY);
        assert!(matches!(
            deposit(&mut server, &depositor, &e, NOW),
            MailboxResponse::Deposited { .. }
        ));
    }
    drop(server);
    let file = std::fs::read(w.path()).unwrap();
    let holds = |needle: &[u8]| file.windows(needle.len()).any(|window| window == needle);
    assert!(
        holds(&alice.key().mailbox_id().0),
        "the recipient's mailbox id is kept (the check can see ids)"
    );
    assert!(!holds(&sender_key), "the sender's identity key is kept");
    assert!(
        !holds(&depositor.to_bytes()),
        "the depositor's peer id is kept"
    );
}
