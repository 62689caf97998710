//! The engine draws every random choice from the generator it is given, so a test can replay a run.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tern_node::engine::{Engine, EngineRng};
use tern_node::store::KdfParams;
use tern_testkit::profile::{create, password};

fn seeded(seed: u64) -> EngineRng {
    Box::new(ChaCha20Rng::seed_from_u64(seed))
}

fn create_seeded(dir: &Path, seed: u64) -> Engine {
    Engine::create_with_rng(
        dir,
        "Alice",
        &password(),
        KdfParams::INSECURE_FOR_TESTS,
        seeded(seed),
    )
    .unwrap()
}

#[test]
fn the_same_seed_gives_the_same_identity_and_message_ids() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut first = create_seeded(dirs[0].path(), 7);
    let mut second = create_seeded(dirs[1].path(), 7);
    let other = create_seeded(dirs[2].path(), 8);
    assert_eq!(first.key(), second.key());
    assert_ne!(first.key(), other.key());

    // Both send to the same contact at the same instant: the ids (UUIDv7, random bits after the time)
    // are drawn from generators in the same state.
    let bob = create(dirs[3].path(), "Bob");
    let link = bob.card().invite_link();
    first.add_contact(&link, None).unwrap();
    second.add_contact(&link, None).unwrap();
    let at = 1_700_000_000_000;
    let (a, _) = first.send_text_at(&bob.key(), "hello", at).unwrap();
    let (b, _) = second.send_text_at(&bob.key(), "hello", at).unwrap();
    assert_eq!(a.id, b.id);

    // A generator given later replaces the first one.
    second.set_rng(seeded(99));
    let (c, _) = first.send_text_at(&bob.key(), "again", at).unwrap();
    let (d, _) = second.send_text_at(&bob.key(), "again", at).unwrap();
    assert_ne!(c.id, d.id);
}
