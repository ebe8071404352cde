//! DNS responses: `parse_response` on arbitrary bytes. Asserts no panic;
//! consumed <= len; every record's owner name and RDATA lie inside the
//! message, and reading the name again at its span gives the same name and
//! end; A/AAAA data equal their RDATA bytes; a re-encoding of the parsed
//! sections parses back to the same header, question and records; `resolve`
//! only returns data of the asked type with a TTL no larger than any record it
//! used; TCP framing agrees with the length prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::dns::{
    parse_response, read_name, resolve, tcp_unframe, write_response, RData, Record, RecordType,
    HEADER_LEN,
};
use protocol::Status;

fuzz_target!(|data: &[u8]| {
    if let Status::Complete(span) = tcp_unframe(data) {
        assert!(span.end as usize <= data.len());
        assert_eq!(
            span.len(),
            usize::from(u16::from_be_bytes([data[0], data[1]]))
        );
    }
    let Ok(m) = parse_response(data) else {
        return;
    };
    assert!(m.consumed <= data.len());
    assert!(m.header.tc || m.consumed == data.len());
    for r in m.answers.iter().chain(&m.authority).chain(&m.additional) {
        check_record(data, r);
    }
    let mut out = Vec::new();
    let encoded = write_response(
        &m.header,
        m.question.as_ref(),
        &m.answers,
        &m.authority,
        &m.additional,
        &mut out,
    );
    if encoded.is_ok() {
        let back = parse_response(&out).expect("re-encoded message parses");
        assert_eq!(back.header, m.header);
        assert_eq!(back.question, m.question);
        assert_eq!(strip(&back.answers), strip(&m.answers));
        assert_eq!(strip(&back.authority), strip(&m.authority));
        assert_eq!(strip(&back.additional), strip(&m.additional));
        assert_eq!(back.consumed, out.len());
    }
    if let Some(q) = &m.question {
        for qtype in [q.qtype, RecordType::A, RecordType::Aaaa, RecordType::Srv] {
            let r = resolve(&m, &q.name, qtype);
            assert!(r.data.is_empty() || r.ttl.is_some());
            for d in &r.data {
                let used = m.answers.iter().find(|a| {
                    a.data == *d && a.rtype == qtype && a.name == r.canonical && a.class == 1
                });
                let used = used.expect("resolved data comes from an answer");
                assert!(r.ttl.unwrap() <= used.ttl);
            }
        }
    }
});

fn check_record(data: &[u8], r: &Record) {
    let (ns, ne) = (r.name_span.start as usize, r.name_span.end as usize);
    let (ds, de) = (r.rdata_span.start as usize, r.rdata_span.end as usize);
    assert!(HEADER_LEN <= ns && ns < ne && ne + 10 == ds && ds <= de && de <= data.len());
    let (name, end) = read_name(data, ns).expect("owner name reads again");
    assert_eq!(name.wire(), r.name.wire());
    assert_eq!(end, ne);
    assert!(name.wire().len() <= 255);
    match &r.data {
        RData::A(ip) => assert_eq!(&data[ds..de], ip.octets()),
        RData::Aaaa(ip) => assert_eq!(&data[ds..de], ip.octets()),
        RData::Other(raw) => assert_eq!(&data[ds..de], &raw[..]),
        RData::Cname(n) => assert!(n.wire().len() <= 255),
        RData::Srv { target, .. } => assert!(de - ds >= 7 && target.wire().len() <= 255),
    }
}

type Plain = Vec<(Vec<u8>, RecordType, u16, u32, RData)>;

/// Records without their spans, names compared byte for byte (case kept).
fn strip(rs: &[Record]) -> Plain {
    rs.iter()
        .map(|r| {
            (
                r.name.wire().to_vec(),
                r.rtype,
                r.class,
                r.ttl,
                r.data.clone(),
            )
        })
        .collect()
}
