//! Groups (issue 13, docs/protocol.md §18): several members' group state machines in one process, the bytes
//! passed between them by hand. Create, add, talk, remove (the removed member fails to read what follows),
//! rename and promote, restart through the real profile store, concurrent commits converging, and hostile
//! input refused with typed errors; then a property test of random changes, sends and restarts.

use std::collections::HashMap;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use tern_node::group::{
    CommitOut, Group, GroupError, KeyPackageIn, MAX_GROUP_MESSAGE_LEN, PendingKeyPackage,
    Processed, RestoredGroup, new_key_package,
};
use tern_node::store::{KdfParams, Store};
use tern_protocol::{Body, Content, Identity, IdentityKey, MessageId};

struct Member {
    name: &'static str,
    identity: Identity,
    group: Option<Group>,
    pending: Vec<PendingKeyPackage>,
}

impl Member {
    fn new(name: &'static str, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        Self {
            name,
            identity: Identity::generate(&mut rng, 1_700_000_000_000),
            group: None,
            pending: Vec::new(),
        }
    }

    fn key(&self) -> IdentityKey {
        self.identity.key()
    }

    fn g(&mut self) -> &mut Group {
        self.group.as_mut().expect("in the group")
    }

    /// A fresh KeyPackage, checked as an admin receiving it over the 1:1 session would.
    fn key_package(&mut self) -> KeyPackageIn {
        let (bytes, pending) = new_key_package(&self.identity).unwrap();
        self.pending.push(pending);
        KeyPackageIn::parse(&bytes, Some(&self.key())).unwrap()
    }

    /// Joins from a Welcome; returns who sent it.
    fn join(&mut self, welcome: &[u8]) -> IdentityKey {
        let refs = Group::welcome_key_packages(welcome).unwrap();
        let index = self
            .pending
            .iter()
            .position(|p| refs.iter().any(|r| r.as_slice() == p.hash_ref()))
            .expect("a pending key package");
        let pending = self.pending.remove(index);
        let (group, adder) = Group::join(welcome, &pending, &self.key()).unwrap();
        self.group = Some(group);
        adder
    }

    /// The node's two rows, written and read back.
    fn restart(&mut self) {
        let (state, history) = (self.g().encode_state(), self.g().encode_history());
        self.group = Some(Group::decode_with(&state, Some(&history)).unwrap());
    }
}

fn text(seed: u64, body: &str) -> Content {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Content {
        id: MessageId::new_v7(1_700_000_000_000 + seed, &mut rng),
        sent_at_ms: 1_700_000_000_000,
        body: Body::Text(body.into()),
    }
}

/// Hands a commit to every other member that is in the group; returns their outcomes by name.
fn deliver_commit(out: &CommitOut, to: &mut [&mut Member]) {
    for m in to.iter_mut() {
        match m.g().process(&out.commit).unwrap() {
            Processed::Commit(summary) => assert_eq!(summary, out.summary, "{}", m.name),
            other => panic!("{}: {other:?}", m.name),
        }
    }
}

fn read(m: &mut Member, bytes: &[u8]) -> Result<(IdentityKey, String), GroupError> {
    match m.g().process(bytes)? {
        Processed::Message { sender, content } => match content.body {
            Body::Text(t) => Ok((sender, t)),
            other => panic!("{other:?}"),
        },
        other => panic!("{}: {other:?}", m.name),
    }
}

/// Alice creates "Hikers" and adds Bob, Carol and Dave in one commit.
fn four() -> (Member, Member, Member, Member) {
    let mut a = Member::new("alice", 1);
    let mut b = Member::new("bob", 2);
    let mut c = Member::new("carol", 3);
    let mut d = Member::new("dave", 4);
    a.group = Some(Group::create(&a.identity, "Hikers").unwrap());
    let kps = vec![b.key_package(), c.key_package(), d.key_package()];
    let out = a.g().add(kps).unwrap();
    assert_eq!(out.summary.added, vec![b.key(), c.key(), d.key()]);
    let welcome = out.welcome.expect("a welcome");
    for m in [&mut b, &mut c, &mut d] {
        assert_eq!(m.join(&welcome), a.key());
        assert_eq!(m.g().epoch(), 1);
        assert_eq!(m.g().info().unwrap().name, "Hikers");
    }
    (a, b, c, d)
}

#[test]
fn create_add_talk_remove_and_the_removed_member_cannot_read_on() {
    let (mut a, mut b, mut c, mut d) = four();
    // Everyone talks; everyone else reads, with the right sender.
    for (i, sender) in [0usize, 1, 2, 3].into_iter().enumerate() {
        let mut all = [&mut a, &mut b, &mut c, &mut d];
        let from = all[sender].key();
        let bytes = all[sender].g().send(&text(i as u64, "hello")).unwrap();
        for (j, m) in all.iter_mut().enumerate() {
            if j != sender {
                assert_eq!(read(m, &bytes).unwrap(), (from, "hello".to_owned()));
            }
        }
    }
    // Dave is removed. A copy of his state from before he saw the commit stands for a Dave who missed it.
    let dave_before = Group::decode(&d.g().encode()).unwrap();
    let out = a.g().remove(&[d.key()]).unwrap();
    deliver_commit(&out, &mut [&mut b, &mut c]);
    match d.g().process(&out.commit).unwrap() {
        Processed::Commit(summary) => assert!(summary.removed_self),
        other => panic!("{other:?}"),
    }
    assert!(!d.g().is_active());
    assert_eq!(a.g().members().unwrap(), vec![a.key(), b.key(), c.key()]);
    let secret = a.g().send(&text(10, "after dave left")).unwrap();
    assert_eq!(read(&mut b, &secret).unwrap().1, "after dave left");
    assert_eq!(read(&mut c, &secret).unwrap().1, "after dave left");
    // Dave tries, with the state after his removal and with the one from before it.
    assert_eq!(read(&mut d, &secret), Err(GroupError::NotMember));
    d.group = Some(dave_before);
    assert!(matches!(
        read(&mut d, &secret),
        Err(GroupError::FutureEpoch { got: 2, current: 1 })
    ));
    assert!(
        d.g().send(&text(11, "still here?")).is_ok(),
        "his old epoch still encrypts"
    );
}

#[test]
fn rename_and_promote_are_seen_by_all_and_only_admins_may() {
    let (mut a, mut b, mut c, mut d) = four();
    assert!(matches!(c.g().rename("Mine"), Err(GroupError::NotAdmin)));
    let out = a.g().rename("Hikers 2026").unwrap();
    assert!(out.summary.info_changed);
    deliver_commit(&out, &mut [&mut b, &mut c, &mut d]);
    let out = a.g().promote(&b.key()).unwrap();
    deliver_commit(&out, &mut [&mut b, &mut c, &mut d]);
    let creator = a.key();
    for m in [&mut a, &mut b, &mut c, &mut d] {
        let info = m.g().info().unwrap();
        assert_eq!(info.name, "Hikers 2026", "{}", m.name);
        assert_eq!(info.creator, creator);
        assert_eq!(info.admins.len(), 1);
    }
    // Bob, now an admin, adds Erin; everyone takes it.
    let mut e = Member::new("erin", 5);
    let kp = e.key_package();
    let out = b.g().add(vec![kp]).unwrap();
    deliver_commit(&out, &mut [&mut a, &mut c, &mut d]);
    assert_eq!(
        e.join(out.welcome.as_deref().unwrap()),
        b.key(),
        "bob added erin"
    );
    let hi = e.g().send(&text(1, "hi all")).unwrap();
    for m in [&mut a, &mut b, &mut c, &mut d] {
        assert_eq!(read(m, &hi).unwrap(), (e.key(), "hi all".to_owned()));
    }
    // Carol leaves: her proposal, then an admin's commit.
    let proposal = c.g().leave().unwrap();
    for m in [&mut a, &mut b, &mut d, &mut e] {
        assert!(matches!(
            m.g().process(&proposal).unwrap(),
            Processed::Proposal { .. }
        ));
    }
    let out = a.g().commit_pending().unwrap().expect("the leave");
    assert_eq!(out.summary.removed, vec![c.key()]);
    deliver_commit(&out, &mut [&mut b, &mut d, &mut e]);
    assert!(matches!(c.g().process(&out.commit).unwrap(), Processed::Commit(s) if s.removed_self));
}

/// A member whose copy was restored from a backup is added back (docs/protocol.md §20.5): one commit
/// removes its old leaf and adds its new one, every other member's check passes it, the member keeps its
/// admin role, the new copy reads what follows and the old one cannot.
#[test]
fn a_member_added_back_keeps_its_role_and_only_the_new_copy_reads_on() {
    let (mut a, mut b, mut c, _d) = four();
    let out = a.g().promote(&b.key()).unwrap();
    deliver_commit(&out, &mut [&mut b, &mut c]);
    let old_bob = b.g().encode();

    // Bob's restored copy: the same identity, no group state, a fresh KeyPackage.
    b.group = None;
    let kp = b.key_package();
    assert!(
        matches!(
            a.g().add(vec![b.key_package()]),
            Err(GroupError::AlreadyMember)
        ),
        "a plain add of a member is still refused"
    );
    let out = a.g().readd(kp).unwrap();
    assert_eq!(
        (out.summary.added.clone(), out.summary.removed.clone()),
        (vec![b.key()], vec![b.key()])
    );
    deliver_commit(&out, &mut [&mut c]);
    assert_eq!(b.join(out.welcome.as_ref().expect("a welcome")), a.key());
    let info = c.g().info().unwrap();
    assert!(info.is_admin(&b.key()), "Bob is still an admin");
    assert_eq!(c.g().members().unwrap().len(), 4);

    let mut old = Group::decode(&old_bob).unwrap();
    match old.process(&out.commit).unwrap() {
        Processed::Commit(summary) => assert!(summary.removed_self),
        other => panic!("{other:?}"),
    }
    let sent = a.g().send(&text(40, "after the rejoin")).unwrap();
    assert_eq!(
        read(&mut b, &sent).unwrap(),
        (a.key(), "after the rejoin".into())
    );
    assert_eq!(read(&mut c, &sent).unwrap().1, "after the rejoin");
    assert!(
        old.process(&sent).is_err(),
        "the replaced copy reads nothing more"
    );
    let from_b = b.g().send(&text(41, "hello again")).unwrap();
    assert_eq!(
        read(&mut c, &from_b).unwrap(),
        (b.key(), "hello again".into())
    );

    assert!(
        matches!(c.g().readd(b.key_package()), Err(GroupError::NotAdmin)),
        "only an admin adds a member back"
    );
}

#[test]
fn a_restart_through_the_profile_store_keeps_the_group() {
    let (mut a, mut b, _c, _d) = four();
    let dir = tempfile::tempdir().unwrap();
    let password = "pw".into();
    let id = b.g().id().to_vec();
    {
        let mut store =
            Store::create(dir.path(), &password, KdfParams::INSECURE_FOR_TESTS).unwrap();
        store.put_group(&id, &b.g().encode()).unwrap();
        // The state is sealed: the group id and the name appear nowhere in the file.
    }
    let file = std::fs::read(dir.path().join(tern_node::store::STORE_FILE)).unwrap();
    assert!(!file.windows(id.len()).any(|w| w == id));
    assert!(!file.windows(6).any(|w| w == b"Hikers"));
    let store = Store::open(dir.path(), &password).unwrap();
    let state = store.group(&id).unwrap().expect("stored");
    assert_eq!(store.groups().unwrap().len(), 1);
    b.group = Some(Group::decode(&state).unwrap());
    // Bob reads and sends as before.
    let m = a.g().send(&text(1, "still there?")).unwrap();
    assert_eq!(read(&mut b, &m).unwrap().1, "still there?");
    let reply = b.g().send(&text(2, "yes")).unwrap();
    assert_eq!(read(&mut a, &reply).unwrap().1, "yes");
    // A KeyPackage's private half round-trips through the store too.
    let (_bytes, pending) = new_key_package(&b.identity).unwrap();
    let mut store = store;
    store
        .put_key_package(pending.hash_ref(), &pending.encode())
        .unwrap();
    let back = store.take_key_package(pending.hash_ref()).unwrap().unwrap();
    assert_eq!(
        PendingKeyPackage::decode(&back).unwrap().hash_ref(),
        pending.hash_ref()
    );
    assert!(
        store
            .take_key_package(pending.hash_ref())
            .unwrap()
            .is_none()
    );

    // A password change re-keys every row (docs/protocol.md §13.1): the real group state, a group
    // restored from a backup (§18.8) and a KeyPackage's private half come through whole, under their
    // group id and hash ref.
    let restored = RestoredGroup {
        me: b.key(),
        id: b"another group".to_vec(),
        member: true,
        info: b.g().info().unwrap(),
        members: b.g().members().unwrap(),
    };
    store.put_group(&restored.id, &restored.encode()).unwrap();
    store
        .put_key_package(pending.hash_ref(), &pending.encode())
        .unwrap();
    store.put_group(&id, &b.g().encode_state()).unwrap();
    let history = b.g().encode_history();
    store
        .transaction(|batch| batch.put_group_history(&id, &history))
        .unwrap();
    let new_password = "a new one".into();
    store.rekey(&password, &new_password, &[]).unwrap();
    drop(store);
    let mut store = Store::open(dir.path(), &new_password).unwrap();
    assert_eq!(store.groups().unwrap().len(), 2);
    let state = store.group(&id).unwrap().expect("the group, re-keyed");
    let carried = store
        .group_history(&id)
        .unwrap()
        .expect("the group's records, re-keyed");
    assert_eq!(*carried, *history);
    b.group = Some(Group::decode_with(&state, Some(&carried)).unwrap());
    let m = a.g().send(&text(3, "after the re-key")).unwrap();
    assert_eq!(read(&mut b, &m).unwrap().1, "after the re-key");
    let row = store
        .group(&restored.id)
        .unwrap()
        .expect("the restored row");
    assert_eq!(RestoredGroup::decode(&row).unwrap(), restored);
    let back = store.take_key_package(pending.hash_ref()).unwrap();
    assert!(
        back.is_some(),
        "the KeyPackage, re-keyed under its hash ref"
    );
}

#[test]
fn the_rollback_records_live_in_a_row_of_their_own_rewritten_only_when_they_change() {
    let (mut a, mut b, mut c, d) = four();
    // Bob joined by Welcome: no records yet. A commit gives him one.
    let out = a.g().remove(&[d.key()]).unwrap();
    deliver_commit(&out, &mut [&mut b, &mut c]);
    assert!(b.g().history_unsaved(), "never written");
    let whole = b.g().encode();
    let state = b.g().encode_state();
    let history = b.g().encode_history();
    let id = b.g().id().to_vec();
    // The two rows hold what the one version 1 value held, each with its own header, and the history
    // row (version 33) a kind byte for its one commit.
    assert_eq!(
        state.len() + history.len() - (1 + 32 + 1 + id.len()) - 1,
        whole.len()
    );
    assert!(
        state.len() * 3 / 2 < whole.len(),
        "a record is a whole copy of the storage: {} of {}",
        state.len(),
        whole.len()
    );
    b.g().history_written();
    assert!(!b.g().history_unsaved());
    // A text changes the state, not the records.
    let m = a.g().send(&text(20, "a text")).unwrap();
    assert_eq!(read(&mut b, &m).unwrap().1, "a text");
    assert!(!b.g().history_unsaved());
    assert_ne!(b.g().encode_state(), state);
    assert_eq!(b.g().encode_history(), history);

    // Read back from the two rows: the records came along (the commit is known), nothing is unsaved.
    let state = b.g().encode_state();
    b.group = Some(Group::decode_with(&state, Some(&history)).unwrap());
    assert!(!b.g().history_unsaved());
    assert_eq!(b.g().process(&out.commit).err(), Some(GroupError::Replayed));
    let m = a.g().send(&text(21, "after the restart")).unwrap();
    assert_eq!(read(&mut b, &m).unwrap().1, "after the restart");
    // Without its history row the state reads with no records: the commit is then older than any.
    let bare = Group::decode_with(&state, None).unwrap();
    assert!(!bare.history_unsaved());
    // A version 1 value keeps its records and counts them unsaved, so the next write moves them.
    let from_whole = Group::decode(&whole).unwrap();
    assert!(from_whole.history_unsaved());
    assert_eq!(from_whole.encode_history(), history);
    // Another member's history row is refused.
    let carols = c.g().encode_history();
    assert_eq!(
        Group::decode_with(&state, Some(&carols)).err(),
        Some(GroupError::Corrupt("group history of another group"))
    );
    assert!(Group::decode_with(&state, Some(&history[..history.len() - 1])).is_err());

    // A commit changes the records.
    let out = a
        .g()
        .add(vec![Member::new("erin", 5).key_package()])
        .unwrap();
    deliver_commit(&out, &mut [&mut b]);
    assert!(b.g().history_unsaved());
}

/// Reads every message in `inbox` at `m`, counting reads per message id.
fn read_all(m: &mut Member, inbox: &[Vec<u8>], reads: &mut HashMap<(&'static str, String), u32>) {
    for bytes in inbox {
        if let Ok(Processed::Message { content, .. }) = m.g().process(bytes)
            && let Body::Text(t) = content.body
        {
            *reads.entry((m.name, t)).or_default() += 1;
        }
    }
    for p in m.g().retry_parked() {
        if let Processed::Message { content, .. } = p
            && let Body::Text(t) = content.body
        {
            *reads.entry((m.name, t)).or_default() += 1;
        }
    }
}

#[test]
fn concurrent_commits_while_partitioned_converge_after_healing() {
    let (mut a, mut b, mut c, mut d) = four();
    let out = a.g().promote(&b.key()).unwrap();
    deliver_commit(&out, &mut [&mut b, &mut c, &mut d]);
    let fork_epoch = a.g().epoch();
    // Partition {alice, carol} | {bob, dave}: both admins commit for the same epoch.
    let ca = a.g().rename("Alice's name").unwrap();
    deliver_commit(&ca, &mut [&mut c]);
    let cb = b.g().promote(&d.key()).unwrap();
    deliver_commit(&cb, &mut [&mut d]);
    // Each side talks on its own branch.
    let m_c = c.g().send(&text(1, "from carol")).unwrap();
    let m_d = d.g().send(&text(2, "from dave")).unwrap();
    let mut reads = HashMap::new();
    read_all(&mut a, std::slice::from_ref(&m_c), &mut reads);
    read_all(&mut b, std::slice::from_ref(&m_d), &mut reads);
    // Heal: each side receives the other's commit.
    let mut resends = Vec::new();
    let mut lost = Vec::new();
    for (m, commit) in [(&mut a, &cb), (&mut c, &cb), (&mut b, &ca), (&mut d, &ca)] {
        match m.g().process(&commit.commit).unwrap() {
            Processed::LostRace => {}
            Processed::RolledBack {
                resend,
                own_commit_lost,
                ..
            } => {
                resends.extend(resend);
                if own_commit_lost {
                    lost.push(m.name);
                }
            }
            other => panic!("{}: {other:?}", m.name),
        }
    }
    assert_eq!(lost.len(), 1, "exactly one admin's commit lost");
    // Same epoch, membership and info everywhere.
    let reference = (
        a.g().epoch(),
        a.g().members().unwrap(),
        a.g().info().unwrap(),
    );
    assert_eq!(reference.0, fork_epoch + 1);
    for m in [&mut b, &mut c, &mut d] {
        assert_eq!(
            (
                m.g().epoch(),
                m.g().members().unwrap(),
                m.g().info().unwrap()
            ),
            reference,
            "{}",
            m.name
        );
    }
    // The original messages, and the re-sends of those from the losing branch, reach everyone exactly once.
    let mut inbox = vec![m_c, m_d];
    inbox.extend(resends);
    for m in [&mut a, &mut b, &mut c, &mut d] {
        read_all(m, &inbox, &mut reads);
    }
    for reader in ["alice", "bob", "dave"] {
        assert_eq!(
            reads.get(&(reader, "from carol".to_owned())),
            Some(&1),
            "{reader}"
        );
    }
    for reader in ["alice", "bob", "carol"] {
        assert_eq!(
            reads.get(&(reader, "from dave".to_owned())),
            Some(&1),
            "{reader}"
        );
    }
    // And they can read each other afterwards.
    let after = c.g().send(&text(3, "converged")).unwrap();
    for m in [&mut a, &mut b, &mut d] {
        assert_eq!(read(m, &after).unwrap().1, "converged");
    }
    // The losing admin re-issues its change in the new epoch; everyone takes it.
    let reissue = if lost == ["alice"] {
        a.g().rename("Alice's name").unwrap()
    } else {
        b.g().promote(&d.key()).unwrap()
    };
    let (committer, others): (&str, Vec<&mut Member>) = if lost == ["alice"] {
        ("alice", vec![&mut b, &mut c, &mut d])
    } else {
        ("bob", vec![&mut a, &mut c, &mut d])
    };
    let mut others = others;
    deliver_commit(&reissue, &mut others);
    assert!(!committer.is_empty());
    let info = a.g().info().unwrap();
    assert_eq!(info.name, "Alice's name");
    assert!(info.admins.contains(&d.key()));
}

#[test]
fn hostile_input_is_refused_with_typed_errors() {
    let (mut a, mut b, mut c, mut d) = four();
    let out = a.g().promote(&b.key()).unwrap();
    deliver_commit(&out, &mut [&mut b, &mut c, &mut d]);
    // A replayed commit.
    assert_eq!(
        c.g().process(&out.commit).unwrap_err(),
        GroupError::Replayed
    );
    // A commit from a removed admin: Bob, removed, commits from the state he had before his removal.
    let mut bob_before = Group::decode(&b.g().encode()).unwrap();
    let removal = a.g().remove(&[b.key()]).unwrap();
    deliver_commit(&removal, &mut [&mut c, &mut d]);
    let late = bob_before.rename("Bob's group").unwrap();
    assert_eq!(
        c.g().process(&late.commit).unwrap_err(),
        GroupError::CommitterRemoved
    );
    assert_eq!(
        a.g().process(&late.commit).unwrap_err(),
        GroupError::CommitterRemoved
    );
    assert_eq!(c.g().info().unwrap().name, "Hikers");
    // ...and Bob, who saw his removal, cannot commit at all.
    b.g().process(&removal.commit).unwrap();
    assert!(b.g().rename("x").is_err());
    // A non-member's message: Mallory runs a group of her own and aims its bytes at this group's id.
    let mut mallory = Member::new("mallory", 66);
    mallory.group = Some(Group::create(&mallory.identity, "fake").unwrap());
    let mut forged = mallory.g().send(&text(1, "let me in")).unwrap();
    let (theirs, ours) = (mallory.g().id().to_vec(), c.g().id().to_vec());
    let at = forged
        .windows(theirs.len())
        .position(|w| w == theirs)
        .unwrap();
    forged[at..at + ours.len()].copy_from_slice(&ours);
    let err = c.g().process(&forged).unwrap_err();
    assert!(
        matches!(err, GroupError::Undecryptable | GroupError::Mls(_)),
        "{err:?}"
    );
    // Unforged, it is simply another group's message.
    let plain = mallory.g().send(&text(2, "hello?")).unwrap();
    assert_eq!(c.g().process(&plain).unwrap_err(), GroupError::WrongGroup);
    // An oversized message, refused before parsing; and an oversized send.
    let big = vec![0u8; MAX_GROUP_MESSAGE_LEN + 1];
    assert!(matches!(
        c.g().process(&big),
        Err(GroupError::TooLarge { .. })
    ));
    let huge = Content {
        body: Body::Text("x".repeat(40_000)),
        ..text(3, "")
    };
    assert!(c.g().send(&huge).is_err());
    // Garbage.
    assert!(matches!(
        c.g().process(&[1, 2, 3]),
        Err(GroupError::Malformed(_))
    ));
    // A KeyPackage sent by one identity naming another is refused.
    let (bytes, _) = new_key_package(&d.identity).unwrap();
    assert!(matches!(
        KeyPackageIn::parse(&bytes, Some(&c.key())),
        Err(GroupError::Credential(_))
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize),
    Remove(usize),
    Send(usize),
    Restart(usize),
    /// A member's update of its own path (§18.3).
    Update(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..5).prop_map(Op::Add),
        (1usize..5).prop_map(Op::Remove),
        (0usize..5).prop_map(Op::Send),
        (0usize..5).prop_map(Op::Restart),
        (0usize..5).prop_map(Op::Update),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random adds, removes, sends, restarts and members' updates: every member at the time of a send reads it exactly once,
    /// no one else reads it (a removed member's attempt fails with a typed error).
    #[test]
    fn members_read_each_message_exactly_once_and_removed_ones_never(ops in prop::collection::vec(op(), 1..14)) {
        let names = ["p0", "p1", "p2", "p3", "p4"];
        let mut people: Vec<Member> =
            names.iter().enumerate().map(|(i, n)| Member::new(n, 100 + i as u64)).collect();
        people[0].group = Some(Group::create(&people[0].identity, "prop").unwrap());
        let mut inside = [true, false, false, false, false];
        let mut seq = 0u64;
        for op in ops {
            match op {
                Op::Add(i) if !inside[i] => {
                    let kp = people[i].key_package();
                    let out = people[0].g().add(vec![kp]).unwrap();
                    for j in 1..5 {
                        if inside[j] {
                            prop_assert!(matches!(people[j].g().process(&out.commit).unwrap(), Processed::Commit(_)));
                        }
                    }
                    let adder = people[i].join(out.welcome.as_deref().unwrap());
                    prop_assert_eq!(adder, people[0].key());
                    inside[i] = true;
                }
                Op::Remove(i) if inside[i] => {
                    let key = people[i].key();
                    let out = people[0].g().remove(&[key]).unwrap();
                    for j in 1..5 {
                        if inside[j] {
                            people[j].g().process(&out.commit).unwrap();
                        }
                    }
                    inside[i] = false;
                }
                Op::Send(i) if inside[i] => {
                    seq += 1;
                    let body = format!("m{seq}");
                    let bytes = people[i].g().send(&text(seq, &body)).unwrap();
                    for j in 0..5 {
                        if j == i || people[j].group.is_none() {
                            continue;
                        }
                        let got = people[j].g().process(&bytes);
                        if inside[j] {
                            let is_read = matches!(&got, Ok(Processed::Message { content, .. }) if content.body == Body::Text(body.clone()));
                            prop_assert!(is_read, "{} should read {body}: {got:?}", names[j]);
                            // A second copy is a duplicate, never a second read.
                            let again = people[j].g().process(&bytes);
                            let dup = again.is_err() || matches!(again, Ok(Processed::Duplicate { .. }));
                            prop_assert!(dup);
                        } else {
                            prop_assert!(got.is_err(), "{} read {body} while outside", names[j]);
                        }
                    }
                }
                Op::Restart(i) if people[i].group.is_some() => people[i].restart(),
                Op::Update(i) if inside[i] => {
                    let out = people[i].g().update().unwrap();
                    prop_assert!(!people[i].g().wants_update());
                    for j in 0..5 {
                        if j != i && inside[j] {
                            let got = people[j].g().process(&out.commit).unwrap();
                            prop_assert!(matches!(got, Processed::Commit(s) if s.update), "{}", names[j]);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
