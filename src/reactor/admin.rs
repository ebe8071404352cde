//! The admin endpoint, served from the reactor's state.

use super::Reactor;
use crate::admin::{json_str, rss_bytes};
use crate::group::{Group, HTTP};
use crate::health::Verdict;
use crate::histogram::BUCKETS;
use crate::io::append;
use crate::session::Phase;
use protocol::h1::{self, Method, RequestHead};
use std::fmt::Write;

const STATUS_PAGE: &str = include_str!("../admin/status.html");

fn group_name(g: usize) -> &'static str {
    if g == HTTP {
        "http"
    } else {
        "websocket"
    }
}

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

    /// Prometheus text exposition.
    pub fn metrics(&self) -> String {
        let now = self.now;
        let mut m = String::with_capacity(8192);
        let tunnels = self.tunnels_per_server();
        let gauge = |m: &mut String, name: &str, help: &str, kind: &str| {
            let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        type Field = fn(&Reactor, usize, usize, &[Vec<u64>; 2]) -> String;
        let per_server: [(&str, &str, &str, Field); 12] = [
            (
                "sluice_server_up",
                "1 when the server is usable (health up, not ejected)",
                "gauge",
                |r, g, s, _| {
                    u8::from(
                        !r.groups[g].servers[s].removed
                            && r.groups[g].servers[s].health.is_usable(r.now),
                    )
                    .to_string()
                },
            ),
            (
                "sluice_server_effective_weight",
                "weight the balancer uses (static x100, or server-reported)",
                "gauge",
                |r, g, s, _| {
                    r.groups[g].servers[s]
                        .health
                        .effective_weight(r.now)
                        .to_string()
                },
            ),
            (
                "sluice_server_active_requests",
                "requests in flight plus open tunnels",
                "gauge",
                |r, g, s, _| r.groups[g].servers[s].active.to_string(),
            ),
            (
                "sluice_server_open_tunnels",
                "open WebSocket tunnels",
                "gauge",
                |_, g, s, t| t[g][s].to_string(),
            ),
            (
                "sluice_server_pool_idle_connections",
                "idle pooled connections",
                "gauge",
                |r, g, s, _| r.groups[g].servers[s].pool.idle().len().to_string(),
            ),
            (
                "sluice_server_pool_busy_connections",
                "pooled connections carrying a request",
                "gauge",
                |r, g, s, _| r.groups[g].servers[s].pool.busy().to_string(),
            ),
            (
                "sluice_server_queue_length",
                "requests waiting for a connection",
                "gauge",
                |r, g, s, _| r.groups[g].servers[s].pool.queue().len().to_string(),
            ),
            (
                "sluice_server_requests_total",
                "requests sent to the server",
                "counter",
                |r, g, s, _| r.groups[g].servers[s].stats.requests.to_string(),
            ),
            (
                "sluice_server_failures_total",
                "connect failures, resets, timeouts and invalid responses",
                "counter",
                |r, g, s, _| r.groups[g].servers[s].stats.failures.to_string(),
            ),
            (
                "sluice_server_health_transitions_total",
                "up/down transitions",
                "counter",
                |r, g, s, _| r.groups[g].servers[s].health.transitions().to_string(),
            ),
            (
                "sluice_server_ejections_total",
                "passive ejections",
                "counter",
                |r, g, s, _| r.groups[g].servers[s].health.ejections().to_string(),
            ),
            (
                "sluice_server_bytes_out_total",
                "response bytes sent to clients",
                "counter",
                |r, g, s, _| r.groups[g].servers[s].stats.bytes_out.to_string(),
            ),
        ];
        for (name, help, kind, f) in per_server {
            gauge(&mut m, name, help, kind);
            self.each_server(|g, s, labels| {
                let _ = writeln!(m, "{name}{{{labels}}} {}", f(self, g, s, &tunnels));
            });
        }
        gauge(
            &mut m,
            "sluice_server_responses_total",
            "responses by status class",
            "counter",
        );
        self.each_server(|g, s, labels| {
            for (class, n) in self.groups[g].servers[s]
                .stats
                .responses
                .iter()
                .enumerate()
                .skip(1)
            {
                let _ = writeln!(
                    m,
                    "sluice_server_responses_total{{{labels},class=\"{class}xx\"}} {n}"
                );
            }
        });
        gauge(
            &mut m,
            "sluice_server_health_checks_total",
            "active health checks by result",
            "counter",
        );
        self.each_server(|g, s, labels| {
            let h = &self.groups[g].servers[s].health;
            let _ = writeln!(
                m,
                "sluice_server_health_checks_total{{{labels},result=\"ok\"}} {}",
                h.checks_ok()
            );
            let _ = writeln!(
                m,
                "sluice_server_health_checks_total{{{labels},result=\"fail\"}} {}",
                h.checks_failed()
            );
        });
        gauge(
            &mut m,
            "sluice_request_duration_seconds",
            "time from request head to last response byte",
            "histogram",
        );
        for (g, group) in self.groups.iter().enumerate() {
            let name = group_name(g);
            let mut cum = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cum += group.latency.counts[i];
                let _ = writeln!(
                    m,
                    "sluice_request_duration_seconds_bucket{{group=\"{name}\",le=\"{le}\"}} {cum}"
                );
            }
            let total = group.latency.count();
            let _ = writeln!(
                m,
                "sluice_request_duration_seconds_bucket{{group=\"{name}\",le=\"+Inf\"}} {total}"
            );
            let _ = writeln!(
                m,
                "sluice_request_duration_seconds_sum{{group=\"{name}\"}} {}",
                group.latency.sum
            );
            let _ = writeln!(
                m,
                "sluice_request_duration_seconds_count{{group=\"{name}\"}} {total}"
            );
        }
        let process: [(&str, &str, &str, u64); 6] = [
            (
                "sluice_open_connections",
                "client connections open",
                "gauge",
                self.clients.len() as u64,
            ),
            (
                "sluice_backend_connections",
                "backend connections open (pooled, tunnels, probes)",
                "gauge",
                self.backends.len() as u64,
            ),
            (
                "sluice_accepted_connections_total",
                "client connections accepted",
                "counter",
                self.stats.accepted,
            ),
            (
                "sluice_requests_total",
                "requests answered",
                "counter",
                self.stats.requests,
            ),
            (
                "sluice_resident_memory_bytes",
                "resident set size",
                "gauge",
                rss_bytes(),
            ),
            (
                "sluice_draining",
                "1 while draining",
                "gauge",
                u64::from(self.draining),
            ),
        ];
        for (name, help, kind, v) in process {
            gauge(&mut m, name, help, kind);
            let _ = writeln!(m, "{name} {v}");
        }
        gauge(
            &mut m,
            "sluice_uptime_seconds",
            "seconds since start",
            "gauge",
        );
        let _ = writeln!(
            m,
            "sluice_uptime_seconds {:.3}",
            now.saturating_duration_since(self.started).as_secs_f64()
        );
        m
    }

    fn each_server(&self, mut f: impl FnMut(usize, usize, String)) {
        for (g, group) in self.groups.iter().enumerate() {
            for (s, server) in group.servers.iter().enumerate() {
                let labels = format!(
                    "group=\"{}\",server=\"{}\",addr=\"{}\"",
                    group_name(g),
                    server.cfg.name,
                    server.cfg.addr
                );
                f(g, s, labels);
            }
        }
    }

    /// The state as JSON (hand-written: no serde in a 1 MB binary).
    pub fn status_json(&self) -> String {
        let now = self.now;
        let tunnels = self.tunnels_per_server();
        let mut j = String::with_capacity(4096);
        let _ = write!(
            j,
            "{{\"version\":\"{}\",\"uptime_seconds\":{:.1},\"connections\":{},\"backend_connections\":{},\"accepted\":{},\"requests\":{},\"rss_bytes\":{},\"draining\":{},\"groups\":[",
            env!("CARGO_PKG_VERSION"),
            now.saturating_duration_since(self.started).as_secs_f64(),
            self.clients.len(),
            self.backends.len(),
            self.stats.accepted,
            self.stats.requests,
            rss_bytes(),
            self.draining
        );
        for (g, group) in self.groups.iter().enumerate() {
            if g > 0 {
                j.push(',');
            }
            self.group_json(&mut j, g, group, &tunnels);
        }
        j.push_str("],\"transitions\":[");
        for (k, t) in self.transitions.iter().enumerate() {
            if k > 0 {
                j.push(',');
            }
            json_str(&mut j, t);
        }
        j.push_str("]}");
        j
    }

    fn group_json(&self, j: &mut String, g: usize, group: &Group, tunnels: &[Vec<u64>; 2]) {
        let now = self.now;
        let _ = write!(
            j,
            "{{\"name\":\"{}\",\"algorithm\":\"{:?}\",\"health_checks\":{},\"servers\":[",
            group_name(g),
            group.cfg.algorithm,
            group.cfg.enable_health_check
        );
        let mut first = true;
        for (s, sv) in group.servers.iter().enumerate() {
            if sv.removed {
                continue;
            }
            if !first {
                j.push(',');
            }
            first = false;
            let p = &sv.pool;
            let r = &sv.stats.responses;
            let _ = write!(
                j,
                "{{\"name\":\"{}\",\"addr\":\"{}\",\"health\":\"{}\",\"usable\":{},\"ejected\":{},\"weight\":{},\"active\":{},\"tunnels\":{},\"pool\":{{\"idle\":{},\"busy\":{},\"connecting\":{},\"min\":{},\"max\":{}}},\"queue\":{},\"requests\":{},\"responses\":{{\"1xx\":{},\"2xx\":{},\"3xx\":{},\"4xx\":{},\"5xx\":{}}},\"failures\":{},\"checks_ok\":{},\"checks_failed\":{},\"last_failure\":",
                sv.cfg.name,
                sv.cfg.addr,
                if sv.health.verdict() == Verdict::Up { "up" } else { "down" },
                sv.health.is_usable(now),
                sv.health.is_ejected(now),
                sv.health.effective_weight(now),
                sv.active,
                tunnels[g][s],
                p.idle().len(),
                p.busy(),
                p.connecting(),
                sv.cfg.min_workers,
                sv.cfg.max_workers,
                p.queue().len(),
                sv.stats.requests,
                r[1], r[2], r[3], r[4], r[5],
                sv.stats.failures,
                sv.health.checks_ok(),
                sv.health.checks_failed(),
            );
            match sv.health.last_failure() {
                Some(f) => json_str(j, &f.to_string()),
                None => j.push_str("null"),
            }
            j.push('}');
        }
        j.push_str("]}");
    }
}
