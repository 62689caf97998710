//! The group side of the model: the profile's groups and their members, how a conversation and a
//! sender are named, and what this profile may do in a group (by its role) and to each member.

use tern_protocol::{Fingerprint, IdentityKey};

use super::rows::{
    ContactState, ConversationId, ConversationKey, GroupMember, GroupRole, GroupSummary,
};
use super::{Confirm, Contact, Dialog, Model};

/// Characters of a fingerprint (as printed, in groups of five digits) shown for a group member who is
/// not a contact: the first two groups.
pub const SHORT_FINGERPRINT_CHARS: usize = 11;
/// Short fingerprints kept for senders who are not contacts (computing one costs thousands of hashes,
/// so they are computed once, when a message or member list arrives, never while drawing).
pub const MAX_SHORT_FINGERPRINTS: usize = 4096;

/// The start of `key`'s fingerprint, as a group names a member who is not a contact.
pub fn short_fingerprint(key: &IdentityKey) -> String {
    let printed = Fingerprint::of(key).to_string();
    let short: String = printed.chars().take(SHORT_FINGERPRINT_CHARS).collect();
    format!("{}…", short.trim_end())
}

/// What this profile may do to a whole group, in the order the group panel offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupEntry {
    AddMember,
    Rename,
    Leave,
}

/// What this profile may do to one member of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberEntry {
    PromoteToAdmin,
    Remove,
}

/// Whether `role` may add, remove, rename and promote.
fn is_admin(role: GroupRole) -> bool {
    matches!(role, GroupRole::Creator | GroupRole::Admin)
}

/// What a profile with `role` may do to the group: admins add, rename and leave; members only leave;
/// nothing once the profile is no longer a member (`active` false).
pub fn group_entries(role: GroupRole, active: bool) -> Vec<GroupEntry> {
    match (active, is_admin(role)) {
        (false, _) => Vec::new(),
        (true, true) => vec![GroupEntry::AddMember, GroupEntry::Rename, GroupEntry::Leave],
        (true, false) => vec![GroupEntry::Leave],
    }
}

/// What a profile with `my_role` may do to `member`: admins promote members and remove anyone but
/// themselves and the creator; nothing for non-admins or once the profile is no longer a member.
pub fn member_entries(
    my_role: GroupRole,
    active: bool,
    member: &GroupMember,
    me: &IdentityKey,
) -> Vec<MemberEntry> {
    if !active || !is_admin(my_role) || member.key == *me {
        return Vec::new();
    }
    let mut entries = Vec::new();
    if member.role == GroupRole::Member {
        entries.push(MemberEntry::PromoteToAdmin);
    }
    if member.role != GroupRole::Creator {
        entries.push(MemberEntry::Remove);
    }
    entries
}

/// How a role reads in the members list.
pub fn role_label(role: GroupRole) -> &'static str {
    match role {
        GroupRole::Creator => "creator",
        GroupRole::Admin => "admin",
        _ => "member",
    }
}

impl Model {
    /// The group `id`, if the profile has it.
    pub fn group(&self, id: &ConversationId) -> Option<&GroupSummary> {
        self.groups.iter().find(|g| g.id == *id)
    }

    /// What the list and the header call a conversation: the contact's name, or the group's.
    pub fn title_of(&self, conversation: &ConversationKey) -> String {
        match conversation {
            ConversationId::Direct(key) => self.name_of(key),
            other => self
                .group(other)
                .map(|g| g.name.clone())
                .or_else(|| {
                    self.conversations
                        .iter()
                        .find(|c| c.id == *other)
                        .map(|c| c.title.clone())
                })
                .unwrap_or_else(|| other.short()),
        }
    }

    /// The name a group message's sender goes by: "You", the contact's name, or for a member who is
    /// not a contact the start of their fingerprint (the same for every member who sees them).
    pub fn sender_label(&self, key: &IdentityKey) -> String {
        if self.me.as_ref().is_some_and(|me| me.key == *key) {
            return "You".to_owned();
        }
        match self.contact(key) {
            Some(c) => c.name().to_owned(),
            None => self
                .short_fingerprints
                .get(key)
                .cloned()
                .unwrap_or_else(|| self.name_of(key)),
        }
    }

    /// Computes the short fingerprints of `senders` who are not contacts (up to
    /// [`MAX_SHORT_FINGERPRINTS`] in all).
    pub fn remember_senders<'a>(&mut self, senders: impl IntoIterator<Item = &'a IdentityKey>) {
        for key in senders {
            if self.short_fingerprints.len() >= MAX_SHORT_FINGERPRINTS {
                return;
            }
            if self.contact(key).is_none() && !self.short_fingerprints.contains_key(key) {
                self.short_fingerprints.insert(*key, short_fingerprint(key));
            }
        }
    }

    /// A group was joined or changed: its summary replaces the held one, and the open group's
    /// members are read again.
    pub fn group_changed(&mut self, group: GroupSummary) {
        let id = group.id;
        match self.groups.iter_mut().find(|g| g.id == id) {
            Some(held) => *held = group,
            None => self.groups.push(group),
        }
        self.groups.sort_by_key(|g| g.name.to_lowercase());
        if self.open.as_ref().is_some_and(|o| o.conversation == id) {
            self.members_stale = true;
        }
        // A confirmation about the group that no longer applies goes away.
        if self.group(&id).is_some_and(|g| !g.active) {
            if matches!(self.confirm, Some(Confirm::LeaveGroup(g) | Confirm::RemoveMember { group: g, .. }) if g == id)
            {
                self.confirm = None;
            }
            if self.dialog == Some(Dialog::GroupInfo) && self.open_group() == Some(id) {
                self.dialog_error = None;
            }
        }
    }

    /// A change asked from the group panel was made: the panel's error goes, the members are read again.
    pub fn group_changed_here(&mut self, group: GroupSummary) {
        self.group_changed(group);
        self.dialog_error = None;
        self.members_stale = self.open_group().is_some();
    }

    /// A group's members were read.
    pub fn members_loaded(&mut self, group: ConversationId, members: Vec<GroupMember>) {
        let keys: Vec<IdentityKey> = members.iter().map(|m| m.key).collect();
        self.remember_senders(&keys);
        self.members.insert(group, members);
    }

    /// Whether a group's members can be read: it is not known to have been left (the node then holds no
    /// member list for it).
    pub fn wants_members(&self, id: &ConversationId) -> bool {
        id.is_group() && self.group(id).is_none_or(|g| g.active)
    }

    /// The open conversation, if it is a group.
    pub fn open_group(&self) -> Option<ConversationId> {
        self.open
            .as_ref()
            .map(|o| o.conversation)
            .filter(ConversationId::is_group)
    }

    /// Accepted contacts whose name contains `filter` (ignoring case), by name, and not in `except`.
    pub fn pickable_contacts(&self, filter: &str, except: &[GroupMember]) -> Vec<&Contact> {
        let filter = filter.trim().to_lowercase();
        let mut picked: Vec<&Contact> = self
            .contacts
            .iter()
            .filter(|c| c.record.state == ContactState::Accepted)
            .filter(|c| except.iter().all(|m| m.key != c.key()))
            .filter(|c| filter.is_empty() || c.name().to_lowercase().contains(&filter))
            .collect();
        picked.sort_by_key(|c| c.name().to_lowercase());
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_rows::{contact, key};
    use super::*;

    fn member(key: IdentityKey, role: GroupRole) -> GroupMember {
        GroupMember {
            key,
            name: String::new(),
            role,
            contact: true,
        }
    }

    fn summary(id: u8, name: &str, active: bool) -> GroupSummary {
        GroupSummary {
            id: ConversationId::Group([id; 32]),
            name: name.into(),
            members: 2,
            role: GroupRole::Member,
            active,
            rejoining: false,
            epoch: 1,
        }
    }

    #[test]
    fn admins_may_add_rename_promote_and_remove_and_members_only_leave() {
        let (me, bob, carol, dan) = (key(1), key(2), key(3), key(4));
        assert_eq!(
            group_entries(GroupRole::Creator, true),
            vec![GroupEntry::AddMember, GroupEntry::Rename, GroupEntry::Leave]
        );
        assert_eq!(
            group_entries(GroupRole::Admin, true),
            group_entries(GroupRole::Creator, true)
        );
        assert_eq!(
            group_entries(GroupRole::Member, true),
            vec![GroupEntry::Leave]
        );
        assert!(
            group_entries(GroupRole::Creator, false).is_empty(),
            "no longer a member"
        );

        let plain = member(bob, GroupRole::Member);
        let admin = member(carol, GroupRole::Admin);
        let creator = member(dan, GroupRole::Creator);
        let myself = member(me, GroupRole::Admin);
        assert_eq!(
            member_entries(GroupRole::Admin, true, &plain, &me),
            vec![MemberEntry::PromoteToAdmin, MemberEntry::Remove]
        );
        assert_eq!(
            member_entries(GroupRole::Creator, true, &admin, &me),
            vec![MemberEntry::Remove]
        );
        assert!(member_entries(GroupRole::Admin, true, &creator, &me).is_empty());
        assert!(member_entries(GroupRole::Admin, true, &myself, &me).is_empty());
        assert!(member_entries(GroupRole::Member, true, &plain, &me).is_empty());
        assert!(member_entries(GroupRole::Creator, false, &plain, &me).is_empty());
    }

    #[test]
    fn senders_are_named_by_contact_name_else_a_short_fingerprint() {
        let mut m = Model::default();
        let (bob, stranger) = (key(2), key(3));
        m.upsert_contact(contact(bob, "Bob", ContactState::Accepted));
        m.remember_senders(&[bob, stranger, key(4)]);
        assert_eq!(m.sender_label(&bob), "Bob");
        assert!(
            !m.short_fingerprints.contains_key(&bob),
            "a contact needs none"
        );
        let label = m.sender_label(&stranger);
        let digits = Fingerprint::of(&stranger).to_string();
        assert!(label.ends_with('…'), "{label}");
        assert!(
            digits.starts_with(label.trim_end_matches('…')),
            "{label} / {digits}"
        );
        assert_eq!(label.chars().count(), SHORT_FINGERPRINT_CHARS + 1);
        assert_ne!(
            m.sender_label(&key(4)),
            label,
            "another member reads differently"
        );
    }

    #[test]
    fn groups_are_listed_titled_and_updated_and_leaving_one_drops_its_confirmation() {
        let mut m = Model::default();
        let bob = key(2);
        m.upsert_contact(contact(bob, "Bob", ContactState::Accepted));
        m.on_event(crate::model::Event::GroupJoined {
            group: summary(7, "Climbing", true),
            added_by: bob,
            added_by_name: "Bob".into(),
        });
        let g = ConversationId::Group([7; 32]);
        assert_eq!(m.title_of(&g), "Climbing");
        assert!(
            m.list_rows().iter().any(|r| r.key == g),
            "listed before any message"
        );
        assert_eq!(m.list_rows_matching("climb").len(), 1);
        assert!(
            m.notices
                .last()
                .unwrap()
                .text
                .contains("Bob added you to Climbing")
        );
        m.open_conversation(g);
        m.confirm = Some(Confirm::LeaveGroup(g));
        m.on_event(crate::model::Event::GroupUpdated {
            group: summary(7, "Bouldering", false),
        });
        assert_eq!(m.title_of(&g), "Bouldering");
        // A group message while unfocused: the notification names the sender and the group, no text.
        m.focused = false;
        m.on_event(crate::model::Event::MessageReceived {
            message: crate::model::MessageRow {
                conversation: g,
                ..super::super::test_rows::message(bob, 9, 50, false)
            },
            sender_name: "Bob".into(),
        });
        assert_eq!(m.pending_notifications, vec!["Bob in Bouldering"]);
        assert!(!m.group(&g).unwrap().active);
        assert!(m.members_stale, "the open group's members are read again");
        assert!(m.confirm.is_none());
        assert_eq!(m.groups.len(), 1);
    }

    #[test]
    fn contacts_to_pick_are_accepted_not_members_and_filtered() {
        let mut m = Model::default();
        let (bob, carol, mallory, zed) = (key(2), key(3), key(4), key(5));
        m.upsert_contact(contact(zed, "Zed", ContactState::Accepted));
        m.upsert_contact(contact(bob, "Bob", ContactState::Accepted));
        m.upsert_contact(contact(carol, "Carol", ContactState::Accepted));
        m.upsert_contact(contact(mallory, "Mallory", ContactState::Blocked));
        let names = |cs: Vec<&Contact>| cs.iter().map(|c| c.name().to_owned()).collect::<Vec<_>>();
        assert_eq!(
            names(m.pickable_contacts("", &[])),
            vec!["Bob", "Carol", "Zed"]
        );
        assert_eq!(names(m.pickable_contacts(" CA", &[])), vec!["Carol"]);
        let members = [member(bob, GroupRole::Creator)];
        assert_eq!(
            names(m.pickable_contacts("", &members)),
            vec!["Carol", "Zed"]
        );
    }
}
