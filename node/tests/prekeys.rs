//! Signed prekeys rotate while a node runs (not only when a profile opens), and a revoke drops the old
//! prekeys at once: a session start made from a card issued before it is refused, while sessions already
//! running go on.

use tern_node::engine::{ReceiveError, Received, now_ms};
use tern_protocol::DecryptError;
use tern_protocol::identity::PREKEY_ROTATION_MS;
use tern_testkit::profile::{create, pair};

#[test]
fn the_prekey_rotates_when_due_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let mut bob = create(dir.path(), "Bob");
    let before = bob.card().clone();
    let now = now_ms();
    assert!(!bob.rotate_prekey_if_due_at(now + 1000).unwrap());
    assert_eq!(bob.card(), &before);
    let later = now + PREKEY_ROTATION_MS + 1;
    assert!(bob.rotate_prekey_if_due_at(later).unwrap());
    assert_ne!(bob.card().details().revision, before.details().revision);
    assert_ne!(bob.identity().current_prekey(), before.prekey());
    assert!(!bob.rotate_prekey_if_due_at(later + 1000).unwrap());
}

#[test]
fn a_revoked_prekey_starts_no_session_and_running_sessions_go_on() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut carol, mut bob) = pair(dirs[0].path(), dirs[1].path());
    // Carol's session with Bob runs before the revoke.
    let (_, first) = carol.send_text(&bob.key(), "before").unwrap();
    bob.receive(&first.envelope).unwrap();
    let old_link = bob.card().invite_link();

    bob.revoke_prekeys().unwrap();

    // Alice only has the card from before: her session start is refused.
    let mut alice = create(dirs[2].path(), "Alice");
    alice.add_contact(&old_link, None).unwrap();
    let (_, start) = alice.send_text(&bob.key(), "hello?").unwrap();
    assert!(matches!(
        bob.receive(&start.envelope),
        Err(ReceiveError::Decrypt(DecryptError::UnknownPrekey(_)))
    ));
    // With the new card (and a new session) it works.
    alice.remove_contact(&bob.key()).unwrap();
    alice.add_contact(&bob.card().invite_link(), None).unwrap();
    let (_, again) = alice.send_text(&bob.key(), "hello again").unwrap();
    assert!(matches!(
        bob.receive(&again.envelope).unwrap(),
        Received::Message { .. }
    ));
    // Carol's running session is untouched.
    let (_, next) = carol.send_text(&bob.key(), "after").unwrap();
    assert!(matches!(
        bob.receive(&next.envelope).unwrap(),
        Received::Message { .. }
    ));
}
