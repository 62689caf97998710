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
    /// When this node commits an update of its own path in a group (docs/protocol.md §18.3).
    pub group_updates: GroupUpdates,
}

/// See [`NodeConfig::group_receipts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupReceipts {
    #[default]
    On,
    Off,
}

/// See [`NodeConfig::group_updates`]. A member commits an update once its leaf is still its KeyPackage's
/// (it joined and never committed a path) or a removal left it the one to fill the removed leaf's blank
/// nodes; each after a random delay, so that a group's members do not all commit at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupUpdates {
    /// After [`GROUP_UPDATE_DELAY_MIN`] plus a random share of [`GROUP_UPDATE_DELAY_PER_MEMBER`] for each
    /// member of the group.
    #[default]
    Spread,
    /// After a random delay of at most this (tests).
    Within(std::time::Duration),
    /// Never (tests that count a group's commits).
    Off,
}

/// The shortest delay before an update under [`GroupUpdates::Spread`].
pub const GROUP_UPDATE_DELAY_MIN: std::time::Duration = std::time::Duration::from_secs(60);
/// The spread of the delay per member under [`GroupUpdates::Spread`]: a group of 1,000 spreads its
/// members' updates over about half an hour, one every 2 s on average.
pub const GROUP_UPDATE_DELAY_PER_MEMBER: std::time::Duration = std::time::Duration::from_secs(2);

impl GroupUpdates {
    /// A random delay before an update in a group of `members`; `None`: no update.
    pub fn delay(self, members: usize) -> Option<std::time::Duration> {
        let (min, spread) = match self {
            Self::Off => return None,
            Self::Within(max) => (std::time::Duration::ZERO, max),
            Self::Spread => (
                GROUP_UPDATE_DELAY_MIN,
                GROUP_UPDATE_DELAY_PER_MEMBER
                    .saturating_mul(u32::try_from(members).unwrap_or(u32::MAX)),
            ),
        };
        let share = rand::random_range(0.0..=1.0);
        Some(min + spread.mul_f64(share))
    }
}
