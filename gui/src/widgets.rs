//! Small drawing helpers shared by the screens and dialogs: the app's colours, a labelled password
//! field, status dots and words, and text shortening. Nothing here reads the model or asks for actions.

use egui::{Button, Color32, Key, Modifiers, RichText};

use crate::model::MessageStatus;
use crate::theme;

pub const ACCENT: Color32 = Color32::from_rgb(0x2f, 0x80, 0xed);
pub const ONLINE: Color32 = Color32::from_rgb(0x2e, 0xb8, 0x5c);
pub const WARN: Color32 = Color32::from_rgb(0xe0, 0x8a, 0x1e);
pub const ERROR: Color32 = Color32::from_rgb(0xd9, 0x48, 0x3b);
/// A primary button's fill: the accent, dark enough for white text at WCAG AA (5.4:1).
pub const PRIMARY: Color32 = Color32::from_rgb(0x1a, 0x66, 0xd2);

/// The button that does what a form is for ("Add", "Create group", "Save"): white on the accent.
pub fn primary_button(text: &str) -> Button<'static> {
    Button::new(RichText::new(text).color(Color32::WHITE).strong()).fill(PRIMARY)
}

/// A quiet button beside it ("Cancel", "Back", "Close"): no fill, the theme's border.
pub fn secondary_button(text: &str) -> Button<'static> {
    Button::new(text.to_owned()).fill(Color32::TRANSPARENT)
}

/// The button that does something that cannot be undone ("Remove", "Block"): white on red.
pub fn destructive_button(text: &str) -> Button<'static> {
    Button::new(RichText::new(text).color(Color32::WHITE).strong()).fill(ERROR)
}

/// A password field with a visible label.
pub fn password_field(
    ui: &mut egui::Ui,
    label: &str,
    text: &mut String,
    enabled: bool,
) -> egui::Response {
    let label = ui.label(label);
    ui.add_enabled(
        enabled,
        egui::TextEdit::singleline(text)
            .password(true)
            .desired_width(f32::INFINITY),
    )
    .labelled_by(label.id)
}

/// Whether Enter was pressed in the single-line field of `response` (Enter takes the focus away from
/// it, which is how egui says so).
pub fn entered(response: &egui::Response) -> bool {
    response.lost_focus() && response.ctx.input(|i| i.key_pressed(Key::Enter))
}

/// Takes a plain Enter pressed in the multi-line field `id` (call it before drawing the field, which
/// keeps Shift+Enter for a new line): Enter submits there too.
pub fn take_enter(ui: &egui::Ui, id: egui::Id) -> bool {
    ui.memory(|m| m.has_focus(id))
        && !ui.input(|i| i.modifiers.shift)
        && ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Enter))
}

/// Gives `response`'s widget the focus if `flag` asks for it, once.
pub fn focus_once(response: &egui::Response, flag: &mut bool) {
    if std::mem::take(flag) {
        response.request_focus();
    }
}

/// A small filled circle (online and network dots).
pub fn dot(ui: &mut egui::Ui, color: Color32) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 4.0, color);
    response
}

/// A framed warning line.
pub fn warning(ui: &mut egui::Ui, text: &str) {
    egui::Frame::new()
        .fill(WARN.gamma_multiply(0.25))
        .inner_margin(theme::BANNER_MARGIN)
        .corner_radius(theme::CORNER)
        .show(ui, |ui| {
            ui.colored_label(WARN, format!("⚠ {text}"));
        });
}

/// The first line of `text`, cut at `max_chars`, with "…" where something was left out.
pub fn first_line(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > max_chars {
        let cut: String = line.chars().take(max_chars).collect();
        format!("{cut}…")
    } else if text.lines().nth(1).is_some() {
        format!("{line} …")
    } else {
        line.to_owned()
    }
}

/// A number written in space-separated groups, `per_line` groups a line.
pub fn wrap_groups(number: &str, per_line: usize) -> String {
    number
        .split(' ')
        .collect::<Vec<_>>()
        .chunks(per_line)
        .map(|c| c.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last characters of a peer id, enough to tell peers apart.
pub fn short_peer(peer: &libp2p::PeerId) -> String {
    let text = peer.to_base58();
    format!("…{}", &text[text.len().saturating_sub(8)..])
}

/// The status line under an outgoing message.
pub fn status_text(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Sending => "… Sending",
        MessageStatus::Sent => "✔ Sent",
        MessageStatus::Delivered => "✔✔ Delivered",
        MessageStatus::Read => "✔✔ Read",
        MessageStatus::Failed => "⚠ Failed",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_lines_are_cut_and_marked() {
        assert_eq!(first_line("hello", 10), "hello");
        assert_eq!(first_line("hello\nworld", 10), "hello …");
        assert_eq!(first_line("abcdefghijkl", 4), "abcd…");
        assert_eq!(first_line("", 4), "");
    }

    #[test]
    fn a_primary_buttons_text_meets_aa_contrast() {
        let ratio = crate::theme::contrast(Color32::WHITE, PRIMARY);
        assert!(ratio >= 4.5, "{ratio:.2}:1");
    }

    #[test]
    fn numbers_wrap_in_groups() {
        assert_eq!(wrap_groups("1 2 3 4 5", 2), "1 2\n3 4\n5");
    }
}
