//! Files: encryption in fixed-size chunks, content addressing with BLAKE3 and verified streaming with bao,
//! the announcement that travels inside a session, and the range request of `/tern/file/1`.
//!
//! A file is sealed under a fresh random [`FileKey`] in [`FILE_CHUNK_LEN`]-byte chunks, each its own
//! ChaCha20-Poly1305 message whose nonce holds the chunk's index and a last-chunk flag, so chunks can be neither
//! reordered nor dropped from the end. The concatenated sealed chunks (the *ciphertext*) are addressed by their
//! BLAKE3 hash ([`FileHash`]); a bao tree over them with [`GROUP_LEN`]-byte chunk groups lets a receiver check
//! every piece it is sent against that hash before it writes it. docs/protocol.md §19 specifies every byte.
//!
//! Everything here is sans-I/O: the node reads and writes the files and streams.

use std::fmt;
use std::ops::Range;

use bao_tree::io::sync::{DecodeResponseIter, Outboard, ReadAt, encode_ranges_validated};
use bao_tree::io::{BaoContentItem, Leaf, Parent};
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};
use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::codec::{self, DecodeError, Reader, Writer};
use crate::crypto::{self, KEY_LEN, NONCE_LEN, TAG_LEN};

/// Plaintext bytes per sealed chunk (the last chunk may be shorter, even empty).
pub const FILE_CHUNK_LEN: usize = 65_536;
/// Ciphertext bytes per full sealed chunk: the plaintext and its tag.
pub const SEALED_CHUNK_LEN: usize = FILE_CHUNK_LEN + TAG_LEN;
/// The largest file, in plaintext bytes: 4 GiB.
pub const MAX_FILE_SIZE: u64 = 4 * 1024 * 1024 * 1024;
/// The most chunks a file has (`MAX_FILE_SIZE / FILE_CHUNK_LEN`).
pub const MAX_FILE_CHUNKS: u64 = MAX_FILE_SIZE / FILE_CHUNK_LEN as u64;
/// The ciphertext of the largest file.
pub const MAX_CIPHERTEXT_LEN: u64 = MAX_FILE_SIZE + MAX_FILE_CHUNKS * TAG_LEN as u64;
/// log2 of the bao chunk group in 1 KiB BLAKE3 chunks: 4, so groups of 16 KiB.
pub const GROUP_CHUNK_LOG: u8 = 4;
/// Bytes in one bao chunk group, the unit of range requests and of verification.
pub const GROUP_LEN: u64 = 1024 << GROUP_CHUNK_LOG;
/// The most chunk groups in a ciphertext (`MAX_CIPHERTEXT_LEN / GROUP_LEN` rounded up: 262 160).
pub const MAX_GROUPS: u32 = MAX_CIPHERTEXT_LEN.div_ceil(GROUP_LEN) as u32;
/// File names are at most this many bytes of UTF-8.
pub const MAX_FILE_NAME_LEN: usize = 255;
/// Media types are at most this many bytes of printable ASCII.
pub const MAX_MEDIA_TYPE_LEN: usize = 127;
/// A thumbnail (PNG or JPEG) is at most this many bytes.
pub const MAX_THUMBNAIL_LEN: usize = 32 * 1024;
/// The file scheme this build speaks: chunking, nonce and tree as in docs/protocol.md §19.
pub const FILE_SCHEME: u8 = 1;
/// The version byte of `/tern/file/1` requests and responses.
pub const TRANSFER_VERSION: u8 = 1;
/// A range request names at most this many ranges.
pub const MAX_REQUEST_RANGES: usize = 256;
/// A piece of a response covers at most this many chunk groups (1 MiB).
pub const PIECE_GROUPS: u32 = 64;
/// An encoded piece is at most this long: its data and the parent hashes on the way to it.
pub const MAX_PIECE_LEN: usize = (PIECE_GROUPS as usize) * (GROUP_LEN as usize) + 8 * 1024;
/// The longest encoded range request.
pub const MAX_REQUEST_LEN: usize = 1 + 32 + 8 + 2 + MAX_REQUEST_RANGES * 8;

const CHUNK_LABEL: &[u8] = b"tern/file-chunk/v1";

/// The bao block size of every file tree.
pub const fn block_size() -> BlockSize {
    BlockSize::from_chunk_log(GROUP_CHUNK_LOG)
}

/// Why a file could not be sealed, opened or checked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("the file is {size} bytes, at most {max} allowed")]
    TooLarge { size: u64, max: u64 },
    #[error("chunk {index} is {len} bytes, {expected} expected")]
    ChunkLength {
        index: u64,
        len: usize,
        expected: usize,
    },
    #[error("chunk {index} does not exist (the file has {count})")]
    NoSuchChunk { index: u64, count: u64 },
    #[error("chunk {index} did not decrypt")]
    Decrypt { index: u64 },
    #[error("the file ended after {got} of {count} chunks")]
    Incomplete { got: u64, count: u64 },
    #[error("{len} bytes is not the ciphertext length of any file")]
    BadCiphertextLen { len: u64 },
}

/// A file's 32-byte key: random per file, zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FileKey(Box<[u8; KEY_LEN]>);

impl FileKey {
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = Box::new([0u8; KEY_LEN]);
        rng.fill_bytes(key.as_mut());
        Self(key)
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut bytes = bytes;
        let key = Box::new(bytes);
        bytes.zeroize();
        Self(key)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl PartialEq for FileKey {
    fn eq(&self, other: &Self) -> bool {
        // Not secret-dependent timing that matters: keys are compared only in tests and by their owner.
        self.0.as_ref() == other.0.as_ref()
    }
}

impl Eq for FileKey {}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(…)")
    }
}

/// The BLAKE3 hash of a file's ciphertext: its address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileHash(pub [u8; 32]);

impl FileHash {
    pub fn of(ciphertext: &[u8]) -> Self {
        Self(*blake3::hash(ciphertext).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn as_blake3(&self) -> blake3::Hash {
        blake3::Hash::from_bytes(self.0)
    }
}

impl From<blake3::Hash> for FileHash {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl fmt::Display for FileHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for FileHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileHash({})", self.to_hex())
    }
}

/// The geometry of a file of a given plaintext size: its chunks, its ciphertext, its tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLayout {
    size: u64,
}

impl FileLayout {
    /// The layout of a `size`-byte file, refused past [`MAX_FILE_SIZE`].
    pub fn new(size: u64) -> Result<Self, FileError> {
        if size > MAX_FILE_SIZE {
            return Err(FileError::TooLarge {
                size,
                max: MAX_FILE_SIZE,
            });
        }
        Ok(Self { size })
    }

    /// The layout whose ciphertext is `len` bytes, if any file has that ciphertext length.
    pub fn from_ciphertext_len(len: u64) -> Result<Self, FileError> {
        let sealed = SEALED_CHUNK_LEN as u64;
        let full = len / sealed;
        let rest = len % sealed;
        let size = match rest {
            0 if full > 0 => full * FILE_CHUNK_LEN as u64,
            r if r >= TAG_LEN as u64 => full * FILE_CHUNK_LEN as u64 + r - TAG_LEN as u64,
            _ => return Err(FileError::BadCiphertextLen { len }),
        };
        let layout = Self::new(size).map_err(|_| FileError::BadCiphertextLen { len })?;
        if layout.ciphertext_len() == len {
            Ok(layout)
        } else {
            Err(FileError::BadCiphertextLen { len })
        }
    }

    /// The plaintext size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many sealed chunks: at least one (an empty file is one empty chunk).
    pub fn chunk_count(&self) -> u64 {
        self.size.div_ceil(FILE_CHUNK_LEN as u64).max(1)
    }

    /// The ciphertext length: the plaintext and one tag per chunk.
    pub fn ciphertext_len(&self) -> u64 {
        self.size + self.chunk_count() * TAG_LEN as u64
    }

    /// How many bao chunk groups the ciphertext has.
    pub fn group_count(&self) -> u32 {
        // At most MAX_GROUPS, which fits.
        u32::try_from(self.ciphertext_len().div_ceil(GROUP_LEN)).unwrap_or(u32::MAX)
    }

    /// The plaintext bytes of chunk `index`.
    pub fn plain_range(&self, index: u64) -> Result<Range<u64>, FileError> {
        self.check_index(index)?;
        let start = index * FILE_CHUNK_LEN as u64;
        Ok(start..(start + FILE_CHUNK_LEN as u64).min(self.size))
    }

    /// The ciphertext bytes of chunk `index`.
    pub fn sealed_range(&self, index: u64) -> Result<Range<u64>, FileError> {
        let plain = self.plain_range(index)?;
        let start = index * SEALED_CHUNK_LEN as u64;
        Ok(start..start + (plain.end - plain.start) + TAG_LEN as u64)
    }

    pub fn is_last(&self, index: u64) -> bool {
        index + 1 == self.chunk_count()
    }

    /// The bao tree over the ciphertext.
    pub fn tree(&self) -> BaoTree {
        BaoTree::new(self.ciphertext_len(), block_size())
    }

    /// The byte range of chunk groups `groups` in the ciphertext.
    pub fn group_bytes(&self, groups: &Range<u32>) -> Range<u64> {
        let len = self.ciphertext_len();
        (u64::from(groups.start) * GROUP_LEN).min(len)..(u64::from(groups.end) * GROUP_LEN).min(len)
    }

    fn check_index(&self, index: u64) -> Result<(), FileError> {
        let count = self.chunk_count();
        if index >= count {
            return Err(FileError::NoSuchChunk { index, count });
        }
        Ok(())
    }
}

/// The nonce of chunk `index`: `u64 index ‖ u8 last ‖ 00 00 00`.
pub fn chunk_nonce(index: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&index.to_be_bytes());
    nonce[8] = u8::from(last);
    nonce
}

/// The associated data of every chunk of a `size`-byte file: `"tern/file-chunk/v1" ‖ u64 size`.
pub fn chunk_ad(size: u64) -> Vec<u8> {
    let mut ad = Vec::with_capacity(CHUNK_LABEL.len() + 8);
    ad.extend_from_slice(CHUNK_LABEL);
    ad.extend_from_slice(&size.to_be_bytes());
    ad
}

/// Seals chunk `index` of a file laid out as `layout`; `plaintext` must be exactly that chunk.
pub fn seal_chunk(
    key: &FileKey,
    layout: &FileLayout,
    index: u64,
    plaintext: &[u8],
) -> Result<Vec<u8>, FileError> {
    let range = layout.plain_range(index)?;
    let expected = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
    if plaintext.len() != expected {
        return Err(FileError::ChunkLength {
            index,
            len: plaintext.len(),
            expected,
        });
    }
    let nonce = chunk_nonce(index, layout.is_last(index));
    Ok(crypto::seal(
        key.as_bytes(),
        &nonce,
        &chunk_ad(layout.size()),
        plaintext,
    ))
}

/// Opens chunk `index`; fails unless it is exactly that chunk of that file under that key.
pub fn open_chunk(
    key: &FileKey,
    layout: &FileLayout,
    index: u64,
    sealed: &[u8],
) -> Result<Vec<u8>, FileError> {
    let range = layout.sealed_range(index)?;
    let expected = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
    if sealed.len() != expected {
        return Err(FileError::ChunkLength {
            index,
            len: sealed.len(),
            expected,
        });
    }
    let nonce = chunk_nonce(index, layout.is_last(index));
    crypto::open(key.as_bytes(), &nonce, &chunk_ad(layout.size()), sealed)
        .map_err(|_| FileError::Decrypt { index })
}

/// Seals a file chunk by chunk, in order, hashing the ciphertext on the way.
pub struct FileSealer {
    key: FileKey,
    layout: FileLayout,
    next: u64,
    hasher: blake3::Hasher,
}

impl fmt::Debug for FileSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            key: _,
            layout,
            next,
            hasher: _,
        } = self;
        f.debug_struct("FileSealer")
            .field("layout", layout)
            .field("next", next)
            .finish_non_exhaustive()
    }
}

impl FileSealer {
    pub fn new(key: FileKey, layout: FileLayout) -> Self {
        Self {
            key,
            layout,
            next: 0,
            hasher: blake3::Hasher::new(),
        }
    }

    /// The plaintext length the next call to [`Self::seal_next`] expects, or `None` when done.
    pub fn next_len(&self) -> Option<usize> {
        let range = self.layout.plain_range(self.next).ok()?;
        usize::try_from(range.end - range.start).ok()
    }

    /// Seals the next chunk.
    pub fn seal_next(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, FileError> {
        let sealed = seal_chunk(&self.key, &self.layout, self.next, plaintext)?;
        self.hasher.update(&sealed);
        self.next += 1;
        Ok(sealed)
    }

    /// The ciphertext's hash, once every chunk was sealed.
    pub fn finish(self) -> Result<FileHash, FileError> {
        let count = self.layout.chunk_count();
        if self.next != count {
            return Err(FileError::Incomplete {
                got: self.next,
                count,
            });
        }
        Ok(self.hasher.finalize().into())
    }
}

/// Seals a whole small file in memory (tests and vectors): the ciphertext and its hash.
pub fn seal_file(key: &FileKey, plaintext: &[u8]) -> Result<(Vec<u8>, FileHash), FileError> {
    let layout = FileLayout::new(plaintext.len() as u64)?;
    let mut sealer = FileSealer::new(key.clone(), layout);
    let mut out = Vec::with_capacity(usize::try_from(layout.ciphertext_len()).unwrap_or(0));
    let mut rest = plaintext;
    while let Some(len) = sealer.next_len() {
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        out.extend_from_slice(&sealer.seal_next(chunk)?);
        rest = tail;
    }
    Ok((out, sealer.finish()?))
}

/// Opens a whole small file in memory (tests and vectors).
pub fn open_file(key: &FileKey, ciphertext: &[u8]) -> Result<Vec<u8>, FileError> {
    let layout = FileLayout::from_ciphertext_len(ciphertext.len() as u64)?;
    let mut out = Vec::new();
    for index in 0..layout.chunk_count() {
        let range = layout.sealed_range(index)?;
        let sealed = &ciphertext[range.start as usize..range.end as usize];
        out.extend_from_slice(&open_chunk(key, &layout, index, sealed)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------------
// The announcement.

/// The content that offers a file: what it is and how to fetch and open it.
#[derive(Clone, PartialEq, Eq)]
pub struct FileAnnouncement {
    /// The name the sender gave it (no path; never used as one).
    pub name: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Media type such as `image/png`; empty if unknown.
    pub media_type: String,
    pub key: FileKey,
    /// BLAKE3 of the ciphertext.
    pub hash: FileHash,
    /// A small PNG or JPEG preview, for images.
    pub thumbnail: Option<Vec<u8>>,
}

impl fmt::Debug for FileAnnouncement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the name or the key.
        let Self {
            name,
            size,
            media_type: _,
            key: _,
            hash,
            thumbnail,
        } = self;
        f.debug_struct("FileAnnouncement")
            .field("name_len", &name.len())
            .field("size", size)
            .field("hash", hash)
            .field("thumbnail_len", &thumbnail.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), DecodeError> {
    codec::check_len("file name", name.len(), MAX_FILE_NAME_LEN)?;
    let invalid = |reason| DecodeError::Invalid {
        field: "file name",
        reason,
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(invalid("empty, \".\" or \"..\""));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(invalid("contains a control character or a path separator"));
    }
    Ok(())
}

fn check_media_type(media_type: &str) -> Result<(), DecodeError> {
    codec::check_len("media type", media_type.len(), MAX_MEDIA_TYPE_LEN)?;
    if !media_type.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(DecodeError::Invalid {
            field: "media type",
            reason: "not printable ASCII",
        });
    }
    Ok(())
}

impl FileAnnouncement {
    /// The announcement's body bytes (inside content kind `file`).
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        check_name(&self.name)?;
        check_media_type(&self.media_type)?;
        FileLayout::new(self.size).map_err(|_| DecodeError::Invalid {
            field: "file size",
            reason: "over 4 GiB",
        })?;
        let thumbnail = self.thumbnail.as_deref().unwrap_or_default();
        if self.thumbnail.is_some() && thumbnail.is_empty() {
            return Err(DecodeError::Invalid {
                field: "thumbnail",
                reason: "empty",
            });
        }
        codec::check_len("thumbnail", thumbnail.len(), MAX_THUMBNAIL_LEN)?;
        let mut w = Writer::new();
        w.u8(FILE_SCHEME)
            .u64(self.size)
            .raw(self.key.as_bytes())
            .raw(&self.hash.0)
            .bytes_u8(self.name.as_bytes())
            .bytes_u8(self.media_type.as_bytes())
            .bytes_u16(thumbnail);
        Ok(w.into_vec())
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let scheme = r.u8("file scheme")?;
        if scheme != FILE_SCHEME {
            return Err(DecodeError::UnsupportedVersion {
                what: "file scheme",
                got: scheme,
                supported: FILE_SCHEME,
            });
        }
        let size = r.u64("file size")?;
        if size > MAX_FILE_SIZE {
            return Err(DecodeError::Invalid {
                field: "file size",
                reason: "over 4 GiB",
            });
        }
        let key = FileKey::from_bytes(r.array("file key")?);
        let hash = FileHash(r.array("file hash")?);
        let name = r.bytes_u8("file name", MAX_FILE_NAME_LEN)?;
        let media_type = r.bytes_u8("media type", MAX_MEDIA_TYPE_LEN)?;
        let thumbnail = r.bytes_u16("thumbnail", MAX_THUMBNAIL_LEN)?;
        r.finish()?;
        let name = std::str::from_utf8(name)
            .map_err(|_| DecodeError::Invalid {
                field: "file name",
                reason: "not UTF-8",
            })?
            .to_owned();
        check_name(&name)?;
        let media_type =
            String::from_utf8(media_type.to_vec()).map_err(|_| DecodeError::Invalid {
                field: "media type",
                reason: "not printable ASCII",
            })?;
        check_media_type(&media_type)?;
        Ok(Self {
            name,
            size,
            media_type,
            key,
            hash,
            thumbnail: (!thumbnail.is_empty()).then(|| thumbnail.to_vec()),
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// `/tern/file/1`: range requests and verified pieces.

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

#[cfg(test)]
mod tests {
    use super::*;
    use bao_tree::io::outboard::PreOrderMemOutboard;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn layout_counts_chunks_tags_and_groups() {
        let empty = FileLayout::new(0).unwrap();
        assert_eq!((empty.chunk_count(), empty.ciphertext_len()), (1, 16));
        let exact = FileLayout::new(FILE_CHUNK_LEN as u64 * 2).unwrap();
        assert_eq!(exact.chunk_count(), 2);
        assert_eq!(exact.ciphertext_len(), 2 * SEALED_CHUNK_LEN as u64);
        let max = FileLayout::new(MAX_FILE_SIZE).unwrap();
        assert_eq!(max.chunk_count(), MAX_FILE_CHUNKS);
        assert_eq!(max.ciphertext_len(), MAX_CIPHERTEXT_LEN);
        assert_eq!(max.group_count(), MAX_GROUPS);
        assert!(matches!(
            FileLayout::new(MAX_FILE_SIZE + 1),
            Err(FileError::TooLarge { .. })
        ));
        for size in [0, 1, 100, 65_535, 65_536, 65_537, 200_000, MAX_FILE_SIZE] {
            let layout = FileLayout::new(size).unwrap();
            assert_eq!(
                FileLayout::from_ciphertext_len(layout.ciphertext_len()).unwrap(),
                layout
            );
        }
        for len in [0, 15, SEALED_CHUNK_LEN as u64 + 15, MAX_CIPHERTEXT_LEN + 16] {
            assert!(FileLayout::from_ciphertext_len(len).is_err(), "{len}");
        }
    }

    #[test]
    fn files_round_trip_and_the_hash_is_plain_blake3_of_the_ciphertext() {
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        for size in [0, 1, 65_536, 65_537, 150_000] {
            let key = FileKey::random(&mut rng);
            let plain = pattern(size);
            let (ciphertext, hash) = seal_file(&key, &plain).unwrap();
            assert_eq!(hash, FileHash::of(&ciphertext));
            assert_eq!(open_file(&key, &ciphertext).unwrap(), plain);
            // The bao root over 16 KiB groups is the same BLAKE3 hash.
            let outboard = PreOrderMemOutboard::create(&ciphertext, block_size());
            assert_eq!(FileHash::from(outboard.root), hash);
        }
    }

    #[test]
    fn chunks_cannot_be_swapped_truncated_or_extended() {
        let key = FileKey::from_bytes([7; 32]);
        let plain = pattern(3 * FILE_CHUNK_LEN + 10);
        let (ciphertext, _) = seal_file(&key, &plain).unwrap();
        let layout = FileLayout::new(plain.len() as u64).unwrap();
        let chunk = |i: u64| {
            let r = layout.sealed_range(i).unwrap();
            ciphertext[r.start as usize..r.end as usize].to_vec()
        };
        // Chunk 1 offered as chunk 0, and the reverse.
        assert_eq!(
            open_chunk(&key, &layout, 0, &chunk(1)),
            Err(FileError::Decrypt { index: 0 })
        );
        // A file cut after three full chunks: the third does not open as the last.
        let cut = FileLayout::new(3 * FILE_CHUNK_LEN as u64).unwrap();
        assert_eq!(
            open_chunk(&key, &cut, 2, &chunk(2)),
            Err(FileError::Decrypt { index: 2 })
        );
        // Same chunk under another file size (extension): refused by the associated data.
        let longer = FileLayout::new(4 * FILE_CHUNK_LEN as u64).unwrap();
        assert_eq!(
            open_chunk(&key, &longer, 1, &chunk(1)),
            Err(FileError::Decrypt { index: 1 })
        );
        // A flipped bit.
        let mut bad = chunk(3);
        bad[0] ^= 1;
        assert_eq!(
            open_chunk(&key, &layout, 3, &bad),
            Err(FileError::Decrypt { index: 3 })
        );
        assert_eq!(
            open_chunk(&key, &layout, 3, &chunk(3)).unwrap(),
            plain[3 * FILE_CHUNK_LEN..]
        );
        assert!(matches!(
            open_chunk(&key, &layout, 4, &chunk(3)),
            Err(FileError::NoSuchChunk { .. })
        ));
    }

    #[test]
    fn sealer_refuses_wrong_lengths_and_early_finish() {
        let layout = FileLayout::new(70_000).unwrap();
        let mut sealer = FileSealer::new(FileKey::from_bytes([1; 32]), layout);
        assert!(matches!(
            sealer.seal_next(&[0; 10]),
            Err(FileError::ChunkLength { .. })
        ));
        sealer.seal_next(&[0; FILE_CHUNK_LEN]).unwrap();
        assert_eq!(sealer.next_len(), Some(70_000 - FILE_CHUNK_LEN));
        assert!(matches!(
            sealer.finish(),
            Err(FileError::Incomplete { got: 1, count: 2 })
        ));
    }

    fn announcement() -> FileAnnouncement {
        FileAnnouncement {
            name: "holiday.jpg".into(),
            size: 1_234_567,
            media_type: "image/jpeg".into(),
            key: FileKey::from_bytes([9; 32]),
            hash: FileHash([8; 32]),
            thumbnail: Some(vec![0xff, 0xd8, 0xff]),
        }
    }

    #[test]
    fn announcements_round_trip_and_bad_fields_are_refused() {
        let a = announcement();
        assert_eq!(FileAnnouncement::decode(&a.encode().unwrap()).unwrap(), a);
        let none = FileAnnouncement {
            thumbnail: None,
            media_type: String::new(),
            ..announcement()
        };
        assert_eq!(
            FileAnnouncement::decode(&none.encode().unwrap()).unwrap(),
            none
        );
        for name in ["", "..", "a/b", "a\\b", "a\nb", &"x".repeat(256)] {
            let bad = FileAnnouncement {
                name: name.into(),
                ..announcement()
            };
            assert!(bad.encode().is_err(), "{name:?}");
        }
        let big = FileAnnouncement {
            size: MAX_FILE_SIZE + 1,
            ..announcement()
        };
        assert!(big.encode().is_err());
        let thumb = FileAnnouncement {
            thumbnail: Some(vec![0; MAX_THUMBNAIL_LEN + 1]),
            ..announcement()
        };
        assert!(matches!(thumb.encode(), Err(DecodeError::TooLong { .. })));
        // Decoding checks the same: a name with a separator, a size over the bound, a scheme we do not speak.
        let mut bytes = a.encode().unwrap();
        let name_at = 1 + 8 + 32 + 32 + 1;
        bytes[name_at] = b'/';
        assert!(FileAnnouncement::decode(&bytes).is_err());
        let mut bytes = a.encode().unwrap();
        bytes[1..9].copy_from_slice(&(MAX_FILE_SIZE + 1).to_be_bytes());
        assert!(FileAnnouncement::decode(&bytes).is_err());
        let mut bytes = a.encode().unwrap();
        bytes[0] = 2;
        assert!(matches!(
            FileAnnouncement::decode(&bytes),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        let mut bytes = a.encode().unwrap();
        bytes.push(0);
        assert!(matches!(
            FileAnnouncement::decode(&bytes),
            Err(DecodeError::TrailingBytes(1))
        ));
    }

    #[test]
    fn debug_shows_neither_name_nor_key() {
        let text = format!("{:?}", announcement());
        assert!(!text.contains("holiday"));
        assert!(!text.contains("9, 9"));
        assert_eq!(format!("{:?}", FileKey::from_bytes([3; 32])), "FileKey(…)");
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn range_requests_round_trip_and_bad_ranges_are_refused() {
        let layout = FileLayout::new(1_000_000).unwrap();
        let groups = layout.group_count();
        let good = RangeRequest {
            hash: FileHash([1; 32]),
            ciphertext_len: layout.ciphertext_len(),
            ranges: vec![0..3, 5..groups],
        };
        assert_eq!(RangeRequest::decode(&good.encode().unwrap()).unwrap(), good);
        for ranges in [
            vec![3..3],
            vec![0..groups + 1],
            vec![5..6, 0..1],
            vec![0..2, 2..3],
            vec![0..2, 1..3],
        ] {
            let bad = RangeRequest {
                ranges: ranges.clone(),
                ..good.clone()
            };
            assert!(bad.encode().is_err(), "{ranges:?}");
        }
        let bad_len = RangeRequest {
            ciphertext_len: 10,
            ..good.clone()
        };
        assert!(bad_len.encode().is_err());
        let too_many = RangeRequest {
            ciphertext_len: MAX_CIPHERTEXT_LEN,
            ranges: (0..=MAX_REQUEST_RANGES as u32)
                .map(|i| 2 * i..2 * i + 1)
                .collect(),
            ..good.clone()
        };
        assert!(matches!(
            too_many.encode(),
            Err(DecodeError::TooMany { .. })
        ));
        let mut bytes = good.encode().unwrap();
        bytes.push(0);
        assert!(RangeRequest::decode(&bytes).is_err());
    }

    #[test]
    fn pieces_split_at_the_piece_size() {
        assert_eq!(
            split_pieces(&[0..130, 200..201]),
            vec![0..64, 64..128, 128..130, 200..201]
        );
    }

    #[test]
    fn pieces_verify_and_a_flipped_byte_or_a_missing_byte_is_refused() {
        let key = FileKey::from_bytes([2; 32]);
        let plain = pattern(3 * 1024 * 1024 + 77);
        let (ciphertext, hash) = seal_file(&key, &plain).unwrap();
        let layout = FileLayout::new(plain.len() as u64).unwrap();
        let outboard = PreOrderMemOutboard::create(&ciphertext, block_size());
        let request = RangeRequest {
            hash,
            ciphertext_len: layout.ciphertext_len(),
            ranges: vec![0..1, 70..layout.group_count()],
        };
        let mut rebuilt = vec![0u8; ciphertext.len()];
        for piece in request.pieces() {
            let encoded = encode_piece(&ciphertext[..], &outboard, &piece).unwrap();
            assert!(encoded.len() <= MAX_PIECE_LEN);
            let verified = verify_piece(&hash, &layout, &piece, &encoded).unwrap();
            for leaf in verified.leaves {
                let at = leaf.offset as usize;
                rebuilt[at..at + leaf.data.len()].copy_from_slice(&leaf.data);
            }
            let bytes = layout.group_bytes(&piece);
            assert_eq!(
                rebuilt[bytes.start as usize..bytes.end as usize],
                ciphertext[bytes.start as usize..bytes.end as usize]
            );
            let mut tampered = encoded.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 0x40;
            assert!(matches!(
                verify_piece(&hash, &layout, &piece, &tampered),
                Err(PieceError::Verify(_))
            ));
            assert!(matches!(
                verify_piece(&hash, &layout, &piece, &encoded[..encoded.len() - 1]),
                Err(PieceError::Verify(_))
            ));
            let mut longer = encoded.clone();
            longer.push(0);
            assert!(matches!(
                verify_piece(&hash, &layout, &piece, &longer),
                Err(PieceError::TrailingBytes(1))
            ));
        }
        // A holder whose own copy is damaged serves nothing.
        let mut damaged = ciphertext.clone();
        damaged[20_000] ^= 1;
        assert!(matches!(
            encode_piece(&damaged[..], &outboard, &(1..2)),
            Err(PieceError::Encode(_))
        ));
    }

    #[test]
    fn response_heads() {
        for status in [
            TransferStatus::Ok,
            TransferStatus::NotFound,
            TransferStatus::Busy,
            TransferStatus::Malformed,
            TransferStatus::Cancelled,
        ] {
            assert_eq!(TransferStatus::decode_head(status.head()).unwrap(), status);
        }
        assert!(TransferStatus::decode_head([1, 9]).is_err());
        assert!(TransferStatus::decode_head([2, 0]).is_err());
    }
}
