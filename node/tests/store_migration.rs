//! A profile pair written by the format-1 build (node/tests/fixtures/profile-v1, see its README) opens
//! with this build: history, contacts, sessions and the outbox survive the migration to format 2, and the
//! two migrated profiles still talk to each other.

use std::path::{Path, PathBuf};

use tern_node::api::{ContactState, MessageStatus};
use tern_node::engine::{Engine, Received};
use tern_node::store::{Password, STORE_FILE};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profile-v1")
        .join(name)
}

/// A copy of one fixture profile in a temporary directory (the committed files are never opened).
fn copy_profile(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(name).join(STORE_FILE), dir.path().join(STORE_FILE)).unwrap();
    dir
}

fn password(name: &str) -> Password {
    Password::new(format!("{name}-fixture"))
}

#[test]
fn a_format_1_profile_pair_keeps_history_contacts_sessions_and_outbox() {
    let (alice_dir, bob_dir) = (copy_profile("alice"), copy_profile("bob"));
    let mut alice = Engine::open(alice_dir.path(), &password("alice")).unwrap();
    let mut bob = Engine::open(bob_dir.path(), &password("bob")).unwrap();

    // Contacts: each other, accepted; Bob also has Carol's request.
    let alice_contacts = alice.store().contacts().unwrap();
    assert_eq!(alice_contacts.len(), 1);
    assert_eq!(alice_contacts[0].local_name, "Bob");
    assert_eq!(alice_contacts[0].state, ContactState::Accepted);
    assert_eq!(alice_contacts[0].key, bob.key());
    let bob_contacts = bob.store().contacts().unwrap();
    let bobs_alice = bob_contacts.iter().find(|c| c.key == alice.key()).unwrap();
    assert_eq!(bobs_alice.local_name, "Alice");
    assert_eq!(bobs_alice.state, ContactState::Accepted);
    assert!(!bobs_alice.verified);
    let carol = bob_contacts
        .iter()
        .find(|c| c.local_name == "Carol")
        .unwrap();
    assert_eq!(carol.state, ContactState::Requested);

    // History, both sides, with the statuses the fixture left.
    let alice_history = alice
        .store()
        .conversation_page(bob.key(), None, 100)
        .unwrap()
        .messages;
    let statuses: Vec<(bool, &str, MessageStatus)> = alice_history
        .iter()
        .map(|m| (m.outgoing(), m.text.as_str(), m.status))
        .collect();
    assert!(statuses.contains(&(true, "hello Bob, this is Alice", MessageStatus::Read)));
    assert!(statuses.contains(&(false, "hi Alice, got it", MessageStatus::Read)));
    assert!(statuses.contains(&(
        true,
        "second message, delivered only",
        MessageStatus::Delivered
    )));
    assert!(statuses.contains(&(
        false,
        "an answer Alice has not read",
        MessageStatus::Received
    )));
    assert!(
        statuses
            .iter()
            .any(|(out, text, _)| *out && *text == "waits in the outbox")
    );
    assert_eq!(alice.store().unread_count(bob.key()).unwrap(), 1);
    let bob_history = bob
        .store()
        .conversation_page(alice.key(), None, 100)
        .unwrap()
        .messages;
    assert_eq!(bob_history.len(), 4);
    assert!(
        bob_history
            .iter()
            .any(|m| !m.outgoing() && m.text == "second message, delivered only")
    );
    assert_eq!(
        bob.store()
            .conversation_page(carol.key, None, 10)
            .unwrap()
            .messages[0]
            .text,
        "hi Bob, Carol here"
    );
    let search = alice.store().search("OUTBOX", 10).unwrap();
    assert_eq!(search.len(), 1);

    // The outbox entry Alice queued while Bob was offline: indexed by recipient and still due.
    let queued = alice.store().outbox_for(&bob.key(), 10).unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(alice.store().outbox().unwrap(), queued);
    assert!(
        alice
            .store()
            .outbox_for(&alice.key(), 10)
            .unwrap()
            .is_empty()
    );

    // Sessions: the queued envelope, sealed by the format-1 build, opens at Bob's; then both sides
    // keep talking over the migrated sessions.
    match bob.receive(&queued[0].envelope).unwrap() {
        Received::Message { message, .. } => {
            assert_eq!(message.text, "waits in the outbox");
            assert_eq!(message.id, queued[0].message_id);
        }
        other => panic!("expected the queued message, got {other:?}"),
    }
    let (_, out) = alice.send_text(&bob.key(), "after the migration").unwrap();
    match bob.receive(&out.envelope).unwrap() {
        Received::Message { message, .. } => assert_eq!(message.text, "after the migration"),
        other => panic!("expected a message, got {other:?}"),
    }
    let (_, back) = bob.send_text(&alice.key(), "received both").unwrap();
    match alice.receive(&back.envelope).unwrap() {
        Received::Message { message, .. } => assert_eq!(message.text, "received both"),
        other => panic!("expected a message, got {other:?}"),
    }

    // Reopened, the profiles are format 2 and open without migrating again.
    drop((alice, bob));
    let alice = Engine::open(alice_dir.path(), &password("alice")).unwrap();
    assert_eq!(
        alice
            .store()
            .conversation_page(alice_contacts[0].key, None, 100)
            .unwrap()
            .messages
            .len(),
        alice_history.len() + 2
    );
    assert!(!alice_dir.path().join("store.redb.migrating").exists());
}

/// The group tables (docs/protocol.md §18.8) are added when a format-1 profile is opened: a group state
/// can be stored and read back, and the profile opens again afterwards.
#[test]
fn a_format_1_profile_gets_the_group_tables() {
    let dir = copy_profile("alice");
    {
        let mut store = tern_node::store::Store::open(dir.path(), &password("alice")).unwrap();
        assert!(store.groups().unwrap().is_empty());
        store.put_group(b"group id", b"state").unwrap();
        store.put_key_package(b"ref", b"pending").unwrap();
    }
    let mut store = tern_node::store::Store::open(dir.path(), &password("alice")).unwrap();
    assert_eq!(
        store
            .group(b"group id")
            .unwrap()
            .as_deref()
            .map(Vec::as_slice),
        Some(b"state".as_slice())
    );
    assert_eq!(
        store
            .take_key_package(b"ref")
            .unwrap()
            .as_deref()
            .map(Vec::as_slice),
        Some(b"pending".as_slice())
    );
}

/// The disappearing-message tables (docs/protocol.md §12.4) are added when a format-1 profile is opened:
/// its migrated messages keep no timer, and a timer set afterwards is kept across an open.
#[test]
fn a_format_1_profile_gets_the_timer_tables_and_its_messages_stay() {
    use tern_node::api::ConversationId;
    use tern_protocol::timer::{Timer, TimerSetting};
    let dir = copy_profile("alice");
    let bob = {
        let mut store = tern_node::store::Store::open(dir.path(), &password("alice")).unwrap();
        assert_eq!(
            store.next_expiry().unwrap(),
            None,
            "nothing migrated has a clock"
        );
        let bob = store.contacts().unwrap()[0].key;
        let timer = Timer::from_setting(
            TimerSetting {
                seconds: 60,
                version: 1,
            },
            [1; 16],
        );
        store
            .transaction(|b| b.set_timer(&ConversationId::Direct(bob), &timer))
            .unwrap();
        bob
    };
    let store = tern_node::store::Store::open(dir.path(), &password("alice")).unwrap();
    assert_eq!(
        store.timer(&ConversationId::Direct(bob)).unwrap().seconds,
        60
    );
    assert!(
        !store
            .conversation_page(bob, None, 10)
            .unwrap()
            .messages
            .is_empty()
    );
}

/// The profile of node/tests/fixtures/group-v1 (see its README): one group, "Fixture", whose row is a
/// version 1 state, its rollback record inline, as every build before the records got a row of their own
/// wrote it (`Group::encode` is that writer, unchanged).
fn group_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/group-v1")
}

const GROUP_FIXTURE_PASSWORD: &str = "group-v1-fixture";

#[test]
#[ignore = "writes the fixture: TERN_FIXTURE_OUT=node/tests/fixtures/group-v1"]
fn make_group_v1_fixture() {
    let out = PathBuf::from(std::env::var("TERN_FIXTURE_OUT").expect("TERN_FIXTURE_OUT"));
    let password = Password::new(GROUP_FIXTURE_PASSWORD.into());
    let mut engine = Engine::create(
        &out,
        "Fixture owner",
        &password,
        tern_node::store::KdfParams::INSECURE_FOR_TESTS,
    )
    .unwrap();
    let mut group = tern_node::group::Group::create(engine.identity(), "Before").unwrap();
    group.rename("Fixture").unwrap();
    let (id, state) = (group.id().to_vec(), group.encode());
    assert_eq!(state[0], 1, "a version 1 state");
    engine.store_mut().put_group(&id, &state).unwrap();
    drop(engine);
    // Builds before the split had no `group_history` table: leave it out, as they did.
    let db = redb::Database::open(out.join(STORE_FILE)).unwrap();
    let txn = db.begin_write().unwrap();
    assert!(
        txn.delete_table(redb::TableDefinition::<&[u8], &[u8]>::new("group_history"))
            .unwrap()
    );
    txn.commit().unwrap();
    drop(db);
    let _ = std::fs::remove_file(out.join("lock"));
}

#[tokio::test]
async fn a_version_1_group_state_moves_its_records_to_their_own_row_at_the_next_write() {
    use tern_node::node::{Node, NodeConfig};

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        group_fixture().join(STORE_FILE),
        dir.path().join(STORE_FILE),
    )
    .unwrap();
    let password = Password::new(GROUP_FIXTURE_PASSWORD.into());
    let id = {
        let engine = Engine::open(dir.path(), &password).unwrap();
        let rows = engine.store().groups().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], 1, "the fixture holds a version 1 state");
        let id = tern_node::group::stored_group_id(&rows[0])
            .unwrap()
            .to_vec();
        assert!(
            engine.store().group_history(&id).unwrap().is_none(),
            "created on open, empty"
        );
        id
    };
    let engine = Engine::open(dir.path(), &password).unwrap();
    let config = NodeConfig {
        net: tern_node::net::NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            lan_only: true,
            mdns: false,
            ..Default::default()
        },
        ..NodeConfig::default()
    };
    let (node, _events) = Node::start(engine, config.clone()).unwrap();
    let groups = node.groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].name.as_str(), groups[0].epoch), ("Fixture", 1));
    let group = groups[0].id;
    node.send_text(group, "the first text after the upgrade".into())
        .await
        .unwrap();
    node.shutdown().await.unwrap();
    drop(node);

    let engine = Engine::open(dir.path(), &password).unwrap();
    let state = engine.store().group(&id).unwrap().expect("the state");
    assert_eq!(state[0], 2, "rewritten as version 2");
    let history = engine
        .store()
        .group_history(&id)
        .unwrap()
        .expect("the records' own row");
    let group_state = tern_node::group::Group::decode_with(&state, Some(&history)).unwrap();
    assert!(!group_state.history_unsaved());
    // The rename's record came along: one record, for epoch 0.
    assert_eq!(history[34 + id.len()], 1, "one record");
    assert_eq!(
        &history[35 + id.len()..43 + id.len()],
        &0u64.to_be_bytes(),
        "the record of epoch 0"
    );
    // The text is there, and the group opens again with it.
    let (node, _events) = Node::start(engine, config).unwrap();
    let page = node.page(group, None, 10).await.unwrap();
    assert!(
        page.messages
            .iter()
            .any(|m| m.text == "the first text after the upgrade")
    );
    node.shutdown().await.unwrap();
}
