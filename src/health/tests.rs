//! Scripted probe results and passive failures at explicit `now`s.

use super::*;

const S: Duration = Duration::from_secs(1);
const NO_JITTER: Duration = Duration::ZERO;

/// An arbitrary origin: std has no other way to make an `Instant`. Nothing in
/// the code under test reads the clock; every other instant is `t0 + offset`.
fn base() -> Instant {
    Instant::now()
}

fn params() -> HealthParams {
    HealthParams {
        enabled: true,
        interval: 10 * S,
        timeout: 2 * S,
        rise: 2,
        fall: 3,
        max_fails: 3,
        fail_timeout: 10 * S,
    }
}

fn ok() -> ProbeOutcome {
    ProbeOutcome::Healthy {
        report: LoadReport::default(),
    }
}

fn load(cpu: Option<f32>, memory: Option<f32>, weight: Option<u32>) -> ProbeOutcome {
    ProbeOutcome::Healthy {
        report: LoadReport {
            cpu,
            memory,
            weight,
        },
    }
}

const FAIL: ProbeOutcome = ProbeOutcome::Unhealthy(FailReason::Timeout);
const DOWN: Option<Transition> = Some(Transition {
    from: Verdict::Up,
    to: Verdict::Down,
});
const UP: Option<Transition> = Some(Transition {
    from: Verdict::Down,
    to: Verdict::Up,
});

/// Runs one probe at `t` (started and finished at the same instant).
#[track_caller]
fn probe(h: &mut ServerHealth, t: Instant, outcome: ProbeOutcome) -> Option<Transition> {
    h.probe_started(t);
    h.probe_finished(t, outcome, NO_JITTER)
}

/// Applies `outcomes` one interval apart from `t0 + 10 s` and returns the
/// transitions seen, with the index of the probe that caused each.
fn script(
    h: &mut ServerHealth,
    t0: Instant,
    outcomes: &[ProbeOutcome],
) -> Vec<(usize, Transition)> {
    let mut seen = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let t = t0 + 10 * S * (i as u32 + 1);
        if let Some(tr) = probe(h, t, *outcome) {
            seen.push((i, tr));
        }
    }
    seen
}

// ---- verdict ----

#[test]
fn starts_up_and_usable() {
    let t0 = base();
    let h = ServerHealth::new(params(), 1, t0, 3 * S);
    assert_eq!(h.verdict(), Verdict::Up);
    assert!(h.is_usable(t0));
    assert_eq!(h.next_probe_at(), Some(t0 + 3 * S));
    assert_eq!(h.last_failure(), None);
    assert_eq!(h.counters(), HealthCounters::default());
}

#[test]
fn down_after_fall_consecutive_failures() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    let seen = script(&mut h, t0, &[FAIL, FAIL, ok(), FAIL, FAIL, FAIL, FAIL]);
    assert_eq!(seen, [(5, DOWN.unwrap())]);
    assert_eq!(h.verdict(), Verdict::Down);
    assert!(!h.is_usable(t0 + 100 * S));
    assert_eq!(h.last_failure(), Some(FailReason::Timeout));
    assert_eq!(
        (h.checks_ok(), h.checks_failed(), h.transitions()),
        (1, 6, 1)
    );
}

#[test]
fn up_after_rise_consecutive_successes() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    script(&mut h, t0, &[FAIL, FAIL, FAIL]);
    let t1 = t0 + 30 * S;
    let seen = script(&mut h, t1, &[ok(), FAIL, ok(), ok(), ok()]);
    assert_eq!(seen, [(3, UP.unwrap())]);
    assert!(h.is_usable(t1 + 50 * S));
    assert_eq!(h.transitions(), 2);
    // The last failure stays visible for diagnostics.
    assert_eq!(h.last_failure(), Some(FailReason::Timeout));
}

#[test]
fn zero_rise_and_fall_act_as_one() {
    let t0 = base();
    let p = HealthParams {
        rise: 0,
        fall: 0,
        ..params()
    };
    let mut h = ServerHealth::new(p, 1, t0, S);
    assert_eq!(probe(&mut h, t0 + S, FAIL), DOWN);
    assert_eq!(probe(&mut h, t0 + 2 * S, ok()), UP);
}

#[test]
fn fail_reason_is_recorded_and_displayed() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    probe(&mut h, t0, ProbeOutcome::Unhealthy(FailReason::Status(503)));
    assert_eq!(h.last_failure(), Some(FailReason::Status(503)));
    let shown: Vec<String> = [
        FailReason::Status(503),
        FailReason::JsonStatus,
        FailReason::BadResponse,
        FailReason::Timeout,
        FailReason::Refused,
        FailReason::Reset,
        FailReason::Closed,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        shown,
        [
            "HTTP 503",
            "json status not 200",
            "bad response",
            "timeout",
            "connection refused",
            "connection reset",
            "connection closed early"
        ]
    );
}

// ---- schedule ----

#[test]
fn one_probe_in_flight_then_next_after_interval_plus_jitter() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, 4 * S);
    let start = t0 + 4 * S;
    assert_eq!(h.probe_started(start), start + 2 * S);
    assert_eq!(h.next_probe_at(), None);
    assert_eq!(h.probe_deadline(), Some(start + 2 * S));
    let end = start + S;
    h.probe_finished(end, ok(), Duration::from_millis(300));
    assert_eq!(h.probe_deadline(), None);
    assert_eq!(
        h.next_probe_at(),
        Some(end + 10 * S + Duration::from_millis(300))
    );
}

#[test]
fn disabled_checks_schedule_nothing_and_force_up() {
    let t0 = base();
    let off = HealthParams {
        enabled: false,
        ..params()
    };
    assert_eq!(ServerHealth::new(off, 1, t0, S).next_probe_at(), None);
    let mut h = ServerHealth::new(params(), 1, t0, S);
    script(&mut h, t0, &[FAIL, FAIL, FAIL]);
    assert_eq!(h.set_params(off, 1), UP);
    assert!(h.is_usable(t0 + 40 * S));
    assert_eq!(h.next_probe_at(), None);
    // Re-enabling resumes the old schedule (due at once).
    assert_eq!(h.set_params(params(), 1), None);
    assert_eq!(h.next_probe_at(), Some(t0 + 40 * S));
}

#[test]
fn probe_in_flight_when_checks_are_disabled_is_ignored() {
    let t0 = base();
    let off = HealthParams {
        enabled: false,
        ..params()
    };
    let mut h = ServerHealth::new(params(), 1, t0, S);
    script(&mut h, t0, &[FAIL, FAIL]);
    h.probe_started(t0 + 30 * S);
    assert_eq!(h.set_params(off, 1), None);
    // The third failure would take it down, but checks are off now: it must
    // stay usable, as nothing would ever probe it back up.
    assert_eq!(h.probe_finished(t0 + 31 * S, FAIL, NO_JITTER), None);
    assert!(h.is_usable(t0 + 31 * S));
    assert_eq!(h.next_probe_at(), None);
    assert_eq!(h.checks_failed(), 2);
}

#[test]
fn reload_keeps_state() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    script(&mut h, t0, &[FAIL, FAIL]);
    let p = HealthParams {
        fall: 2,
        interval: 5 * S,
        ..params()
    };
    assert_eq!(h.set_params(p, 1), None);
    assert_eq!(h.verdict(), Verdict::Up);
    // The streak survived the reload: one more failure (3 >= 2) takes it down.
    assert_eq!(probe(&mut h, t0 + 30 * S, FAIL), DOWN);
    assert_eq!(h.next_probe_at(), Some(t0 + 35 * S));
}

// ---- passive ejection ----

#[test]
fn ejects_after_max_fails_within_fail_timeout() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    assert!(!h.on_passive_failure(t0));
    assert!(!h.on_passive_failure(t0 + 4 * S));
    assert!(h.on_passive_failure(t0 + 9 * S));
    assert!(!h.is_usable(t0 + 9 * S));
    assert!(h.is_ejected(t0 + 18 * S));
    assert_eq!(h.ejected_until(), Some(t0 + 19 * S));
    assert_eq!(h.ejections(), 1);
    // Failures while ejected are ignored (no second ejection, no new window).
    assert!(!h.on_passive_failure(t0 + 10 * S));
    assert_eq!(h.ejections(), 1);
    // The verdict is untouched: ejection is separate from active checks.
    assert_eq!(h.verdict(), Verdict::Up);
}

#[test]
fn ejection_ends_after_fail_timeout() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    for _ in 0..3 {
        h.on_passive_failure(t0);
    }
    assert!(!h.is_usable(t0 + 9 * S));
    assert!(h.is_usable(t0 + 10 * S));
    // A fresh window starts after the ejection.
    assert!(!h.on_passive_failure(t0 + 11 * S));
    assert!(h.is_usable(t0 + 11 * S));
}

#[test]
fn failures_spread_beyond_fail_timeout_do_not_eject() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    for i in 0..20u32 {
        // Two failures per 10 s window, windows start at t0, t0+10, ...
        assert!(!h.on_passive_failure(t0 + 5 * S * i), "failure {i}");
    }
    assert_eq!(h.ejections(), 0);
    assert!(h.is_usable(t0 + 100 * S));
}

#[test]
fn passive_success_restarts_the_count() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    h.on_passive_failure(t0);
    h.on_passive_failure(t0 + S);
    h.on_passive_success();
    assert!(!h.on_passive_failure(t0 + 2 * S));
    assert!(!h.on_passive_failure(t0 + 3 * S));
    assert!(h.on_passive_failure(t0 + 4 * S));
}

#[test]
fn passing_probe_ends_ejection_early_failing_one_does_not() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    for _ in 0..3 {
        h.on_passive_failure(t0);
    }
    probe(&mut h, t0 + S, FAIL);
    assert!(!h.is_usable(t0 + 2 * S));
    probe(&mut h, t0 + 2 * S, ok());
    assert!(h.is_usable(t0 + 2 * S));
    assert_eq!(h.ejected_until(), None);
}

#[test]
fn passive_off_when_max_fails_is_zero() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    for _ in 0..3 {
        h.on_passive_failure(t0);
    }
    let off = HealthParams {
        max_fails: 0,
        ..params()
    };
    h.set_params(off, 1);
    assert!(h.is_usable(t0), "turning passive off lifts the ejection");
    for _ in 0..100 {
        assert!(!h.on_passive_failure(t0));
    }
    assert!(h.is_usable(t0));
}

// ---- weights ----

#[test]
fn static_weight_without_reports() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 3, t0, S);
    assert_eq!(h.effective_weight(t0), 300);
    probe(&mut h, t0 + S, ok());
    assert_eq!(h.effective_weight(t0 + S), 300);
    assert_eq!(
        ServerHealth::new(params(), 0, t0, S).effective_weight(t0),
        100
    );
}

#[test]
fn cpu_and_memory_weights_are_smoothed() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 2, t0, S);
    let mut seen = Vec::new();
    for i in 1..=8u32 {
        // max(cpu, memory) = 50: raw = 2 * (100 - 50) = 100 units.
        let t = t0 + 10 * S * i;
        probe(&mut h, t, load(Some(30.0), Some(50.0), None));
        seen.push(h.effective_weight(t));
    }
    assert_eq!(seen, [150, 125, 112, 106, 103, 101, 100, 100]);
    // Only one of them reported: that one counts.
    probe(&mut h, t0 + 90 * S, load(None, Some(0.0), None));
    assert_eq!(h.effective_weight(t0 + 90 * S), 150);
    probe(&mut h, t0 + 100 * S, load(Some(75.0), None, None));
    assert_eq!(h.effective_weight(t0 + 100 * S), 100);
}

#[test]
fn reported_weight_wins_and_is_clamped() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    for i in 1..=20u32 {
        probe(&mut h, t0 + S * i, load(Some(99.0), None, Some(4)));
    }
    assert_eq!(h.effective_weight(t0 + 20 * S), 400);
    for i in 21..=60u32 {
        probe(&mut h, t0 + S * i, load(None, None, Some(5000)));
    }
    assert_eq!(
        h.effective_weight(t0 + 60 * S),
        MAX_REPORTED_WEIGHT * WEIGHT_SCALE
    );
}

#[test]
fn busy_server_keeps_a_floor_weight() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 5, t0, S);
    for i in 1..=20u32 {
        probe(&mut h, t0 + S * i, load(Some(100.0), Some(100.0), None));
    }
    assert_eq!(h.effective_weight(t0 + 20 * S), 50); // 10% of 500 units
    let mut light = ServerHealth::new(params(), 1, t0, S);
    for i in 1..=20u32 {
        probe(&mut light, t0 + S * i, load(None, None, Some(0)));
    }
    // A reported weight below the floor: max(1 * 100, 10% of 100).
    assert_eq!(light.effective_weight(t0 + 20 * S), 100);
}

#[test]
fn weights_fall_back_to_static_when_reports_stop() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 4, t0, S);
    for i in 1..=10u32 {
        probe(&mut h, t0 + S * i, load(Some(75.0), None, None));
    }
    let last = t0 + 10 * S;
    assert_eq!(h.effective_weight(last), 100);
    // Probes keep passing but carry no numbers: still fresh for 3 intervals.
    probe(&mut h, last + 10 * S, ok());
    assert_eq!(h.effective_weight(last + 29 * S), 100);
    assert_eq!(h.effective_weight(last + 30 * S), 400);
    // The next report starts the EWMA over from the static weight.
    probe(&mut h, last + 40 * S, load(Some(75.0), None, None));
    assert_eq!(h.effective_weight(last + 40 * S), 250);
}

#[test]
fn changed_static_weight_restarts_dynamic_weighting() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    probe(&mut h, t0 + S, load(None, None, Some(9)));
    assert_eq!(h.effective_weight(t0 + S), 500);
    h.set_params(params(), 2);
    assert_eq!(h.effective_weight(t0 + S), 200);
    h.set_params(params(), 2);
    assert_eq!(h.effective_weight(t0 + S), 200);
}

#[test]
fn huge_durations_do_not_overflow() {
    let t0 = base();
    let p = HealthParams {
        interval: Duration::MAX,
        timeout: Duration::MAX,
        fail_timeout: Duration::MAX,
        ..params()
    };
    let mut h = ServerHealth::new(p, u32::MAX, t0, Duration::MAX);
    assert!(h.probe_started(t0) > t0);
    probe(&mut h, t0, load(Some(10.0), None, None));
    assert!(h.effective_weight(t0) > 0);
    for _ in 0..3 {
        h.on_passive_failure(t0);
    }
    assert!(!h.is_usable(t0));
}

#[test]
fn spans_are_capped_at_one_year() {
    let t0 = base();
    let year = Duration::from_secs(365 * 24 * 3600);
    let p = HealthParams {
        interval: Duration::MAX,
        timeout: Duration::MAX,
        fail_timeout: Duration::MAX,
        ..params()
    };
    let mut h = ServerHealth::new(p, 1, t0, Duration::MAX);
    assert_eq!(h.next_probe_at(), Some(t0 + year));
    assert_eq!(h.probe_started(t0), t0 + year);
    assert_eq!(h.probe_deadline(), Some(t0 + year));
    h.probe_finished(t0, ok(), Duration::ZERO);
    assert_eq!(h.next_probe_at(), Some(t0 + year));
    for _ in 0..3 {
        h.on_passive_failure(t0);
    }
    assert_eq!(h.ejected_until(), Some(t0 + year));
}

#[test]
fn counters_count_each_event() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    assert_eq!(h.counters(), HealthCounters::default());
    assert_eq!((h.checks_ok(), h.checks_failed()), (0, 0));
    let seen = script(&mut h, t0, &[ok(), ok(), FAIL, FAIL, FAIL, ok(), ok()]);
    assert_eq!(seen.len(), 2);
    for _ in 0..3 {
        h.on_passive_failure(t0 + 100 * S);
    }
    let expected = HealthCounters {
        checks_ok: 4,
        checks_failed: 3,
        transitions: 2,
        ejections: 1,
    };
    assert_eq!(h.counters(), expected);
    assert_eq!(
        (
            h.checks_ok(),
            h.checks_failed(),
            h.transitions(),
            h.ejections()
        ),
        (4, 3, 2, 1)
    );
}

// ---- passive failures while ejected (panic mode ordering) ----

#[test]
fn failures_while_ejected_are_remembered_but_do_not_extend_the_ejection() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    assert_eq!(h.last_passive_failure(), None);
    for k in 0..3 {
        h.on_passive_failure(t0 + S * k);
    }
    assert!(h.is_ejected(t0 + 2 * S));
    assert_eq!(h.last_passive_failure(), Some(t0 + 2 * S));
    // Used anyway in panic mode and failing again: remembered, not re-ejected.
    assert!(!h.on_passive_failure(t0 + 5 * S));
    assert_eq!(h.last_passive_failure(), Some(t0 + 5 * S));
    assert_eq!(h.ejected_until(), Some(t0 + 12 * S));
    assert_eq!(h.ejections(), 1);
    // Passive checks off: nothing is recorded.
    let mut off = ServerHealth::new(
        HealthParams {
            max_fails: 0,
            ..params()
        },
        1,
        t0,
        S,
    );
    off.on_passive_failure(t0);
    assert_eq!(off.last_passive_failure(), None);
}

// ---- slow start ----

fn slow(span: Duration) -> ServerHealth {
    let mut h = ServerHealth::new(params(), 2, base(), S);
    h.set_slow_start(Some(span));
    h
}

#[test]
fn ramp_is_linear_from_ten_percent_to_full() {
    assert_eq!(ramp_permille(Duration::ZERO, 30 * S), 100);
    assert_eq!(ramp_permille(15 * S, 30 * S), 550);
    assert_eq!(ramp_permille(10 * S, 30 * S), 400);
    assert_eq!(ramp_permille(30 * S, 30 * S), 1000);
    assert_eq!(ramp_permille(3600 * S, 30 * S), 1000);
    assert_eq!(
        ramp_permille(Duration::from_nanos(1), Duration::from_nanos(1)),
        1000
    );
}

#[test]
fn no_ramp_at_start_up_or_with_slow_start_off() {
    let t0 = base();
    let h = slow(30 * S);
    assert_eq!(h.ramp_permille(t0), 1000, "start-up: full weight at once");
    assert_eq!(h.effective_weight(t0), 200);
    let mut off = ServerHealth::new(params(), 2, t0, S);
    off.begin_slow_start(t0);
    assert_eq!(off.effective_weight(t0 + S), 200, "slow start off");
    off.set_slow_start(Some(Duration::ZERO));
    assert_eq!(off.slow_start(), None, "0 is off");
}

#[test]
fn added_server_ramps_from_begin_slow_start() {
    let t0 = base();
    let mut h = slow(30 * S);
    h.begin_slow_start(t0);
    assert_eq!(h.effective_weight(t0), 20, "10% of 200 units");
    assert_eq!(h.effective_weight(t0 + 15 * S), 110);
    assert_eq!(h.effective_weight(t0 + 30 * S), 200);
    assert_eq!(h.effective_weight(t0 + 300 * S), 200);
}

#[test]
fn recovery_by_active_checks_starts_a_ramp() {
    let t0 = base();
    let mut h = slow(20 * S);
    let seen = script(&mut h, t0, &[FAIL, FAIL, FAIL, ok(), ok()]);
    assert_eq!(seen[1], (4, UP.unwrap()));
    let up_at = t0 + 50 * S;
    assert_eq!(h.ramp_permille(up_at), 100);
    assert_eq!(h.ramp_permille(up_at + 10 * S), 550);
    assert_eq!(h.ramp_permille(up_at + 20 * S), 1000);
    // A passing probe while Up (no transition) does not restart it.
    probe(&mut h, up_at + 30 * S, ok());
    assert_eq!(h.ramp_permille(up_at + 30 * S), 1000);
}

#[test]
fn end_of_ejection_starts_a_ramp_at_ejected_until() {
    let t0 = base();
    let mut h = slow(10 * S);
    for k in 0..3 {
        h.on_passive_failure(t0 + S * k);
    }
    let until = h.ejected_until().unwrap();
    assert!(!h.is_usable(until - S));
    assert_eq!(h.ramp_permille(until - S), 1000, "no ramp before it ends");
    assert_eq!(h.ramp_permille(until), 100);
    assert_eq!(h.ramp_permille(until + 5 * S), 550);
    assert_eq!(h.ramp_permille(until + 10 * S), 1000);
}

#[test]
fn ejection_ended_early_by_a_probe_ramps_from_the_probe() {
    let t0 = base();
    let mut h = slow(10 * S);
    for k in 0..3 {
        h.on_passive_failure(t0 + S * k);
    }
    probe(&mut h, t0 + 4 * S, ok());
    assert!(h.is_usable(t0 + 4 * S));
    assert_eq!(h.ramp_permille(t0 + 4 * S), 100);
    assert_eq!(h.ramp_permille(t0 + 9 * S), 550);
    // A passing probe without an ejection starts nothing.
    let mut fresh = slow(10 * S);
    probe(&mut fresh, t0 + 4 * S, ok());
    assert_eq!(fresh.ramp_permille(t0 + 4 * S), 1000);
}

#[test]
fn ramp_scales_dynamic_weights_and_never_reaches_zero() {
    let t0 = base();
    let mut h = ServerHealth::new(params(), 1, t0, S);
    h.set_slow_start(Some(10 * S));
    probe(&mut h, t0, load(None, None, Some(4)));
    let full = h.effective_weight(t0);
    h.begin_slow_start(t0);
    assert_eq!(h.effective_weight(t0), full / 10);
    let mut tiny = ServerHealth::new(params(), 1, t0, S);
    tiny.set_slow_start(Some(10 * S));
    for _ in 0..8 {
        probe(&mut tiny, t0, load(Some(100.0), None, None)); // down to the floor: 10 units
    }
    assert_eq!(tiny.effective_weight(t0), 10);
    tiny.begin_slow_start(t0);
    assert_eq!(tiny.effective_weight(t0), 1);
}
