//! End-to-end session behaviour through the deterministic harness.

mod common;

use common::{Pair, ReceiveError, Side};
use tern_protocol::ratchet::{MAX_MESSAGE_GAP, MAX_SKIPPED_KEYS};
use tern_protocol::{
    CardChange, CardDetails, ContactCard, DecryptError, Envelope, Identity, OpenError,
    PeerSessions, PickleKey,
};

fn decrypt_err(result: Result<tern_protocol::Content, ReceiveError>) -> DecryptError {
    match result {
        Err(ReceiveError::Decrypt(e)) => e,
        other => panic!("expected a decrypt error, got {other:?}"),
    }
}

#[test]
fn a_session_starts_while_the_recipient_is_offline_and_stops_repeating_the_start_after_a_reply() {
    let mut p = Pair::new(1);
    let queued: Vec<_> = (0..3)
        .map(|i| p.send(Side::Alice, &format!("hello {i}")).1)
        .collect();
    assert!(p.alice.sessions.awaiting_reply());
    for (i, env) in queued.iter().enumerate() {
        let content = p.receive(Side::Bob, env).unwrap();
        assert_eq!(Pair::text_of(&content), format!("hello {i}"));
    }
    let (_, reply) = p.send(Side::Bob, "hi Alice");
    assert_eq!(
        Pair::text_of(&p.receive(Side::Alice, &reply).unwrap()),
        "hi Alice"
    );
    assert!(
        !p.alice.sessions.awaiting_reply(),
        "the reply confirms the session"
    );
    let (_, next) = p.send_session(Side::Alice, "plain ratchet now");
    assert_eq!(
        next[1], 2,
        "session message kind 2 (ratchet) once confirmed"
    );
    assert_eq!(
        Pair::text_of(&p.receive_session(Side::Bob, &next).unwrap()),
        "plain ratchet now"
    );
    assert_eq!(
        p.alice.sessions.active_session(),
        p.bob.sessions.active_session()
    );
}

#[test]
fn the_first_message_carries_the_senders_signed_card() {
    let mut p = Pair::new(2);
    let (_, bytes) = p.send_session(Side::Alice, "hi");
    let decrypted = p.bob.sessions.decrypt(&p.bob.identity, &bytes).unwrap();
    let card = decrypted
        .new_session_card
        .expect("a session start carries the card");
    assert_eq!(card, p.alice.card);
    let (_, second) = p.send_session(Side::Alice, "again");
    let decrypted = p.bob.sessions.decrypt(&p.bob.identity, &second).unwrap();
    assert!(
        decrypted.new_session_card.is_none(),
        "only a new session reports the card"
    );
}

#[test]
fn out_of_order_messages_within_the_bound_all_decrypt() {
    let mut p = Pair::new(3);
    let (_, first) = p.send(Side::Alice, "start");
    p.receive(Side::Bob, &first).unwrap();
    let (_, reply) = p.send(Side::Bob, "ok");
    p.receive(Side::Alice, &reply).unwrap();
    let msgs: Vec<_> = (0..50)
        .map(|i| p.send(Side::Alice, &format!("m{i}")).1)
        .collect();
    for (i, env) in msgs.iter().enumerate().rev() {
        assert_eq!(
            Pair::text_of(&p.receive(Side::Bob, env).unwrap()),
            format!("m{i}")
        );
    }
    assert_eq!(
        p.bob.sessions.skipped_keys(),
        0,
        "every skipped key was used"
    );
}

#[test]
fn a_gap_over_the_bound_is_refused_without_changing_state() {
    let mut p = Pair::new(4);
    let msgs: Vec<_> = (0..=MAX_MESSAGE_GAP + 1)
        .map(|i| p.send_session(Side::Alice, &format!("m{i}")).1)
        .collect();
    let err = decrypt_err(p.receive_session(Side::Bob, msgs.last().unwrap()));
    assert_eq!(
        err,
        DecryptError::TooBigMessageGap {
            got: MAX_MESSAGE_GAP + 1,
            max: MAX_MESSAGE_GAP
        }
    );
    assert!(
        p.bob.sessions.is_empty(),
        "a refused start creates no session"
    );
    // The message right at the bound still works, and then the one past it is within reach.
    let at_bound = &msgs[usize::try_from(MAX_MESSAGE_GAP).unwrap()];
    p.receive_session(Side::Bob, at_bound).unwrap();
    p.receive_session(Side::Bob, msgs.last().unwrap()).unwrap();
    p.receive_session(Side::Bob, &msgs[0]).unwrap();
}

#[test]
fn replayed_messages_are_rejected_and_leave_the_session_working() {
    let mut p = Pair::new(5);
    let (_, a) = p.send(Side::Alice, "once");
    p.receive(Side::Bob, &a).unwrap();
    let (_, b) = p.send(Side::Alice, "twice?");
    p.receive(Side::Bob, &b).unwrap();
    assert!(matches!(
        decrypt_err(p.receive(Side::Bob, &b)),
        DecryptError::DuplicateOrExpired { n: 1 }
    ));
    assert!(matches!(
        decrypt_err(p.receive(Side::Bob, &a)),
        DecryptError::DuplicateOrExpired { .. }
    ));
    let (_, c) = p.send(Side::Alice, "still fine");
    assert_eq!(
        Pair::text_of(&p.receive(Side::Bob, &c).unwrap()),
        "still fine"
    );
}

#[test]
fn every_tampered_byte_is_rejected_and_the_original_still_decrypts() {
    let mut p = Pair::new(6);
    let (_, first) = p.send(Side::Alice, "start");
    p.receive(Side::Bob, &first).unwrap();
    let (_, env) = p.send(Side::Alice, "tamper with me");
    // Every byte of the header and a spread of body bytes.
    let positions: Vec<usize> = (0..120).chain((120..env.len()).step_by(37)).collect();
    for i in positions {
        let mut bad = env.clone();
        bad[i] ^= 0x20;
        assert!(
            p.receive(Side::Bob, &bad).is_err(),
            "flipped byte {i} was accepted"
        );
    }
    assert_eq!(
        Pair::text_of(&p.receive(Side::Bob, &env).unwrap()),
        "tamper with me"
    );
}

#[test]
fn an_envelope_for_someone_else_is_refused() {
    let mut p = Pair::new(7);
    let (_, env) = p.send(Side::Alice, "for Bob only");
    let carol = Identity::generate(&mut p.rng, p.now_ms);
    let envelope = Envelope::decode(&env).unwrap();
    assert!(matches!(
        envelope.open(&carol, p.now_ms / 1000),
        Err(OpenError::NotForMe)
    ));
    // Readdressed to Carol's mailbox, it fails authentication (the mailbox is bound into the seal).
    let mut readdressed = env.clone();
    readdressed[1..33].copy_from_slice(&carol.key().mailbox_id().0);
    let envelope = Envelope::decode(&readdressed).unwrap();
    assert!(matches!(
        envelope.open(&carol, p.now_ms / 1000),
        Err(OpenError::Authentication)
    ));
}

#[test]
fn expired_envelopes_are_never_opened() {
    let mut p = Pair::new(8);
    let (_, env) = p.send(Side::Alice, "old news");
    p.tick(common::TTL_S * 1000);
    match p.receive(Side::Bob, &env) {
        Err(ReceiveError::Open(OpenError::Expired { .. })) => {}
        other => panic!("expected Expired, got {other:?}"),
    }
}

#[test]
fn simultaneous_starts_converge_on_one_session() {
    for seed in 0..20 {
        let mut p = Pair::new(100 + seed);
        let (_, from_alice) = p.send(Side::Alice, "hi Bob");
        let (_, from_bob) = p.send(Side::Bob, "hi Alice");
        assert_ne!(
            p.alice.sessions.active_session(),
            p.bob.sessions.active_session()
        );
        p.receive(Side::Bob, &from_alice).unwrap();
        p.receive(Side::Alice, &from_bob).unwrap();
        assert_eq!(
            p.alice.sessions.active_session(),
            p.bob.sessions.active_session(),
            "seed {seed}: both sides send on the same session"
        );
        for round in 0..3 {
            let (_, a) = p.send(Side::Alice, &format!("a{round}"));
            let (_, b) = p.send(Side::Bob, &format!("b{round}"));
            assert_eq!(
                Pair::text_of(&p.receive(Side::Bob, &a).unwrap()),
                format!("a{round}")
            );
            assert_eq!(
                Pair::text_of(&p.receive(Side::Alice, &b).unwrap()),
                format!("b{round}")
            );
        }
        assert!(!p.alice.sessions.awaiting_reply() && !p.bob.sessions.awaiting_reply());
    }
}

#[test]
fn a_new_start_from_a_peer_who_lost_their_state_replaces_the_old_session() {
    let mut p = Pair::new(9);
    let (_, a) = p.send(Side::Alice, "hi");
    p.receive(Side::Bob, &a).unwrap();
    let (_, b) = p.send(Side::Bob, "hi back");
    p.receive(Side::Alice, &b).unwrap();
    let old = p.alice.sessions.active_session();
    // Bob reinstalls: same identity, no sessions.
    p.bob.sessions = PeerSessions::new(p.bob.key(), p.alice.key());
    let (_, fresh) = p.send(Side::Bob, "I reinstalled");
    assert_eq!(
        Pair::text_of(&p.receive(Side::Alice, &fresh).unwrap()),
        "I reinstalled"
    );
    assert_ne!(p.alice.sessions.active_session(), old);
    let (_, after) = p.send(Side::Alice, "welcome back");
    assert_eq!(
        Pair::text_of(&p.receive(Side::Bob, &after).unwrap()),
        "welcome back"
    );
}

#[test]
fn skipped_keys_are_capped_and_the_oldest_go_first() {
    let mut p = Pair::new(10);
    let per_chain = 1_500u32;
    let mut batches = Vec::new();
    for _ in 0..2 {
        let msgs: Vec<_> = (0..per_chain)
            .map(|i| p.send_session(Side::Alice, &format!("{i}")).1)
            .collect();
        // Deliver only the last of each batch, then let Bob answer so Alice starts a new chain.
        p.receive_session(Side::Bob, msgs.last().unwrap()).unwrap();
        let (_, reply) = p.send_session(Side::Bob, "ack");
        p.receive_session(Side::Alice, &reply).unwrap();
        batches.push(msgs);
    }
    assert_eq!(p.bob.sessions.skipped_keys(), MAX_SKIPPED_KEYS);
    assert!(matches!(
        decrypt_err(p.receive_session(Side::Bob, &batches[0][0])),
        DecryptError::DuplicateOrExpired { n: 0 }
    ));
    let late = &batches[1][10];
    assert_eq!(
        Pair::text_of(&p.receive_session(Side::Bob, late).unwrap()),
        "10"
    );
}

#[test]
fn sessions_survive_a_pickle_round_trip_mid_conversation() {
    let mut p = Pair::new(11);
    let key = PickleKey::random(&mut p.rng);
    let (_, a) = p.send(Side::Alice, "before");
    let (_, a2) = p.send(Side::Alice, "in flight across the restart");
    p.receive(Side::Bob, &a).unwrap();
    for side in [Side::Alice, Side::Bob] {
        let party = p.party(side);
        let pickle = party
            .sessions
            .pickle(&key, &mut rand_chacha::ChaCha20Rng::from_seed([9; 32]));
        party.sessions = PeerSessions::unpickle(&key, &pickle).unwrap();
        let identity = party
            .identity
            .pickle(&key, &mut rand_chacha::ChaCha20Rng::from_seed([8; 32]));
        party.identity = Identity::unpickle(&key, &identity).unwrap();
    }
    assert_eq!(
        Pair::text_of(&p.receive(Side::Bob, &a2).unwrap()),
        "in flight across the restart"
    );
    let (_, b) = p.send(Side::Bob, "after");
    assert_eq!(Pair::text_of(&p.receive(Side::Alice, &b).unwrap()), "after");
}

use rand_core::SeedableRng;

#[test]
fn a_stolen_state_cannot_read_messages_already_received_or_after_the_next_round_trip() {
    let mut p = Pair::new(12);
    let key = PickleKey::random(&mut p.rng);
    let (_, a) = p.send(Side::Alice, "start");
    p.receive(Side::Bob, &a).unwrap();
    let (_, b) = p.send(Side::Bob, "reply");
    p.receive(Side::Alice, &b).unwrap();
    let (_, read) = p.send_session(Side::Alice, "already read");
    p.receive_session(Side::Bob, &read).unwrap();

    // An attacker copies Bob's whole state now.
    let stolen = p.bob.sessions.pickle(&key, &mut p.rng);
    let mut thief = PeerSessions::unpickle(&key, &stolen).unwrap();

    // Forward secrecy: what Bob already read is gone from the copy.
    assert!(matches!(
        thief.decrypt(&p.bob.identity, &read),
        Err(DecryptError::DuplicateOrExpired { .. })
    ));
    // The copy can follow the current chain (so this test can tell healing apart)...
    let (_, same_chain) = p.send_session(Side::Alice, "same chain");
    assert!(thief.decrypt(&p.bob.identity, &same_chain).is_ok());
    p.receive_session(Side::Bob, &same_chain).unwrap();
    // ...until a round trip: Bob's new ratchet key never reached the thief.
    let (_, heal) = p.send_session(Side::Bob, "new ratchet key");
    p.receive_session(Side::Alice, &heal).unwrap();
    let (_, healed) = p.send_session(Side::Alice, "after healing");
    assert!(matches!(
        thief.decrypt(&p.bob.identity, &healed),
        Err(DecryptError::Authentication)
    ));
    assert_eq!(
        Pair::text_of(&p.receive_session(Side::Bob, &healed).unwrap()),
        "after healing"
    );
}

#[test]
fn a_start_claiming_someone_elses_identity_is_refused() {
    let mut p = Pair::new(13);
    // Mallory has Bob's card and starts a session, but claims to be Alice towards Bob.
    let mallory = Identity::generate(&mut p.rng, p.now_ms);
    let mallory_card = ContactCard::issue(
        &mallory,
        CardDetails {
            display_name: "Alice".into(),
            revision: 1,
            ..CardDetails::default()
        },
    )
    .unwrap();
    let mut mallory_sessions = PeerSessions::new(mallory.key(), p.bob.key());
    let bytes = mallory_sessions
        .encrypt(
            &mallory,
            &mallory_card,
            Some(&p.bob.card),
            b"it's me, Alice",
            &mut p.rng,
        )
        .unwrap();
    let err = p.bob.sessions.decrypt(&p.bob.identity, &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            DecryptError::BadHandshake(_) | DecryptError::Authentication
        ),
        "{err:?}"
    );
    assert!(p.bob.sessions.is_empty());
    // A card for the same name but another key is a key change.
    assert_eq!(
        ContactCard::compare(&p.alice.card, &mallory_card),
        CardChange::IdentityChanged
    );
}

#[test]
fn a_start_for_a_prekey_that_was_dropped_is_a_typed_error() {
    let mut p = Pair::new(14);
    let (_, start) = p.send_session(Side::Alice, "hi");
    let day = 24 * 3600 * 1000;
    for i in 1..=10 {
        p.bob
            .identity
            .rotate_prekey_now(&mut p.rng, p.now_ms + i * day);
    }
    assert!(matches!(
        decrypt_err(p.receive_session(Side::Bob, &start)),
        DecryptError::UnknownPrekey(_)
    ));
}

#[test]
fn a_start_on_an_old_prekey_within_the_grace_period_still_works() {
    let mut p = Pair::new(15);
    let (_, start) = p.send_session(Side::Alice, "sent before Bob rotated");
    p.bob.identity.rotate_prekey_now(&mut p.rng, p.now_ms + 1);
    assert_eq!(
        Pair::text_of(&p.receive_session(Side::Bob, &start).unwrap()),
        "sent before Bob rotated"
    );
}

#[test]
fn a_start_that_arrives_after_the_other_session_was_confirmed_still_converges() {
    for seed in 0..10 {
        let mut p = Pair::new(200 + seed);
        let (small, large) = if p.alice.key() < p.bob.key() {
            (Side::Alice, Side::Bob)
        } else {
            (Side::Bob, Side::Alice)
        };
        let (_, late_start) = p.send(large, "my start, delayed in transit");
        let (_, winning_start) = p.send(small, "my start wins the tie-break");
        p.receive(large, &winning_start).unwrap();
        let (_, reply) = p.send(large, "reply on the winning session");
        p.receive(small, &reply).unwrap();
        // Now the large side's start finally arrives: the small side treats it as the newest session.
        assert_eq!(
            Pair::text_of(&p.receive(small, &late_start).unwrap()),
            "my start, delayed in transit"
        );
        for round in 0..3 {
            let (_, a) = p.send(small, &format!("s{round}"));
            assert_eq!(
                Pair::text_of(&p.receive(large, &a).unwrap()),
                format!("s{round}")
            );
            let (_, b) = p.send(large, &format!("l{round}"));
            assert_eq!(
                Pair::text_of(&p.receive(small, &b).unwrap()),
                format!("l{round}")
            );
        }
        assert_eq!(
            p.alice.sessions.active_session(),
            p.bob.sessions.active_session(),
            "seed {seed}: both sides settled on one session"
        );
    }
}

#[test]
fn an_envelope_that_claims_to_live_too_long_is_refused() {
    let mut p = Pair::new(16);
    let (_, session) = p.send_session(Side::Alice, "forever");
    let now_s = p.now_ms / 1000;
    let too_far = now_s + tern_protocol::envelope::MAX_ENVELOPE_TTL_S + 1;
    let envelope = Envelope::seal(
        &p.alice.identity,
        p.bob.identity.public(),
        &session,
        too_far,
        &mut p.rng,
    )
    .unwrap();
    assert!(matches!(
        envelope.open(&p.bob.identity, now_s),
        Err(OpenError::ExpiryTooFar { .. })
    ));
    let at_limit = now_s + tern_protocol::envelope::MAX_ENVELOPE_TTL_S;
    let envelope = Envelope::seal(
        &p.alice.identity,
        p.bob.identity.public(),
        &session,
        at_limit,
        &mut p.rng,
    )
    .unwrap();
    assert!(envelope.open(&p.bob.identity, now_s).is_ok());
}

#[test]
fn every_session_message_that_seals_also_opens() {
    let mut p = Pair::new(17);
    let max = tern_protocol::session::MAX_SESSION_MESSAGE_LEN;
    let expires = p.now_ms / 1000 + 60;
    let fits = vec![0u8; max];
    let envelope = Envelope::seal(
        &p.alice.identity,
        p.bob.identity.public(),
        &fits,
        expires,
        &mut p.rng,
    )
    .unwrap();
    assert_eq!(
        envelope
            .open(&p.bob.identity, p.now_ms / 1000)
            .unwrap()
            .session_message
            .len(),
        max
    );
    let too_big = vec![0u8; max + 1];
    assert!(matches!(
        Envelope::seal(
            &p.alice.identity,
            p.bob.identity.public(),
            &too_big,
            expires,
            &mut p.rng
        ),
        Err(tern_protocol::SealError::TooLong { .. })
    ));
}

/// The ratchet key and index of a plain ratchet message (session message kind 2, docs/protocol.md §9):
/// together they name the message key it used.
fn key_position(session_message: &[u8]) -> ([u8; 32], u32) {
    assert_eq!(session_message[1], 2, "a plain ratchet message");
    let header = &session_message[18..58];
    let mut dh = [0u8; 32];
    dh.copy_from_slice(&header[..32]);
    (dh, u32::from_be_bytes(header[36..40].try_into().unwrap()))
}

#[test]
fn a_session_restored_from_a_reserving_pickle_sends_on_without_reusing_a_key() {
    use tern_protocol::ratchet::SEND_RESERVATION;
    let mut p = Pair::new(21);
    let key = PickleKey::random(&mut p.rng);
    let (_, a) = p.send(Side::Alice, "start");
    p.receive(Side::Bob, &a).unwrap();
    let (_, b) = p.send(Side::Bob, "reply");
    p.receive(Side::Alice, &b).unwrap();

    // Alice takes the sending half of the DH step when she receives, and stores it reserved.
    assert!(!p.alice.sessions.send_is_reserved());
    assert!(p.alice.sessions.prepare_sending(&mut p.rng).unwrap());
    assert!(!p.alice.sessions.prepare_sending(&mut p.rng).unwrap());
    assert!(!p.alice.sessions.send_is_reserved(), "not stored yet");
    let stored = p.alice.sessions.pickle_reserving(&key, &mut p.rng);

    // Every key of the reservation goes out with no new copy on disk; the next one needs one.
    let mut sent = Vec::new();
    for i in 0..SEND_RESERVATION {
        assert!(p.alice.sessions.send_is_reserved(), "key {i} is reserved");
        sent.push(p.send_session(Side::Alice, &format!("{i}")).1);
    }
    assert!(!p.alice.sessions.send_is_reserved());
    for message in &sent[..5] {
        p.receive_session(Side::Bob, message).unwrap();
    }

    // A crash: Alice comes back from the copy taken before any of those keys was used. It resumes past
    // the reservation, and must store again before sending.
    p.alice.sessions = PeerSessions::unpickle(&key, &stored).unwrap();
    assert!(!p.alice.sessions.send_is_reserved());
    let _stored_again = p.alice.sessions.pickle_reserving(&key, &mut p.rng);
    assert!(p.alice.sessions.send_is_reserved());
    let (_, after) = p.send_session(Side::Alice, "after the crash");
    assert_eq!(key_position(&after).1, SEND_RESERVATION);
    assert_eq!(
        Pair::text_of(&p.receive_session(Side::Bob, &after).unwrap()),
        "after the crash"
    );
    // What was in flight before the crash still decrypts (from Bob's skipped keys).
    for (i, message) in sent.iter().enumerate().skip(5) {
        assert_eq!(
            Pair::text_of(&p.receive_session(Side::Bob, message).unwrap()),
            i.to_string()
        );
    }
    // No message key was used twice.
    let mut positions: Vec<_> = sent
        .iter()
        .chain([&after])
        .map(|m| key_position(m))
        .collect();
    let count = positions.len();
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), count);

    // And the conversation goes on both ways.
    let (_, b) = p.send(Side::Bob, "back");
    assert_eq!(Pair::text_of(&p.receive(Side::Alice, &b).unwrap()), "back");
}

#[test]
fn a_plain_pickle_never_stores_a_sending_chain_behind_a_reservation() {
    let mut p = Pair::new(22);
    let key = PickleKey::random(&mut p.rng);
    let (_, a) = p.send(Side::Alice, "start");
    p.receive(Side::Bob, &a).unwrap();
    let _ = p.alice.sessions.pickle_reserving(&key, &mut p.rng);
    let (_, used) = p.send_session(Side::Alice, "uses key 1");
    // A later plain pickle still resumes past the reservation, so key 1 is never used again.
    let plain = p.alice.sessions.pickle(&key, &mut p.rng);
    p.alice.sessions = PeerSessions::unpickle(&key, &plain).unwrap();
    let (_, next) = p.send_session(Side::Alice, "after");
    p.receive_session(Side::Bob, &used).unwrap();
    assert_eq!(
        Pair::text_of(&p.receive_session(Side::Bob, &next).unwrap()),
        "after"
    );
}
