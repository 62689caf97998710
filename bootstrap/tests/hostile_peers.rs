//! The hostile-peer harness against a live `tern-bootstrap` process (the real binary, on loopback): oversized
//! frames, truncated frames, random bytes after the handshake and instead of it, a deposit flood from one
//! peer, a mailbox flooded by several, a flood of connections (silent sockets, one peer's many connections,
//! many peers), fetches and acks for someone else's mailbox, replayed envelopes, expired envelopes and
//! envelopes expiring too far ahead.
//!
//! Between the attacks an honest sender deposits for an honest owner, who fetches and acknowledges: it must
//! get every message throughout. Each attack must show up in the node's Prometheus metrics as a refusal of
//! its kind (by exactly as many as were tried where the count is deterministic); the envelopes stored must
//! be exactly the ones legitimately accepted; the node's peak memory (`VmHWM`) must stay bounded. The
//! figures are printed at the end (`cargo test -p tern-bootstrap --test hostile_peers -- --nocapture`).

use std::{
    collections::BTreeMap,
    io::Write,
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use futures::StreamExt;
use libp2p::{
    PeerId,
    swarm::dial_opts::{DialOpts, PeerCondition},
};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tern_node::{
    mailbox::{MailboxRequest, MailboxResponse, Refusal},
    net::codec::encode_frame,
};
use tern_protocol::{Envelope, Identity, envelope::MAX_ENVELOPE_LEN};
use tern_testkit::cli::BootstrapProcess;
use tern_testkit::client::{Client, RawOutcome};
use tern_testkit::mail::{envelope, identity, now_s};
use tern_testkit::metrics::http_get;
use tern_testkit::net::free_port;
use tern_testkit::wait::poll_until;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The whole harness's deadline.
const HARNESS_TIMEOUT: Duration = Duration::from_secs(240);
/// The limits the node under attack runs with (small, so the floods reach them quickly).
const DEPOSITS_PER_MINUTE: u32 = 60;
const QUOTA_ENVELOPES: u32 = 50;
const MAX_ESTABLISHED: u32 = 64;
const MAX_PER_PEER: u32 = 4;
const MAX_PENDING_INCOMING: u32 = 32;
/// The peak resident memory the node may reach under all of this.
const MAX_PEAK_RSS_KIB: u64 = 256 * 1024;

/// The `tern-bootstrap` binary as a child process (killed when dropped), with its metrics endpoint.
struct Bootstrap {
    process: BootstrapProcess,
    metrics: SocketAddr,
    _data: tempfile::TempDir,
}

impl Bootstrap {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = data.path().join("bootstrap.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {data_dir:?}\n\
                 listen = [\"/ip4/127.0.0.1/tcp/0\"]\n\
                 metrics = \"{metrics}\"\n\
                 [mailbox]\n\
                 quota_envelopes = {QUOTA_ENVELOPES}\n\
                 deposits_per_minute = {DEPOSITS_PER_MINUTE}\n\
                 [connections]\n\
                 max_established = {MAX_ESTABLISHED}\n\
                 max_established_per_peer = {MAX_PER_PEER}\n\
                 max_pending_incoming = {MAX_PENDING_INCOMING}\n",
                data_dir = data.path().join("data").display().to_string(),
            ),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tern-bootstrap"));
        command
            .arg("--config")
            .arg(&config)
            .env("TERN_LOG", "warn")
            .stderr(Stdio::null());
        Self {
            process: BootstrapProcess::spawn(command),
            metrics,
            _data: data,
        }
    }

    /// The node's `VmHWM` and `VmRSS` in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.process.pid())).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from /proc status"))
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// Every sample of the metrics endpoint, by its full name with labels.
    async fn metrics(&self) -> BTreeMap<String, f64> {
        let text = http_get(self.metrics, "/metrics").await.unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

    async fn metric(&self, name: &str) -> f64 {
        self.metrics().await.get(name).copied().unwrap_or(0.0)
    }

    /// Polls the metrics until `name` reaches `at_least` (connection refusals are counted by the node's
    /// event loop after the client has already seen its socket close); returns the value.
    async fn metric_reaches(&self, name: &str, at_least: f64) -> f64 {
        poll_until(
            Duration::from_secs(30),
            async || self.metric(name).await,
            |value| *value >= at_least,
        )
        .await
    }
}

fn refusals(reason: &str) -> String {
    format!("tern_bootstrap_mailbox_refusals_total{{reason=\"{reason}\"}}")
}

fn connections_refused(reason: &str) -> String {
    format!("tern_bootstrap_connections_refused_total{{reason=\"{reason}\"}}")
}

const STORED: &str = "tern_bootstrap_mailbox_envelopes";
const DUPLICATES: &str = "tern_bootstrap_mailbox_duplicates_total";

/// The honest pair: a sender that deposits for an owner who fetches and acknowledges.
struct Honest {
    sender: Client,
    owner: Client,
    alice: Identity,
    bob: Identity,
    server: PeerId,
    delivered: usize,
}

impl Honest {
    async fn new(node: &Bootstrap) -> Self {
        let mut sender = Client::new();
        let server = sender.connect(&node.process.addr).await;
        let mut owner = Client::new();
        owner.connect(&node.process.addr).await;
        Self {
            sender,
            owner,
            alice: identity(),
            bob: identity(),
            server,
            delivered: 0,
        }
    }

    /// One message from Alice to Bob through the mailbox: deposited, fetched (and nothing else for Bob),
    /// acknowledged away.
    async fn round(&mut self, after: &str) {
        let mail = envelope(&self.alice, &self.bob, after.as_bytes());
        self.sender.deposit(self.server, &mail).await;
        let fetched = self.owner.fetch(self.server, &self.bob).await;
        assert_eq!(fetched, vec![mail], "honest mail after {after}");
        assert_eq!(self.owner.ack(self.server, &self.bob, &fetched).await, 1);
        self.delivered += 1;
    }
}

/// Writes `bytes` on a fresh `/tern/mailbox/1` stream; the server must not answer with anything but a
/// `Malformed` refusal, and must hang up on the sender.
async fn garbage(attacker: &mut Client, node: &Bootstrap, bytes: Vec<u8>) {
    let server = attacker.connect(&node.process.addr).await;
    if let RawOutcome::Bytes(answer) = attacker.raw_mailbox(server, bytes).await {
        assert!(
            answer.is_empty() || answer == [0, 0, 0, 3, 1, 3, Refusal::Malformed.code()],
            "garbage got an answer: {answer:?}"
        );
    }
    attacker.disconnected(server).await;
}

fn deposit_frame(envelope: &Envelope) -> Vec<u8> {
    encode_frame(&MailboxRequest::Deposit {
        envelope: envelope.encode(),
    })
    .unwrap()
}

/// Counts what a run tried and what the node made of it, for the closing table.
#[derive(Default)]
struct Tally(Vec<(&'static str, usize, String)>);

impl Tally {
    fn add(&mut self, kind: &'static str, tried: usize, outcome: String) {
        self.0.push((kind, tried, outcome));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_bootstrap_node_refuses_hostile_peers_and_keeps_serving_honest_ones() {
    tokio::time::timeout(HARNESS_TIMEOUT, harness())
        .await
        .expect("the harness finished in time");
}

async fn harness() {
    let node = Bootstrap::start();
    let mut rng = ChaCha20Rng::seed_from_u64(0x4057_11e5);
    let mut tally = Tally::default();
    let mut honest = Honest::new(&node).await;
    honest.round("start").await;
    // Envelopes legitimately stored and not yet fetched away (the honest pair's are acknowledged at once).
    let mut stored = 0.0;
    let (_, baseline_rss) = node.memory_kib();

    // --- Oversized frames: a length prefix past the limit, with and without bytes behind it. -------------
    let malformed = refusals("malformed");
    let before = node.metric(&malformed).await;
    let mut attacker = Client::new();
    let oversized = 20;
    for i in 0..oversized {
        let len = u32::try_from(2 + 4 + MAX_ENVELOPE_LEN + 1).unwrap()
            + rng.random_range(0..u32::MAX / 2);
        let mut frame = len.to_be_bytes().to_vec();
        if i % 2 == 0 {
            frame.extend(std::iter::repeat_n(0xab, 70_000));
        }
        garbage(&mut attacker, &node, frame).await;
    }
    assert_eq!(node.metric(&malformed).await - before, f64::from(oversized));
    tally.add(
        "oversized frame",
        oversized as usize,
        format!("{oversized} malformed, disconnected"),
    );
    honest.round("oversized frames").await;

    // --- Truncated frames: valid deposits cut short anywhere (the writer closes its half). --------------
    let before = node.metric(&malformed).await;
    let truncated = 20;
    for _ in 0..truncated {
        let frame = deposit_frame(&envelope(&identity(), &identity(), b"cut short"));
        let cut = rng.random_range(0..frame.len());
        garbage(&mut attacker, &node, frame[..cut].to_vec()).await;
    }
    assert_eq!(node.metric(&malformed).await - before, f64::from(truncated));
    tally.add(
        "truncated frame",
        truncated as usize,
        format!("{truncated} malformed, disconnected"),
    );
    honest.round("truncated frames").await;

    // --- Random bytes after the handshake, on the mailbox protocol. -------------------------------------
    let before = node.metric(&malformed).await;
    let random = 50;
    for _ in 0..random {
        let mut bytes = vec![0u8; rng.random_range(1..4096)];
        rng.fill_bytes(&mut bytes);
        garbage(&mut attacker, &node, bytes).await;
    }
    assert_eq!(node.metric(&malformed).await - before, f64::from(random));
    tally.add(
        "random bytes after handshake",
        random as usize,
        format!("{random} malformed, disconnected"),
    );
    honest.round("random bytes").await;

    // --- Random bytes instead of the handshake, on raw TCP. ---------------------------------------------
    let handshake = connections_refused("handshake");
    let before = node.metric(&handshake).await;
    let raw_garbage = 20;
    for _ in 0..raw_garbage {
        let mut socket = TcpStream::connect(node.process.tcp_addr()).await.unwrap();
        let mut bytes = vec![0u8; rng.random_range(1..2048)];
        rng.fill_bytes(&mut bytes);
        // The node may hang up before reading everything; either way it ends the connection.
        let _ = socket.write_all(&bytes).await;
        let _ = socket.shutdown().await;
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    }
    let after = node
        .metric_reaches(&handshake, before + f64::from(raw_garbage))
        .await;
    assert_eq!(after - before, f64::from(raw_garbage));
    tally.add(
        "random bytes instead of handshake",
        raw_garbage as usize,
        format!("{raw_garbage} handshake refusals"),
    );
    honest.round("raw TCP garbage").await;

    // --- A deposit flood from one peer, to many mailboxes. ----------------------------------------------
    let rate_limited = refusals("rate_limited");
    let before = node.metric(&rate_limited).await;
    let mut flooder = Client::new();
    flooder.connect(&node.process.addr).await;
    let flood = 400;
    let started = Instant::now();
    let mut accepted = 0u32;
    let mut limited = 0u32;
    let sender = identity();
    for _ in 0..flood {
        match flooder
            .try_deposit(node.process.peer, &envelope(&sender, &identity(), b"flood"))
            .await
        {
            MailboxResponse::Deposited { .. } => accepted += 1,
            MailboxResponse::Refused(Refusal::RateLimited) => limited += 1,
            other => panic!("flood deposit answered {other:?}"),
        }
    }
    // The bucket holds a minute's worth and refills by one a second, on a whole-second clock (so a
    // second boundary during the flood may already add one).
    let allowed = DEPOSITS_PER_MINUTE + u32::try_from(started.elapsed().as_secs()).unwrap() + 2;
    assert!(
        accepted <= allowed,
        "{accepted} flood deposits stored, at most {allowed} allowed"
    );
    assert!(
        accepted >= DEPOSITS_PER_MINUTE,
        "the burst is {DEPOSITS_PER_MINUTE}"
    );
    assert_eq!(
        node.metric(&rate_limited).await - before,
        f64::from(limited)
    );
    stored += f64::from(accepted);
    tally.add(
        "deposit flood (one peer)",
        flood,
        format!("{accepted} stored, {limited} rate_limited"),
    );
    honest.round("a deposit flood").await;

    // --- One mailbox flooded by several peers: the quota holds. -----------------------------------------
    let quota = refusals("quota_count");
    let before = node.metric(&quota).await;
    let victim = identity();
    let mut over_quota = 0u32;
    let mut taken = 0u32;
    for _ in 0..4 {
        let mut peer = Client::new();
        let server = peer.connect(&node.process.addr).await;
        for _ in 0..25 {
            match peer
                .try_deposit(server, &envelope(&sender, &victim, b"fill"))
                .await
            {
                MailboxResponse::Deposited { .. } => taken += 1,
                MailboxResponse::Refused(Refusal::QuotaCount) => over_quota += 1,
                other => panic!("quota deposit answered {other:?}"),
            }
        }
    }
    assert_eq!(taken, QUOTA_ENVELOPES);
    assert_eq!(node.metric(&quota).await - before, f64::from(over_quota));
    stored += f64::from(taken);
    tally.add(
        "mailbox flood (4 peers, one mailbox)",
        100,
        format!("{taken} stored (the quota), {over_quota} quota_count"),
    );
    honest.round("a mailbox flood").await;

    // --- Fetches and acks for someone else's mailbox. ---------------------------------------------------
    let not_owner = refusals("not_owner");
    let bad_challenge = refusals("bad_challenge");
    let (before_owner, before_challenge) = (
        node.metric(&not_owner).await,
        node.metric(&bad_challenge).await,
    );
    let victim_mail: Vec<Envelope> = (0..3)
        .map(|_| envelope(&sender, &honest.bob, b"for bob only"))
        .collect();
    for mail in &victim_mail {
        honest.sender.deposit(honest.server, mail).await;
    }
    let mut thief = Client::new();
    thief.connect(&node.process.addr).await;
    let thief_id = identity();
    let foreign = 20;
    for i in 0..foreign {
        let request = match i % 3 {
            // A proof that names Bob's key but is signed by someone else.
            0 => {
                let mut auth = thief.owner_auth(node.process.peer, &thief_id).await;
                auth.identity = honest.bob.key();
                MailboxRequest::Fetch { auth, max: 64 }
            }
            // The same, deleting Bob's mail.
            1 => {
                let mut auth = thief.owner_auth(node.process.peer, &thief_id).await;
                auth.identity = honest.bob.key();
                MailboxRequest::Ack {
                    auth,
                    ids: victim_mail.iter().map(Envelope::id).collect(),
                }
            }
            // Bob's own valid proof, replayed from another connection.
            _ => {
                let auth = honest
                    .owner
                    .owner_auth(node.process.peer, &honest.bob)
                    .await;
                MailboxRequest::Fetch { auth, max: 64 }
            }
        };
        let answer = thief.request(node.process.peer, request).await;
        assert!(
            matches!(
                answer,
                MailboxResponse::Refused(Refusal::NotOwner | Refusal::BadChallenge)
            ),
            "a foreign fetch got {answer:?}"
        );
    }
    let refused_owner = node.metric(&not_owner).await - before_owner;
    let refused_challenge = node.metric(&bad_challenge).await - before_challenge;
    assert_eq!(refused_owner + refused_challenge, f64::from(foreign));
    assert_eq!(refused_challenge, f64::from(foreign / 3));
    // Bob's mail is all there, and only Bob gets it.
    let fetched = honest.owner.fetch(node.process.peer, &honest.bob).await;
    assert_eq!(fetched, victim_mail);
    assert_eq!(
        honest
            .owner
            .ack(node.process.peer, &honest.bob, &fetched)
            .await,
        3
    );
    tally.add(
        "fetch/ack of someone else's mailbox",
        foreign as usize,
        format!(
            "{refused_owner} not_owner, {refused_challenge} bad_challenge; victim's mail intact"
        ),
    );
    honest.round("foreign fetches").await;

    // --- Replayed envelopes. ----------------------------------------------------------------------------
    let before = node.metric(DUPLICATES).await;
    let stored_before = node.metric(STORED).await;
    let mut replayer = Client::new();
    replayer.connect(&node.process.addr).await;
    let original = envelope(&sender, &identity(), b"once");
    assert!(matches!(
        replayer.try_deposit(node.process.peer, &original).await,
        MailboxResponse::Deposited { .. }
    ));
    stored += 1.0;
    let replays = 20;
    for _ in 0..replays {
        assert_eq!(
            replayer.try_deposit(node.process.peer, &original).await,
            MailboxResponse::Duplicate { id: original.id() }
        );
    }
    assert_eq!(node.metric(DUPLICATES).await - before, f64::from(replays));
    assert_eq!(
        node.metric(STORED).await,
        stored_before + 1.0,
        "a replay stores nothing"
    );
    tally.add(
        "replayed envelope",
        replays as usize,
        format!("{replays} duplicates, nothing stored"),
    );
    honest.round("replays").await;

    // --- Expired envelopes, and envelopes expiring too far ahead. ---------------------------------------
    let expired = refusals("expired");
    let too_far = refusals("expiry_too_far");
    let (before_expired, before_far) = (node.metric(&expired).await, node.metric(&too_far).await);
    let mut late = Client::new();
    late.connect(&node.process.addr).await;
    let stale = 20;
    for i in 0..stale {
        let expires_at = if i % 2 == 0 {
            now_s() - rng.random_range(0..1_000_000)
        } else {
            now_s() + 31 * 24 * 3600 + rng.random_range(0..1_000_000)
        };
        let mail = Envelope::seal(
            &sender,
            identity().public(),
            b"stale",
            expires_at,
            &mut rand::rng(),
        )
        .unwrap();
        let answer = late.try_deposit(node.process.peer, &mail).await;
        let want = if i % 2 == 0 {
            Refusal::Expired
        } else {
            Refusal::ExpiryTooFar
        };
        assert_eq!(answer, MailboxResponse::Refused(want));
    }
    assert_eq!(
        node.metric(&expired).await - before_expired,
        f64::from(stale / 2)
    );
    assert_eq!(
        node.metric(&too_far).await - before_far,
        f64::from(stale / 2)
    );
    tally.add(
        "expired / too-far envelope",
        stale as usize,
        format!("{} expired, {} expiry_too_far", stale / 2, stale / 2),
    );
    honest.round("expired envelopes").await;

    // --- A connection flood: silent sockets that never finish the handshake. ---------------------------
    let limit = connections_refused("limit");
    let (before_limit, before_handshake) =
        (node.metric(&limit).await, node.metric(&handshake).await);
    let silent = 100usize;
    let mut sockets = Vec::new();
    for _ in 0..silent {
        sockets.push(TcpStream::connect(node.process.tcp_addr()).await.unwrap());
    }
    let over = f64::from(u32::try_from(silent).unwrap() - MAX_PENDING_INCOMING);
    let denied = node.metric_reaches(&limit, before_limit + over).await - before_limit;
    assert!(
        denied >= over,
        "{denied} silent connections denied, expected {over}"
    );
    // Peers already connected are served during the flood.
    honest.round("during a flood of silent connections").await;
    drop(sockets);
    let abandoned = node
        .metric_reaches(
            &handshake,
            before_handshake + f64::from(MAX_PENDING_INCOMING),
        )
        .await
        - before_handshake;
    tally.add(
        "connection flood (silent TCP)",
        silent,
        format!("{denied} denied by the pending limit, {abandoned} abandoned handshakes"),
    );

    // --- A connection flood: one peer opening many connections. ----------------------------------------
    let before_limit = node.metric(&limit).await;
    let mut greedy = Client::new();
    greedy.connect(&node.process.addr).await;
    let extra = 16;
    for _ in 0..extra {
        greedy
            .swarm
            .dial(
                DialOpts::peer_id(node.process.peer)
                    .addresses(vec![node.process.addr.clone()])
                    .condition(PeerCondition::Always)
                    .build(),
            )
            .unwrap();
    }
    let want = before_limit + f64::from(extra + 1 - MAX_PER_PEER);
    let mut greedy_swarm = greedy.swarm;
    let driver = tokio::spawn(async move {
        loop {
            greedy_swarm.select_next_some().await;
        }
    });
    let denied_per_peer = node.metric_reaches(&limit, want).await - before_limit;
    driver.abort();
    assert!(
        denied_per_peer >= f64::from(extra + 1 - MAX_PER_PEER),
        "{denied_per_peer}"
    );
    tally.add(
        "connection flood (one peer)",
        extra as usize + 1,
        format!("{denied_per_peer} denied by the per-peer limit"),
    );
    honest.round("one peer's connection flood").await;

    // --- A connection flood: many peers at once, past the node's total. --------------------------------
    let before_limit = node.metric(&limit).await;
    let crowd = 100u32;
    let mut drivers = Vec::new();
    for _ in 0..crowd {
        let mut peer = Client::new();
        peer.swarm.dial(node.process.addr.clone()).unwrap();
        let mut swarm = peer.swarm;
        drivers.push(tokio::spawn(async move {
            loop {
                swarm.select_next_some().await;
            }
        }));
    }
    // The honest pair holds two of the node's connections, the flood may take the rest.
    let over = f64::from(crowd + 2 - MAX_ESTABLISHED);
    let denied_total = node.metric_reaches(&limit, before_limit + over).await - before_limit;
    assert!(
        denied_total >= over,
        "{denied_total} denied, expected {over}"
    );
    honest.round("during a crowd of peers").await;
    let (peak_flood, rss_flood) = node.memory_kib();
    for driver in drivers {
        driver.abort();
    }
    tally.add(
        "connection flood (many peers)",
        crowd as usize,
        format!("{denied_total} denied by the total limit"),
    );
    honest.round("after the floods").await;

    // --- Nothing stored that should not be; memory bounded. ---------------------------------------------
    assert_eq!(node.metric(STORED).await, stored, "stored envelopes");
    let (peak, rss) = node.memory_kib();
    assert!(peak < MAX_PEAK_RSS_KIB, "peak RSS {peak} KiB");

    println!("\nhostile peers against a live tern-bootstrap (seeded):");
    println!("{:<40} {:>6}  outcome", "attack", "tried");
    for (kind, tried, outcome) in &tally.0 {
        println!("{kind:<40} {tried:>6}  {outcome}");
    }
    println!(
        "honest messages delivered throughout: {}; envelopes stored at the end: {stored}",
        honest.delivered
    );
    println!(
        "bootstrap memory: {baseline_rss} KiB RSS at start, {rss_flood} KiB during the crowd, peak (VmHWM) \
         {peak_flood} KiB under the floods, {peak} KiB overall, {rss} KiB at the end"
    );
    let _ = std::io::stdout().flush();
}
