//! A picture opened at full size (issue 14): the node opens the file into memory (never unsealed on disk),
//! and it is decoded here, off the UI thread, within [`MAX_PICTURE_BYTES`] and [`MAX_PICTURE_SIDE`].
//! The "Picture" dialog (`dialogs::picture`) draws it.

use std::sync::Arc;

/// The largest picture file the app opens for viewing (a larger one is saved and opened elsewhere).
pub const MAX_PICTURE_BYTES: u64 = 64 * 1024 * 1024;
/// The longest side the app decodes.
pub const MAX_PICTURE_SIDE: u32 = 12_000;
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
