//! End-to-end balancing and per-server pools (issue 3): round-robin and seeded random,
//! pool growth to max_workers and shrink to min_workers, the bounded queue (503 with
//! Retry-After), queue_timeout, retries on stale pooled connections, backend
//! `Connection: close` / `Keep-Alive: timeout`, refused connects.
mod util;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::*;

/// An address nothing listens on.
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Which of `names` a body came from.
#[track_caller]
fn which(body: &str, names: &[&str]) -> usize {
    names
        .iter()
        .position(|n| body == format!("hello from {n}"))
        .unwrap_or_else(|| panic!("unexpected body {body:?}"))
}

#[test]
fn round_robin_is_cyclic() {
    let bs = [
        Backend::hello("a"),
        Backend::hello("b"),
        Backend::hello("c"),
    ];
    let p = Proxy::start(
        "[http]\nalgorithm=round-robin\nserver1_addr={b0}\nserver7_addr={b1}\nserver3_addr={b2}\n",
        &[bs[0].addr, bs[1].addr, bs[2].addr],
    );
    let mut c = Client::connect(p.addr);
    let order: Vec<usize> = (0..12)
        .map(|_| which(&c.get("/").text(), &["a", "b", "c"]))
        .collect();
    // Servers are ordered by number: server1 (a), server3 (c), server7 (b).
    let first = order[0];
    let cycle = [0, 2, 1];
    let start = cycle.iter().position(|&x| x == first).unwrap();
    let want: Vec<usize> = (0..12).map(|i| cycle[(start + i) % 3]).collect();
    assert_eq!(order, want);
    for b in &bs {
        assert_eq!(b.count(), 4);
    }
}

/// The sequence of servers a fresh proxy (seed 42) picks for `n` requests.
fn random_sequence(n: usize) -> Vec<usize> {
    let bs = [
        Backend::hello("a"),
        Backend::hello("b"),
        Backend::hello("c"),
    ];
    let p = Proxy::start(
        "[http]\nalgorithm=random\nserver1_addr={b0}\nserver2_addr={b1}\nserver3_addr={b2}\n",
        &[bs[0].addr, bs[1].addr, bs[2].addr],
    );
    let mut c = Client::connect(p.addr);
    (0..n)
        .map(|_| which(&c.get("/").text(), &["a", "b", "c"]))
        .collect()
}

#[test]
fn random_spreads_and_is_reproducible_with_a_seed() {
    let seq = random_sequence(300);
    let mut counts = [0usize; 3];
    for &s in &seq {
        counts[s] += 1;
    }
    // Expected 100 each; 50 is more than 7 standard deviations away.
    assert!(counts.iter().all(|&n| n >= 50), "uneven spread {counts:?}");
    // Round-robin never picks the same server twice in a row; random does.
    assert!(seq.windows(2).any(|w| w[0] == w[1]), "random looks cyclic");
    assert_eq!(random_sequence(300), seq, "same seed, same choices");
}

#[test]
fn pool_grows_to_max_workers_then_shrinks_to_min() {
    let b = Backend::start(|r| Reply::Delay(Duration::from_millis(400), Box::new(ok(&r.target))));
    // client_idle_timeout only serves as a clock below: it is at least worker_timeout.
    let p = Proxy::start(
        "[frontend]\nhost=127.0.0.1\nport=0\nclient_idle_timeout=400ms\n\n\
         [http]\nserver1_addr={b0}\nserver1_min_workers=1\nserver1_max_workers=3\n\
         server1_worker_timeout=300ms\nserver1_buffer_size=20\n",
        &[b.addr],
    );
    assert!(
        wait_until(|| b.open() == 1),
        "min_workers connection opened at start"
    );
    let addr = p.addr;
    let clients: Vec<_> = (0..6)
        .map(|i| std::thread::spawn(move || get(addr, &format!("/c{i}"))))
        .collect();
    let mut peak = 0;
    let end = Instant::now() + WAIT;
    while b.count() < 6 && Instant::now() < end {
        peak = peak.max(b.open());
        std::thread::sleep(Duration::from_millis(5));
    }
    for (i, t) in clients.into_iter().enumerate() {
        let r = t.join().unwrap();
        assert_eq!((r.status, r.text()), (200, format!("/c{i}")));
    }
    assert_eq!(peak, 3, "grew to max_workers");
    assert_eq!(b.accepted(), 3, "never more than max_workers connections");
    // 6 requests over 3 connections: 2 each.
    let mut per_conn = [0; 3];
    for r in b.requests() {
        per_conn[r.conn] += 1;
    }
    assert_eq!(per_conn, [2, 2, 2]);
    // Idle above min_workers for worker_timeout: closed, down to one.
    assert!(
        wait_until(|| b.open() == 1),
        "shrank to min_workers, open={}",
        b.open()
    );
    // The one left must stay. Its idle deadline, had it one, was due at most
    // worker_timeout after the last response; a client connecting now is closed
    // client_idle_timeout (>= worker_timeout) from now, by a later timer. Once that
    // has fired, the first would have too.
    let mut clock = Client::connect(p.addr);
    assert!(clock.closed(), "the idle client was never closed");
    let r = get(p.addr, "/again");
    assert_eq!(r.status, 200);
    assert!(
        b.requests().last().unwrap().conn < 3,
        "served on a new connection: the min_workers connection was closed"
    );
    assert_eq!(b.accepted(), 3, "no churn after shrinking");
}

#[test]
fn min_workers_zero_opens_on_demand() {
    let b = Backend::hello("lazy");
    let p = Proxy::start_with_admin(
        "[http]\nserver1_addr={b0}\nserver1_min_workers=0\nserver1_worker_timeout=200ms\n",
        &[b.addr],
    );
    // The admin endpoint is served by the reactor after its start-up (where pools are
    // filled): by its answer any connection was opened, and would be accepted before
    // the test's own.
    assert_eq!(p.metric("sluice_backend_connections "), 0.0);
    assert_eq!(
        b.connections_before_ours(),
        0,
        "a connection was opened at start"
    );
    assert_eq!(get(p.addr, "/").text(), "hello from lazy");
    assert!(
        wait_until(|| b.open() == 0),
        "idle connection above min_workers=0 closed"
    );
}

/// A backend that holds every request whose target starts with `/held` until
/// `release` is set (bounded by `WAIT`), and answers the rest at once.
fn gated() -> (Backend, Arc<std::sync::atomic::AtomicBool>) {
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r2 = release.clone();
    let b = Backend::start(move |r| {
        if r.target.starts_with("/held") {
            wait_until(|| r2.load(Ordering::SeqCst));
        }
        ok(&r.target)
    });
    (b, release)
}

const QUEUE_LEN: &str = "sluice_server_queue_length{group=\"http\",server=\"server1\"";

#[test]
fn queue_full_answers_503_with_retry_after() {
    let (b, release) = gated();
    let p = Proxy::start_with_admin(
        "[http]\nserver1_addr={b0}\nserver1_max_workers=1\nserver1_buffer_size=1\nqueue_timeout=10s\n",
        &[b.addr],
    );
    let addr = p.addr;
    let first = std::thread::spawn(move || get(addr, "/held/first"));
    assert!(
        wait_until(|| b.count() == 1),
        "first request reached the backend"
    );
    let second = std::thread::spawn(move || get(addr, "/second"));
    assert!(
        wait_until(|| p.metric(QUEUE_LEN) == 1.0),
        "the second request takes the one queue slot"
    );
    let mut c = Client::connect(p.addr);
    let r = c.get("/third");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.text().contains("queue is full"), "{}", r.text());
    assert!(c.closed());
    // Refused at once: the first request is still held, nothing has moved.
    assert_eq!(b.count(), 1, "the 503 came after a slot was freed");
    release.store(true, Ordering::SeqCst);
    assert_eq!(first.join().unwrap().text(), "/held/first");
    assert_eq!(second.join().unwrap().text(), "/second");
    let targets: Vec<String> = b.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/held/first", "/second"]);
    assert_eq!(b.accepted(), 1);
}

#[test]
fn queue_timeout_answers_503() {
    let (b, release) = gated();
    let p = Proxy::start(
        "[http]\nserver1_addr={b0}\nserver1_max_workers=1\nqueue_timeout=300ms\n",
        &[b.addr],
    );
    let addr = p.addr;
    let first = std::thread::spawn(move || get(addr, "/held/first"));
    assert!(wait_until(|| b.count() == 1));
    let started = Instant::now();
    let r = get(p.addr, "/waits");
    let waited = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.text().contains("timed out waiting"), "{}", r.text());
    assert!(
        waited >= Duration::from_millis(300),
        "answered after {waited:?}, before queue_timeout"
    );
    // The slot never freed while it waited.
    assert_eq!(b.count(), 1);
    release.store(true, Ordering::SeqCst);
    assert_eq!(first.join().unwrap().text(), "/held/first");
    assert_eq!(get(p.addr, "/after").text(), "/after");
    let targets: Vec<String> = b.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        ["/held/first", "/after"],
        "the timed-out request never reached the backend"
    );
}

#[test]
fn stale_pooled_connection_is_retried_on_a_fresh_one() {
    // The second request on connection 0 finds it closed by the backend before any
    // response byte (the race of a keep-alive close): sluice must retry it.
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let b = Backend::start(move |r| {
        let k = n2.fetch_add(1, Ordering::SeqCst);
        if r.conn == 0 && k == 1 {
            Reply::Close
        } else {
            ok(&format!("{} on {}", r.target, r.conn))
        }
    });
    let p = Proxy::start(
        "[http]\nserver1_addr={b0}\nserver1_max_workers=1\n",
        &[b.addr],
    );
    let mut c = Client::connect(p.addr);
    assert_eq!(c.get("/one").text(), "/one on 0");
    let r = c.get("/two");
    assert_eq!(
        (r.status, r.text()),
        (200, "/two on 1".to_string()),
        "retried on a fresh connection"
    );
    assert_eq!(
        b.count(),
        3,
        "seen once on the stale connection, once on the fresh one"
    );
    assert_eq!(c.get("/three").text(), "/three on 1");
}

#[test]
fn retried_request_does_not_eat_the_next_pipelined_one() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let b = Backend::start(move |r| {
        if r.conn == 0 && n2.fetch_add(1, Ordering::SeqCst) == 1 {
            Reply::Close
        } else {
            ok(&r.target)
        }
    });
    let p = Proxy::start(
        "[http]\nserver1_addr={b0}\nserver1_max_workers=1\n",
        &[b.addr],
    );
    let mut c = Client::connect(p.addr);
    assert_eq!(c.get("/one").text(), "/one");
    // /two is retried on a fresh connection; /three waits behind it in the same buffer.
    c.send(b"GET /two HTTP/1.1\r\nHost: t\r\n\r\nGET /three-is-longer HTTP/1.1\r\nHost: t\r\n\r\n");
    for want in ["/two", "/three-is-longer"] {
        let r = c
            .read_response(false)
            .expect("pipelined response after a retry");
        assert_eq!((r.status, r.text()), (200, want.to_string()));
    }
}

#[test]
fn backend_closing_idle_connections_never_costs_a_request() {
    let b = Backend::start_idle_close(Duration::from_millis(100), |r| ok(&r.target));
    let p = Proxy::start("[http]\nserver1_addr={b0}\n", &[b.addr]);
    let mut c = Client::connect(p.addr);
    for i in 0..8 {
        let r = c.get(&format!("/r{i}"));
        assert_eq!((r.status, r.text()), (200, format!("/r{i}")), "request {i}");
        // Alternate around the backend's idle close so some requests race it.
        std::thread::sleep(Duration::from_millis(
            [20, 90, 100, 110, 150, 0, 95, 105][i],
        ));
    }
    assert!(
        b.accepted() >= 2,
        "connections were closed by the backend and replaced"
    );
}

#[test]
fn non_idempotent_request_failing_on_fresh_connection_is_not_replayed() {
    let b = Backend::start(|r| {
        if r.method == "POST" {
            Reply::Close
        } else {
            ok("fine")
        }
    });
    let p = Proxy::start("[http]\nserver1_addr={b0}\nretries=0\n", &[b.addr]);
    let mut c = Client::connect(p.addr);
    c.send(b"POST /pay HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 502);
    let posts = b
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "a POST is never sent twice");
}

#[test]
fn backend_connection_close_is_honoured() {
    // The backend says close but keeps the socket open: sluice must not reuse it.
    let b = Backend::start(|r| {
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
                r.target.len(),
                r.target
            )
            .into_bytes(),
        )
    });
    let p = Proxy::start("[http]\nserver1_addr={b0}\n", &[b.addr]);
    let mut c = Client::connect(p.addr);
    for t in ["/a", "/b", "/c"] {
        let r = c.get(t);
        assert_eq!((r.status, r.text()), (200, t.to_string()));
        assert_eq!(
            r.header("connection"),
            None,
            "the backend's close is hop-by-hop"
        );
    }
    let conns: Vec<usize> = b.requests().iter().map(|r| r.conn).collect();
    assert_eq!(conns.len(), 3);
    assert!(
        conns[0] != conns[1] && conns[1] != conns[2] && conns[0] != conns[2],
        "reused a closed connection: {conns:?}"
    );
    assert!(
        wait_until(|| b.open() == 1),
        "closed connections are closed on sluice's side too"
    );
}

#[test]
fn backend_keep_alive_timeout_is_honoured() {
    // The backend announces `Keep-Alive: timeout=1` and does close idle connections
    // after 1 s: sluice must close (and replace, min_workers=1) them first.
    let b = Backend::start_idle_close(Duration::from_secs(1), |r| {
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: {}\r\n\r\n{}",
                r.target.len(),
                r.target
            )
            .into_bytes(),
        )
    });
    let p = Proxy::start("[http]\nserver1_addr={b0}\n", &[b.addr]);
    assert_eq!(get(p.addr, "/x").text(), "/x");
    assert!(
        wait_until(|| b.accepted() == 2 && b.open() == 1),
        "the connection was not replaced"
    );
    assert_eq!(
        b.idle_closed.load(Ordering::SeqCst),
        0,
        "the backend closed the idle connection itself: sluice did not close it before timeout=1"
    );
    let seen = b.requests();
    assert_eq!(seen[0].conn, 0);
    assert_eq!(get(p.addr, "/y").text(), "/y");
    assert_ne!(b.requests()[1].conn, 0, "the closed connection was reused");
}

#[test]
fn connect_refused_tries_the_next_server() {
    let live = Backend::hello("live");
    let p = Proxy::start(
        "[http]\nalgorithm=round-robin\nserver1_addr={b0}\nserver2_addr={b1}\nserver3_addr={b2}\n",
        &[dead_addr(), live.addr, dead_addr()],
    );
    let mut c = Client::connect(p.addr);
    for i in 0..10 {
        let r = c.get(&format!("/{i}"));
        assert_eq!(
            (r.status, r.text()),
            (200, "hello from live".to_string()),
            "request {i}"
        );
    }
    assert_eq!(live.count(), 10);
}

#[test]
fn all_servers_refusing_gives_502_also_once_they_are_ejected_never_503() {
    // Issue 16: this test used to assert 502 until both servers were ejected, then 503.
    // Passive ejection never empties a group: ejected servers are still tried (least
    // recently failed first), so every request gets 502 (no server could be reached).
    let p = Proxy::start_with_admin(
        "[http]\nserver1_addr={b0}\nserver2_addr={b1}\nmax_fails=2\nfail_timeout=30s\n",
        &[dead_addr(), dead_addr()],
    );
    // The start-up connects (no request waiting: not counted against the servers)
    // have failed once no backend connection is left.
    assert!(wait_until(|| p.metric("sluice_backend_connections ") == 0.0));
    // Each request tries both servers, one failure each; the second brings both to
    // max_fails=2 and ejects them.
    let mut answers = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(p.addr);
        let r = c.get("/");
        assert!(c.closed());
        answers.push((r.status, r.header("retry-after").map(str::to_string)));
        assert!(
            r.text().contains("bad gateway"),
            "{}: {}",
            r.status,
            r.text()
        );
    }
    assert_eq!(
        answers,
        [(502, None), (502, None), (502, None), (502, None)]
    );
    for s in ["server1", "server2"] {
        let ejections = format!("sluice_server_ejections_total{{group=\"http\",server=\"{s}\"");
        assert_eq!(p.metric(&ejections), 1.0, "{s} was ejected");
    }
}

#[test]
fn backend_started_after_the_proxy_is_not_ejected_by_the_pool_prefill() {
    // The port refuses while sluice prefills 5 connections (more than max_fails=3):
    // a prefill carries no client traffic and must not eject the server.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let p = Proxy::start_with_admin(
        &format!(
            "[http]\nserver1_addr={addr}\nserver1_min_workers=5\nserver1_max_workers=5\nmax_fails=3\nfail_timeout=30s\n"
        ),
        &[],
    );
    // All five prefill connects have failed once no backend connection is left.
    assert!(wait_until(|| p.metric("sluice_backend_connections ") == 0.0));
    assert_eq!(
        p.metric("sluice_server_ejections_total{group=\"http\",server=\"server1\""),
        0.0
    );
    let _b = Backend::start_on(std::net::TcpListener::bind(addr).unwrap(), |_| ok("late"));
    let r = get(p.addr, "/");
    assert_eq!((r.status, r.text().as_str()), (200, "late"));
}

#[test]
fn pool_is_refilled_to_min_workers_after_a_504_and_a_502_without_a_request() {
    let b = Backend::start(|r| match r.target.as_str() {
        "/hang" => Reply::Hang,
        "/garbage" => Reply::Raw(b"not http\r\n\r\n".to_vec()),
        t => ok(t),
    });
    let p = Proxy::start(
        "[http]\nserver1_addr={b0}\nserver1_min_workers=1\nserver1_max_workers=2\n\
         response_timeout=300ms\n",
        &[b.addr],
    );
    assert!(wait_until(|| b.accepted() == 1), "min_workers at start");
    assert_eq!(get(p.addr, "/hang").status, 504);
    // The 504 closed the pooled connection: a new one is opened now, not when the
    // next request comes.
    assert!(
        wait_until(|| b.accepted() == 2),
        "not refilled after the 504: accepted {}",
        b.accepted()
    );
    assert_eq!(get(p.addr, "/garbage").status, 502);
    assert!(
        wait_until(|| b.accepted() == 3),
        "not refilled after the 502: accepted {}",
        b.accepted()
    );
    // The refilled connection serves the next request: no connection opened for it.
    assert_eq!(get(p.addr, "/after").text(), "/after");
    assert_eq!(b.accepted(), 3);
    assert_eq!(b.count(), 3);
}

/// A download to a client that stops reading ends with the backend connection's reads
/// masked (backpressure: the client is full when the last response byte is taken). Back
/// in the pool it must read again: the backend closing it while idle is noticed and the
/// connection replaced (min_workers = 1) before any request needs it.
#[test]
fn a_connection_pooled_after_a_backpressured_download_still_sees_its_close() {
    const BODY: usize = 16 << 20;
    let b = Backend::start_idle_close(Duration::from_millis(300), |_| {
        let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").into_bytes();
        raw.resize(raw.len() + BODY, b'x');
        Reply::Raw(raw)
    });
    let p = Proxy::start(
        "[http]\nserver1_addr={b0}\nserver1_min_workers=1\n",
        &[b.addr],
    );
    let mut c = Client::connect(p.addr);
    c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    // Paused until the backend has written everything it can: sluice's side toward the
    // client is full and the backend's reads are masked.
    std::thread::sleep(Duration::from_millis(300));
    let r = c.read_response(false).expect("the whole response");
    assert_eq!((r.status, r.body.len()), (200, BODY));
    assert!(
        wait_until(|| b.idle_closed.load(Ordering::SeqCst) == 1 && b.accepted() == 2),
        "the backend's close of the idle connection went unseen ({} accepted)",
        b.accepted()
    );
    assert_eq!(c.get("/after").status, 200);
}
