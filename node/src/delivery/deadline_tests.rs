//! The direct deadline: a first attempt to an unconnected recipient waits [`DIRECT_DEADLINE`] for the dial
//! before anything goes to a mailbox, and a connection within it takes the entry directly.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tern_protocol::Identity;

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct E {
    id: MessageId,
    to: IdentityKey,
    attempts: u32,
}

impl Entry for E {
    fn id(&self) -> MessageId {
        self.id
    }
    fn recipient(&self) -> IdentityKey {
        self.to
    }
    fn attempts(&self) -> u32 {
        self.attempts
    }
    fn count_attempt(&mut self) {
        self.attempts += 1;
    }
}

fn peer(seed: u64) -> (IdentityKey, PeerId) {
    let key = Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key();
    (key, peer_id_of(&key).unwrap())
}

fn drain(machine: &mut Delivery<E>) -> Vec<Action<E>> {
    std::iter::from_fn(|| machine.poll_action()).collect()
}

/// A machine connected to one shared server, holding one fresh entry for an unconnected recipient.
fn setup(t0: Instant) -> (Delivery<E>, IdentityKey, PeerId, PeerId) {
    let (bob, bob_peer) = peer(1);
    let (_, server) = peer(2);
    let mut machine = Delivery::new(t0);
    machine.handle_connected(server);
    machine.handle_shared_servers(vec![server]);
    drain(&mut machine);
    let entry = E {
        id: MessageId([7; 16]),
        to: bob,
        attempts: 0,
    };
    let day = Duration::from_secs(86_400);
    machine.handle_loaded(
        vec![Outgoing {
            entry,
            expires: t0 + day,
        }],
        t0,
    );
    let log = drain(&mut machine);
    assert!(log.contains(&Action::DialContact { peer: bob_peer }));
    (machine, bob, bob_peer, server)
}

fn mailbox_work(log: &[Action<E>]) -> bool {
    log.iter()
        .any(|a| matches!(a, Action::Lookup { .. } | Action::Deposit { .. }))
}

#[test]
fn the_mailbox_waits_for_the_direct_deadline_and_not_longer() {
    let t0 = Instant::now();
    let (mut machine, bob, _, server) = setup(t0);
    machine.handle_timeout(t0 + DIRECT_DEADLINE - Duration::from_millis(1));
    assert!(
        !mailbox_work(&drain(&mut machine)),
        "mailbox before the deadline"
    );
    machine.handle_timeout(t0 + DIRECT_DEADLINE);
    let log = drain(&mut machine);
    assert!(log.contains(&Action::Lookup { recipient: bob }), "{log:?}");
    machine.handle_lookup_finished(bob, None, t0 + DIRECT_DEADLINE);
    let log = drain(&mut machine);
    assert!(
        log.iter()
            .any(|a| matches!(a, Action::Deposit { server: s, .. } if *s == server)),
        "{log:?}"
    );
}

#[test]
fn a_connection_within_the_deadline_takes_the_entry_directly() {
    let t0 = Instant::now();
    let (mut machine, _, bob_peer, _) = setup(t0);
    machine.handle_connected(bob_peer);
    let log = drain(&mut machine);
    assert!(
        log.iter()
            .any(|a| matches!(a, Action::Send { peer, .. } if *peer == bob_peer)),
        "{log:?}"
    );
    machine.handle_timeout(t0 + DIRECT_DEADLINE * 10);
    assert!(!mailbox_work(&drain(&mut machine)));
}
