//! The confirmation asked before a destructive step (removing a contact, blocking one, removing a group
//! member, leaving a group, deleting a message, clearing a conversation's history, withdrawing a sent
//! file): a modal that
//! says plainly what will happen, with Cancel focused and the destructive button in red.

use crate::action::Action;
use crate::model::{Confirm, ContactState, FileButton, Model};
use crate::theme;
use crate::widgets::{destructive_button, secondary_button};

/// A confirmation is this wide, whatever it says.
pub const CONFIRM_WIDTH: f32 = 420.0;

/// What the confirmation keeps between frames.
#[derive(Default)]
pub struct Form {
    /// Cancel takes the focus in the next frame (set when a confirmation opens).
    pub focus_cancel: bool,
}

/// The title, the explanation and the destructive button's label for `confirm`; `name` is the
/// contact's or member's, `group` the group's (for a message, the conversation's title).
pub fn wording(confirm: Confirm, name: &str, group: &str) -> (String, String, String) {
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
        Confirm::RemoveMember { .. } => (
            format!("Remove {name} from {group}?"),
            format!(
                "{name} will no longer read what is written in {group}, and everyone in it sees that \
                 you removed them. To have them back, an admin adds them again."
            ),
            "Remove from group".to_owned(),
        ),
        Confirm::LeaveGroup(_) => (
            format!("Leave {group}?"),
            format!(
                "You will no longer read or write in {group}; what was said stays on this computer. \
                 To come back, an admin has to add you again."
            ),
            "Leave group".to_owned(),
        ),
        Confirm::ClearHistory(_) => (
            "Clear this conversation's history?".to_owned(),
            format!(
                "This deletes every message and file of your conversation with {} from this \
                 computer. {} stays, and so does its disappearing-messages setting; {}. It cannot be \
                 undone.",
                if name.is_empty() { group } else { name },
                if name.is_empty() { group } else { name },
                if name.is_empty() {
                    "the others keep their copies"
                } else {
                    "they keep their copies"
                }
            ),
            "Clear history".to_owned(),
        ),
        Confirm::WithdrawFile { .. } => (
            "Withdraw this file?".to_owned(),
            format!(
                "{} This computer's copy is deleted too; the message stays. A copy a mailbox server keeps \
                 for someone who was offline stays there until the server deletes it (a week by default). \
                 It cannot be undone.",
                if name.is_empty() {
                    format!("Whoever in {group} has not downloaded it yet cannot any more.")
                } else {
                    format!(
                        "If {name} has not downloaded it yet, they cannot any more; a copy they have stays theirs."
                    )
                }
            ),
            "Withdraw file".to_owned(),
        ),
        Confirm::DeleteMessage { .. } => (
            "Delete this message for you?".to_owned(),
            format!(
                "This deletes the message from this computer only. {} It cannot be undone.",
                if name.is_empty() {
                    format!("The others in {group} keep their copies.")
                } else {
                    format!("{name} keeps their copy.")
                }
            ),
            "Delete for me".to_owned(),
        ),
    }
}

/// Draws the confirmation over everything, if one is asked; Escape or Cancel takes it away.
pub fn show(ctx: &egui::Context, model: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(confirm) = model.confirm else {
        return actions;
    };
    let (name, group) = match confirm {
        Confirm::Remove(key) | Confirm::Block(key) => (model.name_of(&key), String::new()),
        Confirm::RemoveMember { group, member } => {
            (model.sender_label(&member), model.title_of(&group))
        }
        Confirm::LeaveGroup(group) => (String::new(), model.title_of(&group)),
        Confirm::ClearHistory(conversation)
        | Confirm::DeleteMessage { conversation, .. }
        | Confirm::WithdrawFile { conversation, .. } => {
            let title = model.title_of(&conversation);
            match conversation.direct() {
                Some(_) => (title, String::new()),
                None => (String::new(), title),
            }
        }
    };
    let (title, text, button) = wording(confirm, &name, &group);
    let response = super::modal(ctx, egui::Id::new("confirm")).show(ctx, |ui| {
        ui.set_width(CONFIRM_WIDTH);
        ui.heading(&title);
        ui.add_space(theme::ITEM_SPACING.y);
        ui.add(egui::Label::new(text).wrap());
        ui.add_space(theme::SECTION_GAP);
        ui.horizontal(|ui| {
            let cancel = ui.add(secondary_button("Cancel"));
            if std::mem::take(&mut form.focus_cancel) {
                cancel.request_focus();
            }
            if cancel.clicked() {
                actions.push(Action::CloseConfirm);
            }
            if ui.add(destructive_button(&button)).clicked() {
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
                    Confirm::RemoveMember { group, member } => {
                        vec![Action::RemoveMember { group, member }]
                    }
                    Confirm::LeaveGroup(group) => vec![Action::LeaveGroup(group)],
                    Confirm::DeleteMessage { conversation, id } => {
                        vec![Action::DeleteMessage { conversation, id }]
                    }
                    Confirm::ClearHistory(conversation) => {
                        vec![Action::ClearHistory(conversation), Action::CloseDialog]
                    }
                    Confirm::WithdrawFile { conversation, id } => vec![Action::FileControl {
                        conversation,
                        id,
                        button: FileButton::Withdraw,
                    }],
                });
            }
        });
        super::name_for_readers(ui, &title);
    });
    if response.should_close() && actions.is_empty() {
        actions.push(Action::CloseConfirm);
    }
    actions
}
