//! The backup actions: "Back up now…", the code modal closing, the desktop's chooser for backup paths,
//! and the first-run restore.

use std::path::Path;

use crate::action::{Action, Chooser};
use crate::dialogs::{backup, file_path};
use crate::model::backup::check_restore;
use crate::profiles;

use super::Executor;

impl Executor<'_> {
    pub(super) fn backup_action(&mut self, action: Action) {
        match action {
            Action::Restoring(restoring) => {
                let ps = &mut self.model.profile_screen;
                ps.restoring = restoring;
                ps.error = None;
                if !restoring {
                    self.views.start.restore.clear_secrets();
                }
            }
            Action::SubmitRestore => self.submit_restore(),
            Action::ChooseBackupPath(chooser) => {
                let (form, save_as) = match chooser {
                    Chooser::BackupFile => {
                        let offered = backup::offered(&self.views.dialogs.backup);
                        (&mut self.views.dialogs.backup.dest, Some(offered))
                    }
                    Chooser::RestoreArchive => (&mut self.views.start.restore.archive, None),
                    Chooser::AutoFolder => {
                        let form = &mut self.views.dialogs.backup.auto_dir;
                        form.choosing = Some(self.backend.choose_folder());
                        return;
                    }
                };
                form.choosing = Some(self.backend.choose_path(save_as));
            }
            Action::BackupNow(dest) => {
                let (Some(node), Some(dir)) =
                    (self.model.node.clone(), self.model.profile_dir.clone())
                else {
                    return;
                };
                self.model.dialog_error = None;
                self.model.backup.busy = true;
                self.backend.backup_now(&node, dir, dest);
            }
            Action::SetAutoBackup(request) => {
                let (Some(node), Some(dir)) =
                    (self.model.node.clone(), self.model.profile_dir.clone())
                else {
                    return;
                };
                self.model.dialog_error = None;
                self.model.backup.busy = true;
                self.backend.set_auto_backup(&node, dir, request);
            }
            // Dropping the shown code wipes its text.
            Action::CloseCode => self.model.backup.code = None,
            _ => {}
        }
    }

    /// Checks the restore form, then asks for the restore; nothing is created here (not even the
    /// profile's directory: the node makes it only once the archive has been read whole).
    fn submit_restore(&mut self) {
        let root = self.backend.options.root.clone();
        let ps = &mut self.model.profile_screen;
        let form = &mut self.views.start.restore;
        if ps.busy {
            return;
        }
        let checked = check_restore(&form.archive.path, &form.code, &form.password, &form.repeat);
        let mut request = match checked {
            Ok(request) => request,
            Err(text) => {
                ps.error = Some(text);
                return;
            }
        };
        let dir = match &ps.pinned {
            Some(dir) => dir.clone(),
            None => match profiles::new_profile_dir(&root, &form.name) {
                Ok(dir) => dir,
                Err(e) => {
                    ps.error = Some(format!("Profile name: {e}."));
                    return;
                }
            },
        };
        // The folder that holds profiles (not the profile's own): the restore builds beside it.
        let parent = dir.parent().map_or_else(|| root.clone(), Path::to_path_buf);
        if let Err(e) = tern_node::redb_file::create_private_dir(&parent) {
            ps.error = Some(format!("Cannot create {}: {e}.", parent.display()));
            return;
        }
        request.archive = file_path::expand(&form.archive.path);
        form.clear_secrets();
        ps.busy = true;
        ps.error = None;
        self.backend
            .restore(dir, request.archive, request.code, request.password);
    }
}
