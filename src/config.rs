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
use scan::{cert_key, ini_defaults, scan, server_key, Scan, Section, ServerField};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

mod scan;

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

/// `[tls]`: a second listener of each reactor, for HTTPS and WSS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsListener {
    /// Default: `[frontend] host`.
    pub host: String,
    /// Required; 0 = any free port (tests).
    pub port: u16,
    pub listen: SocketAddr,
    /// At least one. The first (`cert` + `key`, else the lowest `certN`) is served to clients
    /// that send no SNI or a name no certificate covers; the others are chosen by SNI.
    pub certs: Vec<CertPair>,
    pub min_version: TlsVersion,
    /// Default: `[frontend] request_header_timeout`.
    pub handshake_timeout: Duration,
}

/// A certificate chain and its private key, PEM files as written (relative paths are
/// relative to the working directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPair {
    /// The key that set it (`cert` or `certN`), so errors say which pair is wrong.
    pub name: String,
    pub cert: String,
    pub key: String,
}

/// `[tls] min_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// `serverN_tls = true`: the connections to this backend (pooled, tunnels, probes) speak TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendTls {
    /// PEM bundle of trusted roots: `serverN_tls_ca`, else the group's `tls_ca`, else (None)
    /// the system's bundle.
    pub ca: Option<String>,
    /// `serverN_tls_verify`; false is logged loudly ([`Config::warnings`]).
    pub verify: bool,
    /// SNI and the name the certificate must carry: the host of the address as written.
    pub server_name: String,
}

/// `[resolver]`: DNS discovery of server names (see `discovery`). Absent keys keep
/// `/etc/resolv.conf`'s values (nameservers, timeout, attempts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverSettings {
    /// `nameservers = ip:port, ...`: replaces resolv.conf's nameserver lines.
    pub nameservers: Option<Vec<SocketAddr>>,
    /// Per-try timeout; `None` = resolv.conf's `options timeout`.
    pub timeout: Option<Duration>,
    /// Rounds over the nameservers; `None` = resolv.conf's `options attempts`.
    pub attempts: Option<u8>,
    /// Shortest re-query interval (and retry interval after a failure).
    pub min_ttl: Duration,
    /// Longest re-query interval.
    pub max_ttl: Duration,
    /// How long NXDOMAIN must last before a name's addresses are removed.
    pub hold_nx: Duration,
    /// Whether start-up waits for every name (`required`) or serves 503 for it meanwhile.
    pub init: InitMode,
}

/// `[resolver] init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitMode {
    /// Start fails, naming the key, when a name does not resolve.
    Required,
    /// Start anyway; the name's servers join when it resolves.
    Optional,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        ResolverSettings {
            nameservers: None,
            timeout: None,
            attempts: None,
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(300),
            hold_nx: Duration::from_secs(30),
            init: InitMode::Required,
        }
    }
}

/// How a server's name becomes run-time servers (`serverN_resolve`, `serverN_srv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveMode {
    /// One server on the lowest address (`serverN_resolve = first`, the default).
    First,
    /// One server per address, named `serverN#ip` (`serverN_resolve = all`).
    All,
    /// One server per SRV target and port, named `serverN#ip:port`, SRV weights.
    Srv,
}

/// A server address to discover with DNS in the loop (not an IP literal, not in /etc/hosts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discover {
    /// The name as written (an SRV owner name for `ResolveMode::Srv`).
    pub name: String,
    /// The port (unused for SRV: the records carry it).
    pub port: u16,
    pub mode: ResolveMode,
    /// The key that set it (`server1_addr`), for messages.
    pub key: String,
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
    let text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let ips = crate::resolv_conf::parse_hosts(&text).lookup(host);
    let v4 = ips.iter().find(|a| a.is_ipv4());
    v4.or(ips.first())
        .map(|&ip| SocketAddr::new(ip, port))
        .ok_or_else(|| "not an IP address and not in /etc/hosts".into())
}

/// Reads and parses the file at `path`, resolving names with [`resolve_system`].
pub fn load(path: &str) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.into(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, path, &resolve_system)
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

/// [`parse`] for a build with (`tls_built`) or without the `tls` feature.
fn parse_for(
    text: &str,
    path: &str,
    resolve: &dyn Fn(&str, u16) -> Result<SocketAddr, String>,
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
    let doc = Doc {
        ini,
        scan,
        path,
        resolve,
    };
    let frontend = doc.frontend()?;
    let config = Config {
        http: doc.group(Section::Http)?,
        websocket: doc.group(Section::WebSocket)?,
        log: doc.log()?,
        admin: doc.admin()?,
        resolver: doc.resolver()?,
        tls: doc.tls(&frontend)?,
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
    resolve: &'a dyn Fn(&str, u16) -> Result<SocketAddr, String>,
}

/// `set!(doc, section, value.field, parser)`: overwrites the field if the key of the same
/// name is present, so keys and field names cannot drift apart.
macro_rules! set {
    ($doc:expr, $section:expr, $value:ident . $field:ident, $parse:expr) => {
        $doc.set($section, stringify!($field), &mut $value.$field, &$parse)?
    };
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
        (self.resolve)(host, port).map_err(fail)
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
        if srv.min_workers > srv.max_workers {
            let (min, max) = (key("min_workers"), key("max_workers"));
            let line = self.line(s, &min).or_else(|| self.line(s, &max));
            let (lo, hi) = (srv.min_workers, srv.max_workers);
            return Err(self.error(s, &min, line, &format!("{lo} is greater than {max} ({hi})")));
        }
        Ok(srv)
    }

    /// The address part of a server: an IP literal or a name `resolve` knows (static), or a
    /// name to discover with DNS (`serverN_resolve`, `serverN_srv`).
    fn server_addr(
        &self,
        s: Section,
        name: &str,
        addr_key: &str,
        text: &str,
    ) -> Result<ServerConfig, ConfigError> {
        let resolve_key = format!("{name}_resolve");
        let at = |key: &str, msg: &str| self.error(s, key, self.line(s, key), msg);
        let mut mode = ResolveMode::First;
        self.set(
            s,
            &resolve_key,
            &mut mode,
            &|v| match v.to_ascii_lowercase().as_str() {
                "first" => Ok(ResolveMode::First),
                "all" => Ok(ResolveMode::All),
                _ => Err(format!("expected first or all, got {v:?}")),
            },
        )?;
        let dns_name = |host: &str| {
            protocol::dns::Name::from_dotted(host.trim_end_matches('.'))
                .map(|_| ())
                .map_err(|e| at(addr_key, &format!("invalid DNS name {host:?}: {e}")))
        };
        if addr_key.ends_with("_srv") {
            if self.line(s, &resolve_key).is_some() {
                let msg = format!("does not apply to {addr_key} (SRV makes one server per target)");
                return Err(at(&resolve_key, &msg));
            }
            if text.is_empty() || text.contains(char::is_whitespace) {
                let msg = format!("expected an SRV name like _http._tcp.backend, got {text:?}");
                return Err(at(addr_key, &msg));
            }
            dns_name(text)?;
            let mut srv = ServerConfig::new(0, text, SocketAddr::from(([0, 0, 0, 0], 0)));
            srv.dns = Some(Discover {
                name: text.into(),
                port: 0,
                mode: ResolveMode::Srv,
                key: addr_key.into(),
            });
            return Ok(srv);
        }
        let (host, port) = split_addr(text).map_err(|msg| at(addr_key, &msg))?;
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        if let Ok(ip) = bare.unwrap_or(host).parse::<IpAddr>() {
            return Ok(ServerConfig::new(0, text, SocketAddr::new(ip, port)));
        }
        if let Ok(addr) = (self.resolve)(host, port) {
            return Ok(ServerConfig::new(0, text, addr));
        }
        dns_name(host)?;
        let mut srv = ServerConfig::new(0, text, SocketAddr::from(([0, 0, 0, 0], port)));
        srv.dns = Some(Discover {
            name: host.into(),
            port,
            mode,
            key: addr_key.into(),
        });
        Ok(srv)
    }

    fn resolver(&self) -> Result<ResolverSettings, ConfigError> {
        let s = Section::Resolver;
        let mut r = ResolverSettings::default();
        set!(self, s, r.nameservers, nameservers);
        let some_duration = |v: &str| parse_duration(v).map(Some);
        set!(self, s, r.timeout, some_duration);
        set!(self, s, r.attempts, |v: &str| num(1, 5)(v).map(Some));
        set!(self, s, r.min_ttl, parse_duration);
        set!(self, s, r.max_ttl, parse_duration);
        set!(self, s, r.hold_nx, parse_duration);
        let init = |v: &str| match v.to_ascii_lowercase().as_str() {
            "required" => Ok(InitMode::Required),
            "optional" => Ok(InitMode::Optional),
            _ => Err(format!("expected required or optional, got {v:?}")),
        };
        set!(self, s, r.init, init);
        if r.min_ttl > r.max_ttl {
            let (min, max) = (show(r.min_ttl), show(r.max_ttl));
            let msg = format!("{min} is greater than max_ttl ({max})");
            return Err(self.error(s, "min_ttl", self.line(s, "min_ttl"), &msg));
        }
        Ok(r)
    }

    /// `serverN_tls`, `serverN_tls_ca`, `serverN_tls_verify` of one server.
    fn server_tls(
        &self,
        s: Section,
        name: &str,
        host: &str,
        group_ca: Option<String>,
    ) -> Result<Option<BackendTls>, ConfigError> {
        let (on, ca, verify) = (
            format!("{name}_tls"),
            format!("{name}_tls_ca"),
            format!("{name}_tls_verify"),
        );
        let mut enabled = false;
        self.set(s, &on, &mut enabled, &parse_bool)?;
        let mut tls = BackendTls {
            ca: group_ca,
            verify: true,
            server_name: host.into(),
        };
        self.set(s, &ca, &mut tls.ca, &|v| path(v).map(Some))?;
        self.set(s, &verify, &mut tls.verify, &parse_bool)?;
        if enabled {
            return Ok(Some(tls));
        }
        let stray = [ca, verify].into_iter().find(|k| self.line(s, k).is_some());
        match stray {
            Some(key) => Err(self.error_at(s, &key, &format!("only valid with {on} = true"))),
            None => Ok(None),
        }
    }

    /// `[tls]`; absent = no HTTPS listener.
    fn tls(&self, frontend: &Frontend) -> Result<Option<TlsListener>, ConfigError> {
        let s = Section::Tls;
        let Some(header) = self.header(s) else {
            return Ok(None);
        };
        let mut host_name = frontend.host.clone();
        self.set(s, "host", &mut host_name, &host)?;
        let mut port = None;
        self.set(s, "port", &mut port, &|v| num(0, 65535)(v).map(Some))?;
        let Some(port) = port else {
            return Err(self.error(s, "port", Some(header), "required when [tls] is present"));
        };
        let mut t = TlsListener {
            listen: self.resolve(s, "host", &host_name, port)?,
            host: host_name,
            port,
            certs: self.cert_pairs(header)?,
            min_version: TlsVersion::V1_2,
            handshake_timeout: frontend.request_header_timeout,
        };
        set!(self, s, t.min_version, tls_version);
        set!(self, s, t.handshake_timeout, parse_duration);
        Ok(Some(t))
    }

    /// `cert` + `key` first, then every `certN = cert.pem, key.pem` by N.
    fn cert_pairs(&self, header: usize) -> Result<Vec<CertPair>, ConfigError> {
        let s = Section::Tls;
        let mut pairs = Vec::new();
        match (self.line(s, "cert"), self.line(s, "key")) {
            (Some(_), Some(_)) => pairs.push(CertPair {
                name: "cert".into(),
                cert: path(&self.text(s, "cert")).map_err(|m| self.error_at(s, "cert", &m))?,
                key: path(&self.text(s, "key")).map_err(|m| self.error_at(s, "key", &m))?,
            }),
            (Some(line), None) => {
                return Err(self.error(s, "key", Some(line), "required with cert"));
            }
            (None, Some(line)) => {
                return Err(self.error(s, "cert", Some(line), "required with key"));
            }
            (None, None) => {}
        }
        let mut extra: Vec<(u32, &str)> = (self.scan.keys.iter())
            .filter(|k| k.0 == s)
            .filter_map(|k| cert_key(&k.1).map(|n| (n, k.1.as_str())))
            .collect();
        extra.sort_unstable();
        for (_, key) in extra {
            let (cert, pem_key) =
                cert_and_key(&self.text(s, key)).map_err(|m| self.error_at(s, key, &m))?;
            pairs.push(CertPair {
                name: key.into(),
                cert,
                key: pem_key,
            });
        }
        if pairs.is_empty() {
            let msg = "needs a certificate: cert = chain.pem and key = key.pem";
            return Err(self.error(s, "cert", Some(header), msg));
        }
        Ok(pairs)
    }

    fn error_at(&self, s: Section, key: &str, msg: &str) -> ConfigError {
        self.error(s, key, self.line(s, key), msg)
    }

    /// A build without the `tls` feature refuses a config that needs it, naming the first
    /// line that does.
    fn require_tls_feature(&self, config: &Config, built: bool) -> Result<(), ConfigError> {
        if built {
            return Ok(());
        }
        let msg = "this sluice was built without TLS support (cargo build --features tls)";
        if let Some(header) = self.header(Section::Tls) {
            return Err(ConfigError {
                path: self.path.into(),
                line: Some(header),
                message: format!("[tls]: {msg}"),
            });
        }
        for (s, g) in [
            (Section::Http, &config.http),
            (Section::WebSocket, &config.websocket),
        ] {
            if let Some(srv) = g.servers.iter().find(|srv| srv.tls.is_some()) {
                return Err(self.error_at(s, &format!("{}_tls", srv.name), msg));
            }
        }
        Ok(())
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

/// The group's `tls_ca`, if set (read again here: servers are parsed before the group ends).
fn group_ca(doc: &Doc, s: Section) -> Option<String> {
    doc.line(s, "tls_ca")
        .and_then(|_| path(&doc.text(s, "tls_ca")).ok())
}

/// A file path: not empty (what it names is checked when it is loaded).
fn path(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err("expected a file path".into());
    }
    Ok(v.into())
}

/// `cert.pem, key.pem`.
fn cert_and_key(v: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    match parts[..] {
        [cert, key] if !cert.is_empty() && !key.is_empty() => Ok((cert.into(), key.into())),
        _ => Err(format!("expected cert.pem, key.pem, got {v:?}")),
    }
}

fn tls_version(v: &str) -> Result<TlsVersion, String> {
    match v {
        "1.2" => Ok(TlsVersion::V1_2),
        "1.3" => Ok(TlsVersion::V1_3),
        _ => Err(format!("expected 1.2 or 1.3, got {v:?}")),
    }
}

/// A decimal integer in `lo..=hi`, converted to `T` (the range must fit `T`).
fn num<T: TryFrom<u64>>(lo: u64, hi: u64) -> impl Fn(&str) -> Result<T, String> {
    move |v| {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("expected a non-negative integer, got {v:?}"));
        }
        let out_of_range = || format!("{v} is out of range {lo}..={hi}");
        let n: u64 = v.parse().map_err(|_| out_of_range())?;
        if !(lo..=hi).contains(&n) {
            return Err(out_of_range());
        }
        T::try_from(n).map_err(|_| out_of_range())
    }
}

/// Integer seconds (`10`) or a number with a unit: `500ms`, `2s`, `1m`, `1h`.
/// The result is in `1ms..=MAX_DURATION`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let per_unit_ms: u64 = match &v[digits..] {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => 0,
    };
    if digits == 0 || per_unit_ms == 0 {
        return Err(format!(
            "expected a duration like 10, 500ms, 2s, 1m or 1h, got {v:?}"
        ));
    }
    let ms = v[..digits]
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit_ms));
    match ms.map(Duration::from_millis) {
        Some(d) if d.is_zero() => Err("must be greater than 0".into()),
        Some(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!(
            "{v} is longer than the maximum {}",
            show(MAX_DURATION)
        )),
    }
}

/// `0` or `off` (case-insensitive) = `None`, else a duration as [`parse_duration`].
fn optional_duration(v: &str) -> Result<Option<Duration>, String> {
    if v == "0" || v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_duration(v).map(Some)
}

/// A whole percentage in `range`, with or without a trailing `%`.
fn percent(range: (u64, u64)) -> impl Fn(&str) -> Result<u32, String> {
    move |v| num(range.0, range.1)(v.strip_suffix('%').unwrap_or(v).trim_end())
}

/// `true/false/on/off/yes/no/1/0`, case-insensitive.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(format!("expected true/false/on/off/yes/no/1/0, got {v:?}")),
    }
}

/// `stderr`, `stdout`, `off`, a boolean (true = stderr, false = off) or a file path.
/// A path must contain a `/` (`./access.log`), so a mistyped keyword is an error
/// rather than a file created in the working directory.
fn access_log_dest(v: &str) -> Result<AccessLogDest, String> {
    match v.to_ascii_lowercase().as_str() {
        "stderr" => return Ok(AccessLogDest::Stderr),
        "stdout" => return Ok(AccessLogDest::Stdout),
        _ => {}
    }
    match parse_bool(v) {
        Ok(true) => Ok(AccessLogDest::Stderr),
        Ok(false) => Ok(AccessLogDest::Off),
        Err(_) if v.contains('/') => Ok(AccessLogDest::File(v.to_string())),
        Err(_) => Err(format!(
            "expected stderr, stdout, off or a file path with a '/' (./{v}), got {v:?}"
        )),
    }
}

fn algorithm(v: &str) -> Result<Algorithm, String> {
    let found = ALGORITHMS.iter().find(|a| a.0.eq_ignore_ascii_case(v));
    found.map(|a| a.1).ok_or_else(|| {
        let names: Vec<&str> = ALGORITHMS.iter().map(|a| a.0).collect();
        format!("expected one of {}, got {v:?}", names.join(", "))
    })
}

fn host(v: &str) -> Result<String, String> {
    if v.is_empty() || v.contains(char::is_whitespace) {
        return Err(format!("expected a host name or IP address, got {v:?}"));
    }
    Ok(v.into())
}

/// `v1 | v2 | any | off`.
fn accept_proxy(v: &str) -> Result<Option<protocol::proxy::Accept>, String> {
    use protocol::proxy::Accept;
    match v.to_ascii_lowercase().as_str() {
        "off" => Ok(None),
        "v1" => Ok(Some(Accept::V1)),
        "v2" => Ok(Some(Accept::V2)),
        "any" => Ok(Some(Accept::Any)),
        _ => Err(format!("expected v1, v2, any or off, got {v:?}")),
    }
}

/// `v1 | v2 | off`.
fn send_proxy(v: &str) -> Result<Option<protocol::proxy::Version>, String> {
    use protocol::proxy::Version;
    match v.to_ascii_lowercase().as_str() {
        "off" => Ok(None),
        "v1" => Ok(Some(Version::V1)),
        "v2" => Ok(Some(Version::V2)),
        _ => Err(format!("expected v1, v2 or off, got {v:?}")),
    }
}

fn workers(v: &str) -> Result<usize, String> {
    let (lo, hi) = WORKERS_RANGE;
    if v.eq_ignore_ascii_case("auto") {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return Ok(n.clamp(lo as usize, hi as usize));
    }
    num(lo, hi)(v)
}

/// A request target for probes: origin-form, printable ASCII, no spaces.
fn probe_path(v: &str) -> Result<String, String> {
    if !v.starts_with('/') || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "expected a path starting with '/' without spaces, got {v:?}"
        ));
    }
    Ok(v.into())
}

/// `[resolver] nameservers`: `ip:port` or `ip` (port 53), comma-separated, at least one.
fn nameservers(v: &str) -> Result<Option<Vec<SocketAddr>>, String> {
    let one = |a: &str| {
        let a = a.trim();
        a.parse::<SocketAddr>()
            .or_else(|_| a.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| format!("expected ip:port, ... got {a:?}"))
    };
    let list = v.split(',').map(one).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(list))
}

/// `host:port` or `[v6]:port`, port in 1..=65535.
fn split_addr(v: &str) -> Result<(&str, u16), String> {
    let bad = || format!("expected host:port, got {v:?}");
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok()),
        None => Some(host).filter(|h| !h.contains(':')),
    };
    let host = host
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .ok_or_else(bad)?;
    let port = num(1, 65535)(port).map_err(|e| format!("port: {e}"))?;
    Ok((host, port))
}

/// `10s`, `500ms`: how durations appear in messages.
fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests;
