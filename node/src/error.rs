//! [`NodeError`]: why an operation of the [`crate::node::Node`] handle or a [`crate::profile::Profile`]
//! failed.

use libp2p::Multiaddr;
use thiserror::Error;

use crate::engine::EngineError;
use crate::mailbox::server::MailboxError;
use crate::net::NetError;

/// Why a node command failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot dial {addr}: {reason}")]
    Dial { addr: Multiaddr, reason: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error("the node has stopped")]
    Stopped,
    /// A group operation was refused (docs/protocol.md §18).
    #[error(transparent)]
    Group(#[from] crate::group::GroupError),
    /// No group of this profile has this conversation id or name.
    #[error("no such group: {0}")]
    UnknownGroup(String),
    #[error(transparent)]
    File(#[from] crate::api::FileOpError),
    /// The cause is printed in the message, not also returned as a source.
    #[error("cannot open the mailbox this node serves: {0}")]
    Mailbox(MailboxError),
}

impl NodeError {
    /// The password did not open the profile.
    pub fn is_wrong_password(&self) -> bool {
        matches!(
            self.store_error(),
            Some(crate::store::StoreError::WrongPassword)
        )
    }

    /// Another process has the profile open.
    pub fn is_in_use(&self) -> bool {
        matches!(self.store_error(), Some(crate::store::StoreError::InUse))
    }

    /// The profile's disk is full or failing: nothing was saved, and the store opens its database again
    /// by itself (`crate::store::StoreError::DiskFailing`).
    pub fn is_disk_failing(&self) -> bool {
        self.store_error()
            .is_some_and(crate::store::StoreError::is_disk_failing)
    }

    fn store_error(&self) -> Option<&crate::store::StoreError> {
        match self {
            Self::Store(e) | Self::Engine(EngineError::Store(e)) => Some(e),
            Self::Settings(crate::settings::SettingsError::Store(e)) => Some(e),
            _ => None,
        }
    }
}
