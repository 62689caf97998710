//! Hostile hold requests against a bootstrap node's file holder (docs/protocol.md §19.9), from a bare libp2p
//! peer that is not a Tern node: a malformed request, a file over the limit, and a request for a file the
//! asker does not have. Each gets its answer, nothing is kept, and the quota is whole afterwards (a file
//! the size of the whole quota still fits).

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, identity::Keypair};
use tern_bootstrap::{Config, FILES_DIR, FileLimits};
use tern_node::files::hold::HOLD_PROTOCOL;
use tern_protocol::file::{
    FileHash, FileLayout, HOLD_ANSWER_LEN, HOLD_REQUEST_LEN, HoldAnswer, HoldRequest,
};
use tern_testkit::net::{
    bootstrap_config, connect_swarm, peer_of, spawn_bootstrap_with, tcp_swarm,
};

async fn ask(control: &mut libp2p_stream::Control, server: PeerId, request: &[u8]) -> Stream {
    let mut stream = control.open_stream(server, HOLD_PROTOCOL).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

async fn answer(stream: &mut Stream) -> HoldAnswer {
    let mut bytes = [0u8; HOLD_ANSWER_LEN];
    stream.read_exact(&mut bytes).await.unwrap();
    HoldAnswer::decode(&bytes).unwrap()
}

fn request(size: u64, seed: u8) -> [u8; HOLD_REQUEST_LEN] {
    HoldRequest {
        hash: FileHash([seed; 32]),
        ciphertext_len: FileLayout::new(size).unwrap().ciphertext_len(),
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hold_requests_are_answered_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let quota = FileLayout::new(1 << 20).unwrap().ciphertext_len();
    let (server, addr) = spawn_bootstrap_with(Config {
        files: FileLimits {
            max_file_bytes: quota,
            quota_bytes: quota,
        },
        ..bootstrap_config(dir.path())
    })
    .await;
    let server_peer = peer_of(&addr);

    let mut swarm = tcp_swarm(Keypair::generate_ed25519(), libp2p_stream::Behaviour::new());
    let mut control = swarm.behaviour().new_control();
    connect_swarm(&mut swarm, server_peer, addr, |_| {}).await;
    let driver = tokio::spawn(async move { while swarm.next().await.is_some() {} });

    // A request of another version.
    let mut bad = request(1000, 1);
    bad[0] = 9;
    let mut stream = ask(&mut control, server_peer, &bad).await;
    assert_eq!(answer(&mut stream).await, HoldAnswer::Malformed);

    // Over the per-file limit: refused with the limit, before anything is fetched.
    let mut stream = ask(&mut control, server_peer, &request(2 << 20, 2)).await;
    assert_eq!(
        answer(&mut stream).await,
        HoldAnswer::TooLarge { max: quota }
    );

    // A file this peer does not have (it does not even speak /tern/file/1): the server accepts, fails to
    // fetch, and keeps nothing.
    let mut stream = ask(&mut control, server_peer, &request(1 << 20, 3)).await;
    assert_eq!(answer(&mut stream).await, HoldAnswer::Fetching);
    assert_eq!(answer(&mut stream).await, HoldAnswer::Failed);
    let held = std::fs::read_dir(dir.path().join(FILES_DIR))
        .unwrap()
        .count();
    assert_eq!(held, 0, "nothing of it kept");

    // The failed fetch gave its reservation back: a file the size of the whole quota is accepted again.
    let mut stream = ask(&mut control, server_peer, &request(1 << 20, 4)).await;
    assert_eq!(answer(&mut stream).await, HoldAnswer::Fetching);
    assert_eq!(answer(&mut stream).await, HoldAnswer::Failed);

    driver.abort();
    server.shutdown().await.unwrap();
}
