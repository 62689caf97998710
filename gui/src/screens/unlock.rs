//! The unlock form: the profiles on this computer, the password, "Unlock" and "New profile…".

use egui::RichText;

use crate::action::Action;
use crate::model::ProfileScreen;
use crate::widgets::password_field;

/// Draws the unlock form; Enter in the password field or "Unlock" submits it.
pub fn show(ui: &mut egui::Ui, ps: &ProfileScreen, password: &mut String) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Unlock your profile").heading());
    ui.add_space(8.0);
    for (i, profile) in ps.profiles.iter().enumerate() {
        if ui
            .selectable_label(ps.selected == Some(i), &profile.name)
            .clicked()
        {
            actions.push(Action::SelectProfile(i));
        }
    }
    ui.add_space(8.0);
    let mut submit = password_field(ui, "Password", password, !ps.busy);
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        submit |= ui
            .add_enabled(
                !ps.busy && !password.is_empty(),
                egui::Button::new("Unlock"),
            )
            .clicked();
        if ui
            .add_enabled(!ps.busy, egui::Button::new("New profile…"))
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
