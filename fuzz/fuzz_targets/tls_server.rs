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
use sluice::tls::{Plain, ServerTls, MAX_HANDSHAKE_BYTES_SERVER};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CERT: &str = include_str!("../fixtures/tls_cert.pem");
const KEY: &str = include_str!("../fixtures/tls_key.pem");

/// One listener configuration for every input, as a real listener shares one.
fn server() -> &'static ServerTls {
    static SERVER: OnceLock<ServerTls> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sluice-fuzz-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, CERT).expect("cert");
        std::fs::write(&key, KEY).expect("key");
        let listener = TlsListener {
            host: "127.0.0.1".into(),
            port: 0,
            listen: ([127, 0, 0, 1], 0).into(),
            certs: vec![CertPair {
                name: "cert".into(),
                cert: cert.to_string_lossy().into_owned(),
                key: key.to_string_lossy().into_owned(),
            }],
            min_version: TlsVersion::V1_2,
            handshake_timeout: Duration::from_secs(10),
        };
        let server = ServerTls::new(&listener).expect("the fixture pair loads");
        let _ = std::fs::remove_dir_all(&dir);
        server
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
    let (mut cipher, mut plain, mut out) = (bufs.get(), bufs.get(), bufs.get());
    let mut fed = 0usize;
    let mut failure = None;
    'input: for chunk in input.chunks(usize::from(split).max(1)) {
        let mut rest = chunk;
        while !rest.is_empty() || !cipher.is_empty() {
            let n = cipher.push(rest);
            rest = &rest[n..];
            let before = cipher.len();
            let r = s.feed(&mut cipher);
            assert!(cipher.len() <= before, "took more than given");
            fed += before - cipher.len();
            if let Err(e) = r {
                assert!(cipher.is_empty(), "a failed session takes everything");
                assert_eq!(s.failure(), Some(e));
                failure = Some(e);
                break 'input;
            }
            let moved = match s.read_plain(&mut plain) {
                Plain::Moved(m) => m,
                Plain::Eof => 1,
            };
            plain.consume(plain.len());
            assert!(
                n > 0 || cipher.len() < before || moved > 0,
                "no progress: the reactor would spin"
            );
            if s.is_handshaking() {
                assert!(fed <= MAX_HANDSHAKE_BYTES_SERVER, "handshake bound: {fed}");
            }
        }
        s.take_cipher(&mut out);
        out.consume(out.len());
    }
    if let Some(e) = failure {
        // Nothing more is accepted, with the same reason; the alert can still be taken.
        cipher.push(b"\x16\x03\x01\x00\x00");
        assert_eq!(s.feed(&mut cipher), Err(e));
        assert!(cipher.is_empty());
        s.take_cipher(&mut out);
    }
    for b in [cipher, plain, out] {
        bufs.put(b);
    }
});
