//! Frame and message tracking for one direction of a relayed WebSocket.
//!
//! Contract: the proxy forwards bytes unchanged; `FrameTracker::feed` tells it
//! how many leading bytes it may forward before the next event and checks the
//! stream against RFC 6455 on the way. It works at any split point: a header
//! cut across reads is kept internally (at most 14 bytes), and the events,
//! their byte positions and the errors do not depend on how the stream was cut.
//!
//! `FrameTracker::feed_relay` is the relay's loop: it runs through data frames
//! without stopping and reports control frames only, so a buffer of many small
//! frames is forwarded in one step. Cost per frame: one header parse, in place
//! when the header is whole in the buffer; payload bytes are skipped by count.
//!
//! Invariants: `feed` never consumes past an event, `feed_relay` never past a
//! control event; after an error every later call returns the same error; no
//! heap memory, and the only payload kept is an unmasked copy of the current
//! control frame (<= 125 bytes, §5.5) so a Close can be validated.

use crate::ws::frame::{
    apply_mask, parse_frame_header, FrameError, FrameHeader, Opcode, Role, MAX_CONTROL_PAYLOAD,
    MAX_HEADER_LEN,
};
use crate::Status;

/// How to check one direction of a relayed stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Who sends the frames in this direction.
    pub from: Role,
    /// RSV bits a negotiated extension allows (`RSV1` for permessage-deflate).
    pub rsv_allowed: u8,
    /// Largest message payload in bytes, summed over its fragments; 0 = unlimited.
    pub max_message_bytes: u64,
}

/// A boundary the proxy may want to act on, reported right after its last byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsEvent {
    /// A data frame ended. `opcode` is the frame's own (Continuation for later
    /// fragments); `fin` means the message ended too.
    FrameEnd {
        /// The frame's opcode.
        opcode: Opcode,
        /// The frame was the last of its message.
        fin: bool,
    },
    /// A Ping frame ended.
    Ping,
    /// A Pong frame ended.
    Pong,
    /// A valid Close frame ended; `code` is `None` for an empty payload.
    Close {
        /// The status code, when the payload carried one.
        code: Option<u16>,
    },
}

/// Where in the stream the tracker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between frames or inside a header; `have` header bytes are in `buf`.
    Header { have: u8 },
    /// Inside a data frame's payload.
    Data {
        opcode: Opcode,
        fin: bool,
        remaining: u64,
    },
    /// Inside a control frame's payload, copied (unmasked) into `buf`.
    Control {
        opcode: Opcode,
        len: u8,
        have: u8,
        mask: Option<[u8; 4]>,
    },
    /// The stream broke the protocol; sticky.
    Failed(FrameError),
}

/// One direction of a relayed WebSocket stream (see the module docs).
#[derive(Clone, Debug)]
pub struct FrameTracker {
    cfg: TrackerConfig,
    phase: Phase,
    /// Payload bytes of the current data message announced so far.
    message_bytes: u64,
    /// A Text/Binary frame without FIN started a message not yet finished.
    fragmented: bool,
    close_seen: bool,
    /// Data messages whose last frame has started (for logs).
    messages: u64,
    /// Length of the control payload just reported; reset by every `feed`.
    control_len: u8,
    /// Header bytes while in `Phase::Header`, control payload in `Phase::Control`;
    /// the two never overlap in time, so they share the space.
    buf: [u8; MAX_CONTROL_PAYLOAD],
}

impl FrameTracker {
    /// A tracker at the start of a stream (right after the 101 response).
    pub fn new(cfg: TrackerConfig) -> FrameTracker {
        FrameTracker {
            cfg,
            phase: Phase::Header { have: 0 },
            message_bytes: 0,
            fragmented: false,
            close_seen: false,
            messages: 0,
            control_len: 0,
            buf: [0; MAX_CONTROL_PAYLOAD],
        }
    }

    /// Consumes a prefix of `buf` and stops right after the first event, so the
    /// caller can act at that boundary. Returns `(consumed, event)`; `consumed`
    /// is less than `buf.len()` only when an event is returned. Call again with
    /// the rest. On error nothing more should be forwarded.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, Option<WsEvent>), FrameError> {
        self.run(buf, false)
    }

    /// What a relay needs, at a cost per frame of one header parse: like `feed`,
    /// but runs through data frames without stopping (no `FrameEnd` events) and
    /// reports only control frames, each alone. Returns `(consumed, event)`:
    /// - `Some(Ping | Pong | Close)`: `consumed` ends that control frame and
    ///   holds no byte of any other frame;
    /// - `None` with `consumed < buf.len()`: the rest starts with a control
    ///   frame or with bytes that break the protocol; call again with the rest
    ///   (which reports the control frame, or the error);
    /// - `None` otherwise: everything was consumed.
    ///
    /// The bytes consumed before an error, the control events and their positions
    /// are exactly those of `feed`; the stream can be cut anywhere and the two
    /// methods mixed freely.
    pub fn feed_relay(&mut self, buf: &[u8]) -> Result<(usize, Option<WsEvent>), FrameError> {
        self.run(buf, true)
    }

    /// `feed` (`relay == false`: stop after every event) and `feed_relay`. Each
    /// frame header is parsed once, in place when it is whole in `buf`, and a
    /// data payload is skipped by its count.
    #[inline(always)]
    fn run(&mut self, buf: &[u8], relay: bool) -> Result<(usize, Option<WsEvent>), FrameError> {
        self.control_len = 0;
        let mut pos = 0;
        // End of the last frame finished in this call: what stays consumed if
        // the next frame breaks the protocol.
        let mut good = 0;
        loop {
            match self.phase {
                Phase::Failed(e) => return Err(e),
                Phase::Data {
                    opcode,
                    fin,
                    remaining,
                } => {
                    let avail = (buf.len() - pos) as u64;
                    if remaining > avail {
                        self.phase = Phase::Data {
                            opcode,
                            fin,
                            remaining: remaining - avail,
                        };
                        return Ok((buf.len(), None));
                    }
                    pos += remaining as usize; // <= avail
                    good = pos;
                    self.phase = Phase::Header { have: 0 };
                    if !relay {
                        return Ok((pos, Some(WsEvent::FrameEnd { opcode, fin })));
                    }
                }
                _ if pos == buf.len() => return Ok((pos, None)),
                Phase::Header { have: 0 } => {
                    // A control frame (or a reserved opcode: 0xB-0xF) after data
                    // frames: stop so that it is reported alone.
                    if relay && pos > 0 && buf[pos] & 0x08 != 0 {
                        return Ok((pos, None));
                    }
                    let input = &buf[pos..];
                    match parse_frame_header(input, self.cfg.from, self.cfg.rsv_allowed) {
                        Ok(Status::Complete(h)) => {
                            if let Err(e) = self.start_frame(&h) {
                                return self.fail(e, good);
                            }
                            pos += usize::from(h.header_len);
                            // An empty control frame ends with its header.
                            if h.opcode.is_control() {
                                match self.control_done() {
                                    Ok(None) => {}
                                    Ok(Some(ev)) => return Ok((pos, Some(ev))),
                                    Err(e) => return self.fail(e, good),
                                }
                            }
                        }
                        Ok(Status::Partial) => {
                            // Fewer than header_len (<= 14) bytes: all of them belong to it.
                            self.buf[..input.len()].copy_from_slice(input);
                            self.phase = Phase::Header {
                                have: input.len() as u8,
                            };
                            return Ok((buf.len(), None));
                        }
                        Err(e) => return self.fail(e, good),
                    }
                }
                Phase::Header { have } => match self.header(&buf[pos..], have) {
                    Ok((n, event)) => {
                        pos += n;
                        match event {
                            Some(WsEvent::FrameEnd { .. }) if relay => good = pos,
                            Some(ev) => return Ok((pos, Some(ev))),
                            None => {}
                        }
                    }
                    Err(e) => return self.fail(e, good),
                },
                Phase::Control {
                    opcode,
                    len,
                    have,
                    mask,
                } => match self.control(&buf[pos..], opcode, len, have, mask) {
                    Ok((n, event)) => {
                        pos += n;
                        if event.is_some() {
                            return Ok((pos, event));
                        }
                    }
                    Err(e) => return self.fail(e, good),
                },
            }
        }
    }

    /// The stream broke the protocol: sticky from now on. Frames finished
    /// before it in this call (only `feed_relay` has any: `feed` returns at
    /// each frame's end) are reported first, as consumed, with the tracker
    /// left at that boundary (`at_frame_boundary()` is true there, as a relay
    /// expects); the next call parses the same header again and fails. That
    /// is deterministic: a header that breaks a rule is rejected before it
    /// changes any state but the message size, which it resets to the same
    /// value again.
    fn fail(&mut self, e: FrameError, good: usize) -> Result<(usize, Option<WsEvent>), FrameError> {
        if good > 0 {
            debug_assert_eq!(self.phase, Phase::Header { have: 0 });
            return Ok((good, None));
        }
        self.phase = Phase::Failed(e);
        Err(e)
    }

    /// True between frames: the safe point to inject a control frame (or end
    /// the stream) in this direction. Also true inside a fragmented message,
    /// where control frames may interleave (§5.4).
    pub fn at_frame_boundary(&self) -> bool {
        self.phase == Phase::Header { have: 0 }
    }

    /// Payload bytes of the current data frame still to come: bytes a relay may move
    /// without looking at them (`skip`); data payloads are neither unmasked nor checked.
    /// 0 between frames, in a header or in a control frame.
    pub fn opaque(&self) -> u64 {
        match self.phase {
            Phase::Data { remaining, .. } => remaining,
            _ => 0,
        }
    }

    /// Accounts `n <= opaque()` payload bytes moved without being fed (more is
    /// clamped): the same state as `feed_relay` of them would leave.
    pub fn skip(&mut self, n: u64) {
        if let Phase::Data {
            opcode,
            fin,
            remaining,
        } = self.phase
        {
            self.phase = if n >= remaining {
                Phase::Header { have: 0 }
            } else {
                Phase::Data {
                    opcode,
                    fin,
                    remaining: remaining - n,
                }
            };
        }
    }

    /// A complete, valid Close frame has passed in this direction.
    pub fn close_seen(&self) -> bool {
        self.close_seen
    }

    /// Data messages seen so far, counted when their final frame's header passes.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// A fragmented data message has started and not yet ended.
    pub fn in_fragmented_message(&self) -> bool {
        self.fragmented
    }

    /// The error this stream failed with, if any.
    pub fn error(&self) -> Option<FrameError> {
        match self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The unmasked payload of the control frame just reported (valid right
    /// after a `Ping`, `Pong` or `Close` event, until the next `feed`). A proxy
    /// that answers a Ping itself echoes this in its Pong; empty otherwise.
    pub fn control_payload(&self) -> &[u8] {
        &self.buf[..usize::from(self.control_len)]
    }

    /// Takes header bytes from `input` (never more than the header needs) and,
    /// once the header is whole, starts its payload.
    fn header(&mut self, input: &[u8], have: u8) -> Result<(usize, Option<WsEvent>), FrameError> {
        let have = usize::from(have);
        let take = input.len().min(MAX_HEADER_LEN - have);
        let mut tmp = [0u8; MAX_HEADER_LEN];
        tmp[..have].copy_from_slice(&self.buf[..have]);
        tmp[have..have + take].copy_from_slice(&input[..take]);
        match parse_frame_header(&tmp[..have + take], self.cfg.from, self.cfg.rsv_allowed)? {
            Status::Partial => {
                // Partial means fewer than header_len bytes: all of them belong to it.
                self.buf[have..have + take].copy_from_slice(&input[..take]);
                self.phase = Phase::Header {
                    have: (have + take) as u8,
                };
                Ok((take, None))
            }
            Status::Complete(h) => {
                let used = usize::from(h.header_len) - have;
                self.start_frame(&h)?;
                let event = match self.frame_done() {
                    Some(e) => Some(e),
                    None => self.control_done()?,
                };
                Ok((used, event))
            }
        }
    }

    /// Applies the rules that need history (§5.4 fragmentation, the size limit)
    /// and enters the payload phase.
    fn start_frame(&mut self, h: &FrameHeader) -> Result<(), FrameError> {
        if h.opcode.is_control() {
            self.phase = Phase::Control {
                opcode: h.opcode,
                len: h.payload_len as u8, // parse_frame_header caps it at 125
                have: 0,
                mask: h.mask,
            };
            return Ok(());
        }
        match (h.opcode, self.fragmented) {
            (Opcode::Continuation, false) => return Err(FrameError::UnexpectedContinuation),
            (Opcode::Text | Opcode::Binary, true) => return Err(FrameError::ExpectedContinuation),
            (Opcode::Text | Opcode::Binary, false) => self.message_bytes = 0,
            _ => {}
        }
        let total = self.message_bytes.saturating_add(h.payload_len);
        if self.cfg.max_message_bytes != 0 && total > self.cfg.max_message_bytes {
            return Err(FrameError::MessageTooBig);
        }
        self.message_bytes = total;
        self.fragmented = !h.fin;
        self.messages += u64::from(h.fin);
        self.phase = Phase::Data {
            opcode: h.opcode,
            fin: h.fin,
            remaining: h.payload_len,
        };
        Ok(())
    }

    /// Copies control payload bytes, unmasked, into `buf`; validates at the end.
    fn control(
        &mut self,
        input: &[u8],
        opcode: Opcode,
        len: u8,
        have: u8,
        mask: Option<[u8; 4]>,
    ) -> Result<(usize, Option<WsEvent>), FrameError> {
        let (start, end) = (usize::from(have), usize::from(len));
        let n = input.len().min(end - start);
        let dst = &mut self.buf[start..start + n];
        dst.copy_from_slice(&input[..n]);
        if let Some(key) = mask {
            apply_mask(dst, key, start as u64);
        }
        self.phase = Phase::Control {
            opcode,
            len,
            have: (start + n) as u8,
            mask,
        };
        Ok((n, self.control_done()?))
    }

    /// Ends a control frame once its payload is whole and reports it.
    fn control_done(&mut self) -> Result<Option<WsEvent>, FrameError> {
        let Phase::Control {
            opcode, len, have, ..
        } = self.phase
        else {
            return Ok(None);
        };
        if have < len {
            return Ok(None);
        }
        let event = match opcode {
            Opcode::Close => {
                let code = close_code(&self.buf[..usize::from(len)])?;
                self.close_seen = true;
                WsEvent::Close { code }
            }
            Opcode::Ping => WsEvent::Ping,
            _ => WsEvent::Pong,
        };
        self.phase = Phase::Header { have: 0 };
        self.control_len = len;
        Ok(Some(event))
    }

    /// Ends a data frame once its payload is through.
    fn frame_done(&mut self) -> Option<WsEvent> {
        match self.phase {
            Phase::Data {
                opcode,
                fin,
                remaining: 0,
            } => {
                self.phase = Phase::Header { have: 0 };
                Some(WsEvent::FrameEnd { opcode, fin })
            }
            _ => None,
        }
    }
}

/// Validates a Close payload (RFC 6455 §5.5.1, §7.4) and returns its code.
fn close_code(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::CloseTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_close_code(code) {
                return Err(FrameError::InvalidCloseCode);
            }
            if core::str::from_utf8(reason).is_err() {
                return Err(FrameError::InvalidCloseReason);
            }
            Ok(Some(code))
        }
    }
}

/// Codes allowed on the wire (§7.4.1, §7.4.2, IANA registry): 1000-1003 and
/// 1007-1014 defined; 1004 reserved, 1005/1006/1015 only local; 3000-4999
/// registered or private. Everything else is a protocol error.
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
