//! The last ten minutes, for the status page charts (pure: time is an argument).
//!
//! Per group and per server, a fixed ring of [`SAMPLES`] points, one every [`STEP`]:
//! requests per second, p50/p99 response time, open tunnels and errors. The reactor
//! fills [`History::readings`] with each server's cumulative counters (requests,
//! errors, the response-time histogram) and its open tunnels, and calls
//! [`History::sample`] when [`History::due`]; a point is the difference from the
//! previous reading, so nothing is recorded per request beyond the counters that
//! exist anyway. Percentiles come from the bucket differences of the histogram
//! (linear inside a bucket, as Prometheus' `histogram_quantile`). A group's point is
//! computed from the sum of its servers' readings.
//!
//! Memory is fixed once the servers are known: the rings are allocated at start and
//! when a reload adds a server, never while sampling. Rendering ([`History::points`],
//! [`History::live`]) reads the rings and may allocate.

use crate::histogram::{Histogram, BUCKETS};
use std::time::{Duration, Instant};

/// Points kept per series: ten minutes at [`STEP`].
pub const SAMPLES: usize = 120;
/// Time between two points.
pub const STEP: Duration = Duration::from_secs(5);

/// One server's cumulative counters and current gauges at a sampling time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    /// Requests sent to the server so far.
    pub requests: u64,
    /// Failed requests so far.
    pub errors: u64,
    /// Tunnels open now.
    pub tunnels: u64,
    /// Response times so far.
    pub latency: Histogram,
}

impl Reading {
    fn add(&mut self, r: &Reading) {
        self.requests += r.requests;
        self.errors += r.errors;
        self.tunnels += r.tunnels;
        for (a, b) in self.latency.counts.iter_mut().zip(r.latency.counts) {
            *a += b;
        }
        self.latency.sum += r.latency.sum;
    }
}

/// One chart point: what happened during one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    /// Requests per second.
    pub rps: f32,
    /// Median response time in ms; `None` without requests.
    pub p50_ms: Option<f32>,
    /// 99th percentile response time in ms; `None` without requests.
    pub p99_ms: Option<f32>,
    /// Tunnels open at the end of the interval.
    pub tunnels: u32,
    /// Failed requests during the interval.
    pub errors: u32,
}

/// Which series of a group: its total, or one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Of {
    /// The sum of the group's servers.
    Group,
    /// One server, by index.
    Server(usize),
}

struct Series {
    last: Reading,
    ring: Box<[Point]>,
}

impl Series {
    fn new(last: Reading) -> Series {
        Series {
            last,
            ring: vec![Point::default(); SAMPLES].into_boxed_slice(),
        }
    }
}

/// The rings of both groups.
pub struct History {
    step: Duration,
    next_at: Instant,
    last_at: Instant,
    /// Points written so far (at most `SAMPLES` are kept).
    len: usize,
    /// Per group: the total at index 0, server `s` at `1 + s`.
    series: [Vec<Series>; 2],
    /// Per group, per server: the reading the reactor fills before `sample`.
    readings: [Vec<Reading>; 2],
}

impl History {
    /// Empty rings for groups of `servers[g]` servers; the first point is due at
    /// `now + step`.
    pub fn new(now: Instant, step: Duration, servers: [usize; 2]) -> History {
        let mut h = History {
            step: step.max(Duration::from_millis(1)),
            next_at: now + step,
            last_at: now,
            len: 0,
            series: [Vec::new(), Vec::new()],
            readings: [Vec::new(), Vec::new()],
        };
        for (g, &n) in servers.iter().enumerate() {
            h.readings[g] = vec![Reading::default(); n];
            h.grow(g);
        }
        h
    }

    /// True when a point is due at `now` (one comparison: call every turn).
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_at
    }

    /// The readings to fill before [`History::sample`], one per server of each
    /// group: call with the groups' current server counts (a reload may have added
    /// servers, which allocates their rings once).
    pub fn readings(&mut self, servers: [usize; 2]) -> &mut [Vec<Reading>; 2] {
        for (g, &n) in servers.iter().enumerate() {
            self.readings[g].resize(n, Reading::default());
        }
        &mut self.readings
    }

    /// Records one point per series from the filled readings, at `now`.
    pub fn sample(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.last_at).as_secs_f64();
        let at = self.len % SAMPLES;
        for g in 0..2 {
            self.grow(g);
            let mut total = Reading::default();
            for (s, r) in self.readings[g].iter().enumerate() {
                total.add(r);
                let series = &mut self.series[g][1 + s];
                series.ring[at] = point(&series.last, r, secs);
                series.last = *r;
            }
            let series = &mut self.series[g][0];
            series.ring[at] = point(&series.last, &total, secs);
            series.last = total;
        }
        self.len += 1;
        self.last_at = now;
        // A loop that stalled for longer than a step does not catch up in a burst.
        let next = self.next_at + self.step;
        self.next_at = if next <= now { now + self.step } else { next };
    }

    /// The points of one series, oldest first (fewer than `SAMPLES` until the
    /// rings are full); empty for an unknown group or server.
    pub fn points(&self, g: usize, of: Of) -> impl Iterator<Item = Point> + '_ {
        let series = self.series(g, of);
        let n = self.len.min(SAMPLES);
        let start = self.len - n;
        (start..self.len).filter_map(move |k| series.map(|s| s.ring[k % SAMPLES]))
    }

    /// The interval in progress at `now`, from current readings (rendering only:
    /// `readings[s]` per server of group `g`, summed for `Of::Group`).
    pub fn live(&self, now: Instant, g: usize, of: Of, readings: &[Reading]) -> Point {
        let current = match of {
            Of::Group => readings.iter().fold(Reading::default(), |mut t, r| {
                t.add(r);
                t
            }),
            Of::Server(s) => readings.get(s).copied().unwrap_or_default(),
        };
        let last = self.series(g, of).map_or(current, |s| s.last);
        // At least a second: just after a point, a few requests would read as a spike.
        let secs = now.saturating_duration_since(self.last_at).as_secs_f64();
        point(&last, &current, secs.max(1.0))
    }

    /// Time between points.
    pub fn step(&self) -> Duration {
        self.step
    }

    fn series(&self, g: usize, of: Of) -> Option<&Series> {
        let i = match of {
            Of::Group => 0,
            Of::Server(s) => 1 + s,
        };
        self.series.get(g)?.get(i)
    }

    /// Rings for servers the readings know and the rings do not yet (start, reload).
    fn grow(&mut self, g: usize) {
        let want = 1 + self.readings[g].len();
        while self.series[g].len() < want {
            // A new server's counters start at zero: no spike at its first point.
            self.series[g].push(Series::new(Reading::default()));
        }
    }
}

/// The point between two readings `secs` apart.
fn point(before: &Reading, after: &Reading, secs: f64) -> Point {
    let requests = after.requests.saturating_sub(before.requests);
    let mut delta = [0u64; BUCKETS.len() + 1];
    for (d, (a, b)) in delta
        .iter_mut()
        .zip(after.latency.counts.iter().zip(before.latency.counts))
    {
        *d = a.saturating_sub(b);
    }
    Point {
        rps: if secs > 0.0 {
            (requests as f64 / secs) as f32
        } else {
            0.0
        },
        p50_ms: quantile(&delta, 0.5),
        p99_ms: quantile(&delta, 0.99),
        tunnels: u32::try_from(after.tunnels).unwrap_or(u32::MAX),
        errors: u32::try_from(after.errors.saturating_sub(before.errors)).unwrap_or(u32::MAX),
    }
}

/// The `q` quantile (0..=1) of per-bucket counts, in ms: linear inside the bucket
/// it falls in; the `+Inf` bucket reports the largest finite bound.
pub fn quantile(counts: &[u64; BUCKETS.len() + 1], q: f64) -> Option<f32> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (i, &n) in counts.iter().enumerate() {
        if n == 0 || ((below + n) as f64) < rank {
            below += n;
            continue;
        }
        let Some(&hi) = BUCKETS.get(i) else {
            break;
        };
        let lo = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
        let frac = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
        return Some(((lo + (hi - lo) * frac) * 1000.0) as f32);
    }
    Some((BUCKETS[BUCKETS.len() - 1] * 1000.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(requests: u64, errors: u64, tunnels: u64, secs: &[f64]) -> Reading {
        let mut latency = Histogram::default();
        for &s in secs {
            latency.observe(s);
        }
        Reading {
            requests,
            errors,
            tunnels,
            latency,
        }
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket() {
        let mut c = [0u64; BUCKETS.len() + 1];
        assert_eq!(quantile(&c, 0.5), None);
        // 100 observations in (1 ms, 2.5 ms]: the median sits half way.
        c[1] = 100;
        let near = |got: Option<f32>, want: f32| got.is_some_and(|g| (g - want).abs() < 1e-3);
        assert!(near(quantile(&c, 0.5), 1.75), "{:?}", quantile(&c, 0.5));
        assert!(near(quantile(&c, 0.99), 2.485));
        // One slow outlier among 100 moves p99 into (50 ms, 100 ms] only when it
        // is more than 1% of them.
        c[6] = 1;
        assert!(quantile(&c, 0.99).is_some_and(|p| p < 2.5));
        c[6] = 5;
        assert!(quantile(&c, 0.99).is_some_and(|p| p > 50.0 && p <= 100.0));
        // Beyond the last bound: the last bound.
        let mut inf = [0u64; BUCKETS.len() + 1];
        inf[BUCKETS.len()] = 3;
        assert_eq!(quantile(&inf, 0.5), Some(10_000.0));
    }

    #[test]
    fn points_are_differences_between_readings() {
        let t0 = Instant::now();
        let mut h = History::new(t0, STEP, [2, 0]);
        assert!(!h.due(t0 + Duration::from_secs(4)));
        assert!(h.due(t0 + STEP));
        let r = h.readings([2, 0]);
        r[0][0] = reading(50, 1, 0, &[0.002; 50]);
        r[0][1] = reading(10, 0, 0, &[0.2; 10]);
        h.sample(t0 + STEP);
        // Five seconds later: 25 more requests on server 0, none on server 1.
        let r = h.readings([2, 0]);
        r[0][0].requests = 75;
        for _ in 0..25 {
            r[0][0].latency.observe(0.0007);
        }
        r[0][0].errors = 4;
        h.sample(t0 + STEP * 2);
        let s0: Vec<Point> = h.points(0, Of::Server(0)).collect();
        assert_eq!(s0.len(), 2);
        assert_eq!(s0[0].rps, 10.0);
        assert_eq!((s0[1].rps, s0[1].errors), (5.0, 3));
        assert!(s0[1].p50_ms.is_some_and(|p| p <= 1.0), "{s0:?}");
        let s1: Vec<Point> = h.points(0, Of::Server(1)).collect();
        assert_eq!((s1[1].rps, s1[1].p50_ms), (0.0, None));
        let g: Vec<Point> = h.points(0, Of::Group).collect();
        assert_eq!((g[0].rps, g[0].errors), (12.0, 1));
        assert!(g[0].p99_ms.is_some_and(|p| p > 100.0), "{g:?}");
        assert_eq!(h.points(1, Of::Group).count(), 2);
        assert_eq!(h.points(0, Of::Server(9)).count(), 0);
    }

    #[test]
    fn the_ring_keeps_the_last_samples_oldest_first() {
        let t0 = Instant::now();
        let mut h = History::new(t0, STEP, [0, 1]);
        for k in 1..=(SAMPLES as u64 + 7) {
            h.readings([0, 1])[1][0].tunnels = k;
            h.sample(t0 + STEP * k as u32);
        }
        let t: Vec<u32> = h.points(1, Of::Server(0)).map(|p| p.tunnels).collect();
        assert_eq!(t.len(), SAMPLES);
        assert_eq!(t[0], 8);
        assert_eq!(t[SAMPLES - 1], SAMPLES as u32 + 7);
        assert_eq!(h.points(1, Of::Group).last().map(|p| p.tunnels), Some(127));
    }

    #[test]
    fn a_late_sample_does_not_burst_and_the_live_point_covers_the_rest() {
        let t0 = Instant::now();
        let mut h = History::new(t0, STEP, [1, 0]);
        h.readings([1, 0])[0][0].requests = 100;
        // The loop was away for 50 s: one point, rate over the real 50 s.
        h.sample(t0 + Duration::from_secs(50));
        assert_eq!(h.points(0, Of::Group).next().map(|p| p.rps), Some(2.0));
        assert!(!h.due(t0 + Duration::from_secs(54)));
        assert!(h.due(t0 + Duration::from_secs(55)));
        let now = t0 + Duration::from_secs(52);
        let current = [reading(110, 0, 0, &[])];
        assert_eq!(h.live(now, 0, Of::Server(0), &current).rps, 5.0);
        assert_eq!(h.live(now, 0, Of::Group, &current).rps, 5.0);
        // Just after a point, the interval in progress counts at least a second.
        let soon = t0 + Duration::from_millis(50_010);
        assert_eq!(h.live(soon, 0, Of::Group, &current).rps, 10.0);
    }

    #[test]
    fn a_server_added_by_a_reload_gets_a_ring() {
        let t0 = Instant::now();
        let mut h = History::new(t0, STEP, [1, 0]);
        h.sample(t0 + STEP);
        h.readings([2, 0])[0][1].requests = 10;
        h.sample(t0 + STEP * 2);
        let added: Vec<f32> = h.points(0, Of::Server(1)).map(|p| p.rps).collect();
        assert_eq!(added, [0.0, 2.0]);
    }
}
