//! The checks every commit passes before it is merged (§18.2, §18.3), and the small readers of MLS state
//! they and the rest of the module share.

use std::collections::HashSet;

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    BasicCredential, Credential, LeafNodeIndex, MlsGroup, MlsMessageIn, MlsMessageOut,
    ProcessMessageError, ProtocolMessage, StagedCommit, ValidationError,
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
    if !info_before.is_admin(&committer) {
        return Err(GroupError::NotAdmin);
    }
    if staged.update_proposals().next().is_some() {
        return Err(GroupError::Forbidden("update proposals"));
    }
    let members = members_of(mls)?;
    let mut after: HashSet<IdentityKey> = members.iter().map(|(_, id)| *id).collect();
    let mut removed = Vec::new();
    for remove in staged.remove_proposals() {
        let index = remove.remove_proposal().removed();
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
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use tern_protocol::Identity;

    use super::*;
    use crate::group::{Group, KeyPackageIn, Processed, new_key_package};

    /// Alice's group with Bob added as a plain member: (alice's state, bob's state).
    fn alice_and_bob() -> (Group, Group) {
        let alice = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1), 0);
        let bob = Identity::generate(&mut ChaCha20Rng::seed_from_u64(2), 0);
        let mut group = Group::create(&alice, "Hikers").unwrap();
        let (bytes, pending) = new_key_package(&bob).unwrap();
        let kp = KeyPackageIn::parse(&bytes, Some(&bob.key())).unwrap();
        let welcome = group.add(vec![kp]).unwrap().welcome.unwrap();
        let (bobs, _) = Group::join(&welcome, &pending, &bob.key()).unwrap();
        (group, bobs)
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
