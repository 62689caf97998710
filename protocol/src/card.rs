//! Contact cards: what one user hands another (in person as a QR code, or as a `tern:` invite link) so that
//! the other can reach them and start an end-to-end session, even while they are offline.

use std::fmt;

use qrcode::{Color, EcLevel, QrCode};
use thiserror::Error;

use crate::codec::{self, DecodeError, Reader, Writer};
use crate::identity::{Identity, IdentityKey, PublicIdentity, SignedPrekey};

/// The card format version this build writes and reads.
pub const CARD_VERSION: u8 = 1;
/// An encoded card is at most this long, so its invite link always fits one QR code.
pub const MAX_CARD_LEN: usize = 1536;
/// Display names are 1 to 64 bytes of UTF-8 with no control characters.
pub const MAX_DISPLAY_NAME_LEN: usize = 64;
/// At most this many mailbox nodes in a card.
pub const MAX_MAILBOXES: usize = 4;
/// At most this many addresses per mailbox node and in the card's own address list.
pub const MAX_ADDRESSES: usize = 4;
/// A binary multiaddr in a card is at most this long.
pub const MAX_ADDRESS_LEN: usize = 96;
/// A binary PeerId in a card is at most this long.
pub const MAX_PEER_ID_LEN: usize = 64;
/// Invite links are this prefix followed by the base58 card and its checksum.
pub const INVITE_PREFIX: &str = "tern:";
/// The checksum after the card in an invite link: the first bytes of `SHA-256("tern/invite/v1" || card)`.
pub const INVITE_CHECK_LEN: usize = 4;
const LABEL_INVITE: &[u8] = b"tern/invite/v1";
/// The smallest possible card: a one-byte display name, no mailbox, no address. An invite link that decodes
/// to fewer bytes is reported as incomplete.
pub const MIN_CARD_LEN: usize = 1 + 128 + 108 + 8 + 2 + 1 + 1 + 64;
/// An invite link longer than this is refused before decoding.
pub const MAX_INVITE_LEN: usize = INVITE_PREFIX.len() + 2 * MAX_CARD_LEN;

const LABEL_CARD: &[u8] = b"tern/card/v1";

/// Why a card could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CardError {
    #[error("not a Tern invite link: it must start with `{INVITE_PREFIX}`")]
    NotAnInvite,
    #[error("invite link is not valid base58")]
    BadBase58,
    #[error("invite link is {len} characters, at most {max} allowed")]
    InviteTooLong { len: usize, max: usize },
    #[error("invite link is incomplete: copy or scan the whole link again")]
    Incomplete,
    /// The link's checksum does not match and it is no complete link of the older kind either: a character
    /// was mistyped, lost or added.
    #[error(
        "invite link is damaged (a character is wrong, missing or extra): copy or scan the whole link again"
    )]
    Damaged,
    /// The cause is part of the message, not a [`std::error::Error::source`], so it is said once.
    #[error("invalid contact card: {0}")]
    Decode(DecodeError),
    #[error("the card could not be drawn as a QR code")]
    Qr,
}

crate::cause_in_message!(DecodeError => CardError::Decode);

/// The checksum an invite link carries after the card: the first [`INVITE_CHECK_LEN`] bytes of
/// `SHA-256("tern/invite/v1" || card)` (docs/protocol.md §5.2).
pub fn invite_check(card: &[u8]) -> [u8; INVITE_CHECK_LEN] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(LABEL_INVITE)
        .chain_update(card)
        .finalize();
    let mut check = [0u8; INVITE_CHECK_LEN];
    check.copy_from_slice(&digest[..INVITE_CHECK_LEN]);
    check
}

/// A node that holds mail for the card's owner: its libp2p PeerId and multiaddrs, both in binary form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxNode {
    pub peer_id: Vec<u8>,
    pub addresses: Vec<Vec<u8>>,
}

/// The unsigned contents of a card, as its owner fills them in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardDetails {
    pub display_name: String,
    /// Increases with every re-issue; a card with a lower revision than a known one is stale.
    pub revision: u64,
    pub mailboxes: Vec<MailboxNode>,
    /// Binary multiaddrs the owner may be reached at directly.
    pub addresses: Vec<Vec<u8>>,
}

/// A signed contact card.
#[derive(Clone, PartialEq, Eq)]
pub struct ContactCard {
    identity: PublicIdentity,
    prekey: SignedPrekey,
    details: CardDetails,
    /// The canonical encoding, signature included.
    encoded: Vec<u8>,
}

fn check_display_name(name: &str) -> Result<(), DecodeError> {
    codec::check_len("display name", name.len(), MAX_DISPLAY_NAME_LEN)?;
    if name.trim().is_empty() {
        return Err(DecodeError::Invalid {
            field: "display name",
            reason: "must not be empty",
        });
    }
    if name.chars().any(char::is_control) {
        return Err(DecodeError::Invalid {
            field: "display name",
            reason: "must not contain control characters",
        });
    }
    Ok(())
}

pub(crate) fn check_addresses(addresses: &[Vec<u8>]) -> Result<(), DecodeError> {
    codec::check_count("addresses", addresses.len(), MAX_ADDRESSES)?;
    for a in addresses {
        codec::check_len("address", a.len(), MAX_ADDRESS_LEN)?;
    }
    Ok(())
}

pub(crate) fn read_addresses(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let count = r.count_u8("addresses", MAX_ADDRESSES)?;
    (0..count)
        .map(|_| r.bytes_u8("address", MAX_ADDRESS_LEN).map(<[u8]>::to_vec))
        .collect()
}

pub(crate) fn write_addresses(w: &mut Writer, addresses: &[Vec<u8>]) {
    w.u8(u8::try_from(addresses.len()).unwrap_or(u8::MAX));
    for a in addresses {
        w.bytes_u8(a);
    }
}

impl ContactCard {
    /// Issues a card for `identity` with its current prekey.
    pub fn issue(identity: &Identity, details: CardDetails) -> Result<Self, CardError> {
        check_display_name(&details.display_name)?;
        codec::check_count("mailboxes", details.mailboxes.len(), MAX_MAILBOXES)?;
        for m in &details.mailboxes {
            codec::check_len("mailbox peer id", m.peer_id.len(), MAX_PEER_ID_LEN)?;
            check_addresses(&m.addresses)?;
        }
        check_addresses(&details.addresses)?;

        let mut w = Writer::with_capacity(512);
        w.u8(CARD_VERSION);
        identity.public().encode(&mut w);
        identity.current_prekey().encode(&mut w);
        w.u64(details.revision)
            .bytes_u8(details.display_name.as_bytes());
        w.u8(u8::try_from(details.mailboxes.len()).unwrap_or(u8::MAX));
        for m in &details.mailboxes {
            w.bytes_u8(&m.peer_id);
            write_addresses(&mut w, &m.addresses);
        }
        write_addresses(&mut w, &details.addresses);
        let signature = identity.sign(LABEL_CARD, w.as_slice());
        w.raw(&signature);
        codec::check_len("contact card", w.len(), MAX_CARD_LEN)?;
        Ok(Self {
            identity: identity.public().clone(),
            prekey: identity.current_prekey().clone(),
            details,
            encoded: w.into_vec(),
        })
    }

    /// Decodes a card and checks every signature in it.
    pub fn decode(bytes: &[u8]) -> Result<Self, CardError> {
        let mut r = Reader::bounded(bytes, "contact card", MAX_CARD_LEN)?;
        let version = r.u8("card version")?;
        if version != CARD_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "card",
                got: version,
                supported: CARD_VERSION,
            }
            .into());
        }
        let identity = PublicIdentity::decode(&mut r)?;
        let prekey = SignedPrekey::decode(&mut r, &identity.key)?;
        let revision = r.u64("card revision")?;
        let name = r.bytes_u8("display name", MAX_DISPLAY_NAME_LEN)?;
        let display_name = std::str::from_utf8(name)
            .map_err(|_| DecodeError::Invalid {
                field: "display name",
                reason: "not UTF-8",
            })?
            .to_owned();
        check_display_name(&display_name)?;
        let mailbox_count = r.count_u8("mailboxes", MAX_MAILBOXES)?;
        let mut mailboxes = Vec::with_capacity(mailbox_count);
        for _ in 0..mailbox_count {
            let peer_id = r.bytes_u8("mailbox peer id", MAX_PEER_ID_LEN)?.to_vec();
            let addresses = read_addresses(&mut r)?;
            mailboxes.push(MailboxNode { peer_id, addresses });
        }
        let addresses = read_addresses(&mut r)?;
        let signed_len = bytes.len() - r.remaining();
        let signature = r.array::<64>("card signature")?;
        r.finish()?;
        identity
            .key
            .verify(LABEL_CARD, &bytes[..signed_len], &signature, "contact card")?;
        Ok(Self {
            identity,
            prekey,
            details: CardDetails {
                display_name,
                revision,
                mailboxes,
                addresses,
            },
            encoded: bytes.to_vec(),
        })
    }

    pub fn encode(&self) -> &[u8] {
        &self.encoded
    }

    pub fn key(&self) -> IdentityKey {
        self.identity.key
    }

    pub fn identity(&self) -> &PublicIdentity {
        &self.identity
    }

    pub fn prekey(&self) -> &SignedPrekey {
        &self.prekey
    }

    pub fn details(&self) -> &CardDetails {
        &self.details
    }

    pub fn display_name(&self) -> &str {
        &self.details.display_name
    }

    /// The invite link: `tern:` followed by the base58 of the card and its checksum
    /// ([`invite_check`]).
    pub fn invite_link(&self) -> String {
        let mut bytes = self.encoded.to_vec();
        bytes.extend_from_slice(&invite_check(&self.encoded));
        format!("{INVITE_PREFIX}{}", bs58::encode(&bytes).into_string())
    }

    /// The card as a protocol 1.0 invite link: `tern:` and the base58 card, no checksum. Only for people
    /// whose app predates checked links; [`Self::invite_link`] is the link to give.
    pub fn invite_link_1_0(&self) -> String {
        format!(
            "{INVITE_PREFIX}{}",
            bs58::encode(&self.encoded).into_string()
        )
    }

    /// Parses an invite link (surrounding whitespace and the prefix's case are forgiven).
    pub fn from_invite_link(link: &str) -> Result<Self, CardError> {
        let link = link.trim();
        if link.len() > MAX_INVITE_LEN {
            return Err(CardError::InviteTooLong {
                len: link.len(),
                max: MAX_INVITE_LEN,
            });
        }
        let prefix = link
            .get(..INVITE_PREFIX.len())
            .ok_or(CardError::NotAnInvite)?;
        if !prefix.eq_ignore_ascii_case(INVITE_PREFIX) {
            return Err(CardError::NotAnInvite);
        }
        let bytes = bs58::decode(&link[INVITE_PREFIX.len()..])
            .into_vec()
            .map_err(|_| CardError::BadBase58)?;
        // A link cut short decodes to other bytes altogether (base58 is one big number), so its first byte
        // is no version byte: judge it by its length first.
        if bytes.len() < MIN_CARD_LEN {
            return Err(CardError::Incomplete);
        }
        // A checked link: whatever is wrong with the card inside is said as it is.
        if let Some((card, check)) = bytes.split_last_chunk::<INVITE_CHECK_LEN>()
            && card.len() >= MIN_CARD_LEN
            && invite_check(card) == *check
        {
            return match Self::decode(card) {
                Err(CardError::Decode(DecodeError::Truncated { .. })) => Err(CardError::Incomplete),
                other => other,
            };
        }
        // Else a link of the older kind (protocol 1.0, no checksum), or a damaged link: only a complete,
        // valid card is taken. A damaged link decodes to arbitrary bytes, so how their decoding fails says
        // nothing more.
        Self::decode(&bytes).map_err(|_| CardError::Damaged)
    }

    /// The QR payload: the invite link's bytes.
    pub fn qr_payload(&self) -> Vec<u8> {
        self.invite_link().into_bytes()
    }

    /// The card as a QR code (error correction level M).
    pub fn qr(&self) -> Result<QrMatrix, CardError> {
        QrMatrix::encode(&self.qr_payload())
    }

    /// How an incoming card for a known contact relates to the one on file.
    pub fn compare(known: &ContactCard, incoming: &ContactCard) -> CardChange {
        if known.identity.key != incoming.identity.key
            || known.identity.agreement != incoming.identity.agreement
        {
            CardChange::IdentityChanged
        } else if known.encoded == incoming.encoded {
            CardChange::Unchanged
        } else if incoming.details.revision < known.details.revision {
            CardChange::Stale
        } else {
            CardChange::Updated
        }
    }
}

impl fmt::Debug for ContactCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            identity,
            prekey,
            details,
            encoded: _,
        } = self;
        f.debug_struct("ContactCard")
            .field("key", &identity.key)
            .field("prekey", &prekey.id)
            .field("revision", &details.revision)
            .finish_non_exhaustive()
    }
}

/// What a newly received card means for a contact already on file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardChange {
    /// Byte-for-byte the same card.
    Unchanged,
    /// Same identity keys, a newer revision (new prekey, name or mailboxes): take it.
    Updated,
    /// Same identity keys, an older revision: keep the one on file.
    Stale,
    /// The identity or agreement key differs: warn the user and drop the verified mark.
    IdentityChanged,
}

/// A QR code as a square of dark and light modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    dark: Vec<bool>,
}

impl QrMatrix {
    pub fn encode(payload: &[u8]) -> Result<Self, CardError> {
        let code =
            QrCode::with_error_correction_level(payload, EcLevel::M).map_err(|_| CardError::Qr)?;
        let width = code.width();
        let dark = code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        Ok(Self { width, dark })
    }

    /// Modules per side, without a quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at column `x`, row `y` is dark; outside the code is light.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    /// The code for a terminal: two rows per line with half blocks, dark on light, with a quiet zone.
    pub fn to_text(&self) -> String {
        const QUIET: usize = 2;
        let side = self.width + 2 * QUIET;
        let module =
            |x: usize, y: usize| x >= QUIET && y >= QUIET && self.is_dark(x - QUIET, y - QUIET);
        let mut out = String::with_capacity(side * side / 2 * 4);
        for y in (0..side).step_by(2) {
            for x in 0..side {
                // Light is drawn as a full block so the code reads on dark terminals too.
                out.push(match (module(x, y), module(x, y + 1)) {
                    (true, true) => ' ',
                    (true, false) => '▄',
                    (false, true) => '▀',
                    (false, false) => '█',
                });
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// An error and its sources as anyhow's `{:#}` prints them: joined by ": ".
    fn rendered(error: &dyn std::error::Error) -> String {
        let mut out = error.to_string();
        let mut next = error.source();
        while let Some(cause) = next {
            out = format!("{out}: {cause}");
            next = cause.source();
        }
        out
    }

    #[test]
    fn a_card_error_says_its_cause_once() {
        let mut bytes = vec![3u8];
        bytes.extend_from_slice(&[0x11; 400]);
        let check = invite_check(&bytes);
        bytes.extend_from_slice(&check);
        let link = format!("{INVITE_PREFIX}{}", bs58::encode(&bytes).into_string());
        let error = ContactCard::from_invite_link(&link).unwrap_err();
        assert_eq!(
            rendered(&error),
            "invalid contact card: unsupported card version 3 (this build speaks 1)"
        );
        let in_start = crate::DecryptError::from(error);
        assert_eq!(
            rendered(&in_start),
            "in the session start, invalid contact card: unsupported card version 3 (this build speaks 1)"
        );
    }

    #[test]
    fn a_cut_invite_link_says_it_is_incomplete() {
        let (_, card) = alice();
        let link = card.invite_link();
        // Cut in half, or to a few characters: fewer bytes than any card.
        for cut in [link.len() / 2, INVITE_PREFIX.len() + 1] {
            let error = ContactCard::from_invite_link(&link[..cut]).unwrap_err();
            assert_eq!(error, CardError::Incomplete, "cut at {cut}");
            assert!(rendered(&error).contains("incomplete"));
        }
        // A checked card that ends inside a field (a writer's mistake): incomplete, not damaged.
        let bytes = card.encode();
        let mut long = bytes[..bytes.len() - 1].to_vec();
        let check = invite_check(&long);
        long.extend_from_slice(&check);
        let link = format!("{INVITE_PREFIX}{}", bs58::encode(&long).into_string());
        assert_eq!(
            ContactCard::from_invite_link(&link).unwrap_err(),
            CardError::Incomplete
        );
        assert!(ContactCard::from_invite_link(&card.invite_link()).is_ok());
    }

    #[test]
    fn a_mistyped_or_shortened_link_says_it_is_damaged() {
        let (_, card) = alice();
        let link = card.invite_link();
        let alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        // Every position, one character replaced by another base58 character.
        for at in INVITE_PREFIX.len()..link.len() {
            let old = link.as_bytes()[at] as char;
            let new = alphabet.chars().find(|&c| c != old).unwrap();
            let typo = format!("{}{new}{}", &link[..at], &link[at + 1..]);
            assert_eq!(
                ContactCard::from_invite_link(&typo),
                Err(CardError::Damaged),
                "typo at {at}"
            );
        }
        // The last few characters lost, or one added.
        for cut in 1..8 {
            let error = ContactCard::from_invite_link(&link[..link.len() - cut]).unwrap_err();
            assert!(
                matches!(error, CardError::Damaged | CardError::Incomplete),
                "cut {cut}: {error}"
            );
        }
        assert_eq!(
            ContactCard::from_invite_link(&format!("{link}z")),
            Err(CardError::Damaged)
        );
        assert!(rendered(&CardError::Damaged).contains("damaged"));
    }

    #[test]
    fn a_link_without_a_checksum_still_reads() {
        // Protocol 1.0 links are the base58 card alone.
        let (_, card) = alice();
        let old = card.invite_link_1_0();
        assert_eq!(
            old,
            format!(
                "{INVITE_PREFIX}{}",
                bs58::encode(card.encode()).into_string()
            )
        );
        assert_eq!(ContactCard::from_invite_link(&old), Ok(card.clone()));
        assert_ne!(old, card.invite_link());
    }

    fn alice() -> (Identity, ContactCard) {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let id = Identity::generate(&mut rng, 1_000);
        let card = ContactCard::issue(
            &id,
            CardDetails {
                display_name: "Alice".into(),
                revision: 1,
                mailboxes: vec![MailboxNode {
                    peer_id: vec![1; 38],
                    addresses: vec![vec![4, 127, 0, 0, 1, 6, 0x1f, 0x90]],
                }],
                addresses: vec![],
            },
        )
        .unwrap();
        (id, card)
    }

    #[test]
    fn invite_link_round_trips() {
        let (_, card) = alice();
        let link = card.invite_link();
        assert!(link.starts_with("tern:"));
        let back = ContactCard::from_invite_link(&format!("  TERN:{}\n", &link[5..])).unwrap();
        assert_eq!(back, card);
        assert_eq!(back.display_name(), "Alice");
    }

    #[test]
    fn every_changed_byte_is_rejected() {
        let (_, card) = alice();
        let bytes = card.encode().to_vec();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                ContactCard::decode(&bad).is_err(),
                "flipped byte {i} accepted"
            );
        }
    }

    #[test]
    fn bad_links_get_typed_errors() {
        assert_eq!(
            ContactCard::from_invite_link("https://x"),
            Err(CardError::NotAnInvite)
        );
        assert_eq!(
            ContactCard::from_invite_link("tern:0OIl"),
            Err(CardError::BadBase58)
        );
        assert!(matches!(
            ContactCard::from_invite_link(&format!("tern:{}", "1".repeat(MAX_INVITE_LEN))),
            Err(CardError::InviteTooLong { .. })
        ));
        assert_eq!(
            ContactCard::from_invite_link("tern:2"),
            Err(CardError::Incomplete)
        );
        let mut zeros = vec![CARD_VERSION];
        zeros.resize(MIN_CARD_LEN, 0);
        let check = invite_check(&zeros);
        zeros.extend_from_slice(&check);
        assert!(matches!(
            ContactCard::from_invite_link(&format!("tern:{}", bs58::encode(&zeros).into_string())),
            Err(CardError::Decode(_))
        ));
    }

    #[test]
    fn names_are_checked_when_issuing() {
        let (id, _) = alice();
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(65)] {
            let details = CardDetails {
                display_name: bad.to_string(),
                ..CardDetails::default()
            };
            assert!(
                ContactCard::issue(&id, details).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn compare_detects_updates_stale_cards_and_key_changes() {
        let (id, card) = alice();
        let mut details = card.details().clone();
        details.revision = 2;
        let newer = ContactCard::issue(&id, details).unwrap();
        assert_eq!(ContactCard::compare(&card, &card), CardChange::Unchanged);
        assert_eq!(ContactCard::compare(&card, &newer), CardChange::Updated);
        assert_eq!(ContactCard::compare(&newer, &card), CardChange::Stale);
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        let impostor = Identity::generate(&mut rng, 0);
        let other = ContactCard::issue(&impostor, card.details().clone()).unwrap();
        assert_eq!(
            ContactCard::compare(&card, &other),
            CardChange::IdentityChanged
        );
    }

    #[test]
    fn the_largest_card_still_fits_a_qr_code() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let id = Identity::generate(&mut rng, 0);
        let addr = vec![0xAB; 40];
        let details = CardDetails {
            display_name: "n".repeat(MAX_DISPLAY_NAME_LEN),
            revision: u64::MAX,
            mailboxes: vec![
                MailboxNode {
                    peer_id: vec![0; 38],
                    addresses: vec![addr.clone(); 2],
                };
                MAX_MAILBOXES
            ],
            addresses: vec![addr; MAX_ADDRESSES],
        };
        let card = ContactCard::issue(&id, details).unwrap();
        let qr = card.qr().unwrap();
        assert!(qr.width() <= 177);
        assert!(qr.to_text().lines().count() > qr.width() / 2);
    }

    #[test]
    fn a_card_over_the_size_limit_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let id = Identity::generate(&mut rng, 0);
        let addr = vec![0xAB; MAX_ADDRESS_LEN];
        let details = CardDetails {
            display_name: "n".into(),
            revision: 1,
            mailboxes: vec![
                MailboxNode {
                    peer_id: vec![0; MAX_PEER_ID_LEN],
                    addresses: vec![addr.clone(); MAX_ADDRESSES],
                };
                MAX_MAILBOXES
            ],
            addresses: vec![addr; MAX_ADDRESSES],
        };
        assert!(matches!(
            ContactCard::issue(&id, details),
            Err(CardError::Decode(DecodeError::TooLong {
                field: "contact card",
                ..
            }))
        ));
    }
}
