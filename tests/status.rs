//! What an operator reads (issue 14, section 2), through the real binary: the start-up
//! log (admin address, no pool sizes for WebSocket servers, a warning when no server of
//! a group accepts a connection), reload logs that name the group and a changed
//! algorithm, and a passive ejection explained in /status.json.

mod util;

use std::net::SocketAddr;
use util::*;

/// An address on loopback where nothing listens (connects are refused).
fn closed_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[test]
fn startup_names_the_admin_address_and_warns_when_no_server_of_a_group_accepts() {
    let live = Backend::hello("live");
    let (dead_http, ws1, ws2) = (closed_addr(), closed_addr(), closed_addr());
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n\
         [http]\nalgorithm=round-robin\nserver1_addr={dead_http}\nserver2_addr={}\n\n\
         [websocket]\nalgorithm=least-connections\nenable_health_check=true\nhealth_check_interval=100ms\n\
         server1={ws1}\nserver2={ws2}\n\n\
         [admin]\nhost=127.0.0.1\nport={{admin}}\n\n[log]\nlevel=info\naccess_log=false\n",
        live.addr
    );
    let (p, admin) = ProxyProcess::start_raw(&ini);
    let warning = "[websocket] no server accepts connections";
    // Down after `fall` (3) refused probes: by then the warning had its chance to repeat.
    assert!(
        wait_until(
            || p.stderr().contains("server2") && p.stderr().matches("up -> down").count() >= 2
        ),
        "{}",
        p.stderr()
    );
    let log = p.stderr();
    assert!(
        log.contains(&format!("admin endpoint on http://{admin}/status")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{warning} (server1 {ws1}: connection refused; server2 {ws2}: connection refused)"
        )),
        "{log}"
    );
    assert_eq!(log.matches(warning).count(), 1, "warned once:\n{log}");
    assert!(
        !log.contains("[http] no server accepts"),
        "one HTTP server is up:\n{log}"
    );
    assert!(
        log.contains("[websocket] algorithm least-connections"),
        "{log}"
    );
    let ws_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[websocket] server"))
        .collect();
    assert_eq!(ws_lines.len(), 2, "{log}");
    assert!(
        ws_lines.iter().all(|l| !l.contains("pool")),
        "no pool sizes for WebSocket servers:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("[http] server2") && l.contains("pool 1..")),
        "{log}"
    );
}

#[test]
fn reload_logs_name_the_group_and_a_changed_algorithm() {
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let base = "[frontend]\nhost=127.0.0.1\nport={port}\n\n[log]\nlevel=info\naccess_log=false\n";
    let (p, _) = ProxyProcess::start_raw(&format!(
        "{base}\n[http]\nalgorithm=round-robin\nserver1_addr={}\nserver2_addr={}\n",
        a.addr, b.addr
    ));
    let base = base.replace("{port}", &p.addr.port().to_string());
    std::fs::write(
        p.dir.join("sluice.ini"),
        format!(
            "{base}\n[http]\nalgorithm=least-connections\nserver2_addr={}\nserver3_addr={}\n",
            b.addr, a.addr
        ),
    )
    .unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| p.stderr().contains("configuration reloaded")),
        "{}",
        p.stderr()
    );
    let log = p.stderr();
    for want in [
        format!("[http] server1 {} removed", a.addr),
        format!("[http] server3 {} added", a.addr),
        "[http] algorithm round-robin -> least-connections".to_string(),
    ] {
        assert!(log.contains(&want), "log lacks {want}:\n{log}");
    }
}

#[test]
fn a_passive_ejection_shows_its_reason_and_time_in_status_json() {
    let live = Backend::hello("live");
    let dead = closed_addr();
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n\
         [http]\nalgorithm=round-robin\nmax_fails=1\nfail_timeout=30\n\
         server1_addr={dead}\nserver1_min_workers=0\nserver2_addr={}\n\n\
         [admin]\nhost=127.0.0.1\nport={{admin}}\n\n[log]\nlevel=warn\naccess_log=false\n",
        live.addr
    );
    let (p, admin) = ProxyProcess::start_raw(&ini);
    // Round-robin sends one of the first two requests to the dead server: its connect
    // is refused (ejected at once, max_fails=1) and the request is rerouted.
    for _ in 0..2 {
        assert_eq!(get(p.addr, "/").status, 200);
    }
    let j = get(admin, "/status.json").text();
    let server1 = j
        .split(&format!("\"addr\":\"{dead}\""))
        .nth(1)
        .and_then(|rest| rest.split("\"chart\"").next())
        .unwrap_or_else(|| panic!("server1 missing:\n{j}"));
    assert!(server1.contains("\"ejected\":true"), "{j}");
    assert!(
        server1.contains("\"last_failure\":\"connection refused\",\"last_failure_seconds\":"),
        "{j}"
    );
    assert!(!server1.contains("\"ejected_seconds_left\":null"), "{j}");
    assert!(
        j.contains("\"line\":\"http server1") && j.contains("ejected for 30s"),
        "the ejection is a timed transition:\n{j}"
    );
}
