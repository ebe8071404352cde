//! `sluice::config::parse` on arbitrary text: never panics; an `Ok` config satisfies every
//! invariant the parser promises; an `Err` blames a line that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::config::{
    parse, Config, Group, GroupKind, ServerConfig, HEADER_BYTES_RANGE, MAX_DURATION, WEIGHT_RANGE,
    WORKERS_RANGE,
};
use std::net::SocketAddr;
use std::time::Duration;

fn any_host(_host: &str, port: u16) -> Result<SocketAddr, String> {
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn check_duration(d: Duration) {
    assert!(!d.is_zero() && d <= MAX_DURATION, "{d:?}");
}

fn check_server(s: &ServerConfig, kind: GroupKind) {
    assert!(s.id >= 1);
    assert_eq!(s.name, format!("server{}", s.id));
    let (_, port) = s
        .addr_text
        .rsplit_once(':')
        .expect("addr_text is host:port");
    assert_eq!(port.parse::<u16>().ok(), Some(s.addr.port()));
    assert_ne!(s.addr.port(), 0);
    assert!((WEIGHT_RANGE.0..=WEIGHT_RANGE.1).contains(&u64::from(s.weight)));
    assert!(s.max_workers >= 1 && s.min_workers <= s.max_workers);
    assert!(s.buffer_size >= 1);
    check_duration(s.worker_timeout);
    if kind == GroupKind::WebSocket {
        // The pool keys are rejected in [websocket].
        let d = ServerConfig::new(s.id, &s.addr_text, s.addr);
        let pool = |s: &ServerConfig| {
            (
                s.max_workers,
                s.min_workers,
                s.worker_timeout,
                s.buffer_size,
            )
        };
        assert_eq!(pool(s), pool(&d));
    }
}

fn check_group(g: &Group, kind: GroupKind) {
    assert_eq!(g.kind, kind);
    for d in [
        g.health_check_interval,
        g.health_check_timeout,
        g.fail_timeout,
        g.connect_timeout,
    ] {
        check_duration(d);
    }
    for d in [
        g.response_timeout,
        g.queue_timeout,
        g.idle_timeout,
        g.ping_timeout,
    ] {
        check_duration(d);
    }
    g.ping_interval.map(check_duration);
    assert!(g.health_check_timeout < g.health_check_interval);
    assert!(g.health_check_path.starts_with('/'));
    assert!(g.health_check_path.bytes().all(|b| b.is_ascii_graphic()));
    assert!(g.rise >= 1 && g.fall >= 1 && g.retries <= 100);
    assert!(
        g.servers.windows(2).all(|w| w[0].id < w[1].id),
        "sorted, unique ids"
    );
    g.servers.iter().for_each(|s| check_server(s, kind));
    if kind == GroupKind::Http {
        // The WebSocket-only keys are rejected in [http].
        let d = Group::new(GroupKind::Http);
        let ws = |g: &Group| {
            (
                g.idle_timeout,
                g.ping_interval,
                g.ping_timeout,
                g.max_message_bytes,
            )
        };
        assert_eq!(ws(g), ws(&d));
    }
}

fn check(c: &Config) {
    let f = &c.frontend;
    assert_eq!(f.listen.port(), f.port);
    assert!(f.max_connections >= 1);
    let header = HEADER_BYTES_RANGE.0 as usize..=HEADER_BYTES_RANGE.1 as usize;
    assert!(header.contains(&f.max_header_bytes));
    assert_ne!(f.max_body_bytes, Some(0));
    assert!((WORKERS_RANGE.0 as usize..=WORKERS_RANGE.1 as usize).contains(&f.workers));
    for d in [
        f.request_header_timeout,
        f.client_idle_timeout,
        f.drain_timeout,
    ] {
        check_duration(d);
    }
    check_group(&c.http, GroupKind::Http);
    check_group(&c.websocket, GroupKind::WebSocket);
    assert!(!(c.http.servers.is_empty() && c.websocket.servers.is_empty()));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse(&text, "fuzz.ini", &any_host) {
        Ok(config) => check(&config),
        Err(e) => {
            let lines = text.lines().count();
            if let Some(line) = e.line {
                assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            }
            assert!(e.to_string().starts_with("fuzz.ini"));
        }
    }
});
