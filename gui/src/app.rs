//! `TernApp`: the eframe app. Each frame drains the node's updates into the [`Model`], then draws the
//! screen; what the person does becomes backend calls.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::{Align, Color32, Key, KeyboardShortcut, Layout, Modifiers, RichText};
use tern_node::engine::now_ms;
use tern_node::settings::{NetworkSettings, parse_server_addr};
use tern_node::store::{ContactState, MessageStatus, Password};
use tern_protocol::{ContactCard, Fingerprint, IdentityKey, MessageId};

use crate::backend::{Backend, Options};
use crate::chat::ChatView;
use crate::model::{Dialog, Model, Screen};
use crate::profiles::{self, Strength};
use crate::qr;
use crate::timefmt;

/// "typing" is sent again while the person keeps typing, at most this often.
pub const TYPING_RESEND: Duration = Duration::from_secs(3);
/// The network panel asks the node for its status this often while it is open.
pub const STATUS_REFRESH: Duration = Duration::from_secs(2);
/// Longest search query.
pub const MAX_QUERY_CHARS: usize = 256;

const ACCENT: Color32 = Color32::from_rgb(0x2f, 0x80, 0xed);
const ONLINE: Color32 = Color32::from_rgb(0x2e, 0xb8, 0x5c);
const WARN: Color32 = Color32::from_rgb(0xe0, 0x8a, 0x1e);
const ERROR: Color32 = Color32::from_rgb(0xd9, 0x48, 0x3b);

/// Fields of dialogs that are not part of the model (they are thrown away when the dialog closes).
#[derive(Default)]
struct Forms {
    invite: String,
    invite_name: String,
    image_path: String,
    rename: String,
    new_bootstrap: String,
    old_password: String,
    new_password: String,
    settings: Option<NetworkSettings>,
    status_asked: Option<Instant>,
    qr_texture: Option<egui::TextureHandle>,
    contact: Option<IdentityKey>,
}

/// The desktop app.
pub struct TernApp {
    pub model: Model,
    pub backend: Backend,
    chat: ChatView,
    forms: Forms,
}

impl std::fmt::Debug for TernApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TernApp")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

const THEME_KEY: &str = "tern.dark";
const NOTIFY_KEY: &str = "tern.notifications";

impl TernApp {
    /// The app over profiles in `options.root`, drawing with `ctx`.
    pub fn new(ctx: &egui::Context, options: Options) -> std::io::Result<Self> {
        let mut model = Model::default();
        model.profile_screen.profiles = profiles::list(&options.root);
        model.profile_screen.creating = model.profile_screen.profiles.is_empty();
        if !model.profile_screen.profiles.is_empty() {
            model.profile_screen.selected = Some(0);
        }
        let backend = Backend::new(ctx.clone(), options)?;
        Ok(Self {
            model,
            backend,
            chat: ChatView::default(),
            forms: Forms::default(),
        })
    }

    /// For eframe: restores the theme and notification choice (not secret, kept by eframe).
    pub fn from_creation_context(
        cc: &eframe::CreationContext<'_>,
        options: Options,
    ) -> std::io::Result<Self> {
        let mut app = Self::new(&cc.egui_ctx, options)?;
        if let Some(storage) = cc.storage {
            app.model.dark = eframe::get_value(storage, THEME_KEY).unwrap_or(true);
            app.model.notifications = eframe::get_value(storage, NOTIFY_KEY).unwrap_or(true);
        }
        Ok(app)
    }

    /// Applies waiting updates and reacts to what they changed. Tests call it between frames too.
    pub fn pump(&mut self, ctx: &egui::Context) {
        self.backend.drain(&mut self.model);
        if self.model.needs_resync
            && let Some(node) = &self.model.node
        {
            self.model.needs_resync = false;
            self.backend.resync(node);
        }
        for name in std::mem::take(&mut self.model.pending_notifications) {
            if self.model.notifications && !self.model.focused {
                self.backend.notify(format!("New message from {name}"));
            }
        }
        // Read receipts for what is on screen while the window has focus.
        if self.model.focused
            && let (Some(node), Some(open)) = (&self.model.node, &self.model.open)
        {
            let ids = self.model.unread_in_open();
            if !ids.is_empty() {
                let contact = open.contact;
                self.model.read_requested.extend(ids.iter().copied());
                self.backend.mark_read(node, contact, ids);
            }
        }
        // Typing stops being shown on its own; ask to redraw when it should.
        let now = Instant::now();
        if let Some(open) = &self.model.open
            && let Some(c) = self.model.contact(&open.contact)
            && let Some(since) = c.typing_since
            && c.is_typing(now)
        {
            ctx.request_repaint_after(crate::model::TYPING_SHOWN_FOR.saturating_sub(now - since));
        }
    }

    /// Draws the current screen into the window's root `ui`.
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        match self.model.screen {
            Screen::Profiles => {
                egui::CentralPanel::default().show(ui, |ui| self.profiles_screen(ui));
            }
            Screen::Main => self.main_screen(ui),
        }
    }

    /// Rows of the open conversation laid out in the last frame.
    pub fn rows_laid_out(&self) -> usize {
        self.chat.last_laid_out
    }

    fn node(&self) -> Option<tern_node::node::Node> {
        self.model.node.clone()
    }

    // ---- the profile screen ----

    fn profiles_screen(&mut self, ui: &mut egui::Ui) {
        let ps = &mut self.model.profile_screen;
        let mut submit = false;
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.12);
            ui.heading(RichText::new("Tern").size(36.0).strong());
            ui.label("Private messages, person to person. No server in the middle.");
            ui.add_space(24.0);
            ui.allocate_ui(egui::vec2(360.0, 420.0), |ui| {
                ui.set_width(360.0);
                if !ps.profiles.is_empty() && !ps.creating {
                    ui.label(RichText::new("Unlock your profile").heading());
                    ui.add_space(8.0);
                    for (i, profile) in ps.profiles.iter().enumerate() {
                        if ui
                            .selectable_label(ps.selected == Some(i), &profile.name)
                            .clicked()
                        {
                            ps.selected = Some(i);
                            ps.error = None;
                        }
                    }
                    ui.add_space(8.0);
                    submit |= password_field(ui, "Password", &mut ps.password, !ps.busy);
                    ui.add_space(8.0);
                    ui.horizontal(|ui| {
                        submit |= ui
                            .add_enabled(!ps.busy && !ps.password.is_empty(), egui::Button::new("Unlock"))
                            .clicked();
                        if ui.add_enabled(!ps.busy, egui::Button::new("New profile…")).clicked() {
                            ps.creating = true;
                            ps.error = None;
                        }
                    });
                } else {
                    ui.label(RichText::new("Create your profile").heading());
                    ui.label("Your name is shown to the people you add. Your password seals everything Tern keeps on this computer; it cannot be recovered.");
                    ui.add_space(8.0);
                    let label = ui.label("Your name");
                    ui.add_enabled(
                        !ps.busy,
                        egui::TextEdit::singleline(&mut ps.name).desired_width(f32::INFINITY),
                    )
                    .labelled_by(label.id);
                    password_field(ui, "Password", &mut ps.password, !ps.busy);
                    let strength = Strength::of(&ps.password);
                    if !ps.password.is_empty() {
                        let color = match strength {
                            Strength::TooShort | Strength::Weak => ERROR,
                            Strength::Fair => WARN,
                            Strength::Strong => ONLINE,
                        };
                        ui.colored_label(color, strength.label());
                    }
                    submit |= password_field(ui, "Confirm password", &mut ps.confirm, !ps.busy);
                    ui.add_space(8.0);
                    ui.horizontal(|ui| {
                        submit |= ui
                            .add_enabled(!ps.busy, egui::Button::new("Create profile"))
                            .clicked();
                        if !ps.profiles.is_empty()
                            && ui.add_enabled(!ps.busy, egui::Button::new("Back")).clicked()
                        {
                            ps.creating = false;
                            ps.error = None;
                        }
                    });
                }
                if ps.busy {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Deriving the key from your password…");
                    });
                }
                if let Some(error) = &ps.error {
                    ui.colored_label(ERROR, error);
                }
            });
        });
        if submit && !self.model.profile_screen.busy {
            self.submit_profile();
        }
    }

    fn submit_profile(&mut self) {
        let root = self.backend.options.root.clone();
        let ps = &mut self.model.profile_screen;
        if ps.creating {
            if Strength::of(&ps.password) == Strength::TooShort {
                ps.error = Some(Strength::TooShort.label().to_owned());
                return;
            }
            if ps.password != ps.confirm {
                ps.error = Some("The two passwords differ".to_owned());
                return;
            }
            let dir = match profiles::new_profile_dir(&root, &ps.name) {
                Ok(dir) => dir,
                Err(e) => {
                    ps.error = Some(format!("Name: {e}"));
                    return;
                }
            };
            if let Err(e) = std::fs::create_dir_all(&root) {
                ps.error = Some(format!("cannot create {}: {e}", root.display()));
                return;
            }
            ps.busy = true;
            ps.error = None;
            let name = ps.name.trim().to_owned();
            let password = Password::new(std::mem::take(&mut ps.password));
            ps.confirm.clear();
            self.backend.unlock(dir, password, Some(name));
        } else {
            let Some(dir) = ps
                .selected
                .and_then(|i| ps.profiles.get(i))
                .map(|p| p.dir.clone())
            else {
                ps.error = Some("Choose a profile".to_owned());
                return;
            };
            ps.busy = true;
            ps.error = None;
            let password = Password::new(std::mem::take(&mut ps.password));
            self.backend.unlock(dir, password, None);
        }
    }

    // ---- the main window ----

    fn main_screen(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("notices")
            .show_separator_line(false)
            .show(ui, |ui| self.notices(ui));
        egui::Panel::left("conversations")
            .resizable(true)
            .default_size(300.0)
            .min_size(220.0)
            .show(ui, |ui| self.conversation_list(ui));
        egui::CentralPanel::default().show(ui, |ui| {
            if self.model.search_results.is_some() {
                self.search_results(ui);
            } else if self.model.open.is_some() {
                self.conversation(ui);
            } else {
                ui.centered_and_justified(|ui| {
                    ui.label(
                        RichText::new("Choose a conversation, or add a contact with + Add contact")
                            .weak(),
                    );
                });
            }
        });
        self.dialogs(ui.ctx());
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let name = self
                .model
                .me
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            ui.label(RichText::new(format!("Tern · {name}")).strong());
            ui.separator();
            let label = ui.label("Search");
            let response = ui
                .add(
                    egui::TextEdit::singleline(&mut self.model.search)
                        .hint_text("Search all messages")
                        .char_limit(MAX_QUERY_CHARS)
                        .desired_width(260.0),
                )
                .labelled_by(label.id);
            if response.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
                self.run_search();
            }
            if self.model.search_results.is_some() && ui.button("Close search").clicked() {
                self.model.search_results = None;
                self.model.search.clear();
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                if ui.button("Settings").clicked() {
                    self.forms.settings = Some(self.model.settings.clone());
                    self.model.dialog = Some(Dialog::Settings);
                }
                if ui.button("My code").clicked() {
                    self.forms.contact = None;
                    self.model.dialog = Some(Dialog::Verify);
                }
                let color = if self.model.connected > 0 {
                    ONLINE
                } else {
                    WARN
                };
                let peers = format!("{} peers", self.model.connected);
                if ui
                    .add(egui::Button::new(RichText::new(peers).color(color)))
                    .on_hover_text("Network status")
                    .clicked()
                {
                    self.model.dialog = Some(Dialog::Network);
                    self.forms.status_asked = None;
                }
                dot(ui, color);
            });
        });
    }

    fn run_search(&mut self) {
        let query = self.model.search.trim().to_owned();
        if let Some(node) = self.node()
            && !query.is_empty()
        {
            self.backend.search(&node, query);
        }
    }

    fn notices(&mut self, ui: &mut egui::Ui) {
        let mut dismiss = None;
        for (i, notice) in self.model.notices.iter().enumerate() {
            ui.horizontal(|ui| {
                let color = if notice.error {
                    ERROR
                } else {
                    ui.visuals().text_color()
                };
                ui.colored_label(color, &notice.text);
                if ui.small_button("Dismiss").clicked() {
                    dismiss = Some(i);
                }
            });
        }
        if let Some(i) = dismiss {
            self.model.notices.remove(i);
        }
    }

    fn conversation_list(&mut self, ui: &mut egui::Ui) {
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            let label = ui.label("Filter");
            ui.add(
                egui::TextEdit::singleline(&mut self.model.filter)
                    .hint_text("Name")
                    .desired_width(140.0),
            )
            .labelled_by(label.id);
            if ui.button("+ Add contact").clicked() {
                self.forms.invite.clear();
                self.forms.invite_name.clear();
                self.forms.image_path.clear();
                self.model.dialog = Some(Dialog::AddContact);
            }
        });
        ui.separator();
        let rows = self.model.list_rows();
        let now = now_ms();
        let instant = Instant::now();
        let mut clicked = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            // Rows are clicked as a whole: their texts are not selectable.
            ui.style_mut().interaction.selectable_labels = false;
            for row in &rows {
                let contact = self.model.contact(&row.key);
                let name = self.model.name_of(&row.key);
                let selected = self
                    .model
                    .open
                    .as_ref()
                    .is_some_and(|o| o.contact == row.key);
                let frame = egui::Frame::new()
                    .inner_margin(6.0)
                    .corner_radius(6.0)
                    .fill(if selected {
                        ui.visuals().selection.bg_fill.gamma_multiply(0.35)
                    } else {
                        Color32::TRANSPARENT
                    });
                let response = frame
                    .show(ui, |ui| {
                        ui.set_width(ui.available_width());
                        ui.horizontal(|ui| {
                            let online = contact.is_some_and(|c| c.online);
                            let color = if online {
                                ONLINE
                            } else {
                                ui.visuals().weak_text_color()
                            };
                            dot(ui, color).on_hover_text(if online { "Online" } else { "Offline" });
                            ui.label(RichText::new(&name).strong());
                            if contact.is_some_and(|c| c.record.verified) {
                                ui.colored_label(ACCENT, "✔").on_hover_text("Verified");
                            }
                            if contact.is_some_and(|c| c.record.state == ContactState::Requested) {
                                ui.colored_label(WARN, "request");
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
                                    ui.label(
                                        RichText::new(format!(" {} ", row.unread))
                                            .color(Color32::WHITE)
                                            .background_color(ACCENT)
                                            .strong(),
                                    )
                                    .on_hover_text(format!("{} unread", row.unread));
                                }
                            });
                        });
                        let preview = if contact.is_some_and(|c| c.is_typing(instant)) {
                            "typing…".to_owned()
                        } else {
                            row.last.as_ref().map_or_else(
                                || "No messages yet".to_owned(),
                                |m| {
                                    let prefix = if m.outgoing { "You: " } else { "" };
                                    format!("{prefix}{}", first_line(&m.text, 48))
                                },
                            )
                        };
                        ui.label(RichText::new(preview).weak());
                    })
                    .response;
                let response = response.interact(egui::Sense::click());
                response.widget_info(|| {
                    egui::WidgetInfo::labeled(egui::WidgetType::Button, true, &name)
                });
                if response.clicked() {
                    clicked = Some(row.key);
                }
            }
        });
        if let Some(key) = clicked {
            self.open_conversation(key, None);
        }
    }

    /// Opens a conversation and loads its newest page.
    pub fn open_conversation(&mut self, key: IdentityKey, scroll_to: Option<MessageId>) {
        let same = self.model.open.as_ref().is_some_and(|o| o.contact == key);
        self.stop_typing();
        self.model.open_conversation(key, scroll_to);
        self.model.search_results = None;
        if !same && let Some(node) = self.node() {
            self.chat = if scroll_to.is_some() {
                ChatView::default()
            } else {
                ChatView::at_newest()
            };
            self.backend.load_page(&node, key, None);
        }
    }

    fn stop_typing(&mut self) {
        if let (Some(node), Some(open)) = (self.node(), self.model.open.as_mut())
            && open.typing_sent.take().is_some()
        {
            self.backend.typing(&node, open.contact, false);
        }
    }

    fn conversation(&mut self, ui: &mut egui::Ui) {
        let Some(key) = self.model.open.as_ref().map(|o| o.contact) else {
            return;
        };
        let Some(node) = self.node() else {
            return;
        };
        let contact = self.model.contact(&key).cloned();
        let name = self.model.name_of(&key);
        // Header.
        ui.horizontal(|ui| {
            ui.heading(&name);
            if let Some(c) = &contact {
                if c.record.verified {
                    ui.colored_label(ACCENT, "✔ Verified");
                }
                ui.label(RichText::new(if c.online { "online" } else { "offline" }).weak());
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                if ui.button("Contact…").clicked() {
                    self.forms.rename = name.clone();
                    self.model.dialog = Some(Dialog::ContactDetails);
                }
                if ui.button("Verify").clicked() {
                    self.forms.contact = Some(key);
                    self.forms.image_path.clear();
                    self.model.dialog = Some(Dialog::Verify);
                }
            });
        });
        if let Some(c) = &contact {
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
                        self.set_state(key, ContactState::Accepted);
                    }
                    if ui.button("Block").clicked() {
                        self.set_state(key, ContactState::Blocked);
                    }
                });
            }
        }
        ui.separator();
        // Composer at the bottom, messages above it.
        let typing = contact
            .as_ref()
            .is_some_and(|c| c.is_typing(Instant::now()));
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
                self.composer(ui, &node, key);
            });
        let Some(open) = self.model.open.as_mut() else {
            return;
        };
        let action = self.chat.show(ui, open);
        match action {
            Some(crate::chat::ChatAction::LoadOlder(cursor)) => {
                if let Some(open) = self.model.open.as_mut() {
                    open.loading = true;
                }
                self.backend.load_page(&node, key, Some(cursor));
            }
            Some(crate::chat::ChatAction::Retry(id)) => self.backend.retry(&node, key, id),
            None => {}
        }
    }

    fn composer(&mut self, ui: &mut egui::Ui, node: &tern_node::node::Node, key: IdentityKey) {
        let Some(open) = self.model.open.as_mut() else {
            return;
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
                egui::TextEdit::multiline(&mut open.draft)
                    .id(id)
                    .hint_text("Write a message (Enter sends, Shift+Enter starts a new line)")
                    .return_key(KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter))
                    .char_limit(tern_node::store::MAX_TEXT_LEN)
                    .desired_rows(2)
                    .desired_width(ui.available_width() - 70.0),
            );
            if response.changed() {
                let now = Instant::now();
                if open.draft.trim().is_empty() {
                    if open.typing_sent.take().is_some() {
                        self.backend.typing(node, key, false);
                    }
                } else if open.typing_sent.is_none_or(|t| now - t > TYPING_RESEND) {
                    open.typing_sent = Some(now);
                    self.backend.typing(node, key, true);
                }
            }
            send |= ui.button("Send").clicked();
            if enter {
                response.request_focus();
            }
        });
        let text = open.draft.trim().to_owned();
        if send && !text.is_empty() {
            open.draft.clear();
            if open.typing_sent.take().is_some() {
                self.backend.typing(node, key, false);
            }
            self.chat.follow();
            self.backend.send(node, key, text);
        }
    }

    fn set_state(&mut self, key: IdentityKey, state: ContactState) {
        if let Some(node) = self.node() {
            self.backend.with_engine(
                &node,
                "cannot change the contact",
                move |engine| engine.set_contact_state(&key, state),
                |m, record| m.upsert_contact(record),
            );
        }
    }

    fn search_results(&mut self, ui: &mut egui::Ui) {
        let results = self.model.search_results.clone().unwrap_or_default();
        ui.heading(format!(
            "{} results for “{}”",
            results.len(),
            self.model.search.trim()
        ));
        ui.separator();
        let mut jump = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for m in &results {
                let who = if m.outgoing {
                    "You".to_owned()
                } else {
                    self.model.name_of(&m.conversation)
                };
                let with = self.model.name_of(&m.conversation);
                let line = format!(
                    "{with} · {} {} — {who}: {}",
                    timefmt::list_time(m.sort_ms(), now_ms()),
                    timefmt::clock(m.sort_ms()),
                    first_line(&m.text, 80)
                );
                if ui.selectable_label(false, line).clicked() {
                    jump = Some((m.conversation, m.id));
                }
            }
        });
        if let Some((key, id)) = jump {
            self.open_conversation(key, Some(id));
        }
    }

    // ---- dialogs ----

    fn dialogs(&mut self, ctx: &egui::Context) {
        let Some(dialog) = self.model.dialog else {
            return;
        };
        let title = match dialog {
            Dialog::AddContact => "Add contact",
            Dialog::Verify => "Verify",
            Dialog::Settings => "Settings",
            Dialog::Network => "Network",
            Dialog::ContactDetails => "Contact",
        };
        let mut open = true;
        egui::Window::new(title)
            .open(&mut open)
            .collapsible(false)
            .resizable(true)
            .default_width(460.0)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| match dialog {
                Dialog::AddContact => self.add_contact_dialog(ui),
                Dialog::Verify => self.verify_dialog(ui),
                Dialog::Settings => self.settings_dialog(ui),
                Dialog::Network => self.network_dialog(ui),
                Dialog::ContactDetails => self.contact_dialog(ui),
            });
        if !open || ctx.input(|i| i.key_pressed(Key::Escape)) {
            self.model.dialog = None;
        }
    }

    fn add_contact_dialog(&mut self, ui: &mut egui::Ui) {
        ui.label("Paste the invite link your contact sent you (it starts with tern:), or open a picture of their QR code.");
        let label = ui.label("Invite link");
        ui.add(
            egui::TextEdit::multiline(&mut self.forms.invite)
                .desired_rows(3)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
        let label = ui.label("Name (optional)");
        ui.add(egui::TextEdit::singleline(&mut self.forms.invite_name))
            .labelled_by(label.id);
        ui.horizontal(|ui| {
            let label = ui.label("QR image");
            ui.add(
                egui::TextEdit::singleline(&mut self.forms.image_path)
                    .hint_text("/path/to/picture.png"),
            )
            .labelled_by(label.id);
            if ui.button("Read QR image").clicked() {
                let path = PathBuf::from(self.forms.image_path.trim());
                self.read_qr_file(&path);
            }
        });
        ui.label(RichText::new("You can also drop a picture of a QR code on this window.").weak());
        if ui.button("Add").clicked() {
            self.add_contact();
        }
    }

    /// Reads an invite out of a QR picture into the invite field.
    pub fn read_qr_file(&mut self, path: &std::path::Path) {
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > qr::MAX_IMAGE_BYTES as u64 => {
                self.model.error(format!(
                    "Cannot use that picture: {}",
                    qr::QrError::TooLarge
                ));
                return;
            }
            Err(e) => {
                self.model
                    .error(format!("Cannot open {}: {e}", path.display()));
                return;
            }
            Ok(_) => {}
        }
        match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| qr::invite_from_image(&bytes).map_err(|e| e.to_string()))
        {
            Ok(link) => {
                self.forms.invite = link;
                self.model.notice("Found a Tern invite in the picture");
            }
            Err(e) => self.model.error(format!("Cannot use that picture: {e}")),
        }
    }

    fn add_contact(&mut self) {
        let link = self.forms.invite.trim().to_owned();
        if let Err(e) = ContactCard::from_invite_link(&link) {
            self.model
                .error(format!("That invite link is not valid: {e}"));
            return;
        }
        let Some(node) = self.node() else {
            return;
        };
        let name = Some(self.forms.invite_name.trim().to_owned()).filter(|n| !n.is_empty());
        self.backend.with_engine(
            &node,
            "cannot add the contact",
            move |engine| engine.add_contact(&link, name.as_deref()),
            |m, (record, _)| {
                m.notice(format!("Added {}", record.local_name));
                m.upsert_contact(record);
                m.dialog = None;
            },
        );
    }

    fn verify_dialog(&mut self, ui: &mut egui::Ui) {
        let Some(me) = self.model.me.clone() else {
            return;
        };
        ui.columns(2, |cols| {
            let ui = &mut cols[0];
            ui.label(RichText::new("My code").strong());
            if self.forms.qr_texture.is_none()
                && let Ok(card) = ContactCard::from_invite_link(&me.invite_link)
                && let Ok(matrix) = card.qr()
            {
                let image = qr::matrix_image(&matrix, 4);
                self.forms.qr_texture = Some(ui.ctx().load_texture(
                    "my-qr",
                    image,
                    egui::TextureOptions::NEAREST,
                ));
            }
            if let Some(texture) = &self.forms.qr_texture {
                ui.add(egui::Image::new(texture).max_width(220.0));
            }
            ui.label(RichText::new("My fingerprint").weak());
            ui.monospace(me.fingerprint.to_string());
            if ui.button("Copy invite link").clicked() {
                ui.ctx().copy_text(me.invite_link.clone());
                self.model.notice("Invite link copied");
            }
            let ui = &mut cols[1];
            let Some(key) = self
                .forms
                .contact
                .or_else(|| self.model.open.as_ref().map(|o| o.contact))
            else {
                ui.label("Open a conversation to verify that contact.");
                return;
            };
            let name = self.model.name_of(&key);
            let verified = self.model.contact(&key).is_some_and(|c| c.record.verified);
            ui.label(RichText::new(format!("Verify {name}")).strong());
            if verified {
                ui.colored_label(ACCENT, format!("✔ {name} is verified"));
            }
            ui.label("Compare this safety number with theirs, in person or on a call you trust:");
            let number = tern_protocol::SafetyNumber::between(&me.key, &key).to_string();
            ui.monospace(wrap_groups(&number, 4));
            ui.label(RichText::new(format!("{name}'s fingerprint")).weak());
            ui.monospace(Fingerprint::of(&key).to_string());
            if ui.button("The numbers match: mark verified").clicked()
                && let Some(node) = self.node()
            {
                let digits = number.clone();
                self.backend.with_engine(
                    &node,
                    "cannot verify",
                    move |engine| {
                        engine.verify(&key, &digits)?;
                        Ok(engine.store().contact(&key)?)
                    },
                    |m, record| {
                        if let Some(record) = record {
                            m.notice(format!("{} is verified", record.local_name));
                            m.upsert_contact(record);
                        }
                    },
                );
            }
            ui.separator();
            ui.label("Or scan their QR code from a picture:");
            ui.horizontal(|ui| {
                let label = ui.label("Their QR image");
                ui.add(egui::TextEdit::singleline(&mut self.forms.image_path).desired_width(160.0))
                    .labelled_by(label.id);
                if ui.button("Scan").clicked() {
                    let path = PathBuf::from(self.forms.image_path.trim());
                    self.scan_to_verify(key, &path);
                }
            });
        });
    }

    /// Verifies `key` from a picture of their QR code: it must hold their own card.
    pub fn scan_to_verify(&mut self, key: IdentityKey, path: &std::path::Path) {
        let link = match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| qr::invite_from_image(&b).map_err(|e| e.to_string()))
        {
            Ok(link) => link,
            Err(e) => {
                self.model.error(format!("Cannot use that picture: {e}"));
                return;
            }
        };
        let Some(node) = self.node() else {
            return;
        };
        self.backend.with_engine(
            &node,
            "cannot verify",
            move |engine| {
                let matched = engine.verify_card(&key, &link)?;
                Ok((matched, engine.store().contact(&key)?))
            },
            |m, (matched, record)| match (matched, record) {
                (true, Some(record)) => {
                    m.notice(format!("{} is verified", record.local_name));
                    m.upsert_contact(record);
                }
                _ => m.error("That QR code belongs to someone else: not verified"),
            },
        );
    }

    fn settings_dialog(&mut self, ui: &mut egui::Ui) {
        ui.label(RichText::new("Appearance").strong());
        ui.horizontal(|ui| {
            if ui.selectable_label(self.model.dark, "Dark").clicked() {
                self.model.dark = true;
            }
            if ui.selectable_label(!self.model.dark, "Light").clicked() {
                self.model.dark = false;
            }
        });
        ui.checkbox(
            &mut self.model.notifications,
            "Desktop notifications for new messages",
        );
        ui.separator();
        ui.label(RichText::new("Network").strong());
        let settings = self
            .forms
            .settings
            .get_or_insert_with(|| self.model.settings.clone());
        ui.checkbox(
            &mut settings.lan_only,
            "LAN only: no internet, find people on this network only",
        );
        ui.checkbox(
            &mut settings.serve_mailbox,
            "Hold mail for LAN peers who are offline",
        );
        ui.label("Bootstrap nodes (they also hold your mail while you are offline):");
        let mut remove = None;
        for (i, addr) in settings.bootstrap.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.monospace(addr.to_string());
                if ui.small_button("Remove").clicked() {
                    remove = Some(i);
                }
            });
        }
        if let Some(i) = remove {
            settings.bootstrap.remove(i);
        }
        let mut add_error = None;
        ui.horizontal(|ui| {
            let label = ui.label("New bootstrap node");
            ui.add(
                egui::TextEdit::singleline(&mut self.forms.new_bootstrap)
                    .hint_text("/ip4/…/tcp/4001/p2p/12D3KooW…")
                    .desired_width(300.0),
            )
            .labelled_by(label.id);
            if ui.button("Add node").clicked() {
                match parse_server_addr(&self.forms.new_bootstrap) {
                    Ok(addr)
                        if settings.bootstrap.len() < tern_node::settings::MAX_CONFIGURED_ADDRS =>
                    {
                        settings.bootstrap.push(addr);
                        self.forms.new_bootstrap.clear();
                    }
                    Ok(_) => add_error = Some("Too many bootstrap nodes".to_owned()),
                    Err(e) => add_error = Some(format!("Not added: {e}")),
                }
            }
        });
        if let Some(e) = add_error {
            self.model.error(e);
        }
        let changed = self.forms.settings.as_ref() != Some(&self.model.settings);
        if ui
            .add_enabled(changed, egui::Button::new("Save network settings"))
            .clicked()
            && let (Some(node), Some(dir), Some(settings)) = (
                self.node(),
                self.model.profile_dir.clone(),
                self.forms.settings.clone(),
            )
        {
            self.backend.apply_settings(&node, dir, settings);
        }
        ui.separator();
        ui.label(RichText::new("Change password").strong());
        password_field(ui, "Current password", &mut self.forms.old_password, true);
        password_field(ui, "New password", &mut self.forms.new_password, true);
        if !self.forms.new_password.is_empty() {
            ui.label(Strength::of(&self.forms.new_password).label());
        }
        if ui.button("Change password").clicked() {
            if Strength::of(&self.forms.new_password) == Strength::TooShort {
                self.model.error(Strength::TooShort.label());
            } else if let Some(node) = self.node() {
                let old = Password::new(std::mem::take(&mut self.forms.old_password));
                let new = Password::new(std::mem::take(&mut self.forms.new_password));
                self.backend.change_password(&node, old, new);
            }
        }
        ui.separator();
        ui.label(RichText::new("My profile").strong());
        if let Some(me) = &self.model.me {
            ui.label(format!("Name: {}", me.name));
            ui.label(format!("Peer id: {}", me.key.peer_id()));
            ui.label(format!("Fingerprint: {}", me.fingerprint));
        }
        if let Some(dir) = &self.model.profile_dir {
            ui.label(RichText::new(format!("Stored (sealed) in {}", dir.display())).weak());
        }
    }

    fn network_dialog(&mut self, ui: &mut egui::Ui) {
        if let Some(node) = self.node()
            && self
                .forms
                .status_asked
                .is_none_or(|t| t.elapsed() >= STATUS_REFRESH)
        {
            self.forms.status_asked = Some(Instant::now());
            self.backend.status(&node);
        }
        ui.ctx().request_repaint_after(STATUS_REFRESH);
        let m = &self.model;
        egui::Grid::new("network")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                ui.label("Mode");
                ui.label(if m.settings.lan_only {
                    "LAN only"
                } else {
                    "Internet and LAN"
                });
                ui.end_row();
                ui.label("Connected peers");
                ui.label(m.connected.to_string());
                ui.end_row();
                if let Some(s) = &m.status {
                    ui.label("LAN peers (mDNS)");
                    ui.label(s.lan_peers.to_string());
                    ui.end_row();
                    ui.label("NAT");
                    ui.label(match &s.nat {
                        tern_node::node::NatStatus::Public(addr) => format!("reachable at {addr}"),
                        tern_node::node::NatStatus::Private => {
                            "behind NAT (relays and hole punching)".to_owned()
                        }
                        tern_node::node::NatStatus::Unknown => "not known yet".to_owned(),
                    });
                    ui.end_row();
                    ui.label("Relay");
                    ui.label(if s.relayed {
                        "listening through relays"
                    } else {
                        "not used"
                    });
                    ui.end_row();
                    ui.label("Mailboxes");
                    let mut boxes: Vec<String> = s.mailboxes.iter().map(short_peer).collect();
                    boxes.extend(
                        s.lan_mailboxes
                            .iter()
                            .map(|p| format!("{} (LAN)", short_peer(p))),
                    );
                    ui.label(if boxes.is_empty() {
                        "none".to_owned()
                    } else {
                        boxes.join(", ")
                    });
                    ui.end_row();
                    ui.label("Outbox");
                    ui.label(format!("{} waiting", s.outbox_len));
                    ui.end_row();
                    ui.label("Listening on");
                    ui.vertical(|ui| {
                        for a in &s.listen_addrs {
                            ui.monospace(a.to_string());
                        }
                    });
                    ui.end_row();
                }
            });
    }

    fn contact_dialog(&mut self, ui: &mut egui::Ui) {
        let Some(key) = self.model.open.as_ref().map(|o| o.contact) else {
            return;
        };
        let Some(node) = self.node() else {
            return;
        };
        ui.label(format!("Peer id: {}", key.peer_id()));
        ui.horizontal(|ui| {
            let label = ui.label("Name");
            ui.add(egui::TextEdit::singleline(&mut self.forms.rename))
                .labelled_by(label.id);
            if ui.button("Rename").clicked() {
                let name = self.forms.rename.clone();
                self.backend.with_engine(
                    &node,
                    "cannot rename",
                    move |engine| engine.rename_contact(&key, &name),
                    |m, record| m.upsert_contact(record),
                );
            }
        });
        let blocked = self
            .model
            .contact(&key)
            .is_some_and(|c| c.record.state == ContactState::Blocked);
        ui.horizontal(|ui| {
            if blocked {
                if ui.button("Unblock").clicked() {
                    self.set_state(key, ContactState::Accepted);
                }
            } else if ui.button("Block").clicked() {
                self.set_state(key, ContactState::Blocked);
                self.model.open = None;
                self.model.dialog = None;
            }
            if ui
                .button(RichText::new("Remove contact and conversation").color(ERROR))
                .clicked()
            {
                self.backend.with_engine(
                    &node,
                    "cannot remove the contact",
                    move |engine| engine.remove_contact(&key),
                    move |m, ()| {
                        m.remove_contact(&key);
                        m.dialog = None;
                    },
                );
            }
        });
    }
}

impl eframe::App for TernApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.model.focused = ctx.input(|i| i.viewport().focused.unwrap_or(true));
        self.pump(ctx);
        ctx.set_theme(if self.model.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        // A dropped picture is read for a QR code.
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .filter_map(|f| f.path.clone())
                .collect()
        });
        if let Some(path) = dropped.first()
            && self.model.screen == Screen::Main
        {
            self.model.dialog = Some(Dialog::AddContact);
            self.read_qr_file(path);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, THEME_KEY, &self.model.dark);
        eframe::set_value(storage, NOTIFY_KEY, &self.model.notifications);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.backend.shutdown(self.model.node.take());
    }
}

/// A password field with a visible label; returns whether Enter was pressed in it.
fn password_field(ui: &mut egui::Ui, label: &str, text: &mut String, enabled: bool) -> bool {
    let label = ui.label(label);
    let response = ui
        .add_enabled(
            enabled,
            egui::TextEdit::singleline(text)
                .password(true)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    response.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter))
}

/// A small filled circle (online and network dots).
fn dot(ui: &mut egui::Ui, color: Color32) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 4.0, color);
    response
}

fn warning(ui: &mut egui::Ui, text: &str) {
    egui::Frame::new()
        .fill(WARN.gamma_multiply(0.25))
        .inner_margin(8.0)
        .corner_radius(6.0)
        .show(ui, |ui| {
            ui.colored_label(WARN, format!("⚠ {text}"));
        });
}

fn first_line(text: &str, max_chars: usize) -> String {
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

fn wrap_groups(number: &str, per_line: usize) -> String {
    number
        .split(' ')
        .collect::<Vec<_>>()
        .chunks(per_line)
        .map(|c| c.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn short_peer(peer: &libp2p::PeerId) -> String {
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
