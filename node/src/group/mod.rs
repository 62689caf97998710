//! Groups (docs/protocol.md §18): an MLS (RFC 9420) group state machine over `openmls`, with members bound
//! to Tern identities, names and roles in a group-context extension, the commit-ordering rule without a
//! server (lowest hash among concurrent commits, with rollback), and sealed persistence.
//!
//! - `error.rs`: [`GroupError`], one typed error per refusal.
//! - `provider.rs`: the openmls provider (pure-Rust crypto, an in-memory key-value store per group) and the
//!   codec that snapshots that store.
//! - `credential.rs`: the member credential (§18.2) and the `tern_group_info` extension (§18.3).
//! - `key_package.rs`: making and checking KeyPackages.
//! - `state.rs`: [`Group`] and its own operations (create, join, add, remove, leave, rename, promote, timer,
//!   send).
//! - `check.rs`: the checks every commit passes before it is merged.
//! - `receive.rs`: [`Group::process`]: incoming messages, and the rollback onto a winning commit.
//! - `ordering.rs`: the rollback records and the winner rule of §18.5.
//! - `persist.rs`: the group state's byte form (sealed by the store, never written in the clear).
//! - `restored.rs`: [`RestoredGroup`], what a backup carries of a group (no MLS state).
//!
//! Nothing here does I/O: bytes in, bytes out. The node moves them over sessions, gossip and mailboxes.

mod check;
mod credential;
mod error;
mod key_package;
mod ordering;
mod persist;
mod provider;
mod receive;
mod restored;
mod state;

pub use check::CommitSummary;
pub use credential::{GroupInfo, GroupQueue, MemberCredential};
pub use error::GroupError;
pub use key_package::{KeyPackageIn, PendingKeyPackage, new_key_package};
pub use persist::stored_group_id;
pub use restored::RestoredGroup;
pub use state::{CommitOut, Group, Processed};

/// The MLS group id a group message (commit, proposal or application message) is for, read without any
/// group state: the node routes the message to its group by it.
pub fn group_id_of(bytes: &[u8]) -> Result<Vec<u8>, GroupError> {
    Ok(check::parse_protocol(bytes)?.group_id().as_slice().to_vec())
}

/// The MLS group id and epoch a group message is for, read without any group state: the node checks a
/// gossiped message against the topic it came on (§18.6).
pub fn group_epoch_of(bytes: &[u8]) -> Result<(Vec<u8>, u64), GroupError> {
    let message = check::parse_protocol(bytes)?;
    Ok((
        message.group_id().as_slice().to_vec(),
        message.epoch().as_u64(),
    ))
}

/// The MLS exporter label of a group's gossip topic (§18.6).
pub const TOPIC_LABEL: &str = "tern/group/topic/v1";
/// The prefix of every group topic; 32 hex digits of the epoch's exporter output follow.
pub const TOPIC_PREFIX: &str = "tern-group/1/";

/// The MLS ciphersuite of every Tern group: X25519, ChaCha20-Poly1305, SHA-256, Ed25519 (0x0003).
pub const CIPHERSUITE: openmls::prelude::Ciphersuite =
    openmls::prelude::Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
/// The group-context extension type of `tern_group_info` (MLS private-use range).
pub const GROUP_INFO_EXTENSION: u16 = 0xff54;
/// Most members of one group.
pub const MAX_GROUP_MEMBERS: usize = 1024;
/// Longest group name, in bytes.
pub const MAX_GROUP_NAME_LEN: usize = 128;
/// Most admins besides the creator.
pub const MAX_ADMINS: usize = 64;
/// Longest MLS message (any kind), Welcome and encoded KeyPackage accepted or sent (§18.4, §18.7).
pub use tern_protocol::group_wire::{MAX_GROUP_MESSAGE_LEN, MAX_KEY_PACKAGE_LEN, MAX_WELCOME_LEN};
/// Epochs a member can roll back over (snapshots kept), and past epochs whose messages still decrypt.
pub const ROLLBACK_EPOCHS: usize = 4;
/// Losing commits remembered per epoch.
pub const MAX_CANDIDATES: usize = 8;
/// Own application messages kept for re-sending after a rollback.
pub const MAX_RESEND: usize = 256;
/// `(sender, message id)` pairs remembered per group to drop copies.
pub const MAX_SEEN_IDS: usize = 4096;
/// Messages that could not be processed yet (a future epoch, another branch), kept to retry.
pub const MAX_PARKED: usize = 256;
/// Longest persisted group state.
pub const MAX_GROUP_STATE_LEN: usize = 64 * 1024 * 1024;
/// How long a KeyPackage is valid.
pub const KEY_PACKAGE_LIFETIME_S: u64 = 28 * 24 * 3600;

/// The sealed setting that holds this profile's group links and the join requests waiting for approval
/// (docs/protocol.md §18.11; kept by `crate::node`'s group links).
pub const GROUP_LINKS_SETTING: &str = "group-links";
