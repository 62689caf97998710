//! The mailbox protocol: store-and-forward of sealed envelopes for offline users. Any node can serve it
//! (community bootstrap nodes, or a LAN peer started with `--mailbox`); every node is a client of it.

pub mod client;
pub mod group_client;
pub mod group_wire;
pub mod host;
pub mod server;
pub mod wire;

pub use server::{MailboxConfig, MailboxCounters, MailboxError, MailboxServer, MailboxStats};
pub use wire::{
    MAILBOX_PROTOCOL, MailboxCodec, MailboxProtocol, MailboxRequest, MailboxResponse, OwnerAuth,
    Refusal,
};
