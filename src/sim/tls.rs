//! The `[tls]` listener on the simulated network (features `sim` and `tls`): the
//! `reactor_tls` fuzz target and its test.
//!
//! The first bytes choose the simulated queue size, the listener's `min_version` and the
//! reactor's seed; every further byte pair is one step: a client connects (a real rustls
//! client, with or without SNI, TLS 1.2 only or 1.2/1.3, or a raw one), sends raw bytes
//! from the input (a real client's stream is then tampered with), flips a byte of what it
//! is about to send, writes a request through its TLS session, half-closes, closes or
//! resets; time moves on. Backends are accepted and answer every request head with a 200
//! whose body echoes the request's target. After every step the network runs until
//! nothing moves.
//!
//! Checked, and any violation panics:
//! - no panic anywhere in sluice, no spin (`sim::spin`'s per-turn budgets, and bounded
//!   rounds until the network is quiet), `check_invariants` after every turn;
//! - what sluice sends a client whose stream was never tampered with is valid TLS for that
//!   session (rustls never reports an error on it), and its plaintext answers carry only
//!   that client's own markers (isolation);
//! - at the end: every client, still connected, has been closed by sluice once the
//!   handshake and idle timeouts have passed, no buffer is held, and a fresh real client completes a handshake and gets its answer
//!   (liveness).

use crate::config;
use crate::reactor::Reactor;
use crate::simnet::{self as sim, Stream};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Most steps taken from one input.
const MAX_STEPS: usize = 300;
/// Most simultaneous clients.
const MAX_CLIENTS: usize = 6;
/// Rounds of "run until nothing moves" before it counts as a livelock.
const MAX_ROUNDS: usize = 20_000;
/// Marker byte in request targets (`@cNN`); echoed by the backends.
const MARK: u8 = b'@';
const TLS_LISTEN: &str = "127.0.0.1:8443";

/// What a run did (for the test that checks the harness reaches real handshakes).
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Steps executed.
    pub steps: usize,
    /// Clients connected (real and raw).
    pub clients: usize,
    /// Real clients whose handshake completed.
    pub handshakes: usize,
    /// Answers real clients decrypted (their markers).
    pub responses: usize,
    /// The final liveness request was answered with 200 over a fresh handshake.
    pub live_ok: bool,
}

struct Client {
    id: u8,
    stream: Option<Stream>,
    /// The real client's TLS session (None: a raw client, or a real one that failed).
    tls: Option<ClientConnection>,
    /// Bytes the test wrote into this stream besides the session's own (raw bytes, flips).
    tampered: bool,
    /// A TLS 1.2-only client of a `min_version = 1.3` listener: refused with an alert.
    refused: bool,
    /// Ciphertext (or raw bytes) not yet accepted by the simulated socket.
    outbox: Vec<u8>,
    /// Decrypted bytes received.
    plain: Vec<u8>,
    scanned: usize,
    handshaken: bool,
    next_r: u8,
    eof: bool,
}

struct World {
    reactor: Reactor,
    now: Instant,
    clients: Vec<Client>,
    backends: Vec<(Stream, Vec<u8>)>,
    next_client: u8,
    listen: SocketAddr,
    /// The listener's `min_version` is 1.3.
    tls13_only: bool,
    report: Report,
}

/// Reads the input a byte at a time (zeros once it runs out).
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = end;
        &self.data[start..end]
    }
}

/// Runs one scenario against a listener serving `cert`/`key` (PEM paths; the
/// certificate's name is `fuzz.test`). Panics on any violated invariant.
pub fn run(data: &[u8], cert: &str, key: &str) -> Report {
    let mut input = Input { data, pos: 0 };
    let knobs = input.byte();
    let cap = [256usize, 1024, 4096, 65536][usize::from(knobs & 3)];
    let min_version = if knobs & 4 != 0 { "1.3" } else { "1.2" };
    let seed = u64::from(input.byte());
    let text = format!(
        "[frontend]\nhost=127.0.0.1\nport=8080\nmax_connections=8\n\
         request_header_timeout=2s\nclient_idle_timeout=5s\n\n\
         [http]\nserver1=127.0.0.1:9001\nserver1_min_workers=0\nenable_health_check=false\n\
         connect_timeout=1s\nresponse_timeout=3s\nqueue_timeout=2s\n\n\
         [tls]\nhost=127.0.0.1\nport=8443\ncert={cert}\nkey={key}\n\
         min_version={min_version}\nhandshake_timeout=1s\n\n\
         [log]\nlevel=off\naccess_log=false\n"
    );
    let cfg = config::parse(&text, "sim-tls.ini", &|h, _| Err(format!("no DNS for {h}")))
        .unwrap_or_else(|e| panic!("scenario config rejected: {e}\n{text}"));
    sim::reset(cap);
    let reactor = Reactor::with_seed(cfg, seed).expect("reactor on the simulated network");
    let now = Instant::now();
    let mut w = World {
        reactor,
        now,
        clients: Vec::new(),
        backends: Vec::new(),
        next_client: 0,
        listen: TLS_LISTEN.parse().expect("listen address"),
        tls13_only: knobs & 4 != 0,
        report: Report::default(),
    };
    sim::spin::turn_begin();
    w.reactor.sim_start(now);
    sim::spin::turn_end();
    w.settle();
    while input.pos < input.data.len() && w.report.steps < MAX_STEPS {
        w.step(&mut input);
        w.report.steps += 1;
        w.settle();
    }
    w.finish();
    let report = w.report;
    drop(w);
    sim::reset(1024);
    report
}

/// Client configurations: TLS 1.2 and 1.3, and TLS 1.2 only; any certificate accepted (the
/// fixture is self-signed; `tls::AnyServerCert`, as `serverN_tls_verify = false`), ALPN
/// `http/1.1`.
fn client_configs() -> &'static [Arc<ClientConfig>; 2] {
    static CONFIGS: OnceLock<[Arc<ClientConfig>; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let make = |versions: &[&'static rustls::SupportedProtocolVersion]| {
            let provider = crate::tls::provider();
            let mut c = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(versions)
                .expect("protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::tls::AnyServerCert(provider)))
                .with_no_client_auth();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(c)
        };
        [make(rustls::ALL_VERSIONS), make(&[&rustls::version::TLS12])]
    })
}

/// A real client's session: `flags` bit 0 picks TLS 1.2 only, bit 1 sends no SNI.
fn client_session(flags: u8) -> ClientConnection {
    let config = client_configs()[usize::from(flags & 1)].clone();
    let name = if flags & 2 != 0 {
        ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]))
    } else {
        ServerName::try_from("fuzz.test").expect("a DNS name")
    };
    ClientConnection::new(config, name).expect("a client session")
}

/// A ClientHello as a real client sends it (`flags` as in [`client_session`]): seeds for
/// the raw-bytes step.
pub fn client_hello(flags: u8) -> Vec<u8> {
    let mut s = client_session(flags);
    let mut out = Vec::new();
    while s.wants_write() {
        if s.write_tls(&mut out).is_err() {
            break;
        }
    }
    out
}

/// Inputs that reach the interesting places at once (the fuzz target writes them into its
/// corpus directory at start): real handshakes with requests, real ClientHellos sent raw
/// and cut short, a flipped handshake byte, plain HTTP on the TLS port.
pub fn seeds() -> Vec<Vec<u8>> {
    // Steps are (op, arg): 0 connect (arg bit 0 real, 1 TLS 1.2 only, 2 no SNI),
    // 1 raw bytes (arg = length, then the client byte, then the bytes), 2 request,
    // 3 flip, 4 half-close, 5 close, 6 reset, 7 time.
    let mut out = Vec::new();
    for knobs in [0u8, 3, 4] {
        for flags in [0u8, 1, 2] {
            let real = flags << 1 | 1;
            out.push(vec![
                knobs, 7, 0, real, 2, 0, 2, 0, 7, 10, 2, 0, 4, 0, 7, 200,
            ]);
        }
    }
    for flags in [0u8, 1, 2] {
        let hello = client_hello(flags);
        for cut in [hello.len(), hello.len() / 2, 5] {
            let mut v = vec![0, 1, 0, 0];
            for piece in hello[..cut].chunks(200) {
                v.extend_from_slice(&[1, piece.len() as u8, 0]);
                v.extend_from_slice(piece);
            }
            v.extend_from_slice(&[7, 60]);
            out.push(v);
        }
    }
    out.push(vec![1, 0, 0, 1, 3, 7, 0, 2, 0, 7, 100]);
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut plain = vec![2, 0, 0, 0, 1, get.len() as u8, 0];
    plain.extend_from_slice(get);
    plain.extend_from_slice(&[7, 100]);
    out.push(plain);
    out
}

impl World {
    fn step(&mut self, input: &mut Input) {
        let op = input.byte();
        let arg = input.byte();
        match op % 8 {
            0 => self.connect(arg),
            1 => {
                let pick = input.byte();
                let bytes = input.bytes(usize::from(arg)).to_vec();
                if let Some(c) = self.client(pick) {
                    c.outbox.extend_from_slice(&bytes);
                    c.tampered = true;
                }
            }
            2 => {
                if let Some(c) = self.client(arg) {
                    let (id, r) = (c.id, c.next_r);
                    c.next_r = c.next_r.wrapping_add(1);
                    if let Some(s) = c.tls.as_mut() {
                        let m = MARK as char;
                        let req = format!("GET /{m}c{id:03}r{r:03} HTTP/1.1\r\nHost: sim\r\n\r\n");
                        let _ = s.writer().write_all(req.as_bytes());
                    }
                }
            }
            3 => {
                let x = input.byte() | 1;
                if let Some(c) = self.client(arg) {
                    c.pump_tls();
                    if !c.outbox.is_empty() {
                        let at = usize::from(x) % c.outbox.len();
                        c.outbox[at] ^= x;
                        c.tampered = true;
                    }
                }
            }
            4 => {
                if let Some(s) = self.client(arg).and_then(|c| c.stream.as_ref()) {
                    let _ = s.shutdown(Shutdown::Write);
                }
            }
            5 => {
                if let Some(c) = self.client(arg) {
                    c.stream = None;
                }
            }
            6 => {
                if let Some(s) = self.client(arg).and_then(|c| c.stream.take()) {
                    s.abort();
                }
            }
            _ => self.advance(Duration::from_millis(u64::from(arg) * 20)),
        }
    }

    fn client(&mut self, arg: u8) -> Option<&mut Client> {
        let live: Vec<usize> = (0..self.clients.len())
            .filter(|&i| self.clients[i].stream.is_some())
            .collect();
        let i = *live.get(usize::from(arg) % live.len().max(1))?;
        self.clients.get_mut(i)
    }

    fn connect(&mut self, flags: u8) {
        self.clients.retain(|c| c.stream.is_some());
        if self.clients.len() >= MAX_CLIENTS {
            return;
        }
        let Ok(stream) = sim::dial(self.listen) else {
            return;
        };
        let id = self.next_client;
        self.next_client = self.next_client.wrapping_add(1);
        self.report.clients += 1;
        self.clients.push(Client {
            id,
            stream: Some(stream),
            tls: (flags & 1 != 0).then(|| client_session(flags >> 1)),
            tampered: false,
            refused: self.tls13_only && flags & 3 == 3,
            outbox: Vec::new(),
            plain: Vec::new(),
            scanned: 0,
            handshaken: false,
            next_r: 0,
            eof: false,
        });
    }

    /// One reactor turn at `self.now`, its work counted by the spin detector.
    fn turn(&mut self, events: Vec<(mio::Token, crate::io::Ready)>) {
        sim::spin::turn_begin();
        self.reactor.sim_turn(self.now, events);
        sim::spin::turn_end();
    }

    /// Moves every peer's bytes and lets the reactor run until nothing moves.
    fn settle(&mut self) {
        for round in 0.. {
            let peers_moved = self.peers_step();
            let events = sim::take_events();
            assert!(
                round < MAX_ROUNDS,
                "reactor spin across turns: still moving after {MAX_ROUNDS} rounds"
            );
            let moved = peers_moved || !events.is_empty();
            if !events.is_empty() {
                self.turn(events);
            }
            if let Err(e) = self.reactor.check_invariants() {
                panic!("invariant: {e}");
            }
            self.check();
            if !moved {
                break;
            }
        }
    }

    fn peers_step(&mut self) -> bool {
        let mut moved = false;
        for (id, _) in sim::pending_dials() {
            if let Some(s) = sim::answer_dial(id) {
                self.backends.push((s, Vec::new()));
                moved = true;
            }
        }
        for c in &mut self.clients {
            moved |= c.step(&mut self.report);
        }
        for (s, inbox) in &mut self.backends {
            moved |= backend_step(s, inbox);
        }
        self.backends.retain(|b| !b.1.ends_with(b"\0eof"));
        moved
    }

    /// Isolation: every marker (`@cNNNrNNN`) a client decrypted is its own.
    fn check(&mut self) {
        for c in &mut self.clients {
            let data = &c.plain;
            while let Some(at) = data[c.scanned..].iter().position(|&b| b == MARK) {
                let i = c.scanned + at;
                let Some(m) = data.get(i..i + 9) else {
                    break; // the rest of the marker has not arrived yet
                };
                let id = std::str::from_utf8(&m[2..5])
                    .ok()
                    .and_then(|d| d.parse::<u8>().ok());
                assert_eq!(
                    id,
                    Some(c.id),
                    "client {} got another client's answer",
                    c.id
                );
                self.report.responses += 1;
                c.scanned = i + 1;
            }
        }
    }

    /// Moves the clock, firing what is due at each deadline on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        for _ in 0..10_000 {
            let next = self.reactor.next_deadline().filter(|&t| t <= until);
            self.now = next.map_or(until, |t| t.max(self.now));
            let events = sim::take_events();
            self.turn(events);
            self.settle();
            if next.is_none() {
                return;
            }
        }
        panic!("reactor spin across turns: deadlines keep firing without time passing");
    }

    /// Past every timeout sluice has closed every client (whatever state its handshake
    /// is in) and holds nothing; then a new client is served.
    fn finish(&mut self) {
        self.advance(Duration::from_secs(10));
        let r = &self.reactor;
        assert_eq!(
            r.clients.len(),
            0,
            "clients outlived handshake_timeout and client_idle_timeout"
        );
        assert_eq!(r.bufs.outstanding, 0, "buffers held with no client left");
        self.clients.clear();
        self.settle();
        self.connect(1);
        for _ in 0..50 {
            if let Some(c) = self.clients.last_mut() {
                if c.handshaken && c.next_r == 0 {
                    c.next_r = 1;
                    if let Some(s) = c.tls.as_mut() {
                        let _ = s
                            .writer()
                            .write_all(b"GET /live HTTP/1.1\r\nHost: sim\r\n\r\n");
                    }
                }
                if c.plain.starts_with(b"HTTP/1.1 200") && c.plain.ends_with(b"/live") {
                    self.report.live_ok = true;
                    break;
                }
            }
            self.advance(Duration::from_millis(100));
        }
        assert!(
            self.report.live_ok,
            "a fresh TLS client was not served: {:?}",
            self.clients
                .last()
                .map(|c| String::from_utf8_lossy(&c.plain).into_owned())
        );
        self.clients.clear();
        self.advance(Duration::from_secs(10));
        assert_eq!(self.reactor.clients.len(), 0, "the last client left");
    }
}

impl Client {
    /// Moves the session's records into the outbox.
    fn pump_tls(&mut self) {
        if let Some(s) = self.tls.as_mut() {
            while s.wants_write() {
                if s.write_tls(&mut self.outbox).is_err() {
                    break;
                }
            }
        }
    }

    /// Sends what is pending, reads what arrived and feeds the session; true if anything
    /// moved.
    fn step(&mut self, report: &mut Report) -> bool {
        self.pump_tls();
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        let mut moved = false;
        if !self.outbox.is_empty() {
            match stream.write(&self.outbox) {
                Ok(n) => {
                    self.outbox.drain(..n);
                    moved |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => self.outbox.clear(),
            }
        }
        if self.eof {
            return moved;
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    moved = true;
                    break;
                }
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.eof = true;
                    moved = true;
                    break;
                }
            }
        }
        self.feed(&got, report);
        moved
    }

    /// Gives received ciphertext to the real session; checks that an untampered stream
    /// carries valid TLS.
    fn feed(&mut self, mut got: &[u8], report: &mut Report) {
        let Some(s) = self.tls.as_mut() else {
            return;
        };
        while !got.is_empty() {
            if s.read_tls(&mut got).is_err() {
                break;
            }
            if let Err(e) = s.process_new_packets() {
                assert!(
                    self.tampered || self.refused,
                    "client {}: sluice sent an untampered client invalid TLS: {e}",
                    self.id
                );
                self.tls = None;
                return;
            }
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                self.plain.extend_from_slice(&buf[..n]);
                if self.plain.len() > 64 * 1024 {
                    self.plain.drain(..32 * 1024);
                    self.scanned = 0;
                }
            }
        }
        if !s.is_handshaking() && !self.handshaken {
            self.handshaken = true;
            report.handshakes += 1;
        }
    }
}

/// A backend: every complete request head gets a 200 whose body is the request target.
/// Its inbox ends with `\0eof` once it is gone.
fn backend_step(s: &mut Stream, inbox: &mut Vec<u8>) -> bool {
    let mut moved = false;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => {
                inbox.extend_from_slice(&buf[..n]);
                moved = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            _ => {
                inbox.extend_from_slice(b"\0eof");
                return true;
            }
        }
    }
    while let Some(end) = inbox.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = inbox.drain(..end + 4).collect::<Vec<u8>>();
        let target = head
            .split(|&b| b == b' ')
            .nth(1)
            .unwrap_or_default()
            .to_vec();
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            target.len()
        )
        .into_bytes();
        answer.extend_from_slice(&target);
        let _ = s.write(&answer);
        moved = true;
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        format!("{}/fuzz/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn the_seeds_reach_real_handshakes_answers_and_failures() {
        let (cert, key) = (fixture("tls_cert.pem"), fixture("tls_key.pem"));
        let mut total = Report::default();
        for seed in seeds() {
            let r = run(&seed, &cert, &key);
            assert!(r.live_ok);
            total.handshakes += r.handshakes;
            total.responses += r.responses;
            total.clients += r.clients;
        }
        assert!(total.handshakes >= 9, "{total:?}");
        assert!(total.responses >= 9, "{total:?}");
    }
}
