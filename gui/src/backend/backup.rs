//! Backups from the app: "Back up now…", automatic backups, and the first-run restore. The running
//! node owns the profile, and the node has no backup call of its own, so a backup or a change to the
//! automatic schedule stops the node ([`Node::stop`] hands the open profile back), does the work on a
//! blocking thread, and starts the node again, as saving network settings does.

use std::path::PathBuf;

use tern_node::backup::RecoveryCode;
use tern_node::node::Node;
use tern_node::profile::{Password, Profile};

use super::{Backend, Opening, Update, forward_events};
use crate::action::AutoRequest;
use crate::model::backup::ShownCode;
use crate::model::{Dialog, Model};
use crate::words::backup_error;

impl Backend {
    /// Stops the node, runs `work` on its profile on a blocking thread, starts the node again, then
    /// applies `apply` with what `work` returned.
    fn with_profile<T: Send + 'static>(
        &self,
        node: &Node,
        dir: PathBuf,
        work: impl FnOnce(&mut Profile) -> T + Send + 'static,
        apply: impl FnOnce(&mut Model, T) + Send + 'static,
    ) {
        let node = node.clone();
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        let network_override = self.options.network_override.clone();
        self.spawn(async move {
            let mut profile = match node.stop().await {
                Ok(profile) => profile,
                Err(e) => {
                    return Box::new(move |m: &mut Model| {
                        m.backup.busy = false;
                        m.error(format!("cannot stop the node for the backup: {e}"));
                    }) as Update;
                }
            };
            let done = tokio::task::spawn_blocking(move || {
                let result = work(&mut profile);
                (profile, result)
            })
            .await;
            let (profile, result) = match done {
                Ok(done) => done,
                Err(e) => {
                    let text = format!("the backup stopped: {e}; restart Tern");
                    return Box::new(move |m: &mut Model| {
                        m.node = None;
                        m.backup.busy = false;
                        m.error(text);
                    });
                }
            };
            let settings = match network_override {
                Some(settings) => settings,
                None => profile.network_settings().unwrap_or_default(),
            };
            let restarted =
                Node::start(profile, settings.node_config(&dir)).map(|(node, events)| {
                    tokio::spawn(forward_events(events, tx, ctx));
                    node
                });
            Box::new(move |m: &mut Model| {
                m.backup.busy = false;
                match restarted {
                    Ok(node) => {
                        m.node = Some(node);
                        m.listen_addrs.clear();
                        m.status = None;
                    }
                    Err(e) => {
                        m.node = None;
                        m.error(format!("the network did not restart: {e}"));
                    }
                }
                apply(m, result);
            })
        });
    }

    /// Writes a backup of the open profile to `dest` (which must not exist); its code comes back to be
    /// shown once. A failure is said in "Settings" in plain words.
    pub fn backup_now(&self, node: &Node, dir: PathBuf, dest: PathBuf) {
        self.with_profile(
            node,
            dir,
            move |profile| {
                let result = profile.backup(&dest);
                result.map(|(code, _)| ShownCode::new(&code, dest))
            },
            |m, result| match result {
                Ok(code) => {
                    m.backup_written(code);
                    if m.dialog == Some(Dialog::Settings) {
                        m.dialog = None;
                    }
                }
                Err(e) => m.dialog_failed(Dialog::Settings, backup_error(&e)),
            },
        );
    }

    /// Turns automatic backups on (a new code, shown once) or off (`None`).
    pub fn set_auto_backup(&self, node: &Node, dir: PathBuf, request: Option<AutoRequest>) {
        self.with_profile(
            node,
            dir,
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
            |m, result: Result<_, tern_node::backup::BackupError>| match result {
                Ok((schedule, code)) => {
                    let on = code.is_some();
                    m.auto_backup_set(schedule, code);
                    if on && m.dialog == Some(Dialog::Settings) {
                        m.dialog = None;
                    }
                }
                Err(e) => m.dialog_failed(Dialog::Settings, backup_error(&e)),
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
