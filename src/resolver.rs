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
//!
//! An address name is resolved in rounds of one or two queries, by `family`
//! ([`next_step`]): `v4_preferred` asks A and asks AAAA only after a NOERROR
//! answer with no A data (so one query per name per TTL in the common case);
//! `all` asks both and reports the union. How a round ends ([`conclude`]):
//! NXDOMAIN from either query is the name's (no such name); a type whose tries
//! all failed keeps its last good data when the other type answered (and the
//! failure is reported, the name retried at `min_ttl`); when nothing answered,
//! the round failed as above. The TTL is the shortest of the answers used.
//!
//! `reconfigure` (a reload) takes new settings at once: queries in flight are
//! restarted when the nameservers changed (their answers would come from a
//! server no longer listed) and address rounds when the family changed; a
//! changed timeout applies from the next try, TTL bounds from the next answer
//! (a pending re-query is pulled in to the new `max_ttl`). `unwatch` forgets a
//! name; its slot may be reused by a later `watch`.

use crate::config::Family;
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
    /// Which address types an address name is asked for.
    pub family: Family,
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

/// How one query of a round ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// NOERROR with records of the type, and their TTL.
    Data(Vec<RData>, u32),
    /// NOERROR without records of the type (NODATA).
    NoData,
    /// NXDOMAIN: the name does not exist (for any type).
    NxDomain,
    /// Every try timed out or got an error RCODE.
    Failed,
}

/// How a round ended, from its outcomes ([`conclude`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conclusion {
    /// NXDOMAIN, or NODATA for every type asked.
    NoSuchName,
    /// Nothing usable answered: keep the last good data.
    Unreachable,
    /// Data to use, per slot ([`slot`]): fresh answers, and the last good data of a
    /// type whose query failed (`partial`). `ttl`: shortest of the fresh answers.
    Answer {
        /// Per slot.
        by_type: [Option<Vec<RData>>; 2],
        /// Shortest TTL of the fresh answers used.
        ttl: Option<u32>,
        /// Some type's query failed and its last good data were kept.
        partial: bool,
    },
}

/// Where a type's last good data live in a watch: A and SRV in 0, AAAA in 1.
pub fn slot(t: RecordType) -> usize {
    usize::from(t == RecordType::Aaaa)
}

/// The next type to ask in a round of `kind` (SRV, or A for an address name), given
/// what the round's queries answered so far; `None` ends the round.
pub fn next_step(
    family: Family,
    kind: RecordType,
    done: &[(RecordType, Outcome)],
) -> Option<RecordType> {
    use RecordType::{Aaaa, A};
    if done.iter().any(|d| d.1 == Outcome::NxDomain) {
        return None;
    }
    if kind == RecordType::Srv {
        return done.is_empty().then_some(kind);
    }
    let order: &[RecordType] = match family {
        Family::V4Only => &[A],
        Family::V6Only => &[Aaaa],
        Family::V4Preferred | Family::All => &[A, Aaaa],
        Family::V6Preferred => &[Aaaa, A],
    };
    match done {
        [] => Some(order[0]),
        [(_, first)] if order.len() == 2 => {
            let ask = family == Family::All || *first == Outcome::NoData;
            ask.then_some(order[1])
        }
        _ => None,
    }
}

/// Ends a round: its outcomes and the watch's last good data per slot.
pub fn conclude(done: &[(RecordType, Outcome)], kept: &[Option<Vec<RData>>; 2]) -> Conclusion {
    if done.iter().any(|d| d.1 == Outcome::NxDomain) {
        return Conclusion::NoSuchName;
    }
    if done.iter().all(|d| d.1 == Outcome::Failed) {
        return Conclusion::Unreachable;
    }
    let mut by_type: [Option<Vec<RData>>; 2] = [None, None];
    let (mut ttl, mut partial) = (None::<u32>, false);
    for (t, outcome) in done {
        let i = slot(*t);
        match outcome {
            Outcome::Data(data, t) => {
                by_type[i] = Some(data.clone());
                ttl = Some(ttl.map_or(*t, |m| m.min(*t)));
            }
            Outcome::Failed => {
                by_type[i] = kept[i].clone();
                partial = true;
            }
            Outcome::NoData | Outcome::NxDomain => {}
        }
    }
    if by_type.iter().flatten().all(|d| d.is_empty()) {
        return match partial {
            true => Conclusion::Unreachable,
            false => Conclusion::NoSuchName,
        };
    }
    Conclusion::Answer {
        by_type,
        ttl,
        partial,
    }
}

#[derive(Debug)]
struct Try {
    id: u16,
    /// The type this try asks (A or AAAA for an address name, by the round).
    qtype: RecordType,
    ns: usize,
    round: u8,
    via: Via,
    /// `None` until `poll_transmit` hands it out.
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct Watch {
    name: Name,
    /// SRV, or A for an address name (the family decides the types asked).
    qtype: RecordType,
    last: Option<Vec<RData>>,
    /// The last good data per type ([`slot`]), of which `last` is the union.
    by_type: [Option<Vec<RData>>; 2],
    next_query: Option<Instant>,
    query: Option<Try>,
    /// This round's outcomes so far.
    round: Vec<(RecordType, Outcome)>,
    failure_reported: bool,
    nx_since: Option<Instant>,
}

impl Watch {
    fn new(name: Name, qtype: RecordType, now: Instant) -> Watch {
        Watch {
            name,
            qtype,
            last: None,
            by_type: [None, None],
            next_query: Some(now),
            query: None,
            round: Vec::new(),
            failure_reported: false,
            nx_since: None,
        }
    }
}

/// The resolver: watched names and their queries.
pub struct Resolver {
    config: ResolverConfig,
    /// Indexed by `WatchId`; `None` = unwatched (free for reuse).
    watches: Vec<Option<Watch>>,
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

    /// Starts watching `name`: SRV records for `RecordType::Srv`, else its addresses
    /// (A and/or AAAA by `family`). The first query goes out at the next
    /// `poll_transmit`. Reuses the slot of an unwatched name.
    pub fn watch(&mut self, name: Name, qtype: RecordType, now: Instant) -> WatchId {
        let qtype = match qtype {
            RecordType::Srv => RecordType::Srv,
            _ => RecordType::A,
        };
        let w = Some(Watch::new(name, qtype, now));
        match self.watches.iter().position(Option::is_none) {
            Some(i) => {
                self.watches[i] = w;
                i
            }
            None => {
                self.watches.push(w);
                self.watches.len() - 1
            }
        }
    }

    /// Stops watching: no more queries, the answer to one in flight is ignored, and
    /// its events not yet polled are dropped.
    pub fn unwatch(&mut self, watch: WatchId) {
        if let Some(w) = self.watches.get_mut(watch) {
            *w = None;
        }
        self.events.retain(|e| match e {
            Event::Changed { watch: w, .. } | Event::Failed { watch: w, .. } => *w != watch,
        });
    }

    /// Whether `watch` is watched.
    pub fn watching(&self, watch: WatchId) -> bool {
        matches!(self.watches.get(watch), Some(Some(_)))
    }

    /// Takes new settings (a reload); see the module docs for what happens to
    /// queries in flight.
    pub fn reconfigure(&mut self, config: ResolverConfig, now: Instant) {
        let servers = config.nameservers != self.config.nameservers;
        let family = config.family != self.config.family;
        let latest = now + config.max_ttl;
        self.config = config;
        for w in self.watches.iter_mut().flatten() {
            let restart = (servers && w.query.is_some()) || (family && w.qtype != RecordType::Srv);
            if restart {
                w.query = None;
                w.round.clear();
                w.next_query = Some(now);
            }
            w.next_query = w.next_query.map(|t| t.min(latest));
        }
    }

    /// Points `watch` at another name (the next search-list candidate) and
    /// forgets its state; the first query goes out at the next `poll_transmit`.
    pub fn retarget(&mut self, watch: WatchId, name: Name, now: Instant) {
        if let Some(Some(w)) = self.watches.get_mut(watch) {
            *w = Watch::new(name, w.qtype, now);
        }
    }

    /// The last good data of a watch.
    pub fn current(&self, watch: WatchId) -> Option<&[RData]> {
        self.watches.get(watch)?.as_ref()?.last.as_deref()
    }

    fn get(&mut self, i: WatchId) -> Option<&mut Watch> {
        self.watches.get_mut(i)?.as_mut()
    }

    /// The next query to send, if any is due. Call until `None` each turn.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let timeout = self.config.timeout;
        let nameservers = self.config.nameservers.len();
        let family = self.config.family;
        for (i, w) in self.watches.iter_mut().enumerate() {
            let Some(w) = w.as_mut() else { continue };
            if w.query.is_none() && w.next_query.is_some_and(|t| t <= now) && nameservers > 0 {
                w.next_query = None;
                w.round.clear();
                let qtype = next_step(family, w.qtype, &[]).unwrap_or(w.qtype);
                w.query = Some(Try {
                    id: self.rng.gen(),
                    qtype,
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
            build_query(q.id, &w.name, q.qtype, &mut msg);
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
            w.as_ref().and_then(|w| w.query.as_ref()).is_some_and(|q| {
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
        let Some(w) = self.get(i) else {
            return false;
        };
        let (name, qtype) = match &w.query {
            Some(q) => (w.name.clone(), q.qtype),
            None => return false,
        };
        if !msg.answers_query(header.id, &name, qtype) {
            return false;
        }
        if msg.header.tc && via == Via::Udp {
            // RFC 7766 §5: ask the same server again over TCP.
            let id = self.rng.gen();
            if let Some(q) = self.get(i).and_then(|w| w.query.as_mut()) {
                *q = Try {
                    id,
                    via: Via::Tcp,
                    deadline: None,
                    ..*q
                };
            }
            return true;
        }
        let outcome = match msg.header.rcode {
            rcode::NOERROR => {
                let r = resolve(&msg, &name, qtype);
                match r.ttl.filter(|_| !r.data.is_empty()) {
                    Some(ttl) => Outcome::Data(r.data, ttl),
                    None => Outcome::NoData,
                }
            }
            rcode::NXDOMAIN => Outcome::NxDomain,
            _ => {
                self.next_try(i, now);
                return true;
            }
        };
        self.step_done(i, qtype, outcome, now);
        true
    }

    /// Records how the round's current query ended; asks the next type or ends the round.
    fn step_done(&mut self, i: WatchId, qtype: RecordType, outcome: Outcome, now: Instant) {
        let (family, min_ttl) = (self.config.family, self.config.min_ttl);
        let id = self.rng.gen();
        let Some(w) = self.get(i) else { return };
        w.query = None;
        w.round.push((qtype, outcome));
        if let Some(qtype) = next_step(family, w.qtype, &w.round) {
            w.query = Some(Try {
                id,
                qtype,
                ns: 0,
                round: 0,
                via: Via::Udp,
                deadline: None,
            });
            return;
        }
        let round = std::mem::take(&mut w.round);
        match conclude(&round, &w.by_type) {
            Conclusion::NoSuchName => self.no_such_name(i, now),
            Conclusion::Unreachable => {
                w.next_query = Some(now + min_ttl);
                self.report(i, Failure::Unreachable);
            }
            Conclusion::Answer {
                by_type,
                ttl,
                partial,
            } => self.succeeded(i, by_type, ttl.filter(|_| !partial), now),
        }
    }

    /// `ttl`: `None` re-asks at `min_ttl` (a type's query failed).
    fn succeeded(
        &mut self,
        i: WatchId,
        by_type: [Option<Vec<RData>>; 2],
        ttl: Option<u32>,
        now: Instant,
    ) {
        let c = &self.config;
        let next = match ttl {
            Some(ttl) => Duration::from_secs(u64::from(ttl)).clamp(c.min_ttl, c.max_ttl),
            None => c.min_ttl,
        };
        let Some(w) = self.watches.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let data: Vec<RData> = by_type.iter().flatten().flatten().cloned().collect();
        w.by_type = by_type;
        w.next_query = Some(now + next);
        w.nx_since = None;
        if ttl.is_some() {
            w.failure_reported = false;
        }
        if w.last.as_ref() != Some(&data) {
            w.last = Some(data.clone());
            self.events.push(Event::Changed { watch: i, data });
        }
        if ttl.is_none() {
            self.report(i, Failure::Unreachable);
        }
    }

    fn no_such_name(&mut self, i: WatchId, now: Instant) {
        let (min_ttl, hold_nx) = (self.config.min_ttl, self.config.hold_nx);
        let Some(w) = self.get(i) else { return };
        w.query = None;
        w.next_query = Some(now + min_ttl);
        let since = *w.nx_since.get_or_insert(now);
        if w.last.is_some() && now.saturating_duration_since(since) >= hold_nx {
            w.last = None;
            w.by_type = [None, None];
            self.events.push(Event::Changed {
                watch: i,
                data: Vec::new(),
            });
        }
        self.report(i, Failure::NoSuchName);
    }

    /// Moves to the next nameserver, then the next round; after `attempts` rounds
    /// this type's query failed.
    fn next_try(&mut self, i: WatchId, now: Instant) {
        let (servers, attempts) = (self.config.nameservers.len(), self.config.attempts);
        let id = self.rng.gen();
        let Some(w) = self.get(i) else { return };
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
                qtype: q.qtype,
                ns,
                round,
                via: Via::Udp,
                deadline: None,
            });
            return;
        }
        self.step_done(i, q.qtype, Outcome::Failed, now);
    }

    fn report(&mut self, i: WatchId, failure: Failure) {
        let Some(w) = self.get(i) else { return };
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
            .flatten()
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
                .as_ref()
                .and_then(|w| w.query.as_ref())
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
