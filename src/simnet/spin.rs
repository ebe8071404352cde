//! The spin detector: a bound on the work one reactor turn may do.
//!
//! A reactor that loops inside one turn (a session step that reports progress and
//! makes none, a deadline re-armed in the past so `fire_timers` pops it forever)
//! never returns to the scenario, so no check after the turn can see it: the test
//! would hang at 100% CPU and the fuzzer would report a timeout a minute later. Here
//! the reactor counts its units of work as it does them (`work`, called from
//! `fire_timers` and the session drive loop under the `sim` feature only, and from
//! every socket operation of the simulated network), and the turn panics, naming
//! what spun, once one kind exceeds its budget. The budgets are orders of magnitude
//! above what any scenario needs (`peak` reports the most seen) and a spin reaches
//! them in a fraction of a second.

use std::cell::Cell;

/// A unit of reactor work counted per turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// One deadline popped from the timer heap in `fire_timers`.
    TimerPop = 0,
    /// One step of a client session in `drive_client`'s loop.
    SessionStep = 1,
    /// One read, write or shutdown on a simulated socket.
    SocketOp = 2,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::TimerPop => "timer pops",
            Work::SessionStep => "client session steps",
            Work::SocketOp => "socket operations",
        }
    }
}

/// The most of each kind of work one turn may do (indexed by `Work`).
pub const TURN_BUDGET: [usize; 3] = [10_000, 20_000, 200_000];

thread_local! {
    /// Work done in the current turn; `None` outside a turn (the test's own peers
    /// use the same sockets and are not counted).
    static TURN: Cell<Option<[usize; 3]>> = const { Cell::new(None) };
    /// The most of each kind any turn on this thread did.
    static PEAK: Cell<[usize; 3]> = const { Cell::new([0; 3]) };
}

/// Starts counting a reactor turn.
pub fn turn_begin() {
    TURN.with(|t| t.set(Some([0; 3])));
}

/// Stops counting; records the turn's work in `peak`.
pub fn turn_end() {
    if let Some(done) = TURN.with(|t| t.take()) {
        PEAK.with(|p| {
            let mut peak = p.get();
            for (m, d) in peak.iter_mut().zip(done) {
                *m = (*m).max(d);
            }
            p.set(peak);
        });
    }
}

/// The most timer pops, session steps and socket operations one turn did on this
/// thread so far (to show how far below the budgets real scenarios stay).
pub fn peak() -> [usize; 3] {
    PEAK.with(Cell::get)
}

/// Counts one unit of work in the current turn; past the budget, panics with what
/// spun (`who` describes it; it is only called then).
pub fn work(kind: Work, who: &dyn Fn() -> String) {
    let Some(mut done) = TURN.with(Cell::get) else {
        return;
    };
    let k = kind as usize;
    done[k] += 1;
    TURN.with(|t| t.set(Some(done)));
    if done[k] > TURN_BUDGET[k] {
        // Stop counting, so nothing the unwinding does (drops) panics again.
        TURN.with(|t| t.set(None));
        panic!(
            "reactor spin: more than {} {} in one turn (last: {}); the turn does work \
             forever without waiting for anything",
            TURN_BUDGET[k],
            kind.name(),
            who()
        );
    }
}
