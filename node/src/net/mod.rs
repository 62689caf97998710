//! The libp2p building blocks: transports, behaviours, and the envelope protocol.
//!
//! - [`codec`]: `/tern/envelope/1` (the module is `crate::envelope_wire`; the framing is `crate::frame`).
//! - [`behaviour`]: the user node's [`ClientBehaviour`] and the parts a bootstrap server reuses.
//! - [`swarm`]: [`NetConfig`] and [`build_swarm`].

pub mod behaviour;
pub use crate::envelope_wire as codec;
pub mod dht;
pub mod swarm;

pub use behaviour::{ClientBehaviour, ClientBehaviourConfig, ClientBehaviourEvent, Limits};
pub use codec::{
    ENVELOPE_PROTOCOL, EnvelopeAck, EnvelopeCodec, EnvelopeRequest, FrameError, MessageError,
    RejectReason,
};
pub use swarm::{NetConfig, NetError, build_swarm, keypair_from_seed};
