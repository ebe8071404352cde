//! Operations against the real binary: graceful drain on SIGTERM, immediate exit on a
//! second signal, hot reload on SIGHUP (and a bad file kept out), the admin endpoint,
//! and JSON access logs.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use util::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A WebSocket echo backend good enough for drain tests: answers the upgrade, then
/// reads and discards until the peer closes.
fn ws_backend() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
            head.push(b[0]);
        }
        let accept = protocol::ws::accept_key(KEY.as_bytes());
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            String::from_utf8_lossy(&accept)
        );
        s.write_all(resp.as_bytes()).unwrap();
        let mut sink = [0u8; 1024];
        while s.read(&mut sink).unwrap_or(0) > 0 {}
    });
    (addr, t)
}

fn ws_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "101 head");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

#[test]
fn sigterm_drains_in_flight_work_then_exits_zero() {
    let http = Backend::start(|r| {
        if r.target == "/slow" {
            Reply::Delay(Duration::from_millis(700), Box::new(ok("slow done")))
        } else {
            ok("quick")
        }
    });
    let (ws, ws_thread) = ws_backend();
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\ndrain_timeout=6s\n\n[http]\nserver1_addr={}\nmax_fails=0\n\n[websocket]\nserver1={ws}\n\n[log]\nlevel=info\naccess_log=false\n",
        http.addr
    );
    let (mut p, _) = ProxyProcess::start_raw(&ini);
    let mut idle = Client::connect(p.addr);
    assert_eq!(idle.get("/").status, 200);
    let mut busy = Client::connect(p.addr);
    busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut tunnel = ws_client(p.addr);
    assert!(
        wait_until(|| http.count() == 2),
        "the slow request reached the backend"
    );

    let t0 = Instant::now();
    p.signal("TERM");
    // The in-flight request finishes, told that the connection closes.
    let r = busy.read_response(false).expect("in-flight response");
    assert_eq!((r.status, r.text().as_str()), (200, "slow done"));
    assert_eq!(r.header("connection"), Some("close"));
    // The idle keep-alive client is closed, and nobody new gets in.
    assert!(idle.closed(), "idle keep-alive client closed by the drain");
    assert!(
        wait_until(|| TcpStream::connect(p.addr).is_err()),
        "listener closed"
    );
    // The tunnel gets Close 1001 (within the first half of drain_timeout).
    let mut frame = [0u8; 4];
    tunnel.read_exact(&mut frame).expect("a Close frame");
    assert_eq!(frame[0], 0x88, "FIN + Close");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1001);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "tunnel closed within the drain window"
    );
    drop(tunnel);
    assert_eq!(
        p.wait_exit(Duration::from_secs(8)),
        Some(0),
        "exit 0 once drained"
    );
    let log = p.stderr();
    assert!(log.contains("draining"), "{log}");
    let _ = ws_thread.join();
}

#[test]
fn second_signal_exits_at_once() {
    let (ws, _t) = ws_backend();
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\ndrain_timeout=60s\n\n[websocket]\nserver1={ws}\n\n[log]\nlevel=info\naccess_log=false\n"
    );
    let (mut p, _) = ProxyProcess::start_raw(&ini);
    let _tunnel = ws_client(p.addr);
    p.signal("TERM");
    // The first signal was handled (the drain began) and the tunnel holds it open.
    assert!(
        wait_until(|| p.stderr().contains("draining: no new connections")),
        "the first signal starts a drain:\n{}",
        p.stderr()
    );
    assert_eq!(
        p.wait_exit(Duration::from_millis(100)),
        None,
        "still draining the tunnel"
    );
    p.signal("TERM");
    assert!(
        p.wait_exit(Duration::from_secs(3)).is_some(),
        "second signal exits at once"
    );
}

#[test]
fn sighup_applies_a_new_configuration_and_keeps_the_old_one_on_errors() {
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let base = "[frontend]\nhost=127.0.0.1\nport={port}\n\n[log]\nlevel=info\naccess_log=false\n";
    let (p, _) = ProxyProcess::start_raw(&format!("{base}\n[http]\nserver1_addr={}\n", a.addr));
    let path = p.dir.join("sluice.ini");
    let port = p.addr.port();
    let base = base.replace("{port}", &port.to_string());
    assert_eq!(get(p.addr, "/").text(), "hello from a");

    // Add a server and switch to round-robin: both serve.
    let two = format!(
        "{base}\n[http]\nalgorithm=round-robin\nserver1_addr={}\nserver2_addr={}\n",
        a.addr, b.addr
    );
    std::fs::write(&path, two).unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| get(p.addr, "/").text() == "hello from b"),
        "the added server receives traffic:\n{}",
        p.stderr()
    );
    let seen: Vec<String> = (0..4).map(|_| get(p.addr, "/").text()).collect();
    assert!(
        seen.contains(&"hello from a".to_string()) && seen.contains(&"hello from b".to_string())
    );

    // An invalid file is refused and the running configuration stays.
    std::fs::write(
        &path,
        format!("{base}\n[http]\nserver1_addr=\nbogus_key=1\n"),
    )
    .unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| p.stderr().contains("reload failed")),
        "{}",
        p.stderr()
    );
    let seen: Vec<String> = (0..4).map(|_| get(p.addr, "/").text()).collect();
    assert!(
        seen.contains(&"hello from a".to_string()) && seen.contains(&"hello from b".to_string())
    );

    // Removing server1: no new work for it.
    std::fs::write(&path, format!("{base}\n[http]\nserver2_addr={}\n", b.addr)).unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| p.stderr().contains("removed")),
        "{}",
        p.stderr()
    );
    let before = a.count();
    for _ in 0..6 {
        assert_eq!(get(p.addr, "/").text(), "hello from b");
    }
    assert_eq!(a.count(), before, "a removed server gets no new requests");
}

#[test]
fn admin_endpoint_serves_metrics_status_json_and_the_page() {
    let a = Backend::hello("a");
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n[http]\nserver1_addr={}\n\n[admin]\nhost=127.0.0.1\nport={{admin}}\n\n[log]\nlevel=warn\naccess_log=false\n",
        a.addr
    );
    let (p, admin) = ProxyProcess::start_raw(&ini);
    for _ in 0..5 {
        assert_eq!(get(p.addr, "/x").status, 200);
    }
    let m = get(admin, "/metrics");
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain"));
    let text = m.text();
    let server = format!("group=\"http\",server=\"server1\",addr=\"{}\"", a.addr);
    for want in [
        format!("sluice_server_up{{{server}}} 1"),
        format!("sluice_server_requests_total{{{server}}} 5"),
        format!("sluice_server_responses_total{{{server},class=\"2xx\"}} 5"),
        format!("sluice_server_pool_idle_connections{{{server}}} 1"),
        "sluice_request_duration_seconds_bucket{group=\"http\",le=\"+Inf\"} 5".to_string(),
        "sluice_request_duration_seconds_count{group=\"http\"} 5".to_string(),
        "# TYPE sluice_requests_total counter".to_string(),
        // 5 requests (the harness waits for the listening socket, never connects);
        // admin connections do not count.
        "sluice_accepted_connections_total 5".to_string(),
    ] {
        assert!(text.contains(&want), "metrics lack {want}:\n{text}");
    }
    let j = get(admin, "/status.json");
    assert_eq!(j.header("content-type"), Some("application/json"));
    let body = j.text();
    assert!(body.starts_with('{') && body.ends_with('}'), "{body}");
    assert!(
        body.contains(&format!("\"addr\":\"{}\",\"health\":\"up\"", a.addr)),
        "{body}"
    );
    assert!(body.contains("\"requests\":5"), "{body}");
    let page = get(admin, "/status");
    assert!(page.text().contains("<title>sluice status</title>"));
    assert_eq!(get(admin, "/nope").status, 404);
}

#[test]
fn json_access_log_lines() {
    let a = Backend::hello("a");
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n[http]\nserver1_addr={}\n\n[log]\nlevel=info\naccess_log=true\naccess_log_format=json\n",
        a.addr
    );
    let (p, _) = ProxyProcess::start_raw(&ini);
    assert_eq!(get(p.addr, "/logged?q=1").status, 200);
    let want =
        "\"client\":\"127.0.0.1\",\"method\":\"GET\",\"path\":\"/logged?q=1\",\"status\":200,";
    assert!(wait_until(|| p.stderr().contains(want)), "{}", p.stderr());
}

/// The value of one Prometheus sample line (`name{labels} value`), if present. A
/// series listed twice (a server replaced rather than kept) fails the test.
#[track_caller]
fn metric(text: &str, series: &str) -> Option<u64> {
    let values: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert!(
        values.len() <= 1,
        "{series} listed {} times:\n{text}",
        values.len()
    );
    values.first().copied()
}

/// The labels sluice gives a server of the `http` group.
fn http_server(name: &str, addr: std::net::SocketAddr) -> String {
    format!("group=\"http\",server=\"{name}\",addr=\"{addr}\"")
}

/// A WebSocket backend for many tunnels: answers every upgrade with 101 (clients use
/// `KEY`), then reads and discards until the peer closes or the backend is dropped.
/// The 101 answering `KEY`.
fn switching_protocols() -> Vec<u8> {
    let accept = protocol::ws::accept_key(KEY.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        String::from_utf8_lossy(&accept)
    )
    .into_bytes()
}

fn ws_backend_many() -> RawBackend {
    RawBackend::start(|mut s, _, stop| {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if read_head_raw(&mut s, stop).is_none() {
            return;
        }
        if s.write_all(&switching_protocols()).is_err() {
            return;
        }
        discard_until_closed(&mut s, stop);
    })
}

#[test]
fn drain_spreads_tunnel_closes_over_the_first_half_of_drain_timeout() {
    // drain_timeout 6 s: every tunnel must get its 1001 within the first 3 s, spread
    // over that window rather than all at once (30 tunnels, uniform offsets: the
    // spread falls under half the window with probability ~1e-7).
    const TUNNELS: usize = 30;
    let window = Duration::from_secs(3);
    let ws = ws_backend_many();
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\ndrain_timeout=6s\n\n[websocket]\nserver1={}\n\n[log]\nlevel=info\naccess_log=false\n",
        ws.addr
    );
    let (mut p, _) = ProxyProcess::start_raw(&ini);
    let tunnels: Vec<TcpStream> = (0..TUNNELS).map(|_| ws_client(p.addr)).collect();
    assert!(
        wait_until(|| ws.accepted() == TUNNELS),
        "all tunnels reached the backend"
    );
    let t0 = Instant::now();
    p.signal("TERM");
    let readers: Vec<_> = tunnels
        .into_iter()
        .map(|mut t| {
            std::thread::spawn(move || {
                let mut frame = [0u8; 4];
                t.read_exact(&mut frame).expect("a Close frame");
                let at = t0.elapsed();
                assert_eq!(frame[0], 0x88, "FIN + Close");
                assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1001);
                at
            })
        })
        .collect();
    let mut at: Vec<Duration> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    at.sort();
    let (first, last) = (at[0], at[TUNNELS - 1]);
    // Room for a loaded machine, still well below a spread over the whole 6 s.
    assert!(
        last < window + Duration::from_millis(1500),
        "a tunnel was closed after the first half of drain_timeout: {at:?}"
    );
    assert!(
        last - first >= window / 2,
        "tunnel closes not spread over the window (first {first:?}, last {last:?}): {at:?}"
    );
    assert_eq!(
        p.wait_exit(Duration::from_secs(5)),
        Some(0),
        "exit 0 once the tunnels are gone"
    );
}

#[test]
fn reload_keeps_a_kept_servers_pool_and_health_state() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let a = Backend::hello("a");
    // b serves requests, but its health check is slower than health_check_timeout
    // until `b_healthy` is set: it goes down, and a server that lost its health
    // state on reload would be up again for that long (it starts up).
    let b_healthy = Arc::new(AtomicBool::new(false));
    let flag = b_healthy.clone();
    let b = Backend::start(move |r| {
        if r.target != "/healthCheck" {
            ok("hello from b")
        } else if flag.load(Ordering::SeqCst) {
            ok("{\"status\":\"200\"}")
        } else {
            Reply::Delay(Duration::from_millis(1500), Box::new(ok("late")))
        }
    });
    let config = |queue_timeout: &str| {
        format!(
            "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n\
             [http]\nalgorithm=round-robin\nenable_health_check=true\nhealth_check_interval=700ms\n\
             health_check_timeout=600ms\nrise=2\nfall=1\nmax_fails=0\nqueue_timeout={queue_timeout}\n\
             server1_addr={}\nserver1_min_workers=1\nserver1_max_workers=1\nserver2_addr={}\n\n\
             [admin]\nhost=127.0.0.1\nport={{admin}}\n\n[log]\nlevel=info\naccess_log=false\n",
            a.addr, b.addr
        )
    };
    let (p, admin) = ProxyProcess::start_raw(&config("5s"));
    let (s1, s2) = (
        http_server("server1", a.addr),
        http_server("server2", b.addr),
    );
    let metrics = || get(admin, "/metrics").text();
    assert!(
        wait_until(|| metric(&metrics(), &format!("sluice_server_up{{{s2}}}")) == Some(0)),
        "server2 goes down: {}",
        p.stderr()
    );
    for _ in 0..4 {
        assert_eq!(get(p.addr, "/").text(), "hello from a");
    }
    let before = metrics();
    let fails_before = metric(
        &before,
        &format!("sluice_server_health_checks_total{{{s2},result=\"fail\"}}"),
    )
    .unwrap();
    assert_eq!(
        metric(&before, &format!("sluice_server_requests_total{{{s1}}}")),
        Some(4)
    );

    // Reload with an unrelated change (the group's queue_timeout).
    let path = p.dir.join("sluice.ini");
    let port = p.addr.port().to_string();
    let admin_port = admin.port().to_string();
    let text = config("4s")
        .replace("{port}", &port)
        .replace("{admin}", &admin_port);
    std::fs::write(&path, text).unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| p.stderr().contains("configuration reloaded")),
        "{}",
        p.stderr()
    );
    // One worker: no thread names in the log.
    assert!(
        p.stderr().contains("Z [INFO] configuration reloaded"),
        "{}",
        p.stderr()
    );
    // At once after the reload (a fresh server2 would be up for 600 ms): still down,
    // with its counters, and server1 kept its request count.
    let after = metrics();
    assert_eq!(
        metric(&after, &format!("sluice_server_up{{{s2}}}")),
        Some(0),
        "a down server stays down across a reload:\n{after}"
    );
    assert_eq!(
        metric(
            &after,
            &format!("sluice_server_health_transitions_total{{{s2}}}")
        ),
        Some(1),
        "server2's health history survives:\n{after}"
    );
    assert!(
        metric(
            &after,
            &format!("sluice_server_health_checks_total{{{s2},result=\"fail\"}}")
        )
        .unwrap()
            >= fails_before,
        "health check counters kept:\n{after}"
    );
    assert_eq!(
        metric(&after, &format!("sluice_server_requests_total{{{s1}}}")),
        Some(4),
        "server1's counters kept:\n{after}"
    );
    // Round-robin over two usable servers would send every other request to b.
    for _ in 0..6 {
        assert_eq!(get(p.addr, "/").text(), "hello from a");
    }
    assert!(
        b.requests().iter().all(|r| r.target == "/healthCheck"),
        "no traffic reaches a down server"
    );
    // Every request to a, before and after the reload, came over one pooled
    // connection (max_workers = 1): the pool was kept, not replaced.
    let conns: Vec<usize> = a
        .requests()
        .iter()
        .filter(|r| r.target == "/")
        .map(|r| r.conn)
        .collect();
    assert_eq!(conns.len(), 10);
    assert!(
        conns.iter().all(|&c| c == conns[0]),
        "requests after the reload came over a new backend connection: {conns:?}"
    );
    // b comes back only through `rise` passing probes.
    b_healthy.store(true, Ordering::SeqCst);
    assert!(
        wait_until(|| metric(&metrics(), &format!("sluice_server_up{{{s2}}}")) == Some(1)),
        "server2 recovers: {}",
        p.stderr()
    );
    let up = metrics();
    assert!(
        metric(
            &up,
            &format!("sluice_server_health_checks_total{{{s2},result=\"ok\"}}")
        )
        .unwrap()
            >= 2,
        "up after rise = 2 passing probes:\n{up}"
    );
    assert!(
        wait_until(|| get(p.addr, "/").text() == "hello from b"),
        "traffic reaches server2 again"
    );
}

#[test]
fn a_stuck_request_ends_the_drain_at_drain_timeout_with_exit_zero() {
    let http = Backend::start(|r| {
        if r.target == "/stuck" {
            Reply::Hang
        } else {
            ok("quick")
        }
    });
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\ndrain_timeout=2s\n\n[http]\nserver1_addr={}\nmax_fails=0\n\n[log]\nlevel=info\naccess_log=false\n",
        http.addr
    );
    let (mut p, _) = ProxyProcess::start_raw(&ini);
    let mut stuck = Client::connect(p.addr);
    stuck.send(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        wait_until(|| http.count() == 1),
        "the request reached the backend"
    );
    let t0 = Instant::now();
    p.signal("TERM");
    assert!(
        wait_until(|| p.stderr().contains("draining")),
        "{}",
        p.stderr()
    );
    // The response never comes (response_timeout is 60 s): the drain gives up at
    // drain_timeout, and the process exits 0 as the README says.
    let code = p.wait_exit(WAIT);
    let took = t0.elapsed();
    assert_eq!(code, Some(0), "exit status when drain_timeout runs out");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM with drain_timeout 2 s"
    );
    let log = p.stderr();
    assert!(
        log.contains("drain timeout: exiting with 1 clients still open"),
        "{log}"
    );
    assert!(stuck.read_response(false).is_none(), "no response came");
}

#[test]
fn reload_that_moves_the_listeners_warns_and_keeps_the_old_addresses() {
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let ini = "[frontend]\nhost=127.0.0.1\nport={port}\n\n[http]\nserver1_addr={server}\n\n[admin]\nhost=127.0.0.1\nport={admin}\n\n[log]\nlevel=info\naccess_log=false\n";
    let (p, admin) = ProxyProcess::start_raw(&ini.replace("{server}", &a.addr.to_string()));
    assert_eq!(get(p.addr, "/").text(), "hello from a");
    let free = || SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (new_addr, new_admin) = (free(), free());
    // New listen and admin ports, and the server switched to b.
    let text = ini
        .replace("{port}", &new_addr.port().to_string())
        .replace("{admin}", &new_admin.port().to_string())
        .replace("{server}", &b.addr.to_string());
    std::fs::write(p.dir.join("sluice.ini"), text).unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| p.stderr().contains("configuration reloaded")),
        "{}",
        p.stderr()
    );
    let log = p.stderr();
    assert!(
        log.contains(&format!(
            "[frontend] listen address changed ({} -> {new_addr}): restart sluice to move the listener",
            p.addr
        )),
        "{log}"
    );
    assert!(
        log.contains("[admin] changed: restart sluice to move the admin listener"),
        "{log}"
    );
    // The rest of the file applied; the listeners stay where they were.
    assert_eq!(get(p.addr, "/").text(), "hello from b");
    assert_eq!(get(admin, "/metrics").status, 200);
    assert!(
        TcpStream::connect(new_addr).is_err(),
        "nothing listens on the new address"
    );
    assert!(
        TcpStream::connect(new_admin).is_err(),
        "nothing listens on the new admin address"
    );
}

/// Runs the binary with these arguments (bounded): exit code, stdout, stderr.
fn run_sluice(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice");
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sluice {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), out, err)
}

#[test]
fn check_prints_ok_or_names_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("sluice-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.ini");
    // --check validates and exits; it does not serve (a bounded wait below).
    let port = free_port();
    std::fs::write(
        &good,
        format!("[frontend]\nhost=127.0.0.1\nport={port}\n\n[http]\nserver1_addr=127.0.0.1:2\n"),
    )
    .unwrap();
    let (code, out, err) = run_sluice(&["--check".as_ref(), "--config".as_ref(), good.as_ref()]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (Some(0), "configuration OK\n", "")
    );

    let bad = dir.join("bad.ini");
    std::fs::write(
        &bad,
        "[frontend]\nhost=127.0.0.1\nport=1\n\n[http]\nserver1_addr=127.0.0.1:2\nserver1_max_workers=many\n",
    )
    .unwrap();
    let (code, out, err) = run_sluice(&["--check".as_ref(), "--config".as_ref(), bad.as_ref()]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(out, "", "nothing on stdout");
    assert_eq!(
        err,
        format!(
            "{}:7: [http] server1_max_workers: expected a non-negative integer, got \"many\"\n",
            bad.display()
        )
    );

    let unknown = dir.join("unknown.ini");
    std::fs::write(
        &unknown,
        "[frontend]\nport=1\n\n[http]\nserver1_addr=127.0.0.1:2\nbogus_key=1\n",
    )
    .unwrap();
    let (code, _, err) = run_sluice(&["--check".as_ref(), "--config".as_ref(), unknown.as_ref()]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        format!("{}:6: [http] bogus_key: unknown key\n", unknown.display())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn workers_2_all_serve_reload_and_drain() {
    const CLIENTS: usize = 16;
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let ini = "[frontend]\nhost=127.0.0.1\nport={port}\nworkers=2\n\n[http]\nserver1_addr={server}\nserver1_max_workers=1\nmax_fails=0\n\n[admin]\nhost=127.0.0.1\nport={admin}\n\n[log]\nlevel=info\naccess_log=false\n";
    // One pooled connection per reactor.
    let (mut p, admin) = ProxyProcess::start_raw(&ini.replace("{server}", &a.addr.to_string()));
    // With [admin], several workers start (the first one serves the admin endpoint).
    assert!(
        get(admin, "/metrics").text().contains("sluice_server_up{"),
        "the admin endpoint answers with workers = 2"
    );
    let count = |what: &str| p.stderr().matches(what).count();
    // Both reactors serve: the kernel spreads new connections over them, and each
    // has its own single connection to a (P(all 16 on one) = 2^-15).
    for _ in 0..CLIENTS {
        assert_eq!(get(p.addr, "/").text(), "hello from a");
    }
    let mut conns: Vec<usize> = a
        .requests()
        .iter()
        .filter(|r| r.target == "/")
        .map(|r| r.conn)
        .collect();
    conns.sort();
    conns.dedup();
    assert_eq!(conns.len(), 2, "requests came from two reactors' pools");

    // SIGHUP reaches both: every reactor moves to b.
    let text = ini
        .replace("{port}", &p.addr.port().to_string())
        .replace("{admin}", &admin.port().to_string())
        .replace("{server}", &b.addr.to_string());
    std::fs::write(p.dir.join("sluice.ini"), text).unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| count("configuration reloaded") == 2),
        "every worker reloads:\n{}",
        p.stderr()
    );
    // Each worker's lines say whose they are (the first reactor runs on the main thread).
    assert_eq!(
        (
            count("(main) configuration reloaded"),
            count("(sluice-worker-1) configuration reloaded")
        ),
        (1, 1),
        "{}",
        p.stderr()
    );
    for _ in 0..CLIENTS {
        assert_eq!(get(p.addr, "/").text(), "hello from b");
    }

    // SIGTERM reaches both: idle keep-alive clients on either reactor are closed,
    // both listeners close, the process exits 0. (In-flight work on the second
    // reactor: workers_2_sigterm_lets_the_second_worker_finish_its_requests.)
    let mut idle: Vec<Client> = (0..CLIENTS)
        .map(|_| {
            let mut c = Client::connect(p.addr);
            assert_eq!(c.get("/").text(), "hello from b");
            c
        })
        .collect();
    p.signal("TERM");
    assert!(
        wait_until(|| count("draining: no new connections") == 2),
        "every worker drains:\n{}",
        p.stderr()
    );
    assert!(
        wait_until(|| TcpStream::connect(p.addr).is_err()),
        "the listeners close after SIGTERM"
    );
    // One refused connect can be a race with a closing listener; none may get in.
    let accepted = (0..20)
        .filter(|_| TcpStream::connect(p.addr).is_ok())
        .count();
    assert_eq!(accepted, 0, "every worker closed its listener");
    for c in &mut idle {
        assert!(c.closed(), "idle keep-alive client closed by the drain");
    }
    assert_eq!(
        p.wait_exit(WAIT),
        Some(0),
        "exit 0 once every worker drained"
    );
}

/// Voluntary context switches of one thread of a process (Linux).
fn thread_switches(pid: u32, tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn workers_2_sigterm_lets_the_second_worker_finish_its_requests() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let gate = Arc::new(AtomicBool::new(false));
    let open = gate.clone();
    let http = Backend::start(move |r| {
        if r.target == "/slow" {
            // Bounded, but longer than any wait of the test (a cut drain must show).
            let end = Instant::now() + 3 * WAIT;
            while !open.load(Ordering::SeqCst) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(5));
            }
            ok("slow done")
        } else {
            ok("quick")
        }
    });
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\nworkers=2\ndrain_timeout=20s\n\n[http]\nserver1_addr={}\nmax_fails=0\n\n[log]\nlevel=info\naccess_log=false\n",
        http.addr
    );
    let (mut p, _) = ProxyProcess::start_raw(&ini);
    // The first reactor runs on the main thread (tid = pid) and receives the
    // signals; the second on its own thread. Find a client the second one serves by
    // the voluntary context switches (epoll waits) of each thread while it is used.
    let pid = p.pid();
    let tasks = || -> Vec<u32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .collect()
    };
    assert!(
        wait_until(|| p.stderr().contains("2 workers") && tasks().len() == 2),
        "the second worker runs"
    );
    let worker = tasks().into_iter().find(|&tid| tid != pid).unwrap();
    let mut on_worker = None;
    let mut others = Vec::new();
    for _ in 0..16 {
        let mut c = Client::connect(p.addr);
        let (w0, m0) = (thread_switches(pid, worker), thread_switches(pid, pid));
        for _ in 0..20 {
            assert_eq!(c.get("/").text(), "quick");
        }
        let (w, m) = (
            thread_switches(pid, worker) - w0,
            thread_switches(pid, pid) - m0,
        );
        // The serving thread blocks between some of the requests (not all: the next
        // one may already be there); the idle one at most once (1 s poll timeout).
        if w >= 5 && m <= 1 && on_worker.is_none() {
            on_worker = Some(c);
        } else {
            others.push(c);
        }
    }
    let mut slow = on_worker.expect("one of 16 clients is served by the second worker");
    slow.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        wait_until(|| http.requests().iter().any(|r| r.target == "/slow")),
        "the slow request reached the backend"
    );
    // The first reactor has only idle clients: it is drained at once. The second
    // must still finish its request.
    p.signal("TERM");
    assert!(
        wait_until(|| p.stderr().matches("draining: no new connections").count() == 2),
        "every worker drains:\n{}",
        p.stderr()
    );
    for c in &mut others {
        assert!(c.closed(), "idle keep-alive client closed by the drain");
    }
    gate.store(true, Ordering::SeqCst);
    let r = slow
        .read_response(false)
        .expect("the second worker's in-flight response");
    assert_eq!((r.status, r.text().as_str()), (200, "slow done"));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(
        p.wait_exit(WAIT),
        Some(0),
        "exit 0 once every worker drained"
    );
}

/// An upgrade whose 101 arrives after the drain began becomes a tunnel the drain must
/// still close with 1001 (not leave open until `drain_timeout` ends it with a FIN).
#[test]
fn an_upgrade_answered_during_a_drain_is_closed_with_1001() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let release = Arc::new(AtomicBool::new(false));
    let gate = release.clone();
    let ws = RawBackend::start(move |mut s, _, stop| {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if read_head_raw(&mut s, stop).is_none() {
            return;
        }
        if !wait_until(|| gate.load(Ordering::SeqCst)) {
            return;
        }
        if s.write_all(&switching_protocols()).is_err() {
            return;
        }
        discard_until_closed(&mut s, stop);
    });
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\ndrain_timeout=20s\n\n[websocket]\nserver1={}\n\n[log]\nlevel=info\naccess_log=false\n",
        ws.addr
    );
    let (mut p, _) = ProxyProcess::start_raw(&ini);
    let mut t = TcpStream::connect(p.addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        t,
        "GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    )
    .unwrap();
    assert!(
        wait_until(|| ws.accepted() == 1),
        "the upgrade reached the backend"
    );
    p.signal("TERM");
    assert!(
        wait_until(|| p.stderr().contains("draining")),
        "{}",
        p.stderr()
    );
    release.store(true, Ordering::SeqCst);
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(t.read(&mut b).unwrap(), 1, "101 head");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut frame = [0u8; 4];
    t.read_exact(&mut frame)
        .expect("a Close frame, not the end of the stream at drain_timeout");
    assert_eq!(frame[0], 0x88, "FIN + Close");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1001);
    drop(t);
    assert_eq!(
        p.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        p.stderr()
    );
}
