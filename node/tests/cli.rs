//! The `tern-node` binary end to end: two profiles, `run` on one, `send` from the other, `inbox` shows it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tern-node");
const PASSWORD: &str = "a long and silly passphrase";

fn tern(profile: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--profile")
        .arg(profile)
        .arg("--json")
        .args(args)
        .env("TERN_PASSWORD", PASSWORD)
        .env_remove("TERN_PROFILE")
        .stdin(Stdio::null());
    cmd
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn ok(profile: &Path, args: &[&str]) -> Vec<Value> {
    let output = tern(profile, args).output().unwrap();
    assert!(
        output.status.success(),
        "tern-node {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    json_lines(&output)
}

fn init(profile: &Path, name: &str) -> String {
    let out = ok(
        profile,
        &[
            "init",
            "--name",
            name,
            "--kdf-memory-kib",
            "32",
            "--kdf-iterations",
            "1",
        ],
    );
    out[0]["invite"].as_str().unwrap().to_owned()
}

/// A `tern-node run` child whose JSON lines arrive on a channel.
struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
}

impl Running {
    fn start(profile: &Path) -> Self {
        let mut child = tern(
            profile,
            &[
                "run",
                "--lan-only",
                "--no-mdns",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("run-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(value) = serde_json::from_str::<Value>(&line)
                        && tx.send(value).is_err()
                    {
                        break;
                    }
                }
            })
            .unwrap();
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    fn command(&mut self, json: &str) {
        writeln!(self.stdin, "{json}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn quit(mut self) {
        self.command(r#"{"cmd":"quit"}"#);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "run exited with {status}");
    }
}

#[test]
fn two_profiles_message_each_other_through_the_binary() {
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    let alice_invite = init(alice.path(), "Alice");
    let bob_invite = init(bob.path(), "Bob");
    ok(alice.path(), &["contact", "add", &bob_invite]);
    ok(
        bob.path(),
        &["contact", "add", &alice_invite, "--name", "Al"],
    );
    let contacts = ok(alice.path(), &["contact", "list"]);
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["name"], "Bob");
    assert_eq!(contacts[0]["verified"], false);

    // Verification: Bob's safety number for Alice is the same as Alice's for Bob.
    let digits = contacts[0]["safety_number"].as_str().unwrap().to_owned();
    ok(
        bob.path(),
        &["contact", "verify", "Al", "--safety-number", &digits],
    );
    let bad = tern(
        alice.path(),
        &["contact", "verify", "Bob", "--safety-number", "12345"],
    )
    .output()
    .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a wrong safety number is an error"
    );

    // Bob stays online; Alice sends through `send`, pointed at Bob's address.
    let mut bob_run = Running::start(bob.path());
    let listening = bob_run.wait_for("bob's listen address", |v| v["event"] == "listening");
    let addr = listening["address"].as_str().unwrap().to_owned();
    let sent = ok(
        alice.path(),
        &[
            "send",
            "Bob",
            "hello from the shell",
            "--wait",
            "30",
            "--lan-only",
            "--no-mdns",
            "--peer",
            &addr,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ],
    );
    assert_eq!(sent[0]["status"], "delivered");
    let got = bob_run.wait_for("the message", |v| v["event"] == "message");
    assert_eq!(got["text"], "hello from the shell");
    assert_eq!(got["contact"], "Al");
    bob_run.command(r#"{"cmd":"status"}"#);
    let status = bob_run.wait_for("status", |v| v["ok"] == "status");
    assert_eq!(status["lan_only"], true);
    bob_run.quit();

    // The history, from disk, on both sides.
    let inbox = ok(bob.path(), &["inbox", "Al"]);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["text"], "hello from the shell");
    assert_eq!(inbox[0]["direction"], "in");
    let outbox_side = ok(alice.path(), &["inbox"]);
    assert_eq!(outbox_side[0]["status"], "delivered");
}

#[test]
fn an_undeliverable_message_stays_queued_with_its_own_exit_code() {
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    init(alice.path(), "Alice");
    let bob_invite = init(bob.path(), "Bob");
    ok(alice.path(), &["contact", "add", &bob_invite]);
    let output = tern(
        alice.path(),
        &[
            "send",
            "Bob",
            "nobody home",
            "--wait",
            "1",
            "--lan-only",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(json_lines(&output)[0]["status"], "queued");
    let inbox = ok(alice.path(), &["inbox", "Bob"]);
    assert_eq!(inbox[0]["status"], "sending");
}

#[test]
fn wrong_password_and_profile_in_use_have_their_own_exit_codes() {
    let alice = tempfile::tempdir().unwrap();
    init(alice.path(), "Alice");
    let wrong = tern(alice.path(), &["whoami"])
        .env("TERN_PASSWORD", "not it")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("password"));

    let run = Running::start(alice.path());
    run.wait_for("listening", |v| v["event"] == "listening");
    let busy = tern(alice.path(), &["whoami"]).output().unwrap();
    assert_eq!(busy.status.code(), Some(5));
    run.quit();
    ok(alice.path(), &["whoami"]);
}

#[test]
fn passwd_changes_the_password_and_the_old_one_stops_working() {
    let alice = tempfile::tempdir().unwrap();
    init(alice.path(), "Alice");
    let changed = tern(alice.path(), &["passwd"])
        .env("TERN_NEW_PASSWORD", "a brand new passphrase")
        .output()
        .unwrap();
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stdout)
    );
    let old = tern(alice.path(), &["whoami"]).output().unwrap();
    assert_eq!(old.status.code(), Some(4), "the old password is refused");
    let new = tern(alice.path(), &["whoami"])
        .env("TERN_PASSWORD", "a brand new passphrase")
        .output()
        .unwrap();
    assert!(new.status.success());
    assert_eq!(json_lines(&new)[0]["name"], "Alice");
}
