//! What Tern's session layer costs, each figure measured in the same run beside the raw primitives it is made
//! of, then summarised as a table of ratios.
//!
//! Run with `cargo bench -p tern-protocol --bench ratchet` (about a minute and a half). A filter such as
//! `-- message_1k` runs one group; the table then shows the rest as not run.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tern_protocol::crypto::{self, DhKeyPair, KEY_LEN, NONCE_LEN, SecretKey};
use tern_protocol::{CardDetails, ContactCard, Envelope, Identity, PeerSessions};

const MESSAGE_LEN: usize = 1024;
const NOW_MS: u64 = 1_750_000_000_000;
const NOW_SECS: u64 = NOW_MS / 1000;

/// Two identities with their cards and a seeded RNG.
struct Pair {
    rng: ChaCha20Rng,
    alice: Identity,
    bob: Identity,
    alice_card: ContactCard,
    bob_card: ContactCard,
}

impl Pair {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let alice = Identity::generate(&mut rng, NOW_MS);
        let bob = Identity::generate(&mut rng, NOW_MS);
        let alice_card = card(&alice, "Alice");
        let bob_card = card(&bob, "Bob");
        Self {
            rng,
            alice,
            bob,
            alice_card,
            bob_card,
        }
    }

    fn fresh_sessions(&self) -> (PeerSessions, PeerSessions) {
        (
            PeerSessions::new(self.alice.key(), self.bob.key()),
            PeerSessions::new(self.bob.key(), self.alice.key()),
        )
    }

    /// One message from Alice to Bob (`forward`) or back.
    fn send(
        &mut self,
        a: &mut PeerSessions,
        b: &mut PeerSessions,
        forward: bool,
        plaintext: &[u8],
    ) -> Vec<u8> {
        let (from, from_card, to_card, to, sender, receiver) = if forward {
            (
                &self.alice,
                &self.alice_card,
                &self.bob_card,
                &self.bob,
                a,
                b,
            )
        } else {
            (
                &self.bob,
                &self.bob_card,
                &self.alice_card,
                &self.alice,
                b,
                a,
            )
        };
        let message = sender
            .encrypt(from, from_card, Some(to_card), plaintext, &mut self.rng)
            .unwrap();
        receiver.decrypt(to, &message).unwrap().plaintext.to_vec()
    }

    /// Sessions after a start and a reply, so neither side still repeats the Noise message.
    fn established(&mut self) -> (PeerSessions, PeerSessions) {
        let (mut a, mut b) = self.fresh_sessions();
        self.send(&mut a, &mut b, true, b"hi");
        self.send(&mut a, &mut b, false, b"hello");
        self.send(&mut a, &mut b, true, b"ready");
        (a, b)
    }
}

fn card(identity: &Identity, name: &str) -> ContactCard {
    ContactCard::issue(
        identity,
        CardDetails {
            display_name: name.into(),
            revision: 1,
            mailboxes: vec![],
            addresses: vec![],
        },
    )
    .unwrap()
}

fn dh_pairs() -> (DhKeyPair, DhKeyPair) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    (DhKeyPair::generate(&mut rng), DhKeyPair::generate(&mut rng))
}

fn bench_x25519(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let (ours, theirs) = dh_pairs();
    c.bench_function("x25519_agree", |b| {
        b.iter(|| ours.agree(black_box(theirs.public())))
    });
}

/// One ChaCha20-Poly1305 seal and open of `len` bytes.
fn aead_round(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    let sealed = crypto::seal(key, nonce, b"ad", plaintext);
    crypto::open(key, nonce, b"ad", &sealed).unwrap()
}

fn message_1k(c: &mut Criterion) {
    let mut g = c.benchmark_group("message_1k");
    g.throughput(Throughput::Bytes(MESSAGE_LEN as u64));
    let plaintext = vec![0x5a; MESSAGE_LEN];
    let mut pair = Pair::new(1);
    let (mut a, mut b) = pair.established();
    g.bench_function("tern", |bench| {
        bench.iter(|| pair.send(&mut a, &mut b, true, black_box(&plaintext)))
    });
    let key = SecretKey::from_bytes([1; KEY_LEN]);
    let nonce = [2; NONCE_LEN];
    g.bench_function("aead_1k_plus_hkdf", |bench| {
        bench.iter(|| {
            let okm = crypto::hkdf::<44>(&[0; 32], black_box(key.as_bytes()), b"label");
            (
                okm,
                aead_round(key.as_bytes(), &nonce, black_box(&plaintext)),
            )
        })
    });
    g.finish();
}

fn dh_ratchet_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("dh_ratchet_step");
    let plaintext = vec![0x5a; MESSAGE_LEN];
    let mut pair = Pair::new(2);
    let (mut a, mut b) = pair.established();
    let mut forward = false;
    g.bench_function("tern", |bench| {
        bench.iter(|| {
            forward = !forward;
            pair.send(&mut a, &mut b, forward, black_box(&plaintext))
        })
    });
    bench_x25519(&mut g);
    g.finish();
}

fn session_start(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_start");
    let mut pair = Pair::new(3);
    let (alice, bob) = (pair.alice.key(), pair.bob.key());
    g.bench_function("tern", |bench| {
        bench.iter_batched(
            || (PeerSessions::new(alice, bob), PeerSessions::new(bob, alice)),
            |(mut a, mut b)| {
                let first = pair.send(&mut a, &mut b, true, black_box(b"hi"));
                (a, b, first)
            },
            BatchSize::SmallInput,
        )
    });
    bench_x25519(&mut g);
    g.finish();
}

fn envelope_seal_open(c: &mut Criterion) {
    let mut g = c.benchmark_group("envelope_seal_open");
    let mut pair = Pair::new(4);
    let (mut a, _) = pair.established();
    let message = a
        .encrypt(
            &pair.alice,
            &pair.alice_card,
            None,
            &[0x5a; MESSAGE_LEN],
            &mut pair.rng,
        )
        .unwrap();
    let Pair {
        rng, alice, bob, ..
    } = &mut pair;
    g.bench_function("tern", |bench| {
        bench.iter(|| {
            let envelope =
                Envelope::seal(alice, bob.public(), black_box(&message), NOW_SECS + 60, rng)
                    .unwrap();
            envelope.open(bob, NOW_SECS).unwrap()
        })
    });
    let (ours, theirs) = dh_pairs();
    let nonce = [2; NONCE_LEN];
    g.bench_function("x25519_plus_aead_1k", |bench| {
        bench.iter(|| {
            let shared = ours.agree(black_box(theirs.public())).unwrap();
            aead_round(shared.as_bytes(), &nonce, black_box(&message))
        })
    });
    g.finish();
}

/// One row of the summary: a Tern figure against its baseline.
struct Row {
    figure: &'static str,
    group: &'static str,
    tern: &'static str,
    baseline: &'static str,
    baseline_name: &'static str,
    target: &'static str,
}

const ROWS: [Row; 4] = [
    Row {
        figure: "message_1k (encrypt+decrypt)",
        group: "message_1k",
        tern: "tern",
        baseline: "aead_1k_plus_hkdf",
        baseline_name: "AEAD 1K seal+open + HKDF",
        target: "<= 2.00x",
    },
    Row {
        figure: "dh_ratchet_step (1K msg)",
        group: "dh_ratchet_step",
        tern: "tern",
        baseline: "x25519_agree",
        baseline_name: "X25519 agreement",
        target: "report (agreements)",
    },
    Row {
        figure: "session_start (X init+resp)",
        group: "session_start",
        tern: "tern",
        baseline: "x25519_agree",
        baseline_name: "X25519 agreement",
        target: "report (agreements)",
    },
    Row {
        figure: "envelope_seal_open (1K)",
        group: "envelope_seal_open",
        tern: "tern",
        baseline: "x25519_plus_aead_1k",
        baseline_name: "X25519 + AEAD 1K",
        target: "report",
    },
];

/// Where criterion saves its results: `$CRITERION_HOME`, else `<target dir>/criterion`, the target dir
/// being `$CARGO_TARGET_DIR` or the one this bench binary was built in (`<target>/release/deps/ratchet-…`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Path::new(&target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The mean of a benchmark's latest run, in nanoseconds.
fn mean_ns(dir: &Path, group: &str, bench: &str) -> Option<f64> {
    let path = dir.join(group).join(bench).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn print_table() {
    let dir = criterion_dir();
    println!();
    println!(
        "Tern vs. its primitives (criterion means, from {})",
        dir.display()
    );
    println!(
        "| {:<30} | {:>10} | {:<26} | {:>10} | {:>7} | {:<19} |",
        "figure", "Tern", "baseline", "", "ratio", "target"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|",
        "-".repeat(32),
        "-".repeat(12),
        "-".repeat(28),
        "-".repeat(12),
        "-".repeat(9),
        "-".repeat(21)
    );
    for row in &ROWS {
        let tern = mean_ns(&dir, row.group, row.tern);
        let base = mean_ns(&dir, row.group, row.baseline);
        let (tern_s, base_s, ratio) = match (tern, base) {
            (Some(t), Some(b)) => (human(t), human(b), format!("{:.2}x", t / b)),
            _ => ("not run".into(), "not run".into(), "-".into()),
        };
        println!(
            "| {:<30} | {:>10} | {:<26} | {:>10} | {:>7} | {:<19} |",
            row.figure, tern_s, row.baseline_name, base_s, ratio, row.target
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(1500))
        .measurement_time(Duration::from_secs(4))
        .sample_size(40)
        .configure_from_args();
    message_1k(&mut c);
    dh_ratchet_step(&mut c);
    session_start(&mut c);
    envelope_seal_open(&mut c);
    c.final_summary();
    print_table();
}
