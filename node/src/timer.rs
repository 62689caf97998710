//! One table for all of a state machine's timers: each timer is a key with at most one deadline.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Deadlines by timer key. Setting a key again moves its deadline; a fired or cancelled key is gone.
/// Its size is bounded by the caller's keys (every key names something the caller bounds).
#[derive(Debug)]
pub struct TimerTable<K> {
    deadlines: HashMap<K, Instant>,
    order: BTreeSet<(Instant, K)>,
}

impl<K> Default for TimerTable<K> {
    fn default() -> Self {
        Self {
            deadlines: HashMap::new(),
            order: BTreeSet::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> TimerTable<K> {
    /// Arms (or re-arms) `key` to fire at `at`.
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some(old) = self.deadlines.insert(key, at) {
            self.order.remove(&(old, key));
        }
        self.order.insert((at, key));
    }

    /// Disarms `key`; returns whether it was armed.
    pub fn cancel(&mut self, key: K) -> bool {
        match self.deadlines.remove(&key) {
            Some(at) => self.order.remove(&(at, key)),
            None => false,
        }
    }

    pub fn get(&self, key: K) -> Option<Instant> {
        self.deadlines.get(&key).copied()
    }

    /// The earliest deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Takes one timer whose deadline is at or before `now`, earliest first.
    pub fn expired(&mut self, now: Instant) -> Option<K> {
        let &(at, key) = self.order.first()?;
        if at > now {
            return None;
        }
        self.order.remove(&(at, key));
        self.deadlines.remove(&key);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let start = Instant::now();
        let mut table = TimerTable::default();
        table.set(1u32, start + Duration::from_secs(3));
        table.set(2, start + Duration::from_secs(1));
        table.set(3, start + Duration::from_secs(2));
        table.set(1, start + Duration::from_secs(4)); // moved, not duplicated
        assert!(table.cancel(3));
        assert_eq!(table.len(), 2);
        assert_eq!(table.next_timeout(), Some(start + Duration::from_secs(1)));
        assert_eq!(table.expired(start), None);
        assert_eq!(table.expired(start + Duration::from_secs(5)), Some(2));
        assert_eq!(table.expired(start + Duration::from_secs(5)), Some(1));
        assert_eq!(table.expired(start + Duration::from_secs(5)), None);
        assert!(table.is_empty());
    }
}
