//! Health checks and balancing end to end (issue 5), over 127.0.0.1 with scripted backends.
//!
//! Active checks run with short intervals (300 ms, timeout 200 ms), so a verdict needs well
//! under a second; every wait is still bounded by generous limits because the test box is
//! small and noisy. Timings are printed (`--nocapture`) and asserted only loosely.

mod util;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use util::*;

/// Probe interval and timeout used by the active-check tests.
const INTERVAL: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_millis(200);
/// Allowed on top of `INTERVAL + TIMEOUT` for a verdict (thread wake-ups, a busy box).
const SLACK: Duration = Duration::from_millis(1500);
/// Consecutive responses from other servers that show a server is out of rotation.
const STREAK: usize = 8;

/// What a switchable backend answers to `/healthCheck`.
const HC_OK: u8 = 0;
const HC_HTTP_503: u8 = 1;
const HC_JSON_503: u8 = 2;
const HC_HANG: u8 = 3;

fn health_reply(mode: u8) -> Reply {
    match mode {
        HC_HTTP_503 => Reply::Raw(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy".to_vec(),
        ),
        HC_JSON_503 => ok("{\"status\":\"503\"}"),
        HC_HANG => Reply::Hang,
        _ => ok("{\"status\":\"200\"}"),
    }
}

/// A backend whose `/healthCheck` answer follows `mode`; everything else gets
/// `hello from <name>`.
fn switchable_on(listener: TcpListener, name: &'static str, mode: Arc<AtomicU8>) -> Backend {
    Backend::start_on(listener, move |r| {
        if r.target == "/healthCheck" {
            health_reply(mode.load(Ordering::SeqCst))
        } else {
            ok(&format!("hello from {name}"))
        }
    })
}

fn switchable(name: &'static str, mode: Arc<AtomicU8>) -> Backend {
    switchable_on(TcpListener::bind("127.0.0.1:0").expect("bind"), name, mode)
}

/// Requests other than health probes (and the test's own direct ones) a backend saw.
fn traffic(b: &Backend) -> usize {
    b.requests()
        .iter()
        .filter(|r| !r.target.starts_with("/healthCheck") && !r.target.starts_with("/direct-"))
        .count()
}

/// Health probes a backend saw.
fn probes(b: &Backend, path: &str) -> Vec<SeenRequest> {
    b.requests()
        .into_iter()
        .filter(|r| r.target == path)
        .collect()
}

/// One GET on a new connection: "a" / "b" for `hello from a|b`, else "status N".
fn who(addr: SocketAddr) -> String {
    let mut c = Client::connect(addr);
    c.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    match c.read_response(false) {
        Some(r) if r.status == 200 => r.text().trim_start_matches("hello from ").to_string(),
        Some(r) => format!("status {}", r.status),
        None => "no response".to_string(),
    }
}

/// Sends requests until `STREAK` answers in a row come from `other`; returns the time
/// from `t0` to the last answer that did not (the moment traffic stopped reaching the
/// server under test), or None after `WAIT`.
fn time_until_excluded(addr: SocketAddr, other: &str, t0: Instant) -> Option<Duration> {
    let mut last_elsewhere = t0;
    let mut streak = 0;
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        let sent = Instant::now();
        if who(addr) == other {
            streak += 1;
            if streak >= STREAK {
                return Some(last_elsewhere - t0);
            }
        } else {
            streak = 0;
            last_elsewhere = sent;
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    None
}

/// Sends requests until one is answered by `name`; returns the time since `t0`.
fn time_until_served_by(addr: SocketAddr, name: &str, t0: Instant) -> Option<Duration> {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if who(addr) == name {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    None
}

/// Round-robin over a (switchable) and b, checks every 300 ms, rise = fall = 1.
/// Passive checks are off so only the active checks decide.
fn active_pair(a: &Backend, b: &Backend, extra: &str) -> Proxy {
    let ini = format!(
        "[http]\nalgorithm=round-robin\nenable_health_check=true\nhealth_check_interval={}ms\n\
         health_check_timeout={}ms\nrise=1\nfall=1\nmax_fails=0\n{extra}\
         server1_addr={{b0}}\nserver2_addr={{b1}}\n",
        INTERVAL.as_millis(),
        TIMEOUT.as_millis()
    );
    Proxy::start_with_admin(&ini, &[a.addr, b.addr])
}

/// server1's `(up, probes passed, probes failed)` from one `/metrics` snapshot.
fn server1_health(p: &Proxy) -> (f64, f64, f64) {
    let text = p.metrics();
    let l = "{group=\"http\",server=\"server1\"";
    let checks = |result: &str| {
        let line = text
            .lines()
            .find(|x| {
                x.starts_with(&format!("sluice_server_health_checks_total{l}"))
                    && x.contains(&format!("result=\"{result}\""))
            })
            .unwrap_or_else(|| panic!("no health_checks_total {result} in:\n{text}"));
        metric_in(line, line)
    };
    (
        metric_in(&text, &format!("sluice_server_up{l}")),
        checks("ok"),
        checks("fail"),
    )
}

/// With rise = fall = 1 the verdict flips on the first probe of the new kind: in a
/// snapshot that shows exactly one more probe `failed` (or passed, `failed` = false)
/// than `before`, server1 must already be down (up). Polls until the first such
/// probe. A test thread stalled for a whole interval may only see two: then this
/// check is skipped (the time bounds still apply), never failed wrongly.
fn flips_on_the_first_probe(p: &Proxy, failed: bool, before: (f64, f64, f64), label: &str) {
    let want_up = if failed { 0.0 } else { 1.0 };
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        let now = server1_health(p);
        let probes = if failed {
            now.2 - before.2
        } else {
            now.1 - before.1
        };
        if probes == 1.0 {
            assert_eq!(
                now.0,
                want_up,
                "{label}: server1 still {} after one {} probe",
                if failed { "up" } else { "down" },
                if failed { "failed" } else { "passing" }
            );
            return;
        }
        if probes > 1.0 {
            eprintln!("{label}: first probe not observed alone, check skipped");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!(
        "{label}: no {} probe",
        if failed { "failed" } else { "passing" }
    );
}

/// a flips to `bad`, leaves the rotation within interval + timeout (+ slack), flips back
/// and serves again. Returns (time to eject, time to recover).
fn flip_and_recover(bad: u8, label: &str) -> (Duration, Duration) {
    let mode = Arc::new(AtomicU8::new(HC_OK));
    let a = switchable("a", mode.clone());
    let b = Backend::hello("b");
    let p = active_pair(&a, &b, "");
    assert!(
        time_until_served_by(p.addr, "a", Instant::now()).is_some(),
        "{label}: a never served"
    );
    assert!(
        time_until_served_by(p.addr, "b", Instant::now()).is_some(),
        "{label}: b never served"
    );

    let t0 = Instant::now();
    let health = server1_health(&p);
    mode.store(bad, Ordering::SeqCst);
    flips_on_the_first_probe(&p, true, health, label);
    let eject = time_until_excluded(p.addr, "b", t0)
        .unwrap_or_else(|| panic!("{label}: a never left the rotation"));
    let before = traffic(&a);
    for _ in 0..10 {
        assert_eq!(who(p.addr), "b", "{label}: a is down, b serves everything");
    }
    assert_eq!(
        traffic(&a),
        before,
        "{label}: no request reaches a while it is down"
    );

    let t1 = Instant::now();
    let health = server1_health(&p);
    mode.store(HC_OK, Ordering::SeqCst);
    flips_on_the_first_probe(&p, false, health, label);
    let recover = time_until_served_by(p.addr, "a", t1)
        .unwrap_or_else(|| panic!("{label}: a never came back"));
    eprintln!("{label}: ejected after {eject:?}, recovered after {recover:?}");
    assert!(
        eject < INTERVAL + TIMEOUT + SLACK,
        "{label}: took {eject:?} to stop traffic"
    );
    assert!(
        recover < INTERVAL + TIMEOUT + SLACK,
        "{label}: took {recover:?} to recover"
    );
    (eject, recover)
}

#[test]
fn http_503_takes_a_server_out_and_recovery_brings_it_back() {
    flip_and_recover(HC_HTTP_503, "HTTP 503");
}

#[test]
fn json_status_503_takes_a_server_out_and_recovery_brings_it_back() {
    flip_and_recover(HC_JSON_503, "JSON \"503\"");
}

#[test]
fn hanging_health_check_times_out_and_recovery_brings_it_back() {
    flip_and_recover(HC_HANG, "hang");
}

#[test]
fn refused_connection_takes_a_server_out_and_a_restart_brings_it_back() {
    let mode = Arc::new(AtomicU8::new(HC_OK));
    let a = switchable("a", mode.clone());
    let b = Backend::hello("b");
    // retries=0: a request sent to the dead server shows as a 502 instead of being
    // re-routed, so the test sees exactly when the active check stops picking it.
    let p = active_pair(&a, &b, "retries=0\n");
    assert!(
        time_until_served_by(p.addr, "a", Instant::now()).is_some(),
        "a never served"
    );
    let port = a.addr;

    let t0 = Instant::now();
    let health = server1_health(&p);
    drop(a);
    flips_on_the_first_probe(&p, true, health, "refused");
    let eject =
        time_until_excluded(p.addr, "b", t0).expect("the dead server never left the rotation");
    for _ in 0..10 {
        assert_eq!(who(p.addr), "b", "the dead server is not picked");
    }

    let listener = TcpListener::bind(port).expect("rebind the old port");
    let t1 = Instant::now();
    let health = server1_health(&p);
    let a = switchable_on(listener, "a", mode);
    flips_on_the_first_probe(&p, false, health, "refused");
    let recover =
        time_until_served_by(p.addr, "a", t1).expect("the restarted server never came back");
    eprintln!("refused: ejected after {eject:?}, recovered after {recover:?} (restart on {port})");
    assert!(
        eject < INTERVAL + TIMEOUT + SLACK,
        "refused: took {eject:?} to stop traffic"
    );
    assert!(
        recover < INTERVAL + TIMEOUT + SLACK,
        "refused: took {recover:?} to recover"
    );
    assert!(traffic(&a) >= 1);
}

#[test]
fn down_server_loses_its_idle_pool_connections() {
    let mode = Arc::new(AtomicU8::new(HC_OK));
    let a = switchable("a", mode.clone());
    let b = Backend::hello("b");
    let p = active_pair(&a, &b, "");
    assert!(time_until_served_by(p.addr, "a", Instant::now()).is_some());
    assert!(a.open() >= 1, "a pooled connection to a stays open");
    mode.store(HC_HTTP_503, Ordering::SeqCst);
    assert!(time_until_excluded(p.addr, "b", Instant::now()).is_some());
    // Probe connections live for a few milliseconds; the pooled one must be gone for good.
    let mut quiet = 0;
    let closed = wait_until(|| {
        quiet = if a.open() == 0 { quiet + 1 } else { 0 };
        quiet >= 5
    });
    assert!(
        closed,
        "idle pool connections to a down server are closed ({} open)",
        a.open()
    );
    mode.store(HC_OK, Ordering::SeqCst);
    assert!(time_until_served_by(p.addr, "a", Instant::now()).is_some());
    assert!(
        wait_until(|| a.open() >= 1),
        "the pool is refilled when the server is up again"
    );
}

#[test]
fn numeric_and_string_200_are_healthy_and_probes_carry_host_and_path() {
    let path = "/status/health";
    let numeric = Backend::start(move |r| {
        if r.target == path {
            ok("{\"status\":200}")
        } else {
            ok("hello from a")
        }
    });
    let string = Backend::start(move |r| {
        if r.target == path {
            ok("{\"status\":\"200\",\"cpu\":10}")
        } else {
            ok("hello from b")
        }
    });
    let p = active_pair(&numeric, &string, &format!("health_check_path={path}\n"));
    assert!(
        wait_until(|| probes(&numeric, path).len() >= 4 && probes(&string, path).len() >= 4),
        "both servers are probed repeatedly"
    );
    let answers: Vec<String> = (0..10).map(|_| who(p.addr)).collect();
    assert_eq!(
        answers.iter().filter(|a| *a == "a").count(),
        5,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|a| *a == "b").count(),
        5,
        "{answers:?}"
    );
    for (b, addr) in [(&numeric, numeric.addr), (&string, string.addr)] {
        for r in probes(b, path) {
            assert_eq!(r.method, "GET");
            assert_eq!(r.version, "HTTP/1.1");
            assert_eq!(
                r.header("host"),
                Some(addr.to_string().as_str()),
                "probe Host header"
            );
        }
        assert!(
            b.requests().iter().all(|r| r.target != "/healthCheck"),
            "only the configured path"
        );
    }
}

/// Sends one request on a new connection and reads the answer.
fn answer(addr: SocketAddr, request: &[u8]) -> Response {
    let mut c = Client::connect(addr);
    c.send(request);
    c.read_response(false).expect("an answer, not a hang")
}

const UPGRADE: &[u8] =
    b"GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A WebSocket backend: 101 to upgrades, health from `mode`.
fn ws_backend(mode: Arc<AtomicU8>) -> Backend {
    Backend::start(move |r| {
        if r.target == "/healthCheck" {
            health_reply(mode.load(Ordering::SeqCst))
        } else {
            Reply::Raw(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
                    .to_vec(),
            )
        }
    })
}

#[test]
fn all_servers_down_answers_503_at_once_for_http_and_upgrades() {
    // Each group's first probe runs at start and takes its only server down (fall=1);
    // the next comes a whole interval later. "At once" is checked by what happens,
    // not by a clock: every 503 comes without any connection to a backend (no connect
    // attempt, no waiting for the next probe).
    const SLOW_INTERVAL: Duration = Duration::from_secs(2);
    let down = Arc::new(AtomicU8::new(HC_HTTP_503));
    let h = switchable("a", down.clone());
    let w = ws_backend(down.clone());
    let ini = format!(
        "[http]\nenable_health_check=true\nhealth_check_interval={i}ms\nhealth_check_timeout={t}ms\n\
         rise=1\nfall=1\nserver1_addr={{b0}}\n\n\
         [websocket]\nenable_health_check=true\nhealth_check_interval={i}ms\nhealth_check_timeout={t}ms\n\
         rise=1\nfall=1\nserver1={{b1}}\n",
        i = SLOW_INTERVAL.as_millis(),
        t = TIMEOUT.as_millis()
    );
    let p = Proxy::start(&ini, &[h.addr, w.addr]);
    let get = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";
    assert!(
        wait_until(|| answer(p.addr, get).status == 503),
        "the http server goes down"
    );
    assert!(
        wait_until(|| answer(p.addr, UPGRADE).status == 503),
        "the websocket server goes down"
    );
    // Until the first probe both started up (documented), so the waits above may have
    // been served; from here on nothing may reach them, not even a connection.
    let (http_conns, ws_conns) = (h.connections_before_ours(), w.connections_before_ours());
    let (http_before, ws_before) = (traffic(&h), traffic(&w));
    for _ in 0..5 {
        for (request, group) in [(&get[..], "[http]"), (UPGRADE, "[websocket]")] {
            let t0 = Instant::now();
            let r = answer(p.addr, request);
            let took = t0.elapsed();
            assert_eq!(r.status, 503);
            assert_eq!(r.header("retry-after"), Some("1"), "{group}");
            let body = r.text();
            assert!(
                body.contains("no healthy server") && body.contains(group),
                "{body:?}"
            );
            eprintln!("all down: {group} 503 in {took:?}");
        }
    }
    assert_eq!(
        (h.connections_before_ours(), w.connections_before_ours()),
        (http_conns + 1, ws_conns + 1),
        "a backend was connected to (a request or a probe) while the 503s were answered"
    );
    assert_eq!(traffic(&h), http_before);
    assert_eq!(traffic(&w), ws_before);
    assert_eq!(
        (
            probes(&h, "/healthCheck").len(),
            probes(&w, "/healthCheck").len()
        ),
        (1, 1),
        "each group was probed once: the 503s did not wait for a probe"
    );

    // Back up: both groups serve again.
    down.store(HC_OK, Ordering::SeqCst);
    assert!(
        wait_until(|| answer(p.addr, get).status == 200),
        "http recovers"
    );
    assert!(
        wait_until(|| answer(p.addr, UPGRADE).status == 101),
        "websocket recovers"
    );
}

#[test]
fn websocket_picks_skip_a_server_that_fails_its_checks() {
    let good = ws_backend(Arc::new(AtomicU8::new(HC_OK)));
    let bad = ws_backend(Arc::new(AtomicU8::new(HC_JSON_503)));
    let http = Backend::hello("h");
    let ini = format!(
        "[http]\nserver1_addr={{b2}}\n\n\
         [websocket]\nalgorithm=round-robin\nenable_health_check=true\nhealth_check_interval={}ms\n\
         health_check_timeout={}ms\nrise=1\nfall=1\nserver1={{b0}}\nserver2={{b1}}\n",
        INTERVAL.as_millis(),
        TIMEOUT.as_millis()
    );
    let p = Proxy::start(&ini, &[good.addr, bad.addr, http.addr]);
    assert!(
        wait_until(|| probes(&bad, "/healthCheck").len() >= 2),
        "the bad websocket server is probed"
    );
    assert!(
        wait_until(|| probes(&good, "/healthCheck").len() >= 2),
        "the good websocket server is probed"
    );
    let before = traffic(&bad);
    let mut clients = Vec::new();
    for _ in 0..6 {
        let mut c = Client::connect(p.addr);
        c.send(UPGRADE);
        assert_eq!(c.read_response(false).map(|r| r.status), Some(101));
        clients.push(c);
    }
    assert_eq!(
        traffic(&bad),
        before,
        "no upgrade reaches the server that is down"
    );
    assert_eq!(traffic(&good), 6);
    for r in probes(&bad, "/healthCheck") {
        assert_eq!(r.header("host"), Some(bad.addr.to_string().as_str()));
    }
    assert!(
        probes(&http, "/healthCheck").is_empty(),
        "[http] has checks off: never probed"
    );
}

#[test]
fn passive_ejection_after_max_fails_connect_failures() {
    let a = Backend::hello("a");
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let fail_timeout = Duration::from_secs(3);
    let ini = format!(
        "[http]\nalgorithm=round-robin\nmax_fails=3\nfail_timeout={}ms\nserver1_addr={{b0}}\nserver2_addr={{b1}}\n",
        fail_timeout.as_millis()
    );
    let p = Proxy::start(&ini, &[a.addr, dead_addr]);
    let t0 = Instant::now();
    // Every request succeeds (re-routed from the dead server); within a few the dead
    // one has failed max_fails times and is ejected.
    for _ in 0..10 {
        assert_eq!(who(p.addr), "a");
    }
    // Bring something up on the dead port: while ejected, sluice must not connect to it.
    let revived = Backend::start_on(TcpListener::bind(dead_addr).expect("rebind"), |_| {
        ok("hello from b")
    });
    for _ in 0..20 {
        assert_eq!(who(p.addr), "a");
    }
    let quiet = t0.elapsed();
    assert_eq!(
        revived.connections_before_ours(),
        0,
        "no connection to an ejected server (checked for {quiet:?})"
    );
    assert!(
        quiet < fail_timeout,
        "the quiet check ran inside fail_timeout ({quiet:?})"
    );
    // After fail_timeout it is tried again and, being alive now, serves.
    let back = time_until_served_by(p.addr, "b", t0).expect("tried again after fail_timeout");
    eprintln!("passive: ejected server back after {back:?} (fail_timeout {fail_timeout:?})");
    assert!(
        back >= fail_timeout - Duration::from_millis(500),
        "not before fail_timeout: {back:?}"
    );
}

#[test]
fn the_only_server_ejected_is_still_used_not_503() {
    // Issue 16: this test used to assert "all ejected -> 503 at once". Passive ejection
    // must never take out a whole group by itself: the ejected server is still used.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let p = Proxy::start_with_admin(
        "[http]\nmax_fails=1\nfail_timeout=30\nserver1_addr={b0}\n",
        &[dead_addr],
    );
    let get = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";
    // A request's failed connect ejects the only server (max_fails=1): 502, not 503.
    let r = answer(p.addr, get);
    assert_eq!(r.status, 502, "{}", r.text());
    let ejections = "sluice_server_ejections_total{group=\"http\",server=\"server1\"";
    assert_eq!(p.metric(ejections), 1.0, "the only server is ejected");
    for _ in 0..3 {
        let r = answer(p.addr, get);
        assert_eq!(r.status, 502, "still tried while ejected: {}", r.text());
    }
    // Something listens on its port now: within fail_timeout it serves.
    let revived = Backend::start_on(TcpListener::bind(dead_addr).expect("rebind"), |_| {
        ok("hello from the ejected server")
    });
    let t0 = Instant::now();
    for _ in 0..5 {
        let r = answer(p.addr, get);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), "hello from the ejected server");
    }
    eprintln!("only server ejected: served again in {:?}", t0.elapsed());
    assert_eq!(p.metric(ejections), 1.0, "within its one ejection");
    assert!(revived.count() >= 5, "the ejected server was used");
}

#[test]
fn fail_on_5xx_ejects_a_server_returning_500() {
    let a = Backend::start(|_| {
        Reply::Raw(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops".to_vec())
    });
    let b = Backend::hello("b");
    let p = Proxy::start(
        "[http]\nalgorithm=round-robin\nfail_on_5xx=true\nmax_fails=2\nfail_timeout=30\n\
         server1_addr={b0}\nserver2_addr={b1}\n",
        &[a.addr, b.addr],
    );
    let answers: Vec<String> = (0..10).map(|_| who(p.addr)).collect();
    // Round-robin: a gets every other request until its second 500 ejects it.
    let errors = answers.iter().filter(|s| *s == "status 500").count();
    assert_eq!(errors, 2, "max_fails 500s, then ejected: {answers:?}");
    let before = traffic(&a);
    for _ in 0..10 {
        assert_eq!(who(p.addr), "b");
    }
    assert_eq!(traffic(&a), before, "the ejected server gets nothing");
}

#[test]
fn weighted_round_robin_follows_static_weights() {
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let p = Proxy::start(
        "[http]\nalgorithm=weighted-round-robin\nserver1_addr={b0}\nserver1_weight=3\n\
         server2_addr={b1}\nserver2_weight=1\n",
        &[a.addr, b.addr],
    );
    let mut c = Client::connect(p.addr);
    let mut counts = [0usize; 2];
    for _ in 0..400 {
        match c.get("/").text().as_str() {
            "hello from a" => counts[0] += 1,
            "hello from b" => counts[1] += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    eprintln!("weights 3:1 -> {counts:?}");
    // Smooth weighted round-robin is exact: 3 of every 4 picks go to a.
    assert_eq!(counts, [300, 100]);
}

/// Requests on one keep-alive connection: answers from (a, b).
fn split(addr: SocketAddr, n: usize) -> [usize; 2] {
    let mut c = Client::connect(addr);
    let mut counts = [0usize; 2];
    for _ in 0..n {
        match c.get("/").text().as_str() {
            "hello from a" => counts[0] += 1,
            "hello from b" => counts[1] += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    counts
}

#[test]
fn server_reported_weights_shift_the_split_and_fall_back_when_reports_stop() {
    let light = Backend::start(|r| {
        if r.target == "/healthCheck" {
            ok("{\"status\":\"200\",\"weight\":1}")
        } else {
            ok("hello from a")
        }
    });
    let reporting = Arc::new(AtomicU8::new(1));
    let flag = reporting.clone();
    let heavy = Backend::start(move |r| {
        if r.target != "/healthCheck" {
            ok("hello from b")
        } else if flag.load(Ordering::SeqCst) == 1 {
            ok("{\"status\":\"200\",\"weight\":9}")
        } else {
            ok("{\"status\":\"200\"}")
        }
    });
    let ini = format!(
        "[http]\nalgorithm=weighted-round-robin\nenable_health_check=true\nhealth_check_interval={}ms\n\
         health_check_timeout={}ms\nserver1_addr={{b0}}\nserver2_addr={{b1}}\n",
        INTERVAL.as_millis(),
        TIMEOUT.as_millis()
    );
    let p = Proxy::start(&ini, &[light.addr, heavy.addr]);
    assert!(
        wait_until(|| probes(&light, "/healthCheck").len() >= 4
            && probes(&heavy, "/healthCheck").len() >= 4),
        "a few probes"
    );
    let counts = split(p.addr, 200);
    eprintln!("reported weights 1 vs 9 -> {counts:?}");
    assert!(
        counts[1] >= 150,
        "the server reporting 9 gets most requests: {counts:?}"
    );
    assert!(
        counts[0] >= 5,
        "the one reporting 1 still gets some: {counts:?}"
    );

    // Reports stop (healthy replies without load numbers): after a few intervals the
    // static weights (1:1) rule again; "light" keeps reporting 1 = its static weight.
    reporting.store(0, Ordering::SeqCst);
    let t0 = Instant::now();
    let end = t0 + WAIT;
    let mut last = counts;
    while Instant::now() < end {
        last = split(p.addr, 40);
        if last == [20, 20] {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("reports stopped: {last:?} after {:?}", t0.elapsed());
    assert_eq!(last, [20, 20], "back to the static weights");
}

#[test]
fn least_connections_avoids_a_server_holding_slow_requests() {
    avoids_busy_server("least-connections");
}

#[test]
fn power_of_two_avoids_a_server_holding_slow_requests() {
    // With two servers both are always drawn, so the less loaded one must win.
    avoids_busy_server("power-of-two");
}

fn avoids_busy_server(algorithm: &str) {
    // a holds every /slow request until the test releases it.
    let release = Arc::new(AtomicU8::new(0));
    let answered = Arc::new(AtomicU8::new(0));
    let (r2, a2) = (release.clone(), answered.clone());
    let slow = Backend::start(move |r| {
        if r.target == "/slow" {
            wait_until(|| r2.load(Ordering::SeqCst) == 1);
            a2.fetch_add(1, Ordering::SeqCst);
        }
        ok("hello from a")
    });
    let fast = Backend::hello("b");
    let p = Proxy::start(
        &format!("[http]\nalgorithm={algorithm}\nserver1_addr={{b0}}\nserver2_addr={{b1}}\nserver1_max_workers=4\n"),
        &[slow.addr, fast.addr],
    );
    let addr = p.addr;
    // Park slow requests until a holds one (a request landing on b finishes at once).
    let mut held = Vec::new();
    for _ in 0..4 {
        if slow.requests().iter().any(|r| r.target == "/slow") {
            break;
        }
        held.push(std::thread::spawn(move || get(addr, "/slow").status));
        let _ = wait_until_for(Duration::from_millis(300), || {
            slow.requests().iter().any(|r| r.target == "/slow")
        });
    }
    assert!(
        slow.requests().iter().any(|r| r.target == "/slow"),
        "a holds a slow request"
    );
    let before = traffic(&slow);
    let mut c = Client::connect(p.addr);
    for _ in 0..20 {
        assert_eq!(
            c.get("/").text(),
            "hello from b",
            "{algorithm}: new requests go to the idle server"
        );
    }
    // a was busy throughout: its slow requests are held until now.
    assert!(
        held.iter().all(|h| !h.is_finished()),
        "a slow request ended"
    );
    assert_eq!(traffic(&slow), before);
    release.store(1, Ordering::SeqCst);
    for h in held {
        assert_eq!(h.join().unwrap(), 200);
    }
}

#[test]
fn least_connections_counts_open_tunnels() {
    let w1 = ws_backend(Arc::new(AtomicU8::new(HC_OK)));
    let w2 = ws_backend(Arc::new(AtomicU8::new(HC_OK)));
    let p = Proxy::start(
        "[websocket]\nalgorithm=least-connections\nserver1={b0}\nserver2={b1}\n",
        &[w1.addr, w2.addr],
    );
    let open = |n: usize| {
        (0..n)
            .map(|_| {
                let mut c = Client::connect(p.addr);
                c.send(UPGRADE);
                assert_eq!(c.read_response(false).map(|r| r.status), Some(101));
                c
            })
            .collect::<Vec<_>>()
    };
    // Three tunnels on w1's side of the ledger, one on w2's: close w2's.
    let first = open(2);
    assert_eq!((traffic(&w1), traffic(&w2)), (1, 1));
    let on_w2 = open(1);
    let (w1_n, w2_n) = (traffic(&w1), traffic(&w2));
    assert_eq!(w1_n + w2_n, 3);
    // Whichever holds two tunnels, the next ones go to the other until loads match.
    let (busy, idle) = if w1_n == 2 { (&w1, &w2) } else { (&w2, &w1) };
    let idle_before = traffic(idle);
    let more = open(1);
    assert_eq!(
        traffic(idle),
        idle_before + 1,
        "the server with fewer open tunnels wins"
    );
    // Loads are now 2:2. Closing the last tunnel frees its slot (2 busy : 1 idle), so
    // the next upgrade goes back to `idle`; had the close not been counted, the tie
    // would go to `busy` (the cursor is past `idle`).
    let idle_open = idle.open();
    drop(more);
    assert!(
        wait_until(|| idle.open() < idle_open),
        "the tunnel closed at the backend"
    );
    let (busy_before, idle_before) = (traffic(busy), traffic(idle));
    let _again = open(1);
    assert_eq!(
        (traffic(busy), traffic(idle)),
        (busy_before, idle_before + 1),
        "a closed tunnel no longer counts"
    );
    drop(first);
    drop(on_w2);
}

/// `wait_until` with its own bound.
fn wait_until_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Captures log lines of the in-process reactors (all tests share it; filter by address).
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.0.lock().unwrap().push(format!("{}", record.args()));
    }
    fn flush(&self) {}
}

fn captured() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).expect("only this test binary installs a logger");
        log::set_max_level(log::LevelFilter::Info);
        c
    })
}

fn lines_about(addr: SocketAddr, what: &str) -> usize {
    let needle = format!("{addr} {what}");
    captured()
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&needle))
        .count()
}

#[test]
fn each_transition_is_logged_once() {
    captured();
    let mode = Arc::new(AtomicU8::new(HC_OK));
    let a = switchable("a", mode.clone());
    let b = Backend::hello("b");
    let ini = format!(
        "[http]\nalgorithm=round-robin\nenable_health_check=true\nhealth_check_interval={}ms\n\
         health_check_timeout={}ms\nrise=2\nfall=2\nmax_fails=0\nserver1_addr={{b0}}\nserver2_addr={{b1}}\n",
        INTERVAL.as_millis(),
        TIMEOUT.as_millis()
    );
    let p = Proxy::start(&ini, &[a.addr, b.addr]);
    let seen = || probes(&a, "/healthCheck").len();
    assert!(wait_until(|| seen() >= 2));
    assert_eq!(
        lines_about(a.addr, "up -> down"),
        0,
        "healthy: no transition"
    );

    mode.store(HC_HTTP_503, Ordering::SeqCst);
    assert!(
        wait_until(|| lines_about(a.addr, "up -> down") >= 1),
        "logged when it goes down"
    );
    let n = seen();
    assert!(
        wait_until(|| seen() >= n + 4),
        "it keeps failing for a few more probes"
    );
    assert_eq!(
        lines_about(a.addr, "up -> down: HTTP 503"),
        1,
        "one line for one transition"
    );
    assert!(time_until_excluded(p.addr, "b", Instant::now()).is_some());

    mode.store(HC_OK, Ordering::SeqCst);
    assert!(
        wait_until(|| lines_about(a.addr, "down -> up") >= 1),
        "logged when it comes back"
    );
    let n = seen();
    assert!(
        wait_until(|| seen() >= n + 4),
        "it keeps passing for a few more probes"
    );
    assert_eq!(lines_about(a.addr, "down -> up"), 1);
    assert_eq!(lines_about(a.addr, "up -> down"), 1);
    assert_eq!(
        lines_about(b.addr, "->"),
        0,
        "the healthy server never changes"
    );
}

/// A request waiting in the queue of a server that goes down is sent to another server
/// at once (HAProxy's `option redispatch`) instead of waiting out `queue_timeout` (10 s
/// here, longer than the client's read timeout) for a server that will not take it.
#[test]
fn requests_queued_on_a_server_that_goes_down_are_redispatched() {
    let mode = Arc::new(AtomicU8::new(HC_OK));
    let m = mode.clone();
    let a = Backend::start(move |r| match r.target.as_str() {
        "/healthCheck" => health_reply(m.load(Ordering::SeqCst)),
        "/hang" => Reply::Hang,
        _ => ok("hello from a"),
    });
    let b = Backend::hello("b");
    // a takes nearly every pick (weights 100:1) and has a single connection.
    let ini = format!(
        "[http]\nalgorithm=weighted-round-robin\nenable_health_check=true\n\
         health_check_interval={}ms\nhealth_check_timeout={}ms\nrise=1\nfall=1\nmax_fails=0\n\
         queue_timeout=10s\nserver1_addr={{b0}}\nserver1_weight=100\nserver1_min_workers=1\n\
         server1_max_workers=1\nserver2_addr={{b1}}\nserver2_weight=1\n",
        INTERVAL.as_millis(),
        TIMEOUT.as_millis()
    );
    let p = Proxy::start_with_admin(&ini, &[a.addr, b.addr]);
    let mut busy = Client::connect(p.addr);
    busy.send(b"GET /hang HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(wait_until(|| a
        .requests()
        .iter()
        .any(|r| r.target == "/hang")));
    let mut waiting = Client::connect(p.addr);
    waiting.send(b"GET /queued HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(
        wait_until(
            || p.metric("sluice_server_queue_length{group=\"http\",server=\"server1\"") == 1.0
        ),
        "the request waits in a's queue"
    );
    assert_eq!(traffic(&b), 0, "the request went to b before a went down");
    mode.store(HC_HTTP_503, Ordering::SeqCst);
    let r = waiting.read_response(false).expect("an answer");
    assert_eq!((r.status, r.text()), (200, "hello from b".to_string()));
    assert!(!a.requests().iter().any(|r| r.target == "/queued"));
}
