//! Waiting for something to happen: a node's event, a message's status, a counter that no event announces.

use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use tern_node::api::{Event, MessageStatus};
use tern_protocol::MessageId;
use tokio::sync::broadcast;

/// How long any one awaited event, line or condition may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// How often [`poll_until`] looks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Waits for the first event matching `pred` (skipping the others, and any the receiver lagged behind on);
/// panics naming `what` if the node stops or [`TIMEOUT`] passes first.
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

/// Waits until message `id` changes to `status`.
pub async fn wait_status(
    events: &mut broadcast::Receiver<Event>,
    id: MessageId,
    status: MessageStatus,
) {
    wait_for(events, &format!("{status:?} for {id}"), |e| {
        matches!(e, Event::StatusChanged { id: got, status: s, .. } if *got == id && *s == status)
    })
    .await;
}

/// Waits until a message with exactly `text` is received; returns its id.
pub async fn received(events: &mut broadcast::Receiver<Event>, text: &str) -> MessageId {
    let event = wait_for(
        events,
        &format!("message {text:?}"),
        |e| matches!(e, Event::MessageReceived { message, .. } if message.text == text),
    )
    .await;
    match event {
        Event::MessageReceived { message, .. } => message.id,
        _ => unreachable!(),
    }
}

/// Waits for the node's first listen address (without `/p2p/`).
pub async fn listening(events: &mut broadcast::Receiver<Event>, what: &str) -> Multiaddr {
    match wait_for(events, what, |e| matches!(e, Event::Listening { .. })).await {
        Event::Listening { address } => address,
        _ => unreachable!(),
    }
}

/// Calls `probe` every [`POLL_INTERVAL`] until `done` holds of what it returns or `limit` has passed;
/// returns the last value (the caller asserts on it). Only for what no event announces, such as a counter
/// a peer bumps after the test's socket has already closed.
pub async fn poll_until<T>(
    limit: Duration,
    mut probe: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let value = probe().await;
        if done(&value) || Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
