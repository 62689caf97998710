//! The create form (first run, or "New profile…"): a name, a password with its strength hint, and the
//! password again.

use egui::RichText;

use crate::action::Action;
use crate::model::ProfileScreen;
use crate::profiles::Strength;
use crate::theme;
use crate::widgets::{
    ERROR, ONLINE, WARN, entered, focus_once, password_field, primary_button, secondary_button,
};

/// The fields of the form.
pub struct Fields<'a> {
    pub name: &'a mut String,
    pub password: &'a mut String,
    pub confirm: &'a mut String,
    /// Put the cursor in the name field.
    pub focus: &'a mut bool,
}

/// Draws the create form; Enter moves from the name to the password to its confirmation, where it
/// submits, as "Create profile" does (an incomplete form is refused with a plain error).
pub fn show(ui: &mut egui::Ui, ps: &ProfileScreen, fields: Fields<'_>) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Create your profile").heading());
    ui.label("Your name is shown to the people you add. Your password seals everything Tern keeps on this computer; it cannot be recovered.");
    ui.add_space(theme::SECTION_GAP);
    let label = ui.label("Your name");
    let name = ui
        .add_enabled(
            !ps.busy,
            egui::TextEdit::singleline(fields.name).desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    focus_once(&name, fields.focus);
    // Enter in the name or the password field moves on to the next field.
    let mut next = entered(&name);
    let password = password_field(ui, "Password", fields.password, !ps.busy);
    focus_once(&password, &mut next);
    next = entered(&password);
    let strength = Strength::of(fields.password);
    if !fields.password.is_empty() {
        let color = match strength {
            Strength::TooShort | Strength::Weak => ERROR,
            Strength::Fair => WARN,
            Strength::Strong => ONLINE,
        };
        ui.colored_label(color, strength.label());
    }
    let confirm = password_field(ui, "Confirm password", fields.confirm, !ps.busy);
    focus_once(&confirm, &mut next);
    let mut submit = entered(&confirm);
    ui.add_space(theme::SECTION_GAP);
    ui.horizontal(|ui| {
        submit |= ui
            .add_enabled(!ps.busy, primary_button("Create profile"))
            .clicked();
        if !ps.profiles.is_empty() && ui.add_enabled(!ps.busy, secondary_button("Back")).clicked() {
            actions.push(Action::CreatingProfile(false));
        }
    });
    ui.add_space(theme::ITEM_SPACING.y);
    if ui
        .add_enabled(!ps.busy, secondary_button("Restore from a backup…"))
        .clicked()
    {
        actions.push(Action::Restoring(true));
    }
    if submit && !ps.busy {
        actions.push(Action::SubmitProfile);
    }
    actions
}
