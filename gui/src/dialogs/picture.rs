//! "Picture": a received or sent picture at full size (issue 14: a preview in the conversation, a click for
//! the whole picture). The node opens the file into memory (never unsealed on disk); it is decoded off the
//! UI thread within [`MAX_PICTURE_BYTES`] and [`MAX_PICTURE_SIDE`], and drawn scaled down to fit.

use std::sync::Arc;

use crate::action::Action;
use crate::model::Model;

/// The largest picture file the app opens for viewing (a larger one is saved and opened elsewhere).
pub const MAX_PICTURE_BYTES: u64 = 64 * 1024 * 1024;
/// The longest side the app decodes.
pub const MAX_PICTURE_SIDE: u32 = 12_000;
/// The dialog's width: the picture is scaled down to it (and to the window's height).
pub const PICTURE_WIDTH: f32 = 860.0;

/// A decoded picture: its name and RGBA pixels.
#[derive(Clone)]
pub struct ViewedPicture {
    pub name: String,
    pub image: Arc<egui::ColorImage>,
}

impl std::fmt::Debug for ViewedPicture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ViewedPicture({:?})", self.image.size)
    }
}

/// The texture of the picture on show (made once per picture).
#[derive(Default)]
pub struct Form {
    texture: Option<(usize, egui::TextureHandle)>,
}

/// Decodes a picture file's bytes within the bounds above; the reason in words when it cannot.
pub fn decode(name: String, bytes: &[u8]) -> Result<ViewedPicture, String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PICTURE_SIDE);
    limits.max_image_height = Some(MAX_PICTURE_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let rgba = reader
        .decode()
        .map_err(|e| format!("it is not a picture Tern can show ({e})"))?
        .to_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    Ok(ViewedPicture {
        name,
        image: Arc::new(egui::ColorImage::from_rgba_unmultiplied(
            size,
            rgba.as_raw(),
        )),
    })
}

/// The picture, scaled down to fit; its alternative text names it.
pub fn show(ui: &mut egui::Ui, model: &Model, form: &mut Form) -> Vec<Action> {
    let Some(picture) = &model.picture else {
        return Vec::new();
    };
    let key = Arc::as_ptr(&picture.image) as usize;
    if form.texture.as_ref().is_none_or(|(k, _)| *k != key) {
        let texture = ui.ctx().load_texture(
            "picture",
            (*picture.image).clone(),
            egui::TextureOptions::LINEAR,
        );
        form.texture = Some((key, texture));
    }
    if let Some((_, texture)) = &form.texture {
        let max_height = (ui.ctx().content_rect().height() - 160.0).max(120.0);
        ui.vertical_centered(|ui| {
            ui.add(
                egui::Image::from_texture(texture)
                    .max_size(egui::vec2(PICTURE_WIDTH, max_height))
                    .alt_text(format!("The picture {}", picture.name)),
            );
            ui.label(&picture.name);
        });
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_decode_within_bounds_and_anything_else_says_why() {
        let mut png = Vec::new();
        image::RgbaImage::from_pixel(40, 30, image::Rgba([1, 2, 3, 255]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let picture = decode("a.png".into(), &png).unwrap();
        assert_eq!(picture.image.size, [40, 30]);
        let not = decode("a.txt".into(), b"hello, not a picture").unwrap_err();
        assert!(not.contains("not a picture"), "{not}");
    }
}
