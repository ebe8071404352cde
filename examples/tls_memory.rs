//! What an idle TLS keep-alive connection costs sluice's `TlsSession`, and how many heap
//! allocations one request/response costs on an established session: in memory, no sockets.
//!
//! `cargo run --release --features tls --example tls_memory [N]` (needs the `openssl`
//! command to make a throwaway certificate). For each of N connections: a full handshake
//! (rustls client, ECDSA P-256 certificate, TLS 1.3 and then 1.2), one request and response
//! through pooled 16 KiB buffers, every buffer drained and returned; the clients are then
//! dropped and the heap still held is divided by N. A counting global allocator measures.

use sluice::buf::{Buf, BufPool};
use sluice::config::{CertPair, TlsListener, TlsVersion};
use sluice::tls::{ServerTls, TlsSession};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        CALLS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Relaxed);
        LIVE.fetch_sub(l.size(), Relaxed);
        CALLS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Allocation calls made inside `TlsSession` methods (the proxy's side only).
static SESSION_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Runs `f`, adding the allocation calls it made to `SESSION_CALLS`.
fn session<T>(f: impl FnOnce() -> T) -> T {
    let before = CALLS.load(Relaxed);
    let out = f();
    SESSION_CALLS.fetch_add(CALLS.load(Relaxed) - before, Relaxed);
    out
}

// The test certificates' maker, shared with the TLS tests.
#[path = "../tests/tlsutil/pki.rs"]
mod pki;

/// Client -> session; returns the session's plaintext.
fn up(c: &mut rustls::ClientConnection, s: &mut TlsSession, bufs: &mut BufPool) -> Vec<u8> {
    let mut wire = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut wire).expect("write_tls");
    }
    let (mut plain, mut got) = (bufs.get(), Vec::new());
    let mut rest = &wire[..];
    loop {
        let n = session(|| s.input(bufs).map_or(0, |c| c.push(rest)));
        rest = &rest[n..];
        let moved = session(|| s.read(&mut plain, bufs)).expect("read");
        got.extend_from_slice(plain.bytes());
        plain.consume(plain.len());
        if n == 0 && moved == 0 && !s.has_plain() {
            break;
        }
    }
    session(|| s.input_done(bufs));
    bufs.put(plain);
    got
}

/// Session -> client; returns the client's plaintext.
fn down(s: &mut TlsSession, c: &mut rustls::ClientConnection, bufs: &mut BufPool) -> Vec<u8> {
    let mut got = Vec::new();
    session(|| s.poll_output(bufs));
    while let Some(cipher) = s.cipher() {
        let mut rest = cipher.bytes();
        while !rest.is_empty() {
            c.read_tls(&mut rest).expect("read_tls");
            c.process_new_packets().expect("client");
        }
        let _ = c.reader().read_to_end(&mut got);
        cipher.consume(cipher.len());
        session(|| s.sent(bufs));
        session(|| s.poll_output(bufs));
    }
    got
}

fn exchange(
    c: &mut rustls::ClientConnection,
    s: &mut TlsSession,
    bufs: &mut BufPool,
    resp: &mut Buf,
) {
    c.writer()
        .write_all(b"GET / HTTP/1.1\r\nHost: m.test\r\n\r\n")
        .expect("write");
    let req = up(c, s, bufs);
    assert!(req.ends_with(b"\r\n\r\n"));
    resp.push(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    session(|| s.write(resp, bufs));
    let got = down(s, c, bufs);
    assert!(got.ends_with(b"ok"));
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let pki = pki::Pki::empty("tls-memory");
    pki.ca("ca");
    pki.leaf("m", "ca", "ec", "DNS:m.test");
    let path = |f: &str| pki.path(f);
    let listener = TlsListener {
        host: "127.0.0.1".into(),
        port: 0,
        listen: ([127, 0, 0, 1], 0).into(),
        certs: vec![CertPair {
            name: "cert".into(),
            cert: path("m.pem"),
            key: path("m.key"),
        }],
        min_version: TlsVersion::V1_2,
        handshake_timeout: Duration::from_secs(10),
    };
    let server = ServerTls::new(&listener).expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(pki.dir.join("ca.pem")).expect("ca");
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.expect("pem")).expect("root");
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let now = Instant::now();
    println!(
        "size_of::<TlsSession>() = {} bytes",
        std::mem::size_of::<TlsSession>()
    );
    for (label, version) in [
        ("TLS 1.3", &rustls::version::TLS13),
        ("TLS 1.2", &rustls::version::TLS12),
    ] {
        let client = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[version])
                .expect("versions")
                .with_root_certificates(roots.clone())
                .with_no_client_auth(),
        );
        let mut bufs = BufPool::default();
        // Warm the free list so buffers are not counted as connection memory.
        let warm: Vec<Buf> = (0..8).map(|_| bufs.get()).collect();
        warm.into_iter().for_each(|b| bufs.put(b));
        let mut resp = bufs.get();
        let mut sessions = Vec::with_capacity(n);
        let before = LIVE.load(Relaxed);
        let mut steady = (0.0, 0.0);
        for i in 0..n {
            let name = "m.test".try_into().expect("name");
            let mut c = rustls::ClientConnection::new(client.clone(), name).expect("client");
            let mut s = server.accept(now).expect("session");
            for _ in 0..4 {
                up(&mut c, &mut s, &mut bufs);
                down(&mut s, &mut c, &mut bufs);
            }
            assert!(s.is_open() && !c.is_handshaking());
            exchange(&mut c, &mut s, &mut bufs, &mut resp);
            if i == 0 {
                // Steady state: allocation calls per request on an established session.
                let k = 100;
                let (calls, ours) = (CALLS.load(Relaxed), SESSION_CALLS.load(Relaxed));
                for _ in 0..k {
                    exchange(&mut c, &mut s, &mut bufs, &mut resp);
                }
                let all = (CALLS.load(Relaxed) - calls) as f64 / k as f64;
                let ours = (SESSION_CALLS.load(Relaxed) - ours) as f64 / k as f64;
                steady = (all, ours);
            }
            drop(c);
            sessions.push(s);
        }
        let after = LIVE.load(Relaxed);
        let per = (after - before) as f64 / n as f64;
        println!(
            "{label}: {n} idle keep-alive sessions hold {} bytes of heap: {per:.0} bytes each \
             (no pooled buffer held: {} outstanding = the response buffer)",
            after - before,
            bufs.outstanding
        );
        println!(
            "{label}: allocation calls per request+response on an established session: \
             {:.1} in TlsSession, {:.1} in total (with the rustls client and this harness)",
            steady.1, steady.0
        );
        bufs.put(resp);
    }
}
