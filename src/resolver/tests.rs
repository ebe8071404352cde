//! Scripted tests for the resolver: explicit `now`s and answers built with
//! `protocol::dns::write_response`.

use super::*;
use protocol::dns::{write_response, Header, Question, Record, CLASS_IN};
use std::net::{Ipv4Addr, Ipv6Addr};

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
        family: Family::V4Preferred,
    }
}

fn name() -> Name {
    Name::from_dotted("web.test").unwrap()
}

fn a(last: u8) -> RData {
    RData::A(Ipv4Addr::new(10, 0, 0, last))
}

fn aaaa(last: u16) -> RData {
    RData::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

/// The type a transmitted query asks.
fn qtype(t: &Transmit) -> RecordType {
    let query = match t.via {
        Via::Udp => &t.bytes[..],
        Via::Tcp => &t.bytes[2..],
    };
    let at = 12 + name().wire().len();
    RecordType::from_u16(u16::from_be_bytes([query[at], query[at + 1]]))
}

/// An answer to the query in `t`: `rcode`, TC, records with `ttl`.
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
        qtype: qtype(t),
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

fn with_family(family: Family) -> (Resolver, Instant) {
    let now = Instant::now();
    let mut r = Resolver::new(ResolverConfig { family, ..config() }, 7);
    assert_eq!(r.watch(name(), RecordType::A, now), 0);
    (r, now)
}

/// Answers the query due at `now` (asserting its type) and returns the events.
#[track_caller]
fn reply(
    r: &mut Resolver,
    now: Instant,
    asked: RecordType,
    rc: u8,
    ttl: u32,
    data: &[RData],
) -> Vec<Event> {
    let t = r.poll_transmit(now).expect("a query");
    assert_eq!(qtype(&t), asked);
    assert!(r.handle_udp(t.to, &answer(&t, rc, false, ttl, data), now));
    events(r)
}

fn changed(data: Vec<RData>) -> Event {
    Event::Changed { watch: 0, data }
}

#[test]
fn v4_preferred_asks_aaaa_only_after_an_empty_a_answer() {
    use RecordType::{Aaaa, A};
    let (mut r, t0) = with_family(Family::V4Preferred);
    assert_eq!(reply(&mut r, t0, A, 0, 60, &[a(1)]), [changed(vec![a(1)])]);
    assert!(r.poll_transmit(t0).is_none(), "one query per name per TTL");
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(60)));
    // NODATA for A: AAAA is asked; its TTL is the one used.
    let t1 = t0 + Duration::from_secs(60);
    assert!(reply(&mut r, t1, A, 0, 60, &[]).is_empty());
    assert_eq!(
        reply(&mut r, t1, Aaaa, 0, 20, &[aaaa(1)]),
        [changed(vec![aaaa(1)])]
    );
    assert_eq!(r.next_deadline(), Some(t1 + Duration::from_secs(20)));
    // A records again: the AAAA data are dropped, no AAAA query.
    let t2 = t1 + Duration::from_secs(20);
    assert_eq!(reply(&mut r, t2, A, 0, 60, &[a(2)]), [changed(vec![a(2)])]);
    assert!(r.poll_transmit(t2).is_none());
}

#[test]
fn only_families_ask_one_type() {
    use RecordType::{Aaaa, A};
    let (mut r, t0) = with_family(Family::V4Only);
    let ev = reply(&mut r, t0, A, 0, 60, &[]);
    assert!(r.poll_transmit(t0).is_none(), "v4_only never asks AAAA");
    let nx = Event::Failed {
        watch: 0,
        failure: Failure::NoSuchName,
        kept: false,
    };
    assert_eq!(ev, std::slice::from_ref(&nx));
    let (mut r, t0) = with_family(Family::V6Only);
    assert_eq!(reply(&mut r, t0, Aaaa, 0, 60, &[]), [nx]);
    assert!(r.poll_transmit(t0).is_none(), "v6_only never asks A");
    let (mut r, t0) = with_family(Family::V6Preferred);
    assert!(reply(&mut r, t0, Aaaa, 0, 60, &[]).is_empty());
    assert_eq!(reply(&mut r, t0, A, 0, 60, &[a(1)]), [changed(vec![a(1)])]);
}

#[test]
fn all_uses_the_union_and_the_shortest_ttl() {
    use RecordType::{Aaaa, A};
    let (mut r, t0) = with_family(Family::All);
    assert!(
        reply(&mut r, t0, A, 0, 60, &[a(1)]).is_empty(),
        "waits for AAAA"
    );
    let ev = reply(&mut r, t0, Aaaa, 0, 10, &[aaaa(1)]);
    assert_eq!(ev, [changed(vec![a(1), aaaa(1)])]);
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(10)));
    // NXDOMAIN is the name's: no AAAA query after it.
    let t1 = t0 + Duration::from_secs(10);
    let ev = reply(&mut r, t1, A, rcode::NXDOMAIN, 0, &[]);
    assert_eq!(
        ev,
        [Event::Failed {
            watch: 0,
            failure: Failure::NoSuchName,
            kept: true
        }]
    );
    assert!(r.poll_transmit(t1).is_none());
    assert_eq!(r.current(0), Some(&[a(1), aaaa(1)][..]), "held for hold_nx");
}

#[test]
fn all_keeps_the_last_good_data_of_a_failed_type() {
    use RecordType::{Aaaa, A};
    let (mut r, t0) = with_family(Family::All);
    reply(&mut r, t0, A, 0, 10, &[a(1)]);
    reply(&mut r, t0, Aaaa, 0, 10, &[aaaa(1)]);
    // A answers new data, AAAA gets SERVFAIL from every server: old AAAA data kept.
    let mut now = t0 + Duration::from_secs(10);
    assert!(reply(&mut r, now, A, 0, 10, &[a(2)]).is_empty());
    let mut ev = Vec::new();
    for _ in 0..4 {
        ev.extend(reply(&mut r, now, Aaaa, rcode::SERVFAIL, 0, &[]));
    }
    let failed = Event::Failed {
        watch: 0,
        failure: Failure::Unreachable,
        kept: true,
    };
    assert_eq!(ev, [changed(vec![a(2), aaaa(1)]), failed]);
    assert_eq!(
        r.next_deadline(),
        Some(now + Duration::from_secs(1)),
        "retried at min_ttl"
    );
    // A times out everywhere but AAAA answers: the A data are kept.
    now += Duration::from_secs(1);
    for _ in 0..4 {
        let t = r.poll_transmit(now).unwrap();
        assert_eq!(qtype(&t), A);
        now = r.next_deadline().unwrap();
        r.on_timeout(now);
    }
    assert_eq!(
        reply(&mut r, now, Aaaa, 0, 10, &[aaaa(2)]),
        [changed(vec![a(2), aaaa(2)])]
    );
    // Both answer: the streak ends, the TTL is used again.
    now += Duration::from_secs(1);
    reply(&mut r, now, A, 0, 10, &[a(2)]);
    assert!(reply(&mut r, now, Aaaa, 0, 30, &[aaaa(2)]).is_empty());
    assert_eq!(r.next_deadline(), Some(now + Duration::from_secs(10)));
}

#[test]
fn round_rules() {
    use Outcome::{Data, Failed, NoData, NxDomain};
    use RecordType::{Aaaa, Srv, A};
    let d = |t| Data(vec![a(1)], t);
    let steps = [
        (Family::V4Preferred, vec![], Some(A)),
        (Family::V4Preferred, vec![(A, d(5))], None),
        (Family::V4Preferred, vec![(A, NoData)], Some(Aaaa)),
        (Family::V4Preferred, vec![(A, Failed)], None),
        (Family::V4Preferred, vec![(A, NxDomain)], None),
        (Family::V4Preferred, vec![(A, NoData), (Aaaa, NoData)], None),
        (Family::V6Preferred, vec![], Some(Aaaa)),
        (Family::V6Preferred, vec![(Aaaa, NoData)], Some(A)),
        (Family::All, vec![(A, Failed)], Some(Aaaa)),
        (Family::All, vec![(A, NxDomain)], None),
        (Family::V4Only, vec![(A, NoData)], None),
        (Family::V6Only, vec![], Some(Aaaa)),
    ];
    for (family, done, want) in steps {
        assert_eq!(
            next_step(family, A, &done),
            want,
            "{family:?} after {done:?}"
        );
    }
    assert_eq!(
        next_step(Family::All, Srv, &[]),
        Some(Srv),
        "SRV ignores the family"
    );
    assert_eq!(next_step(Family::All, Srv, &[(Srv, NoData)]), None);
    let kept = [Some(vec![a(9)]), Some(vec![aaaa(9)])];
    assert_eq!(
        conclude(&[(A, Failed), (Aaaa, Failed)], &kept),
        Conclusion::Unreachable
    );
    assert_eq!(
        conclude(&[(A, NoData), (Aaaa, NoData)], &kept),
        Conclusion::NoSuchName
    );
    assert_eq!(
        conclude(&[(A, d(5)), (Aaaa, NxDomain)], &kept),
        Conclusion::NoSuchName
    );
    assert_eq!(
        conclude(&[(A, NoData), (Aaaa, Failed)], &[None, None]),
        Conclusion::Unreachable
    );
    assert_eq!(
        conclude(&[(A, d(5)), (Aaaa, Data(vec![aaaa(1)], 3))], &kept),
        Conclusion::Answer {
            by_type: [Some(vec![a(1)]), Some(vec![aaaa(1)])],
            ttl: Some(3),
            partial: false
        }
    );
    assert_eq!(
        conclude(&[(A, NoData), (Aaaa, Failed)], &kept),
        Conclusion::Answer {
            by_type: [None, Some(vec![aaaa(9)])],
            ttl: None,
            partial: true
        }
    );
}

#[test]
fn reconfigure_restarts_queries_in_flight_on_new_nameservers() {
    let (mut r, t0) = setup();
    let t = r.poll_transmit(t0).unwrap();
    assert!(r.handle_udp(t.to, &answer(&t, 0, false, 60, &[a(1)]), t0));
    events(&mut r);
    let t1 = t0 + Duration::from_secs(60);
    let old = r.poll_transmit(t1).unwrap();
    let ns2: SocketAddr = "127.0.0.3:5300".parse().unwrap();
    let cfg = ResolverConfig {
        nameservers: vec![ns2],
        max_ttl: Duration::from_secs(5),
        ..config()
    };
    r.reconfigure(cfg, t1);
    let new = r.poll_transmit(t1).expect("restarted at once");
    assert_eq!(new.to, ns2);
    let late = answer(&old, 0, false, 60, &[a(7)]);
    assert!(
        !r.handle_udp(old.to, &late, t1),
        "the old server's answer is ignored"
    );
    assert!(r.handle_udp(ns2, &answer(&new, 0, false, 60, &[a(2)]), t1));
    assert_eq!(events(&mut r), [changed(vec![a(2)])]);
    assert_eq!(
        r.next_deadline(),
        Some(t1 + Duration::from_secs(5)),
        "new max_ttl"
    );
}

#[test]
fn reconfigure_keeps_timers_unless_the_family_changed() {
    let (mut r, t0) = setup();
    let t = r.poll_transmit(t0).unwrap();
    assert!(r.handle_udp(t.to, &answer(&t, 0, false, 60, &[a(1)]), t0));
    events(&mut r);
    r.reconfigure(
        ResolverConfig {
            hold_nx: Duration::from_secs(1),
            ..config()
        },
        t0,
    );
    assert!(r.poll_transmit(t0).is_none(), "no query at once");
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(60)));
    r.reconfigure(
        ResolverConfig {
            family: Family::V6Only,
            ..config()
        },
        t0,
    );
    let t = r.poll_transmit(t0).expect("re-asked at once");
    assert_eq!(qtype(&t), RecordType::Aaaa);
}

#[test]
fn unwatched_names_are_not_queried() {
    let (mut r, t0) = setup();
    let t = r.poll_transmit(t0).unwrap();
    r.unwatch(0);
    assert!(!r.watching(0));
    assert!(!r.handle_udp(t.to, &answer(&t, 0, false, 60, &[a(1)]), t0));
    assert!(events(&mut r).is_empty());
    assert_eq!(r.next_deadline(), None);
    assert!(r.poll_transmit(t0 + Duration::from_secs(600)).is_none());
    assert_eq!(r.watch(name(), RecordType::A, t0), 0, "the slot is reused");
    assert!(r.poll_transmit(t0).is_some());
}
