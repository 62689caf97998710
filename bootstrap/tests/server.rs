//! The bootstrap server end to end on loopback: a real server, test clients over TCP, no mDNS.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use tern_bootstrap::{NODE_KEY_FILE, Server};
use tern_node::{
    mailbox::{MailboxRequest, MailboxResponse, Refusal},
    net::EnvelopeAck,
};
use tern_protocol::Envelope;
use tern_testkit::client::{Client, RawOutcome};
use tern_testkit::mail::{envelope, identity, now_s};
use tern_testkit::metrics::{http_get, sample};
use tern_testkit::net::bootstrap_config;
use tern_testkit::wait::TIMEOUT;
use tokio::time::timeout;
use tracing::Instrument;

fn ends_in_p2p(addr: &libp2p::Multiaddr, peer: libp2p::PeerId) -> bool {
    matches!(addr.iter().last(), Some(Protocol::P2p(p)) if p == peer)
}

#[tokio::test]
async fn server_reports_loopback_listen_addresses_with_peer_id() {
    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = bootstrap_config(dir.path());
        config
            .listen
            .push("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap());
        let server = Server::spawn(config).await.unwrap();
        let addrs = server.listen_addrs();
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        for addr in &addrs {
            assert!(ends_in_p2p(addr, server.peer_id()), "{addr}");
            assert!(addr.to_string().starts_with("/ip4/127.0.0.1/"), "{addr}");
            assert!(!addr.to_string().contains("/tcp/0/"), "{addr}");
        }
        assert!(addrs.iter().any(|a| a.to_string().contains("/quic-v1/")));
        assert!(dir.path().join(NODE_KEY_FILE).exists());
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn node_key_keeps_the_peer_id_across_restarts() {
    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let first = Server::spawn(bootstrap_config(dir.path())).await.unwrap();
        let peer_id = first.peer_id();
        first.shutdown().await.unwrap();
        let second = Server::spawn(bootstrap_config(dir.path())).await.unwrap();
        assert_eq!(second.peer_id(), peer_id);
        second.shutdown().await.unwrap();

        let other = tempfile::tempdir().unwrap();
        let third = Server::spawn(bootstrap_config(other.path())).await.unwrap();
        assert_ne!(third.peer_id(), peer_id, "a new data dir is a new identity");
        third.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn deposited_mail_is_fetched_by_its_owner_and_acked_away() {
    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::spawn(bootstrap_config(dir.path())).await.unwrap();
        let addr = server.listen_addrs()[0].clone();
        let (alice, bob) = (identity(), identity());
        let mail = envelope(&alice, &bob, b"hello bob");

        let mut sender = Client::new();
        let server_id = sender
            .connect(&addr)
            .instrument(tracing::info_span!("alice"))
            .await;
        sender.deposit(server_id, &mail).await;
        // The same envelope again changes nothing.
        assert_eq!(
            sender
                .request(
                    server_id,
                    MailboxRequest::Deposit {
                        envelope: mail.encode()
                    }
                )
                .await,
            MailboxResponse::Duplicate { id: mail.id() }
        );

        let mut owner = Client::new();
        owner.connect(&addr).await;
        // Someone else cannot fetch Bob's mail: a proof signed by Alice names Alice's mailbox.
        assert!(owner.fetch(server_id, &alice).await.is_empty());
        let fetched = owner.fetch(server_id, &bob).await;
        assert_eq!(fetched, vec![mail.clone()]);
        assert_eq!(fetched[0].open(&bob, now_s()).unwrap().sender, alice.key());

        // A proof is bound to the connection the challenge was issued on: replayed from another peer, the
        // server refuses it.
        let auth = owner.owner_auth(server_id, &bob).await;
        assert_eq!(
            sender
                .request(server_id, MailboxRequest::Fetch { auth, max: 1 })
                .await,
            MailboxResponse::Refused(Refusal::BadChallenge)
        );

        assert_eq!(owner.ack(server_id, &bob, &fetched).await, 1);
        assert!(owner.fetch(server_id, &bob).await.is_empty());
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn new_mail_is_pushed_to_a_connected_owner() {
    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::spawn(bootstrap_config(dir.path())).await.unwrap();
        let addr = server.listen_addrs()[0].clone();
        let (alice, bob) = (identity(), identity());

        // Bob fetches (nothing yet), which ties his mailbox to his connection.
        let mut owner = Client::new();
        let server_id = owner.connect(&addr).await;
        assert!(owner.fetch(server_id, &bob).await.is_empty());

        let mail = envelope(&alice, &bob, b"are you there?");
        let mut sender = Client::new();
        sender.connect(&addr).await;
        sender.deposit(server_id, &mail).await;

        let (pushed, channel) = owner.next_push().await;
        assert_eq!(Envelope::decode(pushed.as_bytes()).unwrap(), mail);
        owner.ack_push(channel, EnvelopeAck::Accepted);

        // The server deletes it once the acknowledgement arrives; poll the mailbox until it is empty.
        let mut emptied = false;
        for _ in 0..50 {
            if owner.fetch(server_id, &bob).await.is_empty() {
                emptied = true;
                break;
            }
            owner.drive_for(Duration::from_millis(50)).await;
        }
        assert!(emptied, "pushed mail was not deleted after the owner's ack");
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn metrics_endpoint_counts_deposits() {
    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = bootstrap_config(dir.path());
        config.metrics = Some("127.0.0.1:0".parse().unwrap());
        let server = Server::spawn(config).await.unwrap();
        let metrics_addr = server.metrics_addr().unwrap();
        assert_ne!(metrics_addr.port(), 0);

        let mut client = Client::new();
        let server_id = client.connect(&server.listen_addrs()[0]).await;
        client
            .deposit(server_id, &envelope(&identity(), &identity(), b"x"))
            .await;
        // A refused deposit shows up under its reason.
        let refused = client
            .request(
                server_id,
                MailboxRequest::Deposit {
                    envelope: vec![1, 2, 3],
                },
            )
            .await;
        assert!(
            matches!(refused, MailboxResponse::Refused(_)),
            "{refused:?}"
        );

        let response = http_get(metrics_addr, "/metrics").await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        assert!(
            sample(body, "tern_bootstrap_mailbox_deposits_total").unwrap() >= 1.0,
            "{body}"
        );
        assert_eq!(
            sample(body, "tern_bootstrap_mailbox_envelopes"),
            Some(1.0),
            "{body}"
        );
        assert!(
            sample(body, "tern_bootstrap_connected_peers").unwrap() >= 1.0,
            "{body}"
        );
        assert!(
            body.contains("tern_bootstrap_mailbox_refusals_total{reason=\"malformed\"}"),
            "{body}"
        );
        let refusals: f64 = body
            .lines()
            .filter(|l| l.starts_with("tern_bootstrap_mailbox_refusals_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(refusals >= 1.0, "{body}");

        let missing = http_get(metrics_addr, "/nope").await.unwrap();
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn garbage_on_the_mailbox_stream_costs_the_sender_its_connection_not_the_server() {
    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::spawn(bootstrap_config(dir.path())).await.unwrap();
        let addr = server.listen_addrs()[0].clone();

        let mut attacker = Client::new();
        let huge_prefix = vec![0xff; 64];
        let bad_version = vec![0, 0, 0, 2, 9, 1];
        let unknown_tag = vec![0, 0, 0, 2, 1, 99];
        let truncated = vec![0, 0, 0, 200, 1, 1, 0];
        let mut trailing = vec![0, 0, 0, 2, 1, 2];
        trailing.extend_from_slice(b"and more");
        for garbage in [
            vec![],
            huge_prefix,
            bad_version,
            unknown_tag,
            truncated,
            trailing,
        ] {
            let server_id = attacker.connect(&addr).await;
            let outcome = attacker.raw_mailbox(server_id, garbage.clone()).await;
            // Whatever comes back, it is not a well-formed answer to a request...
            if let RawOutcome::Bytes(bytes) = &outcome {
                assert!(
                    bytes.is_empty() || bytes == &[0, 0, 0, 3, 1, 3, 1],
                    "{garbage:?} got an answer: {bytes:?}"
                );
            }
            // ...and the server hangs up on the sender.
            attacker.disconnected(server_id).await;
        }

        // An honest client is served throughout, and the attacker again once it reconnects.
        let (alice, bob) = (identity(), identity());
        let mut honest = Client::new();
        let server_id = honest.connect(&addr).await;
        let mail = envelope(&alice, &bob, b"still here");
        honest.deposit(server_id, &mail).await;
        assert_eq!(honest.fetch(server_id, &bob).await, vec![mail]);
        attacker.connect(&addr).await;
        assert!(matches!(
            attacker.request(server_id, MailboxRequest::Challenge).await,
            MailboxResponse::Nonce { .. }
        ));
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn offline_mail_survives_bootstrap_restart() {
    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (identity(), identity());
        let mail = envelope(&alice, &bob, b"see you after the restart");

        let server = Server::spawn(bootstrap_config(dir.path())).await.unwrap();
        let peer_id = server.peer_id();
        let mut sender = Client::new();
        sender.connect(&server.listen_addrs()[0]).await;
        sender.deposit(peer_id, &mail).await;
        server.shutdown().await.unwrap();
        drop(sender);

        // Reopened at once on the same data dir: the database lock was released by shutdown.
        let server = Server::spawn(bootstrap_config(dir.path())).await.unwrap();
        assert_eq!(server.peer_id(), peer_id);
        let mut owner = Client::new();
        owner.connect(&server.listen_addrs()[0]).await;
        let fetched = owner.fetch(peer_id, &bob).await;
        assert_eq!(fetched, vec![mail]);
        assert_eq!(owner.ack(peer_id, &bob, &fetched).await, 1);
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn federation_peers_are_dialled_at_start() {
    timeout(TIMEOUT, async {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Server::spawn(bootstrap_config(dir_a.path()))
            .instrument(tracing::info_span!("a"))
            .await
            .unwrap();
        let mut config_b = bootstrap_config(dir_b.path());
        config_b.peers = vec![a.listen_addrs()[0].clone()];
        let b = Server::spawn(config_b)
            .instrument(tracing::info_span!("b"))
            .await
            .unwrap();
        assert!(a.wait_for_connected_peers(1).await);
        assert!(b.wait_for_connected_peers(1).await);
        assert_eq!(a.connected_peers(), 1);
        b.shutdown().await.unwrap();
        a.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_clients_pings_are_answered() {
    use futures::StreamExt;
    use libp2p::ping;
    use libp2p::swarm::SwarmEvent;

    timeout(TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::spawn(bootstrap_config(dir.path())).await.unwrap();
        let addr = server.listen_addrs()[0].clone();
        let config = ping::Config::new().with_interval(Duration::from_millis(50));
        let mut client = tern_testkit::net::tcp_swarm(
            libp2p::identity::Keypair::generate_ed25519(),
            ping::Behaviour::new(config),
        );
        client.dial(addr).unwrap();
        // Three pings of the client answered in turn on its stream (a failure would come as Err).
        let mut answered = 0;
        while answered < 3 {
            if let SwarmEvent::Behaviour(ping::Event { peer, result, .. }) =
                client.select_next_some().await
            {
                assert_eq!(peer, server.peer_id());
                result.expect("the server answers the ping");
                answered += 1;
            }
        }
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}
