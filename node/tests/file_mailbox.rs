//! Files held by a mailbox server for a recipient who is offline (docs/protocol.md §19.9): the sender's node
//! asks the server that took the announcement to hold the file, the server fetches it, and the recipient,
//! back after the sender went away, fetches it from there.

use std::path::Path;
use std::time::Duration;

use libp2p::Multiaddr;
use tern_bootstrap::{Config, FileLimits, Server};
use tern_node::api::{ConversationId, Event, FileState};
use tern_node::config::NodeConfig;
use tern_testkit::files::{files_under, profile_holds};
use tern_testkit::net::{LiveNode, bootstrap_config, loopback_node, spawn_bootstrap_with};
use tern_testkit::profile::{create, introduce, open, pair_with_mailbox};
use tern_testkit::wait::wait_for;

const MIB: usize = 1024 * 1024;

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

/// A bootstrap server in this process holding files within `files`, and its TCP address with `/p2p/`.
async fn server_holding(dir: &Path, files: FileLimits) -> (Server, Multiaddr) {
    spawn_bootstrap_with(Config {
        files,
        ..bootstrap_config(dir)
    })
    .await
}

fn with_mailbox(mailbox: &Multiaddr) -> NodeConfig {
    NodeConfig {
        mailboxes: vec![mailbox.clone()],
        ..loopback_node()
    }
}

/// The files (directories named by hash) the server holds.
fn held(server_dir: &Path) -> usize {
    std::fs::read_dir(server_dir.join(tern_bootstrap::FILES_DIR))
        .map_or(0, |d| d.filter_map(Result::ok).count())
}

/// Waits for the server's verdict on the file of message `id`: `Ok(keep_secs)` or `Err(reason)`.
async fn hold_outcome(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    id: tern_protocol::MessageId,
) -> Result<u64, String> {
    let event = wait_for(events, "the mailbox's answer about the file", |e| {
        matches!(e, Event::FileHeld { id: got, .. } | Event::FileNotHeld { id: got, .. } if *got == id)
    })
    .await;
    match event {
        Event::FileHeld { keep_secs, .. } => Ok(keep_secs),
        Event::FileNotHeld { reason, .. } => Err(reason),
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_who_was_offline_gets_the_file_from_the_mailbox_after_the_sender_went_away() {
    let (s, a, b, scratch) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let canary = b"canary-held-file-5c1e0";
    let mut bytes = pattern(3 * MIB + 123, 9);
    bytes[4096..4096 + canary.len()].copy_from_slice(canary);
    let source = scratch.path().join("report.bin");
    std::fs::write(&source, &bytes).unwrap();

    tokio::time::timeout(Duration::from_secs(180), async {
        let (server, boot) = server_holding(s.path(), FileLimits::default()).await;
        let (alice, bob) = pair_with_mailbox(a.path(), b.path(), &boot);
        let bob_key = bob.key();
        drop(bob);

        // Bob is offline: the announcement goes to his mailbox, and the server is asked to hold the file.
        let mut alice = LiveNode::start(alice, "alice", with_mailbox(&boot)).await;
        let sent = alice.node.send_file(bob_key, &source).await.unwrap();
        let keep = hold_outcome(&mut alice.events, sent.message.id).await;
        assert_eq!(
            keep,
            Ok(Config::default().mailbox.max_ttl_secs),
            "held as long as mail"
        );
        assert_eq!(held(s.path()), 1);
        alice.node.shutdown().await.unwrap();

        // Bob comes back after Alice left: the offer comes from the mailbox, and so does the file.
        let mut bob = LiveNode::start(open(b.path()), "bob", with_mailbox(&boot)).await;
        let id = sent.message.id;
        let conversation = ConversationId::Direct(alice.key);
        wait_for(
            &mut bob.events,
            "the file",
            |e| matches!(e, Event::FileReceived { id: got, .. } if *got == id),
        )
        .await;
        let page = bob.node.page(conversation, None, 10).await.unwrap();
        let got = page.messages[0].attachment.clone().unwrap();
        assert_eq!(got.state, FileState::Complete);
        let dest = scratch.path().join("saved.bin");
        bob.node
            .save_file(conversation, id, &dest, false)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        std::fs::remove_file(&dest).unwrap();
        bob.node.shutdown().await.unwrap();
        server.shutdown().await.unwrap();

        // The server held ciphertext only: neither the content nor the file's name is in its files.
        assert!(!files_under(s.path()).is_empty());
        assert!(!profile_holds(s.path(), canary));
        assert!(!profile_holds(s.path(), b"report.bin"));
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_mailboxs_limits_is_refused_in_plain_words_and_nothing_is_kept() {
    let (s, a, b, scratch) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let limits = FileLimits {
        max_file_bytes: 2 * MIB as u64,
        quota_bytes: 3 * MIB as u64 / 2,
    };
    let files: Vec<_> = [
        (3 * MIB, "big.bin"),
        (MIB + 7, "one.bin"),
        (MIB + 8, "two.bin"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (len, name))| {
        let path = scratch.path().join(name);
        std::fs::write(&path, pattern(len, i as u32)).unwrap();
        path
    })
    .collect();

    tokio::time::timeout(Duration::from_secs(180), async {
        let (server, boot) = server_holding(s.path(), limits).await;
        let (alice, bob) = pair_with_mailbox(a.path(), b.path(), &boot);
        let bob_key = bob.key();
        drop(bob);
        let mut alice = LiveNode::start(alice, "alice", with_mailbox(&boot)).await;

        // Over the largest file the server takes: refused before a byte moves.
        let big = alice.node.send_file(bob_key, &files[0]).await.unwrap();
        let refused = hold_outcome(&mut alice.events, big.message.id).await;
        let reason = refused.expect_err("a file over the limit is refused");
        assert!(
            reason.contains("at most 2097152 bytes"),
            "the limit is named: {reason}"
        );
        assert_eq!(held(s.path()), 0, "nothing of it kept");

        // One file fits; a second does not fit beside it.
        let one = alice.node.send_file(bob_key, &files[1]).await.unwrap();
        assert!(
            hold_outcome(&mut alice.events, one.message.id)
                .await
                .is_ok()
        );
        let two = alice.node.send_file(bob_key, &files[2]).await.unwrap();
        let reason = hold_outcome(&mut alice.events, two.message.id)
            .await
            .expect_err("over the quota");
        assert!(reason.contains("no room"), "{reason}");
        assert_eq!(held(s.path()), 1, "only the file that fits");

        // Each message still went to the mailbox: the refusal is about the file alone.
        assert_eq!(alice.node.status().await.unwrap().outbox_len, 0);
        alice.node.shutdown().await.unwrap();
        server.shutdown().await.unwrap();
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_file_reaches_a_member_online_and_later_from_his_own_mailbox_server_when_he_was_away()
 {
    let (s1, s2, a, b, scratch) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let canary = b"canary-group-file-0b7d2";
    let contents: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            let mut bytes = pattern(MIB + 4321 * (i + 1), 40 + i as u32);
            bytes[100..100 + canary.len()].copy_from_slice(canary);
            bytes
        })
        .collect();
    let paths: Vec<_> = contents
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let path = scratch.path().join(format!("plan-{i}.bin"));
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();

    tokio::time::timeout(Duration::from_secs(240), async {
        // Alice's mail goes to one server, Bob's to another.
        let (server_a, boot_a) = server_holding(s1.path(), FileLimits::default()).await;
        let (server_b, boot_b) = server_holding(s2.path(), FileLimits::default()).await;
        let (mut alice, mut bob) = (create(a.path(), "Alice"), create(b.path(), "Bob"));
        for (engine, boot) in [(&mut alice, &boot_a), (&mut bob, &boot_b)] {
            let server = tern_node::node::mailbox_node_of(boot).unwrap();
            engine.set_mailboxes(vec![server]).unwrap();
        }
        introduce(&mut [&mut alice, &mut bob]);
        let mut alice = LiveNode::start(alice, "alice", with_mailbox(&boot_a)).await;
        let mut bob = LiveNode::start(bob, "bob", with_mailbox(&boot_b)).await;
        bob.node.dial(alice.addr.clone()).await.unwrap();
        let g = alice
            .node
            .group_create("Plans".into(), vec![bob.key])
            .await
            .unwrap()
            .id;
        wait_for(
            &mut bob.events,
            "Bob joins",
            |e| matches!(e, Event::GroupJoined { group, .. } if group.id == g),
        )
        .await;
        let saved = |n: usize| scratch.path().join(format!("saved-{n}.bin"));

        // Bob is online: the offer comes by gossip, the file straight from Alice. Her mailbox server holds
        // a copy too, for members who are away.
        let first = alice.node.send_file(g, &paths[0]).await.unwrap();
        assert_eq!(first.message.conversation, g);
        assert!(
            hold_outcome(&mut alice.events, first.message.id)
                .await
                .is_ok()
        );
        let id = first.message.id;
        let offer = wait_for(
            &mut bob.events,
            "the offer",
            |e| matches!(e, Event::MessageReceived { message, .. } if message.id == id),
        )
        .await;
        let Event::MessageReceived { message, .. } = offer else {
            unreachable!()
        };
        assert_eq!(message.sender, Some(alice.key), "the member who sent it");
        assert_eq!(message.attachment.unwrap().name, "plan-0.bin");
        wait_for(
            &mut bob.events,
            "the first file",
            |e| matches!(e, Event::FileReceived { id: got, .. } if *got == id),
        )
        .await;
        bob.node.save_file(g, id, saved(0), false).await.unwrap();
        assert_eq!(std::fs::read(saved(0)).unwrap(), contents[0]);

        // Bob goes away; Alice sends another file and then goes away too.
        bob.node.shutdown().await.unwrap();
        wait_for(&mut alice.events, "Bob offline", |e| {
            matches!(e, Event::ContactOnline { contact, online: false, .. } if *contact == bob.key)
        })
        .await;
        // Bob's copy of the offer goes to his mailbox server, which is asked to hold the file too: Alice's
        // own server is not one Bob reads.
        let second = alice.node.send_file(g, &paths[1]).await.unwrap();
        let (id, server_b_peer) = (second.message.id, server_b.peer_id());
        wait_for(&mut alice.events, "Bob's mailbox server holds it", |e| {
            matches!(e, Event::FileHeld { id: got, server, .. } if *got == id && *server == server_b_peer)
        })
        .await;
        let outbox = tern_testkit::wait::poll_until(
            Duration::from_secs(60),
            async || alice.node.status().await.unwrap().outbox_len,
            |n| *n == 0,
        )
        .await;
        assert_eq!(outbox, 0, "Bob's copy is deposited with the mailbox");
        alice.node.shutdown().await.unwrap();

        // Bob, back: the offer from his mailbox, the file from his mailbox server's copy.
        let mut bob = LiveNode::start(open(b.path()), "bob", with_mailbox(&boot_b)).await;
        let id = second.message.id;
        wait_for(
            &mut bob.events,
            "the second file",
            |e| matches!(e, Event::FileReceived { id: got, .. } if *got == id),
        )
        .await;
        bob.node.save_file(g, id, saved(1), false).await.unwrap();
        assert_eq!(std::fs::read(saved(1)).unwrap(), contents[1]);
        let files = bob.node.files().await.unwrap();
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| f.conversation == g && !f.outgoing));
        bob.node.shutdown().await.unwrap();
        server_a.shutdown().await.unwrap();
        server_b.shutdown().await.unwrap();
        for dir in [s1.path(), s2.path(), a.path(), b.path()] {
            assert!(
                !profile_holds(dir, canary),
                "{} holds plaintext",
                dir.display()
            );
        }
    })
    .await
    .expect("the test finished in time");
}

/// A LAN peer serving as a mailbox (`tern-node run --mailbox`), on loopback.
async fn mailbox_node(dir: &Path) -> LiveNode {
    let config = NodeConfig {
        serve_mailbox: Some((
            dir.join("mailbox.redb"),
            tern_node::mailbox::server::MailboxConfig::default(),
        )),
        ..loopback_node()
    };
    LiveNode::start(create(dir, "Mailbox"), "mailbox", config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lan_peer_serving_as_mailbox_holds_a_file_for_a_contact_who_is_offline() {
    let (m, a, b, scratch) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let bytes = pattern(2 * MIB + 77, 5);
    let source = scratch.path().join("slides.bin");
    std::fs::write(&source, &bytes).unwrap();

    tokio::time::timeout(Duration::from_secs(180), async {
        let mailbox = mailbox_node(m.path()).await;
        let (alice, bob) = pair_with_mailbox(a.path(), b.path(), &mailbox.addr);
        let bob_key = bob.key();
        drop(bob);
        let mut alice = LiveNode::start(alice, "alice", with_mailbox(&mailbox.addr)).await;
        let sent = alice.node.send_file(bob_key, &source).await.unwrap();
        let keep = hold_outcome(&mut alice.events, sent.message.id).await;
        assert_eq!(
            keep,
            Ok(tern_node::mailbox::server::MailboxConfig::default().max_ttl_s)
        );
        let held = std::fs::read_dir(m.path().join(tern_node::files::HELD_FILES_DIR))
            .unwrap()
            .count();
        assert_eq!(held, 1, "in the mailbox node's held files, not its own");
        alice.node.shutdown().await.unwrap();

        let mut bob = LiveNode::start(open(b.path()), "bob", with_mailbox(&mailbox.addr)).await;
        let id = sent.message.id;
        wait_for(
            &mut bob.events,
            "the file",
            |e| matches!(e, Event::FileReceived { id: got, .. } if *got == id),
        )
        .await;
        let dest = scratch.path().join("saved.bin");
        bob.node
            .save_file(ConversationId::Direct(alice.key), id, &dest, false)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        // The mailbox node's own file list knows nothing of it.
        assert!(mailbox.node.files().await.unwrap().is_empty());
        bob.node.shutdown().await.unwrap();
        mailbox.node.shutdown().await.unwrap();
    })
    .await
    .expect("the test finished in time");
}
