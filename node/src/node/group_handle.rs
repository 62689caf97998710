//! The [`Node`] handle's group methods (docs/protocol.md §18). A group is a conversation
//! ([`ConversationId::Group`]): its messages are paged, searched, counted unread and marked read like a
//! 1:1 conversation's, and [`Node::send_text`] to it sends to the group like [`Node::group_send`].

use super::groups::GroupCommand;
use super::*;
use crate::api::{ConversationId, GroupMember, GroupSummary, Message};

impl Node {
    /// Creates a group named `name` with this profile as its creator, and invites `members` (accepted
    /// contacts): each is added when its node answers with a KeyPackage ([`api::Event::GroupUpdated`]).
    pub async fn group_create(
        &self,
        name: String,
        members: Vec<IdentityKey>,
    ) -> Result<GroupSummary, NodeError> {
        self.request(|reply| {
            Command::Group(GroupCommand::Create {
                name,
                members,
                reply,
            })
        })
        .await?
    }

    /// Invites an accepted contact (admins only); added when its KeyPackage arrives.
    pub async fn group_add(
        &self,
        group: ConversationId,
        member: IdentityKey,
    ) -> Result<(), NodeError> {
        self.request(|reply| {
            Command::Group(GroupCommand::Add {
                group,
                member,
                reply,
            })
        })
        .await?
    }

    /// Removes a member (admins only).
    pub async fn group_remove(
        &self,
        group: ConversationId,
        member: IdentityKey,
    ) -> Result<GroupSummary, NodeError> {
        self.request(|reply| {
            Command::Group(GroupCommand::Remove {
                group,
                member,
                reply,
            })
        })
        .await?
    }

    /// Asks to leave: an admin's node carries it out (the group turns inactive here when it does).
    pub async fn group_leave(&self, group: ConversationId) -> Result<GroupSummary, NodeError> {
        self.request(|reply| Command::Group(GroupCommand::Leave { group, reply }))
            .await?
    }

    /// Renames the group (admins only).
    pub async fn group_rename(
        &self,
        group: ConversationId,
        name: String,
    ) -> Result<GroupSummary, NodeError> {
        self.request(|reply| Command::Group(GroupCommand::Rename { group, name, reply }))
            .await?
    }

    /// Makes a member an admin (admins only).
    pub async fn group_promote(
        &self,
        group: ConversationId,
        member: IdentityKey,
    ) -> Result<GroupSummary, NodeError> {
        self.request(|reply| {
            Command::Group(GroupCommand::Promote {
                group,
                member,
                reply,
            })
        })
        .await?
    }

    /// Sends a text to the group; stored (status `sent`) when this returns.
    pub async fn group_send(
        &self,
        group: ConversationId,
        text: String,
    ) -> Result<Message, NodeError> {
        self.send_text(group, text).await
    }

    /// Every group of this profile (including those it left or was removed from), by name.
    pub async fn groups(&self) -> Result<Vec<GroupSummary>, NodeError> {
        self.request(|reply| Command::Group(GroupCommand::List { reply }))
            .await
    }

    /// A group's members with their roles, in leaf order.
    pub async fn group_members(
        &self,
        group: ConversationId,
    ) -> Result<Vec<GroupMember>, NodeError> {
        self.request(|reply| Command::Group(GroupCommand::Members { group, reply }))
            .await?
    }

    /// How the group's messages travel from here: its gossip topic's peers and mesh, and this node's group
    /// traffic counters (gossip published, accepted, refused, dropped; 1:1 transfer parts queued).
    pub async fn group_gossip(
        &self,
        group: ConversationId,
    ) -> Result<super::GroupGossip, NodeError> {
        self.request(|reply| Command::Group(GroupCommand::Gossip { group, reply }))
            .await?
    }

    /// A group by name (case-insensitive) or by its short id ([`ConversationId::short`]).
    pub async fn find_group(&self, name_or_id: &str) -> Result<GroupSummary, NodeError> {
        let groups = self.groups().await?;
        let wanted = name_or_id.to_lowercase();
        groups
            .into_iter()
            .find(|g| g.name.to_lowercase() == wanted || g.id.short() == name_or_id)
            .ok_or_else(|| NodeError::UnknownGroup(name_or_id.to_owned()))
    }
}
