//! The typed records the store keeps, and their explicit encodings.
//!
//! Every record starts with a version byte, every variable-length field has a named bound, booleans are one
//! byte `0` or `1`, and trailing bytes are rejected. Integers are big-endian (tern_protocol's codec).
//!
//! These encodings are the store's own: nothing outside `crate::store` sees a record. The store takes and
//! returns the node's nouns ([`crate::contact::ContactEntry`], [`crate::outbox::OutboxEntry`]) and the
//! api's ([`crate::api::Message`]).
//!
//! ```text
//! ContactRecord v1: u8 1 || key[32] || u16 len || card || u16 len || local_name (UTF-8) || u8 verified
//!                   || u8 state || u8 key_changed || u64 added_ms
//! MessageRecord v2: u8 2 || id[16] || conversation (u8 tag || id[32], `ConversationId::to_bytes`)
//!                   || u8 has_sender || sender[32] if has_sender (absent: written by this profile)
//!                   (has_sender 0: by this profile, 1: by `sender`; 2: a group's system line about `sender`'s
//!                   action, 3: a system line about this profile's action)
//!                   || u64 sent_at_ms || u64 received_at_ms || u8 status || u32 len || text (UTF-8)
//! MessageRecord v3: v2 || u32 timer_s || u64 expires_at_ms
//! MessageRecord v4: v3 || u64 delivered_at_ms || u64 read_at_ms (0: not known)
//! MessageRecord v1 (format 1, read only by the migration): u8 1 || id[16] || conversation[32]
//!                   || u8 outgoing || u64 sent_at_ms || u64 received_at_ms || u8 status || u32 len || text
//! OutboxRecord  v1: u8 1 || message_id[16] || recipient[32] || u32 len || envelope || u32 attempts
//!                   || u64 next_attempt_ms || u64 created_ms || u64 expires_at
//! ```

use std::fmt;

use tern_protocol::codec::{DecodeError, Reader, Writer};
use tern_protocol::{IdentityKey, MessageId};

use super::StoreError;
use crate::api::{
    CONVERSATION_ID_LEN, ContactState, ConversationId, Message, MessageStatus, RecipientStatus,
};
pub(crate) use crate::contact::ContactEntry as ContactRecord;
pub(crate) use crate::outbox::OutboxEntry as OutboxRecord;

/// Version byte of the contact and outbox record encodings this build writes.
pub const RECORD_VERSION: u8 = 1;
/// Version byte of the message record encoding this build writes (format 2: conversation and sender;
/// 3 added the timer, 4 the delivery and read times, 5 the per-member statuses of an outgoing group
/// message and the message a reply answers). A record with neither is written as version 4.
pub const MESSAGE_RECORD_VERSION: u8 = 5;
/// The version written for a record without per-member statuses or a quoted message.
const MESSAGE_RECORD_VERSION_PLAIN: u8 = 4;
/// Most per-member statuses a message record holds (a group's member bound, docs/protocol.md §18.7).
pub const MAX_RECIPIENTS: usize = 1024;
/// Longest local (user-chosen) name for a contact, in bytes of UTF-8.
pub const MAX_LOCAL_NAME_LEN: usize = 256;
/// Longest encoded contact card a contact record holds.
pub const MAX_CARD_LEN: usize = tern_protocol::card::MAX_CARD_LEN;
/// Longest message text, in bytes of UTF-8 (the protocol's own bound).
pub const MAX_TEXT_LEN: usize = tern_protocol::message::MAX_TEXT_LEN;
/// Longest envelope an outbox record holds (the protocol's own bound).
pub const MAX_ENVELOPE_LEN: usize = tern_protocol::envelope::MAX_ENVELOPE_LEN;

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), StoreError> {
    if len > max {
        Err(StoreError::TooLong { field, len, max })
    } else {
        Ok(())
    }
}

fn version(r: &mut Reader<'_>, what: &'static str) -> Result<(), DecodeError> {
    version_is(r, what, RECORD_VERSION)
}

fn version_is(r: &mut Reader<'_>, what: &'static str, supported: u8) -> Result<(), DecodeError> {
    let got = r.u8(what)?;
    if got != supported {
        return Err(DecodeError::UnsupportedVersion {
            what,
            got,
            supported,
        });
    }
    Ok(())
}

fn flag(r: &mut Reader<'_>, field: &'static str) -> Result<bool, DecodeError> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid {
            field,
            reason: "must be 0 or 1",
        }),
    }
}

fn utf8(bytes: &[u8], field: &'static str) -> Result<String, DecodeError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::Invalid {
            field,
            reason: "not UTF-8",
        })
}

thread_local! {
    /// The identity key this thread validated last. Checking that 32 bytes are an Ed25519 point costs a
    /// point decompression (about 10 µs, most of a full-history search: `tern-bench store`); rows come in
    /// key order, grouped by conversation, so one remembered key spares nearly all of them.
    static LAST_KEY: std::cell::RefCell<Option<IdentityKey>> = const { std::cell::RefCell::new(None) };
}

fn identity_key(r: &mut Reader<'_>, field: &'static str) -> Result<IdentityKey, DecodeError> {
    let bytes = r.array(field)?;
    if let Some(known) = LAST_KEY.with(|last| last.borrow().filter(|k| *k.as_bytes() == bytes)) {
        return Ok(known);
    }
    let key = IdentityKey::from_bytes(bytes)?;
    LAST_KEY.with(|last| *last.borrow_mut() = Some(key));
    Ok(key)
}

fn state_to_u8(state: ContactState) -> u8 {
    match state {
        ContactState::Accepted => 1,
        ContactState::Requested => 2,
        ContactState::Blocked => 3,
    }
}

fn state_from_u8(v: u8) -> Result<ContactState, DecodeError> {
    match v {
        1 => Ok(ContactState::Accepted),
        2 => Ok(ContactState::Requested),
        3 => Ok(ContactState::Blocked),
        _ => Err(DecodeError::Invalid {
            field: "contact state",
            reason: "unknown state",
        }),
    }
}

impl ContactRecord {
    /// Encodes the record, refusing fields over their bounds.
    pub(in crate::store) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        check_len("contact card", self.card.len(), MAX_CARD_LEN)?;
        check_len("local name", self.local_name.len(), MAX_LOCAL_NAME_LEN)?;
        let mut w = Writer::with_capacity(64 + self.card.len() + self.local_name.len());
        w.u8(RECORD_VERSION)
            .raw(self.key.as_bytes())
            .bytes_u16(&self.card)
            .bytes_u16(self.local_name.as_bytes())
            .u8(u8::from(self.verified))
            .u8(state_to_u8(self.state))
            .u8(u8::from(self.key_changed))
            .u64(self.added_ms);
        Ok(w.into_vec())
    }

    /// Decodes a record written by [`Self::encode`].
    pub(in crate::store) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        version(&mut r, "contact record")?;
        let key = identity_key(&mut r, "contact key")?;
        let card = r.bytes_u16("contact card", MAX_CARD_LEN)?.to_vec();
        let local_name = utf8(r.bytes_u16("local name", MAX_LOCAL_NAME_LEN)?, "local name")?;
        let verified = flag(&mut r, "verified")?;
        let state = state_from_u8(r.u8("contact state")?)?;
        let key_changed = flag(&mut r, "key changed")?;
        let added_ms = r.u64("added at")?;
        r.finish()?;
        Ok(Self {
            key,
            card,
            local_name,
            verified,
            state,
            key_changed,
            added_ms,
        })
    }
}

pub(super) fn status_to_u8(status: MessageStatus) -> u8 {
    match status {
        MessageStatus::Sending => 1,
        MessageStatus::Sent => 2,
        MessageStatus::Delivered => 3,
        MessageStatus::Read => 4,
        MessageStatus::Failed => 5,
        MessageStatus::Received => 6,
    }
}

fn status_from_u8(v: u8) -> Result<MessageStatus, DecodeError> {
    match v {
        1 => Ok(MessageStatus::Sending),
        2 => Ok(MessageStatus::Sent),
        3 => Ok(MessageStatus::Delivered),
        4 => Ok(MessageStatus::Read),
        5 => Ok(MessageStatus::Failed),
        6 => Ok(MessageStatus::Received),
        _ => Err(DecodeError::Invalid {
            field: "message status",
            reason: "unknown status",
        }),
    }
}

/// A message as the store keeps it.
#[derive(Clone, PartialEq, Eq)]
pub(in crate::store) struct MessageRecord {
    /// The message id (UUIDv7) from the sender.
    pub id: MessageId,
    /// The conversation (for a 1:1 one, the other party).
    pub conversation: ConversationId,
    /// Sent by this profile (or, for a system line, about this profile's action).
    pub outgoing: bool,
    /// Who wrote an incoming message (for a 1:1 conversation, always the contact).
    pub sender: Option<IdentityKey>,
    /// A system line of a group ("A added B"), not a member's text.
    pub system: bool,
    /// When the sender says it sent the message, unix milliseconds.
    pub sent_at_ms: u64,
    /// When this device stored it, unix milliseconds (for outgoing messages: when it was written).
    pub received_at_ms: u64,
    /// The text, at most [`MAX_TEXT_LEN`] bytes.
    pub text: String,
    /// Where the message stands.
    pub status: MessageStatus,
    /// The conversation's disappearing-message timer when the message was written or arrived, in
    /// seconds; 0: it stays.
    pub timer_s: u32,
    /// When it disappears, unix milliseconds; 0 while its clock has not started (an incoming message
    /// not read yet, or no timer).
    pub expires_at_ms: u64,
    /// When this device learned that an outgoing message was delivered, unix milliseconds; 0: not (yet)
    /// known (also for every record written before version 4).
    pub delivered_at_ms: u64,
    /// When this device learned that an outgoing message was read, or when the user read an incoming
    /// one, unix milliseconds; 0: not (yet) known.
    pub read_at_ms: u64,
    /// An outgoing group message's members it was sent to, each with where the message stands for it
    /// (docs/protocol.md §18.10); empty otherwise (and in every record before version 5).
    pub recipients: Vec<RecipientStatus>,
    /// The message of the conversation this one answers (a reply, docs/protocol.md §12.5).
    pub reply_to: Option<MessageId>,
}

impl fmt::Debug for MessageRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print message text.
        let Self {
            id,
            conversation,
            outgoing,
            sender,
            system,
            sent_at_ms,
            received_at_ms,
            text,
            status,
            timer_s,
            expires_at_ms,
            delivered_at_ms,
            read_at_ms,
            recipients,
            reply_to,
        } = self;
        f.debug_struct("MessageRecord")
            .field("id", id)
            .field("conversation", conversation)
            .field("outgoing", outgoing)
            .field("sender", &sender.map(|k| k.peer_id()))
            .field("system", system)
            .field("sent_at_ms", sent_at_ms)
            .field("received_at_ms", received_at_ms)
            .field("text_len", &text.len())
            .field("status", status)
            .field("timer_s", timer_s)
            .field("expires_at_ms", expires_at_ms)
            .field("delivered_at_ms", delivered_at_ms)
            .field("read_at_ms", read_at_ms)
            .field("recipients", &recipients.len())
            .field("reply_to", reply_to)
            .finish()
    }
}

impl MessageRecord {
    /// The time the message is ordered by in its conversation: when it was sent for outgoing messages,
    /// when it arrived for incoming ones (a sender's clock is not trusted for ordering).
    pub(in crate::store) fn sort_ms(&self) -> u64 {
        if self.outgoing {
            self.sent_at_ms
        } else {
            self.received_at_ms
        }
    }

    /// Moves the record to `status` at `now_ms`, noting when it was delivered and read (once each; a read
    /// outgoing message with no delivery time known gets the read time as both).
    pub(in crate::store) fn move_to(&mut self, status: MessageStatus, now_ms: u64) {
        self.status = status;
        match status {
            MessageStatus::Delivered if self.delivered_at_ms == 0 => self.delivered_at_ms = now_ms,
            MessageStatus::Read => {
                if self.read_at_ms == 0 {
                    self.read_at_ms = now_ms;
                }
                if self.outgoing && self.delivered_at_ms == 0 {
                    self.delivered_at_ms = self.read_at_ms;
                }
            }
            _ => {}
        }
    }

    /// Whether its disappearing-message timer ran out by `now_ms`.
    pub(in crate::store) fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms != 0 && self.expires_at_ms <= now_ms
    }

    /// Encodes the record (version 4: version 2 followed by `u32 timer_s || u64 expires_at_ms` (version
    /// 3) and `u64 delivered_at_ms || u64 read_at_ms`; version 5, only when there are per-member
    /// statuses or a quoted message, adds `count16 (member[32] || u8 status || u64 at_ms) || u8 has_reply
    /// [|| reply_to[16]]`), refusing text over [`MAX_TEXT_LEN`] and more than [`MAX_RECIPIENTS`] members.
    pub(in crate::store) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        check_len("text", self.text.len(), MAX_TEXT_LEN)?;
        check_len("recipients", self.recipients.len(), MAX_RECIPIENTS)?;
        let conversation = self.conversation.to_bytes();
        let mut w = Writer::with_capacity(120 + self.text.len() + 41 * self.recipients.len());
        let version = if self.recipients.is_empty() && self.reply_to.is_none() {
            MESSAGE_RECORD_VERSION_PLAIN
        } else {
            MESSAGE_RECORD_VERSION
        };
        w.u8(version).raw(&self.id.0).raw(&conversation);
        match (self.sender, self.system) {
            (None, false) => w.u8(0),
            (Some(sender), false) => w.u8(1).raw(sender.as_bytes()),
            (Some(sender), true) => w.u8(2).raw(sender.as_bytes()),
            (None, true) => w.u8(3),
        };
        w.u64(self.sent_at_ms)
            .u64(self.received_at_ms)
            .u8(status_to_u8(self.status))
            .bytes_u32(self.text.as_bytes())
            .u32(self.timer_s)
            .u64(self.expires_at_ms)
            .u64(self.delivered_at_ms)
            .u64(self.read_at_ms);
        if version == MESSAGE_RECORD_VERSION {
            w.u16(self.recipients.len() as u16);
            for r in &self.recipients {
                w.raw(r.member.as_bytes())
                    .u8(status_to_u8(r.status))
                    .u64(r.at_ms);
            }
            match self.reply_to {
                Some(to) => w.u8(1).raw(&to.0),
                None => w.u8(0),
            };
        }
        Ok(w.into_vec())
    }

    /// Decodes a record written by [`Self::encode`], or a version 2 (no timer) or 3 (no receipt times)
    /// one. In a 1:1
    /// conversation an incoming message comes from the contact; any other sender is reported as invalid.
    pub(in crate::store) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("message record version")?;
        if !(2..=MESSAGE_RECORD_VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion {
                what: "message record",
                got: version,
                supported: MESSAGE_RECORD_VERSION,
            });
        }
        let id = MessageId(r.array("message id")?);
        let conversation_bytes: [u8; CONVERSATION_ID_LEN] = r.array("conversation")?;
        let Some(conversation) = ConversationId::from_bytes(&conversation_bytes) else {
            return Err(DecodeError::Invalid {
                field: "conversation",
                reason: "unknown conversation kind",
            });
        };
        let (sender, system) = match r.u8("has sender")? {
            0 => (None, false),
            1 => (Some(identity_key(&mut r, "sender")?), false),
            2 => (Some(identity_key(&mut r, "sender")?), true),
            3 => (None, true),
            _ => {
                return Err(DecodeError::Invalid {
                    field: "has sender",
                    reason: "unknown value",
                });
            }
        };
        if let ConversationId::Direct(contact) = conversation
            && sender.is_some_and(|s| s != contact)
        {
            return Err(DecodeError::Invalid {
                field: "sender",
                reason: "not the contact of this 1:1 conversation",
            });
        }
        let outgoing = sender.is_none();
        Self::decode_rest(r, (id, conversation, outgoing, sender, system), version)
    }

    /// The fields every record version has after who wrote it: times, status and text; then the timer
    /// (from version 3), the receipt times (from version 4), the per-member statuses (version 5, of an
    /// outgoing group message only) and the quoted message (version 5), and nothing after them.
    fn decode_rest(
        mut r: Reader<'_>,
        (id, conversation, outgoing, sender, system): (
            MessageId,
            ConversationId,
            bool,
            Option<IdentityKey>,
            bool,
        ),
        version: u8,
    ) -> Result<Self, DecodeError> {
        let sent_at_ms = r.u64("sent at")?;
        let received_at_ms = r.u64("received at")?;
        let status = status_from_u8(r.u8("message status")?)?;
        let text = utf8(r.bytes_u32("text", MAX_TEXT_LEN)?, "text")?;
        let (timer_s, expires_at_ms) = if version >= 3 {
            (r.u32("timer")?, r.u64("expires at")?)
        } else {
            (0, 0)
        };
        let (delivered_at_ms, read_at_ms) = if version >= 4 {
            (r.u64("delivered at")?, r.u64("read at")?)
        } else {
            (0, 0)
        };
        let (recipients, reply_to) = if version >= 5 {
            let count = r.count_u16("recipients", MAX_RECIPIENTS)?;
            if count > 0 && (!outgoing || !matches!(conversation, ConversationId::Group(_))) {
                return Err(DecodeError::Invalid {
                    field: "recipients",
                    reason: "only an outgoing group message has per-member statuses",
                });
            }
            let recipients = (0..count)
                .map(|_| {
                    Ok(RecipientStatus {
                        member: identity_key(&mut r, "recipient")?,
                        status: status_from_u8(r.u8("recipient status")?)?,
                        at_ms: r.u64("recipient status at")?,
                    })
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
            let reply_to = match r.u8("has reply")? {
                0 => None,
                1 => Some(MessageId(r.array("reply to")?)),
                _ => {
                    return Err(DecodeError::Invalid {
                        field: "has reply",
                        reason: "unknown value",
                    });
                }
            };
            (recipients, reply_to)
        } else {
            (Vec::new(), None)
        };
        r.finish()?;
        Ok(Self {
            id,
            conversation,
            outgoing,
            sender,
            system,
            sent_at_ms,
            received_at_ms,
            text,
            status,
            timer_s,
            expires_at_ms,
            delivered_at_ms,
            read_at_ms,
            recipients,
            reply_to,
        })
    }

    /// Decodes a format-1 record (for the migration).
    pub(super) fn decode_v1(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        version_is(&mut r, "message record", 1)?;
        let id = MessageId(r.array("message id")?);
        let contact = identity_key(&mut r, "conversation")?;
        let outgoing = flag(&mut r, "outgoing")?;
        let sender = (!outgoing).then_some(contact);
        Self::decode_rest(r, (id, contact.into(), outgoing, sender, false), 1)
    }
}

impl MessageRecord {
    /// The row for an api message (no timer). A 1:1 message's sender is the conversation's contact (or
    /// this profile); anything else has no row in this format.
    pub(in crate::store) fn from_message(message: &Message) -> Result<Self, StoreError> {
        if let ConversationId::Direct(contact) = message.conversation
            && message.sender.is_some_and(|sender| sender != contact)
        {
            return Err(StoreError::Unsupported(
                "a 1:1 message is written by this profile or by the contact",
            ));
        }
        if !message.recipients.is_empty()
            && (message.sender.is_some()
                || message.system
                || !matches!(message.conversation, ConversationId::Group(_)))
        {
            return Err(StoreError::Unsupported(
                "only an outgoing group message has per-member statuses",
            ));
        }
        Ok(Self {
            id: message.id,
            conversation: message.conversation,
            outgoing: message.sender.is_none(),
            sender: message.sender,
            system: message.system,
            sent_at_ms: message.sent_at_ms,
            received_at_ms: message.received_at_ms,
            text: message.text.clone(),
            status: message.status,
            timer_s: 0,
            expires_at_ms: 0,
            delivered_at_ms: 0,
            read_at_ms: 0,
            recipients: message.recipients.clone(),
            reply_to: message.reply_to,
        })
    }

    /// The message as the api shows it.
    pub(in crate::store) fn into_message(self) -> Message {
        Message {
            id: self.id,
            conversation: self.conversation,
            sender: self.sender,
            system: self.system,
            sent_at_ms: self.sent_at_ms,
            received_at_ms: self.received_at_ms,
            status: self.status,
            text: self.text,
            recipients: self.recipients,
            reply_to: self.reply_to,
            attachment: None,
        }
    }
}

impl OutboxRecord {
    /// Encodes the record, refusing an envelope over [`MAX_ENVELOPE_LEN`].
    pub(in crate::store) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        check_len("envelope", self.envelope.len(), MAX_ENVELOPE_LEN)?;
        let mut w = Writer::with_capacity(80 + self.envelope.len());
        w.u8(RECORD_VERSION)
            .raw(&self.message_id.0)
            .raw(self.recipient.as_bytes())
            .bytes_u32(&self.envelope)
            .u32(self.attempts)
            .u64(self.next_attempt_ms)
            .u64(self.created_ms)
            .u64(self.expires_at);
        Ok(w.into_vec())
    }

    /// Decodes a record written by [`Self::encode`].
    pub(in crate::store) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        version(&mut r, "outbox record")?;
        let message_id = MessageId(r.array("message id")?);
        let recipient = identity_key(&mut r, "recipient")?;
        let envelope = r.bytes_u32("envelope", MAX_ENVELOPE_LEN)?.to_vec();
        let attempts = r.u32("attempts")?;
        let next_attempt_ms = r.u64("next attempt")?;
        let created_ms = r.u64("created at")?;
        let expires_at = r.u64("expires at")?;
        r.finish()?;
        Ok(Self {
            message_id,
            recipient,
            envelope,
            attempts,
            next_attempt_ms,
            created_ms,
            expires_at,
        })
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
pub(crate) mod tests;
