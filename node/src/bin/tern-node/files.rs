//! `send-file`, `files` and `save-file`, and how file events print.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use tern_node::api::{Attachment, Event, MessageStatus};
use tern_node::node::Node;
use tern_protocol::MessageId;
use tern_protocol::file::FileLayout;
use tokio::sync::broadcast;

use crate::output::Out;
use crate::{Cli, EXIT_QUEUED, NetArgs, open_profile, profile_dir};

pub(crate) fn attachment_json(a: &Attachment) -> Value {
    json!({
        "name": a.name,
        "size": a.size,
        "media_type": a.media_type,
        "state": a.state.as_str(),
        "progress": a.progress,
        "metadata_stripped": a.metadata_stripped,
        "thumbnail_len": a.thumbnail.as_ref().map_or(0, Vec::len),
        "failure": a.failure,
    })
}

/// Sends a file and stays online until the recipient has fetched it (or `wait` seconds passed).
pub(crate) fn send_file(
    cli: &Cli,
    contact: &str,
    path: &Path,
    wait: u64,
    net: &NetArgs,
    out: Out,
) -> Result<ExitCode> {
    let profile = open_profile(cli)?;
    let contact = profile.find_contact(contact)?;
    let rt = crate::online::runtime()?;
    rt.block_on(async {
        let (node, mut events) = Node::start(profile, net.config(&profile_dir(cli)?))?;
        let sent = node
            .send_file(contact.conversation(), path)
            .await
            .with_context(|| format!("cannot send {}", path.display()))?;
        if sent.metadata_stripped {
            out.print(json!({"event": "metadata-stripped", "id": sent.message.id.to_string()}), || {
                "metadata-stripped: location and camera data were removed from the picture".into()
            });
        }
        let size = sent.message.attachment.as_ref().map_or(0, |a| a.size);
        let ciphertext = FileLayout::new(size).map_or(0, |l| l.ciphertext_len());
        let id = sent.message.id;
        // Fetched by the contact, or held by a mailbox server for them (§19.9): either way this process
        // may stop.
        let outcome = tokio::time::timeout(Duration::from_secs(wait), async {
            let mut delivered = false;
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Ok(Event::StatusChanged { id: got, status, .. })
                            if got == id && matches!(status, MessageStatus::Delivered | MessageStatus::Read) =>
                        {
                            delivered = true;
                        }
                        Ok(Event::FileHeld { id: got, .. }) if got == id => return Some("held"),
                        Ok(ref event @ Event::FileNotHeld { id: got, .. }) if got == id => {
                            print_file_event(out, event);
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tick.tick() => {}
                }
                // Served at least every ciphertext byte once: the recipient has it.
                if delivered && node.file_bytes_sent() >= ciphertext {
                    return Some("fetched");
                }
            }
        })
        .await
        .unwrap_or(None);
        node.shutdown().await?;
        let fetched = outcome.is_some();
        let status = outcome.unwrap_or("offered");
        out.print(
            json!({"id": id.to_string(), "to": contact.name, "status": status, "size": size, "metadata_stripped": sent.metadata_stripped}),
            || {
                if status == "held" {
                    format!(
                        "{}'s mailbox server holds the file: they fetch it from there",
                        contact.name
                    )
                } else if fetched {
                    format!("{} fetched the file", contact.name)
                } else {
                    format!(
                        "{} has not fetched the file within {wait}s: it is offered; they fetch it when both of you are online",
                        contact.name
                    )
                }
            },
        );
        Ok(if fetched {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_QUEUED)
        })
    })
}

/// Lists every file with its state.
pub(crate) fn list(cli: &Cli, out: Out) -> Result<()> {
    let profile = open_profile(cli)?;
    let contacts = profile.contacts()?;
    for entry in profile.files()? {
        let contact = entry
            .conversation
            .direct()
            .and_then(|k| contacts.iter().find(|c| c.key == k))
            .map_or_else(String::new, |c| c.name.clone());
        let mut value = attachment_json(&entry.attachment);
        value["id"] = json!(entry.message.to_string());
        value["contact"] = json!(contact);
        value["direction"] = json!(if entry.outgoing { "out" } else { "in" });
        let a = &entry.attachment;
        out.print(value, || {
            format!(
                "{}\t{} {}\t{}\t{} bytes\t{}",
                entry.message,
                if entry.outgoing { "->" } else { "<-" },
                contact,
                a.name,
                a.size,
                a.state.as_str()
            )
        });
    }
    Ok(())
}

/// Decrypts a received (or sent) file to `dest`.
pub(crate) fn save(cli: &Cli, id: &str, dest: &Path, overwrite: bool, out: Out) -> Result<()> {
    let id = MessageId::parse(id).ok_or_else(|| anyhow!("{id} is not a message id"))?;
    let profile = open_profile(cli)?;
    profile
        .save_file(&id, dest, overwrite)
        .with_context(|| format!("cannot save the file to {}", dest.display()))?;
    out.print(
        json!({"saved": dest.display().to_string(), "id": id.to_string()}),
        || format!("saved {}", dest.display()),
    );
    Ok(())
}

/// Prints a file event; `false` if `event` is not one.
pub(crate) fn print_file_event(out: Out, event: &Event) -> bool {
    match event {
        Event::FileProgress { id, received, size, .. } => out.print(
            json!({"event": "file-progress", "id": id.to_string(), "received": received, "size": size}),
            || format!("file {id}: {received} of {size} bytes"),
        ),
        Event::FileReceived { id, .. } => out.print(
            json!({"event": "file-received", "id": id.to_string()}),
            || format!("file {id} received; save it with `tern-node save-file {id} DEST`"),
        ),
        Event::FileFailed { id, state, reason, .. } => out.print(
            json!({"event": "file-failed", "id": id.to_string(), "state": state.as_str(), "reason": reason}),
            || format!("file {id} {}: {reason}", state.as_str()),
        ),
        Event::FileHeld { id, server, keep_secs, .. } => out.print(
            json!({"event": "file-held", "id": id.to_string(), "server": server.to_string(), "keep_secs": keep_secs}),
            || format!("file {id} is held by mailbox {server} for recipients who are offline"),
        ),
        Event::FileNotHeld { id, server, reason, .. } => out.print(
            json!({"event": "file-not-held", "id": id.to_string(), "server": server.to_string(), "reason": reason}),
            || format!("file {id} is not held by mailbox {server}: {reason}"),
        ),
        _ => return false,
    }
    true
}
