//! Members' updates of their own path between real nodes (docs/protocol.md §18.3): every member of a new
//! group commits one update, so the group's tree fills; after a removal the member closest to the removed
//! leaf commits another; a member that leaves is removed although updates race with its proposal. Every
//! member ends in the same epoch, nobody wants another update, and texts still reach everyone once.

use std::time::Duration;

use tern_node::api::{ConversationId, Event, GroupSummary};
use tern_node::group::Group;
use tern_node::node::{GroupUpdates, NodeConfig};
use tern_protocol::IdentityKey;
use tern_testkit::net::{LiveNode, loopback_node};
use tern_testkit::profile::{create, introduce, open};
use tern_testkit::wait::wait_for;
use tokio::sync::broadcast;

fn config() -> NodeConfig {
    NodeConfig {
        group_updates: GroupUpdates::Within(Duration::from_secs(2)),
        ..loopback_node()
    }
}

/// Waits until `group` is in `epoch` with `members` members at this node.
async fn at_epoch(
    events: &mut broadcast::Receiver<Event>,
    who: &str,
    group: ConversationId,
    epoch: u64,
    members: usize,
) -> GroupSummary {
    let what = format!("{who} in epoch {epoch} with {members} members");
    let event = wait_for(events, &what, |e| match e {
        Event::GroupJoined { group: s, .. } | Event::GroupUpdated { group: s } => {
            s.id == group && s.epoch == epoch && s.members == members
        }
        _ => false,
    })
    .await;
    match event {
        Event::GroupJoined { group, .. } | Event::GroupUpdated { group } => group,
        _ => unreachable!(),
    }
}

/// Waits until every text of `want` arrived in `group`, asserting none arrived twice meanwhile.
async fn texts_arrive(
    events: &mut broadcast::Receiver<Event>,
    group: ConversationId,
    want: &[&str],
) {
    let mut got = Vec::new();
    while got.len() < want.len() {
        let event = wait_for(events, &format!("texts {want:?}"), |e| {
            matches!(e, Event::MessageReceived { message, .. }
                if message.conversation == group && !message.system
                    && want.contains(&message.text.as_str()))
        })
        .await;
        if let Event::MessageReceived { message, .. } = event {
            assert!(
                !got.contains(&message.text),
                "{} arrived twice",
                message.text
            );
            got.push(message.text);
        }
    }
}

/// Of `leaves` (each member's leaf index), the member that refills after the removal of `removed`: the
/// closest remaining leaf index by XOR, unless that is the committer's (`None`).
fn refiller(
    leaves: &[(usize, IdentityKey)],
    removed: &IdentityKey,
    committer: &IdentityKey,
) -> Option<IdentityKey> {
    let (at, _) = leaves.iter().find(|(_, k)| k == removed).unwrap();
    let (_, closest) = leaves
        .iter()
        .filter(|(_, k)| k != removed)
        .min_by_key(|(i, _)| i ^ at)
        .unwrap();
    (closest != committer).then_some(*closest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_update_their_paths_once_refill_after_a_removal_and_still_read_each_other() {
    let dirs = [(); 4].map(|()| tempfile::tempdir().unwrap());
    let mut alice = create(dirs[0].path(), "Alice");
    let mut bob = create(dirs[1].path(), "Bob");
    let mut carol = create(dirs[2].path(), "Carol");
    let mut dave = create(dirs[3].path(), "Dave");
    introduce(&mut [&mut alice, &mut bob]);
    introduce(&mut [&mut alice, &mut carol]);
    introduce(&mut [&mut alice, &mut dave]);

    let (epoch, a_key, b_key) = tokio::time::timeout(Duration::from_secs(240), async {
        let mut a = LiveNode::start(alice, "alice", config()).await;
        let mut b = LiveNode::start(bob, "bob", config()).await;
        let mut c = LiveNode::start(carol, "carol", config()).await;
        let mut d = LiveNode::start(dave, "dave", config()).await;
        for n in [&b, &c, &d] {
            n.node.dial(a.addr.clone()).await.unwrap();
        }
        let g = a
            .node
            .group_create("Rope team".into(), vec![b.key, c.key, d.key])
            .await
            .unwrap()
            .id;
        // Three adds (one commit each), then one update by each of the four, whatever the order in
        // which they raced: an update that lost to an add is made again.
        let mut epoch = 3 + 4;
        for (n, who) in [
            (&mut a, "alice"),
            (&mut b, "bob"),
            (&mut c, "carol"),
            (&mut d, "dave"),
        ] {
            at_epoch(&mut n.events, who, g, epoch, 4).await;
        }
        a.node.group_send(g, "all updated".into()).await.unwrap();
        for n in [&mut b, &mut c, &mut d] {
            texts_arrive(&mut n.events, g, &["all updated"]).await;
        }

        // Alice removes Carol; the member whose leaf shares Carol's lowest ancestor refills it. With nobody
        // removed yet, the members' leaf order gives their leaf indices; a removal does not move leaves.
        let mut leaves: Vec<(usize, IdentityKey)> =
            (a.node.group_members(g).await.unwrap().iter().enumerate())
                .map(|(i, m)| (i, m.key))
                .collect();
        let refill = refiller(&leaves, &c.key, &a.key);
        a.node.group_remove(g, c.key).await.unwrap();
        epoch += 1 + u64::from(refill.is_some());
        for (n, who) in [(&mut a, "alice"), (&mut b, "bob"), (&mut d, "dave")] {
            at_epoch(&mut n.events, who, g, epoch, 3).await;
        }

        // Dave leaves: his proposal is carried out, and whoever is then closest to his leaf refills.
        leaves.retain(|(_, k)| *k != c.key);
        let refill = refiller(&leaves, &d.key, &a.key);
        d.node.group_leave(g).await.unwrap();
        epoch += 1 + u64::from(refill.is_some());
        for (n, who) in [(&mut a, "alice"), (&mut b, "bob")] {
            at_epoch(&mut n.events, who, g, epoch, 2).await;
        }
        b.node.group_send(g, "two of us".into()).await.unwrap();
        texts_arrive(&mut a.events, g, &["two of us"]).await;
        let keys = (a.key, b.key);
        for n in [a, b, c, d] {
            n.node.shutdown().await.unwrap();
        }
        (epoch, keys.0, keys.1)
    })
    .await
    .expect("the update test finished in time");

    // Nobody wants another update; Alice and Bob are in the same epoch of a group of two.
    for (dir, key) in [(&dirs[0], a_key), (&dirs[1], b_key)] {
        let engine = open(dir.path());
        let states = engine.store().groups().unwrap();
        let group = Group::decode(&states[0]).unwrap();
        assert_eq!(group.me(), key);
        assert!(!group.wants_update());
        assert_eq!(group.epoch(), epoch);
        assert_eq!(group.members().unwrap(), vec![a_key, b_key]);
    }
}
