//! The tunnel's rules with scripted frames and time, no sockets.

use super::*;
use protocol::ws::close::{PROTOCOL_ERROR, TOO_BIG};
use protocol::ws::{self, WsEvent};

const MASK: [u8; 4] = [1, 2, 3, 4];

fn live(ping: Option<u64>) -> Liveness {
    Liveness {
        idle: Duration::from_secs(60),
        ping_every: ping.map(Duration::from_secs),
        ping_wait: Duration::from_secs(5),
    }
}

fn tunnel(now: Instant) -> Tunnel {
    let backend = BRef {
        index: 0,
        token: mio::Token(7),
    };
    let srv = SrvId {
        group: 1,
        server: 0,
    };
    Tunnel::new(backend, srv, 0, 1 << 20, now)
}

/// A masked (client) or unmasked (server) binary frame with `len` payload bytes.
fn binary(len: usize, masked: bool) -> Vec<u8> {
    let mut v = vec![0x82];
    assert!(len < 126);
    v.push(len as u8 | if masked { 0x80 } else { 0 });
    if masked {
        v.extend_from_slice(&MASK);
    }
    v.extend(std::iter::repeat_n(0u8, len));
    v
}

/// Feeds `bytes` in `dir` the way the relay does and reports the last event.
fn feed(t: &mut Tunnel, dir: Dir, bytes: &[u8], now: Instant) -> Option<WsEvent> {
    let mut at = 0;
    let mut last = None;
    while at < bytes.len() {
        let (n, ev) = t.tracker(dir).feed(&bytes[at..]).expect("valid frames");
        let own_pong =
            ev == Some(WsEvent::Pong) && t.tracker(dir).control_payload() == PING_PAYLOAD;
        t.relayed(dir, n, own_pong, now);
        at += n;
        last = ev.or(last);
        if n == 0 && ev.is_none() {
            break;
        }
    }
    last
}

#[test]
fn a_violation_closes_the_offender_with_its_code_and_the_other_side_with_1001() {
    let up = Tunnel::violation(Dir::Up, ws::FrameError::MessageTooBig);
    assert_eq!(up.to_client, Some(TOO_BIG));
    assert_eq!(up.to_backend, Some(GOING_AWAY));
    let down = Tunnel::violation(Dir::Down, ws::FrameError::MaskedServerFrame);
    assert_eq!(down.to_client, Some(GOING_AWAY));
    assert_eq!(down.to_backend, Some(PROTOCOL_ERROR));
}

#[test]
fn how_a_side_ends_picks_the_code() {
    let now = Instant::now();
    let t = tunnel(now);
    assert!(t.ended(Sides::default()).is_none(), "both open");
    let reset = Sides {
        backend_err: true,
        ..Sides::default()
    };
    let (c, why) = t.ended(reset).unwrap();
    assert_eq!((c.to_client, c.to_backend), (Some(INTERNAL_ERROR), None));
    assert_eq!(why, "backend went away");
    // A FIN inside a frame can never be completed: the tunnel ends.
    let mut t = tunnel(now);
    feed(&mut t, Dir::Down, &binary(10, false)[..5], now);
    let left = Sides {
        backend_eof: true,
        ..Sides::default()
    };
    assert_eq!(t.ended(left).unwrap().0.to_client, Some(GOING_AWAY));
    let mut t = tunnel(now);
    feed(&mut t, Dir::Up, &binary(10, true)[..5], now);
    let client = Sides {
        client_eof: true,
        ..Sides::default()
    };
    let (c, why) = t.ended(client).unwrap();
    assert_eq!((c.to_client, c.to_backend), (None, Some(GOING_AWAY)));
    assert_eq!(why, "client went away");
    // A read reset remembered from the relay counts as the backend failing.
    let mut t = tunnel(now);
    t.read_failed(Dir::Down);
    let (c, _) = t.ended(Sides::default()).unwrap();
    assert_eq!(c.to_client, Some(INTERNAL_ERROR));
}

#[test]
fn a_close_seen_both_ways_ends_quietly() {
    let now = Instant::now();
    let mut t = tunnel(now);
    let mut up = Vec::new();
    ws::write_close(1000, b"", Some(MASK), &mut up);
    let mut down = Vec::new();
    ws::write_close(1000, b"", None, &mut down);
    feed(&mut t, Dir::Up, &up, now);
    feed(&mut t, Dir::Down, &down, now);
    let eof = Sides {
        backend_eof: true,
        client_eof: true,
        ..Sides::default()
    };
    let (c, why) = t.ended(eof).unwrap();
    assert_eq!(c, Closes::default());
    assert_eq!(why, "closed");
}

#[test]
fn closes_are_injected_only_at_frame_boundaries_and_once() {
    let now = Instant::now();
    let want = Closes {
        to_client: Some(GOING_AWAY),
        to_backend: Some(GOING_AWAY),
    };
    // The backend stopped inside a frame: nothing may go to the client.
    let mut t = tunnel(now);
    let frame = binary(10, false);
    feed(&mut t, Dir::Down, &frame[..5], now);
    let got = t.finish(want).unwrap();
    assert_eq!(got.to_client, None);
    assert_eq!(got.to_backend, Some(GOING_AWAY));
    assert!(t.finishing());
    assert_eq!(t.finish(want), None, "a second finish says nothing");
    // The client already sent its Close: no second Close goes to the backend.
    let mut t = tunnel(now);
    let mut close = Vec::new();
    ws::write_close(1000, b"", Some(MASK), &mut close);
    feed(&mut t, Dir::Up, &close, now);
    let got = t.finish(want).unwrap();
    assert_eq!((got.to_client, got.to_backend), (Some(GOING_AWAY), None));
}

#[test]
fn a_client_that_vanished_leaves_1001_for_the_backend_only_at_a_boundary() {
    let now = Instant::now();
    let mut t = tunnel(now);
    assert_eq!(t.dropped(), Some(GOING_AWAY));
    let frame = binary(10, true);
    feed(&mut t, Dir::Up, &frame[..8], now);
    assert_eq!(t.dropped(), None, "mid-frame");
    feed(&mut t, Dir::Up, &frame[8..], now);
    assert_eq!(t.dropped(), Some(GOING_AWAY));
    t.finish(Closes::default());
    assert_eq!(t.dropped(), None, "already said goodbye");
}

#[test]
fn idle_and_ping_deadlines() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut t = tunnel(t0);
    // No pings configured: only the idle timeout.
    assert_eq!(t.next_deadline(t0, live(None)), t0 + s(60));
    assert_eq!(
        t.due(t0 + s(30), live(None), true),
        Due::Ping {
            client: false,
            backend: false
        }
    );
    assert_eq!(
        t.due(t0 + s(60), live(None), true),
        Due::Finish("idle timeout")
    );

    // Pings every 10 s: both sides are pinged once, then must answer within 5 s.
    let mut t = tunnel(t0);
    let l = live(Some(10));
    assert_eq!(t.next_deadline(t0, l), t0 + s(10));
    let due = t.due(t0 + s(10), l, true);
    assert_eq!(
        due,
        Due::Ping {
            client: true,
            backend: true
        }
    );
    assert_eq!(t.next_deadline(t0 + s(10), l), t0 + s(15));
    // The client answers; the backend does not.
    t.heard(Dir::Up, t0 + s(12));
    assert_eq!(t.late_side(t0 + s(15), l), Some("backend"));
    assert_eq!(t.due(t0 + s(15), l, true), Due::Finish("ping timeout"));
}

#[test]
fn a_ping_due_mid_frame_waits_an_interval_instead_of_firing_again_at_once() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let l = live(Some(10));
    let mut t = tunnel(t0);
    let frame = binary(10, false);
    feed(&mut t, Dir::Down, &frame[..4], t0);
    t.heard(Dir::Down, t0);
    let due = t.due(t0 + s(10), l, false);
    assert_eq!(
        due,
        Due::Ping {
            client: false,
            backend: false
        }
    );
    // The regression: a deadline at the (past) due time spins the reactor.
    assert!(t.next_deadline(t0 + s(10), l) > t0 + s(10));
}

#[test]
fn a_pong_to_sluices_own_ping_is_not_activity() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut t = tunnel(t0);
    let mut pong = Vec::new();
    ws::write_pong(PING_PAYLOAD, Some(MASK), &mut pong);
    assert_eq!(
        feed(&mut t, Dir::Up, &pong, t0 + s(50)),
        Some(WsEvent::Pong)
    );
    assert_eq!(
        t.due(t0 + s(60), live(None), true),
        Due::Finish("idle timeout")
    );
    // Any other frame is.
    let mut t = tunnel(t0);
    feed(&mut t, Dir::Up, &binary(3, true), t0 + s(50));
    assert_ne!(
        t.due(t0 + s(60), live(None), true),
        Due::Finish("idle timeout")
    );
}

#[test]
fn finishing_tunnels_close_when_their_deadline_fires() {
    let t0 = Instant::now();
    let mut t = tunnel(t0);
    t.finish(Closes::default());
    assert_eq!(t.due(t0, live(Some(1)), true), Due::Close);
}

/// Sides after a relay pass: `eof` for the client and the backend, outputs flushed.
fn sides(client_eof: bool, backend_eof: bool) -> Sides {
    Sides {
        client_eof,
        backend_eof,
        client_flushed: true,
        backend_flushed: true,
        ..Sides::default()
    }
}

#[test]
fn a_fin_at_a_frame_boundary_is_forwarded_once_after_the_flush_and_the_other_way_stays_open() {
    let now = Instant::now();
    for client_first in [true, false] {
        let mut t = tunnel(now);
        feed(&mut t, Dir::Up, &binary(3, true), now);
        feed(&mut t, Dir::Down, &binary(3, false), now);
        let first = if client_first {
            sides(true, false)
        } else {
            sides(false, true)
        };
        // Bytes still queued for the receiving side: the FIN waits behind them.
        let mut unflushed = first;
        unflushed.backend_flushed = false;
        unflushed.client_flushed = false;
        assert_eq!(t.half_close(unflushed), Shut::default());
        assert!(t.ended(unflushed).is_none(), "a half-close is not an end");
        let want = Shut {
            backend: client_first,
            client: !client_first,
        };
        assert_eq!(t.half_close(first), want);
        assert!(t.half_closed());
        assert_eq!(t.half_close(first), Shut::default(), "forwarded once");
        assert!(t.ended(first).is_none(), "the other direction stays open");
        // The other side closes too: the tunnel ends with nothing more to say.
        let both = sides(true, true);
        assert_eq!(
            t.half_close(both),
            Shut {
                backend: !client_first,
                client: client_first
            }
        );
        let (c, why) = t.ended(both).unwrap();
        assert_eq!((c, why), (Closes::default(), "both sides closed"));
    }
}

#[test]
fn a_half_closed_side_is_told_nothing_more() {
    let now = Instant::now();
    let both = Closes {
        to_client: Some(GOING_AWAY),
        to_backend: Some(GOING_AWAY),
    };
    // The client's FIN went to the backend: no Close may follow it there.
    let mut t = tunnel(now);
    t.half_close(sides(true, false));
    assert_eq!(t.dropped(), None);
    let got = t.finish(both).unwrap();
    assert_eq!((got.to_client, got.to_backend), (Some(GOING_AWAY), None));
    // The backend's FIN went to the client: a backend reset afterwards tells it nothing.
    let mut t = tunnel(now);
    t.half_close(sides(false, true));
    let reset = Sides {
        backend_err: true,
        ..sides(false, true)
    };
    let (want, why) = t.ended(reset).unwrap();
    assert_eq!(why, "backend went away");
    let got = t.finish(want).unwrap();
    assert_eq!(got, Closes::default());
}

#[test]
fn a_fin_inside_a_frame_or_after_a_reset_is_not_forwarded() {
    let now = Instant::now();
    let mut t = tunnel(now);
    feed(&mut t, Dir::Up, &binary(10, true)[..4], now);
    assert_eq!(t.half_close(sides(true, false)), Shut::default());
    assert!(t.ended(sides(true, false)).is_some());
    let mut t = tunnel(now);
    t.read_failed(Dir::Down);
    assert_eq!(t.half_close(sides(false, true)), Shut::default());
    // Once sluice is closing, its own goodbye does the rest.
    let mut t = tunnel(now);
    t.finish(Closes::default());
    assert_eq!(t.half_close(sides(true, true)), Shut::default());
}

#[test]
fn a_half_closed_tunnel_pings_nobody_and_still_ends_when_idle() {
    let now = Instant::now();
    let l = live(Some(10));
    let mut t = tunnel(now);
    t.half_close(sides(true, false));
    let later = now + Duration::from_secs(20);
    assert_eq!(
        t.next_deadline(later, l),
        now + l.idle,
        "only the idle timeout"
    );
    assert_eq!(
        t.due(later, l, true),
        Due::Ping {
            client: false,
            backend: false
        }
    );
    // Bytes the other way keep it alive; silence ends it.
    feed(&mut t, Dir::Down, &binary(3, false), later);
    assert_eq!(t.next_deadline(later, l), later + l.idle);
    assert_eq!(t.due(later + l.idle, l, true), Due::Finish("idle timeout"));
}

#[test]
fn rebalancing_sheds_with_1012_only_at_a_boundary_to_the_client() {
    let now = Instant::now();
    let shed = Closes {
        to_client: Some(protocol::ws::close::SERVICE_RESTART),
        to_backend: Some(GOING_AWAY),
    };
    let mut t = tunnel(now);
    assert_eq!(t.opened(), now);
    assert_eq!(t.rebalance(), Some(shed));
    // The backend stopped inside a frame: the 1012 cannot go now.
    let frame = binary(10, false);
    feed(&mut t, Dir::Down, &frame[..5], now);
    assert_eq!(t.rebalance(), None, "mid-frame to the client");
    feed(&mut t, Dir::Down, &frame[5..], now);
    assert_eq!(t.rebalance(), Some(shed));
    // The client is mid-frame: the client still gets its 1012, the backend nothing.
    let up = binary(10, true);
    feed(&mut t, Dir::Up, &up[..8], now);
    let want = t.rebalance().unwrap();
    assert_eq!(
        t.finish(want),
        Some(Closes {
            to_backend: None,
            ..shed
        })
    );
    assert_eq!(t.rebalance(), None, "already closing");
    // The backend already sent its Close: the client may not get a second one.
    let mut t = tunnel(now);
    let mut close = Vec::new();
    ws::write_close(1000, b"", None, &mut close);
    feed(&mut t, Dir::Down, &close, now);
    assert_eq!(t.rebalance(), None);
}

#[test]
fn the_log_entry_counts_bytes_and_messages_each_way_and_names_the_first_close() {
    let now = Instant::now();
    let mut t = tunnel(now);
    t.set_log_path(b"/chat");
    // Up: two messages, one of them in two fragments; down: one message.
    let mut up = binary(10, true);
    up.extend_from_slice(&[0x02, 0x83, 1, 2, 3, 4, 0, 0, 0]); // Binary, no FIN
    up.extend_from_slice(&[0x80, 0x81, 1, 2, 3, 4, 0]); // Continuation, FIN
    feed(&mut t, Dir::Up, &up, now);
    let down = binary(20, false);
    feed(&mut t, Dir::Down, &down, now);
    let mut close = Vec::new();
    ws::write_close(1000, b"bye", None, &mut close);
    let later = now + Duration::from_millis(2500);
    assert_eq!(
        feed(&mut t, Dir::Down, &close, later),
        Some(WsEvent::Close { code: Some(1000) })
    );
    t.close_relayed(Dir::Down, Some(1000));
    // The client's answering Close comes second: the backend's is the one logged.
    t.close_relayed(Dir::Up, Some(1000));
    let e = t.log_entry(b"10.0.0.1", "server1", later);
    assert_eq!(e.path, b"/chat");
    assert_eq!(
        (e.bytes_in, e.bytes_out),
        (up.len() as u64, (down.len() + close.len()) as u64)
    );
    assert_eq!((e.messages_in, e.messages_out), (2, 1));
    assert_eq!((e.close_code, e.close_by), (Some(1000), Some("backend")));
    assert_eq!(e.duration_us, 2_500_000);
}

#[test]
fn the_log_entry_names_sluice_when_sluice_closed_or_the_client_vanished() {
    let now = Instant::now();
    let mut t = tunnel(now);
    let e = t.log_entry(b"10.0.0.1", "server1", now);
    assert_eq!(
        (e.close_code, e.close_by),
        (Some(GOING_AWAY), Some("sluice"))
    );
    let mut t2 = tunnel(now);
    t2.finish(Closes {
        to_client: Some(INTERNAL_ERROR),
        to_backend: None,
    });
    let e = t2.log_entry(b"10.0.0.1", "server1", now);
    assert_eq!(
        (e.close_code, e.close_by),
        (Some(INTERNAL_ERROR), Some("sluice"))
    );
    t.close_relayed(Dir::Up, None);
    let e = t.log_entry(b"10.0.0.1", "server1", now);
    assert_eq!((e.close_code, e.close_by), (None, Some("client")));
}
