//! Start-up reachability (pure): does any server of a group accept a connection?
//!
//! A configuration pointing at backends that are not running used to start silently
//! and answer 503 later. The reactor reports the outcome of every backend connect it
//! makes (pool prefill, health probe, tunnel) with [`Reach::outcome`] until each group
//! is decided; a group is decided by its first server that accepts a connection
//! (nothing to say) or when every one of its start-up servers has refused or timed
//! out, which [`Reach::outcome`] returns once, for the reactor to warn. Nothing here
//! connects or blocks: outcomes arrive from the loop as they happen. Servers a reload
//! adds later are not part of the start-up check.

/// What a connect outcome means for its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet, or decided before: nothing to do.
    Pending,
    /// Every server of the group failed its first connect: warn (returned once).
    NoneReachable,
}

#[derive(Clone, Debug, Default)]
struct GroupReach {
    /// Per start-up server: the reason of its failed connect, once seen.
    failed: Vec<Option<&'static str>>,
    decided: bool,
}

/// The start-up reachability of the `[http]` and `[websocket]` groups.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    groups: [GroupReach; 2],
}

impl Reach {
    /// Watches groups of `servers[g]` servers; an empty group is decided at once.
    pub fn new(servers: [usize; 2]) -> Reach {
        let group = |n: usize| GroupReach {
            failed: vec![None; n],
            decided: n == 0,
        };
        Reach {
            groups: [group(servers[0]), group(servers[1])],
        }
    }

    /// True once group `g` needs no more outcomes (cheap: call before building one).
    pub fn decided(&self, g: usize) -> bool {
        self.groups.get(g).is_none_or(|r| r.decided)
    }

    /// Records a connect to server `s` of group `g`: accepted (`Ok`), or failed with
    /// a reason. Returns [`Verdict::NoneReachable`] the one time the group's last
    /// unknown server fails with none accepted.
    pub fn outcome(&mut self, g: usize, s: usize, result: Result<(), &'static str>) -> Verdict {
        let Some(r) = self.groups.get_mut(g).filter(|r| !r.decided) else {
            return Verdict::Pending;
        };
        let Some(slot) = r.failed.get_mut(s) else {
            return Verdict::Pending;
        };
        match result {
            Ok(()) => {
                r.decided = true;
                Verdict::Pending
            }
            Err(why) => {
                slot.get_or_insert(why);
                if r.failed.iter().all(Option::is_some) {
                    r.decided = true;
                    return Verdict::NoneReachable;
                }
                Verdict::Pending
            }
        }
    }

    /// Why server `s` of group `g` failed its first connect, if it did.
    pub fn reason(&self, g: usize, s: usize) -> Option<&'static str> {
        self.groups.get(g)?.failed.get(s).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_when_every_server_of_a_group_fails() {
        let mut r = Reach::new([2, 1]);
        assert_eq!(r.outcome(0, 0, Err("connection refused")), Verdict::Pending);
        // A second failure of the same server decides nothing.
        assert_eq!(r.outcome(0, 0, Err("connect timeout")), Verdict::Pending);
        assert!(!r.decided(0));
        assert_eq!(
            r.outcome(0, 1, Err("connect timeout")),
            Verdict::NoneReachable
        );
        assert!(r.decided(0));
        assert_eq!(r.reason(0, 0), Some("connection refused"));
        assert_eq!(r.reason(0, 1), Some("connect timeout"));
        // Once: later failures say nothing.
        assert_eq!(r.outcome(0, 1, Err("connection refused")), Verdict::Pending);
        // The other group is independent.
        assert!(!r.decided(1));
        assert_eq!(
            r.outcome(1, 0, Err("connection refused")),
            Verdict::NoneReachable
        );
    }

    #[test]
    fn one_accepted_connect_decides_the_group_quietly() {
        let mut r = Reach::new([2, 0]);
        assert!(r.decided(1), "an empty group has nothing to check");
        assert_eq!(r.outcome(0, 0, Err("connection refused")), Verdict::Pending);
        assert_eq!(r.outcome(0, 1, Ok(())), Verdict::Pending);
        assert!(r.decided(0));
        assert_eq!(r.outcome(0, 0, Err("connection refused")), Verdict::Pending);
    }

    #[test]
    fn servers_added_later_are_ignored() {
        let mut r = Reach::new([1, 0]);
        assert_eq!(r.outcome(0, 5, Err("connection refused")), Verdict::Pending);
        assert_eq!(r.outcome(2, 0, Err("connection refused")), Verdict::Pending);
        assert_eq!(
            r.outcome(0, 0, Err("connection refused")),
            Verdict::NoneReachable
        );
    }
}
