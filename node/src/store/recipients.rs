//! Per-member statuses of an outgoing group message (docs/protocol.md §18.10): kept in the message's own
//! record (version 5), so they go wherever the message goes (expiry, deletion, re-keying, backups).

use tern_protocol::{IdentityKey, MessageId};

use crate::api::{ConversationId, MessageStatus, RecipientStatus};

use super::StoreError;
use super::batch::Batch;

/// What a member's receipt changed on an outgoing group message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientUpdate {
    /// Every member's status, as now stored.
    pub recipients: Vec<RecipientStatus>,
    /// The message's own status, when the receipt moved it: delivered once every member has it, read
    /// once every member read it.
    pub status: Option<MessageStatus>,
}

/// How far a status has come, for the slowest member: sent, delivered, read.
fn rank(status: MessageStatus) -> u8 {
    match status {
        MessageStatus::Read => 2,
        MessageStatus::Delivered => 1,
        _ => 0,
    }
}

impl Batch<'_> {
    /// Moves `member`'s status on this profile's group message `id` to `status` (delivered or read) at
    /// `now_ms`, and the message's own status with it when every member got that far. `None` (and no
    /// change) if the message is not an outgoing one sent to `member`, or the member's status is there
    /// already or further on: a receipt never moves a status back.
    pub fn update_recipient_status(
        &mut self,
        conversation: ConversationId,
        id: &MessageId,
        member: &IdentityKey,
        status: MessageStatus,
        now_ms: u64,
    ) -> Result<Option<RecipientUpdate>, StoreError> {
        if !matches!(status, MessageStatus::Delivered | MessageStatus::Read) {
            return Ok(None);
        }
        let Some((key, mut message)) = self.record_at(&conversation, id)? else {
            return Ok(None);
        };
        let Some(entry) = message.recipients.iter_mut().find(|r| r.member == *member) else {
            return Ok(None);
        };
        if rank(status) <= rank(entry.status) {
            return Ok(None);
        }
        entry.status = status;
        entry.at_ms = now_ms;
        let slowest = message
            .recipients
            .iter()
            .map(|r| rank(r.status))
            .min()
            .unwrap_or(0);
        let all = match slowest {
            2 => Some(MessageStatus::Read),
            1 => Some(MessageStatus::Delivered),
            _ => None,
        };
        let moved = all.filter(|&to| message.status.can_become(to, true));
        if let Some(to) = moved {
            message.move_to(to, now_ms);
        }
        self.rewrite_record(&key, &message)?;
        Ok(Some(RecipientUpdate {
            recipients: message.recipients,
            status: moved,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Message;
    use crate::store::tests::{key, store};

    fn sent_to(members: &[IdentityKey]) -> Message {
        Message {
            id: MessageId([1; 16]),
            conversation: ConversationId::Group([9; 32]),
            sender: None,
            system: false,
            sent_at_ms: 10,
            received_at_ms: 10,
            text: "to the group".into(),
            status: MessageStatus::Sent,
            recipients: members
                .iter()
                .map(|&member| RecipientStatus {
                    member,
                    status: MessageStatus::Sent,
                    at_ms: 0,
                })
                .collect(),
            reply_to: None,
            attachment: None,
        }
    }

    #[test]
    fn receipts_move_each_member_forward_and_the_message_once_every_member_got_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(dir.path());
        let (bob, carol, mallory) = (key(2), key(3), key(4));
        let message = sent_to(&[bob, carol]);
        let (conv, id) = (message.conversation, message.id);
        store.insert_message(&message).unwrap();
        let mut update = |member: IdentityKey, status, at| {
            let got = store
                .transaction(|b| b.update_recipient_status(conv, &id, &member, status, at))
                .unwrap();
            let held = store.reader().message(&conv, &id).unwrap().unwrap();
            (got, held)
        };

        let first = update(bob, MessageStatus::Delivered, 100).0.unwrap();
        assert_eq!(first.status, None, "carol has not got it yet");
        assert_eq!(
            (first.recipients[0].status, first.recipients[0].at_ms),
            (MessageStatus::Delivered, 100)
        );
        assert_eq!(first.recipients[1].status, MessageStatus::Sent);
        assert_eq!(update(bob, MessageStatus::Delivered, 101).0, None, "a copy");
        assert_eq!(
            update(mallory, MessageStatus::Read, 102).0,
            None,
            "not sent to"
        );
        let read = update(bob, MessageStatus::Read, 103).0.unwrap();
        assert_eq!(read.status, None);
        assert_eq!(
            update(bob, MessageStatus::Delivered, 104).0,
            None,
            "never back"
        );
        // Carol's read receipt comes before her delivery receipt: now every member read it.
        let (all, stored) = update(carol, MessageStatus::Read, 105);
        let all = all.unwrap();
        assert_eq!(all.status, Some(MessageStatus::Read));
        assert_eq!(stored.status, MessageStatus::Read);
        assert_eq!(stored.recipients, all.recipients);
        assert_eq!(
            stored
                .recipients
                .iter()
                .map(|r| (r.status, r.at_ms))
                .collect::<Vec<_>>(),
            [(MessageStatus::Read, 103), (MessageStatus::Read, 105)]
        );
        assert_eq!(
            update(bob, MessageStatus::Read, 106).0,
            None,
            "already read by everyone"
        );
    }

    #[test]
    fn the_message_is_delivered_when_the_last_member_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(dir.path());
        let (bob, carol) = (key(2), key(3));
        let message = sent_to(&[bob, carol]);
        let (conv, id) = (message.conversation, message.id);
        store.insert_message(&message).unwrap();
        for (member, expected) in [(bob, None), (carol, Some(MessageStatus::Delivered))] {
            let got = store
                .transaction(|b| {
                    b.update_recipient_status(conv, &id, &member, MessageStatus::Delivered, 7)
                })
                .unwrap()
                .unwrap();
            assert_eq!(got.status, expected);
        }
        let stored = store.reader().message(&conv, &id).unwrap().unwrap();
        assert_eq!(stored.status, MessageStatus::Delivered);
        // A message this profile does not hold has no members' statuses to move.
        let unknown = MessageId([2; 16]);
        assert_eq!(
            store
                .transaction(|b| b.update_recipient_status(
                    conv,
                    &unknown,
                    &bob,
                    MessageStatus::Read,
                    8
                ))
                .unwrap(),
            None
        );
    }
}
