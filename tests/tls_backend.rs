//! Issue 17, TLS to backends end to end: a Python `ssl` server as the independent peer,
//! certificates made at run time (tlsutil::Pki). Verification (CA and name), SNI, pooled
//! TLS connections reused (handshakes counted at the backend), health probes over TLS,
//! failures answered 502 and logged.
#![cfg(feature = "tls")]

mod tlsutil;
mod util;

use tlsutil::*;
use util::wait_until;

/// `[http]` with one TLS server `host:port` trusting the test CA, plus `extra` keys.
fn ini(host: &str, port: u16, extra: &str) -> String {
    format!(
        "[http]\nserver1={host}:{port}\nserver1_tls=true\ntls_ca={{pki}}/ca.pem\n{extra}\n\
         [tls]\nport=0\ncert={{pki}}/a.pem\nkey={{pki}}/a.key\n"
    )
}

fn body_of(p: &TlsProxy, target: &str) -> (u16, String) {
    let r = util::get(p.addr, target);
    (r.status, r.text())
}

#[test]
fn a_verified_tls_backend_gets_sni_and_its_pooled_connection_is_reused() {
    let pki = Pki::new("be-pool");
    let be = PyTlsBackend::start(&pki, "a.pem", "a.key");
    let extra = "enable_health_check=false\nserver1_min_workers=1\nserver1_max_workers=1";
    let p = TlsProxy::start(&pki, &ini("a.test", be.port(), extra), &[]);
    let mut last = String::new();
    for i in 0..10 {
        let (status, body) = body_of(&p, &format!("/r{i}"));
        assert_eq!(status, 200, "{body}");
        last = body;
    }
    assert_eq!(
        last, "hs=1 sni=a.test path=/r9",
        "one handshake for ten requests"
    );
    // Through the TLS listener as well: HTTPS in, HTTPS out, same pooled connection.
    let mut s = tls_connect(p.tls, &pki.path("ca.pem"), "a.test");
    use std::io::{Read, Write};
    s.write_all(b"GET /in HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(text.ends_with("hs=1 sni=a.test path=/in"), "{text}");
    assert_eq!(
        p.metric("sluice_tls_handshakes_total{side=\"backend\"}"),
        1.0
    );
}

#[test]
fn health_probes_use_tls_to_tls_backends() {
    let pki = Pki::new("be-probe");
    let be = PyTlsBackend::start(&pki, "a.pem", "a.key");
    let extra = "enable_health_check=true\nhealth_check_interval=100ms\nhealth_check_timeout=50ms\nrise=1\nfall=1";
    let p = TlsProxy::start(&pki, &ini("a.test", be.port(), extra), &[]);
    let log = pki.path("py-a.pem-a.key.log");
    assert!(
        wait_until(
            || std::fs::read_to_string(&log).is_ok_and(|l| l.matches("/healthCheck").count() >= 2)
        ),
        "probes reached the TLS backend (a plain probe fails its handshake)"
    );
    assert_eq!(
        p.metric("sluice_server_up{group=\"http\",server=\"server1\""),
        1.0
    );
    let (status, body) = body_of(&p, "/after");
    assert_eq!(status, 200, "{body}");
}

/// The real binary (its stderr is the log): `host` is how server1 is written.
fn failing(pki: &Pki, cert: &str, key: &str, host: &str) -> (u16, String, String) {
    let be = PyTlsBackend::start(pki, cert, key);
    let text = pki.ini(&format!(
        "[http]\nserver1={host}:{}\nserver1_tls=true\ntls_ca={{pki}}/ca.pem\n\
         enable_health_check=false\nretries=0\n",
        be.port()
    ));
    let p = util::ProxyProcess::start(&text, &[]);
    let r = util::get(p.addr, "/x");
    assert!(
        wait_until(|| p.stderr().contains("TLS to")),
        "a log line: {}",
        p.stderr()
    );
    (r.status, r.text(), p.stderr())
}

#[test]
fn a_wrong_host_name_is_a_502_and_a_log_line() {
    let pki = Pki::new("be-name");
    // b's certificate names b.test only; the server is 127.0.0.1.
    let (status, body, log) = failing(&pki, "b.pem", "b.key", "127.0.0.1");
    assert_eq!(status, 502, "{body}");
    assert!(log.contains("TLS to http server1 failed (cert)"), "{log}");
    assert!(log.contains("not valid for name \"127.0.0.1\""), "{log}");
}

#[test]
fn an_unknown_ca_is_a_502_and_a_log_line() {
    let pki = Pki::new("be-ca");
    // c is signed by another CA (its names match).
    let (status, body, log) = failing(&pki, "c.pem", "c.key", "127.0.0.1");
    assert_eq!(status, 502, "{body}");
    assert!(
        log.contains("(cert)") && log.contains("UnknownIssuer"),
        "{log}"
    );
}

/// A backend that accepts TCP but is no TLS server: it never answers the ClientHello
/// (`garbage` None) or answers it with `garbage`, and keeps the connection open either way
/// (so only sluice's own deadline or its TLS check can end it).
fn not_tls(garbage: Option<&'static [u8]>) -> util::RawBackend {
    util::RawBackend::start(move |mut s, _, stop| {
        use std::io::{Read, Write};
        let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(50)));
        if let Some(g) = garbage {
            let mut hello = [0u8; 4096];
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match s.read(&mut hello) {
                    Ok(0) => return,
                    Ok(_) => break,
                    Err(_) => {}
                }
            }
            let _ = s.write_all(g);
        }
        util::discard_until_closed(&mut s, stop);
    })
}

/// The real binary with `[admin]`, `groups` the group sections (`{pki}` is substituted).
fn binary(pki: &Pki, groups: &str) -> (util::ProxyProcess, std::net::SocketAddr) {
    util::ProxyProcess::start_raw(&pki.ini(&format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n{groups}\n\
         [admin]\nhost=127.0.0.1\nport={{admin}}\n[log]\nlevel=warn\naccess_log=false\n"
    )))
}

fn backend_failures(admin: std::net::SocketAddr, reason: &str) -> f64 {
    util::metric_in(
        &util::metrics_at(admin),
        &format!("sluice_tls_handshake_failures_total{{side=\"backend\",reason=\"{reason}\"}}"),
    )
}

fn server_failures(admin: std::net::SocketAddr, server: &str) -> f64 {
    util::metric_in(
        &util::metrics_at(admin),
        &format!("sluice_server_failures_total{{group=\"http\",server=\"{server}\""),
    )
}

#[test]
fn a_backend_that_never_answers_the_client_hello_fails_at_the_connect_timeout() {
    let pki = Pki::new("be-stall");
    let be = not_tls(None);
    // The response timeout (60 s) is far past the client's patience (util::WAIT): only the
    // connect timeout, which covers the handshake, answers in time.
    let (p, admin) = binary(
        &pki,
        &format!(
            "[http]\nserver1={}\nserver1_tls=true\ntls_ca={{pki}}/ca.pem\n\
             enable_health_check=false\nretries=0\nconnect_timeout=1s\nresponse_timeout=60s\n",
            be.addr
        ),
    );
    let addr = p.addr;
    let stuck = std::thread::spawn(move || util::get(addr, "/stuck"));
    assert!(
        wait_until(|| be.accepted() >= 1),
        "sluice connected to the backend"
    );
    // The loop is not blocked by the handshake that hangs: the admin listener answers.
    assert!(util::metrics_at(admin).contains("sluice_tls_handshakes_total"));
    let r = stuck.join().expect("the stuck request gets an answer");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        wait_until(|| p.stderr().contains("TLS to http server1 failed (timeout)")),
        "a log line: {}",
        p.stderr()
    );
    assert!(backend_failures(admin, "timeout") >= 1.0);
    assert!(
        server_failures(admin, "server1") >= 1.0,
        "a passive failure"
    );
}

#[test]
fn a_backend_that_answers_the_client_hello_with_garbage_is_retried_on_another_server() {
    let pki = Pki::new("be-garbage");
    let bad = not_tls(Some(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let good = PyTlsBackend::start(&pki, "a.pem", "a.key");
    let (p, admin) = binary(
        &pki,
        &format!(
            "[http]\nalgorithm=round-robin\nserver1={}\nserver1_tls=true\n\
             server2=127.0.0.1:{}\nserver2_tls=true\ntls_ca={{pki}}/ca.pem\n\
             enable_health_check=false\nretries=1\nconnect_timeout=1s\nresponse_timeout=60s\n",
            bad.addr,
            good.port()
        ),
    );
    for i in 0..4 {
        let r = util::get(p.addr, &format!("/r{i}"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().ends_with(&format!("path=/r{i}")), "{}", r.text());
    }
    assert!(bad.accepted() >= 1, "server1 was tried");
    assert!(
        wait_until(|| p
            .stderr()
            .contains("TLS to http server1 failed (bad_hello)")),
        "a log line: {}",
        p.stderr()
    );
    assert!(backend_failures(admin, "bad_hello") >= 1.0);
    assert!(
        server_failures(admin, "server1") >= 1.0,
        "a passive failure"
    );
}

#[test]
fn a_health_probe_to_a_backend_that_never_answers_the_client_hello_times_out() {
    let pki = Pki::new("be-probe-stall");
    let be = not_tls(None);
    let (_p, admin) = binary(
        &pki,
        &format!(
            "[http]\nserver1={}\nserver1_tls=true\nserver1_min_workers=0\ntls_ca={{pki}}/ca.pem\n\
             enable_health_check=true\nhealth_check_interval=200ms\nhealth_check_timeout=100ms\n\
             rise=1\nfall=1\nconnect_timeout=10s\n",
            be.addr
        ),
    );
    let down = || {
        util::metric_in(
            &util::metrics_at(admin),
            "sluice_server_up{group=\"http\",server=\"server1\"",
        ) == 0.0
    };
    assert!(wait_until(down), "the probe's timeout covers the handshake");
    assert!(
        wait_until(|| backend_failures(admin, "timeout") >= 1.0),
        "{}",
        util::metrics_at(admin)
    );
}

#[test]
fn an_upgrade_to_a_tls_websocket_server_waits_for_its_own_handshake() {
    // An upgrade gets a fresh, unpooled connection: it is dispatched once that
    // connection's handshake is done (the Python backend answers 200, not 101: the
    // answer stays HTTP and shows the request went through the TLS session).
    let pki = Pki::new("be-ws");
    let be = PyTlsBackend::start(&pki, "a.pem", "a.key");
    let ini = format!(
        "[websocket]\nserver1=a.test:{}\nserver1_tls=true\ntls_ca={{pki}}/ca.pem\n\
         enable_health_check=false\n\
         [tls]\nport=0\ncert={{pki}}/a.pem\nkey={{pki}}/a.key\n",
        be.port()
    );
    let p = TlsProxy::start(&pki, &ini, &[]);
    let mut c = util::Client::connect(p.addr);
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let r = c.read_response(false).expect("an answer");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "hs=1 sni=a.test path=/ws");
    assert_eq!(
        p.metric("sluice_tls_handshakes_total{side=\"backend\"}"),
        1.0
    );
}
