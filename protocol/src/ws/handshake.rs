//! The WebSocket opening handshake (RFC 6455 §4): validate a client's upgrade
//! request and a server's 101 answer.
//!
//! Contract: the functions take `(name, value)` header pairs, so they work on
//! any head representation (sluice passes `h1::header_lines`). Names compare
//! ASCII case-insensitively, values are OWS-trimmed here as well. Nothing is
//! allocated; the key is copied into a fixed array.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// RFC 6455 §1.3: the GUID appended to the key before hashing.
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// RFC 6455 §4.1: the key is base64 of 16 random bytes, 24 characters.
const KEY_LEN: usize = 24;
/// base64 of a 20-byte SHA-1 digest.
const ACCEPT_LEN: usize = 28;
/// The extension that allows RSV1 (RFC 7692 §7).
const PERMESSAGE_DEFLATE: &[u8] = b"permessage-deflate";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455
/// §4.2.2): base64(SHA-1(key ++ GUID)). Pass the key exactly as sent.
pub fn accept_key(key: &[u8]) -> [u8; ACCEPT_LEN] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WS_GUID);
    let digest = sha.finalize();
    let mut out = [0u8; ACCEPT_LEN];
    // 20 bytes always encode to exactly 28 characters, so this cannot fail.
    let written = STANDARD.encode_slice(digest, &mut out).unwrap_or(0);
    debug_assert_eq!(written, ACCEPT_LEN);
    out
}

/// What a valid client upgrade request carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientUpgrade {
    /// The `Sec-WebSocket-Key` as sent: 24 base64 characters.
    pub key: [u8; KEY_LEN],
    /// `Sec-WebSocket-Extensions` offered permessage-deflate (RFC 7692).
    pub permessage_deflate_offered: bool,
}

/// Why an opening handshake is not a valid WebSocket upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The request method is not GET (§4.1).
    NotGet,
    /// The request is not HTTP/1.1 (§4.1).
    NotHttp11,
    /// No `Upgrade` header lists `websocket`.
    MissingUpgradeToken,
    /// No `Connection` header lists `upgrade`.
    MissingConnectionToken,
    /// `Sec-WebSocket-Version` is missing, repeated or not 13 (§4.4).
    BadVersion,
    /// No `Sec-WebSocket-Key`.
    MissingKey,
    /// The key is not base64 of 16 bytes.
    BadKey,
    /// More than one `Sec-WebSocket-Key`.
    DuplicateKey,
    /// The server answered with a status other than 101.
    NotSwitchingProtocols,
    /// `Sec-WebSocket-Accept` is missing, repeated or wrong (§4.1, client step 4).
    BadAccept,
    /// The server chose an extension that sluice cannot relay (§4.1, client step 5).
    UnexpectedExtension,
}

impl HandshakeError {
    /// A short static description.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeError::NotGet => "websocket upgrade requires GET",
            HandshakeError::NotHttp11 => "websocket upgrade requires HTTP/1.1",
            HandshakeError::MissingUpgradeToken => "Upgrade does not list websocket",
            HandshakeError::MissingConnectionToken => "Connection does not list upgrade",
            HandshakeError::BadVersion => "Sec-WebSocket-Version is not 13",
            HandshakeError::MissingKey => "missing Sec-WebSocket-Key",
            HandshakeError::BadKey => "Sec-WebSocket-Key is not base64 of 16 bytes",
            HandshakeError::DuplicateKey => "duplicate Sec-WebSocket-Key",
            HandshakeError::NotSwitchingProtocols => "status is not 101",
            HandshakeError::BadAccept => "wrong Sec-WebSocket-Accept",
            HandshakeError::UnexpectedExtension => "unexpected Sec-WebSocket-Extensions",
        }
    }
}

impl core::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Validates a client's upgrade request (RFC 6455 §4.2.1).
///
/// Call it after the request head parsed and the proxy saw `Upgrade`. Valid
/// only with GET, HTTP/1.1, an `Upgrade` listing `websocket`, a `Connection`
/// listing `upgrade` (browsers send `Connection: keep-alive, Upgrade`),
/// `Sec-WebSocket-Version: 13` and exactly one key that is base64 of 16 bytes.
pub fn check_client_upgrade<'a>(
    is_get: bool,
    is_http11: bool,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<ClientUpgrade, HandshakeError> {
    if !is_get {
        return Err(HandshakeError::NotGet);
    }
    if !is_http11 {
        return Err(HandshakeError::NotHttp11);
    }
    let (mut upgrade, mut connection, mut deflate) = (false, false, false);
    let (mut versions, mut version_ok) = (0u32, false);
    let mut keys = 0u32;
    let mut key: Option<&[u8]> = None;
    for (name, value) in headers {
        let value = trim(value);
        if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade |= has_token(value, b"websocket");
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection |= has_token(value, b"upgrade");
        } else if name.eq_ignore_ascii_case(b"sec-websocket-version") {
            versions += 1;
            version_ok = value == b"13";
        } else if name.eq_ignore_ascii_case(b"sec-websocket-key") {
            keys += 1;
            key = Some(value);
        } else if name.eq_ignore_ascii_case(b"sec-websocket-extensions") {
            deflate |= extensions(value).any(|e| e.eq_ignore_ascii_case(PERMESSAGE_DEFLATE));
        }
    }
    if !upgrade {
        return Err(HandshakeError::MissingUpgradeToken);
    }
    if !connection {
        return Err(HandshakeError::MissingConnectionToken);
    }
    if versions != 1 || !version_ok {
        return Err(HandshakeError::BadVersion);
    }
    if keys > 1 {
        return Err(HandshakeError::DuplicateKey);
    }
    let key = key.ok_or(HandshakeError::MissingKey)?;
    Ok(ClientUpgrade {
        key: valid_key(key)?,
        permessage_deflate_offered: deflate,
    })
}

/// What a valid server 101 answer negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerAccept {
    /// permessage-deflate was accepted: RSV1 may be set in both directions.
    pub rsv1_allowed: bool,
}

impl ServerAccept {
    /// The `rsv_allowed` bits for `TrackerConfig` and `parse_frame_header`.
    pub fn rsv_allowed(self) -> u8 {
        if self.rsv1_allowed {
            crate::ws::RSV1
        } else {
            0
        }
    }
}

/// Validates the backend's answer to an upgrade (RFC 6455 §4.1, client steps).
///
/// `key` is the `Sec-WebSocket-Key` the client sent. Status must be 101 with
/// `Upgrade: websocket`, `Connection: upgrade` and exactly one correct
/// `Sec-WebSocket-Accept`. The only extension accepted is a single
/// permessage-deflate; the caller must also check the client offered it
/// (`ClientUpgrade::permessage_deflate_offered`), which this function cannot see.
pub fn check_server_accept<'a>(
    status: u16,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    key: &[u8],
) -> Result<ServerAccept, HandshakeError> {
    if status != 101 {
        return Err(HandshakeError::NotSwitchingProtocols);
    }
    let (mut upgrade, mut connection) = (false, false);
    let (mut accepts, mut accept_ok) = (0u32, false);
    let (mut deflate, mut other_ext) = (0u32, false);
    let want = accept_key(trim(key));
    for (name, value) in headers {
        let value = trim(value);
        if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade |= has_token(value, b"websocket");
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection |= has_token(value, b"upgrade");
        } else if name.eq_ignore_ascii_case(b"sec-websocket-accept") {
            accepts += 1;
            accept_ok = value == want;
        } else if name.eq_ignore_ascii_case(b"sec-websocket-extensions") {
            for ext in extensions(value) {
                if ext.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
                    deflate += 1;
                } else {
                    other_ext = true;
                }
            }
        }
    }
    if !upgrade {
        return Err(HandshakeError::MissingUpgradeToken);
    }
    if !connection {
        return Err(HandshakeError::MissingConnectionToken);
    }
    if accepts != 1 || !accept_ok {
        return Err(HandshakeError::BadAccept);
    }
    // RFC 7692 §5: a server accepts at most one permessage-deflate offer.
    if other_ext || deflate > 1 {
        return Err(HandshakeError::UnexpectedExtension);
    }
    Ok(ServerAccept {
        rsv1_allowed: deflate == 1,
    })
}

/// A key is 24 base64 characters that decode to exactly 16 bytes (§4.1).
fn valid_key(value: &[u8]) -> Result<[u8; KEY_LEN], HandshakeError> {
    let key: [u8; KEY_LEN] = value.try_into().map_err(|_| HandshakeError::BadKey)?;
    let mut raw = [0u8; 18];
    match STANDARD.decode_slice(key, &mut raw) {
        Ok(16) => Ok(key),
        _ => Err(HandshakeError::BadKey),
    }
}

/// Extension names of a `Sec-WebSocket-Extensions` value, parameters dropped
/// (RFC 6455 §9.1: `name; param=value, name2`).
fn extensions(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(|item| {
        let name = item.split(|&b| b == b';').next().unwrap_or(&[]);
        trim(name)
    })
}

/// A comma-separated token list contains `token` (ASCII case-insensitive,
/// OWS around elements ignored; RFC 9110 §5.6.1).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// Strips optional whitespace (SP / HTAB) from both ends.
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn pairs<'a>(h: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        h.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))
    }

    const GOOD: &[(&str, &str)] = &[
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];

    fn client(h: &[(&str, &str)]) -> Result<ClientUpgrade, HandshakeError> {
        check_client_upgrade(true, true, pairs(h))
    }

    /// GOOD with header `name` replaced by `value` (`None` drops it).
    fn with(name: &str, value: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = GOOD
            .iter()
            .copied()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .collect();
        if let Some(value) = value {
            let n = GOOD
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map_or("X", |(n, _)| n);
            v.push((n, value));
        }
        v
    }

    #[test]
    fn rfc_accept_example() {
        assert_eq!(&accept_key(KEY), ACCEPT);
    }

    #[test]
    fn client_ok() {
        let up = client(GOOD).unwrap();
        assert_eq!(&up.key, KEY);
        assert!(!up.permessage_deflate_offered);
    }

    #[test]
    fn client_browser_style() {
        let h = [
            ("host", "example.com"),
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-version", " 13 "),
            ("sec-websocket-key", "  dGhlIHNhbXBsZSBub25jZQ==\t"),
            (
                "sec-websocket-extensions",
                "permessage-deflate; client_max_window_bits",
            ),
        ];
        let up = client(&h).unwrap();
        assert_eq!(&up.key, KEY);
        assert!(up.permessage_deflate_offered);
        // Tokens split over two Connection headers also count.
        let h = [
            ("Connection", "keep-alive"),
            ("Connection", "upgrade"),
            ("Upgrade", "h2c, websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            (
                "Sec-WebSocket-Extensions",
                "x-webkit-deflate-frame, PerMessage-Deflate",
            ),
        ];
        assert!(client(&h).unwrap().permessage_deflate_offered);
    }

    #[test]
    fn client_not_get() {
        assert_eq!(
            check_client_upgrade(false, true, pairs(GOOD)),
            Err(HandshakeError::NotGet)
        );
    }

    #[test]
    fn client_not_http11() {
        assert_eq!(
            check_client_upgrade(true, false, pairs(GOOD)),
            Err(HandshakeError::NotHttp11)
        );
    }

    #[test]
    fn client_missing_upgrade_token() {
        assert_eq!(
            client(&with("Upgrade", None)),
            Err(HandshakeError::MissingUpgradeToken)
        );
        assert_eq!(
            client(&with("Upgrade", Some("websocketx"))),
            Err(HandshakeError::MissingUpgradeToken)
        );
    }

    #[test]
    fn client_missing_connection_token() {
        assert_eq!(
            client(&with("Connection", Some("keep-alive"))),
            Err(HandshakeError::MissingConnectionToken)
        );
        assert_eq!(
            client(&with("Connection", None)),
            Err(HandshakeError::MissingConnectionToken)
        );
    }

    #[test]
    fn client_bad_version() {
        assert_eq!(
            client(&with("Sec-WebSocket-Version", Some("8"))),
            Err(HandshakeError::BadVersion)
        );
        assert_eq!(
            client(&with("Sec-WebSocket-Version", None)),
            Err(HandshakeError::BadVersion)
        );
        let mut h = GOOD.to_vec();
        h.push(("Sec-WebSocket-Version", "13"));
        assert_eq!(client(&h), Err(HandshakeError::BadVersion));
    }

    #[test]
    fn client_missing_key() {
        assert_eq!(
            client(&with("Sec-WebSocket-Key", None)),
            Err(HandshakeError::MissingKey)
        );
    }

    #[test]
    fn client_bad_key() {
        for bad in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ=",   // 23 chars
            "dGhlIHNhbXBsZSBub25jZQ===", // 25 chars
            "dGhlIHNhbXBsZSBub25jZ!==",  // not base64
            "dGhlIHNhbXBsZSBub25jZR==",  // non-canonical trailing bits
            "dGhlIHNhbXBsZSBub25jZQAA",  // 18 bytes, not 16
        ] {
            assert_eq!(
                client(&with("Sec-WebSocket-Key", Some(bad))),
                Err(HandshakeError::BadKey),
                "{bad}"
            );
        }
    }

    #[test]
    fn client_duplicate_key() {
        let mut h = GOOD.to_vec();
        h.push(("sec-websocket-key", "AQIDBAUGBwgJCgsMDQ4PEA=="));
        assert_eq!(client(&h), Err(HandshakeError::DuplicateKey));
    }

    const REPLY: &[(&str, &str)] = &[
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ];

    fn server(status: u16, h: &[(&str, &str)]) -> Result<ServerAccept, HandshakeError> {
        check_server_accept(status, pairs(h), KEY)
    }

    #[test]
    fn server_ok() {
        assert_eq!(
            server(101, REPLY),
            Ok(ServerAccept {
                rsv1_allowed: false
            })
        );
        let mut h = REPLY.to_vec();
        h.push((
            "Sec-WebSocket-Extensions",
            "permessage-deflate; server_no_context_takeover",
        ));
        let acc = server(101, &h).unwrap();
        assert!(acc.rsv1_allowed);
        assert_eq!(acc.rsv_allowed(), crate::ws::RSV1);
    }

    #[test]
    fn server_not_switching_protocols() {
        assert_eq!(
            server(200, REPLY),
            Err(HandshakeError::NotSwitchingProtocols)
        );
    }

    #[test]
    fn server_missing_tokens() {
        assert_eq!(
            server(101, &REPLY[1..]),
            Err(HandshakeError::MissingUpgradeToken)
        );
        let h = [REPLY[0], REPLY[2]];
        assert_eq!(server(101, &h), Err(HandshakeError::MissingConnectionToken));
    }

    #[test]
    fn server_bad_accept() {
        assert_eq!(server(101, &REPLY[..2]), Err(HandshakeError::BadAccept));
        let h = [
            REPLY[0],
            REPLY[1],
            ("Sec-WebSocket-Accept", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ];
        assert_eq!(server(101, &h), Err(HandshakeError::BadAccept));
        let mut h = REPLY.to_vec();
        h.push(REPLY[2]);
        assert_eq!(server(101, &h), Err(HandshakeError::BadAccept));
    }

    #[test]
    fn server_unexpected_extension() {
        let mut h = REPLY.to_vec();
        h.push(("Sec-WebSocket-Extensions", "x-webkit-deflate-frame"));
        assert_eq!(server(101, &h), Err(HandshakeError::UnexpectedExtension));
        let mut h = REPLY.to_vec();
        h.push((
            "Sec-WebSocket-Extensions",
            "permessage-deflate, permessage-deflate",
        ));
        assert_eq!(server(101, &h), Err(HandshakeError::UnexpectedExtension));
    }

    #[test]
    fn token_lists() {
        assert!(has_token(b"keep-alive, Upgrade", b"upgrade"));
        assert!(has_token(b" UPGRADE ", b"upgrade"));
        assert!(has_token(b"a,\tupgrade\t,b", b"upgrade"));
        assert!(!has_token(b"upgrades", b"upgrade"));
        assert!(!has_token(b"", b"upgrade"));
        assert_eq!(
            HandshakeError::BadKey.to_string(),
            HandshakeError::BadKey.as_str()
        );
    }
}
