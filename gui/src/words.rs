//! Errors in plain words: what the node and the protocol say for developers, said as a person would
//! need to hear it inside the dialog where it happened.

use tern_node::api::FileOpError;
use tern_node::backup::BackupError;
use tern_node::node::NodeError;
use tern_protocol::card::CardError;

/// A count with its noun in the right number: "1 peer", "0 peers", "2 peers".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An invite link that could not be read.
pub fn invite_error(error: &CardError) -> String {
    match error {
        CardError::NotAnInvite | CardError::BadBase58 | CardError::Decode(_) => {
            "That doesn't look like a Tern invite link. Check that you copied all of it.".to_owned()
        }
        CardError::InviteTooLong { .. } => {
            "That is too long to be a Tern invite link. Copy only the link.".to_owned()
        }
        CardError::Incomplete => {
            "That invite link is cut short. Copy or scan the whole link again.".to_owned()
        }
        CardError::Damaged => {
            "That invite link is damaged: a character is wrong, missing or extra. Copy or scan it again."
                .to_owned()
        }
        _ => format!("That invite link can't be used: {error}."),
    }
}

/// Why a group link cannot be used, in plain words (docs/protocol.md §18.11).
pub fn group_link_error(error: &tern_protocol::group_link::GroupLinkError) -> String {
    use tern_protocol::group_link::GroupLinkError;
    match error {
        GroupLinkError::NotALink => {
            "That doesn't look like a Tern group link (it starts with tern-group:).".to_owned()
        }
        GroupLinkError::TooLong { .. } => {
            "That is too long to be a group link. Copy only the link.".to_owned()
        }
        GroupLinkError::Damaged => {
            "That group link is damaged: a character is wrong, missing or extra. Copy it again."
                .to_owned()
        }
        _ => format!("That group link can't be used: {error}."),
    }
}

/// Why a group cannot be made (or renamed) as asked, in plain words; `None` when it can.
pub fn new_group_error(name: &str, members: usize) -> Option<String> {
    let max = tern_node::group::MAX_GROUP_NAME_LEN;
    if name.trim().is_empty() {
        Some("Give the group a name.".to_owned())
    } else if name.len() > max {
        Some(format!(
            "That name is too long: a group name has at most {max} letters."
        ))
    } else if members == 0 {
        Some("Choose at least one contact to invite.".to_owned())
    } else {
        None
    }
}

/// A file that could not be sent, saved, paused, resumed or cancelled, in plain words.
pub fn file_error(error: &NodeError) -> String {
    let name = |p: &std::path::Path| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let NodeError::File(error) = error else {
        return plain(&error.to_string());
    };
    match error {
        FileOpError::Unreadable { path, .. } => format!(
            "Tern can't read {}. Check that the file is there and that you may open it.",
            path.display()
        ),
        FileOpError::NotAFile(path) => {
            format!(
                "{} is a folder or a device, not a file. Choose a file.",
                path.display()
            )
        }
        FileOpError::TooLarge { .. } => {
            "That file is too large: Tern sends files of at most 4 GB.".to_owned()
        }
        FileOpError::DestinationExists(path) => format!(
            "There is already a file named {} there. Tick \"Replace it\" to save over it, or change the name.",
            name(path)
        ),
        FileOpError::NotComplete(_) => "The file has not finished downloading yet.".to_owned(),
        FileOpError::WrongState { .. } => {
            "That can't be done to the file now: it changed meanwhile.".to_owned()
        }
        FileOpError::TooManyFiles { max } => {
            format!("Tern already holds {max} files: delete some messages with files first.")
        }
        FileOpError::BadName(_) => {
            "That file's name can't be sent: rename the file and try again.".to_owned()
        }
        other => plain(&other.to_string()),
    }
}

/// A node error said in a dialog: known developer phrasings become plain sentences; anything else is
/// said as it is, starting with a capital letter.
pub fn plain(error: &str) -> String {
    let lower = error.to_lowercase();
    if lower.contains("wrong password") {
        return "That password isn't right.".to_owned();
    }
    if lower.contains("base58") || lower.contains("not a tern invite link") {
        return "That doesn't look like a Tern invite link. Check that you copied all of it."
            .to_owned();
    }
    if lower.contains("only admins may") {
        return "Only the group's admins can do that.".to_owned();
    }
    if lower.contains("not a member of this group") {
        return "You are no longer a member of this group.".to_owned();
    }
    if lower.contains("already a member") {
        return "They are already in the group.".to_owned();
    }
    if lower.contains("no such member") {
        return "They are no longer in the group.".to_owned();
    }
    if lower.contains("no contact named") {
        return "You can only invite people who are in your contacts.".to_owned();
    }
    if lower.contains("at most") && lower.contains("members") {
        return "The group is full.".to_owned();
    }
    if lower.contains("a group you run") {
        return "That link leads to a group you run: share it with others.".to_owned();
    }
    if lower.contains("group links can be live") {
        return "You have as many links as you can keep: revoke one first.".to_owned();
    }
    if lower.contains("your own invite") {
        return "That is your own invite link: ask your contact for theirs.".to_owned();
    }
    let mut chars = error.chars();
    match chars.next() {
        Some(first) => {
            let text: String = first.to_uppercase().chain(chars).collect();
            if text.ends_with(['.', '!', '?']) {
                text
            } else {
                format!("{text}.")
            }
        }
        None => "Something went wrong.".to_owned(),
    }
}

/// A backup or restore failure in plain words.
pub fn backup_error(e: &BackupError) -> String {
    match e {
        BackupError::MalformedCode(why) if why.contains("checksum") => {
            "That recovery code has a typo: check each character against what you wrote down."
                .to_owned()
        }
        BackupError::MalformedCode(why) if why.contains("few") => {
            "That recovery code is too short: it has 64 characters.".to_owned()
        }
        BackupError::MalformedCode(why) if why.contains("many") => {
            "That recovery code is too long: it has 64 characters.".to_owned()
        }
        BackupError::MalformedCode(_) => {
            "That is not a recovery code: it has only letters and digits.".to_owned()
        }
        BackupError::WrongCode => {
            "That recovery code is not the one for this backup. Nothing was restored.".to_owned()
        }
        BackupError::NotABackup => "That file is not a Tern backup.".to_owned(),
        BackupError::NewerVersion { .. } => {
            "That backup was made by a newer version of Tern: update Tern to restore it.".to_owned()
        }
        BackupError::Truncated => {
            "That backup is incomplete: the file was cut short. Nothing was restored.".to_owned()
        }
        BackupError::Damaged(_) | BackupError::BadRecord { .. } => {
            "That backup is damaged or was changed. Nothing was restored.".to_owned()
        }
        BackupError::ProfileExists(_) => {
            "A profile with that name is already on this computer: choose another name.".to_owned()
        }
        BackupError::FileExists(_) => {
            "A file with that name is already there: choose another name.".to_owned()
        }
        BackupError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            "There is no file or folder at that path.".to_owned()
        }
        other => plain(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn backup_errors_are_said_in_plain_words() {
        let cases = [
            (BackupError::WrongCode, "not the one for this backup"),
            (BackupError::Truncated, "cut short"),
            (BackupError::Damaged("tag"), "damaged or was changed"),
            (
                BackupError::NewerVersion {
                    found: 9,
                    supported: 1,
                },
                "newer version of Tern",
            ),
            (
                BackupError::ProfileExists("/x".into()),
                "already on this computer",
            ),
            (BackupError::NotABackup, "not a Tern backup"),
        ];
        for (error, words) in cases {
            let said = backup_error(&error);
            assert!(said.contains(words), "{said}");
            assert!(!said.contains("/x"), "no paths or developer words: {said}");
        }
    }

    use super::*;

    #[test]
    fn developer_messages_become_plain_sentences() {
        assert_eq!(
            invite_error(&CardError::BadBase58),
            "That doesn't look like a Tern invite link. Check that you copied all of it."
        );
        assert_eq!(
            plain("cannot change the password: wrong password"),
            "That password isn't right."
        );
        assert_eq!(plain("no QR code found"), "No QR code found.");
        assert_eq!(plain(""), "Something went wrong.");
        assert_eq!(
            plain("only admins may do this"),
            "Only the group's admins can do that."
        );
        assert_eq!(plain("already a member"), "They are already in the group.");
        assert_eq!(
            new_group_error("  ", 2).as_deref(),
            Some("Give the group a name.")
        );
        assert_eq!(
            new_group_error("Climbing", 0).as_deref(),
            Some("Choose at least one contact to invite.")
        );
        assert!(
            new_group_error(&"x".repeat(129), 1)
                .unwrap()
                .contains("too long")
        );
        assert_eq!(new_group_error("Climbing", 1), None);
    }

    #[test]
    fn file_errors_are_said_plainly() {
        use std::path::PathBuf;
        let said = |e: FileOpError| file_error(&NodeError::File(e));
        assert_eq!(
            said(FileOpError::DestinationExists(PathBuf::from(
                "/tmp/a/notes.txt"
            ))),
            "There is already a file named notes.txt there. Tick \"Replace it\" to save over it, or \
             change the name."
        );
        assert_eq!(
            said(FileOpError::TooLarge {
                size: 1 << 33,
                max: 1 << 32
            }),
            "That file is too large: Tern sends files of at most 4 GB."
        );
        assert!(said(FileOpError::NotAFile(PathBuf::from("/tmp"))).starts_with("/tmp is a folder"));
        assert!(
            said(FileOpError::Unreadable {
                path: PathBuf::from("/x.txt"),
                reason: "denied".into()
            })
            .starts_with("Tern can't read /x.txt.")
        );
        assert_eq!(file_error(&NodeError::Stopped), "The node has stopped.");
    }

    #[test]
    fn counts_say_one_thing_or_many_things() {
        assert_eq!(count(1, "peer", "peers"), "1 peer");
        assert_eq!(count(0, "peer", "peers"), "0 peers");
        assert_eq!(count(2, "result", "results"), "2 results");
    }
}
