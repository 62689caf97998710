//! Joining a group by link (docs/protocol.md §18.11): the `tern-group:` link an admin hands out, the join
//! request a link holder sends the admin inside a 1:1 session (content kind 0x0104) and the admin's answer
//! when it is not a Welcome (kind 0x0105).
//!
//! A link names no group: it carries a random token that only the admin's node can map to a group, whether
//! the admin approves each request, and the admin's contact card, so that someone who is nobody's contact
//! yet can start a session with the admin.

use thiserror::Error;

use crate::card::{ContactCard, MAX_CARD_LEN};
use crate::codec::{DecodeError, Reader, Writer};
use crate::group_wire::{MAX_KEY_PACKAGE_LEN, version};

/// Content kind: a link holder asks to join.
pub const KIND_JOIN_REQUEST: u16 = 0x0104;
/// Content kind: the admin's answer to a join request that is not (yet) a Welcome.
pub const KIND_JOIN_ANSWER: u16 = 0x0105;
/// Group links start with this.
pub const GROUP_LINK_PREFIX: &str = "tern-group:";
/// Bytes of a link's token.
pub const TOKEN_LEN: usize = 16;
/// Bytes of the checksum after a link's body.
pub const LINK_CHECK_LEN: usize = 4;
const LABEL_LINK: &[u8] = b"tern/group-link/v1";
const VERSION: u8 = 1;
/// The longest link body: version, mode, token, a card of the longest kind with its length.
const MAX_LINK_BODY: usize = 1 + 1 + TOKEN_LEN + 2 + MAX_CARD_LEN;
/// A group link longer than this is refused before decoding (base58 takes under 1.37 characters a byte).
pub const MAX_GROUP_LINK_LEN: usize =
    GROUP_LINK_PREFIX.len() + 2 * (MAX_LINK_BODY + LINK_CHECK_LEN);

/// The random token that names one link on its admin's node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkToken(pub [u8; TOKEN_LEN]);

impl LinkToken {
    /// The first 4 bytes in hex, to name a link in lists and commands.
    pub fn short(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for LinkToken {
    /// Only the short form: a token is a bearer secret of sorts and stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkToken({}…)", self.short())
    }
}

/// Who may join with a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinMode {
    /// Anyone holding the link is added at once.
    Open,
    /// An admin approves each request.
    Approval,
}

impl JoinMode {
    pub fn byte(self) -> u8 {
        match self {
            Self::Open => 1,
            Self::Approval => 2,
        }
    }

    pub fn from_byte(byte: u8) -> Result<Self, DecodeError> {
        match byte {
            1 => Ok(Self::Open),
            2 => Ok(Self::Approval),
            _ => Err(DecodeError::Invalid {
                field: "join mode",
                reason: "unknown mode",
            }),
        }
    }
}

/// Why a group link could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupLinkError {
    #[error("not a Tern group link: it must start with `{GROUP_LINK_PREFIX}`")]
    NotALink,
    #[error("group link is {len} characters, at most {max} allowed")]
    TooLong { len: usize, max: usize },
    #[error(
        "group link is damaged (a character is wrong, missing or extra): copy the whole link again"
    )]
    Damaged,
    /// The cause is part of the message, not a [`std::error::Error::source`], so it is said once.
    #[error("invalid group link: {0}")]
    Decode(DecodeError),
}

crate::cause_in_message!(DecodeError => GroupLinkError::Decode);

/// A group link: `tern-group:` || base58btc(body || check), body = `u8 version || u8 mode || token[16] ||
/// vec16<1536> admin card`, check = the first 4 bytes of `SHA-256("tern/group-link/v1" || body)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLink {
    pub mode: JoinMode,
    pub token: LinkToken,
    /// The card of the admin whose node answers the link.
    pub admin: ContactCard,
}

fn link_check(body: &[u8]) -> [u8; LINK_CHECK_LEN] {
    let digest = crate::crypto::sha256(&[LABEL_LINK, body]);
    let mut check = [0u8; LINK_CHECK_LEN];
    check.copy_from_slice(&digest[..LINK_CHECK_LEN]);
    check
}

impl GroupLink {
    /// The link's text.
    pub fn encode(&self) -> String {
        let mut w = Writer::new();
        w.u8(VERSION)
            .u8(self.mode.byte())
            .raw(&self.token.0)
            .bytes_u16(self.admin.encode());
        let mut bytes = w.into_vec();
        let check = link_check(&bytes);
        bytes.extend_from_slice(&check);
        format!("{GROUP_LINK_PREFIX}{}", bs58::encode(&bytes).into_string())
    }

    /// Reads a link (surrounding whitespace and the prefix's case are forgiven).
    pub fn decode(link: &str) -> Result<Self, GroupLinkError> {
        let link = link.trim();
        if link.len() > MAX_GROUP_LINK_LEN {
            return Err(GroupLinkError::TooLong {
                len: link.len(),
                max: MAX_GROUP_LINK_LEN,
            });
        }
        let prefix = link
            .get(..GROUP_LINK_PREFIX.len())
            .ok_or(GroupLinkError::NotALink)?;
        if !prefix.eq_ignore_ascii_case(GROUP_LINK_PREFIX) {
            return Err(GroupLinkError::NotALink);
        }
        // A character outside base58 is damage like any other.
        let bytes = bs58::decode(&link[GROUP_LINK_PREFIX.len()..])
            .into_vec()
            .map_err(|_| GroupLinkError::Damaged)?;
        let (body, check) = bytes
            .split_last_chunk::<LINK_CHECK_LEN>()
            .ok_or(GroupLinkError::Damaged)?;
        if link_check(body) != *check {
            return Err(GroupLinkError::Damaged);
        }
        let mut r = Reader::new(body);
        let version = r.u8("group link version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "group link",
                got: version,
                supported: VERSION,
            }
            .into());
        }
        let mode = JoinMode::from_byte(r.u8("join mode")?)?;
        let token = LinkToken(r.array("link token")?);
        let card = r.bytes_u16("admin card", MAX_CARD_LEN)?;
        r.finish()?;
        let admin = ContactCard::decode(card).map_err(|e| match e {
            crate::CardError::Decode(e) => GroupLinkError::Decode(e),
            _ => GroupLinkError::Damaged,
        })?;
        Ok(Self { mode, token, admin })
    }
}

/// Kind 0x0104: `u8 version || token[16] || vec16<4096> key_package` (a TLS-encoded `MLSMessage` of type
/// KeyPackage whose credential names the sender, §18.2).
#[derive(Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub token: LinkToken,
    pub key_package: Vec<u8>,
}

impl JoinRequest {
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        crate::codec::check_len("key package", self.key_package.len(), MAX_KEY_PACKAGE_LEN)?;
        let mut w = Writer::new();
        w.u8(VERSION)
            .raw(&self.token.0)
            .bytes_u16(&self.key_package);
        Ok(w.into_vec())
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        version(&mut r, "join request")?;
        let token = LinkToken(r.array("link token")?);
        let key_package = r.bytes_u16("key package", MAX_KEY_PACKAGE_LEN)?.to_vec();
        r.finish()?;
        if key_package.is_empty() {
            return Err(DecodeError::Invalid {
                field: "key package",
                reason: "empty",
            });
        }
        Ok(Self { token, key_package })
    }

    /// The token of a join request body, read without the rest (the receive path checks it before it keeps
    /// anything of a stranger).
    pub fn token_of(body: &[u8]) -> Option<LinkToken> {
        match body {
            [VERSION, rest @ ..] => rest.first_chunk::<TOKEN_LEN>().map(|t| LinkToken(*t)),
            _ => None,
        }
    }
}

/// What an admin's node answers a join request with, when the answer is not a Welcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinAnswer {
    /// The request waits for an admin's approval.
    Waiting,
    /// The link was revoked, or names no group this admin can add to.
    Refused,
    /// An admin declined the request.
    Declined,
}

impl JoinAnswer {
    fn byte(self) -> u8 {
        match self {
            Self::Waiting => 1,
            Self::Refused => 2,
            Self::Declined => 3,
        }
    }

    /// Kind 0x0105: `u8 version || token[16] || u8 answer` (1 waiting, 2 refused, 3 declined).
    pub fn encode(self, token: &LinkToken) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(VERSION).raw(&token.0).u8(self.byte());
        w.into_vec()
    }

    pub fn decode(body: &[u8]) -> Result<(LinkToken, Self), DecodeError> {
        let mut r = Reader::new(body);
        version(&mut r, "join answer")?;
        let token = LinkToken(r.array("link token")?);
        let answer = match r.u8("join answer")? {
            1 => Self::Waiting,
            2 => Self::Refused,
            3 => Self::Declined,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "join answer",
                    reason: "unknown answer",
                });
            }
        };
        r.finish()?;
        Ok((token, answer))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use crate::card::{CardDetails, ContactCard};
    use crate::identity::Identity;

    fn card() -> ContactCard {
        let identity = Identity::generate(&mut ChaCha20Rng::seed_from_u64(3), 1_000);
        let details = CardDetails {
            display_name: "Ada".into(),
            revision: 1,
            ..CardDetails::default()
        };
        ContactCard::issue(&identity, details).unwrap()
    }

    fn link(mode: JoinMode) -> GroupLink {
        GroupLink {
            mode,
            token: LinkToken([9; TOKEN_LEN]),
            admin: card(),
        }
    }

    #[test]
    fn a_link_reads_back_in_both_modes_and_forgives_case_and_spaces() {
        for mode in [JoinMode::Open, JoinMode::Approval] {
            let text = link(mode).encode();
            assert!(text.starts_with(GROUP_LINK_PREFIX));
            assert_eq!(GroupLink::decode(&text).unwrap(), link(mode));
            let shouted = format!("  TERN-GROUP:{}\n", &text[GROUP_LINK_PREFIX.len()..]);
            assert_eq!(GroupLink::decode(&shouted).unwrap(), link(mode));
        }
    }

    #[test]
    fn a_damaged_cut_or_foreign_link_is_refused_with_its_reason() {
        let text = link(JoinMode::Open).encode();
        // One character changed (to another base58 character), one lost, one added.
        let last = text.chars().last().unwrap();
        let changed = format!(
            "{}{}",
            &text[..text.len() - 1],
            if last == '2' { '3' } else { '2' }
        );
        assert_eq!(GroupLink::decode(&changed), Err(GroupLinkError::Damaged));
        assert_eq!(
            GroupLink::decode(&text[..text.len() - 1]),
            Err(GroupLinkError::Damaged)
        );
        assert_eq!(
            GroupLink::decode(&format!("{text}z")),
            Err(GroupLinkError::Damaged)
        );
        assert_eq!(
            GroupLink::decode(&format!("{text}0")),
            Err(GroupLinkError::Damaged),
            "a character outside base58"
        );
        assert_eq!(
            GroupLink::decode(&card().invite_link()),
            Err(GroupLinkError::NotALink),
            "a contact's invite link is not a group link"
        );
        assert!(matches!(
            GroupLink::decode(&format!("tern-group:{}", "1".repeat(MAX_GROUP_LINK_LEN))),
            Err(GroupLinkError::TooLong { .. })
        ));
        assert_eq!(
            GroupLink::decode("tern-group:"),
            Err(GroupLinkError::Damaged)
        );
    }

    #[test]
    fn a_link_of_another_version_or_mode_says_so() {
        let mut w = Writer::new();
        w.u8(2)
            .u8(1)
            .raw(&[9; TOKEN_LEN])
            .bytes_u16(card().encode());
        let mut bytes = w.into_vec();
        let check = link_check(&bytes);
        bytes.extend_from_slice(&check);
        let text = format!("{GROUP_LINK_PREFIX}{}", bs58::encode(&bytes).into_string());
        assert!(matches!(
            GroupLink::decode(&text),
            Err(GroupLinkError::Decode(DecodeError::UnsupportedVersion {
                got: 2,
                ..
            }))
        ));
        bytes[0] = 1;
        bytes[1] = 7;
        let body_len = bytes.len() - LINK_CHECK_LEN;
        let check = link_check(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&check);
        let text = format!("{GROUP_LINK_PREFIX}{}", bs58::encode(&bytes).into_string());
        assert!(matches!(
            GroupLink::decode(&text),
            Err(GroupLinkError::Decode(DecodeError::Invalid {
                field: "join mode",
                ..
            }))
        ));
    }

    #[test]
    fn a_join_request_carries_its_token_and_one_bounded_key_package() {
        let request = JoinRequest {
            token: LinkToken([5; TOKEN_LEN]),
            key_package: vec![0xaa; 3],
        };
        let body = request.encode().unwrap();
        assert!(JoinRequest::decode(&body).unwrap() == request);
        assert_eq!(
            JoinRequest::token_of(&body),
            Some(LinkToken([5; TOKEN_LEN]))
        );
        assert_eq!(JoinRequest::token_of(&body[..10]), None);
        assert_eq!(JoinRequest::token_of(&[2; 40]), None);
        assert!(JoinRequest::decode(&body[..body.len() - 1]).is_err());
        assert!(JoinRequest::decode(&[body.as_slice(), &[0]].concat()).is_err());
        let too_big = JoinRequest {
            token: LinkToken([5; TOKEN_LEN]),
            key_package: vec![0; MAX_KEY_PACKAGE_LEN + 1],
        };
        assert!(too_big.encode().is_err());
        let empty = JoinRequest {
            token: LinkToken([5; TOKEN_LEN]),
            key_package: Vec::new(),
        };
        assert!(JoinRequest::decode(&empty.encode().unwrap()).is_err());
    }

    #[test]
    fn a_join_answer_reads_back_and_refuses_unknown_answers() {
        let token = LinkToken([4; TOKEN_LEN]);
        for answer in [
            JoinAnswer::Waiting,
            JoinAnswer::Refused,
            JoinAnswer::Declined,
        ] {
            assert_eq!(
                JoinAnswer::decode(&answer.encode(&token)).unwrap(),
                (token, answer)
            );
        }
        let mut body = JoinAnswer::Waiting.encode(&token);
        *body.last_mut().unwrap() = 9;
        assert!(JoinAnswer::decode(&body).is_err());
    }

    #[test]
    fn a_token_prints_only_its_short_form() {
        let token = LinkToken([0xab; TOKEN_LEN]);
        assert_eq!(token.short(), "abababab");
        assert_eq!(format!("{token:?}"), "LinkToken(abababab…)");
    }
}
