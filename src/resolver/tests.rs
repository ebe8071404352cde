//! Scripted tests for the resolver: explicit `now`s and answers built with
//! `protocol::dns::write_response`.

use super::*;
use protocol::dns::{write_response, Header, Question, Record, CLASS_IN};
use std::net::Ipv4Addr;

const NS0: &str = "127.0.0.1:5300";
const NS1: &str = "127.0.0.2:5300";

fn config() -> ResolverConfig {
    ResolverConfig {
        nameservers: vec![NS0.parse().unwrap(), NS1.parse().unwrap()],
        timeout: Duration::from_secs(2),
        attempts: 2,
        min_ttl: Duration::from_secs(1),
        max_ttl: Duration::from_secs(300),
        hold_nx: Duration::from_secs(30),
    }
}

fn name() -> Name {
    Name::from_dotted("web.test").unwrap()
}

fn a(last: u8) -> RData {
    RData::A(Ipv4Addr::new(10, 0, 0, last))
}

/// An answer to the query in `t`: `rcode`, TC, A records with `ttl`.
fn answer(t: &Transmit, rcode: u8, tc: bool, ttl: u32, data: &[RData]) -> Vec<u8> {
    let query = match t.via {
        Via::Udp => &t.bytes[..],
        Via::Tcp => &t.bytes[2..],
    };
    let header = Header {
        id: u16::from_be_bytes([query[0], query[1]]),
        qr: true,
        rd: true,
        ra: true,
        tc,
        rcode,
        ..Header::default()
    };
    let q = Question {
        name: name(),
        qtype: RecordType::A,
        qclass: CLASS_IN,
    };
    let records: Vec<Record> = data
        .iter()
        .map(|d| Record::new(name(), ttl, d.clone()))
        .collect();
    let mut out = Vec::new();
    write_response(&header, Some(&q), &records, &[], &[], &mut out).unwrap();
    out
}

fn setup() -> (Resolver, Instant) {
    let now = Instant::now();
    let mut r = Resolver::new(config(), 7);
    assert_eq!(r.watch(name(), RecordType::A, now), 0);
    (r, now)
}

fn events(r: &mut Resolver) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

#[test]
fn answer_sets_data_and_ttl_refresh() {
    let (mut r, t0) = setup();
    let t = r.poll_transmit(t0).unwrap();
    assert_eq!((t.to, t.via), (NS0.parse().unwrap(), Via::Udp));
    assert!(r.poll_transmit(t0).is_none(), "one query at a time");
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(2)));
    assert!(r.handle_udp(t.to, &answer(&t, rcode::NOERROR, false, 60, &[a(1)]), t0));
    assert_eq!(
        events(&mut r),
        [Event::Changed {
            watch: 0,
            data: vec![a(1)]
        }]
    );
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(60)));
    // Same data again after the TTL: no event; TTL 0 clamps to min_ttl.
    let t1 = t0 + Duration::from_secs(60);
    assert!(r.poll_transmit(t1 - Duration::from_millis(1)).is_none());
    let t = r.poll_transmit(t1).unwrap();
    assert!(r.handle_udp(t.to, &answer(&t, rcode::NOERROR, false, 0, &[a(1)]), t1));
    assert!(events(&mut r).is_empty());
    assert_eq!(r.next_deadline(), Some(t1 + Duration::from_secs(1)));
    // A huge TTL clamps to max_ttl; new data report Changed.
    let t2 = t1 + Duration::from_secs(1);
    let t = r.poll_transmit(t2).unwrap();
    assert!(r.handle_udp(t.to, &answer(&t, 0, false, 1_000_000, &[a(2), a(3)]), t2));
    assert_eq!(
        events(&mut r),
        [Event::Changed {
            watch: 0,
            data: vec![a(2), a(3)]
        }]
    );
    assert_eq!(r.next_deadline(), Some(t2 + Duration::from_secs(300)));
}

#[test]
fn spoofed_answers_are_ignored() {
    let (mut r, t0) = setup();
    let t = r.poll_transmit(t0).unwrap();
    let good = answer(&t, rcode::NOERROR, false, 60, &[a(1)]);
    let mut wrong_id = good.clone();
    wrong_id[1] ^= 1;
    assert!(!r.handle_udp(t.to, &wrong_id, t0));
    assert!(
        !r.handle_udp(NS1.parse().unwrap(), &good, t0),
        "wrong source"
    );
    assert!(
        !r.handle_udp("127.0.0.1:5301".parse().unwrap(), &good, t0),
        "wrong port"
    );
    assert!(!r.handle_tcp(t.to, &good, t0), "wrong transport");
    let mut wrong_q = good.clone();
    wrong_q[13] = b'x'; // "web" -> "xeb"
    assert!(!r.handle_udp(t.to, &wrong_q, t0));
    assert!(events(&mut r).is_empty());
    assert!(r.handle_udp(t.to, &good, t0));
    assert_eq!(events(&mut r).len(), 1);
    assert!(!r.handle_udp(t.to, &good, t0), "a replay after the answer");
}

#[test]
fn truncated_falls_back_to_tcp() {
    let (mut r, t0) = setup();
    let t = r.poll_transmit(t0).unwrap();
    assert!(r.handle_udp(t.to, &answer(&t, rcode::NOERROR, true, 60, &[]), t0));
    let tcp = r.poll_transmit(t0).unwrap();
    assert_eq!((tcp.to, tcp.via), (t.to, Via::Tcp));
    let len = usize::from(u16::from_be_bytes([tcp.bytes[0], tcp.bytes[1]]));
    assert_eq!(len, tcp.bytes.len() - 2);
    let reply = answer(&tcp, rcode::NOERROR, false, 60, &[a(1), a(2)]);
    assert!(!r.handle_udp(t.to, &reply, t0), "the TCP try ignores UDP");
    assert!(r.handle_tcp(t.to, &reply, t0));
    assert_eq!(
        events(&mut r),
        [Event::Changed {
            watch: 0,
            data: vec![a(1), a(2)]
        }]
    );
}

#[test]
fn timeouts_rotate_servers_then_keep_last_and_retry() {
    let (mut r, t0) = setup();
    let t = r.poll_transmit(t0).unwrap();
    assert!(r.handle_udp(t.to, &answer(&t, 0, false, 5, &[a(1)]), t0));
    events(&mut r);
    let mut now = t0 + Duration::from_secs(5);
    let mut order = Vec::new();
    for _ in 0..4 {
        let t = r.poll_transmit(now).unwrap();
        order.push(t.to);
        now = r.next_deadline().unwrap();
        r.on_timeout(now);
    }
    let (ns0, ns1) = (NS0.parse().unwrap(), NS1.parse().unwrap());
    assert_eq!(order, [ns0, ns1, ns0, ns1], "2 servers x 2 attempts");
    assert_eq!(
        events(&mut r),
        [Event::Failed {
            watch: 0,
            failure: Failure::Unreachable,
            kept: true
        }]
    );
    assert_eq!(r.current(0), Some(&[a(1)][..]));
    // Retry every min_ttl; a second failed streak does not report again.
    assert_eq!(r.next_deadline(), Some(now + Duration::from_secs(1)));
    now += Duration::from_secs(1);
    for _ in 0..4 {
        assert!(r.poll_transmit(now).is_some());
        now = r.next_deadline().unwrap();
        r.on_timeout(now);
    }
    assert!(events(&mut r).is_empty());
    // Recovery resets the streak.
    now += Duration::from_secs(1);
    let t = r.poll_transmit(now).unwrap();
    assert!(r.handle_udp(t.to, &answer(&t, 0, false, 5, &[a(1)]), now));
    assert!(events(&mut r).is_empty(), "same data: no change");
    // A new streak after recovery is reported again.
    now += Duration::from_secs(5);
    for _ in 0..4 {
        assert!(r.poll_transmit(now).is_some());
        now = r.next_deadline().unwrap();
        r.on_timeout(now);
    }
    assert_eq!(events(&mut r).len(), 1);
}

#[test]
fn servfail_moves_to_the_next_server_at_once() {
    let (mut r, t0) = setup();
    let t = r.poll_transmit(t0).unwrap();
    assert!(r.handle_udp(t.to, &answer(&t, rcode::SERVFAIL, false, 0, &[]), t0));
    let t = r.poll_transmit(t0).unwrap();
    assert_eq!(t.to, NS1.parse().unwrap());
    assert!(events(&mut r).is_empty());
}

#[test]
fn nxdomain_is_held_before_removal() {
    let (mut r, t0) = setup();
    let t = r.poll_transmit(t0).unwrap();
    assert!(r.handle_udp(t.to, &answer(&t, 0, false, 1, &[a(1)]), t0));
    events(&mut r);
    let mut now = t0 + Duration::from_secs(1);
    let start = now;
    let mut seen = Vec::new();
    while now <= start + Duration::from_secs(30) {
        let t = r.poll_transmit(now).unwrap();
        assert!(r.handle_udp(t.to, &answer(&t, rcode::NXDOMAIN, false, 0, &[]), now));
        seen.extend(events(&mut r));
        if now < start + Duration::from_secs(30) {
            assert_eq!(r.current(0), Some(&[a(1)][..]), "held at {:?}", now - start);
        }
        now = r.next_deadline().unwrap();
    }
    assert_eq!(
        seen,
        [
            Event::Failed {
                watch: 0,
                failure: Failure::NoSuchName,
                kept: true
            },
            Event::Changed {
                watch: 0,
                data: vec![]
            },
        ]
    );
    assert_eq!(r.current(0), None);
}
