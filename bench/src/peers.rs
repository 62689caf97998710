//! The `peers` scenario: a real `tern-bootstrap` process holding idle connections, and its resident memory
//! per peer.

use super::*;
use crate::mailbox::connected_client;

/// Resident memory of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

/// This process's open-file limit, soft or hard (`-o SOFT`/`HARD`), from util-linux `prlimit`.
fn fd_limit(which: &str) -> Option<u64> {
    let pid = std::process::id().to_string();
    let out = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid,
            "--nofile",
            "--raw",
            "--noheadings",
            "-o",
            which,
        ])
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// Raises this process's open-file limit to `want` where it may (root with CAP_SYS_RESOURCE), else as far
/// as its hard limit (with util-linux `prlimit`; no unsafe code), and returns the soft limit it got.
/// Children started afterwards inherit it.
fn raise_fd_limit(want: u64) -> Option<u64> {
    let pid = std::process::id().to_string();
    let set = |limits: String| {
        std::process::Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={limits}")])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !set(format!("{want}:{want}"))
        && let Some(hard) = fd_limit("HARD")
    {
        set(format!("{}:", hard.min(want.max(1024))));
    }
    fd_limit("SOFT")
}

/// Connections one loopback address takes in the `peers` scenario: a client's ports come from the
/// ephemeral range (28,232 ports by default on Linux), so 50,000 peers need more than one server address.
const PEERS_PER_ADDRESS: usize = 20_000;

pub(crate) async fn peers(count: usize, transport: PeerTransport, files: bool) -> Result<()> {
    // Each peer is a descriptor in this process, and over TCP one in the server.
    let want = count as u64 + 1_000;
    match raise_fd_limit(want) {
        Some(got) if got < want => bail!(
            "{count} peers need {want} open files in this process (and over TCP in the server), and this \
             process may open {got} (its hard limit; raising it needs CAP_SYS_RESOURCE): run with fewer \
             --peers or a higher `ulimit -Hn`"
        ),
        _ => {}
    }
    let listen: Vec<String> = (0..count.div_ceil(PEERS_PER_ADDRESS).max(1))
        .map(|i| transport.listen_on(std::net::Ipv4Addr::new(127, 0, 0, 1 + i as u8)))
        .collect();
    let server = Bootstrap::spawn_on(
        &listen,
        &format!(
            "[connections]\nmax_established = {}\nmax_pending_incoming = 256\n{}",
            count + 100,
            if files {
                ""
            } else {
                "[files]\nquota_bytes = 0\n"
            }
        ),
    )?;
    anyhow::ensure!(
        server.addrs.len() == listen.len(),
        "tern-bootstrap listens on {} of {} addresses",
        server.addrs.len(),
        listen.len()
    );
    let pid = server.pid();
    // Let the server settle, then connect the peers in waves of 100.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid)?;
    let start = Instant::now();
    let mut swarms = Vec::with_capacity(count);
    for wave in (0..count).collect::<Vec<_>>().chunks(100) {
        let mut pending = Vec::new();
        for &i in wave {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let addr = server.addrs[i % server.addrs.len()].clone();
            pending.push(tokio::spawn(
                async move { connected_client(seed, &addr).await },
            ));
        }
        for p in pending {
            swarms.push(p.await??);
        }
    }
    let connect_time = start.elapsed();
    // Keep every swarm polled (identify, ping) while the server settles, then measure.
    let keep = tokio::spawn(async move {
        let mut all = futures::stream::select_all(swarms.into_iter().map(|(s, _)| s));
        while all.next().await.is_some() {}
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_kib(pid)?;
    let still = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    keep.abort();
    drop(server);
    let per_peer_kb = (after.saturating_sub(before)) as f64 * 1.024 / count as f64;
    print_table(
        &format!(
            "peers: {count} idle peers connected to a tern-bootstrap process over loopback {}{}",
            transport.name(),
            if files { "" } else { " (holding no files)" }
        ),
        &[Row::new(
            "resident memory per connected idle peer vs ~600 KB/connection reported for other libp2p stacks",
            per_peer_kb,
            600.0,
            "KB",
            Target::Below(40.0),
        )],
    );
    note(&format!(
        "bootstrap resident memory: {:.1} MiB idle, {:.1} MiB with {count} peers ({still} open file descriptors); \
         all connected in {:.1} s",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        connect_time.as_secs_f64()
    ));
    Ok(())
}
