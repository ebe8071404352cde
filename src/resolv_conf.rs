//! Pure parsers for the C library's resolver files: `/etc/resolv.conf`
//! (resolv.conf(5)) and `/etc/hosts` (hosts(5)), from text the caller read,
//! plus the search-list rule that turns a name into the names to query.
//!
//! Contract: never fails. A line the C library would ignore (unknown keyword,
//! bad address, bad option) is ignored here too, so sluice resolves what
//! `getaddrinfo` would. Defaults and caps follow glibc: ndots 1 (capped at
//! 15), timeout 5 s (capped at 30), attempts 2 (capped at 5), at most 3
//! nameservers, and `search`/`domain` replace each other (the last wins).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// glibc's MAXNS: nameservers after the third are ignored.
pub const MAX_NAMESERVERS: usize = 3;
/// The DNS port (RFC 1035 §4.2).
pub const DNS_PORT: u16 = 53;
/// Cap on `options ndots:` (glibc RES_MAXNDOTS).
pub const MAX_NDOTS: u8 = 15;
/// Cap on `options timeout:` in seconds (glibc RES_MAXRETRANS).
pub const MAX_TIMEOUT_SECS: u64 = 30;
/// Cap on `options attempts:` (glibc RES_MAXRETRY).
pub const MAX_ATTEMPTS: u8 = 5;

/// What `/etc/resolv.conf` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// Up to three servers, port 53; empty means "none listed" (glibc then
    /// uses 127.0.0.1, see `nameservers_or_default`).
    pub nameservers: Vec<SocketAddr>,
    /// Search suffixes, without trailing dots.
    pub search: Vec<String>,
    /// Names with fewer dots than this try the search list first.
    pub ndots: u8,
    /// Per-query timeout.
    pub timeout: Duration,
    /// Rounds over the nameserver list.
    pub attempts: u8,
}

impl Default for ResolvConf {
    fn default() -> ResolvConf {
        ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

impl ResolvConf {
    /// The listed nameservers, or 127.0.0.1:53 when none are (glibc's rule).
    pub fn nameservers_or_default(&self) -> Vec<SocketAddr> {
        if self.nameservers.is_empty() {
            vec![SocketAddr::from(([127, 0, 0, 1], DNS_PORT))]
        } else {
            self.nameservers.clone()
        }
    }

    /// The names to query for `name`, in order (resolv.conf(5), `ndots`):
    /// a trailing dot means absolute (only the name itself); a name with at
    /// least `ndots` dots is tried as is first, then with each suffix; one
    /// with fewer dots tries the suffixes first and itself last.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(abs) = name.strip_suffix('.') {
            return vec![abs.to_string()];
        }
        let dots = name.bytes().filter(|&b| b == b'.').count();
        let suffixed = self.search.iter().map(|s| format!("{name}.{s}"));
        if dots >= usize::from(self.ndots) {
            std::iter::once(name.to_string()).chain(suffixed).collect()
        } else {
            suffixed.chain(std::iter::once(name.to_string())).collect()
        }
    }
}

/// Parses resolv.conf text. Comments start with `#` or `;` (at the start of
/// a line or after a keyword's values).
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        match keyword {
            "nameserver" => {
                let ip = words.next().and_then(|w| w.parse::<IpAddr>().ok());
                if let Some(ip) = ip {
                    if conf.nameservers.len() < MAX_NAMESERVERS {
                        conf.nameservers.push(SocketAddr::new(ip, DNS_PORT));
                    }
                }
            }
            "search" => {
                conf.search = words.map(|w| w.trim_end_matches('.').to_string()).collect();
                conf.search.retain(|s| !s.is_empty());
            }
            "domain" => {
                conf.search = words
                    .next()
                    .map(|w| w.trim_end_matches('.').to_string())
                    .filter(|s| !s.is_empty())
                    .into_iter()
                    .collect();
            }
            "options" => words.for_each(|opt| apply_option(&mut conf, opt)),
            _ => {}
        }
    }
    conf
}

fn apply_option(conf: &mut ResolvConf, opt: &str) {
    let Some((key, value)) = opt.split_once(':') else {
        return;
    };
    let Ok(n) = value.parse::<u64>() else {
        return;
    };
    match key {
        "ndots" => conf.ndots = n.min(u64::from(MAX_NDOTS)) as u8,
        "timeout" => conf.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS)),
        "attempts" => conf.attempts = n.clamp(1, u64::from(MAX_ATTEMPTS)) as u8,
        _ => {}
    }
}

/// What `/etc/hosts` says: address lines in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hosts {
    entries: Vec<(IpAddr, Vec<String>)>,
}

impl Hosts {
    /// Every address listed for `name` (any case, a trailing dot ignored),
    /// in file order, without duplicates. IPv6 zone suffixes are not parsed.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        let name = name.strip_suffix('.').unwrap_or(name);
        let mut out = Vec::new();
        for (ip, names) in &self.entries {
            if names.iter().any(|n| n.eq_ignore_ascii_case(name)) && !out.contains(ip) {
                out.push(*ip);
            }
        }
        out
    }

    /// Number of address lines kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no line was kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Parses hosts text: `address name [aliases...]`, `#` starts a comment,
/// lines with a bad address or no name are skipped.
pub fn parse_hosts(text: &str) -> Hosts {
    let mut hosts = Hosts::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        let names: Vec<String> = words.map(|w| w.trim_end_matches('.').to_string()).collect();
        if !names.is_empty() {
            hosts.entries.push((ip, names));
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBERNETES: &str = "\
search default.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.96.0.10
options ndots:5
";

    #[test]
    fn kubernetes_resolv_conf() {
        let c = parse_resolv_conf(KUBERNETES);
        assert_eq!(c.nameservers, ["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(
            c.search,
            [
                "default.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(
            (c.ndots, c.timeout, c.attempts),
            (5, Duration::from_secs(5), 2)
        );
    }

    #[test]
    fn options_comments_and_limits() {
        let c = parse_resolv_conf(
            "# comment\n; other comment\nnameserver 1.1.1.1 # inline\nnameserver ::1\n\
             nameserver bogus\nnameserver 2.2.2.2\nnameserver 3.3.3.3\n\
             options timeout:2 attempts:9 ndots:40 rotate edns0 ndots:x\n\
             domain example.org.\n",
        );
        assert_eq!(
            c.nameservers,
            [
                "1.1.1.1:53".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "2.2.2.2:53".parse().unwrap()
            ]
        );
        assert_eq!((c.ndots, c.attempts), (MAX_NDOTS, MAX_ATTEMPTS));
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(c.search, ["example.org"]);
    }

    #[test]
    fn search_and_domain_replace_each_other() {
        let c = parse_resolv_conf("domain a.test\nsearch b.test c.test\n");
        assert_eq!(c.search, ["b.test", "c.test"]);
        let c = parse_resolv_conf("search b.test c.test\ndomain a.test\n");
        assert_eq!(c.search, ["a.test"]);
    }

    #[test]
    fn empty_file_defaults() {
        let c = parse_resolv_conf("");
        assert_eq!(c, ResolvConf::default());
        assert_eq!(
            c.nameservers_or_default(),
            ["127.0.0.1:53".parse().unwrap()]
        );
    }

    #[test]
    fn search_expansion() {
        let c = parse_resolv_conf(KUBERNETES);
        // Fewer dots than ndots: suffixes first, the name itself last.
        assert_eq!(
            c.candidates("web"),
            [
                "web.default.svc.cluster.local",
                "web.svc.cluster.local",
                "web.cluster.local",
                "web"
            ]
        );
        // A trailing dot is absolute.
        assert_eq!(c.candidates("web.example.com."), ["web.example.com"]);
        // As many dots as ndots: the name first.
        let c = parse_resolv_conf("search s.test\noptions ndots:2\n");
        assert_eq!(c.candidates("a.b.c"), ["a.b.c", "a.b.c.s.test"]);
        assert_eq!(c.candidates("a.b"), ["a.b.s.test", "a.b"]);
        assert_eq!(c.candidates("a"), ["a.s.test", "a"]);
        // No search list: just the name.
        assert_eq!(parse_resolv_conf("").candidates("x"), ["x"]);
    }

    #[test]
    fn hosts_file() {
        let h = parse_hosts(
            "127.0.0.1\tlocalhost localhost.localdomain # loopback\n\
             ::1 localhost ip6-localhost\n\
             # 10.0.0.9 commented\n\
             10.1.2.3 backend backend.compose.\n\
             10.1.2.4 Backend\n\
             not-an-ip name\n\
             10.9.9.9\n\
             127.0.0.1 localhost\n",
        );
        assert_eq!(h.len(), 5);
        assert_eq!(
            h.lookup("localhost"),
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(
            h.lookup("BACKEND."),
            [
                "10.1.2.3".parse::<IpAddr>().unwrap(),
                "10.1.2.4".parse().unwrap()
            ]
        );
        assert_eq!(
            h.lookup("backend.compose"),
            ["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert!(h.lookup("commented").is_empty());
        assert!(h.lookup("name").is_empty());
    }
}
