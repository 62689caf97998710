//! The app's keyboard shortcuts, taken at the start of a frame (before any field can see the keys):
//! switching conversations, search, quit. [`SHORTCUTS`] lists them for Settings and the README;
//! Escape (closing a dialog) and Enter (submitting one) belong to the dialogs themselves.

use egui::{Key, Modifiers};

use crate::action::Action;
use crate::model::{Model, Screen};

/// What each shortcut does, as Settings lists them ("Ctrl" is Cmd on a Mac).
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("Ctrl+Tab, Alt+Down", "Next conversation"),
    ("Ctrl+Shift+Tab, Alt+Up", "Previous conversation"),
    ("Ctrl+1 … Ctrl+9", "First to ninth conversation in the list"),
    ("Ctrl+F, Ctrl+K", "Search all messages"),
    ("Enter", "Send; in a dialog, do what it is for"),
    ("Shift+Enter", "New line in a message"),
    (
        "Tab, Shift+Tab",
        "Next or previous control (inside an open dialog)",
    ),
    ("Escape", "Close the dialog"),
    ("Ctrl+Q", "Quit"),
];

const NUMBERS: [Key; 9] = [
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
    Key::Num9,
];

/// Which way to move in the conversation list.
enum Step {
    Next,
    Previous,
    At(usize),
}

/// Takes this frame's shortcuts out of the input and says what they ask for. `filter` is the
/// conversation list's name filter: the shortcuts move through the list as it is shown.
pub fn take(ctx: &egui::Context, model: &Model, filter: &str) -> Vec<Action> {
    let mut actions = Vec::new();
    let (quit, step, search) = ctx.input_mut(|i| {
        let quit = i.consume_key(Modifiers::COMMAND, Key::Q);
        // Ctrl+Shift+Tab before Ctrl+Tab: a shortcut matches with Shift held too.
        let step = if i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Tab)
            || i.consume_key(Modifiers::ALT, Key::ArrowUp)
        {
            Some(Step::Previous)
        } else if i.consume_key(Modifiers::COMMAND, Key::Tab)
            || i.consume_key(Modifiers::ALT, Key::ArrowDown)
        {
            Some(Step::Next)
        } else {
            NUMBERS
                .iter()
                .position(|&key| i.consume_key(Modifiers::COMMAND, key))
                .map(Step::At)
        };
        let search =
            i.consume_key(Modifiers::COMMAND, Key::F) || i.consume_key(Modifiers::COMMAND, Key::K);
        (quit, step, search)
    });
    if quit {
        actions.push(Action::Quit);
    }
    // The main window's shortcuts wait while a dialog or a confirmation is open over it.
    if model.screen != Screen::Main || model.dialog.is_some() || model.confirm.is_some() {
        return actions;
    }
    if search {
        actions.push(Action::FocusSearch);
    }
    if let Some(step) = step {
        let rows = model.list_rows_matching(filter);
        let current = model
            .open
            .as_ref()
            .and_then(|o| rows.iter().position(|r| r.key == o.conversation));
        let n = rows.len();
        let target = match (step, current) {
            (_, _) if n == 0 => None,
            (Step::At(i), _) => Some(i),
            (Step::Next, Some(c)) => Some((c + 1) % n),
            (Step::Previous, Some(c)) => Some((c + n - 1) % n),
            (Step::Next, None) => Some(0),
            (Step::Previous, None) => Some(n - 1),
        };
        if let Some(row) = target.and_then(|i| rows.get(i)) {
            actions.push(Action::OpenConversation {
                conversation: row.key,
                scroll_to: None,
            });
        }
    }
    actions
}
