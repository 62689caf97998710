//! `tern-node backup` and `tern-node restore` end to end through the binary.

use std::path::Path;

use tern_testkit::cli::{Cli, FAST_KDF, json_lines};

const BIN: &str = env!("CARGO_BIN_EXE_tern-node");
const PASSWORD: &str = "a long and silly passphrase";

fn cli(profile: &Path) -> Cli {
    Cli::new(BIN, profile, PASSWORD)
}

/// What a command printed (errors go to stdout as JSON under `--json`).
fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn backup_prints_a_code_once_and_restore_brings_the_profile_back_and_refuses_bad_input() {
    let root = tempfile::tempdir().unwrap();
    let (alice, bob) = (root.path().join("alice"), root.path().join("bob"));
    let me = cli(&alice).init("Alice");
    let bob_invite = cli(&bob).init_invite("Bob");
    cli(&alice).ok(&["contact", "add", &bob_invite]);

    let archive = root.path().join("alice.tern");
    let out = cli(&alice).ok(&["backup", archive.to_str().unwrap()]);
    assert_eq!(out.len(), 1);
    let code = out[0]["code"].as_str().unwrap().to_owned();
    assert_eq!(code.replace(' ', "").len(), 64);
    assert_eq!(out[0]["contacts"], 1);

    // Writing the same file again is refused.
    let again = cli(&alice)
        .command(&["backup", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(said(&again).contains("exists already"));

    let restored = root.path().join("restored");
    let restore = |dir: &Path, code: &str| {
        let mut args = vec!["restore", archive.to_str().unwrap()];
        args.extend(FAST_KDF);
        cli(dir)
            .env("TERN_RECOVERY_CODE", code)
            .command(&args)
            .output()
            .unwrap()
    };

    // A code for another archive, then a mistyped one: refused, nothing created.
    let mut wrong = code.clone();
    wrong.replace_range(0..1, if code.starts_with('A') { "B" } else { "A" });
    let failed = restore(&restored, &wrong);
    assert!(!failed.status.success());
    assert!(said(&failed).contains("mistyped"), "{}", said(&failed));
    assert!(!restored.exists());

    let done = restore(&restored, &code);
    assert!(done.status.success(), "{}", said(&done));
    assert_eq!(json_lines(&done.stdout)[0]["contacts"], 1);
    let whoami = cli(&restored).ok(&["whoami"]);
    assert_eq!(whoami[0]["peer_id"], me["peer_id"]);
    let contacts = cli(&restored).ok(&["contact", "list"]);
    assert_eq!(contacts[0]["name"], "Bob");

    // Restoring over a profile is refused, and leaves it as it was.
    let over = restore(&alice, &code);
    assert!(!over.status.success());
    assert!(said(&over).contains("already holds a profile"));
    assert_eq!(cli(&alice).ok(&["contact", "list"]).len(), 1);
}
