//! The checks behind the node's fuzz target `mailbox_wire` (`fuzz/fuzz_targets/mailbox_wire.rs` includes this
//! file by path), replayed over its saved corpus by `tests/fuzz_corpus.rs`.
//!
//! The bytes are read as every peer-facing frame and payload the node decodes: `/tern/mailbox/1` requests
//! (what a mailbox server reads from anyone) and responses (what a client reads from a server),
//! `/tern/envelope/1` requests and acks. Whatever decodes must encode back to the same bytes, and the
//! streaming reader the network uses must agree with the buffer decoder. Deterministic: fixed keys.

#![allow(dead_code)]

use futures::executor::block_on;
use futures::io::Cursor;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use tern_node::mailbox::wire::NONCE_LEN;
use tern_node::mailbox::{MailboxRequest, MailboxResponse, OwnerAuth, Refusal};
use tern_node::net::codec::{
    EnvelopeAck, EnvelopeRequest, RejectReason, WireMessage, decode_frame, encode_frame, read_frame,
};
use tern_protocol::{EnvelopeId, Identity};

/// The node's fuzz targets, by the name of their directory under `fuzz/corpus/`.
pub const TARGETS: [&str; 1] = ["mailbox_wire"];

/// Runs the check of `target`; `None` for an unknown name.
pub fn check(target: &str, data: &[u8]) -> Option<bool> {
    match target {
        "mailbox_wire" => Some(mailbox_wire(data)),
        _ => None,
    }
}

/// Every frame and payload decoder of the two stream protocols, on the same bytes.
pub fn mailbox_wire(data: &[u8]) -> bool {
    let mut accepted = false;
    accepted |= payload::<MailboxRequest>(data);
    accepted |= payload::<MailboxResponse>(data);
    accepted |= payload::<EnvelopeAck>(data);
    accepted |= frame::<MailboxRequest>(data);
    accepted |= frame::<MailboxResponse>(data);
    accepted |= frame::<EnvelopeAck>(data);
    // An envelope request is any 1..=MAX bytes: accepted for almost every input, so it does not count.
    frame::<EnvelopeRequest>(data);
    if let Ok(MailboxRequest::Invalid) = MailboxRequest::decode(data) {
        panic!("the in-memory Invalid request decoded from the wire");
    }
    accepted
}

fn payload<M: WireMessage + PartialEq + std::fmt::Debug>(data: &[u8]) -> bool {
    let Ok(message) = M::decode(data) else {
        return false;
    };
    let mut again = Vec::new();
    message.encode_into(&mut again);
    assert_eq!(again, data, "{} payload re-encoding differs", M::NAME);
    true
}

fn frame<M: WireMessage + PartialEq + std::fmt::Debug>(data: &[u8]) -> bool {
    let decoded = decode_frame::<M>(data);
    let streamed = block_on(read_frame::<M, _>(&mut Cursor::new(data)));
    match (&decoded, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{}: stream and buffer decode differ", M::NAME),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "{}: stream and buffer readers disagree: {:?} vs {:?}",
            M::NAME,
            decoded.as_ref().err(),
            streamed.as_ref().err()
        ),
    }
    let Ok(message) = decoded else {
        return false;
    };
    match encode_frame(&message) {
        Ok(bytes) => assert_eq!(bytes, data, "{} frame re-encoding differs", M::NAME),
        Err(e) => panic!("a decoded {} does not encode: {e}", M::NAME),
    }
    true
}

/// A seed input and whether [`check`] accepts it.
pub struct Seed {
    pub bytes: Vec<u8>,
    pub valid: bool,
}

/// Every request and response kind, framed and bare, each also cut short by a byte and with a byte too many
/// (which every payload refuses).
pub fn seeds(target: &str) -> Vec<Seed> {
    if target != "mailbox_wire" {
        return Vec::new();
    }
    let mut rng = ChaCha20Rng::seed_from_u64(0x7e57_0101);
    let owner = Identity::generate(&mut rng, 1_700_000_000_000);
    let auth = OwnerAuth::sign(&owner, b"\x00\x24server-peer-id", [5; NONCE_LEN]);
    let requests = [
        MailboxRequest::Deposit {
            envelope: vec![1; 300],
        },
        MailboxRequest::Challenge,
        MailboxRequest::Fetch {
            auth: auth.clone(),
            max: 64,
        },
        MailboxRequest::Ack {
            auth,
            ids: vec![EnvelopeId([9; 32]), EnvelopeId([8; 32])],
        },
    ];
    let responses = [
        MailboxResponse::Deposited {
            id: EnvelopeId([1; 32]),
        },
        MailboxResponse::Duplicate {
            id: EnvelopeId([2; 32]),
        },
        MailboxResponse::Refused(Refusal::QuotaBytes),
        MailboxResponse::Nonce { nonce: [4; 32] },
        MailboxResponse::Envelopes {
            envelopes: vec![vec![5; 260], vec![6; 3]],
            more: true,
        },
        MailboxResponse::Acked { count: 2 },
    ];
    let acks = [
        EnvelopeAck::Accepted,
        EnvelopeAck::Duplicate,
        EnvelopeAck::Rejected(RejectReason::UnknownMailbox),
    ];
    let mut valid: Vec<Vec<u8>> = Vec::new();
    fn both<M: WireMessage>(m: &M, out: &mut Vec<Vec<u8>>) {
        let mut payload = Vec::new();
        m.encode_into(&mut payload);
        out.push(payload);
        if let Ok(frame) = encode_frame(m) {
            out.push(frame);
        }
    }
    for r in &requests {
        both(r, &mut valid);
    }
    for r in &responses {
        both(r, &mut valid);
    }
    for a in &acks {
        both(a, &mut valid);
    }
    let mut out = Vec::new();
    for bytes in valid {
        let mut short = bytes.clone();
        short.pop();
        let mut long = bytes.clone();
        long.push(0);
        out.push(Seed { bytes, valid: true });
        // Cut short or grown, a payload no longer decodes, but it may still be read as another type (an
        // envelope ack is two or three bytes), so these are seeds for the fuzzer, not claims.
        for broken in [short, long] {
            let valid = mailbox_wire(&broken);
            out.push(Seed {
                bytes: broken,
                valid,
            });
        }
    }
    out
}

/// The name a corpus file gets: the hex SHA-256 of its contents.
pub fn corpus_name(bytes: &[u8]) -> String {
    tern_protocol::crypto::sha256(&[bytes])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
