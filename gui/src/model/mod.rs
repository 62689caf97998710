//! The app's state, apart from drawing: what the profile holds (contacts, conversation list, the open
//! conversation), what the network looks like, and what the person is doing. Node events and command
//! results are applied here; the drawing code only reads it and asks for actions.
//!
//! - this file: screens, contacts, notices, and how node events change them;
//! - [`conversation`]: the conversation list and the open conversation's pages;
//! - [`groups`]: groups, their members, who may do what in them, and how senders are named;
//! - [`files`]: how a file card reads, and how file events change the attachments held;
//! - [`rows`]: the one place that names tern-node's row and event types.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tern_node::settings::NetworkSettings;
use tern_protocol::{IdentityKey, MessageId};

use crate::profiles::ProfileEntry;

pub mod backup;
mod confirm;
mod conversation;
mod files;
mod groups;
pub mod links;
mod rows;

pub use confirm::Confirm;
pub use conversation::{ListRow, MAX_LOADED_MESSAGES, OpenConversation, window_title};
pub use files::{FileButton, file_buttons, human_size, progress_fraction, state_text};
pub use groups::{
    GroupEntry, MemberEntry, group_entries, member_entries, role_label, short_fingerprint,
};
pub use rows::{
    Attachment, ContactFields, ContactRow, ContactState, ConversationFields, ConversationId,
    ConversationKey, ConversationRow, Cursor, Event, FileState, GroupLinkInfo, GroupMember,
    GroupRole, GroupSummary, JoinAnswer, JoinRequestInfo, MessageFields, MessageRow, MessageStatus,
    NatStatus, NetStatus, Node, Page, Whoami,
};

/// Messages loaded per page of a conversation.
pub const PAGE: usize = 200;
/// A contact's typing indicator goes away this long after their last "typing" if no "stopped" came.
pub const TYPING_SHOWN_FOR: Duration = Duration::from_secs(6);
/// Desktop notifications waiting for the next frame (a hidden window may draw rarely).
pub const MAX_PENDING_NOTIFICATIONS: usize = 16;
/// Notices kept at once (the oldest goes first).
pub const MAX_NOTICES: usize = 8;
/// Toasts shown at once: the newest.
pub const MAX_TOASTS_SHOWN: usize = 3;
/// A confirmation's toast goes away after this long (errors stay until dismissed).
pub const TOAST_SHOWN_FOR: Duration = Duration::from_secs(4);

/// Which screen is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Choose, unlock or create a profile.
    Profiles,
    /// Conversations.
    Main,
}

/// The dialogs over the main window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialog {
    AddContact,
    /// My QR code, fingerprint and invite link, and how to give them ("My code" in the top bar).
    MyCode,
    /// A contact's safety number beside my code.
    Verify,
    Settings,
    Network,
    ContactDetails,
    /// Make a group: a name and contacts to invite.
    NewGroup,
    /// The open group's name and members, and what this profile may change.
    GroupInfo,
    /// The path of a file to send in the open 1:1 conversation.
    AttachFile,
    /// Where to save a received file.
    SaveFile,
    /// A message's times and statuses.
    MessageInfo,
    /// A picture at full size (`Model::picture`).
    Picture,
}

/// What the profile screen shows (the fields being typed live with the screen's form).
#[derive(Debug, Default)]
pub struct ProfileScreen {
    pub profiles: Vec<ProfileEntry>,
    pub selected: Option<usize>,
    /// The create form is up (rather than the unlock form).
    pub creating: bool,
    /// Argon2 is running: the form is disabled and a spinner shows.
    pub busy: bool,
    pub error: Option<String>,
    /// The one profile directory this run may use (`--profile DIR` or `TERN_PROFILE`): it is the only
    /// one listed, and a new profile is created there.
    pub pinned: Option<PathBuf>,
    /// How many unlock or create attempts came back with an error: each one puts the cursor back in
    /// the form, however quickly it came (a frame need not have seen `busy`).
    pub failed_attempts: u64,
    /// The "Restore from a backup" form is up.
    pub restoring: bool,
}

impl ProfileScreen {
    /// An unlock or create attempt failed with `error`: the form is enabled again and says why.
    pub fn attempt_failed(&mut self, error: String) {
        self.busy = false;
        self.error = Some(error);
        self.failed_attempts += 1;
    }
}

/// A contact as the app shows it.
#[derive(Debug, Clone)]
pub struct Contact {
    pub record: ContactRow,
    pub online: bool,
    /// When their last "typing" arrived.
    pub typing_since: Option<Instant>,
}

impl Contact {
    pub fn key(&self) -> IdentityKey {
        self.record.key
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    pub fn is_typing(&self, now: Instant) -> bool {
        self.typing_since
            .is_some_and(|t| now.duration_since(t) < TYPING_SHOWN_FOR)
    }
}

/// A toast: a confirmation that goes away by itself, or a background error that stays until dismissed.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    /// When it was said, on the UI's clock ([`Model::now`]).
    pub since: f64,
}

impl Notice {
    /// When it goes away by itself, if it does.
    pub fn expires(&self) -> Option<f64> {
        (!self.error).then(|| self.since + TOAST_SHOWN_FOR.as_secs_f64())
    }
}

/// Everything the app knows.
pub struct Model {
    pub screen: Screen,
    pub profile_screen: ProfileScreen,
    pub profile_dir: Option<PathBuf>,
    pub node: Option<Node>,
    pub me: Option<Whoami>,
    pub contacts: Vec<Contact>,
    pub conversations: Vec<ConversationRow>,
    /// Every group of the profile (also those it left or was removed from).
    pub groups: Vec<GroupSummary>,
    /// Members of groups, as last read from the node (the open group's are read when it opens and
    /// again when it changes).
    pub members: HashMap<ConversationId, Vec<GroupMember>>,
    /// The open group changed: its members are read again.
    pub members_stale: bool,
    /// Group links this profile made and the join requests waiting for it (`links`).
    pub links: links::Links,
    /// A conversation to open in the next frame (a group just made).
    pub open_next: Option<ConversationId>,
    /// Senders who are not contacts, by the start of their fingerprint (see `groups`).
    pub short_fingerprints: HashMap<IdentityKey, String>,
    pub open: Option<OpenConversation>,
    pub dialog: Option<Dialog>,
    /// What went wrong in the open dialog, in plain words, shown inside it (cleared when it closes).
    pub dialog_error: Option<String>,
    /// A confirmation asked over everything else (and over the dialog).
    pub confirm: Option<Confirm>,
    pub status: Option<NetStatus>,
    pub connected: usize,
    pub nat: NatStatus,
    pub listen_addrs: Vec<String>,
    /// Mailbox servers read from, with the last count they handed over.
    pub mailboxes_checked: HashMap<String, usize>,
    pub settings: NetworkSettings,
    pub notices: Vec<Notice>,
    /// The UI's clock, in seconds (egui's input time), set at the top of each frame.
    pub now: f64,
    /// The results of the last search, while they are shown.
    pub search_results: Option<Vec<MessageRow>>,
    /// Window focus (messages are marked read only while the window has focus).
    pub focused: bool,
    pub notifications: bool,
    /// The system tray icon on or off (`crate::tray`; only where the desktop hosts one).
    pub tray: bool,
    /// Read receipts and typing indicators on or off (the profile's setting, `tern_node::privacy`).
    pub privacy: tern_node::privacy::PrivacySettings,
    /// Muted and pinned conversations.
    pub prefs: tern_node::prefs::ConversationPrefs,
    /// The unsent drafts of the conversations that are not open (the open one's is in the composer).
    pub drafts: tern_node::drafts::Drafts,
    pub dark: bool,
    /// The node's event stream lagged: the lists are read again from the store.
    pub needs_resync: bool,
    /// A timer changed or messages expired: the conversation list is read again from the store.
    pub conversations_stale: bool,
    /// Messages that arrived while unfocused, for a desktop notification (names only, never text).
    pub pending_notifications: Vec<String>,
    /// Ids already sent in a read receipt, so one is not sent twice while the answer is on its way.
    pub read_requested: HashSet<MessageId>,
    /// Backups: the code to show once, and the undecryptable notices (`backup`).
    pub backup: backup::BackupState,
    /// The picture "Picture" shows.
    pub picture: Option<crate::picture::ViewedPicture>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("screen", &self.screen)
            .field("contacts", &self.contacts.len())
            .field("conversations", &self.conversations.len())
            .finish_non_exhaustive()
    }
}

impl Default for Model {
    fn default() -> Self {
        Self {
            screen: Screen::Profiles,
            profile_screen: ProfileScreen::default(),
            profile_dir: None,
            node: None,
            me: None,
            contacts: Vec::new(),
            conversations: Vec::new(),
            groups: Vec::new(),
            members: HashMap::new(),
            members_stale: false,
            links: links::Links::default(),
            short_fingerprints: HashMap::new(),
            open_next: None,
            open: None,
            dialog: None,
            dialog_error: None,
            confirm: None,
            status: None,
            connected: 0,
            nat: NatStatus::Unknown,
            listen_addrs: Vec::new(),
            mailboxes_checked: HashMap::new(),
            settings: NetworkSettings::default(),
            notices: Vec::new(),
            now: 0.0,
            search_results: None,
            focused: true,
            notifications: true,
            tray: true,
            privacy: Default::default(),
            prefs: Default::default(),
            drafts: Default::default(),
            dark: true,
            needs_resync: false,
            conversations_stale: false,
            pending_notifications: Vec::new(),
            read_requested: HashSet::new(),
            backup: backup::BackupState::default(),
            picture: None,
        }
    }
}

/// The lists read from the store after unlocking (and after a lag).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub me: Whoami,
    pub contacts: Vec<ContactRow>,
    pub conversations: Vec<ConversationRow>,
    pub groups: Vec<GroupSummary>,
}

impl Model {
    pub fn notice(&mut self, text: impl Into<String>) {
        self.push_notice(text.into(), false);
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.push_notice(text.into(), true);
    }

    fn push_notice(&mut self, text: String, error: bool) {
        if self.notices.len() == MAX_NOTICES {
            self.notices.remove(0);
        }
        self.notices.push(Notice {
            text,
            error,
            since: self.now,
        });
    }

    /// Shown inside `dialog` if it is still open, else as an error toast: said once either way.
    pub fn dialog_failed(&mut self, dialog: Dialog, text: impl Into<String>) {
        if self.dialog == Some(dialog) {
            self.dialog_error = Some(text.into());
        } else {
            self.error(text);
        }
    }

    /// Sets the UI's clock and lets confirmations that were shown long enough go; returns when the
    /// next one goes.
    pub fn tick(&mut self, now: f64) -> Option<f64> {
        self.now = now;
        self.notices
            .retain(|n| n.expires().is_none_or(|at| at > now));
        self.notices
            .iter()
            .filter_map(Notice::expires)
            .min_by(f64::total_cmp)
    }

    pub fn contact(&self, key: &IdentityKey) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.key() == *key)
    }

    fn contact_mut(&mut self, key: &IdentityKey) -> Option<&mut Contact> {
        self.contacts.iter_mut().find(|c| c.key() == *key)
    }

    /// Blocked contacts, by name.
    pub fn blocked(&self) -> Vec<&Contact> {
        let mut blocked: Vec<&Contact> = self
            .contacts
            .iter()
            .filter(|c| c.record.state == ContactState::Blocked)
            .collect();
        blocked.sort_by_key(|c| c.name().to_lowercase());
        blocked
    }

    /// The name to show for a key: the contact's name, else the short peer id.
    pub fn name_of(&self, key: &IdentityKey) -> String {
        self.contact(key).map_or_else(
            || {
                let id = key.peer_id();
                format!("…{}", &id[id.len().saturating_sub(8)..])
            },
            |c| c.name().to_owned(),
        )
    }

    /// The profile is open and its node runs.
    pub fn unlocked(
        &mut self,
        dir: PathBuf,
        node: Node,
        settings: NetworkSettings,
        snap: Snapshot,
    ) {
        self.profile_dir = Some(dir);
        self.node = Some(node);
        self.settings = settings;
        self.apply_snapshot(snap);
        self.screen = Screen::Main;
        self.profile_screen.busy = false;
        self.profile_screen.error = None;
    }

    /// Takes the lists from the store, keeping what only the network knows (online, typing).
    pub fn apply_snapshot(&mut self, snap: Snapshot) {
        let old: HashMap<IdentityKey, (bool, Option<Instant>)> = self
            .contacts
            .iter()
            .map(|c| (c.key(), (c.online, c.typing_since)))
            .collect();
        self.me = Some(snap.me);
        self.contacts = snap
            .contacts
            .into_iter()
            .map(|record| {
                let key = record.key;
                let (online, typing_since) = old.get(&key).copied().unwrap_or_default();
                Contact {
                    record,
                    online,
                    typing_since,
                }
            })
            .collect();
        self.conversations = snap.conversations;
        self.groups = snap.groups;
        self.members_stale = self
            .open
            .as_ref()
            .is_some_and(|o| o.conversation.is_group());
        self.needs_resync = false;
        self.conversations_stale = false;
    }

    pub fn upsert_contact(&mut self, record: ContactRow) {
        match self.contact_mut(&record.key) {
            Some(c) => c.record = record,
            None => self.contacts.push(Contact {
                record,
                online: false,
                typing_since: None,
            }),
        }
    }

    pub fn remove_contact(&mut self, key: &IdentityKey) {
        self.contacts.retain(|c| c.key() != *key);
        let conversation = ConversationId::Direct(*key);
        self.conversations.retain(|c| c.key() != conversation);
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.conversation == conversation)
        {
            self.open = None;
        }
        if matches!(self.confirm, Some(Confirm::Remove(k) | Confirm::Block(k)) if k == *key) {
            self.confirm = None;
        }
    }

    /// Applies one node event.
    pub fn on_event(&mut self, event: Event) {
        match event {
            Event::Listening { address } => self.listen_addrs.push(address.to_string()),
            Event::MessageReceived { message, .. } => {
                if !message.outgoing()
                    && (!self.focused
                        || self
                            .open
                            .as_ref()
                            .is_none_or(|o| o.conversation != message.conversation_key()))
                {
                    let conversation = message.conversation_key();
                    let muted = self.prefs.is_muted(&conversation);
                    // In a group: "Bob in Climbing".
                    let name = match message.sender.filter(|_| conversation.is_group()) {
                        Some(sender) => format!(
                            "{} in {}",
                            self.sender_label(&sender),
                            self.title_of(&conversation)
                        ),
                        None => self.title_of(&conversation),
                    };
                    if !muted && self.pending_notifications.len() < MAX_PENDING_NOTIFICATIONS {
                        self.pending_notifications.push(name);
                    }
                }
                // A system line may say the contact changed the timer: the list holds the timers.
                self.conversations_stale |= message.system;
                self.message_stored(message);
            }
            Event::MessagesExpired { conversation, ids } => {
                self.messages_expired(conversation, &ids);
            }
            Event::ContactRequest { contact } => {
                let name = contact.name.clone();
                // Said once, with the request: a name that looks like a contact's.
                let lookalike = tern_node::names::lookalike(
                    &name,
                    self.contacts
                        .iter()
                        .filter(|c| c.key() != contact.key)
                        .map(|c| c.record.name.as_str()),
                );
                self.upsert_contact(contact);
                match lookalike {
                    Some(warning) => self.notice(format!(
                        "{name} wants to talk to you: accept or block them. Careful: {warning}"
                    )),
                    None => {
                        self.notice(format!("{name} wants to talk to you: accept or block them"))
                    }
                }
            }
            // Only a contact already shown: an update never adds one.
            Event::ContactUpdated { contact } if self.contact_mut(&contact.key).is_some() => {
                self.upsert_contact(contact);
            }
            Event::KeyChanged { contact, .. } => {
                if let Some(c) = self.contact_mut(&contact) {
                    c.record.key_changed = true;
                    c.record.verified = false;
                }
            }
            Event::StatusChanged {
                conversation,
                id,
                status,
                ..
            } => self.status_changed(conversation, id, status),
            Event::RecipientsChanged {
                conversation,
                id,
                recipients,
            } => self.recipients_changed(conversation, id, recipients),
            // Only a 1:1 conversation shows typing.
            Event::Typing {
                conversation: ConversationId::Direct(_),
                contact,
                typing,
                ..
            } => {
                if let Some(c) = self.contact_mut(&contact) {
                    c.typing_since = typing.then(Instant::now);
                }
            }
            Event::ContactOnline {
                contact, online, ..
            } => {
                if let Some(c) = self.contact_mut(&contact) {
                    c.online = online;
                    if !online {
                        c.typing_since = None;
                    }
                }
            }
            Event::Peers { connected } => self.connected = connected,
            Event::Nat { status } => self.nat = status,
            Event::MailboxChecked { server, envelopes } => {
                self.mailboxes_checked.insert(server.to_string(), envelopes);
            }
            Event::GroupJoined {
                group,
                added_by_name,
                ..
            } => {
                self.notice(format!("{added_by_name} added you to {}", group.name));
                self.group_changed(group);
            }
            Event::GroupUpdated { group } => self.group_changed(group),
            Event::GroupJoinRequested { request } => self.join_requested(request),
            Event::GroupJoinAnswered {
                admin_name, answer, ..
            } => self.join_answered(&admin_name, answer),
            Event::FileProgress {
                conversation,
                id,
                received,
                ..
            } => self.file_progress(conversation, id, received),
            Event::FileReceived { conversation, id } => {
                self.file_state(conversation, id, FileState::Complete);
            }
            Event::FileFailed {
                conversation,
                id,
                state,
                reason,
            } => self.file_failed(conversation, id, state, &reason),
            Event::FileNotHeld {
                conversation,
                id,
                reason,
                ..
            } => self.file_not_held(conversation, id, &reason),
            Event::Undecryptable { contact, name } => self.undecryptable(contact, &name),
            Event::BackupWritten { .. } => self.auto_backup_written(tern_node::api::now_ms()),
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod test_rows {
    //! Rows for the model's tests.
    use rand::SeedableRng;
    use tern_protocol::{Identity, IdentityKey, MessageId};

    use super::{ContactRow, ContactState, MessageRow, MessageStatus};

    pub fn key(seed: u64) -> IdentityKey {
        Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed), 0).key()
    }

    pub fn message(conversation: IdentityKey, n: u8, at: u64, outgoing: bool) -> MessageRow {
        MessageRow {
            id: MessageId([n; 16]),
            conversation: conversation.into(),
            sender: (!outgoing).then_some(conversation),
            system: false,
            sent_at_ms: at,
            received_at_ms: at,
            text: format!("m{n}"),
            status: if outgoing {
                MessageStatus::Sending
            } else {
                MessageStatus::Received
            },
            recipients: Vec::new(),
            reply_to: None,
            attachment: None,
        }
    }

    pub fn contact(key: IdentityKey, name: &str, state: ContactState) -> ContactRow {
        ContactRow {
            key,
            name: name.into(),
            card_name: name.into(),
            verified: true,
            state,
            key_changed: false,
            added_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_rows::{contact, key, message};
    use super::*;

    #[test]
    fn a_request_whose_name_looks_like_a_contacts_says_so_once() {
        let mut m = Model::default();
        let (bob, impostor, carol) = (key(1), key(2), key(3));
        m.upsert_contact(contact(bob, "Bob", ContactState::Accepted));
        // "Bоb" with a Cyrillic о.
        m.on_event(Event::ContactRequest {
            contact: contact(impostor, "B\u{043E}b", ContactState::Requested),
        });
        let warned = &m.notices.last().unwrap().text;
        assert!(
            warned.contains("looks like your contact \"Bob\""),
            "{warned}"
        );
        m.on_event(Event::ContactRequest {
            contact: contact(carol, "Carol", ContactState::Requested),
        });
        assert!(!m.notices.last().unwrap().text.contains("looks like"));
    }

    #[test]
    fn a_contacts_new_card_updates_the_shown_contact_and_adds_no_one() {
        let mut m = Model::default();
        let (a, stranger) = (key(1), key(2));
        m.upsert_contact(contact(a, "Alice", ContactState::Accepted));
        m.on_event(Event::ContactUpdated {
            contact: contact(a, "Alice Liddell", ContactState::Accepted),
        });
        assert_eq!(m.contact(&a).unwrap().record.name, "Alice Liddell");
        m.on_event(Event::ContactUpdated {
            contact: contact(stranger, "Someone", ContactState::Accepted),
        });
        assert!(m.contact(&stranger).is_none());
    }

    #[test]
    fn a_key_change_drops_the_verified_mark() {
        let mut m = Model::default();
        let a = key(1);
        m.upsert_contact(contact(a, "Alice", ContactState::Accepted));
        m.on_event(Event::KeyChanged {
            contact: a,
            name: "Alice".into(),
        });
        let c = m.contact(&a).unwrap();
        assert!(c.record.key_changed && !c.record.verified);
    }

    #[test]
    fn a_message_while_unfocused_or_elsewhere_asks_for_a_notification_naming_the_sender_only() {
        let mut m = Model::default();
        let (a, b) = (key(1), key(2));
        m.upsert_contact(contact(a, "Alice", ContactState::Accepted));
        m.upsert_contact(contact(b, "Bob", ContactState::Accepted));
        m.open_conversation(a);
        m.on_event(Event::MessageReceived {
            message: message(a, 1, 10, false),
            sender_name: "Alice".into(),
        });
        assert!(
            m.pending_notifications.is_empty(),
            "read in the open conversation"
        );
        m.on_event(Event::MessageReceived {
            message: message(b, 2, 11, false),
            sender_name: "Bob".into(),
        });
        m.focused = false;
        m.on_event(Event::MessageReceived {
            message: message(a, 3, 12, false),
            sender_name: "Alice".into(),
        });
        assert_eq!(m.pending_notifications, vec!["Bob", "Alice"]);
        assert!(
            m.pending_notifications
                .iter()
                .all(|n| !n.contains("m2") && !n.contains("m3"))
        );
    }

    #[test]
    fn notices_are_bounded_and_removing_a_contact_closes_its_conversation() {
        let mut m = Model::default();
        for i in 0..MAX_NOTICES + 3 {
            m.notice(format!("n{i}"));
        }
        assert_eq!(m.notices.len(), MAX_NOTICES);
        assert_eq!(m.notices[0].text, "n3", "the oldest went first");
        m.notices.clear();
        m.tick(10.0);
        m.notice("saved");
        m.error("failed");
        assert_eq!(m.tick(11.0), Some(10.0 + TOAST_SHOWN_FOR.as_secs_f64()));
        m.tick(10.0 + TOAST_SHOWN_FOR.as_secs_f64());
        assert_eq!(m.notices.len(), 1, "the confirmation went, the error stays");
        assert!(m.notices[0].error);
        let a = key(1);
        m.upsert_contact(contact(a, "Alice", ContactState::Accepted));
        m.open_conversation(a);
        m.message_stored(message(a, 1, 10, false));
        m.remove_contact(&a);
        assert!(m.open.is_none() && m.contacts.is_empty() && m.conversations.is_empty());
    }
}
