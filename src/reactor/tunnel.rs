//! WebSocket tunnels, the IO half: upgrade routing, the frame-aware relay, close.

use super::Reactor;
use crate::backend::BState;
use crate::group::{SrvId, HTTP, WEBSOCKET};
use crate::io::{append, fill, flush, relay, splice_step, Io, SPLICE_MIN};
use crate::session::{Phase, Step};
use crate::timer::Owner;
use crate::token::BRef;
use crate::tunnel::{
    Closes, Dir, Due, Liveness, Sides, Tunnel, FINISH_DRAIN_BYTES, FINISH_GRACE, PING_PAYLOAD,
};
use log::{debug, warn};
use protocol::h1::{self, status, RequestHead, Version};
use protocol::ws::close::GOING_AWAY;
use protocol::ws::{self, WsEvent};
use rand::Rng;

/// Outcome of relaying one direction.
enum Relay {
    Moved(bool),
    Violation(ws::FrameError),
}

impl Reactor {
    /// Validates an upgrade request and routes it to the `[websocket]` group (or to
    /// `[http]` when no WebSocket server is configured).
    pub(crate) fn start_websocket(&mut self, i: usize, head: RequestHead) {
        let Some(rbuf) = self.clients[i].rbuf.as_ref() else {
            return;
        };
        let head_bytes = &rbuf.bytes()[..head.head_len];
        let upgrade = ws::check_client_upgrade(
            head.method == h1::Method::Get,
            head.version == Version::Http11,
            h1::header_lines(head_bytes),
        );
        let up = match upgrade {
            Ok(u) => u,
            Err(e) => {
                let msg = format!("invalid WebSocket upgrade: {e}");
                self.reject(i, status::BAD_REQUEST, &msg);
                return;
            }
        };
        if head.body != h1::BodyKind::None {
            self.reject(
                i,
                status::BAD_REQUEST,
                "invalid WebSocket upgrade: a request body is not allowed",
            );
            return;
        }
        // The configured servers: a discovered [websocket] name that has no address yet
        // still owns the upgrades (503 until it resolves).
        let group = if self.cfg.websocket.servers.is_empty() {
            HTTP
        } else {
            WEBSOCKET
        };
        self.begin_exchange(i, head, group, Some(up.key));
        if let Phase::Exchange(ex) = &mut self.clients[i].phase {
            ex.deflate_offered = up.permessage_deflate_offered;
        }
        self.choose_server(i, "no server is available");
    }

    /// Opens a fresh, unpooled connection for the client's upgrade (or for a request
    /// to a `send_proxy` server, whose header is queued first).
    pub(crate) fn connect_fresh(&mut self, i: usize, srv: SrvId) {
        let cref = self.clients[i].cref(i);
        match self.connect_backend(srv, BState::Connecting) {
            Some(b) => {
                let be = &mut self.backends[b];
                be.pooled = false;
                be.owner = Some(cref);
                if let Some(v) = self.groups[srv.group].servers[srv.server].cfg.send_proxy {
                    let c = &self.clients[i];
                    let local = c.sock.stream.local_addr().unwrap_or(self.listen_addr);
                    self.scratch.clear();
                    super::proxy::header_for(v, c.peer.addr(), local, &mut self.scratch);
                    crate::io::append(&mut be.wbuf, &mut self.bufs, &self.scratch);
                }
            }
            None => {
                self.passive_failure(srv, "connect failed");
                self.reroute(i, "connection refused");
            }
        }
    }

    /// The backend accepted the upgrade: the exchange becomes a tunnel.
    pub(crate) fn begin_tunnel(&mut self, i: usize, b: usize, rsv_allowed: u8) {
        let now = self.now;
        let max = self.groups[WEBSOCKET].cfg.max_message_bytes;
        let c = &mut self.clients[i];
        let cref = c.cref(i);
        let Phase::Exchange(ex) = c.take_phase() else {
            return;
        };
        let be = &mut self.backends[b];
        be.state = BState::Tunnel(cref);
        let backend = BRef {
            index: b,
            token: be.token,
        };
        let mut t = Tunnel::new(backend, ex.srv, rsv_allowed, max, now);
        t.set_log_path(&ex.log_target[..usize::from(ex.log_target_len)]);
        let (peer, name) = (c.peer, self.server_name(ex.srv));
        debug!("{peer}: WebSocket tunnel to {name}");
        self.stats.requests += 1;
        self.groups[ex.srv.group].servers[ex.srv.server]
            .stats
            .responses[1] += 1;
        let c = &mut self.clients[i];
        c.set_phase(Phase::Tunnel(t));
        // The server's `active` count taken by the exchange now counts the open
        // tunnel (least-connections load); `drop_tunnel` releases it.
        self.set_tunnel_deadline(i);
        // An upgrade answered after a drain began, or after its server's address
        // vanished from DNS, was not among the tunnels those scheduled: 1001 now (the
        // drain), or after `drain_timeout` as its siblings got.
        if self.draining {
            self.schedule_tunnel_closes(vec![cref], now);
        } else if self.groups[ex.srv.group].servers[ex.srv.server].removed {
            let at = now + self.cfg.frontend.drain_timeout;
            self.schedule_tunnel_closes(vec![cref], at);
        }
    }

    pub(crate) fn step_tunnel(&mut self, i: usize) -> Step {
        use Step;
        let Phase::Tunnel(t) = &self.clients[i].phase else {
            return Step::Wait;
        };
        let b = t.backend;
        let alive = b.alive(&self.backends);
        if t.finishing() {
            return self.step_finishing(i, alive.then_some(b.index));
        }
        if !alive {
            return Step::Close;
        }
        let mut progress = false;
        for dir in [Dir::Up, Dir::Down] {
            match self.relay(i, b.index, dir) {
                Relay::Moved(p) => progress |= p,
                Relay::Violation(e) => {
                    warn!(
                        "{}: WebSocket {} broke the protocol: {e}",
                        self.clients[i].peer,
                        dir.sender()
                    );
                    self.finish_tunnel(i, Tunnel::violation(dir, e), e.as_str());
                    return Step::Again;
                }
            }
        }
        let (c, be, bufs) = self.pair(i, b.index);
        let to_client = flush(&mut c.sock, &mut c.wbuf, bufs);
        let to_backend = flush(&mut be.sock, &mut be.wbuf, bufs);
        // Room made in a wbuf is progress: bytes held back in the other side's rbuf
        // (backpressure) can move now, and no event would come for them (that socket's
        // readiness is remembered, not re-signalled). Without this a peer that stopped
        // reading and then resumed left the tunnel stalled for good.
        progress |= matches!(to_client, Io::Moved(n) if n > 0);
        progress |= matches!(to_backend, Io::Moved(n) if n > 0);
        let Phase::Tunnel(t) = &mut c.phase else {
            return Step::Wait;
        };
        let sides = Sides {
            client_err: matches!(to_client, Io::Error(_)),
            client_eof: c.sock.eof && c.rbuf.is_none(),
            backend_err: matches!(to_backend, Io::Error(_)),
            backend_eof: be.sock.eof && be.rbuf.is_none(),
            client_flushed: c.wbuf.is_none(),
            backend_flushed: be.wbuf.is_none(),
        };
        let shut = t.half_close(sides);
        if shut.backend {
            debug!(
                "{}: WebSocket client half-closed, FIN to the backend",
                c.peer
            );
            let _ = be.sock.stream.shutdown(std::net::Shutdown::Write);
        }
        if shut.client {
            debug!(
                "{}: WebSocket backend half-closed, FIN to the client",
                c.peer
            );
            let _ = c.sock.stream.shutdown(std::net::Shutdown::Write);
        }
        if let Some((closes, why)) = t.ended(sides) {
            self.finish_tunnel(i, closes, why);
            return Step::Again;
        }
        if progress {
            Step::Again
        } else {
            self.sync_pair(i, b.index);
            Step::Wait
        }
    }

    /// Relays what one side sent to the other, stopping at each frame event.
    fn relay(&mut self, i: usize, b: usize, dir: Dir) -> Relay {
        let now = self.now;
        let (c, be, bufs) = self.pair(i, b);
        let Phase::Tunnel(t) = &mut c.phase else {
            return Relay::Moved(false);
        };
        let (src_sock, src, dst_sock, dst) = match dir {
            Dir::Up => (&mut c.sock, &mut c.rbuf, &mut be.sock, &mut be.wbuf),
            Dir::Down => (&mut be.sock, &mut be.rbuf, &mut c.sock, &mut c.wbuf),
        };
        // The rest of a large data frame's payload needs no look (it is relayed masked
        // as it came): inside the kernel, the tracker skips it.
        let opaque = t.tracker(dir).opaque();
        let spliced = if opaque >= SPLICE_MIN && src.is_none() {
            splice_step(src_sock, dst_sock, dst, opaque, bufs)
        } else {
            None
        };
        if let Some(s) = spliced {
            t.tracker(dir).skip(s.taken as u64);
            if s.taken > 0 {
                t.heard(dir, now);
            }
            t.relayed(dir, s.taken, false, now);
            // A failed write shows again in this step's flush of the destination.
            if let Io::Error(e) = s.src {
                debug!("{}: WebSocket {} read failed: {e:?}", c.peer, dir.sender());
                t.read_failed(dir);
            }
            return Relay::Moved(s.progress);
        }
        let got = fill(src_sock, src, bufs);
        let mut progress = matches!(got, Io::Moved(n) if n > 0);
        if let Io::Error(e) = got {
            debug!("{}: WebSocket {} read failed: {e:?}", c.peer, dir.sender());
            t.read_failed(dir);
        }
        if progress {
            t.heard(dir, now);
        }
        loop {
            let avail = src
                .as_ref()
                .map_or(0, |s| s.len())
                .min(crate::io::space(dst));
            if avail == 0 {
                break;
            }
            let Some(s) = src.as_ref() else { break };
            let tracker = t.tracker(dir);
            let (n, ev) = match tracker.feed_relay(&s.bytes()[..avail]) {
                Ok(r) => r,
                Err(e) => return Relay::Violation(e),
            };
            let own_pong = ev == Some(WsEvent::Pong) && tracker.control_payload() == PING_PAYLOAD;
            t.relayed(dir, n, own_pong, now);
            if n > 0 {
                relay(src, dst, n, bufs);
                progress = true;
            }
            if n == 0 && ev.is_none() {
                break;
            }
            if let Some(WsEvent::Close { code }) = ev {
                t.close_relayed(dir, code);
                debug!(
                    "{}: WebSocket Close {code:?} from the {}",
                    c.peer,
                    dir.sender()
                );
            }
        }
        bufs.release_if_empty(src);
        Relay::Moved(progress)
    }

    /// Queues sluice's own Close frames (the tunnel decides which may go) and starts
    /// the final flush; both sockets close once flushed or after `FINISH_GRACE`.
    pub(crate) fn finish_tunnel(&mut self, i: usize, want: Closes, why: &str) {
        let mask: [u8; 4] = self.rng.gen();
        let Reactor {
            clients,
            backends,
            bufs,
            scratch,
            ..
        } = self;
        let c = &mut clients[i];
        let Phase::Tunnel(t) = &mut c.phase else {
            return;
        };
        let Some(closes) = t.finish(want) else {
            return;
        };
        debug!("{}: closing WebSocket tunnel: {why}", c.peer);
        if let Some(code) = closes.to_client {
            scratch.clear();
            ws::write_close(code, why.as_bytes(), None, scratch);
            append(&mut c.wbuf, bufs, scratch);
        }
        if let (Some(code), Some(be)) = (closes.to_backend, t.backend.get_mut(backends)) {
            scratch.clear();
            ws::write_close(code, why.as_bytes(), Some(mask), scratch);
            append(&mut be.wbuf, bufs, scratch);
        }
        let at = self.now + FINISH_GRACE;
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
    }

    /// Lingering close of both sides: flush, shut the write half, discard input until
    /// EOF. The backend is closed as soon as it is done, the client once both are.
    fn step_finishing(&mut self, i: usize, b: Option<usize>) -> Step {
        use Step;
        let Reactor {
            clients,
            backends,
            bufs,
            ..
        } = self;
        let c = &mut clients[i];
        let Phase::Tunnel(t) = &mut c.phase else {
            return Step::Wait;
        };
        let (backend_done, p1) = match b.map(|b| &mut backends[b]) {
            Some(be) => linger(
                &mut be.sock,
                &mut be.wbuf,
                &mut be.rbuf,
                bufs,
                &mut t.discarded,
            ),
            None => (true, false),
        };
        let (client_done, p2) = linger(
            &mut c.sock,
            &mut c.wbuf,
            &mut c.rbuf,
            bufs,
            &mut t.discarded,
        );
        if t.discarded > FINISH_DRAIN_BYTES {
            debug!("{}: WebSocket peer kept sending after the Close", c.peer);
            return Step::Close;
        }
        if let Some(b) = b.filter(|_| backend_done) {
            self.close_backend(b);
        }
        match (client_done, backend_done) {
            (true, true) => Step::Close,
            _ if p1 || p2 => Step::Again,
            _ => Step::Wait,
        }
    }

    /// The group's tunnel liveness settings.
    fn liveness(&self) -> Liveness {
        let cfg = &self.groups[WEBSOCKET].cfg;
        Liveness {
            idle: cfg.idle_timeout,
            ping_every: cfg.ping_interval,
            ping_wait: cfg.ping_timeout,
        }
    }

    /// Idle, ping and finish deadlines of a tunnel: the tunnel decides, this sends.
    pub(crate) fn on_tunnel_timeout(&mut self, i: usize) {
        let now = self.now;
        let live = self.liveness();
        let mask: [u8; 4] = self.rng.gen();
        let Reactor {
            clients,
            backends,
            bufs,
            scratch,
            ..
        } = self;
        let c = &mut clients[i];
        let Phase::Tunnel(t) = &mut c.phase else {
            return;
        };
        let backend = t.backend.get_mut(backends);
        match t.due(now, live, backend.is_some()) {
            Due::Close => {
                self.close_client(i);
                return;
            }
            Due::Finish(why) => {
                if let Some(side) = t.late_side(now, live) {
                    warn!(
                        "{}: WebSocket {side} did not answer a ping in {:?}",
                        c.peer, live.ping_wait
                    );
                }
                let both = Closes {
                    to_client: Some(GOING_AWAY),
                    to_backend: Some(GOING_AWAY),
                };
                self.finish_tunnel(i, both, why);
                self.drive_client(i);
                return;
            }
            Due::Ping {
                client,
                backend: to_backend,
            } => {
                if client {
                    scratch.clear();
                    ws::write_ping(PING_PAYLOAD, None, scratch);
                    append(&mut c.wbuf, bufs, scratch);
                }
                if let (true, Some(be)) = (to_backend, backend) {
                    scratch.clear();
                    ws::write_ping(PING_PAYLOAD, Some(mask), scratch);
                    append(&mut be.wbuf, bufs, scratch);
                }
            }
        }
        self.set_tunnel_deadline(i);
        self.drive_client(i);
    }

    /// Asks the tunnel for its next deadline and arms the client's timer with it.
    fn set_tunnel_deadline(&mut self, i: usize) {
        let (now, live) = (self.now, self.liveness());
        let c = &mut self.clients[i];
        let Phase::Tunnel(t) = &c.phase else { return };
        let at = t.next_deadline(now, live);
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
    }

    /// Buffers the access-log line of a tunnel that ends now (its client closes).
    pub(crate) fn tunnel_log(&mut self, client: &crate::session::Client, t: &Tunnel) {
        if !self.access.is_on() {
            return;
        }
        let server = &self.groups[t.srv.group].servers[t.srv.server].cfg.name;
        let entry = t.log_entry(client.peer.ip(), server, self.now);
        self.access.tunnel(self.wall, &entry);
    }

    /// Closes a tunnel's backend when its client goes (the backend is told 1001 first
    /// when the stream is at a frame boundary).
    pub(crate) fn drop_tunnel(&mut self, t: Tunnel) {
        let server = &mut self.groups[t.srv.group].servers[t.srv.server];
        server.active = server.active.saturating_sub(1);
        if let Some(be) = t.backend.get_mut(&mut self.backends) {
            if let Some(code) = t.dropped() {
                let mask: [u8; 4] = self.rng.gen();
                self.scratch.clear();
                ws::write_close(code, b"client went away", Some(mask), &mut self.scratch);
                append(&mut be.wbuf, &mut self.bufs, &self.scratch);
                let _ = flush(&mut be.sock, &mut be.wbuf, &mut self.bufs);
            }
            self.close_backend(t.backend.index);
        }
    }
}

/// One side of a lingering close. Returns (done, progress): done once its output is
/// flushed and its input has ended (or the socket failed). A failed socket is done but
/// is not progress: it fails the same way on every call, and reporting progress would
/// step the tunnel again forever while the other side is still lingering.
fn linger(
    sock: &mut crate::io::Sock,
    wbuf: &mut Option<crate::buf::Buf>,
    rbuf: &mut Option<crate::buf::Buf>,
    bufs: &mut crate::buf::BufPool,
    discarded: &mut usize,
) -> (bool, bool) {
    if let Io::Error(_) = flush(sock, wbuf, bufs) {
        return (true, false);
    }
    if wbuf.is_some() || !crate::io::finish(sock, bufs) {
        return (false, false);
    }
    // Our last frame is out: FIN now, so the peer sees the end right after it.
    let _ = sock.stream.shutdown(std::net::Shutdown::Write);
    let mut progress = false;
    loop {
        if let Some(r) = rbuf.as_mut() {
            *discarded += r.len();
            r.consume(r.len());
        }
        bufs.release_if_empty(rbuf);
        match fill(sock, rbuf, bufs) {
            Io::Moved(0) => return (sock.eof, progress),
            Io::Moved(_) if *discarded <= FINISH_DRAIN_BYTES => progress = true,
            Io::Moved(_) => return (sock.eof, true),
            Io::Eof | Io::Error(_) => {
                bufs.release(rbuf);
                return (true, progress);
            }
        }
    }
}
