//! DNS discovery's IO half: the reactor carries out what `discovery::Discovery`
//! decides. Each query try gets its own non-blocking UDP socket (a fresh ephemeral
//! port from the kernel, so the source port is unpredictable per query) or, for a
//! truncated answer, a TCP connection; both are registered under `Kind::Dns`. A
//! watch has at most one socket: a retry closes the previous one. The sockets are
//! not connected, so every datagram reaches the resolver, which accepts an answer
//! only when its ID, question and source address match. One deadline
//! (`Owner::Dns`) follows `Discovery::next_deadline`. When a name's data change,
//! each group is expanded again and applied through the reload path
//! (`apply_group`); a server whose address vanished drains, and its tunnels get
//! 1001 after `drain_timeout`. A reload (`dns_reload`) applies `[resolver]` and the
//! server names at once (see `resolver` for queries in flight).
//!
//! With `workers > 1` the first reactor resolves for all (`lead_discovery`): after a
//! flush that changed something it wakes the others (`StopHandle::dns_published`),
//! which take the data (`dns_sync`) and apply it the same way; they open no DNS socket.

use super::Reactor;
use crate::discovery::{Feed, InitState};
use crate::group::SrvId;
use crate::resolver::{Transmit, Via, WatchId};
use crate::session::Phase;
use crate::timer::Owner;
use crate::token::Kind;
use log::{debug, info};
use mio::net::{TcpStream, UdpSocket};
use mio::{Events, Interest, Token};
use protocol::dns::tcp_unframe;
use protocol::Status;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// Largest DNS message read over UDP (RFC 1035 allows 512 without EDNS; room for more).
const UDP_MAX: usize = 4096;

/// One query try's socket.
pub(crate) struct DnsSock {
    token: Token,
    watch: WatchId,
    to: SocketAddr,
    conn: Conn,
}

enum Conn {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        /// The framed query and how much of it was written.
        out: Vec<u8>,
        sent: usize,
        /// The framed answer so far.
        got: Vec<u8>,
    },
}

impl DnsSock {
    pub(crate) fn token(&self) -> Token {
        self.token
    }
}

impl Reactor {
    /// Sends what the resolver wants sent, applies what changed, and re-arms the
    /// deadline. Called after every DNS event and timer, and at start.
    pub(crate) fn dns_flush(&mut self) {
        let mut changed = false;
        loop {
            let mut busy = false;
            while let Some(t) = self.discovery.poll_transmit(self.now) {
                busy = true;
                self.dns_send(t);
            }
            if self.discovery.process_events(self.now) {
                busy = true;
                changed = true;
                self.apply_discovery();
            }
            if !busy {
                break;
            }
        }
        if self.discovery.publish(changed) {
            for peer in self.peers() {
                peer.dns_published();
            }
        }
        let at = self.discovery.next_deadline();
        self.dns_deadline.set(at, Owner::Dns, &mut self.timers);
    }

    /// Makes this reactor resolve for the other workers; give the feed to each of
    /// them (`follow_discovery`) and their handles to `set_peers`, before `run`.
    pub fn lead_discovery(&mut self) -> Feed {
        self.discovery.lead()
    }

    /// Makes this reactor take its DNS data from the resolving worker's `feed`
    /// instead of querying (before `run`).
    pub fn follow_discovery(&mut self, feed: Feed) {
        self.discovery.follow(feed);
        self.dns_sync();
    }

    /// A follower: applies the resolving worker's latest data, when it is new.
    pub(crate) fn dns_sync(&mut self) {
        if self.discovery.sync() {
            self.apply_discovery();
        }
    }

    /// A reload: new `[resolver]` settings and server names. The sockets of names no
    /// longer watched close; a restarted query's old socket closes when it is sent again.
    pub(crate) fn dns_reload(&mut self, new: &crate::config::Config) {
        if new.resolver != self.cfg.resolver {
            info!("[resolver] changed: applied from the next query");
        }
        self.discovery.reconfigure(&new.resolver, self.now);
        self.discovery
            .set_templates([&new.http, &new.websocket], self.now);
        let stale: Vec<usize> = self
            .dns_socks
            .iter()
            .filter(|(_, d)| !self.discovery.watching(d.watch))
            .map(|(i, _)| i)
            .collect();
        for i in stale {
            self.dns_close(i);
        }
    }

    /// The `Owner::Dns` deadline came due.
    pub(crate) fn on_dns_timeout(&mut self) {
        self.discovery.on_timeout(self.now);
        self.dns_flush();
    }

    fn dns_close_watch(&mut self, watch: WatchId) {
        let found = self.dns_socks.iter().find(|(_, d)| d.watch == watch);
        if let Some((i, _)) = found {
            self.dns_close(i);
        }
    }

    fn dns_close(&mut self, i: usize) {
        if !self.dns_socks.contains(i) {
            return;
        }
        let mut d = self.dns_socks.remove(i);
        let registry = self.poll.registry();
        let _ = match &mut d.conn {
            Conn::Udp(s) => registry.deregister(s),
            Conn::Tcp { stream, .. } => registry.deregister(stream),
        };
    }

    fn dns_send(&mut self, t: Transmit) {
        self.dns_close_watch(t.watch);
        let index = self.dns_socks.vacant_key();
        let token = self.next_token(index, Kind::Dns);
        let conn = match t.via {
            Via::Udp => udp_query(&t, token, self.poll.registry()).map(Conn::Udp),
            Via::Tcp => tcp_query(t.to, token, self.poll.registry()).map(|stream| Conn::Tcp {
                stream,
                out: t.bytes,
                sent: 0,
                got: Vec::new(),
            }),
        };
        match conn {
            Ok(conn) => {
                let d = DnsSock {
                    token,
                    watch: t.watch,
                    to: t.to,
                    conn,
                };
                self.dns_socks.insert(d);
            }
            // The try's deadline retries it.
            Err(e) => debug!("dns query to {}: {e}", t.to),
        }
    }

    /// An event on DNS socket `i`: read answers (and finish a TCP query's write).
    pub(crate) fn on_dns_event(&mut self, i: usize) {
        let now = self.now;
        let to = self.dns_socks[i].to;
        let done = match &mut self.dns_socks[i].conn {
            Conn::Udp(s) => {
                let mut buf = [0u8; UDP_MAX];
                let mut accepted = false;
                loop {
                    match s.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            accepted |= self.discovery.handle_udp(from, &buf[..n], now);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                accepted
            }
            Conn::Tcp {
                stream,
                out,
                sent,
                got,
            } => match tcp_step(stream, out, sent, got) {
                Ok(Some(msg)) => {
                    self.discovery.handle_tcp(to, &msg, now);
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    debug!("dns tcp {to}: {e}");
                    true
                }
            },
        };
        if done {
            self.dns_close(i);
        }
        self.dns_flush();
    }

    /// Expands both groups again and applies what changed (new servers, drained ones).
    fn apply_discovery(&mut self) {
        let now = self.now;
        for g in 0..self.groups.len() {
            let cfg = self.discovery.expand(g);
            if cfg.servers == self.groups[g].cfg.servers {
                continue;
            }
            let removed = self.apply_group(g, &cfg);
            let at = now + self.cfg.frontend.drain_timeout;
            for s in removed {
                self.close_tunnels_of(
                    SrvId {
                        group: g,
                        server: s,
                    },
                    at,
                );
            }
        }
    }

    /// Tunnels of a server that DNS removed: 1001 at `at` unless they end before.
    fn close_tunnels_of(&mut self, srv: SrvId, at: Instant) {
        let tunnels: Vec<_> = self
            .clients
            .iter()
            .filter(|(_, c)| matches!(&c.phase, Phase::Tunnel(t) if t.srv == srv))
            .map(|(i, c)| c.cref(i))
            .collect();
        self.schedule_tunnel_closes(tunnels, at);
    }

    /// Start-up with `init = required`: turns the loop for DNS only until every name
    /// has addresses (bounded by the resolver's timeout x attempts x nameservers per
    /// name); a name that fails stops the start with a message naming its key.
    /// Listener readiness seen meanwhile is kept for after.
    pub(crate) fn resolve_at_start(&mut self, events: &mut Events) -> io::Result<()> {
        self.now = Instant::now();
        self.dns_flush();
        loop {
            match self.discovery.init_state() {
                InitState::Done => return Ok(()),
                InitState::Failed(msg) => return Err(io::Error::other(msg)),
                InitState::Waiting => {}
            }
            if self.stop_requested() {
                return Ok(());
            }
            let timeout = self
                .timers
                .next()
                .map(|at| at.saturating_duration_since(self.now))
                .unwrap_or(super::MAX_POLL_WAIT)
                .min(super::MAX_POLL_WAIT);
            match self.poll.poll(events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.now = Instant::now();
            // Only the DNS feed: a drain or reload asked meanwhile waits for the start.
            if self.requests.take_one(super::DNS) {
                self.dns_sync();
            }
            let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
            for token in tokens {
                self.on_start_event(token);
            }
            if self.timers.next().is_some_and(|at| at <= self.now) {
                self.fire_timers();
            }
        }
    }
}

fn udp_query(t: &Transmit, token: Token, registry: &mio::Registry) -> io::Result<UdpSocket> {
    let any: SocketAddr = match t.to {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let mut s = UdpSocket::bind(any)?;
    s.send_to(&t.bytes, t.to)?;
    registry.register(&mut s, token, Interest::READABLE)?;
    Ok(s)
}

fn tcp_query(to: SocketAddr, token: Token, registry: &mio::Registry) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect(to)?;
    registry.register(&mut s, token, Interest::READABLE | Interest::WRITABLE)?;
    Ok(s)
}

/// Writes what is left of the query, reads what arrived; `Some` = one whole answer
/// (unframed). An error or EOF before a whole answer is `Err`.
fn tcp_step(
    stream: &mut TcpStream,
    out: &[u8],
    sent: &mut usize,
    got: &mut Vec<u8>,
) -> io::Result<Option<Vec<u8>>> {
    while *sent < out.len() {
        match stream.write(&out[*sent..]) {
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut buf = [0u8; UDP_MAX];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.len() > 2 + usize::from(u16::MAX) {
                    return Err(io::ErrorKind::InvalidData.into());
                }
                if let Status::Complete(span) = tcp_unframe(got) {
                    return Ok(Some(span.get(got).to_vec()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
