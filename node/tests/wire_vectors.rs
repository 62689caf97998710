//! The `network` section of docs/test-vectors.json (protocol.md §16.7): frames of `/tern/envelope/1` and
//! `/tern/mailbox/1` and the mailbox owner proof, made by this crate's codecs. The test regenerates the
//! section and compares it with the file, then decodes every stored frame back. tern-protocol's `vectors`
//! test reads the same bytes independently, from protocol.md alone.
//!
//! After an intended change: `TERN_REGENERATE_VECTORS=1 cargo test --workspace --test wire_vectors`, then
//! the same for `--test vectors` (which restores the file's field order and the quotes in protocol.md).

use libp2p::PeerId;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use tern_node::envelope_wire::{EnvelopeAck, RejectReason};
use tern_node::frame::{WireMessage, decode_frame, encode_frame};
use tern_node::group::{GroupInfo, GroupQueue};
use tern_node::mailbox::group_wire::{
    GroupRequest, GroupResponse, QueueAuth, QueuedMessage, SignedRotation,
};
use tern_node::mailbox::wire::NONCE_LEN;
use tern_node::mailbox::{MailboxRequest, MailboxResponse, OwnerAuth, Refusal};
use tern_protocol::group_queue::{EpochKey, QueueId, Rotation};
use tern_protocol::{EnvelopeId, Identity};

const VECTORS_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/test-vectors.json");
const REGENERATE_ENV: &str = "TERN_REGENERATE_VECTORS";
/// The identity of protocol.md §16.1 (seed 00 01 … 1f) and the mailbox node of §16.2 (seed 4d…4d).
const IDENTITY_NOW_MS: u64 = 1_700_000_000_000;
const MAILBOX_SEED: [u8; 32] = [0x4d; 32];
const NONCE: [u8; NONCE_LEN] = [0x6e; NONCE_LEN];

fn counting() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn frame<M: WireMessage>(message: &M) -> String {
    hex(&encode_frame(message).expect("within the frame limit"))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, p| match p.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(*p),
        })
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("docs/test-vectors.json has no {}", path.join(".")))
}

/// The messages the section holds, in its order, with their names.
struct Messages {
    auth: OwnerAuth,
    acks: Vec<(&'static str, EnvelopeAck)>,
    requests: Vec<(&'static str, MailboxRequest)>,
    responses: Vec<(&'static str, MailboxResponse)>,
}

fn messages(file: &Value) -> (Messages, Vec<u8>) {
    let owner = Identity::generate(&mut ChaCha20Rng::from_seed(counting()), IDENTITY_NOW_MS);
    assert_eq!(
        hex(owner.key().as_bytes()),
        text(file, &["identity", "identity_key"]),
        "the owner is the identity of §16.1"
    );
    let server = Identity::generate(&mut ChaCha20Rng::from_seed(MAILBOX_SEED), 0)
        .key()
        .peer_id_bytes();
    let auth = OwnerAuth::sign(&owner, &server, NONCE);
    // The envelope of the exchange's first message (§16.5), and its id.
    let envelope = unhex(text(file, &["exchange", "messages", "0", "envelope"]));
    let id = EnvelopeId(
        unhex(text(file, &["exchange", "messages", "0", "envelope_id"]))
            .try_into()
            .expect("32 bytes"),
    );
    let acks = vec![
        ("accepted", EnvelopeAck::Accepted),
        ("duplicate", EnvelopeAck::Duplicate),
        (
            "rejected_malformed",
            EnvelopeAck::Rejected(RejectReason::Malformed),
        ),
        (
            "rejected_expired",
            EnvelopeAck::Rejected(RejectReason::Expired),
        ),
        (
            "rejected_unknown_mailbox",
            EnvelopeAck::Rejected(RejectReason::UnknownMailbox),
        ),
        (
            "rejected_quota_exceeded",
            EnvelopeAck::Rejected(RejectReason::QuotaExceeded),
        ),
        (
            "rejected_rate_limited",
            EnvelopeAck::Rejected(RejectReason::RateLimited),
        ),
        (
            "rejected_internal",
            EnvelopeAck::Rejected(RejectReason::Internal),
        ),
    ];
    let requests = vec![
        (
            "deposit",
            MailboxRequest::Deposit {
                envelope: envelope.clone(),
            },
        ),
        ("challenge", MailboxRequest::Challenge),
        (
            "fetch",
            MailboxRequest::Fetch {
                auth: auth.clone(),
                max: 64,
            },
        ),
        (
            "ack",
            MailboxRequest::Ack {
                auth: auth.clone(),
                ids: vec![id],
            },
        ),
    ];
    let paged = (
        "fetch_page",
        MailboxRequest::FetchPage {
            auth: auth.clone(),
            from: 5,
            max: 64,
            ack: vec![id],
        },
    );
    let requests = requests
        .into_iter()
        .chain(group_requests(&server))
        .chain([paged])
        .collect();
    let responses = vec![
        ("deposited", MailboxResponse::Deposited { id }),
        ("duplicate", MailboxResponse::Duplicate { id }),
        (
            "refused_not_owner",
            MailboxResponse::Refused(Refusal::NotOwner),
        ),
        ("nonce", MailboxResponse::Nonce { nonce: NONCE }),
        (
            "envelopes",
            MailboxResponse::Envelopes {
                envelopes: vec![envelope.clone()],
                more: true,
            },
        ),
        ("acked", MailboxResponse::Acked { count: 1 }),
        (
            "queue_opened",
            MailboxResponse::Group(GroupResponse::Opened),
        ),
        (
            "group_messages",
            MailboxResponse::Group(GroupResponse::Messages {
                messages: vec![QueuedMessage {
                    seq: 7,
                    message: b"mls".to_vec(),
                }],
                next_cursor: 8,
                more: false,
            }),
        ),
        (
            "refused_not_member",
            MailboxResponse::Refused(Refusal::NotMember),
        ),
        (
            "page",
            MailboxResponse::Page {
                acked: 1,
                envelopes: vec![envelope],
                next: 6,
                more: false,
            },
        ),
    ];
    (
        Messages {
            auth,
            acks,
            requests,
            responses,
        },
        server,
    )
}

/// The group queue requests of §18.6: queue 00 01 … 0f, the epoch key of protocol's `group_bodies`
/// vector (exporter output 00 01 … 1f) as epoch 0's, the same seed + 1 as epoch 1's.
fn group_requests(server: &[u8]) -> Vec<(&'static str, MailboxRequest)> {
    let queue = QueueId(std::array::from_fn(|i| i as u8));
    let epoch0 =
        EpochKey::from_exporter(&zeroize::Zeroizing::new(std::array::from_fn(|i| i as u8)));
    let epoch1 = EpochKey::from_exporter(&zeroize::Zeroizing::new(std::array::from_fn(|i| {
        i as u8 + 1
    })));
    let rotation = Rotation {
        epoch: 1,
        new_key: epoch1.public(),
        revoke: true,
    };
    vec![
        (
            "group_open",
            MailboxRequest::Group(GroupRequest::Open {
                queue,
                epoch: 0,
                key: epoch0.public(),
                signature: epoch0.sign_open(&queue, 0),
            }),
        ),
        (
            "group_deposit",
            MailboxRequest::Group(GroupRequest::Deposit {
                queue,
                message: b"mls".to_vec(),
                rotation: Some(SignedRotation {
                    rotation,
                    signer: epoch0.public(),
                    signature: epoch0.sign_rotation(&queue, &rotation, b"mls"),
                }),
            }),
        ),
        (
            "group_fetch",
            MailboxRequest::Group(GroupRequest::Fetch {
                queue,
                auth: QueueAuth {
                    key: epoch1.public(),
                    nonce: NONCE,
                    signature: epoch1.sign_fetch(server, &NONCE, &queue, 7),
                },
                cursor: 7,
                max: 64,
            }),
        ),
    ]
}

/// §18.3/§18.6: the `tern_group_info` version 3 of a group "Hikers" created by the identity of §16.1, no
/// other admin, no timer, queue 5a × 16 on the mailbox node of §16.2.
fn group_info_v3(server: &[u8]) -> GroupInfo {
    let creator = Identity::generate(&mut ChaCha20Rng::from_seed(counting()), IDENTITY_NOW_MS);
    GroupInfo {
        name: "Hikers".into(),
        creator: creator.key(),
        admins: Vec::new(),
        timer_s: 0,
        queue: Some(GroupQueue {
            id: QueueId([0x5a; 16]),
            servers: vec![PeerId::from_bytes(server).expect("a peer id")],
        }),
    }
}

fn generate(file: &Value) -> Value {
    let (m, server) = messages(file);
    let mut signed = vec![20u8];
    signed.extend_from_slice(b"tern/mailbox/auth/v1");
    signed.push(u8::try_from(server.len()).expect("a short peer id"));
    signed.extend_from_slice(&server);
    signed.extend_from_slice(&NONCE);
    let mut auth = m.auth.identity.as_bytes().to_vec();
    auth.extend_from_slice(&m.auth.nonce);
    auth.extend_from_slice(&m.auth.signature);
    json!({
        "description": "Section 17: the owner proof of the identity of 16.1 for the mailbox node of 16.2, and \
                        one frame (u32 length || payload) of every /tern/envelope/1 response and of every \
                        /tern/mailbox/1 request and response kind. The envelope is exchange.messages.0.",
        "server_peer_id": hex(&server),
        "owner_identity_key": hex(m.auth.identity.as_bytes()),
        "nonce": hex(&NONCE),
        "owner_auth_signed_bytes": hex(&signed),
        "owner_auth_signature": hex(&m.auth.signature),
        "owner_auth": hex(&auth),
        "envelope_acks": m.acks.iter().map(|(n, a)| json!({"answer": n, "frame": frame(a)})).collect::<Vec<_>>(),
        "mailbox_requests": m.requests.iter().map(|(n, r)| json!({"request": n, "frame": frame(r)})).collect::<Vec<_>>(),
        "mailbox_responses": m.responses.iter().map(|(n, r)| json!({"response": n, "frame": frame(r)})).collect::<Vec<_>>(),
        "group_info_v3": hex(&group_info_v3(&server).encode()),
    })
}

fn stored_frame(list: &Value, key: &str, name: &str) -> Vec<u8> {
    let item = list
        .as_array()
        .and_then(|a| a.iter().find(|i| i[key] == name))
        .unwrap_or_else(|| panic!("no {key} {name} in the network section"));
    unhex(item["frame"].as_str().expect("a frame"))
}

#[test]
fn network_vectors_match_the_codecs_and_decode_back() {
    let read = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(VECTORS_FILE).expect("the vectors file"))
            .expect("JSON")
    };
    let mut file = read();
    let generated = generate(&file);
    if std::env::var(REGENERATE_ENV).is_ok_and(|v| v == "1") {
        file["network"] = generated.clone();
        let text = serde_json::to_string_pretty(&file).expect("JSON") + "\n";
        std::fs::write(VECTORS_FILE, text).expect("write the vectors file");
        file = read();
    }
    assert_eq!(
        file["network"], generated,
        "the codecs no longer produce docs/test-vectors.json's network section; if intended, run \
         {REGENERATE_ENV}=1 cargo test --workspace --test wire_vectors"
    );

    // Every stored frame decodes to the message it names, and the proof verifies for this server only.
    let network = &file["network"];
    let (m, server) = messages(&file);
    for (name, ack) in &m.acks {
        let bytes = stored_frame(&network["envelope_acks"], "answer", name);
        assert_eq!(decode_frame::<EnvelopeAck>(&bytes).expect(name), *ack);
    }
    for (name, request) in &m.requests {
        let bytes = stored_frame(&network["mailbox_requests"], "request", name);
        assert_eq!(
            &decode_frame::<MailboxRequest>(&bytes).expect(name),
            request
        );
    }
    for (name, response) in &m.responses {
        let bytes = stored_frame(&network["mailbox_responses"], "response", name);
        assert_eq!(
            &decode_frame::<MailboxResponse>(&bytes).expect(name),
            response
        );
    }
    let info = unhex(network["group_info_v3"].as_str().expect("group_info_v3"));
    assert_eq!(
        GroupInfo::decode(&info).expect("group_info_v3"),
        group_info_v3(&server)
    );
    m.auth
        .verify(&server)
        .expect("the proof verifies for its server");
    let mut other = server.clone();
    *other.last_mut().expect("a peer id") ^= 1;
    assert!(m.auth.verify(&other).is_err(), "and for no other server");
}
