//! Issue 16: `[http] request_buffer_bytes` (HAProxy's `http-buffer-request`). A request
//! body is read into the client's buffer before a pooled backend connection is taken,
//! so a slow small upload never pins one; a larger body still streams; a body that never
//! completes gets 408 and never reaches a backend.
mod util;

use std::time::Duration;
use util::*;

/// Echoes a request's body (`len=N body`) and answers a GET with its target.
fn echo() -> Backend {
    Backend::start(|r| {
        if r.method == "GET" {
            ok(&r.target)
        } else {
            ok(&format!(
                "len={} {}",
                r.body.len(),
                String::from_utf8_lossy(&r.body)
            ))
        }
    })
}

/// One pooled connection only; a queued request gives up after 1 s.
const ONE_CONN: &str = "[http]\nserver1_addr={b0}\nserver1_min_workers=1\nserver1_max_workers=1\n\
                        queue_timeout=1s\n";

#[test]
fn a_trickling_small_body_does_not_pin_the_only_connection() {
    let b = echo();
    let p = Proxy::start(ONE_CONN, &[b.addr]);
    let mut slow = Client::connect(p.addr);
    slow.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    // Meanwhile another client is served on the one connection, at once.
    let r = get(p.addr, "/other");
    assert_eq!((r.status, r.text()), (200, "/other".to_string()));
    assert!(
        !b.head_seen("/upload"),
        "the incomplete upload took the connection"
    );
    slow.send(b"defg");
    assert_eq!(get(p.addr, "/again").text(), "/again");
    slow.send(b"hij");
    let r = slow.read_response(false).expect("a response");
    assert_eq!((r.status, r.text()), (200, "len=10 abcdefghij".to_string()));
    // The connection stays usable for the next request on it.
    assert_eq!(slow.get("/after").text(), "/after");
    assert_eq!(b.accepted(), 1, "everything on the one pooled connection");
}

#[test]
fn a_body_that_never_completes_gets_408_and_never_reaches_a_backend() {
    let b = echo();
    let p = Proxy::start(
        &format!("[frontend]\nrequest_header_timeout=300ms\n{ONE_CONN}"),
        &[b.addr],
    );
    let mut slow = Client::connect(p.addr);
    slow.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    let r = slow.read_response(false).expect("a response");
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.text().contains("request body timeout"), "{}", r.text());
    assert!(slow.closed());
    assert!(b.requests().is_empty() && !b.head_seen("/upload"));
    // Nothing was pinned or broken: the one connection serves the next request.
    assert_eq!(get(p.addr, "/next").text(), "/next");
    assert_eq!(b.accepted(), 1);
}

#[test]
fn a_body_larger_than_the_buffer_streams_before_it_is_complete() {
    let b = echo();
    let p = Proxy::start(ONE_CONN, &[b.addr]);
    let mut c = Client::connect(p.addr);
    let total = 100_000;
    c.send(format!("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {total}\r\n\r\n").as_bytes());
    c.send(&vec![b'x'; 40_000]);
    // Past the buffer the request goes out with the body still incomplete.
    assert!(
        wait_until(|| b.head_seen("/big")),
        "the large body did not stream"
    );
    c.send(&vec![b'x'; total - 40_000]);
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with(&format!("len={total} ")));
}

#[test]
fn a_small_chunked_body_is_buffered_too_and_forwarded_unchanged() {
    let b = echo();
    let p = Proxy::start(ONE_CONN, &[b.addr]);
    let mut slow = Client::connect(p.addr);
    slow.send(b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    assert_eq!(get(p.addr, "/other").text(), "/other");
    assert!(!b.head_seen("/chunked"));
    slow.send(b"lo\r\n0\r\n\r\n");
    let r = slow.read_response(false).expect("a response");
    assert_eq!((r.status, r.text()), (200, "len=5 hello".to_string()));
    let seen = b
        .requests()
        .into_iter()
        .find(|r| r.target == "/chunked")
        .unwrap();
    assert_eq!(
        seen.raw_body, b"5\r\nhello\r\n0\r\n\r\n",
        "framing forwarded as it came"
    );
}

#[test]
fn with_buffering_off_a_trickling_body_holds_the_connection_as_before() {
    let b = echo();
    let p = Proxy::start(&format!("{ONE_CONN}request_buffer_bytes=0\n"), &[b.addr]);
    let mut slow = Client::connect(p.addr);
    slow.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert!(wait_until(|| b.head_seen("/upload")), "streamed at once");
    let started = std::time::Instant::now();
    let r = get(p.addr, "/other");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(started.elapsed() >= Duration::from_millis(900));
    slow.send(b"defghij");
    let r = slow.read_response(false).expect("a response");
    assert_eq!((r.status, r.text()), (200, "len=10 abcdefghij".to_string()));
}
