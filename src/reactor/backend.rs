//! Backend connections, the IO half: opening them, watching idle ones, evicting and
//! closing them, and carrying out the pool's decisions on the sockets; passive health.

use super::Reactor;
use crate::backend::{idle_deadline, idle_expired, BState};
use crate::group::{Failure, SrvId};
use crate::reach::Verdict;
use crate::timer::Owner;
use crate::token::{BRef, CRef};
use log::{debug, warn};
use std::fmt::Write;
use std::io::Read;

impl Reactor {
    /// Opens `min_workers` connections to every usable HTTP server.
    pub(crate) fn start_pools(&mut self) {
        for s in 0..self.groups[crate::group::HTTP].servers.len() {
            self.refill_pool(SrvId {
                group: crate::group::HTTP,
                server: s,
            });
        }
    }

    /// Opens connections until the server has `min_workers` (if it is usable, and not
    /// while draining: connections opened then would carry nothing).
    pub(crate) fn refill_pool(&mut self, srv: SrvId) {
        if srv.group != crate::group::HTTP || self.draining {
            return;
        }
        let now = self.now;
        loop {
            let server = &self.groups[srv.group].servers[srv.server];
            if !server.pool.needs_refill(server.limits())
                || server.removed
                || server.cfg.send_proxy.is_some()
                || !server.health.is_usable(now)
            {
                return;
            }
            if !self.open_pooled(srv, false) {
                return;
            }
        }
    }

    /// Opens one more pooled connection; false when connect() failed at once.
    /// `for_request`: a request is waiting for it, so a failure counts against the
    /// server (passive health). A pool prefill (at start, or refilling to
    /// `min_workers`) carries no client traffic: its failures must not eject a server
    /// that merely started after sluice.
    pub(crate) fn open_pooled(&mut self, srv: SrvId, for_request: bool) -> bool {
        match self.connect_backend(srv, BState::Connecting) {
            Some(_) => {
                self.groups[srv.group].servers[srv.server].pool.opening();
                true
            }
            None => {
                if for_request {
                    self.passive_failure(srv, "connect failed");
                }
                false
            }
        }
    }

    /// Readiness on a backend socket.
    pub(crate) fn on_backend_event(&mut self, i: usize) {
        match &self.backends[i].state {
            BState::Connecting => match self.backends[i].connect_result() {
                None => {}
                Some(true) => self.on_connected(i),
                Some(false) => self.on_connect_failed(i, "connection refused"),
            },
            BState::Idle => self.check_idle(i),
            BState::Busy(c) | BState::Tunnel(c) => {
                let c = *c;
                if self.client_valid(c) {
                    self.drive_client(c.index);
                } else {
                    self.close_backend(i);
                }
            }
            BState::Probe { .. } => self.on_probe_event(i),
            #[cfg(feature = "tls")]
            BState::Handshake => self.tls_handshake_step(i),
            #[cfg(not(feature = "tls"))]
            BState::Handshake => {}
        }
        #[cfg(feature = "tls")]
        self.tls_backend_step(i);
    }

    fn on_connected(&mut self, i: usize) {
        // A TLS backend gets its ClientHello now; the connection is ready for a request
        // once the handshake is done, within the same connect deadline (`reactor/tls.rs`).
        #[cfg(feature = "tls")]
        if self.backends[i].sock.is_tls() {
            self.backends[i].state = BState::Handshake;
            self.tls_handshake_step(i);
            return;
        }
        self.connection_ready(i);
    }

    /// A connection is open (and its TLS handshake done): it goes to the client it was
    /// opened for, or to its pool.
    pub(crate) fn connection_ready(&mut self, i: usize) {
        self.reached(self.backends[i].srv, Ok(()));
        if !self.backends[i].pooled {
            match self.backends[i].owner.take() {
                Some(c) if self.client_valid(c) => self.dispatch(c.index, i),
                _ => self.close_backend(i),
            }
            return;
        }
        let srv = self.backends[i].srv;
        self.groups[srv.group].servers[srv.server].pool.connected();
        self.make_idle(i);
    }

    pub(crate) fn on_connect_failed(&mut self, i: usize, why: &'static str) {
        let srv = self.backends[i].srv;
        self.reached(srv, Err(why));
        let owner = self.backends[i].owner.take();
        self.close_backend(i);
        // Only a connection some request was waiting for counts against the server
        // (see `open_pooled`): a failed prefill is not client-visible.
        let waited = owner.is_some()
            || !self.groups[srv.group].servers[srv.server]
                .pool
                .queue()
                .is_empty();
        if waited {
            self.passive_failure(srv, why);
        }
        if let Some(c) = owner.filter(|c| self.client_valid(*c)) {
            self.reroute(c.index, why);
            return;
        }
        self.fail_queue_if_stranded(srv, why);
    }

    /// After a connection failure: if the server has no connection left that could
    /// serve its queue, every waiter is re-routed (or answered 502) now.
    pub(crate) fn fail_queue_if_stranded(&mut self, srv: SrvId, why: &'static str) {
        let pool = &mut self.groups[srv.group].servers[srv.server].pool;
        if !pool.stranded() {
            return;
        }
        for c in pool.take_queue() {
            if self.client_valid(c) {
                self.reroute(c.index, why);
            }
        }
    }

    /// Puts a connected backend in its pool's idle list and hands it to the oldest waiter.
    pub(crate) fn make_idle(&mut self, i: usize) {
        let srv = self.backends[i].srv;
        self.unmask_backend(i);
        let b = &mut self.backends[i];
        b.state = BState::Idle;
        b.idle_since = Some(self.now);
        let me = BRef {
            index: i,
            token: b.token,
        };
        self.groups[srv.group].servers[srv.server].pool.push_idle(i);
        // Bytes or EOF may have arrived before it became idle (the backend closing
        // it, or bytes past the response): look before a waiting request gets it.
        if self.backends[i].sock.readable {
            self.check_idle(i);
        }
        self.serve_queue(srv);
        // An eviction just now may leave waiters with no connection coming.
        self.serve_queue_fresh(srv);
        let still_idle = me
            .get(&self.backends)
            .is_some_and(|b| matches!(b.state, BState::Idle));
        if still_idle {
            self.set_idle_deadline(i);
        }
    }

    fn set_idle_deadline(&mut self, i: usize) {
        let b = &self.backends[i];
        let server = &self.groups[b.srv.group].servers[b.srv.server];
        let above_min = server.pool.above_min(server.limits());
        let at = idle_deadline(self.now, above_min, server.cfg.worker_timeout, b.ka_timeout);
        let token = b.token;
        self.backends[i]
            .deadline
            .set(at, Owner::Backend(token.0), &mut self.timers);
    }

    /// Hands idle connections to waiting requests, oldest request first.
    pub(crate) fn serve_queue(&mut self, srv: SrvId) {
        loop {
            let clients = &self.clients;
            let alive = |c: CRef| c.alive(clients);
            let pool = &mut self.groups[srv.group].servers[srv.server].pool;
            let Some((c, b)) = pool.next_waiter(alive) else {
                return;
            };
            self.dispatch(c.index, b);
        }
    }

    /// An event on an idle pooled connection: the backend closed it or sent stray
    /// bytes. Either way it can no longer carry a request: evict it.
    fn check_idle(&mut self, i: usize) {
        let b = &mut self.backends[i];
        if !b.sock.readable {
            return;
        }
        #[cfg(feature = "tls")]
        if b.sock.is_tls() {
            if let Some(why) = self.tls_idle_news(i) {
                self.evict_idle(i, why);
            }
            return;
        }
        let mut probe = [0u8; 64];
        let why = match b.sock.stream.read(&mut probe) {
            Ok(0) => "closed by the backend",
            Ok(_) => "unexpected bytes from the backend",
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                b.sock.readable = false;
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return,
            Err(_) => "reset by the backend",
        };
        self.evict_idle(i, why);
    }

    fn evict_idle(&mut self, i: usize, why: &str) {
        let srv = self.backends[i].srv;
        debug!(
            "evicting idle connection to {}: {why}",
            self.server_name(srv)
        );
        self.close_backend(i);
        self.refill_pool(srv);
    }

    /// Deadline on a backend: connect (and TLS handshake) timeout, idle shrink, keep-alive
    /// expiry or probe timeout.
    pub(crate) fn on_backend_timeout(&mut self, i: usize) {
        let srv = self.backends[i].srv;
        match self.backends[i].state {
            BState::Connecting => self.on_connect_failed(i, "connect timeout"),
            BState::Handshake => {
                #[cfg(feature = "tls")]
                self.tls_expired(i);
                self.on_connect_failed(i, "TLS handshake timeout");
            }
            BState::Idle => {
                let server = &self.groups[srv.group].servers[srv.server];
                let above_min = server.pool.above_min(server.limits());
                let b = &self.backends[i];
                if idle_expired(self.now, b.idle_since, above_min, b.ka_timeout) {
                    debug!(
                        "closing idle connection to {} (pool shrink)",
                        self.server_name(srv)
                    );
                    self.close_backend(i);
                    self.refill_pool(srv);
                } else {
                    self.set_idle_deadline(i);
                }
            }
            BState::Probe { .. } => self.on_probe_timeout(i),
            BState::Busy(_) | BState::Tunnel(_) => {}
        }
    }

    /// Counts a failure against a server (passive health) and logs an ejection.
    pub(crate) fn passive_failure(&mut self, srv: SrvId, why: &'static str) {
        let now = self.now;
        let name = self.server_name(srv);
        let server = &mut self.groups[srv.group].servers[srv.server];
        server.stats.failures += 1;
        server.stats.errors += 1;
        server.stats.last_failure = Some((now, Failure::Passive(why)));
        if server.health.on_passive_failure(now) {
            let group = &self.groups[srv.group].cfg;
            let line = format!(
                "{name} {} ejected for {:?}: {} failures within {:?}, last: {why}",
                server.cfg.addr, group.fail_timeout, group.max_fails, group.fail_timeout
            );
            warn!("{line}");
            self.record_transition(srv, line);
            self.close_idle(srv);
            self.redispatch_queue(srv);
        }
    }

    /// Reports a connect outcome to the start-up reachability check (`reach`) and
    /// warns, once per group, when no server of the group accepted a connection.
    pub(crate) fn reached(&mut self, srv: SrvId, result: Result<(), &'static str>) {
        if self.reach.decided(srv.group)
            || self.reach.outcome(srv.group, srv.server, result) != Verdict::NoneReachable
        {
            return;
        }
        let group = &self.groups[srv.group];
        let mut why = String::new();
        for (s, server) in group.servers.iter().enumerate() {
            let reason = self.reach.reason(srv.group, s).unwrap_or("not tried");
            let sep = if s > 0 { "; " } else { "" };
            let _ = write!(
                why,
                "{sep}{} {}: {reason}",
                server.cfg.name, server.cfg.addr
            );
        }
        warn!(
            "[{}] no server accepts connections ({why}): requests to this group fail until one is started",
            group.cfg.kind
        );
    }

    /// Closes every idle pooled connection of a server (it went down or was ejected).
    pub(crate) fn close_idle(&mut self, srv: SrvId) {
        for i in self.groups[srv.group].servers[srv.server].pool.take_idle() {
            self.close_backend(i);
        }
    }

    /// "http server2" style name for logs.
    pub(crate) fn server_name(&self, srv: SrvId) -> String {
        let group = if srv.group == crate::group::HTTP {
            "http"
        } else {
            "websocket"
        };
        format!(
            "{group} {}",
            self.groups[srv.group].servers[srv.server].cfg.name
        )
    }

    /// Logs an unexpected pool state instead of panicking.
    pub(crate) fn pool_bug(&self, what: &str) {
        warn!("internal: {what}");
        // On the simulated network an internal inconsistency is a finding, not a log line.
        #[cfg(feature = "sim")]
        panic!("internal: {what}");
    }
}
