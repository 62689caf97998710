//! Incoming group messages: application messages, leave proposals, commits for the current epoch, and
//! commits for an earlier epoch decided by the ordering rule of §18.5 (rollback onto a later winner).

use openmls::prelude::{
    ContentType, MlsGroup, ProcessedMessageContent, Proposal, ProtocolMessage, StagedCommit,
};
use openmls_traits::OpenMlsProvider;
use tern_protocol::crypto::sha256;
use tern_protocol::{Content, IdentityKey, MessageId};
use zeroize::Zeroizing;

use super::check::{CommitSummary, check_commit, identity_of, map_process_error, parse_protocol};
use super::ordering::{self, CommitMeta, EpochRecord};
use super::provider::Provider;
use super::state::{Group, Processed};
use super::{GroupError, MAX_PARKED, MAX_SEEN_IDS};

impl Group {
    fn park(&mut self, bytes: &[u8]) {
        self.parked.push_back(bytes.to_vec());
        while self.parked.len() > MAX_PARKED {
            self.parked.pop_front();
        }
    }

    /// Forgets a parked message: one that came by gossip and was refused there is not kept to retry
    /// (§18.6; a member's message that fails on the topic of its own epoch is not going to pass later).
    pub fn unpark(&mut self, bytes: &[u8]) {
        self.parked.retain(|parked| parked.as_slice() != bytes);
    }

    /// Retries the messages that could not be processed before (after the epoch changed); returns what
    /// they gave. Those that still fail for a reason that may pass later stay parked.
    pub fn retry_parked(&mut self) -> Vec<Processed> {
        let mut out = Vec::new();
        let mut progress = true;
        while progress {
            progress = false;
            let parked: Vec<Vec<u8>> = self.parked.drain(..).collect();
            for bytes in parked {
                if let Ok(processed) = self.process(&bytes) {
                    progress = true;
                    out.push(processed);
                }
            }
        }
        out
    }

    /// Processes one incoming MLS message (commit, proposal or application message).
    pub fn process(&mut self, bytes: &[u8]) -> Result<Processed, GroupError> {
        let message = parse_protocol(bytes)?;
        if message.group_id() != self.mls.group_id() {
            return Err(GroupError::WrongGroup);
        }
        if !self.is_active() {
            return Err(GroupError::NotMember);
        }
        let epoch = message.epoch().as_u64();
        let current = self.epoch();
        if epoch > current {
            self.park(bytes);
            return Err(GroupError::FutureEpoch {
                got: epoch,
                current,
            });
        }
        if message.content_type() == ContentType::Commit {
            if epoch < current {
                return self.process_past_commit(bytes, message, epoch);
            }
            return self.process_commit(bytes, message);
        }
        let before = self.provider.snapshot();
        let result = self.process_other(message);
        if let Err(err) = &result {
            self.restore(&before)?;
            if *err == GroupError::Undecryptable && epoch == current {
                self.park(bytes);
            }
        }
        result
    }

    fn process_other(&mut self, message: ProtocolMessage) -> Result<Processed, GroupError> {
        let processed = self
            .mls
            .process_message(&self.provider, message)
            .map_err(map_process_error)?;
        let sender = identity_of(processed.credential())?;
        let sender_leaf = match processed.sender() {
            openmls::prelude::Sender::Member(index) => *index,
            _ => return Err(GroupError::Forbidden("sender outside the group")),
        };
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                let plain = Zeroizing::new(app.into_bytes());
                let content =
                    Content::decode(&plain).map_err(|_| GroupError::Malformed("group content"))?;
                let key = (sender, content.id);
                if self.seen_set.contains(&key) {
                    return Ok(Processed::Duplicate {
                        sender,
                        id: content.id,
                    });
                }
                self.remember(key);
                Ok(Processed::Message { sender, content })
            }
            ProcessedMessageContent::ProposalMessage(queued) => {
                let Proposal::Remove(remove) = queued.proposal() else {
                    return Err(GroupError::Forbidden("proposals other than leaving"));
                };
                if remove.removed() != sender_leaf {
                    return Err(GroupError::Forbidden("proposal to remove another member"));
                }
                self.mls
                    .store_pending_proposal(self.provider.storage(), *queued)
                    .map_err(GroupError::mls)?;
                Ok(Processed::Proposal { from: sender })
            }
            _ => Err(GroupError::Malformed("unexpected group message")),
        }
    }

    pub(crate) fn remember(&mut self, key: (IdentityKey, MessageId)) {
        if self.seen_set.insert(key) {
            self.seen.push_back(key);
        }
        while self.seen.len() > MAX_SEEN_IDS {
            if let Some(old) = self.seen.pop_front() {
                self.seen_set.remove(&old);
            }
        }
    }

    /// Stages a commit in `mls` (the live group or a copy) and checks it; leaves it staged, not merged.
    fn stage(
        mls: &mut MlsGroup,
        provider: &Provider,
        message: ProtocolMessage,
    ) -> Result<(StagedCommit, CommitSummary), GroupError> {
        let processed = mls
            .process_message(provider, message)
            .map_err(map_process_error)?;
        let committer = identity_of(processed.credential())?;
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            return Err(GroupError::Malformed("commit"));
        };
        let summary = check_commit(mls, &staged, committer)?;
        Ok((*staged, summary))
    }

    fn process_commit(
        &mut self,
        bytes: &[u8],
        message: ProtocolMessage,
    ) -> Result<Processed, GroupError> {
        let epoch = self.epoch();
        let before = self.provider.snapshot();
        let staged = Self::stage(&mut self.mls, &self.provider, message);
        let (staged, summary) = match staged {
            Ok(ok) => ok,
            Err(err) => {
                self.restore(&before)?;
                // A proposal it carries out may come after it (a leave the admin committed at once).
                if matches!(err, GroupError::Undecryptable | GroupError::MissingProposal) {
                    self.park(bytes);
                }
                return Err(err);
            }
        };
        if let Err(err) = self.mls.merge_staged_commit(&self.provider, staged) {
            self.restore(&before)?;
            return Err(GroupError::mls(err));
        }
        self.note_removals(&summary);
        ordering::push_record(
            &mut self.history,
            EpochRecord {
                epoch,
                snapshot: before,
                applied: CommitMeta {
                    hash: sha256(&[bytes]),
                    committer: summary.committer,
                    removed: summary.removed.clone(),
                    update: summary.update,
                },
                candidates: Vec::new(),
            },
        );
        self.prune_sent();
        Ok(Processed::Commit(summary))
    }

    fn process_past_commit(
        &mut self,
        bytes: &[u8],
        message: ProtocolMessage,
        epoch: u64,
    ) -> Result<Processed, GroupError> {
        let hash = sha256(&[bytes]);
        let Some(index) = self.history.iter().position(|r| r.epoch == epoch) else {
            let oldest = self.history.front().map_or(self.epoch(), |r| r.epoch);
            return Err(GroupError::StaleEpoch { got: epoch, oldest });
        };
        let record = &self.history[index];
        if record.applied.hash == hash || record.candidates.iter().any(|c| c.hash == hash) {
            return Err(GroupError::Replayed);
        }
        // Validate against a copy of the state at the start of that epoch; the live state is untouched.
        let provider = Provider::from_snapshot(&record.snapshot);
        let mut mls = MlsGroup::load(provider.storage(), self.mls.group_id())
            .map_err(GroupError::mls)?
            .ok_or(GroupError::Corrupt("group missing from snapshot"))?;
        let (staged, summary) = Self::stage(&mut mls, &provider, message)?;
        let meta = CommitMeta {
            hash,
            committer: summary.committer,
            removed: summary.removed.clone(),
            update: summary.update,
        };
        let mut set = vec![record.applied.clone()];
        set.extend(record.candidates.iter().cloned());
        set.push(meta.clone());
        let wins = ordering::winner(&set).is_some_and(|w| w.hash == hash);
        if !wins {
            let removed = ordering::committer_removed(&set, &meta);
            ordering::push_candidate(&mut self.history[index], meta);
            return if removed {
                Err(GroupError::CommitterRemoved)
            } else {
                Ok(Processed::LostRace)
            };
        }
        // Roll back onto the winner.
        mls.merge_staged_commit(&provider, staged)
            .map_err(GroupError::mls)?;
        let dropped: Vec<EpochRecord> = self.history.drain(index..).collect();
        let own_commit_lost = dropped.iter().any(|r| r.applied.committer == self.me);
        // A dropped update of this member's leaves its path as it was: it wants one again (§18.3).
        let own_update_lost = dropped
            .iter()
            .any(|r| r.applied.committer == self.me && r.applied.update);
        let mut first = dropped
            .into_iter()
            .next()
            .ok_or(GroupError::Corrupt("rollback record"))?;
        let previous = std::mem::replace(&mut first.applied, meta);
        ordering::push_candidate(&mut first, previous);
        self.history.push_back(first);
        self.provider = provider;
        self.mls = mls;
        self.refill |= own_update_lost;
        self.note_removals(&summary);
        // Own messages sent after `epoch` were encrypted on the dropped branch: send them again.
        let mut resend = Vec::new();
        if self.is_active() {
            let lost: Vec<Zeroizing<Vec<u8>>> = self
                .sent
                .iter()
                .filter(|(sent_epoch, _)| *sent_epoch > epoch)
                .map(|(_, plain)| plain.clone())
                .collect();
            self.sent.retain(|(sent_epoch, _)| *sent_epoch <= epoch);
            let now = self.epoch();
            for plain in lost {
                resend.push(self.encrypt(&plain)?);
                self.sent.push_back((now, plain));
            }
        }
        Ok(Processed::RolledBack {
            summary,
            resend,
            own_commit_lost,
        })
    }
}
