//! The rebalancer driven at its own deadlines with scripted tunnel counts.

use super::*;

const P: Params = Params {
    rate: 10,
    tolerance: 20,
};

fn up(open: u32, weight: u32) -> ServerLoad {
    ServerLoad {
        open,
        sheddable: open,
        weight,
        usable: true,
    }
}

/// Runs decisions at their deadlines until `span` passed. Closed tunnels reconnect at
/// once (`reconnect`) onto the usable server with the lowest open / weight, as a
/// least-connections placement would. Returns every shed with its time and the
/// episodes that ended.
fn run(
    r: &mut Rebalancer,
    servers: &mut [ServerLoad],
    t0: Instant,
    span: Duration,
    reconnect: bool,
) -> (Vec<(Duration, usize, u32)>, Vec<Episode>) {
    let (mut sheds, mut episodes) = (Vec::new(), Vec::new());
    let mut now = t0;
    for _ in 0..10_000 {
        if now > t0 + span {
            break;
        }
        let d = r.decide(servers, false, now);
        for &(i, n) in &d.shed {
            sheds.push((now - t0, i, n));
            servers[i].open -= n;
            for _ in 0..n {
                if reconnect {
                    let to = (0..servers.len())
                        .filter(|&j| servers[j].usable)
                        .min_by_key(|&j| servers[j].open * 1000 / servers[j].weight)
                        .unwrap();
                    servers[to].open += 1;
                }
            }
        }
        episodes.extend(d.ended);
        now = d.next.expect("on: always a next check");
    }
    (sheds, episodes)
}

fn total(sheds: &[(Duration, usize, u32)]) -> u32 {
    sheds.iter().map(|s| s.2).sum()
}

#[test]
fn scale_up_sheds_exactly_the_excess_oldest_from_the_over_share_servers() {
    // 200 tunnels on two servers, a third added: fair 66.7, limit 80 at 20%.
    let t0 = Instant::now();
    let mut r = Rebalancer::new(P);
    let mut s = [up(100, 1), up(100, 1), up(0, 1)];
    let (sheds, episodes) = run(&mut r, &mut s, t0, Duration::from_secs(30), true);
    assert_eq!(total(&sheds), 40, "no more than the excess");
    assert_eq!(
        episodes,
        [Episode {
            closed: vec![20, 20, 0]
        }]
    );
    assert_eq!(episodes[0].total(), 40);
    assert_eq!(s.map(|x| x.open), [80, 80, 40], "within tolerance");
    assert_eq!(r.closed_total(), 40);
    // Paced at 10/s, one at a time (burst 1): 40 closes take 3.9 s.
    let last = sheds.last().unwrap().0;
    assert!(last >= Duration::from_millis(3800), "{last:?}");
    assert!(sheds.iter().all(|s| s.2 == 1));
    // Never from the under-share server.
    assert!(sheds.iter().all(|s| s.1 != 2));
}

#[test]
fn at_most_rate_per_second_plus_one_burst() {
    let t0 = Instant::now();
    let p = Params {
        rate: 100,
        tolerance: 10,
    };
    let mut r = Rebalancer::new(p);
    let mut s = [up(5000, 1), up(0, 1)];
    let (sheds, _) = run(&mut r, &mut s, t0, Duration::from_secs(3), false);
    for start in 0..3 {
        let from = Duration::from_secs(start);
        let n: u32 = sheds
            .iter()
            .filter(|x| x.0 >= from && x.0 < from + Duration::from_secs(1))
            .map(|x| x.2)
            .sum();
        assert!(n <= 100 + 10, "second {start}: {n}");
        assert!(n >= 90, "second {start}: {n}");
    }
    assert!(
        sheds.iter().all(|x| x.2 <= 10),
        "bursts of at most rate / 10"
    );
}

#[test]
fn within_tolerance_or_nowhere_to_go_does_nothing() {
    let t0 = Instant::now();
    for servers in [
        vec![up(90, 1), up(80, 1), up(70, 1)], // fair 80, limit 96
        vec![
            up(100, 1),
            ServerLoad {
                usable: false,
                ..up(0, 1)
            },
        ], // only one usable
        vec![up(0, 1), up(0, 1)],
        vec![],
    ] {
        let mut r = Rebalancer::new(P);
        let d = r.decide(&servers, false, t0);
        assert_eq!(d.shed, [], "{servers:?}");
        assert_eq!(d.next, Some(t0 + CHECK_INTERVAL));
        assert!(!r.active());
    }
}

#[test]
fn weights_set_the_fair_shares() {
    // Weights 1, 1, 2 over 200 tunnels: fair 50, 50, 100; limits 60, 60, 120.
    let t0 = Instant::now();
    let mut r = Rebalancer::new(P);
    let mut s = [up(100, 1), up(100, 1), up(0, 2)];
    let (sheds, episodes) = run(&mut r, &mut s, t0, Duration::from_secs(30), true);
    assert_eq!(total(&sheds), 80);
    assert_eq!(
        episodes,
        [Episode {
            closed: vec![40, 40, 0]
        }]
    );
    assert_eq!(s.map(|x| x.open), [60, 60, 80]);
}

#[test]
fn stops_as_soon_as_a_server_is_within_tolerance() {
    let t0 = Instant::now();
    let mut r = Rebalancer::new(P);
    let mut s = [up(100, 1), up(100, 1), up(0, 1)];
    let d = r.decide(&s, false, t0);
    assert_eq!(d.shed, [(0, 1)]);
    s[0].open -= 1;
    // Clients leave server 0 by themselves: 70 < its limit of 80.
    s[0].open = 70;
    let mut now = d.next.unwrap();
    let mut from0 = 0;
    let mut ended = None;
    for _ in 0..1000 {
        let d = r.decide(&s, false, now);
        for &(i, n) in &d.shed {
            from0 += u32::from(i == 0) * n;
            s[i].open -= n;
        }
        if d.ended.is_some() {
            ended = d.ended;
            break;
        }
        now = d.next.unwrap();
    }
    assert_eq!(from0, 0, "nothing more from server 0");
    assert_eq!(
        ended,
        Some(Episode {
            closed: vec![1, 20, 0]
        })
    );
}

#[test]
fn never_during_a_drain_and_a_drain_ends_the_episode() {
    let t0 = Instant::now();
    let mut r = Rebalancer::new(P);
    let s = [up(100, 1), up(0, 1)];
    let d = r.decide(&s, true, t0);
    assert_eq!(d, Decision::default(), "draining: nothing, no deadline");
    let d = r.decide(&s, false, t0);
    assert_eq!(d.shed, [(0, 1)]);
    assert!(r.active());
    let d = r.decide(&s, true, t0 + Duration::from_secs(1));
    assert_eq!(d.shed, []);
    assert_eq!(d.next, None);
    assert_eq!(d.ended, Some(Episode { closed: vec![1, 0] }));
    assert!(!r.active());
}

#[test]
fn next_episode_waits_for_clients_to_settle() {
    let t0 = Instant::now();
    let mut r = Rebalancer::new(Params {
        rate: 1000,
        tolerance: 20,
    });
    // 12 over the limit of 60 (fair 50): one burst of 100 covers it.
    let mut s = [up(72, 1), up(28, 1)];
    let d = r.decide(&s, false, t0);
    assert_eq!(d.shed, [(0, 12)]);
    assert!(d.ended.is_some());
    assert_eq!(d.next, Some(t0 + SETTLE));
    // The clients did not come back to server 1, and more arrived on 0: not before SETTLE.
    s[0].open = 90;
    assert_eq!(r.decide(&s, false, t0 + SETTLE / 2).shed, []);
    assert_eq!(r.decide(&s, false, t0 + SETTLE).shed.len(), 1);
}

#[test]
fn a_changed_server_count_ends_the_episode_and_replans() {
    let t0 = Instant::now();
    let mut r = Rebalancer::new(P);
    let d = r.decide(&[up(100, 1), up(0, 1)], false, t0);
    assert_eq!(d.shed, [(0, 1)]);
    let d = r.decide(
        &[up(99, 1), up(0, 1), up(0, 1)],
        false,
        t0 + Duration::from_secs(1),
    );
    assert_eq!(d.ended, Some(Episode { closed: vec![1, 0] }));
    assert_eq!(d.shed, [], "the next plan waits for SETTLE");
}

#[test]
fn reloaded_rate_applies() {
    let t0 = Instant::now();
    let mut r = Rebalancer::new(Params {
        rate: 1000,
        tolerance: 20,
    });
    r.set_params(P);
    let d = r.decide(&[up(100, 1), up(0, 1)], false, t0);
    assert_eq!(d.shed, [(0, 1)], "burst of the new rate (1)");
}

#[test]
fn tunnels_inside_a_frame_wait_and_keep_their_place_in_the_plan() {
    let t0 = Instant::now();
    let mut r = Rebalancer::new(Params {
        rate: 100,
        tolerance: 20,
    });
    // Every tunnel of the over-share servers is inside a frame to its client.
    let mut s = [up(100, 1), up(100, 1), up(0, 1)];
    s[0].sheddable = 0;
    s[1].sheddable = 1;
    let d = r.decide(&s, false, t0);
    assert_eq!(d.shed, [(1, 1)], "only what can be told 1012 now");
    assert_eq!(d.next, Some(t0 + RETRY), "the rest is retried soon");
    assert!(r.active());
    s[1].sheddable = 0;
    let d = r.decide(&s, false, t0 + RETRY);
    assert_eq!(d.shed, []);
    assert_eq!(d.next, Some(t0 + 2 * RETRY));
    // At a boundary again: the plan goes on, and all of it is shed in the end.
    s[0].sheddable = 100;
    s[1].sheddable = 99;
    s[1].open = 99;
    s[2].open = 1; // the client told 1012 reconnected
    let (sheds, episodes) = run(
        &mut r,
        &mut s,
        t0 + 2 * RETRY,
        Duration::from_secs(30),
        true,
    );
    assert_eq!(total(&sheds), 39);
    assert_eq!(
        episodes,
        [Episode {
            closed: vec![20, 20, 0]
        }]
    );
    assert_eq!(r.closed_total(), 40);
}
