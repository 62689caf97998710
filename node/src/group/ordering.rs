//! The commit-ordering rule of §18.5: which of several valid commits for one epoch wins, and what a member
//! remembers per epoch to roll back onto a later-arriving winner.

use std::collections::VecDeque;

use tern_protocol::IdentityKey;

use super::provider::Snapshot;
use super::{MAX_CANDIDATES, ROLLBACK_EPOCHS};

/// What the rule needs to know about one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitMeta {
    /// SHA-256 of the commit's `MLSMessage` bytes.
    pub(crate) hash: [u8; 32],
    pub(crate) committer: IdentityKey,
    /// The identities this commit removes.
    pub(crate) removed: Vec<IdentityKey>,
    /// An update of the committer's own path, with no proposal (§18.3).
    pub(crate) update: bool,
}

/// One epoch this member can still roll back over.
pub(crate) struct EpochRecord {
    /// The epoch the commits below are for.
    pub(crate) epoch: u64,
    /// The group's storage just before the applied commit was merged.
    pub(crate) snapshot: Snapshot,
    /// The commit this member applied for `epoch`.
    pub(crate) applied: CommitMeta,
    /// Valid commits for `epoch` that lost to `applied`.
    pub(crate) candidates: Vec<CommitMeta>,
}

/// The winner among `set` (non-empty): among commits whose committer no other committer's commit removes
/// (all of them if that leaves none), a commit with proposals before an update, then the lowest hash.
pub(crate) fn winner(set: &[CommitMeta]) -> Option<&CommitMeta> {
    let removed_by_other = |c: &CommitMeta| {
        set.iter()
            .any(|other| other.committer != c.committer && other.removed.contains(&c.committer))
    };
    let rank = |c: &&CommitMeta| (c.update, c.hash);
    set.iter()
        .filter(|c| !removed_by_other(c))
        .min_by_key(rank)
        .or_else(|| set.iter().min_by_key(rank))
}

/// Whether some other committer's commit in `set` removes `c`'s committer.
pub(crate) fn committer_removed(set: &[CommitMeta], c: &CommitMeta) -> bool {
    set.iter()
        .any(|other| other.committer != c.committer && other.removed.contains(&c.committer))
}

/// Appends a record, forgetting the oldest past [`ROLLBACK_EPOCHS`].
pub(crate) fn push_record(history: &mut VecDeque<EpochRecord>, record: EpochRecord) {
    history.push_back(record);
    while history.len() > ROLLBACK_EPOCHS {
        history.pop_front();
    }
}

/// Remembers a losing commit, forgetting the oldest past [`MAX_CANDIDATES`].
pub(crate) fn push_candidate(record: &mut EpochRecord, meta: CommitMeta) {
    record.candidates.push(meta);
    while record.candidates.len() > MAX_CANDIDATES {
        record.candidates.remove(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> IdentityKey {
        let identity = tern_protocol::Identity::generate(
            &mut <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(
                u64::from(seed),
            ),
            0,
        );
        identity.key()
    }

    fn meta(hash: u8, committer: &IdentityKey, removed: &[IdentityKey]) -> CommitMeta {
        CommitMeta {
            hash: [hash; 32],
            committer: *committer,
            removed: removed.to_vec(),
            update: false,
        }
    }

    fn update(hash: u8, committer: &IdentityKey) -> CommitMeta {
        CommitMeta {
            update: true,
            ..meta(hash, committer, &[])
        }
    }

    #[test]
    fn a_commit_with_proposals_beats_an_update_whatever_the_hashes() {
        let (a, b, c) = (key(1), key(2), key(3));
        // The admin's rename (hash 9) against two members' updates (hashes 1 and 2).
        let set = [update(1, &b), meta(9, &a, &[]), update(2, &c)];
        assert_eq!(winner(&set).unwrap().committer, a);
        // Updates alone: the lowest hash.
        let set = [update(5, &b), update(2, &c)];
        assert_eq!(winner(&set).unwrap().committer, c);
        // A removal of the updater beats its update, and the update's committer counts as removed.
        let set = [update(1, &b), meta(9, &a, &[b])];
        assert_eq!(winner(&set).unwrap().committer, a);
        assert!(committer_removed(&set, &set[0]));
    }

    #[test]
    fn lowest_hash_wins_whatever_the_order() {
        let (a, b, c) = (key(1), key(2), key(3));
        let set = [meta(9, &a, &[]), meta(3, &b, &[]), meta(5, &c, &[])];
        assert_eq!(winner(&set).unwrap().hash, [3; 32]);
        let mut reversed = set.clone();
        reversed.reverse();
        assert_eq!(winner(&reversed).unwrap().hash, [3; 32]);
    }

    #[test]
    fn a_commit_removing_the_other_committer_wins() {
        let (a, b) = (key(1), key(2));
        // b's commit has the lower hash, but a's removes b.
        let set = [meta(9, &a, &[b]), meta(1, &b, &[])];
        assert_eq!(winner(&set).unwrap().committer, a);
        assert!(committer_removed(&set, &set[1]));
        // Mutual removal: the hash decides.
        let set = [meta(9, &a, &[b]), meta(1, &b, &[a])];
        assert_eq!(winner(&set).unwrap().committer, b);
    }
}
