//! Avatars: a circle with a contact's or a group's initials on a colour that its identity (or group
//! id) picks from [`PALETTE`], the same colour every time and on every computer. Screen readers read it
//! as "Avatar" and the initials.

use egui::{Align2, Color32, FontFamily, FontId, Response, Sense, WidgetInfo, WidgetType};

use crate::model::ConversationKey;

/// The colours an avatar can have: each holds white initials at WCAG AA contrast (4.5:1 or more; a
/// test checks it) in both themes.
pub const PALETTE: [Color32; 12] = [
    Color32::from_rgb(0xc6, 0x28, 0x28),
    Color32::from_rgb(0xad, 0x14, 0x57),
    Color32::from_rgb(0x6a, 0x1b, 0x9a),
    Color32::from_rgb(0x45, 0x27, 0xa0),
    Color32::from_rgb(0x28, 0x35, 0x93),
    Color32::from_rgb(0x15, 0x65, 0xc0),
    Color32::from_rgb(0x02, 0x77, 0xbd),
    Color32::from_rgb(0x00, 0x69, 0x5c),
    Color32::from_rgb(0x2e, 0x7d, 0x32),
    Color32::from_rgb(0xbf, 0x36, 0x0c),
    Color32::from_rgb(0x5d, 0x40, 0x37),
    Color32::from_rgb(0x45, 0x5a, 0x64),
];

/// An avatar in the conversation list.
pub const LIST_SIZE: f32 = 36.0;
/// An avatar in a conversation's header.
pub const HEADER_SIZE: f32 = 32.0;
/// An avatar in a list of members or contacts, and beside a sender's name in a group.
pub const SMALL_SIZE: f32 = 22.0;
/// The initials' height as a share of the circle's.
const INITIALS_SHARE: f32 = 0.42;
/// What stands for a name with no letter or digit in it.
pub const NO_INITIALS: &str = "?";

/// What screen readers call an avatar with `initials`.
pub fn label(initials: &str) -> String {
    format!("Avatar {initials}")
}

/// Up to two initials of `name`: the first letter of its first and last words where the script has
/// capitals ("Ana Lima" → "AL", "Иван Петров" → "ИП"), else the first letter alone ("张伟" → "张",
/// "محمد علي" → "م", whose letters egui would draw apart). A letter keeps the marks written on it
/// ("कि"). Signs and emoji before a letter are skipped; a name with no letter or digit is
/// [`NO_INITIALS`].
pub fn initials(name: &str) -> String {
    let words: Vec<&str> = name
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    let (Some(first), Some(last)) = (words.first(), words.last()) else {
        return NO_INITIALS.to_owned();
    };
    let mut out = initial(first);
    let cased = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_uppercase() || c.is_lowercase())
    };
    if words.len() > 1 && cased(&out) {
        let second = initial(last);
        if cased(&second) {
            out.push_str(&second);
        }
    }
    out.chars().flat_map(char::to_uppercase).collect()
}

/// The first letter or digit of `word` with the marks that follow it (its first grapheme, nearly).
fn initial(word: &str) -> String {
    let mut chars = word.chars().skip_while(|c| !c.is_alphanumeric());
    let mut out: String = chars.next().into_iter().collect();
    out.extend(chars.take_while(|&c| is_mark(c)));
    // A virama alone at the end would join the letter to one that is not there.
    if out.chars().count() > 1 && out.ends_with(is_virama) {
        out.pop();
    }
    out
}

/// Whether `c` is written on the letter before it: a combining diacritic, or a vowel sign, virama or
/// other sign of the Brahmic scripts of U+0900-0DFF (ISCII's layout: the same offsets in each block)
/// or of Thai.
fn is_mark(c: char) -> bool {
    let u = u32::from(c);
    let brahmic = (0x0900..=0x0DFF).contains(&u)
        && matches!(u & 0x7F, 0x00..=0x03 | 0x3A..=0x3C | 0x3E..=0x4F | 0x51..=0x57 | 0x62..=0x63);
    brahmic
        || matches!(u, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF)
        || matches!(u, 0xFE20..=0xFE2F | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E)
}

fn is_virama(c: char) -> bool {
    let u = u32::from(c);
    (0x0900..=0x0DFF).contains(&u) && u & 0x7F == 0x4D
}

/// The colour of the avatar of `who` (a contact's conversation key is their identity key; a group's is
/// its id): FNV-1a of its byte form, mixed, into [`PALETTE`].
pub fn colour(who: &ConversationKey) -> Color32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = who
        .to_bytes()
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    // FNV's low bits follow few of the input's: mix the high ones down (MurmurHash3's finaliser).
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    // The palette has 12 entries: the remainder fits a usize.
    PALETTE[(hash % PALETTE.len() as u64) as usize]
}

/// Draws the avatar of `who`, named `name`, `size` points across.
pub fn show(ui: &mut egui::Ui, who: &ConversationKey, name: &str, size: f32) -> Response {
    let initials = initials(name);
    let (rect, response) = ui.allocate_exact_size(egui::vec2(size, size), Sense::hover());
    if ui.is_rect_visible(rect) {
        let painter = ui.painter();
        painter.circle_filled(rect.center(), size / 2.0, colour(who));
        painter.text(
            rect.center(),
            Align2::CENTER_CENTER,
            &initials,
            FontId::new(size * INITIALS_SHARE, FontFamily::Proportional),
            Color32::WHITE,
        );
    }
    response.widget_info(|| WidgetInfo::labeled(WidgetType::Image, true, label(&initials)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_rows::key;
    use crate::theme::contrast;

    fn contact(seed: u64) -> ConversationKey {
        ConversationKey::Direct(key(seed))
    }

    #[test]
    fn initials_take_first_and_last_words_where_the_script_has_capitals() {
        assert_eq!(initials("Ana Lima"), "AL");
        assert_eq!(initials("ana maria de lima"), "AL");
        assert_eq!(initials("Pat"), "P");
        assert_eq!(initials("  (Bob)  "), "B");
        assert_eq!(initials("Иван Петров"), "ИП");
        assert_eq!(initials("Σωκράτης Παππάς"), "ΣΠ");
        assert_eq!(initials("élodie"), "É");
    }

    #[test]
    fn initials_of_other_scripts_are_one_letter_with_its_marks() {
        assert_eq!(initials("张伟"), "张");
        assert_eq!(initials("山田 太郎"), "山");
        assert_eq!(initials("محمد علي"), "م");
        assert_eq!(initials("דוד לוי"), "ד");
        assert_eq!(initials("किरण"), "कि");
        assert_eq!(initials("क्षमा"), "क");
        assert_eq!(initials("สมชาย"), "ส");
        // A combining accent stays on its letter.
        assert_eq!(initials("e\u{301}mile"), "E\u{301}");
    }

    #[test]
    fn a_name_without_letters_has_the_fallback() {
        assert_eq!(initials(""), NO_INITIALS);
        assert_eq!(initials("   "), NO_INITIALS);
        assert_eq!(initials("🙂 ✨"), NO_INITIALS);
        assert_eq!(initials("🙂 Ana"), "A");
    }

    #[test]
    fn colours_are_deterministic_and_differ_between_two_contacts() {
        assert_eq!(colour(&contact(1)), colour(&contact(1)));
        // One pair in 12 shares a colour (contacts 1 and 2 do); these two do not.
        assert_ne!(colour(&contact(1)), colour(&contact(3)));
        let group = ConversationKey::Group([7; 32]);
        assert_eq!(colour(&group), colour(&ConversationKey::Group([7; 32])));
        // Many identities spread over the palette rather than landing on a few colours.
        let used: std::collections::HashSet<_> = (0..64).map(|s| colour(&contact(s))).collect();
        assert_eq!(used.len(), PALETTE.len());
        let used: std::collections::HashSet<_> = (0..=255)
            .map(|b| colour(&ConversationKey::Group([b; 32])))
            .collect();
        assert_eq!(used.len(), PALETTE.len());
    }

    #[test]
    fn white_initials_meet_aa_contrast_on_every_colour() {
        for c in PALETTE {
            let ratio = contrast(Color32::WHITE, c);
            assert!(ratio >= 4.5, "{c:?}: {ratio:.2}:1");
        }
    }
}
