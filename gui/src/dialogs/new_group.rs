//! "New group": a name and the contacts to invite (accepted contacts, ticked; a filter when there are
//! many). Enter in the name or filter field makes the group, as "Create group" does.

use egui::RichText;
use tern_protocol::IdentityKey;

use crate::action::Action;
use crate::model::Model;
use crate::theme;
use crate::widgets::{entered, focus_once, primary_button};

/// Past this many contacts the dialog offers a filter.
pub const FILTER_FROM: usize = 8;
/// Contacts listed at once (the dialog has no scroll area: the filter narrows the rest).
pub const MAX_LISTED: usize = 12;

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    pub name: String,
    pub filter: String,
    /// The contacts ticked, in the order they were.
    pub picked: Vec<IdentityKey>,
}

/// Draws the dialog; `focus` puts the cursor in the name field.
pub fn show(ui: &mut egui::Ui, model: &Model, form: &mut Form, focus: &mut bool) -> Vec<Action> {
    let mut actions = Vec::new();
    let label = ui.label("Group name");
    let name = ui
        .add(
            egui::TextEdit::singleline(&mut form.name)
                .char_limit(tern_node::group::MAX_GROUP_NAME_LEN)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    focus_once(&name, focus);
    let mut submit = entered(&name);
    let all = model.pickable_contacts("", &[]);
    ui.add_space(theme::ITEM_SPACING.y);
    if all.is_empty() {
        ui.label(
            RichText::new("Add contacts first: a group is made with people in your contacts.")
                .weak(),
        );
    } else {
        ui.label("Invite");
        if all.len() > FILTER_FROM {
            ui.horizontal(|ui| {
                let label = ui.label("Filter contacts");
                let filter = ui
                    .add(egui::TextEdit::singleline(&mut form.filter).hint_text("Name"))
                    .labelled_by(label.id);
                submit |= entered(&filter);
            });
        }
        let shown = model.pickable_contacts(&form.filter, &[]);
        for contact in shown.iter().take(MAX_LISTED) {
            let key = contact.key();
            let mut ticked = form.picked.contains(&key);
            ui.horizontal(|ui| {
                let who = crate::model::ConversationKey::Direct(key);
                crate::avatar::show(ui, &who, contact.name(), crate::avatar::SMALL_SIZE);
                if ui.checkbox(&mut ticked, contact.name()).changed() {
                    if ticked {
                        form.picked.push(key);
                    } else {
                        form.picked.retain(|k| *k != key);
                    }
                }
            });
        }
        if shown.len() > MAX_LISTED {
            ui.label(
                RichText::new(format!(
                    "and {} more: type in the filter to find them",
                    shown.len() - MAX_LISTED
                ))
                .weak(),
            );
        } else if shown.is_empty() {
            ui.label(RichText::new("No contact has that name.").weak());
        }
        if !form.picked.is_empty() {
            ui.label(
                RichText::new(crate::words::count(
                    form.picked.len(),
                    "contact chosen",
                    "contacts chosen",
                ))
                .weak(),
            );
        }
    }
    ui.add_space(theme::ITEM_SPACING.y);
    submit |= ui.add(primary_button("Create group")).clicked();
    if submit {
        // Only contacts that can still be invited (one may have been blocked meanwhile).
        let members: Vec<IdentityKey> = form
            .picked
            .iter()
            .copied()
            .filter(|k| all.iter().any(|c| c.key() == *k))
            .collect();
        actions.push(Action::CreateGroup {
            name: form.name.trim().to_owned(),
            members,
        });
    }
    actions
}

#[cfg(test)]
mod tests {
    use egui::accesskit::Role;
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::model::ContactState;
    use crate::model::test_rows::{contact, key};

    struct State {
        model: Model,
        form: Form,
        actions: Vec<Action>,
    }

    fn harness(contacts: usize) -> Harness<'static, State> {
        let mut model = Model::default();
        for i in 0..contacts {
            model.upsert_contact(contact(
                key(i as u64 + 1),
                &format!("Friend {i:02}"),
                ContactState::Accepted,
            ));
        }
        model.upsert_contact(contact(key(99), "Mallory", ContactState::Blocked));
        Harness::new_ui_state(
            |ui, s: &mut State| {
                let actions = show(ui, &s.model, &mut s.form, &mut false);
                s.actions.extend(actions);
            },
            State {
                model,
                form: Form::default(),
                actions: Vec::new(),
            },
        )
    }

    #[test]
    fn ticked_contacts_and_the_trimmed_name_are_asked_for_and_blocked_contacts_are_not_offered() {
        let mut h = harness(3);
        h.step();
        assert!(
            h.query_by_label("Mallory").is_none(),
            "blocked: not offered"
        );
        assert!(
            h.query_by_label("Filter contacts").is_none(),
            "few contacts: no filter"
        );
        h.get_by_role_and_label(Role::CheckBox, "Friend 02").click();
        h.step();
        h.get_by_role_and_label(Role::CheckBox, "Friend 00").click();
        h.step();
        h.get_by_role_and_label(Role::CheckBox, "Friend 02").click();
        h.step();
        h.state_mut().form.name = "  Climbing ".into();
        h.step();
        h.get_by_role_and_label(Role::Button, "Create group")
            .click();
        h.step();
        match h.state().actions.as_slice() {
            [Action::CreateGroup { name, members }] => {
                assert_eq!(name, "Climbing");
                assert_eq!(members, &vec![key(1)], "Friend 02 was unticked");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn many_contacts_get_a_filter_and_a_bounded_list() {
        let mut h = harness(20);
        h.step();
        assert!(h.query_by_label("Filter contacts").is_some());
        assert_eq!(h.query_all_by_role(Role::CheckBox).count(), MAX_LISTED);
        assert!(h.query_by_label_contains("and 8 more").is_some());
        h.state_mut().form.filter = "friend 1".into();
        h.step();
        assert_eq!(h.query_all_by_role(Role::CheckBox).count(), 10);
    }
}
