//! Storage failures without a real full disk: a storage backend in memory that fails every write while
//! "full", shared across reopenings as a file would be (`tern_testkit::disk::FlakyDisk`, which the
//! profile store's tests use too). (`bootstrap/tests/full_disk.rs` fills a real small filesystem where the
//! test runs as root.)

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tern_protocol::{Envelope, Identity};
use tern_testkit::disk::FlakyDisk;

use super::db::Db;
use super::*;
use crate::mailbox::OwnerAuth;
use crate::redb_file::open_checked_with;

const NOW: u64 = 1_750_000_000;
const SERVER: &[u8] = b"\x00\x24server-peer-id-for-tests";

fn open_db(disk: &FlakyDisk) -> Result<Db, MailboxError> {
    Db::init(open_checked_with(disk.clone())?)
}

struct World {
    rng: ChaCha20Rng,
    sender: Identity,
    owner: Identity,
    depositor: PeerId,
    owner_peer: PeerId,
}

impl World {
    fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(19);
        let sender = Identity::generate(&mut rng, NOW * 1000);
        let owner = Identity::generate(&mut rng, NOW * 1000);
        Self {
            rng,
            sender,
            owner,
            depositor: PeerId::random(),
            owner_peer: PeerId::random(),
        }
    }

    fn envelope(&mut self) -> Vec<u8> {
        Envelope::seal(
            &self.sender,
            self.owner.public(),
            &[7u8; 64],
            NOW + 3600,
            &mut self.rng,
        )
        .unwrap()
        .encode()
    }

    /// Deposits mail for another mailbox (this world's sender's); returns its id.
    fn envelope_for_another_mailbox(&self, server: &mut MailboxServer) -> EnvelopeId {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let bytes = Envelope::seal(
            &self.owner,
            self.sender.public(),
            &[1; 8],
            NOW + 60,
            &mut rng,
        )
        .unwrap()
        .encode();
        let request = MailboxRequest::Deposit {
            envelope: bytes.clone(),
        };
        assert!(matches!(
            server.handle(&PeerId::random(), request, NOW),
            MailboxResponse::Deposited { .. }
        ));
        Envelope::decode(&bytes).unwrap().id()
    }

    fn deposit(&mut self, server: &mut MailboxServer, now: u64) -> MailboxResponse {
        let envelope = self.envelope();
        server.handle(&self.depositor, MailboxRequest::Deposit { envelope }, now)
    }

    fn auth(&self, server: &mut MailboxServer, now: u64) -> OwnerAuth {
        match server.handle(&self.owner_peer, MailboxRequest::Challenge, now) {
            MailboxResponse::Nonce { nonce } => OwnerAuth::sign(&self.owner, SERVER, nonce),
            other => panic!("expected a nonce, got {other:?}"),
        }
    }

    /// Fetches every page and acknowledges it; returns how many envelopes came, or the first refusal.
    fn drain(&self, server: &mut MailboxServer, now: u64) -> Result<usize, MailboxResponse> {
        let auth = self.auth(server, now);
        let mut total = 0;
        for _ in 0..100 {
            let request = MailboxRequest::Fetch {
                auth: auth.clone(),
                max: 16,
            };
            let (envelopes, more) = match server.handle(&self.owner_peer, request, now) {
                MailboxResponse::Envelopes { envelopes, more } => (envelopes, more),
                other => return Err(other),
            };
            let ids = envelopes
                .iter()
                .map(|e| Envelope::decode(e).unwrap().id())
                .collect();
            let ack = MailboxRequest::Ack {
                auth: auth.clone(),
                ids,
            };
            match server.handle(&self.owner_peer, ack, now) {
                MailboxResponse::Acked { count } => total += count as usize,
                other => return Err(other),
            }
            if !more {
                return Ok(total);
            }
        }
        panic!("the fetch did not end");
    }
}

fn ids(envelopes: &[Vec<u8>]) -> Vec<EnvelopeId> {
    envelopes
        .iter()
        .map(|e| Envelope::decode(e).unwrap().id())
        .collect()
}

/// A Page answer's fields: (acked, envelopes, next, more).
type PageFields = (u32, Vec<Vec<u8>>, u64, bool);

/// One paged fetch: the page's fields, or the answer if it is not a page.
fn fetch_page(
    w: &World,
    server: &mut MailboxServer,
    auth: &OwnerAuth,
    from: u64,
    ack: Vec<EnvelopeId>,
) -> Result<PageFields, MailboxResponse> {
    let request = MailboxRequest::FetchPage {
        auth: auth.clone(),
        from,
        max: 16,
        ack,
    };
    match server.handle(&w.owner_peer, request, NOW) {
        MailboxResponse::Page {
            acked,
            envelopes,
            next,
            more,
        } => Ok((acked, envelopes, next, more)),
        other => Err(other),
    }
}

fn flaky_server(disk: &FlakyDisk) -> MailboxServer {
    let opener = disk.clone();
    MailboxServer::open_with(
        Opener::Backend(Box::new(move || open_db(&opener))),
        SERVER.to_vec(),
        MailboxConfig::default(),
    )
    .unwrap()
}

/// Why the server must reopen: redb keeps failing after one failed write, even once there is room again.
#[test]
fn redb_refuses_every_write_after_one_failed_write_until_it_is_reopened() {
    let disk = FlakyDisk::default();
    let db = open_checked_with(disk.clone()).unwrap();
    let table: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("t");
    let write = |db: &redb::Database, n: u64| -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(table)?.insert(n, n)?;
        txn.commit()?;
        Ok(())
    };
    write(&db, 1).unwrap();
    disk.set_full(true);
    assert!(write(&db, 2).is_err());
    disk.set_full(false);
    assert!(
        matches!(write(&db, 3), Err(redb::Error::PreviousIo)),
        "redb works again without a reopen: the reopen is no longer needed"
    );
    drop(db);
    let db = open_checked_with(disk.clone()).unwrap();
    write(&db, 4).unwrap();
}

#[test]
fn a_full_disk_is_refused_then_the_mailbox_reopens_and_serves_everything_it_holds() {
    let disk = FlakyDisk::default();
    let mut server = flaky_server(&disk);
    let mut w = World::new();
    for _ in 0..5 {
        assert!(matches!(
            w.deposit(&mut server, NOW),
            MailboxResponse::Deposited { .. }
        ));
    }
    disk.set_full(true);
    let mut now = NOW;
    // Full: every deposit refused as `internal`, the database closed; it does not open while full.
    for _ in 0..20 {
        assert_eq!(
            w.deposit(&mut server, now),
            MailboxResponse::Refused(Refusal::Internal)
        );
        now += 1;
    }
    let health = server.storage_health();
    assert!(!health.ok);
    assert_eq!(health.failures, 1, "one failure, then refused while down");
    assert_eq!(health.reopens, 0);
    assert!(health.refused_while_down >= 19);
    assert_eq!(server.stats().envelopes, 5, "the last totals are kept");
    // Room again: within the longest pause, the next request opens it and is served.
    disk.set_full(false);
    now += MAX_REOPEN_INTERVAL_S;
    assert!(matches!(
        w.deposit(&mut server, now),
        MailboxResponse::Deposited { .. }
    ));
    let health = server.storage_health();
    assert!(health.ok);
    assert_eq!(health.reopens, 1);
    // Everything stored before and after is fetched and acknowledged: nothing was lost.
    assert_eq!(w.drain(&mut server, now), Ok(6));
    assert_eq!(server.stats().envelopes, 0);
}

#[test]
fn an_acknowledgement_that_fails_is_refused_and_works_after_the_reopen() {
    let disk = FlakyDisk::default();
    let mut server = flaky_server(&disk);
    let mut w = World::new();
    for _ in 0..3 {
        w.deposit(&mut server, NOW);
    }
    disk.set_full(true);
    assert_eq!(
        w.drain(&mut server, NOW),
        Err(MailboxResponse::Refused(Refusal::Internal))
    );
    // Still full: refused at once, not retried more than once per pause.
    assert_eq!(
        w.drain(&mut server, NOW),
        Err(MailboxResponse::Refused(Refusal::Internal))
    );
    disk.set_full(false);
    assert_eq!(w.drain(&mut server, NOW + REOPEN_INTERVAL_S), Ok(3));
}

#[test]
fn an_empty_mailbox_file_is_refused_not_started_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailbox.redb");
    std::fs::write(&path, b"").unwrap();
    let err = MailboxServer::open(&path, SERVER.to_vec(), MailboxConfig::default()).unwrap_err();
    assert!(
        matches!(err, MailboxError::Corrupt(ref why) if why.contains("empty")),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
}

#[cfg(unix)]
#[test]
fn a_new_mailbox_file_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailbox.redb");
    drop(MailboxServer::open(&path, SERVER.to_vec(), MailboxConfig::default()).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // One made readable by others is made private again on open.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(MailboxServer::open(&path, SERVER.to_vec(), MailboxConfig::default()).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_paged_fetch_reads_from_its_cursor_and_deletes_what_it_acknowledges() {
    let disk = FlakyDisk::default();
    let mut server = flaky_server(&disk);
    let mut w = World::new();
    for _ in 0..40 {
        w.deposit(&mut server, NOW);
    }
    let auth = w.auth(&mut server, NOW);
    let (acked, first, next, more) = fetch_page(&w, &mut server, &auth, 0, Vec::new()).unwrap();
    assert_eq!((acked, first.len(), more), (0, 16, true));
    // Nothing acknowledged yet: the next page still starts after this one, not at the oldest again.
    let (_, second, next, more) = fetch_page(&w, &mut server, &auth, next, Vec::new()).unwrap();
    assert_eq!((second.len(), more), (16, true));
    assert!(ids(&second).iter().all(|id| !ids(&first).contains(id)));
    assert_eq!(server.stats().envelopes, 40);
    // Mail deposited meanwhile comes after what waited.
    w.deposit(&mut server, NOW);
    // Both pages acknowledged on one request, one commit; an id of another mailbox is left alone.
    let mut ack = ids(&first);
    ack.extend(ids(&second));
    let stranger = World::new();
    let other = stranger.envelope_for_another_mailbox(&mut server);
    ack.push(other);
    let (acked, third, next, more) = fetch_page(&w, &mut server, &auth, next, ack).unwrap();
    assert_eq!((acked, third.len(), more), (32, 9, false));
    assert_eq!(server.stats().envelopes, 41 - 32 + 1);
    assert_eq!(server.counters().acked, 32);
    // The last acknowledgement; the page after it is empty and says so.
    let (acked, rest, again, more) = fetch_page(&w, &mut server, &auth, next, ids(&third)).unwrap();
    assert_eq!((acked, rest.len(), again, more), (9, 0, next, false));
    assert_eq!(server.stats().envelopes, 1, "only the other mailbox's");
}

#[test]
fn a_paged_fetch_is_the_owners_only_and_its_acknowledgement_is_bounded() {
    let disk = FlakyDisk::default();
    let mut server = flaky_server(&disk);
    let mut w = World::new();
    w.deposit(&mut server, NOW);
    let auth = w.auth(&mut server, NOW);
    // Another peer replaying the owner's proof: its nonce was issued to the owner's peer.
    let request = MailboxRequest::FetchPage {
        auth: auth.clone(),
        from: 0,
        max: 16,
        ack: Vec::new(),
    };
    assert_eq!(
        server.handle(&w.depositor, request, NOW),
        MailboxResponse::Refused(Refusal::BadChallenge)
    );
    let mut forged = auth.clone();
    forged.signature[0] ^= 1;
    assert_eq!(
        fetch_page(&w, &mut server, &forged, 0, Vec::new()),
        Err(MailboxResponse::Refused(Refusal::NotOwner))
    );
    let too_many = vec![EnvelopeId([1; 32]); MAX_PAGE_ACK_IDS + 1];
    assert_eq!(
        fetch_page(&w, &mut server, &auth, 0, too_many),
        Err(MailboxResponse::Refused(Refusal::Malformed))
    );
    assert_eq!(server.stats().envelopes, 1);
    // A failed acknowledgement deletes nothing and hands out nothing; after the reopen both work.
    let (_, page, _, _) = fetch_page(&w, &mut server, &auth, 0, Vec::new()).unwrap();
    disk.set_full(true);
    assert_eq!(
        fetch_page(&w, &mut server, &auth, 0, ids(&page)),
        Err(MailboxResponse::Refused(Refusal::Internal))
    );
    disk.set_full(false);
    let later = NOW + REOPEN_INTERVAL_S;
    let auth = w.auth(&mut server, later);
    let request = MailboxRequest::FetchPage {
        auth,
        from: 0,
        max: 16,
        ack: ids(&page),
    };
    assert!(matches!(
        server.handle(&w.owner_peer, request, later),
        MailboxResponse::Page { acked: 1, .. }
    ));
    assert_eq!(server.stats().envelopes, 0);
}

#[test]
fn fetch_and_ack_and_paged_fetches_share_one_queue() {
    let disk = FlakyDisk::default();
    let mut server = flaky_server(&disk);
    let mut w = World::new();
    for _ in 0..20 {
        w.deposit(&mut server, NOW);
    }
    let auth = w.auth(&mut server, NOW);
    // A client from before paged fetches takes a page the old way...
    let old = MailboxRequest::Fetch {
        auth: auth.clone(),
        max: 16,
    };
    let MailboxResponse::Envelopes { envelopes, more } = server.handle(&w.owner_peer, old, NOW)
    else {
        panic!("a page");
    };
    assert!(more);
    let ack = MailboxRequest::Ack {
        auth: auth.clone(),
        ids: ids(&envelopes),
    };
    assert_eq!(
        server.handle(&w.owner_peer, ack, NOW),
        MailboxResponse::Acked { count: 16 }
    );
    // ...and a paged fetch from the start gets the rest.
    let (_, rest, _, more) = fetch_page(&w, &mut server, &auth, 0, Vec::new()).unwrap();
    assert_eq!((rest.len(), more), (4, false));
    assert!(ids(&rest).iter().all(|id| !ids(&envelopes).contains(id)));
    assert_eq!(w.drain(&mut server, NOW), Ok(4));
}
