//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) through the same checks the fuzz targets run, so every
//! input the fuzzer ever kept is re-checked by `cargo test`, and checks that the generated seeds still mean
//! what they meant: the valid ones decode, the broken ones are refused.

mod fuzz_checks;

use std::fs;
use std::path::{Path, PathBuf};

use fuzz_checks::{TARGETS, check, corpus_name, seeds};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every regular file in a corpus directory, sorted so failures name the same file each run.
fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_saved_fuzz_input_passes_its_target_checks() {
    for target in TARGETS {
        let mut replayed = 0;
        let mut accepted = 0;
        for path in corpus_files(target) {
            let bytes = fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| check(target, &bytes));
            match result {
                Ok(Some(true)) => accepted += 1,
                Ok(Some(false)) => {}
                Ok(None) => unreachable!("{target} is listed in TARGETS"),
                Err(_) => panic!("{target}: {} fails its checks", path.display()),
            }
            replayed += 1;
        }
        assert!(replayed > 0, "{target}: no corpus files replayed");
        assert!(accepted > 0, "{target}: no corpus file decodes");
        println!("{target}: {replayed} files replayed, {accepted} accepted");
    }
}

#[test]
fn generated_seeds_decode_and_broken_seeds_are_refused() {
    for target in TARGETS {
        let seeds = seeds(target);
        assert!(
            seeds.iter().any(|s| s.valid),
            "{target}: no valid seeds generated"
        );
        for (i, seed) in seeds.iter().enumerate() {
            assert_eq!(
                check(target, &seed.bytes),
                Some(seed.valid),
                "{target}: seed {i} ({}, {} bytes, {})",
                if seed.valid { "valid" } else { "broken" },
                seed.bytes.len(),
                corpus_name(&seed.bytes),
            );
        }
    }
}
