//! `crypto`: the protocol crate's per-message costs, each beside the raw primitives it is built from.
//!
//! The same operations as `cargo bench -p tern-protocol --bench ratchet` (criterion), timed here directly so
//! that `tern-bench all` needs no second tool: the median of several batches, baseline and Tern interleaved.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, Result};
use tern_protocol::crypto::{self, DhKeyPair, KEY_LEN, NONCE_LEN, SecretKey};
use tern_protocol::{CardDetails, ContactCard, Envelope, Identity, PeerSessions};

use crate::{Row, Target, print_table};

const MESSAGE_LEN: usize = 1024;
const BATCHES: usize = 15;

/// Median nanoseconds per call of `f`, over [`BATCHES`] batches of `per_batch` calls.
fn ns_per_op(per_batch: usize, mut f: impl FnMut()) -> f64 {
    let mut medians = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        medians.push(start.elapsed().as_secs_f64() * 1e9 / per_batch as f64);
    }
    medians.sort_by(f64::total_cmp);
    medians[BATCHES / 2]
}

struct Party {
    identity: Identity,
    card: ContactCard,
}

fn party(name: &str) -> Result<Party> {
    let identity = Identity::generate(&mut rand::rng(), crate::NOW_MS);
    let card = ContactCard::issue(
        &identity,
        CardDetails {
            display_name: name.into(),
            revision: 1,
            ..CardDetails::default()
        },
    )?;
    Ok(Party { identity, card })
}

/// One message from `from` to `to`, encrypted and decrypted.
fn send(
    from: &Party,
    to: &Party,
    out: &mut PeerSessions,
    inbox: &mut PeerSessions,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let message = out.encrypt(
        &from.identity,
        &from.card,
        Some(&to.card),
        plaintext,
        &mut rand::rng(),
    )?;
    Ok(inbox.decrypt(&to.identity, &message)?.plaintext.to_vec())
}

fn aead_round(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Result<Vec<u8>> {
    let sealed = crypto::seal(key, nonce, b"ad", plaintext);
    crypto::open(key, nonce, b"ad", &sealed).map_err(|_| anyhow::anyhow!("aead open failed"))
}

pub fn run() -> Result<()> {
    let alice = party("Alice")?;
    let bob = party("Bob")?;
    let plaintext = vec![0x5a; MESSAGE_LEN];
    let mut a = PeerSessions::new(alice.identity.key(), bob.identity.key());
    let mut b = PeerSessions::new(bob.identity.key(), alice.identity.key());
    // Establish: a start, a reply, and one more, so neither side still repeats the Noise message.
    send(&alice, &bob, &mut a, &mut b, b"hi")?;
    send(&bob, &alice, &mut b, &mut a, b"hello")?;
    send(&alice, &bob, &mut a, &mut b, b"ready")?;

    let key = SecretKey::from_bytes([1; KEY_LEN]);
    let nonce = [2; NONCE_LEN];
    let mut failed = false;

    // A chain-step message (1 KiB) encrypt + decrypt, vs AEAD seal+open of 1 KiB plus one HKDF.
    let message_tern = ns_per_op(2000, || {
        failed |= send(&alice, &bob, &mut a, &mut b, black_box(&plaintext)).is_err();
    });
    let message_base = ns_per_op(2000, || {
        let okm = crypto::hkdf::<44>(&[0; 32], black_box(key.as_bytes()), b"label");
        failed |= aead_round(key.as_bytes(), &nonce, black_box(&plaintext)).is_err();
        black_box(okm);
    });

    // Alternating directions: every message starts a new DH ratchet step.
    let (ours, theirs) = (
        DhKeyPair::generate(&mut rand::rng()),
        DhKeyPair::generate(&mut rand::rng()),
    );
    let mut forward = false;
    let ratchet_tern = ns_per_op(300, || {
        forward = !forward;
        let result = if forward {
            send(&alice, &bob, &mut a, &mut b, black_box(&plaintext))
        } else {
            send(&bob, &alice, &mut b, &mut a, black_box(&plaintext))
        };
        failed |= result.is_err();
    });
    let x25519 = ns_per_op(300, || {
        black_box(ours.agree(black_box(theirs.public())));
    });

    // A new session (Noise X start and its response), from nothing.
    let start_tern = ns_per_op(50, || {
        let mut a = PeerSessions::new(alice.identity.key(), bob.identity.key());
        let mut b = PeerSessions::new(bob.identity.key(), alice.identity.key());
        failed |= send(&alice, &bob, &mut a, &mut b, black_box(b"hi")).is_err();
    });

    // The envelope around a 1 KiB session message: seal (ephemeral X25519) and open.
    let message = a.encrypt(
        &alice.identity,
        &alice.card,
        None,
        &plaintext,
        &mut rand::rng(),
    )?;
    let expires = crate::NOW_MS / 1000 + 3600;
    let envelope_tern = ns_per_op(300, || {
        let opened = Envelope::seal(
            &alice.identity,
            bob.identity.public(),
            black_box(&message),
            expires,
            &mut rand::rng(),
        )
        .ok()
        .and_then(|e| e.open(&bob.identity, crate::NOW_MS / 1000).ok());
        failed |= opened.is_none();
    });
    let envelope_base = ns_per_op(300, || {
        let round = ours
            .agree(black_box(theirs.public()))
            .context("agree")
            .and_then(|shared| aead_round(shared.as_bytes(), &nonce, black_box(&message)));
        failed |= round.is_err();
    });
    anyhow::ensure!(!failed, "a crypto operation failed during the benchmark");

    let us = |ns: f64| ns / 1000.0;
    print_table(
        "crypto: per-message costs of tern-protocol beside the raw primitives (median of 15 batches)",
        &[
            Row::new(
                "1 KiB message encrypt+decrypt (chain step) vs AEAD seal+open 1 KiB + HKDF",
                us(message_tern),
                us(message_base),
                "µs",
                Target::AtMost(2.0),
            ),
            Row::new(
                "1 KiB message with a DH ratchet step vs one X25519 agreement",
                us(ratchet_tern),
                us(x25519),
                "µs",
                Target::Report,
            ),
            Row::new(
                "session start (Noise X init + response) vs one X25519 agreement",
                us(start_tern),
                us(x25519),
                "µs",
                Target::Report,
            ),
            Row::new(
                "envelope seal+open (1 KiB) vs X25519 + AEAD seal+open 1 KiB",
                us(envelope_tern),
                us(envelope_base),
                "µs",
                Target::Report,
            ),
        ],
    );
    crate::note(
        "the ratio is the number of primitive-equivalents a Tern operation costs; criterion figures for the same \
         operations: `cargo bench -p tern-protocol --bench ratchet`",
    );
    Ok(())
}
