//! The "Invite link" part of the group panel, for admins (docs/protocol.md §18.11): the group's live links
//! with copy and revoke, making a new one (open, or approving each person), and the requests waiting.

use egui::RichText;

use crate::action::{Action, LinkAction};
use crate::model::{ConversationId, Model};
use crate::theme;
use crate::widgets::{ERROR, secondary_button};

/// What the panel says of links, once, under its heading.
pub const LINKS_EXPLAINED: &str = "Anyone with a link can join, even people who are not your \
     contacts; they become your contacts. Your app lets them in while it is online.";

/// Draws the section for the group `group`; `approval` is the "approve each person" choice.
pub fn show(
    ui: &mut egui::Ui,
    model: &Model,
    approval: &mut bool,
    group: ConversationId,
) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.add_space(theme::SECTION_GAP);
    ui.label(RichText::new("Invite link").strong());
    ui.label(RichText::new(LINKS_EXPLAINED).weak());
    for link in model.links_of(&group) {
        ui.horizontal(|ui| {
            let mode = if link.approval {
                "you approve each person"
            } else {
                "anyone with it joins"
            };
            ui.label(format!("Link {}: {mode}", link.id));
            if ui
                .add(secondary_button(&format!("Copy link {}", link.id)))
                .clicked()
            {
                ui.ctx().copy_text(link.link.clone());
                actions.push(Action::notice("Group link copied"));
            }
            if ui
                .button(RichText::new(format!("Revoke link {}", link.id)).color(ERROR))
                .clicked()
            {
                actions.push(Action::Link(LinkAction::Revoke {
                    group,
                    id: link.id.clone(),
                }));
            }
        });
    }
    ui.horizontal(|ui| {
        ui.checkbox(approval, "Approve each person who asks to join");
        if ui.add(secondary_button("Make an invite link")).clicked() {
            actions.push(Action::Link(LinkAction::Make {
                group,
                approval: *approval,
            }));
        }
    });
    let requests: Vec<_> = model.join_requests_of(group).collect();
    if !requests.is_empty() {
        ui.label(RichText::new("Asking to join").strong());
    }
    for request in requests {
        ui.horizontal(|ui| {
            ui.label(format!("{} asks to join", request.name));
            for (approve, word) in [(true, "Approve"), (false, "Decline")] {
                if ui.button(format!("{word} {}", request.name)).clicked() {
                    actions.push(Action::Link(LinkAction::Decide {
                        group,
                        member: request.from,
                        approve,
                    }));
                }
            }
        });
    }
    actions
}
