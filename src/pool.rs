//! One server's persistent connections (the seed's "workers") and its wait queue: the
//! state and every rule about it, without sockets or a clock. The reactor asks the
//! pool what to do (`acquire`, `enqueue`, `next_waiter`, ...), carries it out on the
//! sockets (`backend.rs`), and reports back what happened (`opening`, `connected`,
//! `closed`). Connections are named by their backend slab index.
//!
//! Policy, per server (all numbers from its `serverN_*` keys):
//! - at start, and when a server comes back up, `min_workers` connections are opened
//!   and kept while idle;
//! - a request takes the most recently used idle connection; if none is idle and fewer
//!   than `max_workers` exist, one more is opened; the request waits in the server's
//!   FIFO queue until a connection is free (at most `buffer_size` waiting beyond the
//!   connections being opened; `queue_timeout` bounds the wait);
//! - an idle connection above `min_workers` that stays idle for `worker_timeout` is
//!   closed; one the backend announced `Keep-Alive: timeout=N` for is closed before N;
//! - idle connections stay registered READABLE: any byte or EOF on one evicts it at
//!   once, so a request is never written to a connection the backend already closed.

use crate::token::CRef;
use std::collections::VecDeque;

/// A server's pool limits (from its configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections kept open while idle (`min_workers`).
    pub min: usize,
    /// Most connections (`max_workers`).
    pub max: usize,
    /// Requests that may wait beyond the connections being opened (`buffer_size`).
    pub queue: usize,
}

/// How a request gets a connection (first step of an acquire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// Use this idle connection (the most recently used).
    Idle(usize),
    /// No idle connection: wait in the queue. `open`: below `max`, so open one more
    /// connection for it first; `full`: the queue had no room, which matters only if
    /// no connection could be opened. Then call `enqueue`.
    Queue {
        /// Open a connection for this request.
        open: bool,
        /// The queue is at its limit.
        full: bool,
    },
}

/// What became of a request that had to wait (second step of an acquire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueue {
    /// It waits for the next free connection.
    Queued,
    /// No room to wait: 503.
    Full,
    /// The server has no connection at all and none could be opened: try another.
    Unreachable,
}

/// Where a closed connection was in the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Still connecting.
    Connecting,
    /// In the idle list.
    Idle,
    /// Carrying an exchange.
    Busy,
}

/// One server's connections and wait queue.
#[derive(Default, Debug)]
pub struct Pool {
    /// Idle connections, most recently used last (LIFO keeps hot ones busy and lets
    /// the cold ones reach `worker_timeout`).
    idle: Vec<usize>,
    /// Connections that exist: connecting + idle + busy.
    total: usize,
    /// Connections still connecting.
    connecting: usize,
    /// Requests waiting for a connection, oldest first.
    queue: VecDeque<CRef>,
}

impl Pool {
    /// The one place that decides how a request gets a connection.
    pub fn acquire(&mut self, lim: Limits) -> Acquire {
        if let Some(b) = self.idle.pop() {
            return Acquire::Idle(b);
        }
        Acquire::Queue {
            open: self.total < lim.max,
            full: self.queue.len() >= lim.queue,
        }
    }

    /// Puts a request that found no idle connection in the queue, given whether a
    /// connection was opened for it (see `Acquire::Queue`).
    pub fn enqueue(&mut self, c: CRef, opened: bool, full: bool) -> Enqueue {
        if !opened && self.total == 0 {
            return Enqueue::Unreachable;
        }
        if !opened && full {
            return Enqueue::Full;
        }
        self.queue.push_back(c);
        Enqueue::Queued
    }

    /// A request whose pooled connection failed before any response byte waits at the
    /// head of the queue for a fresh one. True when a connection should be opened: below
    /// `max`, and not already one connecting for every waiter (the refill that followed
    /// the failed connection's `closed` may be it).
    pub fn retry_first(&mut self, c: CRef, lim: Limits) -> bool {
        self.queue.push_front(c);
        self.total < lim.max && self.connecting < self.queue.len()
    }

    /// A new connection is being opened.
    pub fn opening(&mut self) {
        self.total += 1;
        self.connecting += 1;
    }

    /// A connection finished connecting (it is made idle or handed out next).
    pub fn connected(&mut self) {
        self.connecting -= 1;
    }

    /// A connection became idle.
    pub fn push_idle(&mut self, conn: usize) {
        self.idle.push(conn);
    }

    /// A connection is gone. True when the pool should be refilled to `min` now, whatever
    /// took the connection (a 504, a broken or truncated response, an eviction, a
    /// `Connection: close`), not at the next request. A connect that failed is not
    /// retried from its own failure: the server may be refusing, and reconnecting at once
    /// would spin; the next request, eviction or health verdict refills then.
    pub fn closed(&mut self, conn: usize, held: Held, lim: Limits) -> bool {
        match held {
            Held::Connecting => self.connecting -= 1,
            Held::Idle => self.idle.retain(|&x| x != conn),
            Held::Busy => {}
        }
        self.total -= 1;
        held != Held::Connecting && self.needs_refill(lim)
    }

    /// The idle list, emptied (the server went down): close each, which reports
    /// `closed(.., Held::Idle)`.
    pub fn take_idle(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.idle)
    }

    /// The oldest waiting request that is still alive (`alive`) paired with an idle
    /// connection, both taken; None when either is missing. Dead waiters are dropped.
    pub fn next_waiter(&mut self, alive: impl Fn(CRef) -> bool) -> Option<(CRef, usize)> {
        while !self.idle.is_empty() {
            let c = self.queue.pop_front()?;
            if alive(c) {
                return self.idle.pop().map(|b| (c, b));
            }
        }
        None
    }

    /// Takes a request out of the queue (it closed, or was answered otherwise).
    pub fn remove_waiter(&mut self, c: CRef) {
        self.queue.retain(|&x| x != c);
    }

    /// Empties the queue (the server went down: its waiters go elsewhere).
    pub fn take_queue(&mut self) -> VecDeque<CRef> {
        std::mem::take(&mut self.queue)
    }

    /// No connection exists or is being opened: waiters would wait for nothing.
    pub fn stranded(&self) -> bool {
        self.total == 0
    }

    /// Below `min`: open another connection (when the server is usable).
    pub fn needs_refill(&self, lim: Limits) -> bool {
        self.total < lim.min
    }

    /// More than `min` connections: an idle one may be closed after `worker_timeout`.
    pub fn above_min(&self, lim: Limits) -> bool {
        self.total > lim.min
    }

    /// Requests wait, none is idle and there is room for another connection: after a
    /// connection closed, open a fresh one for them.
    pub fn wants_fresh(&self, lim: Limits) -> bool {
        !self.queue.is_empty() && self.idle.is_empty() && self.total < lim.max
    }

    /// Connections that exist (connecting + idle + busy).
    pub fn total(&self) -> usize {
        self.total
    }

    /// Connections still connecting.
    pub fn connecting(&self) -> usize {
        self.connecting
    }

    /// Idle connections, most recently used last.
    pub fn idle(&self) -> &[usize] {
        &self.idle
    }

    /// Connections carrying an exchange.
    pub fn busy(&self) -> usize {
        self.total - self.connecting - self.idle.len()
    }

    /// Waiting requests, oldest first.
    pub fn queue(&self) -> &VecDeque<CRef> {
        &self.queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::Token;

    const LIM: Limits = Limits {
        min: 1,
        max: 2,
        queue: 2,
    };

    fn c(n: usize) -> CRef {
        CRef {
            index: n,
            token: Token(n << 2 | 1),
        }
    }

    #[test]
    fn idle_connections_are_taken_most_recently_used_first() {
        let mut p = Pool::default();
        for b in [7, 8] {
            p.opening();
            p.connected();
            p.push_idle(b);
        }
        assert_eq!(p.acquire(LIM), Acquire::Idle(8));
        assert_eq!(p.acquire(LIM), Acquire::Idle(7));
        assert_eq!((p.total(), p.busy()), (2, 2));
    }

    #[test]
    fn below_max_a_request_opens_a_connection_and_waits_for_it() {
        let mut p = Pool::default();
        let a = p.acquire(LIM);
        assert_eq!(
            a,
            Acquire::Queue {
                open: true,
                full: false
            }
        );
        p.opening();
        assert_eq!(p.enqueue(c(1), true, false), Enqueue::Queued);
        assert_eq!((p.total(), p.connecting(), p.queue().len()), (1, 1, 1));
        // The connection comes up: the waiter gets it.
        p.connected();
        p.push_idle(5);
        assert_eq!(p.next_waiter(|_| true), Some((c(1), 5)));
        assert_eq!(p.next_waiter(|_| true), None);
        assert_eq!((p.total(), p.busy()), (1, 1));
    }

    #[test]
    fn at_max_requests_queue_up_to_the_limit_then_get_full() {
        let mut p = Pool::default();
        for b in 0..2 {
            p.opening();
            p.connected();
            p.push_idle(b);
            assert!(matches!(p.acquire(LIM), Acquire::Idle(_)));
        }
        for n in 0..2 {
            let Acquire::Queue { open, full } = p.acquire(LIM) else {
                panic!("no idle connection expected")
            };
            assert!(!open && !full);
            assert_eq!(p.enqueue(c(n), false, full), Enqueue::Queued);
        }
        let Acquire::Queue { open, full } = p.acquire(LIM) else {
            panic!("no idle connection expected")
        };
        assert!(!open && full);
        assert_eq!(p.enqueue(c(9), false, full), Enqueue::Full);
        assert_eq!(p.queue().len(), 2);
    }

    #[test]
    fn a_connection_opened_for_a_request_lets_it_wait_past_a_full_queue() {
        let mut p = Pool::default();
        let mut lim = LIM;
        lim.queue = 0;
        assert_eq!(
            p.acquire(lim),
            Acquire::Queue {
                open: true,
                full: true
            }
        );
        p.opening();
        assert_eq!(p.enqueue(c(1), true, true), Enqueue::Queued);
    }

    #[test]
    fn no_connection_and_none_opened_is_unreachable_not_queued() {
        let mut p = Pool::default();
        assert_eq!(p.enqueue(c(1), false, false), Enqueue::Unreachable);
        assert!(p.queue().is_empty());
        assert!(p.stranded());
        // With a connection still connecting, the request may wait for it.
        p.opening();
        assert_eq!(p.enqueue(c(1), false, false), Enqueue::Queued);
        assert!(!p.stranded());
    }

    #[test]
    fn dead_waiters_are_skipped_and_dropped() {
        let mut p = Pool::default();
        p.opening();
        for n in 0..3 {
            p.enqueue(c(n), true, false);
        }
        p.connected();
        p.push_idle(4);
        assert_eq!(p.next_waiter(|x| x.index == 2), Some((c(2), 4)));
        assert!(p.queue().is_empty(), "dead waiters 0 and 1 dropped");
        // No idle connection: nobody is taken off the queue.
        p.enqueue(c(3), true, false);
        assert_eq!(p.next_waiter(|_| true), None);
        assert_eq!(p.queue().len(), 1);
    }

    #[test]
    fn closing_keeps_the_counts_in_step() {
        let mut p = Pool::default();
        for _ in 0..3 {
            p.opening();
        }
        assert!(!p.closed(99, Held::Connecting, LIM));
        assert_eq!((p.total(), p.connecting(), p.busy()), (2, 2, 0));
        p.connected();
        p.push_idle(1);
        p.connected();
        p.push_idle(2);
        assert_eq!(p.acquire(LIM), Acquire::Idle(2));
        assert!(!p.closed(2, Held::Busy, LIM), "still at min");
        assert_eq!((p.total(), p.busy(), p.idle()), (1, 0, &[1][..]));
        // The server goes down: its idle list is taken, each closed in turn.
        let idle = p.take_idle();
        assert_eq!(idle, [1]);
        for b in idle {
            assert!(p.closed(b, Held::Idle, LIM), "below min: refill");
        }
        assert_eq!((p.total(), p.connecting(), p.idle().len()), (0, 0, 0));
    }

    #[test]
    fn an_idle_connection_that_closes_leaves_the_idle_list() {
        let mut p = Pool::default();
        for b in [4, 5, 6] {
            p.opening();
            p.connected();
            p.push_idle(b);
        }
        p.closed(5, Held::Idle, LIM);
        assert_eq!((p.total(), p.idle()), (2, &[4, 6][..]));
        assert_eq!(p.take_idle(), [4, 6]);
        assert!(p.idle().is_empty());
    }

    #[test]
    fn refill_shrink_and_fresh_connection_rules() {
        let mut p = Pool::default();
        assert!(p.needs_refill(LIM));
        p.opening();
        assert!(!p.needs_refill(LIM) && !p.above_min(LIM));
        p.opening();
        assert!(p.above_min(LIM));
        p.connected();
        p.connected();
        // Waiters, nothing idle, at max: no fresh connection.
        p.enqueue(c(1), false, false);
        assert!(!p.wants_fresh(LIM));
        // One closes: now a fresh one is wanted.
        p.closed(0, Held::Busy, LIM);
        assert!(p.wants_fresh(LIM));
        // Not while one is idle (it will be handed out).
        p.push_idle(3);
        assert!(!p.wants_fresh(LIM));
    }

    #[test]
    fn losing_a_connected_connection_below_min_asks_for_a_refill_at_once() {
        let lim = Limits {
            min: 2,
            max: 4,
            queue: 2,
        };
        let mut p = Pool::default();
        for b in [1, 2, 3] {
            p.opening();
            p.connected();
            p.push_idle(b);
        }
        // Above min: nothing to do.
        assert_eq!(p.acquire(lim), Acquire::Idle(3));
        assert!(!p.closed(3, Held::Busy, lim), "3 -> 2 connections, at min");
        // A busy one lost (a 504, a truncated response): below min, refill now.
        assert_eq!(p.acquire(lim), Acquire::Idle(2));
        assert!(p.closed(2, Held::Busy, lim));
        // So does an evicted idle one.
        p.opening();
        p.connected();
        p.push_idle(4);
        assert!(p.closed(4, Held::Idle, lim));
        // A connect that failed does not reconnect from its own failure (no spin
        // against a refusing server).
        p.opening();
        assert!(!p.closed(5, Held::Connecting, lim));
        assert!(
            p.needs_refill(lim),
            "still below min: the next trigger refills"
        );
    }

    #[test]
    fn a_retry_opens_no_second_connection_while_one_is_connecting_for_it() {
        let mut p = Pool::default();
        p.opening();
        p.connected();
        assert_eq!(p.busy(), 1);
        // The busy connection fails: the pool refills (one connecting), and the
        // retried request waits for that one instead of opening another.
        assert!(p.closed(0, Held::Busy, LIM));
        p.opening();
        assert!(!p.retry_first(c(1), LIM));
        // A second waiter with nothing connecting for it may open one.
        assert!(p.retry_first(c(2), LIM));
    }

    #[test]
    fn a_retried_request_goes_first() {
        let mut p = Pool::default();
        p.opening();
        p.enqueue(c(1), true, false);
        assert!(
            p.retry_first(c(2), LIM),
            "below max: open a fresh connection"
        );
        assert_eq!(p.queue().front(), Some(&c(2)));
        p.remove_waiter(c(2));
        assert_eq!(p.take_queue(), VecDeque::from([c(1)]));
        // At max, the retried request waits for a connection to come back.
        p.opening();
        assert!(!p.retry_first(c(3), LIM), "at max: no new connection");
        assert_eq!(p.queue().front(), Some(&c(3)));
    }
}
