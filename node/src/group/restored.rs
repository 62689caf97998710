//! A group as a backup carries it (docs/protocol.md §20.3, §20.5): its id, name, roles and members, and
//! whether this profile was a member, but no MLS state (that is live ratchet state a restored copy must not
//! reuse). A restored profile keeps it in the `groups` table in place of a group state (§18.8) until an
//! admin's node adds the restored copy back; the Welcome's state then takes its row.
//!
//! Layout (local, version 16, so it never reads as a group state of version 1):
//!
//! ```text
//! u8 16 || me[32] || vec8 group_id || u8 member (1: was a member, 0: had left or been removed)
//! || vec16 tern_group_info (§18.3) || count16 members: identity[32]
//! ```

use tern_protocol::IdentityKey;
use tern_protocol::codec::{Reader, Writer};
use zeroize::Zeroizing;

use super::credential::GroupInfo;
use super::state::Group;
use super::{GroupError, MAX_GROUP_MEMBERS};

/// The first byte of a restored group's row.
pub const RESTORED_VERSION: u8 = 16;
/// Longest `tern_group_info` a restored group carries (name, creator and every admin fit well within).
const MAX_INFO_LEN: usize = 4096;

/// What a backup carries of a group.
#[derive(Clone, PartialEq, Eq)]
pub struct RestoredGroup {
    /// This profile, as the group knew it.
    pub me: IdentityKey,
    /// The MLS group id.
    pub id: Vec<u8>,
    /// Whether this profile was a member when the backup was made.
    pub member: bool,
    pub info: GroupInfo,
    pub members: Vec<IdentityKey>,
}

impl std::fmt::Debug for RestoredGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoredGroup")
            .field("member", &self.member)
            .field("info", &self.info)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

fn malformed<E>(_: E) -> GroupError {
    GroupError::Malformed("restored group")
}

impl RestoredGroup {
    /// Whether a stored row of the `groups` table is a restored group rather than a group state.
    pub fn is_restored(row: &[u8]) -> bool {
        row.first() == Some(&RESTORED_VERSION)
    }

    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(RESTORED_VERSION)
            .raw(self.me.as_bytes())
            .bytes_u8(&self.id)
            .u8(u8::from(self.member))
            .bytes_u16(&self.info.encode());
        w.u16(u16::try_from(self.members.len()).unwrap_or(u16::MAX));
        for member in &self.members {
            w.raw(member.as_bytes());
        }
        Zeroizing::new(w.into_vec())
    }

    /// Reads what [`Self::encode`] wrote; anything else (a wrong version, a flag other than 0 or 1, a
    /// malformed group info, too many or repeated members, trailing bytes) is [`GroupError::Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let mut r = Reader::new(bytes);
        if r.u8("version").map_err(malformed)? != RESTORED_VERSION {
            return Err(GroupError::Malformed("restored group version"));
        }
        let me = IdentityKey::from_bytes(r.array("me").map_err(malformed)?).map_err(malformed)?;
        let id = r.bytes_u8("group id", 255).map_err(malformed)?.to_vec();
        if id.is_empty() {
            return Err(GroupError::Malformed("restored group id"));
        }
        let member = match r.u8("member").map_err(malformed)? {
            0 => false,
            1 => true,
            _ => return Err(GroupError::Malformed("restored group member flag")),
        };
        let info = GroupInfo::decode(r.bytes_u16("group info", MAX_INFO_LEN).map_err(malformed)?)?;
        let count = r
            .count_u16("members", MAX_GROUP_MEMBERS)
            .map_err(malformed)?;
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let key = IdentityKey::from_bytes(r.array("member").map_err(malformed)?)
                .map_err(malformed)?;
            if members.contains(&key) {
                return Err(GroupError::Malformed("a restored group repeats a member"));
            }
            members.push(key);
        }
        r.finish().map_err(malformed)?;
        Ok(Self {
            me,
            id,
            member,
            info,
            members,
        })
    }

    /// The admin a restored copy asks to be added back (§20.5): the creator if `reachable` (an accepted
    /// contact), else the first listed admin who is; never this profile. One admin only, so two admins do
    /// not each add the copy back.
    pub fn admin_to_ask(&self, reachable: impl Fn(&IdentityKey) -> bool) -> Option<IdentityKey> {
        std::iter::once(&self.info.creator)
            .chain(&self.info.admins)
            .find(|admin| **admin != self.me && self.members.contains(admin) && reachable(admin))
            .copied()
    }
}

impl Group {
    /// What a backup carries of this group.
    pub fn to_restored(&self) -> Result<RestoredGroup, GroupError> {
        let member = self.is_active();
        Ok(RestoredGroup {
            me: self.me(),
            id: self.id().to_vec(),
            member,
            info: self.info()?,
            members: if member { self.members()? } else { Vec::new() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    fn key(seed: u64) -> IdentityKey {
        tern_protocol::Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
    }

    fn sample() -> RestoredGroup {
        RestoredGroup {
            me: key(1),
            id: vec![7; 16],
            member: true,
            info: GroupInfo {
                name: "Climbing".into(),
                creator: key(2),
                admins: vec![key(3)],
                timer_s: 3600,
                queue: None,
            },
            members: vec![key(1), key(2), key(3)],
        }
    }

    #[test]
    fn a_restored_group_round_trips_and_never_reads_as_a_group_state() {
        let group = sample();
        let bytes = group.encode();
        assert!(RestoredGroup::is_restored(&bytes));
        assert_eq!(RestoredGroup::decode(&bytes).unwrap(), group);
        assert!(
            Group::decode(&bytes).is_err(),
            "a group state reader refuses it"
        );
    }

    #[test]
    fn damaged_rows_are_refused() {
        let bytes = sample().encode();
        let mut other_version = bytes.to_vec();
        other_version[0] = 1;
        assert!(RestoredGroup::decode(&other_version).is_err());
        let mut flag = bytes.to_vec();
        flag[1 + 32 + 1 + 16] = 2;
        assert!(RestoredGroup::decode(&flag).is_err());
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(RestoredGroup::decode(&trailing).is_err());
        assert!(RestoredGroup::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut twice = sample();
        twice.members.push(key(2));
        assert!(RestoredGroup::decode(&twice.encode()).is_err());
        let no_id = RestoredGroup {
            id: Vec::new(),
            ..sample()
        };
        assert!(matches!(
            RestoredGroup::decode(&no_id.encode()),
            Err(GroupError::Malformed("restored group id"))
        ));
        // A group info past MAX_INFO_LEN is refused before it is read.
        let group = sample();
        let mut w = Writer::new();
        w.u8(RESTORED_VERSION)
            .raw(group.me.as_bytes())
            .bytes_u8(&group.id)
            .u8(1)
            .bytes_u16(&group.info.encode())
            .u16(0);
        let fits = w.into_vec();
        assert!(
            RestoredGroup::decode(&fits).is_ok(),
            "the same row, no members"
        );
        let mut w = Writer::new();
        w.u8(RESTORED_VERSION)
            .raw(group.me.as_bytes())
            .bytes_u8(&group.id)
            .u8(1)
            .bytes_u16(&vec![0; MAX_INFO_LEN + 1])
            .u16(0);
        assert!(matches!(
            RestoredGroup::decode(&w.into_vec()),
            Err(GroupError::Malformed(_))
        ));
    }

    #[test]
    fn the_creator_is_asked_first_then_the_first_reachable_admin_never_oneself() {
        let group = sample();
        assert_eq!(group.admin_to_ask(|_| true), Some(key(2)));
        assert_eq!(group.admin_to_ask(|k| *k != key(2)), Some(key(3)));
        assert_eq!(group.admin_to_ask(|k| *k == key(9)), None);
        let mut creator_me = sample();
        creator_me.me = key(2);
        assert_eq!(creator_me.admin_to_ask(|_| true), Some(key(3)));
        let mut gone = sample();
        gone.members.retain(|k| *k != key(2));
        assert_eq!(
            gone.admin_to_ask(|_| true),
            Some(key(3)),
            "a creator who left is not asked"
        );
    }
}
