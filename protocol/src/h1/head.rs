//! Request and response heads: httparse for the fast path, then strict RFC 9112
//! checks, framing (RFC 9112 §6.3) and the fields the proxy acts on.
//!
//! Contract: `parse_request` / `parse_response` return `Partial` until the head
//! (start line through the empty line) is in `buf`, then a head of byte ranges
//! into `buf`. The verdict depends only on `buf[..min(len, max_head_bytes)]`, so a
//! prefix of a message gives `Partial` or the same verdict as the whole message.
//!
//! How: httparse finds the head and validates tokens and field bytes but accepts
//! bare LF line endings, so a complete head is then checked line end by line end
//! (cheap: one look per field). When httparse rejects, `strict_scan` walks the
//! bytes with the RFC 9112 grammar to name the first violation exactly; that walk
//! only runs on the error path.

use core::mem::MaybeUninit;

use super::{
    classify, is_tchar, list_items, parse_decimal, trim_ows, BodyKind, Field, Limits, Method,
    ParseError, TargetForm, Version,
};
use crate::{Span, Status};

/// httparse header slots on the stack; `Limits::max_headers` is capped here.
const HEADER_SLOTS: usize = 256;

/// Transfer codings sluice passes through (RFC 9112 §7; "identity" is obsolete).
const KNOWN_CODINGS: [&[u8]; 5] = [b"chunked", b"gzip", b"deflate", b"compress", b"x-gzip"];

/// A parsed request head. Spans index the buffer given to `parse_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes of the head including the final CRLF CRLF (and any empty lines before it).
    pub head_len: usize,
    /// The method.
    pub method: Method,
    /// The method as sent.
    pub method_span: Span,
    /// The request-target as sent.
    pub target: Span,
    /// Which of the four target forms it is.
    pub target_form: TargetForm,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// None, Length(n) or Chunked; never UntilClose for requests.
    pub body: BodyKind,
    /// 1.1: unless Connection has "close"; 1.0: only with "keep-alive".
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// Upgrade value (the first field), only when Connection lists "upgrade".
    pub upgrade: Option<Span>,
    /// Upgrade lists "websocket" and Connection lists "upgrade".
    pub upgrade_websocket: bool,
    /// Host value, OWS-trimmed.
    pub host: Option<Span>,
    /// Number of header fields.
    pub header_count: usize,
    /// The field lines `write_request_head` drops.
    pub(crate) hops: Hops,
}

/// A parsed response head. Spans index the buffer given to `parse_response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// Bytes of the head including the final CRLF CRLF.
    pub head_len: usize,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Status code, 100..=599.
    pub status: u16,
    /// Reason phrase as sent (may be empty).
    pub reason: Span,
    /// Framing per RFC 9112 §6.3, given the request method.
    pub body: BodyKind,
    /// As for requests; false when the body is UntilClose.
    pub keep_alive: bool,
    /// `Keep-Alive: timeout=N`, in seconds.
    pub keep_alive_timeout: Option<u32>,
    /// Status 101.
    pub upgrade: bool,
    /// Number of header fields.
    pub header_count: usize,
    /// The field lines `write_response_head` drops.
    pub(crate) hops: Hops,
}

/// Most lines a `Hops` map holds; heads with more hop-by-hop lines are rare.
const HOP_LINES: usize = 4;

/// The hop-by-hop field lines of a head (RFC 9110 §7.6.1), found while parsing so
/// that rewriting the head neither classifies the names again nor looks for line
/// ends. `mapped` is false when the map cannot say it all (more than `HOP_LINES`
/// such lines, or a Connection field naming other fields), and the rewrite then
/// looks at the names itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hops {
    /// Offset of the first field line (of the final CRLF when there is none).
    pub fields: u32,
    /// The lines to drop, CRLF included, in order: Connection, Keep-Alive,
    /// Proxy-Connection, TE, Trailer, Upgrade, and in a request X-Forwarded-For,
    /// -Proto and -Host (the proxy writes its own).
    pub lines: [Span; HOP_LINES],
    /// How many of `lines` are used.
    pub count: u8,
    /// Bit `k` set: `lines[k]` is an Upgrade line, kept for a tunnel.
    pub upgrade: u8,
    /// A request X-Forwarded-For is among `lines`.
    pub xff: bool,
    /// The map is complete.
    pub mapped: bool,
}

impl Hops {
    /// An empty map for a head whose field lines end at `fields_end`.
    fn new(fields_end: u32) -> Hops {
        Hops {
            fields: fields_end,
            mapped: true,
            ..Hops::default()
        }
    }

    /// Notes field line `k` (they come in order), which starts at `start` and is a
    /// `field`. A dropped line is open (empty) until the next line starts.
    fn note(&mut self, k: usize, start: u32, field: Field, kind: Kind) {
        if k == 0 {
            self.fields = start;
        }
        self.finish(start);
        let request = kind == Kind::Request;
        match field {
            Field::Connection
            | Field::KeepAlive
            | Field::ProxyConnection
            | Field::Te
            | Field::Trailer
            | Field::Upgrade => {}
            Field::XForwardedFor if request => self.xff = true,
            Field::XForwardedProto | Field::XForwardedHost if request => {}
            _ => return,
        }
        let n = usize::from(self.count);
        let Some(line) = self.lines.get_mut(n) else {
            self.mapped = false;
            return;
        };
        *line = Span { start, end: start };
        self.count += 1;
        if field == Field::Upgrade {
            self.upgrade |= 1 << n;
        }
    }

    /// Ends an open dropped line at `end`.
    fn finish(&mut self, end: u32) {
        let last = usize::from(self.count).wrapping_sub(1);
        if let Some(line) = self.lines.get_mut(last).filter(|l| l.is_empty()) {
            line.end = end;
        }
    }
}

/// Parses a request head at the start of `buf`. Call it again with more bytes
/// after `Partial`; on `Complete`, the body starts at `head_len`.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Status<RequestHead>, ParseError> {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let max_headers = limits.max_headers.min(HEADER_SLOTS);
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); HEADER_SLOTS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(window, &mut slots[..max_headers]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return partial(buf.len(), limits),
        Err(e) => return rejected(window, Kind::Request, max_headers, e, buf.len(), limits),
    };
    let start = check_line_ends(window, req.headers, head_len)?;
    let method_bytes = req.method.unwrap_or("").as_bytes();
    let target_bytes = req.path.unwrap_or("").as_bytes();
    let version = if req.version == Some(1) {
        Version::Http11
    } else {
        Version::Http10
    };
    let method = Method::from_bytes(method_bytes);
    let target_form = target_form(method, target_bytes)?;
    let f = scan_fields(window, req.headers, Kind::Request, head_len)?;
    if f.hosts > 1 {
        return Err(ParseError::MultipleHost);
    }
    if f.hosts == 0 && version == Version::Http11 {
        return Err(ParseError::MissingHost);
    }
    let body = request_body(&f, version, limits)?;
    Ok(Status::Complete(RequestHead {
        head_len,
        method,
        method_span: Span::new(start, start + method_bytes.len()),
        target: span_of(window, target_bytes),
        target_form,
        version,
        body,
        keep_alive: keep_alive(&f, version),
        expect_continue: f.expect_continue && version == Version::Http11,
        upgrade: if f.conn_upgrade { f.upgrade } else { None },
        upgrade_websocket: f.conn_upgrade && f.websocket,
        host: f.host,
        header_count: req.headers.len(),
        hops: f.hops,
    }))
}

/// Parses a response head at the start of `buf`; `request_method` is the method
/// of the request it answers (it decides framing, RFC 9112 §6.3). 1xx other than
/// 101 are interim: they come back with body None and the final response follows.
pub fn parse_response(
    buf: &[u8],
    request_method: Method,
    limits: &Limits,
) -> Result<Status<ResponseHead>, ParseError> {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let max_headers = limits.max_headers.min(HEADER_SLOTS);
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); HEADER_SLOTS];
    let mut resp = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let parsed =
        config.parse_response_with_uninit_headers(&mut resp, window, &mut slots[..max_headers]);
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return partial(buf.len(), limits),
        Err(e) => return rejected(window, Kind::Response, max_headers, e, buf.len(), limits),
    };
    let start = check_line_ends(window, resp.headers, head_len)?;
    let status = resp.code.unwrap_or(0);
    if !(100..=599).contains(&status) {
        return Err(ParseError::InvalidStatus);
    }
    let version = if resp.version == Some(1) {
        Version::Http11
    } else {
        Version::Http10
    };
    let f = scan_fields(window, resp.headers, Kind::Response, head_len)?;
    let body = response_body(&f, version, status, request_method)?;
    Ok(Status::Complete(ResponseHead {
        head_len,
        version,
        status,
        reason: reason_span(window, start, head_len),
        body,
        keep_alive: body != BodyKind::UntilClose && keep_alive(&f, version),
        keep_alive_timeout: f.keep_alive_timeout,
        upgrade: status == 101,
        header_count: resp.headers.len(),
        hops: f.hops,
    }))
}

/// What the fields of a head say, gathered in one pass.
#[derive(Default)]
struct Fields {
    content_length: Option<u64>,
    te: bool,
    chunked_last: bool,
    chunked_seen: bool,
    close: bool,
    keep_alive: bool,
    conn_upgrade: bool,
    upgrade: Option<Span>,
    websocket: bool,
    host: Option<Span>,
    hosts: usize,
    expect_continue: bool,
    keep_alive_timeout: Option<u32>,
    hops: Hops,
}

fn scan_fields(
    buf: &[u8],
    headers: &[httparse::Header<'_>],
    kind: Kind,
    head_len: usize,
) -> Result<Fields, ParseError> {
    let mut f = Fields::default();
    // The field lines end before the final CRLF.
    let fields_end = head_len.saturating_sub(2) as u32;
    f.hops = Hops::new(fields_end);
    for (k, h) in headers.iter().enumerate() {
        let value = h.value;
        let field = classify(h.name.as_bytes());
        f.hops
            .note(k, span_of(buf, h.name.as_bytes()).start, field, kind);
        match field {
            Field::ContentLength => {
                f.content_length = Some(content_length(value, f.content_length)?)
            }
            Field::TransferEncoding => transfer_codings(value, &mut f)?,
            Field::Host => {
                f.hosts += 1;
                f.host = f.host.or(Some(span_of(buf, value)));
            }
            // Most Connection values are exactly one of the tokens: skip the list walk.
            Field::Connection if value.eq_ignore_ascii_case(b"keep-alive") => f.keep_alive = true,
            Field::Connection if value.eq_ignore_ascii_case(b"close") => f.close = true,
            Field::Connection => {
                for item in list_items(value) {
                    let close = item.eq_ignore_ascii_case(b"close");
                    let keep_alive = item.eq_ignore_ascii_case(b"keep-alive");
                    let upgrade = item.eq_ignore_ascii_case(b"upgrade");
                    f.close |= close;
                    f.keep_alive |= keep_alive;
                    f.conn_upgrade |= upgrade;
                    // Naming another field: the rewrite has to find it by name.
                    f.hops.mapped &= close || keep_alive || upgrade;
                }
            }
            Field::Upgrade => {
                f.upgrade = f.upgrade.or(Some(span_of(buf, value)));
                f.websocket |= list_items(value).any(|p| p.eq_ignore_ascii_case(b"websocket"));
            }
            Field::Expect => f.expect_continue |= value.eq_ignore_ascii_case(b"100-continue"),
            Field::KeepAlive => {
                f.keep_alive_timeout = f.keep_alive_timeout.or(timeout_param(value))
            }
            _ => {}
        }
    }
    f.hops.finish(fields_end);
    Ok(f)
}

/// RFC 9110 §8.6: Content-Length = 1*DIGIT; a list of identical values ("5, 5")
/// or repeated identical fields count as one, differing ones are an error.
fn content_length(value: &[u8], prev: Option<u64>) -> Result<u64, ParseError> {
    if let (Some(v), None) = (parse_decimal(value), prev) {
        return Ok(v);
    }
    let mut n = prev;
    for item in value.split(|&b| b == b',') {
        let v = parse_decimal(trim_ows(item)).ok_or(ParseError::InvalidContentLength)?;
        if n.is_some_and(|p| p != v) {
            return Err(ParseError::ConflictingContentLength);
        }
        n = Some(v);
    }
    n.ok_or(ParseError::InvalidContentLength)
}

/// RFC 9112 §6.1: codings apply in order; chunked at most once. Records whether
/// chunked is the final coding so far (later fields continue the list).
fn transfer_codings(value: &[u8], f: &mut Fields) -> Result<(), ParseError> {
    f.te = true;
    let mut any = false;
    for item in list_items(value) {
        any = true;
        let name = trim_ows(item.split(|&b| b == b';').next().unwrap_or(&[]));
        if name.eq_ignore_ascii_case(b"chunked") {
            if f.chunked_seen {
                return Err(ParseError::ChunkedNotLast);
            }
            f.chunked_seen = true;
            f.chunked_last = true;
        } else if KNOWN_CODINGS.iter().any(|k| name.eq_ignore_ascii_case(k)) {
            f.chunked_last = false;
        } else {
            return Err(ParseError::UnsupportedTransferEncoding);
        }
    }
    if any {
        Ok(())
    } else {
        Err(ParseError::UnsupportedTransferEncoding)
    }
}

/// `timeout=N` from a Keep-Alive value (RFC 2068 §19.7.1.1, still sent by servers).
fn timeout_param(value: &[u8]) -> Option<u32> {
    list_items(value).find_map(|item| {
        let (name, n) = item.split_at(item.iter().position(|&b| b == b'=')?);
        if !trim_ows(name).eq_ignore_ascii_case(b"timeout") {
            return None;
        }
        u32::try_from(parse_decimal(trim_ows(&n[1..]))?).ok()
    })
}

fn keep_alive(f: &Fields, version: Version) -> bool {
    match version {
        Version::Http11 => !f.close,
        Version::Http10 => f.keep_alive && !f.close,
    }
}

/// RFC 9112 §6.3 for requests: TE (chunked last) or CL or no body.
fn request_body(f: &Fields, version: Version, limits: &Limits) -> Result<BodyKind, ParseError> {
    match (f.content_length, f.te) {
        (Some(_), true) => Err(ParseError::ContentLengthWithTransferEncoding),
        (None, true) if version == Version::Http10 => Err(ParseError::TransferEncodingHttp10),
        (None, true) if !f.chunked_last => Err(ParseError::ChunkedNotLast),
        (None, true) => Ok(BodyKind::Chunked),
        (Some(n), false) if limits.max_body_bytes.is_some_and(|max| n > max) => {
            Err(ParseError::BodyTooLarge)
        }
        (Some(n), false) => Ok(BodyKind::Length(n)),
        (None, false) => Ok(BodyKind::None),
    }
}

/// RFC 9112 §6.3 for responses. Conflicting framing is rejected even where the
/// body is known to be empty: such a server cannot be trusted with the next one.
fn response_body(
    f: &Fields,
    version: Version,
    status: u16,
    method: Method,
) -> Result<BodyKind, ParseError> {
    if f.te && f.content_length.is_some() {
        return Err(ParseError::ContentLengthWithTransferEncoding);
    }
    if f.te && version == Version::Http10 {
        return Err(ParseError::TransferEncodingHttp10);
    }
    if method == Method::Head || status < 200 || status == 204 || status == 304 {
        return Ok(BodyKind::None);
    }
    if method == Method::Connect && (200..300).contains(&status) {
        return Ok(BodyKind::None);
    }
    Ok(match f.content_length {
        _ if f.te && f.chunked_last => BodyKind::Chunked,
        _ if f.te => BodyKind::UntilClose,
        Some(n) => BodyKind::Length(n),
        None => BodyKind::UntilClose,
    })
}

/// RFC 9112 §3.2: the form must fit the method; targets are ASCII.
fn target_form(method: Method, t: &[u8]) -> Result<TargetForm, ParseError> {
    if !t.is_ascii() {
        return Err(ParseError::InvalidTarget);
    }
    let form = match t {
        _ if method == Method::Connect => is_authority(t).then_some(TargetForm::Authority),
        [b'/', ..] => Some(TargetForm::Origin),
        b"*" => (method == Method::Options).then_some(TargetForm::Asterisk),
        _ => is_absolute(t).then_some(TargetForm::Absolute),
    };
    form.ok_or(ParseError::InvalidTarget)
}

/// authority-form = uri-host ":" port (RFC 9112 §3.2.3).
fn is_authority(t: &[u8]) -> bool {
    let Some(colon) = t.iter().rposition(|&b| b == b':') else {
        return false;
    };
    let port = &t[colon + 1..];
    colon > 0
        && (1..=5).contains(&port.len())
        && port.iter().all(u8::is_ascii_digit)
        && !t.iter().any(|b| matches!(b, b'/' | b'?' | b'#' | b'@'))
}

/// absolute-form with an authority: scheme "://" host ... (RFC 9112 §3.2.2).
fn is_absolute(t: &[u8]) -> bool {
    let Some(sep) = t.windows(3).position(|w| w == b"://") else {
        return false;
    };
    let scheme = &t[..sep];
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    scheme_ok
        && t.get(sep + 3)
            .is_some_and(|b| !matches!(b, b'/' | b'?' | b'#'))
}

/// Checks that every line of a head httparse accepted ends in CRLF (httparse
/// also takes bare LF). Every LF ends a line there, so it is enough to look
/// before each field line and at the final CRLF CRLF. Returns the offset of the
/// start line (after any empty lines, RFC 9112 §2.2).
fn check_line_ends(
    buf: &[u8],
    headers: &[httparse::Header<'_>],
    head_len: usize,
) -> Result<usize, ParseError> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let leading_ok = start % 2 == 0 && buf[..start].chunks_exact(2).all(|c| c == b"\r\n");
    let fields_ok = headers.iter().all(|h| {
        let at = span_of(buf, h.name.as_bytes()).start as usize;
        at >= 2 && buf.get(at - 2..at) == Some(b"\r\n")
    });
    let end_ok = head_len >= 4 && buf.get(head_len - 4..head_len) == Some(b"\r\n\r\n");
    if leading_ok && fields_ok && end_ok {
        Ok(start)
    } else {
        Err(ParseError::BareLf)
    }
}

/// The reason phrase of a validated status line starting at `start`
/// ("HTTP/1.1 200 reason"; httparse does not hand out obs-text reasons).
fn reason_span(buf: &[u8], start: usize, head_len: usize) -> Span {
    let line = buf.get(start..head_len).unwrap_or(&[]);
    let end = start + line.iter().position(|&b| b == b'\r').unwrap_or(line.len());
    Span::new((start + 13).min(end), end)
}

/// The span of `part`, a sub-slice of `buf` that httparse returned.
fn span_of(buf: &[u8], part: &[u8]) -> Span {
    let start = (part.as_ptr() as usize)
        .wrapping_sub(buf.as_ptr() as usize)
        .min(buf.len());
    Span::new(start, (start + part.len()).min(buf.len()))
}

fn partial<T>(len: usize, limits: &Limits) -> Result<Status<T>, ParseError> {
    if len >= limits.max_head_bytes {
        Err(ParseError::HeadTooLarge)
    } else {
        Ok(Status::Partial)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Response,
}

/// The end of a strict walk over a head that httparse rejected.
enum Scan {
    /// The first violation of the grammar.
    Violation(ParseError),
    /// The bytes so far are a valid prefix.
    NeedMore,
    /// The whole head is valid by our grammar (httparse disagrees).
    HeadEnd,
}

fn rejected<T>(
    window: &[u8],
    kind: Kind,
    max_headers: usize,
    err: httparse::Error,
    len: usize,
    limits: &Limits,
) -> Result<Status<T>, ParseError> {
    let Err(scan) = strict_scan(window, kind, max_headers) else {
        return Err(from_httparse(err));
    };
    match scan {
        Scan::Violation(e) => Err(e),
        Scan::NeedMore => partial(len, limits),
        Scan::HeadEnd => Err(from_httparse(err)),
    }
}

fn from_httparse(err: httparse::Error) -> ParseError {
    match err {
        httparse::Error::HeaderName => ParseError::InvalidHeaderName,
        httparse::Error::HeaderValue => ParseError::InvalidHeaderValue,
        httparse::Error::NewLine => ParseError::BareLf,
        httparse::Error::Status => ParseError::InvalidStatus,
        httparse::Error::Token => ParseError::InvalidMethod,
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::Version => ParseError::InvalidVersion,
    }
}

/// `Ok(next index)` or `Err` with where the walk ended.
type Step = Result<usize, Scan>;

/// Walks a head with the RFC 9112 grammar, left to right, stopping at the first
/// violation, so a prefix names the same violation as the whole.
fn strict_scan(buf: &[u8], kind: Kind, max_headers: usize) -> Step {
    let mut i = 0;
    while let b'\r' | b'\n' = byte(buf, i)? {
        i = crlf(buf, i, ParseError::BareLf)?;
    }
    i = match kind {
        Kind::Request => request_line(buf, i)?,
        Kind::Response => status_line(buf, i)?,
    };
    let mut count = 0;
    loop {
        match byte(buf, i)? {
            b'\r' | b'\n' => {
                crlf(buf, i, ParseError::BareLf)?;
                return Err(Scan::HeadEnd);
            }
            b' ' | b'\t' => return Err(Scan::Violation(ParseError::ObsFold)),
            _ if count == max_headers => return Err(Scan::Violation(ParseError::TooManyHeaders)),
            _ => {}
        }
        i = field_line(buf, i)?;
        count += 1;
    }
}

fn byte(buf: &[u8], i: usize) -> Result<u8, Scan> {
    buf.get(i).copied().ok_or(Scan::NeedMore)
}

fn violation(b: u8, otherwise: ParseError) -> Scan {
    Scan::Violation(if b == b'\n' {
        ParseError::BareLf
    } else {
        otherwise
    })
}

/// Expects CRLF at `i`. A bare CR is an invalid value byte, a bare LF is BareLf.
fn crlf(buf: &[u8], i: usize, otherwise: ParseError) -> Step {
    match byte(buf, i)? {
        b'\r' => match byte(buf, i + 1)? {
            b'\n' => Ok(i + 2),
            _ => Err(Scan::Violation(ParseError::InvalidHeaderValue)),
        },
        b => Err(violation(b, otherwise)),
    }
}

/// Advances over bytes matching `ok`; returns the index and byte that stopped it.
fn skip(buf: &[u8], mut i: usize, ok: impl Fn(u8) -> bool) -> Result<(usize, u8), Scan> {
    loop {
        let b = byte(buf, i)?;
        if !ok(b) {
            return Ok((i, b));
        }
        i += 1;
    }
}

/// request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3).
fn request_line(buf: &[u8], start: usize) -> Step {
    let (i, b) = skip(buf, start, is_tchar)?;
    if i == start || b != b' ' {
        return Err(violation(b, ParseError::InvalidMethod));
    }
    let (j, b) = skip(buf, i + 1, |b| (0x21..=0x7e).contains(&b))?;
    if j == i + 1 || b != b' ' {
        return Err(violation(b, ParseError::InvalidTarget));
    }
    let k = version(buf, j + 1)?;
    crlf(buf, k, ParseError::InvalidVersion)
}

/// status-line = HTTP-version SP status-code [SP reason-phrase] CRLF (RFC 9112 §4;
/// the reason may be missing along with its SP, as httparse allows).
fn status_line(buf: &[u8], start: usize) -> Step {
    let i = version(buf, start)?;
    let b = byte(buf, i)?;
    if b != b' ' {
        return Err(violation(b, ParseError::InvalidVersion));
    }
    let mut code = 0u16;
    for k in 1..4 {
        let d = byte(buf, i + k)?;
        if !d.is_ascii_digit() {
            return Err(violation(d, ParseError::InvalidStatus));
        }
        code = code * 10 + u16::from(d - b'0');
    }
    if !(100..=599).contains(&code) {
        return Err(Scan::Violation(ParseError::InvalidStatus));
    }
    let mut j = i + 4;
    if byte(buf, j)? == b' ' {
        j = skip(buf, j + 1, |b| b == b'\t' || (b >= 0x20 && b != 0x7f))?.0;
    }
    crlf(buf, j, ParseError::InvalidStatus)
}

/// HTTP-version = "HTTP/1.0" or "HTTP/1.1" (the only ones a proxy of 1.1 speaks).
fn version(buf: &[u8], i: usize) -> Step {
    for (k, want) in b"HTTP/1.".iter().enumerate() {
        let b = byte(buf, i + k)?;
        if b != *want {
            return Err(violation(b, ParseError::InvalidVersion));
        }
    }
    match byte(buf, i + 7)? {
        b'0' | b'1' => Ok(i + 8),
        b => Err(violation(b, ParseError::InvalidVersion)),
    }
}

/// field-line = field-name ":" OWS field-value OWS CRLF (RFC 9112 §5; no
/// whitespace before the colon, §5.1).
fn field_line(buf: &[u8], start: usize) -> Step {
    let (i, b) = skip(buf, start, is_tchar)?;
    if b != b':' {
        if i > start && (b == b' ' || b == b'\t') {
            let (_, b) = skip(buf, i, |b| b == b' ' || b == b'\t')?;
            let e = if b == b':' {
                ParseError::WhitespaceBeforeColon
            } else {
                ParseError::InvalidHeaderName
            };
            return Err(violation(b, e));
        }
        return Err(violation(b, ParseError::InvalidHeaderName));
    }
    let (j, _) = skip(buf, i + 1, |b| b == b'\t' || (b >= 0x20 && b != 0x7f))?;
    crlf(buf, j, ParseError::InvalidHeaderValue)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strict walk's verdicts on whole heads (it runs only when httparse rejects).
    #[test]
    fn strict_scan_reaches_the_end_of_a_valid_head() {
        let req = b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
        assert!(matches!(
            strict_scan(req, Kind::Request, 2),
            Err(Scan::HeadEnd)
        ));
        assert!(matches!(
            strict_scan(req, Kind::Request, 1),
            Err(Scan::Violation(ParseError::TooManyHeaders))
        ));
        assert!(matches!(
            strict_scan(&req[..20], Kind::Request, 2),
            Err(Scan::NeedMore)
        ));
        let resp = b"HTTP/1.1 200 OK\r\n\r\n";
        assert!(matches!(
            strict_scan(resp, Kind::Response, 0),
            Err(Scan::HeadEnd)
        ));
    }
}
