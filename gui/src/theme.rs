//! The app's changes to egui's two themes: its type scale and spacing (one place for both: nothing
//! else sets a font size or a gap of its own), a focus ring on buttons that can be seen (the style egui
//! draws a focused widget with), light-theme field and checkbox borders and weak text that meet WCAG
//! 2.1 AA contrast ([`contrast`] computes the ratio; the tests check it from the visuals), and the
//! layer that dims the window behind a dialog.

use egui::{Color32, FontFamily, FontId, Stroke, Style, TextStyle, Theme, Visuals, vec2};

/// The type scale, in points. Text: messages, names, fields, buttons.
pub const BODY: f32 = 14.0;
/// Times, statuses, "pinned", a reply's quote: readable at 100 % (egui's own small text is 9 points).
pub const SMALL: f32 = 12.0;
// Small text is readable at 100 % without zooming (egui's own is 9 points), and the sizes go up.
const _: () = assert!(SMALL >= 11.0 && SMALL < BODY && BODY < HEADING);
/// Monospaced text: fingerprints, addresses.
pub const MONOSPACE: f32 = 13.0;
/// A conversation's and a dialog's title.
pub const HEADING: f32 = 20.0;
/// The recovery code, written down from the screen.
pub const CODE: f32 = 18.0;
/// The app's name on the first screen.
pub const DISPLAY: f32 = 36.0;

/// Spacing, in points: the gap between widgets side by side and one above the other.
pub const ITEM_SPACING: egui::Vec2 = vec2(8.0, 6.0);
/// The space inside a button around its text.
pub const BUTTON_PADDING: egui::Vec2 = vec2(10.0, 4.0);
/// The least height of a button or a field.
pub const CONTROL_HEIGHT: f32 = 24.0;
/// The space inside a dialog's frame.
pub const PANEL_MARGIN: f32 = 16.0;
/// The space inside a framed banner or notice (a warning, a blocked contact, a toast).
pub const BANNER_MARGIN: f32 = 10.0;
/// The space inside a row of a list (a conversation in the list).
pub const ROW_MARGIN: f32 = 8.0;
/// The rounding of rows, banners and bubbles' quotes.
pub const CORNER: f32 = 6.0;
/// An unread count's pill: its rounding…
pub const BADGE_RADIUS: f32 = 9.0;
/// …and the space around its number.
pub const BADGE_MARGIN: egui::Margin = egui::Margin::symmetric(6, 1);
/// The space between sections of a form.
pub const SECTION_GAP: f32 = 12.0;

/// Over the window behind an open dialog (egui's own is lighter: 100 of 255).
pub const DIM: Color32 = Color32::from_black_alpha(150);

/// The focus ring's width, in points.
pub const FOCUS_RING_WIDTH: f32 = 2.0;
/// The focus ring in the light theme (a dark blue: 6.8:1 on the window's grey).
pub const FOCUS_LIGHT: Color32 = Color32::from_rgb(0x00, 0x56, 0xc2);
/// The focus ring in the dark theme (a light blue: 8:1 on the window's grey).
pub const FOCUS_DARK: Color32 = Color32::from_rgb(0x8c, 0xc4, 0xff);
/// Borders of fields, buttons and checkboxes in the light theme (4.3:1 on the window's grey).
pub const BORDER_LIGHT: Color32 = Color32::from_gray(118);
/// Borders of fields and buttons in the dark theme (3.4:1 on the window's grey).
pub const BORDER_DARK: Color32 = Color32::from_gray(110);
/// Hint and secondary text in the light theme (5.6:1 on the window's grey).
pub const WEAK_TEXT_LIGHT: Color32 = Color32::from_gray(100);

/// Applies the app's changes to both themes of `ctx`.
pub fn apply(ctx: &egui::Context) {
    ctx.style_mut_of(Theme::Light, |style| {
        scale(style);
        light(&mut style.visuals);
    });
    ctx.style_mut_of(Theme::Dark, |style| {
        scale(style);
        dark(&mut style.visuals);
    });
}

/// The type scale and the spacing.
fn scale(style: &mut Style) {
    let proportional = |size| FontId::new(size, FontFamily::Proportional);
    style.text_styles = [
        (TextStyle::Small, proportional(SMALL)),
        (TextStyle::Body, proportional(BODY)),
        (TextStyle::Button, proportional(BODY)),
        (TextStyle::Heading, proportional(HEADING)),
        (
            TextStyle::Monospace,
            FontId::new(MONOSPACE, FontFamily::Monospace),
        ),
    ]
    .into();
    let spacing = &mut style.spacing;
    spacing.item_spacing = ITEM_SPACING;
    spacing.button_padding = BUTTON_PADDING;
    spacing.interact_size.y = CONTROL_HEIGHT;
}

fn light(v: &mut Visuals) {
    // egui draws a focused widget (and a pressed one) with the "active" look: its border is the ring.
    v.widgets.active.bg_stroke = Stroke::new(FOCUS_RING_WIDTH, FOCUS_LIGHT);
    // Fields, buttons and checkboxes get a border that can be seen on white and on the window's grey.
    v.widgets.inactive.bg_stroke = Stroke::new(1.0, BORDER_LIGHT);
    v.widgets.inactive.bg_fill = Color32::WHITE;
    v.weak_text_color = Some(WEAK_TEXT_LIGHT);
}

fn dark(v: &mut Visuals) {
    v.widgets.active.bg_stroke = Stroke::new(FOCUS_RING_WIDTH, FOCUS_DARK);
    // A quiet (secondary) button keeps an outline rather than looking like text.
    v.widgets.inactive.bg_stroke = Stroke::new(1.0, BORDER_DARK);
}

/// The WCAG 2.1 relative luminance of an opaque colour.
pub fn luminance(c: Color32) -> f64 {
    let channel = |v: u8| {
        let s = f64::from(v) / 255.0;
        if s <= 0.04045 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(c.r()) + 0.7152 * channel(c.g()) + 0.0722 * channel(c.b())
}

/// The WCAG 2.1 contrast ratio between two opaque colours (1 to 21; AA asks 4.5 for text, 3 for the
/// borders of controls and for focus indicators).
pub fn contrast(a: Color32, b: Color32) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_themes_take_the_type_scale_and_small_text_is_readable() {
        let ctx = egui::Context::default();
        apply(&ctx);
        for theme in [Theme::Light, Theme::Dark] {
            let style = ctx.style_of(theme);
            let size = |s: TextStyle| s.resolve(&style).size;
            assert_eq!(size(TextStyle::Small), SMALL, "{theme:?}");
            assert_eq!(size(TextStyle::Body), BODY, "{theme:?}");
            assert_eq!(size(TextStyle::Heading), HEADING, "{theme:?}");
            assert_eq!(style.spacing.item_spacing, ITEM_SPACING, "{theme:?}");
        }
    }

    #[test]
    fn contrast_matches_the_wcag_reference_values() {
        assert!((contrast(Color32::BLACK, Color32::WHITE) - 21.0).abs() < 1e-9);
        assert!((contrast(Color32::WHITE, Color32::WHITE) - 1.0).abs() < 1e-9);
        // #777777 on white is the classic 4.48:1, just under AA.
        let grey = contrast(Color32::from_gray(0x77), Color32::WHITE);
        assert!((grey - 4.48).abs() < 0.01, "{grey}");
    }
}
