//! Issue 4 at scale, through a real `sluice` process: 1,000 concurrent tunnels all
//! echoing, file descriptors back to baseline afterwards, and the RSS growth per idle
//! tunnel (printed, and held to the README's figure of about 1 KiB).

mod util;
mod wsutil;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tungstenite::Message;
use util::{fd_count, rss_kib, wait_until, ProxyProcess};
use wsutil::*;

const THREADS: usize = 20;
const PER_THREAD: usize = 50;
const ROUNDS: usize = 3;

/// Closes a client cleanly: Close, then read until the proxy ends the connection.
fn close(mut ws: Ws) {
    let _ = ws.close(None);
    let end = Instant::now() + WAIT;
    while Instant::now() < end && ws.read().is_ok() {}
}

#[test]
fn thousand_concurrent_sessions_echo_and_fds_return_to_baseline() {
    let b = EchoBackend::start();
    let p = ProxyProcess::start(&ws_ini(""), &[b.addr]);
    let pid = p.pid();
    // ProxyProcess::start's probe connection is closed by sluice before the baseline.
    assert!(wait_until(|| held_connections(p.addr) == 0));
    let base_fds = fd_count(pid);
    let addr = p.addr;
    let t = Instant::now();
    let open = Arc::new(Barrier::new(THREADS + 1));
    let done = Arc::new(Barrier::new(THREADS + 1));
    let workers: Vec<_> = (0..THREADS)
        .map(|th| {
            let (open, done) = (open.clone(), done.clone());
            std::thread::spawn(move || {
                let mut socks: Vec<Ws> = (0..PER_THREAD)
                    .map(|_| ws_connect(addr, "/", &[]).0)
                    .collect();
                open.wait();
                for round in 0..ROUNDS {
                    for (k, ws) in socks.iter_mut().enumerate() {
                        let text = format!("t{th}-s{k}-r{round}");
                        ws.send(Message::text(text)).unwrap();
                    }
                    for (k, ws) in socks.iter_mut().enumerate() {
                        let want = Message::text(format!("t{th}-s{k}-r{round}"));
                        assert_eq!(next_msg(ws), want);
                        let bin = vec![(k + round) as u8; 1000 + k];
                        ws.send(Message::binary(bin.clone())).unwrap();
                        assert_eq!(next_msg(ws), Message::binary(bin));
                    }
                }
                done.wait();
                for ws in socks {
                    close(ws);
                }
            })
        })
        .collect();
    open.wait();
    let peak_fds = fd_count(pid);
    done.wait();
    let echoed_in = t.elapsed();
    for w in workers {
        w.join().expect("a client thread failed");
    }
    let total = t.elapsed();
    assert_eq!(b.accepted(), THREADS * PER_THREAD);
    let back = wait_until(|| fd_count(pid) <= base_fds);
    let after = fd_count(pid);
    println!(
        "{} sessions x {ROUNDS} rounds (text + binary) echoed in {echoed_in:?}, closed by {total:?}; \
         sluice fds: baseline {base_fds}, with all open {peak_fds}, after close {after}",
        THREADS * PER_THREAD
    );
    assert!(
        peak_fds >= 2 * THREADS * PER_THREAD,
        "every tunnel holds two sockets: {peak_fds}"
    );
    assert!(
        back,
        "fds did not return to baseline: {after} > {base_fds}\n{}",
        p.stderr()
    );
    assert!(total < Duration::from_secs(120), "took {total:?}");
    assert!(
        wait_until(|| b.open() == 0),
        "backend connections left open: {}",
        b.open()
    );
}

#[test]
fn idle_tunnels_cost_little_memory() {
    const N: usize = 2000;
    const WARM: usize = 200;
    let b = EchoBackend::start();
    let p = ProxyProcess::start(&ws_ini(""), &[b.addr]);
    let pid = p.pid();
    assert!(wait_until(|| held_connections(p.addr) == 0));
    let base_fds = fd_count(pid);
    let open = |n: usize| -> Vec<Ws> {
        (0..n)
            .map(|k| {
                let (mut ws, _) = ws_connect(p.addr, "/", &[]);
                ws.send(Message::text(format!("m{k}"))).unwrap();
                assert_eq!(next_msg(&mut ws), Message::text(format!("m{k}")));
                ws
            })
            .collect()
    };
    // Warm up: the allocator's arenas, the buffer free list and the slabs' first pages.
    for ws in open(WARM) {
        close(ws);
    }
    assert!(wait_until(|| fd_count(pid) <= base_fds));
    let before = rss_kib(pid);
    // Every tunnel has echoed once: sluice has done all its work for them.
    let socks = open(N);
    let after = rss_kib(pid);
    let fds = fd_count(pid);
    let per_tunnel = (after.saturating_sub(before) * 1024) as f64 / N as f64;
    println!(
        "VmRSS {before} KiB -> {after} KiB with {N} idle tunnels (handshake + one echo each): \
         {per_tunnel:.0} bytes per tunnel (client + backend socket); sluice fds {base_fds} -> {fds}"
    );
    assert!(fds >= 2 * N, "{fds} fds for {N} tunnels");
    // README: about 1 KiB per idle tunnel (805 bytes measured in release, 858 in
    // debug); 25% over the README's figure for noise. Buffers kept per idle tunnel
    // (4 KiB and more) or a larger tunnel state break it.
    assert!(per_tunnel < 1280.0, "{per_tunnel:.0} bytes per idle tunnel");
    for ws in socks {
        close(ws);
    }
    assert!(
        wait_until(|| fd_count(pid) <= base_fds),
        "fds: {} > {base_fds}",
        fd_count(pid)
    );
}
