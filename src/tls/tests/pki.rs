//! Test certificates made at run time with the `openssl` command into a temporary
//! directory (removed on drop): a test CA (P-256) signing an ECDSA P-256 and an RSA 2048
//! server certificate with SANs, the listener and client configurations that use them.

use super::super::*;
use crate::config::{CertPair, TlsListener, TlsVersion};
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A directory of test certificates, deleted on drop.
pub(super) struct Pki {
    pub(super) dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[track_caller]
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// `ca` signs `a` (ECDSA P-256: a.test, *.wild.test) and `b` (RSA 2048: b.test,
    /// 127.0.0.1); `other-ca` signs `c` (ECDSA: a.test), for unknown-CA tests.
    pub(super) fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("sluice-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pki = Pki { dir };
        pki.ca("ca");
        pki.ca("other-ca");
        pki.leaf("a", "ca", "ec", "DNS:a.test,DNS:*.wild.test");
        pki.leaf("b", "ca", "rsa", "DNS:b.test,IP:127.0.0.1");
        pki.leaf("c", "other-ca", "ec", "DNS:a.test");
        pki
    }

    pub(super) fn ca(&self, name: &str) {
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN=sluice test {name}"),
        );
        openssl(
            &self.dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &pem,
                "-days",
                "2",
                "-subj",
                &subj,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        );
    }

    pub(super) fn leaf(&self, name: &str, ca: &str, alg: &str, san: &str) {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let newkey: &[&str] = match alg {
            "rsa" => &["-newkey", "rsa:2048"],
            _ => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        };
        let mut args = vec![
            "req", "-nodes", "-keyout", &key, "-out", &csr, "-subj", "/CN=leaf",
        ];
        args.extend_from_slice(newkey);
        openssl(&self.dir, &args);
        let text = format!(
            "subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        );
        std::fs::write(self.dir.join(&ext), text).expect("ext file");
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }

    pub(super) fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
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
