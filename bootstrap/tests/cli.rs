//! The `tern-bootstrap` binary: the line scripts read, signals, and errors.

use std::process::Stdio;

use tern_testkit::wait::TIMEOUT;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
    time::timeout,
};

const BIN: &str = env!("CARGO_BIN_EXE_tern-bootstrap");

#[tokio::test]
async fn binary_prints_its_listen_address_and_stops_on_sigterm() {
    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bootstrap.toml");
        std::fs::write(&config, "[mailbox]\nquota_envelopes = 10\n").unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .env("TERN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next_line().await.unwrap().unwrap();
        let addr: libp2p::Multiaddr = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .parse()
            .unwrap();
        let text = addr.to_string();
        assert!(text.starts_with("/ip4/127.0.0.1/tcp/"), "{text}");
        assert!(
            matches!(
                addr.iter().last(),
                Some(libp2p::multiaddr::Protocol::P2p(_))
            ),
            "{text}"
        );
        assert!(dir.path().join("data").join("node.key").exists());

        let pid = child.id().unwrap().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let status = child.wait().await.unwrap();
        assert!(status.success(), "exit status after SIGTERM: {status}");
        // Nothing else was printed on stdout.
        assert_eq!(lines.next_line().await.unwrap(), None);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn bad_configuration_fails_with_a_message() {
    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bootstrap.toml");
        std::fs::write(&config, "listn = []\n").unwrap();
        let output = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("listn"), "{stderr}");
        assert!(output.stdout.is_empty());

        let output = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(["--peer", "/ip4/127.0.0.1/tcp/1"])
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("/p2p/"), "{stderr}");
    })
    .await
    .unwrap();
}
