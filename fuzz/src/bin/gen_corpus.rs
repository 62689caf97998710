//! Writes the seed corpora: for every fuzz target, a few valid encodings made by a seeded Alice/Bob pair and
//! some broken copies, each into `fuzz/corpus/<target>/` under the hex SHA-256 of its contents. Files already
//! there are kept, so running it again after a fuzzing session only adds what is missing.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --bin gen_corpus`

use std::path::Path;

#[path = "../../../protocol/tests/fuzz_checks/mod.rs"]
mod checks;

#[path = "../../../node/tests/fuzz_checks/mod.rs"]
mod node_checks;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in checks::TARGETS {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        let seeds = checks::seeds(target);
        let mut written = 0;
        for seed in &seeds {
            let path = dir.join(checks::corpus_name(&seed.bytes));
            if !path.exists() {
                std::fs::write(&path, &seed.bytes)?;
                written += 1;
            }
            let accepted = checks::check(target, &seed.bytes);
            if accepted != Some(seed.valid) {
                eprintln!(
                    "warning: {target}: {} seed {} is {}",
                    if seed.valid { "valid" } else { "broken" },
                    path.display(),
                    if seed.valid { "refused" } else { "accepted" },
                );
            }
        }
        println!(
            "{target}: {} seeds ({} valid), {written} new files in {}",
            seeds.len(),
            seeds.iter().filter(|s| s.valid).count(),
            dir.display()
        );
    }
    for target in node_checks::TARGETS {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        let seeds = node_checks::seeds(target);
        let mut written = 0;
        for seed in &seeds {
            let path = dir.join(node_checks::corpus_name(&seed.bytes));
            if !path.exists() {
                std::fs::write(&path, &seed.bytes)?;
                written += 1;
            }
        }
        println!(
            "{target}: {} seeds ({} valid), {written} new files in {}",
            seeds.len(),
            seeds.iter().filter(|s| s.valid).count(),
            dir.display()
        );
    }
    Ok(())
}
