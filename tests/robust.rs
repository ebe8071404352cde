//! Issue 8, the fast adversarial suite (client side): request smuggling vectors, bad
//! bytes in heads and chunked bodies, slowloris heads and stalled uploads, a huge
//! pipelined burst, a connection flood past `max_connections`, and WebSocket abuse
//! that tests/ws_fail.rs does not cover. Every case asserts the status (or Close
//! code), that nothing reached the backend that should not, and that a bystander
//! client is served correctly *while* the attack runs. Backend faults and the leak
//! check are in tests/robust_backend.rs.

mod robustutil;
mod util;
mod wsutil;

use robustutil::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::{Backend, Client, Proxy, ProxyProcess};

fn proxy(frontend: &str, group: &str, b: SocketAddr) -> Proxy {
    Proxy::start(
        &format!("[frontend]\nhost=127.0.0.1\nport=0\n{frontend}\n[http]\nserver1_addr={{b0}}\n{group}\n"),
        &[b],
    )
}

/// Each bad input on its own connection: the expected status, `Connection: close`,
/// the connection closed; the bystander is served throughout; the backend sees none.
#[track_caller]
fn expect_refused(p: &Proxy, b: &Backend, cases: &[(&[u8], u16)]) {
    let by = Bystander::start(p.addr);
    for (bytes, want) in cases {
        let what = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
        let (r, mut c) = send_raw(p.addr, bytes);
        let r = r.unwrap_or_else(|| panic!("no response for {what:?}"));
        assert_eq!(r.status, *want, "for {what:?}: {}", r.text());
        assert_eq!(r.header("connection"), Some("close"), "for {what:?}");
        assert!(
            ended_by_fin(&mut c),
            "connection not ended by EOF after {what:?}"
        );
    }
    by.finish();
    assert_eq!(
        attacks_seen(b),
        Vec::<String>::new(),
        "forwarded to the backend"
    );
}

#[test]
fn smuggling_vectors_are_refused_before_the_backend() {
    let b = tagging_backend();
    let p = proxy("", "", b.addr);
    let cases: &[(&[u8], u16)] = &[
        // CL.TE and TE.CL: both framings present (RFC 9112 §6.1: reject, never guess).
        (b"POST /clte HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400),
        (b"POST /tecl HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400),
        (b"POST /tecl0 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        // TE.TE: obfuscated codings are unknown codings (501) or bad syntax (400).
        (b"POST /te1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
        (b"POST /te2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501),
        (b"POST /te3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        (b"POST /te4 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n", 501),
        (b"POST /te5 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /te6 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", 501),
        (b"POST /te7 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n", 400),
        (b"POST /te8 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /te9 HTTP/1.1\r\nHost: t\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /te10 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n\r\n", 501),
        (b"POST /te11 HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        // Content-Length: differing duplicates, lists, signs, hex, overflow.
        (b"POST /cl1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!", 400),
        (b"POST /cl2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5, 6\r\n\r\nhello!", 400),
        (b"POST /cl3 HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello", 400),
        (b"POST /cl4 HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST /cl5 HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello", 400),
        (b"POST /cl6 HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
        (b"POST /cl7 HTTP/1.1\r\nHost: t\r\nContent-Length: 5 5\r\n\r\nhello", 400),
        (b"POST /cl8 HTTP/1.1\r\nHost: t\r\nContent-Length:\r\n\r\n", 400),
    ];
    expect_refused(&p, &b, cases);
}

#[test]
fn bad_bytes_in_the_head_are_refused() {
    let b = tagging_backend();
    let p = proxy("max_header_bytes=8192", "", b.addr);
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    let long_header = format!(
        "GET /lh HTTP/1.1\r\nHost: t\r\nX-Long: {}\r\n\r\n",
        "v".repeat(9000)
    );
    // Still being written long after the limit: the answer must not be lost to a
    // reset when sluice closes (it half-closes and discards the rest).
    let huge_header = format!(
        "GET /hh HTTP/1.1\r\nHost: t\r\nX-Huge: {}\r\n\r\n",
        "v".repeat(100_000)
    );
    let mut many = b"GET /many HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..101 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let cases: &[(&[u8], u16)] = &[
        (b"GET /lf HTTP/1.1\nHost: t\n\n", 400),
        (b"GET /lf2 HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", 400),
        (b"GET /cr HTTP/1.1\rHost: t\r\n\r\n", 400),
        (b"GET /cr2 HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n", 400),
        (b"GET /fold HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400),
        (
            b"GET /fold2 HTTP/1.1\r\nHost: t\r\nX: a\r\n\tb\r\n\r\n",
            400,
        ),
        (b"GET /nul HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET /n\x00ul HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET /nul3 HTTP/1.1\r\nHost: t\r\nX\x00Y: a\r\n\r\n", 400),
        (b"\x00GET /nul4 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (
            b"GET /name HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
            400,
        ),
        (b"GET /name2 HTTP/1.1\r\nHost: t\r\nHeader : x\r\n\r\n", 400),
        (b"GET /name3 HTTP/1.1\r\nHost: t\r\n: x\r\n\r\n", 400),
        (b"GET /name4 HTTP/1.1\r\nHost: t\r\nX(y): x\r\n\r\n", 400),
        (b"GET /name5 HTTP/1.1\r\nHost: t\r\nX\xff: x\r\n\r\n", 400),
        (b"GET  /sp HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET /sp2 HTTP/1.1 \r\nHost: t\r\n\r\n", 400),
        (b"GET /ver HTTP/1.1.1\r\nHost: t\r\n\r\n", 400),
        (long_line.as_bytes(), 431),
        (long_header.as_bytes(), 431),
        (huge_header.as_bytes(), 431),
        (&many, 431),
    ];
    expect_refused(&p, &b, cases);
}

#[test]
fn chunk_size_tricks_and_extension_abuse_are_refused() {
    let b = tagging_backend();
    let p = proxy("", "", b.addr);
    let huge_ext = format!(
        "POST /ext HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1;{}\r\na\r\n0\r\n\r\n",
        "e".repeat(8000)
    );
    let many_ext = format!(
        "POST /ext2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1{}\r\na\r\n0\r\n\r\n",
        ";a=b".repeat(2000)
    );
    let mut cases: Vec<(Vec<u8>, u16)> = Vec::new();
    for size in [
        "0x10",
        "+10",
        " 10",
        "-1",
        "1 0",
        "00000000000000010",
        "fffffffffffffffff",
        "10\x00",
        "g",
        "",
    ] {
        let req = format!(
            "POST /chunk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\n{}\r\n0\r\n\r\n",
            "x".repeat(16)
        );
        cases.push((req.into_bytes(), 400));
    }
    for body in [
        &b"5\nhello\r\n0\r\n\r\n"[..],       // bare LF after the size
        b"5\rhello\r\n0\r\n\r\n",            // bare CR after the size
        b"5\r\nhelloXX0\r\n\r\n",            // data not followed by CRLF
        b"5\r\nhello\n0\r\n\r\n",            // bare LF after the data
        b"5\r\nhello\r\n0\r\nX: y\n\r\n",    // bare LF in a trailer
        b"5\r\nhello\r\n0\r\n fold\r\n\r\n", // obs-fold in a trailer
    ] {
        let mut req =
            b"POST /chunk2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        req.extend_from_slice(body);
        cases.push((req, 400));
    }
    cases.push((huge_ext.into_bytes(), 400));
    cases.push((many_ext.into_bytes(), 400));
    let refs: Vec<(&[u8], u16)> = cases.iter().map(|(r, s)| (&r[..], *s)).collect();
    // The head is valid, so it may already be on its way to the backend when the body
    // turns out bad: the backend connection is then closed mid-body, and the backend
    // never sees a complete request (attacks_seen stays empty).
    expect_refused(&p, &b, &refs);
}

#[test]
fn legal_but_unusual_framing_is_forwarded_exactly() {
    // OWS around the coding, case, gzip-then-chunked and chunk extensions are legal:
    // forwarded byte for byte, one request each (no second request appears).
    let b = Backend::start(|r| match r.target.starts_with(BY) {
        true => util::ok(&r.target),
        false => util::ok(&format!("{} {}", r.target, r.body.len())),
    });
    let p = proxy("", "", b.addr);
    let cases: &[(&[u8], &str)] = &[
        (b"POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "/a 5"),
        (b"POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:  chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n", "/b 5"),
        (b"POST /d HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000005;a=b;c=\"d\"\r\nhello\r\n0\r\n\r\n", "/d 5"),
        (b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", "/e 5"),
        (b"POST /f HTTP/1.1\r\nHost: t\r\nContent-Length:  5 \r\n\r\nhello", "/f 5"),
    ];
    let by = Bystander::start(p.addr);
    for (bytes, want) in cases {
        let (r, _c) = send_raw(p.addr, bytes);
        let r = r.expect("a response");
        assert_eq!((r.status, r.text()), (200, want.to_string()));
    }
    by.finish();
    assert_eq!(attacks_seen(&b).len(), cases.len());
    // Each body reached the backend exactly as sent, chunk framing and extensions too.
    let seen = b.requests();
    for (bytes, want) in cases {
        let target = want.split(' ').next().unwrap();
        let sent = &bytes[bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
        let r = seen.iter().find(|r| r.target == target).expect("seen");
        assert_eq!(
            String::from_utf8_lossy(&r.raw_body),
            String::from_utf8_lossy(sent),
            "{target}"
        );
    }
}

#[test]
fn slowloris_heads_get_408_and_others_are_served() {
    // 20 connections dribble a head one byte every 100 ms; request_header_timeout=1s
    // bounds each from its first byte, however slowly the bytes keep coming.
    let b = tagging_backend();
    let p = proxy("request_header_timeout=1s", "", b.addr);
    let by = Bystander::start(p.addr);
    let started = Instant::now();
    let mut conns: Vec<Client> = (0..20).map(|_| Client::connect(p.addr)).collect();
    let head = b"GET /loris HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = vec![false; conns.len()];
    for byte in head.iter().take(40) {
        for (i, c) in conns.iter_mut().enumerate() {
            if !cut[i] && c.w.write_all(&[*byte]).is_err() {
                cut[i] = true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for c in &mut conns {
        let r = c.read_response(false).expect("a 408 for the slow head");
        assert_eq!(r.status, 408);
        assert!(ended_by_fin(c));
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    by.finish();
    assert_eq!(attacks_seen(&b), Vec::<String>::new());
}

#[test]
fn stalled_upload_gets_408_and_does_not_eject_the_server() {
    // Decision: a request body that stops arriving is the client's fault. Bytes that
    // keep moving extend response_timeout (tests/http_errors.rs); silence for
    // response_timeout while sluice waits for body bytes from the client answers 408
    // and closes both connections. It is not counted against the server: three
    // stalled uploads must not eject a healthy backend (max_fails=3 by default).
    let b = Backend::start(|r| util::ok(&r.target));
    let p = proxy(
        "",
        "response_timeout=1s\nmax_fails=2\nfail_timeout=30s",
        b.addr,
    );
    let by = Bystander::start(p.addr);
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(p.addr);
        c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
        // More than request_buffer_bytes (16 KiB): dispatched, then the body stalls
        // mid-stream (a stall while buffered is tests/http_buffer.rs's).
        c.send(&[b'u'; 20_000]);
        stalled.push(c);
    }
    let started = Instant::now();
    for c in &mut stalled {
        let r = c
            .read_response(false)
            .expect("an answer to the stalled upload");
        assert_eq!(r.status, 408, "{}", r.text());
        assert!(ended_by_fin(c));
    }
    assert!(started.elapsed() < Duration::from_secs(8));
    // The server is still in rotation.
    let mut c = Client::connect(p.addr);
    assert_eq!(c.get("/after").status, 200);
    by.finish();
    assert_eq!(attacks_seen(&b), vec!["GET /after".to_string()]);
}

#[test]
fn two_thousand_pipelined_gets_in_one_write_are_answered_in_order() {
    let b = tagging_backend();
    let p = proxy("", "", b.addr);
    let by = Bystander::start(p.addr);
    let n = 2000;
    let mut burst = Vec::new();
    for i in 0..n {
        burst.extend_from_slice(format!("GET /p/{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    let mut c = Client::connect(p.addr);
    let mut w = c.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&burst).is_ok());
    for i in 0..n {
        let r = c
            .read_response(false)
            .unwrap_or_else(|| panic!("response {i} missing"));
        assert_eq!((r.status, r.text()), (200, format!("/p/{i}")));
    }
    assert!(writer.join().unwrap());
    assert_eq!(c.get("/after").text(), "/after");
    by.finish();
    assert_eq!(attacks_seen(&b).len(), n + 1);
}

#[test]
fn connection_flood_past_max_connections_waits_then_is_served() {
    // max_connections=50: the bystander and 49 idle holders fill it; 150 more connect
    // (the kernel completes them into the accept queue) and send a request each. None
    // is answered while the slots are held; once the holders leave, every one is.
    let b = tagging_backend();
    // The pool is large enough for the 49 requests that arrive at once when the
    // holders leave (the default 3 connections + 10 queued would answer 503s).
    let p = proxy(
        "max_connections=50",
        "server1_max_workers=64\nserver1_buffer_size=200",
        b.addr,
    );
    let by = Bystander::start(p.addr);
    let mut holders: Vec<Client> = Vec::new();
    for i in 0..49 {
        let mut c = Client::connect(p.addr);
        assert_eq!(c.get(&format!("/hold/{i}")).status, 200);
        holders.push(c);
    }
    let mut flood: Vec<Client> = Vec::new();
    for i in 0..150 {
        let mut c = Client::connect(p.addr);
        c.send(
            format!("GET /flood/{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        flood.push(c);
    }
    // All 150 are complete in the kernel's accept queue, and stay there while the
    // proxy goes round its loop serving the bystander: it does not take them.
    assert!(
        util::wait_until(|| accept_queue(p.addr) == Some(150)),
        "accept queue: {:?}",
        accept_queue(p.addr)
    );
    assert!(by.wait_served(20), "the bystander stalled");
    assert_eq!(
        accept_queue(p.addr),
        Some(150),
        "the proxy accepted past the limit"
    );
    flood[0]
        .w
        .set_nonblocking(true)
        .expect("nonblocking for a peek");
    let mut one = [0u8; 1];
    let early = flood[0].r.get_mut().read(&mut one);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection past max_connections was served: {early:?}"
    );
    flood[0].w.set_nonblocking(false).unwrap();
    assert_eq!(
        attacks_seen(&b).len(),
        49,
        "flood requests reached the backend early"
    );
    drop(holders);
    for (i, c) in flood.iter_mut().enumerate() {
        let r = c
            .read_response(false)
            .unwrap_or_else(|| panic!("flood {i} unanswered"));
        assert_eq!((r.status, r.text()), (200, format!("/flood/{i}")));
    }
    by.finish();
    assert_eq!(attacks_seen(&b).len(), 199);
}

// ---- WebSocket abuse (ws_fail.rs covers unmasked frames, control frames over 125
// bytes, reserved opcodes and invalid UTF-8 close reasons) ----

/// A WebSocket client echoing on its own thread while a test misbehaves.
struct WsBystander {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<usize, String>>>,
}

impl WsBystander {
    fn start(addr: SocketAddr) -> WsBystander {
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let (mut ws, _) = wsutil::ws_connect(addr, "/bystander", &[]);
            let _ = tx.send(());
            let end = Instant::now() + Duration::from_secs(60);
            let mut n = 0usize;
            while (n == 0 || !st.load(Ordering::SeqCst)) && Instant::now() < end {
                let m = tungstenite::Message::text(format!("by {n}"));
                ws.send(m.clone()).map_err(|e| e.to_string())?;
                let got = ws.read().map_err(|e| e.to_string())?;
                if got != m {
                    return Err(format!("echo mismatch: {got:?}"));
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(n)
        });
        // Connected before the test opens its own tunnels (backend conn 0).
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the WebSocket bystander connects");
        WsBystander {
            stop,
            thread: Some(thread),
        }
    }

    #[track_caller]
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let r = self.thread.take().unwrap().join().expect("ws bystander");
        let n = r.unwrap_or_else(|e| panic!("the WebSocket bystander was disturbed: {e}"));
        assert!(n > 0);
        n
    }
}

/// A raw tunnel through `p`, checked with one echo.
fn raw_tunnel(p: &Proxy) -> TcpStream {
    let (mut s, head) = wsutil::raw_upgrade(p.addr, "/", "");
    assert_eq!(wsutil::status(&head), 101);
    s.write_all(&wsutil::frame(true, 0, 1, b"fine", wsutil::MASK))
        .unwrap();
    assert_eq!(wsutil::read_frame(&mut s).unwrap().payload, b"fine");
    s
}

/// A masked frame header announcing a 64-bit payload length (no payload follows).
fn long_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | opcode, 0x80 | 127];
    h.extend(len.to_be_bytes());
    h.extend(wsutil::MASK.unwrap());
    h
}

#[test]
fn websocket_64_bit_lengths_near_2_63_are_refused() {
    let echo = wsutil::EchoBackend::start();
    let p = Proxy::start(&wsutil::ws_ini(""), &[echo.addr]);
    let by = WsBystander::start(p.addr);
    // (announced length, expected code): over max_message_bytes (16 MiB default) is
    // 1009; the most significant bit set is a malformed length, 1002 (RFC 6455 §5.2).
    for (len, code) in [
        ((1u64 << 63) - 1, 1009),
        (1u64 << 62, 1009),
        (1u64 << 63, 1002),
        (u64::MAX, 1002),
    ] {
        let mut s = raw_tunnel(&p);
        s.write_all(&long_header(2, len)).unwrap();
        s.write_all(&[0u8; 1000]).unwrap_or(());
        assert_eq!(wsutil::read_close(&mut s).0, code, "length {len:#x}");
        assert!(wsutil::at_eof(&mut s));
    }
    // And with no limit configured, the tracker still refuses the malformed length.
    let p2 = Proxy::start(&wsutil::ws_ini("max_message_bytes=0"), &[echo.addr]);
    let mut s = raw_tunnel(&p2);
    s.write_all(&long_header(2, u64::MAX)).unwrap();
    assert_eq!(wsutil::read_close(&mut s).0, 1002);
    by.finish();
    // Every backend connection of a refused tunnel is closed.
    for conn in 1..=4 {
        assert!(
            wsutil::eventually(|| echo.shared.ended(conn)),
            "conn {conn} left open"
        );
    }
}

#[test]
fn websocket_fragmented_control_frames_are_1002() {
    let echo = wsutil::EchoBackend::start();
    let p = Proxy::start(&wsutil::ws_ini(""), &[echo.addr]);
    let by = WsBystander::start(p.addr);
    for opcode in [8u8, 9, 10] {
        let mut s = raw_tunnel(&p);
        let payload: &[u8] = if opcode == 8 { &[3, 232] } else { b"ping" };
        s.write_all(&wsutil::frame(false, 0, opcode, payload, wsutil::MASK))
            .unwrap();
        assert_eq!(wsutil::read_close(&mut s).0, 1002, "opcode {opcode}");
        assert!(wsutil::at_eof(&mut s));
    }
    // A continuation with no message started, and a new message inside a fragmented one.
    for bad in [
        wsutil::frame(true, 0, 0, b"orphan", wsutil::MASK),
        [
            wsutil::frame(false, 0, 1, b"first", wsutil::MASK),
            wsutil::frame(true, 0, 1, b"second", wsutil::MASK),
        ]
        .concat(),
    ] {
        let mut s = raw_tunnel(&p);
        s.write_all(&bad).unwrap();
        assert_eq!(wsutil::read_close(&mut s).0, 1002);
        assert!(wsutil::at_eof(&mut s));
    }
    by.finish();
    for conn in 1..=5 {
        assert!(
            wsutil::eventually(|| echo.shared.ended(conn)),
            "conn {conn} left open"
        );
    }
}

#[test]
fn websocket_peer_that_never_reads_is_paused_with_bounded_memory() {
    // The client floods the echo backend and never reads the echoes: the echoes back
    // up into the client's socket, then sluice stops reading the backend, the backend
    // blocks writing and stops reading, and sluice stops reading the client. The
    // client's writes stall; sluice's memory does not follow what was written.
    let echo = wsutil::EchoBackend::start();
    let proc_ = ProxyProcess::start(&wsutil::ws_ini(""), &[echo.addr]);
    let p_addr = proc_.addr;
    let warm = {
        let (mut s, head) = wsutil::raw_upgrade(p_addr, "/", "");
        assert_eq!(wsutil::status(&head), 101);
        s.write_all(&wsutil::frame(true, 0, 2, &[1; 60_000], wsutil::MASK))
            .unwrap();
        assert_eq!(wsutil::read_frame(&mut s).unwrap().payload.len(), 60_000);
        s
    };
    let rss0 = util::rss_kib(proc_.pid());
    let (mut ws_by, _) = wsutil::ws_connect(p_addr, "/bystander", &[]);
    let (mut s, head) = wsutil::raw_upgrade(p_addr, "/", "");
    assert_eq!(wsutil::status(&head), 101);
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let msg = wsutil::frame(true, 0, 2, &[7u8; 64 * 1024], wsutil::MASK);
    let cap = 512usize << 20; // never send more than this
    let (mut full, mut sent) = (0usize, 0usize);
    let end = Instant::now() + Duration::from_secs(20);
    // A write that times out (500 ms without progress) means the writer is paused.
    while sent < cap && Instant::now() < end && s.write_all(&msg).is_ok() {
        full += 1;
        sent += msg.len();
    }
    let rss1 = util::rss_kib(proc_.pid());
    println!(
        "never-reading WebSocket peer: {} MiB written before the pause, sluice RSS {rss0} -> {rss1} KiB",
        sent >> 20
    );
    assert!(sent < cap, "the writer was never paused ({sent} bytes)");
    assert!(
        rss1 < rss0 + 8 * 1024,
        "RSS grew from {rss0} to {rss1} KiB while the peer did not read"
    );
    // Meanwhile another tunnel is served.
    for i in 0..20 {
        let m = tungstenite::Message::text(format!("by {i}"));
        ws_by.send(m.clone()).unwrap();
        assert_eq!(wsutil::next_msg(&mut ws_by), m);
    }
    drop(warm);
    // And once the client reads again, every echo arrives intact and in order.
    s.set_write_timeout(None).unwrap();
    for i in 0..full {
        let f = wsutil::read_frame(&mut s).unwrap_or_else(|e| panic!("echo {i}/{full}: {e}"));
        assert_eq!(f.opcode, 2);
        assert!(f.payload.len() == 64 * 1024 && f.payload.iter().all(|&x| x == 7));
    }
    drop(s);
    drop(proc_);
}
