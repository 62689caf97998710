//! Right-to-left text in the right order, for text that is displayed (bubbles, list previews), not
//! edited. egui 0.35 shapes each run of one font with harfrust: an Arabic or Hebrew word comes out
//! joined and right to left, but it places the runs left to right in the order they were typed, so a
//! sentence's words read backwards, and a wrapped paragraph would start on its last row. [`visual`]
//! breaks each paragraph into rows first, then orders every row by the Unicode bidirectional algorithm
//! (`unicode-bidi`), leaving each right-to-left word in typed order because the shaper turns it round.

use std::borrow::Cow;

use unicode_bidi::{BidiClass, BidiInfo, bidi_class};
use unicode_segmentation::UnicodeSegmentation;

/// `text` as egui should lay it out so it reads right: rows (broken at `max_width` as `measure` finds
/// widths) joined by `\n`, each in visual order. Text with no right-to-left character is returned as it
/// is (no work, no rows added).
pub fn visual<'a>(
    text: &'a str,
    max_width: f32,
    measure: &mut dyn FnMut(&str) -> f32,
) -> Cow<'a, str> {
    if !text.chars().any(is_rtl) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (i, paragraph) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if !paragraph.chars().any(is_rtl) {
            out.push_str(paragraph);
            continue;
        }
        let bidi = BidiInfo::new(paragraph, None);
        let Some(para) = bidi.paragraphs.first() else {
            out.push_str(paragraph);
            continue;
        };
        for (j, row) in rows(paragraph, max_width, measure).into_iter().enumerate() {
            if j > 0 {
                out.push('\n');
            }
            let (levels, runs) = bidi.visual_runs(para, row);
            for run in runs {
                let piece = &paragraph[run.clone()];
                if levels[run.start].is_rtl() {
                    push_reversed(&mut out, piece);
                } else {
                    out.push_str(piece);
                }
            }
        }
    }
    Cow::Owned(out)
}

/// [`visual`] with the widths of `font` in `ui`: what a label of at most `max_width` should show.
pub fn for_label<'a>(
    ui: &egui::Ui,
    text: &'a str,
    font: &egui::FontId,
    max_width: f32,
) -> Cow<'a, str> {
    if !text.chars().any(is_rtl) {
        return Cow::Borrowed(text);
    }
    let mut measure = |s: &str| {
        ui.fonts_mut(|f| {
            f.layout_no_wrap(s.to_owned(), font.clone(), egui::Color32::WHITE)
                .size()
                .x
        })
    };
    visual(text, max_width, &mut measure)
}

/// Whether `c` makes text right to left (a Hebrew or Arabic letter, or an explicit right-to-left mark).
fn is_rtl(c: char) -> bool {
    matches!(
        bidi_class(c),
        BidiClass::R | BidiClass::AL | BidiClass::RLE | BidiClass::RLO | BidiClass::RLI
    )
}

/// Byte ranges of `paragraph`'s rows: words (with the spaces after them) added while the row stays
/// within `max_width`; a word wider than that gets a row of its own (egui breaks it further).
fn rows(
    paragraph: &str,
    max_width: f32,
    measure: &mut dyn FnMut(&str) -> f32,
) -> Vec<std::ops::Range<usize>> {
    let mut rows = Vec::new();
    if max_width.is_infinite() {
        rows.push(0..paragraph.len());
        return rows;
    }
    let mut start = 0;
    let mut end = 0;
    for (at, word) in paragraph.split_inclusive(' ').scan(0, |at, w| {
        let here = *at;
        *at += w.len();
        Some((here, w))
    }) {
        let candidate = &paragraph[start..at + word.len()];
        if end > start && measure(candidate.trim_end()) > max_width {
            rows.push(start..start + paragraph[start..end].trim_end().len());
            start = at;
        }
        end = at + word.len();
    }
    rows.push(start..end);
    rows
}

/// Appends a right-to-left run in visual order: its pieces reversed, where a piece is a run of
/// right-to-left letters (with their marks and joiners), kept in typed order because the shaper
/// reverses it, or any other single grapheme cluster (an emoji sequence stays whole), mirrored if it
/// is a bracket.
fn push_reversed(out: &mut String, run: &str) {
    let mut pieces: Vec<&str> = Vec::new();
    let mut start: Option<usize> = None;
    for (at, cluster) in run.grapheme_indices(true) {
        let letter = cluster.chars().next().is_some_and(shaped_rtl);
        let joins = cluster
            .chars()
            .all(|c| matches!(bidi_class(c), BidiClass::NSM | BidiClass::BN));
        match start {
            Some(_) if letter || joins => {}
            Some(s) => {
                pieces.push(&run[s..at]);
                start = None;
            }
            None => {}
        }
        if start.is_none() {
            if letter {
                start = Some(at);
            } else {
                pieces.push(cluster);
            }
        }
    }
    if let Some(s) = start {
        pieces.push(&run[s..]);
    }
    for piece in pieces.into_iter().rev() {
        let mut chars = piece.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => out.push(mirror(c)),
            _ => out.push_str(piece),
        }
    }
}

/// Characters an Arabic or Hebrew font shapes as part of a right-to-left word (letters, and the
/// scripts' own punctuation, which the same font draws in the same run).
fn shaped_rtl(c: char) -> bool {
    matches!(bidi_class(c), BidiClass::R | BidiClass::AL)
        || matches!(c as u32, 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF)
}

/// The mirrored glyph a bracket takes in right-to-left text.
fn mirror(c: char) -> char {
    match c {
        '(' => ')',
        ')' => '(',
        '[' => ']',
        ']' => '[',
        '{' => '}',
        '}' => '{',
        '<' => '>',
        '>' => '<',
        '«' => '»',
        '»' => '«',
        '‹' => '›',
        '›' => '‹',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_row(text: &str) -> String {
        visual(text, f32::INFINITY, &mut |s| s.chars().count() as f32).into_owned()
    }

    #[test]
    fn text_without_rtl_is_untouched() {
        let text = "héllo 世界 👋 (ok)";
        assert!(matches!(
            visual(text, 3.0, &mut |s| s.len() as f32),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn rtl_words_keep_their_letters_in_order_but_swap_places() {
        // "hello you" in Arabic: the first word must end up on the right.
        assert_eq!(one_row("مرحبا بك"), "بك مرحبا");
        assert_eq!(one_row("שלום עולם"), "עולם שלום");
    }

    #[test]
    fn a_mixed_line_keeps_latin_in_place() {
        // An LTR paragraph (it starts with Latin): the Arabic word sits where it was typed.
        assert_eq!(one_row("héllo 世界 مرحبا 👋"), "héllo 世界 مرحبا 👋");
        // Two Arabic words inside Latin text swap places.
        assert_eq!(one_row("a مرحبا بك b"), "a بك مرحبا b");
    }

    #[test]
    fn numbers_and_brackets_in_rtl() {
        // "page 12 (one)": the number reads left to right, the brackets mirror.
        assert_eq!(one_row("صفحة 12 (واحد)"), "(واحد) 12 صفحة");
    }

    #[test]
    fn wrapped_rtl_starts_on_the_first_row() {
        // Widths: one per character, rows of at most 11.
        let text = "واحد اثنان ثلاثة اربعة";
        let shown = visual(text, 11.0, &mut |s| s.chars().count() as f32).into_owned();
        let rows: Vec<&str> = shown.split('\n').collect();
        assert_eq!(rows, ["اثنان واحد", "اربعة ثلاثة"]);
    }

    #[test]
    fn emoji_sequences_in_rtl_stay_whole() {
        // A family and a flag between Arabic words: each cluster moves as one piece.
        assert_eq!(one_row("مرحبا 👨‍👩‍👧 بك"), "بك 👨‍👩‍👧 مرحبا");
        assert_eq!(one_row("مرحبا 🇫🇷👋🏽 بك"), "بك 👋🏽🇫🇷 مرحبا");
    }

    #[test]
    fn paragraphs_stay_apart() {
        assert_eq!(one_row("مرحبا بك\nhi"), "بك مرحبا\nhi");
    }
}
