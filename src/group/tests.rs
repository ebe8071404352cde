//! Group-level picks: ejection cap and panic (issue 16 §1), slow start after a reload (§2).

use super::*;
use crate::config::{Algorithm, GroupKind, ServerConfig};
use crate::health::{FailReason, ProbeOutcome};
use rand::rngs::SmallRng;
use rand::SeedableRng;

const S: Duration = Duration::from_secs(1);

fn cfg(servers: usize, algorithm: Algorithm) -> config::Group {
    let mut g = config::Group::new(GroupKind::Http);
    g.algorithm = algorithm;
    g.enable_health_check = true;
    g.fall = 1;
    g.rise = 1;
    g.servers = (1..=servers as u16)
        .map(|i| ServerConfig::new(i.into(), "a:1", ([127, 0, 0, 1], i).into()))
        .collect();
    g
}

fn rng() -> SmallRng {
    SmallRng::seed_from_u64(16)
}

/// `max_fails` (3) passive failures at `t`: ejected until `t + fail_timeout`.
fn eject(g: &mut Group, s: usize, t: Instant) {
    for _ in 0..3 {
        g.servers[s].health.on_passive_failure(t);
    }
    assert!(g.servers[s].health.is_ejected(t));
}

fn down(g: &mut Group, s: usize, t: Instant) {
    let h = &mut g.servers[s].health;
    h.probe_started(t);
    h.probe_finished(
        t,
        ProbeOutcome::Unhealthy(FailReason::Refused),
        Duration::ZERO,
    );
    assert!(!h.is_usable(t));
}

#[test]
fn one_server_group_keeps_serving_from_its_ejected_server() {
    let t0 = Instant::now();
    let mut g = Group::new(&cfg(1, Algorithm::Random), t0);
    assert!(!g.panic(t0));
    eject(&mut g, 0, t0);
    for _ in 0..3 {
        assert_eq!(g.pick(t0 + S, 0, &mut rng()), Some(0));
    }
    assert!(g.panic(t0 + S));
    assert_eq!(g.panic_picks(), 3);
    // A retry has nowhere else to go.
    assert_eq!(g.pick(t0 + S, 0b1, &mut rng()), None);
    // After fail_timeout: plain picks again, no panic.
    let later = t0 + 11 * S;
    assert_eq!(g.pick(later, 0, &mut rng()), Some(0));
    assert!(!g.panic(later));
    assert_eq!(g.panic_picks(), 3);
}

#[test]
fn down_by_active_checks_stays_out_even_in_panic() {
    let t0 = Instant::now();
    let mut g = Group::new(&cfg(2, Algorithm::RoundRobin), t0);
    down(&mut g, 0, t0);
    down(&mut g, 1, t0);
    assert_eq!(g.pick(t0, 0, &mut rng()), None, "all down: 503 at once");
    eject(&mut g, 1, t0);
    assert_eq!(g.pick(t0, 0, &mut rng()), None);
    assert!(!g.panic(t0));
    // One down, the other only ejected: the ejected one is used.
    let mut g = Group::new(&cfg(2, Algorithm::RoundRobin), t0);
    down(&mut g, 0, t0);
    eject(&mut g, 1, t0);
    assert_eq!(g.pick(t0, 0, &mut rng()), Some(1));
    assert!(g.panic(t0));
}

#[test]
fn cap_releases_the_least_recently_failed_without_panic() {
    let t0 = Instant::now();
    let mut g = Group::new(&cfg(4, Algorithm::RoundRobin), t0);
    eject(&mut g, 0, t0 + 2 * S);
    eject(&mut g, 1, t0 + S);
    eject(&mut g, 2, t0 + 3 * S);
    let now = t0 + 4 * S;
    let a = g.admission(now);
    assert_eq!(
        a,
        Admission {
            released: 1,
            panic: false
        }
    );
    let picks: Vec<_> = (0..4)
        .map(|_| g.pick(now, 0, &mut rng()).unwrap())
        .collect();
    assert_eq!(picks, [1, 3, 1, 3], "server 1 failed least recently");
    assert_eq!(g.panic_picks(), 2);
    // max_ejected_percent = 100: no cap, three stay out.
    let mut c = cfg(4, Algorithm::RoundRobin);
    c.max_ejected_percent = 100;
    let mut g = Group::new(&c, t0);
    for s in 0..3 {
        eject(&mut g, s, t0);
    }
    let picks: Vec<_> = (0..3)
        .map(|_| g.pick(now, 0, &mut rng()).unwrap())
        .collect();
    assert_eq!(picks, [3, 3, 3]);
}

#[test]
fn panic_moves_away_from_a_released_server_that_fails_again() {
    let t0 = Instant::now();
    let mut c = cfg(2, Algorithm::RoundRobin);
    c.max_ejected_percent = 100;
    let mut g = Group::new(&c, t0);
    eject(&mut g, 0, t0);
    eject(&mut g, 1, t0 + S);
    assert_eq!(g.pick(t0 + 2 * S, 0, &mut rng()), Some(0));
    // It fails while released: now server 1 is the least recently failed.
    g.servers[0].health.on_passive_failure(t0 + 3 * S);
    assert_eq!(g.pick(t0 + 3 * S, 0, &mut rng()), Some(1));
    assert_eq!(g.pick(t0 + 3 * S, 0b10, &mut rng()), Some(0), "a retry");
}

#[test]
fn no_slow_start_at_start_up() {
    let t0 = Instant::now();
    let mut c = cfg(2, Algorithm::WeightedRoundRobin);
    for s in &mut c.servers {
        s.slow_start = Some(30 * S);
    }
    let mut g = Group::new(&c, t0);
    assert_eq!(g.servers[0].health.slow_start(), Some(30 * S));
    assert_eq!(g.pick(t0, 0, &mut rng()), Some(0));
    assert_eq!(g.servers[1].health.ramp_permille(t0), 1000);
}

/// What a reload does to a group (as `lifecycle::apply_config`): push the new
/// server, update the configuration, then `reset_balancer`.
fn reload_adding(g: &mut Group, c: &config::Group, now: Instant) {
    let scfg = c.servers.last().unwrap().clone();
    let params = health_params(c);
    g.servers.push(Server {
        health: ServerHealth::new(params, scfg.weight, now, Duration::ZERO),
        cfg: scfg,
        pool: Pool::default(),
        active: 0,
        stats: ServerStats::default(),
        probe_timer: crate::timer::Deadline::default(),
        removed: false,
    });
    g.cfg = c.clone();
    g.reset_balancer();
}

#[test]
fn a_server_added_by_reload_ramps_from_the_next_pick() {
    let t0 = Instant::now();
    let mut c = cfg(2, Algorithm::WeightedRoundRobin);
    c.slow_start = Some(10 * S);
    for s in &mut c.servers {
        s.slow_start = c.slow_start;
    }
    let mut g = Group::new(&c, t0);
    let c3 = {
        let mut c3 = c.clone();
        let mut s = ServerConfig::new(3, "a:3", ([127, 0, 0, 1], 3).into());
        s.slow_start = c.slow_start;
        c3.servers.push(s);
        c3
    };
    reload_adding(&mut g, &c3, t0);
    let t1 = t0 + S;
    // Share of server 3 over 2100 picks at the start: 10 / 210.
    let count = |g: &mut Group, now| {
        let mut r = rng();
        (0..2100)
            .filter(|_| g.pick(now, 0, &mut r) == Some(2))
            .count()
    };
    assert_eq!(count(&mut g, t1), 100);
    assert_eq!(g.servers[2].health.ramp_permille(t1 + 5 * S), 550);
    assert_eq!(
        g.servers[0].health.ramp_permille(t1),
        1000,
        "old ones untouched"
    );
    // Fully ramped after the span: a third.
    assert_eq!(count(&mut g, t1 + 10 * S), 700);
    // A second reload without changes starts nothing.
    g.reset_balancer();
    assert_eq!(count(&mut g, t1 + 20 * S), 700);
}

#[test]
fn a_server_added_back_ramps_and_begin_slow_start_is_explicit() {
    let t0 = Instant::now();
    let mut c = cfg(2, Algorithm::WeightedRoundRobin);
    for s in &mut c.servers {
        s.slow_start = Some(10 * S);
    }
    let mut g = Group::new(&c, t0);
    g.servers[1].removed = true;
    g.reset_balancer();
    g.servers[1].removed = false;
    g.reset_balancer();
    g.pick(t0 + S, 0, &mut rng());
    assert_eq!(g.servers[1].health.ramp_permille(t0 + S), 100);
    g.begin_slow_start(0, t0 + 2 * S);
    assert_eq!(g.servers[0].health.ramp_permille(t0 + 2 * S), 100);
    // A reload turning slow start off ends every ramp.
    g.cfg.servers[0].slow_start = None;
    g.servers[0].cfg.slow_start = None;
    g.reset_balancer();
    assert_eq!(g.servers[0].health.ramp_permille(t0 + 2 * S), 1000);
}

// Reload: servers matched by name and address.

fn reload_cfg(servers: &str) -> config::Group {
    let text = format!("[http]\n{servers}");
    let no_dns = |_: &str, _: u16| Err("no names here".to_string());
    config::parse(&text, "test.ini", &no_dns)
        .expect("valid config")
        .http
}

fn names(g: &Group) -> Vec<(String, bool)> {
    let s = g.servers.iter();
    s.map(|s| (format!("{} {}", s.cfg.name, s.cfg.addr), s.removed))
        .collect()
}

#[test]
fn reload_matches_servers_by_name_and_address() {
    let now = Instant::now();
    let a = "server1_addr = 127.0.0.1:1\nserver2_addr = 127.0.0.1:2\n";
    let mut g = Group::new(&reload_cfg(a), now);
    g.servers[0].stats.requests = 5;
    // server2 moves to a new address: the old one is removed, the new one added;
    // server1 keeps its counters.
    let b = "server1_addr = 127.0.0.1:1\nserver2_addr = 127.0.0.1:3\n";
    assert_eq!(g.reconfigure(&reload_cfg(b), now), vec![1]);
    assert_eq!(
        names(&g),
        vec![
            ("server1 127.0.0.1:1".into(), false),
            ("server2 127.0.0.1:2".into(), true),
            ("server2 127.0.0.1:3".into(), false),
        ]
    );
    assert_eq!(g.servers[0].stats.requests, 5, "kept, not rebuilt");
    // Removed servers get no picks.
    let mut rng = rand::rngs::mock::StepRng::new(0, 1);
    for _ in 0..10 {
        assert_ne!(g.pick(now, 0, &mut rng), Some(1));
    }
    // Reloading the old list brings the removed server back in its old slot, and
    // removes the other; nothing is ever taken out of the list.
    assert_eq!(g.reconfigure(&reload_cfg(a), now), vec![2]);
    assert_eq!(g.servers.len(), 3);
    assert!(!g.servers[1].removed && g.servers[2].removed);
    // Reloading the same list again removes nothing.
    assert!(g.reconfigure(&reload_cfg(a), now).is_empty());
}

#[test]
fn reload_applies_new_settings_to_kept_servers() {
    let now = Instant::now();
    let mut g = Group::new(&reload_cfg("server1_addr = 127.0.0.1:1\n"), now);
    let b = "server1_addr = 127.0.0.1:1\nserver1_weight = 7\nserver1_max_workers = 9\n";
    g.reconfigure(&reload_cfg(b), now);
    assert_eq!(g.servers[0].cfg.weight, 7);
    assert_eq!(g.servers[0].limits().max, 9);
}
