//! Memory stays flat while a file is sealed, sent and received (issue 14): neither side loads the file. The
//! process's peak resident set is reset once the file is on disk and read back after the whole transfer;
//! this test is alone in its binary so no other test's memory counts.

use std::fs;
use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId, Swarm};
use tern_node::files::{FileService, FileStore};
use tern_testkit::net::{connect_swarm, first_listen_addr, tcp_swarm};
use tokio::task::JoinHandle;

const MIB: u64 = 1024 * 1024;
const FILE_MIB: u64 = 64;
/// What the whole transfer may add to the peak resident set: buffers, not the file.
const ALLOWED_GROWTH_MIB: u64 = 40;

async fn peer(
    dial: Option<(PeerId, Multiaddr)>,
) -> (PeerId, Multiaddr, libp2p_stream::Control, JoinHandle<()>) {
    let key = Keypair::generate_ed25519();
    let id = key.public().to_peer_id();
    let mut swarm: Swarm<libp2p_stream::Behaviour> =
        tcp_swarm(key, libp2p_stream::Behaviour::new());
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr = first_listen_addr(&mut swarm).await;
    if let Some((to, at)) = dial {
        connect_swarm(&mut swarm, to, at, |_| {}).await;
    }
    let control = swarm.behaviour().new_control();
    let task = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    (id, addr, control, task)
}

/// `VmHWM` (peak resident set) of this process, in bytes.
fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_and_receiving_a_64_mib_file_keeps_memory_flat() {
    tokio::time::timeout(Duration::from_secs(600), async {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big.bin");
        {
            let mut f = fs::File::create(&path).unwrap();
            let mut block = vec![0u8; MIB as usize];
            for i in 0..FILE_MIB {
                block
                    .iter_mut()
                    .enumerate()
                    .for_each(|(j, b)| *b = (i as usize * 31 + j) as u8);
                f.write_all(&block).unwrap();
            }
        }
        // Reset the peak ("5" clears VmHWM, Linux 4.0+), then seal, send, receive and open the file.
        let before = {
            fs::write("/proc/self/clear_refs", "5").unwrap();
            peak_rss()
        };
        let (sender_id, sender_addr, sender_control, _s) = peer(None).await;
        let sending = FileService::new(
            FileStore::open(tmp.path().join("s")).unwrap(),
            sender_control,
        )
        .unwrap();
        let added = sending.add(&path).await.unwrap();
        // Connected after the seal, so a slow (debug) seal cannot outlast the idle timeout.
        let (_, _, receiver_control, _r) = peer(Some((sender_id, sender_addr))).await;
        let receiving = FileService::new(
            FileStore::open(tmp.path().join("r")).unwrap(),
            receiver_control,
        )
        .unwrap();
        receiving
            .fetch(sender_id, added.hash, added.size)
            .await
            .unwrap();
        let out = tmp.path().join("out.bin");
        receiving
            .export(added.hash, added.size, added.key.clone(), out.clone())
            .await
            .unwrap();
        let growth = peak_rss().saturating_sub(before);
        println!(
            "peak resident set grew {:.1} MiB for a {FILE_MIB} MiB file",
            growth as f64 / MIB as f64
        );
        assert!(
            growth < ALLOWED_GROWTH_MIB * MIB,
            "the peak resident set grew {growth} bytes for a {FILE_MIB} MiB file"
        );
        assert_eq!(fs::metadata(&out).unwrap().len(), FILE_MIB * MIB);
    })
    .await
    .unwrap();
}
