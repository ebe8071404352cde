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
    /// Buffers handed out and not yet returned (for metrics and leak tests).
    pub outstanding: usize,
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
    /// Returns a buffer; oversized ones and those past `MAX_FREE_BUFS` are freed.
    pub fn put(&mut self, buf: Buf) {
        self.outstanding = self.outstanding.saturating_sub(1);
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
}
