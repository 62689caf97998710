//! "Contact": the open conversation's contact: peer id, rename, block or unblock, remove.

use egui::RichText;

use crate::action::Action;
use crate::model::{Confirm, ContactState, Model};
use crate::widgets::{ERROR, entered, focus_once, primary_button, secondary_button};
use tern_node::api::ConversationId;

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    /// The new name (starts as the contact's name).
    pub rename: String,
}

/// Draws the dialog for the open conversation's contact.
/// `focus` puts the cursor in the name field; Enter there renames, as "Rename" does.
pub fn show(ui: &mut egui::Ui, model: &Model, form: &mut Form, focus: &mut bool) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(key) = model.open.as_ref().and_then(|o| o.conversation.direct()) else {
        return actions;
    };
    if model.node.is_none() {
        return actions;
    }
    ui.label(format!("Peer id: {}", key.peer_id()));
    ui.horizontal(|ui| {
        let label = ui.label("Name");
        let field = ui
            .add(egui::TextEdit::singleline(&mut form.rename))
            .labelled_by(label.id);
        focus_once(&field, focus);
        let rename = ui.add(primary_button("Rename")).clicked() || entered(&field);
        if rename && form.rename.trim().is_empty() {
            actions.push(Action::DialogError("Enter a name.".to_owned()));
        } else if rename {
            actions.push(Action::Rename {
                contact: key,
                name: form.rename.clone(),
            });
        }
    });
    actions.extend(conversation_prefs(ui, model, ConversationId::Direct(key)));
    let blocked = model
        .contact(&key)
        .is_some_and(|c| c.record.state == ContactState::Blocked);
    ui.horizontal(|ui| {
        if blocked {
            if ui.add(secondary_button("Unblock")).clicked() {
                actions.push(Action::SetContactState {
                    contact: key,
                    state: ContactState::Accepted,
                });
            }
        } else if ui.add(secondary_button("Block…")).clicked() {
            actions.push(Action::Confirm(Confirm::Block(key)));
        }
        if ui.add(secondary_button("Clear history…")).clicked() {
            actions.push(Action::Confirm(Confirm::ClearHistory(
                ConversationId::Direct(key),
            )));
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

/// "Mute notifications" and "Pin to the top of the list" for `conversation` (this dialog's and the group
/// info's).
pub fn conversation_prefs(
    ui: &mut egui::Ui,
    model: &Model,
    conversation: ConversationId,
) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let mut muted = model.prefs.is_muted(&conversation);
        if ui.checkbox(&mut muted, "Mute notifications").changed() {
            actions.push(Action::SetMuted {
                conversation,
                muted,
            });
        }
        let mut pinned = model.prefs.pin_rank(&conversation).is_some();
        if ui
            .checkbox(&mut pinned, "Pin to the top of the list")
            .changed()
        {
            actions.push(Action::SetPinned {
                conversation,
                pinned,
            });
        }
    });
    actions
}
