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
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Latency,
    Throughput,
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
            anyhow::Ok(())
        })
        .await
        .context("benchmark timed out")?
    })
}
