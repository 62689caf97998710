//! Joining a group by link (docs/protocol.md §18.11). An admin makes a link (a random token, the join mode
//! and this profile's card); whoever holds it sends a join request with a fresh KeyPackage inside a 1:1
//! session. In an open group the admin's node adds them at once; in one that needs approval the request
//! waits for an admin here to approve or decline it. The Welcome then travels like any other (§18.4).
//!
//! The links and the waiting requests are kept in a sealed setting, [`GROUP_LINKS_SETTING`]; the tokens of
//! the live links are handed to the engine, whose receive path lets a stranger's join request through only
//! when it names one.

use std::collections::{HashSet, VecDeque};

use tern_protocol::codec::{DecodeError, Reader, Writer};
use tern_protocol::group_link::{
    GroupLink, JoinAnswer, JoinMode, JoinRequest, KIND_JOIN_ANSWER, LinkToken, TOKEN_LEN,
};
use tern_protocol::group_wire::MAX_KEY_PACKAGE_LEN;

use super::groups::{GroupCommand, group_key};
use super::*;
use crate::api::{ConversationId, GroupLinkInfo, JoinRequestInfo, JoinStarted};
use crate::group::{GroupError, KeyPackageIn};

pub use crate::group::GROUP_LINKS_SETTING;
/// Live links a profile keeps at once, over all its groups.
pub const MAX_GROUP_LINKS: usize = 32;
/// Join requests waiting for approval; past it a new request is refused.
pub const MAX_JOIN_REQUESTS: usize = 64;
/// Join requests this node sent and remembers, to take their answers (the oldest forgotten).
pub const MAX_SENT_JOINS: usize = 32;
const STATE_VERSION: u8 = 1;

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// What the handle asks of group links.
pub(super) enum LinkCommand {
    Create {
        group: ConversationId,
        approval: bool,
        reply: Reply<GroupLinkInfo>,
    },
    List {
        group: ConversationId,
        reply: Reply<Vec<GroupLinkInfo>>,
    },
    Revoke {
        group: ConversationId,
        id: String,
        reply: Reply<()>,
    },
    Join {
        link: String,
        reply: Reply<JoinStarted>,
    },
    Requests {
        reply: oneshot::Sender<Vec<JoinRequestInfo>>,
    },
    Decide {
        group: ConversationId,
        member: IdentityKey,
        approve: bool,
        reply: Reply<()>,
    },
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct StoredLink {
    token: LinkToken,
    group: [u8; 32],
    mode: JoinMode,
    created_ms: u64,
}

#[derive(Clone, PartialEq, Eq)]
struct WaitingJoin {
    group: [u8; 32],
    token: LinkToken,
    from: IdentityKey,
    key_package: Vec<u8>,
    at_ms: u64,
}

/// The links of this profile, the requests waiting for approval, and the join requests sent.
#[derive(Default)]
pub(super) struct Links {
    links: Vec<StoredLink>,
    waiting: Vec<WaitingJoin>,
    /// `(token, admin)` of the join requests this node sent (memory only).
    sent: VecDeque<(LinkToken, IdentityKey)>,
}

impl Links {
    fn tokens(&self) -> HashSet<LinkToken> {
        self.links.iter().map(|l| l.token).collect()
    }

    /// Keeps `join` waiting for approval, in place of the same person's earlier request to the same
    /// group; `false`, keeping nothing, when [`MAX_JOIN_REQUESTS`] others wait already.
    fn admit(&mut self, join: WaitingJoin) -> bool {
        self.waiting
            .retain(|w| !(w.group == join.group && w.from == join.from));
        if self.waiting.len() >= MAX_JOIN_REQUESTS {
            return false;
        }
        self.waiting.push(join);
        true
    }

    /// Remembers a join request sent to `admin` with `token`, to take its answer; the oldest is
    /// forgotten past [`MAX_SENT_JOINS`].
    fn note_sent(&mut self, token: LinkToken, admin: IdentityKey) {
        self.sent.retain(|(t, _)| *t != token);
        self.sent.push_back((token, admin));
        while self.sent.len() > MAX_SENT_JOINS {
            self.sent.pop_front();
        }
    }

    /// `u8 version 1 || count8 links × (token[16] || group[32] || u8 mode || u64 created_ms) || count8
    /// waiting × (group[32] || token[16] || from[32] || vec16 key_package || u64 at_ms)`.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(STATE_VERSION)
            .u8(u8::try_from(self.links.len()).unwrap_or(u8::MAX));
        for link in self.links.iter().take(usize::from(u8::MAX)) {
            w.raw(&link.token.0)
                .raw(&link.group)
                .u8(link.mode.byte())
                .u64(link.created_ms);
        }
        w.u8(u8::try_from(self.waiting.len()).unwrap_or(u8::MAX));
        for join in self.waiting.iter().take(usize::from(u8::MAX)) {
            w.raw(&join.group)
                .raw(&join.token.0)
                .raw(join.from.as_bytes())
                .bytes_u16(&join.key_package)
                .u64(join.at_ms);
        }
        w.into_vec()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("group links version")?;
        if version != STATE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "group links",
                got: version,
                supported: STATE_VERSION,
            });
        }
        let count = r.count_u8("group links", MAX_GROUP_LINKS)?;
        let mut links = Vec::with_capacity(count);
        for _ in 0..count {
            links.push(StoredLink {
                token: LinkToken(r.array::<TOKEN_LEN>("link token")?),
                group: r.array("group")?,
                mode: JoinMode::from_byte(r.u8("join mode")?)?,
                created_ms: r.u64("created")?,
            });
        }
        let count = r.count_u8("join requests", MAX_JOIN_REQUESTS)?;
        let mut waiting = Vec::with_capacity(count);
        for _ in 0..count {
            waiting.push(WaitingJoin {
                group: r.array("group")?,
                token: LinkToken(r.array::<TOKEN_LEN>("link token")?),
                from: IdentityKey::from_bytes(r.array("requester")?)?,
                key_package: r.bytes_u16("key package", MAX_KEY_PACKAGE_LEN)?.to_vec(),
                at_ms: r.u64("requested")?,
            });
        }
        r.finish()?;
        Ok(Self {
            links,
            waiting,
            sent: VecDeque::new(),
        })
    }
}

impl EventLoop {
    /// At start: the stored links and waiting requests, and their tokens for the engine.
    pub(super) fn group_links_start(&mut self) {
        match self.engine.store().setting_get(GROUP_LINKS_SETTING) {
            Ok(Some(bytes)) => match Links::decode(&bytes) {
                Ok(links) => self.groups.links = links,
                Err(e) => warn!(error = %e, "the group links do not decode; none are live"),
            },
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot read the group links"),
        }
        self.engine.set_join_tokens(self.groups.links.tokens());
    }

    pub(super) fn handle_link_command(&mut self, command: LinkCommand) {
        match command {
            LinkCommand::Create {
                group,
                approval,
                reply,
            } => {
                let mode = if approval {
                    JoinMode::Approval
                } else {
                    JoinMode::Open
                };
                let _ = reply.send(group_key(&group).and_then(|key| self.link_create(key, mode)));
            }
            LinkCommand::List { group, reply } => {
                let _ = reply.send(group_key(&group).map(|key| self.links_of(key)));
            }
            LinkCommand::Revoke { group, id, reply } => {
                let _ = reply.send(group_key(&group).and_then(|key| self.link_revoke(key, &id)));
            }
            LinkCommand::Join { link, reply } => {
                let _ = reply.send(self.group_join(&link));
            }
            LinkCommand::Requests { reply } => {
                let requests = self
                    .groups
                    .links
                    .waiting
                    .iter()
                    .map(|w| self.request_info(w))
                    .collect();
                let _ = reply.send(requests);
            }
            LinkCommand::Decide {
                group,
                member,
                approve,
                reply,
            } => {
                let result =
                    group_key(&group).and_then(|key| self.join_decide(key, member, approve));
                let _ = reply.send(result);
            }
        }
    }

    /// Writes the links and waiting requests, and gives the engine the live tokens.
    fn links_save(&mut self) -> Result<(), NodeError> {
        let bytes = self.groups.links.encode();
        self.engine
            .store_mut()
            .setting_put(GROUP_LINKS_SETTING, &bytes)?;
        self.engine.set_join_tokens(self.groups.links.tokens());
        Ok(())
    }

    /// Whether this profile is an admin of the active group `key`.
    fn admin_of(&self, key: &[u8; 32]) -> bool {
        self.groups.by_conv.get(key).is_some_and(|group| {
            group.is_active() && group.info().is_ok_and(|i| i.is_admin(&group.me()))
        })
    }

    fn link_create(&mut self, key: [u8; 32], mode: JoinMode) -> Result<GroupLinkInfo, NodeError> {
        self.group_mut(&key)?;
        if !self.admin_of(&key) {
            return Err(GroupError::NotAdmin.into());
        }
        if self.groups.links.links.len() >= MAX_GROUP_LINKS {
            return Err(GroupError::LinksFull {
                max: MAX_GROUP_LINKS,
            }
            .into());
        }
        let mut token = [0u8; TOKEN_LEN];
        rand::fill(&mut token);
        let link = StoredLink {
            token: LinkToken(token),
            group: key,
            mode,
            created_ms: now_ms(),
        };
        self.groups.links.links.push(link.clone());
        if let Err(e) = self.links_save() {
            self.groups.links.links.pop();
            return Err(e);
        }
        Ok(self.link_info(&link))
    }

    fn link_info(&self, link: &StoredLink) -> GroupLinkInfo {
        GroupLinkInfo {
            id: link.token.short(),
            group: ConversationId::Group(link.group),
            link: GroupLink {
                mode: link.mode,
                token: link.token,
                admin: self.engine.card().clone(),
            }
            .encode(),
            approval: link.mode == JoinMode::Approval,
            created_ms: link.created_ms,
        }
    }

    fn links_of(&self, key: [u8; 32]) -> Vec<GroupLinkInfo> {
        self.groups
            .links
            .links
            .iter()
            .filter(|l| l.group == key)
            .map(|l| self.link_info(l))
            .collect()
    }

    /// Revokes a link of the group (by its short id, or the whole link): its requests still waiting are
    /// refused, and whoever holds it is refused from now on.
    fn link_revoke(&mut self, key: [u8; 32], id: &str) -> Result<(), NodeError> {
        let id = id.trim();
        let wanted = match GroupLink::decode(id) {
            Ok(link) => Some(link.token),
            Err(_) => None,
        };
        let position = self
            .groups
            .links
            .links
            .iter()
            .position(|l| {
                l.group == key && (Some(l.token) == wanted || l.token.short() == id.to_lowercase())
            })
            .ok_or_else(|| GroupError::UnknownLink(id.chars().take(16).collect()))?;
        let link = self.groups.links.links.remove(position);
        let (refused, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.groups.links.waiting)
            .into_iter()
            .partition(|w| w.token == link.token);
        self.groups.links.waiting = kept;
        if let Err(e) = self.links_save() {
            self.groups.links.links.insert(position, link);
            self.groups.links.waiting.extend(refused);
            return Err(e);
        }
        for join in refused {
            self.answer_join(&join.from, &join.token, JoinAnswer::Refused);
        }
        Ok(())
    }

    /// Sends a join request to the admin a link names, who becomes a contact of this profile.
    fn group_join(&mut self, text: &str) -> Result<JoinStarted, NodeError> {
        let link = GroupLink::decode(text).map_err(GroupError::from)?;
        let admin = link.admin.key();
        if admin == self.engine.key() {
            return Err(GroupError::OwnLink.into());
        }
        let invite = link.admin.invite_link();
        let contact = match self.engine.add_contact(&invite, None) {
            Ok((contact, _)) => contact,
            // Another contact has the card's name: this one is told apart by its peer id.
            Err(EngineError::NameTaken(_)) => {
                let tail = crate::api::peer_id_of(&admin)
                    .map(|peer| short(&peer))
                    .unwrap_or_default();
                let name = format!("{} ({tail})", link.admin.display_name());
                self.engine.add_contact(&invite, Some(&name))?.0
            }
            Err(e) => return Err(e.into()),
        };
        if contact.state == api::ContactState::Blocked {
            return Err(EngineError::Blocked.into());
        }
        let (bytes, pending) = crate::group::new_key_package(self.engine.identity())?;
        self.engine
            .store_mut()
            .put_key_package(pending.hash_ref(), &pending.encode())?;
        let body = JoinRequest {
            token: link.token,
            key_package: bytes,
        }
        .encode()
        .map_err(|_| GroupError::Malformed("join request"))?;
        self.engine.send_control(
            &admin,
            Body::Unknown {
                kind: tern_protocol::group_link::KIND_JOIN_REQUEST,
                data: body,
            },
            true,
        )?;
        self.flush_for(&admin);
        self.groups.links.note_sent(link.token, admin);
        Ok(JoinStarted {
            admin,
            admin_name: contact.local_name,
            approval: link.mode == JoinMode::Approval,
        })
    }

    /// A join request from `from` (a contact, possibly made one by this very request): refused unless it
    /// names a live link of a group this profile runs; then added at once, or kept for approval.
    pub(super) fn take_join_request(
        &mut self,
        from: IdentityKey,
        data: &[u8],
    ) -> Result<(), NodeError> {
        let request =
            JoinRequest::decode(data).map_err(|_| GroupError::Malformed("join request"))?;
        let Some(link) = self
            .groups
            .links
            .links
            .iter()
            .find(|l| l.token == request.token)
            .cloned()
        else {
            self.answer_join(&from, &request.token, JoinAnswer::Refused);
            return Err(GroupError::UnknownLink(request.token.short()).into());
        };
        if !self.admin_of(&link.group) {
            self.answer_join(&from, &request.token, JoinAnswer::Refused);
            return Err(GroupError::NotAdmin.into());
        }
        if self.group_mut(&link.group)?.members()?.contains(&from) {
            return Err(GroupError::AlreadyMember.into());
        }
        // Checked now, so a bad KeyPackage never waits for approval.
        let key_package = KeyPackageIn::parse(&request.key_package, Some(&from))?;
        match link.mode {
            JoinMode::Open => {
                let out = self.group_mut(&link.group)?.add(vec![key_package])?;
                self.after_own_commit(link.group, out)?;
                Ok(())
            }
            JoinMode::Approval => {
                let join = WaitingJoin {
                    group: link.group,
                    token: request.token,
                    from,
                    key_package: request.key_package,
                    at_ms: now_ms(),
                };
                let before = self.groups.links.waiting.clone();
                if !self.groups.links.admit(join.clone()) {
                    self.answer_join(&from, &request.token, JoinAnswer::Refused);
                    return Err(GroupError::Invalid("join request: too many wait already").into());
                }
                if let Err(e) = self.links_save() {
                    self.groups.links.waiting = before;
                    return Err(e);
                }
                self.answer_join(&from, &request.token, JoinAnswer::Waiting);
                let request = self.request_info(&join);
                self.emit_group(api::Event::GroupJoinRequested { request });
                Ok(())
            }
        }
    }

    /// An admin's answer to a join request this node sent.
    pub(super) fn take_join_answer(
        &mut self,
        from: IdentityKey,
        data: &[u8],
    ) -> Result<(), NodeError> {
        let (token, answer) =
            JoinAnswer::decode(data).map_err(|_| GroupError::Malformed("join answer"))?;
        let sent = &mut self.groups.links.sent;
        let Some(position) = sent.iter().position(|s| *s == (token, from)) else {
            return Err(GroupError::Invalid("join answer: no request of ours").into());
        };
        if answer != JoinAnswer::Waiting {
            sent.remove(position);
        }
        self.emit_group(api::Event::GroupJoinAnswered {
            admin: from,
            admin_name: self.name_of(&from),
            answer,
        });
        Ok(())
    }

    fn join_decide(
        &mut self,
        key: [u8; 32],
        member: IdentityKey,
        approve: bool,
    ) -> Result<(), NodeError> {
        let position = self
            .groups
            .links
            .waiting
            .iter()
            .position(|w| w.group == key && w.from == member)
            .ok_or(GroupError::NoJoinRequest)?;
        if approve {
            if !self.admin_of(&key) {
                return Err(GroupError::NotAdmin.into());
            }
            let join = self.groups.links.waiting[position].clone();
            let key_package = KeyPackageIn::parse(&join.key_package, Some(&member))?;
            let out = self.group_mut(&key)?.add(vec![key_package])?;
            self.after_own_commit(key, out)?;
            self.groups.links.waiting.remove(position);
            self.links_save()
        } else {
            let join = self.groups.links.waiting.remove(position);
            if let Err(e) = self.links_save() {
                self.groups.links.waiting.insert(position, join);
                return Err(e);
            }
            self.answer_join(&join.from, &join.token, JoinAnswer::Declined);
            Ok(())
        }
    }

    fn request_info(&self, join: &WaitingJoin) -> JoinRequestInfo {
        JoinRequestInfo {
            group: ConversationId::Group(join.group),
            group_name: self
                .groups
                .by_conv
                .get(&join.group)
                .and_then(|g| g.info().ok())
                .map(|i| i.name)
                .unwrap_or_default(),
            from: join.from,
            name: self.name_of(&join.from),
            at_ms: join.at_ms,
        }
    }

    /// Tells a join request's sender what became of it (a Welcome says it better when it was taken).
    fn answer_join(&mut self, to: &IdentityKey, token: &LinkToken, answer: JoinAnswer) {
        let body = Body::Unknown {
            kind: KIND_JOIN_ANSWER,
            data: answer.encode(token),
        };
        match self.engine.send_control(to, body, true) {
            Ok(_) => self.flush_for(to),
            Err(e) => debug!(error = %e, "cannot answer a join request"),
        }
    }
}

impl super::Node {
    /// Makes a link to the group (admins only): anyone holding it joins at once, or, with `approval`, asks
    /// and waits for an admin here to approve ([`api::Event::GroupJoinRequested`]).
    pub async fn group_link_create(
        &self,
        group: ConversationId,
        approval: bool,
    ) -> Result<GroupLinkInfo, NodeError> {
        self.link_request(|reply| LinkCommand::Create {
            group,
            approval,
            reply,
        })
        .await?
    }

    /// The group's live links made on this profile.
    pub async fn group_links(
        &self,
        group: ConversationId,
    ) -> Result<Vec<GroupLinkInfo>, NodeError> {
        self.link_request(|reply| LinkCommand::List { group, reply })
            .await?
    }

    /// Revokes a link by its id ([`GroupLinkInfo::id`]) or its text: nobody joins with it any more.
    pub async fn group_link_revoke(
        &self,
        group: ConversationId,
        id: String,
    ) -> Result<(), NodeError> {
        self.link_request(|reply| LinkCommand::Revoke { group, id, reply })
            .await?
    }

    /// Asks to join the group a link leads to. Its admin becomes a contact; the group arrives as
    /// [`api::Event::GroupJoined`] once the admin's node adds this profile, or
    /// [`api::Event::GroupJoinAnswered`] says why not yet.
    pub async fn group_join(&self, link: String) -> Result<JoinStarted, NodeError> {
        self.link_request(|reply| LinkCommand::Join { link, reply })
            .await?
    }

    /// The join requests waiting for an admin here to approve them.
    pub async fn group_join_requests(&self) -> Result<Vec<JoinRequestInfo>, NodeError> {
        self.link_request(|reply| LinkCommand::Requests { reply })
            .await
    }

    /// Approves (adds to the group) or declines a waiting join request.
    pub async fn group_join_decide(
        &self,
        group: ConversationId,
        member: IdentityKey,
        approve: bool,
    ) -> Result<(), NodeError> {
        self.link_request(|reply| LinkCommand::Decide {
            group,
            member,
            approve,
            reply,
        })
        .await?
    }

    async fn link_request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> LinkCommand,
    ) -> Result<T, NodeError> {
        self.request(|reply| Command::Group(GroupCommand::Link(command(reply))))
            .await
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    use super::*;

    fn key(seed: u64) -> IdentityKey {
        tern_protocol::Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed), 0).key()
    }

    fn links() -> Links {
        Links {
            links: vec![StoredLink {
                token: LinkToken([1; TOKEN_LEN]),
                group: [2; 32],
                mode: JoinMode::Approval,
                created_ms: 5,
            }],
            waiting: vec![WaitingJoin {
                group: [2; 32],
                token: LinkToken([1; TOKEN_LEN]),
                from: key(3),
                key_package: vec![7; 40],
                at_ms: 9,
            }],
            sent: VecDeque::new(),
        }
    }

    fn waiting(group: u8, from: u64) -> WaitingJoin {
        WaitingJoin {
            group: [group; 32],
            token: LinkToken([1; TOKEN_LEN]),
            from: key(from),
            key_package: vec![7; 40],
            at_ms: from,
        }
    }

    #[test]
    fn waiting_requests_are_bounded_and_a_second_request_replaces_the_first() {
        let mut state = Links::default();
        for from in 0..MAX_JOIN_REQUESTS as u64 {
            assert!(state.admit(waiting(2, from)));
        }
        assert!(!state.admit(waiting(2, 1000)), "one past the bound");
        assert_eq!(state.waiting.len(), MAX_JOIN_REQUESTS);
        assert!(!state.waiting.iter().any(|w| w.from == key(1000)));
        // The same person asking the same group again replaces their request, even when full.
        let mut again = waiting(2, 5);
        again.at_ms = 77;
        assert!(state.admit(again));
        assert_eq!(state.waiting.len(), MAX_JOIN_REQUESTS);
        let fives: Vec<u64> = state
            .waiting
            .iter()
            .filter(|w| w.from == key(5))
            .map(|w| w.at_ms)
            .collect();
        assert_eq!(fives, [77]);
        // The state with the most requests reads back.
        assert_eq!(
            Links::decode(&state.encode()).unwrap().waiting.len(),
            MAX_JOIN_REQUESTS
        );
    }

    #[test]
    fn sent_requests_forget_the_oldest_past_their_bound() {
        let mut state = Links::default();
        let admin = key(1);
        for n in 0..=MAX_SENT_JOINS as u8 {
            state.note_sent(LinkToken([n; TOKEN_LEN]), admin);
        }
        assert_eq!(state.sent.len(), MAX_SENT_JOINS);
        assert_ne!(
            state.sent[0].0,
            LinkToken([0; TOKEN_LEN]),
            "the oldest is forgotten"
        );
        // Asking again with a link already remembered moves it to the newest, once.
        state.note_sent(LinkToken([1; TOKEN_LEN]), admin);
        assert_eq!(state.sent.len(), MAX_SENT_JOINS);
        assert_eq!(state.sent.back().unwrap().0, LinkToken([1; TOKEN_LEN]));
        assert_eq!(
            state
                .sent
                .iter()
                .filter(|(t, _)| *t == LinkToken([1; TOKEN_LEN]))
                .count(),
            1
        );
    }

    #[test]
    fn the_links_state_reads_back_and_refuses_what_is_past_its_bounds() {
        let state = links();
        let back = Links::decode(&state.encode()).unwrap();
        assert_eq!(back.links, state.links);
        assert!(back.waiting == state.waiting);
        assert_eq!(back.tokens(), HashSet::from([LinkToken([1; TOKEN_LEN])]));
        let bytes = state.encode();
        assert!(Links::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(Links::decode(&other).is_err());
        let too_many = Links {
            links: vec![state.links[0].clone(); MAX_GROUP_LINKS + 1],
            ..Links::default()
        };
        assert!(Links::decode(&too_many.encode()).is_err());
    }
}
