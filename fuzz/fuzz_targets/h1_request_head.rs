//! Request heads: `parse_request` under limits chosen by the first byte.
//! Asserts head_len and every span in bounds, header_lines agreeing with
//! header_count, the verdict unchanged when only the head is given and Partial
//! one byte short of it, and that `write_request_head` output re-parses with
//! the same framing, one X-Forwarded-For ending in the client address and no
//! hop-by-hop fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::h1::{
    header_lines, parse_request, write_request_head, BodyKind, Forwarded, Limits, RequestHead,
    Version,
};
use protocol::{Span, Status};

const FWD: Forwarded<'static> = Forwarded {
    client_ip: b"203.0.113.9",
    proto: b"http",
    default_host: b"default.test",
};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, buf)) = data.split_first() else {
        return;
    };
    let limits = limits_from(sel);
    match parse_request(buf, &limits) {
        Ok(Status::Complete(h)) => check(buf, &h, &limits),
        Ok(Status::Partial) => assert!(buf.len() < limits.max_head_bytes),
        Err(_) => {}
    }
});

fn limits_from(sel: u8) -> Limits {
    let mut limits = Limits::default();
    if sel & 1 != 0 {
        limits.max_head_bytes = 16 + usize::from(sel) * 2;
    }
    if sel & 2 != 0 {
        limits.max_headers = usize::from(sel >> 4);
    }
    if sel & 4 != 0 {
        limits.max_body_bytes = Some(u64::from(sel));
    }
    limits
}

fn in_head(span: Span, head_len: usize) -> bool {
    span.start <= span.end && (span.end as usize) <= head_len
}

fn check(buf: &[u8], h: &RequestHead, limits: &Limits) {
    assert!(h.head_len <= buf.len() && h.head_len <= limits.max_head_bytes);
    assert!(h.header_count <= limits.max_headers);
    for span in [Some(h.method_span), Some(h.target), h.host, h.upgrade]
        .into_iter()
        .flatten()
    {
        assert!(in_head(span, h.head_len), "{span:?} outside {}", h.head_len);
    }
    assert!(!h.method_span.is_empty() && !h.target.is_empty());
    assert_ne!(h.body, BodyKind::UntilClose);
    let head = &buf[..h.head_len];
    assert!(head.ends_with(b"\r\n\r\n"));
    assert_eq!(header_lines(head).count(), h.header_count);
    for (name, value) in header_lines(head) {
        assert!(!name.is_empty() && !name.contains(&b':'));
        assert!(!value.contains(&b'\r') && !value.contains(&b'\n'));
    }
    assert_eq!(parse_request(head, limits), Ok(Status::Complete(*h)));
    assert_eq!(
        parse_request(&head[..h.head_len - 1], limits),
        Ok(Status::Partial)
    );
    if h.header_count + 6 <= 256 {
        rewrite(buf, h, false);
        rewrite(buf, h, true);
    }
}

fn rewrite(buf: &[u8], h: &RequestHead, tunnel: bool) {
    let mut out = Vec::new();
    write_request_head(buf, h, &FWD, tunnel, &mut out);
    let limits = Limits {
        max_head_bytes: usize::MAX,
        max_headers: 256,
        max_body_bytes: None,
    };
    let again = match parse_request(&out, &limits) {
        Ok(Status::Complete(again)) => again,
        other => panic!(
            "rewrite does not re-parse: {other:?}\n{}",
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(again.head_len, out.len());
    assert_eq!(again.method_span.get(&out), h.method_span.get(buf));
    assert_eq!(again.target.get(&out), h.target.get(buf));
    assert_eq!(
        (again.method, again.target_form, again.body),
        (h.method, h.target_form, h.body)
    );
    // The client's version is kept (a 1.0 request must not get a chunked answer).
    assert_eq!(again.version, h.version);
    if !tunnel && h.version == Version::Http10 {
        assert!(again.keep_alive, "a pooled 1.0 request asks for keep-alive");
    }
    let host = h.host.map_or(FWD.default_host, |s| s.get(buf));
    assert_eq!(again.host.map(|s| s.get(&out)), Some(host));
    if tunnel && h.upgrade_websocket {
        assert!(again.upgrade_websocket);
    }
    let mut xff = 0;
    for (name, value) in header_lines(&out) {
        let lower = name.to_ascii_lowercase();
        if !tunnel {
            let ours =
                lower == b"connection" && h.version == Version::Http10 && value == b"keep-alive";
            assert!(
                ours || !matches!(&lower[..], b"connection" | b"upgrade"),
                "{lower:?} kept"
            );
        }
        assert!(!matches!(
            &lower[..],
            b"keep-alive" | b"te" | b"trailer" | b"proxy-connection"
        ));
        if lower == b"x-forwarded-for" {
            xff += 1;
            assert!(value.ends_with(FWD.client_ip));
        }
    }
    assert_eq!(xff, 1);
}
