//! "Add contact": an invite link (pasted, or read from a QR picture: its path typed or found with
//! "Choose…", the desktop's own file chooser, or the picture dropped on the window) and an optional name.

use egui::{Key, KeyboardShortcut, Modifiers, RichText};

use super::file_path;
use crate::action::{Action, LinkAction};
use crate::widgets::{entered, focus_once, primary_button, secondary_button, take_enter};

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    pub invite: String,
    pub invite_name: String,
    /// The path of a picture of their QR code ("Choose…" answers into it).
    pub picture: file_path::Form,
}

/// The width of the QR picture's path field (the dialog keeps its size).
const QR_PATH_WIDTH: f32 = 200.0;

/// Rows of the invite field: it scrolls rather than grows, so the dialog keeps its size.
const INVITE_ROWS: usize = 3;

/// Draws the dialog; `focus` puts the cursor in the invite field. Enter in the invite or name field
/// adds, as "Add" does (Shift+Enter is a new line in the invite field).
pub fn show(ui: &mut egui::Ui, form: &mut Form, focus: &mut bool) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label("Paste the invite link your contact sent you (it starts with tern:), or open a picture of their QR code. A group link (tern-group:) joins its group.");
    let label = ui.label("Invite link");
    let invite_id = egui::Id::new("add-contact-invite");
    let mut submit = take_enter(ui, invite_id);
    let row_height = ui.text_style_height(&egui::TextStyle::Body);
    egui::ScrollArea::vertical()
        .id_salt("invite-scroll")
        .max_height(row_height * INVITE_ROWS as f32 + 12.0)
        // Always that tall, so the dialog does not grow when a long link starts to scroll.
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let invite = ui
                .add(
                    egui::TextEdit::multiline(&mut form.invite)
                        .id(invite_id)
                        .return_key(KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter))
                        .desired_rows(INVITE_ROWS)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id);
            focus_once(&invite, focus);
        });
    let label = ui.label("Name (optional)");
    let name = ui
        .add(egui::TextEdit::singleline(&mut form.invite_name).desired_width(f32::INFINITY))
        .labelled_by(label.id);
    submit |= entered(&name);
    let read = file_path::path_field(
        ui,
        "QR image",
        &mut form.picture,
        QR_PATH_WIDTH,
        &mut false,
        Action::ChooseQrPicture,
        &mut actions,
    );
    if ui.add(secondary_button("Read QR image")).clicked() || read {
        actions.push(Action::ReadQrInvite(file_path::expand(&form.picture.path)));
    }
    ui.label(RichText::new("You can also drop a picture of a QR code on this window.").weak());
    let group_link = is_group_link(&form.invite);
    submit |= ui
        .add(primary_button(if group_link {
            "Join group"
        } else {
            "Add"
        }))
        .clicked();
    if submit && group_link {
        actions.push(Action::Link(LinkAction::Join(
            form.invite.trim().to_owned(),
        )));
    } else if submit {
        actions.push(Action::AddContact {
            link: form.invite.trim().to_owned(),
            name: Some(form.invite_name.trim().to_owned()).filter(|n| !n.is_empty()),
        });
    }
    actions
}

/// Whether the pasted text is a group link (its prefix in any case), which joins instead of adding.
fn is_group_link(text: &str) -> bool {
    let prefix = tern_protocol::group_link::GROUP_LINK_PREFIX;
    text.trim()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use egui::accesskit::Role;
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::*;

    #[test]
    fn add_asks_for_the_trimmed_link_and_a_name_only_when_one_was_given() {
        let mut h = Harness::new_ui_state(
            |ui, (form, actions): &mut (Form, Vec<Action>)| {
                actions.extend(show(ui, form, &mut false))
            },
            (Form::default(), Vec::new()),
        );
        h.step();
        h.get_by_role_and_label(Role::Button, "Add").click();
        h.step();
        h.state_mut().0.invite = " tern:abc \n".into();
        h.state_mut().0.invite_name = "  Bob ".into();
        h.step();
        h.get_by_role_and_label(Role::Button, "Add").click();
        h.step();
        let (_, actions) = h.state();
        match actions.as_slice() {
            [
                Action::AddContact {
                    link: first,
                    name: None,
                },
                Action::AddContact { link, name },
            ] => {
                assert!(first.is_empty());
                assert_eq!(link, "tern:abc");
                assert_eq!(name.as_deref(), Some("Bob"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_group_link_offers_join_group_and_asks_to_join() {
        let mut h = Harness::new_ui_state(
            |ui, (form, actions): &mut (Form, Vec<Action>)| {
                actions.extend(show(ui, form, &mut false))
            },
            (Form::default(), Vec::new()),
        );
        h.state_mut().0.invite = " TERN-GROUP:abc\n".into();
        h.step();
        assert!(
            h.query_by_label("Add").is_none(),
            "the button says what it does"
        );
        h.get_by_role_and_label(Role::Button, "Join group").click();
        h.step();
        match h.state().1.as_slice() {
            [Action::Link(LinkAction::Join(link))] => assert_eq!(link, "TERN-GROUP:abc"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
