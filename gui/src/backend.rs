//! The bridge between the window and the node. The node runs on its own tokio runtime; the UI hands
//! it work and never waits for it. Each piece of work ends in an [`Update`] (a change to the
//! [`Model`]) sent back on a bounded channel, and the window is asked to repaint. The drawing code
//! drains the channel at the top of every frame.
//!
//! Every node operation the app uses is one method here, called only by the action executor
//! (`execute.rs`); this file and that one are all that changes when the node's API does.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tern_node::api::Event;
use tern_node::node::{Node, NodeError};
use tern_node::profile::{KdfParams, Password, Profile};
use tern_node::settings::NetworkSettings;
use tern_protocol::{IdentityKey, MessageId};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::warn;

use crate::model::{ContactState, ConversationKey, Cursor, Dialog, Model, PAGE, Snapshot};

mod backup;
mod files;
mod groups;
mod links;
mod paste;
mod settings;

pub use paste::{Clipboard, ClipboardPicture, MAX_PASTE_PIXELS, PasteError};

/// How [`Backend::unlock`] comes by the profile it opens.
enum Opening {
    Open,
    /// Create it under this name first.
    Create(String),
    /// Restore it from this backup first.
    Restore {
        archive: PathBuf,
        code: tern_node::backup::RecoveryCode,
    },
}

/// A change to the model, made on the UI thread.
pub type Update = Box<dyn FnOnce(&mut Model) + Send>;

/// Updates waiting for the UI thread; past this, the node side waits (the node itself never does:
/// its events go out on a broadcast channel that lags instead).
pub const UPDATE_QUEUE: usize = 1024;

/// What the backend needs to know that a person never sets: where profiles live, how hard the key
/// derivation is, and network settings that override the profile's (tests run on loopback).
#[derive(Debug, Clone)]
pub struct Options {
    pub root: PathBuf,
    pub kdf: KdfParams,
    /// Used instead of the profile's saved network settings (for tests and the demo).
    pub network_override: Option<NetworkSettings>,
}

/// A failure shown in plain words inside `dialog` while it is open (else as an error toast).
fn failed_in(dialog: Dialog, error: impl std::fmt::Display) -> Update {
    let text = crate::words::plain(&error.to_string());
    Box::new(move |m: &mut Model| m.dialog_failed(dialog, text))
}

/// The node side of the app.
pub struct Backend {
    runtime: tokio::runtime::Runtime,
    tx: mpsc::Sender<Update>,
    rx: mpsc::Receiver<Update>,
    ctx: egui::Context,
    pub options: Options,
    /// Keeps the drafts' saves in order (`settings.rs`).
    drafts: settings::DraftSaves,
    /// Where "Paste a picture" reads from (`paste.rs`).
    pub clipboard: Clipboard,
    /// How many node calls [`Self::spawn`] started are still running. Closing waits for them (at most
    /// [`settings::CLOSING_SAVE_TIMEOUT`]), so a change made just before the window closed (a muted
    /// conversation, a setting) still reaches the profile.
    running: Arc<watch::Sender<usize>>,
}

/// Counts one running call down when its task ends, finished or not.
struct Running(Arc<watch::Sender<usize>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn failed(context: &'static str, error: impl std::fmt::Display) -> Update {
    let text = format!("{context}: {error}");
    Box::new(move |m: &mut Model| m.error(text))
}

impl Backend {
    pub fn new(ctx: egui::Context, options: Options) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tern-node")
            .enable_all()
            .build()?;
        let (tx, rx) = mpsc::channel(UPDATE_QUEUE);
        Ok(Self {
            runtime,
            tx,
            rx,
            ctx,
            options,
            drafts: settings::DraftSaves::default(),
            clipboard: Clipboard::default(),
            running: Arc::new(watch::Sender::new(0)),
        })
    }

    /// Asks the window to close; eframe then stops the node (`on_exit`) and the app ends.
    pub fn close_window(&self) {
        self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }

    /// Applies every update that arrived; returns how many.
    pub fn drain(&mut self, model: &mut Model) -> usize {
        let mut n = 0;
        while let Ok(update) = self.rx.try_recv() {
            update(model);
            n += 1;
        }
        n
    }

    /// Waits up to `timeout` for the next update and applies it (for tests and scripts that drive the
    /// app without a window). Returns whether one came.
    pub fn wait(&mut self, model: &mut Model, timeout: Duration) -> bool {
        let next = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, self.rx.recv()).await });
        match next {
            Ok(Some(update)) => {
                update(model);
                true
            }
            _ => false,
        }
    }

    /// Runs a future on the node's runtime and blocks for its result (tests and the demo script only).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Runs `work` on the node's runtime and sends its update back.
    fn spawn(&self, work: impl Future<Output = Update> + Send + 'static) {
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        self.running.send_modify(|n| *n += 1);
        let running = Running(self.running.clone());
        self.runtime.spawn(async move {
            let update = work.await;
            // The node call is done: closing need not wait for the model to take its update.
            drop(running);
            if tx.send(update).await.is_ok() {
                ctx.request_repaint();
            }
        });
    }

    /// Runs a node call, then `apply` on the model with its result (or shows the error).
    fn call<T: Send + 'static, F>(
        &self,
        node: &Node,
        context: &'static str,
        f: impl FnOnce(Node) -> F + Send + 'static,
        apply: impl FnOnce(&mut Model, T) + Send + 'static,
    ) where
        F: Future<Output = Result<T, NodeError>> + Send + 'static,
    {
        let node = node.clone();
        self.spawn(async move {
            match f(node).await {
                Ok(value) => Box::new(move |m: &mut Model| apply(m, value)) as Update,
                Err(e) => failed(context, e),
            }
        });
    }

    /// [`Self::call`] for work asked from `dialog`: a failure is said inside it, in plain words.
    fn call_in<T: Send + 'static, F>(
        &self,
        node: &Node,
        dialog: Dialog,
        f: impl FnOnce(Node) -> F + Send + 'static,
        apply: impl FnOnce(&mut Model, T) + Send + 'static,
    ) where
        F: Future<Output = Result<T, NodeError>> + Send + 'static,
    {
        let node = node.clone();
        self.spawn(async move {
            match f(node).await {
                Ok(value) => Box::new(move |m: &mut Model| apply(m, value)) as Update,
                Err(e) => failed_in(dialog, e),
            }
        });
    }

    /// Opens (or, with `create`, first creates) the profile in `dir` and starts its node. The Argon2
    /// work runs on a blocking thread, so the window keeps drawing.
    pub fn unlock(&self, dir: PathBuf, password: Password, create: Option<String>) {
        let how = match create {
            Some(name) => Opening::Create(name),
            None => Opening::Open,
        };
        self.open(dir, password, how);
    }

    /// [`Self::unlock`], or first a restore from a backup (`backup.rs`).
    fn open(&self, dir: PathBuf, password: Password, how: Opening) {
        let kdf = self.options.kdf;
        let network_override = self.options.network_override.clone();
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        self.spawn(async move {
            let opening_dir = dir.clone();
            let opened = tokio::task::spawn_blocking(move || -> Result<_, String> {
                let profile = match &how {
                    Opening::Create(name) => Profile::create(&opening_dir, name, &password, kdf),
                    Opening::Open => Profile::open(&opening_dir, &password),
                    Opening::Restore { archive, code } => {
                        tern_node::backup::restore(archive, code, &opening_dir, &password, kdf)
                            .map_err(|e| crate::words::backup_error(&e))?;
                        Profile::open(&opening_dir, &password)
                    }
                }
                .map_err(|e| unlock_error(&e))?;
                let settings = profile.network_settings().unwrap_or_else(|e| {
                    warn!(error = %e, "network settings unreadable; using the defaults");
                    NetworkSettings::default()
                });
                // The automatic backup schedule, shown in "Settings" (the running node keeps it).
                let auto = profile.auto_backup().ok().flatten();
                let privacy = profile.privacy();
                let prefs = profile.conversation_prefs();
                let drafts = profile.drafts();
                Ok((profile, settings, auto, privacy, prefs, drafts))
            })
            .await;
            let (profile, settings, auto, privacy, prefs, drafts) = match opened {
                Ok(Ok(opened)) => opened,
                Ok(Err(text)) => {
                    return Box::new(move |m: &mut Model| m.profile_screen.attempt_failed(text))
                        as Update;
                }
                Err(e) => {
                    let text = format!("cannot open the profile: {e}");
                    return Box::new(move |m: &mut Model| m.profile_screen.attempt_failed(text));
                }
            };
            let run_with = network_override.as_ref().unwrap_or(&settings);
            match Node::start(profile, run_with.node_config(&dir)) {
                Ok((node, events)) => {
                    let snapshot = match read_snapshot(&node).await {
                        Ok(snapshot) => snapshot,
                        Err(e) => return failed("cannot read the profile", e),
                    };
                    tokio::spawn(forward_events(events, tx, ctx));
                    Box::new(move |m: &mut Model| {
                        m.unlocked(dir, node, settings, snapshot);
                        m.profile_screen.restoring = false;
                        m.backup.auto = auto;
                        m.privacy = privacy;
                        m.prefs = prefs;
                        m.drafts = drafts;
                    })
                }
                Err(e) => {
                    let text = format!("cannot start the network: {e}");
                    Box::new(move |m: &mut Model| m.profile_screen.attempt_failed(text))
                }
            }
        });
    }

    /// Reads the contact and conversation lists again (after the event stream lagged).
    pub fn resync(&self, node: &Node) {
        self.call(
            node,
            "cannot read the profile",
            |node| async move { read_snapshot(&node).await },
            Model::apply_snapshot,
        );
    }

    /// Loads the newest page of a conversation, or the page before `before`.
    pub fn load_page(&self, node: &Node, contact: ConversationKey, before: Option<Cursor>) {
        self.call(
            node,
            "cannot read the conversation",
            move |node| async move { node.page(contact, before, PAGE).await },
            move |m, page| m.page_loaded(contact, page, before.is_none()),
        );
    }

    pub fn send(&self, node: &Node, to: ConversationKey, text: String) {
        let node = node.clone();
        self.spawn(async move {
            match node.send_text(to, text).await {
                Ok(message) => Box::new(move |m: &mut Model| m.message_stored(message)) as Update,
                Err(e) => failed("cannot send", e),
            }
        });
    }

    /// Sends `text` as a reply to message `to` of the conversation.
    pub fn send_reply(
        &self,
        node: &Node,
        conversation: ConversationKey,
        text: String,
        to: MessageId,
    ) {
        let node = node.clone();
        self.spawn(async move {
            match node.send_reply(conversation, text, to).await {
                Ok(message) => Box::new(move |m: &mut Model| m.message_stored(message)) as Update,
                Err(e) => failed("cannot send", e),
            }
        });
    }

    pub fn retry(&self, node: &Node, contact: ConversationKey, id: MessageId) {
        self.call(
            node,
            "cannot send again",
            move |node| async move { node.retry(contact, id).await },
            move |m, message| m.status_changed(contact, message.id, message.status),
        );
    }

    /// Reads when a message was delivered and read, for "Message info".
    pub fn load_message_times(&self, node: &Node, conversation: ConversationKey, id: MessageId) {
        self.call(
            node,
            "cannot read the message's times",
            move |node| async move { node.message_times(conversation, id).await },
            move |m, times| {
                if let Some(times) = times {
                    m.message_times_loaded(conversation, id, times);
                }
            },
        );
    }

    pub fn mark_read(&self, node: &Node, contact: ConversationKey, ids: Vec<MessageId>) {
        let node = node.clone();
        self.spawn(async move {
            match node.mark_read(contact, ids).await {
                Ok(changed) => {
                    Box::new(move |m: &mut Model| m.marked_read(contact, &changed)) as Update
                }
                Err(e) => failed("cannot mark as read", e),
            }
        });
    }

    /// Sets the conversation's disappearing-message timer; the system line it writes goes into the view.
    /// A group's is set from its info dialog, which says a refusal (only admins may) inside it.
    pub fn set_timer(&self, node: &Node, contact: ConversationKey, seconds: u32) {
        let call = move |node: Node| async move { node.set_timer(contact, seconds).await };
        let apply = move |m: &mut Model, line: Option<tern_node::api::Message>| {
            if let Some(line) = line {
                m.message_stored(line);
            }
            m.timer_set(contact, seconds);
        };
        if contact.is_group() {
            self.call_in(node, Dialog::GroupInfo, call, apply);
        } else {
            self.call(node, "cannot change disappearing messages", call, apply);
        }
    }

    /// Reads the conversation list again (last messages, unread counts and timers).
    pub fn reload_conversations(&self, node: &Node) {
        self.call(
            node,
            "cannot read the conversations",
            |node| async move { node.conversations().await },
            Model::conversations_reloaded,
        );
    }

    pub fn typing(&self, node: &Node, contact: ConversationKey, typing: bool) {
        let node = node.clone();
        self.spawn(async move {
            match node.typing(contact, typing).await {
                Ok(()) => Box::new(|_: &mut Model| {}) as Update,
                Err(e) => failed("cannot reach the node", e),
            }
        });
    }

    pub fn status(&self, node: &Node) {
        let node = node.clone();
        self.spawn(async move {
            match node.status().await {
                Ok(status) => Box::new(move |m: &mut Model| {
                    m.connected = status.connected_peers.len();
                    m.status = Some(status);
                }) as Update,
                Err(e) => failed("cannot read the network status", e),
            }
        });
    }

    pub fn search(&self, node: &Node, query: String) {
        self.call(
            node,
            "cannot search",
            move |node| async move { node.search(query, 200).await },
            |m, results| m.search_results = Some(results),
        );
    }

    /// Saves new network settings and restarts the node with them; the profile stays unlocked.
    pub fn apply_settings(&self, node: &Node, dir: PathBuf, settings: NetworkSettings) {
        self.with_stopped_node(
            node,
            dir,
            "saving the settings",
            move |profile| profile.save_network_settings(&settings).map(|()| settings),
            |m, saved| match saved {
                None => {}
                Some(Ok(settings)) => {
                    m.settings = settings;
                    if m.node.is_some() {
                        m.notice("Settings saved; the network restarted with them");
                    }
                }
                Some(Err(e)) => m.error(format!("cannot save the settings: {e}")),
            },
        );
    }

    /// Stops the node ([`Node::stop`] hands the open profile back), runs `work` on the profile on a
    /// blocking thread, starts the node again with the profile's network settings (or the override),
    /// then applies `apply` with what `work` returned: `None` when the node could not be stopped or the
    /// work did not finish, which is said as an error first. `what` names the work in those errors.
    pub(crate) fn with_stopped_node<T: Send + 'static>(
        &self,
        node: &Node,
        dir: PathBuf,
        what: &'static str,
        work: impl FnOnce(&mut Profile) -> T + Send + 'static,
        apply: impl FnOnce(&mut Model, Option<T>) + Send + 'static,
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
                        m.error(format!("cannot stop the node for {what}: {e}"));
                        apply(m, None);
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
                    let text = format!("{what} stopped: {e}; restart Tern");
                    return Box::new(move |m: &mut Model| {
                        m.node = None;
                        m.error(text);
                        apply(m, None);
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
                apply(m, Some(result));
            })
        });
    }

    /// Changes the profile's password and re-keys the whole profile under a new store key
    /// (`Profile::change_password`): the node stops for it, as for a backup, and starts again.
    pub fn change_password(&self, node: &Node, dir: PathBuf, old: Password, new: Password) {
        self.with_stopped_node(
            node,
            dir,
            "changing the password",
            move |profile| profile.change_password(&old, &new),
            |m, changed| match changed {
                None => {}
                Some(Ok(_)) => {
                    m.dialog_error = None;
                    m.notice("Password changed; the profile was encrypted again under a new key");
                }
                Some(Err(e)) => {
                    m.dialog_failed(Dialog::Settings, crate::words::plain(&e.to_string()));
                }
            },
        );
    }

    /// Replaces the signed prekey now; the new invite link replaces the old one in the model.
    pub fn revoke_prekeys(&self, node: &Node) {
        self.call(
            node,
            "cannot replace the prekey",
            move |node| async move { node.revoke_prekeys().await },
            |m, me| {
                m.me = Some(me);
                m.notice("Prekey replaced: share your new invite link with contacts who have not written yet");
            },
        );
    }

    /// Adds a contact from an invite link, under `name` if given.
    pub fn add_contact(&self, node: &Node, link: String, name: Option<String>) {
        self.call_in(
            node,
            Dialog::AddContact,
            move |node| async move { node.add_contact(link, name).await },
            |m, (record, _)| {
                // Told once, when the contact is added: a name that looks like another contact's.
                let lookalike = tern_node::names::lookalike(
                    &record.name,
                    m.contacts
                        .iter()
                        .filter(|c| c.record.key != record.key)
                        .map(|c| c.record.name.as_str()),
                );
                m.notice(format!("Added {}", record.name));
                if let Some(warning) = lookalike {
                    m.error(warning.to_string());
                }
                // Their conversation opens, ready for a first message.
                m.open_next = Some(tern_node::api::ConversationId::Direct(record.key));
                m.upsert_contact(record);
                m.dialog = None;
                m.dialog_error = None;
            },
        );
    }

    /// Accepts, blocks or unblocks a contact.
    pub fn set_contact_state(&self, node: &Node, contact: IdentityKey, state: ContactState) {
        self.call(
            node,
            "cannot change the contact",
            move |node| async move { node.set_contact_state(contact, state).await },
            |m, record| m.upsert_contact(record),
        );
    }

    pub fn rename_contact(&self, node: &Node, contact: IdentityKey, name: String) {
        self.call(
            node,
            "cannot rename",
            move |node| async move { node.rename_contact(contact, name).await },
            |m, record| m.upsert_contact(record),
        );
    }

    /// Removes a contact and the conversation with them.
    pub fn remove_contact(&self, node: &Node, contact: IdentityKey) {
        self.call(
            node,
            "cannot remove the contact",
            move |node| async move { node.remove_contact(contact).await },
            move |m, ()| {
                m.remove_contact(&contact);
                m.dialog = None;
            },
        );
    }

    /// Marks a contact verified after the person compared the safety number `digits`.
    pub fn verify(&self, node: &Node, contact: IdentityKey, digits: String) {
        self.call_in(
            node,
            Dialog::Verify,
            move |node| async move {
                node.verify(contact, digits).await?;
                node.contact(contact).await
            },
            |m, record| {
                if let Some(record) = record {
                    m.notice(format!("{} is verified", record.name));
                    m.upsert_contact(record);
                }
            },
        );
    }

    /// Verifies a contact by the invite link in their QR code (it must be their own card).
    pub fn verify_card(&self, node: &Node, contact: IdentityKey, link: String) {
        self.call_in(
            node,
            Dialog::Verify,
            move |node| async move {
                let matched = node.verify_card(contact, link).await?;
                Ok((matched, node.contact(contact).await?))
            },
            |m, (matched, record)| match (matched, record) {
                (true, Some(record)) => {
                    m.notice(format!("{} is verified", record.name));
                    m.upsert_contact(record);
                }
                _ => m.dialog_failed(
                    Dialog::Verify,
                    "That QR code belongs to someone else: not verified.",
                ),
            },
        );
    }

    /// Shows a desktop notification (names only, never message text). Failures are logged once per run.
    pub fn notify(&self, title: String) {
        self.runtime.spawn_blocking(move || {
            if let Err(e) = notify_rust::Notification::new()
                .summary("Tern")
                .body(&title)
                .appname("Tern")
                .show()
            {
                tracing::debug!(error = %e, "desktop notification not shown");
            }
        });
    }

    /// Stops the node (closing the store) before the window closes.
    pub fn shutdown(&self, node: Option<Node>) {
        let mut running = self.running.subscribe();
        let settled = self.runtime.block_on(async {
            tokio::time::timeout(
                settings::CLOSING_SAVE_TIMEOUT,
                running.wait_for(|n| *n == 0),
            )
            .await
        });
        if settled.is_err() {
            warn!("closing before every node call ended");
        }
        if let Some(node) = node {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(3), node.shutdown()).await
            });
        }
    }
}

/// The lists the app shows, read from the profile.
async fn read_snapshot(node: &Node) -> Result<Snapshot, NodeError> {
    Ok(Snapshot {
        me: node.whoami().await?,
        contacts: node.contacts().await?,
        conversations: node.conversations().await?,
        groups: node.groups().await?,
    })
}

/// A message for a failed unlock that a person can act on.
fn unlock_error(e: &NodeError) -> String {
    if e.is_wrong_password() {
        "Wrong password. Try again.".to_owned()
    } else if e.is_in_use() {
        "This profile is open in another window or in tern-node.".to_owned()
    } else {
        format!("Cannot open the profile: {e}")
    }
}

/// Sends each node event to the model; a lag becomes a resync from the store.
async fn forward_events(
    mut events: broadcast::Receiver<Event>,
    tx: mpsc::Sender<Update>,
    ctx: egui::Context,
) {
    loop {
        let update: Update = match events.recv().await {
            Ok(event) => Box::new(move |m: &mut Model| m.on_event(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                warn!(
                    missed,
                    "the app fell behind the node's events; reading the store again"
                );
                Box::new(|m: &mut Model| m.needs_resync = true)
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if tx.send(update).await.is_err() {
            return;
        }
        ctx.request_repaint();
    }
}
