//! `tern-bootstrap`: runs a Tern community node (DHT server, relay, AutoNAT, mailbox, metrics).
//!
//! Reads an optional TOML file (`--config`), applies the command-line overrides, logs to stderr (`TERN_LOG`,
//! default `info`), prints `listening <addr>/p2p/<peer id>` on stdout for each listen address, and shuts
//! down gracefully on SIGINT or SIGTERM.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::Parser;
use libp2p::Multiaddr;
use tern_bootstrap::{Config, Server};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;
use tracing_subscriber::EnvFilter;

/// Runs a Tern bootstrap node: Kademlia DHT server, circuit relay, AutoNAT server and mailbox server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; every option has a default (see bootstrap.example.toml).
    #[arg(long, short = 'c', value_name = "FILE", env = "TERN_BOOTSTRAP_CONFIG")]
    config: Option<PathBuf>,
    /// Where node.key and mailbox.redb live (overrides `data_dir`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// An address to listen on (repeatable; replaces `listen`).
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<Multiaddr>,
    /// Another bootstrap node to federate with, ending in /p2p/<peer id> (repeatable; added to `peers`).
    #[arg(long, value_name = "MULTIADDR")]
    peer: Vec<Multiaddr>,
    /// Serve Prometheus metrics at http://ADDR/metrics (overrides `metrics`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Seconds one relayed circuit may stay open (overrides `relay.circuit_secs`).
    #[arg(long, value_name = "SECS")]
    relay_circuit_secs: Option<u64>,
    /// Bytes one relayed circuit may carry (overrides `relay.circuit_bytes`).
    #[arg(long, value_name = "BYTES")]
    relay_circuit_bytes: Option<u64>,
    /// Relayed circuits open at once (overrides `relay.max_circuits`).
    #[arg(long, value_name = "N")]
    relay_max_circuits: Option<u32>,
    /// Relayed circuits one peer may take part in (overrides `relay.max_circuits_per_peer`).
    #[arg(long, value_name = "N")]
    relay_max_circuits_per_peer: Option<u32>,
    /// Relay reservations held at once (overrides `relay.max_reservations`).
    #[arg(long, value_name = "N")]
    relay_max_reservations: Option<u32>,
    /// Relay reservations one peer may hold (overrides `relay.max_reservations_per_peer`).
    #[arg(long, value_name = "N")]
    relay_max_reservations_per_peer: Option<u32>,
}

impl Cli {
    fn config(&self) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)
                .with_context(|| format!("loading configuration {}", path.display()))?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir.clone_from(dir);
        }
        if !self.listen.is_empty() {
            config.listen.clone_from(&self.listen);
        }
        for peer in &self.peer {
            if !config.peers.contains(peer) {
                config.peers.push(peer.clone());
            }
        }
        if self.metrics.is_some() {
            config.metrics = self.metrics;
        }
        let relay = &mut config.relay;
        for (flag, field) in [
            (self.relay_circuit_secs, &mut relay.circuit_secs),
            (self.relay_circuit_bytes, &mut relay.circuit_bytes),
        ] {
            if let Some(v) = flag {
                *field = v;
            }
        }
        for (flag, field) in [
            (self.relay_max_circuits, &mut relay.max_circuits),
            (
                self.relay_max_circuits_per_peer,
                &mut relay.max_circuits_per_peer,
            ),
            (self.relay_max_reservations, &mut relay.max_reservations),
            (
                self.relay_max_reservations_per_peer,
                &mut relay.max_reservations_per_peer,
            ),
        ] {
            if let Some(v) = flag {
                *field = v;
            }
        }
        config.validate().context("invalid configuration")?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TERN_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern-bootstrap: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let config = cli.config()?;
    // Installed before the server starts, so a signal during startup is a clean stop, not a kill.
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut server = Server::spawn(config)
        .await
        .context("starting the bootstrap node")?;
    info!(peer = %server.peer_id(), "bootstrap node running");
    tokio::select! {
        biased;
        _ = interrupt.recv() => info!("SIGINT: shutting down"),
        _ = terminate.recv() => info!("SIGTERM: shutting down"),
        result = server.join() => {
            return result.context("the bootstrap node stopped");
        }
    }
    server.shutdown().await.context("shutting down")?;
    info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_flags_override_the_file_and_defaults() {
        let cli = Cli::parse_from([
            "tern-bootstrap",
            "--relay-circuit-secs",
            "600",
            "--relay-circuit-bytes",
            "1048576",
            "--relay-max-circuits",
            "64",
            "--relay-max-circuits-per-peer",
            "8",
            "--relay-max-reservations",
            "100",
            "--relay-max-reservations-per-peer",
            "2",
        ]);
        let relay = cli.config().unwrap().relay;
        assert_eq!((relay.circuit_secs, relay.circuit_bytes), (600, 1_048_576));
        assert_eq!((relay.max_circuits, relay.max_circuits_per_peer), (64, 8));
        assert_eq!(
            (relay.max_reservations, relay.max_reservations_per_peer),
            (100, 2)
        );
        let defaults = Cli::parse_from(["tern-bootstrap"]).config().unwrap().relay;
        assert_eq!(defaults, tern_bootstrap::RelayLimits::default());
        let zero = Cli::parse_from(["tern-bootstrap", "--relay-max-circuits", "0"]).config();
        assert!(zero.is_err());
    }
}
