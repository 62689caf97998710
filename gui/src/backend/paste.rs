//! "Paste a picture" (issue 14): the picture on the desktop's clipboard, read through `arboard` (the
//! toolkit's own paste carries text only), encoded as PNG in memory and sent like a file. Nothing of it is
//! written outside the profile's encrypted store.

use std::io::Cursor;
use std::sync::Arc;

use thiserror::Error;

use super::{Backend, Update};
use crate::model::{ConversationKey, Model, Node};

/// The most pixels a pasted picture may have (a screenshot of an 8K screen has 33 million).
pub const MAX_PASTE_PIXELS: usize = 50_000_000;

/// A picture as a clipboard holds it: RGBA pixels, row after row.
#[derive(Clone)]
pub struct ClipboardPicture {
    pub width: usize,
    pub height: usize,
    pub rgba: Arc<Vec<u8>>,
}

impl std::fmt::Debug for ClipboardPicture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClipboardPicture({}x{})", self.width, self.height)
    }
}

/// Where "Paste a picture" reads from: the desktop's clipboard, or (for tests) a fixed picture or none.
#[derive(Clone, Debug, Default)]
pub enum Clipboard {
    #[default]
    System,
    Fixed(Option<ClipboardPicture>),
}

/// Why nothing was pasted, in the words the app shows.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PasteError {
    #[error(
        "There is no picture on the clipboard. Copy one first (in a browser, an image viewer or a screenshot tool)."
    )]
    NoPicture,
    #[error("Tern can't read the clipboard: {0}")]
    Unreadable(String),
    #[error(
        "The picture on the clipboard is too large: {pixels} pixels, at most {MAX_PASTE_PIXELS}."
    )]
    TooLarge { pixels: usize },
    #[error("The picture on the clipboard can't be turned into a file: {0}")]
    Encode(String),
}

impl Clipboard {
    fn picture(&self) -> Result<ClipboardPicture, PasteError> {
        match self {
            Self::Fixed(picture) => picture.clone().ok_or(PasteError::NoPicture),
            Self::System => {
                let mut clipboard =
                    arboard::Clipboard::new().map_err(|e| PasteError::Unreadable(e.to_string()))?;
                match clipboard.get_image() {
                    Ok(image) => Ok(ClipboardPicture {
                        width: image.width,
                        height: image.height,
                        rgba: Arc::new(image.bytes.into_owned()),
                    }),
                    Err(arboard::Error::ContentNotAvailable) => Err(PasteError::NoPicture),
                    Err(e) => Err(PasteError::Unreadable(e.to_string())),
                }
            }
        }
    }

    /// The clipboard's picture as a PNG file's bytes. Blocking (the clipboard and the encoder).
    pub fn png(&self) -> Result<Vec<u8>, PasteError> {
        let picture = self.picture()?;
        let pixels = picture.width.saturating_mul(picture.height);
        if pixels > MAX_PASTE_PIXELS {
            return Err(PasteError::TooLarge { pixels });
        }
        let (Ok(width), Ok(height)) = (u32::try_from(picture.width), u32::try_from(picture.height))
        else {
            return Err(PasteError::TooLarge { pixels });
        };
        let image = image::RgbaImage::from_raw(width, height, picture.rgba.to_vec())
            .ok_or_else(|| PasteError::Encode("its pixels do not fill its size".into()))?;
        let mut png = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| PasteError::Encode(e.to_string()))?;
        Ok(png)
    }
}

impl Backend {
    /// Sends the picture on the clipboard to `conversation` as `pasted-<date>-<time>.png`; its message goes
    /// into the view, or the app says why there was nothing to send.
    pub fn paste_picture(&self, node: &Node, conversation: ConversationKey) {
        let clipboard = self.clipboard.clone();
        let node = node.clone();
        self.spawn(async move {
            let png = match tokio::task::spawn_blocking(move || clipboard.png()).await {
                Ok(Ok(png)) => png,
                Ok(Err(e)) => {
                    let text = e.to_string();
                    return Box::new(move |m: &mut Model| m.error(text)) as Update;
                }
                Err(_) => return super::failed("Could not paste the picture", "it stopped"),
            };
            let name = format!(
                "pasted-{}.png",
                chrono::Local::now().format("%Y-%m-%d-%H%M%S")
            );
            match node.send_file_bytes(conversation, name, png).await {
                Ok(sent) => Box::new(move |m: &mut Model| m.message_stored(sent.message)) as Update,
                Err(e) => super::failed("Could not send the picture", e),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_becomes_a_png_and_bad_ones_are_said_plainly() {
        let red = ClipboardPicture {
            width: 3,
            height: 2,
            rgba: Arc::new([255, 0, 0, 255].repeat(6)),
        };
        let png = Clipboard::Fixed(Some(red.clone())).png().unwrap();
        let back = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!((back.width(), back.height()), (3, 2));
        assert_eq!(back.get_pixel(2, 1).0, [255, 0, 0, 255]);

        assert_eq!(Clipboard::Fixed(None).png(), Err(PasteError::NoPicture));
        let short = ClipboardPicture {
            rgba: Arc::new(vec![0; 5]),
            ..red.clone()
        };
        assert!(matches!(
            Clipboard::Fixed(Some(short)).png(),
            Err(PasteError::Encode(_))
        ));
        let huge = ClipboardPicture {
            width: 10_000,
            height: 10_000,
            ..red
        };
        assert_eq!(
            Clipboard::Fixed(Some(huge)).png(),
            Err(PasteError::TooLarge {
                pixels: 100_000_000
            })
        );
    }
}
