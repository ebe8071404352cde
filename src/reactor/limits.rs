//! The per-client connection limit, the IO half: `crate::clients::ClientLimits` counts
//! and decides; this answers the connection over the limit and gives counts back.

use super::Reactor;
use crate::clients::Verdict;
use crate::session::Client;
use protocol::h1::status;
use std::net::IpAddr;

impl Reactor {
    /// Counts client connection `i` against `max_connections_per_client` under `ip`,
    /// or answers it `429 Too Many Requests` (with `Retry-After`) and closes it, an
    /// upgrade request too. Call once per connection, when its client address is known
    /// (the peer address at accept; the PROXY-protocol address where that is in use),
    /// with `peer` holding that address: closing the connection gives the count back
    /// under `peer`'s IP.
    #[cold]
    pub(crate) fn admit_client(&mut self, i: usize, ip: IpAddr) {
        match self.client_limits.on_open(ip) {
            Verdict::Accept => self.clients[i].counted = self.client_limits.enabled(),
            Verdict::Reject => self.reject(
                i,
                status::TOO_MANY_REQUESTS,
                "too many connections from this client address",
            ),
        }
    }

    /// A reload set `max_connections_per_client` (None = off). Turned off, the counts
    /// are forgotten and so is which connections were counted; turned on, connections
    /// already open are not counted.
    pub(crate) fn reconfigure_client_limits(&mut self, max: Option<usize>) {
        self.client_limits.set_max(max);
        if !self.client_limits.enabled() {
            for (_, c) in self.clients.iter_mut() {
                c.counted = false;
            }
        }
    }

    /// A counted client connection ended (`close_client`, the one place they end).
    #[cold]
    pub(crate) fn client_closed(&mut self, c: &Client) {
        if let Ok(ip) = c.peer.ip_str().parse::<IpAddr>() {
            self.client_limits.on_close(ip);
        }
    }
}
