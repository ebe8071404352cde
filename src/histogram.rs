//! The per-group response-time histogram (Prometheus buckets), recorded by the
//! exchange and exported by the admin endpoint. Pure: fixed size, no allocation.

/// Upper bounds (seconds) of the response-time histogram buckets.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A cumulative-on-export response-time histogram.
#[derive(Clone, Copy, Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    pub counts: [u64; BUCKETS.len() + 1],
    /// Sum of all observations, in seconds.
    pub sum: f64,
}

impl Histogram {
    /// Records one duration in seconds.
    pub fn observe(&mut self, secs: f64) {
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += secs;
    }
    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_upper_bounds_and_the_last_is_infinity() {
        let mut h = Histogram::default();
        h.observe(0.0005);
        h.observe(0.001); // on a bound: that bucket (le = "0.001")
        h.observe(0.3);
        h.observe(100.0);
        assert_eq!(h.counts[0], 2);
        assert_eq!(h.counts[8], 1);
        assert_eq!(h.counts[BUCKETS.len()], 1);
        assert_eq!(h.count(), 4);
        assert!((h.sum - 100.3015).abs() < 1e-9);
    }
}
