//! A protocol 1.0 peer and this build (1.1) talk to each other: the `tern-node` binary of c046cde, the last
//! main before any 1.1 change, against this one. Each adds the other (the 1.0 peer from this build's 1.0
//! invite link, since 1.0 cannot read checked links), they write both ways, this build re-issues its card
//! (a card update, content kind 5, reaches the 1.0 peer, which reports an unknown kind and goes on), and
//! they write both ways again.
//!
//! Needs the 1.0 binary, so it is ignored by default; `.ci/run` builds c046cde's `tern-node` and runs it:
//! `TERN_NODE_1_0=/path/to/tern-node cargo test --workspace --test interop_1_0 -- --ignored`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tern_testkit::cli::{Cli, Run};

const BIN: &str = env!("CARGO_BIN_EXE_tern-node");
const PASSWORD: &str = "a long and silly passphrase";

fn old_bin() -> PathBuf {
    let path = std::env::var_os("TERN_NODE_1_0")
        .map(PathBuf::from)
        .expect("set TERN_NODE_1_0 to the tern-node binary of protocol 1.0 (c046cde)");
    assert!(path.is_file(), "{} is not a file", path.display());
    path
}

/// `run` on loopback only, dialling `peer` if given.
fn start(cli: &Cli, peer: Option<&str>) -> Run {
    let mut args = vec![
        "run",
        "--lan-only",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ];
    if let Some(peer) = peer {
        args.extend(["--peer", peer]);
    }
    cli.spawn(&args)
}

fn listening(run: &Run) -> String {
    let line = run.wait_json("a listen address", |v| v["event"] == "listening");
    line["address"].as_str().unwrap().to_owned()
}

fn send(run: &mut Run, to: &str, text: &str) {
    run.command(&serde_json::json!({"cmd": "send", "to": to, "text": text}).to_string());
}

fn received(run: &Run, text: &str) -> Value {
    run.wait_json(text, |v| v["event"] == "message" && v["text"] == text)
}

fn profile(dir: &Path, bin: PathBuf) -> Cli {
    Cli::new(bin, dir, PASSWORD)
}

#[test]
#[ignore = "needs the protocol 1.0 tern-node binary in TERN_NODE_1_0 (.ci/run builds it)"]
fn a_1_0_peer_and_a_1_1_peer_talk_both_ways_across_a_card_update() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let old = profile(dirs[0].path(), old_bin());
    let new = profile(dirs[1].path(), PathBuf::from(BIN));
    let old_invite = old.init_invite("Old");
    new.init("New");
    let whoami = new.ok(&["whoami"]).swap_remove(0);
    let checked = whoami["invite"].as_str().unwrap().to_owned();
    let unchecked = whoami["invite_1_0"].as_str().unwrap().to_owned();

    // 1.1 reads the 1.0 link; 1.0 refuses the checked link (as docs/protocol.md §5.2 says) and takes the
    // 1.0 form of the same card.
    new.ok(&["contact", "add", &old_invite]);
    let refused = old.command(&["contact", "add", &checked]).output().unwrap();
    assert!(
        !refused.status.success(),
        "a 1.0 reader took a checked link"
    );
    old.ok(&["contact", "add", &unchecked]);

    let mut old_run = start(&old, None);
    let old_addr = listening(&old_run);
    let mut new_run = start(&new, Some(&old_addr));
    listening(&new_run);
    send(&mut new_run, "Old", "hello from 1.1");
    let got = received(&old_run, "hello from 1.1");
    assert_eq!(got["contact"], "New");
    send(&mut old_run, "New", "hello from 1.0");
    received(&new_run, "hello from 1.0");
    new_run.quit();

    // The 1.1 profile re-issues its card offline; the card update waits in its outbox for the 1.0 peer.
    let revoked = new.ok(&["revoke-prekeys"]).swap_remove(0);
    assert_eq!(revoked["prekeys"], "revoked");
    let mut new_run = start(&new, Some(&old_addr));
    let unknown = old_run.wait_json("the card update, as an unknown kind", |v| {
        v["event"] == "unknown-content"
    });
    assert_eq!(unknown["kind"], 5);
    assert_eq!(unknown["contact"], "New");

    // Both ways again, on the same sessions.
    send(&mut new_run, "Old", "after the card update");
    received(&old_run, "after the card update");
    send(&mut old_run, "New", "still reading you");
    received(&new_run, "still reading you");
    new_run.quit();
    old_run.quit();
}
