//! The whole reactor on the simulated network: arbitrary sequences of client bytes,
//! backend answers, closes, resets, refusals and time steps (see
//! `sluice::sim::scenario` for the decoding and the invariants: no panic, isolation
//! between clients, responses in order, liveness at the end, no leaks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice::sim::scenario::run(data);
});
