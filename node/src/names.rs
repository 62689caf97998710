//! Display names: the one set of rules every name Tern accepts goes through (a profile's own name, a
//! contact's local name given with `--name` or typed in the app, a rename, the name on a card that arrives
//! with a contact request), and how names are compared.
//!
//! # Rules ([`clean_name`])
//!
//! 1. Normalised to Unicode NFC (the same text typed on two systems is the same name).
//! 2. Control characters (newlines, tabs, C0/C1) are refused ([`NameError::Control`]).
//! 3. Invisible and direction-changing characters are refused ([`NameError::Invisible`]): zero-width
//!    spaces and joiners, word joiners, soft hyphens, the bidi marks, embeddings, overrides and isolates
//!    (U+200E/F, U+202A-202E, U+2066-2069, U+061C), byte-order marks, Hangul and braille fillers, tag
//!    characters. A zero-width joiner between two symbols (an emoji sequence such as a family) is allowed;
//!    between letters it would hide a difference, so it is refused there.
//! 4. Runs of whitespace become one space; leading and trailing whitespace is trimmed.
//! 5. What is left must not be empty ([`NameError::Empty`]) nor longer than [`MAX_NAME_LEN`] bytes.
//!
//! # Comparing ([`same_name`], [`looks_like`])
//!
//! Two names are the *same* when their NFKC forms are equal ignoring case ("Dave" and "dave", "Ｂob" and
//! "Bob"): a contact's name is unique in this sense, so `send Dave` never matches two contacts. Two names
//! *look alike* when their confusable skeletons (Unicode TS #39, from the `unicode-security` crate) are
//! equal ignoring case ("Bob" and "Bоb" with a Cyrillic о, "l" and "I"): allowed, but the user is told
//! once, with a [`Lookalike`], when a new contact's name looks like an existing one.

use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

/// The longest name in bytes, as a card carries it.
pub const MAX_NAME_LEN: usize = tern_protocol::card::MAX_DISPLAY_NAME_LEN;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("a name must not be empty")]
    Empty,
    #[error("a name must be at most {max} bytes (this one is {len})")]
    TooLong { len: usize, max: usize },
    #[error("a name must not contain control characters such as newlines or tabs (U+{code:04X})")]
    Control { code: u32 },
    #[error(
        "a name must not contain invisible or direction-changing characters (U+{code:04X}): they make one name look like another"
    )]
    Invisible { code: u32 },
}

/// A new contact's name that looks like an existing contact's: shown to the user once, when it is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookalike {
    /// The new contact's name.
    pub name: String,
    /// The existing contact it looks like.
    pub existing: String,
}

impl std::fmt::Display for Lookalike {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\"{}\" looks like your contact \"{}\": check who is who before sending anything",
            self.name, self.existing
        )
    }
}

/// Characters that show nothing (or change the direction of what follows) but make two names differ.
fn is_invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD // soft hyphen
            | 0x034F // combining grapheme joiner
            | 0x061C // Arabic letter mark
            | 0x115F | 0x1160 // Hangul fillers
            | 0x17B4 | 0x17B5 // Khmer inherent vowels
            | 0x180B..=0x180F // Mongolian variation selectors and vowel separator
            | 0x200B..=0x200F // zero-width space, non-joiner, joiner, LRM, RLM
            | 0x202A..=0x202E // bidi embeddings and overrides
            | 0x2060..=0x2064 // word joiner, invisible operators
            | 0x2066..=0x206F // bidi isolates, deprecated format characters
            | 0x2800 // braille blank
            | 0x3164 // Hangul filler
            | 0xFEFF // byte-order mark
            | 0xFFA0 // halfwidth Hangul filler
            | 0xFFF9..=0xFFFB // interlinear annotations
            | 0x1D173..=0x1D17A // musical format characters
            | 0xE0000..=0xE007F // tags
    )
}

const ZWJ: char = '\u{200D}';

/// A character a zero-width joiner may sit between: not a letter or digit (emoji, symbols).
fn joinable(c: Option<char>) -> bool {
    c.is_some_and(|c| !c.is_alphanumeric() && !c.is_whitespace())
}

/// Checks and normalises a name by the rules above; the name to store.
pub fn clean_name(raw: &str) -> Result<String, NameError> {
    let chars: Vec<char> = raw.nfc().collect();
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_control() {
            return Err(NameError::Control { code: c as u32 });
        }
        if c == ZWJ {
            let before = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
            if joinable(before) && joinable(chars.get(i + 1).copied()) {
                out.push(c);
                continue;
            }
            return Err(NameError::Invisible { code: c as u32 });
        }
        if is_invisible(c) {
            return Err(NameError::Invisible { code: c as u32 });
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err(NameError::Empty);
    }
    if out.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            len: out.len(),
            max: MAX_NAME_LEN,
        });
    }
    Ok(out)
}

/// A name from someone else (the card of a contact request): what [`clean_name`] allows, with anything
/// it refuses taken out rather than refusing the request; `fallback` if nothing is left.
pub fn sanitize_name(raw: &str, fallback: &str) -> String {
    let kept: String = raw
        .nfc()
        .filter(|c| !c.is_control() && !is_invisible(*c) && *c != ZWJ)
        .collect();
    clean_name(&kept).unwrap_or_else(|_| fallback.to_owned())
}

/// The form names are compared in for sameness: NFKC, lower case.
fn folded(name: &str) -> String {
    name.nfkc().collect::<String>().to_lowercase()
}

/// The form names are compared in for likeness: the TS #39 skeleton of the folded name, folded again.
fn skeleton(name: &str) -> String {
    let once: String = unicode_security::skeleton(&folded(name)).collect();
    folded(&once)
}

/// Whether two names are the same name (NFKC, ignoring case): a contact's name is unique in this sense.
pub fn same_name(a: &str, b: &str) -> bool {
    folded(a) == folded(b)
}

/// Whether two names that are not the same look alike (equal confusable skeletons).
pub fn looks_like(a: &str, b: &str) -> bool {
    !same_name(a, b) && skeleton(a) == skeleton(b)
}

/// The first of `existing` that `name` looks like, as the warning to show once.
pub fn lookalike<'a>(name: &str, existing: impl IntoIterator<Item = &'a str>) -> Option<Lookalike> {
    let key = skeleton(name);
    existing
        .into_iter()
        .find(|other| !same_name(name, other) && skeleton(other) == key)
        .map(|other| Lookalike {
            name: name.to_owned(),
            existing: other.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_direction_characters_are_refused() {
        for raw in [
            "Bo\u{200B}b",  // zero-width space
            "Bob\u{200E}",  // left-to-right mark
            "\u{202E}boB",  // right-to-left override
            "Bo\u{2066}b",  // isolate
            "\u{FEFF}Bob",  // byte-order mark
            "B\u{00AD}ob",  // soft hyphen
            "\u{3164}",     // Hangul filler
            "Bo\u{200D}b",  // a joiner between letters
            "Bob\u{E0041}", // a tag character
        ] {
            assert!(
                matches!(clean_name(raw), Err(NameError::Invisible { .. })),
                "{raw:?}: {:?}",
                clean_name(raw)
            );
        }
    }

    #[test]
    fn controls_are_refused_and_whitespace_is_tidied() {
        assert_eq!(
            clean_name("Bob\nSmith"),
            Err(NameError::Control { code: 0x0A })
        );
        assert_eq!(clean_name("a\tb"), Err(NameError::Control { code: 0x09 }));
        assert_eq!(clean_name("   "), Err(NameError::Empty));
        assert_eq!(clean_name(""), Err(NameError::Empty));
        assert_eq!(
            clean_name("  Ann   \u{3000} Lee "),
            Ok("Ann Lee".to_owned())
        );
        assert!(matches!(
            clean_name(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn names_are_nfc_and_emoji_sequences_survive() {
        // "é" as e + combining accent is stored as the one character.
        assert_eq!(clean_name("Ame\u{301}lie"), Ok("Am\u{e9}lie".to_owned()));
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} Home";
        assert_eq!(clean_name(family), Ok(family.to_owned()));
        assert_eq!(clean_name("Zoë ❤️"), Ok("Zoë ❤️".to_owned()));
    }

    #[test]
    fn case_and_width_make_the_same_name() {
        assert!(same_name("Dave", "dave"));
        assert!(same_name("Ｂob", "bob"), "full-width B");
        assert!(!same_name("Bob", "Bob2"));
    }

    #[test]
    fn confusables_look_alike_but_are_not_the_same() {
        let cyrillic = "B\u{043E}b";
        assert!(!same_name("Bob", cyrillic));
        assert!(looks_like("Bob", cyrillic));
        assert!(looks_like("paypal", "paypa1"));
        assert!(!looks_like("Bob", "Rob"));
        assert!(
            !looks_like("Bob", "bob"),
            "the same name is not a lookalike"
        );
        let warning = lookalike(cyrillic, ["Alice", "Bob"]).unwrap();
        assert_eq!(warning.existing, "Bob");
        assert!(warning.to_string().contains("looks like"));
        assert_eq!(lookalike("Carol", ["Alice", "Bob"]), None);
    }

    #[test]
    fn a_peer_s_name_is_cleaned_rather_than_refused() {
        assert_eq!(sanitize_name("\u{202E}Mallory\u{200B}", "x"), "Mallory");
        assert_eq!(sanitize_name("\u{200B}\n", "12D3Koo"), "12D3Koo");
        assert_eq!(sanitize_name(" Eve ", "x"), "Eve");
    }
}
