//! `tern-bench`: Tern's figures beside the plain-library baseline measured in the same run.
//!
//! `cargo run --release -p tern-bench -- <latency|throughput|all> [--messages N]`
//!
//! Every scenario prints a table: figure, Tern, baseline, ratio, target. Only ratios travel between
//! machines; the absolute figures are for this machine and this run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm};
use tern_node::api::{ConversationId, Event};
use tern_node::engine::Engine;
use tern_node::mailbox::wire::{MailboxRequest, MailboxResponse, OwnerAuth};
use tern_node::net::{
    ClientBehaviour, ClientBehaviourEvent, EnvelopeAck, EnvelopeRequest, NetConfig, build_swarm,
};
use tern_node::node::{Node, NodeConfig};
use tern_node::store::{KdfParams, Password};
use tokio::sync::broadcast;

mod backup;
mod crypto;
mod files;
mod group;
mod group_fanout;
mod internet;
mod lan;
mod mailbox;
mod peers;
mod reach;
mod report;
mod store;

pub use report::{Row, Target, note, print_table};

#[derive(Parser, Debug)]
#[command(name = "tern-bench", about = "Tern's figures beside their baselines")]
struct Args {
    scenario: Scenario,
    /// Messages per latency and throughput measurement (each direction for throughput).
    #[arg(long, default_value_t = 500)]
    messages: usize,
    /// Envelopes deposited (and then fetched) in the `mailbox` scenario.
    #[arg(long, default_value_t = 10_000)]
    deposits: usize,
    /// Idle peers to connect to a bootstrap node in the `peers` scenario.
    #[arg(long, default_value_t = 10_000)]
    peers: usize,
    /// The transport the `peers` scenario's idle peers connect over.
    #[arg(long, value_enum, default_value_t = PeerTransport::Tcp)]
    peer_transport: PeerTransport,
    /// In the `peers` scenario, run the bootstrap node holding no files (`[files] quota_bytes = 0`), which
    /// leaves out the per-connection stream handler: what holding files costs per peer.
    #[arg(long)]
    peers_without_files: bool,
    /// Messages in the profile of the `store` scenario.
    #[arg(long, default_value_t = 1_000_000)]
    store_messages: usize,
    /// Messages in the profile of the `backup` scenario.
    #[arg(long, default_value_t = 100_000)]
    backup_messages: usize,
    /// Rounds of the `internet` lab (each: four pairs of fresh contacts).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Messages per pair and round in the `internet` lab (each awaited before the next).
    #[arg(long, default_value_t = 10)]
    lab_messages: usize,
    /// Rounds of the `group` scenario's fan-out to 20 processes (each: one group text and 19 1:1 texts).
    #[arg(long, default_value_t = 5)]
    group_rounds: usize,
    /// Runs of the `lan` scenario (each: an mDNS run and a dialled baseline run).
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Size of the file in the `files` scenario, in MiB.
    #[arg(long, default_value_t = 1024)]
    file_mib: u64,
    /// Run the scenario(s) this many times; past 1, the report gives each figure's median and the spread
    /// of its ratio over the runs, and flags a spread wider than the margin to the target.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Where `all` writes its report (markdown); `-` for nowhere.
    #[arg(long, default_value = "docs/benchmarks.md")]
    report: String,
}

/// How the idle peers of the `peers` scenario reach the bootstrap node.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PeerTransport {
    /// TCP with Noise and Yamux.
    Tcp,
    /// QUIC (one UDP socket on the server for every peer).
    Quic,
}

impl PeerTransport {
    /// A listen address on the loopback address `ip`.
    fn listen_on(self, ip: std::net::Ipv4Addr) -> String {
        match self {
            Self::Tcp => format!("/ip4/{ip}/tcp/0"),
            Self::Quic => format!("/ip4/{ip}/udp/0/quic-v1"),
        }
    }

    fn listen(self) -> String {
        self.listen_on(std::net::Ipv4Addr::LOCALHOST)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Quic => "QUIC",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Latency,
    Throughput,
    Mailbox,
    Peers,
    Lan,
    Internet,
    Reach,
    Store,
    Crypto,
    /// MLS group add/remove costs, and `group-fanout` (issue 13).
    Group,
    /// One text to a group of 20 processes beside 19 1:1 sends (part of `group`).
    GroupFanout,
    Files,
    /// Encrypted backup and restore (issue 15); not part of `all`.
    Backup,
    All,
}

const TEXT_LEN: usize = 1024;
/// Most runs `--repeat` takes.
const MAX_REPEAT: usize = 20;
const TIMEOUT: Duration = Duration::from_secs(600);
/// A fixed "now" for the sans-I/O protocol calls that take one.
pub const NOW_MS: u64 = 1_750_000_000_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn loopback_net() -> NetConfig {
    NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
        lan_only: true,
        mdns: false,
        ..NetConfig::default()
    }
}

// ---- Tern: two real nodes ----

struct Pair {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    a: Node,
    a_events: broadcast::Receiver<Event>,
    b: Node,
    b_events: broadcast::Receiver<Event>,
    a_key: tern_protocol::IdentityKey,
    b_key: tern_protocol::IdentityKey,
}

async fn listening(events: &mut broadcast::Receiver<Event>) -> Result<Multiaddr> {
    loop {
        if let Event::Listening { address } = events.recv().await? {
            return Ok(address);
        }
    }
}

async fn tern_pair() -> Result<Pair> {
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
    let password = Password::new("bench".into());
    let create = |dir: &Path, name: &str| {
        Engine::create(dir, name, &password, KdfParams::INSECURE_FOR_TESTS)
    };
    let mut alice = create(dirs.0.path(), "Alice")?;
    let mut bob = create(dirs.1.path(), "Bob")?;
    alice.add_contact(&bob.card().invite_link(), None)?;
    bob.add_contact(&alice.card().invite_link(), None)?;
    let (a_key, b_key) = (alice.key(), bob.key());
    let config = NodeConfig {
        net: loopback_net(),
        ..NodeConfig::default()
    };
    let (a, mut a_events) = Node::start(alice, config.clone())?;
    let (b, mut b_events) = Node::start(bob, config)?;
    let a_addr = listening(&mut a_events).await?;
    listening(&mut b_events).await?;
    b.dial(a_addr.with(Protocol::P2p(a.peer_id()))).await?;
    // Warm up: one message each way, so the session exists and the connection is up.
    let warm = a
        .send_text(ConversationId::Direct(b_key), "warm-up".into())
        .await?;
    wait_status(&mut a_events, warm.id).await?;
    let warm = b
        .send_text(ConversationId::Direct(a_key), "warm-up".into())
        .await?;
    wait_status(&mut b_events, warm.id).await?;
    Ok(Pair {
        _dirs: dirs,
        a,
        a_events,
        b,
        b_events,
        a_key,
        b_key,
    })
}

async fn wait_status(
    events: &mut broadcast::Receiver<Event>,
    id: tern_protocol::MessageId,
) -> Result<()> {
    loop {
        match events.recv().await {
            Ok(Event::StatusChanged {
                id: got,
                status: tern_node::api::MessageStatus::Delivered,
                ..
            }) if got == id => return Ok(()),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => bail!("node stopped: {e}"),
        }
    }
}

async fn wait_received(events: &mut broadcast::Receiver<Event>, count: usize) -> Result<()> {
    let mut seen = 0;
    while seen < count {
        match events.recv().await {
            Ok(Event::MessageReceived { .. }) => seen += 1,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => bail!("lagged by {n} events"),
            Err(e) => bail!("node stopped: {e}"),
        }
    }
    Ok(())
}

/// Send call to the recipient's durable store (the recipient emits `MessageReceived` after its commit).
async fn tern_latency(pair: &mut Pair, n: usize) -> Result<Vec<Duration>> {
    let text = "x".repeat(TEXT_LEN);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        pair.a
            .send_text(ConversationId::Direct(pair.b_key), text.clone())
            .await?;
        wait_received(&mut pair.b_events, 1).await?;
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok(samples)
}

/// Messages per second, both directions at once, until every message is durably received. Each side keeps
/// up to [`tern_node::node::MAX_IN_FLIGHT`] send calls outstanding, the window the baseline gets too.
async fn tern_throughput(pair: &mut Pair, n: usize) -> Result<f64> {
    let text = "y".repeat(TEXT_LEN);
    let start = Instant::now();
    let sender = |node: Node, to: tern_protocol::IdentityKey| {
        let text = text.clone();
        tokio::spawn(async move {
            let mut sends = futures::stream::iter(0..n)
                .map(|_| node.send_text(ConversationId::Direct(to), text.clone()))
                .buffer_unordered(tern_node::node::MAX_IN_FLIGHT);
            while let Some(sent) = sends.next().await {
                sent?;
            }
            anyhow::Ok(())
        })
    };
    let send_ab = sender(pair.a.clone(), pair.b_key);
    let send_ba = sender(pair.b.clone(), pair.a_key);
    let (ra, rb) = tokio::join!(
        wait_received(&mut pair.b_events, n),
        wait_received(&mut pair.a_events, n)
    );
    ra?;
    rb?;
    send_ab.await??;
    send_ba.await??;
    Ok((2 * n) as f64 / start.elapsed().as_secs_f64())
}

// ---- Baselines: plain libp2p request-response, and redb ----

async fn plain_pair() -> Result<(Swarm<ClientBehaviour>, Swarm<ClientBehaviour>)> {
    let mut a = build_swarm(&[1u8; 32], &loopback_net())?;
    let mut b = build_swarm(&[2u8; 32], &loopback_net())?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = b.select_next_some().await {
            break address;
        }
    };
    let b_peer = *b.local_peer_id();
    a.dial(addr.with(Protocol::P2p(b_peer)))?;
    loop {
        tokio::select! {
            e = a.select_next_some() => if let SwarmEvent::ConnectionEstablished { .. } = e { break },
            _ = b.select_next_some() => {}
        }
    }
    Ok((a, b))
}

/// Drives `b` as an echo server: every envelope request is acked at once.
fn serve(mut b: Swarm<ClientBehaviour>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(ClientBehaviourEvent::Envelope(
                request_response::Event::Message {
                    message: request_response::Message::Request { channel, .. },
                    ..
                },
            )) = b.select_next_some().await
            {
                let _ = b
                    .behaviour_mut()
                    .envelope
                    .send_response(channel, EnvelopeAck::Accepted);
            }
        }
    })
}

async fn await_response(a: &mut Swarm<ClientBehaviour>) -> Result<()> {
    loop {
        match a.select_next_some().await {
            SwarmEvent::Behaviour(ClientBehaviourEvent::Envelope(
                request_response::Event::Message {
                    message: request_response::Message::Response { .. },
                    ..
                },
            )) => return Ok(()),
            SwarmEvent::Behaviour(ClientBehaviourEvent::Envelope(
                request_response::Event::OutboundFailure { error, .. },
            )) => bail!("baseline request failed: {error}"),
            _ => {}
        }
    }
}

/// Round trips of a plain libp2p request-response over the same TCP transport, same frame size as Tern's.
async fn plain_round_trips(n: usize, size: usize) -> Result<Vec<Duration>> {
    let (mut a, b) = plain_pair().await?;
    let server = serve(b);
    let peer = *a
        .connected_peers()
        .next()
        .context("baseline not connected")?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        a.behaviour_mut()
            .envelope
            .send_request(&peer, EnvelopeRequest::new(vec![7u8; size])?);
        await_response(&mut a).await?;
        samples.push(start.elapsed());
    }
    server.abort();
    samples.sort();
    Ok(samples)
}

/// Requests per second over the same stream with no crypto and no store, pipelined like Tern's outbox.
async fn plain_throughput(n: usize, size: usize) -> Result<f64> {
    let (mut a, b) = plain_pair().await?;
    let server = serve(b);
    let peer = *a
        .connected_peers()
        .next()
        .context("baseline not connected")?;
    let start = Instant::now();
    let mut outstanding = 0usize;
    let mut sent = 0usize;
    let mut done = 0usize;
    let window = tern_node::node::MAX_IN_FLIGHT;
    while done < 2 * n {
        while sent < 2 * n && outstanding < window {
            a.behaviour_mut()
                .envelope
                .send_request(&peer, EnvelopeRequest::new(vec![7u8; size])?);
            sent += 1;
            outstanding += 1;
        }
        await_response(&mut a).await?;
        outstanding -= 1;
        done += 1;
    }
    server.abort();
    Ok((2 * n) as f64 / start.elapsed().as_secs_f64())
}

/// One durable redb commit of a value the size of a stored message.
fn redb_commits(n: usize, size: usize) -> Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let db = redb::Database::create(dir.path().join("bench.redb"))?;
    let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("bench");
    let value = vec![9u8; size];
    let mut samples = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let start = Instant::now();
        let txn = db.begin_write()?;
        txn.open_table(table)?.insert(i, value.as_slice())?;
        txn.commit()?;
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok(samples)
}

/// The size of an envelope carrying a 1 KiB text: the padding bucket it lands in.
fn envelope_size() -> usize {
    tern_protocol::envelope::padded_len(TEXT_LEN + 200).unwrap_or(2048) + 32 + 16 + 45
}

async fn latency(n: usize) -> Result<()> {
    let mut pair = tern_pair().await?;
    let tern = tern_latency(&mut pair, n).await?;
    pair.a.shutdown().await?;
    pair.b.shutdown().await?;
    let rtt = plain_round_trips(n, envelope_size()).await?;
    let commit = redb_commits(n, TEXT_LEN + 200)?;
    let base_median = percentile(&rtt, 0.5) + percentile(&commit, 0.5);
    let base_p99 = percentile(&rtt, 0.99) + percentile(&commit, 0.99);
    print_table(
        &format!(
            "latency: {n} sequential 1 KiB messages over loopback TCP, send call to the recipient's durable store"
        ),
        &[
            Row::new(
                "median",
                ms(percentile(&tern, 0.5)),
                ms(base_median),
                "ms",
                Target::AtMost(1.5),
            ),
            Row::new(
                "p99",
                ms(percentile(&tern, 0.99)),
                ms(base_p99),
                "ms",
                Target::Report,
            ),
        ],
    );
    note(&format!(
        "baseline = libp2p request-response round trip ({:.3} ms median) + one durable redb commit ({:.3} ms median)",
        ms(percentile(&rtt, 0.5)),
        ms(percentile(&commit, 0.5))
    ));
    Ok(())
}

async fn throughput(n: usize) -> Result<()> {
    let mut pair = tern_pair().await?;
    let tern = tern_throughput(&mut pair, n).await?;
    pair.a.shutdown().await?;
    pair.b.shutdown().await?;
    let plain = plain_throughput(n, envelope_size()).await?;
    print_table(
        &format!("throughput: {n} messages each way at once, end-to-end encrypted and durable"),
        &[Row::new(
            "messages/s",
            tern,
            plain,
            "msg/s",
            Target::AtLeast(0.5),
        )],
    );
    note(&format!(
        "each side keeps up to {w} send calls outstanding; baseline = the same libp2p request-response stream, \
         no crypto, no store, {w} requests in flight",
        w = tern_node::node::MAX_IN_FLIGHT
    ));
    Ok(())
}

// ---- A real tern-bootstrap process ----

/// A `tern-bootstrap` child process listening on loopback TCP, killed on drop.
struct Bootstrap {
    child: std::process::Child,
    /// The first listen address.
    addr: Multiaddr,
    /// Every listen address, in the order given.
    addrs: Vec<Multiaddr>,
    _data: tempfile::TempDir,
}

impl Bootstrap {
    /// Starts the `tern-bootstrap` binary built next to this one, with `extra` appended to its TOML config.
    fn spawn(extra: &str) -> Result<Self> {
        Self::spawn_on(&[PeerTransport::Tcp.listen().to_owned()], extra)
    }

    /// [`Self::spawn`] listening on the addresses in `listen`.
    fn spawn_on(listen: &[String], extra: &str) -> Result<Self> {
        use std::io::BufRead;
        let exe = std::env::current_exe()?;
        let bin = exe.with_file_name("tern-bootstrap");
        if !bin.exists() {
            bail!(
                "{} is missing: build it first with `cargo build --release -p tern-bootstrap`",
                bin.display()
            );
        }
        let data = tempfile::tempdir()?;
        let config = data.path().join("bootstrap.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\nlisten = {listen:?}\n{extra}",
                data.path().join("data")
            ),
        )?;
        let mut child = std::process::Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        // One line per address; skip what a wrapper (a profiler, say) prints before them. All are read
        // before the pipe closes.
        let addrs: Vec<Multiaddr> = std::io::BufReader::new(stdout)
            .lines()
            .take(20 + listen.len())
            .filter_map(|line| line.ok()?.trim().strip_prefix("listening ")?.parse().ok())
            .take(listen.len())
            .collect();
        let addr = addrs
            .first()
            .cloned()
            .context("no listen line from tern-bootstrap")?;
        Ok(Self {
            child,
            addr,
            addrs,
            _data: data,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Output of a command, trimmed, or `unknown`.
fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The machine, for the report: cores, CPU, memory, kernel, rustc, commit, date.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("unknown".into(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_owned());
    format!(
        "- date: {}\n- cores: {}\n- CPU: {cpu}\n- memory: {mem_gib}\n- kernel: Linux {kernel}\n- rustc: {}\n- commit: {}\n- load average at start: {}\n",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_output("rustc", &["--version"]),
        command_output("git", &["rev-parse", "--short", "HEAD"]),
        std::fs::read_to_string("/proc/loadavg").map_or_else(
            |_| "unknown".into(),
            |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        ),
    )
}

fn write_report(path: &str, args: &Args, machine: &str, elapsed: Duration) -> Result<()> {
    let text = format!(
        "# Tern's benchmarks\n\n\
         Written by `tern-bench all`; every figure is printed beside a baseline measured in the same run on the \
         same machine, because only the ratios travel between machines. Regenerate with:\n\n\
         ```sh\n\
         cargo build --release -p tern-bootstrap -p tern-node   # internet runs both\n\
         cargo run --release -p tern-bench -- all   # about {:.0} minutes here; writes this file\n\
         cargo run --release -p tern-bench -- <latency|throughput|mailbox|peers|reach|lan|internet|store|crypto|group|files>\n\
         ```\n\n\
         Scale flags (these defaults were used): `--messages {}` (latency samples; throughput messages each way), \
         `--deposits {}`, `--peers {}`, `--store-messages {}`, `--runs {}`, `--rounds {}`, `--lab-messages {}`, `--group-rounds {}`, `--repeat {}` (past 1: each figure is the median of the runs, beside the \
         spread of its ratio, flagged where the spread is wider than the margin to the target). The `lan` \
         scenario needs root (network namespaces); without it, it times dialled peers on loopback and says so. \
         `internet` (lab/internet.sh) needs root and iptables; without them it is skipped. `group` starts 20 \
         `tern-bench group-peer` processes on loopback.\n\n\
         ## The machine\n\n{machine}\n\
         The run took {:.1} minutes.\n{}",
        elapsed.as_secs_f64() / 60.0,
        args.messages,
        args.deposits,
        args.peers,
        args.store_messages,
        args.runs,
        args.rounds,
        args.lab_messages,
        args.group_rounds,
        args.repeat,
        elapsed.as_secs_f64() / 60.0,
        if args.repeat > 1 {
            report::merged_markdown(args.repeat)
        } else {
            report::markdown()
        },
    );
    // A hand-written analysis below the marker survives regeneration.
    let kept = std::fs::read_to_string(path)
        .ok()
        .and_then(|old| old.find(ANALYSIS_MARKER).map(|at| old[at..].to_owned()))
        .unwrap_or_else(|| format!("{ANALYSIS_MARKER}\n"));
    std::fs::write(path, format!("{text}\n{kept}")).with_context(|| format!("writing {path}"))
}

/// Everything in the report file from this line on is kept when `all` rewrites it.
const ANALYSIS_MARKER: &str = "<!-- analysis: kept when tern-bench rewrites this file -->";

/// Runs the scenario(s) `args` names once; their tables go to the report.
fn run_scenarios(args: &Args) -> Result<()> {
    let all = args.scenario == Scenario::All;
    let wants = |s: Scenario| all || args.scenario == s;
    if wants(Scenario::Crypto) {
        crypto::run()?;
    }
    if wants(Scenario::Group) {
        group::run()?;
    }
    if wants(Scenario::Group) || args.scenario == Scenario::GroupFanout {
        group_fanout::run(args.group_rounds)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tern-bench")
        .build()?;
    rt.block_on(async {
        tokio::time::timeout(TIMEOUT, async {
            if wants(Scenario::Latency) {
                latency(args.messages).await?;
            }
            if wants(Scenario::Throughput) {
                throughput(args.messages).await?;
            }
            if wants(Scenario::Mailbox) {
                mailbox::mailbox(args.deposits).await?;
            }
            if wants(Scenario::Peers) {
                peers::peers(args.peers, args.peer_transport, !args.peers_without_files).await?;
            }
            if wants(Scenario::Reach) {
                reach::run(args.messages).await?;
            }
            if wants(Scenario::Files) {
                files::run(args.file_mib).await?;
            }
            anyhow::Ok(())
        })
        .await
        .context("benchmark timed out")?
    })?;
    drop(rt);
    if wants(Scenario::Lan) {
        lan::run(args.runs)?;
    }
    if wants(Scenario::Internet) {
        internet::run(args.rounds, args.lab_messages)?;
    }
    if wants(Scenario::Store) {
        store::run(args.store_messages)?;
    }
    if args.scenario == Scenario::Backup {
        backup::run(args.backup_messages)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    // Logs for profiling a scenario (`TERN_LOG=tern_node=debug`); off by default, so they cost nothing.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("TERN_LOG") {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    }
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some("lan-peer") {
        return lan::peer(&raw[2..]);
    }
    if raw.get(1).map(String::as_str) == Some("group-peer") {
        return group_fanout::peer(&raw[2..]);
    }
    let args = Args::parse();
    let machine = machine();
    let started = Instant::now();
    println!(
        "# tern-bench on {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "DEBUG build (use --release)"
        } else {
            "release build"
        }
    );
    ensure!(
        (1..=MAX_REPEAT).contains(&args.repeat),
        "--repeat must be 1 to {MAX_REPEAT}"
    );
    for run in 1..=args.repeat {
        if args.repeat > 1 {
            println!("\n# run {run} of {}", args.repeat);
        }
        run_scenarios(&args)?;
    }
    let all = args.scenario == Scenario::All;
    if args.repeat > 1 {
        print!("{}", report::merged_markdown(args.repeat));
    }
    if all && args.report != "-" {
        write_report(&args.report, &args, &machine, started.elapsed())?;
        println!("\nwrote {}", args.report);
    }
    Ok(())
}
