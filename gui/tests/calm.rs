//! Issue 16 through the accessibility tree (egui_kittest), with a real node behind the app:
//! destructive steps ask first, blocked contacts can be found and unblocked, feedback lands where it
//! belongs (short-lived toasts, errors inside their dialog in plain words), and the keyboard works
//! (focus on open, Enter submits, Tab stays in the dialog, shortcuts).

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use tern_gui::model::{ContactState, Dialog, Screen};
use tern_gui::screens::main_window::MAX_KEPT_DRAFTS;
use tern_node::api::ConversationId;
use tern_node::profile::Profile;
use tern_testkit::files::{contains, files_under};
use tern_testkit::profile::{PASSWORD, create};

mod support;
use support::{
    App, app, click, click_role, has_label, is_field, open_section, settle, shutdown, state_of,
    type_in_composer, type_into, unlocked_with, unlocked_with_mail,
};

/// The label of the widget that has the keyboard focus, if one has.
fn focused(h: &App) -> Option<String> {
    h.query_all_by(|n| n.is_focused())
        .next()
        .map(|n| n.accesskit_node().label().unwrap_or_default())
}

/// Types `text` as keystrokes go, into whatever has the focus (no click first).
fn keystrokes(h: &mut App, text: &str) {
    h.event(egui::Event::Text(text.to_owned()));
    h.step();
}

/// Presses `key` (with `modifiers`) and draws the frame that takes it and the one that shows it.
fn press(h: &mut App, modifiers: egui::Modifiers, key: egui::Key) {
    h.key_press_modifiers(modifiers, key);
    h.step();
    h.step();
}

/// Draws one frame in which `key` goes down with `modifiers` held, and says whether that frame asked
/// the window to close. (`key_press_modifiers` draws a frame per event it queues, modifiers down, key
/// down, key up, modifiers up, and the harness keeps only the last frame's output: a command sent
/// while the key went down is gone from it.) The key is let go in a frame of its own afterwards.
fn key_down_closes(h: &mut App, modifiers: egui::Modifiers, key: egui::Key) -> bool {
    let event = |pressed| egui::Event::Key {
        key,
        physical_key: None,
        pressed,
        repeat: false,
        modifiers,
    };
    h.event(event(true));
    h.step();
    let closing = h
        .output()
        .viewport_output
        .values()
        .any(|v| v.commands.contains(&egui::ViewportCommand::Close));
    h.event(event(false));
    h.step();
    closing
}

/// The value of the text field labelled `field`.
fn field_value(h: &App, field: &str) -> String {
    h.get_by(|n| is_field(n.role()) && n.label().as_deref() == Some(field))
        .value()
        .unwrap_or_default()
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
    open_section(&mut h, "Privacy");
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

#[test]
fn first_run_and_unlock_take_the_first_keystrokes_and_enter_submits() {
    use egui::{Key, Modifiers};
    let root = tempfile::tempdir().unwrap();
    let mut h = app(root.path());
    h.step();
    h.step();
    assert_eq!(focused(&h).as_deref(), Some("Your name"), "first run");
    keystrokes(&mut h, "Alice");
    assert_eq!(field_value(&h, "Your name"), "Alice");
    // Enter moves on to the password, then to its confirmation, where it creates the profile.
    press(&mut h, Modifiers::NONE, Key::Enter);
    assert_eq!(focused(&h).as_deref(), Some("Password"));
    keystrokes(&mut h, PASSWORD);
    press(&mut h, Modifiers::NONE, Key::Enter);
    assert_eq!(focused(&h).as_deref(), Some("Confirm password"));
    keystrokes(&mut h, PASSWORD);
    press(&mut h, Modifiers::NONE, Key::Enter);
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    shutdown(&mut h);
    drop(h);

    let mut h = app(root.path());
    h.step();
    h.step();
    assert_eq!(focused(&h).as_deref(), Some("Password"), "unlock");
    keystrokes(&mut h, "not the password");
    press(&mut h, Modifiers::NONE, Key::Enter);
    settle(&mut h, "the wrong-password message", |h| {
        has_label(h, "Wrong password. Try again.")
    });
    h.step();
    assert_eq!(
        focused(&h).as_deref(),
        Some("Password"),
        "the password field again after a wrong password"
    );
    keystrokes(&mut h, PASSWORD);
    press(&mut h, Modifiers::NONE, Key::Enter);
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    shutdown(&mut h);
}

#[test]
fn add_contact_takes_the_invite_at_once_keeps_tab_inside_and_enter_adds() {
    use egui::{Key, Modifiers};
    let (mut h, _dirs) = unlocked_with(&[]);
    let peer = tempfile::tempdir().unwrap();
    let link = create(peer.path(), "Pat").card().invite_link();
    click(&mut h, "+ Add contact");
    assert_eq!(focused(&h).as_deref(), Some("Invite link"));
    keystrokes(&mut h, &link);
    assert_eq!(field_value(&h, "Invite link"), link);

    // Tab, Tab, Tab, Enter once opened "My code" behind the dialog and lost the invite (four Tabs
    // now: the QR picture's "Choose…" came before "Read QR image").
    for _ in 0..4 {
        press(&mut h, Modifiers::NONE, Key::Tab);
    }
    press(&mut h, Modifiers::NONE, Key::Enter);
    assert_eq!(h.state().model.dialog, Some(Dialog::AddContact));
    assert_eq!(field_value(&h, "Invite link"), link, "the invite is kept");

    // Tab goes round the dialog's controls and never reaches the window behind it.
    let inside = [
        "Close",
        "Invite link",
        "Name (optional)",
        "QR image",
        "Choose…",
        "Read QR image",
        "Add",
    ];
    let mut seen = std::collections::HashSet::new();
    for _ in 0..16 {
        press(&mut h, Modifiers::NONE, Key::Tab);
        if let Some(label) = focused(&h) {
            assert!(inside.contains(&label.as_str()), "Tab reached {label:?}");
            seen.insert(label);
        }
    }
    assert_eq!(
        seen.len(),
        inside.len(),
        "every control is reached: {seen:?}"
    );
    // Shift+Tab goes back inside too.
    for _ in 0..8 {
        press(&mut h, Modifiers::SHIFT, Key::Tab);
        if let Some(label) = focused(&h) {
            assert!(
                inside.contains(&label.as_str()),
                "Shift+Tab reached {label:?}"
            );
        }
    }

    // Enter in the invite field adds the contact.
    h.get_by(|n| is_field(n.role()) && n.label().as_deref() == Some("Invite link"))
        .focus();
    h.step();
    press(&mut h, Modifiers::NONE, Key::Enter);
    settle(&mut h, "Pat added", |h| {
        h.state().model.contacts.iter().any(|c| c.name() == "Pat")
    });

    // Opening the conversation puts the cursor in the composer: typing goes straight in.
    click(&mut h, "Pat");
    h.step();
    assert!(
        h.get_by_role(Role::MultilineTextInput).is_focused(),
        "the composer has the focus"
    );
    keystrokes(&mut h, "hello Pat");
    assert_eq!(
        h.get_by_role(Role::MultilineTextInput).value().as_deref(),
        Some("hello Pat")
    );
    press(&mut h, Modifiers::NONE, Key::Enter);
    settle(&mut h, "the message in the list", |h| {
        has_label(h, "hello Pat")
            && h.get_by_role(Role::MultilineTextInput).value().as_deref() == Some("")
    });
    shutdown(&mut h);
}

#[test]
fn shortcuts_switch_conversations_focus_search_list_themselves_and_quit() {
    use egui::{Key, Modifiers};
    let (mut h, _dirs) = unlocked_with(&["Ann", "Bob", "Cy"]);
    let rows: Vec<_> = h.state().model.list_rows().iter().map(|r| r.key).collect();
    assert_eq!(rows.len(), 3);
    let open = |h: &App| h.state().model.open.as_ref().map(|o| o.conversation);
    let ctrl = Modifiers::COMMAND;
    press(&mut h, ctrl, Key::Num2);
    assert_eq!(open(&h), Some(rows[1]), "Ctrl+2");
    press(&mut h, ctrl, Key::Tab);
    assert_eq!(open(&h), Some(rows[2]), "Ctrl+Tab");
    press(&mut h, ctrl, Key::Tab);
    assert_eq!(open(&h), Some(rows[0]), "Ctrl+Tab wraps round");
    press(&mut h, ctrl | Modifiers::SHIFT, Key::Tab);
    assert_eq!(open(&h), Some(rows[2]), "Ctrl+Shift+Tab");
    press(&mut h, Modifiers::ALT, Key::ArrowUp);
    assert_eq!(open(&h), Some(rows[1]), "Alt+Up");
    press(&mut h, Modifiers::ALT, Key::ArrowDown);
    assert_eq!(open(&h), Some(rows[2]), "Alt+Down");
    press(&mut h, ctrl, Key::Num1);
    assert_eq!(open(&h), Some(rows[0]), "Ctrl+1");

    press(&mut h, ctrl, Key::F);
    assert_eq!(focused(&h).as_deref(), Some("Search"), "Ctrl+F");
    press(&mut h, Modifiers::NONE, Key::Escape);
    assert_ne!(focused(&h).as_deref(), Some("Search"));
    press(&mut h, ctrl, Key::K);
    assert_eq!(focused(&h).as_deref(), Some("Search"), "Ctrl+K");

    // Settings lists the shortcuts; they wait while a dialog is open; Escape closes it.
    click(&mut h, "Settings");
    open_section(&mut h, "Keyboard shortcuts");
    assert!(has_label(&h, "Ctrl+Shift+Tab, Alt+Up"));
    press(&mut h, ctrl, Key::Num3);
    assert_eq!(open(&h), Some(rows[0]), "not behind a dialog");
    press(&mut h, Modifiers::NONE, Key::Escape);
    assert_eq!(h.state().model.dialog, None, "Escape closes the dialog");

    // Ctrl+Q asks the window to close; a plain Q does not.
    assert!(!key_down_closes(&mut h, Modifiers::NONE, Key::Q), "Q alone");
    assert!(
        key_down_closes(&mut h, ctrl, Key::Q),
        "Ctrl+Q closes the window"
    );
    shutdown(&mut h);
}

#[test]
fn the_focus_ring_and_the_light_themes_fields_and_checkboxes_meet_wcag_aa() {
    use egui::{Key, Modifiers, Theme};
    use tern_gui::theme::contrast;
    let (mut h, _dirs) = unlocked_with(&[]);
    click(&mut h, "+ Add contact");
    // Invite link, name, QR image, "Choose…", "Read QR image", "Add".
    for _ in 0..5 {
        press(&mut h, Modifiers::NONE, Key::Tab);
    }
    assert_eq!(
        focused(&h).as_deref(),
        Some("Add"),
        "a button takes the focus"
    );
    // A focused button is drawn with the "active" style: its border is the ring, and it is drawn.
    h.step();
    let add = h.get_by_role_and_label(Role::Button, "Add").rect();
    let ring = h.ctx.global_style().visuals.widgets.active.bg_stroke;
    assert!(
        ring_drawn(&h.output().shapes, add, ring),
        "no ring drawn around the focused button at {add:?}"
    );
    for theme in [Theme::Light, Theme::Dark] {
        let v = h.ctx.style_of(theme).visuals.clone();
        let ring = v.widgets.active.bg_stroke;
        assert!(ring.width >= 2.0, "{theme:?}: ring {}", ring.width);
        for bg in [v.window_fill, v.panel_fill, v.widgets.inactive.weak_bg_fill] {
            let ratio = contrast(ring.color, bg);
            assert!(ratio >= 3.0, "{theme:?}: ring {ratio:.2}:1");
        }
    }
    let v = h.ctx.style_of(Theme::Light).visuals.clone();
    let field = v.text_edit_bg_color();
    let border = v.widgets.inactive.bg_stroke;
    assert!(border.width >= 1.0);
    for (what, fg, bg, min) in [
        ("field border on the field", border.color, field, 3.0),
        (
            "field border on the window",
            border.color,
            v.window_fill,
            3.0,
        ),
        ("field border on a panel", border.color, v.panel_fill, 3.0),
        (
            "text in a field",
            v.widgets.inactive.text_color(),
            field,
            4.5,
        ),
        ("hint text in a field", v.weak_text_color(), field, 4.5),
        (
            "weak text on a panel",
            v.weak_text_color(),
            v.panel_fill,
            4.5,
        ),
        (
            "checkbox border on the window",
            border.color,
            v.window_fill,
            3.0,
        ),
        (
            "check mark in its box",
            v.widgets.inactive.fg_stroke.color,
            v.widgets.inactive.bg_fill,
            3.0,
        ),
    ] {
        let ratio = contrast(fg, bg);
        assert!(ratio >= min, "{what}: {ratio:.2}:1 < {min}:1");
    }
    shutdown(&mut h);
}

#[test]
fn dialogs_keep_their_size_and_enter_renames_changes_the_password_and_adds_a_node() {
    use egui::{Key, Modifiers};
    let (mut h, _dirs) = unlocked_with(&["Pat"]);
    let bounds = |h: &App, label: &str| h.get_by_role_and_label(Role::Button, label).rect();
    click(&mut h, "+ Add contact");
    let (close, add) = (bounds(&h, "Close"), bounds(&h, "Add"));
    keystrokes(&mut h, &"tern:1234567890abcdefghijk".repeat(30));
    h.step();
    assert_eq!(bounds(&h, "Close"), close, "as wide");
    assert_eq!(bounds(&h, "Add"), add, "as tall");
    press(&mut h, Modifiers::NONE, Key::Escape);

    // "Contact": the name field has the focus; Enter renames.
    click(&mut h, "Pat");
    click(&mut h, "Contact…");
    assert_eq!(focused(&h).as_deref(), Some("Name"));
    keystrokes(&mut h, " Smith");
    press(&mut h, Modifiers::NONE, Key::Enter);
    settle(&mut h, "the new name", |h| {
        h.state()
            .model
            .contacts
            .iter()
            .any(|c| c.name().contains("Smith"))
    });
    press(&mut h, Modifiers::NONE, Key::Escape);

    // Settings: the new password twice; a mismatch is said in plain words, inside the dialog.
    click(&mut h, "Settings");
    open_section(&mut h, "Security");
    type_into(&mut h, "Current password", PASSWORD);
    type_into(&mut h, "New password", "a much longer password");
    type_into(&mut h, "Repeat new password", "a different password");
    press(&mut h, Modifiers::NONE, Key::Enter);
    assert!(has_label(&h, "The new passwords don't match."));
    assert_eq!(h.state().model.dialog, Some(Dialog::Settings));

    // Adding a bootstrap node (Enter in its field) saves it: no separate Save step.
    open_section(&mut h, "Network");
    let before = h.state().model.settings.bootstrap.len();
    let peer = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    type_into(
        &mut h,
        "New bootstrap node",
        &format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}"),
    );
    press(&mut h, Modifiers::NONE, Key::Enter);
    settle(&mut h, "the node saved", |h| {
        h.state().model.settings.bootstrap.len() == before + 1
    });
    shutdown(&mut h);
}

/// Whether a rectangle outlined with `ring` is drawn around `around` (within 3 points of it).
fn ring_drawn(
    shapes: &[egui::epaint::ClippedShape],
    around: egui::Rect,
    ring: egui::Stroke,
) -> bool {
    fn walk(shape: &egui::Shape, around: egui::Rect, ring: egui::Stroke) -> bool {
        match shape {
            egui::Shape::Vec(shapes) => shapes.iter().any(|s| walk(s, around, ring)),
            egui::Shape::Rect(r) => {
                r.stroke == ring
                    && r.rect.expand(3.0).contains_rect(around)
                    && around.expand(3.0).contains_rect(r.rect)
            }
            _ => false,
        }
    }
    shapes.iter().any(|s| walk(&s.shape, around, ring))
}

/// The pieces of drawn text whose background is `mark`.
fn marked_text(shapes: &[egui::epaint::ClippedShape], mark: egui::Color32) -> Vec<String> {
    fn walk(shape: &egui::Shape, mark: egui::Color32, out: &mut Vec<String>) {
        match shape {
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, mark, out)),
            egui::Shape::Text(text) => {
                let job = &text.galley.job;
                for section in &job.sections {
                    if section.format.background == mark {
                        let range = section.byte_range.start.0..section.byte_range.end.0;
                        out.push(job.text[range].to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    shapes.iter().for_each(|s| walk(&s.shape, mark, &mut out));
    out
}

#[test]
fn unread_mail_shows_in_the_title_and_search_results_carry_the_date_and_plurals() {
    let (mut h, _dirs) = unlocked_with_mail(&["Pat"], &["lunch at noon?", "or dinner"]);
    settle(&mut h, "the unread count", |h| {
        h.state().model.unread_total() == 2
    });
    assert_eq!(h.state().model.window_title(), "Tern (2)");
    assert_eq!(h.state().window_title_sent(), Some("Tern (2)"));
    assert!(has_label(&h, "0 peers"));

    type_into(&mut h, "Search", "LUNCH");
    h.key_press(egui::Key::Enter);
    settle(&mut h, "one result", |h| {
        has_label(h, "1 result for “LUNCH”")
    });
    assert!(
        has_label(&h, "Pat · Today "),
        "the result says the day, not the clock twice"
    );
    assert!(has_label(&h, "Pat: lunch at noon?"));
    // The match, found whatever its case, is drawn on the selection colour; nothing else is.
    let mark = h.ctx.global_style().visuals.selection.bg_fill;
    assert_eq!(marked_text(&h.output().shapes, mark), ["lunch"]);

    // Reading the conversation clears the count, and the window's title says so.
    click(&mut h, "Close search");
    click(&mut h, "Pat");
    // The read may land while the clicks draw their frames: wait on what the app sent, not on one
    // frame's output.
    settle(&mut h, "the title without a count", |h| {
        h.state().window_title_sent() == Some("Tern")
    });
    assert_eq!(h.state().model.unread_total(), 0);
    shutdown(&mut h);
}

#[test]
fn a_pinned_profile_directory_is_the_only_one_offered_and_is_created_there() {
    // `tern-gui --profile DIR` (or TERN_PROFILE), as tern-node: only that profile.
    let root = tempfile::tempdir().unwrap();
    drop(create(&root.path().join("other"), "Other"));
    drop(create(&root.path().join("mine"), "Mine"));
    let mut h = app(root.path());
    h.state_mut().pin_profile(root.path().join("mine"));
    h.step();
    assert!(has_label(&h, "mine"));
    assert!(!has_label(&h, "other"), "only the pinned profile is listed");
    shutdown(&mut h);
    drop(h);

    // A pinned directory that holds no profile yet: the create form makes it there.
    let fresh = root.path().join("elsewhere").join("work");
    let mut h = app(root.path());
    h.state_mut().pin_profile(fresh.clone());
    h.step();
    h.step();
    assert!(has_label(&h, "Create your profile"));
    // The harness drew the unlock form (two profiles in the root) before the pin: the create form that
    // replaced it still takes the first keystrokes.
    assert_eq!(focused(&h).as_deref(), Some("Your name"));
    keystrokes(&mut h, "Alice");
    type_into(&mut h, "Password", PASSWORD);
    type_into(&mut h, "Confirm password", PASSWORD);
    click(&mut h, "Create profile");
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    assert_eq!(
        h.state().model.profile_dir.as_deref(),
        Some(fresh.as_path())
    );
    assert!(!root.path().join("Alice").exists(), "not beside the others");
    shutdown(&mut h);
}

#[test]
fn clearing_a_history_asks_first_and_a_new_password_re_encrypts_the_profile() {
    const NEW: &str = "a much longer password";
    let (mut h, dirs) = unlocked_with_mail(&["Pat"], &["first note", "second note"]);
    click(&mut h, "Pat");
    settle(&mut h, "Pat's two messages", |h| {
        h.state()
            .model
            .open
            .as_ref()
            .is_some_and(|o| o.messages.len() == 2)
    });
    click(&mut h, "Contact…");
    click(&mut h, "Clear history…");
    assert!(has_label(&h, "Clear this conversation's history?"));
    assert!(has_label(&h, "It cannot be undone"), "says what happens");
    assert!(h.get_by_role_and_label(Role::Button, "Cancel").is_focused());
    click(&mut h, "Clear history");
    settle(&mut h, "the history cleared", |h| {
        h.state()
            .model
            .open
            .as_ref()
            .is_some_and(|o| o.messages.is_empty())
    });
    assert_eq!(
        state_of(&h, "Pat"),
        Some(ContactState::Accepted),
        "Pat stays"
    );

    // A new password: the node stops, the profile is written again under a new key, the node restarts.
    click(&mut h, "Settings");
    open_section(&mut h, "Security");
    type_into(&mut h, "Current password", PASSWORD);
    type_into(&mut h, "New password", NEW);
    type_into(&mut h, "Repeat new password", NEW);
    click(&mut h, "Change password");
    settle(&mut h, "the password changed", |h| {
        has_label(h, "Password changed") && h.state().model.node.is_some()
    });
    shutdown(&mut h);
    let me = dirs.last().unwrap().path().join("Me");
    assert!(
        Profile::open(&me, &PASSWORD.into()).is_err(),
        "the old password"
    );
    let profile = Profile::open(&me, &NEW.into()).unwrap();
    let pat = profile.find_contact("Pat").unwrap();
    let page = profile
        .page(&ConversationId::Direct(pat.key), None, 10)
        .unwrap();
    assert!(page.messages.is_empty(), "cleared, on disk too");
}

#[test]
fn a_pinned_conversation_leads_the_list_and_a_muted_one_leaves_the_title_and_both_are_kept() {
    let (mut h, dirs) = unlocked_with_mail(&["Pat", "Quinn"], &["hello from pat"]);
    let order = |h: &App| -> Vec<String> {
        let m = &h.state().model;
        m.list_rows().iter().map(|r| m.title_of(&r.key)).collect()
    };
    settle(&mut h, "Pat's message listed", |h| {
        h.state().model.window_title() == "Tern (1)"
    });
    assert_eq!(
        order(&h),
        ["Quinn", "Pat"],
        "most recent first (Quinn was added after)"
    );

    click(&mut h, "Pat");
    click(&mut h, "Contact…");
    click_role(&mut h, Role::CheckBox, "Pin to the top of the list");
    assert_eq!(order(&h), ["Pat", "Quinn"], "pinned first");
    assert!(has_label(&h, "pinned"));
    click_role(&mut h, Role::CheckBox, "Mute notifications");
    h.key_press(egui::Key::Escape);
    h.step();
    assert_eq!(
        h.state().model.window_title(),
        "Tern",
        "a muted conversation's unread mail"
    );
    assert!(has_label(&h, "muted"));
    shutdown(&mut h);

    let me = dirs.last().unwrap().path().join("Me");
    let profile = Profile::open(&me, &PASSWORD.into()).unwrap();
    let prefs = profile.conversation_prefs();
    let pat = ConversationId::Direct(profile.find_contact("Pat").unwrap().key);
    assert!(prefs.is_muted(&pat));
    assert_eq!(prefs.pinned(), [pat]);
}

#[test]
fn a_draft_waits_in_its_conversation_while_another_is_open() {
    let (mut h, _dirs) = unlocked_with(&["Pat", "Quinn"]);
    let composer = |h: &App| {
        h.get_by_role(Role::MultilineTextInput)
            .value()
            .unwrap_or_default()
    };
    click(&mut h, "Pat");
    type_in_composer(&mut h, "half a thought");
    click(&mut h, "Quinn");
    assert_eq!(composer(&h), "", "Quinn's composer is his own");
    click(&mut h, "Pat");
    assert_eq!(composer(&h), "half a thought", "Pat's draft waited");
    shutdown(&mut h);
}

#[test]
fn drafts_outlive_the_app_sealed_and_past_the_bound_the_oldest_goes() {
    let (mut h, dirs) = unlocked_with(&["Pat", "Quinn"]);
    let root = dirs.last().unwrap().path().to_path_buf();
    let composer = |h: &App| {
        h.get_by_role(Role::MultilineTextInput)
            .value()
            .unwrap_or_default()
    };
    let write = |h: &mut App, text: &str| {
        h.get_by_role(Role::MultilineTextInput).focus();
        h.step();
        h.get_by_role(Role::MultilineTextInput).type_text(text);
        h.step();
    };
    // Drafts of other conversations, as many as are kept: the first is the oldest.
    let other = |n: usize| ConversationId::Group([u8::try_from(n).unwrap(); 32]);
    for n in 0..MAX_KEPT_DRAFTS {
        h.state_mut()
            .model
            .drafts
            .set(other(n), &format!("older draft {n}"));
    }
    click(&mut h, "Pat");
    write(&mut h, "half a thought");
    click(&mut h, "Quinn");
    assert_eq!(
        h.state().model.drafts.len(),
        MAX_KEPT_DRAFTS,
        "Pat's draft is kept, the oldest one dropped"
    );
    assert_eq!(h.state().model.drafts.get(&other(0)), None);
    write(&mut h, "Quinn's words, still in the composer");

    // The window closes as it does for a person: the drafts are saved, then the node stops.
    h.state_mut().close();
    for file in files_under(&root.join("Me")) {
        let bytes = std::fs::read(&file).unwrap();
        for text in ["half a thought", "still in the composer", "older draft"] {
            assert!(
                !contains(&bytes, text.as_bytes()),
                "{text:?} in plaintext in {}",
                file.display()
            );
        }
    }

    // Opened again: each conversation has its draft back, and the bound held on disk.
    let mut h = app(&root);
    h.step();
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    let drafts = &h.state().model.drafts;
    assert_eq!(drafts.len(), MAX_KEPT_DRAFTS);
    assert_eq!(drafts.get(&other(1)), None, "the next oldest made room");
    assert_eq!(drafts.get(&other(2)), Some("older draft 2"));
    click(&mut h, "Pat");
    assert_eq!(composer(&h), "half a thought");
    click(&mut h, "Quinn");
    assert_eq!(composer(&h), "Quinn's words, still in the composer");

    // Sending deletes the draft, in the profile too.
    h.key_press(egui::Key::Enter);
    h.step();
    assert_eq!(composer(&h), "");
    h.state_mut().close();
    let profile = Profile::open(&root.join("Me"), &PASSWORD.into()).unwrap();
    let quinn = ConversationId::Direct(profile.find_contact("Quinn").unwrap().key);
    let pat = ConversationId::Direct(profile.find_contact("Pat").unwrap().key);
    let saved = profile.drafts();
    assert_eq!(saved.get(&quinn), None, "sent: no draft");
    assert_eq!(saved.get(&pat), Some("half a thought"));
}
