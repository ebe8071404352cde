//! Bulk bodies and WebSocket payloads through the real binary's splice(2) path (issue 18):
//! every framing byte for byte (Content-Length up and down, chunked up and down, a
//! close-delimited response, large WebSocket messages both ways), with a reader that
//! pauses until the writer stalls and then reads everything, keep-alive after a spliced
//! body on the same client and the same pooled backend connection, HEAD with a
//! Content-Length, an answer that comes while the upload is still backed up, and peers
//! vanishing mid-transfer without a leaked pipe or socket (sluice's descriptors counted
//! through /proc/PID/fd).
//!
//! Sizes are several MiB so that bodies take the splice path (the proxy splices once at
//! least 16 KiB of payload are known) and the pipe fills while a reader pauses.
mod util;
mod wsutil;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use util::*;

const MIB: usize = 1 << 20;

/// `n` pseudo-random bytes (xorshift64 from `seed`): a shifted or repeated piece shows.
fn pattern(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Chunk sizes for chunked bodies: large and small mixed, so chunk heads fall anywhere.
const CHUNKS: [usize; 6] = [300_000, 5, 70_000, 1, 65_536, 17_000];

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut at, mut k) = (0, 0);
    while at < body.len() {
        let n = CHUNKS[k % CHUNKS.len()].min(body.len() - at);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&body[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
        k += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// What the backend saw: (connection number, "METHOD target").
type Seen = Arc<Mutex<Vec<(usize, String)>>>;

/// Bytes written so far by a writer whose reader is paused, for `wait_stalled`.
type Progress = Arc<AtomicU64>;

/// Waits until `p` stops moving (the writer is blocked: every queue on the way is full),
/// sampling every 50 ms, or until `done` says the writer finished (all of it fit).
fn wait_stalled(p: &AtomicU64, done: impl Fn() -> bool) {
    let mut last = u64::MAX;
    let stalled = wait_until(|| {
        let now = p.load(Ordering::SeqCst);
        let still = (now == last && now > 0) || done();
        last = now;
        if !still {
            std::thread::sleep(Duration::from_millis(50));
        }
        still
    });
    assert!(stalled, "the writer neither stalled nor finished");
}

fn read_exact_or_none(s: &mut TcpStream, n: usize, stop: &AtomicBool) -> Option<Vec<u8>> {
    let mut out = vec![0u8; n];
    util::read_exact_retry(s, &mut out, stop)?;
    Some(out)
}

fn read_line(s: &mut TcpStream, stop: &AtomicBool) -> Option<String> {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.extend(read_exact_or_none(s, 1, stop)?);
    }
    String::from_utf8(line).ok()
}

/// Reads a request body (Content-Length or chunked) whole; None if the stream ended.
fn read_body(s: &mut TcpStream, head: &str, stop: &AtomicBool, max: usize) -> Option<Vec<u8>> {
    if let Some(len) = head_value(head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        return read_exact_or_none(s, len.min(max), stop);
    }
    let mut body = Vec::new();
    loop {
        let size = read_line(s, stop)?;
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            read_line(s, stop)?; // no trailers: the final CRLF
            return Some(body);
        }
        body.extend(read_exact_or_none(s, n, stop)?);
        read_line(s, stop)?;
        if body.len() >= max {
            return Some(body);
        }
    }
}

/// The backend. Requests (the seed of every pattern is the body size):
/// - POST/PUT `/up`: the body (any framing) is read whole, answered `<len> <fnv>`;
///   `/up-slow` first waits until the client's writer (`progress`) stalls; `/early`
///   waits for that stall, answers `early` at once, then reads the body whole;
///   `/vanish-up` reads 1 MiB and closes.
/// - GET `/down/N` (and HEAD): N pattern bytes with Content-Length; `/chunked/N`: chunked
///   in `CHUNKS` sizes; `/close/N`: until close; `/vanish/N`: half of them, then close;
///   `/slow/N`: like `/down/N`, counting what it wrote in `progress`.
/// - anything else: `ok`.
fn backend(seen: Seen, progress: Progress) -> RawBackend {
    RawBackend::start(move |mut s, conn, stop| {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while let Some(head) = read_head_raw(&mut s, stop) {
            let mut parts = head.split(' ');
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            seen.lock()
                .unwrap()
                .push((conn, format!("{method} {target}")));
            let n = |prefix: &str| {
                target
                    .strip_prefix(prefix)
                    .and_then(|n| n.parse::<usize>().ok())
            };
            if method == "POST" || method == "PUT" {
                if target == "/up-slow" || target == "/early" {
                    wait_stalled(&progress, || false);
                }
                if target == "/early"
                    && s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
                        .is_err()
                {
                    return;
                }
                let max = if target == "/vanish-up" {
                    MIB
                } else {
                    usize::MAX
                };
                let Some(body) = read_body(&mut s, &head, stop, max) else {
                    return;
                };
                if target == "/vanish-up" {
                    return;
                }
                if target == "/early" {
                    continue;
                }
                let text = format!("{} {:x}", body.len(), fnv(&body));
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                );
                if s.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            } else if let Some(len) = n("/down/").or(n("/slow/")).or(n("/vanish/")) {
                let h = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
                if s.write_all(h.as_bytes()).is_err() || method == "HEAD" {
                    continue;
                }
                let body = pattern(len as u64, len);
                let end = if target.starts_with("/vanish/") {
                    len / 2
                } else {
                    len
                };
                for piece in body[..end].chunks(64 * 1024) {
                    if s.write_all(piece).is_err() {
                        return;
                    }
                    if target.starts_with("/slow/") {
                        progress.fetch_add(piece.len() as u64, Ordering::SeqCst);
                    }
                }
                if end < len {
                    return;
                }
            } else if let Some(len) = n("/chunked/") {
                let h = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
                if s.write_all(h).is_err()
                    || s.write_all(&chunked(&pattern(len as u64, len))).is_err()
                {
                    return;
                }
            } else if let Some(len) = n("/close/") {
                let h = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                let _ = s
                    .write_all(h)
                    .and_then(|_| s.write_all(&pattern(len as u64, len)));
                return;
            } else if s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    })
}

struct Setup {
    proxy: ProxyProcess,
    seen: Seen,
    progress: Progress,
    _backend: RawBackend,
}

fn setup() -> Setup {
    let (seen, progress) = (Seen::default(), Progress::default());
    let b = backend(seen.clone(), progress.clone());
    let proxy = ProxyProcess::start(
        "[http]\nserver1_addr={b0}\nserver1_min_workers=0\n",
        &[b.addr],
    );
    Setup {
        proxy,
        seen,
        progress,
        _backend: b,
    }
}

/// Sends a request with `body` (Content-Length, or chunked) from a writer thread (the
/// proxy may stop reading while the response has not started) counting into `progress`.
fn upload(c: &mut Client, target: &str, body: &[u8], is_chunked: bool, progress: &Progress) {
    let framing = if is_chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", body.len())
    };
    c.send(format!("POST {target} HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n").as_bytes());
    let wire = if is_chunked {
        chunked(body)
    } else {
        body.to_vec()
    };
    let mut w = c.w.try_clone().unwrap();
    let p = progress.clone();
    let writer = std::thread::spawn(move || {
        for piece in wire.chunks(64 * 1024) {
            if w.write_all(piece).is_err() {
                return;
            }
            p.fetch_add(piece.len() as u64, Ordering::SeqCst);
        }
    });
    let resp = c.read_response(false).expect("a response to the upload");
    writer.join().unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.text(),
        format!("{} {:x}", body.len(), fnv(body)),
        "{target}: body changed on the way"
    );
}

#[test]
fn bodies_of_every_framing_cross_byte_for_byte() {
    let t = setup();
    let mut c = Client::connect(t.proxy.addr);
    for (size, is_chunked) in [(6 * MIB + 3, false), (5 * MIB + 7, true)] {
        upload(
            &mut c,
            "/up",
            &pattern(size as u64, size),
            is_chunked,
            &t.progress,
        );
    }
    for target in ["/down", "/chunked"] {
        let size = 6 * MIB + 11;
        let r = c.get(&format!("{target}/{size}"));
        assert_eq!(r.status, 200);
        assert!(
            r.body == pattern(size as u64, size),
            "{target}: body changed on the way"
        );
    }
    // Close-delimited: the body ends when the backend closes, and so does the connection.
    let size = 5 * MIB + 1;
    let r = c.get(&format!("/close/{size}"));
    assert!(
        r.body == pattern(size as u64, size),
        "close-delimited body changed on the way"
    );
}

#[test]
fn a_paused_reader_gets_everything_intact_both_ways() {
    let t = setup();
    let mut c = Client::connect(t.proxy.addr);
    // Upload: the backend reads nothing until the client's writer is stuck.
    let size = 12 * MIB + 5;
    upload(
        &mut c,
        "/up-slow",
        &pattern(size as u64, size),
        false,
        &t.progress,
    );
    // Download: the client reads nothing until the backend's writer is stuck.
    t.progress.store(0, Ordering::SeqCst);
    let size = 24 * MIB + 9;
    c.send(format!("GET /slow/{size} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    wait_stalled(&t.progress, || false);
    let r = c.read_response(false).expect("the slow download");
    assert!(
        r.body == pattern(size as u64, size),
        "paused download changed on the way"
    );
}

#[test]
fn keep_alive_after_spliced_bodies_on_the_same_client_and_backend_connection() {
    let t = setup();
    let mut c = Client::connect(t.proxy.addr);
    let size = 4 * MIB + 1;
    // A body and the next request in the same writes: nothing past the body's end may be
    // taken as body bytes.
    let body = pattern(size as u64, size);
    let mut wire =
        format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n").into_bytes();
    wire.extend_from_slice(&body);
    wire.extend_from_slice(b"GET /after-upload HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut w = c.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&wire).unwrap());
    let r = c.read_response(false).expect("upload response");
    assert_eq!(r.text(), format!("{size} {:x}", fnv(&body)));
    assert_eq!(c.read_response(false).expect("pipelined GET").text(), "ok");
    writer.join().unwrap();
    let r = c.get(&format!("/down/{size}"));
    assert!(r.body == pattern(size as u64, size));
    assert_eq!(c.get("/after-download").text(), "ok");
    // HEAD: a Content-Length and no body; the next response is the next one.
    c.send(format!("HEAD /down/{size} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let r = c.read_response(true).expect("HEAD response");
    assert_eq!(r.header("content-length"), Some(size.to_string().as_str()));
    assert_eq!(c.get("/after-head").text(), "ok");
    let seen = t.seen.lock().unwrap().clone();
    let conns: Vec<usize> = seen.iter().map(|(c, _)| *c).collect();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(
        conns.iter().all(|&k| k == conns[0]),
        "one pooled backend connection throughout: {seen:?}"
    );
}

#[test]
fn an_early_answer_to_a_blocked_upload_arrives_whole_and_no_body_byte_becomes_a_request() {
    // The backend answers while the upload is backed up behind it (the pipe full, the
    // client's reads masked), then reads the body on. The answer must reach the client
    // whole. If part of the body was still unread when the answer came, the client's
    // connection closes after it (lingering: the rest could not be told from a next
    // request) and the backend connection, left mid-body, never carries another request;
    // if the whole body was in already, the connection may stay and serve the next one.
    // Either way no body byte is ever read as a request head, and nothing hangs.
    let t = setup();
    for round in 0..3 {
        t.progress.store(0, Ordering::SeqCst);
        let size = 8 * MIB + round;
        let mut c = Client::connect(t.proxy.addr);
        c.send(
            format!("POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n").as_bytes(),
        );
        let mut w = c.w.try_clone().unwrap();
        let p = t.progress.clone();
        let writer = std::thread::spawn(move || {
            for piece in pattern(size as u64, size).chunks(64 * 1024) {
                if w.write_all(piece).is_err() {
                    return;
                }
                p.fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
        });
        let r = c.read_response(false).expect("the early answer");
        assert_eq!((r.status, r.text().as_str()), (200, "early"));
        writer.join().unwrap();
        // The same connection: closed (EOF or reset, at once), or alive and answering.
        let _ =
            c.w.write_all(b"GET /after-early HTTP/1.1\r\nHost: t\r\n\r\n");
        match c.read_response(false) {
            Some(r) => assert_eq!(r.text(), "ok", "round {round}"),
            None => assert!(c.closed(), "round {round}: neither an answer nor a close"),
        }
        assert_eq!(get(t.proxy.addr, "/fresh").text(), "ok");
    }
    let seen = t.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|(_, r)| ["POST /early", "GET /after-early", "GET /fresh"].contains(&r.as_str())),
        "a body byte was read as a request: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|(_, r)| r == "POST /early").count(),
        3,
        "{seen:?}"
    );
}

/// Serves a small request and a spliced download on a new connection, so the proxy's
/// pool holds one idle backend connection and one empty pipe, whatever came before.
fn settle(t: &Setup) {
    let mut c = Client::connect(t.proxy.addr);
    assert_eq!(c.get("/settle").text(), "ok");
    assert_eq!(c.get(&format!("/down/{}", 2 * MIB)).body.len(), 2 * MIB);
}

#[test]
fn peers_vanishing_mid_splice_leak_no_pipe_or_socket() {
    let t = setup();
    let pid = t.proxy.pid();
    settle(&t);
    let (sockets, pipes) = steady_fds(pid);
    // The client stops reading (its pipe fills), then vanishes.
    t.progress.store(0, Ordering::SeqCst);
    let mut c = Client::connect(t.proxy.addr);
    c.send(format!("GET /slow/{} HTTP/1.1\r\nHost: t\r\n\r\n", 64 * MIB).as_bytes());
    wait_stalled(&t.progress, || false);
    drop(c);
    // The client vanishes in the middle of an upload the backend is slow to read.
    t.progress.store(0, Ordering::SeqCst);
    let c = Client::connect(t.proxy.addr);
    let mut w = c.w.try_clone().unwrap();
    w.write_all(
        format!(
            "POST /up-slow HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            64 * MIB
        )
        .as_bytes(),
    )
    .unwrap();
    let p = t.progress.clone();
    let writer = std::thread::spawn(move || {
        for piece in pattern(1, 8 * MIB).chunks(64 * 1024) {
            if w.write_all(piece).is_err() {
                return;
            }
            p.fetch_add(piece.len() as u64, Ordering::SeqCst);
        }
        let _ = w.shutdown(std::net::Shutdown::Both);
    });
    writer.join().unwrap();
    drop(c);
    // The backend vanishes in the middle of a download, and of an upload.
    let mut c = Client::connect(t.proxy.addr);
    c.send(format!("GET /vanish/{} HTTP/1.1\r\nHost: t\r\n\r\n", 8 * MIB).as_bytes());
    let (status, _) = c.read_head().expect("the head before the backend vanished");
    assert_eq!(status, 200);
    let got = c.read_rest();
    assert!(
        got.len() < 8 * MIB,
        "a truncated response must end the connection"
    );
    assert!(
        got == pattern((8 * MIB) as u64, 8 * MIB)[..got.len()],
        "the part that came is intact"
    );
    let mut c = Client::connect(t.proxy.addr);
    c.send(
        format!(
            "POST /vanish-up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            8 * MIB
        )
        .as_bytes(),
    );
    let mut w = c.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&pattern(2, 8 * MIB));
    });
    let _ = c.read_rest();
    writer.join().unwrap();
    drop(c);
    settle(&t);
    wait_until(|| steady_fds(pid).0.len() == sockets.len());
    let (sockets_after, pipes_after) = steady_fds(pid);
    assert_eq!(
        sockets_after.len(),
        sockets.len(),
        "sockets leaked: {sockets_after:?}"
    );
    // Empty pipes stay in the pool for reuse; one more than before when two transfers
    // overlapped at some point, never one per transfer.
    assert!(
        pipes_after.len() <= pipes.len() + 2,
        "pipes leaked: {pipes_after:?}"
    );
}

#[test]
fn large_websocket_messages_cross_both_ways_with_a_paused_reader() {
    use wsutil::{frame, raw_upgrade, read_frame, status, ws_ini, EchoBackend, MASK};
    let b = EchoBackend::start();
    let p = ProxyProcess::start(&ws_ini(""), &[b.addr]);
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101);
    let messages: Vec<Vec<u8>> = (0..3)
        .map(|k| pattern(k + 7, 5 * MIB + k as usize))
        .collect();
    let written = Progress::default();
    let mut w = s.try_clone().unwrap();
    let (msgs, wr) = (messages.clone(), written.clone());
    let writer = std::thread::spawn(move || {
        for m in &msgs {
            let f = frame(true, 0, 2, m, MASK);
            for piece in f.chunks(64 * 1024) {
                w.write_all(piece).unwrap();
                wr.fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
        }
    });
    // Nothing is read until the client's writer is stuck (or done): the echoes back up
    // into the proxy, and so do the client's messages behind them.
    let total: u64 = messages.iter().map(|m| m.len() as u64 + 14).sum();
    wait_stalled(&written, || written.load(Ordering::SeqCst) == total);
    for m in &messages {
        let f = read_frame(&mut s).expect("an echoed message");
        assert_eq!((f.opcode, f.fin, f.masked), (2, true, false));
        assert!(f.payload == *m, "a message changed on the way");
    }
    writer.join().unwrap();
}
