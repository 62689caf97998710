//! `tern-bench files`: issue 14's figures. A file sent person to person over loopback with `/tern/file/1`
//! (encrypted on disk, bao-verified pieces, written and fsynced on the receiver) beside a plain libp2p stream
//! carrying the same number of bytes from memory to nowhere (no crypto, no disk), between the same kind of
//! swarms in the same run; and how many bytes a resume fetches again after the receiver is stopped at 50%.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};
use tern_node::files::{FileService, FileStore, TransferEvent};
use tern_protocol::file::FileLayout;
use tokio::task::JoinHandle;

use crate::report::{Row, Target, note, peak_rss, print_table};

const MIB: u64 = 1024 * 1024;
const PLAIN: StreamProtocol = StreamProtocol::new("/tern-bench/plain/1");

struct Peer {
    id: PeerId,
    addr: Multiaddr,
    control: libp2p_stream::Control,
    task: JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn peer(dial: Option<(PeerId, Multiaddr)>) -> Result<Peer> {
    let key = Keypair::generate_ed25519();
    let id = key.public().to_peer_id();
    let mut swarm: Swarm<libp2p_stream::Behaviour> = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| libp2p_stream::Behaviour::new())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(std::time::Duration::from_secs(60)))
        .build();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    if let Some((to, at)) = dial {
        swarm.dial(at)?;
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == to => break,
                SwarmEvent::OutgoingConnectionError { error, .. } => bail!("dial failed: {error}"),
                _ => {}
            }
        }
    }
    let control = swarm.behaviour().new_control();
    let task = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    Ok(Peer {
        id,
        addr,
        control,
        task,
    })
}

/// The baseline: `bytes` over one plain stream, written in 1 MiB buffers from memory and read into one.
async fn plain_stream(bytes: u64) -> Result<f64> {
    let receiver = peer(None).await?;
    let sender = peer(Some((receiver.id, receiver.addr.clone()))).await?;
    let mut incoming = receiver
        .control
        .clone()
        .accept(PLAIN)
        .map_err(|_| anyhow::anyhow!("protocol registered twice"))?;
    let reader = tokio::spawn(async move {
        let (_, mut stream) = incoming.next().await.context("no stream")?;
        let mut buf = vec![0u8; MIB as usize];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        anyhow::Ok(total)
    });
    let started = Instant::now();
    let mut stream = sender
        .control
        .clone()
        .open_stream(receiver.id, PLAIN)
        .await?;
    let buf = vec![0x5au8; MIB as usize];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(MIB) as usize;
        stream.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    stream.close().await?;
    let got = reader.await??;
    let secs = started.elapsed().as_secs_f64();
    if got != bytes {
        bail!("the plain stream carried {got} of {bytes} bytes");
    }
    Ok(bytes as f64 / MIB as f64 / secs)
}

pub(crate) async fn run(file_mib: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let plain_path = dir.path().join("file.bin");
    {
        // Incompressible-looking bytes, written once.
        let mut f = std::io::BufWriter::new(std::fs::File::create(&plain_path)?);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut block = vec![0u8; MIB as usize];
        for _ in 0..file_mib {
            for b in block.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            std::io::Write::write_all(&mut f, &block)?;
        }
        std::io::Write::flush(&mut f)?;
    }

    let sender = peer(None).await?;
    let sending = FileService::new(
        FileStore::open(dir.path().join("sender"))?,
        sender.control.clone(),
    )?;
    // Peak resident set from here to the end of the fetch ("5" resets VmHWM; Linux only, else 0).
    let rss_before = {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        peak_rss()
    };
    let import_started = Instant::now();
    let added = sending.add(&plain_path).await?;
    let import_secs = import_started.elapsed().as_secs_f64();
    let layout = FileLayout::new(added.size)?;
    let total = layout.ciphertext_len();

    // The whole file, one fetch.
    let receiver = peer(Some((sender.id, sender.addr.clone()))).await?;
    let receiving = FileService::new(
        FileStore::open(dir.path().join("receiver"))?,
        receiver.control.clone(),
    )?;
    let started = Instant::now();
    let report = receiving.fetch(sender.id, added.hash, added.size).await?;
    let tern_mibs = added.size as f64 / MIB as f64 / started.elapsed().as_secs_f64();
    let rss_growth = peak_rss().saturating_sub(rss_before) as f64 / MIB as f64;
    receiving.cancel_fetch(added.hash).await?; // drops the copy: the resume run starts empty
    drop(receiving);
    drop(receiver);
    let base_mibs = plain_stream(added.size).await?;

    // Resume: stopped once half is verified, restarted on the same directory.
    let resume_dir = dir.path().join("resume");
    let first = peer(Some((sender.id, sender.addr.clone()))).await?;
    let service = FileService::new(FileStore::open(&resume_dir)?, first.control.clone())?;
    let mut events = service.events();
    let half = total / 2;
    let mut first_wire = 0;
    tokio::select! {
        result = service.fetch(sender.id, added.hash, added.size) => {
            bail!("the first run finished before it could be stopped: {result:?}");
        }
        _ = async {
            loop {
                match events.recv().await {
                    Ok(TransferEvent::Progress { verified, .. }) if verified >= half => {
                        first_wire = verified;
                        break;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        } => {}
    }
    drop(service);
    drop(first);
    let second = peer(Some((sender.id, sender.addr.clone()))).await?;
    let service = FileService::new(FileStore::open(&resume_dir)?, second.control.clone())?;
    let start = FileStore::open(&resume_dir)?
        .entry(&added.hash, layout, false)?
        .verified_bytes();
    let resumed = service.fetch(sender.id, added.hash, added.size).await?;
    // Verified bytes the receiver had read but lost (not yet durable when it stopped), plus framing and tree
    // hashes: what the resume cost beyond the file.
    let again = (first_wire + resumed.wire_bytes).saturating_sub(total);
    let again_pct = again as f64 * 100.0 / total as f64;

    print_table(
        &format!("files: one {file_mib} MiB file person to person over loopback (`/tern/file/1`)"),
        &[
            Row::new(
                "throughput",
                tern_mibs,
                base_mibs,
                "MiB/s",
                Target::AtLeast(0.5),
            ),
            Row::new(
                "fetched again after a stop at 50%",
                again_pct,
                0.0,
                "% of the file",
                Target::Below(2.0),
            ),
            Row::new(
                "sealing the file before sending",
                import_secs,
                0.0,
                "s",
                Target::Report,
            ),
            Row::new(
                "peak resident set added by sealing, sending and receiving",
                rss_growth,
                0.0,
                "MiB",
                Target::Report,
            ),
        ],
    );
    note(&format!(
        "baseline = a plain libp2p stream of the same bytes, memory to memory; Tern reads the ciphertext from \
         disk, verifies every 16 KiB group and writes and fsyncs it ({} pieces, {} rounds); the stopped run had \
         {first_wire} bytes verified, the restart found {start} durable and read {} piece bytes",
        report.pieces, report.rounds, resumed.wire_bytes
    ));
    Ok(())
}
