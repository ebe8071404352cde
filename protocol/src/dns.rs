//! DNS messages (RFC 1035 §4): build queries, parse responses, encode
//! responses (for test servers and round trips), and frame them for TCP.
//!
//! Contract: `parse_response` reads a whole datagram (or one TCP-framed
//! message) and returns a `Message` or a `DnsError`; it never panics and never
//! reads past the slice. Every length is checked before use; a compression
//! pointer must point strictly before the start of the label run that holds it
//! (so chains of pointers strictly descend and cannot loop), names stay within
//! 255 wire bytes and labels within 63 (RFC 1035 §2.3.4, §4.1.4).
//!
//! Records carry the byte ranges (`Span`) of their owner name and their RDATA
//! inside the message, so a caller can check where each answer came from.
//! Only the types sluice needs are decoded (A, AAAA, CNAME, SRV); others keep
//! their raw RDATA. A response with the TC bit (RFC 1035 §4.1.1) may end in the
//! middle of a section: parsing stops there and keeps what was complete, and
//! `Header::tc` tells the caller to ask again over TCP (RFC 7766 §5).

use crate::{Span, Status};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Fixed header length (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// Longest name in wire form, length octets included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4): the two high bits of a length octet are 0.
pub const MAX_LABEL_LEN: usize = 63;
/// Largest UDP message without EDNS (RFC 1035 §2.3.4); longer answers come
/// with TC set.
pub const MAX_UDP_LEN: usize = 512;
/// Longest CNAME chain `resolve` follows (loops end here too).
pub const MAX_CNAME_HOPS: usize = 8;
/// Class IN (RFC 1035 §3.2.4).
pub const CLASS_IN: u16 = 1;

/// RCODE values sluice acts on (RFC 1035 §4.1.1).
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// Format error: the server could not read the query.
    pub const FORMERR: u8 = 1;
    /// Server failure: try again later or elsewhere.
    pub const SERVFAIL: u8 = 2;
    /// Name error: the name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// Not implemented.
    pub const NOTIMP: u8 = 4;
    /// Refused by policy.
    pub const REFUSED: u8 = 5;
}

/// Why a message could not be parsed or built. Never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// The message ends inside a field.
    Short,
    /// A length octet with the reserved high bits 01 or 10 (RFC 1035 §4.1.4).
    BadLabel,
    /// A compression pointer that does not point strictly backwards.
    BadPointer,
    /// A name longer than 255 bytes in wire form.
    NameTooLong,
    /// A label longer than 63 bytes, or an empty label inside a name.
    BadLabelLength,
    /// RDATA whose length does not fit its type (an A record of 5 bytes, a
    /// CNAME whose name does not end at RDLENGTH).
    BadRdata,
    /// QR is 0: a query where a response was expected.
    NotResponse,
    /// More than one question (no server sends that).
    QuestionCount,
    /// Bytes after the last record of a message that was not truncated.
    TrailingBytes,
    /// A section count or the message itself does not fit its 16-bit field.
    TooLarge,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DnsError::Short => "DNS message ends inside a field",
            DnsError::BadLabel => "DNS label with reserved type bits",
            DnsError::BadPointer => "DNS compression pointer not strictly backwards",
            DnsError::NameTooLong => "DNS name longer than 255 bytes",
            DnsError::BadLabelLength => "DNS label empty or longer than 63 bytes",
            DnsError::BadRdata => "DNS RDATA length does not match its type",
            DnsError::NotResponse => "DNS message is not a response",
            DnsError::QuestionCount => "DNS message has more than one question",
            DnsError::TrailingBytes => "DNS message has bytes after its last record",
            DnsError::TooLarge => "DNS message or section too large",
        })
    }
}

impl std::error::Error for DnsError {}

/// A record type (RFC 1035 §3.2.2, RFC 3596, RFC 2782).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// 1: an IPv4 address.
    A,
    /// 5: the canonical name for an alias.
    Cname,
    /// 28: an IPv6 address.
    Aaaa,
    /// 33: service location.
    Srv,
    /// Any other type, kept by number.
    Other(u16),
}

impl RecordType {
    /// Decodes a TYPE field.
    pub fn from_u16(v: u16) -> RecordType {
        match v {
            1 => RecordType::A,
            5 => RecordType::Cname,
            28 => RecordType::Aaaa,
            33 => RecordType::Srv,
            n => RecordType::Other(n),
        }
    }
    /// The TYPE field value.
    pub fn as_u16(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Cname => 5,
            RecordType::Aaaa => 28,
            RecordType::Srv => 33,
            RecordType::Other(n) => n,
        }
    }
}

/// A domain name in uncompressed wire form (length-prefixed labels, ending
/// with the root's zero octet). Comparison ignores ASCII case (RFC 1035 §2.3.3).
#[derive(Clone)]
pub struct Name {
    wire: Vec<u8>,
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name { wire: vec![0] }
    }

    /// Parses a dotted name (`www.example.com`, a trailing dot is allowed).
    /// Empty labels, labels over 63 bytes and names over 255 bytes are errors.
    pub fn from_dotted(s: &str) -> Result<Name, DnsError> {
        let s = s.strip_suffix('.').unwrap_or(s);
        let mut wire = Vec::with_capacity(s.len() + 2);
        if !s.is_empty() {
            for label in s.split('.') {
                if label.is_empty() || label.len() > MAX_LABEL_LEN {
                    return Err(DnsError::BadLabelLength);
                }
                wire.push(label.len() as u8);
                wire.extend_from_slice(label.as_bytes());
            }
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(DnsError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// Builds a name from its labels (for tests and encoders).
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Result<Name, DnsError> {
        let mut wire = Vec::new();
        for label in labels {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(DnsError::BadLabelLength);
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(DnsError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// The uncompressed wire form, root octet included.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The labels, first (leftmost) to last; the root adds none.
    pub fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.wire }
    }

    /// Number of labels (`www.example.com` has 3).
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// This name with `suffix` appended (search-list expansion).
    pub fn join(&self, suffix: &Name) -> Result<Name, DnsError> {
        Name::from_labels(self.labels().chain(suffix.labels()))
    }
}

/// Iterator over a name's labels.
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let len = usize::from(len);
        if len == 0 || tail.len() < len {
            self.rest = &[];
            return None;
        }
        let (label, rest) = tail.split_at(len);
        self.rest = rest;
        Some(label)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in &self.wire {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for Name {
    /// Presentation form without the trailing dot; `.` for the root. Bytes that
    /// are not printable ASCII, and `.` or `\` inside a label, are escaped as
    /// `\DDD` (RFC 1035 §5.1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for label in self.labels() {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    write!(f, "{}", b as char)?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
        }
        if first {
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// The fixed header (RFC 1035 §4.1.1), flags decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Query identifier, echoed by the server.
    pub id: u16,
    /// QR: this is a response.
    pub qr: bool,
    /// OPCODE (0 = standard query).
    pub opcode: u8,
    /// AA: authoritative answer.
    pub aa: bool,
    /// TC: truncated; ask again over TCP.
    pub tc: bool,
    /// RD: recursion desired.
    pub rd: bool,
    /// RA: recursion available.
    pub ra: bool,
    /// RCODE (see `rcode`).
    pub rcode: u8,
}

impl Header {
    fn flags(&self) -> u16 {
        (u16::from(self.qr) << 15)
            | (u16::from(self.opcode & 0xf) << 11)
            | (u16::from(self.aa) << 10)
            | (u16::from(self.tc) << 9)
            | (u16::from(self.rd) << 8)
            | (u16::from(self.ra) << 7)
            | u16::from(self.rcode & 0xf)
    }
    fn from_flags(id: u16, f: u16) -> Header {
        Header {
            id,
            qr: f & 0x8000 != 0,
            opcode: ((f >> 11) & 0xf) as u8,
            aa: f & 0x0400 != 0,
            tc: f & 0x0200 != 0,
            rd: f & 0x0100 != 0,
            ra: f & 0x0080 != 0,
            rcode: (f & 0xf) as u8,
        }
    }
}

/// The question a response echoes (RFC 1035 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// QNAME.
    pub name: Name,
    /// QTYPE.
    pub qtype: RecordType,
    /// QCLASS (1 = IN).
    pub qclass: u16,
}

/// Decoded RDATA (RFC 1035 §3.3, §3.4.1; RFC 3596 §2.2; RFC 2782).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// The canonical name of an alias.
    Cname(Name),
    /// A service location.
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Relative weight among equal priorities.
        weight: u16,
        /// Port on the target.
        port: u16,
        /// Target host (`.` means "no service").
        target: Name,
    },
    /// Any other type: the raw RDATA (names in it are left compressed).
    Other(Vec<u8>),
}

/// A resource record (RFC 1035 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Owner name.
    pub name: Name,
    /// TYPE.
    pub rtype: RecordType,
    /// CLASS.
    pub class: u16,
    /// TTL in seconds (the high bit is cleared, RFC 2181 §8).
    pub ttl: u32,
    /// Decoded RDATA.
    pub data: RData,
    /// Where the owner name starts and its in-place bytes end (a pointer
    /// counts as its two bytes); empty for records built by hand.
    pub name_span: Span,
    /// Where the RDATA lies in the message; empty for records built by hand.
    pub rdata_span: Span,
}

impl Record {
    /// A record for encoders and tests: class IN, no spans; the type follows
    /// the data (`Other` data needs `rtype` set afterwards).
    pub fn new(name: Name, ttl: u32, data: RData) -> Record {
        let rtype = match data {
            RData::A(_) => RecordType::A,
            RData::Aaaa(_) => RecordType::Aaaa,
            RData::Cname(_) => RecordType::Cname,
            RData::Srv { .. } => RecordType::Srv,
            RData::Other(_) => RecordType::Other(0),
        };
        Record {
            name,
            rtype,
            class: CLASS_IN,
            ttl,
            data,
            name_span: Span::default(),
            rdata_span: Span::default(),
        }
    }
}

/// A parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The question, if the server echoed one.
    pub question: Option<Question>,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section (SOA of an NXDOMAIN, NS referrals).
    pub authority: Vec<Record>,
    /// Additional section (SRV targets' addresses, EDNS OPT).
    pub additional: Vec<Record>,
    /// Bytes read: the whole message unless it was truncated (TC).
    pub consumed: usize,
}

impl Message {
    /// True when this response answers the query sent as `id` for
    /// `name`/`qtype`: same ID, exactly one echoed question with the same name
    /// (any case), type and class IN (RFC 5452 §3: match all of them). The
    /// source address is the caller's to check.
    pub fn answers_query(&self, id: u16, name: &Name, qtype: RecordType) -> bool {
        self.header.id == id
            && self.header.opcode == 0
            && self
                .question
                .as_ref()
                .is_some_and(|q| q.name == *name && q.qtype == qtype && q.qclass == CLASS_IN)
    }
}

/// Builds a standard query with RD set for `name`/`qtype`, class IN, into
/// `out` (cleared first). Call once per attempt with a fresh random `id`.
pub fn build_query(id: u16, name: &Name, qtype: RecordType, out: &mut Vec<u8>) {
    out.clear();
    let header = Header {
        id,
        rd: true,
        ..Header::default()
    };
    put_header(out, &header, [1, 0, 0, 0]);
    out.extend_from_slice(name.wire());
    put_u16(out, qtype.as_u16());
    put_u16(out, CLASS_IN);
}

/// Encodes a response (names uncompressed) into `out` (cleared first). The
/// section counts come from the slices. For test DNS servers and round trips.
pub fn write_response(
    header: &Header,
    question: Option<&Question>,
    answers: &[Record],
    authority: &[Record],
    additional: &[Record],
    out: &mut Vec<u8>,
) -> Result<(), DnsError> {
    out.clear();
    let count = |n: usize| u16::try_from(n).map_err(|_| DnsError::TooLarge);
    let counts = [
        u16::from(question.is_some()),
        count(answers.len())?,
        count(authority.len())?,
        count(additional.len())?,
    ];
    put_header(out, header, counts);
    if let Some(q) = question {
        out.extend_from_slice(q.name.wire());
        put_u16(out, q.qtype.as_u16());
        put_u16(out, q.qclass);
    }
    for r in answers.iter().chain(authority).chain(additional) {
        put_record(out, r)?;
    }
    if out.len() > usize::from(u16::MAX) {
        return Err(DnsError::TooLarge);
    }
    Ok(())
}

fn put_record(out: &mut Vec<u8>, r: &Record) -> Result<(), DnsError> {
    out.extend_from_slice(r.name.wire());
    put_u16(out, r.rtype.as_u16());
    put_u16(out, r.class);
    out.extend_from_slice(&r.ttl.to_be_bytes());
    let len_at = out.len();
    put_u16(out, 0);
    match &r.data {
        RData::A(ip) => out.extend_from_slice(&ip.octets()),
        RData::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
        RData::Cname(n) => out.extend_from_slice(n.wire()),
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => {
            put_u16(out, *priority);
            put_u16(out, *weight);
            put_u16(out, *port);
            out.extend_from_slice(target.wire());
        }
        RData::Other(raw) => out.extend_from_slice(raw),
    }
    let rdlen = u16::try_from(out.len() - len_at - 2).map_err(|_| DnsError::TooLarge)?;
    out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    Ok(())
}

fn put_header(out: &mut Vec<u8>, h: &Header, counts: [u16; 4]) {
    put_u16(out, h.id);
    put_u16(out, h.flags());
    for c in counts {
        put_u16(out, c);
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Reads the header only: enough to match an answer's ID before parsing it.
pub fn parse_header(msg: &[u8]) -> Result<Header, DnsError> {
    let id = read_u16(msg, 0)?;
    let flags = read_u16(msg, 2)?;
    Ok(Header::from_flags(id, flags))
}

/// Parses a whole response. Errors on a query (QR = 0), on more than one
/// question, on any bound a name, pointer or RDATA breaks, and on trailing
/// bytes. A truncated (TC) response keeps the records that were complete.
pub fn parse_response(msg: &[u8]) -> Result<Message, DnsError> {
    let header = parse_header(msg)?;
    if !header.qr {
        return Err(DnsError::NotResponse);
    }
    let qdcount = read_u16(msg, 4)?;
    let counts = [read_u16(msg, 6)?, read_u16(msg, 8)?, read_u16(msg, 10)?];
    if qdcount > 1 {
        return Err(DnsError::QuestionCount);
    }
    let mut pos = HEADER_LEN;
    let mut out = Message {
        header,
        question: None,
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        consumed: 0,
    };
    if qdcount == 1 {
        match parse_question(msg, pos) {
            Ok((q, end)) => {
                out.question = Some(q);
                pos = end;
            }
            Err(DnsError::Short) if header.tc => {
                out.consumed = msg.len();
                return Ok(out);
            }
            Err(e) => return Err(e),
        }
    }
    for (section, count) in counts.into_iter().enumerate() {
        for _ in 0..count {
            match parse_record(msg, pos) {
                Ok((r, end)) => {
                    pos = end;
                    match section {
                        0 => out.answers.push(r),
                        1 => out.authority.push(r),
                        _ => out.additional.push(r),
                    }
                }
                // RFC 1035 §4.1.1: TC means the message was cut to fit; what
                // is missing is not an error, only incomplete.
                Err(DnsError::Short) if header.tc => {
                    out.consumed = msg.len();
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
        }
    }
    if pos != msg.len() && !header.tc {
        return Err(DnsError::TrailingBytes);
    }
    out.consumed = pos;
    Ok(out)
}

fn parse_question(msg: &[u8], pos: usize) -> Result<(Question, usize), DnsError> {
    let (name, pos) = read_name(msg, pos)?;
    let qtype = RecordType::from_u16(read_u16(msg, pos)?);
    let qclass = read_u16(msg, pos + 2)?;
    Ok((
        Question {
            name,
            qtype,
            qclass,
        },
        pos + 4,
    ))
}

fn parse_record(msg: &[u8], start: usize) -> Result<(Record, usize), DnsError> {
    let (name, pos) = read_name(msg, start)?;
    let name_span = Span::new(start, pos);
    let rtype = RecordType::from_u16(read_u16(msg, pos)?);
    let class = read_u16(msg, pos + 2)?;
    let ttl = read_u32(msg, pos + 4)? & 0x7fff_ffff;
    let rdlen = usize::from(read_u16(msg, pos + 8)?);
    let rd_start = pos + 10;
    let rd_end = rd_start + rdlen;
    if rd_end > msg.len() {
        return Err(DnsError::Short);
    }
    let rdata = &msg[rd_start..rd_end];
    let data = match rtype {
        RecordType::A => {
            let b: [u8; 4] = rdata.try_into().map_err(|_| DnsError::BadRdata)?;
            RData::A(Ipv4Addr::from(b))
        }
        RecordType::Aaaa => {
            let b: [u8; 16] = rdata.try_into().map_err(|_| DnsError::BadRdata)?;
            RData::Aaaa(Ipv6Addr::from(b))
        }
        RecordType::Cname => RData::Cname(read_rdata_name(msg, rd_start, rd_end)?),
        RecordType::Srv => {
            if rdlen < 7 {
                return Err(DnsError::BadRdata);
            }
            RData::Srv {
                priority: read_u16(msg, rd_start)?,
                weight: read_u16(msg, rd_start + 2)?,
                port: read_u16(msg, rd_start + 4)?,
                target: read_rdata_name(msg, rd_start + 6, rd_end)?,
            }
        }
        RecordType::Other(_) => RData::Other(rdata.to_vec()),
    };
    let rec = Record {
        name,
        rtype,
        class,
        ttl,
        data,
        name_span,
        rdata_span: Span::new(rd_start, rd_end),
    };
    Ok((rec, rd_end))
}

/// A name that must end exactly at the end of its RDATA. Pointers may reach
/// back before the RDATA but its own bytes must stay inside it.
fn read_rdata_name(msg: &[u8], start: usize, end: usize) -> Result<Name, DnsError> {
    match read_name(&msg[..end], start) {
        Ok((name, pos)) if pos == end => Ok(name),
        Ok(_) | Err(DnsError::Short) => Err(DnsError::BadRdata),
        Err(e) => Err(e),
    }
}

/// Reads a possibly compressed name at `pos`; returns it and the position
/// after its in-place bytes (after the first pointer, if any).
///
/// Loop freedom: a pointer must point strictly before the start of the run
/// of labels it ends (`run_start`), so successive runs start at strictly
/// smaller offsets and the walk ends within `msg.len()` jumps.
pub fn read_name(msg: &[u8], pos: usize) -> Result<(Name, usize), DnsError> {
    let mut wire = Vec::with_capacity(32);
    let mut at = pos;
    let mut run_start = pos;
    let mut end_in_place = None;
    loop {
        let len = *msg.get(at).ok_or(DnsError::Short)?;
        match len >> 6 {
            0b00 => {
                let len = usize::from(len);
                if wire.len() + 1 + len > MAX_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                if len == 0 {
                    wire.push(0);
                    let end = end_in_place.unwrap_or(at + 1);
                    return Ok((Name { wire }, end));
                }
                let label = msg.get(at + 1..at + 1 + len).ok_or(DnsError::Short)?;
                wire.push(len as u8);
                wire.extend_from_slice(label);
                at += 1 + len;
            }
            0b11 => {
                let lo = *msg.get(at + 1).ok_or(DnsError::Short)?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(lo);
                if target >= run_start {
                    return Err(DnsError::BadPointer);
                }
                if end_in_place.is_none() {
                    end_in_place = Some(at + 2);
                }
                at = target;
                run_start = target;
            }
            _ => return Err(DnsError::BadLabel),
        }
    }
}

fn read_u16(msg: &[u8], at: usize) -> Result<u16, DnsError> {
    match msg.get(at..at + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(DnsError::Short),
    }
}

fn read_u32(msg: &[u8], at: usize) -> Result<u32, DnsError> {
    match msg.get(at..at + 4) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(DnsError::Short),
    }
}

/// What a response says about one name and type after following CNAMEs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The name the data belongs to (the end of the CNAME chain).
    pub canonical: Name,
    /// Records of the asked type owned by `canonical`, in message order.
    pub data: Vec<RData>,
    /// Smallest TTL along the chain (CNAMEs used and records returned);
    /// `None` when nothing was found.
    pub ttl: Option<u32>,
}

/// Follows the CNAME chain from `qname` through the answer section (at most
/// `MAX_CNAME_HOPS`, so a CNAME loop ends) and collects the records of
/// `qtype` owned by the last name. Empty `data` is NODATA (or a chain that
/// leaves this message). Call on a NOERROR response whose question matched.
pub fn resolve(msg: &Message, qname: &Name, qtype: RecordType) -> Resolved {
    let mut name = qname.clone();
    let mut ttl: Option<u32> = None;
    let min = |t: Option<u32>, v: u32| Some(t.map_or(v, |t| t.min(v)));
    for _ in 0..=MAX_CNAME_HOPS {
        let data: Vec<&Record> = msg
            .answers
            .iter()
            .filter(|r| r.rtype == qtype && r.class == CLASS_IN && r.name == name)
            .collect();
        if !data.is_empty() {
            for r in &data {
                ttl = min(ttl, r.ttl);
            }
            return Resolved {
                canonical: name,
                data: data.into_iter().map(|r| r.data.clone()).collect(),
                ttl,
            };
        }
        let alias = msg.answers.iter().find_map(|r| match &r.data {
            RData::Cname(target) if r.name == name && r.class == CLASS_IN => Some((target, r.ttl)),
            _ => None,
        });
        match alias {
            Some((target, t)) if qtype != RecordType::Cname => {
                ttl = min(ttl, t);
                name = target.clone();
            }
            _ => break,
        }
    }
    Resolved {
        canonical: name,
        data: Vec::new(),
        ttl,
    }
}

/// Appends `msg` with its 2-byte length prefix for DNS over TCP
/// (RFC 1035 §4.2.2). Errors when `msg` is over 65535 bytes.
pub fn tcp_frame(msg: &[u8], out: &mut Vec<u8>) -> Result<(), DnsError> {
    let len = u16::try_from(msg.len()).map_err(|_| DnsError::TooLarge)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Ok(())
}

/// Finds the first length-prefixed message in a TCP stream buffer: `Partial`
/// until it is whole, then its span (its end is the bytes to consume).
pub fn tcp_unframe(buf: &[u8]) -> Status<Span> {
    match buf {
        [a, b, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*a, *b]));
            if rest.len() >= len {
                Status::Complete(Span::new(2, 2 + len))
            } else {
                Status::Partial
            }
        }
        _ => Status::Partial,
    }
}

#[cfg(test)]
mod captured;
#[cfg(test)]
mod tests;
