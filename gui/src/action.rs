//! What the person asked for in a frame. The screens and dialogs draw from the model and return these;
//! the app performs them all once drawing is done (see `execute`), so no node call, file read or model
//! change happens in the middle of drawing.

use std::path::PathBuf;

use tern_node::profile::Password;
use tern_node::settings::NetworkSettings;
use tern_protocol::{IdentityKey, MessageId};

use crate::model::{
    Confirm, ContactState, ConversationId, ConversationKey, Cursor, Dialog, FileButton,
};

/// Which backup path the desktop's chooser is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chooser {
    /// Where "Back up now…" writes.
    BackupFile,
    /// The folder of automatic backups.
    AutoFolder,
    /// The backup to restore.
    RestoreArchive,
}

/// Turn automatic backups on with this folder, schedule and number kept.
#[derive(Debug, Clone)]
pub struct AutoRequest {
    pub dir: PathBuf,
    pub every: std::time::Duration,
    pub keep: u8,
}

/// One thing to do at the end of the frame.
pub enum Action {
    // ---- the start screen ----
    /// Pick a profile in the unlock list.
    SelectProfile(usize),
    /// Show the create form (`true`) or the unlock form.
    CreatingProfile(bool),
    /// Unlock the selected profile, or create one, with what the start screen's form holds.
    SubmitProfile,
    /// Open (or, with `create`, first create with that name) the profile in `dir` and start its node.
    Unlock {
        dir: PathBuf,
        password: Password,
        create: Option<String>,
    },
    /// Show the "Restore from a backup" form (`true`) or go back.
    Restoring(bool),
    /// Restore with what the restore form holds, then open the profile.
    SubmitRestore,
    /// Open the desktop's chooser for a backup path.
    ChooseBackupPath(Chooser),
    /// Write a backup of the open profile to this path (which must not exist).
    BackupNow(PathBuf),
    /// The person wrote the recovery code down: it is forgotten.
    CloseCode,
    /// Turn automatic backups on (a new code, shown once) or off (`None`).
    SetAutoBackup(Option<AutoRequest>),

    // ---- the main window ----
    /// Open a dialog, with its form made ready.
    ShowDialog(Dialog),
    /// Open "Verify" for this contact.
    VerifyContact(IdentityKey),
    /// A picture was dropped on the window: read it for an invite in "Add contact".
    DroppedPicture(PathBuf),
    CloseDialog,
    /// Say what went wrong inside the open dialog.
    DialogError(String),
    /// Ask before a destructive step.
    Confirm(Confirm),
    /// Take the confirmation away (cancelled, or done).
    CloseConfirm,
    DismissNotice(usize),
    /// Tell the person something (`error: true` shows it as an error).
    Notice {
        text: String,
        error: bool,
    },
    Search(String),
    CloseSearch,
    /// Put the cursor in the search field.
    FocusSearch,
    /// Close the window (and with it the app).
    Quit,
    /// Open a conversation (and load its newest page), optionally scrolled to one message.
    OpenConversation {
        conversation: ConversationKey,
        scroll_to: Option<MessageId>,
    },
    CloseConversation,
    LoadOlder {
        conversation: ConversationKey,
        before: Cursor,
    },
    /// Send `text`; `reply_to`: as a reply to that message of the conversation.
    Send {
        conversation: ConversationKey,
        text: String,
        reply_to: Option<MessageId>,
    },
    /// The next message sent in the conversation answers message `id` ("Reply" in its menu).
    ReplyTo {
        conversation: ConversationKey,
        id: MessageId,
    },
    /// The next message answers nothing after all (the ✕ beside "Replying to …").
    CancelReply,
    /// Tell the contact the person started (`true`) or stopped typing.
    Typing {
        conversation: ConversationKey,
        typing: bool,
    },
    Retry {
        conversation: ConversationKey,
        id: MessageId,
    },
    /// Show a message's times and statuses ("Info" in its menu).
    MessageInfo {
        conversation: ConversationKey,
        id: MessageId,
    },
    /// Delete a message from this computer only (confirmed first).
    DeleteMessage {
        conversation: ConversationKey,
        id: MessageId,
    },
    MarkRead {
        conversation: ConversationKey,
        ids: Vec<MessageId>,
    },
    /// Set the conversation's disappearing-message timer, in seconds (0: off).
    SetTimer {
        conversation: ConversationKey,
        seconds: u32,
    },

    // ---- files ----
    /// Open the path dialog to send a file in the conversation.
    AskAttach(ConversationKey),
    /// Send the picture on the clipboard in the conversation.
    PastePicture(ConversationKey),
    /// Show the picture of message `id` at full size.
    ViewPicture {
        conversation: ConversationKey,
        id: MessageId,
        name: String,
    },
    /// Send the file at `path` in the conversation.
    SendFile {
        conversation: ConversationKey,
        path: PathBuf,
    },
    /// Open the desktop's file chooser for the open path dialog.
    ChoosePath,
    /// Open "Save as…" for the file of message `id`, named `name` by its sender.
    AskSaveFile {
        conversation: ConversationKey,
        id: MessageId,
        name: String,
    },
    /// Decrypt the complete file of message `id` to `dest` (an existing file only with `overwrite`).
    SaveFile {
        conversation: ConversationKey,
        id: MessageId,
        dest: PathBuf,
        overwrite: bool,
    },
    /// Pause, resume, try again or cancel the file of message `id`.
    FileControl {
        conversation: ConversationKey,
        id: MessageId,
        button: FileButton,
    },

    // ---- contacts ----
    AddContact {
        link: String,
        name: Option<String>,
    },
    /// Read an invite out of a QR picture into the add-contact form.
    ReadQrInvite(PathBuf),
    SetContactState {
        contact: IdentityKey,
        state: ContactState,
    },
    Rename {
        contact: IdentityKey,
        name: String,
    },
    RemoveContact(IdentityKey),
    /// Delete a conversation's messages from this computer (the contact or group stays).
    ClearHistory(ConversationId),
    /// The safety number was compared: mark the contact verified.
    Verify {
        contact: IdentityKey,
        digits: String,
    },
    /// Open the desktop's chooser for the picture of a contact's QR code (in "Add contact" or
    /// "Verify", whichever is open).
    ChooseQrPicture,
    /// Verify the contact from a picture of their QR code.
    VerifyByQr {
        contact: IdentityKey,
        path: PathBuf,
    },

    // ---- groups ----
    /// Make a group named `name` and invite these accepted contacts.
    CreateGroup {
        name: String,
        members: Vec<IdentityKey>,
    },
    /// Invite a contact into a group (admins).
    AddMember {
        group: ConversationId,
        member: IdentityKey,
    },
    /// Remove a member (admins).
    RemoveMember {
        group: ConversationId,
        member: IdentityKey,
    },
    /// Make a member an admin (admins).
    PromoteMember {
        group: ConversationId,
        member: IdentityKey,
    },
    RenameGroup {
        group: ConversationId,
        name: String,
    },
    LeaveGroup(ConversationId),
    /// Read a group's members (with their roles) from the node.
    LoadMembers(ConversationId),
    /// Group links and join requests (docs/protocol.md §18.11).
    Link(LinkAction),

    // ---- settings and the network ----
    SetDark(bool),
    SetNotifications(bool),
    /// The system tray icon on or off.
    SetTray(bool),
    SaveSettings(NetworkSettings),
    /// Turns read receipts and typing indicators on or off.
    SetPrivacy(tern_node::privacy::PrivacySettings),
    /// Mute or pin a conversation (`tern_node::prefs`).
    SetMuted {
        conversation: ConversationId,
        muted: bool,
    },
    SetPinned {
        conversation: ConversationId,
        pinned: bool,
    },
    ChangePassword {
        old: Password,
        new: Password,
    },
    /// Replace the signed prekey and forget the earlier ones now.
    RevokePrekeys,
    /// Rename this profile (its contacts are sent the new card).
    SetDisplayName(String),
    /// Save the unsent drafts in the profile (typing stopped a moment ago).
    SaveDrafts,
    /// Ask the node for its network status.
    RefreshStatus,

    // ---- after the node's updates ----
    /// Read the contact and conversation lists again (the event stream lagged).
    Resync,
    /// Read the conversation list again (a timer changed or messages expired): last messages, unread
    /// counts and timers.
    ReloadConversations,
    /// A desktop notification (names only, never message text).
    Notify(String),
}

impl Action {
    /// The action's name, for logs (payloads may hold names, text or passwords: never printed).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SelectProfile(_) => "select-profile",
            Self::CreatingProfile(_) => "creating-profile",
            Self::SubmitProfile => "submit-profile",
            Self::Unlock { .. } => "unlock",
            Self::Restoring(_) => "restoring",
            Self::SubmitRestore => "submit-restore",
            Self::ChooseBackupPath(_) => "choose-backup-path",
            Self::BackupNow(_) => "backup-now",
            Self::CloseCode => "close-code",
            Self::SetAutoBackup(_) => "set-auto-backup",
            Self::ShowDialog(_) => "show-dialog",
            Self::VerifyContact(_) => "verify-contact",
            Self::DroppedPicture(_) => "dropped-picture",
            Self::CloseDialog => "close-dialog",
            Self::DialogError(_) => "dialog-error",
            Self::Confirm(_) => "confirm",
            Self::CloseConfirm => "close-confirm",
            Self::DismissNotice(_) => "dismiss-notice",
            Self::Notice { .. } => "notice",
            Self::Search(_) => "search",
            Self::CloseSearch => "close-search",
            Self::FocusSearch => "focus-search",
            Self::Quit => "quit",
            Self::OpenConversation { .. } => "open-conversation",
            Self::CloseConversation => "close-conversation",
            Self::LoadOlder { .. } => "load-older",
            Self::Send { .. } => "send",
            Self::ReplyTo { .. } => "reply-to",
            Self::CancelReply => "cancel-reply",
            Self::Typing { .. } => "typing",
            Self::Retry { .. } => "retry",
            Self::MessageInfo { .. } => "message-info",
            Self::DeleteMessage { .. } => "delete-message",
            Self::MarkRead { .. } => "mark-read",
            Self::SetTimer { .. } => "set-timer",
            Self::AskAttach(_) => "ask-attach",
            Self::PastePicture(_) => "paste-picture",
            Self::ViewPicture { .. } => "view-picture",
            Self::SendFile { .. } => "send-file",
            Self::ChoosePath => "choose-path",
            Self::AskSaveFile { .. } => "ask-save-file",
            Self::SaveFile { .. } => "save-file",
            Self::FileControl { .. } => "file-control",
            Self::AddContact { .. } => "add-contact",
            Self::ReadQrInvite(_) => "read-qr-invite",
            Self::SetContactState { .. } => "set-contact-state",
            Self::Rename { .. } => "rename",
            Self::RemoveContact(_) => "remove-contact",
            Self::ClearHistory(_) => "clear-history",
            Self::Verify { .. } => "verify",
            Self::ChooseQrPicture => "choose-qr-picture",
            Self::VerifyByQr { .. } => "verify-by-qr",
            Self::CreateGroup { .. } => "create-group",
            Self::AddMember { .. } => "add-member",
            Self::RemoveMember { .. } => "remove-member",
            Self::PromoteMember { .. } => "promote-member",
            Self::RenameGroup { .. } => "rename-group",
            Self::LeaveGroup(_) => "leave-group",
            Self::LoadMembers(_) => "load-members",
            Self::Link(_) => "link",
            Self::SetDark(_) => "set-dark",
            Self::SetNotifications(_) => "set-notifications",
            Self::SetTray(_) => "set-tray",
            Self::SaveSettings(_) => "save-settings",
            Self::SetPrivacy(_) => "set-privacy",
            Self::SetMuted { .. } => "set-muted",
            Self::SetPinned { .. } => "set-pinned",
            Self::ChangePassword { .. } => "change-password",
            Self::RevokePrekeys => "revoke-prekeys",
            Self::SetDisplayName(_) => "set-display-name",
            Self::SaveDrafts => "save-drafts",
            Self::RefreshStatus => "refresh-status",
            Self::Resync => "resync",
            Self::ReloadConversations => "reload-conversations",
            Self::Notify(_) => "notify",
        }
    }

    /// A notice.
    pub fn notice(text: impl Into<String>) -> Self {
        Self::Notice {
            text: text.into(),
            error: false,
        }
    }

    /// An error notice.
    pub fn error(text: impl Into<String>) -> Self {
        Self::Notice {
            text: text.into(),
            error: true,
        }
    }
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Action({})", self.kind())
    }
}

/// What the user does with group links.
#[derive(Clone, PartialEq, Eq)]
pub enum LinkAction {
    /// Make a link to the group (admins); `approval`: each person waits for an admin here.
    Make {
        group: ConversationId,
        approval: bool,
    },
    /// Revoke a link by its id.
    Revoke { group: ConversationId, id: String },
    /// Join the group a `tern-group:` link leads to.
    Join(String),
    /// Approve (add) or decline a waiting join request.
    Decide {
        group: ConversationId,
        member: IdentityKey,
        approve: bool,
    },
}

impl std::fmt::Debug for LinkAction {
    /// Never a link's text: whoever holds it may join.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Make { group, approval } => write!(f, "Make({group:?}, approval: {approval})"),
            Self::Revoke { group, id } => write!(f, "Revoke({group:?}, {id})"),
            Self::Join(_) => write!(f, "Join(…)"),
            Self::Decide {
                group,
                member,
                approve,
            } => write!(f, "Decide({group:?}, {member:?}, approve: {approve})"),
        }
    }
}
