//! HTTP/1.1 message framing for a relaying proxy (RFC 9112, RFC 9110).
//!
//! Contract: `parse_request` / `parse_response` look at the bytes a peer sent and
//! return `Status::Partial` until a whole head is there, then a head made of byte
//! ranges into the caller's buffer. `BodyDecoder` then tells how many of the
//! following bytes belong to the same message, so the proxy forwards them
//! unchanged. `write_request_head` / `write_response_head` re-emit a head for
//! the other side with hop-by-hop fields removed; `write_error_response` builds
//! the responses sluice sends itself.
//!
//! Invariants:
//! - The result of a head parse depends only on `buf[..min(len, max_head_bytes)]`;
//!   feeding more bytes after a `Partial` never changes an earlier verdict
//!   (a prefix either gives `Partial` or the same result as the whole).
//! - Parsing and body decoding never allocate; `write_*` only push into the
//!   caller's `Vec` after one `reserve`.
//! - Everything the head parser accepts is strict RFC 9112 syntax: every line
//!   ends in CRLF, no obs-fold, no whitespace before a colon, one framing.

mod body;
mod head;
mod response;
mod rewrite;
pub mod status;

use core::fmt;

pub use body::{BodyDecoder, BodyProgress};
pub use head::{parse_request, parse_response, RequestHead, ResponseHead};
pub use response::{reason_phrase, write_error_response};
pub use rewrite::{write_request_head, write_response_head, Forwarded};

/// Default limit on the bytes of a head, start line to the final CRLF included.
/// RFC 9112 §2.3 leaves the limit to the recipient; 16 KiB fits every browser.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default limit on the number of header fields in one head (RFC 9112 §5 sets none).
pub const MAX_HEADERS: usize = 100;
/// Limit on the bytes of a chunked body's trailer section, final CRLF included
/// (RFC 9112 §7.1.2 leaves it to the recipient).
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;
/// Limit on the hex digits of one chunk-size, leading zeros included: 16 digits
/// hold any `u64` (RFC 9112 §7.1 asks recipients to guard against overflow).
pub const MAX_CHUNK_SIZE_DIGITS: usize = 16;
/// Limit on the bytes of one chunk's extensions, from after the size to the CR
/// (RFC 9112 §7.1.1: "a server ought to limit the total length of chunk extensions").
pub const MAX_CHUNK_EXT_BYTES: usize = 4096;

/// Per-listener parsing limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted head in bytes; a longer one is `HeadTooLarge`.
    pub max_head_bytes: usize,
    /// Most header fields in one head; more is `TooManyHeaders` (capped at 256).
    pub max_headers: usize,
    /// Largest request body (checked against Content-Length at parse time; the
    /// decoder checks chunked bodies as it goes). `None` means unlimited.
    pub max_body_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head_bytes: MAX_HEAD_BYTES,
            max_headers: MAX_HEADERS,
            max_body_bytes: None,
        }
    }
}

/// HTTP version of a message; only 1.0 and 1.1 are accepted (RFC 9112 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

/// Request method (RFC 9110 §9); any other token is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// PATCH
    Patch,
    /// TRACE
    Trace,
    /// CONNECT
    Connect,
    /// Any other token; the exact bytes are in `RequestHead::method_span`.
    Other,
}

impl Method {
    /// True for the idempotent methods of RFC 9110 §9.2.2, which a proxy may
    /// retry on another backend after a connection failure.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }

    /// Maps method bytes (case-sensitive, RFC 9110 §9.1) to a `Method`.
    pub fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }
}

/// The four request-target forms of RFC 9112 §3.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`
    Origin,
    /// `http://host/path`
    Absolute,
    /// `host:port`, CONNECT only
    Authority,
    /// `*`, OPTIONS only
    Asterisk,
}

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body.
    None,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the connection closes (responses only).
    UntilClose,
}

/// Why a head or body was rejected. `status` gives the answer to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The head is longer than `Limits::max_head_bytes` (431).
    HeadTooLarge,
    /// More header fields than `Limits::max_headers` (431).
    TooManyHeaders,
    /// The method is not a token.
    InvalidMethod,
    /// The request-target is malformed or its form does not fit the method.
    InvalidTarget,
    /// The version is not HTTP/1.0 or HTTP/1.1.
    InvalidVersion,
    /// The status code is not three digits in 100..=599, or the reason is malformed.
    InvalidStatus,
    /// A field name is empty or not a token.
    InvalidHeaderName,
    /// A field value holds NUL, a bare CR or another control byte.
    InvalidHeaderValue,
    /// A line ends in LF without CR.
    BareLf,
    /// Whitespace between a field name and the colon (RFC 9112 §5.1).
    WhitespaceBeforeColon,
    /// A line starts with SP or HTAB (obs-fold, RFC 9112 §5.2).
    ObsFold,
    /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.3 rule 3).
    ContentLengthWithTransferEncoding,
    /// Content-Length values that differ.
    ConflictingContentLength,
    /// Content-Length that is not 1*DIGIT or does not fit in 64 bits.
    InvalidContentLength,
    /// A transfer coding sluice does not know (501).
    UnsupportedTransferEncoding,
    /// A request Transfer-Encoding whose final coding is not chunked, or chunked
    /// applied more than once (RFC 9112 §6.1).
    ChunkedNotLast,
    /// Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1).
    TransferEncodingHttp10,
    /// A chunk-size that is not hex, or garbage on the chunk-size line.
    InvalidChunkSize,
    /// A chunk-size longer than `MAX_CHUNK_SIZE_DIGITS`.
    ChunkSizeTooLong,
    /// The body's total decoded size overflows 64 bits.
    ChunkSizeOverflow,
    /// A chunk-size line or chunk data not followed by CRLF.
    InvalidChunkTerminator,
    /// Chunk extensions longer than `MAX_CHUNK_EXT_BYTES`.
    ChunkExtensionTooLong,
    /// A malformed trailer field line.
    InvalidTrailer,
    /// A trailer section longer than `MAX_TRAILER_BYTES`.
    TrailerTooLarge,
    /// The body is larger than `Limits::max_body_bytes` (413).
    BodyTooLarge,
    /// An HTTP/1.1 request without Host (RFC 9112 §3.2).
    MissingHost,
    /// More than one Host field (RFC 9112 §3.2).
    MultipleHost,
}

impl ParseError {
    /// The status code to answer with: 400, 413, 431 or 501.
    pub fn status(self) -> u16 {
        match self {
            ParseError::HeadTooLarge | ParseError::TooManyHeaders => status::HEADERS_TOO_LARGE,
            ParseError::BodyTooLarge => status::CONTENT_TOO_LARGE,
            ParseError::UnsupportedTransferEncoding => status::NOT_IMPLEMENTED,
            _ => status::BAD_REQUEST,
        }
    }

    /// A short fixed description for logs and error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ParseError::HeadTooLarge => "head too large",
            ParseError::TooManyHeaders => "too many header fields",
            ParseError::InvalidMethod => "invalid method",
            ParseError::InvalidTarget => "invalid request target",
            ParseError::InvalidVersion => "invalid HTTP version",
            ParseError::InvalidStatus => "invalid status line",
            ParseError::InvalidHeaderName => "invalid header name",
            ParseError::InvalidHeaderValue => "invalid header value",
            ParseError::BareLf => "line ends in bare LF",
            ParseError::WhitespaceBeforeColon => "whitespace before colon",
            ParseError::ObsFold => "obsolete line folding",
            ParseError::ContentLengthWithTransferEncoding => {
                "both Content-Length and Transfer-Encoding"
            }
            ParseError::ConflictingContentLength => "conflicting Content-Length",
            ParseError::InvalidContentLength => "invalid Content-Length",
            ParseError::UnsupportedTransferEncoding => "unsupported transfer coding",
            ParseError::ChunkedNotLast => "chunked is not the final transfer coding",
            ParseError::TransferEncodingHttp10 => "Transfer-Encoding in HTTP/1.0",
            ParseError::InvalidChunkSize => "invalid chunk size",
            ParseError::ChunkSizeTooLong => "chunk size too long",
            ParseError::ChunkSizeOverflow => "chunk size overflow",
            ParseError::InvalidChunkTerminator => "invalid chunk terminator",
            ParseError::ChunkExtensionTooLong => "chunk extension too long",
            ParseError::InvalidTrailer => "invalid trailer",
            ParseError::TrailerTooLarge => "trailer section too large",
            ParseError::BodyTooLarge => "body too large",
            ParseError::MissingHost => "missing Host",
            ParseError::MultipleHost => "multiple Host fields",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True when the comma-separated list `value` contains `token`, compared ASCII
/// case-insensitively with OWS trimmed (RFC 9110 §5.6.1). Use it on Connection,
/// Upgrade and Transfer-Encoding values.
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    list_items(value).any(|item| item.eq_ignore_ascii_case(token))
}

/// The OWS-trimmed, non-empty elements of a comma-separated list.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// `value` without leading and trailing SP / HTAB.
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or(&[])
}

/// tchar of RFC 9110 §5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'!' | b'#' | b'$' | b'%' | b'&'
        | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

/// Parses 1*DIGIT as a `u64`; `None` when empty, not all digits, or overflowing.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Iterates the `(name, value)` fields of a head that `parse_request` or
/// `parse_response` accepted (`&buf[..head_len]`), values OWS-trimmed. Skips the
/// start line; allocates nothing.
pub fn header_lines(head: &[u8]) -> HeaderLines<'_> {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let pos = match find_byte(&head[start..], b'\r') {
        Some(cr) => start + cr + 2,
        None => head.len(),
    };
    HeaderLines { head, pos }
}

/// Iterator over the fields of a validated head; see `header_lines`.
#[derive(Clone, Debug)]
pub struct HeaderLines<'a> {
    head: &'a [u8],
    pos: usize,
}

/// One field line: `head[start..colon]` is the name, `head[start..end]` the line
/// without its CRLF.
#[derive(Clone, Copy)]
pub(crate) struct Line {
    pub start: usize,
    pub colon: usize,
    pub end: usize,
}

impl Line {
    pub fn name<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        head.get(self.start..self.colon).unwrap_or(&[])
    }
    pub fn value<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        trim_ows(head.get(self.colon + 1..self.end).unwrap_or(&[]))
    }
}

impl<'a> HeaderLines<'a> {
    /// The next field line, by offsets into the head.
    pub(crate) fn next_line(&mut self) -> Option<Line> {
        let rest = self.head.get(self.pos..)?;
        let len = find_byte(rest, b'\r').unwrap_or(rest.len());
        if len == 0 {
            self.pos = self.head.len() + 1;
            return None;
        }
        let colon = find_byte(&rest[..len], b':').unwrap_or(len);
        let line = Line {
            start: self.pos,
            colon: self.pos + colon,
            end: self.pos + len,
        };
        self.pos += len + 2;
        Some(line)
    }
}

impl<'a> Iterator for HeaderLines<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let line = self.next_line()?;
        Some((line.name(self.head), line.value(self.head)))
    }
}

/// Header fields the proxy interprets or rewrites, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    KeepAlive,
    ProxyConnection,
    Te,
    Trailer,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    Other,
}

/// Classifies a field name (case-insensitive) by length and first byte, so a
/// name costs one comparison at most and most cost none.
pub(crate) fn classify(name: &[u8]) -> Field {
    let first = name.first().map_or(0, u8::to_ascii_lowercase);
    let (known, field): (&[u8], Field) = match (name.len(), first) {
        (2, b't') => (b"te", Field::Te),
        (4, b'h') => (b"host", Field::Host),
        (6, b'e') => (b"expect", Field::Expect),
        (7, b'u') => (b"upgrade", Field::Upgrade),
        (7, b't') => (b"trailer", Field::Trailer),
        (10, b'c') => (b"connection", Field::Connection),
        (10, b'k') => (b"keep-alive", Field::KeepAlive),
        (14, b'c') => (b"content-length", Field::ContentLength),
        (15, b'x') => (b"x-forwarded-for", Field::XForwardedFor),
        (16, b'p') => (b"proxy-connection", Field::ProxyConnection),
        (16, b'x') => (b"x-forwarded-host", Field::XForwardedHost),
        (17, b't') => (b"transfer-encoding", Field::TransferEncoding),
        (17, b'x') => (b"x-forwarded-proto", Field::XForwardedProto),
        _ => return Field::Other,
    };
    if eq_folded(name, known) {
        field
    } else {
        Field::Other
    }
}

/// `name` equals `lower` (lowercase letters and '-') ignoring ASCII case: `| 0x20`
/// lowercases letters and keeps '-', and no other tchar maps onto those. Names of
/// eight bytes or more are compared as overlapping words from both ends.
fn eq_folded(name: &[u8], lower: &[u8]) -> bool {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let n = lower.len();
    if name.len() != n {
        return false;
    }
    if n < 8 {
        return name.iter().zip(lower).all(|(&a, &k)| a | 0x20 == k);
    }
    let word = |b: &[u8], at: usize| {
        b.get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let same = |at: usize| word(name, at) | FOLD == word(lower, at);
    same(0) && (n <= 16 || same(8)) && same(n - 8)
}

/// Index of the first `needle` in `hay`, eight bytes at a time (the classic
/// "has zero byte" word trick; the lowest flagged byte is always a true match).
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut words = hay.chunks_exact(8);
    for (k, word) in words.by_ref().enumerate() {
        let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8])) ^ pattern;
        let found = w.wrapping_sub(LO) & !w & HI;
        if found != 0 {
            return Some(k * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    let tail = hay.len() - words.remainder().len();
    words
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| tail + p)
}

#[cfg(test)]
mod tests {
    use super::{classify, Field};

    #[test]
    fn classify_ignores_case_and_rejects_near_misses() {
        let known: [(&[u8], Field); 13] = [
            (b"TE", Field::Te),
            (b"Host", Field::Host),
            (b"Expect", Field::Expect),
            (b"Upgrade", Field::Upgrade),
            (b"Trailer", Field::Trailer),
            (b"Connection", Field::Connection),
            (b"Keep-Alive", Field::KeepAlive),
            (b"Content-Length", Field::ContentLength),
            (b"X-Forwarded-For", Field::XForwardedFor),
            (b"Proxy-Connection", Field::ProxyConnection),
            (b"X-Forwarded-Host", Field::XForwardedHost),
            (b"Transfer-Encoding", Field::TransferEncoding),
            (b"X-Forwarded-Proto", Field::XForwardedProto),
        ];
        for (name, field) in known {
            assert_eq!(classify(name), field);
            assert_eq!(classify(&name.to_ascii_lowercase()), field);
            assert_eq!(classify(&name.to_ascii_uppercase()), field);
            // One byte changed anywhere (to another tchar) is another field.
            for at in 0..name.len() {
                let mut near = name.to_vec();
                near[at] = if near[at] == b'-' { b'_' } else { b'!' };
                assert_eq!(classify(&near), Field::Other, "{near:?}");
            }
        }
        assert_eq!(classify(b"Content-Type"), Field::Other);
        assert_eq!(classify(b""), Field::Other);
    }
}
