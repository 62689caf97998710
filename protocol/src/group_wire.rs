//! What groups put inside 1:1 sessions (docs/protocol.md §18.4): the bodies of content kinds 0x0100–0x0102
//! (KeyPackage request, KeyPackages, transfer part), the splitting of a Welcome or a group message into
//! transfer parts, and their bounded reassembly. Until a node handles them, these kinds travel and arrive as
//! [`crate::Body::Unknown`] with the kind numbers below, which older peers ignore (§12.2).

use rand_core::CryptoRng;

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::IdentityKey;

/// Content kind: a request for KeyPackages.
pub const KIND_KEY_PACKAGE_REQUEST: u16 = 0x0100;
/// Content kind: KeyPackages.
pub const KIND_KEY_PACKAGES: u16 = 0x0101;
/// Content kind: one part of a Welcome or a group message.
pub const KIND_TRANSFER_PART: u16 = 0x0102;
/// Content kind: a copy restored from a backup asks an admin to add it back to a group (§20.5).
pub const KIND_REJOIN_REQUEST: u16 = 0x0103;
/// Longest MLS group id a rejoin request names.
pub const MAX_GROUP_ID_LEN: usize = 255;

const VERSION: u8 = 1;
/// At most this many KeyPackages are asked for or sent at once.
pub const MAX_KEY_PACKAGES_PER_REQUEST: usize = 4;
/// Longest encoded KeyPackage (`MLSMessage`).
pub const MAX_KEY_PACKAGE_LEN: usize = 4096;
/// Most parts of one transfer.
pub const MAX_TRANSFER_PARTS: usize = 64;
/// Longest chunk in one part (fits `MAX_CONTENT_LEN` with its headers).
pub const MAX_CHUNK_LEN: usize = 45_000;
/// Longest Welcome.
pub const MAX_WELCOME_LEN: usize = 2 * 1024 * 1024;
/// Longest group message (`MLSMessage` of any kind).
pub const MAX_GROUP_MESSAGE_LEN: usize = 256 * 1024;
/// The id of a group's conversation (docs/protocol.md §18.9): `SHA-256("tern/group/conversation/v1" ||
/// MLS group id)`.
pub fn conversation_id(mls_group_id: &[u8]) -> [u8; 32] {
    crate::crypto::sha256(&[b"tern/group/conversation/v1", mls_group_id])
}

/// Whether a content kind is one of the group range (0x0100-0x01ff), for the node's groups.
pub fn is_group_kind(kind: u16) -> bool {
    (0x0100..=0x01ff).contains(&kind)
}

/// Incomplete transfers kept per node; past it the oldest is dropped.
pub const MAX_PENDING_TRANSFERS: usize = 8;
/// An incomplete transfer is dropped this long after its first part.
pub const TRANSFER_TTL_MS: u64 = 24 * 3600 * 1000;

/// What a transfer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// A Welcome (`what` = 1).
    Welcome,
    /// A group message (`what` = 2).
    GroupMessage,
}

impl TransferKind {
    fn byte(self) -> u8 {
        match self {
            Self::Welcome => 1,
            Self::GroupMessage => 2,
        }
    }

    fn max_len(self) -> usize {
        match self {
            Self::Welcome => MAX_WELCOME_LEN,
            Self::GroupMessage => MAX_GROUP_MESSAGE_LEN,
        }
    }
}

/// Reads a group body's version byte (1); the same for every body of §18.4 and §18.11.
pub(crate) fn version(r: &mut Reader<'_>, what: &'static str) -> Result<(), DecodeError> {
    match r.u8("version")? {
        VERSION => Ok(()),
        got => Err(DecodeError::UnsupportedVersion {
            what,
            got,
            supported: VERSION,
        }),
    }
}

/// Kind 0x0100: `u8 version || u8 count`, count 1..=[`MAX_KEY_PACKAGES_PER_REQUEST`].
pub fn encode_key_package_request(count: u8) -> Result<Vec<u8>, DecodeError> {
    check_request_count(usize::from(count))?;
    Ok(vec![VERSION, count])
}

fn check_request_count(count: usize) -> Result<(), DecodeError> {
    if count == 0 {
        return Err(DecodeError::Invalid {
            field: "key package count",
            reason: "zero",
        });
    }
    if count > MAX_KEY_PACKAGES_PER_REQUEST {
        return Err(DecodeError::TooMany {
            field: "key packages",
            count,
            max: MAX_KEY_PACKAGES_PER_REQUEST,
        });
    }
    Ok(())
}

pub fn decode_key_package_request(body: &[u8]) -> Result<u8, DecodeError> {
    let mut r = Reader::new(body);
    version(&mut r, "key package request")?;
    let count = r.u8("key package count")?;
    r.finish()?;
    check_request_count(usize::from(count))?;
    Ok(count)
}

/// Kind 0x0103: `u8 version || vec8 group_id` (1..=[`MAX_GROUP_ID_LEN`] bytes): the MLS group id of the group
/// the sender asks to be added back to.
pub fn encode_rejoin_request(group_id: &[u8]) -> Result<Vec<u8>, DecodeError> {
    check_group_id(group_id)?;
    let mut w = Writer::new();
    w.u8(VERSION).bytes_u8(group_id);
    Ok(w.into_vec())
}

pub fn decode_rejoin_request(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut r = Reader::new(body);
    version(&mut r, "rejoin request")?;
    let id = r.bytes_u8("group id", MAX_GROUP_ID_LEN)?.to_vec();
    r.finish()?;
    check_group_id(&id)?;
    Ok(id)
}

fn check_group_id(id: &[u8]) -> Result<(), DecodeError> {
    if id.is_empty() {
        return Err(DecodeError::Invalid {
            field: "group id",
            reason: "empty",
        });
    }
    crate::codec::check_len("group id", id.len(), MAX_GROUP_ID_LEN)
}

/// Kind 0x0101: `u8 version || count8<4> × vec16<4096>`.
pub fn encode_key_packages(packages: &[Vec<u8>]) -> Result<Vec<u8>, DecodeError> {
    check_request_count(packages.len())?;
    let mut w = Writer::new();
    w.u8(VERSION)
        .u8(u8::try_from(packages.len()).unwrap_or(u8::MAX));
    for p in packages {
        crate::codec::check_len("key package", p.len(), MAX_KEY_PACKAGE_LEN)?;
        w.bytes_u16(p);
    }
    Ok(w.into_vec())
}

pub fn decode_key_packages(body: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut r = Reader::new(body);
    version(&mut r, "key packages")?;
    let count = r.count_u8("key packages", MAX_KEY_PACKAGES_PER_REQUEST)?;
    check_request_count(count)?;
    let packages = (0..count)
        .map(|_| Ok(r.bytes_u16("key package", MAX_KEY_PACKAGE_LEN)?.to_vec()))
        .collect::<Result<Vec<_>, DecodeError>>()?;
    r.finish()?;
    Ok(packages)
}

/// Kind 0x0102: one part of a transfer.
#[derive(Clone, PartialEq, Eq)]
pub struct TransferPart {
    pub kind: TransferKind,
    pub transfer_id: [u8; 16],
    pub index: u16,
    pub count: u16,
    pub chunk: Vec<u8>,
}

impl std::fmt::Debug for TransferPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TransferPart({:?} {}/{} of {:02x?}, {} bytes)",
            self.kind,
            self.index,
            self.count,
            &self.transfer_id[..4],
            self.chunk.len()
        )
    }
}

impl TransferPart {
    /// `u8 version || u8 what || transfer_id[16] || u16 index || u16 count || vec32 chunk`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(25 + self.chunk.len());
        w.u8(VERSION)
            .u8(self.kind.byte())
            .raw(&self.transfer_id)
            .u16(self.index)
            .u16(self.count)
            .bytes_u32(&self.chunk);
        w.into_vec()
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        version(&mut r, "transfer part")?;
        let kind = match r.u8("transfer kind")? {
            1 => TransferKind::Welcome,
            2 => TransferKind::GroupMessage,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "transfer kind",
                    reason: "not 1 or 2",
                });
            }
        };
        let transfer_id = r.array("transfer id")?;
        let index = r.u16("part index")?;
        let count = r.u16("part count")?;
        if count == 0 || usize::from(count) > MAX_TRANSFER_PARTS || index >= count {
            return Err(DecodeError::Invalid {
                field: "transfer part",
                reason: "index or count out of range",
            });
        }
        let chunk = r.bytes_u32("transfer chunk", MAX_CHUNK_LEN)?.to_vec();
        r.finish()?;
        Ok(Self {
            kind,
            transfer_id,
            index,
            count,
            chunk,
        })
    }
}

/// Splits `bytes` into the parts of one transfer with a random id.
pub fn split<R: CryptoRng + ?Sized>(
    kind: TransferKind,
    bytes: &[u8],
    rng: &mut R,
) -> Result<Vec<TransferPart>, DecodeError> {
    crate::codec::check_len("transfer", bytes.len(), kind.max_len())?;
    let mut transfer_id = [0u8; 16];
    rng.fill_bytes(&mut transfer_id);
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[]]
    } else {
        bytes.chunks(MAX_CHUNK_LEN).collect()
    };
    let count = u16::try_from(chunks.len()).unwrap_or(u16::MAX);
    crate::codec::check_count("transfer parts", chunks.len(), MAX_TRANSFER_PARTS)?;
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| TransferPart {
            kind,
            transfer_id,
            index: u16::try_from(i).unwrap_or(u16::MAX),
            count,
            chunk: chunk.to_vec(),
        })
        .collect())
}

struct Pending {
    from: IdentityKey,
    kind: TransferKind,
    transfer_id: [u8; 16],
    parts: Vec<Option<Vec<u8>>>,
    bytes: usize,
    started_ms: u64,
}

/// Reassembles transfers from their parts, whatever order they come in; bounded by
/// [`MAX_PENDING_TRANSFERS`], [`TRANSFER_TTL_MS`] and each kind's length. Sans-I/O: time comes in.
#[derive(Default)]
pub struct Reassembly {
    pending: Vec<Pending>,
}

impl std::fmt::Debug for Reassembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembly")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Reassembly {
    /// Takes one part from `from` at `now_ms`; returns the whole transfer once its last part arrived.
    /// A part that disagrees with the others of its transfer (kind, count) or overflows the bound drops
    /// the transfer with the error.
    pub fn handle(
        &mut self,
        from: IdentityKey,
        part: TransferPart,
        now_ms: u64,
    ) -> Result<Option<(TransferKind, Vec<u8>)>, DecodeError> {
        self.pending
            .retain(|p| now_ms.saturating_sub(p.started_ms) < TRANSFER_TTL_MS);
        let position = self
            .pending
            .iter()
            .position(|p| p.from == from && p.transfer_id == part.transfer_id);
        let index = match position {
            Some(i) => i,
            None => {
                if self.pending.len() >= MAX_PENDING_TRANSFERS {
                    self.pending.remove(0);
                }
                self.pending.push(Pending {
                    from,
                    kind: part.kind,
                    transfer_id: part.transfer_id,
                    parts: vec![None; usize::from(part.count)],
                    bytes: 0,
                    started_ms: now_ms,
                });
                self.pending.len() - 1
            }
        };
        let pending = &mut self.pending[index];
        if pending.kind != part.kind || pending.parts.len() != usize::from(part.count) {
            self.pending.remove(index);
            return Err(DecodeError::Invalid {
                field: "transfer part",
                reason: "disagrees with the transfer's other parts",
            });
        }
        let slot = &mut pending.parts[usize::from(part.index)];
        if slot.is_none() {
            pending.bytes += part.chunk.len();
            *slot = Some(part.chunk);
        }
        if pending.bytes > pending.kind.max_len() {
            let (len, max) = (pending.bytes, pending.kind.max_len());
            self.pending.remove(index);
            return Err(DecodeError::TooLong {
                field: "transfer",
                len,
                max,
            });
        }
        if pending.parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        let done = self.pending.remove(index);
        let bytes = done.parts.into_iter().flatten().flatten().collect();
        Ok(Some((done.kind, bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn who(seed: u64) -> IdentityKey {
        crate::Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
    }

    #[test]
    fn requests_and_key_packages_round_trip_and_are_bounded() {
        assert_eq!(
            decode_key_package_request(&encode_key_package_request(2).unwrap()).unwrap(),
            2
        );
        assert!(encode_key_package_request(0).is_err());
        assert!(decode_key_package_request(&[1, 5]).is_err());
        assert!(decode_key_package_request(&[2, 1]).is_err());
        assert!(decode_key_package_request(&[1, 1, 0]).is_err());
        let kps = vec![vec![7u8; 300], vec![8u8; 4096]];
        assert_eq!(
            decode_key_packages(&encode_key_packages(&kps).unwrap()).unwrap(),
            kps
        );
        assert!(encode_key_packages(&[vec![0; 4097]]).is_err());
        assert!(decode_key_packages(&[1, 0]).is_err());
        let mut long = encode_key_packages(&kps).unwrap();
        long.push(0);
        assert!(decode_key_packages(&long).is_err());
    }

    #[test]
    fn a_rejoin_request_names_one_group_id_and_nothing_else() {
        let id = vec![9u8; 16];
        assert_eq!(
            decode_rejoin_request(&encode_rejoin_request(&id).unwrap()).unwrap(),
            id
        );
        assert!(encode_rejoin_request(&[]).is_err());
        assert!(encode_rejoin_request(&[0; 256]).is_err());
        assert!(decode_rejoin_request(&[1, 0]).is_err(), "an empty id");
        assert!(
            decode_rejoin_request(&[2, 1, 9]).is_err(),
            "another version"
        );
        assert!(decode_rejoin_request(&[1, 2, 9]).is_err(), "cut short");
        assert!(
            decode_rejoin_request(&[1, 1, 9, 0]).is_err(),
            "trailing bytes"
        );
    }

    #[test]
    fn a_welcome_split_and_shuffled_reassembles_once() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let welcome: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut parts = split(TransferKind::Welcome, &welcome, &mut rng).unwrap();
        assert_eq!(parts.len(), 5);
        parts.reverse();
        let mut r = Reassembly::default();
        let alice = who(1);
        let last = parts.pop().unwrap();
        for p in parts.clone() {
            let p = TransferPart::decode(&p.encode()).unwrap();
            assert_eq!(r.handle(alice, p, 0).unwrap(), None);
        }
        // A repeated part changes nothing.
        assert_eq!(r.handle(alice, parts[0].clone(), 0).unwrap(), None);
        let (kind, bytes) = r.handle(alice, last, 0).unwrap().unwrap();
        assert_eq!((kind, bytes), (TransferKind::Welcome, welcome));
        assert_eq!(format!("{r:?}"), "Reassembly { pending: 0 }");
    }

    #[test]
    fn hostile_parts_are_refused_and_state_stays_bounded() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        assert!(
            split(
                TransferKind::GroupMessage,
                &vec![0; MAX_GROUP_MESSAGE_LEN + 1],
                &mut rng
            )
            .is_err()
        );
        let part = |id: u8, index: u16, count: u16| TransferPart {
            kind: TransferKind::GroupMessage,
            transfer_id: [id; 16],
            index,
            count,
            chunk: vec![0; MAX_CHUNK_LEN],
        };
        // Index past count, zero count, too many parts, bad kind: refused by the decoder.
        for bad in [part(1, 3, 3), part(1, 0, 0), part(1, 0, 65)] {
            assert!(TransferPart::decode(&bad.encode()).is_err());
        }
        let mut bytes = part(1, 0, 1).encode();
        bytes[1] = 3;
        assert!(TransferPart::decode(&bytes).is_err());
        // A group message of 7 full chunks overflows its 256 KiB bound.
        let mut r = Reassembly::default();
        let bob = who(2);
        let mut result = Ok(None);
        for i in 0..7 {
            result = r.handle(bob, part(9, i, 8), 0);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(DecodeError::TooLong { .. })));
        // A part whose count disagrees drops the transfer.
        r.handle(bob, part(4, 0, 2), 0).unwrap();
        assert!(r.handle(bob, part(4, 1, 3), 0).is_err());
        // Many open transfers: at most MAX_PENDING_TRANSFERS kept; old ones expire.
        for id in 0..20u8 {
            r.handle(bob, part(id, 0, 2), 0).unwrap();
        }
        assert_eq!(r.pending.len(), MAX_PENDING_TRANSFERS);
        r.handle(bob, part(100, 0, 2), TRANSFER_TTL_MS).unwrap();
        assert_eq!(r.pending.len(), 1);
        // Two senders using the same transfer id do not mix.
        let carol = who(3);
        assert_eq!(
            r.handle(carol, part(100, 1, 2), TRANSFER_TTL_MS).unwrap(),
            None
        );
        assert_eq!(r.pending.len(), 2);
    }
}
