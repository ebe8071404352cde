//! PROXY protocol headers, versions 1 (text) and 2 (binary), as specified in
//! haproxy's `proxy-protocol.txt`: strict incremental parsing and encoders.
//!
//! Contract: `parse` looks at the first bytes a client sent. It returns
//! `Parsed::Partial` while the bytes so far are a prefix of a header it
//! accepts, `Parsed::Done { header, consumed }` once the header is whole (the
//! bytes after `consumed` belong to the proxied stream), or an error.
//!
//! Invariant for incremental callers: checks run in byte order and each one
//! looks only at bytes before its position, so a prefix of any input gives
//! `Partial` or exactly the verdict of the whole input. A connection that
//! fails to parse must be closed, never read as HTTP (spec §2: "the receiver
//! MUST ... abort the connection").

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Version 1 starts with these 6 bytes (spec §2.1).
pub const V1_PREFIX: &[u8] = b"PROXY ";
/// Longest version 1 line, CRLF included (spec §2.1: the worst case is
/// "PROXY UNKNOWN" + two 39-char IPv6 addresses + two ports = 107).
pub const V1_MAX_LEN: usize = 107;
/// The version 2 signature (spec §2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Fixed part of a version 2 header: signature, ver_cmd, fam, len.
pub const V2_FIXED_LEN: usize = 16;
/// Address block of AF_INET (two addresses, two ports; spec §2.2).
pub const V2_INET_LEN: usize = 12;
/// Address block of AF_INET6.
pub const V2_INET6_LEN: usize = 36;
/// Address block of AF_UNIX (two 108-byte paths).
pub const V2_UNIX_LEN: usize = 216;
/// Longest version 2 header: the fixed part plus a 16-bit length.
pub const V2_MAX_LEN: usize = V2_FIXED_LEN + u16::MAX as usize;

/// Which versions a listener accepts (`[frontend] accept_proxy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Only the text form.
    V1,
    /// Only the binary form.
    V2,
    /// Either; told apart by the first byte ('P' or '\r').
    Any,
}

/// The version a header used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Text.
    V1,
    /// Binary.
    V2,
}

/// The original connection's endpoints, when the header carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// v1 `UNKNOWN`, v2 `LOCAL`, v2 AF_UNSPEC or AF_UNIX: use the
    /// connection's own addresses (spec §2.1, §2.2).
    Unknown,
    /// TCP over IPv4.
    Tcp4 {
        /// The client.
        src: SocketAddrV4,
        /// The address the client connected to.
        dst: SocketAddrV4,
    },
    /// TCP over IPv6.
    Tcp6 {
        /// The client.
        src: SocketAddrV6,
        /// The address the client connected to.
        dst: SocketAddrV6,
    },
}

impl Addresses {
    /// The client's address, if known.
    pub fn source(&self) -> Option<SocketAddr> {
        match *self {
            Addresses::Unknown => None,
            Addresses::Tcp4 { src, .. } => Some(src.into()),
            Addresses::Tcp6 { src, .. } => Some(src.into()),
        }
    }
}

/// A parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    /// Text or binary.
    pub version: Version,
    /// v2 `LOCAL` (a health check from the proxy itself); always false for v1.
    pub local: bool,
    /// The endpoints (always `Unknown` when `local`).
    pub addrs: Addresses,
}

/// The outcome of `parse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The bytes so far could start a valid header; read more.
    Partial,
    /// A whole header of `consumed` bytes.
    Done {
        /// The header.
        header: ProxyHeader,
        /// Its length; the proxied stream starts here.
        consumed: usize,
    },
}

/// Why a header was rejected. Never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// The stream does not start with an accepted signature.
    NotProxy,
    /// v1: no CRLF within 107 bytes.
    V1TooLong,
    /// v1: a bare CR or LF, or a byte that is not printable ASCII.
    V1BadLine,
    /// v1: the protocol is not TCP4, TCP6 or UNKNOWN.
    V1BadProtocol,
    /// v1: wrong number of fields, or fields not separated by one space.
    V1BadFields,
    /// v1: an address that is not in the protocol's canonical form.
    V1BadAddress,
    /// v1: a port that is not 0..65535 without leading zeros.
    V1BadPort,
    /// v2: the version nibble is not 2.
    V2BadVersion,
    /// v2: a command other than LOCAL (0) or PROXY (1).
    V2BadCommand,
    /// v2: an address family above AF_UNIX or a transport above DGRAM.
    V2BadFamily,
    /// v2: PROXY over a datagram transport (sluice proxies streams only).
    V2NotStream,
    /// v2: the length is shorter than the family's address block.
    V2TooShort,
    /// v2: a TLV that runs past the end of the header.
    V2BadTlv,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyError::NotProxy => "no PROXY protocol signature",
            ProxyError::V1TooLong => "PROXY v1 line longer than 107 bytes",
            ProxyError::V1BadLine => "PROXY v1 line has a bare CR/LF or a control byte",
            ProxyError::V1BadProtocol => "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ProxyError::V1BadFields => "PROXY v1 fields malformed",
            ProxyError::V1BadAddress => "PROXY v1 address malformed",
            ProxyError::V1BadPort => "PROXY v1 port malformed",
            ProxyError::V2BadVersion => "PROXY v2 version is not 2",
            ProxyError::V2BadCommand => "PROXY v2 command is not LOCAL or PROXY",
            ProxyError::V2BadFamily => "PROXY v2 family or transport unknown",
            ProxyError::V2NotStream => "PROXY v2 transport is not a stream",
            ProxyError::V2TooShort => "PROXY v2 length shorter than its address block",
            ProxyError::V2BadTlv => "PROXY v2 TLV runs past the header",
        })
    }
}

impl std::error::Error for ProxyError {}

/// Parses the header at the start of `buf`. Call with everything read so far
/// on each readable event until it returns `Done` or an error.
pub fn parse(buf: &[u8], accept: Accept) -> Result<Parsed, ProxyError> {
    let v1 = accept != Accept::V2;
    let v2 = accept != Accept::V1;
    if v1 && starts_like(buf, V1_PREFIX) {
        if buf.len() < V1_PREFIX.len() {
            return Ok(Parsed::Partial);
        }
        return parse_v1(buf);
    }
    if v2 && starts_like(buf, &V2_SIGNATURE) {
        if buf.len() < V2_SIGNATURE.len() {
            return Ok(Parsed::Partial);
        }
        return parse_v2(buf);
    }
    Err(ProxyError::NotProxy)
}

/// True when `buf` and `sig` agree on their common length.
fn starts_like(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf[..n] == sig[..n]
}

/// `buf` starts with "PROXY ". Finds the CRLF, then reads the fields.
fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let mut end = None;
    for (i, &b) in window.iter().enumerate() {
        match b {
            b'\r' => match window.get(i + 1) {
                Some(b'\n') => {
                    end = Some(i);
                    break;
                }
                Some(_) => return Err(ProxyError::V1BadLine),
                None if window.len() < V1_MAX_LEN => return Ok(Parsed::Partial),
                None => return Err(ProxyError::V1TooLong),
            },
            b' '..=b'~' => {}
            _ => return Err(ProxyError::V1BadLine),
        }
    }
    let Some(end) = end else {
        return if window.len() < V1_MAX_LEN {
            Ok(Parsed::Partial)
        } else {
            Err(ProxyError::V1TooLong)
        };
    };
    // The line is printable ASCII, so it is valid UTF-8.
    let line =
        std::str::from_utf8(&buf[V1_PREFIX.len()..end]).map_err(|_| ProxyError::V1BadLine)?;
    let addrs = v1_fields(line)?;
    let header = ProxyHeader {
        version: Version::V1,
        local: false,
        addrs,
    };
    Ok(Parsed::Done {
        header,
        consumed: end + 2,
    })
}

/// The text after "PROXY " and before CRLF.
fn v1_fields(line: &str) -> Result<Addresses, ProxyError> {
    let (proto, rest) = match line.split_once(' ') {
        Some((p, r)) => (p, Some(r)),
        None => (line, None),
    };
    match proto {
        // Spec §2.1: after UNKNOWN the receiver ignores the rest of the line.
        "UNKNOWN" => return Ok(Addresses::Unknown),
        "TCP4" | "TCP6" => {}
        _ => return Err(ProxyError::V1BadProtocol),
    }
    let rest = rest.ok_or(ProxyError::V1BadFields)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let [src, dst, sport, dport] = fields[..] else {
        return Err(ProxyError::V1BadFields);
    };
    let (sport, dport) = (v1_port(sport)?, v1_port(dport)?);
    if proto == "TCP4" {
        let ip = |s: &str| s.parse::<Ipv4Addr>().map_err(|_| ProxyError::V1BadAddress);
        Ok(Addresses::Tcp4 {
            src: SocketAddrV4::new(ip(src)?, sport),
            dst: SocketAddrV4::new(ip(dst)?, dport),
        })
    } else {
        let ip = |s: &str| {
            // Only hex digits and colons (and dots for a v4 tail); no zone ids.
            if s.bytes()
                .any(|b| !(b.is_ascii_hexdigit() || b == b':' || b == b'.'))
            {
                return Err(ProxyError::V1BadAddress);
            }
            s.parse::<Ipv6Addr>().map_err(|_| ProxyError::V1BadAddress)
        };
        Ok(Addresses::Tcp6 {
            src: SocketAddrV6::new(ip(src)?, sport, 0, 0),
            dst: SocketAddrV6::new(ip(dst)?, dport, 0, 0),
        })
    }
}

/// A decimal port without leading zeros (spec §2.1).
fn v1_port(s: &str) -> Result<u16, ProxyError> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return Err(ProxyError::V1BadPort);
    }
    s.parse().map_err(|_| ProxyError::V1BadPort)
}

/// `buf` starts with the 12-byte signature.
fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(Parsed::Partial);
    };
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::V2BadVersion);
    }
    let local = match ver_cmd & 0xf {
        0 => true,
        1 => false,
        _ => return Err(ProxyError::V2BadCommand),
    };
    let Some(&fam) = buf.get(13) else {
        return Ok(Parsed::Partial);
    };
    let (family, transport) = (fam >> 4, fam & 0xf);
    if family > 3 || transport > 2 {
        return Err(ProxyError::V2BadFamily);
    }
    let Some(&[hi, lo]) = buf.get(14..16) else {
        return Ok(Parsed::Partial);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let block = match family {
        1 => V2_INET_LEN,
        2 => V2_INET6_LEN,
        3 => V2_UNIX_LEN,
        _ => 0,
    };
    // The length covers the address block of the family even for LOCAL
    // (spec §2.2: "the receiver must ... skip"), so it must hold it.
    if len < block {
        return Err(ProxyError::V2TooShort);
    }
    if !local && (family == 1 || family == 2) && transport != 1 {
        return Err(ProxyError::V2NotStream);
    }
    let consumed = V2_FIXED_LEN + len;
    let Some(body) = buf.get(V2_FIXED_LEN..consumed) else {
        return Ok(Parsed::Partial);
    };
    // LOCAL and AF_UNSPEC: the receiver discards the whole block (spec §2.2),
    // so only headers whose addresses are used have their TLVs checked.
    let addrs = if local || family == 0 {
        Addresses::Unknown
    } else {
        let (addr, tlvs) = body.split_at(block);
        skip_tlvs(tlvs)?;
        v2_addresses(family, addr)
    };
    let header = ProxyHeader {
        version: Version::V2,
        local,
        addrs,
    };
    Ok(Parsed::Done { header, consumed })
}

fn v2_addresses(family: u8, a: &[u8]) -> Addresses {
    let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
    match family {
        1 => {
            let ip = |i: usize| Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]);
            Addresses::Tcp4 {
                src: SocketAddrV4::new(ip(0), port(8)),
                dst: SocketAddrV4::new(ip(4), port(10)),
            }
        }
        2 => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                Ipv6Addr::from(o)
            };
            Addresses::Tcp6 {
                src: SocketAddrV6::new(ip(0), port(32), 0, 0),
                dst: SocketAddrV6::new(ip(16), port(34), 0, 0),
            }
        }
        _ => Addresses::Unknown,
    }
}

/// TLVs (spec §2.2.1): type (1), length (2), value; they must tile the rest
/// of the header exactly. Their contents are not used.
fn skip_tlvs(mut tlvs: &[u8]) -> Result<(), ProxyError> {
    while !tlvs.is_empty() {
        let [_, hi, lo, rest @ ..] = tlvs else {
            return Err(ProxyError::V2BadTlv);
        };
        let n = usize::from(u16::from_be_bytes([*hi, *lo]));
        tlvs = rest.get(n..).ok_or(ProxyError::V2BadTlv)?;
    }
    Ok(())
}

/// Appends the v1 line for `addrs` to `out`. `Unknown` writes `PROXY UNKNOWN`.
pub fn write_v1(addrs: &Addresses, out: &mut Vec<u8>) {
    use std::io::Write;
    // NOTE(unwrap): writing to a Vec cannot fail.
    match addrs {
        Addresses::Unknown => out.extend_from_slice(b"PROXY UNKNOWN\r\n"),
        Addresses::Tcp4 { src, dst } => write!(
            out,
            "PROXY TCP4 {} {} {} {}\r\n",
            src.ip(),
            dst.ip(),
            src.port(),
            dst.port()
        )
        .unwrap(),
        Addresses::Tcp6 { src, dst } => write!(
            out,
            "PROXY TCP6 {} {} {} {}\r\n",
            src.ip(),
            dst.ip(),
            src.port(),
            dst.port()
        )
        .unwrap(),
    }
}

/// Appends a v2 header to `out`: PROXY over TCP for known addresses, LOCAL
/// (family UNSPEC, no address block) when `local` or `addrs` is `Unknown`.
/// No TLVs.
pub fn write_v2(local: bool, addrs: &Addresses, out: &mut Vec<u8>) {
    out.extend_from_slice(&V2_SIGNATURE);
    let (cmd, fam, len) = match (local, addrs) {
        (true, _) | (_, Addresses::Unknown) => (0x20, 0x00, 0),
        (false, Addresses::Tcp4 { .. }) => (0x21, 0x11, V2_INET_LEN),
        (false, Addresses::Tcp6 { .. }) => (0x21, 0x21, V2_INET6_LEN),
    };
    out.push(cmd);
    out.push(fam);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    match (cmd, addrs) {
        (0x21, Addresses::Tcp4 { src, dst }) => {
            out.extend_from_slice(&src.ip().octets());
            out.extend_from_slice(&dst.ip().octets());
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(&dst.port().to_be_bytes());
        }
        (0x21, Addresses::Tcp6 { src, dst }) => {
            out.extend_from_slice(&src.ip().octets());
            out.extend_from_slice(&dst.ip().octets());
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(&dst.port().to_be_bytes());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
