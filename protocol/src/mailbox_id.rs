//! Mailbox ids: the address, derived from an identity key, under which mailboxes keep that identity's mail.
//!
//! It sits between `identity` (it is derived from an identity key) and `envelope` (which carries it), so
//! neither of those reaches into the other; `IdentityKey::mailbox_id` is defined here for the same reason.
//! `envelope` re-exports [`MailboxId`].

use std::fmt;

use crate::crypto;
use crate::identity::IdentityKey;

const LABEL_MAILBOX: &[u8] = b"tern/mailbox/v1";

/// Where mail for one identity is deposited: SHA-256 over a label and the identity key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(pub [u8; 32]);

impl MailboxId {
    pub fn for_identity(key: &IdentityKey) -> Self {
        Self(crypto::sha256(&[LABEL_MAILBOX, key.as_bytes()]))
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxId({})", bs58::encode(&self.0[..8]).into_string())
    }
}

impl IdentityKey {
    /// The mailbox this identity's mail is deposited under.
    pub fn mailbox_id(&self) -> MailboxId {
        MailboxId::for_identity(self)
    }
}
