//! A profile's network settings: what the app shows on its settings screen and what `Node::start` is
//! given. Kept sealed in the profile's store, so the bootstrap nodes a person uses are not readable from
//! the disk.

use std::path::Path;

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::NodeConfig;
use crate::mailbox::server::MailboxConfig;
use crate::net::NetConfig;
use crate::store::{Store, StoreError};

/// The store setting that holds [`NetworkSettings`].
pub const NETWORK_SETTING: &str = "network";
/// The setting that holds the automatic backups' schedule and code (`crate::backup::AutoBackup`).
pub const AUTO_BACKUP_SETTING: &str = "auto-backup";
/// Most bootstrap nodes (and, separately, extra mailbox nodes or peers) a profile keeps.
pub const MAX_CONFIGURED_ADDRS: usize = 32;
/// The file, inside the profile directory, of the mailbox this node serves for the LAN.
pub const MAILBOX_FILE: &str = "mailbox.redb";

/// Why settings could not be read or changed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored network settings are unreadable: {0}")]
    Unreadable(String),
    #[error("{0:?} is not a multiaddr")]
    BadAddress(String),
    #[error("{0} must end in /p2p/<peer id>")]
    NoPeerId(Multiaddr),
    #[error("at most {max} addresses")]
    TooMany { max: usize },
}

/// How a profile joins the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSettings {
    /// Stay on the LAN: mDNS only, no DHT, relays or bootstrap nodes.
    pub lan_only: bool,
    /// Community bootstrap nodes, each ending in `/p2p/<peer id>`. They also hold this profile's mail.
    #[serde(with = "addr_list")]
    pub bootstrap: Vec<Multiaddr>,
    /// Other mailbox servers for this profile's mail.
    #[serde(with = "addr_list")]
    pub mailbox_nodes: Vec<Multiaddr>,
    /// Peers to dial at start.
    #[serde(with = "addr_list")]
    pub peers: Vec<Multiaddr>,
    /// Addresses to listen on; empty means every IPv4 interface on ephemeral TCP and QUIC ports.
    #[serde(with = "addr_list")]
    pub listen: Vec<Multiaddr>,
    /// Find peers on the LAN with mDNS.
    pub mdns: bool,
    /// Hold sealed mail for LAN peers who are offline.
    pub serve_mailbox: bool,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            lan_only: false,
            bootstrap: Vec::new(),
            mailbox_nodes: Vec::new(),
            peers: Vec::new(),
            listen: Vec::new(),
            mdns: true,
            serve_mailbox: false,
        }
    }
}

impl NetworkSettings {
    /// The settings stored in the profile, or the defaults if none were saved.
    pub fn load(store: &Store) -> Result<Self, SettingsError> {
        Self::parse(store.setting_get(NETWORK_SETTING)?)
    }

    /// [`Self::load`] through a store reader (off the event loop).
    pub fn load_from(reader: &crate::store::StoreReader) -> Result<Self, SettingsError> {
        Self::parse(reader.setting_get(NETWORK_SETTING)?)
    }

    fn parse(stored: Option<zeroize::Zeroizing<Vec<u8>>>) -> Result<Self, SettingsError> {
        match stored {
            None => Ok(Self::default()),
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| SettingsError::Unreadable(e.to_string()))
            }
        }
    }

    /// Saves the settings in the profile (durable on return), after checking their bounds.
    pub fn save(&self, store: &mut Store) -> Result<(), SettingsError> {
        self.check()?;
        let bytes =
            serde_json::to_vec(self).map_err(|e| SettingsError::Unreadable(e.to_string()))?;
        store.setting_put(NETWORK_SETTING, &bytes)?;
        Ok(())
    }

    /// Checks the bounds and that every server address names its peer.
    pub fn check(&self) -> Result<(), SettingsError> {
        for list in [
            &self.bootstrap,
            &self.mailbox_nodes,
            &self.peers,
            &self.listen,
        ] {
            if list.len() > MAX_CONFIGURED_ADDRS {
                return Err(SettingsError::TooMany {
                    max: MAX_CONFIGURED_ADDRS,
                });
            }
        }
        for addr in self.bootstrap.iter().chain(&self.mailbox_nodes) {
            if crate::net::swarm::peer_id_of(addr).is_none() {
                return Err(SettingsError::NoPeerId(addr.clone()));
            }
        }
        Ok(())
    }

    /// What `Node::start` needs for these settings and the profile in `profile_dir`. Bootstrap nodes also
    /// serve as this profile's mailboxes.
    pub fn node_config(&self, profile_dir: &Path) -> NodeConfig {
        let mut net = NetConfig::default();
        if !self.listen.is_empty() {
            net.listen.clone_from(&self.listen);
        }
        net.bootstrap.clone_from(&self.bootstrap);
        net.lan_only = self.lan_only;
        net.mdns = self.mdns;
        let mut mailboxes = self.bootstrap.clone();
        mailboxes.extend(self.mailbox_nodes.iter().cloned());
        NodeConfig {
            net,
            peers: self.peers.clone(),
            mailboxes,
            serve_mailbox: self
                .serve_mailbox
                .then(|| (profile_dir.join(MAILBOX_FILE), MailboxConfig::default())),
            ..NodeConfig::default()
        }
    }
}

/// Multiaddrs as their text form.
mod addr_list {
    use libp2p::Multiaddr;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(addrs: &[Multiaddr], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(addrs.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Multiaddr>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| text.parse().map_err(D::Error::custom))
            .collect()
    }
}

/// Parses a server address typed by a person: a multiaddr ending in `/p2p/<peer id>`.
pub fn parse_server_addr(text: &str) -> Result<Multiaddr, SettingsError> {
    let addr: Multiaddr = text
        .trim()
        .parse()
        .map_err(|_| SettingsError::BadAddress(text.trim().to_owned()))?;
    if crate::net::swarm::peer_id_of(&addr).is_none() {
        return Err(SettingsError::NoPeerId(addr));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KdfParams;

    const BOOT: &str =
        "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

    #[test]
    fn settings_round_trip_through_the_sealed_store_and_become_a_node_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::create(dir.path(), &"pw".into(), KdfParams::INSECURE_FOR_TESTS).unwrap();
        assert_eq!(
            NetworkSettings::load(&store).unwrap(),
            NetworkSettings::default()
        );
        let settings = NetworkSettings {
            lan_only: true,
            bootstrap: vec![parse_server_addr(BOOT).unwrap()],
            serve_mailbox: true,
            ..NetworkSettings::default()
        };
        settings.save(&mut store).unwrap();
        assert_eq!(NetworkSettings::load(&store).unwrap(), settings);
        let config = settings.node_config(dir.path());
        assert!(config.net.lan_only);
        assert_eq!(config.mailboxes, settings.bootstrap);
        assert_eq!(
            config.serve_mailbox.map(|(path, _)| path),
            Some(dir.path().join(MAILBOX_FILE))
        );
        assert_eq!(config.net.listen, NetConfig::default().listen);
    }

    #[test]
    fn addresses_without_a_peer_id_or_past_the_bound_are_refused() {
        assert!(matches!(
            parse_server_addr("/ip4/127.0.0.1/tcp/4001"),
            Err(SettingsError::NoPeerId(_))
        ));
        assert!(matches!(
            parse_server_addr("not an address"),
            Err(SettingsError::BadAddress(_))
        ));
        let too_many = NetworkSettings {
            peers: vec![parse_server_addr(BOOT).unwrap(); MAX_CONFIGURED_ADDRS + 1],
            ..NetworkSettings::default()
        };
        assert!(matches!(
            too_many.check(),
            Err(SettingsError::TooMany { .. })
        ));
    }
}
