//! `lan`: from two nodes starting to the first message delivered, found by mDNS.
//!
//! Each node is a separate `tern-bench lan-peer` process in its own network namespace, the two joined by
//! veth pairs on a bridge in a third namespace (root is needed for `ip netns`); nothing touches the host's
//! own network. The clock starts just before both processes are spawned and stops at the receiver's durable
//! store, so it includes process start, profile open, swarm start, discovery, dial, Noise, the session start
//! and both commits. Baseline: the same, with mDNS off and the sender dialling the receiver's known address.
//!
//! Without network namespaces (not root, no `ip`), mDNS cannot be measured (it does not run over
//! loopback); the scenario then times the dialled baseline on loopback only and says so.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use libp2p::Multiaddr;
use tern_node::api::{ConversationId, Event};
use tern_node::engine::{Engine, now_ms};
use tern_node::net::NetConfig;
use tern_node::node::{Node, NodeConfig};
use tern_node::store::{KdfParams, Password};
use tern_protocol::IdentityKey;

use crate::{Row, Target, ms, percentile, print_table};

const PASSWORD: &str = "bench";
const RECEIVER_PORT: u16 = 4711;
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Every run should deliver within this (issue 12: discovery once waited about 4 s in a quarter of runs).
pub const TARGET: Duration = Duration::from_millis(1500);
/// Receiver ports are `RECEIVER_PORT + run`: at most this many runs.
pub const MAX_RUNS: usize = 2_000;

/// Two namespaces (`a`, `b`) with one veth each into a bridge namespace; removed on drop.
struct Lan {
    names: [String; 3],
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip")?;
    ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Lan {
    const ADDRS: [&'static str; 2] = ["10.231.0.1", "10.231.0.2"];

    fn create() -> Result<Self> {
        let tag = std::process::id();
        let lan = Self {
            names: [
                format!("ternb{tag}a"),
                format!("ternb{tag}b"),
                format!("ternb{tag}br"),
            ],
        };
        let [a, b, br] = &lan.names;
        for ns in [a, b, br] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&["-n", br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", br, "link", "set", "br0", "up"])?;
        for (i, ns) in [a, b].into_iter().enumerate() {
            let (inner, outer) = (format!("v{i}"), format!("p{i}"));
            ip(&[
                "-n", br, "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns",
                ns,
            ])?;
            ip(&["-n", br, "link", "set", &outer, "master", "br0", "up"])?;
            let cidr = format!("{}/24", Self::ADDRS[i]);
            ip(&["-n", ns, "addr", "add", &cidr, "dev", &inner])?;
            ip(&["-n", ns, "link", "set", &inner, "up"])?;
            // mDNS sends to 224.0.0.251: give multicast (and everything else) a route out of the veth.
            ip(&["-n", ns, "route", "add", "default", "dev", &inner])?;
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Two fresh profiles that know each other; returns (sender dir, receiver dir, receiver key).
fn profiles(root: &Path, run: usize) -> Result<(PathBuf, PathBuf, IdentityKey)> {
    let password = Password::new(PASSWORD.into());
    let (sender_dir, receiver_dir) = (root.join(format!("s{run}")), root.join(format!("r{run}")));
    let mut sender = Engine::create(
        &sender_dir,
        "Sender",
        &password,
        KdfParams::INSECURE_FOR_TESTS,
    )?;
    let mut receiver = Engine::create(
        &receiver_dir,
        "Receiver",
        &password,
        KdfParams::INSECURE_FOR_TESTS,
    )?;
    sender.add_contact(&receiver.card().invite_link(), None)?;
    receiver.add_contact(&sender.card().invite_link(), None)?;
    Ok((sender_dir, receiver_dir, receiver.key()))
}

fn spawn_peer(netns: Option<&str>, args: &[String], log: &Path) -> Result<Child> {
    let exe = std::env::current_exe()?;
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    command
        .arg("lan-peer")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(match std::env::var_os("TERN_LOG") {
            // With logging on, each peer's log goes to a file next to its profile.
            Some(_) => Stdio::from(std::fs::File::create(log)?),
            None => Stdio::null(),
        })
        .spawn()
        .context("spawning a lan-peer process")
}

/// The unix-ms time the child printed after `word`.
fn wait_line(child: &mut Child, word: &str) -> Result<u64> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = format!("{word} ");
    std::thread::Builder::new()
        .name("lan-peer-reader".into())
        .spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.strip_prefix(&prefix) {
                    let _ = tx.send(at.trim().parse::<u64>().ok());
                    return;
                }
            }
            let _ = tx.send(None);
        })?;
    rx.recv_timeout(PEER_TIMEOUT)
        .ok()
        .flatten()
        .with_context(|| format!("the lan-peer never printed {word:?}"))
}

/// One start-to-delivered run; returns (to the receiver's store, to the sender seeing `delivered`).
fn one_run(root: &Path, run: usize, lan: Option<&Lan>, mdns: bool) -> Result<(Duration, Duration)> {
    let (sender_dir, receiver_dir, receiver_key) = profiles(root, run)?;
    let (host_a, host_b) = match lan {
        Some(_) => (Lan::ADDRS[0], Lan::ADDRS[1]),
        None => ("127.0.0.1", "127.0.0.1"),
    };
    let receiver_port = RECEIVER_PORT + u16::try_from(run).unwrap_or(0);
    let receiver_listen = format!("/ip4/{host_b}/tcp/{receiver_port}");
    let receiver_peer = tern_node::node::peer_id_of(&receiver_key).context("peer id")?;
    let dial = if mdns {
        "-".to_owned()
    } else {
        format!("{receiver_listen}/p2p/{receiver_peer}")
    };
    let mdns_flag = if mdns { "1" } else { "0" };
    let ns = |i: usize| lan.map(|l| l.names[i].as_str());
    let start_ms = now_ms();
    let start = Instant::now();
    let mut receiver = spawn_peer(
        ns(1),
        &[
            receiver_dir.display().to_string(),
            mdns_flag.into(),
            receiver_listen,
        ],
        &root.join(format!("r{run}.log")),
    )?;
    let mut sender = spawn_peer(
        ns(0),
        &[
            sender_dir.display().to_string(),
            mdns_flag.into(),
            format!("/ip4/{host_a}/tcp/0"),
            receiver_key.peer_id(),
            dial,
        ],
        &root.join(format!("s{run}.log")),
    )?;
    let result = (|| {
        let received = wait_line(&mut receiver, "received")?;
        let delivered = wait_line(&mut sender, "delivered")?;
        let wall = start.elapsed();
        ensure!(received >= start_ms, "clock went backwards");
        let to = |at: u64| Duration::from_millis(at - start_ms).min(wall + Duration::from_secs(1));
        Ok((to(received), to(delivered)))
    })();
    for child in [&mut receiver, &mut sender] {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// How many of `sorted` took longer than [`TARGET`].
fn missed(sorted: &[Duration]) -> usize {
    sorted.iter().filter(|d| **d > TARGET).count()
}

pub fn run(runs: usize) -> Result<()> {
    ensure!(
        (1..=MAX_RUNS).contains(&runs),
        "--runs must be 1 to {MAX_RUNS}"
    );
    // With logging on, the profiles and logs stay for reading.
    let logging = std::env::var_os("TERN_LOG").is_some();
    let root = tempfile::Builder::new()
        .disable_cleanup(logging)
        .tempdir()?;
    if logging {
        println!("(lan-peer logs in {})", root.path().display());
    }
    let lan = match Lan::create() {
        Ok(lan) => Some(lan),
        Err(e) => {
            println!(
                "(no network namespaces: {e:#}; mDNS cannot run over loopback, timing dialled peers only)"
            );
            None
        }
    };
    let mut mdns = Vec::new();
    let mut dialled = Vec::new();
    let mut mdns_ack = Vec::new();
    for run in 0..runs {
        if lan.is_some() {
            let (stored, acked) = one_run(root.path(), 2 * run, lan.as_ref(), true)?;
            mdns.push(stored);
            mdns_ack.push(acked);
        }
        dialled.push(one_run(root.path(), 2 * run + 1, lan.as_ref(), false)?.0);
    }
    for v in [&mut mdns, &mut dialled, &mut mdns_ack] {
        v.sort();
    }
    let dialled_median = ms(percentile(&dialled, 0.5));
    let secs = |v: &[Duration], p: f64| ms(percentile(v, p)) / 1000.0;
    let target_s = TARGET.as_secs_f64();
    let mut rows = Vec::new();
    if lan.is_some() {
        rows.push(Row::new(
            "start to first message in the receiver's store, peers found by mDNS (median)",
            secs(&mdns, 0.5),
            dialled_median / 1000.0,
            "s",
            Target::Below(target_s),
        ));
        rows.push(Row::new(
            "the same, p99",
            secs(&mdns, 0.99),
            secs(&dialled, 0.99),
            "s",
            Target::Below(target_s),
        ));
        rows.push(Row::new(
            "the same, worst run",
            secs(&mdns, 1.0),
            secs(&dialled, 1.0),
            "s",
            Target::Below(target_s),
        ));
        rows.push(Row::new(
            &format!("runs over {target_s} s (of {runs})"),
            missed(&mdns) as f64,
            missed(&dialled) as f64,
            "runs",
            Target::Below(1.0),
        ));
        rows.push(Row::new(
            "start to the sender seeing `delivered` (mDNS, median)",
            secs(&mdns_ack, 0.5),
            dialled_median / 1000.0,
            "s",
            Target::Report,
        ));
    } else {
        rows.push(Row::new(
            "start to first message stored, dialled on loopback (NO mDNS: no namespaces)",
            dialled_median / 1000.0,
            dialled_median / 1000.0,
            "s",
            Target::Below(target_s),
        ));
        rows.push(Row::new(
            "the same, p99",
            secs(&dialled, 0.99),
            secs(&dialled, 0.99),
            "s",
            Target::Below(target_s),
        ));
    }
    let how = if lan.is_some() {
        "two processes in separate network namespaces on one bridge (veth)"
    } else {
        "two processes on loopback"
    };
    print_table(
        &format!("lan: {runs} runs, {how}, fresh profiles each run"),
        &rows,
    );
    crate::note(
        "clock: from just before both processes are spawned to the receiver's durable commit (it includes process \
         start, profile open, swarm start, discovery, dial, Noise, session start); baseline = the same run with \
         mDNS off and the sender dialling the receiver's known address (every 10 ms until connected)",
    );
    Ok(())
}

/// The child: `lan-peer <profile> <mdns 0|1> <listen> [<send-to peer id> <dial addr or ->]`.
pub fn peer(args: &[String]) -> Result<()> {
    let [profile, mdns, listen, rest @ ..] = args else {
        bail!("usage: lan-peer <profile> <mdns 0|1> <listen> [<to> <dial|->]");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let engine = Engine::open(Path::new(profile), &Password::new(PASSWORD.into()))?;
        let mdns = mdns == "1";
        let config = NodeConfig {
            net: NetConfig {
                listen: vec![listen.parse()?],
                lan_only: true,
                mdns,
                mdns_query_interval: Duration::from_secs(1),
                ..NetConfig::default()
            },
            ..NodeConfig::default()
        };
        let (node, mut events) = Node::start(engine, config)?;
        if let [_, dial] = rest
            && dial != "-"
        {
            // Dial until connected: the receiver, started at the same moment, may not listen yet.
            let addr: Multiaddr = dial.parse()?;
            let node = node.clone();
            tokio::spawn(async move {
                loop {
                    let _ = node.dial(addr.clone()).await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    match node.status().await {
                        Ok(status) if !status.connected_peers.is_empty() => return,
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            });
        }
        let sent = match rest {
            [to, _] => {
                let key = IdentityKey::from_peer_id(to)?;
                Some(
                    node.send_text(ConversationId::Direct(key), "hello over the LAN".into())
                        .await?
                        .id,
                )
            }
            _ => None,
        };
        loop {
            match events.recv().await? {
                Event::MessageReceived { .. } if sent.is_none() => {
                    println!("received {}", now_ms());
                }
                Event::StatusChanged {
                    id,
                    status: tern_node::api::MessageStatus::Delivered,
                    ..
                } if Some(id) == sent => {
                    println!("delivered {}", now_ms());
                }
                _ => {}
            }
        }
    })
}
