//! The offline-mail flow with the real binaries: a `tern-bootstrap` process, `tern-node send` to an offline
//! contact exits 0 once the message is deposited, and the contact's `tern-node run --bootstrap …` prints it.

mod binaries;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use binaries::{lines_of, tern_node_bin, wait_line};
use serde_json::Value;

const PASSWORD: &str = "pw";

fn tern(profile: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(tern_node_bin());
    cmd.arg("--profile")
        .arg(profile)
        .arg("--json")
        .args(args)
        .env("TERN_PASSWORD", PASSWORD)
        .env_remove("TERN_PROFILE")
        .stdin(Stdio::null());
    cmd
}

fn ok(profile: &Path, args: &[&str]) -> Vec<Value> {
    let out = tern(profile, args).output().unwrap();
    assert!(
        out.status.success(),
        "tern-node {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn send_to_an_offline_contact_deposits_and_the_contact_gets_it_later() {
    let data = tempfile::tempdir().unwrap();
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();

    let mut server = Command::new(env!("CARGO_BIN_EXE_tern-bootstrap"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server_lines = lines_of(&mut server);
    let _server = Kill(server);
    let listening = wait_line(&server_lines, "the bootstrap address", |l| {
        l.starts_with("listening ")
    });
    let bootstrap = listening.trim_start_matches("listening ").trim().to_owned();

    let init = |dir: &Path, name: &str| {
        ok(
            dir,
            &[
                "init",
                "--name",
                name,
                "--kdf-memory-kib",
                "32",
                "--kdf-iterations",
                "1",
            ],
        )[0]["invite"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let alice_invite = init(alice.path(), "Alice");
    let bob_invite = init(bob.path(), "Bob");
    ok(alice.path(), &["contact", "add", &bob_invite]);
    ok(bob.path(), &["contact", "add", &alice_invite]);

    // Bob is offline. Alice's send ends once the bootstrap node holds the message.
    let net = [
        "--bootstrap",
        &bootstrap,
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ];
    let mut send = vec!["send", "Bob", "written while you slept", "--wait", "45"];
    send.extend(net);
    let sent = ok(alice.path(), &send);
    assert_eq!(sent[0]["status"], "deposited");

    // Bob comes online through the bootstrap node and prints the message.
    let mut run_args = vec!["run"];
    run_args.extend(net);
    let mut run = tern(bob.path(), &run_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = run.stdin.take().unwrap();
    let lines = lines_of(&mut run);
    let mut run = Kill(run);
    let message = wait_line(&lines, "the message", |l| {
        l.contains("\"event\":\"message\"")
    });
    let message: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(message["text"], "written while you slept");
    assert_eq!(message["contact"], "Alice");
    writeln!(stdin, r#"{{"cmd":"quit"}}"#).unwrap();
    assert!(run.0.wait().unwrap().success());

    let inbox = ok(bob.path(), &["inbox", "Alice"]);
    assert_eq!(inbox.len(), 1, "received exactly once");
}
