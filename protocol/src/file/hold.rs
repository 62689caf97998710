//! `/tern/file-hold/1`: a sender asks a mailbox server to hold a file for recipients who are offline
//! (docs/protocol.md §19.9). The server then fetches the file from the sender over `/tern/file/1`, verifying
//! every piece, and serves it to whoever asks by hash. It sees ciphertext and a hash only.

use super::{FileHash, FileLayout};
use crate::codec::{DecodeError, Reader, Writer};

/// The version byte of `/tern/file-hold/1` requests and answers.
pub const HOLD_VERSION: u8 = 1;
/// A hold request is exactly this long: version, hash, ciphertext length.
pub const HOLD_REQUEST_LEN: usize = 1 + 32 + 8;
/// A hold answer is exactly this long: version, code, a `u64` that only some codes use.
pub const HOLD_ANSWER_LEN: usize = 1 + 1 + 8;

/// "Hold this file": its hash and ciphertext length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldRequest {
    pub hash: FileHash,
    pub ciphertext_len: u64,
}

impl HoldRequest {
    pub fn encode(&self) -> [u8; HOLD_REQUEST_LEN] {
        let mut w = Writer::with_capacity(HOLD_REQUEST_LEN);
        w.u8(HOLD_VERSION)
            .raw(&self.hash.0)
            .u64(self.ciphertext_len);
        let mut out = [0u8; HOLD_REQUEST_LEN];
        out.copy_from_slice(&w.into_vec());
        out
    }

    /// Reads a request; the length must be some file's ciphertext length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, "hold request", HOLD_REQUEST_LEN)?;
        let version = r.u8("hold request version")?;
        if version != HOLD_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "hold request",
                got: version,
                supported: HOLD_VERSION,
            });
        }
        let hash = FileHash(r.array("file hash")?);
        let ciphertext_len = r.u64("ciphertext length")?;
        r.finish()?;
        FileLayout::from_ciphertext_len(ciphertext_len).map_err(|_| DecodeError::Invalid {
            field: "ciphertext length",
            reason: "no file has this ciphertext length",
        })?;
        Ok(Self {
            hash,
            ciphertext_len,
        })
    }
}

/// A holder's answer. [`HoldAnswer::Fetching`] is followed by a second, final answer; every other one is
/// final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HoldAnswer {
    /// Accepted: the holder fetches the file from the asker now (keep serving it); a final answer follows.
    Fetching,
    /// The whole file is held here, verified, for `keep_secs` seconds from now.
    Held { keep_secs: u64 },
    /// The file is larger than this holder takes: at most `max` ciphertext bytes.
    TooLarge { max: u64 },
    /// The holder's quota for files is taken: `free` bytes are left.
    QuotaFull { free: u64 },
    /// Too many files are being fetched at once: ask again later.
    Busy,
    /// The request did not decode.
    Malformed,
    /// The holder could not fetch the file from the asker; nothing of it is kept.
    Failed,
    /// This peer holds no files for others.
    NotOffered,
}

impl HoldAnswer {
    fn code_and_value(self) -> (u8, u64) {
        match self {
            Self::Fetching => (0, 0),
            Self::Held { keep_secs } => (1, keep_secs),
            Self::TooLarge { max } => (2, max),
            Self::QuotaFull { free } => (3, free),
            Self::Busy => (4, 0),
            Self::Malformed => (5, 0),
            Self::Failed => (6, 0),
            Self::NotOffered => (7, 0),
        }
    }

    pub fn encode(self) -> [u8; HOLD_ANSWER_LEN] {
        let (code, value) = self.code_and_value();
        let mut out = [0u8; HOLD_ANSWER_LEN];
        out[0] = HOLD_VERSION;
        out[1] = code;
        out[2..].copy_from_slice(&value.to_be_bytes());
        out
    }

    /// Reads an answer. A value in a code that carries none must be 0.
    pub fn decode(bytes: &[u8; HOLD_ANSWER_LEN]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, "hold answer", HOLD_ANSWER_LEN)?;
        let version = r.u8("hold answer version")?;
        if version != HOLD_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "hold answer",
                got: version,
                supported: HOLD_VERSION,
            });
        }
        let code = r.u8("hold answer code")?;
        let value = r.u64("hold answer value")?;
        r.finish()?;
        let answer = match code {
            0 => Self::Fetching,
            1 => Self::Held { keep_secs: value },
            2 => Self::TooLarge { max: value },
            3 => Self::QuotaFull { free: value },
            4 => Self::Busy,
            5 => Self::Malformed,
            6 => Self::Failed,
            7 => Self::NotOffered,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "hold answer code",
                    reason: "unknown code",
                });
            }
        };
        if answer.code_and_value().1 != value {
            return Err(DecodeError::Invalid {
                field: "hold answer value",
                reason: "set in an answer that carries none",
            });
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_and_bad_ones_are_refused() {
        let layout = FileLayout::new(100_000).unwrap();
        let request = HoldRequest {
            hash: FileHash([7; 32]),
            ciphertext_len: layout.ciphertext_len(),
        };
        let bytes = request.encode();
        assert_eq!(HoldRequest::decode(&bytes).unwrap(), request);
        // One byte more or less, another version, a length no file has.
        assert!(HoldRequest::decode(&bytes[..HOLD_REQUEST_LEN - 1]).is_err());
        assert!(HoldRequest::decode(&[&bytes[..], &[0]].concat()).is_err());
        let mut other = bytes;
        other[0] = 2;
        assert!(matches!(
            HoldRequest::decode(&other),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        let bad = HoldRequest {
            ciphertext_len: 5,
            ..request
        };
        assert!(matches!(
            HoldRequest::decode(&bad.encode()),
            Err(DecodeError::Invalid {
                field: "ciphertext length",
                ..
            })
        ));

        for answer in [
            HoldAnswer::Fetching,
            HoldAnswer::Held { keep_secs: 604_800 },
            HoldAnswer::TooLarge { max: 1 << 27 },
            HoldAnswer::QuotaFull { free: 12 },
            HoldAnswer::Busy,
            HoldAnswer::Malformed,
            HoldAnswer::Failed,
            HoldAnswer::NotOffered,
        ] {
            assert_eq!(HoldAnswer::decode(&answer.encode()).unwrap(), answer);
        }
        let mut busy_with_value = HoldAnswer::Busy.encode();
        busy_with_value[9] = 1;
        assert!(HoldAnswer::decode(&busy_with_value).is_err());
        let mut unknown = HoldAnswer::Busy.encode();
        unknown[1] = 8;
        assert!(HoldAnswer::decode(&unknown).is_err());
    }
}
