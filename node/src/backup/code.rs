//! The recovery code: 32 random bytes and an 8-byte checksum, written as 64 characters of Crockford's
//! base32 in 16 groups of 4 (docs/protocol.md §20.1).

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use super::BackupError;

/// The characters of a recovery code (Crockford's base32: no I, L, O or U).
pub const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a recovery code, without separators.
pub const CODE_CHARS: usize = 64;
/// Random bytes a recovery code carries (256 bits).
pub const CODE_SECRET_LEN: usize = 32;
const CHECK_LEN: usize = 8;
const CHECK_CONTEXT: &str = "tern backup v1 recovery code checksum";

/// The secret an archive is sealed under. Zeroized on drop; its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct RecoveryCode(Box<Zeroizing<[u8; CODE_SECRET_LEN]>>);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(..)")
    }
}

fn checksum(secret: &[u8; CODE_SECRET_LEN]) -> [u8; CHECK_LEN] {
    let full = blake3::derive_key(CHECK_CONTEXT, secret);
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&full[..CHECK_LEN]);
    out
}

impl RecoveryCode {
    /// A new random code.
    pub fn generate(rng: &mut (impl rand::CryptoRng + ?Sized)) -> Self {
        let mut secret = Box::new(Zeroizing::new([0u8; CODE_SECRET_LEN]));
        rng.fill_bytes(secret.as_mut_slice());
        Self(secret)
    }

    /// A code from its 32 secret bytes (tests and vectors).
    pub fn from_secret(bytes: [u8; CODE_SECRET_LEN]) -> Self {
        let mut bytes = Zeroizing::new(bytes);
        let mut secret = Box::new(Zeroizing::new([0u8; CODE_SECRET_LEN]));
        secret.copy_from_slice(bytes.as_slice());
        bytes.zeroize();
        Self(secret)
    }

    pub(super) fn secret(&self) -> &[u8; CODE_SECRET_LEN] {
        &self.0
    }

    /// Reads a code as the user typed it: case and spaces or dashes do not matter, and `O`, `I`, `L`
    /// read as `0`, `1`, `1`. [`BackupError::MalformedCode`] if it is not 64 such characters, or
    /// if its checksum fails (a typo).
    pub fn parse(text: &str) -> Result<Self, BackupError> {
        let mut bits: u64 = 0;
        let mut nbits = 0u32;
        let mut bytes = Zeroizing::new([0u8; CODE_SECRET_LEN + CHECK_LEN]);
        let mut filled = 0usize;
        let mut chars = 0usize;
        for c in text.chars() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            let value = CODE_ALPHABET
                .iter()
                .position(|&a| char::from(a) == c)
                .ok_or(BackupError::MalformedCode(
                    "a character that is not in a recovery code",
                ))?;
            chars += 1;
            if chars > CODE_CHARS {
                return Err(BackupError::MalformedCode("too many characters"));
            }
            bits = (bits << 5) | value as u64;
            nbits += 5;
            if nbits >= 8 {
                nbits -= 8;
                bytes[filled] = (bits >> nbits) as u8;
                filled += 1;
                bits &= (1 << nbits) - 1;
            }
        }
        bits.zeroize();
        if chars != CODE_CHARS {
            return Err(BackupError::MalformedCode("too few characters"));
        }
        let mut secret = [0u8; CODE_SECRET_LEN];
        secret.copy_from_slice(&bytes[..CODE_SECRET_LEN]);
        let code = Self::from_secret(secret);
        if checksum(code.secret())[..] != bytes[CODE_SECRET_LEN..] {
            return Err(BackupError::MalformedCode(
                "the checksum does not match: a character is mistyped",
            ));
        }
        Ok(code)
    }

    /// The code to write down: 64 characters in 16 groups of 4, separated by spaces.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; CODE_SECRET_LEN + CHECK_LEN]);
        bytes[..CODE_SECRET_LEN].copy_from_slice(self.secret());
        bytes[CODE_SECRET_LEN..].copy_from_slice(&checksum(self.secret()));
        let mut out = Zeroizing::new(String::with_capacity(CODE_CHARS + CODE_CHARS / 4));
        let mut bits: u64 = 0;
        let mut nbits = 0u32;
        let mut written = 0usize;
        for &byte in bytes.iter() {
            bits = (bits << 8) | u64::from(byte);
            nbits += 8;
            while nbits >= 5 {
                nbits -= 5;
                if written > 0 && written.is_multiple_of(4) {
                    out.push(' ');
                }
                out.push(char::from(CODE_ALPHABET[((bits >> nbits) & 31) as usize]));
                written += 1;
            }
            bits &= (1 << nbits) - 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_back_forgiving_case_separators_and_lookalikes_and_refuses_typos() {
        let code = RecoveryCode::from_secret([7u8; 32]);
        let text = code.to_text();
        assert_eq!(text.len(), 64 + 15);
        assert_eq!(text.split(' ').count(), 16);
        let back = RecoveryCode::parse(&text.to_lowercase().replace(' ', "-")).unwrap();
        assert_eq!(back.secret(), code.secret());
        let with_o = text.replace('0', "o");
        assert_eq!(
            RecoveryCode::parse(&with_o).unwrap().secret(),
            code.secret()
        );

        // One character changed: the checksum catches it.
        let mut typo: Vec<char> = text.chars().collect();
        typo[5] = if typo[5] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        assert!(matches!(
            RecoveryCode::parse(&typo),
            Err(BackupError::MalformedCode(_))
        ));
        assert!(matches!(
            RecoveryCode::parse(&text[..40]),
            Err(BackupError::MalformedCode(_))
        ));
        assert!(matches!(
            RecoveryCode::parse("U000"),
            Err(BackupError::MalformedCode(_))
        ));
    }
}
