//! Backups in the app's model: the recovery code shown once after "Back up now…", the one-line notice
//! for messages that could not be decrypted (at most once per contact per session), and the checks of
//! the first-run "Restore from a backup" form before anything is asked of the node.

use std::collections::HashMap;
use std::path::PathBuf;

use tern_node::backup::{AutoBackup, RecoveryCode};

use crate::words::backup_error;
use tern_node::profile::Password;
use tern_protocol::IdentityKey;
use zeroize::Zeroizing;

use super::Model;
use crate::profiles::Strength;

/// A recovery code waiting to be written down. Its text is wiped from memory when this is dropped
/// (the modal closes).
pub struct ShownCode {
    text: Zeroizing<String>,
    /// Where the backup it opens was written (or, for automatic backups, the folder).
    pub written_to: PathBuf,
    /// It opens the automatic backups in the folder `written_to`.
    pub folder: bool,
}

impl ShownCode {
    pub fn new(code: &RecoveryCode, written_to: PathBuf) -> Self {
        Self {
            text: code.to_text(),
            written_to,
            folder: false,
        }
    }

    /// The code of every automatic backup written to `dir`.
    pub fn for_folder(code: &RecoveryCode, dir: PathBuf) -> Self {
        Self {
            folder: true,
            ..Self::new(code, dir)
        }
    }

    /// The code as the node writes it: 16 groups of 4 characters, separated by spaces.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The code in lines of four groups, for reading it off the screen.
    pub fn lines(&self) -> Vec<Zeroizing<String>> {
        code_lines(&self.text)
    }
}

impl std::fmt::Debug for ShownCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShownCode")
            .field("written_to", &self.written_to)
            .finish_non_exhaustive()
    }
}

/// Groups of four code characters, four groups a line (whatever spacing `text` had).
pub fn code_lines(text: &str) -> Vec<Zeroizing<String>> {
    let chars: Zeroizing<Vec<char>> =
        Zeroizing::new(text.chars().filter(char::is_ascii_alphanumeric).collect());
    chars
        .chunks(16)
        .map(|line| {
            let mut out = Zeroizing::new(String::with_capacity(19));
            for (i, group) in line.chunks(4).enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.extend(group.iter());
            }
            out
        })
        .collect()
}

/// What the app knows of backups while a profile is open.
#[derive(Debug, Default)]
pub struct BackupState {
    /// The code of the backup just written, until the person closes its modal.
    pub code: Option<ShownCode>,
    /// A backup is being written (the node is stopped meanwhile).
    pub busy: bool,
    /// The one-line notice per contact whose messages could not be decrypted this session.
    pub undecryptable: HashMap<IdentityKey, String>,
    /// The automatic backup schedule, if they are on (read when the profile opens).
    pub auto: Option<AutoBackup>,
}

/// The plain words for a notice about `name`'s undecryptable message.
pub fn undecryptable_line(name: &str) -> String {
    format!(
        "A message from {name} could not be decrypted. It was sent before your backup was restored; \
         ask {name} to send it again."
    )
}

impl Model {
    /// A message from `contact` could not be decrypted: said once per contact this session (a toast,
    /// and a line in their conversation); the next envelopes from them change nothing.
    pub fn undecryptable(&mut self, contact: IdentityKey, name: &str) {
        if self.backup.undecryptable.contains_key(&contact) {
            return;
        }
        let line = undecryptable_line(name);
        self.backup.undecryptable.insert(contact, line.clone());
        self.notice(line);
    }

    /// The node wrote an automatic backup at `now_ms`.
    pub fn auto_backup_written(&mut self, now_ms: u64) {
        if let Some(auto) = &mut self.backup.auto {
            auto.last_ms = now_ms;
        }
    }

    /// Automatic backups were turned on (with the code to show once) or off.
    pub fn auto_backup_set(&mut self, schedule: Option<AutoBackup>, code: Option<ShownCode>) {
        self.backup.busy = false;
        self.dialog_error = None;
        self.backup.auto = schedule;
        match code {
            Some(code) => {
                self.notice("Automatic backups are on");
                self.backup.code = Some(code);
            }
            None => self.notice("Automatic backups are off (the backups written stay)"),
        }
    }

    /// The backup is written: its code is shown until the person says they wrote it down.
    pub fn backup_written(&mut self, code: ShownCode) {
        self.backup.busy = false;
        self.dialog_error = None;
        self.notice(format!("Backup written to {}", code.written_to.display()));
        self.backup.code = Some(code);
    }
}

/// What the restore form holds, checked (the executor expands a leading `~/` in the path).
pub struct RestoreRequest {
    pub archive: PathBuf,
    pub code: RecoveryCode,
    pub password: Password,
}

/// Checks the restore form: an archive path, a recovery code that parses (spaces, dashes and case do
/// not matter), and the new password twice. The error is in plain words.
pub fn check_restore(
    archive: &str,
    code: &str,
    password: &str,
    repeat: &str,
) -> Result<RestoreRequest, String> {
    if archive.trim().is_empty() {
        return Err("Type the path of the backup file, or choose it.".to_owned());
    }
    let code = RecoveryCode::parse(code).map_err(|e| backup_error(&e))?;
    if Strength::of(password) == Strength::TooShort {
        return Err(format!("Password: {}.", Strength::TooShort.label()));
    }
    if password != repeat {
        return Err("The two passwords differ. Type the same new password twice.".to_owned());
    }
    Ok(RestoreRequest {
        archive: PathBuf::from(archive.trim()),
        code,
        password: Password::new(password.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_rows::key;

    #[test]
    fn the_undecryptable_notice_is_said_once_per_contact() {
        let mut m = Model::default();
        for _ in 0..5 {
            m.undecryptable(key(1), "Bob");
        }
        assert_eq!(m.notices.len(), 1, "five envelopes, one notice");
        assert!(
            m.notices[0]
                .text
                .contains("A message from Bob could not be decrypted")
        );
        assert!(m.notices[0].text.contains("ask Bob to send it again"));
        m.undecryptable(key(2), "Carol");
        assert_eq!(m.notices.len(), 2, "another contact is told once too");
        assert_eq!(m.backup.undecryptable.len(), 2);
    }

    #[test]
    fn a_code_is_grouped_four_by_four_in_four_lines() {
        let code = RecoveryCode::from_secret([7; 32]);
        let shown = ShownCode::new(&code, PathBuf::from("/tmp/b.tern"));
        let lines = shown.lines();
        assert_eq!(lines.len(), 4);
        for line in &lines {
            let groups: Vec<&str> = line.split(' ').collect();
            assert_eq!(groups.len(), 4);
            assert!(groups.iter().all(|g| g.len() == 4));
        }
        let joined: String = lines.iter().map(|l| l.replace(' ', "")).collect();
        assert_eq!(joined.len(), 64);
        // What is shown reads back as the same code.
        let back = RecoveryCode::parse(&joined).unwrap();
        assert_eq!(*back.to_text(), *code.to_text());
        assert!(
            !format!("{shown:?}").contains(&lines[0][..4]),
            "Debug never shows the code"
        );
    }

    #[test]
    fn the_restore_form_is_checked_in_plain_words() {
        let code = RecoveryCode::from_secret([9; 32]);
        let text = code.to_text();
        let messy = text.to_lowercase().replace(' ', "-");
        let pw = "correct horse battery";
        let ok = check_restore(" /tmp/b.tern ", &messy, pw, pw).unwrap();
        assert_eq!(ok.archive, PathBuf::from("/tmp/b.tern"));
        assert_eq!(*ok.code.to_text(), *text);

        let err = |a: &str, c: &str, p: &str, r: &str| check_restore(a, c, p, r).err().unwrap();
        assert!(err("", &text, pw, pw).contains("path of the backup"));
        assert!(err("/b", &text[..20], pw, pw).contains("too short"));
        let mut typo = text.to_string();
        let first = typo.remove(0);
        typo.insert(0, if first == 'A' { 'B' } else { 'A' });
        assert!(err("/b", &typo, pw, pw).contains("typo"));
        assert!(err("/b", "hello!", pw, pw).contains("not a recovery code"));
        assert!(err("/b", &text, "short", "short").contains("Too short"));
        assert!(err("/b", &text, pw, "something else").contains("differ"));
    }
}
