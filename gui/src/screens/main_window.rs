//! The unlocked app's window: the top bar (name, search, network, "My code", settings), the conversation list on the left, and on the right the search results, the open
//! conversation, or a hint.

use egui::{Align, Layout, RichText};

use super::{conversation, conversation_list, search_results};
use crate::action::Action;
use crate::chat::ChatView;
use crate::model::{Dialog, Model};
use crate::widgets::{ONLINE, WARN, dot, entered, focus_once};
use crate::words;

/// Longest search query.
pub const MAX_QUERY_CHARS: usize = 256;

/// Most unsent drafts kept (in the profile too, sealed): writing one more drops the oldest.
pub const MAX_KEPT_DRAFTS: usize = tern_node::drafts::MAX_DRAFTS;

/// What is being typed in the main window.
#[derive(Default)]
pub struct MainForm {
    /// The conversation list's name filter.
    pub filter: String,
    /// The search field.
    pub search: String,
    /// The open conversation's composer (the other conversations' drafts wait in the model).
    pub composer: conversation::Composer,
    /// The search field takes the focus in the next frame (Ctrl+F).
    pub focus_search: bool,
}

/// Draws the main window (the dialogs over it are drawn after it).
pub fn show(
    ui: &mut egui::Ui,
    model: &Model,
    form: &mut MainForm,
    chat: &mut ChatView,
) -> Vec<Action> {
    let mut actions = Vec::new();
    egui::Panel::top("top").show(ui, |ui| {
        actions.extend(top_bar(ui, model, &mut form.search, &mut form.focus_search))
    });
    egui::Panel::left("conversations")
        .resizable(true)
        .default_size(300.0)
        .min_size(220.0)
        .show(ui, |ui| {
            actions.extend(conversation_list::show(ui, model, &mut form.filter));
        });
    egui::CentralPanel::default().show(ui, |ui| {
        if let Some(results) = &model.search_results {
            actions.extend(search_results::show(ui, model, results, &form.search));
        } else if let Some(open) = &model.open {
            actions.extend(conversation::show(
                ui,
                model,
                open,
                &mut form.composer,
                chat,
            ));
        } else {
            ui.centered_and_justified(|ui| {
                ui.label(RichText::new(EMPTY_STATE).weak());
            });
        }
    });
    actions
}

/// What the right side says when no conversation is open: how to start one.
pub const EMPTY_STATE: &str = "Choose a conversation. To talk with someone new, give them your invite link \
     (My code, at the top) and add theirs with + Add contact.";

fn top_bar(ui: &mut egui::Ui, model: &Model, search: &mut String, focus: &mut bool) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let name = model
            .me
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        ui.label(RichText::new(format!("Tern · {name}")).strong());
        ui.separator();
        let label = ui.label("Search");
        let response = ui
            .add(
                egui::TextEdit::singleline(search)
                    .id(egui::Id::new("search"))
                    .hint_text("Search all messages (Ctrl+F)")
                    .char_limit(MAX_QUERY_CHARS)
                    .desired_width(260.0),
            )
            .labelled_by(label.id);
        focus_once(&response, focus);
        if entered(&response) {
            let query = search.trim();
            if !query.is_empty() {
                actions.push(Action::Search(query.to_owned()));
            }
        }
        if model.search_results.is_some() && ui.button("Close search").clicked() {
            search.clear();
            actions.push(Action::CloseSearch);
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui.button("Settings").clicked() {
                actions.push(Action::ShowDialog(Dialog::Settings));
            }
            if ui.button("My code").clicked() {
                actions.push(Action::ShowDialog(Dialog::MyCode));
            }
            let color = if model.connected > 0 { ONLINE } else { WARN };
            let peers = words::count(model.connected, "peer", "peers");
            if ui
                .add(egui::Button::new(RichText::new(peers).color(color)))
                .on_hover_text("Network status")
                .clicked()
            {
                actions.push(Action::ShowDialog(Dialog::Network));
            }
            dot(ui, color);
        });
    });
    actions
}
