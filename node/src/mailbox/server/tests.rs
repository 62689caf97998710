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
