//! The reactor: one thread, one `mio::Poll`, every socket sluice owns.
//!
//! Each turn: compute the poll timeout from the earliest deadline, poll, read the
//! clock once (`self.now`), dispatch every event through one `match` on the token's
//! kind, then fire expired deadlines. This is the only module that reads the clock.
//!
//! Tokens: `token = generation << 32 | index << 3 | kind`. The kind picks the slab
//! (listener, client, backend, DNS query socket); the generation is a counter bumped on every
//! registration and stored in the slab entry, so an event for a socket that died,
//! whose slot was reused in the same turn, finds a different token and is ignored.

use crate::access_log::AccessLog;
use crate::backend::{BState, Backend};
use crate::buf::BufPool;
use crate::config::{Config, GroupKind};
use crate::group::{Group, SrvId};
use crate::io::{listen_error, Listener, Ready, Sock, Stream};
use crate::pool::Held;
use crate::session::{Client, Phase};
use crate::timer::{Owner, Timers};
use crate::token::{self, BRef, CRef, Kind};
use log::{debug, info, warn};
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use slab::Slab;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Longest poll sleep with nothing scheduled (keeps shutdown checks responsive).
const MAX_POLL_WAIT: Duration = Duration::from_secs(1);

/// Events taken per `poll` call.
const EVENTS_PER_POLL: usize = 1024;

mod admin;
mod backend;
mod dns;
mod exchange;
mod http;
mod interest;
mod lifecycle;
mod limits;
mod probe;
mod proxy;
mod rebalance;
#[cfg(feature = "tls")]
mod tls;
mod tunnel;

/// Where a token points.
enum Source {
    Listener,
    #[cfg(feature = "tls")]
    TlsListener,
    Admin,
    Signal,
    Client(usize),
    Backend(usize),
    Dns(usize),
    Stale,
}

/// Process-wide counters (exposed by logs and, later, metrics).
#[derive(Default, Debug, Clone, Copy)]
pub struct Stats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Requests answered (by a backend or by sluice itself).
    pub requests: u64,
}

/// Requests another thread may make of a running reactor: `stop`, and the others as
/// bits of `pending`, so a turn with none costs one plain load.
#[derive(Default)]
struct Requests {
    stop: AtomicBool,
    pending: AtomicU8,
}

const DRAIN: u8 = 1;
const RELOAD: u8 = 2;
const REOPEN_LOGS: u8 = 4;
/// The resolving worker published new DNS data (`workers > 1`).
const DNS: u8 = 8;

impl Requests {
    fn ask(&self, bit: u8) {
        self.pending.fetch_or(bit, Ordering::SeqCst);
    }

    /// Takes `bit` alone, leaving the others for `take`.
    fn take_one(&self, bit: u8) -> bool {
        self.pending.fetch_and(!bit, Ordering::SeqCst) & bit != 0
    }

    /// The requests made since the last call (0 = none).
    #[inline]
    fn take(&self) -> u8 {
        if self.pending.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.pending.swap(0, Ordering::SeqCst)
    }
}

/// A handle to a running reactor from another thread: stop it, drain it, reload it
/// (tests, and the first worker forwarding signals to the others).
#[derive(Clone)]
pub struct StopHandle {
    waker: Arc<mio::Waker>,
    requests: Arc<Requests>,
}

impl StopHandle {
    /// Asks the reactor to stop at its next turn.
    pub fn stop(&self) {
        self.requests.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
    /// Asks the reactor to shut down as on SIGTERM: a graceful drain, after
    /// `shutdown_delay` when one is set.
    pub fn drain(&self) {
        self.requests.ask(DRAIN);
        let _ = self.waker.wake();
    }
    /// Asks the reactor to reload its configuration file.
    pub fn reload(&self) {
        self.requests.ask(RELOAD);
        let _ = self.waker.wake();
    }
    /// Asks the reactor to reopen its access-log file (SIGUSR1).
    pub fn reopen_logs(&self) {
        self.requests.ask(REOPEN_LOGS);
        let _ = self.waker.wake();
    }
    /// Tells a following reactor that the resolving one published new DNS data.
    pub(crate) fn dns_published(&self) {
        self.requests.ask(DNS);
        let _ = self.waker.wake();
    }
}

const WAKER_TOKEN: Token = Token(usize::MAX);
const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);
const LISTENER_TOKEN: Token = token::encode(0, 0, Kind::Listener);
const ADMIN_TOKEN: Token = token::encode(0, 0, Kind::Admin);
#[cfg(feature = "tls")]
const TLS_LISTENER_TOKEN: Token = token::encode(0, 1, Kind::Listener);

/// The single-threaded proxy.
pub struct Reactor {
    poll: Poll,
    /// The client listener (None once draining).
    listener: Option<Listener>,
    pub(crate) listen_addr: SocketAddr,
    /// The admin endpoint's listener, when `[admin]` is configured.
    admin: Option<Listener>,
    admin_ready: bool,
    /// SIGTERM / SIGINT / SIGHUP as mio events (only in the real process).
    signals: Option<signal_hook_mio::v1_0::Signals>,
    /// Where the configuration came from (SIGHUP re-reads it).
    pub(crate) config_path: Option<String>,
    /// When the reactor started (uptime).
    pub(crate) started: Instant,
    /// Drain deadline and other reactor-level timing.
    pub(crate) reactor_deadline: crate::timer::Deadline,
    /// Tunnels to close during a drain, soonest last.
    pub(crate) drain_tunnels: Vec<(Instant, CRef)>,
    /// When a drain gives up waiting.
    pub(crate) drain_until: Option<Instant>,
    /// SIGTERM arrived: `/readyz` fails and the drain starts at this time
    /// (`shutdown_delay`).
    pub(crate) shutdown_until: Option<Instant>,
    /// `reload_on_change`: the configuration file's last version and next check.
    pub(crate) watch: Option<crate::watch::Watch>,
    /// The listener was readable and not drained (at `max_connections`).
    listener_ready: bool,
    pub(crate) clients: Slab<Client>,
    pub(crate) backends: Slab<Backend>,
    pub(crate) groups: [Group; 2],
    pub(crate) timers: Timers,
    pub(crate) bufs: BufPool,
    /// Reused scratch space for rewritten heads and generated responses.
    pub(crate) scratch: Vec<u8>,
    pub(crate) rng: SmallRng,
    generation: u32,
    pub(crate) cfg: Config,
    pub(crate) limits: protocol::h1::Limits,
    pub(crate) now: Instant,
    /// The wall clock, read once per turn with `now` while the access log is on.
    pub(crate) wall: SystemTime,
    /// Access-log lines, written once per turn (`access_log.rs`).
    pub(crate) access: AccessLog,
    pub(crate) stats: Stats,
    /// Clients whose exchange was advanced by someone else's event (a backend handed
    /// over from the pool): driven before the next poll so no output is stranded.
    pub(crate) ready: Vec<CRef>,
    /// The client whose `drive_client` loop is running (see `wake`).
    pub(crate) driving: Option<usize>,
    /// Graceful shutdown in progress: responses carry `Connection: close`.
    pub(crate) draining: bool,
    /// The last health transitions, newest last (status page).
    pub(crate) transitions: std::collections::VecDeque<(Instant, String)>,
    /// The last ten minutes per group and server (status page charts).
    pub(crate) history: crate::history::History,
    /// Start-up check: does any server of each group accept a connection?
    pub(crate) reach: crate::reach::Reach,
    requests: Arc<Requests>,
    waker: Arc<mio::Waker>,
    /// The other workers' handles (signals arrive at the first worker only).
    peers: Vec<StopHandle>,
    /// Sheds WebSocket tunnels of over-share servers (`[websocket] rebalance`).
    pub(crate) rebalancer: crate::rebalance::Rebalancer,
    /// When the rebalancer looks next (unset while rebalancing is off).
    pub(crate) rebalance_timer: crate::timer::Deadline,
    /// Tunnels the rebalancer closed in this episode, per `[websocket]` server.
    pub(crate) rebalance_closed: Vec<u32>,
    /// Tunnels closed by rebalancing, and episodes that closed any (`/metrics`).
    pub(crate) rebalanced: (u64, u64),
    /// Connections per client address (`[frontend] max_connections_per_client`).
    pub(crate) client_limits: crate::clients::ClientLimits,
    /// DNS discovery of server names (the component; `reactor/dns.rs` does its IO).
    pub(crate) discovery: crate::discovery::Discovery,
    /// Its query sockets (`Kind::Dns`).
    pub(crate) dns_socks: Slab<dns::DnsSock>,
    /// When the resolver next needs the loop.
    pub(crate) dns_deadline: crate::timer::Deadline,
    /// The `[tls]` listener, certificates, backend trust and handshake counts.
    #[cfg(feature = "tls")]
    pub(crate) tls: tls::Tls,
}

impl Reactor {
    /// Binds the listener and prepares the pools. Nothing is connected until `run`.
    pub fn new(cfg: Config) -> io::Result<Reactor> {
        let seed = rand::random::<u64>();
        Reactor::with_seed(cfg, seed)
    }

    /// As `new`, with the balancer's random seed fixed (tests).
    pub fn with_seed(cfg: Config, seed: u64) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let (listen, reuse) = (cfg.frontend.listen, cfg.frontend.workers > 1);
        let mut listener =
            bind_listener(listen, reuse).map_err(listen_error(listen, "frontend"))?;
        let listen_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER_TOKEN, Interest::READABLE)?;
        let admin = match &cfg.admin {
            Some(a) => {
                let mut l = Listener::bind(a.listen).map_err(listen_error(a.listen, "admin"))?;
                poll.registry()
                    .register(&mut l, ADMIN_TOKEN, Interest::READABLE)?;
                Some(l)
            }
            None => None,
        };
        #[cfg(feature = "tls")]
        let tls = tls::Tls::new(&cfg, poll.registry(), TLS_LISTENER_TOKEN)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER_TOKEN)?);
        let access = open_access_log(&cfg)?;
        let now = Instant::now();
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = crate::resolv_conf::parse_resolv_conf(&resolv);
        let mut discovery = crate::discovery::Discovery::new(&cfg.resolver, resolv, seed);
        discovery.set_templates([&cfg.http, &cfg.websocket], now);
        let groups = [
            Group::new(&discovery.expand(0), now),
            Group::new(&discovery.expand(1), now),
        ];
        let rebalancer = crate::rebalance::Rebalancer::new(rebalance::params(&cfg));
        let client_limits =
            crate::clients::ClientLimits::new(cfg.frontend.max_connections_per_client);
        let limits = protocol::h1::Limits {
            max_head_bytes: cfg.frontend.max_header_bytes,
            max_headers: protocol::h1::MAX_HEADERS,
            max_body_bytes: cfg.frontend.max_body_bytes,
        };
        let servers = [groups[0].servers.len(), groups[1].servers.len()];
        let reach = crate::reach::Reach::new(servers);
        Ok(Reactor {
            poll,
            listener: Some(listener),
            listen_addr,
            admin,
            admin_ready: false,
            signals: None,
            config_path: None,
            started: now,
            reactor_deadline: Default::default(),
            drain_tunnels: Vec::new(),
            drain_until: None,
            shutdown_until: None,
            watch: None,
            listener_ready: false,
            clients: Slab::new(),
            backends: Slab::new(),
            groups,
            timers: Timers::default(),
            bufs: BufPool::default(),
            scratch: Vec::with_capacity(4096),
            rng: SmallRng::seed_from_u64(seed),
            generation: 0,
            cfg,
            limits,
            now,
            wall: SystemTime::now(),
            access,
            stats: Stats::default(),
            ready: Vec::new(),
            driving: None,
            draining: false,
            transitions: Default::default(),
            reach,
            history: crate::history::History::new(now, crate::history::STEP, servers),
            requests: Default::default(),
            waker,
            peers: Vec::new(),
            rebalancer,
            rebalance_timer: Default::default(),
            rebalance_closed: Vec::new(),
            rebalanced: (0, 0),
            client_limits,
            discovery,
            dns_socks: Slab::new(),
            dns_deadline: Default::default(),
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// The address the listener is bound to (port 0 in the config picks one).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.listen_addr)
    }

    /// The admin endpoint's address, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Handles SIGTERM/SIGINT (graceful drain; a second one exits at once), SIGHUP
    /// (reload `config_path`) and SIGUSR1 (reopen the access-log file). Only for the
    /// real process: signals are process-wide.
    pub fn enable_signals(&mut self, config_path: Option<String>) -> io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        let mut signals = signal_hook_mio::v1_0::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
        self.signals = Some(signals);
        self.config_path = config_path;
        Ok(())
    }

    /// A handle that stops `run` from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            waker: self.waker.clone(),
            requests: self.requests.clone(),
        }
    }

    /// Runs until stopped.
    pub fn run(&mut self) -> io::Result<()> {
        self.log_summary();
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        if self.cfg.resolver.init == crate::config::InitMode::Required && !self.discovery.is_empty()
        {
            self.resolve_at_start(&mut events)?;
        }
        self.start(Instant::now());
        self.accept_all();
        self.accept_admin();
        while !self.requests.stop.load(Ordering::Relaxed) && !self.drained() {
            let timeout = self
                .timers
                .next()
                .map(|at| at.saturating_duration_since(self.now).min(MAX_POLL_WAIT))
                .unwrap_or(MAX_POLL_WAIT);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.now = Instant::now();
            if self.access.is_on() {
                self.wall = SystemTime::now();
            }
            self.take_requests();
            self.turn(events.iter().map(|ev| (ev.token(), Ready::from_event(ev))));
        }
        self.access.flush();
        info!(
            "stopping: {} clients, {} backend connections open",
            self.clients.len(),
            self.backends.len()
        );
        Ok(())
    }

    /// Opens the pools, schedules the first health checks and sends the first DNS queries.
    fn start(&mut self, now: Instant) {
        self.now = now;
        self.start_pools();
        self.start_health();
        self.set_rebalance_timer(Some(now + crate::rebalance::CHECK_INTERVAL));
        self.sync_watch();
        self.dns_flush();
    }

    /// Before `start` (`resolve_at_start`): DNS events are handled, listener readiness is
    /// only remembered (accepted after start), anything else cannot happen yet.
    fn on_start_event(&mut self, token: Token) {
        match self.source(token) {
            Source::Listener => self.listener_ready = true,
            Source::Admin => self.admin_ready = true,
            Source::Signal => self.on_signals(),
            Source::Dns(i) => self.on_dns_event(i),
            _ => {}
        }
    }

    fn stop_requested(&self) -> bool {
        self.requests.stop.load(Ordering::Relaxed)
    }

    /// One turn after the poll: every event, then the deadlines that are due at
    /// `self.now`. The simulated network (`sim` feature) drives the reactor through
    /// this same function.
    fn turn(&mut self, events: impl Iterator<Item = (Token, Ready)>) {
        for (token, ready) in events {
            self.dispatch_event(token, ready);
            self.drive_ready();
        }
        self.fire_timers();
        self.drive_ready();
        self.access.flush();
        self.sample_history();
    }

    fn dispatch_event(&mut self, token: Token, ready: Ready) {
        match self.source(token) {
            Source::Listener => {
                self.listener_ready = true;
                self.accept_all();
            }
            #[cfg(feature = "tls")]
            Source::TlsListener => {
                self.tls.ready = true;
                self.accept_tls();
            }
            Source::Admin => {
                self.admin_ready = true;
                self.accept_admin();
            }
            Source::Signal => self.on_signals(),
            Source::Client(i) => {
                self.clients[i].sock.on_event(ready);
                self.drive_client(i);
            }
            Source::Backend(i) => {
                self.backends[i].sock.on_event(ready);
                self.on_backend_event(i);
            }
            Source::Dns(i) => self.on_dns_event(i),
            Source::Stale => {}
        }
    }

    fn drive_ready(&mut self) {
        while let Some(c) = self.ready.pop() {
            if self.client_valid(c) {
                self.drive_client(c.index);
            }
        }
    }

    fn source(&self, token: Token) -> Source {
        if token == WAKER_TOKEN {
            return Source::Stale;
        }
        if token == SIGNAL_TOKEN {
            return Source::Signal;
        }
        match token::decode(token.0) {
            (Kind::Listener, _) if token == LISTENER_TOKEN => Source::Listener,
            #[cfg(feature = "tls")]
            (Kind::Listener, _) if token == TLS_LISTENER_TOKEN => Source::TlsListener,
            (Kind::Admin, _) if token == ADMIN_TOKEN => Source::Admin,
            (Kind::Client, index) if CRef { index, token }.alive(&self.clients) => {
                Source::Client(index)
            }
            (Kind::Backend, index) if BRef { index, token }.alive(&self.backends) => {
                Source::Backend(index)
            }
            (Kind::Dns, index)
                if self
                    .dns_socks
                    .get(index)
                    .is_some_and(|d| d.token() == token) =>
            {
                Source::Dns(index)
            }
            _ => Source::Stale,
        }
    }

    /// Makes `run` return at its next turn.
    pub(crate) fn stop_flag(&self) {
        self.requests.stop.store(true, Ordering::SeqCst);
    }

    /// The file SIGHUP (or a forwarded reload) re-reads.
    pub fn set_config_path(&mut self, path: Option<String>) {
        self.config_path = path;
    }

    /// Other workers to forward signals to.
    pub fn set_peers(&mut self, peers: Vec<StopHandle>) {
        self.peers = peers;
    }

    pub(crate) fn peers(&self) -> &[StopHandle] {
        &self.peers
    }

    fn take_requests(&mut self) {
        let asked = self.requests.take();
        if asked == 0 {
            return;
        }
        if asked & DRAIN != 0 {
            self.shutdown();
        }
        if asked & RELOAD != 0 {
            self.reload();
        }
        if asked & REOPEN_LOGS != 0 {
            self.access.reopen();
        }
        if asked & DNS != 0 {
            self.dns_sync();
        }
    }

    /// Stops accepting new clients (drain).
    pub(crate) fn close_listener(&mut self) {
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.listener_ready = false;
        #[cfg(feature = "tls")]
        self.tls.close_listener(self.poll.registry());
    }

    /// Reads pending signals.
    fn on_signals(&mut self) {
        let mut got = Vec::new();
        if let Some(s) = self.signals.as_mut() {
            got.extend(s.pending());
        }
        for sig in got {
            self.on_signal(sig);
        }
    }

    fn next_token(&mut self, index: usize, kind: Kind) -> Token {
        self.generation = self.generation.wrapping_add(1);
        token::encode(self.generation, index, kind)
    }

    fn accept_all(&mut self) {
        while self.listener_ready {
            if self.clients.len() >= self.cfg.frontend.max_connections {
                // Leave the rest in the kernel's accept queue; `listener_ready` stays
                // set so the next close resumes accepting (the edge will not repeat).
                return;
            }
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.add_client(stream, peer, false);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.listener_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: log once per burst and retry on the next turn.
                    warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn accept_admin(&mut self) {
        while self.admin_ready {
            let Some(listener) = self.admin.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.add_client(stream, peer, true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.admin_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("admin accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn add_client(&mut self, mut stream: Stream, peer: SocketAddr, admin: bool) -> Option<usize> {
        let _ = stream.set_nodelay(true);
        let index = self.clients.vacant_key();
        let token = self.next_token(index, Kind::Client);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!("register client {peer}: {e}");
            return None;
        }
        let mut client = Client::new(token, Sock::new(stream), peer);
        client.admin = admin;
        let proxy = self.cfg.frontend.accept_proxy.filter(|_| !admin);
        if let Some(accept) = proxy {
            client.set_phase(Phase::Proxy { accept });
        }
        let inserted = self.clients.insert(client);
        debug_assert_eq!(inserted, index);
        if !admin {
            self.stats.accepted += 1;
        }
        // The PROXY header is bounded by the header timeout, as a request head is.
        let idle = self.now
            + match proxy {
                Some(_) => self.cfg.frontend.request_header_timeout,
                None => self.cfg.frontend.client_idle_timeout,
            };
        let c = &mut self.clients[index];
        c.deadline
            .set(Some(idle), Owner::Client(token.0), &mut self.timers);
        // Behind a PROXY header the client's address is known once the header is read:
        // it is counted then (`reactor/proxy.rs`).
        if !admin && proxy.is_none() && self.client_limits.enabled() {
            self.admit_client(index, peer.ip());
        }
        Some(index)
    }

    /// Closes a client: its buffers go back to the pool, its slot is freed, and any
    /// backend connection it was using is closed (never reused mid-exchange).
    pub(crate) fn close_client(&mut self, i: usize) {
        if !self.clients.contains(i) {
            return;
        }
        let mut c = self.clients.remove(i);
        let _ = self.poll.registry().deregister(&mut c.sock.stream);
        self.bufs.release(&mut c.rbuf);
        self.bufs.release(&mut c.wbuf);
        crate::io::drop_pipe(&mut c.sock, &mut self.bufs);
        if c.counted {
            self.client_closed(&c);
        }
        #[cfg(feature = "tls")]
        self.tls_closed(&mut c.sock, tls::Side::Client, &c.peer);
        match c.take_phase() {
            Phase::Exchange(ex) => self.abandon_exchange(i, c.token, ex),
            Phase::Tunnel(t) => {
                self.tunnel_log(&c, &t);
                self.drop_tunnel(t);
            }
            _ => {}
        }
        if self.listener_ready {
            self.accept_all();
        }
        #[cfg(feature = "tls")]
        if self.tls.ready {
            self.accept_tls();
        }
    }

    /// Opens a non-blocking connection to a server and registers it.
    pub(crate) fn connect_backend(&mut self, srv: SrvId, state: BState) -> Option<usize> {
        let addr = self.groups[srv.group].servers[srv.server].cfg.addr;
        let mut stream = match Stream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                debug!("connect {addr}: {e}");
                self.reached(srv, Err("connect failed"));
                return None;
            }
        };
        let _ = stream.set_nodelay(true);
        let index = self.backends.vacant_key();
        let token = self.next_token(index, Kind::Backend);
        let pooled = matches!(state, BState::Connecting);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!("register backend {addr}: {e}");
            return None;
        }
        let deadline = self.now + self.groups[srv.group].cfg.connect_timeout;
        let idx = self
            .backends
            .insert(Backend::new(token, Sock::new(stream), srv, state));
        debug_assert_eq!(idx, index);
        #[cfg(feature = "tls")]
        if !self.tls_connect(idx, srv) {
            let _ = self.backends.remove(idx);
            return None;
        }
        let b = &mut self.backends[idx];
        b.pooled = pooled;
        b.deadline
            .set(Some(deadline), Owner::Backend(token.0), &mut self.timers);
        Some(idx)
    }

    /// Deregisters and drops a backend connection, fixing up its pool's counts.
    pub(crate) fn close_backend(&mut self, i: usize) {
        if !self.backends.contains(i) {
            return;
        }
        let mut b = self.backends.remove(i);
        let _ = self.poll.registry().deregister(&mut b.sock.stream);
        self.bufs.release(&mut b.rbuf);
        self.bufs.release(&mut b.wbuf);
        crate::io::drop_pipe(&mut b.sock, &mut self.bufs);
        #[cfg(feature = "tls")]
        if b.sock.tls.is_some() {
            let name = self.server_name(b.srv);
            self.tls_closed(&mut b.sock, tls::Side::Backend, &name);
        }
        if !b.pooled {
            return;
        }
        let held = match b.state {
            BState::Connecting | BState::Handshake => Held::Connecting,
            BState::Idle => Held::Idle,
            BState::Busy(_) => Held::Busy,
            BState::Probe { .. } | BState::Tunnel(_) => return,
        };
        let server = &mut self.groups[b.srv.group].servers[b.srv.server];
        let lim = server.limits();
        if server.pool.closed(i, held, lim) {
            self.refill_pool(b.srv);
        }
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        while let Some(owner) = self.timers.pop_due(now) {
            #[cfg(feature = "sim")]
            crate::simnet::work(crate::simnet::Work::TimerPop, &|| format!("{owner:?}"));
            match owner {
                Owner::Client(t) => {
                    let (_, i) = token::decode(t);
                    let c = CRef {
                        index: i,
                        token: Token(t),
                    };
                    let Some(c) = c.get_mut(&mut self.clients) else {
                        continue;
                    };
                    if c.deadline.fire(now, owner, &mut self.timers) {
                        self.on_client_timeout(i);
                    }
                }
                Owner::Backend(t) => {
                    let (_, i) = token::decode(t);
                    let b = BRef {
                        index: i,
                        token: Token(t),
                    };
                    let Some(b) = b.get_mut(&mut self.backends) else {
                        continue;
                    };
                    if b.deadline.fire(now, owner, &mut self.timers) {
                        self.on_backend_timeout(i);
                    }
                }
                Owner::Health(g, s) => self.on_health_timer(g, s),
                Owner::Reactor => {
                    if self.reactor_deadline.fire(now, owner, &mut self.timers) {
                        self.on_reactor_timeout();
                    }
                }
                Owner::Rebalance => {
                    if self.rebalance_timer.fire(now, owner, &mut self.timers) {
                        self.on_rebalance_timer();
                    }
                }
                Owner::Dns => {
                    if self.dns_deadline.fire(now, owner, &mut self.timers) {
                        self.on_dns_timeout();
                    }
                }
            }
        }
    }

    fn log_summary(&self) {
        info!(
            "sluice {} listening on {} (max {} connections)",
            env!("CARGO_PKG_VERSION"),
            self.listen_addr,
            self.cfg.frontend.max_connections
        );
        if let Some(admin) = self.admin_addr() {
            info!("admin endpoint on http://{admin}/status (/metrics, /status.json)");
        }
        for g in &self.groups {
            if g.servers.is_empty() {
                continue;
            }
            let name = match g.cfg.kind {
                GroupKind::Http => "http",
                GroupKind::WebSocket => "websocket",
            };
            info!(
                "[{name}] algorithm {}, health checks {}, {} server(s)",
                g.cfg.algorithm,
                if g.cfg.enable_health_check {
                    format!(
                        "every {:?} (GET {})",
                        g.cfg.health_check_interval, g.cfg.health_check_path
                    )
                } else {
                    "off".to_string()
                },
                g.servers.len()
            );
            for s in &g.servers {
                if g.cfg.kind == GroupKind::WebSocket {
                    // No pool: every tunnel has its own connection.
                    info!(
                        "[{name}] {} {} ({}) weight {}",
                        s.cfg.name, s.cfg.addr_text, s.cfg.addr, s.cfg.weight
                    );
                    continue;
                }
                info!(
                    "[{name}] {} {} ({}) pool {}..{} connections, queue {}, weight {}",
                    s.cfg.name,
                    s.cfg.addr_text,
                    s.cfg.addr,
                    s.cfg.min_workers,
                    s.cfg.max_workers,
                    s.cfg.buffer_size,
                    s.cfg.weight
                );
            }
        }
    }
}

/// The reactor without `run`'s loop, for the simulated network: the test owns the
/// clock and the events, and everything else is the code that runs in production.
#[cfg(feature = "sim")]
impl Reactor {
    /// What `run` does before its first poll.
    pub fn sim_start(&mut self, now: Instant) {
        self.start(now);
    }

    /// One turn at `now` with these events (the stop/drain/reload requests first).
    pub fn sim_turn(&mut self, now: Instant, events: Vec<(Token, Ready)>) {
        self.now = now;
        self.take_requests();
        self.turn(events.into_iter());
    }

    /// The earliest scheduled deadline (it may be stale: firing one is harmless).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// True once a drain has nothing left to wait for (`run` would return).
    pub fn sim_drained(&self) -> bool {
        self.drained()
    }
}

/// Opens `[log] access_log`; a file that cannot be opened stops the start, named.
pub(crate) fn open_access_log(cfg: &Config) -> io::Result<AccessLog> {
    AccessLog::open(&cfg.log.access_log, cfg.log.access_log_format).map_err(|e| {
        let what = match &cfg.log.access_log {
            crate::config::AccessLogDest::File(path) => path.as_str(),
            _ => "its destination",
        };
        io::Error::new(
            e.kind(),
            format!("[log] access_log: cannot open {what}: {e}"),
        )
    })
}

/// Binds the client listener; with several workers every reactor binds the same address
/// with SO_REUSEPORT and the kernel spreads new connections between them.
#[cfg(not(feature = "sim"))]
fn bind_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<Listener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(Listener::from_std(socket.into()))
}

#[cfg(feature = "sim")]
fn bind_listener(addr: SocketAddr, _reuse_port: bool) -> io::Result<Listener> {
    Listener::bind(addr)
}
