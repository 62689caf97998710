//! The node's group bookkeeping (docs/protocol.md §18): the groups this profile is in, as loaded from the
//! store, and what the loop remembers beside them (copies seen, transfers arriving, adds waiting for a
//! KeyPackage, orphans, its own recent adds and removals).

use std::collections::{HashMap, HashSet, VecDeque};

use tern_protocol::group_wire;

use super::groups::{MAX_ORPHANS, MAX_PENDING_ADDS, MAX_SEEN_GROUP_MESSAGES, conv_key};
use super::*;
use crate::group::{Group, RestoredGroup};

/// The groups of this profile and the node's group bookkeeping.
#[derive(Default)]
pub(super) struct Groups {
    /// By conversation id ([`ConversationId::of_group`]).
    pub(super) by_conv: HashMap<[u8; 32], Group>,
    /// Groups restored from a backup and not rejoined yet (no MLS state; docs/protocol.md §20.5), by
    /// conversation id. A Welcome for one moves it to `by_conv`.
    pub(super) restored: HashMap<[u8; 32], RestoredGroup>,
    /// Transfers (Welcomes, group messages) whose parts are still arriving.
    pub(super) reassembly: group_wire::Reassembly,
    /// `(contact, group)`: an add waiting for the contact's KeyPackage, oldest first.
    pub(super) pending_adds: VecDeque<(IdentityKey, [u8; 32])>,
    seen: VecDeque<[u8; 32]>,
    seen_set: HashSet<[u8; 32]>,
    /// Group messages for groups not joined yet (see [`MAX_ORPHANS`]).
    pub(super) orphans: VecDeque<Vec<u8>>,
    /// Members seen asking to leave (their removal reads "left", not "removed"); at most
    /// [`MAX_PENDING_ADDS`], oldest forgotten.
    pub(super) leaving: VecDeque<([u8; 32], IdentityKey)>,
    /// Each group's name and admins as last reported, to word what a commit changed.
    pub(super) infos: HashMap<[u8; 32], crate::group::GroupInfo>,
    /// Members lately added back after a restore, to refuse a flood of rejoin requests.
    pub(super) rejoins: super::group_inbound::Rejoins,
    /// The groups' gossip topics and counters (`group_gossip.rs`).
    pub(super) gossip: super::group_gossip::Gossip,
    /// Receipts waiting to be sent to groups (`group_receipts.rs`).
    pub(super) receipts: super::group_receipts::PendingReceipts,
    /// Group links and join requests (`group_links.rs`).
    pub(super) links: super::group_links::Links,
    /// The adds and removals this node committed lately, made again if their commit loses a race
    /// (`group_inbound.rs`); at most [`MAX_PENDING_ADDS`], oldest forgotten.
    pub(super) own_changes: VecDeque<OwnChange>,
    /// Updates of this member's path waiting to be committed (`group_updates.rs`).
    pub(super) updates: super::group_updates::Updates,
}

/// One member added or removed by this node's own commit.
pub(super) struct OwnChange {
    pub(super) group: [u8; 32],
    pub(super) member: IdentityKey,
    pub(super) added: bool,
    /// The epoch the commit made.
    pub(super) epoch: u64,
}

impl Groups {
    /// Every group stored in the profile; a state that does not decode is skipped with a warning.
    pub(super) fn load(engine: &Engine) -> Self {
        let mut groups = Self::default();
        match engine.store().groups() {
            Ok(states) => {
                for state in states {
                    if RestoredGroup::is_restored(&state) {
                        match RestoredGroup::decode(&state) {
                            Ok(group) => {
                                groups.restored.insert(conv_key(&group.id), group);
                            }
                            Err(e) => {
                                warn!(error = %e, "a restored group does not decode; skipped")
                            }
                        }
                        continue;
                    }
                    let history = crate::group::stored_group_id(&state)
                        .map(|id| engine.store().group_history(id))
                        .transpose();
                    let history = match history {
                        Ok(history) => history.flatten(),
                        Err(e) => {
                            warn!(error = %e, "a group's rollback records cannot be read; skipped");
                            continue;
                        }
                    };
                    match Group::decode_with(&state, history.as_deref().map(|h| h.as_slice())) {
                        Ok(group) => {
                            groups.insert(group);
                        }
                        Err(e) => warn!(error = %e, "a stored group does not decode; skipped"),
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot read the stored groups"),
        }
        groups
    }

    pub(super) fn insert(&mut self, group: Group) -> [u8; 32] {
        let key = conv_key(group.id());
        if let Ok(info) = group.info() {
            self.infos.insert(key, info);
        }
        self.by_conv.insert(key, group);
        key
    }

    /// Remembers a message's hash; `false` if it was seen already.
    pub(super) fn first_sight(&mut self, bytes: &[u8]) -> bool {
        let hash = tern_protocol::crypto::sha256(&[bytes]);
        if !self.seen_set.insert(hash) {
            return false;
        }
        self.seen.push_back(hash);
        while self.seen.len() > MAX_SEEN_GROUP_MESSAGES {
            if let Some(old) = self.seen.pop_front() {
                self.seen_set.remove(&old);
            }
        }
        true
    }

    /// Forgets a message's hash (one refused on gossip may still come, whole, by a 1:1 session).
    pub(super) fn forget(&mut self, bytes: &[u8]) {
        let hash = tern_protocol::crypto::sha256(&[bytes]);
        if self.seen_set.remove(&hash) {
            self.seen.retain(|h| *h != hash);
        }
    }

    pub(super) fn note_leaving(&mut self, key: [u8; 32], who: IdentityKey) {
        self.leaving.push_back((key, who));
        while self.leaving.len() > MAX_PENDING_ADDS {
            self.leaving.pop_front();
        }
    }

    pub(super) fn park_orphan(&mut self, bytes: Vec<u8>) {
        self.orphans.push_back(bytes);
        while self.orphans.len() > MAX_ORPHANS {
            self.orphans.pop_front();
        }
    }
}
