//! The small preview an image's announcement carries (docs/protocol.md §19.4, `thumbnail`).
//!
//! The sender makes it from the picture's bytes (already stripped of metadata, so nothing of the EXIF block
//! can reach it: the preview is decoded pixels, encoded afresh): the longest side scaled to at most
//! [`THUMB_SIDE`], JPEG, or PNG when the picture has transparency, at most `MAX_THUMBNAIL_LEN` bytes. Decoding
//! is bounded ([`MAX_SOURCE_SIDE`], [`MAX_DECODE_ALLOC`]): a picture past them is sent without a preview.
//!
//! A receiver keeps a preview only if [`acceptable`] says so: a PNG or JPEG whose header names at most
//! [`MAX_THUMBNAIL_SIDE`] pixels a side, so whatever draws it decodes at most a few megabytes whatever a peer sent.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage};
use tern_protocol::file::MAX_THUMBNAIL_LEN;

/// The longest side of a preview this node makes.
pub const THUMB_SIDE: u32 = 320;
/// The longest side of a preview this node keeps from a peer (decoding it takes at most 4 MiB).
pub const MAX_THUMBNAIL_SIDE: u32 = 1024;
/// A picture wider or taller than this gets no preview (it is not decoded).
pub const MAX_SOURCE_SIDE: u32 = 12_000;
/// The most memory decoding one picture may take; past it the picture gets no preview.
pub const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;
/// Sides tried, largest first, until the encoded preview fits `MAX_THUMBNAIL_LEN`.
const SIDES: [u32; 4] = [THUMB_SIDE, 240, 160, 96];
const JPEG_QUALITY: u8 = 70;

/// Whether pictures of this media type get a preview.
pub fn previewable(media_type: &str) -> bool {
    matches!(media_type, "image/jpeg" | "image/png")
}

/// A preview of `bytes`, a picture of `media_type`; `None` if it is not one this decodes within the bounds
/// (it is then sent as any other file).
pub fn make(bytes: &[u8], media_type: &str) -> Option<Vec<u8>> {
    let format = match media_type {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        _ => return None,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    // The limits are checked against the header here, before any pixel buffer is allocated.
    let mut decoder = reader.into_decoder().ok()?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).ok()?;
    if picture.width() == 0 || picture.height() == 0 {
        return None;
    }
    // A camera's "rotate when shown" tag: the preview is drawn upright, as the picture would be.
    picture.apply_orientation(orientation);
    let transparent = picture.color().has_alpha();
    SIDES.iter().find_map(|&side| {
        let small = picture.thumbnail(side, side);
        if transparent && let Some(png) = encode_png(&small) {
            return Some(png);
        }
        encode_jpeg(&on_white(&small))
    })
}

/// Whether a preview a peer sent may be kept: a PNG or JPEG of at most [`MAX_THUMBNAIL_SIDE`] pixels a side, by
/// its header (nothing is decoded here).
pub fn acceptable(bytes: &[u8]) -> bool {
    if bytes.is_empty() || bytes.len() > MAX_THUMBNAIL_LEN {
        return false;
    }
    let Ok(reader) = ImageReader::new(Cursor::new(bytes)).with_guessed_format() else {
        return false;
    };
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return false;
    }
    match reader.into_dimensions() {
        Ok((w, h)) => w > 0 && h > 0 && w <= MAX_THUMBNAIL_SIDE && h <= MAX_THUMBNAIL_SIDE,
        Err(_) => false,
    }
}

fn encode_png(picture: &DynamicImage) -> Option<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, ImageFormat::Png).ok()?;
    let out = out.into_inner();
    (out.len() <= MAX_THUMBNAIL_LEN).then_some(out)
}

fn encode_jpeg(picture: &RgbImage) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(picture)
        .ok()?;
    (out.len() <= MAX_THUMBNAIL_LEN).then_some(out)
}

/// The picture over a white background (JPEG has no transparency; black would hide dark drawings).
fn on_white(picture: &DynamicImage) -> RgbImage {
    let rgba = picture.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        Rgb([over(r), over(g), over(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    /// A noisy picture (noise does not compress, so the preview's size bound is exercised).
    fn noisy(width: u32, height: u32, alpha: bool) -> DynamicImage {
        let mut state = 0x2545_f491_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let picture = RgbaImage::from_fn(width, height, |_, _| {
            let v = next().to_le_bytes();
            Rgba([v[0], v[1], v[2], if alpha { v[3] } else { 255 }])
        });
        if alpha {
            DynamicImage::ImageRgba8(picture)
        } else {
            DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(picture).to_rgb8())
        }
    }

    fn encoded(picture: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn decoded(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }

    #[test]
    fn a_photo_gets_a_small_jpeg_preview_that_keeps_its_shape() {
        let photo = encoded(&noisy(1200, 800, false), ImageFormat::Jpeg);
        let preview = make(&photo, "image/jpeg").expect("a preview");
        assert!(
            preview.len() <= MAX_THUMBNAIL_LEN,
            "{} bytes",
            preview.len()
        );
        assert_eq!(
            image::guess_format(&preview).unwrap(),
            ImageFormat::Jpeg,
            "an opaque picture's preview is a JPEG"
        );
        let small = decoded(&preview);
        assert!(small.width() <= THUMB_SIDE && small.height() <= THUMB_SIDE);
        // 3:2 kept, within a pixel of rounding.
        assert!((i64::from(small.width()) * 2 - i64::from(small.height()) * 3).abs() <= 3);
        assert!(acceptable(&preview));
    }

    #[test]
    fn a_transparent_png_keeps_its_transparency_when_it_fits() {
        let mut drawing = RgbaImage::from_pixel(400, 400, Rgba([0, 0, 0, 0]));
        for x in 100..300 {
            drawing.put_pixel(x, 200, Rgba([200, 10, 10, 255]));
        }
        let png = encoded(&DynamicImage::ImageRgba8(drawing), ImageFormat::Png);
        let preview = make(&png, "image/png").expect("a preview");
        assert_eq!(image::guess_format(&preview).unwrap(), ImageFormat::Png);
        assert!(decoded(&preview).color().has_alpha());
    }

    #[test]
    fn noise_with_transparency_falls_back_to_a_jpeg_that_fits() {
        let png = encoded(&noisy(900, 900, true), ImageFormat::Png);
        let preview = make(&png, "image/png").expect("a preview");
        assert!(
            preview.len() <= MAX_THUMBNAIL_LEN,
            "{} bytes",
            preview.len()
        );
        assert!(acceptable(&preview));
    }

    #[test]
    fn what_is_not_a_picture_gets_no_preview() {
        assert_eq!(make(b"not a picture at all", "image/png"), None);
        assert_eq!(make(b"\xFF\xD8\xFF\xE0 torn", "image/jpeg"), None);
        let png = encoded(&noisy(10, 10, false), ImageFormat::Png);
        assert_eq!(make(&png, "application/pdf"), None, "only pictures");
    }

    /// A PNG header that claims 100,000 × 100,000 pixels (40 GB decoded) is refused before anything is
    /// allocated: no preview, no panic.
    #[test]
    fn a_picture_claiming_huge_dimensions_is_not_decoded() {
        let mut png = encoded(&noisy(4, 4, false), ImageFormat::Png);
        // IHDR's width and height sit at bytes 16..24; the CRC after them is left wrong on purpose too.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(make(&png, "image/png"), None);
        assert!(!acceptable(&png));
    }

    #[test]
    fn a_peers_preview_is_kept_only_if_small_and_a_png_or_jpeg() {
        let ok = encoded(&noisy(64, 48, false), ImageFormat::Png);
        assert!(acceptable(&ok));
        let wide = encoded(&noisy(MAX_THUMBNAIL_SIDE + 1, 1, false), ImageFormat::Png);
        assert!(wide.len() <= MAX_THUMBNAIL_LEN);
        assert!(!acceptable(&wide), "wider than {MAX_THUMBNAIL_SIDE}");
        let bmp = b"BM\x46\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x04\0\0\0\x04\0\0\0\x01\0\x18\0";
        assert!(!acceptable(bmp), "only PNG and JPEG");
        assert!(!acceptable(b"GIF89a"));
        assert!(!acceptable(&[]));
        assert!(!acceptable(&vec![0; MAX_THUMBNAIL_LEN + 1]));
    }
}
