//! Non-blocking socket helpers with edge-triggered readiness bookkeeping.
//!
//! Every socket is registered once for READABLE | WRITABLE and never re-registered:
//! mio delivers an edge when readiness appears, and `Sock` remembers it in `readable`
//! / `writable` until a call returns `WouldBlock`. Backpressure is therefore "do not
//! read now", never "forget that the socket was readable": when buffer space frees up
//! the owner reads again without waiting for an event that would never come.
//! `WouldBlock` never leaves this module and `Interrupted` is retried here.
//!
//! `Stream` and `Listener` are mio's TCP types. With the `sim` feature (fuzzing and
//! the deterministic scenario tests only) they are `crate::simnet`'s in-memory ones with
//! the same methods, so the reactor above runs unchanged on a simulated network.

use crate::buf::{Buf, BufPool};
use std::io::{self, Read, Write};
use std::net::SocketAddr;

#[cfg(feature = "tls")]
pub mod wire;

#[cfg(all(target_os = "linux", not(feature = "sim")))]
use crate::splice;

#[cfg(feature = "sim")]
pub use crate::simnet::{Listener, Stream};
#[cfg(not(feature = "sim"))]
pub use mio::net::{TcpListener as Listener, TcpStream as Stream};

pub use crate::ready::Ready;

/// What a read or write step achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    /// Moved this many bytes (maybe 0 when there was nothing to do).
    Moved(usize),
    /// The peer closed its sending side (read returned 0).
    Eof,
    /// A hard error (reset, broken pipe...).
    Error(io::ErrorKind),
}

/// A stream plus its remembered readiness.
pub struct Sock {
    /// The socket.
    pub stream: Stream,
    /// Readiness seen and not yet drained.
    pub readable: bool,
    /// Writability seen and not yet exhausted.
    pub writable: bool,
    /// The peer's FIN was read.
    pub eof: bool,
    /// An event reported the peer's FIN: a short read no longer proves the queue is empty.
    pub hup: bool,
    /// TLS on this socket: `fill` and `flush` move plaintext through it.
    #[cfg(feature = "tls")]
    pub tls: Option<Box<wire::Wire>>,
    /// Bytes spliced toward this socket and not yet sent (`splice_step`); sent before
    /// anything in the write buffer. Given back to the pool as soon as it is empty.
    #[cfg(all(target_os = "linux", not(feature = "sim")))]
    pub pipe: Option<Box<splice::Pipe>>,
    /// Registered without read interest: the other side of its exchange or tunnel is
    /// full (`reactor/interest.rs`). `readable` keeps what was seen.
    pub masked: bool,
}

impl Sock {
    /// Wraps a freshly accepted or connecting stream.
    pub fn new(stream: Stream) -> Sock {
        Sock {
            stream,
            readable: false,
            writable: false,
            eof: false,
            hup: false,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(all(target_os = "linux", not(feature = "sim")))]
            pipe: None,
            masked: false,
        }
    }

    /// True when the socket carries TLS.
    #[inline]
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Bytes wait for this socket (`wbuf`, its write buffer, is held) and its last write
    /// would block: a writable edge will come. A socket with spliced bytes pending always
    /// holds a `wbuf` (see `splice_step`).
    #[inline]
    pub fn blocked(&self, wbuf: &Option<Buf>) -> bool {
        wbuf.is_some() && !self.writable
    }

    /// Records the readiness an event reports.
    pub fn on_event(&mut self, ready: Ready) {
        self.readable |= ready.readable;
        self.hup |= ready.hup;
        self.writable |= ready.writable;
    }

    /// Reads into `buf` until it is full or the socket would block.
    pub fn read_into(&mut self, buf: &mut Buf) -> Io {
        let mut total = 0;
        while self.readable && !self.eof {
            let spare = buf.spare();
            if spare.is_empty() {
                break;
            }
            let want = spare.len();
            match self.stream.read(spare) {
                Ok(0) => {
                    self.eof = true;
                    return if total > 0 { Io::Moved(total) } else { Io::Eof };
                }
                Ok(n) => {
                    buf.commit(n);
                    total += n;
                    // A short read means the kernel queue is empty: skip the
                    // extra read() that would only return WouldBlock.
                    if n < want && !self.hup {
                        self.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return if total > 0 {
                        Io::Moved(total)
                    } else {
                        Io::Error(e.kind())
                    }
                }
            }
        }
        Io::Moved(total)
    }

    /// Writes from the front of `buf` until it is empty or the socket would block.
    pub fn write_from(&mut self, buf: &mut Buf) -> Io {
        let mut total = 0;
        while self.writable && !buf.is_empty() {
            match self.stream.write(buf.bytes()) {
                Ok(0) => return Io::Error(io::ErrorKind::WriteZero),
                Ok(n) => {
                    buf.consume(n);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Io::Error(e.kind()),
            }
        }
        Io::Moved(total)
    }
}

/// Reads from a socket into an optional pooled buffer, taking one when needed.
/// Inlined: most calls find the socket not readable and return at once.
#[inline]
pub(crate) fn fill(sock: &mut Sock, slot: &mut Option<Buf>, bufs: &mut BufPool) -> Io {
    #[cfg(feature = "tls")]
    if sock.tls.is_some() {
        return wire::fill(sock, slot, bufs);
    }
    if !sock.readable || sock.eof {
        return Io::Moved(0);
    }
    fill_now(sock, slot, bufs)
}

fn fill_now(sock: &mut Sock, slot: &mut Option<Buf>, bufs: &mut BufPool) -> Io {
    let buf = slot.get_or_insert_with(|| bufs.get());
    let r = sock.read_into(buf);
    bufs.release_if_empty(slot);
    r
}

/// Writes an optional buffer to a socket, returning the buffer when it empties.
/// Inlined, as `fill`: a socket with a pipe (bulk bytes spliced) takes the cold path.
#[inline]
pub(crate) fn flush(sock: &mut Sock, slot: &mut Option<Buf>, bufs: &mut BufPool) -> Io {
    #[cfg(feature = "tls")]
    if sock.tls.is_some() {
        return wire::flush(sock, slot, bufs);
    }
    #[cfg(all(target_os = "linux", not(feature = "sim")))]
    if sock.pipe.is_some() {
        return flush_pipe_first(sock, slot, bufs);
    }
    let Some(buf) = slot.as_mut() else {
        return Io::Moved(0);
    };
    let r = sock.write_from(buf);
    bufs.release_if_empty(slot);
    r
}

/// Before a half-close or close after the last response: a TLS socket queues close_notify
/// and sends it. True when nothing is left to send (always, for a plain socket).
#[inline]
pub(crate) fn finish(sock: &mut Sock, bufs: &mut BufPool) -> bool {
    #[cfg(feature = "tls")]
    if sock.tls.is_some() {
        return wire::finish(sock, bufs);
    }
    let _ = (sock, bufs);
    true
}

/// Appends bytes to an optional buffer (taking one, growing it if the bytes cannot fit).
pub(crate) fn append(slot: &mut Option<Buf>, bufs: &mut BufPool, bytes: &[u8]) {
    let buf = slot.get_or_insert_with(|| bufs.get());
    if buf.space() < bytes.len() {
        buf.grow(buf.len() + bytes.len());
    }
    buf.push(bytes);
}

/// Moves the first `n` bytes of `src` to the end of `dst`. When `dst` holds nothing
/// and `n` is all that `src` holds, the buffer itself changes hands and no byte is
/// copied: a body or a WebSocket stream relayed as it was read costs a pointer move
/// per read, not a `memcpy` (the source takes a fresh buffer at its next read).
#[inline]
pub(crate) fn relay(src: &mut Option<Buf>, dst: &mut Option<Buf>, n: usize, bufs: &mut BufPool) {
    let Some(s) = src.as_mut() else {
        return;
    };
    if n == 0 {
        return;
    }
    if n == s.len() && dst.as_ref().is_none_or(Buf::is_empty) {
        bufs.release(dst);
        *dst = src.take();
        return;
    }
    append(dst, bufs, &s.bytes()[..n]);
    s.consume(n);
    bufs.release_if_empty(src);
}

pub(crate) fn space(slot: &Option<Buf>) -> usize {
    slot.as_ref().map_or(crate::buf::BUF_SIZE, Buf::space)
}

/// Known payload bytes below which a body or frame is copied, not spliced: a splice costs
/// a pipe and two calls per pass, worth it only for bytes that would take several reads.
pub(crate) const SPLICE_MIN: u64 = crate::buf::BUF_SIZE as u64;

/// What `splice_step` did.
pub(crate) struct Spliced {
    /// Bytes taken from the source (in the destination's pipe, or already sent).
    pub taken: usize,
    /// Anything moved, in or out.
    pub progress: bool,
    /// The source: `Moved` while open, `Eof` (its FIN was read), or `Error`.
    pub src: Io,
    /// Writing to the destination failed.
    pub dst_failed: bool,
}

/// Moves up to `max` bytes src -> dst through `dst`'s pipe, inside the kernel, for bytes
/// that need no inspection (the caller knows `max` from the body decoder or the frame
/// tracker, so no byte past them is ever taken). None: splice is not used here (TLS on a
/// side, no pipe to be had, unsupported): the caller copies, as without splice.
///
/// Order: what `dst` already has queued (pipe, then `dst_wbuf`) goes first, and while it
/// cannot leave nothing more is read (backpressure: the source's readiness is kept, not
/// forgotten). Each pass fills the pipe from the source and drains it to `dst`; a pipe left
/// holding bytes stays on `dst` (and `dst_wbuf` holds an empty buffer so "`wbuf` is None"
/// keeps meaning "all sent"), a drained one goes back to the pool.
#[cfg(all(target_os = "linux", not(feature = "sim")))]
#[inline(never)]
pub(crate) fn splice_step(
    src: &mut Sock,
    dst: &mut Sock,
    dst_wbuf: &mut Option<Buf>,
    max: u64,
    bufs: &mut BufPool,
) -> Option<Spliced> {
    use std::os::fd::AsRawFd;
    if src.is_tls() || dst.is_tls() || (dst.pipe.is_none() && !bufs.pipes.available()) {
        return None;
    }
    let mut s = Spliced {
        taken: 0,
        progress: false,
        src: Io::Moved(0),
        dst_failed: false,
    };
    match flush(dst, dst_wbuf, bufs) {
        Io::Error(_) => s.dst_failed = true,
        Io::Moved(n) => s.progress = n > 0,
        Io::Eof => {}
    }
    if s.dst_failed || dst_wbuf.is_some() {
        return Some(s);
    }
    let mut left = max;
    // Every pass starts with an empty pipe, so a WouldBlock from `splice_in` means the
    // source had nothing (not "the pipe is full").
    while left > 0 && src.readable && !src.eof {
        let pipe = match dst.pipe.take().or_else(|| bufs.pipes.take()) {
            Some(p) => dst.pipe.insert(p),
            None => break,
        };
        let want = usize::try_from(left).unwrap_or(usize::MAX);
        match splice::splice_in(src.stream.as_raw_fd(), pipe, want) {
            Ok(0) => {
                src.eof = true;
                s.src = Io::Eof;
            }
            Ok(n) => {
                s.taken += n;
                s.progress = true;
                left -= n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => src.readable = false,
            Err(e) if splice::unsupported(&e) => {
                log::warn!("splice(2) is not supported here ({e}): copying instead");
                bufs.pipes.switch_off();
            }
            Err(e) => s.src = Io::Error(e.kind()),
        }
        match flush_pipe(dst, bufs) {
            Io::Error(_) => s.dst_failed = true,
            Io::Moved(n) => s.progress |= n > 0,
            Io::Eof => {}
        }
        if s.dst_failed || dst.pipe.is_some() || bufs.pipes.off {
            break;
        }
    }
    if dst.pipe.is_some() && dst_wbuf.is_none() {
        *dst_wbuf = Some(bufs.get());
    }
    if bufs.pipes.off && s.taken == 0 {
        return None;
    }
    Some(s)
}

/// Without splice(2) (another OS, or the simulated network): always copy.
#[cfg(not(all(target_os = "linux", not(feature = "sim"))))]
#[inline]
pub(crate) fn splice_step(
    _src: &mut Sock,
    _dst: &mut Sock,
    _dst_wbuf: &mut Option<Buf>,
    _max: u64,
    _bufs: &mut BufPool,
) -> Option<Spliced> {
    None
}

/// Sends what the socket's pipe holds; a drained pipe goes back to the pool.
#[cfg(all(target_os = "linux", not(feature = "sim")))]
fn flush_pipe(sock: &mut Sock, bufs: &mut BufPool) -> Io {
    use std::os::fd::AsRawFd;
    let Some(pipe) = sock.pipe.as_mut() else {
        return Io::Moved(0);
    };
    let mut total = 0;
    while !pipe.is_empty() && sock.writable {
        match splice::splice_out(pipe, sock.stream.as_raw_fd(), usize::MAX) {
            Ok(0) => return Io::Error(io::ErrorKind::WriteZero),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => sock.writable = false,
            Err(e) => return Io::Error(e.kind()),
        }
    }
    if pipe.is_empty() {
        drop_pipe(sock, bufs);
    }
    Io::Moved(total)
}

/// `flush` for a socket with a pipe: the pipe's bytes were queued first, so they go first;
/// while it still holds some, `slot` stays `Some` (an empty buffer if need be).
#[cfg(all(target_os = "linux", not(feature = "sim")))]
#[cold]
#[inline(never)]
fn flush_pipe_first(sock: &mut Sock, slot: &mut Option<Buf>, bufs: &mut BufPool) -> Io {
    let n = match flush_pipe(sock, bufs) {
        Io::Moved(n) => n,
        other => return other,
    };
    if sock.pipe.is_some() {
        slot.get_or_insert_with(|| bufs.get());
        return Io::Moved(n);
    }
    let Some(buf) = slot.as_mut() else {
        return Io::Moved(n);
    };
    let r = sock.write_from(buf);
    bufs.release_if_empty(slot);
    match r {
        Io::Moved(m) => Io::Moved(n + m),
        other => other,
    }
}

/// Before a socket is dropped: its pipe goes back to the pool (closed if it holds bytes,
/// which no one will send now).
#[inline]
pub(crate) fn drop_pipe(sock: &mut Sock, bufs: &mut BufPool) {
    #[cfg(all(target_os = "linux", not(feature = "sim")))]
    if let Some(p) = sock.pipe.take() {
        bufs.pipes.put(p);
    }
    let _ = (sock, bufs);
}

/// For `map_err` on a listener's bind: the error names the address and the keys that
/// set it (`cannot listen on 127.0.0.1:8080 ([frontend] host, port): Address already
/// in use`), so a start-up failure says which listener and where to change it.
pub fn listen_error(
    addr: SocketAddr,
    section: &'static str,
) -> impl FnOnce(io::Error) -> io::Error {
    move |e| {
        let what = format!("cannot listen on {addr} ([{section}] host, port): {e}");
        io::Error::new(e.kind(), what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(pool: &mut BufPool, bytes: &[u8]) -> Option<Buf> {
        let mut b = pool.get();
        b.push(bytes);
        Some(b)
    }

    #[test]
    fn relay_hands_a_whole_buffer_over_without_copying() {
        let mut pool = BufPool::default();
        let mut src = holding(&mut pool, b"payload");
        let at = src.as_ref().unwrap().bytes().as_ptr();
        let mut dst = None;
        relay(&mut src, &mut dst, 7, &mut pool);
        assert!(src.is_none());
        let d = dst.as_ref().unwrap();
        assert_eq!(d.bytes(), b"payload");
        assert_eq!(d.bytes().as_ptr(), at, "the same buffer, not a copy");
        assert_eq!(pool.outstanding, 1);
    }

    #[test]
    fn relay_takes_an_empty_destination_buffer_back() {
        let mut pool = BufPool::default();
        let mut src = holding(&mut pool, b"abc");
        let mut dst = Some(pool.get());
        relay(&mut src, &mut dst, 3, &mut pool);
        assert_eq!(dst.as_ref().unwrap().bytes(), b"abc");
        assert!(src.is_none());
        assert_eq!(pool.outstanding, 1, "the empty one went back to the pool");
    }

    #[test]
    fn relay_copies_a_part_or_behind_queued_bytes() {
        let mut pool = BufPool::default();
        // Part of the source: the rest stays where it is (a frame or body boundary).
        let mut src = holding(&mut pool, b"head|rest");
        let mut dst = None;
        relay(&mut src, &mut dst, 5, &mut pool);
        assert_eq!(dst.as_ref().unwrap().bytes(), b"head|");
        assert_eq!(src.as_ref().unwrap().bytes(), b"rest");
        // All of it, but the destination already holds bytes: appended in order.
        relay(&mut src, &mut dst, 4, &mut pool);
        assert_eq!(dst.as_ref().unwrap().bytes(), b"head|rest");
        assert!(
            src.is_none(),
            "an emptied source buffer goes back to the pool"
        );
        assert_eq!(pool.outstanding, 1);
        // Nothing to move: nothing changes.
        relay(&mut src, &mut dst, 0, &mut pool);
        assert_eq!(dst.as_ref().unwrap().bytes(), b"head|rest");
    }
}
