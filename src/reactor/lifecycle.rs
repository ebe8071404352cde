//! Process lifecycle: graceful drain (SIGTERM/SIGINT), hot reload (SIGHUP).
//!
//! Shutdown delay (`[frontend] shutdown_delay`, for Kubernetes): on SIGTERM `/readyz`
//! answers 503 at once while sluice keeps accepting and serving for that long, so the
//! endpoint is removed from Services before the listener closes; then the drain below.
//!
//! Drain: stop accepting; idle keep-alive clients are closed at once; requests in flight
//! finish and their response carries `Connection: close`; WebSocket tunnels are sent
//! Close 1001 at a frame boundary, spread over the first half of `drain_timeout` so
//! thousands of clients do not reconnect elsewhere in the same millisecond; the process
//! exits when no client is left or when `drain_timeout` runs out. A second signal exits
//! at once.
//!
//! Reload: the file is re-read and validated; an invalid file is logged and the running
//! configuration stays. Otherwise groups, servers, weights, pool sizes, timeouts and
//! algorithms are applied in place. Servers are matched by name and address: a kept
//! server keeps its pool and health state; a removed one stops receiving new work, its
//! idle connections close and busy ones finish their exchange; open tunnels and
//! in-flight requests are untouched. The listeners cannot move without a restart.
//!
//! Reload on change (`[frontend] reload_on_change`): the reactor that receives the
//! process's signals stats the file every 2 s (`watch.rs` says whether it changed)
//! and, when it did, does what SIGHUP does: reloads, and has the other workers reload.

use super::Reactor;
use crate::config::{self, Config};
use crate::group::SrvId;
use crate::session::{Drain, Phase};
use crate::timer::Owner;
use crate::token::CRef;
use crate::tunnel::Closes;
use log::{error, info, warn};
use protocol::ws::close::GOING_AWAY;
use rand::Rng;
use std::time::Duration;

impl Reactor {
    /// A signal arrived through the loop.
    pub(crate) fn on_signal(&mut self, sig: i32) {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        for peer in self.peers() {
            match sig {
                SIGHUP => peer.reload(),
                SIGUSR1 => peer.reopen_logs(),
                _ if self.stopping() => peer.stop(),
                _ => peer.drain(),
            }
        }
        match sig {
            SIGHUP => self.reload(),
            SIGUSR1 => self.access.reopen(),
            SIGTERM | SIGINT if self.stopping() => {
                warn!(
                    "second stop signal: exiting now with {} clients open",
                    self.clients.len()
                );
                self.stop_now();
            }
            SIGTERM | SIGINT => self.shutdown(),
            _ => {}
        }
    }

    /// True once a drain has nothing left to wait for.
    pub(crate) fn drained(&self) -> bool {
        self.draining && self.clients.is_empty()
    }

    /// A shutdown (after `shutdown_delay`) or a drain has begun.
    pub(crate) fn stopping(&self) -> bool {
        self.draining || self.shutdown_until.is_some()
    }

    /// SIGTERM: with a `shutdown_delay`, readiness fails now and the drain starts when
    /// the delay is over; without one, the drain starts now.
    pub fn shutdown(&mut self) {
        if self.stopping() {
            return;
        }
        let delay = self.cfg.frontend.shutdown_delay;
        if delay.is_zero() {
            self.begin_drain();
            return;
        }
        info!("shutting down: /readyz answers 503; still serving for {delay:?}, then draining");
        self.shutdown_until = Some(self.now + delay);
        self.set_reactor_deadline();
    }

    /// Starts a graceful drain.
    pub fn begin_drain(&mut self) {
        if self.draining {
            return;
        }
        self.shutdown_until = None;
        let now = self.now;
        let timeout = self.cfg.frontend.drain_timeout;
        info!(
            "draining: no new connections; {} clients open; exiting when they are done or in {timeout:?}",
            self.clients.len()
        );
        self.draining = true;
        self.close_listener();
        let window = timeout / 2;
        let mut idle = Vec::new();
        for (i, c) in self.clients.iter() {
            match c.phase.on_drain(c.rbuf.is_some() || c.wbuf.is_some()) {
                Drain::Close => idle.push(i),
                Drain::Tunnel => {
                    let offset =
                        Duration::from_micros(self.rng.gen_range(0..=window.as_micros() as u64));
                    self.drain_tunnels.push((now + offset, c.cref(i)));
                }
                Drain::Finish => {}
            }
        }
        for i in idle {
            self.close_client(i);
        }
        // Soonest last, so pop() takes it.
        self.drain_tunnels.sort_by_key(|t| std::cmp::Reverse(t.0));
        for g in 0..self.groups.len() {
            for s in 0..self.groups[g].servers.len() {
                self.close_idle(SrvId {
                    group: g,
                    server: s,
                });
            }
        }
        self.drain_until = Some(now + timeout);
        self.set_reactor_deadline();
    }

    fn set_reactor_deadline(&mut self) {
        let next_tunnel = self.drain_tunnels.last().map(|(at, _)| *at);
        let watch = self.watch.as_ref().map(|w| w.next_check());
        let at = [next_tunnel, self.drain_until, self.shutdown_until, watch]
            .into_iter()
            .flatten()
            .min();
        self.reactor_deadline
            .set(at, Owner::Reactor, &mut self.timers);
    }

    /// The reactor-level deadline: close due tunnels, or end an overdue drain.
    pub(crate) fn on_reactor_timeout(&mut self) {
        let now = self.now;
        if self.watch.as_ref().is_some_and(|w| now >= w.next_check()) {
            self.check_config_file();
        }
        if self.shutdown_until.is_some_and(|d| now >= d) {
            self.begin_drain();
            return;
        }
        if self.drain_until.is_some_and(|d| now >= d) {
            warn!(
                "drain timeout: exiting with {} clients still open",
                self.clients.len()
            );
            self.stop_now();
            return;
        }
        while self.drain_tunnels.last().is_some_and(|(at, _)| *at <= now) {
            let Some((_, c)) = self.drain_tunnels.pop() else {
                break;
            };
            self.close_tunnel_for_drain(c);
        }
        self.set_reactor_deadline();
    }

    fn close_tunnel_for_drain(&mut self, c: CRef) {
        if !self.client_valid(c) || !matches!(self.clients[c.index].phase, Phase::Tunnel(_)) {
            return;
        }
        let both = Closes {
            to_client: Some(GOING_AWAY),
            to_backend: Some(GOING_AWAY),
        };
        let why = match self.draining {
            true => "server shutting down",
            false => "backend address removed",
        };
        self.finish_tunnel(c.index, both, why);
        self.drive_client(c.index);
    }

    /// Starts or stops watching the configuration file as `reload_on_change` says.
    /// Only the reactor that receives signals watches: it forwards reloads to the
    /// other workers as it does SIGHUP.
    pub(crate) fn sync_watch(&mut self) {
        let path = self.config_path.as_ref().filter(|_| self.signals.is_some());
        match path {
            Some(p) if self.cfg.frontend.reload_on_change => {
                if self.watch.is_none() {
                    let first = crate::watch::stamp(std::path::Path::new(p)).ok();
                    self.watch = Some(crate::watch::Watch::new(first, self.now));
                    info!("watching {p} for changes (reload_on_change)");
                }
            }
            _ => self.watch = None,
        }
        self.set_reactor_deadline();
    }

    /// The watch timer: stat the file, reload (here and in the other workers) when
    /// it changed.
    fn check_config_file(&mut self) {
        let (Some(path), Some(watch)) = (self.config_path.clone(), self.watch.as_mut()) else {
            return;
        };
        let seen = crate::watch::stamp(std::path::Path::new(&path)).ok();
        if !watch.observe(seen, self.now) {
            return;
        }
        info!("{path} changed: reloading (reload_on_change)");
        for peer in self.peers() {
            peer.reload();
        }
        self.reload();
    }

    /// Re-reads the configuration file and applies it, or keeps the running one.
    pub fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            warn!("SIGHUP: no configuration file to reload");
            return;
        };
        match config::load(&path) {
            Ok(new) => {
                self.apply_config(new);
                info!("configuration reloaded from {path}");
            }
            Err(e) => error!("reload failed, keeping the running configuration: {e}"),
        }
    }

    /// Applies a validated configuration in place (see the module docs).
    pub fn apply_config(&mut self, new: Config) {
        if new.frontend.listen != self.cfg.frontend.listen {
            warn!(
                "[frontend] listen address changed ({} -> {}): restart sluice to move the listener",
                self.cfg.frontend.listen, new.frontend.listen
            );
        }
        if self.admin_addr().is_some() && new.admin != self.cfg.admin {
            warn!("[admin] changed: restart sluice to move the admin listener");
        }
        self.dns_reload(&new);
        for g in 0..self.groups.len() {
            let gcfg = self.discovery.expand(g);
            self.apply_group(g, &gcfg);
        }
        self.dns_flush();
        #[cfg(feature = "tls")]
        self.tls_reload(&new);
        self.limits.max_head_bytes = new.frontend.max_header_bytes;
        self.limits.max_body_bytes = new.frontend.max_body_bytes;
        if log::max_level() != new.log.level {
            log::set_max_level(new.log.level);
        }
        self.reconfigure_client_limits(new.frontend.max_connections_per_client);
        let (old, log) = (&self.cfg.log, &new.log);
        if (&old.access_log, old.access_log_format) != (&log.access_log, log.access_log_format) {
            // A new destination or format: the lines buffered so far go to the old one
            // (dropping it flushes them).
            match super::open_access_log(&new) {
                Ok(a) => {
                    self.access = a;
                    // The turn's wall clock was not read while the log was off.
                    self.wall = std::time::SystemTime::now();
                }
                Err(e) => error!("{e}; keeping the running access log"),
            }
        }
        self.cfg = new;
        self.reconfigure_rebalance();
        self.sync_watch();
    }

    /// Applies one group's configuration in place (reload, or a DNS change): kept servers
    /// keep their state, new ones open their pools and probes, removed ones stop probing
    /// and close their idle connections. Returns the removed servers.
    pub(crate) fn apply_group(&mut self, g: usize, gcfg: &config::Group) -> Vec<usize> {
        let removed = self.groups[g].reconfigure(gcfg, self.now);
        for &s in &removed {
            let srv = SrvId {
                group: g,
                server: s,
            };
            self.groups[g].servers[s]
                .probe_timer
                .set(None, Owner::Health(g, s), &mut self.timers);
            self.close_idle(srv);
        }
        for s in 0..self.groups[g].servers.len() {
            let srv = SrvId {
                group: g,
                server: s,
            };
            if !self.groups[g].servers[s].removed {
                self.refill_pool(srv);
                self.schedule_probe(srv);
            }
        }
        removed
    }

    /// Closes these tunnels with 1001 at `at` (or at a frame boundary after), unless they
    /// end before: the servers they go to were removed.
    pub(crate) fn schedule_tunnel_closes(&mut self, tunnels: Vec<CRef>, at: std::time::Instant) {
        if tunnels.is_empty() {
            return;
        }
        self.drain_tunnels
            .extend(tunnels.into_iter().map(|c| (at, c)));
        self.drain_tunnels.sort_by_key(|t| std::cmp::Reverse(t.0));
        self.set_reactor_deadline();
    }

    /// Exits the loop at its next turn.
    pub(crate) fn stop_now(&mut self) {
        self.stop_flag();
    }
}
