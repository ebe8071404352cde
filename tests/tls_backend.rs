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
