//! tern-node: the libp2p swarm, the mailbox protocol, the encrypted store, and the `Node` handle that the
//! GUI and the `tern-node` CLI both drive.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod backup;
pub mod config;
pub mod contact;
mod convert;
pub mod delivery;
pub mod drafts;
pub mod engine;
pub mod envelope_wire;
pub mod error;
pub mod files;
pub mod frame;
pub mod group;
pub mod mailbox;
pub mod names;
pub mod net;
pub mod node;
pub mod outbox;
pub mod prefs;
pub mod privacy;
pub mod profile;
pub mod redb_file;
pub mod settings;
pub mod store;
pub mod timer;
