//! PROXY protocol headers: `parse` on arbitrary bytes, the accepted versions
//! chosen by the first byte. Asserts no panic; consumed <= len; every prefix
//! gives `Partial` or the whole input's verdict (prefixes shorter than a
//! header are `Partial`); a parsed header re-encoded with `write_v1` and
//! `write_v2` parses back to the same addresses; a v2 header without TLVs
//! re-encodes to its own bytes; and addresses built from the input survive an
//! encode/parse round trip in both versions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::proxy::{
    parse, write_v1, write_v2, Accept, Addresses, Parsed, Version, V2_INET6_LEN, V2_INET_LEN,
};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

fuzz_target!(|data: &[u8]| {
    let [sel, input @ ..] = data else {
        return;
    };
    let accept = [Accept::V1, Accept::V2, Accept::Any, Accept::Any][usize::from(sel & 3)];
    let whole = parse(input, accept);
    let consumed = match whole {
        Ok(Parsed::Done { consumed, .. }) => consumed,
        _ => usize::MAX,
    };
    assert!(consumed == usize::MAX || consumed <= input.len());
    // Every prefix up to a bound (headers are short; keep runs fast).
    for n in 0..input.len().min(300) {
        let p = parse(&input[..n], accept);
        if n < consumed {
            assert!(
                p == Ok(Parsed::Partial) || (consumed == usize::MAX && p == whole),
                "prefix {n}: {p:?} vs {whole:?}"
            );
        } else {
            assert_eq!(p, whole, "prefix {n} past the header");
        }
    }
    if let Ok(Parsed::Done { header, consumed }) = whole {
        round_trip(&header.addrs);
        let block = match header.addrs {
            Addresses::Tcp4 { .. } => Some(V2_INET_LEN),
            Addresses::Tcp6 { .. } => Some(V2_INET6_LEN),
            Addresses::Unknown => None,
        };
        if header.version == Version::V2 && block.map(|b| 16 + b) == Some(consumed) {
            let mut out = Vec::new();
            write_v2(false, &header.addrs, &mut out);
            assert_eq!(out, &input[..consumed], "v2 without TLVs re-encodes");
        }
    }
    if let Some(b) = input.get(..36) {
        let ip6 = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&b[o..o + 16]).unwrap());
        let port = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
        round_trip(&Addresses::Tcp6 {
            src: SocketAddrV6::new(ip6(0), port(32), 0, 0),
            dst: SocketAddrV6::new(ip6(16), port(34), 0, 0),
        });
        let ip4 = |o: usize| Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]);
        round_trip(&Addresses::Tcp4 {
            src: SocketAddrV4::new(ip4(0), port(8)),
            dst: SocketAddrV4::new(ip4(4), port(10)),
        });
    }
});

fn round_trip(addrs: &Addresses) {
    for (version, accept) in [(Version::V1, Accept::V1), (Version::V2, Accept::V2)] {
        let mut out = Vec::new();
        match version {
            Version::V1 => write_v1(addrs, &mut out),
            Version::V2 => write_v2(false, addrs, &mut out),
        }
        let mut more = out.clone();
        more.extend_from_slice(b"GET / HTTP/1.1\r\n");
        match parse(&more, accept) {
            Ok(Parsed::Done { header, consumed }) => {
                assert_eq!(header.addrs, *addrs);
                assert_eq!(header.version, version);
                assert_eq!(consumed, out.len());
            }
            other => panic!("{version:?} encoding of {addrs:?} parsed as {other:?}"),
        }
    }
}
