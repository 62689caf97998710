//! The secrets check after a full session with the real binaries: a `tern-bootstrap` process and two
//! `tern-node` profiles, all logging at `debug` (trace for Tern's own crates) into files. Alice sends Bob a
//! canary while Bob is offline (deposited at the bootstrap node), Bob comes online and gets it, answers with a
//! second canary directly, and Alice changes her password. Then no file any of them wrote — profiles, logs,
//! the bootstrap data directory — holds a canary text, a password (old or new), the contact names typed,
//! either user's identity private key, or (outside `node.key` itself) the bootstrap node's private key.

use std::{fs, path::Path, process::Command};

use tern_node::{engine::Engine, store::Password};
use tern_testkit::cli::{BootstrapProcess, Cli, append, ok, tern_node_bin};
use tern_testkit::files::{contains, files_under};
use tern_testkit::net::LOOPBACK_TCP;

const LOG: &str = "debug,tern_node=trace,tern_bootstrap=trace,tern_protocol=trace";

/// `tern-node` for `profile`, its stderr (the log) appended to `log`.
fn tern(profile: &Path, password: &str, log: &Path) -> Cli {
    Cli::new(tern_node_bin(), profile, password)
        .env("TERN_LOG", LOG)
        .log_to(log)
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

    let mut server = Command::new(env!("CARGO_BIN_EXE_tern-bootstrap"));
    server
        .arg("--data-dir")
        .arg(&boot_dir)
        .args(["--listen", LOOPBACK_TCP])
        .env("TERN_LOG", LOG)
        .stderr(append(&logs.join("bootstrap.log")));
    let server = BootstrapProcess::spawn(server);
    let bootstrap = server.addr.to_string();

    let (alice_log, bob_log) = (logs.join("alice.log"), logs.join("bob.log"));
    let alice = tern(&alice_dir, &alice_pw, &alice_log);
    let bob = tern(&bob_dir, &bob_pw, &bob_log);
    let alice_invite = alice.init_invite(&alice_name);
    let bob_invite = bob.init_invite(&bob_name);
    alice.ok(&["contact", "add", &bob_invite]);
    bob.ok(&["contact", "add", &alice_invite]);

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
    assert_eq!(alice.ok(&send)[0]["status"], "deposited");

    // Bob comes online, gets it, and answers Alice (who is offline again: deposited too).
    let mut run_args = vec!["run"];
    run_args.extend(net);
    let mut run = bob.spawn(&run_args);
    let message = run.wait_line("the offline canary", |l| {
        l.contains("\"event\":\"message\"")
    });
    assert!(message.contains(&offline_text), "{message}");
    run.command(
        &serde_json::json!({"cmd": "send", "to": alice_name, "text": direct_text}).to_string(),
    );
    run.wait_line("the answer queued", |l| l.contains("\"ok\":\"send\""));
    // Alice is offline: the answer goes to the bootstrap node once the first direct attempt failed.
    run.wait_line("the answer deposited", |l| {
        l.contains("\"event\":\"status\"") && l.contains("\"status\":\"sent\"")
    });
    run.command(&format!(
        "{{\"cmd\":\"read-receipt\",\"contact\":\"{alice_name}\"}}"
    ));
    run.wait_line("the read receipt", |l| {
        l.contains("\"ok\":\"read-receipt\"")
    });
    run.quit();

    // Alice comes online, gets the answer, and changes her password.
    let run = alice.spawn(&run_args);
    let answer = run.wait_line("the direct canary", |l| l.contains("\"event\":\"message\""));
    assert!(answer.contains(&direct_text), "{answer}");
    run.quit();
    ok(alice
        .command(&["passwd"])
        .env("TERN_NEW_PASSWORD", &alice_new_pw));
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
    let inbox = bob.ok(&["inbox"]);
    assert!(inbox.iter().any(|m| m["text"] == offline_text.as_str()));
    println!(
        "secrets check: {checked} files ({bytes_checked} bytes, {log_bytes} of logs) hold none of {} secrets",
        secrets.len() + 1
    );
}
