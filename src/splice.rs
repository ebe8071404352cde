//! splice(2) through a pipe (Linux): body and tunnel bytes that need no inspection move
//! socket -> pipe -> socket inside the kernel, never copied into user space.
//!
//! This is the crate's only `unsafe` code: four libc calls (pipe2, fcntl F_SETPIPE_SZ, and
//! splice in each direction) behind a safe API. std and mio have no splice, pipe2 or
//! F_SETPIPE_SZ. A `Pipe` owns both descriptors (`OwnedFd`: closed on drop) and counts the
//! bytes it holds; `splice_in` / `splice_out` never block (SPLICE_F_NONBLOCK on a
//! non-blocking pipe and socket) and report `WouldBlock` as an error for the caller's
//! readiness bookkeeping (`io::splice_step`).
//!
//! `PipePool` is the reactor's bounded supply: a pipe is taken when a stream starts to
//! splice and given back the moment it is empty, so an idle connection holds none; at most
//! `MAX_PIPES` exist at once (then the caller copies, as without splice). A pipe that still
//! holds bytes belongs to its destination socket until drained, or is closed with it.
//! Where splice is not supported (EINVAL, ENOSYS: an old kernel, a socket type that cannot
//! splice) the pool is switched off for good and every stream copies.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Bytes a pipe is asked to hold (F_SETPIPE_SZ). Linux's default is 64 KiB (16 pages);
/// 256 KiB moves four times as much per splice call. If the kernel refuses (a per-user
/// pipe-pages limit), the pipe keeps its default size.
pub const PIPE_SIZE: usize = 256 * 1024;

/// Pipes that may exist at once per reactor (each is two descriptors).
pub const MAX_PIPES: usize = 64;

/// A non-blocking pipe used as a staging area between two sockets.
pub struct Pipe {
    rd: OwnedFd,
    wr: OwnedFd,
    held: usize,
    cap: usize,
}

impl Pipe {
    /// A new pipe (O_NONBLOCK | O_CLOEXEC), enlarged to `PIPE_SIZE` when allowed.
    pub fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid, writable array of two c_ints, as pipe2 requires.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else;
        // each OwnedFd becomes their only owner and closes it once.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_SETPIPE_SZ takes an int argument and touches no memory of ours; `wr`
        // is an open pipe descriptor.
        let size = unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE as i32) };
        // On refusal the pipe has at least one page; the default is 16 pages. Reads never
        // depend on `cap` being exact: it only bounds how much is asked for per call.
        let cap = if size > 0 { size as usize } else { 64 * 1024 };
        Ok(Pipe {
            rd,
            wr,
            held: 0,
            cap,
        })
    }

    /// Bytes in the pipe, not yet spliced out.
    pub fn held(&self) -> usize {
        self.held
    }

    /// True when the pipe holds nothing.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Bytes the pipe can take before it is full (by its size in bytes).
    pub fn room(&self) -> usize {
        self.cap.saturating_sub(self.held)
    }
}

/// Moves up to `max` bytes from a socket into the pipe. `Ok(0)` is the socket's EOF
/// (or `max == 0`). `WouldBlock` means the socket had nothing, or the pipe is full (which
/// one the kernel does not say: a caller whose pipe holds bytes drains it first).
pub fn splice_in(from: RawFd, pipe: &mut Pipe, max: usize) -> io::Result<usize> {
    let n = splice(from, pipe.wr.as_raw_fd(), max.min(pipe.room()))?;
    pipe.held += n;
    Ok(n)
}

/// Moves up to `max` bytes of the pipe out to a socket. `WouldBlock`: the socket is full.
pub fn splice_out(pipe: &mut Pipe, to: RawFd, max: usize) -> io::Result<usize> {
    let n = splice(pipe.rd.as_raw_fd(), to, max.min(pipe.held))?;
    pipe.held -= n;
    Ok(n)
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    loop {
        let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
        // SAFETY: null offsets are what splice requires for sockets and pipes (their
        // position is the stream's); the descriptors are borrowed from live owners for
        // the duration of the call, and no memory of ours is read or written.
        let r = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                flags,
            )
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// True for the errors that mean "this kernel or this descriptor cannot splice": the
/// caller copies instead, from now on.
pub fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS))
}

/// The reactor's pipes: a free list, and a count of those that exist (see module docs).
pub struct PipePool {
    /// Boxed: a socket holds `Option<Box<Pipe>>` (one word), and a pipe moves between
    /// the list and sockets without being re-allocated.
    #[allow(clippy::vec_box)]
    free: Vec<Box<Pipe>>,
    /// Pipes in existence (free or taken).
    pub open: usize,
    max: usize,
    /// Splice turned out unsupported here: no more pipes are handed out.
    pub off: bool,
}

impl PipePool {
    /// A pool handing out at most `max` pipes (0: splice off).
    pub fn new(max: usize) -> PipePool {
        PipePool {
            free: Vec::new(),
            open: 0,
            max,
            off: max == 0,
        }
    }

    /// True when a pipe may be taken now (one is free, or another may be made).
    pub fn available(&self) -> bool {
        !self.off && (!self.free.is_empty() || self.open < self.max)
    }

    /// A pipe, or None when the cap is reached, splice is off, or the kernel refuses one
    /// (out of descriptors): the caller copies.
    pub fn take(&mut self) -> Option<Box<Pipe>> {
        if self.off {
            return None;
        }
        if let Some(p) = self.free.pop() {
            return Some(p);
        }
        if self.open >= self.max {
            return None;
        }
        let p = Pipe::new().ok()?;
        self.open += 1;
        Some(Box::new(p))
    }

    /// Gives a pipe back: kept for reuse when empty, closed when it still holds bytes
    /// (they belonged to a stream that ended; no one will read them).
    pub fn put(&mut self, pipe: Box<Pipe>) {
        if pipe.is_empty() && !self.off {
            self.free.push(pipe);
        } else {
            self.open = self.open.saturating_sub(1);
        }
    }

    /// Splice is unsupported here: switch off, and close the free pipes.
    pub fn switch_off(&mut self) {
        self.off = true;
        self.open = self.open.saturating_sub(self.free.len());
        self.free.clear();
    }
}

impl Default for PipePool {
    fn default() -> PipePool {
        PipePool::new(MAX_PIPES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;

    fn tcp_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// Descriptors of this process open on the pipe with the same inode as `fd` (other
    /// tests run in parallel: counting all descriptors would race with them).
    fn fds_on(pipe: &str) -> usize {
        let links = std::fs::read_dir("/proc/self/fd").unwrap();
        links
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| l.to_str() == Some(pipe))
            .count()
    }

    fn name(p: &Pipe) -> String {
        let link = format!("/proc/self/fd/{}", p.rd.as_raw_fd());
        std::fs::read_link(link)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    }

    fn pattern(n: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn bytes_cross_from_socket_to_socket_through_a_pipe_unchanged() {
        let (mut client, src) = tcp_pair();
        let (dst, mut sink) = tcp_pair();
        src.set_nonblocking(true).unwrap();
        dst.set_nonblocking(true).unwrap();
        let data = pattern(200_000);
        let mut pipe = Pipe::new().unwrap();
        let writer = {
            let data = data.clone();
            std::thread::spawn(move || client.write_all(&data).unwrap())
        };
        let mut got = Vec::new();
        let mut buf = vec![0; 65536];
        while got.len() < data.len() {
            if pipe.room() > 0 {
                let _ = splice_in(src.as_raw_fd(), &mut pipe, usize::MAX);
            }
            while !pipe.is_empty() {
                match splice_out(&mut pipe, dst.as_raw_fd(), usize::MAX) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            sink.set_read_timeout(Some(std::time::Duration::from_millis(1)))
                .unwrap();
            if let Ok(n) = sink.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        writer.join().unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn splice_in_takes_at_most_max_and_reports_eof_as_zero() {
        let (mut client, src) = tcp_pair();
        src.set_nonblocking(true).unwrap();
        client.write_all(b"0123456789").unwrap();
        drop(client);
        let mut pipe = Pipe::new().unwrap();
        let mut moved = 0;
        while moved < 4 {
            match splice_in(src.as_raw_fd(), &mut pipe, 4 - moved) {
                Ok(n) => moved += n,
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        assert_eq!((moved, pipe.held()), (4, 4), "never past max");
        let mut rest = 0;
        loop {
            match splice_in(src.as_raw_fd(), &mut pipe, usize::MAX) {
                Ok(0) => break,
                Ok(n) => rest += n,
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        assert_eq!((rest, pipe.held()), (6, 10));
    }

    #[test]
    fn a_full_destination_leaves_the_bytes_in_the_pipe() {
        let (mut client, src) = tcp_pair();
        let (dst, _sink) = tcp_pair(); // never read
        src.set_nonblocking(true).unwrap();
        dst.set_nonblocking(true).unwrap();
        let mut pipe = Pipe::new().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = client.write_all(&vec![7u8; 16 << 20]);
        });
        let mut out_blocked = false;
        for _ in 0..100_000 {
            if pipe.room() > 0 {
                let _ = splice_in(src.as_raw_fd(), &mut pipe, usize::MAX);
            }
            match splice_out(&mut pipe, dst.as_raw_fd(), usize::MAX) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && pipe.held() > 0 => {
                    out_blocked = true;
                    break;
                }
                _ => {}
            }
        }
        assert!(out_blocked, "the sink's queue filled up");
        assert!(pipe.held() > 0);
        drop(src);
        writer.join().unwrap();
    }

    #[test]
    fn the_pool_is_bounded_reuses_empty_pipes_and_closes_full_ones() {
        let mut pool = PipePool::new(2);
        let a = pool.take().unwrap();
        let mut b = pool.take().unwrap();
        let (na, nb) = (name(&a), name(&b));
        assert!(pool.take().is_none(), "capped");
        assert!(!pool.available());
        assert_eq!((fds_on(&na), fds_on(&nb)), (2, 2));
        pool.put(a);
        assert!(pool.available());
        assert_eq!(fds_on(&na), 2, "an empty pipe is kept");
        // A pipe that still holds bytes is closed, not reused.
        let (mut w, r) = UnixStream::pair().unwrap();
        w.write_all(b"left over").unwrap();
        splice_in(r.as_raw_fd(), &mut b, 100).unwrap();
        assert_eq!(b.held(), 9);
        pool.put(b);
        assert_eq!(pool.open, 1);
        assert_eq!(fds_on(&nb), 0, "a pipe holding bytes is closed");
        let again = pool.take().unwrap();
        assert!(again.is_empty());
        assert_eq!(name(&again), na, "the empty one came back");
        pool.switch_off();
        assert!(pool.take().is_none());
        drop(again);
        drop(pool);
        assert_eq!(fds_on(&na), 0, "every descriptor closed");
    }

    #[test]
    fn unsupported_errors_are_recognised() {
        // A pipe to itself is EINVAL.
        let mut p = Pipe::new().unwrap();
        let fd = p.rd.as_raw_fd();
        let e = splice_in(fd, &mut p, 10).unwrap_err();
        assert!(unsupported(&e), "{e}");
        assert!(!unsupported(&io::Error::from_raw_os_error(libc::EAGAIN)));
    }
}
