//! `sluice::config`: the Go proxy's example file, defaults, server numbering, every error kind
//! with its exact line and message, and the value syntax tables.

use sluice::config::{
    parse, parse_bool, parse_duration, AccessLogDest, AccessLogFormat, Algorithm, Config,
    ConfigError, Frontend, Group, GroupKind, LogConfig, ServerConfig,
};
use std::net::SocketAddr;
use std::time::Duration;

/// The example configuration from the WebsocketReverseProxy README, byte for byte.
const SEED_EXAMPLE: &str = "\
[frontend]
host=rp_v11
port=8080

[websocket]
enable_health_check=true
health_check_interval=10
algorithm=round-robin
server1=es1_hc:8080
server2=es2_hc:8080
server3=es3_hc:8080

[http]
enable_health_check=true
health_check_interval=10
algorithm=random
#server 1 configuration
server1_addr=es1_hc:8080
server1_max_workers=10
server1_min_workers=3
server1_worker_timeout=3
server1_buffer_size=20
#server 2 configuration
server2_addr=es2_hc:8080
server2_max_workers=10
server2_min_workers=3
server2_worker_timeout=3
server2_buffer_size=20
#server 3 configuration
server3_addr=es3_hc:8080
server3_max_workers=10
server3_min_workers=3
server3_worker_timeout=3
server3_buffer_size=20
";

/// The seed's docker-compose names, all on loopback; anything else fails like a real miss.
fn resolver(host: &str, port: u16) -> Result<SocketAddr, String> {
    match host {
        "es1_hc" | "es2_hc" | "es3_hc" | "rp_v11" | "a" | "b" => {
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        }
        _ => Err("unknown host".into()),
    }
}

#[track_caller]
fn ok(text: &str) -> Config {
    parse(text, "t.ini", &resolver).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn err(text: &str) -> ConfigError {
    match parse(text, "t.ini", &resolver) {
        Ok(c) => panic!("accepted {text:?}: {c:?}"),
        Err(e) => e,
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn seed_example_loads_unchanged() {
    let c = ok(SEED_EXAMPLE);
    let frontend = Frontend {
        host: "rp_v11".into(),
        listen: local(8080),
        ..Frontend::default()
    };
    assert_eq!(c.frontend, frontend);

    let ws = &c.websocket;
    assert_eq!(ws.kind, GroupKind::WebSocket);
    assert!(ws.enable_health_check);
    assert_eq!(ws.health_check_interval, Duration::from_secs(10));
    assert_eq!(ws.algorithm, Algorithm::RoundRobin);
    let names = ["es1_hc:8080", "es2_hc:8080", "es3_hc:8080"];
    let expected: Vec<ServerConfig> = (1..=3)
        .map(|id| ServerConfig::new(id, names[id as usize - 1], local(8080)))
        .collect();
    assert_eq!(ws.servers, expected);
    let seed_keys = |kind, algorithm, servers| Group {
        enable_health_check: true,
        algorithm,
        servers,
        ..Group::new(kind)
    };
    let want = seed_keys(
        GroupKind::WebSocket,
        Algorithm::RoundRobin,
        expected.clone(),
    );
    assert_eq!(ws, &want, "everything else at its default");

    let http = &c.http;
    assert_eq!(http.kind, GroupKind::Http);
    assert!(http.enable_health_check);
    assert_eq!(http.health_check_interval, Duration::from_secs(10));
    assert_eq!(http.algorithm, Algorithm::Random);
    let pooled: Vec<ServerConfig> = expected
        .iter()
        .map(|s| ServerConfig {
            max_workers: 10,
            min_workers: 3,
            buffer_size: 20,
            ..s.clone()
        })
        .collect();
    assert_eq!(http.servers, pooled);
    assert_eq!(http.servers[0].name, "server1");
    assert_eq!(http.servers[2].worker_timeout, Duration::from_secs(3));
    assert_eq!(http.health_check_path, "/healthCheck");
    assert_eq!(http, &seed_keys(GroupKind::Http, Algorithm::Random, pooled));

    assert_eq!(c.log, LogConfig::default());
    assert_eq!(c.admin, None);
}

#[test]
fn defaults() {
    let c = ok("[http]\nserver1 = a:80\n");
    assert_eq!(c.frontend, Frontend::default());
    assert_eq!(c.frontend.listen, local(8080));
    assert_eq!(c.frontend.max_connections, 10_000);
    assert_eq!(c.frontend.max_header_bytes, 16_384);
    assert_eq!((c.frontend.max_body_bytes, c.frontend.workers), (None, 1));
    let g = &c.http;
    assert_eq!(g.servers, vec![ServerConfig::new(1, "a:80", local(80))]);
    assert_eq!(
        g,
        &Group {
            servers: g.servers.clone(),
            ..Group::new(GroupKind::Http)
        }
    );
    assert_eq!(g.health_check_timeout, Duration::from_secs(2));
    assert_eq!((g.rise, g.fall, g.max_fails, g.retries), (2, 3, 3, 2));
    assert_eq!(g.queue_timeout, Duration::from_secs(5));
    assert_eq!(c.websocket, Group::new(GroupKind::WebSocket));
    assert_eq!(c.websocket.ping_interval, None);
    assert_eq!(c.websocket.max_message_bytes, 16 << 20);
    let log = &c.log;
    assert_eq!(log.level, log::LevelFilter::Info);
    assert_eq!(log.access_log, AccessLogDest::Stderr);
    assert_eq!(log.access_log_format, AccessLogFormat::Common);
    assert!(c.admin.is_none());
}

#[test]
fn every_key_set() {
    let c = ok("\
[frontend]
HOST = 127.0.0.2   # trailing comment
port: 0
max_connections = 5
request_header_timeout = 500ms
client_idle_timeout = 2m
max_header_bytes = 1024
max_body_bytes = 0
workers = 4
drain_timeout = 1h
max_connections_per_client = 8
[websocket]
idle_timeout = 90
max_ejected_percent = 100
slow_start = 30s
rebalance = on
rebalance_rate = 5
rebalance_tolerance = 10%
ping_interval = 20s
ping_timeout = 5
max_message_bytes = 0
health_check_path = /ws/health?x=1
rise = 1
fall = 1
max_fails = 0
fail_timeout = 30s
fail_on_5xx = yes
connect_timeout = 1s
response_timeout = 2s
queue_timeout = 3s
retries = 0
health_check_timeout = 9s
algorithm = Power-Of-Two
server1 = [::1]:9000
server1_weight = 1000
server1_slow_start = 2m
[log]
level = DEBUG
access_log = off
access_log_format = json
[admin]
port = 9901
");
    let f = &c.frontend;
    assert_eq!(f.listen, "127.0.0.2:0".parse().unwrap());
    assert_eq!(
        (f.max_connections, f.max_header_bytes, f.workers),
        (5, 1024, 4)
    );
    assert_eq!(f.request_header_timeout, Duration::from_millis(500));
    assert_eq!(f.client_idle_timeout, Duration::from_secs(120));
    assert_eq!(f.drain_timeout, Duration::from_secs(3600));
    assert_eq!(f.max_body_bytes, None);
    assert_eq!(f.max_connections_per_client, Some(8));
    let ws = &c.websocket;
    assert_eq!(ws.max_ejected_percent, 100);
    assert_eq!(ws.slow_start, Some(Duration::from_secs(30)));
    assert_eq!(ws.servers[0].slow_start, Some(Duration::from_secs(120)));
    assert_eq!(
        (ws.rebalance, ws.rebalance_rate, ws.rebalance_tolerance),
        (true, 5, 10)
    );
    assert_eq!(ws.idle_timeout, Duration::from_secs(90));
    assert_eq!(ws.ping_interval, Some(Duration::from_secs(20)));
    assert_eq!(
        (ws.ping_timeout, ws.max_message_bytes),
        (Duration::from_secs(5), 0)
    );
    assert_eq!(ws.health_check_path, "/ws/health?x=1");
    assert_eq!((ws.rise, ws.fall, ws.max_fails, ws.retries), (1, 1, 0, 0));
    assert!(ws.fail_on_5xx);
    assert_eq!(ws.fail_timeout, Duration::from_secs(30));
    assert_eq!(ws.health_check_timeout, Duration::from_secs(9));
    assert_eq!(ws.algorithm, Algorithm::PowerOfTwo);
    assert_eq!(ws.servers[0].addr, "[::1]:9000".parse().unwrap());
    assert_eq!(
        (ws.servers[0].addr_text.as_str(), ws.servers[0].weight),
        ("[::1]:9000", 1000)
    );
    assert_eq!(c.http, Group::new(GroupKind::Http));
    assert_eq!(c.log.level, log::LevelFilter::Debug);
    assert_eq!(c.log.access_log, AccessLogDest::Off);
    assert_eq!(c.log.access_log_format, AccessLogFormat::Json);
    assert_eq!(c.admin.unwrap().listen, local(9901));
    assert_eq!(
        ok("[frontend]\nmax_body_bytes=7\n[http]\nserver1=a:1")
            .frontend
            .max_body_bytes,
        Some(7)
    );
}

#[test]
fn gaps_and_order() {
    let c = ok("[http]\nserver10=a:10\nserver2_addr=a:2\nserver7=b:7\nserver10_weight=5\n");
    let ids: Vec<u32> = c.http.servers.iter().map(|s| s.id).collect();
    assert_eq!(ids, [2, 7, 10]);
    let names: Vec<&str> = c.http.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["server2", "server7", "server10"]);
    assert_eq!(c.http.servers[2].weight, 5);
    assert_eq!(c.http.servers[1].addr_text, "b:7");
    assert_eq!(c.http.servers[0].addr, local(2));
}

/// Each error kind: (text, the exact `Display`).
#[test]
fn errors() {
    let h = "[http]\nserver1=a:1\n";
    let cases: &[(&str, &str)] = &[
        // structure
        ("[frontend]\nport=1\n[backend]\n", "t.ini:3: unknown section [backend]"),
        ("[http\n", "t.ini:1: malformed section header \"[http\""),
        ("[http]\n[HTTP]\n", "t.ini:2: duplicate section [http] (first on line 1)"),
        ("port=1\n", "t.ini:1: port is outside any [section]"),
        ("[http]\nserver1\n", "t.ini:2: expected key = value, got \"server1\""),
        ("[http]\n= 3\n", "t.ini:2: [http] missing key before the '='"),
        (&format!("{h}foo=1\n"), "t.ini:3: [http] foo: unknown key"),
        (&format!("{h}sérver=1\n"), "t.ini:3: [http] sérver: unknown key"),
        ("[log]\nhost=a\n", "t.ini:2: [log] host: unknown key"),
        (&format!("{h}idle_timeout=5\n"), "t.ini:3: [http] idle_timeout: only valid in [websocket]"),
        ("[websocket]\nserver1=a:1\nserver1_max_workers=2\n", "t.ini:3: [websocket] server1_max_workers: only valid in [http]"),
        (&format!("{h}server0=a:1\n"), "t.ini:3: [http] server0: server number must be 1 or more"),
        (&format!("{h}server01_weight=1\n"), "t.ini:3: [http] server01_weight: server number must not start with 0"),
        (&format!("{h}server4294967296=a:1\n"), "t.ini:3: [http] server4294967296: server number out of range 1..=4294967295"),
        (&format!("{h}rise=2\n\n# x\nRise = 3\n"), "t.ini:6: [http] Rise: duplicate key (first set on line 3)"),
        // servers
        (&format!("{h}server1_addr=a:1\n"), "t.ini:3: [http] server1_addr: server1 and server1_addr both set the address of server1"),
        (&format!("{h}server2_weight=3\n"), "t.ini:3: [http] server2_weight: server2 has no address (add server2 = host:port)"),
        ("[http]\nserver1_addr=bad..name:80\n", "t.ini:2: [http] server1_addr: invalid DNS name \"bad..name\": DNS label empty or longer than 63 bytes"),
        ("[http]\nserver1_srv=_http._tcp.b\nserver1_resolve=all\n", "t.ini:3: [http] server1_resolve: does not apply to server1_srv (SRV makes one server per target)"),
        ("[http]\nserver1_srv=_http._tcp.b\nserver1=a:1\n", "t.ini:3: [http] server1: server1_srv and server1 both set the address of server1"),
        ("[http]\nserver1=b.test:1\nserver1_resolve=some\n", "t.ini:3: [http] server1_resolve: expected first or all, got \"some\""),
        ("[http]\nserver1=a:1\n[resolver]\nnameservers=10.0.0.1:53, x\n", "t.ini:4: [resolver] nameservers: expected ip:port, ... got \"x\""),
        ("[http]\nserver1=a:1\n[resolver]\nmin_ttl=10s\nmax_ttl=5s\n", "t.ini:4: [resolver] min_ttl: 10s is greater than max_ttl (5s)"),
        ("[http]\nserver1=a:1\n[resolver]\ninit=maybe\n", "t.ini:4: [resolver] init: expected required or optional, got \"maybe\""),
        ("[http]\nserver1=a:1\n[resolver]\nfamily=v6\n", "t.ini:4: [resolver] family: expected v4_preferred, v4_only, v6_only, v6_preferred or all, got \"v6\""),
        ("[http]\nserver1=a:1\n[resolver]\nttl=1\n", "t.ini:4: [resolver] ttl: unknown key"),
        ("[http]\nserver1=a\n", "t.ini:2: [http] server1: expected host:port, got \"a\""),
        ("[http]\nserver1=::1:80\n", "t.ini:2: [http] server1: expected host:port, got \"::1:80\""),
        ("[http]\nserver1=a:0\n", "t.ini:2: [http] server1: port: 0 is out of range 1..=65535"),
        ("[http]\nserver1=a:65536\n", "t.ini:2: [http] server1: port: 65536 is out of range 1..=65535"),
        (&format!("{h}server1_weight=0\n"), "t.ini:3: [http] server1_weight: 0 is out of range 1..=1000"),
        (&format!("{h}server1_max_workers=0\n"), "t.ini:3: [http] server1_max_workers: 0 is out of range 1..=100000"),
        (&format!("{h}server1_min_workers=4\n"), "t.ini:3: [http] server1_min_workers: 4 is greater than server1_max_workers (3)"),
        (&format!("{h}server1_min_workers=4\nserver1_max_workers=2\n"), "t.ini:3: [http] server1_min_workers: 4 is greater than server1_max_workers (2)"),
        (&format!("{h}[websocket]\nalgorithm=random\n"), "t.ini:3: [websocket] has no servers (add server1 = host:port)"),
        ("[frontend]\nport=1\n", "t.ini: no servers: add [http] or [websocket] with server1 = host:port"),
        ("", "t.ini: no servers: add [http] or [websocket] with server1 = host:port"),
        // values
        (&format!("{h}health_check_interval=10x\n"), "t.ini:3: [http] health_check_interval: expected a duration like 10, 500ms, 2s, 1m or 1h, got \"10x\""),
        (&format!("{h}enable_health_check=maybe\n"), "t.ini:3: [http] enable_health_check: expected true/false/on/off/yes/no/1/0, got \"maybe\""),
        (&format!("{h}retries=-1\n"), "t.ini:3: [http] retries: expected a non-negative integer, got \"-1\""),
        (&format!("{h}retries=101\n"), "t.ini:3: [http] retries: 101 is out of range 0..=100"),
        (&format!("{h}algorithm=fastest\n"), "t.ini:3: [http] algorithm: expected one of random, round-robin, weighted-round-robin, least-connections, power-of-two, got \"fastest\""),
        (&format!("{h}health_check_timeout=10\n"), "t.ini:3: [http] health_check_timeout: 10s must be less than health_check_interval (10s)"),
        (&format!("{h}health_check_interval=1500ms\nhealth_check_timeout=2s\n"), "t.ini:4: [http] health_check_timeout: 2s must be less than health_check_interval (1500ms)"),
        (&format!("{h}health_check_path=healthCheck\n"), "t.ini:3: [http] health_check_path: expected a path starting with '/' without spaces, got \"healthCheck\""),
        (&format!("{h}connect_timeout=0\n"), "t.ini:3: [http] connect_timeout: must be greater than 0"),
        (&format!("[frontend]\nport=65536\n{h}"), "t.ini:2: [frontend] port: 65536 is out of range 0..=65535"),
        (&format!("[frontend]\nmax_header_bytes=512\n{h}"), "t.ini:2: [frontend] max_header_bytes: 512 is out of range 1024..=1048576"),
        (&format!("[frontend]\nworkers=some\n{h}"), "t.ini:2: [frontend] workers: expected a non-negative integer, got \"some\""),
        (&format!("[frontend]\nhost=elsewhere\n{h}"), "t.ini:2: [frontend] host: cannot resolve elsewhere:8080: unknown host"),
        (&format!("[frontend]\nhost=\n{h}"), "t.ini:2: [frontend] host: expected a host name or IP address, got \"\""),
        (&format!("{h}[log]\nlevel=loud\n"), "t.ini:4: [log] level: expected off, error, warn, info, debug or trace, got \"loud\""),
        (&format!("{h}[log]\naccess_log_format=xml\n"), "t.ini:4: [log] access_log_format: expected common or json, got \"xml\""),
        (&format!("{h}[admin]\nhost=127.0.0.1\n"), "t.ini:3: [admin] port: required when [admin] is present"),
    ];
    for (text, expected) in cases {
        assert_eq!(err(text).to_string(), *expected, "for {text:?}");
    }
}

/// A name neither an IP literal nor known statically is discovered with DNS in the loop.
#[test]
fn dns_names_and_resolver_section() {
    use sluice::config::{InitMode, ResolveMode};
    let c = ok("[http]\nserver1_addr=nowhere:80\nserver1_resolve=ALL\nserver2_srv=_http._tcp.web.test\nserver3=a:1\n\
                [resolver]\nnameservers=127.0.0.1:5353, 10.0.0.2\nmin_ttl=2s\nmax_ttl=1m\nhold_nx=5s\ninit=optional\ntimeout=500ms\nattempts=3\n");
    let d = c.http.servers[0].dns.as_ref().expect("discovered");
    assert_eq!(
        (d.name.as_str(), d.port, d.mode, d.key.as_str()),
        ("nowhere", 80, ResolveMode::All, "server1_addr")
    );
    let d = c.http.servers[1].dns.as_ref().expect("discovered");
    assert_eq!(
        (d.name.as_str(), d.mode),
        ("_http._tcp.web.test", ResolveMode::Srv)
    );
    assert!(c.http.servers[2].dns.is_none(), "a is known statically");
    let r = &c.resolver;
    assert_eq!(
        r.nameservers,
        Some(vec![
            "127.0.0.1:5353".parse().unwrap(),
            "10.0.0.2:53".parse().unwrap()
        ])
    );
    assert_eq!(
        (r.min_ttl, r.max_ttl, r.hold_nx),
        (
            Duration::from_secs(2),
            Duration::from_secs(60),
            Duration::from_secs(5)
        )
    );
    assert_eq!(
        (r.init, r.timeout, r.attempts),
        (
            InitMode::Optional,
            Some(Duration::from_millis(500)),
            Some(3)
        )
    );
    let d = ok("[http]\nserver1=a:1\n").resolver;
    assert_eq!(
        (d.min_ttl, d.max_ttl, d.hold_nx, d.init),
        (
            Duration::from_secs(1),
            Duration::from_secs(300),
            Duration::from_secs(30),
            InitMode::Required
        )
    );
}

/// `[resolver] family`: parsed, and /etc/hosts names pick their address by it (a name
/// with no address of an `*_only` family goes on to DNS).
#[test]
fn resolver_family_and_hosts() {
    use sluice::config::Family;
    assert_eq!(
        ok("[http]\nserver1=a:1\n").resolver.family,
        Family::V4Preferred
    );
    let hosts = |host: &str, port| match host {
        "both" => Ok(vec![
            SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], port)),
            SocketAddr::from(([10, 0, 0, 1], port)),
        ]),
        "v4" => Ok(vec![SocketAddr::from(([10, 0, 0, 2], port))]),
        _ => Err("not in /etc/hosts".to_string()),
    };
    let cases = [
        ("v4_preferred", "10.0.0.1:80", Some("10.0.0.2:80")),
        ("all", "10.0.0.1:80", Some("10.0.0.2:80")),
        ("v4_only", "10.0.0.1:80", Some("10.0.0.2:80")),
        ("v6_preferred", "[2001:db8::1]:80", Some("10.0.0.2:80")),
        ("V6_ONLY", "[2001:db8::1]:80", None),
    ];
    for (family, both, v4) in cases {
        let text = format!("[http]\nserver1=both:80\nserver2=v4:80\n[resolver]\nfamily={family}\n");
        let c = sluice::config::parse_all(&text, "t.ini", &hosts).expect(family);
        assert_eq!(c.http.servers[0].addr.to_string(), both, "{family}");
        let s2 = &c.http.servers[1];
        match v4 {
            Some(addr) => assert_eq!(
                (s2.addr.to_string().as_str(), s2.dns.is_none()),
                (addr, true)
            ),
            None => assert_eq!(
                s2.dns.as_ref().map(|d| d.name.as_str()),
                Some("v4"),
                "{family}"
            ),
        }
    }
}

#[test]
fn durations() {
    let ms = Duration::from_millis;
    let cases: &[(&str, Result<Duration, ()>)] = &[
        ("10", Ok(ms(10_000))),
        ("1", Ok(ms(1000))),
        ("500ms", Ok(ms(500))),
        ("2s", Ok(ms(2000))),
        ("1m", Ok(ms(60_000))),
        ("1h", Ok(ms(3_600_000))),
        ("8760h", Ok(ms(8760 * 3_600_000))),
        ("8761h", Err(())),
        ("0", Err(())),
        ("0ms", Err(())),
        ("", Err(())),
        ("s", Err(())),
        ("1.5s", Err(())),
        ("-1", Err(())),
        ("1 s", Err(())),
        ("1S", Err(())),
        ("1d", Err(())),
        ("99999999999999999999", Err(())),
        ("18446744073709551615h", Err(())),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_duration(text).map_err(|_| ()),
            *expected,
            "for {text:?}"
        );
    }
}

#[test]
fn booleans() {
    for t in ["true", "TRUE", "on", "yes", "Yes", "1"] {
        assert_eq!(parse_bool(t), Ok(true), "for {t:?}");
    }
    for f in ["false", "off", "OFF", "no", "0"] {
        assert_eq!(parse_bool(f), Ok(false), "for {f:?}");
    }
    for bad in ["", "t", "y", "2", "enabled", "true "] {
        assert!(parse_bool(bad).is_err(), "for {bad:?}");
    }
}

#[test]
fn syntax_rules() {
    // BOM, CRLF, ';' comments, case-insensitive sections and keys, ':' delimiter.
    let c = ok("\u{feff}; top\r\n[HTTP]\r\nServer1_Addr : a:1 ; inline\r\n  ALGORITHM=Least-Connections\r\n");
    assert_eq!(c.http.servers[0].addr, local(1));
    assert_eq!(c.http.algorithm, Algorithm::LeastConnections);
    // IP literals never reach the resolver.
    let c = parse("[http]\nserver1=10.0.0.1:80\n", "t.ini", &|_, _| {
        Err("no".into())
    })
    .unwrap();
    assert_eq!(c.http.servers[0].addr, "10.0.0.1:80".parse().unwrap());
    assert_eq!(c.frontend.listen, local(8080));
    assert_eq!(err("[http]\nserver1=a:1\nport=1\n").line, Some(3));
}

#[test]
fn system_resolver_and_load() {
    let addr = sluice::config::resolve_system("localhost", 80).unwrap();
    assert!(addr.is_ipv4() && addr.ip().is_loopback(), "{addr}");
    assert!(sluice::config::resolve_system("no-such-host.invalid", 80).is_err());
    let e = sluice::config::load("/nonexistent/sluice.ini").unwrap_err();
    assert_eq!((e.path.as_str(), e.line), ("/nonexistent/sluice.ini", None));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/sluice.ini: cannot read: "),
        "{e}"
    );
}
