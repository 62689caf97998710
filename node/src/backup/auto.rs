//! Automatic backups to a folder the user picks (issue 15): when they are turned on, one recovery code is
//! made and shown once; it is kept sealed in the profile's settings, so every later archive opens with that
//! same code. A new archive is written whenever `every` has passed since the last one, named
//! `tern-backup-<unix ms>.tern`, and only the newest `keep` of those names are kept in the folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use super::code::RecoveryCode;
use super::{BackupError, BackupSummary};
use crate::engine::Engine;

pub use crate::settings::AUTO_BACKUP_SETTING;
/// The shortest schedule.
pub const MIN_EVERY: Duration = Duration::from_secs(3600);
/// The longest schedule (a year).
pub const MAX_EVERY: Duration = Duration::from_secs(365 * 24 * 3600);
/// At most this many archives are kept.
pub const MAX_KEEP: u8 = 30;
const PREFIX: &str = "tern-backup-";
const SUFFIX: &str = ".tern";
const FORMAT: u8 = 1;

/// The schedule as the user sees it (the code is never shown again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoBackup {
    /// The folder the archives go to.
    pub dir: PathBuf,
    /// How often a new archive is written.
    pub every: Duration,
    /// How many archives are kept.
    pub keep: u8,
    /// When the last archive was written (unix ms), 0 if none yet.
    pub last_ms: u64,
}

fn invalid(reason: &'static str) -> BackupError {
    BackupError::BadRecord {
        what: "automatic backup setting",
        reason: reason.into(),
    }
}

fn encode(schedule: &AutoBackup, code: &RecoveryCode) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let dir = schedule
        .dir
        .to_str()
        .ok_or_else(|| invalid("the folder's name is not UTF-8"))?;
    let code = code.to_text();
    let mut out = Zeroizing::new(Vec::with_capacity(32 + code.len() + dir.len()));
    out.push(FORMAT);
    out.extend_from_slice(&schedule.every.as_secs().to_be_bytes());
    out.push(schedule.keep);
    out.extend_from_slice(&schedule.last_ms.to_be_bytes());
    out.push(code.len() as u8);
    out.extend_from_slice(code.as_bytes());
    out.extend_from_slice(dir.as_bytes());
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<(AutoBackup, RecoveryCode), BackupError> {
    let take = |at: usize, n: usize| {
        bytes
            .get(at..at + n)
            .ok_or_else(|| invalid("the setting is cut short"))
    };
    if take(0, 1)? != [FORMAT] {
        return Err(invalid("an unknown format"));
    }
    let every = u64::from_be_bytes(take(1, 8)?.try_into().unwrap_or([0; 8]));
    let keep = take(9, 1)?[0];
    let last_ms = u64::from_be_bytes(take(10, 8)?.try_into().unwrap_or([0; 8]));
    let code_len = usize::from(take(18, 1)?[0]);
    let code = std::str::from_utf8(take(19, code_len)?).map_err(|_| invalid("the code"))?;
    let code = RecoveryCode::parse(code)?;
    let dir = std::str::from_utf8(&bytes[19 + code_len..]).map_err(|_| invalid("the folder"))?;
    Ok((
        AutoBackup {
            dir: PathBuf::from(dir),
            every: Duration::from_secs(every),
            keep,
            last_ms,
        },
        code,
    ))
}

/// The archives of an automatic backup in `dir`, oldest first (by the time in their names).
pub fn archives_in(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stamp) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((stamp, entry.path()));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

impl Engine {
    /// Turns automatic backups on (or changes the folder and schedule) with a new recovery code, returned
    /// to be shown once. The folder must exist. Nothing is written until [`Self::auto_backup_if_due`].
    pub fn enable_auto_backup(
        &mut self,
        dir: &Path,
        every: Duration,
        keep: u8,
    ) -> Result<RecoveryCode, BackupError> {
        if !(MIN_EVERY..=MAX_EVERY).contains(&every) {
            return Err(invalid("the schedule must be between an hour and a year"));
        }
        if keep == 0 || keep > MAX_KEEP {
            return Err(invalid("keep between 1 and 30 backups"));
        }
        if !dir.is_dir() {
            return Err(BackupError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not a folder", dir.display()),
            )));
        }
        let code = RecoveryCode::generate(&mut rand::rng());
        let schedule = AutoBackup {
            dir: dir.to_owned(),
            every,
            keep,
            last_ms: 0,
        };
        self.store_mut()
            .setting_put(AUTO_BACKUP_SETTING, &encode(&schedule, &code)?)?;
        Ok(code)
    }

    /// Turns automatic backups off (the archives written stay); `true` if they were on.
    pub fn disable_auto_backup(&mut self) -> Result<bool, BackupError> {
        Ok(self.store_mut().setting_delete(AUTO_BACKUP_SETTING)?)
    }

    /// The schedule, if automatic backups are on.
    pub fn auto_backup(&self) -> Result<Option<AutoBackup>, BackupError> {
        match self.store().setting_get(AUTO_BACKUP_SETTING)? {
            None => Ok(None),
            Some(bytes) => decode(&bytes).map(|(schedule, _)| Some(schedule)),
        }
    }

    /// Writes a new archive if automatic backups are on and `every` has passed since the last one at
    /// `now_ms`, then removes the oldest archives past `keep`. Returns the new archive's path. Blocking.
    pub fn auto_backup_if_due(
        &mut self,
        now_ms: u64,
    ) -> Result<Option<(PathBuf, BackupSummary)>, BackupError> {
        let Some(bytes) = self.store().setting_get(AUTO_BACKUP_SETTING)? else {
            return Ok(None);
        };
        let (mut schedule, code) = decode(&bytes)?;
        let every_ms = schedule.every.as_millis() as u64;
        if schedule.last_ms != 0 && now_ms < schedule.last_ms.saturating_add(every_ms) {
            return Ok(None);
        }
        let path = schedule.dir.join(format!("{PREFIX}{now_ms}{SUFFIX}"));
        let summary = self.backup_with_code(&path, &code)?;
        let archives = archives_in(&schedule.dir)?;
        let surplus = archives.len().saturating_sub(usize::from(schedule.keep));
        for old in &archives[..surplus] {
            fs::remove_file(old)?;
        }
        schedule.last_ms = now_ms;
        self.store_mut()
            .setting_put(AUTO_BACKUP_SETTING, &encode(&schedule, &code)?)?;
        Ok(Some((path, summary)))
    }
}

impl crate::profile::Profile {
    /// [`Engine::enable_auto_backup`]: returns the code to show once.
    pub fn enable_auto_backup(
        &mut self,
        dir: &Path,
        every: Duration,
        keep: u8,
    ) -> Result<RecoveryCode, BackupError> {
        self.engine.enable_auto_backup(dir, every, keep)
    }

    /// [`Engine::disable_auto_backup`].
    pub fn disable_auto_backup(&mut self) -> Result<bool, BackupError> {
        self.engine.disable_auto_backup()
    }

    /// [`Engine::auto_backup`].
    pub fn auto_backup(&self) -> Result<Option<AutoBackup>, BackupError> {
        self.engine.auto_backup()
    }

    /// [`Engine::auto_backup_if_due`].
    pub fn auto_backup_if_due(
        &mut self,
        now_ms: u64,
    ) -> Result<Option<(PathBuf, BackupSummary)>, BackupError> {
        self.engine.auto_backup_if_due(now_ms)
    }
}
