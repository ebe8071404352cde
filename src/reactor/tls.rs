//! TLS in the reactor (feature `tls`): the `[tls]` listener, TLS to backends, handshake
//! accounting, certificate reload.
//!
//! A TLS client is a plain `Client` whose `Sock` carries a [`Wire`]: the sessions above read
//! and write plaintext through `io::fill` / `io::flush` as always. Here: accept (the session's
//! first deadline is `handshake_timeout`, not `client_idle_timeout`), the handshake's end
//! (counted; the idle deadline takes over), the close (a handshake that never finished is
//! counted by reason and logged at debug), backends (a `Wire` on connect when the server has
//! `serverN_tls`; a failure is logged at warn with the rustls reason), `/metrics` and SIGHUP.

use super::{bind_listener, Reactor};
use crate::config::Config;
use crate::group::SrvId;
use crate::io::wire::Wire;
use crate::io::{listen_error, Io, Listener, Sock};
use crate::timer::Owner;
use crate::tls::{ClientTls, HandshakeFail, HandshakeStats, ServerTls, TlsError};
use log::{debug, warn};
use mio::{Interest, Registry, Token};
use std::fmt::Write;
use std::io;
use std::net::SocketAddr;

/// Which side of a handshake sluice was on.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    /// A client connected to the `[tls]` listener.
    Client = 0,
    /// sluice connected to a `serverN_tls` backend (requests and probes).
    Backend = 1,
}

/// The reactor's TLS state.
#[derive(Default)]
pub(crate) struct Tls {
    /// The `[tls]` listener (None when not configured or once draining).
    listener: Option<Listener>,
    pub(crate) addr: Option<SocketAddr>,
    /// The listener was readable and not drained.
    pub(crate) ready: bool,
    server: Option<ServerTls>,
    client: Option<ClientTls>,
    /// Handshakes per side.
    stats: [HandshakeStats; 2],
}

impl Tls {
    /// Binds the `[tls]` listener and loads certificates and backend trust. The error names
    /// the listener, the pair or the server that is wrong.
    pub(crate) fn new(cfg: &Config, registry: &Registry, token: Token) -> io::Result<Tls> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let mut tls = Tls::default();
        for w in cfg.warnings() {
            warn!("{w}");
        }
        let backends = [&cfg.http, &cfg.websocket];
        if backends
            .iter()
            .any(|g| g.servers.iter().any(|s| s.tls.is_some()))
        {
            tls.client = Some(ClientTls::new(cfg).map_err(invalid)?);
        }
        let Some(lcfg) = &cfg.tls else {
            return Ok(tls);
        };
        tls.server = Some(ServerTls::new(lcfg).map_err(invalid)?);
        let reuse = cfg.frontend.workers > 1;
        let mut l = bind_listener(lcfg.listen, reuse).map_err(listen_error(lcfg.listen, "tls"))?;
        tls.addr = Some(l.local_addr()?);
        registry.register(&mut l, token, Interest::READABLE)?;
        log::info!("TLS listening on {}", l.local_addr()?);
        tls.listener = Some(l);
        Ok(tls)
    }

    /// Stops accepting (drain).
    pub(crate) fn close_listener(&mut self, registry: &Registry) {
        if let Some(mut l) = self.listener.take() {
            let _ = registry.deregister(&mut l);
        }
        self.ready = false;
    }
}

impl Reactor {
    /// The `[tls]` listener's address (port 0 in the config picks one).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.addr
    }

    /// Accepts TLS clients until the listener would block or `max_connections` is reached.
    pub(crate) fn accept_tls(&mut self) {
        while self.tls.ready {
            if self.clients.len() >= self.cfg.frontend.max_connections {
                return;
            }
            let (Some(listener), Some(server)) = (&self.tls.listener, &self.tls.server) else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.tls.ready = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("tls accept failed: {e}");
                    return;
                }
            };
            let session = match server.accept(self.now) {
                Ok(s) => s,
                Err(_) => {
                    self.tls.stats[Side::Client as usize].fail(HandshakeFail::Other);
                    continue;
                }
            };
            let deadline = session.deadline();
            let Some(i) = self.add_client(stream, peer, false) else {
                continue;
            };
            let c = &mut self.clients[i];
            c.sock.tls = Some(Wire::new(session));
            c.deadline
                .set(deadline, Owner::Client(c.token.0), &mut self.timers);
        }
    }

    /// After a read on client `i`: when its handshake has just finished, count it and give
    /// the connection its keep-alive idle deadline.
    pub(crate) fn tls_client_step(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if !c.sock.tls.as_mut().is_some_and(|w| w.opened()) {
            return;
        }
        self.tls.stats[Side::Client as usize].done += 1;
        let at = self.now + self.cfg.frontend.client_idle_timeout;
        c.deadline
            .set(Some(at), Owner::Client(c.token.0), &mut self.timers);
    }

    /// After an event on backend `i`: count a handshake that has just finished.
    pub(crate) fn tls_backend_step(&mut self, i: usize) {
        let opened = self
            .backends
            .get_mut(i)
            .and_then(|b| b.sock.tls.as_mut())
            .is_some_and(|w| w.opened());
        if opened {
            self.tls.stats[Side::Backend as usize].done += 1;
        }
    }

    /// A socket is closing: give back its ciphertext buffers, and count and log a handshake
    /// that did not finish.
    pub(crate) fn tls_closed(&mut self, sock: &mut Sock, side: Side, peer: &dyn std::fmt::Display) {
        let Some(w) = sock.tls.as_mut() else {
            return;
        };
        w.release(&mut self.bufs);
        let s = &mut w.session;
        let why = match s.failure() {
            Some(TlsError::Handshake(why)) => why,
            Some(TlsError::Broken) => {
                debug!("{peer}: TLS session broken: {:?}", s.last_error());
                return;
            }
            None if !s.is_handshaking() => return,
            None => match s.on_timeout(self.now) {
                Some(why) => why,
                None => s.on_eof().unwrap_or(HandshakeFail::Eof),
            },
        };
        self.tls.stats[side as usize].fail(why);
        let detail = s.last_error().map(|e| format!(": {e}")).unwrap_or_default();
        match side {
            Side::Client => debug!("{peer}: TLS handshake failed ({why}){detail}"),
            Side::Backend => warn!("TLS to {peer} failed ({why}){detail}"),
        }
    }

    /// A new connection to `srv`: a client session when the server has `serverN_tls`
    /// (handshake bounded by the group's connect timeout, which covers TCP and TLS as
    /// Envoy's `connect_timeout` and nginx's `proxy_connect_timeout` do).
    pub(crate) fn tls_connect(&mut self, i: usize, srv: SrvId) -> bool {
        let server = &self.groups[srv.group].servers[srv.server];
        let Some(btls) = &server.cfg.tls else {
            return true;
        };
        let deadline = self.now + self.groups[srv.group].cfg.connect_timeout;
        let session = self.tls.client.as_ref().map(|c| c.connect(btls, deadline));
        match session {
            Some(Ok(s)) => {
                self.backends[i].sock.tls = Some(Wire::new(s));
                true
            }
            _ => {
                warn!("TLS to {}: no client configuration", server.cfg.name);
                false
            }
        }
    }

    /// Drives the handshake of backend `i` (state `Handshake`, TCP connected): sends the
    /// next flight, reads the server's. Done: the connection is ready (pool or waiting
    /// client); failed or closed: a connect failure (retry elsewhere or 502, a passive
    /// failure, the reason counted and logged by `tls_closed`). The connect deadline set
    /// at `connect_backend` still runs and ends a handshake that stalls.
    pub(crate) fn tls_handshake_step(&mut self, i: usize) {
        let b = &mut self.backends[i];
        let sent = crate::io::flush(&mut b.sock, &mut b.wbuf, &mut self.bufs);
        let got = crate::io::fill(&mut b.sock, &mut b.rbuf, &mut self.bufs);
        let open = b.sock.tls.as_ref().is_some_and(|w| w.session.is_open());
        match (sent, got) {
            (Io::Error(_), _) | (_, Io::Error(_)) => {
                self.on_connect_failed(i, "TLS handshake failed");
            }
            _ if b.sock.eof && !open => {
                self.on_connect_failed(i, "closed during the TLS handshake");
            }
            // Plaintext before any request: no response can be trusted on it.
            _ if open && b.rbuf.is_some() => {
                self.on_connect_failed(i, "unexpected bytes from the backend");
            }
            _ if open => self.connection_ready(i),
            _ => {}
        }
    }

    /// Backend `i`'s own deadline passed (connect or probe timeout) with its handshake
    /// still running: that is the handshake's timeout, whatever the session's own deadline.
    pub(crate) fn tls_expired(&mut self, i: usize) {
        let Some(w) = self.backends.get_mut(i).and_then(|b| b.sock.tls.as_mut()) else {
            return;
        };
        let now = w.session.deadline().map(|d| d.max(self.now));
        if let Some(now) = now {
            w.session.on_timeout(now);
        }
    }

    /// An event on idle TLS backend `i`: records without plaintext (a TLS 1.3 session
    /// ticket) keep it; plaintext, EOF or a failure are the reason to evict it.
    pub(crate) fn tls_idle_news(&mut self, i: usize) -> Option<&'static str> {
        let b = &mut self.backends[i];
        let why = match crate::io::fill(&mut b.sock, &mut b.rbuf, &mut self.bufs) {
            Io::Error(_) => "TLS failure or reset",
            _ if b.rbuf.is_some() => "unexpected bytes from the backend",
            _ if b.sock.eof => "closed by the backend",
            _ => return None,
        };
        Some(why)
    }

    /// SIGHUP: new certificates for new connections; an invalid pair keeps the old ones.
    pub(crate) fn tls_reload(&mut self, new: &Config) {
        let (Some(server), Some(lcfg)) = (self.tls.server.as_mut(), &new.tls) else {
            if self.tls.server.is_some() != new.tls.is_some() {
                warn!("[tls] added or removed: restart sluice to open or close the TLS listener");
            }
            return;
        };
        match server.reload(lcfg) {
            Ok(()) => log::info!("[tls] certificates reloaded"),
            Err(e) => log::error!("[tls] reload failed, keeping the current certificates: {e}"),
        }
        let groups = [&new.http, &new.websocket];
        if groups
            .iter()
            .any(|g| g.servers.iter().any(|s| s.tls.is_some()))
        {
            match ClientTls::new(new) {
                Ok(c) => self.tls.client = Some(c),
                Err(e) => log::error!("backend TLS reload failed, keeping the current trust: {e}"),
            }
        }
    }

    /// `/metrics` lines for handshakes, appended to the rest.
    pub(crate) fn tls_metrics(&self, m: &mut String) {
        let name = "sluice_tls_handshakes_total";
        let _ = writeln!(
            m,
            "# HELP {name} TLS handshakes completed\n# TYPE {name} counter"
        );
        let sides = [("client", Side::Client), ("backend", Side::Backend)];
        for (label, side) in sides {
            let n = self.tls.stats[side as usize].done;
            let _ = writeln!(m, "{name}{{side=\"{label}\"}} {n}");
        }
        let name = "sluice_tls_handshake_failures_total";
        let _ = writeln!(
            m,
            "# HELP {name} TLS handshakes that failed, by reason\n# TYPE {name} counter"
        );
        for (label, side) in sides {
            for why in HandshakeFail::ALL {
                let n = self.tls.stats[side as usize].failed(why);
                let _ = writeln!(m, "{name}{{side=\"{label}\",reason=\"{why}\"}} {n}");
            }
        }
    }
}
