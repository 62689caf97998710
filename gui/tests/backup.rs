//! Backups in the app, driven through its accessibility tree: "Back up now…" in Settings writes an
//! archive and shows its recovery code once (the modal does not close before "I have written it down"),
//! and a second app's first-run "Restore from a backup" refuses a wrong code inline, creating nothing,
//! then restores the same identity with its contact and history.

use std::path::Path;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use tern_gui::TernApp;
use tern_gui::model::Screen;
use tern_node::backup::RecoveryCode;
use tern_node::profile::{KdfParams, Profile};
use tern_testkit::net::{LiveNode, loopback_node};
use tern_testkit::profile::{PASSWORD, create, pair, password};
use tern_testkit::wait::TIMEOUT;

/// Alice's key, as Bob's contact list holds it.
fn alice_key(bob: &tern_node::engine::Engine) -> tern_protocol::IdentityKey {
    bob.store().contacts().unwrap()[0].key
}

mod support;
use support::{app, click, has_label, is_field, open_section, shutdown, type_into};

/// Draws frames until `done` holds, waiting for the node's updates in between.
fn settle(
    h: &mut Harness<'static, TernApp>,
    what: &str,
    done: impl Fn(&Harness<'static, TernApp>) -> bool,
) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; notices: {:?}; start error: {:?}; dialog error: {:?}; {:?}",
            h.state().model.notices,
            h.state().model.profile_screen.error,
            h.state().model.dialog_error,
            h.state().model.backup,
        );
        let app = h.state_mut();
        app.backend.wait(&mut app.model, Duration::from_millis(200));
    }
}

/// Empties the field labelled `field` (select all, delete).
fn clear(h: &mut Harness<'static, TernApp>, field: &str) {
    h.get_by(|n| is_field(n.role()) && n.label().as_deref() == Some(field))
        .focus();
    h.step();
    h.key_press(egui::Key::Home);
    let typed = h
        .get_by(|n| is_field(n.role()) && n.label().as_deref() == Some(field))
        .value()
        .map_or(0, |v| v.chars().count());
    for _ in 0..typed {
        h.key_press(egui::Key::Delete);
    }
    h.step();
}

/// Ticks the checkbox labelled `label` (once the window under it has settled).
fn tick(h: &mut Harness<'static, TernApp>, label: &str) {
    h.step();
    h.get_by_role_and_label(Role::CheckBox, label).click();
    h.step();
    assert_eq!(
        h.get_by_role_and_label(Role::CheckBox, label)
            .accesskit_node()
            .toggled(),
        Some(egui::accesskit::Toggled::True),
        "{label} is ticked"
    );
}

fn create_profile(h: &mut Harness<'static, TernApp>, name: &str) {
    h.step();
    type_into(h, "Your name", name);
    type_into(h, "Password", PASSWORD);
    type_into(h, "Confirm password", PASSWORD);
    click(h, "Create profile");
    settle(h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
}

/// The code lines the modal shows: four groups of four code characters each.
fn shown_code(h: &mut Harness<'static, TernApp>) -> String {
    // The modal's first frame is a sizing pass: read it once it has settled.
    h.step();
    h.step();
    let is_line = |l: &str| {
        let groups: Vec<&str> = l.split(' ').collect();
        groups.len() == 4
            && groups
                .iter()
                .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_alphanumeric()))
    };
    let lines: Vec<String> = h
        .query_all_by(|n| {
            n.role() == Role::Label && is_line(&n.value().or_else(|| n.label()).unwrap_or_default())
        })
        .map(|n| {
            let node = n.accesskit_node();
            node.value().or_else(|| node.label()).unwrap_or_default()
        })
        .collect();
    lines.join(" ")
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn a_backup_written_in_settings_restores_in_a_second_app_and_a_wrong_code_creates_nothing() {
    let (root_a, root_b, bob_dir, backups) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let bob_link = create(bob_dir.path(), "Bob").card().invite_link();

    // Alice: a profile, Bob as a contact, a message to him.
    let mut alice = app(root_a.path());
    create_profile(&mut alice, "Alice");
    click(&mut alice, "+ Add contact");
    type_into(&mut alice, "Invite link", &bob_link);
    click(&mut alice, "Add");
    settle(&mut alice, "Bob added", |h| {
        h.state().model.contacts.iter().any(|c| c.name() == "Bob")
    });
    click(&mut alice, "Bob");
    alice.get_by_role(Role::MultilineTextInput).focus();
    alice.step();
    alice
        .get_by_role(Role::MultilineTextInput)
        .type_text("Written before the backup");
    alice.step();
    alice.key_press(egui::Key::Enter);
    settle(&mut alice, "the message stored", |h| {
        has_label(h, "Written before the backup")
    });
    let fingerprint = alice
        .state()
        .model
        .me
        .as_ref()
        .unwrap()
        .fingerprint
        .to_string();

    // Settings > Back up now…
    let archive = backups.path().join("alice.tern");
    click(&mut alice, "Settings");
    open_section(&mut alice, "Backups");
    let prefilled = alice
        .get_by(|n| is_field(n.role()) && n.label().as_deref() == Some("Backup file"))
        .value()
        .unwrap_or_default();
    assert!(
        prefilled.starts_with("~/tern-backup-") && prefilled.ends_with(".tern"),
        "prefilled: {prefilled}"
    );
    clear(&mut alice, "Backup file");
    type_into(&mut alice, "Backup file", &archive.display().to_string());
    click(&mut alice, "Back up now…");
    settle(&mut alice, "the recovery code", |h| {
        has_label(h, "I have written it down")
    });
    assert!(archive.is_file(), "the archive is written");
    let code = shown_code(&mut alice);
    assert_eq!(
        code.chars().filter(char::is_ascii_alphanumeric).count(),
        64,
        "64 code characters in lines of four groups"
    );
    assert!(
        RecoveryCode::parse(&code).is_ok(),
        "the shown code reads back"
    );

    // "Close" waits for the checkbox.
    let close = alice.get_by_role_and_label(Role::Button, "Close");
    assert!(
        close.accesskit_node().is_disabled(),
        "Close is disabled before the checkbox"
    );
    close.click();
    alice.step();
    alice.step();
    assert!(has_label(&alice, "I have written it down"), "still shown");
    tick(&mut alice, "I have written it down");
    click(&mut alice, "Close");
    assert!(
        !has_label(&alice, "I have written it down"),
        "the modal is gone"
    );
    assert!(
        alice.state().model.backup.code.is_none(),
        "the code is forgotten"
    );
    // The node came back after the backup.
    assert!(alice.state().model.node.is_some());
    shutdown(&mut alice);
    drop(alice);

    // A second app, first run: Restore from a backup.
    let mut second = app(root_b.path());
    second.step();
    click(&mut second, "Restore from a backup…");
    type_into(&mut second, "Backup file", &archive.display().to_string());
    let wrong = RecoveryCode::from_secret([7; 32]).to_text();
    type_into(&mut second, "Recovery code", &wrong);
    type_into(&mut second, "Profile name on this computer", "Alice");
    type_into(&mut second, "New password", PASSWORD);
    type_into(&mut second, "Repeat new password", PASSWORD);
    click(&mut second, "Restore");
    settle(&mut second, "the wrong code refused", |h| {
        has_label(h, "That recovery code is not the one for this backup")
    });
    assert_eq!(second.state().model.screen, Screen::Profiles);
    assert_eq!(entries(root_b.path()), 0, "a wrong code creates nothing");

    // A truncated copy of the archive is refused with the right code, and nothing is created either.
    let cut = backups.path().join("cut.tern");
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    clear(&mut second, "Backup file");
    type_into(&mut second, "Backup file", &cut.display().to_string());
    type_into(&mut second, "Recovery code", &code);
    type_into(&mut second, "New password", PASSWORD);
    type_into(&mut second, "Repeat new password", PASSWORD);
    click(&mut second, "Restore");
    settle(&mut second, "the cut archive refused", |h| {
        has_label(h, "Nothing was restored") && !has_label(h, "That recovery code is not the one")
    });
    assert_eq!(entries(root_b.path()), 0, "a cut archive creates nothing");
    // A mistyped code is said before anything is asked of the node.
    clear(&mut second, "Backup file");
    type_into(&mut second, "Backup file", &archive.display().to_string());
    let mut typo: Vec<char> = code.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    type_into(
        &mut second,
        "Recovery code",
        &typo.iter().collect::<String>(),
    );
    type_into(&mut second, "New password", PASSWORD);
    type_into(&mut second, "Repeat new password", PASSWORD);
    click(&mut second, "Restore");
    assert!(has_label(&second, "That recovery code has a typo"));
    clear(&mut second, "Recovery code");
    clear(&mut second, "New password");
    clear(&mut second, "Repeat new password");

    // The right code, typed in lowercase with dashes.
    let typed = code.to_lowercase().replace(' ', "-");
    type_into(&mut second, "Recovery code", &typed);
    type_into(&mut second, "New password", PASSWORD);
    type_into(&mut second, "Repeat new password", PASSWORD);
    click(&mut second, "Restore");
    settle(&mut second, "the restored profile open", |h| {
        h.state().model.screen == Screen::Main
    });
    let me = second.state().model.me.clone().unwrap();
    assert_eq!(me.fingerprint.to_string(), fingerprint, "the same identity");
    assert_eq!(me.name, "Alice");
    assert!(root_b.path().join("Alice").is_dir());
    settle(&mut second, "Bob in the list", |h| has_label(h, "Bob"));
    click(&mut second, "Bob");
    settle(&mut second, "the history", |h| {
        has_label(h, "Written before the backup")
    });
    shutdown(&mut second);
}

#[test]
fn automatic_backups_turned_on_in_settings_show_their_code_once_and_the_node_writes_one() {
    let (root, folder) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut h = app(root.path());
    create_profile(&mut h, "Alice");
    click(&mut h, "Settings");
    open_section(&mut h, "Backups");
    assert!(has_label(&h, "Off."));
    click(&mut h, "Turn on automatic backups");
    assert!(
        has_label(&h, "Choose the folder for automatic backups."),
        "no folder: said inline"
    );
    type_into(
        &mut h,
        "Backup folder",
        &folder.path().display().to_string(),
    );
    click(&mut h, "Turn on automatic backups");
    settle(&mut h, "the recovery code", |h| {
        has_label(h, "I have written it down")
    });
    assert!(has_label(&h, "It opens every automatic backup in"));
    let code = shown_code(&mut h);
    assert!(RecoveryCode::parse(&code).is_ok(), "a whole code is shown");
    tick(&mut h, "I have written it down");
    click(&mut h, "Close");
    assert!(h.state().model.backup.code.is_none());
    let auto = h.state().model.backup.auto.clone().expect("on");
    assert_eq!((auto.every.as_secs(), auto.keep), (24 * 3600, 7));

    // The restarted node writes the first one at once; Settings says when.
    settle(&mut h, "the first automatic backup", |h| {
        h.state()
            .model
            .backup
            .auto
            .as_ref()
            .is_some_and(|a| a.last_ms > 0)
    });
    assert_eq!(entries(folder.path()), 1, "one archive in the folder");
    click(&mut h, "Settings");
    // The dialog opens where it was left.
    assert!(has_label(&h, "On: every 24 hours to"));
    assert!(!has_label(&h, "none yet"));
    click(&mut h, "Turn off");
    settle(&mut h, "off", |h| h.state().model.backup.auto.is_none());
    assert!(!has_label(&h, "I have written it down"), "no code when off");
    shutdown(&mut h);
}

/// A real restore (docs/protocol.md §20.5): Bob's three texts, sealed on the session the backup cannot
/// bring back, reach the restored copy's node and fail to open there; the app says so once, calmly, and
/// they arrive after all once Bob has the restored copy's new card and seals them again.
#[test]
fn an_undecryptable_message_is_said_once_per_contact_in_a_calm_line() {
    let (root, dirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Alice and Bob talk; Alice's profile is backed up and restored into the app's profiles folder.
    let (mut alice, mut bob) = pair(&dirs.path().join("alice"), &dirs.path().join("bob"));
    let (_, hello) = alice.send_text(&bob.key(), "hello").unwrap();
    bob.receive(&hello.envelope).unwrap();
    let archive = dirs.path().join("alice.tern");
    let (code, _) = Profile::from(alice).backup(&archive).unwrap();
    tern_node::backup::restore(
        &archive,
        &code,
        &root.path().join("Alice"),
        &password(),
        KdfParams::INSECURE_FOR_TESTS,
    )
    .unwrap();
    // Three texts Bob seals on the session the backup cannot bring back.
    for n in 0..3 {
        bob.send_text(&alice_key(&bob), &format!("lost {n}"))
            .unwrap();
    }

    let mut h = app(root.path());
    h.step();
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    settle(&mut h, "the restored profile's node listening", |h| {
        h.state().model.screen == Screen::Main && !h.state().model.listen_addrs.is_empty()
    });
    let alice_addr: libp2p::Multiaddr = h.state().model.listen_addrs[0].parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bob = runtime.block_on(LiveNode::start(bob, "bob", loopback_node()));
    runtime.block_on(bob.node.dial(alice_addr)).unwrap();
    click(&mut h, "Bob");
    let line = "A message from Bob could not be decrypted. It was sent before your backup was \
                restored; ask Bob to send it again.";
    // How many toasts say it at once, at most, over every frame from here on (they expire).
    let most = std::cell::Cell::new(0);
    let toasts = |h: &Harness<'static, TernApp>| {
        let told = h
            .state()
            .model
            .notices
            .iter()
            .filter(|n| n.text == line)
            .count();
        most.set(most.get().max(told));
    };
    settle(&mut h, "the notice", |h| {
        toasts(h);
        has_label(h, line)
    });
    // Bob took the restored copy's new card and sealed his three texts again: they arrive.
    settle(&mut h, "Bob's texts, sealed again", |h| {
        toasts(h);
        h.state().model.open.as_ref().is_some_and(|o| {
            (0..3).all(|n| o.messages.iter().any(|m| m.text == format!("lost {n}")))
        })
    });
    assert!(has_label(&h, line), "the conversation still says it");
    assert_eq!(most.get(), 1, "told once, not once per envelope");
    assert!(
        !h.state().model.notices.iter().any(|n| n.error),
        "calm: not an error"
    );
    shutdown(&mut h);
}
