//! TLS (feature `tls`): certificates, rustls configurations and [`TlsSession`], the sans-IO
//! layer the reactor puts between a socket and the HTTP session.
//!
//! No sockets and no clock here. rustls is driven through its unbuffered API, so every
//! ciphertext and plaintext byte sits in a buffer from sluice's free list: the reactor reads
//! ciphertext from a socket into a pooled record-sized [`Buf`](crate::buf::Buf) and hands it to
//! [`TlsSession::read`], which decrypts it (in that buffer) into the session's own read
//! buffer, where the HTTP code finds the bytes as if they came from a plain socket. Output
//! goes the other way: [`TlsSession::write`] encrypts from the session's write buffer into a
//! pooled output buffer ([`TlsSession::cipher`]) the reactor flushes to the socket. Each
//! buffer goes back to the free list once empty, so an idle session holds none: only the
//! rustls connection state (keys, sequence numbers) stays.
//!
//! Here: the handshake failure reasons ([`HandshakeFail`], counted in [`HandshakeStats`]);
//! `setup.rs`: certificates, keys, SNI, the rustls server and client configurations and
//! `--check`; `session.rs`: [`TlsSession`].
//!
//! Invariants:
//! - The handshake is bounded in bytes ([`MAX_HANDSHAKE_BYTES_SERVER`] /
//!   [`MAX_HANDSHAKE_BYTES_CLIENT`]) and in time (the deadline given at creation, driven by the
//!   reactor through [`TlsSession::deadline`] and [`TlsSession::on_timeout`]).
//! - Every way a handshake fails maps to one [`HandshakeFail`] (the `/metrics` label); after a
//!   failure the session accepts nothing more, and the alert rustls queued (if any) waits in
//!   [`TlsSession::cipher`] to be sent before the socket is closed.
//! - A server offers ALPN `http/1.1` only; the certificate is chosen by SNI over the configured
//!   pairs, the first one when the name is absent or unknown.
//! - [`ServerTls::reload`] swaps in a new configuration only when every pair loads and matches;
//!   open connections keep the configuration they started with.

use rustls::{AlertDescription, Error};
use std::fmt;

/// Ciphertext a client may send before its handshake completes. A ClientHello fits in one
/// 16 KiB record (RFC 8446 §5.1); the client's second flight (Finished, maybe a
/// ChangeCipherSpec or a TLS 1.2 key exchange) is small. Past this, the peer is flooding.
pub const MAX_HANDSHAKE_BYTES_SERVER: usize = 32 * 1024;
/// Ciphertext a backend may send before its handshake completes: certificate chains can be
/// long (rustls itself caps one handshake message at 64 KiB).
pub const MAX_HANDSHAKE_BYTES_CLIENT: usize = 128 * 1024;
/// The only application protocol offered and accepted (RFC 7301): h2 is not spoken here.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
/// Where the system's trusted roots usually are (Debian/Ubuntu/Alpine, Fedora/RHEL, openSUSE,
/// the old RHEL path); the first that exists is used when a backend has no `tls_ca`.
pub const SYSTEM_CA_PATHS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Why a handshake failed: one `/metrics` label each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeFail {
    /// The first bytes look like an HTTP request: a client spoke plain HTTP to the TLS port.
    PlainHttp,
    /// Not TLS, or a malformed or out-of-order handshake message.
    BadHello,
    /// The handshake did not finish within `handshake_timeout`.
    Timeout,
    /// The peer sent more than the handshake byte bound.
    TooLarge,
    /// No protocol version, cipher suite, group or ALPN protocol in common (TLS 1.1 clients,
    /// TLS 1.2 clients when `min_version = 1.3`, h2-only clients).
    Version,
    /// A certificate was refused: ours by the peer, or the backend's by us (unknown CA,
    /// wrong name, expired).
    Cert,
    /// The peer closed the connection mid-handshake.
    Eof,
    /// The peer sent another fatal alert, or anything else went wrong.
    Other,
}

impl HandshakeFail {
    /// Every reason, in `/metrics` order.
    pub const ALL: [HandshakeFail; 8] = [
        HandshakeFail::PlainHttp,
        HandshakeFail::BadHello,
        HandshakeFail::Timeout,
        HandshakeFail::TooLarge,
        HandshakeFail::Version,
        HandshakeFail::Cert,
        HandshakeFail::Eof,
        HandshakeFail::Other,
    ];

    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeFail::PlainHttp => "plain_http",
            HandshakeFail::BadHello => "bad_hello",
            HandshakeFail::Timeout => "timeout",
            HandshakeFail::TooLarge => "too_large",
            HandshakeFail::Version => "version",
            HandshakeFail::Cert => "cert",
            HandshakeFail::Eof => "eof",
            HandshakeFail::Other => "other",
        }
    }

    /// The reason a rustls error stands for.
    fn of(e: &Error) -> HandshakeFail {
        use AlertDescription as A;
        match e {
            Error::InvalidMessage(_)
            | Error::InappropriateMessage { .. }
            | Error::InappropriateHandshakeMessage { .. }
            | Error::PeerMisbehaved(_) => HandshakeFail::BadHello,
            Error::PeerIncompatible(_) | Error::NoApplicationProtocol => HandshakeFail::Version,
            Error::InvalidCertificate(_)
            | Error::NoCertificatesPresented
            | Error::UnsupportedNameType => HandshakeFail::Cert,
            Error::AlertReceived(a) => match a {
                A::ProtocolVersion
                | A::HandshakeFailure
                | A::InsufficientSecurity
                | A::NoApplicationProtocol => HandshakeFail::Version,
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::UnrecognisedName => HandshakeFail::Cert,
                _ => HandshakeFail::Other,
            },
            _ => HandshakeFail::Other,
        }
    }
}

impl fmt::Display for HandshakeFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Handshake outcomes, for `/metrics`: one counter per reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandshakeStats {
    /// Handshakes that completed.
    pub done: u64,
    /// Failed handshakes, indexed like [`HandshakeFail::ALL`].
    pub failed: [u64; HandshakeFail::ALL.len()],
}

impl HandshakeStats {
    /// Counts one failure.
    pub fn fail(&mut self, why: HandshakeFail) {
        let i = HandshakeFail::ALL.iter().position(|&r| r == why);
        if let Some(slot) = i.and_then(|i| self.failed.get_mut(i)) {
            *slot += 1;
        }
    }

    /// The count for one reason.
    pub fn failed(&self, why: HandshakeFail) -> u64 {
        let i = HandshakeFail::ALL.iter().position(|&r| r == why);
        i.and_then(|i| self.failed.get(i)).copied().unwrap_or(0)
    }
}

/// What went wrong on a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsError {
    /// The handshake failed: count it, log it at debug, take the alert, close.
    Handshake(HandshakeFail),
    /// An established session broke (bad record, fatal alert): close like a reset.
    Broken,
}

mod session;
mod setup;
pub use session::TlsSession;
pub use setup::*;

#[cfg(test)]
mod tests;
