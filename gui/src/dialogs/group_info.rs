//! "Group": the open group's name, disappearing-message timer and members with their roles, and what this
//! profile's role allows: admins rename, set the timer, invite contacts, make members admins and remove
//! them; everyone may leave. Removing and leaving ask first (`confirm`).

use egui::{Align, Layout, RichText};

use super::new_group::{FILTER_FROM, MAX_LISTED};
use crate::action::Action;
use crate::model::{
    Confirm, GroupEntry, GroupMember, MemberEntry, Model, group_entries, member_entries,
};
use crate::theme;
use crate::widgets::{ERROR, entered, focus_once, primary_button, secondary_button};

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    /// The new name (starts as the group's name).
    pub rename: String,
    /// The contacts that can be invited are listed.
    pub adding: bool,
    pub add_filter: String,
    /// Narrows the members listed (offered past [`FILTER_FROM`] members).
    pub member_filter: String,
    /// A new link asks an admin to approve each person (`group_links`).
    pub link_approval: bool,
}

/// Draws the panel for the open group; `focus` puts the cursor in the name field (admins).
/// What the dialog says of a group restored from a backup that no admin has added this copy back to yet.
pub const REJOINING: &str = "This group came back with a backup. An admin's computer adds you back when \
     it is next online; until then nothing can be changed or sent here.";

pub fn show(ui: &mut egui::Ui, model: &Model, form: &mut Form, focus: &mut bool) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(id) = model.open_group() else {
        return actions;
    };
    let (Some(group), Some(me)) = (model.group(&id), model.me.as_ref()) else {
        ui.label("This group is not known here any more.");
        return actions;
    };
    let entries = group_entries(group.role, group.active);
    ui.label(RichText::new(&group.name).heading().strong());
    if group.rejoining {
        ui.label(REJOINING);
    } else if !group.active {
        ui.colored_label(ERROR, "You are no longer a member of this group.");
    }
    if entries.contains(&GroupEntry::Rename) {
        ui.horizontal(|ui| {
            let label = ui.label("Name");
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut form.rename)
                        .char_limit(tern_node::group::MAX_GROUP_NAME_LEN),
                )
                .labelled_by(label.id);
            focus_once(&field, focus);
            if ui.add(primary_button("Rename group")).clicked() || entered(&field) {
                actions.push(Action::RenameGroup {
                    group: id,
                    name: form.rename.trim().to_owned(),
                });
            }
        });
    }
    if group.active {
        // The timer is the group info's, like the name: admins change it, members see it.
        let admin = entries.contains(&GroupEntry::Rename);
        let timer = model.timer_of(&id);
        ui.horizontal(|ui| {
            let chosen = ui
                .add_enabled_ui(admin, |ui| crate::timer_menu::timer_menu(ui, id, timer))
                .inner;
            actions.extend(chosen);
            if !admin {
                ui.label(RichText::new("Only admins can change this").weak());
            }
        });
    }
    ui.separator();
    let no_members = Vec::new();
    let members = model.members.get(&id).unwrap_or(&no_members);
    if group.active || !members.is_empty() {
        ui.label(RichText::new(crate::words::count(members.len(), "member", "members")).strong());
    }
    if members.len() > FILTER_FROM {
        ui.horizontal(|ui| {
            let label = ui.label("Find a member");
            ui.add(egui::TextEdit::singleline(&mut form.member_filter).hint_text("Name"))
                .labelled_by(label.id);
        });
    }
    let filter = form.member_filter.trim().to_lowercase();
    let shown: Vec<(&GroupMember, String)> = members
        .iter()
        .map(|m| (m, model.sender_label(&m.key)))
        .filter(|(_, name)| filter.is_empty() || name.to_lowercase().contains(&filter))
        .collect();
    for (member, name) in shown.iter().take(MAX_LISTED) {
        actions.extend(member_row(
            ui,
            name,
            group.role,
            group.active,
            member,
            &me.key,
            id,
        ));
    }
    if shown.len() > MAX_LISTED {
        ui.label(
            RichText::new(format!(
                "and {} more: type in the filter to find them",
                shown.len() - MAX_LISTED
            ))
            .weak(),
        );
    }
    if entries.contains(&GroupEntry::AddMember) {
        ui.add_space(theme::ITEM_SPACING.y);
        if form.adding {
            actions.extend(add_picker(ui, model, members, form, id));
        } else if ui.add(secondary_button("Add member…")).clicked() {
            form.adding = true;
        }
        actions.extend(super::group_links::show(
            ui,
            model,
            &mut form.link_approval,
            id,
        ));
    }
    ui.add_space(theme::SECTION_GAP);
    actions.extend(super::contact::conversation_prefs(ui, model, id));
    ui.horizontal(|ui| {
        if ui.add(secondary_button("Clear history…")).clicked() {
            actions.push(Action::Confirm(Confirm::ClearHistory(id)));
        }
        if entries.contains(&GroupEntry::Leave)
            && ui
                .button(RichText::new("Leave group…").color(ERROR))
                .clicked()
        {
            actions.push(Action::Confirm(Confirm::LeaveGroup(id)));
        }
    });
    actions
}

/// One member: name, role, and the buttons this profile's role allows for them.
fn member_row(
    ui: &mut egui::Ui,
    name: &str,
    my_role: crate::model::GroupRole,
    active: bool,
    member: &GroupMember,
    me: &tern_protocol::IdentityKey,
    group: crate::model::ConversationId,
) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let who = crate::model::ConversationKey::Direct(member.key);
        crate::avatar::show(ui, &who, name, crate::avatar::SMALL_SIZE);
        ui.label(name);
        ui.label(RichText::new(crate::model::role_label(member.role)).weak());
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            for entry in member_entries(my_role, active, member, me)
                .into_iter()
                .rev()
            {
                match entry {
                    MemberEntry::Remove => {
                        if ui
                            .button(RichText::new(format!("Remove {name}…")).color(ERROR))
                            .clicked()
                        {
                            actions.push(Action::Confirm(Confirm::RemoveMember {
                                group,
                                member: member.key,
                            }));
                        }
                    }
                    MemberEntry::PromoteToAdmin => {
                        if ui.button(format!("Make {name} an admin")).clicked() {
                            actions.push(Action::PromoteMember {
                                group,
                                member: member.key,
                            });
                        }
                    }
                }
            }
        });
    });
    actions
}

/// Contacts not in the group, each with "Add"; a filter narrows them.
fn add_picker(
    ui: &mut egui::Ui,
    model: &Model,
    members: &[GroupMember],
    form: &mut Form,
    group: crate::model::ConversationId,
) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let label = ui.label("Find a contact");
        ui.add(egui::TextEdit::singleline(&mut form.add_filter).hint_text("Name"))
            .labelled_by(label.id);
        if ui.add(secondary_button("Cancel adding")).clicked() {
            form.adding = false;
        }
    });
    let pickable = model.pickable_contacts(&form.add_filter, members);
    if pickable.is_empty() {
        ui.label(RichText::new("No contact left to add.").weak());
    }
    for contact in pickable.iter().take(MAX_LISTED) {
        if ui.button(format!("Add {}", contact.name())).clicked() {
            actions.push(Action::AddMember {
                group,
                member: contact.key(),
            });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use egui::accesskit::Role;
    use egui_kittest::Harness;
    use egui_kittest::kittest::{NodeT, Queryable};
    use tern_protocol::IdentityKey;

    use super::*;
    use crate::model::test_rows::{contact, key};
    use crate::model::{ContactState, ConversationId, GroupRole, GroupSummary, Whoami};

    struct State {
        model: Model,
        form: Form,
        actions: Vec<Action>,
    }

    const GROUP: ConversationId = ConversationId::Group([7; 32]);

    /// A model with the group open, this profile in `role`, and `others` more members named "Friend NN"
    /// (the first of them the creator).
    fn harness(role: GroupRole, others: usize) -> Harness<'static, State> {
        let me = key(100);
        let mut model = Model {
            me: Some(Whoami {
                key: me,
                name: "Me".into(),
                fingerprint: tern_protocol::Fingerprint::of(&me),
                invite_link: String::new(),
                invite_link_1_0: String::new(),
            }),
            ..Model::default()
        };
        let mut members = vec![GroupMember {
            key: me,
            name: "you".into(),
            role,
            contact: false,
        }];
        for i in 0..others {
            let k: IdentityKey = key(i as u64 + 1);
            model.upsert_contact(contact(
                k,
                &format!("Friend {i:02}"),
                ContactState::Accepted,
            ));
            members.push(GroupMember {
                key: k,
                name: String::new(),
                role: if i == 0 {
                    GroupRole::Creator
                } else {
                    GroupRole::Member
                },
                contact: true,
            });
        }
        model.group_changed(GroupSummary {
            id: GROUP,
            name: "Climbing".into(),
            members: members.len(),
            role,
            active: true,
            rejoining: false,
            epoch: 1,
        });
        model.members_loaded(GROUP, members);
        model.open_conversation(GROUP);
        Harness::new_ui_state(
            |ui, s: &mut State| {
                let actions = show(ui, &s.model, &mut s.form, &mut false);
                s.actions.extend(actions);
            },
            State {
                model,
                form: Form::default(),
                actions: Vec::new(),
            },
        )
    }

    fn buttons(h: &Harness<'static, State>) -> Vec<String> {
        let labels = std::cell::RefCell::new(Vec::new());
        let _ = h
            .query_all_by(|n| {
                if n.role() == Role::Button
                    && let Some(label) = n.label()
                {
                    labels.borrow_mut().push(label);
                }
                false
            })
            .count();
        labels.into_inner()
    }

    #[test]
    fn a_member_sees_only_leave_and_an_admin_sees_what_admins_may_do() {
        let mut h = harness(GroupRole::Member, 2);
        h.step();
        // Clearing this computer's history is anyone's; of the group's actions, a member may only leave
        // (the timer shows, disabled).
        assert_eq!(
            buttons(&h),
            vec![
                "Disappearing messages: Off",
                "Clear history…",
                "Leave group…"
            ]
        );
        assert!(h.query_by_label("Name").is_none(), "no rename field");

        let mut h = harness(GroupRole::Admin, 2);
        h.step();
        let offered = buttons(&h);
        for wanted in [
            "Rename group",
            "Make Friend 01 an admin",
            "Remove Friend 01…",
            "Add member…",
            "Leave group…",
        ] {
            assert!(
                offered.iter().any(|b| b == wanted),
                "{wanted} in {offered:?}"
            );
        }
        assert!(
            !offered.iter().any(|b| b.contains("Friend 00")),
            "the creator cannot be removed or promoted: {offered:?}"
        );
        h.get_by_role_and_label(Role::Button, "Remove Friend 01…")
            .click();
        h.step();
        assert!(matches!(
            h.state().actions.as_slice(),
            [Action::Confirm(Confirm::RemoveMember { group: GROUP, member })] if *member == key(2)
        ));
    }

    #[test]
    fn a_restored_group_waiting_to_be_rejoined_says_so_and_offers_no_change() {
        let mut h = harness(GroupRole::Admin, 2);
        let mut waiting = h.state().model.group(&GROUP).unwrap().clone();
        waiting.active = false;
        waiting.rejoining = true;
        h.state_mut().model.group_changed(waiting);
        h.step();
        assert!(h.query_by_label_contains(REJOINING).is_some());
        assert!(
            h.query_by_label_contains("no longer a member").is_none(),
            "it is not said to be left"
        );
        for admin_only in ["Rename group", "Add member…", "Leave group…"] {
            assert!(
                !buttons(&h).iter().any(|b| b == admin_only),
                "{admin_only} is offered to a copy not back yet: {:?}",
                buttons(&h)
            );
        }
    }

    #[test]
    fn an_admin_may_set_the_timer_and_a_member_sees_it_disabled() {
        let menu = "Disappearing messages: Off";
        let mut h = harness(GroupRole::Member, 2);
        h.step();
        let shown = h.get_by_role_and_label(Role::Button, menu);
        assert!(
            shown.accesskit_node().is_disabled(),
            "read-only for a member"
        );
        assert!(h.query_by_label("Only admins can change this").is_some());
        shown.click();
        h.step();
        assert!(h.query_by_label("1 hour").is_none(), "no choices open");

        let mut h = harness(GroupRole::Admin, 2);
        h.step();
        let menu_button = h.get_by_role_and_label(Role::Button, menu);
        assert!(!menu_button.accesskit_node().is_disabled());
        assert!(h.query_by_label("Only admins can change this").is_none());
        menu_button.click();
        h.step();
        h.get_by_label("1 hour").click();
        h.step();
        assert!(matches!(
            h.state().actions.as_slice(),
            [Action::SetTimer {
                conversation: GROUP,
                seconds: 3600
            }]
        ));
    }

    #[test]
    fn many_members_get_a_filter_and_a_bounded_list() {
        let mut h = harness(GroupRole::Creator, 30);
        h.step();
        assert!(h.query_by_label("Find a member").is_some());
        assert!(
            h.query_by_label_contains("and 19 more").is_some(),
            "31 members, 12 shown"
        );
        h.state_mut().form.member_filter = "friend 2".into();
        h.step();
        let removable = buttons(&h)
            .into_iter()
            .filter(|b| b.starts_with("Remove "))
            .count();
        assert_eq!(removable, 10, "Friend 20 to 29");
    }

    #[test]
    fn an_admin_makes_copies_and_revokes_links_and_answers_requests_and_a_member_sees_none() {
        use crate::action::LinkAction;
        use crate::model::{GroupLinkInfo, JoinRequestInfo};

        let mut h = harness(GroupRole::Member, 2);
        h.step();
        assert!(h.query_by_label("Make an invite link").is_none());

        let mut h = harness(GroupRole::Admin, 2);
        h.step();
        h.get_by_label("Approve each person who asks to join")
            .click();
        h.step();
        h.get_by_role_and_label(Role::Button, "Make an invite link")
            .click();
        h.step();
        assert!(matches!(
            h.state().actions.as_slice(),
            [Action::Link(LinkAction::Make {
                group: GROUP,
                approval: true
            })]
        ));
        h.state_mut().actions.clear();
        let link = GroupLinkInfo {
            id: "0a1b2c3d".into(),
            group: GROUP,
            link: "tern-group:xyz".into(),
            approval: true,
            created_ms: 1,
        };
        let request = JoinRequestInfo {
            group: GROUP,
            group_name: "Climbing".into(),
            from: key(77),
            name: "Pat".into(),
            at_ms: 2,
        };
        h.state_mut()
            .model
            .links_loaded(0, GROUP, vec![link], vec![request]);
        h.step();
        assert!(
            h.query_by_label("Link 0a1b2c3d: you approve each person")
                .is_some()
        );
        h.get_by_role_and_label(Role::Button, "Revoke link 0a1b2c3d")
            .click();
        h.step();
        h.get_by_role_and_label(Role::Button, "Approve Pat").click();
        h.step();
        match h.state().actions.as_slice() {
            [
                Action::Link(LinkAction::Revoke { group: GROUP, id }),
                Action::Link(LinkAction::Decide {
                    group: GROUP,
                    member,
                    approve: true,
                }),
            ] => {
                assert_eq!(id, "0a1b2c3d");
                assert_eq!(*member, key(77));
            }
            other => panic!("unexpected {other:?}"),
        }
        h.get_by_role_and_label(Role::Button, "Copy link 0a1b2c3d")
            .click();
        h.step();
        assert_eq!(
            h.state().actions.last().map(|a| a.kind()),
            Some("notice"),
            "copying says so"
        );
    }
}
