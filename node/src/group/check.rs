//! The checks every commit passes before it is merged (§18.2, §18.3), and the small readers of MLS state
//! they and the rest of the module share.

use std::collections::HashSet;

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    BasicCredential, Credential, LeafNodeIndex, MlsGroup, MlsMessageIn, MlsMessageOut,
    ProcessMessageError, ProtocolMessage, StageCommitError, StagedCommit, ValidationError,
};
use tern_protocol::IdentityKey;

use super::credential::{GroupInfo, MemberCredential};
use super::{GROUP_INFO_EXTENSION, GroupError, MAX_GROUP_MEMBERS, MAX_GROUP_MESSAGE_LEN};

/// What a commit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// The epoch the group is in after it.
    pub epoch: u64,
    pub committer: IdentityKey,
    pub added: Vec<IdentityKey>,
    pub removed: Vec<IdentityKey>,
    /// The name, the roles or the timer changed.
    pub info_changed: bool,
    /// This member was removed by it.
    pub removed_self: bool,
    /// An update: a commit with no proposal, only the committer's new leaf and path (§18.3), which any
    /// member may make.
    pub update: bool,
    /// The leaves the removed members held, in the state before the commit.
    pub removed_leaves: Vec<u32>,
}

/// The identity in a credential already verified when its leaf entered the tree.
pub(crate) fn identity_of(credential: &Credential) -> Result<IdentityKey, GroupError> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| GroupError::Credential("not a basic credential"))?;
    let bytes = basic.identity();
    let key: [u8; 32] = bytes
        .get(1..33)
        .and_then(|k| k.try_into().ok())
        .ok_or(GroupError::Credential("wrong length"))?;
    IdentityKey::from_bytes(key).map_err(|_| GroupError::Credential("identity key"))
}

pub(crate) fn info_of(mls: &MlsGroup) -> Result<GroupInfo, GroupError> {
    let ext = mls
        .extensions()
        .unknown(GROUP_INFO_EXTENSION)
        .ok_or(GroupError::Malformed("group without tern_group_info"))?;
    GroupInfo::decode(&ext.0)
}

pub(crate) fn members_of(mls: &MlsGroup) -> Result<Vec<(LeafNodeIndex, IdentityKey)>, GroupError> {
    mls.members()
        .map(|m| Ok((m.index, identity_of(&m.credential)?)))
        .collect()
}

pub(crate) fn map_process_error<E: std::fmt::Display>(err: ProcessMessageError<E>) -> GroupError {
    match err {
        ProcessMessageError::ValidationError(
            ValidationError::UnableToDecrypt(_)
            | ValidationError::WrongEpoch
            | ValidationError::NoPastEpochData,
        ) => GroupError::Undecryptable,
        ProcessMessageError::InvalidCommit(StageCommitError::MissingProposal) => {
            GroupError::MissingProposal
        }
        other => GroupError::mls(other),
    }
}

pub(crate) fn serialize(message: &MlsMessageOut) -> Result<Vec<u8>, GroupError> {
    message.tls_serialize_detached().map_err(GroupError::mls)
}

pub(crate) fn parse_protocol(bytes: &[u8]) -> Result<ProtocolMessage, GroupError> {
    if bytes.len() > MAX_GROUP_MESSAGE_LEN {
        return Err(GroupError::TooLarge {
            what: "group message",
            len: bytes.len(),
            max: MAX_GROUP_MESSAGE_LEN,
        });
    }
    let message = MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(|_| GroupError::Malformed("group message"))?;
    message
        .try_into_protocol_message()
        .map_err(|_| GroupError::Malformed("not a group message"))
}

/// Checks a staged commit against Tern's rules (§18.2, §18.3) in the state it applies to.
pub(crate) fn check_commit(
    mls: &MlsGroup,
    staged: &StagedCommit,
    committer: IdentityKey,
) -> Result<CommitSummary, GroupError> {
    let info_before = info_of(mls)?;
    let update = staged.queued_proposals().next().is_none();
    if update && staged.update_path_leaf_node().is_none() {
        return Err(GroupError::Forbidden("an empty commit without a path"));
    }
    if !update && !info_before.is_admin(&committer) {
        return Err(GroupError::NotAdmin);
    }
    if staged.update_proposals().next().is_some() {
        return Err(GroupError::Forbidden("update proposals"));
    }
    let members = members_of(mls)?;
    let mut after: HashSet<IdentityKey> = members.iter().map(|(_, id)| *id).collect();
    let mut removed = Vec::new();
    let mut removed_leaves = Vec::new();
    for remove in staged.remove_proposals() {
        let index = remove.remove_proposal().removed();
        removed_leaves.push(index.u32());
        let (_, who) = members
            .iter()
            .find(|(i, _)| *i == index)
            .ok_or(GroupError::UnknownMember)?;
        after.remove(who);
        removed.push(*who);
    }
    let mut added = Vec::new();
    for add in staged.add_proposals() {
        let member = MemberCredential::verify_leaf(add.add_proposal().key_package().leaf_node())?;
        if !after.insert(member.identity) {
            return Err(GroupError::AlreadyMember);
        }
        added.push(member.identity);
    }
    if let Some(leaf) = staged.update_path_leaf_node()
        && MemberCredential::verify_leaf(leaf)?.identity != committer
    {
        return Err(GroupError::Credential("path leaf names another identity"));
    }
    if after.len() > MAX_GROUP_MEMBERS {
        return Err(GroupError::TooManyMembers {
            max: MAX_GROUP_MEMBERS,
        });
    }
    let ext = staged
        .group_context()
        .extensions()
        .unknown(GROUP_INFO_EXTENSION)
        .ok_or(GroupError::Forbidden("tern_group_info removed"))?;
    let info_after = GroupInfo::decode(&ext.0)?;
    if info_after.creator != info_before.creator {
        return Err(GroupError::Forbidden("the creator cannot change"));
    }
    if info_after.queue != info_before.queue {
        return Err(GroupError::Forbidden("the mail queue cannot change"));
    }
    if info_after
        .admins
        .iter()
        .any(|a| !info_before.admins.contains(a) && !after.contains(a))
    {
        return Err(GroupError::Forbidden("promotion of a non-member"));
    }
    let me = identity_of(
        mls.own_leaf_node()
            .ok_or(GroupError::NotMember)?
            .credential(),
    )?;
    Ok(CommitSummary {
        epoch: staged.epoch().as_u64(),
        committer,
        added,
        info_changed: info_after != info_before,
        removed_self: staged.self_removed() || removed.contains(&me),
        removed,
        update,
        removed_leaves,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use tern_protocol::Identity;

    use super::*;
    use crate::group::{Group, KeyPackageIn, Processed, new_key_package};

    /// Alice's group with Bob added as a plain member: (alice's state, bob's state).
    pub(in crate::group) fn alice_and_bob() -> (Group, Group) {
        let alice = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1), 0);
        let bob = Identity::generate(&mut ChaCha20Rng::seed_from_u64(2), 0);
        let mut group = Group::create(&alice, "Hikers").unwrap();
        let (bytes, pending) = new_key_package(&bob).unwrap();
        let kp = KeyPackageIn::parse(&bytes, Some(&bob.key())).unwrap();
        let welcome = group.add(vec![kp]).unwrap().welcome.unwrap();
        let (bobs, _) = Group::join(&welcome, &pending, &bob.key()).unwrap();
        (group, bobs)
    }

    /// Alice's group with `others` plain members added in one commit: every state, Alice's first.
    fn group_of(others: u64) -> Vec<Group> {
        let alice = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1), 0);
        let mut group = Group::create(&alice, "Hikers").unwrap();
        let (mut kps, mut pendings) = (Vec::new(), Vec::new());
        for seed in 0..others {
            let who = Identity::generate(&mut ChaCha20Rng::seed_from_u64(10 + seed), 0);
            let (bytes, pending) = new_key_package(&who).unwrap();
            kps.push(KeyPackageIn::parse(&bytes, Some(&who.key())).unwrap());
            pendings.push((pending, who.key()));
        }
        let welcome = group.add(kps).unwrap().welcome.unwrap();
        let mut all = vec![group];
        for (pending, key) in pendings {
            all.push(Group::join(&welcome, &pending, &key).unwrap().0);
        }
        all
    }

    /// `commit` processed by every active state but the committer's (`from`), each a merged commit.
    fn deliver(all: &mut [Group], from: usize, commit: &[u8]) {
        for (i, g) in all.iter_mut().enumerate() {
            if i != from && g.is_active() {
                assert!(matches!(g.process(commit).unwrap(), Processed::Commit(_)));
            }
        }
    }

    #[test]
    fn a_plain_member_commits_an_update_of_its_path_once_and_everyone_takes_it() {
        let mut all = group_of(3);
        // An add needs no path: the creator's leaf, like the joiners', is still its KeyPackage's.
        assert!(all.iter().all(Group::wants_update));
        let out = all[1].update().unwrap();
        assert!(
            out.summary.update && out.summary.added.is_empty() && out.summary.removed.is_empty()
        );
        assert!(!all[1].wants_update());
        for g in all
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, g)| g)
        {
            let Processed::Commit(summary) = g.process(&out.commit).unwrap() else {
                panic!("not a commit")
            };
            assert!(summary.update && summary.committer == all_key(1));
        }
        // Everyone reads what the updater writes next, in the new epoch.
        let text = tern_protocol::Content {
            id: tern_protocol::MessageId::new_v7(1, &mut ChaCha20Rng::seed_from_u64(3)),
            sent_at_ms: 1,
            body: tern_protocol::Body::Text("after my update".into()),
        };
        let message = all[1].send(&text).unwrap();
        assert!(matches!(
            all[2].process(&message).unwrap(),
            Processed::Message { .. }
        ));
        assert_eq!(all[0].epoch(), all[3].epoch());
    }

    fn all_key(i: u64) -> IdentityKey {
        let seed = if i == 0 { 1 } else { 9 + i };
        Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
    }

    #[test]
    fn a_plain_members_update_carries_no_proposal_not_even_a_held_leave() {
        let mut all = group_of(3);
        let leave = all[3].leave().unwrap();
        for g in &mut all[..3] {
            assert!(matches!(
                g.process(&leave).unwrap(),
                Processed::Proposal { .. }
            ));
        }
        let out = all[1].update().unwrap();
        assert!(
            out.summary.removed.is_empty(),
            "the leave is an admin's to commit"
        );
        deliver(&mut all[..3], 1, &out.commit);
        assert_eq!(all[0].members().unwrap().len(), 4);
        // A plain member's commit with a proposal is still refused where it arrives.
        let before = all[1].provider.snapshot();
        let bob = all_key(1);
        let carol = all_key(2);
        let leaf = all[1].leaf_of(&carol).unwrap();
        let (forged, _) = all[1].build_commit(Vec::new(), vec![leaf], None).unwrap();
        all[1].restore(&before).unwrap();
        assert_eq!(all[0].process(&forged).unwrap_err(), GroupError::NotAdmin);
        assert!(all[0].members().unwrap().contains(&bob));
    }

    /// [`group_of`]`(3)` after everyone's update and Alice's removal of Carol (leaf 2), delivered to all.
    fn full_four_without_carol() -> Vec<Group> {
        let mut all = group_of(3);
        for i in 0..4 {
            let out = all[i].update().unwrap();
            deliver(&mut all, i, &out.commit);
        }
        assert!(all.iter().all(|g| !g.wants_update()));
        let out = all[0].remove(&[all_key(2)]).unwrap();
        assert_eq!(out.summary.removed_leaves, vec![2]);
        deliver(&mut all, 0, &out.commit);
        all
    }

    #[test]
    fn after_a_removal_the_member_closest_to_the_removed_leaf_wants_to_refill_its_path() {
        // Carol held leaf 2; of leaves 0, 1 and 3, leaf 3 shares her parent.
        let mut all = full_four_without_carol();
        assert!(!all[1].wants_update());
        assert!(all[3].wants_update(), "Dave, leaf 3");
        let out = all[3].update().unwrap();
        assert!(!all[3].wants_update());
        for i in [0, 1] {
            assert!(matches!(
                all[i].process(&out.commit).unwrap(),
                Processed::Commit(_)
            ));
        }
        // Dave (leaf 3) leaves; of leaves 0 and 1, Bob's (1) is closer, though Alice commits the leave.
        let leave = all[3].leave().unwrap();
        all[0].process(&leave).unwrap();
        all[1].process(&leave).unwrap();
        let out = all[0].commit_pending().unwrap().expect("the leave");
        assert_eq!(out.summary.removed_leaves, vec![3]);
        assert!(matches!(
            all[1].process(&out.commit).unwrap(),
            Processed::Commit(_)
        ));
        assert!(all[1].wants_update(), "Bob, leaf 1");
        assert!(!all[0].wants_update());
    }

    #[test]
    fn a_refill_that_loses_to_an_admins_concurrent_commit_is_owed_again() {
        let mut all = full_four_without_carol();
        let refill = all[3].update().unwrap();
        let rename = all[0].rename("Climbers").unwrap();
        assert!(!all[3].wants_update());
        assert!(matches!(
            all[0].process(&refill.commit).unwrap(),
            Processed::LostRace
        ));
        assert!(matches!(
            all[3].process(&rename.commit).unwrap(),
            Processed::RolledBack {
                own_commit_lost: true,
                ..
            }
        ));
        assert!(all[3].wants_update(), "the dropped refill is owed again");
    }

    #[test]
    fn a_commit_that_overtakes_the_leave_it_carries_out_is_kept_until_the_leave_comes() {
        let mut all = group_of(2);
        let leave = all[2].leave().unwrap();
        all[0].process(&leave).unwrap();
        let out = all[0].commit_pending().unwrap().expect("the leave");
        assert_eq!(
            all[1].process(&out.commit).unwrap_err(),
            GroupError::MissingProposal
        );
        assert!(matches!(
            all[1].process(&leave).unwrap(),
            Processed::Proposal { .. }
        ));
        let retried = all[1].retry_parked();
        assert!(
            matches!(retried.as_slice(), [Processed::Commit(s)] if s.removed == vec![all_key(2)]),
            "{retried:?}"
        );
        assert_eq!(all[1].epoch(), all[0].epoch());
    }

    #[test]
    fn an_admins_change_wins_over_a_concurrent_update_in_either_order() {
        for admin_first in [true, false] {
            let mut all = group_of(2);
            let rename = all[0].rename("Climbers").unwrap();
            let update = all[1].update().unwrap();
            // Carol sees both, in one order or the other; Bob gets the rename, Alice the update.
            let (first, second) = if admin_first {
                (&rename.commit, &update.commit)
            } else {
                (&update.commit, &rename.commit)
            };
            all[2].process(first).unwrap();
            let last = all[2].process(second).unwrap();
            if admin_first {
                assert!(matches!(last, Processed::LostRace));
            } else {
                assert!(matches!(last, Processed::RolledBack { .. }));
            }
            assert!(matches!(
                all[0].process(&update.commit).unwrap(),
                Processed::LostRace
            ));
            assert!(matches!(
                all[1].process(&rename.commit).unwrap(),
                Processed::RolledBack {
                    own_commit_lost: true,
                    ..
                }
            ));
            for g in &all {
                assert_eq!(g.info().unwrap().name, "Climbers");
                assert_eq!(g.epoch(), all[0].epoch());
            }
            assert!(
                all[1].wants_update(),
                "Bob's update was dropped: he tries again"
            );
        }
    }

    #[test]
    fn a_timer_change_by_a_non_admin_is_refused_like_a_rename_by_one() {
        let (mut alice, mut bob) = alice_and_bob();
        assert_eq!(bob.set_timer(3600).unwrap_err(), GroupError::NotAdmin);
        // Bob's node skips its own check: the commit he builds anyway is refused where it arrives.
        let info = bob.info().unwrap();
        let forged = [
            GroupInfo {
                timer_s: 3600,
                ..info.clone()
            },
            GroupInfo {
                name: "Bob's".into(),
                ..info
            },
        ];
        for change in forged {
            let before = bob.provider.snapshot();
            let (commit, _) = bob
                .build_commit(Vec::new(), Vec::new(), Some(change))
                .unwrap();
            bob.restore(&before).unwrap();
            assert_eq!(alice.process(&commit).unwrap_err(), GroupError::NotAdmin);
        }
        assert_eq!(alice.info().unwrap().timer_s, 0);

        // The admin's change reaches Bob; setting it again changes nothing.
        let out = alice.set_timer(3600).unwrap().expect("a commit");
        assert!(out.summary.info_changed);
        assert!(
            matches!(bob.process(&out.commit).unwrap(), Processed::Commit(s) if s.info_changed)
        );
        assert_eq!(bob.info().unwrap().timer_s, 3600);
        assert!(alice.set_timer(3600).unwrap().is_none());
        assert!(matches!(
            alice.set_timer(tern_protocol::timer::MAX_TIMER_S + 1),
            Err(GroupError::Invalid(_))
        ));
    }
}
