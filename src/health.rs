//! Health state of one backend server (pure: no IO, no clock; `now` is an argument).
//!
//! The probe driver (reactor) asks [`ServerHealth::next_probe_at`] when to send a
//! `GET /healthCheck`, calls [`ServerHealth::probe_started`] when it connects,
//! arms the returned deadline, and reports the result with
//! [`ServerHealth::probe_finished`] (a body judged by [`evaluate_response`], or
//! `FailReason::Timeout` when the deadline fires first). Request sessions report
//! backend 5xx / connect errors with [`ServerHealth::on_passive_failure`] and good
//! responses with [`ServerHealth::on_passive_success`]. The balancer reads
//! [`ServerHealth::is_usable`] and [`ServerHealth::effective_weight`].
//!
//! # Active checks (the seed's `/healthCheck` contract)
//! - A server starts **Up**, so the proxy serves at once after start or reload;
//!   a dead server is found by its first `fall` probes.
//! - Up -> Down after `fall` consecutive failed probes; Down -> Up after `rise`
//!   consecutive passing probes (0 is read as 1). One probe at a time.
//! - The next probe is scheduled `interval + jitter` after the previous one
//!   *finished* (not started), so a slow server is never probed twice at once
//!   and probes cannot pile up. A changed `interval` applies from the next probe.
//! - With checks disabled the verdict is always Up and nothing is scheduled.
//!
//! # Passive checks (seed TODO 1)
//! `max_fails` failures (0 = passive checks off) within `fail_timeout` of the
//! first one, with no passive success in between, eject the server for
//! `fail_timeout`. The window restarts when it expires. A passing active probe
//! ends an ejection early. Failures reported while ejected do not extend the
//! ejection, but they are remembered: [`ServerHealth::last_passive_failure`]
//! orders ejected servers for the group's panic mode (issue 16, see
//! `group::admit`), which may send traffic to an ejected server anyway.
//!
//! # Slow start (issue 16)
//! With a slow-start span set ([`ServerHealth::set_slow_start`]), the effective
//! weight ramps linearly from [`SLOW_START_FLOOR_PERCENT`] (10%) to 100% over
//! the span after the server becomes usable again: a Down -> Up verdict (from
//! the probe that brings it up), the end of a passive ejection (at
//! `ejected_until`, or at the passing probe that ends it early), or an explicit
//! [`ServerHealth::begin_slow_start`] (a server added by a reload). A server
//! starts at full weight (start-up: every server starts together).
//! [`ServerHealth::ramp_permille`] is the current share, 1000 = full.
//!
//! # Dynamic weights (seed TODO 2)
//! Effective weights are integers in units of [`WEIGHT_SCALE`] per unit of
//! configured weight (static weight 1 = 100 units), so static weight 1 still
//! has resolution. Per passing probe whose report carries load information:
//! - `raw = clamp(weight, 1, 1000) * 100` when the report has `"weight"`
//!   (same scale as the configured weight, absolute, not relative to it);
//! - else `raw = static * (100 - max(cpu, memory))` with percentages clamped to
//!   0..=100 (only one of them present: that one), i.e. `static * 100` units
//!   scaled by the idle share of the busier resource;
//! - `raw` is clamped to at least `max(static * 100 / 10, 1)` units
//!   ([`WEIGHT_FLOOR_PERCENT`] = 10% of the static weight), so a busy server keeps
//!   getting some traffic and can show it recovered;
//! - `smoothed = EWMA(alpha = 0.5)` of `raw`, starting from the static weight and
//!   rounded towards `raw` so a constant `raw` is reached exactly.
//!
//! When no load report arrived for [`STALE_INTERVALS`] intervals (or ever),
//! the effective weight is the static weight (`static * 100`) and the next report
//! starts the EWMA again from there. A healthy probe without `cpu`/`memory`/
//! `weight` members is no load report.

use std::fmt;
use std::time::{Duration, Instant};

mod json;
pub use json::evaluate_response;

/// Effective-weight units per unit of configured (static) weight.
pub const WEIGHT_SCALE: u32 = 100;
/// Largest weight a server may report in its `"weight"` member.
pub const MAX_REPORTED_WEIGHT: u32 = 1000;
/// Dynamic weights never drop below this share of the static weight.
pub const WEIGHT_FLOOR_PERCENT: u32 = 10;
/// Load reports older than this many probe intervals are ignored.
pub const STALE_INTERVALS: u32 = 3;
/// Share of its weight a server gets when slow start begins.
pub const SLOW_START_FLOOR_PERCENT: u32 = 10;
/// Longest span added to an `Instant`, so absurd configured durations cannot
/// overflow `Instant + Duration` (which panics).
const MAX_SPAN: Duration = Duration::from_secs(365 * 24 * 3600);

/// Health-check settings of one server group.
#[derive(Clone, Copy, Debug)]
pub struct HealthParams {
    /// Active probes on/off (the seed's `enable_health_check`).
    pub enabled: bool,
    /// Pause between the end of one probe and the start of the next.
    pub interval: Duration,
    /// Probe deadline, from connect start to complete response.
    pub timeout: Duration,
    /// Consecutive passing probes that bring a Down server Up.
    pub rise: u32,
    /// Consecutive failed probes that take an Up server Down.
    pub fall: u32,
    /// Passive failures within `fail_timeout` that eject; 0 = passive off.
    pub max_fails: u32,
    /// Passive failure window and ejection length.
    pub fail_timeout: Duration,
}

impl Default for HealthParams {
    /// The `config::Group` defaults: checks off, interval 10 s (the seed's
    /// default), timeout 2 s, rise 2, fall 3, max_fails 3, fail_timeout 10 s.
    fn default() -> HealthParams {
        HealthParams {
            enabled: false,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
        }
    }
}

/// Active-check verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Serving (subject to passive ejection).
    Up,
    /// Failed `fall` probes in a row; not used until `rise` probes pass.
    Down,
}

/// Result of one active probe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProbeOutcome {
    /// HTTP 200 and an acceptable JSON `status`, with any load numbers found.
    Healthy {
        /// Load numbers from the body.
        report: LoadReport,
    },
    /// Why the probe failed.
    Unhealthy(FailReason),
}

/// Optional load numbers from a `/healthCheck` body.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct LoadReport {
    /// CPU use in percent, clamped to 0..=100.
    pub cpu: Option<f32>,
    /// Memory use in percent, clamped to 0..=100.
    pub memory: Option<f32>,
    /// Weight the server asks for (same scale as the configured weight).
    pub weight: Option<u32>,
}

impl LoadReport {
    fn has_load_info(&self) -> bool {
        self.cpu.is_some() || self.memory.is_some() || self.weight.is_some()
    }
}

/// Why a probe failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// HTTP status other than 200.
    Status(u16),
    /// JSON `"status"` member present and not 200 / "200".
    JsonStatus,
    /// The response was not parseable HTTP.
    BadResponse,
    /// No complete response before the probe deadline.
    Timeout,
    /// Connect refused.
    Refused,
    /// Connection reset.
    Reset,
    /// Peer closed before a complete response.
    Closed,
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::Status(code) => write!(f, "HTTP {code}"),
            FailReason::JsonStatus => f.write_str("json status not 200"),
            FailReason::BadResponse => f.write_str("bad response"),
            FailReason::Timeout => f.write_str("timeout"),
            FailReason::Refused => f.write_str("connection refused"),
            FailReason::Reset => f.write_str("connection reset"),
            FailReason::Closed => f.write_str("connection closed early"),
        }
    }
}

/// A verdict change, for logging and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Verdict before.
    pub from: Verdict,
    /// Verdict after.
    pub to: Verdict,
}

/// Monotonic counters of one server, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthCounters {
    /// Passing active probes.
    pub checks_ok: u64,
    /// Failed active probes.
    pub checks_failed: u64,
    /// Verdict changes.
    pub transitions: u64,
    /// Passive ejections.
    pub ejections: u64,
}

#[derive(Clone, Copy, Debug)]
enum Probe {
    Idle { next_at: Instant },
    InFlight { deadline: Instant },
}

#[derive(Clone, Copy, Debug)]
struct PassiveWindow {
    since: Instant,
    fails: u32,
}

/// One server's health: verdict, probe schedule, passive ejection, weight.
#[derive(Clone, Debug)]
pub struct ServerHealth {
    params: HealthParams,
    static_weight: u32,
    verdict: Verdict,
    ok_streak: u32,
    fail_streak: u32,
    probe: Probe,
    passive: Option<PassiveWindow>,
    ejected_until: Option<Instant>,
    /// EWMA of dynamic weights, in `WEIGHT_SCALE` units.
    smoothed: u32,
    last_report: Option<Instant>,
    counters: HealthCounters,
    last_failure: Option<FailReason>,
    /// Last passive failure (also those reported while ejected).
    last_passive_failure: Option<Instant>,
    /// Slow-start span; `None` = off.
    slow_start: Option<Duration>,
    /// Start of the latest ramp other than the end of an ejection by time.
    ramp_since: Option<Instant>,
}

/// `t + d`, with `d` capped at `MAX_SPAN`.
fn at(t: Instant, d: Duration) -> Instant {
    t + d.min(MAX_SPAN)
}

impl ServerHealth {
    /// Starts Up (so the proxy serves at once); the first probe is due at
    /// `now + first_probe_offset` (the caller spreads offsets with jitter).
    pub fn new(
        params: HealthParams,
        static_weight: u32,
        now: Instant,
        first_probe_offset: Duration,
    ) -> ServerHealth {
        let static_weight = static_weight.max(1);
        ServerHealth {
            params,
            static_weight,
            verdict: Verdict::Up,
            ok_streak: 0,
            fail_streak: 0,
            probe: Probe::Idle {
                next_at: at(now, first_probe_offset),
            },
            passive: None,
            ejected_until: None,
            smoothed: static_units(static_weight),
            last_report: None,
            counters: HealthCounters::default(),
            last_failure: None,
            last_passive_failure: None,
            slow_start: None,
            ramp_since: None,
        }
    }

    /// Applies reloaded settings, keeping verdict, streaks and schedule.
    /// Disabling checks forces the verdict Up (returned as a transition, since
    /// nothing would ever probe it back); `max_fails = 0` lifts an ejection;
    /// a changed static weight restarts dynamic weighting from it.
    pub fn set_params(&mut self, params: HealthParams, static_weight: u32) -> Option<Transition> {
        let static_weight = static_weight.max(1);
        if static_weight != self.static_weight {
            self.static_weight = static_weight;
            self.smoothed = static_units(static_weight);
            self.last_report = None;
        }
        if params.max_fails == 0 {
            self.passive = None;
            self.ejected_until = None;
        }
        self.params = params;
        let from = self.verdict;
        if !params.enabled {
            self.verdict = Verdict::Up;
            self.ok_streak = 0;
            self.fail_streak = 0;
        }
        self.transition_from(from)
    }

    /// When the next probe is due; `None` when checks are disabled or a probe
    /// is in flight.
    pub fn next_probe_at(&self) -> Option<Instant> {
        match self.probe {
            Probe::Idle { next_at } if self.params.enabled => Some(next_at),
            _ => None,
        }
    }

    /// Deadline of the probe in flight, if any (the reactor's timer for it).
    pub fn probe_deadline(&self) -> Option<Instant> {
        match self.probe {
            Probe::InFlight { deadline } => Some(deadline),
            Probe::Idle { .. } => None,
        }
    }

    /// Call when the probe connection is started; returns its deadline
    /// (`now + timeout`). Report a missed deadline as `FailReason::Timeout`.
    pub fn probe_started(&mut self, now: Instant) -> Instant {
        let deadline = at(now, self.params.timeout);
        self.probe = Probe::InFlight { deadline };
        deadline
    }

    /// Records a probe result and schedules the next probe at
    /// `now + interval + jitter`. Returns the verdict change, if any. A probe
    /// that finishes after checks were disabled (a reload) is ignored.
    pub fn probe_finished(
        &mut self,
        now: Instant,
        outcome: ProbeOutcome,
        jitter: Duration,
    ) -> Option<Transition> {
        self.probe = Probe::Idle {
            next_at: at(at(now, self.params.interval), jitter),
        };
        if !self.params.enabled {
            // Checks were disabled (reload) while this probe was in flight: its
            // verdict must not stick, since nothing would ever probe it back.
            return None;
        }
        let from = self.verdict;
        match outcome {
            ProbeOutcome::Healthy { report } => {
                self.counters.checks_ok += 1;
                self.ok_streak = self.ok_streak.saturating_add(1);
                self.fail_streak = 0;
                self.passive = None;
                if self.is_ejected(now) {
                    // Ended early by this probe: usable again from now.
                    self.ramp_since = Some(now);
                }
                self.ejected_until = None;
                self.absorb_report(now, report);
                if from == Verdict::Down && self.ok_streak >= self.params.rise.max(1) {
                    self.verdict = Verdict::Up;
                    self.ramp_since = Some(now);
                }
            }
            ProbeOutcome::Unhealthy(reason) => {
                self.counters.checks_failed += 1;
                self.fail_streak = self.fail_streak.saturating_add(1);
                self.ok_streak = 0;
                self.last_failure = Some(reason);
                if from == Verdict::Up && self.fail_streak >= self.params.fall.max(1) {
                    self.verdict = Verdict::Down;
                }
            }
        }
        self.transition_from(from)
    }

    /// Call when a proxied request to this server failed (5xx, connect error).
    /// Returns true when this failure ejects the server.
    pub fn on_passive_failure(&mut self, now: Instant) -> bool {
        let max_fails = self.params.max_fails;
        if max_fails == 0 {
            return false;
        }
        self.last_passive_failure = Some(now);
        if self.is_ejected(now) {
            return false;
        }
        let mut window = match self.passive {
            Some(w) if now < at(w.since, self.params.fail_timeout) => w,
            _ => PassiveWindow {
                since: now,
                fails: 0,
            },
        };
        window.fails += 1;
        if window.fails < max_fails {
            self.passive = Some(window);
            return false;
        }
        self.passive = None;
        self.ejected_until = Some(at(now, self.params.fail_timeout));
        self.counters.ejections += 1;
        true
    }

    /// Call when a proxied request to this server succeeded: the passive
    /// failure count starts over. Does not end an ejection.
    pub fn on_passive_success(&mut self) {
        self.passive = None;
    }

    /// Verdict Up and not ejected. Ejection ends `fail_timeout` after it began,
    /// or earlier on a passing probe.
    pub fn is_usable(&self, now: Instant) -> bool {
        self.verdict == Verdict::Up && !self.is_ejected(now)
    }

    /// Passively ejected at `now`.
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|until| now < until)
    }

    /// End of the current ejection, if one was set (may lie in the past).
    pub fn ejected_until(&self) -> Option<Instant> {
        self.ejected_until
    }

    /// Active-check verdict.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Last passive failure reported (while ejected too); `None` if none ever
    /// was or passive checks are off. Panic mode prefers the least recent.
    pub fn last_passive_failure(&self) -> Option<Instant> {
        self.last_passive_failure
    }

    /// Balancer weight in `WEIGHT_SCALE` units (see the module doc), scaled by
    /// the slow-start ramp ([`ServerHealth::ramp_permille`]); >= 1.
    pub fn effective_weight(&self, now: Instant) -> u32 {
        let base = if self.report_is_fresh(now) {
            self.smoothed
        } else {
            static_units(self.static_weight)
        };
        match self.ramp_permille(now) {
            1000 => base,
            p => (u64::from(base) * u64::from(p) / 1000).max(1) as u32,
        }
    }

    /// A load report is in effect at `now`: the effective weight follows it, not
    /// the configured weight alone (the status page says so).
    pub fn load_reported(&self, now: Instant) -> bool {
        self.report_is_fresh(now)
    }

    /// Sets the slow-start span (`None` = off), e.g. after a reload. A ramp in
    /// progress continues with the new span.
    pub fn set_slow_start(&mut self, span: Option<Duration>) {
        self.slow_start = span.filter(|d| !d.is_zero());
    }

    /// The slow-start span, if on.
    pub fn slow_start(&self) -> Option<Duration> {
        self.slow_start
    }

    /// Starts a slow-start ramp at `now`: call when a reload adds the server
    /// (or adds it back). Harmless with slow start off.
    pub fn begin_slow_start(&mut self, now: Instant) {
        self.ramp_since = Some(now);
    }

    /// Share of its weight the server gets at `now`, in per mille: 1000 with
    /// slow start off or complete, else `100 + 900 * elapsed / span`.
    pub fn ramp_permille(&self, now: Instant) -> u32 {
        let Some(span) = self.slow_start else {
            return 1000;
        };
        let ended = self.ejected_until.filter(|&t| t <= now);
        let Some(start) = self.ramp_since.max(ended) else {
            return 1000;
        };
        ramp_permille(now.saturating_duration_since(start), span)
    }

    /// Reason of the last failed probe.
    pub fn last_failure(&self) -> Option<FailReason> {
        self.last_failure
    }

    /// All counters at once.
    pub fn counters(&self) -> HealthCounters {
        self.counters
    }

    /// Passing active probes.
    pub fn checks_ok(&self) -> u64 {
        self.counters.checks_ok
    }

    /// Failed active probes.
    pub fn checks_failed(&self) -> u64 {
        self.counters.checks_failed
    }

    /// Verdict changes.
    pub fn transitions(&self) -> u64 {
        self.counters.transitions
    }

    /// Passive ejections.
    pub fn ejections(&self) -> u64 {
        self.counters.ejections
    }

    fn transition_from(&mut self, from: Verdict) -> Option<Transition> {
        if from == self.verdict {
            return None;
        }
        self.counters.transitions += 1;
        Some(Transition {
            from,
            to: self.verdict,
        })
    }

    fn report_is_fresh(&self, now: Instant) -> bool {
        let window = self.params.interval.saturating_mul(STALE_INTERVALS);
        self.last_report.is_some_and(|t| now < at(t, window))
    }

    fn absorb_report(&mut self, now: Instant, report: LoadReport) {
        if !report.has_load_info() {
            return;
        }
        let base = if self.report_is_fresh(now) {
            self.smoothed
        } else {
            static_units(self.static_weight)
        };
        let raw = raw_weight(self.static_weight, report).max(floor_units(self.static_weight));
        self.smoothed = ewma_half(base, raw).max(1);
        self.last_report = Some(now);
    }
}

/// Linear ramp from `SLOW_START_FLOOR_PERCENT` to 100%, in per mille.
fn ramp_permille(elapsed: Duration, span: Duration) -> u32 {
    if elapsed >= span {
        return 1000;
    }
    let floor = u128::from(SLOW_START_FLOOR_PERCENT * 10);
    let rest = (1000 - floor) * elapsed.as_nanos() / span.as_nanos().max(1);
    (floor + rest) as u32
}

fn static_units(static_weight: u32) -> u32 {
    static_weight.saturating_mul(WEIGHT_SCALE)
}

fn floor_units(static_weight: u32) -> u32 {
    (u64::from(static_units(static_weight)) * u64::from(WEIGHT_FLOOR_PERCENT) / 100).max(1) as u32
}

/// Unsmoothed dynamic weight of one report (caller checked it has load info).
fn raw_weight(static_weight: u32, report: LoadReport) -> u32 {
    if let Some(w) = report.weight {
        return w.clamp(1, MAX_REPORTED_WEIGHT) * WEIGHT_SCALE;
    }
    let busy = match (report.cpu, report.memory) {
        (Some(c), Some(m)) => c.max(m),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => 0.0,
    };
    let idle = f64::from(100.0 - busy.clamp(0.0, 100.0));
    let units = f64::from(static_weight) * f64::from(WEIGHT_SCALE) * idle / 100.0;
    // `as` saturates for f64 -> u32, and `units` is finite and >= 0 here.
    units.round() as u32
}

/// EWMA with alpha 0.5, rounded towards `sample` so it converges exactly.
fn ewma_half(prev: u32, sample: u32) -> u32 {
    if sample >= prev {
        prev + (sample - prev).div_ceil(2)
    } else {
        prev - (prev - sample).div_ceil(2)
    }
}

#[cfg(test)]
mod tests;
