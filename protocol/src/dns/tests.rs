//! Table tests for `protocol::dns`. The wire-format answers below were produced
//! once with dnspython 2.9 (an independent implementation): `make_query` /
//! `make_response` with the records named in each comment, `to_wire()`, and for
//! TRUNCATED a `dns.renderer.Renderer(max_size=512)` that could not fit 60 A
//! records and set TC. The hex is pasted as produced.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

// www.example.com A, id 0x1234, RA: www CNAME web.example.com (300),
// web CNAME lb.example.net (60), lb.example.net A 192.0.2.10, .11 (30).
// Compressed owner names and a compressed CNAME target.
const CNAME_CHAIN_A: &str = concat!(
    "12348180000100040000000003777777076578616d706c6503636f6d00000100",
    "01c00c000500010000012c000603776562c010c02d000500010000003c001002",
    "6c62076578616d706c65036e657400c03f000100010000001e0004c000020ac0",
    "3f000100010000001e0004c000020b",
);
// v6.example.org AAAA, id 0xbeef: 2001:db8::1 and ::2 (120).
const AAAA: &str = concat!(
    "beef81000001000200000000027636076578616d706c65036f726700001c0001",
    "c00c001c000100000078001020010db8000000000000000000000002c00c001c",
    "000100000078001020010db8000000000000000000000001",
);
// _http._tcp.svc.cluster.local SRV, id 7: 0 10 8080 a.svc.cluster.local,
// 0 30 8081 b.svc.cluster.local (5); additional a.svc.cluster.local A 10.1.2.3
// whose owner is a label plus a pointer into the question.
const SRV: &str = concat!(
    "000781000001000200000001055f68747470045f7463700373766307636c7573",
    "746572056c6f63616c0000210001c00c0021000100000005001b0000000a1f90",
    "01610373766307636c7573746572056c6f63616c00c00c002100010000000500",
    "1b0000001e1f9101620373766307636c7573746572056c6f63616c000161c017",
    "000100010000000500040a010203",
);
// nope.example.com A, id 0x4242, NXDOMAIN, authority example.com SOA (900).
const NXDOMAIN: &str = concat!(
    "424281030001000000010000046e6f7065076578616d706c6503636f6d000001",
    "0001c01100060001000003840020026e73c01104686f7374c011000000010000",
    "1c2000000e100012750000000384",
);
// big.example.com A, id 0x0101: 60 A records do not fit 512 bytes; TC set,
// question only.
const TRUNCATED: &str = concat!(
    "01018300000100000000000003626967076578616d706c6503636f6d00000100",
    "01",
);
// dnspython queries with flags = RD, to compare with build_query.
const QUERY_A: &str = concat!(
    "12340100000100000000000003777777076578616d706c6503636f6d00000100",
    "01",
);
// QUERY_A with QTYPE 28 (AAAA, RFC 3596 §2.1).
const QUERY_AAAA: &str = concat!(
    "12340100000100000000000003777777076578616d706c6503636f6d00001c00",
    "01",
);
const QUERY_SRV: &str = concat!(
    "000701000001000000000000055f68747470045f7463700373766307636c7573",
    "746572056c6f63616c0000210001",
);

pub(super) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(super) fn name(s: &str) -> Name {
    Name::from_dotted(s).unwrap()
}

pub(super) fn parse_hex(s: &str) -> Message {
    parse_response(&hex(s)).unwrap()
}

/// Checks that `bytes` fails to parse with `err`.
macro_rules! rejects {
    ($($case:ident: $bytes:expr => $err:expr;)*) => {$(
        #[test]
        fn $case() {
            assert_eq!(parse_response(&$bytes), Err($err));
        }
    )*};
}

#[test]
fn queries_match_dnspython() {
    let mut out = Vec::new();
    build_query(0x1234, &name("www.example.com"), RecordType::A, &mut out);
    assert_eq!(out, hex(QUERY_A));
    build_query(0x1234, &name("www.example.com"), RecordType::Aaaa, &mut out);
    assert_eq!(out, hex(QUERY_AAAA));
    build_query(
        7,
        &name("_http._tcp.svc.cluster.local."),
        RecordType::Srv,
        &mut out,
    );
    assert_eq!(out, hex(QUERY_SRV));
}

#[test]
fn cname_chain_to_a() {
    let m = parse_hex(CNAME_CHAIN_A);
    assert_eq!(m.header.id, 0x1234);
    assert!(m.header.qr && m.header.rd && m.header.ra && !m.header.tc);
    assert_eq!(m.header.rcode, rcode::NOERROR);
    let q = m.question.as_ref().unwrap();
    assert_eq!(q.name, name("WWW.Example.COM"));
    assert_eq!((q.qtype, q.qclass), (RecordType::A, CLASS_IN));
    assert_eq!(m.answers.len(), 4);
    assert_eq!(m.answers[0].data, RData::Cname(name("web.example.com")));
    assert_eq!(m.answers[0].ttl, 300);
    assert_eq!(m.answers[1].data, RData::Cname(name("lb.example.net")));
    assert_eq!(m.consumed, hex(CNAME_CHAIN_A).len());
    let r = resolve(&m, &name("www.example.com"), RecordType::A);
    assert_eq!(r.canonical, name("lb.example.net"));
    let mut addrs = r.data.clone();
    addrs.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(
        addrs,
        [
            RData::A(Ipv4Addr::new(192, 0, 2, 10)),
            RData::A(Ipv4Addr::new(192, 0, 2, 11))
        ]
    );
    assert_eq!(r.ttl, Some(30));
}

#[test]
fn aaaa_answers() {
    let m = parse_hex(AAAA);
    assert_eq!(m.header.id, 0xbeef);
    let r = resolve(&m, &name("v6.example.org"), RecordType::Aaaa);
    assert_eq!(r.data.len(), 2);
    assert!(r
        .data
        .contains(&RData::Aaaa("2001:db8::1".parse::<Ipv6Addr>().unwrap())));
    assert!(r
        .data
        .contains(&RData::Aaaa("2001:db8::2".parse::<Ipv6Addr>().unwrap())));
    assert_eq!(r.ttl, Some(120));
    // Asking for A in the same answer is NODATA.
    let none = resolve(&m, &name("v6.example.org"), RecordType::A);
    assert_eq!((none.data.len(), none.ttl), (0, None));
}

#[test]
fn srv_answers_and_additional() {
    let m = parse_hex(SRV);
    let r = resolve(&m, &name("_http._tcp.svc.cluster.local"), RecordType::Srv);
    assert_eq!(r.ttl, Some(5));
    assert!(r.data.contains(&RData::Srv {
        priority: 0,
        weight: 10,
        port: 8080,
        target: name("a.svc.cluster.local"),
    }));
    assert!(r.data.contains(&RData::Srv {
        priority: 0,
        weight: 30,
        port: 8081,
        target: name("b.svc.cluster.local"),
    }));
    assert_eq!(m.additional.len(), 1);
    let extra = &m.additional[0];
    assert_eq!(extra.name, name("a.svc.cluster.local"));
    assert_eq!(extra.name_span.len(), 4, "one label then a pointer");
    assert_eq!(extra.data, RData::A(Ipv4Addr::new(10, 1, 2, 3)));
}

#[test]
fn nxdomain_with_soa() {
    let m = parse_hex(NXDOMAIN);
    assert_eq!(m.header.rcode, rcode::NXDOMAIN);
    assert!(m.answers.is_empty());
    assert_eq!(m.authority.len(), 1);
    assert_eq!(m.authority[0].rtype, RecordType::Other(6));
    assert_eq!(m.authority[0].name, name("example.com"));
    assert_eq!(m.authority[0].ttl, 900);
}

#[test]
fn truncated_keeps_header_and_question() {
    let m = parse_hex(TRUNCATED);
    assert!(m.header.tc);
    assert_eq!(m.question.unwrap().name, name("big.example.com"));
    assert!(m.answers.is_empty());
    // A TC message cut inside a record is still readable up to the cut.
    let mut cut = hex(CNAME_CHAIN_A);
    cut[2] |= 0x02;
    cut.truncate(cut.len() - 3);
    let m = parse_response(&cut).unwrap();
    assert!(m.header.tc);
    assert_eq!(m.answers.len(), 3);
    assert_eq!(m.consumed, cut.len());
}

#[test]
fn spans_point_into_the_message() {
    for fixture in [CNAME_CHAIN_A, AAAA, SRV, NXDOMAIN] {
        let wire = hex(fixture);
        let m = parse_response(&wire).unwrap();
        for r in m.answers.iter().chain(&m.authority).chain(&m.additional) {
            assert!(r.name_span.end as usize <= r.rdata_span.start as usize);
            assert!(r.rdata_span.end as usize <= wire.len());
            let (n, end) = read_name(&wire, r.name_span.start as usize).unwrap();
            assert_eq!((n, end), (r.name.clone(), r.name_span.end as usize));
            if let RData::A(ip) = r.data {
                assert_eq!(r.rdata_span.get(&wire), ip.octets());
            }
        }
    }
}

#[test]
fn every_prefix_is_short() {
    for fixture in [CNAME_CHAIN_A, AAAA, SRV, NXDOMAIN, TRUNCATED] {
        let wire = hex(fixture);
        for n in 0..wire.len() {
            // TRUNCATED is complete in its question; cutting before it ends
            // with TC set still yields a readable header.
            let got = parse_response(&wire[..n]);
            if fixture == TRUNCATED && n >= HEADER_LEN {
                assert!(got.unwrap().question.is_none(), "prefix {n}");
            } else {
                assert_eq!(got, Err(DnsError::Short), "prefix {n} of {fixture}");
            }
        }
    }
}

#[test]
fn reencoded_answers_parse_the_same() {
    for fixture in [CNAME_CHAIN_A, AAAA, SRV, NXDOMAIN, TRUNCATED] {
        let m = parse_hex(fixture);
        let mut out = Vec::new();
        write_response(
            &m.header,
            m.question.as_ref(),
            &m.answers,
            &m.authority,
            &m.additional,
            &mut out,
        )
        .unwrap();
        let back = parse_response(&out).unwrap();
        assert_eq!(back.header, m.header);
        assert_eq!(back.question, m.question);
        let strip = |rs: &[Record]| -> Vec<_> {
            rs.iter()
                .map(|r| (r.name.clone(), r.rtype, r.class, r.ttl, r.data.clone()))
                .collect()
        };
        assert_eq!(strip(&back.answers), strip(&m.answers));
        assert_eq!(strip(&back.authority), strip(&m.authority));
        assert_eq!(strip(&back.additional), strip(&m.additional));
    }
}

#[test]
fn ttl_is_smallest_along_the_chain() {
    let q = Question {
        name: name("a.test"),
        qtype: RecordType::A,
        qclass: CLASS_IN,
    };
    let answers = [
        Record::new(name("a.test"), 20, RData::Cname(name("b.test"))),
        Record::new(name("b.test"), 100, RData::A(Ipv4Addr::new(10, 0, 0, 1))),
        // An A record for a name off the chain is ignored.
        Record::new(name("c.test"), 1, RData::A(Ipv4Addr::new(10, 0, 0, 9))),
    ];
    let header = Header {
        id: 1,
        qr: true,
        ..Header::default()
    };
    let mut out = Vec::new();
    write_response(&header, Some(&q), &answers, &[], &[], &mut out).unwrap();
    let m = parse_response(&out).unwrap();
    let r = resolve(&m, &name("A.TEST"), RecordType::A);
    assert_eq!(r.data, [RData::A(Ipv4Addr::new(10, 0, 0, 1))]);
    assert_eq!(r.ttl, Some(20));
}

#[test]
fn cname_loop_ends() {
    let m = Message {
        header: Header::default(),
        question: None,
        answers: vec![
            Record::new(name("x.test"), 5, RData::Cname(name("y.test"))),
            Record::new(name("y.test"), 7, RData::Cname(name("x.test"))),
        ],
        authority: vec![],
        additional: vec![],
        consumed: 0,
    };
    let r = resolve(&m, &name("x.test"), RecordType::A);
    assert!(r.data.is_empty());
    assert_eq!(r.ttl, Some(5));
}

#[test]
fn names() {
    assert_eq!(name("www.Example.com.").to_string(), "www.Example.com");
    assert_eq!(Name::root().to_string(), ".");
    assert_eq!(name(".").wire(), [0]);
    assert_eq!(name("a.b.c").label_count(), 3);
    assert_eq!(
        name("web").join(&name("ns.svc")).unwrap(),
        name("web.ns.svc")
    );
    assert_eq!(Name::from_dotted("a..b"), Err(DnsError::BadLabelLength));
    assert_eq!(
        Name::from_dotted(&"x".repeat(64)),
        Err(DnsError::BadLabelLength)
    );
    assert!(Name::from_dotted(&"x".repeat(63)).is_ok());
    // 4 labels of 63 + 4 length octets + root = 257 > 255.
    let long = vec!["y".repeat(63); 4].join(".");
    assert_eq!(Name::from_dotted(&long), Err(DnsError::NameTooLong));
    let ok = [
        "y".repeat(63),
        "y".repeat(63),
        "y".repeat(63),
        "y".repeat(61),
    ]
    .join(".");
    assert_eq!(Name::from_dotted(&ok).unwrap().wire().len(), 255);
    let odd = Name::from_labels([&b"a.b"[..], b"\x01"]).unwrap();
    assert_eq!(odd.to_string(), "a\\046b.\\001");
}

/// A response header (id 1, QR, no question) with the given counts, then `rest`.
fn msg(an: u16, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0x80, 0, 0, 0, 0, an as u8, 0, 0, 0, 0];
    m.extend_from_slice(rest);
    m
}

/// One A record whose owner name is `owner` (in place bytes).
fn a_record(owner: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 10, 0, 0, 1]);
    r
}

rejects! {
    empty: [] => DnsError::Short;
    query_not_response: hex(QUERY_A) => DnsError::NotResponse;
    two_questions: {
        let mut m = hex(TRUNCATED);
        m[5] = 2;
        m
    } => DnsError::QuestionCount;
    pointer_to_itself: msg(1, &a_record(&[0xc0, 12])) => DnsError::BadPointer;
    pointer_forward: msg(1, &a_record(&[0xc0, 14, 0])) => DnsError::BadPointer;
    // A label at 12 then a pointer back to 12: the run that holds the
    // pointer starts at 12, so it is not strictly before it (a loop).
    pointer_into_own_run: msg(1, &a_record(&[1, b'a', 0xc0, 12])) => DnsError::BadPointer;
    // Two pointers that point at each other.
    pointer_pair_loop: {
        let mut m = msg(2, &a_record(&[0xc0, 28]));
        m.extend_from_slice(&a_record(&[0xc0, 12]));
        m
    } => DnsError::BadPointer;
    pointer_past_end: msg(1, &[0xc0]) => DnsError::Short;
    reserved_label_bits_01: msg(1, &a_record(&[0x41, b'a', 0])) => DnsError::BadLabel;
    reserved_label_bits_10: msg(1, &a_record(&[0x81, b'a', 0])) => DnsError::BadLabel;
    label_past_end: msg(1, &[5, b'a', b'b']) => DnsError::Short;
    a_with_five_bytes: msg(1, &[0, 0, 1, 0, 1, 0, 0, 0, 9, 0, 5, 1, 2, 3, 4, 5]) => DnsError::BadRdata;
    aaaa_with_four_bytes: msg(1, &[0, 0, 28, 0, 1, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4]) => DnsError::BadRdata;
    rdata_past_end: msg(1, &[0, 0, 1, 0, 1, 0, 0, 0, 9, 0, 9, 1, 2, 3, 4]) => DnsError::Short;
    // CNAME RDLENGTH 3 but the name inside is 4 bytes long.
    cname_overruns_rdata: msg(1, &[0, 0, 5, 0, 1, 0, 0, 0, 9, 0, 3, 2, b'a', b'b', 0]) => DnsError::BadRdata;
    // CNAME RDLENGTH 4 but the name ends after 3.
    cname_short_of_rdata: msg(1, &[0, 0, 5, 0, 1, 0, 0, 0, 9, 0, 4, 1, b'a', 0, 0]) => DnsError::BadRdata;
    srv_too_short: msg(1, &[0, 0, 33, 0, 1, 0, 0, 0, 9, 0, 6, 0, 0, 0, 0, 0, 80]) => DnsError::BadRdata;
    trailing_bytes: {
        let mut m = hex(AAAA);
        m.push(0);
        m
    } => DnsError::TrailingBytes;
    name_too_long_through_pointers: {
        // Five records, each a 62-byte label then a pointer to the previous
        // owner: the fifth name is 5 * 63 + 1 bytes.
        let mut m = msg(5, &[]);
        let mut prev: Option<usize> = None;
        for _ in 0..5 {
            let at = m.len();
            let mut owner = vec![62];
            owner.extend_from_slice(&[b'z'; 62]);
            match prev {
                Some(p) => owner.extend_from_slice(&[0xc0 | (p >> 8) as u8, p as u8]),
                None => owner.push(0),
            }
            m.extend_from_slice(&a_record(&owner));
            prev = Some(at);
        }
        m
    } => DnsError::NameTooLong;
}

#[test]
fn tcp_framing_at_every_split() {
    let mut stream = Vec::new();
    tcp_frame(&hex(AAAA), &mut stream).unwrap();
    tcp_frame(&hex(SRV), &mut stream).unwrap();
    for n in 0..stream.len() {
        let got = tcp_unframe(&stream[..n]);
        if n < 2 + hex(AAAA).len() {
            assert_eq!(got, Status::Partial, "split {n}");
        } else {
            assert_eq!(got, Status::Complete(Span::new(2, 2 + hex(AAAA).len())));
        }
    }
    let Status::Complete(first) = tcp_unframe(&stream) else {
        panic!("whole stream");
    };
    assert_eq!(parse_response(first.get(&stream)).unwrap(), parse_hex(AAAA));
    let rest = &stream[first.end as usize..];
    let Status::Complete(second) = tcp_unframe(rest) else {
        panic!("second");
    };
    assert_eq!(second.get(rest), hex(SRV));
    assert_eq!(
        tcp_frame(&vec![0; 65536], &mut Vec::new()),
        Err(DnsError::TooLarge)
    );
}

#[test]
fn question_echo_must_match() {
    let m = parse_hex(CNAME_CHAIN_A);
    assert!(m.answers_query(0x1234, &name("www.EXAMPLE.com"), RecordType::A));
    assert!(!m.answers_query(0x1235, &name("www.example.com"), RecordType::A));
    assert!(!m.answers_query(0x1234, &name("ww.example.com"), RecordType::A));
    assert!(!m.answers_query(0x1234, &name("www.example.com"), RecordType::Aaaa));
}

#[test]
fn header_only_for_id_matching() {
    let h = parse_header(&hex(NXDOMAIN)).unwrap();
    assert_eq!((h.id, h.rcode, h.qr), (0x4242, rcode::NXDOMAIN, true));
    assert_eq!(parse_header(&[1, 2, 3]), Err(DnsError::Short));
}
