//! [`NodeConfig`]: how a node joins the network, besides the profile it runs.

use libp2p::Multiaddr;

use crate::mailbox::server::MailboxConfig;
use crate::net::NetConfig;

/// What `Node::start` needs besides the profile.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    pub net: NetConfig,
    /// Peers to dial at start (`/ip4/…/tcp/…/p2p/<peer id>`), e.g. a friend on the LAN without mDNS.
    pub peers: Vec<Multiaddr>,
    /// Mailbox servers that hold this profile's mail (each ending in `/p2p/<peer id>`): fetched from whenever
    /// connected, and used for others' mail when their own mailboxes are unknown. The CLI uses the bootstrap
    /// nodes.
    pub mailboxes: Vec<Multiaddr>,
    /// Serve as a mailbox for others (a LAN peer started with `--mailbox`): the database path and limits.
    pub serve_mailbox: Option<(std::path::PathBuf, MailboxConfig)>,
    /// Whether this node sends delivery and read receipts in groups (docs/protocol.md §18.10). On by
    /// default; tests that count a group's traffic message by message turn it off.
    pub group_receipts: GroupReceipts,
}

/// See [`NodeConfig::group_receipts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupReceipts {
    #[default]
    On,
    Off,
}
