//! The unlock form: the profiles on this computer, the password, "Unlock" and "New profile…".

use egui::RichText;

use crate::action::Action;
use crate::model::ProfileScreen;
use crate::theme;
use crate::widgets::{entered, focus_once, password_field, primary_button, secondary_button};

/// Draws the unlock form; Enter in the password field or "Unlock" submits it. `focus` puts the cursor
/// in the password field.
pub fn show(
    ui: &mut egui::Ui,
    ps: &ProfileScreen,
    password: &mut String,
    focus: &mut bool,
) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Unlock your profile").heading());
    ui.add_space(theme::SECTION_GAP);
    for (i, profile) in ps.profiles.iter().enumerate() {
        if ui
            .selectable_label(ps.selected == Some(i), &profile.name)
            .clicked()
        {
            actions.push(Action::SelectProfile(i));
        }
    }
    ui.add_space(theme::SECTION_GAP);
    let field = password_field(ui, "Password", password, !ps.busy);
    focus_once(&field, focus);
    let mut submit = entered(&field);
    ui.add_space(theme::SECTION_GAP);
    ui.horizontal(|ui| {
        submit |= ui
            .add_enabled(!ps.busy && !password.is_empty(), primary_button("Unlock"))
            .clicked();
        if ui
            .add_enabled(!ps.busy, secondary_button("New profile…"))
            .clicked()
        {
            actions.push(Action::CreatingProfile(true));
        }
    });
    if submit && !ps.busy {
        actions.push(Action::SubmitProfile);
    }
    actions
}
