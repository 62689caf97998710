//! The secrets check after a full session with the real binaries: a `tern-bootstrap` process and two
//! `tern-node` profiles, all logging at `debug` (trace for Tern's own crates) into files. Alice sends Bob a
//! canary while Bob is offline (deposited at the bootstrap node), Bob comes online and gets it, answers with a
//! second canary directly, and Alice changes her password. Then no file any of them wrote — profiles, logs,
//! the bootstrap data directory — holds a canary text, a password (old or new), the contact names typed,
//! either user's identity private key, or (outside `node.key` itself) the bootstrap node's private key.

mod binaries;

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use binaries::{lines_of, tern_node_bin, wait_line};
use serde_json::Value;
use tern_node::{engine::Engine, store::Password};

const LOG: &str = "debug,tern_node=trace,tern_bootstrap=trace,tern_protocol=trace";

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `tern-node` command for `profile`, its stderr (the log) appended to `log`.
fn tern(profile: &Path, password: &str, log: &Path) -> Command {
    let mut cmd = Command::new(tern_node_bin());
    cmd.arg("--profile")
        .arg(profile)
        .arg("--json")
        .env("TERN_PASSWORD", password)
        .env("TERN_LOG", LOG)
        .env_remove("TERN_PROFILE")
        .stdin(Stdio::null())
        .stderr(append(log));
    cmd
}

fn append(path: &Path) -> Stdio {
    Stdio::from(
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    )
}

fn ok(cmd: &mut Command) -> Vec<Value> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn no_canary_password_or_private_key_in_any_file_after_a_full_session() {
    let root = tempfile::tempdir().unwrap();
    let boot_dir = root.path().join("bootstrap");
    let (alice_dir, bob_dir) = (root.path().join("alice"), root.path().join("bob"));
    let logs = root.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let nonce = std::process::id();
    let alice_pw = format!("alice-password-{nonce:08x}-canary");
    let alice_new_pw = format!("alice-new-password-{nonce:08x}-canary");
    let bob_pw = format!("bob-password-{nonce:08x}-canary");
    let offline_text = format!("offline canary {nonce:08x} meet at the old mill");
    let direct_text = format!("direct canary {nonce:08x} bring the map");
    let alice_name = format!("Alice{nonce:08x}");
    let bob_name = format!("Bob{nonce:08x}");

    let mut server = Command::new(env!("CARGO_BIN_EXE_tern-bootstrap"))
        .arg("--data-dir")
        .arg(&boot_dir)
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .env("TERN_LOG", LOG)
        .stdout(Stdio::piped())
        .stderr(append(&logs.join("bootstrap.log")))
        .spawn()
        .unwrap();
    let server_lines = lines_of(&mut server);
    let server = Kill(server);
    let bootstrap = wait_line(&server_lines, "the bootstrap address", |l| {
        l.starts_with("listening ")
    })
    .trim_start_matches("listening ")
    .trim()
    .to_owned();

    let (alice_log, bob_log) = (logs.join("alice.log"), logs.join("bob.log"));
    let init = |dir: &Path, pw: &str, log: &Path, name: &str| {
        ok(tern(dir, pw, log).args([
            "init",
            "--name",
            name,
            "--kdf-memory-kib",
            "32",
            "--kdf-iterations",
            "1",
        ]))[0]["invite"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let alice_invite = init(&alice_dir, &alice_pw, &alice_log, &alice_name);
    let bob_invite = init(&bob_dir, &bob_pw, &bob_log, &bob_name);
    ok(tern(&alice_dir, &alice_pw, &alice_log).args(["contact", "add", &bob_invite]));
    ok(tern(&bob_dir, &bob_pw, &bob_log).args(["contact", "add", &alice_invite]));

    let net = [
        "--bootstrap",
        bootstrap.as_str(),
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ];
    // Bob is offline: the canary is deposited at the bootstrap node.
    let mut send = vec![
        "send",
        bob_name.as_str(),
        offline_text.as_str(),
        "--wait",
        "45",
    ];
    send.extend(net);
    assert_eq!(
        ok(tern(&alice_dir, &alice_pw, &alice_log).args(&send))[0]["status"],
        "deposited"
    );

    // Bob comes online, gets it, and answers Alice (who is offline again: deposited too).
    let mut run_args = vec!["run"];
    run_args.extend(net);
    let mut run = tern(&bob_dir, &bob_pw, &bob_log)
        .args(&run_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = run.stdin.take().unwrap();
    let lines = lines_of(&mut run);
    let mut run = Kill(run);
    let message = wait_line(&lines, "the offline canary", |l| {
        l.contains("\"event\":\"message\"")
    });
    assert!(message.contains(&offline_text), "{message}");
    writeln!(
        stdin,
        "{}",
        serde_json::json!({"cmd": "send", "to": alice_name, "text": direct_text})
    )
    .unwrap();
    wait_line(&lines, "the answer queued", |l| {
        l.contains("\"ok\":\"send\"")
    });
    // Alice is offline: the answer goes to the bootstrap node once the first direct attempt failed.
    wait_line(&lines, "the answer deposited", |l| {
        l.contains("\"event\":\"status\"") && l.contains("\"status\":\"sent\"")
    });
    writeln!(
        stdin,
        "{{\"cmd\":\"read-receipt\",\"contact\":\"{alice_name}\"}}"
    )
    .unwrap();
    wait_line(&lines, "the read receipt", |l| {
        l.contains("\"ok\":\"read-receipt\"")
    });
    writeln!(stdin, r#"{{"cmd":"quit"}}"#).unwrap();
    assert!(run.0.wait().unwrap().success());

    // Alice comes online, gets the answer, and changes her password.
    let mut run = tern(&alice_dir, &alice_pw, &alice_log)
        .args(&run_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = run.stdin.take().unwrap();
    let lines = lines_of(&mut run);
    let mut run = Kill(run);
    let answer = wait_line(&lines, "the direct canary", |l| {
        l.contains("\"event\":\"message\"")
    });
    assert!(answer.contains(&direct_text), "{answer}");
    writeln!(stdin, r#"{{"cmd":"quit"}}"#).unwrap();
    assert!(run.0.wait().unwrap().success());
    ok(tern(&alice_dir, &alice_pw, &alice_log)
        .env("TERN_NEW_PASSWORD", &alice_new_pw)
        .arg("passwd"));
    drop(server);

    // The private keys, read back through Tern itself.
    let secret = |dir: &Path, pw: &str| {
        let engine = Engine::open(dir, &Password::new(pw.to_owned())).unwrap();
        engine.identity().ed25519_secret().to_vec()
    };
    let alice_key = secret(&alice_dir, &alice_new_pw);
    let bob_key = secret(&bob_dir, &bob_pw);
    let node_key = fs::read(boot_dir.join(tern_bootstrap::NODE_KEY_FILE)).unwrap();
    assert_eq!(node_key.len(), 32, "node.key is a 32-byte seed");

    let mut secrets: Vec<(&str, Vec<u8>)> = vec![
        ("offline canary text", offline_text.clone().into_bytes()),
        ("direct canary text", direct_text.clone().into_bytes()),
        ("Alice's password", alice_pw.clone().into_bytes()),
        ("Alice's new password", alice_new_pw.clone().into_bytes()),
        ("Bob's password", bob_pw.clone().into_bytes()),
        ("Alice's identity private key", alice_key.clone()),
        ("Bob's identity private key", bob_key.clone()),
        (
            "Alice's identity private key (hex)",
            hex(&alice_key).into_bytes(),
        ),
        (
            "Bob's identity private key (hex)",
            hex(&bob_key).into_bytes(),
        ),
        (
            "bootstrap node private key (hex)",
            hex(&node_key).into_bytes(),
        ),
    ];
    // Names are typed by the user but shown in logs only as peer ids; the canary words are the test.
    secrets.push(("a canary word", b"old mill".to_vec()));
    secrets.push(("a canary word", b"bring the map".to_vec()));

    let mut checked = 0;
    let mut bytes_checked = 0;
    for dir in [&alice_dir, &bob_dir, &boot_dir, &logs] {
        for file in files_under(dir) {
            let bytes = fs::read(&file).unwrap();
            bytes_checked += bytes.len();
            checked += 1;
            for (what, secret) in &secrets {
                assert!(
                    !contains(&bytes, secret),
                    "{what} found in plaintext in {}",
                    file.display()
                );
            }
            let is_node_key =
                file.file_name().and_then(|n| n.to_str()) == Some(tern_bootstrap::NODE_KEY_FILE);
            if !is_node_key {
                assert!(
                    !contains(&bytes, &node_key),
                    "the bootstrap node's private key is in {}",
                    file.display()
                );
            }
        }
    }
    // The logs are not empty (so the check means something), and the canary check itself works: the
    // decrypted stores hold the texts.
    let log_bytes: u64 = files_under(&logs)
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .sum();
    assert!(
        log_bytes > 10_000,
        "logs too small to mean anything: {log_bytes} bytes"
    );
    let inbox = ok(tern(&bob_dir, &bob_pw, &bob_log).args(["inbox"]));
    assert!(inbox.iter().any(|m| m["text"] == offline_text.as_str()));
    println!(
        "secrets check: {checked} files ({bytes_checked} bytes, {log_bytes} of logs) hold none of {} secrets",
        secrets.len() + 1
    );
}
