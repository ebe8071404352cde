//! Value parsers: one key's text to a value, or the reason it is wrong (`Doc` adds the file,
//! line and key).

use super::{AccessLogDest, Algorithm, ALGORITHMS, MAX_DURATION, WORKERS_RANGE};
use std::time::Duration;

/// A file path: not empty (what it names is checked when it is loaded).
pub(super) fn path(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err("expected a file path".into());
    }
    Ok(v.into())
}

/// A decimal integer in `lo..=hi`, converted to `T` (the range must fit `T`).
pub(super) fn num<T: TryFrom<u64>>(lo: u64, hi: u64) -> impl Fn(&str) -> Result<T, String> {
    move |v| {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("expected a non-negative integer, got {v:?}"));
        }
        let out_of_range = || format!("{v} is out of range {lo}..={hi}");
        let n: u64 = v.parse().map_err(|_| out_of_range())?;
        if !(lo..=hi).contains(&n) {
            return Err(out_of_range());
        }
        T::try_from(n).map_err(|_| out_of_range())
    }
}

/// Integer seconds (`10`) or a number with a unit: `500ms`, `2s`, `1m`, `1h`.
/// The result is in `1ms..=MAX_DURATION`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let per_unit_ms: u64 = match &v[digits..] {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => 0,
    };
    if digits == 0 || per_unit_ms == 0 {
        return Err(format!(
            "expected a duration like 10, 500ms, 2s, 1m or 1h, got {v:?}"
        ));
    }
    let ms = v[..digits]
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit_ms));
    match ms.map(Duration::from_millis) {
        Some(d) if d.is_zero() => Err("must be greater than 0".into()),
        Some(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!(
            "{v} is longer than the maximum {}",
            show(MAX_DURATION)
        )),
    }
}

/// `0` or `off` (case-insensitive) = `None`, else a duration as [`parse_duration`].
pub(super) fn optional_duration(v: &str) -> Result<Option<Duration>, String> {
    if v == "0" || v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_duration(v).map(Some)
}

/// A whole percentage in `range`, with or without a trailing `%`.
pub(super) fn percent(range: (u64, u64)) -> impl Fn(&str) -> Result<u32, String> {
    move |v| num(range.0, range.1)(v.strip_suffix('%').unwrap_or(v).trim_end())
}

/// `true/false/on/off/yes/no/1/0`, case-insensitive.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(format!("expected true/false/on/off/yes/no/1/0, got {v:?}")),
    }
}

/// `stderr`, `stdout`, `off`, a boolean (true = stderr, false = off) or a file path.
/// A path must contain a `/` (`./access.log`), so a mistyped keyword is an error
/// rather than a file created in the working directory.
pub(super) fn access_log_dest(v: &str) -> Result<AccessLogDest, String> {
    match v.to_ascii_lowercase().as_str() {
        "stderr" => return Ok(AccessLogDest::Stderr),
        "stdout" => return Ok(AccessLogDest::Stdout),
        _ => {}
    }
    match parse_bool(v) {
        Ok(true) => Ok(AccessLogDest::Stderr),
        Ok(false) => Ok(AccessLogDest::Off),
        Err(_) if v.contains('/') => Ok(AccessLogDest::File(v.to_string())),
        Err(_) => Err(format!(
            "expected stderr, stdout, off or a file path with a '/' (./{v}), got {v:?}"
        )),
    }
}

pub(super) fn algorithm(v: &str) -> Result<Algorithm, String> {
    let found = ALGORITHMS.iter().find(|a| a.0.eq_ignore_ascii_case(v));
    found.map(|a| a.1).ok_or_else(|| {
        let names: Vec<&str> = ALGORITHMS.iter().map(|a| a.0).collect();
        format!("expected one of {}, got {v:?}", names.join(", "))
    })
}

pub(super) fn host(v: &str) -> Result<String, String> {
    if v.is_empty() || v.contains(char::is_whitespace) {
        return Err(format!("expected a host name or IP address, got {v:?}"));
    }
    Ok(v.into())
}

/// `v1 | v2 | any | off`.
pub(super) fn accept_proxy(v: &str) -> Result<Option<protocol::proxy::Accept>, String> {
    use protocol::proxy::Accept;
    match v.to_ascii_lowercase().as_str() {
        "off" => Ok(None),
        "v1" => Ok(Some(Accept::V1)),
        "v2" => Ok(Some(Accept::V2)),
        "any" => Ok(Some(Accept::Any)),
        _ => Err(format!("expected v1, v2, any or off, got {v:?}")),
    }
}

/// `v1 | v2 | off`.
pub(super) fn send_proxy(v: &str) -> Result<Option<protocol::proxy::Version>, String> {
    use protocol::proxy::Version;
    match v.to_ascii_lowercase().as_str() {
        "off" => Ok(None),
        "v1" => Ok(Some(Version::V1)),
        "v2" => Ok(Some(Version::V2)),
        _ => Err(format!("expected v1, v2 or off, got {v:?}")),
    }
}

pub(super) fn workers(v: &str) -> Result<usize, String> {
    let (lo, hi) = WORKERS_RANGE;
    if v.eq_ignore_ascii_case("auto") {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return Ok(n.clamp(lo as usize, hi as usize));
    }
    num(lo, hi)(v)
}

/// A request target for probes: origin-form, printable ASCII, no spaces.
pub(super) fn probe_path(v: &str) -> Result<String, String> {
    if !v.starts_with('/') || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "expected a path starting with '/' without spaces, got {v:?}"
        ));
    }
    Ok(v.into())
}

/// `host:port` or `[v6]:port`, port in 1..=65535.
pub(super) fn split_addr(v: &str) -> Result<(&str, u16), String> {
    let bad = || format!("expected host:port, got {v:?}");
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok()),
        None => Some(host).filter(|h| !h.contains(':')),
    };
    let host = host
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .ok_or_else(bad)?;
    let port = num(1, 65535)(port).map_err(|e| format!("port: {e}"))?;
    Ok((host, port))
}

/// `10s`, `500ms`: how durations appear in messages.
pub(super) fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
