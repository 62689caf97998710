//! The mailbox this node serves for others (`--mailbox`), the actor's side of [`MailboxHost`]: requests go
//! in as they arrive and are answered together after the wake-up's commit; fresh mail is pushed to its
//! connected owner; expired mail is purged.

use super::*;
use crate::mailbox::host::{MailboxHost, not_serving};

/// The host as the node's event loop holds it.
pub(super) type NodeMailboxHost = MailboxHost<ResponseChannel<MailboxResponse>, OutboundRequestId>;

impl EventLoop {
    /// A mailbox request from `peer`: taken into this wake-up's group (answered in [`Self::answer_mailbox`]),
    /// or refused at once when this node serves no mailbox.
    pub(super) fn take_mailbox_request(
        &mut self,
        peer: PeerId,
        request: MailboxRequest,
        channel: ResponseChannel<MailboxResponse>,
    ) {
        let Some(host) = self.mailbox_host.as_mut() else {
            let garbage = matches!(request, MailboxRequest::Invalid);
            let _ = self
                .swarm
                .behaviour_mut()
                .mailbox
                .send_response(channel, not_serving());
            if garbage {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            return;
        };
        if let Err((peer, request, channel)) = host.take(peer, request, channel) {
            // A full group: answer it, then start the next with this request.
            self.answer_mailbox();
            if let Some(host) = self.mailbox_host.as_mut() {
                let _ = host.take(peer, request, channel);
            }
        }
    }

    /// Answers the mailbox requests taken in this wake-up (their deposits share one commit) and pushes
    /// fresh mail to connected owners.
    pub(super) fn answer_mailbox(&mut self) {
        let Some(host) = self.mailbox_host.as_mut() else {
            return;
        };
        let answers = host.answer(now_ms() / 1000);
        for reply in answers.replies {
            let _ = self
                .swarm
                .behaviour_mut()
                .mailbox
                .send_response(reply.channel, reply.response);
            if reply.disconnect {
                debug!(peer = %short(&reply.peer), "garbage on the mailbox protocol: disconnecting");
                let _ = self.swarm.disconnect_peer_id(reply.peer);
            }
        }
        for push in answers.pushes {
            match EnvelopeRequest::new(push.envelope.clone()) {
                Ok(request) => {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .envelope
                        .send_request(&push.owner, request);
                    if let Some(host) = self.mailbox_host.as_mut() {
                        host.push_sent(id, &push);
                    }
                }
                Err(e) => debug!(error = %e, "cannot push mail"),
            }
        }
    }

    pub(super) fn purge_mailbox(&mut self) {
        if let Some(host) = self.mailbox_host.as_mut() {
            match host.purge(now_ms() / 1000) {
                Ok(0) => {}
                Ok(n) => debug!(expired = n, "purged expired mail"),
                Err(e) => warn!(error = %e, "cannot purge expired mail"),
            }
        }
    }
}
