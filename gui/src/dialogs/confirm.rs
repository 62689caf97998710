//! The confirmation asked before a destructive step (removing a contact, blocking one): a modal that
//! says plainly what will happen, with Cancel focused and the destructive button in red.

use egui::{Button, Color32, RichText};

use crate::action::Action;
use crate::model::{Confirm, ContactState, Model};
use crate::widgets::ERROR;

/// What the confirmation keeps between frames.
#[derive(Default)]
pub struct Form {
    /// Cancel takes the focus in the next frame (set when a confirmation opens).
    pub focus_cancel: bool,
}

/// The title, the explanation and the destructive button's label for `confirm`.
pub fn wording(confirm: Confirm, name: &str) -> (String, String, String) {
    match confirm {
        Confirm::Remove(_) => (
            format!("Remove {name}?"),
            format!(
                "This deletes {name} from your contacts and deletes your whole conversation with them \
                 from this computer. It cannot be undone. To talk again, you will need a new invite \
                 link from them."
            ),
            "Remove and delete history".to_owned(),
        ),
        Confirm::Block(_) => (
            format!("Block {name}?"),
            format!(
                "Messages from {name} will be dropped without being shown, and you cannot write to \
                 them. They are not told. You can unblock them later in Settings, under Blocked contacts."
            ),
            "Block".to_owned(),
        ),
    }
}

/// Draws the confirmation over everything, if one is asked; Escape or Cancel takes it away.
pub fn show(ctx: &egui::Context, model: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(confirm) = model.confirm else {
        return actions;
    };
    let (Confirm::Remove(key) | Confirm::Block(key)) = confirm;
    let (title, text, button) = wording(confirm, &model.name_of(&key));
    let response = egui::Modal::new(egui::Id::new("confirm")).show(ctx, |ui| {
        ui.set_max_width(420.0);
        ui.heading(title);
        ui.add_space(6.0);
        ui.label(text);
        ui.add_space(12.0);
        ui.horizontal(|ui| {
            let cancel = ui.button("Cancel");
            if std::mem::take(&mut form.focus_cancel) {
                cancel.request_focus();
            }
            if cancel.clicked() {
                actions.push(Action::CloseConfirm);
            }
            let destructive =
                Button::new(RichText::new(button).color(Color32::WHITE).strong()).fill(ERROR);
            if ui.add(destructive).clicked() {
                actions.push(Action::CloseConfirm);
                actions.extend(match confirm {
                    Confirm::Remove(key) => vec![Action::RemoveContact(key)],
                    Confirm::Block(key) => vec![
                        Action::SetContactState {
                            contact: key,
                            state: ContactState::Blocked,
                        },
                        Action::CloseDialog,
                    ],
                });
            }
        });
    });
    if response.should_close() && actions.is_empty() {
        actions.push(Action::CloseConfirm);
    }
    actions
}
