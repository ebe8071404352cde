//! DNS discovery end to end (issue 15 §1): a scripted DNS server (tests/dnsutil) on
//! 127.0.0.1, sluice resolving in its loop, backends on 127.0.0.1. Different backends
//! differ by port, so address changes are SRV changes (target port); `resolve = all`
//! uses documentation addresses (192.0.2.0/24) with no pool and no probes, and is
//! checked on the server list only, so nothing talks to anything but 127.0.0.1.
//! Names end with a dot so the machine's resolv.conf search list does not apply.

mod dnsutil;
mod util;
mod wsutil;

use dnsutil::{a, aaaa, srv, DnsServer, Fault};
use protocol::dns::RecordType;
use std::time::{Duration, Instant};
use util::{get, ok, wait_until, Backend, Proxy, ProxyProcess, Reply};

const LOCAL: [u8; 4] = [127, 0, 0, 1];

fn resolver(dns: &DnsServer, extra: &str) -> String {
    format!(
        "\n[resolver]\nnameservers = {}\ntimeout = 500ms\nattempts = 2\n{extra}\n",
        dns.addr
    )
}

fn body(r: &util::Response) -> String {
    r.text()
}

/// An SRV change (new target port) moves traffic within TTL + one interval, and no
/// request fails meanwhile.
#[test]
fn address_change_moves_traffic_without_errors() {
    let (b1, b2) = (Backend::hello("one"), Backend::hello("two"));
    let dns = DnsServer::start();
    dns.set("b.test", 1, vec![a(LOCAL)]);
    dns.set(
        "_http._tcp.web.test",
        1,
        vec![srv(0, 1, b1.addr.port(), "b.test")],
    );
    let ini = format!(
        "[http]\nserver1_srv = _http._tcp.web.test.\n{}",
        resolver(&dns, "")
    );
    let proxy = Proxy::start(&ini, &[]);
    assert_eq!(get(proxy.addr, "/").status, 200);
    dns.set(
        "_http._tcp.web.test",
        1,
        vec![srv(0, 1, b2.addr.port(), "b.test")],
    );
    let changed = Instant::now();
    let mut moved = None;
    while changed.elapsed() < Duration::from_secs(5) {
        let r = get(proxy.addr, "/");
        assert_eq!(r.status, 200, "no client error during the change");
        if body(&r).contains("two") {
            moved = Some(changed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let moved = moved.expect("traffic moved to the new address");
    // TTL 1 s (re-query) + one try + one turn.
    assert!(moved < Duration::from_millis(2500), "{moved:?}");
    for _ in 0..5 {
        assert!(body(&get(proxy.addr, "/")).contains("two"));
    }
}

/// The removed address drains: a request in flight there finishes with 200.
#[test]
fn removed_address_drains_in_flight_requests() {
    let slow = Backend::start(|_| Reply::Delay(Duration::from_millis(1500), Box::new(ok("slow"))));
    let fast = Backend::hello("fast");
    let dns = DnsServer::start();
    dns.set("b.test", 1, vec![a(LOCAL)]);
    dns.set(
        "_http._tcp.web.test",
        1,
        vec![srv(0, 1, slow.addr.port(), "b.test")],
    );
    let ini = format!(
        "[http]\nserver1_srv = _http._tcp.web.test.\n{}",
        resolver(&dns, "")
    );
    let proxy = Proxy::start_with_admin(&ini, &[]);
    let addr = proxy.addr;
    let in_flight = std::thread::spawn(move || get(addr, "/slow"));
    assert!(wait_until(|| slow.count() == 1), "the slow request arrived");
    dns.set(
        "_http._tcp.web.test",
        1,
        vec![srv(0, 1, fast.addr.port(), "b.test")],
    );
    assert!(wait_until(
        || proxy.metric("sluice_dns_changes_total") >= 3.0
    ));
    let r = in_flight.join().unwrap();
    assert_eq!((r.status, body(&r).as_str()), (200, "slow"));
    assert!(body(&get(proxy.addr, "/")).contains("fast"));
    assert_eq!(
        slow.count(),
        1,
        "no new request went to the removed address"
    );
}

/// Timeouts and SERVFAIL keep the last good addresses; the failure is counted once.
#[test]
fn resolver_down_keeps_last_addresses() {
    let b = Backend::hello("one");
    let dns = DnsServer::start();
    dns.set("web.test", 1, vec![a(LOCAL)]);
    let ini = format!(
        "[http]\nserver1 = web.test.:{}\n{}",
        b.addr.port(),
        resolver(&dns, "")
    );
    let proxy = Proxy::start_with_admin(&ini, &[]);
    assert_eq!(get(proxy.addr, "/").status, 200);
    dns.fault(Fault::Drop);
    let before = dns.count("web.test");
    assert!(
        wait_until(|| dns.count("web.test") >= before + 3),
        "retried every min_ttl"
    );
    assert_eq!(get(proxy.addr, "/").status, 200);
    dns.fault(Fault::Servfail);
    let before = dns.count("web.test");
    assert!(wait_until(|| dns.count("web.test") >= before + 2));
    assert_eq!(get(proxy.addr, "/").status, 200);
    assert_eq!(
        proxy.metric("sluice_dns_failures_total"),
        1.0,
        "one streak, logged once"
    );
    assert!(proxy
        .metrics()
        .contains("server=\"server1\",addr=\"127.0.0.1:"));
}

fn server_names(proxy: &Proxy) -> Vec<String> {
    let m = proxy.metrics();
    let mut names: Vec<String> = m
        .lines()
        .filter(|l| l.starts_with("sluice_server_up{group=\"http\""))
        .filter_map(|l| {
            l.split("server=\"")
                .nth(1)?
                .split('"')
                .next()
                .map(String::from)
        })
        .collect();
    names.sort();
    names
}

/// `resolve = all`: one server per address, added and removed as the set changes.
#[test]
fn resolve_all_grows_and_shrinks() {
    let dns = DnsServer::start();
    dns.set("web.test", 1, vec![a([192, 0, 2, 1])]);
    let ini = format!(
        "[http]\nserver1 = web.test.:9\nserver1_resolve = all\nserver1_min_workers = 0\n\
         server2 = 127.0.0.1:9\nserver2_min_workers = 0\n{}",
        resolver(&dns, "")
    );
    let proxy = Proxy::start_with_admin(&ini, &[]);
    let live = |p: &Proxy| -> Vec<String> {
        let json = get(p.admin.unwrap(), "/status.json").text();
        let mut v: Vec<String> = json
            .split("{\"name\":\"")
            .skip(1)
            .filter_map(|s| s.split('"').next().map(String::from))
            .filter(|n| n.starts_with("server"))
            .collect();
        v.sort();
        v
    };
    assert!(
        wait_until(|| live(&proxy) == ["server1#192.0.2.1", "server2"]),
        "{:?}",
        live(&proxy)
    );
    dns.set(
        "web.test",
        1,
        vec![a([192, 0, 2, 3]), a([192, 0, 2, 1]), a([192, 0, 2, 2])],
    );
    let three = [
        "server1#192.0.2.1",
        "server1#192.0.2.2",
        "server1#192.0.2.3",
        "server2",
    ];
    assert!(wait_until(|| live(&proxy) == three), "{:?}", live(&proxy));
    dns.set("web.test", 1, vec![a([192, 0, 2, 2])]);
    assert!(
        wait_until(|| live(&proxy) == ["server1#192.0.2.2", "server2"]),
        "{:?}",
        live(&proxy)
    );
    assert!(server_names(&proxy).contains(&"server1#192.0.2.2".to_string()));
}

/// SRV weights become server weights (smooth weighted round-robin: exact shares).
#[test]
fn srv_weights_are_honoured() {
    let (b1, b2) = (Backend::hello("one"), Backend::hello("two"));
    let dns = DnsServer::start();
    dns.set("b.test", 60, vec![a(LOCAL)]);
    let records = vec![
        srv(0, 1, b1.addr.port(), "b.test"),
        srv(0, 3, b2.addr.port(), "b.test"),
        srv(1, 50, 9, "b.test"),
    ];
    dns.set("_http._tcp.web.test", 60, records);
    let ini = format!(
        "[http]\nalgorithm = weighted-round-robin\nserver1_srv = _http._tcp.web.test.\n{}",
        resolver(&dns, "")
    );
    let proxy = Proxy::start(&ini, &[]);
    for _ in 0..40 {
        assert_eq!(get(proxy.addr, "/").status, 200);
    }
    assert_eq!(
        (b1.count(), b2.count()),
        (10, 30),
        "weights 1:3, priority 1 unused"
    );
}

/// A truncated UDP answer is asked again over TCP.
#[test]
fn truncated_answer_falls_back_to_tcp() {
    let b = Backend::hello("one");
    let dns = DnsServer::start();
    dns.set("web.test", 60, vec![a(LOCAL)]);
    dns.fault(Fault::Truncate);
    let ini = format!(
        "[http]\nserver1 = web.test.:{}\n{}",
        b.addr.port(),
        resolver(&dns, "")
    );
    let proxy = Proxy::start(&ini, &[]);
    assert_eq!(get(proxy.addr, "/").status, 200);
    let seen = dns.seen();
    assert_eq!(
        seen.iter().map(|s| s.tcp).collect::<Vec<_>>(),
        [false, true],
        "{seen:?}"
    );
}

/// Answers with a wrong ID, or from another port, are ignored: their decoy address
/// gets no traffic.
#[test]
fn spoofed_answers_are_ignored() {
    let (real, decoy) = (Backend::hello("real"), Backend::hello("decoy"));
    let dns = DnsServer::start();
    dns.set("b.test", 60, vec![a(LOCAL)]);
    dns.set(
        "_http._tcp.web.test",
        60,
        vec![srv(0, 1, real.addr.port(), "b.test")],
    );
    dns.decoy(vec![srv(0, 1, decoy.addr.port(), "b.test")]);
    dns.fault(Fault::Spoof);
    let ini = format!(
        "[http]\nserver1_srv = _http._tcp.web.test.\n{}",
        resolver(&dns, "")
    );
    let proxy = Proxy::start(&ini, &[]);
    for _ in 0..5 {
        assert!(body(&get(proxy.addr, "/")).contains("real"));
    }
    assert_eq!(decoy.count(), 0);
}

/// `init = optional`: sluice starts and answers 503 until the name resolves.
#[test]
fn init_optional_serves_503_until_resolved() {
    let b = Backend::hello("one");
    let dns = DnsServer::start();
    let ini = format!(
        "[http]\nserver1 = web.test.:{}\n{}",
        b.addr.port(),
        resolver(&dns, "init = optional")
    );
    let proxy = Proxy::start(&ini, &[]);
    assert_eq!(get(proxy.addr, "/").status, 503);
    dns.set("web.test", 60, vec![a(LOCAL)]);
    assert!(
        wait_until(|| get(proxy.addr, "/").status == 200),
        "retried every min_ttl"
    );
}

/// `init = required` (default): a name that does not resolve stops the start, naming
/// the key.
#[test]
fn init_required_fails_naming_the_key() {
    let dns = DnsServer::start();
    let text = format!(
        "[frontend]\nport = 0\n[http]\nserver1_addr = nowhere.test.:80\n{}[log]\nlevel=off\n",
        resolver(&dns, "")
    );
    let cfg = sluice::config::parse(&text, "t.ini", &sluice::config::resolve_system).unwrap();
    let mut reactor = sluice::Reactor::with_seed(cfg, 1).unwrap();
    let started = Instant::now();
    let e = reactor.run().expect_err("start fails");
    let msg = e.to_string();
    assert!(
        msg.contains("[http] server1_addr") && msg.contains("nowhere.test"),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// With `workers = 2` a name that does not resolve stops the start once: the error is
/// the resolving worker's, logged once, and the process exits 1.
#[test]
fn init_required_with_workers_fails_once() {
    let dns = DnsServer::start();
    let dir = std::env::temp_dir().join(format!("sluice-dns-workers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ini = dir.join("sluice.ini");
    let text = format!(
        "[frontend]\nhost=127.0.0.1\nport=0\nworkers=2\n[http]\nserver1_addr = nowhere.test.:80\n{}[log]\nlevel=info\n",
        resolver(&dns, "")
    );
    std::fs::write(&ini, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(&ini)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_until(|| matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(exited, "exits:\n{log}");
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert_eq!(
        log.matches("cannot resolve nowhere.test.").count(),
        1,
        "{log}"
    );
}

/// One query per name per TTL, however many servers use the name.
#[test]
fn one_query_per_name_per_ttl() {
    let b = Backend::hello("one");
    let dns = DnsServer::start();
    dns.set("web.test", 1, vec![a(LOCAL)]);
    let p = b.addr.port();
    let ini = format!(
        "[http]\nserver1 = web.test.:{p}\nserver2 = web.test.:{p}\n{}",
        resolver(&dns, "")
    );
    let proxy = Proxy::start(&ini, &[]);
    let started = Instant::now();
    assert!(wait_until(|| dns.count("web.test") >= 3));
    let elapsed = started.elapsed();
    assert_eq!(get(proxy.addr, "/").status, 200);
    // 3 queries: at 0, ~1 s and ~2 s.
    assert!(elapsed >= Duration::from_millis(1800), "{elapsed:?}");
    let n = dns.count("web.test");
    assert!(n <= 4, "{n} queries in {:?}", started.elapsed());
}

/// With `workers = 2` the first worker resolves for both: each name is still queried
/// once per TTL, and both workers follow an address change (every new connection,
/// whichever worker the kernel gives it to, reaches the new address).
#[test]
fn workers_share_one_resolver() {
    const CONNECTIONS: usize = 16;
    let (b1, b2) = (Backend::hello("one"), Backend::hello("two"));
    let dns = DnsServer::start();
    dns.set("b.test", 1, vec![a(LOCAL)]);
    let srv_name = "_http._tcp.web.test";
    dns.set(srv_name, 1, vec![srv(0, 1, b1.addr.port(), "b.test")]);
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\nworkers=2\n\n[http]\nserver1_srv = {srv_name}.\n{}\n[log]\nlevel=info\naccess_log=false\n",
        resolver(&dns, "")
    );
    let started = Instant::now();
    let (proxy, _) = ProxyProcess::start_raw(&ini);
    // Each worker serves (P(all 16 connections on one worker) = 2^-15), from the start.
    for _ in 0..CONNECTIONS {
        let r = get(proxy.addr, "/");
        assert_eq!((r.status, body(&r).contains("one")), (200, true));
    }
    assert!(wait_until(|| dns.count(srv_name) >= 3));
    let elapsed = started.elapsed();
    // 3 queries of each name, at 0, ~1 s and ~2 s: one resolver, not one per worker.
    assert!(elapsed >= Duration::from_millis(1800), "{elapsed:?}");
    let (n, targets) = (dns.count(srv_name), dns.count("b.test"));
    assert!(
        n <= 4 && targets <= 4,
        "{n} SRV, {targets} A in {:?}",
        started.elapsed()
    );
    dns.set(srv_name, 1, vec![srv(0, 1, b2.addr.port(), "b.test")]);
    let all_moved = wait_until(|| {
        (0..CONNECTIONS).all(|_| {
            let r = get(proxy.addr, "/");
            assert_eq!(r.status, 200, "no client error during the change");
            body(&r).contains("two")
        })
    });
    assert!(all_moved, "both workers moved:\n{}", proxy.stderr());
    let changes = proxy
        .stderr()
        .matches("dns _http._tcp.web.test. SRV")
        .count();
    assert_eq!(
        changes,
        2,
        "one resolver logs each change once:\n{}",
        proxy.stderr()
    );
}

/// A WebSocket tunnel to a server whose address vanished stays open (in flight) and
/// gets 1001 once `drain_timeout` has passed; new upgrades go to the new address.
#[test]
fn removed_address_keeps_its_tunnels_until_drain_timeout() {
    use tungstenite::Message;
    use wsutil::{expect_close, next_msg, ws_connect, EchoBackend};
    let (e1, e2) = (EchoBackend::start(), EchoBackend::start());
    let dns = DnsServer::start();
    dns.set("b.test", 60, vec![a(LOCAL)]);
    dns.set(
        "_ws._tcp.web.test",
        1,
        vec![srv(0, 1, e1.addr.port(), "b.test")],
    );
    let ini = format!(
        "[frontend]\nhost = 127.0.0.1\nport = 0\ndrain_timeout = 2s\n\
         [websocket]\nserver1_srv = _ws._tcp.web.test.\n{}",
        resolver(&dns, "")
    );
    let proxy = Proxy::start_with_admin(&ini, &[]);
    let (mut ws, _) = ws_connect(proxy.addr, "/", &[]);
    ws.send(Message::text("before")).unwrap();
    assert_eq!(next_msg(&mut ws), Message::text("before"));
    dns.set(
        "_ws._tcp.web.test",
        1,
        vec![srv(0, 1, e2.addr.port(), "b.test")],
    );
    assert!(wait_until(
        || proxy.metric("sluice_dns_changes_total") >= 3.0
    ));
    let changed = Instant::now();
    ws.send(Message::text("after")).unwrap();
    assert_eq!(
        next_msg(&mut ws),
        Message::text("after"),
        "the tunnel stays"
    );
    let (mut ws2, _) = ws_connect(proxy.addr, "/", &[]);
    ws2.send(Message::text("new")).unwrap();
    assert_eq!(next_msg(&mut ws2), Message::text("new"));
    assert_eq!((e1.accepted(), e2.accepted()), (1, 1));
    let close = expect_close(&mut ws);
    assert_eq!(close, (1001, "backend address removed".to_string()));
    let waited = changed.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "closed after drain_timeout: {waited:?}"
    );
    ws2.send(Message::text("still")).unwrap();
    assert_eq!(next_msg(&mut ws2), Message::text("still"));
}

/// The server names of the status page (`/status.json`), sorted.
fn status_names(p: &Proxy) -> Vec<String> {
    let json = get(p.admin.unwrap(), "/status.json").text();
    let mut v: Vec<String> = json
        .split("{\"name\":\"")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(String::from))
        .filter(|n| n.starts_with("server"))
        .collect();
    v.sort();
    v
}

/// `family = v4_preferred` (default): AAAA is asked only after an empty A answer, and a
/// name with A records is never asked AAAA. IPv6 servers are named `server1#[...]`
/// (documentation addresses, no pool: nothing connects to them).
#[test]
fn v4_preferred_asks_aaaa_only_after_an_empty_a_answer() {
    let dns = DnsServer::start();
    dns.set("six.test", 1, vec![aaaa("2001:db8::1")]);
    dns.set("four.test", 1, vec![a([192, 0, 2, 1])]);
    let ini = format!(
        "[http]\nserver1 = six.test.:9\nserver1_resolve = all\nserver1_min_workers = 0\n\
         server2 = four.test.:9\nserver2_min_workers = 0\n{}",
        resolver(&dns, "")
    );
    let proxy = Proxy::start_with_admin(&ini, &[]);
    assert_eq!(
        status_names(&proxy),
        ["server1#[2001:db8::1]", "server2"],
        "an IPv6 server, bracketed"
    );
    assert!(proxy
        .metrics()
        .contains("server=\"server1#[2001:db8::1]\",addr=\"[2001:db8::1]:9\""));
    assert!(wait_until(
        || dns.count_type("four.test", RecordType::A) >= 3
    ));
    assert_eq!(
        dns.count_type("four.test", RecordType::Aaaa),
        0,
        "A data: no AAAA"
    );
    let six: Vec<RecordType> = dns
        .seen()
        .iter()
        .filter(|s| s.name == "six.test")
        .map(|s| s.qtype)
        .collect();
    assert!(six.len() >= 4, "{six:?}");
    for pair in six.chunks_exact(2) {
        assert_eq!(pair, [RecordType::A, RecordType::Aaaa], "{six:?}");
    }
}

/// `family = v4_only` never asks AAAA (the name has only AAAA records: no servers);
/// `family = all` makes one server per address of both families.
#[test]
fn v4_only_never_asks_aaaa_and_all_uses_both() {
    let dns = DnsServer::start();
    dns.set("six.test", 1, vec![aaaa("2001:db8::1")]);
    let ini = format!(
        "[http]\nserver1 = six.test.:9\nserver1_min_workers = 0\n{}",
        resolver(&dns, "family = v4_only\ninit = optional")
    );
    let proxy = Proxy::start_with_admin(&ini, &[]);
    assert!(wait_until(|| dns.count_type("six.test", RecordType::A) >= 3));
    assert_eq!(dns.count_type("six.test", RecordType::Aaaa), 0);
    assert!(status_names(&proxy).is_empty());
    drop(proxy);

    let dns = DnsServer::start();
    dns.set(
        "both.test",
        60,
        vec![aaaa("2001:db8::2"), aaaa("2001:db8::1")],
    );
    dns.set("both.test", 60, vec![a([192, 0, 2, 1])]);
    let ini = format!(
        "[http]\nserver1 = both.test.:9\nserver1_resolve = all\nserver1_min_workers = 0\n\
         server2 = both.test.:10\nserver2_min_workers = 0\n{}",
        resolver(&dns, "family = all")
    );
    let proxy = Proxy::start_with_admin(&ini, &[]);
    let want = [
        "server1#192.0.2.1",
        "server1#[2001:db8::1]",
        "server1#[2001:db8::2]",
        "server2",
    ];
    assert_eq!(status_names(&proxy), want);
    assert!(
        proxy
            .metrics()
            .contains("server=\"server2\",addr=\"192.0.2.1:10\""),
        "first: the lowest IPv4 address"
    );
}

fn raw_config(dns: &DnsServer, http: &str) -> String {
    format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n[http]\n{http}\n{}[log]\nlevel=info\naccess_log=false\n",
        resolver(dns, "")
    )
}

/// A reload with new `[resolver] nameservers` applies without a restart: the next
/// re-resolution goes to the new nameserver and traffic moves to its answer.
#[test]
fn a_reload_moves_resolution_to_new_nameservers() {
    let (b1, b2) = (Backend::hello("one"), Backend::hello("two"));
    let (ns1, ns2) = (DnsServer::start(), DnsServer::start());
    for (ns, b) in [(&ns1, &b1), (&ns2, &b2)] {
        ns.set("b.test", 1, vec![a(LOCAL)]);
        ns.set(
            "_http._tcp.web.test",
            1,
            vec![srv(0, 1, b.addr.port(), "b.test")],
        );
    }
    let http = "server1_srv = _http._tcp.web.test.";
    let (p, _) = ProxyProcess::start_raw(&raw_config(&ns1, http));
    assert!(body(&get(p.addr, "/")).contains("one"));
    let text = raw_config(&ns2, http).replace("{port}", &p.addr.port().to_string());
    std::fs::write(p.dir.join("sluice.ini"), text).unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| body(&get(p.addr, "/")).contains("two")),
        "traffic moved to the new nameserver's answer:\n{}",
        p.stderr()
    );
    let old = ns1.seen().len();
    let new = ns2.count("_http._tcp.web.test");
    assert!(wait_until(|| ns2.count("_http._tcp.web.test") >= new + 2));
    assert_eq!(
        ns1.seen().len(),
        old,
        "nothing more asked of the old nameserver"
    );
    assert!(body(&get(p.addr, "/")).contains("two"));
}

/// A name a reload removed is no longer queried; the name that stays goes on.
#[test]
fn a_name_removed_by_a_reload_is_no_longer_queried() {
    let dns = DnsServer::start();
    dns.set("one.test", 1, vec![a([192, 0, 2, 1])]);
    dns.set("two.test", 1, vec![a([192, 0, 2, 2])]);
    let s1 = "server1 = one.test.:9\nserver1_min_workers = 0";
    let both = format!("{s1}\nserver2 = two.test.:9\nserver2_min_workers = 0");
    let (p, _) = ProxyProcess::start_raw(&raw_config(&dns, &both));
    assert!(wait_until(|| dns.count("two.test") >= 2));
    let text = raw_config(&dns, s1).replace("{port}", &p.addr.port().to_string());
    std::fs::write(p.dir.join("sluice.ini"), text).unwrap();
    p.signal("HUP");
    assert!(wait_until(|| p.stderr().contains("configuration reloaded")));
    // From the first query for one.test after the reload on (a query for two.test sent
    // before it has arrived by then), three more rounds of min_ttl.
    let after = dns.count("one.test");
    assert!(wait_until(|| dns.count("one.test") > after));
    let removed = dns.count("two.test");
    let now = dns.count("one.test");
    assert!(wait_until(|| dns.count("one.test") >= now + 3));
    assert_eq!(dns.count("two.test"), removed, "{:?}", dns.seen());
    assert!(
        p.stderr().contains("dns two.test.: no longer used"),
        "{}",
        p.stderr()
    );
}
