//! `TernApp`: the eframe app. Each frame applies the node's updates to the [`Model`], draws the screen
//! from it, and then performs what the screen asked for ([`Action`]s) in one place, the
//! [`Executor`]. Nothing calls the node while drawing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tern_protocol::{IdentityKey, MessageId};

use crate::action::Action;
use crate::backend::{Backend, Options};
use crate::dialogs;
use crate::execute::{self, Executor};
use crate::model::{Dialog, Model, Screen};
use crate::profiles;
use crate::screens::{main_window, start, toasts};
use crate::tray::{Tray, TrayRequest};
use crate::views::Views;

/// The desktop app.
pub struct TernApp {
    pub model: Model,
    pub backend: Backend,
    views: Views,
    unread: UnreadShown,
    /// Whether this app may put an icon in the system tray (the `tern-gui` binary; not tests).
    tray_offered: bool,
    ctx: egui::Context,
}

/// Where the unread count shows outside the window's content: the window's title ("Tern (3)") and the
/// tray icon, while there is one. Both are sent the count when it changes, not every frame.
#[derive(Default)]
struct UnreadShown {
    unread: Option<u64>,
    title: Option<String>,
    tray: Option<Tray>,
}

impl UnreadShown {
    fn show(&mut self, ctx: &egui::Context, model: &Model) {
        let unread = model.unread_total();
        if self.unread == Some(unread) {
            return;
        }
        self.unread = Some(unread);
        let title = crate::model::window_title(unread);
        ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
        self.title = Some(title);
        if let Some(tray) = &self.tray {
            tray.set_unread(unread);
        }
    }

    /// Starts or stops the tray icon.
    fn set_tray(&mut self, ctx: &egui::Context, on: bool) {
        if on && self.tray.is_none() {
            self.tray = Some(Tray::start(ctx.clone(), self.unread.unwrap_or(0)));
        } else if !on {
            // Dropping the app's side ends the item.
            self.tray = None;
        }
    }

    /// Does what the tray asked for since the last frame.
    fn take_requests(&self, ctx: &egui::Context) {
        let Some(tray) = &self.tray else {
            return;
        };
        for request in tray.requests() {
            match request {
                TrayRequest::Show => {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Visible(true));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                }
                // As closing the window: drafts are saved and the node stopped (`on_exit`).
                TrayRequest::Quit => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            }
        }
    }
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
const TRAY_KEY: &str = "tern.tray";

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
        crate::theme::apply(ctx);
        crate::fonts::install(ctx);
        Ok(Self {
            model,
            backend,
            views: Views::default(),
            unread: UnreadShown::default(),
            tray_offered: false,
            ctx: ctx.clone(),
        })
    }

    /// Uses only the profile in `dir` (`--profile DIR` or `TERN_PROFILE`, as `tern-node` does): it is
    /// unlocked if it exists, else created there.
    pub fn pin_profile(&mut self, dir: PathBuf) {
        let ps = &mut self.model.profile_screen;
        ps.profiles = profiles::list_one(&dir).into_iter().collect();
        ps.creating = ps.profiles.is_empty();
        ps.selected = (!ps.profiles.is_empty()).then_some(0);
        ps.pinned = Some(dir);
        ps.error = None;
        // The form shown may have changed (unlock to create): its first field takes the focus again.
        self.views.start.focus = true;
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
            app.model.tray = eframe::get_value(storage, TRAY_KEY).unwrap_or(true);
        }
        Ok(app)
    }

    /// Lets the app put an icon in the system tray (while the "tray icon" setting is on) where the
    /// desktop hosts one ([`crate::tray`]); the icon starts on its own thread with the next frame.
    pub fn offer_tray(&mut self) {
        self.tray_offered = true;
    }

    /// Performs `actions` now (the end of a frame; tests and scripts call it between frames).
    pub fn perform(&mut self, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        Executor {
            model: &mut self.model,
            views: &mut self.views,
            backend: &self.backend,
        }
        .perform(actions);
        // What the actions changed is drawn in the next frame.
        self.ctx.request_repaint();
    }

    /// Applies waiting updates and performs what they call for. Tests call it between frames too.
    pub fn pump(&mut self, ctx: &egui::Context) {
        let actions = execute::drain(&mut self.backend, &mut self.model);
        self.perform(actions);
        // What was typed is saved once typing stops for a moment.
        match execute::save_due_in(&self.views, Instant::now()) {
            Some(wait) if wait.is_zero() => self.perform(vec![Action::SaveDrafts]),
            Some(wait) => ctx.request_repaint_after(wait),
            None => {}
        }
        // Typing stops being shown on its own; ask to redraw when it should.
        let now = Instant::now();
        if let Some(open) = &self.model.open
            && let Some(key) = open.conversation.direct()
            && let Some(c) = self.model.contact(&key)
            && let Some(since) = c.typing_since
            && c.is_typing(now)
        {
            ctx.request_repaint_after(crate::model::TYPING_SHOWN_FOR.saturating_sub(now - since));
        }
    }

    /// Draws the current screen into the window's root `ui`, then performs what it asked for.
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        let now = ui.input(|i| i.time);
        if let Some(at) = self.model.tick(now) {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_secs_f64((at - now).max(0.0)));
        }
        let model = &self.model;
        let views = &mut self.views;
        // Shortcuts first, so that no field sees their keys.
        let mut actions = crate::keys::take(ui.ctx(), model, &views.main.filter);
        self.unread.show(ui.ctx(), model);
        actions.extend(match model.screen {
            Screen::Profiles => {
                let mut actions = Vec::new();
                egui::CentralPanel::default().show(ui, |ui| {
                    actions = start::show(ui, &model.profile_screen, &mut views.start);
                });
                actions
            }
            Screen::Main => {
                let mut actions = main_window::show(ui, model, &mut views.main, &mut views.chat);
                actions.extend(dialogs::show(ui.ctx(), model, &mut views.dialogs));
                actions.extend(toasts::show(ui.ctx(), model));
                actions
            }
        });
        if !actions.is_empty() {
            // Draw what the actions changed in this frame (a dialog that opened, a closed notice),
            // as a second pass over the same input.
            ui.ctx().request_discard("actions changed the model");
        }
        self.perform(actions);
    }

    /// What closing the window does: saves the unsent drafts (waiting for it), then stops the node.
    pub fn close(&mut self) {
        execute::save_before_closing(&self.backend, &self.model, &mut self.views);
        execute::shutdown(&self.backend, &mut self.model);
    }

    /// The title last sent to the window (with [`egui::ViewportCommand::Title`]), if any yet.
    pub fn window_title_sent(&self) -> Option<&str> {
        self.unread.title.as_deref()
    }

    /// Rows of the open conversation laid out in the last frame.
    pub fn rows_laid_out(&self) -> usize {
        self.views.chat.last_laid_out
    }

    /// Opens a conversation (a contact's or a group's) and loads its newest page (or brings `scroll_to`
    /// into view).
    pub fn open_conversation(
        &mut self,
        conversation: impl Into<crate::model::ConversationKey>,
        scroll_to: Option<MessageId>,
    ) {
        self.perform(vec![Action::OpenConversation {
            conversation: conversation.into(),
            scroll_to,
        }]);
    }

    /// Reads an invite out of a QR picture into the add-contact form.
    pub fn read_qr_file(&mut self, path: &Path) {
        self.perform(vec![Action::ReadQrInvite(path.to_path_buf())]);
    }

    /// Verifies `contact` from a picture of their QR code: it must hold their own card.
    pub fn scan_to_verify(&mut self, contact: IdentityKey, path: &Path) {
        self.perform(vec![Action::VerifyByQr {
            contact,
            path: path.to_path_buf(),
        }]);
    }
}

impl eframe::App for TernApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.model.focused = ctx.input(|i| i.viewport().focused.unwrap_or(true));
        self.unread
            .set_tray(ctx, self.tray_offered && self.model.tray);
        self.unread.take_requests(ctx);
        self.pump(ctx);
        ctx.set_theme(if self.model.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        // A file dropped on an open conversation (1:1 or group) is sent there (unless a dialog is up);
        // anywhere else a dropped picture is read for a QR code.
        let dropped: Option<PathBuf> =
            ctx.input(|i| i.raw.dropped_files.iter().find_map(|f| f.path.clone()));
        if let Some(path) = dropped
            && self.model.screen == Screen::Main
        {
            let open = self.model.open.as_ref().map(|o| o.conversation);
            let action = match open {
                Some(conversation)
                    if matches!(self.model.dialog, None | Some(Dialog::AttachFile)) =>
                {
                    Action::SendFile { conversation, path }
                }
                _ => Action::DroppedPicture(path),
            };
            self.perform(vec![action]);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, THEME_KEY, &self.model.dark);
        eframe::set_value(storage, NOTIFY_KEY, &self.model.notifications);
        eframe::set_value(storage, TRAY_KEY, &self.model.tray);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.close();
    }
}
