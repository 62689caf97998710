//! The real app driven through its accessibility tree (egui_kittest), with real nodes behind it on
//! 127.0.0.1: profiles, unlocking, contacts, a conversation between two app instances, verification,
//! key changes and bad input.

use std::path::Path;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use tern_gui::model::Screen;
use tern_gui::screens::conversation_list::unread_label;
use tern_gui::{Options, TernApp};
use tern_node::api::{ConversationId, Event, MessageStatus};
use tern_node::profile::KdfParams;
use tern_protocol::IdentityKey;
use tern_testkit::net::{loopback_settings, with_peer};
use tern_testkit::profile::{PASSWORD, create};
use tern_testkit::wait::TIMEOUT;

mod support;
use support::{has_label, is_field, open_section, shutdown, type_into};

fn options(root: &Path) -> Options {
    Options {
        root: root.to_path_buf(),
        kdf: KdfParams::INSECURE_FOR_TESTS,
        // Loopback only: mDNS would multicast beyond this machine.
        network_override: Some(loopback_settings()),
    }
}

fn app(root: &Path) -> Harness<'static, TernApp> {
    let root = root.to_path_buf();
    Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_eframe(move |cc| TernApp::new(&cc.egui_ctx, options(&root)).unwrap())
}

/// Draws frames until `done` holds, waiting for the node's updates in between (no sleeping: each wait
/// ends when the next update arrives).
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
            "timed out waiting for {what}; notices: {:?}",
            h.state().model.notices
        );
        let app = h.state_mut();
        app.backend.wait(&mut app.model, Duration::from_millis(200));
    }
}

/// Clicks the widget labelled `label`; two frames: one takes the click, the next draws what it changed.
fn click(h: &mut Harness<'static, TernApp>, label: &str) {
    // A window that just changed size settles in the next frame: click where the button is now.
    h.step();
    h.get_by_role_and_label(Role::Button, label).click();
    h.step();
    h.step();
}

fn create_profile(h: &mut Harness<'static, TernApp>, name: &str) {
    h.step();
    assert!(has_label(h, "Create your profile"));
    type_into(h, "Your name", name);
    type_into(h, "Password", PASSWORD);
    assert!(has_label(h, "Strong"), "the strength hint shows");
    type_into(h, "Confirm password", PASSWORD);
    click(h, "Create profile");
    settle(h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    assert!(has_label(h, &format!("Tern · {name}")));
}

fn my_key(h: &Harness<'static, TernApp>) -> IdentityKey {
    h.state().model.me.as_ref().unwrap().key
}

fn add_contact(h: &mut Harness<'static, TernApp>, link: &str, name: &str) {
    click(h, "+ Add contact");
    type_into(h, "Invite link", link);
    click(h, "Add");
    settle(h, "the new contact", |h| {
        h.state().model.contacts.iter().any(|c| c.name() == name)
    });
}

/// Alice's node dials Bob's.
fn connect(alice: &Harness<'static, TernApp>, bob: &Harness<'static, TernApp>) {
    let bob_node = bob.state().model.node.clone().unwrap();
    let status = bob.state().backend.block_on(bob_node.status()).unwrap();
    let addr = with_peer(status.listen_addrs[0].clone(), status.peer_id);
    let alice_node = alice.state().model.node.clone().unwrap();
    alice
        .state()
        .backend
        .block_on(alice_node.dial(addr))
        .unwrap();
}

/// Two app instances with fresh profiles, Alice and Bob; the profile directories live as long as the
/// returned guards.
struct Pair {
    alice: Harness<'static, TernApp>,
    bob: Harness<'static, TernApp>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn pair() -> Pair {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = (app(dirs.0.path()), app(dirs.1.path()));
    create_profile(&mut alice, "Alice");
    create_profile(&mut bob, "Bob");
    Pair {
        alice,
        bob,
        _dirs: dirs,
    }
}

fn invite_link(h: &Harness<'static, TernApp>) -> String {
    h.state().model.me.as_ref().unwrap().invite_link.clone()
}

#[test]
fn a_profile_is_created_then_unlocked_and_a_wrong_password_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut h = app(root.path());
    create_profile(&mut h, "Alice");
    shutdown(&mut h);
    drop(h);

    let mut h = app(root.path());
    h.step();
    assert!(has_label(&h, "Unlock your profile"));
    assert!(has_label(&h, "Alice"), "the profile is listed");
    type_into(&mut h, "Password", "not the password");
    click(&mut h, "Unlock");
    settle(&mut h, "the wrong-password message", |h| {
        has_label(h, "Wrong password. Try again.")
    });
    assert_eq!(h.state().model.screen, Screen::Profiles);
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    assert!(has_label(&h, "Tern · Alice"));
    shutdown(&mut h);
}

#[test]
fn two_apps_chat_with_delivery_read_receipts_unread_badges_and_typing() {
    // `_dirs` is bound so the profile directories outlive the apps.
    let Pair {
        mut alice,
        mut bob,
        _dirs,
    } = pair();
    let (bob_link, alice_link) = (invite_link(&bob), invite_link(&alice));
    add_contact(&mut alice, &bob_link, "Bob");
    add_contact(&mut bob, &alice_link, "Alice");
    connect(&alice, &bob);
    let (alice_key, bob_key) = (my_key(&alice), my_key(&bob));
    settle(&mut alice, "Bob online", |h| {
        h.state().model.contact(&bob_key).is_some_and(|c| c.online)
    });

    // Alice opens the conversation and starts typing: Bob's list shows it.
    click(&mut alice, "Bob");
    alice.get_by_role(Role::MultilineTextInput).focus();
    alice.step();
    alice
        .get_by_role(Role::MultilineTextInput)
        .type_text("Hello Bob, lunch at noon?");
    alice.step();
    settle(&mut bob, "Alice's typing indicator", |h| {
        has_label(h, "typing…")
    });

    // Enter sends; the message is delivered.
    alice.key_press(egui::Key::Enter);
    alice.step();
    settle(&mut alice, "delivered", |h| has_label(h, "✔✔ Delivered"));
    assert_eq!(
        alice
            .get_by_role(Role::MultilineTextInput)
            .value()
            .as_deref(),
        Some(""),
        "the composer is cleared"
    );

    // Bob sees an unread badge until he opens the conversation.
    settle(&mut bob, "the unread badge", |h| {
        has_label(h, "Hello Bob, lunch at noon?")
    });
    assert_eq!(bob.state().model.list_rows()[0].unread, 1);
    assert!(
        bob.query_by_value(&unread_label(1)).is_some(),
        "the badge shows 1"
    );
    assert!(
        !has_label(&bob, "Alice is typing…"),
        "typing stopped when the message went out"
    );
    click(&mut bob, "Alice");
    settle(&mut bob, "the badge clears", |h| {
        h.state().model.list_rows()[0].unread == 0 && h.query_by_value(&unread_label(1)).is_none()
    });
    settle(&mut alice, "read", |h| has_label(h, "✔✔ Read"));

    // Bob answers with Shift+Enter making a second line and the Send button.
    bob.get_by_role(Role::MultilineTextInput).focus();
    bob.step();
    bob.get_by_role(Role::MultilineTextInput).type_text("Yes!");
    bob.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Enter);
    bob.step();
    bob.get_by_role(Role::MultilineTextInput)
        .type_text("See you there");
    bob.step();
    click(&mut bob, "Send");
    settle(&mut alice, "Bob's answer", |h| {
        h.state()
            .model
            .open
            .as_ref()
            .is_some_and(|o| o.messages.iter().any(|m| !m.outgoing()))
    });
    let answer = alice.state().model.open.as_ref().unwrap().messages[1]
        .text
        .clone();
    assert_eq!(answer, "Yes!\nSee you there", "Shift+Enter made a new line");
    let alice_view = &alice.state().model.open.as_ref().unwrap().messages;
    assert_eq!(alice_view.len(), 2);
    assert!(
        alice_view
            .iter()
            .all(|m| m.conversation == ConversationId::Direct(bob_key))
    );
    let bob_view = &bob.state().model.open.as_ref().unwrap().messages;
    assert!(
        bob_view
            .iter()
            .all(|m| m.conversation == ConversationId::Direct(alice_key))
    );
    assert_eq!(bob_view[0].status, MessageStatus::Read);

    // Search finds the text in the history and jumps to it.
    type_into(&mut alice, "Search", "LUNCH");
    alice.key_press(egui::Key::Enter);
    alice.step();
    settle(&mut alice, "search results", |h| {
        has_label(h, "1 result for")
    });
    alice.get_by_label_contains("Hello Bob, lunch").click();
    alice.step();
    assert!(alice.state().model.search_results.is_none());
    assert!(alice.state().model.open.is_some());
    shutdown(&mut alice);
    shutdown(&mut bob);
}

#[test]
fn verification_by_safety_number_and_by_qr_picture_and_a_key_change_warning() {
    // `_dirs` is bound so the profile directories outlive the apps.
    let Pair {
        mut alice,
        mut bob,
        _dirs,
    } = pair();
    let bob_link = invite_link(&bob);
    let bob_key = my_key(&bob);
    add_contact(&mut alice, &bob_link, "Bob");
    click(&mut alice, "Bob");

    // Comparing the safety number.
    click(&mut alice, "Verify");
    let number = tern_protocol::SafetyNumber::between(&my_key(&alice), &bob_key).to_string();
    assert!(
        has_label(&alice, &number[..17]),
        "the safety number is shown"
    );
    click(&mut alice, "The numbers match: mark verified");
    settle(&mut alice, "verified", |h| has_label(h, "Bob is verified"));
    assert!(
        alice
            .state()
            .model
            .contact(&bob_key)
            .unwrap()
            .record
            .verified
    );

    // A key change drops the mark and warns in the conversation. (The node's side of a key change, a
    // contact card with another agreement key, is tested in tern-node; here the app gets the event.)
    alice.state_mut().model.on_event(Event::KeyChanged {
        contact: bob_key,
        name: "Bob".into(),
    });
    alice.state_mut().model.dialog = None;
    alice.step();
    assert!(has_label(&alice, "Bob's safety number has changed"));
    assert!(!has_label(&alice, "✔ Verified"));

    // Scanning Bob's QR code from a picture verifies him again; someone else's code does not.
    let dir = tempfile::tempdir().unwrap();
    let bob_card = tern_protocol::ContactCard::from_invite_link(&bob_link).unwrap();
    let bob_png = dir.path().join("bob.png");
    std::fs::write(
        &bob_png,
        tern_gui::qr::matrix_png(&bob_card.qr().unwrap(), 4),
    )
    .unwrap();
    let alice_card = tern_protocol::ContactCard::from_invite_link(
        &alice.state().model.me.as_ref().unwrap().invite_link,
    )
    .unwrap();
    let other_png = dir.path().join("other.png");
    std::fs::write(
        &other_png,
        tern_gui::qr::matrix_png(&alice_card.qr().unwrap(), 4),
    )
    .unwrap();

    click(&mut alice, "Verify");
    type_into(&mut alice, "Their QR image", other_png.to_str().unwrap());
    click(&mut alice, "Scan");
    settle(&mut alice, "the refusal", |h| {
        has_label(h, "belongs to someone else")
    });
    assert!(
        !alice
            .state()
            .model
            .contact(&bob_key)
            .unwrap()
            .record
            .verified
    );

    alice.state_mut().model.dialog = None;
    alice.step();
    click(&mut alice, "Verify");
    type_into(&mut alice, "Their QR image", bob_png.to_str().unwrap());
    click(&mut alice, "Scan");
    settle(&mut alice, "verified by QR", |h| {
        h.state().model.contact(&bob_key).unwrap().record.verified
    });
    alice.state_mut().model.dialog = None;
    alice.step();
    assert!(
        !has_label(&alice, "safety number has changed"),
        "the warning is gone"
    );
    assert!(has_label(&alice, "✔ Verified"));
    shutdown(&mut alice);
    shutdown(&mut bob);
}

#[test]
fn bad_invites_and_pictures_get_clear_messages() {
    let root = tempfile::tempdir().unwrap();
    let mut h = app(root.path());
    create_profile(&mut h, "Alice");

    click(&mut h, "+ Add contact");
    type_into(&mut h, "Invite link", "tern:not-a-real-card");
    click(&mut h, "Add");
    assert!(has_label(&h, "That doesn't look like a Tern invite link"));
    assert!(h.state().model.contacts.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.png");
    image::GrayImage::from_pixel(80, 80, image::Luma([255]))
        .save(&blank)
        .unwrap();
    let not_tern = dir.path().join("url.png");
    std::fs::write(
        &not_tern,
        tern_gui::qr::matrix_png(
            &tern_protocol::QrMatrix::encode(b"https://example.org").unwrap(),
            4,
        ),
    )
    .unwrap();
    let not_image = dir.path().join("notes.txt");
    std::fs::write(&not_image, "hello").unwrap();

    for (path, message) in [
        (&blank, "no QR code found"),
        (&not_tern, "not a Tern invite"),
        (&not_image, "not an image"),
        (&dir.path().join("missing.png"), "Cannot open"),
    ] {
        h.state_mut().read_qr_file(path);
        h.step();
        assert!(has_label(&h, message), "{message}");
    }
    assert!(h.state().model.contacts.is_empty());
    shutdown(&mut h);
}

#[test]
fn a_long_history_lays_out_only_the_rows_in_view_and_loads_older_pages_on_scrolling_up() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("Long");
    let peer_dir = tempfile::tempdir().unwrap();
    {
        let mut engine = create(&dir, "Long");
        let peer = create(peer_dir.path(), "Pat");
        engine
            .add_contact(&peer.card().invite_link(), None)
            .unwrap();
        let mut batch = engine.store_mut().batch().unwrap();
        for i in 0..3_000u64 {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&i.to_be_bytes());
            batch
                .insert_message(&tern_testkit::demo::read_message(
                    tern_protocol::MessageId(id),
                    peer.key(),
                    i % 2 == 0,
                    1_700_000_000_000 + i * 60_000,
                    &format!("message number {i}"),
                ))
                .unwrap();
        }
        batch.commit().unwrap();
    }
    let mut h = app(root.path());
    h.step();
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    click(&mut h, "Pat");
    settle(&mut h, "the newest page", |h| {
        h.state().model.open.as_ref().is_some_and(|o| !o.loading)
            && has_label(h, "message number 2990")
    });
    let loaded = h.state().model.open.as_ref().unwrap().messages.len();
    assert_eq!(loaded, tern_gui::model::PAGE);
    let laid_out = h.state().rows_laid_out();
    assert!(
        laid_out > 3 && laid_out < 60,
        "{laid_out} rows laid out for a page of {loaded}"
    );
    assert!(
        !has_label(&h, "message number 2800"),
        "rows out of view are not laid out"
    );

    // A search result far back in the history: older pages are loaded until it is in view.
    type_into(&mut h, "Search", "message number 1234");
    h.key_press(egui::Key::Enter);
    h.step();
    settle(&mut h, "the search result", |h| {
        has_label(h, "1 result for")
    });
    h.get_by_label_contains("Pat · ").click();
    settle(&mut h, "the old message in view", |h| {
        h.state().model.search_results.is_none()
            && h.query_all_by(|n| {
                n.role() == Role::Label && n.value().as_deref() == Some("message number 1234")
            })
            .next()
            .is_some()
    });
    assert!(h.state().model.open.as_ref().unwrap().messages.len() >= 3_000 - 1_234);
    assert!(h.state().rows_laid_out() < 60);

    // Scrolling up to the top loads the older pages, one at a time.
    let chat = h
        .get_by(|n| n.role() == Role::Label && n.value().as_deref() == Some("message number 1234"))
        .rect()
        .center();
    for _ in 0..40 {
        h.hover_at(chat);
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, 5_000.0),
            modifiers: egui::Modifiers::NONE,
            phase: egui::TouchPhase::Move,
        });
        settle(&mut h, "the scroll", |h| {
            h.state().model.open.as_ref().is_some_and(|o| !o.loading)
        });
        if h.state().model.open.as_ref().unwrap().older.is_none() {
            break;
        }
    }
    let open = h.state().model.open.as_ref().unwrap();
    assert_eq!(open.messages.len(), 3_000, "every page was loaded");
    assert!(
        open.messages
            .windows(2)
            .all(|w| w[0].sort_ms() <= w[1].sort_ms())
    );
    assert!(h.state().rows_laid_out() < 60);
    shutdown(&mut h);
}

#[test]
fn replacing_the_prekey_in_settings_gives_a_new_invite_link() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    create_profile(&mut h, "Alice");
    let before = invite_link(&h);
    click(&mut h, "Settings");
    open_section(&mut h, "My profile");
    click(&mut h, "Replace prekey now");
    settle(&mut h, "the new invite link", |h| invite_link(h) != before);
    assert!(has_label(
        &h,
        "Prekey replaced: share your new invite link with contacts who have not written yet"
    ));
    shutdown(&mut h);
}

#[test]
fn disappearing_messages_set_in_one_app_show_in_both_conversations() {
    // `_dirs` is bound so the profile directories outlive the apps.
    let Pair {
        mut alice,
        mut bob,
        _dirs,
    } = pair();
    let (bob_link, alice_link) = (invite_link(&bob), invite_link(&alice));
    add_contact(&mut alice, &bob_link, "Bob");
    add_contact(&mut bob, &alice_link, "Alice");
    connect(&alice, &bob);
    let bob_key = my_key(&bob);
    settle(&mut alice, "Bob online", |h| {
        h.state().model.contact(&bob_key).is_some_and(|c| c.online)
    });
    click(&mut alice, "Bob");
    click(&mut bob, "Alice");
    assert!(has_label(&bob, "Disappearing messages: Off"));
    assert!(!has_label(&bob, "⏱"), "no timer mark while off");

    // Alice chooses "1 hour" in the header's menu.
    click(&mut alice, "Disappearing messages: Off");
    alice.get_by_label("1 hour").click();
    alice.step();
    settle(&mut alice, "Alice's notice and control", |h| {
        has_label(h, "You set disappearing messages to 1 hour")
            && has_label(h, "Disappearing messages: 1 hour")
    });
    assert!(has_label(&alice, "⏱ 1 hour"), "the header's timer mark");
    let line = alice
        .state()
        .model
        .open
        .as_ref()
        .unwrap()
        .messages
        .iter()
        .find(|m| m.text == "You set disappearing messages to 1 hour")
        .cloned()
        .unwrap();
    assert!(line.system, "a system line, drawn as a notice");

    // Bob's conversation shows Alice's change and his control follows it.
    settle(&mut bob, "Bob's notice and control", |h| {
        has_label(h, "Alice set disappearing messages to 1 hour")
            && has_label(h, "Disappearing messages: 1 hour")
    });
    assert!(has_label(&bob, "⏱ 1 hour"));

    // Bob turns it off again: both sides follow.
    click(&mut bob, "Disappearing messages: 1 hour");
    bob.get_by_label("Off").click();
    bob.step();
    settle(&mut bob, "Bob's control off", |h| {
        has_label(h, "You turned off disappearing messages")
            && has_label(h, "Disappearing messages: Off")
    });
    settle(&mut alice, "Alice's control off", |h| {
        has_label(h, "Bob turned off disappearing messages")
            && has_label(h, "Disappearing messages: Off")
    });
    assert!(!has_label(&alice, "⏱"), "the mark is gone");
    shutdown(&mut alice);
    shutdown(&mut bob);
}

/// Whether the accessibility tree has a node of `role` whose label (or text) is exactly `label`.
fn has_role_label(h: &Harness<'static, TernApp>, role: Role, label: &str) -> bool {
    h.query_all_by(|n| {
        n.role() == role
            && (n.label().as_deref() == Some(label) || n.value().as_deref() == Some(label))
    })
    .next()
    .is_some()
}

/// Types `text` into the open conversation's composer and sends it with Enter.
fn write(h: &mut Harness<'static, TernApp>, text: &str) {
    h.get_by_role(Role::MultilineTextInput).focus();
    h.step();
    h.get_by_role(Role::MultilineTextInput).type_text(text);
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
}

#[test]
fn a_group_is_made_in_a_dialog_talked_in_by_name_and_a_member_removed_from_the_members_panel() {
    let Pair {
        mut alice,
        mut bob,
        _dirs,
    } = pair();
    let (bob_link, alice_link) = (invite_link(&bob), invite_link(&alice));
    add_contact(&mut alice, &bob_link, "Bob");
    add_contact(&mut bob, &alice_link, "Alice");
    connect(&alice, &bob);
    let bob_key = my_key(&bob);
    settle(&mut alice, "Bob online", |h| {
        h.state().model.contact(&bob_key).is_some_and(|c| c.online)
    });

    // "New group" beside "+ Add contact": the name field has the focus; a group without a name is
    // refused inside the dialog, in plain words.
    click(&mut alice, "New group");
    assert!(
        alice
            .get_by(|n| is_field(n.role()) && n.label().as_deref() == Some("Group name"))
            .is_focused(),
        "the name field has the focus"
    );
    click(&mut alice, "Create group");
    assert!(has_label(&alice, "Give the group a name."));
    assert!(alice.state().model.groups.is_empty());
    // Tab stays inside the dialog: it never reaches the search field behind it.
    for _ in 0..6 {
        alice.key_press(egui::Key::Tab);
        alice.step();
        assert!(
            alice
                .query_all_by(|n| n.is_focused() && n.label().as_deref() == Some("Search"))
                .next()
                .is_none(),
            "Tab left the dialog"
        );
    }
    type_into(&mut alice, "Group name", "Climbing");
    alice.get_by_role_and_label(Role::CheckBox, "Bob").click();
    alice.step();
    // Enter in the name field makes the group.
    alice
        .get_by(|n| is_field(n.role()) && n.label().as_deref() == Some("Group name"))
        .focus();
    alice.step();
    alice.key_press(egui::Key::Enter);
    alice.step();
    settle(&mut alice, "the group, open, with Bob in it", |h| {
        let m = &h.state().model;
        m.dialog.is_none()
            && m.open_group().is_some()
            && m.groups.first().is_some_and(|g| g.members == 2)
    });
    settle(&mut alice, "the header and the group in the list", |h| {
        has_label(h, "👥 Climbing") && has_role_label(h, Role::Button, "Climbing")
    });

    // Bob's app shows the group he was added to; Alice writes in it.
    settle(&mut bob, "the group in Bob's list", |h| {
        has_role_label(h, Role::Button, "Climbing")
    });
    write(&mut alice, "Hi all, ropes at six");
    settle(&mut bob, "Alice's message in the list", |h| {
        has_label(h, "Alice: Hi all, ropes at six")
    });
    // An unread badge as for a 1:1 conversation, cleared once Bob opens the group.
    let unread = |h: &Harness<'static, TernApp>| {
        let rows = h.state().model.list_rows();
        rows.iter()
            .find(|r| r.key.is_group())
            .map_or(0, |r| r.unread)
    };
    let badge = unread(&bob);
    assert!(badge > 0, "the group's messages are unread");
    assert!(
        bob.query_by_value(&unread_label(badge)).is_some(),
        "the badge shows"
    );
    click(&mut bob, "Climbing");
    settle(&mut bob, "the badge clears", |h| unread(h) == 0);
    settle(&mut bob, "Alice's message with her name", |h| {
        has_label(h, "Hi all, ropes at six") && has_role_label(h, Role::Label, "From Alice")
    });
    assert!(has_label(&bob, "Alice added you"), "the system line shows");

    // Bob answers in the group; Alice reads it under his name.
    write(&mut bob, "Count me in");
    settle(&mut alice, "Bob's answer with his name", |h| {
        has_label(h, "Count me in") && has_role_label(h, Role::Label, "From Bob")
    });
    assert!(
        !has_role_label(&alice, Role::Label, "From Alice"),
        "her own messages carry no name"
    );

    // Search finds the group's message and opens the group at it.
    click(&mut alice, "Bob");
    type_into(&mut alice, "Search", "ropes");
    alice.key_press(egui::Key::Enter);
    alice.step();
    settle(&mut alice, "search results", |h| {
        has_label(h, "1 result for")
    });
    assert!(
        has_label(&alice, "Climbing · "),
        "the result names the group"
    );
    alice.get_by_label_contains("ropes at six").click();
    alice.step();
    settle(&mut alice, "the group open again", |h| {
        h.state().model.search_results.is_none() && h.state().model.open_group().is_some()
    });

    // Alice renames the group from its panel (the name field has the focus; Enter renames): Bob's
    // list follows.
    click(&mut alice, "Group info…");
    assert!(
        alice
            .get_by(|n| is_field(n.role()) && n.label().as_deref() == Some("Name"))
            .is_focused()
    );
    alice
        .get_by(|n| is_field(n.role()) && n.label().as_deref() == Some("Name"))
        .type_text(" club");
    alice.step();
    alice.key_press(egui::Key::Enter);
    alice.step();
    settle(&mut bob, "the new name in Bob's app", |h| {
        has_role_label(h, Role::Button, "Climbing club") && has_label(h, "👥 Climbing club")
    });
    assert!(
        has_label(&bob, "Alice renamed the group"),
        "the system line"
    );

    // Alice removes Bob from the members panel, after a confirmation with Cancel focused.
    settle(&mut alice, "the members with roles", |h| {
        has_label(h, "2 members") && has_role_label(h, Role::Button, "Remove Bob…")
    });
    assert!(has_role_label(&alice, Role::Label, "creator"));
    assert!(has_role_label(&alice, Role::Label, "member"));
    assert!(has_role_label(&alice, Role::Button, "Make Bob an admin"));
    assert!(has_role_label(&alice, Role::Button, "Leave group…"));
    click(&mut alice, "Remove Bob…");
    assert!(has_label(&alice, "Remove Bob from Climbing club?"));
    assert!(
        alice
            .get_by_role_and_label(Role::Button, "Cancel")
            .is_focused(),
        "Cancel has the focus"
    );
    click(&mut alice, "Remove from group");
    settle(&mut alice, "one member left", |h| {
        has_label(h, "1 member") && h.state().model.groups[0].members == 1
    });
    // The system line is its own update (the message list reloads after the member count).
    settle(&mut alice, "Alice's system line", |h| {
        has_label(h, "You removed Bob")
    });

    // Bob sees the removal and can no longer write.
    settle(&mut bob, "the removal", |h| {
        has_label(h, "Alice removed you")
            && has_label(h, "You are no longer a member of this group")
    });
    assert!(
        bob.query_by_role(Role::MultilineTextInput).is_none(),
        "no composer"
    );
    assert!(bob.state().model.groups.iter().all(|g| !g.active));

    // A member's panel offers only Leave; Bob's, once removed, nothing.
    click(&mut bob, "Group info…");
    settle(&mut bob, "Bob's panel", |h| {
        has_label(h, "You are no longer a member of this group.")
    });
    assert!(!has_role_label(&bob, Role::Button, "Leave group…"));
    assert!(!has_role_label(&bob, Role::Button, "Add member…"));
    shutdown(&mut alice);
    shutdown(&mut bob);
}

#[test]
fn a_member_who_is_not_a_contact_is_named_by_fingerprint_and_a_plain_member_may_only_leave() {
    let Pair {
        mut alice,
        mut bob,
        _dirs,
    } = pair();
    let carol_dir = tempfile::tempdir().unwrap();
    let mut carol = app(carol_dir.path());
    create_profile(&mut carol, "Carol");
    // Bob and Carol are not each other's contacts: each knows Alice only.
    let (alice_link, bob_link, carol_link) =
        (invite_link(&alice), invite_link(&bob), invite_link(&carol));
    add_contact(&mut alice, &bob_link, "Bob");
    add_contact(&mut alice, &carol_link, "Carol");
    add_contact(&mut bob, &alice_link, "Alice");
    add_contact(&mut carol, &alice_link, "Alice");
    connect(&bob, &alice);
    connect(&carol, &alice);
    let carol_key = my_key(&carol);

    click(&mut alice, "New group");
    type_into(&mut alice, "Group name", "Trip");
    alice.get_by_role_and_label(Role::CheckBox, "Bob").click();
    alice.step();
    alice.get_by_role_and_label(Role::CheckBox, "Carol").click();
    alice.step();
    click(&mut alice, "Create group");
    settle(&mut alice, "three members", |h| {
        h.state()
            .model
            .groups
            .first()
            .is_some_and(|g| g.members == 3)
    });

    // Carol writes; Bob, who does not know her, reads her message under her short fingerprint.
    settle(&mut carol, "the group in Carol's list", |h| {
        has_role_label(h, Role::Button, "Trip")
    });
    click(&mut carol, "Trip");
    write(&mut carol, "Carol here");
    settle(&mut bob, "the group in Bob's list", |h| {
        has_role_label(h, Role::Button, "Trip")
    });
    click(&mut bob, "Trip");
    let short = tern_gui::model::short_fingerprint(&carol_key);
    assert!(
        tern_protocol::Fingerprint::of(&carol_key)
            .to_string()
            .starts_with(short.trim_end_matches('…'))
    );
    settle(&mut bob, "Carol's message under her fingerprint", |h| {
        has_label(h, "Carol here") && has_role_label(h, Role::Label, &format!("From {short}"))
    });

    // A plain member's panel offers Leave only; leaving asks first.
    click(&mut bob, "Group info…");
    settle(&mut bob, "the members", |h| has_label(h, "3 members"));
    assert!(has_role_label(&bob, Role::Label, "creator"));
    assert!(has_role_label(&bob, Role::Button, "Leave group…"));
    for admin_only in [
        "Add member…",
        "Rename group",
        "Remove Alice…",
        "Make Alice an admin",
    ] {
        assert!(
            !has_role_label(&bob, Role::Button, admin_only),
            "{admin_only} is offered to a member"
        );
    }
    assert!(
        bob.query_all_by(
            |n| n.role() == Role::Button && n.label().is_some_and(|l| l.starts_with("Remove "))
        )
        .next()
        .is_none()
    );
    click(&mut bob, "Leave group…");
    assert!(has_label(&bob, "Leave Trip?"));
    click(&mut bob, "Leave group");
    settle(&mut alice, "Bob left", |h| {
        h.state().model.groups[0].members == 2
    });
    settle(&mut bob, "Bob is out", |h| {
        has_label(h, "You are no longer a member of this group")
            && h.query_by_role(Role::MultilineTextInput).is_none()
    });

    // The creator makes Carol an admin from the panel.
    click(&mut alice, "Trip");
    click(&mut alice, "Group info…");
    settle(&mut alice, "the members", |h| {
        has_role_label(h, Role::Button, "Make Carol an admin")
    });
    click(&mut alice, "Make Carol an admin");
    settle(&mut alice, "Carol an admin", |h| {
        has_role_label(h, Role::Label, "admin")
            && !has_role_label(h, Role::Button, "Make Carol an admin")
    });
    assert!(has_role_label(&alice, Role::Button, "Remove Carol…"));
    shutdown(&mut alice);
    shutdown(&mut bob);
    shutdown(&mut carol);
}

/// Issue 14: a file sent through the paperclip's path dialog and a picture dropped on the window arrive in Bob's app as cards: the file offers "Save as…" once it is whole, saving
/// refuses to replace a file until asked and then writes the sent bytes; the picture shows its preview.
#[test]
fn files_sent_between_two_apps_show_as_cards_save_byte_for_byte_and_pictures_show_previews() {
    use tern_gui::file_card::METADATA_REMOVED;

    let Pair {
        mut alice,
        mut bob,
        _dirs,
    } = pair();
    let (bob_link, alice_link) = (invite_link(&bob), invite_link(&alice));
    add_contact(&mut alice, &bob_link, "Bob");
    add_contact(&mut bob, &alice_link, "Alice");
    connect(&alice, &bob);
    let bob_key = my_key(&bob);
    settle(&mut alice, "Bob online", |h| {
        h.state().model.contact(&bob_key).is_some_and(|c| c.online)
    });
    let files = tempfile::tempdir().unwrap();
    let notes = files.path().join("notes.txt");
    let content: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&notes, &content).unwrap();

    // Alice: the paperclip, a path, Enter.
    click(&mut alice, "Bob");
    click(&mut alice, "Send a file");
    type_into(&mut alice, "File", "/no/such/file.txt");
    alice.key_press(egui::Key::Enter);
    alice.step();
    settle(&mut alice, "the unreadable file said plainly", |h| {
        has_label(h, "Tern can't read /no/such/file.txt")
    });
    click(&mut alice, "Close");
    click(&mut alice, "Send a file");
    type_into(&mut alice, "File", notes.to_str().unwrap());
    alice.key_press(egui::Key::Enter);
    alice.step();
    settle(&mut alice, "the sent card", |h| {
        h.state().model.dialog.is_none() && has_label(h, "📄 notes.txt")
    });

    // Bob: the card, live until the file is whole, then "Save as…".
    settle(&mut bob, "the conversation listed", |h| {
        !h.state().model.conversations.is_empty()
    });
    click(&mut bob, "Alice");
    settle(&mut bob, "the card with Save as…", |h| {
        has_label(h, "📄 notes.txt") && h.query_by_label("Save as…").is_some()
    });
    assert!(has_label(&bob, "68 KB · Downloaded"));
    click(&mut bob, "Save as…");
    let field = |h: &Harness<'static, TernApp>| {
        h.get_by(|n| is_field(n.role()) && n.label().as_deref() == Some("Save to"))
            .value()
            .unwrap_or_default()
    };
    assert!(
        field(&bob).ends_with("Downloads/notes.txt"),
        "{}",
        field(&bob)
    );
    // Somewhere else, where a file of that name is already.
    let dest = files.path().join("saved.txt");
    std::fs::write(&dest, b"keep me").unwrap();
    bob.get_by(|n| is_field(n.role()) && n.label().as_deref() == Some("Save to"))
        .focus();
    bob.step();
    bob.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    bob.step();
    type_into(&mut bob, "Save to", dest.to_str().unwrap());
    assert_eq!(field(&bob), dest.to_str().unwrap());
    click(&mut bob, "Save");
    settle(&mut bob, "the refusal to replace", |h| {
        has_label(h, "There is already a file named saved.txt there")
    });
    assert_eq!(std::fs::read(&dest).unwrap(), b"keep me");
    let replace = "Replace it if a file with that name is there";
    bob.step();
    bob.get_by_label(replace).click();
    bob.step();
    bob.step();
    assert!(
        bob.query_by(|n| n.label().as_deref() == Some(replace)
            && n.toggled() == Some(egui::accesskit::Toggled::True))
            .is_some(),
        "ticked"
    );
    click(&mut bob, "Save");
    settle(&mut bob, "saved", |h| {
        h.state().model.dialog.is_none() && has_label(h, "Saved to")
    });
    assert_eq!(std::fs::read(&dest).unwrap(), content, "the bytes sent");
    assert!(bob.state().model.dialog.is_none());

    // A picture dropped on Alice's window.
    let picture = files.path().join("red.png");
    let mut png = Vec::new();
    image::RgbaImage::from_fn(64, 48, |x, y| {
        image::Rgba([200, (x * 4) as u8, (y * 5) as u8, 255])
    })
    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
    .unwrap();
    std::fs::write(&picture, with_text_chunk(&png, b"Location\0Home")).unwrap();
    alice.input_mut().dropped_files.push(egui::DroppedFile {
        path: Some(picture),
        ..Default::default()
    });
    alice.step();
    settle(&mut alice, "the picture's card", |h| {
        has_label(h, "📄 red.png")
    });
    assert!(
        has_label(&alice, METADATA_REMOVED),
        "said on the sent picture"
    );
    settle(&mut bob, "the picture's preview, drawn as an image", |h| {
        h.query_by(|n| {
            n.role() == Role::Image && n.label().as_deref() == Some("Preview of red.png")
        })
        .is_some()
    });

    // Alice withdraws the picture (the newest card), after a confirmation; the text file stays offered.
    let picture_withdraw = |h: &Harness<'static, TernApp>| {
        let buttons: Vec<_> = h
            .query_all_by_role_and_label(Role::Button, "Withdraw…")
            .collect();
        assert_eq!(buttons.len(), 2, "each file Alice sent offers it");
        buttons[1].rect()
    };
    // Scrolled into view first: a click lands where the button is drawn now.
    let mut last = None;
    for _ in 0..8 {
        alice
            .query_all_by_role_and_label(Role::Button, "Withdraw…")
            .nth(1)
            .expect("the picture's button")
            .scroll_to_me();
        alice.step();
        let rect = picture_withdraw(&alice);
        if last == Some(rect) {
            break;
        }
        last = Some(rect);
    }
    alice
        .query_all_by_role_and_label(Role::Button, "Withdraw…")
        .nth(1)
        .expect("the picture's button")
        .click();
    alice.step();
    settle(&mut alice, "the confirmation", |h| {
        has_label(h, "Withdraw this file?")
    });
    click(&mut alice, "Withdraw file");
    settle(&mut alice, "the picture withdrawn", |h| {
        has_label(h, "Withdrawn")
    });
    assert_eq!(
        alice
            .query_all_by_role_and_label(Role::Button, "Withdraw…")
            .count(),
        1,
        "the text file is still offered"
    );
    shutdown(&mut alice);
    shutdown(&mut bob);
}

/// `png` with a tEXt chunk (metadata a sender's app strips) right after its header.
fn with_text_chunk(png: &[u8], text: &[u8]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    // The signature (8 bytes) and IHDR (4 + 4 + 13 + 4).
    let (head, rest) = png.split_at(33);
    let mut typed = b"tEXt".to_vec();
    typed.extend_from_slice(text);
    let mut out = head.to_vec();
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
    out.extend_from_slice(rest);
    out
}
