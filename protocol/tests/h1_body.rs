//! Table tests for `protocol::h1`'s body decoder: Content-Length, chunked (extensions,
//! trailers, limits) and until-close bodies, each valid input fed split at every byte.

use protocol::h1::{
    BodyDecoder, BodyKind, BodyProgress, ParseError, MAX_CHUNK_EXT_BYTES, MAX_TRAILER_BYTES,
};

// ---------------------------------------------------------------- bodies

/// Feeds `input` whole, then in two pieces at every split; returns (consumed, done).
#[track_caller]
fn body_all_splits(kind: BodyKind, input: &[u8]) -> Result<(usize, bool), ParseError> {
    let mut d = BodyDecoder::new(kind, None);
    let whole = d.feed(input).map(|p| (p.consumed, p.done));
    for k in 0..=input.len() {
        let mut d = BodyDecoder::new(kind, None);
        let split = d.feed(&input[..k]).and_then(|a| {
            assert!(a.consumed <= k);
            if a.done {
                return Ok((a.consumed, true));
            }
            assert_eq!(
                a.consumed, k,
                "not done, so everything offered belongs to the body"
            );
            let b = d.feed(&input[k..])?;
            Ok((a.consumed + b.consumed, b.done))
        });
        assert_eq!(split, whole, "split at {k}");
    }
    whole
}

macro_rules! body {
    ($($name:ident: $kind:expr, $input:expr => $result:expr;)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(body_all_splits($kind, $input), $result);
        }
    )*};
}

body! {
    body_none: BodyKind::None, b"GET / HTTP/1.1" => Ok((0, true));
    body_length: BodyKind::Length(5), b"helloGET" => Ok((5, true));
    body_length_short: BodyKind::Length(5), b"hel" => Ok((3, false));
    body_length_zero: BodyKind::Length(0), b"x" => Ok((0, true));
    body_until_close: BodyKind::UntilClose, b"anything at all" => Ok((15, false));
    body_chunked_simple: BodyKind::Chunked, b"5\r\nhello\r\n0\r\n\r\n" => Ok((15, true));
    body_chunked_pipelined: BodyKind::Chunked, b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n" => Ok((15, true));
    body_chunked_multi: BodyKind::Chunked, b"3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n" => Ok((28, true));
    body_chunked_hex_case: BodyKind::Chunked, b"a\r\n0123456789\r\nB\r\n0123456789a\r\n0\r\n\r\n" => Ok((36, true));
    body_chunked_ext: BodyKind::Chunked, b"5;name=value;q=\"a b\"\r\nhello\r\n0;last\r\n\r\n" => Ok((39, true));
    body_chunked_ext_bws: BodyKind::Chunked, b"5 ; a=b\r\nhello\r\n0\r\n\r\n" => Ok((21, true));
    body_chunked_trailers: BodyKind::Chunked, b"1\r\nx\r\n0\r\nChecksum: abc\r\nX-T:\r\n\r\nnext" => Ok((32, true));
    body_chunked_leading_zeros: BodyKind::Chunked, b"0005\r\nhello\r\n000\r\n\r\n" => Ok((20, true));
    body_chunked_partial: BodyKind::Chunked, b"5\r\nhel" => Ok((6, false));
    body_chunked_before_final: BodyKind::Chunked, b"0\r\n\r" => Ok((4, false));
    body_err_size: BodyKind::Chunked, b"x\r\n" => Err(ParseError::InvalidChunkSize);
    body_err_size_empty: BodyKind::Chunked, b"\r\n" => Err(ParseError::InvalidChunkSize);
    body_err_size_garbage: BodyKind::Chunked, b"5x\r\nhello\r\n0\r\n\r\n" => Err(ParseError::InvalidChunkSize);
    body_err_size_sign: BodyKind::Chunked, b"+5\r\nhello\r\n0\r\n\r\n" => Err(ParseError::InvalidChunkSize);
    body_err_size_ws_only: BodyKind::Chunked, b"5 x\r\nhello\r\n0\r\n\r\n" => Err(ParseError::InvalidChunkSize);
    body_err_ext_ctl: BodyKind::Chunked, b"5;a\x01\r\nhello\r\n" => Err(ParseError::InvalidChunkSize);
    body_err_size_too_long: BodyKind::Chunked, b"00000000000000001\r\n" => Err(ParseError::ChunkSizeTooLong);
    body_err_size_bare_lf: BodyKind::Chunked, b"5\nhello\r\n" => Err(ParseError::InvalidChunkTerminator);
    body_err_size_cr_no_lf: BodyKind::Chunked, b"5\rhello\r\n" => Err(ParseError::InvalidChunkTerminator);
    body_err_data_no_crlf: BodyKind::Chunked, b"5\r\nhelloX\r\n0\r\n\r\n" => Err(ParseError::InvalidChunkTerminator);
    body_err_data_bare_lf: BodyKind::Chunked, b"5\r\nhello\n0\r\n\r\n" => Err(ParseError::InvalidChunkTerminator);
    body_err_final_no_lf: BodyKind::Chunked, b"0\r\n\rX" => Err(ParseError::InvalidChunkTerminator);
    body_err_final_bare_lf: BodyKind::Chunked, b"0\r\n\n" => Err(ParseError::InvalidChunkTerminator);
    body_err_trailer_name: BodyKind::Chunked, b"0\r\nBad Name: x\r\n\r\n" => Err(ParseError::InvalidTrailer);
    body_err_trailer_fold: BodyKind::Chunked, b"0\r\nA: b\r\n c\r\n\r\n" => Err(ParseError::InvalidTrailer);
    body_err_trailer_no_colon: BodyKind::Chunked, b"0\r\nAbc\r\n\r\n" => Err(ParseError::InvalidTrailer);
    body_err_trailer_ctl: BodyKind::Chunked, b"0\r\nA: \x00\r\n\r\n" => Err(ParseError::InvalidTrailer);
    body_err_trailer_bare_lf: BodyKind::Chunked, b"0\r\nA: b\n\r\n" => Err(ParseError::InvalidTrailer);
}

#[test]
fn body_err_ext_too_long() {
    let mut buf = b"5;".to_vec();
    buf.resize(MAX_CHUNK_EXT_BYTES, b'a');
    let ok = [&buf[..], b"\r\nhello\r\n0\r\n\r\n"].concat();
    assert_eq!(
        body_all_splits(BodyKind::Chunked, &ok),
        Ok((ok.len(), true))
    );
    let bad = [&buf[..], b"aa\r\nhello\r\n0\r\n\r\n"].concat();
    assert_eq!(
        body_all_splits(BodyKind::Chunked, &bad),
        Err(ParseError::ChunkExtensionTooLong)
    );
    let ws = [&b"5"[..], &[b' '; MAX_CHUNK_EXT_BYTES + 1][..], b";a\r\n"].concat();
    assert_eq!(
        body_all_splits(BodyKind::Chunked, &ws),
        Err(ParseError::ChunkExtensionTooLong)
    );
}

#[test]
fn body_err_trailer_too_large() {
    let field =
        b"X-Pad: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n";
    let mut buf = b"0\r\n".to_vec();
    while buf.len() < MAX_TRAILER_BYTES + 3 {
        buf.extend_from_slice(field);
    }
    buf.extend_from_slice(b"\r\n");
    assert_eq!(
        body_all_splits(BodyKind::Chunked, &buf),
        Err(ParseError::TrailerTooLarge)
    );
}

#[test]
fn body_err_too_large() {
    let mut d = BodyDecoder::new(BodyKind::Chunked, Some(8));
    assert_eq!(
        d.feed(b"5\r\nhello\r\n"),
        Ok(BodyProgress {
            consumed: 10,
            done: false
        })
    );
    assert_eq!(d.feed(b"4\r\n"), Err(ParseError::BodyTooLarge));
    let mut d = BodyDecoder::new(BodyKind::Length(9), Some(8));
    assert_eq!(d.feed(b"x"), Err(ParseError::BodyTooLarge));
    let mut d = BodyDecoder::new(BodyKind::UntilClose, Some(3));
    assert_eq!(
        d.feed(b"abc"),
        Ok(BodyProgress {
            consumed: 3,
            done: false
        })
    );
    assert_eq!(d.feed(b"d"), Err(ParseError::BodyTooLarge));
}

#[test]
fn body_progress_and_payload() {
    let mut d = BodyDecoder::new(BodyKind::None, None);
    assert_eq!(
        d.feed(&[]),
        Ok(BodyProgress {
            consumed: 0,
            done: true
        })
    );
    assert!(d.is_done());
    let mut d = BodyDecoder::new(BodyKind::Length(0), None);
    assert_eq!(
        d.feed(&[]),
        Ok(BodyProgress {
            consumed: 0,
            done: true
        })
    );
    let mut d = BodyDecoder::new(BodyKind::Chunked, None);
    let mut consumed = 0;
    let input = b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\nNEXT";
    for byte in input.chunks(1) {
        let p = d.feed(byte).expect("valid");
        consumed += p.consumed;
        if p.done {
            break;
        }
    }
    assert!(d.is_done());
    assert_eq!(consumed, input.len() - 4);
    assert_eq!(d.payload_bytes(), 5);
    assert_eq!(
        d.feed(b"more"),
        Ok(BodyProgress {
            consumed: 0,
            done: true
        })
    );
}

/// A trailer section of exactly `total` bytes, final CRLF included.
fn trailer_section(total: usize) -> Vec<u8> {
    let mut fields = Vec::new();
    while total - 2 - fields.len() > 80 {
        fields.extend_from_slice(b"X-Pad: 01234567890123456789012345678901234567890123456789\r\n");
    }
    let pad = total - 2 - fields.len() - b"Y: \r\n".len();
    fields.extend_from_slice(b"Y: ");
    fields.resize(fields.len() + pad, b'v');
    fields.extend_from_slice(b"\r\n\r\n");
    assert_eq!(fields.len(), total);
    fields
}

#[test]
fn body_trailer_limit_is_exact() {
    for (total, ok) in [(MAX_TRAILER_BYTES, true), (MAX_TRAILER_BYTES + 1, false)] {
        let input = [&b"0\r\n"[..], &trailer_section(total)].concat();
        let mut d = BodyDecoder::new(BodyKind::Chunked, None);
        let expected = if ok {
            Ok(BodyProgress {
                consumed: input.len(),
                done: true,
            })
        } else {
            Err(ParseError::TrailerTooLarge)
        };
        assert_eq!(d.feed(&input), expected, "trailer section of {total} bytes");
    }
}

body! {
    body_chunked_two_digit_sizes: BodyKind::Chunked, b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n10\r\n0123456789ABCDEF\r\n0\r\n\r\n" => Ok((59, true));
    body_err_ext_bare_lf: BodyKind::Chunked, b"5;a\nhello\r\n0\r\n\r\n" => Err(ParseError::InvalidChunkTerminator);
    body_err_trailer_name_start: BodyKind::Chunked, b"0\r\n@A: b\r\n\r\n" => Err(ParseError::InvalidTrailer);
}

#[test]
fn body_is_done_and_payload_bytes() {
    let mut d = BodyDecoder::new(BodyKind::Length(5), None);
    assert!(!d.is_done());
    assert_eq!(d.feed(b"abc").map(|p| p.consumed), Ok(3));
    assert!(!d.is_done());
    assert_eq!(d.payload_bytes(), 3);
    assert_eq!(d.feed(b"de!").map(|p| (p.consumed, p.done)), Ok((2, true)));
    assert!(d.is_done());
    assert_eq!(d.payload_bytes(), 5);
    let mut d = BodyDecoder::new(BodyKind::Chunked, None);
    assert_eq!(d.feed(b"1a\r\n0123").map(|p| p.consumed), Ok(8));
    assert!(!d.is_done());
    assert_eq!(
        d.payload_bytes(),
        26,
        "a chunk is accounted when its size line ends"
    );
    let mut d = BodyDecoder::new(BodyKind::UntilClose, None);
    assert_eq!(d.feed(b"xyz").map(|p| p.done), Ok(false));
    assert!(!d.is_done());
    assert_eq!(d.payload_bytes(), 3);
    assert!(BodyDecoder::new(BodyKind::None, None).is_done());
    assert!(BodyDecoder::new(BodyKind::Length(0), None).is_done());
}

#[test]
fn body_limit_is_inclusive() {
    // A body of exactly max_body bytes passes, one more is BodyTooLarge, for every kind.
    let mut d = BodyDecoder::new(BodyKind::Length(8), Some(8));
    assert_eq!(
        d.feed(b"12345678"),
        Ok(BodyProgress {
            consumed: 8,
            done: true
        })
    );
    let mut d = BodyDecoder::new(BodyKind::UntilClose, Some(8));
    assert_eq!(
        d.feed(b"12345678"),
        Ok(BodyProgress {
            consumed: 8,
            done: false
        })
    );
    assert_eq!(d.feed(b"9"), Err(ParseError::BodyTooLarge));
    let mut d = BodyDecoder::new(BodyKind::Chunked, Some(8));
    let body = b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n";
    assert_eq!(
        d.feed(body),
        Ok(BodyProgress {
            consumed: body.len(),
            done: true
        })
    );
    let mut d = BodyDecoder::new(BodyKind::Chunked, Some(8));
    assert_eq!(d.feed(b"3\r\nabc\r\n6\r\n"), Err(ParseError::BodyTooLarge));
}

// ---------------------------------------------------------------- opaque / skip

/// At every position of each body, skipping any part of the `opaque()` bytes leaves the
/// decoder exactly as feeding them would: `opaque` never covers a framing byte.
#[test]
fn body_skip_is_feed_without_looking() {
    let cases: &[(BodyKind, &[u8])] = &[
        (BodyKind::Length(11), b"hello world"),
        (BodyKind::UntilClose, b"anything at all"),
        (
            BodyKind::Chunked,
            b"3\r\nabc\r\nA;x=y\r\n0123456789\r\n0\r\nT: v\r\n\r\n",
        ),
    ];
    for &(kind, input) in cases {
        for p in 0..input.len() {
            let mut at = BodyDecoder::new(kind, None);
            at.feed(&input[..p]).unwrap();
            let rest = (input.len() - p) as u64;
            let opaque = at.opaque().min(rest);
            for k in [1, opaque / 2, opaque]
                .into_iter()
                .filter(|&k| k > 0 && k <= opaque)
            {
                let (mut skipped, mut fed) = (at, at);
                let done = skipped.skip(k);
                let p2 = fed.feed(&input[p..p + k as usize]).unwrap();
                assert_eq!(skipped, fed, "{kind:?} at {p}, {k} bytes");
                assert_eq!(done, p2.done);
                assert_eq!(skipped.payload_bytes(), fed.payload_bytes());
            }
        }
    }
}

#[test]
fn body_opaque_is_zero_at_framing_and_over_the_limit() {
    let mut d = BodyDecoder::new(BodyKind::Chunked, None);
    assert_eq!(d.opaque(), 0, "a chunk-size line comes first");
    d.feed(b"10\r\n").unwrap();
    assert_eq!(d.opaque(), 16);
    assert!(!d.skip(16));
    assert_eq!(d.opaque(), 0, "the CRLF after the data is framing");
    assert_eq!(BodyDecoder::new(BodyKind::Length(7), None).opaque(), 7);
    // Too large: feed must answer BodyTooLarge, so nothing may pass unfed.
    let mut big = BodyDecoder::new(BodyKind::Length(7), Some(6));
    assert_eq!(big.opaque(), 0);
    assert!(!big.skip(7));
    assert_eq!(big.feed(b"x"), Err(ParseError::BodyTooLarge));
    let mut done = BodyDecoder::new(BodyKind::Length(3), None);
    assert!(done.skip(3));
    assert_eq!(done.opaque(), 0);
    let mut until = BodyDecoder::new(BodyKind::UntilClose, Some(10));
    assert!(!until.skip(4));
    assert_eq!(until.opaque(), 6);
}
