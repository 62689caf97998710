//! Members' updates of their own path (docs/protocol.md §18.3): a member whose leaf is still the one its
//! KeyPackage made, or that a removal left to fill the removed leaf's blank nodes, commits an update after
//! a random delay ([`crate::config::GroupUpdates`]). A group whose members all did has a full tree, so a
//! removal encrypts to about log2(n) nodes instead of one per member, and each member's own leaf key is
//! new (post-compromise security for it). Updates show no line: nothing the user did changed.

use std::collections::HashMap;
use std::time::Instant;

use super::*;
use crate::config::GroupUpdates;

/// The updates waiting, by group (conversation key), and the policy that times them.
#[derive(Default)]
pub(super) struct Updates {
    pub(super) policy: GroupUpdates,
    due: HashMap<[u8; 32], Instant>,
}

impl Updates {
    /// When the next update is due.
    pub(super) fn next(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }
}

impl EventLoop {
    /// Whether this member owes the group `key` an update: its state wants one and it has not left.
    fn owes_update(&self, key: &[u8; 32]) -> bool {
        self.groups.by_conv.get(key).is_some_and(|group| {
            group.wants_update() && !self.groups.leaving.contains(&(*key, group.me()))
        })
    }

    /// Schedules the group `key`'s update if this member owes one and none is waiting; drops a waiting
    /// one it no longer owes (it committed a path meanwhile, or left). Runs at every save of the group,
    /// so the member count (a walk over every leaf) is read only when an update is scheduled.
    pub(super) fn schedule_group_update(&mut self, key: [u8; 32]) {
        if !self.owes_update(&key) {
            self.groups.updates.due.remove(&key);
            return;
        }
        if self.groups.updates.due.contains_key(&key) {
            return;
        }
        let members = (self.groups.by_conv.get(&key))
            .and_then(|group| group.members().ok())
            .map_or(0, |m| m.len());
        let updates = &mut self.groups.updates;
        if let Some(delay) = updates.policy.delay(members) {
            updates.due.insert(key, Instant::now() + delay);
        }
    }

    /// Commits the updates that are due.
    pub(super) fn run_group_updates(&mut self) {
        let now = Instant::now();
        let due: Vec<[u8; 32]> = (self.groups.updates.due.iter())
            .filter(|(_, at)| **at <= now)
            .map(|(key, _)| *key)
            .collect();
        for key in due {
            self.groups.updates.due.remove(&key);
            if !self.owes_update(&key) {
                continue;
            }
            let Some(group) = self.groups.by_conv.get_mut(&key) else {
                continue;
            };
            match group.update() {
                Ok(out) => match self.after_own_commit(key, out) {
                    Ok(_) => debug!("committed an update of this member's path"),
                    Err(e) => warn!(error = %e, "cannot store an update of this member's path"),
                },
                Err(e) => debug!(error = %e, "cannot commit an update of this member's path"),
            }
        }
    }
}
