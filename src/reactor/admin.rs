//! The admin endpoint, served from the reactor's state.

use super::Reactor;
use crate::admin::Snapshot;
use crate::group::Group;
use crate::history::Reading;
use crate::io::append;
use crate::readiness::{self, Stage};
use crate::session::Phase;
use protocol::h1::{self, Method, RequestHead};

const STATUS_PAGE: &str = include_str!("../admin/status.html");

/// The status page may run its own inline script and style and fetch `/status.json`
/// from where it came from, and nothing else: it stays self-contained.
const STATUS_PAGE_POLICY: &str = "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:\r\n";

impl Reactor {
    /// Answers one admin request on client `i` (head complete in its rbuf).
    pub(crate) fn serve_admin(&mut self, i: usize, head: RequestHead) {
        let Some(rbuf) = self.clients[i].rbuf.as_ref() else {
            return;
        };
        let target = head.target.get(rbuf.bytes());
        let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
        let (status, ctype, body) = if !matches!(head.method, Method::Get | Method::Head) {
            (
                405,
                "text/plain",
                "only GET and HEAD are served here\n".to_string(),
            )
        } else if head.body != h1::BodyKind::None {
            (
                400,
                "text/plain",
                "admin requests carry no body\n".to_string(),
            )
        } else {
            match path {
                b"/livez" => (200, "text/plain", "ok\n".to_string()),
                b"/readyz" => match self.readiness() {
                    Ok(()) => (200, "text/plain", "ready\n".to_string()),
                    Err(why) => (503, "text/plain", format!("not ready: {why}\n")),
                },
                b"/metrics" => (200, "text/plain; version=0.0.4", self.metrics()),
                b"/status.json" => (200, "application/json", self.status_json()),
                b"/status" | b"/" => (200, "text/html; charset=utf-8", STATUS_PAGE.to_string()),
                _ => (
                    404,
                    "text/plain",
                    "not found: try /status, /status.json, /metrics, /livez or /readyz\n"
                        .to_string(),
                ),
            }
        };
        let close = !head.keep_alive || status >= 400 || self.draining;
        let policy = if ctype.starts_with("text/html") {
            STATUS_PAGE_POLICY
        } else {
            ""
        };
        let mut out = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{policy}{}\r\n",
            h1::reason_phrase(status),
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if head.method != Method::Head {
            out.push_str(&body);
        }
        let c = &mut self.clients[i];
        if let Some(r) = c.rbuf.as_mut() {
            r.consume(head.head_len);
        }
        self.bufs.release_if_empty(&mut c.rbuf);
        append(&mut c.wbuf, &mut self.bufs, out.as_bytes());
        if close {
            c.set_phase(Phase::Closing { linger: true });
        }
    }

    /// `/readyz`: `Ok`, or why this replica should get no new clients.
    fn readiness(&self) -> Result<(), String> {
        let stage = if self.draining {
            Stage::Draining
        } else if self.shutdown_until.is_some() {
            Stage::ShuttingDown
        } else {
            Stage::Serving
        };
        readiness::check(self.listener.is_some(), stage, &self.groups, self.now)
    }

    /// Open tunnels per server, per group.
    fn tunnels_per_server(&self) -> [Vec<u64>; 2] {
        let mut t = [
            vec![0; self.groups[0].servers.len()],
            vec![0; self.groups[1].servers.len()],
        ];
        for (_, c) in self.clients.iter() {
            if let Phase::Tunnel(tun) = &c.phase {
                if let Some(n) = t[tun.srv.group].get_mut(tun.srv.server) {
                    *n += 1;
                }
            }
        }
        t
    }

    /// Takes the charts' next point when one is due (every turn: one comparison;
    /// a due point reads each server's counters and counts the open tunnels, and
    /// allocates nothing once the rings exist).
    pub(crate) fn sample_history(&mut self) {
        if !self.history.due(self.now) {
            return;
        }
        let servers = [self.groups[0].servers.len(), self.groups[1].servers.len()];
        let readings = self.history.readings(servers);
        fill_readings(&self.groups, readings);
        for (_, c) in self.clients.iter() {
            if let Phase::Tunnel(tun) = &c.phase {
                if let Some(r) = readings[tun.srv.group].get_mut(tun.srv.server) {
                    r.tunnels += 1;
                }
            }
        }
        self.history.sample(self.now);
    }

    /// What the admin pages show, read from the reactor's state at `now`.
    pub(crate) fn snapshot(&self) -> Snapshot<'_> {
        let tunnels = self.tunnels_per_server();
        let mut readings = [
            vec![Reading::default(); self.groups[0].servers.len()],
            vec![Reading::default(); self.groups[1].servers.len()],
        ];
        fill_readings(&self.groups, &mut readings);
        for (g, per_server) in readings.iter_mut().enumerate() {
            for (r, &t) in per_server.iter_mut().zip(&tunnels[g]) {
                r.tunnels = t;
            }
        }
        Snapshot {
            now: self.now,
            started: self.started,
            groups: &self.groups,
            tunnels,
            clients: self.clients.len(),
            backends: self.backends.len(),
            accepted: self.stats.accepted,
            requests: self.stats.requests,
            draining: self.draining,
            transitions: &self.transitions,
            rebalanced: self.rebalanced,
            client_limit: (self.client_limits.rejected(), self.client_limits.tracked()),
            access_log: self.access.stats(),
            history: &self.history,
            readings,
            dns: self.discovery.stats(),
        }
    }

    /// Prometheus text exposition of the current state.
    pub fn metrics(&self) -> String {
        #[cfg(feature = "tls")]
        {
            let mut m = self.snapshot().metrics();
            self.tls_metrics(&mut m);
            m
        }
        #[cfg(not(feature = "tls"))]
        self.snapshot().metrics()
    }

    /// The current state as JSON.
    pub fn status_json(&self) -> String {
        self.snapshot().status_json()
    }
}

/// Each server's cumulative counters (tunnels are counted by the caller).
fn fill_readings(groups: &[Group; 2], readings: &mut [Vec<Reading>; 2]) {
    for (group, per_server) in groups.iter().zip(readings.iter_mut()) {
        for (server, r) in group.servers.iter().zip(per_server.iter_mut()) {
            *r = Reading {
                requests: server.stats.requests,
                errors: server.stats.errors,
                tunnels: 0,
                latency: server.stats.latency,
            };
        }
    }
}
