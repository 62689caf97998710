//! Settings that go through the node: Privacy (issue 16), whose two switches change the profile's
//! setting and show again when the profile is opened again; and the network settings, whose saving
//! stops and restarts the node.

use egui::accesskit::{Role, Toggled};
use egui_kittest::kittest::{NodeT, Queryable};
use tern_gui::action::Action;
use tern_gui::dialogs::settings::body_height;
use tern_gui::model::{ContactState, Screen};
use tern_node::names::MAX_NAME_LEN;
use tern_node::privacy::PrivacySettings;
use tern_node::profile::Profile;
use tern_testkit::profile::PASSWORD;

mod support;
use support::{
    App, app, click, has_label, open_section, scroll_into_view, settle, shutdown, state_of,
    type_into, unlocked_with,
};

fn ticked(h: &App, label: &str) -> Option<Toggled> {
    h.get_by_role_and_label(Role::CheckBox, label)
        .accesskit_node()
        .toggled()
}

/// What the "Your name" field of Settings > My profile holds.
fn name_field(h: &App) -> String {
    h.get_by_role_and_label(Role::TextInput, "Your name")
        .value()
        .unwrap_or_default()
}

/// Selects everything in the "Your name" field (the next keystrokes replace it).
fn select_name(h: &mut App) {
    h.get_by_role_and_label(Role::TextInput, "Your name")
        .focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
}

fn saved(h: &App) -> PrivacySettings {
    let node = h.state().model.node.clone().expect("the node runs");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(node.privacy()).unwrap()
}

#[test]
fn the_privacy_switches_are_saved_in_the_profile_and_shown_again_after_unlocking() {
    let (mut h, dirs) = unlocked_with(&["Bob"]);
    click(&mut h, "Settings");
    open_section(&mut h, "Privacy");
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
    h.step();
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    click(&mut h, "Settings");
    open_section(&mut h, "Privacy");
    assert_eq!(ticked(&h, "Send read receipts"), Some(Toggled::False));
    assert_eq!(ticked(&h, "Typing indicators"), Some(Toggled::True));
    shutdown(&mut h);
}

#[test]
fn saving_network_settings_restarts_the_node_and_keeps_them() {
    let (mut h, _dirs) = unlocked_with(&["Bob"]);
    click(&mut h, "Settings");
    open_section(&mut h, "Network");
    let before = h.state().model.node.clone().expect("the node runs");
    h.get_by_role_and_label(Role::CheckBox, "Hold mail for LAN peers who are offline")
        .click();
    h.step();
    click(&mut h, "Save network settings");
    settle(&mut h, "the restart with the saved settings", |h| {
        let m = &h.state().model;
        m.settings.serve_mailbox
            && m.node.is_some()
            && m.notices
                .iter()
                .any(|n| n.text == "Settings saved; the network restarted with them")
    });
    let node = h.state().model.node.clone().expect("the node runs again");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert!(
        runtime.block_on(before.privacy()).is_err(),
        "the node before the restart was stopped"
    );
    assert!(
        runtime
            .block_on(node.network_settings())
            .unwrap()
            .serve_mailbox,
        "the profile keeps the setting"
    );
    shutdown(&mut h);
}

/// The app's window as it opens (gui/src/main.rs): Settings fits it.
const WINDOW: egui::Vec2 = egui::vec2(1100.0, 720.0);
/// A window lower than any section needs (every one fits the app's smallest, 420 px, at the default
/// text size; a small screen, or text zoomed past 2×, leaves less): Settings' body scrolls there.
const SMALL: egui::Vec2 = egui::vec2(1100.0, 320.0);

/// What a person acts on: buttons (the section list's tabs too), checkboxes, fields, number fields.
fn is_control(role: Role) -> bool {
    matches!(
        role,
        Role::Button
            | Role::Tab
            | Role::CheckBox
            | Role::TextInput
            | Role::PasswordInput
            | Role::MultilineTextInput
            | Role::SpinButton
    )
}

/// Every control drawn (the dialog's and the main window's behind it) lies inside the window; the
/// `expected` ones (role, label) are among them.
fn assert_all_in_window(h: &App, section: &str, expected: &[(Role, &str)]) {
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, WINDOW);
    for node in h.query_all_by(|n| is_control(n.role())) {
        let rect = node.rect();
        assert!(
            window.contains_rect(rect),
            "{section}: {:?} {:?} lies at {rect:?}, outside the {window:?} window",
            node.accesskit_node().role(),
            node.accesskit_node().label()
        );
    }
    for (role, label) in expected {
        let rect = h.get_by_role_and_label(*role, label).rect();
        assert!(window.contains_rect(rect), "{section}: {label} at {rect:?}");
    }
}

#[test]
fn every_settings_section_fits_the_default_window_and_its_controls_take_clicks() {
    let (mut h, _dirs) = unlocked_with(&["Bob", "Pat"]);
    h.set_size(WINDOW);
    let pat = h
        .state()
        .model
        .contacts
        .iter()
        .find(|c| c.name() == "Pat")
        .map(|c| c.key())
        .unwrap();
    h.state_mut().perform(vec![Action::SetContactState {
        contact: pat,
        state: ContactState::Blocked,
    }]);
    settle(&mut h, "Pat blocked", |h| {
        state_of(h, "Pat") == Some(ContactState::Blocked)
    });
    click(&mut h, "Settings");

    // It opens on General (a dialog as long as the window, or longer, would put these above its top).
    assert_all_in_window(
        &h,
        "General",
        &[
            (Role::CheckBox, "Desktop notifications for new messages"),
            (
                Role::CheckBox,
                "Icon with the unread count in the system tray",
            ),
            (Role::Button, "Dark"),
            (Role::Button, "Light"),
        ],
    );
    // Its entry in the list is chosen, and focused for the keyboard.
    h.get_by_role_and_label(Role::TabList, "Settings sections");
    let general = h.get_by_role_and_label(Role::Tab, "General");
    assert_eq!(general.accesskit_node().is_selected(), Some(true));
    assert!(
        general.is_focused(),
        "the chosen section's entry has the focus"
    );

    // The list by keyboard: Down moves along it, Space shows the focused section, and only that one.
    h.key_press(egui::Key::ArrowDown);
    h.step();
    h.step();
    assert!(h.get_by_role_and_label(Role::Tab, "Privacy").is_focused());
    h.key_press(egui::Key::Space);
    h.step();
    h.step();
    assert!(has_label(&h, "Send read receipts"));
    assert!(
        h.query_by_role_and_label(Role::CheckBox, "Desktop notifications for new messages")
            .is_none(),
        "only the chosen section is drawn"
    );

    open_section(&mut h, "General");
    let dark = h.state().model.dark;
    click(&mut h, if dark { "Light" } else { "Dark" });
    assert_eq!(
        h.state().model.dark,
        !dark,
        "the theme button takes a click"
    );
    let notifications = h.state().model.notifications;
    h.get_by_role_and_label(Role::CheckBox, "Desktop notifications for new messages")
        .click();
    h.step();
    h.step();
    assert_eq!(h.state().model.notifications, !notifications);
    assert!(
        h.state().model.tray,
        "the tray icon is on unless turned off"
    );
    h.get_by_role_and_label(
        Role::CheckBox,
        "Icon with the unread count in the system tray",
    )
    .click();
    h.step();
    h.step();
    assert!(!h.state().model.tray);

    open_section(&mut h, "Privacy");
    assert_all_in_window(
        &h,
        "Privacy",
        &[
            (Role::CheckBox, "Send read receipts"),
            (Role::CheckBox, "Typing indicators"),
            (Role::Button, "Unblock Pat"),
        ],
    );
    h.get_by_role_and_label(Role::CheckBox, "Typing indicators")
        .click();
    h.step();
    settle(&mut h, "the node to save the switch", |h| !saved(h).typing);
    click(&mut h, "Unblock Pat");
    settle(&mut h, "Pat unblocked", |h| {
        state_of(h, "Pat") == Some(ContactState::Accepted)
    });

    open_section(&mut h, "Backups");
    assert_all_in_window(
        &h,
        "Backups",
        &[
            (Role::TextInput, "Backup file"),
            (Role::Button, "Back up now…"),
            (Role::TextInput, "Backup folder"),
            (Role::Button, "Turn on automatic backups"),
        ],
    );
    click(&mut h, "Turn on automatic backups");
    assert!(has_label(&h, "Choose the folder for automatic backups."));

    open_section(&mut h, "Network");
    let lan = "LAN only: no internet, find people on this network only";
    assert_all_in_window(
        &h,
        "Network",
        &[
            (Role::CheckBox, lan),
            (Role::CheckBox, "Hold mail for LAN peers who are offline"),
            (Role::TextInput, "New bootstrap node"),
            (Role::Button, "Add node"),
            (Role::Button, "Save network settings"),
        ],
    );
    assert!(
        h.get_by_role_and_label(Role::Button, "Save network settings")
            .accesskit_node()
            .is_disabled()
    );
    h.get_by_role_and_label(Role::CheckBox, lan).click();
    h.step();
    h.step();
    assert!(
        !h.get_by_role_and_label(Role::Button, "Save network settings")
            .accesskit_node()
            .is_disabled(),
        "the LAN switch took the click: there is something to save"
    );
    click(&mut h, "Add node");
    assert!(has_label(&h, "Paste a node address first."));

    open_section(&mut h, "Security");
    assert_all_in_window(
        &h,
        "Security",
        &[
            (Role::PasswordInput, "Current password"),
            (Role::PasswordInput, "New password"),
            (Role::PasswordInput, "Repeat new password"),
            (Role::Button, "Change password"),
        ],
    );
    click(&mut h, "Change password");
    assert!(has_label(&h, "Enter your current password."));

    open_section(&mut h, "My profile");
    assert_all_in_window(
        &h,
        "My profile",
        &[
            (Role::TextInput, "Your name"),
            (Role::Button, "Save name"),
            (Role::Button, "Replace prekey now"),
        ],
    );
    assert_eq!(name_field(&h), "Me");

    open_section(&mut h, "Keyboard shortcuts");
    assert_all_in_window(&h, "Keyboard shortcuts", &[]);
    assert!(has_label(&h, "Ctrl+Q"));
    shutdown(&mut h);
}

#[test]
fn in_a_small_window_a_section_scrolls_and_its_last_button_still_takes_a_click() {
    let (mut h, _dirs) = unlocked_with(&[]);
    h.set_size(SMALL);
    click(&mut h, "Settings");
    open_section(&mut h, "Backups");
    let last = "Turn on automatic backups";
    // The body starts level with the section list and is this high.
    let shown = h.get_by_role_and_label(Role::Tab, "General").rect().top() + body_height(SMALL.y);
    let before = h.get_by_role_and_label(Role::Button, last).rect();
    assert!(
        before.bottom() > shown,
        "the section is longer than its body (which ends at {shown}): {before:?}"
    );
    scroll_into_view(&mut h, Role::Button, last);
    let after = h.get_by_role_and_label(Role::Button, last).rect();
    assert!(after.bottom() <= shown, "scrolled into view: {after:?}");
    h.get_by_role_and_label(Role::Button, last).click();
    h.step();
    h.step();
    assert!(has_label(&h, "Choose the folder for automatic backups."));
    // The top stays reachable: the section list and the dialog's title row did not move out.
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, SMALL);
    for (role, label) in [(Role::Tab, "General"), (Role::Button, "Close")] {
        let rect = h.get_by_role_and_label(role, label).rect();
        assert!(window.contains_rect(rect), "{label} at {rect:?}");
    }
    shutdown(&mut h);
}

#[test]
fn my_profile_takes_a_new_name_and_says_inline_why_one_is_refused() {
    let (mut h, dirs) = unlocked_with(&["Pat"]);
    click(&mut h, "Settings");
    open_section(&mut h, "My profile");
    assert_eq!(name_field(&h), "Me", "starts as the current name");

    // Nothing at all: said inside the dialog, in plain words.
    select_name(&mut h);
    h.key_press(egui::Key::Backspace);
    h.step();
    assert_eq!(name_field(&h), "");
    click(&mut h, "Save name");
    assert_eq!(
        h.state().model.dialog_error.as_deref(),
        Some("Enter a name.")
    );
    assert!(has_label(&h, "Enter a name."));
    // Longer than a card holds (two bytes a letter).
    type_into(&mut h, "Your name", &"é".repeat(MAX_NAME_LEN / 2 + 1));
    click(&mut h, "Save name");
    assert!(
        has_label(&h, &format!("A name must be at most {MAX_NAME_LEN} bytes")),
        "{:?}",
        h.state().model.dialog_error
    );
    assert_eq!(h.state().model.me.as_ref().unwrap().name, "Me");

    // A good name, with Enter: the top bar shows it at once the node answers, and the error goes.
    select_name(&mut h);
    h.get_by_role_and_label(Role::TextInput, "Your name")
        .type_text("  Mina  Lee ");
    h.step();
    h.key_press(egui::Key::Enter);
    settle(&mut h, "the new name", |h| {
        h.state()
            .model
            .me
            .as_ref()
            .is_some_and(|me| me.name == "Mina Lee")
    });
    assert!(has_label(&h, "Tern · Mina Lee"));
    assert!(has_label(&h, "Your name is now Mina Lee"));
    assert_eq!(h.state().model.dialog_error, None);
    shutdown(&mut h);

    // Kept in the profile (what a contact does with the new card: node/tests/card_updates.rs).
    let me = dirs.last().unwrap().path().join("Me");
    let profile = Profile::open(&me, &PASSWORD.into()).unwrap();
    assert_eq!(profile.whoami().name, "Mina Lee");
}
