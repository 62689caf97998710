//! The small path dialogs of files: "Send a file" (the path of a file to send in the open 1:1
//! conversation; Enter sends) and "Save file" (where to decrypt a received file, prefilled with
//! ~/Downloads/<name>; a file already there is replaced only when the person ticks "Replace it").
//! "Choose…" opens the desktop's own file chooser; the path it answers with goes into the field.

use std::path::{Path, PathBuf};

use crate::action::Action;
use crate::model::{ConversationKey, Model};
use crate::widgets::{entered, focus_once, primary_button, secondary_button};
use tern_protocol::MessageId;
use tokio::sync::oneshot;

/// The file "Save file" is for.
#[derive(Debug, Clone)]
pub struct Saving {
    pub conversation: ConversationKey,
    pub id: MessageId,
    pub name: String,
}

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    pub path: String,
    /// Set while "Save file" is up.
    pub saving: Option<Saving>,
    /// Save over a file that is already there.
    pub replace: bool,
    /// The desktop's file chooser is open: its answer comes here.
    pub choosing: Option<oneshot::Receiver<Option<PathBuf>>>,
}

impl Form {
    /// "Save file" for `saving`, with the path prefilled.
    pub fn save(saving: Saving) -> Self {
        Self {
            path: default_save_path(&saving.name).display().to_string(),
            saving: Some(saving),
            replace: false,
            choosing: None,
        }
    }

    /// Takes the file chooser's answer, if it came: a chosen path goes into the field.
    pub fn poll_chooser(&mut self) {
        let Some(answer) = self.choosing.as_mut() else {
            return;
        };
        match answer.try_recv() {
            Ok(Some(path)) => {
                self.path = path.display().to_string();
                self.choosing = None;
            }
            Ok(None) | Err(oneshot::error::TryRecvError::Closed) => self.choosing = None,
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
    }
}

/// Where a received file named `name` is offered to be saved: the Downloads folder (or ~/Downloads)
/// with the name's last part only, so a name can never point elsewhere.
pub fn default_save_path(name: &str) -> PathBuf {
    let file = Path::new(name)
        .file_name()
        .filter(|f| !f.is_empty())
        .map_or_else(|| PathBuf::from("file"), PathBuf::from);
    let downloads = directories::UserDirs::new().and_then(|d| {
        d.download_dir()
            .map(Path::to_path_buf)
            .or_else(|| Some(d.home_dir().join("Downloads")))
    });
    downloads.unwrap_or_default().join(file)
}

/// A typed path, with a leading `~/` taken as the home folder.
pub fn expand(typed: &str) -> PathBuf {
    let typed = typed.trim();
    match (
        typed.strip_prefix("~/"),
        directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()),
    ) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(typed),
    }
}

/// A path field and "Choose…", which asks for `choose` (an action that opens the desktop's chooser,
/// whose answer comes into `form`). `label` names the field; `width` is the field's, fixed so the
/// dialog keeps its size; `focus` puts the cursor in it, once. While the chooser is open a spinner
/// takes the button's place. Returns whether Enter was pressed in the field.
pub fn path_field(
    ui: &mut egui::Ui,
    label: &str,
    form: &mut Form,
    width: f32,
    focus: &mut bool,
    choose: Action,
    actions: &mut Vec<Action>,
) -> bool {
    form.poll_chooser();
    ui.horizontal(|ui| {
        let label = ui.label(label);
        let field = ui
            .add(egui::TextEdit::singleline(&mut form.path).desired_width(width))
            .labelled_by(label.id);
        focus_once(&field, focus);
        if form.choosing.is_some() {
            ui.spinner();
        } else if ui.add(secondary_button("Choose…")).clicked() {
            actions.push(choose);
        }
        entered(&field)
    })
    .inner
}

/// "Send a file": sends the file at the typed path in the open 1:1 conversation.
pub fn show_attach(
    ui: &mut egui::Ui,
    model: &Model,
    form: &mut Form,
    focus: &mut bool,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(conversation) = model
        .open
        .as_ref()
        .map(|o| o.conversation)
        .filter(|c| c.direct().is_some())
    else {
        ui.label("Files can be sent in a conversation with one contact only.");
        return actions;
    };
    ui.label(format!(
        "Send a file to {}. Type its path, or drop the file on the window.",
        model.title_of(&conversation)
    ));
    let enter = path_field(
        ui,
        "File",
        form,
        300.0,
        focus,
        Action::ChoosePath,
        &mut actions,
    );
    if ui.add(primary_button("Send file")).clicked() || enter {
        if form.path.trim().is_empty() {
            actions.push(Action::DialogError("Type the path of a file.".to_owned()));
        } else {
            actions.push(Action::SendFile {
                conversation,
                path: expand(&form.path),
            });
        }
    }
    actions
}

/// "Save file": decrypts the received file to the typed path.
pub fn show_save(ui: &mut egui::Ui, form: &mut Form, focus: &mut bool) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(saving) = form.saving.clone() else {
        return actions;
    };
    ui.label(format!("Save {} as:", saving.name));
    let enter = path_field(
        ui,
        "Save to",
        form,
        300.0,
        focus,
        Action::ChoosePath,
        &mut actions,
    );
    ui.checkbox(
        &mut form.replace,
        "Replace it if a file with that name is there",
    );
    if ui.add(primary_button("Save")).clicked() || enter {
        if form.path.trim().is_empty() {
            actions.push(Action::DialogError(
                "Type where to save the file.".to_owned(),
            ));
        } else {
            actions.push(Action::SaveFile {
                conversation: saving.conversation,
                id: saving.id,
                dest: expand(&form.path),
                overwrite: form.replace,
            });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_save_path_keeps_only_the_names_last_part() {
        let path = default_save_path("../../etc/passwd");
        assert_eq!(path.file_name().unwrap(), "passwd");
        assert!(!path.to_string_lossy().contains(".."));
        assert_eq!(default_save_path("").file_name().unwrap(), "file");
        assert_eq!(
            default_save_path("photo.jpg").file_name().unwrap(),
            "photo.jpg"
        );
        assert_eq!(expand(" /tmp/x.txt "), PathBuf::from("/tmp/x.txt"));
    }

    #[test]
    fn the_choosers_answer_fills_the_field_and_a_cancel_leaves_it() {
        let mut form = Form {
            path: "typed".into(),
            ..Form::default()
        };
        let (tx, rx) = oneshot::channel();
        form.choosing = Some(rx);
        form.poll_chooser();
        assert!(form.choosing.is_some(), "still open");
        tx.send(Some(PathBuf::from("/home/a/b.txt"))).unwrap();
        form.poll_chooser();
        assert_eq!(form.path, "/home/a/b.txt");
        assert!(form.choosing.is_none());
        let (tx, rx) = oneshot::channel();
        form.choosing = Some(rx);
        tx.send(None).unwrap();
        form.poll_chooser();
        assert_eq!(form.path, "/home/a/b.txt", "cancelled: unchanged");
        assert!(form.choosing.is_none());
    }

    #[test]
    fn choose_asks_for_the_action_it_is_given_and_the_answer_fills_the_field() {
        use egui::accesskit::Role;
        use egui_kittest::Harness;
        use egui_kittest::kittest::Queryable;

        struct State {
            form: Form,
            actions: Vec<Action>,
        }
        let mut h = Harness::new_ui_state(
            |ui, s: &mut State| {
                path_field(
                    ui,
                    "Their QR image",
                    &mut s.form,
                    150.0,
                    &mut false,
                    Action::ChooseQrPicture,
                    &mut s.actions,
                );
            },
            State {
                form: Form::default(),
                actions: Vec::new(),
            },
        );
        let field = h.get_by(|n| {
            n.role() == Role::TextInput && n.label().as_deref() == Some("Their QR image")
        });
        assert!(
            (field.rect().width() - 150.0).abs() < 1.0,
            "the width asked for"
        );
        h.get_by_role_and_label(Role::Button, "Choose…").click();
        h.step();
        let kinds: Vec<_> = h.state().actions.iter().map(Action::kind).collect();
        assert_eq!(kinds, ["choose-qr-picture"]);
        // The chooser is open (the executor keeps its answer channel): a spinner, no second chooser.
        let (tx, rx) = oneshot::channel();
        h.state_mut().form.choosing = Some(rx);
        h.step();
        assert!(h.query_by_role_and_label(Role::Button, "Choose…").is_none());
        tx.send(Some(PathBuf::from("/home/a/their-code.png")))
            .unwrap();
        h.step();
        h.step();
        assert_eq!(h.state().form.path, "/home/a/their-code.png");
        assert!(h.query_by_role_and_label(Role::Button, "Choose…").is_some());
    }
}
