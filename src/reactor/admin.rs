//! The admin endpoint, served from the reactor's state.

use super::Reactor;
use crate::admin::Snapshot;
use crate::io::append;
use crate::session::Phase;
use protocol::h1::{self, Method, RequestHead};

const STATUS_PAGE: &str = include_str!("../admin/status.html");

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
                b"/metrics" => (200, "text/plain; version=0.0.4", self.metrics()),
                b"/status.json" => (200, "application/json", self.status_json()),
                b"/status" | b"/" => (200, "text/html; charset=utf-8", STATUS_PAGE.to_string()),
                _ => (
                    404,
                    "text/plain",
                    "not found: try /status, /status.json or /metrics\n".to_string(),
                ),
            }
        };
        let close = !head.keep_alive || status >= 400 || self.draining;
        let mut out = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}\r\n",
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

    /// What the admin pages show, read from the reactor's state at `now`.
    pub(crate) fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            now: self.now,
            started: self.started,
            groups: &self.groups,
            tunnels: self.tunnels_per_server(),
            clients: self.clients.len(),
            backends: self.backends.len(),
            accepted: self.stats.accepted,
            requests: self.stats.requests,
            draining: self.draining,
            transitions: &self.transitions,
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
