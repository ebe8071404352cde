//! WebSocket rebalancing, the IO half (`[websocket] rebalance = on`): a timer feeds
//! `crate::rebalance::Rebalancer` the open tunnels and weights of the `[websocket]`
//! servers; for each `(server, n)` it decides, the server's `n` oldest tunnels are
//! closed. The tunnel decides the codes (1012 Service Restart to the client at a frame
//! boundary, 1001 to the backend); a tunnel whose stream to the client is inside a
//! frame is passed over for the next oldest (the rebalancer is told how many can be
//! shed, and waits when none can). Never during a drain (the rebalancer says so and
//! the timer stops). One log line per episode.

use super::Reactor;
use crate::config::Config;
use crate::group::WEBSOCKET;
use crate::rebalance::{Params, ServerLoad, CHECK_INTERVAL};
use crate::session::Phase;
use crate::timer::Owner;
use log::info;
use std::time::Instant;

/// The rebalancer's settings from a configuration.
pub(super) fn params(cfg: &Config) -> Params {
    Params {
        rate: cfg.websocket.rebalance_rate,
        tolerance: cfg.websocket.rebalance_tolerance,
    }
}

impl Reactor {
    /// Arms the rebalancer's timer at `at`, or clears it (`None`, or rebalancing off).
    pub(crate) fn set_rebalance_timer(&mut self, at: Option<Instant>) {
        let at = at.filter(|_| self.cfg.websocket.rebalance);
        self.rebalance_timer
            .set(at, Owner::Rebalance, &mut self.timers);
    }

    /// The rebalancer's check: ask, shed, log an episode that ended, re-arm. Cold:
    /// kept out of the turn it is called from (the request path does not pay for it).
    #[cold]
    pub(crate) fn on_rebalance_timer(&mut self) {
        if !self.cfg.websocket.rebalance {
            return;
        }
        let now = self.now;
        let loads = self.tunnel_loads(now);
        let d = self.rebalancer.decide(&loads, self.draining, now);
        for &(s, n) in &d.shed {
            self.shed_oldest(s, n as usize);
        }
        if let Some(ep) = d.ended {
            self.log_episode(&ep.closed);
        }
        self.set_rebalance_timer(d.next);
    }

    /// A reload changed `[websocket]`: new settings, start or stop the timer (an
    /// episode in progress when rebalancing is turned off ends and is logged).
    pub(crate) fn reconfigure_rebalance(&mut self) {
        self.rebalancer.set_params(params(&self.cfg));
        if self.cfg.websocket.rebalance {
            if self.rebalance_timer.at.is_none() {
                self.set_rebalance_timer(Some(self.now + CHECK_INTERVAL));
            }
            return;
        }
        if let Some(ep) = self.rebalancer.decide(&[], true, self.now).ended {
            self.log_episode(&ep.closed);
        }
        self.set_rebalance_timer(None);
    }

    /// Per `[websocket]` server: open tunnels not already closing, those that can take
    /// a 1012 now, effective weight, usable (health up, not ejected, not removed).
    fn tunnel_loads(&self, now: Instant) -> Vec<ServerLoad> {
        let mut loads: Vec<ServerLoad> = self.groups[WEBSOCKET]
            .servers
            .iter()
            .map(|s| ServerLoad {
                open: 0,
                sheddable: 0,
                weight: s.health.effective_weight(now),
                usable: !s.removed && s.health.is_usable(now),
            })
            .collect();
        for (_, c) in self.clients.iter() {
            if let Phase::Tunnel(t) = &c.phase {
                if t.srv.group == WEBSOCKET && !t.finishing() {
                    if let Some(l) = loads.get_mut(t.srv.server) {
                        l.open += 1;
                        l.sheddable += u32::from(t.rebalance().is_some());
                    }
                }
            }
        }
        loads
    }

    /// Closes up to `n` of server `s`'s oldest tunnels that can take a 1012 now.
    fn shed_oldest(&mut self, s: usize, n: usize) {
        let mut oldest: Vec<(Instant, usize)> = self
            .clients
            .iter()
            .filter_map(|(i, c)| match &c.phase {
                Phase::Tunnel(t)
                    if t.srv.group == WEBSOCKET && t.srv.server == s && t.rebalance().is_some() =>
                {
                    Some((t.opened(), i))
                }
                _ => None,
            })
            .collect();
        let n = n.min(oldest.len());
        if n == 0 {
            return;
        }
        oldest.select_nth_unstable(n - 1);
        for &(_, i) in &oldest[..n] {
            let Some(closes) = (match &self.clients.get(i).map(|c| &c.phase) {
                Some(Phase::Tunnel(t)) => t.rebalance(),
                _ => None,
            }) else {
                continue;
            };
            self.finish_tunnel(i, closes, "rebalancing");
            if self.rebalance_closed.len() <= s {
                self.rebalance_closed.resize(s + 1, 0);
            }
            self.rebalance_closed[s] += 1;
            self.rebalanced.0 += 1;
            self.drive_client(i);
        }
    }

    /// One line per rebalance episode: how many tunnels were closed, from where.
    fn log_episode(&mut self, planned: &[u32]) {
        let closed = std::mem::take(&mut self.rebalance_closed);
        let total: u64 = closed.iter().map(|&n| u64::from(n)).sum();
        let servers = &self.groups[WEBSOCKET].servers;
        let from: Vec<String> = closed
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .filter_map(|(s, n)| Some(format!("{} {n}", servers.get(s)?.cfg.name)))
            .collect();
        let planned: u32 = planned.iter().sum();
        info!(
            "rebalance: closed {total} WebSocket tunnel(s) with 1012 ({}) of {planned} planned",
            from.join(", ")
        );
        if total > 0 {
            self.rebalanced.1 += 1;
        }
    }
}
