//! Test certificates made at run time with the `openssl` command into a temporary
//! directory (removed on drop, tests/tlsutil/pki.rs): a test CA (P-256) signing an ECDSA P-256 and an RSA 2048
//! server certificate with SANs, the listener and client configurations that use them.

use super::super::*;
use crate::config::{CertPair, TlsListener, TlsVersion};
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use std::time::Duration;

// The openssl-made directory itself is shared with the end-to-end tests and the example.
#[path = "../../../tests/tlsutil/pki.rs"]
mod certs;
pub(super) use certs::Pki;

impl Pki {
    /// `ca` signs `a` (ECDSA P-256: a.test, *.wild.test) and `b` (RSA 2048: b.test,
    /// 127.0.0.1); `other-ca` signs `c` (ECDSA: a.test), for unknown-CA tests.
    pub(super) fn new(tag: &str) -> Pki {
        let pki = Pki::empty(&format!("tls-{tag}"));
        pki.ca("ca");
        pki.ca("other-ca");
        pki.leaf("a", "ca", "ec", "DNS:a.test,DNS:*.wild.test");
        pki.leaf("b", "ca", "rsa", "DNS:b.test,IP:127.0.0.1");
        pki.leaf("c", "other-ca", "ec", "DNS:a.test");
        pki
    }

    /// `[tls] certN`-style pair of `name.pem` and `key.key`.
    pub(super) fn pair(&self, label: &str, cert: &str, key: &str) -> CertPair {
        CertPair {
            name: label.into(),
            cert: self.path(&format!("{cert}.pem")),
            key: self.path(&format!("{key}.key")),
        }
    }

    pub(super) fn listener(&self, certs: Vec<CertPair>, min_version: TlsVersion) -> TlsListener {
        TlsListener {
            host: "127.0.0.1".into(),
            port: 0,
            listen: ([127, 0, 0, 1], 0).into(),
            certs,
            min_version,
            handshake_timeout: Duration::from_secs(5),
        }
    }

    /// The DER of `name.pem`'s first certificate.
    pub(super) fn der(&self, name: &str) -> CertificateDer<'static> {
        load_certs(&self.path(&format!("{name}.pem"))).expect("cert")[0].clone()
    }

    /// A rustls client trusting `ca`, limited to `versions`.
    pub(super) fn client(
        &self,
        ca: &str,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let roots = roots(Some(&self.path(&format!("{ca}.pem")))).expect("roots");
        let mut c = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        c.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Arc::new(c)
    }
}
