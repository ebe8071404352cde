//! An in-memory network for driving the reactor deterministically (feature `sim`).
//!
//! `Stream` and `Listener` have the methods sluice calls on mio's `TcpStream` and
//! `TcpListener`; with the feature on, `io::{Stream, Listener}` name these instead, so
//! every line of the reactor, sessions, pools and probes runs as in production, but
//! over byte queues the test owns. `sim::scenario` drives it from fuzzer bytes.
//!
//! The model keeps what the reactor depends on:
//! - edge-triggered readiness: an end gets an event when bytes, a FIN, an error or
//!   room to write appear (and on registration, if already ready), never repeated;
//! - bounded queues: a write takes what fits and returns `WouldBlock` when the peer's
//!   inbox is full, and the writer gets a writable edge when the reader makes room;
//! - connects complete only when the test answers the dial (or refuse it);
//! - closing an end with unread input resets the peer; writing to a closed peer
//!   succeeds once, then the writer is reset (the stale keep-alive race).
//!
//! State is thread-local; `reset` starts a fresh network (handles from an earlier
//! one are ignored when dropped).

pub mod spin;

pub use spin::{work, Work};

use crate::ready::Ready;
use mio::event::Source;
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};

thread_local! {
    static NET: RefCell<Net> = RefCell::new(Net::new(64 * 1024, 0));
}

fn with<R>(f: impl FnOnce(&mut Net) -> R) -> R {
    NET.with(|n| f(&mut n.borrow_mut()))
}

/// Starts a fresh network whose queues hold `cap` bytes each.
pub fn reset(cap: usize) {
    // A turn that panicked never ended: nothing counts until the next one begins.
    spin::turn_end();
    with(|n| {
        let epoch = n.epoch.wrapping_add(1);
        *n = Net::new(cap.max(1), epoch);
    });
}

/// The events the network has for registered ends, in a deterministic order; each
/// pending edge is delivered once.
pub fn take_events() -> Vec<(Token, Ready)> {
    with(Net::take_events)
}

/// Connects to a listener bound in the network (a client dialling sluice).
pub fn dial(addr: SocketAddr) -> io::Result<Stream> {
    with(|n| n.dial(addr))
}

/// The connections sluice opened that nobody answered yet, oldest first.
pub fn pending_dials() -> Vec<(usize, SocketAddr)> {
    with(|n| {
        n.dials
            .iter()
            .map(|&id| (id, n.conns[id].ends[1].addr))
            .collect()
    })
}

/// Completes the connect of dial `id`: returns the accepting side.
pub fn answer_dial(id: usize) -> Option<Stream> {
    with(|n| {
        let pos = n.dials.iter().position(|&d| d == id)?;
        n.dials.remove(pos);
        let conn = &mut n.conns[id];
        conn.connected = true;
        mark(&mut conn.ends[0], WRITABLE);
        Some(Stream {
            id,
            side: 1,
            epoch: n.epoch,
        })
    })
}

/// Refuses dial `id` (nothing listens there): the connect fails with ECONNREFUSED.
pub fn refuse_dial(id: usize) {
    with(|n| {
        let Some(pos) = n.dials.iter().position(|&d| d == id) else {
            return;
        };
        n.dials.remove(pos);
        let conn = &mut n.conns[id];
        conn.ends[1].closed = true;
        let e = &mut conn.ends[0];
        e.error = Some(ErrorKind::ConnectionRefused);
        e.reset = true;
        mark(e, READABLE | WRITABLE | HUP);
    })
}

/// Connections and listeners alive (a leak check for the test itself).
pub fn live() -> (usize, usize) {
    with(|n| (n.conns.len(), n.listeners.len()))
}

const READABLE: u8 = 1;
const WRITABLE: u8 = 2;
const HUP: u8 = 4;

struct End {
    /// Bytes this end has not read yet.
    inbox: VecDeque<u8>,
    token: Option<Token>,
    pending: u8,
    /// This end sent its FIN.
    shut_wr: bool,
    /// This end's handle is gone.
    closed: bool,
    /// This end was reset: the next read or write fails with ECONNRESET, later reads
    /// see EOF and later writes EPIPE (as Linux reports a reset once).
    reset: bool,
    reset_reported: bool,
    /// Reported once by `take_error`.
    error: Option<ErrorKind>,
    /// A write from this end found the peer's inbox full.
    blocked: bool,
    /// Registered with read interest (the reactor masks it under backpressure).
    reads: bool,
    addr: SocketAddr,
}

impl End {
    fn new(addr: SocketAddr) -> End {
        End {
            inbox: VecDeque::new(),
            token: None,
            pending: 0,
            shut_wr: false,
            closed: false,
            reset: false,
            reset_reported: false,
            error: None,
            blocked: false,
            reads: true,
            addr,
        }
    }
}

impl End {
    /// On a reset end: ECONNRESET the first time, `later` after that.
    fn reset_result(&mut self, later: io::Result<usize>) -> Option<io::Result<usize>> {
        if !self.reset {
            return None;
        }
        if std::mem::replace(&mut self.reset_reported, true) {
            Some(later)
        } else {
            Some(Err(ErrorKind::ConnectionReset.into()))
        }
    }
}

fn mark(end: &mut End, bits: u8) {
    end.pending |= wanted(end, bits);
}

/// The readiness an end's interest lets through, as epoll does: without read interest
/// only writability, and a reset (errors need no interest).
fn wanted(end: &End, bits: u8) -> u8 {
    if end.reads || end.reset {
        bits
    } else {
        bits & WRITABLE
    }
}

/// Side 0 dialled, side 1 accepted.
struct Conn {
    ends: [End; 2],
    connected: bool,
}

struct ListenState {
    addr: SocketAddr,
    token: Option<Token>,
    backlog: VecDeque<usize>,
    pending: bool,
}

struct Net {
    conns: Slab<Conn>,
    listeners: Slab<ListenState>,
    dials: VecDeque<usize>,
    cap: usize,
    next_port: u16,
    epoch: u32,
}

impl Net {
    fn new(cap: usize, epoch: u32) -> Net {
        Net {
            conns: Slab::new(),
            listeners: Slab::new(),
            dials: VecDeque::new(),
            cap,
            next_port: 40000,
            epoch,
        }
    }

    fn local_addr(&mut self) -> SocketAddr {
        self.next_port = self.next_port.wrapping_add(1).max(1024);
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.next_port)
    }

    fn dial(&mut self, addr: SocketAddr) -> io::Result<Stream> {
        let Some((li, _)) = self.listeners.iter().find(|(_, l)| l.addr == addr) else {
            return Err(ErrorKind::ConnectionRefused.into());
        };
        let from = self.local_addr();
        let id = self.conns.insert(Conn {
            ends: [End::new(from), End::new(addr)],
            connected: true,
        });
        let l = &mut self.listeners[li];
        l.backlog.push_back(id);
        l.pending = true;
        Ok(Stream {
            id,
            side: 0,
            epoch: self.epoch,
        })
    }

    fn take_events(&mut self) -> Vec<(Token, Ready)> {
        let mut out = Vec::new();
        for (_, l) in self.listeners.iter_mut() {
            if std::mem::take(&mut l.pending) {
                if let Some(t) = l.token {
                    out.push((
                        t,
                        Ready {
                            readable: true,
                            ..Ready::default()
                        },
                    ));
                }
            }
        }
        for (_, c) in self.conns.iter_mut() {
            for e in &mut c.ends {
                let bits = std::mem::take(&mut e.pending);
                if let (Some(t), true) = (e.token, bits != 0) {
                    out.push((
                        t,
                        Ready {
                            readable: bits & READABLE != 0,
                            writable: bits & WRITABLE != 0,
                            hup: bits & HUP != 0,
                        },
                    ));
                }
            }
        }
        out
    }

    /// What an end is ready for right now (epoll reports it on registration).
    fn current(&self, id: usize, side: usize) -> u8 {
        let c = &self.conns[id];
        let (me, peer) = (&c.ends[side], &c.ends[1 - side]);
        let mut bits = 0;
        if me.reset {
            return READABLE | WRITABLE | HUP;
        }
        if !me.inbox.is_empty() || peer.shut_wr || peer.closed {
            bits |= READABLE;
        }
        if peer.shut_wr || peer.closed {
            bits |= HUP;
        }
        if c.connected && peer.inbox.len() < self.cap {
            bits |= WRITABLE;
        }
        bits
    }

    fn maybe_free(&mut self, id: usize) {
        if self.conns[id].ends.iter().all(|e| e.closed) {
            self.conns.remove(id);
        }
    }
}

/// One end of an in-memory connection.
#[derive(Debug)]
pub struct Stream {
    id: usize,
    side: usize,
    epoch: u32,
}

impl Stream {
    /// Starts a connect (it completes when the test answers the dial).
    pub fn connect(addr: SocketAddr) -> io::Result<Stream> {
        with(|n| {
            let from = n.local_addr();
            let id = n.conns.insert(Conn {
                ends: [End::new(from), End::new(addr)],
                connected: false,
            });
            n.dials.push_back(id);
            Ok(Stream {
                id,
                side: 0,
                epoch: n.epoch,
            })
        })
    }

    fn with_end<R>(&self, f: impl FnOnce(&mut Net, usize, usize) -> R) -> R {
        with(|n| {
            assert_eq!(n.epoch, self.epoch, "a stream from an earlier network");
            f(n, self.id, self.side)
        })
    }

    /// Counts a socket operation against the reactor turn's budget (`spin`).
    fn count(&self, op: &'static str) {
        spin::work(Work::SocketOp, &|| {
            format!("{op} on connection {} side {}", self.id, self.side)
        });
    }

    /// Half-closes (sends a FIN).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.count("shutdown");
        if how == Shutdown::Read {
            return Ok(());
        }
        self.with_end(|n, id, side| {
            let c = &mut n.conns[id];
            if !c.ends[side].shut_wr {
                c.ends[side].shut_wr = true;
                mark(&mut c.ends[1 - side], READABLE | HUP);
            }
            Ok(())
        })
    }

    /// The pending socket error (a refused connect), reported once.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.with_end(|n, id, side| Ok(n.conns[id].ends[side].error.take().map(io::Error::from)))
    }

    /// This end's own address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.with_end(|n, id, side| Ok(n.conns[id].ends[side].addr))
    }

    /// The peer's address once connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with_end(|n, id, side| {
            let c = &n.conns[id];
            if c.ends[side].reset {
                Err(ErrorKind::ConnectionReset.into())
            } else if !c.connected {
                Err(ErrorKind::NotConnected.into())
            } else {
                Ok(c.ends[1 - side].addr)
            }
        })
    }

    /// Accepted for compatibility; there is no Nagle here.
    pub fn set_nodelay(&self, _on: bool) -> io::Result<()> {
        Ok(())
    }

    /// Closes with a reset (SO_LINGER 0): the peer's next read or write fails.
    pub fn abort(self) {
        self.with_end(|n, id, side| {
            let peer = &mut n.conns[id].ends[1 - side];
            if !peer.closed {
                peer.reset = true;
                mark(peer, READABLE | WRITABLE | HUP);
            }
            n.conns[id].ends[side].inbox.clear();
        });
    }

    /// Bytes waiting to be read by this end.
    pub fn unread(&self) -> usize {
        self.with_end(|n, id, side| n.conns[id].ends[side].inbox.len())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.count("read");
        self.with_end(|n, id, side| {
            let cap = n.cap;
            let c = &mut n.conns[id];
            if let Some(r) = c.ends[side].reset_result(Ok(0)) {
                return r;
            }
            if !c.connected {
                return Err(ErrorKind::WouldBlock.into());
            }
            let [a, b] = &mut c.ends;
            let (me, peer) = if side == 0 { (a, b) } else { (b, a) };
            if !me.inbox.is_empty() {
                let k = buf.len().min(me.inbox.len());
                for (dst, src) in buf.iter_mut().zip(me.inbox.drain(..k)) {
                    *dst = src;
                }
                if peer.blocked && me.inbox.len() < cap {
                    peer.blocked = false;
                    mark(peer, WRITABLE);
                }
                return Ok(k);
            }
            if peer.shut_wr || peer.closed {
                return Ok(0);
            }
            Err(ErrorKind::WouldBlock.into())
        })
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count("write");
        self.with_end(|n, id, side| {
            let cap = n.cap;
            let c = &mut n.conns[id];
            if let Some(r) = c.ends[side].reset_result(Err(ErrorKind::BrokenPipe.into())) {
                return r;
            }
            if c.ends[side].shut_wr {
                return Err(ErrorKind::BrokenPipe.into());
            }
            if !c.connected {
                return Err(ErrorKind::WouldBlock.into());
            }
            let [a, b] = &mut c.ends;
            let (me, peer) = if side == 0 { (a, b) } else { (b, a) };
            if peer.closed {
                // The bytes go out, the peer answers with a reset.
                me.reset = true;
                mark(me, READABLE | WRITABLE | HUP);
                return Ok(buf.len());
            }
            let room = cap.saturating_sub(peer.inbox.len());
            if room == 0 {
                me.blocked = true;
                return Err(ErrorKind::WouldBlock.into());
            }
            let k = room.min(buf.len());
            peer.inbox.extend(&buf[..k]);
            if k > 0 {
                mark(peer, READABLE);
            }
            Ok(k)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let (id, side, epoch) = (self.id, self.side, self.epoch);
        let _ = NET.try_with(|n| {
            let Ok(mut n) = n.try_borrow_mut() else {
                return;
            };
            if n.epoch != epoch || !n.conns.contains(id) {
                return;
            }
            if !n.conns[id].connected && side == 0 {
                // A connect nobody answered: it never existed for the other side.
                n.dials.retain(|&d| d != id);
                n.conns.remove(id);
                return;
            }
            let c = &mut n.conns[id];
            let [a, b] = &mut c.ends;
            let (me, peer) = if side == 0 { (a, b) } else { (b, a) };
            me.closed = true;
            me.token = None;
            if !peer.closed {
                if !me.inbox.is_empty() && !peer.reset {
                    // Closing with unread input sends a reset, not a FIN.
                    peer.reset = true;
                    mark(peer, READABLE | WRITABLE | HUP);
                } else {
                    mark(peer, READABLE | HUP);
                }
            }
            me.inbox.clear();
            n.maybe_free(id);
        });
    }
}

impl Source for Stream {
    fn register(&mut self, _: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        self.with_end(|n, id, side| {
            let bits = n.current(id, side);
            let e = &mut n.conns[id].ends[side];
            e.token = Some(token);
            e.reads = interest.is_readable();
            e.pending = wanted(e, bits);
            Ok(())
        })
    }
    fn reregister(&mut self, r: &Registry, token: Token, i: Interest) -> io::Result<()> {
        self.register(r, token, i)
    }
    fn deregister(&mut self, _: &Registry) -> io::Result<()> {
        self.with_end(|n, id, side| {
            let e = &mut n.conns[id].ends[side];
            e.token = None;
            e.pending = 0;
            Ok(())
        })
    }
}

/// A listening address in the network.
#[derive(Debug)]
pub struct Listener {
    index: usize,
    epoch: u32,
}

impl Listener {
    /// Listens on `addr` (port 0 is not special here: the test chooses addresses).
    pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
        with(|n| {
            if n.listeners.iter().any(|(_, l)| l.addr == addr) {
                return Err(ErrorKind::AddrInUse.into());
            }
            let index = n.listeners.insert(ListenState {
                addr,
                token: None,
                backlog: VecDeque::new(),
                pending: false,
            });
            Ok(Listener {
                index,
                epoch: n.epoch,
            })
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        with(|n| Ok(n.listeners[self.index].addr))
    }

    /// Takes the oldest connection from the backlog.
    pub fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        with(|n| {
            let Some(id) = n.listeners[self.index].backlog.pop_front() else {
                return Err(ErrorKind::WouldBlock.into());
            };
            let from = n.conns[id].ends[0].addr;
            Ok((
                Stream {
                    id,
                    side: 1,
                    epoch: n.epoch,
                },
                from,
            ))
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let (index, epoch) = (self.index, self.epoch);
        let _ = NET.try_with(|n| {
            let Ok(mut n) = n.try_borrow_mut() else {
                return;
            };
            if n.epoch != epoch || !n.listeners.contains(index) {
                return;
            }
            let l = n.listeners.remove(index);
            for id in l.backlog {
                // Queued connections are reset when the listener closes.
                let c = &mut n.conns[id];
                c.ends[1].closed = true;
                if !c.ends[0].closed {
                    c.ends[0].reset = true;
                    mark(&mut c.ends[0], READABLE | WRITABLE | HUP);
                }
                n.maybe_free(id);
            }
        });
    }
}

impl Source for Listener {
    fn register(&mut self, _: &Registry, token: Token, _: Interest) -> io::Result<()> {
        with(|n| {
            let l = &mut n.listeners[self.index];
            l.token = Some(token);
            l.pending = !l.backlog.is_empty();
            Ok(())
        })
    }
    fn reregister(&mut self, r: &Registry, token: Token, i: Interest) -> io::Result<()> {
        self.register(r, token, i)
    }
    fn deregister(&mut self, _: &Registry) -> io::Result<()> {
        with(|n| {
            n.listeners[self.index].token = None;
            Ok(())
        })
    }
}
