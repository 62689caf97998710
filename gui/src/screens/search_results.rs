//! Search results in place of the open conversation: one line per message found, with its date and the
//! matched text highlighted; a click opens its conversation scrolled to it.

use egui::text::LayoutJob;
use egui::{Color32, FontId, TextFormat};
use tern_node::api::now_ms;

use crate::action::Action;
use crate::model::{MessageFields, MessageRow, Model};
use crate::timefmt;
use crate::widgets::first_line;
use crate::words;

/// Draws `results` of the search for `query`.
pub fn show(ui: &mut egui::Ui, model: &Model, results: &[MessageRow], query: &str) -> Vec<Action> {
    let mut actions = Vec::new();
    let query = query.trim();
    ui.heading(format!(
        "{} for “{query}”",
        words::count(results.len(), "result", "results")
    ));
    ui.separator();
    let now = now_ms();
    let font = egui::TextStyle::Body.resolve(ui.style());
    let text_color = ui.visuals().text_color();
    let mark = ui.visuals().selection.bg_fill;
    egui::ScrollArea::vertical().show(ui, |ui| {
        for m in results {
            let with = model.title_of(&m.conversation_key());
            let who = match m.sender {
                None => "You".to_owned(),
                Some(k) => model.sender_label(&k),
            };
            let head = format!("{with} · {} — {who}: ", timefmt::when(m.sort_ms(), now));
            let job = highlighted(
                &head,
                &first_line(&m.text, 80),
                query,
                Style {
                    font: font.clone(),
                    color: text_color,
                    mark,
                },
            );
            if ui.selectable_label(false, job).clicked() {
                actions.push(Action::OpenConversation {
                    conversation: m.conversation_key(),
                    scroll_to: Some(m.id),
                });
            }
        }
    });
    actions
}

/// How a result line is drawn: its font and colour, and the background of the matched text.
pub struct Style {
    pub font: FontId,
    pub color: Color32,
    pub mark: Color32,
}

/// `head` then `text`, with every occurrence of `query` in `text` (ignoring case) on the `mark`
/// background.
pub fn highlighted(head: &str, text: &str, query: &str, style: Style) -> LayoutJob {
    let plain = TextFormat::simple(style.font.clone(), style.color);
    let marked = TextFormat {
        background: style.mark,
        ..plain.clone()
    };
    let mut job = LayoutJob::default();
    job.append(head, 0.0, plain.clone());
    let mut at = 0;
    for (start, end) in matches(text, query) {
        job.append(&text[at..start], 0.0, plain.clone());
        job.append(&text[start..end], 0.0, marked.clone());
        at = end;
    }
    job.append(&text[at..], 0.0, plain);
    job
}

/// The byte ranges of `query` in `text`, ignoring case, not overlapping.
pub fn matches(text: &str, query: &str) -> Vec<(usize, usize)> {
    let needle: Vec<char> = query.chars().flat_map(char::to_lowercase).collect();
    if needle.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let mut i = 0;
    while i < starts.len() {
        // Compare lower-cased characters from this one on until the needle is used up.
        let mut end = None;
        let mut matched = 0;
        for (offset, c) in text[starts[i]..].char_indices() {
            let lower: Vec<char> = c.to_lowercase().collect();
            if needle.get(matched..matched + lower.len()) != Some(&lower[..]) {
                break;
            }
            matched += lower.len();
            if matched == needle.len() {
                end = Some(starts[i] + offset + c.len_utf8());
                break;
            }
        }
        match end {
            Some(end) => {
                found.push((starts[i], end));
                i = starts.partition_point(|&s| s < end);
            }
            None => i += 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_match_is_found_ignoring_case() {
        assert_eq!(
            matches("Lunch at noon, LUNCH!", "lunch"),
            vec![(0, 5), (15, 20)]
        );
        assert_eq!(matches("héllo HÉLLO", "héllo"), vec![(0, 6), (7, 13)]);
        assert_eq!(matches("aaa", "aa"), vec![(0, 2)]);
        assert!(matches("hello", "").is_empty());
        assert!(matches("hello", "xyz").is_empty());
    }

    #[test]
    fn the_match_is_drawn_on_the_mark_colour_and_the_rest_is_not() {
        let mark = Color32::from_rgb(1, 2, 3);
        let job = highlighted(
            "Bob · 5 Dec 20:17 — Bob: ",
            "see you at Noon then",
            "noon",
            Style {
                font: FontId::proportional(14.0),
                color: Color32::WHITE,
                mark,
            },
        );
        let marked: Vec<&str> = job
            .sections
            .iter()
            .filter(|s| s.format.background == mark)
            .map(|s| &job.text[s.byte_range.start.0..s.byte_range.end.0])
            .collect();
        assert_eq!(marked, vec!["Noon"]);
        assert!(job.text.starts_with("Bob · 5 Dec 20:17"));
    }
}
