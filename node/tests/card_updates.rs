//! Card updates (docs/protocol.md §12.3): a re-issued card is queued to every accepted contact and taken by
//! them when it is the sender's own and newer; message requests and blocked identities get none, a card
//! naming someone else or an older one changes nothing, and a name the user chose stays. A profile's new
//! name travels the same way.

use tern_node::api::ContactState;
use tern_node::engine::{Engine, EngineError, Received, now_ms};
use tern_node::names::{MAX_NAME_LEN, NameError};
use tern_protocol::message::Body;
use tern_protocol::{ContactCard, IdentityKey};
use tern_testkit::profile::{create, introduce, open, pair};

/// Everything `from` has queued for `to`, oldest first.
fn queued_for(from: &Engine, to: &IdentityKey) -> Vec<tern_node::outbox::OutboxEntry> {
    from.outbox_due(u64::MAX, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.recipient == *to)
        .collect()
}

fn card_on_file(engine: &Engine, of: &IdentityKey) -> ContactCard {
    let contact = engine.find_contact(&of.peer_id().to_string()).unwrap();
    ContactCard::decode(&contact.card).unwrap()
}

#[test]
fn a_reissued_card_reaches_accepted_contacts_and_is_taken() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut carol, mut bob) = pair(dirs[0].path(), dirs[1].path());
    let old = bob.card().clone();
    assert!(queued_for(&bob, &carol.key()).is_empty());

    bob.revoke_prekeys().unwrap();
    assert_eq!(bob.take_card_updates(), vec![carol.key()]);
    let queued = queued_for(&bob, &carol.key());
    assert_eq!(queued.len(), 1, "one card update for Carol");

    match carol.receive(&queued[0].envelope).unwrap() {
        Received::CardUpdated {
            contact,
            key_changed,
        } => {
            assert_eq!(contact.key, bob.key());
            assert!(!key_changed);
            assert_eq!(contact.card, bob.card().encode());
        }
        other => panic!("expected a card update, got {other:?}"),
    }
    let on_file = card_on_file(&carol, &bob.key());
    assert_eq!(&on_file, bob.card());
    assert_ne!(on_file.prekey(), old.prekey());

    // Carol's next start would use the new prekey; her running session goes on both ways.
    let (_, text) = carol.send_text(&bob.key(), "still here").unwrap();
    assert!(matches!(
        bob.receive(&text.envelope).unwrap(),
        Received::Message { .. }
    ));
}

#[test]
fn an_older_card_arriving_late_changes_nothing() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut carol, mut bob) = pair(dirs[0].path(), dirs[1].path());
    bob.revoke_prekeys().unwrap();
    bob.rotate_prekey_if_due_at(now_ms() + tern_protocol::identity::PREKEY_ROTATION_MS + 1)
        .unwrap();
    let queued = queued_for(&bob, &carol.key());
    assert_eq!(queued.len(), 2);
    // The newer first, then the older: the older is stale.
    assert!(matches!(
        carol.receive(&queued[1].envelope).unwrap(),
        Received::CardUpdated { .. }
    ));
    assert!(matches!(
        carol.receive(&queued[0].envelope).unwrap(),
        Received::Dropped
    ));
    assert_eq!(&card_on_file(&carol, &bob.key()), bob.card());
}

#[test]
fn requests_and_blocked_identities_get_no_card() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut bob = create(dirs[0].path(), "Bob");
    let mut dave = create(dirs[1].path(), "Dave");
    let mut eve = create(dirs[2].path(), "Eve");
    let mut carol = create(dirs[3].path(), "Carol");
    introduce(&mut [&mut bob, &mut carol]);
    // Dave and Eve wrote to Bob, who never added them: two message requests; Bob blocks Eve.
    for stranger in [&mut dave, &mut eve] {
        stranger
            .add_contact(&bob.card().invite_link(), None)
            .unwrap();
        let (_, hello) = stranger.send_text(&bob.key(), "hi Bob").unwrap();
        assert!(matches!(
            bob.receive(&hello.envelope).unwrap(),
            Received::Message {
                request: Some(_),
                ..
            }
        ));
    }
    bob.set_contact_state(&eve.key(), ContactState::Blocked)
        .unwrap();

    bob.revoke_prekeys().unwrap();
    assert_eq!(bob.take_card_updates(), vec![carol.key()]);
    assert!(queued_for(&bob, &dave.key()).is_empty());
    assert!(queued_for(&bob, &eve.key()).is_empty());
    assert_eq!(queued_for(&bob, &carol.key()).len(), 1);
}

#[test]
fn a_card_naming_someone_else_is_dropped_and_a_chosen_name_stays() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut carol, mut bob) = pair(dirs[0].path(), dirs[1].path());
    let mallory = create(dirs[2].path(), "Mallory");
    let before = card_on_file(&bob, &carol.key());

    // Carol passes Mallory's card off as hers: Bob drops it.
    let (_, envelope) = carol
        .send_control(
            &bob.key(),
            Body::Card(mallory.card().encode().to_vec()),
            false,
        )
        .unwrap();
    assert!(matches!(
        bob.receive(&envelope.encode()).unwrap(),
        Received::Dropped
    ));
    // Bytes that are no card at all: dropped too.
    let (_, envelope) = carol
        .send_control(&bob.key(), Body::Card(vec![1; 400]), false)
        .unwrap();
    assert!(matches!(
        bob.receive(&envelope.encode()).unwrap(),
        Received::Dropped
    ));
    assert_eq!(card_on_file(&bob, &carol.key()), before);

    // Bob calls Carol "Aunt C."; her next card keeps that name on Bob's side.
    bob.rename_contact(&carol.key(), "Aunt C.").unwrap();
    carol.revoke_prekeys().unwrap();
    let queued = queued_for(&carol, &bob.key());
    let Received::CardUpdated { contact, .. } = bob.receive(&queued[0].envelope).unwrap() else {
        panic!("expected a card update");
    };
    assert_eq!(contact.local_name, "Aunt C.");
    assert_eq!(&card_on_file(&bob, &carol.key()), carol.card());
}

#[test]
fn a_new_profile_name_reaches_contacts_unless_they_chose_their_own_for_it() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = create(dirs[0].path(), "Alice");
    let mut bob = create(dirs[1].path(), "Bob");
    let mut carol = create(dirs[2].path(), "Carol");
    introduce(&mut [&mut alice, &mut bob, &mut carol]);
    // Carol calls Alice "Mum" on her side.
    carol.rename_contact(&alice.key(), "Mum").unwrap();
    let revision = alice.card().details().revision;

    // Names a new profile could not have are refused, with a typed error, and change nothing.
    for (bad, why) in [
        ("   ", NameError::Empty),
        (
            &*"x".repeat(MAX_NAME_LEN + 1),
            NameError::TooLong {
                len: MAX_NAME_LEN + 1,
                max: MAX_NAME_LEN,
            },
        ),
    ] {
        match alice.set_display_name(bad) {
            Err(EngineError::BadName(e)) => assert_eq!(e, why),
            other => panic!("expected a bad name, got {other:?}"),
        }
    }
    assert_eq!(alice.card().display_name(), "Alice");
    assert!(alice.take_card_updates().is_empty(), "nothing queued");

    // Normalised as a new profile's name is; the card is re-signed at a later revision.
    assert_eq!(
        alice.set_display_name("  Alicia   B. ").unwrap(),
        "Alicia B."
    );
    assert_eq!(alice.card().display_name(), "Alicia B.");
    assert!(alice.card().details().revision > revision);
    assert_eq!(alice.whoami().name, "Alicia B.");
    let mut told = alice.take_card_updates();
    told.sort();
    let mut expected = vec![bob.key(), carol.key()];
    expected.sort();
    assert_eq!(
        told, expected,
        "every accepted contact is sent the new card"
    );

    // Bob never renamed Alice: he now shows her new name. Carol keeps "Mum", with the new card on file.
    for (contact, shown) in [(&mut bob, "Alicia B."), (&mut carol, "Mum")] {
        let queued = queued_for(&alice, &contact.key());
        assert_eq!(queued.len(), 1);
        let Received::CardUpdated {
            contact: record, ..
        } = contact.receive(&queued[0].envelope).unwrap()
        else {
            panic!("expected a card update");
        };
        assert_eq!(record.local_name, shown);
        assert_eq!(
            card_on_file(contact, &alice.key()).display_name(),
            "Alicia B."
        );
    }

    // The same name again re-issues nothing; it survives reopening the profile.
    alice.set_display_name("Alicia B.").unwrap();
    assert!(alice.take_card_updates().is_empty());
    drop(alice);
    assert_eq!(open(dirs[0].path()).card().display_name(), "Alicia B.");
}
