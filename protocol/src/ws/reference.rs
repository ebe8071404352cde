//! The frame tracker as it was before `feed` parsed headers in place and
//! `feed_relay` ran through data frames: kept, test-only, as the reference the
//! differential tests in `tests.rs` compare the tracker with.

use super::tracker::{valid_close_code, TrackerConfig, WsEvent};
use crate::ws::frame::{
    apply_mask, parse_frame_header, FrameError, FrameHeader, Opcode, MAX_CONTROL_PAYLOAD,
    MAX_HEADER_LEN,
};
use crate::Status;

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
pub struct RefTracker {
    cfg: TrackerConfig,
    phase: Phase,
    /// Payload bytes of the current data message announced so far.
    message_bytes: u64,
    /// A Text/Binary frame without FIN started a message not yet finished.
    fragmented: bool,
    close_seen: bool,
    /// Length of the control payload just reported; reset by every `feed`.
    control_len: u8,
    /// Header bytes while in `Phase::Header`, control payload in `Phase::Control`;
    /// the two never overlap in time, so they share the space.
    buf: [u8; MAX_CONTROL_PAYLOAD],
}

impl RefTracker {
    /// A tracker at the start of a stream (right after the 101 response).
    pub fn new(cfg: TrackerConfig) -> RefTracker {
        RefTracker {
            cfg,
            phase: Phase::Header { have: 0 },
            message_bytes: 0,
            fragmented: false,
            close_seen: false,
            control_len: 0,
            buf: [0; MAX_CONTROL_PAYLOAD],
        }
    }

    /// Consumes a prefix of `buf` and stops right after the first event, so the
    /// caller can act at that boundary. Returns `(consumed, event)`; `consumed`
    /// is less than `buf.len()` only when an event is returned. Call again with
    /// the rest. On error nothing more should be forwarded.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, Option<WsEvent>), FrameError> {
        let mut pos = 0;
        self.control_len = 0;
        loop {
            let step = match self.phase {
                Phase::Failed(e) => return Err(e),
                _ if pos == buf.len() => return Ok((pos, None)),
                Phase::Header { have } => self.header(&buf[pos..], have),
                Phase::Data {
                    opcode,
                    fin,
                    remaining,
                } => {
                    let n = remaining.min((buf.len() - pos) as u64);
                    self.phase = Phase::Data {
                        opcode,
                        fin,
                        remaining: remaining - n,
                    };
                    Ok((n as usize, self.frame_done()))
                }
                Phase::Control {
                    opcode,
                    len,
                    have,
                    mask,
                } => self.control(&buf[pos..], opcode, len, have, mask),
            };
            match step {
                Ok((n, event)) => {
                    pos += n;
                    if event.is_some() {
                        return Ok((pos, event));
                    }
                }
                Err(e) => {
                    self.phase = Phase::Failed(e);
                    return Err(e);
                }
            }
        }
    }

    /// True between frames: the safe point to inject a control frame (or end
    /// the stream) in this direction. Also true inside a fragmented message,
    /// where control frames may interleave (§5.4).
    pub fn at_frame_boundary(&self) -> bool {
        self.phase == Phase::Header { have: 0 }
    }

    /// A complete, valid Close frame has passed in this direction.
    pub fn close_seen(&self) -> bool {
        self.close_seen
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
