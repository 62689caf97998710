//! Issue 16 item 6 through the accessibility tree (egui_kittest), with a real node behind the app:
//! a message can be copied from its menu, deleted for me after a confirmation (and stays gone when the
//! conversation is read again from the store), its Info shows its times, web links are links, a long
//! message's bubble keeps a readable width in a wide window, a reply shows what it answers; and (item 5) the QR pictures in "Verify"
//! and "Add contact" have the desktop's chooser beside their fields (that "Choose…" asks for the
//! chooser is `dialogs::file_path`'s unit test: clicking it here would open a real one). Item 8, the
//! visual pass: avatars with their contact's initials and colour, a dialog that dims the window and
//! keeps its width, and times and statuses no smaller than the type scale's small size.

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use tern_gui::bubble::{MAX_BUBBLE_WIDTH, MENU_LABEL};
use tern_gui::dialogs::message_info::NO_RECEIPT_TIMES;
use tern_gui::model::{Confirm, Dialog, MessageStatus};
use tern_gui::timefmt;

mod support;
use support::{
    App, click, click_role, has_label, pictures_drawn, settle, shutdown, type_in_composer,
    type_into, unlocked_with, unlocked_with_mail,
};

/// Opens `name`'s conversation and waits until its `count` messages are loaded.
fn open_conversation(h: &mut App, name: &str, count: usize) {
    click(h, name);
    settle(h, "the conversation's messages", |h| {
        h.state()
            .model
            .open
            .as_ref()
            .is_some_and(|o| !o.loading && o.messages.len() == count)
    });
    h.step();
}

/// The texts of the open conversation, oldest first.
fn texts(h: &App) -> Vec<String> {
    h.state()
        .model
        .open
        .as_ref()
        .map(|o| o.messages.iter().map(|m| m.text.clone()).collect())
        .unwrap_or_default()
}

/// The bounds of the message text `text` in its bubble (the rightmost node showing it: the
/// conversation list may show it too).
fn bubble_text_rect(h: &App, text: &str) -> egui::Rect {
    h.query_all_by(|n| {
        n.role() == Role::Label
            && (n.label().as_deref() == Some(text) || n.value().as_deref() == Some(text))
    })
    .map(|n| n.rect())
    .max_by(|a, b| a.min.x.total_cmp(&b.min.x))
    .unwrap_or_else(|| panic!("no bubble shows {text:?}"))
}

/// Right-clicks the middle of the bubble text `text`, as a mouse does, and draws the frames that
/// open its menu.
fn right_click(h: &mut App, text: &str) {
    let pos = bubble_text_rect(h, text).center();
    h.event(egui::Event::PointerMoved(pos));
    h.step();
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Secondary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        h.step();
    }
    h.step();
}

#[test]
fn the_message_menu_copies_the_text_and_info_shows_the_times_and_links_are_links() {
    let text = "the plan: https://example.org/tern?day=1 今天 مرحبا";
    let (mut h, _dirs) = unlocked_with_mail(&["Pat"], &[text]);
    open_conversation(&mut h, "Pat", 1);

    // The address is a link to itself; the text around it stays text.
    let link = h.get_by_role(Role::Link);
    assert_eq!(
        link.accesskit_node().label().as_deref(),
        Some("https://example.org/tern?day=1")
    );
    assert!(has_label(&h, "the plan: "));
    assert!(has_label(&h, " 今天 مرحبا"));
    let opens_url = |h: &App| {
        h.output()
            .platform_output
            .commands
            .iter()
            .any(|c| matches!(c, egui::OutputCommand::OpenUrl(o) if o.url == "https://example.org/tern?day=1"))
    };
    assert!(!opens_url(&h), "nothing opens a link unless it is clicked");
    h.get_by_role(Role::Link).click();
    h.step();
    assert!(opens_url(&h), "a click opens it");
    h.step();

    // Copy, from the "…" button (the keyboard's and screen readers' way to the menu).
    h.get_by_role_and_label(Role::Button, MENU_LABEL).click();
    h.step();
    h.step();
    h.get_by_role_and_label(Role::Button, "Copy").click();
    h.step();
    assert!(
        h.output()
            .platform_output
            .commands
            .contains(&egui::OutputCommand::CopyText(text.to_owned())),
        "the whole message is on the clipboard: {:?}",
        h.output().platform_output.commands
    );
    h.step();
    assert!(has_label(&h, "Copied"), "a short toast says so");
    assert!(
        h.query_by_role_and_label(Role::Button, "Copy").is_none(),
        "the menu closed"
    );

    // Info: when it was sent (by the sender's clock) and when it arrived here, and its status.
    let m = h.state().model.open.as_ref().unwrap().messages[0].clone();
    h.get_by_role_and_label(Role::Button, MENU_LABEL).click();
    h.step();
    h.step();
    click(&mut h, "Info");
    assert_eq!(h.state().model.dialog, Some(Dialog::MessageInfo));
    assert!(has_label(&h, "Message info"));
    assert!(has_label(&h, "From: Pat"));
    assert!(has_label(
        &h,
        &format!("Sent: {} (the sender's clock)", timefmt::full(m.sent_at_ms))
    ));
    assert!(has_label(
        &h,
        &format!("Received: {}", timefmt::full(m.received_at_ms))
    ));
    assert!(has_label(&h, "Status: "));
    // Opening the conversation read Pat's message: the node says when, and the dialog shows it.
    settle(&mut h, "the read time", |h| has_label(h, "Read by you: "));
    click(&mut h, "Close");
    assert_eq!(h.state().model.dialog, None);

    // My own message's Info: it is not delivered yet, so no delivery or read time, and no excuse for one.
    type_in_composer(&mut h, "on my way");
    h.key_press(egui::Key::Enter);
    settle(&mut h, "my message in the view", |h| texts(h).len() == 2);
    h.step();
    let mine = h.state().model.open.as_ref().unwrap().messages[1].clone();
    assert!(mine.outgoing());
    let menus: Vec<_> = h
        .query_all_by_role_and_label(Role::Button, MENU_LABEL)
        .collect();
    assert_eq!(menus.len(), 2, "a menu button on each bubble");
    right_click(&mut h, "on my way");
    click(&mut h, "Info");
    assert!(has_label(
        &h,
        &format!("Sent: {}", timefmt::full(mine.sent_at_ms))
    ));
    assert!(has_label(&h, "From: you"));
    for _ in 0..3 {
        h.step();
    }
    assert!(!has_label(&h, "Delivered: "));
    assert!(!has_label(&h, "Read: "));
    assert!(!has_label(&h, NO_RECEIPT_TIMES));
    shutdown(&mut h);
}

#[test]
fn delete_for_me_asks_first_then_the_message_is_gone_also_after_reading_the_conversation_again() {
    let (mut h, _dirs) = unlocked_with_mail(&["Pat", "Sam"], &["keep this one", "delete this one"]);
    open_conversation(&mut h, "Pat", 2);

    // A right click on the bubble opens its menu.
    right_click(&mut h, "delete this one");
    click(&mut h, "Delete for me…");
    let id = h.state().model.open.as_ref().unwrap().messages[1].id;
    assert!(matches!(
        h.state().model.confirm,
        Some(Confirm::DeleteMessage { id: asked, .. }) if asked == id
    ));
    assert!(has_label(&h, "Delete this message for you?"));
    assert!(has_label(&h, "Pat keeps their copy"));
    // Cancel keeps it.
    click(&mut h, "Cancel");
    assert_eq!(h.state().model.confirm, None);
    assert_eq!(texts(&h), ["keep this one", "delete this one"]);

    right_click(&mut h, "delete this one");
    click(&mut h, "Delete for me…");
    click(&mut h, "Delete for me");
    settle(&mut h, "the message deleted", |h| {
        texts(h) == ["keep this one"] && has_label(h, "Message deleted")
    });
    assert!(!has_label(&h, "delete this one"), "not drawn anywhere");
    assert!(has_label(&h, "keep this one"));

    // Read from the store again: still gone.
    open_conversation(&mut h, "Sam", 0);
    open_conversation(&mut h, "Pat", 1);
    assert_eq!(texts(&h), ["keep this one"]);
    assert!(!has_label(&h, "delete this one"));
    shutdown(&mut h);
}

#[test]
fn dragging_across_a_message_selects_it_and_copy_takes_the_selection() {
    let (mut h, _dirs) = unlocked_with_mail(&["Pat"], &["select me please"]);
    open_conversation(&mut h, "Pat", 1);
    let rect = bubble_text_rect(&h, "select me please");
    let (from, to) = (
        rect.left_center() + egui::vec2(1.0, 0.0),
        rect.right_center() - egui::vec2(1.0, 0.0),
    );
    let button = |pos, pressed| egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    };
    for event in [
        egui::Event::PointerMoved(from),
        button(from, true),
        egui::Event::PointerMoved(to),
        button(to, false),
    ] {
        h.event(event);
        h.step();
    }
    // What Ctrl+C sends.
    h.event(egui::Event::Copy);
    h.step();
    assert!(
        h.output()
            .platform_output
            .commands
            .contains(&egui::OutputCommand::CopyText(
                "select me please".to_owned()
            )),
        "{:?}",
        h.output().platform_output.commands
    );
    shutdown(&mut h);
}

#[test]
fn a_long_messages_bubble_keeps_a_readable_width_in_a_wide_window() {
    let long = "word ".repeat(400).trim_end().to_owned();
    let (mut h, _dirs) = unlocked_with_mail(&["Pat"], &[&long, "short"]);
    h.set_size(egui::vec2(2400.0, 900.0));
    h.step();
    open_conversation(&mut h, "Pat", 2);
    let rect = bubble_text_rect(&h, &long);
    assert!(
        rect.width() <= MAX_BUBBLE_WIDTH,
        "the text is {} wide, the cap is {MAX_BUBBLE_WIDTH}",
        rect.width()
    );
    assert!(
        rect.width() > MAX_BUBBLE_WIDTH * 0.8,
        "and it does use the width it has: {}",
        rect.width()
    );
    assert!(rect.height() > 100.0, "wrapped onto many lines");
    // The short one is as narrow as its text and the time under it.
    assert!(bubble_text_rect(&h, "short").width() < 100.0);
    shutdown(&mut h);
}

/// Whether a "Choose…" button sits on the right of the text field labelled `field`, in its row.
fn chooser_beside(h: &App, field: &str) -> bool {
    let field = h
        .get_by(|n| n.role() == Role::TextInput && n.label().as_deref() == Some(field))
        .rect();
    h.query_all_by_role_and_label(Role::Button, "Choose…")
        .map(|b| b.rect())
        .any(|b| (b.center().y - field.center().y).abs() < 4.0 && b.min.x > field.max.x)
}

#[test]
fn the_qr_pictures_in_verify_and_add_contact_have_the_desktops_chooser_beside_their_fields() {
    let (mut h, _dirs) = unlocked_with(&["Pat"]);
    open_conversation(&mut h, "Pat", 0);
    click(&mut h, "Verify");
    assert_eq!(h.state().model.dialog, Some(Dialog::Verify));
    assert!(chooser_beside(&h, "Their QR image"));
    assert!(h.query_by_role_and_label(Role::Button, "Scan").is_some());
    click(&mut h, "Close");
    click(&mut h, "+ Add contact");
    assert_eq!(h.state().model.dialog, Some(Dialog::AddContact));
    assert!(chooser_beside(&h, "QR image"));
    assert!(
        h.query_by_role_and_label(Role::Button, "Read QR image")
            .is_some()
    );
    shutdown(&mut h);
}

#[test]
fn a_reply_shows_what_it_answers_in_the_composer_and_on_its_bubble() {
    let asked = "are we still on for Friday? 🍕";
    let (mut h, _dirs) = unlocked_with_mail(&["Pat"], &[asked]);
    open_conversation(&mut h, "Pat", 1);
    let asked_id = h.state().model.open.as_ref().unwrap().messages[0].id;
    let replying = format!("Replying to Pat: {asked}");

    // "Reply" in the menu names the message above the composer; the ✕ lets go of it.
    right_click(&mut h, asked);
    click(&mut h, "Reply");
    assert!(has_label(&h, &replying));
    click(&mut h, "Cancel the reply");
    assert!(!has_label(&h, &replying));

    right_click(&mut h, asked);
    click(&mut h, "Reply");
    type_in_composer(&mut h, "yes, 7pm");
    h.key_press(egui::Key::Enter);
    settle(&mut h, "the reply in the view", |h| texts(h).len() == 2);
    h.step();
    let reply = h.state().model.open.as_ref().unwrap().messages[1].clone();
    assert_eq!(reply.text, "yes, 7pm");
    assert_eq!(reply.reply_to, Some(asked_id), "stored as a reply");
    assert!(
        has_label(&h, &format!("Reply to Pat: {asked}")),
        "its bubble shows what it answers"
    );
    assert!(!has_label(&h, &replying), "the composer let go of it");
    // The emoji is a colour picture in the question's bubble and in the reply's quote.
    let pizzas = pictures_drawn(&h.ctx, &h.output().shapes, "emoji 🍕");
    assert_eq!(pizzas.len(), 2, "{pizzas:?}");
    shutdown(&mut h);
}

/// Whether a bubble shows exactly `text` now (the chat lays out only the rows in view).
fn bubble_in_view(h: &App, text: &str) -> bool {
    h.query_all_by(|n| {
        n.role() == Role::Label
            && (n.label().as_deref() == Some(text) || n.value().as_deref() == Some(text))
    })
    .next()
    .is_some()
}

#[test]
fn a_click_on_a_replys_quote_brings_the_answered_message_into_view() {
    let asked = "are we still on for Friday?";
    let mut mail = vec![asked.to_owned()];
    mail.extend((1..=40).map(|i| format!("and another thing, number {i}")));
    let mail: Vec<&str> = mail.iter().map(String::as_str).collect();
    let (mut h, _dirs) = unlocked_with_mail(&["Pat"], &mail);
    open_conversation(&mut h, "Pat", mail.len());
    assert!(
        !bubble_in_view(&h, asked),
        "the newest messages are in view, not the first"
    );

    // Bring it up to answer it; sending the reply takes the view back down.
    let open = h.state().model.open.as_ref().unwrap();
    let (pat, asked_id) = (open.conversation, open.messages[0].id);
    h.state_mut().open_conversation(pat, Some(asked_id));
    settle(&mut h, "the first message in view", |h| {
        bubble_in_view(h, asked)
    });
    // The scroll lands over a few frames: click where the bubble comes to rest.
    let mut at = bubble_text_rect(&h, asked);
    for _ in 0..8 {
        h.step();
        let now = bubble_text_rect(&h, asked);
        if now == at {
            break;
        }
        at = now;
    }
    right_click(&mut h, asked);
    click(&mut h, "Reply");
    type_in_composer(&mut h, "yes, 7pm");
    h.key_press(egui::Key::Enter);
    settle(
        &mut h,
        "the reply in view, the first message out of it",
        |h| bubble_in_view(h, "yes, 7pm") && !bubble_in_view(h, asked),
    );

    click_role(&mut h, Role::Link, &format!("Reply to Pat: {asked}"));
    settle(&mut h, "the answered message in view", |h| {
        bubble_in_view(h, asked)
    });
    shutdown(&mut h);
}

#[test]
fn paste_a_picture_sends_the_clipboards_picture_whose_preview_opens_it_whole_or_says_there_is_none()
{
    use std::sync::Arc;
    use tern_gui::backend::{Clipboard, ClipboardPicture};
    use tern_gui::screens::conversation::PASTE_PICTURE;

    let (mut h, _dirs) = unlocked_with(&["Pat"]);
    open_conversation(&mut h, "Pat", 0);

    // Nothing on the clipboard: said once, nothing sent.
    h.state_mut().backend.clipboard = Clipboard::Fixed(None);
    click(&mut h, PASTE_PICTURE);
    settle(&mut h, "the empty clipboard said plainly", |h| {
        has_label(h, "There is no picture on the clipboard")
    });
    assert!(texts(&h).is_empty());

    // A picture: it goes as a PNG file, with its preview in the bubble.
    let pixels: Vec<u8> = (0..64 * 48)
        .flat_map(|i| [(i % 64 * 4) as u8, (i / 64 * 5) as u8, 90, 255])
        .collect();
    h.state_mut().backend.clipboard = Clipboard::Fixed(Some(ClipboardPicture {
        width: 64,
        height: 48,
        rgba: Arc::new(pixels),
    }));
    click(&mut h, PASTE_PICTURE);
    settle(&mut h, "the pasted picture's card", |h| {
        h.state().model.open.as_ref().is_some_and(|o| {
            o.messages
                .iter()
                .any(|m| m.attachment.as_ref().is_some_and(|a| a.thumbnail.is_some()))
        })
    });
    let attachment = h.state().model.open.as_ref().unwrap().messages[0]
        .attachment
        .clone()
        .unwrap();
    assert!(
        attachment.name.starts_with("pasted-") && attachment.name.ends_with(".png"),
        "{}",
        attachment.name
    );
    assert_eq!(attachment.media_type, "image/png");
    h.step();
    assert!(has_label(&h, &format!("📄 {}", attachment.name)));

    // A click on the preview opens the whole picture; Close puts it away.
    h.get_by_label(&format!("Preview of {}", attachment.name))
        .click();
    settle(&mut h, "the picture at full size", |h| {
        h.state().model.dialog == Some(Dialog::Picture)
    });
    h.step();
    let shown = h.state().model.picture.clone().unwrap();
    assert_eq!(shown.image.size, [64, 48], "the pasted picture, whole");
    assert!(
        h.query_by_label(&format!("The picture {}", attachment.name))
            .is_some()
    );
    click(&mut h, "Close");
    assert!(h.state().model.picture.is_none(), "its pixels are let go");
    shutdown(&mut h);
}

/// Every shape drawn in the last frame, nested lists opened.
fn drawn_shapes(h: &App) -> Vec<egui::Shape> {
    fn flatten(shape: &egui::Shape, out: &mut Vec<egui::Shape>) {
        match shape {
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| flatten(s, out)),
            other => out.push(other.clone()),
        }
    }
    let mut out = Vec::new();
    for clipped in &h.output().shapes {
        flatten(&clipped.shape, &mut out);
    }
    out
}

/// Whether the dim layer (a rect of `theme::DIM` over the whole window) was drawn in the last frame.
fn dimmed(h: &App) -> bool {
    let window = h.ctx.content_rect();
    drawn_shapes(h).iter().any(|s| {
        matches!(s, egui::Shape::Rect(r) if r.fill == tern_gui::theme::DIM && r.rect.contains_rect(window))
    })
}

/// The fills of the rects drawn as the frame of the button labelled `label` (as big as it, give or
/// take egui's expansion of a hovered frame).
fn button_fills(h: &App, label: &str) -> Vec<egui::Color32> {
    let button = h.get_by_role_and_label(Role::Button, label).rect();
    let framed =
        |r: egui::Rect| r.expand(2.0).contains_rect(button) && button.expand(2.0).contains_rect(r);
    drawn_shapes(h)
        .iter()
        .filter_map(|s| match s {
            egui::Shape::Rect(r) if framed(r.rect) => Some(r.fill),
            _ => None,
        })
        .collect()
}

/// The rect of the open dialog titled `title` (its window node in the accessibility tree).
fn dialog_rect(h: &App, title: &str) -> Option<egui::Rect> {
    h.query_by_role_and_label(Role::Window, &tern_gui::dialogs::label(title))
        .map(|n| n.rect())
}

#[test]
fn avatars_show_initials_on_the_contacts_own_colour_in_the_list_and_the_header() {
    use tern_gui::avatar;
    let (mut h, _dirs) = unlocked_with(&["Pat Lee", "Жанна"]);
    let colour_of = |h: &App, name: &str| {
        let contact = h.state().model.contacts.iter().find(|c| c.name() == name);
        avatar::colour(&contact.unwrap().key().into())
    };
    let circles_in = |h: &App, rect: egui::Rect| -> Vec<egui::Color32> {
        drawn_shapes(h)
            .iter()
            .filter_map(|s| match s {
                egui::Shape::Circle(c) if rect.contains(c.center) => Some(c.fill),
                _ => None,
            })
            .collect()
    };
    h.step();
    for (name, initials) in [("Pat Lee", "PL"), ("Жанна", "Ж")] {
        let label = avatar::label(initials);
        let rect = h.get_by_role_and_label(Role::Image, &label).rect();
        assert_eq!(
            circles_in(&h, rect),
            vec![colour_of(&h, name)],
            "{name}'s avatar"
        );
    }
    // The open conversation's header has the same avatar.
    click(&mut h, "Pat Lee");
    let header = h
        .query_all_by(|n| n.role() == Role::Image && n.label().as_deref() == Some("Avatar PL"))
        .count();
    assert_eq!(header, 2, "the list's and the header's");
    shutdown(&mut h);
}

#[test]
fn a_dialog_dims_the_window_keeps_its_width_has_a_primary_action_and_the_dim_goes_when_it_closes() {
    let (mut h, _dirs) = unlocked_with(&["Pat"]);
    h.step();
    assert!(!dimmed(&h), "no dialog: nothing dimmed");
    click(&mut h, "+ Add contact");
    assert!(dimmed(&h), "the window behind the dialog is dimmed");
    let before = dialog_rect(&h, "Add contact").expect("the dialog is named for screen readers");
    // Its action is the primary button (white on the accent); Close is a quiet one.
    assert_eq!(button_fills(&h, "Add"), vec![tern_gui::widgets::PRIMARY]);
    let close = button_fills(&h, "Close");
    assert!(
        !close.is_empty() && close.iter().all(|&fill| fill == egui::Color32::TRANSPARENT),
        "{close:?}"
    );
    let long = "tern:a-long-invite-that-does-not-fit-".repeat(20);
    type_into(&mut h, "Invite link", &long);
    type_into(&mut h, "Name (optional)", &long);
    h.step();
    let after = dialog_rect(&h, "Add contact").unwrap();
    assert_eq!(after.width(), before.width(), "as wide after typing");
    h.key_press(egui::Key::Escape);
    h.step();
    h.step();
    assert_eq!(h.state().model.dialog, None);
    assert!(dialog_rect(&h, "Add contact").is_none());
    assert!(!dimmed(&h), "the dim went with the dialog");
    shutdown(&mut h);
}

#[test]
fn times_and_statuses_are_drawn_at_least_at_the_small_size_of_the_type_scale() {
    let (mut h, _dirs) = unlocked_with_mail(&["Pat"], &["lunch at noon?"]);
    open_conversation(&mut h, "Pat", 1);
    type_in_composer(&mut h, "yes, at one");
    h.key_press(egui::Key::Enter);
    settle(&mut h, "the sent message", |h| texts(h).len() == 2);
    h.step();
    let clock = {
        let open = h.state().model.open.as_ref().unwrap();
        timefmt::clock(open.messages[0].sort_ms())
    };
    let sizes = |h: &App, text: &str| -> Vec<f32> {
        drawn_shapes(h)
            .iter()
            .filter_map(|s| match s {
                egui::Shape::Text(t) if t.galley.job.text == text => {
                    t.galley.job.sections.first().map(|s| s.format.font_id.size)
                }
                _ => None,
            })
            .collect()
    };
    let small = tern_gui::theme::SMALL;
    let times = sizes(&h, &clock);
    assert!(!times.is_empty(), "the time {clock} is drawn");
    assert!(times.iter().all(|&s| s >= small), "{times:?}");
    let statuses: Vec<f32> = [
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
    ]
    .into_iter()
    .flat_map(|status| sizes(&h, tern_gui::widgets::status_text(status)))
    .collect();
    assert!(!statuses.is_empty(), "the sent message's status is drawn");
    assert!(statuses.iter().all(|&s| s >= small), "{statuses:?}");
    shutdown(&mut h);
}
