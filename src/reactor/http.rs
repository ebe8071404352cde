//! The request path of a client session: head parsing, routing, pool acquire, error
//! answers, lingering close and client timeouts. `drive_client` runs a session forward
//! as far as the sockets' remembered readiness allows.

use super::Reactor;
use crate::backend::BState;
use crate::buf::BufPool;
use crate::exchange::{Buffering, Exchange, Expired, Resp, LOG_TARGET};
use crate::group::{SrvId, HTTP};
use crate::io::{append, fill, finish, flush, Io};
use crate::pool::{Acquire, Enqueue};
use crate::session::{Client, Phase, Step};
use crate::timer::Owner;
use crate::token::{BRef, CRef};
use log::{debug, warn};
use protocol::h1::{self, status, BodyDecoder, Method, RequestHead};
use protocol::Status;
use std::time::Duration;

/// How long a closing client may keep sending before it is cut off (lingering close:
/// lets it read an error response instead of receiving a reset).
const LINGER: Duration = Duration::from_secs(2);
/// Bytes discarded during a lingering close before giving up.
const LINGER_BYTES: usize = 256 * 1024;

impl Reactor {
    /// A client, a backend connection and the buffer pool, borrowed together (the
    /// split borrow every byte-moving step needs).
    pub(crate) fn pair(
        &mut self,
        i: usize,
        b: usize,
    ) -> (&mut Client, &mut crate::backend::Backend, &mut BufPool) {
        (&mut self.clients[i], &mut self.backends[b], &mut self.bufs)
    }

    /// True while the referenced client is alive.
    pub(crate) fn client_valid(&self, c: CRef) -> bool {
        c.alive(&self.clients)
    }

    /// Runs a client session forward until it has to wait.
    pub(crate) fn drive_client(&mut self, i: usize) {
        let outer = self.driving.replace(i);
        self.drive_steps(i);
        self.driving = outer;
    }

    /// Asks for client `i` to be driven before the next poll, unless it is the one
    /// being driven right now (its loop will see the change itself).
    pub(crate) fn wake(&mut self, c: CRef) {
        if self.driving != Some(c.index) {
            self.ready.push(c);
        }
    }

    fn drive_steps(&mut self, i: usize) {
        loop {
            #[cfg(feature = "sim")]
            crate::simnet::work(crate::simnet::Work::SessionStep, &|| {
                self.describe_client(i)
            });
            let step = match self.clients.get(i).map(|c| &c.phase) {
                None | Some(Phase::Closed) => return,
                Some(Phase::Proxy { .. }) => self.step_proxy(i),
                Some(Phase::Head { .. }) => self.step_head(i),
                Some(Phase::Exchange(_)) => self.step_exchange(i),
                Some(Phase::Tunnel(_)) => self.step_tunnel(i),
                Some(Phase::Closing { .. }) => self.step_closing(i),
                Some(Phase::Lingering { .. }) => self.step_lingering(i),
            };
            match step {
                Step::Again => {}
                Step::Wait => {
                    if self.clients.get(i).is_some_and(|c| c.sock.masked) {
                        self.sync_interest(i);
                    }
                    return;
                }
                Step::Close => {
                    self.close_client(i);
                    return;
                }
            }
        }
    }

    fn step_head(&mut self, i: usize) -> Step {
        let now = self.now;
        let c = &mut self.clients[i];
        if let Io::Error(_) = flush(&mut c.sock, &mut c.wbuf, &mut self.bufs) {
            return Step::Close;
        }
        let got = fill(&mut c.sock, &mut c.rbuf, &mut self.bufs);
        if let Io::Error(_) = got {
            return Step::Close;
        }
        // The handshake's end re-arms the deadline; the plain build has no such step.
        #[cfg(feature = "tls")]
        let c = {
            self.tls_client_step(i);
            &mut self.clients[i]
        };
        let Some(rbuf) = c.rbuf.as_ref().filter(|b| !b.is_empty()) else {
            if c.sock.eof || (self.draining && c.wbuf.is_none()) {
                // A clean close between requests: nothing to say.
                return if c.wbuf.is_some() {
                    Step::Wait
                } else {
                    Step::Close
                };
            }
            return Step::Wait;
        };
        match h1::parse_request(rbuf.bytes(), &self.limits) {
            Ok(Status::Complete(head)) => {
                self.route_request(i, head);
                Step::Again
            }
            Ok(Status::Partial) => {
                let full = rbuf.space() == 0;
                let capacity = rbuf.capacity();
                if c.sock.eof {
                    debug!("{}: closed in the middle of a request head", c.peer);
                    return Step::Close;
                }
                if full {
                    if capacity < self.limits.max_head_bytes {
                        if let Some(b) = c.rbuf.as_mut() {
                            b.grow(self.limits.max_head_bytes);
                        }
                        return Step::Again;
                    }
                    self.reject(i, status::HEADERS_TOO_LARGE, "request head too large");
                    return Step::Again;
                }
                if let Phase::Head {
                    started: started @ None,
                } = &mut c.phase
                {
                    *started = Some(now);
                    let at = now + self.cfg.frontend.request_header_timeout;
                    c.deadline
                        .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
                }
                Step::Wait
            }
            Err(e) => {
                self.reject(i, e.status(), e.as_str());
                Step::Again
            }
        }
    }

    /// Answers a request sluice refuses, logs why, and closes after the answer.
    pub(crate) fn reject(&mut self, i: usize, status: u16, why: &str) {
        self.scratch.clear();
        h1::write_error_response(status, why, true, &mut self.scratch);
        // Logged while the exchange (method, path, server) is still there.
        self.access_log_reject(i, status, self.scratch.len());
        let c = &mut self.clients[i];
        warn!("{}: {status} {why}", c.peer);
        append(&mut c.wbuf, &mut self.bufs, &self.scratch);
        if let Phase::Exchange(_) = c.phase {
            let token = c.token;
            if let Phase::Exchange(ex) = c.take_phase() {
                self.abandon_exchange(i, token, ex);
            }
        }
        let c = &mut self.clients[i];
        self.stats.requests += 1;
        c.set_phase(Phase::Closing { linger: true });
        let at = self.now + LINGER;
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
        // A reject may come from another socket's event (a backend's connect failed,
        // a queue timer fired): schedule the client so the answer is flushed now,
        // not stranded until the linger deadline closes the connection unanswered.
        let c = c.cref(i);
        self.wake(c);
    }

    fn route_request(&mut self, i: usize, head: RequestHead) {
        if self.clients[i].admin {
            self.serve_admin(i, head);
            return;
        }
        if head.upgrade_websocket {
            self.start_websocket(i, head);
            return;
        }
        if head.method == Method::Connect {
            self.reject(
                i,
                status::METHOD_NOT_ALLOWED,
                "CONNECT is not supported by this proxy",
            );
            return;
        }
        self.begin_exchange(i, head, HTTP, None);
        let limit = self.groups[HTTP].cfg.request_buffer_bytes;
        let c = &mut self.clients[i];
        if let Phase::Exchange(ex) = &mut c.phase {
            if ex.wants_buffer(limit) {
                // The body must be here (or fill the buffer) in time, as the head must.
                ex.buffering = true;
                let at = self.now + self.cfg.frontend.request_header_timeout;
                c.deadline
                    .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
                return;
            }
        }
        self.choose_server(i, "no server is available");
    }

    /// A request buffering its body before it takes a connection (see `exchange.rs`):
    /// reads more of it, and chooses a server once the exchange says so.
    pub(crate) fn step_buffering(&mut self, i: usize) -> Step {
        let limit = self.groups[HTTP].cfg.request_buffer_bytes;
        let c = &mut self.clients[i];
        if let Io::Error(_) = fill(&mut c.sock, &mut c.rbuf, &mut self.bufs) {
            return Step::Close;
        }
        let (Phase::Exchange(ex), Some(rbuf)) = (&mut c.phase, c.rbuf.as_ref()) else {
            self.pool_bug("buffering without a request head");
            return Step::Close;
        };
        let body = rbuf.bytes().get(ex.head.head_len..).unwrap_or_default();
        match ex.buffer_body(body, limit, rbuf.space() == 0) {
            Ok(Buffering::Dispatch) => {
                self.choose_server(i, "no server is available");
                Step::Again
            }
            Ok(Buffering::Wait) if c.sock.eof => {
                debug!("{}: closed in the middle of a request body", c.peer);
                Step::Close
            }
            Ok(Buffering::Wait) => Step::Wait,
            Err(e) => {
                self.reject(i, e.status(), e.as_str());
                Step::Again
            }
        }
    }

    /// Puts client `i` in a new exchange for `head` (with the client's key when it is a
    /// WebSocket upgrade), routed to `group`, no server chosen yet. The exchange is
    /// built where it lives: returning it by value would copy it into the phase.
    pub(crate) fn begin_exchange(
        &mut self,
        i: usize,
        head: RequestHead,
        group: usize,
        upgrade: Option<[u8; 24]>,
    ) {
        let req_body = BodyDecoder::new(head.body, self.cfg.frontend.max_body_bytes);
        let retries_left = self.groups[group].cfg.retries;
        let c = &mut self.clients[i];
        c.set_phase(Phase::Exchange(Exchange {
            backend: None,
            srv: SrvId { group, server: 0 },
            head,
            req_body,
            req_done: false,
            buffering: false,
            buffered: 0,
            resp: Resp::Await,
            retained: 0,
            resp_started: false,
            reused: false,
            retried: false,
            retries_left,
            tried: 0,
            counted: false,
            upgrade,
            deflate_offered: false,
            status: 0,
            close: !head.keep_alive,
            backend_keepalive: false,
            until_close: false,
            bytes_out: 0,
            bytes_in: head.head_len as u64,
            connect_us: 0,
            head_us: 0,
            started: self.now,
            log_target: [0; LOG_TARGET],
            log_target_len: 0,
        }));
        if self.access.is_on() {
            if let (Phase::Exchange(ex), Some(rbuf)) = (&mut c.phase, c.rbuf.as_ref()) {
                let t = head.target.get(rbuf.bytes());
                let n = t.len().min(LOG_TARGET);
                ex.log_target[..n].copy_from_slice(&t[..n]);
                ex.log_target_len = n as u8;
            }
        }
    }

    /// Picks a server for the client's exchange (skipping those already tried) and
    /// queues the request there, or answers 502/503 when there is none.
    pub(crate) fn choose_server(&mut self, i: usize, why: &str) {
        let now = self.now;
        let Phase::Exchange(ex) = &mut self.clients[i].phase else {
            return;
        };
        let tried = ex.tried;
        let first = tried == 0;
        let group = &mut self.groups[ex.srv.group];
        let Some(s) = group.pick(now, tried, &mut self.rng) else {
            if first {
                let g = if ex.srv.group == HTTP {
                    "http"
                } else {
                    "websocket"
                };
                let msg = format!("no healthy server in group [{g}]");
                self.reject(i, status::SERVICE_UNAVAILABLE, &msg);
            } else {
                let msg = format!("bad gateway: {why}");
                self.reject(i, status::BAD_GATEWAY, &msg);
            }
            return;
        };
        ex.srv.server = s;
        if s < 64 {
            ex.tried |= 1 << s;
        }
        let srv = ex.srv;
        ex.counted = true;
        let server = &mut self.groups[srv.group].servers[srv.server];
        server.active += 1;
        server.stats.requests += 1;
        // A PROXY header names one client: such connections are private (proxy.rs).
        let private = self.groups[srv.group].servers[srv.server]
            .cfg
            .send_proxy
            .is_some();
        if ex.upgrade.is_some() || private {
            self.connect_fresh(i, srv);
        } else {
            self.acquire(i, srv);
        }
    }

    /// Gets a connection for the client's exchange: idle, new, or a place in the queue,
    /// as the pool decides.
    fn acquire(&mut self, i: usize, srv: SrvId) {
        let server = &mut self.groups[srv.group].servers[srv.server];
        let lim = server.limits();
        let (open, full) = match server.pool.acquire(lim) {
            Acquire::Idle(b) => {
                self.dispatch(i, b);
                return;
            }
            Acquire::Queue { open, full } => (open, full),
        };
        let opened = open && self.open_pooled(srv, true);
        let c = &mut self.clients[i];
        let cref = c.cref(i);
        match self.groups[srv.group].servers[srv.server]
            .pool
            .enqueue(cref, opened, full)
        {
            Enqueue::Queued => {
                let at = self.now + self.groups[srv.group].cfg.queue_timeout;
                c.deadline
                    .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
            }
            Enqueue::Full => {
                let msg = format!("server queue is full ({} waiting)", lim.queue);
                self.reject(i, status::SERVICE_UNAVAILABLE, &msg);
            }
            Enqueue::Unreachable => self.reroute(i, "connection refused"),
        }
    }

    /// A server went down or was ejected: the requests waiting in its queue go to
    /// another server now (or get 503 when there is none) instead of waiting out
    /// `queue_timeout` for a server that will not take them (HAProxy's `option
    /// redispatch`). Nothing was sent for them yet, so this is not a retry.
    pub(crate) fn redispatch_queue(&mut self, srv: SrvId) {
        let queue = self.groups[srv.group].servers[srv.server].pool.take_queue();
        for c in queue {
            if !self.client_valid(c) {
                continue;
            }
            let Phase::Exchange(ex) = &mut self.clients[c.index].phase else {
                continue;
            };
            if ex.backend.is_some() {
                continue;
            }
            ex.uncount(&mut self.groups);
            ex.tried = 0;
            debug!(
                "{}: redispatched from a server that went down",
                self.clients[c.index].peer
            );
            self.choose_server(c.index, "server went down");
            self.wake(c);
        }
    }

    /// The exchange's server failed before any response byte: try another server
    /// (bounded by `retries`), or answer 502.
    pub(crate) fn reroute(&mut self, i: usize, why: &'static str) {
        let Phase::Exchange(ex) = &mut self.clients[i].phase else {
            return;
        };
        if !ex.reroute() {
            let msg = format!("bad gateway: {why}");
            self.reject(i, status::BAD_GATEWAY, &msg);
            return;
        }
        ex.uncount(&mut self.groups);
        self.choose_server(i, why);
    }

    /// Hands backend `b` (idle, connected) to client `i`'s waiting exchange and writes
    /// the rewritten request head to it.
    pub(crate) fn dispatch(&mut self, i: usize, b: usize) {
        let c = &mut self.clients[i];
        let cref = c.cref(i);
        let Phase::Exchange(ex) = &mut c.phase else {
            self.pool_bug("dispatch to a client without an exchange");
            self.make_idle(b);
            return;
        };
        let be = &mut self.backends[b];
        be.state = BState::Busy(cref);
        be.uses += 1;
        be.idle_since = None;
        be.deadline
            .set(None, Owner::Backend(be.token.0), &mut self.timers);
        let consume = ex.dispatched(
            BRef {
                index: b,
                token: be.token,
            },
            be.uses,
        );
        // Timings only the access log reads: two clock subtractions are ~2% of a request.
        if self.access.is_on() {
            ex.connect_us = ex.micros_at(self.now);
        }
        let Some(rbuf) = c.rbuf.as_mut() else {
            self.pool_bug("dispatch without a request head");
            return;
        };
        let server = &self.groups[ex.srv.group].servers[ex.srv.server];
        let fwd = h1::Forwarded {
            client_ip: c.peer.ip(),
            proto: if c.sock.is_tls() { b"https" } else { b"http" },
            default_host: server.cfg.addr_text.as_bytes(),
        };
        self.scratch.clear();
        let tunnel = ex.upgrade.is_some();
        h1::write_request_head(rbuf.bytes(), &ex.head, &fwd, tunnel, &mut self.scratch);
        append(&mut be.wbuf, &mut self.bufs, &self.scratch);
        rbuf.consume(consume);
        let at = self.now + self.groups[ex.srv.group].cfg.response_timeout;
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
        self.wake(cref);
    }

    fn step_closing(&mut self, i: usize) -> Step {
        let c = &mut self.clients[i];
        let Phase::Closing { linger } = c.phase else {
            return Step::Wait;
        };
        if let Io::Error(_) = flush(&mut c.sock, &mut c.wbuf, &mut self.bufs) {
            return Step::Close;
        }
        if c.wbuf.is_some() || !finish(&mut c.sock, &mut self.bufs) {
            return Step::Wait;
        }
        if !linger || c.sock.eof {
            return Step::Close;
        }
        let _ = c.sock.stream.shutdown(std::net::Shutdown::Write);
        c.set_phase(Phase::Lingering { discarded: 0 });
        let at = self.now + LINGER;
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
        Step::Again
    }

    fn step_lingering(&mut self, i: usize) -> Step {
        let c = &mut self.clients[i];
        let Phase::Lingering { discarded } = &mut c.phase else {
            return Step::Wait;
        };
        if let Some(r) = c.rbuf.as_mut() {
            *discarded += r.len();
            r.consume(r.len());
        }
        match fill(&mut c.sock, &mut c.rbuf, &mut self.bufs) {
            Io::Moved(0) if !c.sock.eof => Step::Wait,
            Io::Moved(_) if *discarded < LINGER_BYTES && !c.sock.eof => Step::Again,
            _ => Step::Close,
        }
    }

    /// A client's deadline expired; what it means depends on the phase.
    pub(crate) fn on_client_timeout(&mut self, i: usize) {
        let c = &self.clients[i];
        match &c.phase {
            Phase::Proxy { .. } => {
                let t = self.cfg.frontend.request_header_timeout;
                warn!("{}: no PROXY protocol header within {t:?}, closing", c.peer);
                self.close_client(i);
                return;
            }
            Phase::Head { started: Some(_) } => {
                self.reject(i, status::REQUEST_TIMEOUT, "request head timeout")
            }
            Phase::Head { started: None } => {
                debug!("{}: keep-alive idle timeout", c.peer);
                self.close_client(i);
                return;
            }
            Phase::Exchange(ex) => {
                let wbuf_empty = ex
                    .backend
                    .and_then(|b| b.get(&self.backends))
                    .is_some_and(|x| x.wbuf.is_none());
                match ex.expired(wbuf_empty) {
                    Expired::Queue => self.reject(
                        i,
                        status::SERVICE_UNAVAILABLE,
                        "timed out waiting for a free server connection",
                    ),
                    // A request body that stopped arriving is the client's fault: 408,
                    // and no passive failure, or a few stalled uploads would eject a
                    // healthy server for everyone (max_fails).
                    Expired::RequestBody => {
                        self.reject(i, status::REQUEST_TIMEOUT, "request body timeout")
                    }
                    Expired::Response => {
                        let srv = ex.srv;
                        self.passive_failure(srv, "response timeout");
                        self.close_exchange_backend(i);
                        self.reject(
                            i,
                            status::GATEWAY_TIMEOUT,
                            "the server did not answer in time",
                        );
                    }
                    Expired::Stalled => {
                        warn!("{}: response stalled, closing", c.peer);
                        self.close_client(i);
                        return;
                    }
                }
            }
            Phase::Tunnel(_) => {
                self.on_tunnel_timeout(i);
                return;
            }
            Phase::Closing { .. } | Phase::Lingering { .. } | Phase::Closed => {
                self.close_client(i);
                return;
            }
        }
        self.drive_client(i);
    }
}

#[cfg(feature = "sim")]
impl Reactor {
    /// Names client slot `i` and its phase (for a spin in its session loop).
    fn describe_client(&self, i: usize) -> String {
        let Some(c) = self.clients.get(i) else {
            return format!("client slot {i}, closed");
        };
        let phase = match &c.phase {
            Phase::Proxy { .. } => "reading a PROXY header",
            Phase::Head { .. } => "reading a request head",
            Phase::Exchange(_) => "in an exchange",
            Phase::Tunnel(t) if t.finishing() => "closing its WebSocket tunnel",
            Phase::Tunnel(_) => "in a WebSocket tunnel",
            Phase::Closing { .. } => "closing",
            Phase::Lingering { .. } => "lingering",
            Phase::Closed => "closed",
        };
        format!("client {} (slot {i}) {phase}", c.peer)
    }
}
