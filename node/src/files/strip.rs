//! Metadata stripped from pictures before they are encrypted and sent: a photo's EXIF block carries where
//! it was taken (GPS) and with which camera, XMP and text chunks often the same and more. Done with
//! `img-parts`, which parses the container only (no pixels are decoded or re-encoded, so the picture is
//! unchanged): JPEG loses its APP1 (EXIF, XMP), APP13 (IPTC) and comment segments; PNG its `eXIf`, `tEXt`,
//! `zTXt`, `iTXt` and `tIME` chunks; WebP its `EXIF` and `XMP ` chunks. Colour profiles stay, and so does a
//! JPEG's orientation: its EXIF block is replaced by one that holds only that tag.
//!
//! The container is parsed in memory, so only pictures up to [`MAX_STRIP_LEN`] are stripped; a larger
//! one is sent as it is and the send result says nothing was stripped.

use image::metadata::Orientation;
use img_parts::jpeg::{Jpeg, markers};
use img_parts::png::Png;
use img_parts::webp::WebP;
use img_parts::{Bytes, ImageEXIF, ImageEncoder};

/// The largest picture whose metadata is stripped (it is parsed in memory).
pub const MAX_STRIP_LEN: u64 = 64 * 1024 * 1024;

const JPEG_DROP: [u8; 3] = [markers::APP1, markers::APP13, markers::COM];
const PNG_DROP: [[u8; 4]; 5] = [*b"eXIf", *b"tEXt", *b"zTXt", *b"iTXt", *b"tIME"];
const WEBP_DROP: [[u8; 4]; 2] = [*b"EXIF", *b"XMP "];

/// Whether pictures of this media type are stripped.
pub fn strippable(media_type: &str) -> bool {
    matches!(media_type, "image/jpeg" | "image/png" | "image/webp")
}

fn encode<T>(encoder: ImageEncoder<T>) -> Vec<u8>
where
    ImageEncoder<T>: Iterator<Item = Bytes>,
{
    let mut out = Vec::new();
    for part in encoder {
        out.extend_from_slice(&part);
    }
    out
}

/// An EXIF block that says only how the picture is turned (a big-endian TIFF header and one IFD entry, tag
/// 0x0112 SHORT), so a portrait photo still shows upright once the rest of its EXIF is gone.
fn orientation_only(orientation: Orientation) -> Bytes {
    let mut tiff = Vec::with_capacity(26);
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    tiff.extend_from_slice(&u16::from(orientation.to_exif()).to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Bytes::from(tiff)
}

/// The picture without its metadata, or `None` if it had none (or is not a picture this can parse: then
/// it is sent unchanged, as any other file).
pub fn strip(bytes: Vec<u8>, media_type: &str) -> Option<Vec<u8>> {
    let bytes = Bytes::from(bytes);
    match media_type {
        "image/jpeg" => {
            let mut jpeg = Jpeg::from_bytes(bytes).ok()?;
            let orientation = jpeg
                .exif()
                .and_then(|exif| Orientation::from_exif_chunk(&exif))
                .filter(|o| *o != Orientation::NoTransforms);
            let kept = orientation.map(orientation_only);
            // A picture stripped before holds exactly the block it would get: that is not metadata.
            let already = kept.is_some() && jpeg.exif() == kept;
            let before = jpeg.segments().len();
            jpeg.segments_mut()
                .retain(|s| !JPEG_DROP.contains(&s.marker()));
            let dropped = before - jpeg.segments().len();
            if dropped == 0 || (dropped == 1 && already) {
                return None;
            }
            if kept.is_some() {
                jpeg.set_exif(kept);
            }
            Some(encode(jpeg.encoder()))
        }
        "image/png" => {
            let mut png = Png::from_bytes(bytes).ok()?;
            let before = png.chunks().len();
            png.chunks_mut().retain(|c| !PNG_DROP.contains(&c.kind()));
            (png.chunks().len() != before).then(|| encode(png.encoder()))
        }
        "image/webp" => {
            let mut webp = WebP::from_bytes(bytes).ok()?;
            let before = webp.chunks().len();
            for id in WEBP_DROP {
                webp.remove_chunks_by_id(id);
            }
            (webp.chunks().len() != before).then(|| encode(webp.encoder()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal JPEG: SOI, APP0 (JFIF), APP1 (EXIF with a GPS tag), a comment, a tiny scan, EOI.
    pub(crate) fn jpeg_with_gps() -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        let jfif = b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
        out.extend_from_slice(&[0xFF, 0xE0, 0, (jfif.len() + 2) as u8]);
        out.extend_from_slice(jfif);
        let exif =
            b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x88\x25\0\x04\0\0\0\x01\0\0\0\x1aGPS-51.5007N-0.1246W";
        out.extend_from_slice(&[0xFF, 0xE1, 0, (exif.len() + 2) as u8]);
        out.extend_from_slice(exif);
        let comment = b"camera: Example X100";
        out.extend_from_slice(&[0xFF, 0xFE, 0, (comment.len() + 2) as u8]);
        out.extend_from_slice(comment);
        // SOS with one component, then entropy-coded bytes, then EOI.
        out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0]);
        out.extend_from_slice(&[0x12, 0x34, 0x56, 0xFF, 0x00, 0x78]);
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    fn has(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_jpeg_loses_its_exif_gps_and_comment_and_keeps_the_rest() {
        let jpeg = jpeg_with_gps();
        let stripped = strip(jpeg.clone(), "image/jpeg").expect("it had metadata");
        assert!(!has(&stripped, b"GPS-51.5007N"));
        assert!(!has(&stripped, b"Exif\0\0"));
        assert!(!has(&stripped, b"Example X100"));
        assert!(has(&stripped, b"JFIF\0"), "the JFIF header stays");
        assert!(stripped.ends_with(&[0x12, 0x34, 0x56, 0xFF, 0x00, 0x78, 0xFF, 0xD9]));
        assert!(
            strip(stripped, "image/jpeg").is_none(),
            "nothing left to strip"
        );
    }

    /// A phone's portrait photo: EXIF with orientation 6 ("turn 90° clockwise to show") and GPS.
    #[test]
    fn a_jpeg_keeps_only_its_orientation_from_its_exif() {
        let mut jpeg = vec![0xFF, 0xD8];
        let mut exif = b"Exif\0\0MM\0*\0\0\0\x08\0\x02".to_vec();
        exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
        exif.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0x26]);
        exif.extend_from_slice(&[0, 0, 0, 0]);
        exif.extend_from_slice(b"GPS-51.5007N-0.1246W");
        jpeg.extend_from_slice(&[0xFF, 0xE1, 0, (exif.len() + 2) as u8]);
        jpeg.extend_from_slice(&exif);
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0, 0x12, 0xFF, 0xD9]);
        assert_eq!(
            Jpeg::from_bytes(Bytes::from(jpeg.clone()))
                .unwrap()
                .exif()
                .and_then(|e| Orientation::from_exif_chunk(&e)),
            Some(Orientation::Rotate90),
            "the fixture says 6"
        );

        let stripped = strip(jpeg, "image/jpeg").expect("it had metadata");
        assert!(!has(&stripped, b"GPS-51.5007N"));
        let exif = Jpeg::from_bytes(Bytes::from(stripped.clone()))
            .unwrap()
            .exif()
            .expect("an EXIF block with the orientation");
        assert_eq!(exif.len(), 26, "one entry and nothing else");
        assert_eq!(
            Orientation::from_exif_chunk(&exif),
            Some(Orientation::Rotate90)
        );
        assert!(
            strip(stripped, "image/jpeg").is_none(),
            "the orientation block alone is not metadata to strip"
        );
    }

    #[test]
    fn a_png_loses_its_text_chunks() {
        fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
            let mut out = (data.len() as u32).to_be_bytes().to_vec();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let mut crc = crc32(kind, data).to_be_bytes().to_vec();
            out.append(&mut crc);
            out
        }
        fn crc32(kind: &[u8], data: &[u8]) -> u32 {
            let mut crc = 0xFFFF_FFFFu32;
            for &b in kind.iter().chain(data) {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]));
        png.extend(chunk(b"tEXt", b"Location\0Paris"));
        png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]));
        png.extend(chunk(b"IEND", &[]));
        let stripped = strip(png, "image/png").expect("it had metadata");
        assert!(!has(&stripped, b"Paris"));
        assert!(has(&stripped, b"IDAT"));
    }

    #[test]
    fn other_files_and_unparsable_pictures_are_left_alone() {
        assert!(strip(b"plain text".to_vec(), "text/plain").is_none());
        assert!(strip(b"not a jpeg".to_vec(), "image/jpeg").is_none());
        assert!(strippable("image/webp") && !strippable("application/pdf"));
    }
}
