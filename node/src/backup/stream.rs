//! The sealed stream of an archive (docs/protocol.md §20.2): the plain header, the keys derived from the
//! recovery code and the header's salt, and the chunks, each ChaCha20-Poly1305 under a nonce made of its
//! index and a last-chunk flag. Both directions hold one chunk in memory, never the whole archive.

use std::io::{BufRead, Write};

use tern_protocol::PickleKey;
use tern_protocol::crypto;
use zeroize::Zeroizing;

use super::BackupError;
use super::code::RecoveryCode;

/// The first 8 bytes of every archive.
pub const MAGIC: &[u8; 8] = b"TERNBACK";
/// The archive version this build writes; it reads every version from 1 up to it (version 2 added group
/// records).
pub const ARCHIVE_VERSION: u8 = 2;
/// Key derivation 1: BLAKE3 `derive_key` (the code carries 256 random bits: no password hardening).
pub const KDF_BLAKE3: u8 = 1;
/// Cipher 1: ChaCha20-Poly1305 over chunks.
pub const AEAD_CHACHA20POLY1305: u8 = 1;
/// The header's length.
pub const HEADER_LEN: usize = 48;
/// Plaintext bytes per chunk this build writes.
pub const CHUNK_LEN: usize = 64 * 1024;
/// The largest chunk a reader accepts (so a header cannot make it allocate much).
pub const MAX_CHUNK_LEN: usize = 1024 * 1024;
/// The smallest chunk a reader accepts.
pub const MIN_CHUNK_LEN: usize = 1024;
/// The padded plaintext is at least this long, so a near-empty profile looks like a small one.
pub const MIN_PADDED_LEN: u64 = CHUNK_LEN as u64;
const TAG_LEN: usize = 16;
const SALT_LEN: usize = 16;
const CHECK_LEN: usize = 16;
const KEY_CONTEXT: &str = "tern backup v1 archive key";
const PICKLE_CONTEXT: &str = "tern backup v1 identity pickle key";
const CHECK_CONTEXT: &str = "tern backup v1 code check";

/// What the recovery code and the salt give.
pub(super) struct Keys {
    key: Zeroizing<[u8; 32]>,
    pub pickle: PickleKey,
    pub check: [u8; CHECK_LEN],
}

impl Keys {
    pub fn derive(code: &RecoveryCode, salt: &[u8; SALT_LEN]) -> Self {
        let mut material = Zeroizing::new([0u8; 32 + SALT_LEN]);
        material[..32].copy_from_slice(code.secret());
        material[32..].copy_from_slice(salt);
        let key = Zeroizing::new(blake3::derive_key(KEY_CONTEXT, material.as_slice()));
        let pickle = PickleKey::from_bytes(blake3::derive_key(PICKLE_CONTEXT, material.as_slice()));
        let full = blake3::derive_key(CHECK_CONTEXT, material.as_slice());
        let mut check = [0u8; CHECK_LEN];
        check.copy_from_slice(&full[..CHECK_LEN]);
        Self { key, pickle, check }
    }
}

fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication with PURBs",
/// 2019): rounds `len` up so only its top `floor(log2(floor(log2 len))) + 1` bits are kept; at most about
/// 12% larger, and a length says O(log log len) bits. Then at least [`MIN_PADDED_LEN`].
pub fn padded_len(len: u64) -> u64 {
    let padded = if len < 2 {
        len
    } else {
        let e = 63 - u64::from(len.leading_zeros());
        let s = 64 - u64::from(e.leading_zeros());
        let low = e.saturating_sub(s);
        let mask = (1u64 << low) - 1;
        (len + mask) & !mask
    };
    padded.max(MIN_PADDED_LEN)
}

/// Writes the header, then seals whatever is written through it in chunks.
pub(super) struct SealingWriter<W: Write> {
    out: W,
    key: Zeroizing<[u8; 32]>,
    header: [u8; HEADER_LEN],
    buf: Zeroizing<Vec<u8>>,
    index: u64,
    /// Plaintext bytes written so far.
    pub written: u64,
}

impl<W: Write> SealingWriter<W> {
    pub fn new(mut out: W, keys: &Keys, salt: &[u8; SALT_LEN]) -> Result<Self, BackupError> {
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8] = ARCHIVE_VERSION;
        header[9] = KDF_BLAKE3;
        header[10] = AEAD_CHACHA20POLY1305;
        header[12..16].copy_from_slice(&(CHUNK_LEN as u32).to_be_bytes());
        header[16..32].copy_from_slice(salt);
        header[32..48].copy_from_slice(&keys.check);
        out.write_all(&header)?;
        Ok(Self {
            out,
            key: Zeroizing::new(*keys.key),
            header,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK_LEN)),
            index: 0,
            written: 0,
        })
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), BackupError> {
        self.written += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = (CHUNK_LEN - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == CHUNK_LEN {
                self.seal_chunk(false)?;
            }
        }
        Ok(())
    }

    fn seal_chunk(&mut self, last: bool) -> Result<(), BackupError> {
        let sealed = crypto::seal(&self.key, &nonce(self.index, last), &self.header, &self.buf);
        self.out.write_all(&sealed)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Pads the plaintext with zeros to [`padded_len`], seals the last chunk and hands back the output.
    pub fn finish(mut self) -> Result<W, BackupError> {
        let target = padded_len(self.written);
        let zeros = [0u8; 4096];
        while self.written < target {
            let n = (target - self.written).min(zeros.len() as u64) as usize;
            self.write(&zeros[..n])?;
        }
        // A full buffer was sealed as a middle chunk already: the last chunk may be empty.
        self.seal_chunk(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The fields of a header.
pub(super) struct Header {
    pub bytes: [u8; HEADER_LEN],
    pub chunk_len: usize,
    pub salt: [u8; SALT_LEN],
    pub check: [u8; CHECK_LEN],
}

impl Header {
    /// The archive version it names (1 up to [`ARCHIVE_VERSION`]).
    pub fn version(&self) -> u8 {
        self.bytes[8]
    }
}

/// Reads and checks a header (not yet the code): magic, version, algorithms, chunk size.
pub(super) fn read_header(input: &mut impl BufRead) -> Result<Header, BackupError> {
    let mut bytes = [0u8; HEADER_LEN];
    let got = read_full(input, &mut bytes)?;
    if got < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC[..] {
        return Err(BackupError::NotABackup);
    }
    if got < HEADER_LEN {
        return Err(BackupError::Truncated);
    }
    if bytes[8] > ARCHIVE_VERSION {
        return Err(BackupError::NewerVersion {
            found: bytes[8],
            supported: ARCHIVE_VERSION,
        });
    }
    if bytes[8] == 0
        || bytes[9] != KDF_BLAKE3
        || bytes[10] != AEAD_CHACHA20POLY1305
        || bytes[11] != 0
    {
        return Err(BackupError::Damaged("the header names unknown algorithms"));
    }
    let chunk_len = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    if !(MIN_CHUNK_LEN..=MAX_CHUNK_LEN).contains(&chunk_len) {
        return Err(BackupError::Damaged(
            "the header's chunk size is out of bounds",
        ));
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&bytes[16..32]);
    let mut check = [0u8; CHECK_LEN];
    check.copy_from_slice(&bytes[32..48]);
    Ok(Header {
        bytes,
        chunk_len,
        salt,
        check,
    })
}

/// Reads into `buf` until it is full or the input ends; how many bytes it read.
fn read_full(input: &mut impl BufRead, buf: &mut [u8]) -> Result<usize, BackupError> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// Opens the chunks after a header, in order, one at a time.
pub(super) struct OpeningReader<R: BufRead> {
    input: R,
    key: Zeroizing<[u8; 32]>,
    header: [u8; HEADER_LEN],
    chunk_len: usize,
    sealed: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    index: u64,
    ended: bool,
}

impl<R: BufRead> OpeningReader<R> {
    /// Fails with [`BackupError::WrongCode`] if the code does not match the header's check.
    pub fn new(
        input: R,
        header: &Header,
        code: &RecoveryCode,
    ) -> Result<(Self, Keys), BackupError> {
        let keys = Keys::derive(code, &header.salt);
        if keys.check != header.check {
            return Err(BackupError::WrongCode);
        }
        Ok((
            Self {
                input,
                key: Zeroizing::new(*keys.key),
                header: header.bytes,
                chunk_len: header.chunk_len,
                sealed: vec![0u8; header.chunk_len + TAG_LEN],
                plain: Zeroizing::new(Vec::new()),
                pos: 0,
                index: 0,
                ended: false,
            },
            keys,
        ))
    }

    /// Opens the next chunk; `false` once the last chunk was read.
    fn next_chunk(&mut self) -> Result<bool, BackupError> {
        if self.ended {
            return Ok(false);
        }
        let got = read_full(&mut self.input, &mut self.sealed)?;
        if got < TAG_LEN {
            return Err(BackupError::Truncated);
        }
        // A full chunk with more bytes after it is a middle chunk; anything else must be the last.
        let last = got < self.sealed.len() || self.input.fill_buf()?.is_empty();
        let sealed = &self.sealed[..got];
        let opened = crypto::open(&self.key, &nonce(self.index, last), &self.header, sealed);
        let plain = match opened {
            Ok(plain) => plain,
            Err(_) => {
                // A middle chunk where the file ends: the rest was cut off.
                if last
                    && got == self.sealed.len()
                    && crypto::open(&self.key, &nonce(self.index, false), &self.header, sealed)
                        .is_ok()
                {
                    return Err(BackupError::Truncated);
                }
                return Err(BackupError::Damaged(
                    "a part of the archive fails authentication: it was changed or is cut short",
                ));
            }
        };
        if !last && plain.len() != self.chunk_len {
            return Err(BackupError::Damaged("a middle chunk is short"));
        }
        self.plain = Zeroizing::new(plain);
        self.pos = 0;
        self.index += 1;
        self.ended = last;
        Ok(true)
    }

    /// Fills `buf` entirely; [`BackupError::Truncated`] if the stream ends first.
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), BackupError> {
        let mut done = 0;
        while done < buf.len() {
            if self.pos == self.plain.len() && !self.next_chunk()? {
                return Err(BackupError::Truncated);
            }
            let n = (self.plain.len() - self.pos).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
        Ok(())
    }

    /// Reads to the end of the stream, requiring every byte left to be padding (zero), and nothing after
    /// the last chunk.
    pub fn finish(mut self) -> Result<(), BackupError> {
        loop {
            if self.plain[self.pos..].iter().any(|&b| b != 0) {
                return Err(BackupError::Damaged(
                    "bytes after the end record are not padding",
                ));
            }
            self.pos = self.plain.len();
            if !self.next_chunk()? {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_keeps_few_bits_and_grows_little() {
        assert_eq!(padded_len(0), MIN_PADDED_LEN);
        for len in [70_000u64, 1_000_000, 123_456_789, 5_000_000_000] {
            let p = padded_len(len);
            assert!(p >= len);
            assert!((p - len) * 100 <= len * 12, "{len} -> {p}");
        }
        // Neighbouring sizes share one padded size.
        assert_eq!(padded_len(1_000_000), padded_len(1_000_001));
        assert_eq!(padded_len(1_000_000), 1_015_808);
    }
}
