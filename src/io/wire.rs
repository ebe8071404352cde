//! TLS on a socket (feature `tls`): what `io::fill` / `io::flush` do when a [`Sock`] carries
//! a [`Wire`], so every session (client or backend) reads and writes plaintext through the
//! same two calls whether its socket is plain or TLS.
//!
//! A `Wire` is a [`TlsSession`] plus the socket's EOF bookkeeping. The session holds the
//! ciphertext read and not yet decrypted (a record-sized buffer: a record is decrypted in
//! place once it is whole), its output records and, rarely, decrypted bytes the read buffer
//! could not take. Every buffer comes from the free list and goes back the moment it is empty, so
//! an idle TLS keep-alive connection holds no buffer: only the rustls connection state
//! (keys, sequence numbers) in its `Box`.
//!
//! Invariants:
//! - `Sock::eof` means the plaintext stream ended: the socket's FIN (or close_notify) arrived
//!   *and* every decrypted byte was delivered. The raw FIN is `Wire::raw_eof`.
//! - Handshake output is sent from `fill` as well as from `flush`: a ClientHello read in
//!   `fill` is answered before the session goes back to waiting.
//! - While ciphertext is still waiting for the socket, `flush` keeps the (empty) plaintext
//!   slot, so "`wbuf` is None" keeps meaning "everything is on the wire" for the sessions.

use super::{Io, Sock};
use crate::buf::{Buf, BufPool};
use crate::tls::{TlsError, TlsSession};

/// The TLS side of one socket.
pub struct Wire {
    /// The rustls connection and its output.
    pub session: TlsSession,
    /// The socket's FIN was read (the plaintext EOF comes once everything is delivered).
    raw_eof: bool,
    /// close_notify was received and the plaintext before it delivered.
    plain_eof: bool,
    /// close_notify was asked for.
    notified: bool,
    /// The handshake's end was reported by [`Wire::opened`].
    reported: bool,
}

impl Wire {
    /// Wraps a fresh session (server side after accept, client side after connect).
    pub fn new(session: TlsSession) -> Box<Wire> {
        Box::new(Wire {
            session,
            raw_eof: false,
            plain_eof: false,
            notified: false,
            reported: false,
        })
    }

    /// True once, the first time it is asked after the handshake completed (the reactor
    /// counts the handshake and re-arms the session's deadline).
    pub fn opened(&mut self) -> bool {
        if self.reported || !self.session.is_open() {
            return false;
        }
        self.reported = true;
        true
    }

    /// Gives every buffer back (the socket is closing).
    pub fn release(&mut self, bufs: &mut BufPool) {
        self.session.release(bufs);
    }

    /// Buffers held (for the consistency checks and the memory figures).
    pub fn buffers(&self) -> usize {
        self.session.buffers()
    }
}

/// `io::fill` for a TLS socket: decrypted bytes into `slot`, reading and feeding ciphertext
/// as needed, then sends whatever the handshake produced.
pub(super) fn fill(sock: &mut Sock, slot: &mut Option<Buf>, bufs: &mut BufPool) -> Io {
    let Some(mut w) = sock.tls.take() else {
        return Io::Moved(0);
    };
    let r = fill_wire(sock, &mut w, slot, bufs);
    sock.tls = Some(w);
    r
}

fn fill_wire(sock: &mut Sock, w: &mut Wire, slot: &mut Option<Buf>, bufs: &mut BufPool) -> Io {
    let mut total = 0;
    let mut failed = None;
    // The loop stopped because the plaintext has nowhere to go (not an EOF yet).
    let mut blocked = false;
    loop {
        let buf = slot.get_or_insert_with(|| bufs.get());
        let r = w.session.read(buf, bufs);
        match r {
            Ok(n) => total += n,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        if w.session.has_plain() || buf.space() == 0 {
            blocked = true;
            break;
        }
        if w.session.peer_closed() {
            w.plain_eof = true;
            break;
        }
        if !sock.readable || w.raw_eof {
            break;
        }
        let Some(cin) = w.session.input(bufs) else {
            failed = Some(TlsError::Broken);
            break;
        };
        // `read_into` marks the raw FIN in `sock.eof`; under TLS that flag is the
        // plaintext EOF, set below once everything is delivered.
        let r = sock.read_into(cin);
        if sock.eof {
            sock.eof = false;
            w.raw_eof = true;
        }
        w.session.input_done(bufs);
        match r {
            Io::Error(kind) => {
                bufs.release_if_empty(slot);
                return Io::Error(kind);
            }
            Io::Moved(0) if !w.raw_eof => break,
            _ => {}
        }
    }
    bufs.release_if_empty(slot);
    // The handshake's next flight, or the alert of a failure.
    let out = pump(sock, w, bufs);
    if failed.is_some() {
        return Io::Error(std::io::ErrorKind::InvalidData);
    }
    if let Io::Error(kind) = out {
        return Io::Error(kind);
    }
    let ended = w.plain_eof || (w.raw_eof && !blocked);
    if ended && !sock.eof {
        w.session.on_eof();
        sock.eof = true;
        if total == 0 {
            return Io::Eof;
        }
    }
    Io::Moved(total)
}

/// `io::flush` for a TLS socket: plaintext from `slot` into the session, records to the
/// socket. Returns the plaintext bytes taken.
pub(super) fn flush(sock: &mut Sock, slot: &mut Option<Buf>, bufs: &mut BufPool) -> Io {
    let Some(mut w) = sock.tls.take() else {
        return Io::Moved(0);
    };
    let r = flush_wire(sock, &mut w, slot, bufs);
    sock.tls = Some(w);
    r
}

fn flush_wire(sock: &mut Sock, w: &mut Wire, slot: &mut Option<Buf>, bufs: &mut BufPool) -> Io {
    let mut total = 0;
    loop {
        let n = match slot.as_mut() {
            Some(b) => w.session.write(b, bufs),
            None => 0,
        };
        total += n;
        let sent = match pump(sock, w, bufs) {
            Io::Error(kind) => return Io::Error(kind),
            Io::Moved(k) => k,
            Io::Eof => 0,
        };
        // Records that went out make room for more: stop only when neither moved.
        if (n == 0 && sent == 0) || slot.as_ref().is_none_or(Buf::is_empty) {
            break;
        }
    }
    if !w.session.wants_write() {
        bufs.release_if_empty(slot);
    }
    if let Some(TlsError::Broken) = w.session.failure() {
        return Io::Error(std::io::ErrorKind::InvalidData);
    }
    Io::Moved(total)
}

/// Asks for close_notify once and sends what it can; true when nothing is left to send.
pub(super) fn finish(sock: &mut Sock, bufs: &mut BufPool) -> bool {
    let Some(mut w) = sock.tls.take() else {
        return true;
    };
    let done = finish_wire(sock, &mut w, bufs);
    sock.tls = Some(w);
    done
}

fn finish_wire(sock: &mut Sock, w: &mut Wire, bufs: &mut BufPool) -> bool {
    if !w.notified {
        w.notified = true;
        w.session.close();
    }
    let out = pump(sock, w, bufs);
    matches!(out, Io::Error(_)) || !w.session.wants_write()
}

/// Lets the session produce what it has to send and writes it, until it has no more or the
/// socket would block.
fn pump(sock: &mut Sock, w: &mut Wire, bufs: &mut BufPool) -> Io {
    let mut total = 0;
    loop {
        w.session.poll_output(bufs);
        let Some(out) = w.session.cipher() else {
            return Io::Moved(total);
        };
        let r = sock.write_from(out);
        let drained = out.is_empty();
        w.session.sent(bufs);
        match r {
            Io::Moved(n) => total += n,
            other => return other,
        }
        if !drained || !w.session.wants_write() {
            return Io::Moved(total);
        }
    }
}
