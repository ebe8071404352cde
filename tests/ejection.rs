//! Passive ejection never causes an outage by itself (issue 16, section 1), end to end.
//!
//! The reproduction from the issue: a group with one server; three faulty responses from it
//! (a close in the middle of a response, a reset, a truncated chunked body) eject it. Before
//! the fix every request then got 503 for `fail_timeout`, including those the server would
//! have answered. Now the one-server group keeps using its (ejected) server.

mod util;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use util::*;

/// Sets SO_LINGER 0 so that dropping the socket sends a reset.
fn set_linger_zero(s: &TcpStream) {
    let sock = socket2::SockRef::from(s);
    sock.set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
}

/// The three faults of the issue, one per request, in this order; every later request is
/// answered `200 served`. Each fault comes after the response head, so sluice has started
/// the response and cannot retry it: one passive failure each.
fn faulty_backend(served: Arc<AtomicUsize>) -> RawBackend {
    let next = Arc::new(AtomicUsize::new(0));
    RawBackend::start(move |mut s, _, stop: &AtomicBool| {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while let Some(_head) = read_head_raw(&mut s, stop) {
            let reply: &[u8] = match next.fetch_add(1, Ordering::SeqCst) {
                // Closed in the middle of a Content-Length body.
                0 => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
                // A reset in the middle of the body.
                1 => {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfive!");
                    set_linger_zero(&s);
                    return;
                }
                // A chunked body without its last chunk.
                2 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                _ => {
                    served.fetch_add(1, Ordering::SeqCst);
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nserved");
                    continue;
                }
            };
            let _ = s.write_all(reply);
            return;
        }
    })
}

#[test]
fn one_server_group_keeps_serving_after_three_faults_eject_it() {
    let served = Arc::new(AtomicUsize::new(0));
    let b = faulty_backend(served.clone());
    // Defaults: max_fails=3, fail_timeout=10s, max_ejected_percent=50.
    let p = Proxy::start_with_admin("[http]\nserver1_addr={b0}\n", &[b.addr]);
    let ejections = "sluice_server_ejections_total{group=\"http\",server=\"server1\"";
    for fault in [
        "a mid-response close",
        "a reset",
        "a truncated chunked body",
    ] {
        assert_eq!(p.metric(ejections), 0.0, "ejected before {fault}");
        let mut c = Client::connect(p.addr);
        c.send(b"GET /faulty HTTP/1.1\r\nHost: t\r\n\r\n");
        let (status, _) = c.read_head().expect("the head came before the fault");
        assert_eq!(status, 200, "{fault}");
        // The client sees the response cut short: sluice closes the connection.
        let rest = c.read_rest();
        assert!(rest.len() < 100, "{fault}: {} body bytes", rest.len());
    }
    // The three faults ejected the server (the setup the issue describes) ...
    assert!(
        wait_until(|| p.metric(ejections) == 1.0),
        "the three faults eject the only server"
    );
    // ... and the next requests, well within fail_timeout, are still served by it.
    for i in 0..5 {
        let r = get(p.addr, "/after");
        assert_eq!(
            (r.status, r.text()),
            (200, "served".to_string()),
            "request {i} after the ejection"
        );
    }
    assert_eq!(served.load(Ordering::SeqCst), 5);
    assert_eq!(p.metric(ejections), 1.0, "still within its one ejection");
    // The group shows it is in panic mode, and every one of those picks was made in it.
    let m = p.metrics();
    assert_eq!(
        metric_in(&m, "sluice_group_panic{group=\"http\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_in(&m, "sluice_group_panic{group=\"websocket\"}"),
        0.0
    );
    assert_eq!(
        metric_in(&m, "sluice_group_panic_picks_total{group=\"http\"}"),
        5.0
    );
    let status = get(p.admin.expect("admin"), "/status.json").text();
    assert!(
        status.contains("\"panic\":true,\"panic_picks\":5,"),
        "{status}"
    );
}
