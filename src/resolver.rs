//! A sans-IO DNS resolver for watched names (quinn-proto style): no sockets,
//! no clock. The reactor sends what `poll_transmit` returns, feeds answers to
//! `handle_udp`/`handle_tcp`, calls `on_timeout` at `next_deadline`, and
//! applies what `poll_event` reports.
//!
//! Rules, per watched name:
//! - one query at a time, with a fresh random ID per try; an answer counts only
//!   when its ID, question (name, type, class IN) and source address match the
//!   outstanding try, and it came over the transport that try used;
//! - a try times out after `timeout`; tries go through the nameservers in order,
//!   `attempts` rounds; a SERVFAIL (or any RCODE but NOERROR/NXDOMAIN) moves to
//!   the next try at once; a truncated UDP answer repeats the try over TCP;
//! - a good answer is kept and re-queried after its TTL (smallest along the
//!   CNAME chain) clamped to `[min_ttl, max_ttl]`; `Changed` only when the
//!   data differ;
//! - when every try failed, the last good data stay, the name is retried every
//!   `min_ttl`, and `Failed` is reported once per failure streak;
//! - NXDOMAIN (or NODATA) keeps the last good data until it has lasted
//!   `hold_nx`, then reports `Changed` with no data.

use protocol::dns::{
    build_query, parse_header, parse_response, rcode, resolve, tcp_frame, Name, RData, RecordType,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Settings (`[resolver]` and resolv.conf).
#[derive(Clone, Debug)]
pub struct ResolverConfig {
    /// Servers, tried in order.
    pub nameservers: Vec<SocketAddr>,
    /// Per-try timeout (resolv.conf `timeout`).
    pub timeout: Duration,
    /// Rounds over the nameservers (resolv.conf `attempts`).
    pub attempts: u8,
    /// Shortest re-query interval, and the retry interval after a failure.
    pub min_ttl: Duration,
    /// Longest re-query interval.
    pub max_ttl: Duration,
    /// How long NXDOMAIN must last before the data are removed.
    pub hold_nx: Duration,
}

/// Index of a watched name, from `watch`.
pub type WatchId = usize;

/// How a query goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// One datagram.
    Udp,
    /// A new TCP connection; `bytes` already carry the 2-byte length prefix.
    /// Feed the reply's unframed message to `handle_tcp`.
    Tcp,
}

/// A query to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The watch it belongs to.
    pub watch: WatchId,
    /// The nameserver.
    pub to: SocketAddr,
    /// Transport.
    pub via: Via,
    /// The message (length-prefixed for TCP).
    pub bytes: Vec<u8>,
}

/// Why resolution failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Every try timed out or got SERVFAIL (or another error RCODE).
    Unreachable,
    /// NXDOMAIN or NODATA (still within `hold_nx` if data are kept).
    NoSuchName,
}

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// New data for the name (empty: removed after `hold_nx`).
    Changed {
        /// The watch.
        watch: WatchId,
        /// A, AAAA or SRV data.
        data: Vec<RData>,
    },
    /// Resolution failed; reported once per streak (log it). `kept` says the
    /// last good data are still in use.
    Failed {
        /// The watch.
        watch: WatchId,
        /// Why.
        failure: Failure,
        /// Whether the last good data remain.
        kept: bool,
    },
}

#[derive(Debug)]
struct Try {
    id: u16,
    ns: usize,
    round: u8,
    via: Via,
    /// `None` until `poll_transmit` hands it out.
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct Watch {
    name: Name,
    qtype: RecordType,
    last: Option<Vec<RData>>,
    next_query: Option<Instant>,
    query: Option<Try>,
    failure_reported: bool,
    nx_since: Option<Instant>,
}

/// The resolver: watched names and their queries.
pub struct Resolver {
    config: ResolverConfig,
    watches: Vec<Watch>,
    events: Vec<Event>,
    rng: SmallRng,
}

impl Resolver {
    /// A resolver with no names; `seed` feeds the query-ID generator (pass
    /// a random seed in production, a fixed one in tests).
    pub fn new(config: ResolverConfig, seed: u64) -> Resolver {
        Resolver {
            config,
            watches: Vec::new(),
            events: Vec::new(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Starts watching `name` for `qtype`; the first query goes out at the
    /// next `poll_transmit`.
    pub fn watch(&mut self, name: Name, qtype: RecordType, now: Instant) -> WatchId {
        self.watches.push(Watch {
            name,
            qtype,
            last: None,
            next_query: Some(now),
            query: None,
            failure_reported: false,
            nx_since: None,
        });
        self.watches.len() - 1
    }

    /// Points `watch` at another name (the next search-list candidate) and
    /// forgets its state; the first query goes out at the next `poll_transmit`.
    pub fn retarget(&mut self, watch: WatchId, name: Name, now: Instant) {
        if let Some(w) = self.watches.get_mut(watch) {
            let qtype = w.qtype;
            *w = Watch {
                name,
                qtype,
                last: None,
                next_query: Some(now),
                query: None,
                failure_reported: false,
                nx_since: None,
            };
        }
    }

    /// The last good data of a watch.
    pub fn current(&self, watch: WatchId) -> Option<&[RData]> {
        self.watches.get(watch)?.last.as_deref()
    }

    /// The next query to send, if any is due. Call until `None` each turn.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let timeout = self.config.timeout;
        let nameservers = self.config.nameservers.len();
        for (i, w) in self.watches.iter_mut().enumerate() {
            if w.query.is_none() && w.next_query.is_some_and(|t| t <= now) && nameservers > 0 {
                w.next_query = None;
                w.query = Some(Try {
                    id: self.rng.gen(),
                    ns: 0,
                    round: 0,
                    via: Via::Udp,
                    deadline: None,
                });
            }
            let Some(q) = w.query.as_mut().filter(|q| q.deadline.is_none()) else {
                continue;
            };
            q.deadline = Some(now + timeout);
            let mut msg = Vec::new();
            build_query(q.id, &w.name, w.qtype, &mut msg);
            let bytes = match q.via {
                Via::Udp => msg,
                Via::Tcp => {
                    let mut framed = Vec::with_capacity(msg.len() + 2);
                    // NOTE(unwrap): a query is far below 65535 bytes.
                    tcp_frame(&msg, &mut framed).unwrap();
                    framed
                }
            };
            let to = self.config.nameservers[q.ns];
            return Some(Transmit {
                watch: i,
                to,
                via: q.via,
                bytes,
            });
        }
        None
    }

    /// A datagram from `from`. Returns whether it was accepted.
    pub fn handle_udp(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) -> bool {
        self.handle(from, Via::Udp, bytes, now)
    }

    /// One whole message (without its length prefix) read from the TCP
    /// connection to `from`. Returns whether it was accepted.
    pub fn handle_tcp(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) -> bool {
        self.handle(from, Via::Tcp, bytes, now)
    }

    fn handle(&mut self, from: SocketAddr, via: Via, bytes: &[u8], now: Instant) -> bool {
        let Ok(header) = parse_header(bytes) else {
            return false;
        };
        let nameservers = &self.config.nameservers;
        let found = self.watches.iter().position(|w| {
            w.query.as_ref().is_some_and(|q| {
                q.id == header.id
                    && q.via == via
                    && q.deadline.is_some()
                    && nameservers.get(q.ns) == Some(&from)
            })
        });
        let Some(i) = found else {
            return false;
        };
        let Ok(msg) = parse_response(bytes) else {
            return false;
        };
        let w = &self.watches[i];
        if !msg.answers_query(header.id, &w.name, w.qtype) {
            return false;
        }
        if msg.header.tc && via == Via::Udp {
            // RFC 7766 §5: ask the same server again over TCP.
            let id = self.rng.gen();
            if let Some(q) = self.watches[i].query.as_mut() {
                *q = Try {
                    id,
                    via: Via::Tcp,
                    deadline: None,
                    ..*q
                };
            }
            return true;
        }
        match msg.header.rcode {
            rcode::NOERROR => {
                let r = resolve(&msg, &self.watches[i].name, self.watches[i].qtype);
                match r.ttl.filter(|_| !r.data.is_empty()) {
                    Some(ttl) => self.succeeded(i, r.data, ttl, now),
                    None => self.no_such_name(i, now),
                }
            }
            rcode::NXDOMAIN => self.no_such_name(i, now),
            _ => self.next_try(i, now),
        }
        true
    }

    fn succeeded(&mut self, i: WatchId, data: Vec<RData>, ttl: u32, now: Instant) {
        let c = &self.config;
        let ttl = Duration::from_secs(u64::from(ttl)).clamp(c.min_ttl, c.max_ttl);
        let w = &mut self.watches[i];
        w.query = None;
        w.next_query = Some(now + ttl);
        w.failure_reported = false;
        w.nx_since = None;
        if w.last.as_ref() != Some(&data) {
            w.last = Some(data.clone());
            self.events.push(Event::Changed { watch: i, data });
        }
    }

    fn no_such_name(&mut self, i: WatchId, now: Instant) {
        let (min_ttl, hold_nx) = (self.config.min_ttl, self.config.hold_nx);
        let w = &mut self.watches[i];
        w.query = None;
        w.next_query = Some(now + min_ttl);
        let since = *w.nx_since.get_or_insert(now);
        if w.last.is_some() && now.saturating_duration_since(since) >= hold_nx {
            w.last = None;
            self.events.push(Event::Changed {
                watch: i,
                data: Vec::new(),
            });
        }
        self.report(i, Failure::NoSuchName);
    }

    /// Moves to the next nameserver, then the next round; gives up after
    /// `attempts` rounds.
    fn next_try(&mut self, i: WatchId, now: Instant) {
        let (servers, attempts) = (self.config.nameservers.len(), self.config.attempts);
        let id = self.rng.gen();
        let w = &mut self.watches[i];
        let Some(q) = w.query.take() else {
            return;
        };
        let (ns, round) = if q.ns + 1 < servers {
            (q.ns + 1, q.round)
        } else {
            (0, q.round + 1)
        };
        if round < attempts.max(1) {
            w.query = Some(Try {
                id,
                ns,
                round,
                via: Via::Udp,
                deadline: None,
            });
            return;
        }
        w.next_query = Some(now + self.config.min_ttl);
        self.report(i, Failure::Unreachable);
    }

    fn report(&mut self, i: WatchId, failure: Failure) {
        let w = &mut self.watches[i];
        if !w.failure_reported {
            w.failure_reported = true;
            let kept = w.last.is_some();
            self.events.push(Event::Failed {
                watch: i,
                failure,
                kept,
            });
        }
    }

    /// The earliest try deadline or scheduled query.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.watches
            .iter()
            .filter_map(|w| match &w.query {
                Some(q) => q.deadline,
                None => w.next_query,
            })
            .min()
    }

    /// Expires tries whose deadline passed (scheduled queries go out at the
    /// next `poll_transmit`).
    pub fn on_timeout(&mut self, now: Instant) {
        for i in 0..self.watches.len() {
            let expired = self.watches[i]
                .query
                .as_ref()
                .and_then(|q| q.deadline)
                .is_some_and(|d| d <= now);
            if expired {
                self.next_try(i, now);
            }
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }
}

#[cfg(test)]
mod tests;
