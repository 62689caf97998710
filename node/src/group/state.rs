//! [`Group`]: one member's state of one group, and every operation on it. Each operation either completes
//! (and the caller persists [`Group::encode`]) or returns a typed error and leaves the state as it was.

use std::collections::{HashSet, VecDeque};

use libp2p::PeerId;
use openmls::prelude::{
    BasicCredential, CredentialWithKey, Extension, ExtensionType, Extensions, GroupId, KeyPackage,
    LeafNodeIndex, MlsGroup, MlsGroupCreateConfig, MlsGroupJoinConfig,
    PURE_CIPHERTEXT_WIRE_FORMAT_POLICY, RequiredCapabilitiesExtension, SenderRatchetConfiguration,
    SignatureScheme, StagedWelcome, UnknownExtension,
};
use openmls::treesync::LeafNodeSource;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider;
use tern_protocol::card::MAX_MAILBOXES;
use tern_protocol::crypto::sha256;
use tern_protocol::group_queue::{self, EpochKey, QueueId, Rotation};
use tern_protocol::{Content, Identity, IdentityKey, MessageId};
use zeroize::Zeroizing;

use super::check::{CommitSummary, check_commit, info_of, members_of, serialize};
use super::credential::{GroupInfo, GroupQueue, MemberCredential, check_name};
use super::key_package::{KeyPackageIn, PendingKeyPackage, capabilities, welcome_refs};
use super::ordering::{self, CommitMeta, EpochRecord};
use super::provider::{Provider, Snapshot};
use super::{
    CIPHERSUITE, GROUP_INFO_EXTENSION, GroupError, MAX_ADMINS, MAX_GROUP_MEMBERS,
    MAX_GROUP_MESSAGE_LEN, MAX_RESEND, ROLLBACK_EPOCHS,
};
use crate::mailbox::group_wire::SignedRotation;

/// What a commit this member made gives to send: the commit to every member, the Welcome to the added ones.
#[derive(Debug, Clone)]
pub struct CommitOut {
    pub commit: Vec<u8>,
    pub welcome: Option<Vec<u8>>,
    pub summary: CommitSummary,
    /// For a group with a mail queue: the new epoch's queue key, signed by the old epoch's, to deposit
    /// with the commit (§18.6); `revoke` when the commit removes members.
    pub rotation: Option<SignedRotation>,
}

/// The outcome of [`Group::process`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Processed {
    /// An application message, read for the first time.
    Message {
        sender: IdentityKey,
        content: Content,
    },
    /// A copy of a message already read (a re-send after a rollback); drop it.
    Duplicate { sender: IdentityKey, id: MessageId },
    /// A commit for the current epoch, merged.
    Commit(CommitSummary),
    /// A commit for an earlier epoch won over the one applied (§18.5): the state was rolled back onto it.
    /// `resend` are this member's own messages from the dropped epochs, re-encrypted: send them again.
    RolledBack {
        summary: CommitSummary,
        resend: Vec<Vec<u8>>,
        own_commit_lost: bool,
    },
    /// A valid commit for an earlier epoch that loses to the one applied; remembered, nothing changes.
    LostRace,
    /// A member's proposal to leave, queued for the next admin commit.
    Proposal { from: IdentityKey },
}

/// One member's state of one group. No `Debug` of secrets: it prints the group id and epoch only.
pub struct Group {
    pub(crate) provider: Provider,
    pub(crate) mls: MlsGroup,
    pub(crate) signer: SignatureKeyPair,
    pub(crate) me: IdentityKey,
    pub(crate) history: VecDeque<EpochRecord>,
    /// [`Group::history_mark`] of the history as last written to its own row (`persist.rs`); `None` when it
    /// never was (a new group, or a state read from a version 1 row, which held its history inline).
    pub(crate) history_saved: Option<[u8; 32]>,
    /// Own application messages: the epoch sent in and the content bytes.
    pub(crate) sent: VecDeque<(u64, Zeroizing<Vec<u8>>)>,
    pub(crate) seen: VecDeque<(IdentityKey, MessageId)>,
    pub(crate) seen_set: HashSet<(IdentityKey, MessageId)>,
    pub(crate) parked: VecDeque<Vec<u8>>,
    /// A removal blanked tree nodes above this member's leaf that only its update fills again (§18.3).
    /// Kept in memory only: after a restart the nodes stay blank until someone under them commits.
    pub(crate) refill: bool,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("epoch", &self.epoch())
            .finish_non_exhaustive()
    }
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(ROLLBACK_EPOCHS)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(64, 2000))
        .use_ratchet_tree_extension(true)
        .build()
}

fn context_extensions(
    info: &GroupInfo,
) -> Result<Extensions<openmls::prelude::GroupContext>, GroupError> {
    Extensions::from_vec(vec![
        Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(
            &[ExtensionType::Unknown(GROUP_INFO_EXTENSION)],
            &[],
            &[],
        )),
        Extension::Unknown(GROUP_INFO_EXTENSION, UnknownExtension(info.encode())),
    ])
    .map_err(GroupError::mls)
}

impl Group {
    /// A group around a loaded MLS state; `signature_key` names this member's signer in its storage.
    pub(crate) fn from_parts(
        provider: Provider,
        mls: MlsGroup,
        me: IdentityKey,
        signature_key: &[u8],
    ) -> Result<Self, GroupError> {
        let signer =
            SignatureKeyPair::read(provider.storage(), signature_key, SignatureScheme::ED25519)
                .ok_or(GroupError::Corrupt("signature key missing"))?;
        Ok(Self {
            provider,
            mls,
            signer,
            me,
            history: VecDeque::new(),
            history_saved: None,
            sent: VecDeque::new(),
            seen: VecDeque::new(),
            seen_set: HashSet::new(),
            parked: VecDeque::new(),
            refill: false,
        })
    }

    /// Creates a group named `name` with `identity` as its creator and only member, without a mail queue.
    pub fn create(identity: &Identity, name: &str) -> Result<Self, GroupError> {
        Self::create_with_queue(identity, name, &[])
    }

    /// Creates a group whose mail queue (§18.6) lives on `servers` (at most `MAX_MAILBOXES`, the first
    /// ones taken): a random queue id in the group info, version 3. No servers: no queue, and the group's
    /// offline members get its messages over 1:1 sessions. The caller opens the queue on each server with
    /// [`Self::queue_key`] of the creation epoch.
    pub fn create_with_queue(
        identity: &Identity,
        name: &str,
        servers: &[PeerId],
    ) -> Result<Self, GroupError> {
        let name = check_name(name)?;
        let mut unique: Vec<PeerId> = Vec::new();
        for server in servers {
            if !unique.contains(server) && unique.len() < MAX_MAILBOXES {
                unique.push(*server);
            }
        }
        let queue = (!unique.is_empty()).then(|| {
            let mut id = [0u8; group_queue::QUEUE_ID_LEN];
            rand::fill(&mut id);
            GroupQueue {
                id: QueueId(id),
                servers: unique,
            }
        });
        let (_, pending) = super::new_key_package(identity)?;
        let provider = Provider::from_snapshot(&pending.entries);
        let signer = SignatureKeyPair::read(
            provider.storage(),
            &pending.signature_key,
            SignatureScheme::ED25519,
        )
        .ok_or(GroupError::Corrupt("signature key missing"))?;
        let info = GroupInfo {
            name,
            creator: identity.key(),
            admins: Vec::new(),
            timer_s: 0,
            queue,
        };
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(ROLLBACK_EPOCHS)
            .sender_ratchet_configuration(SenderRatchetConfiguration::new(64, 2000))
            .use_ratchet_tree_extension(true)
            .capabilities(capabilities())
            .with_group_context_extensions(context_extensions(&info)?)
            .build();
        let public: [u8; 32] = signer
            .public()
            .try_into()
            .map_err(|_| GroupError::Mls("Ed25519 key of unexpected length".into()))?;
        let with_key = CredentialWithKey {
            credential: BasicCredential::new(MemberCredential::issue(identity, &public)).into(),
            signature_key: signer.public().into(),
        };
        let mut id = [0u8; 16];
        rand::fill(&mut id);
        let mls = MlsGroup::new_with_group_id(
            &provider,
            &signer,
            &config,
            GroupId::from_slice(&id),
            with_key,
        )
        .map_err(GroupError::mls)?;
        Self::from_parts(provider, mls, identity.key(), &pending.signature_key)
    }

    /// The KeyPackage references a Welcome is for (to find the pending KeyPackage that opens it).
    pub fn welcome_key_packages(welcome: &[u8]) -> Result<Vec<Vec<u8>>, GroupError> {
        welcome_refs(welcome).map(|(_, refs)| refs)
    }

    /// Joins from a Welcome with the KeyPackage it was made for. Checks every leaf's credential and that
    /// the Welcome's sender is an admin; returns the group and who added this member.
    pub fn join(
        welcome: &[u8],
        pending: &PendingKeyPackage,
        me: &IdentityKey,
    ) -> Result<(Self, IdentityKey), GroupError> {
        let (welcome, refs) = welcome_refs(welcome)?;
        if !refs.contains(&pending.hash_ref) {
            return Err(GroupError::NoKeyPackage);
        }
        let provider = Provider::from_snapshot(&pending.entries);
        let staged = StagedWelcome::new_from_welcome(&provider, &join_config(), welcome, None)
            .map_err(GroupError::mls)?;
        let adder =
            MemberCredential::verify_leaf(staged.welcome_sender().map_err(GroupError::mls)?)?
                .identity;
        let mls = staged.into_group(&provider).map_err(GroupError::mls)?;
        let mut seen = HashSet::new();
        for member in mls.members() {
            let credential =
                MemberCredential::verify_mls(&member.credential, &member.signature_key)?;
            if !seen.insert(credential.identity) {
                return Err(GroupError::Credential("one identity in two leaves"));
            }
        }
        let group = Self::from_parts(provider, mls, *me, &pending.signature_key)?;
        // The Welcome's sender must be an admin; the caller also checks it is the 1:1 session's peer.
        if adder == *me || !group.info()?.is_admin(&adder) {
            return Err(GroupError::NotAdmin);
        }
        Ok((group, adder))
    }

    pub fn id(&self) -> &[u8] {
        self.mls.group_id().as_slice()
    }

    pub fn epoch(&self) -> u64 {
        self.mls.epoch().as_u64()
    }

    /// This member's MLS signature public key (names its signer in the storage).
    pub(crate) fn signature_key(&self) -> &[u8] {
        self.signer.public()
    }

    pub fn me(&self) -> IdentityKey {
        self.me
    }

    /// Still a member (not removed, not left and removed).
    pub fn is_active(&self) -> bool {
        self.mls.is_active()
    }

    pub fn info(&self) -> Result<GroupInfo, GroupError> {
        info_of(&self.mls)
    }

    /// Every member's identity, in leaf order.
    pub fn members(&self) -> Result<Vec<IdentityKey>, GroupError> {
        Ok(members_of(&self.mls)?
            .into_iter()
            .map(|(_, id)| id)
            .collect())
    }

    /// `MLS-Exporter(label, "", N)` of the current epoch (topics, queue ids, §18.6).
    pub fn export(&self, label: &str) -> Result<Zeroizing<Vec<u8>>, GroupError> {
        self.mls
            .export_secret(self.provider.crypto(), label, &[], 32)
            .map(Zeroizing::new)
            .map_err(GroupError::mls)
    }

    /// The group's mail queue, from its info (§18.6); `None` for a group without one.
    pub fn queue(&self) -> Option<GroupQueue> {
        self.info().ok().and_then(|info| info.queue)
    }

    /// `MLS-Exporter("tern/group/queue/v1", "", 16)` of this epoch: a queue id for a group whose info
    /// carries none (the bytes-by-hand tests of `node/tests/group_queue.rs`). Nodes use the random id of
    /// [`Self::queue`], which must be in the creation epoch's context and so cannot be its exporter output.
    pub fn queue_id(&self) -> Result<QueueId, GroupError> {
        let bytes = self
            .mls
            .export_secret(
                self.provider.crypto(),
                group_queue::QUEUE_ID_LABEL,
                &[],
                group_queue::QUEUE_ID_LEN,
            )
            .map(Zeroizing::new)
            .map_err(GroupError::mls)?;
        let mut id = [0u8; group_queue::QUEUE_ID_LEN];
        id.copy_from_slice(
            bytes
                .get(..group_queue::QUEUE_ID_LEN)
                .ok_or(GroupError::Mls("short exporter output".into()))?,
        );
        Ok(QueueId(id))
    }

    /// The current epoch's group queue auth key (§18.6): the Ed25519 key whose seed is
    /// `MLS-Exporter("tern/group/queue-auth/v1", "", 32)`. Every member of the epoch derives the same one.
    pub fn queue_key(&self) -> Result<EpochKey, GroupError> {
        let bytes = self.export(group_queue::QUEUE_AUTH_LABEL)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(
            bytes
                .get(..32)
                .ok_or(GroupError::Mls("short exporter output".into()))?,
        );
        Ok(EpochKey::from_exporter(&seed))
    }

    /// The gossip topic of the current epoch: `"tern-group/1/" || hex(MLS-Exporter("tern/group/topic/v1",
    /// "", 16))` (§18.6). It follows the epoch secret: outsiders cannot link it to the group's other epochs.
    pub fn topic(&self) -> Result<String, GroupError> {
        let bytes = self
            .mls
            .export_secret(self.provider.crypto(), super::TOPIC_LABEL, &[], 16)
            .map(Zeroizing::new)
            .map_err(GroupError::mls)?;
        let mut topic = String::with_capacity(super::TOPIC_PREFIX.len() + 32);
        topic.push_str(super::TOPIC_PREFIX);
        for byte in bytes.iter() {
            topic.push_str(&format!("{byte:02x}"));
        }
        Ok(topic)
    }

    fn require_admin(&self) -> Result<GroupInfo, GroupError> {
        if !self.is_active() {
            return Err(GroupError::NotMember);
        }
        let info = self.info()?;
        if !info.is_admin(&self.me) {
            return Err(GroupError::NotAdmin);
        }
        Ok(info)
    }

    pub(super) fn leaf_of(&self, who: &IdentityKey) -> Result<LeafNodeIndex, GroupError> {
        members_of(&self.mls)?
            .into_iter()
            .find(|(_, id)| id == who)
            .map(|(i, _)| i)
            .ok_or(GroupError::UnknownMember)
    }

    /// Puts the state back to a snapshot (after a failed operation, or onto a rollback target).
    pub(crate) fn restore(&mut self, snapshot: &Snapshot) -> Result<(), GroupError> {
        let provider = Provider::from_snapshot(snapshot);
        let mls = MlsGroup::load(provider.storage(), self.mls.group_id())
            .map_err(GroupError::mls)?
            .ok_or(GroupError::Corrupt("group missing from snapshot"))?;
        self.provider = provider;
        self.mls = mls;
        Ok(())
    }

    /// Builds, merges and records a commit of this member's.
    fn commit(
        &mut self,
        adds: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
        info: Option<GroupInfo>,
    ) -> Result<CommitOut, GroupError> {
        self.commit_as(adds, removes, info, false)
    }

    /// [`Self::commit`]; `update`: an update (no proposal, a path; the proposals held stay out of it).
    fn commit_as(
        &mut self,
        adds: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
        info: Option<GroupInfo>,
        update: bool,
    ) -> Result<CommitOut, GroupError> {
        let before = self.provider.snapshot();
        // The old epoch's queue key signs the new one's (§18.6).
        let queue = self.queue().map(|q| q.id);
        let signer = match queue {
            Some(_) => Some(self.queue_key()?),
            None => None,
        };
        let result = self.build_commit_as(adds, removes, info, update);
        let (commit, welcome) = match result {
            Ok(out) => out,
            Err(err) => {
                self.restore(&before)?;
                return Err(err);
            }
        };
        let staged = self
            .mls
            .pending_commit()
            .ok_or(GroupError::Mls("no pending commit".into()))?;
        let with_path = staged.update_path_leaf_node().is_some();
        let summary = check_commit(&self.mls, staged, self.me);
        let summary = match summary {
            Ok(summary) => summary,
            Err(err) => {
                self.restore(&before)?;
                return Err(err);
            }
        };
        let epoch = self.epoch();
        self.mls
            .merge_pending_commit(&self.provider)
            .map_err(GroupError::mls)?;
        if with_path {
            // This member's path is new from its leaf to the root: nothing above it is blank.
            self.refill = false;
        }
        ordering::push_record(
            &mut self.history,
            EpochRecord {
                epoch,
                snapshot: before,
                applied: CommitMeta {
                    hash: sha256(&[&commit]),
                    committer: self.me,
                    removed: summary.removed.clone(),
                    update: summary.update,
                },
                candidates: Vec::new(),
            },
        );
        self.prune_sent();
        let rotation = match (queue, signer, self.queue_key()) {
            (Some(queue), Some(signer), Ok(new)) => {
                let rotation = Rotation {
                    epoch: self.epoch(),
                    new_key: new.public(),
                    revoke: !summary.removed.is_empty(),
                };
                Some(SignedRotation {
                    rotation,
                    signer: signer.public(),
                    signature: signer.sign_rotation(&queue, &rotation, &commit),
                })
            }
            _ => None,
        };
        Ok(CommitOut {
            commit,
            welcome,
            summary,
            rotation,
        })
    }

    #[cfg(test)]
    pub(super) fn build_commit(
        &mut self,
        adds: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
        info: Option<GroupInfo>,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), GroupError> {
        self.build_commit_as(adds, removes, info, false)
    }

    fn build_commit_as(
        &mut self,
        adds: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
        info: Option<GroupInfo>,
        update: bool,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), GroupError> {
        let mut builder = self
            .mls
            .commit_builder()
            .propose_adds(adds)
            .propose_removals(removes)
            .force_self_update(update)
            .consume_proposal_store(!update);
        if let Some(info) = info {
            builder = builder
                .propose_group_context_extensions(context_extensions(&info)?)
                .map_err(GroupError::mls)?;
        }
        let bundle = builder
            .load_psks(self.provider.storage())
            .map_err(GroupError::mls)?
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .map_err(GroupError::mls)?
            .stage_commit(&self.provider)
            .map_err(GroupError::mls)?;
        let (commit, welcome, _) = bundle.into_messages();
        Ok((
            serialize(&commit)?,
            welcome.as_ref().map(serialize).transpose()?,
        ))
    }

    /// Adds members from their checked KeyPackages (admins only).
    pub fn add(&mut self, key_packages: Vec<KeyPackageIn>) -> Result<CommitOut, GroupError> {
        self.require_admin()?;
        let members = self.members()?;
        if members.len() + key_packages.len() > MAX_GROUP_MEMBERS {
            return Err(GroupError::TooManyMembers {
                max: MAX_GROUP_MEMBERS,
            });
        }
        let mut new = HashSet::new();
        for kp in &key_packages {
            if members.contains(&kp.member.identity) || !new.insert(kp.member.identity) {
                return Err(GroupError::AlreadyMember);
            }
        }
        let adds = key_packages.into_iter().map(|kp| kp.key_package).collect();
        self.commit(adds, Vec::new(), None)
    }

    /// Adds back a member whose copy was restored from a backup (admins only, docs/protocol.md §20.5): its
    /// old leaf is removed and its new KeyPackage added in one commit, so it keeps its roles.
    pub fn readd(&mut self, key_package: KeyPackageIn) -> Result<CommitOut, GroupError> {
        self.require_admin()?;
        let who = key_package.member.identity;
        if who == self.me {
            return Err(GroupError::Invalid("adding oneself back"));
        }
        let old = self.leaf_of(&who)?;
        self.commit(vec![key_package.key_package], vec![old], None)
    }

    /// Removes members (admins only); a removed admin also leaves the admin list.
    pub fn remove(&mut self, who: &[IdentityKey]) -> Result<CommitOut, GroupError> {
        let mut info = self.require_admin()?;
        if who.contains(&self.me) {
            return Err(GroupError::Invalid("removing oneself (use leave)"));
        }
        let leaves = who
            .iter()
            .map(|w| self.leaf_of(w))
            .collect::<Result<Vec<_>, _>>()?;
        let before = info.admins.len();
        info.admins.retain(|a| !who.contains(a));
        let info = (info.admins.len() != before).then_some(info);
        self.commit(Vec::new(), leaves, info)
    }

    /// Renames the group (admins only).
    pub fn rename(&mut self, name: &str) -> Result<CommitOut, GroupError> {
        let mut info = self.require_admin()?;
        info.name = check_name(name)?;
        self.commit(Vec::new(), Vec::new(), Some(info))
    }

    /// Sets the group's disappearing-message timer to `seconds` (0: off; admins only): a commit like a
    /// rename. `None` if the timer is that already.
    pub fn set_timer(&mut self, seconds: u32) -> Result<Option<CommitOut>, GroupError> {
        let mut info = self.require_admin()?;
        tern_protocol::timer::check_seconds(seconds)
            .map_err(|_| GroupError::Invalid("timer (longer than a year)"))?;
        if info.timer_s == seconds {
            return Ok(None);
        }
        info.timer_s = seconds;
        self.commit(Vec::new(), Vec::new(), Some(info)).map(Some)
    }

    /// Makes a member an admin (admins only).
    pub fn promote(&mut self, who: &IdentityKey) -> Result<CommitOut, GroupError> {
        let mut info = self.require_admin()?;
        self.leaf_of(who)?;
        if info.is_admin(who) {
            return Err(GroupError::Invalid("already an admin"));
        }
        if info.admins.len() >= MAX_ADMINS {
            return Err(GroupError::Invalid("too many admins"));
        }
        info.admins.push(*who);
        self.commit(Vec::new(), Vec::new(), Some(info))
    }

    /// Commits an update of this member's own leaf and path (§18.3; any member): a commit with no proposal,
    /// so the leave proposals held wait for an admin's commit.
    pub fn update(&mut self) -> Result<CommitOut, GroupError> {
        if !self.is_active() {
            return Err(GroupError::NotMember);
        }
        self.commit_as(Vec::new(), Vec::new(), None, true)
    }

    /// Whether this member should commit an update (§18.3): its leaf is still the one its KeyPackage
    /// made (it never committed a path), or a removal blanked nodes that only its path fills again.
    pub fn wants_update(&self) -> bool {
        self.is_active()
            && (self.refill
                || self.mls.own_leaf_node().is_some_and(|leaf| {
                    matches!(leaf.leaf_node_source(), LeafNodeSource::KeyPackage(_))
                }))
    }

    /// After a merged commit: a removal blanks the removed leaf's direct path, and the committer's new path
    /// fills only its own part of it. The remaining member whose leaf index is closest to the removed one
    /// by XOR (the one sharing its lowest ancestor) fills the rest with an update (§18.3).
    pub(crate) fn note_removals(&mut self, summary: &CommitSummary) {
        if summary.committer == self.me || !self.is_active() {
            return;
        }
        let Ok(members) = members_of(&self.mls) else {
            return;
        };
        for removed in &summary.removed_leaves {
            let closest = members.iter().min_by_key(|(leaf, _)| leaf.u32() ^ removed);
            if closest.is_some_and(|(_, who)| *who == self.me) {
                self.refill = true;
            }
        }
    }

    /// Commits the queued leave proposals (admins only); `None` if there are none.
    pub fn commit_pending(&mut self) -> Result<Option<CommitOut>, GroupError> {
        self.require_admin()?;
        if self.mls.pending_proposals().next().is_none() {
            return Ok(None);
        }
        self.commit(Vec::new(), Vec::new(), None).map(Some)
    }

    /// A proposal to remove this member, for every member; an admin's next commit carries it out.
    pub fn leave(&mut self) -> Result<Vec<u8>, GroupError> {
        if !self.is_active() {
            return Err(GroupError::NotMember);
        }
        let proposal = self
            .mls
            .leave_group(&self.provider, &self.signer)
            .map_err(GroupError::mls)?;
        serialize(&proposal)
    }

    /// Encrypts an application message for the current epoch, kept to be sent again after a rollback.
    pub fn send(&mut self, content: &Content) -> Result<Vec<u8>, GroupError> {
        let (bytes, plain) = self.encrypt_content(content)?;
        self.sent.push_back((self.epoch(), plain));
        while self.sent.len() > MAX_RESEND {
            self.sent.pop_front();
        }
        Ok(bytes)
    }

    /// Encrypts content that is not worth sending again after a rollback (a receipt, docs/protocol.md
    /// §18.10): like [`Self::send`], but kept out of the resend buffer.
    pub fn send_transient(&mut self, content: &Content) -> Result<Vec<u8>, GroupError> {
        self.encrypt_content(content).map(|(bytes, _)| bytes)
    }

    /// The application message for `content`, and the content's encoding.
    fn encrypt_content(
        &mut self,
        content: &Content,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), GroupError> {
        if !self.is_active() {
            return Err(GroupError::NotMember);
        }
        let plain = Zeroizing::new(
            content
                .encode()
                .map_err(|_| GroupError::Invalid("content"))?,
        );
        let bytes = self.encrypt(&plain)?;
        Ok((bytes, plain))
    }

    pub(crate) fn encrypt(&mut self, plain: &[u8]) -> Result<Vec<u8>, GroupError> {
        let message = self
            .mls
            .create_message(&self.provider, &self.signer, plain)
            .map_err(GroupError::mls)?;
        let bytes = serialize(&message)?;
        if bytes.len() > MAX_GROUP_MESSAGE_LEN {
            return Err(GroupError::TooLarge {
                what: "group message",
                len: bytes.len(),
                max: MAX_GROUP_MESSAGE_LEN,
            });
        }
        Ok(bytes)
    }

    /// Forgets own messages kept for re-sending after a rollback that have disappeared (their timer ran
    /// out, docs/protocol.md §12.4), so the state holds their text no longer. `true` if any was kept.
    pub fn forget_sent(&mut self, ids: &[MessageId]) -> bool {
        let before = self.sent.len();
        self.sent.retain(|(_, plain)| {
            Content::decode(plain).map_or(true, |content| !ids.contains(&content.id))
        });
        self.sent.len() != before
    }

    /// Forgets own messages sent before the oldest epoch a rollback can reach.
    pub(crate) fn prune_sent(&mut self) {
        if let Some(oldest) = self.history.front().map(|r| r.epoch) {
            self.sent.retain(|(epoch, _)| *epoch > oldest);
        }
    }
}
