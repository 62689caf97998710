//! Groups in the app: made in a dialog, talked in by name, members added and removed from the members
//! panel, and a member who is not a contact.

use super::*;

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

#[test]
fn a_stranger_joins_with_a_link_the_admin_made_and_approved_in_the_group_panel() {
    let Pair {
        mut alice,
        mut bob,
        _dirs,
    } = pair();
    // Kim is nobody's contact.
    let kim_dir = tempfile::tempdir().unwrap();
    let mut kim = app(kim_dir.path());
    create_profile(&mut kim, "Kim");
    let (alice_link, bob_link) = (invite_link(&alice), invite_link(&bob));
    add_contact(&mut alice, &bob_link, "Bob");
    add_contact(&mut bob, &alice_link, "Alice");
    connect(&bob, &alice);
    connect(&kim, &alice);

    click(&mut alice, "New group");
    type_into(&mut alice, "Group name", "Book club");
    alice.get_by_role_and_label(Role::CheckBox, "Bob").click();
    alice.step();
    click(&mut alice, "Create group");
    settle(&mut alice, "the group with Bob", |h| {
        h.state()
            .model
            .groups
            .first()
            .is_some_and(|g| g.members == 2)
    });

    // In the group panel: an approval link. The panel's members and links are read from the node as it
    // opens; once both are drawn its layout stays, so a click lands where the widget was found.
    click(&mut alice, "Group info…");
    let group = alice.state().model.groups[0].id;
    settle(&mut alice, "the panel's members and links", |h| {
        has_label(h, "2 members") && h.state().model.links.by_group.contains_key(&group)
    });
    alice.step();
    let approve = "Approve each person who asks to join";
    alice.get_by_role_and_label(Role::CheckBox, approve).click();
    alice.step();
    alice.step();
    assert_eq!(
        alice
            .get_by_role_and_label(Role::CheckBox, approve)
            .accesskit_node()
            .toggled(),
        Some(egui::accesskit::Toggled::True)
    );
    click(&mut alice, "Make an invite link");
    settle(&mut alice, "the link in the panel", |h| {
        h.state()
            .model
            .links
            .by_group
            .values()
            .any(|links| links.len() == 1)
    });
    let link = alice
        .state()
        .model
        .links
        .by_group
        .values()
        .flatten()
        .next()
        .unwrap()
        .link
        .clone();
    let id = alice
        .state()
        .model
        .links
        .by_group
        .values()
        .flatten()
        .next()
        .unwrap()
        .id
        .clone();
    settle(&mut alice, "the link drawn in the panel", |h| {
        has_label(h, &format!("Link {id}: you approve each person"))
    });

    // Kim pastes it into "Add contact", whose button says what it does.
    click(&mut kim, "+ Add contact");
    type_into(&mut kim, "Invite link", &link);
    click(&mut kim, "Join group");
    settle(&mut kim, "told to wait for approval", |h| {
        h.state()
            .model
            .notices
            .iter()
            .any(|n| n.text.contains("approves or declines"))
    });
    assert!(kim.state().model.groups.is_empty());

    // Alice approves Kim in the panel; Kim's app shows the group.
    settle(&mut alice, "Kim's request in the panel", |h| {
        has_role_label(h, Role::Button, "Approve Kim")
    });
    click(&mut alice, "Approve Kim");
    settle(&mut kim, "the group in Kim's app", |h| {
        h.state()
            .model
            .groups
            .first()
            .is_some_and(|g| g.name == "Book club" && g.members == 3)
    });
    settle(&mut alice, "the request answered", |h| {
        !has_role_label(h, Role::Button, "Approve Kim")
    });
}
