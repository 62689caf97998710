//! Walking a directory and searching its files' bytes: the checks that nothing secret was written in
//! plaintext.

use std::fs;
use std::path::{Path, PathBuf};

/// Every file below `dir`, at any depth.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Whether `needle` (not empty) occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether any file under `dir` holds `needle`.
pub fn profile_holds(dir: &Path, needle: &[u8]) -> bool {
    files_under(dir)
        .iter()
        .any(|f| contains(&fs::read(f).unwrap_or_default(), needle))
}

/// Every regular file in the fuzz corpus of `target` (`fuzz/corpus/<target>/` in the workspace), sorted so
/// a failure names the same file each run.
pub fn fuzz_corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}
