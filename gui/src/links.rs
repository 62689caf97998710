//! Web links in message text: the `http://` and `https://` addresses a message holds, found so the bubble
//! can draw them as links (opened only when clicked). A link is ASCII only and ends at the first space or
//! character outside printable ASCII, so a link written inside Chinese, Japanese, Arabic or Hebrew text
//! ends where that text starts again; sentence punctuation right after it (".", ",", ")" without its
//! "(") stays text. An address with non-ASCII letters is linked up to its first such letter.

/// A part of a message's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// A web address, as written.
    Link(&'a str),
}

/// Where a link that starts at `start` (its scheme already matched) ends.
fn link_end(text: &str, start: usize, host_at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut end = host_at;
    while end < bytes.len()
        && bytes[end].is_ascii_graphic()
        && !matches!(bytes[end], b'<' | b'>' | b'"' | b'`')
    {
        end += 1;
    }
    // Punctuation that ends a sentence or closes a bracket opened before the link is not part of it.
    while let Some(&last) = bytes[host_at..end].last() {
        let unbalanced = |open: u8, close: u8| {
            last == close
                && bytes[start..end].iter().filter(|b| **b == open).count()
                    < bytes[start..end].iter().filter(|b| **b == close).count()
        };
        if matches!(last, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'*')
            || unbalanced(b'(', b')')
            || unbalanced(b'[', b']')
        {
            end -= 1;
        } else {
            break;
        }
    }
    // A host must start with a letter or digit.
    bytes
        .get(host_at)
        .filter(|b| b.is_ascii_alphanumeric() && host_at < end)
        .map(|_| end)
}

/// The scheme length if a link starts at byte `at` (`http://` or `https://`, any case, not glued to a
/// letter or digit before it).
fn scheme_at(text: &str, at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if at > 0 && bytes[at - 1].is_ascii_alphanumeric() {
        return None;
    }
    ["https://", "http://"].into_iter().find_map(|scheme| {
        bytes
            .get(at..at + scheme.len())
            .filter(|b| b.eq_ignore_ascii_case(scheme.as_bytes()))
            .map(|_| scheme.len())
    })
}

/// Splits `text` into plain text and links, in order; text with no link is one piece.
pub fn split(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut plain_from = 0;
    let mut at = 0;
    let bytes = text.as_bytes();
    while at < bytes.len() {
        // Every match starts with an ASCII byte, which is always a character boundary in UTF-8.
        if bytes[at].eq_ignore_ascii_case(&b'h')
            && let Some(scheme) = scheme_at(text, at)
            && let Some(end) = link_end(text, at, at + scheme)
        {
            if plain_from < at {
                pieces.push(Piece::Text(&text[plain_from..at]));
            }
            pieces.push(Piece::Link(&text[at..end]));
            plain_from = end;
            at = end;
        } else {
            at += 1;
        }
    }
    if plain_from < text.len() || pieces.is_empty() {
        pieces.push(Piece::Text(&text[plain_from..]));
    }
    pieces
}

/// Whether `text` holds a link (a quick test before [`split`]).
pub fn has_link(text: &str) -> bool {
    split(text).iter().any(|p| matches!(p, Piece::Link(_)))
}

#[cfg(test)]
mod tests {
    use super::Piece::{Link, Text};
    use super::*;

    #[test]
    fn links_are_found_between_words_and_punctuation_stays_text() {
        assert_eq!(split("no links here"), vec![Text("no links here")]);
        assert_eq!(split(""), vec![Text("")]);
        assert_eq!(
            split("see https://example.org/a?b=1#c, then http://x.io."),
            vec![
                Text("see "),
                Link("https://example.org/a?b=1#c"),
                Text(", then "),
                Link("http://x.io"),
                Text("."),
            ]
        );
        assert_eq!(
            split("(https://en.wikipedia.org/wiki/Tern_(bird))"),
            vec![
                Text("("),
                Link("https://en.wikipedia.org/wiki/Tern_(bird)"),
                Text(")"),
            ]
        );
        assert_eq!(split("HTTPS://A.B"), vec![Link("HTTPS://A.B")]);
    }

    #[test]
    fn things_that_only_look_like_links_stay_text() {
        for text in [
            "http://",
            "https:// x",
            "xhttps://a.b",
            "ftp://a.b",
            "http:/a.b",
            "https://-",
        ] {
            assert!(!has_link(text), "{text}");
        }
    }

    #[test]
    fn a_link_inside_cjk_or_right_to_left_text_ends_where_that_text_starts() {
        assert_eq!(
            split("看这个https://example.com/a，好吗"),
            vec![
                Text("看这个"),
                Link("https://example.com/a"),
                Text("，好吗")
            ]
        );
        assert_eq!(
            split("مرحبا https://example.com/مرحبا"),
            vec![Text("مرحبا "), Link("https://example.com/"), Text("مرحبا")]
        );
        assert_eq!(
            split("שלוםhttps://a.io/x👋"),
            vec![Text("שלום"), Link("https://a.io/x"), Text("👋")]
        );
        // Every piece joined gives the text back.
        let text = "a https://b.c/d 世界 http://e.f";
        assert_eq!(
            split(text)
                .iter()
                .map(|p| match p {
                    Text(t) | Link(t) => *t,
                })
                .collect::<String>(),
            text
        );
    }
}
