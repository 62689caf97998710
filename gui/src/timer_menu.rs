//! The disappearing-message timer's widgets (docs/protocol.md §12.4): the badge a conversation's header
//! shows while the timer is on, and the menu that shows and changes it, used by a 1:1 conversation's header
//! and by a group's info dialog (disabled there for members: only admins set a group's timer).

use egui::RichText;

use crate::action::Action;
use crate::widgets::ACCENT;

/// The disappearing-message timers the header offers, in seconds (0: off).
pub const TIMER_CHOICES: [u32; 6] = [0, 5 * 60, 3600, 24 * 3600, 7 * 24 * 3600, 28 * 24 * 3600];

/// How a timer reads in the header: "Off", "1 hour", "4 weeks".
pub fn timer_label(seconds: u32) -> String {
    if seconds == 0 {
        "Off".to_owned()
    } else {
        tern_node::engine::timer_words(seconds)
    }
}

/// "⏱ 1 hour" in a conversation's header while its timer is on.
pub fn timer_badge(ui: &mut egui::Ui, seconds: u32) {
    if seconds != 0 {
        ui.label(RichText::new(format!("⏱ {}", timer_label(seconds))).color(ACCENT));
    }
}

/// The "Disappearing messages" menu: shows the conversation's timer and asks to change it (also in a
/// group's info dialog, where only admins may: others see it disabled).
pub fn timer_menu(
    ui: &mut egui::Ui,
    conversation: crate::model::ConversationKey,
    current: u32,
) -> Option<Action> {
    let mut chosen = None;
    ui.menu_button(
        format!("Disappearing messages: {}", timer_label(current)),
        |ui| {
            for seconds in TIMER_CHOICES {
                if ui
                    .selectable_label(seconds == current, timer_label(seconds))
                    .clicked()
                {
                    chosen = Some(seconds);
                    ui.close();
                }
            }
        },
    );
    chosen
        .filter(|s| *s != current)
        .map(|seconds| Action::SetTimer {
            conversation,
            seconds,
        })
}

#[cfg(test)]
mod tests {
    use egui::accesskit::Role;
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::model::test_rows::key;

    #[test]
    fn the_timer_menu_shows_the_timer_and_asks_for_the_one_chosen() {
        struct Menu {
            current: u32,
            chosen: Vec<Action>,
        }
        let mut h = Harness::new_ui_state(
            |ui, s: &mut Menu| s.chosen.extend(timer_menu(ui, key(1).into(), s.current)),
            Menu {
                current: 0,
                chosen: Vec::new(),
            },
        );
        h.get_by_role_and_label(Role::Button, "Disappearing messages: Off")
            .click();
        h.step();
        h.get_by_label("1 hour").click();
        h.step();
        match h.state().chosen.as_slice() {
            [
                Action::SetTimer {
                    conversation,
                    seconds: 3600,
                },
            ] => assert_eq!(*conversation, key(1).into()),
            other => panic!("unexpected {other:?}"),
        }
        h.state_mut().current = 3600;
        h.step();
        assert!(h.query_by_label("Disappearing messages: 1 hour").is_some());
        assert_eq!(timer_label(28 * 24 * 3600), "4 weeks");
        assert_eq!(timer_label(0), "Off");
    }
}
