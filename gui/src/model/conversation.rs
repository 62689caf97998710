//! The conversation side of the model: the conversation list's rows, the open conversation and its
//! pages, and how stored messages, statuses and read receipts change them.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use tern_node::api::{MessageTimes, RecipientStatus};
use tern_protocol::MessageId;

use super::rows::{
    ContactState, ConversationFields, ConversationId, ConversationKey, ConversationRow, Cursor,
    MessageFields, MessageRow, MessageStatus, Page, new_conversation,
};
use super::{Contact, Model};

/// Messages held in memory for the open conversation (older ones are dropped from the view, not the
/// store, past this).
pub const MAX_LOADED_MESSAGES: usize = 1_000_000;

/// At most this many characters of a quoted message show above a reply.
pub const QUOTE_CHARS: usize = 80;

/// The conversation on the right.
#[derive(Debug)]
pub struct OpenConversation {
    pub conversation: ConversationKey,
    /// Oldest first.
    pub messages: Vec<MessageRow>,
    /// Where the next older page starts; `None` once everything is loaded.
    pub older: Option<Cursor>,
    pub loading: bool,
    /// When "typing" was last sent to the contact; `None` when not typing.
    pub typing_sent: Option<Instant>,
    /// When the message "Message info" is about was delivered and read, once the node said.
    pub info_times: Option<(MessageId, MessageTimes)>,
}

/// The window's title for `unread` messages (muted conversations' not counted): "Tern", or "Tern (3)".
pub fn window_title(unread: u64) -> String {
    match unread {
        0 => "Tern".to_owned(),
        n => format!("Tern ({n})"),
    }
}

/// One row of the conversation list.
#[derive(Debug, Clone)]
pub struct ListRow {
    pub key: ConversationKey,
    pub last: Option<MessageRow>,
    pub unread: u64,
}

impl Model {
    /// The node said when message `id` of `conversation` was delivered and read ("Message info"); kept
    /// while that conversation stays open.
    pub fn message_times_loaded(
        &mut self,
        conversation: ConversationKey,
        id: MessageId,
        times: MessageTimes,
    ) {
        if let Some(open) = self
            .open
            .as_mut()
            .filter(|o| o.conversation == conversation)
        {
            open.info_times = Some((id, times));
        }
    }

    /// The rows of the conversation list: every conversation, and every contact and group without one,
    /// the pinned ones first (most recently pinned first), then the others most recent first. Blocked
    /// contacts are left out.
    pub fn list_rows(&self) -> Vec<ListRow> {
        self.list_rows_matching("")
    }

    /// Unread messages in all conversations but the muted ones (blocked contacts' too are none: their
    /// messages are dropped).
    pub fn unread_total(&self) -> u64 {
        self.conversations
            .iter()
            .filter(|c| !self.prefs.is_muted(&c.key()))
            .map(|c| c.unread)
            .sum()
    }

    /// The window's title: "Tern", or "Tern (3)" while 3 messages are unread.
    pub fn window_title(&self) -> String {
        window_title(self.unread_total())
    }

    /// [`Self::list_rows`] whose name contains `filter` (ignoring case).
    pub fn list_rows_matching(&self, filter: &str) -> Vec<ListRow> {
        let filter = filter.trim().to_lowercase();
        let contacts: HashMap<ConversationKey, &Contact> = self
            .contacts
            .iter()
            .map(|c| (ConversationId::Direct(c.key()), c))
            .collect();
        let mut rows: Vec<ListRow> = Vec::with_capacity(self.contacts.len());
        let mut listed = HashSet::new();
        for summary in &self.conversations {
            listed.insert(summary.key());
            rows.push(ListRow {
                key: summary.key(),
                last: Some(summary.last.clone()),
                unread: summary.unread,
            });
        }
        let unlisted = self
            .contacts
            .iter()
            .map(|c| ConversationId::Direct(c.key()))
            .chain(self.groups.iter().map(|g| g.id))
            .filter(|key| !listed.contains(key))
            .collect::<Vec<_>>();
        rows.extend(unlisted.into_iter().map(|key| ListRow {
            key,
            last: None,
            unread: 0,
        }));
        rows.retain(|r| {
            contacts
                .get(&r.key)
                .is_none_or(|c| c.record.state != ContactState::Blocked)
                && (filter.is_empty() || self.title_of(&r.key).to_lowercase().contains(&filter))
        });
        rows.sort_by_key(|r| {
            (
                self.prefs.pin_rank(&r.key).unwrap_or(usize::MAX),
                std::cmp::Reverse(r.last.as_ref().map_or_else(
                    || contacts.get(&r.key).map_or(0, |c| c.record.added_ms),
                    MessageRow::sort_ms,
                )),
            )
        });
        rows
    }

    /// Opens a conversation (its first page is loaded by the caller). Returns whether it was already open.
    pub fn open_conversation(&mut self, conversation: impl Into<ConversationKey>) -> bool {
        let conversation = conversation.into();
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.conversation == conversation)
        {
            return true;
        }
        self.read_requested.clear();
        self.open = Some(OpenConversation {
            conversation,
            messages: Vec::new(),
            older: None,
            loading: true,
            typing_sent: None,
            info_times: None,
        });
        false
    }

    /// A page of the open conversation arrived. `newest` pages replace the view; older ones go on top.
    pub fn page_loaded(&mut self, conversation: ConversationKey, page: Page, newest: bool) {
        if conversation.is_group() {
            let senders: HashSet<_> = page.messages.iter().filter_map(|m| m.sender).collect();
            self.remember_senders(&senders);
        }
        let Some(open) = self
            .open
            .as_mut()
            .filter(|o| o.conversation == conversation)
        else {
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
            .find(|c| c.key() == open.conversation)
            .is_none_or(|c| c.unread == 0)
        {
            return Vec::new();
        }
        open.messages
            .iter()
            .filter(|m| {
                !m.outgoing()
                    && m.status == MessageStatus::Received
                    && !self.read_requested.contains(&m.id)
            })
            .map(|m| m.id)
            .collect()
    }

    /// Messages were marked read.
    pub fn marked_read(&mut self, contact: ConversationKey, ids: &[MessageId]) {
        for id in ids {
            self.read_requested.remove(id);
        }
        if let Some(open) = self.open.as_mut().filter(|o| o.conversation == contact) {
            for m in open.messages.iter_mut().filter(|m| ids.contains(&m.id)) {
                m.status = MessageStatus::Read;
            }
        }
        if let Some(summary) = self.conversations.iter_mut().find(|c| c.key() == contact) {
            summary.unread = summary.unread.saturating_sub(ids.len() as u64);
            if ids.contains(&summary.last.id) {
                summary.last.status = MessageStatus::Read;
            }
        }
    }

    /// A message was stored (sent by us or received): into the open view and the list.
    pub fn message_stored(&mut self, message: MessageRow) {
        let key = message.conversation_key();
        if key.is_group()
            && let Some(sender) = message.sender
        {
            self.remember_senders(&[sender]);
        }
        let unread = u64::from(!message.outgoing() && message.status == MessageStatus::Received);
        if let Some(open) = self.open.as_mut().filter(|o| o.conversation == key)
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
        match self.conversations.iter_mut().find(|c| c.key() == key) {
            Some(summary) => {
                if message.sort_ms() >= summary.last.sort_ms() {
                    summary.last = message;
                }
                summary.unread += unread;
            }
            None => {
                let title = self.title_of(&key);
                self.conversations
                    .push(new_conversation(message, unread, title));
            }
        }
        self.conversations
            .sort_by_key(|c| std::cmp::Reverse(c.last.sort_ms()));
    }

    /// The disappearing-message timer of the conversation with `contact`, in seconds (0: off).
    pub fn timer_of(&self, contact: &ConversationKey) -> u32 {
        self.conversations
            .iter()
            .find(|c| c.key() == *contact)
            .map_or(0, |c| c.timer_s)
    }

    /// The timer of the conversation with `contact` was set to `seconds` here.
    pub fn timer_set(&mut self, contact: ConversationKey, seconds: u32) {
        if let Some(summary) = self.conversations.iter_mut().find(|c| c.key() == contact) {
            summary.timer_s = seconds;
        }
    }

    /// Messages of the conversation with `contact` disappeared (their timer ran out): out of the open
    /// view, the search results and the list. The list is read again for the new last message and unread count.
    /// A conversation's history was cleared: its messages leave the open view, the search results and
    /// the list (a contact stays in the contacts).
    pub fn history_cleared(&mut self, conversation: ConversationKey) {
        if let Some(open) = self
            .open
            .as_mut()
            .filter(|o| o.conversation == conversation)
        {
            for m in &open.messages {
                self.read_requested.remove(&m.id);
            }
            open.messages.clear();
            open.older = None;
        }
        if let Some(results) = self.search_results.as_mut() {
            results.retain(|m| m.conversation != conversation);
        }
        self.conversations.retain(|c| c.key() != conversation);
    }

    pub fn messages_expired(&mut self, contact: ConversationKey, ids: &[MessageId]) {
        let gone: HashSet<MessageId> = ids.iter().copied().collect();
        let mut newest_left = None;
        let mut unread_gone = 0u64;
        if let Some(open) = self.open.as_mut().filter(|o| o.conversation == contact) {
            unread_gone = open
                .messages
                .iter()
                .filter(|m| {
                    gone.contains(&m.id) && !m.outgoing() && m.status == MessageStatus::Received
                })
                .count() as u64;
            open.messages.retain(|m| !gone.contains(&m.id));
            newest_left = open.messages.last().cloned();
        }
        for id in ids {
            self.read_requested.remove(id);
        }
        if let Some(results) = self.search_results.as_mut() {
            results.retain(|m| !gone.contains(&m.id));
        }
        if let Some(at) = self.conversations.iter().position(|c| c.key() == contact) {
            let summary = &mut self.conversations[at];
            summary.unread = summary.unread.saturating_sub(unread_gone);
            if gone.contains(&summary.last.id) {
                match newest_left {
                    Some(last) => summary.last = last,
                    // Nothing here to show instead: the reloaded list says what is left.
                    None => {
                        self.conversations.remove(at);
                    }
                }
            }
        }
        self.conversations_stale = true;
    }

    /// The conversation list as read again from the store. A message stored here after it was read
    /// stays the row's last one.
    pub fn conversations_reloaded(&mut self, mut fresh: Vec<ConversationRow>) {
        for row in &mut fresh {
            if let Some(held) = self.conversations.iter().find(|c| c.key() == row.key())
                && held.last.sort_ms() > row.last.sort_ms()
            {
                row.last = held.last.clone();
                row.unread = row.unread.max(held.unread);
            }
        }
        fresh.sort_by_key(|c| std::cmp::Reverse(c.last.sort_ms()));
        self.conversations = fresh;
    }

    /// An outgoing message moved on (statuses never move backwards).
    pub fn status_changed(
        &mut self,
        contact: ConversationKey,
        id: MessageId,
        status: MessageStatus,
    ) {
        if let Some(open) = self.open.as_mut().filter(|o| o.conversation == contact)
            && let Some(m) = open.messages.iter_mut().find(|m| m.id == id)
            && m.status.can_become(status, m.outgoing())
        {
            m.status = status;
        }
        if let Some(summary) = self.conversations.iter_mut().find(|c| c.key() == contact)
            && summary.last.id == id
            && summary
                .last
                .status
                .can_become(status, summary.last.outgoing())
        {
            summary.last.status = status;
        }
    }

    /// What a reply shows of the message `id` it answers: who wrote it and the start of its first line
    /// ("Pat: are we still on?"), or that this computer does not hold it (deleted, disappeared, from
    /// before a restore, or not loaded yet).
    pub fn quote(&self, id: MessageId) -> String {
        let quoted = self
            .open
            .as_ref()
            .and_then(|o| o.messages.iter().rev().find(|m| m.id == id));
        let Some(m) = quoted else {
            return "a message that is not here".to_owned();
        };
        let who = match m.sender {
            None => "You".to_owned(),
            Some(k) => self.sender_label(&k),
        };
        let line = match &m.attachment {
            Some(file) if m.text.is_empty() => format!("📎 {}", file.name),
            _ => m.text.lines().next().unwrap_or_default().to_owned(),
        };
        let mut snippet: String = line.chars().take(QUOTE_CHARS).collect();
        if snippet.len() < line.len() || m.text.lines().nth(1).is_some() {
            snippet.push('…');
        }
        format!("{who}: {snippet}")
    }

    /// A member's receipt for an own group message: the members' statuses Message info lists.
    pub fn recipients_changed(
        &mut self,
        conversation: ConversationKey,
        id: MessageId,
        recipients: Vec<RecipientStatus>,
    ) {
        if let Some(open) = self
            .open
            .as_mut()
            .filter(|o| o.conversation == conversation)
            && let Some(m) = open.messages.iter_mut().find(|m| m.id == id)
        {
            m.recipients = recipients;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_rows::{contact, key, message};
    use super::super::{ContactState, Event};
    use super::*;

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
        assert_eq!(
            rows.iter().map(|r| r.key).collect::<Vec<_>>(),
            vec![a.into(), b.into()]
        );
        assert_eq!(rows[0].unread, 2);
        assert_eq!(rows[1].unread, 0);
        assert_eq!(m.list_rows_matching("bo").len(), 1);
        assert_eq!(
            m.list_rows_matching(" BO ")[0].key,
            b.into(),
            "case and spaces are ignored"
        );
        m.marked_read(a.into(), &[MessageId([1; 16]), MessageId([3; 16])]);
        assert_eq!(m.list_rows()[0].unread, 0);
    }

    #[test]
    fn a_members_receipt_replaces_the_open_messages_member_statuses() {
        let mut m = Model::default();
        let (a, bo) = (key(1), key(2));
        m.open_conversation(a);
        m.page_loaded(
            a.into(),
            Page {
                messages: vec![message(a, 1, 10, true)],
                older: None,
            },
            true,
        );
        let got = vec![RecipientStatus {
            member: bo,
            status: MessageStatus::Read,
            at_ms: 20,
        }];
        m.recipients_changed(a.into(), MessageId([2; 16]), got.clone());
        assert!(
            m.open.as_ref().unwrap().messages[0].recipients.is_empty(),
            "another message"
        );
        m.recipients_changed(key(3).into(), MessageId([1; 16]), got.clone());
        assert!(
            m.open.as_ref().unwrap().messages[0].recipients.is_empty(),
            "another conversation"
        );
        m.recipients_changed(a.into(), MessageId([1; 16]), got.clone());
        assert_eq!(m.open.as_ref().unwrap().messages[0].recipients, got);
    }

    #[test]
    fn a_quote_names_the_writer_and_the_start_of_the_first_line() {
        let mut m = Model::default();
        let pat = key(2);
        m.upsert_contact(contact(pat, "Pat", ContactState::Accepted));
        m.open_conversation(pat);
        let mut theirs = message(pat, 1, 10, false);
        theirs.text = format!("{}\nsecond line", "x".repeat(QUOTE_CHARS + 5));
        let mut mine = message(pat, 2, 20, true);
        mine.text = "short".into();
        m.page_loaded(
            pat.into(),
            Page {
                messages: vec![theirs, mine],
                older: None,
            },
            true,
        );
        assert_eq!(
            m.quote(MessageId([1; 16])),
            format!("Pat: {}…", "x".repeat(QUOTE_CHARS))
        );
        assert_eq!(m.quote(MessageId([2; 16])), "You: short");
        assert_eq!(m.quote(MessageId([3; 16])), "a message that is not here");
    }

    #[test]
    fn statuses_only_move_forward_in_the_open_view() {
        let mut m = Model::default();
        let a = key(1);
        assert!(!m.open_conversation(a), "newly opened");
        assert!(m.open_conversation(a), "already open");
        m.page_loaded(
            a.into(),
            Page {
                messages: vec![message(a, 1, 10, true)],
                older: None,
            },
            true,
        );
        let id = MessageId([1; 16]);
        for status in [MessageStatus::Read, MessageStatus::Delivered] {
            m.on_event(Event::StatusChanged {
                conversation: a.into(),
                title: "Alice".into(),
                id,
                status,
            });
        }
        let open = m.open.as_ref().unwrap();
        assert_eq!(open.messages[0].status, MessageStatus::Read);
    }

    #[test]
    fn older_pages_go_on_top_and_read_receipts_are_asked_once() {
        let mut m = Model::default();
        let a = key(1);
        m.upsert_contact(contact(a, "Alice", ContactState::Accepted));
        m.open_conversation(a);
        let page = |n: u8| Page {
            messages: vec![message(a, n, u64::from(n), false)],
            older: None,
        };
        m.page_loaded(a.into(), page(5), true);
        m.page_loaded(a.into(), page(2), false);
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
        m.marked_read(a.into(), &[MessageId([2; 16])]);
        assert!(m.read_requested.is_empty());
    }

    #[test]
    fn expired_messages_leave_the_open_view_and_the_list_and_the_list_is_read_again() {
        let mut m = Model::default();
        let (a, b) = (key(1), key(2));
        m.upsert_contact(contact(a, "Alice", ContactState::Accepted));
        m.upsert_contact(contact(b, "Bob", ContactState::Accepted));
        m.open_conversation(a);
        m.page_loaded(
            a.into(),
            Page {
                messages: vec![message(a, 1, 10, true), message(a, 2, 20, false)],
                older: None,
            },
            true,
        );
        m.message_stored(message(a, 3, 30, false));
        m.message_stored(message(b, 4, 40, true));
        assert_eq!(m.timer_of(&a.into()), 0);
        m.timer_set(a.into(), 3600);
        assert_eq!(m.timer_of(&a.into()), 3600);
        assert_eq!(m.list_rows()[1].unread, 1);

        // The newest message of the open conversation and an older one go.
        m.on_event(Event::MessagesExpired {
            conversation: a.into(),
            ids: vec![MessageId([1; 16]), MessageId([3; 16])],
        });
        let left: Vec<u8> = m
            .open
            .as_ref()
            .unwrap()
            .messages
            .iter()
            .map(|m| m.id.0[0])
            .collect();
        assert_eq!(left, vec![2]);
        let row = m
            .list_rows()
            .into_iter()
            .find(|r| r.key == a.into())
            .unwrap();
        assert_eq!(row.last.unwrap().id, MessageId([2; 16]), "the newest left");
        assert_eq!(row.unread, 0, "the expired unread message is not counted");
        assert!(m.conversations_stale, "the list is read again");
        m.search_results = Some(vec![message(a, 1, 10, true), message(a, 2, 20, false)]);
        m.on_event(Event::MessagesExpired {
            conversation: a.into(),
            ids: vec![MessageId([1; 16])],
        });
        assert_eq!(
            m.search_results.as_ref().unwrap().len(),
            1,
            "out of the results"
        );
        assert_eq!(m.timer_of(&a.into()), 3600, "the timer stays");

        // Bob's conversation is not open: its expired last message takes the row away until the
        // list is read again.
        m.on_event(Event::MessagesExpired {
            conversation: b.into(),
            ids: vec![MessageId([4; 16])],
        });
        assert!(m.conversations.iter().all(|c| c.key() != b.into()));
        assert!(
            m.list_rows()
                .iter()
                .any(|r| r.key == b.into() && r.last.is_none()),
            "Bob is still listed, with nothing to show"
        );

        // The reloaded list keeps a message stored after it was read.
        let mut stale = m.conversations.clone();
        stale[0].last = message(a, 2, 20, false);
        m.message_stored(message(a, 5, 50, false));
        m.conversations_reloaded(stale);
        assert_eq!(m.conversations[0].last.id, MessageId([5; 16]));
        assert_eq!(m.conversations[0].unread, 1);
    }
}
