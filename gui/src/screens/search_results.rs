//! Search results in place of the open conversation: one line per message found; a click opens its
//! conversation scrolled to it.

use tern_node::api::now_ms;

use crate::action::Action;
use crate::model::{MessageFields, MessageRow, Model};
use crate::timefmt;
use crate::widgets::first_line;

/// Draws `results` of the search for `query`.
pub fn show(ui: &mut egui::Ui, model: &Model, results: &[MessageRow], query: &str) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.heading(format!("{} results for “{}”", results.len(), query.trim()));
    ui.separator();
    egui::ScrollArea::vertical().show(ui, |ui| {
        for m in results {
            let with = model.name_of(&m.conversation_key());
            let who = if m.outgoing() {
                "You".to_owned()
            } else {
                with.clone()
            };
            let line = format!(
                "{with} · {} {} — {who}: {}",
                timefmt::list_time(m.sort_ms(), now_ms()),
                timefmt::clock(m.sort_ms()),
                first_line(&m.text, 80)
            );
            if ui.selectable_label(false, line).clicked() {
                actions.push(Action::OpenConversation {
                    contact: m.conversation_key(),
                    scroll_to: Some(m.id),
                });
            }
        }
    });
    actions
}
