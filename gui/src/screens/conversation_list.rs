//! The conversation list on the left: a name filter, "+ Add contact", "New group", and one row per
//! conversation, contact or group (avatar, online dot or group glyph, name, verified mark, request tag, time,
//! unread badge, last line or "typing…"; in a group, the last line's sender).

use std::time::Instant;

use egui::{Align, Color32, Layout, RichText};
use tern_node::api::now_ms;

use crate::action::Action;
use crate::model::{Contact, ContactState, Dialog, ListRow, Model};
use crate::timefmt;
use crate::widgets::{ACCENT, ONLINE, PRIMARY, WARN, dot, first_line};
use crate::{avatar, theme};

/// What marks a group in the list and the conversation header.
pub const GROUP_GLYPH: &str = "👥";

/// What screen readers read for an unread count of `n` (the badge shows the number alone).
pub fn unread_label(n: u64) -> String {
    format!("{n} unread")
}

/// Draws the list; a clicked row opens its conversation.
pub fn show(ui: &mut egui::Ui, model: &Model, filter: &mut String) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.add_space(theme::ITEM_SPACING.y);
    ui.horizontal(|ui| {
        let label = ui.label("Filter");
        ui.add(
            egui::TextEdit::singleline(filter)
                .hint_text("Name")
                .desired_width(140.0),
        )
        .labelled_by(label.id);
        if ui.button("+ Add contact").clicked() {
            actions.push(Action::ShowDialog(Dialog::AddContact));
        }
        if ui.button("New group").clicked() {
            actions.push(Action::ShowDialog(Dialog::NewGroup));
        }
    });
    ui.separator();
    let rows = model.list_rows_matching(filter);
    let now = now_ms();
    let instant = Instant::now();
    egui::ScrollArea::vertical().show(ui, |ui| {
        // Rows are clicked as a whole: their texts are not selectable.
        ui.style_mut().interaction.selectable_labels = false;
        for row in &rows {
            let contact = row.key.direct().and_then(|k| model.contact(&k));
            let name = model.title_of(&row.key);
            let selected = model
                .open
                .as_ref()
                .is_some_and(|o| o.conversation == row.key);
            let frame = egui::Frame::new()
                .inner_margin(theme::ROW_MARGIN)
                .corner_radius(theme::CORNER)
                .fill(if selected {
                    ui.visuals().selection.bg_fill.gamma_multiply(0.35)
                } else {
                    Color32::TRANSPARENT
                });
            let response = frame
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.horizontal_top(|ui| {
                        avatar::show(ui, &row.key, &name, avatar::LIST_SIZE);
                        ui.vertical(|ui| {
                            title_line(ui, model, row, contact, &name, now);
                            preview_line(ui, model, row, contact, instant);
                        });
                    });
                })
                .response;
            let response = response.interact(egui::Sense::click());
            response
                .widget_info(|| egui::WidgetInfo::labeled(egui::WidgetType::Button, true, &name));
            if response.clicked() {
                actions.push(Action::OpenConversation {
                    conversation: row.key,
                    scroll_to: None,
                });
            }
        }
    });
    actions
}

/// A row's first line: online dot or group glyph, name, marks and tags, and on the right the time and
/// the unread count.
fn title_line(
    ui: &mut egui::Ui,
    model: &Model,
    row: &ListRow,
    contact: Option<&Contact>,
    name: &str,
    now: u64,
) {
    ui.horizontal(|ui| {
        if row.key.is_group() {
            ui.label(RichText::new(GROUP_GLYPH).color(ACCENT))
                .on_hover_text("Group");
        } else {
            let online = contact.is_some_and(|c| c.online);
            let color = if online {
                ONLINE
            } else {
                ui.visuals().weak_text_color()
            };
            dot(ui, color).on_hover_text(if online { "Online" } else { "Offline" });
        }
        let strong = ui.visuals().strong_text_color();
        crate::emoji::line(ui, name, egui::TextStyle::Body, strong);
        if contact.is_some_and(|c| c.record.verified) {
            ui.colored_label(ACCENT, "✔").on_hover_text("Verified");
        }
        if let Some(line) = contact.and_then(|c| model.backup.undecryptable.get(&c.key())) {
            ui.label(RichText::new("ⓘ").weak()).on_hover_text(line);
        }
        if contact.is_some_and(|c| c.record.state == ContactState::Requested) {
            ui.colored_label(WARN, "request");
        }
        if model.prefs.pin_rank(&row.key).is_some() {
            ui.label(RichText::new("pinned").weak().small())
                .on_hover_text("Pinned to the top of the list");
        }
        if model.prefs.is_muted(&row.key) {
            ui.label(RichText::new("muted").weak().small())
                .on_hover_text("No notifications; not counted in the title");
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if let Some(last) = &row.last {
                ui.label(
                    RichText::new(timefmt::list_time(last.sort_ms(), now))
                        .weak()
                        .small(),
                );
            }
            if row.unread > 0 {
                egui::Frame::new()
                    .fill(PRIMARY)
                    .corner_radius(theme::BADGE_RADIUS)
                    .inner_margin(theme::BADGE_MARGIN)
                    .show(ui, |ui| {
                        ui.label(
                            RichText::new(row.unread.to_string())
                                .color(Color32::WHITE)
                                .small()
                                .strong(),
                        )
                        .on_hover_text(unread_label(row.unread))
                        .widget_info(|| {
                            egui::WidgetInfo::labeled(
                                egui::WidgetType::Label,
                                true,
                                unread_label(row.unread),
                            )
                        });
                    });
            }
        });
    });
}

/// A row's second line: the last message (its sender's name first in a group) or "typing…".
fn preview_line(
    ui: &mut egui::Ui,
    model: &Model,
    row: &ListRow,
    contact: Option<&Contact>,
    instant: Instant,
) {
    let preview = if contact.is_some_and(|c| c.is_typing(instant)) {
        "typing…".to_owned()
    } else {
        row.last.as_ref().map_or_else(
            || "No messages yet".to_owned(),
            |m| {
                let prefix = match m.sender {
                    _ if m.system => String::new(),
                    None => "You: ".to_owned(),
                    Some(k) if row.key.is_group() => {
                        format!("{}: ", model.sender_label(&k))
                    }
                    Some(_) => String::new(),
                };
                // A file message says which file.
                let text = match &m.attachment {
                    Some(a) if m.text.is_empty() => {
                        format!("📄 {}", a.name)
                    }
                    _ => m.text.clone(),
                };
                format!("{prefix}{}", first_line(&text, 48))
            },
        )
    };
    let font = egui::TextStyle::Body.resolve(ui.style());
    let shown = crate::bidi::for_label(ui, &preview, &font, f32::INFINITY);
    let weak = ui.visuals().weak_text_color();
    let selectable = ui.style().interaction.selectable_labels;
    let label = match crate::emoji::prepare(ui, &shown, &font, weak) {
        Some(prepared) => crate::emoji::label(ui, prepared, false, selectable),
        None => ui.label(RichText::new(shown.as_ref()).weak()),
    };
    if shown != preview.as_str() {
        label.widget_info(|| egui::WidgetInfo::labeled(egui::WidgetType::Label, true, &preview));
    }
}
