//! The group state's byte form, handed to the store, which seals it (`groups` and `group_history` tables,
//! §18.8). Never written anywhere in the clear. Layouts (local):
//!
//! ```text
//! state, version 2 (the node writes it after every change):
//!   u8 2 || me[32] || vec8 group_id || vec8 signature_key || snapshot (the openmls storage of the group)
//!   || tail
//! history, version 33 (the node writes it only when the rollback records changed, at commits):
//!   u8 33 || me[32] || vec8 group_id || records (with meta_v33)
//! history, version 32 (written before member updates, still read: every commit in it has proposals):
//!   u8 32 || me[32] || vec8 group_id || records
//! state, version 1 (the history inline; written before the split, still read, and what `encode` gives):
//!   u8 1 || me[32] || vec8 group_id || vec8 signature_key || snapshot || records || tail
//! records = count8: u64 epoch || snapshot || meta applied || count8 candidates: meta
//! tail = count16 sent: u64 epoch || vec32 content
//!   || count16 seen: identity[32] || message id[16]
//!   || count16 parked: vec32 message
//! meta = hash[32] || committer[32] || count16 removed: identity[32]
//! meta_v33 = hash[32] || committer[32] || u8 kind (0 proposals, 1 update) || count16 removed: identity[32]
//! ```
//!
//! The records hold `ROLLBACK_EPOCHS` whole copies of the MLS storage, so keeping them out of the row that
//! every message rewrites divides the bytes sealed and written per message by up to `1 + ROLLBACK_EPOCHS`.

use openmls::prelude::{GroupId, MlsGroup};
use tern_protocol::IdentityKey;
use tern_protocol::MessageId;
use tern_protocol::codec::{Reader, Writer};
use zeroize::Zeroizing;

use super::ordering::{CommitMeta, EpochRecord};
use super::provider::{Provider, decode_snapshot, encode_snapshot};
use super::state::Group;
use super::{
    GroupError, MAX_CANDIDATES, MAX_GROUP_MEMBERS, MAX_GROUP_MESSAGE_LEN, MAX_GROUP_STATE_LEN,
    MAX_PARKED, MAX_RESEND, MAX_SEEN_IDS, ROLLBACK_EPOCHS,
};

/// A state with its rollback records inline.
const STATE_VERSION_WHOLE: u8 = 1;
/// A state whose rollback records live in their own row.
const STATE_VERSION: u8 = 2;
/// The rollback records' own row, each commit's kind in it.
const HISTORY_VERSION: u8 = 33;
/// The rollback records' own row before member updates.
const HISTORY_VERSION_NO_KIND: u8 = 32;

/// The group id of a state or history row (both start `u8 version || me[32] || vec8 group_id`).
pub fn stored_group_id(row: &[u8]) -> Option<&[u8]> {
    let len = usize::from(*row.get(33)?);
    row.get(34..34 + len)
}

/// Whether a record's commits carry their kind (`meta_v33`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kinds {
    Written,
    Absent,
}

fn encode_meta(w: &mut Writer, meta: &CommitMeta, kinds: Kinds) {
    w.raw(&meta.hash).raw(meta.committer.as_bytes());
    if kinds == Kinds::Written {
        w.u8(u8::from(meta.update));
    }
    w.u16(u16::try_from(meta.removed.len()).unwrap_or(u16::MAX));
    for id in &meta.removed {
        w.raw(id.as_bytes());
    }
}

fn corrupt<E>(_: E) -> GroupError {
    GroupError::Corrupt("group state")
}

fn identity(r: &mut Reader<'_>) -> Result<IdentityKey, GroupError> {
    IdentityKey::from_bytes(r.array("identity").map_err(corrupt)?).map_err(corrupt)
}

fn decode_meta(r: &mut Reader<'_>, kinds: Kinds) -> Result<CommitMeta, GroupError> {
    let hash = r.array("commit hash").map_err(corrupt)?;
    let committer = identity(r)?;
    let update = match kinds {
        Kinds::Absent => false,
        Kinds::Written => match r.u8("commit kind").map_err(corrupt)? {
            0 => false,
            1 => true,
            _ => return Err(GroupError::Corrupt("commit kind")),
        },
    };
    let count = r.count_u16("removed", MAX_GROUP_MEMBERS).map_err(corrupt)?;
    let removed = (0..count)
        .map(|_| identity(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CommitMeta {
        hash,
        committer,
        removed,
        update,
    })
}

impl Group {
    fn encode_head(&self, w: &mut Writer, version: u8) {
        w.u8(version)
            .raw(self.me.as_bytes())
            .bytes_u8(self.id())
            .bytes_u8(self.signature_key());
        encode_snapshot(w, &self.provider.snapshot());
    }

    fn encode_records(&self, w: &mut Writer, kinds: Kinds) {
        w.u8(u8::try_from(self.history.len()).unwrap_or(u8::MAX));
        for record in &self.history {
            w.u64(record.epoch);
            encode_snapshot(w, &record.snapshot);
            encode_meta(w, &record.applied, kinds);
            w.u8(u8::try_from(record.candidates.len()).unwrap_or(u8::MAX));
            for c in &record.candidates {
                encode_meta(w, c, kinds);
            }
        }
    }

    fn encode_tail(&self, w: &mut Writer) {
        w.u16(u16::try_from(self.sent.len()).unwrap_or(u16::MAX));
        for (epoch, plain) in &self.sent {
            w.u64(*epoch).bytes_u32(plain);
        }
        w.u16(u16::try_from(self.seen.len()).unwrap_or(u16::MAX));
        for (sender, id) in &self.seen {
            w.raw(sender.as_bytes()).raw(&id.0);
        }
        w.u16(u16::try_from(self.parked.len()).unwrap_or(u16::MAX));
        for bytes in &self.parked {
            w.bytes_u32(bytes);
        }
    }

    /// The whole state as one value, its rollback records inline (version 1).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        self.encode_head(&mut w, STATE_VERSION_WHOLE);
        self.encode_records(&mut w, Kinds::Absent);
        self.encode_tail(&mut w);
        Zeroizing::new(w.into_vec())
    }

    /// The state without its rollback records (version 2), for the row every change rewrites; the records
    /// go to [`Group::encode_history`]'s row.
    pub fn encode_state(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        self.encode_head(&mut w, STATE_VERSION);
        self.encode_tail(&mut w);
        Zeroizing::new(w.into_vec())
    }

    /// The rollback records alone, for their own row.
    pub fn encode_history(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(HISTORY_VERSION)
            .raw(self.me.as_bytes())
            .bytes_u8(self.id());
        self.encode_records(&mut w, Kinds::Written);
        Zeroizing::new(w.into_vec())
    }

    /// A digest of the rollback records without their snapshots: each record's snapshot is fixed when
    /// it is made, so the epochs and the commits' hashes tell every change apart.
    fn history_mark(&self) -> [u8; 32] {
        let mut w = Writer::new();
        for record in &self.history {
            w.u64(record.epoch).raw(&record.applied.hash);
            w.u8(u8::try_from(record.candidates.len()).unwrap_or(u8::MAX));
            for c in &record.candidates {
                w.raw(&c.hash);
            }
        }
        tern_protocol::crypto::sha256(&[&w.into_vec()])
    }

    /// Whether the rollback records changed since their row was last written (so it must be written).
    pub fn history_unsaved(&self) -> bool {
        self.history_saved != Some(self.history_mark())
    }

    /// Notes that the row of [`Group::encode_history`] now holds the current records.
    pub fn history_written(&mut self) {
        self.history_saved = Some(self.history_mark());
    }

    /// Reads a state written by [`Group::encode`] (the records inline) or [`Group::encode_state`] (no
    /// records: the group then has none).
    pub fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        Self::decode_with(bytes, None)
    }

    /// Reads a state row and, for a version 2 state, its history row (`None`: no records). A version 1
    /// state holds its records itself, and `history` is not read; the group then counts its records as
    /// unsaved, so the next write moves them to their own row.
    pub fn decode_with(bytes: &[u8], history: Option<&[u8]>) -> Result<Self, GroupError> {
        let mut r = Reader::bounded(bytes, "group state", MAX_GROUP_STATE_LEN).map_err(corrupt)?;
        let version = r.u8("version").map_err(corrupt)?;
        if version != STATE_VERSION && version != STATE_VERSION_WHOLE {
            return Err(GroupError::Corrupt("group state version"));
        }
        let me = identity(&mut r)?;
        let id = r.bytes_u8("group id", 255).map_err(corrupt)?.to_vec();
        let signature_key = r.bytes_u8("signature key", 64).map_err(corrupt)?.to_vec();
        let provider = Provider::from_snapshot(&decode_snapshot(&mut r)?);
        let mls = MlsGroup::load(
            openmls_traits::OpenMlsProvider::storage(&provider),
            &GroupId::from_slice(&id),
        )
        .map_err(corrupt)?
        .ok_or(GroupError::Corrupt("group missing"))?;
        let mut group = Self::from_parts(provider, mls, me, &signature_key)?;
        if version == STATE_VERSION_WHOLE {
            group.decode_records(&mut r, Kinds::Absent)?;
        }
        group.decode_tail(&mut r)?;
        r.finish().map_err(corrupt)?;
        if version == STATE_VERSION {
            if let Some(history) = history {
                let mut r = Reader::bounded(history, "group history", MAX_GROUP_STATE_LEN)
                    .map_err(corrupt)?;
                let kinds = match r.u8("version").map_err(corrupt)? {
                    HISTORY_VERSION => Kinds::Written,
                    HISTORY_VERSION_NO_KIND => Kinds::Absent,
                    _ => return Err(GroupError::Corrupt("group history version")),
                };
                if identity(&mut r)? != me
                    || r.bytes_u8("group id", 255).map_err(corrupt)? != id.as_slice()
                {
                    return Err(GroupError::Corrupt("group history of another group"));
                }
                group.decode_records(&mut r, kinds)?;
                r.finish().map_err(corrupt)?;
            }
            group.history_written();
        }
        Ok(group)
    }

    fn decode_records(&mut self, r: &mut Reader<'_>, kinds: Kinds) -> Result<(), GroupError> {
        let records = r.count_u8("records", ROLLBACK_EPOCHS).map_err(corrupt)?;
        for _ in 0..records {
            let epoch = r.u64("epoch").map_err(corrupt)?;
            let snapshot = decode_snapshot(r)?;
            let applied = decode_meta(r, kinds)?;
            let count = r.count_u8("candidates", MAX_CANDIDATES).map_err(corrupt)?;
            let candidates = (0..count)
                .map(|_| decode_meta(r, kinds))
                .collect::<Result<Vec<_>, _>>()?;
            self.history.push_back(EpochRecord {
                epoch,
                snapshot,
                applied,
                candidates,
            });
        }
        Ok(())
    }

    fn decode_tail(&mut self, r: &mut Reader<'_>) -> Result<(), GroupError> {
        let sent = r.count_u16("sent", MAX_RESEND).map_err(corrupt)?;
        for _ in 0..sent {
            let epoch = r.u64("sent epoch").map_err(corrupt)?;
            let plain = r
                .bytes_u32("sent content", MAX_GROUP_MESSAGE_LEN)
                .map_err(corrupt)?;
            self.sent.push_back((epoch, Zeroizing::new(plain.to_vec())));
        }
        let seen = r.count_u16("seen", MAX_SEEN_IDS).map_err(corrupt)?;
        for _ in 0..seen {
            let sender = identity(r)?;
            let id = MessageId(r.array("message id").map_err(corrupt)?);
            self.remember((sender, id));
        }
        let parked = r.count_u16("parked", MAX_PARKED).map_err(corrupt)?;
        for _ in 0..parked {
            let bytes = r
                .bytes_u32("parked", MAX_GROUP_MESSAGE_LEN)
                .map_err(corrupt)?;
            self.parked.push_back(bytes.to_vec());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alice's group with Bob, after Alice's add and rename and Bob's update: (Alice's, Bob's).
    fn with_an_update() -> (Group, Group) {
        let (mut group, mut bobs) = super::super::check::tests::alice_and_bob();
        let rename = group.rename("Climbers").unwrap();
        bobs.process(&rename.commit).unwrap();
        let update = bobs.update().unwrap();
        group.process(&update.commit).unwrap();
        (group, bobs)
    }

    fn kinds(group: &Group) -> Vec<bool> {
        group.history.iter().map(|r| r.applied.update).collect()
    }

    #[test]
    fn the_history_row_keeps_which_commits_were_updates() {
        let (alice, bob) = with_an_update();
        assert_eq!(kinds(&alice), vec![false, false, true]);
        for group in [alice, bob] {
            let (state, history) = (group.encode_state(), group.encode_history());
            assert_eq!(history[0], HISTORY_VERSION);
            let back = Group::decode_with(&state, Some(&history)).unwrap();
            assert_eq!(kinds(&back), kinds(&group));
            assert!(!back.history_unsaved());
        }
    }

    #[test]
    fn a_version_32_history_row_still_reads_and_an_unknown_kind_is_corrupt() {
        let (alice, _) = with_an_update();
        // The row as builds before updates wrote it: version 32, no kind byte.
        let mut w = Writer::new();
        w.u8(HISTORY_VERSION_NO_KIND)
            .raw(alice.me.as_bytes())
            .bytes_u8(alice.id());
        alice.encode_records(&mut w, Kinds::Absent);
        let old = w.into_vec();
        let back = Group::decode_with(&alice.encode_state(), Some(&old)).unwrap();
        assert_eq!(back.history.len(), alice.history.len());
        assert_eq!(
            kinds(&back),
            vec![false; 3],
            "no kind: a commit with proposals"
        );
        assert_eq!(back.history[2].applied.hash, alice.history[2].applied.hash);

        // A kind byte that is neither 0 nor 1: the last record's applied commit has no candidates and
        // removed nobody, so its kind byte sits 1 + 2 + 1 bytes (kind, removed count, candidates count)
        // before the end.
        let mut bad = alice.encode_history().to_vec();
        let at = bad.len() - 4;
        assert_eq!(bad[at], 1, "the update's kind");
        bad[at] = 2;
        assert_eq!(
            Group::decode_with(&alice.encode_state(), Some(&bad)).unwrap_err(),
            GroupError::Corrupt("commit kind")
        );
    }
}
