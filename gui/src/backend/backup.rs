//! Backups from the app: "Back up now…" and the first-run restore. The running node owns the profile,
//! and the node has no backup call of its own, so "Back up now…" stops the node ([`Node::stop`] hands
//! the open profile back), writes the archive on a blocking thread, and starts the node again, as
//! saving network settings does.

use std::path::PathBuf;

use tern_node::backup::RecoveryCode;
use tern_node::node::Node;
use tern_node::profile::Password;

use super::{Backend, Opening, Update, failed, forward_events};
use crate::model::backup::{ShownCode, backup_error};
use crate::model::{Dialog, Model};

impl Backend {
    /// Writes a backup of the open profile to `dest` (which must not exist); its code comes back to be
    /// shown once. A failure is said in "Settings" in plain words.
    pub fn backup_now(&self, node: &Node, dir: PathBuf, dest: PathBuf) {
        let node = node.clone();
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        let network_override = self.options.network_override.clone();
        self.spawn(async move {
            let profile = match node.stop().await {
                Ok(profile) => profile,
                Err(e) => return failed("cannot stop the node for the backup", e),
            };
            let written = tokio::task::spawn_blocking(move || {
                let result = profile.backup(&dest);
                (profile, result.map(|(code, _)| ShownCode::new(&code, dest)))
            })
            .await;
            let (profile, result) = match written {
                Ok(done) => done,
                Err(e) => {
                    let text = format!("the backup stopped: {e}; restart Tern");
                    return Box::new(move |m: &mut Model| {
                        m.node = None;
                        m.backup.busy = false;
                        m.error(text);
                    }) as Update;
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
                match result {
                    Ok(code) => {
                        m.backup_written(code);
                        if m.dialog == Some(Dialog::Settings) {
                            m.dialog = None;
                        }
                    }
                    Err(e) => m.dialog_failed(Dialog::Settings, backup_error(&e)),
                }
            }) as Update
        });
    }

    /// Restores the backup at `archive` (sealed under `code`) into a new profile at `dir` under
    /// `password`, then opens it as unlocking does. Nothing is created before the node has checked the
    /// code and read the whole archive.
    pub fn restore(&self, dir: PathBuf, archive: PathBuf, code: RecoveryCode, password: Password) {
        self.open(dir, password, Opening::Restore { archive, code });
    }
}
