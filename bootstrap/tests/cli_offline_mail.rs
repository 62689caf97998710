//! The offline-mail flow with the real binaries: a `tern-bootstrap` process, `tern-node send` to an offline
//! contact exits 0 once the message is deposited, and the contact's `tern-node run --bootstrap …` prints it.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use tern_testkit::cli::{BootstrapProcess, Cli, Run, tern_node_bin};
use tern_testkit::net::LOOPBACK_TCP;

const PASSWORD: &str = "pw";

fn cli(profile: &Path) -> Cli {
    Cli::new(tern_node_bin(), profile, PASSWORD)
}

/// A `tern-bootstrap` process with its data in `data`, and its address.
fn bootstrap_node(data: &Path) -> (BootstrapProcess, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_tern-bootstrap"));
    server
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", LOOPBACK_TCP])
        .stderr(Stdio::null());
    let server = BootstrapProcess::spawn(server);
    let addr = server.addr.to_string();
    (server, addr)
}

/// The network options of a CLI command that meets others only through `bootstrap`.
fn net_args(bootstrap: &str) -> [&str; 5] {
    [
        "--bootstrap",
        bootstrap,
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]
}

/// Alice and Bob, made with the CLI, each the other's contact.
fn contacts(alice: &Path, bob: &Path) {
    let alice_invite = cli(alice).init_invite("Alice");
    let bob_invite = cli(bob).init_invite("Bob");
    cli(alice).ok(&["contact", "add", &bob_invite]);
    cli(bob).ok(&["contact", "add", &alice_invite]);
}

#[test]
fn send_to_an_offline_contact_deposits_and_the_contact_gets_it_later() {
    let data = tempfile::tempdir().unwrap();
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();

    // Killed when the guard drops, at the end of the test.
    let (_server, bootstrap) = bootstrap_node(data.path());
    contacts(alice.path(), bob.path());

    // Bob is offline. Alice's send ends once the bootstrap node holds the message.
    let net = net_args(&bootstrap);
    let mut send = vec!["send", "Bob", "written while you slept", "--wait", "45"];
    send.extend(net);
    let sent = cli(alice.path()).ok(&send);
    assert_eq!(sent[0]["status"], "deposited");

    // Bob comes online through the bootstrap node and prints the message.
    let mut run_args = vec!["run"];
    run_args.extend(net);
    let mut run = cli(bob.path()).command(&run_args);
    run.stderr(Stdio::null());
    let run = Run::spawn(run);
    let message = run.wait_line("the message", |l| l.contains("\"event\":\"message\""));
    let message: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(message["text"], "written while you slept");
    assert_eq!(message["contact"], "Alice");
    run.quit();

    let inbox = cli(bob.path()).ok(&["inbox", "Alice"]);
    assert_eq!(inbox.len(), 1, "received exactly once");
}

#[test]
fn a_file_sent_to_an_offline_contact_is_held_by_the_bootstrap_node_and_fetched_after_the_sender_left()
 {
    let data = tempfile::tempdir().unwrap();
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();

    // Killed when the guard drops, at the end of the test.
    let (_server, bootstrap) = bootstrap_node(data.path());
    contacts(alice.path(), bob.path());
    let bytes: Vec<u8> = (0..2 * 1024 * 1024 + 99u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let source = scratch.path().join("minutes.bin");
    std::fs::write(&source, &bytes).unwrap();

    // Bob is offline. Alice's send-file ends once the bootstrap node holds the file for him.
    let net = net_args(&bootstrap);
    let path = source.to_str().unwrap();
    let mut send = vec!["send-file", "Bob", path, "--wait", "60"];
    send.extend(net);
    let sent = cli(alice.path()).ok(&send);
    let result = sent.last().unwrap();
    assert_eq!(result["status"], "held", "{sent:?}");
    let id = result["id"].as_str().unwrap().to_owned();

    // Bob comes online after Alice's process ended: the offer and the file come from the bootstrap node.
    let mut run_args = vec!["run"];
    run_args.extend(net);
    let mut run = cli(bob.path()).command(&run_args);
    run.stderr(Stdio::null());
    let run = Run::spawn(run);
    run.wait_line("the file", |l| {
        l.contains("\"event\":\"file-received\"") && l.contains(&id)
    });
    run.quit();
    let dest = scratch.path().join("saved.bin");
    cli(bob.path()).ok(&["save-file", &id, dest.to_str().unwrap()]);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
}
