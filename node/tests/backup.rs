//! Encrypted backups (docs/protocol.md §20): what a restore brings back, that a restored profile and its
//! contacts talk both ways again without a key-change warning, that nothing is in the archive in the
//! clear, and that every bad input is refused with a typed error and nothing touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tern_node::api::{ContactState, Event, FileState, MessageStatus};
use tern_node::backup::{ARCHIVE_VERSION, BackupError, RecoveryCode, restore};
use tern_node::engine::{Engine, ReceiveError, Received};
use tern_node::profile::Profile;
use tern_node::settings::NetworkSettings;
use tern_node::store::{KdfParams, STORE_FILE};
use tern_protocol::{DecryptError, IdentityKey, MessageId};
use tern_testkit::files::{contains, files_under};
use tern_testkit::net::{LiveNode, alice_and_bob_in, history, loopback_node, texts};
use tern_testkit::profile::{create, introduce, open, password};
use tern_testkit::wait::{received, wait_for, wait_status};

const KDF: KdfParams = KdfParams::INSECURE_FOR_TESTS;
const CANARY_TEXT: &str = "canary-history-6d2f91";
const CANARY_NAME: &str = "Canarybob-4a7c";
/// Makes Alice's texts long enough that a few hundred fill several chunks.
const FILLER: &str = " ................................................................................................................................................................................................";

/// Alice (in `dirs[0]`) with Bob (accepted, verified both ways), Carol (blocked) and Dave (a message request),
/// `n` texts each way with Bob, the last of Bob's unread, and a changed network setting. Returns Alice and Bob.
fn alice_with_history(alice_dir: &Path, others: &Path, n: usize) -> (Engine, Engine) {
    let mut alice = create(alice_dir, "Alice");
    let mut bob = create(&others.join("bob"), CANARY_NAME);
    let mut carol = create(&others.join("carol"), "Carol");
    let mut dave = create(&others.join("dave"), "Dave");
    introduce(&mut [&mut alice, &mut bob, &mut carol]);
    let (alice_link, bob_link) = (alice.card().invite_link(), bob.card().invite_link());
    assert!(alice.verify_card(&bob.key(), &bob_link).unwrap());
    assert!(bob.verify_card(&alice.key(), &alice_link).unwrap());
    alice
        .set_contact_state(&carol.key(), ContactState::Blocked)
        .unwrap();
    dave.add_contact(&alice_link, None).unwrap();
    let (_, entry) = dave
        .send_text(&alice.key(), "hello from a stranger")
        .unwrap();
    alice.receive(&entry.envelope).unwrap();
    for i in 0..n {
        let (_, out) = alice
            .send_text(&bob.key(), &format!("{CANARY_TEXT} from alice {i}{FILLER}"))
            .unwrap();
        bob.receive(&out.envelope).unwrap();
        let (_, back) = bob
            .send_text(&alice.key(), &format!("bob says {i}"))
            .unwrap();
        alice.receive(&back.envelope).unwrap();
    }
    let settings = NetworkSettings {
        lan_only: true,
        ..NetworkSettings::default()
    };
    settings.save(alice.store_mut()).unwrap();
    (alice, bob)
}

fn nothing_left_beside(dir: &Path) {
    let parent = dir.parent().unwrap();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    for entry in std::fs::read_dir(parent).unwrap() {
        let entry = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !entry.contains(&format!("{name}.tmp-")),
            "a restore left {entry} behind"
        );
    }
    assert!(!dir.exists(), "a failed restore created {}", dir.display());
}

/// A backup of a profile like [`alice_with_history`]'s, and its code.
fn archive(root: &Path, n: usize) -> (PathBuf, RecoveryCode, Engine) {
    let (alice, bob) = alice_with_history(&root.join("alice"), &root.join("others"), n);
    let path = root.join("alice.tern");
    let (code, summary) = Profile::from(alice).backup(&path).unwrap();
    assert_eq!(summary.contacts, 3, "Bob, Carol, Dave: {summary:?}");
    (path, code, bob)
}

#[test]
fn a_restored_profile_has_the_identity_contacts_marks_history_and_settings() {
    let root = tempfile::tempdir().unwrap();
    let (alice, _bob) = alice_with_history(&root.path().join("alice"), &root.path().join("o"), 20);
    let original = Profile::from(alice);
    let archive = root.path().join("alice.tern");
    let (code, summary) = original.backup(&archive).unwrap();
    assert_eq!(summary.messages, 41);

    // A backup never replaces a file.
    assert!(matches!(
        original.backup(&archive),
        Err(BackupError::FileExists(_))
    ));

    let dest = root.path().join("restored");
    let restored_summary = restore(&archive, &code, &dest, &password(), KDF).unwrap();
    assert_eq!(restored_summary.messages, 41);
    assert_eq!(restored_summary.contacts, summary.contacts);

    let restored = Profile::open(&dest, &password()).unwrap();
    assert_eq!(restored.whoami().key, original.whoami().key);
    assert_eq!(restored.whoami().name, "Alice");
    let mut before = original.contacts().unwrap();
    let mut after = restored.contacts().unwrap();
    before.sort_by_key(|c| c.name.clone());
    after.sort_by_key(|c| c.name.clone());
    assert_eq!(after, before);
    let states: Vec<(String, ContactState, bool)> = after
        .iter()
        .map(|c| (c.name.clone(), c.state, c.verified))
        .collect();
    assert!(states.contains(&(CANARY_NAME.into(), ContactState::Accepted, true)));
    assert!(states.contains(&("Carol".into(), ContactState::Blocked, false)));
    assert!(states.contains(&("Dave".into(), ContactState::Requested, false)));
    for contact in &before {
        let page = |p: &Profile| p.page(&contact.conversation(), None, 100).unwrap().messages;
        assert_eq!(page(&restored), page(&original), "{}", contact.name);
    }
    assert_eq!(
        restored.network_settings().unwrap(),
        original.network_settings().unwrap()
    );
    assert!(restored.network_settings().unwrap().lan_only);
    drop(restored);

    // Unread marks came along; the card waits in the outbox for the one accepted contact only.
    let engine = open(&dest);
    let bob = before.iter().find(|c| c.name == CANARY_NAME).unwrap().key;
    let dave = before.iter().find(|c| c.name == "Dave").unwrap().key;
    assert_eq!(engine.store().unread_count(bob).unwrap(), 20);
    assert_eq!(engine.store().unread_count(dave).unwrap(), 1);
    let outbox = engine.store().outbox().unwrap();
    assert_eq!(outbox.len(), 1, "one card, to Bob");
    assert_eq!(outbox[0].recipient, bob);
    // No session came from the archive but the one that card started.
    assert!(engine.store().session(&dave).unwrap().is_none());
}

/// Disappearing messages (docs/protocol.md §12.4) in a backup: the timer comes back, a message that
/// disappears within a day is left out with nothing of it in the archive, and one that lives longer comes
/// back still due at its time.
#[test]
fn a_backup_keeps_timers_and_leaves_out_what_disappears_within_a_day() {
    let root = tempfile::tempdir().unwrap();
    let mut alice = create(&root.path().join("alice"), "Alice");
    let mut bob = create(&root.path().join("bob"), "Bob");
    introduce(&mut [&mut alice, &mut bob]);
    let bob_key = bob.key();
    let now = tern_node::engine::now_ms();
    alice.set_timer(&bob_key, 3600).unwrap().unwrap();
    let (soon, _) = alice
        .send_text(&bob_key, "canary-fades-within-the-hour")
        .unwrap();
    // Two days ago under a four-week timer: 26 days left.
    alice
        .set_timer_at(&bob_key, 28 * 86_400, now - 2 * 86_400_000)
        .unwrap();
    let (later, _) = alice
        .send_text_at(&bob_key, "canary-stays-for-weeks", now - 2 * 86_400_000)
        .unwrap();
    let archive = root.path().join("alice.tern");
    let (code, _) = Profile::from(alice).backup(&archive).unwrap();
    let bytes = std::fs::read(&archive).unwrap();
    assert!(!contains(&bytes, b"canary-fades"));

    let dest = root.path().join("restored");
    restore(&archive, &code, &dest, &password(), KDF).unwrap();
    let restored = open(&dest);
    let conversation = tern_node::api::ConversationId::Direct(bob_key);
    assert_eq!(
        restored.store().timer(&conversation).unwrap().seconds,
        28 * 86_400
    );
    let page = restored
        .store()
        .conversation_page(bob_key, None, 20)
        .unwrap()
        .messages;
    assert!(
        page.iter().all(|m| m.id != soon.id),
        "due within a day: left out"
    );
    assert!(page.iter().any(|m| m.id == later.id));
    assert_eq!(
        restored.next_expiry(),
        Some(later.sent_at_ms + 28 * 86_400_000),
        "it disappears when it would have in the original"
    );
}

#[test]
fn the_archive_holds_no_plaintext_and_its_size_is_padded() {
    let root = tempfile::tempdir().unwrap();
    let (alice, _bob) = alice_with_history(&root.path().join("alice"), &root.path().join("o"), 3);
    let secret = alice.identity().ed25519_secret();
    let key = alice.key();
    let profile = Profile::from(alice);
    let path = root.path().join("a.tern");
    profile.backup(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for needle in [
        CANARY_TEXT.as_bytes(),
        CANARY_NAME.as_bytes(),
        b"Alice",
        b"hello from a stranger",
        &secret[..],
        &secret[..16],
        key.as_bytes(),
    ] {
        assert!(
            !contains(&bytes, needle),
            "{:?}",
            String::from_utf8_lossy(needle)
        );
    }
    assert_eq!(&bytes[..8], b"TERNBACK");
    // Padded: header, then at least one full chunk and its tag and an empty last chunk's tag.
    let plain = bytes.len() as u64 - 48;
    let chunks = plain.div_ceil(65_536 + 16);
    let padded = plain - chunks * 16;
    assert_eq!(
        padded,
        tern_node::backup::padded_len(padded),
        "size is a Padmé value"
    );
    assert!(padded >= tern_node::backup::MIN_PADDED_LEN);
}

#[test]
fn a_wrong_or_mistyped_code_is_refused_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    let (path, code, _bob) = archive(root.path(), 2);
    let dest = root.path().join("restored");
    let other = RecoveryCode::generate(&mut rand::rng());
    let err = restore(&path, &other, &dest, &password(), KDF).unwrap_err();
    assert!(matches!(err, BackupError::WrongCode), "{err}");
    assert_eq!(err.to_string(), "wrong recovery code for this backup");
    nothing_left_beside(&dest);

    let mut text = code.to_text().to_string();
    let last = text.pop().unwrap();
    text.push(if last == '0' { '1' } else { '0' });
    let err = RecoveryCode::parse(&text).unwrap_err();
    assert!(matches!(err, BackupError::MalformedCode(_)), "{err}");
    assert!(err.to_string().contains("mistyped"), "{err}");
}

#[test]
fn a_truncated_archive_is_refused_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (path, code, _bob) = archive(root.path(), 600);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 48 + 2 * (65_536 + 16), "several chunks");
    let dest = root.path().join("restored");
    // At a chunk boundary, inside a chunk, inside the header, and the empty file.
    for cut in [48 + 65_552, 48 + 65_552 + 1000, 48 + 2 * 65_552, 30, 0] {
        let cut_path = root.path().join(format!("cut-{cut}.tern"));
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        let err = restore(&cut_path, &code, &dest, &password(), KDF).unwrap_err();
        match cut {
            0 => assert!(matches!(err, BackupError::NotABackup), "{cut}: {err}"),
            48.. if cut % 65_552 == 48 => {
                assert!(matches!(err, BackupError::Truncated), "{cut}: {err}")
            }
            30 => assert!(matches!(err, BackupError::Truncated), "{cut}: {err}"),
            // A cut inside a chunk makes it fail authentication.
            _ => assert!(
                matches!(err, BackupError::Damaged(_) | BackupError::Truncated),
                "{cut}: {err}"
            ),
        }
        nothing_left_beside(&dest);
    }
}

#[test]
fn a_tampered_archive_is_refused_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (path, code, _bob) = archive(root.path(), 100);
    let bytes = std::fs::read(&path).unwrap();
    let dest = root.path().join("restored");
    for at in [48, 48 + 100, 48 + 65_552 + 5, bytes.len() - 1] {
        let mut changed = bytes.clone();
        changed[at] ^= 0x01;
        std::fs::write(&path, &changed).unwrap();
        let err = restore(&path, &code, &dest, &password(), KDF).unwrap_err();
        assert!(matches!(err, BackupError::Damaged(_)), "byte {at}: {err}");
        assert!(err.to_string().contains("changed"), "{err}");
        nothing_left_beside(&dest);
    }
    // A byte flipped in the header's salt or check reads as another code's archive.
    let mut changed = bytes.clone();
    changed[20] ^= 0x80;
    std::fs::write(&path, &changed).unwrap();
    let err = restore(&path, &code, &dest, &password(), KDF).unwrap_err();
    assert!(matches!(err, BackupError::WrongCode), "{err}");
    nothing_left_beside(&dest);
}

#[test]
fn an_archive_from_a_newer_version_is_refused_with_a_clear_message() {
    let root = tempfile::tempdir().unwrap();
    let (path, code, _bob) = archive(root.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let newer = ARCHIVE_VERSION + 1;
    bytes[8] = newer;
    std::fs::write(&path, &bytes).unwrap();
    let dest = root.path().join("restored");
    let err = restore(&path, &code, &dest, &password(), KDF).unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::NewerVersion { found, supported: ARCHIVE_VERSION } if found == newer
        ),
        "{err}"
    );
    assert!(err.to_string().contains("newer version of Tern"), "{err}");
    nothing_left_beside(&dest);

    std::fs::write(&path, b"not a backup at all, just some text").unwrap();
    let err = restore(&path, &code, &dest, &password(), KDF).unwrap_err();
    assert!(matches!(err, BackupError::NotABackup), "{err}");
}

#[test]
fn a_restore_never_replaces_an_existing_profile() {
    let root = tempfile::tempdir().unwrap();
    let (path, code, _bob) = archive(root.path(), 1);
    let existing = root.path().join("existing");
    drop(create(&existing, "Erin"));
    let store = existing.join(STORE_FILE);
    let before = std::fs::read(&store).unwrap();
    let err = restore(&path, &code, &existing, &password(), KDF).unwrap_err();
    assert!(matches!(err, BackupError::ProfileExists(_)), "{err}");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "the profile is untouched"
    );
    assert_eq!(open(&existing).whoami().name, "Erin");

    // Nor a directory holding anything else; an empty one is fine.
    let other = root.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    let err = restore(&path, &code, &other, &password(), KDF).unwrap_err();
    assert!(matches!(err, BackupError::ProfileExists(_)), "{err}");
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    restore(&path, &code, &empty, &password(), KDF).unwrap();
    assert_eq!(open(&empty).whoami().name, "Alice");
}

/// The committed archive `tests/fixtures/backup-v1.tern`, made by [`make_fixture`] under this code.
const FIXTURE_CODE: [u8; 32] = [0x42; 32];
const FIXTURE: &str = "tests/fixtures/backup-v1.tern";

/// Writes the fixture again (`cargo test --test backup make_fixture -- --ignored`): only when the format
/// changes, with a new version.
#[test]
#[ignore]
fn make_fixture() {
    let root = tempfile::tempdir().unwrap();
    let (alice, _bob) = alice_with_history(&root.path().join("alice"), &root.path().join("o"), 2);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let _ = std::fs::remove_file(&path);
    Profile::from(alice)
        .backup_with_code(&path, &RecoveryCode::from_secret(FIXTURE_CODE))
        .unwrap();
}

#[test]
fn the_committed_version_1_archive_still_restores() {
    let root = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let code = RecoveryCode::from_secret(FIXTURE_CODE);
    let dest = root.path().join("restored");
    let summary = restore(&path, &code, &dest, &password(), KDF).unwrap();
    assert_eq!((summary.contacts, summary.messages), (3, 5));
    let profile = Profile::open(&dest, &password()).unwrap();
    assert_eq!(profile.whoami().name, "Alice");
    let bob = profile.find_contact(CANARY_NAME).unwrap();
    assert!(bob.verified);
    let texts: Vec<String> = profile
        .page(&bob.conversation(), None, 10)
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(
        texts,
        [
            format!("{CANARY_TEXT} from alice 0{FILLER}"),
            "bob says 0".into(),
            format!("{CANARY_TEXT} from alice 1{FILLER}"),
            "bob says 1".into(),
        ]
    );
    assert!(profile.network_settings().unwrap().lan_only);
}

/// A contact restored from a backup cannot open what was sealed for it on the old session. When its new
/// session's first message reaches the sender, the sender seals again every message the contact has not
/// acknowledged, under the same id: the new one arrives once, those the backup held are recognised as
/// copies, and the old ciphertext stays unreadable.
/// Hands Bob the card the restored copy queued for him (it starts a new session, §20.5).
fn take_restored_card(restored: &mut Engine, bob: &mut Engine) {
    let card = restored
        .outbox_due(u64::MAX, 100)
        .unwrap()
        .into_iter()
        .find(|e| e.recipient == bob.key())
        .expect("the restored copy queued its card for Bob");
    bob.receive(&card.envelope).unwrap();
}

#[test]
fn what_waited_on_the_old_session_is_sealed_again_when_the_restored_copy_starts_a_new_one() {
    let root = tempfile::tempdir().unwrap();
    let (path, code, mut bob) = archive(root.path(), 3);
    let dest = root.path().join("alice-restored");
    restore(&path, &code, &dest, &password(), KDF).unwrap();
    let mut alice = open(&dest);

    let (away, old) = bob.send_text(&alice.key(), "while you were away").unwrap();
    assert!(
        alice.receive(&old.envelope).is_err(),
        "the old session is gone"
    );
    let queued_before: Vec<MessageId> = bob
        .store()
        .outbox_for(&alice.key(), 100)
        .unwrap()
        .iter()
        .map(|e| e.message_id)
        .collect();

    // The restored copy's card goes out first, on a new session; Bob takes it.
    take_restored_card(&mut alice, &mut bob);

    let queued = bob.store().outbox_for(&alice.key(), 100).unwrap();
    let again = queued
        .iter()
        .find(|e| e.message_id == away.id)
        .expect("the text is queued again");
    assert_ne!(
        again.envelope, old.envelope,
        "sealed again, not the old bytes"
    );
    assert_eq!(
        queued
            .iter()
            .map(|e| e.message_id)
            .collect::<Vec<_>>()
            .len(),
        queued_before.len(),
        "each message keeps one outbox entry"
    );
    let mut new = 0;
    let mut copies = 0;
    for entry in &queued {
        match alice.receive(&entry.envelope) {
            Ok(Received::Message { message, .. }) => {
                assert_eq!(message.id, away.id);
                assert_eq!(message.text, "while you were away");
                new += 1;
            }
            // Bob's own texts that the backup already holds (never acknowledged in this test).
            Ok(Received::Copy { .. } | Received::Duplicate) => copies += 1,
            other => panic!("a resealed entry did not open: {other:?}"),
        }
    }
    assert_eq!(new, 1, "the text arrives once");
    assert_eq!(copies, 3, "Bob's three texts from before are recognised");
    assert!(
        !matches!(alice.receive(&again.envelope), Ok(Received::Message { .. })),
        "and only once"
    );
    assert!(alice.receive(&old.envelope).is_err());
}

/// §20.5, "Old and restored copies at once": the old copy keeps running beside the restored one. Once
/// the restored copy's new session reaches Bob, his texts open at the restored copy and, at the old one,
/// fail as a decryption error that names Bob (the node's `Undecryptable` notice), never as silence; the
/// old copy's own texts still reach Bob, and do not pull his replies back to the old session.
#[test]
fn an_old_and_a_restored_copy_at_once_lose_nothing_without_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (alice, mut bob) = alice_with_history(&root.join("alice"), &root.join("others"), 2);
    let path = root.join("alice.tern");
    let (code, _) = Profile::from(alice).backup(&path).unwrap();
    let mut old = open(&root.join("alice"));
    let dest = root.join("alice-restored");
    restore(&path, &code, &dest, &password(), KDF).unwrap();
    let mut restored = open(&dest);
    assert_eq!(old.key(), restored.key());

    take_restored_card(&mut restored, &mut bob);

    let undecryptable_at_old = |old: &mut Engine, bytes: &[u8], bob: IdentityKey| {
        match old.receive(bytes) {
            Err(ReceiveError::Decrypt(e)) => assert!(
                !matches!(e, DecryptError::DuplicateOrExpired { .. }),
                "a duplicate is not a notice: {e}"
            ),
            other => panic!("the old copy should fail to decrypt, got {other:?}"),
        }
        assert_eq!(
            old.contact_sender_of(bytes, now_ms()),
            Some(bob),
            "the old copy can name who wrote what it could not open"
        );
    };

    let (_, first) = bob.send_text(&old.key(), "after the switch").unwrap();
    undecryptable_at_old(&mut old, &first.envelope, bob.key());
    assert!(matches!(
        restored.receive(&first.envelope),
        Ok(Received::Message { ref message, .. }) if message.text == "after the switch"
    ));

    // The old copy writes on the session it still holds: Bob opens it.
    let (_, from_old) = old.send_text(&bob.key(), "from the old copy").unwrap();
    assert!(matches!(
        bob.receive(&from_old.envelope),
        Ok(Received::Message { ref message, .. }) if message.text == "from the old copy"
    ));

    // Bob's reply still goes to the restored copy's session.
    let (_, reply) = bob.send_text(&old.key(), "reply").unwrap();
    undecryptable_at_old(&mut old, &reply.envelope, bob.key());
    assert!(matches!(
        restored.receive(&reply.envelope),
        Ok(Received::Message { ref message, .. }) if message.text == "reply"
    ));
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    u64::try_from(since.unwrap().as_millis()).unwrap()
}

/// The ids of the messages `node` received from `with`.
async fn history_ids(node: &tern_node::node::Node, with: IdentityKey) -> Vec<MessageId> {
    node.page(with.into(), None, 100)
        .await
        .unwrap()
        .messages
        .into_iter()
        .filter(|m| !m.outgoing())
        .map(|m| m.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_copy_and_its_contact_talk_both_ways_with_no_key_change_and_no_silent_loss() {
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut alice = create(&root.path().join("alice"), "Alice");
    let mut bob = create(&root.path().join("bob"), "Bob");
    introduce(&mut [&mut alice, &mut bob]);
    let alice_link = alice.card().invite_link();
    let alice_key = alice.key();
    assert!(bob.verify_card(&alice.key(), &alice_link).unwrap());
    let file_text = b"canary-file-content-0b1e";
    let source = scratch.path().join("notes.txt");
    std::fs::write(&source, file_text.repeat(5000)).unwrap();

    tokio::time::timeout(Duration::from_secs(180), async {
        let mut a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let sent = a
            .node
            .send_text(b.key, "before the backup".into())
            .await
            .unwrap();
        wait_status(&mut a.events, sent.id, MessageStatus::Delivered).await;
        received(&mut b.events, "before the backup").await;
        let reply = b
            .node
            .send_text(a.key, "reply before".into())
            .await
            .unwrap();
        received(&mut a.events, "reply before").await;
        wait_status(&mut b.events, reply.id, MessageStatus::Delivered).await;
        let file = a.node.send_file(b.key, &source).await.unwrap();
        wait_for(
            &mut b.events,
            "the file",
            |e| matches!(e, Event::FileReceived { id, .. } if *id == file.message.id),
        )
        .await;

        // Alice backs up and her computer is lost.
        let profile = a.node.stop().await.unwrap();
        let archive = scratch.path().join("alice.tern");
        let (code, summary) = profile.backup(&archive).unwrap();
        assert_eq!(summary.files, 1);
        drop(profile);
        drop(a);

        // Bob reads Alice's message and writes meanwhile, on the old session: both wait in his outbox.
        let before = history_ids(&b.node, alice_key).await;
        b.node.mark_read(alice_key, before).await.unwrap();
        let away = b
            .node
            .send_text(alice_key, "while you were away".into())
            .await
            .unwrap();

        let dest = scratch.path().join("alice-restored");
        restore(&archive, &code, &dest, &password(), KDF).unwrap();
        let restored = Profile::open(&dest, &password()).unwrap();
        let files = restored.files().unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].attachment.state, FileState::Complete);
        let copy = scratch.path().join("copy.txt");
        restored.save_file(&files[0].message, &copy, false).unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), file_text.repeat(5000));

        let mut a2 = LiveNode::start(restored, "alice-restored", loopback_node()).await;
        b.node.dial(a2.addr.clone()).await.unwrap();
        assert_eq!(a2.key, alice_key);

        // Bob's read receipt on the old session cannot be opened, and is not sealed again (its body is not
        // kept): Alice is told.
        // Bob's text is sealed again once the restored copy's new session reaches him (§20.5): it arrives,
        // and Bob sees it delivered. (The two come in either order.)
        let (mut notice, mut text) = (false, false);
        wait_for(
            &mut a2.events,
            "the undecryptable notice and the text sealed again",
            |e| {
                match e {
                    Event::Undecryptable { contact, .. } if *contact == b.key => notice = true,
                    Event::MessageReceived { message, .. }
                        if message.text == "while you were away" =>
                    {
                        text = true
                    }
                    _ => {}
                }
                notice && text
            },
        )
        .await;
        wait_status(&mut b.events, away.id, MessageStatus::Delivered).await;

        // The restored Alice writes: a new session, which Bob takes with no warning.
        let hello = a2
            .node
            .send_text(b.key, "hello from the restored copy".into())
            .await
            .unwrap();
        received(&mut b.events, "hello from the restored copy").await;
        wait_status(&mut a2.events, hello.id, MessageStatus::Delivered).await;
        // Bob's replies now go on that session and reach the restored copy.
        let back = b
            .node
            .send_text(a2.key, "welcome back".into())
            .await
            .unwrap();
        received(&mut a2.events, "welcome back").await;
        wait_status(&mut b.events, back.id, MessageStatus::Delivered).await;

        let seen_by_bob = b.node.contact(a2.key).await.unwrap().unwrap();
        assert!(seen_by_bob.verified, "the verified mark stays");
        assert!(!seen_by_bob.key_changed, "no key-change warning");
        let texts: Vec<String> = history(&a2.node, b.key)
            .await
            .into_iter()
            .map(|(t, _)| t)
            .filter(|t| !t.is_empty())
            .collect();
        assert_eq!(
            texts,
            [
                "before the backup",
                "reply before",
                "while you were away",
                "hello from the restored copy",
                "welcome back"
            ]
        );
        a2.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .unwrap();
    // Nothing in the restored profile's files is plaintext.
    for file in files_under(&scratch.path().join("alice-restored")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, b"before the backup"),
            "{}",
            file.display()
        );
        assert!(!contains(&bytes, file_text), "{}", file.display());
    }
}

/// Groups in a backup (§20.3, §20.5): the archive carries the group's name, roles, members and history,
/// never its MLS state; the restored copy shows the group with its history, waiting, and asks the admin,
/// whose node adds it back with a new leaf in one commit. Then both write and read in the group again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_member_is_added_back_to_its_group_by_the_admin_and_talks_again() {
    const GROUP_NAME: &str = "Canary-climbing-5e1d";
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut alice = create(&root.path().join("alice"), "Alice");
    let mut bob = create(&root.path().join("bob"), "Bob");
    introduce(&mut [&mut alice, &mut bob]);

    tokio::time::timeout(Duration::from_secs(240), async {
        let (mut a, mut b, group) =
            alice_and_bob_in(alice, bob, GROUP_NAME, &loopback_node()).await;
        // A week's timer: the restored copy keeps it for the group's history.
        a.node.set_timer(group, 7 * 24 * 3600).await.unwrap();
        a.node
            .group_send(group, "before the backup".into())
            .await
            .unwrap();
        received(&mut b.events, "before the backup").await;

        // Bob backs up and his computer is lost.
        let profile = b.node.stop().await.unwrap();
        let archive = scratch.path().join("bob.tern");
        let (code, summary) = profile.backup(&archive).unwrap();
        // The lines "Alice added you to …" and "Alice set disappearing messages to 1 week", and the text.
        assert_eq!((summary.groups, summary.messages), (1, 3));
        drop(profile);
        drop(b);
        let bytes = std::fs::read(&archive).unwrap();
        assert!(!contains(&bytes, GROUP_NAME.as_bytes()));
        assert!(!contains(&bytes, b"before the backup"));

        let dest = scratch.path().join("bob-restored");
        let restored = restore(&archive, &code, &dest, &password(), KDF).unwrap();
        assert_eq!(restored.groups, 1);
        let mut b2 = LiveNode::start(
            Profile::open(&dest, &password()).unwrap(),
            "bob-restored",
            loopback_node(),
        )
        .await;
        let waiting = b2.node.groups().await.unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(
            (
                waiting[0].id,
                waiting[0].name.as_str(),
                waiting[0].active,
                waiting[0].rejoining
            ),
            (group, GROUP_NAME, false, true)
        );
        assert_eq!(waiting[0].members, 2);
        assert_eq!(texts(&b2.node, group, false).await, ["before the backup"]);
        let conversations = b2.node.conversations().await.unwrap();
        let restored_group = conversations.iter().find(|c| c.id == group).unwrap();
        assert_eq!(restored_group.timer_s, 7 * 24 * 3600);
        assert!(
            b2.node.send_text(group, "too early".into()).await.is_err(),
            "nothing is sent before the copy is back in the group"
        );

        // The card and the rejoin request reach Alice: her node adds Bob's copy back.
        b2.node.dial(a.addr.clone()).await.unwrap();
        let back = wait_for(
            &mut b2.events,
            "Bob's copy is added back",
            |e| matches!(e, Event::GroupJoined { group: g, .. } if g.id == group),
        )
        .await;
        let Event::GroupJoined { group: summary, .. } = back else {
            unreachable!()
        };
        assert!(summary.active && !summary.rejoining);
        assert_eq!(summary.members, 2, "the old leaf went as the new one came");
        let members = a.node.group_members(group).await.unwrap();
        assert_eq!(members.len(), 2);

        b2.node
            .group_send(group, "back in the group".into())
            .await
            .unwrap();
        received(&mut a.events, "back in the group").await;
        a.node
            .group_send(group, "welcome back".into())
            .await
            .unwrap();
        received(&mut b2.events, "welcome back").await;
        assert_eq!(
            texts(&b2.node, group, false).await,
            ["before the backup", "back in the group", "welcome back"]
        );
        let lines = texts(&a.node, group, true).await;
        assert!(
            lines
                .iter()
                .any(|l| l.contains("back (restored from a backup)")),
            "{lines:?}"
        );
        b2.node.shutdown().await.unwrap();
        a.node.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

/// Automatic backups (issue 15): one code for every archive, a new one only when the schedule says,
/// the newest `keep` kept; bad schedules and a missing folder refused.
#[test]
fn automatic_backups_follow_the_schedule_keep_the_newest_and_open_with_one_code() {
    use tern_node::backup::archives_in;
    let root = tempfile::tempdir().unwrap();
    let (alice, _bob) = alice_with_history(&root.path().join("alice"), &root.path().join("o"), 3);
    let mut profile = Profile::from(alice);
    let folder = root.path().join("backups");
    const HOUR: Duration = Duration::from_secs(3600);
    assert!(
        profile.enable_auto_backup(&folder, HOUR, 2).is_err(),
        "no folder yet"
    );
    std::fs::create_dir(&folder).unwrap();
    assert!(
        profile
            .enable_auto_backup(&folder, Duration::from_secs(60), 2)
            .is_err()
    );
    assert!(profile.enable_auto_backup(&folder, HOUR, 0).is_err());
    assert!(
        profile.auto_backup().unwrap().is_none(),
        "refused changes nothing"
    );

    let code = profile.enable_auto_backup(&folder, HOUR, 2).unwrap();
    let t0 = tern_node::engine::now_ms();
    let hour_ms = 3_600_000;
    let (first, _) = profile
        .auto_backup_if_due(t0)
        .unwrap()
        .expect("due at once");
    assert!(
        profile.auto_backup_if_due(t0 + 60_000).unwrap().is_none(),
        "not yet"
    );
    let (second, _) = profile.auto_backup_if_due(t0 + hour_ms).unwrap().unwrap();
    let (third, _) = profile
        .auto_backup_if_due(t0 + 2 * hour_ms)
        .unwrap()
        .unwrap();
    assert_eq!(
        archives_in(&folder).unwrap(),
        vec![second.clone(), third.clone()]
    );
    assert!(!first.exists());
    assert_eq!(
        profile.auto_backup().unwrap().unwrap().last_ms,
        t0 + 2 * hour_ms
    );

    // Every archive opens with the one code shown when they were turned on.
    for (n, archive) in [second, third].iter().enumerate() {
        let dest = root.path().join(format!("restored-{n}"));
        let summary = restore(archive, &code, &dest, &password(), KDF).unwrap();
        assert_eq!(summary.messages, 7);
    }
    let bytes = std::fs::read(archives_in(&folder).unwrap().pop().unwrap()).unwrap();
    assert!(!contains(&bytes, CANARY_TEXT.as_bytes()));

    assert!(profile.disable_auto_backup().unwrap());
    assert!(
        profile
            .auto_backup_if_due(t0 + 9 * hour_ms)
            .unwrap()
            .is_none()
    );
    assert_eq!(archives_in(&folder).unwrap().len(), 2, "the archives stay");
}
