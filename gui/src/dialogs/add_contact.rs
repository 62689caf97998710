//! "Add contact": an invite link (pasted, or read from a QR picture by path or dropped on the window)
//! and an optional name.

use std::path::PathBuf;

use egui::RichText;

use crate::action::Action;

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    pub invite: String,
    pub invite_name: String,
    pub image_path: String,
}

/// Draws the dialog.
pub fn show(ui: &mut egui::Ui, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label("Paste the invite link your contact sent you (it starts with tern:), or open a picture of their QR code.");
    let label = ui.label("Invite link");
    ui.add(
        egui::TextEdit::multiline(&mut form.invite)
            .desired_rows(3)
            .desired_width(f32::INFINITY),
    )
    .labelled_by(label.id);
    let label = ui.label("Name (optional)");
    ui.add(egui::TextEdit::singleline(&mut form.invite_name))
        .labelled_by(label.id);
    ui.horizontal(|ui| {
        let label = ui.label("QR image");
        ui.add(egui::TextEdit::singleline(&mut form.image_path).hint_text("/path/to/picture.png"))
            .labelled_by(label.id);
        if ui.button("Read QR image").clicked() {
            actions.push(Action::ReadQrInvite(PathBuf::from(form.image_path.trim())));
        }
    });
    ui.label(RichText::new("You can also drop a picture of a QR code on this window.").weak());
    if ui.button("Add").clicked() {
        actions.push(Action::AddContact {
            link: form.invite.trim().to_owned(),
            name: Some(form.invite_name.trim().to_owned()).filter(|n| !n.is_empty()),
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

    #[test]
    fn add_asks_for_the_trimmed_link_and_a_name_only_when_one_was_given() {
        let mut h = Harness::new_ui_state(
            |ui, (form, actions): &mut (Form, Vec<Action>)| actions.extend(show(ui, form)),
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
}
