//! End-to-end errors and bad input (issue 3): truncated responses, 504, 400, 431,
//! 413, 501, 408, and that none of them disturbs another client.
mod util;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use util::*;

fn proxy1(extra: &str, b: SocketAddr) -> Proxy {
    Proxy::start(&format!("{extra}[http]\nserver1_addr={{b0}}\n"), &[b])
}

/// Sends raw bytes on a new connection and reads one response.
#[track_caller]
fn send_raw(addr: SocketAddr, bytes: &[u8]) -> (Response, Client) {
    let mut c = Client::connect(addr);
    c.send(bytes);
    let r = c.read_response(false).expect("a response");
    (r, c)
}

#[test]
fn backend_closing_mid_response_is_never_framed_complete() {
    let b = Backend::start(|r| match r.target.as_str() {
        "/length" => {
            Reply::RawClose(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789".to_vec())
        }
        "/chunked" => Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nwor".to_vec(),
        ),
        _ => ok("fine"),
    });
    let p = proxy1("", b.addr);

    let mut c = Client::connect(p.addr);
    c.send(b"GET /length HTTP/1.1\r\nHost: t\r\n\r\n");
    let (status, headers) = c.read_head().unwrap();
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("content-length") && v == "1000"));
    let rest = c.read_rest();
    assert_eq!(rest, b"0123456789", "the client sees a short body and EOF");

    let mut c = Client::connect(p.addr);
    c.send(b"GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_head().unwrap().0, 200);
    let rest = c.read_rest();
    assert!(
        rest.starts_with(b"5\r\nhello\r\n"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        !rest.windows(5).any(|w| w == b"0\r\n\r\n"),
        "a last-chunk was invented"
    );

    assert_eq!(get(p.addr, "/other").text(), "fine");
}

#[test]
fn response_timeout_gives_504() {
    let b = Backend::start(|r| {
        if r.target == "/hang" {
            Reply::Hang
        } else {
            ok("fine")
        }
    });
    let p = Proxy::start(
        "[http]\nserver1_addr={b0}\nresponse_timeout=300ms\nmax_fails=0\n",
        &[b.addr],
    );
    let started = Instant::now();
    let mut c = Client::connect(p.addr);
    let r = c.get("/hang");
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(c.closed());
    assert_eq!(get(p.addr, "/").text(), "fine");
}

/// `response_timeout` in the tests below, and the gap between two trickled bytes: a
/// tenth of it, so a loaded machine stretching a sleep does not look like silence.
const SILENCE: Duration = Duration::from_millis(600);
const GAP: Duration = Duration::from_millis(60);
/// Bytes trickled: the whole transfer takes twice `SILENCE`.
const TRICKLE: usize = 20;

#[test]
fn response_timeout_bounds_silence_not_a_moving_stream() {
    // Upload and download each take twice response_timeout, but bytes keep moving.
    let b = RawBackend::start(|mut s, _, stop: &AtomicBool| {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while let Some(head) = read_head_raw(&mut s, stop) {
            if let Some(len) = head_value(&head, "content-length") {
                let mut body = vec![0u8; len.parse().unwrap()];
                s.set_read_timeout(Some(WAIT)).unwrap();
                if std::io::Read::read_exact(&mut s, &mut body).is_err() {
                    return;
                }
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = s
                    .write_all(reply.as_bytes())
                    .and_then(|_| s.write_all(&body));
            } else if head.starts_with("GET /silent ") {
                // Silence: the proxy must give up after response_timeout.
                while read_head_raw(&mut s, stop).is_some() {}
                return;
            } else {
                let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {TRICKLE}\r\n\r\n");
                let _ = s.write_all(reply.as_bytes());
                for _ in 0..TRICKLE {
                    std::thread::sleep(GAP);
                    if s.write_all(b"d").is_err() {
                        return;
                    }
                }
            }
        }
    });
    let p = Proxy::start(
        &format!(
            "[http]\nserver1_addr={{b0}}\nresponse_timeout={}ms\nmax_fails=0\n",
            SILENCE.as_millis()
        ),
        &[b.addr],
    );
    // The timeout is live: a silent backend gets a 504.
    assert_eq!(get(p.addr, "/silent").status, 504);
    let mut c = Client::connect(p.addr);
    let started = Instant::now();
    c.send(format!("PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: {TRICKLE}\r\n\r\n").as_bytes());
    for _ in 0..TRICKLE {
        std::thread::sleep(GAP);
        c.send(b"u");
    }
    let r = c.read_response(false).expect("upload answered");
    assert_eq!((r.status, r.text()), (200, "u".repeat(TRICKLE)));
    let took = started.elapsed();
    assert!(
        took > SILENCE,
        "the upload took only {took:?}: proves nothing"
    );
    let started = Instant::now();
    let r = c.get("/down");
    assert_eq!((r.status, r.text()), (200, "d".repeat(TRICKLE)));
    let took = started.elapsed();
    assert!(
        took > SILENCE,
        "the download took only {took:?}: proves nothing"
    );
}

#[test]
fn response_timeout_closes_a_stalled_response_and_drops_its_backend_connection() {
    // The backend sends the head and 10 of 100 body bytes on its first connection, then
    // stalls; every later connection answers normally.
    let dropped = std::sync::Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let b = RawBackend::start(move |mut s, conn, stop: &AtomicBool| {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while let Some(head) = read_head_raw(&mut s, stop) {
            if conn == 0 {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
                // Stalled: wait for sluice to close this connection.
                if !discard_until_closed(&mut s, stop) {
                    return;
                }
                d.store(true, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            let t = head.split(' ').nth(1).unwrap_or("").to_string();
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{t}", t.len());
            if s.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    });
    let p = Proxy::start(
        &format!(
            "[http]\nserver1_addr={{b0}}\nserver1_min_workers=0\nserver1_max_workers=1\n\
             response_timeout={}ms\nmax_fails=0\n",
            SILENCE.as_millis()
        ),
        &[b.addr],
    );
    let mut c = Client::connect(p.addr);
    let sent = Instant::now();
    c.send(b"GET /stalls HTTP/1.1\r\nHost: t\r\n\r\n");
    let (status, headers) = c.read_head().expect("the head arrives");
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("content-length") && v == "100"));
    let mut rest = Vec::new();
    let eof = std::io::Read::read_to_end(&mut c.r, &mut rest);
    let closed_after = sent.elapsed();
    assert!(eof.is_ok(), "the client connection was not closed: {eof:?}");
    assert_eq!(
        rest, b"0123456789",
        "the partial body, then EOF: the response is never completed"
    );
    assert!(
        closed_after >= SILENCE,
        "closed after {closed_after:?}, before response_timeout"
    );
    assert!(
        wait_until(|| dropped.load(std::sync::atomic::Ordering::SeqCst)),
        "the stalled backend connection was never closed"
    );
    // One connection allowed: the next request gets a new one, never the stalled one.
    assert_eq!(get(p.addr, "/next").text(), "/next");
    assert_eq!(b.accepted(), 2);
}

#[test]
fn malformed_request_gives_400_and_close() {
    let b = Backend::hello("b");
    let p = proxy1("", b.addr);
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nX: 1\nY: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let (r, mut c) = send_raw(p.addr, bad);
        assert_eq!(r.status, 400, "for {:?}", String::from_utf8_lossy(bad));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed(), "closed after 400");
    }
    // Not even a head of these reached the backend (it records heads before bodies);
    // a good request after them shows the check ran after they were handled.
    assert_eq!(get(p.addr, "/fine").status, 200);
    assert_eq!(
        *b.heads.lock().unwrap(),
        ["/fine"],
        "a malformed request head was forwarded"
    );
    // A bad chunk size mid-body, before any response: 400 as well.
    let (r, _) = send_raw(
        p.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    );
    assert_eq!(r.status, 400);
    assert_eq!(b.count(), 1, "nothing malformed was forwarded");
}

#[test]
fn head_too_large_gives_431() {
    let b = Backend::hello("b");
    let p = proxy1(
        "[frontend]\nhost=127.0.0.1\nport=0\nmax_header_bytes=4096\n\n",
        b.addr,
    );
    let mut req = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..100 {
        req.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(60)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let (r, mut c) = send_raw(p.addr, &req);
    assert_eq!(r.status, 431);
    assert!(c.closed());
    // Just under the limit passes.
    let mut req = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    req.extend_from_slice(format!("X-Big: {}\r\n\r\n", "v".repeat(3900)).as_bytes());
    let (r, _) = send_raw(p.addr, &req);
    assert_eq!(r.status, 200);
    // The default limit (16 KiB) with a head larger than one buffer.
    let p = proxy1("", b.addr);
    let mut req = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    req.extend_from_slice(format!("X-Big: {}\r\n\r\n", "v".repeat(20_000)).as_bytes());
    let (r, _) = send_raw(p.addr, &req);
    assert_eq!(r.status, 431);
    let mut req = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    req.extend_from_slice(format!("X-Big: {}\r\n\r\n", "v".repeat(16_000)).as_bytes());
    let (r, _) = send_raw(p.addr, &req);
    assert_eq!(r.status, 200, "a 16 000-byte head fits the 16 KiB default");
}

#[test]
fn body_over_max_body_bytes_gives_413() {
    let b = Backend::start(|r| ok(&format!("{}", r.body.len())));
    let p = proxy1(
        "[frontend]\nhost=127.0.0.1\nport=0\nmax_body_bytes=1000\n\n",
        b.addr,
    );
    let (r, mut c) = send_raw(
        p.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
    );
    assert_eq!(r.status, 413);
    assert!(c.closed());
    // Chunked: refused when a chunk would pass the limit.
    let mut c = Client::connect(p.addr);
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n");
    c.send(&[b'a'; 0x200]);
    c.send(b"\r\n400\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 413);
    // At the limit is fine.
    let mut c = Client::connect(p.addr);
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
    c.send(&[b'z'; 1000]);
    assert_eq!(c.read_response(false).unwrap().text(), "1000");
}

#[test]
fn unsupported_transfer_coding_gives_501() {
    let b = Backend::hello("b");
    let p = proxy1("", b.addr);
    for te in ["br, chunked", "x-unknown", "chunked, zstd"] {
        let req = format!("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n");
        let (r, mut c) = send_raw(p.addr, req.as_bytes());
        assert_eq!(r.status, 501, "Transfer-Encoding: {te}");
        assert!(c.closed());
    }
    // Known codings with chunked last are fine; chunked not last is 400.
    let (r, _) = send_raw(
        p.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let (r, _) = send_raw(
        p.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    );
    assert_eq!(r.status, 400);
    assert_eq!(b.count(), 1);
    assert_eq!(
        b.heads.lock().unwrap().len(),
        1,
        "only the gzip, chunked request was forwarded"
    );
}

#[test]
fn slow_head_gives_408() {
    let b = Backend::hello("b");
    let p = proxy1(
        "[frontend]\nhost=127.0.0.1\nport=0\nrequest_header_timeout=300ms\n\n",
        b.addr,
    );
    let started = Instant::now();
    let mut c = Client::connect(p.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
    let r = c.read_response(false).expect("408");
    assert_eq!(r.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(c.closed());
    // Trickling bytes does not extend the deadline: the 408 arrives while the client
    // is still sending, a byte every 15 ms for far longer than the timeout (a deadline
    // pushed back by each byte would only fire once the client stops).
    let mut c = Client::connect(p.addr);
    c.r.get_ref()
        .set_read_timeout(Some(Duration::from_millis(15)))
        .unwrap();
    let slow = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Slow: {}", "s".repeat(400));
    let mut sent = 0;
    let mut answered = false;
    for b in slow.as_bytes() {
        if c.w.write_all(&[*b]).is_err() {
            break;
        }
        sent += 1;
        // The pause between bytes is a read: it returns as soon as the proxy answers.
        if std::io::BufRead::fill_buf(&mut c.r).is_ok_and(|b| !b.is_empty()) {
            answered = true;
            break;
        }
    }
    assert!(
        answered,
        "no answer while trickling {sent} of {} bytes (a byte per 15 ms)",
        slow.len()
    );
    c.r.get_ref().set_read_timeout(Some(WAIT)).unwrap();
    let r = c.read_response(false).expect("408 for a slowloris");
    assert_eq!(r.status, 408);
    // A keep-alive client idle between requests is not a slow head.
    let mut c = Client::connect(p.addr);
    assert_eq!(c.get("/").status, 200);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn errors_do_not_disturb_other_clients() {
    let b = Backend::start(|r| {
        if r.target.starts_with("/slow") {
            Reply::Delay(Duration::from_millis(20), Box::new(ok(&r.target)))
        } else {
            ok(&r.target)
        }
    });
    let p = proxy1(
        "[frontend]\nhost=127.0.0.1\nport=0\nrequest_header_timeout=300ms\nmax_body_bytes=1000\nmax_header_bytes=4096\n\n",
        b.addr,
    );
    let addr = p.addr;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let good = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        let mut n = 0;
        while !st.load(std::sync::atomic::Ordering::SeqCst) && n < 2000 {
            let t = format!("/slow{n}");
            let r = c.get(&t);
            assert_eq!((r.status, r.text()), (200, t));
            n += 1;
        }
        n
    });
    for _ in 0..3 {
        assert_eq!(
            send_raw(addr, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
                .0
                .status,
            400
        );
        let big = format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
            "v".repeat(5000)
        );
        assert_eq!(send_raw(addr, big.as_bytes()).0.status, 431);
        assert_eq!(
            send_raw(
                addr,
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n"
            )
            .0
            .status,
            413
        );
        assert_eq!(
            send_raw(
                addr,
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br\r\n\r\n"
            )
            .0
            .status,
            501
        );
        assert_eq!(
            send_raw(addr, b"GET / HTTP/1.1\r\nHost: t\r\n").0.status,
            408
        );
        // Clients that vanish mid-body and mid-head.
        let mut c = Client::connect(addr);
        c.send(b"POST /gone HTTP/1.1\r\nHost: t\r\nContent-Length: 900\r\n\r\npartial");
        drop(c);
        let mut c = Client::connect(addr);
        c.send(b"GET /half HTTP/1.1\r\nHo");
        drop(c);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let served = good.join().expect("the well-behaved client never failed");
    assert!(served > 0);
    assert_eq!(get(addr, "/last").text(), "/last");
    // No bad request reached the backend: it saw the good client's requests and the
    // last one, in order, and no other request head except the valid `/gone` (its head
    // may be forwarded before the client vanishes, but it is never completed).
    let want: Vec<String> = (0..served)
        .map(|n| format!("/slow{n}"))
        .chain(["/last".to_string()])
        .collect();
    let heads: Vec<String> = b
        .heads
        .lock()
        .unwrap()
        .iter()
        .filter(|t| *t != "/gone")
        .cloned()
        .collect();
    assert_eq!(heads, want, "a bad request reached the backend");
    assert!(
        b.requests().iter().all(|r| r.target != "/gone"),
        "a request whose client vanished mid-body was completed at the backend"
    );
}
