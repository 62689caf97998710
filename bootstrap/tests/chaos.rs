//! The chaos run: 5 `tern-node run` processes and 2 `tern-bootstrap` processes (the mailboxes), every link
//! between them through a loopback TCP proxy the driver can cut. With a fixed seed the driver sends messages
//! between random pairs while it kills nodes with SIGKILL and restarts them, kills a bootstrap node, and cuts
//! links (the proxy drops every connection on the link and refuses new ones until healed). Then it heals
//! everything, waits until every outbox and mailbox is empty, stops the nodes, opens every profile with
//! `tern-node inbox`, and checks that every message whose send was acknowledged is in its recipient's
//! history exactly once and is `delivered` at its sender. It prints messages sent, delivered, lost,
//! duplicated, kills and partitions.
//!
//! Every node runs `--lan-only --no-mdns`: it knows no addresses but the proxy addresses it is given (peers
//! with `--peer`, mailboxes with `--mailbox-node`), so all of its traffic crosses a proxy. The DHT is not
//! part of this run (it is tested in `federation.rs` and the node tests).
//!
//! `cargo test -p tern-bootstrap --test chaos -- --nocapture` runs the short version (CI: 600 messages);
//! `TERN_CHAOS_MESSAGES=3000 TERN_CHAOS_SEED=7` a longer one (docs/testing.md).

use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::Value;
use tern_testkit::cli::{Cli, FAST_KDF, ok, tern_node_bin};
use tern_testkit::metrics::{http_get, sample};
use tern_testkit::net::free_port;
use tokio::{net::TcpListener, sync::watch};

/// `tern-node` processes in the run (`TERN_CHAOS_NODES`, default 5, at least 3).
fn node_count() -> usize {
    env_or("TERN_CHAOS_NODES", 5usize).max(3)
}

/// `tern-bootstrap` processes serving mailboxes (`TERN_CHAOS_BOOTSTRAPS`, default 2, at least 1).
fn bootstrap_count() -> usize {
    env_or("TERN_CHAOS_BOOTSTRAPS", 2usize).max(1)
}
const PASSWORD: &str = "chaos-password";
/// How long the healed network may take to deliver everything.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(240);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tern(profile: &Path) -> Command {
    Cli::new(tern_node_bin(), profile, PASSWORD)
        .env(
            "TERN_LOG",
            &std::env::var("TERN_CHAOS_LOG_LEVEL").unwrap_or_else(|_| "info".to_owned()),
        )
        .command(&[])
}

// ---------------------------------------------------------------------------------------------------------
// The proxy: one listener per directed link, forwarding to a fixed port; cut drops everything on it.

struct Link {
    port: u16,
    cut: Arc<AtomicBool>,
    epoch: watch::Sender<u64>,
}

impl Link {
    /// `leaks` counts chunks in which a message text (which all start with [`PLAINTEXT_MARK`]) crossed the
    /// link in clear.
    async fn start(target: u16, leaks: &Arc<AtomicUsize>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (epoch, _) = watch::channel(0u64);
        let (cut2, epoch2, leaks2) = (Arc::clone(&cut), epoch.clone(), Arc::clone(leaks));
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if cut2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cuts = epoch2.subscribe();
                let leaks = Arc::clone(&leaks2);
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], target)))
                            .await
                    else {
                        return;
                    };
                    let (mut in_read, mut in_write) = inbound.split();
                    let (mut out_read, mut out_write) = outbound.split();
                    tokio::select! {
                        _ = pump(&mut in_read, &mut out_write, &leaks) => {}
                        _ = pump(&mut out_read, &mut in_write, &leaks) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { port, cut, epoch }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Every message text starts with this; the proxies look for it in every byte they carry.
const PLAINTEXT_MARK: &[u8] = b"chaos ";

/// Copies one direction of a proxied connection, counting any chunk that shows a message text in clear
/// (keeping the last few bytes of the previous chunk, so a mark split between reads is found too).
async fn pump(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    leaks: &AtomicUsize,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        tail.extend_from_slice(&buf[..n]);
        if tail
            .windows(PLAINTEXT_MARK.len())
            .any(|w| w == PLAINTEXT_MARK)
        {
            leaks.fetch_add(1, Ordering::SeqCst);
        }
        let keep = tail.len().saturating_sub(PLAINTEXT_MARK.len() - 1);
        tail.drain(..keep);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The processes.

/// A line from a child's stdout: (which process, which incarnation, the line).
type Line = (usize, u32, String);

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    incarnation: u32,
}

impl Proc {
    /// Starts `cmd`, its stdout lines sent to `lines` and its stderr (the log) appended to `log`.
    fn spawn(
        mut cmd: Command,
        who: usize,
        incarnation: u32,
        lines: &mpsc::Sender<Line>,
        log: &Path,
    ) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let tx = lines.clone();
        std::thread::Builder::new()
            .name(format!("chaos-{who}-{incarnation}"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((who, incarnation, line)).is_err() {
                        break;
                    }
                }
            })
            .unwrap();
        Self {
            stdin: child.stdin.take(),
            child,
            incarnation,
        }
    }

    fn send(&mut self, line: &str) -> bool {
        match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}")
                .and_then(|()| stdin.flush())
                .is_ok(),
            None => false,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdin = None;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Bootstrap {
    dir: PathBuf,
    port: u16,
    metrics: SocketAddr,
    peer_id: String,
    proc: Option<Proc>,
}

struct NodeSpec {
    name: String,
    dir: PathBuf,
    port: u16,
    peer_id: String,
    proc: Option<Proc>,
}

/// Everything the driver tracks about a message.
#[derive(Debug, Clone)]
struct Sent {
    to: usize,
    /// The send was acknowledged (the `ok` answer arrived): it is durably queued.
    acked: bool,
}

struct Lab {
    /// Where every process's stderr goes (`TERN_CHAOS_LOGS` keeps them; by default a temporary directory).
    logs: PathBuf,
    bootstraps: Vec<Bootstrap>,
    nodes: Vec<NodeSpec>,
    /// `links[(from, to)]`: `to` is a node index, or `node_count() + b` for bootstrap `b`.
    links: HashMap<(usize, usize), Link>,
    lines_tx: mpsc::Sender<Line>,
    lines: mpsc::Receiver<Line>,
    incarnations: u32,
    /// Messages by text.
    sent: BTreeMap<String, Sent>,
    /// Texts sent by each node, in the order sent, whose `ok` has not arrived yet.
    pending: Vec<std::collections::VecDeque<String>>,
    /// Status answers, per node: the outbox length it reported last.
    outbox: Vec<Option<u64>>,
}

impl Lab {
    fn start_bootstrap(&mut self, b: usize) {
        self.incarnations += 1;
        let spec = &self.bootstraps[b];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern-bootstrap"));
        cmd.arg("--data-dir")
            .arg(&spec.dir)
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", spec.port)])
            .args(["--metrics", &spec.metrics.to_string()])
            .env("TERN_LOG", "info");
        let log = self.logs.join(format!("bootstrap{b}.log"));
        let proc = Proc::spawn(
            cmd,
            node_count() + b,
            self.incarnations,
            &self.lines_tx,
            &log,
        );
        self.bootstraps[b].proc = Some(proc);
    }

    fn start_node(&mut self, n: usize) {
        self.incarnations += 1;
        let spec = &self.nodes[n];
        let mut cmd = tern(&spec.dir);
        cmd.args([
            "run",
            "--lan-only",
            "--no-mdns",
            "--listen",
            &format!("/ip4/127.0.0.1/tcp/{}", spec.port),
        ]);
        for (m, other) in self.nodes.iter().enumerate() {
            if m != n {
                let port = self.links[&(n, m)].port;
                cmd.args([
                    "--peer",
                    &format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", other.peer_id),
                ]);
            }
        }
        for (b, boot) in self.bootstraps.iter().enumerate() {
            let port = self.links[&(n, node_count() + b)].port;
            cmd.args([
                "--mailbox-node",
                &format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", boot.peer_id),
            ]);
        }
        let log = self.logs.join(format!("node{n}.log"));
        let proc = Proc::spawn(cmd, n, self.incarnations, &self.lines_tx, &log);
        self.nodes[n].proc = Some(proc);
    }

    fn node_up(&self, n: usize) -> bool {
        self.nodes[n].proc.is_some()
    }

    fn kill_node(&mut self, n: usize) {
        if let Some(mut proc) = self.nodes[n].proc.take() {
            proc.kill();
        }
        // Sends without an answer may or may not have been committed: not counted as sent.
        self.pending[n].clear();
    }

    /// Cuts (or heals) both directions of the link between `a` and `b`.
    fn set_link(&self, a: usize, b: usize, cut: bool) {
        for key in [(a, b), (b, a)] {
            if let Some(link) = self.links.get(&key) {
                if cut { link.cut() } else { link.heal() }
            }
        }
    }

    /// Handles every line that has arrived.
    fn drain(&mut self) {
        while let Ok((who, incarnation, line)) = self.lines.try_recv() {
            if who >= node_count() {
                continue;
            }
            let current = self.nodes[who].proc.as_ref().map(|p| p.incarnation);
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            match value["ok"].as_str() {
                Some("send") if current == Some(incarnation) => {
                    if let Some(text) = self.pending[who].pop_front()
                        && let Some(sent) = self.sent.get_mut(&text)
                    {
                        sent.acked = true;
                    }
                }
                Some("status") if current == Some(incarnation) => {
                    self.outbox[who] = value["outbox"].as_u64();
                }
                _ => {}
            }
            if value.get("error").is_some() && current == Some(incarnation) {
                // A send that failed answers an error instead of ok: it is not queued.
                self.pending[who].pop_front();
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, seq: usize) {
        let text = format!(
            "chaos {seq} from {} to {}",
            self.nodes[from].name, self.nodes[to].name
        );
        let command =
            serde_json::json!({"cmd": "send", "to": self.nodes[to].name, "text": text}).to_string();
        let Some(proc) = self.nodes[from].proc.as_mut() else {
            return;
        };
        if proc.send(&command) {
            self.sent.insert(text.clone(), Sent { to, acked: false });
            self.pending[from].push_back(text);
        }
    }

    /// An unlabelled sample of bootstrap node `b`'s metrics.
    async fn metric(&self, b: usize, name: &str) -> Option<f64> {
        let text = http_get(self.bootstraps[b].metrics, "/metrics")
            .await
            .ok()?;
        sample(&text, name)
    }

    async fn mailbox_envelopes(&self, b: usize) -> Option<f64> {
        self.metric(b, "tern_bootstrap_mailbox_envelopes").await
    }
}

/// Waits for a line from process `who` (current incarnation) matching `pred`, handling others meanwhile.
fn wait_line(lab: &mut Lab, who: usize, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lab.lines.recv_timeout(left) {
            Ok((w, _, line)) if w == who && pred(&line) => return line,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

#[derive(Default, Debug)]
struct Faults {
    kills: usize,
    restarts: usize,
    bootstrap_kills: usize,
    /// Bootstrap nodes SIGKILLed together near the end (every one of them), back only when all heals.
    all_down_kills: usize,
    partitions: usize,
    healed: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_run_loses_nothing_and_duplicates_nothing() {
    let messages: usize = env_or("TERN_CHAOS_MESSAGES", 600);
    let seed: u64 = env_or("TERN_CHAOS_SEED", 7);
    let rate: u64 = env_or("TERN_CHAOS_RATE", 10);
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (lines_tx, lines) = mpsc::channel();
    let leaks = Arc::new(AtomicUsize::new(0));

    // Profiles, each with every other node as a contact.
    let mut nodes = Vec::new();
    let mut invites = Vec::new();
    for n in 0..node_count() {
        let dir = work.path().join(format!("node{n}"));
        let name = format!("Node{n}");
        let init = ok(tern(&dir).args(["init", "--name", &name]).args(FAST_KDF));
        invites.push(init[0]["invite"].as_str().unwrap().to_owned());
        nodes.push(NodeSpec {
            name,
            dir,
            port: free_port(),
            peer_id: init[0]["peer_id"].as_str().unwrap().to_owned(),
            proc: None,
        });
    }
    for (n, node) in nodes.iter().enumerate() {
        for (m, invite) in invites.iter().enumerate() {
            if n != m {
                ok(tern(&node.dir).args(["contact", "add", invite]));
            }
        }
    }

    let logs =
        std::env::var_os("TERN_CHAOS_LOGS").map_or_else(|| work.path().join("logs"), PathBuf::from);
    std::fs::create_dir_all(&logs).unwrap();
    let mut lab = Lab {
        logs,
        bootstraps: (0..bootstrap_count())
            .map(|b| Bootstrap {
                dir: work.path().join(format!("bootstrap{b}")),
                port: free_port(),
                metrics: SocketAddr::from(([127, 0, 0, 1], free_port())),
                peer_id: String::new(),
                proc: None,
            })
            .collect(),
        nodes,
        links: HashMap::new(),
        lines_tx,
        lines,
        incarnations: 0,
        sent: BTreeMap::new(),
        pending: vec![Default::default(); node_count()],
        outbox: vec![None; node_count()],
    };
    for b in 0..bootstrap_count() {
        lab.start_bootstrap(b);
        let line = wait_line(&mut lab, node_count() + b, "a bootstrap address", |l| {
            l.starts_with("listening ")
        });
        lab.bootstraps[b].peer_id = line.rsplit("/p2p/").next().unwrap().trim().to_owned();
    }
    for n in 0..node_count() {
        for m in 0..node_count() + bootstrap_count() {
            if m != n {
                let target = if m < node_count() {
                    lab.nodes[m].port
                } else {
                    lab.bootstraps[m - node_count()].port
                };
                lab.links.insert((n, m), Link::start(target, &leaks).await);
            }
        }
    }
    for n in 0..node_count() {
        lab.start_node(n);
    }
    let mut started_nodes = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while started_nodes.len() < node_count() {
        match lab
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok((n, _, line)) if n < node_count() && line.contains("\"event\":\"started\"") => {
                started_nodes.insert(n);
            }
            Ok(_) => {}
            Err(_) => panic!(
                "nodes {started_nodes:?} of {} started (logs in {})",
                node_count(),
                lab.logs.display()
            ),
        }
    }

    // The run: a send every 1/rate seconds; now and then a fault, and faults end after a while.
    let mut faults = Faults::default();
    let mut down_until: HashMap<usize, usize> = HashMap::new();
    let mut boot_down_until: Option<(usize, usize)> = None;
    let mut cut_until: Vec<((usize, usize), usize)> = Vec::new();
    let fault_every = (messages / 40).max(5);
    // A fault lasts a seeded number of seconds, counted in sends: long enough for senders to give up on
    // the direct route and deposit with the mailboxes (the first retry comes after 2 s).
    let rate_sends = usize::try_from(rate).unwrap();
    let lasting = |rng: &mut ChaCha20Rng, min_s: usize, max_s: usize| {
        rng.random_range(min_s * rate_sends..max_s * rate_sends)
    };
    let tick = Duration::from_micros(1_000_000 / rate);
    let mut next = tokio::time::Instant::now();
    for seq in 0..messages {
        // End faults that are due.
        for n in down_until
            .iter()
            .filter(|(_, until)| **until <= seq)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
        {
            down_until.remove(&n);
            lab.start_node(n);
            faults.restarts += 1;
        }
        if let Some((b, until)) = boot_down_until
            && until <= seq
        {
            lab.start_bootstrap(b);
            boot_down_until = None;
        }
        cut_until.retain(|((a, b), until)| {
            if *until <= seq {
                lab.set_link(*a, *b, false);
                faults.healed += 1;
                false
            } else {
                true
            }
        });

        // SIGKILL a bootstrap node once, a third of the way in, mail on it and all; back a while later.
        if seq == messages / 3 {
            let b = rng.random_range(0..bootstrap_count());
            if let Some(mut proc) = lab.bootstraps[b].proc.take() {
                proc.kill();
            }
            faults.bootstrap_kills += 1;
            boot_down_until = Some((b, seq + 12 * rate_sends));
        }
        // Near the end every bootstrap node goes down at once, mail on them and all, and stays down until
        // everything heals: what is written meanwhile waits for them (the settle time below).
        if seq == messages * 9 / 10 {
            boot_down_until = None;
            for b in 0..bootstrap_count() {
                if let Some(mut proc) = lab.bootstraps[b].proc.take() {
                    proc.kill();
                    faults.all_down_kills += 1;
                }
            }
        }
        if seq > 0 && seq % fault_every == 0 && seq < messages * 9 / 10 {
            if rng.random_range(0..2) == 0 && down_until.len() < 2 {
                // SIGKILL a node (at most two down at once), back after a while.
                let n = rng.random_range(0..node_count());
                if lab.node_up(n) {
                    lab.kill_node(n);
                    faults.kills += 1;
                    down_until.insert(n, seq + lasting(&mut rng, 3, 12));
                }
            } else {
                // Cut a link: between two nodes, or between a node and a bootstrap node.
                let a = rng.random_range(0..node_count());
                let b = rng.random_range(0..node_count() + bootstrap_count());
                if a != b {
                    lab.set_link(a, b, true);
                    faults.partitions += 1;
                    cut_until.push(((a, b), seq + lasting(&mut rng, 3, 12)));
                }
            }
        }

        let live: Vec<usize> = (0..node_count()).filter(|n| lab.node_up(*n)).collect();
        if let Some(&from) = live.get(rng.random_range(0..live.len().max(1))) {
            let mut to = rng.random_range(0..node_count() - 1);
            if to >= from {
                to += 1;
            }
            lab.send(from, to, seq);
        }
        lab.drain();
        next += tick;
        tokio::time::sleep_until(next).await;
    }
    let sending_done = started.elapsed();

    // Heal everything and bring everyone back.
    for ((a, b), _) in cut_until.drain(..) {
        lab.set_link(a, b, false);
        faults.healed += 1;
    }
    for b in 0..bootstrap_count() {
        if lab.bootstraps[b].proc.is_none() {
            lab.start_bootstrap(b);
        }
    }
    for n in down_until.keys().copied().collect::<Vec<_>>() {
        lab.start_node(n);
        faults.restarts += 1;
    }
    // Every server is back (and every node and link): the settle time runs from here.
    let servers_back = Instant::now();

    // Converged: every node's outbox and every mailbox empty, twice in a row, every send answered.
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut quiet = 0;
    // When the first poll of the final quiet run started (the polls are 2 s apart).
    let mut quiet_since = servers_back;
    while quiet < 2 {
        let poll_started = Instant::now();
        assert!(
            Instant::now() < deadline,
            "not converged: outboxes {:?}",
            lab.outbox
        );
        lab.outbox = vec![None; node_count()];
        for n in 0..node_count() {
            if let Some(proc) = lab.nodes[n].proc.as_mut() {
                proc.send(r#"{"cmd":"status"}"#);
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        lab.drain();
        let mut mailboxes = 0.0;
        for b in 0..bootstrap_count() {
            mailboxes += lab.mailbox_envelopes(b).await.unwrap_or(f64::MAX);
        }
        let outboxes: u64 = lab.outbox.iter().map(|o| o.unwrap_or(u64::MAX / 8)).sum();
        let unanswered: usize = lab.pending.iter().map(|p| p.len()).sum();
        println!(
            "  settling, {:.0?} after the servers came back: outboxes {:?}, mailboxes {mailboxes}, unanswered sends {unanswered}",
            poll_started.saturating_duration_since(servers_back),
            lab.outbox
        );
        if outboxes == 0 && mailboxes == 0.0 && unanswered == 0 {
            if quiet == 0 {
                quiet_since = poll_started;
            }
            quiet += 1;
        } else {
            quiet = 0;
        }
    }
    let converged = started.elapsed();
    let settled = quiet_since.saturating_duration_since(servers_back);
    // How much went the offline way (counters restart with a restarted bootstrap node: a lower bound).
    let mut deposits = 0.0;
    for b in 0..bootstrap_count() {
        deposits += lab
            .metric(b, "tern_bootstrap_mailbox_deposits_total")
            .await
            .unwrap_or(0.0);
    }

    // Stop every node gracefully, then open every profile and read its whole history.
    for n in 0..node_count() {
        if let Some(mut proc) = lab.nodes[n].proc.take() {
            proc.send(r#"{"cmd":"quit"}"#);
            let status = proc.child.wait().unwrap();
            assert!(status.success(), "node {n} did not stop cleanly: {status}");
        }
    }
    // (texts by recipient) -> how many times each is in the recipient's history; and sender statuses.
    let mut received: HashMap<(usize, String), usize> = HashMap::new();
    let mut status_at_sender: HashMap<String, String> = HashMap::new();
    for (n, node) in lab.nodes.iter().enumerate() {
        for line in ok(tern(&node.dir).args(["inbox", "--limit", "1000000"])) {
            let text = line["text"].as_str().unwrap_or_default().to_owned();
            match line["direction"].as_str() {
                Some("in") => *received.entry((n, text)).or_default() += 1,
                Some("out") => {
                    status_at_sender
                        .insert(text, line["status"].as_str().unwrap_or_default().to_owned());
                }
                _ => {}
            }
        }
    }

    let acked: Vec<(&String, &Sent)> = lab.sent.iter().filter(|(_, s)| s.acked).collect();
    let mut delivered = 0;
    let mut lost = 0;
    let mut duplicated = 0;
    let mut not_delivered_status = 0;
    let mut not_delivered_by_status: BTreeMap<String, usize> = BTreeMap::new();
    for (text, sent) in &acked {
        match received
            .get(&(sent.to, (*text).clone()))
            .copied()
            .unwrap_or(0)
        {
            0 => lost += 1,
            1 => delivered += 1,
            k => {
                delivered += 1;
                duplicated += k - 1;
            }
        }
        let status = status_at_sender
            .get(*text)
            .map_or("missing", String::as_str);
        if status != "delivered" {
            not_delivered_status += 1;
            *not_delivered_by_status
                .entry(status.to_owned())
                .or_insert(0usize) += 1;
            if not_delivered_status <= 5 {
                println!("  not delivered at its sender: {text:?} is {status}");
            }
        }
    }
    // Sends cut off by a kill before their answer: if they were committed they must arrive once too.
    let unacked: Vec<&String> = lab
        .sent
        .iter()
        .filter(|(_, s)| !s.acked)
        .map(|(t, _)| t)
        .collect();
    let mut unacked_arrived = 0;
    for text in &unacked {
        let sent = &lab.sent[*text];
        match received
            .get(&(sent.to, (*text).clone()))
            .copied()
            .unwrap_or(0)
        {
            0 => {}
            1 => unacked_arrived += 1,
            k => duplicated += k - 1,
        }
    }

    println!(
        "\nchaos run (seed {seed}, {} nodes, {} bootstrap nodes):",
        node_count(),
        bootstrap_count()
    );
    println!("  messages sent (acknowledged): {}", acked.len());
    println!("  delivered:                    {delivered}");
    println!("  lost:                         {lost}");
    println!("  not delivered at the sender, by status: {not_delivered_by_status:?}");
    println!("  duplicated:                   {duplicated}");
    println!("  sender status not delivered:  {not_delivered_status}");
    println!(
        "  sends cut off by a kill:      {} ({unacked_arrived} of them committed and delivered once)",
        unacked.len()
    );
    println!(
        "  kills: {} node SIGKILLs ({} restarts), {} bootstrap SIGKILL, then all {} bootstrap nodes at once",
        faults.kills, faults.restarts, faults.bootstrap_kills, faults.all_down_kills
    );
    println!(
        "  partitions: {} link cuts, {} healed",
        faults.partitions, faults.healed
    );
    println!("  envelopes deposited with the mailboxes (at least): {deposits}");
    let leaked = leaks.load(Ordering::SeqCst);
    println!("  chunks with message text in clear on any link: {leaked}");
    println!(
        "  time: {:.0?} sending, converged after {:.0?}, stores opened cleanly: {n}/{n}",
        sending_done,
        converged,
        n = node_count()
    );
    println!(
        "  settle time after every server is back: {:.1} s (outboxes and mailboxes empty; polled every 2 s)",
        settled.as_secs_f64()
    );
    let _ = std::io::stdout().flush();

    assert!(
        acked.len() >= messages * 8 / 10,
        "too few sends acknowledged: {}",
        acked.len()
    );
    assert!(
        faults.kills > 0 && faults.partitions > 0 && faults.bootstrap_kills == 1,
        "{faults:?}"
    );
    assert_eq!(leaked, 0, "message text crossed a link in clear");
    assert_eq!(lost, 0, "lost messages");
    assert_eq!(duplicated, 0, "duplicated messages");
    // Every message the recipient holds is `delivered` at its sender, including one the recipient stored
    // from a direct send, was killed before its ack left, and met again as a mailbox copy after its restart
    // (its store remembers the envelope and answers the copy with a receipt). `TERN_CHAOS_LENIENT_STATUS=1`
    // tolerates `sent`, as builds before that fix needed; anything else (`sending`, `failed`, missing)
    // fails the run either way.
    let only_sent = not_delivered_by_status.get("sent").copied().unwrap_or(0);
    assert_eq!(
        not_delivered_status - only_sent,
        0,
        "messages neither delivered nor sent at their sender: {not_delivered_by_status:?}"
    );
    if std::env::var_os("TERN_CHAOS_LENIENT_STATUS").is_none() {
        assert_eq!(
            not_delivered_status, 0,
            "messages not marked delivered at their sender: {not_delivered_by_status:?}"
        );
    }
}
