//! The whole reactor's `[tls]` listener on the simulated network: real rustls clients
//! (TLS 1.2 and 1.3, with and without SNI) and raw ones, arbitrary bytes injected into their
//! streams, flipped handshake bytes, requests, closes, resets and time steps (see
//! `sluice::sim::tls` for the decoding and the invariants: no panic, no spin, the reactor's
//! consistency after every turn, valid TLS and only its own answers for an untampered
//! client, nothing left after the timeouts, a fresh client served at the end).
//!
//! Seeds are not committed: at start the target writes `sluice::sim::tls::seeds()` (real
//! handshakes, real ClientHellos sent raw and cut short, plain HTTP on the TLS port) into
//! every corpus directory it is given, as `gen-*` files that are not there yet (ignored by git:
//! generated, never committed).
//! The certificate and key in fuzz/fixtures are a throwaway self-signed test pair.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The fixture pair the listener loads (from files, as a real one does): read where it lies
/// in the source tree, so no fuzzing process leaves files behind.
fn pair() -> &'static (String, String) {
    static PAIR: OnceLock<(String, String)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        (format!("{dir}/tls_cert.pem"), format!("{dir}/tls_key.pem"))
    })
}

/// Writes the generated seeds into the corpus directories on the command line.
fn write_seeds() {
    let dirs = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    for dir in dirs.map(PathBuf::from).filter(|d| d.is_dir()) {
        for (i, seed) in sluice::sim::tls::seeds().iter().enumerate() {
            let file = Path::new(&dir).join(format!("gen-{i:02}"));
            if !file.exists() {
                let _ = std::fs::write(file, seed);
            }
        }
    }
}

fuzz_target!(init: write_seeds(), |data: &[u8]| {
    let (cert, key) = pair();
    sluice::sim::tls::run(data, cert, key);
});
