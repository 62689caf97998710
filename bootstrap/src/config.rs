//! The server's configuration: a TOML file whose every field has a default, overridden by command-line flags.
//!
//! `bootstrap.example.toml` next to this crate's manifest shows every option with its default; a test checks
//! that it parses to [`Config::default()`].

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use libp2p::{Multiaddr, multiaddr::Protocol};
use serde::{Deserialize, Serialize};
use tern_node::{
    mailbox::server::MailboxConfig,
    net::{
        Limits,
        swarm::{MAX_BOOTSTRAP_ADDRS, MAX_LISTEN_ADDRS, peer_id_of},
    },
};
use thiserror::Error;

/// The port a bootstrap node listens on by default, for TCP and for QUIC.
pub const DEFAULT_PORT: u16 = 4001;
/// Where the node keeps its key and mailbox database by default (systemd's `StateDirectory`).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/tern-bootstrap";
/// How long a connection with no open streams stays up by default.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 120;
/// How often expired envelopes are deleted by default.
pub const DEFAULT_PURGE_INTERVAL_SECS: u64 = 300;
/// The most external addresses a configuration may name.
pub const MAX_EXTERNAL_ADDRS: usize = 16;

/// Why a configuration was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a [`Config`].
    #[error("cannot parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A federation peer's address does not say which peer it reaches.
    #[error("peer address {0} does not end in /p2p/<peer id>")]
    PeerWithoutId(Multiaddr),
    /// A list holds more addresses than allowed.
    #[error("{what}: {got} addresses, at most {max}")]
    TooManyAddresses {
        /// Which list.
        what: &'static str,
        /// How many were given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// There is nothing to listen on.
    #[error("no listen address configured")]
    NoListenAddress,
    /// A numeric option is out of range.
    #[error("{option} must be {requirement}")]
    OutOfRange {
        /// The option.
        option: &'static str,
        /// What it must be.
        requirement: &'static str,
    },
}

/// Everything a bootstrap server needs to know. Every field has a default (see [`Config::default`]), so an
/// empty file is a valid configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the node key (`node.key`) and the mailbox database (`mailbox.redb`) live. Created if missing.
    pub data_dir: PathBuf,
    /// Addresses to listen on. Default: TCP and QUIC on every IPv4 interface, port 4001.
    pub listen: Vec<Multiaddr>,
    /// Addresses at which this node is publicly reachable, announced to peers (identify, relay
    /// reservations) without waiting for AutoNAT to confirm them. Default: none.
    pub external_addresses: Vec<Multiaddr>,
    /// Other bootstrap nodes to federate with, each ending in `/p2p/<peer id>`: they go into the Kademlia
    /// routing table and are dialled at start and whenever the connection is lost. Default: none.
    pub peers: Vec<Multiaddr>,
    /// Where to serve Prometheus metrics over HTTP (`GET /metrics`). Default: off.
    pub metrics: Option<SocketAddr>,
    /// Mailbox limits.
    pub mailbox: MailboxLimits,
    /// Connection limits.
    pub connections: ConnectionLimits,
    /// Seconds a connection with no open streams stays up.
    pub idle_timeout_secs: u64,
    /// Seconds between sweeps that delete expired envelopes.
    pub purge_interval_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        let any_v4 = Multiaddr::empty().with(Protocol::Ip4([0, 0, 0, 0].into()));
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: vec![
                any_v4.clone().with(Protocol::Tcp(DEFAULT_PORT)),
                any_v4
                    .with(Protocol::Udp(DEFAULT_PORT))
                    .with(Protocol::QuicV1),
            ],
            external_addresses: Vec::new(),
            peers: Vec::new(),
            metrics: None,
            mailbox: MailboxLimits::default(),
            connections: ConnectionLimits::default(),
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            purge_interval_secs: DEFAULT_PURGE_INTERVAL_SECS,
        }
    }
}

impl Config {
    /// Reads a TOML file; missing fields take their defaults, unknown fields are refused.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Parses TOML text; missing fields take their defaults, unknown fields are refused.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::new(),
            source: Box::new(source),
        })
    }

    /// Checks what serde cannot: address counts, `/p2p/` suffixes, and numeric ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() {
            return Err(ConfigError::NoListenAddress);
        }
        check_len("listen", self.listen.len(), MAX_LISTEN_ADDRS)?;
        check_len("peers", self.peers.len(), MAX_BOOTSTRAP_ADDRS)?;
        check_len(
            "external_addresses",
            self.external_addresses.len(),
            MAX_EXTERNAL_ADDRS,
        )?;
        if let Some(addr) = self.peers.iter().find(|a| peer_id_of(a).is_none()) {
            return Err(ConfigError::PeerWithoutId(addr.clone()));
        }
        let positive = |option, value: u64| {
            if value == 0 {
                Err(ConfigError::OutOfRange {
                    option,
                    requirement: "at least 1",
                })
            } else {
                Ok(())
            }
        };
        positive("idle_timeout_secs", self.idle_timeout_secs)?;
        positive("purge_interval_secs", self.purge_interval_secs)?;
        positive(
            "mailbox.challenge_ttl_secs",
            self.mailbox.challenge_ttl_secs,
        )?;
        positive("mailbox.max_ttl_secs", self.mailbox.max_ttl_secs)?;
        let c = &self.connections;
        for (option, value) in [
            ("connections.max_established", c.max_established),
            (
                "connections.max_established_per_peer",
                c.max_established_per_peer,
            ),
            ("connections.max_pending_incoming", c.max_pending_incoming),
            ("connections.max_pending_outgoing", c.max_pending_outgoing),
        ] {
            positive(option, u64::from(value))?;
        }
        Ok(())
    }

    /// [`Config::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// [`Config::purge_interval_secs`] as a duration.
    pub fn purge_interval(&self) -> Duration {
        Duration::from_secs(self.purge_interval_secs)
    }
}

fn check_len(what: &'static str, got: usize, max: usize) -> Result<(), ConfigError> {
    if got > max {
        return Err(ConfigError::TooManyAddresses { what, got, max });
    }
    Ok(())
}

/// What one mailbox, one depositor and the whole store may hold. Together they bound the disk the mailbox
/// database can use: about `max_total_bytes`, plus redb's overhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailboxLimits {
    /// Envelopes one mailbox may hold; further deposits are refused (`quota_count`) until the owner fetches.
    pub quota_envelopes: u32,
    /// Envelope bytes one mailbox may hold (`quota_bytes`).
    pub quota_bytes: u64,
    /// The longest an envelope is kept after its deposit, in seconds, however late its own expiry (capped at
    /// 30 days, the protocol's limit). Expired mail is deleted by the periodic purge.
    pub max_ttl_secs: u64,
    /// Envelope bytes the whole server may hold (`server_full`): the disk budget.
    pub max_total_bytes: u64,
    /// Deposits one peer may make per minute, with a burst of as many (`rate_limited`). Zero refuses every
    /// deposit.
    pub deposits_per_minute: u32,
    /// Seconds an owner has to answer a fetch challenge (`bad_challenge` after that).
    pub challenge_ttl_secs: u64,
}

impl Default for MailboxLimits {
    /// The mailbox server's own defaults ([`MailboxConfig::default`]), so there is one policy.
    fn default() -> Self {
        let c = MailboxConfig::default();
        Self {
            quota_envelopes: c.quota_envelopes,
            quota_bytes: c.quota_bytes,
            max_ttl_secs: c.max_ttl_s,
            max_total_bytes: c.max_total_bytes,
            deposits_per_minute: c.deposits_per_minute,
            challenge_ttl_secs: c.challenge_ttl_s,
        }
    }
}

impl MailboxLimits {
    /// The mailbox server's configuration for these limits.
    pub fn to_mailbox_config(&self) -> MailboxConfig {
        MailboxConfig {
            quota_envelopes: self.quota_envelopes,
            quota_bytes: self.quota_bytes,
            max_ttl_s: self.max_ttl_secs,
            max_total_bytes: self.max_total_bytes,
            deposits_per_minute: self.deposits_per_minute,
            challenge_ttl_s: self.challenge_ttl_secs,
        }
    }
}

/// Caps on connections, enforced before any protocol runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Established connections in total: bounds memory and file descriptors.
    pub max_established: u32,
    /// Established connections to one peer: one peer cannot take all the slots.
    pub max_established_per_peer: u32,
    /// Incoming connections still in their handshake: bounds the cost of a connection flood.
    pub max_pending_incoming: u32,
    /// Outgoing connections still in their handshake (Kademlia, federation, AutoNAT dial-backs).
    pub max_pending_outgoing: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_established: 4_096,
            max_established_per_peer: 8,
            max_pending_incoming: 256,
            max_pending_outgoing: 64,
        }
    }
}

impl From<ConnectionLimits> for Limits {
    fn from(c: ConnectionLimits) -> Self {
        Limits {
            max_established: c.max_established,
            max_established_per_peer: c.max_established_per_peer,
            max_pending_incoming: c.max_pending_incoming,
            max_pending_outgoing: c.max_pending_outgoing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn example_file_shows_the_defaults() {
        let text = include_str!("../bootstrap.example.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
    }

    #[test]
    fn default_listens_on_tcp_and_quic_4001() {
        let listen: Vec<String> = Config::default()
            .listen
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            listen,
            ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(matches!(
            Config::from_toml("listn = []"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            Config::from_toml("[mailbox]\nquota = 1"),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn partial_sections_keep_other_defaults() {
        let config =
            Config::from_toml("metrics = \"127.0.0.1:9464\"\n[mailbox]\nquota_envelopes = 5\n")
                .unwrap();
        assert_eq!(config.mailbox.quota_envelopes, 5);
        assert_eq!(
            config.mailbox.quota_bytes,
            MailboxLimits::default().quota_bytes
        );
        assert_eq!(config.metrics, Some("127.0.0.1:9464".parse().unwrap()));
    }

    #[test]
    fn peers_need_a_peer_id() {
        let config = Config {
            peers: vec!["/ip4/192.0.2.1/tcp/4001".parse().unwrap()],
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::PeerWithoutId(_))
        ));
    }

    #[test]
    fn zero_intervals_are_refused() {
        let config = Config {
            purge_interval_secs: 0,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutOfRange { .. })
        ));
    }
}
