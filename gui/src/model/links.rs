//! Group links in the model (docs/protocol.md §18.11): the links this profile made for each group, as
//! last read from the node, the join requests waiting for an admin here, and what a joiner is told.

use std::collections::HashMap;

use super::{ConversationId, GroupLinkInfo, JoinAnswer, JoinRequestInfo, Model};

/// What the model keeps of group links.
#[derive(Default)]
pub struct Links {
    /// The live links of each group, as last read or made here.
    pub by_group: HashMap<ConversationId, Vec<GroupLinkInfo>>,
    /// Join requests waiting for approval, oldest first.
    pub requests: Vec<JoinRequestInfo>,
    /// Counts the changes made here since start: a read from the node that began before the last change
    /// is stale and dropped ([`Model::links_loaded`]).
    pub generation: u64,
}

/// What a joiner is told of the admin's answer, in plain words.
pub fn answer_words(admin: &str, answer: JoinAnswer) -> String {
    match answer {
        JoinAnswer::Waiting => {
            format!("Asked to join: {admin} approves or declines your request")
        }
        JoinAnswer::Refused => format!(
            "{admin}'s app did not let you in: the link was revoked, or no longer leads to a group"
        ),
        JoinAnswer::Declined => format!("{admin} declined your request to join"),
    }
}

impl Model {
    /// A group's links and the requests waiting, as read from the node by a read that began at
    /// `generation`: dropped if something changed here since (a link made while the read ran).
    pub fn links_loaded(
        &mut self,
        generation: u64,
        group: ConversationId,
        links: Vec<GroupLinkInfo>,
        requests: Vec<JoinRequestInfo>,
    ) {
        if generation != self.links.generation {
            return;
        }
        self.links.by_group.insert(group, links);
        self.links.requests = requests;
    }

    /// A link made here.
    pub fn link_made(&mut self, link: GroupLinkInfo) {
        self.links.generation += 1;
        self.links
            .by_group
            .entry(link.group)
            .or_default()
            .push(link);
    }

    /// A link revoked here.
    pub fn link_revoked(&mut self, group: ConversationId, id: &str) {
        self.links.generation += 1;
        if let Some(links) = self.links.by_group.get_mut(&group) {
            links.retain(|l| l.id != id);
        }
    }

    /// The live links of `group`.
    pub fn links_of(&self, group: &ConversationId) -> &[GroupLinkInfo] {
        self.links.by_group.get(group).map_or(&[], Vec::as_slice)
    }

    /// The join requests waiting for `group`.
    pub fn join_requests_of(
        &self,
        group: ConversationId,
    ) -> impl Iterator<Item = &JoinRequestInfo> {
        self.links.requests.iter().filter(move |r| r.group == group)
    }

    /// Someone asked to join with a link that needs approval: kept (once per group and person) and said.
    pub fn join_requested(&mut self, request: JoinRequestInfo) {
        self.links.generation += 1;
        self.notice(format!(
            "{} asks to join {}: approve or decline in the group's panel",
            request.name, request.group_name
        ));
        self.links
            .requests
            .retain(|r| !(r.group == request.group && r.from == request.from));
        self.links.requests.push(request);
    }

    /// A join request approved or declined here.
    pub fn join_decided(&mut self, group: ConversationId, member: &tern_protocol::IdentityKey) {
        self.links.generation += 1;
        self.links
            .requests
            .retain(|r| !(r.group == group && r.from == *member));
    }

    /// The admin answered this profile's join request without adding it (yet).
    pub fn join_answered(&mut self, admin: &str, answer: JoinAnswer) {
        let words = answer_words(admin, answer);
        match answer {
            JoinAnswer::Waiting => self.notice(words),
            _ => self.error(words),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_rows::key;

    const GROUP: ConversationId = ConversationId::Group([3; 32]);

    fn request(seed: u64, name: &str) -> JoinRequestInfo {
        JoinRequestInfo {
            group: GROUP,
            group_name: "Hikers".into(),
            from: key(seed),
            name: name.into(),
            at_ms: 1,
        }
    }

    #[test]
    fn a_request_is_kept_once_per_person_and_goes_when_decided() {
        let mut m = Model::default();
        m.join_requested(request(1, "Pat"));
        m.join_requested(request(1, "Pat"));
        m.join_requested(request(2, "Sam"));
        assert_eq!(m.join_requests_of(GROUP).count(), 2);
        assert_eq!(
            m.join_requests_of(ConversationId::Group([4; 32])).count(),
            0
        );
        m.join_decided(GROUP, &key(1));
        let left: Vec<&str> = m.join_requests_of(GROUP).map(|r| r.name.as_str()).collect();
        assert_eq!(left, ["Sam"]);
    }

    #[test]
    fn a_read_that_began_before_a_change_here_does_not_undo_it() {
        let mut m = Model::default();
        let began = m.links.generation;
        let link = GroupLinkInfo {
            id: "01020304".into(),
            group: GROUP,
            link: "tern-group:x".into(),
            approval: false,
            created_ms: 1,
        };
        m.link_made(link.clone());
        m.links_loaded(began, GROUP, Vec::new(), Vec::new());
        assert_eq!(
            m.links_of(&GROUP),
            std::slice::from_ref(&link),
            "the stale read is dropped"
        );
        let now = m.links.generation;
        m.links_loaded(now, GROUP, Vec::new(), Vec::new());
        assert!(
            m.links_of(&GROUP).is_empty(),
            "a read begun after it is taken"
        );
    }

    #[test]
    fn a_refusal_or_decline_is_said_as_an_error_and_waiting_as_a_notice() {
        assert!(answer_words("Alice", JoinAnswer::Refused).contains("revoked"));
        assert!(answer_words("Alice", JoinAnswer::Declined).contains("declined"));
        assert!(answer_words("Alice", JoinAnswer::Waiting).contains("approves"));
    }
}
