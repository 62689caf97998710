//! The first-run "Restore from a backup" form: the backup file (typed, or "Choose…"), its recovery
//! code (spaces, dashes and case do not matter), a name for the profile on this computer, and the new
//! password twice. The node checks the code before writing anything and builds the profile beside its
//! directory, so a refused restore leaves nothing behind; the app creates nothing first either.

use egui::RichText;

use crate::action::{Action, Chooser};
use crate::dialogs::backup::PATH_WIDTH;
use crate::dialogs::file_path;
use crate::model::ProfileScreen;
use crate::theme;
use crate::widgets::{entered, password_field, primary_button, secondary_button};

/// What is typed in the form.
#[derive(Default)]
pub struct Form {
    pub archive: file_path::Form,
    pub code: String,
    pub name: String,
    pub password: String,
    pub repeat: String,
}

impl Form {
    /// Forgets the code and the passwords (after an attempt, and when the form is left).
    pub fn clear_secrets(&mut self) {
        use zeroize::Zeroize;
        self.code.zeroize();
        self.password.zeroize();
        self.repeat.zeroize();
    }
}

/// Draws the form.
pub fn show(ui: &mut egui::Ui, ps: &ProfileScreen, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Restore from a backup").heading());
    ui.label("Choose the backup file and type the recovery code you wrote down when it was made.");
    ui.add_space(theme::SECTION_GAP);
    let mut submit = file_path::path_field(
        ui,
        "Backup file",
        &mut form.archive,
        PATH_WIDTH,
        &mut false,
        Action::ChooseBackupPath(Chooser::RestoreArchive),
        &mut actions,
    );
    let label = ui.label("Recovery code");
    let code = ui
        .add_enabled(
            !ps.busy,
            egui::TextEdit::singleline(&mut form.code)
                .font(egui::TextStyle::Monospace)
                .hint_text("ABCD EFGH …")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    submit |= entered(&code);
    if ps.pinned.is_none() {
        let label = ui.label("Profile name on this computer");
        let name = ui
            .add_enabled(
                !ps.busy,
                egui::TextEdit::singleline(&mut form.name).desired_width(f32::INFINITY),
            )
            .labelled_by(label.id);
        submit |= entered(&name);
    }
    submit |= entered(&password_field(
        ui,
        "New password",
        &mut form.password,
        !ps.busy,
    ));
    submit |= entered(&password_field(
        ui,
        "Repeat new password",
        &mut form.repeat,
        !ps.busy,
    ));
    ui.add_space(theme::SECTION_GAP);
    ui.horizontal(|ui| {
        submit |= ui
            .add_enabled(!ps.busy, primary_button("Restore"))
            .clicked();
        if ui.add_enabled(!ps.busy, secondary_button("Back")).clicked() {
            actions.push(Action::Restoring(false));
        }
    });
    if submit && !ps.busy {
        actions.push(Action::SubmitRestore);
    }
    actions
}
