use super::*;
use bao_tree::io::outboard::PreOrderMemOutboard;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn layout_counts_chunks_tags_and_groups() {
    let empty = FileLayout::new(0).unwrap();
    assert_eq!((empty.chunk_count(), empty.ciphertext_len()), (1, 16));
    let exact = FileLayout::new(FILE_CHUNK_LEN as u64 * 2).unwrap();
    assert_eq!(exact.chunk_count(), 2);
    assert_eq!(exact.ciphertext_len(), 2 * SEALED_CHUNK_LEN as u64);
    let max = FileLayout::new(MAX_FILE_SIZE).unwrap();
    assert_eq!(max.chunk_count(), MAX_FILE_CHUNKS);
    assert_eq!(max.ciphertext_len(), MAX_CIPHERTEXT_LEN);
    assert_eq!(max.group_count(), MAX_GROUPS);
    assert!(matches!(
        FileLayout::new(MAX_FILE_SIZE + 1),
        Err(FileError::TooLarge { .. })
    ));
    for size in [0, 1, 100, 65_535, 65_536, 65_537, 200_000, MAX_FILE_SIZE] {
        let layout = FileLayout::new(size).unwrap();
        assert_eq!(
            FileLayout::from_ciphertext_len(layout.ciphertext_len()).unwrap(),
            layout
        );
    }
    for len in [0, 15, SEALED_CHUNK_LEN as u64 + 15, MAX_CIPHERTEXT_LEN + 16] {
        assert!(FileLayout::from_ciphertext_len(len).is_err(), "{len}");
    }
}

#[test]
fn files_round_trip_and_the_hash_is_plain_blake3_of_the_ciphertext() {
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    for size in [0, 1, 65_536, 65_537, 150_000] {
        let key = FileKey::random(&mut rng);
        let plain = pattern(size);
        let (ciphertext, hash) = seal_file(&key, &plain).unwrap();
        assert_eq!(hash, FileHash::of(&ciphertext));
        assert_eq!(open_file(&key, &ciphertext).unwrap(), plain);
        // The bao root over 16 KiB groups is the same BLAKE3 hash.
        let outboard = PreOrderMemOutboard::create(&ciphertext, block_size());
        assert_eq!(FileHash::from(outboard.root), hash);
    }
}

#[test]
fn chunks_cannot_be_swapped_truncated_or_extended() {
    let key = FileKey::from_bytes([7; 32]);
    let plain = pattern(3 * FILE_CHUNK_LEN + 10);
    let (ciphertext, _) = seal_file(&key, &plain).unwrap();
    let layout = FileLayout::new(plain.len() as u64).unwrap();
    let chunk = |i: u64| {
        let r = layout.sealed_range(i).unwrap();
        ciphertext[r.start as usize..r.end as usize].to_vec()
    };
    // Chunk 1 offered as chunk 0, and the reverse.
    assert_eq!(
        open_chunk(&key, &layout, 0, &chunk(1)),
        Err(FileError::Decrypt { index: 0 })
    );
    // A file cut after three full chunks: the third does not open as the last.
    let cut = FileLayout::new(3 * FILE_CHUNK_LEN as u64).unwrap();
    assert_eq!(
        open_chunk(&key, &cut, 2, &chunk(2)),
        Err(FileError::Decrypt { index: 2 })
    );
    // Same chunk under another file size (extension): refused by the associated data.
    let longer = FileLayout::new(4 * FILE_CHUNK_LEN as u64).unwrap();
    assert_eq!(
        open_chunk(&key, &longer, 1, &chunk(1)),
        Err(FileError::Decrypt { index: 1 })
    );
    // A flipped bit.
    let mut bad = chunk(3);
    bad[0] ^= 1;
    assert_eq!(
        open_chunk(&key, &layout, 3, &bad),
        Err(FileError::Decrypt { index: 3 })
    );
    assert_eq!(
        open_chunk(&key, &layout, 3, &chunk(3)).unwrap(),
        plain[3 * FILE_CHUNK_LEN..]
    );
    assert!(matches!(
        open_chunk(&key, &layout, 4, &chunk(3)),
        Err(FileError::NoSuchChunk { .. })
    ));
}

#[test]
fn sealer_refuses_wrong_lengths_and_early_finish() {
    let layout = FileLayout::new(70_000).unwrap();
    let mut sealer = FileSealer::new(FileKey::from_bytes([1; 32]), layout);
    assert!(matches!(
        sealer.seal_next(&[0; 10]),
        Err(FileError::ChunkLength { .. })
    ));
    sealer.seal_next(&[0; FILE_CHUNK_LEN]).unwrap();
    assert_eq!(sealer.next_len(), Some(70_000 - FILE_CHUNK_LEN));
    assert!(matches!(
        sealer.finish(),
        Err(FileError::Incomplete { got: 1, count: 2 })
    ));
}

fn announcement() -> FileAnnouncement {
    FileAnnouncement {
        name: "holiday.jpg".into(),
        size: 1_234_567,
        media_type: "image/jpeg".into(),
        key: FileKey::from_bytes([9; 32]),
        hash: FileHash([8; 32]),
        thumbnail: Some(vec![0xff, 0xd8, 0xff]),
    }
}

#[test]
fn announcements_round_trip_and_bad_fields_are_refused() {
    let a = announcement();
    assert_eq!(FileAnnouncement::decode(&a.encode().unwrap()).unwrap(), a);
    let none = FileAnnouncement {
        thumbnail: None,
        media_type: String::new(),
        ..announcement()
    };
    assert_eq!(
        FileAnnouncement::decode(&none.encode().unwrap()).unwrap(),
        none
    );
    for name in ["", "..", "a/b", "a\\b", "a\nb", &"x".repeat(256)] {
        let bad = FileAnnouncement {
            name: name.into(),
            ..announcement()
        };
        assert!(bad.encode().is_err(), "{name:?}");
    }
    let big = FileAnnouncement {
        size: MAX_FILE_SIZE + 1,
        ..announcement()
    };
    assert!(big.encode().is_err());
    let thumb = FileAnnouncement {
        thumbnail: Some(vec![0; MAX_THUMBNAIL_LEN + 1]),
        ..announcement()
    };
    assert!(matches!(thumb.encode(), Err(DecodeError::TooLong { .. })));
    // Decoding checks the same: a name with a separator, a size over the bound, a scheme we do not speak.
    let mut bytes = a.encode().unwrap();
    let name_at = 1 + 8 + 32 + 32 + 1;
    bytes[name_at] = b'/';
    assert!(FileAnnouncement::decode(&bytes).is_err());
    let mut bytes = a.encode().unwrap();
    bytes[1..9].copy_from_slice(&(MAX_FILE_SIZE + 1).to_be_bytes());
    assert!(FileAnnouncement::decode(&bytes).is_err());
    let mut bytes = a.encode().unwrap();
    bytes[0] = 2;
    assert!(matches!(
        FileAnnouncement::decode(&bytes),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
    let mut bytes = a.encode().unwrap();
    bytes.push(0);
    assert!(matches!(
        FileAnnouncement::decode(&bytes),
        Err(DecodeError::TrailingBytes(1))
    ));
}

#[test]
fn debug_shows_neither_name_nor_key() {
    let text = format!("{:?}", announcement());
    assert!(!text.contains("holiday"));
    assert!(!text.contains("9, 9"));
    assert_eq!(format!("{:?}", FileKey::from_bytes([3; 32])), "FileKey(…)");
}

#[test]
#[allow(clippy::single_range_in_vec_init)]
fn range_requests_round_trip_and_bad_ranges_are_refused() {
    let layout = FileLayout::new(1_000_000).unwrap();
    let groups = layout.group_count();
    let good = RangeRequest {
        hash: FileHash([1; 32]),
        ciphertext_len: layout.ciphertext_len(),
        ranges: vec![0..3, 5..groups],
    };
    assert_eq!(RangeRequest::decode(&good.encode().unwrap()).unwrap(), good);
    for ranges in [
        vec![3..3],
        vec![0..groups + 1],
        vec![5..6, 0..1],
        vec![0..2, 2..3],
        vec![0..2, 1..3],
    ] {
        let bad = RangeRequest {
            ranges: ranges.clone(),
            ..good.clone()
        };
        assert!(bad.encode().is_err(), "{ranges:?}");
    }
    let bad_len = RangeRequest {
        ciphertext_len: 10,
        ..good.clone()
    };
    assert!(bad_len.encode().is_err());
    let too_many = RangeRequest {
        ciphertext_len: MAX_CIPHERTEXT_LEN,
        ranges: (0..=MAX_REQUEST_RANGES as u32)
            .map(|i| 2 * i..2 * i + 1)
            .collect(),
        ..good.clone()
    };
    assert!(matches!(
        too_many.encode(),
        Err(DecodeError::TooMany { .. })
    ));
    let mut bytes = good.encode().unwrap();
    bytes.push(0);
    assert!(RangeRequest::decode(&bytes).is_err());
}

#[test]
fn pieces_split_at_the_piece_size() {
    assert_eq!(
        split_pieces(&[0..130, 200..201]),
        vec![0..64, 64..128, 128..130, 200..201]
    );
}

#[test]
fn pieces_verify_and_a_flipped_byte_or_a_missing_byte_is_refused() {
    let key = FileKey::from_bytes([2; 32]);
    let plain = pattern(3 * 1024 * 1024 + 77);
    let (ciphertext, hash) = seal_file(&key, &plain).unwrap();
    let layout = FileLayout::new(plain.len() as u64).unwrap();
    let outboard = PreOrderMemOutboard::create(&ciphertext, block_size());
    let request = RangeRequest {
        hash,
        ciphertext_len: layout.ciphertext_len(),
        ranges: vec![0..1, 70..layout.group_count()],
    };
    let mut rebuilt = vec![0u8; ciphertext.len()];
    for piece in request.pieces() {
        let encoded = encode_piece(&ciphertext[..], &outboard, &piece).unwrap();
        assert!(encoded.len() <= MAX_PIECE_LEN);
        let verified = verify_piece(&hash, &layout, &piece, &encoded).unwrap();
        for leaf in verified.leaves {
            let at = leaf.offset as usize;
            rebuilt[at..at + leaf.data.len()].copy_from_slice(&leaf.data);
        }
        let bytes = layout.group_bytes(&piece);
        assert_eq!(
            rebuilt[bytes.start as usize..bytes.end as usize],
            ciphertext[bytes.start as usize..bytes.end as usize]
        );
        let mut tampered = encoded.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x40;
        assert!(matches!(
            verify_piece(&hash, &layout, &piece, &tampered),
            Err(PieceError::Verify(_))
        ));
        assert!(matches!(
            verify_piece(&hash, &layout, &piece, &encoded[..encoded.len() - 1]),
            Err(PieceError::Verify(_))
        ));
        let mut longer = encoded.clone();
        longer.push(0);
        assert!(matches!(
            verify_piece(&hash, &layout, &piece, &longer),
            Err(PieceError::TrailingBytes(1))
        ));
    }
    // A holder whose own copy is damaged serves nothing.
    let mut damaged = ciphertext.clone();
    damaged[20_000] ^= 1;
    assert!(matches!(
        encode_piece(&damaged[..], &outboard, &(1..2)),
        Err(PieceError::Encode(_))
    ));
}

#[test]
fn response_heads() {
    for status in [
        TransferStatus::Ok,
        TransferStatus::NotFound,
        TransferStatus::Busy,
        TransferStatus::Malformed,
        TransferStatus::Cancelled,
    ] {
        assert_eq!(TransferStatus::decode_head(status.head()).unwrap(), status);
    }
    assert!(TransferStatus::decode_head([1, 9]).is_err());
    assert!(TransferStatus::decode_head([2, 0]).is_err());
}

#[test]
fn a_hash_reads_back_from_its_hex_form_only() {
    let hash = FileHash::of(b"held");
    assert_eq!(FileHash::from_hex(&hash.to_hex()), Some(hash));
    assert_eq!(FileHash::from_hex(&hash.to_hex().to_uppercase()), None);
    assert_eq!(FileHash::from_hex(&hash.to_hex()[1..]), None);
    assert_eq!(FileHash::from_hex("tmp-1234"), None);
}
