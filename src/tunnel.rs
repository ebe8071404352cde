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

use crate::group::SrvId;
use crate::token::BRef;
use protocol::ws::FrameTracker;
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
    pub(crate) up: FrameTracker,
    pub(crate) down: FrameTracker,
    pub(crate) last_client: Instant,
    pub(crate) last_backend: Instant,
    /// Last frame either way that was not a Pong to sluice's own Ping (idle timeout).
    pub(crate) last_active: Instant,
    pub(crate) ping_client: Option<Instant>,
    pub(crate) ping_backend: Option<Instant>,
    /// The bytes forwarded client -> backend stop inside a frame. Unlike
    /// `up.at_frame_boundary()` this stays right after a violation, whose frame's
    /// first bytes may already have gone out (a header split across reads).
    pub(crate) up_mid: bool,
    /// The same for backend -> client.
    pub(crate) down_mid: bool,
    /// A read from the client failed (reset).
    pub(crate) client_reset: bool,
    /// A read from the backend failed (reset).
    pub(crate) backend_reset: bool,
    /// Sluice decided to close: flush what is queued, then close both sockets.
    pub(crate) finishing: bool,
    /// Bytes discarded while finishing.
    pub(crate) discarded: usize,
}

impl Tunnel {
    /// Closing: flushing the last frames, discarding input. The backend connection may
    /// already be closed (it finished first).
    pub fn finishing(&self) -> bool {
        self.finishing
    }
}
