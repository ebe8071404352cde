//! One HTTP request/response exchange: its state, and the decisions about it that need
//! no socket. The reactor (`reactor/exchange.rs`) moves the bytes and carries the
//! decisions out.
//!
//! Request buffering (`[http] request_buffer_bytes`, HAProxy's `http-buffer-request`): a
//! request with a body first reads up to that many body bytes into the client's own
//! buffer (the one its head is in: nothing more is allocated) before a pooled backend
//! connection is taken, so a small body trickling in never pins one. Once the body is
//! complete, or the buffer is full, the request is dispatched and the rest streams as
//! before. The buffered bytes are fed to the body decoder as they arrive (so framing
//! errors and `max_body_bytes` are answered before a connection is taken) and forwarded
//! as they are.

use crate::group::SrvId;
use crate::token::BRef;
use protocol::h1::{BodyDecoder, BodyKind, BodyProgress, ParseError, RequestHead};
use std::time::Instant;

/// Bytes of the request target kept for the access log.
pub(crate) const LOG_TARGET: usize = 64;

/// Where the response of an exchange is.
#[derive(Clone, Copy, Debug)]
pub enum Resp {
    /// No final response head yet.
    Await,
    /// Streaming the body.
    Body(BodyDecoder),
    /// Complete.
    Done,
}

/// One request/response exchange.
pub struct Exchange {
    /// The backend connection, once one is assigned (None: waiting in the queue).
    pub backend: Option<BRef>,
    /// The server chosen.
    pub srv: SrvId,
    /// The parsed request head (byte ranges into the client's rbuf until forwarded).
    pub head: RequestHead,
    pub(crate) req_body: BodyDecoder,
    pub(crate) req_done: bool,
    /// Reading the body before a server is chosen (see the module docs).
    pub(crate) buffering: bool,
    /// Body bytes at the front of the client's rbuf (after the head until it is
    /// forwarded) already fed to `req_body` while buffering, not yet forwarded.
    pub(crate) buffered: u32,
    pub(crate) resp: Resp,
    /// Head bytes still at the front of rbuf, kept so a failed reused connection can be
    /// retried (idempotent requests without a body only).
    pub(crate) retained: usize,
    /// Any response byte received.
    pub(crate) resp_started: bool,
    pub(crate) reused: bool,
    pub(crate) retried: bool,
    pub(crate) retries_left: u32,
    pub(crate) tried: u64,
    /// `srv`'s `active` counts this exchange.
    pub(crate) counted: bool,
    /// A WebSocket upgrade: the client's key, checked against the backend's 101.
    pub upgrade: Option<[u8; 24]>,
    /// The upgrade offered permessage-deflate (a 101 accepting it otherwise is invalid).
    pub(crate) deflate_offered: bool,
    pub(crate) status: u16,
    pub(crate) close: bool,
    pub(crate) backend_keepalive: bool,
    /// The response body ends when the backend closes.
    pub(crate) until_close: bool,
    pub(crate) bytes_out: u64,
    /// Request bytes read from the client (head and body), for the access log.
    pub(crate) bytes_in: u64,
    /// Microseconds from `started` until a backend connection took the request.
    pub(crate) connect_us: u32,
    /// Microseconds from `started` until the final response head arrived.
    pub(crate) head_us: u32,
    pub(crate) started: Instant,
    pub(crate) log_target: [u8; LOG_TARGET],
    pub(crate) log_target_len: u8,
}

impl Exchange {
    /// Microseconds from the request head to `now` (saturating: about 71 minutes).
    pub(crate) fn micros_at(&self, now: Instant) -> u32 {
        let us = now.saturating_duration_since(self.started).as_micros();
        us.min(u32::MAX.into()) as u32
    }

    /// Stops counting this exchange in its server's `active` (once).
    pub(crate) fn uncount(&mut self, groups: &mut [crate::group::Group; 2]) {
        if self.counted {
            self.counted = false;
            let server = &mut groups[self.srv.group].servers[self.srv.server];
            server.active = server.active.saturating_sub(1);
        }
    }
}

/// What to do when the backend failed before any response byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Failure {
    /// A reused pooled connection the backend closed as we sent (the keep-alive race):
    /// not the server's fault; send the request again, once, on a fresh connection to
    /// the same server. The exchange is back in the queue state.
    RetryFresh,
    /// The server failed (passive failure): try another one, while `retries` last.
    Reroute,
    /// The request cannot be sent again (its bytes are gone): 502.
    BadGateway,
}

/// Whether a request takes a backend connection yet (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Buffering {
    /// Choose a server and take a connection now: the whole body is here, or the
    /// buffer is full (the rest streams).
    Dispatch,
    /// Keep reading the body.
    Wait,
}

/// What a client deadline means for an exchange.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expired {
    /// Still queued for a connection: 503.
    Queue,
    /// The request body stopped arriving (while buffered before dispatch, or streaming):
    /// 408, and not the server's fault.
    RequestBody,
    /// The server did not start answering: 504 and a passive failure.
    Response,
    /// The response started and then stalled: close the client.
    Stalled,
}

/// How the backend's stream ended, decided against where the response is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StreamEnd {
    /// Nothing to do (the response was complete).
    Complete,
    /// The body was close-delimited: that was its end; the exchange may finish.
    BodyEnded,
    /// No response byte yet: a failure before answering (see `failed`).
    BeforeResponse,
    /// The response was cut short: the client connection must end, so the truncated
    /// response is never taken for a whole one; a passive failure.
    Truncated,
}

/// Where the client connection goes after a finished exchange.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum After {
    /// Keep-alive: read the next request head.
    NextRequest,
    /// Close after flushing; `linger` when request body bytes may still be coming.
    Close {
        /// Drain the client's input before closing (it may still be sending a body).
        linger: bool,
    },
}

impl Exchange {
    /// Should this request buffer its body before taking a connection? `limit` is
    /// `request_buffer_bytes` (0 = off). Not without a body (the hot path: one check),
    /// and not with `Expect: 100-continue`, whose client waits for the backend's 100
    /// before sending the body.
    pub fn wants_buffer(&self, limit: usize) -> bool {
        limit > 0
            && !self.req_body.is_done()
            && !self.head.expect_continue
            && self.upgrade.is_none()
    }

    /// While buffering: `body` is everything after the head in the client's rbuf (the
    /// first `buffered` bytes were fed before), `full` says the rbuf has no room left.
    /// Feeds the new bytes to the decoder and decides: dispatch once the body is
    /// complete, `limit` bytes are here, or the buffer is full; else keep reading.
    /// A framing error or `max_body_bytes` is an `Err` before any connection is taken.
    pub fn buffer_body(
        &mut self,
        body: &[u8],
        limit: usize,
        full: bool,
    ) -> Result<Buffering, ParseError> {
        let fed = self.buffered as usize;
        if fed < body.len() && !self.req_body.is_done() {
            let p = self.req_body.feed(&body[fed..])?;
            self.buffered += p.consumed as u32;
        }
        if self.req_body.is_done() || body.len() >= limit || full {
            self.buffering = false;
            Ok(Buffering::Dispatch)
        } else {
            Ok(Buffering::Wait)
        }
    }

    /// The request body bytes to forward from `bytes` (the front of the client's rbuf,
    /// at most what the backend's buffer takes): those buffered before dispatch were
    /// fed to the decoder already and move as they are; the rest is fed now.
    pub fn next_body(&mut self, bytes: &[u8]) -> Result<BodyProgress, ParseError> {
        if self.buffered == 0 {
            return self.req_body.feed(bytes);
        }
        let n = (self.buffered as usize).min(bytes.len());
        self.buffered -= n as u32;
        Ok(BodyProgress {
            consumed: n,
            done: self.buffered == 0 && self.req_body.is_done(),
        })
    }

    /// A backend connection (used `uses` times, counting this one) was handed to this
    /// exchange. Returns the head bytes the caller may consume from the client's rbuf
    /// now: 0 when the head must stay there until the first response byte, so a
    /// failed reused connection can be retried (idempotent, body-less requests only, and
    /// upgrades, whose head the tunnel needs).
    pub fn dispatched(&mut self, backend: BRef, uses: u32) -> usize {
        self.reused = uses > 1;
        self.backend = Some(backend);
        let retryable = self.head.method.is_idempotent()
            && matches!(self.head.body, BodyKind::None | BodyKind::Length(0))
            && !self.retried;
        if retryable || self.upgrade.is_some() {
            self.retained = self.head.head_len;
            0
        } else {
            // A retry lands here with `retained` still set from the first attempt:
            // clear it, or the first response byte would consume head_len bytes more
            // (the next pipelined request) from rbuf.
            self.retained = 0;
            self.head.head_len
        }
    }

    /// The first response byte arrived: the request can no longer be retried. Returns
    /// the retained head bytes the caller must now consume from the client's rbuf.
    pub fn response_started(&mut self) -> usize {
        if self.resp_started {
            return 0;
        }
        self.resp_started = true;
        let retained = std::mem::take(&mut self.retained);
        if retained > 0 {
            // Only body-less requests are retained: this one is complete now.
            self.req_done = self.req_body.is_done();
        }
        retained
    }

    /// A final (non-1xx) response head: its status, body framing and keep-alive. A final
    /// response before the whole request body was forwarded (a 417 or 413 to `Expect:
    /// 100-continue`, RFC 9110 §10.1.1) ends the client connection after it: the rest
    /// of the body could not be told from a next request.
    pub fn final_head(&mut self, status: u16, body: BodyKind, keep_alive: bool, draining: bool) {
        let early = !self.req_body.is_done();
        self.close |= body == BodyKind::UntilClose || draining || early;
        self.status = status;
        self.backend_keepalive = keep_alive;
        self.until_close = body == BodyKind::UntilClose;
    }

    /// The request is sent and the response complete: the exchange can finish. (A
    /// response that ended the connection early needs no more of the request.)
    pub fn complete(&self) -> bool {
        let early_end = self.close && !self.req_body.is_done();
        (self.req_done || early_end) && matches!(self.resp, Resp::Done)
    }

    /// The backend's stream ended (EOF or a read error) with nothing left to relay.
    pub fn stream_ended(&mut self) -> StreamEnd {
        match self.resp {
            Resp::Done => StreamEnd::Complete,
            Resp::Body(_) if self.until_close => {
                self.resp = Resp::Done;
                self.backend_keepalive = false;
                StreamEnd::BodyEnded
            }
            Resp::Await if !self.resp_started => StreamEnd::BeforeResponse,
            _ => StreamEnd::Truncated,
        }
    }

    /// The backend failed before answering (its connection is already dropped). A
    /// stale reused connection is retried once on a fresh one (the request body
    /// decoder starts over); otherwise a request whose head is still held may go to
    /// another server, and any other gets 502.
    pub fn failed(&mut self, max_body: Option<u64>) -> Failure {
        self.backend = None;
        if self.reused && self.retained > 0 && !self.retried {
            self.retried = true;
            self.req_body = BodyDecoder::new(self.head.body, max_body);
            self.req_done = false;
            return Failure::RetryFresh;
        }
        if self.retained > 0 {
            Failure::Reroute
        } else {
            Failure::BadGateway
        }
    }

    /// Uses up one of the group's `retries` to try another server; false (502) when
    /// none is left. Call with the exchange uncounted from its old server.
    pub fn reroute(&mut self) -> bool {
        if self.retries_left == 0 {
            return false;
        }
        self.retries_left -= 1;
        self.backend = None;
        true
    }

    /// The client's deadline fired. `backend_wbuf_empty` says whether everything the
    /// client sent was already written to the backend: only then is a request body that
    /// stopped arriving the client's fault (a backend that stopped reading, or owes a
    /// `100 Continue`, stays the one to blame).
    pub fn expired(&self, backend_wbuf_empty: bool) -> Expired {
        if self.buffering {
            return Expired::RequestBody;
        }
        if self.backend.is_none() {
            return Expired::Queue;
        }
        if self.resp_started {
            return Expired::Stalled;
        }
        // The decoder, not `req_done`: a retained (retryable, body-less) request is
        // never fed to it, and its decoder is done from the start.
        if !self.req_body.is_done() && !self.head.expect_continue && backend_wbuf_empty {
            Expired::RequestBody
        } else {
            Expired::Response
        }
    }

    /// Where the client goes after this exchange finished. Lingers when request body
    /// bytes may still be coming: closing with unread input would reset the connection
    /// and could destroy the response.
    pub fn after(&self, draining: bool) -> After {
        if self.close || draining {
            After::Close {
                linger: !self.req_body.is_done(),
            }
        } else {
            After::NextRequest
        }
    }

    /// May the backend connection go back to its pool after this exchange? Only when
    /// the backend said keep-alive and the whole request was read (`clean`: the caller
    /// saw no stray byte, FIN or error on the connection).
    pub fn reusable(&self, clean: bool) -> bool {
        self.backend_keepalive && self.req_body.is_done() && clean
    }
}

#[cfg(test)]
mod tests;
