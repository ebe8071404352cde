//! DNS discovery of server names (`[resolver]`, `serverN_resolve`, `serverN_srv`) as a
//! component: no sockets, no clock. It owns the sans-IO [`Resolver`] and the groups'
//! configured servers (the templates); the reactor carries out its queries, feeds the
//! answers back, and after [`Discovery::process_events`] reports a change, applies
//! [`Discovery::expand`] to each group through the reload path (`Group::reconfigure`):
//! a new address becomes a server, a vanished one drains.
//!
//! Expansion of one template server `serverN`:
//! - `first`: one server `serverN` on the lowest address (stable when a DNS server
//!   rotates its answers);
//! - `all`: one server per address, `serverN#10.1.2.3` (`serverN#[2001:db8::1]`);
//! - SRV: the records of the lowest priority, one server per target address and port,
//!   `serverN#10.1.2.3:8080`, with the SRV weight (clamped to 1..=1000) as its weight;
//!   each target is itself a watched A name.
//!
//! Addresses are A and/or AAAA records by `[resolver] family` (see `resolver`); `first`
//! takes the lowest IPv4 address if any, else the lowest IPv6 one.
//!
//! A reload ([`Discovery::reconfigure`], [`Discovery::set_templates`]) keeps the names that
//! stay (their data and timers: no query at once) and stops querying the names nothing
//! refers to any more (not configured, not a target of a watched SRV name).
//!
//! A name with no data yet has no servers (its group answers 503 for it); names given
//! in the configuration go through the resolv.conf search list, the next candidate on
//! NXDOMAIN until one has data.
//!
//! With `workers = N` only the first worker's discovery resolves ([`Discovery::lead`]):
//! after each change it publishes its names' data to a [`Feed`], and the other
//! workers' discoveries ([`Discovery::follow`]) send no queries and expand their own
//! templates from the latest publication ([`Discovery::sync`]), so each name is still
//! queried once per TTL per process. The feed is the only state workers share; it is
//! touched only when some name's data or the start-up state changes.

use crate::config::{self, ResolveMode, ResolverSettings, ServerConfig, WEIGHT_RANGE};
use crate::resolv_conf::ResolvConf;
use crate::resolver::{Event, Failure, Resolver, ResolverConfig, Transmit, WatchId};
use log::{info, warn};
use protocol::dns::{Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Counters for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DnsStats {
    /// Queries sent (UDP datagrams and TCP fallbacks).
    pub queries: u64,
    /// Failure streaks (timeouts, SERVFAIL, NXDOMAIN), each counted once.
    pub failures: u64,
    /// Changes of a name's data.
    pub changes: u64,
}

/// Where start-up stands with `init = required`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitState {
    /// Some name has neither data nor a failure yet.
    Waiting,
    /// Every name has data.
    Done,
    /// This name failed (the message names the key).
    Failed(String),
}

/// One watched name.
#[derive(Clone, Debug)]
struct Watched {
    /// The name as configured (or an SRV target), the lookup key.
    name: String,
    qtype: RecordType,
    /// Search-list candidates, tried in order on NXDOMAIN.
    candidates: Vec<String>,
    candidate: usize,
    data: Option<Vec<RData>>,
    /// The last failure, while there is no data.
    failed: Option<Failure>,
    /// The key that configured it (error messages), e.g. `[http] server1_addr`.
    key: String,
}

/// What the resolving worker publishes for the others (`workers > 1`).
#[derive(Debug)]
struct Published {
    /// Bumped by each publication.
    version: u64,
    watched: Vec<Option<Watched>>,
    init: InitState,
}

/// The first worker's discovery results, shared with the other workers.
#[derive(Clone, Debug)]
pub struct Feed(Arc<Mutex<Published>>);

/// Who resolves.
#[derive(Debug)]
enum Role {
    /// The only worker: resolves for itself.
    Alone,
    /// Resolves and publishes each change (the first of several workers).
    Leads { feed: Feed, init: InitState },
    /// Sends no queries: mirrors what the leader published (`version` = the last seen).
    Follows { feed: Feed, version: u64 },
}

/// The discovery component.
pub struct Discovery {
    resolver: Resolver,
    conf: ResolvConf,
    /// Indexed like the resolver's watches; `None` = no longer watched. A follower's
    /// is the leader's last publication.
    watched: Vec<Option<Watched>>,
    templates: [config::Group; 2],
    stats: DnsStats,
    role: Role,
}

impl Discovery {
    /// `settings` override `conf` (resolv.conf); `seed` feeds the query IDs.
    pub fn new(settings: &ResolverSettings, conf: ResolvConf, seed: u64) -> Discovery {
        let rc = resolver_config(settings, &conf);
        Discovery {
            resolver: Resolver::new(rc, seed),
            conf,
            watched: Vec::new(),
            templates: Default::default(),
            stats: DnsStats::default(),
            role: Role::Alone,
        }
    }

    /// Makes this discovery the one that resolves for several workers; the feed it
    /// returns goes to the others' [`Discovery::follow`].
    pub fn lead(&mut self) -> Feed {
        let init = self.own_init_state();
        let feed = Feed(Arc::new(Mutex::new(Published {
            version: 1,
            watched: self.watched.clone(),
            init: init.clone(),
        })));
        self.role = Role::Leads {
            feed: feed.clone(),
            init,
        };
        feed
    }

    /// Makes this discovery mirror `feed` instead of resolving: its own watches end
    /// (no query is ever sent) and its servers come from the leader's data.
    pub fn follow(&mut self, feed: Feed) {
        for (i, slot) in self.watched.iter_mut().enumerate() {
            if slot.take().is_some() {
                self.resolver.unwatch(i);
            }
        }
        self.role = Role::Follows { feed, version: 0 };
        self.sync();
    }

    /// The leader: publishes its data when a name's data or the start-up state changed
    /// since the last publication; true when it did (the reactor wakes the followers).
    /// `changed` = some name's data changed (`process_events`).
    pub fn publish(&mut self, changed: bool) -> bool {
        let now_init = self.own_init_state();
        let Role::Leads { feed, init } = &mut self.role else {
            return false;
        };
        if !changed && *init == now_init {
            return false;
        }
        *init = now_init.clone();
        let mut p = feed.0.lock().unwrap_or_else(|e| e.into_inner());
        p.version += 1;
        p.watched = self.watched.clone();
        p.init = now_init;
        true
    }

    /// A follower: takes the leader's latest publication; true when it is new (the
    /// groups must be expanded again).
    pub fn sync(&mut self) -> bool {
        let Role::Follows { feed, version } = &mut self.role else {
            return false;
        };
        let p = feed.0.lock().unwrap_or_else(|e| e.into_inner());
        if p.version == *version {
            return false;
        }
        *version = p.version;
        self.watched = p.watched.clone();
        true
    }

    /// New `[resolver]` settings (a reload), over the resolv.conf read at start.
    pub fn reconfigure(&mut self, settings: &ResolverSettings, now: Instant) {
        self.resolver
            .reconfigure(resolver_config(settings, &self.conf), now);
    }

    /// Takes the configured groups (start, reload), watches every name in them and
    /// stops watching the names no longer used.
    /// A follower only keeps the templates: the leader watches.
    pub fn set_templates(&mut self, groups: [&config::Group; 2], now: Instant) {
        self.templates = [groups[0].clone(), groups[1].clone()];
        if matches!(self.role, Role::Follows { .. }) {
            return;
        }
        for (g, group) in groups.iter().enumerate() {
            for s in &group.servers {
                let Some(d) = &s.dns else { continue };
                let qtype = match d.mode {
                    ResolveMode::Srv => RecordType::Srv,
                    _ => RecordType::A,
                };
                let section = if g == 0 { "http" } else { "websocket" };
                let key = format!("[{section}] {} ({})", d.key, s.addr_text);
                let candidates = self.conf.candidates(&d.name);
                self.watch(&d.name, qtype, candidates, key, now);
            }
        }
        self.prune();
    }

    /// Unwatches the names neither a template nor a watched SRV name's data refer to.
    fn prune(&mut self) {
        let mut used: Vec<(String, RecordType)> = Vec::new();
        for s in self.templates.iter().flat_map(|g| &g.servers) {
            let Some(d) = &s.dns else { continue };
            match d.mode {
                ResolveMode::Srv => {
                    used.push((d.name.clone(), RecordType::Srv));
                    let data = self
                        .find(&d.name, RecordType::Srv)
                        .and_then(|w| w.data.as_ref());
                    for r in data.into_iter().flatten() {
                        if let RData::Srv { target, .. } = r {
                            let t = target.to_string().trim_end_matches('.').to_string();
                            used.push((t, RecordType::A));
                        }
                    }
                }
                _ => used.push((d.name.clone(), RecordType::A)),
            }
        }
        for (i, slot) in self.watched.iter_mut().enumerate() {
            let Some(w) = slot else { continue };
            let keep = used
                .iter()
                .any(|(n, t)| *t == w.qtype && n.eq_ignore_ascii_case(&w.name));
            if !keep {
                info!("dns {}: no longer used, not queried any more", w.name);
                self.resolver.unwatch(i);
                *slot = None;
            }
        }
    }

    /// Whether `watch` is still watched (the reactor closes the sockets of others).
    pub fn watching(&self, watch: WatchId) -> bool {
        self.resolver.watching(watch)
    }

    fn watch(
        &mut self,
        name: &str,
        qtype: RecordType,
        candidates: Vec<String>,
        key: String,
        now: Instant,
    ) {
        if self.find(name, qtype).is_some() {
            return;
        }
        let first = candidates.iter().find_map(|c| Name::from_dotted(c).ok());
        let Some(first) = first else {
            warn!("{key}: {name:?} is not a valid DNS name");
            return;
        };
        let id = self.resolver.watch(first, qtype, now);
        if self.watched.len() <= id {
            self.watched.resize_with(id + 1, || None);
        }
        self.watched[id] = Some(Watched {
            name: name.to_string(),
            qtype,
            candidates,
            candidate: 0,
            data: None,
            failed: None,
            key,
        });
    }

    fn find(&self, name: &str, qtype: RecordType) -> Option<&Watched> {
        self.watched
            .iter()
            .flatten()
            .find(|w| w.qtype == qtype && w.name.eq_ignore_ascii_case(name))
    }

    /// Whether no configured server is given as a name (nothing to resolve or wait for).
    pub fn is_empty(&self) -> bool {
        let mut servers = self.templates.iter().flat_map(|g| &g.servers);
        servers.all(|s| s.dns.is_none())
    }

    /// The next query to send (counted).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let t = self.resolver.poll_transmit(now)?;
        self.stats.queries += 1;
        Some(t)
    }

    /// A datagram from `from`; false when ignored (wrong ID, question or source).
    pub fn handle_udp(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) -> bool {
        self.resolver.handle_udp(from, bytes, now)
    }

    /// One message read from a TCP fallback connection to `from`.
    pub fn handle_tcp(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) -> bool {
        self.resolver.handle_tcp(from, bytes, now)
    }

    /// When the resolver next needs `on_timeout` or `poll_transmit`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.resolver.next_deadline()
    }

    /// Expires tries that got no answer.
    pub fn on_timeout(&mut self, now: Instant) {
        self.resolver.on_timeout(now);
    }

    /// Counters for `/metrics`.
    pub fn stats(&self) -> DnsStats {
        self.stats
    }

    /// Applies the resolver's events (logging each change and failure once); true when
    /// some name's data changed, so the groups must be expanded again.
    pub fn process_events(&mut self, now: Instant) -> bool {
        let mut changed = false;
        while let Some(ev) = self.resolver.poll_event() {
            match ev {
                Event::Changed { watch, data } => {
                    if self.changed(watch, data, now) {
                        changed = true;
                        self.stats.changes += 1;
                    }
                }
                Event::Failed {
                    watch,
                    failure,
                    kept,
                } => self.failed(watch, failure, kept, now),
            }
        }
        changed
    }

    /// New data for a watch; false when it is the same set in another order (DNS
    /// servers rotate their answers).
    fn changed(&mut self, watch: WatchId, mut data: Vec<RData>, now: Instant) -> bool {
        let Some(Some(w)) = self.watched.get_mut(watch) else {
            return false;
        };
        data.sort_by_key(|d| format!("{d:?}"));
        if w.data.as_ref() == Some(&data) {
            return false;
        }
        let shown = show(&data);
        let was = w.data.as_deref().map_or("none".to_string(), show);
        let what = match w.qtype {
            RecordType::Srv => "SRV",
            _ => "addresses",
        };
        info!("dns {} {what}: {shown} (was {was})", w.name);
        w.failed = None;
        w.data = Some(data).filter(|d| !d.is_empty());
        if w.qtype != RecordType::Srv {
            return true;
        }
        let key = w.key.clone();
        let targets: Vec<String> = w
            .data
            .iter()
            .flatten()
            .filter_map(|d| match d {
                RData::Srv { target, .. } => Some(target.to_string()),
                _ => None,
            })
            .collect();
        for t in targets.into_iter().filter(|t| !t.is_empty() && t != ".") {
            let t = t.trim_end_matches('.').to_string();
            self.watch(&t, RecordType::A, vec![t.clone()], key.clone(), now);
        }
        self.prune();
        true
    }

    fn failed(&mut self, watch: WatchId, failure: Failure, kept: bool, now: Instant) {
        let Some(Some(w)) = self.watched.get_mut(watch) else {
            return;
        };
        if !kept && failure == Failure::NoSuchName && w.candidate + 1 < w.candidates.len() {
            w.candidate += 1;
            if let Ok(next) = Name::from_dotted(&w.candidates[w.candidate]) {
                self.resolver.retarget(watch, next, now);
                return;
            }
        }
        self.stats.failures += 1;
        let why = match failure {
            Failure::Unreachable => "no answer (timeout or server failure)",
            Failure::NoSuchName => "no such name",
        };
        if kept {
            warn!(
                "dns {}: {why}; keeping the last addresses, retrying",
                w.name
            );
        } else {
            w.failed = Some(failure);
            warn!(
                "dns {} ({}): {why}; no servers for it yet, retrying",
                w.name, w.key
            );
        }
    }

    /// Start-up with `init = required`: done, waiting, or failed naming the key. A
    /// follower is done when the leader is, and otherwise waits: a failure is the
    /// leader's to report, and it stops the whole process.
    pub fn init_state(&self) -> InitState {
        match &self.role {
            Role::Follows { feed, .. } => {
                let p = feed.0.lock().unwrap_or_else(|e| e.into_inner());
                match p.init {
                    InitState::Done => InitState::Done,
                    _ => InitState::Waiting,
                }
            }
            _ => self.own_init_state(),
        }
    }

    fn own_init_state(&self) -> InitState {
        if let Some(w) = self.watched.iter().flatten().find(|w| w.failed.is_some()) {
            let why = match w.failed {
                Some(Failure::NoSuchName) => "no such name",
                _ => "no answer from the nameservers",
            };
            return InitState::Failed(format!("{}: cannot resolve {}: {why}", w.key, w.name));
        }
        if self.watched.iter().flatten().all(|w| w.data.is_some()) {
            InitState::Done
        } else {
            InitState::Waiting
        }
    }

    /// Group `g`'s configuration with its discovered servers expanded (see the module docs).
    pub fn expand(&self, g: usize) -> config::Group {
        let mut out = self.templates[g].clone();
        out.servers.clear();
        for s in &self.templates[g].servers {
            match &s.dns {
                None => out.servers.push(s.clone()),
                Some(d) => out.servers.extend(self.expand_server(s, d.mode, d.port)),
            }
        }
        out
    }

    fn addresses(&self, name: &str) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = self
            .find(name, RecordType::A)
            .and_then(|w| w.data.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|d| match d {
                RData::A(ip) => Some(IpAddr::V4(*ip)),
                RData::Aaaa(ip) => Some(IpAddr::V6(*ip)),
                _ => None,
            })
            .collect();
        ips.sort();
        ips.dedup();
        ips
    }

    fn expand_server(&self, s: &ServerConfig, mode: ResolveMode, port: u16) -> Vec<ServerConfig> {
        let name = &s.dns.as_ref().map_or("", |d| d.name.as_str());
        let one = |addr: SocketAddr, suffix: Option<String>, weight: u32| {
            let mut c = s.clone();
            c.addr = addr;
            c.weight = weight;
            if let Some(suffix) = suffix {
                c.name = format!("{}#{suffix}", s.name);
            }
            c
        };
        match mode {
            ResolveMode::First => self
                .addresses(name)
                .first()
                .map(|&ip| one(SocketAddr::new(ip, port), None, s.weight))
                .into_iter()
                .collect(),
            ResolveMode::All => self
                .addresses(name)
                .into_iter()
                .map(|ip| {
                    // Bracketed as in URLs: `server1#[2001:db8::1]`.
                    let shown = match ip {
                        IpAddr::V4(v4) => v4.to_string(),
                        IpAddr::V6(v6) => format!("[{v6}]"),
                    };
                    one(SocketAddr::new(ip, port), Some(shown), s.weight)
                })
                .collect(),
            ResolveMode::Srv => {
                let records = self
                    .find(name, RecordType::Srv)
                    .and_then(|w| w.data.as_ref());
                let srv: Vec<(u16, u16, u16, String)> = records
                    .into_iter()
                    .flatten()
                    .filter_map(|d| match d {
                        RData::Srv {
                            priority,
                            weight,
                            port,
                            target,
                        } => Some((*priority, *weight, *port, target.to_string())),
                        _ => None,
                    })
                    .collect();
                let Some(best) = srv.iter().map(|r| r.0).min() else {
                    return Vec::new();
                };
                let mut out: Vec<ServerConfig> = Vec::new();
                for (_, weight, port, target) in srv.iter().filter(|r| r.0 == best) {
                    let (lo, hi) = WEIGHT_RANGE;
                    let w = u32::from(*weight).clamp(lo as u32, hi as u32);
                    for ip in self.addresses(target.trim_end_matches('.')) {
                        let addr = SocketAddr::new(ip, *port);
                        if !out.iter().any(|c| c.addr == addr) {
                            out.push(one(addr, Some(addr.to_string()), w));
                        }
                    }
                }
                out.sort_by_key(|c| c.addr);
                out
            }
        }
    }
}

/// The resolver's settings: `[resolver]` over resolv.conf.
fn resolver_config(settings: &ResolverSettings, conf: &ResolvConf) -> ResolverConfig {
    ResolverConfig {
        nameservers: settings
            .nameservers
            .clone()
            .unwrap_or_else(|| conf.nameservers_or_default()),
        timeout: settings.timeout.unwrap_or(conf.timeout),
        attempts: settings.attempts.unwrap_or(conf.attempts),
        min_ttl: settings.min_ttl,
        max_ttl: settings.max_ttl,
        hold_nx: settings.hold_nx,
        family: settings.family,
    }
}

fn show(data: &[RData]) -> String {
    if data.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = data
        .iter()
        .map(|d| match d {
            RData::A(ip) => ip.to_string(),
            RData::Aaaa(ip) => ip.to_string(),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("{target}:{port} (priority {priority}, weight {weight})"),
            other => format!("{other:?}"),
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests;
