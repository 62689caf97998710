//! What the drawing code keeps between frames that is not the app's state: the text being typed in
//! each form and the message list's layout cache. The screens and dialogs edit it as they draw; the
//! action executor resets parts of it (a dialog's form when it opens, the composer when another
//! conversation opens).

use crate::chat::ChatView;
use crate::dialogs::DialogForms;
use crate::screens::main_window::MainForm;
use crate::screens::start::StartForm;

/// The drawing side's state.
#[derive(Default)]
pub struct Views {
    pub start: StartForm,
    pub main: MainForm,
    pub chat: ChatView,
    pub dialogs: DialogForms,
}
