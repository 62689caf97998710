//! Backups in "Settings": "Back up now…" to a path (prefilled with ~/tern-backup-<date>.tern, or
//! "Choose…"), automatic backups (on or off, a folder, every N hours, keep N), and the modal that shows the new recovery code once: monospace, four groups a line, a
//! Copy button, and "Close" only after "I have written it down" is ticked.

use std::path::PathBuf;

use egui::RichText;

use super::file_path;
use tern_node::backup::{AutoBackup, MAX_KEEP};

use crate::action::{Action, AutoRequest, Chooser};
use crate::model::Model;
use crate::widgets::{primary_button, secondary_button};

/// The width of a backup path field.
pub const PATH_WIDTH: f32 = 260.0;

/// The backup part of "Settings", and the code modal's checkbox.
#[derive(Default)]
pub struct Form {
    /// Where "Back up now…" writes (its `path`; "Choose…" answers into it).
    pub dest: file_path::Form,
    /// "I have written it down" is ticked in the code modal.
    pub written_down: bool,
    /// The folder of automatic backups.
    pub auto_dir: file_path::Form,
    pub every_hours: u64,
    pub keep: u8,
}

impl Form {
    /// Made ready as "Settings" opens: the backup path prefilled, the schedule as it is.
    pub fn open(&mut self, auto: Option<&AutoBackup>) {
        self.dest.path = default_backup_path();
        match auto {
            Some(auto) => {
                self.auto_dir.path = auto.dir.display().to_string();
                self.every_hours = (auto.every.as_secs() / 3600).max(1);
                self.keep = auto.keep;
            }
            None => {
                self.every_hours = 24;
                self.keep = 7;
            }
        }
    }
}

/// Where a backup is offered to go: ~/tern-backup-<today>.tern.
pub fn default_backup_path() -> String {
    format!(
        "~/tern-backup-{}.tern",
        chrono::Local::now().format("%Y-%m-%d")
    )
}

/// The "Backup" part of "Settings".
pub fn section(ui: &mut egui::Ui, model: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Backup").strong());
    ui.label(
        "A backup holds your identity, contacts, messages and files, encrypted under a recovery \
         code shown once when it is written.",
    );
    let enter = file_path::path_field(
        ui,
        "Backup file",
        &mut form.dest,
        PATH_WIDTH,
        &mut false,
        Action::ChooseBackupPath(Chooser::BackupFile),
        &mut actions,
    );
    ui.horizontal(|ui| {
        let busy = model.backup.busy;
        let clicked = ui
            .add_enabled(!busy, primary_button("Back up now…"))
            .clicked();
        if busy {
            ui.spinner();
            ui.label("Writing the backup…");
        }
        if (clicked || enter) && !busy {
            if form.dest.path.trim().is_empty() {
                actions.push(Action::DialogError(
                    "Type where to write the backup.".to_owned(),
                ));
            } else {
                actions.push(Action::BackupNow(file_path::expand(&form.dest.path)));
            }
        }
    });
    actions.extend(automatic(ui, model, form));
    actions
}

/// Automatic backups: what is set, and the fields to change it.
fn automatic(ui: &mut egui::Ui, model: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Automatic backups").strong());
    match &model.backup.auto {
        Some(auto) => {
            ui.label(format!(
                "On: every {} hours to {}, keeping the newest {}.",
                auto.every.as_secs() / 3600,
                auto.dir.display(),
                auto.keep
            ));
            let last = if auto.last_ms == 0 {
                "none yet (written while Tern runs)".to_owned()
            } else {
                crate::timefmt::when(auto.last_ms, tern_node::api::now_ms())
            };
            ui.label(RichText::new(format!("Last automatic backup: {last}")).weak());
        }
        None => {
            ui.label(RichText::new("Off.").weak());
        }
    }
    file_path::path_field(
        ui,
        "Backup folder",
        &mut form.auto_dir,
        PATH_WIDTH,
        &mut false,
        Action::ChooseBackupPath(Chooser::AutoFolder),
        &mut actions,
    );
    ui.horizontal(|ui| {
        ui.label("Every");
        ui.add(egui::DragValue::new(&mut form.every_hours).range(1..=8760));
        ui.label("hours, keep");
        ui.add(egui::DragValue::new(&mut form.keep).range(1..=MAX_KEEP));
    });
    let busy = model.backup.busy;
    ui.horizontal(|ui| {
        let on = model.backup.auto.is_some();
        let label = if on {
            "Save (with a new code)"
        } else {
            "Turn on automatic backups"
        };
        if ui.add_enabled(!busy, primary_button(label)).clicked() {
            if form.auto_dir.path.trim().is_empty() {
                actions.push(Action::DialogError(
                    "Choose the folder for automatic backups.".to_owned(),
                ));
            } else {
                actions.push(Action::SetAutoBackup(Some(AutoRequest {
                    dir: file_path::expand(&form.auto_dir.path),
                    every: std::time::Duration::from_secs(form.every_hours.saturating_mul(3600)),
                    keep: form.keep,
                })));
            }
        }
        if on
            && ui
                .add_enabled(!busy, secondary_button("Turn off"))
                .clicked()
        {
            actions.push(Action::SetAutoBackup(None));
        }
    });
    actions
}

/// The recovery code, once, over everything else; "Close" waits for the checkbox.
pub fn show_code(ctx: &egui::Context, model: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(code) = &model.backup.code else {
        form.written_down = false;
        return actions;
    };
    super::modal(ctx, egui::Id::new("recovery-code")).show(ctx, |ui| {
        ui.set_width(super::DIALOG_WIDTH);
        ui.heading("Write down your recovery code");
        ui.label(if code.folder {
            format!(
                "It opens every automatic backup in {}.",
                code.written_to.display()
            )
        } else {
            format!("The backup is in {}.", code.written_to.display())
        });
        ui.label(
            "Write this code down now and keep it apart from the backup. It is shown only this \
             once, and the backup cannot be restored without it.",
        );
        ui.add_space(crate::theme::ITEM_SPACING.y);
        for line in code.lines() {
            ui.label(
                RichText::new(line.as_str())
                    .monospace()
                    .size(crate::theme::CODE),
            );
        }
        ui.add_space(crate::theme::ITEM_SPACING.y);
        if ui.add(secondary_button("Copy")).clicked() {
            ui.ctx().copy_text(code.text().to_owned());
        }
        ui.checkbox(&mut form.written_down, "I have written it down");
        if ui
            .add_enabled(form.written_down, primary_button("Close"))
            .clicked()
        {
            form.written_down = false;
            actions.push(Action::CloseCode);
        }
        super::name_for_readers(ui, "Recovery code");
    });
    actions
}

/// The path "Back up now…" offers to the desktop's chooser.
pub fn offered(form: &Form) -> PathBuf {
    file_path::expand(&form.dest.path)
}
