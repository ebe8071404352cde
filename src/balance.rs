//! Backend selection for one server group (pure: no IO, no clock).
//!
//! The reactor builds one [`Candidate`] per configured server on every pick
//! (`usable` from health, `weight` from [`crate::health::ServerHealth::effective_weight`],
//! `load` = active requests + open tunnels) and asks [`Balancer::pick`] for an
//! index into that slice. Randomness comes from the `rand::Rng` handed in, so
//! tests use a seeded `SmallRng` and every sequence is reproducible.
//!
//! Contract shared by every algorithm:
//! - only candidates with `usable == true` are ever returned; `None` means no
//!   candidate is usable (or the slice is empty);
//! - `pick` does not allocate. The smooth-WRR state is a `Vec` sized once by
//!   [`Balancer::new`] / [`Balancer::set_algorithm`]; if a caller ever passes a
//!   slice of another length, the state is resized (and reset) once;
//! - a usable candidate with `weight == 0` is treated as weight 1.
//!
//! Algorithms:
//! - `Random`: uniform among usable candidates.
//! - `RoundRobin`: a cursor walks the server list cyclically and skips unusable
//!   servers; it always resumes after the last server it returned, so when the
//!   usable set changes no server is favoured or starved.
//! - `WeightedRoundRobin`: nginx's smooth weighted round-robin over usable
//!   candidates: every usable server's `current += weight`, the largest
//!   `current` wins (first index on ties), and the winner's `current -= total`.
//!   Weights 5,1,1 give the cycle `a a b a c a a`. Unusable servers keep their
//!   `current` untouched, as in nginx.
//! - `LeastConnections`: minimum `load`; among equal loads the higher `weight`
//!   wins; remaining ties are broken by the round-robin cursor, so idle servers
//!   take turns instead of index 0 taking everything.
//! - `PowerOfTwo`: two distinct usable candidates drawn uniformly at random, the
//!   one with the lower `load / weight` wins (compared as `load_a * weight_b`
//!   vs `load_b * weight_a` in `u64`, no division); on equal ratios the first
//!   draw wins (it is already random). A single usable candidate is returned
//!   directly.
//!
//! Slow start (issue 16): a candidate whose `ramp` is below 1000 is ramping up
//! after it became usable again; its `weight` already carries the ramp (so
//! smooth WRR needs nothing else). Load-based choices must not hand every new
//! connection to a server just because it has none yet:
//! - `LeastConnections` compares `(load + 1) / ramp` (the load after placing
//!   this connection, per share of full weight) instead of `load`: identical to
//!   comparing `load` when nobody ramps, and a server at 10% takes a connection
//!   only while its load is under a tenth of the others';
//! - `PowerOfTwo` compares `(load + 1) / weight` when either of the two ramps
//!   (else `load / weight` as before), for the same reason.

use rand::Rng;

pub use crate::config::Algorithm;

/// One server as seen by the balancer at pick time.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    /// Health verdict is Up and the server is not passively ejected.
    pub usable: bool,
    /// Effective weight (relative units; >= 1 when usable, 0 is read as 1).
    pub weight: u32,
    /// Active requests + open tunnels.
    pub load: u32,
    /// Slow-start share of its weight in per mille: 1000 = full (no ramp);
    /// 0 is read as 1.
    pub ramp: u32,
}

/// Full weight: no slow-start ramp in progress.
pub const FULL_RAMP: u32 = 1000;

impl Candidate {
    fn ramp(&self) -> u64 {
        u64::from(self.ramp.clamp(1, FULL_RAMP))
    }
}

/// Selection state of one server group.
#[derive(Debug)]
pub struct Balancer {
    algorithm: Algorithm,
    /// Index at which the next round-robin / least-connections scan starts.
    cursor: usize,
    /// Smooth-WRR `current` weights, one per server.
    current: Vec<i64>,
}

impl Balancer {
    /// Creates the state for a group of `servers` servers.
    pub fn new(algorithm: Algorithm, servers: usize) -> Balancer {
        Balancer {
            algorithm,
            cursor: 0,
            current: vec![0; servers],
        }
    }

    /// Applies a reloaded configuration. Resets the rotation and the smooth-WRR
    /// state (the server list may have changed meaning); reuses the allocation.
    pub fn set_algorithm(&mut self, a: Algorithm, servers: usize) {
        self.algorithm = a;
        self.cursor = 0;
        self.current.clear();
        self.current.resize(servers, 0);
    }

    /// The algorithm in use.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Picks among `candidates[i].usable` only; `None` when none is usable.
    /// Call once per request or tunnel to place. No allocation.
    pub fn pick(&mut self, candidates: &[Candidate], rng: &mut impl Rng) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        match self.algorithm {
            Algorithm::Random => pick_random(candidates, rng),
            Algorithm::RoundRobin => self.pick_round_robin(candidates),
            Algorithm::WeightedRoundRobin => self.pick_smooth_wrr(candidates),
            Algorithm::LeastConnections => self.pick_least_connections(candidates),
            Algorithm::PowerOfTwo => pick_power_of_two(candidates, rng),
        }
    }

    fn pick_round_robin(&mut self, candidates: &[Candidate]) -> Option<usize> {
        let n = candidates.len();
        let start = self.cursor % n;
        let chosen = (0..n)
            .map(|step| (start + step) % n)
            .find(|&i| candidates[i].usable)?;
        self.cursor = (chosen + 1) % n;
        Some(chosen)
    }

    fn pick_smooth_wrr(&mut self, candidates: &[Candidate]) -> Option<usize> {
        if self.current.len() != candidates.len() {
            // Only when the caller's server count disagrees with the last reload.
            self.current.clear();
            self.current.resize(candidates.len(), 0);
        }
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for (i, c) in candidates.iter().enumerate() {
            if !c.usable {
                continue;
            }
            let w = i64::from(c.weight.max(1));
            self.current[i] += w;
            total += w;
            let better = match best {
                None => true,
                Some(b) => self.current[i] > self.current[b],
            };
            if better {
                best = Some(i);
            }
        }
        let best = best?;
        self.current[best] -= total;
        Some(best)
    }

    fn pick_least_connections(&mut self, candidates: &[Candidate]) -> Option<usize> {
        let n = candidates.len();
        let start = self.cursor % n;
        let mut best: Option<usize> = None;
        for i in (0..n).map(|step| (start + step) % n) {
            let c = candidates[i];
            if !c.usable {
                continue;
            }
            let better = match best {
                None => true,
                Some(b) => {
                    let b = candidates[b];
                    // (c.load + 1) / c.ramp vs (b.load + 1) / b.ramp, without division.
                    let lc = (u64::from(c.load) + 1) * b.ramp();
                    let lb = (u64::from(b.load) + 1) * c.ramp();
                    lc < lb || (lc == lb && c.weight.max(1) > b.weight.max(1))
                }
            };
            if better {
                best = Some(i);
            }
        }
        let best = best?;
        self.cursor = (best + 1) % n;
        Some(best)
    }
}

/// Number of usable candidates.
fn usable_count(candidates: &[Candidate]) -> usize {
    candidates.iter().filter(|c| c.usable).count()
}

/// Index of the `nth` (0-based) usable candidate.
fn nth_usable(candidates: &[Candidate], nth: usize) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.usable)
        .nth(nth)
        .map(|(i, _)| i)
}

fn pick_random(candidates: &[Candidate], rng: &mut impl Rng) -> Option<usize> {
    match usable_count(candidates) {
        0 => None,
        k => nth_usable(candidates, rng.gen_range(0..k)),
    }
}

fn pick_power_of_two(candidates: &[Candidate], rng: &mut impl Rng) -> Option<usize> {
    let k = usable_count(candidates);
    match k {
        0 => return None,
        1 => return nth_usable(candidates, 0),
        _ => {}
    }
    // Two distinct ranks: draw the second from k-1 slots and skip over the first.
    let first = rng.gen_range(0..k);
    let mut second = rng.gen_range(0..k - 1);
    if second >= first {
        second += 1;
    }
    let a = nth_usable(candidates, first)?;
    let b = nth_usable(candidates, second)?;
    let (ca, cb) = (candidates[a], candidates[b]);
    // A ramping server must not win every draw merely by having no load yet.
    let plus = u64::from(ca.ramp < FULL_RAMP || cb.ramp < FULL_RAMP);
    // load_a / weight_a > load_b / weight_b, without division.
    let lhs = (u64::from(ca.load) + plus) * u64::from(cb.weight.max(1));
    let rhs = (u64::from(cb.load) + plus) * u64::from(ca.weight.max(1));
    Some(if lhs > rhs { b } else { a })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    const PICKS: usize = 100_000;
    const ALL: [Algorithm; 5] = [
        Algorithm::Random,
        Algorithm::RoundRobin,
        Algorithm::WeightedRoundRobin,
        Algorithm::LeastConnections,
        Algorithm::PowerOfTwo,
    ];

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(0x5eed_ba1a)
    }

    fn up(weight: u32, load: u32) -> Candidate {
        Candidate {
            usable: true,
            weight,
            load,
            ramp: FULL_RAMP,
        }
    }

    fn down() -> Candidate {
        Candidate {
            usable: false,
            weight: 1,
            load: 0,
            ramp: FULL_RAMP,
        }
    }

    /// A usable candidate ramping at `permille` of its full `weight`: the
    /// weight handed in is already scaled, as `Group::pick` does.
    fn ramping(full_weight: u32, load: u32, permille: u32) -> Candidate {
        Candidate {
            usable: true,
            weight: (full_weight * permille / 1000).max(1),
            load,
            ramp: permille,
        }
    }

    /// Runs `picks` picks over a fixed candidate set and counts per index.
    #[track_caller]
    fn histogram(alg: Algorithm, cands: &[Candidate], picks: usize) -> Vec<usize> {
        let mut b = Balancer::new(alg, cands.len());
        let mut r = rng();
        let mut counts = vec![0; cands.len()];
        for _ in 0..picks {
            let i = b.pick(cands, &mut r).expect("a usable candidate exists");
            counts[i] += 1;
        }
        counts
    }

    #[track_caller]
    fn assert_share(counts: &[usize], i: usize, expected: f64, tolerance: f64) {
        let total: usize = counts.iter().sum();
        let share = counts[i] as f64 / total as f64;
        assert!(
            (share - expected).abs() <= tolerance,
            "server {i}: share {share:.4}, expected {expected:.4} ± {tolerance} ({counts:?})"
        );
    }

    #[track_caller]
    fn sequence(b: &mut Balancer, cands: &[Candidate], n: usize) -> Vec<usize> {
        let mut r = rng();
        (0..n).map(|_| b.pick(cands, &mut r).unwrap()).collect()
    }

    // ---- contract shared by all algorithms ----

    #[test]
    fn none_when_nothing_usable_or_empty() {
        let mut r = rng();
        for alg in ALL {
            let mut b = Balancer::new(alg, 3);
            assert_eq!(b.pick(&[down(), down(), down()], &mut r), None, "{alg:?}");
            assert_eq!(b.pick(&[], &mut r), None, "{alg:?}");
        }
    }

    #[test]
    fn unusable_never_picked() {
        let cands = [down(), up(5, 0), down(), up(1, 3), down()];
        for alg in ALL {
            let counts = histogram(alg, &cands, PICKS);
            assert_eq!(counts[0] + counts[2] + counts[4], 0, "{alg:?}: {counts:?}");
        }
    }

    #[test]
    fn single_usable_always_picked() {
        let cands = [down(), down(), up(1, 50)];
        for alg in ALL {
            assert_eq!(histogram(alg, &cands, 1000)[2], 1000, "{alg:?}");
        }
    }

    #[test]
    fn zero_weight_is_read_as_one() {
        let cands = [up(0, 0), up(0, 0)];
        for alg in ALL {
            let counts = histogram(alg, &cands, 1000);
            assert!(counts[0] > 0 && counts[1] > 0, "{alg:?}: {counts:?}");
        }
    }

    #[test]
    fn slice_longer_than_configured_is_handled() {
        let cands = [up(1, 0), up(1, 0), up(1, 0), up(1, 0)];
        for alg in ALL {
            let mut b = Balancer::new(alg, 2);
            let mut r = rng();
            for _ in 0..100 {
                assert!(b.pick(&cands, &mut r).unwrap() < 4);
            }
        }
    }

    // ---- random ----

    #[test]
    fn random_is_uniform_within_two_percent() {
        let cands = [up(1, 0), up(9, 0), down(), up(1, 100)];
        let counts = histogram(Algorithm::Random, &cands, PICKS);
        for i in [0, 1, 3] {
            assert_share(&counts, i, 1.0 / 3.0, 0.02);
        }
    }

    // ---- round-robin ----

    #[test]
    fn round_robin_cycles_in_order() {
        let cands = [up(1, 0), up(7, 9), up(1, 0)];
        let mut b = Balancer::new(Algorithm::RoundRobin, 3);
        assert_eq!(sequence(&mut b, &cands, 7), [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn round_robin_skips_unusable_and_is_exact() {
        let cands = [up(1, 0), down(), up(1, 0), up(1, 0)];
        let mut b = Balancer::new(Algorithm::RoundRobin, 4);
        assert_eq!(sequence(&mut b, &cands, 6), [0, 2, 3, 0, 2, 3]);
        let counts = histogram(Algorithm::RoundRobin, &cands, 99_999);
        assert_eq!(counts, [33_333, 0, 33_333, 33_333]);
    }

    #[test]
    fn round_robin_stays_fair_when_usable_set_changes() {
        let mut b = Balancer::new(Algorithm::RoundRobin, 4);
        let mut r = rng();
        let mut cands = [up(1, 0); 4];
        assert_eq!(b.pick(&cands, &mut r), Some(0));
        assert_eq!(b.pick(&cands, &mut r), Some(1));
        cands[2].usable = false; // the next in line goes down: skip to 3, not back to 0
        assert_eq!(b.pick(&cands, &mut r), Some(3));
        assert_eq!(b.pick(&cands, &mut r), Some(0));
        cands[2].usable = true; // it comes back and takes its turn in order
        assert_eq!(b.pick(&cands, &mut r), Some(1));
        assert_eq!(b.pick(&cands, &mut r), Some(2));
        cands[0].usable = false; // the one the cursor wraps to goes down
        assert_eq!(b.pick(&cands, &mut r), Some(3));
        assert_eq!(b.pick(&cands, &mut r), Some(1));
    }

    // ---- smooth weighted round-robin ----

    #[test]
    fn smooth_wrr_matches_nginx_sequence() {
        let cands = [up(5, 0), up(1, 0), up(1, 0)];
        let mut b = Balancer::new(Algorithm::WeightedRoundRobin, 3);
        let cycle = [0, 0, 1, 0, 2, 0, 0];
        let seq = sequence(&mut b, &cands, 21);
        for chunk in seq.chunks(7) {
            assert_eq!(chunk, cycle);
        }
    }

    #[test]
    fn smooth_wrr_shares_are_exact() {
        let cands = [up(5, 0), up(1, 0), up(1, 0)];
        let counts = histogram(Algorithm::WeightedRoundRobin, &cands, 70_000);
        assert_eq!(counts, [50_000, 10_000, 10_000]);
        // Effective weights from health are in units of static * 100.
        let cands = [up(300, 0), up(200, 0), down(), up(100, 0)];
        let counts = histogram(Algorithm::WeightedRoundRobin, &cands, 60_000);
        assert_eq!(counts, [30_000, 20_000, 0, 10_000]);
    }

    #[test]
    fn smooth_wrr_redistributes_when_a_server_goes_down() {
        let mut b = Balancer::new(Algorithm::WeightedRoundRobin, 3);
        let mut r = rng();
        let mut cands = [up(5, 0), up(1, 0), up(1, 0)];
        for _ in 0..3 {
            b.pick(&cands, &mut r);
        }
        cands[0].usable = false;
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[b.pick(&cands, &mut r).unwrap()] += 1;
        }
        // As in nginx, the `current` values left over from before the change
        // skew the next few picks; the skew is bounded by the total weight.
        assert_eq!(counts[0], 0);
        assert!(counts[1].abs_diff(5_000) <= 7, "{counts:?}");
        // Once the server is back the exact 5:1:1 shares resume.
        cands[0].usable = true;
        let mut counts = [0usize; 3];
        for _ in 0..70_000 {
            counts[b.pick(&cands, &mut r).unwrap()] += 1;
        }
        assert!(counts[0].abs_diff(50_000) <= 7, "{counts:?}");
        assert!(counts[1].abs_diff(10_000) <= 7, "{counts:?}");
    }

    // ---- least connections ----

    #[test]
    fn least_connections_prefers_least_loaded() {
        let cands = [up(1, 4), up(1, 2), up(10, 3), down()];
        let mut b = Balancer::new(Algorithm::LeastConnections, 4);
        assert_eq!(sequence(&mut b, &cands, 5), [1; 5]);
    }

    #[test]
    fn least_connections_ties_go_to_higher_weight() {
        let cands = [up(1, 2), up(3, 2), up(2, 2)];
        let mut b = Balancer::new(Algorithm::LeastConnections, 3);
        assert_eq!(sequence(&mut b, &cands, 4), [1; 4]);
    }

    #[test]
    fn least_connections_full_ties_rotate() {
        let cands = [up(1, 0), up(1, 0), down(), up(1, 0)];
        let mut b = Balancer::new(Algorithm::LeastConnections, 4);
        assert_eq!(sequence(&mut b, &cands, 6), [0, 1, 3, 0, 1, 3]);
    }

    #[test]
    fn least_connections_tracks_changing_load() {
        // Simulate the reactor: each pick opens a request on the chosen server.
        let mut cands = [up(1, 0), up(1, 0), up(1, 0)];
        let mut b = Balancer::new(Algorithm::LeastConnections, 3);
        let mut r = rng();
        for _ in 0..30 {
            let i = b.pick(&cands, &mut r).unwrap();
            cands[i].load += 1;
        }
        assert!(cands.iter().all(|c| c.load == 10), "{cands:?}");
    }

    // ---- power of two choices ----

    #[test]
    fn p2c_favours_less_loaded_statistically() {
        // The least loaded wins whenever it is drawn (2 of 3 pairs), the middle
        // one only against the most loaded (1 of 3), the most loaded never.
        let cands = [up(1, 0), up(1, 5), up(1, 10)];
        let counts = histogram(Algorithm::PowerOfTwo, &cands, PICKS);
        assert_share(&counts, 0, 2.0 / 3.0, 0.02);
        assert_share(&counts, 1, 1.0 / 3.0, 0.02);
        assert_eq!(counts[2], 0);
    }

    #[test]
    fn p2c_compares_load_per_weight() {
        // 10/4 = 2.5 beats 3/1 = 3: the heavier server wins despite more load.
        let cands = [up(1, 3), up(4, 10)];
        assert_eq!(histogram(Algorithm::PowerOfTwo, &cands, 1000), [0, 1000]);
    }

    #[test]
    fn p2c_with_equal_loads_is_uniform() {
        let cands = [up(1, 1), down(), up(1, 1), up(1, 1), up(1, 1)];
        let counts = histogram(Algorithm::PowerOfTwo, &cands, PICKS);
        for i in [0, 2, 3, 4] {
            assert_share(&counts, i, 0.25, 0.02);
        }
    }

    #[test]
    fn p2c_draws_two_distinct_servers() {
        // With two usable servers the pair is always both, so the idle one
        // must win every time (a repeated draw would let the busy one win).
        let cands = [up(1, 100), down(), up(1, 0)];
        assert_eq!(histogram(Algorithm::PowerOfTwo, &cands, 10_000)[2], 10_000);
    }

    // ---- reload ----

    #[test]
    fn set_algorithm_switches_and_resets() {
        let cands = [up(5, 0), up(1, 0), up(1, 0)];
        let mut b = Balancer::new(Algorithm::RoundRobin, 3);
        assert_eq!(sequence(&mut b, &cands, 2), [0, 1]);
        b.set_algorithm(Algorithm::WeightedRoundRobin, 3);
        assert_eq!(b.algorithm(), Algorithm::WeightedRoundRobin);
        assert_eq!(sequence(&mut b, &cands, 7), [0, 0, 1, 0, 2, 0, 0]);
        b.set_algorithm(Algorithm::RoundRobin, 3);
        assert_eq!(sequence(&mut b, &cands, 2), [0, 1]);
    }

    #[test]
    fn cursor_stays_within_the_slice_after_a_wrap() {
        // After the last server is picked the rotation resumes at index 0, also when
        // the next slice is longer (a caller disagreeing with the last reload).
        for alg in [Algorithm::RoundRobin, Algorithm::LeastConnections] {
            let mut b = Balancer::new(alg, 3);
            assert_eq!(sequence(&mut b, &[up(1, 0); 3], 3), [0, 1, 2], "{alg:?}");
            assert_eq!(sequence(&mut b, &[up(1, 0); 4], 4), [0, 1, 2, 3], "{alg:?}");
        }
    }

    #[test]
    fn p2c_equal_ratios_keep_the_first_draw() {
        // load/weight is 1 everywhere (compared without division): the first draw wins.
        let cands = [up(2, 2), up(1, 1), down(), up(4, 4)];
        let mut b = Balancer::new(Algorithm::PowerOfTwo, 4);
        let mut r = rng();
        for _ in 0..100 {
            let first = r.clone().gen_range(0..3);
            let picked = b.pick(&cands, &mut r).unwrap();
            assert_eq!(Some(picked), nth_usable(&cands, first));
        }
    }

    // ---- slow start ----

    /// Simulates placing long-lived connections (tunnels) one at a time: each
    /// pick adds one to the chosen server's load. Returns the final loads.
    fn place(alg: Algorithm, cands: &mut [Candidate], n: usize) -> Vec<u32> {
        let mut b = Balancer::new(alg, cands.len());
        let mut r = rng();
        for _ in 0..n {
            let i = b.pick(cands, &mut r).unwrap();
            cands[i].load += 1;
        }
        cands.iter().map(|c| c.load).collect()
    }

    #[test]
    fn ramping_server_gets_its_reduced_share_in_every_weighted_algorithm() {
        // Two old servers with 100 tunnels each and a new one at 10% of the same
        // weight. Placing 300 more: a full-weight newcomer would take far more
        // than a third (it starts empty); ramping, it takes about its share of
        // 0.1 / 2.1 of the total, not the lion's share.
        for alg in [
            Algorithm::WeightedRoundRobin,
            Algorithm::LeastConnections,
            Algorithm::PowerOfTwo,
        ] {
            let mut cands = [up(100, 100), up(100, 100), ramping(100, 0, 100)];
            let loads = place(alg, &mut cands, 300);
            let new = loads[2];
            assert!((10..=30).contains(&new), "{alg:?}: {loads:?}");
            let mut full = [up(100, 100), up(100, 100), up(100, 0)];
            let loads_full = place(alg, &mut full, 300);
            assert!(
                loads_full[2] > 3 * new,
                "{alg:?}: {loads_full:?} vs {loads:?}"
            );
        }
    }

    #[test]
    fn smooth_wrr_share_follows_the_ramp_exactly() {
        // 10% of 100 units = 10 against 100 + 100: 10 of every 210 picks.
        let cands = [up(100, 0), up(100, 0), ramping(100, 0, 100)];
        let counts = histogram(Algorithm::WeightedRoundRobin, &cands, 21_000);
        assert_eq!(counts, [10_000, 10_000, 1_000]);
        // Half-way (550 per mille): 55 of 255.
        let cands = [up(100, 0), up(100, 0), ramping(100, 0, 550)];
        let counts = histogram(Algorithm::WeightedRoundRobin, &cands, 25_500);
        assert_eq!(counts, [10_000, 10_000, 5_500]);
    }

    #[test]
    fn least_connections_ramping_server_takes_a_connection_only_below_its_share() {
        // (load + 1) / ramp: at 10% with 0 load it counts as 10, so it wins over
        // loads of 10 and more only (ties go to the higher weight: the old one).
        let mut b = Balancer::new(Algorithm::LeastConnections, 2);
        let mut r = rng();
        assert_eq!(b.pick(&[up(100, 9), ramping(100, 0, 100)], &mut r), Some(0));
        assert_eq!(
            b.pick(&[up(100, 10), ramping(100, 0, 100)], &mut r),
            Some(1)
        );
        assert_eq!(
            b.pick(&[up(100, 19), ramping(100, 1, 100)], &mut r),
            Some(0)
        );
        assert_eq!(
            b.pick(&[up(100, 20), ramping(100, 1, 100)], &mut r),
            Some(1)
        );
        // Full ramp on both: plain least-connections.
        assert_eq!(
            b.pick(&[up(100, 1), ramping(100, 0, 1000)], &mut r),
            Some(1)
        );
    }

    #[test]
    fn p2c_ramping_server_does_not_win_just_by_being_empty() {
        // Without the +1 an empty server wins every draw whatever its weight.
        let cands = [up(100, 5), ramping(100, 0, 100)];
        assert_eq!(histogram(Algorithm::PowerOfTwo, &cands, 100), [100, 0]);
        // (0 + 1) / 10 < (20 + 1) / 100: now the ramping one wins.
        let cands = [up(100, 20), ramping(100, 0, 100)];
        assert_eq!(histogram(Algorithm::PowerOfTwo, &cands, 100), [0, 100]);
    }

    #[test]
    fn ramp_zero_is_read_as_one() {
        // Empty at 1 per mille it counts as 1000 connections.
        let mut b = Balancer::new(Algorithm::LeastConnections, 2);
        let cands = [
            up(1, 998),
            Candidate {
                ramp: 0,
                ..up(1, 0)
            },
        ];
        assert_eq!(b.pick(&cands, &mut rng()), Some(0));
        let cands = [
            up(1, 1000),
            Candidate {
                ramp: 0,
                ..up(1, 0)
            },
        ];
        assert_eq!(b.pick(&cands, &mut rng()), Some(1));
    }
}
