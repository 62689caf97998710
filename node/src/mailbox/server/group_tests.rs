//! Group queues on the server: one copy per message, fetch from a cursor with an epoch key, rotation and
//! revocation, typed refusals, and the bounds (oldest dropped, retention, idle queues).

use libp2p::PeerId;
use tern_protocol::group_queue::{EpochKey, QueueId, Rotation};
use tern_testkit::disk::FlakyDisk;
use zeroize::Zeroizing;

use crate::mailbox::group_wire::{
    GroupRequest, GroupResponse, QueueAuth, QueuedMessage, SignedRotation,
};
use crate::mailbox::server::db::Db;
use crate::mailbox::server::storage::Opener;
use crate::mailbox::server::*;
use crate::mailbox::{MailboxRequest, MailboxResponse, Refusal};
use crate::redb_file::open_checked_with;

const NOW: u64 = 1_750_000_000;
const SERVER: &[u8] = b"\x00\x24server-peer-id-for-group-tests";
const QUEUE: QueueId = QueueId([0x51; 16]);

fn server(disk: &FlakyDisk, config: MailboxConfig) -> MailboxServer {
    let opener = disk.clone();
    MailboxServer::open_with(
        Opener::Backend(Box::new(move || {
            Db::init(open_checked_with(opener.clone())?)
        })),
        SERVER.to_vec(),
        config,
    )
    .unwrap()
}

fn fast() -> MailboxConfig {
    MailboxConfig {
        deposits_per_minute: 1_000_000,
        ..MailboxConfig::default()
    }
}

fn key(epoch: u8) -> EpochKey {
    EpochKey::from_exporter(&Zeroizing::new([epoch + 1; 32]))
}

fn open(server: &mut MailboxServer, peer: &PeerId, k: &EpochKey, epoch: u64) -> MailboxResponse {
    let request = GroupRequest::Open {
        queue: QUEUE,
        epoch,
        key: k.public(),
        signature: k.sign_open(&QUEUE, epoch),
    };
    server.handle(peer, MailboxRequest::Group(request), NOW)
}

fn deposit(server: &mut MailboxServer, peer: &PeerId, message: &[u8], now: u64) -> MailboxResponse {
    let request = GroupRequest::Deposit {
        queue: QUEUE,
        message: message.to_vec(),
        rotation: None,
    };
    server.handle(peer, MailboxRequest::Group(request), now)
}

/// A commit to `new_epoch`, signed by `signer` (a key of the epoch before).
fn commit(
    server: &mut MailboxServer,
    peer: &PeerId,
    message: &[u8],
    signer: &EpochKey,
    new_epoch: u64,
    revoke: bool,
) -> MailboxResponse {
    let rotation = Rotation {
        epoch: new_epoch,
        new_key: key(u8::try_from(new_epoch).unwrap()).public(),
        revoke,
    };
    let request = GroupRequest::Deposit {
        queue: QUEUE,
        message: message.to_vec(),
        rotation: Some(SignedRotation {
            rotation,
            signer: signer.public(),
            signature: signer.sign_rotation(&QUEUE, &rotation, message),
        }),
    };
    server.handle(peer, MailboxRequest::Group(request), NOW)
}

fn fetch(
    server: &mut MailboxServer,
    peer: &PeerId,
    k: &EpochKey,
    cursor: u64,
) -> Result<(Vec<QueuedMessage>, u64, bool), Refusal> {
    let MailboxResponse::Nonce { nonce } = server.handle(peer, MailboxRequest::Challenge, NOW)
    else {
        panic!("no nonce");
    };
    let auth = QueueAuth {
        key: k.public(),
        nonce,
        signature: k.sign_fetch(SERVER, &nonce, &QUEUE, cursor),
    };
    let request = GroupRequest::Fetch {
        queue: QUEUE,
        auth,
        cursor,
        max: 64,
    };
    match server.handle(peer, MailboxRequest::Group(request), NOW) {
        MailboxResponse::Group(GroupResponse::Messages {
            messages,
            next_cursor,
            more,
        }) => Ok((messages, next_cursor, more)),
        MailboxResponse::Refused(refusal) => Err(refusal),
        other => panic!("unexpected {other:?}"),
    }
}

fn bodies(messages: &[QueuedMessage]) -> Vec<&[u8]> {
    messages.iter().map(|m| m.message.as_slice()).collect()
}

#[test]
fn one_copy_per_message_fetched_in_order_from_a_cursor() {
    let disk = FlakyDisk::default();
    let mut s = server(&disk, fast());
    let peer = PeerId::random();
    let k0 = key(0);
    assert_eq!(
        deposit(&mut s, &peer, b"early", NOW),
        MailboxResponse::Refused(Refusal::UnknownQueue),
        "a queue exists only once its first key is registered"
    );
    assert!(matches!(
        open(&mut s, &peer, &k0, 0),
        MailboxResponse::Group(GroupResponse::Opened)
    ));
    assert!(matches!(
        open(&mut s, &peer, &k0, 0),
        MailboxResponse::Group(GroupResponse::Opened)
    ));
    assert_eq!(
        open(&mut s, &peer, &key(7), 0),
        MailboxResponse::Refused(Refusal::QueueTaken)
    );
    assert!(matches!(
        deposit(&mut s, &peer, b"one", NOW),
        MailboxResponse::Deposited { .. }
    ));
    assert!(matches!(
        deposit(&mut s, &PeerId::random(), b"one", NOW),
        MailboxResponse::Duplicate { .. }
    ));
    assert!(matches!(
        deposit(&mut s, &peer, b"two", NOW),
        MailboxResponse::Deposited { .. }
    ));
    let stats = s.stats();
    assert_eq!((stats.group_queues, stats.group_messages), (1, 2));
    assert_eq!(stats.group_bytes, 6);

    let (messages, next, more) = fetch(&mut s, &PeerId::random(), &k0, 0).unwrap();
    assert_eq!(bodies(&messages), [b"one".as_slice(), b"two"]);
    assert_eq!(
        (messages[0].seq, messages[1].seq, next, more),
        (1, 2, 3, false)
    );
    let (messages, next, _) = fetch(&mut s, &peer, &k0, 2).unwrap();
    assert_eq!((bodies(&messages), next), (vec![b"two".as_slice()], 3));
    let (messages, next, _) = fetch(&mut s, &peer, &k0, 3).unwrap();
    assert_eq!((messages.len(), next), (0, 3));

    // The queue is on disk: a reopened server serves the same.
    drop(s);
    let mut s = server(&disk, fast());
    assert_eq!(s.stats().group_messages, 2);
    assert_eq!(fetch(&mut s, &peer, &k0, 0).unwrap().0.len(), 2);
}

#[test]
fn fetches_with_a_bad_signature_an_unknown_key_or_a_foreign_nonce_are_refused() {
    let mut s = server(&FlakyDisk::default(), fast());
    let peer = PeerId::random();
    let k0 = key(0);
    open(&mut s, &peer, &k0, 0);
    deposit(&mut s, &peer, b"secret", NOW);
    assert_eq!(
        fetch(&mut s, &peer, &key(9), 0).unwrap_err(),
        Refusal::NotMember
    );

    let MailboxResponse::Nonce { nonce } = s.handle(&peer, MailboxRequest::Challenge, NOW) else {
        panic!("no nonce");
    };
    let fetch_with = |s: &mut MailboxServer, from: &PeerId, signature: [u8; 64], cursor| {
        let auth = QueueAuth {
            key: k0.public(),
            nonce,
            signature,
        };
        let request = GroupRequest::Fetch {
            queue: QUEUE,
            auth,
            cursor,
            max: 64,
        };
        s.handle(from, MailboxRequest::Group(request), NOW)
    };
    // Signed for cursor 5, asking from 0.
    let signature = k0.sign_fetch(SERVER, &nonce, &QUEUE, 5);
    assert_eq!(
        fetch_with(&mut s, &peer, signature, 0),
        MailboxResponse::Refused(Refusal::NotOwner)
    );
    // Signed for another server.
    let signature = k0.sign_fetch(b"elsewhere", &nonce, &QUEUE, 0);
    assert_eq!(
        fetch_with(&mut s, &peer, signature, 0),
        MailboxResponse::Refused(Refusal::NotOwner)
    );
    // A nonce issued to another peer.
    let signature = k0.sign_fetch(SERVER, &nonce, &QUEUE, 0);
    assert_eq!(
        fetch_with(&mut s, &PeerId::random(), signature, 0),
        MailboxResponse::Refused(Refusal::BadChallenge)
    );
    assert!(matches!(
        fetch_with(&mut s, &peer, signature, 0),
        MailboxResponse::Group(GroupResponse::Messages { .. })
    ));
    assert_eq!(s.counters().refusals.get("not_owner"), Some(&2));
}

#[test]
fn a_removal_commit_limits_the_old_keys_to_what_came_before_it() {
    let mut s = server(&FlakyDisk::default(), fast());
    let peer = PeerId::random();
    let (k0, k1, k2) = (key(0), key(1), key(2));
    open(&mut s, &peer, &k0, 0);
    deposit(&mut s, &peer, b"m1", NOW);
    // A rotation must be signed by a key of the epoch before.
    assert_eq!(
        commit(&mut s, &peer, b"bad", &key(8), 1, false),
        MailboxResponse::Refused(Refusal::NotMember)
    );
    assert_eq!(
        commit(&mut s, &peer, b"skip", &k0, 2, false),
        MailboxResponse::Refused(Refusal::NotMember)
    );
    assert!(matches!(
        commit(&mut s, &peer, b"c1", &k0, 1, false),
        MailboxResponse::Deposited { .. }
    ));
    // Epoch 1 removes someone: keys of epochs 0 and 1 (other than the new one) read up to that commit.
    assert!(matches!(
        commit(&mut s, &peer, b"c2-remove", &k1, 2, true),
        MailboxResponse::Deposited { .. }
    ));
    deposit(&mut s, &peer, b"after", NOW);

    let (all, _, _) = fetch(&mut s, &peer, &k2, 0).unwrap();
    assert_eq!(
        bodies(&all),
        [b"m1".as_slice(), b"c1", b"c2-remove", b"after"]
    );
    // The removed member, with the key of epoch 1: everything up to its removal, nothing after.
    let (seen, next, more) = fetch(&mut s, &peer, &k1, 0).unwrap();
    assert_eq!(bodies(&seen), [b"m1".as_slice(), b"c1", b"c2-remove"]);
    assert!(!more);
    assert_eq!(
        fetch(&mut s, &peer, &k1, next).unwrap_err(),
        Refusal::NotMember
    );
    assert_eq!(
        fetch(&mut s, &peer, &k0, 4).unwrap_err(),
        Refusal::NotMember
    );
    // Nor can it register a key of its own for the new epoch.
    assert_eq!(
        commit(&mut s, &peer, b"sneak", &k1, 2, false),
        MailboxResponse::Refused(Refusal::NotMember)
    );
}

#[test]
fn a_full_queue_drops_its_oldest_messages() {
    let mut s = server(&FlakyDisk::default(), fast());
    let peer = PeerId::random();
    let k0 = key(0);
    open(&mut s, &peer, &k0, 0);
    let total = MAX_GROUP_QUEUE + 3;
    for i in 0..total {
        assert!(matches!(
            deposit(&mut s, &peer, &i.to_be_bytes(), NOW),
            MailboxResponse::Deposited { .. }
        ));
    }
    assert_eq!(s.stats().group_messages, MAX_GROUP_QUEUE);
    let (messages, _, more) = fetch(&mut s, &peer, &k0, 0).unwrap();
    assert!(more);
    assert_eq!(
        messages[0].message,
        3u64.to_be_bytes(),
        "the three oldest went"
    );
    assert_eq!(messages[0].seq, 4);

    // The byte bound: messages of the largest size, one more than fits.
    let mut s = server(&FlakyDisk::default(), fast());
    open(&mut s, &peer, &k0, 0);
    let big = tern_protocol::group_wire::MAX_GROUP_MESSAGE_LEN;
    let fit = MAX_GROUP_QUEUE_BYTES / u64::try_from(big).unwrap();
    for i in 0..=fit {
        let mut message = vec![0u8; big];
        message[..8].copy_from_slice(&i.to_be_bytes());
        assert!(matches!(
            deposit(&mut s, &peer, &message, NOW),
            MailboxResponse::Deposited { .. }
        ));
    }
    assert_eq!(s.stats().group_messages, fit);
    assert!(s.stats().group_bytes <= MAX_GROUP_QUEUE_BYTES);
    assert_eq!(
        deposit(&mut s, &peer, &vec![0u8; big + 1], NOW),
        MailboxResponse::Refused(Refusal::TooLarge)
    );
}

#[test]
fn group_mail_shares_the_server_total_and_ages_out() {
    let config = MailboxConfig {
        max_total_bytes: 100,
        ..fast()
    };
    let mut s = server(&FlakyDisk::default(), config);
    let peer = PeerId::random();
    let k0 = key(0);
    open(&mut s, &peer, &k0, 0);
    assert!(matches!(
        deposit(&mut s, &peer, &[1; 60], NOW),
        MailboxResponse::Deposited { .. }
    ));
    assert_eq!(
        deposit(&mut s, &peer, &[2; 60], NOW),
        MailboxResponse::Refused(Refusal::ServerFull)
    );
    assert!(matches!(
        deposit(&mut s, &peer, &[3; 30], NOW + 10),
        MailboxResponse::Deposited { .. }
    ));
    s.purge_expired(NOW + GROUP_RETENTION_S).unwrap();
    assert_eq!(s.stats().group_messages, 1);
    assert_eq!(fetch(&mut s, &peer, &k0, 0).unwrap().0[0].message, [3; 30]);
    // Nobody fetches for the idle time: the queue goes with what it holds.
    let idle = NOW + s.config().claim_ttl_s;
    s.purge_expired(idle).unwrap();
    assert_eq!(s.stats().group_queues, 0);
    assert_eq!(
        deposit(&mut s, &peer, b"late", idle),
        MailboxResponse::Refused(Refusal::UnknownQueue)
    );
}

#[test]
fn deposits_and_opens_are_rate_limited() {
    let config = MailboxConfig {
        deposits_per_minute: 2,
        ..MailboxConfig::default()
    };
    let mut s = server(&FlakyDisk::default(), config);
    let peer = PeerId::random();
    open(&mut s, &peer, &key(0), 0);
    deposit(&mut s, &peer, b"a", NOW);
    assert_eq!(
        deposit(&mut s, &peer, b"b", NOW),
        MailboxResponse::Refused(Refusal::RateLimited)
    );
}
