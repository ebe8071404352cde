//! Re-emitting heads across the proxy: hop-by-hop fields removed (RFC 9110
//! §7.6.1), forwarding fields added, everything else copied byte for byte.
//!
//! Contract: input is a head that `parse_request` / `parse_response` accepted
//! and the head it returned; output is appended to the caller's `Vec` after one
//! `reserve`, with no other allocation. The output is itself a valid head.
//!
//! The parser already classified every field name and its `Hops` map says where
//! the lines to drop are: the rewrite then copies what lies between them. Only
//! heads the map cannot describe (many hop-by-hop lines, or a Connection field
//! naming other fields) are read line by line here.
//!
//! Invariants: the message framing is never changed. Content-Length,
//! Transfer-Encoding and Host are kept even when Connection names them (a
//! client that could strip Content-Length through `Connection: Content-Length`
//! would make the backend read the body as the next request).

use super::head::Hops;
use super::{
    classify, has_token, header_lines, list_items, Field, RequestHead, ResponseHead, Version,
};

/// What the proxy knows about the client connection, for X-Forwarded-*.
#[derive(Clone, Copy, Debug)]
pub struct Forwarded<'a> {
    /// The client's address as text (e.g. `192.0.2.7` or `2001:db8::1`).
    pub client_ip: &'a [u8],
    /// `http` or `https`.
    pub proto: &'a [u8],
    /// Host to send when the request has none (HTTP/1.0).
    pub default_host: &'a [u8],
}

/// Writes the request head for the backend: request line as received, with the
/// client's version (an HTTP/1.0 request stays 1.0 so the backend never answers it
/// with chunked framing the client cannot read, RFC 9112 §7.1; it carries
/// `Connection: keep-alive` so the pooled connection survives); drops Connection and every field it names, Keep-Alive,
/// Proxy-Connection, TE, Trailer and Upgrade (Upgrade is kept and
/// `Connection: Upgrade` sent when `tunnel`). X-Forwarded-For becomes one field:
/// the client's values, then `client_ip`; X-Forwarded-Proto and X-Forwarded-Host
/// replace the client's. A request without Host gets `Host: default_host`.
pub fn write_request_head(
    buf: &[u8],
    head: &RequestHead,
    fwd: &Forwarded,
    tunnel: bool,
    out: &mut Vec<u8>,
) {
    let h = buf.get(..head.head_len).unwrap_or(buf);
    let host = head.host.map(|s| s.get(h));
    let fwd_host = host.unwrap_or(fwd.default_host);
    out.reserve(h.len() + fwd.client_ip.len() + fwd.proto.len() + 2 * fwd_host.len() + 112);
    out.extend_from_slice(head.method_span.get(h));
    out.push(b' ');
    out.extend_from_slice(head.target.get(h));
    if head.version == Version::Http10 {
        out.extend_from_slice(b" HTTP/1.0\r\n");
    } else {
        out.extend_from_slice(b" HTTP/1.1\r\n");
    }
    let xff_seen = copy_fields(h, &head.hops, tunnel, true, out);
    if tunnel {
        out.extend_from_slice(b"Connection: Upgrade\r\n");
    } else if head.version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    if host.is_none() {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(fwd.default_host);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    if xff_seen {
        let values = header_lines(h).filter(|&(n, _)| classify(n) == Field::XForwardedFor);
        for (_, value) in values.filter(|(_, v)| !v.is_empty()) {
            out.extend_from_slice(value);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(fwd.client_ip);
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: ");
    out.extend_from_slice(fwd.proto);
    out.extend_from_slice(b"\r\nX-Forwarded-Host: ");
    out.extend_from_slice(fwd_host);
    out.extend_from_slice(b"\r\n\r\n");
}

/// Writes the response head for the client: status line "HTTP/1.1 <code>
/// <reason as received>"; hop-by-hop fields dropped as for requests (Upgrade
/// kept and `Connection: Upgrade` sent for a 101 when `tunnel`). Adds
/// `Connection: close` when `close`, else `Connection: keep-alive` for an
/// HTTP/1.0 client.
pub fn write_response_head(
    buf: &[u8],
    head: &ResponseHead,
    client: Version,
    close: bool,
    tunnel: bool,
    out: &mut Vec<u8>,
) {
    let h = buf.get(..head.head_len).unwrap_or(buf);
    let upgrade = tunnel && head.status == 101;
    out.reserve(h.len() + 64);
    // The parser took three digits (100..=599): one fixed-size copy.
    let code = head.status;
    let mut start = *b"HTTP/1.1 000 ";
    start[9] += (code / 100 % 10) as u8;
    start[10] += (code / 10 % 10) as u8;
    start[11] += (code % 10) as u8;
    out.extend_from_slice(&start);
    out.extend_from_slice(head.reason.get(h));
    out.extend_from_slice(b"\r\n");
    copy_fields(h, &head.hops, upgrade, false, out);
    if upgrade {
        out.extend_from_slice(b"Connection: Upgrade\r\n");
    } else if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if client == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Copies the end-to-end field lines of `head` verbatim, runs of kept lines in
/// one copy. In a request the X-Forwarded-* fields are dropped too (the caller
/// writes its own); returns whether X-Forwarded-For was among them.
fn copy_fields(
    head: &[u8],
    hops: &Hops,
    keep_upgrade: bool,
    request: bool,
    out: &mut Vec<u8>,
) -> bool {
    if hops.mapped {
        copy_around(head, hops, keep_upgrade, out);
        return hops.xff;
    }
    let mark = out.len();
    if let Some(xff_seen) = copy_pass(head, keep_upgrade, request, None, out) {
        return xff_seen;
    }
    // Rare: Connection names other fields. Start over knowing all its tokens.
    out.truncate(mark);
    let conn = ConnectionTokens::collect(head);
    copy_pass(head, keep_upgrade, request, Some(&conn), out).unwrap_or(false)
}

/// Copies the field lines between the hop-by-hop lines the parser found (an
/// Upgrade line stays when `keep_upgrade`), without looking at the bytes.
fn copy_around(head: &[u8], hops: &Hops, keep_upgrade: bool, out: &mut Vec<u8>) {
    let mut run = hops.fields as usize;
    let lines = hops.lines.iter().take(usize::from(hops.count));
    for (k, line) in lines.enumerate() {
        if keep_upgrade && hops.upgrade & (1 << k) != 0 {
            continue;
        }
        out.extend_from_slice(head.get(run..line.start as usize).unwrap_or(&[]));
        run = line.end as usize;
    }
    // The field lines end before the final CRLF.
    let end = head.len().saturating_sub(2);
    out.extend_from_slice(head.get(run..end).unwrap_or(&[]));
}

/// One pass over the field lines. Without `conn` it gives up (None) at the
/// first Connection field that names anything but close, keep-alive or upgrade
/// (fields that are dropped or handled anyway), so the common case reads the
/// head once.
fn copy_pass(
    head: &[u8],
    keep_upgrade: bool,
    request: bool,
    conn: Option<&ConnectionTokens>,
    out: &mut Vec<u8>,
) -> Option<bool> {
    let mut xff_seen = false;
    let mut run = 0..0;
    let mut lines = header_lines(head);
    while let Some(line) = lines.next_line() {
        let name = line.name(head);
        let keep = match classify(name) {
            Field::XForwardedFor if request => {
                xff_seen = true;
                false
            }
            Field::XForwardedProto | Field::XForwardedHost if request => false,
            Field::Upgrade => keep_upgrade,
            Field::Connection if conn.is_none() && names_others(line.value(head)) => return None,
            Field::Connection
            | Field::KeepAlive
            | Field::ProxyConnection
            | Field::Te
            | Field::Trailer => false,
            Field::Host | Field::ContentLength | Field::TransferEncoding => true,
            _ => !conn.is_some_and(|c| c.names(name)),
        };
        if !keep {
            out.extend_from_slice(head.get(run.clone()).unwrap_or(&[]));
            run = 0..0;
        } else if run.is_empty() {
            run = line.start..line.end + 2;
        } else {
            run.end = line.end + 2;
        }
    }
    out.extend_from_slice(head.get(run).unwrap_or(&[]));
    Some(xff_seen)
}

/// A Connection value listing something other than the tokens every head
/// handles anyway.
fn names_others(value: &[u8]) -> bool {
    list_items(value).any(|t| {
        !(t.eq_ignore_ascii_case(b"keep-alive")
            || t.eq_ignore_ascii_case(b"close")
            || t.eq_ignore_ascii_case(b"upgrade"))
    })
}

/// Connection values (RFC 9110 §7.6.1) of one head, by reference. Heads with
/// more Connection fields than slots are rescanned instead.
struct ConnectionTokens<'a> {
    head: &'a [u8],
    values: [&'a [u8]; 4],
    count: usize,
}

impl<'a> ConnectionTokens<'a> {
    fn collect(head: &'a [u8]) -> ConnectionTokens<'a> {
        let mut t = ConnectionTokens {
            head,
            values: [&[]; 4],
            count: 0,
        };
        for (name, value) in header_lines(head) {
            if classify(name) == Field::Connection {
                if let Some(slot) = t.values.get_mut(t.count) {
                    *slot = value;
                }
                t.count += 1;
            }
        }
        t
    }

    /// True when a Connection field lists `name`.
    fn names(&self, name: &[u8]) -> bool {
        match self.values.get(..self.count) {
            Some(values) => values.iter().any(|v| has_token(v, name)),
            None => header_lines(self.head)
                .any(|(n, v)| classify(n) == Field::Connection && has_token(v, name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h1::{parse_request, parse_response, Limits, Method};
    use crate::Status;

    const FIELDS: [&str; 12] = [
        "Host: a\r\n",
        "Connection: keep-alive, Upgrade\r\n",
        "connection: close\r\n",
        "Keep-Alive: timeout=5\r\n",
        "Proxy-Connection: x\r\n",
        "TE: trailers\r\n",
        "Trailer: X-T\r\n",
        "Upgrade: websocket\r\n",
        "X-Forwarded-For: 192.0.2.1\r\n",
        "x-forwarded-proto: https\r\n",
        "X-Forwarded-Host: b\r\n",
        "X-Other: 1\r\n",
    ];

    /// Heads made of every pair of fields above, and of runs of 3 to 13 of them
    /// (around the map's limit of four hop-by-hop lines).
    fn heads(start: &str) -> Vec<String> {
        let mut out = Vec::new();
        for a in FIELDS {
            for b in FIELDS {
                out.push(format!("{start}X-A: 1\r\n{a}X-B: 2\r\n{b}\r\n"));
                out.push(format!("{start}{a}{b}X-C: 3\r\n\r\n"));
            }
        }
        for n in 3..=13 {
            for first in 0..FIELDS.len() {
                let run: String = (first..first + n)
                    .map(|k| FIELDS[k % FIELDS.len()])
                    .collect();
                out.push(format!("{start}{run}\r\n"));
            }
        }
        out
    }

    /// The rewrite from the parser's field map gives the bytes the name-by-name
    /// rewrite gives.
    #[test]
    fn mapped_rewrite_matches_name_by_name() {
        let limits = Limits::default();
        let fwd = Forwarded {
            client_ip: b"192.0.2.7",
            proto: b"http",
            default_host: b"backend:80",
        };
        let mut mapped = 0;
        for text in heads("GET / HTTP/1.1\r\nHost: h\r\n") {
            let Ok(Status::Complete(head)) = parse_request(text.as_bytes(), &limits) else {
                continue; // e.g. two Host fields
            };
            mapped += usize::from(head.hops.mapped);
            let slow = RequestHead {
                hops: Hops::default(),
                ..head
            };
            for tunnel in [false, true] {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                write_request_head(text.as_bytes(), &head, &fwd, tunnel, &mut a);
                write_request_head(text.as_bytes(), &slow, &fwd, tunnel, &mut b);
                assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            }
        }
        for text in heads("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n") {
            let parsed = parse_response(text.as_bytes(), Method::Get, &limits);
            let Ok(Status::Complete(head)) = parsed else {
                panic!("{text}: {parsed:?}");
            };
            mapped += usize::from(head.hops.mapped);
            let slow = ResponseHead {
                hops: Hops::default(),
                ..head
            };
            for (close, tunnel) in [(false, false), (true, false), (false, true)] {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                write_response_head(
                    text.as_bytes(),
                    &head,
                    Version::Http11,
                    close,
                    tunnel,
                    &mut a,
                );
                write_response_head(
                    text.as_bytes(),
                    &slow,
                    Version::Http11,
                    close,
                    tunnel,
                    &mut b,
                );
                assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            }
        }
        assert!(mapped > 500, "{mapped}");
    }
}
