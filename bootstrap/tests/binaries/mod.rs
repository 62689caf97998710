//! Helpers for the tests that run the real binaries (`tern-bootstrap` and `tern-node`) as processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `tern-node` binary next to this package's binary, built first if a narrower `cargo test` left it out.
pub fn tern_node_bin() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_tern-bootstrap"))
        .parent()
        .expect("binary directory")
        .to_path_buf();
    let bin = dir.join("tern-node");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "tern-node", "--bin", "tern-node"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building tern-node failed");
    }
    bin
}

/// Lines of a child's stdout, on a channel.
pub fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("child-stdout".into())
        .spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .unwrap();
    rx
}

pub fn wait_line(rx: &mpsc::Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if pred(&line) => return line,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}
