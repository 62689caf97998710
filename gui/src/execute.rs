//! The action executor: the one place that calls the [`Backend`]. The app calls [`Executor::perform`]
//! once drawing is done (and once after the node's updates at the top of a frame), so the screens and
//! dialogs only ever read the model and return [`Action`]s.

use std::path::Path;
use std::time::Instant;

use tern_node::profile::Password;
use tern_protocol::{ContactCard, IdentityKey, MessageId};

use crate::action::Action;
use crate::backend::Backend;
use crate::chat::ChatView;
use crate::dialogs::file_path;
use crate::model::{ConversationKey, Dialog, Model, Node};
use crate::profiles::{self, Strength};
use crate::qr;
use crate::views::Views;
use crate::words;

mod backup;
mod drafts;
mod links;

pub use drafts::{DRAFT_SAVE_DELAY, save_before_closing, save_due_in};

/// Performs actions on the model, the views' state and the backend.
pub struct Executor<'a> {
    pub model: &'a mut Model,
    pub views: &'a mut Views,
    pub backend: &'a Backend,
}

/// Applies the node's waiting updates to the model and returns what they call for: a resync after a
/// lag, desktop notifications, read receipts for what is on screen.
pub fn drain(backend: &mut Backend, model: &mut Model) -> Vec<Action> {
    backend.drain(model);
    let mut actions = Vec::new();
    if model.needs_resync && model.node.is_some() {
        actions.push(Action::Resync);
    } else if model.conversations_stale && model.node.is_some() {
        actions.push(Action::ReloadConversations);
    }
    for name in std::mem::take(&mut model.pending_notifications) {
        if model.notifications && !model.focused {
            actions.push(Action::Notify(format!("New message from {name}")));
        }
    }
    // Read receipts for what is on screen while the window has focus.
    if model.focused
        && model.node.is_some()
        && let Some(open) = &model.open
    {
        let ids = model.unread_in_open();
        if !ids.is_empty() {
            actions.push(Action::MarkRead {
                conversation: open.conversation,
                ids,
            });
        }
    }
    if model.node.is_some() {
        if let Some(conversation) = model.open_next.take() {
            actions.push(Action::OpenConversation {
                conversation,
                scroll_to: None,
            });
        }
        if std::mem::take(&mut model.members_stale)
            && let Some(group) = model.open_group()
            && model.wants_members(&group)
        {
            actions.push(Action::LoadMembers(group));
        }
    }
    actions
}

/// Stops the node (closing the store) before the window closes.
pub fn shutdown(backend: &Backend, model: &mut Model) {
    backend.shutdown(model.node.take());
}

impl Executor<'_> {
    /// Performs `actions` in order.
    pub fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            tracing::trace!(action = action.kind(), "performing");
            self.perform_one(action);
        }
    }

    fn node(&self) -> Option<Node> {
        self.model.node.clone()
    }

    /// Shows changed mute or pin preferences at once and saves them; a refused change is said.
    fn save_prefs(
        &mut self,
        backend: &Backend,
        prefs: Result<tern_node::prefs::ConversationPrefs, tern_node::prefs::PrefsError>,
    ) {
        match (prefs, self.node()) {
            (Ok(prefs), Some(node)) => {
                self.model.prefs = prefs.clone();
                backend.set_conversation_prefs(&node, prefs);
            }
            (Ok(_), None) => {}
            (Err(e), _) => self.model.notice(e.to_string()),
        }
    }

    fn perform_one(&mut self, action: Action) {
        let backend = self.backend;
        match action {
            Action::SelectProfile(i) => {
                self.model.profile_screen.selected = Some(i);
                self.model.profile_screen.error = None;
                self.views.start.focus = true;
            }
            Action::CreatingProfile(creating) => {
                self.model.profile_screen.creating = creating;
                self.model.profile_screen.error = None;
                self.views.start.focus = true;
            }
            Action::SubmitProfile => {
                self.submit_profile();
                // Refused before the key was derived: the cursor goes back to the form.
                if self.model.profile_screen.error.is_some() {
                    self.views.start.focus = true;
                }
            }
            Action::Unlock {
                dir,
                password,
                create,
            } => {
                self.model.profile_screen.busy = true;
                self.model.profile_screen.error = None;
                backend.unlock(dir, password, create);
            }
            action @ (Action::Restoring(_)
            | Action::SubmitRestore
            | Action::ChooseBackupPath(_)
            | Action::BackupNow(_)
            | Action::CloseCode
            | Action::SetAutoBackup(_)) => self.backup_action(action),
            Action::ShowDialog(dialog) => self.show_dialog(dialog),
            Action::VerifyContact(key) => {
                self.model.dialog_error = None;
                self.views.dialogs.verify.contact = Some(key);
                self.views.dialogs.verify.picture = Default::default();
                self.model.dialog = Some(Dialog::Verify);
            }
            Action::DroppedPicture(path) => {
                if self.model.dialog != Some(Dialog::AddContact) {
                    self.show_dialog(Dialog::AddContact);
                }
                self.read_qr_invite(&path);
            }
            Action::CloseDialog => {
                self.model.dialog = None;
                self.model.dialog_error = None;
                // A picture's pixels are not kept once it is closed.
                self.model.picture = None;
                self.views.dialogs.picture = Default::default();
            }
            Action::DialogError(text) => self.model.dialog_error = Some(text),
            Action::Confirm(confirm) => {
                self.model.confirm = Some(confirm);
                self.views.dialogs.confirm.focus_cancel = true;
            }
            Action::CloseConfirm => self.model.confirm = None,
            Action::DismissNotice(i) => {
                if i < self.model.notices.len() {
                    self.model.notices.remove(i);
                }
            }
            Action::Notice { text, error: false } => self.model.notice(text),
            Action::Notice { text, error: true } => self.model.error(text),
            Action::Search(query) => {
                if let Some(node) = self.node() {
                    backend.search(&node, query);
                }
            }
            Action::CloseSearch => self.model.search_results = None,
            Action::FocusSearch => self.views.main.focus_search = true,
            Action::Quit => backend.close_window(),
            Action::OpenConversation {
                conversation,
                scroll_to,
            } => {
                self.open_conversation(conversation, scroll_to);
            }
            Action::CloseConversation => {
                let left = self.model.open.take().map(|o| o.conversation);
                self.switch_draft(left, None);
            }
            Action::SaveDrafts => self.save_drafts(),
            Action::LoadOlder {
                conversation,
                before,
            } => {
                if let Some(node) = self.node() {
                    if let Some(open) = self.model.open.as_mut() {
                        open.loading = true;
                    }
                    backend.load_page(&node, conversation, Some(before));
                }
            }
            Action::Send {
                conversation,
                text,
                reply_to,
            } => {
                if let Some(node) = self.node() {
                    self.views.chat.follow();
                    match reply_to {
                        Some(to) => backend.send_reply(&node, conversation, text, to),
                        None => backend.send(&node, conversation, text),
                    }
                }
                // The composer was emptied: its draft is gone from the profile too.
                self.save_drafts();
            }
            Action::ReplyTo { conversation, id } => {
                if self
                    .model
                    .open
                    .as_ref()
                    .is_some_and(|o| o.conversation == conversation)
                {
                    self.views.main.composer.replying = Some(id);
                    self.views.main.composer.focus = true;
                }
            }
            Action::CancelReply => self.views.main.composer.replying = None,
            Action::Typing {
                conversation,
                typing,
            } => {
                if let Some(open) = self
                    .model
                    .open
                    .as_mut()
                    .filter(|o| o.conversation == conversation)
                {
                    open.typing_sent = typing.then(Instant::now);
                }
                if let Some(node) = self.node() {
                    backend.typing(&node, conversation, typing);
                }
            }
            Action::Retry { conversation, id } => {
                if let Some(node) = self.node() {
                    backend.retry(&node, conversation, id);
                }
            }
            Action::MessageInfo { conversation, id } => {
                self.show_dialog(Dialog::MessageInfo);
                self.views.dialogs.message_info.message = Some((conversation, id));
                if let Some(node) = self.node() {
                    backend.load_message_times(&node, conversation, id);
                }
            }
            Action::DeleteMessage { conversation, id } => {
                if let Some(node) = self.node() {
                    backend.delete_message(&node, conversation, id);
                }
            }
            Action::MarkRead { conversation, ids } => {
                if let Some(node) = self.node() {
                    self.model.read_requested.extend(ids.iter().copied());
                    backend.mark_read(&node, conversation, ids);
                }
            }
            Action::SetTimer {
                conversation,
                seconds,
            } => {
                if let Some(node) = self.node() {
                    self.views.chat.follow();
                    backend.set_timer(&node, conversation, seconds);
                }
            }
            Action::AddContact { link, name } => {
                if let Err(e) = ContactCard::from_invite_link(&link) {
                    self.model.dialog_error = Some(words::invite_error(&e));
                } else if let Some(node) = self.node() {
                    backend.add_contact(&node, link, name);
                }
            }
            Action::ReadQrInvite(path) => self.read_qr_invite(&path),
            Action::AskAttach(_) => {
                self.show_dialog(Dialog::AttachFile);
                self.views.dialogs.file_path = Default::default();
            }
            Action::ViewPicture {
                conversation,
                id,
                name,
            } => {
                if let Some(node) = self.node() {
                    backend.view_picture(&node, conversation, id, name);
                }
            }
            Action::PastePicture(conversation) => {
                if let Some(node) = self.node() {
                    self.views.chat.follow();
                    backend.paste_picture(&node, conversation);
                }
            }
            Action::ChoosePath => {
                let form = &mut self.views.dialogs.file_path;
                let save_as = form.saving.as_ref().map(|_| file_path::expand(&form.path));
                form.choosing = Some(backend.choose_path(save_as));
            }
            Action::ChooseQrPicture => {
                let forms = &mut self.views.dialogs;
                let form = if self.model.dialog == Some(Dialog::AddContact) {
                    &mut forms.add_contact.picture
                } else {
                    &mut forms.verify.picture
                };
                form.choosing = Some(backend.choose_picture());
            }
            Action::AskSaveFile {
                conversation,
                id,
                name,
            } => {
                self.show_dialog(Dialog::SaveFile);
                self.views.dialogs.file_path = file_path::Form::save(file_path::Saving {
                    conversation,
                    id,
                    name,
                });
            }
            Action::SendFile { conversation, path } => {
                if let Some(node) = self.node() {
                    self.views.chat.follow();
                    backend.send_file(&node, conversation, path);
                }
            }
            Action::SaveFile {
                conversation,
                id,
                dest,
                overwrite,
            } => {
                if let Some(node) = self.node() {
                    backend.save_file(&node, conversation, id, dest, overwrite);
                }
            }
            Action::FileControl {
                conversation,
                id,
                button,
            } => {
                if let Some(node) = self.node() {
                    backend.file_control(&node, conversation, id, button);
                }
            }
            Action::SetContactState { contact, state } => {
                if let Some(node) = self.node() {
                    backend.set_contact_state(&node, contact, state);
                }
            }
            Action::Rename { contact, name } => {
                if let Some(node) = self.node() {
                    backend.rename_contact(&node, contact, name);
                }
            }
            Action::RemoveContact(contact) => {
                if let Some(node) = self.node() {
                    backend.remove_contact(&node, contact);
                }
                self.forget_draft(ConversationKey::Direct(contact));
            }
            Action::Verify { contact, digits } => {
                if let Some(node) = self.node() {
                    backend.verify(&node, contact, digits);
                }
            }
            Action::VerifyByQr { contact, path } => self.verify_by_qr(contact, &path),
            Action::CreateGroup { name, members } => {
                if let Some(error) = words::new_group_error(&name, members.len()) {
                    self.model.dialog_error = Some(error);
                } else if let Some(node) = self.node() {
                    backend.create_group(&node, name, members);
                }
            }
            Action::AddMember { group, member } => {
                if let Some(node) = self.node() {
                    self.views.dialogs.group_info.adding = false;
                    backend.add_member(&node, group, member);
                }
            }
            Action::RemoveMember { group, member } => {
                if let Some(node) = self.node() {
                    backend.remove_member(&node, group, member);
                }
            }
            Action::PromoteMember { group, member } => {
                if let Some(node) = self.node() {
                    backend.promote_member(&node, group, member);
                }
            }
            Action::RenameGroup { group, name } => {
                if let Some(error) = words::new_group_error(&name, 1) {
                    self.model.dialog_error = Some(error);
                } else if let Some(node) = self.node() {
                    backend.rename_group(&node, group, name);
                }
            }
            Action::ClearHistory(conversation) => {
                if let Some(node) = self.node() {
                    backend.clear_history(&node, conversation);
                }
            }
            Action::LeaveGroup(group) => {
                if let Some(node) = self.node() {
                    backend.leave_group(&node, group);
                }
            }
            Action::LoadMembers(group) => {
                if let Some(node) = self.node() {
                    backend.load_members(&node, group);
                    backend.load_links(&node, group, self.model.links.generation);
                }
            }
            Action::Link(action) => self.link_action(action),
            Action::SetDark(dark) => self.model.dark = dark,
            Action::SetNotifications(on) => self.model.notifications = on,
            Action::SetTray(on) => self.model.tray = on,
            Action::SetMuted {
                conversation,
                muted,
            } => {
                let mut prefs = self.model.prefs.clone();
                self.save_prefs(
                    backend,
                    prefs.set_muted(conversation, muted).map(|()| prefs),
                );
            }
            Action::SetPinned {
                conversation,
                pinned,
            } => {
                let mut prefs = self.model.prefs.clone();
                self.save_prefs(
                    backend,
                    prefs.set_pinned(conversation, pinned).map(|()| prefs),
                );
            }
            Action::SetPrivacy(privacy) => {
                if let Some(node) = self.node() {
                    self.model.privacy = privacy;
                    backend.set_privacy(&node, privacy);
                }
            }
            Action::SaveSettings(settings) => {
                if let (Some(node), Some(dir)) = (self.node(), self.model.profile_dir.clone()) {
                    backend.apply_settings(&node, dir, settings);
                }
            }
            Action::ChangePassword { old, new } => {
                if let (Some(node), Some(dir)) = (self.node(), self.model.profile_dir.clone()) {
                    backend.change_password(&node, dir, old, new);
                }
            }
            Action::RevokePrekeys => {
                if let Some(node) = self.node() {
                    backend.revoke_prekeys(&node);
                }
            }
            Action::SetDisplayName(name) => {
                if let Some(node) = self.node() {
                    backend.set_display_name(&node, name);
                }
            }
            Action::RefreshStatus => {
                if let Some(node) = self.node() {
                    backend.status(&node);
                }
            }
            Action::Resync => {
                if let Some(node) = self.node() {
                    self.model.needs_resync = false;
                    backend.resync(&node);
                }
            }
            Action::ReloadConversations => {
                if let Some(node) = self.node() {
                    self.model.conversations_stale = false;
                    backend.reload_conversations(&node);
                }
            }
            Action::Notify(title) => backend.notify(title),
        }
    }

    /// Unlocks the selected profile, or checks the create form and creates the profile.
    fn submit_profile(&mut self) {
        let root = self.backend.options.root.clone();
        let ps = &mut self.model.profile_screen;
        let form = &mut self.views.start;
        if ps.busy {
            return;
        }
        if ps.creating {
            if Strength::of(&form.password) == Strength::TooShort {
                ps.error = Some(Strength::TooShort.label().to_owned());
                return;
            }
            if form.password != form.confirm {
                ps.error = Some("The two passwords differ".to_owned());
                return;
            }
            let made = match &ps.pinned {
                // The name is only the profile's; the directory was given.
                Some(_) if form.name.trim().is_empty() => Err(profiles::ProfileNameError::Empty),
                Some(dir) => Ok(dir.clone()),
                None => profiles::new_profile_dir(&root, &form.name),
            };
            let dir = match made {
                Ok(dir) => dir,
                Err(e) => {
                    ps.error = Some(format!("Name: {e}"));
                    return;
                }
            };
            let parent = dir.parent().map_or_else(|| root.clone(), Path::to_path_buf);
            if let Err(e) = tern_node::redb_file::create_private_dir(&parent) {
                ps.error = Some(format!("Cannot create {}: {e}.", parent.display()));
                return;
            }
            let name = form.name.trim().to_owned();
            let password = Password::new(std::mem::take(&mut form.password));
            form.confirm.clear();
            self.perform_one(Action::Unlock {
                dir,
                password,
                create: Some(name),
            });
        } else {
            let Some(dir) = ps
                .selected
                .and_then(|i| ps.profiles.get(i))
                .map(|p| p.dir.clone())
            else {
                ps.error = Some("Choose a profile".to_owned());
                return;
            };
            let password = Password::new(std::mem::take(&mut form.password));
            self.perform_one(Action::Unlock {
                dir,
                password,
                create: None,
            });
        }
    }

    /// Opens `dialog` with its form made ready, as the button that opens it does.
    fn show_dialog(&mut self, dialog: Dialog) {
        let forms = &mut self.views.dialogs;
        match dialog {
            Dialog::AddContact => {
                forms.add_contact.invite.clear();
                forms.add_contact.invite_name.clear();
                forms.add_contact.picture = Default::default();
            }
            Dialog::Verify => forms.verify.contact = None,
            // Only my own code: nothing to make ready.
            Dialog::MyCode => {}
            Dialog::Settings => {
                forms.settings.settings = Some(self.model.settings.clone());
                forms.settings.name = self
                    .model
                    .me
                    .as_ref()
                    .map(|me| me.name.clone())
                    .unwrap_or_default();
                forms.backup.open(self.model.backup.auto.as_ref());
            }
            Dialog::Network => forms.network.status_asked = None,
            Dialog::ContactDetails => {
                if let Some(open) = &self.model.open {
                    forms.contact.rename = self.model.title_of(&open.conversation);
                }
            }
            Dialog::NewGroup => forms.new_group = Default::default(),
            // Their forms are made ready by the action that asks for them.
            Dialog::AttachFile | Dialog::SaveFile | Dialog::MessageInfo | Dialog::Picture => {}
            Dialog::GroupInfo => {
                forms.group_info = Default::default();
                if let Some(group) = self.model.open_group() {
                    forms.group_info.rename = self.model.title_of(&group);
                    if self.model.wants_members(&group)
                        && let Some(node) = &self.model.node
                    {
                        self.backend.load_members(node, group);
                    }
                }
            }
        }
        forms.focus_first = true;
        self.model.dialog = Some(dialog);
        self.model.dialog_error = None;
    }

    /// Opens a conversation and loads its newest page (or brings `scroll_to` into view).
    fn open_conversation(&mut self, key: ConversationKey, scroll_to: Option<MessageId>) {
        let node = self.node();
        // Typing stops when the person leaves the conversation.
        if let Some(open) = self.model.open.as_mut()
            && open.typing_sent.take().is_some()
            && let Some(node) = &node
        {
            self.backend.typing(node, open.conversation, false);
        }
        let previous = self.model.open.as_ref().map(|o| o.conversation);
        let same = self.model.open_conversation(key);
        self.model.search_results = None;
        // The composer takes the focus, so typing goes straight into it.
        self.views.main.composer.focus = true;
        if same {
            self.views.chat.scroll_to(scroll_to);
            return;
        }
        // The draft of the conversation left waits for it; the one opened gets its own back.
        self.switch_draft(previous, Some(key));
        if let Some(node) = node {
            self.views.chat = match scroll_to {
                Some(id) => ChatView::at_message(id),
                None => ChatView::at_newest(),
            };
            self.backend.load_page(&node, key, None);
            if self.model.wants_members(&key) {
                self.backend.load_members(&node, key);
            }
        }
    }

    /// Reads an invite out of a QR picture into the add-contact form.
    fn read_qr_invite(&mut self, path: &Path) {
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > qr::MAX_IMAGE_BYTES as u64 => {
                self.model.dialog_failed(
                    Dialog::AddContact,
                    format!("Cannot use that picture: {}.", qr::QrError::TooLarge),
                );
                return;
            }
            Err(e) => {
                self.model.dialog_failed(
                    Dialog::AddContact,
                    format!("Cannot open {}: {e}.", path.display()),
                );
                return;
            }
            Ok(_) => {}
        }
        match read_invite(path) {
            Ok(link) => {
                self.views.dialogs.add_contact.invite = link;
                self.model.dialog_error = None;
                self.model.notice("Found a Tern invite in the picture");
            }
            Err(e) => self
                .model
                .dialog_failed(Dialog::AddContact, format!("Cannot use that picture: {e}.")),
        }
    }

    /// Verifies `key` from a picture of their QR code: it must hold their own card.
    fn verify_by_qr(&mut self, key: IdentityKey, path: &Path) {
        let link = match read_invite(path) {
            Ok(link) => link,
            Err(e) => {
                self.model
                    .dialog_failed(Dialog::Verify, format!("Cannot use that picture: {e}."));
                return;
            }
        };
        if let Some(node) = self.node() {
            self.backend.verify_card(&node, key, link);
        }
    }
}

/// The invite link in the QR code of the picture at `path`.
fn read_invite(path: &Path) -> Result<String, String> {
    std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| qr::invite_from_image(&bytes).map_err(|e| e.to_string()))
}
