//! The dialogs over the main window, one file each: [`add_contact`], [`verify`] ("My code" and a
//! contact's safety number), [`contact`] (rename, block, remove), [`settings`] and [`network`],
//! [`new_group`] and [`group_info`] (a group's members and what the person's role allows), and
//! [`file_path`] (where a file to send is, or where to save one), and
//! [`confirm`] (asked before a destructive step), [`backup`] (in "Settings", and the recovery
//! code shown once), [`message_info`] (a message's times and statuses), and [`picture`] (a picture at
//! full size). Each
//! draws from the model and its own form and returns actions; [`show`] puts the open one in a window.

pub mod add_contact;
pub mod backup;
pub mod confirm;
pub mod contact;
pub mod file_path;
pub mod group_info;
pub mod group_links;
pub mod message_info;
pub mod network;
pub mod new_group;
pub mod picture;
pub mod settings;
pub mod verify;

use egui::{Align, Key, Layout};

use crate::action::Action;
use crate::model::{Dialog, Model};
use crate::theme;
use crate::widgets::{ERROR, secondary_button};

/// Dialogs are this wide (the same whatever is typed in them); "Verify" is wider for its two columns,
/// and "Settings" for its list of sections (`settings::SETTINGS_WIDTH`).
pub const DIALOG_WIDTH: f32 = 460.0;
/// The width of "Verify".
pub const VERIFY_WIDTH: f32 = 640.0;

/// What is being typed in the dialogs (thrown away or reset when a dialog opens again).
#[derive(Default)]
pub struct DialogForms {
    pub add_contact: add_contact::Form,
    pub verify: verify::Form,
    pub contact: contact::Form,
    pub settings: settings::Form,
    pub network: network::Form,
    pub confirm: confirm::Form,
    pub new_group: new_group::Form,
    pub group_info: group_info::Form,
    pub file_path: file_path::Form,
    pub backup: backup::Form,
    pub message_info: message_info::Form,
    pub picture: picture::Form,
    /// The open dialog's first field takes the focus in the next frame (set when a dialog opens).
    pub focus_first: bool,
}

/// Draws the open dialog, if any; closing it ("Close" or Escape) is an action too.
pub fn show(ctx: &egui::Context, model: &Model, forms: &mut DialogForms) -> Vec<Action> {
    let mut actions = dialog(ctx, model, forms);
    // Drawn last: the confirmation is over the dialog it came from.
    actions.extend(confirm::show(ctx, model, &mut forms.confirm));
    // The recovery code is over everything: it is shown only this once.
    actions.extend(backup::show_code(ctx, model, &mut forms.backup));
    actions
}

/// A modal for a dialog: the window behind it dimmed with [`theme::DIM`], the dialog framed with
/// [`theme::PANEL_MARGIN`] around its content.
pub fn modal(ctx: &egui::Context, id: egui::Id) -> egui::Modal {
    egui::Modal::new(id)
        .backdrop_color(theme::DIM)
        .frame(egui::Frame::popup(&ctx.global_style()).inner_margin(theme::PANEL_MARGIN))
}

/// What screen readers call the dialog titled `title` (a window, its rect the dialog's).
pub fn label(title: &str) -> String {
    format!("{title} dialog")
}

/// Names the dialog drawn so far in `ui` for screen readers: [`label`] of `title`.
pub fn name_for_readers(ui: &mut egui::Ui, title: &str) {
    let id = ui.id().with("dialog");
    ui.interact(ui.min_rect(), id, egui::Sense::hover())
        .widget_info(|| egui::WidgetInfo::labeled(egui::WidgetType::Window, true, label(title)));
}

/// The title a dialog shows.
pub fn title(dialog: Dialog) -> &'static str {
    match dialog {
        Dialog::AddContact => "Add contact",
        Dialog::MyCode => "My code",
        Dialog::Verify => "Verify",
        Dialog::Settings => "Settings",
        Dialog::Network => "Network",
        Dialog::ContactDetails => "Contact",
        Dialog::NewGroup => "New group",
        Dialog::GroupInfo => "Group",
        Dialog::AttachFile => "Send a file",
        Dialog::SaveFile => "Save file",
        Dialog::MessageInfo => "Message info",
        Dialog::Picture => "Picture",
    }
}

/// The open dialog as a modal: it dims the window, keeps Tab inside itself (egui gives the focus only
/// to widgets on the top modal layer), and keeps its width. A click beside it does not close it, so
/// nothing typed is lost by a stray click.
fn dialog(ctx: &egui::Context, model: &Model, forms: &mut DialogForms) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(dialog) = model.dialog else {
        return actions;
    };
    let title = title(dialog);
    let width = match dialog {
        Dialog::Verify => VERIFY_WIDTH,
        Dialog::Settings => settings::SETTINGS_WIDTH,
        Dialog::Picture => picture::PICTURE_WIDTH,
        _ => DIALOG_WIDTH,
    };
    let mut close = false;
    modal(ctx, egui::Id::new(("dialog", title))).show(ctx, |ui| {
        ui.set_width(width);
        ui.horizontal(|ui| {
            ui.heading(title);
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                close |= ui.add(secondary_button("Close")).clicked();
            });
        });
        ui.separator();
        {
            // The form is as tall as its content; "Settings", longer than a window, scrolls its
            // section's body inside (see `settings::show`).
            let focus = &mut forms.focus_first;
            actions = match dialog {
                Dialog::AddContact => add_contact::show(ui, &mut forms.add_contact, focus),
                Dialog::MyCode => verify::show_my_code(ui, model, &mut forms.verify),
                Dialog::Verify => verify::show(ui, model, &mut forms.verify),
                Dialog::Settings => {
                    settings::show(ui, model, &mut forms.settings, &mut forms.backup, focus)
                }
                Dialog::Network => network::show(ui, model, &mut forms.network),
                Dialog::ContactDetails => contact::show(ui, model, &mut forms.contact, focus),
                Dialog::NewGroup => new_group::show(ui, model, &mut forms.new_group, focus),
                Dialog::GroupInfo => group_info::show(ui, model, &mut forms.group_info, focus),
                Dialog::AttachFile => {
                    file_path::show_attach(ui, model, &mut forms.file_path, focus)
                }
                Dialog::SaveFile => file_path::show_save(ui, &mut forms.file_path, focus),
                Dialog::MessageInfo => message_info::show(ui, model, &forms.message_info),
                Dialog::Picture => picture::show(ui, model, &mut forms.picture),
            };
            // A dialog without a field keeps nothing to focus.
            *focus = false;
        }
        if let Some(error) = &model.dialog_error {
            ui.add_space(theme::ITEM_SPACING.y);
            ui.colored_label(ERROR, format!("⚠ {error}"));
        }
        name_for_readers(ui, title);
    });
    // Escape belongs to the confirmation while one is asked.
    if close || (model.confirm.is_none() && ctx.input(|i| i.key_pressed(Key::Escape))) {
        actions.push(Action::CloseDialog);
    }
    actions
}
