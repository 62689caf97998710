//! The one binary codec every Tern format uses.
//!
//! Integers are big-endian. Every variable-length field carries a length prefix and a named maximum that is
//! checked before anything is allocated. A decoder reads a whole buffer and rejects trailing bytes
//! ([`Reader::finish`]), so one value has exactly one encoding.

use thiserror::Error;

/// Why bytes from a peer, a file or a user could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the field was complete.
    #[error("truncated input: {field} needs {needed} more bytes, {available} left")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    /// Bytes were left over after the value ended.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A length prefix or a whole input exceeds its bound.
    #[error("{field} is {len} bytes, at most {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A count exceeds its bound.
    #[error("{field} has {count} entries, at most {max} allowed")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
    /// A version this implementation does not speak.
    #[error("unsupported {what} version {got} (this build speaks {supported})")]
    UnsupportedVersion {
        what: &'static str,
        got: u8,
        supported: u8,
    },
    /// A field holds a value that is not allowed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    /// A signature over the value does not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
}

/// Appends encoded fields to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Raw bytes with no length prefix (fixed-size fields).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Bytes behind a one-byte length. The caller has checked `bytes.len() <= 255` against its own bound.
    pub fn bytes_u8(&mut self, bytes: &[u8]) -> &mut Self {
        debug_assert!(bytes.len() <= usize::from(u8::MAX));
        self.u8(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
        self.raw(bytes)
    }

    /// Bytes behind a two-byte length. The caller has checked the length against its own bound.
    pub fn bytes_u16(&mut self, bytes: &[u8]) -> &mut Self {
        debug_assert!(bytes.len() <= usize::from(u16::MAX));
        self.u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
        self.raw(bytes)
    }

    /// Bytes behind a four-byte length. The caller has checked the length against its own bound.
    pub fn bytes_u32(&mut self, bytes: &[u8]) -> &mut Self {
        debug_assert!(u32::try_from(bytes.len()).is_ok());
        self.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.raw(bytes)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads encoded fields from a borrowed buffer.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A reader over a whole input that must be at most `max` bytes long.
    pub fn bounded(buf: &'a [u8], field: &'static str, max: usize) -> Result<Self, DecodeError> {
        if buf.len() > max {
            return Err(DecodeError::TooLong {
                field,
                len: buf.len(),
                max,
            });
        }
        Ok(Self::new(buf))
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        if n > available {
            return Err(DecodeError::Truncated {
                field,
                needed: n,
                available,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn bounded_len(len: usize, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        if len > max {
            Err(DecodeError::TooLong { field, len, max })
        } else {
            Ok(len)
        }
    }

    /// Bytes behind a one-byte length, at most `max`.
    pub fn bytes_u8(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = Self::bounded_len(usize::from(self.u8(field)?), field, max)?;
        self.take(len, field)
    }

    /// Bytes behind a two-byte length, at most `max`.
    pub fn bytes_u16(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = Self::bounded_len(usize::from(self.u16(field)?), field, max)?;
        self.take(len, field)
    }

    /// Bytes behind a four-byte length, at most `max`.
    pub fn bytes_u32(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let raw = self.u32(field)?;
        let len = usize::try_from(raw).map_err(|_| DecodeError::TooLong {
            field,
            len: usize::MAX,
            max,
        })?;
        let len = Self::bounded_len(len, field, max)?;
        self.take(len, field)
    }

    /// A one-byte count, at most `max`.
    pub fn count_u8(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let count = usize::from(self.u8(field)?);
        if count > max {
            return Err(DecodeError::TooMany { field, count, max });
        }
        Ok(count)
    }

    /// A two-byte count, at most `max`.
    pub fn count_u16(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let count = usize::from(self.u16(field)?);
        if count > max {
            return Err(DecodeError::TooMany { field, count, max });
        }
        Ok(count)
    }

    /// Ends decoding: every byte must have been read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Checks a length against its bound when encoding, for values built locally.
pub(crate) fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        Err(DecodeError::TooLong { field, len, max })
    } else {
        Ok(())
    }
}

/// Checks a count against its bound when encoding, for values built locally.
pub(crate) fn check_count(
    field: &'static str,
    count: usize,
    max: usize,
) -> Result<(), DecodeError> {
    if count > max {
        Err(DecodeError::TooMany { field, count, max })
    } else {
        Ok(())
    }
}

/// `impl From<Cause> for Error` for variants that *print* their cause in their message: the cause is then not
/// also returned as [`std::error::Error::source`], so a chain printer (anyhow's `{:#}`) says each cause once.
/// (thiserror's `#[from]` always makes the field a source, hence this.)
#[macro_export]
#[doc(hidden)]
macro_rules! cause_in_message {
    ($($cause:ty => $error:ident :: $variant:ident),+ $(,)?) => {
        $(impl From<$cause> for $error {
            fn from(cause: $cause) -> Self {
                Self::$variant(cause)
            }
        })+
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field_kind() {
        let mut w = Writer::new();
        w.u8(7)
            .u16(0x1234)
            .u32(0xdead_beef)
            .u64(u64::MAX - 1)
            .bytes_u8(b"ab")
            .bytes_u16(b"cde")
            .bytes_u32(b"")
            .raw(&[9; 4]);
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u16("b").unwrap(), 0x1234);
        assert_eq!(r.u32("c").unwrap(), 0xdead_beef);
        assert_eq!(r.u64("d").unwrap(), u64::MAX - 1);
        assert_eq!(r.bytes_u8("e", 2).unwrap(), b"ab");
        assert_eq!(r.bytes_u16("f", 3).unwrap(), b"cde");
        assert_eq!(r.bytes_u32("g", 0).unwrap(), b"");
        assert_eq!(r.array::<4>("h").unwrap(), [9; 4]);
        r.finish().unwrap();
    }

    #[test]
    fn rejects_trailing_bytes() {
        let r = Reader::new(&[1, 2]);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(2)));
    }

    #[test]
    fn rejects_lengths_over_their_bound_before_reading() {
        let mut w = Writer::new();
        w.bytes_u16(&[0; 10]);
        let bytes = w.into_vec();
        let err = Reader::new(&bytes).bytes_u16("name", 9).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLong {
                field: "name",
                len: 10,
                max: 9
            }
        );
    }

    #[test]
    fn reports_truncation_with_the_field_name() {
        let err = Reader::new(&[0, 0, 0, 5, 1])
            .bytes_u32("body", 100)
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "body",
                needed: 5,
                available: 1
            }
        );
    }
}
