//! QR codes: reading a Tern invite from a picture (rqrr), and drawing one's own invite (from the
//! protocol crate's QR matrix).

use thiserror::Error;

/// Largest image file read for a QR code.
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// Largest image side, in pixels, before it is scaled down for decoding.
pub const MAX_DECODE_SIDE: u32 = 2048;

/// Why no invite came out of a picture.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QrError {
    #[error("the image is larger than {} MiB", MAX_IMAGE_BYTES / (1024 * 1024))]
    TooLarge,
    #[error("this is not an image Tern can read (PNG or JPEG): {0}")]
    NotAnImage(String),
    #[error("no QR code found in the image")]
    NoCode,
    #[error("the QR code is not a Tern invite")]
    NotAnInvite,
}

/// Finds the Tern invite link in a PNG or JPEG picture. The link is checked as a contact card.
pub fn invite_from_image(bytes: &[u8]) -> Result<String, QrError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(QrError::TooLarge);
    }
    let image = image::load_from_memory(bytes).map_err(|e| QrError::NotAnImage(e.to_string()))?;
    let image = if image.width().max(image.height()) > MAX_DECODE_SIDE {
        image.thumbnail(MAX_DECODE_SIDE, MAX_DECODE_SIDE)
    } else {
        image
    };
    let luma = image.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(luma);
    let mut saw_code = false;
    for grid in prepared.detect_grids() {
        let Ok((_, content)) = grid.decode() else {
            continue;
        };
        saw_code = true;
        if tern_protocol::ContactCard::from_invite_link(&content).is_ok() {
            return Ok(content.trim().to_owned());
        }
    }
    Err(if saw_code {
        QrError::NotAnInvite
    } else {
        QrError::NoCode
    })
}

/// A QR matrix as an image: `scale` pixels per module and a four-module quiet zone.
pub fn matrix_image(matrix: &tern_protocol::card::QrMatrix, scale: usize) -> egui::ColorImage {
    let quiet = 4;
    let side = (matrix.width() + 2 * quiet) * scale;
    let mut pixels = vec![egui::Color32::WHITE; side * side];
    for y in 0..matrix.width() {
        for x in 0..matrix.width() {
            if !matrix.is_dark(x, y) {
                continue;
            }
            for dy in 0..scale {
                let row = (y + quiet) * scale + dy;
                let start = row * side + (x + quiet) * scale;
                pixels[start..start + scale].fill(egui::Color32::BLACK);
            }
        }
    }
    egui::ColorImage::new([side, side], pixels)
}

/// A QR matrix as PNG bytes (for tests and for saving one's own code).
pub fn matrix_png(matrix: &tern_protocol::card::QrMatrix, scale: usize) -> Vec<u8> {
    let image = matrix_image(matrix, scale);
    let [w, h] = image.size;
    let luma: Vec<u8> = image.pixels.iter().map(|p| p.r()).collect();
    let mut out = Vec::new();
    let buffer = image::GrayImage::from_raw(w as u32, h as u32, luma);
    if let Some(buffer) = buffer {
        let _ = buffer.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use tern_protocol::card::{CardDetails, QrMatrix};
    use tern_protocol::{ContactCard, Identity};

    fn card() -> ContactCard {
        let identity = Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7), 0);
        ContactCard::issue(
            &identity,
            CardDetails {
                display_name: "Carol".into(),
                revision: 1,
                ..CardDetails::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn an_invite_drawn_as_a_qr_code_reads_back() {
        let card = card();
        let png = matrix_png(&card.qr().unwrap(), 4);
        assert_eq!(invite_from_image(&png).unwrap(), card.invite_link());
    }

    #[test]
    fn pictures_without_an_invite_get_a_clear_error() {
        let blank = {
            let mut out = Vec::new();
            image::GrayImage::from_pixel(64, 64, image::Luma([255]))
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .unwrap();
            out
        };
        assert_eq!(invite_from_image(&blank), Err(QrError::NoCode));
        let other = matrix_png(&QrMatrix::encode(b"https://example.org/").unwrap(), 4);
        assert_eq!(invite_from_image(&other), Err(QrError::NotAnInvite));
        assert!(matches!(
            invite_from_image(b"not a picture"),
            Err(QrError::NotAnImage(_))
        ));
        assert_eq!(
            invite_from_image(&vec![0; MAX_IMAGE_BYTES + 1]),
            Err(QrError::TooLarge)
        );
    }
}
