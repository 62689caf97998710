//! The destructive steps the app asks the person to confirm first (`crate::dialogs::confirm` draws them).

use tern_protocol::{IdentityKey, MessageId};

use super::ConversationId;

/// A destructive step waiting for the person to confirm it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Remove the contact and delete the conversation with them.
    Remove(IdentityKey),
    /// Block the contact: their messages are dropped.
    Block(IdentityKey),
    /// Remove a member from a group.
    RemoveMember {
        group: ConversationId,
        member: IdentityKey,
    },
    /// Leave a group.
    LeaveGroup(ConversationId),
    /// Delete every message of a conversation from this computer, keeping the contact or group.
    ClearHistory(ConversationId),
    /// Delete one message from this computer.
    DeleteMessage {
        conversation: ConversationId,
        id: MessageId,
    },
    /// Withdraw a file this profile sent: whoever has not fetched it cannot any more, and this
    /// computer's copy goes.
    WithdrawFile {
        conversation: ConversationId,
        id: MessageId,
    },
}
