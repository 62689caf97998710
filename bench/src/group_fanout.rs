//! `group-fanout` (issue 13): one text to a group of [`MEMBERS`], each member a separate
//! `tern-bench group-peer` process on this machine, timed from the author's send call to the last member's
//! durable store. Baseline, in the same processes and alternating with it round by round: the same text sent
//! by the same author as [`MEMBERS`]` - 1` sequential 1:1 messages to the same people, timed the same way.
//!
//! Set-up, not timed: fresh profiles, the author has every member as a contact and each member the author
//! (members are not each other's contacts). The nodes start in this process, the author creates the group,
//! and everyone waits until all are members; then they stop, and the timed part starts each profile again as
//! its own process on loopback TCP, every member dialling the author. A round starts once the author sees
//! every member on the group's gossip topic and its outbox is empty. Group receipts are off (see [`config`]).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use libp2p::Multiaddr;
use tern_node::api::{ConversationId, Event};
use tern_node::engine::{Engine, now_ms};
use tern_node::net::NetConfig;
use tern_node::node::{GroupReceipts, Node, NodeConfig};
use tern_node::store::{KdfParams, Password};

use crate::{Row, Target, print_table};

/// The group's size, the author included.
pub const MEMBERS: usize = 20;
const PASSWORD: &str = "bench";
/// The author listens on this port in the timed part, member `i` on `+ i`; the set-up uses `+ 100 + i`.
const BASE_PORT: u16 = 4911;
const SETUP_TIMEOUT: Duration = Duration::from_secs(300);
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
const TEXT: &str = "one text for everyone in the group, and the same text one by one";

fn listen(i: usize, setup: bool) -> String {
    let port = BASE_PORT + u16::try_from(i + if setup { 100 } else { 0 }).unwrap_or(0);
    format!("/ip4/127.0.0.1/tcp/{port}")
}

fn config(listen: &str) -> Result<NodeConfig> {
    Ok(NodeConfig {
        net: NetConfig {
            listen: vec![listen.parse()?],
            lan_only: true,
            mdns: false,
            ..NetConfig::default()
        },
        // A group's delivered receipts (§18.10) go out a second after a text is stored, and every member
        // decrypts everyone's: left on, that work would still run when the next step starts. The timed span
        // ends at the last store either way.
        group_receipts: GroupReceipts::Off,
        ..NodeConfig::default()
    })
}

/// Polls `check` every 20 ms until it holds (a readiness poll of the set-up, never inside a timed span).
async fn until(what: &str, mut check: impl AsyncFnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    while !check().await? {
        ensure!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Dials `addr` until `node` has a connection (the other side may not listen yet).
async fn connect(node: &Node, addr: &Multiaddr) -> Result<()> {
    until("connected", async || {
        let _ = node.dial(addr.clone()).await;
        Ok(!node.status().await?.connected_peers.is_empty())
    })
    .await
}

/// Makes the profiles and the group (see the module's comment); returns the profile folders, author first.
async fn set_up(root: &Path) -> Result<Vec<PathBuf>> {
    let password = Password::new(PASSWORD.into());
    let dirs: Vec<PathBuf> = (0..MEMBERS).map(|i| root.join(format!("p{i}"))).collect();
    let mut engines = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        engines.push(Engine::create(
            dir,
            &format!("Member {i}"),
            &password,
            KdfParams::INSECURE_FOR_TESTS,
        )?);
    }
    let author_link = engines[0].card().invite_link();
    let mut keys = Vec::new();
    for i in 1..MEMBERS {
        let link = engines[i].card().invite_link();
        engines[0].add_contact(&link, None)?;
        engines[i].add_contact(&author_link, None)?;
        keys.push(engines[i].key());
    }
    let mut nodes = Vec::new();
    for (i, engine) in engines.into_iter().enumerate() {
        nodes.push(Node::start(engine, config(&listen(i, true))?)?.0);
    }
    let author_addr: Multiaddr = format!(
        "{}/p2p/{}",
        listen(0, true),
        nodes[0].status().await?.peer_id
    )
    .parse()?;
    for node in &nodes[1..] {
        connect(node, &author_addr).await?;
    }
    nodes[0].group_create("Bench".into(), keys).await?;
    for node in &nodes {
        until("every member is in the group", async || {
            Ok(node
                .groups()
                .await?
                .first()
                .is_some_and(|g| g.members == MEMBERS))
        })
        .await?;
    }
    until("the author's outbox is empty", async || {
        Ok(nodes[0].status().await?.outbox_len == 0)
    })
    .await?;
    for node in &nodes {
        node.shutdown().await?;
    }
    Ok(dirs)
}

/// One `group-peer` process and its stdin (the author's takes commands).
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `group-peer ARGS`; its stdout lines reach `lines` as `(index, line)`.
fn spawn(index: usize, args: &[String], lines: Sender<(usize, String)>) -> Result<Peer> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("group-peer")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawning a group-peer process")?;
    let stdout = child.stdout.take().context("no stdout")?;
    std::thread::Builder::new()
        .name(format!("group-peer-{index}"))
        .spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send((index, line)).is_err() {
                    break;
                }
            }
        })?;
    let stdin = child.stdin.take();
    Ok(Peer { child, stdin })
}

/// Waits for the next line from anyone that starts with `word`; returns who and the number after it.
fn next(lines: &Receiver<(usize, String)>, word: &str) -> Result<(usize, u64)> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let (who, line) = line(lines, deadline)?;
        if let Some(rest) = line.strip_prefix(word) {
            return Ok((who, rest.trim().parse().unwrap_or(0)));
        }
    }
}

/// The next line from anyone, before `deadline`; a child's `error` line ends the run.
fn line(lines: &Receiver<(usize, String)>, deadline: Instant) -> Result<(usize, String)> {
    let left = deadline.saturating_duration_since(Instant::now());
    let (who, line) = lines
        .recv_timeout(left)
        .with_context(|| format!("a group-peer was silent for {STEP_TIMEOUT:?}"))?;
    if line.starts_with("error") {
        bail!("group-peer {who}: {line}");
    }
    Ok((who, line))
}

/// One timed send (`group` or `direct`): from the author's send call to the last of the members' stores.
/// The lines come from several reader threads, so they are taken in any order.
fn one(author: &mut Peer, lines: &Receiver<(usize, String)>, mode: &str) -> Result<Duration> {
    let stdin = author.stdin.as_mut().context("the author's stdin")?;
    writeln!(stdin, "{mode}")?;
    stdin.flush()?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    let (mut sent, mut last, mut idle) = (None, 0, false);
    let mut seen = [false; MEMBERS];
    let mut stored = 0;
    while sent.is_none() || !idle || stored < MEMBERS - 1 {
        let (who, line) = line(lines, deadline)?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("sent"), Some(at), None) => sent = Some(at.parse::<u64>()?),
            (Some("idle"), ..) => idle = true,
            (Some("received"), Some(kind), Some(at)) => {
                ensure!(
                    kind == mode,
                    "member {who} stored a {kind} text during a {mode} round"
                );
                ensure!(!seen[who], "member {who} stored the {mode} text twice");
                seen[who] = true;
                stored += 1;
                last = last.max(at.parse::<u64>()?);
            }
            _ => bail!("group-peer {who} said {line:?}"),
        }
    }
    let sent = sent.unwrap_or(last);
    Ok(Duration::from_millis(last.saturating_sub(sent)))
}

pub fn run(rounds: usize) -> Result<()> {
    ensure!(rounds >= 1, "--rounds must be at least 1");
    let root = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dirs =
        rt.block_on(async { tokio::time::timeout(SETUP_TIMEOUT, set_up(root.path())).await })??;
    drop(rt);

    let (tx, lines) = std::sync::mpsc::channel();
    let author_peer = tern_node::node::peer_id_of(
        &Engine::open(&dirs[0], &Password::new(PASSWORD.into()))?.key(),
    )
    .context("the author's peer id")?;
    let author_addr = format!("{}/p2p/{author_peer}", listen(0, false));
    let mut peers = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let dial = if i == 0 {
            "author".to_owned()
        } else {
            author_addr.clone()
        };
        peers.push(spawn(
            i,
            &[dir.display().to_string(), listen(i, false), dial],
            tx.clone(),
        )?);
    }
    drop(tx);
    for _ in 0..MEMBERS {
        next(&lines, "ready")?;
    }
    let (mut group, mut direct) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so neither always meets the other's leftovers.
        if round % 2 == 0 {
            group.push(one(&mut peers[0], &lines, "group")?);
            direct.push(one(&mut peers[0], &lines, "direct")?);
        } else {
            direct.push(one(&mut peers[0], &lines, "direct")?);
            group.push(one(&mut peers[0], &lines, "group")?);
        }
    }
    drop(peers);
    group.sort();
    direct.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (g_med, d_med) = (ms(group[group.len() / 2]), ms(direct[direct.len() / 2]));
    let rows = [
        Row::new(
            &format!("one text to a {MEMBERS}-member group until all stored, median of {rounds}"),
            g_med,
            d_med,
            "ms",
            Target::AtMost(1.0),
        ),
        Row::new(
            "the same, slowest round",
            ms(group[group.len() - 1]),
            ms(direct[direct.len() - 1]),
            "ms",
            Target::AtMost(1.0),
        ),
    ];
    print_table(
        &format!(
            "group-fanout: {MEMBERS} processes on loopback; baseline: {} sequential 1:1 sends of the same text",
            MEMBERS - 1
        ),
        &rows,
    );
    crate::note(&format!(
        "group: {:?} ms; 1:1: {:?} ms (every round, sorted)",
        group.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
        direct.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    ));
    Ok(())
}

/// The child: `group-peer <profile> <listen> <author|author's address>`. The author prints `ready` once every
/// member is on the group's topic, then takes `group` or `direct` lines on stdin: it prints `sent <unix ms>`,
/// sends, and prints `idle` once its outbox is empty. A member prints `ready` once it is on the topic, then
/// `received group|direct <unix ms>` for each text it stores.
pub fn peer(args: &[String]) -> Result<()> {
    let [profile, listen, role] = args else {
        bail!("usage: group-peer <profile> <listen> <author|author's address>");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let engine = Engine::open(Path::new(profile), &Password::new(PASSWORD.into()))?;
        let (node, mut events) = Node::start(engine, config(listen)?)?;
        let group = node
            .groups()
            .await?
            .first()
            .context("no group in the profile")?
            .id;
        if role == "author" {
            until("every member is on the topic", async || {
                Ok(node.group_gossip(group).await?.topic_peers >= MEMBERS - 1)
            })
            .await?;
            let members: Vec<_> = node
                .group_members(group)
                .await?
                .into_iter()
                .map(|m| m.key)
                .filter(|k| *k != node.key())
                .collect();
            ensure!(
                members.len() == MEMBERS - 1,
                "the author sees {} members",
                members.len()
            );
            println!("ready 0");
            let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
            let mut line = String::new();
            loop {
                line.clear();
                if tokio::io::AsyncBufReadExt::read_line(&mut stdin, &mut line).await? == 0 {
                    return Ok(());
                }
                println!("sent {}", now_ms());
                match line.trim() {
                    "group" => {
                        node.send_text(group, TEXT.into()).await?;
                    }
                    "direct" => {
                        for key in &members {
                            node.send_text(ConversationId::Direct(*key), TEXT.into())
                                .await?;
                        }
                    }
                    other => bail!("unknown command {other:?}"),
                }
                until("the outbox is empty", async || {
                    Ok(node.status().await?.outbox_len == 0)
                })
                .await?;
                println!("idle 0");
            }
        }
        connect(&node, &role.parse()?).await?;
        until("on the topic", async || {
            let g = node.group_gossip(group).await?;
            Ok(g.subscribed && g.topic_peers >= 1)
        })
        .await?;
        println!("ready 0");
        loop {
            if let Event::MessageReceived { message, .. } = events.recv().await?
                && !message.system
            {
                let mode = match message.conversation {
                    ConversationId::Group(_) => "group",
                    _ => "direct",
                };
                println!("received {mode} {}", now_ms());
            }
        }
    });
    if let Err(e) = &result {
        println!("error {e:#}");
    }
    result
}
