//! Issue 16 through the accessibility tree (egui_kittest), with a real node behind the app:
//! destructive steps ask first, blocked contacts can be found and unblocked, feedback lands where it
//! belongs (short-lived toasts, errors inside their dialog in plain words), and the keyboard works
//! (focus on open, Enter submits, Tab stays in the dialog, shortcuts).

use std::path::Path;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use tern_gui::model::{ContactState, Dialog, Screen};
use tern_gui::{Options, TernApp};
use tern_node::profile::KdfParams;
use tern_testkit::net::loopback_settings;
use tern_testkit::profile::{PASSWORD, create};
use tern_testkit::wait::TIMEOUT;

type App = Harness<'static, TernApp>;

fn app(root: &Path) -> App {
    let options = Options {
        root: root.to_path_buf(),
        kdf: KdfParams::INSECURE_FOR_TESTS,
        // Loopback only: mDNS would multicast beyond this machine.
        network_override: Some(loopback_settings()),
    };
    Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_eframe(move |cc| TernApp::new(&cc.egui_ctx, options.clone()).unwrap())
}

/// Draws frames until `done` holds, waiting for the node's updates in between.
fn settle(h: &mut App, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let app = h.state_mut();
        app.backend.wait(&mut app.model, Duration::from_millis(200));
    }
}

/// Whether any node's label or value contains `text`.
fn has_label(h: &App, text: &str) -> bool {
    h.query_all_by(|n| {
        n.label().is_some_and(|l| l.contains(text)) || n.value().is_some_and(|v| v.contains(text))
    })
    .next()
    .is_some()
}

fn is_field(role: Role) -> bool {
    matches!(
        role,
        Role::TextInput | Role::PasswordInput | Role::MultilineTextInput
    )
}

fn type_into(h: &mut App, field: &str, text: &str) {
    h.get_by(|n| is_field(n.role()) && n.label().as_deref() == Some(field))
        .focus();
    h.step();
    h.get_by(|n| is_field(n.role()) && n.label().as_deref() == Some(field))
        .type_text(text);
    h.step();
}

fn click(h: &mut App, label: &str) {
    h.step();
    h.get_by_role_and_label(Role::Button, label).click();
    h.step();
    h.step();
}

fn shutdown(h: &mut App) {
    let app = h.state_mut();
    let node = app.model.node.take();
    app.backend.shutdown(node);
}

/// A profile "Me" with the contacts `names` (made on disk), unlocked in the app. The directories live
/// as long as the returned guards.
fn unlocked_with(names: &[&str]) -> (App, Vec<tempfile::TempDir>) {
    let root = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    {
        let mut me = create(&root.path().join("Me"), "Me");
        for name in names {
            let dir = tempfile::tempdir().unwrap();
            let peer = create(dir.path(), name);
            me.add_contact(&peer.card().invite_link(), None).unwrap();
            dirs.push(dir);
        }
    }
    let mut h = app(root.path());
    h.step();
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    dirs.push(root);
    (h, dirs)
}

fn state_of(h: &App, name: &str) -> Option<ContactState> {
    h.state()
        .model
        .contacts
        .iter()
        .find(|c| c.name() == name)
        .map(|c| c.record.state)
}

#[test]
fn removing_a_contact_asks_first_and_cancel_keeps_it() {
    let (mut h, _dirs) = unlocked_with(&["Pat"]);
    click(&mut h, "Pat");
    click(&mut h, "Contact…");
    click(&mut h, "Remove contact and conversation…");
    assert!(has_label(&h, "Remove Pat?"));
    assert!(has_label(&h, "It cannot be undone"), "says what happens");
    let cancel = h.get_by_role_and_label(Role::Button, "Cancel");
    assert!(cancel.is_focused(), "Cancel has the focus");
    // Enter on the focused Cancel cancels.
    h.key_press(egui::Key::Enter);
    h.step();
    h.step();
    assert!(h.state().model.confirm.is_none());
    assert_eq!(state_of(&h, "Pat"), Some(ContactState::Accepted), "kept");

    click(&mut h, "Remove contact and conversation…");
    // Escape cancels too, and leaves the Contact dialog open.
    h.key_press(egui::Key::Escape);
    h.step();
    h.step();
    assert!(h.state().model.confirm.is_none());
    assert!(h.state().model.dialog.is_some());

    click(&mut h, "Remove contact and conversation…");
    click(&mut h, "Remove and delete history");
    settle(&mut h, "the contact removed", |h| {
        h.state().model.contacts.is_empty()
    });
    assert!(h.state().model.open.is_none());
    shutdown(&mut h);
}

#[test]
fn a_blocked_contact_shows_a_banner_is_listed_in_settings_and_can_be_unblocked() {
    let (mut h, _dirs) = unlocked_with(&["Pat"]);
    click(&mut h, "Pat");
    click(&mut h, "Contact…");
    click(&mut h, "Block…");
    assert!(has_label(&h, "Block Pat?"));
    assert!(has_label(&h, "will be dropped"), "says what happens");
    click(&mut h, "Cancel");
    assert_eq!(state_of(&h, "Pat"), Some(ContactState::Accepted));

    click(&mut h, "Block…");
    click(&mut h, "Block");
    settle(&mut h, "Pat blocked", |h| {
        state_of(h, "Pat") == Some(ContactState::Blocked)
    });
    // The conversation stays open, with a banner in place of the composer.
    settle(&mut h, "the banner", |h| has_label(h, "You blocked Pat"));
    assert!(
        h.query_by_role(Role::MultilineTextInput).is_none(),
        "no composer in a blocked conversation"
    );

    // Settings lists Pat under Blocked contacts; Unblock there.
    click(&mut h, "Settings");
    assert!(has_label(&h, "Blocked contacts"));
    click(&mut h, "Unblock Pat");
    settle(&mut h, "Pat unblocked", |h| {
        state_of(h, "Pat") == Some(ContactState::Accepted)
    });
    assert!(has_label(&h, "You have not blocked anyone"));
    h.key_press(egui::Key::Escape);
    settle(&mut h, "the composer back", |h| {
        h.state().model.dialog.is_none() && h.query_by_role(Role::MultilineTextInput).is_some()
    });

    // Blocked again, then unblocked from the banner.
    click(&mut h, "Contact…");
    click(&mut h, "Block…");
    click(&mut h, "Block");
    settle(&mut h, "the banner", |h| has_label(h, "You blocked Pat"));
    click(&mut h, "Unblock");
    settle(&mut h, "Pat unblocked", |h| {
        state_of(h, "Pat") == Some(ContactState::Accepted) && !has_label(h, "You blocked Pat")
    });
    shutdown(&mut h);
}

#[test]
fn an_invite_error_is_said_inside_the_dialog_in_plain_words_and_a_confirmation_toast_expires() {
    let (mut h, _dirs) = unlocked_with(&[]);
    click(&mut h, "+ Add contact");
    type_into(&mut h, "Invite link", "tern:not-a-real-card");
    click(&mut h, "Add");
    assert!(has_label(
        &h,
        "That doesn't look like a Tern invite link. Check that you copied all of it."
    ));
    assert!(!has_label(&h, "base58"), "no developer words");
    assert_eq!(
        h.state().model.dialog,
        Some(Dialog::AddContact),
        "still open"
    );
    assert!(
        h.state().model.notices.is_empty(),
        "said once, in the dialog"
    );

    // A good link: the dialog closes and a short-lived toast confirms it.
    let peer = tempfile::tempdir().unwrap();
    let link = create(peer.path(), "Pat").card().invite_link();
    h.state_mut().model.dialog = None;
    click(&mut h, "+ Add contact");
    assert!(
        h.state().model.dialog_error.is_none(),
        "a reopened dialog starts clean"
    );
    type_into(&mut h, "Invite link", &link);
    click(&mut h, "Add");
    settle(&mut h, "the toast", |h| has_label(h, "Added Pat"));
    assert!(h.state().model.dialog.is_none());
    // The harness's clock moves a quarter second a frame: after five seconds the toast is gone.
    for _ in 0..20 {
        h.step();
    }
    assert!(!has_label(&h, "Added Pat"), "the toast expired");
    assert!(h.state().model.notices.is_empty());
    shutdown(&mut h);
}
