//! tern-bootstrap: the Tern community node.
//!
//! A bootstrap node is a public, always-on libp2p peer that Tern user nodes dial first. It
//!
//! - answers Kademlia queries on Tern's DHT (always in server mode) and federates with other bootstrap
//!   nodes given as [`Config::peers`];
//! - is a circuit relay v2 server, so peers behind NAT can be reached (and then hole-punch);
//! - is an AutoNAT server, so peers learn whether they are publicly reachable;
//! - is a mailbox server (`/tern/mailbox/1`): it stores sealed envelopes for offline recipients, hands them to
//!   their owner after a signed challenge, and pushes new mail (`/tern/envelope/1`) to an owner who is
//!   connected;
//! - optionally serves Prometheus metrics.
//!
//! [`Server::spawn`] starts it all on the current tokio runtime; [`Server::join`] waits for it to fail and
//! [`Server::shutdown`] stops it. The `tern-bootstrap` binary is a thin wrapper: flags, a TOML file, logging
//! and signals.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod behaviour;
pub mod config;
pub mod key;
mod metrics;
pub mod pong;
pub mod server;

pub use behaviour::{ServerBehaviour, ServerBehaviourEvent};
pub use config::{Config, ConfigError, ConnectionLimits, FileLimits, MailboxLimits, RelayLimits};
pub use key::{KeyError, NODE_KEY_FILE, load_or_create};
pub use server::{FILES_DIR, MAILBOX_DB_FILE, Server, ServerError};
