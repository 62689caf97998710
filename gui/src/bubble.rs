//! One message as the list draws it: a bubble (or a centred system line) whose text can be selected,
//! with its web links drawn as links, its emoji in colour (`emoji`) and, for a reply, what it answers on top, at most
//! [`MAX_BUBBLE_WIDTH`] wide, and its message menu (Reply, Copy, Info, "Delete for me…") on a right click anywhere on the bubble or from its "…" button, which the
//! keyboard and screen readers reach.

use egui::{Align, Color32, Layout, Response, RichText, Sense, UiBuilder};

use crate::action::Action;
use crate::avatar;
use crate::emoji;
use crate::file_card::{self, Thumbnails};
use crate::links::{self, Piece};
use crate::model::{Confirm, MessageRow, MessageStatus};
use crate::timefmt;
use crate::widgets::status_text;

pub const BUBBLE_MARGIN: f32 = 8.0;
/// The narrowest bubble: room for the time, status and menu button.
const MIN_BUBBLE_WIDTH: f32 = 150.0;
/// A bubble with a file card is at least this wide (room for a preview and its buttons).
const FILE_CARD_WIDTH: f32 = 260.0;
/// A bubble is at most this wide, in points (about 70 characters a line: easy to read)…
pub const MAX_BUBBLE_WIDTH: f32 = 560.0;
/// …and at most this share of the list's width.
pub const BUBBLE_SHARE: f32 = 0.65;
/// The colour of a sender's name on a group message.
const SENDER: Color32 = Color32::from_rgb(0x4f, 0x9a, 0xf0);
/// What screen readers call a bubble's "…" button.
pub const MENU_LABEL: &str = "Message menu";

/// The widest a bubble may be (margins included) in a list `width` wide.
pub fn max_width(width: f32) -> f32 {
    (width * BUBBLE_SHARE).min(MAX_BUBBLE_WIDTH)
}

/// A system line ("Ana set disappearing messages to 1 day"): a centred notice with its time, not a
/// bubble.
pub fn system_line(ui: &mut egui::Ui, m: &MessageRow) {
    ui.vertical_centered(|ui| {
        ui.add_space(2.0);
        ui.add(
            egui::Label::new(
                RichText::new(format!("{} · {}", m.text, timefmt::clock(m.sort_ms())))
                    .weak()
                    .italics(),
            )
            .wrap(),
        );
    });
}

/// The message menu's entries; returns what the chosen one asks for (Copy puts the text on the
/// clipboard here and asks for a short "Copied" toast).
fn menu(ui: &mut egui::Ui, m: &MessageRow) -> Option<Action> {
    let mut asked = None;
    if !m.system && m.status != MessageStatus::Failed && ui.button("Reply").clicked() {
        asked = Some(Action::ReplyTo {
            conversation: m.conversation,
            id: m.id,
        });
    }
    if !m.text.is_empty() && ui.button("Copy").clicked() {
        ui.ctx().copy_text(m.text.clone());
        asked = Some(Action::notice("Copied"));
    }
    if ui.button("Info").clicked() {
        asked = Some(Action::MessageInfo {
            conversation: m.conversation,
            id: m.id,
        });
    }
    if ui.button("Delete for me…").clicked() {
        asked = Some(Action::Confirm(Confirm::DeleteMessage {
            conversation: m.conversation,
            id: m.id,
        }));
    }
    if asked.is_some() {
        ui.close();
    }
    asked
}

/// Text with no emoji drawn as pictures: a selectable, wrapped label.
fn plain_label(ui: &mut egui::Ui, plain: &str, color: Color32) -> Response {
    ui.add(
        egui::Label::new(RichText::new(plain).color(color))
            .selectable(true)
            .wrap(),
    )
}

/// A piece of a message's text between links, its emoji in colour (`emoji`).
fn text_piece(ui: &mut egui::Ui, plain: &str, color: Color32) -> Response {
    let font = egui::TextStyle::Body.resolve(ui.style());
    match emoji::prepare(ui, plain, &font, color) {
        Some(prepared) => emoji::label(ui, prepared, true, true),
        None => plain_label(ui, plain, color),
    }
}

/// The message's text, selectable, with its links as links (they open only when clicked); returns the
/// responses a right click can land on. `prepared` is the whole text with its emoji ([`emoji::prepare`]).
fn text(
    ui: &mut egui::Ui,
    text: &str,
    color: Color32,
    prepared: Option<emoji::Prepared>,
) -> Vec<Response> {
    let pieces = links::split(text);
    if let [Piece::Text(plain)] = pieces.as_slice() {
        return vec![match prepared {
            Some(prepared) => emoji::label(ui, prepared, true, true),
            None => plain_label(ui, plain, color),
        }];
    }
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(plain) => text_piece(ui, plain, color),
                // Underlined, in the bubble's text colour: the link colour is unreadable on the blue
                // of an outgoing bubble.
                Piece::Link(url) => {
                    let link = ui.add(egui::Hyperlink::from_label_and_url(
                        RichText::new(*url).color(color).underline(),
                        *url,
                    ));
                    // egui 0.35 makes a link in selectable text a plain label to screen readers:
                    // say again that it is a link.
                    link.widget_info(|| {
                        egui::WidgetInfo::labeled(egui::WidgetType::Link, true, *url)
                    });
                    link
                }
            })
            .collect()
    })
    .inner
}

/// One message bubble, with its sender's name on top in a group (`from`), what a reply answers
/// (`quote`: "Pat: are we still on?") and a file's card in place of the text, in a list `width` wide;
/// returns what its buttons ("retry", a file's, the menu's) asked for.
pub fn bubble(
    ui: &mut egui::Ui,
    m: &MessageRow,
    from: Option<&str>,
    quote: Option<&str>,
    width: f32,
    thumbnails: &mut Thumbnails,
) -> Option<Action> {
    let mut asked = None;
    let layout = if m.outgoing() {
        Layout::right_to_left(Align::Min)
    } else {
        Layout::left_to_right(Align::Min)
    };
    ui.with_layout(layout, |ui| {
        let fill = if m.outgoing() {
            Color32::from_rgb(0x2f, 0x6f, 0xd0)
        } else {
            ui.visuals().faint_bg_color
        };
        let text_color = if m.outgoing() {
            Color32::WHITE
        } else {
            ui.visuals().text_color()
        };
        // The bubble is as wide as its text (wrapped at the bubble's widest) or its status line.
        let max = max_width(width) - 2.0 * BUBBLE_MARGIN;
        // Right-to-left rows in the order they are drawn (`bidi`); the text itself otherwise.
        let body = egui::TextStyle::Body.resolve(ui.style());
        let shown = crate::bidi::for_label(ui, &m.text, &body, max);
        // Emoji drawn as pictures are one row wide, not as wide as their glyphs.
        let prepared = emoji::prepare(ui, &shown, &body, text_color);
        let text_width = match &prepared {
            Some(prepared) => {
                let mut job = prepared.job.clone();
                job.wrap.max_width = max;
                ui.fonts_mut(|f| f.layout_job(job)).size().x
            }
            None => {
                ui.painter()
                    .layout(shown.to_string(), body, text_color, max)
                    .size()
                    .x
            }
        };
        let card = if m.attachment.is_some() {
            FILE_CARD_WIDTH
        } else {
            MIN_BUBBLE_WIDTH
        };
        let inner = text_width.max(card).min(max);
        // The bubble as a whole takes a right click; so do its texts, which are on top of it.
        let mut targets = Vec::new();
        let frame = ui.scope_builder(UiBuilder::new().sense(Sense::click()), |ui| {
            egui::Frame::new()
                .fill(fill)
                .corner_radius(10.0)
                .inner_margin(BUBBLE_MARGIN)
                .show(ui, |ui| {
                    ui.set_width(inner);
                    ui.with_layout(Layout::top_down(Align::Min), |ui| {
                        if let Some(from) = from {
                            ui.horizontal(|ui| {
                                if let Some(sender) = m.sender {
                                    let who = crate::model::ConversationKey::Direct(sender);
                                    avatar::show(ui, &who, from, avatar::SMALL_SIZE);
                                }
                                // Read out as "From Alice" (seen as the name alone).
                                ui.label(RichText::new(from).strong().color(SENDER))
                                    .widget_info(|| {
                                        egui::WidgetInfo::labeled(
                                            egui::WidgetType::Label,
                                            true,
                                            format!("From {from}"),
                                        )
                                    });
                            });
                        }
                        if let Some(quote) = quote
                            && quote_block(ui, quote, text_color).clicked()
                            && let Some(answered) = m.reply_to
                        {
                            asked = Some(Action::OpenConversation {
                                conversation: m.conversation,
                                scroll_to: Some(answered),
                            });
                        }
                        if let Some(attachment) = &m.attachment {
                            asked = file_card::show(ui, m, attachment, text_color, thumbnails);
                        }
                        if !m.text.is_empty() || m.attachment.is_none() {
                            let drawn = text(ui, &shown, text_color, prepared);
                            // Read out in the order it was written, not in the order it is drawn.
                            if shown != m.text.as_str()
                                && let [label] = drawn.as_slice()
                            {
                                label.widget_info(|| {
                                    egui::WidgetInfo::labeled(
                                        egui::WidgetType::Label,
                                        true,
                                        &m.text,
                                    )
                                });
                            }
                            targets.extend(drawn);
                        }
                        if let Some(chosen) = meta_line(ui, m, text_color) {
                            asked = Some(chosen);
                        }
                    });
                });
        });
        targets.push(frame.response);
        for target in &targets {
            if let Some(menu) = target.context_menu(|ui| {
                if let Some(chosen) = menu(ui, m) {
                    asked = Some(chosen);
                }
            }) {
                // The menu is a popup of its own: nothing more to do with it here.
                drop(menu);
            }
        }
    });
    asked
}

/// What a reply answers, above its text: a quieter block with a bar on its left, read out as "Reply
/// to …". A click on it brings the answered message into view (its response says when).
fn quote_block(ui: &mut egui::Ui, quote: &str, text_color: Color32) -> egui::Response {
    egui::Frame::new()
        .fill(text_color.gamma_multiply(0.12))
        .corner_radius(4.0)
        .inner_margin(egui::Margin {
            left: 8,
            right: 6,
            top: 3,
            bottom: 3,
        })
        .show(ui, |ui| {
            let shown = format!("↩ {quote}");
            let color = text_color.gamma_multiply(0.85);
            let font = egui::TextStyle::Small.resolve(ui.style());
            let label = match emoji::prepare(ui, &shown, &font, color) {
                Some(prepared) => {
                    emoji::label_sensing(ui, prepared, true, false, Some(Sense::click()))
                }
                None => ui.add(
                    egui::Label::new(RichText::new(shown).small().color(color))
                        .wrap()
                        .sense(Sense::click()),
                ),
            };
            let label = label
                .on_hover_cursor(egui::CursorIcon::PointingHand)
                .on_hover_text("Show the message this answers");
            label.widget_info(|| {
                egui::WidgetInfo::labeled(egui::WidgetType::Link, true, format!("Reply to {quote}"))
            });
            let bar = egui::Rect::from_min_size(
                label.rect.left_top() - egui::vec2(6.0, 0.0),
                egui::vec2(2.0, label.rect.height()),
            );
            ui.painter()
                .rect_filled(bar, 1.0, text_color.gamma_multiply(0.6));
            label
        })
        .inner
}

/// The line under a message: its time, an outgoing message's status (or "Failed: retry"), and the
/// "…" button that opens the message menu.
fn meta_line(ui: &mut egui::Ui, m: &MessageRow, text_color: Color32) -> Option<Action> {
    let mut asked = None;
    ui.horizontal(|ui| {
        let meta = text_color.gamma_multiply(0.7);
        ui.label(
            RichText::new(timefmt::clock(m.sort_ms()))
                .small()
                .color(meta),
        );
        if m.outgoing() {
            if m.status == MessageStatus::Failed {
                if ui
                    .add(egui::Button::new(
                        RichText::new("⚠ Failed: retry")
                            .small()
                            .color(Color32::YELLOW),
                    ))
                    .clicked()
                {
                    asked = Some(Action::Retry {
                        conversation: m.conversation,
                        id: m.id,
                    });
                }
            } else {
                ui.label(RichText::new(status_text(m.status)).small().color(meta));
            }
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            // Framed only when hovered, pressed or focused: a resting frame is a white box on an
            // outgoing bubble in the light theme.
            let button = egui::Button::new(RichText::new("…").strong().color(text_color))
                .frame_when_inactive(false);
            let (response, menu) =
                egui::containers::menu::MenuButton::from_button(button).ui(ui, |ui| menu(ui, m));
            response.widget_info(|| {
                egui::WidgetInfo::labeled(egui::WidgetType::Button, true, MENU_LABEL)
            });
            if let Some(chosen) = menu.and_then(|inner| inner.inner) {
                asked = Some(chosen);
            }
        });
    });
    asked
}
