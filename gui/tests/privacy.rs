//! Settings > Privacy (issue 16): the two switches change the profile's setting through the node, and
//! the app shows the saved state when the profile is opened again.

use egui::accesskit::{Role, Toggled};
use egui_kittest::kittest::{NodeT, Queryable};
use tern_gui::model::Screen;
use tern_node::privacy::PrivacySettings;
use tern_testkit::profile::PASSWORD;

mod support;
use support::{App, app, click, settle, shutdown, type_into, unlocked_with};

/// Tall enough for the whole Settings dialog.
const TALL: f32 = 1600.0;

fn ticked(h: &App, label: &str) -> Option<Toggled> {
    h.get_by_role_and_label(Role::CheckBox, label)
        .accesskit_node()
        .toggled()
}

fn saved(h: &App) -> PrivacySettings {
    let node = h.state().model.node.clone().expect("the node runs");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(node.privacy()).unwrap()
}

#[test]
fn the_privacy_switches_are_saved_in_the_profile_and_shown_again_after_unlocking() {
    let (mut h, dirs) = unlocked_with(&["Bob"]);
    // Settings is taller than the usual test window, and a modal does not scroll: its top would be
    // above the window (a known limit of the dialog, see the note).
    h.set_size(egui::vec2(1100.0, TALL));
    click(&mut h, "Settings");
    assert_eq!(ticked(&h, "Send read receipts"), Some(Toggled::True));
    assert_eq!(ticked(&h, "Typing indicators"), Some(Toggled::True));

    h.get_by_role_and_label(Role::CheckBox, "Send read receipts")
        .scroll_to_me();
    h.step();
    h.get_by_role_and_label(Role::CheckBox, "Send read receipts")
        .click();
    h.step();
    assert_eq!(ticked(&h, "Send read receipts"), Some(Toggled::False));
    settle(&mut h, "the node to save the switch", |h| {
        !saved(h).read_receipts
    });
    assert!(saved(&h).typing, "the other switch is left alone");
    shutdown(&mut h);
    drop(h);

    // The profile opened again shows what was saved.
    let root = dirs.last().unwrap().path();
    let mut h = app(root);
    h.set_size(egui::vec2(1100.0, TALL));
    h.step();
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    click(&mut h, "Settings");
    assert_eq!(ticked(&h, "Send read receipts"), Some(Toggled::False));
    assert_eq!(ticked(&h, "Typing indicators"), Some(Toggled::True));
    shutdown(&mut h);
}
