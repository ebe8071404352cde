//! Process lifecycle: graceful drain (SIGTERM/SIGINT), hot reload (SIGHUP).
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
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        for peer in self.peers() {
            match sig {
                SIGHUP => peer.reload(),
                _ if self.draining => peer.stop(),
                _ => peer.drain(),
            }
        }
        match sig {
            SIGHUP => self.reload(),
            SIGTERM | SIGINT if self.draining => {
                warn!(
                    "second stop signal: exiting now with {} clients open",
                    self.clients.len()
                );
                self.stop_now();
            }
            SIGTERM | SIGINT => self.begin_drain(),
            _ => {}
        }
    }

    /// True once a drain has nothing left to wait for.
    pub(crate) fn drained(&self) -> bool {
        self.draining && self.clients.is_empty()
    }

    /// Starts a graceful drain.
    pub fn begin_drain(&mut self) {
        if self.draining {
            return;
        }
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
        let at = match (next_tunnel, self.drain_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.reactor_deadline
            .set(at, Owner::Reactor, &mut self.timers);
    }

    /// The reactor-level deadline: close due tunnels, or end an overdue drain.
    pub(crate) fn on_reactor_timeout(&mut self) {
        let now = self.now;
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
        self.finish_tunnel(c.index, both, "server shutting down");
        self.drive_client(c.index);
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
        let now = self.now;
        if new.frontend.listen != self.cfg.frontend.listen {
            warn!(
                "[frontend] listen address changed ({} -> {}): restart sluice to move the listener",
                self.cfg.frontend.listen, new.frontend.listen
            );
        }
        if self.admin_addr().is_some() && new.admin != self.cfg.admin {
            warn!("[admin] changed: restart sluice to move the admin listener");
        }
        let groups = [new.http.clone(), new.websocket.clone()];
        for (g, gcfg) in groups.iter().enumerate() {
            let removed = self.groups[g].reconfigure(gcfg, now);
            for s in removed {
                let srv = SrvId {
                    group: g,
                    server: s,
                };
                self.groups[g].servers[s].probe_timer.set(
                    None,
                    Owner::Health(g, s),
                    &mut self.timers,
                );
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
        }
        #[cfg(feature = "tls")]
        self.tls_reload(&new);
        self.limits.max_head_bytes = new.frontend.max_header_bytes;
        self.limits.max_body_bytes = new.frontend.max_body_bytes;
        if log::max_level() != new.log.level {
            log::set_max_level(new.log.level);
        }
        self.cfg = new;
    }

    /// Exits the loop at its next turn.
    pub(crate) fn stop_now(&mut self) {
        self.stop_flag();
    }
}
