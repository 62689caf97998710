//! Files between two real nodes in one process (issue 14): sent, fetched, verified and saved byte for byte;
//! a receiver stopped mid-transfer and started again from the same profile finishes from what it had;
//! deleting the message removes the file's bytes; bad input is a typed error.

use std::path::Path;
use std::time::Duration;

use tern_node::api::{ConversationId, Event, FileOpError, FileState};
use tern_node::node::NodeError;
use tern_protocol::MessageId;
use tern_protocol::file::FileLayout;
use tern_testkit::files::{contains, files_under};
use tern_testkit::net::{LiveNode, loopback_node};
use tern_testkit::profile::pair;
use tern_testkit::wait::wait_for;

const MIB: usize = 1024 * 1024;

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

async fn offered(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
) -> (ConversationId, MessageId) {
    match wait_for(
        events,
        "a file offer",
        |e| matches!(e, Event::MessageReceived { message, .. } if message.attachment.is_some()),
    )
    .await
    {
        Event::MessageReceived { message, .. } => (message.conversation, message.id),
        _ => unreachable!(),
    }
}

async fn file_received(events: &mut tokio::sync::broadcast::Receiver<Event>, id: MessageId) {
    wait_for(
        events,
        "the file",
        |e| matches!(e, Event::FileReceived { id: got, .. } if *got == id),
    )
    .await;
}

fn held_files(profile: &Path) -> usize {
    let dir = profile.join("files");
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_sent_fetched_saved_byte_for_byte_and_deleting_the_message_removes_it() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let canary_name = "canary-name-3e9d1.bin";
    let canary_text = b"canary-content-77a01f";
    let mut bytes = pattern(4 * MIB, 1);
    bytes[1000..1000 + canary_text.len()].copy_from_slice(canary_text);
    let source = scratch.path().join(canary_name);
    std::fs::write(&source, &bytes).unwrap();

    tokio::time::timeout(Duration::from_secs(120), async {
        let a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();

        let sent = a.node.send_file(b.key, &source).await.unwrap();
        assert!(!sent.metadata_stripped);
        let attachment = sent.message.attachment.clone().unwrap();
        assert_eq!(attachment.name, canary_name);
        assert_eq!(attachment.size, bytes.len() as u64);
        assert_eq!(attachment.state, FileState::Complete);

        let (conversation, id) = offered(&mut b.events).await;
        assert_eq!(id, sent.message.id);
        file_received(&mut b.events, id).await;

        let page = b.node.page(conversation, None, 10).await.unwrap();
        let got = page.messages[0].attachment.clone().unwrap();
        assert_eq!(got.state, FileState::Complete);
        assert_eq!(got.progress, bytes.len() as u64);
        assert_eq!(got.name, canary_name);
        let listed = b.node.files().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!listed[0].outgoing);

        let dest = scratch.path().join("saved.bin");
        b.node
            .save_file(conversation, id, &dest, false)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        // Not over an existing file unless asked.
        match b.node.save_file(conversation, id, &dest, false).await {
            Err(NodeError::File(FileOpError::DestinationExists(_))) => {}
            other => panic!("expected DestinationExists, got {other:?}"),
        }
        b.node
            .save_file(conversation, id, &dest, true)
            .await
            .unwrap();
        std::fs::remove_file(&dest).unwrap();

        // Nothing readable of the file, nor its name, in either profile.
        for dir in [dirs.0.path(), dirs.1.path()] {
            for file in files_under(dir) {
                let on_disk = std::fs::read(&file).unwrap();
                assert!(
                    !contains(&on_disk, canary_text),
                    "{} holds the content",
                    file.display()
                );
                assert!(
                    !contains(&on_disk, canary_name.as_bytes()),
                    "{} holds the name",
                    file.display()
                );
            }
        }

        // Deleting the message removes the file's bytes, on both sides.
        assert_eq!(held_files(dirs.1.path()), 1);
        b.node.delete_message(conversation, id).await.unwrap();
        assert_eq!(held_files(dirs.1.path()), 0);
        assert!(
            b.node
                .page(conversation, None, 10)
                .await
                .unwrap()
                .messages
                .is_empty()
        );
        assert_eq!(held_files(dirs.0.path()), 1);
        a.node.delete_message(b.key.into(), id).await.unwrap();
        assert_eq!(held_files(dirs.0.path()), 0);
        match b
            .node
            .save_file(conversation, id, scratch.path().join("x"), false)
            .await
        {
            Err(NodeError::File(FileOpError::NoFile)) => {}
            other => panic!("expected NoFile, got {other:?}"),
        }
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_stopped_mid_transfer_finishes_after_a_restart_without_fetching_it_all_again() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    // Large enough that the pause lands mid-transfer: progress events come at most every 250 ms, and
    // loopback moves tens of MiB in that time (48 MiB once finished before the pause on a loaded CI run,
    // and 128 MiB once more, on 2026-12-07, when the test's task was scheduled late on two busy cores).
    let bytes = pattern(256 * MIB, 2);
    let source = scratch.path().join("big.bin");
    std::fs::write(&source, &bytes).unwrap();
    let ciphertext = FileLayout::new(bytes.len() as u64)
        .unwrap()
        .ciphertext_len();

    tokio::time::timeout(Duration::from_secs(300), async {
        let a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let sent = a.node.send_file(b.key, &source).await.unwrap();
        let (conversation, id) = offered(&mut b.events).await;
        assert_eq!(id, sent.message.id);
        // Stopped once more than 12 MiB are verified: at least the first 8 MiB are durable by then.
        wait_for(&mut b.events, "progress past 12 MiB", |e| {
            matches!(e, Event::FileProgress { id: got, received, .. } if *got == id && *received > 12 * MIB as u64)
        })
        .await;
        // Paused first, so that the stop lands mid-transfer however fast this machine moves the other
        // 244 MiB over loopback (the fetch runs beside the loop and would otherwise race the stop to the end).
        b.node.pause_file(conversation, id).await.unwrap();
        let profile = b.node.stop().await.unwrap();
        let before = a.node.file_bytes_sent();
        assert!(before < ciphertext, "stopped before the end ({before} of {ciphertext} served)");

        let mut b = LiveNode::start(profile, "bob-again", loopback_node()).await;
        let page = b.node.page(conversation, None, 10).await.unwrap();
        assert_eq!(page.messages[0].attachment.as_ref().unwrap().state, FileState::Paused);
        b.node.resume_file(conversation, id).await.unwrap();
        b.node.dial(a.addr.clone()).await.unwrap();
        file_received(&mut b.events, id).await;
        let again = a.node.file_bytes_sent() - before;
        eprintln!("served before the stop: {before}, after the restart: {again}, file: {ciphertext}");
        assert!(
            again < ciphertext,
            "the restart fetched {again} bytes again, the whole file is {ciphertext}"
        );

        let dest = scratch.path().join("big-saved.bin");
        b.node.save_file(conversation, id, &dest, false).await.unwrap();
        assert!(std::fs::read(&dest).unwrap() == bytes, "saved bytes differ");
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_or_missing_file_is_a_typed_error_and_nothing_is_sent() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let bob_key = bob.key();
    drop(bob);
    // Sparse: 4 GiB and one byte, without writing them.
    let huge = scratch.path().join("huge.bin");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 * 1024 * 1024 * 1024 + 1)
        .unwrap();

    tokio::time::timeout(Duration::from_secs(60), async {
        let a = LiveNode::start(alice, "alice", loopback_node()).await;
        match a.node.send_file(bob_key, &huge).await {
            Err(NodeError::File(FileOpError::TooLarge { size, max })) => {
                assert_eq!(size, 4 * 1024 * 1024 * 1024 + 1);
                assert_eq!(max, 4 * 1024 * 1024 * 1024);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        match a
            .node
            .send_file(bob_key, scratch.path().join("absent.bin"))
            .await
        {
            Err(NodeError::File(FileOpError::Unreadable { .. })) => {}
            other => panic!("expected Unreadable, got {other:?}"),
        }
        match a.node.send_file(bob_key, scratch.path()).await {
            Err(NodeError::File(FileOpError::NotAFile(_))) => {}
            other => panic!("expected NotAFile, got {other:?}"),
        }
        assert!(a.node.files().await.unwrap().is_empty());
        assert!(
            a.node
                .page(bob_key.into(), None, 10)
                .await
                .unwrap()
                .messages
                .is_empty()
        );
        assert_eq!(held_files(dirs.0.path()), 0);
        a.node.shutdown().await.unwrap();
    })
    .await
    .expect("finished in time");
}

/// A minimal JPEG with an EXIF block holding a GPS tag (and a comment naming the camera), built by hand.
fn jpeg_with_gps() -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let jfif = b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
    out.extend_from_slice(&[0xFF, 0xE0, 0, (jfif.len() + 2) as u8]);
    out.extend_from_slice(jfif);
    // TIFF header, one IFD entry: tag 0x8825 (GPSInfo), then the GPS payload.
    let exif =
        b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x88\x25\0\x04\0\0\0\x01\0\0\0\x1aGPS-51.5007N-0.1246W";
    out.extend_from_slice(&[0xFF, 0xE1, 0, (exif.len() + 2) as u8]);
    out.extend_from_slice(exif);
    let comment = b"camera: Example X100";
    out.extend_from_slice(&[0xFF, 0xFE, 0, (comment.len() + 2) as u8]);
    out.extend_from_slice(comment);
    out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0]);
    out.extend_from_slice(&[0x12, 0x34, 0x56, 0xFF, 0x00, 0x78]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_loses_its_gps_metadata_before_it_is_sent_and_the_sender_is_told() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let photo = jpeg_with_gps();
    let source = scratch.path().join("holiday.jpg");
    std::fs::write(&source, &photo).unwrap();

    tokio::time::timeout(Duration::from_secs(120), async {
        let a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let sent = a.node.send_file(b.key, &source).await.unwrap();
        assert!(sent.metadata_stripped, "the sender is told");
        let attachment = sent.message.attachment.clone().unwrap();
        assert!(attachment.metadata_stripped);
        assert_eq!(attachment.media_type, "image/jpeg");
        assert!(attachment.size < photo.len() as u64);

        let (conversation, id) = offered(&mut b.events).await;
        file_received(&mut b.events, id).await;
        let dest = scratch.path().join("got.jpg");
        b.node
            .save_file(conversation, id, &dest, false)
            .await
            .unwrap();
        let got = std::fs::read(&dest).unwrap();
        assert!(!contains(&got, b"GPS-51.5007N"), "the location is gone");
        assert!(!contains(&got, b"Example X100"), "the camera is gone");
        assert!(got.starts_with(&[0xFF, 0xD8]) && got.ends_with(&[0xFF, 0xD9]));
        assert!(
            contains(&got, &[0x12, 0x34, 0x56, 0xFF, 0x00, 0x78]),
            "the picture stays"
        );
        // Neither profile holds the location anywhere, the original file is untouched.
        for dir in [dirs.0.path(), dirs.1.path()] {
            for file in files_under(dir) {
                assert!(!contains(&std::fs::read(&file).unwrap(), b"GPS-51.5007N"));
            }
        }
        assert_eq!(std::fs::read(&source).unwrap(), photo);

        // Removing the contact removes the conversation's files too.
        assert_eq!(held_files(dirs.1.path()), 1);
        b.node.remove_contact(a.key).await.unwrap();
        assert_eq!(held_files(dirs.1.path()), 0);
        assert!(b.node.files().await.unwrap().is_empty());
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_pauses_resumes_and_cancels_and_a_withdrawn_file_is_reported_cancelled() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let bytes = pattern(32 * MIB, 3);
    let big = scratch.path().join("big.bin");
    std::fs::write(&big, &bytes).unwrap();
    let small = scratch.path().join("small.txt");
    std::fs::write(&small, b"withdrawn before anyone fetched it").unwrap();

    tokio::time::timeout(Duration::from_secs(300), async {
        let a = LiveNode::start(alice, "alice", loopback_node()).await;
        // Withdrawn while Bob is away: he hears "cancelled" when he asks for it.
        let withdrawn = a
            .node
            .send_file(tern_node::api::ConversationId::Direct(bob.key()), &small)
            .await
            .unwrap();
        a.node
            .cancel_file(withdrawn.message.conversation, withdrawn.message.id)
            .await
            .unwrap();
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let (conversation, id) = offered(&mut b.events).await;
        assert_eq!(id, withdrawn.message.id);
        match wait_for(
            &mut b.events,
            "the withdrawal",
            |e| matches!(e, Event::FileFailed { id: got, .. } if *got == id),
        )
        .await
        {
            Event::FileFailed { state, reason, .. } => {
                assert_eq!(state, FileState::Cancelled);
                assert!(reason.contains("withdrew"), "{reason}");
            }
            _ => unreachable!(),
        }
        // The state and its reason are kept with the file (read back from the store).
        let page = b.node.page(conversation, None, 10).await.unwrap();
        let kept = page.messages[0].attachment.clone().unwrap();
        assert_eq!(kept.state, FileState::Cancelled);
        assert!(
            kept.failure
                .as_deref()
                .is_some_and(|f| f.contains("withdrew")),
            "{:?}",
            kept.failure
        );

        // Paused on the first progress, then resumed to the end.
        let sent = a.node.send_file(b.key, &big).await.unwrap();
        let id = sent.message.id;
        wait_for(
            &mut b.events,
            "progress",
            |e| matches!(e, Event::FileProgress { id: got, .. } if *got == id),
        )
        .await;
        b.node.pause_file(conversation, id).await.unwrap();
        let page = b.node.page(conversation, None, 10).await.unwrap();
        let paused = page.messages.iter().find(|m| m.id == id).unwrap();
        assert_eq!(paused.attachment.as_ref().unwrap().state, FileState::Paused);
        assert_eq!(
            held_files(dirs.1.path()),
            1,
            "a pause keeps what was received"
        );
        b.node.resume_file(conversation, id).await.unwrap();
        file_received(&mut b.events, id).await;
        match b.node.pause_file(conversation, id).await {
            Err(NodeError::File(FileOpError::WrongState {
                state: FileState::Complete,
                ..
            })) => {}
            other => panic!("a complete file cannot be paused, got {other:?}"),
        }
        let dest = scratch.path().join("big-saved.bin");
        b.node
            .save_file(conversation, id, &dest, false)
            .await
            .unwrap();
        assert!(std::fs::read(&dest).unwrap() == bytes, "saved bytes differ");

        // Cancelled by the receiver mid-way: nothing of it is kept.
        let sent = a.node.send_file(b.key, &big).await.unwrap();
        let id = sent.message.id;
        wait_for(
            &mut b.events,
            "progress",
            |e| matches!(e, Event::FileProgress { id: got, .. } if *got == id),
        )
        .await;
        b.node.cancel_file(conversation, id).await.unwrap();
        let listed = b.node.files().await.unwrap();
        let cancelled = listed.iter().find(|f| f.message == id).unwrap();
        assert_eq!(cancelled.attachment.state, FileState::Cancelled);
        assert_eq!(cancelled.attachment.failure, None, "the user's own cancel");
        assert_eq!(
            held_files(dirs.1.path()),
            1,
            "only the first big file is held"
        );
        match b
            .node
            .save_file(conversation, id, scratch.path().join("no.bin"), false)
            .await
        {
            Err(NodeError::File(FileOpError::NotComplete(FileState::Cancelled))) => {}
            other => panic!("expected NotComplete(Cancelled), got {other:?}"),
        }
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("finished in time");
}

/// `Node::send_file` can be spawned on a multi-threaded runtime (the app runs it on tokio's pool): its
/// future is `Send`. This fails to compile otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_a_file_is_a_send_future() {
    fn spawnable<T: Send>(_: &T) {}
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let a = LiveNode::start(alice, "alice", loopback_node()).await;
    let sending = a.node.send_file(bob.key(), dirs.0.path().join("missing"));
    spawnable(&sending);
    assert!(sending.await.is_err(), "a missing file is refused");
    a.node.shutdown().await.unwrap();
}
