//! "Settings", in sections chosen from a list on the dialog's left (keyboard: Tab or the arrow keys,
//! then Space or Enter; the accessibility tree: a tab list): General (appearance, notifications),
//! Privacy (read receipts, typing indicators, blocked contacts to unblock), Backups (`backup`),
//! Network (LAN only, holding mail for LAN peers, bootstrap nodes), Security (the password), My profile, and the
//! keyboard shortcuts. Only the chosen section is drawn, in a scroll area of a fixed height that fits
//! the window, so the dialog keeps its size from section to section.

use egui::accesskit::Role;
use egui::{RichText, ScrollArea};
use tern_node::profile::Password;
use tern_node::settings::{MAX_CONFIGURED_ADDRS, NetworkSettings, parse_server_addr};

use crate::action::Action;
use crate::model::{ContactState, Model};
use crate::profiles::Strength;
use crate::widgets::{entered, password_field, primary_button, secondary_button};

/// "Settings" is this wide: the section list and a body as wide as the other dialogs.
pub const SETTINGS_WIDTH: f32 = 640.0;
/// The section list's width.
const LIST_WIDTH: f32 = 150.0;
/// The room the line between the list and the body takes.
const SEPARATOR_WIDTH: f32 = 6.0;
/// The body's height when the window has room for it (each section fits at the default text size).
pub const BODY_HEIGHT: f32 = 500.0;
/// The window's height kept for the dialog's title row, its frame, an error line and a margin: a
/// smaller window makes the body shorter, and it scrolls.
const BODY_MARGIN: f32 = 170.0;
/// The body is never shorter than this (the window's minimum height leaves room for it).
const MIN_BODY_HEIGHT: f32 = 160.0;

/// The width of the "New bootstrap node" field (its label and "Add node" beside it fit the body).
const NEW_NODE_WIDTH: f32 = 220.0;

/// The parts of "Settings", in the list's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Section {
    /// Appearance and notifications.
    #[default]
    General,
    /// Read receipts, typing indicators, blocked contacts.
    Privacy,
    Backups,
    Network,
    /// Changing the password.
    Security,
    /// Who this profile is, and replacing the prekey.
    Profile,
    Shortcuts,
}

impl Section {
    /// Every section, as listed.
    pub const ALL: [Section; 7] = [
        Section::General,
        Section::Privacy,
        Section::Backups,
        Section::Network,
        Section::Security,
        Section::Profile,
        Section::Shortcuts,
    ];

    /// Its name in the list (and in the accessibility tree).
    pub fn label(self) -> &'static str {
        match self {
            Section::General => "General",
            Section::Privacy => "Privacy",
            Section::Backups => "Backups",
            Section::Network => "Network",
            Section::Security => "Security",
            Section::Profile => "My profile",
            Section::Shortcuts => "Keyboard shortcuts",
        }
    }
}

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    /// The section shown; kept when the dialog closes, so it opens where it was left.
    pub section: Section,
    /// The network settings being edited; `None` starts from the saved ones.
    pub settings: Option<NetworkSettings>,
    pub new_bootstrap: String,
    pub old_password: String,
    pub new_password: String,
    /// The new password again.
    pub repeat_password: String,
    /// This profile's name as being edited (starts as the current one when the dialog opens).
    pub name: String,
}

/// The body's height in a window whose content is `window_height` high.
pub fn body_height(window_height: f32) -> f32 {
    (window_height - BODY_MARGIN).clamp(MIN_BODY_HEIGHT, BODY_HEIGHT)
}

/// Draws the dialog: the section list, and the chosen section beside it. `focus` (set as the dialog
/// opens) puts the keyboard focus on the chosen section's entry in the list.
pub fn show(
    ui: &mut egui::Ui,
    model: &Model,
    form: &mut Form,
    backup: &mut super::backup::Form,
    focus: &mut bool,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let height = body_height(ui.ctx().content_rect().height());
    ui.horizontal_top(|ui| {
        sections(ui, form, focus);
        // As high as the body: a separator alone takes all the height there is (the whole window's,
        // inside a modal).
        ui.add_sized(
            [SEPARATOR_WIDTH, height],
            egui::Separator::default().vertical(),
        );
        ui.vertical(|ui| {
            // Each section keeps its own scroll offset; the body has one size whatever is shown,
            // so the dialog does not jump when another section is chosen.
            ScrollArea::vertical()
                .id_salt(("settings", form.section))
                .min_scrolled_height(height)
                .max_height(height)
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    actions = section(ui, model, form, backup);
                });
        });
    });
    actions
}

/// The list of sections, a tab list in the accessibility tree; choosing one shows it.
fn sections(ui: &mut egui::Ui, form: &mut Form, focus: &mut bool) {
    ui.vertical(|ui| {
        ui.set_width(LIST_WIDTH);
        let list = ui.unique_id();
        ui.ctx().accesskit_node_builder(list, |node| {
            node.set_role(Role::TabList);
            node.set_label("Settings sections");
        });
        for section in Section::ALL {
            let chosen = form.section == section;
            let entry = ui.add(
                egui::Button::selectable(chosen, section.label())
                    .min_size(egui::vec2(LIST_WIDTH, 0.0)),
            );
            ui.ctx().accesskit_node_builder(entry.id, |node| {
                node.set_role(Role::Tab);
                node.clear_toggled();
                node.set_selected(chosen);
            });
            if chosen && std::mem::take(focus) {
                entry.request_focus();
            }
            if entry.clicked() {
                form.section = section;
            }
        }
    });
}

/// The chosen section's controls.
fn section(
    ui: &mut egui::Ui,
    model: &Model,
    form: &mut Form,
    backup: &mut super::backup::Form,
) -> Vec<Action> {
    match form.section {
        Section::General => general(ui, model),
        Section::Privacy => {
            let mut actions = privacy(ui, model);
            ui.separator();
            actions.extend(blocked(ui, model));
            actions
        }
        Section::Backups => super::backup::section(ui, model, backup),
        Section::Network => network(ui, model, form),
        Section::Security => change_password(ui, form),
        Section::Profile => profile(ui, model, &mut form.name),
        Section::Shortcuts => {
            shortcuts(ui);
            Vec::new()
        }
    }
}

/// Appearance and notifications.
fn general(ui: &mut egui::Ui, model: &Model) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Appearance").strong());
    ui.horizontal(|ui| {
        if ui.selectable_label(model.dark, "Dark").clicked() {
            actions.push(Action::SetDark(true));
        }
        if ui.selectable_label(!model.dark, "Light").clicked() {
            actions.push(Action::SetDark(false));
        }
    });
    ui.separator();
    ui.label(RichText::new("Notifications").strong());
    let mut notifications = model.notifications;
    if ui
        .checkbox(&mut notifications, "Desktop notifications for new messages")
        .changed()
    {
        actions.push(Action::SetNotifications(notifications));
    }
    let mut tray = model.tray;
    if ui
        .checkbox(&mut tray, "Icon with the unread count in the system tray")
        .on_hover_text("Where the desktop's panel shows tray icons (StatusNotifierItem)")
        .changed()
    {
        actions.push(Action::SetTray(tray));
    }
    actions
}

/// Who this profile is (the name can be changed: Enter or "Save name"), and replacing the prekey.
fn profile(ui: &mut egui::Ui, model: &Model, name: &mut String) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("My profile").strong());
    if let Some(me) = &model.me {
        ui.horizontal(|ui| {
            let label = ui.label("Your name");
            let field = ui
                .add(
                    egui::TextEdit::singleline(name)
                        .char_limit(tern_node::names::MAX_NAME_LEN)
                        .desired_width(240.0),
                )
                .labelled_by(label.id);
            if ui.add(primary_button("Save name")).clicked() || entered(&field) {
                actions.push(match tern_node::names::clean_name(name) {
                    Ok(clean) if clean == me.name => {
                        Action::DialogError("That is your name already.".to_owned())
                    }
                    Ok(clean) => Action::SetDisplayName(clean),
                    Err(tern_node::names::NameError::Empty) => {
                        Action::DialogError("Enter a name.".to_owned())
                    }
                    Err(e) => Action::DialogError(crate::words::plain(&e.to_string())),
                });
            }
        });
        ui.label(
            RichText::new(
                "Your contacts are sent the new name. One who gave you a name of their own keeps it.",
            )
            .weak(),
        );
        ui.label(format!("Peer id: {}", me.key.peer_id()));
        ui.label(format!("Fingerprint: {}", me.fingerprint));
    }
    if let Some(dir) = &model.profile_dir {
        ui.label(RichText::new(format!("Stored (sealed) in {}", dir.display())).weak());
    }
    ui.separator();
    ui.label(
        RichText::new(
            "If you think your keys were exposed, replace your prekey: contacts who have not written to you \
             yet will need your new invite link.",
        )
        .weak(),
    );
    if ui.add(secondary_button("Replace prekey now")).clicked() {
        actions.push(Action::RevokePrekeys);
    }
    actions
}

/// Read receipts and typing indicators: off works both ways, as the labels say.
fn privacy(ui: &mut egui::Ui, model: &Model) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Privacy").strong());
    let mut privacy = model.privacy;
    let receipts = ui.checkbox(&mut privacy.read_receipts, "Send read receipts");
    let typing = ui.checkbox(&mut privacy.typing, "Typing indicators");
    ui.label(
        RichText::new(
            "Off works both ways: you then don't see others' read receipts or typing either.",
        )
        .weak(),
    );
    if receipts.changed() || typing.changed() {
        actions.push(Action::SetPrivacy(privacy));
    }
    actions
}

/// The new password twice; Enter in any of the three fields submits, as "Change password" does.
fn change_password(ui: &mut egui::Ui, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Change password").strong());
    let mut submit = entered(&password_field(
        ui,
        "Current password",
        &mut form.old_password,
        true,
    ));
    submit |= entered(&password_field(
        ui,
        "New password",
        &mut form.new_password,
        true,
    ));
    // The hint's line is always there, so the dialog keeps its size while typing.
    ui.label(if form.new_password.is_empty() {
        " "
    } else {
        Strength::of(&form.new_password).label()
    });
    submit |= entered(&password_field(
        ui,
        "Repeat new password",
        &mut form.repeat_password,
        true,
    ));
    submit |= ui.add(primary_button("Change password")).clicked();
    if !submit {
        return actions;
    }
    if form.old_password.is_empty() {
        actions.push(Action::DialogError(
            "Enter your current password.".to_owned(),
        ));
    } else if Strength::of(&form.new_password) == Strength::TooShort {
        actions.push(Action::DialogError(Strength::TooShort.label().to_owned()));
    } else if form.new_password != form.repeat_password {
        actions.push(Action::DialogError(
            "The new passwords don't match. Type the same new password twice.".to_owned(),
        ));
    } else {
        form.repeat_password.clear();
        actions.push(Action::ChangePassword {
            old: Password::new(std::mem::take(&mut form.old_password)),
            new: Password::new(std::mem::take(&mut form.new_password)),
        });
    }
    actions
}

/// The keyboard shortcuts, listed where people look for them.
fn shortcuts(ui: &mut egui::Ui) {
    ui.label(RichText::new("Keyboard shortcuts").strong());
    egui::Grid::new("shortcuts").num_columns(2).show(ui, |ui| {
        for (keys, what) in crate::keys::SHORTCUTS {
            ui.monospace(*keys);
            ui.label(*what);
            ui.end_row();
        }
    });
}

/// Blocked contacts, each with "Unblock".
fn blocked(ui: &mut egui::Ui, model: &Model) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Blocked contacts").strong());
    let blocked = model.blocked();
    if blocked.is_empty() {
        ui.label(RichText::new("You have not blocked anyone.").weak());
    }
    for contact in blocked {
        ui.horizontal(|ui| {
            ui.label(contact.name());
            if ui
                .add(secondary_button(&format!("Unblock {}", contact.name())))
                .clicked()
            {
                actions.push(Action::SetContactState {
                    contact: contact.key(),
                    state: ContactState::Accepted,
                });
            }
        });
    }
    actions
}

/// The network part: edits a copy of the settings. Adding or removing a bootstrap node saves at once
/// (the node restarts with it); "Save network settings" saves the two choices above.
fn network(ui: &mut egui::Ui, model: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.label(RichText::new("Network").strong());
    let settings = form.settings.get_or_insert_with(|| model.settings.clone());
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
        // "Remove" first: a long address wraps beside it rather than pushing it out of the body.
        ui.horizontal(|ui| {
            if ui.small_button("Remove").clicked() {
                remove = Some(i);
            }
            ui.add(egui::Label::new(RichText::new(addr.to_string()).monospace()).wrap());
        });
    }
    let mut save = false;
    if let Some(i) = remove {
        settings.bootstrap.remove(i);
        save = true;
    }
    ui.horizontal(|ui| {
        let label = ui.label("New bootstrap node");
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut form.new_bootstrap)
                    .hint_text("/ip4/…/tcp/4001/p2p/12D3KooW…")
                    .desired_width(NEW_NODE_WIDTH),
            )
            .labelled_by(label.id);
        let add = ui.add(primary_button("Add node")).clicked() || entered(&field);
        if add && form.new_bootstrap.trim().is_empty() {
            actions.push(Action::DialogError(
                "Paste a node address first.".to_owned(),
            ));
        } else if add {
            match parse_server_addr(form.new_bootstrap.trim()) {
                Ok(addr) if settings.bootstrap.len() < MAX_CONFIGURED_ADDRS => {
                    settings.bootstrap.push(addr);
                    form.new_bootstrap.clear();
                    save = true;
                }
                Ok(_) => actions.push(Action::DialogError(format!(
                    "You can have at most {MAX_CONFIGURED_ADDRS} bootstrap nodes."
                ))),
                Err(e) => actions.push(Action::DialogError(format!(
                    "That node address can't be used: {e}."
                ))),
            }
        }
    });
    let changed = form.settings.as_ref() != Some(&model.settings);
    save |= ui
        .add_enabled(changed, primary_button("Save network settings"))
        .clicked();
    if save && let Some(settings) = form.settings.clone() {
        actions.push(Action::SaveSettings(settings));
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_as_high_as_the_window_allows_within_its_bounds() {
        // The app's default window (720 px) has room for the whole body.
        assert_eq!(body_height(720.0), BODY_HEIGHT);
        // The smallest window (420 px) keeps the title row and the margin; the body scrolls.
        assert_eq!(body_height(420.0), 420.0 - BODY_MARGIN);
        assert_eq!(body_height(100.0), MIN_BODY_HEIGHT);
    }

    #[test]
    fn every_section_is_listed_once_under_its_own_name() {
        let mut labels: Vec<_> = Section::ALL.iter().map(|s| s.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Section::ALL.len());
        assert_eq!(Section::ALL[0], Section::default(), "it opens on the first");
    }
}
