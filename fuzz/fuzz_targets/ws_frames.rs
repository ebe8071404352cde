//! WebSocket framing: a stream of frames from one side (the Role comes from
//! the first byte), fed to `FrameTracker` whole and in pieces chosen by the
//! input. Asserts identical events, positions and errors; `consumed <= len`;
//! that every event lands exactly at `header_len + payload_len` after its
//! frame start; that the tracker's header errors match `parse_frame_header`;
//! encode/parse round trips of every parsed header; control payloads unmasked
//! correctly; `apply_mask` in pieces equals a byte-at-a-time mask; and
//! `feed_relay` gives `feed`'s control events, error and consumed bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::ws::{
    apply_mask, encode_frame_header, parse_frame_header, FrameError, FrameHeader, FrameTracker,
    Opcode, Role, TrackerConfig, WsEvent, MAX_HEADER_LEN, RSV1,
};
use protocol::Status;

type Run = (Vec<(usize, WsEvent)>, Option<FrameError>, usize);

fuzz_target!(|data: &[u8]| {
    let [b0, s0, s1, stream @ ..] = data else {
        return;
    };
    let cfg = TrackerConfig {
        from: if b0 & 1 == 0 {
            Role::Client
        } else {
            Role::Server
        },
        rsv_allowed: if b0 & 2 != 0 { RSV1 } else { 0 },
        max_message_bytes: [0, 16, 300, 70_000][usize::from((b0 >> 2) & 3)],
    };
    let whole = run_whole(cfg, stream);
    let seed = u32::from(*s0) << 8 | u32::from(*s1) | 1;
    let pieces = run_pieces(cfg, stream, lengths(seed), false);
    assert_eq!(whole.0, pieces.0, "events differ");
    assert_eq!(whole.1, pieces.1, "errors differ");
    if whole.1.is_none() {
        assert_eq!(whole.2, stream.len());
        assert_eq!(pieces.2, stream.len());
    }
    // `feed_relay`: the control events of `feed`, the same error after the
    // same bytes, whole and with the same cuts.
    let control = |r: &Run| -> Vec<(usize, WsEvent)> {
        r.0.iter()
            .copied()
            .filter(|(_, e)| !matches!(e, WsEvent::FrameEnd { .. }))
            .collect()
    };
    let relay_whole = run_pieces(cfg, stream, || stream.len(), true);
    assert_eq!(
        relay_whole,
        (control(&whole), whole.1, whole.2),
        "relay, whole"
    );
    let relay_pieces = run_pieces(cfg, stream, lengths(seed), true);
    assert_eq!(
        relay_pieces,
        (control(&pieces), pieces.1, pieces.2),
        "relay, pieces"
    );
    check_mask(stream, [*b0, *s0, *s1, 0x5a], usize::from(*s0));
});

/// Feeds the whole rest at once, checking each frame against an independent
/// parse of its header.
fn run_whole(cfg: TrackerConfig, stream: &[u8]) -> Run {
    let mut t = FrameTracker::new(cfg);
    let mut events = Vec::new();
    let mut pos = 0;
    // Where the current frame must end, and its header.
    let mut frame: Option<(usize, FrameHeader)> = None;
    loop {
        let expect = if t.at_frame_boundary() {
            frame = None;
            let parsed = parse_frame_header(&stream[pos..], cfg.from, cfg.rsv_allowed);
            if let Ok(Status::Complete(h)) = parsed {
                round_trip(&h, &stream[pos..]);
                frame = usize::try_from(h.payload_len)
                    .ok()
                    .and_then(|n| n.checked_add(pos + usize::from(h.header_len)))
                    .map(|end| (end, h));
            }
            parsed.err()
        } else {
            None
        };
        let before = pos;
        match t.feed(&stream[pos..]) {
            Ok((n, ev)) => {
                assert!(n <= stream.len() - pos);
                assert!(n == stream.len() - pos || ev.is_some());
                assert!(expect.is_none(), "tracker accepted a header parse rejects");
                pos += n;
                if let Some(ev) = ev {
                    check_event(&t, ev, frame, pos, stream);
                    events.push((pos, ev));
                }
                if n == 0 && ev.is_none() {
                    return (events, None, pos);
                }
            }
            Err(e) => {
                if let Some(want) = expect {
                    assert_eq!(e, want);
                }
                assert_eq!(t.feed(&stream[before..]), Err(e), "errors are sticky");
                return (events, Some(e), pos);
            }
        }
    }
}

/// The event ends the frame that started at the last boundary, exactly where
/// its header said.
fn check_event(
    t: &FrameTracker,
    ev: WsEvent,
    frame: Option<(usize, FrameHeader)>,
    pos: usize,
    stream: &[u8],
) {
    assert!(t.at_frame_boundary());
    let Some((end, h)) = frame else {
        panic!("event {ev:?} without a parsed header");
    };
    assert_eq!(pos, end, "event not at header_len + payload_len");
    match ev {
        WsEvent::FrameEnd { opcode, fin } => {
            assert_eq!((opcode, fin), (h.opcode, h.fin));
            assert!(!opcode.is_control());
        }
        WsEvent::Ping | WsEvent::Pong | WsEvent::Close { .. } => {
            let want_op = match ev {
                WsEvent::Ping => Opcode::Ping,
                WsEvent::Pong => Opcode::Pong,
                _ => Opcode::Close,
            };
            assert_eq!(h.opcode, want_op);
            let mut payload = stream[end - h.payload_len as usize..end].to_vec();
            if let Some(key) = h.mask {
                apply_mask(&mut payload, key, 0);
            }
            assert_eq!(t.control_payload(), &payload[..]);
            if let WsEvent::Close { code } = ev {
                assert!(t.close_seen());
                let want = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                assert_eq!(code, want);
            }
        }
    }
}

/// A parsed header re-encodes to the same bytes and parses back equal.
fn round_trip(h: &FrameHeader, wire: &[u8]) {
    let mut out = [0u8; MAX_HEADER_LEN];
    let n = encode_frame_header(h, &mut out);
    assert_eq!(n, usize::from(h.header_len));
    assert_eq!(&out[..n], &wire[..n], "non-canonical header accepted");
    let from = if h.mask.is_some() {
        Role::Client
    } else {
        Role::Server
    };
    assert_eq!(
        parse_frame_header(&out[..n], from, 0b111),
        Ok(Status::Complete(*h))
    );
}

/// Piece sizes from a seed (xorshift32): mostly tiny pieces, sometimes large ones.
fn lengths(mut rng: u32) -> impl FnMut() -> usize {
    move || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        if rng & 7 == 0 {
            (rng >> 8) as usize % 512
        } else {
            (rng >> 8) as usize % 16
        }
    }
}

/// Feeds pieces of sizes from `next_len` (0 means an empty feed) with `feed`,
/// or with `feed_relay` (`relay`), which may stop early without an event
/// (before a control frame or an error) and never reports a `FrameEnd`.
fn run_pieces(
    cfg: TrackerConfig,
    stream: &[u8],
    mut next_len: impl FnMut() -> usize,
    relay: bool,
) -> Run {
    let mut t = FrameTracker::new(cfg);
    let mut events = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let end = (pos + next_len()).min(stream.len());
        loop {
            let r = if relay {
                t.feed_relay(&stream[pos..end])
            } else {
                t.feed(&stream[pos..end])
            };
            match r {
                Ok((n, ev)) => {
                    assert!(n <= end - pos);
                    assert!(relay || n == end - pos || ev.is_some());
                    pos += n;
                    match ev {
                        Some(WsEvent::FrameEnd { .. }) if relay => {
                            panic!("FrameEnd from feed_relay")
                        }
                        Some(ev) => events.push((pos, ev)),
                        None if pos == end => break,
                        None => assert!(relay),
                    }
                }
                Err(e) => return (events, Some(e), pos),
            }
        }
    }
    (events, None, pos)
}

/// `apply_mask` over two pieces equals masking byte by byte.
fn check_mask(data: &[u8], key: [u8; 4], split: usize) {
    let split = split.min(data.len());
    let offset = u64::from(key[0] & 7);
    let mut fast = data.to_vec();
    let (a, b) = fast.split_at_mut(split);
    apply_mask(a, key, offset);
    apply_mask(b, key, offset + split as u64);
    for (i, (&f, &d)) in fast.iter().zip(data).enumerate() {
        assert_eq!(f, d ^ key[((offset + i as u64) % 4) as usize]);
    }
}
