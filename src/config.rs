//! INI text -> [`Config`]: pure, no sockets (names go through a resolver passed in), no clock.
//!
//! The format is the one of the Go WebsocketReverseProxy it replaces: sections `[frontend]`,
//! `[http]`, `[websocket]`, plus sluice's `[log]`, `[admin]` and `[resolver]`; its example file
//! loads unchanged.
//! `configparser` supplies the values. It lowercases keys and silently keeps the last of a
//! duplicate, so a line scan that mirrors its rules runs first and rejects, with the line number,
//! every unknown section, unknown key, duplicate key and malformed line.
//!
//! Syntax: `key = value` (or `key: value`), keys and section names case-insensitive; whole-line
//! and trailing comments start with `#` or `;` (so values cannot contain them). Durations are
//! integer seconds or carry a unit (`500ms`, `2s`, `1m`, `1h`); booleans are
//! `true/false/on/off/yes/no/1/0`.
//!
//! Invariants of an `Ok` config: at least one server; each group's servers are sorted by id with
//! unique ids >= 1 and non-zero ports (a discovered server's template, `dns` set, has the port of
//! its `host:port`, or 0 for SRV: `discovery` expands it into real addresses); every duration is in `1ms..=MAX_DURATION`; health check
//! timeout < interval; `min_workers <= max_workers`; the ranges named by the constants below hold.
//! Every error names the file, the line (when one is to blame) and the key.

use configparser::ini::Ini;
use scan::{ini_defaults, scan, server_key, Scan, Section, ServerField};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// `set!(doc, section, value.field, parser)`: overwrites the field if the key of the same
/// name is present, so keys and field names cannot drift apart.
macro_rules! set {
    ($doc:expr, $section:expr, $value:ident . $field:ident, $parse:expr) => {
        $doc.set($section, stringify!($field), &mut $value.$field, &$parse)?
    };
}

mod resolver;
mod scan;
mod tls;
mod values;

pub use resolver::{Discover, Family, InitMode, ResolveMode, ResolverSettings};
use tls::group_ca;
pub use tls::{BackendTls, CertPair, TlsListener, TlsVersion};
use values::*;
pub use values::{parse_bool, parse_duration};

/// Longest accepted duration, so `now + d` can never overflow an `Instant`.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// `[http] request_buffer_bytes` range: at most one connection buffer (`buf::BUF_SIZE`),
/// the one the request head is read into.
pub const REQUEST_BUFFER_BYTES_RANGE: (u64, u64) = (0, crate::buf::BUF_SIZE as u64);
/// `[frontend] max_header_bytes` range.
pub const HEADER_BYTES_RANGE: (u64, u64) = (1024, 1 << 20);
/// `[frontend] max_connections` range.
pub const MAX_CONNECTIONS_RANGE: (u64, u64) = (1, 1_000_000);
/// `[frontend] workers` range (`auto` = available parallelism, clamped into it).
pub const WORKERS_RANGE: (u64, u64) = (1, 1024);
/// `serverN_weight` range.
pub const WEIGHT_RANGE: (u64, u64) = (1, 1000);
/// `serverN_max_workers` range (persistent connections per server).
pub const MAX_WORKERS_RANGE: (u64, u64) = (1, 100_000);
/// `serverN_buffer_size` range (requests queued per server).
pub const BUFFER_SIZE_RANGE: (u64, u64) = (1, 1_000_000);
/// `rise` / `fall` range (consecutive probes).
pub const RISE_FALL_RANGE: (u64, u64) = (1, 1000);
/// `retries` range.
pub const RETRIES_RANGE: (u64, u64) = (0, 100);
/// `max_ejected_percent` range.
pub const MAX_EJECTED_PERCENT_RANGE: (u64, u64) = (0, 100);
/// `[websocket] rebalance_rate` range (tunnels closed per second).
pub const REBALANCE_RATE_RANGE: (u64, u64) = (1, 100_000);
/// `[websocket] rebalance_tolerance` range (percent over the fair share).
pub const REBALANCE_TOLERANCE_RANGE: (u64, u64) = (1, 1000);
/// Whether this binary was built with the `tls` feature: without it, every TLS key still
/// parses (so a config can be checked anywhere) but using one is a config error.
pub const TLS_BUILT: bool = cfg!(feature = "tls");

/// The whole proxy configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub frontend: Frontend,
    pub http: Group,
    pub websocket: Group,
    pub log: LogConfig,
    pub admin: Option<Admin>,
    pub resolver: ResolverSettings,
    /// `[tls]`: the HTTPS listener, present only if the section is.
    pub tls: Option<TlsListener>,
}

impl Config {
    /// What start-up and every reload should log at warn level: settings that are accepted
    /// but weaken security (today: backends whose certificate is not verified).
    pub fn warnings(&self) -> Vec<String> {
        let groups = [("http", &self.http), ("websocket", &self.websocket)];
        let unverified = groups.into_iter().flat_map(|(section, g)| {
            let off = g
                .servers
                .iter()
                .filter(|s| s.tls.as_ref().is_some_and(|t| !t.verify));
            off.map(move |s| {
                format!(
                    "[{section}] {}_tls_verify = false: the certificate of {} is NOT verified; \
                     anyone on the path can impersonate this backend",
                    s.name, s.addr_text
                )
            })
        });
        unverified.collect()
    }
}

/// `[frontend]`: where clients connect and the limits they get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frontend {
    pub host: String,
    /// 0 = any free port (tests).
    pub port: u16,
    pub listen: SocketAddr,
    pub max_connections: usize,
    pub request_header_timeout: Duration,
    pub client_idle_timeout: Duration,
    pub max_header_bytes: usize,
    /// `max_body_bytes`; 0 or absent = unlimited.
    pub max_body_bytes: Option<u64>,
    /// `workers = N | auto`; `auto` is resolved here to the available parallelism.
    pub workers: usize,
    pub drain_timeout: Duration,
    /// `max_connections_per_client`; 0 or absent = unlimited.
    pub max_connections_per_client: Option<usize>,
    /// After SIGTERM: `/readyz` answers 503 and sluice keeps serving this long before
    /// the drain starts (0 = drain at once).
    pub shutdown_delay: Duration,
    /// Stat the configuration file every 2 s and reload it when it changed.
    pub reload_on_change: bool,
    /// `accept_proxy`: the PROXY protocol versions a client connection must start
    /// with; `None` (`off`, the default) = plain HTTP.
    pub accept_proxy: Option<protocol::proxy::Accept>,
}

impl Default for Frontend {
    fn default() -> Self {
        Frontend {
            host: "127.0.0.1".into(),
            port: 8080,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            max_connections: 10_000,
            request_header_timeout: Duration::from_secs(10),
            client_idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16_384,
            max_body_bytes: None,
            workers: 1,
            drain_timeout: Duration::from_secs(30),
            max_connections_per_client: None,
            shutdown_delay: Duration::ZERO,
            reload_on_change: false,
            accept_proxy: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    Http,
    WebSocket,
}

impl std::fmt::Display for GroupKind {
    /// The section name: `http`, `websocket`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GroupKind::Http => "http",
            GroupKind::WebSocket => "websocket",
        })
    }
}

/// `[http]` or `[websocket]`: a backend group. A missing section is an empty group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub kind: GroupKind,
    pub enable_health_check: bool,
    pub health_check_interval: Duration,
    /// Always < `health_check_interval`; when not set, 2 s or half the interval if less.
    pub health_check_timeout: Duration,
    /// Starts with '/', printable ASCII, no spaces.
    pub health_check_path: String,
    pub rise: u32,
    pub fall: u32,
    pub algorithm: Algorithm,
    /// 0 disables passive ejection.
    pub max_fails: u32,
    pub fail_timeout: Duration,
    /// Most of the group (percent of its servers) passive ejection may take out.
    pub max_ejected_percent: u32,
    /// Group-wide slow start; `serverN_slow_start` overrides it per server.
    /// `None` (absent, `0` or `off`) = off. Already folded into each `ServerConfig`.
    pub slow_start: Option<Duration>,
    pub fail_on_5xx: bool,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub queue_timeout: Duration,
    pub retries: u32,
    /// HTTP only: request body bytes read before a pooled connection is taken (0 = off).
    pub request_buffer_bytes: usize,
    /// WebSocket only (an error in `[http]`, where these stay at their defaults).
    pub idle_timeout: Duration,
    /// `ping_interval = 0` or absent = no pings.
    pub ping_interval: Option<Duration>,
    pub ping_timeout: Duration,
    /// 0 = unlimited.
    pub max_message_bytes: u64,
    /// WebSocket only: close the oldest tunnels of over-share servers after a change.
    pub rebalance: bool,
    /// Tunnels closed per second at most while rebalancing.
    pub rebalance_rate: u32,
    /// Percent above its weighted fair share a server may hold before rebalancing.
    pub rebalance_tolerance: u32,
    /// `tls_ca`: the PEM bundle the group's TLS servers trust (None = the system's).
    pub tls_ca: Option<String>,
    /// Sorted by id.
    pub servers: Vec<ServerConfig>,
}

impl Group {
    /// An empty group with every default.
    pub fn new(kind: GroupKind) -> Self {
        Group {
            kind,
            enable_health_check: false,
            health_check_interval: Duration::from_secs(10),
            health_check_timeout: Duration::from_secs(2),
            health_check_path: "/healthCheck".into(),
            rise: 2,
            fall: 3,
            algorithm: Algorithm::Random,
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
            max_ejected_percent: 50,
            slow_start: None,
            fail_on_5xx: false,
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(60),
            queue_timeout: Duration::from_secs(5),
            retries: 2,
            request_buffer_bytes: 16 * 1024,
            idle_timeout: Duration::from_secs(3600),
            ping_interval: None,
            ping_timeout: Duration::from_secs(10),
            max_message_bytes: 16 << 20,
            rebalance: false,
            rebalance_rate: 10,
            rebalance_tolerance: 20,
            tls_ca: None,
            servers: Vec::new(),
        }
    }
}

impl Default for Group {
    fn default() -> Self {
        Group::new(GroupKind::Http)
    }
}

/// One `serverN`; the pool keys only come from `[http]` (defaults in `[websocket]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// N of `serverN`: any positive integer, gaps allowed.
    pub id: u32,
    /// `"server10"`.
    pub name: String,
    /// As written, e.g. `"es1_hc:8080"`.
    pub addr_text: String,
    /// The address; for a discovered server's template (`dns` set) only its port counts.
    pub addr: SocketAddr,
    /// Set when the address is discovered with DNS (`Group::servers` of a live group then
    /// holds one expansion of it per address; see `discovery`).
    pub dns: Option<Discover>,
    pub weight: u32,
    pub max_workers: usize,
    pub min_workers: usize,
    pub worker_timeout: Duration,
    pub buffer_size: usize,
    /// `serverN_slow_start`, else the group's `slow_start`; `None` = off.
    pub slow_start: Option<Duration>,
    /// `serverN_send_proxy = v1 | v2`: each connection to the server starts with a
    /// PROXY header; such connections are private to one client (never pooled).
    pub send_proxy: Option<protocol::proxy::Version>,
    /// `serverN_tls = true`; None = plain TCP.
    pub tls: Option<BackendTls>,
}

impl ServerConfig {
    /// A server with default weight and pool settings.
    pub fn new(id: u32, addr_text: &str, addr: SocketAddr) -> Self {
        ServerConfig {
            id,
            name: format!("server{id}"),
            addr_text: addr_text.into(),
            addr,
            dns: None,
            weight: 1,
            max_workers: 3,
            min_workers: 1,
            worker_timeout: Duration::from_secs(3),
            buffer_size: 10,
            slow_start: None,
            send_proxy: None,
            tls: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Random,
    RoundRobin,
    WeightedRoundRobin,
    LeastConnections,
    PowerOfTwo,
}

const ALGORITHMS: [(&str, Algorithm); 5] = [
    ("random", Algorithm::Random),
    ("round-robin", Algorithm::RoundRobin),
    ("weighted-round-robin", Algorithm::WeightedRoundRobin),
    ("least-connections", Algorithm::LeastConnections),
    ("power-of-two", Algorithm::PowerOfTwo),
];

impl Algorithm {
    /// The configuration spelling (`round-robin`), for logs and the status page.
    pub fn name(self) -> &'static str {
        ALGORITHMS
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("random", |(n, _)| n)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub level: log::LevelFilter,
    pub access_log: AccessLogDest,
    pub access_log_format: AccessLogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: log::LevelFilter::Info,
            access_log: AccessLogDest::Stderr,
            access_log_format: AccessLogFormat::Common,
        }
    }
}

/// `[log] access_log`: where access-log lines go. The old boolean spellings still
/// work: a true value means `stderr`, a false one `off`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLogDest {
    Off,
    Stderr,
    Stdout,
    /// Opened for appending; reopened on SIGUSR1 (log rotation).
    File(String),
}

impl AccessLogDest {
    /// True unless `off`.
    pub fn is_on(&self) -> bool {
        *self != AccessLogDest::Off
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    Common,
    Json,
}

/// `[admin]`: present only if the section is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    pub listen: SocketAddr,
}

/// Why a config was rejected. Displays as `PATH:LINE: message` (or `PATH: message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    /// 1-based line of the offending text, if one line is to blame.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path, line, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Resolves `host` from the static table `/etc/hosts` (as `hosts: files` does), preferring
/// IPv4. Never a DNS query and never `getaddrinfo`: server names it does not know are
/// discovered in the reactor's loop (`discovery`); other names are an error.
pub fn resolve_system(host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs = resolve_system_all(host, port)?;
    let v4 = addrs.iter().find(|a| a.is_ipv4());
    // NOTE(unwrap): resolve_system_all never returns an empty list.
    Ok(*v4.unwrap_or(&addrs[0]))
}

/// Every address `/etc/hosts` lists for `host`, in file order (never empty); servers
/// pick from them by `[resolver] family` ([`Family::pick`]).
pub fn resolve_system_all(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let ips = crate::resolv_conf::parse_hosts(&text).lookup(host);
    if ips.is_empty() {
        return Err("not an IP address and not in /etc/hosts".into());
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// Reads and parses the file at `path`, resolving names with [`resolve_system_all`].
pub fn load(path: &str) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.into(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    parse_all(&text, path, &resolve_system_all)
}

/// Parses INI `text` (named `path` in errors). Host names (not IP literals) go to `resolve`;
/// a server name it does not know is discovered with DNS in the loop (`ServerConfig::dns`).
pub fn parse(
    text: &str,
    path: &str,
    resolve: &dyn Fn(&str, u16) -> Result<SocketAddr, String>,
) -> Result<Config, ConfigError> {
    parse_for(text, path, resolve, TLS_BUILT)
}

/// A resolver that returns every address of a name, for [`parse_all`].
pub type ResolveAll<'a> = dyn Fn(&str, u16) -> Result<Vec<SocketAddr>, String> + 'a;

/// [`parse`] with a resolver that returns every address of a name (as
/// [`resolve_system_all`]): a server's address then follows `[resolver] family`.
pub fn parse_all(text: &str, path: &str, resolve: &ResolveAll<'_>) -> Result<Config, ConfigError> {
    parse_doc(text, path, resolve, TLS_BUILT)
}

/// [`parse`] for a build with (`tls_built`) or without the `tls` feature.
fn parse_for(
    text: &str,
    path: &str,
    resolve: &dyn Fn(&str, u16) -> Result<SocketAddr, String>,
    tls_built: bool,
) -> Result<Config, ConfigError> {
    let all = |h: &str, p| resolve(h, p).map(|a| vec![a]);
    parse_doc(text, path, &all, tls_built)
}

/// [`parse_for`] with every address of a name.
fn parse_doc(
    text: &str,
    path: &str,
    resolve: &ResolveAll<'_>,
    tls_built: bool,
) -> Result<Config, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let fail = |line, message| ConfigError {
        path: path.into(),
        line: Some(line),
        message,
    };
    let scan = scan(text).map_err(|(line, msg)| fail(line, msg))?;
    let mut ini = Ini::new_from_defaults(ini_defaults());
    // The scan above rejects everything configparser would; its errors carry "line N" inside.
    ini.read(text.into()).map_err(|message| ConfigError {
        path: path.into(),
        line: None,
        message,
    })?;
    let mut doc = Doc {
        ini,
        scan,
        path,
        resolve,
        family: Family::default(),
    };
    doc.family = doc.resolver()?.family;
    let frontend = doc.frontend()?;
    let config = Config {
        http: doc.group(Section::Http)?,
        websocket: doc.group(Section::WebSocket)?,
        log: doc.log()?,
        admin: doc.admin()?,
        resolver: doc.resolver()?,
        tls: doc.tls(&frontend, tls_built)?,
        frontend,
    };
    doc.require_tls_feature(&config, tls_built)?;
    if config.http.servers.is_empty() && config.websocket.servers.is_empty() {
        return Err(ConfigError {
            path: path.into(),
            line: None,
            message: "no servers: add [http] or [websocket] with server1 = host:port".into(),
        });
    }
    Ok(config)
}

/// Parses one value; `Err` is the reason, to which [`Doc`] adds the file, line and key.
type Parser<'p, T> = &'p dyn Fn(&str) -> Result<T, String>;

struct Doc<'a> {
    ini: Ini,
    scan: Scan,
    path: &'a str,
    resolve: &'a ResolveAll<'a>,
    /// `[resolver] family`: which of a server name's /etc/hosts addresses it takes.
    family: Family,
}

impl Doc<'_> {
    fn line(&self, section: Section, key: &str) -> Option<usize> {
        let found = self.scan.keys.iter().find(|k| k.0 == section && k.1 == key);
        found.map(|k| k.2)
    }

    fn header(&self, section: Section) -> Option<usize> {
        self.scan
            .headers
            .iter()
            .find(|h| h.0 == section)
            .map(|h| h.1)
    }

    fn error(&self, section: Section, key: &str, line: Option<usize>, msg: &str) -> ConfigError {
        let message = format!("[{}] {key}: {msg}", section.name());
        ConfigError {
            path: self.path.into(),
            line,
            message,
        }
    }

    fn text(&self, section: Section, key: &str) -> String {
        self.ini.get(section.name(), key).unwrap_or_default()
    }

    /// Overwrites `slot` with the value of `key` through `parse`, if the key is present.
    fn set<T>(
        &self,
        s: Section,
        key: &str,
        slot: &mut T,
        parse: Parser<T>,
    ) -> Result<(), ConfigError> {
        if let Some(line) = self.line(s, key) {
            *slot =
                parse(&self.text(s, key)).map_err(|msg| self.error(s, key, Some(line), &msg))?;
        }
        Ok(())
    }

    /// `host:port` to an address; an IP literal needs no resolver. `key` names the culprit.
    fn resolve(
        &self,
        s: Section,
        key: &str,
        host: &str,
        port: u16,
    ) -> Result<SocketAddr, ConfigError> {
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        if let Ok(ip) = bare.unwrap_or(host).parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let line = self
            .line(s, key)
            .or_else(|| self.line(s, "port"))
            .or_else(|| self.header(s));
        let shown = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        let fail = |e| self.error(s, key, line, &format!("cannot resolve {shown}: {e}"));
        let addrs = (self.resolve)(host, port).map_err(fail)?;
        let v4 = addrs.iter().find(|a| a.is_ipv4());
        v4.or(addrs.first())
            .copied()
            .ok_or_else(|| fail("no address".into()))
    }

    fn frontend(&self) -> Result<Frontend, ConfigError> {
        let s = Section::Frontend;
        let mut f = Frontend::default();
        set!(self, s, f.host, host);
        set!(self, s, f.port, num(0, 65535));
        f.listen = self.resolve(s, "host", &f.host, f.port)?;
        let (lo, hi) = MAX_CONNECTIONS_RANGE;
        set!(self, s, f.max_connections, num(lo, hi));
        set!(self, s, f.request_header_timeout, parse_duration);
        set!(self, s, f.client_idle_timeout, parse_duration);
        let (lo, hi) = HEADER_BYTES_RANGE;
        set!(self, s, f.max_header_bytes, num(lo, hi));
        let unlimited_if_0 = |v: &str| num(0, u64::MAX)(v).map(|n| Some(n).filter(|&n| n > 0));
        set!(self, s, f.max_body_bytes, unlimited_if_0);
        set!(self, s, f.workers, workers);
        set!(self, s, f.drain_timeout, parse_duration);
        let (_, hi) = MAX_CONNECTIONS_RANGE;
        let off_if_0 = |v: &str| num(0, hi)(v).map(|n: usize| Some(n).filter(|&n| n > 0));
        set!(self, s, f.max_connections_per_client, off_if_0);
        let zero_if_off = |v: &str| optional_duration(v).map(Option::unwrap_or_default);
        set!(self, s, f.shutdown_delay, zero_if_off);
        set!(self, s, f.reload_on_change, parse_bool);
        set!(self, s, f.accept_proxy, accept_proxy);
        Ok(f)
    }

    /// A group section; absent = empty group, present = at least one server.
    fn group(&self, s: Section) -> Result<Group, ConfigError> {
        let kind = if s == Section::Http {
            GroupKind::Http
        } else {
            GroupKind::WebSocket
        };
        let mut g = Group::new(kind);
        let Some(header) = self.header(s) else {
            return Ok(g);
        };
        set!(self, s, g.enable_health_check, parse_bool);
        set!(self, s, g.health_check_interval, parse_duration);
        set!(self, s, g.health_check_timeout, parse_duration);
        set!(self, s, g.health_check_path, probe_path);
        let (lo, hi) = RISE_FALL_RANGE;
        set!(self, s, g.rise, num(lo, hi));
        set!(self, s, g.fall, num(lo, hi));
        set!(self, s, g.algorithm, algorithm);
        set!(self, s, g.max_fails, num(0, u32::MAX.into()));
        set!(self, s, g.fail_timeout, parse_duration);
        let (lo, hi) = MAX_EJECTED_PERCENT_RANGE;
        set!(self, s, g.max_ejected_percent, num(lo, hi));
        set!(self, s, g.slow_start, optional_duration);
        set!(self, s, g.fail_on_5xx, parse_bool);
        set!(self, s, g.connect_timeout, parse_duration);
        set!(self, s, g.response_timeout, parse_duration);
        set!(self, s, g.queue_timeout, parse_duration);
        set!(self, s, g.retries, num(RETRIES_RANGE.0, RETRIES_RANGE.1));
        // The scan rejects it in [websocket].
        let (lo, hi) = REQUEST_BUFFER_BYTES_RANGE;
        set!(self, s, g.request_buffer_bytes, num(lo, hi));
        // The scan rejects these in [http], so there they keep their defaults.
        set!(self, s, g.idle_timeout, parse_duration);
        let off_if_0 = |v: &str| {
            if v == "0" {
                Ok(None)
            } else {
                parse_duration(v).map(Some)
            }
        };
        set!(self, s, g.ping_interval, off_if_0);
        set!(self, s, g.ping_timeout, parse_duration);
        set!(self, s, g.max_message_bytes, num(0, u64::MAX));
        let key = "health_check_timeout";
        if self.line(s, key).is_none() {
            // Unset: the default (2 s) shrinks to fit a short interval.
            g.health_check_timeout = g.health_check_timeout.min(g.health_check_interval / 2);
        }
        set!(self, s, g.rebalance, parse_bool);
        let (lo, hi) = REBALANCE_RATE_RANGE;
        set!(self, s, g.rebalance_rate, num(lo, hi));
        set!(
            self,
            s,
            g.rebalance_tolerance,
            percent(REBALANCE_TOLERANCE_RANGE)
        );
        set!(self, s, g.tls_ca, |v| path(v).map(Some));
        if g.health_check_timeout >= g.health_check_interval {
            let line = self.line(s, key);
            let (timeout, interval) = (show(g.health_check_timeout), show(g.health_check_interval));
            let msg = format!("{timeout} must be less than health_check_interval ({interval})");
            return Err(self.error(s, key, line, &msg));
        }
        g.servers = self.servers(s, g.slow_start)?;
        if g.servers.is_empty() {
            let message = format!("[{}] has no servers (add server1 = host:port)", s.name());
            return Err(ConfigError {
                path: self.path.into(),
                line: Some(header),
                message,
            });
        }
        Ok(g)
    }

    /// Every `serverN...` key of the section, grouped by N (so sorted by id).
    fn servers(
        &self,
        s: Section,
        slow_start: Option<Duration>,
    ) -> Result<Vec<ServerConfig>, ConfigError> {
        let mut by_id: BTreeMap<u32, Vec<(ServerField, &str)>> = BTreeMap::new();
        for (section, key, _) in &self.scan.keys {
            if let (true, Ok(Some((id, field)))) = (*section == s, server_key(key)) {
                by_id.entry(id).or_default().push((field, key));
            }
        }
        by_id
            .iter()
            .map(|(&id, keys)| self.server(s, id, keys, slow_start))
            .collect()
    }

    fn server(
        &self,
        s: Section,
        id: u32,
        keys: &[(ServerField, &str)],
        slow_start: Option<Duration>,
    ) -> Result<ServerConfig, ConfigError> {
        let name = format!("server{id}");
        let addrs: Vec<&str> = keys
            .iter()
            .filter(|k| matches!(k.0, ServerField::Addr | ServerField::Srv))
            .map(|k| k.1)
            .collect();
        let addr_key = match addrs[..] {
            [key] => key,
            [first, second, ..] => {
                let msg = format!("{first} and {second} both set the address of {name}");
                return Err(self.error(s, second, self.line(s, second), &msg));
            }
            [] => {
                let key = keys.first().map_or("", |k| k.1);
                let msg = format!("{name} has no address (add {name} = host:port)");
                return Err(self.error(s, key, self.line(s, key), &msg));
            }
        };
        let key = |suffix: &str| format!("{name}_{suffix}");
        let text = self.text(s, addr_key);
        let mut srv = self.server_addr(s, &name, addr_key, &text)?;
        srv.id = id;
        srv.name = name.clone();
        srv.slow_start = slow_start;
        let slow = key("slow_start");
        self.set(s, &slow, &mut srv.slow_start, &optional_duration)?;
        let (lo, hi) = WEIGHT_RANGE;
        self.set(s, &key("weight"), &mut srv.weight, &num(lo, hi))?;
        let (lo, hi) = MAX_WORKERS_RANGE;
        self.set(s, &key("max_workers"), &mut srv.max_workers, &num(lo, hi))?;
        self.set(s, &key("min_workers"), &mut srv.min_workers, &num(0, hi))?;
        self.set(
            s,
            &key("worker_timeout"),
            &mut srv.worker_timeout,
            &parse_duration,
        )?;
        let (lo, hi) = BUFFER_SIZE_RANGE;
        self.set(s, &key("buffer_size"), &mut srv.buffer_size, &num(lo, hi))?;
        self.set(s, &key("send_proxy"), &mut srv.send_proxy, &send_proxy)?;
        // SNI and the certificate's name: the host as written (for `serverN_srv`, the
        // SRV name).
        let host = split_addr(&text).map_or(text.as_str(), |(h, _)| h);
        srv.tls = self.server_tls(s, &name, host, group_ca(self, s))?;
        if srv.tls.is_some() && srv.send_proxy.is_some() {
            // The PROXY header must precede the ClientHello in clear (as HAProxy sends it);
            // sluice would send it inside the TLS stream, which no backend parses.
            let msg = format!("not supported together with {} = true", key("tls"));
            return Err(self.error_at(s, &key("send_proxy"), &msg));
        }
        if srv.min_workers > srv.max_workers {
            let (min, max) = (key("min_workers"), key("max_workers"));
            let line = self.line(s, &min).or_else(|| self.line(s, &max));
            let (lo, hi) = (srv.min_workers, srv.max_workers);
            return Err(self.error(s, &min, line, &format!("{lo} is greater than {max} ({hi})")));
        }
        Ok(srv)
    }

    fn error_at(&self, s: Section, key: &str, msg: &str) -> ConfigError {
        self.error(s, key, self.line(s, key), msg)
    }

    fn log(&self) -> Result<LogConfig, ConfigError> {
        let s = Section::Log;
        let mut l = LogConfig::default();
        let level = |v: &str| {
            let names = "off, error, warn, info, debug or trace";
            v.parse()
                .map_err(|_| format!("expected {names}, got {v:?}"))
        };
        set!(self, s, l.level, level);
        set!(self, s, l.access_log, access_log_dest);
        let format = |v: &str| match v.to_ascii_lowercase().as_str() {
            "common" => Ok(AccessLogFormat::Common),
            "json" => Ok(AccessLogFormat::Json),
            _ => Err(format!("expected common or json, got {v:?}")),
        };
        set!(self, s, l.access_log_format, format);
        Ok(l)
    }

    fn admin(&self) -> Result<Option<Admin>, ConfigError> {
        let s = Section::Admin;
        let Some(header) = self.header(s) else {
            return Ok(None);
        };
        let mut host_name = "127.0.0.1".to_string();
        self.set(s, "host", &mut host_name, &host)?;
        let mut port = None;
        self.set(s, "port", &mut port, &|v| num(0, 65535)(v).map(Some))?;
        let Some(port) = port else {
            return Err(self.error(s, "port", Some(header), "required when [admin] is present"));
        };
        Ok(Some(Admin {
            listen: self.resolve(s, "host", &host_name, port)?,
        }))
    }
}

#[cfg(test)]
mod tests;
