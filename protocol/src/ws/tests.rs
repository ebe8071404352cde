//! Stream tests for `FrameTracker` through the public API: table cases over
//! byte literals, each fed whole, split at every byte and byte by byte, which
//! must give the same events at the same positions and the same error.

use crate::ws::*;
use crate::Status;

type Run = (Vec<(usize, WsEvent)>, Option<FrameError>, usize);

/// Feeds `bytes` cut at `cuts` (ascending), each piece until it is used up
/// or an error. Returns events at absolute positions, the error, and the
/// total consumed.
fn run(cfg: TrackerConfig, bytes: &[u8], cuts: &[usize]) -> Run {
    let mut t = FrameTracker::new(cfg);
    let mut events = Vec::new();
    let mut pos = 0;
    let ends = cuts.iter().copied().chain([bytes.len()]);
    for end in ends {
        while pos < end {
            match t.feed(&bytes[pos..end]) {
                Ok((n, ev)) => {
                    assert!(n <= end - pos);
                    assert!(n == end - pos || ev.is_some(), "stopped without an event");
                    pos += n;
                    events.extend(ev.map(|e| (pos, e)));
                }
                Err(e) => {
                    assert_eq!(t.feed(&bytes[pos..end]), Err(e), "errors are sticky");
                    return (events, Some(e), pos);
                }
            }
        }
    }
    (events, None, pos)
}

/// `run` with `feed_relay`: only control events, each alone in its call; a
/// call that stops early without an event is followed by an event or an error.
fn run_relay(cfg: TrackerConfig, bytes: &[u8], cuts: &[usize]) -> Run {
    let mut t = FrameTracker::new(cfg);
    let mut events = Vec::new();
    let mut pos = 0;
    let mut stopped_early = false;
    let ends = cuts.iter().copied().chain([bytes.len()]);
    for end in ends {
        while pos < end {
            let r = t.feed_relay(&bytes[pos..end]);
            // (or, when the piece ends inside that control frame, takes all of it)
            let whole_piece = end - pos;
            assert!(
                !stopped_early
                    || matches!(r, Ok((_, Some(_))) | Err(_))
                    || r == Ok((whole_piece, None)),
                "stopped early, then {r:?}"
            );
            match r {
                Ok((n, ev)) => {
                    assert!(n <= end - pos);
                    pos += n;
                    stopped_early = ev.is_none() && pos < end;
                    // A relay stops before a control frame or a broken header:
                    // at a frame boundary, where it may still inject a Close.
                    assert!(
                        !stopped_early || t.at_frame_boundary(),
                        "stopped inside a frame"
                    );
                    if let Some(ev) = ev {
                        assert!(!matches!(ev, WsEvent::FrameEnd { .. }), "{ev:?}");
                        assert!(t.at_frame_boundary());
                        events.push((pos, ev));
                    }
                }
                Err(e) => {
                    assert_eq!(t.feed_relay(&bytes[pos..end]), Err(e), "errors are sticky");
                    return (events, Some(e), pos);
                }
            }
        }
    }
    (events, None, pos)
}

#[track_caller]
fn check(cfg: TrackerConfig, bytes: &[u8], want: &[(usize, WsEvent)], err: Option<FrameError>) {
    check_relay(cfg, bytes, want, err);
    let whole = run(cfg, bytes, &[]);
    assert_eq!((&whole.0[..], whole.1), (want, err), "whole {bytes:?}");
    if err.is_none() {
        assert_eq!(whole.2, bytes.len(), "a valid stream is consumed entirely");
    }
    for split in 1..bytes.len() {
        let cut = run(cfg, bytes, &[split]);
        assert_eq!(
            (&cut.0[..], cut.1),
            (want, err),
            "split at {split} of {bytes:?}"
        );
        assert_eq!(
            cut.2 == bytes.len(),
            whole.2 == bytes.len(),
            "split at {split}"
        );
    }
    let every: Vec<usize> = (1..bytes.len()).collect();
    let bytewise = run(cfg, bytes, &every);
    assert_eq!(
        (&bytewise.0[..], bytewise.1),
        (want, err),
        "byte by byte {bytes:?}"
    );
}

/// `feed_relay` reports the control events of `want` at the same positions, the
/// same error after the same consumed bytes, cut anywhere.
#[track_caller]
fn check_relay(
    cfg: TrackerConfig,
    bytes: &[u8],
    want: &[(usize, WsEvent)],
    err: Option<FrameError>,
) {
    let control: Vec<(usize, WsEvent)> = want
        .iter()
        .copied()
        .filter(|(_, e)| !matches!(e, WsEvent::FrameEnd { .. }))
        .collect();
    let every: Vec<usize> = (1..bytes.len()).collect();
    let mut cuts: Vec<Vec<usize>> = vec![vec![], every];
    cuts.extend((1..bytes.len()).map(|c| vec![c]));
    for cut in cuts {
        let got = run_relay(cfg, bytes, &cut);
        // Header bytes taken in earlier pieces stay consumed: compare with the
        // same cuts.
        let consumed = run(cfg, bytes, &cut).2;
        assert_eq!(
            (&got.0[..], got.1, got.2),
            (&control[..], err, consumed),
            "relay, cuts {cut:?} of {bytes:?}"
        );
    }
}

fn cfg(from: Role, rsv_allowed: u8, max_message_bytes: u64) -> TrackerConfig {
    TrackerConfig {
        from,
        rsv_allowed,
        max_message_bytes,
    }
}

fn text(fin: bool) -> WsEvent {
    WsEvent::FrameEnd {
        opcode: Opcode::Text,
        fin,
    }
}
fn bin(fin: bool) -> WsEvent {
    WsEvent::FrameEnd {
        opcode: Opcode::Binary,
        fin,
    }
}
fn cont(fin: bool) -> WsEvent {
    WsEvent::FrameEnd {
        opcode: Opcode::Continuation,
        fin,
    }
}
fn close(code: Option<u16>) -> WsEvent {
    WsEvent::Close { code }
}
const PING: WsEvent = WsEvent::Ping;
const PONG: WsEvent = WsEvent::Pong;

/// One case per line: sender, RSV allowed, max message bytes, stream,
/// `[position => event, ...]`, and optionally the error that ends it.
macro_rules! ws {
    ($from:ident, $rsv:expr, $max:expr, $bytes:expr => [$($at:expr => $ev:expr),* $(,)?] $(, $err:ident)?) => {
        check(cfg(Role::$from, $rsv, $max), $bytes, &[$(($at, $ev)),*], None $(.or(Some(FrameError::$err)))?)
    };
}

#[test]
fn valid_streams() {
    ws!(Server, 0, 0, b"" => []);
    ws!(Server, 0, 0, b"\x81" => []);
    ws!(Server, 0, 0, b"\x81\x02h" => []);
    ws!(Server, 0, 0, b"\x81\x02hi" => [4 => text(true)]);
    ws!(Server, 0, 0, b"\x82\x00" => [2 => bin(true)]);
    ws!(Server, 0, 0, b"\x82\x00\x82\x00\x81\x00" => [2 => bin(true), 4 => bin(true), 6 => text(true)]);
    ws!(Server, 0, 0, b"\x01\x01h\x80\x01i" => [3 => text(false), 6 => cont(true)]);
    ws!(Server, 0, 0, b"\x02\x00\x00\x00\x80\x00" => [2 => bin(false), 4 => cont(false), 6 => cont(true)]);
    ws!(Server, 0, 0, b"\x01\x01h\x89\x00\x80\x01i" => [3 => text(false), 5 => PING, 8 => cont(true)]);
    ws!(Server, 0, 0, b"\x01\x01h\x8a\x01p\x88\x00\x80\x00" => [3 => text(false), 6 => PONG, 8 => close(None), 10 => cont(true)]);
    ws!(Server, 0, 0, b"\x89\x04ping\x8a\x04pong" => [6 => PING, 12 => PONG]);
    ws!(Server, 0, 0, b"\x88\x00" => [2 => close(None)]);
    ws!(Server, 0, 0, b"\x88\x02\x03\xe8" => [4 => close(Some(1000))]);
    ws!(Server, 0, 0, b"\x88\x05\x03\xe9bye" => [7 => close(Some(1001))]);
    ws!(Server, 0, 0, b"\x88\x02\x03\xeb" => [4 => close(Some(1003))]);
    ws!(Server, 0, 0, b"\x88\x02\x03\xef" => [4 => close(Some(1007))]);
    ws!(Server, 0, 0, b"\x88\x02\x03\xf6" => [4 => close(Some(1014))]);
    ws!(Server, 0, 0, b"\x88\x02\x0b\xb8" => [4 => close(Some(3000))]);
    ws!(Server, 0, 0, b"\x88\x02\x13\x87" => [4 => close(Some(4999))]);
    ws!(Server, 0, 0, b"\x88\x04\x03\xe8\xc3\xa9" => [6 => close(Some(1000))]);
    ws!(Server, 0, 0, b"\x88\x00\x81\x00" => [2 => close(None), 4 => text(true)]);
    ws!(Server, RSV1, 0, b"\xc1\x01x" => [3 => text(true)]);
    ws!(Server, RSV1, 0, b"\x42\x01x\x80\x01y" => [3 => bin(false), 6 => cont(true)]);
    ws!(Server, 0, 4, b"\x81\x04abcd" => [6 => text(true)]);
    ws!(Server, 0, 4, b"\x01\x02ab\x80\x02cd\x81\x04abcd" => [4 => text(false), 8 => cont(true), 14 => text(true)]);
    ws!(Server, 0, 4, b"\x01\x02ab\x89\x05hello\x80\x02cd" => [4 => text(false), 11 => PING, 15 => cont(true)]);
    ws!(Client, 0, 0, b"\x81\x82\x01\x02\x03\x04\x69\x6b" => [8 => text(true)]);
    ws!(Client, 0, 0, b"\x88\x82\x01\x02\x03\x04\x02\xea" => [8 => close(Some(1000))]);
    ws!(Client, 0, 0, b"\x88\x80\x01\x02\x03\x04" => [6 => close(None)]);
    ws!(Client, 0, 0, b"\x89\x81\xff\xff\xff\xff\x00\x8a\x80\0\0\0\0" => [7 => PING, 13 => PONG]);
}

#[test]
fn extended_lengths() {
    for (len, hl) in [
        (125usize, 2),
        (126, 4),
        (65535, 4),
        (65536, 10),
        (70000, 10),
    ] {
        let mut s = vec![0x82];
        match hl {
            2 => s.push(len as u8),
            4 => {
                s.push(126);
                s.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                s.push(127);
                s.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        s.resize(hl + len, b'x');
        s.extend_from_slice(b"\x89\x00");
        let c = cfg(Role::Server, 0, 0);
        let want = [(hl + len, bin(true)), (hl + len + 2, PING)];
        // Every split of a large frame is slow; cut around the header and the end.
        assert_eq!(run(c, &s, &[]), (want.to_vec(), None, s.len()));
        for cut in (1..hl + 3).chain(s.len() - 4..s.len()) {
            assert_eq!(
                run(c, &s, &[cut]),
                (want.to_vec(), None, s.len()),
                "len {len} cut {cut}"
            );
        }
    }
}

#[test]
fn error_reserved_opcode() {
    ws!(Server, 0, 0, b"\x81\x00\x83\x00" => [2 => text(true)], ReservedOpcode);
    ws!(Server, 0, 0, b"\x8c" => [], ReservedOpcode);
}

#[test]
fn error_reserved_bits() {
    ws!(Server, 0, 0, b"\xc1\x00" => [], ReservedBits);
    ws!(Server, RSV1, 0, b"\x41\x01h\xc0\x01i" => [3 => text(false)], ReservedBits);
    ws!(Server, RSV1, 0, b"\xc9\x00" => [], ReservedBits);
    ws!(Server, RSV1, 0, b"\xa1\x00" => [], ReservedBits);
}

#[test]
fn error_unmasked_client_frame() {
    ws!(Client, 0, 0, b"\x81\x00" => [], UnmaskedClientFrame);
}

#[test]
fn error_masked_server_frame() {
    ws!(Server, 0, 0, b"\x81\x80\0\0\0\0" => [], MaskedServerFrame);
}

#[test]
fn error_control_too_long() {
    ws!(Server, 0, 0, b"\x89\x7e\x00\x7e" => [], ControlTooLong);
}

#[test]
fn error_fragmented_control() {
    ws!(Server, 0, 0, b"\x09\x00" => [], FragmentedControl);
}

#[test]
fn error_non_minimal_length() {
    ws!(Server, 0, 0, b"\x82\x7e\x00\x05" => [], NonMinimalLength);
    ws!(Server, 0, 0, b"\x82\x7f\0\0\0\0\0\0\x01\x00" => [], NonMinimalLength);
}

#[test]
fn error_length_top_bit_set() {
    ws!(Server, 0, 0, b"\x82\x7f\x80\0\0\0\0\0\0\0" => [], LengthTopBitSet);
}

#[test]
fn error_unexpected_continuation() {
    ws!(Server, 0, 0, b"\x80\x00" => [], UnexpectedContinuation);
    ws!(Server, 0, 0, b"\x01\x00\x80\x00\x80\x00" => [2 => text(false), 4 => cont(true)], UnexpectedContinuation);
}

#[test]
fn error_expected_continuation() {
    ws!(Server, 0, 0, b"\x01\x00\x81\x00" => [2 => text(false)], ExpectedContinuation);
    ws!(Server, 0, 0, b"\x01\x00\x89\x00\x02\x00" => [2 => text(false), 4 => PING], ExpectedContinuation);
}

#[test]
fn error_message_too_big() {
    ws!(Server, 0, 4, b"\x81\x05abcde" => [], MessageTooBig);
    ws!(Server, 0, 4, b"\x01\x03abc\x80\x02de" => [5 => text(false)], MessageTooBig);
    ws!(Server, 0, 70000, b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff" => [], MessageTooBig);
}

#[test]
fn error_invalid_close_code() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut s = vec![0x88, 2];
        s.extend_from_slice(&code.to_be_bytes());
        ws!(Server, 0, 0, &s => [], InvalidCloseCode);
    }
    // Masked: 1005 ^ key.
    ws!(Client, 0, 0, b"\x88\x82\x01\x02\x03\x04\x02\xef" => [], InvalidCloseCode);
}

#[test]
fn error_invalid_close_reason() {
    ws!(Server, 0, 0, b"\x88\x03\x03\xe8\xff" => [], InvalidCloseReason);
    ws!(Server, 0, 0, b"\x88\x04\x03\xe8\xc3\x28" => [], InvalidCloseReason);
}

#[test]
fn error_close_too_short() {
    ws!(Server, 0, 0, b"\x88\x01\x03" => [], CloseTooShort);
}

#[test]
fn written_control_frames_parse_back() {
    let key = Some([0xa1, 0xb2, 0xc3, 0xd4]);
    for (from, mask) in [(Role::Server, None), (Role::Client, key)] {
        let mut s = Vec::new();
        write_close(1001, "going away ✓".as_bytes(), mask, &mut s);
        write_ping(b"are you there", mask, &mut s);
        write_pong(&[0u8; 200], mask, &mut s);
        write_close(4000, &[b'r'; 300], mask, &mut s);
        let mut t = FrameTracker::new(cfg(from, 0, 0));
        let mut pos = 0;
        let mut seen = Vec::new();
        while pos < s.len() {
            let (n, ev) = t.feed(&s[pos..]).unwrap();
            pos += n;
            let ev = ev.unwrap();
            seen.push((ev, t.control_payload().to_vec()));
            assert!(t.at_frame_boundary());
        }
        assert!(t.close_seen());
        assert_eq!(
            seen[0],
            (
                close(Some(1001)),
                [&[0x03, 0xe9], "going away ✓".as_bytes()].concat()
            )
        );
        assert_eq!(seen[1], (PING, b"are you there".to_vec()));
        assert_eq!(seen[2], (PONG, vec![0u8; 125]));
        assert_eq!(seen[3].0, close(Some(4000)));
        assert_eq!(seen[3].1.len(), 125);
    }
}

#[test]
fn boundary_and_state_queries() {
    let mut t = FrameTracker::new(cfg(Role::Server, 0, 0));
    assert!(t.at_frame_boundary());
    assert_eq!(t.feed(b"\x01"), Ok((1, None)));
    assert!(!t.at_frame_boundary());
    assert_eq!(t.feed(b"\x03ab"), Ok((3, None)));
    assert!(!t.at_frame_boundary() && t.in_fragmented_message());
    assert_eq!(t.feed(b"c\x89\x02hi"), Ok((1, Some(text(false)))));
    assert!(t.at_frame_boundary());
    assert_eq!(t.feed(b"\x89\x02hi\x80"), Ok((4, Some(PING))));
    assert_eq!(t.control_payload(), b"hi");
    assert_eq!(t.feed(b"\x80\x00"), Ok((2, Some(cont(true)))));
    assert!(t.control_payload().is_empty() && !t.in_fragmented_message());
    assert!(!t.close_seen() && t.error().is_none());
    assert_eq!(t.feed(b"\x88\x00rest"), Ok((2, Some(close(None)))));
    assert!(t.close_seen());
    assert_eq!(t.feed(b"\x80"), Ok((1, None)));
    assert_eq!(t.feed(b"\x00"), Err(FrameError::UnexpectedContinuation));
    assert_eq!(t.error(), Some(FrameError::UnexpectedContinuation));
    assert_eq!(t.feed(b""), Err(FrameError::UnexpectedContinuation));
    assert_eq!(
        FrameTracker::new(cfg(Role::Client, 0, 0)).feed(b""),
        Ok((0, None))
    );
}

/// xorshift64: deterministic streams for the differential tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A stream of mostly plausible frames from `from`, sometimes breaking a rule:
/// reserved opcodes and bits, wrong masking, bad lengths and close payloads,
/// fragmentation errors, random bytes.
fn random_stream(rng: &mut Rng, from: Role) -> Vec<u8> {
    let mut out = Vec::new();
    let frames = 1 + rng.below(12);
    for _ in 0..frames {
        if rng.below(40) == 0 {
            let n = rng.below(6);
            out.extend((0..n).map(|_| rng.next() as u8));
            continue;
        }
        let op = match rng.below(12) {
            0..=3 => Opcode::Binary,
            4 | 5 => Opcode::Text,
            6 | 7 => Opcode::Continuation,
            8 => Opcode::Ping,
            9 => Opcode::Pong,
            _ => Opcode::Close,
        };
        let len: u64 = if op.is_control() {
            [0, 1, 2, 4, 125][rng.below(5) as usize]
        } else {
            match rng.below(40) {
                0 => [65535, 65536, 70000][rng.below(3) as usize],
                k => [0, 1, 3, 64, 125, 126, 300][k as usize % 7],
            }
        };
        let masked = match from {
            Role::Client => rng.below(60) != 0,
            Role::Server => rng.below(60) == 0,
        };
        let key = [rng.next() as u8, 0x5a, rng.next() as u8, 0xa5];
        let h = FrameHeader {
            fin: op.is_control() || rng.below(3) != 0,
            rsv: if rng.below(30) == 0 { RSV1 } else { 0 },
            opcode: op,
            mask: masked.then_some(key),
            payload_len: len,
            header_len: 0,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = encode_frame_header(&h, &mut head);
        if rng.below(80) == 0 {
            head[0] ^= 1 << rng.below(8); // a reserved opcode or bit, or a flipped FIN
        }
        if rng.below(80) == 0 && n > 2 {
            head[2] = 0; // a non-minimal extended length
        }
        out.extend_from_slice(&head[..n]);
        let start = out.len();
        if op == Opcode::Close && len >= 2 {
            let code: u16 = [1000, 1001, 1005, 999, 3000, 4999, 5000][rng.below(7) as usize];
            out.extend_from_slice(&code.to_be_bytes());
            let reason: &[u8] = if rng.below(8) == 0 {
                b"\xff\xfe"
            } else {
                b"ok"
            };
            let rest = (len as usize - 2).min(reason.len());
            out.extend_from_slice(&reason[..rest]);
            out.resize(start + len as usize, b'a');
        } else {
            out.extend((0..len).map(|i| i as u8));
        }
        if let Some(k) = h.mask {
            apply_mask(&mut out[start..], k, 0);
        }
    }
    out
}

/// Random cuts: mostly small pieces, sometimes large ones.
fn random_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut at = 0;
    loop {
        at += if rng.below(4) == 0 {
            1 + rng.below(2_000) as usize
        } else {
            1 + rng.below(20) as usize
        };
        if at >= len {
            return cuts;
        }
        cuts.push(at);
    }
}

/// What the reference (the tracker before its rewrite) reports with `feed`,
/// call by call, and the state queries after each call.
type Trace = Vec<(
    Result<(usize, Option<WsEvent>), FrameError>,
    Vec<u8>,
    [bool; 3],
    Option<FrameError>,
)>;

fn trace_ref(cfg: TrackerConfig, bytes: &[u8], cuts: &[usize]) -> Trace {
    let mut t = super::reference::RefTracker::new(cfg);
    let mut out = Vec::new();
    let mut pos = 0;
    for end in cuts.iter().copied().chain([bytes.len()]) {
        while pos < end {
            let r = t.feed(&bytes[pos..end]);
            let state = [
                t.at_frame_boundary(),
                t.close_seen(),
                t.in_fragmented_message(),
            ];
            out.push((r, t.control_payload().to_vec(), state, t.error()));
            match r {
                Ok((n, _)) => pos += n,
                Err(_) => return out,
            }
        }
    }
    out
}

fn trace_new(cfg: TrackerConfig, bytes: &[u8], cuts: &[usize]) -> Trace {
    let mut t = FrameTracker::new(cfg);
    let mut out = Vec::new();
    let mut pos = 0;
    for end in cuts.iter().copied().chain([bytes.len()]) {
        while pos < end {
            let r = t.feed(&bytes[pos..end]);
            let state = [
                t.at_frame_boundary(),
                t.close_seen(),
                t.in_fragmented_message(),
            ];
            out.push((r, t.control_payload().to_vec(), state, t.error()));
            match r {
                Ok((n, _)) => pos += n,
                Err(_) => return out,
            }
        }
    }
    out
}

/// `feed_relay`'s view of a reference trace: control events with their
/// positions and payloads, the error, the bytes consumed.
type RelayView = (Vec<(usize, WsEvent, Vec<u8>)>, Option<FrameError>, usize);

fn relay_view_of(trace: &Trace) -> RelayView {
    let (mut events, mut pos) = (Vec::new(), 0);
    for (r, payload, _, _) in trace {
        match r {
            Ok((n, ev)) => {
                pos += n;
                match ev {
                    Some(WsEvent::FrameEnd { .. }) | None => {}
                    Some(ev) => events.push((pos, *ev, payload.clone())),
                }
            }
            Err(e) => return (events, Some(*e), pos),
        }
    }
    (events, None, pos)
}

fn relay_view(cfg: TrackerConfig, bytes: &[u8], cuts: &[usize]) -> RelayView {
    let mut t = FrameTracker::new(cfg);
    let (mut events, mut pos) = (Vec::new(), 0);
    for end in cuts.iter().copied().chain([bytes.len()]) {
        while pos < end {
            let at_boundary = t.at_frame_boundary();
            match t.feed_relay(&bytes[pos..end]) {
                Ok((n, ev)) => {
                    if let (Some(_), true) = (ev, at_boundary) {
                        // Alone: the call consumed exactly that control frame.
                        let Ok(Status::Complete(h)) =
                            parse_frame_header(&bytes[pos..], cfg.from, cfg.rsv_allowed)
                        else {
                            panic!("event {ev:?} without a header at {pos}");
                        };
                        assert_eq!(n, usize::from(h.header_len) + h.payload_len as usize);
                    }
                    pos += n;
                    if let Some(ev) = ev {
                        events.push((pos, ev, t.control_payload().to_vec()));
                    }
                }
                Err(e) => return (events, Some(e), pos),
            }
        }
    }
    (events, None, pos)
}

#[test]
fn differential_against_the_reference_tracker() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut with_errors = 0;
    for case in 0..2000 {
        let from = if case % 2 == 0 {
            Role::Client
        } else {
            Role::Server
        };
        let c = cfg(
            from,
            if rng.below(2) == 0 { RSV1 } else { 0 },
            [0, 100, 70_000][rng.below(3) as usize],
        );
        let bytes = random_stream(&mut rng, from);
        let cuts = random_cuts(&mut rng, bytes.len());
        let want = trace_ref(c, &bytes, &cuts);
        assert_eq!(trace_new(c, &bytes, &cuts), want, "feed, case {case}");
        let view = relay_view_of(&want);
        with_errors += usize::from(view.1.is_some());
        assert_eq!(
            relay_view(c, &bytes, &cuts),
            view,
            "feed_relay, case {case}"
        );
        // The same stream cut elsewhere: the same events, error and (but for
        // header bytes taken before the error) the same consumed count.
        let other = random_cuts(&mut rng, bytes.len());
        let want_other = relay_view_of(&trace_ref(c, &bytes, &other));
        assert_eq!(
            (&want_other.0, want_other.1),
            (&view.0, view.1),
            "case {case}"
        );
        assert_eq!(
            relay_view(c, &bytes, &other),
            want_other,
            "feed_relay, case {case}, other cuts"
        );
    }
    // The generator must exercise both outcomes.
    assert!(
        (200..1800).contains(&with_errors),
        "{with_errors} of 2000 streams failed"
    );
}

#[test]
fn close_codes() {
    let valid: Vec<u16> = (0..=u16::MAX).filter(|&c| valid_close_code(c)).collect();
    assert_eq!(valid.len(), 4 + 8 + 2000);
    assert!(!valid_close_code(1015) && !valid_close_code(1005) && !valid_close_code(1006));
}

#[test]
fn tracker_is_small() {
    let size = core::mem::size_of::<FrameTracker>();
    println!("size_of::<FrameTracker>() = {size}");
    assert!(size <= 176, "FrameTracker is {size} bytes");
}

#[test]
fn handshake_errors_have_distinct_texts() {
    use HandshakeError::*;
    let all = [
        NotGet,
        NotHttp11,
        MissingUpgradeToken,
        MissingConnectionToken,
        BadVersion,
        MissingKey,
        BadKey,
        DuplicateKey,
        NotSwitchingProtocols,
        BadAccept,
        UnexpectedExtension,
    ];
    let texts: std::collections::BTreeSet<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), all.len(), "{texts:?}");
    for e in all {
        assert_eq!(e.to_string(), e.as_str());
        assert!(e.as_str().len() > 8, "{e:?}");
    }
    assert_eq!(NotGet.as_str(), "websocket upgrade requires GET");
}

/// At every position of a stream, skipping any part of `opaque()` leaves the tracker as
/// feeding those bytes would: the rest of the stream gives the same events and result.
#[test]
fn skip_is_feed_relay_without_looking() {
    let client: &[u8] =
        b"\x01\x84\x01\x02\x03\x04abcd\x89\x81\x01\x02\x03\x04p\x80\x83\0\0\0\0xyz\x82\x80\0\0\0\0";
    let server: &[u8] = b"\x02\x05hello\x89\x00\x80\x7e\x00\x7e";
    let mut long = server.to_vec();
    long.extend_from_slice(&[b'.'; 126]);
    long.extend_from_slice(b"\x88\x02\x03\xe8");
    for (from, bytes) in [(Role::Client, client), (Role::Server, &long[..])] {
        let c = cfg(from, 0, 0);
        for p in 0..bytes.len() {
            let mut at = FrameTracker::new(c);
            let mut q = 0;
            while q < p {
                q += at.feed_relay(&bytes[q..p]).unwrap().0;
            }
            let opaque = at.opaque().min((bytes.len() - p) as u64);
            assert_eq!(opaque > 0, !at.at_frame_boundary() && at.opaque() > 0);
            for k in [1, opaque / 2, opaque]
                .into_iter()
                .filter(|&k| k > 0 && k <= opaque)
            {
                let (mut skipped, mut fed) = (at.clone(), at.clone());
                skipped.skip(k);
                let end = p + k as usize;
                assert_eq!(fed.feed_relay(&bytes[p..end]), Ok((k as usize, None)));
                assert_eq!(skipped.opaque(), fed.opaque(), "at {p}, {k} bytes");
                assert_eq!(skipped.at_frame_boundary(), fed.at_frame_boundary());
                let rest = |t: &mut FrameTracker| {
                    let mut out = Vec::new();
                    let mut q = end;
                    while q < bytes.len() {
                        let r = t.feed_relay(&bytes[q..]);
                        out.push(r);
                        match r {
                            Ok((n, _)) => q += n,
                            Err(_) => break,
                        }
                    }
                    out
                };
                assert_eq!(rest(&mut skipped), rest(&mut fed), "at {p}, {k} bytes");
            }
        }
    }
}
