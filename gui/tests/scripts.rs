//! Issue 16 item 2: every script displays. The multilingual line and the timer mark are laid out with
//! the app's fonts (egui's, then the system's fallbacks) and no character falls back to the replacement
//! box; with egui's fonts alone the same line has boxes. In the running app, every glyph of a frame that
//! shows the line in a bubble, in the conversation list and in the composer is counted.
//!
//! It needs the fonts the README's install line names (fonts-noto-core, fonts-noto-cjk, fonts-symbola).

use egui::accesskit::Role;
use egui::epaint::text::FontDefinitions;
use egui::{FontFamily, Shape};
use egui_kittest::kittest::Queryable;
use tern_gui::fonts::missing_chars;
use tern_gui::model::Screen;
use tern_testkit::profile::{PASSWORD, create, introduce};

mod support;
use support::{App, app_with, click, has_label, pictures_drawn, settle, shutdown, type_into};

/// The line from the issue.
const LINE: &str = "héllo 世界 مرحبا 👋";
/// The disappearing-messages timer mark (screens/conversation.rs).
const TIMER: &str = "⏱ 1 day";

/// The characters of `text` that no font of `defs` has, in either family (drawn as the replacement box).
fn uncovered(defs: &FontDefinitions, text: &str) -> Vec<char> {
    let mut missing = missing_chars(defs, &FontFamily::Proportional, text);
    for c in missing_chars(defs, &FontFamily::Monospace, text) {
        if !missing.contains(&c) {
            missing.push(c);
        }
    }
    missing
}

#[test]
fn the_apps_fonts_cover_the_line_and_egui_defaults_do_not() {
    let fallbacks = tern_gui::fonts::found();
    println!("fallbacks: {fallbacks:?}");
    let text = format!("{LINE} {TIMER}");
    assert_eq!(
        uncovered(&tern_gui::fonts::definitions(fallbacks), &text),
        Vec::<char>::new(),
        "install the fonts the README names"
    );
    let boxes = uncovered(&FontDefinitions::default(), &text);
    for c in ['世', '界', 'م', 'ر', 'ح', 'ب', 'ا'] {
        assert!(boxes.contains(&c), "egui's own fonts lack {c}: {boxes:?}");
    }
}

/// Every glyph drawn in `shapes` whose character no font of `ctx` has.
fn boxes_drawn(ctx: &egui::Context, shapes: &[egui::epaint::ClippedShape]) -> Vec<char> {
    fn walk(shape: &Shape, out: &mut String) {
        match shape {
            Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, out)),
            Shape::Text(text) => {
                for row in &text.galley.rows {
                    out.extend(row.row.glyphs.iter().map(|g| g.chr));
                }
            }
            _ => {}
        }
    }
    let mut chars = String::new();
    shapes.iter().for_each(|s| walk(&s.shape, &mut chars));
    let defs = ctx.fonts(|f| f.definitions().clone());
    let mono = missing_chars(&defs, &FontFamily::Monospace, &chars);
    let mut missing = missing_chars(&defs, &FontFamily::Proportional, &chars);
    missing.retain(|c| mono.contains(c));
    missing
}

/// The app unlocked on a conversation with Pat, who wrote the line and an Arabic sentence, drawn by
/// `harness` (the accessibility-only one, or one that renders with wgpu).
fn open_on_the_line(
    harness: egui_kittest::HarnessBuilder<tern_gui::TernApp>,
) -> (App, Vec<tempfile::TempDir>) {
    open_on_the_line_from(harness, "Pat")
}

/// The app open on the conversation with `peer`, who sent the line and an Arabic greeting.
fn open_on_the_line_from(
    harness: egui_kittest::HarnessBuilder<tern_gui::TernApp>,
    peer_name: &str,
) -> (App, Vec<tempfile::TempDir>) {
    let root = tempfile::tempdir().unwrap();
    let peer_dir = tempfile::tempdir().unwrap();
    {
        let mut me = create(&root.path().join("Me"), "Me");
        let mut peer = create(peer_dir.path(), peer_name);
        introduce(&mut [&mut me, &mut peer]);
        for text in [LINE, "مرحبا بك"] {
            let (_, entry) = peer.send_text(&me.key(), text).unwrap();
            me.receive(&entry.envelope).unwrap();
        }
    }
    let mut h = app_with(harness, root.path());
    h.step();
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    click(&mut h, peer_name);
    settle(&mut h, "the bubble", |h| has_label(h, LINE));
    // The system's fonts come from a thread of their own.
    settle(&mut h, "the system fonts", |h| {
        tern_gui::fonts::installed(&h.ctx)
    });
    // The line typed into the composer too (not sent).
    h.get_by_role(Role::MultilineTextInput).focus();
    h.step();
    h.get_by_role(Role::MultilineTextInput).type_text(LINE);
    h.step();
    h.step();
    (h, vec![root, peer_dir])
}

#[test]
fn the_line_shows_with_no_box_in_the_bubble_and_the_list() {
    let (mut h, _dirs) = open_on_the_line(egui_kittest::Harness::builder());
    // The list's preview, the bubble and the composer drew the line; the Arabic sentence is read out
    // in the order it was written.
    let composer = h.get_by_role(Role::MultilineTextInput).value();
    assert_eq!(composer.as_deref(), Some(LINE));
    assert!(has_label(&h, "مرحبا بك"));
    let drawn = boxes_drawn(&h.ctx, &h.output().shapes);
    assert_eq!(
        drawn,
        Vec::<char>::new(),
        "glyphs drawn as the replacement box"
    );

    // The same frame with egui's fonts alone shows boxes: the count can fail.
    h.ctx.set_fonts(FontDefinitions::default());
    h.step();
    h.step();
    let drawn = boxes_drawn(&h.ctx, &h.output().shapes);
    assert!(drawn.contains(&'世') && drawn.contains(&'م'), "{drawn:?}");
    shutdown(&mut h);
}

#[test]
fn the_wave_in_the_bubble_is_a_colour_picture_and_the_line_reads_whole() {
    let (mut h, _dirs) = open_on_the_line(egui_kittest::Harness::builder());
    // Read out as the whole line, emoji included, by one label.
    let bubble = h.get_by_label(LINE).rect();
    // The wave is drawn once, as Twemoji's picture, inside the bubble's text and a row high; the
    // composer's copy of the line stays a glyph.
    let waves = pictures_drawn(&h.ctx, &h.output().shapes, "emoji 👋");
    assert_eq!(waves.len(), 1, "{waves:?}");
    let wave = waves[0];
    assert!(
        bubble.contains_rect(wave.shrink(0.5)),
        "{wave:?} in {bubble:?}"
    );
    let body = egui::TextStyle::Body.resolve(&h.ctx.global_style());
    let row = h.ctx.fonts_mut(|f| f.row_height(&body));
    assert!(
        (wave.height() - row).abs() < 1.0 && (wave.width() - wave.height()).abs() < 0.5,
        "a square a row ({row}) high: {wave:?}"
    );
    // The wave sits at the end of the line, right of the Arabic word.
    assert!(wave.center().x > bubble.center().x);
    // No glyph is drawn as a box, the transparent ones under pictures included.
    assert_eq!(boxes_drawn(&h.ctx, &h.output().shapes), Vec::<char>::new());
    // Frames after the first decode nothing again.
    let decoded = tern_gui::emoji::decoded(&h.ctx);
    h.step();
    h.step();
    assert_eq!(tern_gui::emoji::decoded(&h.ctx), decoded);
    assert_eq!(tern_gui::emoji::held(&h.ctx), decoded);
    shutdown(&mut h);
}

#[test]
fn a_name_with_an_emoji_shows_it_in_colour_in_the_list_and_the_header() {
    let (mut h, _dirs) = open_on_the_line_from(egui_kittest::Harness::builder(), "Pat 🌻");
    h.step();
    let shapes = h.output().shapes.clone();
    let mut flowers = pictures_drawn(&h.ctx, &shapes, "emoji 🌻");
    assert_eq!(
        flowers.len(),
        2,
        "the list's row and the header: {flowers:?}"
    );
    // The list's row is at the left; the header's is on the right, as large as its heading text.
    flowers.sort_by(|a, b| a.left().total_cmp(&b.left()));
    let (row, header) = (flowers[0], flowers[1]);
    assert!(header.height() > row.height(), "{header:?} vs {row:?}");
    // Read out whole, and the row still opens the conversation by its name.
    assert!(has_label(&h, "Pat 🌻"));
    assert_eq!(boxes_drawn(&h.ctx, &shapes), Vec::<char>::new());
    shutdown(&mut h);
}

/// The screenshot test: the same frame rendered to pixels by wgpu (under Xvfb with Mesa's
/// software Vulkan, lavapipe), saved beside the test binary, and its glyphs counted for boxes. Built
/// only with the `screenshot` feature (wgpu is a long build): the command is in docs/testing.md.
#[cfg(feature = "screenshot")]
#[test]
fn the_line_renders_with_no_box_in_a_screenshot() {
    let (mut h, _dirs) = open_on_the_line(egui_kittest::Harness::builder().wgpu());
    let image = h.render().expect("wgpu renders the frame");
    let drawn = boxes_drawn(&h.ctx, &h.output().shapes);
    assert_eq!(
        drawn,
        Vec::<char>::new(),
        "glyphs drawn as the replacement box"
    );
    let colours: std::collections::HashSet<[u8; 4]> = image.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 16,
        "the frame has text on it, not one flat colour"
    );
    let path = std::env::temp_dir().join("tern-scripts-screenshot.png");
    image.save(&path).unwrap();
    println!("screenshot: {}", path.display());
    shutdown(&mut h);
}

/// What `bidi` relies on: egui's shaper (harfrust) draws an Arabic word right to left and joined, so
/// the word is handed over in typed order. If egui learns to reorder lines itself, this says so.
#[test]
fn egui_shapes_an_arabic_word_right_to_left_and_joined() {
    use egui::epaint::text::{Fonts, TextOptions};
    let defs = tern_gui::fonts::definitions(tern_gui::fonts::found());
    let mut fonts = Fonts::new(TextOptions::default(), defs);
    let mut view = fonts.with_pixels_per_point(1.0);
    let font = egui::FontId::proportional(14.0);
    let drawn = |view: &mut egui::epaint::text::FontsView<'_>, text: &str| -> Vec<char> {
        let galley = view.layout_no_wrap(text.to_owned(), font.clone(), egui::Color32::WHITE);
        galley.rows[0]
            .row
            .glyphs
            .iter()
            .filter(|g| g.advance_width > 0.0)
            .map(|g| g.chr)
            .collect()
    };
    // "marhaba": the leftmost glyph is its last letter, alef.
    assert_eq!(drawn(&mut view, "مرحبا"), ['ا', 'ب', 'ح', 'ر', 'م']);
    // Lam and alef join into one ligature.
    assert_eq!(drawn(&mut view, "لا").len(), 1);
}
