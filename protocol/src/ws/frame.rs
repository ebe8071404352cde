//! WebSocket frame headers (RFC 6455 §5.2): parse, encode, mask, and the
//! control frames sluice writes itself.
//!
//! Contract: `parse_frame_header` looks only at header bytes (at most 14) and
//! checks every rule a single header can break: reserved opcodes, RSV bits,
//! the masking direction (§5.3), control-frame limits (§5.5) and minimal length
//! encoding (§5.2). Rules that need history (fragmentation, message size, the
//! Close payload) live in the tracker.
//!
//! Invariant for incremental callers: checks run in byte order and each check
//! only looks at bytes before it, so a prefix of a header either gives
//! `Partial` or the same error the whole header gives.

use crate::Status;

/// Largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Largest frame header: 2 fixed + 8 extended length + 4 masking key (§5.2).
pub const MAX_HEADER_LEN: usize = 14;
/// The RSV1 bit as it appears in `FrameHeader::rsv` and `rsv_allowed`
/// (permessage-deflate, RFC 7692 §6).
pub const RSV1: u8 = 0b100;

/// A frame opcode (RFC 6455 §5.2). Reserved values are never represented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0: a later fragment of a message.
    Continuation,
    /// 0x1: first frame of a text message.
    Text,
    /// 0x2: first frame of a binary message.
    Binary,
    /// 0x8: connection close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl Opcode {
    /// Decodes the low nibble of the first header byte; `None` for reserved
    /// opcodes 0x3-0x7 and 0xB-0xF.
    pub fn from_u8(v: u8) -> Option<Opcode> {
        match v {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, Ping and Pong (opcodes with the high bit set, §5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// Who sent the frames: clients must mask, servers must not (RFC 6455 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Frames travel client -> server (masked).
    Client,
    /// Frames travel server -> client (unmasked).
    Server,
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1..RSV3 as 3 bits, RSV1 = 0b100.
    pub rsv: u8,
    /// The frame's own opcode (Continuation for later fragments).
    pub opcode: Opcode,
    /// Masking key, present exactly when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// Header length in bytes (2..=14); ignored by `encode_frame_header`.
    pub header_len: u8,
}

/// A frame that breaks RFC 6455. Every variant means "Fail the WebSocket
/// Connection" (§7.1.7); `close_code` is the code to send if we say goodbye.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Opcode 0x3-0x7 or 0xB-0xF (§5.2).
    ReservedOpcode,
    /// An RSV bit no negotiated extension allows here (§5.2, RFC 7692 §6).
    ReservedBits,
    /// A client frame without a masking key (§5.1).
    UnmaskedClientFrame,
    /// A server frame with a masking key (§5.1).
    MaskedServerFrame,
    /// A control frame with more than 125 payload bytes (§5.5).
    ControlTooLong,
    /// A control frame without FIN (§5.5).
    FragmentedControl,
    /// A length not encoded in the minimal number of bytes (§5.2).
    NonMinimalLength,
    /// A 64-bit length with the most significant bit set (§5.2).
    LengthTopBitSet,
    /// A continuation frame outside a fragmented message (§5.4).
    UnexpectedContinuation,
    /// A new data message before the fragmented one ended (§5.4).
    ExpectedContinuation,
    /// The message is larger than the configured limit (§7.4.1: 1009).
    MessageTooBig,
    /// A Close code that must not appear on the wire (§7.4).
    InvalidCloseCode,
    /// A Close reason that is not UTF-8 (§5.5.1, §8.1: 1007).
    InvalidCloseReason,
    /// A Close payload of exactly one byte (§5.5.1).
    CloseTooShort,
}

impl FrameError {
    /// The Close status code for this failure (§7.4.1).
    pub fn close_code(self) -> u16 {
        match self {
            FrameError::MessageTooBig => super::close::TOO_BIG,
            FrameError::InvalidCloseReason => super::close::INVALID_PAYLOAD,
            _ => super::close::PROTOCOL_ERROR,
        }
    }

    /// A short static description.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameError::ReservedOpcode => "reserved opcode",
            FrameError::ReservedBits => "reserved bits set",
            FrameError::UnmaskedClientFrame => "unmasked client frame",
            FrameError::MaskedServerFrame => "masked server frame",
            FrameError::ControlTooLong => "control frame payload over 125 bytes",
            FrameError::FragmentedControl => "fragmented control frame",
            FrameError::NonMinimalLength => "non-minimal payload length",
            FrameError::LengthTopBitSet => "64-bit payload length with top bit set",
            FrameError::UnexpectedContinuation => "continuation frame outside a message",
            FrameError::ExpectedContinuation => "new message inside a fragmented message",
            FrameError::MessageTooBig => "message too big",
            FrameError::InvalidCloseCode => "invalid close code",
            FrameError::InvalidCloseReason => "close reason is not UTF-8",
            FrameError::CloseTooShort => "close payload of one byte",
        }
    }
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses one frame header from the start of `buf`.
///
/// Call it on the bytes at a frame boundary. `from` is the sender, which fixes
/// the masking rule. `rsv_allowed` holds the RSV bits a negotiated extension
/// permits (`RSV1` for permessage-deflate); like RFC 7692 they are accepted on
/// the first frame of a data message only, never on continuation or control
/// frames. Returns `Partial` until all header bytes are present.
pub fn parse_frame_header(
    buf: &[u8],
    from: Role,
    rsv_allowed: u8,
) -> Result<Status<FrameHeader>, FrameError> {
    let Some(&b0) = buf.first() else {
        return Ok(Status::Partial);
    };
    let opcode = Opcode::from_u8(b0 & 0x0F).ok_or(FrameError::ReservedOpcode)?;
    let rsv = (b0 >> 4) & 0b111;
    let allowed = match opcode {
        Opcode::Text | Opcode::Binary => rsv_allowed & 0b111,
        _ => 0,
    };
    if rsv & !allowed != 0 {
        return Err(FrameError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let Some(&b1) = buf.get(1) else {
        return Ok(Status::Partial);
    };
    let masked = b1 & 0x80 != 0;
    match (from, masked) {
        (Role::Client, false) => return Err(FrameError::UnmaskedClientFrame),
        (Role::Server, true) => return Err(FrameError::MaskedServerFrame),
        _ => {}
    }
    let len7 = b1 & 0x7F;
    if opcode.is_control() {
        // §5.5: control frames carry at most 125 bytes and are never fragmented.
        if usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(FrameError::ControlTooLong);
        }
        if !fin {
            return Err(FrameError::FragmentedControl);
        }
    }
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + ext + if masked { 4 } else { 0 };
    if buf.len() < header_len {
        return Ok(Status::Partial);
    }
    let payload_len = match ext {
        2 => {
            let n = u64::from(u16::from_be_bytes([buf[2], buf[3]]));
            if n <= 125 {
                return Err(FrameError::NonMinimalLength);
            }
            n
        }
        8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            let n = u64::from_be_bytes(b);
            if n >> 63 != 0 {
                return Err(FrameError::LengthTopBitSet);
            }
            if n <= 0xFFFF {
                return Err(FrameError::NonMinimalLength);
            }
            n
        }
        _ => u64::from(len7),
    };
    let mask = if masked {
        let k = 2 + ext;
        Some([buf[k], buf[k + 1], buf[k + 2], buf[k + 3]])
    } else {
        None
    };
    Ok(Status::Complete(FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len,
        header_len: header_len as u8,
    }))
}

/// Writes `h` in its minimal encoding into `out` and returns the header length.
///
/// `h.header_len` is ignored (it is recomputed); `h.rsv` keeps its low 3 bits
/// and `payload_len` its low 63 bits.
pub fn encode_frame_header(h: &FrameHeader, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
    let fin = if h.fin { 0x80 } else { 0 };
    out[0] = fin | ((h.rsv & 0b111) << 4) | h.opcode.as_u8();
    let mask_bit = if h.mask.is_some() { 0x80 } else { 0 };
    let len = h.payload_len & (u64::MAX >> 1);
    let mut n = 2;
    if len <= 125 {
        out[1] = mask_bit | len as u8;
    } else if len <= 0xFFFF {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        n = 4;
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&len.to_be_bytes());
        n = 10;
    }
    if let Some(key) = h.mask {
        out[n..n + 4].copy_from_slice(&key);
        n += 4;
    }
    n
}

/// XORs `buf` with the masking `key` (RFC 6455 §5.3). `offset` is the position
/// of `buf[0]` within the frame payload, so a payload can be (un)masked in
/// pieces. Masking twice with the same key and offset restores the input.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: u64) {
    let shift = (offset % 4) as usize;
    let k = [
        key[shift],
        key[(shift + 1) % 4],
        key[(shift + 2) % 4],
        key[(shift + 3) % 4],
    ];
    // Byte order does not matter: the same bytes are laid out in the word and
    // the data, and XOR works lane by lane.
    let wide = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    // 8 is a multiple of 4, so the tail starts at key phase 0 again.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

/// Appends a Close frame with `code` and `reason` (RFC 6455 §5.5.1).
///
/// The reason is cut to fit 125 payload bytes, at a UTF-8 character boundary
/// so a valid reason stays valid. `mask` must be `Some` when sluice speaks as
/// a client (toward a backend) and `None` toward a client.
pub fn write_close(code: u16, reason: &[u8], mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    if cut < reason.len() {
        // Back off over UTF-8 continuation bytes (10xxxxxx).
        while cut > 0 && reason[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
    }
    let code = code.to_be_bytes();
    write_control(Opcode::Close, &[&code, &reason[..cut]], mask, out);
}

/// Appends a Ping frame; the payload is cut to 125 bytes (§5.5.2).
pub fn write_ping(payload: &[u8], mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
    let cut = payload.len().min(MAX_CONTROL_PAYLOAD);
    write_control(Opcode::Ping, &[&payload[..cut]], mask, out);
}

/// Appends a Pong frame; the payload is cut to 125 bytes (§5.5.3). A Pong
/// answering a Ping echoes the Ping's (unmasked) payload.
pub fn write_pong(payload: &[u8], mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
    let cut = payload.len().min(MAX_CONTROL_PAYLOAD);
    write_control(Opcode::Pong, &[&payload[..cut]], mask, out);
}

/// Appends one unfragmented control frame whose payload is `parts` joined
/// (callers keep the total at or below 125 bytes).
fn write_control(opcode: Opcode, parts: &[&[u8]], mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let h = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask,
        payload_len: len as u64,
        header_len: 0,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = encode_frame_header(&h, &mut head);
    out.extend_from_slice(&head[..n]);
    let start = out.len();
    for part in parts {
        out.extend_from_slice(part);
    }
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(fin: bool, rsv: u8, opcode: Opcode, mask: Option<[u8; 4]>, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: len,
            header_len: 0,
        }
    }

    /// One case per line: bytes, sender, allowed RSV bits, expected result.
    macro_rules! header {
        ($buf:expr, $from:ident, $rsv:expr, Partial) => {
            assert_eq!(
                parse_frame_header($buf, Role::$from, $rsv),
                Ok(Status::Partial),
                "{:?}",
                $buf
            )
        };
        ($buf:expr, $from:ident, $rsv:expr, Err($e:ident)) => {
            assert_eq!(
                parse_frame_header($buf, Role::$from, $rsv),
                Err(FrameError::$e),
                "{:?}",
                $buf
            )
        };
        ($buf:expr, $from:ident, $rsv:expr, $fin:expr, $hrsv:expr, $op:ident, $mask:expr, $len:expr, $hl:expr) => {{
            let want = FrameHeader {
                fin: $fin,
                rsv: $hrsv,
                opcode: Opcode::$op,
                mask: $mask,
                payload_len: $len,
                header_len: $hl,
            };
            assert_eq!(
                parse_frame_header($buf, Role::$from, $rsv),
                Ok(Status::Complete(want)),
                "{:?}",
                $buf
            );
            // Every proper prefix is Partial.
            for cut in 0..$buf.len() {
                assert_eq!(
                    parse_frame_header(&$buf[..cut], Role::$from, $rsv),
                    Ok(Status::Partial)
                );
            }
        }};
    }

    const K: Option<[u8; 4]> = Some([1, 2, 3, 4]);

    #[test]
    #[rustfmt::skip]
    fn header_table() {
        header!(b"", Server, 0, Partial);
        header!(b"\x81", Server, 0, Partial);
        header!(b"\x81\x05", Server, 0, true, 0, Text, None, 5, 2);
        header!(b"\x01\x00", Server, 0, false, 0, Text, None, 0, 2);
        header!(b"\x82\x7d", Server, 0, true, 0, Binary, None, 125, 2);
        header!(b"\x80\x00", Server, 0, true, 0, Continuation, None, 0, 2);
        header!(b"\x88\x00", Server, 0, true, 0, Close, None, 0, 2);
        header!(b"\x89\x7d", Server, 0, true, 0, Ping, None, 125, 2);
        header!(b"\x8a\x00", Server, 0, true, 0, Pong, None, 0, 2);
        header!(b"\x82\x7e\x00\x7e", Server, 0, true, 0, Binary, None, 126, 4);
        header!(b"\x82\x7e\xff\xff", Server, 0, true, 0, Binary, None, 65535, 4);
        header!(b"\x82\x7f\0\0\0\0\0\x01\0\0", Server, 0, true, 0, Binary, None, 65536, 10);
        header!(b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", Server, 0, true, 0, Binary, None, u64::MAX >> 1, 10);
        header!(b"\x81\x85\x01\x02\x03\x04", Client, 0, true, 0, Text, K, 5, 6);
        header!(b"\x82\xfe\x01\x00\x01\x02\x03\x04", Client, 0, true, 0, Binary, K, 256, 8);
        header!(b"\x82\xff\0\0\0\0\0\x01\0\0\x01\x02\x03\x04", Client, 0, true, 0, Binary, K, 65536, 14);
        header!(b"\xc1\x01", Server, RSV1, true, 4, Text, None, 1, 2);
        header!(b"\x41\x01", Server, RSV1, false, 4, Text, None, 1, 2);
        header!(b"\x83\x00", Server, 0, Err(ReservedOpcode));
        header!(b"\x87", Server, 0, Err(ReservedOpcode));
        header!(b"\x8b\x00", Server, 0, Err(ReservedOpcode));
        header!(b"\x8f\x00", Server, 0, Err(ReservedOpcode));
        header!(b"\xc1\x01", Server, 0, Err(ReservedBits));
        header!(b"\xa1", Server, RSV1, Err(ReservedBits));
        header!(b"\x91", Server, RSV1, Err(ReservedBits));
        header!(b"\xc0\x01", Server, RSV1, Err(ReservedBits));
        header!(b"\xc9\x00", Server, RSV1, Err(ReservedBits));
        header!(b"\x81\x05", Client, 0, Err(UnmaskedClientFrame));
        header!(b"\x81\x85", Server, 0, Err(MaskedServerFrame));
        header!(b"\x89\x7e", Server, 0, Err(ControlTooLong));
        header!(b"\x88\x7f", Server, 0, Err(ControlTooLong));
        header!(b"\x09\x00", Server, 0, Err(FragmentedControl));
        header!(b"\x82\x7e\x00\x7d", Server, 0, Err(NonMinimalLength));
        header!(b"\x82\x7e\x00", Server, 0, Partial);
        header!(b"\x82\x7f\0\0\0\0\0\0\xff\xff", Server, 0, Err(NonMinimalLength));
        header!(b"\x82\x7f\x80\0\0\0\0\0\0\0", Server, 0, Err(LengthTopBitSet));
        header!(b"\x82\xff\0\0\0\0\0\x01\0\0\x01\x02\x03", Client, 0, Partial);
    }

    #[test]
    fn round_trip_boundaries() {
        let lens = [0, 1, 125, 126, 127, 65535, 65536, 1 << 32, u64::MAX >> 1];
        let ops = [Opcode::Text, Opcode::Binary, Opcode::Continuation];
        for &len in &lens {
            for &op in &ops {
                for (from, mask) in [
                    (Role::Server, None),
                    (Role::Client, Some([0xde, 0xad, 0xbe, 0xef])),
                ] {
                    for fin in [true, false] {
                        let rsv = if op == Opcode::Continuation { 0 } else { RSV1 };
                        let h = hdr(fin, rsv, op, mask, len);
                        let mut out = [0u8; MAX_HEADER_LEN];
                        let n = encode_frame_header(&h, &mut out);
                        let want_ext = match len {
                            0..=125 => 0,
                            126..=65535 => 2,
                            _ => 8,
                        };
                        assert_eq!(n, 2 + want_ext + if mask.is_some() { 4 } else { 0 });
                        let got = parse_frame_header(&out[..n], from, RSV1);
                        let want = FrameHeader {
                            header_len: n as u8,
                            ..h
                        };
                        assert_eq!(got, Ok(Status::Complete(want)), "len {len} {op:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn control_round_trip() {
        for op in [Opcode::Close, Opcode::Ping, Opcode::Pong] {
            for len in [0, 2, 125] {
                let h = hdr(true, 0, op, K, len);
                let mut out = [0u8; MAX_HEADER_LEN];
                let n = encode_frame_header(&h, &mut out);
                assert_eq!(n, 6);
                let want = FrameHeader { header_len: 6, ..h };
                assert_eq!(
                    parse_frame_header(&out[..n], Role::Client, 0),
                    Ok(Status::Complete(want))
                );
            }
        }
    }

    fn naive_mask(buf: &mut [u8], key: [u8; 4], offset: u64) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[((offset + i as u64) % 4) as usize];
        }
    }

    #[test]
    fn mask_matches_naive_at_every_offset_and_length() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let data: Vec<u8> = (0..=40u8).map(|i| i.wrapping_mul(31)).collect();
        for len in 0..data.len() {
            for offset in 0..9u64 {
                let mut fast = data[..len].to_vec();
                let mut slow = fast.clone();
                apply_mask(&mut fast, key, offset);
                naive_mask(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn mask_in_pieces_equals_whole() {
        let key = [9, 8, 7, 6];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..data.len() {
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split as u64);
            assert_eq!(parts, whole);
        }
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut hello = *b"Hello";
        apply_mask(&mut hello, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(hello, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn rfc_example_frames() {
        // RFC 6455 §5.7 examples.
        let mut out = Vec::new();
        write_ping(b"Hello", None, &mut out);
        assert_eq!(out, b"\x89\x05Hello");
        out.clear();
        write_pong(b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]), &mut out);
        assert_eq!(out, b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
    }

    #[test]
    fn close_reason_cut_at_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes, 2 per char
        let mut out = Vec::new();
        write_close(1000, reason.as_bytes(), None, &mut out);
        assert_eq!(out[1] as usize, out.len() - 2);
        let payload = &out[2..];
        assert!(payload.len() <= MAX_CONTROL_PAYLOAD);
        assert_eq!(payload.len(), 2 + 122);
        assert!(core::str::from_utf8(&payload[2..]).is_ok());
        out.clear();
        write_ping(&[7u8; 300], None, &mut out);
        assert_eq!(out.len(), 2 + MAX_CONTROL_PAYLOAD);
    }

    #[test]
    fn close_reason_of_continuation_bytes_only_is_cut_to_nothing() {
        let mut out = Vec::new();
        write_close(1000, &[0x80; 200], None, &mut out);
        assert_eq!(out, b"\x88\x02\x03\xe8");
        out.clear();
        write_close(1000, b"bye", None, &mut out);
        assert_eq!(out, b"\x88\x05\x03\xe8bye");
    }

    #[test]
    fn error_codes_and_text() {
        assert_eq!(FrameError::MessageTooBig.close_code(), 1009);
        assert_eq!(FrameError::InvalidCloseReason.close_code(), 1007);
        assert_eq!(FrameError::ReservedOpcode.close_code(), 1002);
        assert_eq!(
            FrameError::CloseTooShort.to_string(),
            "close payload of one byte"
        );
    }
}
