//! Body framing: where a message body ends, without copying or buffering it.
//!
//! Contract: `BodyDecoder::feed` is handed the bytes that follow everything fed
//! before and answers how many leading bytes belong to this message; the proxy
//! forwards exactly those, unchanged (chunk framing included), and keeps the rest
//! for the next head. The chunked decoder is a byte state machine: any split of
//! the input gives the same total, it holds no buffer, and it never consumes a
//! byte past the final CRLF.
//!
//! Chunked grammar (RFC 9112 §7.1):
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! last-chunk   = 1*"0" [ chunk-ext ] CRLF
//! ```
//! Extensions are skipped (bounded by `MAX_CHUNK_EXT_BYTES`, no control bytes);
//! trailer field lines are checked as `token ":" value CRLF` and bounded by
//! `MAX_TRAILER_BYTES` (RFC 9112 §7.1.2).

use super::{
    is_tchar, BodyKind, ParseError, MAX_CHUNK_EXT_BYTES, MAX_CHUNK_SIZE_DIGITS, MAX_TRAILER_BYTES,
};

/// What one `feed` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyProgress {
    /// Leading bytes of the input that belong to this message.
    pub consumed: usize,
    /// The message ended within (or before) those bytes.
    pub done: bool,
}

/// Tracks the end of one message body. Small, `Copy`, no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyDecoder {
    state: State,
    payload: u64,
    max: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Done,
    /// Bytes still to come.
    Length(u64),
    UntilClose,
    Chunked(Chunk),
}

/// Position inside a chunked body. Sizes ride along until the size line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Before the first hex digit of a chunk-size.
    SizeStart,
    /// In the hex digits.
    Size {
        size: u64,
        digits: u8,
    },
    /// Whitespace after the digits (BWS before ";"), counted as extension bytes.
    SizeWs {
        size: u64,
        len: u16,
    },
    /// In the extensions; `len` counts their bytes.
    Ext {
        size: u64,
        len: u16,
    },
    /// After the CR of the size line.
    SizeLf {
        size: u64,
    },
    /// Chunk data bytes still to come.
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final CRLF); `len` counts trailer bytes.
    TrailerStart {
        len: u16,
    },
    TrailerName {
        len: u16,
    },
    TrailerValue {
        len: u16,
    },
    TrailerLf {
        len: u16,
    },
    /// After the CR of the final CRLF.
    FinalLf,
    /// After the final LF: the message is complete.
    End,
}

impl BodyDecoder {
    /// A decoder for a body of `kind`; `max_body` bounds the payload bytes
    /// (BodyTooLarge beyond it). Create one after each parsed head.
    pub fn new(kind: BodyKind, max_body: Option<u64>) -> BodyDecoder {
        let state = match kind {
            BodyKind::None | BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::Chunked(Chunk::SizeStart),
            BodyKind::UntilClose => State::UntilClose,
        };
        BodyDecoder {
            state,
            payload: 0,
            max: max_body.unwrap_or(u64::MAX),
        }
    }

    /// `buf` = bytes following what was already fed. Returns how many leading
    /// bytes belong to this message (forward them unchanged; chunk framing
    /// included) and whether the message ended there. Never consumes past the
    /// end of the message. None / Length(0) are done at once; UntilClose never is.
    pub fn feed(&mut self, buf: &[u8]) -> Result<BodyProgress, ParseError> {
        match self.state {
            State::Done => Ok(BodyProgress {
                consumed: 0,
                done: true,
            }),
            State::Length(left) => {
                if self.payload.saturating_add(left) > self.max {
                    return Err(ParseError::BodyTooLarge);
                }
                let n = left.min(buf.len() as u64);
                self.payload += n;
                self.state = if n == left {
                    State::Done
                } else {
                    State::Length(left - n)
                };
                Ok(BodyProgress {
                    consumed: n as usize,
                    done: n == left,
                })
            }
            State::UntilClose => {
                self.payload = self.payload.saturating_add(buf.len() as u64);
                if self.payload > self.max {
                    return Err(ParseError::BodyTooLarge);
                }
                Ok(BodyProgress {
                    consumed: buf.len(),
                    done: false,
                })
            }
            State::Chunked(chunk) => self.feed_chunked(chunk, buf),
        }
    }

    /// True once the whole message has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// How many of the next bytes are payload with nothing to check in them: the rest of
    /// a Content-Length body, of the current chunk's data, or (until close) all that
    /// comes, within `max_body`. A proxy may move them without looking (`skip`); 0 where
    /// the next byte is framing, or where `feed` must answer `BodyTooLarge` first.
    pub fn opaque(&self) -> u64 {
        match self.state {
            State::Length(left) if self.payload.saturating_add(left) <= self.max => left,
            State::Chunked(Chunk::Data(left)) => left,
            State::UntilClose => self.max.saturating_sub(self.payload),
            _ => 0,
        }
    }

    /// Accounts `n` bytes moved without being fed, `n <= opaque()` (more is clamped):
    /// the same state as `feed` of those bytes would leave. True when the message ended.
    pub fn skip(&mut self, n: u64) -> bool {
        let n = n.min(self.opaque());
        match self.state {
            State::Length(left) => {
                self.payload += n;
                self.state = if n == left {
                    State::Done
                } else {
                    State::Length(left - n)
                };
            }
            State::Chunked(Chunk::Data(left)) => {
                self.state = State::Chunked(if n == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - n)
                });
            }
            State::UntilClose => self.payload += n,
            _ => {}
        }
        self.is_done()
    }

    /// Decoded payload bytes seen so far (chunk data only, not framing).
    pub fn payload_bytes(&self) -> u64 {
        self.payload
    }

    fn feed_chunked(&mut self, mut chunk: Chunk, buf: &[u8]) -> Result<BodyProgress, ParseError> {
        let mut i = 0;
        while i < buf.len() {
            if let Chunk::Data(left) = chunk {
                let n = left.min((buf.len() - i) as u64);
                i += n as usize;
                chunk = if n == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - n)
                };
                continue;
            }
            chunk = self.step(chunk, buf[i])?;
            i += 1;
            if chunk == Chunk::End {
                self.state = State::Done;
                return Ok(BodyProgress {
                    consumed: i,
                    done: true,
                });
            }
        }
        self.state = State::Chunked(chunk);
        Ok(BodyProgress {
            consumed: i,
            done: false,
        })
    }

    /// One framing byte. Data bytes never come here.
    fn step(&mut self, chunk: Chunk, b: u8) -> Result<Chunk, ParseError> {
        Ok(match chunk {
            Chunk::SizeStart => match hex(b) {
                Some(d) => Chunk::Size { size: d, digits: 1 },
                None => return Err(ParseError::InvalidChunkSize),
            },
            Chunk::Size { size, digits } => match hex(b) {
                Some(_) if usize::from(digits) == MAX_CHUNK_SIZE_DIGITS => {
                    return Err(ParseError::ChunkSizeTooLong)
                }
                Some(d) => Chunk::Size {
                    size: size << 4 | d,
                    digits: digits + 1,
                },
                None => self.after_size(size, 0, b)?,
            },
            Chunk::SizeWs { size, len } => self.after_size(size, len, b)?,
            Chunk::Ext { size, len } => match b {
                b'\r' => self.size_line_end(size)?,
                b'\n' => return Err(ParseError::InvalidChunkTerminator),
                _ if is_ctl(b) && b != b'\t' => return Err(ParseError::InvalidChunkSize),
                _ => Chunk::Ext {
                    size,
                    len: ext_len(len)?,
                },
            },
            Chunk::SizeLf { size } => match (b, size) {
                (b'\n', 0) => Chunk::TrailerStart { len: 0 },
                (b'\n', _) => Chunk::Data(size),
                _ => return Err(ParseError::InvalidChunkTerminator),
            },
            Chunk::Data(_) | Chunk::End => chunk,
            Chunk::DataCr => expect(b, b'\r', Chunk::DataLf)?,
            Chunk::DataLf => expect(b, b'\n', Chunk::SizeStart)?,
            Chunk::FinalLf => expect(b, b'\n', Chunk::End)?,
            _ => trailer_step(chunk, b)?,
        })
    }

    /// The byte after the chunk-size digits: BWS, ";" extensions, or CR.
    fn after_size(&mut self, size: u64, len: u16, b: u8) -> Result<Chunk, ParseError> {
        match b {
            b' ' | b'\t' => Ok(Chunk::SizeWs {
                size,
                len: ext_len(len)?,
            }),
            b';' => Ok(Chunk::Ext {
                size,
                len: ext_len(len)?,
            }),
            b'\r' => self.size_line_end(size),
            b'\n' => Err(ParseError::InvalidChunkTerminator),
            _ => Err(ParseError::InvalidChunkSize),
        }
    }

    /// The size line is complete: account the chunk before any of it passes, so
    /// an oversized body is refused at its first byte.
    fn size_line_end(&mut self, size: u64) -> Result<Chunk, ParseError> {
        let total = self
            .payload
            .checked_add(size)
            .ok_or(ParseError::ChunkSizeOverflow)?;
        if total > self.max {
            return Err(ParseError::BodyTooLarge);
        }
        self.payload = total;
        Ok(Chunk::SizeLf { size })
    }
}

/// Trailer section: `*( field-line CRLF ) CRLF`, every byte counted.
fn trailer_step(chunk: Chunk, b: u8) -> Result<Chunk, ParseError> {
    let len = match chunk {
        Chunk::TrailerStart { len }
        | Chunk::TrailerName { len }
        | Chunk::TrailerValue { len }
        | Chunk::TrailerLf { len } => len + 1,
        _ => return Err(ParseError::InvalidTrailer),
    };
    // `len` counts the bytes up to this one; the final LF (checked in `step`) is one more,
    // and the limit includes it.
    if usize::from(len) >= MAX_TRAILER_BYTES {
        return Err(ParseError::TrailerTooLarge);
    }
    Ok(match (chunk, b) {
        (Chunk::TrailerStart { .. }, b'\r') => Chunk::FinalLf,
        (Chunk::TrailerStart { .. }, b'\n') => return Err(ParseError::InvalidChunkTerminator),
        (Chunk::TrailerStart { .. }, _) if is_tchar(b) => Chunk::TrailerName { len },
        (Chunk::TrailerName { .. }, _) if is_tchar(b) => Chunk::TrailerName { len },
        (Chunk::TrailerName { .. }, b':') => Chunk::TrailerValue { len },
        (Chunk::TrailerValue { .. }, b'\r') => Chunk::TrailerLf { len },
        (Chunk::TrailerValue { .. }, _) if !is_ctl(b) || b == b'\t' => Chunk::TrailerValue { len },
        (Chunk::TrailerLf { .. }, b'\n') => Chunk::TrailerStart { len },
        _ => return Err(ParseError::InvalidTrailer),
    })
}

/// One more extension byte, within `MAX_CHUNK_EXT_BYTES`.
fn ext_len(len: u16) -> Result<u16, ParseError> {
    if usize::from(len) >= MAX_CHUNK_EXT_BYTES {
        return Err(ParseError::ChunkExtensionTooLong);
    }
    Ok(len + 1)
}

fn expect(b: u8, want: u8, next: Chunk) -> Result<Chunk, ParseError> {
    if b == want {
        Ok(next)
    } else {
        Err(ParseError::InvalidChunkTerminator)
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

/// Control bytes (and DEL); HTAB is one too, callers allow it where OWS may be.
fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The total cannot overflow without 2^64 bytes on the wire, so start near it.
    #[test]
    fn total_payload_overflow() {
        let mut d = BodyDecoder {
            state: State::Chunked(Chunk::SizeStart),
            payload: u64::MAX - 1,
            max: u64::MAX,
        };
        assert_eq!(d.feed(b"1\r\n").map(|p| p.consumed), Ok(3));
        let mut d = BodyDecoder {
            payload: u64::MAX - 1,
            ..BodyDecoder::new(BodyKind::Chunked, None)
        };
        assert_eq!(d.feed(b"2\r\n"), Err(ParseError::ChunkSizeOverflow));
    }
}
