//! Test vectors for docs/protocol.md, kept in docs/test-vectors.json.
//!
//! The test runs both ways:
//! - it regenerates every vector from its seeds through the crate's public API and compares the result with the
//!   file, so any change to a wire format fails here first;
//! - it reads the stored bytes back, through the crate's decoders and through [`spec`], a small second
//!   implementation written from docs/protocol.md with the raw primitives only, so the file is a usable interop
//!   vector and the document is known to describe what the code does.
//!
//! It also checks that every vector quoted in docs/protocol.md (after a `<!-- vector: path -->` marker) matches
//! the JSON. After an intended format change, run
//! `TERN_REGENERATE_VECTORS=1 cargo test -p tern-protocol --test vectors`: it rewrites the JSON file and the
//! quoted blocks in docs/protocol.md, then checks them as usual.

mod common;
mod vectors_files;
mod vectors_more;

use std::path::PathBuf;

use common::{Pair, Side};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tern_protocol::codec::{Reader, Writer};
use tern_protocol::crypto;
use tern_protocol::{
    AddressRecord, Body, CardDetails, ContactCard, Content, Envelope, Fingerprint, Identity,
    IdentityKey, MailboxNode, MessageId, PeerSessions, PickleKey, PublicIdentity, SafetyNumber,
    SignedPrekey,
};

const REGENERATE_ENV: &str = "TERN_REGENERATE_VECTORS";
const VECTORS_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/test-vectors.json");
const DOC_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");

/// Paths that docs/protocol.md must quote.
const REQUIRED_QUOTES: &[&str] = &[
    "identity.identity_key",
    "identity.peer_id",
    "identity.mailbox_id",
    "card.bytes",
    "card.invite_link",
    "address_record.bytes",
    "safety_number.safety_number",
    "exchange.messages.0.envelope",
    "exchange.messages.0.noise_seed",
    "exchange.messages.0.seal_ephemeral_secret",
    "ed25519.3.signature",
    "network.owner_auth_signed_bytes",
    "mailbox_record.bytes",
    "files.small.ciphertext",
    "files.small.hash",
    "files.announcement.content",
    "files.request.bytes",
];

const IDENTITY_RNG_SEED: [u8; 32] = counting(0x00);
const IDENTITY_NOW_MS: u64 = 1_700_000_000_000;
const MAILBOX_RNG_SEED: [u8; 32] = [0x4d; 32];
const SAFETY_RNG_SEED_A: [u8; 32] = [0xa1; 32];
const SAFETY_RNG_SEED_B: [u8; 32] = [0xb2; 32];
const CONTENT_RNG_SEED: [u8; 32] = [0xc0; 32];
const CONTENT_NOW_MS: u64 = 1_750_000_123_456;
const PICKLE_KEY: [u8; 32] = [0x5a; 32];
const PICKLE_RNG_SEED: [u8; 32] = [0x00; 32];
const EXCHANGE_SEED: u64 = 2025;
const EXCHANGE_STEP_MS: u64 = 1_000;
const ADDRESS_ISSUED_MS: u64 = 1_760_000_000_000;
const ADDRESS_TTL_SECS: u32 = 3_600;

const fn counting(start: u8) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = start.wrapping_add(i as u8);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// The file's shape.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    description: String,
    identity: IdentityVector,
    pickle: PickleVector,
    card: CardVector,
    address_record: AddressRecordVector,
    safety_number: SafetyVector,
    kdf: KdfVector,
    content: Vec<ContentVector>,
    exchange: ExchangeVector,
    mailbox_record: vectors_more::MailboxRecordVector,
    ed25519: Vec<vectors_more::Ed25519Vector>,
    /// The group bodies of §18.4 (content kinds 0x0100-0x0102).
    group_bodies: GroupBodiesVector,
    files: vectors_files::FilesVector,
    /// Section 17's messages: generated and checked by tern-node's `wire_vectors` test (the codecs live
    /// there), kept as they are here and read back by [`vectors_more::check_network_with_spec`].
    #[serde(default, skip_serializing_if = "Value::is_null")]
    network: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityVector {
    rng_seed: String,
    now_ms: u64,
    rng_output: String,
    ed25519_seed: String,
    agreement_secret: String,
    prekey_secret: String,
    identity_key: String,
    agreement_key: String,
    agreement_signature: String,
    prekey_id: u32,
    prekey_public: String,
    prekey_created_ms: u64,
    prekey_signature: String,
    public_identity: String,
    signed_prekey: String,
    peer_id_bytes: String,
    peer_id: String,
    mailbox_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressRecordVector {
    issued_ms: u64,
    ttl_secs: u32,
    addresses: Vec<String>,
    dht_key: String,
    signature: String,
    bytes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PickleVector {
    holds: String,
    key: String,
    rng_seed: String,
    nonce: String,
    kind: u8,
    plaintext: String,
    bytes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailboxVector {
    peer_id: String,
    addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardVector {
    display_name: String,
    revision: u64,
    mailboxes: Vec<MailboxVector>,
    addresses: Vec<String>,
    signature: String,
    bytes: String,
    /// The checked link (protocol 1.1): the base58 of the card followed by its 4-byte checksum.
    invite_link: String,
    /// The checksum alone.
    invite_check: String,
    /// The same card as a protocol 1.0 link (no checksum), which readers still accept.
    invite_link_1_0: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SafetyVector {
    a_rng_seed: String,
    b_rng_seed: String,
    a_identity_key: String,
    b_identity_key: String,
    a_fingerprint: String,
    b_fingerprint: String,
    safety_number: String,
    safety_number_display: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfVector {
    kdf_rk_root_key: String,
    kdf_rk_dh_output: String,
    kdf_rk_new_root_key: String,
    kdf_rk_chain_key: String,
    kdf_ck_chain_key: String,
    kdf_ck_message_key: String,
    kdf_ck_next_chain_key: String,
    message_key: String,
    message_aead_key: String,
    message_aead_nonce: String,
    session_root_handshake_hash: String,
    session_root_k1: String,
    session_root_k2: String,
    session_root_key: String,
    seal_ephemeral_public: String,
    seal_recipient_public: String,
    seal_dh_output: String,
    seal_key: String,
    seal_nonce: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentVector {
    name: String,
    kind: u16,
    id: String,
    id_text: String,
    sent_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    bytes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyVector {
    identity_key: String,
    ed25519_seed: String,
    agreement_secret: String,
    agreement_key: String,
    prekey_id: u32,
    prekey_secret: String,
    prekey_public: String,
    card: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageVector {
    from: String,
    to: String,
    now_ms: u64,
    expires_at: u64,
    text: String,
    message_id: String,
    content: String,
    sender_ratchet_secret: String,
    session_kind: u8,
    session_id: String,
    session_message: String,
    envelope: String,
    envelope_id: String,
    seal_ephemeral_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    noise_seed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    noise_ephemeral_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExchangeVector {
    harness_seed: u64,
    alice: PartyVector,
    bob: PartyVector,
    messages: Vec<MessageVector>,
}

// ---------------------------------------------------------------------------------------------------------------
// Hex.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn unhex32(text: &str) -> [u8; 32] {
    unhex(text).try_into().expect("32 bytes of hex")
}

// ---------------------------------------------------------------------------------------------------------------
// Generation, through the crate's public API.

fn pickle_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed(PICKLE_RNG_SEED)
}

fn identity_secrets(identity: &Identity) -> spec::IdentitySecrets {
    let bytes = identity.pickle(&PickleKey::from_bytes(PICKLE_KEY), &mut pickle_rng());
    spec::identity_pickle(&PICKLE_KEY, &bytes)
}

/// The private key of the sending session's current ratchet key pair, read from a session pickle.
fn ratchet_secret(sessions: &PeerSessions) -> [u8; 32] {
    let bytes = sessions.pickle(&PickleKey::from_bytes(PICKLE_KEY), &mut pickle_rng());
    let state = spec::sessions_pickle(&PICKLE_KEY, &bytes);
    assert_eq!(
        Some(state.sessions[0].id),
        sessions.active_session().map(|s| s.0)
    );
    state.sessions[0].ratchet_secret
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBodiesVector {
    /// Kind 0x0100 asking for 2 KeyPackages.
    key_package_request: String,
    /// Kind 0x0101 with two (opaque, here) KeyPackages: `aaaaaa` and `bbbb`.
    key_packages: String,
    /// Kind 0x0102: part 0 of 2 of a Welcome transfer with id 07 x 16, chunk "hello".
    transfer_part: String,
    /// §18.4: a rejoin request (kind 0x0103) for the group whose MLS group id is 00 01 .. 0f.
    rejoin_request: String,
    /// §18.9: the conversation id of the group whose MLS group id is 00 01 .. 0f.
    conversation_id: String,
    /// §18.6: the epoch auth key whose exporter output (Ed25519 seed) is 00 01 .. 1f.
    queue_auth_key: String,
    /// §18.6: that key's fetch signature for server `server`, nonce 11 x 32, queue 00 01 .. 0f, cursor 5.
    queue_fetch_signature: String,
    /// §18.11: a join request (kind 0x0104), token 33 x 16, KeyPackage 5a 5a 5a.
    join_request: String,
    /// §18.11: a waiting answer (kind 0x0105) for that token.
    join_answer: String,
    /// §18.11: an approval link, token 07 x 16, for the card of §16.2 (the link's text).
    group_link: String,
}

fn gen_group_bodies() -> GroupBodiesVector {
    use tern_protocol::group_wire::{TransferKind, TransferPart};
    let part = TransferPart {
        kind: TransferKind::Welcome,
        transfer_id: [7; 16],
        index: 0,
        count: 2,
        chunk: b"hello".to_vec(),
    };
    GroupBodiesVector {
        key_package_request: hex(&tern_protocol::group_wire::encode_key_package_request(2).unwrap()),
        key_packages: hex(&tern_protocol::group_wire::encode_key_packages(&[
            vec![0xaa; 3],
            vec![0xbb; 2],
        ])
        .unwrap()),
        transfer_part: hex(&part.encode()),
        rejoin_request: hex(&tern_protocol::group_wire::encode_rejoin_request(
            &std::array::from_fn::<u8, 16, _>(|i| i as u8),
        )
        .unwrap()),
        conversation_id: hex(&tern_protocol::group_wire::conversation_id(
            &std::array::from_fn::<u8, 16, _>(|i| i as u8),
        )),
        queue_auth_key: hex(queue_vector_key().public().as_bytes()),
        queue_fetch_signature: hex(&queue_vector_key().sign_fetch(
            b"server",
            &[0x11; 32],
            &tern_protocol::group_queue::QueueId(std::array::from_fn(|i| i as u8)),
            5,
        )),
        join_request: hex(&tern_protocol::group_link::JoinRequest {
            token: tern_protocol::group_link::LinkToken([0x33; 16]),
            key_package: vec![0x5a; 3],
        }
        .encode()
        .unwrap()),
        join_answer: hex(&tern_protocol::group_link::JoinAnswer::Waiting
            .encode(&tern_protocol::group_link::LinkToken([0x33; 16]))),
        group_link: tern_protocol::group_link::GroupLink {
            mode: tern_protocol::group_link::JoinMode::Approval,
            token: tern_protocol::group_link::LinkToken([7; 16]),
            admin: ContactCard::decode(&unhex(&gen_card().bytes)).unwrap(),
        }
        .encode(),
    }
}

fn queue_vector_key() -> tern_protocol::group_queue::EpochKey {
    tern_protocol::group_queue::EpochKey::from_exporter(&zeroize::Zeroizing::new(
        std::array::from_fn(|i| i as u8),
    ))
}

/// The group bodies read back through the API and, independently, as §18.4's table says.
fn check_group_bodies(g: &GroupBodiesVector) {
    use tern_protocol::group_wire::{self, TransferKind, TransferPart};
    assert_eq!(
        group_wire::decode_key_package_request(&unhex(&g.key_package_request)).unwrap(),
        2
    );
    assert_eq!(
        group_wire::decode_key_packages(&unhex(&g.key_packages)).unwrap(),
        vec![vec![0xaa; 3], vec![0xbb; 2]]
    );
    let part = TransferPart::decode(&unhex(&g.transfer_part)).unwrap();
    assert_eq!(
        (
            part.kind,
            part.transfer_id,
            part.index,
            part.count,
            part.chunk.as_slice()
        ),
        (TransferKind::Welcome, [7; 16], 0, 2, b"hello".as_slice())
    );
    // By hand: u8 version 1 || u8 count; u8 version || u8 n || n x (u16 len || bytes);
    // u8 version || u8 what || id[16] || u16 index || u16 count || u32 len || chunk.
    assert_eq!(unhex(&g.key_package_request), [1, 2]);
    assert_eq!(
        unhex(&g.key_packages),
        [1, 2, 0, 3, 0xaa, 0xaa, 0xaa, 0, 2, 0xbb, 0xbb]
    );
    let mut expected = vec![1, 1];
    expected.extend([7; 16]);
    expected.extend([0, 0, 0, 2, 0, 0, 0, 5]);
    expected.extend(b"hello");
    assert_eq!(unhex(&g.transfer_part), expected);
    // u8 version 1 || u8 len || group id.
    let id: Vec<u8> = (0..16).collect();
    assert_eq!(
        group_wire::decode_rejoin_request(&unhex(&g.rejoin_request)).unwrap(),
        id
    );
    assert_eq!(unhex(&g.rejoin_request), [&[1u8, 16][..], &id].concat());
    // §18.9 by hand: SHA-256 of the label and the id.
    let id: [u8; 16] = std::array::from_fn(|i| i as u8);
    assert_eq!(
        unhex(&g.conversation_id),
        tern_protocol::crypto::sha256(&[b"tern/group/conversation/v1", &id])
    );
    assert_eq!(unhex(&g.conversation_id), group_wire::conversation_id(&id));
    // §18.6 by hand: the exporter output is the Ed25519 seed; the fetch signature covers
    // u8 len(label) || label || vec8 server || nonce || queue id || u64 cursor.
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    assert_eq!(unhex(&g.queue_auth_key), key.to_bytes());
    let label = b"tern/group/queue/fetch/v1";
    let mut signed = vec![label.len() as u8];
    signed.extend(label);
    signed.push(6);
    signed.extend(b"server");
    signed.extend([0x11; 32]);
    signed.extend(id);
    signed.extend(5u64.to_be_bytes());
    let signature: [u8; 64] = unhex(&g.queue_fetch_signature).try_into().unwrap();
    key.verify_strict(&signed, &ed25519_dalek::Signature::from_bytes(&signature))
        .unwrap();
    check_group_links(g);
}

/// §18.11 through the API and by hand.
fn check_group_links(g: &GroupBodiesVector) {
    use tern_protocol::group_link::{GroupLink, JoinAnswer, JoinMode, JoinRequest, LinkToken};
    let request = JoinRequest::decode(&unhex(&g.join_request)).unwrap();
    assert_eq!(request.token, LinkToken([0x33; 16]));
    assert_eq!(request.key_package, [0x5a; 3]);
    // u8 version 1 || token || u16 len || key package.
    let mut expected = vec![1];
    expected.extend([0x33; 16]);
    expected.extend([0, 3, 0x5a, 0x5a, 0x5a]);
    assert_eq!(unhex(&g.join_request), expected);
    assert_eq!(
        JoinAnswer::decode(&unhex(&g.join_answer)).unwrap(),
        (LinkToken([0x33; 16]), JoinAnswer::Waiting)
    );
    let mut expected = vec![1];
    expected.extend([0x33; 16]);
    expected.push(1);
    assert_eq!(unhex(&g.join_answer), expected);
    // "tern-group:" || base58(u8 1 || u8 mode 2 || token || u16 len || card || SHA-256(label || body)[..4]).
    let card = unhex(&gen_card().bytes);
    let link = GroupLink::decode(&g.group_link).unwrap();
    assert_eq!(link.mode, JoinMode::Approval);
    assert_eq!(link.token, LinkToken([7; 16]));
    assert_eq!(link.admin.encode(), card.as_slice());
    let mut body = vec![1, 2];
    body.extend([7; 16]);
    body.extend((card.len() as u16).to_be_bytes());
    body.extend(&card);
    let check = tern_protocol::crypto::sha256(&[b"tern/group-link/v1", &body]);
    body.extend(&check[..4]);
    assert_eq!(
        g.group_link,
        format!("tern-group:{}", bs58::encode(&body).into_string())
    );
}

fn generate() -> Vectors {
    Vectors {
        description:
            "Tern protocol test vectors; see docs/protocol.md, \"Test vectors\". All binary values \
                      are lowercase hex."
                .into(),
        identity: gen_identity(),
        pickle: gen_pickle(),
        card: gen_card(),
        address_record: gen_address_record(),
        safety_number: gen_safety(),
        kdf: gen_kdf(),
        content: gen_content(&unhex(&gen_card().bytes)),
        exchange: gen_exchange(),
        mailbox_record: vectors_more::gen_mailbox_record(),
        ed25519: vectors_more::gen_ed25519(),
        group_bodies: gen_group_bodies(),
        files: vectors_files::gen_files(),
        network: stored_network(),
    }
}

/// The network section as the file holds it (tern-node's `wire_vectors` test writes it).
fn stored_network() -> Value {
    std::fs::read_to_string(VECTORS_FILE)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| v.get("network").cloned())
        .unwrap_or(Value::Null)
}

fn vector_identity() -> Identity {
    Identity::generate(
        &mut ChaCha20Rng::from_seed(IDENTITY_RNG_SEED),
        IDENTITY_NOW_MS,
    )
}

fn gen_identity() -> IdentityVector {
    let mut probe = ChaCha20Rng::from_seed(IDENTITY_RNG_SEED);
    let mut rng_output = [0u8; 96];
    probe.fill_bytes(&mut rng_output);
    let id = vector_identity();
    let secrets = identity_secrets(&id);
    let public = id.public();
    let prekey = id.current_prekey();
    let mut w = Writer::new();
    public.encode(&mut w);
    let public_identity = w.into_vec();
    let mut w = Writer::new();
    prekey.encode(&mut w);
    let signed_prekey = w.into_vec();
    IdentityVector {
        rng_seed: hex(&IDENTITY_RNG_SEED),
        now_ms: IDENTITY_NOW_MS,
        rng_output: hex(&rng_output),
        ed25519_seed: hex(&secrets.ed25519_seed),
        agreement_secret: hex(&secrets.agreement_secret),
        prekey_secret: hex(&secrets.prekeys[0].secret),
        identity_key: hex(id.key().as_bytes()),
        agreement_key: hex(&public.agreement),
        agreement_signature: hex(&public.agreement_signature),
        prekey_id: prekey.id,
        prekey_public: hex(&prekey.public),
        prekey_created_ms: prekey.created_ms,
        prekey_signature: hex(&prekey.signature),
        public_identity: hex(&public_identity),
        signed_prekey: hex(&signed_prekey),
        peer_id_bytes: hex(&id.key().peer_id_bytes()),
        peer_id: id.key().peer_id(),
        mailbox_id: hex(&id.key().mailbox_id().0),
    }
}

fn gen_pickle() -> PickleVector {
    let identity = vector_identity();
    let bytes = identity.pickle(&PickleKey::from_bytes(PICKLE_KEY), &mut pickle_rng());
    // The nonce is the first 12 bytes the pickling RNG gives; the plaintext is what the key opens.
    let mut nonce = [0u8; 12];
    pickle_rng().fill_bytes(&mut nonce);
    let plaintext = spec::open_pickle(&PICKLE_KEY, 1, &bytes);
    PickleVector {
        holds: format!(
            "the identity of identity.* (identity key {}), as generated, with its first prekey",
            hex(identity.key().as_bytes())
        ),
        key: hex(&PICKLE_KEY),
        rng_seed: hex(&PICKLE_RNG_SEED),
        nonce: hex(&nonce),
        kind: bytes[1],
        plaintext: hex(&plaintext),
        bytes: hex(&bytes),
    }
}

/// Binary multiaddrs: /ip4/192.0.2.10/tcp/4001, /ip4/192.0.2.10/udp/4001/quic-v1 and
/// /ip6/2001:db8::1/udp/4001/quic-v1.
fn multiaddrs() -> [Vec<u8>; 3] {
    let tcp = vec![0x04, 192, 0, 2, 10, 0x06, 0x0f, 0xa1];
    let quic = vec![0x04, 192, 0, 2, 10, 0x91, 0x02, 0x0f, 0xa1, 0xcc, 0x03];
    let mut ip6 = vec![0x29, 0x20, 0x01, 0x0d, 0xb8];
    ip6.extend_from_slice(&[0; 11]);
    ip6.extend_from_slice(&[0x01, 0x91, 0x02, 0x0f, 0xa1, 0xcc, 0x03]);
    [tcp, quic, ip6]
}

fn card_details() -> CardDetails {
    let mailbox = Identity::generate(&mut ChaCha20Rng::from_seed(MAILBOX_RNG_SEED), 0);
    let [tcp, quic, ip6] = multiaddrs();
    CardDetails {
        display_name: "Zoë Tern".into(),
        revision: 3,
        mailboxes: vec![MailboxNode {
            peer_id: mailbox.key().peer_id_bytes(),
            addresses: vec![tcp, quic],
        }],
        addresses: vec![ip6],
    }
}

fn gen_card() -> CardVector {
    let details = card_details();
    let card = ContactCard::issue(&vector_identity(), details.clone()).unwrap();
    let bytes = card.encode();
    CardVector {
        display_name: details.display_name.clone(),
        revision: details.revision,
        mailboxes: details
            .mailboxes
            .iter()
            .map(|m| MailboxVector {
                peer_id: hex(&m.peer_id),
                addresses: m.addresses.iter().map(|a| hex(a)).collect(),
            })
            .collect(),
        addresses: details.addresses.iter().map(|a| hex(a)).collect(),
        signature: hex(&bytes[bytes.len() - 64..]),
        bytes: hex(bytes),
        invite_link: card.invite_link(),
        invite_check: hex(&tern_protocol::card::invite_check(bytes)),
        invite_link_1_0: format!("tern:{}", bs58::encode(bytes).into_string()),
    }
}

/// The vector identity's address record: its public TCP address and a circuit through a relay
/// (`/ip4/192.0.2.20/tcp/4001/p2p/<relay>/p2p-circuit`).
fn gen_address_record() -> AddressRecordVector {
    let relay = Identity::generate(&mut ChaCha20Rng::from_seed(MAILBOX_RNG_SEED), 0);
    let [tcp, _, _] = multiaddrs();
    let mut circuit = vec![0x04, 192, 0, 2, 20, 0x06, 0x0f, 0xa1, 0xa5, 0x03];
    let relay_peer = relay.key().peer_id_bytes();
    circuit.push(u8::try_from(relay_peer.len()).unwrap());
    circuit.extend_from_slice(&relay_peer);
    circuit.push(0xa2);
    circuit.push(0x02);
    let id = vector_identity();
    let record =
        AddressRecord::issue(&id, ADDRESS_ISSUED_MS, ADDRESS_TTL_SECS, vec![tcp, circuit]).unwrap();
    let bytes = record.encode();
    AddressRecordVector {
        issued_ms: ADDRESS_ISSUED_MS,
        ttl_secs: ADDRESS_TTL_SECS,
        addresses: record.addresses().iter().map(|a| hex(a)).collect(),
        dht_key: hex(&AddressRecord::dht_key(&id.key().mailbox_id())),
        signature: hex(&bytes[bytes.len() - 64..]),
        bytes: hex(bytes),
    }
}

fn gen_safety() -> SafetyVector {
    let a = Identity::generate(&mut ChaCha20Rng::from_seed(SAFETY_RNG_SEED_A), 0).key();
    let b = Identity::generate(&mut ChaCha20Rng::from_seed(SAFETY_RNG_SEED_B), 0).key();
    let number = SafetyNumber::between(&a, &b);
    assert_eq!(number, SafetyNumber::between(&b, &a));
    SafetyVector {
        a_rng_seed: hex(&SAFETY_RNG_SEED_A),
        b_rng_seed: hex(&SAFETY_RNG_SEED_B),
        a_identity_key: hex(a.as_bytes()),
        b_identity_key: hex(b.as_bytes()),
        a_fingerprint: Fingerprint::of(&a).digits().into(),
        b_fingerprint: Fingerprint::of(&b).digits().into(),
        safety_number: number.digits().into(),
        safety_number_display: number.to_string(),
    }
}

/// The KDFs of docs/protocol.md on fixed inputs, computed with the crate's public `crypto::hkdf`/`hmac`.
fn gen_kdf() -> KdfVector {
    let root = counting(0x00);
    let dh = counting(0x20);
    let rk = crypto::hkdf::<64>(&root, &dh, b"tern/ratchet/root/v1");
    let ck = counting(0x40);
    let mk = crypto::hmac(&ck, &[0x01]);
    let next = crypto::hmac(&ck, &[0x02]);
    let message = counting(0x60);
    let expanded = crypto::hkdf::<44>(&[0u8; 32], &message, b"tern/ratchet/message/v1");
    let h = counting(0x80);
    let k1 = counting(0xa0);
    let k2 = counting(0xc0);
    let mut ikm = k1.to_vec();
    ikm.extend_from_slice(&k2);
    let session_root = crypto::hkdf::<32>(&h, &ikm, b"tern/session/root/v1");
    let eph = crypto::DhKeyPair::from_secret(&crypto::SecretKey::from_bytes([0x11; 32]));
    let recipient = crypto::DhKeyPair::from_secret(&crypto::SecretKey::from_bytes([0x22; 32]));
    let seal_dh = eph.agree(recipient.public()).unwrap();
    let mut salt = eph.public().to_vec();
    salt.extend_from_slice(recipient.public());
    let seal = crypto::hkdf::<44>(&salt, seal_dh.as_bytes(), b"tern/seal/v1");
    KdfVector {
        kdf_rk_root_key: hex(&root),
        kdf_rk_dh_output: hex(&dh),
        kdf_rk_new_root_key: hex(&rk[..32]),
        kdf_rk_chain_key: hex(&rk[32..]),
        kdf_ck_chain_key: hex(&ck),
        kdf_ck_message_key: hex(&mk),
        kdf_ck_next_chain_key: hex(&next),
        message_key: hex(&message),
        message_aead_key: hex(&expanded[..32]),
        message_aead_nonce: hex(&expanded[32..]),
        session_root_handshake_hash: hex(&h),
        session_root_k1: hex(&k1),
        session_root_k2: hex(&k2),
        session_root_key: hex(session_root.as_ref()),
        seal_ephemeral_public: hex(eph.public()),
        seal_recipient_public: hex(recipient.public()),
        seal_dh_output: hex(seal_dh.as_bytes()),
        seal_key: hex(&seal[..32]),
        seal_nonce: hex(&seal[32..]),
    }
}

/// `card` is the §16.2 card, which the card-update content carries.
fn gen_content(card: &[u8]) -> Vec<ContentVector> {
    let mut rng = ChaCha20Rng::from_seed(CONTENT_RNG_SEED);
    let ids: Vec<MessageId> = (0..8u64)
        .map(|i| MessageId::new_v7(CONTENT_NOW_MS + i, &mut rng))
        .collect();
    let bodies = [
        ("text", Body::Text("Hello, Tern! ✓".into())),
        ("delivered", Body::Delivered(vec![ids[0]])),
        ("read", Body::Read(vec![ids[0], ids[1]])),
        ("typing", Body::Typing(true)),
        (
            "unknown",
            Body::Unknown {
                kind: 0x0100,
                data: vec![0xde, 0xad, 0xbe, 0xef],
            },
        ),
        ("card", Body::Card(card.to_vec())),
        (
            "timer",
            Body::Timer(tern_protocol::timer::TimerSetting {
                seconds: 3600,
                version: 1,
            }),
        ),
        (
            "reply",
            Body::Reply(tern_protocol::Reply {
                to: ids[0],
                text: "Yes! ✓".into(),
            }),
        ),
    ];
    bodies
        .into_iter()
        .zip(ids.iter().zip(0u64..))
        .map(|((name, body), (id, i))| {
            let content = Content {
                id: *id,
                sent_at_ms: CONTENT_NOW_MS + i,
                body: body.clone(),
            };
            let bytes = content.encode().unwrap();
            let mut v = ContentVector {
                name: name.into(),
                kind: u16::from_be_bytes([bytes[25], bytes[26]]),
                id: hex(&id.0),
                id_text: id.to_string(),
                sent_at_ms: content.sent_at_ms,
                text: None,
                ids: None,
                typing: None,
                data: None,
                bytes: hex(&bytes),
            };
            match body {
                Body::Text(t) => v.text = Some(t),
                Body::Delivered(l) | Body::Read(l) => {
                    v.ids = Some(l.iter().map(|m| hex(&m.0)).collect());
                }
                Body::Typing(on) => v.typing = Some(on),
                Body::Unknown { data, .. } | Body::Card(data) => v.data = Some(hex(&data)),
                Body::Timer(t) => v.data = Some(hex(&t.encode().unwrap())),
                Body::Reply(r) => {
                    v.ids = Some(vec![hex(&r.to.0)]);
                    v.text = Some(r.text);
                }
                _ => unreachable!(),
            }
            v
        })
        .collect()
}

const EXCHANGE_TEXTS: [(Side, &str); 3] = [
    (Side::Alice, "Hello Bob, this is Alice."),
    (Side::Bob, "Hi Alice! Got your card."),
    (Side::Alice, "Great, the session is confirmed."),
];

fn party_vector(party: &common::Party) -> PartyVector {
    let secrets = identity_secrets(&party.identity);
    PartyVector {
        identity_key: hex(party.key().as_bytes()),
        ed25519_seed: hex(&secrets.ed25519_seed),
        agreement_secret: hex(&secrets.agreement_secret),
        agreement_key: hex(&party.identity.public().agreement),
        prekey_id: party.identity.current_prekey().id,
        prekey_secret: hex(&secrets.prekeys[0].secret),
        prekey_public: hex(&party.identity.current_prekey().public),
        card: hex(party.card.encode()),
    }
}

fn side_name(side: Side) -> String {
    match side {
        Side::Alice => "alice".into(),
        Side::Bob => "bob".into(),
    }
}

fn gen_exchange() -> ExchangeVector {
    let mut p = Pair::new(EXCHANGE_SEED);
    let alice = party_vector(&p.alice);
    let bob = party_vector(&p.bob);
    let mut messages = Vec::new();
    for (i, (from, text)) in EXCHANGE_TEXTS.into_iter().enumerate() {
        if i > 0 {
            p.tick(EXCHANGE_STEP_MS);
        }
        let now_ms = p.now_ms;
        // What `Pair::send` does, step by step, to record the random secrets: the message id's 10 bytes,
        // then (for a start) the Noise seed, are the next draws of the harness RNG; the seal's ephemeral
        // secret is the next 32 bytes after the session message is made.
        let mut probe = p.rng.clone();
        let mut id_random = [0u8; 10];
        probe.fill_bytes(&mut id_random);
        let mut noise_seed = [0u8; 32];
        probe.fill_bytes(&mut noise_seed);
        let (id, session) = p.send_session(from, text);
        let mut seal_ephemeral_secret = [0u8; 32];
        p.rng.clone().fill_bytes(&mut seal_ephemeral_secret);
        let recipient = p.party(from.other()).identity.public().clone();
        let expires = now_ms / 1000 + common::TTL_S;
        let envelope = {
            let Pair {
                rng, alice, bob, ..
            } = &mut p;
            let sender = match from {
                Side::Alice => &alice.identity,
                Side::Bob => &bob.identity,
            };
            Envelope::seal(sender, &recipient, &session, expires, rng)
                .unwrap()
                .encode()
        };
        assert_eq!(
            spec::x25519_public(&seal_ephemeral_secret)[..],
            envelope[45..77],
            "the seal drew its ephemeral secret where expected"
        );
        let sender_ratchet_secret = ratchet_secret(&p.party(from).sessions);
        let session_id = p.party(from).sessions.active_session().unwrap();
        let decoded = Envelope::decode(&envelope).unwrap();
        let opened = decoded
            .open(&p.party(from.other()).identity, now_ms / 1000)
            .unwrap();
        let is_start = opened.session_message[1] == 1;
        let noise_ephemeral = spec::hmac(&noise_seed, &1u64.to_be_bytes());
        if is_start {
            assert_eq!(
                spec::x25519_public(&noise_ephemeral)[..],
                opened.session_message[9..41],
                "the start drew its Noise seed where expected"
            );
        }
        let content = p.receive(from.other(), &envelope).unwrap();
        assert_eq!(Pair::text_of(&content), text);
        assert_eq!(content.id, id);
        messages.push(MessageVector {
            from: side_name(from),
            to: side_name(from.other()),
            now_ms,
            expires_at: decoded.expires_at,
            text: text.into(),
            message_id: hex(&id.0),
            content: hex(&content.encode().unwrap()),
            sender_ratchet_secret: hex(&sender_ratchet_secret),
            session_kind: opened.session_message[1],
            session_id: hex(&session_id.0),
            session_message: hex(&opened.session_message),
            envelope: hex(&envelope),
            envelope_id: hex(&decoded.id().0),
            seal_ephemeral_secret: hex(&seal_ephemeral_secret),
            noise_seed: is_start.then(|| hex(&noise_seed)),
            noise_ephemeral_secret: is_start.then(|| hex(&noise_ephemeral)),
        });
    }
    assert_eq!(
        p.alice.sessions.active_session(),
        p.bob.sessions.active_session()
    );
    ExchangeVector {
        harness_seed: EXCHANGE_SEED,
        alice,
        bob,
        messages,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the stored bytes back through the crate's decoders.

fn check_with_api(v: &Vectors) {
    // Identity.
    let id = &v.identity;
    let public = PublicIdentity::decode(&mut Reader::new(&unhex(&id.public_identity))).unwrap();
    assert_eq!(hex(public.key.as_bytes()), id.identity_key);
    assert_eq!(hex(&public.agreement), id.agreement_key);
    let signed_prekey = unhex(&id.signed_prekey);
    let mut r = Reader::new(&signed_prekey);
    let prekey = SignedPrekey::decode(&mut r, &public.key).unwrap();
    r.finish().unwrap();
    assert_eq!(prekey.id, id.prekey_id);
    assert_eq!(hex(&prekey.public), id.prekey_public);
    assert_eq!(prekey.created_ms, id.prekey_created_ms);
    let key = IdentityKey::from_peer_id(&id.peer_id).unwrap();
    assert_eq!(key, public.key);
    assert_eq!(hex(&key.mailbox_id().0), id.mailbox_id);

    // Pickle.
    let identity = Identity::unpickle(
        &PickleKey::from_bytes(unhex32(&v.pickle.key)),
        &unhex(&v.pickle.bytes),
    )
    .unwrap();
    assert_eq!(identity.public(), &public);
    assert_eq!(identity.current_prekey(), &prekey);

    // Card and invite link.
    let card = ContactCard::decode(&unhex(&v.card.bytes)).unwrap();
    assert_eq!(card.key(), public.key);
    assert_eq!(card.prekey(), &prekey);
    assert_eq!(card.display_name(), v.card.display_name);
    assert_eq!(card.details().revision, v.card.revision);
    assert_eq!(card.details().mailboxes.len(), v.card.mailboxes.len());
    for (m, mv) in card.details().mailboxes.iter().zip(&v.card.mailboxes) {
        assert_eq!(hex(&m.peer_id), mv.peer_id);
        let addrs: Vec<String> = m.addresses.iter().map(|a| hex(a)).collect();
        assert_eq!(addrs, mv.addresses);
    }
    let addrs: Vec<String> = card.details().addresses.iter().map(|a| hex(a)).collect();
    assert_eq!(addrs, v.card.addresses);
    assert_eq!(
        ContactCard::from_invite_link(&v.card.invite_link).unwrap(),
        card
    );
    assert_eq!(
        ContactCard::from_invite_link(&v.card.invite_link_1_0).unwrap(),
        card
    );

    // Address record.
    let ar = &v.address_record;
    let record = AddressRecord::decode(&unhex(&ar.bytes)).unwrap();
    assert_eq!(record.identity(), public.key);
    assert_eq!(record.issued_ms(), ar.issued_ms);
    assert_eq!(record.ttl_secs(), ar.ttl_secs);
    let addrs: Vec<String> = record.addresses().iter().map(|a| hex(a)).collect();
    assert_eq!(addrs, ar.addresses);
    assert!(record.belongs_under(&unhex(&ar.dht_key)));
    assert!(record.is_live(ar.issued_ms));
    assert!(!record.is_live(ar.issued_ms + u64::from(ar.ttl_secs) * 1000));

    // Safety number.
    let s = &v.safety_number;
    let a = IdentityKey::from_bytes(unhex32(&s.a_identity_key)).unwrap();
    let b = IdentityKey::from_bytes(unhex32(&s.b_identity_key)).unwrap();
    assert_eq!(Fingerprint::of(&a).digits(), s.a_fingerprint);
    assert_eq!(Fingerprint::of(&b).digits(), s.b_fingerprint);
    assert!(SafetyNumber::between(&b, &a).matches(&s.safety_number_display));

    // Content.
    for c in &v.content {
        let content = Content::decode(&unhex(&c.bytes)).unwrap();
        assert_eq!(hex(&content.id.0), c.id, "{}", c.name);
        assert_eq!(content.id.to_string(), c.id_text);
        assert_eq!(content.id.as_uuid().get_version_num(), 7);
        assert_eq!(content.sent_at_ms, c.sent_at_ms);
        let ids = |l: &[MessageId]| l.iter().map(|m| hex(&m.0)).collect::<Vec<_>>();
        match &content.body {
            Body::Text(t) => assert_eq!(Some(t), c.text.as_ref()),
            Body::Delivered(l) => assert_eq!((c.kind, Some(ids(l))), (2, c.ids.clone())),
            Body::Read(l) => assert_eq!((c.kind, Some(ids(l))), (3, c.ids.clone())),
            Body::Typing(on) => assert_eq!(Some(*on), c.typing),
            Body::Unknown { kind, data } => {
                assert_eq!((*kind, Some(hex(data))), (c.kind, c.data.clone()));
            }
            Body::Card(data) => {
                assert_eq!((c.kind, Some(hex(data))), (5, c.data.clone()));
                assert_eq!(hex(data), v.card.bytes, "the §16.2 card");
                assert!(ContactCard::decode(data).is_ok());
            }
            Body::Timer(t) => {
                assert_eq!(
                    (c.kind, Some(hex(&t.encode().unwrap()))),
                    (6, c.data.clone())
                );
            }
            Body::Reply(r) => {
                assert_eq!(
                    (c.kind, Some(&r.text), c.ids.clone()),
                    (7, c.text.as_ref(), Some(vec![hex(&r.to.0)]))
                );
            }
            other => panic!("unexpected body {other:?}"),
        }
    }

    // The exchange: parties rebuilt from the harness seed. Each sender sends again (so its own state and the
    // shared RNG advance as they did), but the recipient opens the stored envelope, not the fresh one.
    let x = &v.exchange;
    let mut p = Pair::new(x.harness_seed);
    assert_eq!(hex(p.alice.key().as_bytes()), x.alice.identity_key);
    assert_eq!(hex(p.bob.key().as_bytes()), x.bob.identity_key);
    assert_eq!(hex(p.alice.card.encode()), x.alice.card);
    assert_eq!(hex(p.bob.card.encode()), x.bob.card);
    for m in &x.messages {
        p.now_ms = m.now_ms;
        let (from, to) = if m.to == "bob" {
            (Side::Alice, Side::Bob)
        } else {
            (Side::Bob, Side::Alice)
        };
        p.send(from, &m.text);
        let stored = unhex(&m.envelope);
        let envelope = Envelope::decode(&stored).unwrap();
        assert_eq!(hex(&envelope.id().0), m.envelope_id);
        assert_eq!(envelope.expires_at, m.expires_at);
        assert_eq!(
            hex(&envelope.mailbox.0),
            hex(&p.party(to).key().mailbox_id().0)
        );
        let content = p.receive(to, &stored).unwrap();
        assert_eq!(Pair::text_of(&content), m.text);
        assert_eq!(hex(&content.id.0), m.message_id);
        assert_eq!(hex(&content.encode().unwrap()), m.content);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A second implementation, written from docs/protocol.md with the raw primitives only.

mod spec {
    use chacha20poly1305::ChaCha20Poly1305;
    use chacha20poly1305::aead::{Aead, Payload};
    use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
    use hkdf::Hkdf;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256, Sha512};
    use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
    use snow::types::{Cipher, Dh, Hash, Random};
    use x25519_dalek::{PublicKey, StaticSecret};

    /// A cursor over big-endian fields that panics on truncation.
    pub struct Cursor<'a>(&'a [u8]);

    impl<'a> Cursor<'a> {
        pub fn new(bytes: &'a [u8]) -> Self {
            Self(bytes)
        }
        pub fn take(&mut self, n: usize) -> &'a [u8] {
            assert!(
                n <= self.0.len(),
                "truncated: need {n}, have {}",
                self.0.len()
            );
            let (head, tail) = self.0.split_at(n);
            self.0 = tail;
            head
        }
        pub fn arr<const N: usize>(&mut self) -> [u8; N] {
            self.take(N).try_into().unwrap()
        }
        pub fn u8(&mut self) -> u8 {
            self.take(1)[0]
        }
        pub fn u16(&mut self) -> u16 {
            u16::from_be_bytes(self.arr())
        }
        pub fn u32(&mut self) -> u32 {
            u32::from_be_bytes(self.arr())
        }
        pub fn u64(&mut self) -> u64 {
            u64::from_be_bytes(self.arr())
        }
        pub fn vec8(&mut self) -> &'a [u8] {
            let n = self.u8();
            self.take(usize::from(n))
        }
        pub fn vec16(&mut self) -> &'a [u8] {
            let n = self.u16();
            self.take(usize::from(n))
        }
        pub fn vec32(&mut self) -> &'a [u8] {
            let n = self.u32();
            self.take(usize::try_from(n).unwrap())
        }
        pub fn rest(&mut self) -> &'a [u8] {
            self.take(self.0.len())
        }
        pub fn used(&self, whole: &[u8]) -> usize {
            whole.len() - self.0.len()
        }
        pub fn end(self) {
            assert!(self.0.is_empty(), "{} trailing bytes", self.0.len());
        }
    }

    pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    pub fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        Hkdf::<Sha256>::new(Some(salt), ikm)
            .expand(info, &mut out)
            .unwrap();
        out
    }

    pub fn aead_open(key: &[u8], nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Vec<u8> {
        let cipher = <ChaCha20Poly1305 as chacha20poly1305::KeyInit>::new_from_slice(key).unwrap();
        let nonce: [u8; 12] = nonce.try_into().unwrap();
        cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .expect("AEAD opens")
    }

    pub fn aead_seal(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = <ChaCha20Poly1305 as chacha20poly1305::KeyInit>::new_from_slice(key).unwrap();
        let nonce: [u8; 12] = nonce.try_into().unwrap();
        cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap()
    }

    pub fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
        PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
    }

    pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
        StaticSecret::from(*secret)
            .diffie_hellman(&PublicKey::from(*public))
            .to_bytes()
    }

    pub fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
        SigningKey::from_bytes(seed).verifying_key().to_bytes()
    }

    /// Verifies `sig` over `u8 len(label) || label || data`.
    pub fn verify(key: &[u8; 32], label: &[u8], data: &[u8], sig: &[u8; 64]) {
        let mut msg = vec![u8::try_from(label.len()).unwrap()];
        msg.extend_from_slice(label);
        msg.extend_from_slice(data);
        VerifyingKey::from_bytes(key)
            .unwrap()
            .verify_strict(&msg, &Signature::from_bytes(sig))
            .expect("signature verifies");
    }

    pub fn peer_id_bytes(key: &[u8; 32]) -> Vec<u8> {
        let mut out = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
        out.extend_from_slice(key);
        out
    }

    pub fn mailbox_id(key: &[u8; 32]) -> [u8; 32] {
        sha256(&[b"tern/mailbox/v1", key])
    }

    pub fn fingerprint(key: &[u8; 32]) -> String {
        let mut digest: Vec<u8> = Sha512::new_with_prefix(b"tern/fingerprint/v1")
            .chain_update(key)
            .finalize()
            .to_vec();
        for _ in 1..5200 {
            digest = Sha512::new()
                .chain_update(&digest)
                .chain_update(key)
                .finalize()
                .to_vec();
        }
        digest[..30]
            .chunks(5)
            .map(|c| {
                let v = c.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
                format!("{:05}", v % 100_000)
            })
            .collect()
    }

    pub fn safety_number(a: &[u8; 32], b: &[u8; 32]) -> String {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        fingerprint(first) + &fingerprint(second)
    }

    pub struct Prekey {
        pub id: u32,
        pub public: [u8; 32],
        pub created_ms: u64,
        pub signature: [u8; 64],
    }

    /// Reads `u32 id || public[32] || u64 created_ms || signature[64]` and checks the signature.
    pub fn prekey(c: &mut Cursor<'_>, owner: &[u8; 32]) -> Prekey {
        let id = c.u32();
        let public = c.arr();
        let created_ms = c.u64();
        let signature = c.arr();
        let mut data = id.to_be_bytes().to_vec();
        data.extend_from_slice(&public);
        data.extend_from_slice(&created_ms.to_be_bytes());
        verify(owner, b"tern/prekey/v1", &data, &signature);
        Prekey {
            id,
            public,
            created_ms,
            signature,
        }
    }

    pub struct Card {
        pub identity_key: [u8; 32],
        pub agreement_key: [u8; 32],
        pub prekey: Prekey,
        pub revision: u64,
        pub display_name: String,
        pub mailboxes: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
        pub addresses: Vec<Vec<u8>>,
        pub signature: [u8; 64],
    }

    fn addresses(c: &mut Cursor<'_>) -> Vec<Vec<u8>> {
        let n = c.u8();
        assert!(n <= 4);
        (0..n)
            .map(|_| {
                let a = c.vec8();
                assert!(a.len() <= 96);
                a.to_vec()
            })
            .collect()
    }

    /// An address record: `u8 version (1) || identity_key[32] || u64 issued_ms || u32 ttl_secs (1..=7200) ||
    /// u8 n (<= 8) || n x vec8<128> multiaddr || signature[64]` under label `tern/address-record/v1`.
    pub fn address_record(bytes: &[u8]) -> ([u8; 32], u64, u32, Vec<Vec<u8>>) {
        assert!(bytes.len() <= 1 + 32 + 8 + 4 + 1 + 8 * 129 + 64);
        let mut c = Cursor::new(bytes);
        assert_eq!(c.u8(), 1, "address record version");
        let identity_key: [u8; 32] = c.arr();
        let issued_ms = c.u64();
        let ttl_secs = c.u32();
        assert!((1..=7200).contains(&ttl_secs));
        let n = c.u8();
        assert!(n <= 8);
        let addresses = (0..n)
            .map(|_| {
                let a = c.vec8();
                assert!(!a.is_empty() && a.len() <= 128);
                a.to_vec()
            })
            .collect();
        let signed = c.used(bytes);
        let signature = c.arr();
        c.end();
        verify(
            &identity_key,
            b"tern/address-record/v1",
            &bytes[..signed],
            &signature,
        );
        (identity_key, issued_ms, ttl_secs, addresses)
    }

    pub fn card(bytes: &[u8]) -> Card {
        assert!(bytes.len() <= 1536);
        let mut c = Cursor::new(bytes);
        assert_eq!(c.u8(), 1, "card version");
        let identity_key: [u8; 32] = c.arr();
        let agreement_key: [u8; 32] = c.arr();
        let agreement_sig: [u8; 64] = c.arr();
        verify(
            &identity_key,
            b"tern/agreement-key/v1",
            &agreement_key,
            &agreement_sig,
        );
        let prekey = prekey(&mut c, &identity_key);
        let revision = c.u64();
        let name = c.vec8();
        assert!(!name.is_empty() && name.len() <= 64);
        let display_name = String::from_utf8(name.to_vec()).unwrap();
        let n = c.u8();
        assert!(n <= 4);
        let mailboxes = (0..n)
            .map(|_| {
                let peer = c.vec8().to_vec();
                assert!(peer.len() <= 64);
                (peer, addresses(&mut c))
            })
            .collect();
        let addresses = addresses(&mut c);
        let signed = c.used(bytes);
        let signature = c.arr();
        c.end();
        verify(&identity_key, b"tern/card/v1", &bytes[..signed], &signature);
        Card {
            identity_key,
            agreement_key,
            prekey,
            revision,
            display_name,
            mailboxes,
            addresses,
            signature,
        }
    }

    /// Opens a pickle: `u8 version || u8 kind || nonce[12] || ciphertext`, AAD `"tern/pickle/v1" || version || kind`.
    pub fn open_pickle(key: &[u8; 32], kind: u8, bytes: &[u8]) -> Vec<u8> {
        let mut c = Cursor::new(bytes);
        assert_eq!(c.u8(), 1, "pickle version");
        assert_eq!(c.u8(), kind, "pickle kind");
        let nonce = c.take(12);
        let mut aad = b"tern/pickle/v1".to_vec();
        aad.extend_from_slice(&[1, kind]);
        aead_open(key, nonce, &aad, c.rest())
    }

    pub struct PrekeySecret {
        pub id: u32,
        pub secret: [u8; 32],
    }

    pub struct IdentitySecrets {
        pub ed25519_seed: [u8; 32],
        pub agreement_secret: [u8; 32],
        pub prekeys: Vec<PrekeySecret>,
    }

    pub fn identity_pickle(key: &[u8; 32], bytes: &[u8]) -> IdentitySecrets {
        let plain = open_pickle(key, 1, bytes);
        let mut c = Cursor::new(&plain);
        let ed25519_seed = c.arr();
        let agreement_secret = c.arr();
        let _next_prekey_id = c.u32();
        let owner = ed25519_public(&ed25519_seed);
        let count = c.u8();
        assert!((1..=9).contains(&count));
        let prekeys = (0..count)
            .map(|_| {
                let signed = prekey(&mut c, &owner);
                let secret = c.arr();
                assert_eq!(x25519_public(&secret), signed.public);
                if c.u8() == 1 {
                    c.u64();
                }
                PrekeySecret {
                    id: signed.id,
                    secret,
                }
            })
            .collect();
        c.end();
        IdentitySecrets {
            ed25519_seed,
            agreement_secret,
            prekeys,
        }
    }

    pub struct SessionState {
        pub id: [u8; 16],
        pub ratchet_secret: [u8; 32],
    }

    pub struct SessionsPickle {
        pub sessions: Vec<SessionState>,
    }

    pub fn sessions_pickle(key: &[u8; 32], bytes: &[u8]) -> SessionsPickle {
        let plain = open_pickle(key, 2, bytes);
        let mut c = Cursor::new(&plain);
        let _local: [u8; 32] = c.arr();
        let _remote: [u8; 32] = c.arr();
        let count = c.u8();
        assert!(count <= 4);
        let sessions = (0..count)
            .map(|_| {
                let id = c.arr();
                let _handshake = c.u8();
                let _we_initiated = c.u8();
                let _confirmed = c.u8();
                if c.u8() == 1 {
                    c.u32();
                    c.vec16();
                }
                let _root: [u8; 32] = c.arr();
                let ratchet_secret = c.arr();
                if c.u8() == 1 {
                    c.take(32);
                }
                for _chain in 0..2 {
                    if c.u8() == 1 {
                        c.take(32 + 4);
                    }
                }
                let _previous = c.u32();
                let skipped = c.u16();
                c.take(usize::from(skipped) * (32 + 4 + 32));
                let past = c.u8();
                c.take(usize::from(past) * 32);
                SessionState { id, ratchet_secret }
            })
            .collect();
        let retired = c.u8();
        c.take(usize::from(retired) * 16);
        c.end();
        SessionsPickle { sessions }
    }

    pub struct Opened {
        pub mailbox: [u8; 32],
        pub expires_at: u64,
        pub sender: [u8; 32],
        pub session_message: Vec<u8>,
    }

    pub fn open_envelope(bytes: &[u8], agreement_secret: &[u8; 32]) -> Opened {
        let mut c = Cursor::new(bytes);
        assert_eq!(c.u8(), 1, "envelope version");
        let mailbox: [u8; 32] = c.arr();
        let expires_at = c.u64();
        let body = c.vec32();
        c.end();
        let (ephemeral, ciphertext) = body.split_at(32);
        let padded = ciphertext.len() - 16;
        assert!(padded.is_power_of_two() && (256..=65536).contains(&padded));
        let ephemeral: [u8; 32] = ephemeral.try_into().unwrap();
        let recipient = x25519_public(agreement_secret);
        let dh = x25519(agreement_secret, &ephemeral);
        let mut salt = ephemeral.to_vec();
        salt.extend_from_slice(&recipient);
        let okm = hkdf(&salt, &dh, b"tern/seal/v1", 44);
        let mut aad = vec![1u8];
        aad.extend_from_slice(&mailbox);
        aad.extend_from_slice(&expires_at.to_be_bytes());
        let inner = aead_open(&okm[..32], &okm[32..], &aad, ciphertext);
        let mut c = Cursor::new(&inner);
        assert_eq!(c.u8(), 1, "inner version");
        let sender = c.arr();
        let session_message = c.vec32().to_vec();
        let padding = c.rest();
        assert_eq!(padding[0], 0x80);
        assert!(padding[1..].iter().all(|&b| b == 0));
        Opened {
            mailbox,
            expires_at,
            sender,
            session_message,
        }
    }

    pub struct Header {
        pub bytes: [u8; 40],
        pub dh: [u8; 32],
        pub pn: u32,
        pub n: u32,
    }

    fn header(c: &mut Cursor<'_>) -> Header {
        let bytes: [u8; 40] = c.arr();
        let mut h = Cursor::new(&bytes);
        Header {
            dh: h.arr(),
            pn: h.u32(),
            n: h.u32(),
            bytes,
        }
    }

    pub enum SessionMessage {
        Start {
            handshake: u8,
            prekey_id: u32,
            noise: Vec<u8>,
            header: Header,
            ciphertext: Vec<u8>,
        },
        Ratchet {
            session_id: [u8; 16],
            header: Header,
            ciphertext: Vec<u8>,
        },
    }

    pub fn session_message(bytes: &[u8]) -> SessionMessage {
        let mut c = Cursor::new(bytes);
        assert_eq!(c.u8(), 1, "session version");
        let msg = match c.u8() {
            1 => SessionMessage::Start {
                handshake: c.u8(),
                prekey_id: c.u32(),
                noise: c.vec16().to_vec(),
                header: header(&mut c),
                ciphertext: c.vec32().to_vec(),
            },
            2 => SessionMessage::Ratchet {
                session_id: c.arr(),
                header: header(&mut c),
                ciphertext: c.vec32().to_vec(),
            },
            k => panic!("unknown session message kind {k}"),
        };
        c.end();
        msg
    }

    struct ZeroRandom;
    impl Random for ZeroRandom {
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
            dest.fill(0);
            Ok(())
        }
    }
    /// A Noise builder whose RNG gives zeros: only for a responder, or an initiator with a fixed ephemeral key.
    pub fn noise_builder<'a>() -> snow::Builder<'a> {
        let resolver =
            FallbackResolver::new(Box::new(ResponderResolver), Box::new(DefaultResolver));
        snow::Builder::with_resolver(
            "Noise_X_25519_ChaChaPoly_SHA256".parse().unwrap(),
            Box::new(resolver),
        )
    }

    struct ResponderResolver;
    impl CryptoResolver for ResponderResolver {
        fn resolve_rng(&self) -> Option<Box<dyn Random>> {
            Some(Box::new(ZeroRandom))
        }
        fn resolve_dh(&self, _: &snow::params::DHChoice) -> Option<Box<dyn Dh>> {
            None
        }
        fn resolve_hash(&self, _: &snow::params::HashChoice) -> Option<Box<dyn Hash>> {
            None
        }
        fn resolve_cipher(&self, _: &snow::params::CipherChoice) -> Option<Box<dyn Cipher>> {
            None
        }
    }

    /// The responder's side of the Noise start: returns (payload, initiator static, root key).
    pub fn noise_respond(
        noise: &[u8],
        prekey_secret: &[u8; 32],
        initiator: &[u8; 32],
        responder: &[u8; 32],
        prekey_id: u32,
        responder_agreement: &[u8; 32],
    ) -> (Vec<u8>, [u8; 32], [u8; 32]) {
        let mut prologue = b"tern/session/v1".to_vec();
        prologue.extend_from_slice(initiator);
        prologue.extend_from_slice(responder);
        prologue.extend_from_slice(&prekey_id.to_be_bytes());
        prologue.extend_from_slice(responder_agreement);
        let resolver =
            FallbackResolver::new(Box::new(ResponderResolver), Box::new(DefaultResolver));
        let mut hs = snow::Builder::with_resolver(
            "Noise_X_25519_ChaChaPoly_SHA256".parse().unwrap(),
            Box::new(resolver),
        )
        .local_private_key(prekey_secret)
        .unwrap()
        .prologue(&prologue)
        .unwrap()
        .build_responder()
        .unwrap();
        let mut payload = vec![0u8; noise.len()];
        let len = hs.read_message(noise, &mut payload).unwrap();
        payload.truncate(len);
        let rs: [u8; 32] = hs.get_remote_static().unwrap().try_into().unwrap();
        let h = hs.get_handshake_hash().to_vec();
        let (k1, k2) = hs.dangerously_get_raw_split();
        let mut ikm = k1.to_vec();
        ikm.extend_from_slice(&k2);
        let root = hkdf(&h, &ikm, b"tern/session/root/v1", 32)
            .try_into()
            .unwrap();
        (payload, rs, root)
    }

    pub fn session_id(noise: &[u8]) -> [u8; 16] {
        sha256(&[b"tern/session-id/v1", noise])[..16]
            .try_into()
            .unwrap()
    }

    pub fn session_ad(initiator: &[u8; 32], responder: &[u8; 32]) -> Vec<u8> {
        let mut ad = b"tern/ratchet/ad/v1".to_vec();
        ad.extend_from_slice(initiator);
        ad.extend_from_slice(responder);
        ad
    }

    /// KDF_RK: (new root key, chain key).
    pub fn kdf_rk(root: &[u8; 32], dh: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
        let okm = hkdf(root, dh, b"tern/ratchet/root/v1", 64);
        (okm[..32].try_into().unwrap(), okm[32..].try_into().unwrap())
    }

    /// KDF_CK: (message key, next chain key).
    pub fn kdf_ck(ck: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
        (hmac(ck, &[0x01]), hmac(ck, &[0x02]))
    }

    /// The message key's AEAD key and nonce.
    pub fn message_cipher(mk: &[u8; 32]) -> (Vec<u8>, Vec<u8>) {
        let okm = hkdf(&[0u8; 32], mk, b"tern/ratchet/message/v1", 44);
        (okm[..32].to_vec(), okm[32..].to_vec())
    }

    /// Decrypts message `header.n` of the chain starting at `chain_key`.
    pub fn ratchet_open(
        chain_key: &[u8; 32],
        header: &Header,
        ciphertext: &[u8],
        session_ad: &[u8],
    ) -> Vec<u8> {
        let mut ck = *chain_key;
        for _ in 0..header.n {
            ck = kdf_ck(&ck).1;
        }
        let (mk, _) = kdf_ck(&ck);
        let (key, nonce) = message_cipher(&mk);
        let mut aad = session_ad.to_vec();
        aad.extend_from_slice(&header.bytes);
        aead_open(&key, &nonce, &aad, ciphertext)
    }

    pub struct Content {
        pub id: [u8; 16],
        pub sent_at_ms: u64,
        pub kind: u16,
        pub body: Vec<u8>,
    }

    pub fn content(bytes: &[u8]) -> Content {
        assert!(bytes.len() <= 48 * 1024);
        let mut c = Cursor::new(bytes);
        assert_eq!(c.u8(), 1, "content version");
        let id = c.arr();
        let sent_at_ms = c.u64();
        let kind = c.u16();
        let body = c.vec32().to_vec();
        c.end();
        Content {
            id,
            sent_at_ms,
            kind,
            body,
        }
    }
}

fn check_with_spec(v: &Vectors) {
    // Address record: signed by the vector identity, under "/tern/addresses/" || mailbox_id.
    let ar = &v.address_record;
    let (key, issued_ms, ttl_secs, addresses) = spec::address_record(&unhex(&ar.bytes));
    assert_eq!(hex(&key), v.identity.identity_key);
    assert_eq!((issued_ms, ttl_secs), (ar.issued_ms, ar.ttl_secs));
    assert_eq!(
        addresses.iter().map(|a| hex(a)).collect::<Vec<_>>(),
        ar.addresses
    );
    let mut dht_key = b"/tern/addresses/".to_vec();
    dht_key.extend_from_slice(&spec::mailbox_id(&key));
    assert_eq!(hex(&dht_key), ar.dht_key);
    assert_eq!(&ar.bytes[ar.bytes.len() - 128..], ar.signature);

    // Identity: the RNG output is the three secrets in order, and every public value follows from them.
    let id = &v.identity;
    let rng = unhex(&id.rng_output);
    assert_eq!(hex(&rng[..32]), id.ed25519_seed);
    assert_eq!(hex(&rng[32..64]), id.agreement_secret);
    assert_eq!(hex(&rng[64..]), id.prekey_secret);
    let key = spec::ed25519_public(&unhex32(&id.ed25519_seed));
    assert_eq!(hex(&key), id.identity_key);
    assert_eq!(
        hex(&spec::x25519_public(&unhex32(&id.agreement_secret))),
        id.agreement_key
    );
    assert_eq!(
        hex(&spec::x25519_public(&unhex32(&id.prekey_secret))),
        id.prekey_public
    );
    spec::verify(
        &key,
        b"tern/agreement-key/v1",
        &unhex(&id.agreement_key),
        &unhex(&id.agreement_signature).try_into().unwrap(),
    );
    let public_identity = [
        key.to_vec(),
        unhex(&id.agreement_key),
        unhex(&id.agreement_signature),
    ]
    .concat();
    assert_eq!(hex(&public_identity), id.public_identity);
    let prekey = spec::prekey(&mut spec::Cursor::new(&unhex(&id.signed_prekey)), &key);
    assert_eq!(
        (prekey.id, hex(&prekey.public), prekey.created_ms),
        (id.prekey_id, id.prekey_public.clone(), id.prekey_created_ms)
    );
    assert_eq!(hex(&prekey.signature), id.prekey_signature);
    assert_eq!(hex(&spec::peer_id_bytes(&key)), id.peer_id_bytes);
    assert_eq!(
        bs58::encode(spec::peer_id_bytes(&key)).into_string(),
        id.peer_id
    );
    assert!(id.peer_id.starts_with("12D3KooW"));
    assert_eq!(hex(&spec::mailbox_id(&key)), id.mailbox_id);

    // Pickle.
    let secrets = spec::identity_pickle(&unhex32(&v.pickle.key), &unhex(&v.pickle.bytes));
    assert_eq!(v.pickle.kind, 1);
    assert_eq!(hex(&secrets.ed25519_seed), id.ed25519_seed);
    assert_eq!(hex(&secrets.agreement_secret), id.agreement_secret);
    assert_eq!(secrets.prekeys.len(), 1);
    assert_eq!(secrets.prekeys[0].id, id.prekey_id);
    assert_eq!(hex(&secrets.prekeys[0].secret), id.prekey_secret);

    // Card.
    let bytes = unhex(&v.card.bytes);
    let card = spec::card(&bytes);
    assert_eq!(hex(&card.identity_key), id.identity_key);
    assert_eq!(hex(&card.agreement_key), id.agreement_key);
    assert_eq!(hex(&card.prekey.public), id.prekey_public);
    assert_eq!(card.revision, v.card.revision);
    assert_eq!(card.display_name, v.card.display_name);
    let mailboxes: Vec<MailboxVector> = card
        .mailboxes
        .iter()
        .map(|(peer, addrs)| MailboxVector {
            peer_id: hex(peer),
            addresses: addrs.iter().map(|a| hex(a)).collect(),
        })
        .collect();
    assert_eq!(mailboxes, v.card.mailboxes);
    let addrs: Vec<String> = card.addresses.iter().map(|a| hex(a)).collect();
    assert_eq!(addrs, v.card.addresses);
    assert_eq!(hex(&card.signature), v.card.signature);
    // The checked link: card || SHA-256("tern/invite/v1" || card)[0..4].
    let check = spec::sha256(&[b"tern/invite/v1", &bytes])[..4].to_vec();
    assert_eq!(hex(&check), v.card.invite_check);
    let link = v.card.invite_link.strip_prefix("tern:").unwrap();
    assert_eq!(
        bs58::decode(link).into_vec().unwrap(),
        [bytes.as_slice(), &check].concat()
    );
    let link = v.card.invite_link_1_0.strip_prefix("tern:").unwrap();
    assert_eq!(bs58::decode(link).into_vec().unwrap(), bytes);

    // Safety number.
    let s = &v.safety_number;
    let a = unhex32(&s.a_identity_key);
    let b = unhex32(&s.b_identity_key);
    assert_eq!(spec::fingerprint(&a), s.a_fingerprint);
    assert_eq!(spec::fingerprint(&b), s.b_fingerprint);
    assert_eq!(spec::safety_number(&a, &b), s.safety_number);
    assert_eq!(spec::safety_number(&b, &a), s.safety_number);
    assert_eq!(s.safety_number_display.replace(' ', ""), s.safety_number);

    // KDFs.
    let k = &v.kdf;
    let (root, chain) = spec::kdf_rk(&unhex32(&k.kdf_rk_root_key), &unhex32(&k.kdf_rk_dh_output));
    assert_eq!(
        (hex(&root), hex(&chain)),
        (k.kdf_rk_new_root_key.clone(), k.kdf_rk_chain_key.clone())
    );
    let (mk, next) = spec::kdf_ck(&unhex32(&k.kdf_ck_chain_key));
    assert_eq!(
        (hex(&mk), hex(&next)),
        (
            k.kdf_ck_message_key.clone(),
            k.kdf_ck_next_chain_key.clone()
        )
    );
    let (key_, nonce) = spec::message_cipher(&unhex32(&k.message_key));
    assert_eq!(
        (hex(&key_), hex(&nonce)),
        (k.message_aead_key.clone(), k.message_aead_nonce.clone())
    );
    let ikm = [unhex(&k.session_root_k1), unhex(&k.session_root_k2)].concat();
    let root = spec::hkdf(
        &unhex(&k.session_root_handshake_hash),
        &ikm,
        b"tern/session/root/v1",
        32,
    );
    assert_eq!(hex(&root), k.session_root_key);
    assert_eq!(
        hex(&spec::x25519_public(&[0x11; 32])),
        k.seal_ephemeral_public
    );
    assert_eq!(
        hex(&spec::x25519_public(&[0x22; 32])),
        k.seal_recipient_public
    );
    let dh = spec::x25519(&[0x22; 32], &unhex32(&k.seal_ephemeral_public));
    assert_eq!(hex(&dh), k.seal_dh_output);
    let salt = [
        unhex(&k.seal_ephemeral_public),
        unhex(&k.seal_recipient_public),
    ]
    .concat();
    let okm = spec::hkdf(&salt, &dh, b"tern/seal/v1", 44);
    assert_eq!(
        (hex(&okm[..32]), hex(&okm[32..])),
        (k.seal_key.clone(), k.seal_nonce.clone())
    );

    // Content.
    for c in &v.content {
        let content = spec::content(&unhex(&c.bytes));
        assert_eq!(hex(&content.id), c.id);
        assert_eq!(content.id[6] >> 4, 7, "UUID version 7");
        assert_eq!(content.id[8] >> 6, 0b10, "UUID variant");
        let ms = content.id[..6]
            .iter()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        assert_eq!(ms, c.sent_at_ms, "the id's timestamp is the send time here");
        assert_eq!(content.sent_at_ms, c.sent_at_ms);
        assert_eq!(content.kind, c.kind);
        let expected = match c.kind {
            1 => c.text.clone().unwrap().into_bytes(),
            2 | 3 => {
                let ids = c.ids.clone().unwrap();
                let mut out = u16::try_from(ids.len()).unwrap().to_be_bytes().to_vec();
                for i in ids {
                    out.extend(unhex(&i));
                }
                out
            }
            4 => vec![u8::from(c.typing.unwrap())],
            7 => {
                // A reply: the id of the message it answers, then the text.
                let mut out = unhex(&c.ids.clone().unwrap()[0]);
                out.extend(c.text.clone().unwrap().into_bytes());
                out
            }
            _ => unhex(c.data.as_ref().unwrap()),
        };
        assert_eq!(content.body, expected, "{}", c.name);
        if c.kind == 5 {
            // A card update carries a whole card, read as section 5 says.
            assert_eq!(hex(&content.body), v.card.bytes);
            let card = spec::card(&content.body);
            assert_eq!(card.display_name, v.card.display_name);
        }
        if c.kind == 6 {
            // A timer: u32 seconds, u64 version (section 12.4).
            assert_eq!(content.body.len(), 12, "{}", c.name);
            let seconds = u32::from_be_bytes(content.body[..4].try_into().unwrap());
            let version = u64::from_be_bytes(content.body[4..].try_into().unwrap());
            assert_eq!((seconds, version), (3600, 1));
        }
    }

    check_exchange_with_spec(&v.exchange);
}

fn check_exchange_with_spec(x: &ExchangeVector) {
    let alice_key = unhex32(&x.alice.identity_key);
    let bob_key = unhex32(&x.bob.identity_key);
    for party in [&x.alice, &x.bob] {
        let card = spec::card(&unhex(&party.card));
        assert_eq!(hex(&card.identity_key), party.identity_key);
        assert_eq!(
            hex(&spec::ed25519_public(&unhex32(&party.ed25519_seed))),
            party.identity_key
        );
        assert_eq!(hex(&card.agreement_key), party.agreement_key);
        assert_eq!(card.prekey.id, party.prekey_id);
        assert_eq!(hex(&card.prekey.public), party.prekey_public);
        assert_eq!(
            hex(&spec::x25519_public(&unhex32(&party.prekey_secret))),
            party.prekey_public
        );
    }
    let [m1, m2, m3] = &x.messages[..] else {
        panic!("three messages");
    };
    let open = |m: &MessageVector, to: &PartyVector, from_key: &[u8; 32]| {
        let env = unhex(&m.envelope);
        assert_eq!(
            hex(&spec::sha256(&[b"tern/envelope-id/v1", &env])),
            m.envelope_id
        );
        let opened = spec::open_envelope(&env, &unhex32(&to.agreement_secret));
        assert_eq!(
            hex(&opened.mailbox),
            hex(&spec::mailbox_id(&unhex32(&to.identity_key)))
        );
        assert_eq!(opened.expires_at, m.expires_at);
        assert_eq!(opened.expires_at, m.now_ms / 1000 + common::TTL_S);
        assert_eq!(&opened.sender, from_key);
        assert_eq!(hex(&opened.session_message), m.session_message);
        spec::session_message(&opened.session_message)
    };
    let check_content = |m: &MessageVector, plaintext: &[u8]| {
        assert_eq!(hex(plaintext), m.content);
        let content = spec::content(plaintext);
        assert_eq!(hex(&content.id), m.message_id);
        assert_eq!(content.sent_at_ms, m.now_ms);
        assert_eq!(content.kind, 1);
        assert_eq!(content.body, m.text.as_bytes());
    };
    let ad = spec::session_ad(&alice_key, &bob_key);

    // 1. Alice's start, read by Bob.
    let spec::SessionMessage::Start {
        handshake,
        prekey_id,
        noise,
        header,
        ciphertext,
    } = open(m1, &x.bob, &alice_key)
    else {
        panic!("the first message is a start");
    };
    assert_eq!(
        (m1.session_kind, handshake, prekey_id),
        (1, 1, x.bob.prekey_id)
    );
    assert_eq!(hex(&spec::session_id(&noise)), m1.session_id);
    let (payload, initiator_static, root0) = spec::noise_respond(
        &noise,
        &unhex32(&x.bob.prekey_secret),
        &alice_key,
        &bob_key,
        prekey_id,
        &unhex32(&x.bob.agreement_key),
    );
    assert_eq!(hex(&payload), x.alice.card, "the payload is Alice's card");
    assert_eq!(hex(&initiator_static), x.alice.agreement_key);
    let a1 = unhex32(&m1.sender_ratchet_secret);
    assert_eq!(header.dh, spec::x25519_public(&a1));
    assert_eq!((header.pn, header.n), (0, 0));
    let dh = spec::x25519(&unhex32(&x.bob.prekey_secret), &header.dh);
    assert_eq!(dh, spec::x25519(&a1, &unhex32(&x.bob.prekey_public)));
    let (root1, chain) = spec::kdf_rk(&root0, &dh);
    check_content(m1, &spec::ratchet_open(&chain, &header, &ciphertext, &ad));

    // 2. Bob's reply, read by Alice: a plain ratchet message on the same session.
    let spec::SessionMessage::Ratchet {
        session_id,
        header,
        ciphertext,
    } = open(m2, &x.alice, &bob_key)
    else {
        panic!("the reply is a ratchet message");
    };
    assert_eq!(m2.session_kind, 2);
    assert_eq!(
        (hex(&session_id), &m2.session_id),
        (m1.session_id.clone(), &m1.session_id)
    );
    let b1 = unhex32(&m2.sender_ratchet_secret);
    assert_eq!(header.dh, spec::x25519_public(&b1));
    assert_eq!((header.pn, header.n), (0, 0));
    let (root2, chain) = spec::kdf_rk(&root1, &spec::x25519(&a1, &header.dh));
    check_content(m2, &spec::ratchet_open(&chain, &header, &ciphertext, &ad));

    // 3. Alice's next message: a new ratchet key, one message on her previous chain.
    let spec::SessionMessage::Ratchet {
        session_id,
        header,
        ciphertext,
    } = open(m3, &x.bob, &alice_key)
    else {
        panic!("once answered, Alice sends ratchet messages");
    };
    assert_eq!(m3.session_kind, 2);
    assert_eq!(hex(&session_id), m1.session_id);
    assert_eq!(
        header.dh,
        spec::x25519_public(&unhex32(&m3.sender_ratchet_secret))
    );
    assert_eq!((header.pn, header.n), (1, 0));
    let (_root3, chain) = spec::kdf_rk(&root2, &spec::x25519(&b1, &header.dh));
    check_content(m3, &spec::ratchet_open(&chain, &header, &ciphertext, &ad));
}

// ---------------------------------------------------------------------------------------------------------------
// The file, the document and the comparison.

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| match v {
        Value::Object(map) => map.get(part),
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn quoted_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn squash(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

const MARKER: &str = "<!-- vector: ";

/// The quoted blocks of the document: (path, line index of the opening fence, line index of the closing fence).
fn quoted_blocks(lines: &[&str]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix(MARKER) else {
            continue;
        };
        let path = rest.trim_end_matches("-->").trim().to_string();
        let open = i + 1;
        assert!(
            lines
                .get(open)
                .is_some_and(|l| l.trim_start().starts_with("```")),
            "protocol.md line {}: the vector marker for {path} must be followed by a fenced block",
            i + 1
        );
        let close = (open + 1..lines.len())
            .find(|&j| lines[j].trim() == "```")
            .unwrap_or_else(|| panic!("protocol.md: unclosed block for {path}"));
        out.push((path, open, close));
    }
    out
}

fn wrap(text: &str) -> Vec<String> {
    if text.len() <= 64 || text.chars().any(|c| !c.is_ascii_hexdigit()) {
        return vec![text.to_string()];
    }
    text.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect()
}

fn rewrite_doc(doc: &str, json: &Value) -> String {
    let lines: Vec<&str> = doc.lines().collect();
    let blocks = quoted_blocks(&lines);
    let mut out: Vec<String> = Vec::new();
    let mut next = 0;
    for (path, open, close) in blocks {
        out.extend(lines[next..=open].iter().map(|l| l.to_string()));
        let value = lookup(json, &path).unwrap_or_else(|| panic!("no vector {path}"));
        out.extend(wrap(&quoted_text(value)));
        next = close;
    }
    out.extend(lines[next..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}

fn check_doc(doc: &str, json: &Value) {
    let lines: Vec<&str> = doc.lines().collect();
    let blocks = quoted_blocks(&lines);
    for (path, open, close) in &blocks {
        let value = lookup(json, path)
            .unwrap_or_else(|| panic!("protocol.md quotes {path}, which the vectors do not have"));
        let quoted = lines[open + 1..*close].join("\n");
        assert_eq!(
            squash(&quoted),
            squash(&quoted_text(value)),
            "protocol.md's quote of {path} differs from docs/test-vectors.json (run with {REGENERATE_ENV}=1)"
        );
    }
    for required in REQUIRED_QUOTES {
        assert!(
            blocks.iter().any(|(p, _, _)| p == required),
            "protocol.md must quote {required}"
        );
    }
}

fn diff(path: &str, file: &Value, code: &Value, out: &mut Vec<String>) {
    match (file, code) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let sub = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff(&sub, x, y, out),
                    (x, y) => out.push(format!("{sub}: file {x:?}, code {y:?}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}.{i}"), x, y, out);
            }
        }
        (a, b) if a != b => {
            let short = |v: &Value| {
                let s = v.to_string();
                if s.len() > 80 {
                    format!("{}…", &s[..80])
                } else {
                    s
                }
            };
            out.push(format!("{path}: file {}, code {}", short(a), short(b)));
        }
        _ => {}
    }
}

#[test]
fn test_vectors_match_the_code_and_read_back_through_an_independent_reader() {
    let generated = generate();
    let generated_json = serde_json::to_value(&generated).unwrap();
    if std::env::var(REGENERATE_ENV).is_ok_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(VECTORS_FILE, text).unwrap();
        let doc = std::fs::read_to_string(DOC_FILE).unwrap();
        std::fs::write(DOC_FILE, rewrite_doc(&doc, &generated_json)).unwrap();
    }

    let text = std::fs::read_to_string(PathBuf::from(VECTORS_FILE)).unwrap_or_else(|e| {
        panic!("cannot read {VECTORS_FILE} ({e}); create it with {REGENERATE_ENV}=1")
    });
    let stored: Vectors = serde_json::from_str(&text).unwrap();
    let stored_json = serde_json::to_value(&stored).unwrap();
    let mut differences = Vec::new();
    diff("", &stored_json, &generated_json, &mut differences);
    assert!(
        differences.is_empty(),
        "the code no longer produces docs/test-vectors.json; if the format change is intended, run \
         {REGENERATE_ENV}=1 cargo test -p tern-protocol --test vectors\n{}",
        differences.join("\n")
    );

    check_with_api(&stored);
    check_with_spec(&stored);
    check_group_bodies(&stored.group_bodies);
    vectors_more::check_mailbox_record_with_api(
        &stored.mailbox_record,
        &stored.identity.identity_key,
    );
    vectors_more::check_mailbox_record_with_spec(
        &stored.mailbox_record,
        &stored.identity.identity_key,
    );
    vectors_more::check_ed25519_with_spec(&stored.ed25519);
    vectors_more::check_rebuild_with_spec(&stored.exchange);
    vectors_more::check_pickle_with_spec(&stored);
    vectors_more::check_network_with_spec(&stored);
    vectors_files::check_files_with_api(&stored.files);
    vectors_files::check_files_with_spec(&stored.files);
    check_doc(&std::fs::read_to_string(DOC_FILE).unwrap(), &stored_json);
}
