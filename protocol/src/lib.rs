//! Sans-IO HTTP/1.1 and WebSocket protocol code for sluice.
//!
//! The contract: bytes in, events or bytes out. Nothing here touches a socket,
//! reads a clock or spawns a thread. Every parser is incremental: `Status::Partial`
//! means "give me more bytes" and is never an error; `Status::Complete` carries the
//! result and how many bytes it consumed. Results refer to the caller's buffer by
//! byte ranges (`Span`), never by borrows, so a caller can keep them across reads.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod dns;
pub mod h1;
pub mod proxy;
pub mod ws;

/// The outcome of feeding bytes to an incremental parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// Complete result.
    Complete(T),
    /// More bytes are needed; nothing was consumed.
    Partial,
}

/// A byte range `start..end` into a buffer the caller owns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// Builds a span from `usize` offsets (heads are bounded far below `u32::MAX`).
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    /// The bytes this span covers in `buf`; empty when out of range.
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or(&[])
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    /// True when the span covers nothing.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}
