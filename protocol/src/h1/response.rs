//! Responses sluice writes itself (errors, 100 Continue), without allocation
//! beyond the caller's `Vec`.
//!
//! Contract: the output is a complete HTTP/1.1 response whose Content-Length
//! matches its plain-text body (`detail` and a newline).

/// Appends `HTTP/1.1 <code> <reason>`, `Content-Type: text/plain`,
/// `Content-Length`, `Retry-After: 1` for 503 and 429, `Connection: close` when `close`,
/// then the body `<detail>\n`. Call it for any status sluice answers itself.
pub fn write_error_response(status: u16, detail: &str, close: bool, out: &mut Vec<u8>) {
    let reason = reason_phrase(status);
    out.reserve(112 + reason.len() + detail.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    push_decimal(out, detail.len() as u64 + 1);
    out.extend_from_slice(b"\r\n");
    if status == 503 || status == 429 {
        out.extend_from_slice(b"Retry-After: 1\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(detail.as_bytes());
    out.push(b'\n');
}

/// The reason phrase of RFC 9110 §15 for the codes sluice sends or relays most;
/// "Unknown" for the rest.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Appends `n` in decimal without going through `fmt`.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
