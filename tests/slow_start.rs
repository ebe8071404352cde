//! Slow start end to end (issue 16, section 2): a server added by a SIGHUP reload gets a
//! small share first and its full share once `slow_start` has passed.
//!
//! The real binary (ProxyProcess) with smooth weighted round-robin over equal weights, so
//! shares are exact, not statistical: at ramp `f` (0.1..=1) the new server gets `f / (2 + f)`
//! of the requests; without slow start it would get a third from its first request on.

mod util;
use std::time::{Duration, Instant};
use util::*;

const SPAN: Duration = Duration::from_secs(4);

#[test]
fn a_server_added_by_reload_ramps_up_to_its_full_share() {
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let c = Backend::hello("c");
    let base = "[frontend]\nhost=127.0.0.1\nport={port}\n\n[log]\nlevel=info\naccess_log=false\n";
    let group = |servers: &str| {
        format!(
            "\n[http]\nalgorithm=weighted-round-robin\nslow_start={}ms\n{servers}",
            SPAN.as_millis()
        )
    };
    let two = format!("server1_addr={}\nserver2_addr={}\n", a.addr, b.addr);
    let (p, _) = ProxyProcess::start_raw(&format!("{base}{}", group(&two)));
    let path = p.dir.join("sluice.ini");
    let base = base.replace("{port}", &p.addr.port().to_string());
    // Start-up: no ramp, both old servers share equally at once.
    let first: Vec<String> = (0..4).map(|_| get(p.addr, "/").text()).collect();
    assert_eq!(first.iter().filter(|t| *t == "hello from a").count(), 2);

    let three = format!("{two}server3_addr={}\n", c.addr);
    std::fs::write(&path, format!("{base}{}", group(&three))).unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| p.stderr().contains("configuration reloaded")),
        "{}",
        p.stderr()
    );
    // Every request's offset from here is at least its offset into the ramp (which
    // starts at the first pick after the reload), so the ramp bounds hold.
    let t0 = Instant::now();
    let window = SPAN / 3; // ramp <= 0.1 + 0.9 / 3 = 0.4: share <= 0.4 / 2.4 = 1/6
    let (mut early, mut early_c) = (0, 0);
    while t0.elapsed() < window {
        let text = get(p.addr, "/").text();
        if t0.elapsed() < window {
            early += 1;
            early_c += usize::from(text == "hello from c");
        }
    }
    let early_share = early_c as f64 / early as f64;
    eprintln!(
        "slow start: new server got {early_c} of {early} ({:.1}%) in the first {window:?}",
        early_share * 100.0
    );
    assert!(early >= 30, "too few requests to judge: {early}");
    assert!(early_c > 0, "the ramp starts at 10%, not 0");
    assert!(
        early_share < 0.2,
        "a third would be the full share: {early_c} of {early}"
    );
    // After the span: its full share, exactly a third (smooth WRR over equal weights,
    // give or take the cycle in progress).
    std::thread::sleep(SPAN.saturating_sub(t0.elapsed()) + Duration::from_millis(100));
    let late: Vec<String> = (0..300).map(|_| get(p.addr, "/").text()).collect();
    let late_c = late.iter().filter(|t| *t == "hello from c").count();
    eprintln!("slow start: new server got {late_c} of 300 after {SPAN:?}");
    assert!(late_c.abs_diff(100) <= 2, "{late_c} of 300");
}
