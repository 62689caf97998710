//! Fingerprints and safety numbers: short digit strings two people compare to know they hold each other's
//! real keys.
//!
//! A fingerprint is 30 digits derived from one identity key by [`FINGERPRINT_ITERATIONS`] rounds of SHA-512
//! (slow enough that grinding a key to match chosen digits is expensive). The safety number of two identities
//! is their two fingerprints, ordered by key bytes, so both sides compute the same 60 digits.

use std::fmt;

use sha2::{Digest, Sha512};

use crate::identity::IdentityKey;

/// Rounds of SHA-512 per fingerprint.
pub const FINGERPRINT_ITERATIONS: usize = 5200;
/// Digits in one fingerprint (6 groups of 5).
pub const FINGERPRINT_DIGITS: usize = 30;
const LABEL: &[u8] = b"tern/fingerprint/v1";
const GROUP: usize = 5;

/// The 30-digit fingerprint of one identity.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn of(key: &IdentityKey) -> Self {
        let mut hash = Sha512::new_with_prefix(LABEL);
        hash.update(key.as_bytes());
        let mut digest = hash.finalize();
        for _ in 1..FINGERPRINT_ITERATIONS {
            let mut h = Sha512::new();
            h.update(digest);
            h.update(key.as_bytes());
            digest = h.finalize();
        }
        let mut digits = String::with_capacity(FINGERPRINT_DIGITS);
        for chunk in digest[..FINGERPRINT_DIGITS].chunks_exact(GROUP) {
            let mut be = [0u8; 8];
            be[8 - GROUP..].copy_from_slice(chunk);
            digits.push_str(&format!("{:05}", u64::from_be_bytes(be) % 100_000));
        }
        Self(digits)
    }

    /// The digits with no spaces.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_groups(f, &self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

fn write_groups(f: &mut fmt::Formatter<'_>, digits: &str) -> fmt::Result {
    for (i, group) in digits.as_bytes().chunks(GROUP).enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        f.write_str(std::str::from_utf8(group).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// The 60-digit safety number of two identities; the same whichever side computes it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SafetyNumber(String);

impl SafetyNumber {
    pub fn between(a: &IdentityKey, b: &IdentityKey) -> Self {
        let (first, second) = if a.as_bytes() <= b.as_bytes() {
            (a, b)
        } else {
            (b, a)
        };
        let mut digits = Fingerprint::of(first).0;
        digits.push_str(Fingerprint::of(second).digits());
        Self(digits)
    }

    pub fn digits(&self) -> &str {
        &self.0
    }

    /// Whether typed or scanned digits match, ignoring spaces and other separators.
    pub fn matches(&self, typed: &str) -> bool {
        let mut typed_digits = typed.chars().filter(|c| !c.is_whitespace() && *c != '-');
        self.0.chars().all(|c| typed_digits.next() == Some(c)) && typed_digits.next().is_none()
    }
}

impl fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_groups(f, &self.0)
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn keys() -> (IdentityKey, IdentityKey) {
        let mut rng = ChaCha20Rng::seed_from_u64(20);
        (
            Identity::generate(&mut rng, 0).key(),
            Identity::generate(&mut rng, 0).key(),
        )
    }

    #[test]
    fn safety_number_is_order_independent_and_grouped() {
        let (a, b) = keys();
        let ab = SafetyNumber::between(&a, &b);
        assert_eq!(ab, SafetyNumber::between(&b, &a));
        assert_eq!(ab.digits().len(), 60);
        assert!(ab.digits().chars().all(|c| c.is_ascii_digit()));
        assert_eq!(ab.to_string().split(' ').count(), 12);
        assert!(ab.matches(&ab.to_string()));
        assert!(ab.matches(ab.digits()));
    }

    #[test]
    fn safety_number_rejects_near_misses() {
        let (a, b) = keys();
        let sn = SafetyNumber::between(&a, &b);
        let mut wrong = sn.digits().to_string();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(!sn.matches(&wrong));
        assert!(!sn.matches(&sn.digits()[..59]));
        assert!(!sn.matches(&format!("{}0", sn.digits())));
    }

    #[test]
    fn fingerprints_differ_between_identities() {
        let (a, b) = keys();
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
        assert_eq!(Fingerprint::of(&a).to_string().len(), 35);
    }
}
