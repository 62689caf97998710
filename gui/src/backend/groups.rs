//! The backend's group calls (docs/protocol.md §18): create, invite, remove, promote, rename, leave, and
//! reading a group's members. Failures asked from the group dialogs are said inside them, in plain words.

use tern_protocol::IdentityKey;

use super::Backend;
use crate::model::{ConversationId, Dialog, Model, Node};

impl Backend {
    /// Makes a group and invites `members`; it opens once made (they join as their apps answer).
    pub fn create_group(&self, node: &Node, name: String, members: Vec<IdentityKey>) {
        self.call_in(
            node,
            Dialog::NewGroup,
            move |node| async move { node.group_create(name, members).await },
            |m: &mut Model, group| {
                let id = group.id;
                m.notice(format!(
                    "Made the group {}: the people you invited join when their apps answer",
                    group.name
                ));
                m.group_changed(group);
                m.dialog = None;
                m.dialog_error = None;
                // The node wrote "You created the group": the list shows it.
                m.conversations_stale = true;
                m.open_next = Some(id);
            },
        );
    }

    /// Invites a contact into a group.
    pub fn add_member(&self, node: &Node, group: ConversationId, member: IdentityKey) {
        self.call_in(
            node,
            Dialog::GroupInfo,
            move |node| async move { node.group_add(group, member).await },
            move |m: &mut Model, ()| {
                let name = m.name_of(&member);
                m.dialog_error = None;
                m.notice(format!("Invited {name}: they join when their app answers"));
            },
        );
    }

    /// Removes a member from a group.
    pub fn remove_member(&self, node: &Node, group: ConversationId, member: IdentityKey) {
        self.call_in(
            node,
            Dialog::GroupInfo,
            move |node| async move { node.group_remove(group, member).await },
            Model::group_changed_here,
        );
    }

    /// Makes a member an admin.
    pub fn promote_member(&self, node: &Node, group: ConversationId, member: IdentityKey) {
        self.call_in(
            node,
            Dialog::GroupInfo,
            move |node| async move { node.group_promote(group, member).await },
            Model::group_changed_here,
        );
    }

    pub fn rename_group(&self, node: &Node, group: ConversationId, name: String) {
        self.call_in(
            node,
            Dialog::GroupInfo,
            move |node| async move { node.group_rename(group, name).await },
            Model::group_changed_here,
        );
    }

    /// Asks to leave a group (an admin's node carries it out).
    pub fn leave_group(&self, node: &Node, group: ConversationId) {
        self.call_in(
            node,
            Dialog::GroupInfo,
            move |node| async move { node.group_leave(group).await },
            |m: &mut Model, group| {
                m.notice(format!("Leaving {}", group.name));
                m.group_changed_here(group);
            },
        );
    }

    /// Reads a group's members with their roles.
    pub fn load_members(&self, node: &Node, group: ConversationId) {
        self.call(
            node,
            "cannot read the group's members",
            move |node| async move { node.group_members(group).await },
            move |m: &mut Model, members| m.members_loaded(group, members),
        );
    }
}
