//! The `tern-node` binary end to end: two profiles, `run` on one, `send` from the other, `inbox` shows it.

use std::path::Path;

use tern_testkit::cli::{Cli, Run, json_lines};

const BIN: &str = env!("CARGO_BIN_EXE_tern-node");
const PASSWORD: &str = "a long and silly passphrase";

fn cli(profile: &Path) -> Cli {
    Cli::new(BIN, profile, PASSWORD)
}

/// `tern-node run` on loopback only, its JSON lines on a channel.
fn start(profile: &Path) -> Run {
    cli(profile).spawn(&[
        "run",
        "--lan-only",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ])
}

#[test]
fn two_profiles_message_each_other_through_the_binary() {
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    let alice_invite = cli(alice.path()).init_invite("Alice");
    let bob_invite = cli(bob.path()).init_invite("Bob");
    cli(alice.path()).ok(&["contact", "add", &bob_invite]);
    cli(bob.path()).ok(&["contact", "add", &alice_invite, "--name", "Al"]);
    let contacts = cli(alice.path()).ok(&["contact", "list"]);
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["name"], "Bob");
    assert_eq!(contacts[0]["verified"], false);

    // Verification: Bob's safety number for Alice is the same as Alice's for Bob.
    let digits = contacts[0]["safety_number"].as_str().unwrap().to_owned();
    cli(bob.path()).ok(&["contact", "verify", "Al", "--safety-number", &digits]);
    let bad = cli(alice.path())
        .command(&["contact", "verify", "Bob", "--safety-number", "12345"])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a wrong safety number is an error"
    );

    // Bob stays online; Alice sends through `send`, pointed at Bob's address.
    let mut bob_run = start(bob.path());
    let listening = bob_run.wait_json("bob's listen address", |v| v["event"] == "listening");
    let addr = listening["address"].as_str().unwrap().to_owned();
    let sent = cli(alice.path()).send_to_peer("Bob", "hello from the shell", &addr);
    assert_eq!(sent[0]["status"], "delivered");
    let got = bob_run.wait_json("the message", |v| v["event"] == "message");
    assert_eq!(got["text"], "hello from the shell");
    assert_eq!(got["contact"], "Al");
    bob_run.command(r#"{"cmd":"status"}"#);
    let status = bob_run.wait_json("status", |v| v["ok"] == "status");
    assert_eq!(status["lan_only"], true);
    bob_run.quit();

    // The history, from disk, on both sides.
    let inbox = cli(bob.path()).ok(&["inbox", "Al"]);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["text"], "hello from the shell");
    assert_eq!(inbox[0]["direction"], "in");
    let outbox_side = cli(alice.path()).ok(&["inbox"]);
    assert_eq!(outbox_side[0]["status"], "delivered");
}

#[test]
fn an_undeliverable_message_stays_queued_with_its_own_exit_code() {
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    cli(alice.path()).init_invite("Alice");
    let bob_invite = cli(bob.path()).init_invite("Bob");
    cli(alice.path()).ok(&["contact", "add", &bob_invite]);
    let output = cli(alice.path())
        .command(&[
            "send",
            "Bob",
            "nobody home",
            "--wait",
            "1",
            "--lan-only",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(json_lines(&output.stdout)[0]["status"], "queued");
    let inbox = cli(alice.path()).ok(&["inbox", "Bob"]);
    assert_eq!(inbox[0]["status"], "sending");
}

#[test]
fn wrong_password_and_profile_in_use_have_their_own_exit_codes() {
    let alice = tempfile::tempdir().unwrap();
    cli(alice.path()).init_invite("Alice");
    let wrong = cli(alice.path())
        .command(&["whoami"])
        .env("TERN_PASSWORD", "not it")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("password"));

    let run = start(alice.path());
    run.wait_json("listening", |v| v["event"] == "listening");
    let busy = cli(alice.path()).command(&["whoami"]).output().unwrap();
    assert_eq!(busy.status.code(), Some(5));
    run.quit();
    cli(alice.path()).ok(&["whoami"]);
}

#[test]
fn passwd_changes_the_password_and_the_old_one_stops_working() {
    let alice = tempfile::tempdir().unwrap();
    cli(alice.path()).init_invite("Alice");
    let changed = cli(alice.path())
        .command(&["passwd"])
        .env("TERN_NEW_PASSWORD", "a brand new passphrase")
        .output()
        .unwrap();
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stdout)
    );
    let old = cli(alice.path()).command(&["whoami"]).output().unwrap();
    assert_eq!(old.status.code(), Some(4), "the old password is refused");
    let new = cli(alice.path())
        .command(&["whoami"])
        .env("TERN_PASSWORD", "a brand new passphrase")
        .output()
        .unwrap();
    assert!(new.status.success());
    assert_eq!(json_lines(&new.stdout)[0]["name"], "Alice");
}

#[test]
fn revoke_prekeys_reissues_the_invite_link() {
    let alice = tempfile::tempdir().unwrap();
    let before = cli(alice.path()).init_invite("Alice");
    let out = cli(alice.path()).ok(&["revoke-prekeys"]);
    let after = out[0]["invite"].as_str().unwrap().to_owned();
    assert_eq!(out[0]["prekeys"], "revoked");
    assert_ne!(after, before, "a new prekey means a new card");
    let whoami = cli(alice.path()).ok(&["whoami"]);
    assert_eq!(whoami[0]["invite"], after.as_str());
}

/// Base58 (Bitcoin alphabet), for links the binary must refuse.
fn base58(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = Vec::new();
    for &byte in bytes {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    std::iter::repeat_n(b'1', zeros)
        .chain(digits.iter().rev().map(|&d| ALPHABET[usize::from(d)]))
        .map(char::from)
        .collect()
}

#[test]
fn a_bad_invite_link_names_its_cause_once_a_cut_one_is_incomplete_a_mistyped_one_damaged() {
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    cli(alice.path()).init_invite("Alice");
    let bob_invite = cli(bob.path()).init_invite("Bob");
    let add = |link: &str| {
        let out = cli(alice.path())
            .command(&["contact", "add", link, "--name", "Bob"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{link} was accepted");
        let lines = json_lines(&out.stdout);
        lines[0]["error"].as_str().unwrap().to_owned()
    };

    // A checked link (docs/protocol.md §5.2) whose card is of a newer version: said as such.
    let mut newer = vec![3u8];
    newer.extend_from_slice(&[0x11; 400]);
    let check = tern_protocol::card::invite_check(&newer);
    newer.extend_from_slice(&check);
    assert_eq!(
        add(&format!("tern:{}", base58(&newer))),
        "invalid contact card: unsupported card version 3 (this build speaks 1)"
    );
    let half = &bob_invite[..bob_invite.len() / 2];
    assert_eq!(
        add(half),
        "invite link is incomplete: copy or scan the whole link again"
    );
    // One character mistyped: the checksum says so.
    let at = bob_invite.len() / 3;
    let wrong = if &bob_invite[at..=at] == "x" {
        "y"
    } else {
        "x"
    };
    let typo = format!("{}{wrong}{}", &bob_invite[..at], &bob_invite[at + 1..]);
    assert_eq!(
        add(&typo),
        "invite link is damaged (a character is wrong, missing or extra): copy or scan the whole link again"
    );
    // The whole link still works.
    cli(alice.path()).ok(&["contact", "add", &bob_invite, "--name", "Bob"]);
}
