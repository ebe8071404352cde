//! Client sessions: one accepted connection and the phase it is in.
//!
//! A client is always in one `Phase`; the data a phase needs lives in its variant
//! (`Exchange`, `Tunnel`). The reactor (`reactor/http.rs`) drives a session whenever
//! its socket, or the backend it uses, has an event.
//!
//! Byte flow of an exchange (nothing is re-encoded, bodies are never buffered whole):
//! client socket -> client.rbuf -> [head rewritten | body bytes as framed] -> backend.wbuf
//! backend socket -> backend.rbuf -> [head rewritten | body bytes as framed] -> client.wbuf.
//! Requests on one connection are handled one at a time, so pipelined requests wait in
//! `rbuf` and responses go out in request order.

use crate::buf::Buf;
use crate::exchange::Exchange;
use crate::io::Sock;
use crate::timer::Deadline;
use crate::token::CRef;
use crate::tunnel::Tunnel;
use mio::Token;
use std::net::SocketAddr;
use std::time::Instant;

/// The client's address: its IP as text, formatted once at accept for
/// X-Forwarded-For (no work per request), and its port, for logs. 44 bytes where a
/// `SocketAddr` plus the text would take 80: it is part of every connection's footprint.
#[derive(Clone, Copy)]
pub struct Peer {
    ip: [u8; 39],
    len: u8,
    port: u16,
}

impl Peer {
    fn new(addr: &SocketAddr) -> Peer {
        use std::io::Write;
        let mut ip = [0u8; 39];
        let mut cur = std::io::Cursor::new(&mut ip[..]);
        let _ = write!(cur, "{}", addr.ip());
        let len = cur.position() as u8;
        Peer {
            ip,
            len,
            port: addr.port(),
        }
    }
    /// The IP as text (`192.0.2.7`, `2001:db8::1`).
    pub fn ip(&self) -> &[u8] {
        &self.ip[..self.len as usize]
    }
    /// The IP as a string.
    pub fn ip_str(&self) -> &str {
        std::str::from_utf8(self.ip()).unwrap_or("?")
    }
    /// The address again (parsed back from the text: for the rare uses that need a
    /// `SocketAddr`, such as a PROXY header toward a server).
    pub fn addr(&self) -> Option<SocketAddr> {
        let ip: std::net::IpAddr = self.ip_str().parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ip().contains(&b':') {
            write!(f, "[{}]:{}", self.ip_str(), self.port)
        } else {
            write!(f, "{}:{}", self.ip_str(), self.port)
        }
    }
}

/// One client connection.
pub struct Client {
    /// Token (with generation).
    pub token: Token,
    /// The socket.
    pub sock: Sock,
    /// The client's address: the socket's peer, or the one a PROXY header gave
    /// (`set_peer`). The one field every use reads (X-Forwarded-For, logs, limits).
    pub peer: Peer,
    /// Bytes received, not yet forwarded.
    pub rbuf: Option<Buf>,
    /// Bytes to send.
    pub wbuf: Option<Buf>,
    /// What it is doing.
    pub phase: Phase,
    /// Header, idle, queue, response or tunnel deadline, as the phase says.
    pub deadline: Deadline,
    /// Accepted on the admin listener: requests are answered by `admin`.
    pub admin: bool,
    /// Counted against `max_connections_per_client` under `peer`'s IP: closing it
    /// gives the count back.
    pub counted: bool,
}

/// A client's state.
pub enum Phase {
    /// Waiting for (the rest of) the PROXY protocol header (`[frontend] accept_proxy`):
    /// nothing is read as HTTP before it is whole and valid.
    Proxy {
        /// The versions accepted (fixed at accept; a reload does not change it).
        accept: protocol::proxy::Accept,
    },
    /// Waiting for (the rest of) a request head; `started` is when its first byte came.
    Head {
        /// First byte of the current head, if any arrived.
        started: Option<Instant>,
    },
    /// A request routed to a server: queued (no backend yet) or in flight.
    Exchange(Exchange),
    /// A WebSocket tunnel.
    Tunnel(Tunnel),
    /// Flushing a last response, then closing (`linger`: half-close and drain first).
    Closing {
        /// Drain the client's input after the response (an error left it unread).
        linger: bool,
    },
    /// Write side shut, discarding input until EOF or the deadline.
    Lingering {
        /// Bytes discarded so far.
        discarded: usize,
    },
    /// Taken apart (only seen while closing).
    Closed,
}

/// What a drain does with a session, by phase.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Drain {
    /// Idle between requests: close it now.
    Close,
    /// A WebSocket tunnel: send 1001 at a random time in the first half of the drain.
    Tunnel,
    /// Mid-request or closing: let it finish (the response says `Connection: close`).
    Finish,
}

impl Phase {
    /// What a drain does with a session in this phase; `buffered` when it holds
    /// unread input or unsent output (a request is arriving or an answer leaving).
    pub fn on_drain(&self, buffered: bool) -> Drain {
        match self {
            Phase::Head { started: None } if !buffered => Drain::Close,
            // No request can have started before the header is whole.
            Phase::Proxy { .. } => Drain::Close,
            Phase::Tunnel(_) => Drain::Tunnel,
            _ => Drain::Finish,
        }
    }

    /// The phase's name, for logs and traces.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Proxy { .. } => "proxy",
            Phase::Head { .. } => "head",
            Phase::Exchange(_) => "exchange",
            Phase::Tunnel(_) => "tunnel",
            Phase::Closing { .. } => "closing",
            Phase::Lingering { .. } => "lingering",
            Phase::Closed => "closed",
        }
    }
}

/// What one step of a session achieved.
pub(crate) enum Step {
    /// Progress was made: step again.
    Again,
    /// Nothing more to do until an event or a deadline.
    Wait,
    /// Close the client now.
    Close,
}

impl crate::token::Tokened for Client {
    fn token(&self) -> Token {
        self.token
    }
}

impl Client {
    /// A freshly accepted client.
    pub fn new(token: Token, sock: Sock, peer: SocketAddr) -> Client {
        Client {
            token,
            sock,
            peer: Peer::new(&peer),
            rbuf: None,
            wbuf: None,
            phase: Phase::Head { started: None },
            deadline: Deadline::default(),
            admin: false,
            counted: false,
        }
    }

    /// The client's real address, from a PROXY header: replaces the socket's peer
    /// for everything that follows.
    pub fn set_peer(&mut self, addr: SocketAddr) {
        self.peer = Peer::new(&addr);
    }

    /// The one place a session changes phase. Moving out of the old phase (to take its
    /// exchange or tunnel) goes through `take_phase`, which is a change to `Closed`.
    #[inline]
    pub fn set_phase(&mut self, next: Phase) -> Phase {
        log::trace!("{}: {} => {}", self.peer, self.phase.name(), next.name());
        std::mem::replace(&mut self.phase, next)
    }

    /// Takes the phase out (to move its exchange or tunnel), leaving `Closed`.
    pub fn take_phase(&mut self) -> Phase {
        self.set_phase(Phase::Closed)
    }

    /// This client as a checked reference.
    pub fn cref(&self, index: usize) -> CRef {
        CRef {
            index,
            token: self.token,
        }
    }
}

impl Client {
    /// The peer IP for logs.
    pub fn ip_str(&self) -> &str {
        self.peer.ip_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_closes_idle_sessions_and_lets_the_rest_finish() {
        let idle = Phase::Head { started: None };
        assert_eq!(idle.on_drain(false), Drain::Close);
        assert_eq!(idle.on_drain(true), Drain::Finish, "a request is arriving");
        let reading = Phase::Head {
            started: Some(Instant::now()),
        };
        assert_eq!(reading.on_drain(false), Drain::Finish);
        let closing = Phase::Closing { linger: false };
        assert_eq!(closing.on_drain(false), Drain::Finish);
        let lingering = Phase::Lingering { discarded: 0 };
        assert_eq!(lingering.on_drain(false), Drain::Finish);
    }

    #[test]
    fn a_drain_schedules_tunnels() {
        let t = Tunnel::new(
            crate::token::BRef {
                index: 1,
                token: Token(1),
            },
            crate::group::SrvId {
                group: 1,
                server: 0,
            },
            0,
            1024,
            Instant::now(),
        );
        assert_eq!(Phase::Tunnel(t).on_drain(true), Drain::Tunnel);
    }

    #[test]
    fn phase_names() {
        assert_eq!(Phase::Closed.name(), "closed");
        assert_eq!(Phase::Head { started: None }.name(), "head");
    }
}
