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
