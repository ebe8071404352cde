//! Reading the simulated peers' streams and finding what sluice sent: request markers,
//! header values.

use super::MARK;
use crate::simnet::Stream;
use std::io::{ErrorKind, Read};

/// How reading a peer's stream until it would block ended.
pub(super) enum ReadEnd {
    Open,
    Eof,
    Failed,
}

/// Reads everything `s` has into `into`: the bytes read and how it ended.
pub(super) fn read_all(s: &mut Stream, into: &mut Vec<u8>) -> (usize, ReadEnd) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (total, ReadEnd::Eof),
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                total += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (total, ReadEnd::Open),
            Err(_) => return (total, ReadEnd::Failed),
        }
    }
}

pub(super) fn marker(client: u8, r: u8) -> [u8; 8] {
    let hex = b"0123456789abcdef";
    [
        MARK,
        b'C',
        hex[(client >> 4) as usize],
        hex[(client & 15) as usize],
        b'R',
        hex[(r >> 4) as usize],
        hex[(r & 15) as usize],
        MARK,
    ]
}

pub(super) fn parse_marker(b: &[u8]) -> Option<(u8, u8)> {
    if b.len() < 8 || b[0] != MARK || b[1] != b'C' || b[4] != b'R' || b[7] != MARK {
        return None;
    }
    let h = |x: u8| (x as char).to_digit(16).map(|d| d as u8);
    Some((h(b[2])? << 4 | h(b[3])?, h(b[5])? << 4 | h(b[6])?))
}

pub(super) fn last_marker(b: &[u8]) -> Option<[u8; 8]> {
    (0..b.len().saturating_sub(7))
        .rev()
        .find(|&i| parse_marker(&b[i..i + 8]).is_some())
        .map(|i| b[i..i + 8].try_into().expect("8 bytes"))
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn find_header(hay: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let lower: Vec<u8> = hay.iter().map(u8::to_ascii_lowercase).collect();
    let at = find(&lower, name)? + name.len();
    let end = at + find(&hay[at..], b"\r\n")?;
    Some(hay[at..end].trim_ascii().to_vec())
}
