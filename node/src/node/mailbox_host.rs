//! The mailbox this node serves for others (`--mailbox`): pushing fresh mail to connected owners, purging.

use super::*;

impl EventLoop {
    /// Hands freshly deposited mail straight to its owner when the owner is connected and has proved
    /// ownership here; the owner's ack deletes it from the mailbox.
    pub(super) fn push_to_owner(&mut self, envelope: &Envelope) {
        let Some(server) = self.mailbox_server.as_ref() else {
            return;
        };
        let owners: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| server.owned_by(p).contains(&envelope.mailbox))
            .copied()
            .collect();
        let Some(owner) = owners.first() else {
            return;
        };
        match EnvelopeRequest::from_envelope(envelope) {
            Ok(request) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .envelope
                    .send_request(owner, request);
                self.pushes.insert(id, (envelope.mailbox, envelope.id()));
            }
            Err(e) => debug!(error = %e, "cannot push mail"),
        }
    }

    pub(super) fn push_answered(
        &mut self,
        mailbox: MailboxId,
        id: EnvelopeId,
        ack: Option<EnvelopeAck>,
    ) {
        if matches!(ack, Some(EnvelopeAck::Accepted | EnvelopeAck::Duplicate))
            && let Some(server) = self.mailbox_server.as_mut()
            && let Err(e) = server.remove(&mailbox, &[id])
        {
            warn!(error = %e, "cannot delete pushed mail");
        }
    }

    pub(super) fn purge_mailbox(&mut self) {
        if let Some(server) = self.mailbox_server.as_mut() {
            match server.purge_expired(now_ms() / 1000) {
                Ok(0) => {}
                Ok(n) => debug!(expired = n, "purged expired mail"),
                Err(e) => warn!(error = %e, "cannot purge expired mail"),
            }
        }
    }
}
