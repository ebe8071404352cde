//! Test certificates made at run time with the `openssl` command in a temporary directory
//! (removed on drop). One file for every user: the end-to-end TLS tests (tests/tlsutil),
//! the TLS unit tests (src/tls/tests/pki.rs) and examples/tls_memory.rs include it with
//! `#[path]` (separate crates, so none can import it) and add the certificate sets they
//! need in their own `impl Pki`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of test certificates, deleted on drop.
pub struct Pki {
    pub dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `openssl args` in `dir`; panics with its stderr when it fails.
#[track_caller]
pub fn openssl(dir: &Path, args: &[&str]) {
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
    /// An empty directory `sluice-{tag}-{pid}` under the temporary directory.
    pub fn empty(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("sluice-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Pki { dir }
    }

    /// A self-signed ECDSA P-256 CA: `name.pem`, `name.key`.
    pub fn ca(&self, name: &str) {
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

    /// A server certificate `name.pem` / `name.key` (CN = `name`, SANs `san`) signed by
    /// `ca`; `alg` "rsa" makes an RSA 2048 key, anything else ECDSA P-256.
    pub fn leaf(&self, name: &str, ca: &str, alg: &str, san: &str) {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let subj = format!("/CN={name}");
        let newkey: &[&str] = match alg {
            "rsa" => &["-newkey", "rsa:2048"],
            _ => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        };
        let mut args = vec![
            "req", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj,
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

    /// The path of `file` in the directory.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }
}
