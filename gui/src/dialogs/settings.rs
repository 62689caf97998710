//! "Settings": appearance and notifications, read receipts and typing indicators, backups (`backup`), blocked contacts (to unblock them), the network settings (LAN only, holding mail for LAN
//! peers, bootstrap nodes), the password, and who this profile is.

use egui::RichText;
use tern_node::profile::Password;
use tern_node::settings::{MAX_CONFIGURED_ADDRS, NetworkSettings, parse_server_addr};

use crate::action::Action;
use crate::model::{ContactState, Model};
use crate::profiles::Strength;
use crate::widgets::{entered, password_field};

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    /// The network settings being edited; `None` starts from the saved ones.
    pub settings: Option<NetworkSettings>,
    pub new_bootstrap: String,
    pub old_password: String,
    pub new_password: String,
    /// The new password again.
    pub repeat_password: String,
}

/// Draws the dialog.
pub fn show(
    ui: &mut egui::Ui,
    model: &Model,
    form: &mut Form,
    backup: &mut super::backup::Form,
) -> Vec<Action> {
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
    let mut notifications = model.notifications;
    if ui
        .checkbox(&mut notifications, "Desktop notifications for new messages")
        .changed()
    {
        actions.push(Action::SetNotifications(notifications));
    }
    ui.separator();
    actions.extend(privacy(ui, model));
    ui.separator();
    actions.extend(super::backup::section(ui, model, backup));
    ui.separator();
    actions.extend(blocked(ui, model));
    ui.separator();
    actions.extend(network(ui, model, form));
    ui.separator();
    actions.extend(change_password(ui, form));
    ui.separator();
    ui.label(RichText::new("My profile").strong());
    if let Some(me) = &model.me {
        ui.label(format!("Name: {}", me.name));
        ui.label(format!("Peer id: {}", me.key.peer_id()));
        ui.label(format!("Fingerprint: {}", me.fingerprint));
    }
    if let Some(dir) = &model.profile_dir {
        ui.label(RichText::new(format!("Stored (sealed) in {}", dir.display())).weak());
    }
    ui.label(
        RichText::new(
            "If you think your keys were exposed, replace your prekey: contacts who have not written to you \
             yet will need your new invite link.",
        )
        .weak(),
    );
    if ui.button("Replace prekey now").clicked() {
        actions.push(Action::RevokePrekeys);
    }
    ui.separator();
    shortcuts(ui);
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
    submit |= ui.button("Change password").clicked();
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
            if ui.button(format!("Unblock {}", contact.name())).clicked() {
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
        ui.horizontal(|ui| {
            ui.monospace(addr.to_string());
            if ui.small_button("Remove").clicked() {
                remove = Some(i);
            }
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
                    .desired_width(280.0),
            )
            .labelled_by(label.id);
        let add = ui.button("Add node").clicked() || entered(&field);
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
        .add_enabled(changed, egui::Button::new("Save network settings"))
        .clicked();
    if save && let Some(settings) = form.settings.clone() {
        actions.push(Action::SaveSettings(settings));
    }
    actions
}
