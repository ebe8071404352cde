//! Issue 17: heap allocations per request over established TLS connections, counted on the
//! reactor's thread only (a counting global allocator, as in tests/alloc.rs). After a
//! warm-up (handshakes done, pools open, buffers in the free lists, slabs grown), keep-alive
//! HTTPS requests may allocate only what rustls 0.23 itself allocates per TLS record: one
//! `Vec` for each record received (its plaintext is copied out of our buffer into a queue of
//! `Vec`s, the unbuffered API included) and one for each record sent (`encrypt` builds the
//! record in a `Vec` before copying it into our buffer). Every buffer of sluice's own comes
//! from the free list. A small request and its small answer are one record each way, so a
//! request through a TLS client and a plain backend costs exactly 2, and through a TLS
//! client and a TLS backend exactly 4; anything more is an allocation of ours.
#![cfg(feature = "tls")]

mod allocutil;
mod tlsutil;
mod util;

use std::io::{Read, Write};
use tlsutil::*;
use util::Backend;

/// Sends `req` and reads one response with a Content-Length body; its body.
#[track_caller]
fn exchange(s: &mut TlsStream, req: &[u8]) -> String {
    s.write_all(req).expect("request");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = (head.lines())
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("a Content-Length");
            if got.len() >= end + 4 + len {
                assert_eq!(got.len(), end + 4 + len, "one response");
                return String::from_utf8_lossy(&got[end + 4..]).into_owned();
            }
        }
        let n = s.read(&mut chunk).expect("response");
        assert!(n > 0, "closed before the response");
        got.extend_from_slice(&chunk[..n]);
    }
}

/// A reactor (tracked) with `[tls]` and the `[http]` section `http`, 4 keep-alive TLS
/// clients: the allocations counted for 1,000 requests after a warm-up of 200.
fn allocations_per_1000_requests(pki: &Pki, http: &str) -> u64 {
    let text = pki.ini(&format!(
        "[frontend]\nhost=127.0.0.1\nport=0\n{http}\n\
         [tls]\nport=0\ncert={{pki}}/a.pem\nkey={{pki}}/a.key\n\
         [log]\nlevel=warn\naccess_log=false\n"
    ));
    let local = |_: &str, port: u16| Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let cfg = sluice::config::parse(&text, "tls-alloc.ini", &local).expect("config");
    let mut reactor = sluice::Reactor::with_seed(cfg, 1).expect("reactor");
    let addr = reactor.tls_addr().expect("[tls] listener");
    let stop = reactor.stop_handle();
    let thread = std::thread::spawn(move || {
        allocutil::track();
        reactor.run().expect("reactor runs");
    });
    let ca = pki.path("ca.pem");
    let mut clients: Vec<TlsStream> = (0..4).map(|_| tls_connect(addr, &ca, "a.test")).collect();
    let mut round = |n: usize| {
        for _ in 0..n {
            for c in clients.iter_mut() {
                let body = exchange(c, b"GET /ping?x=1 HTTP/1.1\r\nHost: a.test\r\n\r\n");
                assert!(
                    body.contains("/ping") || body.starts_with("hello"),
                    "{body}"
                );
            }
        }
    };
    round(50);
    let before = allocutil::allocations();
    round(250);
    let after = allocutil::allocations();
    drop(clients);
    stop.stop();
    thread.join().expect("reactor thread");
    after - before
}

/// A keep-alive HTTPS backend (rustls on blocking sockets, a thread per connection) that
/// answers every request in one write, so one record: the count stays exact.
fn tls_backend(pki: &Pki) -> std::net::SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<_> = (CertificateDer::pem_file_iter(pki.path("a.pem")).expect("cert"))
        .map(|c| c.expect("pem"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(pki.path("a.key")).expect("key");
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let config = std::sync::Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            let conn = rustls::ServerConnection::new(config.clone()).expect("session");
            std::thread::spawn(move || {
                let mut s = rustls::StreamOwned::new(conn, sock);
                let (mut got, mut chunk) = (Vec::new(), [0u8; 4096]);
                loop {
                    while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
                        if s.write_all(answer).is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk) {
                        Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn tls_keep_alive_requests_allocate_only_rustls_per_record_vecs() {
    let pki = Pki::new("alloc");
    let (a, b) = (Backend::hello("a"), Backend::hello("b"));
    let plain = format!(
        "[http]\nalgorithm=round-robin\nenable_health_check=false\n\
         server1={}\nserver2={}\n",
        a.addr, b.addr
    );
    let tls_backend = tls_backend(&pki);
    let to_tls = format!(
        "[http]\nenable_health_check=false\nserver1=a.test:{}\nserver1_tls=true\n\
         tls_ca={{pki}}/ca.pem\nserver1_min_workers=4\nserver1_max_workers=4\n",
        tls_backend.port()
    );
    // (what, configuration, allocations per request: one per record each way per TLS leg)
    let cases = [
        ("TLS client, plain backends", plain, 2),
        ("TLS client, TLS backend", to_tls, 4),
    ];
    let mut failed = Vec::new();
    for (what, http, per_request) in &cases {
        let n = allocations_per_1000_requests(&pki, http);
        println!(
            "allocations on the reactor thread for 1000 HTTPS keep-alive requests ({what}): {n}"
        );
        if n != 1000 * per_request {
            failed.push(format!("{what}: {n}, expected {}", 1000 * per_request));
        }
    }
    assert!(
        failed.is_empty(),
        "steady-state TLS requests allocated more than rustls's one Vec per record: {failed:?}"
    );
}
