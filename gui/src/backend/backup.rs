//! Backups from the app: "Back up now…", automatic backups, and the first-run restore. The running
//! node owns the profile, and the node has no backup call of its own, so a backup or a change to the
//! automatic schedule stops the node ([`Node::stop`] hands the open profile back), does the work on a
//! blocking thread, and starts the node again ([`Backend::with_stopped_node`], as saving network settings
//! does).

use std::path::PathBuf;

use tern_node::backup::RecoveryCode;
use tern_node::node::Node;
use tern_node::profile::Password;

use super::{Backend, Opening};
use crate::action::AutoRequest;
use crate::model::Dialog;
use crate::model::backup::ShownCode;
use crate::words::backup_error;

impl Backend {
    /// Writes a backup of the open profile to `dest` (which must not exist); its code comes back to be
    /// shown once. A failure is said in "Settings" in plain words.
    pub fn backup_now(&self, node: &Node, dir: PathBuf, dest: PathBuf) {
        self.with_stopped_node(
            node,
            dir,
            "the backup",
            move |profile| {
                let result = profile.backup(&dest);
                result.map(|(code, _)| ShownCode::new(&code, dest))
            },
            |m, result| {
                m.backup.busy = false;
                match result {
                    None => {}
                    Some(Ok(code)) => {
                        m.backup_written(code);
                        if m.dialog == Some(Dialog::Settings) {
                            m.dialog = None;
                        }
                    }
                    Some(Err(e)) => m.dialog_failed(Dialog::Settings, backup_error(&e)),
                }
            },
        );
    }

    /// Turns automatic backups on (a new code, shown once) or off (`None`).
    pub fn set_auto_backup(&self, node: &Node, dir: PathBuf, request: Option<AutoRequest>) {
        self.with_stopped_node(
            node,
            dir,
            "the automatic backup setting",
            move |profile| {
                let code = match &request {
                    Some(r) => {
                        let code = profile.enable_auto_backup(&r.dir, r.every, r.keep)?;
                        Some(ShownCode::for_folder(&code, r.dir.clone()))
                    }
                    None => {
                        profile.disable_auto_backup()?;
                        None
                    }
                };
                Ok((profile.auto_backup()?, code))
            },
            |m, result: Option<Result<_, tern_node::backup::BackupError>>| {
                m.backup.busy = false;
                match result {
                    None => {}
                    Some(Ok((schedule, code))) => {
                        let on = code.is_some();
                        m.auto_backup_set(schedule, code);
                        if on && m.dialog == Some(Dialog::Settings) {
                            m.dialog = None;
                        }
                    }
                    Some(Err(e)) => m.dialog_failed(Dialog::Settings, backup_error(&e)),
                }
            },
        );
    }

    /// The desktop's folder chooser, answering on the returned channel.
    pub fn choose_folder(&self) -> tokio::sync::oneshot::Receiver<Option<PathBuf>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ctx = self.ctx.clone();
        self.runtime.spawn_blocking(move || {
            let chosen = rfd::FileDialog::new()
                .set_title("Folder for automatic backups")
                .pick_folder();
            let _ = tx.send(chosen);
            ctx.request_repaint();
        });
        rx
    }

    /// Restores the backup at `archive` (sealed under `code`) into a new profile at `dir` under
    /// `password`, then opens it as unlocking does. Nothing is created before the node has checked the
    /// code and read the whole archive.
    pub fn restore(&self, dir: PathBuf, archive: PathBuf, code: RecoveryCode, password: Password) {
        self.open(dir, password, Opening::Restore { archive, code });
    }
}
