//! Unit tests of the re-key (`rekey.rs`): everything is carried, nothing in the new file opens under the
//! old key, and what it refuses leaves the profile as it was.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use tern_protocol::crypto::SecretKey;
use tern_protocol::timer::Timer;
use tern_protocol::{EnvelopeId, IdentityKey, MessageId};

use super::dedupe::encode_envelope_value;
use super::keys::{Blind, Keys};
use super::tests::{contact, incoming, key, outbox, store};
use super::*;
use crate::api::{ConversationId, Message, MessageStatus};

const OLD: &str = "pw";
const NEW: &str = "a new password";
const NETWORK: &str = "network";
const GROUP_ID: &[u8] = b"group id of sixteen";
const HASH_REF: &[u8] = b"a hash reference";

fn outgoing(to: IdentityKey, n: u8, at_ms: u64) -> Message {
    Message {
        sender: None,
        status: MessageStatus::Sent,
        ..incoming(to, n, at_ms)
    }
}

/// A group state as `group::Group::encode` starts it: version, own key, the group id.
fn group_state() -> Vec<u8> {
    let mut state = vec![1];
    state.extend_from_slice(&[7; 32]);
    state.push(u8::try_from(GROUP_ID.len()).unwrap());
    state.extend_from_slice(GROUP_ID);
    state.extend_from_slice(b"the rest of the state");
    state
}

/// A pending KeyPackage as `group::PendingKeyPackage::encode` starts it: version, the hash reference.
fn pending_key_package() -> Vec<u8> {
    let mut pending = vec![1];
    pending.extend_from_slice(&u16::try_from(HASH_REF.len()).unwrap().to_be_bytes());
    pending.extend_from_slice(HASH_REF);
    pending.extend_from_slice(b"private half");
    pending
}

/// A duplicate-check mark and an envelope mark as written before their inputs were kept.
fn put_legacy_marks(
    store: &mut Store,
    sender: &IdentityKey,
    id: &MessageId,
    envelope: &EnvelopeId,
) {
    store
        .transaction(|b| {
            let row = b.keys.blind(Blind::Seen, &[sender.as_bytes(), &id.0]);
            let sealed = b.keys.seal(SEEN.name(), &row, &5_000_000u64.to_be_bytes());
            b.txn
                .open_table(SEEN)?
                .insert(row.as_slice(), sealed.as_slice())?;
            let row = b.keys.blind(Blind::Envelope, &[&envelope.0]);
            let value = encode_envelope_value(5_000_000, sender, id, envelope);
            let sealed = b.keys.seal(ENVELOPES.name(), &row, &value[..56]);
            b.txn
                .open_table(ENVELOPES)?
                .insert(row.as_slice(), sealed.as_slice())?;
            Ok(())
        })
        .unwrap();
}

/// Everything a profile holds, as the store's reads show it.
#[derive(Debug, PartialEq)]
struct Snapshot {
    contacts: Vec<String>,
    messages: Vec<Message>,
    unread: u64,
    outbox: Vec<MessageId>,
    seen: bool,
    envelope: Option<(IdentityKey, MessageId)>,
    network: Option<Vec<u8>>,
    timer: Timer,
    group: Option<Vec<u8>>,
    next_expiry: Option<u64>,
}

fn snapshot(store: &Store) -> Snapshot {
    let bob = key(1);
    Snapshot {
        contacts: store
            .contacts()
            .unwrap()
            .into_iter()
            .map(|c| c.local_name)
            .collect(),
        messages: store.conversation_page(bob, None, 100).unwrap().messages,
        unread: store.unread_count(bob).unwrap(),
        outbox: store
            .outbox()
            .unwrap()
            .into_iter()
            .map(|e| e.message_id)
            .collect(),
        seen: store.is_seen(&key(3), &MessageId([30; 16])).unwrap(),
        envelope: store.envelope(&EnvelopeId([40; 32])).unwrap(),
        network: store.setting_get(NETWORK).unwrap().map(|v| v.to_vec()),
        timer: store.timer(&ConversationId::Direct(bob)).unwrap(),
        group: store.group(GROUP_ID).unwrap().map(|v| v.to_vec()),
        next_expiry: store.next_expiry().unwrap(),
    }
}

/// A profile with a row in every table.
fn filled(dir: &Path) -> Store {
    let mut store = store(dir);
    let bob = key(1);
    store.put_contact(&contact(1)).unwrap();
    store.put_contact(&contact(2)).unwrap();
    for n in 1..=3 {
        store
            .insert_message(&incoming(bob, n, 1000 * u64::from(n)))
            .unwrap();
    }
    store
        .update_message_status(bob, &MessageId([1; 16]), MessageStatus::Read)
        .unwrap();
    store
        .transaction(|b| b.insert_message_expiring(&outgoing(bob, 4, 4000), 3600))
        .unwrap();
    store.outbox_enqueue(&outbox(1)).unwrap();
    store.outbox_enqueue(&outbox(2)).unwrap();
    store
        .mark_seen(&key(3), &MessageId([30; 16]), 9_000_000)
        .unwrap();
    store
        .mark_envelope(&EnvelopeId([40; 32]), &bob, &MessageId([2; 16]), 9_000_000)
        .unwrap();
    store.setting_put(NETWORK, b"lan only").unwrap();
    store
        .transaction(|b| {
            b.set_timer(
                &ConversationId::Direct(bob),
                &Timer {
                    seconds: 3600,
                    version: 2,
                    id: [9; 16],
                },
            )
        })
        .unwrap();
    store.put_group(GROUP_ID, &group_state()).unwrap();
    store
        .put_key_package(HASH_REF, &pending_key_package())
        .unwrap();
    // Marks of a message deleted since, written before their inputs were kept: they cannot be carried.
    put_legacy_marks(
        &mut store,
        &key(2),
        &MessageId([50; 16]),
        &EnvelopeId([51; 32]),
    );
    store
}

/// Every value of every table in the profile's file that opens under `keys` (none should after a
/// re-key, under the old keys).
fn values_opening_under(dir: &Path, keys: &Keys) -> Vec<String> {
    let db = Database::open(dir.join(STORE_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let mut opened = Vec::new();
    for table in txn.list_tables().unwrap() {
        let name = table.name().to_owned();
        if name == "meta" {
            continue;
        }
        if name == "vault" {
            let def: TableDefinition<&str, &[u8]> = TableDefinition::new("vault");
            for entry in txn.open_table(def).unwrap().iter().unwrap() {
                let (row, value) = entry.unwrap();
                if keys
                    .open(&name, row.value().as_bytes(), value.value())
                    .is_ok()
                {
                    opened.push(format!("{name}/{}", row.value()));
                }
            }
            continue;
        }
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
        let Ok(rows) = txn.open_table(def) else {
            continue; // a table of keys only (unit values)
        };
        for entry in rows.iter().unwrap() {
            let (row, value) = entry.unwrap();
            if keys.open(&name, row.value(), value.value()).is_ok() {
                opened.push(name.clone());
            }
        }
    }
    opened
}

#[test]
fn a_rekey_carries_every_table_and_leaves_nothing_the_old_key_opens() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path());
    let before = snapshot(&store);
    let old_keys = Keys::derive(SecretKey::from_bytes(*store.keys.store_key().as_bytes()));

    let report = store.rekey(&OLD.into(), &NEW.into(), &[NETWORK]).unwrap();
    assert_eq!(report.messages, 4);
    assert_eq!(report.seen_dropped, 1, "{report:?}");
    assert_eq!(report.envelopes_dropped, 1, "{report:?}");
    assert_eq!(report.timers_dropped, 0);
    assert_eq!(snapshot(&store), before, "the open store reads the same");
    assert!(store.take_key_package(HASH_REF).unwrap().is_some());
    let new_keys = Keys::derive(SecretKey::from_bytes(*store.keys.store_key().as_bytes()));
    drop(store);

    assert!(!dir.path().join(REKEYING_FILE).exists());
    assert!(matches!(
        Store::open(dir.path(), &OLD.into()),
        Err(StoreError::WrongPassword)
    ));
    assert_eq!(
        values_opening_under(dir.path(), &old_keys),
        Vec::<String>::new(),
        "values the old key still opens"
    );
    assert!(
        values_opening_under(dir.path(), &new_keys).len() > 15,
        "the same walk opens the new file's values under the new key"
    );
    let mut store = Store::open(dir.path(), &NEW.into()).unwrap();
    assert_ne!(
        store.keys.store_key().as_bytes(),
        old_keys.store_key().as_bytes()
    );
    assert_eq!(
        snapshot(&store),
        before,
        "reopened under the new password, it reads the same"
    );
    assert!(
        store.take_key_package(HASH_REF).unwrap().is_none(),
        "taken before the close"
    );
    // The expiry index names the new rows: the message still disappears.
    let expired = store.transaction(|b| b.expire_due(u64::MAX)).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, MessageId([4; 16]));
    // The rows the marks carried still drop a duplicate.
    assert!(!store.insert_message(&incoming(key(1), 2, 2000)).unwrap());
}

#[test]
fn a_legacy_duplicate_mark_of_a_stored_message_is_carried() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let bob = key(1);
    let message = incoming(bob, 7, 1000);
    store.insert_message(&message).unwrap();
    // Its mark as a build before inputs were kept wrote it (an 8-byte value).
    put_legacy_marks(&mut store, &bob, &message.id, &EnvelopeId([8; 32]));
    store.delete_conversation(bob).unwrap();
    let report = store.rekey(&OLD.into(), &NEW.into(), &[]).unwrap();
    assert_eq!(
        report.seen_dropped, 1,
        "deleted with its conversation: {report:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut store = super::tests::store(dir.path());
    store.insert_message(&message).unwrap();
    put_legacy_marks(&mut store, &bob, &message.id, &EnvelopeId([8; 32]));
    let report = store.rekey(&OLD.into(), &NEW.into(), &[]).unwrap();
    assert_eq!(report.seen_dropped, 0, "matched by its message: {report:?}");
    assert!(store.is_seen(&bob, &message.id).unwrap());
}

#[test]
fn a_refused_rekey_leaves_the_profile_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path());
    let path = dir.path().join(STORE_FILE);
    let before = std::fs::read(&path).unwrap();

    let err = store.rekey(&"wrong".into(), &NEW.into(), &[NETWORK]);
    assert!(matches!(err, Err(StoreError::WrongPassword)), "{err:?}");
    // A setting nobody named cannot be keyed again: refused before anything is written.
    store.setting_put("theme", b"dark").unwrap();
    let with_theme = std::fs::read(&path).unwrap();
    let err = store.rekey(&OLD.into(), &NEW.into(), &[NETWORK]);
    assert!(matches!(err, Err(StoreError::Unsupported(_))), "{err:?}");
    assert!(
        std::fs::read(&path).unwrap() == with_theme,
        "the file changed"
    );
    assert!(!dir.path().join(REKEYING_FILE).exists());
    assert_ne!(before, with_theme);
    // The store still works under the old password.
    assert_eq!(
        store.setting_get("theme").unwrap().unwrap().as_slice(),
        b"dark"
    );
    drop(store);
    drop(Store::open(dir.path(), &OLD.into()).unwrap());
}
