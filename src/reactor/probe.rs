//! Active health checks, the IO half: connect, send one request, read one response.

use super::Reactor;
use crate::backend::BState;
use crate::group::{Failure, SrvId};
use crate::health::{FailReason, ProbeOutcome, Verdict};
use crate::io::{fill, flush, Io};
use crate::probe::judge;
use crate::timer::Owner;
use log::{info, warn};
use rand::Rng;
use std::time::Duration;

impl Reactor {
    /// Schedules every server's first probe (groups with checks enabled).
    pub(crate) fn start_health(&mut self) {
        for g in 0..self.groups.len() {
            for s in 0..self.groups[g].servers.len() {
                self.schedule_probe(SrvId {
                    group: g,
                    server: s,
                });
            }
        }
    }

    /// Arms the server's probe timer for its next probe (none once removed).
    pub(crate) fn schedule_probe(&mut self, srv: SrvId) {
        let server = &mut self.groups[srv.group].servers[srv.server];
        let at = server.health.next_probe_at().filter(|_| !server.removed);
        server
            .probe_timer
            .set(at, Owner::Health(srv.group, srv.server), &mut self.timers);
    }

    /// A server's probe timer fired: start its probe.
    pub(crate) fn on_health_timer(&mut self, g: usize, s: usize) {
        let now = self.now;
        let Some(server) = self.groups.get_mut(g).and_then(|x| x.servers.get_mut(s)) else {
            return;
        };
        if !server
            .probe_timer
            .fire(now, Owner::Health(g, s), &mut self.timers)
        {
            return;
        }
        if server.health.next_probe_at().is_none_or(|at| at > now) {
            self.schedule_probe(SrvId {
                group: g,
                server: s,
            });
            return;
        }
        let srv = SrvId {
            group: g,
            server: s,
        };
        let deadline = server.health.probe_started(now);
        match self.connect_backend(srv, BState::Probe { sent: false }) {
            Some(b) => {
                let be = &mut self.backends[b];
                be.deadline
                    .set(Some(deadline), Owner::Backend(be.token.0), &mut self.timers);
            }
            None => self.probe_done(srv, None, ProbeOutcome::Unhealthy(FailReason::Refused)),
        }
    }

    /// Readiness on a probe connection.
    pub(crate) fn on_probe_event(&mut self, i: usize) {
        let srv = self.backends[i].srv;
        let sent = matches!(self.backends[i].state, BState::Probe { sent: true });
        if !sent {
            match self.backends[i].connect_result() {
                None => return,
                Some(false) => {
                    self.reached(srv, Err("connection refused"));
                    self.probe_done(srv, Some(i), ProbeOutcome::Unhealthy(FailReason::Refused));
                    return;
                }
                Some(true) => {
                    self.reached(srv, Ok(()));
                    let group = &self.groups[srv.group];
                    let server = &group.servers[srv.server];
                    let req = format!(
                        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sluice-health-check\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                        group.cfg.health_check_path, server.cfg.addr_text
                    );
                    let be = &mut self.backends[i];
                    if let Some(v) = server.cfg.send_proxy {
                        self.scratch.clear();
                        super::proxy::header_local(v, &mut self.scratch);
                        crate::io::append(&mut be.wbuf, &mut self.bufs, &self.scratch);
                    }
                    crate::io::append(&mut be.wbuf, &mut self.bufs, req.as_bytes());
                    be.state = BState::Probe { sent: true };
                }
            }
        }
        let be = &mut self.backends[i];
        if let Io::Error(_) = flush(&mut be.sock, &mut be.wbuf, &mut self.bufs) {
            self.probe_done(srv, Some(i), ProbeOutcome::Unhealthy(FailReason::Reset));
            return;
        }
        let got = fill(&mut be.sock, &mut be.rbuf, &mut self.bufs);
        let outcome = match (
            judge(be.rbuf.as_ref().map_or(&[][..], |b| b.bytes()), be.sock.eof),
            got,
        ) {
            (Some(o), _) => o,
            (None, Io::Error(_)) => ProbeOutcome::Unhealthy(FailReason::Reset),
            (None, _) if be.sock.eof => ProbeOutcome::Unhealthy(FailReason::Closed),
            (None, _) if be.rbuf.as_ref().is_some_and(|b| b.space() == 0) => {
                ProbeOutcome::Unhealthy(FailReason::BadResponse)
            }
            (None, _) => return,
        };
        self.probe_done(srv, Some(i), outcome);
    }

    /// A probe's deadline passed.
    pub(crate) fn on_probe_timeout(&mut self, i: usize) {
        let srv = self.backends[i].srv;
        if matches!(self.backends[i].state, BState::Probe { sent: false }) {
            self.reached(srv, Err("connect timeout"));
        } else {
            // The probe's timeout covers a TLS handshake that never finished.
            #[cfg(feature = "tls")]
            self.tls_expired(i);
        }
        self.probe_done(srv, Some(i), ProbeOutcome::Unhealthy(FailReason::Timeout));
    }

    /// Records a probe outcome, acts on a transition and schedules the next probe.
    fn probe_done(&mut self, srv: SrvId, conn: Option<usize>, outcome: ProbeOutcome) {
        if let Some(i) = conn {
            self.close_backend(i);
        }
        let now = self.now;
        let interval = self.groups[srv.group].cfg.health_check_interval;
        let jitter =
            Duration::from_micros(self.rng.gen_range(0..=interval.as_micros() as u64 / 10));
        let name = self.server_name(srv);
        let server = &mut self.groups[srv.group].servers[srv.server];
        let addr = server.cfg.addr;
        if let ProbeOutcome::Unhealthy(r) = outcome {
            server.stats.last_failure = Some((now, Failure::Probe(r)));
        }
        if let Some(t) = server.health.probe_finished(now, outcome, jitter) {
            server.stats.verdict_since = Some(now);
            let why = match outcome {
                ProbeOutcome::Unhealthy(r) => r.to_string(),
                ProbeOutcome::Healthy { .. } => "health check passed".to_string(),
            };
            let verb = |v: Verdict| if v == Verdict::Up { "up" } else { "down" };
            let line = format!("{name} {addr} {} -> {}: {why}", verb(t.from), verb(t.to));
            if t.to == Verdict::Down {
                warn!("{line}");
                self.close_idle(srv);
                self.redispatch_queue(srv);
            } else {
                info!("{line}");
                // A probe in flight when a reload removed the server may still
                // bring it up: a removed server only drains, it gets no new pool.
                if !self.groups[srv.group].servers[srv.server].removed {
                    self.refill_pool(srv);
                }
            }
            self.record_transition(srv, line);
        }
        self.schedule_probe(srv);
    }

    /// Keeps the last transitions for the status page (bounded).
    pub(crate) fn record_transition(&mut self, _srv: SrvId, line: String) {
        const KEEP: usize = 20;
        if self.transitions.len() == KEEP {
            self.transitions.pop_front();
        }
        self.transitions.push_back((self.now, line));
    }
}
