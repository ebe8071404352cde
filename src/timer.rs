//! Deadlines, kept without a clock.
//!
//! Every timed thing (a client, a backend connection, a health probe) stores its own
//! `deadline`; this heap only says when to look. An entry is pushed only when a
//! deadline moves *earlier* than the one already scheduled for that owner, so pushing a
//! deadline later on every request (the common case) costs nothing, and the heap holds
//! about one entry per owner. When an entry comes due the reactor compares it with the
//! owner's current deadline: gone or moved later means reschedule or drop, never fire
//! early. Owners are named by token, so an entry for a dead owner whose slab slot was
//! reused finds a different token and is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Who a deadline belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// A client session, by token value.
    Client(usize),
    /// A backend connection, by token value.
    Backend(usize),
    /// A health probe slot: (group index, server index).
    Health(usize, usize),
    /// The process-wide drain deadline and other reactor-level work.
    Reactor,
    /// The WebSocket rebalancer's next check (`[websocket] rebalance = on`).
    Rebalance,
    /// The resolver's next try deadline or scheduled query (DNS discovery).
    Dns,
}

/// A deadline that its owner holds, with what has been scheduled for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline {
    /// When the owner wants to be woken, if at all.
    pub at: Option<Instant>,
    /// The earliest entry already in the heap for this owner.
    scheduled: Option<Instant>,
}

impl Deadline {
    /// Sets (or clears) the deadline, scheduling a heap entry only when needed.
    pub fn set(&mut self, at: Option<Instant>, owner: Owner, timers: &mut Timers) {
        self.at = at;
        if let Some(at) = at {
            if self.scheduled.is_none_or(|s| at < s) {
                timers.heap.push(Reverse((at, owner)));
                self.scheduled = Some(at);
            }
        }
    }

    /// Called when this owner's heap entry came due at `now`: true when the deadline
    /// really expired; otherwise the entry is re-armed for the current deadline.
    pub fn fire(&mut self, now: Instant, owner: Owner, timers: &mut Timers) -> bool {
        self.scheduled = None;
        match self.at {
            Some(at) if at <= now => {
                self.at = None;
                true
            }
            at => {
                self.set(at, owner, timers);
                false
            }
        }
    }
}

/// The heap of (when, owner) entries.
#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Owner)>>,
}

impl Timers {
    /// The earliest scheduled entry.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Owner> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, o))| o),
            _ => None,
        }
    }

    /// Entries in the heap (for tests and metrics).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn later_deadlines_do_not_push() {
        let mut t = Timers::default();
        let t0 = Instant::now();
        let mut d = Deadline::default();
        let o = Owner::Client(1);
        for i in 1..100 {
            d.set(Some(t0 + Duration::from_secs(i)), o, &mut t);
        }
        assert_eq!(t.len(), 1);
        // The first entry comes due at t0+1s but the deadline is now t0+99s: re-armed.
        let now = t0 + Duration::from_secs(1);
        assert_eq!(t.pop_due(now), Some(o));
        assert!(!d.fire(now, o, &mut t));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(99)));
        let now = t0 + Duration::from_secs(99);
        assert_eq!(t.pop_due(now), Some(o));
        assert!(d.fire(now, o, &mut t));
        assert!(t.is_empty());
    }

    #[test]
    fn earlier_deadline_pushes_and_cleared_never_fires() {
        let mut t = Timers::default();
        let t0 = Instant::now();
        let mut d = Deadline::default();
        let o = Owner::Backend(7);
        d.set(Some(t0 + Duration::from_secs(10)), o, &mut t);
        d.set(Some(t0 + Duration::from_secs(1)), o, &mut t);
        assert_eq!(t.len(), 2);
        d.set(None, o, &mut t);
        let now = t0 + Duration::from_secs(1);
        assert_eq!(t.pop_due(now), Some(o));
        assert!(!d.fire(now, o, &mut t));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(10)), Some(o));
        assert!(!d.fire(t0 + Duration::from_secs(10), o, &mut t));
        assert!(t.is_empty());
    }

    #[test]
    fn boundaries_equal_deadline_and_not_yet_due() {
        let mut t = Timers::default();
        assert!(t.is_empty());
        assert_eq!(t.next(), None);
        assert_eq!(t.pop_due(Instant::now()), None);
        let t0 = Instant::now();
        let mut d = Deadline::default();
        let o = Owner::Health(1, 2);
        let at = t0 + Duration::from_secs(5);
        d.set(Some(at), o, &mut t);
        // The same deadline again is not earlier: no second entry.
        d.set(Some(at), o, &mut t);
        assert_eq!(t.len(), 1);
        assert!(!t.is_empty());
        assert_eq!(t.next(), Some(at));
        // An entry not yet due stays in the heap.
        assert_eq!(t.pop_due(at - Duration::from_millis(1)), None);
        assert_eq!(t.len(), 1);
        // Due exactly at its instant, and the deadline expires exactly then.
        assert_eq!(t.pop_due(at), Some(o));
        assert!(d.fire(at, o, &mut t));
        assert_eq!(d.at, None);
        assert!(t.is_empty());
        // A cleared deadline never fires and schedules nothing.
        assert!(!d.fire(at, o, &mut t));
        assert!(t.is_empty());
    }
}
