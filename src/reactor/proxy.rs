//! The PROXY protocol (HAProxy's `proxy-protocol.txt`) on both sides of the proxy.
//!
//! Accepted connections (`[frontend] accept_proxy`): a session starts in
//! `Phase::Proxy`; the header is parsed incrementally by `protocol::proxy` as bytes
//! arrive (bounded by `request_header_timeout` and by one buffer), its source address
//! becomes the client's address (`Client::set_peer`: X-Forwarded-For, the access log,
//! per-client accounting), and the bytes after it are read as HTTP. A connection whose
//! first bytes are not a valid header is closed with one log line and no answer: it is
//! never read as HTTP (spec §2). `LOCAL` (v2) and `UNKNOWN` (v1) keep the socket's
//! address.
//!
//! Toward servers (`serverN_send_proxy`): the header is the first thing written on
//! each connection. Such connections are private to the client that opened them (as
//! HAProxy marks `send-proxy` connections private): one per request or tunnel, never
//! pooled or reused, so a header always names the client whose bytes follow. Health
//! checks send `LOCAL` (v2) or `PROXY UNKNOWN` (v1), which the spec reserves for
//! connections the proxy makes itself.

use super::Reactor;
use crate::io::{fill, Io};
use crate::session::{Phase, Step};
use crate::timer::Owner;
use log::{debug, warn};
use protocol::proxy::{self, Addresses, Parsed, Version};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};

impl Reactor {
    /// Reads the PROXY header of client `i` (in `Phase::Proxy`), then hands the
    /// session to HTTP, or closes it.
    pub(crate) fn step_proxy(&mut self, i: usize) -> Step {
        let c = &mut self.clients[i];
        let Phase::Proxy { accept } = c.phase else {
            return Step::Wait;
        };
        if let Io::Error(_) = fill(&mut c.sock, &mut c.rbuf, &mut self.bufs) {
            return Step::Close;
        }
        let (held, full) = c
            .rbuf
            .as_ref()
            .map_or((0, false), |b| (b.len(), b.space() == 0));
        let bytes = c.rbuf.as_ref().map_or(&[][..], |b| b.bytes());
        match proxy::parse(bytes, accept) {
            Ok(Parsed::Done { header, consumed }) => {
                if let Some(src) = header.addrs.source().filter(|_| !header.local) {
                    debug!("{}: PROXY header: client {src}", c.peer);
                    c.set_peer(src);
                }
                if let Some(b) = c.rbuf.as_mut() {
                    b.consume(consumed);
                }
                self.bufs.release_if_empty(&mut c.rbuf);
                c.set_phase(Phase::Head { started: None });
                let at = self.now + self.cfg.frontend.client_idle_timeout;
                c.deadline
                    .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
                if self.client_limits.enabled() {
                    if let Some(addr) = c.peer.addr() {
                        self.admit_client(i, addr.ip());
                    }
                }
                Step::Again
            }
            Ok(Parsed::Partial) if c.sock.eof => {
                if held == 0 {
                    // A TCP health check from the load balancer: nothing to report.
                    debug!("{}: closed before sending a PROXY header", c.peer);
                } else {
                    warn!("{}: closed in the middle of a PROXY header", c.peer);
                }
                Step::Close
            }
            Ok(Parsed::Partial) if full => {
                warn!("{}: PROXY header longer than {held} bytes, closing", c.peer);
                Step::Close
            }
            Ok(Parsed::Partial) => Step::Wait,
            Err(e) => {
                warn!("{}: invalid PROXY protocol header ({e}), closing", c.peer);
                Step::Close
            }
        }
    }
}

/// The header that starts a connection to a server on behalf of `client` (its address
/// as sluice knows it, PROXY-given or not), which reached sluice at `local`.
pub(crate) fn header_for(
    version: Version,
    client: Option<SocketAddr>,
    local: SocketAddr,
    out: &mut Vec<u8>,
) {
    let addrs = match client {
        Some(src) => addresses(src, local),
        None => Addresses::Unknown,
    };
    match version {
        Version::V1 => proxy::write_v1(&addrs, out),
        Version::V2 => proxy::write_v2(false, &addrs, out),
    }
}

/// The header of a health check: the connection is sluice's own.
pub(crate) fn header_local(version: Version, out: &mut Vec<u8>) {
    match version {
        Version::V1 => proxy::write_v1(&Addresses::Unknown, out),
        Version::V2 => proxy::write_v2(true, &Addresses::Unknown, out),
    }
}

/// Both endpoints in one family (an IPv4 client on an IPv6 listener is written as
/// IPv4-mapped IPv6).
fn addresses(src: SocketAddr, dst: SocketAddr) -> Addresses {
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => SocketAddrV6::new(ip.to_ipv6_mapped(), a.port(), 0, 0),
        IpAddr::V6(ip) => SocketAddrV6::new(ip, a.port(), 0, 0),
    };
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Addresses::Tcp4 {
            src: SocketAddrV4::new(s, src.port()),
            dst: SocketAddrV4::new(d, dst.port()),
        },
        _ => Addresses::Tcp6 {
            src: v6(src),
            dst: v6(dst),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_toward_servers() {
        let mut out = Vec::new();
        let (c, l) = (
            "192.0.2.7:5000".parse().unwrap(),
            "10.0.0.1:80".parse().unwrap(),
        );
        header_for(Version::V1, Some(c), l, &mut out);
        assert_eq!(out, b"PROXY TCP4 192.0.2.7 10.0.0.1 5000 80\r\n");
        out.clear();
        let l6 = "[::1]:80".parse().unwrap();
        header_for(Version::V1, Some(c), l6, &mut out);
        assert_eq!(out, b"PROXY TCP6 ::ffff:192.0.2.7 ::1 5000 80\r\n");
        out.clear();
        header_for(Version::V2, None, l, &mut out);
        let parsed = proxy::parse(&out, proxy::Accept::V2).unwrap();
        assert!(
            matches!(parsed, Parsed::Done { header, .. } if header.addrs == Addresses::Unknown)
        );
        out.clear();
        header_for(Version::V2, Some(c), l, &mut out);
        let Ok(Parsed::Done { header, consumed }) = proxy::parse(&out, proxy::Accept::Any) else {
            panic!("{out:?}");
        };
        assert_eq!((header.addrs.source(), consumed), (Some(c), out.len()));
        out.clear();
        header_local(Version::V2, &mut out);
        let Ok(Parsed::Done { header, .. }) = proxy::parse(&out, proxy::Accept::V2) else {
            panic!("{out:?}");
        };
        assert!(header.local);
        out.clear();
        header_local(Version::V1, &mut out);
        assert_eq!(out, b"PROXY UNKNOWN\r\n");
    }
}
