//! A file message's card inside its bubble: the file's name, a picture's preview, its size and state (a
//! progress bar while it downloads), "Location and camera details removed" on a picture this profile sent
//! without them, and the buttons its state allows (Pause, Resume, Try again, Cancel, "Save as…", and
//! "Withdraw…" on a file this profile sent).
//! Previews are decoded once per message (with size limits) and kept as textures in a bounded cache.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;

use egui::{Color32, RichText, TextureHandle, TextureOptions};
use tern_protocol::MessageId;

use crate::action::Action;
use crate::model::{
    Attachment, Confirm, FileButton, FileState, MessageRow, file_buttons, human_size,
    progress_fraction, state_text,
};

/// Previews kept as textures at once (the oldest goes first).
pub const MAX_THUMBNAILS: usize = 64;
/// The largest preview decoded, in bytes (the node refuses larger ones on arrival too).
pub const MAX_THUMBNAIL_BYTES: usize = 32 * 1024;
/// The largest preview side decoded, in pixels.
pub const MAX_THUMBNAIL_SIDE: u32 = 1024;
/// A preview is drawn at most this large, in points.
const SHOWN_SIDE: f32 = 220.0;
/// The plain words on a picture sent without its location and camera details.
pub const METADATA_REMOVED: &str = "Location and camera details removed";

/// Decoded previews by message, as textures; a preview that would not decode is remembered as `None`
/// so it is not tried again each frame.
#[derive(Default)]
pub struct Thumbnails {
    textures: HashMap<MessageId, Option<TextureHandle>>,
    /// Oldest first.
    order: VecDeque<MessageId>,
    /// How many previews were decoded (for tests: each once).
    pub decoded: usize,
}

impl std::fmt::Debug for Thumbnails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnails")
            .field("held", &self.textures.len())
            .field("decoded", &self.decoded)
            .finish()
    }
}

impl Thumbnails {
    /// The texture of message `id`'s preview `bytes`, decoded the first time it is asked for.
    fn get(&mut self, ctx: &egui::Context, id: MessageId, bytes: &[u8]) -> Option<&TextureHandle> {
        if !self.textures.contains_key(&id) {
            if self.order.len() >= MAX_THUMBNAILS
                && let Some(oldest) = self.order.pop_front()
            {
                self.textures.remove(&oldest);
            }
            self.decoded += 1;
            let texture = decode_thumbnail(bytes).ok().map(|image| {
                ctx.load_texture(
                    format!("thumbnail-{:02x?}", &id.0[..4]),
                    image,
                    TextureOptions::LINEAR,
                )
            });
            self.textures.insert(id, texture);
            self.order.push_back(id);
        }
        self.textures.get(&id).and_then(Option::as_ref)
    }

    /// Previews held now.
    pub fn len(&self) -> usize {
        self.textures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.textures.is_empty()
    }
}

/// Decodes a PNG or JPEG preview of at most [`MAX_THUMBNAIL_BYTES`] and [`MAX_THUMBNAIL_SIDE`] pixels a
/// side; anything else is refused with the reason.
pub fn decode_thumbnail(bytes: &[u8]) -> Result<egui::ColorImage, String> {
    if bytes.len() > MAX_THUMBNAIL_BYTES {
        return Err(format!("the preview is over {MAX_THUMBNAIL_BYTES} bytes"));
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if !matches!(
        reader.format(),
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)
    ) {
        return Err("the preview is not a PNG or JPEG picture".to_owned());
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_THUMBNAIL_SIDE);
    limits.max_image_height = Some(MAX_THUMBNAIL_SIDE);
    // The decoded picture in RGBA, and as much again for the decoder's own buffers.
    limits.max_alloc = Some(2 * 4 * u64::from(MAX_THUMBNAIL_SIDE).pow(2));
    reader.limits(limits);
    let rgba = reader.decode().map_err(|e| e.to_string())?.to_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    Ok(egui::ColorImage::from_rgba_unmultiplied(
        size,
        rgba.as_raw(),
    ))
}

/// Draws the card of message `m`'s `attachment` in `text_color`; returns what a button asked for.
pub fn show(
    ui: &mut egui::Ui,
    m: &MessageRow,
    attachment: &Attachment,
    text_color: Color32,
    thumbnails: &mut Thumbnails,
) -> Option<Action> {
    let mut action = None;
    let outgoing = m.outgoing();
    let name = &attachment.name;
    ui.label(
        RichText::new(format!("📄 {name}"))
            .strong()
            .color(text_color),
    );
    if let Some(bytes) = &attachment.thumbnail
        && let Some(texture) = thumbnails.get(ui.ctx(), m.id, bytes)
    {
        // A whole picture opens at full size on a click.
        let whole =
            attachment.state == FileState::Complete && attachment.media_type.starts_with("image/");
        let preview = egui::Image::from_texture(texture)
            .max_size(egui::vec2(SHOWN_SIDE, SHOWN_SIDE))
            .corner_radius(4.0)
            .alt_text(format!("Preview of {name}"));
        let response = if whole {
            ui.add(preview.sense(egui::Sense::click()))
                .on_hover_text("Open the picture")
                .on_hover_cursor(egui::CursorIcon::PointingHand)
        } else {
            ui.add(preview)
        };
        if response.clicked() {
            action = Some(Action::ViewPicture {
                conversation: m.conversation,
                id: m.id,
                name: name.clone(),
            });
        }
    }
    let size = human_size(attachment.size);
    let state = state_text(attachment, outgoing);
    let line = if state.is_empty() {
        size
    } else {
        format!("{size} · {state}")
    };
    ui.label(RichText::new(line).color(text_color));
    if matches!(attachment.state, FileState::Downloading | FileState::Paused) {
        ui.add(egui::ProgressBar::new(progress_fraction(attachment)).desired_height(6.0));
    }
    if outgoing && attachment.metadata_stripped {
        ui.label(
            RichText::new(METADATA_REMOVED)
                .small()
                .color(text_color.gamma_multiply(0.8)),
        );
    }
    let buttons = file_buttons(attachment, outgoing);
    if !buttons.is_empty() {
        ui.horizontal(|ui| {
            for button in buttons {
                if ui.button(button.label()).clicked() {
                    action = Some(match button {
                        FileButton::SaveAs => Action::AskSaveFile {
                            conversation: m.conversation,
                            id: m.id,
                            name: name.clone(),
                        },
                        FileButton::Withdraw => Action::Confirm(Confirm::WithdrawFile {
                            conversation: m.conversation,
                            id: m.id,
                        }),
                        _ => Action::FileControl {
                            conversation: m.conversation,
                            id: m.id,
                            button,
                        },
                    });
                }
            }
        });
    }
    action
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::RgbaImage::from_pixel(width, height, image::Rgba([200, 40, 40, 255]))
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn previews_decode_within_their_limits_and_others_are_refused() {
        let image = decode_thumbnail(&png(32, 16)).unwrap();
        assert_eq!(image.size, [32, 16]);
        assert!(
            decode_thumbnail(&png(MAX_THUMBNAIL_SIDE + 1, 1)).is_err(),
            "too wide"
        );
        assert!(decode_thumbnail(b"GIF89a not a png").is_err());
        assert!(decode_thumbnail(&vec![0; MAX_THUMBNAIL_BYTES + 1]).is_err());
    }

    #[test]
    fn a_downloading_card_shows_its_progress_and_asks_to_pause_then_save_when_whole() {
        use egui::accesskit::Role;
        use egui_kittest::Harness;
        use egui_kittest::kittest::Queryable;

        struct Card {
            message: MessageRow,
            thumbnails: Thumbnails,
            asked: Vec<Action>,
        }
        let peer = crate::model::test_rows::key(1);
        let mut message = crate::model::test_rows::message(peer, 1, 10, false);
        message.text.clear();
        message.attachment = Some(Attachment {
            name: "talk.pdf".into(),
            size: 4 * 1024 * 1024,
            media_type: "application/pdf".into(),
            state: FileState::Downloading,
            progress: 1024 * 1024,
            metadata_stripped: false,
            thumbnail: None,
            failure: None,
        });
        let mut h = Harness::new_ui_state(
            |ui, c: &mut Card| {
                let attachment = c.message.attachment.clone().unwrap();
                let asked = show(
                    ui,
                    &c.message,
                    &attachment,
                    Color32::WHITE,
                    &mut c.thumbnails,
                );
                c.asked.extend(asked);
            },
            Card {
                message,
                thumbnails: Thumbnails::default(),
                asked: Vec::new(),
            },
        );
        h.step();
        assert!(h.query_by_label("📄 talk.pdf").is_some());
        assert!(
            h.query_by_label("4.0 MB · Downloading: 25% (1.0 MB of 4.0 MB)")
                .is_some()
        );
        assert!(h.query_by_role(Role::ProgressIndicator).is_some());
        assert!(h.query_by_label("Save as…").is_none(), "not whole yet");
        h.get_by_role_and_label(Role::Button, "Pause").click();
        h.step();
        assert!(matches!(
            h.state().asked.as_slice(),
            [Action::FileControl {
                button: FileButton::Pause,
                ..
            }]
        ));
        let attachment = h.state_mut().message.attachment.as_mut().unwrap();
        attachment.state = FileState::Complete;
        h.step();
        assert!(h.query_by_label("Pause").is_none());
        assert!(h.query_by_role(Role::ProgressIndicator).is_none());
        h.get_by_role_and_label(Role::Button, "Save as…").click();
        h.step();
        match h.state().asked.last() {
            Some(Action::AskSaveFile { name, .. }) => assert_eq!(name, "talk.pdf"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_cache_decodes_each_preview_once_and_is_bounded() {
        let ctx = egui::Context::default();
        let mut cache = Thumbnails::default();
        let bytes = png(4, 4);
        for _ in 0..3 {
            assert!(cache.get(&ctx, MessageId([1; 16]), &bytes).is_some());
        }
        assert!(cache.get(&ctx, MessageId([2; 16]), b"junk").is_none());
        assert!(cache.get(&ctx, MessageId([2; 16]), b"junk").is_none());
        assert_eq!(cache.decoded, 2, "once each, also the one that failed");
        for n in 0..MAX_THUMBNAILS as u16 + 10 {
            let mut id = [0u8; 16];
            id[..2].copy_from_slice(&n.to_le_bytes());
            id[15] = 7;
            cache.get(&ctx, MessageId(id), &bytes);
        }
        assert_eq!(cache.len(), MAX_THUMBNAILS);
    }
}
