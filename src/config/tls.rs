//! `[tls]` and the `serverN_tls*` keys: the HTTPS listener, its certificates, TLS to backends.

#[cfg(any(feature = "tls", test))]
use super::scan::cert_key;
use super::scan::Section;
#[cfg(any(feature = "tls", test))]
use super::values::{host, num, parse_duration};
use super::values::{parse_bool, path};
use super::{Config, ConfigError, Doc, Frontend};
use std::net::SocketAddr;
use std::time::Duration;

/// `[tls]`: a second listener of each reactor, for HTTPS and WSS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsListener {
    /// Default: `[frontend] host`.
    pub host: String,
    /// Required; 0 = any free port (tests).
    pub port: u16,
    pub listen: SocketAddr,
    /// At least one. The first (`cert` + `key`, else the lowest `certN`) is served to clients
    /// that send no SNI or a name no certificate covers; the others are chosen by SNI.
    pub certs: Vec<CertPair>,
    pub min_version: TlsVersion,
    /// Default: `[frontend] request_header_timeout`.
    pub handshake_timeout: Duration,
}

/// A certificate chain and its private key, PEM files as written (relative paths are
/// relative to the working directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPair {
    /// The key that set it (`cert` or `certN`), so errors say which pair is wrong.
    pub name: String,
    pub cert: String,
    pub key: String,
}

/// `[tls] min_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// `serverN_tls = true`: the connections to this backend (pooled, tunnels, probes) speak TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendTls {
    /// PEM bundle of trusted roots: `serverN_tls_ca`, else the group's `tls_ca`, else (None)
    /// the system's bundle.
    pub ca: Option<String>,
    /// `serverN_tls_verify`; false is logged loudly ([`Config::warnings`]).
    pub verify: bool,
    /// SNI and the name the certificate must carry: the host of the address as written.
    pub server_name: String,
}

/// Why a build without the `tls` feature refuses TLS keys.
const NO_TLS: &str = "this sluice was built without TLS support (cargo build --features tls)";

impl Doc<'_> {
    /// `serverN_tls`, `serverN_tls_ca`, `serverN_tls_verify` of one server.
    pub(super) fn server_tls(
        &self,
        s: Section,
        name: &str,
        host: &str,
        group_ca: Option<String>,
    ) -> Result<Option<BackendTls>, ConfigError> {
        let (on, ca, verify) = (
            format!("{name}_tls"),
            format!("{name}_tls_ca"),
            format!("{name}_tls_verify"),
        );
        let mut enabled = false;
        self.set(s, &on, &mut enabled, &parse_bool)?;
        let mut tls = BackendTls {
            ca: group_ca,
            verify: true,
            server_name: host.into(),
        };
        self.set(s, &ca, &mut tls.ca, &|v| path(v).map(Some))?;
        self.set(s, &verify, &mut tls.verify, &parse_bool)?;
        if enabled {
            return Ok(Some(tls));
        }
        let stray = [ca, verify].into_iter().find(|k| self.line(s, k).is_some());
        match stray {
            Some(key) => Err(self.error_at(s, &key, &format!("only valid with {on} = true"))),
            None => Ok(None),
        }
    }

    /// `[tls]`; absent = no HTTPS listener. A build without the `tls` feature (`built`
    /// false) refuses the section at its header and compiles none of what parses it.
    pub(super) fn tls(
        &self,
        frontend: &Frontend,
        built: bool,
    ) -> Result<Option<TlsListener>, ConfigError> {
        let Some(header) = self.header(Section::Tls) else {
            return Ok(None);
        };
        #[cfg(any(feature = "tls", test))]
        if built {
            return self.tls_listener(frontend, header).map(Some);
        }
        let _ = (frontend, built);
        Err(ConfigError {
            path: self.path.into(),
            line: Some(header),
            message: format!("[tls]: {NO_TLS}"),
        })
    }

    /// The `[tls]` section that starts at line `header`.
    #[cfg(any(feature = "tls", test))]
    fn tls_listener(&self, frontend: &Frontend, header: usize) -> Result<TlsListener, ConfigError> {
        let s = Section::Tls;
        let mut host_name = frontend.host.clone();
        self.set(s, "host", &mut host_name, &host)?;
        let mut port = None;
        self.set(s, "port", &mut port, &|v| num(0, 65535)(v).map(Some))?;
        let Some(port) = port else {
            return Err(self.error(s, "port", Some(header), "required when [tls] is present"));
        };
        let mut t = TlsListener {
            listen: self.resolve(s, "host", &host_name, port)?,
            host: host_name,
            port,
            certs: self.cert_pairs(header)?,
            min_version: TlsVersion::V1_2,
            handshake_timeout: frontend.request_header_timeout,
        };
        set!(self, s, t.min_version, tls_version);
        set!(self, s, t.handshake_timeout, parse_duration);
        Ok(t)
    }

    /// `cert` + `key` first, then every `certN = cert.pem, key.pem` by N.
    #[cfg(any(feature = "tls", test))]
    fn cert_pairs(&self, header: usize) -> Result<Vec<CertPair>, ConfigError> {
        let s = Section::Tls;
        let mut pairs = Vec::new();
        match (self.line(s, "cert"), self.line(s, "key")) {
            (Some(_), Some(_)) => pairs.push(CertPair {
                name: "cert".into(),
                cert: path(&self.text(s, "cert")).map_err(|m| self.error_at(s, "cert", &m))?,
                key: path(&self.text(s, "key")).map_err(|m| self.error_at(s, "key", &m))?,
            }),
            (Some(line), None) => {
                return Err(self.error(s, "key", Some(line), "required with cert"));
            }
            (None, Some(line)) => {
                return Err(self.error(s, "cert", Some(line), "required with key"));
            }
            (None, None) => {}
        }
        let mut extra: Vec<(u32, &str)> = (self.scan.keys.iter())
            .filter(|k| k.0 == s)
            .filter_map(|k| cert_key(&k.1).map(|n| (n, k.1.as_str())))
            .collect();
        extra.sort_unstable();
        for (_, key) in extra {
            let (cert, pem_key) =
                cert_and_key(&self.text(s, key)).map_err(|m| self.error_at(s, key, &m))?;
            pairs.push(CertPair {
                name: key.into(),
                cert,
                key: pem_key,
            });
        }
        if pairs.is_empty() {
            let msg = "needs a certificate: cert = chain.pem and key = key.pem";
            return Err(self.error(s, "cert", Some(header), msg));
        }
        Ok(pairs)
    }

    /// A build without the `tls` feature refuses a server that needs it, naming the first
    /// line that does (`[tls]` itself is refused by [`Doc::tls`]).
    pub(super) fn require_tls_feature(
        &self,
        config: &Config,
        built: bool,
    ) -> Result<(), ConfigError> {
        if built {
            return Ok(());
        }
        let msg = NO_TLS;
        for (s, g) in [
            (Section::Http, &config.http),
            (Section::WebSocket, &config.websocket),
        ] {
            if let Some(srv) = g.servers.iter().find(|srv| srv.tls.is_some()) {
                return Err(self.error_at(s, &format!("{}_tls", srv.name), msg));
            }
        }
        Ok(())
    }
}

/// The group's `tls_ca`, if set (read again here: servers are parsed before the group ends).
pub(super) fn group_ca(doc: &Doc, s: Section) -> Option<String> {
    doc.line(s, "tls_ca")
        .and_then(|_| path(&doc.text(s, "tls_ca")).ok())
}

/// `cert.pem, key.pem`.
#[cfg(any(feature = "tls", test))]
fn cert_and_key(v: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    match parts[..] {
        [cert, key] if !cert.is_empty() && !key.is_empty() => Ok((cert.into(), key.into())),
        _ => Err(format!("expected cert.pem, key.pem, got {v:?}")),
    }
}

#[cfg(any(feature = "tls", test))]
fn tls_version(v: &str) -> Result<TlsVersion, String> {
    match v {
        "1.2" => Ok(TlsVersion::V1_2),
        "1.3" => Ok(TlsVersion::V1_3),
        _ => Err(format!("expected 1.2 or 1.3, got {v:?}")),
    }
}
