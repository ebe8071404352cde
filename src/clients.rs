//! Per-client connection limit (issue 16, section 4). Pure: no IO, no clock.
//!
//! `[frontend] max_connections_per_client` (off by default): one client address (the
//! PROXY-protocol address where that is in use) may hold at most that many connections;
//! the next ones get `429 Too Many Requests` with `Retry-After` and a close, an upgrade
//! request too. The caller asks [`ClientLimits::on_open`] when a connection's client
//! address is known and, for every connection it accepted ([`Verdict::Accept`]), calls
//! [`ClientLimits::on_close`] exactly once when it ends.
//!
//! Memory: one entry per client address with an open connection, so at most
//! `max_connections` entries; an entry is removed when its last connection closes, and the
//! table gives memory back once it is mostly empty. Off: nothing is tracked and
//! `on_open` is one branch. IPv4-mapped IPv6 addresses count as their IPv4 address.
//! Keys are hashed with std's keyed SipHash, so clients cannot aim at one bucket.

use std::collections::HashMap;
use std::net::IpAddr;

/// `Retry-After` seconds sent with the 429.
pub const RETRY_AFTER_SECS: u32 = 1;
/// Below this capacity the table is never shrunk.
const MIN_CAPACITY: usize = 64;

/// Whether a new connection may proceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Counted: call `on_close` when it ends.
    Accept,
    /// Over the limit: answer 429 with `Retry-After` and close. Not counted.
    Reject,
}

/// Open connections per client address.
#[derive(Debug, Default)]
pub struct ClientLimits {
    max: Option<u32>,
    open: HashMap<IpAddr, u32>,
    rejected: u64,
}

impl ClientLimits {
    /// `max`: `max_connections_per_client` (`None` = unlimited).
    pub fn new(max: Option<usize>) -> ClientLimits {
        ClientLimits {
            max: max.map(clamp),
            ..ClientLimits::default()
        }
    }

    /// Applies a reloaded limit. Turning it off forgets every count; turning it on
    /// counts connections opened from now on (those already open are not known).
    pub fn set_max(&mut self, max: Option<usize>) {
        self.max = max.map(clamp);
        if self.max.is_none() {
            self.open = HashMap::new();
        }
    }

    /// A limit is set: [`ClientLimits::on_open`] counts connections.
    pub fn enabled(&self) -> bool {
        self.max.is_some()
    }

    /// A connection from `ip` starts: accept (and count) it, or reject it.
    pub fn on_open(&mut self, ip: IpAddr) -> Verdict {
        let Some(max) = self.max else {
            return Verdict::Accept;
        };
        let n = self.open.entry(ip.to_canonical()).or_insert(0);
        if *n >= max {
            self.rejected += 1;
            if *n == 0 {
                self.open.remove(&ip.to_canonical());
            }
            return Verdict::Reject;
        }
        *n += 1;
        Verdict::Accept
    }

    /// An accepted connection from `ip` ended. Unknown addresses (opened before the
    /// limit was turned on) are ignored.
    pub fn on_close(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        let Some(n) = self.open.get_mut(&ip) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.open.remove(&ip);
            let cap = self.open.capacity();
            if cap > MIN_CAPACITY && self.open.len() < cap / 4 {
                self.open.shrink_to(MIN_CAPACITY.max(self.open.len() * 2));
            }
        }
    }

    /// Open connections counted for `ip`.
    pub fn open(&self, ip: IpAddr) -> u32 {
        self.open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    /// Client addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.open.len()
    }

    /// Connections rejected since start (for `/metrics`).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
}

fn clamp(max: usize) -> u32 {
    u32::try_from(max).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn off_accepts_everything_and_tracks_nothing() {
        let mut l = ClientLimits::new(None);
        for _ in 0..1000 {
            assert_eq!(l.on_open(v4(1)), Verdict::Accept);
        }
        assert_eq!((l.tracked(), l.rejected()), (0, 0));
        l.on_close(v4(1));
    }

    #[test]
    fn the_connection_over_the_limit_is_rejected_until_one_closes() {
        let mut l = ClientLimits::new(Some(2));
        assert_eq!(l.on_open(v4(1)), Verdict::Accept);
        assert_eq!(l.on_open(v4(1)), Verdict::Accept);
        assert_eq!(l.on_open(v4(1)), Verdict::Reject);
        assert_eq!(
            l.on_open(v4(2)),
            Verdict::Accept,
            "other clients are not affected"
        );
        assert_eq!(l.open(v4(1)), 2, "a rejected connection is not counted");
        l.on_close(v4(1));
        assert_eq!(l.on_open(v4(1)), Verdict::Accept);
        assert_eq!(l.rejected(), 1);
    }

    #[test]
    fn memory_is_freed_when_the_last_connection_closes() {
        let mut l = ClientLimits::new(Some(3));
        for i in 0..=255 {
            assert_eq!(l.on_open(v4(i)), Verdict::Accept);
            assert_eq!(l.on_open(v4(i)), Verdict::Accept);
        }
        assert_eq!(l.tracked(), 256);
        let peak = l.open.capacity();
        for i in 0..=255 {
            l.on_close(v4(i));
            assert_eq!(l.tracked(), 256, "one connection of each is still open");
        }
        for i in 0..=255 {
            l.on_close(v4(i));
        }
        assert_eq!(l.tracked(), 0);
        assert!(
            l.open.capacity() <= MIN_CAPACITY * 2,
            "{} of {peak}",
            l.open.capacity()
        );
    }

    #[test]
    fn limit_zero_entries_are_not_kept_and_mapped_v6_is_v4() {
        let mut l = ClientLimits::new(Some(1));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(l.on_open(v4(1)), Verdict::Accept);
        assert_eq!(l.on_open(mapped), Verdict::Reject);
        l.on_close(mapped);
        assert_eq!(l.tracked(), 0);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(l.on_open(v6), Verdict::Accept);
        assert_eq!(l.on_open(v6), Verdict::Reject);
        // A rejection never leaves an empty entry behind.
        let mut zero = ClientLimits::new(Some(0));
        assert_eq!(zero.on_open(v4(9)), Verdict::Reject);
        assert_eq!(zero.tracked(), 0);
    }

    #[test]
    fn reload_on_and_off() {
        let mut l = ClientLimits::new(None);
        assert_eq!(l.on_open(v4(1)), Verdict::Accept); // opened while off: unknown
        l.set_max(Some(1));
        assert_eq!(l.on_open(v4(1)), Verdict::Accept);
        assert_eq!(l.on_open(v4(1)), Verdict::Reject);
        l.on_close(v4(1));
        l.on_close(v4(1)); // the one from before: ignored, no underflow
        assert_eq!(l.tracked(), 0);
        assert_eq!(l.on_open(v4(1)), Verdict::Accept);
        l.set_max(None);
        assert_eq!(l.tracked(), 0);
        l.on_close(v4(1));
        assert_eq!(l.on_open(v4(1)), Verdict::Accept);
    }
}
