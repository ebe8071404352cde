//! Server groups (`[http]`, `[websocket]`): their servers, pools and balancer.
//!
//! A group owns its servers in configuration order; a server is addressed by
//! `SrvId { group, server }` everywhere else. Choosing a server is pure bookkeeping
//! (health says who is usable, the balancer picks): no IO happens here.
//!
//! Passive ejection is capped and never empties the group ([`admit`]: a group
//! whose only usable servers are ejected ones is in "panic" and uses them
//! anyway, [`Group::panic`], [`Group::panic_picks`]). Slow start ramps a server's
//! weight after it becomes usable again (see `health`); servers a reload adds
//! (or adds back) start their ramp at the group's next pick after
//! [`Group::reset_balancer`], or at once through [`Group::begin_slow_start`].

pub use admit::{admit, Admission, Standing};

use crate::balance::{Balancer, Candidate};
use crate::config::{self, ServerConfig};
use crate::health::{HealthParams, ServerHealth};
use crate::pool::{Limits, Pool};
use log::info;
use rand::Rng;
use std::time::{Duration, Instant};

mod admit;

/// Index of the `[http]` group in `Reactor::groups`.
pub const HTTP: usize = 0;
/// Index of the `[websocket]` group in `Reactor::groups`.
pub const WEBSOCKET: usize = 1;

/// Delay between the first probes of consecutive servers at start-up.
const FIRST_PROBE_SPREAD: Duration = Duration::from_millis(25);

/// A server's address in the reactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrvId {
    /// Group index (`HTTP` or `WEBSOCKET`).
    pub group: usize,
    /// Server index within the group.
    pub server: usize,
}

/// Per-server counters, and what the status page says about the server's failures.
#[derive(Default, Debug, Clone, Copy)]
pub struct ServerStats {
    /// Requests sent to this server.
    pub requests: u64,
    /// Responses by class: 1xx..5xx at indexes 1..=5.
    pub responses: [u64; 6],
    /// Connect failures, resets and timeouts.
    pub failures: u64,
    /// Response bytes sent to clients.
    pub bytes_out: u64,
    /// Failures plus 5xx responses not already counted as failures (`fail_on_5xx`):
    /// each failed request once (status page charts).
    pub errors: u64,
    /// Response times of this server's requests (status page charts).
    pub latency: crate::histogram::Histogram,
    /// The last failure (a failed probe, or the reason a passive failure names) and
    /// when it happened.
    pub last_failure: Option<(Instant, Failure)>,
    /// When the active-check verdict last changed; `None`: as it was at start.
    pub verdict_since: Option<Instant>,
}

/// Why a server last failed, as the status page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// An active health check failed.
    Probe(crate::health::FailReason),
    /// A proxied request failed: the reason its passive-failure log line names.
    Passive(&'static str),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Probe(r) => write!(f, "health check: {r}"),
            Failure::Passive(why) => f.write_str(why),
        }
    }
}

/// A configured server at run time.
pub struct Server {
    /// Its configuration.
    pub cfg: ServerConfig,
    /// Its connection pool.
    pub pool: Pool,
    /// Active and passive health.
    pub health: ServerHealth,
    /// Requests in flight plus open tunnels (least-connections, power-of-two).
    pub active: u32,
    /// Counters.
    pub stats: ServerStats,
    /// When its next health probe starts.
    pub probe_timer: crate::timer::Deadline,
    /// Removed by a reload: no new work; kept in place so indices stay valid.
    pub removed: bool,
}

/// A group at run time.
pub struct Group {
    /// Its configuration.
    pub cfg: config::Group,
    /// Servers in configuration order.
    pub servers: Vec<Server>,
    balancer: Balancer,
    candidates: Vec<Candidate>,
    standings: Vec<Standing>,
    /// Per server: in service (not removed) at the last reload seen.
    members: Vec<bool>,
    /// Servers a reload added (or added back) whose slow start begins at the next pick.
    ramp_pending: Vec<usize>,
    panic_picks: u64,
    /// Response times of the group's requests (admin metrics).
    pub latency: crate::histogram::Histogram,
}

/// Health parameters of a group's configuration.
pub fn health_params(cfg: &config::Group) -> HealthParams {
    HealthParams {
        enabled: cfg.enable_health_check,
        interval: cfg.health_check_interval,
        timeout: cfg.health_check_timeout,
        rise: cfg.rise,
        fall: cfg.fall,
        max_fails: cfg.max_fails,
        fail_timeout: cfg.fail_timeout,
    }
}

impl Server {
    /// Its pool limits.
    pub fn limits(&self) -> Limits {
        Limits {
            min: self.cfg.min_workers,
            max: self.cfg.max_workers,
            queue: self.cfg.buffer_size,
        }
    }
}

impl Group {
    /// Builds the run-time group; every server starts up (see `health`).
    pub fn new(cfg: &config::Group, now: Instant) -> Group {
        let params = health_params(cfg);
        let servers: Vec<Server> = cfg
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let spread = FIRST_PROBE_SPREAD * i as u32;
                let mut health = ServerHealth::new(params, s.weight, now, spread);
                health.set_slow_start(s.slow_start);
                Server {
                    cfg: s.clone(),
                    pool: Pool::default(),
                    health,
                    active: 0,
                    stats: ServerStats::default(),
                    probe_timer: crate::timer::Deadline::default(),
                    removed: false,
                }
            })
            .collect();
        Group {
            balancer: Balancer::new(cfg.algorithm, servers.len()),
            candidates: Vec::with_capacity(servers.len()),
            standings: Vec::with_capacity(servers.len()),
            members: vec![true; servers.len()],
            ramp_pending: Vec::new(),
            panic_picks: 0,
            latency: Default::default(),
            cfg: cfg.clone(),
            servers,
        }
    }

    /// Picks a usable server not in `tried` (a bit per server index), or None.
    /// Ejected servers are used anyway as [`admit`] decides (counted in
    /// [`Group::panic_picks`]); servers down by active checks never are.
    pub fn pick(&mut self, now: Instant, tried: u64, rng: &mut impl Rng) -> Option<usize> {
        for s in self.ramp_pending.drain(..) {
            if let Some(server) = self.servers.get_mut(s) {
                server.health.begin_slow_start(now);
            }
        }
        self.standings.clear();
        self.candidates.clear();
        let mut ejected = false;
        for (i, s) in self.servers.iter().enumerate() {
            let standing = standing(s, now);
            ejected |= matches!(standing, Standing::Ejected { .. });
            self.standings.push(standing);
            self.candidates.push(Candidate {
                usable: !is_tried(i, tried) && standing.admitted(),
                weight: s.health.effective_weight(now).max(1),
                load: s.active,
                ramp: s.health.ramp_permille(now),
            });
        }
        if ejected {
            admit(&mut self.standings, self.cfg.max_ejected_percent, tried);
            let both = self.candidates.iter_mut().zip(&self.standings);
            for (i, (c, standing)) in both.enumerate() {
                c.usable = !is_tried(i, tried) && standing.admitted();
            }
        }
        let chosen = self.balancer.pick(&self.candidates, rng)?;
        if self.standings[chosen] == Standing::Released {
            self.panic_picks += 1;
        }
        Some(chosen)
    }

    /// Applies a reloaded group configuration in place. Servers are matched by name and
    /// address: a kept server keeps its pool, health and counters and takes its new
    /// settings; a new one is appended (indices held by connections, queues and timers
    /// stay valid, so nothing is ever removed from the list); one that is gone is
    /// flagged `removed` (no picks, probes or refills; its connections finish). A
    /// removed server that comes back is reused. Returns the servers removed by this
    /// reload, for the caller to stop their probes and close their idle connections.
    pub fn reconfigure(&mut self, cfg: &config::Group, now: Instant) -> Vec<usize> {
        let params = health_params(cfg);
        let mut keep = vec![false; self.servers.len()];
        for scfg in &cfg.servers {
            let found = self
                .servers
                .iter()
                .position(|s| s.cfg.name == scfg.name && s.cfg.addr == scfg.addr);
            match found {
                Some(s) => {
                    keep[s] = true;
                    let server = &mut self.servers[s];
                    if server.removed {
                        info!("[{}] {} {} added back", cfg.kind, scfg.name, scfg.addr);
                    }
                    server.removed = false;
                    server.cfg = scfg.clone();
                    if let Some(t) = server.health.set_params(params, scfg.weight) {
                        info!(
                            "[{}] {} {}: health checks off, now {:?}",
                            cfg.kind, scfg.name, scfg.addr, t.to
                        );
                    }
                }
                None => {
                    info!("[{}] {} {} added", cfg.kind, scfg.name, scfg.addr);
                    keep.push(true);
                    self.servers.push(Server {
                        cfg: scfg.clone(),
                        pool: Default::default(),
                        health: ServerHealth::new(params, scfg.weight, now, Duration::ZERO),
                        active: 0,
                        stats: ServerStats::default(),
                        probe_timer: Default::default(),
                        removed: false,
                    });
                }
            }
        }
        if cfg.algorithm != self.cfg.algorithm {
            info!(
                "[{}] algorithm {} -> {}",
                cfg.kind, self.cfg.algorithm, cfg.algorithm
            );
        }
        self.cfg = cfg.clone();
        let mut removed = Vec::new();
        for (s, kept) in keep.iter().enumerate() {
            let server = &mut self.servers[s];
            if !kept && !server.removed {
                info!(
                    "[{}] {} {} removed: no new work, connections drain",
                    cfg.kind, server.cfg.name, server.cfg.addr
                );
                server.removed = true;
                removed.push(s);
            }
        }
        self.reset_balancer();
        removed
    }

    /// Rebuilds the balancer after the algorithm or the server list changed (reload).
    /// What admission decides at `now` for a new request: whether the group is
    /// in panic (serving only from passively ejected servers) and how many
    /// ejected servers are in use anyway. For the status page and `/metrics`.
    pub fn admission(&self, now: Instant) -> Admission {
        let mut standings: Vec<Standing> = self.servers.iter().map(|s| standing(s, now)).collect();
        admit(&mut standings, self.cfg.max_ejected_percent, 0)
    }

    /// The group serves only from passively ejected servers at `now`.
    pub fn panic(&self, now: Instant) -> bool {
        self.admission(now).panic
    }

    /// Picks that went to a passively ejected server (the cap or panic).
    pub fn panic_picks(&self) -> u64 {
        self.panic_picks
    }

    /// Starts server `s`'s slow-start ramp at `now` (a reload added it, or added
    /// it back). `reset_balancer` does this at the next pick when not called.
    pub fn begin_slow_start(&mut self, s: usize, now: Instant) {
        self.ramp_pending.retain(|&p| p != s);
        if let Some(server) = self.servers.get_mut(s) {
            server.health.begin_slow_start(now);
        }
    }

    /// Rebuilds the balancer after the algorithm or the server list changed
    /// (reload), applies each server's `slow_start` setting, and marks servers
    /// that came into service since the last reload (added, or added back) to
    /// start their slow start at the next pick.
    pub fn reset_balancer(&mut self) {
        self.balancer
            .set_algorithm(self.cfg.algorithm, self.servers.len());
        self.candidates = Vec::with_capacity(self.servers.len());
        self.standings = Vec::with_capacity(self.servers.len());
        for (i, s) in self.servers.iter_mut().enumerate() {
            s.health.set_slow_start(s.cfg.slow_start);
            let was = self.members.get(i).copied().unwrap_or(false);
            if !s.removed && !was && !self.ramp_pending.contains(&i) {
                self.ramp_pending.push(i);
            }
        }
        self.members = self.servers.iter().map(|s| !s.removed).collect();
    }
}

fn is_tried(i: usize, tried: u64) -> bool {
    i < 64 && tried & (1 << i) != 0
}

/// How admission sees server `s` at `now`.
fn standing(s: &Server, now: Instant) -> Standing {
    if s.removed {
        Standing::Removed
    } else if s.health.verdict() == crate::health::Verdict::Down {
        Standing::Down
    } else if s.health.is_ejected(now) {
        Standing::Ejected {
            last_failure: s.health.last_passive_failure(),
        }
    } else {
        Standing::Usable
    }
}

#[cfg(test)]
mod tests;
