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
//! A TCP half-close is relayed as the byte relays of HAProxy and nginx do: a side's FIN
//! at a frame boundary, once everything it sent is flushed to the other side, becomes
//! a FIN to that side (`shutdown(Write)`), and the other direction stays open until it
//! closes too or the idle timeout passes. A half-closed tunnel pings nobody (one side
//! can no longer be written to, the other can no longer answer). A FIN inside a frame
//! can never be completed: it ends the tunnel as before.
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

use crate::exchange::LOG_TARGET;
use crate::group::SrvId;
use crate::token::BRef;
use protocol::ws::close::{GOING_AWAY, INTERNAL_ERROR, SERVICE_RESTART};
use protocol::ws::{FrameError, FrameTracker, Role, TrackerConfig};
use std::time::{Duration, Instant};

/// Time allowed to flush the last frames once a tunnel is closing.
pub(crate) const FINISH_GRACE: Duration = Duration::from_secs(2);
/// Input discarded from both sides of a closing tunnel before giving up on a
/// graceful end (a peer still sending after our Close).
pub(crate) const FINISH_DRAIN_BYTES: usize = 4 << 20;
/// Payload of sluice's own Pings; a Pong carrying it is not tunnel activity.
pub(crate) const PING_PAYLOAD: &[u8] = b"sluice";

/// A relayed WebSocket connection.
pub struct Tunnel {
    /// The backend connection.
    pub backend: BRef,
    /// Its server.
    pub srv: SrvId,
    up: FrameTracker,
    down: FrameTracker,
    /// When the tunnel opened (rebalancing closes the oldest first; the access log
    /// gives its duration).
    opened: Instant,
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
    /// The client's FIN was forwarded: the backend's write half is shut.
    client_fin: bool,
    /// The backend's FIN was forwarded: the client's write half is shut.
    backend_fin: bool,
    /// Sluice decided to close: flush what is queued, then close both sockets.
    finishing: bool,
    /// Bytes discarded while finishing.
    pub(crate) discarded: usize,
    /// Bytes relayed up (client to backend) and down.
    bytes: [u64; 2],
    /// The first Close frame either way: who sent it, and its code.
    first_close: Option<(Closer, Option<u16>)>,
    /// The upgrade's request target, for the access log.
    path: [u8; LOG_TARGET],
    path_len: u8,
}

/// Which way bytes flow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dir {
    /// Client to backend.
    Up,
    /// Backend to client.
    Down,
}

impl Dir {
    /// The side that sends in this direction, for logs.
    pub fn sender(self) -> &'static str {
        match self {
            Dir::Up => "client",
            Dir::Down => "backend",
        }
    }
}

/// Who sent a tunnel's first Close frame (the access log says).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Closer {
    /// The sender of that direction.
    Peer(Dir),
    Sluice,
}

/// The Close frames sluice sends when it ends a tunnel: a code per side, `None` where
/// nothing may or need be said.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Closes {
    /// Code for a Close frame to the client.
    pub to_client: Option<u16>,
    /// Code for a Close frame to the backend.
    pub to_backend: Option<u16>,
}

/// How each side of a tunnel stands after a relay pass (the reactor reads the sockets).
#[derive(Clone, Copy, Default, Debug)]
pub struct Sides {
    /// The client's input ended (EOF with nothing left to relay).
    pub client_eof: bool,
    /// A write to the client failed.
    pub client_err: bool,
    /// The backend's input ended.
    pub backend_eof: bool,
    /// A write to the backend failed.
    pub backend_err: bool,
    /// Nothing is waiting to be written to the client.
    pub client_flushed: bool,
    /// Nothing is waiting to be written to the backend.
    pub backend_flushed: bool,
}

/// The write halves to shut after a relay pass: a FIN forwarded (see `half_close`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Shut {
    /// Shut the backend's write half (the client's FIN goes on).
    pub backend: bool,
    /// Shut the client's write half (the backend's FIN goes on).
    pub client: bool,
}

/// The liveness settings of a `[websocket]` group.
#[derive(Clone, Copy, Debug)]
pub struct Liveness {
    /// No frame either way for this long closes the tunnel.
    pub idle: Duration,
    /// Ping a side that has been silent this long.
    pub ping_every: Option<Duration>,
    /// A pinged side must send something within this.
    pub ping_wait: Duration,
}

/// What a tunnel's deadline means when it fires.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Due {
    /// Already closing: the goodbye took too long, close both sockets now.
    Close,
    /// Close with 1001 both ways, for this reason.
    Finish(&'static str),
    /// Send sluice's own Ping to these sides (either may be false), then wait again.
    Ping {
        /// A Ping to the client.
        client: bool,
        /// A Ping to the backend.
        backend: bool,
    },
}

impl Tunnel {
    /// A tunnel on backend connection `backend` to `srv`, opened at `now`; `rsv_allowed`
    /// are the RSV bits the handshake's extensions allow, `max_message_bytes` the
    /// group's message limit.
    pub fn new(
        backend: BRef,
        srv: SrvId,
        rsv_allowed: u8,
        max_message_bytes: u64,
        now: Instant,
    ) -> Tunnel {
        let tracker = |from| {
            FrameTracker::new(TrackerConfig {
                from,
                rsv_allowed,
                max_message_bytes,
            })
        };
        Tunnel {
            backend,
            srv,
            up: tracker(Role::Client),
            down: tracker(Role::Server),
            opened: now,
            last_client: now,
            last_backend: now,
            last_active: now,
            ping_client: None,
            ping_backend: None,
            up_mid: false,
            down_mid: false,
            client_reset: false,
            backend_reset: false,
            client_fin: false,
            backend_fin: false,
            finishing: false,
            discarded: 0,
            bytes: [0; 2],
            first_close: None,
            path: [0; LOG_TARGET],
            path_len: 0,
        }
    }

    /// Keeps the upgrade's request target for the access log (at most `LOG_TARGET`
    /// bytes).
    pub fn set_log_path(&mut self, path: &[u8]) {
        let n = path.len().min(LOG_TARGET);
        self.path[..n].copy_from_slice(&path[..n]);
        self.path_len = n as u8;
    }

    /// A Close frame from `dir`'s sender was relayed.
    pub fn close_relayed(&mut self, dir: Dir, code: Option<u16>) {
        if self.first_close.is_none() {
            self.first_close = Some((Closer::Peer(dir), code));
        }
    }

    /// The tunnel's access-log line at its end, `now`: bytes and messages each way,
    /// and the first Close (sluice's own, the 1001 `dropped` sends, when no peer's
    /// came first).
    pub fn log_entry<'a>(
        &'a self,
        client: &'a [u8],
        server: &'a str,
        now: Instant,
    ) -> crate::access_log::Tunnel<'a> {
        let close = self
            .first_close
            .or_else(|| self.dropped().map(|code| (Closer::Sluice, Some(code))));
        let us = now.saturating_duration_since(self.opened).as_micros();
        crate::access_log::Tunnel {
            client,
            path: &self.path[..usize::from(self.path_len)],
            server,
            duration_us: us.min(u64::MAX.into()) as u64,
            bytes_in: self.bytes[0],
            bytes_out: self.bytes[1],
            messages_in: self.up.messages(),
            messages_out: self.down.messages(),
            close_code: close.and_then(|c| c.1),
            close_by: close.map(|c| match c.0 {
                Closer::Peer(dir) => dir.sender(),
                Closer::Sluice => "sluice",
            }),
        }
    }

    /// Closing: flushing the last frames, discarding input. The backend connection may
    /// already be closed (it finished first).
    pub fn finishing(&self) -> bool {
        self.finishing
    }

    /// The frame tracker of one direction (the relay feeds it).
    pub fn tracker(&mut self, dir: Dir) -> &mut FrameTracker {
        match dir {
            Dir::Up => &mut self.up,
            Dir::Down => &mut self.down,
        }
    }

    /// A read from `dir`'s sender failed (a reset): that side is done.
    pub fn read_failed(&mut self, dir: Dir) {
        match dir {
            Dir::Up => self.client_reset = true,
            Dir::Down => self.backend_reset = true,
        }
    }

    /// Bytes arrived from `dir`'s sender at `now`: it is alive, its ping is answered.
    pub fn heard(&mut self, dir: Dir, now: Instant) {
        match dir {
            Dir::Up => {
                self.last_client = now;
                self.ping_client = None;
            }
            Dir::Down => {
                self.last_backend = now;
                self.ping_backend = None;
            }
        }
    }

    /// `n` bytes of `dir` were relayed at `now` after a `tracker(dir).feed`; `own_pong`
    /// when they end a Pong answering sluice's own Ping (not activity for the idle
    /// timeout).
    pub fn relayed(&mut self, dir: Dir, n: usize, own_pong: bool, now: Instant) {
        match dir {
            Dir::Up => self.up_mid = !self.up.at_frame_boundary(),
            Dir::Down => self.down_mid = !self.down.at_frame_boundary(),
        }
        self.bytes[dir as usize] += n as u64;
        if n > 0 && !own_pong {
            self.last_active = now;
        }
    }

    /// The Close codes for a protocol violation by `dir`'s sender: the offender gets
    /// the violation's code (1002, 1007, 1009), the other side 1001.
    pub fn violation(dir: Dir, e: FrameError) -> Closes {
        match dir {
            Dir::Up => Closes {
                to_client: Some(e.close_code()),
                to_backend: Some(GOING_AWAY),
            },
            Dir::Down => Closes {
                to_client: Some(GOING_AWAY),
                to_backend: Some(e.close_code()),
            },
        }
    }

    /// After a relay pass: the FINs to forward now. A side's clean EOF at a frame
    /// boundary (nothing of it left to relay, `Sides::*_eof`) is passed on, once, when
    /// the other side's output is flushed, so the FIN follows the last byte. The side
    /// that sent it can no longer answer a ping: none is awaited from it.
    pub fn half_close(&mut self, sides: Sides) -> Shut {
        let mut shut = Shut::default();
        if self.finishing {
            return shut;
        }
        let up_clean = !sides.client_err && !self.client_reset && !self.up_mid;
        if sides.client_eof && up_clean && !self.client_fin && sides.backend_flushed {
            self.client_fin = true;
            self.ping_client = None;
            shut.backend = true;
        }
        let down_clean = !sides.backend_err && !self.backend_reset && !self.down_mid;
        if sides.backend_eof && down_clean && !self.backend_fin && sides.client_flushed {
            self.backend_fin = true;
            self.ping_backend = None;
            shut.client = true;
        }
        shut
    }

    /// Either side's FIN was forwarded: the tunnel runs one way only.
    pub fn half_closed(&self) -> bool {
        self.client_fin || self.backend_fin
    }

    /// After a relay pass (and `half_close`): has a side ended the tunnel, and what is
    /// each side told? `None` while both directions are open or half-closed (a clean
    /// FIN at a frame boundary is forwarded, not an end). A clean end (a Close seen both
    /// ways, or both sides' FINs) says nothing more; a backend that failed is 1011 to
    /// the client and one that left mid-frame 1001 (RFC 6455 §7.4.1); a client that
    /// left mid-frame is 1001 to the backend (where still possible).
    pub fn ended(&self, sides: Sides) -> Option<(Closes, &'static str)> {
        let client_err = sides.client_err || self.client_reset;
        let backend_err = sides.backend_err || self.backend_reset;
        if !client_err && !backend_err && !sides.client_eof && !sides.backend_eof {
            return None;
        }
        if self.up.close_seen() && self.down.close_seen() {
            return Some((Closes::default(), "closed"));
        }
        let client_half = sides.client_eof && !client_err && !self.up_mid;
        let backend_half = sides.backend_eof && !backend_err && !self.down_mid;
        if client_half && backend_half {
            return Some((Closes::default(), "both sides closed"));
        }
        let client_done = client_err || (sides.client_eof && !client_half);
        let backend_done = backend_err || (sides.backend_eof && !backend_half);
        if !client_done && !backend_done {
            return None;
        }
        if backend_done {
            let code = if backend_err {
                INTERNAL_ERROR
            } else {
                GOING_AWAY
            };
            let to_client = Some(code);
            return Some((
                Closes {
                    to_client,
                    ..Closes::default()
                },
                "backend went away",
            ));
        }
        let to_backend = Some(GOING_AWAY);
        Some((
            Closes {
                to_backend,
                ..Closes::default()
            },
            "client went away",
        ))
    }

    /// Starts closing: the Close frames that may actually be injected (only at a frame
    /// boundary of that direction, never after that direction carried a Close), or
    /// `None` when the tunnel is already closing.
    pub fn finish(&mut self, want: Closes) -> Option<Closes> {
        if self.finishing {
            return None;
        }
        self.finishing = true;
        let sent = Closes {
            to_client: want
                .to_client
                .filter(|_| !self.down_mid && !self.down.close_seen() && !self.backend_fin),
            to_backend: want
                .to_backend
                .filter(|_| !self.up_mid && !self.up.close_seen() && !self.client_fin),
        };
        if self.first_close.is_none() {
            if let Some(code) = sent.to_client.or(sent.to_backend) {
                self.first_close = Some((Closer::Sluice, Some(code)));
            }
        }
        Some(sent)
    }

    /// When the tunnel opened.
    pub fn opened(&self) -> Instant {
        self.opened
    }

    /// The Close frames that shed this tunnel for rebalancing: 1012 (Service
    /// Restart: reconnect) to the client and 1001 to the backend. `None` when the
    /// 1012 could not go out now (the stream to the client is inside a frame or
    /// already carried a Close) or the tunnel is closing: the caller sheds another.
    pub fn rebalance(&self) -> Option<Closes> {
        if self.finishing || self.down_mid || self.down.close_seen() {
            return None;
        }
        Some(Closes {
            to_client: Some(SERVICE_RESTART),
            to_backend: Some(GOING_AWAY),
        })
    }

    /// The client is gone without a goodbye: the Close code the backend may still be
    /// told (1001), when the stream to it is at a frame boundary.
    pub fn dropped(&self) -> Option<u16> {
        let open = !self.finishing && !self.client_fin;
        (open && !self.up_mid && !self.up.close_seen()).then_some(GOING_AWAY)
    }

    /// The tunnel's deadline fired at `now`: what to do. Pings it asks for are taken as
    /// sent; `backend_open` is false once the backend connection is gone.
    pub fn due(&mut self, now: Instant, live: Liveness, backend_open: bool) -> Due {
        if self.finishing {
            return Due::Close;
        }
        if now >= self.last_active + live.idle {
            return Due::Finish("idle timeout");
        }
        let none = Due::Ping {
            client: false,
            backend: false,
        };
        let Some(every) = live.ping_every else {
            return none;
        };
        if self.late_side(now, live).is_some() {
            return Due::Finish("ping timeout");
        }
        if self.half_closed() {
            return none;
        }
        let client = self.ping_client.is_none()
            && now >= self.last_client + every
            && self.down.at_frame_boundary()
            && !self.down.close_seen();
        let backend = backend_open
            && self.ping_backend.is_none()
            && now >= self.last_backend + every
            && self.up.at_frame_boundary()
            && !self.up.close_seen();
        if client {
            self.ping_client = Some(now);
        }
        if backend {
            self.ping_backend = Some(now);
        }
        Due::Ping { client, backend }
    }

    /// The side that did not answer a ping within `ping_wait`, if any.
    pub fn late_side(&self, now: Instant, live: Liveness) -> Option<&'static str> {
        let late = |sent: Option<Instant>| sent.is_some_and(|s| now >= s + live.ping_wait);
        if late(self.ping_client) {
            Some("client")
        } else if late(self.ping_backend) {
            Some("backend")
        } else {
            None
        }
    }

    /// The earliest of: idle expiry, next ping due, ping answer due.
    pub fn next_deadline(&self, now: Instant, live: Liveness) -> Instant {
        let mut at = self.last_active + live.idle;
        if let Some(every) = live.ping_every {
            for (last, sent) in [
                (self.last_client, self.ping_client),
                (self.last_backend, self.ping_backend),
            ] {
                let due = match sent {
                    Some(s) => s + live.ping_wait,
                    // Half-closed: no new pings (see `due`).
                    None if self.half_closed() => continue,
                    // Due but not sent (the stream stopped mid-frame, or a Close went
                    // that way): look again an interval from now. The due time itself
                    // is already past and would fire again at once, forever.
                    None if last + every <= now => now + every,
                    None => last + every,
                };
                at = at.min(due);
            }
        }
        at
    }
}

#[cfg(test)]
mod tests;
