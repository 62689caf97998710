//! Unsent drafts: the open conversation's is the composer's text, the others' wait in the model, and
//! all of them are kept sealed in the profile (`tern_node::drafts`). They are saved when another
//! conversation opens or the open one closes, when a message is sent (its draft is then gone),
//! [`DRAFT_SAVE_DELAY`] after typing stops, and when the window closes: never on every keystroke.

use std::time::{Duration, Instant};

use tern_node::drafts::Drafts;

use super::Executor;
use crate::backend::Backend;
use crate::model::{ConversationKey, Model};
use crate::views::Views;

/// Typing that stopped this long ago is saved.
pub const DRAFT_SAVE_DELAY: Duration = Duration::from_secs(2);

/// Every draft: those waiting in the model and the composer's, written last (so it is the newest).
fn all_drafts(model: &Model, views: &Views) -> Drafts {
    let mut drafts = model.drafts.clone();
    if let Some(open) = &model.open {
        drafts.set(open.conversation, &views.main.composer.text);
    }
    drafts
}

/// How long until the composer's last change is due to be saved (zero: now), if one waits.
pub fn save_due_in(views: &Views, now: Instant) -> Option<Duration> {
    let edited = views.main.composer.edited_at?;
    Some(DRAFT_SAVE_DELAY.saturating_sub(now.saturating_duration_since(edited)))
}

/// Saves every draft and waits for it (the window is closing).
pub fn save_before_closing(backend: &Backend, model: &Model, views: &mut Views) {
    if let Some(node) = &model.node {
        backend.set_drafts_now(node, all_drafts(model, views));
        views.main.composer.edited_at = None;
    }
}

impl Executor<'_> {
    /// Saves every draft in the profile.
    pub(super) fn save_drafts(&mut self) {
        self.views.main.composer.edited_at = None;
        if let Some(node) = self.node() {
            self.backend
                .set_drafts(&node, all_drafts(self.model, self.views));
        }
    }

    /// The composer's text waits as the draft of `left` (the conversation closed or left for another);
    /// the composer then holds the draft of `opened`, if any. Saved when that changed anything: moving
    /// between conversations with empty composers writes nothing.
    pub(super) fn switch_draft(
        &mut self,
        left: Option<ConversationKey>,
        opened: Option<ConversationKey>,
    ) {
        let composer = &mut self.views.main.composer;
        // A reply answers a message of the conversation it was started in.
        composer.replying = None;
        let text = std::mem::take(&mut composer.text);
        let mut changed = composer.edited_at.is_some() || !text.trim().is_empty();
        if let Some(left) = left {
            self.model.drafts.set(left, &text);
        }
        if let Some(opened) = opened {
            let waiting = self.model.drafts.take(&opened);
            // Saved again as the newest, which changes which one goes first past the bound.
            changed |= waiting.is_some();
            composer.text = waiting.unwrap_or_default();
        }
        if changed {
            self.save_drafts();
        }
    }

    /// Forgets the draft of a conversation that is gone (a removed contact), and saves that.
    pub(super) fn forget_draft(&mut self, conversation: ConversationKey) {
        self.model.drafts.take(&conversation);
        if self
            .model
            .open
            .as_ref()
            .is_some_and(|o| o.conversation == conversation)
        {
            self.views.main.composer.text.clear();
        }
        self.save_drafts();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_saved_once_typing_has_stopped_for_the_delay() {
        let mut views = Views::default();
        let now = Instant::now();
        assert_eq!(save_due_in(&views, now), None, "nothing typed");
        views.main.composer.edited_at = Some(now);
        assert_eq!(save_due_in(&views, now), Some(DRAFT_SAVE_DELAY));
        let later = now + DRAFT_SAVE_DELAY / 4;
        assert_eq!(
            save_due_in(&views, later),
            Some(DRAFT_SAVE_DELAY - DRAFT_SAVE_DELAY / 4)
        );
        assert_eq!(
            save_due_in(&views, now + DRAFT_SAVE_DELAY * 2),
            Some(Duration::ZERO),
            "due"
        );
    }
}
