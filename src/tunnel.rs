//! WebSocket tunnels: upgrade routing, a frame-aware byte relay, liveness and close.
//!
//! The upgrade request travels as an ordinary `Exchange` with `upgrade = Some(key)` on
//! a fresh (never pooled) connection to a `[websocket]` server; it switches to a
//! `Tunnel` only on a 101 whose `Sec-WebSocket-Accept` matches the client's key. Any
//! other answer is relayed as a normal HTTP response and the connection stays HTTP.
//!
//! In the tunnel, bytes pass through untouched (opcodes, fragmentation, RSV bits, close
//! codes). One `FrameTracker` per direction reports frame boundaries so that sluice can
//! enforce `max_message_bytes` and put its own Close or Ping frames *between* frames,
//! never inside one. When a side closes or breaks the protocol, sluice tells the other
//! side with a Close frame (1001 going away, 1011 on a reset, 1002/1007/1009 for the
//! offender), flushes, and closes both sockets: no tunnel outlives its peers.
//!
//! Closing is a lingering close: once the last frames are flushed to a side, its
//! write half is shut (FIN) and its input is read and discarded until its EOF, so a
//! peer that was still sending (an oversized message, a violation) reads our Close
//! instead of losing it to a reset. `FINISH_GRACE` bounds the whole goodbye.
//!
//! Liveness: `idle_timeout` closes a tunnel with no frames either way (Pongs carrying
//! sluice's own ping payload do not count); with `ping_interval` set, a side silent
//! that long gets a Ping and must send something (normally the Pong) within
//! `ping_timeout`. Pongs answering sluice's pings are forwarded like any frame: an
//! unsolicited Pong is legal (RFC 6455 §5.5.3).

use crate::backend::BState;
use crate::group::{SrvId, HTTP, WEBSOCKET};
use crate::http::Phase;
use crate::io::{append, fill, flush, Io};
use crate::reactor::Reactor;
use crate::timer::Owner;
use crate::token::BRef;
use log::{debug, warn};
use protocol::h1::{self, RequestHead, Version};
use protocol::ws::close::{GOING_AWAY, INTERNAL_ERROR};
use protocol::ws::{self, FrameTracker, Role, TrackerConfig, WsEvent};
use rand::Rng;
use std::time::{Duration, Instant};

/// Time allowed to flush the last frames once a tunnel is closing.
const FINISH_GRACE: Duration = Duration::from_secs(2);
/// Input discarded from both sides of a closing tunnel before giving up on a
/// graceful end (a peer still sending after our Close).
const FINISH_DRAIN_BYTES: usize = 4 << 20;
/// Payload of sluice's own Pings; a Pong carrying it is not tunnel activity.
const PING_PAYLOAD: &[u8] = b"sluice";

/// A relayed WebSocket connection.
pub struct Tunnel {
    /// The backend connection.
    pub backend: BRef,
    /// Its server.
    pub srv: SrvId,
    up: FrameTracker,
    down: FrameTracker,
    last_client: Instant,
    last_backend: Instant,
    /// Last frame either way that was not a Pong to sluice's own Ping (idle timeout).
    last_active: Instant,
    ping_client: Option<Instant>,
    ping_backend: Option<Instant>,
    /// The bytes forwarded client -> backend stop inside a frame. Unlike
    /// `up.at_frame_boundary()` this stays right after a violation, whose frame's
    /// first bytes may already have gone out (a header split across reads).
    up_mid: bool,
    /// The same for backend -> client.
    down_mid: bool,
    /// A read from the client failed (reset).
    client_reset: bool,
    /// A read from the backend failed (reset).
    backend_reset: bool,
    /// Sluice decided to close: flush what is queued, then close both sockets.
    finishing: bool,
    /// Bytes discarded while finishing.
    discarded: usize,
}

impl Tunnel {
    /// Closing: flushing the last frames, discarding input. The backend connection may
    /// already be closed (it finished first).
    pub fn finishing(&self) -> bool {
        self.finishing
    }
}

/// Which way bytes flow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Client to backend.
    Up,
    /// Backend to client.
    Down,
}

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
                self.reject(i, 400, &msg);
                return;
            }
        };
        if head.body != h1::BodyKind::None {
            self.reject(
                i,
                400,
                "invalid WebSocket upgrade: a request body is not allowed",
            );
            return;
        }
        let group = if self.groups[WEBSOCKET].servers.is_empty() {
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

    /// Opens a fresh, unpooled connection for the client's upgrade.
    pub(crate) fn connect_fresh(&mut self, i: usize, srv: SrvId) {
        let cref = self.clients[i].cref(i);
        match self.connect_backend(srv, BState::Connecting) {
            Some(b) => {
                let be = &mut self.backends[b];
                be.pooled = false;
                be.owner = Some(cref);
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
        let Phase::Exchange(ex) = std::mem::replace(&mut c.phase, Phase::Closed) else {
            return;
        };
        let be = &mut self.backends[b];
        be.state = BState::Tunnel(cref);
        let t = Tunnel {
            backend: BRef {
                index: b,
                token: be.token,
            },
            srv: ex.srv,
            up: FrameTracker::new(TrackerConfig {
                from: Role::Client,
                rsv_allowed,
                max_message_bytes: max,
            }),
            down: FrameTracker::new(TrackerConfig {
                from: Role::Server,
                rsv_allowed,
                max_message_bytes: max,
            }),
            last_client: now,
            last_backend: now,
            last_active: now,
            ping_client: None,
            ping_backend: None,
            up_mid: false,
            down_mid: false,
            client_reset: false,
            backend_reset: false,
            finishing: false,
            discarded: 0,
        };
        let (peer, name) = (c.peer, self.server_name(ex.srv));
        debug!("{peer}: WebSocket tunnel to {name}");
        self.stats.requests += 1;
        self.groups[ex.srv.group].servers[ex.srv.server]
            .stats
            .responses[1] += 1;
        let c = &mut self.clients[i];
        c.phase = Phase::Tunnel(t);
        // The server's `active` count taken by the exchange now counts the open
        // tunnel (least-connections load); `drop_tunnel` releases it.
        self.set_tunnel_deadline(i);
    }

    pub(crate) fn step_tunnel(&mut self, i: usize) -> crate::http::Step {
        use crate::http::Step;
        let Phase::Tunnel(t) = &self.clients[i].phase else {
            return Step::Wait;
        };
        let b = t.backend;
        let alive = b.alive(&self.backends);
        if t.finishing {
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
                    let (to_client, to_backend) = match dir {
                        Dir::Up => (e.close_code(), GOING_AWAY),
                        Dir::Down => (GOING_AWAY, e.close_code()),
                    };
                    let who = if dir == Dir::Up { "client" } else { "backend" };
                    warn!(
                        "{}: WebSocket {who} broke the protocol: {e}",
                        self.clients[i].peer
                    );
                    self.finish_tunnel(i, Some(to_client), Some(to_backend), e.as_str());
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
        let client_err = matches!(to_client, Io::Error(_));
        let backend_err = matches!(to_backend, Io::Error(_));
        let Phase::Tunnel(t) = &c.phase else {
            return Step::Wait;
        };
        let client_err = client_err || t.client_reset;
        let backend_err = backend_err || t.backend_reset;
        let client_done = client_err || (c.sock.eof && c.rbuf.is_none());
        let backend_done = backend_err || (be.sock.eof && be.rbuf.is_none());
        if client_done || backend_done {
            let clean = t.up.close_seen() && t.down.close_seen();
            if clean {
                self.finish_tunnel(i, None, None, "closed");
            } else if backend_done {
                // RFC 6455 §7.4.1: 1011 for a server that failed, 1001 for one that left.
                let code = if backend_err {
                    INTERNAL_ERROR
                } else {
                    GOING_AWAY
                };
                self.finish_tunnel(i, Some(code), None, "backend went away");
            } else {
                self.finish_tunnel(i, None, Some(GOING_AWAY), "client went away");
            }
            return Step::Again;
        }
        if progress {
            Step::Again
        } else {
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
        let (src_sock, src, dst, tracker) = match dir {
            Dir::Up => (&mut c.sock, &mut c.rbuf, &mut be.wbuf, &mut t.up),
            Dir::Down => (&mut be.sock, &mut be.rbuf, &mut c.wbuf, &mut t.down),
        };
        let got = fill(src_sock, src, bufs);
        let mut progress = matches!(got, Io::Moved(n) if n > 0);
        if let Io::Error(e) = got {
            let who = if dir == Dir::Up { "client" } else { "backend" };
            debug!("{}: WebSocket {who} read failed: {e:?}", c.peer);
            match dir {
                Dir::Up => t.client_reset = true,
                Dir::Down => t.backend_reset = true,
            }
        }
        if progress {
            match dir {
                Dir::Up => {
                    t.last_client = now;
                    t.ping_client = None;
                }
                Dir::Down => {
                    t.last_backend = now;
                    t.ping_backend = None;
                }
            }
        }
        loop {
            let avail = src
                .as_ref()
                .map_or(0, |s| s.len())
                .min(crate::io::space(dst));
            if avail == 0 {
                break;
            }
            let Some(s) = src.as_mut() else { break };
            let (n, ev) = match tracker.feed_relay(&s.bytes()[..avail]) {
                Ok(r) => r,
                Err(e) => return Relay::Violation(e),
            };
            let own_pong = ev == Some(WsEvent::Pong) && tracker.control_payload() == PING_PAYLOAD;
            match dir {
                Dir::Up => t.up_mid = !tracker.at_frame_boundary(),
                Dir::Down => t.down_mid = !tracker.at_frame_boundary(),
            }
            if n > 0 {
                append(dst, bufs, &s.bytes()[..n]);
                s.consume(n);
                progress = true;
                if !own_pong {
                    t.last_active = now;
                }
            }
            if n == 0 && ev.is_none() {
                break;
            }
            if let Some(WsEvent::Close { code }) = ev {
                debug!(
                    "{}: WebSocket Close {code:?} from the {}",
                    c.peer,
                    if dir == Dir::Up { "client" } else { "backend" }
                );
            }
        }
        bufs.release_if_empty(src);
        Relay::Moved(progress)
    }

    /// Queues sluice's own Close frames (at frame boundaries only) and starts the
    /// final flush; both sockets close once flushed or after `FINISH_GRACE`.
    pub(crate) fn finish_tunnel(
        &mut self,
        i: usize,
        to_client: Option<u16>,
        to_backend: Option<u16>,
        why: &str,
    ) {
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
        if t.finishing {
            return;
        }
        t.finishing = true;
        debug!("{}: closing WebSocket tunnel: {why}", c.peer);
        if let Some(code) = to_client.filter(|_| !t.down_mid && !t.down.close_seen()) {
            scratch.clear();
            ws::write_close(code, why.as_bytes(), None, scratch);
            append(&mut c.wbuf, bufs, scratch);
        }
        if let Some(be) = t.backend.get_mut(backends) {
            if let Some(code) = to_backend.filter(|_| !t.up_mid && !t.up.close_seen()) {
                scratch.clear();
                ws::write_close(code, why.as_bytes(), Some(mask), scratch);
                append(&mut be.wbuf, bufs, scratch);
            }
        }
        let at = self.now + FINISH_GRACE;
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
    }

    /// Lingering close of both sides: flush, shut the write half, discard input until
    /// EOF. The backend is closed as soon as it is done, the client once both are.
    fn step_finishing(&mut self, i: usize, b: Option<usize>) -> crate::http::Step {
        use crate::http::Step;
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

    /// Idle, ping and finish deadlines of a tunnel.
    pub(crate) fn on_tunnel_timeout(&mut self, i: usize) {
        let now = self.now;
        let cfg = &self.groups[WEBSOCKET].cfg;
        let (idle, ping_every, ping_wait) = (cfg.idle_timeout, cfg.ping_interval, cfg.ping_timeout);
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
        if t.finishing {
            self.close_client(i);
            return;
        }
        if now >= t.last_active + idle {
            self.finish_tunnel(i, Some(GOING_AWAY), Some(GOING_AWAY), "idle timeout");
            self.drive_client(i);
            return;
        }
        if let Some(every) = ping_every {
            let late = |sent: Option<Instant>| sent.is_some_and(|s| now >= s + ping_wait);
            if late(t.ping_client) || late(t.ping_backend) {
                let who = if late(t.ping_client) {
                    "client"
                } else {
                    "backend"
                };
                warn!(
                    "{}: WebSocket {who} did not answer a ping in {ping_wait:?}",
                    c.peer
                );
                self.finish_tunnel(i, Some(GOING_AWAY), Some(GOING_AWAY), "ping timeout");
                self.drive_client(i);
                return;
            }
            if t.ping_client.is_none()
                && now >= t.last_client + every
                && t.down.at_frame_boundary()
                && !t.down.close_seen()
            {
                scratch.clear();
                ws::write_ping(PING_PAYLOAD, None, scratch);
                append(&mut c.wbuf, bufs, scratch);
                t.ping_client = Some(now);
            }
            if let Some(be) = t.backend.get_mut(backends) {
                if t.ping_backend.is_none()
                    && now >= t.last_backend + every
                    && t.up.at_frame_boundary()
                    && !t.up.close_seen()
                {
                    scratch.clear();
                    ws::write_ping(PING_PAYLOAD, Some(mask), scratch);
                    append(&mut be.wbuf, bufs, scratch);
                    t.ping_backend = Some(now);
                }
            }
        }
        self.set_tunnel_deadline(i);
        self.drive_client(i);
    }

    /// The earliest of: idle expiry, next ping due, ping answer due.
    fn set_tunnel_deadline(&mut self, i: usize) {
        let now = self.now;
        let cfg = &self.groups[WEBSOCKET].cfg;
        let c = &mut self.clients[i];
        let Phase::Tunnel(t) = &c.phase else { return };
        let mut at = t.last_active + cfg.idle_timeout;
        if let Some(every) = cfg.ping_interval {
            for (last, sent) in [
                (t.last_client, t.ping_client),
                (t.last_backend, t.ping_backend),
            ] {
                let due = match sent {
                    Some(s) => s + cfg.ping_timeout,
                    // Due but not sent (the stream stopped mid-frame, or a Close went
                    // that way): look again an interval from now. The due time itself
                    // is already past and would fire again at once, forever.
                    None if last + every <= now => now + every,
                    None => last + every,
                };
                at = at.min(due);
            }
        }
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
    }

    /// Closes a tunnel's backend when its client goes (the backend is told 1001 first
    /// when the stream is at a frame boundary).
    pub(crate) fn drop_tunnel(&mut self, t: Tunnel) {
        let server = &mut self.groups[t.srv.group].servers[t.srv.server];
        server.active = server.active.saturating_sub(1);
        if let Some(be) = t.backend.get_mut(&mut self.backends) {
            if !t.finishing && !t.up_mid && !t.up.close_seen() {
                let mask: [u8; 4] = self.rng.gen();
                self.scratch.clear();
                ws::write_close(
                    GOING_AWAY,
                    b"client went away",
                    Some(mask),
                    &mut self.scratch,
                );
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
    if wbuf.is_some() {
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
