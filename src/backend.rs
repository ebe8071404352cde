//! Backend connections: opening them, watching idle ones, evicting and closing them,
//! and carrying out the pool's decisions (`pool.rs`) on the sockets. Also passive
//! health (a failure counted against a server) since it acts on the pool.

use crate::buf::Buf;
use crate::group::SrvId;
use crate::io::Sock;
use crate::timer::Deadline;
use crate::token::CRef;
use mio::Token;
use std::time::{Duration, Instant};

/// Close an idle connection this long before the backend's announced keep-alive timeout.
pub(crate) const KEEPALIVE_MARGIN: Duration = Duration::from_millis(500);

/// When an idle pooled connection (idle since `idle_since`, or re-armed then) is looked
/// at again, and what it means then: above
/// the pool's minimum it is closed after `worker_timeout` (shrink); a backend that
/// announced `Keep-Alive: timeout=N` is left `KEEPALIVE_MARGIN` before it would close
/// the connection itself (the race of a request sent as the backend closes).
pub fn idle_deadline(
    idle_since: Instant,
    above_min: bool,
    worker_timeout: Duration,
    ka_timeout: Option<Duration>,
) -> Option<Instant> {
    let shrink = above_min.then(|| idle_since + worker_timeout);
    let ka = ka_timeout.map(|ka| idle_since + ka.saturating_sub(KEEPALIVE_MARGIN));
    match (shrink, ka) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An idle connection's deadline fired at `now`: close it (true) or keep it.
pub fn idle_expired(
    now: Instant,
    idle_since: Option<Instant>,
    above_min: bool,
    ka_timeout: Option<Duration>,
) -> bool {
    let ka_expired = match (ka_timeout, idle_since) {
        (Some(ka), Some(since)) => now + KEEPALIVE_MARGIN >= since + ka,
        _ => false,
    };
    above_min || ka_expired
}

/// What a backend connection is doing.
pub enum BState {
    /// Non-blocking connect in progress.
    Connecting,
    /// Connected, TLS handshake in progress (feature `tls`): still opening for its pool,
    /// and bounded by the same connect deadline (the connect timeout covers the handshake).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Handshake,
    /// Connected, in the pool's idle list.
    Idle,
    /// Carrying the exchange of this client.
    Busy(CRef),
    /// Relaying a WebSocket tunnel for this client (not pooled).
    Tunnel(CRef),
    /// A health probe (its own short-lived connection).
    Probe {
        /// The probe's request was written.
        sent: bool,
    },
}

/// One connection to a backend server.
pub struct Backend {
    /// Its token (with generation).
    pub token: Token,
    /// The socket.
    pub sock: Sock,
    /// The server it belongs to.
    pub srv: SrvId,
    /// What it does.
    pub state: BState,
    /// Bytes read from the backend, not yet forwarded.
    pub rbuf: Option<Buf>,
    /// Bytes to write to the backend.
    pub wbuf: Option<Buf>,
    /// Connect, idle or probe deadline.
    pub deadline: Deadline,
    /// Requests carried so far (0 = fresh connection).
    pub uses: u32,
    /// The backend's `Keep-Alive: timeout=N`.
    pub ka_timeout: Option<Duration>,
    /// When it last became idle.
    pub idle_since: Option<Instant>,
    /// Counted in its server's pool (false for WebSocket and probe connections).
    pub pooled: bool,
    /// The client an unpooled connection is being opened for.
    pub owner: Option<CRef>,
}

impl crate::token::Tokened for Backend {
    fn token(&self) -> Token {
        self.token
    }
}

impl Backend {
    /// A new connection in `state`.
    pub fn new(token: Token, sock: Sock, srv: SrvId, state: BState) -> Backend {
        Backend {
            token,
            sock,
            srv,
            state,
            rbuf: None,
            wbuf: None,
            deadline: Deadline::default(),
            uses: 0,
            ka_timeout: None,
            idle_since: None,
            pooled: true,
            owner: None,
        }
    }

    /// Checks a connecting socket: Some(true) connected, Some(false) failed, None pending.
    pub fn connect_result(&mut self) -> Option<bool> {
        if !self.sock.writable && !self.sock.readable {
            return None;
        }
        match self.sock.stream.take_error() {
            Ok(Some(_)) | Err(_) => return Some(false),
            Ok(None) => {}
        }
        match self.sock.stream.peer_addr() {
            Ok(_) => Some(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotConnected => None,
            Err(_) => Some(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_shrink_above_min_and_leave_before_the_backend_closes_them() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(
            idle_deadline(t0, false, s(60), None),
            None,
            "kept forever at min"
        );
        assert_eq!(idle_deadline(t0, true, s(60), None), Some(t0 + s(60)));
        let ka = Some(s(5));
        let margin = s(5) - KEEPALIVE_MARGIN;
        assert_eq!(idle_deadline(t0, false, s(60), ka), Some(t0 + margin));
        assert_eq!(
            idle_deadline(t0, true, s(1), ka),
            Some(t0 + s(1)),
            "the sooner"
        );
        assert!(!idle_expired(t0 + s(1), Some(t0), false, ka));
        assert!(idle_expired(t0 + margin, Some(t0), false, ka));
        assert!(idle_expired(t0, Some(t0), true, None), "shrink");
        assert!(
            !idle_expired(t0 + s(3600), Some(t0), false, None),
            "min is kept"
        );
    }
}
