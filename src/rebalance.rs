//! Rebalancing long-lived WebSocket tunnels after a scale-up (issue 16, section 3).
//! Pure: no IO, no clock; `now` is an argument.
//!
//! A WebSocket is placed once and stays for hours, so a server added (or recovered) gets
//! only new sessions. [`Rebalancer::decide`] looks at the open tunnels per server and tells
//! the reactor how many tunnels to close on which server; the reactor closes that many of
//! the server's **oldest** tunnels (Close 1012 to the client at a frame boundary, 1001 to
//! the backend). Well-behaved clients reconnect and land by the balancing algorithm.
//!
//! Rules (`[websocket] rebalance = on`, `rebalance_rate`, `rebalance_tolerance`):
//! - Only usable servers count. Server `i`'s fair share is `total * w_i / W` (`total` =
//!   open tunnels on usable servers, `W` = sum of their weights); its limit is the share
//!   plus the tolerance, `floor(total * w_i * (100 + tol) / (100 * W))`.
//! - An **episode** starts when some server is above its limit while another is below its
//!   share. Its plan is fixed at the start, so tunnels in flight (closed, not yet back)
//!   never make it shed twice: it sheds `needed = min(sum of excesses over the limits,
//!   sum of deficits under the shares)`, from the most-over server first, never more than
//!   a server's own excess.
//! - Closes are paced by a token bucket: `rate` per second, at most `max(1, rate / 10)`
//!   at once (a tenth of a second's worth), so over any span `T` at most
//!   `rate * T + max(1, rate / 10)` tunnels are closed.
//! - A server stops shedding as soon as it is within its limit (computed against the
//!   total at the episode start: reconnecting clients are still on their way).
//! - The episode ends when its plan is done or nothing is over the limit any more; the
//!   next may start [`SETTLE`] later, once clients had time to reconnect. The end is
//!   reported once ([`Decision::ended`]): how many were closed, from where.
//! - Never during a drain (an episode in progress ends there); a changed server count
//!   (a reload) ends the episode too, and the next check plans afresh.
//!
//! The caller passes, per server, the tunnels that are open and not already closing,
//! and how many of them can be told to restart now (`sheddable`: their stream to the
//! client is at a frame boundary). A decision sheds no more than that from a server;
//! what it could not shed stays in the plan and is retried [`RETRY`] later.

use std::time::{Duration, Instant};

/// Pause after an episode before the next may start.
pub const SETTLE: Duration = Duration::from_secs(5);
/// Re-check interval when nothing is going on.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Re-check interval while the plan waits for tunnels that can be shed (every tunnel
/// of an over-share server is inside a frame to its client).
pub const RETRY: Duration = Duration::from_millis(20);

/// One server as the rebalancer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLoad {
    /// Open tunnels, not counting those already closing.
    pub open: u32,
    /// Of `open`, the tunnels that can be shed now (at a frame boundary to the client).
    pub sheddable: u32,
    /// Effective weight (0 is read as 1).
    pub weight: u32,
    /// Usable for new tunnels (health, not removed).
    pub usable: bool,
}

/// Settings (`[websocket] rebalance_rate`, `rebalance_tolerance`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Tunnels closed per second at most (0 is read as 1).
    pub rate: u32,
    /// Percent above the fair share tolerated.
    pub tolerance: u32,
}

/// What to do now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// `(server, count)`: close `count` of the server's oldest open tunnels now.
    pub shed: Vec<(usize, u32)>,
    /// Call [`Rebalancer::decide`] again at this instant (None: rebalancing is off).
    pub next: Option<Instant>,
    /// An episode ended: log it once and count it.
    pub ended: Option<Episode>,
}

/// Summary of one rebalance episode, for the log line and `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    /// Tunnels closed, per server index.
    pub closed: Vec<u32>,
}

impl Episode {
    /// Tunnels closed in all.
    pub fn total(&self) -> u64 {
        self.closed.iter().map(|&n| u64::from(n)).sum()
    }
}

#[derive(Clone, Debug)]
struct Active {
    /// Usable total at the start: limits are computed against it.
    total: u64,
    /// Tunnels still to close, per server.
    quota: Vec<u32>,
    closed: Vec<u32>,
}

/// Rebalancing state of the WebSocket group.
#[derive(Clone, Debug)]
pub struct Rebalancer {
    params: Params,
    tokens: f64,
    refilled: Option<Instant>,
    episode: Option<Active>,
    quiet_until: Option<Instant>,
    closed_total: u64,
}

impl Rebalancer {
    /// Starts idle with a full bucket.
    pub fn new(params: Params) -> Rebalancer {
        Rebalancer {
            params,
            tokens: burst(params.rate),
            refilled: None,
            episode: None,
            quiet_until: None,
            closed_total: 0,
        }
    }

    /// Applies reloaded settings (an episode in progress keeps its plan).
    pub fn set_params(&mut self, params: Params) {
        self.params = params;
        self.tokens = self.tokens.min(burst(params.rate));
    }

    /// Tunnels closed by rebalancing since start (for `/metrics`).
    pub fn closed_total(&self) -> u64 {
        self.closed_total
    }

    /// An episode is in progress.
    pub fn active(&self) -> bool {
        self.episode.is_some()
    }

    /// Decides at `now` from the current tunnel counts. `draining`: the proxy is
    /// draining, never rebalance.
    pub fn decide(&mut self, servers: &[ServerLoad], draining: bool, now: Instant) -> Decision {
        self.refill(now);
        let mut out = Decision::default();
        if draining {
            out.ended = self.end(now);
            return out;
        }
        if self
            .episode
            .as_ref()
            .is_some_and(|e| e.quota.len() != servers.len())
        {
            out.ended = self.end(now);
        }
        if self.episode.is_none() && self.quiet_until.is_none_or(|t| now >= t) {
            self.episode = self.plan(servers);
        }
        let Some(ep) = self.episode.as_mut() else {
            out.next = Some(now + CHECK_INTERVAL);
            return out;
        };
        let (total, tol) = (ep.total, self.params.tolerance);
        let weights = usable_weight(servers);
        for (i, s) in servers.iter().enumerate() {
            let over = s.usable && s.open > limit(total, s.weight, weights, tol);
            if !over {
                ep.quota[i] = 0; // within tolerance (or gone): stop shedding there
            }
        }
        let mut avail: Vec<u32> = servers.iter().map(|s| s.sheddable).collect();
        while self.tokens >= 1.0 {
            let Some(i) = (0..servers.len())
                .filter(|&i| ep.quota[i] > 0 && avail[i] > 0)
                .max_by_key(|&i| (ep.quota[i], std::cmp::Reverse(i)))
            else {
                break;
            };
            let n = ep.quota[i].min(self.tokens as u32).min(avail[i]);
            avail[i] -= n;
            ep.quota[i] -= n;
            ep.closed[i] += n;
            self.tokens -= f64::from(n);
            self.closed_total += u64::from(n);
            out.shed.push((i, n));
        }
        if ep.quota.iter().all(|&q| q == 0) {
            out.ended = self.end(now);
            out.next = Some(now + SETTLE);
        } else if self.tokens >= 1.0 {
            // Tokens left over: the rest of the plan waits for sheddable tunnels.
            out.next = Some(now + RETRY);
        } else {
            let wait = (1.0 - self.tokens).max(0.0) / f64::from(self.params.rate.max(1));
            out.next = Some(now + Duration::from_secs_f64(wait));
        }
        out
    }

    fn refill(&mut self, now: Instant) {
        let rate = f64::from(self.params.rate.max(1));
        if let Some(t) = self.refilled {
            let secs = now.saturating_duration_since(t).as_secs_f64();
            self.tokens = (self.tokens + secs * rate).min(burst(self.params.rate));
        }
        self.refilled = Some(now);
    }

    fn end(&mut self, now: Instant) -> Option<Episode> {
        let ep = self.episode.take()?;
        self.quiet_until = Some(now + SETTLE);
        (ep.closed.iter().any(|&n| n > 0)).then_some(Episode { closed: ep.closed })
    }

    /// The plan of a new episode, or None when no rebalancing is needed.
    fn plan(&self, servers: &[ServerLoad]) -> Option<Active> {
        let weights = usable_weight(servers);
        if weights == 0 {
            return None;
        }
        let total: u64 = servers
            .iter()
            .filter(|s| s.usable)
            .map(|s| u64::from(s.open))
            .sum();
        let tol = self.params.tolerance;
        let mut quota = vec![0u32; servers.len()];
        let (mut excess, mut deficit) = (0u64, 0u64);
        for (i, s) in servers.iter().enumerate().filter(|(_, s)| s.usable) {
            let w = u64::from(s.weight.max(1));
            quota[i] = s.open.saturating_sub(limit(total, s.weight, weights, tol));
            excess += u64::from(quota[i]);
            deficit += (total * w)
                .div_ceil(weights)
                .saturating_sub(u64::from(s.open));
        }
        let mut needed = excess.min(deficit);
        if needed == 0 {
            return None;
        }
        // Take the needed tunnels from the most-over servers first.
        let mut order: Vec<usize> = (0..servers.len()).filter(|&i| quota[i] > 0).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(quota[i]));
        for i in order {
            let take = u64::from(quota[i]).min(needed);
            quota[i] = take as u32;
            needed -= take;
        }
        Some(Active {
            total,
            closed: vec![0; servers.len()],
            quota,
        })
    }
}

fn burst(rate: u32) -> f64 {
    f64::from((rate / 10).max(1))
}

fn usable_weight(servers: &[ServerLoad]) -> u64 {
    servers
        .iter()
        .filter(|s| s.usable)
        .map(|s| u64::from(s.weight.max(1)))
        .sum()
}

/// Fair share plus tolerance, rounded down.
fn limit(total: u64, weight: u32, weights: u64, tolerance: u32) -> u32 {
    let w = u64::from(weight.max(1));
    let num = total * w * (100 + u64::from(tolerance));
    (num / (100 * weights.max(1))).min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests;
