//! `TlsSession` against rustls's own client and server, through byte vectors: no sockets.
//! Certificates come from `pki.rs` (made at run time with the `openssl` command, removed at
//! the end of each test).

use super::*;
use crate::buf::BufPool;
use crate::config::{BackendTls, CertPair, Config, TlsVersion};
use rustls::pki_types::ServerName;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod pki;
use pki::Pki;

/// A client that accepts any certificate (to see which one an unknown SNI gets).
fn trusting_client() -> Arc<rustls::ClientConfig> {
    let c = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider())))
        .with_no_client_auth();
    Arc::new(c)
}

fn connect(config: Arc<rustls::ClientConfig>, name: &str) -> rustls::ClientConnection {
    let name = ServerName::try_from(name.to_string()).expect("name");
    rustls::ClientConnection::new(config, name).expect("client")
}

/// Ciphertext from `peer` into `session` through a pooled buffer, as the reactor will do;
/// the decrypted bytes are appended to `plain`.
fn to_session(
    peer: &mut rustls::Connection,
    s: &mut TlsSession,
    bufs: &mut BufPool,
    plain: &mut Vec<u8>,
) -> Result<bool, TlsError> {
    let mut wire = Vec::new();
    while peer.wants_write() {
        peer.write_tls(&mut wire).expect("write_tls to a Vec");
    }
    let mut rest = &wire[..];
    let mut buf = bufs.get();
    loop {
        let n = match s.input(bufs) {
            Some(cipher) => cipher.push(rest),
            None => 0,
        };
        rest = &rest[n..];
        let moved = s.read(&mut buf, bufs)?;
        assert!(moved <= crate::buf::BUF_SIZE);
        plain.extend_from_slice(buf.bytes());
        buf.consume(buf.len());
        if n == 0 && moved == 0 && !s.has_plain() {
            break;
        }
    }
    s.input_done(bufs);
    assert!(rest.is_empty(), "every record taken");
    bufs.put(buf);
    Ok(!wire.is_empty())
}

/// Ciphertext from `session` to `peer`; `peer`'s decrypted bytes are appended to `plain`.
fn to_peer(
    s: &mut TlsSession,
    peer: &mut rustls::Connection,
    bufs: &mut BufPool,
    plain: &mut Vec<u8>,
) -> Result<bool, Error> {
    let mut moved = false;
    s.poll_output(bufs);
    while let Some(cipher) = s.cipher() {
        moved = true;
        let mut rest = cipher.bytes();
        while !rest.is_empty() {
            peer.read_tls(&mut rest).expect("read_tls from a slice");
            peer.process_new_packets()?;
            let _ = std::io::Read::read_to_end(&mut peer.reader(), plain);
        }
        cipher.consume(cipher.len());
        s.sent(bufs);
        s.poll_output(bufs);
    }
    Ok(moved)
}

/// Ciphertext into a fresh session in one record buffer; returns the bytes taken.
fn feed_bytes(s: &mut TlsSession, bytes: &[u8], bufs: &mut BufPool) -> Result<usize, TlsError> {
    let mut plain = bufs.get();
    let n = s.input(bufs).expect("room").push(bytes);
    let r = s.read(&mut plain, bufs);
    bufs.put(plain);
    r.map(|_| n)
}

/// What both sides saw.
#[derive(Debug, Default)]
struct Seen {
    at_session: Vec<u8>,
    at_peer: Vec<u8>,
    peer_error: Option<String>,
}

/// Moves bytes both ways until nothing moves; the session's error ends it.
fn pump(
    peer: &mut rustls::Connection,
    s: &mut TlsSession,
    bufs: &mut BufPool,
) -> Result<Seen, TlsError> {
    let mut seen = Seen::default();
    for _ in 0..100 {
        let a = to_session(peer, s, bufs, &mut seen.at_session)?;
        let b = match to_peer(s, peer, bufs, &mut seen.at_peer) {
            Ok(b) => b,
            Err(e) => {
                seen.peer_error = Some(e.to_string());
                return Ok(seen);
            }
        };
        if !a && !b {
            return Ok(seen);
        }
    }
    panic!("the handshake does not settle");
}

fn t0() -> Instant {
    Instant::now()
}

#[test]
fn ecdsa_and_rsa_over_tls13_and_tls12_carry_http_both_ways() {
    let pki = Pki::new("carry");
    let server = ServerTls::new(&pki.listener(
        vec![pki.pair("cert", "a", "a"), pki.pair("cert2", "b", "b")],
        TlsVersion::V1_2,
    ))
    .expect("server config");
    let mut bufs = BufPool::default();
    let v12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    let v13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    for (sni, versions, want) in [
        ("a.test", v13, rustls::ProtocolVersion::TLSv1_3),
        ("b.test", v13, rustls::ProtocolVersion::TLSv1_3),
        ("a.test", v12, rustls::ProtocolVersion::TLSv1_2),
        ("b.test", v12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let mut s = server.accept(t0()).expect("session");
        let mut peer: rustls::Connection = connect(pki.client("ca", versions), sni).into();
        let seen = pump(&mut peer, &mut s, &mut bufs).expect("handshake");
        assert_eq!(seen.peer_error, None, "{sni}");
        assert!(s.is_open() && !peer.is_handshaking(), "{sni} {want:?}");
        assert_eq!(s.version(), Some(want));
        assert_eq!(peer.alpn_protocol(), Some(ALPN_HTTP1));
        assert_eq!(s.deadline(), None, "no deadline once open");

        // A request in, a response out, through 16 KiB pooled buffers.
        let req = b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
        peer.writer().write_all(req).expect("client write");
        let seen = pump(&mut peer, &mut s, &mut bufs).expect("request");
        assert_eq!(seen.at_session, req);
        let mut resp = bufs.get();
        resp.push(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let n = s.write(&mut resp, &mut bufs);
        assert_eq!((n, resp.len()), (40, 0));
        let seen = pump(&mut peer, &mut s, &mut bufs).expect("response");
        assert_eq!(
            seen.at_peer,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        );
        bufs.put(resp);
    }
    assert_eq!(bufs.outstanding, 0);
}

#[test]
fn large_bodies_flow_through_fixed_buffers_with_backpressure() {
    let pki = Pki::new("large");
    let server = ServerTls::new(&pki.listener(vec![pki.pair("cert", "a", "a")], TlsVersion::V1_3))
        .expect("server config");
    let mut bufs = BufPool::default();
    let mut s = server.accept(t0()).expect("session");
    let mut peer: rustls::Connection =
        connect(pki.client("ca", rustls::ALL_VERSIONS), "a.test").into();
    pump(&mut peer, &mut s, &mut bufs).expect("handshake");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();

    // Upload: 200 kB through 16 KiB buffers (the session stops taking ciphertext while
    // decrypted bytes wait, `to_session` drains between feeds).
    let mut up = Vec::new();
    for chunk in body.chunks(50_000) {
        peer.writer().write_all(chunk).expect("write");
        up.extend(
            pump(&mut peer, &mut s, &mut bufs)
                .expect("upload")
                .at_session,
        );
    }
    assert_eq!(up.len(), body.len());
    assert!(up == body, "bytes and order kept");

    // Download: `write` accepts at most one pooled buffer of records until they are taken.
    let mut got = Vec::new();
    let mut rest = &body[..];
    while !rest.is_empty() {
        let mut plain = bufs.get();
        let n = plain.push(rest);
        rest = &rest[n..];
        let mut taken = 0;
        while !plain.is_empty() {
            let k = s.write(&mut plain, &mut bufs);
            assert!(k <= crate::buf::BUF_SIZE);
            taken += k;
            to_peer(&mut s, &mut peer, &mut bufs, &mut got).expect("peer reads");
        }
        assert_eq!(taken, n);
        bufs.put(plain);
    }
    assert!(
        got == body,
        "download intact ({} of {})",
        got.len(),
        body.len()
    );
    assert_eq!(bufs.outstanding, 0);
}

#[test]
fn sni_picks_the_certificate_and_unknown_or_missing_names_get_the_first() {
    let pki = Pki::new("sni");
    let (a, b) = (pki.der("a"), pki.der("b"));
    let pairs = vec![pki.pair("cert", "a", "a"), pki.pair("cert2", "b", "b")];
    let server = ServerTls::new(&pki.listener(pairs, TlsVersion::V1_2)).expect("config");
    let mut bufs = BufPool::default();
    for (sni, want) in [
        ("b.test", &b),
        ("B.Test", &b),
        ("a.test", &a),
        ("x.wild.test", &a),
        ("y.x.wild.test", &a), // a wildcard covers one label only: the default answers
        ("unknown.test", &a),
        ("127.0.0.1", &a), // an IP address: the client sends no SNI
    ] {
        let mut s = server.accept(t0()).expect("session");
        let mut peer: rustls::Connection = connect(trusting_client(), sni).into();
        pump(&mut peer, &mut s, &mut bufs).expect("handshake");
        let got = peer.peer_certificates().expect("a certificate")[0].clone();
        assert!(&got == want, "{sni}: wrong certificate");
    }
    // The default is the first configured pair, whichever it is.
    let pairs = vec![pki.pair("cert", "b", "b"), pki.pair("cert2", "a", "a")];
    let server = ServerTls::new(&pki.listener(pairs, TlsVersion::V1_2)).expect("config");
    let mut s = server.accept(t0()).expect("session");
    let mut peer: rustls::Connection = connect(trusting_client(), "unknown.test").into();
    pump(&mut peer, &mut s, &mut bufs).expect("handshake");
    assert!(peer.peer_certificates().expect("cert")[0] == b);
}

/// A TLS 1.1 ClientHello (no supported_versions extension), as an old client sends it.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0x00, 0x2f, 0x00, 0x35]); // AES128/256-SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00, 0x00, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, hs.len() as u8];
    record.extend_from_slice(&hs);
    record
}

#[test]
fn old_versions_are_refused_with_reason_version() {
    let pki = Pki::new("version");
    let mut bufs = BufPool::default();
    let v12 = pki.listener(vec![pki.pair("cert", "a", "a")], TlsVersion::V1_2);
    let v13 = pki.listener(vec![pki.pair("cert", "a", "a")], TlsVersion::V1_3);
    let (min12, min13) = (
        ServerTls::new(&v12).expect("1.2"),
        ServerTls::new(&v13).expect("1.3"),
    );

    for server in [&min12, &min13] {
        let mut s = server.accept(t0()).expect("session");
        let e = feed_bytes(&mut s, &tls11_client_hello(), &mut bufs);
        assert_eq!(e, Err(TlsError::Handshake(HandshakeFail::Version)));
        assert!(s.last_error().is_some());
        let alert = s.cipher().expect("an alert is queued for the client");
        assert_eq!(alert.bytes()[0], 0x15, "alert record");
        s.release(&mut bufs);
    }

    let tls12_only = pki.client("ca", &[&rustls::version::TLS12]);
    let mut s = min13.accept(t0()).expect("session");
    let mut peer: rustls::Connection = connect(tls12_only.clone(), "a.test").into();
    let e = pump(&mut peer, &mut s, &mut bufs).expect_err("1.2 refused when min = 1.3");
    assert_eq!(e, TlsError::Handshake(HandshakeFail::Version));

    let mut s = min12.accept(t0()).expect("session");
    let mut peer: rustls::Connection = connect(tls12_only, "a.test").into();
    pump(&mut peer, &mut s, &mut bufs).expect("1.2 accepted when min = 1.2");
    assert!(s.is_open());
}

#[test]
fn h2_only_clients_are_refused_http1_clients_get_http1() {
    let pki = Pki::new("alpn");
    let server = ServerTls::new(&pki.listener(vec![pki.pair("cert", "a", "a")], TlsVersion::V1_2))
        .expect("config");
    let mut bufs = BufPool::default();
    let mut h2 = (*pki.client("ca", rustls::ALL_VERSIONS)).clone();
    h2.alpn_protocols = vec![b"h2".to_vec()];
    let mut s = server.accept(t0()).expect("session");
    let mut peer: rustls::Connection = connect(Arc::new(h2.clone()), "a.test").into();
    let e = pump(&mut peer, &mut s, &mut bufs).expect_err("no common ALPN");
    assert_eq!(e, TlsError::Handshake(HandshakeFail::Version));
    h2.alpn_protocols = vec![b"h2".to_vec(), ALPN_HTTP1.to_vec()];
    let mut s = server.accept(t0()).expect("session");
    let mut peer: rustls::Connection = connect(Arc::new(h2), "a.test").into();
    pump(&mut peer, &mut s, &mut bufs).expect("handshake");
    assert_eq!(peer.alpn_protocol(), Some(ALPN_HTTP1));
}

#[test]
fn plain_http_and_garbage_fail_cleanly_with_their_reason() {
    let pki = Pki::new("plain");
    let server = ServerTls::new(&pki.listener(vec![pki.pair("cert", "a", "a")], TlsVersion::V1_2))
        .expect("config");
    let mut bufs = BufPool::default();
    let mut handshake_bytes_garbage = vec![0x16, 0x03, 0x01, 0x00, 0x05];
    handshake_bytes_garbage.extend_from_slice(&[0xff; 5]);
    for (input, why) in [
        (
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            HandshakeFail::PlainHttp,
        ),
        (b"POST /x HTTP/1.0\r\n\r\n", HandshakeFail::PlainHttp),
        (b"\x00\x01\x02\x03", HandshakeFail::BadHello),
        (b"\r\n", HandshakeFail::BadHello),
        (&handshake_bytes_garbage, HandshakeFail::BadHello),
    ] {
        let mut s = server.accept(t0()).expect("session");
        let mut plain = bufs.get();
        s.input(&mut bufs).expect("room").push(input);
        let e = s.read(&mut plain, &mut bufs);
        assert_eq!(e, Err(TlsError::Handshake(why)), "{input:?}");
        assert_eq!(s.buffers(), 0, "a failed session takes everything");
        assert_eq!(s.failure(), Some(TlsError::Handshake(why)));
        // Nothing more is accepted, nothing decrypted.
        s.input(&mut bufs).expect("room").push(b"more");
        let e = s.read(&mut plain, &mut bufs);
        assert_eq!(e, Err(TlsError::Handshake(why)));
        assert!(plain.is_empty());
        plain.push(b"more");
        assert_eq!(s.write(&mut plain, &mut bufs), 0);
        s.release(&mut bufs);
        bufs.put(plain);
        assert_eq!(bufs.outstanding, 0);
    }
}

#[test]
fn the_handshake_is_bounded_in_bytes() {
    let pki = Pki::new("flood");
    let server = ServerTls::new(&pki.listener(vec![pki.pair("cert", "a", "a")], TlsVersion::V1_2))
        .expect("config");
    let mut s = server.accept(t0()).expect("session");
    // A ClientHello announcing 65,535 bytes, sent in full 16 KiB records: rustls would
    // buffer it all; the session stops the peer at MAX_HANDSHAKE_BYTES_SERVER.
    let mut flood = Vec::new();
    let mut first = true;
    while flood.len() < 3 * MAX_HANDSHAKE_BYTES_SERVER {
        flood.extend_from_slice(&[0x16, 0x03, 0x01, 0x40, 0x00]);
        let mut fragment = vec![0x41u8; 0x4000];
        if first {
            fragment[..4].copy_from_slice(&[0x01, 0x00, 0xff, 0xff]);
            first = false;
        }
        flood.extend_from_slice(&fragment);
    }
    let mut bufs = BufPool::default();
    let mut plain = bufs.get();
    let mut taken = 0;
    let err = loop {
        let chunk = &flood[taken..(taken + 0x4000).min(flood.len())];
        let cipher = s.input(&mut bufs).expect("room while handshaking");
        if cipher.space() < chunk.len() {
            cipher.grow(cipher.capacity() * 2);
        }
        cipher.push(chunk);
        match s.read(&mut plain, &mut bufs) {
            Ok(_) => taken += chunk.len(),
            Err(e) => break e,
        }
    };
    s.release(&mut bufs);
    assert_eq!(err, TlsError::Handshake(HandshakeFail::TooLarge));
    assert!(taken <= MAX_HANDSHAKE_BYTES_SERVER, "{taken}");
}

#[test]
fn the_handshake_is_bounded_in_time_and_eof_is_counted() {
    let pki = Pki::new("timeout");
    let server = ServerTls::new(&pki.listener(vec![pki.pair("cert", "a", "a")], TlsVersion::V1_2))
        .expect("config");
    let now = t0();
    let mut s = server.accept(now).expect("session");
    assert_eq!(s.deadline(), Some(now + Duration::from_secs(5)));
    assert_eq!(s.on_timeout(now + Duration::from_millis(4999)), None);
    assert!(s.is_handshaking());
    assert_eq!(
        s.on_timeout(now + Duration::from_secs(5)),
        Some(HandshakeFail::Timeout)
    );
    assert_eq!(
        s.failure(),
        Some(TlsError::Handshake(HandshakeFail::Timeout))
    );
    assert_eq!(s.deadline(), None);
    assert_eq!(
        s.on_timeout(now + Duration::from_secs(9)),
        None,
        "counted once"
    );

    let mut s = server.accept(now).expect("session");
    assert_eq!(s.on_eof(), Some(HandshakeFail::Eof));
    let mut stats = HandshakeStats::default();
    stats.fail(HandshakeFail::Eof);
    stats.fail(HandshakeFail::Timeout);
    stats.fail(HandshakeFail::Timeout);
    assert_eq!(stats.failed(HandshakeFail::Timeout), 2);
    assert_eq!(stats.failed(HandshakeFail::Eof), 1);
    assert_eq!(stats.failed(HandshakeFail::Cert), 0);
    let names: Vec<&str> = HandshakeFail::ALL.iter().map(|r| r.name()).collect();
    let want = [
        "plain_http",
        "bad_hello",
        "timeout",
        "too_large",
        "version",
        "cert",
        "eof",
        "other",
    ];
    assert_eq!(names, want);

    // Open sessions have no deadline and ignore EOF here (the reactor sees it as EOF).
    let mut bufs = BufPool::default();
    let mut s = server.accept(now).expect("session");
    let mut peer: rustls::Connection =
        connect(pki.client("ca", rustls::ALL_VERSIONS), "a.test").into();
    pump(&mut peer, &mut s, &mut bufs).expect("handshake");
    assert_eq!(s.on_timeout(now + Duration::from_secs(3600)), None);
    assert_eq!(s.on_eof(), None);
}

#[test]
fn close_notify_is_a_clean_eof_both_ways() {
    let pki = Pki::new("close");
    let server = ServerTls::new(&pki.listener(vec![pki.pair("cert", "a", "a")], TlsVersion::V1_2))
        .expect("config");
    let mut bufs = BufPool::default();
    let mut s = server.accept(t0()).expect("session");
    let mut peer: rustls::Connection =
        connect(pki.client("ca", rustls::ALL_VERSIONS), "a.test").into();
    pump(&mut peer, &mut s, &mut bufs).expect("handshake");
    peer.writer().write_all(b"last").expect("write");
    peer.send_close_notify();
    let mut wire = Vec::new();
    while peer.wants_write() {
        peer.write_tls(&mut wire).expect("write_tls");
    }
    let mut plain = bufs.get();
    s.input(&mut bufs).expect("room").push(&wire);
    assert_eq!(s.read(&mut plain, &mut bufs), Ok(4));
    assert_eq!(s.buffers(), 0, "every record taken");
    assert_eq!(plain.bytes(), b"last");
    assert!(s.peer_closed() && !s.has_plain(), "a clean EOF");
    s.close();
    assert!(s.wants_write());
    let seen = pump(&mut peer, &mut s, &mut bufs).expect("close");
    assert_eq!(seen.peer_error, None);
    assert_eq!(
        std::io::Read::read(&mut peer.reader(), &mut [0; 8]).ok(),
        Some(0)
    );
    bufs.put(plain);
}

#[test]
fn pairs_are_checked_and_errors_name_the_pair() {
    let pki = Pki::new("pairs");
    let p = provider();
    assert!(load_pair(&pki.pair("cert", "a", "a"), &p).is_ok());
    assert!(load_pair(&pki.pair("cert", "b", "b"), &p).is_ok());
    let missing = CertPair {
        name: "cert3".into(),
        cert: pki.path("nope.pem"),
        key: pki.path("a.key"),
    };
    let key_as_cert = CertPair {
        name: "cert4".into(),
        cert: pki.path("a.key"),
        key: pki.path("a.key"),
    };
    let cert_as_key = CertPair {
        name: "cert5".into(),
        cert: pki.path("a.pem"),
        key: pki.path("a.pem"),
    };
    let cases = [
        (
            pki.pair("cert2", "a", "b"),
            "[tls] cert2: the key ".to_string()
                + &pki.path("b.key")
                + " does not match the certificate "
                + &pki.path("a.pem"),
        ),
        (
            pki.pair("cert2", "b", "a"),
            "[tls] cert2: the key ".to_string()
                + &pki.path("a.key")
                + " does not match the certificate "
                + &pki.path("b.pem"),
        ),
        (
            missing,
            format!("[tls] cert3: cannot read {}", pki.path("nope.pem")),
        ),
        (
            key_as_cert,
            format!("[tls] cert4: {} holds no CERTIFICATE", pki.path("a.key")),
        ),
        (
            cert_as_key,
            format!(
                "[tls] cert5: {} holds no usable PRIVATE KEY",
                pki.path("a.pem")
            ),
        ),
    ];
    for (pair, want) in cases {
        let e = load_pair(&pair, &p).expect_err("refused");
        assert!(e.starts_with(&want), "{e}\n  wanted {want}");
    }
    // ServerTls::new reports the first bad pair.
    let bad = pki.listener(
        vec![pki.pair("cert", "a", "a"), pki.pair("cert2", "b", "a")],
        TlsVersion::V1_2,
    );
    let e = ServerTls::new(&bad).err().expect("refused");
    assert!(e.starts_with("[tls] cert2: the key"), "{e}");
}

#[test]
fn reload_keeps_the_old_certificates_when_a_new_pair_is_invalid() {
    let pki = Pki::new("reload");
    let (a, b) = (pki.der("a"), pki.der("b"));
    let mut server =
        ServerTls::new(&pki.listener(vec![pki.pair("cert", "a", "a")], TlsVersion::V1_2))
            .expect("config");
    let mut bufs = BufPool::default();
    let served = |server: &ServerTls, bufs: &mut BufPool| {
        let mut s = server.accept(t0()).expect("session");
        let mut peer: rustls::Connection = connect(trusting_client(), "a.test").into();
        pump(&mut peer, &mut s, bufs).expect("handshake");
        peer.peer_certificates().expect("cert")[0].clone()
    };
    assert!(served(&server, &mut bufs) == a);
    // A session accepted before the reload keeps its configuration.
    let mut before = server.accept(t0()).expect("session");

    let invalid = pki.listener(vec![pki.pair("cert", "b", "a")], TlsVersion::V1_2);
    let e = server.reload(&invalid).expect_err("mismatched pair");
    assert!(e.contains("does not match"), "{e}");
    assert!(served(&server, &mut bufs) == a, "old certificate kept");

    let valid = pki.listener(vec![pki.pair("cert", "b", "b")], TlsVersion::V1_2);
    server.reload(&valid).expect("valid pair");
    assert!(served(&server, &mut bufs) == b, "new certificate served");

    let mut peer: rustls::Connection = connect(trusting_client(), "a.test").into();
    pump(&mut peer, &mut before, &mut bufs).expect("handshake");
    assert!(peer.peer_certificates().expect("cert")[0] == a);
}

/// A plain rustls server with `name`'s certificate, for the backend side.
fn backend(pki: &Pki, name: &str) -> rustls::Connection {
    let pair = load_pair(&pki.pair("cert", name, name), &provider()).expect("pair");
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniCerts::new(vec![pair])));
    config.alpn_protocols = vec![b"h2".to_vec(), ALPN_HTTP1.to_vec()];
    rustls::ServerConnection::new(Arc::new(config))
        .expect("server")
        .into()
}

fn backend_tls(ca: Option<String>, verify: bool, name: &str) -> BackendTls {
    BackendTls {
        ca,
        verify,
        server_name: name.into(),
    }
}

fn config_with(servers: &[BackendTls]) -> Config {
    let text = "[http]\nserver1=127.0.0.1:1\n";
    let mut c = crate::config::parse(text, "t", &|_, _| Err("no".into())).expect("config");
    let template = c.http.servers[0].clone();
    c.http.servers = (servers.iter().enumerate())
        .map(|(i, t)| crate::config::ServerConfig {
            id: i as u32 + 1,
            name: format!("server{}", i + 1),
            tls: Some(t.clone()),
            ..template.clone()
        })
        .collect();
    c
}

#[test]
fn backends_are_verified_against_their_ca_and_name() {
    let pki = Pki::new("backend");
    let ca = Some(pki.path("ca.pem"));
    let other = Some(pki.path("other-ca.pem"));
    let cases = [
        // (what sluice expects, the backend's certificate, outcome)
        (backend_tls(ca.clone(), true, "a.test"), "a", None),
        (backend_tls(ca.clone(), true, "b.test"), "b", None),
        (backend_tls(ca.clone(), true, "127.0.0.1"), "b", None),
        (backend_tls(ca.clone(), true, "x.wild.test"), "a", None),
        (
            backend_tls(ca.clone(), true, "b.test"),
            "a",
            Some(HandshakeFail::Cert),
        ),
        (
            backend_tls(ca.clone(), true, "127.0.0.1"),
            "a",
            Some(HandshakeFail::Cert),
        ),
        (
            backend_tls(ca.clone(), true, "a.test"),
            "c",
            Some(HandshakeFail::Cert),
        ),
        (
            backend_tls(other.clone(), true, "a.test"),
            "a",
            Some(HandshakeFail::Cert),
        ),
        (backend_tls(other.clone(), true, "a.test"), "c", None),
        (backend_tls(other.clone(), false, "wrong.test"), "a", None),
    ];
    let all: Vec<BackendTls> = cases.iter().map(|c| c.0.clone()).collect();
    let client = ClientTls::new(&config_with(&all)).expect("client configs");
    assert_eq!(client.configs.len(), 3, "shared per (CA, verify)");
    let mut bufs = BufPool::default();
    for (tls, cert, want) in cases {
        let mut s = client.connect(&tls, t0()).expect("session");
        let mut peer = backend(&pki, cert);
        // The client speaks first: its ClientHello goes out, the backend answers.
        let mut seen = Seen::default();
        let mut outcome = Ok(());
        for _ in 0..20 {
            let out = to_peer(&mut s, &mut peer, &mut bufs, &mut seen.at_peer);
            let back = to_session(&mut peer, &mut s, &mut bufs, &mut seen.at_session);
            if let Err(e) = back {
                outcome = Err(e);
                break;
            }
            if !out.unwrap_or(false) && !back.unwrap_or(false) {
                break;
            }
        }
        let label = format!(
            "{} via {:?} verify={}: {cert}",
            tls.server_name, tls.ca, tls.verify
        );
        match want {
            None => {
                assert_eq!(outcome, Ok(()), "{label}");
                assert!(s.is_open(), "{label}");
                assert_eq!(peer.alpn_protocol(), Some(ALPN_HTTP1), "{label}");
            }
            Some(why) => {
                assert_eq!(outcome, Err(TlsError::Handshake(why)), "{label}");
                let detail = s.last_error().map(|e| e.to_string()).unwrap_or_default();
                assert!(detail.contains("certificate"), "{label}: {detail}");
            }
        }
    }
}

#[test]
fn backend_config_errors_name_the_server() {
    let pki = Pki::new("backend-errors");
    let bad_ca = config_with(&[
        backend_tls(Some(pki.path("ca.pem")), true, "a.test"),
        backend_tls(Some(pki.path("a.key")), true, "a.test"),
    ]);
    let e = ClientTls::new(&bad_ca).err().expect("refused");
    assert_eq!(
        e,
        format!(
            "[http] server2_tls: {} holds no CERTIFICATE",
            pki.path("a.key")
        )
    );
    let bad_name = config_with(&[backend_tls(None, false, "a b")]);
    let e = ClientTls::new(&bad_name).err().expect("refused");
    assert_eq!(e, "[http] server1_tls: \"a b\" is not a valid TLS name");
    // Unverified backends need no roots at all.
    assert!(ClientTls::new(&config_with(&[backend_tls(None, false, "a.test")])).is_ok());
}

#[test]
fn check_serves_every_pair_in_memory_and_names_the_wrong_one() {
    let pki = Pki::new("check");
    let mut config = config_with(&[backend_tls(Some(pki.path("ca.pem")), true, "a.test")]);
    let pairs = vec![pki.pair("cert", "b", "b"), pki.pair("cert2", "a", "a")];
    config.tls = Some(pki.listener(pairs, TlsVersion::V1_2));
    assert_eq!(check(&config, t0()), Ok(vec![]));

    // c covers only a.test, which a (listed first) already answers.
    let pairs = vec![
        pki.pair("cert", "b", "b"),
        pki.pair("cert2", "a", "a"),
        pki.pair("cert3", "c", "c"),
    ];
    config.tls = Some(pki.listener(pairs, TlsVersion::V1_3));
    let warnings = check(&config, t0()).expect("usable");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("[tls] cert3: never served"),
        "{warnings:?}"
    );

    let pairs = vec![pki.pair("cert", "b", "b"), pki.pair("cert2", "c", "a")];
    config.tls = Some(pki.listener(pairs, TlsVersion::V1_2));
    let e = check(&config, t0()).expect_err("mismatched");
    assert!(e.starts_with("[tls] cert2: the key"), "{e}");

    config.tls = None;
    config.http.servers[0].tls = Some(backend_tls(Some(pki.path("missing.pem")), true, "a.test"));
    let e = check(&config, t0()).expect_err("missing CA");
    assert!(e.starts_with("[http] server1_tls: cannot read"), "{e}");
}

/// End to end over a real 127.0.0.1 socket pair: rustls's blocking client (an independent
/// peer) against a `TlsSession` driven the way the reactor will drive it, with pooled
/// buffers between the socket and the session (blocking here, with timeouts, for brevity).
#[test]
fn a_real_client_over_loopback_gets_answers_through_the_session() {
    use std::io::Read;
    use std::net::{Shutdown, TcpListener, TcpStream};
    let pki = Pki::new("loopback");
    let server = ServerTls::new(&pki.listener(vec![pki.pair("cert", "b", "b")], TlsVersion::V1_2))
        .expect("config");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client_config = pki.client("ca", rustls::ALL_VERSIONS);
    let client = std::thread::spawn(move || -> Vec<u8> {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let conn = connect(client_config, "b.test");
        let mut tls = rustls::StreamOwned::new(conn, sock);
        for i in 0..3 {
            let req = format!("GET /{i} HTTP/1.1\r\nHost: b.test\r\n\r\n");
            tls.write_all(req.as_bytes()).expect("request");
        }
        let mut all = Vec::new();
        // The server sends close_notify after the third answer: a clean end of stream.
        tls.read_to_end(&mut all)
            .expect("answers then close_notify");
        all
    });

    let (mut sock, _) = listener.accept().expect("accept");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut bufs = BufPool::default();
    let mut s = server.accept(t0()).expect("session");
    let (mut rbuf, mut wbuf) = (bufs.get(), bufs.get());
    let mut answered = 0;
    while answered < 3 {
        let cipher_in = s.input(&mut bufs).expect("room");
        let n = sock.read(cipher_in.spare()).expect("read");
        assert!(n > 0, "client closed early");
        cipher_in.commit(n);
        s.read(&mut rbuf, &mut bufs).expect("read");
        // Answer every complete request head in rbuf.
        while let Some(end) = rbuf.bytes().windows(4).position(|w| w == b"\r\n\r\n") {
            let path = rbuf.bytes()[4..]
                .split(|&b| b == b' ')
                .next()
                .expect("path")
                .to_vec();
            rbuf.consume(end + 4);
            let body = [b"you asked for ".as_slice(), &path].concat();
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            wbuf.push(head.as_bytes());
            wbuf.push(&body);
            answered += 1;
        }
        if answered == 3 {
            s.write(&mut wbuf, &mut bufs);
            s.close();
        }
        s.write(&mut wbuf, &mut bufs);
        s.poll_output(&mut bufs);
        while let Some(out) = s.cipher() {
            sock.write_all(out.bytes()).expect("write");
            out.consume(out.len());
            s.sent(&mut bufs);
            s.poll_output(&mut bufs);
        }
    }
    sock.shutdown(Shutdown::Write).expect("shutdown");
    let got = client.join().expect("client thread");
    let text = String::from_utf8(got).expect("utf8");
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    assert!(text.ends_with("you asked for /2"), "{text}");
    assert!(wbuf.is_empty() && rbuf.is_empty());
    s.release(&mut bufs);
    for b in [rbuf, wbuf] {
        bufs.put(b);
    }
    assert_eq!(bufs.outstanding, 0);
}
