//! The profile store's life cycle: create, open, passwords, the profile lock, damaged files.

use std::fs;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tern_node::api::{ContactState, Message, MessageStatus};
use tern_node::contact::ContactEntry;
use tern_node::store::{KdfParams, STORE_FILE, Store, StoreError, VaultItem};
use tern_protocol::{Identity, IdentityKey, MessageId};

fn key(seed: u64) -> IdentityKey {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
}

fn new_store(dir: &Path, password: &str) -> Store {
    Store::create(dir, &password.into(), KdfParams::INSECURE_FOR_TESTS).unwrap()
}

fn contact(seed: u64, name: &str) -> ContactEntry {
    ContactEntry {
        key: key(seed),
        card: vec![seed as u8; 40],
        local_name: name.into(),
        verified: false,
        state: ContactState::Accepted,
        key_changed: false,
        added_ms: seed,
    }
}

fn fill(store: &mut Store) {
    store
        .vault_put(VaultItem::IdentityPickle, b"identity pickle")
        .unwrap();
    for i in 0..20 {
        store
            .put_contact(&contact(i, &format!("contact {i}")))
            .unwrap();
    }
    store
        .transaction(|b| {
            for i in 0..200u64 {
                b.insert_message(&Message {
                    id: MessageId([i as u8; 16]),
                    conversation: (key(i % 20)).into(),
                    sender: (i % 2 != 0).then_some(key(i % 20)),
                    system: false,
                    sent_at_ms: 1000 + i,
                    received_at_ms: 1000 + i,
                    text: format!("message number {i} ").repeat(20),
                    status: MessageStatus::Sent,
                    recipients: Vec::new(),
                    reply_to: None,
                    attachment: None,
                })?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn created_profile_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path(), "correct horse");
    fill(&mut store);
    let pickle_key_probe = store.pickle_key();
    drop(store);

    let store = Store::open(dir.path(), &"correct horse".into()).unwrap();
    assert_eq!(
        store
            .vault_get(VaultItem::IdentityPickle)
            .unwrap()
            .unwrap()
            .as_slice(),
        b"identity pickle"
    );
    assert_eq!(store.contacts().unwrap().len(), 20);
    assert_eq!(
        store.contact(&key(3)).unwrap().unwrap().local_name,
        "contact 3"
    );
    assert_eq!(store.kdf_params().unwrap(), KdfParams::INSECURE_FOR_TESTS);
    // The pickle key is derived from the store key, so it survives a reopen: a pickle made before opens.
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let identity = Identity::generate(&mut rng, 0);
    let pickle = identity.pickle(&pickle_key_probe, &mut rng);
    assert_eq!(
        Identity::unpickle(&store.pickle_key(), &pickle)
            .unwrap()
            .key(),
        identity.key()
    );
}

#[test]
fn wrong_password_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path(), "right"));
    assert!(matches!(
        Store::open(dir.path(), &"wrong".into()),
        Err(StoreError::WrongPassword)
    ));
    assert!(matches!(
        Store::open(dir.path(), &"".into()),
        Err(StoreError::WrongPassword)
    ));
    // A failed open releases the lock: the right password still works.
    Store::open(dir.path(), &"right".into()).unwrap();
}

#[test]
fn missing_and_existing_profiles_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open(dir.path(), &"pw".into()),
        Err(StoreError::NotFound(_))
    ));
    drop(new_store(dir.path(), "pw"));
    assert!(matches!(
        Store::create(dir.path(), &"pw".into(), KdfParams::INSECURE_FOR_TESTS),
        Err(StoreError::AlreadyExists(_))
    ));
}

#[test]
fn changed_password_rewraps_the_key_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path(), "old password");
    fill(&mut store);
    assert!(matches!(
        store.change_password(&"not the old one".into(), &"new password".into()),
        Err(StoreError::WrongPassword)
    ));
    store
        .change_password(&"old password".into(), &"new password".into())
        .unwrap();
    drop(store);

    assert!(matches!(
        Store::open(dir.path(), &"old password".into()),
        Err(StoreError::WrongPassword)
    ));
    let store = Store::open(dir.path(), &"new password".into()).unwrap();
    assert_eq!(
        store.contact(&key(7)).unwrap().unwrap().local_name,
        "contact 7"
    );
    let page = store.conversation_page(key(4), None, 100).unwrap();
    assert_eq!(page.messages.len(), 10);
    assert!(page.messages[0].text.starts_with("message number 4 "));
}

#[test]
fn an_open_profile_is_refused_a_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path(), "pw");
    assert!(matches!(
        Store::open(dir.path(), &"pw".into()),
        Err(StoreError::InUse)
    ));
    // In use wins over a wrong password: the lock is taken before anything is read.
    assert!(matches!(
        Store::open(dir.path(), &"wrong".into()),
        Err(StoreError::InUse)
    ));
    drop(store);
    let _again = Store::open(dir.path(), &"pw".into()).unwrap();
}

/// Overwrites `len` bytes from `start` of a copy of a good profile (with `byte`, or random bytes), then
/// opens it. A failed open must leave the file as it was.
fn open_damaged(
    good: &Path,
    start: u64,
    len: usize,
    byte: Option<u8>,
) -> (tempfile::TempDir, Result<Store, StoreError>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::copy(good.join(STORE_FILE), dir.join(STORE_FILE)).unwrap();
    let path = dir.join(STORE_FILE);
    let mut bytes = fs::read(&path).unwrap();
    let start = usize::try_from(start).unwrap().min(bytes.len());
    let end = (start + len).min(bytes.len());
    let mut rng = ChaCha20Rng::seed_from_u64(start as u64);
    for b in &mut bytes[start..end] {
        *b = byte.unwrap_or_else(|| rand::RngExt::random(&mut rng));
    }
    fs::write(&path, &bytes).unwrap();
    let before = fs::read(&path).unwrap();
    let result = Store::open(dir, &"pw".into());
    if result.is_err() {
        assert_eq!(
            fs::read(&path).unwrap(),
            before,
            "open changed a damaged file"
        );
    }
    (tmp, result)
}

#[test]
fn a_damaged_file_is_a_typed_error_not_a_panic() {
    let good = tempfile::tempdir().unwrap();
    let mut store = new_store(good.path(), "pw");
    fill(&mut store);
    drop(store);
    let len = fs::metadata(good.path().join(STORE_FILE)).unwrap().len();
    assert!(
        len > 64 * 1024,
        "the test store is too small to damage: {len}"
    );

    // No commit slot can point at intact pages once everything after the header is overwritten.
    // Everything after the header, then the header itself (random bytes, zeros).
    for (start, len, byte) in [
        (4096, usize::MAX / 2, None),
        (0, 4096, None),
        (0, 4096, Some(0)),
    ] {
        let (_dir, result) = open_damaged(good.path(), start, len, byte);
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
    // A truncated file.
    let dir = tempfile::tempdir().unwrap();
    let bytes = fs::read(good.path().join(STORE_FILE)).unwrap();
    fs::write(dir.path().join(STORE_FILE), &bytes[..bytes.len() / 3]).unwrap();
    let err = Store::open(dir.path(), &"pw".into()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");

    // Smaller holes anywhere: opening either fails with a typed error or succeeds, and then every read
    // either works or is a typed error. Nothing panics.
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for _ in 0..24 {
        let start = rand::RngExt::random_range(&mut rng, 0..len);
        let hole = rand::RngExt::random_range(&mut rng, 1..4096usize);
        if let (_dir, Ok(store)) = open_damaged(good.path(), start, hole, None) {
            let _ = store.contacts();
            let _ = store.conversations();
            for i in 0..20 {
                let _ = store.conversation_page(key(i), None, 100);
            }
            let _ = store.vault_get(VaultItem::IdentityPickle);
        }
    }
}
