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

use bao_tree::{BaoTree, BlockSize};
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

    /// Reads [`Self::to_hex`]'s form back (64 lowercase hex digits); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let hash = blake3::Hash::from_hex(text).ok()?;
        let parsed = Self(*hash.as_bytes());
        (parsed.to_hex() == text).then_some(parsed)
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

mod hold;
mod transfer;

pub use hold::*;
pub use transfer::*;

#[cfg(test)]
mod tests;
