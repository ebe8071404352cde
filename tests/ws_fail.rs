//! Issue 4, failure semantics end to end: peers that vanish, reset, break the protocol
//! or exceed `max_message_bytes`, and the idle and ping timeouts. Each test asserts the
//! exact Close code each side receives and that both connections end.

mod util;
mod wsutil;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::Message;
use util::Proxy;
use wsutil::*;

fn echo_proxy(extra: &str) -> (EchoBackend, Proxy) {
    let b = EchoBackend::start();
    let p = Proxy::start(&ws_ini(extra), &[b.addr]);
    (b, p)
}

/// The codes of the Close frames backend connection `conn` received.
fn codes(b: &EchoBackend, conn: usize) -> Vec<Option<u16>> {
    b.shared
        .closes(conn)
        .iter()
        .map(|c| c.as_ref().map(|c| c.0))
        .collect()
}

/// A session that stays healthy next to the one being broken.
fn bystander(p: &Proxy) -> Ws {
    let (mut ws, _) = ws_connect(p.addr, "/bystander", &[]);
    ws.send(Message::text("still here")).unwrap();
    assert_eq!(next_msg(&mut ws), Message::text("still here"));
    ws
}

#[track_caller]
fn still_echoes(ws: &mut Ws) {
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(next_msg(ws), Message::binary(vec![1, 2, 3]));
}

#[test]
fn backend_eof_mid_session_is_forwarded_to_the_client() {
    let (_b, p) = echo_proxy("");
    let mut other = bystander(&p);
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    ws.send(Message::text("before")).unwrap();
    assert_eq!(next_msg(&mut ws), Message::text("before"));
    let t = Instant::now();
    ws.send(Message::text("cmd:eof")).unwrap();
    // A FIN before any Close is relayed as a FIN (issue 16, half-close), not turned
    // into a Close: the client sees the stream end without a closing handshake.
    match ws.read() {
        Err(tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        )) => {}
        other => panic!("expected the end of the stream, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    still_echoes(&mut other);
}

#[test]
fn backend_reset_mid_session_gives_the_client_1011() {
    let (_b, p) = echo_proxy("");
    let mut other = bystander(&p);
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    let t = Instant::now();
    ws.send(Message::text("cmd:reset")).unwrap();
    assert_eq!(expect_close(&mut ws).0, 1011);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    still_echoes(&mut other);
}

#[test]
fn client_eof_is_forwarded_to_the_backend_and_closes_it() {
    let (b, p) = echo_proxy("");
    let mut other = bystander(&p);
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    ws.send(Message::text("x")).unwrap();
    assert_eq!(next_msg(&mut ws), Message::text("x"));
    ws.get_ref().shutdown(std::net::Shutdown::Both).unwrap();
    drop(ws);
    assert!(
        eventually(|| b.shared.ended(1)),
        "the backend connection stays open"
    );
    // A FIN before any Close is relayed as a FIN (issue 16, half-close): the backend
    // is not told a Close the client never sent.
    assert_eq!(codes(&b, 1), vec![]);
    still_echoes(&mut other);
}

#[test]
fn client_reset_gives_the_backend_1001_and_closes_it() {
    let (b, p) = echo_proxy("");
    let mut other = bystander(&p);
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    ws.send(Message::text("x")).unwrap();
    assert_eq!(next_msg(&mut ws), Message::text("x"));
    set_linger_zero(ws.get_ref());
    drop(ws);
    assert!(
        eventually(|| b.shared.ended(1)),
        "the backend connection stays open"
    );
    assert_eq!(codes(&b, 1), vec![Some(1001)]);
    still_echoes(&mut other);
}

#[test]
fn max_message_bytes_closes_1009_to_the_sender_and_1001_to_the_other_side() {
    let (b, p) = echo_proxy("max_message_bytes=1000");
    // At the limit, whole or fragmented, passes.
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    ws.send(Message::text(pattern(1000))).unwrap();
    assert_eq!(next_msg(&mut ws), Message::text(pattern(1000)));

    // Client sends one byte too many: 1009 to it, 1001 to the backend.
    ws.send(Message::text(pattern(1001))).unwrap();
    assert_eq!(expect_close(&mut ws).0, 1009);
    assert!(eventually(|| b.shared.ended(0)));
    assert_eq!(codes(&b, 0), vec![Some(1001)]);

    // Also when the excess comes in a later fragment of a raw client's message.
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101);
    s.write_all(&frame(false, 0, 2, &[0; 600], MASK)).unwrap();
    s.write_all(&frame(true, 0, 0, &[0; 401], MASK)).unwrap();
    assert_eq!(read_close(&mut s).0, 1009);
    assert!(at_eof(&mut s));
    assert!(eventually(|| b.shared.ended(1)));
    assert_eq!(codes(&b, 1), vec![Some(1001)]);

    // A large message (1 MiB) far over the limit, still being sent when sluice gives
    // up: the sender reads its 1009 and then EOF, not a reset (the lingering close
    // reads and discards the rest rather than closing on unread bytes).
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101);
    let mut w = s.try_clone().unwrap();
    let big = frame(true, 0, 2, &vec![7; 1 << 20], MASK);
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&big);
    });
    assert_eq!(read_close(&mut s).0, 1009);
    assert!(at_eof(&mut s), "the sender got a reset, not EOF");
    writer.join().unwrap();

    // Backend sends too much: 1009 to the backend, 1001 to the client.
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    ws.send(Message::text("cmd:big:1001")).unwrap();
    assert_eq!(expect_close(&mut ws).0, 1001);
    assert!(eventually(|| b.shared.ended(3)));
    assert_eq!(codes(&b, 3), vec![Some(1009)]);
}

/// A raw client breaks the protocol with `bad`: it must get `code`, the backend 1001.
#[track_caller]
fn client_violation(bad: &[u8], code: u16) {
    let (b, p) = echo_proxy("");
    let mut other = bystander(&p);
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101);
    s.write_all(&frame(true, 0, 1, b"fine", MASK)).unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!(f.payload, b"fine");
    s.write_all(bad).unwrap();
    assert_eq!(read_close(&mut s).0, code);
    assert!(at_eof(&mut s), "the proxy closes the connection");
    assert!(eventually(|| b.shared.ended(1)));
    assert_eq!(codes(&b, 1), vec![Some(1001)]);
    still_echoes(&mut other);
}

#[test]
fn unmasked_client_frame_is_1002() {
    client_violation(&frame(true, 0, 1, b"no mask", None), 1002);
}

#[test]
fn oversized_control_frame_is_1002() {
    client_violation(&frame(true, 0, 9, &[b'p'; 126], MASK), 1002);
}

#[test]
fn reserved_opcode_is_1002() {
    client_violation(&frame(true, 0, 3, b"?", MASK), 1002);
}

#[test]
fn bad_utf8_close_reason_is_1007() {
    client_violation(
        &frame(true, 0, 8, &close_payload(1000, &[0xff, 0xfe]), MASK),
        1007,
    );
}

/// What a raw backend received after its 101, and whether it then saw EOF (Some(true))
/// or a reset (Some(false)); None while the connection is open.
type Received = Arc<Mutex<(Vec<u8>, Option<bool>)>>;

/// A raw backend that accepts the upgrade and records the bytes it receives.
fn recording_backend() -> (RawBackend, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let b = RawBackend::start(
        |h| accept_101(h, ""),
        move |mut s, _| {
            let mut buf = [0u8; 4096];
            let end = loop {
                match std::io::Read::read(&mut s, &mut buf) {
                    Ok(0) => break true,
                    Ok(n) => g.lock().unwrap().0.extend_from_slice(&buf[..n]),
                    Err(_) => break false,
                }
            };
            g.lock().unwrap().1 = Some(end);
        },
    );
    (b, got)
}

#[test]
fn violation_in_a_header_split_across_reads_still_closes_both_sides() {
    // The first header byte goes out alone and reaches the backend; the second reveals
    // a 126-byte Ping.
    let (b, got) = recording_backend();
    let p = Proxy::start(&ws_ini(""), &[b.addr]);
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101);
    let bad = frame(true, 0, 9, &[b'p'; 126], MASK);
    s.write_all(&bad[..1]).unwrap();
    assert!(
        eventually(|| !got.lock().unwrap().0.is_empty()),
        "the first byte was relayed on its own"
    );
    s.write_all(&bad[1..]).unwrap();
    assert_eq!(read_close(&mut s).0, 1002);
    assert!(at_eof(&mut s));
    // The backend saw one byte of a frame: no Close can follow it, but it is closed.
    assert!(eventually(|| got.lock().unwrap().1.is_some()));
    assert_eq!(*got.lock().unwrap(), (bad[..1].to_vec(), Some(true)));
}

#[test]
fn backend_violation_is_1002_to_it_and_1001_to_the_client() {
    // A masked server frame (RFC 6455 §5.1).
    let got = std::sync::Arc::new(std::sync::Mutex::new(None));
    let g = got.clone();
    let b = RawBackend::start(
        |h| accept_101(h, ""),
        move |mut s, _| {
            let _ = s.write_all(&frame(true, 0, 1, b"masked", MASK));
            let close = read_frame(&mut s).ok().and_then(|f| f.close());
            *g.lock().unwrap() = Some((close, at_eof(&mut s)));
        },
    );
    let p = Proxy::start(&ws_ini(""), &[b.addr]);
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    assert_eq!(expect_close(&mut ws).0, 1001);
    assert!(eventually(|| got.lock().unwrap().is_some()));
    let (close, eof) = got.lock().unwrap().clone().unwrap();
    assert_eq!(close.map(|c| c.0), Some(1002));
    assert!(eof, "the proxy closes the backend connection");
}

#[test]
fn idle_timeout_closes_with_1001_to_both() {
    let (b, p) = echo_proxy("idle_timeout=1s");
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    ws.send(Message::text("once")).unwrap();
    assert_eq!(next_msg(&mut ws), Message::text("once"));
    let t = Instant::now();
    assert_eq!(expect_close(&mut ws).0, 1001);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(eventually(|| b.shared.ended(0)));
    assert_eq!(codes(&b, 0), vec![Some(1001)]);
}

#[test]
fn idle_timeout_is_not_reset_by_the_proxys_own_pings() {
    // Pings every 300 ms go to both peers and both answer them (tungstenite does so by
    // itself); each answer is relayed to the other side. None of it is activity: the
    // tunnel still closes for idleness after 2 s. Were the Pongs counted, the idle
    // timer would restart with each one and the tunnel would never close.
    let (b, p) = echo_proxy("idle_timeout=2s\nping_interval=300ms\nping_timeout=1s");
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    let t = Instant::now();
    let (mut pings, mut pongs) = (0, 0);
    let close = loop {
        assert!(
            t.elapsed() < WAIT,
            "no Close within {WAIT:?}: the pings keep it open"
        );
        match ws.read() {
            Ok(Message::Ping(p)) => {
                assert_eq!(&p[..], b"sluice");
                pings += 1;
            }
            // The backend's answer to the proxy's Ping, relayed.
            Ok(Message::Pong(p)) => {
                assert_eq!(&p[..], b"sluice");
                pongs += 1;
            }
            Ok(Message::Close(f)) => break f.expect("a Close with a code"),
            Ok(m) => panic!("unexpected {m:?}"),
            Err(e) => panic!("no Close from the proxy: {e}"),
        }
    };
    let waited = t.elapsed();
    assert_eq!(
        (u16::from(close.code), close.reason.as_str()),
        (1001, "idle timeout")
    );
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    // Both sides were pinged and answered, more than once, before the idle close.
    let sluice = b"sluice".to_vec();
    let backend_pings = b.shared.count(Ev::Ping(0, sluice.clone()));
    let client_pongs = b.shared.count(Ev::Pong(0, sluice));
    assert!(
        pings >= 2 && pongs >= 2 && backend_pings >= 2 && client_pongs >= 2,
        "client: {pings} pings, {pongs} backend pongs; backend: {backend_pings} pings, \
         {client_pongs} client pongs"
    );
    assert!(eventually(|| b.shared.ended(0)));
    assert_eq!(codes(&b, 0), vec![Some(1001)]);
}

#[test]
fn ping_timeout_closes_the_tunnel_when_the_backend_stops_answering() {
    // The backend reads the proxy's frames but never answers a Ping; the client answers
    // its own. After ping_timeout the tunnel closes: 1001 to both sides.
    type Seen = Vec<(Instant, Frame)>;
    let seen: Arc<Mutex<(Seen, Option<bool>)>> = Arc::default();
    let sn = seen.clone();
    let b = RawBackend::start(
        |h| accept_101(h, ""),
        move |mut s, _| {
            while let Ok(f) = read_frame(&mut s) {
                let close = f.opcode == 8;
                sn.lock().unwrap().0.push((Instant::now(), f));
                if close {
                    break;
                }
            }
            let eof = at_eof(&mut s);
            sn.lock().unwrap().1 = Some(eof);
        },
    );
    let p = Proxy::start(&ws_ini("ping_interval=300ms\nping_timeout=1s"), &[b.addr]);
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    let t = Instant::now();
    let close = loop {
        assert!(t.elapsed() < WAIT, "no Close within {WAIT:?}");
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(f)) => break f.expect("a Close with a code"),
            Ok(m) => panic!("unexpected {m:?}"),
            Err(e) => panic!("no Close from the proxy: {e}"),
        }
    };
    assert_eq!(
        (u16::from(close.code), close.reason.as_str()),
        (1001, "ping timeout")
    );
    assert!(eventually(|| seen.lock().unwrap().1.is_some()));
    let (frames, eof) = seen.lock().unwrap().clone();
    assert_eq!(eof, Some(true), "the proxy closes the backend connection");
    // One Ping (no second one while the first is unanswered), then the Close; the
    // client's Pongs to its own pings are relayed in between.
    let pings: Vec<_> = frames.iter().filter(|(_, f)| f.opcode == 9).collect();
    assert_eq!(pings.len(), 1, "{frames:?}");
    let (pinged, ping) = pings[0];
    assert!(ping.masked && ping.payload == b"sluice", "{ping:?}");
    let (closed, last) = frames.last().unwrap();
    assert_eq!(last.close().map(|c| c.0), Some(1001), "{frames:?}");
    // The Close comes ping_timeout after the Ping (half of it, for a loaded machine).
    let gap = closed.duration_since(*pinged);
    assert!(
        gap >= Duration::from_millis(500),
        "closed {gap:?} after the Ping"
    );
}

#[test]
fn ping_timeout_closes_a_client_that_stops_answering() {
    let (b, p) = echo_proxy("ping_interval=1s\nping_timeout=1s");
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101);
    let t = Instant::now();
    // The proxy pings; this client reads but never answers.
    let ping = read_frame(&mut s).unwrap();
    assert_eq!(ping.opcode, 9, "{ping:?}");
    assert!(!ping.masked);
    let (code, _) = read_close(&mut s);
    let waited = t.elapsed();
    assert_eq!(code, 1001);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    assert!(at_eof(&mut s));
    assert!(eventually(|| b.shared.ended(0)));
    assert_eq!(codes(&b, 0), vec![Some(1001)]);
}

#[test]
fn a_client_that_answers_pings_stays_connected() {
    let (b, p) = echo_proxy("ping_interval=300ms\nping_timeout=300ms");
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + Duration::from_millis(2000);
    let mut pings = 0;
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Ping(p)) => {
                assert_eq!(&p[..], b"sluice");
                pings += 1;
            }
            Ok(Message::Pong(_)) => {} // the backend's answer to the proxy's ping
            Ok(m) => panic!("unexpected {m:?}"),
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("closed: {e}"),
        }
    }
    assert!(pings >= 2, "{pings} pings in 2 s");
    // The client's answers went through to the backend (relayed like any frame).
    assert!(b.shared.count(Ev::Pong(0, b"sluice".to_vec())) >= 2);
    ws.get_ref().set_read_timeout(Some(WAIT)).unwrap();
    still_echoes(&mut ws);
}

/// A ping that comes due while it cannot be sent (the backend stopped in the middle
/// of a frame, so nothing may be injected towards the client) is tried again an
/// interval later. sluice used to set the tunnel's deadline to the due time, already
/// past, so the timer fired again at once, forever, and the reactor served nobody.
/// Found by the reactor fuzz target (`fuzz/corpus/reactor/regress-ping-due-mid-frame`).
#[test]
fn a_ping_due_mid_frame_does_not_stall_the_proxy() {
    let pinged: Arc<Mutex<Option<Frame>>> = Arc::default();
    let pg = pinged.clone();
    let b = RawBackend::start(
        |head| accept_101(head, ""),
        move |mut s, _| {
            // A text frame announcing 10 bytes, of which 3 are sent; then silence.
            let _ = s.write_all(&[0x81, 10, b'a', b'b', b'c']);
            // The proxy pings this silent backend; it never answers.
            if let Ok(f) = read_frame(&mut s) {
                *pg.lock().unwrap() = Some(f);
            }
            let _ = at_eof(&mut s);
        },
    );
    let p = Proxy::start(
        &ws_ini("ping_interval=300ms\nping_timeout=1s\nidle_timeout=30s"),
        &[b.addr],
    );
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101);
    let mut partial = [0u8; 5];
    std::io::Read::read_exact(&mut s, &mut partial).expect("the partial frame");
    // The client has been silent as long as the backend: when the backend's Ping goes
    // out, the client's is due too, and blocked mid-frame.
    assert!(eventually(|| pinged.lock().unwrap().is_some()));
    let ping = pinged.lock().unwrap().clone().unwrap();
    assert_eq!((ping.opcode, ping.payload.as_slice()), (9, &b"sluice"[..]));
    // The proxy still serves: a new tunnel is set up (a stalled reactor never answers).
    let (_s2, head2) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head2), 101);
    // Nothing was injected into the client's half frame: when the backend's ping times
    // out, the client's connection ends without another byte.
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut rest);
    assert_eq!(rest, b"", "bytes injected inside the client's frame");
}
