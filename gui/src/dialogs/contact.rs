//! "Contact": the open conversation's contact: peer id, rename, block or unblock, remove.

use egui::RichText;

use crate::action::Action;
use crate::model::{Confirm, ContactState, Model};
use crate::widgets::ERROR;

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    /// The new name (starts as the contact's name).
    pub rename: String,
}

/// Draws the dialog for the open conversation's contact.
pub fn show(ui: &mut egui::Ui, model: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(key) = model.open.as_ref().map(|o| o.contact) else {
        return actions;
    };
    if model.node.is_none() {
        return actions;
    }
    ui.label(format!("Peer id: {}", key.peer_id()));
    ui.horizontal(|ui| {
        let label = ui.label("Name");
        ui.add(egui::TextEdit::singleline(&mut form.rename))
            .labelled_by(label.id);
        if ui.button("Rename").clicked() {
            actions.push(Action::Rename {
                contact: key,
                name: form.rename.clone(),
            });
        }
    });
    let blocked = model
        .contact(&key)
        .is_some_and(|c| c.record.state == ContactState::Blocked);
    ui.horizontal(|ui| {
        if blocked {
            if ui.button("Unblock").clicked() {
                actions.push(Action::SetContactState {
                    contact: key,
                    state: ContactState::Accepted,
                });
            }
        } else if ui.button("Block…").clicked() {
            actions.push(Action::Confirm(Confirm::Block(key)));
        }
        if ui
            .button(RichText::new("Remove contact and conversation…").color(ERROR))
            .clicked()
        {
            actions.push(Action::Confirm(Confirm::Remove(key)));
        }
    });
    actions
}
