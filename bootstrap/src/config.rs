//! The server's configuration: a TOML file whose every field has a default, overridden by command-line flags.
//!
//! `bootstrap.example.toml` next to this crate's manifest shows every option with its default; a test checks
//! that it parses to [`Config::default()`].

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use libp2p::{Multiaddr, multiaddr::Protocol, relay};
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

// Relay limits made for conversations. libp2p's defaults (2 minutes and 128 KiB per circuit, 16 circuits,
// 4 per peer, a circuit per peer every 2 minutes) are for a short hop before hole punching; a pair behind a
// symmetric NAT never punches through and talks over the circuit for as long as both are online.

/// Relay reservations held at once, all peers together (a reservation is a small table entry on a
/// connection the peer keeps open anyway).
pub const DEFAULT_RELAY_MAX_RESERVATIONS: u32 = 1_024;
/// Relay reservations one peer may hold (one per connection; renewals replace the old one).
pub const DEFAULT_RELAY_MAX_RESERVATIONS_PER_PEER: u32 = 4;
/// How long a reservation lasts before the peer must renew it, in seconds.
pub const DEFAULT_RELAY_RESERVATION_SECS: u64 = 3_600;
/// Relayed circuits open at once, all peers together: bounds the relay's buffers and bandwidth.
pub const DEFAULT_RELAY_MAX_CIRCUITS: u32 = 256;
/// Relayed circuits one peer may take part in at once, as either end: a user with many contacts behind
/// symmetric NATs, plus the circuits opened while two peers race to connect.
pub const DEFAULT_RELAY_MAX_CIRCUITS_PER_PEER: u32 = 32;
/// How long one circuit may stay open, in seconds (then the peers open a new one).
pub const DEFAULT_RELAY_CIRCUIT_SECS: u64 = 3_600;
/// Bytes one circuit may carry, both directions together (then the peers open a new one): about eight
/// thousand text messages with their receipts.
pub const DEFAULT_RELAY_CIRCUIT_BYTES: u64 = 16 * 1024 * 1024;
/// New circuits one peer may open per minute (with a burst of as many): a reconnecting client is not
/// refused, a peer that opens circuits in a loop is.
pub const DEFAULT_RELAY_CIRCUITS_PER_MINUTE: u32 = 30;

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
    /// Files held for recipients who are offline (docs/protocol.md §19.9).
    pub files: FileLimits,
    /// Connection limits.
    pub connections: ConnectionLimits,
    /// Circuit relay limits.
    pub relay: RelayLimits,
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
            files: FileLimits::default(),
            connections: ConnectionLimits::default(),
            relay: RelayLimits::default(),
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
        positive(
            "mailbox.unclaimed_ttl_secs",
            self.mailbox.unclaimed_ttl_secs,
        )?;
        positive("mailbox.claim_ttl_secs", self.mailbox.claim_ttl_secs)?;
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
        let r = &self.relay;
        for (option, value) in [
            ("relay.max_reservations", u64::from(r.max_reservations)),
            (
                "relay.max_reservations_per_peer",
                u64::from(r.max_reservations_per_peer),
            ),
            ("relay.reservation_secs", r.reservation_secs),
            ("relay.max_circuits", u64::from(r.max_circuits)),
            (
                "relay.max_circuits_per_peer",
                u64::from(r.max_circuits_per_peer),
            ),
            ("relay.circuit_secs", r.circuit_secs),
            ("relay.circuit_bytes", r.circuit_bytes),
            (
                "relay.circuits_per_minute",
                u64::from(r.circuits_per_minute),
            ),
        ] {
            positive(option, value)?;
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
    /// Envelope bytes, in all, for mailboxes whose owner has not fetched here within `claim_ttl_secs`
    /// (`server_full` past it): what a flood of deposits to made-up mailboxes can take.
    pub unclaimed_bytes: u64,
    /// The longest mail for such an unclaimed mailbox is kept, in seconds.
    pub unclaimed_ttl_secs: u64,
    /// Seconds a mailbox stays claimed after its owner's last fetch or acknowledgement.
    pub claim_ttl_secs: u64,
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
            unclaimed_bytes: c.unclaimed_bytes,
            unclaimed_ttl_secs: c.unclaimed_ttl_s,
            claim_ttl_secs: c.claim_ttl_s,
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
            unclaimed_bytes: self.unclaimed_bytes,
            unclaimed_ttl_s: self.unclaimed_ttl_secs,
            claim_ttl_s: self.claim_ttl_secs,
        }
    }
}

/// What the server holds of files sent to recipients who are offline. A file is kept as long as mail
/// (`mailbox.max_ttl_secs` after it was last asked for), as ciphertext in `files/` in the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileLimits {
    /// The largest file held, in ciphertext bytes (16 bytes per 64 KiB over the file's size). Larger ones
    /// are refused, and their senders told the limit.
    pub max_file_bytes: u64,
    /// All files held together, in ciphertext bytes: the disk budget for files. Zero holds no files.
    pub quota_bytes: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        let limits = tern_node::files::HoldLimits::default();
        Self {
            max_file_bytes: limits.max_file_bytes,
            quota_bytes: limits.quota_bytes,
        }
    }
}

impl FileLimits {
    /// Whether the server holds files at all.
    pub fn enabled(&self) -> bool {
        self.quota_bytes > 0 && self.max_file_bytes > 0
    }

    /// The holder's limits, keeping files as long as `mailbox` keeps mail.
    pub fn to_hold_limits(&self, mailbox: &MailboxLimits) -> tern_node::files::HoldLimits {
        tern_node::files::HoldLimits {
            max_file_bytes: self.max_file_bytes,
            quota_bytes: self.quota_bytes,
            keep_for: Duration::from_secs(mailbox.max_ttl_secs),
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

/// What the circuit relay serves: reservations (a peer behind NAT asks to be reachable through this node)
/// and circuits (a contact reaches that peer through it). See docs/bootstrap.md for what each costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayLimits {
    /// Reservations held at once, all peers together.
    pub max_reservations: u32,
    /// Reservations one peer may hold.
    pub max_reservations_per_peer: u32,
    /// Seconds a reservation lasts before the peer must renew it.
    pub reservation_secs: u64,
    /// Circuits open at once, all peers together.
    pub max_circuits: u32,
    /// Circuits one peer may take part in at once, as either end.
    pub max_circuits_per_peer: u32,
    /// Seconds one circuit may stay open.
    pub circuit_secs: u64,
    /// Bytes one circuit may carry, both directions together.
    pub circuit_bytes: u64,
    /// New circuits (and new reservations) one peer may ask for per minute, with a burst of as many.
    pub circuits_per_minute: u32,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_reservations: DEFAULT_RELAY_MAX_RESERVATIONS,
            max_reservations_per_peer: DEFAULT_RELAY_MAX_RESERVATIONS_PER_PEER,
            reservation_secs: DEFAULT_RELAY_RESERVATION_SECS,
            max_circuits: DEFAULT_RELAY_MAX_CIRCUITS,
            max_circuits_per_peer: DEFAULT_RELAY_MAX_CIRCUITS_PER_PEER,
            circuit_secs: DEFAULT_RELAY_CIRCUIT_SECS,
            circuit_bytes: DEFAULT_RELAY_CIRCUIT_BYTES,
            circuits_per_minute: DEFAULT_RELAY_CIRCUITS_PER_MINUTE,
        }
    }
}

impl RelayLimits {
    /// The relay behaviour's configuration for these limits. Rate limits are per peer only: many users
    /// share one address behind a carrier-grade NAT, so libp2p's per-IP limiters are left out.
    pub fn to_relay_config(&self) -> relay::Config {
        let count = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
        // A token every (60 s / n), up to n at once: n per minute with a burst of n.
        let per_minute = std::num::NonZeroU32::new(self.circuits_per_minute.max(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        let refill = Duration::from_secs(60) / per_minute.get();
        relay::Config {
            max_reservations: count(self.max_reservations),
            max_reservations_per_peer: count(self.max_reservations_per_peer),
            reservation_duration: Duration::from_secs(self.reservation_secs),
            reservation_rate_limiters: Vec::new(),
            max_circuits: count(self.max_circuits),
            max_circuits_per_peer: count(self.max_circuits_per_peer),
            max_circuit_duration: Duration::from_secs(self.circuit_secs),
            max_circuit_bytes: self.circuit_bytes,
            circuit_src_rate_limiters: Vec::new(),
        }
        .reservation_rate_per_peer(per_minute, refill)
        .circuit_src_per_peer(per_minute, refill)
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
    fn relay_limits_map_onto_the_relay_config() {
        let limits = RelayLimits {
            max_reservations: 10,
            max_reservations_per_peer: 2,
            reservation_secs: 600,
            max_circuits: 20,
            max_circuits_per_peer: 3,
            circuit_secs: 900,
            circuit_bytes: 1_000_000,
            circuits_per_minute: 2,
        };
        let relay = limits.to_relay_config();
        assert_eq!(relay.max_reservations, 10);
        assert_eq!(relay.max_reservations_per_peer, 2);
        assert_eq!(relay.reservation_duration, Duration::from_secs(600));
        assert_eq!(relay.max_circuits, 20);
        assert_eq!(relay.max_circuits_per_peer, 3);
        assert_eq!(relay.max_circuit_duration, Duration::from_secs(900));
        assert_eq!(relay.max_circuit_bytes, 1_000_000);
        // Per peer only: two circuits in a burst, the third refused, another peer (same address) served.
        let mut relay = relay;
        let [limiter] = &mut relay.circuit_src_rate_limiters[..] else {
            panic!("one circuit rate limiter expected");
        };
        let addr: Multiaddr = "/ip4/198.51.100.1/tcp/1".parse().unwrap();
        let (one, two) = (libp2p::PeerId::random(), libp2p::PeerId::random());
        let now = std::time::Instant::now();
        assert!(limiter.try_next(one, &addr, now));
        assert!(limiter.try_next(one, &addr, now));
        assert!(!limiter.try_next(one, &addr, now));
        assert!(limiter.try_next(two, &addr, now));
        // A token comes back every 30 s.
        assert!(limiter.try_next(one, &addr, now + Duration::from_secs(30)));
        assert_eq!(relay.reservation_rate_limiters.len(), 1);
    }

    #[test]
    fn relay_defaults_are_made_for_conversations() {
        let relay = RelayLimits::default().to_relay_config();
        let libp2p = libp2p::relay::Config::default();
        assert!(relay.max_circuit_duration >= Duration::from_secs(30 * 60));
        assert!(relay.max_circuit_bytes >= 1024 * 1024);
        assert!(relay.max_circuits > libp2p.max_circuits);
        assert!(relay.max_circuits_per_peer > libp2p.max_circuits_per_peer);
        assert!(relay.max_reservations > libp2p.max_reservations);
    }

    #[test]
    fn relay_section_parses_and_zero_limits_are_refused() {
        let config = Config::from_toml("[relay]\ncircuit_secs = 60\nmax_circuits = 8\n").unwrap();
        assert_eq!(config.relay.circuit_secs, 60);
        assert_eq!(config.relay.max_circuits, 8);
        assert_eq!(
            config.relay.circuit_bytes,
            RelayLimits::default().circuit_bytes
        );
        config.validate().unwrap();
        let zero = Config::from_toml("[relay]\ncircuit_bytes = 0\n").unwrap();
        assert!(matches!(
            zero.validate(),
            Err(ConfigError::OutOfRange {
                option: "relay.circuit_bytes",
                ..
            })
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
