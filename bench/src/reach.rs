//! `tern-bench reach`: issue 12's loopback target. Two nodes that share only a `tern-bootstrap` process (no
//! `--peer`, no mDNS: they find each other through their address records in the DHT) against two that dial
//! each other's known address, in the same run: how long until each sees the other online with no message
//! sent, and the send-to-received latency once they have.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libp2p::Multiaddr;
use tern_node::api::{ConversationId, Event};
use tern_node::engine::Engine;
use tern_node::net::NetConfig;
use tern_node::node::{Node, NodeConfig};
use tern_node::store::{KdfParams, Password};
use tokio::sync::broadcast;

use crate::report::{Row, Target, note, print_table};
use crate::{Bootstrap, Pair, ms, percentile, tern_latency, tern_pair, wait_status};

/// How long the two may take to see each other online before the run is called failed.
const ONLINE_DEADLINE: Duration = Duration::from_secs(30);

fn shared_bootstrap_net(bootstrap: &Multiaddr) -> NetConfig {
    NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
        lan_only: false,
        mdns: false,
        // Loopback is all this machine has: publish and dial it as if it were public.
        local_addresses: true,
        bootstrap: vec![bootstrap.clone()],
        ..NetConfig::default()
    }
}

/// Waits until `events` says `contact` is online; returns when.
async fn online(
    events: &mut broadcast::Receiver<Event>,
    contact: tern_protocol::IdentityKey,
) -> Result<Instant> {
    loop {
        match events.recv().await? {
            Event::ContactOnline {
                contact: who,
                online: true,
                ..
            } if who == contact => return Ok(Instant::now()),
            _ => {}
        }
    }
}

/// Alice and Bob, each the other's contact, started together against one bootstrap node; returns the pair
/// (warmed up: a session each way) and how long after both started each saw the other online.
async fn pair_via(bootstrap: &Multiaddr) -> Result<(Pair, Duration)> {
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
    let password = Password::new("bench".into());
    let create = |dir: &Path, name: &str| {
        Engine::create(dir, name, &password, KdfParams::INSECURE_FOR_TESTS)
    };
    let mut alice = create(dirs.0.path(), "Alice")?;
    let mut bob = create(dirs.1.path(), "Bob")?;
    alice.add_contact(&bob.card().invite_link(), None)?;
    bob.add_contact(&alice.card().invite_link(), None)?;
    let (a_key, b_key) = (alice.key(), bob.key());
    let config = NodeConfig {
        net: shared_bootstrap_net(bootstrap),
        mailboxes: vec![bootstrap.clone()],
        ..NodeConfig::default()
    };
    let started = Instant::now();
    let (a, mut a_events) = Node::start(alice, config.clone())?;
    let (b, mut b_events) = Node::start(bob, config)?;
    let (a_saw, b_saw) = tokio::time::timeout(ONLINE_DEADLINE, async {
        tokio::try_join!(online(&mut a_events, b_key), online(&mut b_events, a_key))
    })
    .await
    .context("the two never saw each other online")??;
    let to_online = a_saw.max(b_saw) - started;
    let warm = a
        .send_text(ConversationId::Direct(b_key), "warm-up".into())
        .await?;
    wait_status(&mut a_events, warm.id).await?;
    let warm = b
        .send_text(ConversationId::Direct(a_key), "warm-up".into())
        .await?;
    wait_status(&mut b_events, warm.id).await?;
    Ok((
        Pair {
            _dirs: dirs,
            a,
            a_events,
            b,
            b_events,
            a_key,
            b_key,
        },
        to_online,
    ))
}

pub(crate) async fn run(n: usize) -> Result<()> {
    let bootstrap = Bootstrap::spawn("")?;
    let (mut pair, to_online) = pair_via(&bootstrap.addr).await?;
    let via = tern_latency(&mut pair, n).await?;
    pair.a.shutdown().await?;
    pair.b.shutdown().await?;
    let mut dialled = tern_pair().await?;
    let base = tern_latency(&mut dialled, n).await?;
    dialled.a.shutdown().await?;
    dialled.b.shutdown().await?;
    print_table(
        &format!(
            "reach: {n} sequential 1 KiB messages between two nodes that share only a bootstrap node (loopback)"
        ),
        &[
            Row::new(
                "median send to received",
                ms(percentile(&via, 0.5)),
                ms(percentile(&base, 0.5)),
                "ms",
                Target::AtMost(1.5),
            ),
            Row::new(
                "p99 send to received",
                ms(percentile(&via, 0.99)),
                ms(percentile(&base, 0.99)),
                "ms",
                Target::Report,
            ),
            Row::new(
                "both started to both online, no message",
                to_online.as_secs_f64(),
                0.0,
                "s",
                Target::Below(5.0),
            ),
        ],
    );
    note("baseline = two nodes that dial each other's known address (`latency`'s pair)");
    Ok(())
}
