//! One HTTP request/response exchange: its state, and the decisions about it that need
//! no socket. The reactor (`reactor/exchange.rs`) moves the bytes and carries the
//! decisions out.

use crate::group::SrvId;
use crate::token::BRef;
use protocol::h1::{BodyDecoder, RequestHead};
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
    pub(crate) started: Instant,
    pub(crate) log_target: [u8; LOG_TARGET],
    pub(crate) log_target_len: u8,
}

impl Exchange {
    /// Stops counting this exchange in its server's `active` (once).
    pub(crate) fn uncount(&mut self, groups: &mut [crate::group::Group; 2]) {
        if self.counted {
            self.counted = false;
            let server = &mut groups[self.srv.group].servers[self.srv.server];
            server.active = server.active.saturating_sub(1);
        }
    }
}
