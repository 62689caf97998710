//! Files in the model: how a message's attachment reads on its card (its state in words, its size, which
//! buttons it offers) and how the node's file events and the answers to pause, resume, cancel change the
//! attachments the app holds.

use tern_protocol::MessageId;

use super::Model;
use super::rows::{Attachment, ConversationFields, ConversationKey, FileState, MessageRow};

/// What a file card offers, depending on the file's state and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileButton {
    Pause,
    Resume,
    /// Fetch a failed file again (the node's resume).
    TryAgain,
    Cancel,
    /// Decrypt the complete file to a place the person chooses.
    SaveAs,
    /// Withdraw a file this profile sent (after a confirmation): the node's cancel.
    Withdraw,
}

impl FileButton {
    pub fn label(self) -> &'static str {
        match self {
            Self::Pause => "Pause",
            Self::Resume => "Resume",
            Self::TryAgain => "Try again",
            Self::Cancel => "Cancel",
            Self::SaveAs => "Save as…",
            Self::Withdraw => "Withdraw…",
        }
    }
}

/// The buttons a card shows for `attachment`, sent by this profile when `outgoing`.
pub fn file_buttons(attachment: &Attachment, outgoing: bool) -> Vec<FileButton> {
    use FileButton::{Cancel, Pause, Resume, SaveAs, TryAgain, Withdraw};
    match (attachment.state, outgoing) {
        (FileState::Complete, true) => vec![SaveAs, Withdraw],
        (FileState::Complete, false) => vec![SaveAs],
        (FileState::Waiting | FileState::Downloading, false) => vec![Pause, Cancel],
        (FileState::Paused, false) => vec![Resume, Cancel],
        (FileState::Failed, false) => vec![TryAgain],
        _ => Vec::new(),
    }
}

/// A size as a person reads it: "1 byte", "900 bytes", "1.5 KB", "12 MB", "3.2 GB" (1 KB = 1024 bytes).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return crate::words::count(bytes as usize, "byte", "bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    // One decimal below 10 ("1.5 KB"), none above ("12 MB"); never "10.0".
    if value < 9.95 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// How much of the file is here, from 0 to 1.
pub fn progress_fraction(attachment: &Attachment) -> f32 {
    if attachment.size == 0 {
        return if attachment.state == FileState::Complete {
            1.0
        } else {
            0.0
        };
    }
    (attachment.progress.min(attachment.size) as f64 / attachment.size as f64) as f32
}

/// The file's state in words, as its card says it (nothing for a file this profile sent and holds).
pub fn state_text(attachment: &Attachment, outgoing: bool) -> String {
    let percent = (progress_fraction(attachment) * 100.0).floor() as u32;
    match (attachment.state, outgoing) {
        (FileState::Waiting, _) => "Waiting to download".to_owned(),
        (FileState::Downloading, _) => format!(
            "Downloading: {percent}% ({} of {})",
            human_size(attachment.progress.min(attachment.size)),
            human_size(attachment.size)
        ),
        (FileState::Paused, _) => format!("Paused at {percent}%"),
        // Sent and held here: the message's status says how far it went.
        (FileState::Complete, true) => String::new(),
        (FileState::Complete, false) => "Downloaded".to_owned(),
        (FileState::Cancelled, true) => "Withdrawn".to_owned(),
        (FileState::Cancelled, false) => match &attachment.failure {
            Some(why) => format!("Cancelled: {why}"),
            None => "Cancelled".to_owned(),
        },
        (FileState::Failed, _) => match &attachment.failure {
            Some(why) => format!("Download failed: {why}"),
            None => "Download failed".to_owned(),
        },
        _ => attachment.state.as_str().to_owned(),
    }
}

impl Model {
    /// Changes the attachment of message `id` wherever the app holds it (the open view, the list's last
    /// message).
    fn change_attachment(
        &mut self,
        conversation: ConversationKey,
        id: MessageId,
        change: impl Fn(&mut Attachment),
    ) {
        let apply = |m: &mut MessageRow| {
            if m.id == id
                && let Some(a) = m.attachment.as_mut()
            {
                change(a);
            }
        };
        if let Some(open) = self
            .open
            .as_mut()
            .filter(|o| o.conversation == conversation)
        {
            open.messages.iter_mut().for_each(apply);
        }
        if let Some(row) = self
            .conversations
            .iter_mut()
            .find(|c| c.key() == conversation)
        {
            apply(&mut row.last);
        }
    }

    /// `received` of `size` bytes of a file are here.
    pub fn file_progress(&mut self, conversation: ConversationKey, id: MessageId, received: u64) {
        self.change_attachment(conversation, id, |a| {
            if matches!(a.state, FileState::Waiting | FileState::Downloading) {
                a.state = FileState::Downloading;
                a.progress = received.min(a.size);
            }
        });
    }

    /// A mailbox server would not keep a file this profile sent for a recipient who is offline: say so
    /// once, naming the file when its message is in view.
    pub fn file_not_held(&mut self, conversation: ConversationKey, id: MessageId, reason: &str) {
        let name = self
            .open
            .as_ref()
            .filter(|o| o.conversation == conversation)
            .and_then(|o| o.messages.iter().find(|m| m.id == id))
            .and_then(|m| m.attachment.as_ref())
            .map_or_else(|| "a file you sent".to_owned(), |a| format!("“{}”", a.name));
        self.error(format!(
            "The mailbox will not keep {name} while you are offline ({reason}). It can be \
             downloaded from this computer while you are online."
        ));
    }

    /// A file stopped for good (failed, or withdrawn by its sender), and why.
    pub fn file_failed(
        &mut self,
        conversation: ConversationKey,
        id: MessageId,
        state: FileState,
        reason: &str,
    ) {
        self.file_state(conversation, id, state);
        self.change_attachment(conversation, id, |a| a.failure = Some(reason.to_owned()));
    }

    /// A file is whole here, or was paused, resumed, cancelled or given up on.
    pub fn file_state(&mut self, conversation: ConversationKey, id: MessageId, state: FileState) {
        self.change_attachment(conversation, id, |a| {
            if a.state != state {
                a.failure = None;
            }
            a.state = state;
            if state == FileState::Complete {
                a.progress = a.size;
            } else if state == FileState::Cancelled {
                a.progress = 0;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_rows::{key, message};
    use super::*;

    fn attachment(state: FileState, progress: u64, size: u64) -> Attachment {
        Attachment {
            name: "notes.txt".into(),
            size,
            media_type: "text/plain".into(),
            state,
            progress,
            metadata_stripped: false,
            thumbnail: None,
            failure: None,
        }
    }

    #[test]
    fn each_state_offers_its_buttons() {
        use FileButton::*;
        let buttons = |state, outgoing| file_buttons(&attachment(state, 0, 10), outgoing);
        assert_eq!(buttons(FileState::Waiting, false), vec![Pause, Cancel]);
        assert_eq!(buttons(FileState::Downloading, false), vec![Pause, Cancel]);
        assert_eq!(buttons(FileState::Paused, false), vec![Resume, Cancel]);
        assert_eq!(buttons(FileState::Complete, false), vec![SaveAs]);
        assert_eq!(buttons(FileState::Complete, true), vec![SaveAs, Withdraw]);
        assert!(buttons(FileState::Cancelled, true).is_empty(), "withdrawn");
        assert_eq!(buttons(FileState::Failed, false), vec![TryAgain]);
        assert!(buttons(FileState::Cancelled, false).is_empty());
        assert!(buttons(FileState::Cancelled, true).is_empty());
        assert_eq!(SaveAs.label(), "Save as…");
    }

    #[test]
    fn sizes_and_progress_read_plainly() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(12 * 1024 * 1024), "12 MB");
        assert_eq!(human_size(10 * 1024 - 1), "10 KB");
        assert_eq!(human_size(4 * 1024 * 1024 * 1024), "4.0 GB");
        let downloading = attachment(FileState::Downloading, 512 * 1024, 2 * 1024 * 1024);
        assert_eq!(
            state_text(&downloading, false),
            "Downloading: 25% (512 KB of 2.0 MB)"
        );
        assert_eq!(
            state_text(&attachment(FileState::Paused, 5, 10), false),
            "Paused at 50%"
        );
        assert_eq!(
            progress_fraction(&attachment(FileState::Complete, 0, 0)),
            1.0
        );
        assert_eq!(
            progress_fraction(&attachment(FileState::Waiting, 99, 10)),
            1.0,
            "never past the end"
        );
        assert_eq!(
            state_text(&attachment(FileState::Complete, 10, 10), false),
            "Downloaded"
        );
        assert_eq!(
            state_text(&attachment(FileState::Complete, 10, 10), true),
            ""
        );
    }

    #[test]
    fn file_events_move_the_attachment_in_the_open_view_and_the_list() {
        let mut m = Model::default();
        let a = key(1);
        m.open_conversation(a);
        let mut offered = message(a, 1, 10, false);
        offered.attachment = Some(attachment(FileState::Waiting, 0, 100));
        m.message_stored(offered);
        let conversation = a.into();
        let id = MessageId([1; 16]);
        let shown = |m: &Model| {
            m.open.as_ref().unwrap().messages[0]
                .attachment
                .clone()
                .unwrap()
        };
        m.file_progress(conversation, id, 40);
        assert_eq!(shown(&m).state, FileState::Downloading);
        assert_eq!(shown(&m).progress, 40);
        m.file_state(conversation, id, FileState::Paused);
        m.file_progress(conversation, id, 60);
        assert_eq!(shown(&m).progress, 40, "a paused file does not move");
        m.file_state(conversation, id, FileState::Complete);
        assert_eq!(shown(&m).progress, 100);
        let last = m.conversations[0].last.attachment.clone().unwrap();
        assert_eq!(last.state, FileState::Complete, "the list's copy too");
        // Another message's id changes nothing.
        m.file_state(conversation, MessageId([9; 16]), FileState::Failed);
        assert_eq!(shown(&m).state, FileState::Complete);

        // A failure keeps its reason on the card until the file moves on.
        m.file_failed(
            conversation,
            id,
            FileState::Failed,
            "the sender no longer has the file",
        );
        assert_eq!(
            state_text(&shown(&m), false),
            "Download failed: the sender no longer has the file"
        );
        m.file_state(conversation, id, FileState::Waiting);
        assert_eq!(shown(&m).failure, None);
        assert_eq!(state_text(&shown(&m), false), "Waiting to download");
    }

    #[test]
    fn a_mailbox_refusing_a_file_is_one_error_naming_the_file_when_it_is_in_view() {
        let mut m = Model::default();
        let a = key(1);
        m.open_conversation(a);
        let mut sent = message(a, 1, 10, true);
        sent.attachment = Some(attachment(FileState::Complete, 100, 100));
        m.message_stored(sent);
        m.file_not_held(a.into(), MessageId([1; 16]), "too large");
        m.file_not_held(a.into(), MessageId([2; 16]), "no room");
        assert_eq!(m.notices.len(), 2);
        assert!(m.notices.iter().all(|n| n.error));
        assert!(m.notices[0].text.contains("“notes.txt”"));
        assert!(m.notices[0].text.contains("(too large)"));
        assert!(m.notices[1].text.contains("a file you sent"), "not in view");
    }
}
