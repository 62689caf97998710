//! "Group": the open group's name and members with their roles, and what this profile's role allows:
//! admins rename, invite contacts, make members admins and remove them; everyone may leave. Removing
//! and leaving ask first (`confirm`).

use egui::{Align, Layout, RichText};

use crate::action::Action;
use crate::model::{
    Confirm, GroupEntry, GroupMember, MemberEntry, Model, group_entries, member_entries,
};
use crate::widgets::{ERROR, entered, focus_once};

/// The dialog's fields.
#[derive(Default)]
pub struct Form {
    /// The new name (starts as the group's name).
    pub rename: String,
    /// The contacts that can be invited are listed.
    pub adding: bool,
    pub add_filter: String,
}

/// Draws the panel for the open group; `focus` puts the cursor in the name field (admins).
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
    if !group.active {
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
            if ui.button("Rename group").clicked() || entered(&field) {
                actions.push(Action::RenameGroup {
                    group: id,
                    name: form.rename.trim().to_owned(),
                });
            }
        });
    }
    ui.separator();
    let no_members = Vec::new();
    let members = model.members.get(&id).unwrap_or(&no_members);
    if group.active || !members.is_empty() {
        ui.label(RichText::new(crate::words::count(members.len(), "member", "members")).strong());
    }
    for member in members {
        actions.extend(member_row(
            ui,
            model,
            group.role,
            group.active,
            member,
            &me.key,
            id,
        ));
    }
    if entries.contains(&GroupEntry::AddMember) {
        ui.add_space(4.0);
        if form.adding {
            actions.extend(add_picker(ui, model, members, form, id));
        } else if ui.button("Add member…").clicked() {
            form.adding = true;
        }
    }
    if entries.contains(&GroupEntry::Leave) {
        ui.add_space(8.0);
        if ui
            .button(RichText::new("Leave group…").color(ERROR))
            .clicked()
        {
            actions.push(Action::Confirm(Confirm::LeaveGroup(id)));
        }
    }
    actions
}

/// One member: name, role, and the buttons this profile's role allows for them.
fn member_row(
    ui: &mut egui::Ui,
    model: &Model,
    my_role: crate::model::GroupRole,
    active: bool,
    member: &GroupMember,
    me: &tern_protocol::IdentityKey,
    group: crate::model::ConversationId,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let name = model.sender_label(&member.key);
    ui.horizontal(|ui| {
        ui.label(&name);
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
        if ui.button("Cancel adding").clicked() {
            form.adding = false;
        }
    });
    let pickable = model.pickable_contacts(&form.add_filter, members);
    if pickable.is_empty() {
        ui.label(RichText::new("No contact left to add.").weak());
    }
    for contact in pickable.iter().take(super::new_group::MAX_LISTED) {
        if ui.button(format!("Add {}", contact.name())).clicked() {
            actions.push(Action::AddMember {
                group,
                member: contact.key(),
            });
        }
    }
    actions
}
