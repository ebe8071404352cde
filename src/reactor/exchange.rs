//! HTTP exchanges in flight: request bodies client -> backend, response heads and bodies
//! backend -> client, failures (retry on a fresh connection, reroute, 502/504), and the
//! end of an exchange (the backend goes back to its pool, or is closed; access log).
//!
//! Bytes are copied at most once per hop, never re-encoded: a `BodyDecoder` per direction
//! says where the message ends and the bytes move as they came. Every function here is a
//! step of `http::drive_client`; when one changes the client's phase it says so, and the
//! caller re-reads the phase before touching the exchange again.

use super::Reactor;
use crate::buf::Buf;
use crate::exchange::{After, Exchange, Failure, Resp, StreamEnd};
use crate::group::SrvId;
use crate::io::{append, fill, flush, relay, space, splice_step, Io, Spliced, SPLICE_MIN};
use crate::session::{Phase, Step};
use crate::timer::Owner;
use crate::token::{BRef, CRef};
use log::{debug, warn};
use mio::Token;
use protocol::h1::{self, status, BodyDecoder, Method, Version};
use protocol::Status;
use std::time::Duration;

impl Reactor {
    pub(crate) fn step_exchange(&mut self, i: usize) -> Step {
        let Phase::Exchange(ex) = &self.clients[i].phase else {
            return Step::Wait;
        };
        let Some(bref) = ex.backend else {
            if ex.buffering {
                return self.step_buffering(i);
            }
            return Step::Wait;
        };
        if !bref.alive(&self.backends) {
            return Step::Close;
        }
        let mut progress = self.pump_request(i, bref.index);
        // A failure in pump_request (bad request body, client gone, backend write
        // error) may have closed the backend, re-queued the exchange or let a new
        // connection take the slot: `bref` must not be touched again then.
        if !self.exchange_uses(i, bref) {
            return Step::Again;
        }
        match self.pump_response(i, bref.index) {
            Some(true) => progress = true,
            Some(false) => {}
            None => return Step::Again, // the exchange ended or failed; phase changed
        }
        let c = &mut self.clients[i];
        match flush(&mut c.sock, &mut c.wbuf, &mut self.bufs) {
            Io::Error(_) => return Step::Close,
            // Room made in the client's wbuf is progress: the response bytes waiting
            // in the backend's rbuf can move now, and no further event would come
            // (the client socket stays writable, the backend's readiness is spent).
            Io::Moved(n) => progress |= n > 0,
            Io::Eof => {}
        }
        let Phase::Exchange(ex) = &self.clients[i].phase else {
            return Step::Again;
        };
        if ex.complete() {
            self.finish_exchange(i);
            return Step::Again;
        }
        if !progress {
            self.sync_pair(i, bref.index);
            return Step::Wait;
        }
        // response_timeout bounds silence, not the whole exchange: a long upload or
        // download that keeps moving must not get a 504 or be cut when it expires.
        // (Pushing a deadline later costs no timer-heap entry.)
        let at = self.now + self.groups[ex.srv.group].cfg.response_timeout;
        let c = &mut self.clients[i];
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
        Step::Again
    }

    /// Moves request body bytes client -> backend and flushes the backend. Returns
    /// whether anything moved. Failures change the phase (and are seen by the caller).
    pub(crate) fn pump_request(&mut self, i: usize, b: usize) -> bool {
        let (c, be, bufs) = self.pair(i, b);
        let Phase::Exchange(ex) = &mut c.phase else {
            return false;
        };
        let mut progress = false;
        if !ex.req_done && ex.retained == 0 {
            // Body bytes that need no look: client -> backend inside the kernel.
            let opaque = ex.req_body.opaque();
            if opaque >= SPLICE_MIN && ex.buffered == 0 && c.rbuf.is_none() {
                if let Some(s) = splice_step(&mut c.sock, &mut be.sock, &mut be.wbuf, opaque, bufs)
                {
                    return self.spliced_request(i, s);
                }
            }
            if let Io::Error(_) = fill(&mut c.sock, &mut c.rbuf, bufs) {
                return self.client_gone(i);
            }
            let avail = c.rbuf.as_ref().map_or(0, Buf::len).min(space(&be.wbuf));
            let bytes = c.rbuf.as_ref().map_or(&[][..], |r| &r.bytes()[..avail]);
            match ex.next_body(bytes) {
                Ok(p) => {
                    if p.consumed > 0 {
                        ex.bytes_in += p.consumed as u64;
                        relay(&mut c.rbuf, &mut be.wbuf, p.consumed, bufs);
                        progress = true;
                    }
                    if p.done {
                        ex.req_done = true;
                        progress = true;
                    } else if c.sock.eof && c.rbuf.is_none() {
                        debug!("{}: closed in the middle of a request body", c.peer);
                        return self.client_gone(i);
                    }
                }
                Err(e) => {
                    let started = ex.resp_started;
                    self.close_exchange_backend(i);
                    if started {
                        return self.client_gone(i);
                    }
                    self.reject(i, e.status(), e.as_str());
                    return true;
                }
            }
        }
        let before = be.wbuf.as_ref().map_or(0, Buf::len);
        match flush(&mut be.sock, &mut be.wbuf, bufs) {
            Io::Error(_) => {
                self.backend_failed(i, "write to the backend failed");
                return true;
            }
            _ => progress |= before != be.wbuf.as_ref().map_or(0, Buf::len),
        }
        progress
    }

    /// What a splice step of the request body did: the decoder skips the bytes it moved.
    /// Returns whether anything moved; failures change the phase, as in `pump_request`.
    fn spliced_request(&mut self, i: usize, s: Spliced) -> bool {
        let c = &mut self.clients[i];
        let Phase::Exchange(ex) = &mut c.phase else {
            return false;
        };
        ex.bytes_in += s.taken as u64;
        if ex.req_body.skip(s.taken as u64) {
            ex.req_done = true;
        }
        if s.dst_failed {
            self.backend_failed(i, "write to the backend failed");
            return true;
        }
        if matches!(s.src, Io::Error(_)) || (c.sock.eof && !ex.req_done) {
            debug!("{}: closed in the middle of a request body", c.peer);
            return self.client_gone(i);
        }
        s.progress
    }

    /// Moves response bytes backend -> client. Some(progress), or None when the exchange
    /// ended or failed (the phase changed).
    pub(crate) fn pump_response(&mut self, i: usize, b: usize) -> Option<bool> {
        let spliced = match &self.clients[i].phase {
            Phase::Exchange(ex) if matches!(ex.resp, Resp::Body(d) if d.opaque() >= SPLICE_MIN) => {
                self.splice_response(i, b)
            }
            _ => None,
        };
        let (got, mut progress) = match spliced {
            Some(s) if s.dst_failed => {
                self.client_gone(i);
                return None;
            }
            Some(s) => (s.src, s.progress),
            None => {
                let be = &mut self.backends[b];
                let got = fill(&mut be.sock, &mut be.rbuf, &mut self.bufs);
                (got, matches!(got, Io::Moved(n) if n > 0))
            }
        };
        loop {
            let Phase::Exchange(ex) = &self.clients[i].phase else {
                return None;
            };
            match ex.resp {
                Resp::Await => match self.response_head(i, b) {
                    Some(true) => progress = true,
                    Some(false) => break,
                    None => return None,
                },
                Resp::Body(_) => {
                    if !self.response_body(i, b) {
                        break;
                    }
                    progress = true;
                }
                Resp::Done => break,
            }
        }
        let be = &self.backends[b];
        let Phase::Exchange(ex) = &mut self.clients[i].phase else {
            return None;
        };
        let pending = be.rbuf.as_ref().is_some_and(|r| !r.is_empty());
        if !pending && (be.sock.eof || matches!(got, Io::Error(_))) {
            match ex.stream_ended() {
                StreamEnd::Complete => {}
                StreamEnd::BodyEnded => return Some(true),
                StreamEnd::BeforeResponse => {
                    let why = if be.sock.eof {
                        "backend closed the connection"
                    } else {
                        "backend reset the connection"
                    };
                    self.backend_failed(i, why);
                    return None;
                }
                StreamEnd::Truncated => {
                    let srv = ex.srv;
                    let (peer, name) = (self.clients[i].peer, self.server_name(srv));
                    warn!("{peer}: response from {name} truncated");
                    self.passive_failure(srv, "response truncated");
                    return Some(self.cut_exchange(i));
                }
            }
        }
        Some(progress)
    }

    /// Response body bytes that need no look (the rest of a Content-Length body, of a
    /// chunk, or until close) go backend -> client inside the kernel; the decoder skips
    /// them. None: not spliced (no such bytes, bytes already read, a TLS side, no pipe):
    /// the caller reads and copies.
    #[inline(never)]
    fn splice_response(&mut self, i: usize, b: usize) -> Option<Spliced> {
        let (c, be, bufs) = self.pair(i, b);
        let Phase::Exchange(ex) = &mut c.phase else {
            return None;
        };
        let Resp::Body(dec) = &mut ex.resp else {
            return None;
        };
        let opaque = dec.opaque();
        if opaque < SPLICE_MIN || be.rbuf.is_some() {
            return None;
        }
        let s = splice_step(&mut be.sock, &mut c.sock, &mut c.wbuf, opaque, bufs)?;
        ex.bytes_out += s.taken as u64;
        if dec.skip(s.taken as u64) {
            ex.resp = Resp::Done;
        }
        Some(s)
    }

    /// Parses and forwards a response head. Some(true) forwarded one, Some(false) needs
    /// more bytes or room, None failed (phase changed).
    pub(crate) fn response_head(&mut self, i: usize, b: usize) -> Option<bool> {
        let Reactor {
            clients,
            backends,
            bufs,
            scratch,
            limits,
            ..
        } = self;
        let c = &mut clients[i];
        let be = &mut backends[b];
        let Phase::Exchange(ex) = &mut c.phase else {
            return None;
        };
        let Some(rbuf) = be.rbuf.as_mut() else {
            return Some(false);
        };
        let parsed = h1::parse_response(rbuf.bytes(), ex.head.method, limits);
        let rh = match parsed {
            Ok(Status::Complete(rh)) => rh,
            Ok(Status::Partial) => {
                if rbuf.space() == 0 {
                    self.bad_response(i, "response head too large");
                    return None;
                }
                return Some(false);
            }
            Err(e) => {
                let why = e.as_str();
                self.bad_response(i, why);
                return None;
            }
        };
        let retained = ex.response_started();
        if retained > 0 {
            if let Some(r) = c.rbuf.as_mut() {
                r.consume(retained);
            }
            bufs.release_if_empty(&mut c.rbuf);
        }
        let interim = (100..200).contains(&rh.status);
        if rh.status == 101 {
            let Some(key) = ex.upgrade else {
                self.bad_response(i, "unexpected 101 Switching Protocols");
                return None;
            };
            let head_bytes = &rbuf.bytes()[..rh.head_len];
            let accept =
                match protocol::ws::check_server_accept(101, h1::header_lines(head_bytes), &key) {
                    // RFC 6455 §9.1, RFC 7692 §5: a server must not accept an
                    // extension the client did not offer; the client would fail the
                    // connection, so the answer is a 502 here instead.
                    Ok(a) if a.rsv1_allowed && !ex.deflate_offered => {
                        self.bad_response(i, "101 accepts permessage-deflate, not offered");
                        return None;
                    }
                    Ok(a) => a,
                    Err(e) => {
                        self.bad_response(i, e.as_str());
                        return None;
                    }
                };
            scratch.clear();
            h1::write_response_head(head_bytes, &rh, Version::Http11, false, true, scratch);
            append(&mut c.wbuf, bufs, scratch);
            rbuf.consume(rh.head_len);
            bufs.release_if_empty(&mut be.rbuf);
            self.begin_tunnel(i, b, accept.rsv_allowed());
            return None;
        }
        if !interim {
            // A final response before the whole request body was forwarded (a 417 or
            // 413 to `Expect: 100-continue`, RFC 9110 §10.1.1): the rest of the body
            // can no longer be told from a next request, so the client connection
            // ends after this response and the backend connection is not reused.
            ex.final_head(rh.status, rh.body, rh.keep_alive, self.draining);
            if self.access.is_on() {
                ex.head_us = ex.micros_at(self.now);
            }
            be.ka_timeout = rh.keep_alive_timeout.map(|s| Duration::from_secs(s.into()));
        }
        scratch.clear();
        if !(interim && ex.head.version == Version::Http10) {
            h1::write_response_head(
                rbuf.bytes(),
                &rh,
                ex.head.version,
                ex.close && !interim,
                false,
                scratch,
            );
        }
        if space(&c.wbuf) < scratch.len() && c.wbuf.as_ref().is_some_and(|w| !w.is_empty()) {
            return Some(false); // wait for the client to drain the previous bytes
        }
        append(&mut c.wbuf, bufs, scratch);
        ex.bytes_out += scratch.len() as u64;
        rbuf.consume(rh.head_len);
        bufs.release_if_empty(&mut be.rbuf);
        if !interim {
            let dec = BodyDecoder::new(rh.body, None);
            ex.resp = if dec.is_done() {
                Resp::Done
            } else {
                Resp::Body(dec)
            };
        }
        Some(true)
    }

    /// Forwards response body bytes; true when some moved or the body ended.
    pub(crate) fn response_body(&mut self, i: usize, b: usize) -> bool {
        let (c, be, bufs) = self.pair(i, b);
        let Phase::Exchange(ex) = &mut c.phase else {
            return false;
        };
        let Resp::Body(dec) = &mut ex.resp else {
            return false;
        };
        let avail = be.rbuf.as_ref().map_or(0, Buf::len).min(space(&c.wbuf));
        if avail == 0 {
            return false;
        }
        let Some(rbuf) = be.rbuf.as_ref() else {
            return false;
        };
        match dec.feed(&rbuf.bytes()[..avail]) {
            Ok(p) => {
                relay(&mut be.rbuf, &mut c.wbuf, p.consumed, bufs);
                ex.bytes_out += p.consumed as u64;
                if p.done {
                    ex.resp = Resp::Done;
                }
                p.consumed > 0 || p.done
            }
            Err(e) => {
                warn!(
                    "{}: bad response body framing from the backend: {e}",
                    c.peer
                );
                // The client must not take what it got for a complete response;
                // this also closes the backend and releases its pool slot.
                self.cut_exchange(i)
            }
        }
    }

    /// A malformed response head: 502 to the client, the connection is dropped.
    pub(crate) fn bad_response(&mut self, i: usize, why: &str) {
        let Phase::Exchange(ex) = &self.clients[i].phase else {
            return;
        };
        let srv = ex.srv;
        warn!(
            "{}: invalid response from {}: {why}",
            self.clients[i].peer,
            self.server_name(srv)
        );
        self.passive_failure(srv, "invalid response");
        self.close_exchange_backend(i);
        let msg = format!("bad gateway: invalid response from the server ({why})");
        self.reject(i, status::BAD_GATEWAY, &msg);
    }

    /// The backend failed before answering: retry on a fresh connection when safe,
    /// else try another server, else 502.
    pub(crate) fn backend_failed(&mut self, i: usize, why: &'static str) {
        self.close_exchange_backend(i);
        let max_body = self.cfg.frontend.max_body_bytes;
        let Phase::Exchange(ex) = &mut self.clients[i].phase else {
            return;
        };
        let srv = ex.srv;
        match ex.failed(max_body) {
            Failure::RetryFresh => {
                debug!(
                    "retrying on a fresh connection to {}: {why}",
                    self.server_name(srv)
                );
                let c = &mut self.clients[i];
                let cref = c.cref(i);
                let at = self.now + self.groups[srv.group].cfg.queue_timeout;
                c.deadline
                    .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
                let server = &mut self.groups[srv.group].servers[srv.server];
                let lim = server.limits();
                if server.pool.retry_first(cref, lim) {
                    self.open_pooled(srv, true);
                }
                self.fail_queue_if_stranded(srv, why);
            }
            Failure::Reroute => {
                self.passive_failure(srv, why);
                self.reroute(i, why);
            }
            Failure::BadGateway => {
                self.passive_failure(srv, why);
                let msg = format!("bad gateway: {why}");
                self.reject(i, status::BAD_GATEWAY, &msg);
            }
        }
    }

    /// Drops the exchange's backend connection (it can never be reused mid-exchange).
    pub(crate) fn close_exchange_backend(&mut self, i: usize) {
        if let Phase::Exchange(ex) = &mut self.clients[i].phase {
            if let Some(b) = ex.backend.take() {
                if b.alive(&self.backends) {
                    self.close_backend(b.index);
                }
            }
        }
    }

    /// True while client `i`'s exchange still runs on backend `b`.
    pub(crate) fn exchange_uses(&self, i: usize, b: BRef) -> bool {
        let uses = matches!(&self.clients[i].phase, Phase::Exchange(ex) if ex.backend == Some(b));
        uses && b.alive(&self.backends)
    }

    /// The client vanished or broke the request: the exchange is abandoned.
    pub(crate) fn client_gone(&mut self, i: usize) -> bool {
        self.cut_exchange(i);
        if let Some(b) = self.clients[i].wbuf.take() {
            self.bufs.put(b);
        }
        true
    }

    /// The response cannot be completed (the backend closed or broke the framing):
    /// what the client already has in flight is still sent, then the connection
    /// closes, so a truncated response is never taken for a complete one.
    pub(crate) fn cut_exchange(&mut self, i: usize) -> bool {
        let c = &mut self.clients[i];
        let token = c.token;
        // Abandoned, not just dropped: the backend connection may sit mid-request
        // waiting for body bytes that never come (no event would ever wake it), and
        // its pool slot, queue entry and `active` count must be given back.
        let old = c.set_phase(Phase::Closing { linger: false });
        if let Phase::Exchange(ex) = old {
            self.abandon_exchange(i, token, ex);
        }
        self.wake(CRef { index: i, token });
        true
    }

    /// Called when a client closes with an exchange: the backend connection is closed
    /// (a half-finished exchange must never be reused) and the queue entry removed.
    pub(crate) fn abandon_exchange(&mut self, i: usize, token: Token, mut ex: Exchange) {
        ex.uncount(&mut self.groups);
        // A group whose only servers are discovered names with no address yet is empty.
        if let Some(server) = self.groups[ex.srv.group].servers.get_mut(ex.srv.server) {
            server.pool.remove_waiter(CRef { index: i, token });
        }
        if let Some(b) = ex.backend {
            if b.alive(&self.backends) {
                self.close_backend(b.index);
                self.refill_pool(ex.srv);
            }
        }
    }

    /// Response complete and request fully sent: the backend goes back to its pool.
    pub(crate) fn finish_exchange(&mut self, i: usize) {
        self.access_log(i);
        // The exchange is read in place, then overwritten: moving it out of the phase
        // would copy it whole.
        let c = &mut self.clients[i];
        let Phase::Exchange(ex) = &mut c.phase else {
            return;
        };
        ex.uncount(&mut self.groups);
        let (srv, status, bytes_out, started) = (ex.srv, ex.status, ex.bytes_out, ex.started);
        let backend = ex.backend;
        let after = ex.after(self.draining);
        // Read before the phase is replaced (the exchange goes with it).
        let reusable = ex.reusable(true);
        c.set_phase(match after {
            After::NextRequest => Phase::Head { started: None },
            After::Close { linger } => Phase::Closing { linger },
        });
        let at = self.now + self.cfg.frontend.client_idle_timeout;
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
        self.stats.requests += 1;
        let fail_5xx = self.groups[srv.group].cfg.fail_on_5xx && status >= 500;
        let secs = self.now.saturating_duration_since(started).as_secs_f64();
        self.groups[srv.group].latency.observe(secs);
        let server = &mut self.groups[srv.group].servers[srv.server];
        server.stats.bytes_out += bytes_out;
        server.stats.responses[(status / 100).min(5) as usize] += 1;
        server.stats.latency.observe(secs);
        if status >= 500 && !fail_5xx {
            server.stats.errors += 1;
        }
        if fail_5xx {
            self.passive_failure(srv, "5xx response");
        } else {
            server.health.on_passive_success();
        }
        let Some(b) = backend else { return };
        // A last read that filled the buffer leaves the socket readable: what follows
        // the response (a FIN, stray bytes) must be seen before the connection is
        // handed to a queued request.
        let mut broken = false;
        if let Some(x) = b.get_mut(&mut self.backends) {
            broken = matches!(fill(&mut x.sock, &mut x.rbuf, &mut self.bufs), Io::Error(_));
        }
        let reusable = reusable
            && !broken
            && b.get(&self.backends)
                .is_some_and(|x| x.pooled && x.rbuf.is_none() && !x.sock.eof && x.wbuf.is_none());
        if reusable {
            self.make_idle(b.index);
        } else {
            self.close_backend(b.index);
            self.refill_pool(srv);
            self.serve_queue_fresh(srv);
        }
    }

    /// After a connection closed, waiters of that server may need a new one.
    pub(crate) fn serve_queue_fresh(&mut self, srv: SrvId) {
        let s = &self.groups[srv.group].servers[srv.server];
        if s.pool.wants_fresh(s.limits()) {
            self.open_pooled(srv, true);
        }
    }

    /// Buffers the access-log line of a finished exchange (written at the end of the
    /// turn: `access_log.rs`).
    pub(crate) fn access_log(&mut self, i: usize) {
        if !self.access.is_on() {
            return;
        }
        let Phase::Exchange(ex) = &self.clients[i].phase else {
            return;
        };
        let total_us = self.now.saturating_duration_since(ex.started).as_micros();
        let (connect, head) = (u64::from(ex.connect_us), u64::from(ex.head_us));
        let entry = crate::access_log::Request {
            client: self.clients[i].peer.ip(),
            method: method_name(ex.head.method),
            path: &ex.log_target[..ex.log_target_len as usize],
            status: ex.status,
            bytes_in: ex.bytes_in,
            bytes_out: ex.bytes_out,
            server: self.groups[ex.srv.group]
                .servers
                .get(ex.srv.server)
                .map_or("-", |s| s.cfg.name.as_str()),
            connect_us: Some(connect),
            response_us: Some(head.saturating_sub(connect)),
            total_us: total_us.min(u64::MAX.into()) as u64,
        };
        self.access.request(self.wall, &entry);
    }
}

impl Reactor {
    /// Buffers the access-log line of a request sluice answers itself (`reject`):
    /// `status`, the `bytes_out` of that answer, `-` for the upstream times. Method,
    /// path and server come from the exchange when there is one (a 502/503/504), else
    /// `-` (a head that did not parse, a limit).
    pub(crate) fn access_log_reject(&mut self, i: usize, status: u16, bytes_out: usize) {
        if !self.access.is_on() {
            return;
        }
        let c = &self.clients[i];
        let (method, path, bytes_in, server, started) = match &c.phase {
            Phase::Exchange(ex) => (
                method_name(ex.head.method),
                &ex.log_target[..usize::from(ex.log_target_len)],
                ex.bytes_in,
                // A server was tried (502/504 after a connect or a response failed).
                (ex.tried != 0)
                    .then(|| self.groups[ex.srv.group].servers.get(ex.srv.server))
                    .flatten()
                    .map_or("-", |s| s.cfg.name.as_str()),
                Some(ex.started),
            ),
            Phase::Head { started } => {
                let read = c.rbuf.as_ref().map_or(0, |b| b.len());
                ("-", &b"-"[..], read as u64, "-", *started)
            }
            _ => ("-", &b"-"[..], 0, "-", None),
        };
        let total_us = started.map_or(0, |t| self.now.saturating_duration_since(t).as_micros());
        let entry = crate::access_log::Request {
            client: c.peer.ip(),
            method,
            path,
            status,
            bytes_in,
            bytes_out: bytes_out as u64,
            server,
            connect_us: None,
            response_us: None,
            total_us: total_us.min(u64::MAX.into()) as u64,
        };
        self.access.request(self.wall, &entry);
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Patch => "PATCH",
        Method::Trace => "TRACE",
        Method::Connect => "CONNECT",
        Method::Other => "OTHER",
    }
}
