//! "My code": how to give my invite, my QR code, fingerprint and invite link (as text and to copy).
//! "Verify": my QR code, fingerprint and invite link on the left; on the right, the safety number
//! shared with a contact (the open conversation's, or the one whose "Verify" was clicked), to mark
//! them verified, or a picture of their QR code to scan (typed, or found with "Choose…", the
//! desktop's own file chooser).

use egui::RichText;
use tern_protocol::{ContactCard, Fingerprint, IdentityKey};

use super::file_path;
use crate::action::Action;
use crate::model::Model;
use crate::qr;
use crate::widgets::{ACCENT, primary_button, secondary_button, wrap_groups};

/// The width of the QR picture's path field (the dialog keeps its size).
const QR_PATH_WIDTH: f32 = 130.0;

/// The dialog's state.
#[derive(Default)]
pub struct Form {
    /// The contact to verify; `None` for the open conversation's.
    pub contact: Option<IdentityKey>,
    /// The path of a picture of their QR code ("Choose…" answers into it).
    pub picture: file_path::Form,
    /// My QR code, drawn once.
    pub qr_texture: Option<egui::TextureHandle>,
}

/// What "My code" says first.
pub const MY_CODE_HELP: &str = "To let someone add you, send them your invite link, or let them scan \
     this QR code. Then add theirs with + Add contact, or wait for their first message.";

/// The "My code" dialog: how to give my invite, my QR code, fingerprint and invite link.
pub fn show_my_code(ui: &mut egui::Ui, model: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(me) = &model.me {
        ui.label(MY_CODE_HELP);
        ui.add_space(crate::theme::SECTION_GAP);
        my_code(ui, me, form, &mut actions, true);
    }
    actions
}

/// My QR code, fingerprint and "Copy invite link"; the link itself as text too if `link_shown`.
fn my_code(
    ui: &mut egui::Ui,
    me: &crate::model::Whoami,
    form: &mut Form,
    actions: &mut Vec<Action>,
    link_shown: bool,
) {
    if form.qr_texture.is_none()
        && let Ok(card) = ContactCard::from_invite_link(&me.invite_link)
        && let Ok(matrix) = card.qr()
    {
        let image = qr::matrix_image(&matrix, 4);
        form.qr_texture = Some(ui.ctx().load_texture(
            "my-qr",
            image,
            egui::TextureOptions::NEAREST,
        ));
    }
    if let Some(texture) = &form.qr_texture {
        ui.add(egui::Image::new(texture).max_width(220.0));
    }
    ui.label(RichText::new("My fingerprint").weak());
    ui.monospace(me.fingerprint.to_string());
    if link_shown {
        ui.label(RichText::new("My invite link").weak());
        ui.add(
            egui::Label::new(RichText::new(&me.invite_link).monospace().small())
                .wrap()
                .selectable(true),
        );
    }
    if ui.add(secondary_button("Copy invite link")).clicked() {
        ui.ctx().copy_text(me.invite_link.clone());
        actions.push(Action::notice("Invite link copied"));
    }
}

/// Draws the dialog.
pub fn show(ui: &mut egui::Ui, model: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(me) = &model.me else {
        return actions;
    };
    ui.columns(2, |cols| {
        let ui = &mut cols[0];
        ui.label(RichText::new("My code").strong());
        my_code(ui, me, form, &mut actions, false);
        let ui = &mut cols[1];
        let Some(key) = form
            .contact
            .or_else(|| model.open.as_ref().and_then(|o| o.conversation.direct()))
        else {
            ui.label("Open a conversation to verify that contact.");
            return;
        };
        let name = model.name_of(&key);
        let verified = model.contact(&key).is_some_and(|c| c.record.verified);
        ui.label(RichText::new(format!("Verify {name}")).strong());
        if verified {
            ui.colored_label(ACCENT, format!("✔ {name} is verified"));
        }
        ui.label("Compare this safety number with theirs, in person or on a call you trust:");
        let number = tern_protocol::SafetyNumber::between(&me.key, &key).to_string();
        ui.monospace(wrap_groups(&number, 4));
        ui.label(RichText::new(format!("{name}'s fingerprint")).weak());
        ui.monospace(Fingerprint::of(&key).to_string());
        if verified {
            // Already verified: the number stays to compare again, nothing is offered twice.
            return;
        }
        if ui
            .add(primary_button("The numbers match: mark verified"))
            .clicked()
        {
            actions.push(Action::Verify {
                contact: key,
                digits: number,
            });
        }
        ui.separator();
        ui.label("Or scan their QR code from a picture:");
        let enter = file_path::path_field(
            ui,
            "Their QR image",
            &mut form.picture,
            QR_PATH_WIDTH,
            &mut false,
            Action::ChooseQrPicture,
            &mut actions,
        );
        if ui.add(primary_button("Scan")).clicked() || enter {
            actions.push(Action::VerifyByQr {
                contact: key,
                path: file_path::expand(&form.picture.path),
            });
        }
    });
    actions
}
