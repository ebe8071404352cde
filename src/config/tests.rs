//! Unit tests for what tests/config.rs (the file-level tables) leaves open.

use super::*;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn ok(text: &str) -> Config {
    parse(text, "t.ini", &|_, port| Ok(local(port))).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match parse(text, "t.ini", &|_, port| Ok(local(port))) {
        Ok(c) => panic!("accepted {text:?}: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn min_workers_may_equal_max_workers() {
    let c = ok("[http]\nserver1=a:1\nserver1_min_workers=5\nserver1_max_workers=5\n");
    let s = &c.http.servers[0];
    assert_eq!((s.min_workers, s.max_workers), (5, 5));
    assert_eq!(
        err("[http]\nserver1=a:1\nserver1_min_workers=6\nserver1_max_workers=5\n"),
        "t.ini:3: [http] server1_min_workers: 6 is greater than server1_max_workers (5)"
    );
}

#[test]
fn access_log_formats() {
    for (text, format) in [
        ("common", AccessLogFormat::Common),
        ("COMMON", AccessLogFormat::Common),
        ("json", AccessLogFormat::Json),
        ("Json", AccessLogFormat::Json),
    ] {
        let c = ok(&format!(
            "[http]\nserver1=a:1\n[log]\naccess_log_format={text}\n"
        ));
        assert_eq!(c.log.access_log_format, format, "{text}");
    }
}

#[test]
fn access_log_destinations() {
    use AccessLogDest::*;
    let file = |p: &str| File(p.to_string());
    for (text, dest) in [
        ("stderr", Stderr),
        ("STDOUT", Stdout),
        ("off", Off),
        // The boolean spellings of earlier versions.
        ("true", Stderr),
        ("yes", Stderr),
        ("1", Stderr),
        ("false", Off),
        ("no", Off),
        (
            "/var/log/sluice/access.log",
            file("/var/log/sluice/access.log"),
        ),
        ("./access.log", file("./access.log")),
    ] {
        let c = ok(&format!("[http]\nserver1=a:1\n[log]\naccess_log={text}\n"));
        assert_eq!(c.log.access_log, dest, "{text}");
    }
    assert_eq!(ok("[http]\nserver1=a:1\n").log.access_log, Stderr);
    assert_eq!(
        err("[http]\nserver1=a:1\n[log]\naccess_log=stdrr\n"),
        "t.ini:4: [log] access_log: expected stderr, stdout, off or a file path with a '/' (./stdrr), got \"stdrr\""
    );
}

#[test]
fn server_address_needs_a_host_without_spaces() {
    for addr in [":80", "a b:80", " :80"] {
        let text = format!("[http]\nserver1={addr}\n");
        let e = err(&text);
        assert!(
            e.starts_with("t.ini:2: [http] server1: expected host:port, got"),
            "{addr}: {e}"
        );
    }
    assert_eq!(ok("[http]\nserver1=a:80\n").http.servers[0].addr, local(80));
}

#[test]
fn an_unset_health_check_timeout_fits_the_interval() {
    let timeout = |extra: &str| {
        ok(&format!("[http]\nserver1=a:1\n{extra}"))
            .http
            .health_check_timeout
    };
    let ms = Duration::from_millis;
    // The seed's `health_check_interval=2` alone is valid: the 2 s default halves.
    assert_eq!(timeout("health_check_interval=2\n"), ms(1000));
    assert_eq!(timeout("health_check_interval=3\n"), ms(1500));
    assert_eq!(
        timeout("health_check_interval=1ms\n"),
        Duration::from_micros(500)
    );
    // Long intervals keep the 2 s default; an explicit value is kept as written.
    assert_eq!(timeout("health_check_interval=4\n"), ms(2000));
    assert_eq!(timeout(""), ms(2000));
    assert_eq!(
        timeout("health_check_interval=2\nhealth_check_timeout=1500ms\n"),
        ms(1500)
    );
    // Only an explicit conflict is rejected, naming the line the user wrote.
    assert_eq!(
        err("[http]\nserver1=a:1\nhealth_check_timeout=2s\nhealth_check_interval=2\n"),
        "t.ini:3: [http] health_check_timeout: 2s must be less than health_check_interval (2s)"
    );
    // The same rule in [websocket].
    let c = ok("[websocket]\nserver1=a:1\nhealth_check_interval=2\n");
    assert_eq!(c.websocket.health_check_timeout, ms(1000));
}

#[test]
fn max_ejected_percent_default_range_and_errors() {
    let c = ok("[http]\nserver1=a:1\n");
    assert_eq!(c.http.max_ejected_percent, 50);
    assert_eq!(c.websocket.max_ejected_percent, 50);
    for (v, want) in [("0", 0), ("100", 100), ("33", 33)] {
        let c = ok(&format!(
            "[websocket]\nserver1=a:1\nmax_ejected_percent={v}\n"
        ));
        assert_eq!(c.websocket.max_ejected_percent, want, "{v}");
    }
    assert_eq!(
        err("[http]\nserver1=a:1\nmax_ejected_percent=101\n"),
        "t.ini:3: [http] max_ejected_percent: 101 is out of range 0..=100"
    );
    assert!(err("[http]\nserver1=a:1\nmax_ejected_percent=-1\n").contains("non-negative"));
}

#[test]
fn slow_start_group_default_and_per_server_override() {
    let c = ok("[http]\nserver1=a:1\nserver2=a:2\n");
    assert_eq!(c.http.slow_start, None, "off by default");
    assert!(c.http.servers.iter().all(|s| s.slow_start.is_none()));
    let c = ok(
        "[http]\nslow_start=30s\nserver1=a:1\nserver2=a:2\nserver2_slow_start=500ms\n\
                server3=a:3\nserver3_slow_start=off\nserver4=a:4\nserver4_slow_start=0\n",
    );
    assert_eq!(c.http.slow_start, Some(Duration::from_secs(30)));
    let spans: Vec<_> = c.http.servers.iter().map(|s| s.slow_start).collect();
    let ms = |n| Some(Duration::from_millis(n));
    assert_eq!(spans, [ms(30_000), ms(500), None, None]);
    // In [websocket] too, and a server may turn it on alone.
    let c = ok("[websocket]\nserver1=a:1\nserver1_slow_start=1m\nserver2=a:2\n");
    let spans: Vec<_> = c.websocket.servers.iter().map(|s| s.slow_start).collect();
    assert_eq!(spans, [ms(60_000), None]);
    assert_eq!(
        err("[http]\nserver1=a:1\nslow_start=soon\n"),
        "t.ini:3: [http] slow_start: expected a duration like 10, 500ms, 2s, 1m or 1h, got \"soon\""
    );
    assert!(err("[http]\nserver1=a:1\nserver1_slow_start=-5s\n")
        .starts_with("t.ini:3: [http] server1_slow_start: expected a duration"));
    assert!(err("[http]\nserver1=a:1\nserver01_slow_start=5s\n").contains("must not start with 0"));
}

#[test]
fn rebalance_keys_only_in_websocket() {
    let c = ok("[websocket]\nserver1=a:1\n");
    let ws = &c.websocket;
    assert_eq!(
        (ws.rebalance, ws.rebalance_rate, ws.rebalance_tolerance),
        (false, 10, 20)
    );
    let c =
        ok("[websocket]\nserver1=a:1\nrebalance=on\nrebalance_rate=50\nrebalance_tolerance=15%\n");
    let ws = &c.websocket;
    assert_eq!(
        (ws.rebalance, ws.rebalance_rate, ws.rebalance_tolerance),
        (true, 50, 15)
    );
    assert_eq!(
        ok("[websocket]\nserver1=a:1\nrebalance_tolerance=5\n")
            .websocket
            .rebalance_tolerance,
        5
    );
    for (line, msg) in [
        (
            "rebalance=maybe",
            "[websocket] rebalance: expected true/false",
        ),
        (
            "rebalance_rate=0",
            "[websocket] rebalance_rate: 0 is out of range 1..=100000",
        ),
        (
            "rebalance_tolerance=0%",
            "[websocket] rebalance_tolerance: 0 is out of range 1..=1000",
        ),
        (
            "rebalance_tolerance=x%",
            "[websocket] rebalance_tolerance: expected a non-negative",
        ),
    ] {
        let e = err(&format!("[websocket]\nserver1=a:1\n{line}\n"));
        assert!(e.starts_with(&format!("t.ini:3: {msg}")), "{line}: {e}");
    }
    assert_eq!(
        err("[http]\nserver1=a:1\nrebalance=on\n"),
        "t.ini:3: [http] rebalance: only valid in [websocket]"
    );
}

#[test]
fn max_connections_per_client() {
    assert_eq!(
        ok("[http]\nserver1=a:1\n")
            .frontend
            .max_connections_per_client,
        None
    );
    let with = |v: &str| {
        ok(&format!(
            "[frontend]\nmax_connections_per_client={v}\n[http]\nserver1=a:1\n"
        ))
    };
    assert_eq!(with("0").frontend.max_connections_per_client, None);
    assert_eq!(with("64").frontend.max_connections_per_client, Some(64));
    assert_eq!(
        err("[frontend]\nmax_connections_per_client=1000001\n[http]\nserver1=a:1\n"),
        "t.ini:2: [frontend] max_connections_per_client: 1000001 is out of range 0..=1000000"
    );
}

#[test]
fn request_buffer_bytes_is_http_only_and_at_most_one_buffer() {
    assert_eq!(ok("[http]\nserver1=a:1\n").http.request_buffer_bytes, 16384);
    let c = ok("[http]\nserver1=a:1\nrequest_buffer_bytes=0\n");
    assert_eq!(c.http.request_buffer_bytes, 0, "0 = off");
    let c = ok("[http]\nserver1=a:1\nrequest_buffer_bytes=4096\n");
    assert_eq!(c.http.request_buffer_bytes, 4096);
    assert_eq!(
        err("[http]\nserver1=a:1\nrequest_buffer_bytes=16385\n"),
        "t.ini:3: [http] request_buffer_bytes: 16385 is out of range 0..=16384"
    );
    assert_eq!(
        err("[http]\nserver1=a:1\nrequest_buffer_bytes=16k\n"),
        "t.ini:3: [http] request_buffer_bytes: expected a non-negative integer, got \"16k\""
    );
    assert_eq!(
        err("[websocket]\nserver1=a:1\nrequest_buffer_bytes=1\n"),
        "t.ini:3: [websocket] request_buffer_bytes: only valid in [http]"
    );
}

/// Parses as a build with the `tls` feature would, whatever this one has.
fn tls_ok(text: &str) -> Config {
    parse_for(text, "t.ini", &|_, port| Ok(local(port)), true).unwrap_or_else(|e| panic!("{e}"))
}

fn tls_err(text: &str) -> String {
    match parse_for(text, "t.ini", &|_, port| Ok(local(port)), true) {
        Ok(c) => panic!("accepted {text:?}: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn pair(name: &str, cert: &str, key: &str) -> CertPair {
    let (name, cert, key) = (name.into(), cert.into(), key.into());
    CertPair { name, cert, key }
}

#[test]
fn tls_listener_defaults_and_every_key() {
    let c = tls_ok("[frontend]\nhost=10.0.0.1\nrequest_header_timeout=7s\n[http]\nserver1=a:1\n[tls]\nport=8443\ncert=c.pem\nkey=k.pem\n");
    let t = c.tls.expect("[tls] present");
    assert_eq!((t.host.as_str(), t.port), ("10.0.0.1", 8443));
    assert_eq!(t.listen, SocketAddr::from(([10, 0, 0, 1], 8443)));
    assert_eq!(t.certs, vec![pair("cert", "c.pem", "k.pem")]);
    assert_eq!(t.min_version, TlsVersion::V1_2);
    assert_eq!(
        t.handshake_timeout,
        Duration::from_secs(7),
        "= request_header_timeout"
    );

    let c = tls_ok(
        "[http]\nserver1=a:1\n[tls]\nhost=127.0.0.3\nport=0\ncert=c.pem\nkey=k.pem\n\
         cert10 = d10.pem , k10.pem\ncert2=d2.pem,k2.pem\nmin_version=1.3\nhandshake_timeout=500ms\n",
    );
    let t = c.tls.expect("[tls] present");
    assert_eq!(t.listen, SocketAddr::from(([127, 0, 0, 3], 0)));
    let want = [
        pair("cert", "c.pem", "k.pem"),
        pair("cert2", "d2.pem", "k2.pem"),
        pair("cert10", "d10.pem", "k10.pem"),
    ];
    assert_eq!(t.certs, want, "cert first, then certN by N (not by text)");
    assert_eq!(t.min_version, TlsVersion::V1_3);
    assert_eq!(t.handshake_timeout, Duration::from_millis(500));
    assert!(ok("[http]\nserver1=a:1\n").tls.is_none());
}

#[test]
fn tls_listener_without_cert_key_uses_the_lowest_cert_n() {
    let c =
        tls_ok("[http]\nserver1=a:1\n[tls]\nport=1\ncert3=c3.pem,k3.pem\ncert1=c1.pem,k1.pem\n");
    let certs = c.tls.expect("[tls]").certs;
    assert_eq!(
        certs,
        [
            pair("cert1", "c1.pem", "k1.pem"),
            pair("cert3", "c3.pem", "k3.pem")
        ]
    );
}

#[test]
fn kubernetes_lifecycle_keys() {
    let f = ok("[http]\nserver1=a:1\n").frontend;
    assert_eq!(
        (f.shutdown_delay, f.reload_on_change),
        (Duration::ZERO, false)
    );
    let f =
        ok("[frontend]\nshutdown_delay=5s\nreload_on_change=true\n[http]\nserver1=a:1\n").frontend;
    assert_eq!(
        (f.shutdown_delay, f.reload_on_change),
        (Duration::from_secs(5), true)
    );
    let f = ok("[frontend]\nshutdown_delay=0\n[http]\nserver1=a:1\n").frontend;
    assert_eq!(f.shutdown_delay, Duration::ZERO);
    assert_eq!(
        err("[frontend]\nshutdown_delay=soon\n[http]\nserver1=a:1\n"),
        "t.ini:2: [frontend] shutdown_delay: expected a duration like 10, 500ms, 2s, 1m or 1h, got \"soon\""
    );
    assert_eq!(
        err("[frontend]\nreload_on_change=maybe\n[http]\nserver1=a:1\n"),
        "t.ini:2: [frontend] reload_on_change: expected true/false/on/off/yes/no/1/0, got \"maybe\""
    );
}

#[test]
fn algorithm_names_are_the_config_spellings() {
    for (spelling, algorithm) in ALGORITHMS {
        assert_eq!(algorithm.name(), spelling);
        assert_eq!(algorithm.to_string(), spelling);
        let c = ok(&format!("[http]\nalgorithm={spelling}\nserver1=a:1\n"));
        assert_eq!(c.http.algorithm.name(), spelling);
    }
}

#[test]
fn tls_listener_errors_name_the_line_and_key() {
    let base = "[http]\nserver1=a:1\n[tls]\n";
    let cases = [
        (
            "cert=c\nkey=k\n",
            "t.ini:3: [tls] port: required when [tls] is present",
        ),
        (
            "port=1\n",
            "t.ini:3: [tls] cert: needs a certificate: cert = chain.pem and key = key.pem",
        ),
        ("port=1\ncert=c\n", "t.ini:5: [tls] key: required with cert"),
        ("port=1\nkey=k\n", "t.ini:5: [tls] cert: required with key"),
        (
            "port=1\ncert2=c.pem\n",
            "t.ini:5: [tls] cert2: expected cert.pem, key.pem, got \"c.pem\"",
        ),
        (
            "port=1\ncert2=a,b,c\n",
            "t.ini:5: [tls] cert2: expected cert.pem, key.pem, got \"a,b,c\"",
        ),
        (
            "port=1\ncert2=,k\n",
            "t.ini:5: [tls] cert2: expected cert.pem, key.pem, got \",k\"",
        ),
        ("port=1\ncert02=c,k\n", "t.ini:5: [tls] cert02: unknown key"),
        ("port=1\ncert0=c,k\n", "t.ini:5: [tls] cert0: unknown key"),
        ("port=1\ncertx=c,k\n", "t.ini:5: [tls] certx: unknown key"),
        (
            "port=1\ncert=c\nkey=k\nmin_version=1.1\n",
            "t.ini:7: [tls] min_version: expected 1.2 or 1.3, got \"1.1\"",
        ),
        (
            "port=1\ncert=c\nkey=k\nhandshake_timeout=0\n",
            "t.ini:7: [tls] handshake_timeout: must be greater than 0",
        ),
        (
            "port=70000\ncert=c\nkey=k\n",
            "t.ini:4: [tls] port: 70000 is out of range 0..=65535",
        ),
        (
            "port=1\ncert=c\nkey=k\nmax_connections=1\n",
            "t.ini:7: [tls] max_connections: unknown key",
        ),
    ];
    for (tail, want) in cases {
        assert_eq!(tls_err(&format!("{base}{tail}")), want, "{tail}");
    }
}

#[test]
fn proxy_protocol_keys() {
    use protocol::proxy::{Accept, Version};
    let with = |v: &str| {
        ok(&format!(
            "[frontend]\naccept_proxy={v}\n[http]\nserver1=a:1\n"
        ))
    };
    assert_eq!(ok("[http]\nserver1=a:1\n").frontend.accept_proxy, None);
    assert_eq!(with("off").frontend.accept_proxy, None);
    assert_eq!(with("v1").frontend.accept_proxy, Some(Accept::V1));
    assert_eq!(with("V2").frontend.accept_proxy, Some(Accept::V2));
    assert_eq!(with("any").frontend.accept_proxy, Some(Accept::Any));
    assert_eq!(
        err("[frontend]\naccept_proxy=v3\n[http]\nserver1=a:1\n"),
        "t.ini:2: [frontend] accept_proxy: expected v1, v2, any or off, got \"v3\""
    );
    let c = ok("[http]\nserver1=a:1\nserver1_send_proxy=v2\nserver2=b:1\n[websocket]\nserver1=c:1\nserver1_send_proxy=v1\n");
    assert_eq!(c.http.servers[0].send_proxy, Some(Version::V2));
    assert_eq!(c.http.servers[1].send_proxy, None);
    assert_eq!(c.websocket.servers[0].send_proxy, Some(Version::V1));
    assert_eq!(
        err("[http]\nserver1=a:1\nserver1_send_proxy=any\n"),
        "t.ini:3: [http] server1_send_proxy: expected v1, v2 or off, got \"any\""
    );
}

#[test]
fn send_proxy_with_backend_tls_is_refused_not_sent_encrypted() {
    assert_eq!(
        tls_err("[http]\nserver1=a:443\nserver1_tls=true\nserver1_send_proxy=v2\n"),
        "t.ini:4: [http] server1_send_proxy: not supported together with server1_tls = true"
    );
}

#[test]
fn backend_tls_keys() {
    let c = tls_ok(
        "[http]\ntls_ca=group.pem\nserver1_addr=api.example:443\nserver1_tls=true\n\
         server2_addr=10.0.0.2:443\nserver2_tls=on\nserver2_tls_ca=own.pem\n\
         server3_addr=b:80\n\
         [websocket]\nserver1=ws.example:443\nserver1_tls=yes\nserver1_tls_verify=false\n",
    );
    let tls = |g: &Group, i: usize| g.servers[i].tls.clone();
    let want = |ca: Option<&str>, verify, name: &str| {
        let (ca, server_name) = (ca.map(String::from), name.into());
        Some(BackendTls {
            ca,
            verify,
            server_name,
        })
    };
    assert_eq!(c.http.tls_ca.as_deref(), Some("group.pem"));
    assert_eq!(
        tls(&c.http, 0),
        want(Some("group.pem"), true, "api.example")
    );
    assert_eq!(
        tls(&c.http, 1),
        want(Some("own.pem"), true, "10.0.0.2"),
        "per-server CA wins"
    );
    assert_eq!(tls(&c.http, 2), None, "plain by default");
    assert_eq!(
        tls(&c.websocket, 0),
        want(None, false, "ws.example"),
        "None = system roots"
    );
    assert_eq!(c.websocket.tls_ca, None);
    let warnings = c.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("[websocket] server1_tls_verify = false: the certificate of ws.example:443 is NOT verified"),
        "{warnings:?}"
    );
    assert!(ok("[http]\nserver1=a:1\n").warnings().is_empty());
}

#[test]
fn backend_tls_errors() {
    let cases = [
        (
            "[http]\nserver1=a:1\nserver1_tls=maybe\n",
            "t.ini:3: [http] server1_tls: expected true/false/on/off/yes/no/1/0, got \"maybe\"",
        ),
        (
            "[http]\nserver1=a:1\nserver1_tls_ca=x.pem\n",
            "t.ini:3: [http] server1_tls_ca: only valid with server1_tls = true",
        ),
        (
            "[http]\nserver1=a:1\nserver1_tls=false\nserver1_tls_verify=false\n",
            "t.ini:4: [http] server1_tls_verify: only valid with server1_tls = true",
        ),
        (
            "[http]\nserver1=a:1\nserver1_tls=true\nserver1_tls_ca=\n",
            "t.ini:4: [http] server1_tls_ca: expected a file path",
        ),
        (
            "[http]\nserver1=a:1\ntls_ca=\n",
            "t.ini:3: [http] tls_ca: expected a file path",
        ),
        (
            "[http]\nserver1=a:1\nserver1_tls_cert=x\n",
            "t.ini:3: [http] server1_tls_cert: unknown key",
        ),
        (
            "[http]\nserver1_tls=true\n",
            "t.ini:2: [http] server1_tls: server1 has no address (add server1 = host:port)",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(tls_err(text), want, "{text}");
    }
}

#[test]
fn tls_keys_without_the_feature_are_a_clear_error() {
    let plain = |text: &str| parse_for(text, "t.ini", &|_, port| Ok(local(port)), false);
    let e = plain("[http]\nserver1=a:1\n\n[tls]\nport=1\ncert=c\nkey=k\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.ini:4: [tls]: this sluice was built without TLS support (cargo build --features tls)"
    );
    let e = plain("[http]\nserver1=a:1\nserver2=b:1\nserver2_tls=true\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.ini:4: [http] server2_tls: this sluice was built without TLS support (cargo build --features tls)"
    );
    // Keys that ask for nothing TLS are fine anywhere.
    let c = plain("[http]\nserver1=a:1\nserver1_tls=false\ntls_ca=x.pem\n").expect("plain config");
    assert_eq!(c.http.servers[0].tls, None);
}
