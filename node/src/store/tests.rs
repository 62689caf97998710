//! Unit tests of the store: records in and out of the tables, bounds, and the row binding of sealed values.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tern_protocol::{Identity, IdentityKey, MessageId};

use super::records::{ContactRecord, OutboxRecord};
use super::*;
use crate::api::{self, ContactState, ConversationId, Message, MessageStatus, Page};

pub(super) fn key(seed: u64) -> IdentityKey {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
}

pub(super) fn store(dir: &Path) -> Store {
    Store::create(dir, &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap()
}

pub(super) fn contact(seed: u64) -> ContactRecord {
    ContactRecord {
        key: key(seed),
        card: vec![1; 10],
        local_name: format!("contact {seed}"),
        verified: false,
        state: ContactState::Accepted,
        key_changed: false,
        added_ms: seed,
    }
}

pub(super) fn incoming(conversation: IdentityKey, n: u8, at_ms: u64) -> Message {
    Message {
        id: MessageId([n; 16]),
        conversation: conversation.into(),
        sender: Some(conversation),
        system: false,
        sent_at_ms: at_ms,
        received_at_ms: at_ms,
        text: format!("message {n}"),
        status: MessageStatus::Received,
        recipients: Vec::new(),
        reply_to: None,
        attachment: None,
    }
}

pub(super) fn outbox(n: u32) -> OutboxRecord {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    OutboxRecord {
        message_id: MessageId(id),
        recipient: key(1),
        envelope: vec![0; 32],
        attempts: 0,
        next_attempt_ms: u64::from(n),
        created_ms: 0,
        expires_at: u64::MAX,
    }
}

#[test]
fn a_message_delivered_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let alice = key(1);
    let message = incoming(alice, 1, 1000);
    assert!(store.insert_message(&message).unwrap());
    assert!(!store.insert_message(&message).unwrap());
    // Same id, different text and time: still the same message.
    let again = Message {
        text: "forged".into(),
        received_at_ms: 5000,
        ..message.clone()
    };
    assert!(!store.insert_message(&again).unwrap());
    let page = store.conversation_page(alice, None, 10).unwrap();
    assert_eq!(page.messages, vec![message.clone()]);
    assert_eq!(store.unread_count(alice).unwrap(), 1);
    assert!(store.is_seen(&alice, &message.id).unwrap());
    // The same id from someone else is a different message.
    assert!(store.insert_message(&incoming(key(2), 1, 1000)).unwrap());
    // Duplicates inside one batch are caught too.
    let third = incoming(alice, 3, 3000);
    let inserted = store
        .transaction(|b| Ok((b.insert_message(&third)?, b.insert_message(&third)?)))
        .unwrap();
    assert_eq!(inserted, (true, false));
    assert_eq!(
        store
            .conversation_page(alice, None, 10)
            .unwrap()
            .messages
            .len(),
        2
    );
}

#[test]
fn a_message_seen_before_is_dropped_even_after_it_left_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let alice = key(1);
    let message = incoming(alice, 1, 1000);
    assert!(store.mark_seen(&alice, &message.id, 10_000).unwrap());
    assert!(!store.mark_seen(&alice, &message.id, 10_000).unwrap());
    assert!(!store.insert_message(&message).unwrap());
    // Kept at least until its expiry, purged at the end of that (UTC) day: its index names the day.
    assert_eq!(store.purge_seen(10_000).unwrap(), 0);
    assert_eq!(store.purge_seen(super::EXPIRY_BUCKET_MS - 1).unwrap(), 0);
    assert_eq!(store.purge_seen(super::EXPIRY_BUCKET_MS).unwrap(), 1);
    assert_eq!(store.seen_len().unwrap(), 0);
    assert!(store.insert_message(&message).unwrap());
    assert_eq!(store.seen_len().unwrap(), 1);
}

#[test]
fn conversation_pages_run_newest_first_backwards_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let (alice, bob) = (key(1), key(2));
    // Inserted out of order, interleaved with another conversation.
    let times = [50u64, 10, 40, 20, 30, 60, 70];
    store
        .transaction(|b| {
            for (i, t) in times.iter().enumerate() {
                let n = u8::try_from(i).unwrap();
                b.insert_message(&incoming(alice, n, *t))?;
                b.insert_message(&incoming(bob, n, *t + 1))?;
            }
            Ok(())
        })
        .unwrap();
    let page = store.conversation_page(alice, None, 3).unwrap();
    let at = |p: &Page| {
        p.messages
            .iter()
            .map(|m| m.received_at_ms)
            .collect::<Vec<_>>()
    };
    assert_eq!(at(&page), [50, 60, 70]);
    assert!(
        page.messages
            .iter()
            .all(|m| m.conversation == ConversationId::Direct(alice))
    );
    let page = store.conversation_page(alice, page.older, 3).unwrap();
    assert_eq!(at(&page), [20, 30, 40]);
    let last = store.conversation_page(alice, page.older, 3).unwrap();
    assert_eq!(at(&last), [10]);
    assert_eq!(last.older, None);
    // An exact fit reports no older page.
    let all = store.conversation_page(alice, None, 7).unwrap();
    assert_eq!(all.messages.len(), 7);
    assert_eq!(all.older, None);

    let list = store.conversations().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, ConversationId::Direct(bob));
    assert_eq!(list[0].last.received_at_ms, 71);
    assert_eq!(list[1].last.received_at_ms, 70);
    assert_eq!(list[1].unread, 7);
}

#[test]
fn status_updates_move_forward_and_clear_unread() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let alice = key(1);
    let message = incoming(alice, 1, 1000);
    store.insert_message(&message).unwrap();
    assert_eq!(store.unread_count(alice).unwrap(), 1);
    assert!(
        store
            .update_message_status(alice, &message.id, MessageStatus::Read)
            .unwrap()
    );
    assert_eq!(store.unread_count(alice).unwrap(), 0);
    assert!(
        !store
            .update_message_status(alice, &message.id, MessageStatus::Received)
            .unwrap()
    );
    // Unknown message, or the right id in the wrong conversation.
    assert!(
        !store
            .update_message_status(key(2), &message.id, MessageStatus::Read)
            .unwrap()
    );

    let sent = Message {
        id: MessageId([9; 16]),
        sender: None,
        system: false,
        status: MessageStatus::Sending,
        ..message
    };
    assert!(store.insert_message(&sent).unwrap());
    // A read receipt with no delivery known: read at that moment, and delivered no later.
    assert!(
        store
            .transaction(|b| b.update_message_status_at(
                alice,
                &sent.id,
                MessageStatus::Read,
                5_000
            ))
            .unwrap()
    );
    assert_eq!(
        store
            .reader()
            .message_times(&alice.into(), &sent.id)
            .unwrap()
            .unwrap(),
        api::MessageTimes {
            delivered_at_ms: Some(5_000),
            read_at_ms: Some(5_000),
        }
    );
    assert!(
        !store
            .update_message_status(alice, &sent.id, MessageStatus::Delivered)
            .unwrap()
    );
    assert_eq!(
        store.message(alice, &sent.id).unwrap().unwrap().status,
        MessageStatus::Read
    );
}

#[test]
fn the_outbox_refuses_entries_past_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let max = u32::try_from(MAX_OUTBOX_ENTRIES).unwrap();
    store
        .transaction(|b| {
            for n in 0..max {
                b.outbox_enqueue(&outbox(n))?;
            }
            Ok(())
        })
        .unwrap();
    let err = store.outbox_enqueue(&outbox(max)).unwrap_err();
    assert!(matches!(
        err,
        StoreError::OutboxFull {
            max: MAX_OUTBOX_ENTRIES
        }
    ));
    // Replacing an entry is not growth; removing one makes room.
    store.outbox_enqueue(&outbox(5)).unwrap();
    assert!(store.outbox_remove(&outbox(5).message_id).unwrap());
    store.outbox_enqueue(&outbox(max)).unwrap();
}

#[test]
fn outbox_entries_come_due_in_order_and_reschedule() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    for n in [30, 10, 20] {
        store.outbox_enqueue(&outbox(n)).unwrap();
    }
    let due = store.outbox_due(20, 10).unwrap();
    assert_eq!(
        due.iter().map(|e| e.next_attempt_ms).collect::<Vec<_>>(),
        [10, 20]
    );
    assert!(
        store
            .outbox_reschedule(&outbox(10).message_id, 100)
            .unwrap()
    );
    let due = store.outbox_due(20, 10).unwrap();
    assert_eq!(due.len(), 1);
    let all = store.outbox().unwrap();
    assert_eq!(all.last().unwrap().attempts, 1);
    assert_eq!(all.last().unwrap().next_attempt_ms, 100);
    assert!(!store.outbox_reschedule(&outbox(99).message_id, 1).unwrap());
}

#[test]
fn a_failed_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let alice = key(1);
    let err = store
        .transaction(|b| {
            b.insert_message(&incoming(alice, 1, 1))?;
            b.put_contact(&contact(1))?;
            b.insert_message(&Message {
                text: "x".repeat(MAX_TEXT_LEN + 1),
                ..incoming(alice, 2, 2)
            })
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLong { field: "text", .. }));
    assert!(store.contact(&alice).unwrap().is_none());
    assert!(store.message(alice, &MessageId([1; 16])).unwrap().is_none());
    assert!(!store.is_seen(&alice, &MessageId([1; 16])).unwrap());
}

#[test]
fn contacts_sessions_settings_and_vault_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    for seed in [3, 1, 2] {
        store.put_contact(&contact(seed)).unwrap();
    }
    let names: Vec<_> = store
        .contacts()
        .unwrap()
        .into_iter()
        .map(|c| c.local_name)
        .collect();
    assert_eq!(names, ["contact 1", "contact 2", "contact 3"]);
    assert!(store.delete_contact(&key(2)).unwrap());
    assert!(!store.delete_contact(&key(2)).unwrap());
    assert!(store.contact(&key(2)).unwrap().is_none());

    store.put_session(&key(1), b"session").unwrap();
    assert_eq!(
        store.session(&key(1)).unwrap().unwrap().as_slice(),
        b"session"
    );
    assert!(store.session(&key(2)).unwrap().is_none());

    store.setting_put("theme", b"dark").unwrap();
    assert_eq!(
        store.setting_get("theme").unwrap().unwrap().as_slice(),
        b"dark"
    );
    assert!(store.setting_delete("theme").unwrap());
    assert!(store.setting_get("theme").unwrap().is_none());

    assert!(store.vault_get(VaultItem::OwnCard).unwrap().is_none());
    store.vault_put(VaultItem::OwnCard, b"card").unwrap();
    assert_eq!(
        store
            .vault_get(VaultItem::OwnCard)
            .unwrap()
            .unwrap()
            .as_slice(),
        b"card"
    );
    let long = ContactRecord {
        local_name: "n".repeat(MAX_LOCAL_NAME_LEN + 1),
        ..contact(9)
    };
    assert!(matches!(
        store.put_contact(&long),
        Err(StoreError::TooLong {
            field: "local name",
            ..
        })
    ));
}

#[test]
fn the_contact_list_refuses_contacts_past_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    // Identity keys are expensive to generate; the bound only needs distinct keys, so reuse a few rows'
    // worth of real keys by writing raw rows for the rest.
    let filler = MAX_CONTACTS - 1;
    store
        .transaction(|b| {
            let mut table = b.txn.open_table(CONTACTS)?;
            for n in 0..filler {
                let mut row = [0u8; BLIND_LEN];
                row[..8].copy_from_slice(&n.to_be_bytes());
                table.insert(row.as_slice(), [0u8].as_slice())?;
            }
            Ok(())
        })
        .unwrap();
    store.put_contact(&contact(1)).unwrap();
    store.put_contact(&contact(1)).unwrap();
    assert!(matches!(
        store.put_contact(&contact(2)),
        Err(StoreError::ContactsFull { max: MAX_CONTACTS })
    ));
}

/// Fills `table` and its expiry index `by_expiry` to `MAX_SEEN_ENTRIES` raw rows (their values are never
/// opened by eviction), row `n` expiring at 1000 + n.
pub(super) fn fill_to_bound(store: &mut Store, table: BytesTable, by_expiry: UnitTable) {
    store
        .transaction(|b| {
            let mut rows = b.txn.open_table(table)?;
            let mut by_expiry = b.txn.open_table(by_expiry)?;
            for n in 0..MAX_SEEN_ENTRIES {
                let mut row = [0u8; BLIND_LEN];
                row[..8].copy_from_slice(&n.to_be_bytes());
                rows.insert(row.as_slice(), [0u8].as_slice())?;
                let mut expiry = [0u8; 8 + BLIND_LEN];
                expiry[..8].copy_from_slice(&(1000 + n).to_be_bytes());
                expiry[8..].copy_from_slice(&row);
                by_expiry.insert(expiry.as_slice(), ())?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_seen_table_drops_its_oldest_entries_past_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    fill_to_bound(&mut store, SEEN, SEEN_EXPIRY);
    let alice = key(1);
    assert!(store.insert_message(&incoming(alice, 1, 5)).unwrap());
    assert_eq!(store.seen_len().unwrap(), MAX_SEEN_ENTRIES);
    assert!(store.is_seen(&alice, &MessageId([1; 16])).unwrap());
    // The entry that expired first is the one that went.
    let (read, _) = store.shared.begin_read().unwrap();
    let seen = read.open_table(SEEN).unwrap();
    assert!(seen.get([0u8; BLIND_LEN].as_slice()).unwrap().is_none());
    let mut second = [0u8; BLIND_LEN];
    second[7] = 1;
    assert!(seen.get(second.as_slice()).unwrap().is_some());
    drop(seen);
    drop(read);
    assert_eq!(store.purge_seen(1000 + 10).unwrap(), 10);
}

#[test]
fn search_finds_text_in_every_conversation_newest_first_ignoring_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let (alice, bob) = (key(1), key(2));
    let mut texts = Vec::new();
    for n in 0..40u8 {
        let conversation = if n % 2 == 0 { alice } else { bob };
        let mut m = incoming(conversation, n, 1_000 + u64::from(n));
        m.text = if n % 3 == 0 {
            format!("Lunch at {n}? Ünïcode Café")
        } else {
            format!("nothing {n}")
        };
        texts.push(m.text.clone());
        store.insert_message(&m).unwrap();
    }
    let hits = store.search("LUNCH", 100).unwrap();
    let expected: Vec<u8> = (0..40u8).rev().filter(|n| n % 3 == 0).collect();
    assert_eq!(
        hits.iter().map(|m| m.id.0[0]).collect::<Vec<_>>(),
        expected,
        "every match, newest first"
    );
    assert!(
        hits.iter()
            .any(|m| m.conversation == ConversationId::Direct(alice))
    );
    assert!(
        hits.iter()
            .any(|m| m.conversation == ConversationId::Direct(bob))
    );
    // Non-ASCII text is folded too; the limit keeps the newest.
    let cafe = store.search("café", 3).unwrap();
    assert_eq!(
        cafe.iter().map(|m| m.id.0[0]).collect::<Vec<_>>(),
        vec![39, 36, 33]
    );
    assert!(store.search("ÜNÏ", 1).unwrap()[0].text.contains("Ünïcode"));
    assert!(store.search("absent", 10).unwrap().is_empty());
    assert!(store.search("", 10).unwrap().is_empty());
}

#[test]
fn deleting_a_conversation_removes_its_messages_unread_marks_and_outbox_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let (gone, kept) = (key(1), key(2));
    for n in 0..5u8 {
        store
            .insert_message(&incoming(gone, n, u64::from(n)))
            .unwrap();
        store
            .insert_message(&incoming(kept, n + 100, u64::from(n)))
            .unwrap();
    }
    let mut for_gone = outbox(1);
    for_gone.recipient = gone;
    let mut for_kept = outbox(2);
    for_kept.recipient = kept;
    store.outbox_enqueue(&for_gone).unwrap();
    store.outbox_enqueue(&for_kept).unwrap();

    assert_eq!(store.delete_conversation(gone).unwrap(), 5);

    assert!(
        store
            .conversation_page(gone, None, 10)
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(store.unread_count(gone).unwrap(), 0);
    assert!(store.message(gone, &MessageId([0; 16])).unwrap().is_none());
    assert_eq!(store.conversations().unwrap().len(), 1);
    assert_eq!(
        store
            .conversation_page(kept, None, 10)
            .unwrap()
            .messages
            .len(),
        5
    );
    assert_eq!(store.unread_count(kept).unwrap(), 5);
    let left: Vec<_> = store
        .outbox()
        .unwrap()
        .iter()
        .map(|e| e.recipient)
        .collect();
    assert_eq!(left, vec![kept]);
    // The duplicate check still drops a late copy of a deleted message.
    assert!(!store.insert_message(&incoming(gone, 0, 0)).unwrap());
}

#[test]
fn the_outbox_is_read_by_recipient_and_by_due_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let (a, b) = (key(21), key(22));
    for (n, to, due) in [(1u8, a, 30u64), (2, b, 10), (3, a, 20), (4, b, 40)] {
        let mut entry = outbox(u32::from(n));
        entry.message_id = MessageId([n; 16]);
        entry.recipient = to;
        entry.next_attempt_ms = due;
        store.outbox_enqueue(&entry).unwrap();
    }
    let ids = |entries: Vec<OutboxRecord>| -> Vec<u8> {
        entries.iter().map(|e| e.message_id.0[0]).collect()
    };
    let mut for_a = ids(store.outbox_for(&a, 10).unwrap());
    for_a.sort();
    assert_eq!(for_a, vec![1, 3]);
    assert_eq!(store.outbox_for(&b, 1).unwrap().len(), 1);
    assert!(store.outbox_for(&key(23), 10).unwrap().is_empty());
    assert_eq!(ids(store.outbox_due(25, 10).unwrap()), vec![2, 3]);
    // A reschedule moves the entry in due order; a removal takes it out of both views.
    assert!(store.outbox_reschedule(&MessageId([2; 16]), 50).unwrap());
    assert_eq!(
        ids(store.outbox_due(u64::MAX, 10).unwrap()),
        vec![3, 1, 4, 2]
    );
    assert_eq!(store.outbox_for(&b, 10).unwrap().len(), 2);
    assert!(store.outbox_remove(&MessageId([3; 16])).unwrap());
    assert_eq!(ids(store.outbox_for(&a, 10).unwrap()), vec![1]);
    assert_eq!(store.outbox_len().unwrap(), 3);
    // Deleting a's conversation drops a's entries only.
    store.delete_conversation(a).unwrap();
    assert_eq!(ids(store.outbox_due(u64::MAX, 10).unwrap()), vec![4, 2]);
}

#[test]
fn a_reader_on_another_thread_sees_committed_writes_as_api_types() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let reader = store.reader();
    let them = key(31);
    let mut record = contact(31);
    record.key = them;
    record.local_name = "Them".into();
    store.put_contact(&record).unwrap();
    store.insert_message(&incoming(them, 1, 100)).unwrap();
    let conversation = crate::api::ConversationId::Direct(them);
    let seen = std::thread::Builder::new()
        .name("reader".into())
        .spawn({
            let reader = reader.clone();
            move || {
                (
                    reader.conversations().unwrap(),
                    reader.page(&conversation, None, 10).unwrap(),
                    reader.contacts().unwrap(),
                )
            }
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(seen.0.len(), 1);
    assert_eq!(seen.0[0].title, "Them");
    assert_eq!(seen.0[0].unread, 1);
    assert_eq!(seen.1.messages[0].sender, Some(them));
    assert_eq!(seen.1.messages[0].text, "message 1");
    assert_eq!(seen.2[0].name, "Them");
    // A write made after the reader was taken is visible to its next read.
    store.insert_message(&incoming(them, 2, 200)).unwrap();
    assert_eq!(reader.unread_count(&conversation).unwrap(), 2);
    assert_eq!(reader.search("MESSAGE 2", 10).unwrap().len(), 1);
    assert!(
        reader
            .message(&conversation, &MessageId([2; 16]))
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_password_change_split_in_a_slow_and_a_fast_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let reader = store.reader();
    assert!(matches!(
        reader.rewrap(&"not it".into(), &"new".into()),
        Err(StoreError::WrongPassword)
    ));
    let update = std::thread::Builder::new()
        .name("rewrap".into())
        .spawn(move || reader.rewrap(&"pw".into(), &"new".into()))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    store.install_key_slot(update).unwrap();
    drop(store);
    assert!(matches!(
        Store::open(dir.path(), &"pw".into()),
        Err(StoreError::WrongPassword)
    ));
    Store::open(dir.path(), &"new".into()).unwrap();
}

#[test]
fn a_message_whose_sender_is_not_the_conversations_contact_has_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let (alice, mallory) = (key(1), key(2));
    let forged = Message {
        sender: Some(mallory),
        system: false,
        ..incoming(alice, 1, 1000)
    };
    assert!(matches!(
        store.insert_message(&forged),
        Err(StoreError::Unsupported(_))
    ));
    let with_recipients = Message {
        recipients: vec![api::RecipientStatus {
            member: mallory,
            status: MessageStatus::Sent,
            at_ms: 0,
        }],
        sender: None,
        system: false,
        ..incoming(alice, 2, 1000)
    };
    assert!(matches!(
        store.insert_message(&with_recipients),
        Err(StoreError::Unsupported(_))
    ));
    assert!(
        store
            .conversation_page(alice, None, 10)
            .unwrap()
            .messages
            .is_empty()
    );
}

/// A disk failure as redb reports it after one failed write.
fn previous_io() -> StoreError {
    StoreError::Database(Box::new(redb::Error::PreviousIo))
}

#[test]
fn a_read_in_flight_never_keeps_the_database_from_opening_again() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    store.setting_put("a", b"1").unwrap();
    let reader = store.reader();
    // A read transaction begun before the failure, alive across the close and the reopen.
    let (old_read, generation) = store.shared.begin_read().unwrap();
    let err = store
        .shared
        .check(generation, "test", Err::<(), _>(previous_io()))
        .unwrap_err();
    assert!(err.is_disk_failing());
    assert!(store.health().failing);
    assert!(reader.setting_get("a").unwrap_err().is_disk_failing());
    // A later operation (here a reader's) opens the file again after the pause: redb's lock went with
    // the close, whatever transaction was still alive.
    let deadline = Instant::now() + MAX_REOPEN_INTERVAL * 2;
    let got = loop {
        match reader.setting_get("a") {
            Ok(value) => break value,
            Err(err) => {
                assert!(err.is_disk_failing(), "{err}");
                assert!(Instant::now() < deadline, "never opened again");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(got.as_deref().map(Vec::as_slice), Some(&b"1"[..]));
    let health = store.health();
    assert!(!health.failing);
    assert_eq!((health.failures, health.reopens), (1, 1));
    // The old transaction belongs to the closed database: an error from it never closes the new one.
    let stale = store
        .shared
        .check(generation, "test", Err::<(), _>(previous_io()));
    assert!(stale.unwrap_err().is_disk_failing());
    assert!(!store.health().failing);
    drop(old_read);
    store.setting_put("b", b"2").unwrap();
    assert_eq!(store.health().failures, 1);
}

#[test]
fn only_disk_failures_close_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let err = store.setting_put(&"n".repeat(MAX_SETTING_NAME_LEN + 1), b"1");
    assert!(matches!(err, Err(StoreError::TooLong { .. })));
    let (_, generation) = store.shared.begin_read().unwrap();
    let corrupt = store.shared.check(
        generation,
        "test",
        Err::<(), _>(StoreError::Corrupt("bad".into())),
    );
    assert!(matches!(corrupt, Err(StoreError::Corrupt(_))));
    assert_eq!(store.health(), StoreHealth::default());
    store.setting_put("a", b"1").unwrap();
}
