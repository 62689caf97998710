//! `/tern/file/1`: range requests, the response's status, and bao-verified pieces (docs/protocol.md §19.5).

use std::ops::Range;

use bao_tree::io::sync::{DecodeResponseIter, Outboard, ReadAt, encode_ranges_validated};
use bao_tree::io::{BaoContentItem, Leaf, Parent};
use bao_tree::{ChunkNum, ChunkRanges};
use thiserror::Error;

use super::{
    FileHash, FileLayout, GROUP_CHUNK_LOG, MAX_PIECE_LEN, MAX_REQUEST_LEN, MAX_REQUEST_RANGES,
    PIECE_GROUPS, TRANSFER_VERSION,
};
use crate::codec::{self, DecodeError, Reader, Writer};

/// A receiver's request: the chunk groups of one file it still lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    pub hash: FileHash,
    pub ciphertext_len: u64,
    /// Chunk-group ranges, ascending, non-empty, neither overlapping nor touching, within the file.
    pub ranges: Vec<Range<u32>>,
}

impl RangeRequest {
    fn check(&self) -> Result<FileLayout, DecodeError> {
        let layout = FileLayout::from_ciphertext_len(self.ciphertext_len).map_err(|_| {
            DecodeError::Invalid {
                field: "ciphertext length",
                reason: "no file has this ciphertext length",
            }
        })?;
        codec::check_count("ranges", self.ranges.len(), MAX_REQUEST_RANGES)?;
        let mut previous_end: Option<u32> = None;
        for range in &self.ranges {
            if range.start >= range.end || range.end > layout.group_count() {
                return Err(DecodeError::Invalid {
                    field: "range",
                    reason: "empty or past the end of the file",
                });
            }
            if previous_end.is_some_and(|end| range.start <= end) {
                return Err(DecodeError::Invalid {
                    field: "range",
                    reason: "not ascending, or overlapping or touching the one before",
                });
            }
            previous_end = Some(range.end);
        }
        Ok(layout)
    }

    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        self.check()?;
        let mut w = Writer::with_capacity(MAX_REQUEST_LEN);
        w.u8(TRANSFER_VERSION)
            .raw(&self.hash.0)
            .u64(self.ciphertext_len)
            .u16(u16::try_from(self.ranges.len()).unwrap_or(u16::MAX));
        for range in &self.ranges {
            w.u32(range.start).u32(range.end);
        }
        Ok(w.into_vec())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, "range request", MAX_REQUEST_LEN)?;
        let version = r.u8("range request version")?;
        if version != TRANSFER_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "range request",
                got: version,
                supported: TRANSFER_VERSION,
            });
        }
        let hash = FileHash(r.array("file hash")?);
        let ciphertext_len = r.u64("ciphertext length")?;
        let count = r.count_u16("ranges", MAX_REQUEST_RANGES)?;
        let ranges = (0..count)
            .map(|_| Ok(r.u32("range start")?..r.u32("range end")?))
            .collect::<Result<Vec<_>, DecodeError>>()?;
        r.finish()?;
        let request = Self {
            hash,
            ciphertext_len,
            ranges,
        };
        request.check()?;
        Ok(request)
    }

    /// The pieces the response carries, in order: each requested range cut every [`PIECE_GROUPS`] groups.
    pub fn pieces(&self) -> Vec<Range<u32>> {
        split_pieces(&self.ranges)
    }
}

/// Cuts ranges into pieces of at most [`PIECE_GROUPS`] groups, counted from each range's start.
pub fn split_pieces(ranges: &[Range<u32>]) -> Vec<Range<u32>> {
    let mut out = Vec::new();
    for range in ranges {
        let mut start = range.start;
        while start < range.end {
            let end = start.saturating_add(PIECE_GROUPS).min(range.end);
            out.push(start..end);
            start = end;
        }
    }
    out
}

/// How a sender answers a range request (the byte after the version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferStatus {
    /// The pieces follow.
    Ok,
    /// This holder does not have the file (or not all of the requested ranges).
    NotFound,
    /// Too many transfers at once: try again later.
    Busy,
    /// The request did not decode.
    Malformed,
    /// The sender withdrew the file: stop, and drop what was received.
    Cancelled,
}

impl TransferStatus {
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::NotFound => 1,
            Self::Busy => 2,
            Self::Malformed => 3,
            Self::Cancelled => 4,
        }
    }

    /// The two-byte response head.
    pub fn head(self) -> [u8; 2] {
        [TRANSFER_VERSION, self.code()]
    }

    pub fn decode_head(head: [u8; 2]) -> Result<Self, DecodeError> {
        if head[0] != TRANSFER_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "range response",
                got: head[0],
                supported: TRANSFER_VERSION,
            });
        }
        Ok(match head[1] {
            0 => Self::Ok,
            1 => Self::NotFound,
            2 => Self::Busy,
            3 => Self::Malformed,
            4 => Self::Cancelled,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "range response status",
                    reason: "unknown code",
                });
            }
        })
    }
}

/// The bao chunk ranges (1 KiB BLAKE3 chunks) of chunk groups `groups`.
pub fn chunk_ranges(groups: &Range<u32>) -> ChunkRanges {
    let shift = GROUP_CHUNK_LOG;
    ChunkRanges::from(
        ChunkNum(u64::from(groups.start) << shift)..ChunkNum(u64::from(groups.end) << shift),
    )
}

/// Why a piece could not be made or was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PieceError {
    /// The holder's own data or tree does not match its hash (it serves nothing it cannot prove).
    #[error("the local copy does not match its hash: {0}")]
    Encode(#[from] bao_tree::io::EncodeError),
    /// The piece does not verify against the file's hash: a chunk or parent hash is wrong, or bytes are missing.
    #[error("the piece does not verify: {0}")]
    Verify(#[from] bao_tree::io::DecodeError),
    #[error("{0} bytes follow the piece")]
    TrailingBytes(usize),
    #[error("a piece of {len} bytes, at most {max} allowed")]
    TooLong { len: usize, max: usize },
}

/// Encodes the piece `groups` from a holder's ciphertext and outboard, checking every byte against the tree.
pub fn encode_piece<D: ReadAt, O: Outboard>(
    data: D,
    outboard: O,
    groups: &Range<u32>,
) -> Result<Vec<u8>, PieceError> {
    let mut out = Vec::with_capacity(MAX_PIECE_LEN);
    encode_ranges_validated(data, outboard, &chunk_ranges(groups), &mut out)?;
    if out.len() > MAX_PIECE_LEN {
        return Err(PieceError::TooLong {
            len: out.len(),
            max: MAX_PIECE_LEN,
        });
    }
    Ok(out)
}

/// A piece that verified against the file's hash: what to write, and the tree's hashes on the way.
#[derive(Debug, Default)]
pub struct VerifiedPiece {
    pub parents: Vec<Parent>,
    pub leaves: Vec<Leaf>,
}

/// Checks an encoded piece against the file's hash; nothing of it may be used unless this returns `Ok`.
pub fn verify_piece(
    hash: &FileHash,
    layout: &FileLayout,
    groups: &Range<u32>,
    encoded: &[u8],
) -> Result<VerifiedPiece, PieceError> {
    if encoded.len() > MAX_PIECE_LEN {
        return Err(PieceError::TooLong {
            len: encoded.len(),
            max: MAX_PIECE_LEN,
        });
    }
    let ranges = chunk_ranges(groups);
    let mut cursor = encoded;
    let mut piece = VerifiedPiece::default();
    for item in DecodeResponseIter::new(hash.as_blake3(), layout.tree(), &mut cursor, &ranges) {
        match item? {
            BaoContentItem::Parent(parent) => piece.parents.push(parent),
            BaoContentItem::Leaf(leaf) => piece.leaves.push(leaf),
        }
    }
    if !cursor.is_empty() {
        return Err(PieceError::TrailingBytes(cursor.len()));
    }
    Ok(piece)
}
