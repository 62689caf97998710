//! Nothing the user typed, and no identity key or message id, reaches the profile directory in plaintext.

use std::fs;
use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tern_node::api::{ContactState, Message, MessageStatus};
use tern_node::contact::ContactEntry;
use tern_node::outbox::OutboxEntry;
use tern_node::store::{KdfParams, Store, VaultItem};
use tern_protocol::{Identity, MessageId};
use tern_testkit::files::{contains, files_under};

fn assert_absent(dir: &Path, secrets: &[(&str, Vec<u8>)]) {
    let files = files_under(dir);
    assert!(
        files.len() >= 2,
        "expected the store and lock files: {files:?}"
    );
    let mut total = 0;
    for file in files {
        let bytes = fs::read(&file).unwrap();
        total += bytes.len();
        for (what, secret) in secrets {
            assert!(
                !contains(&bytes, secret),
                "{what} found in plaintext in {}",
                file.display()
            );
        }
    }
    assert!(total > 0);
}

#[test]
fn no_text_name_password_key_or_id_is_stored_in_plaintext() {
    let mut rng = ChaCha20Rng::seed_from_u64(0xca4a);
    let canary = |rng: &mut ChaCha20Rng, prefix: &str| {
        let n: u128 = rng.random();
        format!("{prefix}-{n:032x}")
    };
    let text_canary = canary(&mut rng, "text");
    let name_canary = canary(&mut rng, "name");
    let password = canary(&mut rng, "password");
    let setting_canary = canary(&mut rng, "setting");
    let contact = Identity::generate(&mut rng, 0).key();
    let id = MessageId::new_v7(1_700_000_000_000, &mut rng);

    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let mut store = Store::create(
        &profile,
        &password.as_str().into(),
        KdfParams::INSECURE_FOR_TESTS,
    )
    .unwrap();
    store
        .put_contact(&ContactEntry {
            key: contact,
            card: b"card bytes".to_vec(),
            local_name: format!("My friend {name_canary}"),
            verified: true,
            state: ContactState::Accepted,
            key_changed: false,
            added_ms: 1,
        })
        .unwrap();
    let message = Message {
        id,
        conversation: contact.into(),
        sender: Some(contact),
        system: false,
        sent_at_ms: 1_700_000_000_000,
        received_at_ms: 1_700_000_000_500,
        text: format!("see you at {text_canary} tomorrow"),
        status: MessageStatus::Received,
        recipients: Vec::new(),
        reply_to: None,
        attachment: None,
    };
    assert!(store.insert_message(&message).unwrap());
    store
        .outbox_enqueue(&OutboxEntry {
            message_id: id,
            recipient: contact,
            envelope: text_canary.as_bytes().to_vec(),
            attempts: 0,
            next_attempt_ms: 0,
            created_ms: 0,
            expires_at: u64::MAX,
        })
        .unwrap();
    store
        .setting_put(&setting_canary, setting_canary.as_bytes())
        .unwrap();
    store.put_session(&contact, name_canary.as_bytes()).unwrap();
    store
        .vault_put(VaultItem::OwnCard, text_canary.as_bytes())
        .unwrap();
    // Read back, so the test also fails if nothing was written.
    assert_eq!(store.message(contact, &id).unwrap().unwrap(), message);

    let secrets = [
        ("message text", text_canary.as_bytes().to_vec()),
        ("contact name", name_canary.as_bytes().to_vec()),
        ("password", password.as_bytes().to_vec()),
        ("setting name", setting_canary.as_bytes().to_vec()),
        ("contact identity key", contact.as_bytes().to_vec()),
        ("message id", id.0.to_vec()),
    ];
    // Committed writes are on disk while the store is open, and after it closes.
    assert_absent(&profile, &secrets);
    drop(store);
    assert_absent(&profile, &secrets);

    // The canary check itself works: the decrypted store does hold them.
    let store = Store::open(&profile, &password.as_str().into()).unwrap();
    assert!(
        store
            .contact(&contact)
            .unwrap()
            .unwrap()
            .local_name
            .contains(&name_canary)
    );
}
