//! Body framing: a `BodyDecoder` of the kind chosen by the first three bytes,
//! fed the rest whole and then one byte at a time. Asserts consumed <= len, a
//! decoder that is not done consumed everything offered, Length consumes
//! exactly min(n, len), payload <= consumed, a finished chunked body ends in
//! CRLF, a done decoder consumes nothing more, and the byte-at-a-time run
//! agrees with the whole one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::h1::{BodyDecoder, BodyKind, ParseError};

fuzz_target!(|data: &[u8]| {
    let [sel, hi, lo, body @ ..] = data else {
        return;
    };
    let n = u64::from(u16::from_be_bytes([*hi, *lo]));
    let kind = match sel & 3 {
        0 | 1 => BodyKind::Chunked,
        2 => BodyKind::Length(n),
        _ => BodyKind::UntilClose,
    };
    let max = (sel & 4 != 0).then_some(n);
    let whole = whole(kind, max, body);
    assert_eq!(bytewise(kind, max, body), whole);
});

fn whole(kind: BodyKind, max: Option<u64>, body: &[u8]) -> Result<(usize, bool), ParseError> {
    let mut d = BodyDecoder::new(kind, max);
    let p = d.feed(body)?;
    assert!(p.consumed <= body.len());
    assert_eq!(p.done, d.is_done());
    if !p.done {
        assert_eq!(p.consumed, body.len());
    }
    assert!(d.payload_bytes() <= p.consumed as u64 || matches!(kind, BodyKind::Chunked));
    match kind {
        BodyKind::Length(n) => assert_eq!(p.consumed as u64, n.min(body.len() as u64)),
        BodyKind::UntilClose => assert!(!p.done),
        BodyKind::Chunked if p.done => {
            assert!(body[..p.consumed].ends_with(b"\r\n\r\n"));
            assert!(d.payload_bytes() <= p.consumed as u64);
        }
        _ => {}
    }
    if p.done {
        assert_eq!(d.feed(body).map(|q| (q.consumed, q.done)), Ok((0, true)));
    }
    Ok((p.consumed, p.done))
}

fn bytewise(kind: BodyKind, max: Option<u64>, body: &[u8]) -> Result<(usize, bool), ParseError> {
    let mut d = BodyDecoder::new(kind, max);
    let mut consumed = 0;
    if body.is_empty() {
        let p = d.feed(body)?;
        return Ok((p.consumed, p.done));
    }
    for byte in body.chunks(1) {
        let p = d.feed(byte)?;
        consumed += p.consumed;
        if p.done {
            return Ok((consumed, true));
        }
    }
    Ok((consumed, false))
}
