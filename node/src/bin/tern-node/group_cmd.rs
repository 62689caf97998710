//! `tern-node group …`: groups from the command line (docs/protocol.md §18), and the same operations as
//! `run`'s stdin commands (`group-create`, `group-send`, …). Each subcommand takes the profile online for the
//! operation, since invitations and commits travel between nodes.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{Value, json};
use tern_node::api::{
    Event, GroupLinkInfo, GroupMember, GroupSummary, JoinAnswer, JoinRequestInfo,
};
use tern_node::node::Node;
use tokio::sync::broadcast;

use crate::output::Out;
use crate::{Cli, EXIT_QUEUED, NetArgs, open_profile, profile_dir};

/// How often a subcommand looks whether its outbox has emptied.
const OUTBOX_POLL: Duration = Duration::from_millis(200);

#[derive(Subcommand, Debug)]
pub(crate) enum GroupCommand {
    /// Create a group and invite contacts; waits until they joined.
    Create {
        name: String,
        members: Vec<String>,
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// List this profile's groups.
    List,
    /// Show a group's members and roles.
    Members { group: String },
    /// Invite a contact (admins); waits until it joined.
    Add {
        group: String,
        member: String,
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Remove a member (admins).
    Remove {
        group: String,
        member: String,
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Leave a group (an admin's node carries it out).
    Leave {
        group: String,
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Rename a group (admins).
    Rename {
        group: String,
        name: String,
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Send a text to a group.
    Send {
        group: String,
        text: String,
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Make a link to a group (admins): anyone holding it joins while your node is online; with
    /// --approve, each request waits for you (`group requests`, `group approve`).
    Link {
        group: String,
        #[arg(long)]
        approve: bool,
    },
    /// List a group's live links, with their ids.
    Links { group: String },
    /// Revoke a group link by its id (or the link itself): nobody joins with it any more.
    Revoke { group: String, id: String },
    /// Join a group with a `tern-group:` link; waits until the admin's node added you or answered.
    Join {
        link: String,
        #[arg(long, default_value_t = 30)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// The join requests waiting for your approval.
    Requests,
    /// Approve a join request (adds them to the group).
    Approve {
        group: String,
        member: String,
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Decline a join request.
    Decline {
        group: String,
        member: String,
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
}

fn link_json(l: &GroupLinkInfo) -> Value {
    json!({"id": l.id, "group": l.group.short(), "link": l.link, "approval": l.approval})
}

fn print_link(out: Out, l: &GroupLinkInfo) {
    out.print(link_json(l), || {
        let mode = if l.approval { "approval" } else { "open" };
        format!("{}\t{mode}\t{}", l.id, l.link)
    });
}

pub(crate) fn join_request_json(r: &JoinRequestInfo) -> Value {
    json!({"group": r.group.short(), "group_name": r.group_name, "name": r.name, "peer_id": r.from.peer_id()})
}

pub(crate) fn print_join_request(out: Out, r: &JoinRequestInfo, event: &str) {
    let mut value = join_request_json(r);
    value["event"] = json!(event);
    out.print(value, || {
        format!(
            "{} ({}) asks to join {} ({}): `group approve {} {}` or `group decline …`",
            r.name,
            r.from.peer_id(),
            r.group_name,
            r.group.short(),
            r.group.short(),
            r.from.peer_id()
        )
    });
}

fn answer_word(answer: JoinAnswer) -> &'static str {
    match answer {
        JoinAnswer::Waiting => "waiting",
        JoinAnswer::Refused => "refused",
        JoinAnswer::Declined => "declined",
    }
}

pub(crate) fn print_join_answer(out: Out, admin_name: &str, answer: JoinAnswer) {
    out.print(
        json!({"event": "join-answer", "admin": admin_name, "answer": answer_word(answer)}),
        || match answer {
            JoinAnswer::Waiting => format!("{admin_name} will approve or decline your request"),
            JoinAnswer::Refused => {
                format!("{admin_name}'s node refused the link: it was revoked or no longer leads to a group")
            }
            _ => format!("{admin_name} declined your request to join"),
        },
    );
}

pub(crate) fn group_json(g: &GroupSummary) -> Value {
    json!({
        "group": g.id.short(),
        "name": g.name,
        "members": g.members,
        "role": g.role.as_str(),
        "active": g.active,
        "rejoining": g.rejoining,
        "epoch": g.epoch,
    })
}

fn member_json(m: &GroupMember) -> Value {
    json!({
        "name": m.name,
        "peer_id": m.key.peer_id(),
        "role": m.role.as_str(),
        "contact": m.contact,
    })
}

fn print_group(out: Out, g: &GroupSummary) {
    out.print(group_json(g), || {
        format!(
            "{}\t{}\t{} members\t{}{}",
            g.id.short(),
            g.name,
            g.members,
            g.role.as_str(),
            match (g.active, g.rejoining) {
                (true, _) => "",
                (false, true) => "\t(restored: waiting to be added back)",
                (false, false) => "\t(left)",
            }
        )
    });
}

fn no_net() -> NetArgs {
    NetArgs {
        listen: Vec::new(),
        peer: Vec::new(),
        bootstrap: Vec::new(),
        mailbox_node: Vec::new(),
        lan_only: true,
        mailbox: false,
        no_mdns: true,
        local_addresses: false,
    }
}

pub(crate) fn run(cli: &Cli, command: &GroupCommand, out: Out) -> Result<ExitCode> {
    let profile = open_profile(cli)?;
    let net = match command {
        GroupCommand::List
        | GroupCommand::Members { .. }
        | GroupCommand::Link { .. }
        | GroupCommand::Links { .. }
        | GroupCommand::Revoke { .. }
        | GroupCommand::Requests => no_net(),
        GroupCommand::Create { net, .. }
        | GroupCommand::Add { net, .. }
        | GroupCommand::Remove { net, .. }
        | GroupCommand::Leave { net, .. }
        | GroupCommand::Rename { net, .. }
        | GroupCommand::Send { net, .. }
        | GroupCommand::Join { net, .. }
        | GroupCommand::Approve { net, .. }
        | GroupCommand::Decline { net, .. } => net.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tern-node")
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let (node, mut events) = Node::start(profile, net.config(&profile_dir(cli)?))?;
        let done = one(&node, &mut events, command, out).await;
        node.shutdown().await?;
        done
    })
}

async fn one(
    node: &Node,
    events: &mut broadcast::Receiver<Event>,
    command: &GroupCommand,
    out: Out,
) -> Result<ExitCode> {
    let mut complete = true;
    match command {
        GroupCommand::Create {
            name,
            members,
            wait,
            ..
        } => {
            let mut keys = Vec::new();
            for member in members {
                keys.push(node.find_contact(member.clone()).await?.key);
            }
            let group = node.group_create(name.clone(), keys).await?;
            let want = members.len() + 1;
            let group = wait_members(events, group, want, *wait).await;
            // The Welcomes leave after the commits: wait until they are handed over too.
            complete = group.members >= want && drain(node, *wait).await;
            print_group(out, &group);
        }
        GroupCommand::List => {
            for g in node.groups().await? {
                print_group(out, &g);
            }
        }
        GroupCommand::Members { group } => {
            let group = node.find_group(group).await?;
            for m in node.group_members(group.id).await? {
                out.print(member_json(&m), || {
                    format!("{}\t{}\t{}", m.name, m.key.peer_id(), m.role.as_str())
                });
            }
        }
        GroupCommand::Add {
            group,
            member,
            wait,
            ..
        } => {
            let group = node.find_group(group).await?;
            let member = node.find_contact(member.clone()).await?;
            node.group_add(group.id, member.key).await?;
            let want = group.members + 1;
            let group = wait_members(events, group, want, *wait).await;
            // The Welcomes leave after the commits: wait until they are handed over too.
            complete = group.members >= want && drain(node, *wait).await;
            print_group(out, &group);
        }
        GroupCommand::Remove {
            group,
            member,
            wait,
            ..
        } => {
            let group = node.find_group(group).await?;
            let member = node.find_contact(member.clone()).await?;
            let group = node.group_remove(group.id, member.key).await?;
            complete = drain(node, *wait).await;
            print_group(out, &group);
        }
        GroupCommand::Leave { group, wait, .. } => {
            let group = node.find_group(group).await?;
            let group = node.group_leave(group.id).await?;
            complete = drain(node, *wait).await;
            print_group(out, &group);
        }
        GroupCommand::Rename {
            group, name, wait, ..
        } => {
            let group = node.find_group(group).await?;
            let group = node.group_rename(group.id, name.clone()).await?;
            complete = drain(node, *wait).await;
            print_group(out, &group);
        }
        GroupCommand::Send {
            group, text, wait, ..
        } => {
            crate::check_text(text)?;
            let group = node.find_group(group).await?;
            let message = node.group_send(group.id, text.clone()).await?;
            complete = drain(node, *wait).await;
            out.print(
                json!({"id": message.id.to_string(), "group": group.id.short(), "name": group.name, "status": if complete { "sent" } else { "queued" }}),
                || format!("sent to {}", group.name),
            );
        }
        GroupCommand::Link { group, approve } => {
            let group = node.find_group(group).await?;
            print_link(out, &node.group_link_create(group.id, *approve).await?);
        }
        GroupCommand::Links { group } => {
            let group = node.find_group(group).await?;
            for link in node.group_links(group.id).await? {
                print_link(out, &link);
            }
        }
        GroupCommand::Revoke { group, id } => {
            let group = node.find_group(group).await?;
            node.group_link_revoke(group.id, id.clone()).await?;
            out.print(json!({"revoked": id, "group": group.id.short()}), || {
                format!("revoked {id}")
            });
        }
        GroupCommand::Join { link, wait, .. } => {
            let started = node.group_join(link.clone()).await?;
            complete = wait_joined(events, &started.admin, *wait, out).await;
        }
        GroupCommand::Requests => {
            for request in node.group_join_requests().await? {
                print_join_request(out, &request, "join-request");
            }
        }
        GroupCommand::Approve {
            group,
            member,
            wait,
            ..
        }
        | GroupCommand::Decline {
            group,
            member,
            wait,
            ..
        } => {
            let approve = matches!(command, GroupCommand::Approve { .. });
            let group = node.find_group(group).await?;
            let member = node.find_contact(member.clone()).await?;
            node.group_join_decide(group.id, member.key, approve)
                .await?;
            complete = drain(node, *wait).await;
            let word = if approve { "approved" } else { "declined" };
            out.print(
                json!({word: member.name, "group": group.id.short()}),
                || format!("{word} {}", member.name),
            );
        }
    }
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_QUEUED)
    })
}

/// Waits up to `wait` seconds until `group` has `want` members; returns the group as last seen.
async fn wait_members(
    events: &mut broadcast::Receiver<Event>,
    mut group: GroupSummary,
    want: usize,
    wait: u64,
) -> GroupSummary {
    let id = group.id;
    let _ = tokio::time::timeout(Duration::from_secs(wait), async {
        while group.members < want {
            match events.recv().await {
                Ok(Event::GroupUpdated { group: g }) if g.id == id => group = g,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
    .await;
    group
}

/// Waits up to `wait` seconds until `admin` added this profile to a group (printed), or declined or refused
/// the request (printed; `false`). A request waiting for approval keeps waiting.
async fn wait_joined(
    events: &mut broadcast::Receiver<Event>,
    admin: &tern_protocol::IdentityKey,
    wait: u64,
    out: Out,
) -> bool {
    let outcome = tokio::time::timeout(Duration::from_secs(wait), async {
        loop {
            match events.recv().await {
                Ok(Event::GroupJoined {
                    group, added_by, ..
                }) if added_by == *admin => {
                    print_group(out, &group);
                    return true;
                }
                Ok(Event::GroupJoinAnswered {
                    admin: from,
                    admin_name,
                    answer,
                }) if from == *admin => {
                    print_join_answer(out, &admin_name, answer);
                    if answer != JoinAnswer::Waiting {
                        return false;
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return false,
            }
        }
    })
    .await;
    outcome.unwrap_or(false)
}

/// Waits up to `wait` seconds until the outbox is empty (everything handed to a peer or a mailbox).
async fn drain(node: &Node, wait: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        match node.status().await {
            Ok(status) if status.outbox_len == 0 => return true,
            Ok(_) if Instant::now() < deadline => tokio::time::sleep(OUTBOX_POLL).await,
            _ => return false,
        }
    }
}

/// A group command on `run`'s stdin: `{"cmd":"group-send","group":G,"text":T}` and the like.
#[derive(serde::Deserialize, Debug)]
#[serde(tag = "cmd")]
enum StdinGroupCommand {
    #[serde(rename = "group-create")]
    Create { name: String, members: Vec<String> },
    #[serde(rename = "group-list")]
    List,
    #[serde(rename = "group-members")]
    Members { group: String },
    #[serde(rename = "group-add")]
    Add { group: String, member: String },
    #[serde(rename = "group-remove")]
    Remove { group: String, member: String },
    #[serde(rename = "group-leave")]
    Leave { group: String },
    #[serde(rename = "group-rename")]
    Rename { group: String, name: String },
    #[serde(rename = "group-send")]
    Send { group: String, text: String },
    #[serde(rename = "group-link")]
    Link {
        group: String,
        #[serde(default)]
        approve: bool,
    },
    #[serde(rename = "group-join")]
    Join { link: String },
    #[serde(rename = "group-approve")]
    Approve { group: String, member: String },
    #[serde(rename = "group-decline")]
    Decline { group: String, member: String },
}

/// Handles a stdin line if it is a group command: `None` if it is not one.
pub(crate) async fn stdin_command(node: &Node, line: &str) -> Option<Result<Value>> {
    let value: Value = serde_json::from_str(line).ok()?;
    let command_kind = value["cmd"].as_str()?.to_owned();
    if !command_kind.starts_with("group-") {
        return None;
    }
    let command_kind = command_kind.as_str();
    Some(
        async {
            let command: StdinGroupCommand =
                serde_json::from_value(value).context("not a group command")?;
            let find = |g: String| async move { node.find_group(&g).await };
            Ok(match command {
                StdinGroupCommand::Create { name, members } => {
                    let mut keys = Vec::new();
                    for member in members {
                        keys.push(node.find_contact(member).await?.key);
                    }
                    let g = node.group_create(name, keys).await?;
                    json!({"ok": "group-create", "group": group_json(&g)})
                }
                StdinGroupCommand::List => {
                    let list: Vec<Value> = node.groups().await?.iter().map(group_json).collect();
                    json!({"ok": "group-list", "groups": list})
                }
                StdinGroupCommand::Members { group } => {
                    let g = find(group).await?;
                    let members: Vec<Value> = node
                        .group_members(g.id)
                        .await?
                        .iter()
                        .map(member_json)
                        .collect();
                    json!({"ok": "group-members", "group": g.id.short(), "members": members})
                }
                StdinGroupCommand::Add { group, member } => {
                    let g = find(group).await?;
                    let member = node.find_contact(member).await?;
                    node.group_add(g.id, member.key).await?;
                    json!({"ok": "group-add", "group": g.id.short(), "member": member.name})
                }
                StdinGroupCommand::Remove { group, member } => {
                    let g = find(group).await?;
                    let member = node.find_contact(member).await?;
                    let g = node.group_remove(g.id, member.key).await?;
                    json!({"ok": "group-remove", "group": group_json(&g)})
                }
                StdinGroupCommand::Leave { group } => {
                    let g = find(group).await?;
                    let g = node.group_leave(g.id).await?;
                    json!({"ok": "group-leave", "group": group_json(&g)})
                }
                StdinGroupCommand::Rename { group, name } => {
                    let g = find(group).await?;
                    let g = node.group_rename(g.id, name).await?;
                    json!({"ok": "group-rename", "group": group_json(&g)})
                }
                StdinGroupCommand::Send { group, text } => {
                    crate::check_text(&text)?;
                    let g = find(group).await?;
                    let message = node.group_send(g.id, text).await?;
                    json!({"ok": "group-send", "group": g.id.short(), "id": message.id.to_string()})
                }
                StdinGroupCommand::Link { group, approve } => {
                    let g = find(group).await?;
                    let link = node.group_link_create(g.id, approve).await?;
                    json!({"ok": "group-link", "link": link_json(&link)})
                }
                StdinGroupCommand::Join { link } => {
                    let started = node.group_join(link).await?;
                    json!({"ok": "group-join", "admin": started.admin_name, "approval": started.approval})
                }
                StdinGroupCommand::Approve { group, member }
                | StdinGroupCommand::Decline { group, member } => {
                    let approve = matches!(command_kind, "group-approve");
                    let g = find(group).await?;
                    let member = node.find_contact(member).await?;
                    node.group_join_decide(g.id, member.key, approve).await?;
                    json!({"ok": command_kind, "group": g.id.short(), "member": member.name})
                }
            })
        }
        .await,
    )
}
