//! The start screen: the app's name, then the unlock form (profiles exist) or the create form (first
//! run, or "New profile…"), a spinner while the key is derived, and the last error.

use egui::RichText;

use super::{create_profile, restore, unlock};
use crate::action::Action;
use crate::model::ProfileScreen;
use crate::theme;
use crate::widgets::ERROR;

/// What is being typed on the start screen. The password is shared by both forms, as it is one field
/// on screen at a time.
pub struct StartForm {
    pub name: String,
    pub password: String,
    pub confirm: String,
    /// The form's first field takes the focus in the next frame: when the screen opens, when the
    /// other form is shown, and after a failed attempt (a wrong password).
    pub focus: bool,
    /// The failed attempts this form has answered (a new one focuses the form again).
    pub failures_seen: u64,
    /// The "Restore from a backup" form.
    pub restore: restore::Form,
}

impl Default for StartForm {
    fn default() -> Self {
        Self {
            name: String::new(),
            password: String::new(),
            confirm: String::new(),
            focus: true,
            failures_seen: 0,
            restore: restore::Form::default(),
        }
    }
}

/// Draws the start screen.
pub fn show(ui: &mut egui::Ui, ps: &ProfileScreen, form: &mut StartForm) -> Vec<Action> {
    let mut actions = Vec::new();
    // A failed attempt puts the cursor back (counted, not seen as `busy` ending: with a fast key
    // derivation the answer can come before any frame has drawn the form busy).
    if form.failures_seen != ps.failed_attempts {
        form.failures_seen = ps.failed_attempts;
        form.focus = true;
    }
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() * 0.12);
        ui.heading(RichText::new("Tern").size(theme::DISPLAY).strong());
        ui.label("Private messages, person to person. No server in the middle.");
        ui.add_space(2.0 * theme::SECTION_GAP);
        ui.allocate_ui(egui::vec2(360.0, 420.0), |ui| {
            ui.set_width(360.0);
            if ps.restoring {
                actions = restore::show(ui, ps, &mut form.restore);
            } else if !ps.profiles.is_empty() && !ps.creating {
                actions = unlock::show(ui, ps, &mut form.password, &mut form.focus);
            } else {
                actions = create_profile::show(
                    ui,
                    ps,
                    create_profile::Fields {
                        name: &mut form.name,
                        password: &mut form.password,
                        confirm: &mut form.confirm,
                        focus: &mut form.focus,
                    },
                );
            }
            if ps.busy {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Deriving the key from your password…");
                });
            }
            if let Some(error) = &ps.error {
                ui.colored_label(ERROR, error);
            }
        });
    });
    actions
}
