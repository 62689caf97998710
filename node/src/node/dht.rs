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

    /// Whether a mailbox record lookup for `recipient` (whose card names no mailbox) is under way or should
    /// start now; starts it if so.
    pub(super) fn awaiting_lookup(&mut self, recipient: &IdentityKey) -> bool {
        let card_has_mailboxes = matches!(
            self.engine.store().contact(recipient),
            Ok(Some(c)) if tern_protocol::ContactCard::decode(&c.card)
                .is_ok_and(|card| !card.details().mailboxes.is_empty())
        );
        if card_has_mailboxes || self.swarm.behaviour().kad.as_ref().is_none() {
            return false;
        }
        match self.lookups.get(recipient) {
            Some(Lookup::Pending { .. }) => true,
            Some(Lookup::Found(_)) => false,
            Some(Lookup::Missing { at }) if at.elapsed() < LOOKUP_RETRY => false,
            _ => {
                if self.lookups.len() >= MAX_LOOKUPS {
                    self.lookups
                        .retain(|_, l| matches!(l, Lookup::Pending { .. }));
                }
                let key = crate::net::dht::mailbox_record_key(&recipient.mailbox_id());
                let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else {
                    return false;
                };
                let query = kad.get_record(key);
                self.lookup_queries.insert(query, *recipient);
                self.lookups
                    .insert(*recipient, Lookup::Pending { best: None });
                true
            }
        }
    }

    pub(super) fn lookup_progress(
        &mut self,
        id: kad::QueryId,
        result: kad::GetRecordResult,
        last: bool,
    ) {
        let Some(&recipient) = self.lookup_queries.get(&id) else {
            return;
        };
        if let Ok(kad::GetRecordOk::FoundRecord(found)) = &result
            && let Some(record) = crate::net::dht::mailbox_record(&found.record)
            && record.identity() == recipient
            && let Some(Lookup::Pending { best }) = self.lookups.get_mut(&recipient)
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
        self.lookup_queries.remove(&id);
        let best = match self.lookups.remove(&recipient) {
            Some(Lookup::Pending { best }) => best,
            _ => None,
        };
        let lookup = match best {
            Some(record) => {
                let peers = self.learn_servers(record.servers());
                debug!(servers = peers.len(), "found a mailbox record");
                Lookup::Found(peers)
            }
            None => Lookup::Missing {
                at: std::time::Instant::now(),
            },
        };
        self.lookups.insert(recipient, lookup);
        self.flush_outbox(None);
    }
}
