//! `/readyz`: whether this replica should be given new clients (Kubernetes readiness).
//! Pure: the reactor passes in what it knows and answers 200 or 503 with the reason.
//!
//! Ready = the listener is open, no shutdown has begun (SIGTERM during
//! `shutdown_delay`, or the drain after it), and every configured group has at least
//! one usable server (health up, not passively ejected, not removed by a reload). A
//! group in panic (only ejected servers left) is not ready: its clients are being
//! served by servers sluice itself judged failing. `/livez` needs no decision: the
//! reactor's loop answering it is the proof of life.

use crate::group::{Group, HTTP};
use std::time::Instant;

/// Where the process is in its shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Serving normally.
    Serving,
    /// SIGTERM received: still serving for `shutdown_delay`, then draining.
    ShuttingDown,
    /// The drain has begun: the listener is closed.
    Draining,
}

/// `Ok` when ready, else the reason (one line, for the 503's body).
pub fn check(
    listening: bool,
    stage: Stage,
    groups: &[Group; 2],
    now: Instant,
) -> Result<(), String> {
    match stage {
        Stage::ShuttingDown => return Err("shutting down: draining after shutdown_delay".into()),
        Stage::Draining => return Err("draining".into()),
        Stage::Serving => {}
    }
    if !listening {
        return Err("not listening".into());
    }
    for (g, group) in groups.iter().enumerate() {
        let live = group.servers.iter().filter(|s| !s.removed);
        let (mut total, mut down, mut ejected) = (0, 0, 0);
        for s in live {
            total += 1;
            if s.health.verdict() == crate::health::Verdict::Down {
                down += 1;
            } else if s.health.is_ejected(now) {
                ejected += 1;
            }
        }
        if total > 0 && down + ejected == total {
            let name = if g == HTTP { "http" } else { "websocket" };
            return Err(format!(
                "no usable server in group [{name}] ({down} down, {ejected} ejected)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, GroupKind, ServerConfig};
    use crate::health::{FailReason, ProbeOutcome};
    use std::time::Duration;

    fn groups(http: usize, now: Instant) -> [Group; 2] {
        let mut g = config::Group::new(GroupKind::Http);
        g.enable_health_check = true;
        g.fall = 1;
        g.servers = (1..=http as u16)
            .map(|i| ServerConfig::new(i.into(), "a:1", ([127, 0, 0, 1], i).into()))
            .collect();
        let ws = config::Group::new(GroupKind::WebSocket);
        [Group::new(&g, now), Group::new(&ws, now)]
    }

    fn down(g: &mut Group, s: usize, now: Instant) {
        let h = &mut g.servers[s].health;
        h.probe_started(now);
        h.probe_finished(
            now,
            ProbeOutcome::Unhealthy(FailReason::Refused),
            Duration::ZERO,
        );
    }

    #[test]
    fn ready_while_serving_with_a_usable_server_in_each_configured_group() {
        let now = Instant::now();
        let g = groups(2, now);
        assert_eq!(check(true, Stage::Serving, &g, now), Ok(()));
        assert_eq!(
            check(false, Stage::Serving, &g, now),
            Err("not listening".into())
        );
    }

    #[test]
    fn shutting_down_and_draining_are_not_ready() {
        let now = Instant::now();
        let g = groups(1, now);
        let why = check(true, Stage::ShuttingDown, &g, now).unwrap_err();
        assert!(why.starts_with("shutting down"), "{why}");
        assert_eq!(
            check(false, Stage::Draining, &g, now),
            Err("draining".into())
        );
    }

    #[test]
    fn a_group_without_a_usable_server_is_not_ready() {
        let now = Instant::now();
        let mut g = groups(2, now);
        down(&mut g[0], 0, now);
        assert_eq!(check(true, Stage::Serving, &g, now), Ok(()), "one left");
        for _ in 0..3 {
            g[0].servers[1].health.on_passive_failure(now);
        }
        assert_eq!(
            check(true, Stage::Serving, &g, now),
            Err("no usable server in group [http] (1 down, 1 ejected)".into())
        );
        g[0].servers[0].removed = true;
        assert_eq!(
            check(true, Stage::Serving, &g, now),
            Err("no usable server in group [http] (0 down, 1 ejected)".into())
        );
    }
}
