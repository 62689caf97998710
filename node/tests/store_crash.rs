//! The store under SIGKILL: a child process (this test binary, re-run as `crash_child_writer`) writes as
//! fast as it can — each message a history row, an outbox entry and an advanced session in one commit, and
//! every third one then marked delivered (outbox entry removed, status changed) in another — printing each
//! commit to stdout only after it returned. The parent kills it with SIGKILL at a seeded random point, many
//! times, and after every kill the profile must open cleanly and hold every message the child printed, with
//! at least the status printed for it; outbox entries must exist exactly for the undelivered ones.
//!
//! `TERN_CRASH_ITERATIONS` raises the number of kills (default 25).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tern_node::api::MessageStatus;
use tern_node::engine::Engine;
use tern_protocol::{IdentityKey, MessageId};
use tern_testkit::profile::{create, password};

const CHILD_ENV: &str = "TERN_CRASH_CHILD_PROFILE";
const CONTACT_ENV: &str = "TERN_CRASH_CHILD_CONTACT";

fn contact_key(engine: &Engine, name: &str) -> IdentityKey {
    engine.find_contact(name).unwrap().key
}

/// The writer, run in a child process by the test below; does nothing in an ordinary test run.
#[test]
fn crash_child_writer() {
    let Ok(profile) = std::env::var(CHILD_ENV) else {
        return;
    };
    let contact = std::env::var(CONTACT_ENV).unwrap();
    let mut engine = Engine::open(Path::new(&profile), &password()).unwrap();
    let to = contact_key(&engine, &contact);
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        let text = format!(
            "crash test message {n} {}",
            "x".repeat((n % 7 * 300) as usize)
        );
        let (message, entry) = engine.send_text(&to, &text).unwrap();
        writeln!(out, "sending {}", message.id).unwrap();
        out.flush().unwrap();
        if n % 3 == 0 {
            assert!(engine.delivered(&entry, MessageStatus::Delivered).unwrap());
            writeln!(out, "delivered {}", message.id).unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn store_keeps_every_acknowledged_message_across_sigkills() {
    let iterations: usize = std::env::var("TERN_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let dir = tempfile::tempdir().unwrap();
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    let bob = create(&bob_dir, "Bob");
    let bob_key = bob.key();
    {
        let mut alice = create(&alice_dir, "Alice");
        alice.add_contact(&bob.whoami().invite_link, None).unwrap();
    }
    let mut rng = ChaCha20Rng::seed_from_u64(0xc4a5_4001);
    // Every message the child reported, with the furthest status it reported.
    let mut acked: HashMap<MessageId, MessageStatus> = HashMap::new();
    let mut kills_mid_run = 0;
    for iteration in 0..iterations {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &alice_dir)
            .env(CONTACT_ENV, "Bob")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it get going (opening the profile and a seeded number of commits), then kill it at a random
        // moment of its write loop.
        let wait_for = rng.random_range(1..120);
        let mut seen = 0;
        while seen < wait_for {
            let line = lines
                .next()
                .expect("the writer stopped on its own")
                .unwrap();
            record(&mut acked, &line);
            seen += 1;
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        if status.code().is_none() {
            kills_mid_run += 1;
        }
        // Whatever it printed before it died was acknowledged.
        for line in lines {
            record(&mut acked, &line.unwrap());
        }

        let engine = Engine::open(&alice_dir, &password())
            .unwrap_or_else(|e| panic!("iteration {iteration}: the profile does not open: {e}"));
        check(&engine, bob_key, &acked, iteration);
    }
    assert_eq!(kills_mid_run, iterations, "every child died by the signal");
    let engine = Engine::open(&alice_dir, &password()).unwrap();
    let history = engine
        .store()
        .conversation_page(bob_key, None, 1_000_000)
        .unwrap()
        .messages
        .len();
    // A commit that finished just before the kill but whose line was never printed is stored too: at most
    // one per kill.
    assert!(history >= acked.len() && history <= acked.len() + iterations);
    println!(
        "store crash test: {iterations} SIGKILLs during writes, {} acknowledged messages all present \
         ({history} stored)",
        acked.len()
    );
}

fn record(acked: &mut HashMap<MessageId, MessageStatus>, line: &str) {
    let (status, id) = line.split_once(' ').unwrap_or(("", ""));
    let Some(id) = MessageId::parse(id.trim()) else {
        return;
    };
    match status {
        "sending" => {
            acked.entry(id).or_insert(MessageStatus::Sending);
        }
        "delivered" => {
            acked.insert(id, MessageStatus::Delivered);
        }
        _ => {}
    }
}

fn check(
    engine: &Engine,
    bob: IdentityKey,
    acked: &HashMap<MessageId, MessageStatus>,
    iteration: usize,
) {
    let store = engine.store();
    let outbox: Vec<MessageId> = store
        .outbox()
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    for (id, status) in acked {
        let message = store
            .message(bob, id)
            .unwrap()
            .unwrap_or_else(|| panic!("iteration {iteration}: acknowledged message {id} is gone"));
        match status {
            MessageStatus::Delivered => {
                assert_eq!(message.status, MessageStatus::Delivered, "{id}");
                assert!(!outbox.contains(id), "{id} delivered but still queued");
            }
            _ => {
                // Marked delivered by a commit whose line the kill cut off, or still waiting.
                let delivered = message.status == MessageStatus::Delivered;
                assert!(
                    delivered || message.status == MessageStatus::Sending,
                    "{id}: {:?}",
                    message.status
                );
                assert_eq!(outbox.contains(id), !delivered, "{id} outbox entry");
            }
        }
    }
}
