//! Per-client connection limit (issue 16, section 4), end to end: connections beyond
//! `[frontend] max_connections_per_client` from one address get `429 Too Many Requests`
//! with `Retry-After` and a close, an upgrade request too; every way a connection ends
//! gives its count back (the tracked addresses return to zero), and `/metrics` counts
//! the refusals.

mod util;
mod wsutil;

use tungstenite::Message;
use util::*;
use wsutil::*;

const LIMITS: &str = "[frontend]\nhost=127.0.0.1\nport=0\nmax_connections_per_client=3\n\
                      request_header_timeout=1s\n\
                      [http]\nserver1={b0}\n[websocket]\nserver1={b1}\n";
const REJECTED: &str = "sluice_client_limit_rejections_total";
const TRACKED: &str = "sluice_client_limit_tracked_addresses";

/// Asserts `c` got the 429 with Retry-After and then a close.
#[track_caller]
fn assert_refused(c: &mut Client) {
    let r = c.read_response(false).expect("an answer");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed(), "closed after the 429");
}

#[test]
fn connections_over_the_limit_get_429_and_every_close_gives_the_count_back() {
    let http = Backend::hello("b0");
    let ws = EchoBackend::start();
    let p = Proxy::start_with_admin(LIMITS, &[http.addr, ws.addr]);
    // Three connections from 127.0.0.1, each ending a different way later: a
    // keep-alive client, a WebSocket tunnel, and a request head that never completes.
    let mut keep = Client::connect(p.addr);
    assert_eq!(keep.get("/one").status, 200);
    let (mut tunnel, _) = ws_connect(p.addr, "/", &[]);
    tunnel.send(Message::text("hi")).unwrap();
    assert_eq!(next_msg(&mut tunnel), Message::text("hi"));
    let mut slow = Client::connect(p.addr);
    slow.send(b"GET /slow HTTP/1.1\r\n");
    assert!(wait_until(|| p.metric(TRACKED) == 1.0));
    // The fourth: refused, a plain request and an upgrade alike.
    let mut over = Client::connect(p.addr);
    over.send(b"GET /four HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_refused(&mut over);
    let mut up = Client::connect(p.addr);
    up.send(
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_refused(&mut up);
    assert_eq!(p.metric(REJECTED), 2.0);
    assert_eq!(
        ws.accepted(),
        1,
        "the refused upgrade never reached the backend"
    );
    assert_eq!(
        http.count(),
        1,
        "the refused request never reached the backend"
    );
    // The first three end: the client closes, the tunnel closes, the head times out
    // (408 and a lingering close).
    drop(keep);
    let _ = tunnel.close(None);
    while tunnel.read().is_ok() {} // the backend's Close, then the end
    let r = slow.read_response(false).expect("408");
    assert_eq!(r.status, 408);
    assert!(slow.closed());
    assert!(
        wait_until(|| p.metric(TRACKED) == 0.0),
        "counts left behind: {}",
        p.metrics()
    );
    // Counted from zero again: three are served at once, the fourth refused.
    let mut open: Vec<Client> = (0..3).map(|_| Client::connect(p.addr)).collect();
    for (k, c) in open.iter_mut().enumerate() {
        assert_eq!(c.get(&format!("/again{k}")).status, 200);
    }
    let mut over = Client::connect(p.addr);
    over.send(b"GET /four HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_refused(&mut over);
    assert_eq!(p.metric(REJECTED), 3.0);
    drop(open);
    assert!(wait_until(|| p.metric(TRACKED) == 0.0));
}

#[test]
fn off_by_default_nothing_is_tracked() {
    let http = Backend::hello("b0");
    let p = Proxy::start_with_admin("[http]\nserver1={b0}\n", &[http.addr]);
    let mut open: Vec<Client> = (0..8).map(|_| Client::connect(p.addr)).collect();
    for c in open.iter_mut() {
        assert_eq!(c.get("/").status, 200);
    }
    assert_eq!(p.metric(TRACKED), 0.0);
    assert_eq!(p.metric(REJECTED), 0.0);
}
