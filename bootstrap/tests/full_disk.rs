//! A bootstrap node whose data directory fills up: on a real small filesystem (a tmpfs mounted by the test,
//! which needs root; elsewhere the test says it is skipped, and the mailbox server's own tests inject the
//! same fault through a storage backend: `node/src/mailbox/server/tests.rs`).
//!
//! Deposits until the disk is full (refused `internal`), then the filesystem grows: the same process
//! serves again without a restart, every envelope it ever answered `Deposited` for is fetched and
//! acknowledged, and the metrics tell the outage.

use std::time::Duration;

use tern_bootstrap::Server;
use tern_node::mailbox::server::MAX_REOPEN_INTERVAL_S;
use tern_node::mailbox::{MailboxResponse, Refusal};
use tern_protocol::Envelope;
use tern_testkit::client::Client;
use tern_testkit::disk::SmallDisk;
use tern_testkit::mail::{envelope, identity};
use tern_testkit::metrics::{http_get, sample};
use tern_testkit::net::bootstrap_config;
use tern_testkit::wait::{TIMEOUT, poll_until};
use tokio::time::timeout;

async fn metric(server: &Server, name: &str) -> f64 {
    let text = http_get(server.metrics_addr().unwrap(), "/metrics")
        .await
        .unwrap();
    sample(&text, name).unwrap_or_else(|| panic!("{name} missing"))
}

#[tokio::test]
async fn a_full_disk_refuses_mail_then_the_same_process_serves_it_all_once_there_is_room() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs root); the storage-backend tests cover it"
        );
        return;
    };
    timeout(TIMEOUT * 4, async {
        let mut config = bootstrap_config(disk.path());
        config.metrics = Some("127.0.0.1:0".parse().unwrap());
        config.mailbox.deposits_per_minute = 10_000;
        let server = Server::spawn(config).await.unwrap();
        let addr = server.listen_addrs().remove(0);
        let mut client = Client::new();
        let peer = client.connect(&addr).await;
        let (sender, owner) = (identity(), identity());

        // Fill it: 32 KiB envelopes until one is refused for storage.
        let mut stored: Vec<Envelope> = Vec::new();
        let refused = loop {
            assert!(
                stored.len() < 200,
                "a 1 MB disk took 200 envelopes of 32 KiB"
            );
            let env = envelope(&sender, &owner, &[9u8; 32 * 1024]);
            match client.try_deposit(peer, &env).await {
                MailboxResponse::Deposited { .. } => stored.push(env),
                other => break other,
            }
        };
        assert_eq!(refused, MailboxResponse::Refused(Refusal::Internal));
        assert!(!stored.is_empty());
        assert_eq!(
            metric(&server, "tern_bootstrap_mailbox_storage_ok").await,
            0.0
        );
        assert!(metric(&server, "tern_bootstrap_mailbox_storage_failures_total").await >= 1.0);
        // Still full: still refused (and the process is still up).
        let env = envelope(&sender, &owner, &[9u8; 32 * 1024]);
        assert_eq!(
            client.try_deposit(peer, &env).await,
            MailboxResponse::Refused(Refusal::Internal)
        );

        disk.grow();
        // The same process serves again once it has reopened the database (within its longest pause).
        let limit = Duration::from_secs(MAX_REOPEN_INTERVAL_S * 2);
        let answer = poll_until(
            limit,
            async || client.try_deposit(peer, &env).await,
            |r| *r != MailboxResponse::Refused(Refusal::Internal),
        )
        .await;
        assert!(
            matches!(answer, MailboxResponse::Deposited { .. }),
            "{answer:?} {limit:?} after the disk grew"
        );
        stored.push(env);
        assert_eq!(
            metric(&server, "tern_bootstrap_mailbox_storage_ok").await,
            1.0
        );
        assert!(metric(&server, "tern_bootstrap_mailbox_storage_reopens_total").await >= 1.0);

        // Everything answered `Deposited` is there, once, and acknowledgements work.
        let mut fetched = 0;
        loop {
            let page = client.fetch(peer, &owner).await;
            if page.is_empty() {
                break;
            }
            fetched += page.len();
            assert_eq!(client.ack(peer, &owner, &page).await as usize, page.len());
        }
        assert_eq!(fetched, stored.len());
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}
