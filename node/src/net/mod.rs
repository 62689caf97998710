//! The libp2p building blocks: transports, behaviours, and the envelope protocol.
//!
//! - [`codec`]: `/tern/envelope/1` (the module is `crate::envelope_wire`; the framing is `crate::frame`).
//! - [`behaviour`]: the user node's [`ClientBehaviour`] and the parts a bootstrap server reuses.
//! - [`boxed`]: [`boxed::Boxed`], a behaviour whose per-connection handler is one pointer (for servers).
//! - [`swarm`]: [`NetConfig`] and [`build_swarm`].
//! - [`addrs`]: which addresses may be published and dialled outside LAN mode.
//! - [`keep_alive`]: keeps connections to contacts open.
//! - [`dht`]: what the DHT stores (mailbox and address records).
//! - [`gossip_gate`]: gossipsub only on connections to contacts and fellow group members.

pub mod addrs;
pub mod behaviour;
pub mod boxed;
pub mod keep_alive;
pub use crate::envelope_wire as codec;
pub mod dht;
pub mod gossip_gate;
pub mod swarm;

pub use behaviour::{ClientBehaviour, ClientBehaviourConfig, ClientBehaviourEvent, Limits};
pub use codec::{
    ENVELOPE_PROTOCOL, EnvelopeAck, EnvelopeCodec, EnvelopeRequest, FrameError, MessageError,
    RejectReason,
};
pub use swarm::{NetConfig, NetError, build_swarm, keypair_from_seed};
