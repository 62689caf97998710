//! Test scaffolding shared by Tern's integration tests, written once. A dev-dependency only: nothing here
//! ships, and nothing here may be used by a crate's normal code.
//!
//! - [`profile`]: temporary profiles (an [`Engine`](tern_node::engine::Engine) with a fast KDF) and
//!   introducing them to each other.
//! - [`wait`]: waiting for a node's events, and polling a counter that no event announces.
//! - [`net`]: loopback networks: nodes on 127.0.0.1 with no mDNS, their dialable addresses, a bootstrap
//!   server spawned in-process.
//! - [`raw`]: a request-response codec that writes whatever bytes a test gives it, for hostile peers.
//! - [`client`]: a bare libp2p peer that speaks `/tern/mailbox/1` (typed or raw) and `/tern/envelope/1`
//!   (raw outbound, typed inbound pushes).
//! - [`mail`]: identities and sealed envelopes for tests.
//! - [`cli`]: drivers for the `tern-node` and `tern-bootstrap` binaries: profiles through `--json`, a
//!   running `tern-node run`, a bootstrap process, the lines a child prints.
//! - [`metrics`]: reading a bootstrap node's Prometheus endpoint.
//! - [`demo`]: the desktop app's demo profiles (screenshots, the frame benchmark) and read history
//!   written straight into a store.
//! - [`disk`]: full disks: a redb storage backend that fails writes on demand, a real small tmpfs.
//! - [`files`]: walking a directory and looking for bytes in it (the plaintext checks); the fuzz corpora.

pub mod cli;
pub mod client;
pub mod demo;
pub mod disk;
pub mod files;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod profile;
pub mod raw;
pub mod wait;
