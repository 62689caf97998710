//! The backend's group link calls (docs/protocol.md §18.11): make, list and revoke links, join with one,
//! and approve or decline join requests. Failures asked from a dialog are said inside it.

use tern_protocol::IdentityKey;

use super::Backend;
use crate::model::{ConversationId, Dialog, Model, Node};

impl Backend {
    /// Reads the group's links and the join requests waiting (admins; others have none), as of the
    /// model's `generation` of them.
    pub fn load_links(&self, node: &Node, group: ConversationId, generation: u64) {
        self.call(
            node,
            "cannot read the group's links",
            move |node| async move {
                let links = node.group_links(group).await?;
                let requests = node.group_join_requests().await?;
                Ok((links, requests))
            },
            move |m: &mut Model, (links, requests)| {
                m.links_loaded(generation, group, links, requests)
            },
        );
    }

    /// Makes a link to the group.
    pub fn make_link(&self, node: &Node, group: ConversationId, approval: bool) {
        self.call_in(
            node,
            Dialog::GroupInfo,
            move |node| async move { node.group_link_create(group, approval).await },
            |m: &mut Model, link| {
                m.dialog_error = None;
                m.link_made(link);
            },
        );
    }

    /// Revokes a link.
    pub fn revoke_link(&self, node: &Node, group: ConversationId, id: String) {
        let revoked = id.clone();
        self.call_in(
            node,
            Dialog::GroupInfo,
            move |node| async move { node.group_link_revoke(group, id).await },
            move |m: &mut Model, ()| {
                m.link_revoked(group, &revoked);
                m.notice("Link revoked: nobody can join with it any more");
            },
        );
    }

    /// Asks to join the group a link leads to; the admin becomes a contact.
    pub fn join_group(&self, node: &Node, link: String) {
        self.call_in(
            node,
            Dialog::AddContact,
            move |node| async move {
                let started = node.group_join(link).await?;
                let contacts = node.contacts().await?;
                Ok((started, contacts))
            },
            |m: &mut Model, (started, contacts)| {
                let admin = started.admin;
                if let Some(contact) = contacts.into_iter().find(|c| c.key == admin) {
                    m.upsert_contact(contact);
                }
                m.notice(if started.approval {
                    format!(
                        "Asked {} to let you in: the group opens once they approve",
                        started.admin_name
                    )
                } else {
                    format!(
                        "Joining through {}: the group opens when their app answers",
                        started.admin_name
                    )
                });
                m.dialog = None;
                m.dialog_error = None;
            },
        );
    }

    /// Approves or declines a waiting join request.
    pub fn decide_join(
        &self,
        node: &Node,
        group: ConversationId,
        member: IdentityKey,
        approve: bool,
    ) {
        self.call_in(
            node,
            Dialog::GroupInfo,
            move |node| async move { node.group_join_decide(group, member, approve).await },
            move |m: &mut Model, ()| {
                let name = m.name_of(&member);
                m.join_decided(group, &member);
                m.notice(if approve {
                    format!("Approved {name}: they join when their app answers")
                } else {
                    format!("Declined {name}'s request")
                });
            },
        );
    }
}
