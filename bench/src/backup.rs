//! `backup`: an encrypted backup (docs/protocol.md §20) of a profile with many messages (100,000 by
//! default) in 100 conversations, and its restore into a new profile, beside copying the profile
//! directory with `cp -r` in the same run; archive size beside the profile's size; peak resident memory.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use tern_node::api::{Message, MessageStatus};
use tern_node::backup::restore;
use tern_node::engine::Engine;
use tern_node::profile::Profile;
use tern_node::store::{KdfParams, Password};
use tern_protocol::{CardDetails, ContactCard, Identity, MessageId};

use crate::report::{peak_rss, reset_peak_rss};
use crate::{Row, Target, ms, print_table};

const CONVERSATIONS: usize = 100;
const BUILD_BATCH: usize = 20_000;

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            dir_bytes(&path)
        } else {
            entry.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

fn build(dir: &Path, password: &Password, n: usize) -> Result<Profile> {
    let mut engine = Engine::create(dir, "Bench", password, KdfParams::INSECURE_FOR_TESTS)?;
    let mut rng = rand::rng();
    let mut contacts = Vec::with_capacity(CONVERSATIONS);
    for i in 0..CONVERSATIONS {
        let identity = Identity::generate(&mut rng, crate::NOW_MS);
        let card = ContactCard::issue(
            &identity,
            CardDetails {
                display_name: format!("Contact {i}"),
                revision: crate::NOW_MS,
                ..CardDetails::default()
            },
        )?;
        engine.add_contact(&card.invite_link(), None)?;
        contacts.push(identity.key());
    }
    let start_ms = crate::NOW_MS - n as u64 * 1000;
    let mut i = 0;
    while i < n {
        let mut batch = engine.store_mut().batch()?;
        for _ in 0..BUILD_BATCH.min(n - i) {
            let at = start_ms + i as u64 * 1000;
            let outgoing = i % 2 == 0;
            let with = contacts[i % contacts.len()];
            batch.insert_message(&Message {
                id: MessageId::new_v7(at, &mut rng),
                conversation: with.into(),
                sender: (!outgoing).then_some(with),
                system: false,
                sent_at_ms: at,
                received_at_ms: at,
                text: crate::store::text_for(i),
                status: MessageStatus::Read,
                recipients: Vec::new(),
                reply_to: None,
                attachment: None,
            })?;
            i += 1;
        }
        batch.commit()?;
    }
    Ok(Profile::from(engine))
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed(), out))
}

pub fn run(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let password = Password::new("bench".into());
    let source = dir.path().join("profile");
    let profile = build(&source, &password, n)?;
    let profile_bytes = dir_bytes(&source);

    let (copy_time, ()) = timed(|| {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(&source)
            .arg(dir.path().join("copy"))
            .status()?;
        ensure!(status.success(), "cp -r failed");
        Ok(())
    })?;
    let archive = dir.path().join("profile.tern");
    reset_peak_rss();
    let rss_before = peak_rss();
    let (backup_time, (code, summary)) = timed(|| Ok(profile.backup(&archive)?))?;
    let backup_rss = peak_rss();
    ensure!(
        summary.messages == n as u64,
        "the backup holds {} messages",
        summary.messages
    );
    drop(profile);

    let restored = dir.path().join("restored");
    reset_peak_rss();
    let (restore_time, got) = timed(|| {
        Ok(restore(
            &archive,
            &code,
            &restored,
            &password,
            KdfParams::INSECURE_FOR_TESTS,
        )?)
    })?;
    let restore_rss = peak_rss();
    ensure!(
        got.messages == n as u64,
        "the restore brought {} messages",
        got.messages
    );

    let mb = |b: u64| b as f64 / 1e6;
    print_table(
        &format!("backup: a profile with {n} messages in {CONVERSATIONS} conversations"),
        &[
            Row::new(
                "backup (seal and write the archive) vs cp -r of the profile",
                ms(backup_time),
                ms(copy_time),
                "ms",
                Target::Report,
            ),
            Row::new(
                "restore (read, open, build a new profile) vs cp -r",
                ms(restore_time),
                ms(copy_time),
                "ms",
                Target::Report,
            ),
            Row::new(
                "archive size vs profile directory size",
                mb(summary.archive_bytes),
                mb(profile_bytes),
                "MB",
                Target::Report,
            ),
            Row::new(
                "peak resident memory during the backup (process)",
                mb(backup_rss),
                mb(rss_before),
                "MB",
                Target::Report,
            ),
            Row::new(
                "peak resident memory during the restore (process)",
                mb(restore_rss),
                mb(rss_before),
                "MB",
                Target::Report,
            ),
        ],
    );
    crate::note(
        "baselines: `cp -r` of the profile directory, timed in the same run; memory baselines are the process's \
         peak before the backup (the profile was just built in it). Restore uses the test Argon2id cost.",
    );
    Ok(())
}
