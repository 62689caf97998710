//! The dialogs over the main window, one file each: [`add_contact`], [`verify`] ("My code" and a
//! contact's safety number), [`contact`] (rename, block, remove), [`settings`] and [`network`], and [`confirm`] (asked
//! before a destructive step). Each
//! draws from the model and its own form and returns actions; [`show`] puts the open one in a window.

pub mod add_contact;
pub mod confirm;
pub mod contact;
pub mod network;
pub mod settings;
pub mod verify;

use egui::Key;

use crate::action::Action;
use crate::model::{Dialog, Model};
use crate::widgets::ERROR;

/// What is being typed in the dialogs (thrown away or reset when a dialog opens again).
#[derive(Default)]
pub struct DialogForms {
    pub add_contact: add_contact::Form,
    pub verify: verify::Form,
    pub contact: contact::Form,
    pub settings: settings::Form,
    pub network: network::Form,
    pub confirm: confirm::Form,
}

/// Draws the open dialog, if any; closing it (its ✕ or Escape) is an action too.
pub fn show(ctx: &egui::Context, model: &Model, forms: &mut DialogForms) -> Vec<Action> {
    let mut actions = dialog(ctx, model, forms);
    // Drawn last: the confirmation is over the dialog it came from.
    actions.extend(confirm::show(ctx, model, &mut forms.confirm));
    actions
}

fn dialog(ctx: &egui::Context, model: &Model, forms: &mut DialogForms) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(dialog) = model.dialog else {
        return actions;
    };
    let title = match dialog {
        Dialog::AddContact => "Add contact",
        Dialog::Verify => "Verify",
        Dialog::Settings => "Settings",
        Dialog::Network => "Network",
        Dialog::ContactDetails => "Contact",
    };
    let mut open = true;
    egui::Window::new(title)
        .open(&mut open)
        .collapsible(false)
        .resizable(true)
        .default_width(460.0)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            actions = match dialog {
                Dialog::AddContact => add_contact::show(ui, &mut forms.add_contact),
                Dialog::Verify => verify::show(ui, model, &mut forms.verify),
                Dialog::Settings => settings::show(ui, model, &mut forms.settings),
                Dialog::Network => network::show(ui, model, &mut forms.network),
                Dialog::ContactDetails => contact::show(ui, model, &mut forms.contact),
            };
            if let Some(error) = &model.dialog_error {
                ui.add_space(6.0);
                ui.colored_label(ERROR, format!("⚠ {error}"));
            }
        });
    // Escape belongs to the confirmation while one is asked.
    if !open || (model.confirm.is_none() && ctx.input(|i| i.key_pressed(Key::Escape))) {
        actions.push(Action::CloseDialog);
    }
    actions
}
