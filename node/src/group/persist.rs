//! The group state's byte form, handed to the store, which seals it (`groups` table, §18.8). Never written
//! anywhere in the clear. Layout (local, version 1):
//!
//! ```text
//! u8 version || me[32] || vec8 group_id || vec8 signature_key || snapshot (the openmls storage of the group)
//! || count8 records: u64 epoch || snapshot || meta applied || count8 candidates: meta
//! || count16 sent: u64 epoch || vec32 content
//! || count16 seen: identity[32] || message id[16]
//! || count16 parked: vec32 message
//! meta = hash[32] || committer[32] || count16 removed: identity[32]
//! ```

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

const STATE_VERSION: u8 = 1;

fn encode_meta(w: &mut Writer, meta: &CommitMeta) {
    w.raw(&meta.hash).raw(meta.committer.as_bytes());
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

fn decode_meta(r: &mut Reader<'_>) -> Result<CommitMeta, GroupError> {
    let hash = r.array("commit hash").map_err(corrupt)?;
    let committer = identity(r)?;
    let count = r.count_u16("removed", MAX_GROUP_MEMBERS).map_err(corrupt)?;
    let removed = (0..count)
        .map(|_| identity(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CommitMeta {
        hash,
        committer,
        removed,
    })
}

impl Group {
    /// The whole state as bytes, for the store to seal.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(STATE_VERSION)
            .raw(self.me.as_bytes())
            .bytes_u8(self.id())
            .bytes_u8(self.signature_key());
        encode_snapshot(&mut w, &self.provider.snapshot());
        w.u8(u8::try_from(self.history.len()).unwrap_or(u8::MAX));
        for record in &self.history {
            w.u64(record.epoch);
            encode_snapshot(&mut w, &record.snapshot);
            encode_meta(&mut w, &record.applied);
            w.u8(u8::try_from(record.candidates.len()).unwrap_or(u8::MAX));
            for c in &record.candidates {
                encode_meta(&mut w, c);
            }
        }
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
        Zeroizing::new(w.into_vec())
    }

    /// Reads a state written by [`Group::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let mut r = Reader::bounded(bytes, "group state", MAX_GROUP_STATE_LEN).map_err(corrupt)?;
        if r.u8("version").map_err(corrupt)? != STATE_VERSION {
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
        let records = r.count_u8("records", ROLLBACK_EPOCHS).map_err(corrupt)?;
        for _ in 0..records {
            let epoch = r.u64("epoch").map_err(corrupt)?;
            let snapshot = decode_snapshot(&mut r)?;
            let applied = decode_meta(&mut r)?;
            let count = r.count_u8("candidates", MAX_CANDIDATES).map_err(corrupt)?;
            let candidates = (0..count)
                .map(|_| decode_meta(&mut r))
                .collect::<Result<Vec<_>, _>>()?;
            group.history.push_back(EpochRecord {
                epoch,
                snapshot,
                applied,
                candidates,
            });
        }
        let sent = r.count_u16("sent", MAX_RESEND).map_err(corrupt)?;
        for _ in 0..sent {
            let epoch = r.u64("sent epoch").map_err(corrupt)?;
            let plain = r
                .bytes_u32("sent content", MAX_GROUP_MESSAGE_LEN)
                .map_err(corrupt)?;
            group
                .sent
                .push_back((epoch, Zeroizing::new(plain.to_vec())));
        }
        let seen = r.count_u16("seen", MAX_SEEN_IDS).map_err(corrupt)?;
        for _ in 0..seen {
            let sender = identity(&mut r)?;
            let id = MessageId(r.array("message id").map_err(corrupt)?);
            group.remember((sender, id));
        }
        let parked = r.count_u16("parked", MAX_PARKED).map_err(corrupt)?;
        for _ in 0..parked {
            let bytes = r
                .bytes_u32("parked", MAX_GROUP_MESSAGE_LEN)
                .map_err(corrupt)?;
            group.parked.push_back(bytes.to_vec());
        }
        r.finish().map_err(corrupt)?;
        Ok(group)
    }
}
