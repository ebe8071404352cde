//! Response heads: `parse_response` for a request method and limits chosen by
//! the first byte. Asserts head_len and spans in bounds, framing rules of RFC
//! 9112 §6.3 that must hold for any input, the verdict unchanged when only the
//! head is given, `write_response_head` output re-parsing to the same status,
//! reason and framing, and `write_error_response` parsing with a matching
//! Content-Length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::h1::{
    header_lines, parse_response, write_error_response, write_response_head, BodyKind, Limits,
    Method, ResponseHead, Version,
};
use protocol::Status;

const METHODS: [Method; 4] = [Method::Get, Method::Head, Method::Post, Method::Connect];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, buf)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(sel & 3)];
    let mut limits = Limits::default();
    if sel & 4 != 0 {
        limits.max_head_bytes = 16 + usize::from(sel) * 2;
    }
    if sel & 8 != 0 {
        limits.max_headers = usize::from(sel >> 4);
    }
    match parse_response(buf, method, &limits) {
        Ok(Status::Complete(h)) => check(buf, method, &h, &limits),
        Ok(Status::Partial) => assert!(buf.len() < limits.max_head_bytes),
        Err(_) => {}
    }
    error_response(sel, buf);
});

fn check(buf: &[u8], method: Method, h: &ResponseHead, limits: &Limits) {
    assert!(h.head_len <= buf.len() && h.head_len <= limits.max_head_bytes);
    assert!(h.header_count <= limits.max_headers);
    assert!((100..=599).contains(&h.status));
    assert!(h.reason.start <= h.reason.end && h.reason.end as usize <= h.head_len);
    assert_eq!(h.upgrade, h.status == 101);
    if method == Method::Head || h.status < 200 || h.status == 204 || h.status == 304 {
        assert_eq!(h.body, BodyKind::None);
    }
    if h.body == BodyKind::UntilClose {
        assert!(!h.keep_alive);
    }
    let head = &buf[..h.head_len];
    assert_eq!(header_lines(head).count(), h.header_count);
    assert_eq!(
        parse_response(head, method, limits),
        Ok(Status::Complete(*h))
    );
    assert_eq!(
        parse_response(&head[..h.head_len - 1], method, limits),
        Ok(Status::Partial)
    );
    if h.header_count + 2 > 256 {
        return;
    }
    for (client, close, tunnel) in [
        (Version::Http11, false, false),
        (Version::Http10, false, true),
        (Version::Http11, true, true),
    ] {
        let mut out = Vec::new();
        write_response_head(buf, h, client, close, tunnel, &mut out);
        let limits = Limits {
            max_head_bytes: usize::MAX,
            max_headers: 256,
            max_body_bytes: None,
        };
        let again = match parse_response(&out, method, &limits) {
            Ok(Status::Complete(again)) => again,
            other => panic!(
                "rewrite does not re-parse: {other:?}\n{}",
                String::from_utf8_lossy(&out)
            ),
        };
        assert_eq!(again.head_len, out.len());
        assert_eq!(
            (again.status, again.body, again.version),
            (h.status, h.body, Version::Http11)
        );
        assert_eq!(again.reason.get(&out), h.reason.get(buf));
        let upgrade = tunnel && h.status == 101;
        if close && !upgrade {
            assert!(!again.keep_alive);
        }
        for (name, _) in header_lines(&out) {
            let lower = name.to_ascii_lowercase();
            assert!(!matches!(
                &lower[..],
                b"keep-alive" | b"te" | b"trailer" | b"proxy-connection"
            ));
            if !upgrade {
                assert_ne!(&lower[..], b"upgrade");
            }
        }
    }
}

fn error_response(sel: u8, buf: &[u8]) {
    let status = 400 + u16::from(sel) % 200;
    let detail = std::str::from_utf8(buf).unwrap_or("not utf-8");
    let mut out = Vec::new();
    write_error_response(status, detail, sel & 1 != 0, &mut out);
    let limits = Limits {
        max_head_bytes: usize::MAX,
        ..Limits::default()
    };
    let Ok(Status::Complete(h)) = parse_response(&out, Method::Get, &limits) else {
        panic!(
            "error response does not parse: {}",
            String::from_utf8_lossy(&out)
        )
    };
    assert_eq!(h.status, status);
    assert_eq!(h.body, BodyKind::Length(detail.len() as u64 + 1));
    assert_eq!(&out[h.head_len..], [detail.as_bytes(), b"\n"].concat());
}
