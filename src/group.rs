//! Server groups (`[http]`, `[websocket]`): their servers, pools and balancer.
//!
//! A group owns its servers in configuration order; a server is addressed by
//! `SrvId { group, server }` everywhere else. Choosing a server is pure bookkeeping
//! (health says who is usable, the balancer picks): no IO happens here.

use crate::balance::{Balancer, Candidate};
use crate::config::{self, ServerConfig};
use crate::health::{HealthParams, ServerHealth};
use crate::pool::{Limits, Pool};
use rand::Rng;
use std::time::{Duration, Instant};

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

/// Per-server counters.
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
            .map(|(i, s)| Server {
                cfg: s.clone(),
                pool: Pool::default(),
                health: ServerHealth::new(params, s.weight, now, FIRST_PROBE_SPREAD * i as u32),
                active: 0,
                stats: ServerStats::default(),
                probe_timer: crate::timer::Deadline::default(),
                removed: false,
            })
            .collect();
        Group {
            balancer: Balancer::new(cfg.algorithm, servers.len()),
            candidates: Vec::with_capacity(servers.len()),
            latency: Default::default(),
            cfg: cfg.clone(),
            servers,
        }
    }

    /// Picks a usable server not in `tried` (a bit per server index), or None.
    pub fn pick(&mut self, now: Instant, tried: u64, rng: &mut impl Rng) -> Option<usize> {
        self.candidates.clear();
        for (i, s) in self.servers.iter().enumerate() {
            let excluded = i < 64 && tried & (1 << i) != 0;
            self.candidates.push(Candidate {
                usable: !excluded && !s.removed && s.health.is_usable(now),
                weight: s.health.effective_weight(now).max(1),
                load: s.active,
            });
        }
        self.balancer.pick(&self.candidates, rng)
    }

    /// Rebuilds the balancer after the algorithm or the server list changed (reload).
    pub fn reset_balancer(&mut self) {
        self.balancer
            .set_algorithm(self.cfg.algorithm, self.servers.len());
        self.candidates = Vec::with_capacity(self.servers.len());
    }
}
