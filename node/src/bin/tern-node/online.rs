//! `send` and `run`: the profile online, events out, commands in (JSON lines on stdin).

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tern_node::api::{ConversationId, Event, MessageStatus};
use tern_node::node::Node;
use tern_protocol::MessageId;
use tokio::sync::broadcast;

use crate::output::{Out, print_event, print_request};
use crate::{Cli, EXIT_QUEUED, NetArgs, open_profile, profile_dir};

/// The longest command line `run` reads from stdin; a longer one is answered with an error and skipped.
pub(crate) const MAX_STDIN_LINE: usize = 256 * 1024;
/// Lines read from stdin and not yet handled.
const STDIN_QUEUE: usize = 64;

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tern-node")
        .build()
        .context("cannot start the async runtime")
}

pub(crate) fn send(
    cli: &Cli,
    contact: &str,
    text: &str,
    reply_to: Option<MessageId>,
    wait: u64,
    net: &NetArgs,
    out: Out,
) -> Result<ExitCode> {
    crate::check_text(text)?;
    let profile = open_profile(cli)?;
    let contact = profile.find_contact(contact)?;
    let rt = runtime()?;
    rt.block_on(async {
        let (node, mut events) = Node::start(profile, net.config(&profile_dir(cli)?))?;
        let message = match reply_to {
            Some(to) => {
                node.send_reply(contact.conversation(), text.to_owned(), to)
                    .await?
            }
            None => {
                node.send_text(contact.conversation(), text.to_owned())
                    .await?
            }
        };
        let delivered = tokio::time::timeout(Duration::from_secs(wait), async {
            loop {
                match events.recv().await {
                    Ok(Event::StatusChanged { id, status, .. })
                        if id == message.id
                            && matches!(
                                status,
                                MessageStatus::Delivered | MessageStatus::Read | MessageStatus::Sent
                            ) =>
                    {
                        return Some(status);
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        node.shutdown().await?;
        let status = match delivered {
            Some(MessageStatus::Sent) => "deposited",
            Some(_) => "delivered",
            None => "queued",
        };
        let delivered = delivered.is_some();
        out.print(
            json!({"id": message.id.to_string(), "to": contact.name, "status": status}),
            || {
                if status == "deposited" {
                    format!("{} is offline: deposited in their mailbox", contact.name)
                } else if delivered {
                    format!("delivered to {}", contact.name)
                } else {
                    format!(
                        "not delivered within {wait}s: kept in the outbox; it is sent the next time this profile is online"
                    )
                }
            },
        );
        Ok(if delivered {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_QUEUED)
        })
    })
}

/// A command read from stdin by `run`.
#[derive(serde::Deserialize, Debug)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
enum StdinCommand {
    Send {
        to: String,
        text: String,
    },
    /// Marks every unread message from the contact read.
    ReadReceipt {
        contact: String,
    },
    Typing {
        contact: String,
        typing: bool,
    },
    /// Sets the conversation's disappearing-message timer (`seconds`, 0: off); `contact` may also name a
    /// group.
    Timer {
        contact: String,
        seconds: u32,
    },
    Status,
    Quit,
}

/// One line of stdin, as far as it could be read.
#[derive(Debug, PartialEq, Eq)]
enum StdinLine {
    Text(String),
    NotUtf8,
    TooLong,
}

/// Reads one line of at most `max` bytes (the newline excluded); the rest of a longer line is skipped.
/// `None` at the end of input.
fn read_line(input: &mut impl BufRead, max: usize) -> std::io::Result<Option<StdinLine>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (&buf[..at], Some(at)),
            None => (buf, None),
        };
        if line.len() + chunk.len() > max {
            too_long = true;
        } else {
            line.extend_from_slice(chunk);
        }
        let used = found.map_or(buf.len(), |at| at + 1);
        input.consume(used);
        if found.is_some() {
            break;
        }
    }
    if too_long {
        return Ok(Some(StdinLine::TooLong));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(match String::from_utf8(line) {
        Ok(text) => StdinLine::Text(text),
        Err(_) => StdinLine::NotUtf8,
    }))
}

pub(crate) fn run(cli: &Cli, net: &NetArgs, out: Out) -> Result<()> {
    let profile = open_profile(cli)?;
    let rt = runtime()?;
    rt.block_on(async {
        let (node, mut events) = Node::start(profile, net.config(&profile_dir(cli)?))?;
        let me = node.peer_id().to_base58();
        out.print(json!({"event": "started", "peer_id": me}), || {
            format!("online as {me}")
        });
        let (line_tx, mut lines) = tokio::sync::mpsc::channel::<StdinLine>(STDIN_QUEUE);
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                while let Ok(Some(line)) = read_line(&mut stdin, MAX_STDIN_LINE) {
                    if line_tx.blocking_send(line).is_err() {
                        break;
                    }
                }
            })
            .context("cannot read stdin")?;
        let mut stdin_open = true;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(Event::ContactRequest { contact }) => {
                        // A request whose name looks like a contact's is said so, as `contact add` does.
                        let others = node.contacts().await.unwrap_or_default();
                        let lookalike = tern_node::names::lookalike(
                            &contact.name,
                            others.iter().filter(|c| c.key != contact.key).map(|c| c.name.as_str()),
                        );
                        print_request(out, &contact, lookalike.as_ref());
                    }
                    Ok(event) => print_event(out, &me, event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        out.print(json!({"event": "lagged", "missed": n}), || format!("(missed {n} events)"));
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                line = lines.recv(), if stdin_open => match line {
                    Some(StdinLine::Text(line)) if line.trim().is_empty() => {}
                    Some(StdinLine::Text(line)) => {
                        if !stdin_command(&node, out, &line).await {
                            break;
                        }
                    }
                    Some(StdinLine::NotUtf8) => out.print(
                        json!({"error": "a command line that is not UTF-8 was ignored"}),
                        || "error: a command line that is not UTF-8 was ignored".into(),
                    ),
                    Some(StdinLine::TooLong) => {
                        let text = format!("a command line over {MAX_STDIN_LINE} bytes was ignored");
                        out.print(json!({"error": text}), || format!("error: {text}"));
                    }
                    None => stdin_open = false,
                },
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        node.shutdown().await?;
        Ok(())
    })
}

async fn conversation(node: &Node, name: String) -> Result<(ConversationId, String)> {
    let contact = node.find_contact(name).await?;
    Ok((contact.conversation(), contact.name))
}

/// Runs one stdin command; returns false to stop.
async fn stdin_command(node: &Node, out: Out, line: &str) -> bool {
    if let Some(result) = crate::group_cmd::stdin_command(node, line).await {
        match result {
            Ok(value) => out.print(value.clone(), || value.to_string()),
            Err(error) => out.print(json!({"error": format!("{error:#}")}), || {
                format!("error: {error:#}")
            }),
        }
        return true;
    }
    let result: Result<Option<Value>> = async {
        match serde_json::from_str::<StdinCommand>(line).context("not a command")? {
            StdinCommand::Send { to, text } => {
                crate::check_text(&text)?;
                let (conversation, name) = conversation(node, to).await?;
                let message = node.send_text(conversation, text).await?;
                Ok(Some(
                    json!({"ok": "send", "id": message.id.to_string(), "to": name}),
                ))
            }
            StdinCommand::ReadReceipt { contact } => {
                let (conversation, name) = conversation(node, contact).await?;
                let read = node.mark_all_read(conversation).await?;
                Ok(Some(json!({"ok": "read-receipt", "contact": name, "count": read.len()})))
            }
            StdinCommand::Typing { contact, typing } => {
                let (conversation, _) = conversation(node, contact).await?;
                node.typing(conversation, typing).await?;
                Ok(Some(json!({"ok": "typing"})))
            }
            StdinCommand::Timer { contact, seconds } => {
                // A contact's name, else a group's name or short id (admins set a group's timer).
                let (conversation, name) = match conversation(node, contact.clone()).await {
                    Ok(found) => found,
                    Err(not_a_contact) => match node.find_group(&contact).await {
                        Ok(group) => (group.id, group.name),
                        Err(_) => return Err(not_a_contact),
                    },
                };
                let line = node.set_timer(conversation, seconds).await?;
                Ok(Some(json!({
                    "ok": "timer",
                    "contact": name,
                    "seconds": seconds,
                    "changed": line.is_some(),
                })))
            }
            StdinCommand::Status => {
                let status = node.status().await?;
                Ok(Some(json!({
                    "ok": "status",
                    "peer_id": status.peer_id.to_base58(),
                    "listen": status.listen_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "connected": status.connected_peers.len(),
                    "outbox": status.outbox_len,
                    "lan_only": status.lan_only,
                    "nat": format!("{:?}", status.nat),
                    "refusals": status.refusals,
                    "store": {
                        "failing": status.store.failing,
                        "failures": status.store.failures,
                        "reopens": status.store.reopens,
                    },
                    "relayed": status.relayed,
                    "published": status.published_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "contacts": status.contacts.iter().map(|c| json!({
                        "contact": c.name,
                        "reach": match c.reach {
                            tern_node::api::Reach::Direct => "direct",
                            tern_node::api::Reach::Relayed => "relayed",
                        },
                    })).collect::<Vec<_>>(),
                })))
            }
            StdinCommand::Quit => Ok(None),
        }
    }
    .await;
    match result {
        Ok(Some(value)) => {
            out.print(value.clone(), || match value["ok"].as_str() {
                Some("send") => format!("-> {}: queued", value["to"].as_str().unwrap_or("?")),
                Some("read-receipt") => format!("marked {} messages read", value["count"]),
                Some("typing") => "typing notice sent".into(),
                _ => value.to_string(),
            });
            true
        }
        Ok(None) => false,
        Err(error) => {
            out.print(json!({"error": format!("{error:#}")}), || {
                format!("error: {error:#}")
            });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{StdinLine, read_line};

    fn lines(input: &[u8], max: usize) -> Vec<StdinLine> {
        let mut reader = std::io::BufReader::with_capacity(4, input);
        std::iter::from_fn(|| read_line(&mut reader, max).ok().flatten()).collect()
    }

    #[test]
    fn a_bad_line_is_reported_and_reading_goes_on() {
        let got = lines(b"{\"cmd\":\"status\"}\n\xff\n{\"cmd\":\"quit\"}\n", 64);
        assert_eq!(
            got,
            vec![
                StdinLine::Text("{\"cmd\":\"status\"}".into()),
                StdinLine::NotUtf8,
                StdinLine::Text("{\"cmd\":\"quit\"}".into()),
            ]
        );
    }

    #[test]
    fn an_overlong_line_is_skipped_whole() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\nok\r\nlast");
        assert_eq!(
            lines(&input, 10),
            vec![
                StdinLine::TooLong,
                StdinLine::Text("ok".into()),
                StdinLine::Text("last".into()),
            ]
        );
    }
}
