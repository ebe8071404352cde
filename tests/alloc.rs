//! Proves the keep-alive path allocates nothing per request in steady state: a counting
//! global allocator counts only on the reactor's thread; after a warm-up (pool
//! connections open, buffers in the free list, slabs and the timer heap grown), many
//! more proxied requests must not allocate at all: with the access log off, with the
//! default configuration (the real logger, the access log on) and with JSON lines.

mod allocutil;
mod util;

use util::*;

/// A reactor on its own thread (tracked), 4 keep-alive clients: the allocations
/// counted for 1000 requests after a warm-up of 200. `log` is the `[log]` section.
fn allocations_per_1000_requests(log: &str) -> u64 {
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let text = format!(
        "[frontend]\nhost=127.0.0.1\nport=0\n[http]\nalgorithm=round-robin\nserver1_addr={}\nserver2_addr={}\n{log}",
        a.addr, b.addr
    );
    let cfg = sluice::config::parse(&text, "alloc.ini", &sluice::config::resolve_system).unwrap();
    let mut reactor = sluice::Reactor::with_seed(cfg, 1).unwrap();
    let addr = reactor.local_addr().unwrap();
    let stop = reactor.stop_handle();
    let thread = std::thread::spawn(move || {
        allocutil::track();
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
    let before = allocutil::allocations();
    round(250);
    let after = allocutil::allocations();
    stop.stop();
    thread.join().unwrap();
    after - before
}

/// The configurations are measured one after the other: the counter is shared.
#[test]
fn keep_alive_requests_do_not_allocate() {
    let dir = std::env::temp_dir().join(format!("sluice-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The real logger, as `sluice` sets it up (errors and events on stderr, level
    // info: the default).
    let cfg = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        .build();
    let _ = simplelog::WriteLogger::init(log::LevelFilter::Info, cfg, std::io::stderr());
    let common = dir.join("access.log");
    let json = dir.join("access.json");
    let configs = [
        (
            "the access log off".to_string(),
            "[log]\nlevel=warn\naccess_log=false\n".to_string(),
        ),
        // The defaults (level info, access log on, `common`), written to a file as in
        // production rather than into the test's output.
        (
            "the defaults, access log to a file".to_string(),
            format!("[log]\naccess_log={}\n", common.display()),
        ),
        (
            "the JSON access log".to_string(),
            format!(
                "[log]\naccess_log={}\naccess_log_format=json\n",
                json.display()
            ),
        ),
    ];
    let mut failed = Vec::new();
    for (what, log) in &configs {
        let n = allocations_per_1000_requests(log);
        println!("allocations on the reactor thread for 2000 keep-alive requests (half of them small POSTs) with {what}: {n}");
        if n != 0 {
            failed.push(format!("{what}: {n}"));
        }
    }
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let (common_lines, json_lines) = (lines(&common), lines(&json));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        (common_lines, json_lines),
        (2400, 2400),
        "one line per request"
    );
    assert!(
        failed.is_empty(),
        "steady-state requests allocated on the reactor thread: {failed:?}"
    );
}
