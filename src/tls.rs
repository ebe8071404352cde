//! TLS (feature `tls`): certificates, rustls configurations and [`TlsSession`], the sans-IO
//! layer the reactor puts between a socket and the HTTP session.
//!
//! No sockets and no clock here. rustls is driven through its unbuffered API, so every
//! ciphertext and plaintext byte sits in a buffer from sluice's free list: the reactor reads
//! ciphertext from a socket into a pooled record-sized [`Buf`] and hands it to
//! [`TlsSession::read`], which decrypts it (in that buffer) into the session's own read
//! buffer, where the HTTP code finds the bytes as if they came from a plain socket. Output
//! goes the other way: [`TlsSession::write`] encrypts from the session's write buffer into a
//! pooled output buffer ([`TlsSession::cipher`]) the reactor flushes to the socket. Each
//! buffer goes back to the free list once empty, so an idle session holds none: only the
//! rustls connection state (keys, sequence numbers) stays.
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

use crate::buf::{Buf, BufPool};
use crate::config::{BackendTls, CertPair, Config, TlsListener, TlsVersion};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::UnbufferedClientConnection;
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, UnbufferedServerConnection};
use rustls::sign::CertifiedKey;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, InsufficientSizeError, WriteTraffic,
};
use rustls::{AlertDescription, DigitallySignedStruct, Error, SignatureScheme};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

// ---------------------------------------------------------------------------------------
// Certificates and keys

/// The ring provider. rustls 0.23.48 deprecates it only because ring has no post-quantum key
/// exchange; ring is the provider this project chose (no cmake/NASM, smaller binary), and
/// X25519 / P-256 / P-384 remain what clients and HAProxy negotiate today.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// Every certificate of a PEM file, in order.
fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(path)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    let certs = certs.map_err(|e| format!("{path}: bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path} holds no CERTIFICATE"));
    }
    Ok(certs)
}

/// Loads one pair and checks that the key belongs to the first certificate. Errors name the
/// pair (`[tls] cert2: ...`), for `sluice --check` and reload logs.
pub fn load_pair(pair: &CertPair, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let fail = |msg: String| format!("[tls] {}: {msg}", pair.name);
    let chain = load_certs(&pair.cert).map_err(fail)?;
    let pem = read_file(&pair.key).map_err(fail)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        fail(format!(
            "{} holds no usable PRIVATE KEY (PKCS#8, RSA or EC): {e}",
            pair.key
        ))
    })?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| fail(format!("{}: unsupported key: {e}", pair.key)))?;
    let certified = CertifiedKey::new(chain, key);
    certified.keys_match().map_err(|_| {
        fail(format!(
            "the key {} does not match the certificate {}",
            pair.key, pair.cert
        ))
    })?;
    // Parsing the leaf now means a certificate rustls would refuse is caught here, not at
    // the first handshake.
    let leaf = certified
        .end_entity_cert()
        .map_err(|e| fail(e.to_string()))?;
    webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| fail(format!("{}: bad certificate: {e}", pair.cert)))?;
    Ok(Arc::new(certified))
}

/// The configured pairs and the SNI names each covers (from the leaf's DNS SANs).
#[derive(Debug)]
struct SniCerts {
    /// Never empty; `[0]` is the default.
    pairs: Vec<Arc<CertifiedKey>>,
    /// (lowercase name, index), exact names.
    exact: Vec<(String, usize)>,
    /// (lowercase suffix after `*.`, index): `*.example.com` covers `a.example.com` only.
    wildcard: Vec<(String, usize)>,
}

impl SniCerts {
    fn new(pairs: Vec<Arc<CertifiedKey>>) -> SniCerts {
        let mut out = SniCerts {
            pairs: Vec::new(),
            exact: Vec::new(),
            wildcard: Vec::new(),
        };
        for (i, pair) in pairs.iter().enumerate() {
            let Some(leaf) = pair.cert.first() else {
                continue;
            };
            let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
                continue;
            };
            for name in cert.valid_dns_names() {
                let name = name.to_ascii_lowercase();
                match name.strip_prefix("*.") {
                    Some(suffix) => out.wildcard.push((suffix.into(), i)),
                    None => out.exact.push((name, i)),
                }
            }
        }
        out.pairs = pairs;
        out
    }

    /// The index of the pair for `sni`: the first that covers it exactly, else the first
    /// whose wildcard does, else the default (0).
    fn pick(&self, sni: Option<&str>) -> usize {
        let Some(name) = sni.map(str::to_ascii_lowercase) else {
            return 0;
        };
        if let Some(&(_, i)) = self.exact.iter().find(|e| e.0 == name) {
            return i;
        }
        let parent = name.split_once('.').map(|p| p.1);
        let wild = self.wildcard.iter().find(|w| Some(w.0.as_str()) == parent);
        wild.map_or(0, |w| w.1)
    }
}

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pairs.get(self.pick(hello.server_name())).cloned()
    }
}

/// The HTTPS listener's TLS side: the current rustls configuration.
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
}

impl ServerTls {
    /// Loads every pair of `[tls]` and builds the configuration. Call at start-up and from
    /// `sluice --check`; the error names the pair that is wrong.
    pub fn new(cfg: &TlsListener) -> Result<ServerTls, String> {
        Ok(ServerTls {
            config: server_config(cfg)?,
            timeout: cfg.handshake_timeout,
        })
    }

    /// Rebuilds from `cfg` (SIGHUP, a changed certificate file). On error nothing changes:
    /// the old certificates stay in use and the caller logs the message.
    pub fn reload(&mut self, cfg: &TlsListener) -> Result<(), String> {
        self.config = server_config(cfg)?;
        self.timeout = cfg.handshake_timeout;
        Ok(())
    }

    /// A session for a freshly accepted connection; its handshake must finish by
    /// `now + handshake_timeout`.
    pub fn accept(&self, now: Instant) -> Result<TlsSession, TlsError> {
        let conn = UnbufferedServerConnection::new(self.config.clone())
            .map_err(|_| TlsError::Handshake(HandshakeFail::Other))?;
        let limit = MAX_HANDSHAKE_BYTES_SERVER;
        Ok(TlsSession::new(
            Conn::Server(conn),
            now + self.timeout,
            limit,
        ))
    }
}

fn versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match min {
        TlsVersion::V1_2 => rustls::ALL_VERSIONS,
        TlsVersion::V1_3 => &TLS13_ONLY,
    }
}

fn server_config(cfg: &TlsListener) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = provider();
    let pairs: Result<Vec<_>, String> = cfg.certs.iter().map(|p| load_pair(p, &provider)).collect();
    let certs = SniCerts::new(pairs?);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(cfg.min_version))
        .map_err(|e| format!("[tls]: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(certs));
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// `sluice --check` for everything TLS in `config`: loads and matches every pair, then
/// handshakes in memory with each one (SNI = a name it covers; none for the default) to prove
/// it is served and usable, and loads every backend CA bundle. Returns warnings (a pair no
/// name reaches; unverified backends); the error names the pair or server that is wrong. `now` is the
/// time the test sessions start (the caller reads the clock).
pub fn check(config: &Config, now: Instant) -> Result<Vec<String>, String> {
    let mut warnings = config.warnings();
    ClientTls::new(config)?;
    let Some(listener) = &config.tls else {
        return Ok(warnings);
    };
    let server = ServerTls::new(listener)?;
    let certs = SniCerts::new(
        (listener.certs.iter())
            .map(|p| load_pair(p, &provider()))
            .collect::<Result<_, _>>()?,
    );
    for (i, pair) in listener.certs.iter().enumerate() {
        let name = match i {
            0 => Some("127.0.0.1".to_string()),
            _ => (certs.exact.iter().chain(&certs.wildcard))
                .filter(|n| n.1 == i)
                .map(|n| n.0.clone())
                .find(|n| certs.pick(Some(n)) == i),
        };
        let Some(name) = name else {
            warnings.push(format!(
                "[tls] {}: never served: every name it covers is covered by an earlier certificate",
                pair.name
            ));
            continue;
        };
        let served = handshake_in_memory(&server, &name, now)
            .map_err(|e| format!("[tls] {}: test handshake failed: {e}", pair.name))?;
        if Some(&served) != certs.pairs[i].cert.first() {
            return Err(format!(
                "[tls] {}: a test handshake got another certificate",
                pair.name
            ));
        }
    }
    Ok(warnings)
}

/// A client (accepting any certificate) and a server session talking through byte vectors;
/// returns the leaf the client was served.
fn handshake_in_memory(
    server: &ServerTls,
    name: &str,
    now: Instant,
) -> Result<CertificateDer<'static>, String> {
    let provider = provider();
    let client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_no_client_auth();
    let host = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let conn =
        UnbufferedClientConnection::new(Arc::new(client), host).map_err(|e| e.to_string())?;
    // The deadlines are never consulted here (the bytes go back and forth in memory).
    let mut client = TlsSession::new(Conn::Client(conn), now, MAX_HANDSHAKE_BYTES_CLIENT);
    let mut session = server.accept(now).map_err(|e| format!("{e:?}"))?;
    let mut bufs = BufPool::default();
    let mut plain = bufs.get();
    for _ in 0..16 {
        client.poll_output(&mut bufs);
        pass(&mut client, &mut session, &mut plain, &mut bufs)
            .map_err(|e| format!("{e:?} ({:?})", session.last_error()))?;
        session.poll_output(&mut bufs);
        pass(&mut session, &mut client, &mut plain, &mut bufs).map_err(|e| format!("{e:?}"))?;
        if client.is_open() && session.is_open() {
            let Conn::Client(c) = &client.conn else {
                break;
            };
            let leaf = c.peer_certificates().and_then(|certs| certs.first());
            return leaf.cloned().ok_or_else(|| "no certificate".into());
        }
    }
    Err("the handshake did not finish".into())
}

/// The output of `from` into `to` (both in memory).
fn pass(
    from: &mut TlsSession,
    to: &mut TlsSession,
    plain: &mut Buf,
    bufs: &mut BufPool,
) -> Result<(), TlsError> {
    while let Some(out) = from.cipher() {
        let cin = to.input(bufs).ok_or(TlsError::Broken)?;
        let n = cin.push(out.bytes());
        out.consume(n);
        from.sent(bufs);
        to.read(plain, bufs)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Backends

/// Client configurations for the TLS backends, one per distinct (CA bundle, verify) so
/// servers that trust the same roots share one (and its session-resumption cache).
pub struct ClientTls {
    configs: Vec<(Trust, Arc<rustls::ClientConfig>)>,
}

/// What a backend trusts: (its CA bundle, None = the system's; verify).
type Trust = (Option<String>, bool);

impl ClientTls {
    /// Loads the CA bundles every `serverN_tls` of `config` needs. Errors name the server.
    pub fn new(config: &Config) -> Result<ClientTls, String> {
        let mut out = ClientTls {
            configs: Vec::new(),
        };
        for (section, group) in [("http", &config.http), ("websocket", &config.websocket)] {
            for srv in &group.servers {
                let Some(tls) = &srv.tls else { continue };
                let fail = |e: String| format!("[{section}] {}_tls: {e}", srv.name);
                ServerName::try_from(tls.server_name.as_str())
                    .map_err(|_| fail(format!("{:?} is not a valid TLS name", tls.server_name)))?;
                let key = (tls.ca.clone(), tls.verify);
                if out.configs.iter().all(|c| c.0 != key) {
                    let built = client_config(tls.ca.as_deref(), tls.verify).map_err(fail)?;
                    out.configs.push((key, built));
                }
            }
        }
        Ok(out)
    }

    /// A session for a new connection to a TLS backend (SNI = its host name when that is a
    /// DNS name; an IP address is verified against the certificate's IP SANs and sent no SNI).
    pub fn connect(&self, tls: &BackendTls, deadline: Instant) -> Result<TlsSession, TlsError> {
        let other = TlsError::Handshake(HandshakeFail::Other);
        let key = (tls.ca.clone(), tls.verify);
        let config = self.configs.iter().find(|c| c.0 == key).ok_or(other)?;
        let name = ServerName::try_from(tls.server_name.clone()).map_err(|_| other)?;
        let conn = UnbufferedClientConnection::new(config.1.clone(), name).map_err(|_| other)?;
        Ok(TlsSession::new(
            Conn::Client(conn),
            deadline,
            MAX_HANDSHAKE_BYTES_CLIENT,
        ))
    }
}

/// The roots in `ca` (a PEM bundle), or the system's.
fn roots(ca: Option<&str>) -> Result<rustls::RootCertStore, String> {
    let path = match ca {
        Some(p) => p,
        None => SYSTEM_CA_PATHS
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or("no system CA bundle found (set tls_ca)")?,
    };
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(load_certs(path)?);
    if added == 0 {
        return Err(format!("{path}: no usable CA certificate"));
    }
    Ok(store)
}

fn client_config(ca: Option<&str>, verify: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| e.to_string())?;
    let mut config = if verify {
        builder.with_root_certificates(roots(ca)?)
    } else {
        let any = Arc::new(AnyServerCert(provider));
        builder.dangerous().with_custom_certificate_verifier(any)
    }
    .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// `serverN_tls_verify = false`: any certificate is accepted (the handshake's signatures are
/// still checked, so the session is encrypted, just not authenticated).
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algs = &self.0.signature_verification_algorithms;
        crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algs = &self.0.signature_verification_algorithms;
        crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------
// The session

/// Where a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Handshaking: `seen` ciphertext bytes taken so far, cut at `deadline`.
    Handshake { deadline: Instant, seen: usize },
    /// Application data flows.
    Open,
    /// Failed; nothing more is accepted.
    Failed(TlsError),
}

/// The rustls connection, through its unbuffered API: every byte it reads or writes is in a
/// buffer of ours.
enum Conn {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// Largest plaintext encrypted at once: one record, with room for its header, content type,
/// explicit nonce and tag (at most 5 + 8 + 16 + 1 bytes) in a pooled buffer.
const RECORD_OVERHEAD: usize = 64;

/// One TLS connection, client or server side, driven with bytes only.
pub struct TlsSession {
    conn: Conn,
    state: State,
    /// Handshake byte bound for this role.
    limit: usize,
    /// The rustls error behind a failure, for the debug log.
    error: Option<Error>,
    /// Ciphertext read from the socket and not yet taken (record-sized). rustls may hold
    /// offsets into it (a handshake message joined from several records), so it is the one
    /// buffer given to every `process_tls_records` call.
    cin: Option<Buf>,
    /// Ciphertext waiting for the socket: handshake flights, records, alerts.
    out: Option<Buf>,
    /// Decrypted bytes the caller's full buffer could not take (at most one record).
    spill: Option<Buf>,
    /// Plaintext written before the handshake finished (a backend's first request).
    early: Option<Buf>,
    /// close_notify was received.
    peer_closed: bool,
    /// close_notify was asked for and not yet queued.
    closing: bool,
}

/// The session's buffers, lent to [`on_state`] while rustls holds the connection.
struct Cx<'a> {
    out: &'a mut Option<Buf>,
    spill: &'a mut Option<Buf>,
    early: &'a mut Option<Buf>,
    peer_closed: &'a mut bool,
    closing: &'a mut bool,
    bufs: &'a mut BufPool,
    /// Where decrypted bytes go first (None: into `spill`).
    plain: Option<&'a mut Buf>,
    /// Plaintext to encrypt, if the caller is writing.
    send: Option<&'a mut Buf>,
}

/// What rustls's last state asks for.
enum Next {
    /// Call `process_tls_records` again.
    Again,
    /// Nothing more can happen until more ciphertext arrives or plaintext is taken.
    Stop,
    /// The connection failed.
    Fail(Error),
}

impl Cx<'_> {
    /// Decrypted bytes to the caller's buffer, the rest into `spill`.
    fn deliver(&mut self, mut payload: &[u8]) {
        if let Some(plain) = self.plain.as_deref_mut() {
            let n = plain.push(payload);
            payload = &payload[n..];
        }
        if !payload.is_empty() {
            let spill = self.spill.get_or_insert_with(|| self.bufs.get());
            spill.push(payload);
        }
    }

    /// Encrypts from `src` into `out` as whole records while they fit.
    fn encrypt<Data>(out: &mut Buf, src: &mut Buf, w: &mut WriteTraffic<'_, Data>) -> usize {
        let mut total = 0;
        while !src.is_empty() {
            let room = out.space().saturating_sub(RECORD_OVERHEAD);
            // A short tail waits for the socket rather than cutting a small record.
            if room == 0 || (room < src.len() && room < 4096 && !out.is_empty()) {
                break;
            }
            let n = src.len().min(room);
            match w.encrypt(&src.bytes()[..n], out.spare()) {
                Ok(k) => {
                    out.commit(k);
                    src.consume(n);
                    total += n;
                }
                Err(_) => break,
            }
        }
        total
    }

    /// Queued plaintext, then the caller's, then close_notify, as records into `out`.
    fn write<Data>(&mut self, w: &mut WriteTraffic<'_, Data>) {
        let out = self.out.get_or_insert_with(|| self.bufs.get());
        if let Some(early) = self.early.as_mut() {
            Cx::encrypt(out, early, w);
        }
        self.bufs.release_if_empty(self.early);
        if self.early.is_none() {
            if let Some(src) = self.send.as_deref_mut() {
                Cx::encrypt(out, src, w);
            }
            if *self.closing {
                if let Ok(n) = w.queue_close_notify(out.spare()) {
                    out.commit(n);
                    *self.closing = false;
                }
            }
        }
        self.bufs.release_if_empty(self.out);
    }

    /// A handshake record (or alert) into `out`, grown when a record does not fit.
    fn encode<Data>(&mut self, e: &mut EncodeTlsData<'_, Data>) -> Result<(), Error> {
        let out = self.out.get_or_insert_with(|| self.bufs.get());
        loop {
            match e.encode(out.spare()) {
                Ok(n) => {
                    out.commit(n);
                    return Ok(());
                }
                Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    out.grow(out.len() + required_size);
                }
                Err(EncodeError::AlreadyEncoded) => return Ok(()),
            }
        }
    }
}

/// Handles one state of rustls's unbuffered API.
fn on_state<Data>(st: Result<ConnectionState<'_, '_, Data>, Error>, cx: &mut Cx<'_>) -> Next {
    let st = match st {
        Ok(st) => st,
        Err(e) => return Next::Fail(e),
    };
    match st {
        ConnectionState::ReadTraffic(mut r) => {
            while let Some(record) = r.next_record() {
                match record {
                    Ok(record) => cx.deliver(record.payload),
                    Err(e) => return Next::Fail(e),
                }
            }
            match cx.spill.is_some() {
                true => Next::Stop,
                false => Next::Again,
            }
        }
        ConnectionState::PeerClosed => {
            *cx.peer_closed = true;
            Next::Again
        }
        ConnectionState::EncodeTlsData(mut e) => match cx.encode(&mut e) {
            Ok(()) => Next::Again,
            Err(e) => Next::Fail(e),
        },
        ConnectionState::TransmitTlsData(mut t) => {
            // The records are in `out`, which the caller sends.
            if let Some(mut w) = t.may_encrypt_app_data() {
                cx.write(&mut w);
            }
            t.done();
            Next::Again
        }
        ConnectionState::WriteTraffic(mut w) => {
            cx.write(&mut w);
            Next::Stop
        }
        // BlockedHandshake (more ciphertext needed), Closed, and early data (not enabled).
        _ => Next::Stop,
    }
}

impl TlsSession {
    fn new(conn: Conn, deadline: Instant, limit: usize) -> TlsSession {
        TlsSession {
            conn,
            state: State::Handshake { deadline, seen: 0 },
            limit,
            error: None,
            cin: None,
            out: None,
            spill: None,
            early: None,
            peer_closed: false,
            closing: false,
        }
    }

    /// Runs rustls over the ciphertext held (consuming what it took), with decrypted bytes
    /// going to `plain` (the rest to the spill) and `send` encrypted once the session is
    /// open; handshake flights and alerts go to `out`.
    fn drive(
        &mut self,
        plain: Option<&mut Buf>,
        send: Option<&mut Buf>,
        bufs: &mut BufPool,
    ) -> Result<(), TlsError> {
        let r = self.drive_or_fail(plain, send, bufs);
        if r.is_err() {
            // A failed session takes everything: nothing more will be read from it.
            bufs.release(&mut self.cin);
        }
        r
    }

    fn drive_or_fail(
        &mut self,
        plain: Option<&mut Buf>,
        send: Option<&mut Buf>,
        bufs: &mut BufPool,
    ) -> Result<(), TlsError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        if let (State::Handshake { seen: 0, .. }, Some(&first)) = (
            self.state,
            self.cin.as_ref().and_then(|c| c.bytes().first()),
        ) {
            self.check_first_byte(first)?;
        }
        let (taken, failed) = self.run(plain, send, bufs, false);
        if let Some(e) = failed {
            let err = match self.state {
                State::Handshake { .. } => TlsError::Handshake(HandshakeFail::of(&e)),
                _ => TlsError::Broken,
            };
            self.error = Some(e);
            // The alert rustls queued, if any, goes to `out` for the socket.
            self.run(None, None, bufs, true);
            return Err(self.fail(err));
        }
        bufs.release_if_empty(&mut self.cin);
        if let State::Handshake { deadline, seen } = self.state {
            let seen = seen + taken;
            self.state = State::Handshake { deadline, seen };
            let held = self.cin.as_ref().map_or(0, Buf::len);
            if seen + held > self.limit {
                return Err(self.fail(TlsError::Handshake(HandshakeFail::TooLarge)));
            }
            if !self.rustls_handshaking() {
                self.state = State::Open;
            }
        }
        Ok(())
    }

    /// `process_tls_records` until rustls needs more input or the caller: (ciphertext bytes
    /// taken, the error that stopped it). With `queued_only` (after a failure) it only takes
    /// what rustls already queued (the alert): processing the input again would meet the
    /// same error a second time, which rustls asserts never happens.
    fn run(
        &mut self,
        plain: Option<&mut Buf>,
        send: Option<&mut Buf>,
        bufs: &mut BufPool,
        queued_only: bool,
    ) -> (usize, Option<Error>) {
        let mut cx = Cx {
            out: &mut self.out,
            spill: &mut self.spill,
            early: &mut self.early,
            peer_closed: &mut self.peer_closed,
            closing: &mut self.closing,
            bufs,
            plain,
            send,
        };
        let mut taken = 0;
        loop {
            let queued = match &self.conn {
                Conn::Server(c) => c.wants_write(),
                Conn::Client(c) => c.wants_write(),
            };
            if queued_only && !queued {
                return (taken, None);
            }
            let mut none: [u8; 0] = [];
            let input: &mut [u8] = match self.cin.as_mut() {
                Some(c) => c.bytes_mut(),
                None => &mut none,
            };
            let (discard, next) = match &mut self.conn {
                Conn::Server(c) => {
                    let s = c.process_tls_records(input);
                    (s.discard, on_state(s.state, &mut cx))
                }
                Conn::Client(c) => {
                    let s = c.process_tls_records(input);
                    (s.discard, on_state(s.state, &mut cx))
                }
            };
            if let Some(c) = self.cin.as_mut() {
                c.consume(discard);
            }
            taken += discard;
            match next {
                Next::Again => {}
                Next::Stop => return (taken, None),
                Next::Fail(e) => return (taken, Some(e)),
            }
        }
    }

    /// The buffer to read ciphertext into (taken from the free list when the session holds
    /// none; grown while a handshake message longer than a record is joined). None when it
    /// is full of ciphertext the session cannot take: the peer broke the record layer.
    pub fn input(&mut self, bufs: &mut BufPool) -> Option<&mut Buf> {
        let handshaking = self.is_handshaking();
        let cin = self.cin.get_or_insert_with(|| bufs.get_record());
        if cin.space() == 0 {
            if !handshaking {
                return None;
            }
            // Bounded: past the handshake byte limit the session fails.
            cin.grow(cin.capacity() * 2);
        }
        Some(cin)
    }

    /// After a read into [`input`](Self::input): gives the buffer back if nothing came.
    pub fn input_done(&mut self, bufs: &mut BufPool) {
        bufs.release_if_empty(&mut self.cin);
    }

    fn rustls_handshaking(&self) -> bool {
        match &self.conn {
            Conn::Server(c) => c.is_handshaking(),
            Conn::Client(c) => c.is_handshaking(),
        }
    }

    /// Decrypts the records read into [`input`](Self::input) (consumed as they are taken)
    /// into `plain` (the session's read buffer); what `plain` cannot take
    /// waits in the session, and no further record is decrypted until it is delivered.
    /// Handshake messages are answered into the session's output (see
    /// [`cipher`](Self::cipher)). Returns the plaintext bytes moved.
    pub fn read(&mut self, plain: &mut Buf, bufs: &mut BufPool) -> Result<usize, TlsError> {
        let before = plain.len();
        if let Some(spill) = self.spill.as_mut() {
            let n = plain.push(spill.bytes());
            spill.consume(n);
            bufs.release_if_empty(&mut self.spill);
            if self.spill.is_some() {
                return Ok(n);
            }
        }
        self.drive(Some(&mut *plain), None, bufs)?;
        Ok(plain.len() - before)
    }

    /// True when decrypted bytes wait in the session (deliver them before reading more).
    pub fn has_plain(&self) -> bool {
        self.spill.is_some()
    }

    /// True once close_notify was received (and decrypted bytes before it are delivered
    /// when [`has_plain`](Self::has_plain) is false): a clean EOF.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Encrypts bytes from the front of `plain` (the session's write buffer) into the
    /// session's output, consuming what was taken: at most one pooled buffer of records
    /// waits, so a slow peer applies backpressure. Before the handshake ends the bytes wait
    /// in a pooled buffer and go out after it.
    pub fn write(&mut self, plain: &mut Buf, bufs: &mut BufPool) -> usize {
        match self.state {
            State::Failed(_) => 0,
            State::Handshake { .. } => {
                let early = self.early.get_or_insert_with(|| bufs.get());
                let n = early.push(plain.bytes());
                plain.consume(n);
                n
            }
            State::Open => {
                let before = plain.len();
                let _ = self.drive(None, Some(&mut *plain), bufs);
                before - plain.len()
            }
        }
    }

    /// Produces what the session has to send (the handshake's next flight, queued plaintext
    /// once open, close_notify) into its output.
    pub fn poll_output(&mut self, bufs: &mut BufPool) {
        if self.failure().is_none() {
            let _ = self.drive(None, None, bufs);
        }
    }

    /// Ciphertext waiting for the socket: write from its front, then call
    /// [`sent`](Self::sent).
    pub fn cipher(&mut self) -> Option<&mut Buf> {
        self.out.as_mut()
    }

    /// Gives the output buffer back once it is empty.
    pub fn sent(&mut self, bufs: &mut BufPool) {
        bufs.release_if_empty(&mut self.out);
    }

    /// True when ciphertext waits for the socket or plaintext waits for the handshake.
    pub fn wants_write(&self) -> bool {
        let queued = self.early.is_some() || self.closing;
        self.out.is_some() || (queued && self.failure().is_none())
    }

    /// Gives every buffer back (the socket is closing).
    pub fn release(&mut self, bufs: &mut BufPool) {
        bufs.release(&mut self.cin);
        bufs.release(&mut self.out);
        bufs.release(&mut self.spill);
        bufs.release(&mut self.early);
    }

    /// Buffers held (for the consistency checks and the memory figures).
    pub fn buffers(&self) -> usize {
        [&self.cin, &self.out, &self.spill, &self.early]
            .iter()
            .filter(|b| b.is_some())
            .count()
    }

    /// A server session's first byte must start a handshake record (RFC 8446 §5.1,
    /// content type 22). An ASCII letter is an HTTP method.
    fn check_first_byte(&mut self, first: u8) -> Result<(), TlsError> {
        const HANDSHAKE_RECORD: u8 = 0x16;
        if matches!(self.conn, Conn::Client(_)) || first == HANDSHAKE_RECORD {
            return Ok(());
        }
        let why = match first.is_ascii_uppercase() {
            true => HandshakeFail::PlainHttp,
            false => HandshakeFail::BadHello,
        };
        Err(self.fail(TlsError::Handshake(why)))
    }

    fn fail(&mut self, e: TlsError) -> TlsError {
        self.state = State::Failed(e);
        self.closing = false;
        e
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshake { .. })
    }

    /// True once application data can flow.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The failure, once there is one.
    pub fn failure(&self) -> Option<TlsError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The rustls error behind the failure, for the debug log.
    pub fn last_error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// When the handshake must have finished; None once it has.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Handshake { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// Fails a handshake whose deadline has passed; returns the failure to count.
    pub fn on_timeout(&mut self, now: Instant) -> Option<HandshakeFail> {
        match self.state {
            State::Handshake { deadline, .. } if now >= deadline => {
                self.fail(TlsError::Handshake(HandshakeFail::Timeout));
                Some(HandshakeFail::Timeout)
            }
            _ => None,
        }
    }

    /// The peer closed the socket: mid-handshake that is a failure to count.
    pub fn on_eof(&mut self) -> Option<HandshakeFail> {
        match self.state {
            State::Handshake { .. } => {
                self.fail(TlsError::Handshake(HandshakeFail::Eof));
                Some(HandshakeFail::Eof)
            }
            _ => None,
        }
    }

    /// Asks for close_notify (an open session only); [`poll_output`](Self::poll_output)
    /// queues it after any plaintext still waiting.
    pub fn close(&mut self) {
        self.closing = self.is_open();
    }

    /// The negotiated protocol version, once known.
    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        match &self.conn {
            Conn::Server(c) => c.protocol_version(),
            Conn::Client(c) => c.protocol_version(),
        }
    }
}

#[cfg(test)]
mod tests;
