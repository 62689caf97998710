//! The node's side of files: one [`FileWire`] per running node owns the [`FileService`] on the node's
//! swarm and fetches the files offered to this profile, beside the event loop (which only writes rows).
//!
//! A received offer (a `MessageReceived` event with an attachment), a contact coming online, a lagged
//! event stream and a periodic tick all lead to the same thing: every incoming file still waiting is
//! fetched from its sender, at most [`MAX_CONCURRENT_FETCHES`] at once, each resuming from what is on
//! disk. Progress is reported at most every [`crate::files::PROGRESS_INTERVAL`] per file.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libp2p::PeerId;
use tern_protocol::file::FileHash;
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::WeakNode;
use crate::api::{self, Attachment, ConversationId, FileState};
use crate::files::{
    AddedFile, FetchReport, FileService, FilesError, PROGRESS_INTERVAL, RETRY_INTERVAL,
    TransferError, TransferEvent,
};
use crate::store::AttachmentRecord;

/// Files fetched at once; others wait their turn (below the service's own bound, so it never refuses).
pub const MAX_CONCURRENT_FETCHES: usize = 4;
const _: () = assert!(MAX_CONCURRENT_FETCHES <= crate::files::MAX_FETCHING);
/// Files being offered to mailbox servers, or held by them, that are remembered (so that each deposit of the
/// same announcement does not ask again), and members' copies of group files' announcements; past it each
/// memory starts over.
pub const MAX_HOLDS_REMEMBERED: usize = 1024;
/// How often a mailbox node deletes the files it held for others whose time is up.
pub const HELD_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

fn file_error(e: FilesError) -> crate::node::NodeError {
    crate::node::NodeError::File(crate::api::FileOpError::Files(e))
}

struct Live {
    /// Which fetch task this entry is for (a resumed fetch gets a new one).
    generation: u64,
    conversation: ConversationId,
    id: tern_protocol::MessageId,
    size: u64,
    verified: u64,
    total: u64,
    last_report: Option<Instant>,
}

/// The node's file transfers.
/// A file encrypted into the store, ready to be announced.
pub(crate) struct Added {
    pub file: AddedFile,
    /// Location and camera metadata were removed before it was encrypted.
    pub metadata_stripped: bool,
    /// A preview of a picture, for the announcement.
    pub thumbnail: Option<Vec<u8>>,
}

pub(crate) struct FileWire {
    pub(crate) service: FileService,
    /// Weak, so that the node's event stream closes when the node stops.
    events: broadcast::WeakSender<api::Event>,
    live: Mutex<HashMap<FileHash, Live>>,
    slots: Arc<Semaphore>,
    generations: std::sync::atomic::AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// This profile's mailbox servers: where a file is looked for when its sender is away.
    mailboxes: Mutex<Vec<PeerId>>,
    /// (server, file) offers under way or held.
    holds: Mutex<HashSet<(PeerId, FileHash)>>,
    /// The 1:1 copies (outbox message ids) that carry a group file's announcement to members.
    copies: Mutex<HashMap<tern_protocol::MessageId, AttachmentRecord>>,
}

impl std::fmt::Debug for FileWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWire")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

fn plain_of(verified: u64, total: u64, size: u64) -> u64 {
    if total == 0 {
        return size;
    }
    u64::try_from(u128::from(verified) * u128::from(size) / u128::from(total)).unwrap_or(size)
}

impl FileWire {
    pub(crate) fn new(service: FileService, events: broadcast::Sender<api::Event>) -> Arc<Self> {
        Arc::new(Self {
            service,
            events: events.downgrade(),
            live: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
            generations: std::sync::atomic::AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
            mailboxes: Mutex::new(Vec::new()),
            holds: Mutex::new(HashSet::new()),
            copies: Mutex::new(HashMap::new()),
        })
    }

    /// Remembers that the 1:1 message `id` carries (part of) the group file `record`'s announcement.
    pub(crate) fn note_copy(&self, id: tern_protocol::MessageId, record: AttachmentRecord) {
        if let Ok(mut copies) = self.copies.lock() {
            if copies.len() >= MAX_HOLDS_REMEMBERED {
                copies.clear();
            }
            copies.insert(id, record);
        }
    }

    /// The group file whose announcement the 1:1 message `id` carries, if this node sent one.
    pub(crate) fn copy_of(&self, id: &tern_protocol::MessageId) -> Option<AttachmentRecord> {
        self.copies.lock().ok()?.get(id).cloned()
    }

    /// Holds files for others (this node serves as a mailbox, §19.9): fetched into `dir` by a fetch-only
    /// service, served by this node's own, deleted [`HoldLimits::keep_for`](crate::files::HoldLimits) after
    /// they were last asked for (swept every [`HELD_SWEEP_INTERVAL`]).
    pub(crate) fn hold_for_others(
        &self,
        dir: &Path,
        control: libp2p_stream::Control,
        limits: crate::files::HoldLimits,
    ) -> Result<(), crate::node::NodeError> {
        let store = crate::files::FileStore::open(dir).map_err(file_error)?;
        self.service.serve_also(store.clone());
        let fetcher = Arc::new(FileService::fetcher(store, control.clone()));
        let holder = Arc::new(
            crate::files::FileHolder::start(fetcher, control, limits)
                .map_err(|e| file_error(FilesError::Io(std::io::Error::other(e.to_string()))))?,
        );
        self.keep(tokio::spawn(async move {
            let mut tick = tokio::time::interval(HELD_SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                let holder = holder.clone();
                let swept =
                    tokio::task::spawn_blocking(move || holder.sweep(std::time::SystemTime::now()));
                if let Ok(deleted @ 1..) = swept.await {
                    debug!(deleted, "deleted expired files held for others");
                }
            }
        }));
        Ok(())
    }

    /// Where files are looked for when their sender is away (this profile's mailbox servers).
    pub(crate) fn set_mailboxes(&self, servers: Vec<PeerId>) {
        if let Ok(mut mailboxes) = self.mailboxes.lock() {
            *mailboxes = servers;
        }
    }

    /// Asks `server` to hold the file of `record` (one this profile sent), once per server and file;
    /// reports the outcome as [`api::Event::FileHeld`] or [`api::Event::FileNotHeld`]. A refusal is
    /// forgotten, so the next deposit there asks again.
    pub(crate) fn hold(self: &Arc<Self>, server: PeerId, record: AttachmentRecord) {
        let hash = record.announcement.hash;
        {
            let Ok(mut holds) = self.holds.lock() else {
                return;
            };
            if holds.len() >= MAX_HOLDS_REMEMBERED {
                holds.clear();
            }
            if !holds.insert((server, hash)) {
                return;
            }
        }
        let wire = self.clone();
        let task = tokio::spawn(async move {
            let (conversation, id) = (record.conversation, record.id);
            let result = wire
                .service
                .ask_hold(server, hash, record.announcement.size)
                .await;
            let event = match result {
                Ok(keep) => api::Event::FileHeld {
                    conversation,
                    id,
                    server,
                    keep_secs: keep.as_secs(),
                },
                Err(e) => {
                    debug!(%hash, %server, "a mailbox does not hold a file: {e}");
                    if let Ok(mut holds) = wire.holds.lock() {
                        holds.remove(&(server, hash));
                    }
                    api::Event::FileNotHeld {
                        conversation,
                        id,
                        server,
                        reason: e.to_string(),
                    }
                }
            };
            wire.emit(event);
        });
        self.keep(task);
    }

    /// Fetches a file from its sender, or, when the sender is away or no longer has it, from this
    /// profile's mailbox servers (which hold files for recipients who were offline, §19.9). The sender's
    /// outcome stands unless a mailbox server has the whole file.
    async fn fetch_from_any(
        &self,
        sender: PeerId,
        hash: FileHash,
        size: u64,
    ) -> Result<FetchReport, TransferError> {
        let first = self.service.fetch(sender, hash, size).await;
        if !matches!(
            first,
            Err(TransferError::NotFound
                | TransferError::GaveUp { .. }
                | TransferError::Stream(_)
                | TransferError::HolderBusy
                | TransferError::Protocol(_))
        ) {
            return first;
        }
        let mailboxes = self.mailboxes.lock().map(|m| m.clone()).unwrap_or_default();
        for server in mailboxes {
            match self.service.fetch(server, hash, size).await {
                Ok(report) => return Ok(report),
                Err(e @ (TransferError::Paused | TransferError::Cancelled)) => return Err(e),
                Err(e) => debug!(%hash, %server, "not fetched from a mailbox: {e}"),
            }
        }
        first
    }

    /// Starts the tasks that fetch what is offered to `node` (call once, after the node started).
    pub(crate) fn start(
        self: &Arc<Self>,
        node: WeakNode,
        events: broadcast::Receiver<api::Event>,
        span: tracing::Span,
    ) {
        let wire = self.clone();
        let progress = self.service.events();
        let driver = tokio::spawn(tracing::Instrument::instrument(
            drive(wire, node, progress, events),
            span,
        ));
        self.keep(driver);
    }

    fn keep(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    /// Stops every transfer and task, keeping what was received (the node is stopping).
    pub(crate) async fn stop(&self) {
        let tasks: Vec<JoinHandle<()>> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for task in &tasks {
            task.abort();
        }
        let hashes: Vec<FileHash> = self
            .live
            .lock()
            .map(|l| l.keys().copied().collect())
            .unwrap_or_default();
        for hash in hashes {
            let _ = self.pause(hash).await;
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Encrypts the file at `path` into the store. A picture is stripped of its metadata first and gets
    /// a preview (`files::thumb`), both from one read of it, off the async threads.
    pub(crate) async fn add(&self, path: &Path, media_type: &str) -> Result<Added, FilesError> {
        if crate::files::strip::strippable(media_type) {
            let size = tokio::fs::metadata(path).await?.len();
            if size <= crate::files::strip::MAX_STRIP_LEN {
                let bytes = tokio::fs::read(path).await?;
                return self.add_bytes(bytes, media_type).await;
            }
            warn!(
                "a picture over {} bytes is sent with its metadata and no preview",
                crate::files::strip::MAX_STRIP_LEN
            );
        }
        Ok(Added {
            file: self.service.add(path).await?,
            metadata_stripped: false,
            thumbnail: None,
        })
    }

    /// [`Self::add`] of a file held in memory: a picture (up to `MAX_STRIP_LEN`) is stripped of its
    /// metadata and previewed first, off the async threads.
    pub(crate) async fn add_bytes(
        &self,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<Added, FilesError> {
        let strip = crate::files::strip::strippable(media_type)
            && bytes.len() as u64 <= crate::files::strip::MAX_STRIP_LEN;
        let media_type = media_type.to_owned();
        let (bytes, thumbnail, metadata_stripped) = tokio::task::spawn_blocking(move || {
            if !strip {
                return (bytes, None, false);
            }
            let thumbnail = crate::files::thumb::make(&bytes, &media_type);
            match crate::files::strip::strip(bytes.clone(), &media_type) {
                Some(stripped) => (stripped, thumbnail, true),
                None => (bytes, thumbnail, false),
            }
        })
        .await
        .map_err(|_| FilesError::Corrupt("the strip task stopped"))?;
        Ok(Added {
            file: self.service.add_bytes(bytes).await?,
            metadata_stripped,
            thumbnail,
        })
    }

    /// Pauses a fetch, keeping what was received; returns once it has stopped (a `want` after it starts
    /// a new one).
    pub(crate) async fn pause(&self, hash: FileHash) -> Result<(), FilesError> {
        self.service.pause_fetch(hash).await?;
        if let Ok(mut live) = self.live.lock() {
            live.remove(&hash);
        }
        Ok(())
    }

    /// Drops a file: its fetch stops and its bytes are removed; one this node sent is withdrawn.
    pub(crate) async fn forget(&self, hash: FileHash, outgoing: bool) {
        let result = if outgoing {
            self.service.cancel_send(hash).await
        } else {
            self.service.cancel_fetch(hash).await
        };
        if let Ok(mut live) = self.live.lock() {
            live.remove(&hash);
        }
        if let Err(e) = result {
            warn!(%hash, "cannot remove a file: {e}");
        }
    }

    /// The attachment as the api shows it, with live progress.
    pub(crate) fn view(&self, record: &AttachmentRecord) -> Attachment {
        let mut view = record.view();
        self.fill(&mut view, &record.announcement.hash);
        view
    }

    /// Marks a waiting attachment downloading, with its progress, if a fetch of it runs.
    pub(crate) fn fill(&self, view: &mut Attachment, hash: &FileHash) {
        if view.state != FileState::Waiting || !self.service.is_fetching(hash) {
            return;
        }
        if let Ok(live) = self.live.lock()
            && let Some(l) = live.get(hash)
        {
            view.state = FileState::Downloading;
            view.progress = plain_of(l.verified, l.total, l.size);
        }
    }

    /// [`Self::fill`] for a message's attachment, found among the live transfers by message.
    pub(crate) fn fill_by_message(
        &self,
        view: &mut Attachment,
        conversation: &ConversationId,
        id: &tern_protocol::MessageId,
    ) {
        let hash = self.live.lock().ok().and_then(|live| {
            live.iter()
                .find(|(_, l)| l.conversation == *conversation && l.id == *id)
                .map(|(h, _)| *h)
        });
        if let Some(hash) = hash {
            self.fill(view, &hash);
        }
    }

    /// Fetches `record`'s file from its sender unless a fetch of it runs already.
    pub(crate) fn want(self: &Arc<Self>, node: &WeakNode, record: AttachmentRecord) {
        if record.outgoing || record.state != FileState::Waiting {
            return;
        }
        let hash = record.announcement.hash;
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let Ok(mut live) = self.live.lock() else {
                return;
            };
            if live.contains_key(&hash) {
                return;
            }
            live.insert(
                hash,
                Live {
                    generation,
                    conversation: record.conversation,
                    id: record.id,
                    size: record.announcement.size,
                    verified: 0,
                    total: 0,
                    last_report: None,
                },
            );
        }
        let wire = self.clone();
        let node = node.clone();
        let task = tokio::spawn(async move {
            let Some(peer) = sender_of(&node, &record)
                .await
                .and_then(|k| crate::api::peer_id_of(&k))
            else {
                if let Ok(mut live) = wire.live.lock() {
                    live.remove(&hash);
                }
                return;
            };
            let outcome = match wire.slots.clone().acquire_owned().await {
                Ok(_permit) => {
                    // Paused or cancelled while it waited for its turn: nothing to do.
                    let current = wire
                        .live
                        .lock()
                        .is_ok_and(|l| l.get(&hash).is_some_and(|l| l.generation == generation));
                    if !current {
                        return;
                    }
                    let a = &record.announcement;
                    wire.fetch_from_any(peer, a.hash, a.size).await
                }
                Err(_) => Err(TransferError::Cancelled),
            };
            let (conversation, id) = (record.conversation, record.id);
            let last = wire.live.lock().ok().and_then(|mut l| {
                if l.get(&hash).is_some_and(|l| l.generation == generation) {
                    l.remove(&hash)
                } else {
                    None
                }
            });
            let (state, reason) = match outcome {
                Ok(report) => {
                    debug!(%hash, wire_bytes = report.wire_bytes, "file fetched");
                    if let Some(l) = last {
                        wire.emit(api::Event::FileProgress {
                            conversation,
                            id,
                            received: l.size,
                            size: l.size,
                        });
                    }
                    (FileState::Complete, None)
                }
                // Paused or cancelled here: the user's command wrote the state already.
                Err(TransferError::Paused) => return,
                Err(TransferError::Cancelled) => (
                    FileState::Cancelled,
                    Some("the sender withdrew the file".to_owned()),
                ),
                Err(TransferError::NotFound) => (
                    FileState::Failed,
                    Some("the sender no longer has the file".to_owned()),
                ),
                Err(
                    e @ (TransferError::GaveUp { .. }
                    | TransferError::Stream(_)
                    | TransferError::HolderBusy
                    | TransferError::Protocol(_)
                    | TransferError::TooManyTransfers { .. }
                    | TransferError::AlreadyFetching),
                ) => {
                    // The sender is away or busy: tried again when it is back (or at the next tick).
                    debug!(%hash, "file fetch stopped for now: {e}");
                    return;
                }
                Err(e) => (FileState::Failed, Some(e.to_string())),
            };
            let Some(node) = node.upgrade() else {
                return;
            };
            // A cancel by the user may have raced the end: the user's state wins.
            if let Ok(Some(current)) = node
                .read_attachment(conversation, id)
                .await
                .map(|r| r.map(|r| r.state))
                && current != FileState::Waiting
            {
                return;
            }
            match node
                .set_file_state(conversation, id, state, reason.clone())
                .await
            {
                Ok(_) => {}
                Err(e) => {
                    warn!("cannot record a file's state: {e}");
                    return;
                }
            }
            match reason {
                None => wire.emit(api::Event::FileReceived { conversation, id }),
                Some(reason) => wire.emit(api::Event::FileFailed {
                    conversation,
                    id,
                    state,
                    reason,
                }),
            }
        });
        self.keep(task);
    }

    fn emit(&self, event: api::Event) {
        if let Some(events) = self.events.upgrade() {
            let _ = events.send(event);
        }
    }

    fn progress(&self, hash: FileHash, verified: u64, total: u64) {
        let event = {
            let Ok(mut live) = self.live.lock() else {
                return;
            };
            let Some(l) = live.get_mut(&hash) else {
                return;
            };
            l.verified = verified;
            l.total = total;
            let now = Instant::now();
            if l.last_report.is_some_and(|at| now - at < PROGRESS_INTERVAL) || verified >= total {
                return;
            }
            l.last_report = Some(now);
            api::Event::FileProgress {
                conversation: l.conversation,
                id: l.id,
                received: plain_of(verified, total, l.size),
                size: l.size,
            }
        };
        self.emit(event);
    }

    /// Fetches every incoming file still waiting (of `only` that contact, if given).
    async fn want_all(self: &Arc<Self>, weak: &WeakNode, only: Option<ConversationId>) {
        let Some(node) = weak.upgrade() else {
            return;
        };
        let records = node.attachment_records().await;
        drop(node);
        match records {
            Ok(records) => {
                for record in records {
                    if only.is_none_or(|c| c == record.conversation) {
                        self.want(weak, record);
                    }
                }
            }
            Err(e) => debug!("cannot list files: {e}"),
        }
    }
}

/// Who offered `record`'s file: the contact of a 1:1 conversation, the member who wrote the message in a
/// group (§19.10).
async fn sender_of(
    node: &WeakNode,
    record: &AttachmentRecord,
) -> Option<tern_protocol::IdentityKey> {
    if let Some(contact) = record.conversation.direct() {
        return Some(contact);
    }
    let (conversation, id) = (record.conversation, record.id);
    let node = node.upgrade()?;
    let message = node
        .read(move |reader| Ok(reader.message(&conversation, &id)?))
        .await;
    message.ok().flatten().and_then(|m| m.sender)
}

async fn drive(
    wire: Arc<FileWire>,
    node: WeakNode,
    mut progress: broadcast::Receiver<TransferEvent>,
    mut events: broadcast::Receiver<api::Event>,
) {
    let mut tick = tokio::time::interval(RETRY_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => wire.want_all(&node, None).await,
            event = progress.recv() => match event {
                Ok(TransferEvent::Progress { hash, verified, total }) => {
                    wire.progress(hash, verified, total);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            event = events.recv() => match event {
                Ok(api::Event::MessageReceived { message, .. }) if message.attachment.is_some() => {
                    let Some(strong) = node.upgrade() else { return };
                    let record = strong.read_attachment(message.conversation, message.id).await;
                    drop(strong);
                    if let Ok(Some(record)) = record {
                        wire.want(&node, record);
                    }
                }
                Ok(api::Event::ContactOnline { contact, online: true, .. }) => {
                    wire.want_all(&node, Some(ConversationId::Direct(contact))).await;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => wire.want_all(&node, None).await,
                // Every handle and the event loop are gone: the node stopped.
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
