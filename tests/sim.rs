//! The reactor on the simulated network (`--features sim`): random scenarios and every
//! input in the reactor fuzz target's corpus, each checked by `sim::scenario::run`
//! (isolation between clients, response order, liveness, no leaks, internal
//! consistency after every turn). Failures found by fuzzing become corpus seeds here.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sluice::sim::scenario;

/// Every committed input (the hand-written seeds and each crash fuzzing found) runs
/// clean; the hand-written seeds also reach what they were written for.
///
/// To replay one input (a crash from `fuzz/artifacts/reactor/`) with a trace of every
/// step, backend answer and client byte: `SIM_INPUT=path SIM_TRACE=1 cargo test
/// --features sim --test sim corpus -- --nocapture`.
#[test]
fn corpus_inputs_replay_clean() {
    if let Some(path) = std::env::var_os("SIM_INPUT") {
        let data = std::fs::read(&path).expect("SIM_INPUT");
        eprintln!("{:?}", scenario::run(&data));
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/reactor");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("fuzz/corpus/reactor") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("seed");
        let r = scenario::run(&data);
        eprintln!("{}: {r:?}", path.display());
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Markers counted include the final liveness request's.
        let want_markers = match name {
            "seed-keepalive" => 3,         // two answered requests on one connection
            "seed-stale-pooled" => 3,      // two requests, the pooled connection closed under one
            "seed-upgrade" => 2,           // a tunnel frame with the upgrade's marker
            "seed-post-expect-split" => 2, // 100-continue, then the answer to a chunked POST
            _ => 0,
        };
        assert!(r.markers >= want_markers, "{name}: {r:?}");
        if name == "seed-drain" {
            assert!(!r.live_ok, "a drained proxy accepted a new client");
        } else if name.starts_with("seed-") {
            assert!(
                r.live_ok,
                "{name}: the final request was not answered: {r:?}"
            );
        }
        n += 1;
    }
    assert!(n >= 8, "seeds missing from {dir}");
}

#[test]
fn random_scenarios_hold_the_invariants() {
    let mut rng = SmallRng::seed_from_u64(0x51c3);
    let mut total = scenario::Report::default();
    let mut live = 0;
    for _ in 0..400 {
        let len = rng.gen_range(8..700);
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let r = scenario::run(&data);
        total.steps += r.steps;
        total.markers += r.markers;
        total.responses += r.responses;
        total.backend_conns += r.backend_conns;
        live += usize::from(r.live_ok);
    }
    eprintln!("{total:?}, liveness answered {live}/400");
    // The harness must exercise the proxy, not just start and stop it.
    assert!(total.responses > 400, "too few responses: {total:?}");
    assert!(total.markers > 100, "too few answered requests: {total:?}");
    assert!(live > 300, "liveness reached in only {live} runs");
}
