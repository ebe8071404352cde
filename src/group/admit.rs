//! Which servers of a group may take work at a pick (pure: no IO, no clock).
//!
//! Passive ejection must never cause an outage by itself (issue 16):
//! - `max_ejected_percent` caps how much of the group passive ejection may take
//!   out: of `n` servers in service (not removed by a reload; servers down by
//!   active checks count), at most `n * max_ejected_percent / 100` (rounded
//!   down) stay ejected. The others are **released**: used anyway, the least
//!   recently failed first. So a one-server group is never passively ejected.
//! - When no server is usable except ejected ones ("panic") and no released
//!   server is left that this request has not tried, the least recently failed
//!   ejected server it has not tried is released too (one per pick).
//! - A server down by active health checks stays out: with every server down
//!   nothing is released and the request gets 503 at once, as before.
//!
//! The group is **in panic** when it serves only from released servers: no
//! server is usable on its own and at least one ejected server is released.
//! That is the state the status page and `/metrics` show.
//!
//! Cost: callers skip [`admit`] when no server is ejected, so a healthy group
//! pays nothing. Releasing is `O(servers * released)`, without allocation.

use std::time::Instant;

/// A server as admission sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Removed by a reload: not part of the group any more.
    Removed,
    /// Down by active health checks: never used.
    Down,
    /// Passively ejected; the instant of its last passive failure orders release.
    Ejected {
        /// Last passive failure (None sorts first: it never failed passively).
        last_failure: Option<Instant>,
    },
    /// Ejected but used anyway ([`admit`] turns `Ejected` into this).
    Released,
    /// Usable on its own.
    Usable,
}

impl Standing {
    /// May take work (before the request's own `tried` mask).
    pub fn admitted(self) -> bool {
        matches!(self, Standing::Usable | Standing::Released)
    }
}

/// What [`admit`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// Ejected servers released (by the cap or by panic).
    pub released: u32,
    /// Only released servers can take work: the group is in panic mode.
    pub panic: bool,
}

/// Releases ejected servers in `standings` (in place) as the module doc says.
/// `tried` has bit `i` set for servers this request already tried (servers at
/// index 64 and above are never marked tried, as in `Group::pick`).
pub fn admit(standings: &mut [Standing], max_ejected_percent: u32, tried: u64) -> Admission {
    let mut in_service = 0u64;
    let mut ejected = 0u64;
    let mut usable = false;
    for s in standings.iter() {
        match s {
            Standing::Removed => continue,
            Standing::Ejected { .. } => ejected += 1,
            Standing::Usable => usable = true,
            Standing::Down | Standing::Released => {}
        }
        in_service += 1;
    }
    let allowed = in_service * u64::from(max_ejected_percent.min(100)) / 100;
    let mut released = 0u32;
    for _ in allowed..ejected {
        if release_least_recent(standings, 0).is_some() {
            released += 1;
        }
    }
    let open = |(i, s): (usize, &Standing)| s.admitted() && !is_tried(i, tried);
    let left = standings.iter().enumerate().any(open);
    if !usable && !left && release_least_recent(standings, tried).is_some() {
        released += 1;
    }
    Admission {
        released,
        panic: !usable && released > 0,
    }
}

fn is_tried(i: usize, tried: u64) -> bool {
    i < 64 && tried & (1 << i) != 0
}

/// Releases the ejected server with the oldest last failure (lowest index on
/// ties) among those not in `tried`.
fn release_least_recent(standings: &mut [Standing], tried: u64) -> Option<usize> {
    let mut best: Option<(usize, Option<Instant>)> = None;
    for (i, s) in standings.iter().enumerate() {
        let Standing::Ejected { last_failure } = *s else {
            continue;
        };
        if is_tried(i, tried) {
            continue;
        }
        if best.is_none_or(|(_, t)| last_failure < t) {
            best = Some((i, last_failure));
        }
    }
    let (i, _) = best?;
    standings[i] = Standing::Released;
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use Standing::{Down, Released, Removed, Usable};

    fn ejected(t0: Instant, secs: u64) -> Standing {
        Standing::Ejected {
            last_failure: Some(t0 + Duration::from_secs(secs)),
        }
    }

    #[test]
    fn nothing_ejected_nothing_released() {
        let mut s = [Usable, Down, Removed, Usable];
        assert_eq!(admit(&mut s, 50, 0), Admission::default());
        assert_eq!(s, [Usable, Down, Removed, Usable]);
    }

    #[test]
    fn a_one_server_group_is_never_passively_ejected() {
        let t0 = Instant::now();
        for pct in [0, 50, 99] {
            let mut s = [ejected(t0, 1)];
            let a = admit(&mut s, pct, 0);
            assert_eq!(s, [Released], "{pct}%");
            assert_eq!(
                a,
                Admission {
                    released: 1,
                    panic: true
                },
                "{pct}%"
            );
        }
        // Removed servers do not count: one left in service is the same case.
        let mut s = [Removed, ejected(t0, 1), Removed];
        assert!(admit(&mut s, 50, 0).panic);
        assert_eq!(s[1], Released);
    }

    #[test]
    fn the_cap_keeps_the_most_recently_failed_out() {
        let t0 = Instant::now();
        // 4 in service, 50%: 2 may stay ejected; 3 are: the least recent goes back.
        let mut s = [ejected(t0, 5), Usable, ejected(t0, 2), ejected(t0, 9)];
        let a = admit(&mut s, 50, 0);
        assert_eq!(
            a,
            Admission {
                released: 1,
                panic: false
            }
        );
        assert_eq!(s, [ejected(t0, 5), Usable, Released, ejected(t0, 9)]);
        // Within the cap nothing changes.
        let mut s = [ejected(t0, 5), Usable, ejected(t0, 2), Usable];
        assert_eq!(admit(&mut s, 50, 0).released, 0);
        // 3 in service at 50%: only 1 may be ejected (rounded down).
        let mut s = [ejected(t0, 5), ejected(t0, 2), Usable];
        assert_eq!(admit(&mut s, 50, 0).released, 1);
        assert_eq!(s[1], Released);
        // 0%: passive ejection never takes anything out.
        let mut s = [ejected(t0, 5), ejected(t0, 2), Usable];
        assert_eq!(admit(&mut s, 0, 0).released, 2);
        assert!(s.iter().all(|x| x.admitted()));
    }

    #[test]
    fn servers_down_by_active_checks_count_in_the_group_but_are_never_released() {
        let t0 = Instant::now();
        // 2 in service (one down), 50%: the ejected one may stay out by the cap,
        // but nothing else is usable, so panic releases it.
        let mut s = [Down, ejected(t0, 3)];
        let a = admit(&mut s, 50, 0);
        assert_eq!(
            a,
            Admission {
                released: 1,
                panic: true
            }
        );
        assert_eq!(s, [Down, Released]);
        // Every server down: nothing to release, the caller answers 503.
        let mut s = [Down, Down, Removed];
        assert_eq!(admit(&mut s, 50, 0), Admission::default());
        assert!(!s.iter().any(|x| x.admitted()));
    }

    #[test]
    fn panic_with_a_full_cap_releases_one_least_recently_failed_untried_server() {
        let t0 = Instant::now();
        let all = || [ejected(t0, 4), ejected(t0, 1), ejected(t0, 7)];
        let mut s = all();
        let a = admit(&mut s, 100, 0);
        assert_eq!(
            a,
            Admission {
                released: 1,
                panic: true
            }
        );
        assert_eq!(s, [ejected(t0, 4), Released, ejected(t0, 7)]);
        // The request already tried server 1: the next least recent one.
        let mut s = all();
        assert!(admit(&mut s, 100, 0b010).panic);
        assert_eq!(s, [Released, ejected(t0, 1), ejected(t0, 7)]);
        // Tried them all: nothing (502 for a retry, as before).
        let mut s = all();
        assert_eq!(admit(&mut s, 100, 0b111), Admission::default());
    }

    #[test]
    fn no_panic_release_while_another_server_is_usable() {
        let t0 = Instant::now();
        // The usable one was tried (a retry): the ejected one stays out (502).
        let mut s = [Usable, ejected(t0, 1)];
        assert_eq!(admit(&mut s, 50, 0b01), Admission::default());
        assert_eq!(s[1], ejected(t0, 1));
    }

    #[test]
    fn cap_release_ignores_tried_and_ties_go_to_the_lower_index() {
        let t0 = Instant::now();
        let mut s = [ejected(t0, 1), ejected(t0, 1)];
        let a = admit(&mut s, 50, 0);
        assert_eq!(
            a,
            Admission {
                released: 1,
                panic: true
            }
        );
        assert_eq!(s, [Released, ejected(t0, 1)]);
        // A retry after the released one: panic releases the other one too.
        let mut s = [ejected(t0, 1), ejected(t0, 1)];
        let a = admit(&mut s, 50, 0b01);
        assert_eq!(
            a,
            Admission {
                released: 2,
                panic: true
            }
        );
        assert_eq!(s, [Released, Released]);
        // Never failed passively (an ejection from another source) sorts first.
        let mut s = [ejected(t0, 1), Standing::Ejected { last_failure: None }];
        admit(&mut s, 50, 0);
        assert_eq!(s[1], Released);
    }
}
