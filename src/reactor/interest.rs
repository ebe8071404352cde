//! Backpressure masks read interest. While a destination socket cannot take more (bytes
//! queued for it and its last write would block), reading its source is pointless; with
//! edge-triggered readiness every segment arriving at the source would still wake the
//! loop for nothing. On a bulk upload through a full backend that was most of the loop's
//! wakeups (measured: 981 -> 358 `epoll_wait` per GiB uploaded, 1,035 -> 245 per GiB
//! downloaded, proxy CPU per GiB down 7-25%). So the source is registered for
//! writability only until its destination drains. Nothing is forgotten: the source's
//! `readable` flag stays as it was, and the re-arm (`EPOLL_CTL_MOD`) reports whatever
//! arrived meanwhile as a fresh edge. A peer's reset is still reported while masked
//! (errors need no interest); its FIN is seen once reads resume.
//!
//! An exchange or tunnel going to wait keeps its two masks in step with backpressure
//! (`sync_pair`: two comparisons on the hot path, a re-arm only when one changes). A
//! client still masked when it waits in any other way (its exchange or tunnel ended)
//! reads again (`sync_interest`), and so does a backend connection going idle in its
//! pool (`unmask_backend`: its idle watch needs reads).

use super::Reactor;
use crate::io::Sock;
use crate::session::Phase;
use mio::{Interest, Registry, Token};

impl Reactor {
    /// An exchange's or tunnel's pair (client `i`, backend `b`) going to wait: masks each
    /// side whose other side is blocked, unmasks the rest.
    #[inline]
    pub(crate) fn sync_pair(&mut self, i: usize, b: usize) {
        let (c, be) = (&self.clients[i], &self.backends[b]);
        let want = (be.sock.blocked(&be.wbuf), c.sock.blocked(&c.wbuf));
        if want != (c.sock.masked, be.sock.masked) {
            self.set_pair(i, b, want);
        }
    }

    #[cold]
    fn set_pair(&mut self, i: usize, b: usize, (client, backend): (bool, bool)) {
        let registry = self.poll.registry();
        let c = &mut self.clients[i];
        set_masked(registry, &mut c.sock, c.token, client);
        let be = &mut self.backends[b];
        set_masked(registry, &mut be.sock, be.token, backend);
    }

    /// Client `i` waits while masked: in an exchange or tunnel its pair decides; in any
    /// other phase it reads again.
    #[cold]
    pub(crate) fn sync_interest(&mut self, i: usize) {
        let c = &self.clients[i];
        let backend = match &c.phase {
            Phase::Exchange(ex) => ex.backend,
            Phase::Tunnel(t) => Some(t.backend),
            _ => None,
        };
        match backend.filter(|b| b.alive(&self.backends)) {
            Some(b) => self.sync_pair(i, b.index),
            None => {
                let c = &mut self.clients[i];
                set_masked(self.poll.registry(), &mut c.sock, c.token, false);
            }
        }
    }

    /// Reads on for backend connection `i` (going idle: its idle watch reads).
    #[inline]
    pub(crate) fn unmask_backend(&mut self, i: usize) {
        let be = &mut self.backends[i];
        if be.sock.masked {
            set_masked(self.poll.registry(), &mut be.sock, be.token, false);
        }
    }
}

fn set_masked(registry: &Registry, sock: &mut Sock, token: Token, masked: bool) {
    if sock.masked == masked {
        return;
    }
    let interest = if masked {
        Interest::WRITABLE
    } else {
        Interest::READABLE | Interest::WRITABLE
    };
    match registry.reregister(&mut sock.stream, token, interest) {
        Ok(()) => sock.masked = masked,
        // Left as it was: a masked socket that cannot be re-armed is about to fail
        // anyway, and an unmasked one only costs wakeups.
        Err(e) => log::debug!("reregister: {e}"),
    }
}
