//! The reactor on the simulated network (`--features sim`): random scenarios and every
//! input in the reactor fuzz target's corpus, each checked by `sim::scenario::run`
//! (isolation between clients, response order, liveness, no leaks, internal
//! consistency after every turn, and no spin: `sim::spin` bounds the work of one
//! reactor turn, and the scenario the turns without quiescence, so a reactor that
//! loops forever fails here with a message naming what spun instead of hanging).
//! Failures found by fuzzing become `regress-*` corpus inputs, named in `REQUIRED`.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sluice::sim::scenario;

/// The inputs that must be in `fuzz/corpus/reactor/`: the hand-written seeds, and every
/// failure fuzzing found, each of which fails this test with its fix reverted.
const REQUIRED: &[&str] = &[
    "seed-drain",
    "seed-health",
    "seed-keepalive",
    "seed-post-expect-split",
    "seed-raw-bad-head",
    "seed-small-pipes-body",
    "seed-stale-pooled",
    "seed-upgrade",
    // A WebSocket close with a reset client beside a silent backend: `linger` reported
    // a failed write as progress, so the session stepped forever (47020b5).
    "regress-tunnel-linger-spin",
    // A ping due while the backend had stopped mid-frame: the tunnel deadline was
    // re-armed in the past and `fire_timers` popped it forever (40e8195).
    "regress-ping-due-mid-frame",
    // A harness bug: a request made while an earlier one was held back went out first
    // (004b300, `request` queues behind held bytes).
    "regress-held-request-order",
    // An early answer to a chunked upload backed up behind a backend that stopped reading:
    // the exchange ended with the client's reads masked, and without `sync_interest` the
    // lingering client stayed masked, its input never read (reactor/interest.rs; found by
    // fuzzing with that fallback removed, 2026-12-06).
    "regress-early-answer-masked-client",
];

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
    for name in REQUIRED {
        let path = std::path::Path::new(dir).join(name);
        assert!(path.is_file(), "{} is missing", path.display());
    }
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("fuzz/corpus/reactor") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("seed");
        eprintln!("{}:", path.display());
        let r = scenario::run(&data);
        eprintln!("  {r:?}");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Markers counted include the final liveness request's.
        let want_markers = match name {
            "seed-keepalive" => 3,             // two answered requests on one connection
            "seed-stale-pooled" => 3, // two requests, the pooled connection closed under one
            "seed-upgrade" => 2,      // a tunnel frame with the upgrade's marker
            "seed-post-expect-split" => 2, // 100-continue, then the answer to a chunked POST
            "regress-held-request-order" => 2, // both requests answered, in wire order
            _ => 0,
        };
        assert!(r.markers >= want_markers, "{name}: {r:?}");
        if name == "seed-drain" {
            assert!(!r.live_ok, "a drained proxy accepted a new client");
        } else if name.starts_with("seed-") || name.starts_with("regress-") {
            assert!(
                r.live_ok,
                "{name}: the final request was not answered: {r:?}"
            );
        }
        n += 1;
    }
    assert!(n >= REQUIRED.len(), "inputs missing from {dir}");
}

#[test]
fn random_scenarios_hold_the_invariants() {
    let mut rng = SmallRng::seed_from_u64(0x51c3);
    let mut total = scenario::Report::default();
    let mut live = 0;
    for k in 0..400 {
        let len = rng.gen_range(8..700);
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let r = match std::panic::catch_unwind(|| scenario::run(&data)) {
            Ok(r) => r,
            Err(panic) => {
                // Keep the input: it is the fuzz corpus entry and the replay command.
                let path = format!("{}/sim-random-{k}", env!("CARGO_TARGET_TMPDIR"));
                std::fs::write(&path, &data).expect("save the failing input");
                eprintln!(
                    "random scenario {k} failed; its input is {path} \
                     (replay: SIM_INPUT={path} SIM_TRACE=1 cargo test --features sim \
                     --test sim corpus -- --nocapture)"
                );
                std::panic::resume_unwind(panic);
            }
        };
        total.steps += r.steps;
        total.markers += r.markers;
        total.responses += r.responses;
        total.backend_conns += r.backend_conns;
        live += usize::from(r.live_ok);
        total.peak_rounds = total.peak_rounds.max(r.peak_rounds);
        total.peak_turns_at_one_instant = total
            .peak_turns_at_one_instant
            .max(r.peak_turns_at_one_instant);
    }
    eprintln!("{total:?}, liveness answered {live}/400");
    eprintln!(
        "most work in one turn (timer pops, session steps, socket ops): {:?}, budgets {:?}",
        sluice::sim::spin::peak(),
        sluice::sim::spin::TURN_BUDGET
    );
    // The harness must exercise the proxy, not just start and stop it.
    assert!(total.responses > 400, "too few responses: {total:?}");
    assert!(total.markers > 100, "too few answered requests: {total:?}");
    assert!(live > 300, "liveness reached in only {live} runs");
}
