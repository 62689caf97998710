//! Store format 3 (docs/protocol.md §13.1): a format-2 profile (node/tests/fixtures/profile-v2, see its
//! README) opens with everything intact, and what the file shows without the password is what
//! docs/threat-model.md says: no message times in any key, value lengths padded to buckets.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tern_node::api::{ContactState, ConversationId, FileState, Message, MessageStatus};
use tern_node::contact::ContactEntry;
use tern_node::outbox::OutboxEntry;
use tern_node::store::{AttachmentRecord, KdfParams, STORE_FILE, Store, VaultItem};
use tern_protocol::file::{FileAnnouncement, FileHash, FileKey};
use tern_protocol::timer::Timer;
use tern_protocol::{Identity, IdentityKey, MessageId};

const PASSWORD: &str = "format-2-fixture";
/// 2026-12-06 12:00:00 UTC: the fixture's clock.
const T0: u64 = 1_796_644_800_000;
const GROUP_ID: [u8; 32] = [0x47; 32];

fn key(seed: u64) -> IdentityKey {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
}

fn bob() -> IdentityKey {
    key(2)
}

fn carol() -> IdentityKey {
    key(3)
}

fn dave() -> IdentityKey {
    key(4)
}

fn contact(key: IdentityKey, name: &str, state: ContactState) -> ContactEntry {
    ContactEntry {
        key,
        card: vec![7; 60],
        local_name: name.into(),
        verified: false,
        state,
        key_changed: false,
        added_ms: T0,
    }
}

fn message(n: u8, conversation: ConversationId, sender: Option<IdentityKey>, at: u64) -> Message {
    Message {
        id: MessageId([n; 16]),
        conversation,
        sender,
        system: false,
        sent_at_ms: at - 500,
        received_at_ms: at,
        text: format!("message {n}"),
        status: if sender.is_some() {
            MessageStatus::Received
        } else {
            MessageStatus::Sent
        },
        recipients: Vec::new(),
        attachment: None,
    }
}

fn outgoing(n: u8, conversation: ConversationId, at: u64) -> Message {
    Message {
        sent_at_ms: at,
        ..message(n, conversation, None, at)
    }
}

fn announcement() -> FileAnnouncement {
    FileAnnouncement {
        name: "notes.txt".into(),
        size: 1234,
        media_type: "text/plain".into(),
        key: FileKey::from_bytes([5; 32]),
        hash: FileHash([6; 32]),
        thumbnail: None,
    }
}

fn outbox_entry(n: u8, at: u64) -> OutboxEntry {
    OutboxEntry {
        message_id: MessageId([n; 16]),
        recipient: bob(),
        envelope: vec![n; 300],
        attempts: 2,
        next_attempt_ms: at + 60_000,
        created_ms: at,
        expires_at: at / 1000 + 7 * 86_400,
    }
}

/// Writes the fixture's content into `store` (the same calls for any format).
fn fill(store: &mut Store) {
    let direct = ConversationId::Direct(bob());
    let group = ConversationId::Group(GROUP_ID);
    store
        .vault_put(VaultItem::IdentityPickle, b"the identity pickle")
        .unwrap();
    store.vault_put(VaultItem::OwnCard, b"the own card").unwrap();
    store
        .put_contact(&contact(bob(), "Bob", ContactState::Accepted))
        .unwrap();
    store
        .put_contact(&contact(carol(), "Carol", ContactState::Requested))
        .unwrap();
    store.put_session(&bob(), b"bob's session pickle").unwrap();
    store.setting_put("theme", b"dark").unwrap();
    store
        .transaction(|b| {
            // Inserted out of order on purpose: 3 arrives after 4 but is older.
            b.insert_message(&outgoing(1, direct, T0))?;
            b.insert_message(&message(2, direct, Some(bob()), T0 + 1_000))?;
            b.insert_message(&message(4, direct, Some(bob()), T0 + 4_000))?;
            b.insert_message(&message(3, direct, Some(bob()), T0 + 3_000))?;
            b.update_message_status(direct, &MessageId([2; 16]), MessageStatus::Read)?;
            b.set_timer(
                &direct,
                &Timer {
                    seconds: 3600,
                    version: 1,
                    id: [9; 16],
                },
            )?;
            b.insert_message_expiring(&outgoing(5, direct, T0 + 5_000), 3600)?;
            b.insert_message(&message(6, carol().into(), Some(carol()), T0 + 6_000))?;
            b.insert_message(&message(7, group, Some(dave()), T0 + 7_000))?;
            b.insert_message(&outgoing(8, group, T0 + 8_000))?;
            let mut file = outgoing(9, direct, T0 + 9_000);
            file.text = String::new();
            b.insert_message(&file)?;
            b.put_attachment(&AttachmentRecord {
                conversation: direct,
                id: MessageId([9; 16]),
                outgoing: true,
                state: FileState::Complete,
                metadata_stripped: true,
                announcement: announcement(),
            })?;
            b.put_group(&GROUP_ID, b"the group state")?;
            b.put_key_package(b"a hash ref", b"a pending key package")?;
            b.outbox_enqueue(&outbox_entry(1, T0))?;
            b.outbox_enqueue(&outbox_entry(9, T0 + 9_000))?;
            // A message seen and then deleted: its duplicate check outlives it.
            b.mark_seen(&bob(), &MessageId([0x55; 16]), T0 + 30 * 86_400_000)?;
            Ok(())
        })
        .unwrap();
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profile-v2")
}

/// Writes the format-2 fixture (run once, with the format-2 build; see the fixture's README):
/// `TERN_FIXTURE_OUT=dir cargo test -p tern-node --test store_format_3 -- --ignored make_fixture`.
#[test]
#[ignore = "writes the committed fixture; run by hand with the build of the format it records"]
fn make_fixture() {
    let out = PathBuf::from(std::env::var("TERN_FIXTURE_OUT").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let params = KdfParams {
        memory_kib: 32,
        iterations: 1,
        parallelism: 1,
    };
    let mut store = Store::create(dir.path(), &PASSWORD.into(), params).unwrap();
    fill(&mut store);
    drop(store);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(dir.path().join(STORE_FILE), out.join(STORE_FILE)).unwrap();
}
