//! The TLS listener path: arbitrary bytes from a "client" fed to a server `TlsSession`
//! through a pooled buffer, in pieces whose size the first byte chooses, as the reactor
//! feeds socket reads. Asserts that the session never panics and never spins (every step
//! takes input, yields plaintext, or fails), takes at most what it is given, takes everything
//! once it has failed and keeps failing with the same reason, and that a session still
//! handshaking has taken at most `MAX_HANDSHAKE_BYTES_SERVER`.
//! The certificate and key in fuzz/fixtures are a throwaway self-signed test pair.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::buf::BufPool;
use sluice::config::{CertPair, TlsListener, TlsVersion};
use sluice::tls::{ServerTls, MAX_HANDSHAKE_BYTES_SERVER};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The fixture pair, read where it lies in the source tree (no temporary files).
const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls_cert.pem");
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls_key.pem");

/// One listener configuration for every input, as a real listener shares one.
fn server() -> &'static ServerTls {
    static SERVER: OnceLock<ServerTls> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TlsListener {
            host: "127.0.0.1".into(),
            port: 0,
            listen: ([127, 0, 0, 1], 0).into(),
            certs: vec![CertPair {
                name: "cert".into(),
                cert: CERT.into(),
                key: KEY.into(),
            }],
            min_version: TlsVersion::V1_2,
            handshake_timeout: Duration::from_secs(10),
        };
        ServerTls::new(&listener).expect("the fixture pair loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let Ok(mut s) = server().accept(Instant::now()) else {
        return;
    };
    let mut bufs = BufPool::default();
    let mut plain = bufs.get();
    let mut fed = 0usize;
    let mut failure = None;
    'input: for chunk in input.chunks(usize::from(split).max(1)) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = match s.input(&mut bufs) {
                Some(cin) => cin.push(rest),
                None => 0,
            };
            rest = &rest[n..];
            fed += n;
            let r = s.read(&mut plain, &mut bufs);
            s.input_done(&mut bufs);
            if let Err(e) = r {
                assert_eq!(
                    s.buffers() - usize::from(s.cipher().is_some()),
                    0,
                    "a failed session takes everything"
                );
                assert_eq!(s.failure(), Some(e));
                failure = Some(e);
                break 'input;
            }
            let moved = r.unwrap_or(0) + usize::from(s.peer_closed());
            plain.consume(plain.len());
            assert!(n > 0 || moved > 0, "no progress: the reactor would spin");
            if s.is_handshaking() {
                assert!(fed <= MAX_HANDSHAKE_BYTES_SERVER, "handshake bound: {fed}");
            }
        }
        s.poll_output(&mut bufs);
        if let Some(out) = s.cipher() {
            out.consume(out.len());
        }
        s.sent(&mut bufs);
    }
    if let Some(e) = failure {
        // Nothing more is accepted, with the same reason; the alert can still be taken.
        if let Some(cin) = s.input(&mut bufs) {
            cin.push(b"\x16\x03\x01\x00\x00");
        }
        assert_eq!(s.read(&mut plain, &mut bufs), Err(e));
    }
    s.release(&mut bufs);
    bufs.put(plain);
    assert_eq!(bufs.outstanding, 0);
});
