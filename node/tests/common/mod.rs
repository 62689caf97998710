//! Helpers shared by the node integration tests.
#![allow(dead_code)]

use std::time::Duration;

use tern_node::api::Event;
use tern_node::net::NetConfig;
use tern_node::store::Password;
use tokio::sync::broadcast;

/// How long any one awaited event may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn password() -> Password {
    Password::new("correct horse battery staple".into())
}

/// Loopback TCP only, no mDNS (which would multicast beyond this machine).
pub fn loopback_net() -> NetConfig {
    NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
        lan_only: true,
        mdns: false,
        ..NetConfig::default()
    }
}

/// Waits for the first event matching `pred`.
pub async fn wait_for(
    events: &mut broadcast::Receiver<Event>,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("node stopped before {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
