//! The checks behind every fuzz target, shared by the fuzz crate (`fuzz/fuzz_targets/*.rs` include this file
//! by path) and by `tests/fuzz_corpus.rs`, which replays the saved corpora in every `cargo test`. Keeping one
//! copy means a corpus file means the same thing in both places.
//!
//! Each check takes arbitrary bytes, must never panic on its own account, and asserts the invariants a
//! decoder owes its callers: what decodes re-encodes to the same bytes, and a failed decrypt leaves the
//! session untouched. It returns whether the input was accepted, so the replay test can tell that the valid
//! seeds still decode. Everything is deterministic: fixed seeds, fixed keys, fixed times.

#![allow(dead_code)]

use std::cell::RefCell;
use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tern_protocol::crypto;
use tern_protocol::file::{
    FileAnnouncement, FileHash, FileKey, FileLayout, PIECE_GROUPS, RangeRequest,
};
use tern_protocol::group_link::{GroupLink, JoinMode, LinkToken};
use tern_protocol::message::MAX_TEXT_LEN;
use tern_protocol::{
    Body, CardDetails, ContactCard, Content, Envelope, Identity, IdentityKey, MailboxNode,
    MessageId, PeerSessions, PickleKey,
};

/// Every fuzz target, by the name of its directory under `fuzz/corpus/`.
pub const TARGETS: [&str; 8] = [
    "envelope_decode",
    "card_decode",
    "content_decode",
    "session_decrypt",
    "pickle_open",
    "invite_link",
    "group_wire",
    "file_request",
];

/// Runs the check of the target named `target`; `None` for an unknown name.
pub fn check(target: &str, data: &[u8]) -> Option<bool> {
    Some(match target {
        "envelope_decode" => envelope_decode(data),
        "card_decode" => card_decode(data),
        "content_decode" => content_decode(data),
        "session_decrypt" => session_decrypt(data),
        "pickle_open" => pickle_open(data),
        "invite_link" => invite_link(data),
        "group_wire" => group_wire(data),
        "file_request" => file_request(data),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------------------
// The checks.

/// `Envelope::decode`; whatever decodes must encode back to the same bytes.
pub fn envelope_decode(data: &[u8]) -> bool {
    let Ok(envelope) = Envelope::decode(data) else {
        return false;
    };
    assert_eq!(envelope.encode(), data, "envelope re-encoding differs");
    assert_eq!(envelope.encoded_len(), data.len());
    true
}

/// `ContactCard::decode` on the bytes, and `ContactCard::from_invite_link` on them if they are UTF-8.
pub fn card_decode(data: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(card) = ContactCard::decode(data) {
        assert_eq!(card.encode(), data, "card re-encoding differs");
        assert_card_link_round_trips(&card);
        accepted = true;
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(card) = ContactCard::from_invite_link(text)
    {
        assert_card_link_round_trips(&card);
        accepted = true;
    }
    accepted
}

fn assert_card_link_round_trips(card: &ContactCard) {
    match ContactCard::decode(card.encode()) {
        Ok(again) => assert!(again == *card, "card decodes to a different card"),
        Err(e) => panic!("a decoded card's own encoding is refused: {e}"),
    }
    match ContactCard::from_invite_link(&card.invite_link()) {
        Ok(again) => assert!(again == *card, "invite link parses to a different card"),
        Err(e) => panic!("a decoded card's own invite link is refused: {e}"),
    }
}

/// An invite link as it arrives, typed, pasted or scanned from a QR code (whose payload is the link's bytes):
/// `ContactCard::from_invite_link` on the bytes read as text (invalid UTF-8 replaced, as a scanner would), and
/// on `tern:` followed by the base58 of the bytes, which reaches the card decoder behind the prefix and the
/// base58. A card that parses must give back its own link, QR payload and QR code.
pub fn invite_link(data: &[u8]) -> bool {
    let mut accepted = false;
    let scanned = String::from_utf8_lossy(data);
    let typed = format!("tern:{}", bs58::encode(data).into_string());
    if let Ok(link) = GroupLink::decode(&scanned) {
        assert_eq!(GroupLink::decode(&link.encode()), Ok(link.clone()));
        assert_card_link_round_trips(&link.admin);
        accepted = true;
    }
    for link in [scanned.as_ref(), typed.as_str()] {
        if let Ok(card) = ContactCard::from_invite_link(link) {
            assert_card_link_round_trips(&card);
            assert_eq!(card.qr_payload(), card.invite_link().into_bytes());
            if let Err(e) = card.qr() {
                panic!("a parsed card does not fit a QR code: {e}");
            }
            accepted = true;
        }
    }
    accepted
}

/// `Content::decode`; whatever decodes must encode back to the same bytes.
pub fn content_decode(data: &[u8]) -> bool {
    let Ok(content) = Content::decode(data) else {
        return false;
    };
    match content.encode() {
        Ok(bytes) => assert_eq!(bytes, data, "content re-encoding differs"),
        Err(e) => panic!("decoded content does not encode: {e}"),
    }
    true
}

/// The bytes as each group body of docs/protocol.md §18.4 (KeyPackage request, KeyPackages, transfer part);
/// what decodes must re-encode to the same bytes, and a decoded part must go through a reassembly.
pub fn group_wire(data: &[u8]) -> bool {
    use tern_protocol::group_link::{JoinAnswer, JoinRequest};
    use tern_protocol::group_wire::{self as gw, Reassembly, TransferPart};
    let mut accepted = false;
    if let Ok(count) = gw::decode_key_package_request(data) {
        assert_eq!(gw::encode_key_package_request(count).unwrap(), data);
        accepted = true;
    }
    if let Ok(packages) = gw::decode_key_packages(data) {
        assert_eq!(gw::encode_key_packages(&packages).unwrap(), data);
        accepted = true;
    }
    if let Ok(request) = JoinRequest::decode(data) {
        assert_eq!(request.encode().unwrap(), data);
        assert_eq!(JoinRequest::token_of(data), Some(request.token));
        accepted = true;
    }
    if let Ok((token, answer)) = JoinAnswer::decode(data) {
        assert_eq!(answer.encode(&token), data);
        accepted = true;
    }
    if let Ok(part) = TransferPart::decode(data) {
        assert_eq!(part.encode(), data);
        let single = part.count == 1;
        static SENDER: OnceLock<IdentityKey> = OnceLock::new();
        let sender =
            *SENDER.get_or_init(|| Identity::generate(&mut ChaCha20Rng::seed_from_u64(9), 0).key());
        let whole = Reassembly::default().handle(sender, part, 0);
        if single {
            assert!(
                matches!(whole, Ok(Some(_))),
                "a one-part transfer completes"
            );
        }
        accepted = true;
    }
    accepted
}

fn group_wire_seeds() -> Vec<Vec<u8>> {
    use tern_protocol::group_wire::{self as gw, TransferKind};
    let mut rng = ChaCha20Rng::seed_from_u64(18);
    use tern_protocol::group_link::{JoinAnswer, JoinRequest, LinkToken};
    let token = LinkToken([0x33; 16]);
    let mut out = vec![
        gw::encode_key_package_request(1).unwrap(),
        gw::encode_key_package_request(4).unwrap(),
        gw::encode_key_packages(&[vec![0x5a; 40], vec![0xa5; 300]]).unwrap(),
        JoinRequest {
            token,
            key_package: vec![0x5a; 40],
        }
        .encode()
        .unwrap(),
        JoinAnswer::Waiting.encode(&token),
        JoinAnswer::Declined.encode(&token),
    ];
    for (kind, len) in [
        (TransferKind::Welcome, 70_000),
        (TransferKind::GroupMessage, 300),
    ] {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        out.extend(
            gw::split(kind, &bytes, &mut rng)
                .unwrap()
                .iter()
                .map(|p| p.encode()),
        );
    }
    out
}

/// Bob's `PeerSessions::decrypt` on the bytes, from a fixed established session with Alice; then the bytes as
/// an envelope to Bob, whose contents go through the same decrypt. A decrypt that fails must leave Bob's
/// sessions exactly as they were.
pub fn session_decrypt(data: &[u8]) -> bool {
    let fx = Fixture::get();
    let mut accepted = decrypt_from_snapshot(fx, data);
    if let Ok(envelope) = Envelope::decode(data) {
        assert_eq!(envelope.encode(), data, "envelope re-encoding differs");
        if let Ok(opened) = envelope.open(&fx.bob, NOW_SECS) {
            accepted = true;
            if opened.sender == fx.alice_key {
                decrypt_from_snapshot(fx, &opened.session_message);
            }
        }
    }
    accepted
}

thread_local! {
    /// Bob's sessions as the snapshot has them, kept between inputs: a failed decrypt must leave them
    /// unchanged (checked every time), so only a successful one costs a fresh unpickle.
    static BOB_SESSIONS: RefCell<Option<PeerSessions>> = const { RefCell::new(None) };
}

fn decrypt_from_snapshot(fx: &Fixture, message: &[u8]) -> bool {
    let mut sessions = match BOB_SESSIONS.with(|cached| cached.borrow_mut().take()) {
        Some(sessions) => sessions,
        None => match PeerSessions::unpickle(&pickle_key(), &fx.bob_sessions) {
            Ok(sessions) => sessions,
            Err(e) => panic!("the fixture's own pickle does not open: {e}"),
        },
    };
    match sessions.decrypt(&fx.bob, message) {
        Ok(decrypted) => {
            // What a peer sends is content; it must not panic the content decoder either.
            let _ = Content::decode(&decrypted.plaintext);
            if let Some(card) = decrypted.new_session_card {
                assert!(
                    card.key() == fx.alice_key,
                    "a start accepted for another key"
                );
            }
            true
        }
        Err(_) => {
            let after = sessions.pickle(&pickle_key(), &mut snapshot_rng());
            assert!(
                after == fx.bob_sessions,
                "a failed decrypt changed the session state"
            );
            BOB_SESSIONS.with(|cached| *cached.borrow_mut() = Some(sessions));
            false
        }
    }
}

/// `Identity::unpickle` and `PeerSessions::unpickle` under a fixed key: once on the bytes as a pickle, and
/// once with the bytes sealed as a pickle's plaintext (so the decoders behind the AEAD are reached). Whatever
/// opens must pickle and open again to the same thing.
pub fn pickle_open(data: &[u8]) -> bool {
    let key = pickle_key();
    let mut accepted = false;
    for bytes in [
        data.to_vec(),
        seal_pickle(KIND_IDENTITY, data),
        seal_pickle(KIND_SESSIONS, data),
    ] {
        if let Ok(identity) = Identity::unpickle(&key, &bytes) {
            let again = Identity::unpickle(&key, &identity.pickle(&key, &mut snapshot_rng()));
            match again {
                Ok(again) => {
                    assert!(again.public() == identity.public(), "identity changed");
                    assert_eq!(again.prekey_ids(), identity.prekey_ids());
                }
                Err(e) => panic!("an opened identity does not re-open: {e}"),
            }
            accepted = true;
        }
        if let Ok(sessions) = PeerSessions::unpickle(&key, &bytes) {
            let pickled = sessions.pickle(&key, &mut snapshot_rng());
            match PeerSessions::unpickle(&key, &pickled) {
                Ok(again) => assert_eq!(format!("{again:?}"), format!("{sessions:?}")),
                Err(e) => panic!("opened sessions do not re-open: {e}"),
            }
            accepted = true;
        }
    }
    accepted
}

// ---------------------------------------------------------------------------------------------------------
// The fixed Alice/Bob pair.

/// "Now" for envelope expiry checks, in unix seconds.
pub const NOW_SECS: u64 = 1_750_000_000;
const NOW_MS: u64 = NOW_SECS * 1000;
const PICKLE_KEY: [u8; 32] = [0x42; 32];
const PICKLE_LABEL: &[u8] = b"tern/pickle/v1";
const PICKLE_VERSION: u8 = 1;
const KIND_IDENTITY: u8 = 1;
const KIND_SESSIONS: u8 = 2;

pub fn pickle_key() -> PickleKey {
    PickleKey::from_bytes(PICKLE_KEY)
}

/// The RNG every snapshot pickle is made with, so equal states give equal bytes.
fn snapshot_rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x5eed_0002)
}

/// `bytes` sealed under the fixed key as a pickle of `kind` (docs/protocol.md, "Pickles"), with a zero nonce.
fn seal_pickle(kind: u8, plain: &[u8]) -> Vec<u8> {
    let mut aad = PICKLE_LABEL.to_vec();
    aad.extend_from_slice(&[PICKLE_VERSION, kind]);
    let nonce = [0u8; crypto::NONCE_LEN];
    let mut out = vec![PICKLE_VERSION, kind];
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&crypto::seal(&PICKLE_KEY, &nonce, &aad, plain));
    out
}

/// The plaintext of a pickle made under the fixed key, if it opens.
fn open_pickle(pickle: &[u8]) -> Option<Vec<u8>> {
    let [version, kind, rest @ ..] = pickle else {
        return None;
    };
    let (nonce, ciphertext) = rest.split_at_checked(crypto::NONCE_LEN)?;
    let nonce: [u8; crypto::NONCE_LEN] = nonce.try_into().ok()?;
    let mut aad = PICKLE_LABEL.to_vec();
    aad.extend_from_slice(&[*version, *kind]);
    crypto::open(&PICKLE_KEY, &nonce, &aad, ciphertext).ok()
}

/// Alice and Bob after a start and a reply, with Bob's side frozen as a pickle, and what Alice sent next.
pub struct Fixture {
    pub bob: Identity,
    pub alice_key: IdentityKey,
    /// Bob's sessions with Alice, pickled with [`snapshot_rng`].
    pub bob_sessions: Vec<u8>,
    /// Messages Bob's snapshot accepts: three on the established session (a DH step, then two on its
    /// chain, the last skipping one), and a new start from a reinstalled Alice.
    pub session_messages: Vec<Vec<u8>>,
    /// Envelopes to Bob holding some of those messages.
    pub envelopes: Vec<Vec<u8>>,
    pub cards: Vec<ContactCard>,
    pub identity_pickles: Vec<Vec<u8>>,
}

impl Fixture {
    pub fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(Fixture::build)
    }

    fn build() -> Fixture {
        let mut rng = ChaCha20Rng::seed_from_u64(0x7e57_0001);
        let alice = Identity::generate(&mut rng, NOW_MS);
        let bob = Identity::generate(&mut rng, NOW_MS);
        let alice_card = issue(&alice, "Alice", vec![]);
        let bob_card = issue(
            &bob,
            "Bob 🐦",
            vec![MailboxNode {
                peer_id: vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20, 7, 7, 7, 7],
                addresses: vec![vec![4, 127, 0, 0, 1, 6, 0x1f, 0x90]],
            }],
        );
        let mut a = PeerSessions::new(alice.key(), bob.key());
        let mut b = PeerSessions::new(bob.key(), alice.key());
        let text = |s: &str, rng: &mut ChaCha20Rng| text_content(s, rng).encode();

        let start = a.encrypt(
            &alice,
            &alice_card,
            Some(&bob_card),
            &ok(text("hi", &mut rng)),
            &mut rng,
        );
        ok(b.decrypt(&bob, &ok(start)));
        let reply = b.encrypt(
            &bob,
            &bob_card,
            None,
            &ok(text("hello", &mut rng)),
            &mut rng,
        );
        ok(a.decrypt(&alice, &ok(reply)));
        let bob_sessions = b.pickle(&pickle_key(), &mut snapshot_rng());

        let mut session_messages = Vec::new();
        for s in ["one", "two", "three", "four"] {
            let m = ok(a.encrypt(&alice, &alice_card, None, &ok(text(s, &mut rng)), &mut rng));
            if s != "three" {
                session_messages.push(m);
            }
        }
        let mut reinstalled = PeerSessions::new(alice.key(), bob.key());
        let restart = reinstalled.encrypt(
            &alice,
            &alice_card,
            Some(&bob_card),
            &ok(text("new phone", &mut rng)),
            &mut rng,
        );
        session_messages.push(ok(restart));

        let envelopes = [0, 3]
            .iter()
            .filter_map(|&i| session_messages.get(i))
            .map(|m| {
                ok(Envelope::seal(
                    &alice,
                    bob.public(),
                    m,
                    NOW_SECS + 3600,
                    &mut rng,
                ))
                .encode()
            })
            .collect();
        let identity_pickles = [&alice, &bob]
            .iter()
            .map(|id| id.pickle(&pickle_key(), &mut rng))
            .collect();
        Fixture {
            alice_key: alice.key(),
            bob,
            bob_sessions,
            session_messages,
            envelopes,
            cards: vec![alice_card, bob_card],
            identity_pickles,
        }
    }
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("fixture setup failed: {e}"),
    }
}

fn issue(identity: &Identity, name: &str, mailboxes: Vec<MailboxNode>) -> ContactCard {
    ok(ContactCard::issue(
        identity,
        CardDetails {
            display_name: name.into(),
            revision: 3,
            mailboxes,
            addresses: vec![vec![4, 10, 0, 0, 2, 6, 0x1f, 0x91]],
        },
    ))
}

fn text_content(s: &str, rng: &mut ChaCha20Rng) -> Content {
    Content {
        id: MessageId::new_v7(NOW_MS, rng),
        sent_at_ms: NOW_MS,
        body: Body::Text(s.into()),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Seeds.

/// A seed input: valid ones must be accepted by their check, broken ones refused.
pub struct Seed {
    pub bytes: Vec<u8>,
    pub valid: bool,
}

/// The seeds for `target`: a few valid encodings and, from each, a copy cut short by a byte and one with a
/// byte too many, which every format refuses.
pub fn seeds(target: &str) -> Vec<Seed> {
    let fx = Fixture::get();
    let valid: Vec<Vec<u8>> = match target {
        "envelope_decode" => fx.envelopes.clone(),
        "card_decode" => fx
            .cards
            .iter()
            .flat_map(|c| [c.encode().to_vec(), c.invite_link().into_bytes()])
            .collect(),
        "invite_link" => fx
            .cards
            .iter()
            .flat_map(|c| {
                let group = GroupLink {
                    mode: JoinMode::Approval,
                    token: LinkToken([7; 16]),
                    admin: c.clone(),
                };
                [
                    c.encode().to_vec(),
                    c.invite_link().into_bytes(),
                    group.encode().into_bytes(),
                ]
            })
            .collect(),
        "content_decode" => content_seeds(),
        "group_wire" => group_wire_seeds(),
        "file_request" => file_request_seeds(),
        "session_decrypt" => fx
            .session_messages
            .iter()
            .chain(&fx.envelopes)
            .cloned()
            .collect(),
        "pickle_open" => {
            let mut v = fx.identity_pickles.clone();
            v.push(fx.bob_sessions.clone());
            let plains: Vec<Vec<u8>> = v.iter().filter_map(|p| open_pickle(p)).collect();
            v.extend(plains);
            v
        }
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for bytes in valid {
        let mut short = bytes.clone();
        short.pop();
        let mut long = bytes.clone();
        long.push(0);
        out.push(Seed { bytes, valid: true });
        out.push(Seed {
            bytes: short,
            valid: false,
        });
        out.push(Seed {
            bytes: long,
            valid: false,
        });
    }
    if target == "invite_link" {
        for card in &fx.cards {
            let link = card.invite_link();
            for forgiven in [format!("  {link}\n"), link.replacen("tern:", "TERN:", 1)] {
                out.push(Seed {
                    bytes: forgiven.into_bytes(),
                    valid: true,
                });
            }
            for broken in [
                link.replacen("tern:", "tern", 1),
                format!("{link}0"),
                "tern:".to_owned(),
                "x".repeat(5000),
            ] {
                out.push(Seed {
                    bytes: broken.into_bytes(),
                    valid: false,
                });
            }
        }
    }
    if target == "card_decode"
        && let Some(card) = fx.cards.first()
    {
        let link = card.invite_link();
        for broken in [
            link.replacen("tern:", "tarn:", 1),
            link.replacen('2', "0", 1),
        ] {
            out.push(Seed {
                bytes: broken.into_bytes(),
                valid: false,
            });
        }
    }
    out
}

fn content_seeds() -> Vec<Vec<u8>> {
    let mut rng = ChaCha20Rng::seed_from_u64(0x7e57_0003);
    let id = MessageId::new_v7(NOW_MS, &mut rng);
    let other = MessageId::new_v7(NOW_MS + 1, &mut rng);
    [
        Body::Text("héllo, Tern".into()),
        Body::Text("x".repeat(MAX_TEXT_LEN)),
        Body::Delivered(vec![id, other]),
        Body::Read(vec![]),
        Body::Typing(true),
        Body::File(FileAnnouncement {
            name: "holiday.jpg".into(),
            size: 1_000_000,
            media_type: "image/jpeg".into(),
            key: FileKey::from_bytes([0x11; 32]),
            hash: FileHash([0x22; 32]),
            thumbnail: Some(vec![0xff, 0xd8, 0xff, 0xe0]),
        }),
        Body::Unknown {
            kind: 0x4242,
            data: vec![1, 2, 3],
        },
    ]
    .into_iter()
    .filter_map(|body| {
        Content {
            id,
            sent_at_ms: NOW_MS,
            body,
        }
        .encode()
        .ok()
    })
    .collect()
}

/// `RangeRequest::decode` (`/tern/file/1`); what decodes re-encodes to the same bytes and cuts into pieces.
pub fn file_request(data: &[u8]) -> bool {
    let Ok(request) = RangeRequest::decode(data) else {
        return false;
    };
    match request.encode() {
        Ok(bytes) => assert_eq!(bytes, data, "range request re-encoding differs"),
        Err(e) => panic!("a decoded range request does not encode: {e}"),
    }
    let pieces = request.pieces();
    assert!(
        pieces
            .iter()
            .all(|p| p.start < p.end && p.end - p.start <= PIECE_GROUPS)
    );
    true
}

#[allow(clippy::single_range_in_vec_init)]
fn file_request_seeds() -> Vec<Vec<u8>> {
    let layout = FileLayout::new(1_000_000).unwrap();
    [vec![0..3, 5..layout.group_count()], vec![7..8]]
        .into_iter()
        .map(|ranges| {
            RangeRequest {
                hash: FileHash([0x33; 32]),
                ciphertext_len: layout.ciphertext_len(),
                ranges,
            }
            .encode()
            .unwrap()
        })
        .collect()
}

/// The name a corpus file gets: the hex SHA-256 of its contents.
pub fn corpus_name(bytes: &[u8]) -> String {
    crypto::sha256(&[bytes])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
