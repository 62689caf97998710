//! The public face of tern-node: plain types in the user's nouns (conversation, contact, message, event)
//! that the desktop app and the `tern-node` CLI use. Store rows never appear here: the store converts its
//! rows into these types, so a change of storage format is never a change for the app.

use std::collections::BTreeMap;
use std::fmt;

use libp2p::{Multiaddr, PeerId};
use tern_protocol::{Fingerprint, IdentityKey, MessageId};

mod files;
mod group_links;

pub use files::{Attachment, FileEntry, FileOpError, FileState, FilesError, SentFile};
pub use group_links::{GroupLinkInfo, JoinAnswer, JoinRequestInfo, JoinStarted};

/// How the profile's store is doing after a full or failing disk (see [`NetStatus::store`]): failures and
/// recoveries since the profile was opened (`crate::store` keeps it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreHealth {
    /// Whether the database is closed after a failure (nothing can be saved until it is opened again).
    pub failing: bool,
    /// Storage operations that failed with an I/O error (a full or failing disk).
    pub failures: u64,
    /// Times the database was opened again after a failure.
    pub reopens: u64,
}

/// Milliseconds since the unix epoch, by the wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Which conversation a message belongs to.
///
/// The store keys everything by this value's [`ConversationId::to_bytes`] form (a tag byte, then the
/// id), so a new kind of conversation (a group) is a new tag, not a new table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ConversationId {
    /// A 1:1 conversation with the contact who has this identity key.
    Direct(IdentityKey),
    /// A group conversation: `SHA-256("tern/group/conversation/v1" ‖ MLS group id)` (docs/protocol.md §18.9).
    Group([u8; 32]),
}

/// Tag byte of [`ConversationId::Direct`] in its byte form.
pub const CONVERSATION_DIRECT: u8 = 1;
/// Tag byte of [`ConversationId::Group`] in its byte form.
pub const CONVERSATION_GROUP: u8 = 2;
/// Length of [`ConversationId::to_bytes`].
pub const CONVERSATION_ID_LEN: usize = 33;

impl ConversationId {
    /// The stable byte form: `u8 tag ‖ 32-byte id`.
    pub fn to_bytes(&self) -> [u8; CONVERSATION_ID_LEN] {
        let mut out = [0u8; CONVERSATION_ID_LEN];
        match self {
            Self::Direct(key) => {
                out[0] = CONVERSATION_DIRECT;
                out[1..].copy_from_slice(key.as_bytes());
            }
            Self::Group(id) => {
                out[0] = CONVERSATION_GROUP;
                out[1..].copy_from_slice(id);
            }
        }
        out
    }

    /// Parses [`Self::to_bytes`]; `None` for an unknown tag or an invalid key.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&tag, rest) = bytes.split_first()?;
        let id: [u8; 32] = rest.try_into().ok()?;
        match tag {
            CONVERSATION_DIRECT => IdentityKey::from_bytes(id).ok().map(Self::Direct),
            CONVERSATION_GROUP => Some(Self::Group(id)),
            _ => None,
        }
    }

    /// The contact of a 1:1 conversation.
    pub fn direct(&self) -> Option<IdentityKey> {
        match self {
            Self::Direct(key) => Some(*key),
            Self::Group(_) => None,
        }
    }

    /// Whether this is a group conversation.
    pub fn is_group(&self) -> bool {
        matches!(self, Self::Group(_))
    }

    /// The conversation of the group whose MLS group id is `mls_group_id`.
    pub fn of_group(mls_group_id: &[u8]) -> Self {
        Self::Group(tern_protocol::group_wire::conversation_id(mls_group_id))
    }

    /// A short printable form: the contact's peer id, or `g` and the first 16 hex digits of a group's id.
    pub fn short(&self) -> String {
        match self {
            Self::Direct(key) => key.peer_id(),
            Self::Group(id) => format!("g{}", hex8(id)),
        }
    }
}

/// The first 8 bytes of a group conversation id in hex.
fn hex8(id: &[u8; 32]) -> String {
    id[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Debug for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct(key) => write!(f, "Direct({})", key.peer_id()),
            Self::Group(id) => write!(f, "Group({})", hex8(id)),
        }
    }
}

/// The libp2p PeerId of a Tern identity (its Ed25519 identity key).
pub fn peer_id_of(key: &IdentityKey) -> Option<PeerId> {
    PeerId::from_bytes(&key.peer_id_bytes()).ok()
}

impl From<IdentityKey> for ConversationId {
    fn from(key: IdentityKey) -> Self {
        Self::Direct(key)
    }
}

impl From<&IdentityKey> for ConversationId {
    fn from(key: &IdentityKey) -> Self {
        Self::Direct(*key)
    }
}

impl From<&ConversationId> for ConversationId {
    fn from(id: &ConversationId) -> Self {
        *id
    }
}

/// Where a contact stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContactState {
    /// A contact the user added or accepted.
    Accepted,
    /// Someone who wrote first and has not been accepted yet (a message request).
    Requested,
    /// Blocked: their messages are dropped.
    Blocked,
}

impl ContactState {
    /// The word the CLI prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Requested => "requested",
            Self::Blocked => "blocked",
        }
    }
}

/// A contact as the user sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct Contact {
    /// The contact's identity key (their PeerId is derived from it).
    pub key: IdentityKey,
    /// The name the user knows them by (their own display name until renamed).
    pub name: String,
    /// The display name their card gives.
    pub card_name: String,
    pub state: ContactState,
    /// The user confirmed the safety number or scanned their code.
    pub verified: bool,
    /// Their key changed since it was verified or first seen; cleared by verifying again.
    pub key_changed: bool,
    /// When the contact was added or first wrote, unix milliseconds.
    pub added_ms: u64,
}

impl Contact {
    /// The conversation with this contact.
    pub fn conversation(&self) -> ConversationId {
        ConversationId::Direct(self.key)
    }

    /// The contact's libp2p PeerId, base58.
    pub fn peer_id(&self) -> String {
        self.key.peer_id()
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.key)
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print names.
        let Self {
            key,
            name: _,
            card_name: _,
            state,
            verified,
            key_changed,
            added_ms,
        } = self;
        f.debug_struct("Contact")
            .field("key", &key.peer_id())
            .field("state", state)
            .field("verified", verified)
            .field("key_changed", key_changed)
            .field("added_ms", added_ms)
            .finish_non_exhaustive()
    }
}

/// Where a message stands. Outgoing messages move `Sending → Sent → Delivered → Read` (or to `Failed`);
/// incoming ones are `Received` until the user reads them (`Read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageStatus {
    /// Outgoing, not yet handed to the peer or a mailbox.
    Sending,
    /// Outgoing, handed to the peer or a mailbox.
    Sent,
    /// Outgoing, the recipient's device acknowledged it.
    Delivered,
    /// Outgoing: the recipient read it. Incoming: the user read it.
    Read,
    /// Outgoing, given up on.
    Failed,
    /// Incoming, not read yet.
    Received,
}

impl MessageStatus {
    /// The word the CLI prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Received => "received",
        }
    }

    /// Whether a message in this status may move to `next`. Statuses never move backwards, so receipts
    /// that arrive out of order (read before delivered) do no harm; a failed message may be retried.
    pub fn can_become(self, next: Self, outgoing: bool) -> bool {
        use MessageStatus::*;
        if outgoing {
            matches!(
                (self, next),
                (Sending, Sent | Delivered | Read | Failed)
                    | (Sent, Delivered | Read | Failed)
                    | (Delivered, Read)
                    | (Failed, Sending | Sent | Delivered | Read)
            )
        } else {
            matches!((self, next), (Received, Read))
        }
    }
}

/// One recipient's view of an outgoing message in a conversation with several members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientStatus {
    pub member: IdentityKey,
    /// `Sent` until the member's receipt says delivered or read.
    pub status: MessageStatus,
    /// When this device learned of that status, unix milliseconds; 0 while `Sent`.
    pub at_ms: u64,
}

/// A message as the user sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The message id (UUIDv7) the sender chose.
    pub id: MessageId,
    pub conversation: ConversationId,
    /// Who wrote it: `None` for this profile. For a system line, who did what it says.
    pub sender: Option<IdentityKey>,
    /// A group's system line ("Alice added Bob", "Carol left", renamed), not a member's text.
    pub system: bool,
    /// When the sender says it sent the message, unix milliseconds.
    pub sent_at_ms: u64,
    /// When this device stored it, unix milliseconds (for outgoing messages: when it was written).
    pub received_at_ms: u64,
    pub text: String,
    /// For an outgoing message, where it stands with its recipient (in a group that lists its members,
    /// with the slowest of them: delivered once every member has it, read once every member read it);
    /// for an incoming one, `Received` or `Read`.
    pub status: MessageStatus,
    /// Per-recipient statuses where the conversation has several recipients; empty for a 1:1 message.
    pub recipients: Vec<RecipientStatus>,
    /// The earlier message of the conversation this one answers (a reply, docs/protocol.md §12.5).
    pub reply_to: Option<MessageId>,
    /// The file this message offers (its `text` is then empty), if any.
    pub attachment: Option<Attachment>,
}

impl Message {
    /// Written by this profile.
    pub fn outgoing(&self) -> bool {
        self.sender.is_none()
    }

    /// The time the message is ordered by in its conversation: when it was sent for outgoing messages,
    /// when it arrived for incoming ones (a sender's clock is not trusted for ordering).
    pub fn sort_ms(&self) -> u64 {
        if self.outgoing() {
            self.sent_at_ms
        } else {
            self.received_at_ms
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print message text.
        let Self {
            id,
            conversation,
            sender,
            system,
            sent_at_ms,
            received_at_ms,
            text,
            status,
            recipients,
            reply_to,
            attachment,
        } = self;
        f.debug_struct("Message")
            .field("id", id)
            .field("conversation", conversation)
            .field("sender", &sender.map(|k| k.peer_id()))
            .field("system", system)
            .field("sent_at_ms", sent_at_ms)
            .field("received_at_ms", received_at_ms)
            .field("text_len", &text.len())
            .field("status", status)
            .field("recipients", recipients)
            .field("reply_to", reply_to)
            .field("attachment", attachment)
            .finish()
    }
}

/// Length of a [`Cursor`]: a message's sort time and row.
pub(crate) const CURSOR_LEN: usize = 24;

/// A position in a conversation (a message's time and row), for paging backwards. Opaque.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor(pub(crate) [u8; CURSOR_LEN]);

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&self.0[..8]);
        write!(f, "Cursor({} ms)", u64::from_be_bytes(ms))
    }
}

/// Some messages of a conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub messages: Vec<Message>,
    /// Pass this as `before` for the next older page; `None` when there are no older messages.
    pub older: Option<Cursor>,
}

/// When this device learned that a message was delivered and read (unix milliseconds, by this device's
/// clock); `None` when it does not know: not yet, or the message was stored before Tern recorded the times.
/// For an incoming message, `read_at_ms` is when the user read it here; `delivered_at_ms` stays `None`
/// (its arrival is the message's `received_at_ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageTimes {
    pub delivered_at_ms: Option<u64>,
    pub read_at_ms: Option<u64>,
}

/// A conversation in the conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    /// What the list shows: the contact's name for a 1:1 conversation.
    pub title: String,
    /// The newest message.
    pub last: Message,
    /// Unread incoming messages.
    pub unread: u64,
    /// The disappearing-message timer in seconds; 0: messages stay (docs/protocol.md §12.4).
    pub timer_s: u32,
}

/// Who this profile is.
#[derive(Debug, Clone)]
pub struct Whoami {
    pub key: IdentityKey,
    pub name: String,
    pub fingerprint: Fingerprint,
    pub invite_link: String,
    /// The same card as a protocol 1.0 link (no checksum), for apps that predate checked links.
    pub invite_link_1_0: String,
}

/// What adding a contact from an invite link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContactChange {
    /// A new contact.
    Added,
    /// A known contact's card was refreshed (same identity).
    Updated,
    /// The link was the same card as before.
    Unchanged,
    /// A known name now has another identity key: the verified mark was dropped.
    KeyChanged,
}

impl ContactChange {
    /// The word the CLI prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::KeyChanged => "key-changed",
        }
    }
}

/// Whether this node can be reached directly from the internet (AutoNAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatStatus {
    /// Reachable at this address.
    Public(Multiaddr),
    /// Behind NAT: peers reach it through relays and hole punching.
    Private,
    Unknown,
}

/// How a connected contact is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// At least one direct connection (on the LAN, to a public address, or hole-punched).
    Direct,
    /// Only through a relay's circuit.
    Relayed,
}

/// A connected contact and how it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactReach {
    pub contact: IdentityKey,
    /// The contact's name as the user knows them.
    pub name: String,
    pub reach: Reach,
}

/// The node's view of the network.
#[derive(Debug, Clone)]
pub struct NetStatus {
    pub peer_id: PeerId,
    pub listen_addrs: Vec<Multiaddr>,
    pub connected_peers: Vec<PeerId>,
    /// Messages waiting to go out: outbox entries, and group mail opens and deposits no server has
    /// answered yet (docs/protocol.md §18.6).
    pub outbox_len: usize,
    pub lan_only: bool,
    pub nat: NatStatus,
    /// Peers found on the LAN by mDNS.
    pub lan_peers: usize,
    /// The mailbox servers that hold this profile's mail.
    pub mailboxes: Vec<PeerId>,
    /// LAN peers that offer to hold mail.
    pub lan_mailboxes: Vec<PeerId>,
    /// Listening through a relay's circuit (AutoNAT says private or does not know yet).
    pub relayed: bool,
    /// The addresses in this node's current address record (none in LAN mode or before any is known).
    pub published_addrs: Vec<Multiaddr>,
    /// Connected contacts, each reached directly or through a relay.
    pub contacts: Vec<ContactReach>,
    /// What this node refused from peers since it started, by kind: `envelope_<reason>` for envelopes it
    /// rejected, `envelope_duplicate` for envelopes it already had, `envelope_unreadable` for envelope
    /// streams that failed once open, `connection_limit` and `connection_handshake` for incoming
    /// connections denied by a limit or whose handshake failed, and `mailbox_<reason>` for requests the
    /// mailbox it serves refused.
    pub refusals: BTreeMap<String, u64>,
    /// The profile's store: `failing` while its disk is full or failing (every send and receive is
    /// refused until the store has opened its database again), with the failures and reopens counted
    /// since the node started.
    pub store: StoreHealth,
}

/// A member's role in a group (docs/protocol.md §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupRole {
    /// Made the group; an admin for as long as it is a member.
    Creator,
    /// May add, remove, rename and promote.
    Admin,
    Member,
}

impl GroupRole {
    /// The word the CLI prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creator => "creator",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub key: IdentityKey,
    /// The contact's name as the user knows them, "you" for this profile, else the peer id.
    pub name: String,
    pub role: GroupRole,
    /// Whether the member is in this profile's contacts (messages reach it over their 1:1 session).
    pub contact: bool,
}

/// A group as the user sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// The group's conversation (messages, unread counts and paging as for a 1:1 conversation).
    pub id: ConversationId,
    pub name: String,
    pub members: usize,
    /// This profile's role.
    pub role: GroupRole,
    /// `false` once this profile left or was removed: the history stays, nothing can be sent.
    pub active: bool,
    /// Restored from a backup and waiting for an admin's node to add this copy back (docs/protocol.md
    /// §20.5): the history is here, nothing can be sent until then (`active` is `false`).
    pub rejoining: bool,
    /// The MLS epoch (changes with every commit).
    pub epoch: u64,
}

impl fmt::Debug for GroupSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print names.
        f.debug_struct("GroupSummary")
            .field("id", &self.id)
            .field("members", &self.members)
            .field("role", &self.role)
            .field("active", &self.active)
            .field("rejoining", &self.rejoining)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// What the node tells its users. Every event names what a reader shows (a contact's display name), so
/// nobody has to ask the node who a key is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The swarm listens on a new address.
    Listening { address: Multiaddr },
    /// A new message arrived and is stored.
    MessageReceived {
        message: Message,
        /// The sender's name as the user knows them.
        sender_name: String,
    },
    /// Someone not in the contacts wrote: accept or block them.
    ContactRequest { contact: Contact },
    /// A known contact's key changed: the verified mark was dropped.
    KeyChanged { contact: IdentityKey, name: String },
    /// A contact sent its re-issued card (a new prekey, mailboxes or display name); `contact` is the
    /// contact as now on file.
    ContactUpdated { contact: Contact },
    /// An outgoing message moved on.
    StatusChanged {
        conversation: ConversationId,
        /// The conversation's title (the contact's name for a 1:1 conversation).
        title: String,
        id: MessageId,
        status: MessageStatus,
    },
    /// A member's receipt moved this profile's group message on for that member (docs/protocol.md
    /// §18.10): every member's status as now stored. A move of the message's own status (once every
    /// member has it, or read it) comes as [`Event::StatusChanged`] too.
    RecipientsChanged {
        conversation: ConversationId,
        id: MessageId,
        recipients: Vec<RecipientStatus>,
    },
    Typing {
        conversation: ConversationId,
        contact: IdentityKey,
        name: String,
        typing: bool,
    },
    /// A contact's node connected (`true`) or its last connection closed.
    ContactOnline {
        contact: IdentityKey,
        name: String,
        online: bool,
    },
    /// The number of connected peers changed.
    Peers { connected: usize },
    /// A peer sent a content kind this build does not know.
    UnknownContent {
        contact: IdentityKey,
        name: String,
        kind: u16,
    },
    /// An envelope from this contact could not be decrypted (typically a message sent on a session this
    /// copy of the profile does not hold: after a restore from a backup, or from a second running copy;
    /// docs/protocol.md §20.5). The message is not shown; the sender sees it failed (direct) or never
    /// delivered (through a mailbox) and can send it again.
    Undecryptable { contact: IdentityKey, name: String },
    /// This profile's mailbox record was stored in the DHT.
    MailboxRecordPublished,
    /// This node's address record (how contacts reach it now) was stored in the DHT.
    AddressesPublished { addresses: Vec<Multiaddr> },
    /// A connected contact's path changed: now reached directly, or only through a relay.
    ContactReach {
        contact: IdentityKey,
        name: String,
        reach: Reach,
    },
    /// AutoNAT's verdict on whether this node is reachable from the internet changed.
    Nat { status: NatStatus },
    /// A mailbox server was read to the end; `envelopes` is how many it handed over this time.
    MailboxChecked { server: PeerId, envelopes: usize },
    /// This profile was added to a group (a Welcome from an admin who is a contact).
    GroupJoined {
        group: GroupSummary,
        added_by: IdentityKey,
        /// The adder's name as the user knows them.
        added_by_name: String,
    },
    /// A group's members, name or roles changed, or this profile left or was removed (`active` false).
    /// The change itself is also stored as a system line in the group's conversation (a
    /// [`Event::MessageReceived`] with `system` set).
    GroupUpdated { group: GroupSummary },
    /// Someone holding one of this profile's links asks to join a group that needs approval
    /// ([`crate::node::Node::group_join_decide`]).
    GroupJoinRequested { request: JoinRequestInfo },
    /// The admin this profile asked to join by link answered without adding it (yet): the request waits
    /// for approval, the link was revoked, or the request was declined.
    GroupJoinAnswered {
        admin: IdentityKey,
        admin_name: String,
        answer: JoinAnswer,
    },
    /// A file is being fetched: `received` of `size` plaintext bytes are verified here (at most one event
    /// per file every [`crate::files::PROGRESS_INTERVAL`], and one at the end).
    FileProgress {
        conversation: ConversationId,
        id: MessageId,
        received: u64,
        size: u64,
    },
    /// A file offered in message `id` is now whole here, verified; save it with
    /// [`crate::node::Node::save_file`].
    FileReceived {
        conversation: ConversationId,
        id: MessageId,
    },
    /// An automatic backup was written to `path` (`crate::backup::AutoBackup`).
    BackupWritten { path: std::path::PathBuf },
    /// These messages' disappearing-message timer ran out: they are deleted, with their files (take them
    /// out of view).
    MessagesExpired {
        conversation: ConversationId,
        ids: Vec<MessageId>,
    },
    /// A file transfer stopped for good (`state` says how: failed or cancelled), with the reason.
    FileFailed {
        conversation: ConversationId,
        id: MessageId,
        state: FileState,
        reason: String,
    },
    /// A mailbox server holds a file this profile sent, for recipients who are offline (docs/protocol.md
    /// §19.9): they can fetch it from there once this computer is off. `keep_secs`: how long it keeps it.
    FileHeld {
        conversation: ConversationId,
        id: MessageId,
        server: PeerId,
        keep_secs: u64,
    },
    /// A mailbox server would not hold a file this profile sent (`reason` says why, in plain words): the
    /// recipient can fetch it only from this computer, while it is online.
    FileNotHeld {
        conversation: ConversationId,
        id: MessageId,
        server: PeerId,
        reason: String,
    },
}
