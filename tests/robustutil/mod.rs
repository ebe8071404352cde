//! Helpers of the adversarial suite (tests/robust*.rs): a bystander client that keeps
//! being served while an attack runs, and raw one-shot requests. Every loop is bounded
//! in count and time.
#![allow(dead_code)]

use crate::util::{Backend, Client, Response};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Prefix of every bystander request target.
pub const BY: &str = "/by/";
/// Longest a bystander runs.
const BY_LIFETIME: Duration = Duration::from_secs(90);

/// A keep-alive client doing GETs `BY<n>` on one connection while a test misbehaves
/// elsewhere. The backend must answer each with its target as the body (`tag`). Any
/// failure (status, body, closed connection) is reported by `finish`.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    /// Requests answered correctly so far.
    served: Arc<AtomicUsize>,
    thread: Option<JoinHandle<Result<usize, String>>>,
}

impl Bystander {
    /// Connects and starts; returns once the first request was served.
    #[track_caller]
    pub fn start(addr: SocketAddr) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (st, sv) = (stop.clone(), served.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            let end = Instant::now() + BY_LIFETIME;
            let mut n = 0;
            while (n == 0 || !st.load(Ordering::SeqCst)) && Instant::now() < end && n < 50_000 {
                let t = format!("{BY}{n}");
                c.send(format!("GET {t} HTTP/1.1\r\nHost: by\r\n\r\n").as_bytes());
                match c.read_response(false) {
                    Some(r) if r.status == 200 && r.body == t.as_bytes() => {}
                    Some(r) => return Err(format!("{t}: {} {:?}", r.status, r.text())),
                    None => return Err(format!("{t}: no response (connection lost)")),
                }
                n += 1;
                sv.store(n, Ordering::SeqCst);
                if n == 1 {
                    let _ = tx.send(());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(n)
        });
        let started = rx.recv_timeout(Duration::from_secs(10)).is_ok();
        let mut b = Bystander {
            stop,
            served,
            thread: Some(thread),
        };
        if !started {
            let r = b.join();
            panic!("the bystander never got its first response: {r:?}");
        }
        b
    }

    /// Waits (bounded) until `more` further requests were answered: the proxy went
    /// round its event loop that many times meanwhile. False if it did not happen.
    pub fn wait_served(&self, more: usize) -> bool {
        let target = self.served.load(Ordering::SeqCst) + more;
        crate::util::wait_until(|| self.served.load(Ordering::SeqCst) >= target)
    }

    fn join(&mut self) -> Result<usize, String> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err("bystander panicked".into()),
            None => Err("already joined".into()),
        }
    }

    /// Stops it and asserts every one of its requests got its own 200.
    #[track_caller]
    pub fn finish(mut self) -> usize {
        match self.join() {
            Ok(n) => {
                assert!(n > 0, "the bystander was never served");
                n
            }
            Err(e) => panic!("the bystander was disturbed: {e}"),
        }
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A backend that answers every request with its target as the body.
pub fn tagging_backend() -> Backend {
    Backend::start(|r| crate::util::ok(&r.target))
}

/// The requests a backend saw that were not the bystander's.
pub fn attacks_seen(b: &Backend) -> Vec<String> {
    b.requests()
        .into_iter()
        .filter(|r| !r.target.starts_with(BY))
        .map(|r| format!("{} {}", r.method, r.target))
        .collect()
}

/// Sends raw bytes on a new connection (the proxy may close before taking them all)
/// and reads one response; None when the connection ended without one.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> (Option<Response>, Client) {
    let mut c = Client::connect(addr);
    let _ = std::io::Write::write_all(&mut c.w, bytes);
    let r = c.read_response(false);
    (r, c)
}

/// Connections completed by the kernel and waiting in the accept queue of the listener
/// at `addr` (the LISTEN entry's rx_queue in /proc/net/tcp); None without one.
pub fn accept_queue(addr: SocketAddr) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = format!(":{:04X}", addr.port());
    table.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.len() > 4 && cols[1].ends_with(&port) && cols[3] == "0A" {
            let rx = cols[4].split(':').nth(1)?;
            usize::from_str_radix(rx, 16).ok()
        } else {
            None
        }
    })
}

/// True when the proxy ended the connection with a FIN (EOF) within the read timeout,
/// after any bytes still unread. A reset is false: sluice answers, half-closes and
/// discards the rest of the input (lingering close) so that the answer is not lost to
/// a reset. (`Client::closed` accepts either.)
pub fn ended_by_fin(c: &mut Client) -> bool {
    let mut b = [0u8; 4096];
    for _ in 0..10_000 {
        match std::io::Read::read(&mut c.r, &mut b) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}
