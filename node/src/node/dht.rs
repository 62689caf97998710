//! The DHT: publishing this profile's mailbox record and looking up recipients' records.

use super::*;

impl EventLoop {
    /// Publishes this profile's mailbox record, once per start (and per republish interval).
    pub(super) fn publish_record(&mut self) {
        if self.published {
            return;
        }
        let Some(record) = self.record.as_ref() else {
            return;
        };
        let key = crate::net::dht::mailbox_record_key(&record.identity().mailbox_id());
        let value = record.encode().to_vec();
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
            && let Err(e) = kad.put_record(kad::Record::new(key, value), kad::Quorum::One)
        {
            debug!(error = %e, "cannot store the mailbox record locally");
        }
    }

    /// A DHT put finished: this node's address record, or its mailbox record.
    pub(super) fn put_finished(&mut self, id: kad::QueryId, stored: bool) {
        if !self.address_put_finished(id, stored) && stored && !self.published {
            debug!("mailbox record published");
            self.published = true;
            self.emit(Event::MailboxRecordPublished);
        }
    }

    /// A step of a DHT get: an address record lookup, or a mailbox record lookup.
    pub(super) fn get_progress(
        &mut self,
        id: kad::QueryId,
        result: kad::GetRecordResult,
        last: bool,
    ) {
        if !self.address_lookup_progress(id, &result, last) {
            self.lookup_progress(id, result, last);
        }
    }

    /// A step of a mailbox record lookup: the newest valid record so far is kept; when the query ends,
    /// the delivery machine hears what it found.
    pub(super) fn lookup_progress(
        &mut self,
        id: kad::QueryId,
        result: kad::GetRecordResult,
        last: bool,
    ) {
        let Some((recipient, best)) = self.lookup_queries.get_mut(&id) else {
            return;
        };
        let recipient = *recipient;
        if let Ok(kad::GetRecordOk::FoundRecord(found)) = &result
            && let Some(record) = crate::net::dht::mailbox_record(&found.record)
            && record.identity() == recipient
            && best
                .as_ref()
                .is_none_or(|b| b.revision() < record.revision())
        {
            *best = Some(record);
        }
        let finished = last
            || result.is_err()
            || matches!(
                result,
                Ok(kad::GetRecordOk::FinishedWithNoAdditionalRecord { .. })
            );
        if !finished {
            return;
        }
        let best = self.lookup_queries.remove(&id).and_then(|(_, best)| best);
        let servers = best.map(|record| {
            let peers = self.learn_servers(record.servers());
            debug!(servers = peers.len(), "found a mailbox record");
            peers
        });
        self.delivery
            .handle_lookup_finished(recipient, servers, std::time::Instant::now());
        self.run_delivery();
    }
}
