//! The member credential that binds an MLS leaf to a Tern identity (§18.2), and the `tern_group_info`
//! group-context extension that carries the name, the roles, the disappearing-message timer (§18.3) and the
//! group's mail queue (§18.6).

use libp2p::PeerId;
use openmls::prelude::{BasicCredential, Credential, LeafNode};
use tern_protocol::card::MAX_MAILBOXES;
use tern_protocol::codec::{Reader, Writer};
use tern_protocol::group_queue::{MAX_SERVER_ID_BYTES, QUEUE_ID_LEN, QueueId};
use tern_protocol::timer::check_seconds;
use tern_protocol::{Identity, IdentityKey};
use unicode_normalization::UnicodeNormalization;

use super::{CIPHERSUITE, GroupError, MAX_ADMINS, MAX_GROUP_NAME_LEN};

const CREDENTIAL_VERSION: u8 = 1;
const CREDENTIAL_LEN: usize = 1 + 32 + 32 + 64;
const MEMBER_KEY_LABEL: &[u8] = b"tern/group-member-key/v1";
/// `tern_group_info` without a timer: what groups without one still write, so older nodes read them.
const INFO_VERSION_1: u8 = 1;
/// `tern_group_info` with a timer: version 1's fields followed by `u32 BE timer_seconds`.
const INFO_VERSION_2: u8 = 2;
/// `tern_group_info` with a mail queue: version 2's fields followed by `queue_id[16] ‖ count8<4> servers`,
/// each a `vec8<64>` PeerId (§18.6).
const INFO_VERSION_3: u8 = 3;

/// A verified member credential: this Tern identity vouches for this MLS signature key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCredential {
    pub identity: IdentityKey,
    pub mls_signature_key: [u8; 32],
}

fn signed_data(mls_signature_key: &[u8; 32]) -> Vec<u8> {
    let mut data = Vec::with_capacity(34);
    data.extend_from_slice(&u16::from(CIPHERSUITE).to_be_bytes());
    data.extend_from_slice(mls_signature_key);
    data
}

impl MemberCredential {
    /// The credential bytes for `identity` vouching for `mls_signature_key`.
    pub(crate) fn issue(identity: &Identity, mls_signature_key: &[u8; 32]) -> Vec<u8> {
        let signature = identity.sign(MEMBER_KEY_LABEL, &signed_data(mls_signature_key));
        let mut w = Writer::with_capacity(CREDENTIAL_LEN);
        w.u8(CREDENTIAL_VERSION)
            .raw(identity.key().as_bytes())
            .raw(mls_signature_key)
            .raw(&signature);
        w.into_vec()
    }

    /// Parses and verifies credential bytes.
    pub fn verify(bytes: &[u8]) -> Result<Self, GroupError> {
        if bytes.len() != CREDENTIAL_LEN {
            return Err(GroupError::Credential("wrong length"));
        }
        let mut r = Reader::new(bytes);
        let bad = |_| GroupError::Credential("truncated");
        if r.u8("credential version").map_err(bad)? != CREDENTIAL_VERSION {
            return Err(GroupError::Credential("unknown version"));
        }
        let identity = IdentityKey::from_bytes(r.array("identity key").map_err(bad)?)
            .map_err(|_| GroupError::Credential("identity key"))?;
        let mls_signature_key: [u8; 32] = r.array("mls signature key").map_err(bad)?;
        let signature: [u8; 64] = r.array("binding signature").map_err(bad)?;
        identity
            .verify(
                MEMBER_KEY_LABEL,
                &signed_data(&mls_signature_key),
                &signature,
                "member credential",
            )
            .map_err(|_| GroupError::Credential("binding signature"))?;
        Ok(Self {
            identity,
            mls_signature_key,
        })
    }

    /// Verifies an MLS credential and that it names `signature_key`.
    pub(crate) fn verify_mls(
        credential: &Credential,
        signature_key: &[u8],
    ) -> Result<Self, GroupError> {
        let basic = BasicCredential::try_from(credential.clone())
            .map_err(|_| GroupError::Credential("not a basic credential"))?;
        let member = Self::verify(basic.identity())?;
        if member.mls_signature_key.as_slice() != signature_key {
            return Err(GroupError::Credential(
                "signature key differs from the leaf's",
            ));
        }
        Ok(member)
    }

    /// Verifies a leaf node's credential against its own signature key.
    pub(crate) fn verify_leaf(leaf: &LeafNode) -> Result<Self, GroupError> {
        Self::verify_mls(leaf.credential(), leaf.signature_key().as_slice())
    }
}

/// Name, roles and timer of a group (`tern_group_info`, §18.3).
#[derive(Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    pub creator: IdentityKey,
    /// Admins besides the creator.
    pub admins: Vec<IdentityKey>,
    /// The disappearing-message timer (docs/protocol.md §12.4), seconds; 0: off.
    pub timer_s: u32,
    /// The group's mail queue (§18.6); `None` for a group without one (its offline members get group
    /// messages over 1:1 sessions).
    pub queue: Option<GroupQueue>,
}

/// A group's mail queue: its id and the mailbox servers that hold it (§18.6).
#[derive(Clone, PartialEq, Eq)]
pub struct GroupQueue {
    pub id: QueueId,
    /// At most [`MAX_MAILBOXES`], none twice.
    pub servers: Vec<PeerId>,
}

impl std::fmt::Debug for GroupQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { id, servers } = self;
        f.debug_struct("GroupQueue")
            .field("id", id)
            .field("servers", &servers.len())
            .finish()
    }
}

impl std::fmt::Debug for GroupInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the name.
        let Self {
            name,
            creator,
            admins,
            timer_s,
            queue,
        } = self;
        f.debug_struct("GroupInfo")
            .field("name", &format_args!("{} bytes", name.len()))
            .field("creator", creator)
            .field("admins", admins)
            .field("timer_s", timer_s)
            .field("queue", queue)
            .finish()
    }
}

/// Normalises and checks a group name.
pub(crate) fn check_name(name: &str) -> Result<String, GroupError> {
    let name: String = name.trim().nfc().collect();
    if name.is_empty() {
        return Err(GroupError::Invalid("group name (empty)"));
    }
    if name.len() > MAX_GROUP_NAME_LEN {
        return Err(GroupError::Invalid("group name (too long)"));
    }
    Ok(name)
}

impl GroupInfo {
    pub fn is_admin(&self, who: &IdentityKey) -> bool {
        self.creator == *who || self.admins.contains(who)
    }

    /// Version 3 when the group has a mail queue, else version 1 when the timer is off (groups without
    /// one stay readable by nodes that know only version 1), version 2 otherwise.
    pub fn encode(&self) -> Vec<u8> {
        let version = match (&self.queue, self.timer_s) {
            (Some(_), _) => INFO_VERSION_3,
            (None, 0) => INFO_VERSION_1,
            (None, _) => INFO_VERSION_2,
        };
        let mut w = Writer::new();
        w.u8(version)
            .bytes_u8(self.name.as_bytes())
            .raw(self.creator.as_bytes());
        w.u8(u8::try_from(self.admins.len()).unwrap_or(u8::MAX));
        for admin in &self.admins {
            w.raw(admin.as_bytes());
        }
        if version != INFO_VERSION_1 {
            w.u32(self.timer_s);
        }
        if let Some(queue) = &self.queue {
            w.raw(&queue.id.0);
            let count = queue.servers.len().min(MAX_MAILBOXES);
            w.u8(u8::try_from(count).unwrap_or(u8::MAX));
            for server in queue.servers.iter().take(count) {
                w.bytes_u8(&server.to_bytes());
            }
        }
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let bad = |_| GroupError::Malformed("group info");
        let mut r = Reader::new(bytes);
        let version = r.u8("group info version").map_err(bad)?;
        if !(INFO_VERSION_1..=INFO_VERSION_3).contains(&version) {
            return Err(GroupError::Malformed("group info version"));
        }
        let name = r.bytes_u8("group name", MAX_GROUP_NAME_LEN).map_err(bad)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| GroupError::Malformed("group name"))?
            .to_owned();
        let creator = IdentityKey::from_bytes(r.array("creator").map_err(bad)?).map_err(bad)?;
        let count = r.count_u8("admins", MAX_ADMINS).map_err(bad)?;
        let mut admins = Vec::with_capacity(count);
        for _ in 0..count {
            let admin = IdentityKey::from_bytes(r.array("admin").map_err(bad)?).map_err(bad)?;
            if admin == creator || admins.contains(&admin) {
                return Err(GroupError::Malformed("duplicate admin"));
            }
            admins.push(admin);
        }
        let timer_s = if version == INFO_VERSION_1 {
            0
        } else {
            r.u32("group timer").map_err(bad)?
        };
        check_seconds(timer_s).map_err(|_| GroupError::Malformed("group timer"))?;
        let queue = if version == INFO_VERSION_3 {
            let id = QueueId(r.array::<QUEUE_ID_LEN>("queue id").map_err(bad)?);
            let count = r.count_u8("queue servers", MAX_MAILBOXES).map_err(bad)?;
            let mut servers = Vec::with_capacity(count);
            for _ in 0..count {
                let bytes = r
                    .bytes_u8("queue server", MAX_SERVER_ID_BYTES)
                    .map_err(bad)?;
                let server =
                    PeerId::from_bytes(bytes).map_err(|_| GroupError::Malformed("queue server"))?;
                if servers.contains(&server) {
                    return Err(GroupError::Malformed("duplicate queue server"));
                }
                servers.push(server);
            }
            Some(GroupQueue { id, servers })
        } else {
            None
        };
        r.finish().map_err(bad)?;
        Ok(Self {
            name,
            creator,
            admins,
            timer_s,
            queue,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use tern_protocol::timer::MAX_TIMER_S;

    use super::*;

    fn info(timer_s: u32) -> GroupInfo {
        let key = |seed| Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key();
        GroupInfo {
            name: "Hikers".into(),
            creator: key(1),
            admins: vec![key(2)],
            timer_s,
            queue: None,
        }
    }

    /// A server PeerId: the Ed25519 key whose secret is `07` × 32.
    fn vector_server() -> PeerId {
        let secret = libp2p::identity::ed25519::SecretKey::try_from_bytes([7u8; 32]).unwrap();
        let keypair = libp2p::identity::ed25519::Keypair::from(secret);
        PeerId::from_public_key(&libp2p::identity::PublicKey::from(keypair.public()))
    }

    fn with_queue(timer_s: u32) -> GroupInfo {
        GroupInfo {
            queue: Some(GroupQueue {
                id: QueueId([0x5a; 16]),
                servers: vec![vector_server()],
            }),
            ..info(timer_s)
        }
    }

    #[test]
    fn a_group_with_a_queue_is_version_3_and_versions_1_and_2_still_read_without_one() {
        let v1 = info(0).encode();
        let v3 = with_queue(0).encode();
        assert_eq!(v3[0], 3);
        assert_eq!(&v3[1..v1.len()], &v1[1..], "version 1's fields first");
        assert_eq!(&v3[v1.len()..v1.len() + 4], &[0; 4], "then the timer, off");
        assert_eq!(
            &v3[v1.len() + 4..v1.len() + 20],
            &[0x5a; 16],
            "the queue id"
        );
        assert_eq!(v3[v1.len() + 20], 1, "one server");
        assert_eq!(GroupInfo::decode(&v3).unwrap(), with_queue(0));
        assert_eq!(
            GroupInfo::decode(&with_queue(3600).encode()).unwrap(),
            with_queue(3600)
        );
        for old in [info(0).encode(), info(3600).encode()] {
            assert_eq!(GroupInfo::decode(&old).unwrap().queue, None);
        }
    }

    #[test]
    fn a_queue_with_too_many_duplicate_or_bad_servers_is_malformed() {
        let malformed =
            |bytes: &[u8]| matches!(GroupInfo::decode(bytes), Err(GroupError::Malformed(_)));
        let v3 = with_queue(0).encode();
        let count_at = info(0).encode().len() + 20;
        let server = v3[count_at + 1..].to_vec();
        let mut twice = v3.clone();
        twice[count_at] = 2;
        twice.extend_from_slice(&server);
        assert!(malformed(&twice), "one server twice");
        let mut five = v3[..count_at].to_vec();
        five.push(5);
        assert!(malformed(&five), "more than MAX_MAILBOXES servers");
        let mut bad = v3.clone();
        bad[count_at + 2] ^= 0xff;
        assert!(malformed(&bad), "not a PeerId");
        let mut trailing = v3.clone();
        trailing.push(0);
        assert!(malformed(&trailing), "trailing byte after version 3");
        assert!(malformed(&v3[..v3.len() - 1]), "a cut server");
    }

    #[test]
    fn without_a_timer_the_info_is_version_1_and_with_one_version_2() {
        let off = info(0);
        let v1 = off.encode();
        assert_eq!(v1[0], 1);
        assert_eq!(v1.len(), 1 + 1 + 6 + 32 + 1 + 32, "version 1's fields only");
        assert_eq!(GroupInfo::decode(&v1).unwrap(), off);

        let hour = info(3600);
        let v2 = hour.encode();
        assert_eq!(v2[0], 2);
        assert_eq!(&v2[1..v1.len()], &v1[1..], "version 1's fields first");
        assert_eq!(&v2[v1.len()..], &3600u32.to_be_bytes());
        assert_eq!(GroupInfo::decode(&v2).unwrap(), hour);
        assert_eq!(
            GroupInfo::decode(&info(MAX_TIMER_S).encode())
                .unwrap()
                .timer_s,
            MAX_TIMER_S
        );
        // Another writer's version 2 with the timer off still reads.
        let mut v2_off = v1.clone();
        v2_off[0] = 2;
        v2_off.extend_from_slice(&[0; 4]);
        assert_eq!(GroupInfo::decode(&v2_off).unwrap(), off);
    }

    #[test]
    fn an_unknown_version_a_timer_out_of_range_and_trailing_bytes_are_malformed() {
        let v2 = info(3600).encode();
        let malformed =
            |bytes: &[u8]| matches!(GroupInfo::decode(bytes), Err(GroupError::Malformed(_)));
        let mut v4 = v2.clone();
        v4[0] = 4;
        assert!(malformed(&v4), "unknown version");
        let mut long = v2.clone();
        let at = long.len() - 4;
        long[at..].copy_from_slice(&(MAX_TIMER_S + 1).to_be_bytes());
        assert!(malformed(&long), "a timer over a year");
        let mut trailing = v2.clone();
        trailing.push(0);
        assert!(malformed(&trailing), "trailing byte after version 2");
        let mut v1_trailing = info(0).encode();
        v1_trailing.extend_from_slice(&3600u32.to_be_bytes());
        assert!(malformed(&v1_trailing), "version 1 carries no timer");
        assert!(malformed(&v2[..v2.len() - 1]), "a cut timer");
    }
}
