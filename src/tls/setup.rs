//! What is built once from the configuration (feature `tls`): certificates and keys, the
//! certificate chosen by SNI, rustls server and client configurations (one per trust), the
//! verifier for `tls_verify = false`, and `--check`'s test handshakes.

use super::session::{Conn, TlsSession};
use super::*;
use crate::buf::{Buf, BufPool};
use crate::config::{BackendTls, CertPair, Config, TlsListener, TlsVersion};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::UnbufferedClientConnection;
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, UnbufferedServerConnection};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The ring provider. rustls 0.23.48 deprecates it only because ring has no post-quantum key
/// exchange; ring is the provider this project chose (no cmake/NASM, smaller binary), and
/// X25519 / P-256 / P-384 remain what clients and HAProxy negotiate today.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// Every certificate of a PEM file, in order.
pub(super) fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
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
pub(super) struct SniCerts {
    /// Never empty; `[0]` is the default.
    pairs: Vec<Arc<CertifiedKey>>,
    /// (lowercase name, index), exact names.
    exact: Vec<(String, usize)>,
    /// (lowercase suffix after `*.`, index): `*.example.com` covers `a.example.com` only.
    wildcard: Vec<(String, usize)>,
}

impl SniCerts {
    pub(super) fn new(pairs: Vec<Arc<CertifiedKey>>) -> SniCerts {
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

pub(super) fn versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
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
    pub(super) configs: Vec<(Trust, Arc<rustls::ClientConfig>)>,
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
pub(super) fn roots(ca: Option<&str>) -> Result<rustls::RootCertStore, String> {
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

pub(super) fn client_config(
    ca: Option<&str>,
    verify: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
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
pub(crate) struct AnyServerCert(pub(crate) Arc<CryptoProvider>);

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
