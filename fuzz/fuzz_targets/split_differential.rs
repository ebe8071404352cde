//! The same input parsed whole and in pieces chosen by the fuzz input must give
//! identical results: request heads, response heads (re-parsed on a growing
//! buffer, as the reactor does) and body decoding (fed piece by piece).
//!
//! Layout: [mode][piece count][piece lengths...][input].
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::h1::{
    parse_request, parse_response, BodyDecoder, BodyKind, Limits, Method, ParseError,
};
use protocol::Status;

fuzz_target!(|data: &[u8]| {
    let [mode, count, rest @ ..] = data else {
        return;
    };
    let count = usize::from(*count % 16).min(rest.len());
    let (lens, input) = rest.split_at(count);
    let cuts = cut_points(lens, input.len());
    match mode % 5 {
        0 => heads(input, &cuts, |b| parse_request(b, &Limits::default())),
        1 => heads(input, &cuts, |b| {
            parse_response(b, Method::Get, &Limits::default())
        }),
        2 => {
            let limits = Limits {
                max_head_bytes: 200,
                max_headers: 4,
                max_body_bytes: Some(100),
            };
            heads(input, &cuts, |b| parse_request(b, &limits))
        }
        3 => body(BodyKind::Chunked, input, &cuts),
        _ => body(BodyKind::Length(input.len() as u64 / 2), input, &cuts),
    }
});

/// Increasing offsets in 0..=len, each piece length taken from the input.
fn cut_points(lens: &[u8], len: usize) -> Vec<usize> {
    let mut at = 0;
    let mut cuts: Vec<usize> = lens
        .iter()
        .map(|&l| {
            at = (at + usize::from(l)).min(len);
            at
        })
        .collect();
    cuts.push(len);
    cuts
}

/// Re-parses a growing prefix at each cut; the first verdict that is not
/// Partial must equal the verdict on the whole input.
fn heads<T: PartialEq + std::fmt::Debug>(
    input: &[u8],
    cuts: &[usize],
    parse: impl Fn(&[u8]) -> Result<Status<T>, ParseError>,
) {
    let whole = parse(input);
    for &cut in cuts {
        let r = parse(&input[..cut]);
        if r != Ok(Status::Partial) {
            assert_eq!(r, whole, "cut at {cut}");
            return;
        }
    }
    assert_eq!(whole, Ok(Status::Partial));
}

fn body(kind: BodyKind, input: &[u8], cuts: &[usize]) {
    let max = Some(64);
    let mut d = BodyDecoder::new(kind, max);
    let whole = d.feed(input).map(|p| (p.consumed, p.done));
    let mut d = BodyDecoder::new(kind, max);
    let mut from = 0;
    let mut consumed = 0;
    let pieces = cuts.iter().map(|&cut| {
        let piece = &input[from..cut];
        from = cut;
        piece
    });
    let mut split = Ok((0, false));
    for piece in pieces {
        split = d.feed(piece).map(|p| {
            assert!(p.consumed <= piece.len());
            if !p.done {
                assert_eq!(p.consumed, piece.len());
            }
            consumed += p.consumed;
            (consumed, p.done)
        });
        if matches!(split, Err(_) | Ok((_, true))) {
            break;
        }
    }
    assert_eq!(split, whole);
}
