//! Tests of the search index: kept in step with the messages (insert, delete, conversation removal,
//! expiry), prefix and case matching across scripts, the build for a profile written before the index,
//! and queries the index cannot serve.

use std::collections::BTreeSet;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use redb::ReadableTable;
use tern_protocol::{Identity, IdentityKey, MessageId};

use super::*;
use crate::api::{ConversationId, Message, MessageStatus};
use crate::store::{KdfParams, Store};

fn key(seed: u64) -> IdentityKey {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
}

fn store(dir: &std::path::Path) -> Store {
    Store::create(dir, &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap()
}

fn message(with: IdentityKey, n: u8, text: &str) -> Message {
    let at = 1_000 + u64::from(n);
    Message {
        id: MessageId([n; 16]),
        conversation: with.into(),
        sender: Some(with),
        system: false,
        sent_at_ms: at,
        received_at_ms: at,
        text: text.into(),
        status: MessageStatus::Read,
        recipients: Vec::new(),
        reply_to: None,
        attachment: None,
    }
}

fn ids(found: &[Message]) -> Vec<u8> {
    found.iter().map(|m| m.id.0[0]).collect()
}

fn search(store: &Store, query: &str) -> Vec<u8> {
    ids(&store.search(query, 100).unwrap())
}

/// The rows the index names, and the rows of the stored messages.
fn rows(store: &Store) -> (BTreeSet<Vec<u8>>, BTreeSet<Vec<u8>>) {
    store
        .reader()
        .run(|read| {
            let mut named = BTreeSet::new();
            if let Ok(table) = read.txn.open_table(SEARCH_TOKENS) {
                for entry in table.iter()? {
                    let (key, _) = entry?;
                    if key.value().len() == ROW_KEY_LEN {
                        named.insert(key.value()[TOKEN_LEN..].to_vec());
                    }
                }
            }
            let mut stored = BTreeSet::new();
            for entry in read.table(CONV_MESSAGE_INDEX)?.iter()? {
                stored.insert(entry?.0.value().to_vec());
            }
            Ok((named, stored))
        })
        .unwrap()
}

/// The index names exactly the stored messages (each stored message has a text here).
fn assert_in_step(store: &Store) {
    let (named, stored) = rows(store);
    assert_eq!(named, stored, "the index and the messages disagree");
}

#[test]
fn a_message_is_found_after_insert_and_gone_after_delete_removal_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let (alice, bob) = (key(1), key(2));
    for n in 0..6u8 {
        let with = if n < 3 { alice } else { bob };
        let m = message(with, n, &format!("Marmalade number {n}"));
        // Message 4 disappears a second after it is read.
        store
            .transaction(|b| b.insert_message_expiring(&m, if n == 4 { 1 } else { 0 }))
            .unwrap();
    }
    store
        .insert_message(&message(alice, 10, "nothing to see"))
        .unwrap();
    assert!(
        store.search_index_built().unwrap(),
        "a new profile is indexed from its first message"
    );
    assert_in_step(&store);
    assert_eq!(search(&store, "marmalade"), vec![5, 4, 3, 2, 1, 0]);

    // Delete for me.
    let (gone, _) = store
        .transaction(|b| b.delete_message(&ConversationId::Direct(alice), &MessageId([1; 16])))
        .unwrap();
    assert!(gone);
    assert_eq!(search(&store, "marmalade"), vec![5, 4, 3, 2, 0]);
    assert_in_step(&store);

    // A disappearing message's expiry.
    store
        .transaction(|b| {
            b.start_expiry(&ConversationId::Direct(bob), &MessageId([4; 16]), 2_000)?;
            b.expire_due(5_000)
        })
        .unwrap();
    assert_eq!(search(&store, "marmalade"), vec![5, 3, 2, 0]);
    assert_in_step(&store);

    // The conversation removed.
    assert_eq!(store.delete_conversation(bob).unwrap(), 2);
    assert_eq!(search(&store, "marmalade"), vec![2, 0]);
    assert_in_step(&store);
    assert_eq!(search(&store, "nothing to"), vec![10]);
}

#[test]
fn prefixes_and_case_match_the_start_of_words() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let alice = key(1);
    let texts = [
        "Marmalade on toast",
        "the MARKET opens",
        "Anna's marmalades, homemade",
        "Straße und STRASSE",
        "ＦＵＬＬＷＩＤＴＨ letters",
        "re-marmalade",
    ];
    for (n, text) in texts.iter().enumerate() {
        store
            .insert_message(&message(alice, n as u8, text))
            .unwrap();
    }
    assert_eq!(search(&store, "marmalade"), vec![5, 2, 0]);
    assert_eq!(search(&store, "MARM"), vec![5, 2, 0]);
    assert_eq!(search(&store, "mar"), vec![5, 2, 1, 0]);
    assert_eq!(search(&store, "marmalades,"), vec![2]);
    assert_eq!(search(&store, "marmalade on t"), vec![0]);
    assert_eq!(search(&store, "homemade"), vec![2]);
    assert_eq!(search(&store, "straße"), vec![3]);
    assert_eq!(search(&store, "strasse"), vec![3]);
    // NFKC: full-width letters are the plain ones.
    assert_eq!(search(&store, "fullwidth"), vec![4]);
    assert_eq!(search(&store, "ＦＵＬＬ"), vec![4]);
    // Inside a word is no match any more (a documented change): "armalade" is not a word's start.
    assert!(search(&store, "armalade").is_empty());
    assert!(search(&store, "market opens!").is_empty());
}

#[test]
fn arabic_cyrillic_cjk_thai_and_emoji_text_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let alice = key(1);
    let texts = [
        "مرحبا بالعالم، كيف الحال؟",
        "Привет, Мир! Встреча завтра",
        "明天在东京见面吧",
        "東京で会いましょう",
        "สวัสดีครับ พรุ่งนี้เจอกัน",
        "party 🎉 tonight 👍🏽",
        "안녕하세요 여러분",
    ];
    for (n, text) in texts.iter().enumerate() {
        store
            .insert_message(&message(alice, n as u8, text))
            .unwrap();
    }
    assert_eq!(search(&store, "مرحبا"), vec![0]);
    assert_eq!(search(&store, "بالعا"), vec![0]);
    assert_eq!(search(&store, "кИф"), Vec::<u8>::new());
    assert_eq!(search(&store, "ПРИВЕТ"), vec![1]);
    assert_eq!(search(&store, "встр"), vec![1]);
    assert_eq!(search(&store, "мир!"), vec![1]);
    // CJK: any run of characters, anywhere (each character is a token).
    assert_eq!(search(&store, "东京"), vec![2]);
    assert_eq!(search(&store, "東京"), vec![3]);
    assert_eq!(search(&store, "会い"), vec![3]);
    assert_eq!(search(&store, "京"), vec![3, 2]);
    // Thai has no spaces between words either.
    assert_eq!(search(&store, "พรุ่งนี้"), vec![4]);
    assert_eq!(search(&store, "ครับ"), vec![4]);
    assert_eq!(search(&store, "🎉"), vec![5]);
    assert_eq!(search(&store, "👍"), vec![5]);
    assert_eq!(search(&store, "party 🎉"), vec![5]);
    assert_eq!(search(&store, "여러분"), vec![6]);
    assert_eq!(search(&store, "안녕"), vec![6]);
    assert!(search(&store, "京都").is_empty());
    assert_in_step(&store);
}

#[test]
fn queries_the_index_cannot_serve_are_answered_by_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let alice = key(1);
    let texts = ["a cat", "at home", "Go!", "at last", "?!"];
    for (n, text) in texts.iter().enumerate() {
        store
            .insert_message(&message(alice, n as u8, text))
            .unwrap();
    }
    let lookups = |q: &str| {
        store
            .reader()
            .run(|r| Ok(query_lookups(r.keys, &fold(q))))
            .unwrap()
    };
    // One or two letters at the end of a query, or only punctuation: no token.
    assert!(lookups("a").is_empty());
    assert!(lookups("at").is_empty());
    assert!(lookups("?!").is_empty());
    assert!(!lookups("cat").is_empty());
    assert_eq!(search(&store, "a"), vec![3, 1, 0]);
    assert_eq!(search(&store, "AT"), vec![3, 1]);
    assert_eq!(search(&store, "go"), vec![2]);
    assert_eq!(search(&store, "?!"), vec![4]);
    assert_eq!(search(&store, "!"), vec![4, 2]);
    assert_eq!(ids(&store.search("a", 2).unwrap()), vec![3, 1]);
}

#[test]
fn a_profile_without_the_index_is_indexed_in_bounded_steps_and_searches_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let (alice, bob) = (key(1), key(2));
    for n in 0..20u8 {
        let with = if n % 2 == 0 { alice } else { bob };
        let text = if n % 4 == 0 {
            format!("Тест {n}東京 lunch")
        } else {
            format!("other {n}")
        };
        store.insert_message(&message(with, n, &text)).unwrap();
    }
    let queries = ["lunch", "тест", "東京", "other 1", "lu"];
    let before: Vec<Vec<u8>> = queries.iter().map(|q| search(&store, q)).collect();
    // As a profile written before the index: no table at all.
    store
        .transaction(|b| {
            b.txn.delete_table(SEARCH_TOKENS)?;
            Ok(())
        })
        .unwrap();
    assert!(!store.search_index_built().unwrap());
    let scanned: Vec<Vec<u8>> = queries.iter().map(|q| search(&store, q)).collect();
    assert_eq!(scanned, before, "the scan answers while there is no index");

    // A message stored and one deleted while the build runs are right too.
    assert!(!store.build_search_index_step(7).unwrap());
    store
        .insert_message(&message(alice, 100, "late lunch"))
        .unwrap();
    store
        .transaction(|b| b.delete_message(&ConversationId::Direct(alice), &MessageId([4; 16])))
        .unwrap();
    assert_eq!(search(&store, "lunch"), vec![100, 16, 12, 8, 0]);
    let mut steps = 1;
    while !store.build_search_index_step(7).unwrap() {
        steps += 1;
        assert!(steps < 10, "the build does not end");
    }
    assert!(store.search_index_built().unwrap());
    assert_in_step(&store);
    assert_eq!(search(&store, "lunch"), vec![100, 16, 12, 8, 0]);
    assert_eq!(search(&store, "тест"), vec![16, 12, 8, 0]);
    assert_eq!(search(&store, "東京"), vec![16, 12, 8, 0]);

    // An index of another version is dropped and built again.
    store
        .transaction(|b| {
            let mut table = b.txn.open_table(SEARCH_TOKENS)?;
            let sealed = b.keys.seal(
                SEARCH_TOKENS.name(),
                &STATE_ROW,
                &[INDEX_VERSION + 1, BUILT],
            );
            table.insert(STATE_ROW.as_slice(), sealed.as_slice())?;
            Ok(())
        })
        .unwrap();
    assert!(!store.search_index_built().unwrap());
    while !store.build_search_index_step(SEARCH_BUILD_BATCH).unwrap() {}
    assert_in_step(&store);

    // The full rebuild (the re-key's) gives the same index.
    let (named, _) = rows(&store);
    let count = store.transaction(|b| b.rebuild_search_index()).unwrap();
    assert_eq!(count, 20);
    assert_eq!(rows(&store).0, named);
    assert_eq!(
        search(&store, "other 1"),
        vec![19, 18, 17, 15, 14, 13, 11, 10, 9, 7, 6, 5, 3, 2, 1]
            .into_iter()
            .filter(|n| format!("other {n}").starts_with("other 1"))
            .collect::<Vec<u8>>()
    );
}

#[test]
fn a_message_past_the_token_bound_is_still_found_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let alice = key(1);
    let long: Vec<String> = (0..MAX_SEARCH_TOKENS_PER_MESSAGE)
        .map(|i| format!("w{i}"))
        .collect();
    let text = format!("{} zebra", long.join(" "));
    store.insert_message(&message(alice, 1, &text)).unwrap();
    store.insert_message(&message(alice, 2, "zebra")).unwrap();
    let tokens = store
        .reader()
        .run(|r| Ok(text_tokens(r.keys, &text)))
        .unwrap();
    assert_eq!(tokens.len(), 1, "one overflow row instead of every token");
    assert_eq!(search(&store, "zebra"), vec![2, 1]);
    assert_eq!(search(&store, "w127"), vec![1]);
    store
        .transaction(|b| b.delete_message(&ConversationId::Direct(alice), &MessageId([1; 16])))
        .unwrap();
    assert_eq!(search(&store, "zebra"), vec![2]);
    assert_in_step(&store);
}

#[test]
fn the_index_holds_no_text_and_keys_of_one_shape() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    store
        .insert_message(&message(key(1), 1, "quixotic zeppelin"))
        .unwrap();
    let lens: BTreeSet<usize> = store
        .reader()
        .run(|read| {
            let mut lens = BTreeSet::new();
            for entry in read.txn.open_table(SEARCH_TOKENS)?.iter()? {
                let (key, value) = entry?;
                lens.insert(key.value().len());
                if key.value().len() == ROW_KEY_LEN {
                    assert!(value.value().is_empty());
                }
            }
            Ok(lens)
        })
        .unwrap();
    assert_eq!(lens, BTreeSet::from([TOKEN_LEN, ROW_KEY_LEN]));
    drop(store);
    let bytes = std::fs::read(dir.path().join(super::super::STORE_FILE)).unwrap();
    for word in [&b"quixotic"[..], b"zeppelin", b"zeppel"] {
        assert!(!bytes.windows(word.len()).any(|w| w == word));
    }
}

#[test]
fn pieces_and_matching_follow_word_starts() {
    assert_eq!(
        pieces("ab, cd東e"),
        vec![
            Piece::Word {
                text: "ab",
                ended: true
            },
            Piece::Word {
                text: "cd",
                ended: true
            },
            Piece::Single("東"),
            Piece::Word {
                text: "e",
                ended: false
            },
        ]
    );
    assert!(matches_folded("banana", "ban"));
    assert!(!matches_folded("banana", "ana"));
    assert!(matches_folded("a-a-a", "a-a"));
    assert!(matches_folded("ba-a-a", "a-a"));
    assert!(matches_folded("x東京", "京"));
    assert!(matches_folded("a b", " b"));
}

#[test]
fn a_cleared_history_and_a_re_key_keep_the_index_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let (alice, bob) = (key(1), key(2));
    store
        .insert_message(&message(alice, 1, "jam from alice"))
        .unwrap();
    store
        .insert_message(&message(bob, 2, "jam from bob"))
        .unwrap();
    store
        .transaction(|b| b.clear_history(&ConversationId::Direct(alice)))
        .unwrap();
    assert_eq!(search(&store, "jam"), vec![2]);
    assert_in_step(&store);

    // Tokens are blind under the store key: a re-key builds the index again under the new one.
    store
        .insert_message(&message(alice, 3, "jam again"))
        .unwrap();
    let (before, _) = rows(&store);
    store.rekey(&"pw".into(), &"new".into(), &[]).unwrap();
    assert!(store.search_index_built().unwrap());
    assert_in_step(&store);
    assert_ne!(
        rows(&store).0,
        before,
        "every row key is blind under the new key"
    );
    assert_eq!(search(&store, "jam"), vec![3, 2]);
    assert_eq!(search(&store, "agai"), vec![3]);
}
