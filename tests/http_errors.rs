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

#[test]
fn response_timeout_bounds_silence_not_a_moving_stream() {
    // Upload and download each take ~4x response_timeout, but bytes keep moving.
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
            } else {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
                for piece in b"slow-trickle".chunks(1) {
                    std::thread::sleep(Duration::from_millis(100));
                    if s.write_all(piece).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let p = Proxy::start(
        "[http]\nserver1_addr={b0}\nresponse_timeout=300ms\nmax_fails=0\n",
        &[b.addr],
    );
    let mut c = Client::connect(p.addr);
    c.send(b"PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n");
    for piece in b"slow-upload!".chunks(1) {
        std::thread::sleep(Duration::from_millis(100));
        c.send(piece);
    }
    let r = c.read_response(false).expect("upload answered");
    assert_eq!((r.status, r.text()), (200, "slow-upload!".to_string()));
    let r = c.get("/down");
    assert_eq!((r.status, r.text()), (200, "slow-trickle".to_string()));
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
    // A bad chunk size mid-body, before any response: 400 as well.
    let (r, _) = send_raw(
        p.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    );
    assert_eq!(r.status, 400);
    assert_eq!(b.count(), 0, "nothing malformed was forwarded");
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
    // Trickling bytes does not extend the deadline.
    let mut c = Client::connect(p.addr);
    let started = Instant::now();
    for b in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: 123456789012345678901234567890" {
        if c.w.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(15));
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let r = c.read_response(false).expect("408 for a slowloris");
    assert_eq!(r.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
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
}
