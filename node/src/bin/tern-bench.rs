//! `tern-bench`: Tern's figures beside the plain-library baseline measured in the same run.
//!
//! `cargo run --release -p tern-node --bin tern-bench -- <latency|throughput|all> [--messages N]`
//!
//! Every scenario prints a table: figure, Tern, baseline, ratio, target. Only ratios travel between
//! machines; the absolute figures are for this machine and this run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm};
use tern_node::engine::Engine;
use tern_node::mailbox::server::MailboxConfig;
use tern_node::mailbox::wire::{MailboxRequest, MailboxResponse, OwnerAuth};
use tern_node::net::{
    ClientBehaviour, ClientBehaviourEvent, EnvelopeAck, EnvelopeRequest, NetConfig, build_swarm,
};
use tern_node::node::{Event, Node, NodeConfig};
use tern_node::store::{KdfParams, MessageStatus, Password};
use tokio::sync::broadcast;

#[derive(Parser, Debug)]
#[command(name = "tern-bench", about = "Tern's figures beside their baselines")]
struct Args {
    scenario: Scenario,
    /// Messages per measurement.
    #[arg(long, default_value_t = 500)]
    messages: usize,
    /// Idle peers to connect to a bootstrap node in the `peers` scenario.
    #[arg(long, default_value_t = 1000)]
    peers: usize,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Latency,
    Throughput,
    Mailbox,
    Peers,
    All,
}

const TEXT_LEN: usize = 1024;
const TIMEOUT: Duration = Duration::from_secs(300);

struct Row {
    figure: &'static str,
    tern: f64,
    baseline: f64,
    unit: &'static str,
    target: &'static str,
}

fn print_table(title: &str, rows: &[Row]) {
    println!("\n## {title}\n");
    println!("| figure | Tern | baseline | ratio | target |");
    println!("| --- | --- | --- | --- | --- |");
    for r in rows {
        let ratio = r.tern / r.baseline;
        println!(
            "| {} | {:.3} {} | {:.3} {} | {:.2}x | {} |",
            r.figure, r.tern, r.unit, r.baseline, r.unit, ratio, r.target
        );
    }
}

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
    let warm = a.send_text(b_key, "warm-up".into()).await?;
    wait_status(&mut a_events, warm.id).await?;
    let warm = b.send_text(a_key, "warm-up".into()).await?;
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
                status: MessageStatus::Delivered,
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
        pair.a.send_text(pair.b_key, text.clone()).await?;
        wait_received(&mut pair.b_events, 1).await?;
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok(samples)
}

/// Messages per second, both directions at once, until every message is durably received.
async fn tern_throughput(pair: &mut Pair, n: usize) -> Result<f64> {
    let text = "y".repeat(TEXT_LEN);
    let start = Instant::now();
    let (a, b) = (pair.a.clone(), pair.b.clone());
    let (a_key, b_key) = (pair.a_key, pair.b_key);
    let (t1, t2) = (text.clone(), text);
    let send_ab = tokio::spawn(async move {
        for _ in 0..n {
            a.send_text(b_key, t1.clone()).await?;
        }
        anyhow::Ok(())
    });
    let send_ba = tokio::spawn(async move {
        for _ in 0..n {
            b.send_text(a_key, t2.clone()).await?;
        }
        anyhow::Ok(())
    });
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
            Row {
                figure: "median",
                tern: ms(percentile(&tern, 0.5)),
                baseline: ms(base_median),
                unit: "ms",
                target: "<= 1.5x",
            },
            Row {
                figure: "p99",
                tern: ms(percentile(&tern, 0.99)),
                baseline: ms(base_p99),
                unit: "ms",
                target: "-",
            },
        ],
    );
    println!(
        "\nbaseline = libp2p request-response round trip ({:.3} ms median) + one durable redb commit ({:.3} ms median)",
        ms(percentile(&rtt, 0.5)),
        ms(percentile(&commit, 0.5))
    );
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
        &[Row {
            figure: "messages/s",
            tern,
            baseline: plain,
            unit: "msg/s",
            target: ">= 0.5x",
        }],
    );
    println!(
        "\nbaseline = the same libp2p request-response stream, no crypto, no store, as many in flight as Tern allows"
    );
    Ok(())
}

// ---- Mailbox: deposits from many peers, and one owner's fetch ----

const DEPOSITORS: usize = 100;

/// Sealed envelopes for one recipient, each carrying a 1 KiB session message.
fn envelopes_for(recipient: &tern_protocol::Identity, n: usize) -> Vec<Vec<u8>> {
    let mut rng = rand::rng();
    let sender = tern_protocol::Identity::generate(&mut rng, 0);
    let expires = tern_node::engine::now_ms() / 1000 + 3600;
    (0..n)
        .map(|i| {
            let mut body = vec![0u8; TEXT_LEN];
            body[..8].copy_from_slice(&(i as u64).to_be_bytes());
            tern_protocol::Envelope::seal(&sender, recipient.public(), &body, expires, &mut rng)
                .map(|e| e.encode())
                .unwrap_or_default()
        })
        .collect()
}

async fn mailbox_request(
    swarm: &mut Swarm<ClientBehaviour>,
    peer: libp2p::PeerId,
    request: MailboxRequest,
) -> Result<MailboxResponse> {
    swarm.behaviour_mut().mailbox.send_request(&peer, request);
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(
                request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                },
            )) => return Ok(response),
            SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(
                request_response::Event::OutboundFailure { error, .. },
            )) => bail!("mailbox request failed: {error}"),
            _ => {}
        }
    }
}

async fn connected_client(
    seed: [u8; 32],
    server: &Multiaddr,
) -> Result<(Swarm<ClientBehaviour>, libp2p::PeerId)> {
    let mut swarm = build_swarm(&seed, &loopback_net())?;
    let peer = tern_node::net::swarm::peer_id_of(server).context("server address without /p2p")?;
    swarm.dial(server.clone())?;
    loop {
        if let SwarmEvent::ConnectionEstablished { peer_id, .. } = swarm.select_next_some().await
            && peer_id == peer
        {
            return Ok((swarm, peer));
        }
    }
}

async fn mailbox(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let password = Password::new("bench".into());
    let engine = Engine::create(
        dir.path(),
        "Mailbox",
        &password,
        KdfParams::INSECURE_FOR_TESTS,
    )?;
    let limits = MailboxConfig {
        quota_envelopes: u32::MAX,
        quota_bytes: u64::MAX,
        max_total_bytes: u64::MAX,
        deposits_per_minute: 1_000_000,
        ..MailboxConfig::default()
    };
    let config = NodeConfig {
        net: loopback_net(),
        serve_mailbox: Some((dir.path().join("mailbox.redb"), limits)),
        ..NodeConfig::default()
    };
    let (server, mut events) = Node::start(engine, config)?;
    let addr = listening(&mut events)
        .await?
        .with(Protocol::P2p(server.peer_id()));
    let owner = tern_protocol::Identity::generate(&mut rand::rng(), 0);
    let envelopes = envelopes_for(&owner, n);
    let size = envelopes.first().map_or(0, Vec::len);

    // n deposits from DEPOSITORS peers at once, each waiting for its durable answer before the next.
    let mut clients = Vec::with_capacity(DEPOSITORS);
    for i in 0..DEPOSITORS {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 10).to_be_bytes());
        clients.push(connected_client(seed, &addr).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, (mut swarm, peer)) in clients.into_iter().enumerate() {
        let mine: Vec<Vec<u8>> = envelopes
            .iter()
            .skip(i)
            .step_by(DEPOSITORS)
            .cloned()
            .collect();
        tasks.push(tokio::spawn(async move {
            for envelope in mine {
                match mailbox_request(&mut swarm, peer, MailboxRequest::Deposit { envelope })
                    .await?
                {
                    MailboxResponse::Deposited { .. } => {}
                    other => bail!("deposit refused: {other:?}"),
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let deposits_per_s = n as f64 / start.elapsed().as_secs_f64();

    // The owner fetches everything, page by page, acknowledging as it goes.
    let (mut swarm, peer) = connected_client([99u8; 32], &addr).await?;
    let start = Instant::now();
    let MailboxResponse::Nonce { nonce } =
        mailbox_request(&mut swarm, peer, MailboxRequest::Challenge).await?
    else {
        bail!("no challenge");
    };
    let mut fetched = 0usize;
    loop {
        let auth = OwnerAuth::sign(&owner, &peer.to_bytes(), nonce);
        let request = MailboxRequest::Fetch {
            auth: auth.clone(),
            max: 64,
        };
        let MailboxResponse::Envelopes { envelopes, more } =
            mailbox_request(&mut swarm, peer, request).await?
        else {
            bail!("fetch refused");
        };
        fetched += envelopes.len();
        let ids = envelopes
            .iter()
            .filter_map(|e| tern_protocol::Envelope::decode(e).ok().map(|e| e.id()))
            .collect();
        mailbox_request(&mut swarm, peer, MailboxRequest::Ack { auth, ids }).await?;
        if !more {
            break;
        }
    }
    let fetch_time = start.elapsed();
    if fetched != n {
        bail!("fetched {fetched} of {n}");
    }
    server.shutdown().await?;

    // Baselines: the same bytes into redb, one batch transaction; and one durable commit per insert.
    let db_dir = tempfile::tempdir()?;
    let db = redb::Database::create(db_dir.path().join("bench.redb"))?;
    let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("bench");
    let start = Instant::now();
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(table)?;
        for (i, e) in envelopes.iter().enumerate() {
            t.insert(i as u64, e.as_slice())?;
        }
    }
    txn.commit()?;
    let batch_per_s = n as f64 / start.elapsed().as_secs_f64();
    let single: Vec<Duration> = redb_commits(200, size)?;
    let single_per_s = 1.0 / percentile(&single, 0.5).as_secs_f64();

    print_table(
        &format!(
            "mailbox: {n} deposits of {size}-byte envelopes from {DEPOSITORS} peers, then one owner fetches them all"
        ),
        &[
            Row {
                figure: "durable deposits/s",
                tern: deposits_per_s,
                baseline: batch_per_s,
                unit: "/s",
                target: ">= 0.5x (batch insert)",
            },
            Row {
                figure: "durable deposits/s vs one commit each",
                tern: deposits_per_s,
                baseline: single_per_s,
                unit: "/s",
                target: "-",
            },
        ],
    );
    println!(
        "\nfetch and acknowledge {n} queued envelopes (pages of 64): {:.1} ms",
        ms(fetch_time)
    );
    Ok(())
}

// ---- Peers: a real tern-bootstrap process holding idle connections ----

/// Resident memory of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

async fn peers(count: usize) -> Result<()> {
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
    let mut child = std::process::Command::new(&bin)
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id();
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let addr: Multiaddr = line
        .trim()
        .strip_prefix("listening ")
        .context("no listen line")?
        .parse()?;
    let result = async {
        // Let the server settle, then connect the peers in waves (the server accepts 256 pending at once).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = rss_kib(pid)?;
        let mut swarms = Vec::with_capacity(count);
        for wave in (0..count).collect::<Vec<_>>().chunks(100) {
            let mut pending = Vec::new();
            for &i in wave {
                let mut seed = [7u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let addr = addr.clone();
                pending.push(tokio::spawn(
                    async move { connected_client(seed, &addr).await },
                ));
            }
            for p in pending {
                swarms.push(p.await??);
            }
        }
        // Keep every swarm polled (identify, ping) while the server settles, then measure.
        let keep = tokio::spawn(async move {
            let mut all = futures::stream::select_all(swarms.into_iter().map(|(s, _)| s));
            while all.next().await.is_some() {}
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = rss_kib(pid)?;
        keep.abort();
        anyhow::Ok((before, after))
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (before, after) = result?;
    let per_peer_kb = (after.saturating_sub(before)) as f64 * 1.024 / count as f64;
    print_table(
        &format!(
            "peers: {count} idle peers connected to a tern-bootstrap process over loopback TCP"
        ),
        &[Row {
            figure: "resident memory per connected idle peer",
            tern: per_peer_kb,
            baseline: 600.0,
            unit: "KB",
            target: "< 50 KB (baseline: ~600 KB/connection reported for other libp2p stacks)",
        }],
    );
    println!(
        "\nbootstrap resident memory: {:.1} MiB idle, {:.1} MiB with {count} peers",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tern-bench")
        .build()?;
    rt.block_on(async {
        tokio::time::timeout(TIMEOUT, async {
            println!(
                "# tern-bench on {} cores, {}",
                std::thread::available_parallelism().map_or(0, |n| n.get()),
                if cfg!(debug_assertions) {
                    "DEBUG build (use --release)"
                } else {
                    "release build"
                }
            );
            if matches!(args.scenario, Scenario::Latency | Scenario::All) {
                latency(args.messages).await?;
            }
            if matches!(args.scenario, Scenario::Throughput | Scenario::All) {
                throughput(args.messages).await?;
            }
            if matches!(args.scenario, Scenario::Mailbox | Scenario::All) {
                mailbox(args.messages.max(1000)).await?;
            }
            if matches!(args.scenario, Scenario::Peers | Scenario::All) {
                peers(args.peers).await?;
            }
            anyhow::Ok(())
        })
        .await
        .context("benchmark timed out")?
    })
}
