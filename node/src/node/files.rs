//! Files on the [`Node`] handle (docs/protocol.md §19): sending one (encrypted into the file store off the
//! loop, then offered through the ordinary 1:1 message path, or as a group message, §19.10), pausing, resuming, cancelling, saving and
//! deleting. The loop only writes rows (`FilesCommand`); bytes move in `crate::files`, beside it.

use std::path::{Path, PathBuf};

use super::file_wire::Added;
use super::*;
use crate::api::{ConversationId, FileEntry, FileOpError, FileState, SentFile};
use crate::store::AttachmentRecord;
use tern_protocol::file::{FileAnnouncement, MAX_FILE_SIZE};

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// What the loop writes for files.
pub(super) enum FilesCommand {
    Send {
        to: IdentityKey,
        announcement: FileAnnouncement,
        metadata_stripped: bool,
        reply: Reply<api::Message>,
    },
    /// To every member of a group (§19.10).
    GroupSend {
        group: ConversationId,
        announcement: FileAnnouncement,
        metadata_stripped: bool,
        reply: Reply<api::Message>,
    },
    SetState {
        conversation: ConversationId,
        id: MessageId,
        state: FileState,
        /// Why it stopped, kept with a failed or cancelled file.
        failure: Option<String>,
        reply: Reply<Option<AttachmentRecord>>,
    },
    Delete {
        conversation: ConversationId,
        id: MessageId,
        reply: Reply<Option<AttachmentRecord>>,
    },
}

impl EventLoop {
    pub(super) fn handle_files(&mut self, command: FilesCommand) {
        match command {
            FilesCommand::Send {
                to,
                announcement,
                metadata_stripped,
                reply,
            } => match self.engine.send_file(&to, announcement, metadata_stripped) {
                Ok((message, entry)) => {
                    let _ = reply.send(Ok(message));
                    self.deliver_now(entry);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            FilesCommand::GroupSend {
                group,
                announcement,
                metadata_stripped,
                reply,
            } => {
                let result = self.group_send_file(group, announcement, metadata_stripped);
                let _ = reply.send(result);
            }
            FilesCommand::SetState {
                conversation,
                id,
                state,
                failure,
                reply,
            } => {
                let result = self
                    .engine
                    .set_file_state(&conversation, &id, state, failure);
                let _ = reply.send(result.map_err(NodeError::from));
            }
            FilesCommand::Delete {
                conversation,
                id,
                reply,
            } => {
                let result = self.engine.delete_message(&conversation, &id);
                let _ = reply.send(result.map_err(NodeError::from));
            }
        }
    }
}

impl EventLoop {
    /// Offers a file to a group (§19.10): the announcement as one application message of the group, stored
    /// with its attachment row and fanned out like a text. This profile's mailbox servers are asked to hold
    /// the file, so that members who are offline can fetch it from there: one upload serves every member.
    fn group_send_file(
        &mut self,
        conversation: ConversationId,
        announcement: FileAnnouncement,
        metadata_stripped: bool,
    ) -> Result<api::Message, NodeError> {
        let key = super::groups::group_key(&conversation)?;
        let now = now_ms();
        let mut rng = rand::make_rng::<rand::rngs::StdRng>();
        let content = tern_protocol::Content {
            id: MessageId::new_v7(now, &mut rng),
            sent_at_ms: now,
            body: tern_protocol::Body::File(announcement.clone()),
        };
        let group = self.group_mut(&key)?;
        let bytes = group.send(&content)?;
        let members = group.members()?;
        let record =
            AttachmentRecord::sent(conversation, content.id, announcement, metadata_stripped);
        let message = api::Message {
            id: content.id,
            conversation,
            sender: None,
            system: false,
            attachment: Some(record.view()),
            sent_at_ms: now,
            received_at_ms: now,
            text: String::new(),
            status: api::MessageStatus::Sent,
            recipients: Vec::new(),
            reply_to: None,
        };
        let queued = self.group_mail_queue(&bytes, None);
        if let Err(e) = self.save_group_with(key, vec![message.clone()], vec![record.clone()]) {
            self.group_mail_withdraw(&bytes);
            return Err(e);
        }
        self.groups.first_sight(&bytes);
        self.fanout_file = Some(record.clone());
        self.group_send_queued(&bytes, queued, &members, &[], &[]);
        self.fanout_file = None;
        if let Some(wire) = self.files.clone() {
            for server in self.mailbox_servers() {
                wire.hold(server, record.clone());
            }
        }
        Ok(message)
    }
}

/// The media type the announcement names, from the file name's extension (empty if unknown).
pub fn media_type_of(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "zip" => "application/zip",
        _ => "",
    }
}

fn file_err(e: impl Into<FileOpError>) -> NodeError {
    NodeError::File(e.into())
}

impl Node {
    async fn files_command<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> FilesCommand,
    ) -> Result<T, NodeError> {
        self.request(|reply| Command::Files(make(reply))).await?
    }

    async fn attachment_of(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<AttachmentRecord, NodeError> {
        self.read(move |reader| Ok(reader.attachment(&conversation, &id)?))
            .await?
            .ok_or(file_err(FileOpError::NoFile))
    }

    pub(crate) async fn set_file_state(
        &self,
        conversation: ConversationId,
        id: MessageId,
        state: FileState,
        failure: Option<String>,
    ) -> Result<Option<AttachmentRecord>, NodeError> {
        self.files_command(|reply| FilesCommand::SetState {
            conversation,
            id,
            state,
            failure,
            reply,
        })
        .await
    }

    /// Every message's file as stored.
    pub(crate) async fn attachment_records(&self) -> Result<Vec<AttachmentRecord>, NodeError> {
        self.read(|reader| Ok(reader.attachments()?)).await
    }

    /// Sends the file at `path` to a conversation, 1:1 or a group (§19.10): strips location and camera metadata from a JPEG,
    /// PNG or WebP picture, encrypts the file into this profile's file store (streamed, never read whole
    /// into memory), and queues the message that offers it like a text (retried, deposited with mailboxes,
    /// acknowledged; in a group, fanned out like a group text). The recipient fetches the bytes from this node
    /// when it can reach it, or from a mailbox server that holds them (§19.9).
    pub async fn send_file(
        &self,
        conversation: impl Into<ConversationId>,
        path: impl AsRef<Path>,
    ) -> Result<SentFile, NodeError> {
        let conversation = conversation.into();
        let path = path.as_ref().to_path_buf();
        let meta = tokio::fs::metadata(&path).await.map_err(|e| {
            file_err(FileOpError::Unreadable {
                path: path.clone(),
                reason: e.to_string(),
            })
        })?;
        if !meta.is_file() {
            return Err(file_err(FileOpError::NotAFile(path)));
        }
        if meta.len() > MAX_FILE_SIZE {
            return Err(file_err(FileOpError::TooLarge {
                size: meta.len(),
                max: MAX_FILE_SIZE,
            }));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let media_type = media_type_of(&name).to_owned();
        let added = self.files.add(&path, &media_type).await.map_err(file_err)?;
        self.offer(conversation, name, media_type, added).await
    }

    /// [`Self::send_file`] of `bytes` held in memory (a picture pasted from the clipboard, say), named
    /// `name` (its extension gives the media type). Nothing of it is written outside the encrypted store.
    pub async fn send_file_bytes(
        &self,
        conversation: impl Into<ConversationId>,
        name: String,
        bytes: Vec<u8>,
    ) -> Result<SentFile, NodeError> {
        let size = bytes.len() as u64;
        if size > MAX_FILE_SIZE {
            return Err(file_err(FileOpError::TooLarge {
                size,
                max: MAX_FILE_SIZE,
            }));
        }
        let media_type = media_type_of(&name).to_owned();
        let added = self
            .files
            .add_bytes(bytes, &media_type)
            .await
            .map_err(file_err)?;
        self.offer(conversation.into(), name, media_type, added)
            .await
    }

    /// Announces a file added to the store in `conversation`; on failure the file leaves the store.
    async fn offer(
        &self,
        conversation: ConversationId,
        name: String,
        media_type: String,
        added: Added,
    ) -> Result<SentFile, NodeError> {
        let Added {
            file: added,
            metadata_stripped,
            thumbnail,
        } = added;
        let announcement = FileAnnouncement {
            name,
            size: added.size,
            media_type,
            key: added.key,
            hash: added.hash,
            thumbnail,
        };
        if let Err(e) = announcement.encode() {
            self.files.forget(added.hash, true).await;
            return Err(file_err(FileOpError::BadName(e.to_string())));
        }
        let result = match conversation.direct() {
            Some(to) => {
                self.files_command(|reply| FilesCommand::Send {
                    to,
                    announcement,
                    metadata_stripped,
                    reply,
                })
                .await
            }
            None => {
                self.files_command(|reply| FilesCommand::GroupSend {
                    group: conversation,
                    announcement,
                    metadata_stripped,
                    reply,
                })
                .await
            }
        };
        match result {
            Ok(message) => Ok(SentFile {
                message,
                metadata_stripped,
            }),
            Err(e) => {
                self.files.forget(added.hash, true).await;
                Err(e)
            }
        }
    }

    /// Every message with a file, sent and received, with where each stands.
    pub async fn files(&self) -> Result<Vec<FileEntry>, NodeError> {
        let records = self.attachment_records().await?;
        Ok(records
            .into_iter()
            .map(|r| FileEntry {
                conversation: r.conversation,
                message: r.id,
                outgoing: r.outgoing,
                attachment: self.files.view(&r),
            })
            .collect())
    }

    /// Decrypts a complete file to `dest`. Refuses to replace an existing file unless `overwrite`.
    pub async fn save_file(
        &self,
        conversation: ConversationId,
        id: MessageId,
        dest: impl AsRef<Path>,
        overwrite: bool,
    ) -> Result<(), NodeError> {
        let dest: PathBuf = dest.as_ref().to_path_buf();
        let record = self.attachment_of(conversation, id).await?;
        if record.state != FileState::Complete {
            return Err(file_err(FileOpError::NotComplete(record.state)));
        }
        if !overwrite && tokio::fs::try_exists(&dest).await.unwrap_or(true) {
            return Err(file_err(FileOpError::DestinationExists(dest)));
        }
        let a = record.announcement;
        self.files
            .service
            .export(a.hash, a.size, a.key, dest)
            .await
            .map_err(file_err)
    }

    /// A complete file's contents in memory, if it is at most `max` bytes (the app shows a picture from
    /// them; they are zeroed when dropped). [`FileOpError::TooLarge`] past `max`.
    pub async fn file_contents(
        &self,
        conversation: ConversationId,
        id: MessageId,
        max: u64,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, NodeError> {
        let record = self.attachment_of(conversation, id).await?;
        if record.state != FileState::Complete {
            return Err(file_err(FileOpError::NotComplete(record.state)));
        }
        let a = record.announcement;
        if a.size > max {
            return Err(file_err(FileOpError::TooLarge { size: a.size, max }));
        }
        self.files
            .service
            .read(a.hash, a.size, a.key)
            .await
            .map_err(file_err)
    }

    /// Pauses fetching a file; what was received stays and [`Self::resume_file`] goes on from it.
    pub async fn pause_file(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<(), NodeError> {
        let record = self.attachment_of(conversation, id).await?;
        if record.outgoing || record.state != FileState::Waiting {
            return Err(file_err(FileOpError::WrongState {
                action: "paused",
                state: record.state,
            }));
        }
        self.set_file_state(conversation, id, FileState::Paused, None)
            .await?;
        self.files
            .pause(record.announcement.hash)
            .await
            .map_err(file_err)
    }

    /// Fetches a paused (or failed) file again, from what is on disk.
    pub async fn resume_file(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<(), NodeError> {
        let record = self.attachment_of(conversation, id).await?;
        if record.outgoing || !matches!(record.state, FileState::Paused | FileState::Failed) {
            return Err(file_err(FileOpError::WrongState {
                action: "resumed",
                state: record.state,
            }));
        }
        if let Some(record) = self
            .set_file_state(conversation, id, FileState::Waiting, None)
            .await?
        {
            self.files.want(&self.downgrade(), record);
        }
        Ok(())
    }

    /// Cancels a file: a fetch stops and what was received is removed; a file this profile sent is
    /// withdrawn (the recipient hears "cancelled") and its ciphertext removed. The message stays.
    pub async fn cancel_file(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<(), NodeError> {
        let record = self.attachment_of(conversation, id).await?;
        if record.state == FileState::Cancelled {
            return Ok(());
        }
        self.set_file_state(conversation, id, FileState::Cancelled, None)
            .await?;
        self.files
            .forget(record.announcement.hash, record.outgoing)
            .await;
        Ok(())
    }

    /// Deletes a message from its conversation; a file it offers is removed from the profile directory
    /// (and withdrawn from the recipient, if this profile sent it).
    pub async fn delete_message(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<(), NodeError> {
        let record = self
            .files_command(|reply| FilesCommand::Delete {
                conversation,
                id,
                reply,
            })
            .await?;
        if let Some(record) = record {
            self.files
                .forget(record.announcement.hash, record.outgoing)
                .await;
        }
        Ok(())
    }

    /// Piece bytes this node has served to receivers of its files since it started.
    pub fn file_bytes_sent(&self) -> u64 {
        self.files.service.bytes_sent()
    }
}

/// Opens the profile's file store and serves it on the node's swarm.
pub(super) fn start_files(
    dir: &Path,
    control: libp2p_stream::Control,
    events: broadcast::Sender<api::Event>,
) -> Result<std::sync::Arc<super::file_wire::FileWire>, NodeError> {
    let store = crate::files::FileStore::open(dir).map_err(file_err)?;
    let service = crate::files::FileService::new(store, control).map_err(|e| {
        file_err(FileOpError::Files(crate::files::FilesError::Io(
            std::io::Error::other(e.to_string()),
        )))
    })?;
    Ok(super::file_wire::FileWire::new(service, events))
}

impl Node {
    /// A message's file as stored, if it has one.
    pub(crate) async fn read_attachment(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<Option<AttachmentRecord>, NodeError> {
        self.read(move |reader| Ok(reader.attachment(&conversation, &id)?))
            .await
    }

    /// A handle that does not keep the node running (the event loop stops when the last [`Node`] is
    /// dropped): what the file tasks hold.
    pub(crate) fn downgrade(&self) -> WeakNode {
        WeakNode {
            commands: self.commands.downgrade(),
            events: self.events.downgrade(),
            peer_id: self.peer_id,
            me: self.me,
            files: std::sync::Arc::downgrade(&self.files),
        }
    }

    /// Live progress for the messages' files being fetched.
    pub(super) fn fill_files(&self, messages: &mut [api::Message]) {
        for message in messages {
            if let Some(attachment) = &mut message.attachment
                && attachment.state == FileState::Waiting
            {
                // The row does not name the hash: look it up among the live transfers by message.
                self.files
                    .fill_by_message(attachment, &message.conversation, &message.id);
            }
        }
    }

    pub(super) async fn files_of(
        &self,
        conversation: ConversationId,
    ) -> Result<Vec<AttachmentRecord>, NodeError> {
        Ok(self
            .attachment_records()
            .await?
            .into_iter()
            .filter(|r| r.conversation == conversation)
            .collect())
    }

    pub(super) async fn remove_files(&self, records: Vec<AttachmentRecord>) {
        for record in records {
            self.files
                .forget(record.announcement.hash, record.outgoing)
                .await;
        }
    }
}

/// A [`Node`] that does not keep it running; [`WeakNode::upgrade`] while it runs.
#[derive(Clone, Debug)]
pub(crate) struct WeakNode {
    commands: mpsc::WeakSender<Command>,
    events: broadcast::WeakSender<api::Event>,
    peer_id: PeerId,
    me: IdentityKey,
    files: std::sync::Weak<super::file_wire::FileWire>,
}

impl WeakNode {
    /// The node, if some handle still keeps it running.
    pub(crate) fn upgrade(&self) -> Option<Node> {
        Some(Node {
            commands: self.commands.upgrade()?,
            events: self.events.upgrade()?,
            peer_id: self.peer_id,
            me: self.me,
            files: self.files.upgrade()?,
        })
    }
}
