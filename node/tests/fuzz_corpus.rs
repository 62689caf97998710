//! Replays the node's fuzz corpus (`fuzz/corpus/mailbox_wire/`) through the checks the fuzz target runs, so
//! every input the fuzzer kept is re-checked by `cargo test`, and checks that the generated seeds still mean
//! what they meant.

mod fuzz_checks;

use std::fs;

use fuzz_checks::{TARGETS, check, corpus_name, seeds};
use tern_testkit::files::fuzz_corpus;

#[test]
fn every_saved_mailbox_wire_fuzz_input_passes_its_checks() {
    for target in TARGETS {
        let mut replayed = 0;
        let mut accepted = 0;
        for path in fuzz_corpus(target) {
            let bytes = fs::read(&path).unwrap();
            match std::panic::catch_unwind(|| check(target, &bytes)) {
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
fn generated_mailbox_wire_seeds_decode_and_are_in_the_corpus() {
    for target in TARGETS {
        let seeds = seeds(target);
        assert!(seeds.iter().filter(|s| s.valid).count() >= 20, "{target}");
        let saved: Vec<String> = fuzz_corpus(target)
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
            .collect();
        for seed in seeds.iter().filter(|s| s.valid) {
            assert_eq!(check(target, &seed.bytes), Some(true));
            let name = corpus_name(&seed.bytes);
            assert!(saved.contains(&name), "{target}: seed {name} not saved");
        }
    }
}
