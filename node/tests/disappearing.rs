//! Disappearing messages between two real nodes (issue 15, docs/protocol.md §12.4): a timer set by either
//! side shows on both and crossing changes settle on one value; a message disappears after it was sent on
//! the sender and after it was read on the recipient, with its file; after that and a restart, neither its
//! sealed row nor its file's bytes are anywhere in the profile; a message that fell due while no node ran
//! is hidden at once and deleted when the node starts.

use std::time::Duration;

use tern_node::api::{ConversationId, Event, MessageStatus};
use tern_node::engine::Engine;
use tern_node::profile::Profile;
use tern_protocol::MessageId;
use tern_testkit::files::{files_under, profile_holds};
use tern_testkit::net::{LiveNode, loopback_node, sealed_bytes_of};
use tern_testkit::profile::{open, pair, password};
use tern_testkit::wait::{wait_for, wait_status};
use tokio::sync::broadcast::Receiver;

const DEADLINE: Duration = Duration::from_secs(120);

async fn timer_of(node: &tern_node::node::Node, conversation: ConversationId) -> u32 {
    node.conversations()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == conversation)
        .map_or(0, |c| c.timer_s)
}

async fn system_line(events: &mut Receiver<Event>, what: &str) -> String {
    match wait_for(
        events,
        what,
        |e| matches!(e, Event::MessageReceived { message, .. } if message.system),
    )
    .await
    {
        Event::MessageReceived { message, .. } => message.text,
        _ => unreachable!(),
    }
}

async fn expired(events: &mut Receiver<Event>, id: MessageId) {
    wait_for(
        events,
        "the message to disappear",
        |e| matches!(e, Event::MessagesExpired { ids, .. } if ids.contains(&id)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_set_by_either_side_shows_on_both_and_crossing_changes_settle_on_one_value() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    tokio::time::timeout(DEADLINE, async {
        let mut a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let (to_b, to_a) = (ConversationId::Direct(b.key), ConversationId::Direct(a.key));

        let line = a.node.set_timer(to_b, 3600).await.unwrap().unwrap();
        assert!(line.system);
        assert_eq!(line.text, "You set disappearing messages to 1 hour");
        assert_eq!(
            system_line(&mut b.events, "Alice's timer").await,
            "Alice set disappearing messages to 1 hour"
        );
        assert_eq!(timer_of(&b.node, to_a).await, 3600);
        assert_eq!(timer_of(&a.node, to_b).await, 3600);
        assert!(
            a.node.set_timer(to_b, 3600).await.unwrap().is_none(),
            "setting the timer it has changes nothing"
        );

        // Both change it at once (the same version): each side takes the other's only if it wins.
        let (mine, theirs) =
            tokio::join!(a.node.set_timer(to_b, 300), b.node.set_timer(to_a, 86_400));
        let (mine, theirs) = (mine.unwrap().unwrap(), theirs.unwrap().unwrap());
        wait_status(&mut a.events, mine.id, MessageStatus::Delivered).await;
        wait_status(&mut b.events, theirs.id, MessageStatus::Delivered).await;
        let settled = (timer_of(&a.node, to_b).await, timer_of(&b.node, to_a).await);
        let winner = if theirs.id.0 > mine.id.0 { 86_400 } else { 300 };
        assert_eq!(
            settled,
            (winner, winner),
            "both sides hold the larger id's timer"
        );

        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_disappears_after_sending_and_after_reading_and_leaves_no_byte_in_either_profile()
{
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let file = scratch.path().join("note.bin");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    const TIMER_S: u32 = 2;

    tokio::time::timeout(DEADLINE, async {
        let mut a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let to_b = ConversationId::Direct(b.key);
        let to_a = ConversationId::Direct(a.key);
        a.node.set_timer(to_b, TIMER_S).await.unwrap().unwrap();
        system_line(&mut b.events, "the timer").await;

        let text = a
            .node
            .send_text(to_b, "canary-fades-4d1e".into())
            .await
            .unwrap();
        let sent_file = a.node.send_file(b.key, &file).await.unwrap().message;
        for id in [text.id, sent_file.id] {
            wait_for(
                &mut b.events,
                "the message and the file offer",
                |e| matches!(e, Event::MessageReceived { message, .. } if message.id == id),
            )
            .await;
        }
        wait_for(
            &mut b.events,
            "the file",
            |e| matches!(e, Event::FileReceived { id, .. } if *id == sent_file.id),
        )
        .await;

        // The sender's copies go TIMER_S after sending; the recipient's wait to be read.
        expired(&mut a.events, text.id).await;
        expired(&mut a.events, sent_file.id).await;
        assert!(
            a.node
                .page(to_b, None, 10)
                .await
                .unwrap()
                .messages
                .iter()
                .all(|m| m.system),
            "only the timer's line is left at the sender"
        );
        let held = b.node.page(to_a, None, 10).await.unwrap().messages;
        assert!(held.iter().any(|m| m.id == text.id), "unread: still there");

        // Before Bob reads them: what their rows and the file look like on his disk.
        let (mut b, bob_dir, needle) = sealed_bytes_of(b, to_a, text.id).await;
        assert!(
            profile_holds(&bob_dir, &needle),
            "the row is on disk before"
        );
        let data = files_under(&bob_dir.join("files"))
            .into_iter()
            .find(|f| f.ends_with("data"))
            .expect("the file's ciphertext");
        let file_bytes = std::fs::read(&data).unwrap()[4096..4096 + 64].to_vec();

        let read = b.node.mark_all_read(to_a).await.unwrap();
        assert!(read.contains(&text.id) && read.contains(&sent_file.id));
        expired(&mut b.events, text.id).await;
        let left = b.node.page(to_a, None, 10).await.unwrap().messages;
        assert!(
            left.iter().all(|m| m.system),
            "only the timer's line is left"
        );
        b.node.shutdown().await.unwrap();
        a.node.shutdown().await.unwrap();

        // After a restart: gone from the profile, not hidden.
        let reopened = Profile::open(&bob_dir, &password()).unwrap();
        let page = reopened.page(&to_a, None, 10).unwrap();
        assert!(page.messages.iter().all(|m| m.system));
        drop(reopened);
        assert!(
            !profile_holds(&bob_dir, &needle),
            "the sealed row is still in the profile"
        );
        assert!(
            !profile_holds(&bob_dir, &file_bytes),
            "the file's bytes are still in the profile"
        );
        assert!(!data.exists());
        assert!(!profile_holds(dirs.0.path(), b"canary-fades-4d1e"));
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_due_while_no_node_ran_is_hidden_and_deleted_when_the_node_starts() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let bob_key = bob.key();
    drop(bob);
    let an_hour_ago = tern_node::engine::now_ms() - 3_600_000;
    alice
        .set_timer_at(&bob_key, 60, an_hour_ago)
        .unwrap()
        .unwrap();
    let (old, _) = alice
        .send_text_at(&bob_key, "long gone", an_hour_ago)
        .unwrap();
    let (fresh, _) = alice.send_text(&bob_key, "still here").unwrap();
    drop(alice);

    let alice: Engine = open(dirs.0.path());
    assert!(
        alice
            .next_expiry()
            .is_some_and(|at| at < tern_node::engine::now_ms())
    );
    let texts: Vec<String> = alice
        .store()
        .reader()
        .page(&bob_key.into(), None, 10)
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert!(
        !texts.contains(&"long gone".to_owned()),
        "due: out of view at once"
    );
    assert!(texts.contains(&"still here".to_owned()));

    tokio::time::timeout(DEADLINE, async {
        let mut a = LiveNode::start(alice, "alice", loopback_node()).await;
        expired(&mut a.events, old.id).await;
        let page = a
            .node
            .page(bob_key.into(), None, 10)
            .await
            .unwrap()
            .messages;
        assert!(page.iter().any(|m| m.id == fresh.id));
        assert!(page.iter().all(|m| m.id != old.id));
        a.node.shutdown().await.unwrap();
    })
    .await
    .expect("timed out");
}

/// Clearing a conversation's history (issue 16) deletes its messages and files on this side only: the
/// contact, the timer and the conversation itself stay, the other side keeps its copies, new messages
/// still arrive, and after a restart neither the sealed rows nor the file's bytes are in the profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_a_history_deletes_it_here_only_and_leaves_no_byte() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let file = scratch.path().join("kept.bin");
    let content: Vec<u8> = (0..100_000u32).map(|i| (i * 13 + i / 241) as u8).collect();
    std::fs::write(&file, &content).unwrap();

    tokio::time::timeout(DEADLINE, async {
        let mut a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let (to_a, to_b) = (ConversationId::Direct(a.key), ConversationId::Direct(b.key));
        a.node.set_timer(to_b, 3600).await.unwrap().unwrap();
        system_line(&mut b.events, "the timer").await;
        let text = a
            .node
            .send_text(to_b, "canary-cleared-7b3a".into())
            .await
            .unwrap();
        let sent_file = a.node.send_file(b.key, &file).await.unwrap().message;
        wait_for(
            &mut b.events,
            "the file",
            |e| matches!(e, Event::FileReceived { id, .. } if *id == sent_file.id),
        )
        .await;
        assert!(
            b.node
                .page(to_a, None, 10)
                .await
                .unwrap()
                .messages
                .iter()
                .any(|m| m.id == text.id)
        );
        let (b, bob_dir, needle) = sealed_bytes_of(b, to_a, text.id).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let data = files_under(&bob_dir.join("files"))
            .into_iter()
            .find(|f| f.ends_with("data"))
            .expect("the file's ciphertext");

        assert_eq!(
            b.node.clear_history(to_a).await.unwrap(),
            3,
            "timer line, text, file"
        );
        assert!(
            b.node
                .page(to_a, None, 10)
                .await
                .unwrap()
                .messages
                .is_empty()
        );
        assert!(!data.exists(), "the file's bytes go with it");
        assert!(
            b.node
                .contacts()
                .await
                .unwrap()
                .iter()
                .any(|c| c.key == a.key)
        );
        assert!(
            a.node
                .page(to_b, None, 10)
                .await
                .unwrap()
                .messages
                .iter()
                .any(|m| m.id == text.id),
            "Alice keeps her copy"
        );
        let later = a
            .node
            .send_text(to_b, "after the clear".into())
            .await
            .unwrap();
        wait_status(&mut a.events, later.id, MessageStatus::Delivered).await;
        assert_eq!(timer_of(&b.node, to_a).await, 3600, "the timer stays");
        b.node.shutdown().await.unwrap();
        a.node.shutdown().await.unwrap();

        let reopened = Profile::open(&bob_dir, &password()).unwrap();
        let left = reopened.page(&to_a, None, 10).unwrap().messages;
        assert_eq!(
            left.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            ["after the clear"]
        );
        drop(reopened);
        assert!(
            !profile_holds(&bob_dir, &needle),
            "the sealed row is still in the profile"
        );
    })
    .await
    .expect("timed out");
}
