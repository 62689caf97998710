//! `tern-node`: the headless Tern client, for scripts, bots and tests.
//!
//! Exit codes: 0 success; 1 error; 2 usage; 3 message kept in the outbox (not delivered within `--wait`);
//! 4 wrong password; 5 profile in use by another process.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use libp2p::Multiaddr;
use serde_json::{Value, json};
use tern_node::engine::{Engine, EngineError};
use tern_node::node::{Event, Node, NodeConfig};
use tern_node::settings::NetworkSettings;
use tern_node::store::{
    ContactRecord, ContactState, KdfParams, MessageRecord, MessageStatus, Password, StoreError,
};
use tern_protocol::IdentityKey;
use tokio::sync::broadcast;

const EXIT_QUEUED: u8 = 3;
const EXIT_WRONG_PASSWORD: u8 = 4;
const EXIT_IN_USE: u8 = 5;

#[derive(Parser, Debug)]
#[command(
    name = "tern-node",
    version,
    about = "The headless Tern messenger client"
)]
struct Cli {
    /// Profile directory [default: the platform data dir, e.g. ~/.local/share/tern/default]
    #[arg(long, env = "TERN_PROFILE", global = true)]
    profile: Option<PathBuf>,
    /// Read the password from this file (first line) instead of TERN_PASSWORD or a prompt.
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    /// Print every result and event as one JSON object per line.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a profile: a new identity and contact card.
    Init {
        #[arg(long)]
        name: String,
        /// Argon2id memory in KiB (default 65536). Lower only for tests.
        #[arg(long, hide = true)]
        kdf_memory_kib: Option<u32>,
        /// Argon2id passes (default 3). Lower only for tests.
        #[arg(long, hide = true)]
        kdf_iterations: Option<u32>,
    },
    /// Show this profile's peer id, fingerprint and invite link.
    Whoami {
        /// Also draw the invite as a QR code.
        #[arg(long)]
        qr: bool,
    },
    /// Manage contacts.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Send a text message and wait for delivery.
    Send {
        contact: String,
        text: String,
        /// Seconds to wait for delivery before leaving the message in the outbox.
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Show the decrypted history with status.
    Inbox {
        contact: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Stay online: print events as JSON lines, take commands as JSON lines on stdin.
    Run {
        #[command(flatten)]
        net: NetArgs,
    },
    /// Change the profile password.
    Passwd,
}

#[derive(Subcommand, Debug)]
enum ContactCommand {
    /// Add a contact from an invite link.
    Add {
        link: String,
        #[arg(long)]
        name: Option<String>,
    },
    List,
    /// Mark a contact verified after comparing safety numbers.
    Verify {
        contact: String,
        #[arg(long)]
        safety_number: Option<String>,
    },
    /// Accept a contact request.
    Accept {
        contact: String,
    },
    /// Block a contact: their messages are dropped.
    Block {
        contact: String,
    },
}

#[derive(Args, Debug, Clone)]
struct NetArgs {
    /// Address to listen on (repeatable). Default: all IPv4 interfaces, ephemeral TCP and QUIC ports.
    #[arg(long)]
    listen: Vec<Multiaddr>,
    /// A peer to dial at start, ending in /p2p/<peer id> (repeatable).
    #[arg(long)]
    peer: Vec<Multiaddr>,
    /// A bootstrap node, ending in /p2p/<peer id> (repeatable). Bootstrap nodes also hold this profile's mail.
    #[arg(long)]
    bootstrap: Vec<Multiaddr>,
    /// Another mailbox server for this profile's mail, ending in /p2p/<peer id> (repeatable).
    #[arg(long)]
    mailbox_node: Vec<Multiaddr>,
    /// Stay on the LAN: mDNS only, no DHT, relays or bootstrap nodes.
    #[arg(long)]
    lan_only: bool,
    /// Serve as a mailbox for the LAN: hold sealed mail for peers who are offline (stored in the profile
    /// directory as mailbox.redb, ciphertext only).
    #[arg(long)]
    mailbox: bool,
    /// Do not look for peers on the LAN with mDNS (then only --peer, bootstrap nodes and the DHT find them).
    #[arg(long)]
    no_mdns: bool,
}

impl NetArgs {
    fn config(&self, profile: &std::path::Path) -> NodeConfig {
        NetworkSettings {
            lan_only: self.lan_only,
            bootstrap: self.bootstrap.clone(),
            mailbox_nodes: self.mailbox_node.clone(),
            peers: self.peer.clone(),
            listen: self.listen.clone(),
            mdns: !self.no_mdns,
            serve_mailbox: self.mailbox,
        }
        .node_config(profile)
    }
}

/// Where output goes: human lines or JSON lines.
#[derive(Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    fn print(&self, value: Value, human: impl FnOnce() -> String) {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TERN_LOG")
                // Kademlia warns that it has no peers to bootstrap from on every LAN-only or first start.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,libp2p_kad=error")),
        )
        .init();
    let out = Out { json: cli.json };
    match run(cli, out) {
        Ok(code) => code,
        Err(error) => {
            let code = exit_code_for(&error);
            out.print(json!({"error": format!("{error:#}")}), || {
                format!("error: {error:#}")
            });
            ExitCode::from(code)
        }
    }
}

fn exit_code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        let store = cause.downcast_ref::<StoreError>().or_else(|| {
            match cause.downcast_ref::<EngineError>() {
                Some(EngineError::Store(e)) => Some(e),
                _ => None,
            }
        });
        match store {
            Some(StoreError::WrongPassword) => return EXIT_WRONG_PASSWORD,
            Some(StoreError::InUse) => return EXIT_IN_USE,
            _ => {}
        }
    }
    1
}

fn profile_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(dir) = &cli.profile {
        return Ok(dir.clone());
    }
    let dirs = directories::ProjectDirs::from("org", "tern", "tern")
        .ok_or_else(|| anyhow!("no home directory: pass --profile DIR or set TERN_PROFILE"))?;
    Ok(dirs.data_dir().join("default"))
}

fn read_password(cli: &Cli, confirm: bool, prompt: &str) -> Result<Password> {
    if let Some(file) = &cli.password_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the password file {}", file.display()))?;
        let line = text.lines().next().unwrap_or_default().to_owned();
        return Ok(Password::new(line));
    }
    if let Ok(text) = std::env::var("TERN_PASSWORD") {
        return Ok(Password::new(text));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: set TERN_PASSWORD, pass --password-file FILE, or run on a terminal");
    }
    let first = rpassword::prompt_password(prompt).context("cannot read the password")?;
    if confirm {
        let again = rpassword::prompt_password("Repeat the password: ")
            .context("cannot read the password")?;
        if again != first {
            bail!("the two passwords differ");
        }
    }
    Ok(Password::new(first))
}

fn open_engine(cli: &Cli) -> Result<Engine> {
    let dir = profile_dir(cli)?;
    let password = read_password(cli, false, "Password: ")?;
    Engine::open(&dir, &password).with_context(|| format!("cannot open profile {}", dir.display()))
}

fn run(cli: Cli, out: Out) -> Result<ExitCode> {
    match &cli.command {
        Command::Init {
            name,
            kdf_memory_kib,
            kdf_iterations,
        } => {
            let dir = profile_dir(&cli)?;
            let password = read_password(&cli, true, "New password: ")?;
            let mut kdf = KdfParams::default();
            if let Some(m) = kdf_memory_kib {
                kdf.memory_kib = *m;
            }
            if let Some(t) = kdf_iterations {
                kdf.iterations = *t;
            }
            let engine = Engine::create(&dir, name, &password, kdf)
                .with_context(|| format!("cannot create profile {}", dir.display()))?;
            let me = engine.whoami();
            out.print(
                json!({"profile": dir.display().to_string(), "peer_id": me.key.peer_id(), "invite": me.invite_link}),
                || format!("created profile {} for {}\npeer id: {}\ninvite: {}", dir.display(), me.name, me.key.peer_id(), me.invite_link),
            );
        }
        Command::Whoami { qr } => {
            let engine = open_engine(&cli)?;
            let me = engine.whoami();
            let qr_text = if *qr {
                Some(
                    engine
                        .card()
                        .qr()
                        .context("cannot draw the QR code")?
                        .to_text(),
                )
            } else {
                None
            };
            out.print(
                json!({"name": me.name, "peer_id": me.key.peer_id(), "fingerprint": me.fingerprint.to_string(), "invite": me.invite_link, "qr": qr_text}),
                || {
                    let mut text = format!(
                        "name: {}\npeer id: {}\nfingerprint: {}\ninvite: {}",
                        me.name, me.key.peer_id(), me.fingerprint, me.invite_link
                    );
                    if let Some(qr) = &qr_text {
                        text.push('\n');
                        text.push_str(qr);
                    }
                    text
                },
            );
        }
        Command::Contact(command) => contact_command(&cli, command, out)?,
        Command::Inbox { contact, limit } => {
            let engine = open_engine(&cli)?;
            let conversations = match contact {
                Some(name) => vec![engine.find_contact(name)?],
                None => engine.store().contacts()?,
            };
            for contact in conversations {
                let page = engine
                    .store()
                    .conversation_page(&contact.key, None, *limit)?;
                for message in &page.messages {
                    print_message(out, &contact, message);
                }
            }
        }
        Command::Send {
            contact,
            text,
            wait,
            net,
        } => return send(&cli, contact, text, *wait, net, out),
        Command::Run { net } => run_online(&cli, net, out)?,
        Command::Passwd => {
            let dir = profile_dir(&cli)?;
            let old = read_password(&cli, false, "Current password: ")?;
            let new = match std::env::var("TERN_NEW_PASSWORD") {
                Ok(text) => Password::new(text),
                Err(_) if std::io::stdin().is_terminal() => {
                    let first = rpassword::prompt_password("New password: ")?;
                    let again = rpassword::prompt_password("Repeat the new password: ")?;
                    if first != again {
                        bail!("the two passwords differ");
                    }
                    Password::new(first)
                }
                Err(_) => bail!("no new password: set TERN_NEW_PASSWORD or run on a terminal"),
            };
            let mut engine = Engine::open(&dir, &old)?;
            engine.store_mut().change_password(&old, &new)?;
            out.print(json!({"password": "changed"}), || "password changed".into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn contact_json(engine: &Engine, c: &ContactRecord) -> Value {
    json!({
        "name": c.local_name,
        "peer_id": c.key.peer_id(),
        "state": format!("{:?}", c.state).to_lowercase(),
        "verified": c.verified,
        "key_changed": c.key_changed,
        "safety_number": engine.safety_number(&c.key).to_string(),
    })
}

fn contact_command(cli: &Cli, command: &ContactCommand, out: Out) -> Result<()> {
    let mut engine = open_engine(cli)?;
    match command {
        ContactCommand::Add { link, name } => {
            let (record, change) = engine.add_contact(link, name.as_deref())?;
            let mut value = contact_json(&engine, &record);
            value["change"] = json!(format!("{change:?}").to_lowercase());
            out.print(value, || {
                format!(
                    "added {} ({})\nsafety number: {}",
                    record.local_name,
                    record.key.peer_id(),
                    engine.safety_number(&record.key)
                )
            });
        }
        ContactCommand::List => {
            for c in engine.store().contacts()? {
                out.print(contact_json(&engine, &c), || {
                    format!(
                        "{}\t{}\t{:?}{}{}",
                        c.local_name,
                        c.key.peer_id(),
                        c.state,
                        if c.verified { "\tverified" } else { "" },
                        if c.key_changed { "\tKEY CHANGED" } else { "" }
                    )
                });
            }
        }
        ContactCommand::Verify {
            contact,
            safety_number,
        } => {
            let record = engine.find_contact(contact)?;
            let expected = engine.safety_number(&record.key);
            let Some(digits) = safety_number else {
                out.print(json!({"safety_number": expected.to_string()}), || {
                    format!(
                        "safety number with {}:\n{expected}\ncompare it with theirs, then pass --safety-number",
                        record.local_name
                    )
                });
                return Ok(());
            };
            if !engine.verify(&record.key, digits)? {
                bail!(
                    "the safety number does not match: {} is not verified",
                    record.local_name
                );
            }
            out.print(json!({"verified": record.local_name}), || {
                format!("{} is verified", record.local_name)
            });
        }
        ContactCommand::Accept { contact } | ContactCommand::Block { contact } => {
            let record = engine.find_contact(contact)?;
            let state = if matches!(command, ContactCommand::Accept { .. }) {
                ContactState::Accepted
            } else {
                ContactState::Blocked
            };
            let record = engine.set_contact_state(&record.key, state)?;
            out.print(contact_json(&engine, &record), || {
                format!("{}: {:?}", record.local_name, record.state)
            });
        }
    }
    Ok(())
}

fn status_name(status: MessageStatus) -> String {
    format!("{status:?}").to_lowercase()
}

fn message_json(contact: &str, m: &MessageRecord) -> Value {
    json!({
        "contact": contact,
        "id": m.id.to_string(),
        "direction": if m.outgoing { "out" } else { "in" },
        "sent_at_ms": m.sent_at_ms,
        "received_at_ms": m.received_at_ms,
        "status": status_name(m.status),
        "text": m.text,
    })
}

fn print_message(out: Out, contact: &ContactRecord, m: &MessageRecord) {
    out.print(message_json(&contact.local_name, m), || {
        let arrow = if m.outgoing { "->" } else { "<-" };
        format!(
            "{arrow} {}\t[{}]\t{}",
            contact.local_name,
            status_name(m.status),
            m.text
        )
    });
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tern-node")
        .build()
        .context("cannot start the async runtime")
}

fn send(
    cli: &Cli,
    contact: &str,
    text: &str,
    wait: u64,
    net: &NetArgs,
    out: Out,
) -> Result<ExitCode> {
    let engine = open_engine(cli)?;
    let record = engine.find_contact(contact)?;
    let rt = runtime()?;
    rt.block_on(async {
        let (node, mut events) = Node::start(engine, net.config(&profile_dir(cli)?))?;
        let message = node.send_text(record.key, text.to_owned()).await?;
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
            json!({"id": message.id.to_string(), "to": record.local_name, "status": status}),
            || {
                if status == "deposited" {
                    format!("{} is offline: deposited in their mailbox", record.local_name)
                } else if delivered {
                    format!("delivered to {}", record.local_name)
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
    Status,
    Quit,
}

fn run_online(cli: &Cli, net: &NetArgs, out: Out) -> Result<()> {
    let engine = open_engine(cli)?;
    let rt = runtime()?;
    rt.block_on(async {
        let (node, mut events) = Node::start(engine, net.config(&profile_dir(cli)?))?;
        out.print(json!({"event": "started", "peer_id": node.peer_id().to_base58()}), || {
            format!("online as {}", node.peer_id())
        });
        let (line_tx, mut lines) = tokio::sync::mpsc::channel::<String>(64);
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
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
                    Ok(event) => print_event(&node, out, event).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        out.print(json!({"event": "lagged", "missed": n}), || format!("(missed {n} events)"));
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                line = lines.recv(), if stdin_open => match line {
                    Some(line) if line.trim().is_empty() => {}
                    Some(line) => {
                        if !stdin_command(&node, out, &line).await {
                            break;
                        }
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

async fn contact_name(node: &Node, key: IdentityKey) -> String {
    node.with_engine(move |e| e.store().contact(&key).ok().flatten())
        .await
        .ok()
        .flatten()
        .map_or_else(|| key.peer_id(), |c| c.local_name)
}

async fn print_event(node: &Node, out: Out, event: Event) {
    match event {
        Event::Listening { address } => {
            let full = format!("{address}/p2p/{}", node.peer_id());
            out.print(json!({"event": "listening", "address": full}), || {
                format!("listening {full}")
            });
        }
        Event::MessageReceived { message } => {
            let name = contact_name(node, message.conversation).await;
            let mut value = message_json(&name, &message);
            value["event"] = json!("message");
            out.print(value, || format!("<- {name}: {}", message.text));
        }
        Event::ContactRequest { contact } => out.print(
            json!({"event": "contact-request", "name": contact.local_name, "peer_id": contact.key.peer_id()}),
            || format!("contact request from {} ({})", contact.local_name, contact.key.peer_id()),
        ),
        Event::KeyChanged { contact } => {
            let name = contact_name(node, contact).await;
            out.print(json!({"event": "key-changed", "contact": name}), || {
                format!("WARNING: {name}'s key changed; verify them again")
            });
        }
        Event::StatusChanged {
            contact,
            id,
            status,
        } => {
            let name = contact_name(node, contact).await;
            out.print(
                json!({"event": "status", "contact": name, "id": id.to_string(), "status": status_name(status)}),
                || format!("{name}: message {id} {}", status_name(status)),
            );
        }
        Event::Typing { contact, typing } => {
            let name = contact_name(node, contact).await;
            out.print(json!({"event": "typing", "contact": name, "typing": typing}), || {
                format!("{name} {}", if typing { "is typing…" } else { "stopped typing" })
            });
        }
        Event::ContactOnline { contact, online } => {
            let name = contact_name(node, contact).await;
            out.print(json!({"event": "online", "contact": name, "online": online}), || {
                format!("{name} is {}", if online { "online" } else { "offline" })
            });
        }
        Event::Nat { status } => {
            let text = match &status {
                tern_node::node::NatStatus::Public(addr) => format!("public at {addr}"),
                tern_node::node::NatStatus::Private => "private (behind NAT: relays and hole punching)".into(),
                tern_node::node::NatStatus::Unknown => "unknown".into(),
            };
            out.print(json!({"event": "nat", "status": text}), || format!("reachability: {text}"));
        }
        Event::Peers { connected } => out.print(
            json!({"event": "peers", "connected": connected}),
            || format!("peers connected: {connected}"),
        ),
        Event::UnknownContent { contact, kind } => {
            let name = contact_name(node, contact).await;
            out.print(json!({"event": "unknown-content", "contact": name, "kind": kind}), || {
                format!("{name} sent a message of kind {kind}, which this version cannot show")
            });
        }
        _ => {}
    }
}

async fn find(node: &Node, name: String) -> Result<ContactRecord> {
    Ok(node.with_engine(move |e| e.find_contact(&name)).await??)
}

/// Runs one stdin command; returns false to stop.
async fn stdin_command(node: &Node, out: Out, line: &str) -> bool {
    let result: Result<Option<Value>> = async {
        match serde_json::from_str::<StdinCommand>(line).context("not a command")? {
            StdinCommand::Send { to, text } => {
                let contact = find(node, to).await?;
                let message = node.send_text(contact.key, text).await?;
                Ok(Some(
                    json!({"ok": "send", "id": message.id.to_string(), "to": contact.local_name}),
                ))
            }
            StdinCommand::ReadReceipt { contact } => {
                let contact = find(node, contact).await?;
                let key = contact.key;
                let unread = node
                    .with_engine(move |e| {
                        e.store()
                            .conversation_page(&key, None, 500)
                            .map(|page| {
                                page.messages
                                    .into_iter()
                                    .filter(|m| !m.outgoing && m.status == MessageStatus::Received)
                                    .map(|m| m.id)
                                    .collect::<Vec<_>>()
                            })
                    })
                    .await??;
                let read = node.mark_read(key, unread).await?;
                Ok(Some(json!({"ok": "read-receipt", "contact": contact.local_name, "count": read.len()})))
            }
            StdinCommand::Typing { contact, typing } => {
                let contact = find(node, contact).await?;
                node.typing(contact.key, typing).await?;
                Ok(Some(json!({"ok": "typing"})))
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
