//! `tern-node backup FILE` and `tern-node restore FILE` (docs/protocol.md §20).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;
use tern_node::backup::{RecoveryCode, restore};
use tern_node::profile::KdfParams;
use zeroize::Zeroizing;

use crate::output::Out;
use crate::{Cli, check_new_password, open_profile, profile_dir, read_password};

#[derive(Args, Debug)]
pub(crate) struct BackupArgs {
    /// Where to write the encrypted archive (must not exist).
    file: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct RestoreArgs {
    /// The encrypted archive `tern-node backup` wrote.
    file: PathBuf,
    /// Read the recovery code from this file instead of TERN_RECOVERY_CODE or a prompt.
    #[arg(long)]
    code_file: Option<PathBuf>,
    /// Accept an empty password for the new profile (anyone with the files can open it).
    #[arg(long)]
    allow_empty_password: bool,
    /// Argon2id memory in KiB (default 65536). Lower only for tests.
    #[arg(long, hide = true)]
    kdf_memory_kib: Option<u32>,
    /// Argon2id passes (default 3). Lower only for tests.
    #[arg(long, hide = true)]
    kdf_iterations: Option<u32>,
}

pub(crate) fn backup(cli: &Cli, args: &BackupArgs, out: Out) -> Result<()> {
    let profile = open_profile(cli)?;
    let (code, summary) = profile
        .backup(&args.file)
        .with_context(|| format!("cannot write the backup {}", args.file.display()))?;
    let text = code.to_text();
    let file = args.file.display().to_string();
    out.print(
        json!({"backup": file, "code": text.as_str(), "contacts": summary.contacts,
               "messages": summary.messages, "files": summary.files, "groups": summary.groups,
               "bytes": summary.archive_bytes}),
        || {
            format!(
                "wrote {file}: {} contacts, {} groups, {} messages, {} files, {} bytes\n\nRecovery code: write it down now. It is shown only this once, and the backup cannot be restored without it.\n\n{}\n",
                summary.contacts,
                summary.groups,
                summary.messages,
                summary.files,
                summary.archive_bytes,
                code_lines(&text)
            )
        },
    );
    Ok(())
}

#[derive(Args, Debug)]
pub(crate) struct AutoBackupArgs {
    /// The folder the archives go to (it must exist). Omit it with --off.
    dir: Option<PathBuf>,
    /// Hours between two backups (1 to 8760).
    #[arg(long, default_value_t = 24)]
    every_hours: u64,
    /// How many archives to keep (1 to 30); older ones are removed.
    #[arg(long, default_value_t = 7)]
    keep: u8,
    /// Turn automatic backups off (the archives written stay).
    #[arg(long, conflicts_with = "dir")]
    off: bool,
}

/// The recovery code, in lines of four groups, as a person copies it.
fn code_lines(text: &str) -> String {
    let groups: Vec<&str> = text.split(' ').collect();
    let lines: Vec<String> = groups
        .chunks(4)
        .map(|g| format!("    {}", g.join(" ")))
        .collect();
    lines.join("\n")
}

pub(crate) fn auto_backup(cli: &Cli, args: &AutoBackupArgs, out: Out) -> Result<()> {
    let mut profile = open_profile(cli)?;
    if args.off {
        let was_on = profile.disable_auto_backup()?;
        out.print(json!({"auto_backup": "off", "was_on": was_on}), || {
            "automatic backups are off (the archives written stay)".into()
        });
        return Ok(());
    }
    let Some(dir) = &args.dir else {
        bail!("name the folder for the backups, or pass --off");
    };
    let every = std::time::Duration::from_secs(args.every_hours.saturating_mul(3600));
    let code = profile.enable_auto_backup(dir, every, args.keep)?;
    let text = code.to_text();
    let shown = dir.display().to_string();
    out.print(
        json!({"auto_backup": shown, "every_hours": args.every_hours, "keep": args.keep, "code": text.as_str()}),
        || {
            format!(
                "automatic backups to {shown} every {} hours, keeping {} (written while `tern-node run` runs)\n\nRecovery code for all of them: write it down now. It is shown only this once.\n\n{}\n",
                args.every_hours,
                args.keep,
                code_lines(&text)
            )
        },
    );
    Ok(())
}

fn read_code(args: &RestoreArgs) -> Result<RecoveryCode> {
    let text = if let Some(file) = &args.code_file {
        Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the code file {}", file.display()))?,
        )
    } else if let Ok(text) = std::env::var("TERN_RECOVERY_CODE") {
        Zeroizing::new(text)
    } else if std::io::stdin().is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password("Recovery code: ")
                .context("cannot read the recovery code")?,
        )
    } else {
        bail!(
            "no recovery code: set TERN_RECOVERY_CODE, pass --code-file FILE, or run on a terminal"
        );
    };
    Ok(RecoveryCode::parse(&text)?)
}

pub(crate) fn restore_cmd(cli: &Cli, args: &RestoreArgs, out: Out) -> Result<()> {
    let dir = profile_dir(cli)?;
    let code = read_code(args)?;
    let password = read_password(cli, true, "Password for the restored profile: ")?;
    check_new_password(&password, args.allow_empty_password)?;
    let mut kdf = KdfParams::default();
    if let Some(m) = args.kdf_memory_kib {
        kdf.memory_kib = m;
    }
    if let Some(t) = args.kdf_iterations {
        kdf.iterations = t;
    }
    let summary = restore(&args.file, &code, &dir, &password, kdf)
        .with_context(|| format!("cannot restore {}", args.file.display()))?;
    out.print(
        json!({"profile": dir.display().to_string(), "contacts": summary.contacts,
               "messages": summary.messages, "files": summary.files, "groups": summary.groups}),
        || {
            format!(
                "restored profile {}: {} contacts, {} groups, {} messages, {} files\nStart it (`tern-node run`) to reconnect: your contacts switch to new sessions as your card reaches them, and an admin of each group adds you back.",
                dir.display(),
                summary.contacts,
                summary.groups,
                summary.messages,
                summary.files
            )
        },
    );
    Ok(())
}
