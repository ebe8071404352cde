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

/// What a backend connection is doing.
pub enum BState {
    /// Non-blocking connect in progress.
    Connecting,
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
