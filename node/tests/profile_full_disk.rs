//! A user's profile on a disk that fills up and then has room again (issue 19, item 1): the store refuses
//! with a typed error while full, closes its database, opens it again by itself once there is room, and
//! the same process goes on with its history intact.
//!
//! Through a storage backend that fails writes on demand (`tern_testkit::disk::FlakyDisk`): the store
//! alone, and two nodes over loopback where the recipient's disk is full while a message arrives. On a
//! real small tmpfs where the test runs as root (elsewhere it says it is skipped).

use std::path::Path;
use std::time::{Duration, Instant};

use tern_node::api::MessageStatus;
use tern_node::engine::{Engine, EngineError};
use tern_node::store::{KdfParams, MAX_REOPEN_INTERVAL, STORE_FILE, Store, StoreError};
use tern_testkit::disk::{FlakyDisk, SmallDisk};
use tern_testkit::net::{LiveNode, history, loopback_node};
use tern_testkit::profile::{pair, password};
use tern_testkit::wait::{POLL_INTERVAL, TIMEOUT, poll_until, received, wait_status};

/// How long the store may take to open its database again once there is room: its longest pause, twice.
const HEAL_LIMIT: Duration = Duration::from_secs(MAX_REOPEN_INTERVAL.as_secs() * 2);

/// Retries `op` until it succeeds or [`HEAL_LIMIT`] passes (the store opens its database again on an
/// operation after its pause; no event announces it); returns the last result.
fn retry_until_ok<T, E>(mut op: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + HEAL_LIMIT;
    loop {
        let result = op();
        if result.is_ok() || Instant::now() >= deadline {
            return result;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The profile in `dir`, moved onto a [`FlakyDisk`] (a copy of its `store.redb`).
fn onto_flaky_disk(dir: &Path) -> (Store, FlakyDisk) {
    let disk = FlakyDisk::from_file(&dir.join(STORE_FILE)).unwrap();
    let store = Store::open_with_backend(dir, &password(), disk.clone()).unwrap();
    (store, disk)
}

#[test]
fn a_full_disk_refuses_writes_then_the_store_reopens_itself_with_its_history_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), &password(), KdfParams::INSECURE_FOR_TESTS).unwrap();
    store.setting_put("before", b"1").unwrap();
    drop(store);
    let (mut store, disk) = onto_flaky_disk(dir.path());
    let reader = store.reader();
    store.setting_put("second", b"2").unwrap();
    assert!(!store.health().failing);

    disk.set_full(true);
    let err = store.setting_put("while-full", b"3").unwrap_err();
    assert!(matches!(err, StoreError::DiskFailing), "{err:?}");
    assert_eq!(
        err.to_string(),
        "could not save: the disk is full or failing; Tern will try again"
    );
    let health = store.health();
    assert!(health.failing);
    assert_eq!((health.failures, health.reopens), (1, 0));
    // Closed: every operation, writes and reads, the store's and a reader's, is refused the same way
    // (and not counted as another failure).
    assert!(
        store
            .setting_put("again", b"4")
            .unwrap_err()
            .is_disk_failing()
    );
    assert!(store.setting_get("before").unwrap_err().is_disk_failing());
    assert!(reader.setting_get("before").unwrap_err().is_disk_failing());
    assert_eq!(store.health().failures, 1);

    // Room again: a later operation opens the database again, without a restart.
    disk.set_full(false);
    retry_until_ok(|| store.setting_put("after", b"5")).expect("the store works again");
    let health = store.health();
    assert!(!health.failing);
    assert_eq!(health.reopens, 1);
    // Everything saved before is there, nothing of the failed writes is, and the reader made before the
    // failure reads the reopened database.
    for (name, value) in [("before", &b"1"[..]), ("second", b"2"), ("after", b"5")] {
        assert_eq!(
            reader
                .setting_get(name)
                .unwrap()
                .as_deref()
                .map(Vec::as_slice),
            Some(value),
            "{name}"
        );
    }
    assert!(store.setting_get("while-full").unwrap().is_none());
    assert!(store.setting_get("again").unwrap().is_none());
    // The bytes on the disk still open as the profile, with its own checks.
    drop(reader);
    drop(store);
    let store = Store::open_with_backend(dir.path(), &password(), disk).unwrap();
    assert_eq!(
        store
            .setting_get("after")
            .unwrap()
            .as_deref()
            .map(Vec::as_slice),
        Some(&b"5"[..])
    );
}

fn texts(history: &[(String, MessageStatus)], text: &str) -> usize {
    history.iter().filter(|(t, _)| t == text).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_arrives_while_the_disk_is_full_is_not_acknowledged_and_arrives_once_later()
{
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    drop(bob);
    let (store, disk) = onto_flaky_disk(dirs.1.path());
    let bob = Engine::open_store(store).unwrap();

    tokio::time::timeout(TIMEOUT * 3, async {
        let mut a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let hello = a.node.send_text(b.key, "hello".into()).await.unwrap();
        wait_status(&mut a.events, hello.id, MessageStatus::Delivered).await;
        received(&mut b.events, "hello").await;

        disk.set_full(true);
        let sent = a.node.send_text(b.key, "while full".into()).await.unwrap();
        // Bob's store fails on the first envelope it cannot save, and says so in its status.
        let status = poll_until(
            TIMEOUT,
            async || b.node.status().await.unwrap().store,
            |s| s.failing,
        )
        .await;
        assert!(status.failing && status.failures >= 1, "{status:?}");
        // Bob's own send fails in plain words, and nothing of it is kept.
        let err = b
            .node
            .send_text(a.key, "bob while full".into())
            .await
            .unwrap_err();
        assert!(err.is_disk_failing(), "{err:?}");
        assert!(
            err.to_string().contains("the disk is full or failing"),
            "{err}"
        );
        // Not acknowledged: Alice still has it as sending (her retries wait for room).
        let mine = history(&a.node, b.key).await;
        assert_eq!(
            mine.iter()
                .find(|(t, _)| t == "while full")
                .map(|(_, s)| *s),
            Some(MessageStatus::Sending)
        );

        // Room again: Alice's retry arrives once, without a restart of Bob's node.
        disk.set_full(false);
        let got = received(&mut b.events, "while full").await;
        assert_eq!(got, sent.id);
        wait_status(&mut a.events, sent.id, MessageStatus::Delivered).await;
        // Bob's sends work again too.
        let reply = b.node.send_text(a.key, "bob after".into()).await.unwrap();
        received(&mut a.events, "bob after").await;
        wait_status(&mut b.events, reply.id, MessageStatus::Delivered).await;

        let status = b.node.status().await.unwrap().store;
        assert!(!status.failing && status.reopens >= 1, "{status:?}");
        let bobs = history(&b.node, a.key).await;
        assert_eq!(texts(&bobs, "hello"), 1);
        assert_eq!(texts(&bobs, "while full"), 1, "exactly once: {bobs:?}");
        assert_eq!(texts(&bobs, "bob while full"), 0, "{bobs:?}");
        assert_eq!(texts(&bobs, "bob after"), 1);
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("finished in time");
}

#[test]
fn a_profile_on_a_real_full_filesystem_refuses_sends_then_works_once_it_grows() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs root); the FlakyDisk tests above cover it"
        );
        return;
    };
    let other = tempfile::tempdir().unwrap();
    let bob_dir = disk.path().join("bob");
    let (_alice, mut bob) = pair(other.path(), &bob_dir);
    let alice_key = bob.find_contact("Alice").unwrap().key;
    let text = "x".repeat(16 * 1024);

    // Fill it: 16 KiB messages until one is refused for the disk.
    let mut sent = 0;
    let err = loop {
        assert!(sent < 500, "a 1 MB disk took 500 messages of 16 KiB");
        match bob.send_text(&alice_key, &text) {
            Ok(_) => sent += 1,
            Err(err) => break err,
        }
    };
    assert!(err.is_disk_failing(), "{err:?}");
    assert!(sent > 0);
    assert!(bob.store().health().failing);
    // Still full: still refused, in the same plain words.
    assert!(matches!(
        bob.send_text(&alice_key, "still full"),
        Err(EngineError::Store(StoreError::DiskFailing))
    ));

    disk.grow();
    retry_until_ok(|| bob.send_text(&alice_key, "after")).expect("sends work again");
    let health = bob.store().health();
    assert!(!health.failing && health.reopens >= 1, "{health:?}");
    let count = |bob: &Engine| {
        bob.store()
            .conversation_page(alice_key, None, 1000)
            .unwrap()
            .messages
            .len()
    };
    assert_eq!(count(&bob), sent + 1, "every saved message and the new one");
    // The file on the real disk opens again with every check, holding the same.
    drop(bob);
    let bob = Engine::open(&bob_dir, &password()).unwrap();
    assert_eq!(count(&bob), sent + 1);
}
