//! `group`: the CPU cost of MLS group changes (issue 13), adding and removing one member at 10, 100 and
//! 1,000 members (the admin's commit, and one member processing it), with the bytes per commit, beside the
//! primitives a commit is built from: one HPKE seal (X25519, HKDF-SHA-256, ChaCha20-Poly1305) and one
//! Ed25519 signature. Single-threaded work timed by wall clock on an otherwise idle process.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{HpkeAeadType, HpkeConfig, HpkeKdfType, HpkeKemType};
use tern_node::group::{Group, KeyPackageIn, PendingKeyPackage, Processed, new_key_package};
use tern_protocol::Identity;

use crate::{Row, Target, print_table};

const SIZES: [usize; 3] = [10, 100, 1000];
const RUNS: usize = 9;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms_of(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

fn key_package(identity: &Identity) -> Result<(KeyPackageIn, PendingKeyPackage)> {
    let (bytes, pending) = new_key_package(identity)?;
    Ok((KeyPackageIn::parse(&bytes, Some(&identity.key()))?, pending))
}

struct Figures {
    add: f64,
    add_process: f64,
    remove: f64,
    remove_process: f64,
    add_bytes: usize,
    remove_bytes: usize,
    welcome_bytes: usize,
    state_bytes: usize,
    history_bytes: usize,
}

/// A group of `n` members (the admin, one observer who processes commits, and `n - 2` others), then
/// [`RUNS`] rounds of adding and removing one more member.
fn measure(n: usize) -> Result<Figures> {
    let mut rng = rand::rng();
    let admin = Identity::generate(&mut rng, crate::NOW_MS);
    let observer = Identity::generate(&mut rng, crate::NOW_MS);
    let mut group = Group::create(&admin, "bench")?;
    let (observer_kp, observer_pending) = key_package(&observer)?;
    let mut kps = vec![observer_kp];
    for _ in 0..n.saturating_sub(2) {
        kps.push(key_package(&Identity::generate(&mut rng, crate::NOW_MS))?.0);
    }
    let out = group.add(kps)?;
    let welcome = out.welcome.context("a welcome")?;
    let (mut seen, _) = Group::join(&welcome, &observer_pending, &observer.key())?;
    anyhow::ensure!(seen.members()?.len() == n, "group of {n}");
    let mut f = Figures {
        add: 0.0,
        add_process: 0.0,
        remove: 0.0,
        remove_process: 0.0,
        add_bytes: 0,
        remove_bytes: 0,
        welcome_bytes: 0,
        state_bytes: 0,
        history_bytes: 0,
    };
    let (mut adds, mut add_procs, mut removes, mut remove_procs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let newcomer = Identity::generate(&mut rng, crate::NOW_MS);
        let (kp, _) = key_package(&newcomer)?;
        let mut out = None;
        adds.push(ms_of(|| {
            out = Some(group.add(vec![kp])?);
            Ok(())
        })?);
        let out = out.context("commit")?;
        f.add_bytes = out.commit.len();
        f.welcome_bytes = out.welcome.as_ref().map_or(0, Vec::len);
        add_procs.push(ms_of(|| match seen.process(&out.commit)? {
            Processed::Commit(_) => Ok(()),
            other => Err(anyhow!("unexpected {other:?}")),
        })?);
        let mut out = None;
        removes.push(ms_of(|| {
            out = Some(group.remove(&[newcomer.key()])?);
            Ok(())
        })?);
        let out = out.context("commit")?;
        f.remove_bytes = out.commit.len();
        remove_procs.push(ms_of(|| match seen.process(&out.commit)? {
            Processed::Commit(_) => Ok(()),
            other => Err(anyhow!("unexpected {other:?}")),
        })?);
    }
    f.state_bytes = group.encode_state().len();
    f.history_bytes = group.encode_history().len();
    f.add = median(adds);
    f.add_process = median(add_procs);
    f.remove = median(removes);
    f.remove_process = median(remove_procs);
    Ok(f)
}

/// The removal of one member from a group of `n` whose tree is full: every member committed an update of
/// its own path after joining (§18.3), as Tern's members do. Built in about `n` steps touching only the
/// admin's state and the newest member's (each member added, joined from its Welcome, its update commit
/// processed by the admin; the others would process every commit too, which changes nothing the admin
/// computes). The last member to join is the observer. Each round removes a different member from a copy
/// of the full state, so no round sees the blanks of the round before. Returns (admin's commit ms, a
/// member processes it ms, commit bytes, seconds the build took).
fn measure_full(n: usize) -> Result<(f64, f64, usize, f64)> {
    let started = Instant::now();
    let mut rng = rand::rng();
    let admin = Identity::generate(&mut rng, crate::NOW_MS);
    let mut group = Group::create(&admin, "bench")?;
    group.update()?;
    let mut members = Vec::new();
    let mut observer = None;
    for _ in 1..n {
        let member = Identity::generate(&mut rng, crate::NOW_MS);
        let (kp, pending) = key_package(&member)?;
        let welcome = group.add(vec![kp])?.welcome.context("a welcome")?;
        let (mut joined, _) = Group::join(&welcome, &pending, &member.key())?;
        let update = joined.update()?;
        match group.process(&update.commit)? {
            Processed::Commit(summary) if summary.update => {}
            other => return Err(anyhow!("unexpected {other:?}")),
        }
        members.push(member.key());
        observer = Some(joined);
    }
    let observer = observer.context("an observer")?;
    members.pop();
    anyhow::ensure!(
        group.members()?.len() == n && !group.wants_update(),
        "a full group of {n}"
    );
    let build = started.elapsed().as_secs_f64();
    let (admin_state, observer_state) = (group.encode(), observer.encode());
    drop((group, observer));
    let (mut removes, mut processes, mut bytes) = (Vec::new(), Vec::new(), 0);
    for round in 0..RUNS {
        let mut group = Group::decode(&admin_state)?;
        let mut seen = Group::decode(&observer_state)?;
        let who = members[(round * 7919) % members.len()];
        let mut out = None;
        removes.push(ms_of(|| {
            out = Some(group.remove(&[who])?);
            Ok(())
        })?);
        let out = out.context("commit")?;
        bytes = out.commit.len();
        processes.push(ms_of(|| match seen.process(&out.commit)? {
            Processed::Commit(_) => Ok(()),
            other => Err(anyhow!("unexpected {other:?}")),
        })?);
    }
    Ok((median(removes), median(processes), bytes, build))
}

pub fn run() -> Result<()> {
    // The primitives: one HPKE seal to an X25519 key, one Ed25519 signature.
    let crypto = RustCrypto::default();
    let config = || {
        HpkeConfig(
            HpkeKemType::DhKem25519,
            HpkeKdfType::HkdfSha256,
            HpkeAeadType::ChaCha20Poly1305,
        )
    };
    let pair = crypto
        .derive_hpke_keypair(config(), &[7; 32])
        .map_err(|e| anyhow!("hpke keypair: {e:?}"))?;
    let mut seals = Vec::new();
    for _ in 0..15 {
        seals.push(
            ms_of(|| {
                for _ in 0..200 {
                    crypto
                        .hpke_seal(config(), &pair.public, b"info", b"aad", black_box(&[0; 64]))
                        .map_err(|e| anyhow!("hpke seal: {e:?}"))?;
                }
                Ok(())
            })? / 200.0,
        );
    }
    let hpke = median(seals);
    let identity = Identity::generate(&mut rand::rng(), crate::NOW_MS);
    let mut sigs = Vec::new();
    for _ in 0..15 {
        sigs.push(
            ms_of(|| {
                for _ in 0..500 {
                    black_box(identity.sign(b"tern/bench/v1", black_box(&[0; 64])));
                }
                Ok(())
            })? / 500.0,
        );
    }
    let signature = median(sigs);

    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    for n in SIZES {
        let f = measure(n)?;
        // The target is for a group as Tern keeps it: members update their paths (§18.3), so the full
        // tree's figure carries it; the blank tree's (nobody but the admin ever committed) is beside it.
        let removal_target = if n >= 1000 {
            Target::Below(50.0)
        } else {
            Target::Report
        };
        rows.push(Row::new(
            &format!("add 1 member at {n}: admin's commit vs one HPKE seal"),
            f.add,
            hpke,
            "ms",
            Target::Report,
        ));
        rows.push(Row::new(
            &format!("add 1 member at {n}: a member processes it vs one HPKE seal"),
            f.add_process,
            hpke,
            "ms",
            Target::Report,
        ));
        rows.push(Row::new(
            &format!("remove 1 member at {n}, blank tree: admin's commit vs one HPKE seal"),
            f.remove,
            hpke,
            "ms",
            Target::Report,
        ));
        rows.push(Row::new(
            &format!("remove 1 member at {n}, blank tree: a member processes it vs one HPKE seal"),
            f.remove_process,
            hpke,
            "ms",
            Target::Report,
        ));
        let (remove, process, remove_bytes, build) = measure_full(n)?;
        rows.push(Row::new(
            &format!("remove 1 member at {n}, full tree: admin's commit vs one HPKE seal"),
            remove,
            hpke,
            "ms",
            removal_target,
        ));
        rows.push(Row::new(
            &format!("remove 1 member at {n}, full tree: a member processes it vs one HPKE seal"),
            process,
            hpke,
            "ms",
            Target::Report,
        ));
        sizes.push(format!(
            "{n} members: add commit {} B + Welcome {} B, remove commit {} B ({remove_bytes} B in the \
             full tree, built in {build:.0} s), persisted state {} KiB (rewritten per message) + rollback \
             records {} KiB (rewritten at commits)",
            f.add_bytes,
            f.welcome_bytes,
            f.remove_bytes,
            f.state_bytes / 1024,
            f.history_bytes / 1024
        ));
    }
    print_table(
        &format!("group: MLS add/remove CPU time (median of {RUNS}) beside one HPKE seal"),
        &rows,
    );
    crate::note(&format!(
        "one Ed25519 signature: {:.4} ms; one HPKE seal: {hpke:.4} ms; bytes per commit: {}",
        signature,
        sizes.join("; ")
    ));
    Ok(())
}
