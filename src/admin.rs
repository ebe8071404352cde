//! The admin endpoint (`[admin] host, port`): served by the same reactor, on its own
//! listener. `GET /metrics` (Prometheus text format 0.0.4), `GET /status.json` (the same
//! state as JSON) and `GET /status` (a self-contained HTML page that refreshes itself).
//! Answers are built on demand from the live state; nothing is kept just for them except
//! the per-group response-time histogram.

use crate::config::GroupKind;
use crate::group::{Group, HTTP};
use crate::health::Verdict;
use crate::histogram::BUCKETS;
use crate::history::{History, Of, Point, Reading};
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
    /// WebSocket tunnels closed by rebalancing, and rebalance episodes.
    pub rebalanced: (u64, u64),
    /// Per-client limit: connections rejected, client addresses tracked.
    pub client_limit: (u64, usize),
    /// Access-log lines written and dropped.
    pub access_log: crate::access_log::Stats,
    /// The last health transitions and ejections with their time, newest last.
    pub transitions: &'a VecDeque<(Instant, String)>,
    /// The last ten minutes, per group and server (charts).
    pub history: &'a History,
    /// Each server's counters now, per group (the charts' interval in progress).
    pub readings: [Vec<Reading>; 2],
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
        self.group_metrics(&mut m);
        let process: [(&str, &str, &str, u64); 15] = [
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
            (
                "sluice_rebalanced_tunnels_total",
                "WebSocket tunnels closed (1012) to rebalance servers",
                "counter",
                self.rebalanced.0,
            ),
            (
                "sluice_rebalance_episodes_total",
                "rebalance episodes that closed tunnels",
                "counter",
                self.rebalanced.1,
            ),
            (
                "sluice_client_limit_rejections_total",
                "connections refused (429) over max_connections_per_client",
                "counter",
                self.client_limit.0,
            ),
            (
                "sluice_client_limit_tracked_addresses",
                "client addresses with open connections (max_connections_per_client)",
                "gauge",
                self.client_limit.1 as u64,
            ),
            (
                "sluice_access_log_lines_total",
                "access-log lines written",
                "counter",
                self.access_log.lines,
            ),
            (
                "sluice_access_log_dropped_total",
                "access-log lines dropped (buffer full, or the write failed)",
                "counter",
                self.access_log.dropped,
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

    /// Per group: panic mode (only passively ejected servers left, used anyway) and
    /// the picks that went to an ejected server.
    fn group_metrics(&self, m: &mut String) {
        let _ = writeln!(
            m,
            "# HELP sluice_group_panic 1 while the group serves only from passively ejected servers\n# TYPE sluice_group_panic gauge"
        );
        for (g, group) in self.groups.iter().enumerate() {
            let (name, panic) = (group_name(g), u8::from(group.panic(self.now)));
            let _ = writeln!(m, "sluice_group_panic{{group=\"{name}\"}} {panic}");
        }
        let _ = writeln!(
            m,
            "# HELP sluice_group_panic_picks_total picks that went to a passively ejected server (cap or panic)\n# TYPE sluice_group_panic_picks_total counter"
        );
        for (g, group) in self.groups.iter().enumerate() {
            let (name, n) = (group_name(g), group.panic_picks());
            let _ = writeln!(m, "sluice_group_panic_picks_total{{group=\"{name}\"}} {n}");
        }
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
            "{{\"version\":\"{}\",\"uptime_seconds\":{:.1},\"connections\":{},\"backend_connections\":{},\"accepted\":{},\"requests\":{},\"rss_bytes\":{},\"draining\":{},\"chart_step_seconds\":{},\"groups\":[",
            env!("CARGO_PKG_VERSION"),
            now.saturating_duration_since(self.started).as_secs_f64(),
            self.clients,
            self.backends,
            self.accepted,
            self.requests,
            rss_bytes(),
            self.draining,
            self.history.step().as_secs_f64()
        );
        for (g, group) in self.groups.iter().enumerate() {
            if g > 0 {
                j.push(',');
            }
            self.group_json(&mut j, g, group, tunnels);
        }
        j.push_str("],\"transitions\":[");
        for (k, (at, line)) in self.transitions.iter().enumerate() {
            if k > 0 {
                j.push(',');
            }
            let _ = write!(j, "{{\"ago_seconds\":{},\"line\":", self.ago(*at));
            json_str(&mut j, line);
            j.push('}');
        }
        j.push_str("]}");
        j
    }

    fn group_json(&self, j: &mut String, g: usize, group: &Group, tunnels: &[Vec<u64>; 2]) {
        let now = self.now;
        let pooled = group.cfg.kind == GroupKind::Http;
        let _ = write!(
            j,
            "{{\"name\":\"{}\",\"algorithm\":\"{}\",\"health_checks\":{},\"panic\":{},\"panic_picks\":{},\"pooled\":{pooled},",
            group_name(g),
            group.cfg.algorithm.name(),
            group.cfg.enable_health_check,
            group.panic(now),
            group.panic_picks()
        );
        self.chart_json(j, g, Of::Group);
        j.push_str(",\"servers\":[");
        let mut first = true;
        for (s, sv) in group.servers.iter().enumerate() {
            if sv.removed {
                continue;
            }
            if !first {
                j.push(',');
            }
            first = false;
            let r = &sv.stats.responses;
            let _ = write!(
                j,
                "{{\"name\":\"{}\",\"addr\":\"{}\",\"health\":\"{}\",\"usable\":{},\"ejected\":{},\"weight\":{},\"configured_weight\":{},\"weight_reason\":",
                sv.cfg.name,
                sv.cfg.addr,
                if sv.health.verdict() == Verdict::Up { "up" } else { "down" },
                sv.health.is_usable(now),
                sv.health.is_ejected(now),
                sv.health.effective_weight(now),
                sv.cfg.weight,
            );
            match weight_reason(&sv.health, now) {
                Some(why) => json_str(j, why),
                None => j.push_str("null"),
            }
            let _ = write!(
                j,
                ",\"since_seconds\":{},\"ejected_seconds_left\":{},\"active\":{},\"tunnels\":{},",
                self.ago_or_null(sv.stats.verdict_since),
                match sv
                    .health
                    .ejected_until()
                    .filter(|_| sv.health.is_ejected(now))
                {
                    Some(until) =>
                        format!("{:.1}", until.saturating_duration_since(now).as_secs_f64()),
                    None => "null".to_string(),
                },
                sv.active,
                tunnels[g][s],
            );
            if pooled {
                let p = &sv.pool;
                let _ = write!(
                    j,
                    "\"pool\":{{\"idle\":{},\"busy\":{},\"connecting\":{},\"min\":{},\"max\":{}}},\"queue\":{},",
                    p.idle().len(),
                    p.busy(),
                    p.connecting(),
                    sv.cfg.min_workers,
                    sv.cfg.max_workers,
                    p.queue().len(),
                );
            }
            let _ = write!(
                j,
                "\"requests\":{},\"responses\":{{\"1xx\":{},\"2xx\":{},\"3xx\":{},\"4xx\":{},\"5xx\":{}}},\"failures\":{},\"errors\":{},\"checks_ok\":{},\"checks_failed\":{},\"last_failure\":",
                sv.stats.requests,
                r[1], r[2], r[3], r[4], r[5],
                sv.stats.failures,
                sv.stats.errors,
                sv.health.checks_ok(),
                sv.health.checks_failed(),
            );
            match sv.stats.last_failure {
                Some((at, f)) => {
                    json_str(j, &f.to_string());
                    let _ = write!(j, ",\"last_failure_seconds\":{}", self.ago(at));
                }
                None => j.push_str("null,\"last_failure_seconds\":null"),
            }
            j.push(',');
            self.chart_json(j, g, Of::Server(s));
            j.push('}');
        }
        j.push_str("]}");
    }

    /// `"chart":{...}`: the series' points, oldest first, then the interval in
    /// progress; `null` where a percentile has no requests.
    fn chart_json(&self, j: &mut String, g: usize, of: Of) {
        let live = self.history.live(self.now, g, of, &self.readings[g]);
        let points: Vec<Point> = self.history.points(g, of).chain([live]).collect();
        type Field = fn(&Point) -> Option<f32>;
        let fields: [(&str, Field); 5] = [
            ("rps", |p| Some(p.rps)),
            ("p50_ms", |p| p.p50_ms),
            ("p99_ms", |p| p.p99_ms),
            ("tunnels", |p| Some(p.tunnels as f32)),
            ("errors", |p| Some(p.errors as f32)),
        ];
        j.push_str("\"chart\":{");
        for (k, (name, f)) in fields.iter().enumerate() {
            if k > 0 {
                j.push(',');
            }
            let _ = write!(j, "\"{name}\":[");
            for (i, p) in points.iter().enumerate() {
                if i > 0 {
                    j.push(',');
                }
                match f(p) {
                    Some(v) if v.is_finite() => {
                        let _ = write!(j, "{}", (f64::from(v) * 100.0).round() / 100.0);
                    }
                    _ => j.push_str("null"),
                }
            }
            j.push(']');
        }
        j.push('}');
    }

    /// Seconds from `at` to the snapshot's `now`, one decimal.
    fn ago(&self, at: Instant) -> String {
        format!(
            "{:.1}",
            self.now.saturating_duration_since(at).as_secs_f64()
        )
    }

    fn ago_or_null(&self, at: Option<Instant>) -> String {
        at.map_or_else(|| "null".to_string(), |t| self.ago(t))
    }
}

/// Why a server's effective weight differs from its configured one, if it does.
fn weight_reason(h: &crate::health::ServerHealth, now: Instant) -> Option<&'static str> {
    match (h.load_reported(now), h.ramp_permille(now) < 1000) {
        (true, true) => Some("reported load, slow start"),
        (true, false) => Some("reported load"),
        (false, true) => Some("slow start"),
        (false, false) => None,
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
    use crate::group::Failure;
    use std::time::Duration;

    fn groups(now: Instant) -> [Group; 2] {
        let text = "[http]\nalgorithm=round-robin\nserver1_addr = 127.0.0.1:9001\nserver2_addr = 127.0.0.1:9002\n\
                    [websocket]\nalgorithm=least-connections\nserver1_addr = 127.0.0.1:9101\n";
        let no_dns = |_: &str, _: u16| Err("no names here".to_string());
        let cfg = config::parse(text, "test.ini", &no_dns).expect("valid config");
        [Group::new(&cfg.http, now), Group::new(&cfg.websocket, now)]
    }

    fn snapshot<'a>(
        now: Instant,
        groups: &'a [Group; 2],
        transitions: &'a VecDeque<(Instant, String)>,
        history: &'a History,
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
            rebalanced: (9, 2),
            client_limit: (4, 3),
            access_log: crate::access_log::Stats {
                lines: 9,
                dropped: 2,
            },
            history,
            readings: [vec![Reading::default(); 2], vec![Reading::default(); 1]],
            dns: Default::default(),
        }
    }

    fn history(now: Instant) -> History {
        History::new(now, crate::history::STEP, [2, 1])
    }

    #[test]
    fn metrics_render_a_snapshot_without_a_reactor() {
        let now = Instant::now();
        let mut g = groups(now);
        g[0].servers[1].stats.requests = 17;
        g[0].servers[1].active = 2;
        let t = VecDeque::new();
        let h = history(now);
        let m = snapshot(now, &g, &t, &h).metrics();
        let has = |line: &str| m.lines().any(|l| l == line);
        assert!(has("sluice_open_connections 12"), "{m}");
        assert!(has("sluice_backend_connections 5"));
        assert!(has("sluice_accepted_connections_total 40"));
        assert!(has("sluice_requests_total 33"));
        assert!(has("sluice_draining 1"));
        assert!(has("sluice_access_log_lines_total 9"));
        assert!(has("sluice_access_log_dropped_total 2"));
        assert!(has("sluice_uptime_seconds 90.000"));
        assert!(has("sluice_group_panic{group=\"http\"} 0"), "{m}");
        assert!(has("sluice_group_panic_picks_total{group=\"websocket\"} 0"));
        assert!(has("sluice_rebalanced_tunnels_total 9"));
        assert!(has("sluice_rebalance_episodes_total 2"));
        assert!(has("sluice_client_limit_rejections_total 4"));
        assert!(has("sluice_client_limit_tracked_addresses 3"));
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
        let t: VecDeque<_> = [(now - Duration::from_secs(4), "server1 up".to_string())].into();
        let h = history(now);
        let j = snapshot(now, &g, &t, &h).status_json();
        assert!(j.starts_with('{') && j.ends_with('}'), "{j}");
        assert!(j.contains("\"draining\":true"), "{j}");
        assert!(j.contains("\"panic\":false,\"panic_picks\":0"), "{j}");
        assert!(j.contains("\"server1 up\""), "{j}");
        assert!(
            j.contains("{\"ago_seconds\":4.0,\"line\":\"server1 up\"}"),
            "{j}"
        );
        assert!(j.contains("127.0.0.1:9002"), "{j}");
    }

    /// The group's part of the JSON (from `"name":"<group>"` to the next group).
    fn group_part<'a>(j: &'a str, group: &str) -> &'a str {
        let start = j.find(&format!("{{\"name\":\"{group}\"")).expect("group");
        let rest = &j[start..];
        let end = rest[1..]
            .find("{\"name\":\"websocket\"")
            .map_or(rest.len(), |e| e + 1);
        &rest[..end]
    }

    #[test]
    fn status_json_speaks_config_and_explains_itself() {
        let now = Instant::now();
        let mut g = groups(now);
        // A passive failure names its reason; the verdict changed 12 s ago.
        g[0].servers[0].stats.last_failure = Some((
            now - Duration::from_secs(3),
            Failure::Passive("connect failed"),
        ));
        g[0].servers[0].stats.verdict_since = Some(now - Duration::from_secs(12));
        // Slow start scales the effective weight below the configured one.
        g[0].servers[1]
            .health
            .set_slow_start(Some(Duration::from_secs(10)));
        g[0].servers[1].health.begin_slow_start(now);
        let t = VecDeque::new();
        let h = history(now);
        let j = snapshot(now, &g, &t, &h).status_json();
        let http = group_part(&j, "http");
        let ws = group_part(&j, "websocket");
        assert!(http.contains("\"algorithm\":\"round-robin\""), "{j}");
        assert!(ws.contains("\"algorithm\":\"least-connections\""), "{j}");
        assert!(
            http.contains("\"pool\":{") && http.contains("\"queue\":"),
            "{j}"
        );
        assert!(!ws.contains("\"pool\"") && !ws.contains("\"queue\""), "{j}");
        assert!(
            http.contains("\"last_failure\":\"connect failed\",\"last_failure_seconds\":3.0"),
            "{j}"
        );
        assert!(http.contains("\"since_seconds\":12.0"), "{j}");
        assert!(
            http.contains("\"weight\":10,\"configured_weight\":1,\"weight_reason\":\"slow start\""),
            "{j}"
        );
        assert!(
            http.contains("\"weight\":100,\"configured_weight\":1,\"weight_reason\":null"),
            "{j}"
        );
    }

    #[test]
    fn status_json_carries_the_charts_with_the_interval_in_progress() {
        let now = Instant::now();
        let g = groups(now);
        let t = VecDeque::new();
        let mut h = history(now);
        let r = h.readings([2, 1]);
        r[0][0].requests = 50;
        r[1][0].tunnels = 3;
        h.sample(now + crate::history::STEP);
        let later = now + crate::history::STEP * 2;
        let mut snap = snapshot(later, &g, &t, &h);
        snap.readings[0][0].requests = 60;
        let j = snap.status_json();
        assert!(j.contains("\"chart_step_seconds\":5"), "{j}");
        let http = group_part(&j, "http");
        // The group: 10 req/s in the first point, 2 req/s in the live one.
        assert!(
            http.starts_with("{\"name\":\"http\",\"algorithm\":\"round-robin\",\"health_checks\":false,\"panic\":false,\"panic_picks\":0,\"pooled\":true,\"chart\":{\"rps\":[10,2],\"p50_ms\":[null,null],"),
            "{http}"
        );
        let ws = group_part(&j, "websocket");
        assert!(ws.contains("\"tunnels\":[3,0]"), "{ws}");
    }

    #[test]
    fn the_status_page_is_self_contained() {
        // The SVG namespace is a name, not a request.
        let page = include_str!("admin/status.html").replace("http://www.w3.org/2000/svg", "");
        for external in [
            "src=", "href=", "url(", "@import", "http://", "https://", "//cdn",
        ] {
            assert!(!page.contains(external), "the status page loads {external}");
        }
        assert!(page.contains("<svg") || page.contains("createElementNS"));
    }

    #[test]
    fn json_escaping() {
        let mut j = String::new();
        json_str(&mut j, "a\"b\\c\n");
        assert_eq!(j, "\"a\\\"b\\\\c\\u000a\"");
    }
}
