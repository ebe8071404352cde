//! The admin endpoint (`[admin] host, port`): served by the same reactor, on its own
//! listener. `GET /metrics` (Prometheus text format 0.0.4), `GET /status.json` (the same
//! state as JSON) and `GET /status` (a self-contained HTML page that refreshes itself).
//! Answers are built on demand from the live state; nothing is kept just for them except
//! the per-group response-time histogram.

use crate::group::{Group, HTTP};
use crate::health::Verdict;
use crate::histogram::BUCKETS;
use std::collections::VecDeque;
use std::time::Instant;

/// The state the admin pages render: the reactor's counters and the groups (servers,
/// pools, health), taken at one `now`. Rendering reads nothing else.
pub struct Snapshot<'a> {
    /// The reactor's time for this turn.
    pub now: Instant,
    /// When the reactor started (uptime).
    pub started: Instant,
    /// The `[http]` and `[websocket]` groups.
    pub groups: &'a [Group; 2],
    /// Open tunnels per server, per group.
    pub tunnels: [Vec<u64>; 2],
    /// Open client connections.
    pub clients: usize,
    /// Open backend connections.
    pub backends: usize,
    /// Client connections accepted.
    pub accepted: u64,
    /// Requests answered.
    pub requests: u64,
    /// A drain is in progress.
    pub draining: bool,
    /// The last health transitions, newest last.
    pub transitions: &'a VecDeque<String>,
    /// DNS discovery's counters.
    pub dns: crate::discovery::DnsStats,
}

fn group_name(g: usize) -> &'static str {
    if g == HTTP {
        "http"
    } else {
        "websocket"
    }
}

impl Snapshot<'_> {
    /// Prometheus text exposition.
    pub fn metrics(&self) -> String {
        let now = self.now;
        let mut m = String::with_capacity(8192);
        let tunnels = &self.tunnels;
        let gauge = |m: &mut String, name: &str, help: &str, kind: &str| {
            let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        type Field = fn(&Snapshot, usize, usize, &[Vec<u64>; 2]) -> String;
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
                let _ = writeln!(m, "{name}{{{labels}}} {}", f(self, g, s, tunnels));
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
        let process: [(&str, &str, &str, u64); 9] = [
            (
                "sluice_dns_queries_total",
                "DNS queries sent for server names",
                "counter",
                self.dns.queries,
            ),
            (
                "sluice_dns_failures_total",
                "DNS resolution failures (timeout, SERVFAIL, NXDOMAIN), once per streak",
                "counter",
                self.dns.failures,
            ),
            (
                "sluice_dns_changes_total",
                "changes of a discovered name's addresses",
                "counter",
                self.dns.changes,
            ),
            (
                "sluice_open_connections",
                "client connections open",
                "gauge",
                self.clients as u64,
            ),
            (
                "sluice_backend_connections",
                "backend connections open (pooled, tunnels, probes)",
                "gauge",
                self.backends as u64,
            ),
            (
                "sluice_accepted_connections_total",
                "client connections accepted",
                "counter",
                self.accepted,
            ),
            (
                "sluice_requests_total",
                "requests answered",
                "counter",
                self.requests,
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
        let tunnels = &self.tunnels;
        let mut j = String::with_capacity(4096);
        let _ = write!(
            j,
            "{{\"version\":\"{}\",\"uptime_seconds\":{:.1},\"connections\":{},\"backend_connections\":{},\"accepted\":{},\"requests\":{},\"rss_bytes\":{},\"draining\":{},\"groups\":[",
            env!("CARGO_PKG_VERSION"),
            now.saturating_duration_since(self.started).as_secs_f64(),
            self.clients,
            self.backends,
            self.accepted,
            self.requests,
            rss_bytes(),
            self.draining
        );
        for (g, group) in self.groups.iter().enumerate() {
            if g > 0 {
                j.push(',');
            }
            self.group_json(&mut j, g, group, tunnels);
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

use std::fmt::Write;

fn json_str(j: &mut String, s: &str) {
    j.push('"');
    for ch in s.chars() {
        match ch {
            '"' => j.push_str("\\\""),
            '\\' => j.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(j, "\\u{:04x}", c as u32);
            }
            c => j.push(c),
        }
    }
    j.push('"');
}

/// Resident set size from /proc/self/statm (0 where unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config;

    fn groups(now: Instant) -> [Group; 2] {
        let text = "[http]\nserver1_addr = 127.0.0.1:9001\nserver2_addr = 127.0.0.1:9002\n\
                    [websocket]\nserver1_addr = 127.0.0.1:9101\n";
        let no_dns = |_: &str, _: u16| Err("no names here".to_string());
        let cfg = config::parse(text, "test.ini", &no_dns).expect("valid config");
        [Group::new(&cfg.http, now), Group::new(&cfg.websocket, now)]
    }

    fn snapshot<'a>(
        now: Instant,
        groups: &'a [Group; 2],
        transitions: &'a VecDeque<String>,
    ) -> Snapshot<'a> {
        Snapshot {
            now,
            started: now - std::time::Duration::from_secs(90),
            groups,
            tunnels: [vec![0, 0], vec![7]],
            clients: 12,
            backends: 5,
            accepted: 40,
            requests: 33,
            draining: true,
            transitions,
            dns: Default::default(),
        }
    }

    #[test]
    fn metrics_render_a_snapshot_without_a_reactor() {
        let now = Instant::now();
        let mut g = groups(now);
        g[0].servers[1].stats.requests = 17;
        g[0].servers[1].active = 2;
        let t = VecDeque::new();
        let m = snapshot(now, &g, &t).metrics();
        let has = |line: &str| m.lines().any(|l| l == line);
        assert!(has("sluice_open_connections 12"), "{m}");
        assert!(has("sluice_backend_connections 5"));
        assert!(has("sluice_accepted_connections_total 40"));
        assert!(has("sluice_requests_total 33"));
        assert!(has("sluice_draining 1"));
        assert!(has("sluice_uptime_seconds 90.000"));
        let server2 = "group=\"http\",server=\"server2\",addr=\"127.0.0.1:9002\"";
        assert!(
            has(&format!("sluice_server_requests_total{{{server2}}} 17")),
            "{m}"
        );
        assert!(has(&format!(
            "sluice_server_active_requests{{{server2}}} 2"
        )));
        let ws1 = "group=\"websocket\",server=\"server1\",addr=\"127.0.0.1:9101\"";
        assert!(
            has(&format!("sluice_server_open_tunnels{{{ws1}}} 7")),
            "{m}"
        );
    }

    #[test]
    fn status_json_renders_a_snapshot() {
        let now = Instant::now();
        let g = groups(now);
        let t: VecDeque<String> = ["server1 up".to_string()].into();
        let j = snapshot(now, &g, &t).status_json();
        assert!(j.starts_with('{') && j.ends_with('}'), "{j}");
        assert!(j.contains("\"draining\":true"), "{j}");
        assert!(j.contains("\"server1 up\""), "{j}");
        assert!(j.contains("127.0.0.1:9002"), "{j}");
    }

    #[test]
    fn json_escaping() {
        let mut j = String::new();
        json_str(&mut j, "a\"b\\c\n");
        assert_eq!(j, "\"a\\\"b\\\\c\\u000a\"");
    }
}
