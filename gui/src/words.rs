//! Errors in plain words: what the node and the protocol say for developers, said as a person would
//! need to hear it inside the dialog where it happened.

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

#[cfg(test)]
mod tests {
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
    }

    #[test]
    fn counts_say_one_thing_or_many_things() {
        assert_eq!(count(1, "peer", "peers"), "1 peer");
        assert_eq!(count(0, "peer", "peers"), "0 peers");
        assert_eq!(count(2, "result", "results"), "2 results");
    }
}
