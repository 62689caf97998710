//! Profiles on this computer: one directory each under the data directory (the same place the
//! `tern-node` CLI uses, so a CLI profile shows up here), and the password-strength hint.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The longest profile name, in characters.
pub const MAX_PROFILE_NAME_CHARS: usize = 64;
/// The shortest password the create screen accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Why a profile name cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileNameError {
    #[error("enter a name")]
    Empty,
    #[error("at most {MAX_PROFILE_NAME_CHARS} characters")]
    TooLong,
    #[error("a name cannot contain / \\ or control characters, or be . or ..")]
    BadCharacters,
    #[error("a profile named {0:?} already exists")]
    Exists(String),
}

/// A profile found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEntry {
    /// The directory's name, shown in the profile list.
    pub name: String,
    pub dir: PathBuf,
}

/// Where profiles live by default: the platform data directory (`~/.local/share/tern` on Linux).
pub fn default_root() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "tern", "tern").map(|d| d.data_dir().to_path_buf())
}

/// The profiles under `root`, by name. A directory counts if it holds a Tern store.
pub fn list(root: &Path) -> Vec<ProfileEntry> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<ProfileEntry> = entries
        .flatten()
        .filter(|e| e.path().join(tern_node::profile::STORE_FILE).is_file())
        .filter_map(|e| {
            Some(ProfileEntry {
                name: e.file_name().into_string().ok()?,
                dir: e.path(),
            })
        })
        .collect();
    out.sort_by_key(|p| p.name.to_lowercase());
    out
}

/// The profile in `dir` if it holds a Tern store (named after the directory).
pub fn list_one(dir: &Path) -> Option<ProfileEntry> {
    if !dir.join(tern_node::profile::STORE_FILE).is_file() {
        return None;
    }
    Some(ProfileEntry {
        name: dir.file_name()?.to_string_lossy().into_owned(),
        dir: dir.to_path_buf(),
    })
}

/// The directory for a new profile called `name`, refusing names that are not a plain file name.
pub fn new_profile_dir(root: &Path, name: &str) -> Result<PathBuf, ProfileNameError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ProfileNameError::Empty);
    }
    if name.chars().count() > MAX_PROFILE_NAME_CHARS {
        return Err(ProfileNameError::TooLong);
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(ProfileNameError::BadCharacters);
    }
    let dir = root.join(name);
    if dir.exists() {
        return Err(ProfileNameError::Exists(name.to_owned()));
    }
    Ok(dir)
}

/// How hard a password looks to guess, for the hint under the password field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    TooShort,
    Weak,
    Fair,
    Strong,
}

impl Strength {
    /// A rough estimate: length and the kinds of characters used, with long passphrases counted strong.
    /// It is a hint, not a guarantee; Argon2id (64 MiB, t = 3) slows every guess in any case.
    pub fn of(password: &str) -> Self {
        let len = password.chars().count();
        if len < MIN_PASSWORD_CHARS {
            return Self::TooShort;
        }
        let classes = [
            password.chars().any(|c| c.is_lowercase()),
            password.chars().any(|c| c.is_uppercase()),
            password.chars().any(|c| c.is_numeric()),
            password.chars().any(|c| !c.is_alphanumeric()),
        ]
        .iter()
        .filter(|&&x| x)
        .count();
        let distinct = {
            let mut chars: Vec<char> = password.chars().collect();
            chars.sort_unstable();
            chars.dedup();
            chars.len()
        };
        if distinct < 4 {
            Self::Weak
        } else if len >= 16 || (len >= 12 && classes >= 3) {
            Self::Strong
        } else if len >= 10 || classes >= 3 {
            Self::Fair
        } else {
            Self::Weak
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::TooShort => "Too short: at least 8 characters",
            Self::Weak => "Weak: easy to guess",
            Self::Fair => "Fair: longer is better",
            Self::Strong => "Strong",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_must_be_plain_unused_file_names() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            new_profile_dir(root.path(), "  "),
            Err(ProfileNameError::Empty)
        );
        assert_eq!(
            new_profile_dir(root.path(), "../evil"),
            Err(ProfileNameError::BadCharacters)
        );
        assert_eq!(
            new_profile_dir(root.path(), ".."),
            Err(ProfileNameError::BadCharacters)
        );
        assert_eq!(
            new_profile_dir(root.path(), &"x".repeat(65)),
            Err(ProfileNameError::TooLong)
        );
        let dir = new_profile_dir(root.path(), " Alice ").unwrap();
        assert_eq!(dir, root.path().join("Alice"));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            new_profile_dir(root.path(), "Alice"),
            Err(ProfileNameError::Exists("Alice".into()))
        );
    }

    #[test]
    fn only_directories_holding_a_store_are_listed() {
        let root = tempfile::tempdir().unwrap();
        for name in ["bob", "Alice"] {
            let dir = root.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(tern_node::profile::STORE_FILE), b"").unwrap();
        }
        std::fs::create_dir_all(root.path().join("empty")).unwrap();
        let names: Vec<_> = list(root.path()).into_iter().map(|p| p.name).collect();
        assert_eq!(names, vec!["Alice", "bob"]);
        assert!(list(&root.path().join("missing")).is_empty());
    }

    #[test]
    fn strength_grows_with_length_and_variety() {
        assert_eq!(Strength::of("abc"), Strength::TooShort);
        assert_eq!(Strength::of("aaaaaaaaaaaa"), Strength::Weak);
        assert_eq!(Strength::of("abcdefgh"), Strength::Weak);
        assert_eq!(Strength::of("abcdefghij"), Strength::Fair);
        assert_eq!(Strength::of("Abcdef12!"), Strength::Fair);
        assert_eq!(Strength::of("correct horse battery"), Strength::Strong);
        assert_eq!(Strength::of("Tr0ub4dor&3xyz"), Strength::Strong);
    }
}
