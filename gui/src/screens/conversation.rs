//! The open conversation: its header (name, verified, online or typing, direct or relayed, the
//! disappearing-messages timer, "Contact…", "Verify"), a warning when
//! the contact's key changed, accept/block for a message request, the message list ([`ChatView`]) and
//! the composer with the contact's typing line. A group shows its name, its member count and "Group info…"
//! instead, each incoming message with its sender's name, and in place of the composer a banner once
//! this profile is no longer a member.

use std::time::{Duration, Instant};

use egui::{Align, Key, KeyboardShortcut, Layout, Modifiers, RichText};
use tern_protocol::MessageId;

use crate::action::Action;
use crate::avatar;
use crate::chat::ChatView;
use crate::model::{Confirm, ContactState, Dialog, Model, OpenConversation};
use crate::screens::conversation_list::GROUP_GLYPH;
use crate::theme;
use crate::timer_menu::{timer_badge, timer_menu};
use crate::widgets::{ACCENT, ERROR, WARN, focus_once, primary_button, warning};

/// The composer's state between frames.
#[derive(Default)]
pub struct Composer {
    /// The open conversation's unsent text.
    pub text: String,
    /// The field takes the keyboard focus in the next frame (a conversation was opened).
    pub focus: bool,
    /// When the text last changed, while that change is not saved in the profile yet.
    pub edited_at: Option<Instant>,
    /// The message of the open conversation the next message answers ("Reply" in a message's menu).
    pub replying: Option<MessageId>,
}

/// "typing" is sent again while the person keeps typing, at most this often.
pub const TYPING_RESEND: Duration = Duration::from_secs(3);
/// The composer's button that sends the picture on the clipboard (the toolkit's Ctrl+V pastes text only).
pub const PASTE_PICTURE: &str = "Paste a picture";
/// The room the composer leaves on its right for "Send", "Send a file" and "Paste a picture" at the
/// type scale's button size.
const COMPOSER_BUTTONS_WIDTH: f32 = 160.0;

/// What the header says about the contact: typing, online (and how it is reached, when the node said), or
/// offline.
fn presence(model: &Model, c: &crate::model::Contact) -> String {
    if c.is_typing(Instant::now()) {
        return "typing…".to_owned();
    }
    if !c.online {
        return "offline".to_owned();
    }
    let reach = model
        .status
        .as_ref()
        .and_then(|s| s.contacts.iter().find(|r| r.contact == c.key()))
        .map(|r| r.reach);
    match reach {
        Some(tern_node::api::Reach::Direct) => "online · direct".to_owned(),
        Some(tern_node::api::Reach::Relayed) => "online · through a relay".to_owned(),
        None => "online".to_owned(),
    }
}

/// Draws the open conversation `open`, with `draft` in its composer.
pub fn show(
    ui: &mut egui::Ui,
    model: &Model,
    open: &OpenConversation,
    draft: &mut Composer,
    chat: &mut ChatView,
) -> Vec<Action> {
    let mut actions = Vec::new();
    if model.node.is_none() {
        return actions;
    }
    let conversation = open.conversation;
    let Some(key) = conversation.direct() else {
        return group(ui, model, open, draft, chat);
    };
    let contact = model.contact(&key);
    let name = model.name_of(&key);
    let timer = model.timer_of(&conversation);
    // Header.
    ui.horizontal(|ui| {
        avatar::show(ui, &conversation, &name, avatar::HEADER_SIZE);
        let color = ui.visuals().text_color();
        crate::emoji::line(ui, &name, egui::TextStyle::Heading, color);
        if let Some(c) = contact {
            if c.record.verified {
                ui.colored_label(ACCENT, "✔ Verified");
            }
            ui.label(RichText::new(presence(model, c)).weak());
        }
        timer_badge(ui, timer);
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui.button("Contact…").clicked() {
                actions.push(Action::ShowDialog(Dialog::ContactDetails));
            }
            if ui.button("Verify").clicked() {
                actions.push(Action::VerifyContact(key));
            }
            let blocked = contact.is_some_and(|c| c.record.state == ContactState::Blocked);
            if !blocked && let Some(action) = timer_menu(ui, conversation, timer) {
                actions.push(action);
            }
        });
    });
    // Calm, once per contact per session: messages from before a restore cannot be read.
    if let Some(line) = model.backup.undecryptable.get(&key) {
        ui.label(RichText::new(line).weak());
    }
    if let Some(c) = contact {
        if c.record.key_changed {
            warning(
                ui,
                &format!(
                    "{name}'s safety number has changed. They may have reinstalled Tern, or someone may be \
                     pretending to be them. Verify them again before you trust what they send."
                ),
            );
        }
        if c.record.state == ContactState::Requested {
            ui.horizontal(|ui| {
                ui.colored_label(WARN, format!("{name} is not in your contacts yet."));
                if ui.button("Accept").clicked() {
                    actions.push(Action::SetContactState {
                        contact: key,
                        state: ContactState::Accepted,
                    });
                }
                if ui.button("Block…").clicked() {
                    actions.push(Action::Confirm(Confirm::Block(key)));
                }
            });
        }
        if c.record.state == ContactState::Blocked {
            // Nothing can be sent or received: the banner takes the composer's place.
            ui.separator();
            egui::Frame::new()
                .fill(ERROR.gamma_multiply(0.2))
                .inner_margin(theme::BANNER_MARGIN)
                .corner_radius(theme::CORNER)
                .show(ui, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        ui.label(format!(
                            "You blocked {name}. Their messages are dropped and you cannot write to them."
                        ));
                        if ui.button("Unblock").clicked() {
                            actions.push(Action::SetContactState {
                                contact: key,
                                state: ContactState::Accepted,
                            });
                        }
                    });
                });
            if let Some(action) =
                chat.show(ui, open, &|k| model.sender_label(k), &|id| model.quote(id))
            {
                actions.push(action);
            }
            return actions;
        }
    }
    ui.separator();
    // Composer at the bottom, messages above it.
    let typing = contact.is_some_and(|c| c.is_typing(Instant::now()));
    egui::Panel::bottom("composer")
        .show_separator_line(true)
        .show(ui, |ui| {
            ui.label(
                RichText::new(if typing {
                    format!("{name} is typing…")
                } else {
                    String::new()
                })
                .weak()
                .italics(),
            );
            actions.extend(composer(ui, open, draft, &|id| model.quote(id)));
        });
    if let Some(action) = chat.show(ui, open, &|k| model.sender_label(k), &|id| model.quote(id)) {
        actions.push(action);
    }
    actions
}

/// Draws the open group: its header, the messages with their senders' names, and the composer (or,
/// once this profile is no longer a member, a banner in its place).
fn group(
    ui: &mut egui::Ui,
    model: &Model,
    open: &OpenConversation,
    draft: &mut Composer,
    chat: &mut ChatView,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let id = open.conversation;
    let summary = model.group(&id);
    let name = model.title_of(&id);
    ui.horizontal(|ui| {
        avatar::show(ui, &id, &name, avatar::HEADER_SIZE);
        let color = ui.visuals().text_color();
        crate::emoji::line(
            ui,
            &format!("{GROUP_GLYPH} {name}"),
            egui::TextStyle::Heading,
            color,
        );
        if let Some(g) = summary {
            ui.label(RichText::new(crate::words::count(g.members, "member", "members")).weak());
        }
        timer_badge(ui, model.timer_of(&id));
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui.button("Group info…").clicked() {
                actions.push(Action::ShowDialog(Dialog::GroupInfo));
            }
        });
    });
    ui.separator();
    let sender = |k: &tern_protocol::IdentityKey| model.sender_label(k);
    if summary.is_some_and(|g| !g.active) {
        egui::Frame::new()
            .fill(ERROR.gamma_multiply(0.2))
            .inner_margin(theme::BANNER_MARGIN)
            .corner_radius(theme::CORNER)
            .show(ui, |ui| {
                ui.label(if summary.is_some_and(|g| g.rejoining) {
                    "This group came back with a backup. An admin's computer adds you back when it \
                     is next online; until then you can read the history but not write."
                } else {
                    "You are no longer a member of this group: you cannot write in it. What was \
                     said stays on this computer."
                });
            });
        if let Some(action) = chat.show(ui, open, &sender, &|id| model.quote(id)) {
            actions.push(action);
        }
        return actions;
    }
    egui::Panel::bottom("composer")
        .show_separator_line(true)
        .show(ui, |ui| {
            actions.extend(composer(ui, open, draft, &|id| model.quote(id)))
        });
    if let Some(action) = chat.show(ui, open, &sender, &|id| model.quote(id)) {
        actions.push(action);
    }
    actions
}

/// The message field and "Send"; Enter sends, Shift+Enter starts a new line. Also tells the contact
/// when the person starts or stops typing, and notes when the text changed (it is saved a moment later).
fn composer(
    ui: &mut egui::Ui,
    open: &OpenConversation,
    state: &mut Composer,
    quote: &dyn Fn(MessageId) -> String,
) -> Vec<Action> {
    let Composer {
        text: draft,
        focus,
        edited_at,
        replying,
    } = state;
    let mut actions = Vec::new();
    if let Some(to) = *replying {
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("Replying to {}", quote(to))).weak());
            let cancel = ui.small_button("✕").on_hover_text("Cancel the reply");
            cancel.widget_info(|| {
                egui::WidgetInfo::labeled(egui::WidgetType::Button, true, "Cancel the reply")
            });
            if cancel.clicked() {
                actions.push(Action::CancelReply);
            }
        });
    }
    let conversation = open.conversation;
    // Typing is told in a 1:1 conversation only.
    let tells_typing = conversation.direct().is_some();
    // What the typing notices below leave `typing_sent` at (the model catches up at the end of the frame).
    let mut typing_sent = open.typing_sent;
    let typing = |typing: bool, sent: &mut Option<Instant>| {
        *sent = typing.then(Instant::now);
        Action::Typing {
            conversation,
            typing,
        }
    };
    let id = egui::Id::new("composer");
    let focused = ui.memory(|m| m.has_focus(id));
    // Enter alone sends (`consume_key` would also take Shift+Enter, which must reach the editor).
    let enter = focused
        && !ui.input(|i| i.modifiers.shift)
        && ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Enter));
    let mut send = enter;
    ui.horizontal(|ui| {
        let response = ui.add(
            egui::TextEdit::multiline(draft)
                .id(id)
                .hint_text("Write a message (Enter sends, Shift+Enter starts a new line)")
                .return_key(KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter))
                .char_limit(tern_protocol::message::MAX_TEXT_LEN)
                .desired_rows(2)
                .desired_width(ui.available_width() - COMPOSER_BUTTONS_WIDTH),
        );
        focus_once(&response, focus);
        if response.changed() {
            *edited_at = Some(Instant::now());
        }
        if response.changed() && tells_typing {
            let now = Instant::now();
            if draft.trim().is_empty() {
                if typing_sent.is_some() {
                    actions.push(typing(false, &mut typing_sent));
                }
            } else if typing_sent.is_none_or(|t| now - t > TYPING_RESEND) {
                actions.push(typing(true, &mut typing_sent));
            }
        }
        send |= ui.add(primary_button("Send")).clicked();
        {
            let attach = ui.button("📎").on_hover_text("Send a file");
            attach.widget_info(|| {
                egui::WidgetInfo::labeled(egui::WidgetType::Button, true, "Send a file")
            });
            if attach.clicked() {
                actions.push(Action::AskAttach(conversation));
            }
            let paste = ui.button("🖼").on_hover_text(PASTE_PICTURE);
            paste.widget_info(|| {
                egui::WidgetInfo::labeled(egui::WidgetType::Button, true, PASTE_PICTURE)
            });
            if paste.clicked() {
                actions.push(Action::PastePicture(conversation));
            }
        }
        if enter {
            response.request_focus();
        }
    });
    let text = draft.trim().to_owned();
    if send && !text.is_empty() {
        draft.clear();
        if typing_sent.is_some() {
            actions.push(typing(false, &mut typing_sent));
        }
        actions.push(Action::Send {
            conversation,
            text,
            reply_to: replying.take(),
        });
    }
    actions
}

#[cfg(test)]
mod tests {
    use egui::accesskit::Role;
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::model::test_rows::key;

    struct State {
        open: OpenConversation,
        draft: Composer,
        actions: Vec<Action>,
    }

    #[test]
    fn the_composer_asks_to_send_and_to_tell_the_contact_about_typing() {
        let state = State {
            open: OpenConversation {
                conversation: key(1).into(),
                messages: Vec::new(),
                older: None,
                loading: false,
                typing_sent: None,
                info_times: None,
            },
            draft: Composer::default(),
            actions: Vec::new(),
        };
        let mut h = Harness::new_ui_state(
            |ui, s: &mut State| {
                let actions = composer(ui, &s.open, &mut s.draft, &|_| String::new());
                // What the executor would do with the model.
                for action in &actions {
                    if let Action::Typing { typing, .. } = action {
                        s.open.typing_sent = typing.then(Instant::now);
                    }
                }
                s.actions.extend(actions);
            },
            state,
        );
        h.get_by_role(Role::MultilineTextInput).focus();
        h.step();
        h.get_by_role(Role::MultilineTextInput)
            .type_text("  lunch?  ");
        h.step();
        let kinds = |h: &Harness<'_, State>| {
            h.state()
                .actions
                .iter()
                .map(Action::kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&h), vec!["typing"], "started typing");
        assert!(h.state().open.typing_sent.is_some());
        h.key_press(egui::Key::Enter);
        h.step();
        assert_eq!(kinds(&h), vec!["typing", "typing", "send"]);
        match &h.state().actions[1..] {
            [
                Action::Typing { typing: false, .. },
                Action::Send {
                    text,
                    conversation,
                    reply_to: None,
                },
            ] => {
                assert_eq!(text, "lunch?", "sent trimmed");
                assert_eq!(*conversation, key(1).into());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(h.state().draft.text.is_empty(), "the composer is cleared");
        assert!(h.state().draft.edited_at.is_some(), "a change to save");
    }
}
