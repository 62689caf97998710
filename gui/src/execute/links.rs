//! The group link actions (docs/protocol.md §18.11).

use tern_protocol::group_link::GroupLink;

use super::Executor;
use crate::action::LinkAction;

impl Executor<'_> {
    pub(super) fn link_action(&mut self, action: LinkAction) {
        let Some(node) = self.node() else {
            return;
        };
        match action {
            LinkAction::Make { group, approval } => {
                self.backend.make_link(&node, group, approval);
            }
            LinkAction::Revoke { group, id } => self.backend.revoke_link(&node, group, id),
            LinkAction::Join(link) => match GroupLink::decode(&link) {
                Ok(_) => self.backend.join_group(&node, link),
                Err(e) => self.model.dialog_error = Some(crate::words::group_link_error(&e)),
            },
            LinkAction::Decide {
                group,
                member,
                approve,
            } => self.backend.decide_join(&node, group, member, approve),
        }
    }
}
