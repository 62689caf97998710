//! Building a new profile from an archive.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufReader, Write};
use std::path::Path;

use tern_protocol::{Body, ContactCard, Identity, group_wire};
use tracing::warn;
use zeroize::Zeroizing;

use super::BACKUP_SETTINGS;
use super::code::RecoveryCode;
use super::export::{FILE_PARTS, temp_path};
use super::records::{RecordKind, read_record};
use super::stream::{OpeningReader, read_header};
use super::{BackupError, BackupSummary};
use crate::api::{ContactState, ConversationId};
use crate::engine::Engine;
use crate::files::FILES_DIR;
use crate::group::RestoredGroup;
use crate::store::{KdfParams, Password, STORE_FILE, Store, VaultItem};

/// Records written per commit while restoring: memory stays bounded by one batch, not the history.
pub const IMPORT_BATCH: usize = 1_000;

fn bad(what: &'static str, reason: impl ToString) -> BackupError {
    BackupError::BadRecord {
        what,
        reason: reason.to_string(),
    }
}

/// Refuses a destination that holds anything: only a missing or empty directory is restored into.
fn check_destination(dir: &Path) -> Result<(), BackupError> {
    if dir.join(STORE_FILE).try_exists()? {
        return Err(BackupError::ProfileExists(dir.to_owned()));
    }
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::ProfileExists(dir.to_owned()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(BackupError::ProfileExists(dir.to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Restores the archive at `archive`, sealed under `code`, into a new profile at `dir` sealed under
/// `password` (Argon2id with `kdf`). `dir` must be missing or an empty directory
/// ([`BackupError::ProfileExists`] otherwise); the code is checked before anything is written. The profile
/// is built beside `dir` and renamed into place only when the whole archive was read and authenticated,
/// so a failure leaves nothing behind. The new profile has queued its card to every accepted contact,
/// which starts a new session with each when it next goes online. Blocking (Argon2id, the whole archive).
pub fn restore(
    archive: &Path,
    code: &RecoveryCode,
    dir: &Path,
    password: &Password,
    kdf: KdfParams,
) -> Result<BackupSummary, BackupError> {
    check_destination(dir)?;
    let file = File::open(archive)?;
    let archive_bytes = file.metadata()?.len();
    let mut input = BufReader::with_capacity(1 << 16, file);
    let header = read_header(&mut input)?;
    let (reader, keys) = OpeningReader::new(input, &header, code)?;

    let tmp = temp_path(dir, rand::Rng::next_u64(&mut rand::rng()));
    let result = (|| {
        let store = Store::create(&tmp, password, kdf)?;
        let mut summary = fill(store, reader, header.version(), &keys.pickle, &tmp)?;
        summary.archive_bytes = archive_bytes;
        Ok(summary)
    })();
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // Checked again: something may have appeared meanwhile.
    if let Err(e) = check_destination(dir) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.is_dir() {
        fs::remove_dir(dir)?;
    }
    fs::rename(&tmp, dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)?.sync_all()?;
    }
    Ok(summary)
}

/// Reads every record into `store` (a new, empty profile at `root`) from an archive of `version`, then
/// queues the card to the contacts and asks an admin of each group to add this copy back.
fn fill<R: std::io::BufRead>(
    mut store: Store,
    mut input: OpeningReader<R>,
    version: u8,
    pickle_key: &tern_protocol::PickleKey,
    root: &Path,
) -> Result<BackupSummary, BackupError> {
    let mut body = Zeroizing::new(Vec::new());
    let mut summary = BackupSummary::default();

    let expect = |got: RecordKind, want: RecordKind| {
        if got == want {
            Ok(())
        } else {
            Err(BackupError::Damaged(
                "the archive's first records are not meta, identity, card",
            ))
        }
    };
    expect(read_record(&mut input, &mut body)?, RecordKind::Meta)?;
    if body.len() != 8 {
        return Err(bad("meta record", "not 8 bytes"));
    }
    expect(read_record(&mut input, &mut body)?, RecordKind::Identity)?;
    let identity = Identity::unpickle(pickle_key, &body).map_err(|e| bad("identity", e))?;
    let me = identity.key();
    expect(read_record(&mut input, &mut body)?, RecordKind::OwnCard)?;
    let card = ContactCard::decode(&body).map_err(|e| bad("own card", e))?;
    if card.key() != identity.key() {
        return Err(bad("own card", "it names another identity"));
    }
    {
        let pickle = Zeroizing::new(identity.pickle(&store.pickle_key(), &mut rand::rng()));
        let mut batch = store.batch()?;
        batch.vault_put(VaultItem::IdentityPickle, &pickle)?;
        batch.vault_put(VaultItem::OwnCard, card.encode())?;
        batch.commit()?;
    }
    drop(identity);
    let mut records = 3u64;

    let files_root = root.join(FILES_DIR);
    let mut allowed_files = BTreeSet::new();
    let mut open_part: Option<(Vec<u8>, File, u64)> = None;
    let mut batch = store.batch()?;
    let mut in_batch = 0usize;
    let mut groups = Vec::new();
    loop {
        let kind = read_record(&mut input, &mut body)?;
        match kind {
            RecordKind::Contact => {
                batch.import_contact(&body)?;
                summary.contacts += 1;
            }
            RecordKind::Setting => {
                let (&len, rest) = body.split_first().ok_or_else(|| bad("setting", "empty"))?;
                let len = usize::from(len);
                if rest.len() < len {
                    return Err(bad("setting", "its name is cut short"));
                }
                let name = std::str::from_utf8(&rest[..len]).map_err(|e| bad("setting", e))?;
                if !BACKUP_SETTINGS.contains(&name) {
                    return Err(bad("setting", "unknown setting"));
                }
                batch.setting_put(name, &rest[len..])?;
            }
            RecordKind::Message => {
                let (&unread, record) =
                    body.split_first().ok_or_else(|| bad("message", "empty"))?;
                batch.import_message(record, unread == 1)?;
                summary.messages += 1;
            }
            RecordKind::Attachment => {
                allowed_files.insert(batch.import_attachment(&body)?.0);
            }
            RecordKind::Timer => {
                batch.import_timer(&body)?;
            }
            RecordKind::Group if version >= 2 => {
                let group = RestoredGroup::decode(&body).map_err(|e| bad("group", e))?;
                if group.me != me {
                    return Err(bad("group", "it names another member as this profile"));
                }
                batch.put_group(&group.id, &body)?;
                // The group's timer goes on governing its history here (§18.3).
                if group.info.timer_s != 0 {
                    let timer = tern_protocol::timer::Timer {
                        seconds: group.info.timer_s,
                        version: 0,
                        id: [0; 16],
                    };
                    batch.set_timer(&ConversationId::of_group(&group.id), &timer)?;
                }
                summary.groups += 1;
                groups.push(group);
            }
            RecordKind::Group => {
                return Err(BackupError::Damaged(
                    "a group record in a version 1 archive",
                ));
            }
            RecordKind::FilePart => {
                write_file_part(
                    &body,
                    &files_root,
                    &allowed_files,
                    &mut open_part,
                    &mut summary,
                )?;
            }
            RecordKind::End => {
                let count: [u8; 8] = body
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad("end record", "not 8 bytes"))?;
                if u64::from_be_bytes(count) != records {
                    return Err(BackupError::Damaged(
                        "the archive's record count does not match",
                    ));
                }
                break;
            }
            RecordKind::Meta | RecordKind::Identity | RecordKind::OwnCard => {
                return Err(BackupError::Damaged("a header record appears twice"));
            }
        }
        records += 1;
        in_batch += 1;
        if in_batch == IMPORT_BATCH {
            batch.commit()?;
            batch = store.batch()?;
            in_batch = 0;
        }
    }
    batch.commit()?;
    if let Some((_, file, _)) = open_part.take() {
        file.sync_all()?;
    }
    input.finish()?;

    // No session came along: start new ones (docs/protocol.md §20.5).
    let mut engine = Engine::open_store(store)?;
    engine.announce_restored();
    for group in groups.iter().filter(|g| g.member) {
        ask_to_rejoin(&mut engine, group);
    }
    Ok(summary)
}

/// Queues a rejoin request (§18.4, kind 0x0103) for `group` to one of its admins who is an accepted
/// contact, after the card: its node adds this copy back with a new leaf (§20.5). A group with no such
/// admin waits until someone adds this copy again.
fn ask_to_rejoin(engine: &mut Engine, group: &RestoredGroup) {
    let accepted = |key: &tern_protocol::IdentityKey| matches!(engine.store().contact(key), Ok(Some(c)) if c.state == ContactState::Accepted);
    let Some(admin) = group.admin_to_ask(accepted) else {
        warn!("no admin of a restored group is a contact: it waits to be added again");
        return;
    };
    let request = match group_wire::encode_rejoin_request(&group.id) {
        Ok(request) => request,
        Err(e) => {
            warn!(error = %e, "cannot ask to rejoin a restored group");
            return;
        }
    };
    let body = Body::Unknown {
        kind: group_wire::KIND_REJOIN_REQUEST,
        data: request,
    };
    if let Err(e) = engine.send_control(&admin, body, true) {
        warn!(error = %e, "cannot queue a rejoin request");
    }
}

/// Appends a file-part record's bytes to its file under `files/`. Parts come in order: each starts where
/// the bytes written so far end, at 0 for a new part.
fn write_file_part(
    body: &[u8],
    root: &Path,
    allowed: &BTreeSet<[u8; 32]>,
    open_part: &mut Option<(Vec<u8>, File, u64)>,
    summary: &mut BackupSummary,
) -> Result<(), BackupError> {
    if body.len() < 32 + 1 + 8 {
        return Err(bad("file part", "too short"));
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&body[..32]);
    let part = body[32];
    let offset = u64::from_be_bytes(
        body[33..41]
            .try_into()
            .map_err(|_| bad("file part", "offset"))?,
    );
    let bytes = &body[41..];
    if !allowed.contains(&hash) {
        return Err(bad("file part", "no message names this file"));
    }
    let name = FILE_PARTS
        .iter()
        .find(|(p, _)| *p == part)
        .map(|(_, n)| *n)
        .ok_or_else(|| bad("file part", "unknown part"))?;
    let id = [&hash[..], &[part]].concat();
    let same = open_part.as_ref().is_some_and(|(open, _, _)| *open == id);
    if !same {
        if offset != 0 {
            return Err(bad("file part", "a part does not start at 0"));
        }
        if let Some((_, file, _)) = open_part.take() {
            file.sync_all()?;
        }
        let dir = root.join(tern_protocol::file::FileHash(hash).to_hex());
        if !dir.is_dir() {
            summary.files += 1;
        }
        fs::create_dir_all(&dir)?;
        let file = crate::redb_file::private_file_options()
            .write(true)
            .create_new(true)
            .open(dir.join(name))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => bad("file part", "a part appears twice"),
                _ => e.into(),
            })?;
        *open_part = Some((id, file, 0));
    }
    let Some((_, file, written)) = open_part.as_mut() else {
        return Err(bad("file part", "no open part"));
    };
    if offset != *written {
        return Err(bad("file part", "parts are out of order"));
    }
    file.write_all(bytes)?;
    *written += bytes.len() as u64;
    Ok(())
}
