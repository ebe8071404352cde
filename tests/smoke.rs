mod util;
use util::*;

#[test]
fn round_robin_spreads_and_reuses_connections() {
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let p = Proxy::start(
        "[http]\nalgorithm=round-robin\nserver1_addr={b0}\nserver2_addr={b1}\n",
        &[a.addr, b.addr],
    );
    let mut c = Client::connect(p.addr);
    let bodies: Vec<String> = (0..6).map(|_| c.get("/").text()).collect();
    assert_eq!(
        bodies,
        [
            "hello from a",
            "hello from b",
            "hello from a",
            "hello from b",
            "hello from a",
            "hello from b"
        ]
    );
    // One pooled connection per server carried everything (min_workers = 1).
    assert_eq!(a.accepted(), 1);
    assert_eq!(b.accepted(), 1);
}
