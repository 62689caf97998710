//! Offline mail when mailbox servers misbehave (issue 19, items 2 and 3), with real `tern-bootstrap`
//! processes and in-process nodes: a frozen server (SIGSTOP) does not hold up mail while a healthy one is
//! configured, and mail queued while every server was down goes as soon as one returns, not after its
//! backoff.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use tern_node::api::{Event, MessageStatus};
use tern_node::delivery::{DEPOSIT_DEADLINE, LOOKUP_TIMEOUT, SERVER_REDIAL};
use tern_node::node::NodeConfig;
use tern_testkit::cli::BootstrapProcess;
use tern_testkit::net::{LiveNode, free_port, loopback_net};
use tern_testkit::profile::{open, pair};
use tern_testkit::wait::{wait_for, wait_status};

fn bootstrap(dir: &Path, port: u16) -> BootstrapProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern-bootstrap"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{port}")])
        .env("TERN_LOG", "warn");
    BootstrapProcess::spawn(cmd)
}

fn signal(process: &BootstrapProcess, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(process.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig}");
}

fn user(dir: &Path, mailboxes: Vec<Multiaddr>) -> (tern_node::engine::Engine, NodeConfig) {
    let config = NodeConfig {
        net: loopback_net(),
        mailboxes,
        ..NodeConfig::default()
    };
    (open(dir), config)
}

/// Waits until the node has fetched from each of `servers` (so it is connected to them).
async fn checked_all(node: &mut LiveNode, servers: &[PeerId]) {
    let mut left: Vec<PeerId> = servers.to_vec();
    while !left.is_empty() {
        let event = wait_for(
            &mut node.events,
            "a mailbox check",
            |e| matches!(e, Event::MailboxChecked { server, .. } if left.contains(server)),
        )
        .await;
        if let Event::MailboxChecked { server, .. } = event {
            left.retain(|s| *s != server);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_frozen_mailbox_servers_do_not_hold_up_offline_mail_for_the_third() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("alice"), root.path().join("bob"));
    let (_, bob_engine) = pair(&a, &b);
    let bob_key = bob_engine.key();
    drop(bob_engine);
    let servers: Vec<BootstrapProcess> = (0..3)
        .map(|n| bootstrap(&root.path().join(format!("b{n}")), 0))
        .collect();
    let addrs: Vec<Multiaddr> = servers.iter().map(|s| s.addr.clone()).collect();
    let peers: Vec<PeerId> = servers.iter().map(|s| s.peer).collect();
    tokio::time::timeout(Duration::from_secs(150), async {
        let (engine, config) = user(&a, addrs.clone());
        let mut alice = LiveNode::start(engine, "alice", config).await;
        checked_all(&mut alice, &peers).await;
        // The first two freeze with Alice's connections to them open.
        signal(&servers[0], "STOP");
        signal(&servers[1], "STOP");

        let started = Instant::now();
        let sent = alice
            .node
            .send_text(bob_key, "past the frozen ones".into())
            .await
            .unwrap();
        wait_status(&mut alice.events, sent.id, MessageStatus::Sent).await;
        let took = started.elapsed();
        // Bob's own servers are looked up first (the frozen ones hold that up to LOOKUP_TIMEOUT), then
        // the frozen servers are given up on after DEPOSIT_DEADLINE and the third takes it.
        let bound = LOOKUP_TIMEOUT + DEPOSIT_DEADLINE * 2 + Duration::from_secs(10);
        assert!(took < bound, "sent after {took:?} (bound {bound:?})");
        eprintln!("deposited past two frozen servers in {took:?}");
        alice.node.shutdown().await.unwrap();

        // Bob, who knows only the third server, gets it from there.
        let (engine, config) = user(&b, vec![addrs[2].clone()]);
        let mut bob = LiveNode::start(engine, "bob", config).await;
        wait_for(&mut bob.events, "the message", |e| {
            matches!(e, Event::MessageReceived { message, .. } if message.text == "past the frozen ones")
        })
        .await;
        bob.node.shutdown().await.unwrap();
    })
    .await
    .unwrap();
    signal(&servers[0], "CONT");
    signal(&servers[1], "CONT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_while_the_server_was_down_goes_as_soon_as_it_returns() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("alice"), root.path().join("bob"));
    let (_, bob_engine) = pair(&a, &b);
    let bob_key = bob_engine.key();
    drop(bob_engine);
    let data = root.path().join("b0");
    let port = free_port();
    let server = bootstrap(&data, port);
    let (addr, peer) = (server.addr.clone(), server.peer);
    tokio::time::timeout(Duration::from_secs(150), async {
        let (engine, config) = user(&a, vec![addr.clone()]);
        let mut alice = LiveNode::start(engine, "alice", config).await;
        checked_all(&mut alice, &[peer]).await;
        drop(server);

        // Written while the server is down: tried, refused for want of a server, backed off.
        let sent = alice
            .node
            .send_text(bob_key, "written during the outage".into())
            .await
            .unwrap();
        // Long enough for the backoff to reach half a minute (2 + 4 + 8 + 16 s of retries).
        let outage = Duration::from_secs(35);
        let status = tokio::time::timeout(
            outage,
            wait_status(&mut alice.events, sent.id, MessageStatus::Sent),
        )
        .await;
        assert!(status.is_err(), "sent with no server up");

        let server = bootstrap(&data, port);
        assert_eq!(server.peer, peer);
        let back = Instant::now();
        wait_status(&mut alice.events, sent.id, MessageStatus::Sent).await;
        let took = back.elapsed();
        // Redialled within SERVER_REDIAL, then deposited at once (not after the ~30 s backoff).
        let bound = SERVER_REDIAL + Duration::from_secs(5);
        assert!(
            took < bound,
            "deposited {took:?} after the server returned (bound {bound:?})"
        );
        eprintln!("deposited {took:?} after the server returned");
        alice.node.shutdown().await.unwrap();
        drop(server);
    })
    .await
    .unwrap();
}
