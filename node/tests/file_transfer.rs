//! `/tern/file/1` between real libp2p swarms on 127.0.0.1 with real files on disk (issue 14): a 64 MiB file
//! reaches a receiver that is SIGKILLed at several points and resumes from its disk; a tampered piece is
//! refused, not written, and fetched again; cancelling on either side leaves nothing behind.
//!
//! The killed receiver is this test binary run again as a child process (`receiver_child`, which does
//! nothing unless `TERN_FILES_CHILD` is set), so the kill is a real SIGKILL of a real process.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId, Swarm};
use tern_node::files::{
    FileService, FileStore, FilesError, PROTOCOL, TransferError, TransferEvent,
};
use tern_protocol::file::{FileHash, FileKey, FileLayout, RangeRequest, TransferStatus};
use tern_testkit::net::{connect_swarm, first_listen_addr, tcp_swarm};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{Instrument, info_span};

const TEST_TIMEOUT: Duration = Duration::from_secs(300);
const MIB: usize = 1024 * 1024;
const CHILD_ENV: &str = "TERN_FILES_CHILD";
/// What a kill may cost: the pieces not yet flushed and the one in hand (1 MiB each).
const SLACK: u64 = (tern_node::files::transfer::FLUSH_EVERY_PIECES as u64 + 2) * MIB as u64;

/// A bare swarm with only the stream behaviour, driven on its own task.
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

async fn peer(name: &'static str, dial: Option<(PeerId, Multiaddr)>) -> Peer {
    let key = Keypair::generate_ed25519();
    let id = key.public().to_peer_id();
    let mut swarm: Swarm<libp2p_stream::Behaviour> =
        tcp_swarm(key, libp2p_stream::Behaviour::new());
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr = first_listen_addr(&mut swarm).await;
    if let Some((to, at)) = dial {
        swarm.add_peer_address(to, at.clone());
        connect_swarm(&mut swarm, to, at, |_| {}).await;
    }
    let control = swarm.behaviour().new_control();
    let task = tokio::spawn(
        async move {
            loop {
                swarm.select_next_some().await;
            }
        }
        .instrument(info_span!("swarm", name)),
    );
    Peer {
        id,
        addr,
        control,
        task,
    }
}

fn pattern_file(path: &Path, len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    fs::write(path, &bytes).unwrap();
    bytes
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

// ---------------------------------------------------------------------------------------------------------------
// The receiver, killed and restarted.

/// Run as a child process by `a_64_mib_file_survives_a_receiver_sigkilled_at_several_points`: fetches the file
/// named in the environment, printing `TERN:` lines the parent reads. Does nothing in an ordinary test run.
#[tokio::test]
async fn receiver_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let sender: PeerId = var("TERN_FILES_SENDER").parse().unwrap();
    let addr: Multiaddr = var("TERN_FILES_ADDR").parse().unwrap();
    let hash = FileHash(hex32(&var("TERN_FILES_HASH")));
    let size: u64 = var("TERN_FILES_SIZE").parse().unwrap();
    let store = FileStore::open(PathBuf::from(dir)).unwrap();
    let layout = FileLayout::new(size).unwrap();
    let start = if store.contains(&hash) {
        store.entry(&hash, layout, false).unwrap().verified_bytes()
    } else {
        0
    };
    say(&format!("start {start}"));
    let me = peer("child", Some((sender, addr))).await;
    let service = FileService::new(store, me.control.clone()).unwrap();
    let mut events = service.events();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let TransferEvent::Progress { verified, .. } = event {
                say(&format!("progress {verified}"));
            }
        }
    });
    let report = service.fetch(sender, hash, size).await.unwrap();
    say(&format!("done {}", report.wire_bytes));
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "TERN:{line}").unwrap();
    out.flush().unwrap();
}

fn hex32(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// Runs the child until it prints `done`, or kills it (SIGKILL) once it reports `kill_at` bytes verified.
/// Returns the verified bytes it started from, and its wire bytes if it finished.
fn run_child(
    dir: &Path,
    sender: &Peer,
    hash: FileHash,
    size: u64,
    kill_at: Option<u64>,
) -> (u64, Option<u64>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "receiver_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env("TERN_FILES_SENDER", sender.id.to_string())
        .env("TERN_FILES_ADDR", sender.addr.to_string())
        .env("TERN_FILES_HASH", hash.to_hex())
        .env("TERN_FILES_SIZE", size.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut start = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        // The harness may print "test receiver_child ... " on the same line first.
        let Some((_, line)) = line.split_once("TERN:") else {
            continue;
        };
        let (what, value) = line.split_once(' ').unwrap();
        let value: u64 = value.parse().unwrap();
        match what {
            "start" => start = Some(value),
            "progress" if kill_at.is_some_and(|at| value >= at) => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                return (start.unwrap(), None);
            }
            "done" => {
                assert!(child.wait().unwrap().success());
                return (start.unwrap(), Some(value));
            }
            _ => {}
        }
    }
    panic!("the child ended without finishing: {:?}", child.wait());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_survives_a_receiver_sigkilled_at_several_points() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().unwrap();
        let plain_path = tmp.path().join("video.bin");
        let plain = pattern_file(&plain_path, 64 * MIB, 64);
        let sender = peer("sender", None).await;
        let service = FileService::new(
            FileStore::open(tmp.path().join("sender-files")).unwrap(),
            sender.control.clone(),
        )
        .unwrap();
        let added = service.add(&plain_path).await.unwrap();
        let layout = FileLayout::new(added.size).unwrap();
        let total = layout.ciphertext_len();
        let receiver_dir = tmp.path().join("receiver-files");

        let mut last_kill = 0;
        for fraction in [0.1, 0.35, 0.7] {
            let kill_at = (total as f64 * fraction) as u64;
            let dir = receiver_dir.clone();
            let sender_ref = &sender;
            let (start, done) = tokio::task::block_in_place(|| {
                run_child(&dir, sender_ref, added.hash, added.size, Some(kill_at))
            });
            assert!(done.is_none());
            println!("run killed at {kill_at} verified bytes had started from {start}");
            // It resumed from what the previous run made durable: at most one flush window and the piece in
            // hand behind the point where it was killed.
            assert!(
                start + SLACK >= last_kill,
                "restarted from {start} after a kill at {last_kill}"
            );
            last_kill = kill_at;
        }
        let dir = receiver_dir.clone();
        let sender_ref = &sender;
        let (start, done) = tokio::task::block_in_place(|| {
            run_child(&dir, sender_ref, added.hash, added.size, None)
        });
        assert!(start + SLACK >= last_kill);
        let last_wire = done.unwrap();
        println!("last run started from {start} and read {last_wire} piece bytes");
        assert!(
            last_wire <= total - start + total / 50,
            "the last run fetched {last_wire} bytes, having {start} of {total}"
        );

        // Identical content, opened from the receiver's ciphertext with the key.
        let store = FileStore::open(&receiver_dir).unwrap();
        let out = tmp.path().join("received.bin");
        store.export(&added.hash, layout, &added.key, &out).unwrap();
        assert!(
            fs::read(&out).unwrap() == plain,
            "the received file differs"
        );
        // Everything the sender wrote, over all four runs: the file once, and what each kill lost in flight.
        println!(
            "sent {} bytes for a {total}-byte ciphertext over 4 runs",
            service.bytes_sent()
        );
        assert!(service.bytes_sent() < 2 * total);
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// A holder that tampers with a piece.

/// Serves `/tern/file/1` from `store` like a holder, but flips a byte in the second piece of the first
/// response; answers later streams honestly once `go` is notified.
fn tampering_holder(
    mut control: libp2p_stream::Control,
    store: FileStore,
    go: std::sync::Arc<Notify>,
) {
    let mut incoming = control.accept(PROTOCOL).unwrap();
    tokio::spawn(async move {
        let mut first = true;
        while let Some((_, mut stream)) = incoming.next().await {
            if !first {
                go.notified().await;
            }
            let mut len = [0u8; 4];
            stream.read_exact(&mut len).await.unwrap();
            let mut request = vec![0u8; u32::from_be_bytes(len) as usize];
            stream.read_exact(&mut request).await.unwrap();
            let request = RangeRequest::decode(&request).unwrap();
            let layout = FileLayout::from_ciphertext_len(request.ciphertext_len).unwrap();
            let entry = store.entry(&request.hash, layout, false).unwrap();
            stream.write_all(&TransferStatus::Ok.head()).await.unwrap();
            for (i, piece) in request.pieces().iter().enumerate() {
                let mut encoded = entry.encode_piece(piece).unwrap();
                if first && i == 1 {
                    let last = encoded.len() - 1;
                    encoded[last] ^= 0x01;
                }
                let sent = async {
                    stream
                        .write_all(&(encoded.len() as u32).to_be_bytes())
                        .await?;
                    stream.write_all(&encoded).await
                };
                if sent.await.is_err() {
                    break; // the receiver stopped reading
                }
            }
            let _ = stream.close().await;
            first = false;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_piece_is_refused_not_written_and_fetched_again() {
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().unwrap();
        let plain_path = tmp.path().join("photo.jpg");
        let plain = pattern_file(&plain_path, 5 * MIB + 123, 7);
        let holder_store = FileStore::open(tmp.path().join("holder")).unwrap();
        let key = FileKey::from_bytes([0x42; 32]);
        let (hash, layout) = holder_store.import(&plain_path, &key, 1).unwrap();
        let holder = peer("holder", None).await;
        let go = std::sync::Arc::new(Notify::new());
        tampering_holder(holder.control.clone(), holder_store, go.clone());

        let receiver = peer("receiver", Some((holder.id, holder.addr.clone()))).await;
        let store_dir = tmp.path().join("receiver");
        let service = FileService::new(
            FileStore::open(&store_dir).unwrap(),
            receiver.control.clone(),
        )
        .unwrap();
        let mut events = service.events();
        let fetch = {
            let service = std::sync::Arc::new(service);
            let fetching = service.clone();
            let holder_id = holder.id;
            (
                service,
                tokio::spawn(async move { fetching.fetch(holder_id, hash, layout.size()).await }),
            )
        };
        let refused = loop {
            match events.recv().await {
                Ok(TransferEvent::PieceRefused { groups, .. }) => break groups,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(refused, 64..128, "the second piece");
        // Before the retry is served: the refused piece is not on disk, the one before it is.
        {
            let entry = fetch.0.store().entry(&hash, layout, false).unwrap();
            assert!(entry.verified().covers(&(0..64)));
            assert!(!entry.verified().contains(64) && !entry.verified().contains(127));
            let data = fs::read(store_dir.join(hash.to_hex()).join("data")).unwrap();
            let bytes = layout.group_bytes(&refused);
            assert!(
                data[bytes.start as usize..bytes.end as usize]
                    .iter()
                    .all(|b| *b == 0),
                "nothing of the refused piece was written"
            );
        }
        go.notify_one();
        let report = fetch.1.await.unwrap().unwrap();
        assert_eq!(report.refused_pieces, 1);
        assert!(report.rounds >= 2);
        let out = tmp.path().join("out.jpg");
        fetch
            .0
            .export(hash, layout.size(), key, out.clone())
            .await
            .unwrap();
        assert!(fs::read(&out).unwrap() == plain);
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Cancelling.

async fn first_progress(events: &mut broadcast::Receiver<TransferEvent>) {
    loop {
        match events.recv().await {
            Ok(TransferEvent::Progress { .. }) => return,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_on_either_side_cleans_up_both() {
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().unwrap();
        let plain_path = tmp.path().join("big.bin");
        pattern_file(&plain_path, 32 * MIB, 3);
        let sender = peer("sender", None).await;
        let sender_files = tmp.path().join("sender");
        let sending = std::sync::Arc::new(
            FileService::new(
                FileStore::open(&sender_files).unwrap(),
                sender.control.clone(),
            )
            .unwrap(),
        );
        let added = sending.add(&plain_path).await.unwrap();

        // The receiver cancels: its fetch ends as cancelled and nothing of the file is left on its disk.
        let receiver = peer("receiver", Some((sender.id, sender.addr.clone()))).await;
        let receiver_files = tmp.path().join("receiver");
        let receiving = std::sync::Arc::new(
            FileService::new(
                FileStore::open(&receiver_files).unwrap(),
                receiver.control.clone(),
            )
            .unwrap(),
        );
        let mut events = receiving.events();
        let fetch = {
            let r = receiving.clone();
            let (id, hash, size) = (sender.id, added.hash, added.size);
            tokio::spawn(async move { r.fetch(id, hash, size).await })
        };
        first_progress(&mut events).await;
        receiving.cancel_fetch(added.hash).await.unwrap();
        assert!(matches!(
            fetch.await.unwrap(),
            Err(TransferError::Cancelled)
        ));
        assert!(!receiving.store().contains(&added.hash));
        assert!(is_empty_dir(&receiver_files));

        // The sender cancels while a fetch runs: the receiver hears it, stops and drops its part; the sender
        // keeps nothing.
        let fetch = {
            let r = receiving.clone();
            let (id, hash, size) = (sender.id, added.hash, added.size);
            tokio::spawn(async move { r.fetch(id, hash, size).await })
        };
        first_progress(&mut events).await;
        sending.cancel_send(added.hash).await.unwrap();
        assert!(matches!(
            fetch.await.unwrap(),
            Err(TransferError::Cancelled)
        ));
        assert!(is_empty_dir(&receiver_files));
        assert!(is_empty_dir(&sender_files));
        // Asked again later, the sender says cancelled, not a stream error.
        assert!(matches!(
            receiving.fetch(sender.id, added.hash, added.size).await,
            Err(TransferError::Cancelled)
        ));
        assert!(is_empty_dir(&receiver_files));
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Bounds.

#[tokio::test]
async fn bounds_are_refused_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let me = peer("me", None).await;
    let service = FileService::new(
        FileStore::open(tmp.path().join("files")).unwrap(),
        me.control.clone(),
    )
    .unwrap();
    // A file over 4 GiB (sparse, so the test writes nothing).
    let huge = tmp.path().join("huge");
    fs::File::create(&huge)
        .unwrap()
        .set_len(tern_protocol::file::MAX_FILE_SIZE + 1)
        .unwrap();
    let err = service.add(&huge).await.unwrap_err();
    assert!(matches!(err, FilesError::TooLarge { .. }));
    assert!(err.to_string().contains("4 GiB"), "{err}");
    assert!(is_empty_dir(&tmp.path().join("files")));
    // An announced size over the bound is refused before anything is created.
    let other = PeerId::random();
    let err = service
        .fetch(
            other,
            FileHash([1; 32]),
            tern_protocol::file::MAX_FILE_SIZE + 1,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransferError::Files(FilesError::File(_))),
        "{err}"
    );
    assert!(is_empty_dir(&tmp.path().join("files")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ninth_concurrent_fetch_is_refused_and_cancels_leave_nothing() {
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().unwrap();
        // A holder that takes every request and never answers.
        let holder = peer("silent", None).await;
        let mut incoming = holder.control.clone().accept(PROTOCOL).unwrap();
        let (opened_tx, mut opened) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some((_, stream)) = incoming.next().await {
                held.push(stream);
                let _ = opened_tx.send(()).await;
            }
        });
        let receiver = peer("receiver", Some((holder.id, holder.addr.clone()))).await;
        let files = tmp.path().join("files");
        let service = std::sync::Arc::new(
            FileService::new(FileStore::open(&files).unwrap(), receiver.control.clone()).unwrap(),
        );
        let mut fetches = Vec::new();
        for i in 0..tern_node::files::MAX_FETCHING as u8 {
            let s = service.clone();
            let id = holder.id;
            fetches.push(tokio::spawn(async move {
                s.fetch(id, FileHash([i; 32]), 1000).await
            }));
            opened.recv().await.unwrap(); // its request reached the holder
        }
        let err = service
            .fetch(holder.id, FileHash([0xee; 32]), 1000)
            .await
            .unwrap_err();
        assert!(
            matches!(err, TransferError::TooManyTransfers { max: 8 }),
            "{err}"
        );
        assert!(
            err.to_string().contains("8 files are being fetched"),
            "{err}"
        );
        // The same file twice is refused too.
        let err = service
            .fetch(holder.id, FileHash([0; 32]), 1000)
            .await
            .unwrap_err();
        assert!(matches!(err, TransferError::AlreadyFetching), "{err}");
        for i in 0..tern_node::files::MAX_FETCHING as u8 {
            service.cancel_fetch(FileHash([i; 32])).await.unwrap();
        }
        for fetch in fetches {
            assert!(matches!(
                fetch.await.unwrap(),
                Err(TransferError::Cancelled)
            ));
        }
        assert!(is_empty_dir(&files));
    })
    .await
    .unwrap();
}
