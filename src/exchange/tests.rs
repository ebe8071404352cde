//! The exchange's decisions with scripted heads, no sockets.

use super::*;
use protocol::h1::{self, Limits, Method};
use protocol::Status;

fn head(raw: &[u8]) -> RequestHead {
    let limits = Limits {
        max_head_bytes: 8192,
        max_headers: h1::MAX_HEADERS,
        max_body_bytes: None,
    };
    match h1::parse_request(raw, &limits) {
        Ok(Status::Complete(h)) => h,
        _ => panic!("test head must parse"),
    }
}

fn exchange(raw: &[u8]) -> Exchange {
    let head = head(raw);
    Exchange {
        backend: None,
        srv: SrvId {
            group: 0,
            server: 0,
        },
        head,
        req_body: BodyDecoder::new(head.body, None),
        req_done: false,
        buffering: false,
        buffered: 0,
        resp: Resp::Await,
        retained: 0,
        resp_started: false,
        reused: false,
        retried: false,
        retries_left: 1,
        tried: 0,
        counted: false,
        upgrade: None,
        deflate_offered: false,
        status: 0,
        close: !head.keep_alive,
        backend_keepalive: false,
        until_close: false,
        bytes_out: 0,
        bytes_in: 0,
        connect_us: 0,
        head_us: 0,
        started: Instant::now(),
        log_target: [0; LOG_TARGET],
        log_target_len: 0,
    }
}

fn conn(i: usize) -> BRef {
    BRef {
        index: i,
        token: mio::Token(i),
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
const POST: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";

#[test]
fn a_body_less_idempotent_request_keeps_its_head_until_the_answer() {
    let mut ex = exchange(GET);
    assert_eq!(ex.head.method, Method::Get);
    assert_eq!(ex.dispatched(conn(1), 2), 0, "kept in rbuf");
    assert!(ex.reused);
    assert_eq!(
        ex.response_started(),
        GET.len(),
        "consumed at the first byte"
    );
    assert_eq!(ex.response_started(), 0, "once");
    assert!(ex.req_done);
}

#[test]
fn a_request_with_a_body_gives_its_head_up_at_once() {
    let mut ex = exchange(POST);
    assert_eq!(ex.dispatched(conn(1), 1), POST.len());
    assert!(!ex.reused);
    assert_eq!(ex.response_started(), 0);
}

#[test]
fn a_stale_reused_connection_is_retried_once_on_a_fresh_one() {
    let mut ex = exchange(GET);
    ex.dispatched(conn(1), 5);
    assert_eq!(ex.failed(None), Failure::RetryFresh);
    assert!(ex.backend.is_none(), "back to the queue state");
    // The retry is not retryable again: its head is consumed when dispatched, and a
    // second failure is the server's.
    assert_eq!(ex.dispatched(conn(2), 1), GET.len());
    assert_eq!(ex.failed(None), Failure::BadGateway);
}

#[test]
fn a_fresh_connection_that_fails_reroutes_while_retries_last() {
    let mut ex = exchange(GET);
    ex.dispatched(conn(1), 1);
    assert_eq!(
        ex.failed(None),
        Failure::Reroute,
        "not reused: the server failed"
    );
    assert!(ex.reroute());
    ex.dispatched(conn(2), 1);
    assert_eq!(ex.failed(None), Failure::Reroute);
    assert!(!ex.reroute(), "retries = 1 is used up: 502");
}

#[test]
fn a_request_whose_bytes_are_gone_is_never_sent_twice() {
    let mut ex = exchange(POST);
    ex.dispatched(conn(1), 9);
    assert_eq!(ex.failed(None), Failure::BadGateway);
}

#[test]
fn what_a_deadline_means() {
    let mut ex = exchange(POST);
    assert_eq!(ex.expired(true), Expired::Queue);
    ex.dispatched(conn(1), 1);
    assert_eq!(
        ex.expired(true),
        Expired::RequestBody,
        "body stopped arriving"
    );
    assert_eq!(
        ex.expired(false),
        Expired::Response,
        "the backend stopped reading"
    );
    let mut get = exchange(GET);
    get.dispatched(conn(1), 1);
    assert_eq!(get.expired(true), Expired::Response, "504");
    get.response_started();
    assert_eq!(get.expired(true), Expired::Stalled);
    let mut cont =
        exchange(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n");
    cont.dispatched(conn(1), 1);
    assert_eq!(cont.expired(true), Expired::Response, "owes a 100 Continue");
}

#[test]
fn how_a_backend_stream_ends() {
    let mut ex = exchange(GET);
    ex.dispatched(conn(1), 1);
    assert_eq!(ex.stream_ended(), StreamEnd::BeforeResponse);
    ex.response_started();
    assert_eq!(ex.stream_ended(), StreamEnd::Truncated, "a partial head");
    ex.final_head(200, BodyKind::UntilClose, true, false);
    ex.resp = Resp::Body(BodyDecoder::new(BodyKind::UntilClose, None));
    assert_eq!(ex.stream_ended(), StreamEnd::BodyEnded);
    assert!(!ex.backend_keepalive);
    assert!(ex.complete());
    assert_eq!(ex.stream_ended(), StreamEnd::Complete);
    let mut cl = exchange(GET);
    cl.response_started();
    cl.final_head(200, BodyKind::Length(10), true, false);
    cl.resp = Resp::Body(BodyDecoder::new(BodyKind::Length(10), None));
    assert_eq!(cl.stream_ended(), StreamEnd::Truncated);
}

#[test]
fn keep_alive_or_close_after_the_exchange() {
    let mut ex = exchange(GET);
    ex.response_started();
    ex.final_head(200, BodyKind::Length(0), true, false);
    assert_eq!(ex.after(false), After::NextRequest);
    assert_eq!(ex.after(true), After::Close { linger: false }, "draining");
    assert!(ex.reusable(true));
    assert!(!ex.reusable(false), "a stray byte or FIN");
    let mut ex = exchange(GET);
    ex.final_head(200, BodyKind::Length(0), false, false);
    assert!(!ex.reusable(true), "the backend said close");
    let http10 = exchange(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(http10.after(false), After::Close { linger: false });
}

#[test]
fn an_early_final_response_ends_the_connection_and_lingers() {
    let mut ex = exchange(POST);
    ex.dispatched(conn(1), 1);
    ex.response_started();
    ex.final_head(413, BodyKind::Length(0), true, false);
    ex.resp = Resp::Done;
    assert!(ex.complete(), "no more of the request is needed");
    assert_eq!(ex.after(false), After::Close { linger: true });
    assert!(!ex.reusable(true), "the body was never read whole");
}

#[test]
fn a_close_delimited_body_closes_the_client() {
    let mut ex = exchange(GET);
    ex.final_head(200, BodyKind::UntilClose, false, false);
    assert!(ex.close);
    assert!(ex.until_close);
}

/// `exchange` with a size limit on the body.
fn limited(raw: &[u8], max: u64) -> Exchange {
    let mut ex = exchange(raw);
    ex.req_body = BodyDecoder::new(ex.head.body, Some(max));
    ex
}

const POST10: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
const CHUNKED: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

#[test]
fn only_requests_with_a_body_buffer_and_never_with_expect_continue_or_when_off() {
    assert!(!exchange(GET).wants_buffer(16384), "no body: the hot path");
    assert!(exchange(POST10).wants_buffer(16384));
    assert!(exchange(CHUNKED).wants_buffer(16384));
    assert!(!exchange(POST10).wants_buffer(0), "off");
    let expect = b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    assert!(
        !exchange(expect).wants_buffer(16384),
        "the client waits for a 100 before sending the body"
    );
    let mut up = exchange(POST10);
    up.upgrade = Some([0; 24]);
    assert!(!up.wants_buffer(16384));
}

#[test]
fn a_small_body_is_dispatched_once_complete_and_then_forwarded_as_buffered() {
    let mut ex = exchange(POST10);
    ex.buffering = true;
    assert_eq!(ex.buffer_body(b"", 16384, false), Ok(Buffering::Wait));
    assert_eq!(ex.buffer_body(b"abc", 16384, false), Ok(Buffering::Wait));
    assert_eq!(ex.buffered, 3);
    // Bytes arrive in pieces; the ones fed before are not fed again.
    assert_eq!(
        ex.buffer_body(b"abcdefg", 16384, false),
        Ok(Buffering::Wait)
    );
    assert_eq!(
        ex.buffer_body(b"abcdefghij", 16384, false),
        Ok(Buffering::Dispatch)
    );
    assert!(!ex.buffering);
    assert_eq!(ex.buffered, 10);
    // Forwarding: the buffered bytes move without being fed twice, in as many pieces
    // as the backend's buffer takes; a pipelined request after them is left alone.
    let p = ex.next_body(b"abcd").unwrap();
    assert_eq!((p.consumed, p.done), (4, false));
    let p = ex.next_body(b"efghijGET / HTTP/1.1\r\n").unwrap();
    assert_eq!((p.consumed, p.done), (6, true));
    assert_eq!(ex.buffered, 0);
}

#[test]
fn a_large_body_is_dispatched_at_the_limit_or_when_the_buffer_is_full_and_streams() {
    let big = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n";
    let mut ex = exchange(big);
    let part = [b'x'; 64];
    assert_eq!(ex.buffer_body(&part[..32], 64, false), Ok(Buffering::Wait));
    assert_eq!(ex.buffer_body(&part, 64, false), Ok(Buffering::Dispatch));
    let mut ex = exchange(big);
    assert_eq!(
        ex.buffer_body(&part, 1 << 20, true),
        Ok(Buffering::Dispatch)
    );
    // The buffered part moves as it is, then the decoder takes over.
    assert_eq!(ex.next_body(&part).unwrap().consumed, 64);
    let p = ex.next_body(&part).unwrap();
    assert_eq!((p.consumed, p.done), (64, false));
    assert_eq!(ex.req_body.payload_bytes(), 128);
}

#[test]
fn a_chunked_body_split_inside_a_chunk_size_line_is_fed_again_from_there() {
    let mut ex = exchange(CHUNKED);
    assert_eq!(
        ex.buffer_body(b"5\r\nhel", 16384, false),
        Ok(Buffering::Wait)
    );
    assert_eq!(
        ex.buffer_body(b"5\r\nhello\r\n", 16384, false),
        Ok(Buffering::Wait)
    );
    let all = b"5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(
        ex.buffer_body(&all[..14], 16384, false),
        Ok(Buffering::Wait)
    );
    assert_eq!(ex.buffer_body(all, 16384, false), Ok(Buffering::Dispatch));
    assert_eq!(ex.buffered as usize, all.len());
}

#[test]
fn a_bad_or_too_large_body_is_refused_before_a_connection_is_taken() {
    let mut ex = limited(POST10, 4);
    assert_eq!(
        ex.buffer_body(b"abcdef", 16384, false),
        Err(ParseError::BodyTooLarge)
    );
    let mut ex = exchange(CHUNKED);
    assert!(ex.buffer_body(b"zz\r\n", 16384, false).is_err());
}

#[test]
fn a_body_that_stops_while_buffered_is_the_clients_fault() {
    let mut ex = exchange(POST10);
    ex.buffering = true;
    assert_eq!(ex.buffer_body(b"abc", 16384, false), Ok(Buffering::Wait));
    assert_eq!(ex.expired(true), Expired::RequestBody, "408, not a 503");
    assert_eq!(
        ex.buffer_body(b"abcdefghij", 16384, false),
        Ok(Buffering::Dispatch)
    );
    assert_eq!(
        ex.expired(true),
        Expired::Queue,
        "dispatched: waiting for a connection"
    );
}
