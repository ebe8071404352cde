//! The line scan: where each section and key sits, which configparser forgets.
//!
//! It walks the text exactly as configparser 3 does with [`ini_defaults`] (trim, skip comment
//! lines, cut trailing comments, split at the first delimiter, casefold keys) and rejects what
//! configparser would silently accept: unknown sections and keys, duplicates (configparser keeps
//! the last), keys outside a section, lines without a delimiter. After an `Ok` scan, every key
//! configparser holds is in [`Scan::keys`] and vice versa.

use configparser::ini::IniDefault;

/// The same comment and delimiter rules that [`scan`] mirrors.
pub(super) fn ini_defaults() -> IniDefault {
    let mut d = IniDefault::default();
    d.comment_symbols = COMMENT.to_vec();
    d.inline_comment_symbols = None;
    d.enable_inline_comments = true;
    d.delimiters = DELIMITERS.to_vec();
    d.multiline = false;
    d.case_sensitive = false;
    d
}

const COMMENT: [char; 2] = ['#', ';'];
const DELIMITERS: [char; 2] = ['=', ':'];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Section {
    Frontend,
    Http,
    WebSocket,
    Log,
    Admin,
    Resolver,
    Tls,
}

const SECTIONS: [(&str, Section); 7] = [
    ("frontend", Section::Frontend),
    ("http", Section::Http),
    ("websocket", Section::WebSocket),
    ("log", Section::Log),
    ("admin", Section::Admin),
    ("resolver", Section::Resolver),
    ("tls", Section::Tls),
];

impl Section {
    pub(super) fn name(self) -> &'static str {
        match self {
            Section::Frontend => "frontend",
            Section::Http => "http",
            Section::WebSocket => "websocket",
            Section::Log => "log",
            Section::Admin => "admin",
            Section::Resolver => "resolver",
            Section::Tls => "tls",
        }
    }
}

const FRONTEND_KEYS: &[&str] = &[
    "host",
    "port",
    "max_connections",
    "request_header_timeout",
    "client_idle_timeout",
    "max_header_bytes",
    "max_body_bytes",
    "workers",
    "drain_timeout",
    "max_connections_per_client",
    "shutdown_delay",
    "reload_on_change",
    "accept_proxy",
];
const GROUP_KEYS: &[&str] = &[
    "enable_health_check",
    "health_check_interval",
    "health_check_timeout",
    "health_check_path",
    "rise",
    "fall",
    "algorithm",
    "max_fails",
    "fail_timeout",
    "max_ejected_percent",
    "slow_start",
    "fail_on_5xx",
    "connect_timeout",
    "response_timeout",
    "queue_timeout",
    "retries",
    "tls_ca",
];
const HTTP_KEYS: &[&str] = &["request_buffer_bytes"];
const WEBSOCKET_KEYS: &[&str] = &[
    "idle_timeout",
    "ping_interval",
    "ping_timeout",
    "max_message_bytes",
    "rebalance",
    "rebalance_rate",
    "rebalance_tolerance",
];
const LOG_KEYS: &[&str] = &["level", "access_log", "access_log_format"];
const ADMIN_KEYS: &[&str] = &["host", "port"];
const RESOLVER_KEYS: &[&str] = &[
    "nameservers",
    "timeout",
    "attempts",
    "min_ttl",
    "max_ttl",
    "hold_nx",
    "init",
    "family",
];
const TLS_KEYS: &[&str] = &[
    "host",
    "port",
    "cert",
    "key",
    "min_version",
    "handshake_timeout",
];

/// `Some(N)` for `certN` (N >= 1, no leading zero): an extra certificate of `[tls]`.
pub(super) fn cert_key(key: &str) -> Option<u32> {
    let n = key.strip_prefix("cert")?;
    let valid = !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
    n.parse().ok().filter(|_| valid)
}

/// What a `serverN...` key sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ServerField {
    /// `serverN` (websocket style) or `serverN_addr` (http style).
    Addr,
    Weight,
    SlowStart,
    /// `serverN_send_proxy`.
    SendProxy,
    /// `serverN_resolve = first | all`.
    Resolve,
    /// `serverN_srv = _service._proto.name` (instead of an address).
    Srv,
    /// The `[http]`-only pool keys.
    Pool,
    /// `serverN_tls`, `serverN_tls_ca`, `serverN_tls_verify`.
    Tls,
}

/// `Ok(None)`: not a server key at all.
pub(super) fn server_key(key: &str) -> Result<Option<(u32, ServerField)>, String> {
    let Some(rest) = key.strip_prefix("server") else {
        return Ok(None);
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let field = match &rest[digits..] {
        "" | "_addr" => ServerField::Addr,
        "_weight" => ServerField::Weight,
        "_slow_start" => ServerField::SlowStart,
        "_send_proxy" => ServerField::SendProxy,
        "_resolve" => ServerField::Resolve,
        "_srv" => ServerField::Srv,
        "_max_workers" | "_min_workers" | "_worker_timeout" | "_buffer_size" => ServerField::Pool,
        "_tls" | "_tls_ca" | "_tls_verify" => ServerField::Tls,
        _ => return Ok(None),
    };
    if digits == 0 {
        return Ok(None);
    }
    let number = &rest[..digits];
    if number.bytes().all(|b| b == b'0') {
        return Err("server number must be 1 or more".into());
    }
    if number.starts_with('0') {
        return Err("server number must not start with 0".into());
    }
    let id = number
        .parse()
        .map_err(|_| format!("server number out of range 1..={}", u32::MAX))?;
    Ok(Some((id, field)))
}

/// `Ok(())` if `key` may appear in `section`.
fn check_key(section: Section, key: &str) -> Result<(), String> {
    let known = match section {
        Section::Frontend => FRONTEND_KEYS.contains(&key),
        Section::Log => LOG_KEYS.contains(&key),
        Section::Admin => ADMIN_KEYS.contains(&key),
        Section::Resolver => RESOLVER_KEYS.contains(&key),
        Section::Tls => TLS_KEYS.contains(&key) || cert_key(key).is_some(),
        Section::Http | Section::WebSocket => {
            let http = section == Section::Http;
            if http && WEBSOCKET_KEYS.contains(&key) {
                return Err("only valid in [websocket]".into());
            }
            if !http && HTTP_KEYS.contains(&key) {
                return Err("only valid in [http]".into());
            }
            if let Some((_, field)) = server_key(key)? {
                return match field {
                    ServerField::Pool if !http => Err("only valid in [http]".into()),
                    _ => Ok(()),
                };
            }
            GROUP_KEYS.contains(&key) || WEBSOCKET_KEYS.contains(&key) || HTTP_KEYS.contains(&key)
        }
    };
    if known {
        Ok(())
    } else {
        Err("unknown key".into())
    }
}

/// Where each section header and key sits: what configparser forgets.
pub(super) struct Scan {
    pub(super) headers: Vec<(Section, usize)>,
    /// (section, lowercased key, line), in file order, without duplicates.
    pub(super) keys: Vec<(Section, String, usize)>,
}

/// Walks the lines exactly as configparser does (trim, skip comments, cut trailing comments,
/// split at the first delimiter) and rejects what it would silently accept or misplace.
pub(super) fn scan(text: &str) -> Result<Scan, (usize, String)> {
    let mut out = Scan {
        headers: Vec::new(),
        keys: Vec::new(),
    };
    let mut current = None;
    for (line_no, raw) in (1..).zip(text.lines()) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(COMMENT) {
            continue;
        }
        let line = line.find(COMMENT).map_or(line, |i| line[..i].trim());
        if let Some(rest) = line.strip_prefix('[') {
            let bad = || (line_no, format!("malformed section header {line:?}"));
            let name = rest.strip_suffix(']').ok_or_else(bad)?.trim();
            let lower = name.to_ascii_lowercase();
            let Some(&(_, section)) = SECTIONS.iter().find(|s| s.0 == lower) else {
                return Err((line_no, format!("unknown section [{name}]")));
            };
            if let Some(first) = out.headers.iter().find(|h| h.0 == section) {
                let msg = format!("duplicate section [{lower}] (first on line {})", first.1);
                return Err((line_no, msg));
            }
            out.headers.push((section, line_no));
            current = Some(section);
            continue;
        }
        let Some((key, _)) = line.split_once(DELIMITERS) else {
            return Err((line_no, format!("expected key = value, got {line:?}")));
        };
        let Some(section) = current else {
            return Err((line_no, format!("{} is outside any [section]", key.trim())));
        };
        let key = key.trim();
        let at = |msg: String| (line_no, format!("[{}] {key}: {msg}", section.name()));
        if key.is_empty() {
            return Err((
                line_no,
                format!("[{}] missing key before the '='", section.name()),
            ));
        }
        if !key.is_ascii() {
            return Err(at("unknown key".into()));
        }
        let key = key.to_ascii_lowercase();
        check_key(section, &key).map_err(at)?;
        if let Some(first) = out.keys.iter().find(|k| k.0 == section && k.1 == key) {
            return Err(at(format!("duplicate key (first set on line {})", first.2)));
        }
        out.keys.push((section, key, line_no));
    }
    Ok(out)
}
