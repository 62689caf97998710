//! Saving what the person chose in the profile: privacy, muted and pinned conversations, unsent drafts
//! and the profile's name.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tern_node::drafts::Drafts;
use tern_node::node::{Node, NodeError};
use tern_node::prefs::ConversationPrefs;
use tern_node::privacy::PrivacySettings;

use super::{Backend, Update};
use crate::model::{Dialog, Model};

/// The longest the window waits, as it closes, for the drafts to be saved.
pub const CLOSING_SAVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Numbers each save of the drafts and remembers the last one written, so that a save that started
/// late never writes older drafts over newer ones (each save runs on its own task).
#[derive(Debug, Default)]
pub(super) struct DraftSaves {
    /// The number given to the last save asked for.
    asked: AtomicU64,
    /// The number of the last save written; held while a save runs.
    written: Arc<tokio::sync::Mutex<u64>>,
}

impl DraftSaves {
    /// Saves `drafts` as save number `n`, unless a later one was written already.
    async fn save(
        written: Arc<tokio::sync::Mutex<u64>>,
        n: u64,
        node: Node,
        drafts: Drafts,
    ) -> Result<(), NodeError> {
        let mut last = written.lock().await;
        if *last > n {
            return Ok(());
        }
        node.set_drafts(drafts).await?;
        *last = n;
        Ok(())
    }

    fn next(&self) -> (Arc<tokio::sync::Mutex<u64>>, u64) {
        (
            self.written.clone(),
            self.asked.fetch_add(1, Ordering::Relaxed) + 1,
        )
    }
}

impl Backend {
    /// Saves a setting that the model shows already (`save`). If that fails, the saved one is read back
    /// (`load`; the default if that fails too) and shown again (`show`), and the person is told that
    /// `what` was not saved.
    fn save_setting<T, S, L>(
        &self,
        node: &Node,
        what: &'static str,
        save: impl FnOnce(Node) -> S + Send + 'static,
        load: impl FnOnce(Node) -> L + Send + 'static,
        show: impl FnOnce(&mut Model, T) + Send + 'static,
    ) where
        T: Default + Send + 'static,
        S: Future<Output = Result<(), NodeError>> + Send + 'static,
        L: Future<Output = Result<T, NodeError>> + Send + 'static,
    {
        let node = node.clone();
        self.spawn(async move {
            match save(node.clone()).await {
                Ok(()) => Box::new(|_: &mut Model| {}) as Update,
                Err(e) => {
                    let saved = load(node).await.unwrap_or_default();
                    let text = format!("cannot save {what}: {e}");
                    Box::new(move |m: &mut Model| {
                        show(m, saved);
                        m.notice(text);
                    })
                }
            }
        });
    }

    /// Saves which conversations are muted and pinned; a failure puts the saved ones back.
    pub fn set_conversation_prefs(&self, node: &Node, prefs: ConversationPrefs) {
        self.save_setting(
            node,
            "which conversations are muted and pinned",
            move |node| async move { node.set_conversation_prefs(prefs).await },
            |node| async move { node.conversation_prefs().await },
            |m, saved| m.prefs = saved,
        );
    }

    /// Turns read receipts and typing indicators on or off; a failure puts the saved ones back.
    pub fn set_privacy(&self, node: &Node, privacy: PrivacySettings) {
        self.save_setting(
            node,
            "the privacy settings",
            move |node| async move { node.set_privacy(privacy).await },
            |node| async move { node.privacy().await },
            |m, saved| m.privacy = saved,
        );
    }

    /// Saves the unsent drafts in place of the saved ones. A failure is said; the drafts stay in the
    /// app (putting the saved ones back would lose what was typed since), and the next save tries again.
    pub fn set_drafts(&self, node: &Node, drafts: Drafts) {
        let (written, n) = self.drafts.next();
        self.call(
            node,
            "cannot keep the unsent drafts",
            move |node| DraftSaves::save(written, n, node, drafts),
            |_, ()| {},
        );
    }

    /// [`Self::set_drafts`], waiting for it (at most [`CLOSING_SAVE_TIMEOUT`]): the window is closing.
    pub fn set_drafts_now(&self, node: &Node, drafts: Drafts) {
        let (written, n) = self.drafts.next();
        let save = DraftSaves::save(written, n, node.clone(), drafts);
        let saved = self.block_on(async { tokio::time::timeout(CLOSING_SAVE_TIMEOUT, save).await });
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the unsent drafts were not saved"),
            Err(_) => tracing::warn!("the unsent drafts were not saved in time"),
        }
    }

    /// Renames this profile; the node sends the new card to every accepted contact. A refused name is
    /// said inside Settings.
    pub fn set_display_name(&self, node: &Node, name: String) {
        self.call_in(
            node,
            Dialog::Settings,
            move |node| async move { node.set_display_name(name).await },
            |m, me| {
                m.dialog_error = None;
                m.notice(format!("Your name is now {}", me.name));
                m.me = Some(me);
            },
        );
    }
}
