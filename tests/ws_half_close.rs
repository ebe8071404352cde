//! Issue 16: a WebSocket TCP half-close is relayed like a byte relay does (HAProxy,
//! nginx): a FIN before any Close frame reaches the other side after what was sent
//! before it, and the other direction keeps flowing until it closes too, or the idle
//! timeout passes. Raw clients and raw backends, so every byte and FIN is visible.

mod util;
mod wsutil;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use util::Proxy;
use wsutil::*;

const MASK: Option<[u8; 4]> = Some([9, 8, 7, 6]);

/// What the raw backend saw, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, what: impl Into<String>) {
    log.lock().unwrap().push(what.into());
}

fn seen(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Reads one frame's payload as text, or "EOF" / "error".
fn next(s: &mut impl Read) -> String {
    match read_frame(s) {
        Ok(f) => String::from_utf8_lossy(&f.payload).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => "EOF".into(),
        Err(e) => format!("error {e}"),
    }
}

/// A read that must find the end of the stream (a FIN): true on EOF.
fn eof(s: &mut impl Read) -> bool {
    let mut b = [0u8; 16];
    matches!(s.read(&mut b), Ok(0))
}

#[test]
fn client_half_close_reaches_the_backend_which_still_answers() {
    let log: Log = Log::default();
    let l = log.clone();
    let b = RawBackend::start(
        |h| accept_101(h, ""),
        move |mut s, _| {
            note(&l, next(&mut s));
            note(&l, if eof(&mut s) { "FIN" } else { "no FIN" });
            // The backend answers after the client's FIN, then closes too.
            let _ = s.write_all(&frame(true, 0, 1, b"answer after your FIN", None));
            let _ = s.shutdown(Shutdown::Write);
            note(&l, if eof(&mut s) { "closed" } else { "still open" });
        },
    );
    let p = Proxy::start(&ws_ini(""), &[b.addr]);
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101, "{head}");
    s.write_all(&frame(true, 0, 1, b"last words", MASK))
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    // The backend got the frame, then the FIN, and its answer still comes through.
    assert_eq!(next(&mut s), "answer after your FIN");
    assert!(eof(&mut s), "the backend's FIN is forwarded too");
    assert!(eventually(|| seen(&log).len() == 3), "{:?}", seen(&log));
    assert_eq!(seen(&log), ["last words", "FIN", "closed"]);
}

#[test]
fn backend_half_close_reaches_the_client_which_still_sends() {
    let log: Log = Log::default();
    let l = log.clone();
    let b = RawBackend::start(
        |h| accept_101(h, ""),
        move |mut s, _| {
            let _ = s.write_all(&frame(true, 0, 1, b"no more from me", None));
            let _ = s.shutdown(Shutdown::Write);
            note(&l, next(&mut s));
            note(&l, next(&mut s));
            note(&l, if eof(&mut s) { "FIN" } else { "no FIN" });
        },
    );
    let p = Proxy::start(&ws_ini(""), &[b.addr]);
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101, "{head}");
    assert_eq!(next(&mut s), "no more from me");
    assert!(eof(&mut s), "the backend's FIN is forwarded");
    // The client -> backend direction is still open.
    s.write_all(&frame(true, 0, 1, b"one", MASK)).unwrap();
    s.write_all(&frame(true, 0, 2, b"two", MASK)).unwrap();
    assert!(eventually(|| seen(&log).len() == 2), "{:?}", seen(&log));
    s.shutdown(Shutdown::Write).unwrap();
    assert!(eventually(|| seen(&log).len() == 3), "{:?}", seen(&log));
    assert_eq!(seen(&log), ["one", "two", "FIN"]);
}

#[test]
fn a_half_closed_tunnel_still_ends_at_the_idle_timeout() {
    let log: Log = Log::default();
    let l = log.clone();
    let b = RawBackend::start(
        |h| accept_101(h, ""),
        move |mut s, _| {
            // Never closes by itself (until the test is over): only sluice's idle
            // timeout ends this.
            note(&l, if eof(&mut s) { "FIN" } else { "no FIN" });
            eventually(|| seen(&l).iter().any(|x| x == "test done"));
            drop(s);
        },
    );
    let p = Proxy::start(&ws_ini("idle_timeout=500ms"), &[b.addr]);
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101, "{head}");
    s.shutdown(Shutdown::Write).unwrap();
    // The client can still be written to: it is told 1001, then the connection ends.
    let (code, why) = read_close(&mut s);
    assert_eq!((code, &why[..]), (1001, &b"idle timeout"[..]));
    assert!(eof(&mut s));
    assert_eq!(seen(&log), ["FIN"]);
    note(&log, "test done");
}
