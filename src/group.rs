//! Server groups (`[http]`, `[websocket]`): their servers, pools and balancer.
//!
//! A group owns its servers in configuration order; a server is addressed by
//! `SrvId { group, server }` everywhere else. Choosing a server is pure bookkeeping
//! (health says who is usable, the balancer picks): no IO happens here.

use crate::balance::{Balancer, Candidate};
use crate::config::{self, ServerConfig};
use crate::health::{HealthParams, ServerHealth};
use crate::pool::{Limits, Pool};
use log::info;
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
                        info!("{} {} added back", scfg.name, scfg.addr);
                    }
                    server.removed = false;
                    server.cfg = scfg.clone();
                    if let Some(t) = server.health.set_params(params, scfg.weight) {
                        info!(
                            "{} {}: health checks off, now {:?}",
                            scfg.name, scfg.addr, t.to
                        );
                    }
                }
                None => {
                    info!("{} {} added", scfg.name, scfg.addr);
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
        self.cfg = cfg.clone();
        let mut removed = Vec::new();
        for (s, kept) in keep.iter().enumerate() {
            let server = &mut self.servers[s];
            if !kept && !server.removed {
                info!(
                    "{} {} removed: no new work, connections drain",
                    server.cfg.name, server.cfg.addr
                );
                server.removed = true;
                removed.push(s);
            }
        }
        self.reset_balancer();
        removed
    }

    /// Rebuilds the balancer after the algorithm or the server list changed (reload).
    pub fn reset_balancer(&mut self) {
        self.balancer
            .set_algorithm(self.cfg.algorithm, self.servers.len());
        self.candidates = Vec::with_capacity(self.servers.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(servers: &str) -> config::Group {
        let text = format!("[http]\n{servers}");
        let no_dns = |_: &str, _: u16| Err("no names here".to_string());
        config::parse(&text, "test.ini", &no_dns)
            .expect("valid config")
            .http
    }

    fn names(g: &Group) -> Vec<(String, bool)> {
        let s = g.servers.iter();
        s.map(|s| (format!("{} {}", s.cfg.name, s.cfg.addr), s.removed))
            .collect()
    }

    #[test]
    fn reload_matches_servers_by_name_and_address() {
        let now = Instant::now();
        let a = "server1_addr = 127.0.0.1:1\nserver2_addr = 127.0.0.1:2\n";
        let mut g = Group::new(&cfg(a), now);
        g.servers[0].stats.requests = 5;
        // server2 moves to a new address: the old one is removed, the new one added;
        // server1 keeps its counters.
        let b = "server1_addr = 127.0.0.1:1\nserver2_addr = 127.0.0.1:3\n";
        assert_eq!(g.reconfigure(&cfg(b), now), vec![1]);
        assert_eq!(
            names(&g),
            vec![
                ("server1 127.0.0.1:1".into(), false),
                ("server2 127.0.0.1:2".into(), true),
                ("server2 127.0.0.1:3".into(), false),
            ]
        );
        assert_eq!(g.servers[0].stats.requests, 5, "kept, not rebuilt");
        // Removed servers get no picks.
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        for _ in 0..10 {
            assert_ne!(g.pick(now, 0, &mut rng), Some(1));
        }
        // Reloading the old list brings the removed server back in its old slot, and
        // removes the other; nothing is ever taken out of the list.
        assert_eq!(g.reconfigure(&cfg(a), now), vec![2]);
        assert_eq!(g.servers.len(), 3);
        assert!(!g.servers[1].removed && g.servers[2].removed);
        // Reloading the same list again removes nothing.
        assert!(g.reconfigure(&cfg(a), now).is_empty());
    }

    #[test]
    fn reload_applies_new_settings_to_kept_servers() {
        let now = Instant::now();
        let mut g = Group::new(&cfg("server1_addr = 127.0.0.1:1\n"), now);
        let b = "server1_addr = 127.0.0.1:1\nserver1_weight = 7\nserver1_max_workers = 9\n";
        g.reconfigure(&cfg(b), now);
        assert_eq!(g.servers[0].cfg.weight, 7);
        assert_eq!(g.servers[0].limits().max, 9);
    }
}
