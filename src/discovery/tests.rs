//! Discovery without sockets: scripted answers, explicit `now`s.

use super::*;
use crate::config::parse;
use protocol::dns::{read_name, write_response, Header, Question, Record, CLASS_IN};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

fn setup(servers: &str) -> (Discovery, Instant) {
    let text = format!("[http]\n{servers}\n[resolver]\nnameservers = 127.0.0.1:53\n");
    let cfg = parse(&text, "t.ini", &|_, _| Err("no".into())).unwrap();
    let now = Instant::now();
    let mut d = Discovery::new(&cfg.resolver, ResolvConf::default(), 1);
    d.set_templates([&cfg.http, &cfg.websocket], now);
    (d, now)
}

/// Answers every pending query from `zone` (name -> data), like a DNS server would.
fn answer_all(d: &mut Discovery, zone: &[(&str, Vec<RData>)], now: Instant) -> usize {
    asked(d, zone, now).len()
}

/// [`answer_all`], returning the types asked in order.
fn asked(d: &mut Discovery, zone: &[(&str, Vec<RData>)], now: Instant) -> Vec<RecordType> {
    let mut types = Vec::new();
    while let Some(t) = d.poll_transmit(now) {
        let id = u16::from_be_bytes([t.bytes[0], t.bytes[1]]);
        let (name, end) = read_name(&t.bytes, 12).unwrap();
        let qtype = RecordType::from_u16(u16::from_be_bytes([t.bytes[end], t.bytes[end + 1]]));
        types.push(qtype);
        let shown = name.to_string();
        let data = zone
            .iter()
            .find(|z| z.0 == shown.trim_end_matches('.'))
            .map(|z| z.1.clone())
            .unwrap_or_default();
        let header = Header {
            id,
            qr: true,
            rd: true,
            ra: true,
            ..Header::default()
        };
        let q = Question {
            name: name.clone(),
            qtype,
            qclass: CLASS_IN,
        };
        let records: Vec<Record> = data
            .into_iter()
            .map(|r| Record::new(name.clone(), 30, r))
            .collect();
        let mut out = Vec::new();
        write_response(&header, Some(&q), &records, &[], &[], &mut out).unwrap();
        assert!(d.handle_udp(t.to, &out, now));
    }
    types
}

fn a(last: u8) -> RData {
    RData::A(Ipv4Addr::new(192, 0, 2, last))
}

fn names(d: &Discovery) -> Vec<(String, String, u32)> {
    d.expand(0)
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.addr.to_string(), s.weight))
        .collect()
}

#[test]
fn first_all_and_static_servers_expand() {
    let (mut d, t0) = setup("server1 = web.test:80\nserver2 = web.test:81\nserver2_resolve = all\nserver3 = 10.0.0.1:82");
    assert_eq!(d.init_state(), InitState::Waiting);
    assert_eq!(names(&d), [("server3".into(), "10.0.0.1:82".into(), 1)]);
    let zone = [("web.test", vec![a(9), a(2), a(5)])];
    assert_eq!(
        answer_all(&mut d, &zone, t0),
        1,
        "one query for a name used twice"
    );
    assert!(d.process_events(t0));
    assert_eq!(d.init_state(), InitState::Done);
    let expected: Vec<(String, String, u32)> = vec![
        ("server1".into(), "192.0.2.2:80".into(), 1),
        ("server2#192.0.2.2".into(), "192.0.2.2:81".into(), 1),
        ("server2#192.0.2.5".into(), "192.0.2.5:81".into(), 1),
        ("server2#192.0.2.9".into(), "192.0.2.9:81".into(), 1),
        ("server3".into(), "10.0.0.1:82".into(), 1),
    ];
    assert_eq!(names(&d), expected);
    assert_eq!(d.stats().queries, 1);
    assert_eq!(d.stats().changes, 1);
    // The same set in another order is no change; the next query waits for the TTL.
    assert_eq!(answer_all(&mut d, &zone, t0 + Duration::from_secs(1)), 0);
    let t1 = t0 + Duration::from_secs(30);
    answer_all(&mut d, &[("web.test", vec![a(5), a(9), a(2)])], t1);
    assert!(!d.process_events(t1));
}

#[test]
fn srv_takes_the_lowest_priority_with_weights_and_target_addresses() {
    let (mut d, t0) = setup("server1_srv = _http._tcp.web.test");
    let srv = |priority, weight, port, target: &str| RData::Srv {
        priority,
        weight,
        port,
        target: Name::from_dotted(target).unwrap(),
    };
    let zone = [
        (
            "_http._tcp.web.test",
            vec![
                srv(1, 5, 9000, "b.test"),
                srv(0, 0, 8080, "a.test"),
                srv(0, 3000, 8081, "a.test"),
            ],
        ),
        ("a.test", vec![a(1)]),
        ("b.test", vec![a(2)]),
    ];
    answer_all(&mut d, &zone, t0);
    assert!(d.process_events(t0));
    assert_eq!(
        d.init_state(),
        InitState::Waiting,
        "the targets are not resolved yet"
    );
    assert_eq!(
        answer_all(&mut d, &zone, t0),
        2,
        "each target name once (priority 1 kept in view)"
    );
    assert!(d.process_events(t0));
    assert_eq!(d.init_state(), InitState::Done);
    let expected: Vec<(String, String, u32)> = vec![
        ("server1#192.0.2.1:8080".into(), "192.0.2.1:8080".into(), 1),
        (
            "server1#192.0.2.1:8081".into(),
            "192.0.2.1:8081".into(),
            1000,
        ),
    ];
    assert_eq!(names(&d), expected);
}

#[test]
fn a_name_that_does_not_exist_fails_start_naming_the_key() {
    let (mut d, t0) = setup("server4_addr = nowhere.test:80");
    answer_all(&mut d, &[], t0);
    d.process_events(t0);
    assert_eq!(
        d.init_state(),
        InitState::Failed(
            "[http] server4_addr (nowhere.test:80): cannot resolve nowhere.test: no such name"
                .into()
        )
    );
    assert_eq!(d.stats().failures, 1);
    assert!(names(&d).is_empty());
}

#[test]
fn search_list_candidates_are_tried_in_order() {
    let text = "[http]\nserver1 = web:80\n[resolver]\nnameservers = 127.0.0.1:53\n";
    let cfg = parse(text, "t.ini", &|_, _| Err("no".into())).unwrap();
    let conf = crate::resolv_conf::parse_resolv_conf(
        "search ns.svc.cluster.local svc.cluster.local\noptions ndots:5\n",
    );
    let now = Instant::now();
    let mut d = Discovery::new(&cfg.resolver, conf, 1);
    d.set_templates([&cfg.http, &cfg.websocket], now);
    let zone = [("web.svc.cluster.local", vec![a(7)])];
    answer_all(&mut d, &zone, now);
    d.process_events(now);
    answer_all(&mut d, &zone, now);
    assert!(d.process_events(now));
    assert_eq!(names(&d), [("server1".into(), "192.0.2.7:80".into(), 1)]);
    // The first candidate: A, then AAAA (v4_preferred after NODATA); the second: A.
    assert_eq!(d.stats().queries, 3);
    assert_eq!(
        d.stats().failures,
        0,
        "a candidate's NXDOMAIN is not a failure"
    );
}

fn aaaa(last: u16) -> RData {
    RData::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

fn setup_with(servers: &str, resolver: &str) -> (Discovery, Instant, config::Config) {
    let text = format!("[http]\n{servers}\n[resolver]\nnameservers = 127.0.0.1:53\n{resolver}\n");
    let cfg = parse(&text, "t.ini", &|_, _| Err("no".into())).unwrap();
    let now = Instant::now();
    let mut d = Discovery::new(&cfg.resolver, ResolvConf::default(), 1);
    d.set_templates([&cfg.http, &cfg.websocket], now);
    (d, now, cfg)
}

#[test]
fn ipv6_servers_are_bracketed_and_first_prefers_ipv4() {
    let (mut d, t0, _) = setup_with(
        "server1 = web.test:80\nserver2 = web.test:81\nserver2_resolve = all",
        "family = all",
    );
    let zone = [("web.test", vec![aaaa(2), a(9), aaaa(1)])];
    assert_eq!(answer_all(&mut d, &zone, t0), 2, "A and AAAA");
    assert!(d.process_events(t0));
    let s = |n: &str, a: &str| (n.to_string(), a.to_string(), 1);
    assert_eq!(
        names(&d),
        [
            s("server1", "192.0.2.9:80"),
            s("server2#192.0.2.9", "192.0.2.9:81"),
            s("server2#[2001:db8::1]", "[2001:db8::1]:81"),
            s("server2#[2001:db8::2]", "[2001:db8::2]:81"),
        ]
    );
    // No IPv4 address left: `first` takes the lowest IPv6 one.
    let t1 = t0 + Duration::from_secs(30);
    answer_all(&mut d, &[("web.test", vec![aaaa(2), aaaa(1)])], t1);
    assert!(d.process_events(t1));
    assert_eq!(names(&d)[0], s("server1", "[2001:db8::1]:80"));
}

#[test]
fn srv_targets_follow_the_family() {
    let (mut d, t0, _) = setup_with("server1_srv = _http._tcp.web.test", "family = v6_only");
    let target = RData::Srv {
        priority: 0,
        weight: 1,
        port: 8080,
        target: Name::from_dotted("b.test").unwrap(),
    };
    let zone = [
        ("_http._tcp.web.test", vec![target]),
        ("b.test", vec![a(1), aaaa(1)]),
    ];
    assert_eq!(asked(&mut d, &zone, t0), [RecordType::Srv]);
    d.process_events(t0);
    assert_eq!(
        asked(&mut d, &zone, t0),
        [RecordType::Aaaa],
        "v6_only: no A query"
    );
    d.process_events(t0);
    let one = (
        "server1#[2001:db8::1]:8080".to_string(),
        "[2001:db8::1]:8080".to_string(),
        1,
    );
    assert_eq!(names(&d), [one]);
}

#[test]
fn a_reload_unwatches_removed_names_and_keeps_the_others() {
    let (mut d, t0, _) = setup_with("server1 = one.test:80\nserver2 = two.test:80", "");
    let zone = [("one.test", vec![a(1)]), ("two.test", vec![a(2)])];
    assert_eq!(answer_all(&mut d, &zone, t0), 2);
    d.process_events(t0);
    let text = "[http]\nserver1 = one.test:80\n[resolver]\nnameservers = 127.0.0.1:53\n";
    let cfg = parse(text, "t.ini", &|_, _| Err("no".into())).unwrap();
    let t1 = t0 + Duration::from_secs(1);
    d.set_templates([&cfg.http, &cfg.websocket], t1);
    assert!(!d.watching(1), "two.test is no longer watched");
    assert!(d.watching(0));
    assert_eq!(answer_all(&mut d, &zone, t1), 0, "one.test keeps its timer");
    assert_eq!(d.next_deadline(), Some(t0 + Duration::from_secs(30)));
    let t2 = t0 + Duration::from_secs(30);
    assert_eq!(answer_all(&mut d, &zone, t2), 1, "only one.test");
    assert_eq!(names(&d), [("server1".into(), "192.0.2.1:80".into(), 1)]);
}

#[test]
fn followers_send_nothing_and_expand_from_what_the_leader_published() {
    let servers = "server1 = web.test:80\nserver1_resolve = all\nserver2 = 10.0.0.1:82";
    let (mut leader, t0) = setup(servers);
    let (mut follower, _) = setup(servers);
    let feed = leader.lead();
    follower.follow(feed);
    assert!(!follower.is_empty(), "it still has names to wait for");
    assert!(
        follower.poll_transmit(t0).is_none(),
        "a follower never queries"
    );
    assert_eq!(follower.next_deadline(), None);
    assert_eq!(follower.init_state(), InitState::Waiting);
    assert!(!follower.sync(), "nothing new yet");
    assert!(!leader.publish(false), "nothing changed, nothing published");

    answer_all(&mut leader, &[("web.test", vec![a(7), a(3)])], t0);
    assert!(leader.process_events(t0));
    assert!(leader.publish(true));
    assert_eq!(follower.init_state(), InitState::Done);
    assert!(follower.sync());
    assert!(!follower.sync(), "one publication is taken once");
    assert_eq!(names(&follower), names(&leader));
    assert_eq!(names(&follower).len(), 3);

    // A follower's reload keeps the mirrored data and asks nothing.
    let cfg = parse(
        &format!("[http]\n{servers}\nserver3 = web.test:83\n"),
        "t.ini",
        &|_, _| Err("no".into()),
    )
    .unwrap();
    follower.set_templates([&cfg.http, &cfg.websocket], t0);
    assert!(follower.poll_transmit(t0).is_none());
    assert_eq!(names(&follower).len(), 4);
    assert_eq!(follower.stats().queries, 0);
}
