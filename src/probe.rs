//! Active health checks: timed, non-blocking `GET /healthCheck` requests driven by the
//! reactor's timers, on short-lived connections registered in the same poll.
//!
//! The verdict logic (rise/fall, passive ejection, weights) lives in `health`, which is
//! pure; this module only does the IO: connect, send one request, read one response,
//! judge it with `health::evaluate_response`, and report the outcome with `now`.
//! Probes of a group's servers start spread out and are re-spread with random jitter
//! (up to a tenth of the interval), so they never all fire at once.

use crate::health::{FailReason, ProbeOutcome};
use protocol::h1::{self, BodyKind, Method};
use protocol::Status;

/// Judges a probe response held in `buf`: None while more bytes are needed.
pub(crate) fn judge(buf: &[u8], eof: bool) -> Option<ProbeOutcome> {
    let limits = h1::Limits::default();
    let head = match h1::parse_response(buf, Method::Get, &limits) {
        Ok(Status::Complete(h)) => h,
        Ok(Status::Partial) => return None,
        Err(_) => return Some(ProbeOutcome::Unhealthy(FailReason::BadResponse)),
    };
    let raw = &buf[head.head_len..];
    let mut body = [0u8; crate::buf::BUF_SIZE];
    let body: &[u8] = match head.body {
        BodyKind::None => &[],
        BodyKind::Length(n) if raw.len() as u64 >= n => &raw[..n as usize],
        BodyKind::Length(_) => return None,
        BodyKind::UntilClose if eof => raw,
        BodyKind::UntilClose => return None,
        BodyKind::Chunked => match dechunk(raw, &mut body) {
            Some(n) => &body[..n],
            None if eof => return Some(ProbeOutcome::Unhealthy(FailReason::BadResponse)),
            None => return None,
        },
    };
    Some(crate::health::evaluate_response(head.status, body))
}

/// Decodes a complete chunked body from `raw` into `out`; None if incomplete or invalid.
fn dechunk(raw: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut dec = h1::BodyDecoder::new(BodyKind::Chunked, None);
    let p = dec.feed(raw).ok()?;
    if !p.done {
        return None;
    }
    let mut pos = 0;
    let mut n = 0;
    loop {
        let line_end = raw[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
        let size_text = raw[pos..line_end].split(|&b| b == b';').next()?;
        let size = usize::from_str_radix(std::str::from_utf8(size_text).ok()?.trim(), 16).ok()?;
        pos = line_end + 2;
        if size == 0 {
            return Some(n);
        }
        let chunk = raw.get(pos..pos + size)?;
        out.get_mut(n..n + size)?.copy_from_slice(chunk);
        n += size;
        pos += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_length_chunked_and_close_delimited() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"status\":\"200\"}";
        assert!(matches!(
            judge(ok, false),
            Some(ProbeOutcome::Healthy { .. })
        ));
        assert_eq!(judge(&ok[..ok.len() - 1], false), None);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"stat\r\na\r\nus\":\"503\"}\r\n0\r\n\r\n";
        assert_eq!(
            judge(chunked, false),
            Some(ProbeOutcome::Unhealthy(FailReason::JsonStatus))
        );
        let close = b"HTTP/1.1 503 Busy\r\n\r\nbusy";
        assert_eq!(judge(close, false), None);
        assert_eq!(
            judge(close, true),
            Some(ProbeOutcome::Unhealthy(FailReason::Status(503)))
        );
        assert_eq!(
            judge(b"garbage\r\n\r\n", false),
            Some(ProbeOutcome::Unhealthy(FailReason::BadResponse))
        );
    }
}
