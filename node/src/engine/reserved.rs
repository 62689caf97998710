//! Sending under reserved message keys (docs/protocol.md §8.3): when every text of a group goes to an
//! accepted contact whose session on file already covers the keys they use, no session is written; the
//! texts' rows (history row, outbox entry) go into a write transaction the caller commits off its thread
//! ([`crate::store::DetachedCommit`]) while the envelopes leave.

use super::send::write_text;
use super::*;
use crate::store::DetachedCommit;

/// Texts sealed under reserved keys ([`Engine::send_texts_reserved`]): one result per text, in order.
/// The envelopes of the `Ok` results may leave now; the texts are durable, and may be reported as sent,
/// only once `commit` (the rows of every `Ok` text) has been committed. `commit` is `None` when the rows
/// could not be written: then every result is an error and nothing may leave.
#[derive(Debug)]
pub struct ReservedSends {
    pub results: Vec<Result<(Message, OutboxEntry), EngineError>>,
    pub commit: Option<DetachedCommit>,
}

impl Engine {
    /// Seals `texts` without writing any session, if every key they use is reserved by the sessions on
    /// file and every recipient is an accepted contact; `None` (nothing sealed) otherwise, for
    /// [`Self::send_texts_at`] to do with one commit before anything leaves.
    pub fn send_texts_reserved(
        &mut self,
        texts: &[(IdentityKey, String)],
        now_ms: u64,
    ) -> Option<ReservedSends> {
        let mut wanted: Vec<(IdentityKey, u32)> = Vec::new();
        for (to, _) in texts {
            match wanted.iter_mut().find(|(k, _)| k == to) {
                Some((_, n)) => *n += 1,
                None => wanted.push((*to, 1)),
            }
        }
        for (to, n) in &wanted {
            let accepted =
                matches!(self.store.contact(to), Ok(Some(c)) if c.state == ContactState::Accepted);
            if !accepted || self.load_sessions(*to).is_err() {
                return None;
            }
            if self.sessions.get(to).map_or(0, |s| s.reserved_sends()) < *n {
                return None;
            }
        }
        let mut sealed = Vec::with_capacity(texts.len());
        for (to, text) in texts {
            sealed.push(match self.seal_text(to, text, now_ms) {
                Ok((contact, content, envelope, None)) => Ok((contact, content, envelope)),
                Ok((_, _, _, Some(_))) => {
                    // Not reserved after all: this key may not leave before a session commit. It never
                    // leaves; the session on file (ahead of it) is loaded again.
                    self.sessions.remove(to);
                    Err(EngineError::Store(group_failed(
                        "the message key was not reserved",
                    )))
                }
                Err(e) => Err(e),
            });
        }
        let written = self.store.write_detached(|batch| {
            let mut rows = Vec::with_capacity(sealed.len());
            for ((_, text), item) in texts.iter().zip(&mut sealed) {
                rows.push(match item {
                    Ok((contact, content, envelope)) => {
                        let (message, entry, _) =
                            write_text(batch, contact, content, envelope, now_ms, text)?;
                        Some((message, entry))
                    }
                    Err(_) => None,
                });
            }
            Ok(rows)
        });
        match written {
            Ok((rows, commit)) => Some(ReservedSends {
                results: sealed
                    .into_iter()
                    .zip(rows)
                    .map(|(item, row)| match (item, row) {
                        (Ok(_), Some(row)) => Ok(row),
                        (Err(e), _) => Err(e),
                        (Ok(_), None) => Err(EngineError::Store(group_failed("not written"))),
                    })
                    .collect(),
                commit: Some(commit),
            }),
            Err(e) => {
                let reason = e.to_string();
                Some(ReservedSends {
                    results: texts
                        .iter()
                        .map(|_| Err(EngineError::Store(group_failed(&reason))))
                        .collect(),
                    commit: None,
                })
            }
        }
    }
}
