//! Drivers for the real binaries: a profile used through `tern-node --json`, a running `tern-node run`
//! whose lines arrive on a channel, and a `tern-bootstrap` process.
//!
//! Cargo tells only the package that owns a binary where it is (`CARGO_BIN_EXE_<name>`): a test of that
//! package passes `env!("CARGO_BIN_EXE_…")` in; any other finds `tern-node` with [`tern_node_bin`].

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use libp2p::{Multiaddr, PeerId};
use serde_json::Value;

use crate::net::{peer_of, tcp_socket};
use crate::wait::TIMEOUT;

/// `tern-node init` arguments for a fast, insecure key derivation (tests only).
pub const FAST_KDF: [&str; 4] = ["--kdf-memory-kib", "32", "--kdf-iterations", "1"];

/// The `tern-node` binary in the target directory this test runs from, built first if a narrower
/// `cargo test` (of another package) left it out.
pub fn tern_node_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().expect("the test binary's directory");
    // Integration tests run from `<target>/<profile>/deps`; binaries live in `<target>/<profile>`.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("the profile directory");
    }
    let bin = dir.join(format!("tern-node{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "tern-node", "--bin", "tern-node"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building tern-node failed");
        assert!(bin.exists(), "{} is missing after the build", bin.display());
    }
    bin
}

/// The JSON lines of a command's stdout; panics on a line that is not JSON.
pub fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Runs `cmd` to its end, asserts that it succeeded, and returns its JSON lines.
pub fn ok(cmd: &mut Command) -> Vec<Value> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out.stdout)
}

/// A profile directory used through the `tern-node` binary: `--profile DIR --json`, the password in
/// `TERN_PASSWORD`, no `TERN_PROFILE` from the environment, stdin closed.
#[derive(Debug, Clone)]
pub struct Cli {
    bin: PathBuf,
    dir: PathBuf,
    password: String,
    envs: Vec<(String, String)>,
    log: Option<PathBuf>,
}

impl Cli {
    pub fn new(bin: impl Into<PathBuf>, dir: impl Into<PathBuf>, password: &str) -> Self {
        Self {
            bin: bin.into(),
            dir: dir.into(),
            password: password.to_owned(),
            envs: Vec::new(),
            log: None,
        }
    }

    /// Sets an environment variable for every command.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Appends every command's stderr (its log) to `path`.
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `tern-node --profile DIR --json ARGS…`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--profile")
            .arg(&self.dir)
            .arg("--json")
            .args(args)
            .env("TERN_PASSWORD", &self.password)
            .env_remove("TERN_PROFILE")
            .stdin(Stdio::null());
        for (key, value) in &self.envs {
            cmd.env(key, value);
        }
        if let Some(log) = &self.log {
            cmd.stderr(append(log));
        }
        cmd
    }

    /// Runs `ARGS`, asserts success, returns the JSON lines.
    pub fn ok(&self, args: &[&str]) -> Vec<Value> {
        ok(&mut self.command(args))
    }

    /// `init --name NAME` with [`FAST_KDF`]; returns the first line (`invite`, `peer_id`, …).
    pub fn init(&self, name: &str) -> Value {
        let mut args = vec!["init", "--name", name];
        args.extend(FAST_KDF);
        self.ok(&args).swap_remove(0)
    }

    /// `init` as [`Cli::init`], returning the invite link.
    pub fn init_invite(&self, name: &str) -> String {
        self.init(name)["invite"].as_str().unwrap().to_owned()
    }

    /// `send TO TEXT --wait 30` on loopback only, dialling `peer` (a running node's listen address);
    /// asserts success and returns the JSON lines.
    pub fn send_to_peer(&self, to: &str, text: &str, peer: &str) -> Vec<Value> {
        self.ok(&[
            "send",
            to,
            text,
            "--wait",
            "30",
            "--lan-only",
            "--no-mdns",
            "--peer",
            peer,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
    }

    /// Starts `ARGS` (usually `run …`) with stdin and stdout piped.
    pub fn spawn(&self, args: &[&str]) -> Run {
        Run::spawn(self.command(args))
    }
}

/// A file opened for appending, as a child's stdio.
pub fn append(path: &Path) -> Stdio {
    Stdio::from(
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    )
}

/// Lines of a child's stdout, on a channel (read by a thread of their own, so the child never blocks on a
/// full pipe).
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

/// The first line on `rx` for which `pred` holds (the others are dropped); panics naming `what` after
/// [`TIMEOUT`].
pub fn wait_line(rx: &mpsc::Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if pred(&line) => return line,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// A child killed (and reaped) when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `tern-node run` (or any long-lived command): commands go in on stdin, lines come out on a
/// channel; killed when dropped.
#[derive(Debug)]
pub struct Run {
    child: KillOnDrop,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Run {
    /// Spawns `cmd` with stdin and stdout piped (stderr as `cmd` has it).
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = lines_of(&mut child);
        Self {
            child: KillOnDrop(child),
            stdin,
            lines,
        }
    }

    /// The first line for which `pred` holds (see [`wait_line`]).
    pub fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_line(&self.lines, what, pred)
    }

    /// The first JSON line for which `pred` holds; lines that are not JSON are skipped.
    pub fn wait_json(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let line = self.wait_line(what, |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| pred(&v))
        });
        serde_json::from_str(&line).unwrap()
    }

    /// Writes one line (a JSON command) to the child's stdin.
    pub fn command(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Asks the child to quit and asserts that it exits successfully.
    pub fn quit(mut self) {
        self.command(r#"{"cmd":"quit"}"#);
        let status = self.child.0.wait().unwrap();
        assert!(status.success(), "run exited with {status}");
    }
}

/// A `tern-bootstrap` process, killed when dropped.
#[derive(Debug)]
pub struct BootstrapProcess {
    child: KillOnDrop,
    /// Its listen address, with `/p2p/`.
    pub addr: Multiaddr,
    /// Its peer id.
    pub peer: PeerId,
    /// The rest of its stdout.
    pub lines: mpsc::Receiver<String>,
}

impl BootstrapProcess {
    /// Spawns `cmd` (a `tern-bootstrap` command line listening on loopback TCP) with stdout piped, and
    /// reads its first line, which must be `listening <address>`.
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let lines = lines_of(&mut child);
        let child = KillOnDrop(child);
        let line = lines
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("no line from tern-bootstrap: {e}"));
        let addr: Multiaddr = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim()
            .parse()
            .unwrap();
        let peer = peer_of(&addr);
        Self {
            child,
            addr,
            peer,
            lines,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The TCP socket it listens on.
    pub fn tcp_addr(&self) -> SocketAddr {
        tcp_socket(&self.addr)
    }
}
