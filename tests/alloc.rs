//! Proves the keep-alive path allocates nothing per request in steady state: a counting
//! global allocator counts only on the reactor's thread; after a warm-up (pool
//! connections open, buffers in the free list, slabs and the timer heap grown), many
//! more proxied requests must not allocate at all.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use util::*;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
}

fn tracked() -> bool {
    TRACK.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if tracked() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if tracked() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn keep_alive_requests_do_not_allocate() {
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let text = format!(
        "[frontend]\nhost=127.0.0.1\nport=0\n[http]\nalgorithm=round-robin\nserver1_addr={}\nserver2_addr={}\n[log]\nlevel=warn\naccess_log=false\n",
        a.addr, b.addr
    );
    let cfg = sluice::config::parse(&text, "alloc.ini", &sluice::config::resolve_system).unwrap();
    let mut reactor = sluice::Reactor::with_seed(cfg, 1).unwrap();
    let addr = reactor.local_addr().unwrap();
    let stop = reactor.stop_handle();
    let thread = std::thread::spawn(move || {
        TRACK.with(|t| t.set(true));
        reactor.run().unwrap();
    });
    let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(addr)).collect();
    let mut round = |n: usize| {
        for _ in 0..n {
            for c in clients.iter_mut() {
                let r = c.get("/ping?x=1");
                assert_eq!(r.status, 200);
                // A small body is buffered (request_buffer_bytes) in the client's own
                // buffer before dispatch: no allocation either.
                c.send(b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\nk=v&a=b");
                assert_eq!(c.read_response(false).expect("a response").status, 200);
            }
        }
    };
    round(50);
    let before = ALLOCS.load(Ordering::SeqCst);
    round(250);
    let after = ALLOCS.load(Ordering::SeqCst);
    stop.stop();
    thread.join().unwrap();
    println!(
        "allocations on the reactor thread for 2000 keep-alive requests: {}",
        after - before
    );
    assert_eq!(
        after - before,
        0,
        "steady-state requests allocated on the reactor thread"
    );
}
