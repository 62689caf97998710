//! What `tern-node` prints: a human line, or one JSON object per line with `--json`.

use std::io::Write;

use serde_json::{Value, json};
use tern_node::api::{Contact, Event, Message, MessageStatus, NatStatus, Reach};
use tern_node::names::Lookalike;
use tern_node::profile::Profile;

/// Where output goes: human lines or JSON lines.
#[derive(Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    pub(crate) fn print(&self, value: Value, human: impl FnOnce() -> String) {
        let line = if self.json {
            value.to_string()
        } else {
            human()
        };
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (a pipe whose reader left) is not worth a panic.
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

pub(crate) fn contact_json(profile: &Profile, c: &Contact) -> Value {
    json!({
        "name": c.name,
        "peer_id": c.peer_id(),
        "state": c.state.as_str(),
        "verified": c.verified,
        "key_changed": c.key_changed,
        "safety_number": profile.safety_number(&c.key).to_string(),
    })
}

fn message_json(contact: &str, m: &Message) -> Value {
    let mut value = json!({
        "contact": contact,
        "id": m.id.to_string(),
        "direction": if m.outgoing() { "out" } else { "in" },
        "sent_at_ms": m.sent_at_ms,
        "received_at_ms": m.received_at_ms,
        "status": m.status.as_str(),
        "text": m.text,
    });
    if let Some(to) = m.reply_to {
        value["reply_to"] = json!(to.to_string());
    }
    value
}

pub(crate) fn print_message(out: Out, contact: &str, m: &Message) {
    out.print(message_json(contact, m), || {
        let arrow = if m.outgoing() { "->" } else { "<-" };
        let reply = m
            .reply_to
            .map(|to| format!("(reply to {to}) "))
            .unwrap_or_default();
        format!(
            "{arrow} {contact}\t[{}]\t{reply}{}",
            m.status.as_str(),
            m.text
        )
    });
}

/// Prints a message request, with the warning when its name looks like an existing contact's.
pub(crate) fn print_request(out: Out, contact: &Contact, lookalike: Option<&Lookalike>) {
    let mut value =
        json!({"event": "contact-request", "name": contact.name, "peer_id": contact.peer_id()});
    if let Some(warning) = lookalike {
        value["looks_like"] = json!(warning.existing);
        value["warning"] = json!(warning.to_string());
    }
    out.print(value, || {
        let mut text = format!(
            "contact request from {} ({})",
            contact.name,
            contact.peer_id()
        );
        if let Some(warning) = lookalike {
            text.push_str(&format!("\nwarning: {warning}"));
        }
        text
    });
}

/// Prints one node event; `me` is this node's peer id (for full listening addresses).
pub(crate) fn print_event(out: Out, me: &str, event: Event) {
    match event {
        Event::Listening { address } => {
            let full = format!("{address}/p2p/{me}");
            out.print(json!({"event": "listening", "address": full}), || {
                format!("listening {full}")
            });
        }
        Event::MessageReceived {
            message,
            sender_name,
        } if message.conversation.is_group() => {
            let mut value = message_json(&sender_name, &message);
            value["event"] = json!("message");
            value["group"] = json!(message.conversation.short());
            value["sender"] = json!(sender_name);
            value["sender_peer_id"] = json!(message.sender.map(|k| k.peer_id()));
            value["system"] = json!(message.system);
            out.print(value, || {
                if message.system {
                    format!("[{}] {}", message.conversation.short(), message.text)
                } else {
                    format!("<- [{}] {sender_name}: {}", message.conversation.short(), message.text)
                }
            });
        }
        Event::MessageReceived {
            message,
            sender_name,
        } => {
            let mut value = message_json(&sender_name, &message);
            if let Some(a) = &message.attachment {
                value["event"] = json!("file-offered");
                value["file"] = crate::files::attachment_json(a);
                out.print(value, || {
                    format!("<- {sender_name}: file {} ({} bytes), message {}", a.name, a.size, message.id)
                });
                return;
            }
            value["event"] = json!("message");
            value["system"] = json!(message.system);
            out.print(value, || {
                if message.system {
                    format!("[{sender_name}] {}", message.text)
                } else {
                    format!("<- {sender_name}: {}", message.text)
                }
            });
        }
        Event::BackupWritten { path } => {
            let path = path.display().to_string();
            out.print(json!({"event": "backup-written", "path": path}), || {
                format!("automatic backup written: {path}")
            });
        }
        Event::MessagesExpired { conversation, ids } => {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            out.print(
                json!({"event": "expired", "conversation": conversation.short(), "ids": ids}),
                || format!("{} messages disappeared ({})", ids.len(), conversation.short()),
            );
        }
        Event::GroupJoined {
            group,
            added_by_name,
            ..
        } => {
            let mut value = crate::group_cmd::group_json(&group);
            value["event"] = json!("group-joined");
            value["added_by"] = json!(added_by_name);
            out.print(value, || {
                format!("{added_by_name} added you to {} ({})", group.name, group.id.short())
            });
        }
        Event::GroupUpdated { group } => {
            let mut value = crate::group_cmd::group_json(&group);
            value["event"] = json!("group-updated");
            out.print(value, || {
                format!("group {} ({}): {} members", group.name, group.id.short(), group.members)
            });
        }
        Event::GroupJoinRequested { request } => {
            crate::group_cmd::print_join_request(out, &request, "join-request")
        }
        Event::GroupJoinAnswered {
            admin_name, answer, ..
        } => crate::group_cmd::print_join_answer(out, &admin_name, answer),
        Event::ContactRequest { contact } => print_request(out, &contact, None),
        Event::ContactUpdated { contact } => out.print(
            json!({"event": "contact-updated", "name": contact.name, "peer_id": contact.peer_id()}),
            || format!("{} ({}) sent a new contact card", contact.name, contact.peer_id()),
        ),
        Event::KeyChanged { name, .. } => {
            out.print(json!({"event": "key-changed", "contact": name}), || {
                format!("WARNING: {name}'s key changed; verify them again")
            });
        }
        Event::StatusChanged {
            title: name,
            id,
            status,
            ..
        } => out.print(
            json!({"event": "status", "contact": name, "id": id.to_string(), "status": status.as_str()}),
            || format!("{name}: message {id} {}", status.as_str()),
        ),
        Event::RecipientsChanged {
            conversation,
            id,
            recipients,
        } => {
            let read = recipients
                .iter()
                .filter(|r| r.status == MessageStatus::Read)
                .count();
            let delivered = recipients
                .iter()
                .filter(|r| matches!(r.status, MessageStatus::Delivered | MessageStatus::Read))
                .count();
            let of = recipients.len();
            out.print(
                json!({"event": "recipients", "conversation": conversation.short(), "id": id.to_string(),
                       "delivered": delivered, "read": read, "members": of}),
                || format!("message {id}: delivered to {delivered} of {of}, read by {read}"),
            );
        }
        Event::Typing { name, typing, .. } => {
            out.print(json!({"event": "typing", "contact": name, "typing": typing}), || {
                format!("{name} {}", if typing { "is typing…" } else { "stopped typing" })
            });
        }
        Event::ContactOnline { name, online, .. } => {
            out.print(json!({"event": "online", "contact": name, "online": online}), || {
                format!("{name} is {}", if online { "online" } else { "offline" })
            });
        }
        Event::ContactReach { name, reach, .. } => {
            let how = match reach {
                Reach::Direct => "direct",
                Reach::Relayed => "relayed",
            };
            out.print(json!({"event": "reach", "contact": name, "reach": how}), || {
                format!("{name} is reached {how}")
            });
        }
        Event::AddressesPublished { addresses } => {
            let addrs: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            out.print(
                json!({"event": "addresses-published", "addresses": addrs}),
                || format!("address record published: {}", addrs.join(" ")),
            );
        }
        Event::Nat { status } => {
            let text = match &status {
                NatStatus::Public(addr) => format!("public at {addr}"),
                NatStatus::Private => "private (behind NAT: relays and hole punching)".into(),
                NatStatus::Unknown => "unknown".into(),
            };
            out.print(json!({"event": "nat", "status": text}), || {
                format!("reachability: {text}")
            });
        }
        Event::Peers { connected } => out.print(
            json!({"event": "peers", "connected": connected}),
            || format!("peers connected: {connected}"),
        ),
        Event::UnknownContent { name, kind, .. } => {
            out.print(json!({"event": "unknown-content", "contact": name, "kind": kind}), || {
                format!("{name} sent a message of kind {kind}, which this version cannot show")
            });
        }
        Event::Undecryptable { name, .. } => {
            out.print(json!({"event": "undecryptable", "contact": name}), || {
                format!("a message from {name} could not be decrypted; ask them to send it again")
            });
        }
        event => {
            crate::files::print_file_event(out, &event);
        }
    }
}
