//! Groups between real nodes on 127.0.0.1 in one test process (docs/protocol.md §18): create, invite,
//! talk (every member reads each message once, also members who are not each other's contacts), remove (the
//! removed member cannot read what follows), restart keeps the group; an admin's disappearing-message timer
//! reaches every member and their texts disappear.

use std::time::Duration;

use tern_node::api::{ConversationId, Event, GroupRole, GroupSummary};
use tern_node::group::{Group, GroupError};
use tern_node::node::NodeError;
use tern_protocol::{Body, Content, MessageId};
use tern_testkit::files::profile_holds;
use tern_testkit::net::{LiveNode, loopback_node, sealed_bytes_of, texts};
use tern_testkit::profile::{create, introduce, open};
use tern_testkit::wait::{poll_until, wait_for};
use tokio::sync::broadcast;

/// Waits for a group event about `group` matching `pred`.
async fn group_event(
    events: &mut broadcast::Receiver<Event>,
    what: &str,
    pred: impl Fn(&GroupSummary) -> bool,
) -> GroupSummary {
    let event = wait_for(events, what, |e| match e {
        Event::GroupJoined { group, .. } | Event::GroupUpdated { group } => pred(group),
        _ => false,
    })
    .await;
    match event {
        Event::GroupJoined { group, .. } | Event::GroupUpdated { group } => group,
        _ => unreachable!(),
    }
}

/// Waits for the group text `text` in `group`; returns who sent it.
async fn group_text(
    events: &mut broadcast::Receiver<Event>,
    group: ConversationId,
    text: &str,
) -> Option<tern_protocol::IdentityKey> {
    let event = wait_for(events, &format!("group text {text:?}"), |e| {
        matches!(e, Event::MessageReceived { message, .. }
            if message.conversation == group && message.text == text && !message.system)
    })
    .await;
    match event {
        Event::MessageReceived { message, .. } => message.sender,
        _ => unreachable!(),
    }
}

/// Waits until every text of `expected` arrived in `group` (in any order); returns each one's sender and
/// asserts none arrived twice.
async fn group_texts_arrive(
    events: &mut broadcast::Receiver<Event>,
    group: ConversationId,
    expected: &[&str],
) -> std::collections::HashMap<String, Option<tern_protocol::IdentityKey>> {
    let mut got = std::collections::HashMap::new();
    while got.len() < expected.len() {
        let event = wait_for(events, &format!("group texts {expected:?}"), |e| {
            matches!(e, Event::MessageReceived { message, .. }
                if message.conversation == group && !message.system
                    && expected.contains(&message.text.as_str()))
        })
        .await;
        if let Event::MessageReceived { message, .. } = event {
            assert!(
                got.insert(message.text.clone(), message.sender).is_none(),
                "{} arrived twice",
                message.text
            );
        }
    }
    got
}

/// The group's texts (not system lines) as `node` stores them, sorted.
async fn group_texts(node: &tern_node::node::Node, group: ConversationId) -> Vec<String> {
    let mut texts = texts(node, group, false).await;
    texts.sort();
    texts
}

/// The stored state of the only group in the profile at `dir` (the node must be stopped).
fn stored_group(dir: &std::path::Path) -> Group {
    let engine = open(dir);
    let states = engine.store().groups().unwrap();
    assert_eq!(states.len(), 1);
    Group::decode(&states[0]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_create_talk_remove_and_restart_a_group() {
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let mut alice = create(dirs[0].path(), "Alice");
    let mut bob = create(dirs[1].path(), "Bob");
    let mut carol = create(dirs[2].path(), "Carol");
    // Bob and Carol are not each other's contacts: they hear each other through Alice.
    introduce(&mut [&mut alice, &mut bob]);
    introduce(&mut [&mut alice, &mut carol]);

    tokio::time::timeout(Duration::from_secs(180), async {
        let mut a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        let mut c = LiveNode::start(carol, "carol", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        c.node.dial(a.addr.clone()).await.unwrap();

        // Create and invite: both join, Alice sees three members.
        let created = a
            .node
            .group_create("Climbing".into(), vec![b.key, c.key])
            .await
            .unwrap();
        assert_eq!(created.members, 1);
        assert_eq!(created.role, GroupRole::Creator);
        let g = created.id;
        let joined = group_event(&mut b.events, "Bob joins", |s| s.id == g).await;
        assert_eq!(joined.name, "Climbing");
        let carol_joined = group_event(&mut c.events, "Carol joins", |s| s.id == g).await;
        group_event(&mut a.events, "three members", |s| {
            s.id == g && s.members == 3
        })
        .await;
        // Whoever was added first sees the other's add as an update.
        if joined.members < 3 {
            group_event(&mut b.events, "Bob sees three", |s| {
                s.id == g && s.members == 3
            })
            .await;
        }
        if carol_joined.members < 3 {
            group_event(&mut c.events, "Carol sees three", |s| {
                s.id == g && s.members == 3
            })
            .await;
        }
        let members = a.node.group_members(g).await.unwrap();
        assert_eq!(members.len(), 3);
        assert!(
            members
                .iter()
                .any(|m| m.key == a.key && m.role == GroupRole::Creator)
        );
        assert!(
            members
                .iter()
                .any(|m| m.key == c.key && m.role == GroupRole::Member)
        );
        let bobs_view = b.node.group_members(g).await.unwrap();
        assert!(bobs_view.iter().any(|m| m.key == c.key && !m.contact));

        // Talk: every member reads every other member's text.
        a.node.group_send(g, "from alice".into()).await.unwrap();
        b.node.send_text(g, "from bob".into()).await.unwrap();
        c.node.group_send(g, "from carol".into()).await.unwrap();
        let at_a = group_texts_arrive(&mut a.events, g, &["from bob", "from carol"]).await;
        assert_eq!(at_a["from bob"], Some(b.key));
        assert_eq!(at_a["from carol"], Some(c.key));
        let at_b = group_texts_arrive(&mut b.events, g, &["from alice", "from carol"]).await;
        assert_eq!(at_b["from alice"], Some(a.key));
        assert_eq!(at_b["from carol"], Some(c.key), "via Alice");
        let at_c = group_texts_arrive(&mut c.events, g, &["from alice", "from bob"]).await;
        assert_eq!(at_c["from alice"], Some(a.key));
        assert_eq!(at_c["from bob"], Some(b.key), "via Alice");
        let all = vec![
            "from alice".to_string(),
            "from bob".to_string(),
            "from carol".to_string(),
        ];
        for node in [&a.node, &b.node, &c.node] {
            assert_eq!(group_texts(node, g).await, all, "each text stored once");
        }
        let list = b.node.conversations().await.unwrap();
        let conv = list
            .iter()
            .find(|c| c.id == g)
            .expect("the group's conversation");
        assert_eq!(conv.title, "Climbing");
        assert!(conv.unread >= 2);
        b.node.mark_all_read(g).await.unwrap();
        assert_eq!(
            b.node
                .conversations()
                .await
                .unwrap()
                .iter()
                .find(|c| c.id == g)
                .unwrap()
                .unread,
            0
        );

        // Rename and remove: Carol is out, Bob follows.
        a.node.group_rename(g, "Bouldering".into()).await.unwrap();
        group_event(&mut b.events, "Bob sees the rename", |s| {
            s.name == "Bouldering"
        })
        .await;
        a.node.group_remove(g, c.key).await.unwrap();
        group_event(&mut c.events, "Carol removed", |s| s.id == g && !s.active).await;
        group_event(&mut b.events, "Bob sees two", |s| {
            s.id == g && s.members == 2
        })
        .await;
        a.node.group_send(g, "after carol".into()).await.unwrap();
        group_text(&mut b.events, g, "after carol").await;
        let lines = texts(&b.node, g, true).await;
        assert!(lines.iter().any(|l| l.contains("added you")), "{lines:?}");
        assert!(
            lines.iter().any(|l| l.starts_with("Alice removed ")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l == "Alice renamed the group to \"Bouldering\""),
            "{lines:?}"
        );

        // Restart: Bob's node comes back with the group and reads what follows.
        b.node.shutdown().await.unwrap();
        let mut b = LiveNode::start(open(dirs[1].path()), "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let groups = b.node.groups().await.unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, "Bouldering");
        assert_eq!(groups[0].members, 2);
        a.node.group_send(g, "after restart".into()).await.unwrap();
        group_text(&mut b.events, g, "after restart").await;
        b.node.group_send(g, "bob is back".into()).await.unwrap();
        group_text(&mut a.events, g, "bob is back").await;
        assert!(
            !group_texts(&c.node, g)
                .await
                .contains(&"after carol".to_string())
        );

        for node in [&a.node, &b.node, &c.node] {
            node.shutdown().await.unwrap();
        }
    })
    .await
    .expect("the group test finished in time");

    // Carol cannot read what the group says after her removal: a message Bob's state encrypts now is
    // tried on Carol's stored state.
    let mut bob_group = stored_group(dirs[1].path());
    let mut carol_group = stored_group(dirs[2].path());
    assert!(!carol_group.is_active());
    let secret = Content {
        id: MessageId([9; 16]),
        sent_at_ms: 1,
        body: Body::Text("after the removal".into()),
    };
    let bytes = bob_group.send(&secret).unwrap();
    assert!(matches!(
        carol_group.process(&bytes),
        Err(GroupError::NotMember | GroupError::Undecryptable | GroupError::FutureEpoch { .. })
    ));
}

/// A node that serves as a mailbox, from its own profile.
async fn mailbox_node(dir: &std::path::Path) -> LiveNode {
    let config = tern_node::node::NodeConfig {
        net: tern_testkit::net::loopback_net(),
        serve_mailbox: Some((
            dir.join("mailbox.redb"),
            tern_node::mailbox::server::MailboxConfig::default(),
        )),
        ..tern_node::node::NodeConfig::default()
    };
    LiveNode::start(create(dir, "Mailbox"), "mailbox", config).await
}

fn with_mailbox(mailbox: &libp2p::Multiaddr) -> tern_node::node::NodeConfig {
    tern_node::node::NodeConfig {
        net: tern_testkit::net::loopback_net(),
        mailboxes: vec![mailbox.clone()],
        ..tern_node::node::NodeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_member_catches_up_through_its_mailbox() {
    let (m_dir, a_dir, b_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    tokio::time::timeout(Duration::from_secs(180), async {
        let m = mailbox_node(m_dir.path()).await;
        let (alice, bob) =
            tern_testkit::profile::pair_with_mailbox(a_dir.path(), b_dir.path(), &m.addr);
        let mut a = LiveNode::start(alice, "alice", with_mailbox(&m.addr)).await;
        let mut b = LiveNode::start(bob, "bob", with_mailbox(&m.addr)).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let g = a
            .node
            .group_create("Offline".into(), vec![b.key])
            .await
            .unwrap()
            .id;
        group_event(&mut b.events, "Bob joins", |s| s.id == g).await;
        group_event(&mut a.events, "two members", |s| {
            s.id == g && s.members == 2
        })
        .await;

        // Bob goes away; Alice writes to the group once she has seen him go (else gossip may still hand
        // it to his closing connection, §18.6); it waits in the group's queue on the mailbox node.
        b.node.shutdown().await.unwrap();
        wait_for(&mut a.events, "Bob offline", |e| {
            matches!(e, Event::ContactOnline { contact, online: false, .. } if *contact == b.key)
        })
        .await;
        a.node
            .group_send(g, "while bob was out".into())
            .await
            .unwrap();
        let outbox = tern_testkit::wait::poll_until(
            Duration::from_secs(60),
            async || a.node.status().await.unwrap().outbox_len,
            |n| *n == 0,
        )
        .await;
        assert_eq!(
            outbox, 0,
            "deposited with the mailbox (the group queue's deposit counts)"
        );
        a.node.shutdown().await.unwrap();

        // Bob returns, fetches, and reads it once.
        let mut b = LiveNode::start(open(b_dir.path()), "bob", with_mailbox(&m.addr)).await;
        let got = group_texts_arrive(&mut b.events, g, &["while bob was out"]).await;
        assert_eq!(got["while bob was out"], Some(a.key));
        assert_eq!(
            group_texts(&b.node, g).await,
            vec!["while bob was out".to_string()]
        );
        b.node.shutdown().await.unwrap();
        m.node.shutdown().await.unwrap();
    })
    .await
    .expect("the offline group test finished in time");
}

/// Alice and Bob, each other's contacts, on loopback, in the group `name` Alice created and Bob joined
/// (profiles in `dirs[0]` and `dirs[1]`).
async fn alice_and_bob_in(
    dirs: &[tempfile::TempDir],
    name: &str,
) -> (LiveNode, LiveNode, ConversationId) {
    let mut alice = create(dirs[0].path(), "Alice");
    let mut bob = create(dirs[1].path(), "Bob");
    introduce(&mut [&mut alice, &mut bob]);
    tern_testkit::net::alice_and_bob_in(alice, bob, name, &loopback_node()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_committing_at_once_converge_and_read_each_other() {
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    tokio::time::timeout(Duration::from_secs(180), async {
        let (mut a, mut b, g) = alice_and_bob_in(&dirs, "Race").await;
        a.node.group_promote(g, b.key).await.unwrap();
        group_event(&mut b.events, "Bob is an admin", |s| {
            s.id == g && s.role == GroupRole::Admin
        })
        .await;

        // Both rename in the same epoch; the lowest-hash rule (§18.5) picks one everywhere.
        let (ra, rb) = tokio::join!(
            a.node.group_rename(g, "Alice's name".into()),
            b.node.group_rename(g, "Bob's name".into())
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.epoch, rb.epoch, "both committed for the same epoch");
        let view = async |node: &tern_node::node::Node| {
            let g = node.groups().await.unwrap().remove(0);
            (g.epoch, g.name, g.members)
        };
        let agreed = tern_testkit::wait::poll_until(
            Duration::from_secs(60),
            async || (view(&a.node).await, view(&b.node).await),
            |(x, y)| x == y,
        )
        .await;
        assert_eq!(agreed.0, agreed.1, "same epoch, name and members");
        assert_eq!(agreed.0.0, ra.epoch);

        a.node
            .group_send(g, "alice after the race".into())
            .await
            .unwrap();
        b.node
            .group_send(g, "bob after the race".into())
            .await
            .unwrap();
        group_texts_arrive(&mut a.events, g, &["bob after the race"]).await;
        group_texts_arrive(&mut b.events, g, &["alice after the race"]).await;
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("the race test finished in time");
}

/// Group bytes as the transfer parts of one group message, each sealed by `from` for `to` in their 1:1
/// session and framed for `/tern/envelope/1`.
fn sealed_group_message(
    from: &mut tern_node::engine::Engine,
    to: &tern_protocol::IdentityKey,
    bytes: &[u8],
) -> Vec<Vec<u8>> {
    use tern_protocol::group_wire::{KIND_TRANSFER_PART, TransferKind, split};
    let mut rng = rand::make_rng::<rand::rngs::StdRng>();
    split(TransferKind::GroupMessage, bytes, &mut rng)
        .unwrap()
        .into_iter()
        .map(|part| {
            let body = Body::Unknown {
                kind: KIND_TRANSFER_PART,
                data: part.encode(),
            };
            let (_, envelope) = from.send_control(to, body, false).unwrap();
            tern_testkit::raw::length_prefixed(&envelope.encode())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_commit_and_a_non_members_message_are_refused_and_not_passed_on() {
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let mut alice = create(dirs[0].path(), "Alice");
    let mut bob = create(dirs[1].path(), "Bob");
    let mut mallory = create(dirs[2].path(), "Mallory");
    introduce(&mut [&mut alice, &mut bob, &mut mallory]);
    drop(mallory);
    let bob_key = bob.key();
    let g = tokio::time::timeout(Duration::from_secs(120), async {
        let a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let g = a
            .node
            .group_create("Guarded".into(), vec![b.key])
            .await
            .unwrap()
            .id;
        group_event(&mut b.events, "Bob joins", |s| s.id == g).await;
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
        g
    })
    .await
    .expect("setup in time");

    // Offline, Alice's state commits a rename (never applied by her node) and Mallory, who is no member,
    // forges a group message: a real one of Bob's with its ciphertext changed.
    let mut alice = open(dirs[0].path());
    let mut alice_group = Group::decode(&alice.store().groups().unwrap()[0]).unwrap();
    let commit = alice_group.rename("Replayed").unwrap().commit;
    let first = sealed_group_message(&mut alice, &bob_key, &commit);
    let again = sealed_group_message(&mut alice, &bob_key, &commit);
    drop(alice);
    let mut forged = stored_group(dirs[1].path())
        .send(&Content {
            id: MessageId([7; 16]),
            sent_at_ms: 1,
            body: Body::Text("forged".into()),
        })
        .unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let mut mallory_engine = open(dirs[2].path());
    let forged = sealed_group_message(&mut mallory_engine, &bob_key, &forged);
    drop(mallory_engine);

    tokio::time::timeout(Duration::from_secs(120), async {
        let mut b = LiveNode::start(open(dirs[1].path()), "bob", loopback_node()).await;
        let mut client = tern_testkit::client::Client::new();
        let bob_peer = client.connect(&b.addr).await;
        let epoch = b.node.groups().await.unwrap()[0].epoch;
        // Each envelope is answered after Bob's node handled what it carried.
        for frame in first {
            assert!(
                client
                    .raw_envelope(bob_peer, frame)
                    .await
                    .answer()
                    .is_some()
            );
        }
        let renamed = group_event(&mut b.events, "the rename", |s| {
            s.id == g && s.name == "Replayed"
        })
        .await;
        assert_eq!(renamed.epoch, epoch + 1);
        // Restarted, so the copy is not dropped by its hash in memory but by the group's own check.
        b.node.shutdown().await.unwrap();
        let b = LiveNode::start(open(dirs[1].path()), "bob", loopback_node()).await;
        let mut client = tern_testkit::client::Client::new();
        let bob_peer = client.connect(&b.addr).await;
        for frame in again.into_iter().chain(forged) {
            assert!(
                client
                    .raw_envelope(bob_peer, frame)
                    .await
                    .answer()
                    .is_some()
            );
        }
        let groups = b.node.groups().await.unwrap();
        assert_eq!(
            groups[0].epoch,
            epoch + 1,
            "the replayed commit changed nothing"
        );
        let page = b.node.page(g, None, 100).await.unwrap().messages;
        assert_eq!(
            page.iter().filter(|m| m.text.contains("renamed")).count(),
            1,
            "one rename line"
        );
        assert!(page.iter().all(|m| m.text != "forged"));
        // Nothing was passed on: Alice (offline) would have a forwarded copy waiting in Bob's outbox.
        assert_eq!(b.node.status().await.unwrap().outbox_len, 0);
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("the hostile group test finished in time");
}

/// Waits for the system line `text` in `group`.
async fn group_line(events: &mut broadcast::Receiver<Event>, group: ConversationId, text: &str) {
    wait_for(events, &format!("system line {text:?}"), |e| {
        matches!(e, Event::MessageReceived { message, .. }
            if message.conversation == group && message.system && message.text == text)
    })
    .await;
}

/// The timer `node`'s store holds for the conversation `group`.
async fn stored_timer(node: &tern_node::node::Node, group: ConversationId) -> u32 {
    let conversations = node.conversations().await.unwrap();
    conversations
        .iter()
        .find(|c| c.id == group)
        .unwrap()
        .timer_s
}

/// Waits until `id` of `group` disappeared.
async fn group_expired(
    events: &mut broadcast::Receiver<Event>,
    group: ConversationId,
    id: MessageId,
) {
    wait_for(events, "the group message to disappear", |e| {
        matches!(e, Event::MessagesExpired { conversation, ids }
            if *conversation == group && ids.contains(&id))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_group_timer_shows_on_members_and_texts_disappear_after_sending_and_after_reading()
 {
    // The smallest whole-second timer that leaves time to see the member's copy still unread.
    const TIMER_S: u32 = 2;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    tokio::time::timeout(Duration::from_secs(120), async {
        let (mut a, mut b, g) = alice_and_bob_in(&dirs, "Fading").await;
        group_event(&mut a.events, "two members", |s| {
            s.id == g && s.members == 2
        })
        .await;

        // A member may not; the refusal is typed.
        let refused = b.node.set_timer(g, 3600).await.unwrap_err();
        assert!(
            matches!(refused, NodeError::Group(GroupError::NotAdmin)),
            "{refused:?}"
        );

        let line = a.node.set_timer(g, TIMER_S).await.unwrap().expect("a line");
        assert!(line.system);
        assert_eq!(line.text, "You set disappearing messages to 2 seconds");
        assert!(
            a.node.set_timer(g, TIMER_S).await.unwrap().is_none(),
            "setting the timer it has changes nothing"
        );
        group_line(
            &mut b.events,
            g,
            "Alice set disappearing messages to 2 seconds",
        )
        .await;
        for node in [&a.node, &b.node] {
            assert_eq!(
                stored_timer(node, g).await,
                TIMER_S,
                "the store holds the group's timer"
            );
        }

        // Gone on the sender TIMER_S after sending; kept on the member until read.
        let text = a
            .node
            .group_send(g, "canary-group-fades-7c2a".into())
            .await
            .unwrap();
        group_text(&mut b.events, g, "canary-group-fades-7c2a").await;
        group_expired(&mut a.events, g, text.id).await;
        assert!(
            group_texts(&a.node, g).await.is_empty(),
            "only system lines are left at the sender"
        );
        let held = b.node.page(g, None, 50).await.unwrap().messages;
        assert!(held.iter().any(|m| m.id == text.id), "unread: still there");

        let (mut b, bob_dir, needle) = sealed_bytes_of(b, g, text.id).await;
        assert!(
            profile_holds(&bob_dir, &needle),
            "the row is on disk before"
        );
        b.node.dial(a.addr.clone()).await.unwrap();
        let read = b.node.mark_all_read(g).await.unwrap();
        assert!(read.contains(&text.id));
        group_expired(&mut b.events, g, text.id).await;
        assert!(
            group_texts(&b.node, g).await.is_empty(),
            "only system lines are left at the member"
        );

        // Turned off, on both.
        a.node.set_timer(g, 0).await.unwrap().expect("a line");
        group_line(&mut b.events, g, "Alice turned off disappearing messages").await;
        assert_eq!(stored_timer(&b.node, g).await, 0);
        for node in [&a.node, &b.node] {
            node.shutdown().await.unwrap();
        }

        // Stopped: the row is gone from the profile, not hidden; the group's stored info is off too.
        assert!(
            !profile_holds(&bob_dir, &needle),
            "the sealed row is still in the profile"
        );
        assert_eq!(stored_group(&bob_dir).info().unwrap().timer_s, 0);
    })
    .await
    .expect("the group timer test finished in time");
}

/// Under a group's timer, the copies of a text queued for a member who is offline (1:1 transfer parts in
/// the sender's outbox, deposited with mailboxes) expire with the text: none outlives the timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_group_texts_copies_for_an_offline_member_expire_with_it() {
    const TIMER_S: u32 = 3600;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (sent, bob) = tokio::time::timeout(Duration::from_secs(120), async {
        let (a, mut b, g) = alice_and_bob_in(&dirs, "Fading mail").await;
        a.node.set_timer(g, TIMER_S).await.unwrap().expect("a line");
        group_line(
            &mut b.events,
            g,
            "Alice set disappearing messages to 1 hour",
        )
        .await;
        let bob_peer = b.node.peer_id();
        b.node.shutdown().await.unwrap();
        // Once Alice sees Bob gone, gossip does not cover him: the text waits in her outbox for him.
        poll_until(
            Duration::from_secs(60),
            async || a.node.status().await.unwrap().connected_peers,
            |peers| !peers.contains(&bob_peer),
        )
        .await;
        let text = a
            .node
            .group_send(g, "for later, briefly".into())
            .await
            .unwrap();
        poll_until(
            Duration::from_secs(60),
            async || a.node.status().await.unwrap().outbox_len,
            |len| *len > 0,
        )
        .await;
        a.node.shutdown().await.unwrap();
        (text, b.key)
    })
    .await
    .expect("the test finished in time");

    let alice = tern_testkit::profile::open(dirs[0].path());
    let copies: Vec<_> = alice
        .store()
        .outbox_for(&bob, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.created_ms >= sent.sent_at_ms)
        .collect();
    assert!(!copies.is_empty(), "the text waits for Bob");
    for copy in &copies {
        assert!(
            copy.expires_at <= sent.sent_at_ms / 1000 + u64::from(TIMER_S) + 1,
            "a copy outlives the timer: expires at {}, sent at {} ms",
            copy.expires_at,
            sent.sent_at_ms
        );
    }
}
