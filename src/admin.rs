//! The admin endpoint (`[admin] host, port`): served by the same reactor, on its own
//! listener. `GET /metrics` (Prometheus text format 0.0.4), `GET /status.json` (the same
//! state as JSON) and `GET /status` (a self-contained HTML page that refreshes itself).
//! Answers are built on demand from the live state; nothing is kept just for them except
//! the per-group response-time histogram.

use std::fmt::Write;

pub(crate) fn json_str(j: &mut String, s: &str) {
    j.push('"');
    for ch in s.chars() {
        match ch {
            '"' => j.push_str("\\\""),
            '\\' => j.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(j, "\\u{:04x}", c as u32);
            }
            c => j.push(c),
        }
    }
    j.push('"');
}

/// Resident set size from /proc/self/statm (0 where unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escaping() {
        let mut j = String::new();
        json_str(&mut j, "a\"b\\c\n");
        assert_eq!(j, "\"a\\\"b\\\\c\\u000a\"");
    }
}
