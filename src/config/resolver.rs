//! `[resolver]` and how a server address becomes servers: IP literals and /etc/hosts names
//! at once, other names discovered with DNS in the loop (`serverN_resolve`, `serverN_srv`).

use super::scan::Section;
use super::values::{num, parse_duration, show, split_addr};
use super::{ConfigError, Doc, ServerConfig};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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
    /// Which address families a server name resolves to (A, AAAA or both).
    pub family: Family,
}

/// `[resolver] family`: the address families asked for a server name, as Envoy's
/// `dns_lookup_family`. Applies to DNS answers, SRV targets and /etc/hosts alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    /// A; AAAA only when the name has no A records (NOERROR, no data). The default:
    /// one query per name per TTL in the common case.
    #[default]
    V4Preferred,
    /// A only.
    V4Only,
    /// AAAA only.
    V6Only,
    /// AAAA; A only when the name has no AAAA records.
    V6Preferred,
    /// A and AAAA, the union of both.
    All,
}

impl Family {
    /// The address a server takes from a name's list (/etc/hosts, in file order): the
    /// first of the preferred family, else the first of the other unless `*_only`.
    pub fn pick(self, addrs: &[SocketAddr]) -> Option<SocketAddr> {
        let v4 = addrs.iter().find(|a| a.is_ipv4()).copied();
        let v6 = addrs.iter().find(|a| a.is_ipv6()).copied();
        match self {
            Family::V4Preferred | Family::All => v4.or(v6),
            Family::V4Only => v4,
            Family::V6Only => v6,
            Family::V6Preferred => v6.or(v4),
        }
    }
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
            family: Family::V4Preferred,
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

impl Doc<'_> {
    /// The address part of a server: an IP literal or a name `resolve` knows (static), or a
    /// name to discover with DNS (`serverN_resolve`, `serverN_srv`).
    pub(super) fn server_addr(
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
        // A name /etc/hosts lists with no address of the family goes on to DNS, as the
        // C library's `hosts: files dns` does for an address-family-specific lookup.
        let hosts = (self.resolve)(host, port).unwrap_or_default();
        if let Some(addr) = self.family.pick(&hosts) {
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

    pub(super) fn resolver(&self) -> Result<ResolverSettings, ConfigError> {
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
        let family = |v: &str| match v.to_ascii_lowercase().as_str() {
            "v4_preferred" => Ok(Family::V4Preferred),
            "v4_only" => Ok(Family::V4Only),
            "v6_only" => Ok(Family::V6Only),
            "v6_preferred" => Ok(Family::V6Preferred),
            "all" => Ok(Family::All),
            _ => Err(format!(
                "expected v4_preferred, v4_only, v6_only, v6_preferred or all, got {v:?}"
            )),
        };
        set!(self, s, r.family, family);
        if r.min_ttl > r.max_ttl {
            let (min, max) = (show(r.min_ttl), show(r.max_ttl));
            let msg = format!("{min} is greater than max_ttl ({max})");
            return Err(self.error(s, "min_ttl", self.line(s, "min_ttl"), &msg));
        }
        Ok(r)
    }
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
