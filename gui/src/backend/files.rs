//! The backend's file calls (docs/protocol.md §19): send a file in a 1:1 conversation, save a complete
//! one, pause, resume or cancel one; and the desktop's own file chooser (the XDG portal over D-Bus,
//! else zenity), run on a blocking thread. Failures are said in plain words, inside the path dialog when it is
//! up, else as an error toast.

use std::path::PathBuf;

use tern_protocol::MessageId;
use tokio::sync::oneshot;

use super::{Backend, Update};
use crate::model::{ConversationKey, Dialog, FileButton, FileState, Model, Node};
use crate::words;

/// Says a failed file call inside `dialog` (or as a toast once it has closed).
fn file_failed(dialog: Dialog, error: &tern_node::node::NodeError) -> Update {
    let text = words::file_error(error);
    Box::new(move |m: &mut Model| m.dialog_failed(dialog, text))
}

impl Backend {
    /// Opens the desktop's file chooser: to pick a file to send, or (with `save_as`, the path offered)
    /// where to save one. The answer comes on the receiver (`None`: cancelled, or no chooser answered).
    pub fn choose_path(&self, save_as: Option<PathBuf>) -> oneshot::Receiver<Option<PathBuf>> {
        let (tx, rx) = oneshot::channel();
        let ctx = self.ctx.clone();
        self.runtime.spawn_blocking(move || {
            let dialog = rfd::FileDialog::new();
            let chosen = match save_as {
                Some(offered) => {
                    let mut dialog = dialog.set_title("Save file");
                    if let Some(dir) = offered.parent().filter(|d| d.is_dir()) {
                        dialog = dialog.set_directory(dir);
                    }
                    if let Some(name) = offered.file_name() {
                        dialog = dialog.set_file_name(name.to_string_lossy());
                    }
                    dialog.save_file()
                }
                None => dialog.set_title("Send a file").pick_file(),
            };
            let _ = tx.send(chosen);
            ctx.request_repaint();
        });
        rx
    }

    /// Deletes a message from this computer ("Delete for me"; a file it offers goes with it): it leaves
    /// the open view, the search results and the list as an expired one does.
    pub fn delete_message(&self, node: &Node, conversation: ConversationKey, id: MessageId) {
        let node = node.clone();
        self.spawn(async move {
            match node.delete_message(conversation, id).await {
                Ok(()) => Box::new(move |m: &mut Model| {
                    m.messages_expired(conversation, &[id]);
                    m.notice("Message deleted");
                }) as Update,
                Err(e) => super::failed("Could not delete the message", e),
            }
        });
    }

    /// Clears a conversation's history ([`Node::clear_history`]); the list and the open conversation
    /// lose its messages.
    pub fn clear_history(&self, node: &Node, conversation: ConversationKey) {
        let node = node.clone();
        self.spawn(async move {
            match node.clear_history(conversation).await {
                Ok(deleted) => Box::new(move |m: &mut Model| {
                    m.history_cleared(conversation);
                    m.notice(match deleted {
                        1 => "1 message deleted".to_owned(),
                        n => format!("{n} messages deleted"),
                    });
                }) as Update,
                Err(e) => super::failed("Could not clear the history", e),
            }
        });
    }

    /// Opens the desktop's file chooser for a picture (of a contact's QR code), as [`Self::choose_path`].
    pub fn choose_picture(&self) -> oneshot::Receiver<Option<PathBuf>> {
        let (tx, rx) = oneshot::channel();
        let ctx = self.ctx.clone();
        self.runtime.spawn_blocking(move || {
            let chosen = rfd::FileDialog::new()
                .set_title("Picture of their QR code")
                .add_filter("Pictures", &["png", "jpg", "jpeg", "gif", "bmp", "webp"])
                .pick_file();
            let _ = tx.send(chosen);
            ctx.request_repaint();
        });
        rx
    }

    /// Sends the file at `path`; its message goes into the view and the path dialog closes.
    pub fn send_file(&self, node: &Node, conversation: ConversationKey, path: PathBuf) {
        let node = node.clone();
        self.spawn(async move {
            match node.send_file(conversation, path).await {
                Ok(sent) => Box::new(move |m: &mut Model| {
                    m.message_stored(sent.message);
                    if m.dialog == Some(Dialog::AttachFile) {
                        m.dialog = None;
                        m.dialog_error = None;
                    }
                }) as Update,
                Err(e) => file_failed(Dialog::AttachFile, &e),
            }
        });
    }

    /// Opens the picture of message `id` into memory and decodes it (off the UI thread) for "Picture".
    pub fn view_picture(
        &self,
        node: &Node,
        conversation: ConversationKey,
        id: MessageId,
        name: String,
    ) {
        use crate::picture::{MAX_PICTURE_BYTES, decode};
        let node = node.clone();
        self.spawn(async move {
            let bytes = match node
                .file_contents(conversation, id, MAX_PICTURE_BYTES)
                .await
            {
                Ok(bytes) => bytes,
                Err(e) => {
                    return super::failed("Could not open the picture", words::file_error(&e));
                }
            };
            match tokio::task::spawn_blocking(move || decode(name, &bytes)).await {
                Ok(Ok(picture)) => Box::new(move |m: &mut Model| {
                    m.picture = Some(picture);
                    m.dialog = Some(Dialog::Picture);
                    m.dialog_error = None;
                }) as Update,
                Ok(Err(why)) => super::failed("Could not open the picture", why),
                Err(_) => super::failed("Could not open the picture", "it stopped"),
            }
        });
    }

    /// Decrypts the complete file of message `id` to `dest` (replacing a file there only if `overwrite`).
    pub fn save_file(
        &self,
        node: &Node,
        conversation: ConversationKey,
        id: MessageId,
        dest: PathBuf,
        overwrite: bool,
    ) {
        let node = node.clone();
        self.spawn(async move {
            match node.save_file(conversation, id, &dest, overwrite).await {
                Ok(()) => Box::new(move |m: &mut Model| {
                    if m.dialog == Some(Dialog::SaveFile) {
                        m.dialog = None;
                        m.dialog_error = None;
                    }
                    m.notice(format!("Saved to {}", dest.display()));
                }) as Update,
                Err(e) => file_failed(Dialog::SaveFile, &e),
            }
        });
    }

    /// Pauses, resumes (or tries again) or cancels the file of message `id`; the card follows.
    pub fn file_control(
        &self,
        node: &Node,
        conversation: ConversationKey,
        id: MessageId,
        button: FileButton,
    ) {
        let node = node.clone();
        self.spawn(async move {
            let (done, state) = match button {
                FileButton::Pause => (node.pause_file(conversation, id).await, FileState::Paused),
                FileButton::Resume | FileButton::TryAgain => {
                    (node.resume_file(conversation, id).await, FileState::Waiting)
                }
                FileButton::Cancel | FileButton::Withdraw => (
                    node.cancel_file(conversation, id).await,
                    FileState::Cancelled,
                ),
                // Saving asks where first: see `save_file`.
                FileButton::SaveAs => return Box::new(|_: &mut Model| {}) as Update,
            };
            match done {
                Ok(()) => Box::new(move |m: &mut Model| m.file_state(conversation, id, state)),
                Err(e) => {
                    let text = words::file_error(&e);
                    Box::new(move |m: &mut Model| m.error(text))
                }
            }
        });
    }
}
