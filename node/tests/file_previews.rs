//! Pictures carry a preview in their announcement (docs/protocol.md §19.4): the sender makes it from the
//! photo, upright and without its metadata; the receiver keeps only one that is a small PNG or JPEG.

use std::io::Cursor;
use std::time::Duration;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use tern_node::api::Event;
use tern_node::engine::{Engine, Received};
use tern_protocol::file::{FileAnnouncement, FileHash, FileKey};
use tern_testkit::files::{contains, files_under};
use tern_testkit::net::{LiveNode, loopback_node};
use tern_testkit::profile::pair;
use tern_testkit::wait::wait_for;

fn encoded(picture: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A 1600 × 1200 photo (left half red, right half blue) whose EXIF says "turn 90° clockwise to show"
/// (orientation 6) and names where it was taken.
fn portrait_photo() -> Vec<u8> {
    let picture = RgbImage::from_fn(1600, 1200, |x, _| {
        if x < 800 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    });
    let jpeg = encoded(&DynamicImage::ImageRgb8(picture), ImageFormat::Jpeg);
    let mut exif = b"Exif\0\0MM\0*\0\0\0\x08\0\x02".to_vec();
    exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    exif.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0x26]);
    exif.extend_from_slice(&[0, 0, 0, 0]);
    exif.extend_from_slice(b"GPS-51.5007N-0.1246W");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1, 0, (exif.len() + 2) as u8]);
    out.extend_from_slice(&exif);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_arrives_with_an_upright_preview_and_without_its_location() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(dirs.0.path(), dirs.1.path());
    let source = scratch.path().join("portrait.jpg");
    std::fs::write(&source, portrait_photo()).unwrap();

    tokio::time::timeout(Duration::from_secs(120), async {
        let a = LiveNode::start(alice, "alice", loopback_node()).await;
        let mut b = LiveNode::start(bob, "bob", loopback_node()).await;
        b.node.dial(a.addr.clone()).await.unwrap();
        let sent = a.node.send_file(b.key, &source).await.unwrap();
        assert!(sent.metadata_stripped);

        let offer = wait_for(
            &mut b.events,
            "the photo's offer",
            |e| matches!(e, Event::MessageReceived { message, .. } if message.attachment.is_some()),
        )
        .await;
        let Event::MessageReceived { message, .. } = offer else {
            unreachable!()
        };
        let preview = message
            .attachment
            .and_then(|a| a.thumbnail)
            .expect("the photo came with a preview");
        assert!(!contains(&preview, b"GPS-51.5007N"));
        let small = image::load_from_memory(&preview).unwrap().to_rgb8();
        // Turned upright: 1600 × 1200 shown a quarter turn clockwise is 240 × 320, red on top.
        assert_eq!((small.width(), small.height()), (240, 320));
        let top = small.get_pixel(120, 40).0;
        let bottom = small.get_pixel(120, 280).0;
        assert!(top[0] > 150 && top[2] < 100, "red on top, got {top:?}");
        assert!(
            bottom[2] > 150 && bottom[0] < 100,
            "blue below, got {bottom:?}"
        );

        // The preview is kept (sealed) with the file, and nothing of the location reached either profile.
        let listed = b.node.files().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].attachment.thumbnail.as_deref(),
            Some(&preview[..])
        );
        for dir in [dirs.0.path(), dirs.1.path()] {
            for file in files_under(dir) {
                assert!(!contains(&std::fs::read(&file).unwrap(), b"GPS-51.5007N"));
            }
        }
        a.node.shutdown().await.unwrap();
        b.node.shutdown().await.unwrap();
    })
    .await
    .expect("finished in time");
}

fn offer(thumbnail: Vec<u8>) -> FileAnnouncement {
    FileAnnouncement {
        name: "picture.png".into(),
        size: 1000,
        media_type: "image/png".into(),
        key: FileKey::from_bytes([7; 32]),
        hash: FileHash([9; 32]),
        thumbnail: Some(thumbnail),
    }
}

fn received_preview(alice: &mut Engine, bob: &mut Engine, thumbnail: Vec<u8>) -> Option<Vec<u8>> {
    let (_, out) = alice
        .send_file(&bob.key(), offer(thumbnail), false)
        .unwrap();
    match bob.receive(&out.envelope).unwrap() {
        Received::Message { message, .. } => {
            let attachment = message.attachment.expect("the file is kept");
            assert_eq!(attachment.name, "picture.png");
            attachment.thumbnail
        }
        other => panic!("expected the file's message, got {other:?}"),
    }
}

/// A peer may put anything in the preview field: what is not a PNG or JPEG of at most 1024 pixels a side
/// is dropped on arrival (the file is kept), so the app never decodes a picture bomb.
#[test]
fn a_preview_a_peer_sent_is_kept_only_if_it_is_a_small_png_or_jpeg() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, mut bob) = pair(da.path(), db.path());

    let fine = encoded(
        &DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 48, Rgb([1, 2, 3]))),
        ImageFormat::Png,
    );
    assert_eq!(
        received_preview(&mut alice, &mut bob, fine.clone()),
        Some(fine)
    );

    let wide = encoded(
        &DynamicImage::ImageRgb8(RgbImage::from_pixel(5000, 2, Rgb([1, 2, 3]))),
        ImageFormat::Png,
    );
    assert!(wide.len() < 32 * 1024);
    assert_eq!(received_preview(&mut alice, &mut bob, wide), None);

    // A PNG header claiming 60,000 × 60,000 pixels (14 GB of pixels) in a few bytes.
    let mut bomb = encoded(
        &DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, Rgb([1, 2, 3]))),
        ImageFormat::Png,
    );
    bomb[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&60_000u32.to_be_bytes());
    assert_eq!(received_preview(&mut alice, &mut bob, bomb), None);

    assert_eq!(
        received_preview(&mut alice, &mut bob, b"<svg onload=alert(1)>".to_vec()),
        None
    );
}
