//! Colour emoji in text that is displayed, not edited (message bubbles, the conversation list's
//! previews). egui draws glyphs as one-colour masks (egui issue #2551), so an emoji is drawn as a
//! picture from Twemoji (`twemoji-assets`' 72x72 PNGs) over its glyphs: the label keeps the message's
//! whole text (selection, copy and screen readers see every character, the emoji included), its emoji
//! are laid out as transparent glyphs exactly one picture wide, and the pictures are painted on top.
//!
//! Text is cut into grapheme clusters (`unicode-segmentation`); a cluster is an emoji when Twemoji has a
//! picture of it and Unicode says it is shown as an emoji (`unicode-properties`: emoji presentation by
//! default, or asked for with U+FE0F, or a sequence: ZWJ, skin tone, flag, keycap). Text with no
//! character that can start an emoji takes the plain label's path untouched. Cut texts and decoded
//! pictures are kept in bounded caches ([`MAX_CUT_TEXTS`], [`MAX_EMOJI_TEXTURES`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::ops::Range;
use std::sync::Arc;

use egui::mutex::Mutex;
use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, FontId, Response, TextureHandle, TextureOptions};
use twemoji_assets::png::PngTwemojiAsset;
use unicode_properties::{EmojiStatus, UnicodeEmoji};
use unicode_segmentation::UnicodeSegmentation;

/// Emoji pictures kept as textures at once (the one unused longest goes first; emoji beyond this on
/// one screen are drawn as text).
pub const MAX_EMOJI_TEXTURES: usize = 256;
/// Texts whose cut into text and emoji is kept, so a bubble is not cut again each frame.
pub const MAX_CUT_TEXTS: usize = 512;
/// At most this many quarter points are added to an emoji's size to tell its glyphs from text's.
const MAX_SIZE_NUDGES: usize = 16;
/// The emoji presentation selector: "show the character before as an emoji".
const EMOJI_PRESENTATION: char = '\u{FE0F}';
/// The text presentation selector: "show the character before as text".
const TEXT_PRESENTATION: char = '\u{FE0E}';

/// A piece of a text: a byte range that is plain text, or one emoji (a grapheme cluster) with its
/// picture.
#[derive(Debug, Clone)]
pub enum Run {
    Text(Range<usize>),
    Emoji(Range<usize>, &'static PngTwemojiAsset),
}

/// Whether `text` has a character that can begin or build an emoji (cheap: no segmentation; ASCII text,
/// most messages, is told by the standard library's word-at-a-time check). ASCII digits, `#` and `*`
/// build keycaps only with U+20E3, which is not ASCII.
pub fn may_have_emoji(text: &str) -> bool {
    !text.is_ascii()
        && text
            .chars()
            .any(|c| !c.is_ascii() && c.is_emoji_char_or_emoji_component())
}

/// Twemoji's picture (PNG) of the grapheme cluster `cluster`, when it is shown as an emoji.
pub fn picture(cluster: &str) -> Option<&'static PngTwemojiAsset> {
    let mut chars = cluster.chars();
    let first = chars.next()?;
    if cluster.contains(TEXT_PRESENTATION) {
        return None;
    }
    let as_emoji = cluster.contains(EMOJI_PRESENTATION)
        // A sequence: ZWJ, skin tone, flag, keycap, subdivision tags.
        || chars.next().is_some()
        || matches!(
            first.emoji_status(),
            EmojiStatus::EmojiPresentation
                | EmojiStatus::EmojiPresentationAndModifierBase
                | EmojiStatus::EmojiPresentationAndEmojiComponent
                | EmojiStatus::EmojiPresentationAndModifierAndEmojiComponent
        );
    if !as_emoji {
        return None;
    }
    // Twemoji names most pictures without U+FE0F ("❤️" is 2764.png), a few with it.
    PngTwemojiAsset::from_emoji(cluster).or_else(|| {
        let bare: String = cluster
            .chars()
            .filter(|&c| c != EMOJI_PRESENTATION)
            .collect();
        PngTwemojiAsset::from_emoji(&bare)
    })
}

/// `text` cut into runs of text and single emoji (only clusters Twemoji has a picture of); adjacent
/// text is one run. Empty text gives no run.
pub fn cut(text: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut text_from = None;
    for (at, cluster) in text.grapheme_indices(true) {
        if let Some(asset) = picture(cluster) {
            if let Some(from) = text_from.take() {
                runs.push(Run::Text(from..at));
            }
            runs.push(Run::Emoji(at..at + cluster.len(), asset));
        } else if text_from.is_none() {
            text_from = Some(at);
        }
    }
    if let Some(from) = text_from {
        runs.push(Run::Text(from..text.len()));
    }
    runs
}

/// A decoded picture, with the font size its glyphs take beside text.
struct Decoded {
    texture: TextureHandle,
    /// The pass it was last drawn in: one drawn in this pass is never evicted.
    last_used: u64,
    /// `((text size, pixels per point), size)`: the size its glyphs take beside text of that size
    /// ([`emoji_size`]).
    size: Option<((f32, f32), Option<f32>)>,
}

/// The caches behind [`label`], one per egui context.
#[derive(Default)]
struct Cache {
    /// By the text's hash and length: its runs (a range that does not fit the text is never used).
    cuts: HashMap<(u64, usize), Arc<[Run]>>,
    /// Oldest first.
    cut_order: std::collections::VecDeque<(u64, usize)>,
    hasher: RandomState,
    /// By Twemoji's name of the emoji.
    pictures: HashMap<&'static str, Decoded>,
    /// How many pictures were decoded (for tests: each once).
    decoded: usize,
}

impl Cache {
    /// The runs of `text`, cut the first time it is asked for.
    fn runs(&mut self, text: &str) -> Arc<[Run]> {
        let key = (self.hasher.hash_one(text), text.len());
        if let Some(runs) = self.cuts.get(&key) {
            return Arc::clone(runs);
        }
        if self.cut_order.len() >= MAX_CUT_TEXTS
            && let Some(oldest) = self.cut_order.pop_front()
        {
            self.cuts.remove(&oldest);
        }
        let runs: Arc<[Run]> = cut(text).into();
        self.cuts.insert(key, Arc::clone(&runs));
        self.cut_order.push_back(key);
        runs
    }

    /// The texture of `asset`, decoded the first time it is asked for; `None` if it would not decode
    /// or if every cached picture is in use in this pass (`pass`) and the cache is full.
    fn picture(
        &mut self,
        ctx: &egui::Context,
        asset: &'static PngTwemojiAsset,
        pass: u64,
    ) -> Option<&mut Decoded> {
        if !self.pictures.contains_key(asset.emoji) {
            if self.pictures.len() >= MAX_EMOJI_TEXTURES {
                let stalest = self
                    .pictures
                    .iter()
                    .filter(|(_, p)| p.last_used < pass)
                    .min_by_key(|(_, p)| p.last_used)
                    .map(|(name, _)| *name)?;
                self.pictures.remove(stalest);
            }
            self.decoded += 1;
            let image = decode(asset)?;
            let options = TextureOptions {
                mipmap_mode: Some(egui::TextureFilter::Linear),
                ..TextureOptions::LINEAR
            };
            let texture = ctx.load_texture(format!("emoji {}", asset.emoji), image, options);
            self.pictures.insert(
                asset.emoji,
                Decoded {
                    texture,
                    last_used: pass,
                    size: None,
                },
            );
        }
        let picture = self.pictures.get_mut(asset.emoji)?;
        picture.last_used = pass;
        Some(picture)
    }
}

/// Twemoji's PNG as an image (they are 72x72 and were decoded in tests; a bad one is skipped).
fn decode(asset: &PngTwemojiAsset) -> Option<egui::ColorImage> {
    let data: &[u8] = asset;
    let rgba = image::load_from_memory_with_format(data, image::ImageFormat::Png)
        .ok()?
        .to_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    Some(egui::ColorImage::from_rgba_unmultiplied(
        size,
        rgba.as_raw(),
    ))
}

type Shared = Arc<Mutex<Cache>>;

fn cache(ctx: &egui::Context) -> Shared {
    ctx.data_mut(|d| {
        d.get_temp_mut_or_default::<Shared>(egui::Id::new("tern-emoji"))
            .clone()
    })
}

/// How many emoji pictures `ctx` has decoded so far (for tests).
pub fn decoded(ctx: &egui::Context) -> usize {
    cache(ctx).lock().decoded
}

/// Emoji pictures `ctx` holds as textures now (for tests).
pub fn held(ctx: &egui::Context) -> usize {
    cache(ctx).lock().pictures.len()
}

/// One emoji of a prepared text: its cluster's byte range, and its picture (`None`: drawn as text, the
/// cache being full of pictures in use).
struct Emoji {
    cluster: Range<usize>,
    texture: Option<TextureHandle>,
}

/// Text laid out with its emoji as room for pictures: the job, and its emoji in order.
pub struct Prepared {
    pub job: LayoutJob,
    emoji: Vec<Emoji>,
}

/// `text` in `font` and `color` with each emoji as transparent glyphs one row high and wide, or `None`
/// if it has no emoji Twemoji draws (then the caller takes its plain path).
pub fn prepare(ui: &egui::Ui, text: &str, font: &FontId, color: Color32) -> Option<Prepared> {
    if !may_have_emoji(text) {
        return None;
    }
    let shared = cache(ui.ctx());
    let mut cache = shared.lock();
    let runs = cache.runs(text);
    if !runs.iter().any(|r| matches!(r, Run::Emoji(..))) {
        return None;
    }
    let pass = ui.ctx().cumulative_pass_nr();
    let row_height = ui.fonts_mut(|f| f.row_height(font));
    let text_key = (font.size, ui.ctx().pixels_per_point());
    let plain = TextFormat::simple(font.clone(), color);
    let mut job = LayoutJob::default();
    let mut emoji = Vec::new();
    for run in runs.iter() {
        let (Run::Text(range) | Run::Emoji(range, _)) = run;
        let Some(piece) = text.get(range.clone()) else {
            // A stale cut (a hash collision): draw the text as it is.
            return None;
        };
        let drawn = match run {
            Run::Emoji(_, asset) => cache.picture(ui.ctx(), asset, pass).and_then(|p| {
                let size = match p.size {
                    Some((for_text, size)) if for_text == text_key => size,
                    _ => {
                        let size = emoji_size(ui, piece, font, row_height);
                        p.size = Some((text_key, size));
                        size
                    }
                }?;
                Some((p.texture.clone(), size))
            }),
            Run::Text(_) => None,
        };
        if let Run::Emoji(..) = run {
            emoji.push(Emoji {
                cluster: range.clone(),
                texture: drawn.as_ref().map(|(texture, _)| texture.clone()),
            });
        }
        let format = match drawn {
            Some((_, size)) => TextFormat {
                font_id: FontId::new(size, font.family.clone()),
                color: Color32::TRANSPARENT,
                line_height: Some(row_height),
                ..TextFormat::default()
            },
            None => plain.clone(),
        };
        job.append(piece, 0.0, format);
    }
    Some(Prepared { job, emoji })
}

/// The font size at which `cluster`'s glyphs are one row (`row_height`) wide, in quarter points, and
/// whose own row height is not `row_height` (which marks the glyphs as an emoji's for [`rooms`]); `None`
/// if no such size is near (the emoji is then drawn as text).
fn emoji_size(ui: &egui::Ui, cluster: &str, font: &FontId, row_height: f32) -> Option<f32> {
    let natural = ui.fonts_mut(|f| {
        f.layout_no_wrap(cluster.to_owned(), font.clone(), Color32::WHITE)
            .size()
            .x
    });
    let scale = if natural > 1.0 {
        (row_height / natural).clamp(0.1, 3.0)
    } else {
        1.0
    };
    let mut size = ((font.size * scale * 4.0).round() / 4.0).max(1.0);
    for _ in 0..MAX_SIZE_NUDGES {
        let own = ui.fonts_mut(|f| f.row_height(&FontId::new(size, font.family.clone())));
        if own != row_height {
            return Some(size);
        }
        size += 0.25;
    }
    None
}

/// A one-line label of `text` (a name, a title) in `style` and `color`, its emoji in colour; the plain
/// label when it has none.
pub fn line(ui: &mut egui::Ui, text: &str, style: egui::TextStyle, color: Color32) -> Response {
    let font = style.resolve(ui.style());
    match prepare(ui, text, &font, color) {
        Some(prepared) => label(ui, prepared, false, false),
        None => ui.label(egui::RichText::new(text).font(font).color(color)),
    }
}

/// A label of `prepared` text (from [`prepare`]) that wraps if `wrap` and can be selected if
/// `selectable`, as `egui::Label` draws it, with its emoji pictures painted over their glyphs. Read out
/// as its whole text.
pub fn label(ui: &mut egui::Ui, prepared: Prepared, wrap: bool, selectable: bool) -> Response {
    label_sensing(ui, prepared, wrap, selectable, None)
}

/// [`label`], sensing `sense` (a click target) when given.
pub fn label_sensing(
    ui: &mut egui::Ui,
    prepared: Prepared,
    wrap: bool,
    selectable: bool,
    sense: Option<egui::Sense>,
) -> Response {
    let Prepared { job, emoji } = prepared;
    let mut widget = egui::Label::new(job).selectable(selectable);
    if wrap {
        widget = widget.wrap();
    }
    if let Some(sense) = sense {
        widget = widget.sense(sense);
    }
    let (pos, galley, response) = widget.layout_in_ui(ui);
    response.widget_info(|| {
        egui::WidgetInfo::labeled(egui::WidgetType::Label, ui.is_enabled(), galley.text())
    });
    if !ui.is_rect_visible(response.rect) {
        return response;
    }
    let color = ui.visuals().text_color();
    let underline = if response.has_focus() || response.highlighted() {
        egui::Stroke::new(1.0, color)
    } else {
        egui::Stroke::NONE
    };
    if selectable {
        egui::text_selection::LabelSelectionState::label_text_selection(
            ui,
            &response,
            pos,
            Arc::clone(&galley),
            color,
            underline,
        );
    } else {
        ui.painter().add(
            egui::epaint::TextShape::new(pos, Arc::clone(&galley), color).with_underline(underline),
        );
    }
    let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
    for (room, texture) in rooms(&galley, &emoji) {
        let side = room.width().min(room.height());
        let rect = egui::Rect::from_center_size(room.center(), egui::vec2(side, side))
            .translate(pos.to_vec2());
        ui.painter().image(texture.id(), rect, uv, Color32::WHITE);
    }
    response
}

/// Where each emoji's glyphs are in `galley` (relative to it), with its texture. An emoji's glyphs are
/// told apart from text's by their row height: the size of an emoji's section is chosen so that its
/// font's own row height differs from the row height its section asks for ([`prepare`]), while a text
/// glyph's two are the same. (Character indices cannot be used: egui 0.35 gives a right-to-left word
/// zero-width glyphs beyond its characters, so the index of a glyph after Arabic text is off; and the
/// glyphs of one cluster all carry its first character.) Each emoji's section has one glyph per
/// character, in order, so the marked glyphs are dealt out by the emoji's character counts.
fn rooms<'a>(galley: &egui::Galley, emoji: &'a [Emoji]) -> Vec<(egui::Rect, &'a TextureHandle)> {
    let mut marked = galley.rows.iter().flat_map(|row| {
        row.row
            .glyphs
            .iter()
            .filter(|g| g.line_height != g.font_height)
            .map(move |g| (row, g))
    });
    let mut found = Vec::with_capacity(emoji.len());
    for one in emoji {
        let Some(texture) = &one.texture else {
            continue;
        };
        let chars = galley
            .text()
            .get(one.cluster.clone())
            .map_or(0, |c| c.chars().count());
        let glyphs: Vec<_> = marked.by_ref().take(chars).collect();
        let Some(&(row, first)) = glyphs.first() else {
            break;
        };
        let right = glyphs
            .iter()
            .filter(|(r, _)| std::ptr::eq(*r, row))
            .map(|(_, g)| g.max_x())
            .fold(first.pos.x, f32::max);
        let room = egui::Rect::from_x_y_ranges(
            row.pos.x + first.pos.x..=row.pos.x + right,
            row.rect().y_range(),
        );
        found.push((room, texture));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runs of `text` as strings, emoji marked with brackets.
    fn shown(text: &str) -> Vec<String> {
        cut(text)
            .into_iter()
            .map(|run| match run {
                Run::Text(r) => text[r].to_owned(),
                Run::Emoji(r, _) => format!("[{}]", &text[r]),
            })
            .collect()
    }

    #[test]
    fn plain_text_is_one_run_and_skips_the_cut() {
        assert_eq!(shown("hello, world 123 #1 *"), ["hello, world 123 #1 *"]);
        assert!(!may_have_emoji("hello, world 123 #1 *"));
        assert!(cut("").is_empty());
    }

    #[test]
    fn a_single_emoji_is_its_own_run() {
        assert_eq!(shown("hi 👋 you"), ["hi ", "[👋]", " you"]);
        assert_eq!(shown("👋"), ["[👋]"]);
        assert_eq!(shown("👋👋"), ["[👋]", "[👋]"]);
        assert!(may_have_emoji("hi 👋"));
    }

    #[test]
    fn sequences_stay_whole() {
        // A ZWJ family, a flag, a skin tone, a keycap, a heart asked for as an emoji.
        assert_eq!(shown("👨‍👩‍👧!"), ["[👨‍👩‍👧]", "!"]);
        assert_eq!(shown("à 🇫🇷"), ["à ", "[🇫🇷]"]);
        assert_eq!(shown("👋🏽x"), ["[👋🏽]", "x"]);
        assert_eq!(shown("press 1️⃣ now"), ["press ", "[1️⃣]", " now"]);
        assert_eq!(shown("❤️"), ["[❤️]"]);
        assert_eq!(shown("🏴󠁧󠁢󠁳󠁣󠁴󠁿"), ["[🏴󠁧󠁢󠁳󠁣󠁴󠁿]"]);
        assert!(picture("👨‍👩‍👧").is_some());
    }

    #[test]
    fn text_presentation_and_unknown_sequences_stay_text() {
        // Shown as text by default, or asked for as text.
        assert_eq!(shown("© ™ ❤ ↔"), ["© ™ ❤ ↔"]);
        assert_eq!(shown("☺︎"), ["☺︎"]);
        // Two regional indicators that are no country; a made-up ZWJ sequence.
        assert_eq!(picture("🇿🇿"), None);
        assert_eq!(picture("🦆\u{200d}🔥"), None);
        assert_eq!(shown("🦆\u{200d}🔥"), ["🦆\u{200d}🔥"]);
        // A symbol no emoji font has a picture of.
        assert_eq!(shown("⌁ x"), ["⌁ x"]);
    }

    #[test]
    fn neighbouring_scripts_are_untouched() {
        assert_eq!(shown("héllo 世界 مرحبا 👋"), ["héllo 世界 مرحبا ", "[👋]"]);
        assert_eq!(shown("世界👋世界"), ["世界", "[👋]", "世界"]);
        assert_eq!(shown("👋مرحبا"), ["[👋]", "مرحبا"]);
        // Combining marks stay with their letters.
        assert_eq!(shown("e\u{301}👋"), ["e\u{301}", "[👋]"]);
        for text in ["世界 こんにちは", "مرحبا بك", "שלום", "नमस्ते"]
        {
            assert_eq!(shown(text), [text]);
            assert!(!may_have_emoji(text));
        }
    }

    #[test]
    fn every_picture_decodes() {
        for emoji in ["👋", "👨‍👩‍👧", "🇫🇷", "👋🏽", "1⃣", "❤"] {
            let asset = picture(emoji).or_else(|| PngTwemojiAsset::from_emoji(emoji));
            let image = decode(asset.unwrap()).unwrap();
            assert_eq!(image.size, [72, 72], "{emoji}");
        }
    }

    #[test]
    fn the_picture_cache_is_bounded_and_keeps_what_this_pass_draws() {
        let ctx = egui::Context::default();
        let mut cache = Cache::default();
        let wave = picture("👋").unwrap();
        assert!(cache.picture(&ctx, wave, 1).is_some());
        assert!(cache.picture(&ctx, wave, 2).is_some());
        assert_eq!(cache.decoded, 1, "decoded once");
        let all: Vec<_> = (0x1F300u32..0x1FAFF)
            .filter_map(char::from_u32)
            .filter_map(|c| picture(&c.to_string()))
            .take(MAX_EMOJI_TEXTURES + 1)
            .collect();
        assert_eq!(all.len(), MAX_EMOJI_TEXTURES + 1);
        // One new emoji a pass: when the cache is full, the one drawn longest ago goes.
        let mut cache = Cache::default();
        for (pass, asset) in (1..).zip(&all) {
            assert!(cache.picture(&ctx, asset, pass).is_some());
            assert!(cache.pictures.len() <= MAX_EMOJI_TEXTURES);
        }
        assert!(!cache.pictures.contains_key(all[0].emoji));
        assert!(cache.pictures.contains_key(all[1].emoji));
        // All in use in one pass: a new one is not drawn, nothing in use is evicted.
        let mut cache = Cache::default();
        for asset in &all[..MAX_EMOJI_TEXTURES] {
            assert!(cache.picture(&ctx, asset, 7).is_some());
        }
        assert!(cache.picture(&ctx, all[MAX_EMOJI_TEXTURES], 7).is_none());
        assert!(cache.picture(&ctx, all[MAX_EMOJI_TEXTURES], 8).is_some());
        assert_eq!(cache.pictures.len(), MAX_EMOJI_TEXTURES);
    }

    #[test]
    fn each_picture_gets_its_own_row_wide_room_in_order() {
        // Sequences of several glyphs, neighbours, Arabic before (egui gives it extra glyphs), and text
        // that looks like an emoji's start ("1", "❤") before the emoji.
        let text = "a 👨‍👩‍👧👋 مرحبا 🇫🇷 1 1️⃣ ❤ ❤️ 😀😀";
        let ctx = egui::Context::default();
        let _ = ctx.run_ui(egui::RawInput::default(), |ui| {
            let font = egui::TextStyle::Body.resolve(ui.style());
            let row_height = ui.fonts_mut(|f| f.row_height(&font));
            let prepared = prepare(ui, text, &font, Color32::WHITE).unwrap();
            let clusters: Vec<&str> = prepared
                .emoji
                .iter()
                .map(|e| &text[e.cluster.clone()])
                .collect();
            assert_eq!(clusters, ["👨‍👩‍👧", "👋", "🇫🇷", "1️⃣", "❤️", "😀", "😀"]);
            let galley = ui.fonts_mut(|f| f.layout_job(prepared.job.clone()));
            assert_eq!(galley.text(), text, "the label holds the whole text");
            let found = rooms(&galley, &prepared.emoji);
            assert_eq!(found.len(), clusters.len());
            let mut last_right = 0.0;
            for (i, (room, _)) in found.iter().enumerate() {
                assert!(
                    (room.width() - row_height).abs() < 1.5,
                    "{}: {room:?} is not a row ({row_height}) wide",
                    clusters[i]
                );
                assert!(
                    room.left() >= last_right - 0.5,
                    "{}: out of order",
                    clusters[i]
                );
                last_right = room.right();
            }
        });
    }

    #[test]
    fn the_cut_cache_is_bounded() {
        let mut cache = Cache::default();
        for i in 0..MAX_CUT_TEXTS + 10 {
            cache.runs(&format!("{i} 👋"));
        }
        assert_eq!(cache.cuts.len(), MAX_CUT_TEXTS);
        assert!(matches!(
            &*cache.runs("7 👋"),
            [Run::Text(t), Run::Emoji(e, wave)] if *t == (0..2) && *e == (2..6) && wave.emoji == "👋"
        ));
    }
}
