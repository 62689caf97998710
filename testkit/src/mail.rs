//! Identities and sealed envelopes for tests, on the wall clock.

use std::time::{SystemTime, UNIX_EPOCH};

use tern_protocol::{Envelope, Identity};

/// Seconds since the Unix epoch.
pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh identity.
pub fn identity() -> Identity {
    Identity::generate(&mut rand::rng(), now_s() * 1000)
}

/// A sealed envelope from `sender` to `recipient`, expiring in an hour.
pub fn envelope(sender: &Identity, recipient: &Identity, text: &[u8]) -> Envelope {
    Envelope::seal(
        sender,
        recipient.public(),
        text,
        now_s() + 3600,
        &mut rand::rng(),
    )
    .unwrap()
}
