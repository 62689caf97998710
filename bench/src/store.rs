//! `store`: a profile holding many messages (1,000,000 by default): open it, load the newest page of a
//! conversation, search every message's text. Baseline: a plain redb table of the same number of rows of
//! the same sizes, read and decrypted with raw ChaCha20-Poly1305.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tern_node::api::{Message, MessageStatus};
use tern_node::store::{KdfParams, Password, Store};
use tern_protocol::crypto::{self, KEY_LEN, NONCE_LEN};
use tern_protocol::{Identity, IdentityKey, MessageId};

use crate::{Row, Target, ms, percentile, print_table};

/// Conversations the messages are spread over.
const CONVERSATIONS: usize = 100;
/// Messages per write transaction while building the profile.
const BUILD_BATCH: usize = 20_000;
/// Messages on one page of a conversation.
pub const PAGE: usize = 50;
/// One message in this many contains the search word.
const NEEDLE_EVERY: usize = 2_000;
const NEEDLE: &str = "Marmalade";
/// One message in this many contains the rare word.
const RARE_EVERY: usize = 100_000;
const RARE: &str = "Quince";
/// A word about half the messages contain ([`WORDS`]).
const COMMON: &str = "Coffee";
/// Runs of each search (min/median/max reported).
const SEARCH_RUNS: usize = 5;
/// Search results asked for.
const SEARCH_LIMIT: usize = 100;

const WORDS: [&str; 16] = [
    "see", "you", "tomorrow", "at", "the", "station", "bring", "coffee", "maybe", "later",
    "thanks", "for", "photos", "meeting", "moved", "tonight",
];

/// A message text of 40 to 200 bytes, the search word in one of [`NEEDLE_EVERY`].
pub(crate) fn text_for(i: usize) -> String {
    let mut text = String::new();
    let words = 8 + (i * 7919) % 28;
    for w in 0..words {
        if w > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[(i * 31 + w * 17) % WORDS.len()]);
    }
    if i % NEEDLE_EVERY == NEEDLE_EVERY / 2 {
        text.push_str(" marmalade");
    }
    if i % RARE_EVERY == RARE_EVERY / 3 {
        text.push_str(" quince");
    }
    text
}

fn conversations() -> Vec<IdentityKey> {
    let mut rng = rand::rng();
    (0..CONVERSATIONS)
        .map(|_| Identity::generate(&mut rng, crate::NOW_MS).key())
        .collect()
}

/// Writes `n` messages (half incoming, half outgoing, round-robin over the conversations, one a second
/// going back from now) in transactions of [`BUILD_BATCH`].
fn build_profile(
    dir: &std::path::Path,
    password: &Password,
    convs: &[IdentityKey],
    n: usize,
) -> Result<()> {
    let mut store = Store::create(dir, password, KdfParams::INSECURE_FOR_TESTS)?;
    let mut rng = rand::rng();
    let start_ms = crate::NOW_MS - n as u64 * 1000;
    let mut i = 0;
    while i < n {
        let mut batch = store.batch()?;
        for _ in 0..BUILD_BATCH.min(n - i) {
            let at = start_ms + i as u64 * 1000;
            let outgoing = i % 2 == 0;
            let with = convs[i % convs.len()];
            let message = Message {
                id: MessageId::new_v7(at, &mut rng),
                conversation: with.into(),
                sender: (!outgoing).then_some(with),
                system: false,
                sent_at_ms: at,
                received_at_ms: at,
                text: text_for(i),
                // Read, so the unread index stays small, as in a lived-in profile.
                status: MessageStatus::Read,
                recipients: Vec::new(),
                reply_to: None,
                attachment: None,
            };
            batch.insert_message(&message)?;
            i += 1;
        }
        batch.commit()?;
    }
    Ok(())
}

const RAW: TableDefinition<'static, &'static [u8], &'static [u8]> = TableDefinition::new("raw");

/// A plain redb file with the same rows: a 40-byte key (conversation prefix, time, row) and the text
/// plus the record's fixed fields (about 60 bytes), sealed with ChaCha20-Poly1305.
fn build_raw(path: &std::path::Path, key: &[u8; KEY_LEN], n: usize) -> Result<redb::Database> {
    let db = redb::Database::create(path)?;
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(RAW)?;
        for i in 0..n {
            let row = raw_key((i % CONVERSATIONS) as u8, i as u64);
            let mut plain = vec![0u8; 60];
            plain.extend_from_slice(text_for(i).as_bytes());
            let nonce = raw_nonce(i as u64);
            let mut value = nonce.to_vec();
            value.extend_from_slice(&crypto::seal(key, &nonce, &row, &plain));
            table.insert(row.as_slice(), value.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(db)
}

fn raw_key(conv: u8, i: u64) -> [u8; 40] {
    let mut row = [0u8; 40];
    row[..16].fill(conv);
    row[16..24].copy_from_slice(&i.to_be_bytes());
    row[24..32].copy_from_slice(&i.to_le_bytes());
    row
}

fn raw_nonce(i: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&i.to_be_bytes());
    nonce
}

fn raw_open(key: &[u8; KEY_LEN], row: &[u8], value: &[u8]) -> Result<Vec<u8>> {
    ensure!(value.len() > NONCE_LEN, "raw value too short");
    let (nonce, sealed) = value.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into()?;
    crypto::open(key, &nonce, row, sealed).map_err(|_| anyhow::anyhow!("raw open failed"))
}

/// The newest page of one conversation: a reverse range read, each value opened.
fn raw_page(db: &redb::Database, key: &[u8; KEY_LEN], conv: u8) -> Result<usize> {
    let txn = db.begin_read()?;
    let table = txn.open_table(RAW)?;
    let (lo, mut hi) = (raw_key(conv, 0), raw_key(conv, u64::MAX));
    hi[24..].fill(0xff);
    let mut got = 0;
    for row in table.range(lo.as_slice()..=hi.as_slice())?.rev().take(PAGE) {
        let (k, v) = row?;
        raw_open(key, k.value(), v.value())?;
        got += 1;
    }
    Ok(got)
}

/// Every value opened and its text searched, ignoring ASCII case.
fn raw_search(db: &redb::Database, key: &[u8; KEY_LEN]) -> Result<usize> {
    let txn = db.begin_read()?;
    let table = txn.open_table(RAW)?;
    let needle = NEEDLE.to_ascii_lowercase();
    let mut hits = 0;
    for row in table.iter()? {
        let (k, v) = row?;
        let plain = raw_open(key, k.value(), v.value())?;
        let text = &plain[60..];
        if text
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        {
            hits += 1;
        }
    }
    Ok(hits)
}

fn median_of<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<(Duration, T)> {
    let mut samples = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(f()?);
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), last.context("no run")?))
}

fn tern_search(store: &Store, needle: &str, limit: usize) -> Result<Vec<Message>> {
    Ok(store.search(needle, limit)?)
}

/// Min, median and max of `runs` runs of `f`, and its last answer.
fn spread_of<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<([Duration; 3], T)> {
    let mut samples = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(f()?);
        samples.push(start.elapsed());
    }
    samples.sort();
    let (min, max) = (samples[0], samples[samples.len() - 1]);
    Ok((
        [min, percentile(&samples, 0.5), max],
        last.context("no run")?,
    ))
}

fn spread_text(s: &[Duration; 3]) -> String {
    format!("{:.1} / {:.1} / {:.1} ms", ms(s[0]), ms(s[1]), ms(s[2]))
}

pub fn run(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let profile = dir.path().join("profile");
    let password = Password::new("bench".into());
    let convs = conversations();
    let start = Instant::now();
    build_profile(&profile, &password, &convs, n)?;
    let build_time = start.elapsed();
    let raw_key_bytes = [3u8; KEY_LEN];
    let start = Instant::now();
    drop(build_raw(&dir.path().join("raw.redb"), &raw_key_bytes, n)?);
    let raw_build_time = start.elapsed();
    // Baseline for the open: redb opening the plain file and checking its integrity, as the store does.
    let start = Instant::now();
    let mut raw = redb::Database::open(dir.path().join("raw.redb"))?;
    ensure!(
        raw.check_integrity()?,
        "the raw file failed its integrity check"
    );
    let raw_open_time = start.elapsed();

    // Open the profile (Argon2id at the test cost, redb's integrity check) and load the newest page.
    let start = Instant::now();
    let store = Store::open(&profile, &password)?;
    let open_time = start.elapsed();
    let conv = convs[n.saturating_sub(1) % convs.len()];
    let start = Instant::now();
    let page = store.conversation_page(conv, None, PAGE)?;
    let first_page = start.elapsed();
    ensure!(
        page.messages.len() == PAGE.min(n / CONVERSATIONS),
        "page held {} messages",
        page.messages.len()
    );
    let (page_time, _) = median_of(21, || Ok(store.conversation_page(conv, None, PAGE)?))?;
    let last_conv = (n.saturating_sub(1) % CONVERSATIONS) as u8;
    let (raw_page_time, raw_got) = median_of(21, || raw_page(&raw, &raw_key_bytes, last_conv))?;
    ensure!(raw_got == page.messages.len(), "raw page held {raw_got}");

    let (search_spread, found) =
        spread_of(SEARCH_RUNS, || tern_search(&store, NEEDLE, SEARCH_LIMIT))?;
    let search_time = search_spread[1];
    let (rare_spread, rare) = spread_of(SEARCH_RUNS, || tern_search(&store, RARE, SEARCH_LIMIT))?;
    let rare_expected = n / RARE_EVERY + usize::from(n % RARE_EVERY > RARE_EVERY / 3);
    ensure!(
        rare.len() == rare_expected.min(SEARCH_LIMIT),
        "rare search found {} of {rare_expected}",
        rare.len()
    );
    let (common_spread, common) =
        spread_of(SEARCH_RUNS, || tern_search(&store, COMMON, SEARCH_LIMIT))?;
    ensure!(
        common.len() == SEARCH_LIMIT.min(n)
            && common.windows(2).all(|w| w[0].sort_ms() >= w[1].sort_ms()),
        "common search found {}",
        common.len()
    );
    let (raw_search_time, raw_hits) = median_of(3, || raw_search(&raw, &raw_key_bytes))?;
    let expected = n / NEEDLE_EVERY + usize::from(n % NEEDLE_EVERY > NEEDLE_EVERY / 2);
    ensure!(
        raw_hits == expected && found.len() == expected.min(SEARCH_LIMIT),
        "search found {} (raw {raw_hits}), expected {expected}",
        found.len()
    );
    ensure!(
        found.windows(2).all(|w| w[0].sort_ms() >= w[1].sort_ms()),
        "search results are not newest first"
    );
    let file_mb = |p: &std::path::Path| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1e6);

    print_table(
        &format!(
            "store: a profile with {n} messages in {CONVERSATIONS} conversations (texts of 40-200 bytes)"
        ),
        &[
            Row::new(
                &format!("newest page ({PAGE} messages) of a conversation, median of 21"),
                ms(page_time),
                ms(raw_page_time),
                "ms",
                Target::Below(10.0),
            ),
            Row::new(
                &format!("first page load right after open ({PAGE} messages)"),
                ms(first_page),
                ms(raw_page_time),
                "ms",
                Target::Below(10.0),
            ),
            Row::new(
                &format!(
                    "full-text search, case-insensitive, newest {SEARCH_LIMIT} of {expected} hits, median of {SEARCH_RUNS}"
                ),
                ms(search_time),
                ms(raw_search_time),
                "ms",
                Target::Below(300.0),
            ),
            Row::new(
                &format!(
                    "search for a rare word, all {rare_expected} hits, median of {SEARCH_RUNS}"
                ),
                ms(rare_spread[1]),
                ms(raw_search_time),
                "ms",
                Target::Below(30.0),
            ),
            Row::new(
                &format!(
                    "search for a word in about half the messages, newest {SEARCH_LIMIT}, median of {SEARCH_RUNS}"
                ),
                ms(common_spread[1]),
                ms(raw_search_time),
                "ms",
                Target::Below(300.0),
            ),
            Row::new(
                "open the profile (Argon2id at test cost + integrity check) vs redb open + integrity check",
                ms(open_time),
                ms(raw_open_time),
                "ms",
                Target::Report,
            ),
        ],
    );
    crate::note(&format!(
        "baselines: a plain redb table of the same {n} rows (same key shape, same sealed sizes): reverse range \
         read of {PAGE} rows + raw ChaCha20-Poly1305 open each (page); full scan + open + ASCII case-insensitive \
         find (search). Profile file {:.0} MB, built in {:.1} s ({:.0} messages/s in transactions of {BUILD_BATCH}); \
         raw file {:.0} MB, built in {:.1} s. Search min / median / max of {SEARCH_RUNS}: {NEEDLE:?} {}, \
         {RARE:?} {}, {COMMON:?} {}",
        file_mb(&profile.join(tern_node::store::STORE_FILE)),
        build_time.as_secs_f64(),
        n as f64 / build_time.as_secs_f64(),
        file_mb(&dir.path().join("raw.redb")),
        raw_build_time.as_secs_f64(),
        spread_text(&search_spread),
        spread_text(&rare_spread),
        spread_text(&common_spread),
    ));
    Ok(())
}
