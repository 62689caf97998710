//! The real app driven through its accessibility tree (egui_kittest), with real nodes behind it on
//! 127.0.0.1: profiles, unlocking, contacts, a conversation between two app instances, verification,
//! key changes and bad input.

use std::path::Path;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use tern_gui::model::Screen;
use tern_gui::screens::conversation_list::unread_label;
use tern_gui::{Options, TernApp};
use tern_node::api::{ConversationId, Event, MessageStatus};
use tern_node::profile::KdfParams;
use tern_protocol::IdentityKey;
use tern_testkit::net::{loopback_settings, with_peer};
use tern_testkit::profile::{PASSWORD, create};
use tern_testkit::wait::TIMEOUT;

#[path = "../support/mod.rs"]
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
fn my_code_says_how_to_give_the_invite_and_adding_a_contact_opens_its_conversation() {
    let Pair {
        mut alice,
        mut bob,
        _dirs,
    } = pair();
    // The empty window says how to start a conversation.
    assert!(has_label(
        &alice,
        tern_gui::screens::main_window::EMPTY_STATE
    ));

    // "My code" is titled so, says what to do with it, and shows the link itself, not a contact's
    // verification.
    click(&mut alice, "My code");
    assert_eq!(
        alice.state().model.dialog,
        Some(tern_gui::model::Dialog::MyCode)
    );
    assert!(has_label(&alice, "My code"));
    assert!(has_label(&alice, tern_gui::dialogs::verify::MY_CODE_HELP));
    let link = invite_link(&alice);
    assert!(has_label(&alice, &link), "the invite link as text");
    assert!(
        alice
            .query_by_role_and_label(Role::Button, "Copy invite link")
            .is_some()
    );
    assert!(!has_label(
        &alice,
        "Open a conversation to verify that contact."
    ));
    click(&mut alice, "Close");

    // Adding Bob opens his conversation, ready for a first message.
    let bob_key = my_key(&bob);
    add_contact(&mut alice, &invite_link(&bob), "Bob");
    settle(&mut alice, "Bob's conversation open", |h| {
        h.state()
            .model
            .open
            .as_ref()
            .is_some_and(|o| o.conversation == ConversationId::Direct(bob_key))
    });
    shutdown(&mut alice);
    shutdown(&mut bob);
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
    // Once verified, the dialog no longer offers to mark it (or to scan a picture) again.
    alice.step();
    for offered in ["The numbers match: mark verified", "Scan"] {
        assert!(
            alice
                .query_by_role_and_label(Role::Button, offered)
                .is_none(),
            "{offered} still offered"
        );
    }
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

mod files;
mod groups;
