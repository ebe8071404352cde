//! Table tests for `protocol::proxy`.

use super::*;

fn v4(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

fn v6(s: &str) -> SocketAddrV6 {
    s.parse().unwrap()
}

fn done(buf: &[u8], accept: Accept) -> (ProxyHeader, usize) {
    match parse(buf, accept) {
        Ok(Parsed::Done { header, consumed }) => (header, consumed),
        other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
    }
}

/// Every strict prefix of a valid header is `Partial`.
#[track_caller]
fn prefixes_partial(buf: &[u8], consumed: usize, accept: Accept) {
    for n in 0..consumed {
        assert_eq!(parse(&buf[..n], accept), Ok(Parsed::Partial), "prefix {n}");
    }
}

/// Accepted headers: `(input, accept, addrs, consumed)`; each is checked whole,
/// with a trailing request, and at every prefix.
macro_rules! accepts {
    ($($case:ident: $bytes:expr, $accept:expr => $addrs:expr, $consumed:expr;)*) => {$(
        #[test]
        fn $case() {
            let bytes: &[u8] = &$bytes;
            let (h, n) = done(bytes, $accept);
            assert_eq!(h.addrs, $addrs);
            assert_eq!(n, $consumed);
            let mut more = bytes.to_vec();
            more.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            assert_eq!(done(&more, $accept), (h, n));
            prefixes_partial(bytes, n, $accept);
        }
    )*};
}

/// Rejected inputs: the whole gives `err`, every prefix `Partial` or `err`.
macro_rules! rejects {
    ($($case:ident: $bytes:expr, $accept:expr => $err:expr;)*) => {$(
        #[test]
        fn $case() {
            let bytes: &[u8] = &$bytes;
            assert_eq!(parse(bytes, $accept), Err($err));
            for n in 0..bytes.len() {
                let p = parse(&bytes[..n], $accept);
                assert!(p == Ok(Parsed::Partial) || p == Err($err), "prefix {n}: {p:?}");
            }
        }
    )*};
}

/// A v2 header: ver_cmd, fam, then `body` with its length.
fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut b = V2_SIGNATURE.to_vec();
    b.extend_from_slice(&[ver_cmd, fam]);
    b.extend_from_slice(&(body.len() as u16).to_be_bytes());
    b.extend_from_slice(body);
    b
}

const INET_BLOCK: [u8; 12] = [10, 0, 0, 1, 10, 0, 0, 2, 0x1f, 0x90, 0, 80];

/// "PROXY UNKNOWN" with two full-length IPv6 addresses and ports: the spec's
/// 107-byte worst case.
fn longest_v1() -> Vec<u8> {
    let ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    format!("PROXY UNKNOWN {ip} {ip} 65535 65535\r\n").into_bytes()
}

accepts! {
    v1_tcp4: *b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", Accept::V1
        => Addresses::Tcp4 { src: v4("192.168.0.1:56324"), dst: v4("192.168.0.11:443") }, 47;
    v1_tcp4_any: *b"PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", Accept::Any
        => Addresses::Tcp4 { src: v4("1.2.3.4:0"), dst: v4("5.6.7.8:65535") }, 36;
    v1_tcp6: *b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 2\r\n", Accept::V1
        => Addresses::Tcp6 { src: v6("[2001:db8::1]:1"), dst: v6("[::ffff:10.0.0.1]:2") }, 44;
    v1_unknown: *b"PROXY UNKNOWN\r\n", Accept::V1 => Addresses::Unknown, 15;
    v1_unknown_ignores_rest: *b"PROXY UNKNOWN whatever 1 2\r\n", Accept::Any
        => Addresses::Unknown, 28;
    v1_longest: longest_v1()[..], Accept::V1 => Addresses::Unknown, 107;
    // haproxy's own v2 output for a TCP/IPv4 connection, as captured in a public
    // write-up of the protocol (172.19.0.1:42578 -> 172.19.0.3:80).
    v2_tcp4_haproxy_capture: [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00,
        0x0c, 0xac, 0x13, 0x00, 0x01, 0xac, 0x13, 0x00, 0x03, 0xa6, 0x52, 0x00, 0x50,
    ], Accept::V2
        => Addresses::Tcp4 { src: v4("172.19.0.1:42578"), dst: v4("172.19.0.3:80") }, 28;
    v2_tcp6: v2(0x21, 0x21, &{
        let mut b = [0u8; 36];
        b[15] = 1;
        b[31] = 2;
        b[32..].copy_from_slice(&[0x30, 0x39, 0x01, 0xbb]);
        b
    }), Accept::Any => Addresses::Tcp6 { src: v6("[::1]:12345"), dst: v6("[::2]:443") }, 52;
    // A TLV after the address block (an AWS-style 0xEA with 5 bytes, then NOOP).
    v2_tlvs_skipped: v2(0x21, 0x11, &[&INET_BLOCK[..], &[0xea, 0, 5, 1, 2, 3, 4, 5, 0x04, 0, 0]].concat()),
        Accept::V2 => Addresses::Tcp4 { src: v4("10.0.0.1:8080"), dst: v4("10.0.0.2:80") }, 39;
    v2_local_empty: v2(0x20, 0x00, &[]), Accept::V2 => Addresses::Unknown, 16;
    // LOCAL with an address block: the addresses are ignored.
    v2_local_with_block: v2(0x20, 0x11, &INET_BLOCK), Accept::V2 => Addresses::Unknown, 28;
    v2_proxy_unspec: v2(0x21, 0x00, &[1, 2, 3]), Accept::V2 => Addresses::Unknown, 19;
    v2_local_block_ignored: v2(0x20, 0x00, &[0xff; 7]), Accept::V2 => Addresses::Unknown, 23;
    v2_unix: v2(0x21, 0x31, &[0u8; 216]), Accept::V2 => Addresses::Unknown, 232;
}

#[test]
fn local_flag() {
    assert!(done(&v2(0x20, 0x00, &[]), Accept::V2).0.local);
    assert!(!done(&v2(0x21, 0x11, &INET_BLOCK), Accept::V2).0.local);
    let (h, _) = done(b"PROXY TCP4 1.2.3.4 5.6.7.8 9 10\r\n", Accept::V1);
    assert_eq!((h.version, h.local), (Version::V1, false));
    assert_eq!(h.addrs.source(), Some("1.2.3.4:9".parse().unwrap()));
}

rejects! {
    http_is_not_proxy: *b"GET / HTTP/1.1\r\n", Accept::Any => ProxyError::NotProxy;
    v1_when_only_v2: *b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Accept::V2 => ProxyError::NotProxy;
    v2_when_only_v1: v2(0x20, 0x00, &[]), Accept::V1 => ProxyError::NotProxy;
    v1_lowercase: *b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Accept::Any => ProxyError::NotProxy;
    v1_too_long: [&longest_v1()[..105], b" \r\n"].concat(), Accept::V1 => ProxyError::V1TooLong;
    v1_no_crlf: [b'A'; 200].iter().enumerate()
        .map(|(i, &b)| if i < 6 { V1_PREFIX[i] } else { b }).collect::<Vec<u8>>(),
        Accept::V1 => ProxyError::V1TooLong;
    v1_bare_lf: *b"PROXY UNKNOWN\n", Accept::V1 => ProxyError::V1BadLine;
    v1_bare_cr: *b"PROXY UNKNOWN\rX\n", Accept::V1 => ProxyError::V1BadLine;
    v1_control_byte: *b"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", Accept::V1 => ProxyError::V1BadLine;
    v1_bad_protocol: *b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", Accept::V1 => ProxyError::V1BadProtocol;
    v1_lower_protocol: *b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", Accept::V1 => ProxyError::V1BadProtocol;
    v1_empty_protocol: *b"PROXY \r\n", Accept::V1 => ProxyError::V1BadProtocol;
    v1_missing_port: *b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", Accept::V1 => ProxyError::V1BadFields;
    v1_extra_field: *b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", Accept::V1 => ProxyError::V1BadFields;
    v1_trailing_space: *b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", Accept::V1 => ProxyError::V1BadFields;
    v1_no_fields: *b"PROXY TCP4\r\n", Accept::V1 => ProxyError::V1BadFields;
    v1_leading_zero_port: *b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", Accept::V1 => ProxyError::V1BadPort;
    v1_port_too_big: *b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", Accept::V1 => ProxyError::V1BadPort;
    v1_port_sign: *b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", Accept::V1 => ProxyError::V1BadPort;
    v1_leading_zero_octet: *b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", Accept::V1 => ProxyError::V1BadAddress;
    v1_tcp4_with_v6: *b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", Accept::V1 => ProxyError::V1BadAddress;
    v1_tcp6_with_v4: *b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", Accept::V1 => ProxyError::V1BadAddress;
    v1_tcp6_zone: *b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", Accept::V1 => ProxyError::V1BadAddress;
    v2_version_1: v2(0x11, 0x11, &INET_BLOCK), Accept::V2 => ProxyError::V2BadVersion;
    v2_command_2: v2(0x22, 0x11, &INET_BLOCK), Accept::V2 => ProxyError::V2BadCommand;
    v2_family_4: v2(0x21, 0x41, &INET_BLOCK), Accept::V2 => ProxyError::V2BadFamily;
    v2_transport_3: v2(0x21, 0x13, &INET_BLOCK), Accept::V2 => ProxyError::V2BadFamily;
    v2_udp: v2(0x21, 0x12, &INET_BLOCK), Accept::V2 => ProxyError::V2NotStream;
    v2_inet_short: v2(0x21, 0x11, &INET_BLOCK[..11]), Accept::V2 => ProxyError::V2TooShort;
    v2_inet6_short: v2(0x21, 0x21, &[0; 35]), Accept::V2 => ProxyError::V2TooShort;
    v2_local_short: v2(0x20, 0x21, &[0; 12]), Accept::V2 => ProxyError::V2TooShort;
    v2_tlv_past_end: v2(0x21, 0x11, &[&INET_BLOCK[..], &[0xea, 0, 6, 1, 2, 3, 4, 5]].concat()),
        Accept::V2 => ProxyError::V2BadTlv;
    v2_tlv_cut_head: v2(0x21, 0x11, &[&INET_BLOCK[..], &[0xea, 0]].concat()),
        Accept::V2 => ProxyError::V2BadTlv;
}

#[test]
fn round_trips() {
    let cases = [
        Addresses::Unknown,
        Addresses::Tcp4 {
            src: v4("255.255.255.255:65535"),
            dst: v4("0.0.0.0:0"),
        },
        Addresses::Tcp6 {
            src: v6("[2001:db8::ff00:42:8329]:1"),
            dst: v6("[::ffff:192.0.2.1]:443"),
        },
        Addresses::Tcp6 {
            src: v6("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            dst: v6("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        },
    ];
    for addrs in cases {
        let mut out = Vec::new();
        write_v1(&addrs, &mut out);
        assert!(out.len() <= V1_MAX_LEN);
        let (h, n) = done(&out, Accept::V1);
        assert_eq!((h.addrs, n, h.version), (addrs, out.len(), Version::V1));
        out.clear();
        write_v2(false, &addrs, &mut out);
        let (h, n) = done(&out, Accept::Any);
        assert_eq!((h.addrs, n, h.version), (addrs, out.len(), Version::V2));
        assert_eq!(h.local, addrs == Addresses::Unknown);
        out.clear();
        write_v2(true, &addrs, &mut out);
        let (h, n) = done(&out, Accept::V2);
        assert_eq!((h.addrs, h.local, n), (Addresses::Unknown, true, 16));
    }
}

#[test]
fn v2_encoder_matches_haproxy_capture() {
    let mut out = Vec::new();
    let addrs = Addresses::Tcp4 {
        src: v4("172.19.0.1:42578"),
        dst: v4("172.19.0.3:80"),
    };
    write_v2(false, &addrs, &mut out);
    assert_eq!(
        out,
        [
            0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11,
            0x00, 0x0c, 0xac, 0x13, 0x00, 0x01, 0xac, 0x13, 0x00, 0x03, 0xa6, 0x52, 0x00, 0x50,
        ]
    );
}
