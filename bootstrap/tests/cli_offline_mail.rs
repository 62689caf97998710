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

#[test]
fn send_to_an_offline_contact_deposits_and_the_contact_gets_it_later() {
    let data = tempfile::tempdir().unwrap();
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();

    let mut server = Command::new(env!("CARGO_BIN_EXE_tern-bootstrap"));
    server
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", LOOPBACK_TCP])
        .stderr(Stdio::null());
    let server = BootstrapProcess::spawn(server);
    let bootstrap = server.addr.to_string();

    let alice_invite = cli(alice.path()).init_invite("Alice");
    let bob_invite = cli(bob.path()).init_invite("Bob");
    cli(alice.path()).ok(&["contact", "add", &bob_invite]);
    cli(bob.path()).ok(&["contact", "add", &alice_invite]);

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
