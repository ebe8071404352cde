//! Fixed-capacity byte buffers and the free list they come from.
//!
//! A `Buf` is a window `start..end` over an initialised boxed slice: reads land in
//! `spare()`, consumers advance `start`. Buffers are taken from `BufPool` when a socket
//! has bytes to hold and given back as soon as they are empty, so an idle keep-alive
//! client or an idle WebSocket tunnel holds no buffer at all.

/// Capacity of a pooled buffer. Large enough for a default 16 KiB head.
pub const BUF_SIZE: usize = 16 * 1024;

/// Free buffers kept for reuse; past this they are freed (an idle proxy stays small).
pub const MAX_FREE_BUFS: usize = 256;

/// Capacity of a TLS ciphertext input buffer (feature `tls`): one whole record of the largest
/// size a peer may send (RFC 5246 §6.2.3: 2^14 + 2048 bytes of payload, plus the 5-byte
/// header), since a record is decrypted in place only once all of it is in one buffer.
#[cfg(feature = "tls")]
pub const RECORD_BUF_SIZE: usize = BUF_SIZE + 2048 + 5;

/// A byte window over owned, initialised memory. Offsets are `u32` (a buffer is at
/// most a configured head size, far below 4 GiB): every connection holds two of these
/// slots, so their size is part of the memory per idle connection.
pub struct Buf {
    data: Box<[u8]>,
    start: u32,
    end: u32,
}

impl Buf {
    fn s(&self) -> usize {
        self.start as usize
    }
    fn e(&self) -> usize {
        self.end as usize
    }
    fn set(&mut self, start: usize, end: usize) {
        // Capacities are bounded by the configured head limit (<= 1 MiB).
        self.start = start as u32;
        self.end = end as u32;
    }
    fn compact(&mut self) {
        let (s, e) = (self.s(), self.e());
        self.data.copy_within(s..e, 0);
        self.set(0, e - s);
    }
    /// Bytes held, oldest first.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.s()..self.e()]
    }
    /// Bytes held, writable in place (TLS records are decrypted where they were read).
    #[cfg(feature = "tls")]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let (s, e) = (self.s(), self.e());
        &mut self.data[s..e]
    }
    /// Number of bytes held.
    pub fn len(&self) -> usize {
        self.e() - self.s()
    }
    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// Total capacity.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }
    /// Bytes that can still be added (after compaction).
    pub fn space(&self) -> usize {
        self.data.len() - self.len()
    }
    /// Drops `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        let start = self.s() + n.min(self.len());
        if start == self.e() {
            self.set(0, 0);
        } else {
            self.set(start, self.e());
        }
    }
    /// The free tail to read into; compacts first when the tail is short.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 && self.data.len() - self.e() < self.data.len() / 2 {
            self.compact();
        }
        let e = self.e();
        &mut self.data[e..]
    }
    /// Marks `n` bytes of `spare()` as filled.
    pub fn commit(&mut self, n: usize) {
        let end = (self.e() + n).min(self.data.len());
        self.set(self.s(), end);
    }
    /// Appends as much of `bytes` as fits; returns how many were taken.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        if self.data.len() - self.e() < bytes.len() && self.start > 0 {
            self.compact();
        }
        let e = self.e();
        let n = bytes.len().min(self.data.len() - e);
        self.data[e..e + n].copy_from_slice(&bytes[..n]);
        self.set(self.s(), e + n);
        n
    }
    /// Replaces the storage with a larger one (a head bigger than `BUF_SIZE`).
    pub fn grow(&mut self, capacity: usize) {
        if capacity <= self.data.len() {
            return;
        }
        let mut data = vec![0u8; capacity].into_boxed_slice();
        let len = self.len();
        data[..len].copy_from_slice(self.bytes());
        self.data = data;
        self.set(0, len);
    }
}

/// A free list of `BUF_SIZE` buffers.
#[derive(Default)]
pub struct BufPool {
    free: Vec<Box<[u8]>>,
    /// Free [`RECORD_BUF_SIZE`] buffers (TLS ciphertext input).
    #[cfg(feature = "tls")]
    free_records: Vec<Box<[u8]>>,
    /// Buffers handed out and not yet returned (for metrics and leak tests).
    pub outstanding: usize,
    /// The reactor's pipes for splice(2), kept with its buffers: both are staging memory
    /// for bytes in flight, and every IO helper that takes one may need the other.
    #[cfg(all(target_os = "linux", not(feature = "sim")))]
    pub(crate) pipes: crate::splice::PipePool,
}

impl BufPool {
    /// Takes a buffer (allocates only when the free list is empty).
    pub fn get(&mut self) -> Buf {
        self.outstanding += 1;
        let data = self
            .free
            .pop()
            .unwrap_or_else(|| vec![0u8; BUF_SIZE].into_boxed_slice());
        Buf {
            data,
            start: 0,
            end: 0,
        }
    }
    /// Takes a [`RECORD_BUF_SIZE`] buffer for TLS ciphertext (allocates only when its free
    /// list is empty); `put` gives it back to that list.
    #[cfg(feature = "tls")]
    pub fn get_record(&mut self) -> Buf {
        self.outstanding += 1;
        let data = (self.free_records.pop())
            .unwrap_or_else(|| vec![0u8; RECORD_BUF_SIZE].into_boxed_slice());
        Buf {
            data,
            start: 0,
            end: 0,
        }
    }
    /// Returns a buffer; oversized ones and those past `MAX_FREE_BUFS` are freed.
    pub fn put(&mut self, buf: Buf) {
        self.outstanding = self.outstanding.saturating_sub(1);
        #[cfg(feature = "tls")]
        if buf.data.len() == RECORD_BUF_SIZE {
            if self.free_records.len() < MAX_FREE_BUFS {
                self.free_records.push(buf.data);
            }
            return;
        }
        if buf.data.len() == BUF_SIZE && self.free.len() < MAX_FREE_BUFS {
            self.free.push(buf.data);
        }
    }
    /// Returns the buffer in `slot` if it is empty.
    pub fn release_if_empty(&mut self, slot: &mut Option<Buf>) {
        if slot.as_ref().is_some_and(Buf::is_empty) {
            if let Some(b) = slot.take() {
                self.put(b);
            }
        }
    }
    /// Returns the buffer in `slot`, whatever it holds.
    pub fn release(&mut self, slot: &mut Option<Buf>) {
        if let Some(b) = slot.take() {
            self.put(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_consume_compact() {
        let mut pool = BufPool::default();
        let mut b = pool.get();
        assert_eq!(b.push(b"hello"), 5);
        b.consume(2);
        assert_eq!(b.bytes(), b"llo");
        let big = vec![7u8; BUF_SIZE];
        assert_eq!(b.push(&big), BUF_SIZE - 3);
        assert_eq!(b.space(), 0);
        b.consume(BUF_SIZE);
        assert!(b.is_empty());
        let mut slot = Some(b);
        pool.release_if_empty(&mut slot);
        assert!(slot.is_none());
        assert_eq!(pool.outstanding, 0);
    }

    #[test]
    fn spare_commit_and_grow() {
        let mut pool = BufPool::default();
        let mut b = pool.get();
        b.spare()[..3].copy_from_slice(b"abc");
        b.commit(3);
        b.grow(BUF_SIZE * 2);
        assert_eq!(b.bytes(), b"abc");
        assert_eq!(b.capacity(), BUF_SIZE * 2);
        pool.put(b);
        assert_eq!(pool.free.len(), 0, "oversized buffers are not kept");
    }

    /// A buffer holding `held` bytes at offset `start` (window `start..start + held`).
    fn window(pool: &mut BufPool, start: usize, held: usize) -> Buf {
        let mut b = pool.get();
        let fill: Vec<u8> = (0..start + held).map(|i| i as u8).collect();
        assert_eq!(b.push(&fill), start + held);
        b.consume(start);
        assert_eq!((b.s(), b.e()), (start, start + held));
        b
    }

    #[test]
    fn fresh_buffer_is_16k_and_counted() {
        let mut pool = BufPool::default();
        let b = pool.get();
        assert_eq!(b.capacity(), 16_384);
        assert_eq!((b.len(), b.space()), (0, 16_384));
        assert!(b.is_empty());
        assert_eq!(pool.outstanding, 1);
        let c = pool.get();
        assert_eq!(pool.outstanding, 2);
        pool.put(b);
        pool.put(c);
        assert_eq!(pool.outstanding, 0);
    }

    #[test]
    fn offsets_len_space_and_consume() {
        let mut pool = BufPool::default();
        let mut b = window(&mut pool, 5, 10);
        assert_eq!(b.len(), 10);
        assert!(!b.is_empty());
        assert_eq!(b.space(), BUF_SIZE - 10);
        assert_eq!(b.bytes(), &(5u8..15).collect::<Vec<_>>()[..]);
        b.consume(3);
        assert_eq!((b.s(), b.e()), (8, 15));
        assert_eq!(b.bytes(), &(8u8..15).collect::<Vec<_>>()[..]);
        // Consuming everything resets the window to the front.
        b.consume(7);
        assert_eq!((b.s(), b.e()), (0, 0));
        assert!(b.is_empty());
    }

    #[test]
    fn spare_compacts_only_when_started_and_tail_short() {
        let mut pool = BufPool::default();
        let half = BUF_SIZE / 2;
        // (start, held, compacted?)
        let cases = [
            (0, 10, false),              // nothing consumed: nothing to move
            (5, 5, false),               // long tail
            (1, half - 1, false),        // tail exactly half: still long enough
            (1, half, true),             // tail one byte short of half
            (100, BUF_SIZE - 200, true), // short tail
            (1, BUF_SIZE - 1, true),     // no tail at all
        ];
        for (start, held, compacted) in cases {
            let mut b = window(&mut pool, start, held);
            let expected: Vec<u8> = (start..start + held).map(|i| i as u8).collect();
            let spare = b.spare().len();
            if compacted {
                assert_eq!(spare, BUF_SIZE - held, "({start}, {held})");
                assert_eq!((b.s(), b.e()), (0, held), "({start}, {held})");
            } else {
                assert_eq!(spare, BUF_SIZE - start - held, "({start}, {held})");
                assert_eq!((b.s(), b.e()), (start, start + held), "({start}, {held})");
            }
            assert_eq!(b.bytes(), &expected[..], "({start}, {held})");
            pool.put(b);
        }
    }

    #[test]
    fn commit_marks_spare_bytes_and_clamps() {
        let mut pool = BufPool::default();
        let mut b = window(&mut pool, 2, 3);
        b.spare()[..2].copy_from_slice(b"xy");
        b.commit(2);
        assert_eq!((b.s(), b.e()), (2, 7));
        assert_eq!(&b.bytes()[3..], b"xy");
        b.commit(BUF_SIZE);
        assert_eq!(b.e(), BUF_SIZE);
    }

    #[test]
    fn push_compacts_only_when_the_tail_is_too_short() {
        let mut pool = BufPool::default();
        // (start, held, pushed, compacted?)
        let cases = [
            (5, 5, 5, false),             // fits in the tail
            (5, 5, BUF_SIZE - 10, false), // fits exactly
            (5, 5, BUF_SIZE - 9, true),   // one byte too many
            (0, 10, BUF_SIZE, false),     // nothing to reclaim
        ];
        for (start, held, pushed, compacted) in cases {
            let mut b = window(&mut pool, start, held);
            let room = if compacted || start == 0 {
                BUF_SIZE - held
            } else {
                BUF_SIZE - start - held
            };
            let taken = pushed.min(room);
            assert_eq!(
                b.push(&vec![0xAA; pushed]),
                taken,
                "{start} {held} {pushed}"
            );
            let s = if compacted { 0 } else { start };
            assert_eq!(
                (b.s(), b.e()),
                (s, s + held + taken),
                "{start} {held} {pushed}"
            );
            let mut expected: Vec<u8> = (start..start + held).map(|i| i as u8).collect();
            expected.resize(held + taken, 0xAA);
            assert_eq!(b.bytes(), &expected[..], "{start} {held} {pushed}");
            pool.put(b);
        }
        // Pushing into a full buffer takes nothing.
        let mut b = window(&mut pool, 0, BUF_SIZE);
        assert_eq!(b.push(b"z"), 0);
        assert_eq!(b.len(), BUF_SIZE);
    }

    #[test]
    fn grow_keeps_bytes_and_never_shrinks() {
        let mut pool = BufPool::default();
        let mut b = window(&mut pool, 4, 6);
        b.grow(100);
        assert_eq!(b.capacity(), BUF_SIZE);
        assert_eq!((b.s(), b.e()), (4, 10));
        b.grow(BUF_SIZE + 1);
        assert_eq!(b.capacity(), BUF_SIZE + 1);
        assert_eq!((b.s(), b.e()), (0, 6));
        assert_eq!(b.bytes(), &(4u8..10).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn pool_keeps_at_most_max_free_plain_buffers() {
        let mut pool = BufPool::default();
        let bufs: Vec<Buf> = (0..MAX_FREE_BUFS + 2).map(|_| pool.get()).collect();
        assert_eq!(pool.outstanding, MAX_FREE_BUFS + 2);
        for (i, b) in bufs.into_iter().enumerate() {
            pool.put(b);
            assert_eq!(pool.free.len(), (i + 1).min(MAX_FREE_BUFS));
        }
        assert_eq!(pool.outstanding, 0);
        // A kept buffer is handed out again before anything is allocated.
        let b = pool.get();
        assert_eq!(pool.free.len(), MAX_FREE_BUFS - 1);
        pool.put(b);
        assert_eq!(pool.free.len(), MAX_FREE_BUFS);
    }

    #[test]
    fn release_and_release_if_empty() {
        let mut pool = BufPool::default();
        let mut slot = Some(window(&mut pool, 0, 3));
        pool.release_if_empty(&mut slot);
        assert!(slot.is_some(), "a buffer holding bytes is kept");
        assert_eq!(pool.outstanding, 1);
        pool.release(&mut slot);
        assert!(slot.is_none());
        assert_eq!((pool.outstanding, pool.free.len()), (0, 1));
        let mut slot = Some(pool.get());
        pool.release_if_empty(&mut slot);
        assert!(slot.is_none());
        assert_eq!((pool.outstanding, pool.free.len()), (0, 1));
        let mut empty: Option<Buf> = None;
        pool.release(&mut empty);
        pool.release_if_empty(&mut empty);
        assert_eq!(pool.outstanding, 0);
    }
}
