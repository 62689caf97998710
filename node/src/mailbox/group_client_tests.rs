use super::*;

const G: GroupKey = [7; 32];
const Q: QueueId = QueueId([9; QUEUE_ID_LEN]);

fn machine(servers: &[PeerId], now: Instant) -> GroupMail {
    let mut m = GroupMail::new(now);
    m.handle_group(G, Some((Q, servers.to_vec())));
    m
}

fn drain(m: &mut GroupMail) -> Vec<GroupMailAction> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn sends(actions: &[GroupMailAction]) -> Vec<(PeerId, u64, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            GroupMailAction::Send {
                server,
                id,
                request: GroupRequest::Deposit { message, .. },
            } => Some((*server, *id, message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_message_is_deposited_once_per_server_in_order_and_dropped_once_stored() {
    let now = Instant::now();
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut m = machine(&[a, b], now);
    drain(&mut m);
    assert!(m.deposit(G, b"one", None, now));
    assert!(m.deposit(G, b"two", None, now));
    let first = sends(&drain(&mut m));
    assert_eq!(
        first.len(),
        2,
        "one to each server, the second message waits: {first:?}"
    );
    assert!(first.iter().all(|(_, _, msg)| msg == b"one"));
    let id = first[0].1;
    m.handle_stored(a, id, now);
    let next = sends(&drain(&mut m));
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].0, next[0].2.as_slice()), (a, &b"two"[..]));
    m.handle_stored(b, id, now);
    m.handle_stored(a, next[0].1, now);
    let last = sends(&drain(&mut m));
    assert_eq!((last[0].0, last[0].2.as_slice()), (b, &b"two"[..]));
    m.handle_stored(b, last[0].1, now);
    assert_eq!(m.pending(), 0);
    assert!(
        !drain(&mut m)
            .iter()
            .any(|a| matches!(a, GroupMailAction::Fallback { .. }))
    );
}

#[test]
fn a_message_no_server_stores_falls_back_to_one_to_one_after_the_last_try() {
    let mut now = Instant::now();
    let a = PeerId::random();
    let mut m = machine(&[a], now);
    drain(&mut m);
    assert!(
        !m.deposit([1; 32], b"no queue", None, now),
        "a group without a queue"
    );
    assert!(m.deposit(G, b"lost", None, now));
    let mut actions = Vec::new();
    for attempt in 0..MAX_DEPOSIT_TRIES {
        let sent = sends(&drain(&mut m));
        assert_eq!(sent.len(), 1, "try {attempt}");
        m.handle_failed(a, sent[0].1, now);
        actions = drain(&mut m);
        assert!(sends(&actions).is_empty(), "backed off");
        now += MAX_DEPOSIT_BACKOFF;
        m.handle_timeout(now);
    }
    assert!(
        actions
            .iter()
            .any(|x| matches!(x, GroupMailAction::Fallback { message, .. }
            if &message[..] == b"lost")),
        "{actions:?}"
    );
    assert_eq!(m.pending(), 0);

    // A refusal for good (not a rate limit) gives that server up at once.
    assert!(m.deposit(G, b"refused", None, now));
    let sent = sends(&drain(&mut m));
    m.handle_refused(a, sent[0].1, now);
    assert!(drain(&mut m).iter().any(
        |x| matches!(x, GroupMailAction::Fallback { message, .. } if &message[..] == b"refused")
    ));
    assert_eq!(m.pending(), 0);
}

#[test]
fn fetches_page_on_with_the_cursor_and_the_cursor_and_deposits_survive_a_restart() {
    let now = Instant::now();
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut m = machine(&[a, b], now);
    let challenges = drain(&mut m);
    assert_eq!(
        challenges.len(),
        2,
        "a new group is fetched from each server"
    );
    m.handle_nonce(a, G, [1; NONCE_LEN]);
    let fetch = drain(&mut m);
    assert!(matches!(
        fetch.as_slice(),
        [GroupMailAction::Fetch { cursor: 0, server, .. }] if *server == a
    ));
    m.handle_page(a, G, 64, 65, true);
    let again = drain(&mut m);
    assert!(again.contains(&GroupMailAction::Persist));
    assert!(again.contains(&GroupMailAction::Challenge {
        server: a,
        group: G
    }));
    m.handle_nonce(a, G, [2; NONCE_LEN]);
    assert!(matches!(
        drain(&mut m).as_slice(),
        [GroupMailAction::Fetch { cursor: 65, .. }]
    ));
    m.handle_page(a, G, 5, 70, false);
    drain(&mut m);
    m.handle_connected(a);
    assert_eq!(
        drain(&mut m),
        vec![GroupMailAction::Challenge {
            server: a,
            group: G
        }],
        "fetched again when it connects"
    );
    let key =
        tern_protocol::group_queue::EpochKey::from_exporter(&zeroize::Zeroizing::new([3; 32]));
    let rotation = tern_protocol::group_queue::Rotation {
        epoch: 4,
        new_key: key.public(),
        revoke: true,
    };
    let signed = SignedRotation {
        rotation,
        signer: key.public(),
        signature: key.sign_rotation(&Q, &rotation, b"waiting"),
    };
    assert!(m.deposit(G, b"waiting", Some(signed), now));
    drain(&mut m);

    let mut restarted = GroupMail::new(now);
    restarted.load(&m.encode(), now).unwrap();
    let resent = drain(&mut restarted);
    assert_eq!(
        sends(&resent).len(),
        2,
        "the deposit waiting goes again to both servers"
    );
    assert!(resent.iter().all(|a| matches!(a,
        GroupMailAction::Send { request: GroupRequest::Deposit { rotation: Some(r), .. }, .. }
            if *r == signed)));
    restarted.handle_group(G, Some((Q, vec![a, b])));
    drain(&mut restarted);
    restarted.handle_nonce(a, G, [3; NONCE_LEN]);
    assert!(matches!(
        drain(&mut restarted).as_slice(),
        [GroupMailAction::Fetch { cursor: 70, .. }]
    ));
    restarted.handle_nonce(b, G, [3; NONCE_LEN]);
    assert!(matches!(
        drain(&mut restarted).as_slice(),
        [GroupMailAction::Fetch { cursor: 0, .. }]
    ));
    assert!(restarted.load(&[2], now).is_err(), "another version");
    let mut cut = m.encode();
    cut.pop();
    assert!(GroupMail::new(now).load(&cut, now).is_err(), "a cut state");
}

#[test]
fn a_group_left_is_fetched_no_more_and_the_queues_are_bounded() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut m = machine(&[a], now);
    drain(&mut m);
    m.handle_group(G, None);
    m.handle_connected(a);
    assert!(
        !drain(&mut m)
            .iter()
            .any(|x| matches!(x, GroupMailAction::Challenge { .. }))
    );
    for i in 0..=MAX_MAIL_GROUPS {
        let mut g = [0u8; 32];
        g[..8].copy_from_slice(&(i as u64).to_be_bytes());
        m.handle_group(g, Some((Q, vec![a])));
    }
    assert_eq!(m.queues.len(), MAX_MAIL_GROUPS);
}

#[test]
fn a_deposit_is_persisted_by_the_callers_commit_and_one_that_could_not_be_stored_is_taken_back() {
    let now = Instant::now();
    let server = PeerId::random();
    let mut m = machine(&[server], now);
    drain(&mut m);
    assert!(!m.persist_pending());
    // Queued before the message is stored: the state to write includes it, nothing has left yet.
    assert!(m.deposit(G, b"stored", None, now));
    assert!(m.persist_pending());
    let state = m.encode();
    m.persisted();
    assert!(!m.persist_pending(), "the caller's commit wrote it");
    let mut again = GroupMail::new(now);
    again.load(&state, now).unwrap();
    assert_eq!(again.pending(), 1, "the written state holds the deposit");
    // A second message queued behind it, whose store then failed: its deposit is taken back, and
    // the first still goes.
    assert!(m.deposit(G, b"not stored", None, now));
    m.withdraw(b"not stored", now);
    let out = sends(&drain(&mut m));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].2, b"stored");
    assert_eq!(m.pending(), 1);
    // Taken back while it was the first in line: the next one goes in its place.
    m.handle_stored(server, out[0].1, now);
    drain(&mut m);
    assert!(m.deposit(G, b"first", None, now));
    assert!(m.deposit(G, b"second", None, now));
    m.withdraw(b"first", now);
    let out = sends(&drain(&mut m));
    assert_eq!(
        out.iter().map(|s| s.2.as_slice()).collect::<Vec<_>>(),
        [&b"second"[..]],
        "the withdrawn send never leaves, the next is sent"
    );
}
