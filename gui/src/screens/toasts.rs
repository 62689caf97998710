//! Toasts: short notes over the bottom-left corner of the window that never push the layout. A
//! confirmation goes away by itself after [`TOAST_SHOWN_FOR`]; a background error stays until it is
//! dismissed. At most [`MAX_TOASTS_SHOWN`] show at once, the newest last.

use egui::{Align2, Color32, RichText};

use crate::action::Action;
use crate::model::{MAX_TOASTS_SHOWN, Model};
use crate::theme;
use crate::widgets::ERROR;

/// Draws the newest toasts; "Dismiss" removes one.
pub fn show(ctx: &egui::Context, model: &Model) -> Vec<Action> {
    let mut actions = Vec::new();
    if model.notices.is_empty() {
        return actions;
    }
    let first = model.notices.len().saturating_sub(MAX_TOASTS_SHOWN);
    egui::Area::new(egui::Id::new("toasts"))
        .anchor(Align2::LEFT_BOTTOM, egui::vec2(12.0, -12.0))
        // Under an open dialog (and its dimming), so that Tab never leaves the dialog for a toast.
        .order(if model.dialog.is_some() || model.confirm.is_some() {
            egui::Order::Middle
        } else {
            egui::Order::Foreground
        })
        .interactable(true)
        .show(ctx, |ui| {
            ui.set_max_width(300.0);
            for (i, notice) in model.notices.iter().enumerate().skip(first) {
                let fill = if notice.error {
                    ERROR
                } else {
                    ui.visuals().widgets.inactive.bg_fill
                };
                egui::Frame::popup(ui.style())
                    .fill(fill)
                    .inner_margin(theme::BANNER_MARGIN)
                    .show(ui, |ui| {
                        ui.set_width(280.0);
                        ui.horizontal_wrapped(|ui| {
                            let text = RichText::new(&notice.text);
                            ui.label(if notice.error {
                                text.color(Color32::WHITE)
                            } else {
                                text
                            });
                            if ui.small_button("Dismiss").clicked() {
                                actions.push(Action::DismissNotice(i));
                            }
                        });
                    });
                ui.add_space(theme::ITEM_SPACING.y);
            }
        });
    actions
}
