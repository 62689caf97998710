//! The tray's picture: the application icon ([`crate::icon::draw`]) at [`SIZE`] px with the unread count
//! on a red pill in its top right corner ("1" to "99", then "99+"), in the digits of a 3×5 pixel font.

use egui::IconData;

use crate::widgets::ERROR;

/// The tray icon's side, in pixels (hosts scale it to their panel).
pub const SIZE: u32 = 64;

/// Counts above this read as "99+".
pub const MAX_SHOWN: u64 = 99;

/// Each pixel of the 3×5 font is this many pixels square.
const DOT: u32 = 3;
/// A glyph's width and height in font pixels, and the gap between two glyphs.
const GLYPH_W: u32 = 3;
const GLYPH_H: u32 = 5;
const GAP: u32 = 1;
/// The pill's height, and the room left and right of the text inside it.
const PILL_H: u32 = 25;
const PILL_PAD: u32 = 5;
/// Samples per pixel along each axis on the pill's rounded edge.
const SAMPLES: u32 = 4;

/// What the badge reads for `unread`: nothing for none.
pub fn text(unread: u64) -> Option<String> {
    match unread {
        0 => None,
        n if n > MAX_SHOWN => Some(format!("{MAX_SHOWN}+")),
        n => Some(n.to_string()),
    }
}

/// The tray's picture for `unread` messages, RGBA (unmultiplied).
pub fn draw(unread: u64) -> IconData {
    let mut icon = crate::icon::draw(SIZE);
    if let Some(text) = text(unread) {
        pill(&mut icon, &text);
    }
    icon
}

/// `icon` as the StatusNotifierItem's pixels: ARGB32, network byte order.
pub fn argb(icon: &IconData) -> Vec<u8> {
    let mut data = icon.rgba.clone();
    for pixel in data.chunks_exact_mut(4) {
        pixel.rotate_right(1);
    }
    data
}

/// Bits of each glyph's rows, the leftmost pixel the highest of three bits.
fn glyph(c: char) -> Option<[u8; GLYPH_H as usize]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b001, 0b001, 0b001],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '+' => [0b000, 0b010, 0b111, 0b010, 0b000],
        _ => return None,
    })
}

/// Draws a red pill with `text` in white over the top right corner of `icon`.
fn pill(icon: &mut IconData, text: &str) {
    let glyphs: Vec<_> = text.chars().filter_map(glyph).collect();
    let count = u32::try_from(glyphs.len()).unwrap_or(u32::MAX).min(3);
    let text_w = (count * GLYPH_W + count.saturating_sub(1) * GAP) * DOT;
    let width = (text_w + 2 * PILL_PAD).max(PILL_H).min(icon.width);
    let left = icon.width - width;
    let radius = PILL_H as f32 / 2.0;
    // The pill: a rounded rectangle, its edge sampled for a smooth outline.
    for y in 0..PILL_H.min(icon.height) {
        for x in left..icon.width {
            let mut covered = 0;
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    let px = x as f32 + (sx as f32 + 0.5) / SAMPLES as f32 - left as f32;
                    let py = y as f32 + (sy as f32 + 0.5) / SAMPLES as f32;
                    let dx = (radius - px).max(px - (width as f32 - radius)).max(0.0);
                    let dy = py - radius;
                    if dx * dx + dy * dy <= radius * radius {
                        covered += 1;
                    }
                }
            }
            let alpha = covered as f32 / (SAMPLES * SAMPLES) as f32;
            blend(icon, x, y, [ERROR.r(), ERROR.g(), ERROR.b()], alpha);
        }
    }
    // The digits, centred in it.
    let top = (PILL_H - GLYPH_H * DOT) / 2;
    let mut x0 = left + (width - text_w) / 2;
    for rows in glyphs.iter().take(count as usize) {
        for (row, bits) in (0..).zip(rows) {
            for col in 0..GLYPH_W {
                if bits & (1 << (GLYPH_W - 1 - col)) == 0 {
                    continue;
                }
                for dy in 0..DOT {
                    for dx in 0..DOT {
                        let (x, y) = (x0 + col * DOT + dx, top + row * DOT + dy);
                        if x < icon.width && y < icon.height {
                            blend(icon, x, y, [u8::MAX; 3], 1.0);
                        }
                    }
                }
            }
        }
        x0 += (GLYPH_W + GAP) * DOT;
    }
}

/// Puts `colour` at `alpha` over the pixel at (`x`, `y`) (unmultiplied "over").
fn blend(icon: &mut IconData, x: u32, y: u32, colour: [u8; 3], alpha: f32) {
    if alpha <= 0.0 {
        return;
    }
    let at = ((y * icon.width + x) * 4) as usize;
    let Some(pixel) = icon.rgba.get_mut(at..at + 4) else {
        return;
    };
    let under = f32::from(pixel[3]) / 255.0;
    let out = alpha + under * (1.0 - alpha);
    for (channel, over) in pixel.iter_mut().zip(colour) {
        let mixed = (f32::from(over) * alpha + f32::from(*channel) * under * (1.0 - alpha)) / out;
        *channel = mixed.round().clamp(0.0, 255.0) as u8;
    }
    pixel[3] = (out * 255.0).round().clamp(0.0, 255.0) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(icon: &IconData, x: u32, y: u32) -> [u8; 4] {
        let at = ((y * icon.width + x) * 4) as usize;
        icon.rgba[at..at + 4].try_into().unwrap()
    }

    const RED: [u8; 4] = [ERROR.r(), ERROR.g(), ERROR.b(), 255];
    const WHITE: [u8; 4] = [255; 4];

    #[test]
    fn the_badge_reads_the_count_up_to_99() {
        assert_eq!(text(0), None);
        assert_eq!(text(1).as_deref(), Some("1"));
        assert_eq!(text(42).as_deref(), Some("42"));
        assert_eq!(text(99).as_deref(), Some("99"));
        assert_eq!(text(100).as_deref(), Some("99+"));
        assert_eq!(text(u64::MAX).as_deref(), Some("99+"));
    }

    #[test]
    fn no_unread_draws_the_plain_icon() {
        let plain = crate::icon::draw(SIZE);
        let icon = draw(0);
        assert_eq!((icon.width, icon.height), (SIZE, SIZE));
        assert_eq!(icon.rgba, plain.rgba);
    }

    #[test]
    fn a_count_puts_a_red_pill_with_white_digits_in_the_top_right_corner() {
        let plain = crate::icon::draw(SIZE);
        let one = draw(1);
        // The pill's middle row, left of the digit: red; its top right corner stays transparent
        // (the plain icon's rounded corner).
        assert_eq!(pixel(&one, SIZE - PILL_H / 2 - 8, PILL_H / 2), RED);
        assert_eq!(pixel(&one, SIZE - 1, 0)[3], 0);
        // "1"'s stem, in the pill's middle column: white.
        assert_eq!(pixel(&one, SIZE - PILL_H / 2 - 1, PILL_H / 2), WHITE);
        // Below the pill and on the left the icon is untouched.
        let changed: Vec<(u32, u32)> = (0..SIZE)
            .flat_map(|y| (0..SIZE).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&one, x, y) != pixel(&plain, x, y))
            .collect();
        assert!(!changed.is_empty());
        assert!(
            changed
                .iter()
                .all(|&(x, y)| y < PILL_H && x >= SIZE - PILL_H)
        );
    }

    #[test]
    fn each_count_draws_its_own_digits_and_more_than_99_all_read_99_plus() {
        assert_ne!(draw(3).rgba, draw(8).rgba);
        assert_ne!(draw(12).rgba, draw(21).rgba);
        assert_ne!(draw(99).rgba, draw(100).rgba);
        assert_eq!(draw(100).rgba, draw(5000).rgba);
        // "99+" is wider than "9": the pill reaches further left.
        let row = PILL_H / 2;
        let reach = |icon: &IconData| (0..SIZE).find(|&x| pixel(icon, x, row) == RED);
        assert!(
            reach(&draw(100)) < reach(&draw(9)),
            "{:?}",
            reach(&draw(100))
        );
        // Three glyphs still fit inside the icon.
        let wide = draw(100);
        assert!(reach(&wide).is_some_and(|x| x > 0));
    }

    #[test]
    fn the_pixels_go_out_as_argb() {
        let icon = IconData {
            rgba: vec![1, 2, 3, 4, 5, 6, 7, 8],
            width: 2,
            height: 1,
        };
        assert_eq!(argb(&icon), vec![4, 1, 2, 3, 8, 5, 6, 7]);
    }
}
