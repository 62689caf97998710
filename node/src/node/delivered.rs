//! Acknowledged envelopes waiting to be recorded as delivered. While others are still being delivered they
//! wait, at most [`DELIVERED_RECORD_DELAY`] or until [`MAX_DELIVERED_PENDING`] wait, so the acks of a burst
//! or of a conversation going back and forth share one commit; an ack that leaves nothing in flight is
//! recorded at once (docs/benchmarks.md, "Deliveries recorded together").

use std::time::Instant;

use super::{DELIVERED_RECORD_DELAY, MAX_DELIVERED_PENDING};

/// The acknowledged entries not yet recorded, and when they must be.
pub(super) struct Acked<E> {
    entries: Vec<E>,
    due: Option<Instant>,
}

impl<E> Default for Acked<E> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            due: None,
        }
    }
}

impl<E> Acked<E> {
    /// Adds an acknowledged entry; `true` when what waits is to be recorded now: nothing else is being
    /// delivered (`idle`), or [`MAX_DELIVERED_PENDING`] wait.
    pub(super) fn push(&mut self, entry: E, idle: bool, now: Instant) -> bool {
        self.entries.push(entry);
        if idle || self.entries.len() >= MAX_DELIVERED_PENDING {
            return true;
        }
        self.due.get_or_insert(now + DELIVERED_RECORD_DELAY);
        false
    }

    /// When what waits must be recorded (`None`: nothing waits).
    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Everything waiting, to be recorded now.
    pub(super) fn take(&mut self) -> Vec<E> {
        self.due = None;
        std::mem::take(&mut self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_ack_is_recorded_at_once() {
        let mut acked = Acked::default();
        assert!(acked.push(1, true, Instant::now()));
        assert_eq!(acked.take(), vec![1]);
        assert_eq!(acked.due(), None);
    }

    #[test]
    fn acks_with_more_in_flight_wait_from_the_first_until_the_delay_or_the_bound() {
        let mut acked = Acked::default();
        let start = Instant::now();
        assert!(!acked.push(0, false, start));
        assert_eq!(acked.due(), Some(start + DELIVERED_RECORD_DELAY));
        // Later acks join the first one's deadline rather than pushing it on.
        for i in 1..MAX_DELIVERED_PENDING - 1 {
            assert!(!acked.push(i, false, start + DELIVERED_RECORD_DELAY / 2));
        }
        assert_eq!(acked.due(), Some(start + DELIVERED_RECORD_DELAY));
        // The bound: the next one makes everything waiting due now.
        assert!(acked.push(MAX_DELIVERED_PENDING - 1, false, start));
        let all = acked.take();
        assert_eq!(all, (0..MAX_DELIVERED_PENDING).collect::<Vec<_>>());
        assert_eq!(acked.due(), None);
        assert!(acked.take().is_empty());
    }
}
