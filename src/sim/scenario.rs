//! Reactor scenarios decoded from arbitrary bytes: the reactor-level fuzz target
//! (`fuzz/fuzz_targets/reactor.rs`) and the scenario tests (`tests/sim.rs`).
//!
//! The first bytes choose a configuration (pool sizes, queue, algorithm, limits, health
//! checks, queue sizes of the simulated sockets); every further byte pair is one step:
//! a client connects, sends a request (split anywhere), raw bytes or a WebSocket frame,
//! stops reading, half-closes, closes or resets; a backend connection is accepted or
//! refused, answers in one of a dozen ways (framed, chunked, close-delimited, 101,
//! interim, partial, oversized, garbage), closes, resets or stops reading; time moves
//! on; a drain starts. After every step the network runs until nothing moves.
//!
//! Checked after every step, and any violation panics:
//! - no panic anywhere in sluice (its internal consistency checks panic here too);
//! - `check_invariants`: slab references, pool counts, queue entries, buffers;
//! - isolation: each request carries a marker `~CccRrr~` naming its client and its
//!   sequence number, backends echo the marker of the request head they are
//!   answering, and a client must never receive another client's marker;
//! - order: the markers a client receives never go back to an earlier request;
//! - no spin: the work of one reactor turn is bounded (`sim::spin`: timer pops,
//!   session steps, socket operations), and so are the rounds until the network goes
//!   quiet and the turns in a row at one instant with a deadline due, so a reactor
//!   that loops forever fails with what spun instead of hanging (or, under libFuzzer,
//!   timing out);
//! - at the end, all clients gone and backends well-behaved: a new request is answered
//!   (liveness), and after the idle timeouts no client, buffer or socket is left
//!   beyond the pools (leaks).

mod decode;
mod wire;

use crate::backend::BState;
use crate::reactor::Reactor;
use crate::simnet::{self as sim, Stream};
use decode::{knob_config, Input};
use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use wire::{find, find_header, last_marker, marker, parse_marker, read_all, ReadEnd};

/// Most steps taken from one input.
const MAX_STEPS: usize = 400;
/// Most simultaneous clients.
const MAX_CLIENTS: usize = 8;
/// Rounds of "run until nothing moves" before it counts as a livelock (a spin across
/// turns: each turn returns, but the reactor or the network always has more to do).
/// A spin inside one turn is caught by `sim::spin`'s budgets instead.
const MAX_ROUNDS: usize = 20_000;
/// Turns in a row at one instant with a deadline due each time before it counts as a
/// spin (a deadline re-armed at or before the current time, firing on every turn).
const MAX_TURNS_AT_ONE_INSTANT: usize = 1_000;
/// Turns one `advance` may take (deadlines that keep moving a little, never reaching
/// the end of the step).
const MAX_ADVANCE_TURNS: usize = 100_000;
/// Marker byte; fuzzer-provided bytes never contain it.
const MARK: u8 = b'~';

const LISTEN: &str = "127.0.0.1:8080";

/// What a run did (for tests that want to see a scenario reached somewhere).
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Steps executed.
    pub steps: usize,
    /// Clients connected.
    pub clients: usize,
    /// Backend connections sluice opened and the test accepted.
    pub backend_conns: usize,
    /// Markers clients received from backends (answered requests and tunnel frames).
    pub markers: usize,
    /// HTTP status lines clients received (from backends or sluice).
    pub responses: usize,
    /// The final liveness request was answered with 200.
    pub live_ok: bool,
    /// The most rounds one settle took (its bound is `MAX_ROUNDS`).
    pub peak_rounds: usize,
    /// The most turns in a row at one instant with a deadline due (bound
    /// `MAX_TURNS_AT_ONE_INSTANT`).
    pub peak_turns_at_one_instant: usize,
}

struct Client {
    id: u8,
    stream: Option<Stream>,
    /// Bytes queued to send.
    outbox: Vec<u8>,
    /// Bytes held back until a `Release` step (a request dribbled in two parts);
    /// later requests queue behind them, so request numbers follow wire order.
    held: Vec<u8>,
    /// Everything received.
    received: Vec<u8>,
    scanned: usize,
    statuses: usize,
    /// Next request number; the highest marker number seen.
    next_r: u8,
    last_r: Option<u8>,
    stalled: bool,
    eof: bool,
}

struct Backend {
    stream: Option<Stream>,
    /// Bytes read since the last answer.
    inbox: Vec<u8>,
    /// The last request marker seen since the last answer.
    marker: Option<[u8; 8]>,
    /// The marker of the request that upgraded this connection to a tunnel.
    tunnel_marker: Option<[u8; 8]>,
    ws_key: Option<Vec<u8>>,
    stalled: bool,
    eof: bool,
}

struct World {
    reactor: Reactor,
    now: Instant,
    start: Instant,
    clients: Vec<Client>,
    backends: Vec<Backend>,
    next_client: u8,
    auto_accept: bool,
    /// Backends answer every complete request head on their own (the end phase).
    auto_answer: bool,
    listen: SocketAddr,
    report: Report,
    /// `SIM_TRACE` set: print every step, every backend answer and what clients get.
    trace: bool,
}

/// Runs one scenario. Panics on any violated invariant.
pub fn run(data: &[u8]) -> Report {
    let mut input = Input { data, pos: 0 };
    let (cfg, cap) = knob_config(&mut input);
    let seed = u64::from(input.byte()) | u64::from(input.byte()) << 8;
    sim::reset(cap);
    let reactor = Reactor::with_seed(cfg, seed).expect("reactor on the simulated network");
    let now = Instant::now();
    let mut w = World {
        reactor,
        now,
        start: now,
        clients: Vec::new(),
        backends: Vec::new(),
        next_client: 0,
        auto_accept: true,
        auto_answer: false,
        listen: LISTEN.parse().expect("listen address"),
        report: Report::default(),
        trace: std::env::var_os("SIM_TRACE").is_some(),
    };
    sim::spin::turn_begin();
    w.reactor.sim_start(now);
    sim::spin::turn_end();
    w.settle();
    while !input.done() && w.report.steps < MAX_STEPS {
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

impl World {
    fn step(&mut self, input: &mut Input) {
        let op = input.byte();
        let arg = input.byte();
        if self.trace {
            eprintln!(
                "step {}: op {} arg {arg} at +{:?}",
                self.report.steps,
                op % 20,
                self.now.duration_since(self.start)
            );
        }
        match op % 20 {
            0 | 1 => self.connect(),
            2..=4 => self.request(arg, input),
            5 => {
                let n = input.byte() as usize;
                let bytes = input.bytes(n);
                if let Some(c) = self.client(arg) {
                    c.outbox.extend_from_slice(&bytes);
                }
            }
            6 => {
                if let Some(c) = self.client(arg) {
                    let held = std::mem::take(&mut c.held);
                    c.outbox.extend_from_slice(&held);
                }
            }
            7 => self.ws_frame(arg, input.byte()),
            8 => {
                if let Some(c) = self.client(arg) {
                    c.stalled = !c.stalled;
                }
            }
            9 => {
                if let Some(c) = self.client(arg) {
                    if let Some(s) = &c.stream {
                        let _ = s.shutdown(std::net::Shutdown::Write);
                    }
                }
            }
            10 => {
                if let Some(c) = self.client(arg) {
                    match arg & 1 {
                        0 => c.stream = None,
                        _ => {
                            if let Some(s) = c.stream.take() {
                                s.abort();
                            }
                        }
                    }
                }
            }
            11 => self.auto_accept = !self.auto_accept,
            12 => {
                let dials = sim::pending_dials();
                if let Some(&(id, _)) = dials.get(arg as usize % dials.len().max(1)) {
                    if input.byte() & 1 == 0 {
                        self.accept(id);
                    } else {
                        sim::refuse_dial(id);
                    }
                }
            }
            13..=15 => {
                let kind = input.byte();
                if let Some(j) = self.backend(arg) {
                    self.answer(j, kind);
                }
            }
            16 => {
                let n = input.byte() as usize;
                let bytes = input.bytes(n);
                if let Some(j) = self.backend(arg) {
                    self.backend_read(j);
                    self.backend_send(j, &bytes);
                }
            }
            17 => {
                if let Some(j) = self.backend(arg) {
                    let b = &mut self.backends[j];
                    match arg & 3 {
                        0 => b.stream = None,
                        1 => {
                            if let Some(s) = b.stream.take() {
                                s.abort();
                            }
                        }
                        2 => {
                            if let Some(s) = &b.stream {
                                let _ = s.shutdown(std::net::Shutdown::Write);
                            }
                        }
                        _ => b.stalled = !b.stalled,
                    }
                }
            }
            18 => {
                let step = match arg % 4 {
                    0 => Duration::from_millis(10),
                    1 => Duration::from_millis(300),
                    2 => Duration::from_secs(1),
                    _ => Duration::from_secs(4),
                };
                self.advance(step);
            }
            _ => {
                if arg == 0xd5 {
                    self.reactor.stop_handle().drain();
                }
            }
        }
    }

    fn client(&mut self, arg: u8) -> Option<&mut Client> {
        if self.clients.is_empty() {
            return None;
        }
        let n = self.clients.len();
        Some(&mut self.clients[arg as usize % n])
    }

    fn backend(&mut self, arg: u8) -> Option<usize> {
        let live: Vec<usize> = (0..self.backends.len())
            .filter(|&j| self.backends[j].stream.is_some())
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[arg as usize % live.len()])
    }

    fn connect(&mut self) {
        if self.clients.iter().filter(|c| c.stream.is_some()).count() >= MAX_CLIENTS {
            return;
        }
        let Ok(stream) = sim::dial(self.listen) else {
            return; // drained: the listener is closed
        };
        let id = self.next_client;
        self.next_client = self.next_client.wrapping_add(1);
        self.report.clients += 1;
        self.clients.push(Client {
            id,
            stream: Some(stream),
            outbox: Vec::new(),
            held: Vec::new(),
            received: Vec::new(),
            scanned: 0,
            statuses: 0,
            next_r: 0,
            last_r: None,
            stalled: false,
            eof: false,
        });
    }

    /// A well-formed request from a template, split at a fuzzer-chosen byte.
    fn request(&mut self, arg: u8, input: &mut Input) {
        let flags = input.byte();
        let split = input.byte() as usize;
        let body_len = input.byte() as usize % 160;
        let trace = self.trace;
        let Some(c) = self.client(arg) else {
            return;
        };
        let r = c.next_r;
        c.next_r = c.next_r.saturating_add(1);
        let marker = marker(c.id, r);
        let methods = [
            "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "GET", "POST",
        ];
        let method = methods[(flags & 7) as usize];
        let mut req = Vec::new();
        req.extend_from_slice(method.as_bytes());
        req.extend_from_slice(b" /");
        req.extend_from_slice(&marker);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: sim\r\n");
        let upgrade = flags & 0x40 != 0 && method == "GET";
        if upgrade {
            req.extend_from_slice(
                b"Upgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
            );
        } else if flags & 0x80 != 0 {
            req.extend_from_slice(b"Connection: close\r\n");
        }
        if flags & 0x20 != 0 && !upgrade {
            req.extend_from_slice(b"Expect: 100-continue\r\n");
        }
        let body = vec![b'b'; body_len];
        match (method, flags & 0x18) {
            ("POST" | "PUT", 0x08) => {
                req.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let half = body.len() / 2;
                for part in [&body[..half], &body[half..]] {
                    if !part.is_empty() {
                        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                        req.extend_from_slice(part);
                        req.extend_from_slice(b"\r\n");
                    }
                }
                req.extend_from_slice(b"0\r\n\r\n");
            }
            ("POST" | "PUT", _) => {
                req.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                req.extend_from_slice(&body);
            }
            _ => req.extend_from_slice(b"\r\n"),
        }
        // Bytes go on the wire in the order requests are made: behind anything held.
        let split = if !c.held.is_empty() {
            0
        } else if flags & 0x10 != 0 && split < req.len() {
            split
        } else {
            req.len()
        };
        if trace {
            eprintln!(
                "  client {} sends {:?}",
                c.id,
                String::from_utf8_lossy(&req)
            );
        }
        c.outbox.extend_from_slice(&req[..split]);
        c.held.extend_from_slice(&req[split..]);
    }

    /// A masked client frame (text, binary, ping, close, or fragmented / oversized).
    fn ws_frame(&mut self, arg: u8, kind: u8) {
        let Some(c) = self.client(arg) else {
            return;
        };
        let payload: Vec<u8> = match kind % 6 {
            4 => vec![b'x'; 200],
            _ => vec![b'p'; (kind as usize >> 3) % 20],
        };
        let (fin_op, len) = match kind % 6 {
            0 => (0x81, payload.len()),        // text
            1 => (0x82, payload.len()),        // binary
            2 => (0x89, payload.len()),        // ping
            3 => (0x88, payload.len().min(2)), // close
            4 => (0x02, payload.len()),        // first fragment, 200 bytes (16-bit length)
            _ => (0x80, payload.len()),        // continuation, final
        };
        let mut f = vec![fin_op];
        if len < 126 {
            f.push(0x80 | len as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
        let key = [0x12, 0x34, 0x56, 0x78];
        f.extend_from_slice(&key);
        let body: &[u8] = if fin_op == 0x88 {
            &[0x03, 0xe8]
        } else {
            &payload
        };
        f.extend(body[..len].iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        c.outbox.extend_from_slice(&f);
    }

    fn accept(&mut self, id: usize) {
        if let Some(stream) = sim::answer_dial(id) {
            self.report.backend_conns += 1;
            self.backends.push(Backend {
                stream: Some(stream),
                inbox: Vec::new(),
                marker: None,
                tunnel_marker: None,
                ws_key: None,
                stalled: false,
                eof: false,
            });
        }
    }

    /// Reads what a backend has (even when stalled: it is about to answer).
    fn backend_read(&mut self, j: usize) -> bool {
        let b = &mut self.backends[j];
        let Some(s) = b.stream.as_mut() else {
            return false;
        };
        let (n, end) = read_all(s, &mut b.inbox);
        if self.trace && n > 0 {
            let got = &b.inbox[b.inbox.len() - n..];
            eprintln!("  backend {j} got {:?}", String::from_utf8_lossy(got));
        }
        let mut moved = n > 0;
        match end {
            ReadEnd::Eof if !b.eof => {
                b.eof = true;
                moved = true;
            }
            ReadEnd::Failed => {
                b.stream = None;
                return true;
            }
            _ => {}
        }
        if moved {
            if let Some(m) = last_marker(&b.inbox) {
                b.marker = Some(m);
            }
            if let Some(k) = find_header(&b.inbox, b"sec-websocket-key:") {
                b.ws_key = Some(k);
            }
            if b.inbox.len() > 64 * 1024 {
                let keep = b.inbox.len() - 16;
                b.inbox.drain(..keep);
            }
        }
        // The peer is gone and nothing is left to answer (or the end phase, where
        // nobody answers the dead): close this side too.
        if b.eof && (b.inbox.is_empty() || self.auto_answer) {
            b.stream = None;
        }
        moved
    }

    fn backend_send(&mut self, j: usize, bytes: &[u8]) {
        let b = &mut self.backends[j];
        if self.trace {
            eprintln!("  backend {j} sends {:?}", String::from_utf8_lossy(bytes));
        }
        if let Some(s) = b.stream.as_mut() {
            // Whatever does not fit is dropped: a backend that writes into a full
            // socket buffer and gives up is one more fault to survive.
            let _ = s.write(bytes);
        }
    }

    /// A backend answers (after reading what it has), in the way `kind` picks.
    fn answer(&mut self, j: usize, kind: u8) {
        self.backend_read(j);
        let b = &mut self.backends[j];
        if b.stream.is_none() {
            return;
        }
        if let Some(m) = b.tunnel_marker {
            // A tunnel: server frames (unmasked) carrying the upgrade's marker.
            let frame: Vec<u8> = match kind % 4 {
                0 => [&[0x81, 8][..], &m].concat(),
                1 => vec![0x89, 0],
                2 => vec![0x88, 2, 0x03, 0xe8],
                _ => [&[0x01, 8][..], &m].concat(), // a fragment left open
            };
            self.backend_send(j, &frame);
            return;
        }
        let marker = b.marker.take();
        let body: Vec<u8> = marker.map(|m| m.to_vec()).unwrap_or_default();
        b.inbox.clear();
        let cl = |status: &str, body: &[u8]| {
            let mut v = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            v.extend_from_slice(body);
            v
        };
        let resp: Vec<u8> = match kind % 12 {
            0 => cl("200 OK", &body),
            1 => {
                let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                if !body.is_empty() {
                    v.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                    v.extend_from_slice(&body);
                    v.extend_from_slice(b"\r\n");
                }
                v.extend_from_slice(b"0\r\n\r\n");
                v
            }
            2 | 3 => {
                let mut v = if kind % 12 == 2 {
                    b"HTTP/1.1 200 OK\r\n\r\n".to_vec()
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes()
                };
                v.extend_from_slice(&body);
                self.backend_send(j, &v);
                if let Some(s) = &self.backends[j].stream {
                    let _ = s.shutdown(std::net::Shutdown::Write);
                }
                return;
            }
            4 => match &self.backends[j].ws_key {
                Some(key) => {
                    let accept = protocol::ws::accept_key(key);
                    let mut v = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                                  Connection: Upgrade\r\nSec-WebSocket-Accept: "
                        .to_vec();
                    v.extend_from_slice(&accept);
                    v.extend_from_slice(b"\r\n\r\n");
                    self.backends[j].tunnel_marker = marker;
                    v
                }
                None => cl("426 Upgrade Required", &body),
            },
            5 => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
            6 => {
                // Interim only: the final answer is a later step (the marker stays).
                self.backends[j].marker = marker;
                b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()
            }
            7 => {
                let mut v = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n".to_vec();
                v.extend_from_slice(&body);
                v
            }
            8 => cl("503 Service Unavailable", &body),
            9 => {
                let mut v = cl("200 OK", &body);
                v.extend_from_slice(b"EXTRA");
                v.extend_from_slice(&body);
                v
            }
            10 => cl("200 OK", b"{\"status\": 200}"),
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec(),
        };
        self.backend_send(j, &resp);
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
            if round >= MAX_ROUNDS {
                panic!(
                    "reactor spin across turns: still moving after {MAX_ROUNDS} rounds at \
                     +{:?} (last round: peers moved {peers_moved}, {} reactor events {:?})",
                    self.now.duration_since(self.start),
                    events.len(),
                    events.iter().take(8).collect::<Vec<_>>()
                );
            }
            let moved = peers_moved || !events.is_empty();
            if !events.is_empty() {
                self.turn(events);
            }
            self.check();
            if !moved {
                self.report.peak_rounds = self.report.peak_rounds.max(round);
                break;
            }
        }
    }

    fn peers_step(&mut self) -> bool {
        let mut moved = false;
        if self.auto_accept {
            for (id, _) in sim::pending_dials() {
                self.accept(id);
                moved = true;
            }
        }
        for c in &mut self.clients {
            let Some(s) = c.stream.as_mut() else {
                continue;
            };
            if !c.outbox.is_empty() {
                match s.write(&c.outbox) {
                    Ok(n) => {
                        c.outbox.drain(..n);
                        moved |= n > 0;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => c.outbox.clear(),
                }
            }
            if c.stalled || c.eof {
                continue;
            }
            let (n, end) = read_all(s, &mut c.received);
            moved |= n > 0;
            if !matches!(end, ReadEnd::Open) {
                c.eof = true;
                moved = true;
            }
        }
        for j in 0..self.backends.len() {
            if self.backends[j].stream.is_none() {
                continue;
            }
            if !self.backends[j].stalled || self.auto_answer {
                moved |= self.backend_read(j);
            }
            if self.auto_answer {
                moved |= self.auto_reply(j);
            }
        }
        self.backends.retain(|b| b.stream.is_some());
        moved
    }

    /// The end phase's well-behaved backend: every complete head gets a 200 (a health
    /// check gets the JSON verdict).
    fn auto_reply(&mut self, j: usize) -> bool {
        let b = &mut self.backends[j];
        if b.tunnel_marker.is_some() || b.stream.is_none() {
            return false;
        }
        let Some(end) = find(&b.inbox, b"\r\n\r\n") else {
            return false;
        };
        let health = find(&b.inbox[..end], b" /healthCheck ").is_some();
        let marker = last_marker(&b.inbox[..end]);
        b.inbox.drain(..end + 4);
        b.marker = None;
        let body: Vec<u8> = if health {
            b"{\"status\": 200}".to_vec()
        } else {
            marker.map(|m| m.to_vec()).unwrap_or_default()
        };
        let mut v =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        v.extend_from_slice(&body);
        self.backend_send(j, &v);
        true
    }

    /// Moves the clock, firing what is due at each deadline on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        let mut turns = 0;
        let mut at_one_instant = 0;
        loop {
            let next = self.reactor.next_deadline().filter(|&t| t <= until);
            let now = match next {
                Some(t) if t > self.now => t,
                Some(_) => self.now,
                None => until,
            };
            if next.is_some() && now == self.now {
                at_one_instant += 1;
                let peak = &mut self.report.peak_turns_at_one_instant;
                *peak = (*peak).max(at_one_instant);
                assert!(
                    at_one_instant < MAX_TURNS_AT_ONE_INSTANT,
                    "reactor spin across turns: a deadline was due on each of \
                     {MAX_TURNS_AT_ONE_INSTANT} turns at +{:?} (a timer re-armed at or before the current time)",
                    self.now.duration_since(self.start)
                );
            } else {
                at_one_instant = 0;
            }
            self.now = now;
            let events = sim::take_events();
            self.turn(events);
            self.settle();
            turns += 1;
            assert!(
                turns < MAX_ADVANCE_TURNS,
                "reactor spin across turns: {MAX_ADVANCE_TURNS} turns to advance the clock \
                 {by:?} from +{:?} (deadlines keep firing, time hardly passes)",
                (until - by).duration_since(self.start)
            );
            if next.is_none() {
                break;
            }
        }
    }

    /// The invariants that hold after every turn.
    fn check(&mut self) {
        if let Err(e) = self.reactor.check_invariants() {
            panic!("invariant: {e}");
        }
        for c in &mut self.clients {
            let data = &c.received;
            let mut i = c.scanned;
            if self.trace && data.len() > i {
                eprintln!(
                    "  client {} got {:?}",
                    c.id,
                    String::from_utf8_lossy(&data[i..])
                );
            }
            while i + 8 <= data.len() {
                if data[i..].starts_with(b"HTTP/1.1 ") {
                    c.statuses += 1;
                    self.report.responses += 1;
                }
                match parse_marker(&data[i..i + 8]) {
                    Some((cid, r)) => {
                        assert_eq!(
                            cid, c.id,
                            "client {} received client {cid}'s bytes (request {r})",
                            c.id
                        );
                        assert!(
                            r < c.next_r,
                            "client {} got a marker for request {r} it never sent",
                            c.id
                        );
                        if let Some(last) = c.last_r {
                            assert!(
                                r >= last,
                                "client {} got request {r}'s answer after request {last}'s",
                                c.id
                            );
                        }
                        c.last_r = Some(r);
                        self.report.markers += 1;
                        i += 8;
                    }
                    None => i += 1,
                }
            }
            c.scanned = i;
        }
    }

    /// All clients leave, backends behave: a new request must be answered, and after
    /// the idle timeouts nothing is left but the pools.
    fn finish(&mut self) {
        self.clients.clear();
        self.auto_accept = true;
        self.auto_answer = true;
        for b in &mut self.backends {
            b.stalled = false;
        }
        self.settle();
        // Health comes back (rise 2 at 1 s), ejections end (fail_timeout 2 s).
        for _ in 0..6 {
            self.advance(Duration::from_secs(1));
        }
        self.liveness();
        self.clients.clear();
        for _ in 0..20 {
            self.advance(Duration::from_secs(1));
        }
        let r = &self.reactor;
        assert_eq!(r.clients.len(), 0, "clients left after everyone closed");
        assert_eq!(r.bufs.outstanding, 0, "buffers held with nothing in flight");
        for (g, group) in r.groups.iter().enumerate() {
            for (s, server) in group.servers.iter().enumerate() {
                assert!(server.pool.queue().is_empty(), "queue of {g}/{s} not empty");
                assert_eq!(server.active, 0, "server {g}/{s} still counts requests");
                assert!(
                    server.pool.total() <= server.cfg.min_workers.max(1) + server.pool.connecting(),
                    "server {g}/{s}: {} connections after the idle timeout",
                    server.pool.total()
                );
            }
        }
        for (_, b) in r.backends.iter() {
            assert!(
                matches!(
                    b.state,
                    BState::Idle | BState::Connecting | BState::Handshake | BState::Probe { .. }
                ),
                "a backend connection is still busy with nobody left"
            );
        }
        // Every simulated connection still open is one sluice holds (and our end of it).
        let (conns, _) = sim::live();
        assert_eq!(
            conns,
            r.backends.len(),
            "sockets left open beyond sluice's backends"
        );
    }

    fn liveness(&mut self) {
        self.connect();
        let Some(c) = self.clients.last_mut() else {
            return; // draining: the listener is closed
        };
        let m = marker(c.id, 0);
        c.next_r = 1;
        c.outbox.extend_from_slice(b"GET /");
        c.outbox.extend_from_slice(&m);
        c.outbox
            .extend_from_slice(b" HTTP/1.1\r\nHost: sim\r\n\r\n");
        let id = c.id;
        for _ in 0..50 {
            self.advance(Duration::from_millis(100));
            let c = self
                .clients
                .iter()
                .find(|c| c.id == id)
                .expect("live client");
            if let Some(end) = find(&c.received, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&c.received[..end]);
                assert!(
                    head.starts_with("HTTP/1.1 200"),
                    "healthy backends, and the answer is: {head}"
                );
                let body = &c.received[end + 4..];
                if body.len() >= 8 {
                    assert_eq!(&body[..8], &m, "the answer carries its request's marker");
                    self.report.live_ok = true;
                    return;
                }
            }
        }
        let c = self
            .clients
            .iter()
            .find(|c| c.id == id)
            .expect("live client");
        panic!(
            "a request with healthy backends got no complete answer in 5 s: {:?}",
            String::from_utf8_lossy(&c.received)
        );
    }
}
