//! The app's state, apart from drawing: what the profile holds (contacts, conversation list, the open
//! conversation), what the network looks like, and what the person is doing. Node events and command
//! results are applied here; the drawing code only reads it and asks for actions.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tern_node::engine::Whoami;
use tern_node::node::{Event, NatStatus, NetStatus, Node};
use tern_node::settings::NetworkSettings;
use tern_node::store::{
    ContactRecord, ContactState, ConversationSummary, MessageCursor, MessagePage, MessageRecord,
    MessageStatus,
};
use tern_protocol::{IdentityKey, MessageId};

use crate::profiles::ProfileEntry;

/// Messages loaded per page of a conversation.
pub const PAGE: usize = 200;
/// A contact's typing indicator goes away this long after their last "typing" if no "stopped" came.
pub const TYPING_SHOWN_FOR: Duration = Duration::from_secs(6);
/// Desktop notifications waiting for the next frame (a hidden window may draw rarely).
pub const MAX_PENDING_NOTIFICATIONS: usize = 16;
/// Notices kept on screen at once.
pub const MAX_NOTICES: usize = 8;
/// Messages held in memory for the open conversation (older ones are dropped from the view, not the
/// store, past this).
pub const MAX_LOADED_MESSAGES: usize = 1_000_000;

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
    Verify,
    Settings,
    Network,
    ContactDetails,
}

/// What the profile screen shows.
#[derive(Debug, Default)]
pub struct ProfileScreen {
    pub profiles: Vec<ProfileEntry>,
    pub selected: Option<usize>,
    pub creating: bool,
    pub name: String,
    pub password: String,
    pub confirm: String,
    /// Argon2 is running: the form is disabled and a spinner shows.
    pub busy: bool,
    pub error: Option<String>,
}

/// A contact as the app shows it.
#[derive(Debug, Clone)]
pub struct Contact {
    pub record: ContactRecord,
    pub online: bool,
    /// When their last "typing" arrived.
    pub typing_since: Option<Instant>,
}

impl Contact {
    pub fn key(&self) -> IdentityKey {
        self.record.key
    }

    pub fn name(&self) -> &str {
        &self.record.local_name
    }

    pub fn is_typing(&self, now: Instant) -> bool {
        self.typing_since
            .is_some_and(|t| now.duration_since(t) < TYPING_SHOWN_FOR)
    }
}

/// The conversation on the right.
#[derive(Debug)]
pub struct OpenConversation {
    pub contact: IdentityKey,
    /// Oldest first.
    pub messages: Vec<MessageRecord>,
    /// Where the next older page starts; `None` once everything is loaded.
    pub older: Option<MessageCursor>,
    pub loading: bool,
    /// A message to scroll to (from search).
    pub scroll_to: Option<MessageId>,
    pub draft: String,
    /// When "typing" was last sent to the contact; `None` when not typing.
    pub typing_sent: Option<Instant>,
}

/// A notice shown at the bottom of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// Everything the app knows.
pub struct Model {
    pub screen: Screen,
    pub profile_screen: ProfileScreen,
    pub profile_dir: Option<PathBuf>,
    pub node: Option<Node>,
    pub me: Option<Whoami>,
    pub contacts: Vec<Contact>,
    pub conversations: Vec<ConversationSummary>,
    pub open: Option<OpenConversation>,
    pub filter: String,
    pub dialog: Option<Dialog>,
    pub status: Option<NetStatus>,
    pub connected: usize,
    pub nat: NatStatus,
    pub listen_addrs: Vec<String>,
    /// Mailbox servers read from, with the last count they handed over.
    pub mailboxes_checked: HashMap<String, usize>,
    pub settings: NetworkSettings,
    pub notices: Vec<Notice>,
    pub search: String,
    pub search_results: Option<Vec<MessageRecord>>,
    /// Window focus (messages are marked read only while the window has focus).
    pub focused: bool,
    pub notifications: bool,
    pub dark: bool,
    /// The node's event stream lagged: the lists are read again from the store.
    pub needs_resync: bool,
    /// Messages that arrived while unfocused, for a desktop notification (names only, never text).
    pub pending_notifications: Vec<String>,
    /// Ids already sent in a read receipt, so one is not sent twice while the answer is on its way.
    pub read_requested: HashSet<MessageId>,
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
            open: None,
            filter: String::new(),
            dialog: None,
            status: None,
            connected: 0,
            nat: NatStatus::Unknown,
            listen_addrs: Vec::new(),
            mailboxes_checked: HashMap::new(),
            settings: NetworkSettings::default(),
            notices: Vec::new(),
            search: String::new(),
            search_results: None,
            focused: true,
            notifications: true,
            dark: true,
            needs_resync: false,
            pending_notifications: Vec::new(),
            read_requested: HashSet::new(),
        }
    }
}

/// The lists read from the store after unlocking (and after a lag).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub me: Whoami,
    pub contacts: Vec<ContactRecord>,
    pub conversations: Vec<ConversationSummary>,
}

impl Snapshot {
    pub fn read(engine: &tern_node::engine::Engine) -> Result<Self, tern_node::store::StoreError> {
        Ok(Self {
            me: engine.whoami(),
            contacts: engine.store().contacts()?,
            conversations: engine.store().conversations()?,
        })
    }
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
        self.notices.push(Notice { text, error });
    }

    pub fn contact(&self, key: &IdentityKey) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.key() == *key)
    }

    fn contact_mut(&mut self, key: &IdentityKey) -> Option<&mut Contact> {
        self.contacts.iter_mut().find(|c| c.key() == *key)
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
        self.profile_screen.password.clear();
        self.profile_screen.confirm.clear();
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
                let (online, typing_since) = old.get(&record.key).copied().unwrap_or_default();
                Contact {
                    record,
                    online,
                    typing_since,
                }
            })
            .collect();
        self.conversations = snap.conversations;
        self.needs_resync = false;
    }

    pub fn upsert_contact(&mut self, record: ContactRecord) {
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
        self.conversations.retain(|c| c.conversation != *key);
        if self.open.as_ref().is_some_and(|o| o.contact == *key) {
            self.open = None;
        }
    }

    /// The rows of the conversation list: every conversation and every accepted contact without one,
    /// most recent first, filtered by name. Blocked contacts are left out.
    pub fn list_rows(&self) -> Vec<ListRow> {
        let filter = self.filter.trim().to_lowercase();
        let contacts: HashMap<IdentityKey, &Contact> =
            self.contacts.iter().map(|c| (c.key(), c)).collect();
        let mut rows: Vec<ListRow> = Vec::with_capacity(self.contacts.len());
        let mut listed = HashSet::new();
        for summary in &self.conversations {
            listed.insert(summary.conversation);
            rows.push(ListRow {
                key: summary.conversation,
                last: Some(summary.last.clone()),
                unread: summary.unread,
            });
        }
        for contact in &self.contacts {
            if !listed.contains(&contact.key()) {
                rows.push(ListRow {
                    key: contact.key(),
                    last: None,
                    unread: 0,
                });
            }
        }
        rows.retain(|r| {
            contacts
                .get(&r.key)
                .is_none_or(|c| c.record.state != ContactState::Blocked)
                && (filter.is_empty() || self.name_of(&r.key).to_lowercase().contains(&filter))
        });
        rows.sort_by_key(|r| {
            std::cmp::Reverse(r.last.as_ref().map_or_else(
                || contacts.get(&r.key).map_or(0, |c| c.record.added_ms),
                MessageRecord::sort_ms,
            ))
        });
        rows
    }

    /// Opens a conversation (its first page is loaded by the caller).
    pub fn open_conversation(&mut self, contact: IdentityKey, scroll_to: Option<MessageId>) {
        if let Some(open) = &mut self.open
            && open.contact == contact
        {
            open.scroll_to = scroll_to;
            return;
        }
        self.read_requested.clear();
        self.open = Some(OpenConversation {
            contact,
            messages: Vec::new(),
            older: None,
            loading: true,
            scroll_to,
            draft: String::new(),
            typing_sent: None,
        });
    }

    /// A page of the open conversation arrived. `newest` pages replace the view; older ones go on top.
    pub fn page_loaded(&mut self, contact: IdentityKey, page: MessagePage, newest: bool) {
        let Some(open) = self.open.as_mut().filter(|o| o.contact == contact) else {
            return;
        };
        open.loading = false;
        open.older = page.older;
        if newest {
            open.messages = page.messages;
        } else {
            let mut merged = page.messages;
            merged.append(&mut open.messages);
            open.messages = merged;
        }
        if open.messages.len() > MAX_LOADED_MESSAGES {
            let extra = open.messages.len() - MAX_LOADED_MESSAGES;
            open.messages.drain(..extra);
        }
    }

    /// Unread incoming messages of the open conversation that no read receipt was asked for yet.
    pub fn unread_in_open(&self) -> Vec<MessageId> {
        let Some(open) = &self.open else {
            return Vec::new();
        };
        // The list's count says whether there is anything to look for (so a long conversation is not
        // scanned every frame).
        if self
            .conversations
            .iter()
            .find(|c| c.conversation == open.contact)
            .is_none_or(|c| c.unread == 0)
        {
            return Vec::new();
        }
        open.messages
            .iter()
            .filter(|m| {
                !m.outgoing
                    && m.status == MessageStatus::Received
                    && !self.read_requested.contains(&m.id)
            })
            .map(|m| m.id)
            .collect()
    }

    /// Messages were marked read.
    pub fn marked_read(&mut self, contact: IdentityKey, ids: &[MessageId]) {
        for id in ids {
            self.read_requested.remove(id);
        }
        if let Some(open) = self.open.as_mut().filter(|o| o.contact == contact) {
            for m in open.messages.iter_mut().filter(|m| ids.contains(&m.id)) {
                m.status = MessageStatus::Read;
            }
        }
        if let Some(summary) = self
            .conversations
            .iter_mut()
            .find(|c| c.conversation == contact)
        {
            summary.unread = summary.unread.saturating_sub(ids.len() as u64);
            if ids.contains(&summary.last.id) {
                summary.last.status = MessageStatus::Read;
            }
        }
    }

    /// A message was stored (sent by us or received): into the open view and the list.
    pub fn message_stored(&mut self, message: MessageRecord) {
        let key = message.conversation;
        let unread = u64::from(!message.outgoing && message.status == MessageStatus::Received);
        if let Some(open) = self.open.as_mut().filter(|o| o.contact == key)
            && !open.messages.iter().any(|m| m.id == message.id)
        {
            // Keep the view sorted; new messages nearly always go last.
            let at = open
                .messages
                .iter()
                .rposition(|m| m.sort_ms() <= message.sort_ms())
                .map_or(0, |i| i + 1);
            open.messages.insert(at, message.clone());
        }
        match self
            .conversations
            .iter_mut()
            .find(|c| c.conversation == key)
        {
            Some(summary) => {
                if message.sort_ms() >= summary.last.sort_ms() {
                    summary.last = message;
                }
                summary.unread += unread;
            }
            None => self.conversations.push(ConversationSummary {
                conversation: key,
                last: message,
                unread,
            }),
        }
        self.conversations
            .sort_by_key(|c| std::cmp::Reverse(c.last.sort_ms()));
    }

    fn status_changed(&mut self, contact: IdentityKey, id: MessageId, status: MessageStatus) {
        if let Some(open) = self.open.as_mut().filter(|o| o.contact == contact)
            && let Some(m) = open.messages.iter_mut().find(|m| m.id == id)
            && m.status.can_become(status, m.outgoing)
        {
            m.status = status;
        }
        if let Some(summary) = self
            .conversations
            .iter_mut()
            .find(|c| c.conversation == contact)
            && summary.last.id == id
            && summary
                .last
                .status
                .can_become(status, summary.last.outgoing)
        {
            summary.last.status = status;
        }
    }

    /// Applies one node event.
    pub fn on_event(&mut self, event: Event) {
        match event {
            Event::Listening { address } => self.listen_addrs.push(address.to_string()),
            Event::MessageReceived { message } => {
                if !self.focused
                    || self
                        .open
                        .as_ref()
                        .is_none_or(|o| o.contact != message.conversation)
                {
                    let name = self.name_of(&message.conversation);
                    if self.pending_notifications.len() < MAX_PENDING_NOTIFICATIONS {
                        self.pending_notifications.push(name);
                    }
                }
                self.message_stored(message);
            }
            Event::ContactRequest { contact } => {
                let name = contact.local_name.clone();
                self.upsert_contact(contact);
                self.notice(format!("{name} wants to talk to you: accept or block them"));
            }
            Event::KeyChanged { contact } => {
                if let Some(c) = self.contact_mut(&contact) {
                    c.record.key_changed = true;
                    c.record.verified = false;
                }
            }
            Event::StatusChanged {
                contact,
                id,
                status,
            } => self.status_changed(contact, id, status),
            Event::Typing { contact, typing } => {
                if let Some(c) = self.contact_mut(&contact) {
                    c.typing_since = typing.then(Instant::now);
                }
            }
            Event::ContactOnline { contact, online } => {
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
            _ => {}
        }
    }
}

/// One row of the conversation list.
#[derive(Debug, Clone)]
pub struct ListRow {
    pub key: IdentityKey,
    pub last: Option<MessageRecord>,
    pub unread: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use tern_protocol::Identity;

    fn key(seed: u64) -> IdentityKey {
        Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed), 0).key()
    }

    fn message(conversation: IdentityKey, n: u8, at: u64, outgoing: bool) -> MessageRecord {
        MessageRecord {
            id: MessageId([n; 16]),
            conversation,
            outgoing,
            sent_at_ms: at,
            received_at_ms: at,
            text: format!("m{n}"),
            status: if outgoing {
                MessageStatus::Sending
            } else {
                MessageStatus::Received
            },
        }
    }

    fn contact(key: IdentityKey, name: &str, state: ContactState) -> ContactRecord {
        ContactRecord {
            key,
            card: Vec::new(),
            local_name: name.into(),
            verified: true,
            state,
            key_changed: false,
            added_ms: 0,
        }
    }

    #[test]
    fn the_list_is_sorted_by_recent_activity_counts_unread_and_filters_by_name() {
        let mut m = Model::default();
        let (a, b, c) = (key(1), key(2), key(3));
        m.upsert_contact(contact(a, "Alice", ContactState::Accepted));
        m.upsert_contact(contact(b, "Bob", ContactState::Accepted));
        m.upsert_contact(contact(c, "Mallory", ContactState::Blocked));
        m.message_stored(message(a, 1, 10, false));
        m.message_stored(message(b, 2, 20, true));
        m.message_stored(message(a, 3, 30, false));
        let rows = m.list_rows();
        assert_eq!(rows.iter().map(|r| r.key).collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(rows[0].unread, 2);
        assert_eq!(rows[1].unread, 0);
        m.filter = "bo".into();
        assert_eq!(m.list_rows().len(), 1);
        m.marked_read(a, &[MessageId([1; 16]), MessageId([3; 16])]);
        m.filter.clear();
        assert_eq!(m.list_rows()[0].unread, 0);
    }

    #[test]
    fn statuses_only_move_forward_in_the_open_view() {
        let mut m = Model::default();
        let a = key(1);
        m.open_conversation(a, None);
        m.page_loaded(
            a,
            MessagePage {
                messages: vec![message(a, 1, 10, true)],
                older: None,
            },
            true,
        );
        let id = MessageId([1; 16]);
        for status in [MessageStatus::Read, MessageStatus::Delivered] {
            m.on_event(Event::StatusChanged {
                contact: a,
                id,
                status,
            });
        }
        let open = m.open.as_ref().unwrap();
        assert_eq!(open.messages[0].status, MessageStatus::Read);
    }

    #[test]
    fn a_key_change_drops_the_verified_mark_and_older_pages_go_on_top() {
        let mut m = Model::default();
        let a = key(1);
        m.upsert_contact(contact(a, "Alice", ContactState::Accepted));
        m.on_event(Event::KeyChanged { contact: a });
        let c = m.contact(&a).unwrap();
        assert!(c.record.key_changed && !c.record.verified);
        m.open_conversation(a, None);
        let page = |n: u8| MessagePage {
            messages: vec![message(a, n, u64::from(n), false)],
            older: None,
        };
        m.page_loaded(a, page(5), true);
        m.page_loaded(a, page(2), false);
        let ids: Vec<u8> = m
            .open
            .as_ref()
            .unwrap()
            .messages
            .iter()
            .map(|m| m.id.0[0])
            .collect();
        assert_eq!(ids, vec![2, 5]);
        // Nothing is unread in the list yet, so nothing is looked for.
        assert!(m.unread_in_open().is_empty());
        m.message_stored(message(a, 5, 5, false));
        assert_eq!(m.open.as_ref().unwrap().messages.len(), 2, "stored once");
        assert_eq!(m.unread_in_open().len(), 2);
        m.read_requested.insert(MessageId([2; 16]));
        assert_eq!(m.unread_in_open(), vec![MessageId([5; 16])]);
        m.marked_read(a, &[MessageId([2; 16])]);
        assert!(m.read_requested.is_empty());
    }

    #[test]
    fn a_message_while_unfocused_or_elsewhere_asks_for_a_notification_naming_the_sender_only() {
        let mut m = Model::default();
        let (a, b) = (key(1), key(2));
        m.upsert_contact(contact(a, "Alice", ContactState::Accepted));
        m.upsert_contact(contact(b, "Bob", ContactState::Accepted));
        m.open_conversation(a, None);
        m.on_event(Event::MessageReceived {
            message: message(a, 1, 10, false),
        });
        assert!(
            m.pending_notifications.is_empty(),
            "read in the open conversation"
        );
        m.on_event(Event::MessageReceived {
            message: message(b, 2, 11, false),
        });
        m.focused = false;
        m.on_event(Event::MessageReceived {
            message: message(a, 3, 12, false),
        });
        assert_eq!(m.pending_notifications, vec!["Bob", "Alice"]);
        assert!(
            m.pending_notifications
                .iter()
                .all(|n| !n.contains("m2") && !n.contains("m3"))
        );
    }
}
