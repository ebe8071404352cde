//! Table tests from answers captured from real DNS servers on loopback. Each
//! query was built as `build_query` builds it (RD only, one question, no EDNS,
//! a fixed id) and sent to 127.0.0.1; the hex is the bytes received, unedited.
//! Each `_READS` text is what the codec must read in it: header, question,
//! records as `SECTION owner TTL TYPE data` (owner as written), and `resolve`.
//!
//! BIND 9.18.49-1~deb12u3-Debian, authoritative (recursion no, minimal-responses
//! no), UDP unless noted, for this zone (a Kubernetes-style cluster domain):
//!
//! ```text
//! $ORIGIN cluster.local.    $TTL 30
//! @ 3600 SOA ns.dns hostmaster 2024010101 7200 1800 86400 30
//! @ 3600 NS ns.dns                 ns.dns A 10.96.0.10
//! web.default.svc 30 A 10.244.1.11, 10.244.2.12, 10.244.3.13
//! v6.default.svc 30 AAAA fd00:10:244:1::11, fd00:10:244:2::12
//! alias.default.svc 300 CNAME web.default.svc
//! www.default.svc 7 CNAME alias.default.svc
//! _http._tcp.web.default.svc 30 SRV 0 10 8080 web-0.web.default.svc
//! _http._tcp.web.default.svc 30 SRV 0 90 8080 web-1.web.default.svc
//! web-0.web.default.svc 30 A 10.244.1.11   web-1.web.default.svc 30 A 10.244.2.12
//! big.default.svc 30 A 10.245.0.1 ... 10.245.0.60 (60 records)
//! ```
//!
//! BIND shuffles an RRset's records per answer: the orders below are the
//! captured ones. dnsmasq 2.90, UDP, no upstream: `no-resolv`, `no-hosts`,
//! `local=/internal/`, `host-record=api.internal,10.0.0.5,fd00::5`,
//! `host-record=db.internal,10.0.0.6`,
//! `srv-host=_http._tcp.api.internal,api.internal,8080,1,50`,
//! `srv-host=_http._tcp.api.internal,db.internal,8081,2,10`.

use super::tests::{hex, name, parse_hex};
use super::*;

// BIND: web.default.svc.cluster.local A, id 0x5001: the headless Service's
// three A records; authority the zone's NS (RDATA uncompressed), additional its A.
const BIND_A: &str = concat!(
    "500185000001000300010001037765620764656661756c740373766307636c75",
    "73746572056c6f63616c0000010001c00c000100010000001e00040af4020cc0",
    "0c000100010000001e00040af4010bc00c000100010000001e00040af4030d07",
    "636c7573746572056c6f63616c000002000100000e100016026e7303646e7307",
    "636c7573746572056c6f63616c00c078000100010000001e00040a60000a",
);
const BIND_A_READS: &str = "id 0x5001 opcode 0 rcode 0 qr aa rd
    QD web.default.svc.cluster.local A class 1
    AN web.default.svc.cluster.local 30 A 10.244.2.12
    AN web.default.svc.cluster.local 30 A 10.244.1.11
    AN web.default.svc.cluster.local 30 A 10.244.3.13
    NS cluster.local 3600 TYPE2 (22 bytes)
    AR ns.dns.cluster.local 30 A 10.96.0.10
    resolve web.default.svc.cluster.local A -> web.default.svc.cluster.local Some(30): \
        10.244.2.12, 10.244.1.11, 10.244.3.13
    resolve web.default.svc.cluster.local AAAA -> web.default.svc.cluster.local None:";
// V6.Default.SVC.cluster.local AAAA (asked in mixed case), id 0x5002: the
// question comes back as asked, the owners in the zone's case, the first in
// place and the second a pointer to it.
const BIND_AAAA: &str = concat!(
    "5002850000010002000100010256360744656661756c740353564307636c7573",
    "746572056c6f63616c00001c00010276360764656661756c740373766307636c",
    "7573746572056c6f63616c00001c00010000001e0010fd000010024400020000",
    "000000000012c02e001c00010000001e0010fd00001002440001000000000000",
    "001107636c7573746572056c6f63616c000002000100000e100016026e730364",
    "6e7307636c7573746572056c6f63616c00c09b000100010000001e00040a6000",
    "0a",
);
const BIND_AAAA_READS: &str = "id 0x5002 opcode 0 rcode 0 qr aa rd
    QD V6.Default.SVC.cluster.local AAAA class 1
    AN v6.default.svc.cluster.local 30 AAAA fd00:10:244:2::12
    AN v6.default.svc.cluster.local 30 AAAA fd00:10:244:1::11
    NS cluster.local 3600 TYPE2 (22 bytes)
    AR ns.dns.cluster.local 30 A 10.96.0.10
    resolve V6.Default.SVC.cluster.local AAAA -> V6.Default.SVC.cluster.local Some(30): \
        fd00:10:244:2::12, fd00:10:244:1::11
    resolve v6.default.svc.cluster.local A -> v6.default.svc.cluster.local None:";
// www.default.svc.cluster.local A, id 0x5003: a two-hop CNAME chain, then A.
// `resolve` keeps the smallest TTL along the chain (7 from www, 30 from
// alias); asking for the CNAME stops at the first hop; no AAAA at the end of
// the chain is NODATA for web, with the hops' TTL.
const BIND_CNAME2: &str = concat!(
    "500385000001000500010001037777770764656661756c740373766307636c75",
    "73746572056c6f63616c0000010001c00c0005000100000007000805616c6961",
    "73c010c03b000500010000012c000603776562c010c04f000100010000001e00",
    "040af4020cc04f000100010000001e00040af4010bc04f000100010000001e00",
    "040af4030d07636c7573746572056c6f63616c000002000100000e100016026e",
    "7303646e7307636c7573746572056c6f63616c00c09e000100010000001e0004",
    "0a60000a",
);
const BIND_CNAME2_READS: &str = "id 0x5003 opcode 0 rcode 0 qr aa rd
    QD www.default.svc.cluster.local A class 1
    AN www.default.svc.cluster.local 7 CNAME alias.default.svc.cluster.local
    AN alias.default.svc.cluster.local 300 CNAME web.default.svc.cluster.local
    AN web.default.svc.cluster.local 30 A 10.244.2.12
    AN web.default.svc.cluster.local 30 A 10.244.1.11
    AN web.default.svc.cluster.local 30 A 10.244.3.13
    NS cluster.local 3600 TYPE2 (22 bytes)
    AR ns.dns.cluster.local 30 A 10.96.0.10
    resolve www.default.svc.cluster.local A -> web.default.svc.cluster.local Some(7): \
        10.244.2.12, 10.244.1.11, 10.244.3.13
    resolve alias.default.svc.cluster.local A -> web.default.svc.cluster.local Some(30): \
        10.244.2.12, 10.244.1.11, 10.244.3.13
    resolve www.default.svc.cluster.local CNAME -> www.default.svc.cluster.local Some(7): \
        alias.default.svc.cluster.local
    resolve www.default.svc.cluster.local AAAA -> web.default.svc.cluster.local Some(7):";
// _http._tcp.web.default.svc.cluster.local SRV, id 0x5004: two targets of
// weights 90 and 10 (written uncompressed); additional web-0's A, whose owner
// is a pointer into the second SRV's RDATA, web-1's A and ns.dns's A.
const BIND_SRV: &str = concat!(
    "500485000001000200010003055f68747470045f746370037765620764656661",
    "756c740373766307636c7573746572056c6f63616c0000210001c00c00210001",
    "0000001e002b0000005a1f90057765622d31037765620764656661756c740373",
    "766307636c7573746572056c6f63616c00c00c002100010000001e002b000000",
    "0a1f90057765622d30037765620764656661756c740373766307636c75737465",
    "72056c6f63616c0007636c7573746572056c6f63616c000002000100000e1000",
    "16026e7303646e7307636c7573746572056c6f63616c00c08300010001000000",
    "1e00040af4010bc04c000100010000001e00040af4020cc0c100010001000000",
    "1e00040a60000a",
);
const BIND_SRV_READS: &str = "id 0x5004 opcode 0 rcode 0 qr aa rd
    QD _http._tcp.web.default.svc.cluster.local SRV class 1
    AN _http._tcp.web.default.svc.cluster.local 30 SRV 0 90 8080 \
        web-1.web.default.svc.cluster.local
    AN _http._tcp.web.default.svc.cluster.local 30 SRV 0 10 8080 \
        web-0.web.default.svc.cluster.local
    NS cluster.local 3600 TYPE2 (22 bytes)
    AR web-0.web.default.svc.cluster.local 30 A 10.244.1.11
    AR web-1.web.default.svc.cluster.local 30 A 10.244.2.12
    AR ns.dns.cluster.local 30 A 10.96.0.10
    resolve _http._tcp.web.default.svc.cluster.local SRV -> \
        _http._tcp.web.default.svc.cluster.local Some(30): \
        0 90 8080 web-1.web.default.svc.cluster.local, \
        0 10 8080 web-0.web.default.svc.cluster.local";
// big.default.svc.cluster.local A, id 0x5005, UDP: TC set, ANCOUNT 29 (the
// whole records that fit in 512 bytes), nothing else.
const BIND_BIG_UDP: &str = concat!(
    "500587000001001d00000000036269670764656661756c740373766307636c75",
    "73746572056c6f63616c0000010001c00c000100010000001e00040af50011c0",
    "0c000100010000001e00040af5001bc00c000100010000001e00040af50003c0",
    "0c000100010000001e00040af50035c00c000100010000001e00040af50029c0",
    "0c000100010000001e00040af5002fc00c000100010000001e00040af50005c0",
    "0c000100010000001e00040af50023c00c000100010000001e00040af50021c0",
    "0c000100010000001e00040af5000bc00c000100010000001e00040af50002c0",
    "0c000100010000001e00040af50037c00c000100010000001e00040af50001c0",
    "0c000100010000001e00040af50027c00c000100010000001e00040af5001dc0",
    "0c000100010000001e00040af50020c00c000100010000001e00040af50019c0",
    "0c000100010000001e00040af5003cc00c000100010000001e00040af50007c0",
    "0c000100010000001e00040af5000dc00c000100010000001e00040af50039c0",
    "0c000100010000001e00040af5003bc00c000100010000001e00040af50004c0",
    "0c000100010000001e00040af50036c00c000100010000001e00040af50013c0",
    "0c000100010000001e00040af5000ac00c000100010000001e00040af5002dc0",
    "0c000100010000001e00040af50006c00c000100010000001e00040af50031",
);
// The same query over TCP, as read from the socket (2-byte length prefix
// included): all 60 A records, the NS and its A.
const BIND_BIG_TCP: &str = concat!(
    "042e500585000001003c00010001036269670764656661756c74037376630763",
    "6c7573746572056c6f63616c0000010001c00c000100010000001e00040af500",
    "1ec00c000100010000001e00040af50001c00c000100010000001e00040af500",
    "3ac00c000100010000001e00040af50015c00c000100010000001e00040af500",
    "1ac00c000100010000001e00040af5002dc00c000100010000001e00040af500",
    "2ac00c000100010000001e00040af50024c00c000100010000001e00040af500",
    "0ac00c000100010000001e00040af50033c00c000100010000001e00040af500",
    "32c00c000100010000001e00040af5000cc00c000100010000001e00040af500",
    "07c00c000100010000001e00040af50010c00c000100010000001e00040af500",
    "03c00c000100010000001e00040af5003cc00c000100010000001e00040af500",
    "22c00c000100010000001e00040af50025c00c000100010000001e00040af500",
    "36c00c000100010000001e00040af50006c00c000100010000001e00040af500",
    "0bc00c000100010000001e00040af50008c00c000100010000001e00040af500",
    "28c00c000100010000001e00040af50002c00c000100010000001e00040af500",
    "0dc00c000100010000001e00040af50017c00c000100010000001e00040af500",
    "11c00c000100010000001e00040af50014c00c000100010000001e00040af500",
    "19c00c000100010000001e00040af50013c00c000100010000001e00040af500",
    "0ec00c000100010000001e00040af5000fc00c000100010000001e00040af500",
    "18c00c000100010000001e00040af5001dc00c000100010000001e00040af500",
    "16c00c000100010000001e00040af50004c00c000100010000001e00040af500",
    "1bc00c000100010000001e00040af50020c00c000100010000001e00040af500",
    "38c00c000100010000001e00040af50021c00c000100010000001e00040af500",
    "23c00c000100010000001e00040af5003bc00c000100010000001e00040af500",
    "1fc00c000100010000001e00040af50009c00c000100010000001e00040af500",
    "26c00c000100010000001e00040af5002bc00c000100010000001e00040af500",
    "05c00c000100010000001e00040af50031c00c000100010000001e00040af500",
    "2fc00c000100010000001e00040af50027c00c000100010000001e00040af500",
    "2ec00c000100010000001e00040af5002cc00c000100010000001e00040af500",
    "1cc00c000100010000001e00040af50030c00c000100010000001e00040af500",
    "34c00c000100010000001e00040af50037c00c000100010000001e00040af500",
    "35c00c000100010000001e00040af50029c00c000100010000001e00040af500",
    "39c00c000100010000001e00040af5001207636c7573746572056c6f63616c00",
    "0002000100000e100016026e7303646e7307636c7573746572056c6f63616c00",
    "c408000100010000001e00040a60000a",
);
// missing.default.svc.cluster.local A, id 0x5006: NXDOMAIN; authority the
// zone's SOA with its MINIMUM (30) as TTL, not its own 3600 (RFC 2308 §3).
const BIND_NX: &str = concat!(
    "500685030001000000010000076d697373696e670764656661756c7403737663",
    "07636c7573746572056c6f63616c000001000107636c7573746572056c6f6361",
    "6c00000600010000001e0037026e7303646e7307636c7573746572056c6f6361",
    "6c000a686f73746d6173746572c03378a3f17500001c20000007080001518000",
    "00001e",
);
const BIND_NX_READS: &str = "id 0x5006 opcode 0 rcode 3 qr aa rd
    QD missing.default.svc.cluster.local A class 1
    NS cluster.local 30 TYPE6 (55 bytes)
    resolve missing.default.svc.cluster.local A -> missing.default.svc.cluster.local None:";
// dnsmasq (DM_): api.internal A, id 0x6001, TTL 0 (its default local-ttl).
const DM_A: &str = concat!(
    "6001858000010001000000000361706908696e7465726e616c0000010001c00c",
    "000100010000000000040a000005",
);
const DM_A_READS: &str = "id 0x6001 opcode 0 rcode 0 qr aa rd ra
    QD api.internal A class 1
    AN api.internal 0 A 10.0.0.5
    resolve api.internal A -> api.internal Some(0): 10.0.0.5";
// api.internal AAAA, id 0x6002.
const DM_AAAA: &str = concat!(
    "6002858000010001000000000361706908696e7465726e616c00001c0001c00c",
    "001c0001000000000010fd000000000000000000000000000005",
);
const DM_AAAA_READS: &str = "id 0x6002 opcode 0 rcode 0 qr aa rd ra
    QD api.internal AAAA class 1
    AN api.internal 0 AAAA fd00::5
    resolve api.internal AAAA -> api.internal Some(0): fd00::5";
// _http._tcp.api.internal SRV, id 0x6003: targets' addresses in additional.
const DM_SRV: &str = concat!(
    "600385800001000200000003055f68747470045f7463700361706908696e7465",
    "726e616c0000210001c00c002100010000000000130002000a1f910264620869",
    "6e7465726e616c00c00c00210001000000000014000100321f90036170690869",
    "6e7465726e616c00c05a000100010000000000040a000005c05a001c00010000",
    "00000010fd000000000000000000000000000005c03b00010001000000000004",
    "0a000006",
);
const DM_SRV_READS: &str = "id 0x6003 opcode 0 rcode 0 qr aa rd ra
    QD _http._tcp.api.internal SRV class 1
    AN _http._tcp.api.internal 0 SRV 2 10 8081 db.internal
    AN _http._tcp.api.internal 0 SRV 1 50 8080 api.internal
    AR api.internal 0 A 10.0.0.5
    AR api.internal 0 AAAA fd00::5
    AR db.internal 0 A 10.0.0.6
    resolve _http._tcp.api.internal SRV -> _http._tcp.api.internal Some(0): \
        2 10 8081 db.internal, 1 50 8080 api.internal";
// missing.internal A, id 0x6004: NXDOMAIN, not authoritative, no SOA.
const DM_NX: &str = concat!(
    "600481830001000000000000076d697373696e6708696e7465726e616c000001",
    "0001",
);
const DM_NX_READS: &str = "id 0x6004 opcode 0 rcode 3 qr rd ra
    QD missing.internal A class 1
    resolve missing.internal A -> missing.internal None:";
// db.internal AAAA, id 0x6005: NOERROR and no records (NODATA), no SOA.
const DM_NODATA: &str = "60058180000100000000000002646208696e7465726e616c00001c0001";
const DM_NODATA_READS: &str = "id 0x6005 opcode 0 rcode 0 qr rd ra
    QD db.internal AAAA class 1
    resolve db.internal AAAA -> db.internal None:";

fn header_line(h: &Header) -> String {
    let set = [h.qr, h.aa, h.tc, h.rd, h.ra].into_iter();
    let flags: String = set
        .zip([" qr", " aa", " tc", " rd", " ra"])
        .filter(|f| f.0)
        .map(|f| f.1)
        .collect();
    let (id, op, rc) = (h.id, h.opcode, h.rcode);
    format!("id {id:#06x} opcode {op} rcode {rc}{flags}")
}

fn type_name(t: RecordType) -> String {
    match t {
        RecordType::A => "A".into(),
        RecordType::Aaaa => "AAAA".into(),
        RecordType::Cname => "CNAME".into(),
        RecordType::Srv => "SRV".into(),
        RecordType::Other(n) => format!("TYPE{n}"),
    }
}

/// Presentation form of decoded RDATA; other types by their length.
fn show(d: &RData) -> String {
    match d {
        RData::A(ip) => ip.to_string(),
        RData::Aaaa(ip) => ip.to_string(),
        RData::Cname(n) => n.to_string(),
        RData::Srv {
            priority: p,
            weight: w,
            port,
            target: t,
        } => format!("{p} {w} {port} {t}"),
        RData::Other(raw) => format!("({} bytes)", raw.len()),
    }
}

/// What `m` reads as in the `_READS` form, with a `resolve` line for each
/// one in `want`.
fn reads(m: &Message, want: &[&str]) -> Vec<String> {
    let mut got = vec![header_line(&m.header)];
    if let Some(q) = &m.question {
        let (qn, qt, qc) = (&q.name, type_name(q.qtype), q.qclass);
        got.push(format!("QD {qn} {qt} class {qc}"));
    }
    let sections = [&m.answers, &m.authority, &m.additional];
    for (section, rs) in ["AN", "NS", "AR"].into_iter().zip(sections) {
        for r in rs {
            assert_eq!(r.class, CLASS_IN);
            let (ttl, t, d) = (r.ttl, type_name(r.rtype), show(&r.data));
            got.push(format!("{section} {} {ttl} {t} {d}", r.name));
        }
    }
    for line in want.iter().filter_map(|l| l.strip_prefix("resolve ")) {
        let (qname, t) = line.split_once(" -> ").unwrap().0.split_once(' ').unwrap();
        let qtype = (1..=33)
            .map(RecordType::from_u16)
            .find(|q| type_name(*q) == t);
        let qtype = qtype.unwrap();
        let r = resolve(m, &name(qname), qtype);
        let data: Vec<String> = r.data.iter().map(show).collect();
        let (to, ttl, data) = (r.canonical, r.ttl, data.join(", "));
        let line = format!("resolve {qname} {t} -> {to} {ttl:?}: {data}");
        got.push(line.trim_end().into());
    }
    got
}

#[test]
fn captures_read_as_the_servers_wrote_them() {
    let table = [
        (BIND_A, BIND_A_READS),
        (BIND_AAAA, BIND_AAAA_READS),
        (BIND_CNAME2, BIND_CNAME2_READS),
        (BIND_SRV, BIND_SRV_READS),
        (BIND_NX, BIND_NX_READS),
        (DM_A, DM_A_READS),
        (DM_AAAA, DM_AAAA_READS),
        (DM_SRV, DM_SRV_READS),
        (DM_NX, DM_NX_READS),
        (DM_NODATA, DM_NODATA_READS),
    ];
    for (wire, want) in table {
        let want: Vec<&str> = want
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(reads(&parse_hex(wire), &want), want);
    }
}

#[test]
fn owners_pointers_and_raw_rdata_as_written() {
    // The AAAA owners: the first in place (30 bytes), the second a pointer;
    // the answer matches its query in any case, and only its id and type.
    let m = parse_hex(BIND_AAAA);
    let (first, second) = (m.answers[0].name_span, m.answers[1].name_span);
    assert_eq!((first.len(), second.len()), (30, 2));
    for asked in [
        "V6.Default.SVC.cluster.local",
        "v6.default.svc.cluster.local",
    ] {
        assert!(m.answers_query(0x5002, &name(asked), RecordType::Aaaa));
        assert!(!m.answers_query(0x5003, &name(asked), RecordType::Aaaa));
        assert!(!m.answers_query(0x5002, &name(asked), RecordType::A));
    }
    // web-0's owner is a pointer to the target inside the second SRV's RDATA,
    // and the NS RDATA is a whole uncompressed name.
    let wire = hex(BIND_SRV);
    let m = parse_response(&wire).unwrap();
    assert_eq!(m.additional[0].name_span.get(&wire), [0xc0, 0x83]);
    assert_eq!(m.answers[1].rdata_span.start + 6, 0x83);
    let ns = name("ns.dns.cluster.local").wire().to_vec();
    assert_eq!(m.authority[0].data, RData::Other(ns));
    // The NXDOMAIN's SOA: MNAME in place, RNAME "hostmaster" then a pointer
    // to the SOA's owner, then SERIAL REFRESH RETRY EXPIRE MINIMUM.
    let m = parse_hex(BIND_NX);
    assert_eq!(
        (m.header.rcode, m.authority[0].rtype),
        (rcode::NXDOMAIN, RecordType::Other(6))
    );
    let RData::Other(raw) = &m.authority[0].data else {
        panic!("{:?}", m.authority[0]);
    };
    assert_eq!(raw[..22], *name("ns.dns.cluster.local").wire());
    assert_eq!(raw[22..35], *b"\x0ahostmaster\xc0\x33");
    assert_eq!(m.authority[0].name_span.start, 0x33);
    let field = |c: &[u8]| u32::from_be_bytes(c.try_into().unwrap());
    let fields: Vec<u32> = raw[35..].chunks(4).map(field).collect();
    assert_eq!(fields, [2024010101, 7200, 1800, 86400, 30]);
}

#[test]
fn bind_truncated_udp_then_tcp() {
    let big = name("big.default.svc.cluster.local");
    let wire = hex(BIND_BIG_UDP);
    let udp = parse_response(&wire).unwrap();
    assert_eq!(
        header_line(&udp.header),
        "id 0x5005 opcode 0 rcode 0 qr aa tc rd"
    );
    assert!(udp.answers_query(0x5005, &big, RecordType::A));
    // The 29 whole records that fit in 512 bytes, and ANCOUNT says 29.
    assert_eq!((wire.len(), udp.consumed, wire[7]), (511, 511, 29));
    assert!(udp.authority.is_empty() && udp.additional.is_empty());
    let host = |r: &Record| match r.data {
        RData::A(ip) if r.name == big && r.ttl == 30 && ip.octets()[..3] == [10, 245, 0] => {
            ip.octets()[3]
        }
        _ => panic!("{r:?}"),
    };
    let udp_hosts: Vec<u8> = udp.answers.iter().map(host).collect();
    assert_eq!(udp_hosts.len(), 29);

    let framed = hex(BIND_BIG_TCP);
    assert_eq!(tcp_unframe(&framed[..1071]), Status::Partial);
    assert_eq!(tcp_unframe(&framed), Status::Complete(Span::new(2, 1072)));
    let tcp = parse_response(&framed[2..]).unwrap();
    assert_eq!(
        header_line(&tcp.header),
        "id 0x5005 opcode 0 rcode 0 qr aa rd"
    );
    assert!(tcp.answers_query(0x5005, &big, RecordType::A));
    assert_eq!(
        (tcp.consumed, tcp.authority.len(), tcp.additional.len()),
        (1070, 1, 1)
    );
    let mut hosts: Vec<u8> = tcp.answers.iter().map(host).collect();
    assert!(udp_hosts.iter().all(|h| hosts.contains(h)));
    hosts.sort();
    assert_eq!(hosts, (1..=60).collect::<Vec<u8>>());
    let r = resolve(&tcp, &big, RecordType::A);
    assert_eq!((r.canonical, r.data.len(), r.ttl), (big, 60, Some(30)));
}

const ALL: [&str; 12] = [
    BIND_A,
    BIND_AAAA,
    BIND_CNAME2,
    BIND_SRV,
    BIND_BIG_UDP,
    BIND_BIG_TCP,
    BIND_NX,
    DM_A,
    DM_AAAA,
    DM_SRV,
    DM_NX,
    DM_NODATA,
];

#[test]
fn every_capture_echoes_the_query_and_parses_whole() {
    let mut query = Vec::new();
    for fixture in ALL {
        let framed = hex(fixture);
        let wire = &framed[if fixture == BIND_BIG_TCP { 2 } else { 0 }..];
        let m = parse_response(wire).unwrap();
        assert_eq!(m.consumed, wire.len());
        // The id and, byte for byte, the question that build_query writes.
        let q = m.question.as_ref().unwrap();
        build_query(m.header.id, &q.name, q.qtype, &mut query);
        assert_eq!(
            (&wire[..2], &wire[12..query.len()]),
            (&query[..2], &query[12..])
        );
        for r in m.answers.iter().chain(&m.authority).chain(&m.additional) {
            let (n, end) = read_name(wire, r.name_span.start as usize).unwrap();
            assert_eq!((n, end), (r.name.clone(), r.name_span.end as usize));
            match &r.data {
                RData::A(ip) => assert_eq!(r.rdata_span.get(wire), ip.octets()),
                RData::Aaaa(ip) => assert_eq!(r.rdata_span.get(wire), ip.octets()),
                RData::Other(raw) => assert_eq!(r.rdata_span.get(wire), raw),
                _ => {}
            }
        }
        // Every shorter prefix is Short, except under TC: then the records
        // that fit (16 bytes each after the 47-byte question) are kept.
        for n in 0..wire.len() {
            let got = parse_response(&wire[..n]);
            if m.header.tc && n >= HEADER_LEN {
                assert_eq!(got.unwrap().answers.len(), n.saturating_sub(47) / 16);
            } else {
                assert_eq!(got, Err(DnsError::Short), "{} prefix {n}", q.name);
            }
        }
    }
}
