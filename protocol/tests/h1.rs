//! Table tests for `protocol::h1`: heads, rewriting, error responses (bodies: h1_body.rs).
//! Every valid input is also fed truncated at every byte and split at every byte.

use protocol::h1::{
    has_token, header_lines, parse_request, parse_response, reason_phrase, write_error_response,
    write_request_head, write_response_head, BodyKind, Forwarded, Limits, Method, ParseError,
    RequestHead, ResponseHead, TargetForm, Version, MAX_CHUNK_EXT_BYTES, MAX_TRAILER_BYTES,
};
use protocol::Status;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts this thread's allocations, to check the one-reserve contract of the writers.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to `System` unchanged; the count is a thread-local Cell
// with const init, which neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations (and reallocations) `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn req(buf: &[u8]) -> Result<Status<RequestHead>, ParseError> {
    parse_request(buf, &Limits::default())
}

/// Parses `buf` whole and at every truncation: a prefix is Partial or gives the
/// same verdict; for a valid head, every prefix shorter than the head is Partial.
#[track_caller]
fn req_all_prefixes(buf: &[u8], limits: &Limits) -> Result<RequestHead, ParseError> {
    let full = parse_request(buf, limits);
    for k in 0..buf.len() {
        let r = parse_request(&buf[..k], limits);
        if let Ok(Status::Complete(h)) = full {
            if k < h.head_len {
                assert_eq!(r, Ok(Status::Partial), "prefix {k}");
                continue;
            }
        }
        if r != Ok(Status::Partial) {
            assert_eq!(r, full, "prefix {k} of {:?}", String::from_utf8_lossy(buf));
        }
    }
    match full {
        Ok(Status::Complete(h)) => Ok(h),
        Ok(Status::Partial) => panic!("whole input is Partial"),
        Err(e) => Err(e),
    }
}

#[track_caller]
fn resp_all_prefixes(buf: &[u8], method: Method) -> Result<ResponseHead, ParseError> {
    let limits = Limits::default();
    let full = parse_response(buf, method, &limits);
    for k in 0..buf.len() {
        let r = parse_response(&buf[..k], method, &limits);
        if let Ok(Status::Complete(h)) = full {
            if k < h.head_len {
                assert_eq!(r, Ok(Status::Partial), "prefix {k}");
                continue;
            }
        }
        if r != Ok(Status::Partial) {
            assert_eq!(r, full, "prefix {k}");
        }
    }
    match full {
        Ok(Status::Complete(h)) => Ok(h),
        Ok(Status::Partial) => panic!("whole input is Partial"),
        Err(e) => Err(e),
    }
}

fn fields(head: &[u8]) -> Vec<(String, String)> {
    header_lines(head)
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- requests

/// `name: input => body, keep_alive;` — a valid request, checked at every prefix.
macro_rules! req_ok {
    ($($name:ident: $input:expr => $body:expr, ka $ka:expr;)*) => {$(
        #[test]
        fn $name() {
            let buf: &[u8] = $input;
            let h = req_all_prefixes(buf, &Limits::default()).expect("valid");
            assert_eq!(h.body, $body);
            assert_eq!(h.keep_alive, $ka);
            assert_eq!(header_lines(&buf[..h.head_len]).count(), h.header_count);
        }
    )*};
}

req_ok! {
    req_simple_get: b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" => BodyKind::None, ka true;
    req_post_length: b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" => BodyKind::Length(5), ka true;
    req_length_zero: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n" => BodyKind::Length(0), ka true;
    req_length_list_equal: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n" => BodyKind::Length(5), ka true;
    req_length_repeated_equal: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n" => BodyKind::Length(7), ka true;
    req_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" => BodyKind::Chunked, ka true;
    req_gzip_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n" => BodyKind::Chunked, ka true;
    req_te_two_fields: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" => BodyKind::Chunked, ka true;
    req_close: b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n" => BodyKind::None, ka false;
    req_http10: b"GET / HTTP/1.0\r\n\r\n" => BodyKind::None, ka false;
    req_http10_keep_alive: b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" => BodyKind::None, ka true;
    req_leading_crlf: b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n" => BodyKind::None, ka true;
    req_pipelined: b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n" => BodyKind::None, ka true;
    req_obs_text_value: b"GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\n\r\n" => BodyKind::None, ka true;
    req_empty_value: b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Ws:   \r\n\r\n" => BodyKind::None, ka true;
    req_tab_in_value: b"GET / HTTP/1.1\r\nHost: a\r\nX-T: a\tb\r\n\r\n" => BodyKind::None, ka true;
    req_browser: b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: a=b; c=d\r\nUpgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\n\r\n" => BodyKind::None, ka true;
}

#[test]
fn req_fields() {
    let buf = b"GET /chat?x HTTP/1.1\r\nHost:  example.com:8080 \r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let h = req_all_prefixes(buf, &Limits::default()).expect("valid");
    assert_eq!(h.method, Method::Get);
    assert_eq!(h.method_span.get(buf), b"GET");
    assert_eq!(h.target.get(buf), b"/chat?x");
    assert_eq!(h.target_form, TargetForm::Origin);
    assert_eq!(h.version, Version::Http11);
    assert_eq!(h.host.map(|s| s.get(buf)), Some(&b"example.com:8080"[..]));
    assert_eq!(h.upgrade.map(|s| s.get(buf)), Some(&b"websocket"[..]));
    assert!(h.upgrade_websocket);
    assert!(!h.expect_continue);
    assert_eq!(h.header_count, 5);
    assert_eq!(h.head_len, buf.len());
    assert_eq!(fields(buf)[0], ("Host".into(), "example.com:8080".into()));
}

#[test]
fn req_upgrade_needs_connection_token() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    let h = req_all_prefixes(buf, &Limits::default()).expect("valid");
    assert_eq!(h.upgrade, None);
    assert!(!h.upgrade_websocket);
}

#[test]
fn req_expect_continue() {
    let h = req_all_prefixes(
        b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
        &Limits::default(),
    );
    assert!(h.expect("valid").expect_continue);
    let h = req_all_prefixes(
        b"PUT /x HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
        &Limits::default(),
    );
    assert!(
        !h.expect("valid").expect_continue,
        "ignored in HTTP/1.0 (RFC 9110 10.1.1)"
    );
}

macro_rules! target_ok {
    ($($name:ident: $input:expr => $method:ident, $form:ident;)*) => {$(
        #[test]
        fn $name() {
            let h = req_all_prefixes($input, &Limits::default()).expect("valid");
            assert_eq!((h.method, h.target_form), (Method::$method, TargetForm::$form));
        }
    )*};
}

target_ok! {
    target_connect: b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n" => Connect, Authority;
    target_connect_v6: b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n" => Connect, Authority;
    target_asterisk: b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n" => Options, Asterisk;
    target_absolute: b"GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n" => Get, Absolute;
    target_other_method: b"PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n" => Other, Origin;
    target_delete: b"DELETE /r HTTP/1.1\r\nHost: a\r\n\r\n" => Delete, Origin;
}

/// `name: input => Variant;` — one rejection, checked at every prefix too.
macro_rules! req_err {
    ($($name:ident: $input:expr => $err:ident;)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(req_all_prefixes($input, &Limits::default()), Err(ParseError::$err));
        }
    )*};
}

req_err! {
    err_invalid_method: b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidMethod;
    err_empty_method: b" / HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidMethod;
    err_target_no_slash: b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_double_space: b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_asterisk_get: b"GET * HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_authority_get: b"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_connect_origin: b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_connect_absolute: b"CONNECT http://a:1/ HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_non_ascii: b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_ctl: b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_version_2: b"GET / HTTP/2.0\r\nHost: a\r\n\r\n" => InvalidVersion;
    err_version_12: b"GET / HTTP/1.2\r\nHost: a\r\n\r\n" => InvalidVersion;
    err_version_lower: b"GET / http/1.1\r\nHost: a\r\n\r\n" => InvalidVersion;
    err_version_trailing: b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n" => InvalidVersion;
    err_header_name: b"GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n" => InvalidHeaderName;
    err_header_empty_name: b"GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n" => InvalidHeaderName;
    err_header_no_colon: b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n" => InvalidHeaderName;
    err_header_space_in_name: b"GET / HTTP/1.1\r\nHost: a\r\nX Y: 1\r\n\r\n" => InvalidHeaderName;
    err_value_nul: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n" => InvalidHeaderValue;
    err_value_ctl: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n" => InvalidHeaderValue;
    err_value_del: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n" => InvalidHeaderValue;
    err_value_bare_cr: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n" => InvalidHeaderValue;
    err_bare_cr_line_end: b"GET / HTTP/1.1\rHost: a\r\n\r\n" => InvalidHeaderValue;
    err_bare_lf_request_line: b"GET / HTTP/1.1\nHost: a\r\n\r\n" => BareLf;
    err_bare_lf_field: b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n" => BareLf;
    err_bare_lf_end: b"GET / HTTP/1.1\r\nHost: a\r\n\n" => BareLf;
    err_bare_lf_all: b"GET / HTTP/1.1\nHost: a\n\n" => BareLf;
    err_bare_lf_leading: b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n" => BareLf;
    err_bare_lf_in_value: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n" => BareLf;
    err_space_before_colon: b"GET / HTTP/1.1\r\nHost : a\r\n\r\n" => WhitespaceBeforeColon;
    err_tab_before_colon: b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\n" => WhitespaceBeforeColon;
    err_obs_fold: b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n" => ObsFold;
    err_obs_fold_tab: b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n" => ObsFold;
    err_space_first_field: b"GET / HTTP/1.1\r\n Host: a\r\n\r\n" => ObsFold;
    err_cl_and_te: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" => ContentLengthWithTransferEncoding;
    err_te_and_cl: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" => ContentLengthWithTransferEncoding;
    err_cl_conflict: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n" => ConflictingContentLength;
    err_cl_conflict_list: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n" => ConflictingContentLength;
    err_cl_plus: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n" => InvalidContentLength;
    err_cl_minus: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n" => InvalidContentLength;
    err_cl_hex: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n" => InvalidContentLength;
    err_cl_empty: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n" => InvalidContentLength;
    err_cl_empty_item: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n" => InvalidContentLength;
    err_cl_space_inside: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n" => InvalidContentLength;
    err_cl_overflow: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n" => InvalidContentLength;
    err_te_unknown: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n" => UnsupportedTransferEncoding;
    err_te_identity: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n" => UnsupportedTransferEncoding;
    err_te_empty: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n" => UnsupportedTransferEncoding;
    err_te_not_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n" => ChunkedNotLast;
    err_te_chunked_then_gzip: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" => ChunkedNotLast;
    err_te_chunked_twice: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" => ChunkedNotLast;
    err_te_http10: b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" => TransferEncodingHttp10;
    err_missing_host: b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n" => MissingHost;
    err_multiple_host: b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" => MultipleHost;
}

#[test]
fn err_head_too_large() {
    let limits = Limits {
        max_head_bytes: 64,
        ..Limits::default()
    };
    let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    buf.resize(80, b'a');
    buf.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        req_all_prefixes(&buf, &limits),
        Err(ParseError::HeadTooLarge)
    );
    // Exactly at the limit is fine.
    let ok = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let limits = Limits {
        max_head_bytes: ok.len(),
        ..Limits::default()
    };
    assert!(req_all_prefixes(ok, &limits).is_ok());
}

#[test]
fn err_too_many_headers() {
    let limits = Limits {
        max_headers: 3,
        ..Limits::default()
    };
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        req_all_prefixes(buf, &limits),
        Err(ParseError::TooManyHeaders)
    );
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_eq!(
        req_all_prefixes(buf, &limits).map(|h| h.header_count),
        Ok(3)
    );
}

#[test]
fn err_body_too_large() {
    let limits = Limits {
        max_body_bytes: Some(10),
        ..Limits::default()
    };
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
    assert_eq!(
        req_all_prefixes(buf, &limits),
        Err(ParseError::BodyTooLarge)
    );
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
    assert!(req_all_prefixes(buf, &limits).is_ok());
}

#[test]
fn error_status_mapping() {
    use ParseError::*;
    let all = [
        (HeadTooLarge, 431),
        (TooManyHeaders, 431),
        (InvalidMethod, 400),
        (InvalidTarget, 400),
        (InvalidVersion, 400),
        (InvalidStatus, 400),
        (InvalidHeaderName, 400),
        (InvalidHeaderValue, 400),
        (BareLf, 400),
        (WhitespaceBeforeColon, 400),
        (ObsFold, 400),
        (ContentLengthWithTransferEncoding, 400),
        (ConflictingContentLength, 400),
        (InvalidContentLength, 400),
        (UnsupportedTransferEncoding, 501),
        (ChunkedNotLast, 400),
        (TransferEncodingHttp10, 400),
        (InvalidChunkSize, 400),
        (ChunkSizeTooLong, 400),
        (ChunkSizeOverflow, 400),
        (InvalidChunkTerminator, 400),
        (ChunkExtensionTooLong, 400),
        (InvalidTrailer, 400),
        (TrailerTooLarge, 400),
        (BodyTooLarge, 413),
        (MissingHost, 400),
        (MultipleHost, 400),
    ];
    let mut texts = Vec::new();
    for (e, status) in all {
        assert_eq!(e.status(), status, "{e:?}");
        assert_eq!(e.to_string(), e.as_str());
        assert!(!texts.contains(&e.as_str()), "{e:?} text not unique");
        texts.push(e.as_str());
    }
}

#[test]
fn token_lists() {
    assert!(has_token(b"keep-alive, Upgrade", b"upgrade"));
    assert!(has_token(b" close ", b"close"));
    assert!(has_token(b"a,,\tclose\t,", b"CLOSE"));
    assert!(!has_token(b"closed", b"close"));
    assert!(!has_token(b"", b"close"));
}

// ---------------------------------------------------------------- responses

macro_rules! resp_ok {
    ($($name:ident: $method:ident, $input:expr => $body:expr, ka $ka:expr;)*) => {$(
        #[test]
        fn $name() {
            let buf: &[u8] = $input;
            let h = resp_all_prefixes(buf, Method::$method).expect("valid");
            assert_eq!(h.body, $body);
            assert_eq!(h.keep_alive, $ka);
            assert_eq!(header_lines(&buf[..h.head_len]).count(), h.header_count);
        }
    )*};
}

resp_ok! {
    resp_length: Get, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi" => BodyKind::Length(2), ka true;
    resp_chunked: Get, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" => BodyKind::Chunked, ka true;
    resp_te_not_chunked: Get, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" => BodyKind::UntilClose, ka false;
    resp_chunked_not_last: Get, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" => BodyKind::UntilClose, ka false;
    resp_until_close: Get, b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n" => BodyKind::UntilClose, ka false;
    resp_head: Head, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" => BodyKind::None, ka true;
    resp_204: Get, b"HTTP/1.1 204 No Content\r\n\r\n" => BodyKind::None, ka true;
    resp_304: Get, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" => BodyKind::None, ka true;
    resp_100: Post, b"HTTP/1.1 100 Continue\r\n\r\n" => BodyKind::None, ka true;
    resp_connect_200: Connect, b"HTTP/1.1 200 Connection Established\r\n\r\n" => BodyKind::None, ka true;
    resp_connect_407: Connect, b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\n" => BodyKind::Length(0), ka true;
    resp_close: Get, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" => BodyKind::Length(0), ka false;
    resp_http10: Get, b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n" => BodyKind::Length(1), ka false;
    resp_no_reason: Get, b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n" => BodyKind::Length(0), ka true;
    resp_empty_reason: Get, b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n" => BodyKind::Length(0), ka true;
    resp_obs_text_reason: Get, b"HTTP/1.1 200 \xe2\x9c\x93 ok\r\nContent-Length: 0\r\n\r\n" => BodyKind::Length(0), ka true;
}

#[test]
fn resp_fields() {
    let buf = b"HTTP/1.0 200 Fine Thanks\r\nConnection: Keep-Alive\r\nKeep-Alive: max=100, timeout=5\r\nContent-Length: 3\r\n\r\nabc";
    let h = resp_all_prefixes(buf, Method::Get).expect("valid");
    assert_eq!(h.version, Version::Http10);
    assert_eq!(h.status, 200);
    assert_eq!(h.reason.get(buf), b"Fine Thanks");
    assert!(h.keep_alive);
    assert_eq!(h.keep_alive_timeout, Some(5));
    assert!(!h.upgrade);
    assert_eq!(h.head_len, buf.len() - 3);
    let buf =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let h = resp_all_prefixes(buf, Method::Get).expect("valid");
    assert!(h.upgrade);
    assert_eq!(h.body, BodyKind::None);
    let buf = b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n";
    let h = resp_all_prefixes(buf, Method::Get).expect("valid");
    assert!(h.reason.is_empty());
}

macro_rules! resp_err {
    ($($name:ident: $input:expr => $err:ident;)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(resp_all_prefixes($input, Method::Get), Err(ParseError::$err));
        }
    )*};
}

resp_err! {
    resp_err_cl_te: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" => ContentLengthWithTransferEncoding;
    resp_err_te_http10: b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" => TransferEncodingHttp10;
    resp_err_status_short: b"HTTP/1.1 20 OK\r\n\r\n" => InvalidStatus;
    resp_err_status_low: b"HTTP/1.1 099 OK\r\n\r\n" => InvalidStatus;
    resp_err_status_high: b"HTTP/1.1 600 OK\r\n\r\n" => InvalidStatus;
    resp_err_status_alpha: b"HTTP/1.1 2x0 OK\r\n\r\n" => InvalidStatus;
    resp_err_reason_ctl: b"HTTP/1.1 200 O\x01K\r\n\r\n" => InvalidStatus;
    resp_err_version: b"HTTP/2 200 OK\r\n\r\n" => InvalidVersion;
    resp_err_bare_lf: b"HTTP/1.1 200 OK\nContent-Length: 0\n\n" => BareLf;
    resp_err_obs_fold: b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n" => ObsFold;
    resp_err_ws_colon: b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n" => WhitespaceBeforeColon;
    resp_err_cl_conflict: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n" => ConflictingContentLength;
    resp_err_te_unknown: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: br\r\n\r\n" => UnsupportedTransferEncoding;
}

// ---------------------------------------------------------------- rewriting

const FWD: Forwarded<'static> = Forwarded {
    client_ip: b"192.0.2.7",
    proto: b"https",
    default_host: b"backend.local",
};

#[track_caller]
fn rewrite_req(buf: &[u8], tunnel: bool) -> (RequestHead, RequestHead, Vec<u8>) {
    let Ok(Status::Complete(h)) = req(buf) else {
        panic!("input must parse")
    };
    let mut out = Vec::new();
    write_request_head(buf, &h, &FWD, tunnel, &mut out);
    let Ok(Status::Complete(again)) = req(&out) else {
        panic!("rewrite must re-parse: {}", String::from_utf8_lossy(&out))
    };
    assert_eq!(again.head_len, out.len());
    (h, again, out)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|&(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn rewrite_request_drops_hop_by_hop() {
    let buf = b"POST /p?q=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\nproxy-connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nx-forwarded-for: 10.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: evil\r\nAccept: */*\r\nContent-Length: 3\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\nX-Mixed-Case:  keep  \r\n\r\nabc";
    let (h, again, out) = rewrite_req(buf, false);
    assert!(out.starts_with(b"POST /p?q=1 HTTP/1.1\r\n"));
    assert_eq!(
        fields(&out),
        pairs(&[
            ("Host", "shop.example"),
            ("Accept", "*/*"),
            ("Content-Length", "3"),
            ("X-Mixed-Case", "keep"),
            ("X-Forwarded-For", "10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "shop.example"),
        ])
    );
    assert!(
        out.windows(22).any(|w| w == b"X-Mixed-Case:  keep  \r"),
        "bytes kept verbatim"
    );
    assert_eq!(again.body, h.body);
    assert_eq!(again.upgrade, None);
}

#[test]
fn rewrite_request_http10_gets_host() {
    let buf = b"GET / HTTP/1.0\r\nUser-Agent: old\r\n\r\n";
    let (_, again, out) = rewrite_req(buf, false);
    // Stays 1.0 so the backend never chunks a response the client cannot read.
    assert!(out.starts_with(b"GET / HTTP/1.0\r\n"));
    assert!(
        again.keep_alive,
        "the pooled connection is asked to stay open"
    );
    assert_eq!(again.host.map(|s| s.get(&out)), Some(&b"backend.local"[..]));
    assert_eq!(
        fields(&out),
        pairs(&[
            ("User-Agent", "old"),
            ("Connection", "keep-alive"),
            ("Host", "backend.local"),
            ("X-Forwarded-For", "192.0.2.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "backend.local"),
        ])
    );
}

#[test]
fn rewrite_request_tunnel_keeps_upgrade() {
    let buf = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let (_, again, out) = rewrite_req(buf, true);
    assert!(again.upgrade_websocket);
    assert_eq!(
        fields(&out),
        pairs(&[
            ("Host", "a"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Connection", "Upgrade"),
            ("X-Forwarded-For", "192.0.2.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "a"),
        ])
    );
    let (_, again, _) = rewrite_req(buf, false);
    assert!(!again.upgrade_websocket);
}

#[test]
fn rewrite_request_never_drops_framing() {
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length, Host, Transfer-Encoding, X-A\r\nContent-Length: 4\r\nX-A: 1\r\n\r\n";
    let (_, again, out) = rewrite_req(buf, false);
    assert_eq!(again.body, BodyKind::Length(4));
    assert_eq!(
        fields(&out)[..2],
        pairs(&[("Host", "a"), ("Content-Length", "4")])[..]
    );
    assert!(!fields(&out).iter().any(|(n, _)| n == "X-A"));
}

#[test]
fn rewrite_request_many_connection_fields() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-1\r\nConnection: X-2\r\nConnection: X-3\r\nConnection: X-4\r\nConnection: X-5\r\nX-5: a\r\nX-1: b\r\nX-6: c\r\n\r\n";
    let (_, _, out) = rewrite_req(buf, false);
    let names: Vec<String> = fields(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "Host",
            "X-6",
            "X-Forwarded-For",
            "X-Forwarded-Proto",
            "X-Forwarded-Host"
        ]
    );
}

#[track_caller]
fn rewrite_resp(buf: &[u8], client: Version, close: bool, tunnel: bool) -> (ResponseHead, Vec<u8>) {
    let Ok(Status::Complete(h)) = parse_response(buf, Method::Get, &Limits::default()) else {
        panic!("input must parse")
    };
    let mut out = Vec::new();
    write_response_head(buf, &h, client, close, tunnel, &mut out);
    let Ok(Status::Complete(again)) = parse_response(&out, Method::Get, &Limits::default()) else {
        panic!("rewrite must re-parse: {}", String::from_utf8_lossy(&out))
    };
    assert_eq!(again.head_len, out.len());
    assert_eq!((again.status, again.body), (h.status, h.body));
    assert_eq!(again.reason.get(&out), h.reason.get(buf));
    (again, out)
}

#[test]
fn rewrite_response() {
    let buf = b"HTTP/1.0 200 Fine\r\nServer: s\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nContent-Length: 2\r\nX-Forwarded-For: kept\r\n\r\nok";
    let (again, out) = rewrite_resp(buf, Version::Http11, false, false);
    assert!(out.starts_with(b"HTTP/1.1 200 Fine\r\n"));
    assert!(again.keep_alive);
    assert_eq!(
        fields(&out),
        pairs(&[
            ("Server", "s"),
            ("Content-Length", "2"),
            ("X-Forwarded-For", "kept")
        ])
    );
    let (again, out) = rewrite_resp(buf, Version::Http11, true, false);
    assert!(!again.keep_alive);
    assert_eq!(
        fields(&out).last(),
        Some(&("Connection".to_owned(), "close".to_owned()))
    );
    let (_, out) = rewrite_resp(buf, Version::Http10, false, false);
    assert_eq!(
        fields(&out).last(),
        Some(&("Connection".to_owned(), "keep-alive".to_owned()))
    );
}

#[test]
fn rewrite_response_upgrade() {
    let buf = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let (again, out) = rewrite_resp(buf, Version::Http11, false, true);
    assert!(again.upgrade);
    assert_eq!(
        fields(&out),
        pairs(&[
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            ("Connection", "Upgrade"),
        ])
    );
    let (_, out) = rewrite_resp(buf, Version::Http11, false, false);
    assert_eq!(
        fields(&out),
        pairs(&[("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")])
    );
}

// ---------------------------------------------------------------- own responses

#[test]
fn error_responses_parse() {
    for status in [
        100, 400, 403, 404, 405, 408, 413, 414, 429, 431, 500, 501, 502, 503, 504, 505,
    ] {
        assert_ne!(reason_phrase(status), "Unknown", "{status}");
        for close in [false, true] {
            let mut out = Vec::new();
            write_error_response(status, "detail text", close, &mut out);
            let h = match parse_response(&out, Method::Get, &Limits::default()) {
                Ok(Status::Complete(h)) => h,
                other => panic!("{status}: {other:?}"),
            };
            assert_eq!(h.status, status);
            assert_eq!(h.reason.get(&out), reason_phrase(status).as_bytes());
            let body = &out[h.head_len..];
            if status == 100 {
                assert_eq!(h.body, BodyKind::None);
                continue;
            }
            assert_eq!(body, b"detail text\n");
            assert_eq!(h.body, BodyKind::Length(body.len() as u64));
            assert_eq!(h.keep_alive, !close);
            let retry = fields(&out[..h.head_len])
                .iter()
                .any(|(n, v)| n == "Retry-After" && v == "1");
            assert_eq!(retry, status == 503 || status == 429);
        }
    }
    assert_eq!(reason_phrase(999), "Unknown");
}

// ---- small public helpers, pinned exactly (gaps found by `scripts/mutants`) ----

#[test]
fn method_table() {
    use Method::*;
    let all: [(&[u8], Method, bool); 12] = [
        (b"GET", Get, true),
        (b"HEAD", Head, true),
        (b"POST", Post, false),
        (b"PUT", Put, true),
        (b"DELETE", Delete, true),
        (b"OPTIONS", Options, true),
        (b"PATCH", Patch, false),
        (b"TRACE", Trace, true),
        (b"CONNECT", Connect, false),
        (b"get", Other, false),
        (b"PROPFIND", Other, false),
        (b"", Other, false),
    ];
    for (bytes, method, idempotent) in all {
        assert_eq!(Method::from_bytes(bytes), method, "{bytes:?}");
        assert_eq!(method.is_idempotent(), idempotent, "{method:?}");
    }
}

#[test]
fn span_len_and_get() {
    use protocol::Span;
    let buf = b"0123456789";
    let s = Span::new(3, 7);
    assert_eq!(
        (s.len(), s.is_empty(), s.get(buf)),
        (4, false, &b"3456"[..])
    );
    let s = Span::new(5, 5);
    assert_eq!((s.len(), s.is_empty(), s.get(buf)), (0, true, &b""[..]));
    assert_eq!(Span::new(8, 20).get(buf), b"", "out of range is empty");
    assert_eq!(Span::new(0, 10).len(), 10);
}

#[test]
fn default_limits_are_the_documented_sizes() {
    use protocol::h1::{MAX_CHUNK_SIZE_DIGITS, MAX_HEADERS, MAX_HEAD_BYTES};
    assert_eq!(MAX_HEAD_BYTES, 16_384);
    assert_eq!(MAX_TRAILER_BYTES, 8_192);
    assert_eq!(
        (MAX_HEADERS, MAX_CHUNK_SIZE_DIGITS, MAX_CHUNK_EXT_BYTES),
        (100, 16, 4096)
    );
    let l = Limits::default();
    assert_eq!(
        (l.max_head_bytes, l.max_headers, l.max_body_bytes),
        (16_384, 100, None)
    );
}

#[test]
fn header_lines_stays_done() {
    let head = b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n";
    let mut it = header_lines(head);
    assert_eq!(it.next(), Some((&b"Host"[..], &b"a"[..])));
    assert_eq!(it.next(), Some((&b"X"[..], &b"b"[..])));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None, "an exhausted iterator stays exhausted");
    assert_eq!(it.next(), None);
}

req_ok! {
    req_close_in_list: b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-trace, close\r\nX-Trace: 1\r\n\r\n" => BodyKind::None, ka false;
    req_http10_keep_alive_in_list: b"GET / HTTP/1.0\r\nConnection: x-trace, Keep-Alive\r\nX-Trace: 1\r\n\r\n" => BodyKind::None, ka true;
}

req_err! {
    err_target_authority_empty_host: b"CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_authority_named_port: b"CONNECT a:https HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_scheme_starts_with_digit: b"GET 1ttp://a/ HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_scheme_bad_char: b"GET h_p://a/ HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
    err_target_absolute_empty_host: b"GET http:///x/y/z/w HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidTarget;
}

target_ok! {
    target_absolute_short: b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n" => Get, Absolute;
    target_absolute_scheme_chars: b"GET a+b-c.d://h HTTP/1.1\r\nHost: h\r\n\r\n" => Get, Absolute;
}

resp_err! {
    // The strict walk (run when httparse rejects) reports the first violation, so a
    // bad status code wins over a bad field name after it.
    resp_err_status_high_then_bad_name: b"HTTP/1.1 600 OK\r\nBad Name: x\r\n\r\n" => InvalidStatus;
    resp_err_status_low_then_bad_name: b"HTTP/1.1 099 OK\r\nBad Name: x\r\n\r\n" => InvalidStatus;
}

#[test]
fn too_many_headers_wins_over_a_later_violation() {
    let limits = Limits {
        max_headers: 2,
        ..Limits::default()
    };
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n c\r\n\r\n";
    assert_eq!(
        req_all_prefixes(buf, &limits),
        Err(ParseError::TooManyHeaders)
    );
}

#[test]
fn rewrite_response_writes_every_status_digit() {
    for status in [100, 204, 301, 418, 429, 503, 599] {
        let buf = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        let (again, out) = rewrite_resp(buf.as_bytes(), Version::Http11, false, false);
        assert_eq!(again.status, status);
        assert!(out.starts_with(format!("HTTP/1.1 {status} X\r\n").as_bytes()));
    }
}

#[test]
fn reason_phrases() {
    let table = [
        (100, "Continue"),
        (101, "Switching Protocols"),
        (200, "OK"),
        (204, "No Content"),
        (301, "Moved Permanently"),
        (302, "Found"),
        (304, "Not Modified"),
        (400, "Bad Request"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (408, "Request Timeout"),
        (413, "Content Too Large"),
        (414, "URI Too Long"),
        (417, "Expectation Failed"),
        (429, "Too Many Requests"),
        (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"),
        (501, "Not Implemented"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
        (505, "HTTP Version Not Supported"),
        (299, "Unknown"),
        (0, "Unknown"),
    ];
    for (status, phrase) in table {
        assert_eq!(reason_phrase(status), phrase, "{status}");
    }
}

/// The `write_*` functions reserve once for what they write: the result fits the
/// reservation (no regrowth) and the reservation is not far larger than the result.
#[test]
fn writers_reserve_about_what_they_write() {
    #[track_caller]
    fn check(out: &[u8], capacity: usize) {
        assert!(capacity >= out.len());
        assert!(
            capacity <= out.len() + 160,
            "{capacity} for {} bytes",
            out.len()
        );
    }
    let buf = b"GET /some/path?q=1 HTTP/1.0\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: x-hop\r\nX-Hop: 1\r\nUser-Agent: test\r\n\r\n";
    let (_, _, out) = rewrite_req(buf, false);
    check(&out, out.capacity());
    let buf = b"HTTP/1.1 404 Not Found\r\nServer: s\r\nContent-Length: 0\r\n\r\n";
    let (_, out) = rewrite_resp(buf, Version::Http10, true, false);
    check(&out, out.capacity());
    let mut out = Vec::new();
    write_error_response(
        503,
        "no backend is up for this request right now",
        true,
        &mut out,
    );
    check(&out, out.capacity());
}

/// "`write_*` only push into the caller's `Vec` after one `reserve`": writing into an
/// empty `Vec` allocates exactly once, also when every variable part is long.
#[test]
fn writers_allocate_once() {
    let fwd = Forwarded {
        client_ip: b"2001:db8:85a3:8d3:1319:8a2e:370:7348",
        proto: b"https-with-a-long-name",
        default_host: b"a-rather-long-default-host-name.example.internal",
    };
    let requests: [&[u8]; 3] = [
        b"GET /a HTTP/1.0\r\nAccept: */*\r\n\r\n",
        b"POST /some/longer/path?q=1 HTTP/1.1\r\nHost: h.example\r\nContent-Length: 0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n",
    ];
    for buf in requests {
        let Ok(Status::Complete(h)) = req(buf) else {
            panic!("input must parse")
        };
        for tunnel in [false, true] {
            let mut out = Vec::new();
            let n = allocations(|| write_request_head(buf, &h, &fwd, tunnel, &mut out));
            assert_eq!(n, 1, "{}", String::from_utf8_lossy(&out));
            let spare = out.capacity() - out.len();
            assert!(spare <= 200, "{spare} spare bytes reserved");
        }
    }
    let resp = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n";
    let Ok(Status::Complete(h)) = parse_response(resp, Method::Get, &Limits::default()) else {
        panic!("input must parse")
    };
    let mut out = Vec::new();
    assert_eq!(
        allocations(|| write_response_head(resp, &h, Version::Http10, true, false, &mut out)),
        1
    );
    for status in [100, 400, 413, 431, 502, 503, 504, 299] {
        for detail in [
            "",
            "x",
            "no backend is up for this request right now, please retry",
        ] {
            let mut out = Vec::new();
            let n = allocations(|| write_error_response(status, detail, true, &mut out));
            assert_eq!(n, 1, "{}", String::from_utf8_lossy(&out));
        }
    }
}
