//! `tern-node`: the headless Tern client, for scripts, bots and tests.
//!
//! Exit codes: 0 success; 1 error; 2 usage; 3 message kept in the outbox (not delivered within `--wait`);
//! 4 wrong password; 5 profile in use by another process.

mod backup_cmd;
mod files;
mod group_cmd;
mod online;
mod output;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use libp2p::Multiaddr;
use serde_json::json;
use tern_node::api::ContactState;
use tern_node::node::{NodeConfig, NodeError};
use tern_node::profile::{KdfParams, Password, Profile};
use tern_node::settings::NetworkSettings;
use tern_protocol::MessageId;

use output::{Out, contact_json, print_message};

pub(crate) const EXIT_QUEUED: u8 = 3;
const EXIT_WRONG_PASSWORD: u8 = 4;
const EXIT_IN_USE: u8 = 5;

#[derive(Parser, Debug)]
#[command(
    name = "tern-node",
    version,
    about = "The headless Tern messenger client"
)]
pub(crate) struct Cli {
    /// Profile directory [default: the platform data dir, e.g. ~/.local/share/tern/default]
    #[arg(long, env = "TERN_PROFILE", global = true)]
    profile: Option<PathBuf>,
    /// Read the password from this file (first line) instead of TERN_PASSWORD or a prompt. Prefer it to
    /// TERN_PASSWORD, which other programs of the same user can read for as long as this one runs.
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
        /// Accept an empty password (anyone with the files can open the profile).
        #[arg(long)]
        allow_empty_password: bool,
        /// Argon2id memory in KiB (default 65536). Lower only for tests.
        #[arg(long, hide = true)]
        kdf_memory_kib: Option<u32>,
        /// Argon2id passes (default 3). Lower only for tests.
        #[arg(long, hide = true)]
        kdf_iterations: Option<u32>,
    },
    /// Write an encrypted backup of the profile to FILE and print its recovery code (shown only once).
    Backup(backup_cmd::BackupArgs),
    /// Restore a backup into a new profile (the profile directory must not hold one).
    Restore(backup_cmd::RestoreArgs),
    /// Turn automatic backups to a folder on (printing their one recovery code once) or off; `run` writes
    /// them when due.
    AutoBackup(backup_cmd::AutoBackupArgs),
    /// Show this profile's peer id, fingerprint and invite link.
    Whoami {
        /// Also draw the invite as a QR code.
        #[arg(long)]
        qr: bool,
    },
    /// Manage contacts.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Groups: create, list, members, add, remove, leave, rename, send.
    #[command(subcommand)]
    Group(group_cmd::GroupCommand),
    /// Send a text message and wait for delivery.
    Send {
        contact: String,
        text: String,
        /// Seconds to wait for delivery before leaving the message in the outbox.
        #[arg(long, default_value_t = 10)]
        wait: u64,
        /// Send it as a reply to this message of the conversation (its id, as `inbox` prints it).
        #[arg(long, value_name = "ID")]
        reply_to: Option<String>,
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
    /// Send a file (up to 4 GiB) and stay online until the contact has fetched it. Pictures lose their
    /// location and camera metadata first (printed as `metadata-stripped`).
    SendFile {
        contact: String,
        path: PathBuf,
        /// Seconds to stay online for the contact to fetch it; after that it stays offered.
        #[arg(long, default_value_t = 60)]
        wait: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// List the files sent and received, with their state.
    Files,
    /// Decrypt a received (or sent) file to DEST.
    SaveFile {
        /// The id of the message that offered the file (see `files`).
        message_id: String,
        dest: PathBuf,
        /// Replace DEST if it exists.
        #[arg(long)]
        overwrite: bool,
    },
    /// Change the profile password, re-encrypting the whole profile under a new key (the old password
    /// and the old key then open nothing in it).
    Passwd {
        /// Accept an empty new password (anyone with the files can open the profile).
        #[arg(long)]
        allow_empty_password: bool,
    },
    /// Replace the signed prekey and forget every earlier one now (after a suspected compromise). Contacts
    /// holding your old invite link need the new one to start a session; running sessions go on.
    RevokePrekeys,
    /// Show or change whether read receipts and typing indicators are sent. Off works both ways: you
    /// then see no one's either (a contact's read receipt shows as delivered).
    Privacy {
        /// on or off
        #[arg(long, value_parser = on_off)]
        read_receipts: Option<bool>,
        /// on or off
        #[arg(long, value_parser = on_off)]
        typing: Option<bool>,
    },
}

fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{other:?}: say on or off")),
    }
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
pub(crate) struct NetArgs {
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
    /// Publish and dial loopback and private addresses in address records too (every node on one host or
    /// one private network: tests, benchmarks, labs). Off by default: only internet-reachable addresses.
    #[arg(long)]
    local_addresses: bool,
}

impl NetArgs {
    pub(crate) fn config(&self, profile: &std::path::Path) -> NodeConfig {
        let mut config = NetworkSettings {
            lan_only: self.lan_only,
            bootstrap: self.bootstrap.clone(),
            mailbox_nodes: self.mailbox_node.clone(),
            peers: self.peer.clone(),
            listen: self.listen.clone(),
            mdns: !self.no_mdns,
            serve_mailbox: self.mailbox,
        }
        .node_config(profile);
        config.net.local_addresses = self.local_addresses;
        config
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
        match cause.downcast_ref::<NodeError>() {
            Some(e) if e.is_wrong_password() => return EXIT_WRONG_PASSWORD,
            Some(e) if e.is_in_use() => return EXIT_IN_USE,
            _ => {}
        }
    }
    1
}

pub(crate) fn profile_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(dir) = &cli.profile {
        return Ok(dir.clone());
    }
    let dirs = directories::ProjectDirs::from("org", "tern", "tern")
        .ok_or_else(|| anyhow!("no home directory: pass --profile DIR or set TERN_PROFILE"))?;
    Ok(dirs.data_dir().join("default"))
}

pub(crate) fn read_password(cli: &Cli, confirm: bool, prompt: &str) -> Result<Password> {
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

pub(crate) fn open_profile(cli: &Cli) -> Result<Profile> {
    let dir = profile_dir(cli)?;
    let password = read_password(cli, false, "Password: ")?;
    Profile::open(&dir, &password).with_context(|| format!("cannot open profile {}", dir.display()))
}

fn run(cli: Cli, out: Out) -> Result<ExitCode> {
    match &cli.command {
        Command::Init {
            name,
            allow_empty_password,
            kdf_memory_kib,
            kdf_iterations,
        } => {
            let dir = profile_dir(&cli)?;
            let password = read_password(&cli, true, "New password: ")?;
            check_new_password(&password, *allow_empty_password)?;
            let mut kdf = KdfParams::default();
            if let Some(m) = kdf_memory_kib {
                kdf.memory_kib = *m;
            }
            if let Some(t) = kdf_iterations {
                kdf.iterations = *t;
            }
            let profile = Profile::create(&dir, name, &password, kdf)
                .with_context(|| format!("cannot create profile {}", dir.display()))?;
            let me = profile.whoami();
            out.print(
                json!({"profile": dir.display().to_string(), "peer_id": me.key.peer_id(), "invite": me.invite_link}),
                || format!("created profile {} for {}\npeer id: {}\ninvite: {}", dir.display(), me.name, me.key.peer_id(), me.invite_link),
            );
        }
        Command::Backup(args) => backup_cmd::backup(&cli, args, out)?,
        Command::Restore(args) => backup_cmd::restore_cmd(&cli, args, out)?,
        Command::AutoBackup(args) => backup_cmd::auto_backup(&cli, args, out)?,
        Command::Whoami { qr } => {
            let profile = open_profile(&cli)?;
            let me = profile.whoami();
            let qr_text = if *qr {
                Some(
                    profile
                        .invite_qr_text()
                        .context("cannot draw the QR code")?,
                )
            } else {
                None
            };
            out.print(
                json!({"name": me.name, "peer_id": me.key.peer_id(), "fingerprint": me.fingerprint.to_string(), "invite": me.invite_link, "invite_1_0": me.invite_link_1_0, "qr": qr_text}),
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
            let profile = open_profile(&cli)?;
            let conversations = match contact {
                Some(name) => vec![profile.find_contact(name)?],
                None => profile.contacts()?,
            };
            for contact in conversations {
                let page = profile.page(&contact.conversation(), None, *limit)?;
                for message in &page.messages {
                    print_message(out, &contact.name, message);
                }
            }
        }
        Command::Send {
            contact,
            text,
            wait,
            reply_to,
            net,
        } => {
            let reply_to = reply_to
                .as_deref()
                .map(|id| {
                    MessageId::parse(id)
                        .ok_or_else(|| anyhow!("--reply-to {id:?} is not a message id"))
                })
                .transpose()?;
            return online::send(&cli, contact, text, reply_to, *wait, net, out);
        }
        Command::Run { net } => online::run(&cli, net, out)?,
        Command::Group(command) => return group_cmd::run(&cli, command, out),
        Command::SendFile {
            contact,
            path,
            wait,
            net,
        } => return files::send_file(&cli, contact, path, *wait, net, out),
        Command::Files => files::list(&cli, out)?,
        Command::SaveFile {
            message_id,
            dest,
            overwrite,
        } => files::save(&cli, message_id, dest, *overwrite, out)?,
        Command::Passwd {
            allow_empty_password,
        } => {
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
            check_new_password(&new, *allow_empty_password)?;
            let mut profile = Profile::open(&dir, &old)?;
            let report = profile.change_password(&old, &new)?;
            out.print(
                json!({"password": "changed", "rekeyed": true, "messages": report.messages,
                       "sessions_dropped": report.sessions_dropped}),
                || {
                    format!(
                        "password changed; the profile was re-encrypted under a new key ({} messages)",
                        report.messages
                    )
                },
            );
        }
        Command::RevokePrekeys => {
            let dir = profile_dir(&cli)?;
            let password = read_password(&cli, false, "Password: ")?;
            let mut profile = Profile::open(&dir, &password)?;
            profile.revoke_prekeys()?;
            let link = profile.whoami().invite_link;
            out.print(json!({"prekeys": "revoked", "invite": link}), || {
                format!("prekeys revoked; share your new invite link:\n{link}")
            });
        }
        Command::Privacy {
            read_receipts,
            typing,
        } => {
            let mut profile = open_profile(&cli)?;
            let mut settings = profile.privacy();
            if read_receipts.is_some() || typing.is_some() {
                settings.read_receipts = read_receipts.unwrap_or(settings.read_receipts);
                settings.typing = typing.unwrap_or(settings.typing);
                profile.set_privacy(settings)?;
            }
            let word = |on: bool| if on { "on" } else { "off" };
            out.print(
                json!({"read_receipts": settings.read_receipts, "typing": settings.typing}),
                || {
                    format!(
                        "read receipts: {}\ntyping indicators: {}",
                        word(settings.read_receipts),
                        word(settings.typing)
                    )
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A new password must not be empty unless the user asked for that in so many words.
pub(crate) fn check_new_password(password: &Password, allow_empty: bool) -> Result<()> {
    if password.is_empty() && !allow_empty {
        bail!(
            "the password is empty: anyone with the profile's files could open it (pass --allow-empty-password to mean it)"
        );
    }
    Ok(())
}

/// A message must say something: empty or all-whitespace text is refused before anything is queued.
pub(crate) fn check_text(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        bail!("the message is empty: nothing was sent");
    }
    Ok(())
}

fn contact_command(cli: &Cli, command: &ContactCommand, out: Out) -> Result<()> {
    let mut profile = open_profile(cli)?;
    match command {
        ContactCommand::Add { link, name } => {
            let (record, change) = profile.add_contact(link, name.as_deref())?;
            let others = profile.contacts()?;
            let lookalike = tern_node::names::lookalike(
                &record.name,
                others
                    .iter()
                    .filter(|c| c.key != record.key)
                    .map(|c| c.name.as_str()),
            );
            let mut value = contact_json(&profile, &record);
            value["change"] = json!(change.as_str());
            if let Some(warning) = &lookalike {
                value["looks_like"] = json!(warning.existing);
                value["warning"] = json!(warning.to_string());
            }
            out.print(value, || {
                let mut text = format!(
                    "added {} ({})\nsafety number: {}",
                    record.name,
                    record.peer_id(),
                    profile.safety_number(&record.key)
                );
                if let Some(warning) = &lookalike {
                    text.push_str(&format!("\nwarning: {warning}"));
                }
                text
            });
        }
        ContactCommand::List => {
            for c in profile.contacts()? {
                out.print(contact_json(&profile, &c), || {
                    format!(
                        "{}\t{}\t{:?}{}{}",
                        c.name,
                        c.peer_id(),
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
            let record = profile.find_contact(contact)?;
            let expected = profile.safety_number(&record.key);
            let Some(digits) = safety_number else {
                out.print(json!({"safety_number": expected.to_string()}), || {
                    format!(
                        "safety number with {}:\n{expected}\ncompare it with theirs, then pass --safety-number",
                        record.name
                    )
                });
                return Ok(());
            };
            if !profile.verify(&record.key, digits)? {
                bail!(
                    "the safety number does not match: {} is not verified",
                    record.name
                );
            }
            out.print(json!({"verified": record.name}), || {
                format!("{} is verified", record.name)
            });
        }
        ContactCommand::Accept { contact } | ContactCommand::Block { contact } => {
            let record = profile.find_contact(contact)?;
            let state = if matches!(command, ContactCommand::Accept { .. }) {
                ContactState::Accepted
            } else {
                ContactState::Blocked
            };
            let record = profile.set_contact_state(&record.key, state)?;
            out.print(contact_json(&profile, &record), || {
                format!("{}: {:?}", record.name, record.state)
            });
        }
    }
    Ok(())
}
