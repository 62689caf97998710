//! [`Node`]: the handle the app and the CLI hold. One typed method per operation; writes go to the event
//! loop as commands with a `oneshot` reply, reads run on a store reader off the loop (so a long search
//! never keeps the swarm waiting).

use super::*;

use crate::api::{
    Contact, ContactChange, ContactState, Conversation, ConversationId, Cursor, Message,
    MessageTimes, Page, Whoami,
};
use crate::drafts::Drafts;
use crate::prefs::ConversationPrefs;
use crate::privacy::PrivacySettings;
use crate::profile::{Password, Profile};
use crate::settings::NetworkSettings;
use crate::store::StoreReader;
use tern_protocol::SafetyNumber;

/// A handle to a running node. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Node {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) events: broadcast::Sender<api::Event>,
    pub(super) peer_id: PeerId,
    pub(super) me: IdentityKey,
    /// File transfers beside the loop (`file_wire.rs`).
    pub(super) files: std::sync::Arc<super::file_wire::FileWire>,
}

impl Node {
    /// Takes `profile` online: builds the swarm for its identity and spawns the event loop on the current
    /// tokio runtime. Returns the handle and an event receiver subscribed before anything happened.
    pub fn start(
        profile: impl Into<Profile>,
        config: NodeConfig,
    ) -> Result<(Self, broadcast::Receiver<api::Event>), NodeError> {
        let profile = profile.into();
        let me = profile.key();
        let files_dir = profile.dir().join(crate::files::FILES_DIR);
        let held_dir = profile.dir().join(crate::files::HELD_FILES_DIR);
        // A mailbox node holds files for others as long as it keeps mail (§19.9).
        let hold = config
            .serve_mailbox
            .as_ref()
            .map(|(_, mailbox)| crate::files::HoldLimits {
                keep_for: std::time::Duration::from_secs(mailbox.max_ttl_s),
                ..crate::files::HoldLimits::default()
            });
        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, event_rx) = broadcast::channel(EVENT_QUEUE);
        let mut event_loop = EventLoop::new(profile.engine, config, command_rx, event_tx.clone())?;
        let peer_id = *event_loop.swarm.local_peer_id();
        let control = event_loop.swarm.behaviour().stream.new_control();
        let files = super::files::start_files(&files_dir, control.clone(), event_tx.clone())?;
        if let Some(limits) = hold {
            files.hold_for_others(&held_dir, control, limits)?;
        }
        files.set_mailboxes(event_loop.mailbox_servers());
        event_loop.files = Some(files.clone());
        let span = info_span!("node", peer = %short(&peer_id));
        tokio::spawn(event_loop.run().instrument(span.clone()));
        let node = Self {
            commands: command_tx,
            events: event_tx,
            peer_id,
            me,
            files,
        };
        node.files.start(node.downgrade(), node.subscribe(), span);
        Ok((node, event_rx))
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// This profile's identity key.
    pub fn key(&self) -> IdentityKey {
        self.me
    }

    /// Another receiver of the node's events.
    pub fn subscribe(&self) -> broadcast::Receiver<api::Event> {
        self.events.subscribe()
    }

    pub(super) async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Runs a read on a store reader on a blocking thread: a long read (a search through a large
    /// history) never holds up the event loop, which only hands out the reader.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StoreReader) -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let reader = self.request(|reply| Command::Reader { reply }).await?;
        tokio::task::spawn_blocking(move || f(&reader))
            .await
            .map_err(|_| NodeError::Stopped)?
    }

    // ---- Messages -------------------------------------------------------------------------------------

    /// Queues a text message; it is durable in the outbox when this returns.
    pub async fn send_text(
        &self,
        conversation: impl Into<ConversationId>,
        text: String,
    ) -> Result<Message, NodeError> {
        let conversation = conversation.into();
        self.request(|reply| Command::SendText {
            conversation,
            text,
            reply,
        })
        .await?
    }

    /// Queues a reply: a text answering message `to` of the conversation (docs/protocol.md §12.5), 1:1 or
    /// group; durable in the outbox (or sent to the group) when this returns.
    pub async fn send_reply(
        &self,
        conversation: impl Into<ConversationId>,
        text: String,
        to: MessageId,
    ) -> Result<Message, NodeError> {
        let conversation = conversation.into();
        self.request(|reply| Command::SendReply {
            conversation,
            text,
            to,
            reply,
        })
        .await?
    }

    /// Marks received messages read and sends a read receipt; returns those that were unread.
    pub async fn mark_read(
        &self,
        conversation: impl Into<ConversationId>,
        ids: Vec<MessageId>,
    ) -> Result<Vec<MessageId>, NodeError> {
        let conversation = conversation.into();
        self.request(|reply| Command::MarkRead {
            conversation,
            ids: Some(ids),
            reply,
        })
        .await?
    }

    /// Marks everything unread in the conversation read and sends a read receipt.
    pub async fn mark_all_read(
        &self,
        conversation: ConversationId,
    ) -> Result<Vec<MessageId>, NodeError> {
        self.request(|reply| Command::MarkRead {
            conversation,
            ids: None,
            reply,
        })
        .await?
    }

    /// Tells a connected contact that we started or stopped typing. Best effort: never queued.
    pub async fn typing(
        &self,
        conversation: impl Into<ConversationId>,
        typing: bool,
    ) -> Result<(), NodeError> {
        let conversation = conversation.into();
        self.commands
            .send(Command::Typing {
                conversation,
                typing,
            })
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Sends a failed outgoing message again, under its own id in a new envelope.
    pub async fn retry(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<Message, NodeError> {
        self.request(|reply| Command::Retry {
            conversation,
            id,
            reply,
        })
        .await?
    }

    /// Sets the conversation's disappearing-message timer to `seconds` (0: off) on both sides
    /// (docs/protocol.md §12.4): returns the system line written, or `None` if it was set so already.
    /// Messages written from then on disappear that long after they were sent here, and after they
    /// were read at the contact's. For a group, only admins may (`GroupError::NotAdmin` otherwise): the
    /// timer is committed to the group info (§18.3) and holds on every member alike.
    pub async fn set_timer(
        &self,
        conversation: ConversationId,
        seconds: u32,
    ) -> Result<Option<Message>, NodeError> {
        if conversation.is_group() {
            return self
                .request(|reply| {
                    Command::Group(super::groups::GroupCommand::SetTimer {
                        group: conversation,
                        seconds,
                        reply,
                    })
                })
                .await?;
        }
        self.request(|reply| Command::SetTimer {
            conversation,
            seconds,
            reply,
        })
        .await?
    }

    /// A page of a conversation's history, oldest first: the newest `limit` messages before `before`.
    pub async fn page(
        &self,
        conversation: ConversationId,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, NodeError> {
        let mut page = self
            .read(move |reader| Ok(reader.page(&conversation, before, limit)?))
            .await?;
        self.fill_files(&mut page.messages);
        Ok(page)
    }

    /// When a message was delivered and read, as far as this device knows ("Message info"); `None` if
    /// the message is not stored.
    pub async fn message_times(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<Option<MessageTimes>, NodeError> {
        self.read(move |reader| Ok(reader.message_times(&conversation, &id)?))
            .await
    }

    /// Every conversation with at least one message, newest activity first. A group's title is its name.
    pub async fn conversations(&self) -> Result<Vec<Conversation>, NodeError> {
        let mut list = self.read(|reader| Ok(reader.conversations()?)).await?;
        if list.iter().any(|c| c.id.is_group()) {
            let groups = self.groups().await?;
            for conversation in list.iter_mut().filter(|c| c.id.is_group()) {
                if let Some(group) = groups.iter().find(|g| g.id == conversation.id) {
                    conversation.title.clone_from(&group.name);
                }
            }
        }
        Ok(list)
    }

    /// Messages whose text contains `query` (case-insensitive), newest first, at most `limit`.
    pub async fn search(&self, query: String, limit: usize) -> Result<Vec<Message>, NodeError> {
        self.read(move |reader| Ok(reader.search(&query, limit)?))
            .await
    }

    // ---- Contacts -------------------------------------------------------------------------------------

    pub async fn contacts(&self) -> Result<Vec<Contact>, NodeError> {
        self.read(|reader| Ok(reader.contacts()?)).await
    }

    pub async fn contact(&self, key: IdentityKey) -> Result<Option<Contact>, NodeError> {
        self.read(move |reader| Ok(reader.contact(&key)?)).await
    }

    /// A contact by name (case-insensitive) or peer id.
    pub async fn find_contact(&self, name_or_peer: String) -> Result<Contact, NodeError> {
        self.read(move |reader| {
            Ok(crate::engine::find_contact_in(
                reader.contacts()?,
                &name_or_peer,
            )?)
        })
        .await
    }

    /// Adds (or updates) a contact from an invite link, named `name` or else the card's display name.
    pub async fn add_contact(
        &self,
        link: String,
        name: Option<String>,
    ) -> Result<(Contact, ContactChange), NodeError> {
        self.request(|reply| Command::AddContact { link, name, reply })
            .await?
    }

    /// Accepts, blocks or unblocks a contact.
    pub async fn set_contact_state(
        &self,
        key: IdentityKey,
        state: ContactState,
    ) -> Result<Contact, NodeError> {
        self.request(|reply| Command::SetContactState { key, state, reply })
            .await?
    }

    pub async fn rename_contact(
        &self,
        key: IdentityKey,
        name: String,
    ) -> Result<Contact, NodeError> {
        self.request(|reply| Command::RenameContact { key, name, reply })
            .await?
    }

    /// Removes a contact with its conversation, session and queued mail.
    pub async fn remove_contact(&self, key: IdentityKey) -> Result<(), NodeError> {
        let files = self.files_of(ConversationId::Direct(key)).await?;
        self.request(|reply| Command::RemoveContact { key, reply })
            .await??;
        self.remove_files(files).await;
        Ok(())
    }

    /// Clears a conversation's history on this computer: every message and its file go, the contact (or
    /// group) stays, and so do its disappearing-message timer and mail still on its way. Returns how many
    /// messages were deleted. The others keep their copies.
    pub async fn clear_history(&self, conversation: ConversationId) -> Result<u64, NodeError> {
        let (deleted, files) = self
            .request(|reply| Command::ClearHistory {
                conversation,
                reply,
            })
            .await??;
        self.remove_files(files).await;
        Ok(deleted)
    }

    /// The safety number this profile shares with `contact`.
    pub fn safety_number(&self, contact: &IdentityKey) -> SafetyNumber {
        SafetyNumber::between(&self.me, contact)
    }

    /// Marks the contact verified if `digits` is the safety number; returns whether it matched.
    pub async fn verify(&self, key: IdentityKey, digits: String) -> Result<bool, NodeError> {
        self.request(|reply| Command::Verify {
            key,
            proof: Proof::SafetyNumber(digits),
            reply,
        })
        .await?
    }

    /// Marks the contact verified if `link` (read from their QR code) is their card; returns whether it was.
    pub async fn verify_card(&self, key: IdentityKey, link: String) -> Result<bool, NodeError> {
        self.request(|reply| Command::Verify {
            key,
            proof: Proof::Card(link),
            reply,
        })
        .await?
    }

    // ---- Profile --------------------------------------------------------------------------------------

    pub async fn whoami(&self) -> Result<Whoami, NodeError> {
        self.request(|reply| Command::Whoami { reply }).await
    }

    /// Replaces the signed prekey and forgets every earlier one now (after a suspected compromise); the
    /// card is re-issued and returned in the new [`Whoami`]. Contacts without a running session need the
    /// new invite link.
    pub async fn revoke_prekeys(&self) -> Result<Whoami, NodeError> {
        self.request(|reply| Command::RevokePrekeys { reply })
            .await?
    }

    /// Changes this profile's name (checked as a new profile's is: a typed error for an empty or too long
    /// one) and sends the re-signed card to every accepted contact; answers with the new `Whoami`. A
    /// contact who renamed this profile on their side keeps their name for it (docs/protocol.md §12.3).
    pub async fn set_display_name(&self, name: String) -> Result<Whoami, NodeError> {
        self.request(|reply| Command::SetDisplayName { name, reply })
            .await?
    }

    /// Changes the password while the node runs, by re-wrapping the same store key (then compacting the
    /// file). It does not re-key: whoever holds a copy of the old key slot and the old password still
    /// opens what is written later. [`Profile::change_password`](crate::profile::Profile::change_password)
    /// re-keys, with the node stopped (the app and the CLI use that). The key derivations run on a
    /// blocking thread, never on the event loop; the loop only writes the new key slot.
    pub async fn change_password(&self, old: Password, new: Password) -> Result<(), NodeError> {
        let update = self
            .read(move |reader| Ok(reader.rewrap(&old, &new)?))
            .await?;
        self.request(|reply| Command::InstallKeySlot { update, reply })
            .await?
    }

    pub async fn network_settings(&self) -> Result<NetworkSettings, NodeError> {
        self.read(|reader| Ok(NetworkSettings::load_from(reader)?))
            .await
    }

    /// Saves network settings in the profile (they take effect on the next start).
    pub async fn save_network_settings(&self, settings: NetworkSettings) -> Result<(), NodeError> {
        self.request(|reply| Command::SaveSettings { settings, reply })
            .await?
    }

    /// Whether read receipts and typing indicators are on (`crate::privacy`).
    pub async fn privacy(&self) -> Result<PrivacySettings, NodeError> {
        self.read(|reader| Ok(PrivacySettings::load_from(reader)?))
            .await
    }

    /// Turns read receipts and typing indicators on or off, at once and durably. Off works both
    /// ways: none are sent and none are shown (a contact's read receipt then counts as delivered).
    pub async fn set_privacy(&self, settings: PrivacySettings) -> Result<(), NodeError> {
        self.request(|reply| Command::SetPrivacy { settings, reply })
            .await?
    }

    /// Which conversations are muted and pinned (`crate::prefs`).
    pub async fn conversation_prefs(&self) -> Result<ConversationPrefs, NodeError> {
        self.read(|reader| Ok(ConversationPrefs::load_from(reader)?))
            .await
    }

    /// Saves which conversations are muted and pinned, durably. Local only: nobody is told.
    pub async fn set_conversation_prefs(&self, prefs: ConversationPrefs) -> Result<(), NodeError> {
        self.request(|reply| Command::SetConversationPrefs { prefs, reply })
            .await?
    }

    /// The unsent drafts (`crate::drafts`).
    pub async fn drafts(&self) -> Result<Drafts, NodeError> {
        self.read(|reader| Ok(Drafts::load_from(reader)?)).await
    }

    /// Saves the unsent drafts, durably, in place of the saved ones. Local only: nobody is told.
    pub async fn set_drafts(&self, drafts: Drafts) -> Result<(), NodeError> {
        self.request(|reply| Command::SetDrafts { drafts, reply })
            .await?
    }

    // ---- Network --------------------------------------------------------------------------------------

    /// Dials an address.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        self.request(|reply| Command::Dial { addr, reply }).await?
    }

    pub async fn status(&self) -> Result<NetStatus, NodeError> {
        self.request(|reply| Command::Status { reply }).await
    }

    /// Stops the event loop and the swarm but keeps the profile open: returns it, to start a node again
    /// (with other settings) without asking for the password.
    pub async fn stop(&self) -> Result<Profile, NodeError> {
        self.files.stop().await;
        self.request(|reply| Command::Stop { reply })
            .await
            .map(|engine| Profile { engine: *engine })
    }

    /// Stops the event loop; the store is closed (and its lock released) when this returns.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.files.stop().await;
        self.request(|reply| Command::Shutdown { reply }).await
    }
}

/// How a contact is verified.
#[derive(Debug)]
pub(super) enum Proof {
    /// The safety number as the user typed it.
    SafetyNumber(String),
    /// Their invite link, read from their QR code.
    Card(String),
}
