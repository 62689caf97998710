//! The file vectors of docs/protocol.md §16.9 (§19's formats): a small file's key, nonce, ciphertext and hash;
//! the boundary between two chunks of a larger file; one piece of a range response; an announcement inside
//! content; a range request. Checked through the crate's API and, apart from the bao piece, read back with the
//! raw primitives (ChaCha20-Poly1305, BLAKE3) from the document's description.

use super::*;
use bao_tree::io::outboard::PreOrderMemOutboard;
use tern_protocol::file::{
    self, FileAnnouncement, FileHash, FileKey, FileLayout, HoldAnswer, HoldRequest, RangeRequest,
    TransferStatus,
};

const SMALL_KEY: [u8; 32] = [0x66; 32];
const SMALL_PLAINTEXT: &[u8] = b"hello, tern!\n";
const TWO_KEY: [u8; 32] = counting(0x40);
/// One full chunk and 100 bytes: plaintext byte `i` is `i mod 251`.
const TWO_SIZE: usize = 65_636;
const ANNOUNCE_ID: [u8; 16] = [
    0x01, 0x9a, 0x3b, 0x2c, 0x1d, 0x00, 0x70, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];
const ANNOUNCE_SENT_MS: u64 = 1_765_000_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesVector {
    pub small: SmallFileVector,
    pub two_chunks: TwoChunkVector,
    pub announcement: AnnouncementVector,
    pub request: RequestVector,
    pub hold: HoldVector,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmallFileVector {
    pub key: String,
    pub plaintext: String,
    pub nonce: String,
    pub ad: String,
    pub ciphertext: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoChunkVector {
    pub key: String,
    pub size: u64,
    pub ciphertext_len: u64,
    pub chunk0_nonce: String,
    pub chunk0_tag: String,
    pub chunk1_nonce: String,
    pub chunk1_sealed: String,
    pub hash: String,
    /// Chunk groups 2..5 (the ciphertext from byte 32 768 to its end) as one piece of a range response.
    pub piece_groups: [u32; 2],
    pub piece_len: usize,
    pub piece_blake3: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementVector {
    pub name: String,
    pub media_type: String,
    pub thumbnail: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestVector {
    pub ranges: Vec<[u32; 2]>,
    pub bytes: String,
    pub ok_head: String,
}

/// `/tern/file-hold/1` (§19.9): a request for the two-chunk file and three answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldVector {
    pub request: String,
    pub fetching: String,
    /// Held for 7 days.
    pub held: String,
    /// At most 128 MiB.
    pub too_large: String,
}

fn two_plaintext() -> Vec<u8> {
    (0..TWO_SIZE).map(|i| (i % 251) as u8).collect()
}

fn announcement(small_hash: FileHash) -> FileAnnouncement {
    FileAnnouncement {
        name: "hello.txt".into(),
        size: SMALL_PLAINTEXT.len() as u64,
        media_type: "text/plain".into(),
        key: FileKey::from_bytes(SMALL_KEY),
        hash: small_hash,
        thumbnail: Some(vec![0x89, b'P', b'N', b'G']),
    }
}

pub fn gen_files() -> FilesVector {
    let small_key = FileKey::from_bytes(SMALL_KEY);
    let (small_ct, small_hash) = file::seal_file(&small_key, SMALL_PLAINTEXT).unwrap();

    let two_key = FileKey::from_bytes(TWO_KEY);
    let plain = two_plaintext();
    let (two_ct, two_hash) = file::seal_file(&two_key, &plain).unwrap();
    let layout = FileLayout::new(plain.len() as u64).unwrap();
    let chunk0 = layout.sealed_range(0).unwrap();
    let chunk1 = layout.sealed_range(1).unwrap();
    let outboard = PreOrderMemOutboard::create(&two_ct, file::block_size());
    let piece = 2..layout.group_count();
    let encoded = file::encode_piece(&two_ct[..], &outboard, &piece).unwrap();

    let content = Content {
        id: MessageId(ANNOUNCE_ID),
        sent_at_ms: ANNOUNCE_SENT_MS,
        body: Body::File(announcement(small_hash)),
    };
    let request = RangeRequest {
        hash: two_hash,
        ciphertext_len: layout.ciphertext_len(),
        ranges: vec![0..1, 3..5],
    };
    FilesVector {
        small: SmallFileVector {
            key: hex(&SMALL_KEY),
            plaintext: hex(SMALL_PLAINTEXT),
            nonce: hex(&file::chunk_nonce(0, true)),
            ad: hex(&file::chunk_ad(SMALL_PLAINTEXT.len() as u64)),
            ciphertext: hex(&small_ct),
            hash: hex(&small_hash.0),
        },
        two_chunks: TwoChunkVector {
            key: hex(&TWO_KEY),
            size: TWO_SIZE as u64,
            ciphertext_len: layout.ciphertext_len(),
            chunk0_nonce: hex(&file::chunk_nonce(0, false)),
            chunk0_tag: hex(&two_ct[chunk0.end as usize - 16..chunk0.end as usize]),
            chunk1_nonce: hex(&file::chunk_nonce(1, true)),
            chunk1_sealed: hex(&two_ct[chunk1.start as usize..chunk1.end as usize]),
            hash: hex(&two_hash.0),
            piece_groups: [piece.start, piece.end],
            piece_len: encoded.len(),
            piece_blake3: hex(blake3::hash(&encoded).as_bytes()),
        },
        announcement: AnnouncementVector {
            name: "hello.txt".into(),
            media_type: "text/plain".into(),
            thumbnail: hex(&[0x89, b'P', b'N', b'G']),
            content: hex(&content.encode().unwrap()),
        },
        request: RequestVector {
            ranges: request.ranges.iter().map(|r| [r.start, r.end]).collect(),
            bytes: hex(&request.encode().unwrap()),
            ok_head: hex(&TransferStatus::Ok.head()),
        },
        hold: HoldVector {
            request: hex(&HoldRequest {
                hash: two_hash,
                ciphertext_len: layout.ciphertext_len(),
            }
            .encode()),
            fetching: hex(&HoldAnswer::Fetching.encode()),
            held: hex(&HoldAnswer::Held { keep_secs: 604_800 }.encode()),
            too_large: hex(&HoldAnswer::TooLarge { max: 1 << 27 }.encode()),
        },
    }
}

/// The stored vectors read back through the crate.
pub fn check_files_with_api(v: &FilesVector) {
    let key = FileKey::from_bytes(unhex32(&v.small.key));
    assert_eq!(
        file::open_file(&key, &unhex(&v.small.ciphertext)).unwrap(),
        unhex(&v.small.plaintext)
    );
    let content = Content::decode(&unhex(&v.announcement.content)).unwrap();
    let Body::File(a) = content.body else {
        panic!("the announcement vector is not a file")
    };
    assert_eq!(a.name, v.announcement.name);
    assert_eq!(a.hash.0, unhex32(&v.small.hash));
    assert_eq!(a.key, key);
    let request = RangeRequest::decode(&unhex(&v.request.bytes)).unwrap();
    assert_eq!(request.hash.0, unhex32(&v.two_chunks.hash));
    assert_eq!(request.ciphertext_len, v.two_chunks.ciphertext_len);
    let hold = HoldRequest::decode(&unhex(&v.hold.request)).unwrap();
    assert_eq!(hold.hash, request.hash);
    let answer = |h: &str| HoldAnswer::decode(&unhex(h).try_into().unwrap()).unwrap();
    assert_eq!(answer(&v.hold.fetching), HoldAnswer::Fetching);
    assert_eq!(
        answer(&v.hold.held),
        HoldAnswer::Held { keep_secs: 604_800 }
    );
    assert_eq!(
        answer(&v.hold.too_large),
        HoldAnswer::TooLarge { max: 1 << 27 }
    );
}

fn spec_nonce(index: u64, last: bool) -> Vec<u8> {
    let mut nonce = index.to_be_bytes().to_vec();
    nonce.extend_from_slice(&[u8::from(last), 0, 0, 0]);
    nonce
}

fn spec_ad(size: u64) -> Vec<u8> {
    let mut ad = b"tern/file-chunk/v1".to_vec();
    ad.extend_from_slice(&size.to_be_bytes());
    ad
}

/// The stored vectors read back from the document's description with the raw primitives.
pub fn check_files_with_spec(v: &FilesVector) {
    // The small file: one chunk, the last, sealed under the key with the nonce and associated data of §19.1.
    let key = unhex(&v.small.key);
    let plain = unhex(&v.small.plaintext);
    let size = plain.len() as u64;
    assert_eq!(unhex(&v.small.nonce), spec_nonce(0, true));
    assert_eq!(unhex(&v.small.ad), spec_ad(size));
    let ct = unhex(&v.small.ciphertext);
    assert_eq!(ct.len(), plain.len() + 16);
    assert_eq!(
        spec::aead_seal(&key, &spec_nonce(0, true), &spec_ad(size), &plain),
        ct
    );
    assert_eq!(blake3::hash(&ct).as_bytes().to_vec(), unhex(&v.small.hash));

    // Two chunks: the whole ciphertext rebuilt, its length and hash; the first chunk's tag and the last chunk.
    let t = &v.two_chunks;
    let key = unhex(&t.key);
    let plain = two_plaintext();
    assert_eq!(t.size, plain.len() as u64);
    let c0 = spec::aead_seal(
        &key,
        &spec_nonce(0, false),
        &spec_ad(t.size),
        &plain[..65_536],
    );
    let c1 = spec::aead_seal(
        &key,
        &spec_nonce(1, true),
        &spec_ad(t.size),
        &plain[65_536..],
    );
    assert_eq!(c0[65_536..].to_vec(), unhex(&t.chunk0_tag));
    assert_eq!(c1, unhex(&t.chunk1_sealed));
    let whole = [c0.clone(), c1.clone()].concat();
    assert_eq!(whole.len() as u64, t.ciphertext_len);
    assert_eq!(blake3::hash(&whole).as_bytes().to_vec(), unhex(&t.hash));
    // Chunk 0 does not open as the last chunk, nor chunk 1 as a middle one.
    let cipher =
        <chacha20poly1305::ChaCha20Poly1305 as chacha20poly1305::KeyInit>::new_from_slice(&key)
            .unwrap();
    use chacha20poly1305::aead::{Aead, Payload};
    let try_open = |nonce: Vec<u8>, msg: &[u8]| {
        let nonce: [u8; 12] = nonce.try_into().unwrap();
        cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg,
                    aad: &spec_ad(t.size),
                },
            )
            .is_ok()
    };
    assert!(!try_open(spec_nonce(0, true), &c0));
    assert!(!try_open(spec_nonce(1, false), &c1));
    assert!(try_open(spec_nonce(1, true), &c1));

    // The announcement: content (§12) of kind 16 whose body is §19.4's layout.
    let bytes = unhex(&v.announcement.content);
    let mut c = spec::Cursor::new(&bytes);
    assert_eq!(c.u8(), 1);
    let _id = c.take(16);
    let _sent = c.u64();
    assert_eq!(c.u16(), 16, "content kind file");
    let body = c.vec32();
    c.end();
    let mut b = spec::Cursor::new(body);
    assert_eq!(b.u8(), 1, "file scheme");
    assert_eq!(b.u64(), v.small.plaintext.len() as u64 / 2);
    assert_eq!(hex(b.take(32)), v.small.key);
    assert_eq!(hex(b.take(32)), v.small.hash);
    assert_eq!(b.vec8(), v.announcement.name.as_bytes());
    assert_eq!(b.vec8(), v.announcement.media_type.as_bytes());
    assert_eq!(hex(b.vec16()), v.announcement.thumbnail);
    b.end();

    // The range request and the response head of §19.5.
    let bytes = unhex(&v.request.bytes);
    let mut r = spec::Cursor::new(&bytes);
    assert_eq!(r.u8(), 1);
    assert_eq!(hex(r.take(32)), t.hash);
    assert_eq!(r.u64(), t.ciphertext_len);
    let count = r.u16() as usize;
    let ranges: Vec<[u32; 2]> = (0..count).map(|_| [r.u32(), r.u32()]).collect();
    r.end();
    assert_eq!(ranges, v.request.ranges);
    assert_eq!(v.request.ok_head, "0100");

    // The hold request and answers of §19.9: version 1, the hash and ciphertext length; version 1, a code
    // and a u64.
    let bytes = unhex(&v.hold.request);
    let mut r = spec::Cursor::new(&bytes);
    assert_eq!(r.u8(), 1);
    assert_eq!(hex(r.take(32)), t.hash);
    assert_eq!(r.u64(), t.ciphertext_len);
    r.end();
    assert_eq!(v.hold.fetching, "01000000000000000000");
    assert_eq!(v.hold.held, format!("0101{:016x}", 604_800));
    assert_eq!(v.hold.too_large, format!("0102{:016x}", 1u64 << 27));

    // The piece: 16 KiB groups 2..5 of the two-chunk file, bao-encoded (§19.3); its length is the data plus
    // 64 bytes per parent hash pair. The API rebuilds its bytes (compared through its BLAKE3 hash).
    let data_len = t.ciphertext_len - 2 * 16_384;
    assert_eq!((t.piece_len as u64 - data_len) % 64, 0);
}
