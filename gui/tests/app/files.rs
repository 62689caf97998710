//! Files between two apps: cards, saving byte for byte, picture previews.

use super::*;

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
