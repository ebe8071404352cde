//! The reactor's internal consistency, checked by the simulator after every turn.

use crate::backend::BState;
use crate::reactor::Reactor;
use crate::session::Phase;
use crate::token::BRef;

impl Reactor {
    fn backend_alive(&self, b: BRef) -> bool {
        b.alive(&self.backends)
    }

    /// Checks that every cross-reference and counter agrees with the slabs:
    /// client <-> backend links, pool counts and idle lists, queue entries, `active`
    /// counts and buffers. Err names the first disagreement.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut bufs = 0;
        for (i, c) in self.clients.iter() {
            bufs += usize::from(c.rbuf.is_some()) + usize::from(c.wbuf.is_some());
            bufs += tls_bufs(&c.sock);
            let cref = c.cref(i);
            let linked = match &c.phase {
                Phase::Exchange(ex) => ex.backend.map(|b| (b, "exchange")),
                // A finishing tunnel closes its backend as soon as that side is done.
                Phase::Tunnel(t) if t.finishing() && !self.backend_alive(t.backend) => None,
                Phase::Tunnel(t) => Some((t.backend, "tunnel")),
                _ => None,
            };
            // Reads are masked only while the other side is blocked (reactor/interest.rs).
            let partner_blocked = linked
                .and_then(|(br, _)| br.get(&self.backends))
                .is_some_and(|b| b.sock.blocked(&b.wbuf));
            if c.sock.masked && !partner_blocked {
                return Err(format!(
                    "client {i} masked while its other side is not blocked"
                ));
            }
            if let Some((br, what)) = linked {
                let b = br
                    .get(&self.backends)
                    .ok_or_else(|| format!("client {i}'s {what} names a closed backend"))?;
                if b.sock.masked && !c.sock.blocked(&c.wbuf) {
                    return Err(format!(
                        "backend {} masked while client {i} is not blocked",
                        br.index
                    ));
                }
                match (&b.state, what) {
                    (BState::Busy(x), "exchange") | (BState::Tunnel(x), "tunnel") if *x == cref => {
                    }
                    _ => {
                        return Err(format!(
                            "client {i}'s {what} backend {} is not its own",
                            br.index
                        ))
                    }
                }
            }
        }
        for (bi, b) in self.backends.iter() {
            bufs += usize::from(b.rbuf.is_some()) + usize::from(b.wbuf.is_some());
            bufs += tls_bufs(&b.sock);
            let me = BRef {
                index: bi,
                token: b.token,
            };
            let owner = match &b.state {
                BState::Busy(c) => Some((c, "busy")),
                BState::Tunnel(c) => Some((c, "tunnel")),
                BState::Idle if !b.pooled => return Err(format!("unpooled backend {bi} idle")),
                BState::Idle if b.sock.masked => return Err(format!("idle backend {bi} masked")),
                _ => None,
            };
            if let Some((c, what)) = owner {
                let client = c
                    .get(&self.clients)
                    .ok_or_else(|| format!("backend {bi} ({what}) for a closed client"))?;
                let linked = match &client.phase {
                    Phase::Exchange(ex) => what == "busy" && ex.backend == Some(me),
                    Phase::Tunnel(t) => what == "tunnel" && t.backend == me,
                    _ => false,
                };
                if !linked {
                    return Err(format!(
                        "backend {bi} ({what}) for client {} that is not using it",
                        c.index
                    ));
                }
            }
        }
        if bufs != self.bufs.outstanding {
            return Err(format!(
                "{} buffers handed out, {bufs} held by connections",
                self.bufs.outstanding
            ));
        }
        for (g, group) in self.groups.iter().enumerate() {
            for (s, server) in group.servers.iter().enumerate() {
                let mine =
                    |b: &crate::backend::Backend| b.pooled && b.srv.group == g && b.srv.server == s;
                let (mut total, mut connecting, mut idle) = (0, 0, 0);
                for (_, b) in self.backends.iter().filter(|(_, b)| mine(b)) {
                    match b.state {
                        BState::Connecting | BState::Handshake => {
                            total += 1;
                            connecting += 1;
                        }
                        BState::Idle => {
                            total += 1;
                            idle += 1;
                        }
                        BState::Busy(_) => total += 1,
                        _ => {}
                    }
                }
                let pool = &server.pool;
                if (pool.total(), pool.connecting()) != (total, connecting) {
                    return Err(format!(
                        "server {g}/{s}: pool counts total {} connecting {}, slab has {total} / {connecting}",
                        pool.total(), pool.connecting()
                    ));
                }
                let mut seen = pool.idle().to_vec();
                seen.sort_unstable();
                seen.dedup();
                if seen.len() != pool.idle().len() || seen.len() != idle {
                    return Err(format!(
                        "server {g}/{s}: idle list {:?} vs {idle} idle connections",
                        pool.idle()
                    ));
                }
                for &bi in pool.idle() {
                    match self.backends.get(bi) {
                        Some(b) if mine(b) && matches!(b.state, BState::Idle) => {}
                        _ => return Err(format!("server {g}/{s}: idle list names {bi}")),
                    }
                }
                for c in pool.queue() {
                    let Some(client) = c.get(&self.clients) else {
                        continue; // removed lazily
                    };
                    match &client.phase {
                        Phase::Exchange(ex) if ex.backend.is_none() => {}
                        _ => {
                            return Err(format!(
                                "server {g}/{s}: queued client {} is not waiting",
                                c.index
                            ))
                        }
                    }
                }
                let mut active = 0;
                for (_, c) in self.clients.iter() {
                    match &c.phase {
                        Phase::Exchange(ex)
                            if ex.counted && ex.srv.group == g && ex.srv.server == s =>
                        {
                            active += 1
                        }
                        Phase::Tunnel(t) if t.srv.group == g && t.srv.server == s => active += 1,
                        _ => {}
                    }
                }
                if active != server.active {
                    return Err(format!(
                        "server {g}/{s}: active {} but {active} exchanges and tunnels",
                        server.active
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The ciphertext buffers a socket's TLS side holds (feature `tls`).
fn tls_bufs(sock: &crate::io::Sock) -> usize {
    #[cfg(feature = "tls")]
    return sock.tls.as_ref().map_or(0, |w| w.buffers());
    #[cfg(not(feature = "tls"))]
    {
        let _ = sock;
        0
    }
}
